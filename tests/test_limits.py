"""Limits over a session's life or per period, through the real EntryPoint v0.7 ``handleOps``: each overspending
attack of the threat model (a batch, several operations in one bundle, parallel nonce lanes, a period's boundary,
approve + transferFrom, revoking and re-granting, a reverted execution), the kinds of limit, the views and
events, malformed limits, and grants naming the account's own modules (attack 52).

The tests that only grant, send operations and read the module and the token run on a fresh anvil of the file's own
(``on_anvil``: the EntryPoint, the factory, the module, ``TestToken`` and a ``RecordingTarget`` are ape's builds of
their sources, on a node that runs them natively), and so do the EIP-7702 delegate's (``anvil``: each deploys its
own delegate and validator there, a development account standing in for its EntryPoint); the others, which move
ape's clock, deploy modules or accounts of other kinds, or read ape's receipts, on ape's chain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope.accounts import KeyscopeAccountKind
from keyscope.checker import PolicyChecker
from keyscope.cli.listing import list_sessions, session_lines, store_sessions
from keyscope.entrypoint import encode_handle_ops
from keyscope.errors import (
    BadInputError,
    BundlerRejectedError,
    LimitError,
    LimitExceededError,
    LimitPeriodEndingError,
    TargetWarning,
)
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.limits import Counter, count_limits, counters_from_chain, initial_counters, usage_of
from keyscope.policy import Limits, Policy, arg
from keyscope.session import (
    Limit,
    LimitKind,
    Meter,
    Permission,
    Session,
    encode_at_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import anvil_sessions
from support.limit_fixtures import (  # noqa: F401 (fixtures)
    grant,
    limits_account_fixture,
    session_fixtures_first_fixture,
    token_fixture,
    transfer,
    usage,
)
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)

ETHER = 10**18
DAY = 86400
KIND = KeyscopeAccountKind()


def allowance(token, amount, period=None):
    return Policy.erc20_allowance(token.address, amount, period)


@dataclass
class OnAnvil:
    """What the tests on ape's chain name ``sessions``, ``module``, ``token``, ``target`` and ``account``, on the
    file's anvil: the session harness, ``TestToken``, a ``RecordingTarget`` (ape's builds of their sources, on a
    node that runs them natively) and a new keyscope account of ``owner`` with the module installed, 5 ether and
    100 tokens, as the ``account`` fixture makes it."""

    sessions: Any
    module: Any
    token: AnvilContract
    target: AnvilContract
    account: str


@pytest.fixture(scope="module")
def anvil(project) -> Iterator[tuple[AnvilChain, Any, AnvilContract, AnvilContract]]:
    """The file's anvil, for the tests that only grant, send operations and read the module and the token."""
    with anvil_chain() as chain:
        deployer = chain.accounts[0]
        sessions = anvil_sessions(chain, project)
        token = chain.deploy(project.TestToken, sender=deployer)
        target = chain.deploy(project.RecordingTarget, sender=deployer)
        yield chain, sessions, token, target


@pytest.fixture
def on_anvil(anvil, owner) -> OnAnvil:
    chain, sessions, token, target = anvil
    account = sessions.account(owner)
    sessions.h.fund(account, 4 * ETHER)
    token.mint.transact(account, 100 * ETHER, sender=chain.accounts[0])
    return OnAnvil(sessions, sessions.module, token, target, account)


# ------------------------------------------------------------------------------------------------------
# Overspending attacks
# ------------------------------------------------------------------------------------------------------


def test_a_batch_cannot_overspend(on_anvil, owner, session_key, attacker):
    """Each call of a batch counts, and the counts add up: 3 + 3 of an allowance of 5 is refused as a whole."""
    sessions, module, token, account = on_anvil.sessions, on_anvil.module, on_anvil.token, on_anvil.account
    _, session_id = grant(sessions, account, owner, session_key, allowance(token, 5))
    batch = [transfer(token, attacker, 3), transfer(token, attacker, 3)]
    result = sessions.outcome(sessions.op(account, session_key, batch))
    assert "LimitExceeded(callIndex=1, limitIndex=0, amount=3, left=2)" in result, result
    assert token.balanceOf(attacker) == 0
    assert sessions.outcome(sessions.op(account, session_key, batch[:1] * 1)) == "ok"
    assert usage(module, account, session_id)[0][4:] == (3, 2)


def test_several_operations_in_one_bundle_cannot_overspend(
    sessions, entry_point, token, account, owner, session_key, attacker, submitter_account
):
    """Two operations (on two nonce lanes) each within the allowance, together over it, in one handleOps: the
    EntryPoint validates both before executing either, and the second one's validation sees the first's count."""
    grant(sessions, account, owner, session_key, allowance(token, 5))
    ops = [
        sessions.op(account, session_key, transfer(token, attacker, 3), lane=lane).pack() for lane in (1, 2)
    ]
    data = encode_handle_ops(ops, submitter_account.address)
    error = _eth_call_error(sessions, submitter_account.address, entry_point.address, data)
    # the second operation is refused with 2 left: the first one's count, in the same bundle
    assert error == "AA23 reverted: LimitExceeded(callIndex=0, limitIndex=0, amount=3, left=2)", error
    # each alone lands; the second then finds 2 left
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 3), lane=1)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 3), lane=2))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=3, left=2)" in result, result
    assert token.balanceOf(attacker) == 3


def _eth_call_error(sessions, sender: str, to: str, data: bytes) -> str:
    """The decoded revert of an eth_call from ``sender`` (any address: nothing is signed)."""
    web3 = sessions.h.chain.provider.web3
    with pytest.raises(Exception) as info:
        web3.eth.call({"from": sender, "to": to, "data": "0x" + data.hex(), "gas": 10_000_000})
    return _decoded(info.value)


def _decoded(error: Exception) -> str:
    from keyscope.revert import describe_revert
    from test_differential import revert_bytes

    return describe_revert(revert_bytes(error))


def test_parallel_nonce_lanes_share_one_budget(on_anvil, owner, session_key, attacker):
    sessions, token, account = on_anvil.sessions, on_anvil.token, on_anvil.account
    grant(sessions, account, owner, session_key, allowance(token, 5))
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 4), lane=0)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 2), lane=7))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=2, left=1)" in result, result


def test_approve_and_transfer_from_share_the_allowance(
    sessions, token, account, owner, session_key, attacker, accounts
):
    """approve sets an allowance a spender takes later with transferFrom, outside the session: the allowance
    counts the approved amount, so what the spender can take and what the session sends stay within 5."""
    grant(sessions, account, owner, session_key, allowance(token, 5))
    approve = Call.of(token.address, 0, token.approve.encode_input(attacker, 4))
    assert sessions.outcome(sessions.op(account, session_key, approve)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 2)))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=2, left=1)" in result, result
    increase = Call.of(token.address, 0, token.increaseAllowance.encode_input(attacker, 2))
    assert "LimitExceeded" in sessions.outcome(sessions.op(account, session_key, increase))
    assert token.allowance(account, attacker) == 4


def test_without_counting_approve_a_spender_drains_the_token(
    sessions, token, account, owner, session_key, accounts
):
    """What the shared budget prevents: an allowance counting transfers only lets the session approve any amount,
    which the spender then takes with transferFrom."""
    thief = accounts[6]
    transfers_only = Policy.call(token.address, "transfer(address to,uint256 amount)")
    approve = Policy.call(token.address, "approve(address spender,uint256 amount)")
    budget = Limit(kind=LimitKind.AMOUNT, amount=5, meters=(Meter(permission=0, offset=32),))
    grant(sessions, account, owner, session_key, [transfers_only, approve], [budget])
    call = Call.of(token.address, 0, token.approve.encode_input(thief.address, 50 * ETHER))
    assert sessions.outcome(sessions.op(account, session_key, call)) == "ok"
    token.transferFrom(account, thief.address, 50 * ETHER, sender=thief)
    assert token.balanceOf(thief.address) == 50 * ETHER


def test_a_period_boundary_is_where_the_budget_refills(
    sessions, module, token, account, owner, session_key, attacker, chain
):
    """A daily allowance: an operation counts in the period its claimed time falls in and is valid only in that
    period. Claiming tomorrow while it is today fails AA22 and counts nothing; tomorrow the budget refills."""
    now = chain.pending_timestamp
    start = now - 100  # period 0 is [start, start + DAY - 1]
    _, session_id = grant(
        sessions, account, owner, session_key, allowance(token, 5, "day"), valid_after=start
    )
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 5), at=now)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 1), at=now))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    # tomorrow's budget, claimed today: counted in period 1, valid from its start only: AA22, nothing counted
    early = sessions.op(account, session_key, transfer(token, attacker, 5), at=start + DAY)
    assert "AA22" in sessions.outcome(early)
    assert usage(module, account, session_id)[0][3:] == (start, 5, 0)
    chain.pending_timestamp = start + DAY + 10
    assert (
        sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 5), at=start + DAY))
        == "ok"
    )
    assert usage(module, account, session_id)[0][3:] == (start + DAY, 5, 0)
    # an operation still claiming yesterday: that period is over
    stale = sessions.op(account, session_key, transfer(token, attacker, 1), at=now)
    assert "PeriodPassed(callIndex=0, limitIndex=0, period=0, counted=1)" in sessions.outcome(stale)
    assert token.balanceOf(attacker) == 10


