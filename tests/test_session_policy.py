"""SessionKeyValidator: what a session may call — rules at their boundaries, value limits, time windows,
and every attempt to step outside the policy. All through the real EntryPoint v0.7 ``handleOps``."""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from keyscope.execution import EXECUTE_SELECTOR, Call, encode_execute, encode_mode
from keyscope.session import SIGNED, Condition, Permission, Rule, Session

RECORD = keccak(b"record(uint256,int256,address,bytes32,bool)")[:4]
OTHER = keccak(b"other(uint256)")[:4]
# argument offsets of record(uint256 amount, int256 delta, address who, bytes32 tag, bool flag)
AMOUNT, DELTA, WHO, TAG, FLAG = 0, 32, 64, 96, 128


def record_call(
    target, amount=0, delta=0, who="0x" + "00" * 20, tag=b"\x00" * 32, flag=False, value=0
) -> Call:
    return Call.of(target.address, value, target.record.encode_input(amount, delta, who, tag, flag))


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, target, nft):
    """The session-scoped fixtures this module uses, made before its own (ape snapshots the chain per fixture
    scope): the NFT, which one test here uses, made later has ape rebase every snapshot taken before."""


@pytest.fixture
def account(sessions, owner):
    return sessions.account(owner)


def grant(sessions, account, owner, key, target, rules=(), value_limit=0, selector=RECORD, **window):
    session = Session(
        session_key=key.address,
        permissions=(
            Permission(target=target.address, selector=selector, value_limit=value_limit, rules=tuple(rules)),
        ),
        **window,
    )
    return sessions.grant_onchain(account, owner, session)


# ------------------------------------------------------------------------------------------------------
# Conditions at their boundaries
# ------------------------------------------------------------------------------------------------------

REFERENCE = 1000
EXPECTED = {
    Condition.EQUAL: (False, True, False),
    Condition.LESS_THAN_OR_EQUAL: (True, True, False),
    Condition.LESS_THAN: (True, False, False),
    Condition.GREATER_THAN_OR_EQUAL: (False, True, True),
    Condition.GREATER_THAN: (False, False, True),
    Condition.NOT_EQUAL: (True, False, True),
}


@pytest.mark.parametrize("condition", list(EXPECTED))
def test_unsigned_condition_boundaries(sessions, account, owner, session_key, target, condition):
    rule = Rule(condition=condition, offset=AMOUNT, values=(REFERENCE,))
    grant(sessions, account, owner, session_key, target, [rule])
    for amount, allowed in zip((REFERENCE - 1, REFERENCE, REFERENCE + 1), EXPECTED[condition], strict=True):
        result = sessions.outcome(sessions.op(account, session_key, record_call(target, amount=amount)))
        if allowed:
            assert result == "ok", (condition, amount, result)
        else:
            assert (
                "AA23" in result and "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in result
            ), result
    assert target.calls() == sum(EXPECTED[condition])


@pytest.mark.parametrize("condition", list(EXPECTED))
def test_signed_condition_boundaries(sessions, account, owner, session_key, target, condition):
    reference = -5
    rule = Rule(condition=condition | SIGNED, offset=DELTA, values=(Rule.signed_word(reference),))
    grant(sessions, account, owner, session_key, target, [rule])
    for delta, allowed in zip((reference - 1, reference, reference + 1), EXPECTED[condition], strict=True):
        result = sessions.outcome(sessions.op(account, session_key, record_call(target, delta=delta)))
        assert (result == "ok") == allowed, (condition, delta, result)


def test_unsigned_comparison_of_a_negative_int_sees_a_huge_number(
    sessions, account, owner, session_key, target
):
    """Without SIGNED, int256 -1 is 2**256-1: documented, and why the SDK sets SIGNED for intN arguments."""
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=DELTA, values=(100,))
    grant(sessions, account, owner, session_key, target, [rule])
    assert "RuleViolated" in sessions.outcome(
        sessions.op(account, session_key, record_call(target, delta=-1))
    )
    assert sessions.outcome(sessions.op(account, session_key, record_call(target, delta=100))) == "ok"


@pytest.mark.parametrize(("signed", "low", "high"), [(False, 10, 20), (True, -20, -10)])
def test_in_range_ends(sessions, account, owner, session_key, target, signed, low, high):
    word = Rule.signed_word if signed else int
    rule = Rule(
        condition=Condition.IN_RANGE | (SIGNED if signed else 0),
        offset=DELTA if signed else AMOUNT,
        values=(word(low), word(high)),
    )
    grant(sessions, account, owner, session_key, target, [rule])
    field = "delta" if signed else "amount"
    for value, allowed in ((low - 1, False), (low, True), (high, True), (high + 1, False)):
        result = sessions.outcome(sessions.op(account, session_key, record_call(target, **{field: value})))
        assert (result == "ok") == allowed, (value, result)


