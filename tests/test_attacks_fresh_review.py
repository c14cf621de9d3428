"""A leaked session key against the less-trodden packing of the session module, through the real EntryPoint v0.7
``handleOps`` (and the module's own ``validateUserOp`` asked as the account, where the exact validation data is the
point): the bit next to the limited flag in a permission header, each permission's own paymaster words read for a
gas budget, an argument total near 2**256, a claimed time nested in another, and a ONE_OF list ending beside the
meter word. Each attack holds; the tests keep it so.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import KIND
from keyscope.entrypoint import encode_handle_ops
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.policy import Limits, Policy
from keyscope.session import (
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    encode_at_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.limit_fixtures import (  # noqa: F401 (fixtures)
    grant,
    limits_account_fixture,
    session_fixtures_first_fixture,
    token_fixture,
    usage,
)
from support.raw_call import revert_bytes
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)

ETHER = 10**18
GWEI = 10**9
HOUR = 3600
OTHER = keccak(b"other(uint256)")[:4]
PERMISSIONS_BASE = 3  # SessionStorage's `_permissions` (after EIP712's two fallback strings and `_accounts`)
AMOUNT_MAX = 2**176 - 1  # a limit's amount is stored saturated here


def other(target: Any, amount: int, value: int = 0) -> Call:
    """The call ``target.other(amount)``."""
    return Call.of(target.address, value, target.other.encode_input(amount))


def validation_data(sessions: Any, account: str, op: UserOperation) -> int:
    """What the module's ``validateUserOp`` returns for ``op`` when ``account`` asks (an ``eth_call``: nothing it
    counts stays)."""
    module = sessions.module
    data = module.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op))
    web3 = sessions.h.chain.provider.web3
    raw = web3.eth.call({"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 5_000_000})
    return int.from_bytes(bytes(raw), "big")


def module_refusal(sessions: Any, account: str, op: UserOperation) -> str:
    """The custom error the module's ``validateUserOp`` reverts with for ``op`` as ``account`` asks."""
    from keyscope.revert import describe_revert

    with pytest.raises(Exception) as info:
        validation_data(sessions, account, op)
    return describe_revert(revert_bytes(info.value))


def permission_word(sessions: Any, account: str, key: str, target: str, selector: bytes, n: int) -> int:
    """Word ``n`` of ``key``'s permission for (target, selector) on ``account`` in the module's storage (0: the
    header, 1..31: ``words[n - 1]``), read from the chain."""
    perm_key = keccak(bytes.fromhex(key[2:]) + bytes.fromhex(target[2:]) + selector)
    inner = keccak(perm_key + PERMISSIONS_BASE.to_bytes(32, "big"))
    slot = int.from_bytes(keccak(bytes.fromhex(account[2:]).rjust(32, b"\x00") + inner), "big") + n
    web3 = sessions.h.chain.provider.web3
    return int.from_bytes(bytes(web3.eth.get_storage_at(sessions.module.address, slot)), "big")


def strangers(count: int) -> tuple[str, ...]:
    """Addresses of nobody: paymasters a session lists that no operation names."""
    return tuple(LocalSigner.generate().address for _ in range(count))


# ------------------------------------------------------------------------------------------------------
# The header bit next to the limited flag
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("listed", [4, 7])
def test_a_paymaster_count_of_four_or_more_never_reads_as_a_failure_or_a_count(
    sessions, target, account, owner, session_key, listed
):
    """A permission header keeps the session's paymaster count in bits 249-251 and the limited flag in bit 252; the
    policy check moves bit 252 to the validation data's bit 1 by one shift right of 251, which brings bit 251 (set
    by a count of 4 to 7) down to bit 0: the signature-failure bit. A session listing 4 or 7 paymasters, capped,
    with no limits: single and batch operations, USE and USE_WITH_KEY, validate with the session's window and
    nothing in the low bits (a leak would fail every such operation AA24, or run the limit count for a session
    without limits), and land."""
    now = sessions.h.chain.pending_timestamp
    window = {"valid_after": now - 100, "valid_until": now + 10 * HOUR}
    grant(
        sessions, account, owner, session_key, [Policy.call(target.address, "other(uint256)")],
        max_gas_cost=ETHER // 100, paymasters=strangers(listed), **window,
    )  # fmt: skip
    header = permission_word(sessions, account, session_key.address, target.address, OTHER, 0)
    assert (header >> 249) & 7 == listed and (header >> 251) & 1 == 1 and (header >> 252) & 1 == 0
    expected = (window["valid_after"] << 208) | (window["valid_until"] << 160)
    for calls in (other(target, 1), [other(target, 2), other(target, 3)]):
        for mode in ("use", "use_with_key"):
            op = sessions.op(account, session_key, calls, mode=mode)
            assert validation_data(sessions, account, op) == expected, (calls, mode)
    before = int(target.calls())
    assert sessions.outcome(sessions.op(account, session_key, [other(target, 2), other(target, 3)])) == "ok"
    assert sessions.outcome(sessions.op(account, session_key, other(target, 1), mode="use_with_key")) == "ok"
    assert int(target.calls()) == before + 3


