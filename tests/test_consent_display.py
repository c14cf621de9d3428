"""What the owner reads on the consent page against what the wallet signs and the module enforces, attacked by a
dapp that writes the request and the token contracts it names. Each test drives the real consent server over
HTTP (ape's py-evm chain): the description the page renders (GET /api/consent/ID) and the typed data the wallet
is handed to sign (POST .../connect)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from keyscope.clock import utc_text
from keyscope.consent import ConsentServer
from keyscope.consent.describe import Facts, describe_session
from keyscope.errors import TargetWarning
from keyscope.hexutil import to_address
from keyscope.owner import DEFAULT_MAX_GAS_COST
from keyscope.policy import parse_signature
from keyscope.session import ArgType, Condition, Permission, Rule, Session
from keyscope.signing import LocalSigner
from keyscope.token_facts import ContractFacts

KEY = LocalSigner.generate().address


def _params(
    chain_id: int, permission: dict[str, Any], *, expiry: int = 2_000_000_000, **extra: Any
) -> list[Any]:
    return [
        {
            "chainId": hex(chain_id),
            "expiry": expiry,
            "signer": {"type": "key", "data": {"id": KEY}},
            "permission": permission,
            "policies": extra.pop("policies", []),
            **extra,
        }
    ]


def _shown(server: ConsentServer, consent_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/consent/{consent_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["description"]  # type: ignore[no-any-return]


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _signed(server: ConsentServer, consent_id: str, wallet: str, chain_id: int) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.url}/api/consent/{consent_id}/connect", json={"address": wallet, "chainId": chain_id}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["typedData"]  # type: ignore[no-any-return]


def test_an_erc7715_session_without_a_gas_policy_is_signed_with_the_cap_the_page_shows(net, nft) -> None:
    """A server set to cap sessions at 0.001 ETH per operation described ERC-7715 requests with that cap, and then
    had the wallet sign the SDK's default (0.05 ETH, fifty times more) once it connected."""
    cap = 10**15
    params = _params(
        net.chain_id,
        {"type": "contract-call", "data": {"address": nft.address, "function": "safeMint(address to)"}},
    )
    wallet = LocalSigner.generate().address
    with ConsentServer(net, max_gas_cost=cap) as server:
        consent = server.request_permissions(params)
        shown = _shown(server, consent.id)
        assert shown["gas"].startswith("One operation may cost at most 0.001 ETH in gas")
        typed = _signed(server, consent.id, wallet, net.chain_id)
    signed = int(typed["message"]["maxGasCost"])
    assert signed == cap != DEFAULT_MAX_GAS_COST
    assert consent.grant_request is not None and consent.grant_request.session.max_gas_cost == cap


@pytest.mark.parametrize(
    "symbol",
    [
        "\u202eCDSU",  # RIGHT-TO-LEFT OVERRIDE: the words after it on the line read backwards
        "US\u200bDC",  # ZERO WIDTH SPACE: looks like USDC, is not
        "USDC\nDanger: none",  # a newline: a fake line in a terminal's text
        "\u2066USDC\u2069\u200f",  # isolates and a right-to-left mark
    ],
    ids=["bidi-override", "zero-width", "newline", "isolates"],
)
def test_a_token_s_hidden_or_reordering_characters_are_shown_by_code_point(
    net, project, deployer, symbol
) -> None:
    """A token's symbol and name are its own claims, set into the page and the terminal as text: a bidi override
    in them turned the rest of the line around (a limit or a ONE_OF list after the symbol read backwards: 1,000,000
    as 000,000,1), a zero-width character made another token read as USDC, a newline printed a line of its own."""
    token = project.NamedToken.deploy("USD" + symbol, symbol, 6, sender=deployer)
    params = _token_transfer(net.chain_id, token.address, {"op": "one of", "values": ["1", "1000000000000"]})
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        shown = json.dumps(_shown(server, consent.id), ensure_ascii=False)
    hidden = [c for c in symbol if not c.isprintable() or c in "\u200b\u200f"]
    assert hidden
    for c in hidden:
        assert c not in shown, f"U+{ord(c):04X} reached the page"
        assert f"<U+{ord(c):04X}>" in shown
    lines = consent.description.lines()
    assert not any(line.startswith("Danger: none") for line in lines)
    assert "must be one of: 0.000001 " in shown and ", 1,000,000 " in shown