def test_one_of_members_and_non_members(sessions, account, owner, session_key, target, accounts):
    allowed = [accounts[2].address, accounts[3].address, accounts[4].address]
    rule = Rule(condition=Condition.ONE_OF, offset=WHO, values=tuple(int(a, 16) for a in allowed))
    grant(sessions, account, owner, session_key, target, [rule])
    for who in allowed:
        assert sessions.outcome(sessions.op(account, session_key, record_call(target, who=who))) == "ok"
    assert "RuleViolated" in sessions.outcome(
        sessions.op(account, session_key, record_call(target, who=accounts[5].address))
    )


def test_wide_reference_values(sessions, account, owner, session_key, target):
    """Reference values that do not fit the rule word inline (2**224 and above, bytes32 tags)."""
    tag = keccak(b"tag")
    big = 2**255 + 12345
    rules = [
        Rule(condition=Condition.EQUAL, offset=TAG, values=(int.from_bytes(tag, "big"),)),
        Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=AMOUNT, values=(big,)),
    ]
    grant(sessions, account, owner, session_key, target, rules)
    assert (
        sessions.outcome(sessions.op(account, session_key, record_call(target, amount=big, tag=tag))) == "ok"
    )
    assert "ruleIndex=1" in sessions.outcome(
        sessions.op(account, session_key, record_call(target, amount=big - 1, tag=tag))
    )
    assert "ruleIndex=0" in sessions.outcome(
        sessions.op(account, session_key, record_call(target, amount=big, tag=b"\x01" * 32))
    )


def test_several_rules_must_all_hold(sessions, account, owner, session_key, target, accounts):
    rules = [
        Rule(condition=Condition.EQUAL, offset=WHO, values=(int(accounts[2].address, 16),)),
        Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=AMOUNT, values=(50,)),
        Rule(condition=Condition.EQUAL, offset=FLAG, values=(1,)),
    ]
    grant(sessions, account, owner, session_key, target, rules)
    good = {"who": accounts[2].address, "amount": 50, "flag": True}
    assert sessions.outcome(sessions.op(account, session_key, record_call(target, **good))) == "ok"
    for index, change in enumerate(({"who": accounts[3].address}, {"amount": 51}, {"flag": False})):
        result = sessions.outcome(
            sessions.op(account, session_key, record_call(target, **{**good, **change}))
        )
        assert f"ruleIndex={index}" in result, result


# ------------------------------------------------------------------------------------------------------
# Value limit
# ------------------------------------------------------------------------------------------------------


def test_value_limit_boundary(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target, value_limit=1000)
    assert sessions.outcome(sessions.op(account, session_key, record_call(target, value=1000))) == "ok"
    result = sessions.outcome(sessions.op(account, session_key, record_call(target, value=1001)))
    assert "ValueLimitExceeded(callIndex=0, permissionIndex=0, value=1001, valueLimit=1000)" in result


def test_zero_value_limit_refuses_any_value(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target)
    assert "ValueLimitExceeded" in sessions.outcome(
        sessions.op(account, session_key, record_call(target, value=1))
    )


def test_value_limit_applies_to_each_call_of_a_batch(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target, value_limit=10)
    calls = [record_call(target, value=10), record_call(target, value=10), record_call(target, value=11)]
    assert "ValueLimitExceeded(callIndex=2" in sessions.outcome(sessions.op(account, session_key, calls))
    assert sessions.outcome(sessions.op(account, session_key, calls[:2])) == "ok"


def test_plain_transfer_permission(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target, value_limit=500, selector=b"\x00" * 4)
    assert sessions.outcome(sessions.op(account, session_key, Call.of(target.address, 500))) == "ok"
    assert "ValueLimitExceeded" in sessions.outcome(
        sessions.op(account, session_key, Call.of(target.address, 501))
    )
    # a function call needs its own permission
    assert "AA24" in sessions.outcome(sessions.op(account, session_key, record_call(target)))


# ------------------------------------------------------------------------------------------------------
# Time window: the EntryPoint's own check (AA22), never block.timestamp in validation
# ------------------------------------------------------------------------------------------------------


