"""The sixteenth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it
let pass in the consent page's order, its look at each target's claims and its visible text, and in the salt and
the field order of the EIP-712 domains a session key and the owner sign in.

Pinned here, without a chain (a stub node stands for a token where one is read):

* the consent page (``keyscope.consent.describe.describe_session``): every danger before any caution, each target's
  claims read once, on the first permission calling it;
* the domains signed in (``keyscope.policy``, ``keyscope.session``, ``keyscope.signing_words``,
  ``keyscope.owner_signatures``): an application's salt kept, signed and shown, a salt the fields leave out
  refused, the account's empty salt last in the owner's nested typed data, the module's domain without a salt;
* the page's strings, in every tuple of the description, with a claim's reordering characters as code points;
* a collection's limit in base units with its symbol (``keyscope.token_facts.scale_limit``), and a token's
  ``symbol()`` and ``name()`` as read (``contract_facts``): each its own, cut at 40 characters, hidden characters
  as code points, an empty or malformed answer none;
* the newest known-function code: an approval bounded at the unlimited amount, ``owner.grant``'s lines
  (``targets.known_function_problems``) on a token without decimals, a collection and a dispatch, and the calls no
  rule holds (``passing_for.unheld_calls``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

import pytest
from eth_abi import encode as abi_encode
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain
from eth_account.messages import encode_typed_data
from pydantic import ValidationError

from keyscope.chain import Chain
from keyscope.consent.describe import Facts, GrantDescription, describe_session
from keyscope.errors import CallRevertedError
from keyscope.hexutil import keccak, to_address
from keyscope.known_functions import UNLIMITED, function_warnings, runs_calls
from keyscope.limits import Counter, usage_of
from keyscope.owner_signatures import nested_typed_data, owner_typed_data_hash
from keyscope.passing_for import declared_function, unheld_calls
from keyscope.policy import Policy, parse_signature
from keyscope.session import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    ArgType,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    TypedDataPermission,
)
from keyscope.signing_words import signing_lines
from keyscope.targets import known_function_problems
from keyscope.token_facts import ContractFacts, TokenFacts, contract_facts, scale_limit

ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
TOKEN = to_address("0x" + "70" * 20)
LOOKALIKE = to_address("0x" + "71" * 20)
TRANSFER = parse_signature("transfer(address,uint256)").selector
APPROVE = parse_signature("approve(address,uint256)").selector


def _session(**fields: Any) -> Session:
    base: dict[str, Any] = {"session_key": KEY, "valid_until": 2_000_000_000, "max_gas_cost": 10**15}
    return Session(**(base | fields))


# -- the consent page's order and its look at each target's claims (describe_session) -------------------------------


def _usdc_like(address: str) -> ContractFacts:
    """A token of 6 decimals whose symbol passes for USDC (a Cyrillic ES for the C) when it is ``LOOKALIKE``, USDC
    itself otherwise."""
    symbol = "USD\u0421" if address == LOOKALIKE else "USDC"
    return ContractFacts(address, True, TokenFacts(symbol, "USD Coin", 6))


def _page(session: Session) -> GrantDescription:
    return describe_session(
        session, account=ACCOUNT, chain_id=31337, facts=Facts(contract=_usdc_like, is_module=lambda a: None)
    )


def test_the_page_lists_every_danger_before_any_caution_each_level_in_the_permissions_order() -> None:
    """A caution of the first permission (a transfer to any recipient) and the dangers of the second (an approval
    of any spender, of any amount): the dangers come first, each level keeping the order it was found in."""
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=TOKEN, selector=APPROVE, function="approve(address,uint256)"),
        )
    )
    levels = [warning.level for warning in _page(session).warnings]
    assert "caution" in levels and "danger" in levels, levels
    assert levels == sorted(levels, key=lambda level: level != "danger"), levels
    dangers = [w for w in _page(session).warnings if w.level == "danger" and w.permission == 1]
    assert [w.text.split(": ", 1)[1][:25] for w in dangers] == [
        "may approve ANY spender: ",
        "may approve an UNLIMITED ",
    ], dangers


def test_each_target_s_claims_are_read_once_on_the_first_permission_that_calls_it() -> None:
    """Two permissions on a token whose symbol passes for USDC, after one on a true USDC: its lookalike symbol is a
    danger once, on the first permission calling it (index 1), not on the page's first permission, and not left out
    because it is not the first target."""
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=LOOKALIKE, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=LOOKALIKE, selector=APPROVE, function="approve(address,uint256)"),
        )
    )
    claims = [w for w in _page(session).warnings if w.text.startswith(f"{LOOKALIKE}: the symbol")]
    assert [(w.level, w.permission) for w in claims] == [("danger", 1)], _page(session).warnings


# -- the salt and the field order of the domains signed in ----------------------------------------------------------

SALT = "0x" + "5a" * 32
APP_DOMAIN = {"name": "App", "chainId": 1, "verifyingContract": "0x" + "ab" * 20, "salt": SALT}
ORDER = {"Order": [{"name": "amount", "type": "uint256"}]}


def _eth_account_digest(data: dict[str, Any]) -> bytes:
    """What eth-account signs for ``data`` (``eth_signTypedData_v4``'s JSON form): the reference beside keyscope."""
    signable = encode_typed_data(full_message=copy.deepcopy(data))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def test_an_application_domain_s_salt_is_taken_signed_and_shown_as_the_request_gives_it() -> None:
    """A typed-data permission of a domain with a salt: the salt is kept (not read as none), the domain the module
    checks signatures against is eth-account's hash of the whole domain with that salt, and the signing line names
    it, so the owner reads the domain the key signs in."""
    permission = Policy.typed_data(APP_DOMAIN, ORDER, "Order")
    assert permission.salt == bytes.fromhex("5a" * 32)
    assert permission.domain == APP_DOMAIN | {
        "verifyingContract": to_address(APP_DOMAIN["verifyingContract"])
    }
    assert permission.domain_separator == hash_domain(APP_DOMAIN)
    (line,) = signing_lines(_session(typed_data_permissions=(permission,)), lambda rule, kind: "")
    assert f"salt {SALT})" in line, line
    unsalted = Policy.typed_data({k: v for k, v in APP_DOMAIN.items() if k != "salt"}, ORDER, "Order")
    (line,) = signing_lines(_session(typed_data_permissions=(unsalted,)), lambda rule, kind: "")
    assert "salt" not in line, line


def test_a_salt_the_domain_fields_leave_out_is_refused() -> None:
    """A permission whose ``domain_fields`` leave out the salt signs in a domain without one: a salt set beside them
    would be shown and not signed."""
    fields = Policy.typed_data(APP_DOMAIN, ORDER, "Order").model_dump()
    with pytest.raises(
        ValidationError, match="the domain's salt is set but domain_fields 0x0d leaves it out"
    ):
        TypedDataPermission.model_validate(fields | {"domain_fields": 0x0D})


def test_the_owner_signs_typed_data_sign_with_the_account_s_empty_salt_after_its_verifying_contract() -> None:
    """The owner's nested typed data (ERC-7739) names the account's domain with the salt the account's
    ``eip712Domain()`` gives, none (a zero word), last; its digest, as eth-account encodes it, is the hash the
    account checks."""
    data = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
                {"name": "salt", "type": "bytes32"},
            ],
            **ORDER,
        },
        "primaryType": "Order",
        "domain": APP_DOMAIN,
        "message": {"amount": 7},
    }
    nested = nested_typed_data(data, account=ACCOUNT, chain_id=1)
    assert [field["name"] for field in nested["types"]["TypedDataSign"]][-2:] == ["verifyingContract", "salt"]
    assert nested["message"]["salt"] == "0x" + "00" * 32
    assert owner_typed_data_hash(data, account=ACCOUNT, chain_id=1) == _eth_account_digest(nested)