def test_the_module_s_counters_read_back_as_the_usage_and_the_counts_the_module_keeps(
    sessions, module, token, account, owner, session_key, attacker, chain
):
    """``counters_from_chain`` reads the module's ``limitUsage`` rows into the counters the checker counts from,
    and ``usage_of`` reports them: both must place a period as the module does, from the session's own start
    (a session starting at any second, not at a multiple of its period), and a period begun since the last count
    is reported unused, as the module counts it when the next operation comes."""
    now = chain.pending_timestamp
    start = now - 100  # period 0 is [start, start + DAY - 1]
    session, session_id = grant(
        sessions, account, owner, session_key, allowance(token, 5, "day"), valid_after=start
    )
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 3), at=now)) == "ok"
    rows = usage(module, account, session_id)
    assert rows[0][3:] == (start, 3, 2)
    counters = counters_from_chain(session, rows)
    assert counters == (Counter(2, 0),)
    (row,) = usage_of(session, counters, now)
    assert (row.period_start, row.used, row.left, row.resets_at) == (start, 3, 2, start + DAY)
    # the checker counts from them as the module does: 2 of 5 left today, the module refuses 3
    checker = PolicyChecker(session, account, module.address)
    over = transfer(token, attacker, 3)
    with pytest.raises(LimitExceededError) as refused:
        checker.check(encode_execute(over), now=now, counters=counters, at=now)
    assert (refused.value.amount, refused.value.left) == (3, 2)
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=3, left=2)" in sessions.outcome(
        sessions.op(account, session_key, over, at=now)
    )
    # tomorrow, before any count: the usage says the new day's budget is whole, as the module then counts it
    tomorrow = start + DAY + 10
    (row,) = usage_of(session, counters, tomorrow)
    assert (row.period_start, row.used, row.left, row.resets_at) == (start + DAY, 0, 5, start + 2 * DAY)
    (row,) = usage_of(session, counters, start + DAY - 1)  # the day's last second is still today
    assert (row.period_start, row.used, row.left) == (start, 3, 2)
    chain.pending_timestamp = tomorrow
    spent = checker.check(encode_execute(over), now=tomorrow, counters=counters, at=tomorrow).counters
    assert sessions.outcome(sessions.op(account, session_key, over, at=tomorrow)) == "ok"
    rows = usage(module, account, session_id)
    assert rows[0][3:] == (start + DAY, 3, 2)
    assert counters_from_chain(session, rows) == spent == (Counter(2, 1),)
    (row,) = usage_of(session, spent, tomorrow)
    assert (row.period_start, row.used, row.left, row.resets_at) == (start + DAY, 3, 2, start + 2 * DAY)


def test_a_relayer_rewriting_the_claimed_time_or_the_mode_spends_no_budget_the_key_did_not(
    sessions, module, token, account, owner, session_key, attacker, chain
):
    """The userOpHash leaves the signature field out, so a bundler (or anyone relaying the operation) may rewrite
    what the session key did not sign: the claimed time (MODE_AT) and the mode (USE, USE_WITH_KEY). Each variant is
    judged as the key's own would be: without a claim, ClaimedTimeRequired; a claim of another period counts there
    and is valid only there (AA22 now, nothing counted); the mode changes nothing; once landed, no variant lands again.
    What a rewrite can do is move an operation that was refused today (over the day's budget) to a later period
    the relayer waits for: the period an operation claims is not its expiry (only its nonce is), and there it
    spends that period's budget, which the grant allows."""
    now = chain.pending_timestamp
    start = now - 100  # period 0 is [start, start + DAY - 1]
    _, session_id = grant(
        sessions, account, owner, session_key, allowance(token, 5, "day"), valid_after=start
    )
    op = sessions.op(account, session_key, transfer(token, attacker, 5), at=now)
    signed = op.signature[7:]  # the key's signature of the userOpHash, which no rewrite changes
    assert op.signature == encode_at_signature(now, signed)

    def rewritten(signature: bytes):
        return op.replace(signature=signature)

    for bare in (signed, encode_use_with_key_signature(session_key.address, signed)):
        assert "ClaimedTimeRequired(callIndex=0, limitIndex=0)" in sessions.outcome(rewritten(bare))
        tomorrow = encode_at_signature(start + DAY, bare)
        assert "AA22" in sessions.outcome(rewritten(tomorrow))
    assert usage(module, account, session_id)[0][3:] == (start, 0, 5)
    switched = encode_at_signature(now + 1, encode_use_with_key_signature(session_key.address, signed))
    assert sessions.outcome(rewritten(switched)) == "ok"
    assert usage(module, account, session_id)[0][3:] == (start, 5, 0)
    # the key's own version afterwards: refused (its count is over the day's budget, and its nonce is spent)
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=5, left=0)" in sessions.outcome(op)
    # the next operation, over today's budget, refused today whatever it claims
    late = sessions.op(account, session_key, transfer(token, attacker, 1), at=now)
    late_signed = late.signature[7:]
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in sessions.outcome(late)
    assert "AA22" in sessions.outcome(late.replace(signature=encode_at_signature(start + DAY, late_signed)))
    # tomorrow, the relayer re-claims it: it lands in tomorrow's budget
    chain.pending_timestamp = start + DAY + 10
    assert sessions.outcome(late.replace(signature=encode_at_signature(start + DAY, late_signed))) == "ok"
    assert usage(module, account, session_id)[0][3:] == (start + DAY, 1, 4)
    assert token.balanceOf(attacker) == 6


def test_a_periodic_limit_needs_a_claimed_time(on_anvil, owner, session_key, attacker):
    sessions, token, account = on_anvil.sessions, on_anvil.token, on_anvil.account
    grant(sessions, account, owner, session_key, allowance(token, 5, "day"))
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 1)))
    assert "ClaimedTimeRequired(callIndex=0, limitIndex=0)" in result, result


def test_a_limited_argument_one_byte_short_is_refused_by_the_checker_as_by_the_module(
    on_anvil, owner, session_key, attacker
):
    """A total counts the transfer's amount word: calldata ending one byte before that word's end is refused
    (CalldataTooShortForLimit) by the module through the EntryPoint, and by the checker before anything is signed."""
    sessions, module, token, account = on_anvil.sessions, on_anvil.module, on_anvil.token, on_anvil.account
    session, _ = grant(sessions, account, owner, session_key, allowance(token, 5))
    full = transfer(token, attacker, 1)
    short = Call.of(token.address, 0, full.data[:-1])
    result = sessions.outcome(sessions.op(account, session_key, short))
    assert "CalldataTooShortForLimit(callIndex=0, limitIndex=0)" in result, result
    checker = PolicyChecker(session, account, module.address)
    with pytest.raises(LimitError) as refused:
        checker.check(encode_execute(short))
    assert (refused.value.reason, refused.value.limit_index) == ("CalldataTooShortForLimit", 0), refused.value
    assert f"its calldata ({len(short.data)} bytes) ends before the argument limit 0" in str(refused.value)
    assert checker.check(encode_execute(full)).counters == (Counter(4, 0),)


def test_a_call_moving_nothing_counts_towards_no_period(on_anvil, owner, session_key, attacker):
    """A transfer of 0 under a daily allowance spends nothing: the module counts it in no period, so it needs no
    claimed time and leaves the window and the counters as they were; the checker accepts it the same way."""
    sessions, module, token, account = on_anvil.sessions, on_anvil.module, on_anvil.token, on_anvil.account
    session, session_id = grant(sessions, account, owner, session_key, allowance(token, 5, "day"))
    nothing = transfer(token, attacker, 0)
    before = usage(module, account, session_id)
    assert sessions.outcome(sessions.op(account, session_key, nothing)) == "ok"
    assert usage(module, account, session_id) == before
    checker = PolicyChecker(session, account, module.address)
    counters = initial_counters(session)
    result = checker.check(encode_execute(nothing), counters=counters)
    assert (result.valid_after, result.valid_until, result.counters) == (
        session.valid_after,
        session.valid_until,
        counters,
    )


def test_the_checker_narrows_the_window_to_the_claimed_period(module, accounts, session_key, token):
    """The session's window narrowed to the claimed period (the module's own validation data is compared with
    the checker's in tests/test_limits_differential.py)."""
    account = accounts[7]
    permissions = allowance(token, 5, "day")
    session = Session(
        session_key=session_key.address, valid_after=1000, valid_until=1000 + 3 * DAY, permissions=permissions
    )
    module.enableSession(session.as_abi(), sender=account)
    checker = PolicyChecker(session, account.address, module.address)
    for at, window in ((0, (1000, 1000 + DAY - 1)), (1000 + DAY + 5, (1000 + DAY, 1000 + 2 * DAY - 1))):
        result = checker.check(encode_execute(transfer(token, account.address, 1)), now=window[0], at=at)
        assert (result.valid_after, result.valid_until) == window