def test_not_yet_valid_and_expired(sessions, account, owner, session_key, target, chain):
    now = chain.blocks.head.timestamp
    grant(sessions, account, owner, session_key, target, valid_after=now + 3600, valid_until=now + 7200)
    assert "AA22" in sessions.outcome(sessions.op(account, session_key, record_call(target)))
    chain.pending_timestamp = now + 3700
    chain.mine()
    assert sessions.outcome(sessions.op(account, session_key, record_call(target))) == "ok"
    chain.pending_timestamp = now + 7300
    chain.mine()
    assert "AA22" in sessions.outcome(sessions.op(account, session_key, record_call(target)))


def test_validation_data_carries_the_window(sessions, account, owner, session_key, target, module, chain):
    grant(sessions, account, owner, session_key, target, valid_after=111, valid_until=2**40)
    op = sessions.op(account, session_key, record_call(target))
    data = module.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op))
    result = int.from_bytes(
        chain.provider.web3.eth.call({"from": account, "to": module.address, "data": data}), "big"
    )
    assert result & ((1 << 160) - 1) == 0
    assert (result >> 160) & ((1 << 48) - 1) == 2**40
    assert result >> 208 == 111


# ------------------------------------------------------------------------------------------------------
# Target, selector, batches
# ------------------------------------------------------------------------------------------------------


def test_wrong_target_and_wrong_selector(sessions, account, owner, session_key, target, nft):
    grant(sessions, account, owner, session_key, target)
    wrong_target = Call.of(nft.address, 0, target.record.encode_input(0, 0, account, b"\x00" * 32, False))
    wrong_selector = Call.of(target.address, 0, target.other.encode_input(1))
    for call in (wrong_target, wrong_selector):
        assert "AA24" in sessions.outcome(sessions.op(account, session_key, call))
        assert "NoPermission(callIndex=0" in sessions.outcome(
            sessions.op(account, session_key, call, mode="use_with_key")
        )
    assert target.calls() == 0


def test_batch_with_one_bad_call_among_good_ones(sessions, account, owner, session_key, target):
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=AMOUNT, values=(10,))
    grant(sessions, account, owner, session_key, target, [rule])
    calls = [record_call(target, amount=1), record_call(target, amount=11), record_call(target, amount=2)]
    assert "RuleViolated(callIndex=1" in sessions.outcome(sessions.op(account, session_key, calls))
    assert target.calls() == 0
    assert sessions.outcome(sessions.op(account, session_key, [calls[0], calls[2]])) == "ok"
    assert target.calls() == 2


def test_batch_of_one_and_unknown_call_in_batch(sessions, account, owner, session_key, target, nft):
    grant(sessions, account, owner, session_key, target)
    assert sessions.outcome(sessions.op(account, session_key, record_call(target), batch=True)) == "ok"
    calls = [record_call(target), Call.of(nft.address, 0, nft.safeMint.encode_input(account))]
    assert "AA24" in sessions.outcome(sessions.op(account, session_key, calls))


def test_empty_batch(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target)
    execution = abi_encode(["(address,uint256,bytes)[]"], [[]])
    call_data = EXECUTE_SELECTOR + abi_encode(["bytes32", "bytes"], [encode_mode(1), execution])
    assert "EmptyBatch" in sessions.outcome(sessions.op(account, session_key, call_data=call_data))


# ------------------------------------------------------------------------------------------------------
# Escalation and malformed operations
# ------------------------------------------------------------------------------------------------------


def test_calls_to_the_account_itself_are_refused(
    sessions, account, owner, session_key, target, module, project
):
    from conftest import KIND

    grant(sessions, account, owner, session_key, target)
    contract = project.KeyscopeAccount.at(account)
    attacks = [
        KIND.install_validator_call(account, "0x" + "66" * 20),
        Call.of(account, 0, contract.execute.encode_input(b"\x00" * 32, b"")),
        KIND.uninstall_validator_call(account, module.address),
        Call.of(account, 1),
    ]
    for attack in attacks:
        result = sessions.outcome(sessions.op(account, session_key, [record_call(target), attack]))
        assert f"ForbiddenTarget(callIndex=1, target={account}" in result, result


def test_calls_to_the_module_are_refused(sessions, account, owner, session_key, target, module):
    grant(sessions, account, owner, session_key, target)
    other = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=OTHER),),
        salt=9,
    )
    for data in (
        module.enableSession.encode_input(other.as_abi()),
        module.invalidateAllSessions.encode_input(),
    ):
        result = sessions.outcome(sessions.op(account, session_key, Call.of(module.address, 0, data)))
        assert "ForbiddenTarget(callIndex=0" in result, result