def test_the_grant_is_signed_in_the_module_s_domain_of_four_fields_without_a_salt() -> None:
    """The module's ``eip712Domain()`` has name, version, chain id and verifying contract (fields 0x0f), no salt:
    the owner's signature of a grant is checked in that domain."""
    module = to_address("0x" + "6d" * 20)
    domain = {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": 1, "verifyingContract": module}
    assert Session.domain_separator(1, module) == hash_domain(domain)
    session = _session(permissions=(Permission(target=TOKEN, selector=TRANSFER),))
    assert session.typed_data(ACCOUNT, 0, 1, module)["domain"] == domain


def test_a_token_s_claims_reach_the_page_with_their_reordering_characters_written_as_code_points() -> None:
    """A symbol carrying a right-to-left override (U+202E), as a contract's facts give it to the page: every string
    of the description, the warnings and the permissions' words in their tuples too, shows it as ``<U+202E>``, never
    the character that turns the words after it around."""

    def reversed_symbol(address: str) -> ContractFacts:
        return ContractFacts(address, True, TokenFacts("US\u202edc", "USD Coin", 6))

    session = _session(
        permissions=(Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),)
    )
    facts = Facts(contract=reversed_symbol, is_module=lambda address: None)
    described = describe_session(session, account=ACCOUNT, chain_id=31337, facts=facts).model_dump_json()
    assert "\u202e" not in described and "\\u202e" not in described.lower(), described
    assert "US<U+202E>dc" in described, described


