"""More attempts by a leaked session key, a malicious bundler or relayer, and a malicious dapp crafting grant requests:
combinations and edge encodings the threat model's catalog does not list one by one. Each is a UserOperation built
byte by byte, sent to the real EntryPoint v0.7 ``handleOps`` (through the in-process bundler, or as an ``eth_call``
of ``handleOps`` where the bundler would refuse to carry it), and, where the SDK's local checker applies, checked
by it too: the checker must give the module's verdict.

Each test asserts the attack is refused, or that what goes through is exactly what the grant allows.
"""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope.checker import PolicyChecker
from keyscope.entrypoint import encode_handle_ops
from keyscope.erc1271 import co_sign_digest
from keyscope.errors import (
    GasCostTooHighError,
    LimitError,
    RuleRefusalError,
    SessionExpiredError,
    SessionNotYetValidError,
)
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute, encode_mode
from keyscope.gas import required_prefund
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak
from keyscope.limits import counters_from_chain
from keyscope.session import (
    SESSION_ABI_TYPE,
    SIGNED,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    TypedDataPermission,
    encode_at_signature,
    encode_session_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)

ETHER = 10**18
GWEI = 10**9
DAY = 86400
U256 = 2**256 - 1

RECORD = keccak(b"record(uint256,int256,address,bytes32,bool)")[:4]
OTHER = keccak(b"other(uint256)")[:4]
RELAY = keccak(b"relay(address,bytes)")[:4]
# argument offsets of record(uint256 amount, int256 delta, address who, bytes32 tag, bool flag)
AMOUNT, DELTA, WHO, TAG, FLAG = 0, 32, 64, 96, 128


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, target, nft, module):
    """The session-scoped fixtures this module uses, made before its own module-scoped ones (ape snapshots the
    chain per fixture scope)."""


@pytest.fixture(scope="module")
def reentrant(project, deployer):
    return project.Reentrant.deploy(sender=deployer)


@pytest.fixture
def account(module_account):
    """A keyscope account with the module installed, holding 5 ether (support.session_fixtures)."""
    return module_account


def grant(sessions, account, owner, key, permissions, **fields) -> tuple[Session, bytes]:
    """The owner's on-chain grant (with gas for sessions whose rules fill every storage word)."""
    session = Session(session_key=key.address, permissions=tuple(permissions), **fields)
    data = sessions.module.enableSession.encode_input(session.as_abi())
    op = sessions.h.op(account, encode_execute(Call.of(sessions.module.address, 0, data)), call_gas=5_000_000)
    receipt = sessions.h.submit(sessions.h.sign_owner(op, owner))
    assert receipt.success, receipt.reason
    session_id = session.session_id(account, sessions.epoch(account))
    assert sessions.module.isSessionActive(account, session_id)
    return session, session_id


def record(target, amount=0, delta=0, who="0x" + "00" * 20, tag=b"\x00" * 32, flag=False, value=0) -> Call:
    return Call.of(target.address, value, target.record.encode_input(amount, delta, who, tag, flag))


def other(target, amount: int, value: int = 0) -> Call:
    return Call.of(target.address, value, OTHER + abi_encode(["uint256"], [amount]))


def now(sessions) -> int:
    return int(sessions.h.chain.blocks.head.timestamp)


def checker_verdict(session: Session, account: str, module: str, op: UserOperation, **kw: Any) -> str:
    """The checker's verdict on ``op``: "ok", or the name of the module error (or AA code) it predicts."""
    try:
        PolicyChecker(session, account, module).check_operation(op, **kw)
    except (RuleRefusalError, LimitError) as error:
        return error.reason
    except GasCostTooHighError:
        return "GasCostTooHigh"
    except (SessionExpiredError, SessionNotYetValidError):
        return "AA22"
    except ExecuteDecodeError:
        return "MalformedExecution"
    return "ok"


def judged_alike(
    sessions,
    module,
    session: Session,
    account: str,
    op: UserOperation,
    expect: str,
    *,
    session_id: bytes | None = None,
    at: int | None = None,
) -> str:
    """Send ``op``; assert the module's outcome is ``expect`` ("ok", or text the rejection holds) and that the
    checker, given the module's counters, predicts it. Returns the module's outcome."""
    counters = None
    if session.limits:
        assert session_id is not None
        counters = counters_from_chain(session, [tuple(r) for r in module.limitUsage(account, session_id)])
    local = checker_verdict(
        session, account, module.address, op, now=now(sessions) + 1, counters=counters, at=at
    )
    result = sessions.outcome(op)
    if expect == "ok":
        assert result == "ok", result
        assert local == "ok", local
    else:
        assert expect in result, result
        assert local != "ok" and local in result, (local, result)
    return result  # fmt: skip


def eth_call_handle_ops(sessions, entry_point, packed_ops: list[Any], beneficiary: str) -> str:
    """The EntryPoint's verdict on a bundle, as an ``eth_call`` of ``handleOps``: "ok" or its decoded revert (for
    operations the in-process bundler would not carry)."""
    from keyscope.revert import describe_revert
    from support.raw_call import revert_bytes

    web3 = sessions.h.chain.provider.web3
    data = encode_handle_ops(packed_ops, beneficiary)
    try:
        sender = (
            sessions.h.funder.address
        )  # a funded sender: py-evm makes an eth_call's sender afford its gas
        web3.eth.call(
            {"from": sender, "to": entry_point.address, "data": "0x" + data.hex(), "gas": 30_000_000}
        )
    except Exception as error:  # the EntryPoint's revert: custom error data, or its message
        try:
            return describe_revert(revert_bytes(error))
        except Exception:
            return str(error)
    return "ok"