def test_a_claim_in_any_period_before_the_one_counted_in_is_refused_as_passed(
    module, accounts, session_key, token
):
    """The module refuses a claim in any period before the one its counter has counted in, the one just before
    included (PeriodPassed: test_a_period_boundary_is_where_the_budget_refills shows it through the EntryPoint, one
    period back); so does the checker, before anything is signed, and it counts a claim in the counted period."""
    account = accounts[7]
    session = Session(
        session_key=session_key.address, valid_after=1000, permissions=allowance(token, 5, "day")
    )
    checker = PolicyChecker(session, account.address, module.address)
    call_data = encode_execute(transfer(token, account.address, 1))
    for counted in (1, 2, 5):
        counters = (Counter(5, counted),)
        for claimed in {counted - 1, 0}:
            at = 1000 + claimed * DAY + 10
            with pytest.raises(LimitError) as refused:
                checker.check(call_data, now=at, counters=counters, at=at)
            assert (refused.value.reason, refused.value.limit_index) == ("PeriodPassed", 0), refused.value
            assert f"claims period {claimed} of limit 0" in str(refused.value)
            assert f"counted in period {counted} already" in str(refused.value)
        at = 1000 + counted * DAY + 10
        assert checker.check(call_data, now=at, counters=counters, at=at).counters == (Counter(4, counted),)


def test_the_checker_refuses_a_periodic_limit_without_a_claimed_time(module, accounts, session_key, token):
    """Without a claimed time the module cannot pick a limit's period (ClaimedTimeRequired, through the EntryPoint
    in test_a_periodic_limit_needs_a_claimed_time): the checker says so, naming the
    limit and what to do."""
    account = accounts[7]
    session = Session(
        session_key=session_key.address, valid_after=1000, permissions=allowance(token, 5, "day")
    )
    checker = PolicyChecker(session, account.address, module.address)
    with pytest.raises(LimitError) as refused:
        checker.check(encode_execute(transfer(token, account.address, 1)), now=1010)
    assert (refused.value.reason, refused.value.limit_index) == ("ClaimedTimeRequired", 0), refused.value
    assert "sign it with a claimed time (MODE_AT)" in str(refused.value)


def test_a_claim_in_an_ended_period_is_refused_with_what_to_do(module, accounts, session_key, token):
    """A session account claims the chain's latest block time; on a chain that has made no block since a period
    ended (an idle development node) that claim is in the ended period, which the EntryPoint refuses as expired.
    The local check refuses it first and says to wait for (or mine) the next block, not to rebuild, which would
    claim the same stale time."""
    account = accounts[7]
    session = Session(
        session_key=session_key.address, valid_after=1000, permissions=allowance(token, 5, "day")
    )
    checker = PolicyChecker(session, account.address, module.address)
    call_data = encode_execute(transfer(token, account.address, 1))
    stale, now = 1000 + DAY - 30, 1000 + DAY + 15
    with pytest.raises(LimitPeriodEndingError) as refused:  # not the session's expiry (attack 306)
        checker.check(call_data, now=now, at=stale)
    assert refused.value.next_period_at == 1000 + DAY
    message = str(refused.value)
    assert "in the period that ended at 1970-01-02 00:16:39 UTC" in message and "16s before now" in message, (
        message
    )
    assert "wait for the next block (on a development node, mine one)" in message, message
    result = checker.check(call_data, now=now, at=now)  # the next block's time claims the current period
    assert (result.valid_after, result.valid_until) == (1000 + DAY, 1000 + 2 * DAY - 1)
    # the allowance spent in the ended period: not "wait until it resets", which has passed, but for a block
    spent = checker.check(encode_execute(transfer(token, account.address, 5)), now=stale, at=stale).counters
    with pytest.raises(LimitExceededError) as exceeded:
        checker.check(call_data, now=now, counters=spent, at=stale)
    message = str(exceeded.value)
    assert (
        exceeded.value.resets_at == 1000 + DAY and "It has reset by now (1970-01-02 00:16:55 UTC" in message
    )
    assert "Wait for the next block (on a development node, mine one)" in message, message
    with pytest.raises(LimitExceededError) as exceeded:  # within the period: nothing to add
        checker.check(call_data, now=stale + 1, counters=spent, at=stale)
    assert "mine one" not in str(exceeded.value), exceeded.value


def test_revoking_and_regranting_gives_no_budget_the_owner_did_not_sign(
    on_anvil, owner, session_key, attacker
):
    """A revoked session's id is refused forever, so its enable signature cannot be replayed for a fresh budget;
    a grant of the same policy is a new session (new salt) with its own records, which start full only because
    the owner signed them; the revoked one's counts stay."""
    sessions, module, token, account = on_anvil.sessions, on_anvil.module, on_anvil.token, on_anvil.account
    session = Session(session_key=session_key.address, permissions=allowance(token, 5), salt=1)
    signature = sessions.owner_signature(account, owner, session)
    first = sessions.enable_op(account, session_key, session, signature, transfer(token, attacker, 5))
    assert sessions.outcome(first) == "ok"
    first_id = session.session_id(account, sessions.epoch(account))
    sessions.revoke(account, owner, first_id)
    replay = sessions.enable_op(account, session_key, session, signature, transfer(token, attacker, 5))
    assert "SessionIsRevoked" in sessions.outcome(replay)
    assert usage(module, account, first_id)[0][4:] == (5, 0)
    again = session.model_copy(update={"salt": 2})
    again_id = sessions.grant_onchain(account, owner, again)
    assert usage(module, account, again_id)[0][4:] == (0, 5)
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 5))) == "ok"
    assert token.balanceOf(attacker) == 10


def test_a_later_grant_never_refills_a_live_session_s_budget(on_anvil, owner, session_key, attacker):
    """Record numbers are never reused on an account: a second session with limits, granted while the first is
    live, gets records of its own. Were it given the first one's record, enabling it would write that record full
    again, and the first session's key could spend its whole allowance a second time."""
    sessions, module, token, account = on_anvil.sessions, on_anvil.module, on_anvil.token, on_anvil.account
    _, first_id = grant(sessions, account, owner, session_key, allowance(token, 5))
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 5))) == "ok"
    _, second_id = grant(sessions, account, owner, LocalSigner.generate(), allowance(token, 5))
    assert usage(module, account, first_id)[0][4:] == (5, 0)
    assert usage(module, account, second_id)[0][4:] == (0, 5)
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 5)))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=5, left=0)" in result, result
    assert token.balanceOf(attacker) == 5


def test_an_enable_carried_again_finds_its_session_enabled_and_refills_nothing(
    on_anvil, owner, session_key, attacker
):
    """A session's first operation carries its grant (ENABLE); an operation carrying the same grant again (a
    retried first operation, or the key replaying it) uses the session already enabled: it works, stores nothing
    again, and the allowance spent stays spent."""
    sessions, module, token, account = on_anvil.sessions, on_anvil.module, on_anvil.token, on_anvil.account
    session = Session(session_key=session_key.address, permissions=allowance(token, 5), salt=7)
    signature = sessions.owner_signature(account, owner, session)
    first = sessions.enable_op(account, session_key, session, signature, transfer(token, attacker, 3))
    assert sessions.outcome(first) == "ok"
    session_id = session.session_id(account, sessions.epoch(account))
    again = sessions.enable_op(account, session_key, session, signature, transfer(token, attacker, 2))
    assert sessions.outcome(again) == "ok"
    assert usage(module, account, session_id)[0][4:] == (5, 0)
    over = sessions.enable_op(account, session_key, session, signature, transfer(token, attacker, 1))
    result = sessions.outcome(over)
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    assert token.balanceOf(attacker) == 5


def test_a_reverted_execution_consumes_what_it_was_counted_for(
    sessions, module, token, account, owner, session_key, attacker
):
    """Counted in validation: an operation whose execution reverts (here a transfer beyond the balance) keeps its
    count, and a try-mode batch cannot skip the count of a call that fails."""
    _, session_id = grant(sessions, account, owner, session_key, allowance(token, 200 * ETHER))
    receipt = sessions.h.submit(sessions.op(account, session_key, transfer(token, attacker, 150 * ETHER)))
    assert not receipt.success  # the account holds 100 tokens
    assert usage(module, account, session_id)[0][4:] == (150 * ETHER, 50 * ETHER)
    calls = [transfer(token, attacker, 40 * ETHER), transfer(token, attacker, 150 * ETHER)]
    try_batch = sessions.op(account, session_key, call_data=encode_execute(calls, batch=True, exec_type=1))
    result = sessions.outcome(try_batch)
    assert f"LimitExceeded(callIndex=1, limitIndex=0, amount={150 * ETHER}, left={10 * ETHER})" in result, (
        result
    )
    assert usage(module, account, session_id)[0][5] == 50 * ETHER  # refused as a whole: nothing counted
    assert token.balanceOf(attacker) == 0


# ------------------------------------------------------------------------------------------------------
# Kinds of limit
# ------------------------------------------------------------------------------------------------------