def test_a_limited_session_listing_seven_paymasters_counts_once_and_exactly(
    sessions, module, target, account, owner, session_key
):
    """The same header bits with the limited flag set too (bits 249-252 all one): the count runs once per
    operation, the window is the session's, the low bits stay clear, and the second call over a budget of two is
    refused by the count, not by a signature failure."""
    now = sessions.h.chain.pending_timestamp
    permission = Policy.call(target.address, "other(uint256)")
    calls_budget = Limit(kind=LimitKind.CALLS, amount=2, meters=(Meter(permission=0),))
    _, session_id = grant(
        sessions, account, owner, session_key, [permission], [calls_budget],
        max_gas_cost=ETHER // 100, paymasters=strangers(7), valid_after=now - 100,
    )  # fmt: skip
    header = permission_word(sessions, account, session_key.address, target.address, OTHER, 0)
    assert (header >> 249) & 0xF == 0xF
    op = sessions.op(account, session_key, other(target, 1))
    assert validation_data(sessions, account, op) == (now - 100) << 208
    assert sessions.outcome(op) == "ok"
    assert usage(module, account, session_id)[0][4:] == (1, 1)
    result = sessions.outcome(sessions.op(account, session_key, [other(target, 1), other(target, 1)]))
    assert "LimitExceeded(callIndex=1, limitIndex=0, amount=1, left=0)" in result, result
    assert usage(module, account, session_id)[0][4:] == (1, 1)


# ------------------------------------------------------------------------------------------------------
# A gas budget and each permission's own paymaster words
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(name="paymasters", scope="module")
def paymasters_fixture(project, deployer, entry_point, token, accounts) -> tuple[Any, Any]:
    """Two ERC-20 paymasters charging the account in ``token``: the first one the session lists, the second not."""
    made = []
    for _ in range(2):
        paymaster = project.TokenPaymaster.deploy(entry_point, token, 1, accounts[9], sender=deployer)
        paymaster.deposit(value=5 * ETHER, sender=deployer)
        made.append(paymaster)
    return made[0], made[1]


def paid(sessions: Any, account: str, key: LocalSigner, calls: Any, paymaster: str | None) -> UserOperation:
    """A session operation (USE) naming ``paymaster`` (or none), with paymaster gas limits."""
    op = sessions.h.op(account, encode_execute(calls), key=KIND.nonce_key(sessions.module.address))
    if paymaster is not None:
        op = op.replace(
            paymaster=paymaster, paymaster_verification_gas_limit=100_000, paymaster_post_op_gas_limit=100_000
        )
    return op.replace(signature=key.sign_hash(sessions.h.hash(op)))