def validation_data(sessions, module, account: str, op: UserOperation) -> int:
    """What the module's ``validateUserOp`` returns for ``op`` when ``account`` asks (an ``eth_call``: nothing is
    counted)."""
    data = module.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op))
    web3 = sessions.h.chain.provider.web3
    raw = web3.eth.call({"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 5_000_000})
    return int.from_bytes(bytes(raw), "big")


def unpacked(validation: int) -> tuple[int, int, int]:
    """ERC-4337 validation data as (validAfter, validUntil, aggregator or failure bits)."""
    return validation >> 208, (validation >> 160) % 2**48, validation % 2**160


def signed_packed(sessions, op: UserOperation, key: LocalSigner, **packed_fields: Any) -> Any:
    """``op`` packed, with ``packed_fields`` replaced, signed by ``key`` over the packed operation's hash (USE)."""
    packed = op.pack().model_copy(update=packed_fields)
    digest = user_op_hash_v07(packed, sessions.h.entry_point.address, sessions.h.chain_id)
    return packed.model_copy(update={"signature": key.sign_hash(digest)})


# ------------------------------------------------------------------------------------------------------
# A granted target calling back, during the session's call
# ------------------------------------------------------------------------------------------------------


def relay(reentrant, to: str, data: bytes) -> Call:
    return Call.of(reentrant.address, 0, reentrant.relay.encode_input(to, data))


def test_a_granted_target_calling_back_gets_nothing_from_the_account(
    sessions, module, entry_point, reentrant, account, owner, session_key, attacker, chain, project
):
    """The owner grants a target that turns out to call back (a hook, a callback, a malicious contract): during the
    session's call it calls the account's ``execute`` (1 ether to the attacker), ``installModule`` (a validator of
    its own), ``executeFromExecutor``, ``executeUserOp``, the EntryPoint's ``handleOps`` with another operation of the
    session, and ``withdrawTo`` of the EntryPoint. The account takes ``execute`` and module changes from the
    EntryPoint or itself only, ``executeFromExecutor`` from installed executors only, has no ``executeUserOp``,
    ``handleOps`` does not re-enter, and a deposit is withdrawn by its owner only: every call back fails, the
    session's own call runs as granted."""
    session, _ = grant(
        sessions, account, owner, session_key, [Permission(target=reentrant.address, selector=RELAY)]
    )
    evil = LocalSigner.generate().address
    inner = sessions.op(account, session_key, relay(reentrant, attacker, b""), lane=1)
    single = bytes.fromhex(attacker[2:]) + ETHER.to_bytes(
        32, "big"
    )  # execution calldata: 1 ether to the attacker
    executor_call = keccak(b"executeFromExecutor(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [encode_mode(0), single]
    )
    calls = [
        relay(reentrant, account, encode_execute(Call.of(attacker, ETHER))),
        relay(reentrant, account, KIND.install_validator_call(account, evil).data),
        relay(reentrant, account, executor_call),
        relay(reentrant, entry_point.address, encode_handle_ops([inner.pack()], attacker)),
        # the EntryPoint's other path into an account, and the account's deposit at the EntryPoint
        relay(
            reentrant,
            account,
            keccak(
                b"executeUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
            )[:4]
            + abi_encode(["bytes32"], [bytes(32)]),
        ),
        relay(reentrant, entry_point.address, entry_point.withdrawTo.encode_input(attacker, 1)),
    ]
    before = chain.provider.get_balance(account)
    op = sessions.op(account, session_key, calls)
    judged_alike(sessions, module, session, account, op, "ok")
    assert (reentrant.attempted(), reentrant.succeeded()) == (6, 0)
    assert chain.provider.get_balance(attacker) == 0
    assert before - chain.provider.get_balance(account) < ETHER // 100  # the operation's gas, nothing more
    assert not project.KeyscopeAccount.at(account).isModuleInstalled(1, evil, b"")
    # the inner operation never ran: its lane's sequence is unused
    assert sessions.h.nonce(account, KIND.nonce_key(module.address, 1)) % 2**64 == 0


# ------------------------------------------------------------------------------------------------------
# Limits across permissions of one target, value-only calls and try mode
# ------------------------------------------------------------------------------------------------------


def test_limits_shared_by_a_targets_functions_and_its_plain_transfers_hold_in_try_mode(
    sessions, module, target, account, owner, session_key
):
    """One session, three permissions on one target: ``record`` and plain transfers (selector 0) each up to 1 ether
    a call, ``other`` without value; a NATIVE budget of 1.5 ether over the first two and a CALLS budget of 3 over all
    three. Try-mode batches (whose failing calls would be skipped at execution) mixing value-only calls and calls
    of each selector: the counts add up across selectors and kinds, a zero-value plain transfer still counts as a
    call, and nothing passes a budget."""
    permissions = [
        Permission(target=target.address, selector=RECORD, value_limit=ETHER),
        Permission(target=target.address, selector=bytes(4), value_limit=ETHER),
        Permission(target=target.address, selector=OTHER),
    ]
    limits = (
        Limit(
            kind=LimitKind.NATIVE, amount=3 * ETHER // 2, meters=(Meter(permission=0), Meter(permission=1))
        ),
        Limit(kind=LimitKind.CALLS, amount=3, meters=tuple(Meter(permission=i) for i in range(3))),
    )
    session, session_id = grant(sessions, account, owner, session_key, permissions, limits=limits)
    transfer = Call.of(target.address, ETHER)

    def op(calls):
        return sessions.op(account, session_key, call_data=encode_execute(calls, batch=True, exec_type=1))

    judged_alike(
        sessions, module, session, account, op([transfer, record(target, value=ETHER // 2 + 1)]),
        f"LimitExceeded(callIndex=1, limitIndex=0, amount={ETHER // 2 + 1}, left={ETHER // 2})",
        session_id=session_id,
    )  # fmt: skip
    half = ETHER // 2
    judged_alike(
        sessions, module, session, account,
        op([Call.of(target.address, half), record(target, value=half), other(target, 1)]), "ok", session_id=session_id,
    )  # fmt: skip
    # the calls are spent: a plain transfer of 0 wei (no NATIVE count) and `other` (no value) are both refused
    for calls in ([Call.of(target.address, 0)], [other(target, 2)]):
        judged_alike(
            sessions, module, session, account, op(calls), "LimitExceeded(callIndex=0, limitIndex=1, amount=1, left=0)",
            session_id=session_id,
        )  # fmt: skip
    assert [tuple(r)[4:] for r in module.limitUsage(account, session_id)] == [(ETHER, half), (3, 0)]
    assert target.calls() == 3


# ------------------------------------------------------------------------------------------------------
# Rules on one argument: all must hold, in order
# ------------------------------------------------------------------------------------------------------


def test_rules_on_the_same_argument_all_hold_and_the_first_broken_is_named(
    sessions, module, target, account, owner, session_key
):
    """Rules are ANDed, whatever their number, order or repetition on one argument: a key cannot read ``>= 10``
    and ``<= 20`` as alternatives, pass a duplicate rule by satisfying it once, or slip between contradictory
    rules. ``record``: amount >= 10, <= 20, != 15, one of (10, 15, 20, 25), and the first rule again; ``other``:
    > 5 and < 5 (nothing passes)."""
    ge10 = Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=AMOUNT, values=(10,))
    rules = (
        ge10,
        Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=AMOUNT, values=(20,)),
        Rule(condition=Condition.NOT_EQUAL, offset=AMOUNT, values=(15,)),
        Rule(condition=Condition.ONE_OF, offset=AMOUNT, values=(10, 15, 20, 25)),
        ge10,
    )
    contradiction = (
        Rule(condition=Condition.GREATER_THAN, offset=0, values=(5,)),
        Rule(condition=Condition.LESS_THAN, offset=0, values=(5,)),
    )
    session, _ = grant(
        sessions, account, owner, session_key,
        [Permission(target=target.address, selector=RECORD, rules=rules),
         Permission(target=target.address, selector=OTHER, rules=contradiction)],
    )  # fmt: skip
    expected = {9: 0, 10: None, 12: 3, 15: 2, 20: None, 25: 1, 2**255: 1}
    for amount, broken in expected.items():
        verdict = (
            "ok" if broken is None else f"RuleViolated(callIndex=0, permissionIndex=0, ruleIndex={broken}"
        )
        judged_alike(
            sessions,
            module,
            session,
            account,
            sessions.op(account, session_key, record(target, amount)),
            verdict,
        )
    for amount, broken in ((4, 0), (5, 0), (6, 1)):
        verdict = f"RuleViolated(callIndex=0, permissionIndex=1, ruleIndex={broken}"
        judged_alike(
            sessions,
            module,
            session,
            account,
            sessions.op(account, session_key, other(target, amount)),
            verdict,
        )
    assert target.calls() == 2


# ------------------------------------------------------------------------------------------------------
# Degenerate reference sets, wide values and the words after them
# ------------------------------------------------------------------------------------------------------

WIDE = 2**255 + 7
"""A reference that takes a second storage word (above the 216-bit inline field)."""


def test_degenerate_reference_sets_and_wide_values_are_read_word_by_word(
    sessions, module, target, account, owner, session_key
):
    """Rules whose storage is at its edges, so that a misread word would let another value through:

    * ``record``: ONE_OF with 31 values (the most; the permission's 31 words all taken), among them 0 and duplicates:
      the last member passes, a value next to the members does not;
    * ``other``: IN_RANGE with equal wide ends, then ONE_OF whose first member is wide, then ``<=`` a wide value:
      only the one value passes; each word that follows a wide value is a rule of its own, not a reference;
    * ``withBytes``: IN_RANGE over the whole uint256 range and over the whole int256 range on the same word, and
      ONE_OF with one member on the bytes argument's head (its offset, 0x40): everything with a canonical head
      passes, another head does not.
    """
    members = (*range(0, 58, 2), 56, 1000)  # 31 values: 0, 2, ..., 56, 56 again, 1000
    assert len(members) == 31
    wide_rules = (
        Rule(condition=Condition.IN_RANGE, offset=0, values=(WIDE, WIDE)),
        Rule(condition=Condition.ONE_OF, offset=0, values=(WIDE, 2**216, 1)),
        Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, values=(WIDE,)),
    )
    whole = (
        Rule(condition=Condition.IN_RANGE, offset=32, values=(0, U256)),
        Rule(condition=Condition.IN_RANGE | SIGNED, offset=32, values=(2**255, 2**255 - 1)),
        Rule(condition=Condition.ONE_OF, offset=0, values=(0x40,)),
    )
    with_bytes = keccak(b"withBytes(bytes,uint256)")[:4]
    session, _ = grant(
        sessions, account, owner, session_key,
        [Permission(target=target.address, selector=RECORD,
                    rules=(Rule(condition=Condition.ONE_OF, offset=AMOUNT, values=members),)),
         Permission(target=target.address, selector=OTHER, rules=wide_rules),
         Permission(target=target.address, selector=with_bytes, rules=whole)],
    )  # fmt: skip

    def send(call: Call, verdict: str) -> None:
        judged_alike(sessions, module, session, account, sessions.op(account, session_key, call), verdict)

    for amount in (0, 56, 1000):
        send(record(target, amount), "ok")
    for amount in (1, 57, 999, 1001):
        send(record(target, amount), "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0")
    send(other(target, WIDE), "ok")
    for amount, broken in ((WIDE - 1, 0), (WIDE + 1, 0), (2**216, 0), (1, 0), (0, 0)):
        send(other(target, amount), f"RuleViolated(callIndex=0, permissionIndex=1, ruleIndex={broken}")
    for amount in (0, 2**255, U256):
        send(
            Call.of(target.address, 0, with_bytes + abi_encode(["bytes", "uint256"], [b"\x01", amount])), "ok"
        )
    moved = with_bytes + abi_encode(["uint256", "uint256", "uint256", "bytes32"], [0x60, 5, 0, bytes(32)])
    send(Call.of(target.address, 0, moved), "RuleViolated(callIndex=0, permissionIndex=2, ruleIndex=2")


def _raw_session(key: str, target: str, rules: tuple[Rule, ...]) -> Session:
    return Session.model_construct(
        session_key=key, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(), salt=0,
        permissions=(Permission.model_construct(target=target, selector=OTHER, value_limit=0, rules=rules,
                                                function=None, limits=()),),
        limits=(), co_signer=None, typed_data_permissions=(), sign_in=(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("condition", "values", "error"),
    [
        (Condition.ONE_OF, (), "InvalidRule"),  # no member: would pass nothing, or read past its words
        (Condition.ONE_OF, tuple(range(32)), "InvalidRule"),  # 32 members: more than a rule may hold
        (Condition.ONE_OF, (WIDE, *range(30)), "TooManyRules"),  # 31 members with a wide first: 32 words
        (Condition.IN_RANGE, (6, 5), "InvalidRule"),  # low above high
        (Condition.IN_RANGE | SIGNED, (1, 2**256 - 1), "InvalidRule"),  # 1 .. -1 signed: low above high
        (Condition.IN_RANGE, (5,), "InvalidRule"),  # one end
        (Condition.EQUAL, (5, 6), "InvalidRule"),  # two values for a one-value condition
    ],
)
def test_a_grant_with_a_degenerate_reference_set_is_refused(
    module, accounts, session_key, target, condition, values, error
):
    """A dapp's grant request made without the SDK, with a reference set the module could not mean as shown."""
    rule = Rule.model_construct(condition=condition & ~SIGNED, offset=0, arg_type=0x20 if condition & SIGNED else 0,
                                values=values, name=None)  # fmt: skip
    session = _raw_session(session_key.address, target.address, (rule,))
    with ape.reverts(getattr(module, error)):
        module.enableSession(session.as_abi(), sender=accounts[7])


# ------------------------------------------------------------------------------------------------------
# ENABLE data crafted by whoever carries the grant
# ------------------------------------------------------------------------------------------------------


def _tuple_body(session: Session) -> bytes:
    """The ABI encoding of a Session tuple on its own (offsets inside it are relative to its start)."""
    return abi_encode([SESSION_ABI_TYPE], [session.as_abi()])[32:]


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def test_enable_data_reshaped_by_its_carrier_enables_only_what_the_owner_signed(
    sessions, module, target, account, owner, session_key
):
    """A dapp (or a relayer) holds the owner's off-chain grant of a narrow session (``other`` with amount <= 10) and
    reshapes the ENABLE bytes, which no signature covers: a wide session (``other``, any amount) appended with the
    head pointing at it; the wide one appended as trailing bytes behind the signed one; the session signature's
    offset aimed at the owner's signature; lengths and offsets past the end. The module hashes the very session it
    decodes and stores: only the signed session is ever enabled, and only as signed."""
    narrow = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=OTHER,
                                rules=(Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, values=(10,)),)),),
    )  # fmt: skip
    wide = Session(
        session_key=session_key.address, permissions=(Permission(target=target.address, selector=OTHER),)
    )
    owner_signature = sessions.owner_signature(account, owner, narrow)
    narrow_id = narrow.session_id(account, sessions.epoch(account))
    wide_id = wide.session_id(account, sessions.epoch(account))

    def enable_op(call: Call, reshape) -> UserOperation:
        op = sessions.h.op(account, encode_execute(call), key=KIND.nonce_key(module.address, 0))
        key_signature = session_key.sign_hash(sessions.h.hash(op))
        blob = abi_encode(
            [SESSION_ABI_TYPE, "bytes", "bytes"], [narrow.as_abi(), owner_signature, key_signature]
        )
        return op.replace(signature=b"\x01" + reshape(blob, key_signature))

    def head_to_wide(blob: bytes, _: bytes) -> bytes:
        return _word(len(blob)) + blob[32:] + _tuple_body(wide)

    def owner_signature_as_key_signature(blob: bytes, _: bytes) -> bytes:
        return blob[:64] + blob[32:64] + blob[96:]

    def signature_length_past_the_end(blob: bytes, _: bytes) -> bytes:
        at = int.from_bytes(blob[64:96], "big")
        return blob[:at] + _word(len(blob)) + blob[at + 32 :]

    def head_past_the_end(blob: bytes, _: bytes) -> bytes:
        return blob[:64] + _word(len(blob) + 32) + blob[96:]

    refused = {
        head_to_wide: f"InvalidOwnerSignature(account={account}, sessionId=0x{wide_id.hex()})",
        owner_signature_as_key_signature: "AA24",
        signature_length_past_the_end: "MalformedEnableData",
        head_past_the_end: "MalformedEnableData",
    }
    for reshape, error in refused.items():  # each with a call the signed session allows
        result = sessions.outcome(enable_op(other(target, 10), reshape))
        assert error.lower() in result.lower(), (reshape.__name__, result)
        assert not module.isSessionActive(account, narrow_id) and not module.isSessionActive(account, wide_id)

    # the wide session trailing behind the signed one: the signed one is enabled, and only it
    def wide_trailing(blob: bytes, _: bytes) -> bytes:
        return blob + _tuple_body(wide)

    result = sessions.outcome(enable_op(other(target, 11), wide_trailing))
    assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in result, result
    assert sessions.outcome(enable_op(other(target, 10), wide_trailing)) == "ok"
    assert module.isSessionActive(account, narrow_id) and not module.isSessionActive(account, wide_id)
    judged_alike(sessions, module, narrow, account, sessions.op(account, session_key, other(target, 11)),
                 "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0")  # fmt: skip
    assert target.calls() == 1