def test_calls_and_rate(sessions, module, target, account, owner, session_key, chain):
    now = chain.pending_timestamp
    record = Policy.call(
        target.address, "other(uint256 amount)", calls=3, rate="2/hour"
    )  # 3 in all, 2 an hour
    _, session_id = grant(sessions, account, owner, session_key, [record], valid_after=now - 10)
    call = Call.of(target.address, 0, target.other.encode_input(1))
    assert sessions.outcome(sessions.op(account, session_key, [call, call], batch=True, at=now)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, call, at=now))
    assert "LimitExceeded(callIndex=0, limitIndex=1, amount=1, left=0)" in result, result
    chain.pending_timestamp = now + 3600
    assert sessions.outcome(sessions.op(account, session_key, call, at=now + 3600)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, call, at=now + 3600))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    assert [row[4] for row in usage(module, account, session_id)] == [3, 1]


def test_native_value_and_operations(on_anvil, owner, session_key, attacker):
    sessions, target, account = on_anvil.sessions, on_anvil.target, on_anvil.account
    permissions = [
        Policy.transfer(attacker, value_limit=ETHER),
        Policy.call(target.address, "other(uint256)"),
    ]
    limits = [Limits.native(ETHER // 2), Limits.operations(2)]
    session, _ = grant(sessions, account, owner, session_key, permissions, limits)
    assert [(x.kind, [m.permission for m in x.meters]) for x in session.limits] == [(0, [0]), (3, [])]
    pay = Call.of(attacker, ETHER // 4, b"")
    other = Call.of(target.address, 0, target.other.encode_input(1))
    assert sessions.outcome(sessions.op(account, session_key, [pay, other, pay], batch=True)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, Call.of(attacker, 1, b"")))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    assert (
        sessions.outcome(sessions.op(account, session_key, other)) == "ok"
    )  # no value: the second operation
    result = sessions.outcome(sessions.op(account, session_key, other))
    assert "LimitExceeded(callIndex=0, limitIndex=1, amount=1, left=0)" in result, result


def test_gas_budget_counts_each_operations_prefund(on_anvil, owner, session_key):
    sessions, target, account = on_anvil.sessions, on_anvil.target, on_anvil.account
    permissions = [Policy.call(target.address, "other(uint256)")]
    op_cost = (1_500_000 + 1_000_000 + 60_000) * 2 * 10**9  # the harness's gas limits at 2 gwei
    grant(sessions, account, owner, session_key, permissions, [Limits.gas(op_cost * 2 - 1)], max_gas_cost=0)
    call = Call.of(target.address, 0, target.other.encode_input(1))
    assert sessions.outcome(sessions.op(account, session_key, call)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, call))
    assert f"LimitExceeded(callIndex=0, limitIndex=0, amount={op_cost}, left={op_cost - 1})" in result, result


def test_limit_reached_event_and_usage_view(sessions, module, token, account, owner, session_key, attacker):
    _, session_id = grant(sessions, account, owner, session_key, allowance(token, 5))
    receipt = sessions.run(sessions.op(account, session_key, transfer(token, attacker, 5)))
    logs = list(
        module.LimitReached.from_receipt(sessions.h.chain.provider.get_receipt(receipt.transaction_hash))
    )
    assert [(log.account, bytes(log.sessionId), log.limitIndex) for log in logs] == [(account, session_id, 0)]
    assert usage(module, account, session_id) == [(LimitKind.AMOUNT, 5, 0, 0, 5, 0)]


def test_a_session_without_limits_has_none(on_anvil, owner, session_key):
    sessions, module, target, account = on_anvil.sessions, on_anvil.module, on_anvil.target, on_anvil.account
    _, session_id = grant(
        sessions, account, owner, session_key, [Policy.call(target.address, "other(uint256)")]
    )
    assert usage(module, account, session_id) == []


def test_an_argument_total_on_a_plain_transfer_is_refused_where_the_module_enables_it(
    on_anvil, owner, session_key
):
    """An AMOUNT limit metering a plain-transfer permission (selector 0x00000000): the module enables the session, and
    then refuses every transfer, which has no calldata to read the argument from (CalldataTooShortForLimit). The
    permission could never be used: the SDK refuses the session when it is built, as it refuses rules on a transfer."""
    sessions, module, target, account = on_anvil.sessions, on_anvil.module, on_anvil.target, on_anvil.account
    pay = Permission(target=target.address, selector=bytes(4), value_limit=10**15)
    total = Limit(kind=LimitKind.AMOUNT, amount=10**18, meters=(Meter(permission=0),), name="total")
    with pytest.raises(ValueError, match=r"a plain transfer: .*CalldataTooShortForLimit.*NATIVE limit"):
        Session(session_key=session_key.address, permissions=(pay,), limits=(total,))
    forged = Session.model_construct(
        session_key=session_key.address,
        valid_after=0,
        valid_until=0,
        max_gas_cost=0,
        paymasters=(),
        salt=1,
        permissions=(pay,),
        limits=(total,),
        co_signer=None,
        typed_data_permissions=(),
        sign_in=(),
    )
    session_id = sessions.grant_onchain(account, owner, forged)
    assert module.isSessionActive(account, session_id)
    result = sessions.outcome(sessions.op(account, session_key, Call.of(target.address, 10**15, b"")))
    assert "CalldataTooShortForLimit(callIndex=0, limitIndex=0)" in result, result


# ------------------------------------------------------------------------------------------------------
# Malformed limits
# ------------------------------------------------------------------------------------------------------


def _enable_reverts(module, account, session_key, permissions, limits) -> str:
    session = Session.model_construct(
        session_key=session_key.address,
        valid_after=0,
        valid_until=0,
        max_gas_cost=0,
        paymasters=(),
        salt=0,
        permissions=tuple(permissions),
        limits=tuple(limits),
    )
    data = module.enableSession.encode_input(session.as_abi())
    web3 = module.chain_manager.provider.web3
    with pytest.raises(Exception) as info:
        web3.eth.call({"from": account.address, "to": module.address, "data": data, "gas": 10_000_000})
    return _decoded(info.value)


@pytest.mark.parametrize(
    "limit, error",
    [
        (Limit.model_construct(kind=5, amount=1, period=0, meters=()), "InvalidLimit(limitIndex=0)"),
        (Limit.model_construct(kind=2, amount=1, period=59, meters=(Meter(permission=0),)), "InvalidLimit"),
        (Limit.model_construct(kind=2, amount=1, period=0, meters=(Meter(permission=1),)), "InvalidLimit"),
        (
            Limit.model_construct(kind=2, amount=1, period=0, meters=(Meter(permission=0, offset=4),)),
            "InvalidLimit",
        ),
        (Limit.model_construct(kind=3, amount=1, period=0, meters=(Meter(permission=0),)), "InvalidLimit"),
    ],
)
def test_malformed_limits_are_refused(module, accounts, session_key, target, limit, error):
    permission = Permission(target=target.address, selector=bytes(4))
    assert error in _enable_reverts(module, accounts[7], session_key, [permission], [limit])


def test_too_many_limits_and_meters(module, accounts, session_key, target):
    permission = Permission(target=target.address, selector=bytes(4))
    calls = Limit.model_construct(kind=2, amount=1, period=0, meters=(Meter(permission=0),))
    assert "TooManyLimits(count=9)" in _enable_reverts(
        module, accounts[7], session_key, [permission], [calls] * 9
    )
    many = Limit.model_construct(kind=2, amount=1, period=0, meters=(Meter(permission=0),) * 9)
    assert "TooManyMeters(permissionIndex=0)" in _enable_reverts(
        module, accounts[7], session_key, [permission], [many]
    )


@pytest.mark.parametrize("last", ["calls", "gas"])
def test_a_session_at_the_caps_counts_its_last_limit_and_meter(
    sessions, module, target, account, owner, session_key, last
):
    """Eight limits (the most a session may have), seven counting the calls of one permission through seven meters,
    and an eighth that is the first to run out: an eighth meter on the same permission (the most one permission
    feeds), or a gas budget. The second operation is refused by the eighth limit, which the module reads from the
    last of the meter word's meters or the last bit of its gas mask."""
    op_cost = (1_500_000 + 1_000_000 + 60_000) * 2 * 10**9  # the harness's gas limits at 2 gwei
    calls = Limit.model_construct(kind=2, amount=5, period=0, meters=(Meter(permission=0),))
    eighth = (
        Limit.model_construct(kind=2, amount=1, period=0, meters=(Meter(permission=0),))
        if last == "calls"
        else Limit.model_construct(kind=4, amount=op_cost * 2 - 1, period=0, meters=())
    )
    permissions = [Policy.call(target.address, "other(uint256)")]
    _, session_id = grant(
        sessions, account, owner, session_key, permissions, [calls] * 7 + [eighth], max_gas_cost=0
    )
    call = Call.of(target.address, 0, target.other.encode_input(1))
    assert sessions.outcome(sessions.op(account, session_key, call)) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, call))
    amount, left = (1, 0) if last == "calls" else (op_cost, op_cost - 1)
    assert f"LimitExceeded(callIndex=0, limitIndex=7, amount={amount}, left={left})" in result, result
    assert [row[4] for row in usage(module, account, session_id)][:7] == [1] * 7


def test_the_sdk_and_the_module_hash_limits_alike(module, accounts, session_key, token):
    session = Session(
        session_key=session_key.address,
        permissions=(*allowance(token, 5, "day"), Policy.transfer(token.address, 1)),
        limits=(Limits.native(7, per="hour"), Limits.operations(3), Limits.gas(10**15)),
    )
    account = accounts[7].address
    assert bytes(module.sessionId(account, session.as_abi())) == session.session_id(
        account, int(module.epochOf(account))
    )