def test_grants_naming_the_account_or_the_module_are_refused(module, accounts, session_key):
    eoa = accounts[7]
    for forbidden in (eoa.address, module.address, "0x" + "00" * 20):
        session = Session(
            session_key=session_key.address, permissions=(Permission(target=forbidden, selector=OTHER),)
        )
        with ape.reverts(module.ForbiddenPermissionTarget):
            module.enableSession(session.as_abi(), sender=eoa)


@pytest.mark.parametrize("call_type", [0xFF, 0xFE, 0x02])
def test_delegatecall_staticcall_and_unknown_modes_are_refused(
    sessions, account, owner, session_key, target, call_type
):
    grant(sessions, account, owner, session_key, target)
    execution = bytes.fromhex(target.address[2:]) + bytes(32) + target.other.encode_input(1)
    call_data = EXECUTE_SELECTOR + abi_encode(["bytes32", "bytes"], [encode_mode(call_type), execution])
    assert "UnsupportedExecutionMode" in sessions.outcome(
        sessions.op(account, session_key, call_data=call_data)
    )


def test_mode_selector_and_payload_must_be_zero(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target)
    execution = bytes.fromhex(target.address[2:]) + bytes(32) + target.other.encode_input(1)
    mode = bytes(6) + b"\xde\xad\xbe\xef" + bytes(22)
    call_data = EXECUTE_SELECTOR + abi_encode(["bytes32", "bytes"], [mode, execution])
    assert "UnsupportedExecutionMode" in sessions.outcome(
        sessions.op(account, session_key, call_data=call_data)
    )


def test_other_account_entry_points_are_refused(sessions, account, owner, session_key, target, project):
    grant(sessions, account, owner, session_key, target)
    contract = project.KeyscopeAccount.at(account)
    for call_data in (
        contract.executeFromExecutor.encode_input(b"\x00" * 32, b""),
        contract.installModule.encode_input(1, "0x" + "66" * 20, b""),
        b"\x12\x34\x56\x78" + bytes(96),
    ):
        assert "UnsupportedSelector" in sessions.outcome(
            sessions.op(account, session_key, call_data=call_data)
        )


def test_short_calldata_for_a_rule_fails(sessions, account, owner, session_key, target):
    rule = Rule(condition=Condition.EQUAL, offset=AMOUNT, values=(0,))
    grant(sessions, account, owner, session_key, target, [rule], selector=RECORD)
    short = Call.of(target.address, 0, RECORD + bytes(20))
    assert "CalldataTooShort(callIndex=0, permissionIndex=0, ruleIndex=0)" in sessions.outcome(
        sessions.op(account, session_key, short)
    )


def test_one_to_three_bytes_of_calldata_are_refused(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target, selector=b"\x00" * 4)
    assert "InvalidCallData" in sessions.outcome(
        sessions.op(account, session_key, Call.of(target.address, 0, b"\x01\x02"))
    )


def test_non_canonical_execute_encodings_are_refused(sessions, account, owner, session_key, target):
    grant(sessions, account, owner, session_key, target)
    execution = bytes.fromhex(target.address[2:]) + bytes(32) + target.other.encode_input(1)
    # the bytes argument placed one word further than the canonical 0x40
    padded = (
        EXECUTE_SELECTOR
        + bytes(32)
        + (0x60).to_bytes(32, "big")
        + bytes(32)
        + len(execution).to_bytes(32, "big")
        + execution
    )
    assert "MalformedExecution" in sessions.outcome(sessions.op(account, session_key, call_data=padded))
    # a batch whose element offset points elsewhere
    canonical = encode_execute([record_call(target), record_call(target)])
    tampered = bytearray(canonical)
    first_element_offset = 100 + 64  # after execute's head, the batch array offset and length
    tampered[first_element_offset + 31] += 32
    assert "MalformedExecution" in sessions.outcome(
        sessions.op(account, session_key, call_data=bytes(tampered))
    )


def test_gas_griefing_field_limits_still_need_a_valid_session(sessions, account, session_key, target):
    """Without a grant, a session key cannot make the account pay for anything."""
    op = sessions.op(account, session_key, record_call(target))
    assert "AA24" in sessions.outcome(op)


# ------------------------------------------------------------------------------------------------------
# Gas griefing: the session's cap on what one operation may cost the account
# ------------------------------------------------------------------------------------------------------