# ------------------------------------------------------------------------------------------------------
# The nonce key, the claimed time and the validation data
# ------------------------------------------------------------------------------------------------------


def test_a_nonce_key_crafted_by_the_key_routes_only_to_the_owner_or_the_module(
    sessions, module, target, account, owner, session_key
):
    """The account picks its validator from the nonce key's top 20 bytes, which the session key chooses: the owner's
    lane (key 0), an address that is not an installed validator (a validator of the attacker's, never installed),
    or the module with any lane. The first two ask for the owner's signature (AA24); the module's lanes are all the
    key's, and judge the same call the same way."""
    session, _ = grant(
        sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)]
    )
    stranger = LocalSigner.generate().address

    def op_on(nonce_key: int) -> UserOperation:
        op = sessions.h.op(account, encode_execute(other(target, 1)), key=nonce_key)
        return op.replace(signature=session_key.sign_hash(sessions.h.hash(op)))

    for nonce_key in (0, KIND.nonce_key(stranger, 0), int(session_key.address, 16) << 32):
        assert "AA24" in sessions.outcome(op_on(nonce_key))
    for lane in (1, 2**32 - 1):
        judged_alike(sessions, module, session, account, op_on(KIND.nonce_key(module.address, lane)), "ok")
    assert target.calls() == 2


