"""The eighth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in the Python code the owner reads after the grant (the dashboard's sessions and their usage), in the dangers
of an asset an allowance does not count, in a session written back as ERC-7715 requests, and in the policy
builder's input checks.

Pinned here, without a chain, and on ape's chain for ``owner.grant`` and the dashboard's listing:

* an ``increaseAllowance`` whose amount a rule bounds per call adds to the spender's allowance at every call, as
  often as the session's window allows: the consent page raises a danger on it, and ``owner.grant`` a
  ``TargetWarning``, unless a lifetime allowance counts its amount (attack 349);
* the dashboard lists a session with its status, its time left (none for a session without end), the operations on
  all its lanes and the gas they paid at 18 decimals, and its limits' use (a grant not enabled yet's too), as the
  module counts them; no grant of another chain; a session seen only in events with the status its events, window
  and record give; every chunk of the logs a provider serves in chunks (attack 350);
* a revocation of several sessions revokes each, and takes the owner's signature only;
* a limit's use keeps its period, its reset, the dapp's label marked as such, ETH at 18 decimals and a token's
  amounts at its decimals;
* an allowance's uncounted-asset danger (attack 336) is raised on what may move the asset and nothing else, across
  a token's limits, for every such permission in ``owner.grant``'s warnings, and a limit over two contracts is no
  token's allowance;
* a session's rules written back as requests keep their own names and types;
* the policy builder refuses a call limit that is no count and a total on a signed argument in its own words.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import pytest

from keyscope import Policy, SessionKey, arg
from keyscope.consent.describe import Facts, GrantDescription, describe_session
from keyscope.consent.tokens import ContractFacts
from keyscope.errors import BadInputError, TargetWarning
from keyscope.hexutil import to_address
from keyscope.owner import Owner
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.targets import warn_about_approvals_that_add_up
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.sdk import sdk_owner  # noqa: F401 (fixture)

TOKEN = to_address("0x" + "a0" * 20)
KEY = to_address("0x" + "ab" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)
SHOP = to_address("0x" + "5b" * 20)
FACTS = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)
INCREASE = "increaseAllowance(address spender,uint256 addedValue)"


def _session(*permissions: Permission, **fields: Any) -> Session:
    """A session of ``permissions`` for KEY, valid until 2033 with a gas cap of 0.01 ETH."""
    base: dict[str, Any] = {"session_key": KEY, "valid_until": 2_000_000_000, "max_gas_cost": 10**16}
    return Session(permissions=permissions, **(base | fields))


def _words(*permissions: Permission, **fields: Any) -> GrantDescription:
    """The consent page's words for a session of ``permissions`` (targets with code, no token, no module)."""
    return describe_session(_session(*permissions, **fields), account=ACCOUNT, chain_id=1, facts=FACTS)


def _adding_up(words: GrantDescription) -> list[str]:
    """The dangers the page raises of an approval whose calls add up."""
    return [w.text for w in words.warnings if w.level == "danger" and "adds to" in w.text]


def _bounded_increase() -> Permission:
    return Policy.call(TOKEN, INCREASE, [arg("spender") == SHOP, arg("addedValue") <= 100])


def test_an_increase_of_an_allowance_bounded_per_call_is_warned_of_as_adding_up() -> None:
    """Attack 349. A rule bounds one ``increaseAllowance`` call's amount, not the allowance: every call adds to it,
    as often as the window allows, and the allowance outlives the session. The page says so in red, naming the
    permission; a lifetime allowance counting the amount (``erc20_allowance`` without a period) bounds it, and
    then the page says nothing of it."""
    words = _words(_bounded_increase())
    (danger,) = _adding_up(words)
    assert danger.startswith(
        f"increaseAllowance(address spender, uint256 addedValue) on {TOKEN}: each call adds to the spender's "
        "allowance"
    ), danger
    assert "as often as the session's window allows" in danger, danger
    assert [w.permission for w in words.warnings if w.text == danger] == [0]
    assert _adding_up(_words(*Policy.erc20_allowance(TOKEN, 500))) == []
    approve = Policy.call(TOKEN, "approve(address spender,uint256 amount)", [arg(0) == SHOP, arg(1) <= 100])
    assert _adding_up(_words(approve)) == []  # approve sets the allowance: its calls do not add up