# -- a limit's amounts at its token's decimals (scale_limit) ---------------------------------------------------------


def _token_limit(amount: int) -> Session:
    """A session whose one lifetime limit counts a transfer's amount on ``TOKEN``."""
    transfer = Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)")
    meter = Meter(permission=0, offset=32)
    return _session(
        permissions=(transfer,), limits=(Limit(kind=LimitKind.AMOUNT, amount=amount, meters=(meter,)),)
    )


def _usdc(address: str) -> ContractFacts:
    return ContractFacts(address, True, TokenFacts("USDC", "USD Coin", 6))


def test_a_collection_s_limit_stays_in_base_units_and_keeps_the_collection_s_symbol() -> None:
    """A limit on a collection's numbers (token ids, no amounts at any decimals, attack 371) is not scaled, and the
    collection's own symbol is still named beside its base units, as a token's that gives no decimals is."""
    session = _token_limit(5 * 10**6)
    (usage,) = usage_of(session, (Counter(left=4 * 10**6),), 1_900_000_000)

    def collection(address: str) -> ContractFacts:
        return ContractFacts(address, True, TokenFacts("NFT", "Demo NFT", 18), erc721=True)

    ids = scale_limit(usage, session, collection)
    assert ids is not None and (ids.symbol, ids.decimals, ids.amount) == ("NFT", None, None), ids
    usdc = scale_limit(usage, session, _usdc)
    assert usdc is not None and (usdc.symbol, usdc.amount, usdc.used, usdc.left) == ("USDC", "5", "1", "4"), (
        usdc
    )


# -- a token's text claims, read from a node (token_facts._text) ------------------------------------------------------


class _Node:
    """A node holding one contract with code, which answers ``symbol()``, ``name()`` and ``decimals()`` with the
    bytes given (reverting a question it has no answer to, and every other one)."""

    def __init__(self, **answers: bytes) -> None:
        self.answers = {keccak(f"{name}()".encode())[:4]: answer for name, answer in answers.items()}

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00"

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if data[:4] in self.answers:
            return self.answers[data[:4]]
        raise CallRevertedError("eth_call", to, b"", "execution reverted")


def _token_claims(symbol: bytes, name: bytes = b"") -> TokenFacts:
    answers = {"decimals": (6).to_bytes(32, "big"), "symbol": symbol} | ({"name": name} if name else {})
    token = contract_facts(cast(Chain, _Node(**answers)), TOKEN).token
    assert token is not None and token.decimals == 6, token
    return token


def test_a_token_s_symbol_and_name_are_its_own_answers_cut_to_40_characters_with_hidden_ones_as_code_points() -> (
    None
):
    """A token's ``symbol()`` and ``name()`` as the SDK reads them (an ABI string, or a bytes32 of old tokens): the
    name is ``name()``'s, not the symbol's; each is cut at 40 characters; a character that reorders or hides text
    is written as its code point in a string and in a bytes32 alike (the session report and ``owner.grant`` show
    the symbol as read); an empty string is no symbol; an answer that is neither (33 bytes, or two words that are no
    ABI string) is none."""
    long_name = "Wrapped " + "Very Long Token Name " * 3
    token = _token_claims(abi_encode(["string"], ["US\u202eDC"]), abi_encode(["string"], [long_name]))
    assert (token.symbol, token.name) == ("US<U+202E>DC", long_name[:40]), token
    token = _token_claims("OLD\u202e".encode().ljust(32, b"\x00"), abi_encode(["string"], ["Old Token"]))
    assert (token.symbol, token.name) == ("OLD<U+202E>", "Old Token"), token
    assert _token_claims(abi_encode(["string"], ["X" * 41])).symbol == "X" * 40
    assert _token_claims(abi_encode(["string"], [""])).symbol is None
    assert _token_claims(b"USDC".ljust(33, b"\x00")).symbol is None
    assert _token_claims(b"USDC".ljust(64, b"\x00")).symbol is None