def test_a_claimed_time_out_of_reach_counts_nothing_and_lands_nowhere(
    sessions, module, target, account, owner, session_key
):
    """A relayer (or the key) holding a limited session's operation claims a time the EntryPoint will not reach
    soon (two days ahead) or ever (2**48 - 1, the largest claim: its period ends past the 48-bit field, so the
    period bounds only its start: the validation data says validUntil 0, no end, after a validAfter never reached),
    claims one past the end of a session's window (validAfter after validUntil), or nests the claim twice. Each is
    refused (AA22 for the claims; AA24 for the double prefix) and counts nothing: the day's budget is whole for the
    operation that claims the present. The validation data never carries the limits' internal flag (bit 1)."""
    limit = Limit(kind=LimitKind.CALLS, amount=1, period=DAY, meters=(Meter(permission=0),))
    session, session_id = grant(
        sessions,
        account,
        owner,
        session_key,
        [Permission(target=target.address, selector=OTHER)],
        limits=(limit,),
    )
    present = now(sessions) + 1
    ahead = present + 2 * DAY
    day_start = ahead - ahead % DAY
    expected = {ahead: (day_start, day_start + DAY - 1), 2**48 - 1: ((2**48 - 1) // DAY * DAY, 0)}
    for claim, window in expected.items():
        op = sessions.op(account, session_key, other(target, 1), at=claim)
        # what the module returns: the claimed period's window, no aggregator bits (the limits' flag cleared)
        assert unpacked(validation_data(sessions, module, account, op)) == (*window, 0)
        judged_alike(sessions, module, session, account, op, "AA22", session_id=session_id, at=claim)
        assert [tuple(r)[4:] for r in module.limitUsage(account, session_id)] == [(0, 1)]
    # a second key's session ending within the hour: a claim two days ahead opens after it ends (validAfter past
    # validUntil), a window the EntryPoint never meets
    short_key = LocalSigner.generate()
    short, short_id = grant(sessions, account, owner, short_key, [Permission(target=target.address, selector=OTHER)],
                            limits=(limit,), valid_until=present + 3600)  # fmt: skip
    op = sessions.op(account, short_key, other(target, 1), at=ahead)
    assert unpacked(validation_data(sessions, module, account, op)) == (day_start, present + 3600, 0)
    judged_alike(sessions, module, short, account, op, "AA22", session_id=short_id, at=ahead)
    assert [tuple(r)[4:] for r in module.limitUsage(account, short_id)] == [(0, 1)]
    twice = sessions.op(account, session_key, other(target, 1), at=present)
    twice = twice.replace(signature=encode_at_signature(present, twice.signature))
    assert "AA24" in sessions.outcome(twice)
    op = sessions.op(account, session_key, other(target, 1), at=present)
    judged_alike(sessions, module, session, account, op, "ok", session_id=session_id, at=present)
    assert [tuple(r)[4:] for r in module.limitUsage(account, session_id)] == [(1, 0)]


def test_a_65_byte_signature_starting_with_the_at_byte_is_use(
    sessions, module, target, account, owner, session_key
):
    """A 65-byte signature is USE whatever its first byte: one whose r starts with 0x03 (MODE_AT's byte: about one
    signature in 256) is the key's signature of the operation, never read as a claimed time before 58 more bytes.
    The operation is re-signed with a growing preVerificationGas until its signature starts so."""
    grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)])
    op = sessions.op(account, session_key, other(target, 1))
    base = op.pack().pre_verification_gas
    signed = (
        signed_packed(sessions, op, session_key, pre_verification_gas=base + extra) for extra in range(4096)
    )
    packed = next(candidate for candidate in signed if candidate.signature[0] == 0x03)
    assert len(packed.signature) == 65
    digest = user_op_hash_v07(packed, sessions.h.entry_point.address, sessions.h.chain_id)
    data = module.validateUserOp.encode_input(packed.as_tuple(), digest)
    web3 = sessions.h.chain.provider.web3
    raw = web3.eth.call({"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 5_000_000})
    assert unpacked(int.from_bytes(bytes(raw), "big"))[2] == 0  # accepted: no failure bit
    # the same signature with its first byte changed no longer recovers the key: refused, not reverted
    other_first = packed.model_copy(update={"signature": b"\x04" + packed.signature[1:]})
    data = module.validateUserOp.encode_input(other_first.as_tuple(), digest)
    raw = web3.eth.call({"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 5_000_000})
    assert unpacked(int.from_bytes(bytes(raw), "big"))[2] == 1


# ------------------------------------------------------------------------------------------------------
# Gas fields at their maxima, paymasterAndData shapes
# ------------------------------------------------------------------------------------------------------

MAX_GAS_VALUE = 2**120 - 1
"""The largest value the EntryPoint takes in any gas field (AA94 above)."""


def test_gas_fields_at_their_maxima_cannot_overflow_the_cap(
    sessions, module, entry_point, target, account, owner, session_key, attacker
):
    """Every gas field at the largest value the EntryPoint takes (2**120 - 1): the cap's arithmetic (five limits
    summed, times maxFeePerGas) stays within 256 bits, so the module refuses with the true cost, as the checker
    does; one more in any field is the EntryPoint's AA94 before the account is asked. A session without a cap
    passes the policy, and the account cannot pay the prefund (AA21)."""
    capped, _ = grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)],
                      max_gas_cost=ETHER // 20)  # fmt: skip
    uncapped_key = LocalSigner.generate()
    grant(sessions, account, owner, uncapped_key, [Permission(target=target.address, selector=OTHER)])
    fields = {
        "verification_gas_limit": MAX_GAS_VALUE,
        "call_gas_limit": MAX_GAS_VALUE,
        "pre_verification_gas": MAX_GAS_VALUE,
        "max_fee_per_gas": MAX_GAS_VALUE,
        "max_priority_fee_per_gas": MAX_GAS_VALUE,
    }
    op = sessions.op(account, session_key, other(target, 1), **fields)
    cost = 3 * MAX_GAS_VALUE * MAX_GAS_VALUE
    assert checker_verdict(capped, account, module.address, op, now=now(sessions)) == "GasCostTooHigh"
    result = eth_call_handle_ops(sessions, entry_point, [op.pack()], attacker)
    assert "AA23" in result and f"GasCostTooHigh(cost={cost}, limit={ETHER // 20})" in result, result
    for name in fields:
        over = sessions.op(account, session_key, other(target, 1), **{**fields, name: MAX_GAS_VALUE + 1})
        assert "AA94" in eth_call_handle_ops(sessions, entry_point, [over.pack()], attacker), name
    unbounded = sessions.op(account, uncapped_key, other(target, 1), **fields)
    assert "AA21" in eth_call_handle_ops(sessions, entry_point, [unbounded.pack()], attacker)
    assert target.calls() == 0


ZERO = "0x" + "00" * 20


def test_paymaster_and_data_shapes_a_session_key_can_craft(
    sessions, module, entry_point, chain, target, account, owner, session_key, attacker
):
    """``paymasterAndData`` of 52 bytes naming the zero address: the EntryPoint takes it as no paymaster (the account
    pays) but charges the prefund with its two gas limits, so the cap counts them too (module and checker); within
    the cap it lands and the account pays at most the cap. 20 to 51 bytes (an address without its gas limits) never
    reach the account: AA93."""
    cap = ETHER // 100
    session, _ = grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)],
                       max_gas_cost=cap)  # fmt: skip
    padded = sessions.op(account, session_key, other(target, 1), paymaster=ZERO,
                         paymaster_verification_gas_limit=5_000_000, paymaster_post_op_gas_limit=0)  # fmt: skip
    assert padded.pack().paymaster_and_data[:20] == bytes(20)
    cost = (1_500_000 + 1_000_000 + 60_000 + 5_000_000) * 2 * GWEI
    judged_alike(sessions, module, session, account, padded, f"GasCostTooHigh(cost={cost}, limit={cap})")
    within = sessions.op(account, session_key, other(target, 1), paymaster=ZERO,
                         paymaster_verification_gas_limit=100_000, paymaster_post_op_gas_limit=1_000_000)  # fmt: skip
    before = chain.provider.get_balance(account)
    judged_alike(sessions, module, session, account, within, "ok")
    assert before - chain.provider.get_balance(account) <= cap
    op = sessions.op(account, session_key, other(target, 1))
    for size in (20, 36, 51):
        short = signed_packed(
            sessions, op, session_key, paymaster_and_data=bytes.fromhex(attacker[2:]) + bytes(size - 20)
        )
        assert "AA93" in eth_call_handle_ops(sessions, entry_point, [short], attacker), size
    assert target.calls() == 1


# ------------------------------------------------------------------------------------------------------
# Modes naming what the key does not hold
# ------------------------------------------------------------------------------------------------------


def _space(session_id: bytes) -> str:
    return "0x" + keccak(b"keyscope co-signed session" + session_id)[12:].hex()


def test_a_key_naming_a_co_signed_space_or_its_plain_session_in_the_other_mode_gets_nothing(
    sessions, module, target, account, owner, session_key
):
    """One key holds a co-signed session and a plain one on the same call. Without the co-signer it names the
    co-signed session's permission space as the key (USE_WITH_KEY: the policy passes there, the signature cannot
    recover to a hashed address), and names its plain session in the co-signed SESSION mode (whose permissions are
    looked up in the id's space, where a plain session has none)."""
    co_signer = LocalSigner.generate()
    _, co_id = grant(sessions, account, owner, session_key,
                     [Permission(target=target.address, selector=OTHER)], co_signer=co_signer.address)  # fmt: skip
    plain, plain_id = grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)],
                            salt=1)  # fmt: skip
    op = sessions.op(account, session_key, other(target, 1))
    signature = op.signature
    as_space = op.replace(signature=encode_use_with_key_signature(_space(co_id), signature))
    assert "AA24" in sessions.outcome(as_space)
    as_session = op.replace(signature=encode_session_signature(plain_id, signature))
    result = sessions.outcome(as_session)
    assert "AA23" in result and "NoPermission(callIndex=0" in result, result
    judged_alike(sessions, module, plain, account, op, "ok")
    assert target.calls() == 1