def test_the_older_increase_approval_adds_up_and_is_an_approval_as_increase_allowance_is() -> None:
    """``increaseApproval``, the name tokens built on OpenZeppelin's StandardToken before 2.0 give the same function,
    adds up as ``increaseAllowance`` does: bounded per call, it gets the same danger; unbounded, the UNLIMITED
    allowance's."""
    older = "increaseApproval(address spender,uint256 addedValue)"
    (danger,) = _adding_up(
        _words(Policy.call(TOKEN, older, [arg("spender") == SHOP, arg("addedValue") <= 100]))
    )
    assert danger.startswith(
        f"increaseApproval(address spender, uint256 addedValue) on {TOKEN}: each call adds to"
    )
    unbounded = _words(Policy.call(TOKEN, older, [arg("spender") == SHOP]))
    assert _adding_up(unbounded) == []
    assert any("UNLIMITED" in w.text for w in unbounded.warnings), unbounded.warnings


def test_an_increase_counted_only_per_period_or_on_another_word_still_adds_up() -> None:
    """A periodic total starts again each period while the allowances it counted stay (attack 260), and a total on
    the spender's word counts no amount: both leave the allowance growing, and the danger stays. An unbounded
    amount has its own danger (an UNLIMITED allowance), not this one."""

    def counted(period: int, offset: int) -> GrantDescription:
        total = Limit(
            kind=LimitKind.AMOUNT, amount=500, period=period, meters=(Meter(permission=0, offset=offset),)
        )
        return _words(_bounded_increase(), limits=(total,))

    assert _adding_up(counted(0, 32)) == []
    assert len(_adding_up(counted(86_400, 32))) == 1
    assert len(_adding_up(counted(0, 0))) == 1
    unbounded = _words(Policy.call(TOKEN, INCREASE, [arg("spender") == SHOP]))
    assert _adding_up(unbounded) == []
    assert any("UNLIMITED" in w.text for w in unbounded.warnings), unbounded.warnings


def test_a_program_granting_a_bounded_increase_is_warned_that_its_calls_add_up() -> None:
    """What ``owner.grant`` runs before it signs (one check serves the page and the warning)."""
    with pytest.warns(TargetWarning) as caught:
        warn_about_approvals_that_add_up(_session(_bounded_increase()))
    (said,) = [str(w.message) for w in caught]
    assert said.startswith(f"granting increaseAllowance(address,uint256) on {TOKEN}: each call adds to"), said
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        warn_about_approvals_that_add_up(_session(*Policy.erc20_allowance(TOKEN, 500)))


def test_owner_grant_warns_that_a_bounded_increase_adds_up(usdc: Any, owner: Owner) -> None:
    """Attack 349 through ``owner.grant``: an owner granting from a program sees no page."""
    bounded = Policy.call(usdc.address, INCREASE, [arg("spender") == SHOP, arg("addedValue") <= 100])
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), [bounded])
    assert [str(w.message) for w in caught if "each call adds to" in str(w.message)], caught.list


def test_the_dashboard_lists_a_session_s_state_usage_and_limits_as_the_chain_counts_them(
    net: Any, owner: Owner, nft: Any, tmp_path: Any
) -> None:
    """The dashboard's listing (``account_sessions``) of a live session with a lifetime call limit, whose key sent
    one operation: its state and time left, the operation and the gas it paid, in ETH at 18 decimals, and its
    limit's use as the module counts it, over the session's life; and of a later grant without end, not enabled
    yet, whose limit is shown unused (its first operation may enable it). A grant of another chain in the store is
    not this account's session here. (The lanes, the status from events alone and the logs' reading are pinned
    without a chain, below.)"""
    from keyscope.consent.sessions import account_sessions
    from keyscope.store import open_store
    from keyscope.token_facts import format_amount

    key = SessionKey.generate()
    grant = owner.grant(
        key, [Policy.call(nft, "safeMint(address to)", calls=3)], valid_for=3600, onchain=True
    )
    receipt = net.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait()
    pending = owner.grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)", calls=2)], never_expires=True
    )
    store = open_store(f"sqlite:///{tmp_path / 'grants.db'}")
    other = owner.grant(SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], valid_for=600)
    elsewhere = other.model_copy(update={"chain_id": other.chain_id + 1})
    for kept in (grant, pending, elsewhere):
        store.put_grant(kept)
    later, live = account_sessions(net, owner.account, store=store)  # newest first; none of another chain
    assert (later.status, later.seconds_left, later.enabled_on_chain) == ("not yet enabled", None, False)
    assert later.usage == ("No operations sent yet", later.usage[1])
    assert later.usage[1].endswith(": 0 of 2 calls used over the session's life, 2 calls left"), later.usage
    assert live.session_id == "0x" + bytes(grant.session_id).hex()
    assert live.status == "active" and live.in_store and live.enabled_on_chain
    assert live.seconds_left is not None and 0 < live.seconds_left <= 3600
    paid = format_amount(receipt.actual_gas_cost, 18, "ETH")
    assert live.usage[:2] == ("1 operation sent", f"{paid} paid in gas (by the account or its paymaster)")
    (calls,) = live.usage[2:]
    assert calls.endswith(": 1 of 3 calls used over the session's life, 2 calls left"), calls