# -- the newest known-function code: an approval's unlimited bound, a collection's table, owner.grant's lines -------------

PERMIT2_APPROVE = parse_signature("approve(address,address,uint160,uint48)").selector
MULTICALL = parse_signature("multicall(bytes[])").selector


def _held_spender(selector: bytes, spender: int, amount: int, bound: int) -> Permission:
    """A permission on ``selector`` holding its spender (at ``spender``) to one address and its amount (at
    ``amount``) to at most ``bound``."""
    return Permission(
        target=TOKEN,
        selector=selector,
        rules=(
            Rule(offset=spender, condition=Condition.EQUAL, values=(int(KEY, 16),), arg_type=ArgType.ADDRESS),
            Rule(offset=amount, condition=Condition.LESS_THAN_OR_EQUAL, values=(bound,)),
        ),
    )


def test_an_approval_bounded_at_the_unlimited_amount_is_an_unlimited_allowance() -> None:
    """``amount <= 2**255`` (ERC-20's unlimited) or ``<= 2**160 - 1`` (Permit2's, an allowance that never runs down)
    bounds nothing: each is an UNLIMITED allowance, a danger; one base unit less is a bound."""
    for selector, spender, amount, unlimited in (
        (APPROVE, 0, 32, UNLIMITED),
        (PERMIT2_APPROVE, 32, 64, 2**160 - 1),
    ):
        texts = [
            text for _, text in function_warnings(_held_spender(selector, spender, amount, unlimited), True)
        ]
        assert texts == ["may approve an UNLIMITED allowance: no rule caps the amount"], (
            selector.hex(),
            texts,
        )
        assert function_warnings(_held_spender(selector, spender, amount, unlimited - 1), True) == []


def test_owner_grant_s_lines_on_a_known_function_are_the_page_s_of_the_target_it_calls() -> None:
    """``owner.grant``'s lines on a function known by selector (``known_function_problems``): a transfer's uncapped
    amount only on a token that gives decimals (a contract giving none may not count amounts at all); ERC-721's
    warnings on a collection, not ERC-20's; none for a dispatch, whose danger ``unheld_calls`` gives once."""

    def shown(selector: bytes, contract: Callable[[str], ContractFacts], erc721: bool = False) -> list[str]:
        session = _session(permissions=(Permission(target=TOKEN, selector=selector),))
        return [
            line.split(": ", 1)[1].split(";")[0]
            for line in known_function_problems(session, 0, contract, erc721)
        ]

    any_address = "may send to ANY address: no rule holds the recipient to one you know"
    assert shown(TRANSFER, _usdc) == [any_address, "no rule caps the amount of one call"]
    no_decimals = lambda address: ContractFacts(address, True, TokenFacts("X", "X", None))  # noqa: E731
    assert shown(TRANSFER, no_decimals) == [any_address]
    collection = lambda address: ContractFacts(address, True, None, erc721=True)  # noqa: E731
    assert [line[:30] for line in shown(APPROVE, collection, erc721=True)] == [
        "may name ANY spender: no rule ",
        "this ERC-721 collection takes ",
    ]
    assert shown(MULTICALL, _usdc) == []
    multicall = Permission(target=TOKEN, selector=MULTICALL)
    assert unheld_calls(multicall, declared_function(multicall)) == [runs_calls(multicall)]


def test_a_function_known_by_no_table_whose_bytes_may_be_calls_is_an_unheld_call() -> None:
    """A function of the dapp's own name taking bytes (``execute(address,bytes)``): ``owner.grant`` and the report
    say no rule holds the calls it may run; a collection's ``approve`` (known, no bytes) gives no such line."""
    execute = Permission(
        target=TOKEN,
        selector=parse_signature("execute(address,bytes)").selector,
        function="execute(address,bytes)",
    )
    (line,) = unheld_calls(execute, declared_function(execute))
    assert line.startswith("takes bytes no rule reads, in `arg1` (bytes)"), line
    approve = Permission(target=TOKEN, selector=APPROVE)
    assert unheld_calls(approve, declared_function(approve, True), True) == []