def test_paymaster_gas_limits_without_a_paymaster_are_not_part_of_the_operation(
    sessions, module, target, account, owner, session_key
):
    """A UserOperation built with paymaster gas limits but no paymaster (a client's leftovers, or a relayer's JSON):
    they are packed nowhere, so the EntryPoint's prefund and the module's cost leave them out, and the operation
    lands within the cap. The checker counted them, and refused an operation the chain accepts."""
    cap = ETHER // 100
    session, _ = grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)],
                       max_gas_cost=cap)  # fmt: skip
    op = sessions.op(account, session_key, other(target, 1), paymaster_verification_gas_limit=10**7,
                     paymaster_post_op_gas_limit=10**7)  # fmt: skip
    assert op.pack().paymaster_and_data == b""
    judged_alike(sessions, module, session, account, op, "ok")


@pytest.mark.parametrize(("valid_after", "valid_until"), [(100, 100), (101, 100), (2**48 - 1, 1)])
def test_a_grant_whose_window_is_empty_is_refused(
    module, accounts, session_key, target, valid_after, valid_until
):
    """A window that holds no second (validUntil at or before validAfter, validUntil not 0) would make validation data
    whose meaning depends on how the EntryPoint reads an inverted range: the module refuses it when it is enabled,
    the SDK when the session is built. validUntil 0 means no end, whatever validAfter is."""
    with pytest.raises(ValueError, match="must be after valid_after"):
        Session(session_key=session_key.address, valid_after=valid_after, valid_until=valid_until,
                permissions=(Permission(target=target.address, selector=OTHER),))  # fmt: skip
    raw = _raw_session(session_key.address, target.address, ())
    with ape.reverts(module.InvalidTimeWindow):
        module.enableSession(
            raw.model_copy(update={"valid_after": valid_after, "valid_until": valid_until}).as_abi(),
            sender=accounts[7],
        )
    module.enableSession(
        raw.model_copy(update={"valid_after": valid_after, "valid_until": 0}).as_abi(), sender=accounts[7]
    )


# ------------------------------------------------------------------------------------------------------
# Sessions granted at install on an account its proxy's constructor initialises
# ------------------------------------------------------------------------------------------------------

ON_INSTALL = keccak(b"onInstall(bytes)")[:4]


@pytest.fixture(scope="module")
def nexus(sessions, deployer, chain) -> dict[str, str]:
    """Nexus 1.0's released implementation, account factory and bootstrap (modulekit's bytecode). Its factory
    creates each account as a proxy whose constructor runs ``initializeAccount``: the bootstrap installs the
    validators, the owner's first, while the account has no code yet."""
    from keyscope.hexutil import to_address, to_bytes
    from support.accounts import account_bytecode

    code = {name: to_bytes(value) for name, value in account_bytecode().items()}

    def deploy(init: bytes) -> str:
        tx = chain.provider.network.ecosystem.create_transaction(
            data=init, sender=deployer.address, gas_limit=30_000_000
        )
        return to_address(deployer.call(tx).contract_address)

    implementation = deploy(
        code["NEXUS_BYTECODE"] + abi_encode(["address"], [sessions.h.entry_point.address])
    )
    return {
        "factory": deploy(
            code["NEXUS_ACCOUNT_FACTORY_BYTECODE"]
            + abi_encode(["address", "address"], [implementation, deployer.address])
        ),
        "bootstrap": deploy(code["NEXUS_BOOTSTRAP_BYTECODE"]),
    }


def _typed_data_on(verifying: str) -> TypedDataPermission:
    """A signing permission in the domain of ``verifying`` (name and verifyingContract)."""
    return TypedDataPermission(
        domain_fields=0x09, name="Owner", verifying_contract=verifying, contents_name="Approve",
        contents_type="Approve(address owner)",
    )  # fmt: skip


def _no_code_account_enables(sessions, account: str, session: Session) -> str:
    """The module's verdict when ``account``, an address without code, enables ``session`` (an ``eth_call``): "ok"
    or its decoded revert."""
    from keyscope.revert import describe_revert
    from support.raw_call import revert_bytes

    data = sessions.module.enableSession.encode_input(session.as_abi())
    web3 = sessions.h.chain.provider.web3
    try:
        web3.eth.call(
            {"from": account, "to": sessions.module.address, "data": "0x" + data.hex(), "gas": 5_000_000}
        )
    except Exception as error:
        return describe_revert(revert_bytes(error))
    return "ok"


@pytest.mark.parametrize(
    "aimed", ["owner validator, installed before", "validator installed after", "signing domain"]
)
def test_a_grant_at_install_names_no_validator_of_an_account_its_proxy_s_constructor_initialises(
    sessions, project, deployer, chain, nexus, session_key, aimed
):
    """Nexus (like the reference account) is created as a proxy whose constructor installs the account's modules:
    the owner validator first, then the session module with the sessions it is given. While the constructor runs
    the account has no code and answers no ``isModuleInstalled``, so the module took it to have no modules, and a
    session granted there could call the owner validator installed a moment before (attack 52's
    ``onInstall(attacker)``: the key makes itself the owner, then signs the owner's operations). The owner creates
    the account with such a grant in its first operation; the key and the attacker then try it. The module asks the
    target instead whether it is a validator (ERC-7579 ``isModuleType(1)``): the account is not created (AA13), and
    nothing is taken. A session on another target is still granted at install."""
    from keyscope import Web3Chain
    from keyscope.accounts import NexusAccountKind
    from support.install_data import encode_install_sessions

    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    kind = NexusAccountKind(
        owner_validator=validator.address, factory=nexus["factory"], bootstrap=nexus["bootstrap"]
    )
    owner, attacker = LocalSigner.generate(), LocalSigner.generate()
    aimed_at = (
        validator
        if aimed != "validator installed after"
        else project.OwnerECDSAValidator.deploy(sender=deployer)
    )
    if aimed == "signing domain":
        session = Session(
            session_key=session_key.address, typed_data_permissions=(_typed_data_on(aimed_at.address),)
        )
        refusal = f"ForbiddenSigningDomain(index=0, verifyingContract={aimed_at.address})"
    else:
        session = Session(session_key=session_key.address,
                          permissions=(Permission(target=aimed_at.address, selector=ON_INSTALL),))  # fmt: skip
        refusal = f"PermissionTargetIsModule(permissionIndex=0, target={aimed_at.address}, moduleType=1)"
    modules = [(1, sessions.module.address, encode_install_sessions([session]))]
    if aimed == "validator installed after":
        modules.append((1, aimed_at.address, bytes.fromhex(owner.address[2:])))
    web3chain = Web3Chain(chain.provider.web3)

    def create(modules: list[tuple[int, str, bytes]]) -> tuple[str, str]:
        """The owner's first operation, creating the account with ``modules`` after its owner validator."""
        deployment = kind.deployment(web3chain, owner.address, modules)
        sessions.h.fund(deployment.address, ETHER)
        op = sessions.h.op(deployment.address, encode_execute(Call(deployer.address, 0, b"")),
                           key=kind.nonce_key(validator.address), factory=deployment.factory,
                           factory_data=deployment.factory_data, verification_gas=5_000_000)  # fmt: skip
        return deployment.address, sessions.outcome(sessions.h.sign_owner(op, owner))

    account, created = create(modules)
    # the attack: the key makes the attacker the owner its validator knows, the attacker signs the owner's operation
    take_over = Call(
        aimed_at.address, 0, ON_INSTALL + abi_encode(["bytes"], [bytes.fromhex(attacker.address[2:])])
    )
    session_op = sessions.h.op(
        account, encode_execute(take_over), key=kind.nonce_key(sessions.module.address)
    )
    sessions.outcome(session_op.replace(signature=session_key.sign_hash(sessions.h.hash(session_op))))
    drain = sessions.h.op(account, encode_execute(Call(attacker.address, ETHER // 2, b"")),
                          key=kind.nonce_key(aimed_at.address))  # fmt: skip
    sessions.outcome(sessions.h.sign_owner(drain, attacker))
    assert chain.provider.get_balance(attacker.address) == 0
    assert validator.ownerOf(account) != attacker.address and aimed_at.ownerOf(account) != attacker.address
    assert "AA13" in created and chain.provider.get_code(account) == b"", created
    # the factory reports its own error (NexusInitializationFailed): the module's, asked as the account while it has
    # no code, as its constructor asks
    assert refusal in _no_code_account_enables(sessions, account, session), refusal

    # the same creation with a session on another target: granted at install, and its call runs
    harmless = Session(session_key=session_key.address,
                       permissions=(Permission(target=attacker.address, selector=bytes(4), value_limit=1),))  # fmt: skip
    account, created = create([(1, sessions.module.address, encode_install_sessions([harmless]))])
    assert created == "ok", created
    assert sessions.module.isSessionActive(account, harmless.session_id(account, 0))
    paid = sessions.h.op(account, encode_execute(Call(attacker.address, 1, b"")),
                         key=kind.nonce_key(sessions.module.address))  # fmt: skip
    assert sessions.outcome(paid.replace(signature=session_key.sign_hash(sessions.h.hash(paid)))) == "ok"
    assert chain.provider.get_balance(attacker.address) == 1


@pytest.mark.parametrize(
    ("what", "verdict"),
    [
        ("OwnerECDSAValidator", "PermissionTargetIsModule(permissionIndex=0, target={}, moduleType=1)"),
        ("RecordingHook", "PermissionTargetIsModule(permissionIndex=0, target={}, moduleType=4)"),
        ("GreedyModule", "PermissionTargetIsModule(permissionIndex=0, target={}, moduleType=1)"),
        ("StrictTypeExecutor", "PermissionTargetIsModule(permissionIndex=0, target={}, moduleType=2)"),
        ("RecordingTarget", "ok"),
        ("an address without code", "ok"),
    ],
)
def test_an_account_without_code_is_judged_by_what_a_target_says_it_is(
    sessions, project, deployer, session_key, what, verdict
):
    """While an account has no code (its proxy's constructor installs its modules), the module asks each target the
    questions it would ask the account, of itself: ERC-7579 ``isModuleType`` for a validator, an executor and a hook.
    A module of one of those types is refused as the account's (the bootstrap installs validators, executors and
    hooks around the session module), one that reverts on the types it is not included (``StrictTypeExecutor``:
    asked no further after its revert on type 1, it was taken for no module; attack 327); a contract that answers
    nothing, or an address without code, is no module."""
    target = (
        LocalSigner.generate().address
        if what == "an address without code"
        else getattr(project, what).deploy(sender=deployer).address
    )
    account = LocalSigner.generate().address
    sessions.h.fund(account, ETHER)
    session = Session(
        session_key=session_key.address, permissions=(Permission(target=target, selector=OTHER),)
    )
    assert _no_code_account_enables(sessions, account, session) == verdict.format(target)


# ------------------------------------------------------------------------------------------------------
# The USE path after its gas trims: the key's signature, the bytes after a call, the words after the rules
# ------------------------------------------------------------------------------------------------------

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2


def module_verdict(sessions, module, account: str, op: UserOperation) -> str:
    """The module's ``validateUserOp`` on ``op`` as ``account`` asks (an ``eth_call``: nothing is counted): "ok",
    "SIG_VALIDATION_FAILED" (1 returned, no revert), or the custom error it reverts with."""
    from keyscope.revert import describe_revert
    from support.raw_call import revert_bytes

    try:
        validation = validation_data(sessions, module, account, op)
    except Exception as error:  # the module's revert
        return describe_revert(revert_bytes(error))
    failure = unpacked(validation)[2]
    return "ok" if failure == 0 else "SIG_VALIDATION_FAILED" if failure == 1 else f"aggregator {failure:#x}"


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _not_the_keys_signatures(signature: bytes) -> dict[str, bytes]:
    """65-byte ``r || s || v`` forms of the key's signature that ``ECDSA.tryRecover`` takes for no signer, or for
    another one: v as 0/1 (the un-offset parity some signers give), v past 28, the other parity, the malleable
    high-s twin, s one past half the order, r or s zero, r at the curve order."""
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    assert v in (27, 28) and s <= HALF_N
    return {
        "v - 27": signature[:64] + bytes((v - 27,)),
        "v + 4": signature[:64] + bytes((v + 4,)),
        "v 0xff": signature[:64] + bytes((0xFF,)),
        "other parity": signature[:64] + bytes((55 - v,)),
        "high-s twin": _word(r) + _word(SECP256K1_N - s) + bytes((55 - v,)),
        "s half order + 1": _word(r) + _word(HALF_N + 1) + bytes((v,)),
        "s zero": _word(r) + _word(0) + bytes((v,)),
        "r zero": _word(0) + _word(s) + bytes((v,)),
        "r at the order": _word(SECP256K1_N) + _word(s) + bytes((v,)),
    }


def _plain_and_co_signed(sessions, account, owner, session_key, target, module):
    """A plain session and a co-signed one of the same key on ``other(...)``; one operation of the key's, with the
    co-signed session's id and its co-signer's signature of that operation."""
    co_signer = LocalSigner.generate()
    grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)])
    _, co_id = grant(sessions, account, owner, session_key, [Permission(target=target.address, selector=OTHER)],
                     co_signer=co_signer.address, salt=1)  # fmt: skip
    op = sessions.op(account, session_key, other(target, 1))
    co_signature = co_signer.sign_hash(
        co_sign_digest(co_id, sessions.h.hash(op), chain_id=sessions.h.chain_id, module=module.address)
    )
    return op, co_id, co_signature