def test_a_gas_budget_finds_the_listed_paymaster_after_any_permissions_rule_words(
    sessions, module, target, token, paymasters, account, owner, session_key
):
    """A session's paymaster words follow each permission's own rule words (here 6 words for ``record`` and none
    for ``other``), and its gas budget reads the list of the first permission an operation calls, starting where
    that permission's meter word says. The budget (1 wei) is met by any counted operation: batches calling the
    two permissions in either order, naming the listed paymaster, count nothing and land; the same batches naming
    the other paymaster, or none, are refused by the budget, whichever permission comes first. A start read from
    the wrong permission would miss the list one way (refusing the sponsor) or find a rule value the other way."""
    listed, unlisted = paymasters
    record = Permission(
        target=target.address,
        selector=keccak(b"record(uint256,int256,address,bytes32,bool)")[:4],
        rules=(
            Rule(condition=Condition.ONE_OF, offset=0, values=(1, 2, 3, 4)),
            Rule(condition=Condition.IN_RANGE, offset=32, values=(0, 2**255 - 1)),
        ),
    )
    plain = Policy.call(target.address, "other(uint256)")
    _, session_id = grant(
        sessions, account, owner, session_key, [record, plain], [Limits.gas(1)],
        max_gas_cost=0, paymasters=(listed.address,),
    )  # fmt: skip
    record_key = record.selector
    # the rules take 6 words (ONE_OF 4 values: 4; IN_RANGE with a wide high end: 2): the list starts at word 6
    assert permission_word(sessions, account, session_key.address, target.address, record_key, 7) == int(
        listed.address, 16
    )
    assert permission_word(sessions, account, session_key.address, target.address, OTHER, 1) == int(
        listed.address, 16
    )
    sessions.h.owner_execute(
        account,
        owner,
        [Call.of(token.address, 0, token.approve.encode_input(p.address, 2**256 - 1)) for p in paymasters],
    )
    record_call = Call.of(
        target.address, 0, target.record.encode_input(2, 5, target.address, b"\x00" * 32, True)
    )
    orders = {"record first": [record_call, other(target, 1)], "other first": [other(target, 1), record_call]}
    before = int(target.calls())
    for name, calls in orders.items():
        assert sessions.outcome(paid(sessions, account, session_key, calls, listed.address)) == "ok", name
    assert int(target.calls()) == before + 4
    assert usage(module, account, session_id)[0][4:] == (0, 1)
    for name, calls in orders.items():
        for paymaster in (unlisted.address, None):
            result = sessions.outcome(paid(sessions, account, session_key, calls, paymaster))
            assert "LimitExceeded(callIndex=0, limitIndex=0" in result and "left=1)" in result, (name, result)
    assert int(target.calls()) == before + 4
    assert usage(module, account, session_id)[0][4:] == (0, 1)


# ------------------------------------------------------------------------------------------------------
# An argument total near 2**256
# ------------------------------------------------------------------------------------------------------


def test_an_argument_total_granted_at_two_to_the_256_minus_one_saturates_and_never_wraps(
    sessions, module, target, account, owner, session_key
):
    """An AMOUNT limit granted at 2**256 - 1 is stored at 2**176 - 1 (the state word's field). The key's words
    past that (2**256 - 1, 2**176) are refused whole, alone or after a small call in a batch; the saturated budget
    is spent exactly; then one more unit is refused. No arithmetic wraps a huge argument into a small count."""
    total = Limit(kind=LimitKind.AMOUNT, amount=2**256 - 1, meters=(Meter(permission=0, offset=0),))
    _, session_id = grant(
        sessions, account, owner, session_key, [Policy.call(target.address, "other(uint256)")], [total]
    )
    assert usage(module, account, session_id)[0][1] == AMOUNT_MAX
    for calls, index, amount, left in (
        (other(target, 2**256 - 1), 0, 2**256 - 1, AMOUNT_MAX),
        (other(target, 2**176), 0, 2**176, AMOUNT_MAX),
        ([other(target, 1), other(target, 2**256 - 1)], 1, 2**256 - 1, AMOUNT_MAX - 1),
        ([other(target, AMOUNT_MAX - 1), other(target, 2)], 1, 2, 1),
    ):
        result = sessions.outcome(sessions.op(account, session_key, calls))
        expected = f"LimitExceeded(callIndex={index}, limitIndex=0, amount={amount}, left={left})"
        assert expected in result, (calls, result)
    assert usage(module, account, session_id)[0][4:] == (0, AMOUNT_MAX)
    assert sessions.outcome(sessions.op(account, session_key, other(target, AMOUNT_MAX))) == "ok"
    assert usage(module, account, session_id)[0][4:] == (AMOUNT_MAX, 0)
    result = sessions.outcome(sessions.op(account, session_key, other(target, 1)))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result


# ------------------------------------------------------------------------------------------------------
# A claimed time nested in another
# ------------------------------------------------------------------------------------------------------