class _Kind:
    """An account kind whose nonce key is its lane (32 lane bits, as keyscope's account)."""

    lane_bits = 32

    @staticmethod
    def nonce_key(module: str | None, lane: int = 0) -> int:
        return lane


class _Client:
    """A provider answering ``eth_getLogs`` from ``logs`` (each with its block) by their first topic, refusing
    ranges over ``most`` blocks as public RPCs do."""

    def __init__(self, logs: list[tuple[int, dict[str, Any]]], latest: int, most: int | None = None) -> None:
        self.logs, self.latest, self.most = logs, latest, most

    def request(self, method: str, params: list[Any]) -> Any:
        from keyscope.rpc import JsonRpcError

        if method == "eth_blockNumber":
            return hex(self.latest)
        (query,) = params
        low, high = int(query["fromBlock"], 16), self.latest
        if query["toBlock"] != "latest":
            high = int(query["toBlock"], 16)
        if self.most is not None and high - low + 1 > self.most:
            raise JsonRpcError(method, -32005, "query returned more than 10000 results")
        wanted = query["topics"][0]
        return [
            log
            for block, log in self.logs
            if low <= block <= high and log["topics"][0] in (wanted if isinstance(wanted, list) else [wanted])
        ]


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def test_the_dashboard_counts_a_session_s_operations_on_all_its_lanes_and_the_gas_they_paid() -> None:
    """``_usage``: the operations on the 16 lanes from the session's base (the first 4 bytes of its id), reverted
    ones said, the gas in ETH at 18 decimals; none on another lane."""
    from keyscope.consent.sessions import OperationTotals, _usage

    session_id = bytes.fromhex("00001000") + bytes(28)  # base lane 4096
    operations = {
        4096: OperationTotals(2, 1, 3 * 10**15),
        4096 + 15: OperationTotals(1, 0, 10**15),
        4096 + 16: OperationTotals(5, 0, 10**18),  # past its lanes
        0: OperationTotals(7, 0, 10**18),  # lane 0 of the account: another session's
    }
    assert _usage(_Kind(), SHOP, session_id, operations) == (  # type: ignore[arg-type]
        "3 operations sent (1 of them reverted in their calls)",
        "0.004 ETH paid in gas (by the account or its paymaster)",
    )
    assert _usage(_Kind(), SHOP, session_id, {}) == ("No operations sent yet",)  # type: ignore[arg-type]