def test_no_other_form_of_the_keys_signature_validates_in_any_mode(
    sessions, module, target, account, owner, session_key
):
    """The key's ECDSA recovery moved into scratch memory for every mode (USE, USE after a claimed time,
    USE_WITH_KEY, a co-signed session's SESSION). Whatever form of the key's signature of the operation a relayer
    or the key's holder makes of it (v as 0/1 or past 28, the other parity, the malleable twin, s just past half
    the order, r or s zero, r at the order), the module returns SIG_VALIDATION_FAILED in each mode without
    reverting (bundlers' estimates rely on it), the co-signer's signature is judged alike, and only the canonical
    form validates."""
    op, co_id, co_signature = _plain_and_co_signed(sessions, account, owner, session_key, target, module)
    signature = op.signature
    layouts = {
        "USE": lambda key_sig: key_sig,
        "USE at a claimed time": lambda key_sig: encode_at_signature(now(sessions), key_sig),
        "USE_WITH_KEY": lambda key_sig: encode_use_with_key_signature(session_key.address, key_sig),
        "SESSION": lambda key_sig: encode_session_signature(co_id, key_sig, co_signature),
    }
    for mode, layout in layouts.items():
        assert module_verdict(sessions, module, account, op.replace(signature=layout(signature))) == "ok", (
            mode
        )
        for form, forged in _not_the_keys_signatures(signature).items():
            verdict = module_verdict(sessions, module, account, op.replace(signature=layout(forged)))
            assert verdict == "SIG_VALIDATION_FAILED", (mode, form, verdict)
    for form, forged in _not_the_keys_signatures(co_signature).items():
        verdict = module_verdict(
            sessions,
            module,
            account,
            op.replace(signature=encode_session_signature(co_id, signature, forged)),
        )
        assert verdict == "SIG_VALIDATION_FAILED", ("co-signature", form, verdict)
    # through the EntryPoint: AA24 for each form of a USE signature, nothing runs
    for forged in _not_the_keys_signatures(signature).values():
        assert "AA24" in sessions.outcome(op.replace(signature=forged))
    assert target.calls() == 0


def _dirty_padding_after_first_call(call_data: bytes, first_data_length: int) -> bytes:
    """``execute`` batch callData with the padding after call 0's data (which an ABI decoder never reads) set to
    0xff bytes: call 0's data starts at byte 100 (execute's head) + 64 (array offset, count) + 64 (two element
    offsets) + 128 (its target, value, data offset and length)."""
    start = 100 + 64 + 64 + 128 + first_data_length
    end = start + (-first_data_length % 32)
    return call_data[:start] + b"\xff" * (end - start) + call_data[end:]


def test_a_rule_never_reads_the_bytes_after_its_call_in_a_batch(
    sessions, module, target, account, owner, session_key
):
    """``other(amount)`` with the rule ``amount >= 1000``, called in a batch with its argument left out: the word the
    rule would read runs past the call's 4 bytes into the element's padding, which no decoder reads, and on into the
    next element. A target that reads its arguments with CALLDATALOAD sees 0 there (past its calldata's end). The key
    filling the padding with 0xff is refused before any rule runs (``MalformedExecution``: a batch's padding is zero
    bytes), after a short call as after a whole one; canonically encoded, the short call is refused by the rule
    loop's length check (CalldataTooShort), from the module and the checker, and whole calls run."""
    rule = Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=0, values=(1000,))
    session, _ = grant(sessions, account, owner, session_key,
                       [Permission(target=target.address, selector=OTHER, rules=(rule,))])  # fmt: skip
    allowed = other(target, 1000)
    short = Call.of(target.address, 0, OTHER)
    call_data = _dirty_padding_after_first_call(encode_execute([short, allowed]), 4)
    word = int.from_bytes(call_data[100 + 256 + 4 : 100 + 256 + 36], "big")
    assert rule.holds(word)  # what the rule would read past the call's end passes it
    for dirty in (call_data, _dirty_padding_after_first_call(encode_execute([allowed, allowed]), 36)):
        op = sessions.op(account, session_key, call_data=dirty)
        judged_alike(sessions, module, session, account, op, "MalformedExecution")
    op = sessions.op(account, session_key, [short, allowed], batch=True)
    judged_alike(
        sessions,
        module,
        session,
        account,
        op,
        "CalldataTooShort(callIndex=0, permissionIndex=0, ruleIndex=0)",
    )
    judged_alike(
        sessions, module, session, account, sessions.op(account, session_key, [allowed, allowed]), "ok"
    )
    assert target.calls() == 2