def test_gas_cost_cap(sessions, account, owner, session_key, target):
    """A session key cannot make the account pay more than maxGasCost for one operation (gas limits times
    maxFeePerGas), e.g. by inflating fees for a colluding bundler."""
    h = sessions.h
    cap = 10**15  # 0.001 ether
    session = Session(
        session_key=session_key.address,
        max_gas_cost=cap,
        permissions=(Permission(target=target.address, selector=OTHER),),
    )
    sessions.grant_onchain(account, owner, session)
    call = Call.of(target.address, 0, target.other.encode_input(1))
    from conftest import KIND

    def op_with(max_fee: int):
        op = h.op(account, encode_execute(call), key=KIND.nonce_key(sessions.module.address))
        op = op.replace(
            call_gas_limit=100_000,
            verification_gas_limit=300_000,
            pre_verification_gas=60_000,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=min(max_fee, 10**9),
        )
        return op.replace(signature=session_key.sign_hash(h.hash(op)))

    total_gas = 100_000 + 300_000 + 60_000
    at_cap = cap // total_gas
    assert sessions.outcome(op_with(at_cap)) == "ok"
    result = sessions.outcome(op_with(at_cap + 1))
    assert f"GasCostTooHigh(cost={total_gas * (at_cap + 1)}, limit={cap})" in result, result
    assert target.calls() == 1


def test_gas_cost_cap_must_be_at_least_a_gwei(module, accounts, session_key, target):
    with pytest.raises(ValueError, match="below 1 gwei"):
        Session(
            session_key=session_key.address,
            max_gas_cost=5,
            permissions=(Permission(target=target.address, selector=OTHER),),
        )
    session = Session.model_construct(
        session_key=session_key.address,
        valid_after=0,
        valid_until=0,
        max_gas_cost=5,
        salt=0,
        permissions=(Permission(target=target.address, selector=OTHER),),
    )
    with ape.reverts(module.InvalidMaxGasCost):
        module.enableSession(session.as_abi(), sender=accounts[7])


# ------------------------------------------------------------------------------------------------------
# The bytes the module judges are the bytes that run
# ------------------------------------------------------------------------------------------------------


def test_the_entry_points_execute_user_op_path_is_refused(sessions, account, owner, session_key, target):
    """callData starting with IAccountExecute.executeUserOp makes the EntryPoint call the account's
    executeUserOp(userOp, hash) instead of the callData (Kernel then runs callData[4:] on itself): the module
    judges only execute(bytes32,bytes), so no session operation takes that path."""
    grant(sessions, account, owner, session_key, target)
    execute_user_op = keccak(
        b"executeUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
    )
    call_data = execute_user_op[:4] + encode_execute(record_call(target))
    result = sessions.outcome(sessions.op(account, session_key, call_data=call_data))
    assert f"UnsupportedSelector(selector=0x{execute_user_op[:4].hex()})" in result, result
    assert target.calls() == 0


def test_a_bundlers_non_canonical_handle_ops_encoding_changes_nothing(
    sessions, account, owner, session_key, target, entry_point, accounts
):
    """A bundler colluding with the session key encodes handleOps with the operation's callData offset pointing
    past an allowed callData, to a forbidden one appended at the end. The EntryPoint hashes, validates (by
    re-encoding the operation canonically for the account) and executes the same view of the bytes: the module
    judges the forbidden callData and refuses it."""
    from keyscope.bundler.inprocess import revert_data_of
    from keyscope.entrypoint import encode_handle_ops
    from keyscope.revert import describe_revert

    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=AMOUNT, values=(10,))
    grant(sessions, account, owner, session_key, target, [rule])
    allowed = encode_execute(record_call(target, amount=10))
    forbidden = encode_execute(record_call(target, amount=11))
    assert len(allowed) == len(forbidden)
    op = sessions.op(account, session_key, call_data=forbidden)  # signed over the forbidden callData
    canonical = bytearray(encode_handle_ops([op.pack()], accounts[1].address))
    tuple_start = 4 + 0x80  # selector, 2 head words, array length, element offset
    call_data_at = tuple_start + int.from_bytes(canonical[tuple_start + 0x60 : tuple_start + 0x80], "big")
    # the canonical place shows the allowed callData; the offset now points to the forbidden one, appended
    canonical[call_data_at + 32 : call_data_at + 32 + len(allowed)] = allowed
    appended = len(forbidden).to_bytes(32, "big") + forbidden.ljust(-(-len(forbidden) // 32) * 32, b"\x00")
    canonical[tuple_start + 0x60 : tuple_start + 0x80] = (len(canonical) - tuple_start).to_bytes(32, "big")
    tampered = bytes(canonical) + appended
    with pytest.raises(Exception) as info:
        accounts[1].transfer(entry_point.address, 0, data=tampered)
    data = revert_data_of(info.value)
    assert data is not None
    text = describe_revert(data)
    assert "AA23" in text and "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in text, text
    assert target.calls() == 0