def test_the_dashboard_reads_enabled_revoked_and_operations_from_the_logs_in_chunks() -> None:
    """``module_events`` and ``operations_by_nonce_key`` on a provider that refuses whole-history queries: every
    chunk is read (an event in the chunks' last block as in their first), a revocation names the session by its id
    (the third topic), an operation's nonce key is its nonce's top 192 bits."""
    from keyscope.consent.sessions import module_events, operations_by_nonce_key
    from keyscope.entrypoint import USER_OPERATION_EVENT_TOPIC
    from keyscope.module import SESSION_ENABLED, SESSION_REVOKED

    account_topic = "0x" + "00" * 12 + ACCOUNT[2:].lower()
    first, second = bytes(range(32)), bytes(range(1, 33))
    enabled = {
        "topics": [
            "0x" + SESSION_ENABLED.hex(),
            account_topic,
            "0x" + first.hex(),
            "0x" + "00" * 12 + KEY[2:],
        ],
        "data": _word(100) + _word(200)[2:],
    }
    revoked = {"topics": ["0x" + SESSION_REVOKED.hex(), account_topic, "0x" + second.hex()], "data": "0x"}
    operation = {
        "topics": ["0x" + USER_OPERATION_EVENT_TOPIC.hex(), _word(1), account_topic, _word(0)],
        "data": _word((7 << 64) + 3) + _word(1)[2:] + _word(5)[2:] + _word(21_000)[2:],
    }
    logs = [(9_999, enabled), (10_000, revoked), (10_001, operation), (19_999, operation)]
    chain = SimpleNamespace(client=_Client(logs, latest=25_000, most=10_000))
    found, gone, invalidations = module_events(chain, SHOP, ACCOUNT)  # type: ignore[arg-type]
    assert [(e.session_id, e.session_key, e.valid_after, e.valid_until) for e in found] == [
        (first, KEY, 100, 200)
    ]
    assert (gone, invalidations) == ({second}, 0)
    totals = operations_by_nonce_key(chain, SHOP, ACCOUNT)  # type: ignore[arg-type]
    assert {key: (t.count, t.failed, t.gas_cost) for key, t in totals.items()} == {7: (2, 0, 10)}


@pytest.mark.parametrize(
    ("revoked", "active", "now", "status"),
    [
        (True, False, 150, "revoked"),
        (False, True, 200, "active"),  # the window's last second
        (False, True, 201, "expired"),
        (False, True, 100, "active"),  # its first second
        (False, True, 99, "not yet valid"),
        (False, False, 150, "invalidated"),
    ],
)
def test_a_session_seen_only_in_events_has_the_status_of_its_events_window_and_record(
    revoked: bool, active: bool, now: int, status: str
) -> None:
    """``_status_from_events``: revoked by its event, expired only past its last second, not yet valid only before
    its first, invalidated when the module no longer holds it active."""
    from keyscope.consent.sessions import _Enabled, _status_from_events

    session_id = bytes(range(32))
    event = _Enabled(session_id, KEY, 100, 200)
    answer = (1 if active else 0).to_bytes(32, "big")
    endpoints = SimpleNamespace(module=SHOP, chain=SimpleNamespace(call=lambda to, data: answer))
    gone = {session_id} if revoked else set()
    assert _status_from_events(endpoints, ACCOUNT, event, gone, now) == status  # type: ignore[arg-type]


def test_a_limit_s_use_is_shown_as_the_module_counts_it_with_its_period_and_a_token_at_its_decimals() -> None:
    """``limit_usage_words`` on ``usage_of``'s rows: a daily USDC allowance read in its second day (the first day's
    use is gone), its base units then the token's amounts at the 6 decimals the chain reports, and when it resets;
    a native allowance's ETH at 18 decimals (a twentieth as such, not as half); a limit's name marked as the dapp's unsigned label."""
    from keyscope.consent.describe import limit_usage_words
    from keyscope.limits import Counter, usage_of
    from keyscope.policy import Limits
    from keyscope.token_facts import TokenFacts

    token = Facts(
        contract=lambda address: ContractFacts(address, True, TokenFacts("USDC", "USD Coin", 6)),
        is_module=lambda address: None,
    )
    allowance = Policy.erc20_allowance(TOKEN, 5 * 10**6, "day", symbol="USDC")
    session = _session(
        *allowance,
        Policy.call(SHOP, "pay()", value_limit=10**18),
        valid_after=1_000,
        limits=(Limits.native(10**18),),
    )
    day_two = 1_000 + 86_400 + 5
    native, daily = usage_of(
        session, (Counter(left=10**18 - 5 * 10**16 + 1), Counter(left=10**6, period=0)), day_two
    )
    assert limit_usage_words(daily, session, token) == (
        "limit 1 ('USDC allowance', the dapp's unsigned label): 0 of 5,000,000 base units used per day, "
        "5,000,000 base units left (that is 0 of 5 USDC used, 5 USDC left, at the 6 decimals the token reports "
        "now); resets 1970-01-03 00:16:40 UTC (fixed periods back to back from 1970-01-01 00:16:40 UTC, each with "
        "the whole amount: up to twice it may go within moments across a period's end)"
    )
    assert limit_usage_words(native, session, token) == (
        "limit 0 ('native allowance', the dapp's unsigned label): 0.049999999999999999 of 1 ETH used over the "
        "session's life, 0.950000000000000001 ETH left"
    )