def _padding_of_each_call(call_data: bytes) -> list[range]:
    """The positions, in ``execute`` batch callData, of the zero bytes padding each call's data to a word."""
    # executionCalldata starts after execute's head; the array's offsets after its own two words
    execution = 100
    count = int.from_bytes(call_data[execution + 32 : execution + 64], "big")
    paddings = []
    for index in range(count):
        head = execution + 64 + int.from_bytes(call_data[execution + 64 + 32 * index :][:32], "big")
        size = int.from_bytes(call_data[head + 96 : head + 128], "big")
        end = head + 128 + size
        paddings.append(range(end, end + (-size % 32)))
    return paddings


def test_every_byte_of_a_batch_calls_padding_is_judged_the_last_included(
    sessions, module, target, account, owner, session_key
):
    """The padding check reads the word after a call's data and keeps its top bytes, as many as the padding has: a
    count one short would leave the last padding byte (the low byte of that word, the last byte before the next call
    or the batch's end) unjudged, and the key could set it while every test filling the whole padding, or its first
    bytes, still saw a refusal. A single byte 0x01 at the first, a middle and the last padding position, after the
    first call's 37 bytes of data and after the last call's 36, is refused (``MalformedExecution``) by the module,
    the checker and the SDK's decoder; the same batch with zero padding runs."""
    permission = Permission(target=target.address, selector=OTHER)
    session, _ = grant(sessions, account, owner, session_key, [permission])
    # other(1) with one more byte (which the target's decoder ignores), then other(2)
    longer = Call.of(target.address, 0, other(target, 1).data + b"\x07")
    canonical = encode_execute([longer, other(target, 2)], batch=True)
    paddings = _padding_of_each_call(canonical)
    assert [len(padding) for padding in paddings] == [27, 28]
    assert not any(canonical[position] for padding in paddings for position in padding)
    # the last call's padding ends executionCalldata (whose length is a multiple of 32: no padding after it)
    assert paddings[-1].stop == len(canonical)
    calls_before = target.calls()
    for padding in paddings:
        for position in (padding[0], padding[len(padding) // 2], padding[-1]):
            dirty = canonical[:position] + b"\x01" + canonical[position + 1 :]
            op = sessions.op(account, session_key, call_data=dirty)
            judged_alike(sessions, module, session, account, op, "MalformedExecution")
            with pytest.raises(ExecuteDecodeError):
                decode_execute(dirty)
    assert target.calls() == calls_before
    op = sessions.op(account, session_key, call_data=canonical)
    judged_alike(sessions, module, session, account, op, "ok")
    assert target.calls() == calls_before + 2


def _length_words_near_the_top(call_data: bytes) -> dict[str, bytes]:
    """``call_data`` (``execute(batch, [a, b])``, each call's data 36 bytes, so padded to 64) with one length word
    set where modular (wrapping) arithmetic would read it as a small number, or as a step that goes nowhere:
    executionCalldata's length; the batch's count at 2**251 + 2 (32 * count wraps to 64, the two offsets that are
    there); call 0's data size at -128 (its 128-byte head plus its padded size wraps to 0: the walk would expect
    call 1 where call 0 is), at -32 (a step of 96 bytes, into call 0's own head) and at -1 (its padding rounds up
    past 2**256); and call 1's data size at -1."""
    execution = 100  # executionCalldata starts after execute's head
    # each call's head: target, value, data offset, data size
    call_0, call_1 = execution + 128, execution + 320

    def with_word(position: int, value: int) -> bytes:
        return call_data[:position] + (value % 2**256).to_bytes(32, "big") + call_data[position + 32 :]

    return {
        "executionCalldata length -1": with_word(68, -1),
        "executionCalldata length 2**255": with_word(68, 2**255),
        "count 2**251 + 2": with_word(execution + 32, 2**251 + 2),
        "count -1": with_word(execution + 32, -1),
        "call 0 size -128": with_word(call_0 + 96, -128),
        "call 0 size -32": with_word(call_0 + 96, -32),
        "call 0 size -1": with_word(call_0 + 96, -1),
        "call 1 size -1": with_word(call_1 + 96, -1),
    }


def test_length_words_near_two_to_the_256_are_refused_never_read_modulo(
    sessions, module, target, account, owner, session_key
):
    """The batch walk adds and multiplies length words the key writes (executionCalldata's length, the count, each
    call's data size); read modulo 2**256 a huge one becomes a small one or a step that lands back on a call already
    judged (or inside its head), so that the module would judge other calls than the account runs. Each word is
    bounded by what the data holds before any arithmetic uses it: every such encoding of a batch holding a
    forbidden call (``other(1000)`` with 1 ether, under ``amount <= 5`` and no value) after an allowed one is
    refused (``MalformedExecution``, no Panic), by the module in the USE path and by the checker and the SDK's
    decoder; nothing runs."""
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, values=(5,))
    session, _ = grant(sessions, account, owner, session_key,
                       [Permission(target=target.address, selector=OTHER, rules=(rule,))])  # fmt: skip
    allowed, forbidden = other(target, 1), other(target, 1000, value=ETHER)
    canonical = encode_execute([allowed, forbidden], batch=True)
    encodings = _length_words_near_the_top(canonical)
    # the words sit where the helper says: the canonical batch's own values there
    assert all(encoded != canonical for encoded in encodings.values())
    assert int.from_bytes(canonical[100 + 32 : 100 + 64], "big") == 2
    assert int.from_bytes(canonical[100 + 128 + 96 : 100 + 128 + 128], "big") == 36
    assert int.from_bytes(canonical[100 + 320 + 96 : 100 + 320 + 128], "big") == 36
    calls_before = target.calls()
    for name, call_data in encodings.items():
        for mode in ("use", "use_with_key"):
            op = sessions.op(account, session_key, call_data=call_data, mode=mode)
            result = judged_alike(sessions, module, session, account, op, "MalformedExecution")
            assert "AA23" in result and "Panic" not in result, (name, mode, result)
        with pytest.raises(ExecuteDecodeError):
            decode_execute(call_data)
    assert target.calls() == calls_before
    # the same batch as encoded: the forbidden call is judged, and refused as itself
    judged_alike(sessions, module, session, account, sessions.op(account, session_key, call_data=canonical),
                 "ValueLimitExceeded(callIndex=1, permissionIndex=0")  # fmt: skip


ROUTER = "0x" + keccak(b"keyscope router")[12:].hex()
TOKEN_PAYMASTER = "0x" + keccak(b"keyscope token paymaster")[12:].hex()
SPONSOR = "0x" + keccak(b"keyscope sponsor")[12:].hex()


def _spend_rules() -> tuple[Rule, ...]:
    """Rules of six storage words ending with the token paymaster's address: IN_RANGE (its high end in a word of
    its own), a wide signed bound (its value in the next word), and ``who`` ONE_OF {router, token paymaster} (the
    paymaster in the last rule word, right before the session's paymaster list)."""
    return (
        Rule(condition=Condition.IN_RANGE, offset=AMOUNT, values=(1, 2**250)),
        Rule(
            condition=Condition.GREATER_THAN_OR_EQUAL | SIGNED,
            offset=DELTA,
            values=(Rule.signed_word(-(2**240)),),
        ),
        Rule(condition=Condition.ONE_OF, offset=WHO, values=(int(ROUTER, 16), int(TOKEN_PAYMASTER, 16))),
    )


# gas fields of an operation far over a 0.01 ether cap, with a paymaster's limits
_COSTLY_GAS = {
    "pre_verification_gas": 5_000_000,
    "max_fee_per_gas": 1000 * GWEI,
    "max_priority_fee_per_gas": GWEI,
    "paymaster_verification_gas_limit": 100_000,
    "paymaster_post_op_gas_limit": 100_000,
}


def test_a_rule_value_is_never_read_as_a_listed_paymaster(
    sessions, module, target, account, owner, session_key
):
    """A session capped at 0.01 ether per operation that lists a sponsor as uncapped; its permission lets ``who`` be
    the router or a token paymaster (the address an approval to pay gas in tokens names), so the paymaster's address
    is the last of the rule words the paymaster list follows in storage. The key names the token paymaster for an
    operation over the cap, with ``who`` either member: the cap binds (a scan of the list starting inside the rule
    words, where the rule loop could leave it after a ONE_OF, would take the token paymaster for the sponsor and let
    it charge the account any gas). Named, the sponsor is found past all six rule words. Module and checker agree."""
    session, _ = grant(sessions, account, owner, session_key,
                       [Permission(target=target.address, selector=RECORD, rules=_spend_rules())],
                       max_gas_cost=ETHER // 100, paymasters=(SPONSOR,))  # fmt: skip
    gas = _COSTLY_GAS
    for who in (ROUTER, TOKEN_PAYMASTER):
        call = record(target, amount=5, delta=-3, who=who)
        op = sessions.op(account, session_key, call, paymaster=TOKEN_PAYMASTER, **gas)
        verdict = module_verdict(sessions, module, account, op)
        assert verdict.startswith("GasCostTooHigh("), (who, verdict)
        assert (
            checker_verdict(session, account, module.address, op, now=now(sessions) + 1) == "GasCostTooHigh"
        )
        sponsored = sessions.op(account, session_key, call, paymaster=SPONSOR, **gas)
        assert module_verdict(sessions, module, account, sponsored) == "ok", who
        assert checker_verdict(session, account, module.address, sponsored, now=now(sessions) + 1) == "ok"


def test_a_rule_value_is_never_read_as_a_listed_paymaster_by_a_gas_budget(
    sessions, module, target, account, owner, session_key
):
    """The same rule words under a session without a cap whose gas budget (a GAS limit) lists the sponsor: an
    operation naming the token paymaster counts its cost towards the budget, and one over what is left is refused
    (LimitExceeded); the sponsor's operation counts nothing."""
    gas = _COSTLY_GAS
    call = record(target, amount=5, delta=-3, who=ROUTER)
    # the prefund the module counts: every gas limit, the paymaster's two included, times maxFeePerGas
    prefund = required_prefund(sessions.op(account, session_key, call, paymaster=TOKEN_PAYMASTER, **gas))
    session, session_id = grant(
        sessions, account, owner, session_key,
        [Permission(target=target.address, selector=RECORD, rules=_spend_rules())],
        paymasters=(SPONSOR,), limits=(Limit(kind=LimitKind.GAS, amount=prefund - 1),),
    )  # fmt: skip
    for who in (ROUTER, TOKEN_PAYMASTER):
        call = record(target, amount=5, delta=-3, who=who)
        op = sessions.op(account, session_key, call, paymaster=TOKEN_PAYMASTER, **gas)
        verdict = module_verdict(sessions, module, account, op)
        assert verdict.startswith("LimitExceeded(callIndex=0, limitIndex=0, amount=" + str(prefund)), (
            who,
            verdict,
        )
        counters = counters_from_chain(session, [tuple(r) for r in module.limitUsage(account, session_id)])
        local = checker_verdict(
            session, account, module.address, op, now=now(sessions) + 1, counters=counters
        )
        assert local == "LimitExceeded", local
        sponsored = sessions.op(account, session_key, call, paymaster=SPONSOR, **gas)
        assert module_verdict(sessions, module, account, sponsored) == "ok", who


def test_no_signature_a_byte_longer_or_shorter_than_a_layout_validates(
    sessions, module, target, account, owner, session_key
):
    """Every operation signature layout (USE, USE_WITH_KEY, a co-signed session's SESSION, each bare and after a
    claimed time) with one byte dropped from its end, one added (0x00 or 0xff), or one dropped from the claimed
    time (which shifts the layout after it): the module reads the mode from the length and the first byte, and none
    of these is another layout signed by the key. None validates; each returns SIG_VALIDATION_FAILED, or, read as
    ENABLE data (its first byte 0x01 after the rewrite), reverts MalformedEnableData."""
    op, co_id, co_signature = _plain_and_co_signed(sessions, account, owner, session_key, target, module)
    signature = op.signature
    bare = {
        "USE": signature,
        "USE_WITH_KEY": encode_use_with_key_signature(session_key.address, signature),
        "SESSION": encode_session_signature(co_id, signature, co_signature),
    }
    layouts = {**bare, **{f"AT {name}": encode_at_signature(now(sessions), s) for name, s in bare.items()}}
    for name, layout in layouts.items():
        assert module_verdict(sessions, module, account, op.replace(signature=layout)) == "ok", name
        neighbours = {
            "last byte dropped": layout[:-1],
            "0x00 added": layout + b"\x00",
            "0xff added": layout + b"\xff",
        }
        if name.startswith("AT"):
            neighbours["a time byte dropped"] = layout[:6] + layout[7:]
        for change, neighbour in neighbours.items():
            verdict = module_verdict(sessions, module, account, op.replace(signature=neighbour))
            assert verdict == "SIG_VALIDATION_FAILED" or verdict.startswith("MalformedEnableData"), (
                name,
                change,
                verdict,
            )


# ------------------------------------------------------------------------------------------------------
# Validation asked by another caller than the account
# ------------------------------------------------------------------------------------------------------


def test_validation_asked_by_another_caller_spends_and_enables_nothing_of_the_account(
    sessions, module, target, account, owner, session_key, project, deployer
):
    """The module's ``validateUserOp`` takes any caller. A stranger (or a contract the leaked key deploys, which
    answers every ERC-1271 question yes) hands it the account's own signed operations, hoping to spend the
    account's limits for it (one of its operations refused later: a grief) or to use up or enable the owner's
    off-chain grant: the module reads and writes the caller's records only. The key's operation counts nothing
    of the account's; the owner's grant, presented by the contract, is enabled in the contract's records (which
    approve anything) and not the account's, and still enables where the owner signed it, once."""
    limits = (Limit(kind=LimitKind.CALLS, amount=1, meters=(Meter(permission=0),)),)
    _, session_id = grant(
        sessions,
        account,
        owner,
        session_key,
        [Permission(target=target.address, selector=OTHER)],
        limits=limits,
    )
    caller = project.ApprovesEverySignature.deploy(sender=deployer)

    def ask(op: UserOperation) -> tuple[int, Any]:
        """Have ``caller`` ask the module to validate ``op``: its validation data (an ``eth_call``), then the
        transaction."""
        data = module.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op))
        answer = caller.relay.call(module.address, data, sender=deployer)
        return int.from_bytes(bytes(answer), "big"), caller.relay(module.address, data, sender=deployer)

    def usage(session: bytes) -> list[tuple[int, int, int]]:
        """(amount, used, left) of each of the account's limits of ``session``."""
        return [(r[1], r[4], r[5]) for r in map(tuple, module.limitUsage(account, session))]

    used = [(1, 0, 1)]
    assert usage(session_id) == used
    spend = sessions.op(account, session_key, other(target, 1))
    # a stranger's transaction: the caller has no session of this key
    assert module.validateUserOp.call(spend.pack().as_tuple(), sessions.h.hash(spend), sender=deployer) == 1
    module.validateUserOp(spend.pack().as_tuple(), sessions.h.hash(spend), sender=deployer)
    assert ask(spend)[0] == 1
    named = spend.replace(signature=encode_use_with_key_signature(session_key.address, spend.signature))
    with ape.reverts(module.NoPermission):
        ask(named)
    assert usage(session_id) == used

    # the owner's off-chain grant of a second session, carried by its ENABLE operation, presented by the contract
    narrow = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=RECORD),),
        limits=(Limit(kind=LimitKind.CALLS, amount=1, meters=(Meter(permission=0),)),),
    )
    narrow_id = narrow.session_id(account, sessions.epoch(account))
    enable = sessions.enable_op(
        account, session_key, narrow, sessions.owner_signature(account, owner, narrow), record(target, 1)
    )
    validation, _ = ask(enable)
    assert validation == 0  # valid: for the contract, whose ERC-1271 approved the grant in its own records
    caller_id = narrow.session_id(caller.address, 0)
    assert module.isSessionActive(caller.address, caller_id)
    assert [(tuple(r)[4], tuple(r)[5]) for r in module.limitUsage(caller.address, caller_id)] == [(1, 0)]
    assert not module.isSessionActive(account, narrow_id)
    # ... and again: the contract's own CALLS budget is spent, none of the account's
    with ape.reverts(module.LimitExceeded):
        ask(enable)
    assert ask(spend)[0] == 1  # the first session was never the contract's
    assert usage(session_id) == used

    # on the account: each session's one call goes through, once
    assert sessions.outcome(spend) == "ok"
    enable = sessions.enable_op(  # (the next nonce)
        account, session_key, narrow, sessions.owner_signature(account, owner, narrow), record(target, 1)
    )
    assert sessions.outcome(enable) == "ok"
    assert module.isSessionActive(account, narrow_id)
    assert usage(session_id) == [(1, 1, 0)]
    assert usage(narrow_id) == [(1, 1, 0)]
    for op in (
        sessions.op(account, session_key, other(target, 2)),
        sessions.op(account, session_key, record(target)),
    ):
        assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in sessions.outcome(op)
    assert target.calls() == 2