def test_the_checker_counts_as_the_module(token):
    session = Session(session_key="0x" + "11" * 20, permissions=allowance(token, 5))
    calls = [(0, 0, bytes.fromhex("a9059cbb") + abi_encode(["address", "uint256"], ["0x" + "22" * 20, 3]))]
    counted = count_limits(session, calls, initial_counters(session), at=None)
    assert counted.counters[0].left == 2
    with pytest.raises(LimitExceededError) as info:
        count_limits(session, calls * 2, initial_counters(session), at=None)
    assert (info.value.call_index, info.value.amount, info.value.left) == (1, 3, 2)
    assert "would spend 3 units" in str(info.value)


def test_a_limit_over_the_session_s_life_is_refused_without_the_advice_to_wait_for_a_period() -> None:
    """A limit over the session's life never resets: its refusal names the limit once, in the singular for one call
    or operation, and says to ask for a new session, not to wait; a limit per period says when it resets."""
    nft = "0x" + "33" * 20
    mint = Policy.call(nft, "safeMint(address to)", calls=2)
    session = Session(session_key="0x" + "11" * 20, permissions=(mint,), limits=(Limits.operations(5),))
    call = (0, 0, keccak(b"safeMint(address)")[:4] + abi_encode(["address"], ["0x" + "22" * 20]))
    with pytest.raises(LimitExceededError) as life:
        count_limits(session, [call] * 3, initial_counters(session), at=None)
    message = str(life.value)
    assert message == (
        f"call 2 (safeMint(address) on {to_address(nft)}) would spend 1 call of limit 1 (calls of safeMint(address) "
        f"on {to_address(nft)}, over the session's life); 2 calls of 2 calls used, 0 calls left. Spend less, or ask "
        "the owner for a new session with a larger limit: this one never resets"
    ), message
    assert "wait" not in message and "period" not in message

    hourly = Session(
        session_key="0x" + "11" * 20, permissions=(mint,), limits=(Limits.operations(1, per="hour"),)
    )
    first = count_limits(hourly, [call], initial_counters(hourly), at=36_005)
    with pytest.raises(LimitExceededError) as period:
        count_limits(hourly, [call], first.counters, at=36_006)
    assert "used in this period, 0 operations left; resets" in str(period.value)
    assert "wait until it resets" in str(period.value)


# ------------------------------------------------------------------------------------------------------
# Attack 52: grants naming the account's own modules
# ------------------------------------------------------------------------------------------------------


def test_a_grant_naming_an_installed_module_is_refused(
    sessions, project, deployer, account, owner, session_key
):
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    sessions.h.owner_execute(
        account,
        owner,
        KIND.install_validator_call(account, validator.address, bytes.fromhex(owner.address[2:])),
    )
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=validator.address, selector=keccak(b"onInstall(bytes)")[:4]),),
    )
    data = sessions.module.enableSession.encode_input(session.as_abi())
    receipt = sessions.h.submit(
        sessions.h.sign_owner(
            sessions.h.op(account, encode_execute(Call.of(sessions.module.address, 0, data))), owner
        )
    )
    assert not receipt.success
    assert not sessions.module.isSessionActive(account, session.session_id(account, sessions.epoch(account)))
    error = _eth_call_error(sessions, account, sessions.module.address, data)
    assert (
        f"PermissionTargetIsModule(permissionIndex=0, target={validator.address}, moduleType=1)" in error
    ), error


ON_INSTALL = keccak(b"onInstall(bytes)")[:4]


def test_a_grant_naming_an_installed_executor_is_refused(
    sessions, project, deployer, account, owner, session_key
):
    """ "the module asks the account ... isModuleInstalled(1 | 2 | 4, target, "")": an executor the account holds
    (which executes anything on it once configured) is refused as a target like a validator, ``moduleType`` 2."""
    executor = project.GreedyModule.deploy(sender=deployer)
    keyscope_account = project.KeyscopeAccount.at(account)
    install = keyscope_account.installModule.encode_input(2, executor.address, b"")
    sessions.h.owner_execute(account, owner, Call.of(account, 0, install))
    assert keyscope_account.isModuleInstalled(2, executor.address, b"")
    assert not keyscope_account.isModuleInstalled(1, executor.address, b"")
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=executor.address, selector=ON_INSTALL),),
    )
    data = sessions.module.enableSession.encode_input(session.as_abi())
    error = _eth_call_error(sessions, account, sessions.module.address, data)
    assert error == f"PermissionTargetIsModule(permissionIndex=0, target={executor.address}, moduleType=2)", (
        error
    )


def _install(account: str, module: str, owner: LocalSigner) -> Call:
    """The account's installModule(1, module, owner) call: ``module`` is an OwnerECDSAValidator."""
    return KIND.install_validator_call(account, module, bytes.fromhex(owner.address[2:]))


def _take_over(validator, attacker: str) -> Call:
    """The session's call that would make ``attacker`` the owner ``validator`` knows for the calling account."""
    return Call.of(validator.address, 0, validator.onInstall.encode_input(bytes.fromhex(attacker[2:])))


def _installed(project, account: str, module: str) -> bool:
    return bool(project.KeyscopeAccount.at(account).isModuleInstalled(1, module, b""))


def test_the_account_refuses_to_install_a_module_a_live_session_may_call(
    sessions, project, deployer, account, owner, session_key, attacker
):
    """The module asks the account which modules it has when a session is enabled, not on every call; so the
    account asks its validators before it installs a module: while a live session of the session module may call
    the module, the install is refused (the session would otherwise reconfigure it, here replace the owner the
    validator knows). The owner revokes the session, then installs it. Without the account's check the install
    goes through and the session takes the validator over (as on other vendors' accounts:
    test_residual_a_module_installed_after_the_grant_on_another_vendor_s_account)."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    _, session_id = grant(
        sessions, account, owner, session_key, [Permission(target=validator.address, selector=ON_INSTALL)]
    )
    assert sessions.module.isTargetOfLiveSession(account, validator.address)
    install = _install(account, validator.address, owner)
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(install)), owner))
    assert not receipt.success
    error = _eth_call_error(sessions, sessions.h.entry_point.address, account, install.data)
    assert error == (
        f"ModuleIsSessionTarget(module={validator.address}, validator={sessions.module.address})"
    ), error
    assert not _installed(project, account, validator.address)
    # the session's call now reaches a contract that is not a module of the account
    assert sessions.outcome(sessions.op(account, session_key, _take_over(validator, attacker))) == "ok"
    assert not _installed(project, account, validator.address)
    # revoked, the session names it no more: the install goes through (it sets the owner again) and the session
    # is refused; validators that do not answer the view (this one) block nothing
    sessions.revoke(account, owner, session_id)
    assert not sessions.module.isTargetOfLiveSession(account, validator.address)
    sessions.h.owner_execute(account, owner, install)
    assert _installed(project, account, validator.address)
    assert validator.ownerOf(account) == owner.address
    assert "AA24" in sessions.outcome(sessions.op(account, session_key, _take_over(validator, attacker)))
    another = project.OwnerECDSAValidator.deploy(sender=deployer)
    sessions.h.owner_execute(account, owner, _install(account, another.address, owner))
    assert validator.ownerOf(account) == another.ownerOf(account) == owner.address


@pytest.mark.parametrize(
    ("module_type", "init_data"),
    [
        (2, b""),  # an executor: once installed, it executes anything on the account
        (3, bytes.fromhex("12345678")),  # a fallback handler, for one selector
    ],
)
def test_the_account_refuses_a_session_target_as_a_module_of_any_type(
    sessions, project, deployer, account, owner, session_key, module_type, init_data
):
    """ "keyscope's own account and delegate also refuse to install a module (of any type, fallback handlers
    included) while a live session ... may call it": the test above installs a validator; an executor or a fallback
    handler configured by a session's calls is as much the account's. Refused while the session lives
    (``ModuleIsSessionTarget``), installed once it is revoked."""
    greedy = project.GreedyModule.deploy(sender=deployer)
    _, session_id = grant(
        sessions, account, owner, session_key, [Permission(target=greedy.address, selector=ON_INSTALL)]
    )
    keyscope_account = project.KeyscopeAccount.at(account)
    install = Call.of(
        account, 0, keyscope_account.installModule.encode_input(module_type, greedy.address, init_data)
    )
    error = _eth_call_error(sessions, sessions.h.entry_point.address, account, install.data)
    assert error == f"ModuleIsSessionTarget(module={greedy.address}, validator={sessions.module.address})", (
        error
    )
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(install)), owner))
    assert not receipt.success
    assert not keyscope_account.isModuleInstalled(module_type, greedy.address, init_data)
    sessions.revoke(account, owner, session_id)
    sessions.h.owner_execute(account, owner, install)
    assert keyscope_account.isModuleInstalled(module_type, greedy.address, init_data)


def test_which_sessions_make_a_module_a_session_target(
    sessions, project, deployer, account, owner, session_key, target
):
    """isTargetOfLiveSession: any live session with a call permission on the target, whatever the selector; a
    revoked session, or every session after invalidateAllSessions, names nothing."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    other_key = LocalSigner.generate()
    assert not sessions.module.isTargetOfLiveSession(account, validator.address)
    _, first = grant(
        sessions,
        account,
        owner,
        session_key,
        [
            Permission(target=target.address, selector=b"\x11" * 4),
            Permission(target=validator.address, selector=b"\x22" * 4),
        ],
    )
    grant(sessions, account, owner, other_key, [Permission(target=validator.address, selector=ON_INSTALL)])
    assert sessions.module.isTargetOfLiveSession(account, validator.address)
    assert sessions.module.isTargetOfLiveSession(account, target.address)
    sessions.revoke(account, owner, first)
    assert sessions.module.isTargetOfLiveSession(account, validator.address)
    assert not sessions.module.isTargetOfLiveSession(account, target.address)
    assert not sessions.module.isTargetOfLiveSession(owner.address, validator.address)  # another account
    data = sessions.module.invalidateAllSessions.encode_input()
    sessions.h.owner_execute(account, owner, Call.of(sessions.module.address, 0, data))
    assert not sessions.module.isTargetOfLiveSession(account, validator.address)
    sessions.h.owner_execute(account, owner, _install(account, validator.address, owner))