def test_a_request_naming_no_account_is_not_shown_with_the_zero_address_in_the_terminal(net, nft) -> None:
    """The command line prints the description's lines: a request naming no account was shown as account
    0x000…0 (the address standing for it), as the page showed it before it said "not named by the request"."""
    params = _params(
        net.chain_id,
        {"type": "contract-call", "data": {"address": nft.address, "function": "safeMint(address to)"}},
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
    first = consent.description.lines()[0]
    assert first.startswith("Account not named by the request (your account: the keyscope account of"), first
    assert "0x" + "00" * 20 not in "\n".join(consent.description.lines())


@pytest.mark.parametrize("valid_until", [2**40, 2**48 - 1], ids=["year-36812", "uint48-max"])
def test_a_session_ending_after_the_year_9999_is_warned_about_as_never_expiring(
    net, nft, valid_until
) -> None:
    """validUntil 0 raises the never-expires danger; the largest validUntil (2**48 - 1, the year 8,921,556) raised
    nothing, and the page's local time of it read "until Invalid Date": a session without end, shown as one. The
    SDK's window options and ERC-7715 requests refuse such a time (milliseconds, most often), but a grant request
    built elsewhere may still carry it."""
    from keyscope import Policy, SessionKey
    from keyscope.consent import WalletAddress

    owner = net.owner(WalletAddress(LocalSigner.generate().address))
    mint = Policy.call(nft.address, "safeMint(address to)")
    request = owner.prepare_grant(SessionKey.generate(), [mint], never_expires=True)
    endless = request.model_copy(
        update={"session": request.session.model_copy(update={"valid_until": valid_until})}
    )
    with ConsentServer(net) as server:
        consent = server.request_grant(endless)
        shown = _shown(server, consent.id)
    assert shown["valid_until"] == valid_until
    dangers = [w["text"] for w in shown["warnings"] if w["level"] == "danger"]
    assert any("in effect it never expires" in text for text in dangers), dangers


def test_a_rule_naming_the_zero_address_is_not_shown_as_the_owner_s_account(net, nft) -> None:
    """A request without ``address`` is described before the wallet (so its account) is known, with the zero address
    standing for the account: a rule holding a recipient to the zero address read "(this account)", so the owner
    approved minting, sending or withdrawing to nowhere as if to themself."""
    zero = "0x" + "00" * 20
    params = _params(
        net.chain_id,
        {
            "type": "contract-call",
            "data": {
                "address": nft.address,
                "function": "safeMint(address to)",
                "rules": [{"arg": "to", "op": "==", "value": zero}],
            },
        },
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        shown = _shown(server, consent.id)
    assert "your account" in shown["account_note"]
    (rule,) = shown["permissions"][0]["rules"]
    assert rule == f"to (address) must be {zero}"


def test_a_grant_request_for_another_chain_is_refused_rather_than_described_with_this_chain_s_tokens(
    net, project, deployer
) -> None:
    """A page describes a grant with what its node says of the contracts named (a token's decimals, its symbol):
    a grant request for another chain was described with this chain's token, whose decimals may not be the other
    chain's (100 tokens of 18 decimals here are 10**20 base units: 10**14 tokens of 6 decimals there)."""
    from keyscope import Policy, SessionKey, arg
    from keyscope.consent import WalletAddress
    from keyscope.errors import BadInputError

    token = project.NamedToken.deploy("Eighteen", "E18", 18, sender=deployer)
    owner = net.owner(WalletAddress(LocalSigner.generate().address))
    with pytest.warns(TargetWarning):  # no rule on the recipient: said (attack 431)
        request = owner.prepare_grant(
            SessionKey.generate(),
            [
                Policy.call(
                    token, "transfer(address to, uint256 amount)", rules=[arg("amount") <= 100 * 10**18]
                )
            ],
            valid_for=600,
        )
    elsewhere = [
        request.model_copy(update={"chain_id": net.chain_id + 1}),
        request.model_copy(update={"module": "0x" + "3c" * 20}),
        request.model_copy(update={"entry_point": "0x" + "3e" * 20}),
    ]
    with ConsentServer(net) as server:
        assert server.request_grant(request).description.chain_id == net.chain_id
        for other, what in zip(elsewhere, ("chain", "module", "EntryPoint"), strict=True):
            with pytest.raises(BadInputError) as refused:
                server.request_grant(other)
            assert f"the grant request is for the {what} " in str(refused.value)
            assert "prepare the grant on this server's network" in str(refused.value)


def test_a_request_s_argument_labels_cannot_hide_or_reorder_the_words(net, nft) -> None:
    """A rule given by offset carries the dapp's own label, unsigned, which names the argument in the function and
    its rule: a right-to-left override in it turned the rule around ("must be at most 5" read backwards), a
    newline printed a line of its own in a terminal."""
    params = _params(
        net.chain_id,
        {
            "type": "contract-call",
            "data": {
                "address": nft.address,
                "function": "safeMint(address)",
                "rules": [
                    {
                        "offset": 0,
                        "type": "address",
                        "name": "\u202eot\nDanger: none",
                        "op": "==",
                        "value": "0x" + "5e" * 20,
                    }
                ],
            },
        },
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        shown = _strings(_shown(server, consent.id))
    words = consent.description.permissions[0]
    # a label that is no name is not shown at all (attack 278), so nothing of it is left to hide or reorder words
    assert words.function == "safeMint(address)"
    assert words.rules[0].startswith("arg0 (address) must be ")
    assert not [text for text in shown if "\u202e" in text or "\n" in text]
    assert not any(line.startswith("Danger: none") for line in consent.description.lines())


def test_a_request_s_argument_label_cannot_write_the_page_s_own_words(net, nft) -> None:
    """A rule given by offset carries the dapp's own label (unsigned, any text), which named the argument in the
    function and in its rule: a label written as one of the page's own rules, "(this account)" included, made the
    one rule holding the recipient to the dapp's address read as two, the first holding it to the owner's account.
    A label the page shows is a name (as a signature's own argument names are), else none."""
    account = "0x" + "ac" * 20
    dapp = "0x" + "da" * 20
    params = _params(
        net.chain_id,
        {
            "type": "contract-call",
            "data": {
                "address": nft.address,
                "function": "safeMint(address)",
                "rules": [
                    {
                        "offset": 0,
                        "type": "address",
                        "name": f"to (address) must be {account} (this account); referrer",
                        "op": "==",
                        "value": dapp,
                    }
                ],
            },
        },
        address=account,
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        shown = _shown(server, consent.id)
    (words,) = shown["permissions"]
    assert not [text for text in _strings(shown) if "(this account)" in text], words
    assert words["function"] == "safeMint(address)"
    assert words["rules"] == [f"arg0 (address) must be {to_address(dapp)}"]


def test_a_request_s_argument_label_cannot_take_another_argument_s_name(net, nft) -> None:
    """A label that is a name still cannot be another argument's: the page's name of an unnamed one by position
    (``arg2`` on the first argument) or another rule's label (``to`` on the second and the third): the rule on one
    argument read as a rule on another."""
    da, db, dc = ("0x" + byte * 20 for byte in ("da", "db", "dc"))
    params = _params(
        net.chain_id,
        {
            "type": "contract-call",
            "data": {
                "address": nft.address,
                "function": "pay(address,address,address)",
                "rules": [
                    {"offset": 0, "type": "address", "name": "arg2", "op": "==", "value": da},
                    {"offset": 32, "type": "address", "name": "to", "op": "==", "value": db},
                    {"offset": 64, "type": "address", "name": "to", "op": "==", "value": dc},
                ],
            },
        },
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        (words,) = _shown(server, consent.id)["permissions"]
    assert words["function"] == "pay(address, address to, address)"
    assert words["rules"] == [
        f"arg0 (address) must be {to_address(da)}",
        f"to (address) must be {to_address(db)}",
        f"arg2 (address) must be {to_address(dc)}",
    ]


def test_a_signature_s_own_argument_names_cannot_swap_the_page_s_positional_ones() -> None:
    """Argument names are not part of the selector: a hand-made grant request's permission labelled
    ``pay(address arg1, address arg0)`` is ``pay(address,address)``, and its names, the page's own for unnamed
    arguments by position, put the rule on the first argument under the name of the second."""
    signature = "pay(address arg1, address arg0)"
    permission = Permission(
        target="0x" + "5e" * 20,
        selector=parse_signature(signature).selector,
        function=signature,
        rules=(
            Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(int("da" * 20, 16),)),
        ),
    )
    session = Session(
        session_key=LocalSigner.generate().address,
        valid_until=2_000_000_000,
        max_gas_cost=10**16,
        permissions=(permission,),
    )
    facts = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)
    (words,) = describe_session(session, account="0x" + "ac" * 20, chain_id=1, facts=facts).permissions
    assert words.function == "pay(address, address)"
    assert words.rules == (f"arg0 (address) must be {to_address('0x' + 'da' * 20)}",)


def test_held_decimals_out_of_range_amounts_near_2_256_and_values_read_exactly(
    net, project, deployer
) -> None:
    """What held: a token claiming 78 or 255 decimals is no token to the page (amounts in base units, as enforced);
    amounts near 2**256 in a ONE_OF list and a value limit of 1 ETH + 1 wei are written out to the last unit (no
    rounding shows less than is granted); a connect from another chain is refused."""
    for claimed in (78, 255):
        token = project.NamedToken.deploy("Big", "BIG", claimed, sender=deployer)
        params = _token_transfer(
            net.chain_id,
            token.address,
            {"op": "one of", "values": [str(2**256 - 1), str(2**255 - 1), "1"]},
            valueLimit=hex(10**18 + 1),
        )
        with ConsentServer(net) as server:
            consent = server.request_permissions(params)
            (words,) = _shown(server, consent.id)["permissions"]
            wrong = httpx.post(
                f"{server.url}/api/consent/{consent.id}/connect",
                json={"address": LocalSigner.generate().address, "chainId": net.chain_id + 1},
            )
        assert words["contract_label"] == "a contract that calls itself Big (BIG)"
        assert words["rules"][1] == (f"amount (uint256) must be one of: {2**256 - 1:,}, {2**255 - 1:,}, 1")
        assert words["value"] == "each call may send at most 1.000000000000000001 ETH"
        assert wrong.status_code == 400 and "switch the wallet's network" in wrong.json()["error"]


def test_a_periodic_allowance_says_its_periods_are_fixed_and_where_they_start(net, project, deployer) -> None:
    """An ERC-7715 allowance with a ``periodDuration`` read "At most 5 USDC per day": the module counts it in fixed
    periods from the session's start (``valid-after``, or the UTC epoch), so 5 just before a period ends and 5
    more just after are both allowed; the page now says so, with the start."""
    usdc = project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    start = 1_900_000_000
    params = _params(
        net.chain_id,
        {
            "type": "erc20-token-transfer",
            "data": {"address": usdc.address, "allowance": hex(5 * 10**6), "periodDuration": 86400},
        },
        policies=[{"type": "valid-after", "data": {"timestamp": start}}],
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        (limit,) = _shown(server, consent.id)["limits"]
    assert limit.startswith(
        "At most 5 USDC (5,000,000 base units at the 6 decimals the token reports now) per day, counted from all of:"
    )
    assert limit.endswith(
        "(fixed periods back to back from 2030-03-17 17:46:40 UTC, each with the whole amount: up to twice it may "
        "go within moments across a period's end)"
    )


def test_a_known_function_s_arguments_carry_their_standard_names_not_the_request_s(
    net, project, deployer
) -> None:
    """Argument names are not part of a selector: a request for ``transferFrom(address to, address from, uint256
    amount)`` (names swapped) is the ERC-20 ``transferFrom(from, to, amount)``, and its rule holding the first word
    to the account read "to (address) must be ... (this account)" while it holds ``from``: the tokens may go to anyone.
    A function known by selector now shows the standard names (the warnings already went by position)."""
    usdc = project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    account = "0x" + "ac" * 20
    params = _params(
        net.chain_id,
        {
            "type": "contract-call",
            "data": {
                "address": usdc.address,
                "function": "transferFrom(address to, address from, uint256 amount)",
                "rules": [{"arg": "to", "op": "==", "value": account}],
            },
        },
        address=account,
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params)
        shown = _shown(server, consent.id)
    (words,) = shown["permissions"]
    assert words["function"] == "transferFrom(address from, address to, uint256 amount)"
    assert words["rules"] == [f"from (address) must be {consent.description.account} (this account)"]
    cautions = [w["text"] for w in shown["warnings"] if w["level"] == "caution"]
    assert any("may send to ANY address" in text for text in cautions), cautions


def _token_transfer(
    chain_id: int, token: str, amount: dict[str, Any] | None = None, **data: Any
) -> list[Any]:
    """A request for ``transfer(to, amount)`` on ``token`` to one recipient, ``amount`` its rule on the amount (at
    most 100 units of a 6-decimal token by default), ``data`` the permission's other fields."""
    rule = amount if amount is not None else {"op": "<=", "value": str(100 * 10**6)}
    return _params(
        chain_id,
        {
            "type": "contract-call",
            "data": {
                "address": token,
                "function": "transfer(address to, uint256 amount)",
                **data,
                "rules": [{"arg": "to", "op": "==", "value": "0x" + "5e" * 20}, {"arg": "amount", **rule}],
            },
        },
    )


@pytest.mark.parametrize(
    ("symbol", "name", "named"),
    [
        ("USD\u0421", "USD Coin", "U+0421 CYRILLIC CAPITAL LETTER ES (read as C)"),
        ("USDC", "USD \u0421oin", "U+0421 CYRILLIC CAPITAL LETTER ES (read as C)"),
        ("\u0410\u0412\u0421", "ABC", "U+0410 CYRILLIC CAPITAL LETTER A (read as A)"),  # wholly Cyrillic
        ("\uff35SDC", "USD Coin", "U+FF35 FULLWIDTH LATIN CAPITAL LETTER U (read as U)"),
        ("USD\u13df", "USD Coin", "U+13DF CHEROKEE LETTER TLI (read as C)"),
    ],
    ids=["cyrillic-es-in-symbol", "cyrillic-es-in-name", "all-cyrillic", "fullwidth", "cherokee"],
)
def test_a_token_whose_symbol_or_name_passes_for_another_is_warned_about(
    net, project, deployer, symbol, name, named
) -> None:
    """A token is shown by its own claims: one calling itself ``USD`` + U+0421 (a Cyrillic ES) read as USDC on the
    page, every amount of the grant shown as so many "USDC", and nothing said. The page now names the lookalike
    code points in a danger warning."""
    token = project.NamedToken.deploy(name, symbol, 6, sender=deployer)
    with ConsentServer(net) as server:
        consent = server.request_permissions(_token_transfer(net.chain_id, token.address))
        shown = _shown(server, consent.id)
    dangers = [w for w in shown["warnings"] if w["level"] == "danger"]
    assert any(named in w["text"] and w["permission"] == 0 for w in dangers), dangers
    assert any(f"DANGER: {token.address}: the " in line for line in consent.description.lines())


@pytest.mark.parametrize(
    ("symbol", "name", "level"),
    [
        ("USDC", "USD Coin", None),
        ("\u5186", "\u65e5\u672c\u5186", None),
        ("USD\u0414", "USD Coin", "caution"),
    ],
    ids=["ascii", "wholly-cjk", "mixed-scripts-without-lookalikes"],
)
def test_a_token_in_one_script_without_lookalikes_reads_as_it_is(
    net, project, deployer, symbol, name, level
) -> None:
    """What held and what is only a caution: an ASCII or wholly non-Latin symbol with no letter passing for a Latin
    one raises nothing; letters of two scripts none of which passes for ASCII raise a caution."""
    token = project.NamedToken.deploy(name, symbol, 6, sender=deployer)
    with ConsentServer(net) as server:
        consent = server.request_permissions(_token_transfer(net.chain_id, token.address))
        shown = _shown(server, consent.id)
    claims = [w for w in shown["warnings"] if w["text"].startswith(f"{token.address}: the ")]
    assert [w["level"] for w in claims] == ([level] if level else []), claims
    assert symbol in shown["permissions"][0]["contract_label"]


def test_a_token_amount_shows_the_base_units_enforced_and_the_decimals_it_was_scaled_by(
    net, project, deployer
) -> None:
    """The module enforces a token amount in base units; the page showed it scaled by ``decimals()`` read once,
    when the request was described: "at most 100 USDC" only. A token that can change its decimals (an upgradeable
    proxy) or misstates them turns the same bound into another amount of tokens, and the owner never saw the number
    the module holds. Each token amount, in a rule and in a limit, now shows its base units and the decimals."""
    usdc = project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    params = _token_transfer(net.chain_id, usdc.address)
    params += _params(
        net.chain_id,
        {"type": "erc20-token-transfer", "data": {"address": usdc.address, "allowance": hex(250 * 10**6)}},
    )
    with ConsentServer(net) as server:
        consent = server.request_permissions(params[:1])
        (words,) = _shown(server, consent.id)["permissions"]
        allowance = server.request_permissions(params[1:])
        (limit,) = _shown(server, allowance.id)["limits"]
    assert words["rules"][1] == (
        "amount (uint256) must be at most 100 USDC (100,000,000 base units at the 6 decimals the token reports now)"
    )
    assert limit.startswith(
        "At most 250 USDC (250,000,000 base units at the 6 decimals the token reports now) over the session's life"
    )


def test_the_dashboard_shows_a_limit_as_enforced_not_in_the_dapp_s_unit(net, project, deployer) -> None:
    """A limit's ``unit``, ``decimals`` and ``name`` are the dapp's, not signed: a dapp granted an allowance of
    5,000,000 USDC (5 * 10**12 base units of a 6-decimal token) labelled with 12 decimals, and the owner's
    dashboard said "USDC allowance: 0 USDC of 5 USDC used per day, 5 USDC left". It now shows the base units the module
    counts, the token's amounts at the decimals the chain gives, and the dapp's label marked as the dapp's."""
    from keyscope import Policy, SessionKey
    from keyscope.store import open_store

    usdc = project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    owner = net.owner(LocalSigner.generate())
    enforced = 5_000_000 * 10**6
    with pytest.warns(TargetWarning):  # an allowance pays ANY address, by design: said (attack 431)
        grant = owner.grant(
            SessionKey.generate(),
            [Policy.erc20_allowance(usdc.address, enforced, "day", symbol="USDC", decimals=12)],
            valid_for=3600,
        )
    with open_store("memory://") as store:
        store.put_grant(grant)
        with ConsentServer(net, store=store) as server:
            answer = httpx.get(f"{server.url}/api/accounts/{grant.account}/sessions")
    assert answer.status_code == 200, answer.text
    (view,) = answer.json()["sessions"]
    (limit,) = [line for line in view["usage"] if line.startswith("limit ")]
    assert limit.startswith(
        "limit 0 ('USDC allowance', the dapp's unsigned label): 0 of 5,000,000,000,000 base units used per day, "
        "5,000,000,000,000 base units left (that is 0 of 5,000,000 USDC used, 5,000,000 USDC left, at the 6 decimals "
        "the token reports now)"
    ), limit
    assert " 5 USDC" not in limit


def test_the_session_report_shows_a_limit_as_enforced_not_in_the_dapp_s_unit(net, project, deployer) -> None:
    """The same lie in what ``owner.sessions()`` and ``keyscope sessions`` print (:class:`SessionReport`): a limit
    of 5 * 10**12 base units labelled with 12 decimals read "at most 5 USDC per day" as granted and "0 USDC of 5
    USDC used" judged on chain. The report now gives the base units the module counts and marks the label."""
    from keyscope import Policy, SessionKey
    from keyscope.report import StoreMarks, report_from_chain, report_from_store

    usdc = project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    owner = net.owner(LocalSigner.generate())
    with pytest.warns(TargetWarning):  # an allowance pays ANY address, by design: said (attack 431)
        grant = owner.grant(
            SessionKey.generate(),
            [Policy.erc20_allowance(usdc.address, 5 * 10**12, "day", symbol="USDC", decimals=12)],
            valid_for=3600,
        )
    label = "limit 0 ('USDC allowance', the dapp's unsigned label)"
    offline = report_from_store(grant, StoreMarks(revoked=False, enabled=False), now=grant.valid_after)
    periods = (
        f" (fixed periods back to back from {utc_text(grant.valid_after)}, each with the whole amount: up to twice it "
        "may go within moments across a period's end)"
    )
    assert offline.limits == [f"{label}: at most 5,000,000,000,000 base units per day{periods}"]
    assert offline.to_dict()["limits"][0]["text"] + periods == offline.limits[0]
    judged = report_from_chain(net, grant)
    assert judged.usage, "the limit was not read from the module"
    assert judged.limits[0].startswith(
        f"{label}: 0 of 5,000,000,000,000 base units used per day, 5,000,000,000,000 base units left"
    )
    assert not any("5 USDC" in line for line in judged.lines())


def test_the_session_report_also_gives_a_token_limit_at_the_decimals_the_chain_gives(
    net, project, deployer, harness, chain
) -> None:
    """A live session's token limit in ``owner.sessions()`` and ``keyscope sessions --node`` (:func:`list_sessions`,
    the command's listing) read in base units only: a listing from the store alone has no chain to ask. With a
    chain, the report also gives its amounts at the token's ``decimals()`` read there (as the dashboard does),
    keeping the base units the module enforces and the dapp's label marked as unsigned; ``--json`` gains them as
    ``scaled`` and leaves the other fields as they were. The grant's own (unsigned) 12 decimals are not used."""
    from keyscope import Policy, SessionKey
    from keyscope.cli.listing import list_sessions, session_lines
    from keyscope.store import open_store

    usdc = project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account)
    usdc.mint(owner.account, 10 * 10**6, sender=deployer)
    key = SessionKey.generate()
    with pytest.warns(TargetWarning):  # an allowance pays ANY address, by design: said (attack 431)
        grant = owner.grant(
            key,
            [Policy.erc20_allowance(usdc.address, 5 * 10**12, "day", symbol="USDC", decimals=12)],
            valid_for=3600,
        )
    session = net.session(grant, key, clock=lambda: chain.pending_timestamp)
    session.execute(usdc.address, "transfer(address,uint256)", KEY, 4_200_000).wait()
    enforced = (
        "limit 0 ('USDC allowance', the dapp's unsigned label): 4,200,000 of 5,000,000,000,000 base units used per "
        "day, 4,999,995,800,000 base units left"
    )
    scaled = (
        "that is 4.2 of 5,000,000 USDC used, 4,999,995.8 USDC left, at the 6 decimals the token reports now"
    )
    (report,) = owner.sessions()
    (line,) = report.limits
    assert line.startswith(f"{enforced} ({scaled}); resets "), line
    with open_store("memory://") as store:
        store.put_grant(grant)
        listing = list_sessions(net.chain, store)
        assert any(x.startswith(f"  limit   {enforced} ({scaled}); resets ") for x in session_lines(listing))
        ((row,),) = [judged["limits"] for judged in listing.to_dict()["sessions"]]
    assert row["text"] == report.usage[0].enforced_text() and row["text"].startswith(f"{enforced}; resets ")
    assert (row["amount"], row["used"], row["left"]) == (5 * 10**12, 4_200_000, 5 * 10**12 - 4_200_000)
    assert row["scaled"] == {
        "token": usdc.address,
        "symbol": "USDC",
        "decimals": 6,
        "amount": "5000000",
        "used": "4.2",
        "left": "4999995.8",
        "text": scaled,
    }
    json.dumps(row)


@pytest.mark.parametrize("token", ["reverts", "claims 255"])
def test_a_token_limit_whose_token_gives_no_decimals_stays_in_base_units_with_a_note(
    net, project, deployer, token
) -> None:
    """A token whose ``decimals()`` reverts (``NoDecimalsToken``) or answers no number of decimals (255) cannot
    scale a limit's amounts: the report shows the base units, says why, and raises nothing."""
    from keyscope import Policy, SessionKey
    from keyscope.cli.listing import list_sessions
    from keyscope.store import open_store

    if token == "reverts":
        contract = project.NoDecimalsToken.deploy("No Decimals", "NOD", sender=deployer)
    else:
        contract = project.NamedToken.deploy("Many Decimals", "NOD", 255, sender=deployer)
    owner = net.owner(LocalSigner.generate())
    with pytest.warns(TargetWarning):  # an allowance pays ANY address, by design: said (attack 431)
        grant = owner.grant(
            SessionKey.generate(),
            [Policy.erc20_allowance(contract.address, 5 * 10**12, decimals=12)],
            valid_for=3600,
        )
    note = f"the token {contract.address} gives no usable decimals(): base units only"
    (report,) = owner.sessions()
    assert report.limits == [
        f"limit 0 ('token allowance', the dapp's unsigned label): 0 of 5,000,000,000,000 base units used over the "
        f"session's life, 5,000,000,000,000 base units left ({note})"
    ]
    with open_store("memory://") as store:
        store.put_grant(grant)
        ((row,),) = [judged["limits"] for judged in list_sessions(net.chain, store).to_dict()["sessions"]]
    assert row["scaled"] == {
        "token": contract.address,
        "symbol": "NOD",
        "decimals": None,
        "amount": None,
        "used": None,
        "left": None,
        "text": note,
    }
