"""ERC-7715 requests against their meaning: the session a ``wallet_grantPermissions`` call becomes allows no more
than its requests say (targets, functions, argument rules, value per call, allowances and their periods, the
window), what the responses claim is exactly what was granted, and, on chain, the module's verdict on operations
just inside and just outside a request is the request's own."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keyscope import SessionGrant, SessionKey
from keyscope.checker import VALUE_LIMIT_MAX, PolicyChecker
from keyscope.clock import LAST_READABLE_TIME
from keyscope.erc7715 import PermissionRequest, plan_from_requests, responses_for
from keyscope.errors import BadInputError, SessionError
from keyscope.execution import Call
from keyscope.hexutil import keccak, to_address
from keyscope.session import LimitKind, Session
from support.strategies import addresses

ACCOUNT = to_address("0x" + "ac" * 20)
MODULE = to_address("0x" + "11" * 20)
KEY = to_address("0x" + "5e" * 20)
EXPIRY = 1_900_000_000
NOW = 1_800_000_000

SIGNATURE = "pay(address to, uint256 amount, int32 delta)"
CANONICAL = "pay(address,uint256,int32)"
SELECTOR = keccak(CANONICAL.encode())[:4]
TYPES = ("address", "uint256", "int32")
NAMES = ("to", "amount", "delta")
BOUNDS = {"uint256": (0, 2**256 - 1), "int32": (-(2**31), 2**31 - 1)}
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _request(
    permission: dict[str, Any], policies: list[dict[str, Any]] | None = None, **over: Any
) -> dict[str, Any]:
    return {
        "chainId": "0x7a69",
        "expiry": EXPIRY,
        "signer": {"type": "account", "data": {"address": KEY}},
        "permission": permission,
        "policies": policies or [],
        **over,
    }


def _spelled(draw: st.DrawFn, number: int) -> Any:
    """``number`` as a dapp may write it: a JSON number, decimal text or 0x-hex (a leading '-' for negatives)."""
    sign, magnitude = ("-" if number < 0 else ""), abs(number)
    return draw(
        st.sampled_from(
            [
                number,
                f"{sign}{magnitude}",
                f"{sign}{hex(magnitude)}",
                f"{sign}0X{magnitude:X}",
                f"{sign}00{magnitude}",
            ]
        )
    )


ADDRESS_POOL = [to_address("0x" + f"{i:02x}" * 20) for i in (0x21, 0x42, 0x63)]


@st.composite
def rule_and_meaning(draw: st.DrawFn) -> tuple[dict[str, Any], int, Callable[[Any], bool], list[Any]]:
    """A rule on one argument of ``pay``, the argument's index, what it means (a predicate on the argument's value)
    and the values it names (to probe just inside and just outside)."""
    index = draw(st.integers(0, 2))
    kind = TYPES[index]
    if kind == "address":
        op = draw(st.sampled_from(["==", "!=", "one of"]))
        if op == "one of":
            values = draw(st.lists(st.sampled_from(ADDRESS_POOL), min_size=1, max_size=3, unique=True))
            return {"arg": NAMES[index], "op": op, "values": values}, index, lambda v: v in values, values
        value = draw(st.sampled_from(ADDRESS_POOL))
        return (
            {"arg": NAMES[index], "op": op, "value": value},
            index,
            lambda v: OPS[op](v, value),
            [value],
        )
    low, high = BOUNDS[kind]
    number = st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, 1, -1 if low < 0 else 2]))
    op = draw(st.sampled_from([*OPS, "in", "one of"]))
    if op == "in":
        ends = sorted(draw(st.tuples(number, number)))
        spelled = [_spelled(draw, n) for n in ends]
        return (
            {"arg": NAMES[index], "op": op, "values": spelled},
            index,
            lambda v: ends[0] <= v <= ends[1],
            ends,
        )
    if op == "one of":
        values = draw(st.lists(number, min_size=1, max_size=4, unique=True))
        return (
            {"arg": NAMES[index], "op": op, "values": [_spelled(draw, n) for n in values]},
            index,
            lambda v: v in values,
            values,
        )
    value = draw(number)
    return (
        {"arg": NAMES[index], "op": op, "value": _spelled(draw, value)},
        index,
        lambda v: OPS[op](v, value),
        [value],
    )


def _checker(session: Session) -> PolicyChecker:
    return PolicyChecker(session, ACCOUNT, MODULE)


def _allowed(session: Session, call: Call, at: int = NOW) -> bool:
    try:
        _checker(session).check_calls(call, now=at, at=at)
    except SessionError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# contract-call: the calls granted are the calls asked
# --------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.data(), target=addresses, value_limit=st.integers(0, 2**96))
def test_a_contract_call_request_grants_exactly_the_calls_it_describes(
    data: st.DataObject, target: str, value_limit: int
) -> None:
    assume(
        target not in (ACCOUNT, MODULE, "0x" + "00" * 20)
    )  # never callable by a session (attacks 1, 2, 86)
    rules = data.draw(st.lists(rule_and_meaning(), min_size=0, max_size=3))
    permission = {
        "type": "contract-call",
        "data": {
            "address": target,
            "function": SIGNATURE,
            "valueLimit": data.draw(st.sampled_from([value_limit, str(value_limit), hex(value_limit)])),
            "rules": [rule for rule, *_ in rules],
        },
    }
    session = plan_from_requests([_request(permission)]).session(max_gas_cost=10**16, salt=0)
    assert [(p.target, p.selector) for p in session.permissions] == [(target, SELECTOR)]
    assert session.permissions[0].value_limit == value_limit
    assert (session.valid_after, session.valid_until, session.limits) == (0, EXPIRY - 1, ())

    # probe each argument at the values the rules name, one step either side, and anywhere
    def probe(kind: str) -> st.SearchStrategy[Any]:
        if kind == "address":
            return st.sampled_from([*ADDRESS_POOL, to_address("0x" + "99" * 20)])
        low, high = BOUNDS[kind]
        named = [v + step for _, i, _, vs in rules if TYPES[i] == kind for v in vs for step in (-1, 0, 1)]
        return st.one_of(
            st.integers(low, high), st.sampled_from([low, high, *[n for n in named if low <= n <= high]])
        )

    args = [data.draw(probe(kind)) for kind in TYPES]
    value = data.draw(st.sampled_from([0, value_limit, value_limit + 1, max(value_limit - 1, 0)]))
    other = data.draw(st.sampled_from(["none", "target", "selector"]))
    call_target = to_address("0x" + "77" * 20) if other == "target" else target
    assume(call_target != target or other != "target")
    selector = keccak(b"pay(address,uint256,int64)")[:4] if other == "selector" else SELECTOR
    call = Call.of(call_target, value, selector + encode(list(TYPES), args))

    meant = (
        other == "none"
        and value <= min(value_limit, VALUE_LIMIT_MAX)  # valueLimit is stored saturated (79 billion ether)
        and all(holds(args[index]) for _, index, holds, _ in rules)
    )
    assert _allowed(session, call) == meant, (rules, args, value, other)


@settings(max_examples=60, deadline=None)
@given(
    expiry=st.one_of(st.just(0), st.integers(2, LAST_READABLE_TIME)),
    start=st.one_of(st.none(), st.integers(0, LAST_READABLE_TIME)),
)
def test_the_window_is_the_requests_expiry_and_start_to_the_second(expiry: int, start: int | None) -> None:
    """``expiry`` is the second by which the session must have ended: the module accepts an operation up to
    ``expiry - 1`` (the EntryPoint's ``validUntil``, which is inclusive) and not at ``expiry``; 0 asks for no end; a
    ``valid-after`` timestamp is the first second."""
    assume(start is None or expiry == 0 or start < expiry - 1)
    policies = [] if start is None else [{"type": "valid-after", "data": {"timestamp": start}}]
    shop = to_address("0x" + "5b" * 20)
    transfer = {"type": "contract-call", "data": {"address": shop, "selector": "0x00000000"}}
    session = plan_from_requests([_request(transfer, policies, expiry=expiry)]).session(
        max_gas_cost=10**16, salt=0
    )
    assert (session.valid_after, session.valid_until) == (start or 0, expiry - 1 if expiry else 0)
    call = Call.of(shop, 0, b"")
    if expiry:
        assert _allowed(session, call, expiry - 1)
        assert not _allowed(session, call, expiry)
    else:
        assert _allowed(session, call, LAST_READABLE_TIME)
    if start:
        assert _allowed(session, call, start)
        assert not _allowed(session, call, start - 1)


# --------------------------------------------------------------------------------------------------
# allowances: the amounts and periods asked
# --------------------------------------------------------------------------------------------------

TOKEN = to_address("0x" + "a0" * 20)
TRANSFER = keccak(b"transfer(address,uint256)")[:4]
TRANSFER_FROM = keccak(b"transferFrom(address,address,uint256)")[:4]
APPROVE = keccak(b"approve(address,uint256)")[:4]
INCREASE = keccak(b"increaseAllowance(address,uint256)")[:4]


@settings(max_examples=120, deadline=None)
@given(
    data=st.data(),
    allowance=st.integers(0, 2**128),
    period=st.one_of(st.none(), st.integers(60, 2**32 - 1)),
    start=st.one_of(st.none(), st.integers(1, 1_700_000_000)),
)
def test_an_erc20_request_moves_no_more_of_its_token_than_its_allowance_per_period(
    data: st.DataObject, allowance: int, period: int | None, start: int | None
) -> None:
    erc20: dict[str, Any] = {
        "address": TOKEN,
        "allowance": data.draw(st.sampled_from([hex(allowance), str(allowance), allowance])),
    }
    if period:
        erc20["periodDuration"] = period
    policies = [] if start is None else [{"type": "valid-after", "data": {"timestamp": start}}]
    session = plan_from_requests(
        [_request({"type": "erc20-token-transfer", "data": erc20}, policies, expiry=0)]
    ).session(max_gas_cost=10**16, salt=0)
    # the token's transfers (and, over the session's life only, its approvals): nothing else, no value
    granted = [(p.target, p.selector, p.value_limit, p.rules) for p in session.permissions]
    expected = [TRANSFER, TRANSFER_FROM] + ([] if period else [APPROVE, INCREASE])
    assert granted == [(TOKEN, s, 0, ()) for s in expected]
    # one budget: the allowance, per the period asked, counting the amount word of each of those calls
    [budget] = session.limits
    assert (budget.op, budget.amount, budget.period) == (LimitKind.AMOUNT, allowance, period or 0)
    assert [(m.permission, m.offset) for m in budget.meters] == [
        (0, 32),
        (1, 64),
        *([] if period else [(2, 32), (3, 32)]),
    ]
    assert session.valid_after == (start or 0)

    # spent in one period: the module's count (through the checker) refuses the first amount past the allowance
    checker = _checker(session)
    at = (start or 0) + (period or 10**6) * data.draw(st.integers(1, 5)) + 1
    counters = None
    spent = 0
    to = to_address("0x" + "5b" * 20)
    for _ in range(data.draw(st.integers(1, 4))):
        amount = data.draw(st.sampled_from([allowance - spent, allowance - spent + 1, 0, 1, allowance // 2]))
        assume(0 <= amount < 2**256)
        kind = data.draw(st.sampled_from(["transfer", "transferFrom"]))
        call_data = (
            TRANSFER + encode(["address", "uint256"], [to, amount])
            if kind == "transfer"
            else TRANSFER_FROM + encode(["address", "address", "uint256"], [ACCOUNT, to, amount])
        )
        try:
            result = checker.check_calls(Call.of(TOKEN, 0, call_data), now=at, at=at, counters=counters)
        except SessionError:
            assert spent + amount > allowance
            continue
        assert spent + amount <= allowance
        spent += amount
        counters = result.counters
    if period:
        # the next period starts afresh, at the session's start plus whole periods
        after = at - (at - (start or 0)) % period + period
        assert checker.check_calls(
            Call.of(TOKEN, 0, TRANSFER + encode(["address", "uint256"], [to, allowance])),
            now=after,
            at=after,
            counters=counters,
        )


# --------------------------------------------------------------------------------------------------
# refusals: nothing asked is dropped
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "policies", "message"),
    [
        # a restricting field the mapping does not know, anywhere
        ({"type": "contract-call", "data": {"address": TOKEN, "selector": "0xa9059cbb", "allowedCalldata": []}}, [], "unknown field"),
        ({"type": "contract-call", "data": {"address": TOKEN, "function": SIGNATURE, "rules": [{"arg": "to", "op": "==", "value": TOKEN, "onlyOnce": True}]}}, [], "unknown field"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x5", "recipient": TOKEN}}, [], "unknown field"),
        ({"type": "contract-call", "data": {"address": TOKEN, "selector": "0xa9059cbb"}}, [{"type": "call-limit", "data": {"count": 1, "per": "day"}}], "unknown field"),
        ({"type": "contract-call", "data": {"address": TOKEN, "selector": "0xa9059cbb"}}, [{"type": "allowed-recipients", "data": {}}], "cannot grant the ERC-7715 policy type 'allowed-recipients'"),
        ({"type": "erc20-token-periodic", "data": {"address": TOKEN, "periodAmount": "0x5", "periodDuration": 86400}}, [], "cannot grant the ERC-7715 permission type 'erc20-token-periodic'"),
        ({"type": "native-token-periodic", "data": {"periodAmount": "0x5", "periodDuration": 86400}}, [], "cannot grant the ERC-7715 permission type 'native-token-periodic'"),
        # amounts: negative, past uint256, fractional, booleans
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "-0x1"}}, [], "not a uint256"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": hex(2**256)}}, [], "not a uint256"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": 1e3}}, [], "not an integer"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": True}}, [], "not an integer"),
        ({"type": "contract-call", "data": {"address": TOKEN, "selector": "0x00000000", "valueLimit": "1e18"}}, [], "not an integer"),
        # a rule whose argument or value the function cannot hold
        ({"type": "contract-call", "data": {"address": TOKEN, "function": SIGNATURE, "rules": [{"arg": "delta", "op": "<=", "value": 2**31}]}}, [], "out of range"),
        ({"type": "contract-call", "data": {"address": TOKEN, "function": SIGNATURE, "rules": [{"arg": "amount", "op": ">=", "value": "-1"}]}}, [], "out of range"),
        ({"type": "contract-call", "data": {"address": TOKEN, "function": SIGNATURE, "rules": [{"arg": 3, "op": "==", "value": 1}]}}, [], "out of range"),
        ({"type": "contract-call", "data": {"address": TOKEN, "function": SIGNATURE, "rules": [{"arg": "amount", "op": "one of", "values": []}]}}, [], "1 to 31"),
    ],
)  # fmt: skip
def test_a_request_keyscope_cannot_grant_as_written_is_refused(
    permission: dict[str, Any], policies: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        plan_from_requests([_request(permission, policies)]).session(max_gas_cost=10**16, salt=0)


@pytest.mark.parametrize(
    "signer",
    [
        {"type": "wallet", "data": {}},
        {"type": "keys", "data": {"keys": []}},
        {
            "type": "key",
            "data": {"id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"},
        },  # ed25519
        {"type": "key", "data": {"id": KEY, "type": "secp256r1"}},
        {"type": "account", "data": {}},
    ],
)
def test_a_signer_keyscope_cannot_hold_to_one_ecdsa_key_is_refused(signer: dict[str, Any]) -> None:
    transfer = {"type": "contract-call", "data": {"address": TOKEN, "selector": "0x00000000"}}
    with pytest.raises(BadInputError):
        plan_from_requests([_request(transfer, signer=signer)])


def test_duplicate_permissions_are_refused_rather_than_merged() -> None:
    """Two requests for the same function of the same contract, one with a rule and one without (or an ERC-20
    allowance and an uncounted transfer of its token), would let the key pick the wider one."""
    ruled = {
        "type": "contract-call",
        "data": {
            "address": TOKEN,
            "function": SIGNATURE,
            "rules": [{"arg": "amount", "op": "<=", "value": 5}],
        },
    }
    bare = {"type": "contract-call", "data": {"address": TOKEN, "function": SIGNATURE}}
    erc20 = {"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x5"}}
    transfer = {"type": "contract-call", "data": {"address": TOKEN, "function": "transfer(address,uint256)"}}
    for pair in ([ruled, bare], [ruled, ruled], [erc20, transfer], [erc20, erc20]):
        with pytest.raises(BadInputError):
            plan_from_requests([_request(p) for p in pair]).session(max_gas_cost=10**16, salt=0)


# --------------------------------------------------------------------------------------------------
# what the wallet answers back
# --------------------------------------------------------------------------------------------------


def _grant(session: Session) -> SessionGrant:
    return SessionGrant(
        session=session,
        account=ACCOUNT,
        module=MODULE,
        chain_id=31337,
        entry_point="0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        epoch=0,
        session_id=session.session_id(ACCOUNT, 0),
        how="offchain",
        owner_signature=b"\x01" * 65,
    )


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    cap=st.one_of(st.none(), st.integers(10**9, 10**18)),
    default_cap=st.integers(10**9, 10**18),
)
def test_the_responses_claim_exactly_the_session_granted(
    data: st.DataObject, cap: int | None, default_cap: int
) -> None:
    """Read back as requests, the responses (without their context) ask for the very session the context carries:
    the wallet's default gas cap, filled in where the requests set none, is said, and nothing else differs."""
    rules = data.draw(st.lists(rule_and_meaning(), max_size=2))
    session_wide = [] if cap is None else [{"type": "gas-cost-per-operation", "data": {"limit": hex(cap)}}]
    call = {
        "type": "contract-call",
        "data": {
            "address": TOKEN,
            "function": SIGNATURE,
            "valueLimit": "0x10",
            "rules": [r for r, *_ in rules],
        },
    }
    # a count of 0 is refused where it is written (attack 388)
    calls = data.draw(st.one_of(st.none(), st.integers(1, 10)))
    own = [] if calls is None else [{"type": "call-limit", "data": {"count": calls}}]
    native = {"type": "native-token-transfer", "data": {"allowance": "0x20", "periodDuration": 3600}}
    shop = to_address("0x" + "5b" * 20)
    erc20 = {
        "type": "erc20-token-transfer",
        "data": {"address": shop, "allowance": "7", "periodDuration": 86400},
    }
    requests = [
        _request(call, [*session_wide, *own]),
        _request(native, session_wide),
        _request(erc20, session_wide),
    ]
    plan = plan_from_requests(requests)
    granted = plan.session(max_gas_cost=default_cap, salt=5)
    responses = responses_for(plan, _grant(granted))
    wire = json.loads(json.dumps([r.to_wire() for r in responses]))
    for answer in wire:
        assert set(answer) == {"chainId", "address", "expiry", "signer", "permission", "policies", "context"}
        del answer["context"]
        # the cap the session has is said, whoever chose it
        assert {"type": "gas-cost-per-operation", "data": {"limit": hex(granted.max_gas_cost)}} in answer[
            "policies"
        ]
    claimed = plan_from_requests(wire).session(max_gas_cost=1, salt=5)
    assert claimed == granted
    assert [PermissionRequest.model_validate(a).permission for a in wire] == [
        PermissionRequest.model_validate(r).permission for r in requests
    ]


# --------------------------------------------------------------------------------------------------
# on chain: the module's verdict is the request's meaning
# --------------------------------------------------------------------------------------------------

ETHER = 10**18


@pytest.fixture(scope="module")
def erc20(sessions, project, deployer):
    """A test token (after the session-scoped fixtures: ape snapshots the chain per fixture scope)."""
    return project.TestToken.deploy(sender=deployer)


def test_a_contract_call_request_with_rules_is_enforced_as_it_reads(
    sessions, module, erc20, owner, session_key
) -> None:
    """``transfer`` of the token to one shop, 10 to 20 base units a call, at most two calls: the module takes the
    calls inside each bound and refuses each one a step outside it."""
    account = sessions.account(owner)
    sessions.h.fund(account, ETHER)
    erc20.mint(account, 1000, sender=sessions.h.funder)
    shop, other = SessionKey.generate().address, SessionKey.generate().address
    request = _request(
        {
            "type": "contract-call",
            "data": {
                "address": erc20.address,
                "function": "transfer(address to, uint256 amount)",
                "rules": [
                    {"arg": "to", "op": "==", "value": shop},
                    {"arg": "amount", "op": "in", "values": ["0xa", "20"]},
                ],
            },
        },
        [{"type": "call-limit", "data": {"count": "0x2"}}],
        signer={"type": "account", "data": {"address": session_key.address}},
        expiry=0,
    )
    session = plan_from_requests([request]).session(max_gas_cost=10**16, salt=0)
    sessions.grant_onchain(account, owner, session)

    def send(to: str, amount: int) -> str:
        call = Call.of(erc20.address, 0, erc20.transfer.encode_input(to, amount))
        return sessions.outcome(sessions.op(account, session_key, call))

    assert "RuleViolated" in send(other, 10)
    assert "RuleViolated" in send(shop, 9)
    assert "RuleViolated" in send(shop, 21)
    assert send(shop, 10) == "ok"
    assert send(shop, 20) == "ok"
    assert re.search(r"LimitExceeded\(callIndex=0, limitIndex=0, amount=1, left=0\)", send(shop, 15))
    assert erc20.balanceOf(shop) == 30


def test_a_periodic_erc20_request_starts_its_periods_at_the_sessions_start(
    sessions, module, erc20, owner, session_key, chain
) -> None:
    """An ``erc20-token-transfer`` of 5 per hour with a ``valid-after``: the first hour runs from that start, so
    the allowance is 5 in it and 5 again only once an hour from the start has passed, not at a clock hour."""
    account = sessions.account(owner)
    sessions.h.fund(account, ETHER)
    erc20.mint(account, 100, sender=sessions.h.funder)
    start = chain.pending_timestamp + 1800 + 7
    request = _request(
        {
            "type": "erc20-token-transfer",
            "data": {"address": erc20.address, "allowance": 5, "periodDuration": 3600},
        },
        [{"type": "valid-after", "data": {"timestamp": start}}],
        signer={"type": "account", "data": {"address": session_key.address}},
        expiry=start + 10 * 3600,
    )
    session = plan_from_requests([request]).session(max_gas_cost=10**16, salt=0)
    assert session.valid_after == start
    sessions.grant_onchain(account, owner, session)
    shop = SessionKey.generate().address

    def pay(amount: int, at: int) -> str:
        """An operation claiming the time ``at`` (the period it is counted in), sent at the chain's next block."""
        call = Call.of(erc20.address, 0, erc20.transfer.encode_input(shop, amount))
        return sessions.outcome(sessions.op(account, session_key, call, at=at))

    # before the start, no period is open: the claimed time is refused by the window
    assert "AA22" in pay(1, chain.pending_timestamp)
    chain.pending_timestamp = start + 10
    assert pay(5, start) == "ok"
    # a clock hour turns inside the first period: no new allowance, and the next period cannot be claimed early
    chain.pending_timestamp = start + 3600 - 30
    assert "LimitExceeded" in pay(1, start + 3600 - 30)
    assert "AA22" in pay(5, start + 3600)
    chain.pending_timestamp = start + 3600 + 10
    assert pay(5, start + 3600) == "ok"
    assert "LimitExceeded" in pay(1, start + 3600)
    assert erc20.balanceOf(shop) == 10


@pytest.mark.parametrize(
    "extra",
    [
        {
            "rules": [{"type": "expiry", "data": {"timestamp": 1}}]
        },  # the latest revision's rules, at the request
        {"isAdjustmentAllowed": False},  # a flag belongs beside a type's data, not on the request
        {"permissions": [{"type": "contract-call", "data": {"address": TOKEN, "selector": "0x00000000"}}]},
        {"chainId": 0},
        {"expiry": -1},
    ],
)
def test_a_request_field_keyscope_does_not_map_is_refused(extra: dict[str, Any]) -> None:
    transfer = {"type": "contract-call", "data": {"address": TOKEN, "selector": "0x00000000"}}
    with pytest.raises(BadInputError):
        plan_from_requests([{**_request(transfer), **extra}])


@pytest.mark.parametrize("target", [ACCOUNT, MODULE])
def test_an_allowance_of_the_account_or_the_module_as_a_token_moves_nothing(target: str) -> None:
    """An ``erc20-token-transfer`` naming the account itself (or the session module) as its token: the grant holds
    its ``transfer``, and the module refuses every call to either, whatever the amount."""
    erc20 = {"type": "erc20-token-transfer", "data": {"address": target, "allowance": hex(2**255)}}
    session = plan_from_requests([_request(erc20, expiry=0)]).session(max_gas_cost=10**16, salt=0)
    call = Call.of(target, 0, TRANSFER + encode(["address", "uint256"], [KEY, 1]))
    with pytest.raises(
        SessionError, match="a session may never call the account or its validator module"
    ) as refused:
        _checker(session).check_calls(call, now=NOW, at=NOW)
    assert getattr(refused.value, "reason", None) == "ForbiddenTarget"