def test_a_session_outside_its_window_still_makes_a_module_a_session_target_until_revoked(
    sessions, project, deployer, account, owner, session_key, chain
):
    """docs: "an expired session counts until it is revoked" (threat model, residual risks) and "enabled and not
    revoked, expired or not" (session-module.md). A session whose window has not opened yet takes its calls once it
    opens, and one that has ended keeps its permissions: the account refuses the install for both, and installs the
    module once both are revoked. (The view reads no clock, as validation may not.)"""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    now = chain.pending_timestamp
    later, ended = (
        grant(
            sessions,
            account,
            owner,
            key,
            [Permission(target=validator.address, selector=ON_INSTALL)],
            **window,
        )[1]
        for key, window in (
            (session_key, {"valid_after": now + 10 * DAY, "valid_until": now + 11 * DAY}),
            (LocalSigner.generate(), {"valid_after": 0, "valid_until": now + 60}),
        )
    )
    chain.pending_timestamp += 120  # the second session has ended; the first opens in ten days
    chain.mine()
    install = _install(account, validator.address, owner)
    for revoked in (later, ended):
        assert sessions.module.isTargetOfLiveSession(account, validator.address)
        error = _eth_call_error(sessions, sessions.h.entry_point.address, account, install.data)
        assert (
            error == f"ModuleIsSessionTarget(module={validator.address}, validator={sessions.module.address})"
        )
        sessions.revoke(account, owner, revoked)
    assert not sessions.module.isTargetOfLiveSession(account, validator.address)
    sessions.h.owner_execute(account, owner, install)
    assert _installed(project, account, validator.address)


def test_an_account_created_with_a_session_on_a_module_it_installs_after_is_refused(
    sessions, project, deployer, owner, session_key
):
    """At creation (the factory's initialize): the session module installed first with a session naming a module
    installed next is refused (the account asks its validators at every install); the other order is refused by
    enabling (attack 52). Neither account is created; without the session, both modules install."""
    from keyscope.accounts import create_account_data
    from support.install_data import encode_install_sessions

    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=validator.address, selector=ON_INSTALL),),
    )
    with_session = (1, sessions.module.address, encode_install_sessions([session]))
    owner_validator = (1, validator.address, bytes.fromhex(owner.address[2:]))
    h = sessions.h
    for modules, error in (
        ([with_session, owner_validator], "ModuleIsSessionTarget"),
        ([owner_validator, with_session], "PermissionTargetIsModule"),
    ):
        address = h.counterfactual(owner.address, modules)
        h.fund(address)
        op = h.op(
            address,
            encode_execute(Call(h.funder.address, 0, b"")),
            factory=h.factory.address,
            factory_data=create_account_data(owner.address, modules, 0),
        )
        rejection = str(h.rejected(h.sign_owner(op, owner)))
        assert "AA13" in rejection, rejection
        data = h.factory.createAccount.encode_input(owner.address, modules, 0)
        assert error in _eth_call_error(sessions, deployer.address, h.factory.address, data)
    address = h.create(owner, [(1, sessions.module.address, b""), owner_validator])
    assert _installed(project, address, validator.address)


@dataclass
class _DelegateWithSession:
    """KeyscopeDelegate deployed as a plain contract on the file's anvil whose EntryPoint is a development account
    (``run`` calls it as the EntryPoint would once the owner's signature validated; delegation itself needs a
    Prague node), the session module installed, and a live session that may call ``validator``'s ``onInstall``."""

    chain: AnvilChain
    entry: str
    delegate: Any
    module: Any
    validator: Any
    session: Session

    def run(self, data: bytes) -> None:
        self.chain.send(self.entry, self.delegate.address, data)

    def session_id(self) -> bytes:
        return self.session.session_id(self.delegate.address, int(self.module.epochOf(self.delegate.address)))

    def call_error(self, data: bytes) -> str:
        """The decoded revert of an eth_call of ``data`` to the delegate from its EntryPoint."""
        tx = {"from": self.entry, "to": self.delegate.address, "data": "0x" + data.hex(), "gas": 10_000_000}
        with pytest.raises(Exception) as info:
            self.chain.call(tx)
        return _decoded(info.value)


def _delegate_with_session(anvil, project, session_key) -> _DelegateWithSession:
    chain, sessions = anvil[0], anvil[1]
    deployer, entry = chain.accounts[0], chain.accounts[6]
    delegate = chain.deploy(project.KeyscopeDelegate, entry, sender=deployer)
    module = sessions.module
    delegate.installModule.transact(1, module.address, b"", sender=entry)
    validator = chain.deploy(project.OwnerECDSAValidator, sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=validator.address, selector=ON_INSTALL),),
    )
    made = _DelegateWithSession(chain, entry, delegate, module, validator, session)
    made.run(encode_execute(Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi()))))
    return made


def test_keyscope_s_eip7702_delegate_refuses_the_install_too(anvil, project, owner, session_key):
    """KeyscopeDelegate (the code an EOA delegates to) asks its validators before installing a module, as
    KeyscopeAccount does."""
    d = _delegate_with_session(anvil, project, session_key)
    assert d.module.isTargetOfLiveSession(d.delegate.address, d.validator.address)
    install = d.delegate.installModule.encode_input(1, d.validator.address, bytes.fromhex(owner.address[2:]))
    error = d.call_error(install)
    assert error == f"ModuleIsSessionTarget(module={d.validator.address}, validator={d.module.address})", (
        error
    )
    d.run(encode_execute(Call.of(d.module.address, 0, d.module.revokeSession.encode_input(d.session_id()))))
    d.delegate.installModule.transact(
        1, d.validator.address, bytes.fromhex(owner.address[2:]), sender=d.entry
    )
    assert d.delegate.isModuleInstalled(1, d.validator.address, b"")


def test_keyscope_s_eip7702_delegate_hands_on_the_module_s_window_and_period_unchanged(
    anvil, project, session_key
):
    """docs/accounts.md: the module reads no clock, so a session's window and the period an operation claims bind
    only through the validation data the account returns from the module (attack 160). The e2e tests check the five
    account kinds; here KeyscopeDelegate, the code an EOA delegates to: what it returns to the EntryPoint is the
    module's word, for an operation claiming today and one claiming tomorrow."""
    d = _delegate_with_session(anvil, project, session_key)
    sessions, target = anvil[1], anvil[3]
    start = 2_000_000_000
    key = LocalSigner.generate()
    daily = Policy.call(target.address, "other(uint256 amount)", rate="1/day")
    session = Session(
        session_key=key.address, valid_after=start, valid_until=start + 3 * DAY, permissions=(daily,)
    )
    d.run(encode_execute(Call.of(d.module.address, 0, d.module.enableSession.encode_input(session.as_abi()))))
    call = Call.of(target.address, 0, target.other.encode_input(1))
    for claimed in (start, start + DAY):
        op = sessions.op(d.delegate.address, key, call, at=claimed)
        data = d.delegate.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op), 0)
        handed = d.chain.call({"from": d.entry, "to": d.delegate.address, "data": "0x" + data.hex()})
        assert int.from_bytes(bytes.fromhex(handed[2:]), "big") == (claimed << 208) | (
            (claimed + DAY - 1) << 160
        ), claimed


@pytest.mark.parametrize(("module_type", "init_data"), [(2, b""), (3, bytes.fromhex("12345678"))])
def test_keyscope_s_eip7702_delegate_refuses_a_session_target_as_a_module_of_any_type(
    anvil, project, session_key, module_type, init_data
):
    """The delegate, as KeyscopeAccount: an executor or a fallback handler a live session may call is refused, and
    installed once the session is revoked."""
    d = _delegate_with_session(anvil, project, session_key)
    greedy = d.chain.deploy(project.GreedyModule, sender=d.chain.accounts[0])
    session = Session(
        session_key=session_key.address, permissions=(Permission(target=greedy.address, selector=ON_INSTALL),)
    )
    d.run(encode_execute(Call.of(d.module.address, 0, d.module.enableSession.encode_input(session.as_abi()))))
    install = d.delegate.installModule.encode_input(module_type, greedy.address, init_data)
    error = d.call_error(install)
    assert error == f"ModuleIsSessionTarget(module={greedy.address}, validator={d.module.address})", error
    session_id = session.session_id(d.delegate.address, int(d.module.epochOf(d.delegate.address)))
    d.run(encode_execute(Call.of(d.module.address, 0, d.module.revokeSession.encode_input(session_id))))
    d.delegate.installModule.transact(module_type, greedy.address, init_data, sender=d.entry)
    assert d.delegate.isModuleInstalled(module_type, greedy.address, init_data)