def test_a_claimed_time_nested_behind_another_is_no_second_claim(
    sessions, module, target, account, owner, session_key
):
    """The AT prefix is stripped once. An operation claiming one time and then, behind it, another (the key hoping
    the module takes the inner one for the period and the EntryPoint is shown the outer one's window, or the other
    way round) is read as no layout: the module returns a signature failure (AA24), counts nothing, and the same
    call with one claim lands. A 72-byte USE behind one AT stays USE; behind two (79 bytes) it is nothing."""
    now = sessions.h.chain.pending_timestamp
    start = now - 100
    rate = Limit(kind=LimitKind.CALLS, amount=1, period=HOUR, meters=(Meter(permission=0),))
    _, session_id = grant(
        sessions, account, owner, session_key, [Policy.call(target.address, "other(uint256)")], [rate],
        valid_after=start,
    )  # fmt: skip
    op = sessions.op(account, session_key, other(target, 1))
    use = op.signature
    for inner_at in (now, now + 2 * HOUR, start - HOUR):
        nested = op.replace(signature=encode_at_signature(now, encode_at_signature(inner_at, use)))
        assert len(nested.signature) == 79
        assert validation_data(sessions, account, nested) == 1, inner_at
        assert "AA24" in sessions.outcome(nested)
        with_key = op.replace(
            signature=encode_at_signature(
                now, encode_at_signature(inner_at, encode_use_with_key_signature(session_key.address, use))
            )
        )
        assert validation_data(sessions, account, with_key) == 1, inner_at
    assert usage(module, account, session_id)[0][4:] == (0, 1)
    once = op.replace(signature=encode_at_signature(now, use))
    assert validation_data(sessions, account, once) == (start << 208) | ((start + HOUR - 1) << 160)
    assert sessions.outcome(once) == "ok"
    assert usage(module, account, session_id)[0][4:] == (1, 0)


# ------------------------------------------------------------------------------------------------------
# A ONE_OF list ending beside the meter word
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wide_first", [False, True], ids=["inline first value", "wide first value"])
def test_a_one_of_list_ending_beside_the_meter_word_never_takes_it_as_a_member(
    sessions, target, account, owner, session_key, wide_first
):
    """A limited permission keeps its meter word in its last storage word (``words[30]``); a ONE_OF rule may take
    every word before it (30 words: 30 values with the first inline, 29 with the first wide). The key passes the
    meter word itself as the argument (and the zero word, and the word past it): each is refused RuleViolated,
    while the list's last member passes. A loop reading one word too far would take the meter word as a member."""
    first = 2**250 if wide_first else 7  # 2**250 does not fit the 216-bit inline field
    count = 29 if wide_first else 30
    values = (first, *(1000 + i for i in range(count - 1)))
    one_of = Permission(
        target=target.address,
        selector=OTHER,
        rules=(Rule(condition=Condition.ONE_OF, offset=0, values=values),),
    )
    counted = Limit(kind=LimitKind.CALLS, amount=100, meters=(Meter(permission=0),))
    session = Session(session_key=session_key.address, permissions=(one_of,), limits=(counted,))
    enable = Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
    # 31 storage words written: more than the harness's default call gas
    op = sessions.h.op(account, encode_execute(enable), call_gas=3_000_000)
    receipt = sessions.h.submit(sessions.h.sign_owner(op, owner))
    assert receipt.success, receipt.reason
    meter_word = permission_word(sessions, account, session_key.address, target.address, OTHER, 31)
    assert (meter_word >> 192) & 0xF == 1  # one meter: this is the meter word
    assert permission_word(sessions, account, session_key.address, target.address, OTHER, 30) == values[-1]
    for refused in (meter_word, 0, values[-1] + 1):
        op = sessions.op(account, session_key, other(target, refused), mode="use_with_key")
        assert module_refusal(sessions, account, op).startswith(
            f"RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0, actual=0x{refused:064x}"
        ), refused
    before = int(target.calls())
    assert sessions.outcome(sessions.op(account, session_key, other(target, values[-1]))) == "ok"
    assert sessions.outcome(sessions.op(account, session_key, other(target, first))) == "ok"
    assert int(target.calls()) == before + 2


# ------------------------------------------------------------------------------------------------------
# Periods of two sessions with different anchors, in one batch
# ------------------------------------------------------------------------------------------------------