def test_a_revocation_of_several_sessions_revokes_each_and_takes_only_the_owner_s_signature(
    net: Any, owner: Owner, nft: Any
) -> None:
    """``prepare_revocation`` of two sessions: one operation calling ``revokeSession`` for each (not the first only),
    named in its words; its ``finish`` refuses a signature another key made before anything is sent, naming the
    address it recovers to."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from keyscope.consent.sessions import prepare_revocation
    from keyscope.errors import BadInputError
    from keyscope.execution import decode_execute
    from keyscope.module import revoke_session_data
    from keyscope.signing import LocalSigner

    grants = [  # the first creates the account
        owner.grant(SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], onchain=onchain)
        for onchain in (True, False)
    ]
    ids = [bytes(g.session_id) for g in grants]
    prepared = prepare_revocation(net, owner.account, ids)
    calls = decode_execute(prepared.op.call_data).calls
    assert [(c.target, c.data) for c in calls] == [(net.module, revoke_session_data(i)) for i in ids]
    assert prepared.what == "revoke session " + ", ".join("0x" + i.hex() for i in ids)
    stranger = LocalSigner.generate()
    forged = Account.sign_message(
        encode_defunct(primitive=prepared.user_op_hash), stranger.private_key
    ).signature
    with pytest.raises(BadInputError, match=f"recovers to {stranger.address}, not to the connected address"):
        prepared.finish(forged, signer=owner.signer.address)


def _uncounted(words: GrantDescription) -> list[tuple[int | None, str]]:
    """The dangers the page raises of an asset an allowance does not count (attack 336), by permission."""
    return [
        (w.permission, w.text) for w in words.warnings if w.level == "danger" and "does not count" in w.text
    ]


def test_an_allowance_s_uncounted_asset_danger_is_raised_on_what_may_move_it_and_nothing_else() -> None:
    """``uncounted_assets``: a native allowance counting one permission, beside a call that may carry ETH (warned of)
    and one that may carry none (not warned of: it sends no ETH); a token's two allowances, one on its transfers, one on
    its approvals, count the token's three permissions together, so none is warned of (the first alone leaves the
    approval uncounted)."""
    native = Limit(
        kind=LimitKind.NATIVE, amount=10**18, meters=(Meter(permission=0),), name="native allowance"
    )
    pays = Policy.call(SHOP, "pay()", value_limit=10**17)
    words = _words(
        pays, Policy.call(KEY, "tip()", value_limit=1), Policy.call(KEY, "ping()"), limits=(native,)
    )
    assert [(index, text.split(":")[0]) for index, text in _uncounted(words)] == [(1, f"tip() on {KEY}")]
    functions = (
        "transfer(address,uint256)",
        "transferFrom(address,address,uint256)",
        "approve(address,uint256)",
    )
    token = [Policy.call(TOKEN, function) for function in functions]
    moves = Limit(
        kind=LimitKind.AMOUNT,
        amount=5,
        meters=(Meter(permission=0, offset=32), Meter(permission=1, offset=64)),
    )
    approves = Limit(kind=LimitKind.AMOUNT, amount=5, meters=(Meter(permission=2, offset=32),))
    assert _uncounted(_words(*token, limits=(moves, approves))) == []
    assert [index for index, _ in _uncounted(_words(*token, limits=(moves,)))] == [2]


def test_a_program_is_warned_of_every_permission_an_allowance_does_not_count() -> None:
    """``warn_about_uncounted_assets`` (what ``owner.grant`` runs): one warning per uncounted permission, not the
    first only."""
    from keyscope.targets import warn_about_uncounted_assets

    around = [Policy.call(TOKEN, "burn(uint256 amount)"), Policy.call(TOKEN, "send(address,uint256,bytes)")]
    with pytest.warns(TargetWarning) as caught:
        warn_about_uncounted_assets(_session(*Policy.erc20_allowance(TOKEN, 5), *around))
    said = [str(w.message) for w in caught if "does not count its calls" in str(w.message)]
    assert [text.split(":")[0] for text in said] == [f"granting {p.label}" for p in around]


def test_a_limit_counting_two_contracts_amounts_is_no_token_s_allowance() -> None:
    """``limit_token_address``: a total over ``transfer`` on two contracts counts base units of two tokens, so it is
    neither's allowance (its amounts are not shown at either token's decimals, nor judged as its allowance)."""
    from keyscope.token_facts import limit_token_address

    transfers = [Policy.call(target, "transfer(address,uint256)") for target in (TOKEN, SHOP)]
    both = Limit(
        kind=LimitKind.AMOUNT,
        amount=5,
        meters=(Meter(permission=0, offset=32), Meter(permission=1, offset=32)),
    )
    one = Limit(kind=LimitKind.AMOUNT, amount=5, meters=(Meter(permission=0, offset=32),))
    session = _session(*transfers, limits=(both, one))
    assert [limit_token_address(limit, session) for limit in session.limits] == [None, TOKEN]


def test_a_session_s_rules_are_written_as_requests_with_their_own_names_and_types() -> None:
    """``requests_for_session`` and ``_write_rule``: a rule named otherwise than the argument's other rule keeps its
    name and is written by offset; a rule typed otherwise than its argument (a ``uint8`` rule on a ``uint256``) is
    written with its own type, and the requests read back the session they were written from."""
    from keyscope.erc7715 import requests_for_session
    from keyscope.policy import parse_signature
    from keyscope.session import ArgType, Condition, Rule

    def rule(op: Condition, value: int, arg_type: int, name: str) -> Rule:
        return Rule(condition=int(op), offset=32, arg_type=arg_type, values=(value,), name=name)

    def written(*rules: Rule) -> list[dict[str, Any]]:
        selector = parse_signature("transfer(address,uint256)").selector
        permission = Permission(
            target=TOKEN, selector=selector, function="transfer(address,uint256)", rules=rules
        )
        (request,) = requests_for_session(_session(permission), chain_id=1)
        entries: list[dict[str, Any]] = request.permission.data["rules"]
        return entries

    most = rule(Condition.LESS_THAN_OR_EQUAL, 5, ArgType.UINT256, "most")
    least = rule(Condition.GREATER_THAN_OR_EQUAL, 1, ArgType.UINT256, "least")
    assert written(most, least) == [
        {"offset": 32, "type": "uint256", "name": "most", "op": "<=", "value": "0x5"},
        {"arg": "least", "op": ">=", "value": "0x1"},
    ]
    assert written(rule(Condition.LESS_THAN_OR_EQUAL, 5, ArgType.UINT8, "amount")) == [
        {"offset": 32, "type": "uint8", "name": "amount", "op": "<=", "value": "0x5"}
    ]


@pytest.mark.parametrize("calls", [-1, True, 2.0])
def test_a_call_limit_that_is_no_count_is_refused_naming_it(calls: Any) -> None:
    """``calls=`` takes a count of calls: a negative one, a bool and a float are refused by the builder's own
    words, naming what was given, not by a field check's."""
    with pytest.raises(BadInputError) as refused:
        Policy.call(TOKEN, "transfer(address,uint256)", calls=calls)
    assert str(refused.value) == f"calls= is the most calls over the session's life, a count; got {calls!r}"


def test_a_total_on_a_signed_argument_is_refused_naming_the_unsigned_ones() -> None:
    """``TotalSpec.resolve``: a total adds unsigned words; an ``int256``'s negative values are words far above what
    they show, so the builder refuses a total on it and names the function's unsigned arguments."""
    with pytest.raises(BadInputError) as refused:
        Policy.call(SHOP, "move(int256 delta,uint256 amount)", totals=[arg("delta").total(100)])
    assert str(refused.value) == (
        "argument `delta` of move(int256,uint256) is of type int256: totals add unsigned integers (uintN) only; "
        "give an unsigned integer argument instead (amount)"
    )