@pytest.mark.parametrize("how", ["revoke", "uninstall"])
def test_keyscope_s_eip7702_delegate_refuses_the_install_in_the_revocation_s_transaction(
    anvil, project, owner, session_key, how
):
    """As KeyscopeAccount (attack 116): the delegate refuses to install a module in the transaction that revoked the
    session naming it, or uninstalled the session module, and installs it in a later one."""
    d = _delegate_with_session(anvil, project, session_key)
    delegate, module, validator = d.delegate, d.module, d.validator
    if how == "revoke":
        revocation = Call.of(module.address, 0, module.revokeSession.encode_input(d.session_id()))
    else:
        revocation = Call.of(
            delegate.address, 0, delegate.uninstallModule.encode_input(1, module.address, b"")
        )
    install = Call.of(
        delegate.address,
        0,
        delegate.installModule.encode_input(1, validator.address, bytes.fromhex(owner.address[2:])),
    )
    error = d.call_error(encode_execute([revocation, install]))
    assert error == f"ModuleIsSessionTarget(module={validator.address}, validator={module.address})", error
    d.run(encode_execute(revocation))
    d.run(encode_execute(install))
    assert delegate.isModuleInstalled(1, validator.address, b"")


def _bundle(sessions, submitter, ops) -> list[dict]:
    """``ops`` in one handleOps transaction, in this order (the EntryPoint validates them all, then executes
    them); the fields of each one's UserOperationEvent, in the same order."""
    from keyscope.entrypoint import decode_user_operation_events

    entry_point = sessions.h.entry_point.address
    data = encode_handle_ops([op.pack() for op in ops], submitter.address)
    provider = sessions.h.chain.provider
    tx = provider.network.ecosystem.create_transaction(
        receiver=entry_point, data=data, sender=submitter.address
    )
    receipt = submitter.call(tx)
    events = decode_user_operation_events([dict(log) for log in receipt.logs], entry_point)
    return [events[sessions.h.hash(op)] for op in ops]


@pytest.mark.parametrize(
    "order",
    [("install", "use"), ("use", "install"), ("install", "enable"), ("enable", "install")],
    ids=lambda order: "_then_".join(order),
)
def test_no_order_in_one_bundle_lets_a_session_call_a_module_installed_there(
    sessions, project, deployer, account, owner, session_key, attacker, submitter_account, order
):
    """The owner's install and a session's operation calling the module, in one bundle, either order: a session
    granted before (USE) or by the same bundle's ENABLE. The EntryPoint validates every operation before it
    executes any, so an ENABLE stores its session before the install runs, and the install (an execution) sees
    the live session whichever comes first: it is refused, and the session's call reaches a contract that is not
    a module of the account."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    permission = Permission(target=validator.address, selector=ON_INSTALL)
    session = Session(session_key=session_key.address, permissions=(permission,))
    if "use" in order:
        grant(sessions, account, owner, session_key, [permission])
        session_op = sessions.op(account, session_key, _take_over(validator, attacker))
    else:
        signature = sessions.owner_signature(account, owner, session)
        session_op = sessions.enable_op(
            account, session_key, session, signature, _take_over(validator, attacker)
        )
    install = sessions.h.sign_owner(
        sessions.h.op(account, encode_execute(_install(account, validator.address, owner))), owner
    )
    ops = [install if step == "install" else session_op for step in order]
    results = dict(zip(order, _bundle(sessions, submitter_account, ops), strict=True))
    assert not results["install"]["success"]
    assert results[order[0] if order[0] != "install" else order[1]]["success"]
    assert not _installed(project, account, validator.address)
    assert sessions.module.isTargetOfLiveSession(account, validator.address)
    # and after the bundle, the session still calls a contract that is no module of the account
    assert sessions.outcome(sessions.op(account, session_key, _take_over(validator, attacker))) == "ok"
    assert not _installed(project, account, validator.address)


@pytest.mark.parametrize("how", ["revoke", "invalidate_all", "uninstall"])
@pytest.mark.parametrize("ops", ["one_operation", "two_operations"])
def test_a_session_riding_in_the_bundle_of_its_revocation_cannot_call_a_module_installed_there(
    sessions, project, deployer, account, owner, session_key, attacker, submitter_account, how, ops
):
    """The owner does as ModuleIsSessionTarget says, revokes the session (or every session, or uninstalls the session
    module), then installs the module: in one operation, or in two that share a bundle. A bundler puts the session's operation after them
    (attack 100): the EntryPoint validated it while the session was live, and it executes after the revocation
    and the install. A module counts as a live session's target for the rest of the transaction in which a
    session naming it was revoked or invalidated, and the account asks the validators it uninstalled in this
    transaction too, so the install is refused there; in a later transaction it goes through. Without that the
    install lands and the session's operation, run after it, takes the validator over."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    _, session_id = grant(
        sessions, account, owner, session_key, [Permission(target=validator.address, selector=ON_INSTALL)]
    )
    module = sessions.module
    if how == "uninstall":  # the session module itself: the account no longer has it to ask
        revocation = KIND.uninstall_validator_call(account, module.address)
    else:
        revocation = Call.of(
            module.address,
            0,
            module.revokeSession.encode_input(session_id)
            if how == "revoke"
            else module.invalidateAllSessions.encode_input(),
        )
    install = _install(account, validator.address, owner)
    nonce = sessions.h.nonce(account, 0)
    if ops == "one_operation":
        owner_ops = [
            sessions.h.sign_owner(sessions.h.op(account, encode_execute([revocation, install])), owner)
        ]
    else:
        owner_ops = [
            sessions.h.sign_owner(sessions.h.op(account, encode_execute(call), nonce=nonce + i), owner)
            for i, call in enumerate((revocation, install))
        ]
    riding = sessions.op(account, session_key, _take_over(validator, attacker))
    results = _bundle(sessions, submitter_account, [*owner_ops, riding])
    assert not results[-2]["success"]  # the install (with the revocation, when in the same operation)
    assert not _installed(project, account, validator.address)
    assert results[-1]["success"]  # the session's call reached a contract that is not a module of the account
    # in a later transaction, with the session revoked, the install goes through and the session is refused
    if ops == "one_operation":
        sessions.h.owner_execute(account, owner, revocation)
    assert not module.isTargetOfLiveSession(account, validator.address)
    sessions.h.owner_execute(account, owner, install)
    assert _installed(project, account, validator.address)
    assert validator.ownerOf(account) == owner.address
    assert "AA24" in sessions.outcome(sessions.op(account, session_key, _take_over(validator, attacker)))


def test_a_revocation_marks_its_session_s_targets_for_the_revoking_account_only(
    sessions, project, deployer, account, owner, session_key, submitter_account
):
    """The mark a revocation leaves on its session's targets for the rest of the transaction belongs to the revoking
    account: in the bundle in which one account revokes its session naming a validator, another account, which
    holds no session naming it, installs that validator. Were the account left out of the mark's transient slot,
    one account's revocation would refuse every other account's install of the module until the transaction ends."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    _, session_id = grant(
        sessions, account, owner, session_key, [Permission(target=validator.address, selector=ON_INSTALL)]
    )
    other_owner = LocalSigner.generate()
    other = sessions.account(other_owner)
    module = sessions.module
    revocation = Call.of(module.address, 0, module.revokeSession.encode_input(session_id))
    ops = [
        sessions.h.sign_owner(sessions.h.op(account, encode_execute(revocation)), owner),
        sessions.h.sign_owner(
            sessions.h.op(other, encode_execute(_install(other, validator.address, other_owner))), other_owner
        ),
    ]
    revoked, installed = _bundle(sessions, submitter_account, ops)
    assert revoked["success"] and not module.isSessionActive(account, session_id)
    assert installed["success"]
    assert _installed(project, other, validator.address)
    assert validator.ownerOf(other) == other_owner.address
    assert not _installed(project, account, validator.address)


@pytest.mark.parametrize("grant_first", [True, False], ids=["grant_then_install", "install_then_grant"])
def test_an_owner_batch_granting_and_installing_a_module_installs_nothing_a_session_may_call(
    sessions, project, deployer, account, owner, session_key, grant_first
):
    """The owner's own batch: enableSession naming the module, then installModule (the install is refused), or
    the other way round (enabling refuses the installed module, attack 52); either way the batch reverts whole."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=validator.address, selector=ON_INSTALL),),
    )
    enable = Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
    install = _install(account, validator.address, owner)
    calls = [enable, install] if grant_first else [install, enable]
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(calls)), owner))
    assert not receipt.success
    assert not _installed(project, account, validator.address)
    assert not sessions.module.isTargetOfLiveSession(account, validator.address)


