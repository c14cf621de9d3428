"""Limits over a session's life, attacked by a leaked session key through the real EntryPoint v0.7 ``handleOps``:
an argument wider than the record's 176 bits, a reinstalled module's new sessions meeting the counts an uninstall
left, a time claimed before the session opens. Each test fails without the defence it names."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode

from keyscope.accounts import KeyscopeAccountKind
from keyscope.errors import LimitExceededError
from keyscope.execution import Call
from keyscope.limits import count_limits, initial_counters
from keyscope.policy import Limits, Policy
from keyscope.session import Limit, Meter
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
AMOUNT_MAX = 2**176 - 1


def test_an_amount_meter_reads_its_argument_at_an_offset_past_fifteen_bits(
    sessions, module, target, account, owner, session_key
):
    """A meter keeps its argument's byte offset in 16 bits: an AMOUNT limit of 5 metering the word at offset 32768
    (2**15) of a call's arguments counts that word. A call whose first argument is 1 and whose word at 32768 is 6 is
    refused, naming 6; the same call with 5 there spends the whole limit. Were the offset read from 15 bits, the
    limit would count the first argument (1) and the word the owner metered would go uncounted."""
    offset = 2**15
    limit = Limit(kind=1, amount=5, period=0, meters=(Meter(permission=0, offset=offset),))
    _, session_id = grant(
        sessions, account, owner, session_key, [Policy.call(target.address, "other(uint256)")], [limit]
    )

    def call(word: int) -> Call:
        arguments = abi_encode(["uint256"], [1]) + bytes(offset - 32) + word.to_bytes(32, "big")
        return Call.of(target.address, 0, bytes(target.other.encode_input(1))[:4] + arguments)

    result = sessions.outcome(sessions.op(account, session_key, call(6)))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=6, left=5)" in result, result
    assert sessions.outcome(sessions.op(account, session_key, call(5))) == "ok"
    assert usage(module, account, session_id)[0][4:] == (5, 0)


@pytest.mark.parametrize(
    "amount", [2**176 + 1, 2**255 + 3, 2**256 - 1], ids=["2^176+1", "2^255+3", "2^256-1"]
)
def test_an_argument_wider_than_the_record_is_counted_whole(
    sessions, module, token, account, owner, session_key, attacker, amount
):
    """The record keeps what is left in 176 bits, but the metered argument is a whole word: a transfer of
    2**176 + 1 (or a target's "everything" sentinel, 2**256 - 1) against an allowance of 5 is compared whole and
    refused. Were the word cut to the record's width, 2**176 + 1 would count as 1 and pass, and a target that
    reads the whole word would move that amount."""
    session, session_id = grant(
        sessions, account, owner, session_key, Policy.erc20_allowance(token.address, 5)
    )
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, amount)))
    assert f"LimitExceeded(callIndex=0, limitIndex=0, amount={amount}, left=5)" in result, result
    assert usage(module, account, session_id)[0][4:] == (0, 5)
    # the SDK's local check counts the same word
    data = bytes.fromhex("a9059cbb") + abi_encode(["address", "uint256"], [attacker, amount])
    with pytest.raises(LimitExceededError) as info:
        count_limits(session, [(0, 0, data)], initial_counters(session), at=None)
    assert (info.value.call_index, info.value.amount, info.value.left) == (0, amount, 5)
    # the allowance itself is whole: 5 pass, the sixth unit does not
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 5))) == "ok"
    assert token.balanceOf(attacker) == 5


def test_a_reinstalled_module_s_sessions_never_meet_the_counts_an_uninstall_left(
    sessions, module, target, account, owner, session_key, attacker
):
    """The owner uninstalls the module (every session dies), installs it again and grants the same key a session
    with a zero native allowance (which the SDK grants: plain calls pass, value never): its record is written only
    with its configuration, so it must be a record no session ever used. Record numbers keep growing across an
    uninstall; were they started again at the uninstall (storage 'cleaned up'), the new session would take the
    old one's record and spend the 0.75 ether the old allowance had left."""
    pay = Policy.transfer(attacker, value_limit=ETHER)
    _, first_id = grant(sessions, account, owner, session_key, [pay], [Limits.native(ETHER)])
    assert sessions.outcome(sessions.op(account, session_key, Call.of(attacker, ETHER // 4, b""))) == "ok"
    assert usage(module, account, first_id)[0][4:] == (ETHER // 4, ETHER * 3 // 4)

    sessions.h.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, module.address))
    assert not module.isSessionActive(account, first_id)

    other = Policy.call(target.address, "other(uint256)", value_limit=ETHER)
    _, second_id = grant(sessions, account, owner, session_key, [pay, other], [Limits.native(0)])
    result = sessions.outcome(sessions.op(account, session_key, Call.of(attacker, 1, b"")))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    assert usage(module, account, second_id)[0][4:] == (0, 0)
    # what the grant allows still works: a call without value
    call = Call.of(target.address, 0, target.other.encode_input(1))
    assert sessions.outcome(sessions.op(account, session_key, call)) == "ok"
    assert usage(module, account, first_id)[0][4:] == (ETHER // 4, ETHER * 3 // 4)


def test_a_limit_opens_no_session_early_and_keeps_none_open_late(
    sessions, module, token, account, owner, session_key, attacker, chain
):
    """Counting narrows the operation's window to the periods it counted in; it must never widen the session's
    own. A session with an allowance over its life, opening in an hour and closing an hour later: before it opens
    and after it closes the EntryPoint refuses the transfer (AA22) and nothing stays counted. Were the session's
    validAfter dropped when the limit's bounds are joined to it (a limit over the life bounds nothing), the key
    would spend the allowance before the owner meant the session to start."""
    now = chain.blocks.head.timestamp
    _, session_id = grant(
        sessions,
        account,
        owner,
        session_key,
        Policy.erc20_allowance(token.address, 5),
        valid_after=now + 3600,
        valid_until=now + 7200,
    )
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 1)))
    assert "AA22" in result, result
    assert usage(module, account, session_id)[0][4:] == (0, 5)
    chain.pending_timestamp = now + 3700
    chain.mine()
    assert sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 1))) == "ok"
    chain.pending_timestamp = now + 7300
    chain.mine()
    result = sessions.outcome(sessions.op(account, session_key, transfer(token, attacker, 1)))
    assert "AA22" in result, result
    assert usage(module, account, session_id)[0][4:] == (1, 4)
    assert token.balanceOf(attacker) == 1