def test_periods_of_two_sessions_with_different_anchors_bound_one_batch_to_their_overlap(
    sessions, module, target, account, owner, session_key
):
    """One key, two sessions with hourly call budgets anchored half an hour apart (each at its own validAfter), the
    second ending within its current period. A batch calling both, claiming one time, is counted in each session's
    own period, and its validation data is the overlap of the two periods and the second session's end: never one
    session's period alone, so the operation cannot land in a period of the other session it was not counted in.
    A claim in a later period of either is a window the EntryPoint refuses now (AA22), and its counts go with it."""
    now = sessions.h.chain.pending_timestamp
    t0 = now - 2 * HOUR
    record_selector = keccak(b"record(uint256,int256,address,bytes32,bool)")[:4]
    hourly = Limit(kind=LimitKind.CALLS, amount=5, period=HOUR, meters=(Meter(permission=0),))
    _, id_a = grant(
        sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)], [hourly],
        valid_after=t0,
    )  # fmt: skip
    b_until = t0 + 2 * HOUR + 20 * 60
    _, id_b = grant(
        sessions, account, owner, session_key, [Permission(target=target.address, selector=record_selector)],
        [hourly], valid_after=t0 + HOUR // 2, valid_until=b_until, salt=1,
    )  # fmt: skip
    record_call = Call.of(
        target.address, 0, target.record.encode_input(1, 0, target.address, b"\x00" * 32, False)
    )
    op = sessions.op(account, session_key, [other(target, 1), record_call])
    use = op.signature

    def window(claim: int) -> int:
        return validation_data(sessions, account, op.replace(signature=encode_at_signature(claim, use)))

    # A's period 1 [t0+1h, t0+2h) and B's period 0 [t0+30m, t0+1h30m): their overlap
    assert window(t0 + HOUR + 10 * 60) == ((t0 + HOUR) << 208) | ((t0 + HOUR + HOUR // 2 - 1) << 160)
    # now: A's period 2 [t0+2h, t0+3h), B's period 1 [t0+1h30m, t0+2h30m), B ends at t0+2h20m
    assert window(now) == ((t0 + 2 * HOUR) << 208) | (b_until << 160)
    # a later claim: A's period 2, B's period 2 [t0+2h30m, ...): past B's end, an empty window
    late = window(t0 + 2 * HOUR + 40 * 60)
    assert late >> 208 == t0 + 2 * HOUR + HOUR // 2 and (late >> 160) % 2**48 == b_until
    assert "AA22" in sessions.outcome(op.replace(signature=encode_at_signature(t0 + 2 * HOUR + 40 * 60, use)))
    assert "AA22" in sessions.outcome(op.replace(signature=encode_at_signature(t0 + 3 * HOUR + 1, use)))
    assert usage(module, account, id_a)[0][4:] == (0, 5) and usage(module, account, id_b)[0][4:] == (0, 5)
    assert sessions.outcome(op.replace(signature=encode_at_signature(now, use))) == "ok"
    assert usage(module, account, id_a)[0][3:] == (t0 + 2 * HOUR, 1, 4)
    assert usage(module, account, id_b)[0][3:] == (t0 + HOUR // 2 + HOUR, 1, 4)


# ------------------------------------------------------------------------------------------------------
# An ENABLE counted in a period it cannot land in
# ------------------------------------------------------------------------------------------------------


def test_an_enable_counted_in_a_period_it_cannot_land_in_enables_and_counts_nothing(
    sessions, module, target, account, owner, session_key, chain, submitter_account
):
    """A relayer (or the key) carries the owner's off-chain grant of a session that starts in an hour, with an
    hourly call budget, claiming the present (before the session's start: period 0, which begins at its
    validAfter). The module enables the session and counts the call during validation, then returns a window that
    opens in an hour: the EntryPoint refuses the operation (AA22) and the whole ``handleOps`` reverts, the enable
    and the count with it. Once the session has started, the same grant enables it and counts one call."""
    now = chain.pending_timestamp
    start = now + HOUR
    hourly = Limit(kind=LimitKind.CALLS, amount=3, period=HOUR, meters=(Meter(permission=0),))
    session = Session(
        session_key=session_key.address,
        valid_after=start,
        permissions=(Permission(target=target.address, selector=OTHER),),
        limits=(hourly,),
    )
    session_id = session.session_id(account, sessions.epoch(account))
    signature = sessions.owner_signature(account, owner, session)

    def enable_at(moment: int) -> UserOperation:
        op = sessions.enable_op(account, session_key, session, signature, other(target, 1))
        return op.replace(signature=encode_at_signature(moment, op.signature))

    # (through the EntryPoint, not the module alone: the account takes the owner's bare grant signature only from
    # the validator it is asking to validate an operation)
    early = enable_at(now)
    assert "AA22" in sessions.outcome(early)
    # a bundler sending it anyway: handleOps reverts, with the enable and the count
    data = encode_handle_ops([early.pack()], submitter_account.address)
    tx = chain.provider.network.ecosystem.create_transaction(
        receiver=sessions.h.entry_point.address,
        data=data,
        sender=submitter_account.address,
        gas_limit=5_000_000,
    )
    with pytest.raises(Exception, match="AA22"):
        submitter_account.call(tx)
    assert not module.isSessionActive(account, session_id)
    assert module.limitUsage(account, session_id) == []
    before = int(target.calls())
    chain.pending_timestamp = start + 5
    assert sessions.outcome(enable_at(start + 5)) == "ok"
    assert module.isSessionActive(account, session_id)
    assert usage(module, account, session_id)[0][3:] == (start, 1, 2)
    assert int(target.calls()) == before + 1