def test_residual_a_module_installed_after_the_grant_on_another_vendor_s_account(
    sessions, project, deployer, owner, session_key, attacker
):
    """Residual (attack 52): an account whose install path asks nothing, here OpenZeppelin's AccountERC7579 as it
    comes (PlainERC7579Account, the owner signing through OwnerECDSAValidator): a module the owner installs after
    granting a session that names it is reconfigured by that session (here its owner replaced)."""
    owner_validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    account = project.PlainERC7579Account.deploy(
        sessions.h.entry_point.address,
        owner_validator.address,
        bytes.fromhex(owner.address[2:]),
        sender=deployer,
    ).address
    sessions.h.fund(account, ETHER)

    def owner_execute(calls: Call | list[Call]) -> None:
        op = sessions.h.op(account, encode_execute(calls), key=KIND.nonce_key(owner_validator.address))
        assert sessions.h.submit(sessions.h.sign_owner(op, owner)).success

    owner_execute(KIND.install_validator_call(account, sessions.module.address))
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=validator.address, selector=ON_INSTALL),),
    )
    owner_execute(
        Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
    )
    assert sessions.module.isTargetOfLiveSession(account, validator.address)
    owner_execute(_install(account, validator.address, owner))
    assert project.PlainERC7579Account.at(account).isModuleInstalled(1, validator.address, b"")
    assert sessions.outcome(sessions.op(account, session_key, _take_over(validator, attacker))) == "ok"
    assert validator.ownerOf(account) == attacker


_ = arg  # the builder's arg() is used by the docs' examples of totals


# ------------------------------------------------------------------------------------------------------
# The SDK: grants with limits, the local check on the module's counters, usage()
# ------------------------------------------------------------------------------------------------------


def test_the_sdk_refuses_before_sending_and_reports_usage(net, harness, token, chain):
    from keyscope import SessionKey

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    token.mint(owner.account, 100 * 10**6, sender=harness.funder)
    key = SessionKey.generate()
    now = chain.pending_timestamp
    with pytest.warns(TargetWarning):  # an allowance pays ANY address, by design: said (attack 431)
        grant = owner.grant(
            key,
            [Policy.erc20_allowance(token.address, 5 * 10**6, "day", symbol="USDC", decimals=6)],
            limits=[Limits.operations(10, per="hour")],
            valid_after=now - 1800,  # days (and hours) start half an hour ago
            valid_until=now + 10 * DAY,
        )
    session = net.session(grant, key, clock=lambda: chain.pending_timestamp)
    shop = LocalSigner.generate().address
    session.execute(token.address, "transfer(address,uint256)", shop, 4_200_000).wait()
    with pytest.raises(LimitExceededError) as info:
        session.execute(token.address, "transfer(address,uint256)", shop, 3 * 10**6)
    message = str(info.value)
    # the words the README quotes
    assert (
        "would spend 3 USDC of limit 1 (USDC allowance, per day); 4.2 USDC of 5 USDC used in this period"
        in message
    )
    assert "0.8 USDC left; resets" in message, message
    assert "resets" in message and info.value.resets_at == now - 1800 + DAY
    rows = {row.limit.label: row for row in session.usage()}
    assert (rows["USDC allowance"].used, rows["USDC allowance"].left) == (4_200_000, 800_000)
    assert (rows["operations"].used, rows["operations"].left) == (1, 9)
    assert (
        "USDC allowance: 4.2 USDC of 5 USDC used per day, 0.8 USDC left; resets"
        in rows["USDC allowance"].describe()
    )
    # the session's report and the tools show the same: `ape run sessions` and `keyscope sessions --node`
    # (judged on chain), `keyscope sessions` (the store alone: the limits as granted)
    assert [(row.used, row.left) for row in session.status().usage] == [(1, 9), (4_200_000, 800_000)]
    with open_store("memory://") as store:
        store.put_grant(grant)
        listing = list_sessions(net.chain, store)
        lines = session_lines(listing)
        assert any(
            "limit   limit 1 ('USDC allowance', the dapp's unsigned label): 4,200,000 of 5,000,000 base units used "
            "per day, 800,000 base units left" in x
            for x in lines
        ), lines
        assert any(
            "limit   limit 0 ('operations', the dapp's unsigned label): 1 of 10 operations used per hour" in x
            for x in lines
        ), lines
        (judged,) = listing.to_dict()["sessions"]
        assert [(x["name"], x["used"], x["left"]) for x in judged["limits"]] == [
            ("operations", 1, 9),
            ("USDC allowance", 4_200_000, 800_000),
        ]
        (offline,) = store_sessions(store).to_dict()["sessions"]
        assert offline["limits"][1]["text"] == (
            "limit 1 ('USDC allowance', the dapp's unsigned label): at most 5,000,000 base units per day"
        )
    # sent anyway, the chain refuses it too
    with pytest.raises(BundlerRejectedError) as rejected:
        session.execute(token.address, "transfer(address,uint256)", shop, 3 * 10**6, check=False)
    assert "LimitExceeded(callIndex=0, limitIndex=1, amount=3000000, left=800000)" in str(rejected.value)
    # the next day the allowance is whole again
    chain.pending_timestamp = now - 1800 + DAY + 5
    session.execute(token.address, "transfer(address,uint256)", shop, 5 * 10**6).wait()
    assert token.balanceOf(shop) == 9_200_000


# ------------------------------------------------------------------------------------------------------
# Limits that allow nothing: the module accepts them, the SDK refuses them at grant time
# ------------------------------------------------------------------------------------------------------


def _zero_count(kind: LimitKind, period: int = 0) -> Limit:
    """A count of zero built by hand: the builders refuse one (``calls=0``, ``rate="0/hour"``,
    ``Limits.operations(0)``), a session built without them may carry one."""
    meters = (Meter(),) if kind == LimitKind.CALLS else ()
    return Limit(kind=kind, amount=0, period=period, meters=meters, name=f"zero {kind.name.lower()}")


def _counted(target: str, call: str, limit: Limit) -> Permission:
    return Policy.call(target, call).model_copy(update={"limits": (limit,)})


def _allowing_nothing(target: str, token: str) -> list[tuple[str, list[Permission], list[Limit]]]:
    call = "other(uint256 amount)"
    return [
        ("calls=0", [_counted(target, call, _zero_count(LimitKind.CALLS))], []),
        ("rate 0/hour", [_counted(target, call, _zero_count(LimitKind.CALLS, 3600))], []),
        ("operations(0)", [Policy.call(target, call)], [_zero_count(LimitKind.OPERATIONS)]),
        ("operations(0) per day", [Policy.call(target, call)], [_zero_count(LimitKind.OPERATIONS, DAY)]),
        ("zero allowance", list(Policy.erc20_allowance(token, 0)), []),
        ("zero total", [Policy.call(target, call, totals=[arg("amount").total(0)])], []),
        ("gas(0) without a paymaster", [Policy.call(target, call)], [Limits.gas(0)]),
    ]


def test_limits_that_allow_nothing_are_refused_at_grant_time(net, harness, target, token, chain):
    """``calls=0``, ``rate="0/hour"``, ``Limits.operations(0)``, a zero allowance or total, a zero gas budget
    without a listed paymaster: the grant would make a permission that can never be used."""
    owner = net.owner(LocalSigner.generate())
    key = LocalSigner.generate().address
    until = chain.pending_timestamp + DAY
    for name, permissions, limits in _allowing_nothing(target.address, token.address):
        with pytest.raises(BadInputError) as info:
            owner.session_for(key, permissions, valid_until=until, limits=limits)
        message = str(info.value)
        assert "is 0:" in message and "module would accept" in message and "positive amount" in message, name
        # an allowance holds no recipient or spender: said before the refusal, as for any grant of it
        said = pytest.warns(TargetWarning) if name == "zero allowance" else nullcontext()
        with said, pytest.raises(BadInputError, match="is 0:"):  # a session built by hand is refused too
            owner.request_for(Session(session_key=key, permissions=tuple(permissions), limits=tuple(limits)))
    # still granted: a zero native allowance (plain calls pass) and a zero gas budget with a listed paymaster
    # (the operations it pays are not counted)
    pays = LocalSigner.generate().address
    payable = Policy.call(target.address, "other(uint256)", value_limit=ETHER)
    owner.session_for(key, [payable], valid_until=until, limits=[Limits.native(0)])
    owner.session_for(
        key,
        [Policy.call(target.address, "other(uint256)")],
        valid_until=until,
        limits=[Limits.gas(0)],
        paymasters=[pays],
        max_gas_cost=0,
    )


def test_the_module_accepts_limits_that_allow_nothing(
    sessions, module, target, account, owner, session_key, chain
):
    """Why the SDK's refusal above is a usability check: the module enables such a session, which can then
    never make the call."""
    now = chain.pending_timestamp
    record = _counted(target.address, "other(uint256 amount)", _zero_count(LimitKind.CALLS))
    _, session_id = grant(sessions, account, owner, session_key, [record], valid_after=now - 10)
    assert module.isSessionActive(account, session_id)
    call = Call.of(target.address, 0, target.other.encode_input(1))
    result = sessions.outcome(sessions.op(account, session_key, call))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
