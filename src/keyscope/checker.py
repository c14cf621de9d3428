"""Check an operation against a session's policy off-chain, exactly as ``SessionKeyValidator`` does on chain.

:func:`check` (or a :class:`PolicyChecker` built once per session) takes the ``execute`` callData of a
UserOperation, or the calls themselves, and either returns a :class:`CheckResult` (the validation data the
module would return with a valid signature) or raises the error the chain would give:

* :class:`~keyscope.execution.ExecuteDecodeError` for callData that is not a canonical single or batch
  ``execute`` (the module reverts ``UnsupportedSelector``, ``UnsupportedExecutionMode``,
  ``MalformedExecution`` or ``EmptyBatch``);
* :class:`CallRefusedError` (a :class:`~keyscope.errors.PolicyViolationError`) for a call the policy
  refuses, with the call, permission and rule indices and ``reason``, the module's custom error name;
* :class:`~keyscope.errors.GasCostTooHighError` (:meth:`PolicyChecker.check_operation`,
  :meth:`PolicyChecker.check_gas_cost`) for an operation whose prefund, the paymaster's gas limits included,
  is over the session's ``maxGasCost`` (unless the session lists its paymaster);
* :class:`~keyscope.errors.LimitError` (:class:`~keyscope.errors.LimitExceededError` most often) for an
  operation the session's limits refuse, counted from the ``counters`` given (the module's, read with
  ``session.usage()``; a fresh session's by default) at the claimed time ``at``;
* :class:`~keyscope.errors.SessionRevokedError` for a revoked session (the module finds no permission);
* :class:`~keyscope.errors.SessionNotYetValidError` / :class:`~keyscope.errors.SessionExpiredError` when
  ``now`` is outside the window, as the EntryPoint applies it: v0.7 accepts
  ``validAfter <= now <= validUntil``, v0.8 ``validAfter < now <= validUntil`` (``validUntil`` 0: no end; a
  checker made with ``opens_after=True`` applies v0.8's rule).
  :class:`~keyscope.errors.LimitPeriodEndingError` when the window that has ended is the period of a per-period
  limit the operation claims a time in (the session has not expired).

The checks run in the module's order (callData head, then each call in turn: its encoding, the forbidden
targets, the calldata's shape, the permission, the value, each rule: its word in the calldata, that word's
canonical encoding for the rule's type, the condition; then the gas cost), so that the first failure is the
one the chain reports; the window comes last, as the EntryPoint checks it after validation. That is why the checker
walks the encoding itself instead of calling :func:`~keyscope.execution.decode_execute` first: it accepts
the same encodings, but the module refuses a bad call before it looks at a malformed later one (and the
walk costs a few microseconds, without checksumming addresses). The checker knows the one session it is
given: if the same key holds other sessions on the account, the module also accepts their permissions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .clock import utc_moment
from .entrypoint import canonical_entry_point_version
from .errors import (
    BadInputError,
    GasCostTooHighError,
    LimitExceededError,
    LimitPeriodEndingError,
    RuleRefusalError,
    SessionError,
    SessionExpiredError,
    SessionNotYetValidError,
    SessionRevokedError,
    a_type,
    shown,
)
from .execution import (
    EXECUTE_SELECTOR,
    Call,
    ExecuteDecodeError,
    decode_execute,
    refuse_bytes_after_batch,
    refuse_bytes_after_execution,
    refuse_dirty_padding,
)
from .gas import required_prefund
from .grant import SessionGrant
from .hexutil import keccak, to_address, to_bytes
from .limits import UINT48_MAX, Counter, Counters, count_limits, initial_counters
from .policy import AbiType, parse_signature
from .session import ArgType, Condition, Permission, Rule, Session
from .userop import EIP7702_FACTORY, UserOperation

__all__ = [
    "VALUE_LIMIT_MAX",
    "CallRefusedError",
    "CheckResult",
    "InitCallRefusedError",
    "PolicyChecker",
    "check",
]

VALUE_LIMIT_MAX = 2**96 - 1
"""The module stores value limits in 96 bits: larger limits act as this one."""

_NOW_MAX = 2**64 - 1
"""The latest ``now`` a check takes (the EVM's block timestamp is a uint64)."""
_ENCODE = "encode the calls with keyscope.execution.encode_execute"
_SIGN_FLIP = 1 << 255
_WORD_0X40 = (0x40).to_bytes(32, "big")
_ZERO_SELECTOR = bytes(4)
_ZERO_MODE_TAIL = bytes(30)

_WELL_KNOWN = [
    "transfer(address,uint256)",
    "approve(address,uint256)",
    "transferFrom(address,address,uint256)",
    "safeTransferFrom(address,address,uint256)",
    "safeTransferFrom(address,address,uint256,bytes)",
    "safeTransferFrom(address,address,uint256,uint256,bytes)",
    "setApprovalForAll(address,bool)",
    "safeMint(address)",
    "mint(address,uint256)",
    "burn(uint256)",
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "multicall(bytes[])",
    "execute(bytes32,bytes)",
    "installModule(uint256,address,bytes)",
    "uninstallModule(uint256,address,bytes)",
]
_KNOWN_SELECTORS = {keccak(text.encode())[:4]: text for text in _WELL_KNOWN}


class CallRefusedError(RuleRefusalError):
    """A call the session's policy refuses. ``reason`` is the module's custom error for it:
    ``ForbiddenTarget``, ``InvalidCallData``, ``ZeroSelectorCall``, ``NoPermission``, ``ValueLimitExceeded``,
    ``CalldataTooShort``, ``NonCanonicalArgument`` or ``RuleViolated``; ``actual`` is the word a refused rule
    read (None otherwise)."""


class InitCallRefusedError(RuleRefusalError):
    """An operation carrying an EIP-7702 init call (``factory`` 0x7702 with ``factoryData``): EntryPoint v0.8 sends
    those bytes to the account before validation, where no permission judges them, so the module refuses the
    operation (``InitCallNotJudged``). ``length`` is the init call's length in bytes."""

    def __init__(self, message: str, *, session_id: str | None, length: int) -> None:
        self.length = length
        super().__init__(message, reason="InitCallNotJudged", session_id=session_id)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """An operation the module accepts: the window it reports (narrowed to the periods its limits counted in)
    and the permission each call used; ``counters``, the session's limit counters after it (None without
    limits)."""

    valid_after: int
    valid_until: int
    permission_indices: tuple[int, ...]
    counters: Counters | None = None

    @property
    def validation_data(self) -> int:
        """What ``validateUserOp`` returns with a valid signature: validUntil and validAfter, packed."""
        return (self.valid_until << 160) | (self.valid_after << 208)


# A compiled rule: (first byte, end byte, canonical-word test or None, sign flip, predicate, rule index).
_CompiledRule = tuple[int, int, Callable[[int], bool] | None, int, Callable[[int], bool], int]


def _whole_number(value: object) -> bool:
    """An int (a library's int subclass included), never a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _canonical(rule: Rule) -> Callable[[int], bool] | None:
    """A fast test of ``ArgType.is_canonical(rule.arg_type, word)`` where the module makes it: None for the
    256-bit types (every word is canonical), and for EQUAL and ONE_OF, whose canonical reference values let
    only canonical words through (a dirty word is a ``RuleViolated`` there)."""
    arg_type = rule.arg_type
    if not ArgType.restricts(arg_type) or rule.op in (Condition.EQUAL, Condition.ONE_OF):
        return None
    kind, padding = arg_type >> 5, arg_type & 0x1F
    if kind == 0:
        return (1 << (256 - 8 * padding)).__gt__
    if kind == 3:
        return (2).__gt__
    if kind == 2:
        unit = 1 << (8 * padding)
        return lambda word: word % unit == 0
    half = 1 << (255 - 8 * padding)
    low_end, high_start = half, (1 << 256) - half
    return lambda word: word < low_end or word >= high_start


def _predicate(rule: Rule) -> tuple[int, Callable[[int], bool]]:
    """``(flip, test)`` with ``test(word ^ flip) == rule.holds(word)`` for every uint256 ``word``.

    Signed order compares as unsigned order once the sign bit is flipped on both sides.
    """
    op = rule.op
    values = rule.values
    if op == Condition.EQUAL:
        return 0, values[0].__eq__
    if op == Condition.NOT_EQUAL:
        return 0, values[0].__ne__
    if op == Condition.ONE_OF:
        return 0, frozenset(values).__contains__
    flip = _SIGN_FLIP if rule.is_signed else 0
    first = values[0] ^ flip
    if op == Condition.IN_RANGE:
        return flip, range(first, (values[1] ^ flip) + 1).__contains__
    if op == Condition.LESS_THAN:
        return flip, first.__gt__
    if op == Condition.LESS_THAN_OR_EQUAL:
        return flip, first.__ge__
    if op == Condition.GREATER_THAN:
        return flip, first.__lt__
    return flip, first.__le__


@dataclass(frozen=True, slots=True)
class _Compiled:
    index: int
    limit: int
    rules: tuple[_CompiledRule, ...]
    permission: Permission


class PolicyChecker:
    """A session compiled for fast checks on one account: build it once, call :meth:`check` per operation."""

    __slots__ = (
        "_account",
        "_by_call",
        "_module",
        "account",
        "module",
        "opens_after",
        "session",
        "session_id",
    )

    def __init__(
        self,
        session: Session,
        account: Any,
        module: Any,
        *,
        session_id: str | bytes | None = None,
        opens_after: bool = False,
    ) -> None:
        """``opens_after``: the window opens the second after ``validAfter``, as EntryPoint v0.8 applies it (v0.7
        accepts an operation at ``validAfter`` itself)."""
        if not isinstance(session, Session):
            raise BadInputError(
                f"PolicyChecker checks a keyscope Session, got {type(session).__name__}: pass grant.session, or use "
                "PolicyChecker.for_grant(grant)"
            )
        if not (session_id is None or isinstance(session_id, (str, bytes))):
            raise BadInputError(
                f"session_id must be the session's id (0x-hex or 32 bytes) or None, got {type(session_id).__name__}"
            )
        self.session = session
        self.opens_after = opens_after
        self.account = to_address(account, name="account")
        self.module = to_address(module, name="module")
        self.session_id = (
            session_id if isinstance(session_id, str) or session_id is None else "0x" + session_id.hex()
        )
        self._account = bytes.fromhex(self.account[2:])
        self._module = bytes.fromhex(self.module[2:])
        self._by_call: dict[bytes, _Compiled] = {}
        for index, permission in enumerate(session.permissions):
            rules: list[_CompiledRule] = []
            for number, rule in enumerate(permission.rules):
                flip, test = _predicate(rule)
                rules.append((rule.offset + 4, rule.offset + 36, _canonical(rule), flip, test, number))
            limit = min(permission.value_limit, VALUE_LIMIT_MAX)
            key = bytes.fromhex(permission.target[2:]) + permission.selector
            self._by_call[key] = _Compiled(index, limit, tuple(rules), permission)

    @classmethod
    def for_grant(cls, grant: SessionGrant, *, opens_after: bool | None = None) -> PolicyChecker:
        """The checker of a granted session (account, module and session id from the grant). ``opens_after``
        (see the class) defaults to whether the grant's EntryPoint is v0.8's canonical address."""
        if not isinstance(grant, SessionGrant):
            raise BadInputError(
                f"PolicyChecker.for_grant takes a SessionGrant, got {type(grant).__name__}: for a bare Session, use "
                "PolicyChecker(session, account, module)"
            )
        if opens_after is None:
            opens_after = canonical_entry_point_version(grant.entry_point) == "0.8"
        return cls(
            grant.session, grant.account, grant.module, session_id=grant.session_id, opens_after=opens_after
        )

    # -- entry points ----------------------------------------------------------------------------------

    def check(
        self,
        call_data: bytes | str,
        *,
        now: int | None = None,
        revoked: bool = False,
        counters: Counters | None = None,
        at: int | None = None,
    ) -> CheckResult:
        """Check an account ``execute(bytes32,bytes)`` callData; see the module docstring for the errors. Limits
        count from ``counters`` (default: a fresh session's) at the claimed time ``at``; GAS limits need the whole
        operation (:meth:`check_operation`)."""
        data = call_data if type(call_data) is bytes else to_bytes(call_data, name="callData")
        used = self._execute(data, revoked)
        return self._window(used, now, self._count(data, used, counters, at, now=now), at)

    def check_operation(
        self,
        op: UserOperation,
        *,
        now: int | None = None,
        revoked: bool = False,
        counters: Counters | None = None,
        at: int | None = None,
    ) -> CheckResult:
        """Check a whole UserOperation as the module and the EntryPoint will: its callData, then its gas cost
        (:meth:`check_gas_cost`), then its limits (from ``counters`` at the claimed time ``at``), then the
        window."""
        _operation(op)
        if op.factory == EIP7702_FACTORY and op.factory_data:
            raise InitCallRefusedError(
                f"the operation carries an EIP-7702 init call of {len(op.factory_data)} bytes (factory 0x7702 with "
                "factoryData), which EntryPoint v0.8 sends to the account before validation, unjudged by any "
                "permission: a session operation carries none; leave factoryData empty",
                session_id=self.session_id,
                length=len(op.factory_data),
            )
        used = self._execute(op.call_data, revoked)
        self.check_gas_cost(op)
        counted = self._count(op.call_data, used, counters, at, required_prefund(op), op.paymaster, now=now)
        return self._window(used, now, counted, at)

    def _also_expired(
        self, exceeded: LimitExceededError, now: int | None, at: int | None = None
    ) -> LimitExceededError:
        """``exceeded`` (the module reverts with it first), saying too that the session has expired when it has:
        its advice (wait for the reset, a larger limit) is then beside the point; or, when the period it was
        exceeded in has ended by ``now`` though the operation claims a time ``at`` in it, that only a block is
        awaited (a session account claims the chain's latest block time, and an idle chain still reads the old
        one: waiting for the reset, which has passed, would never help)."""
        valid_until = self.session.valid_until
        if now is None:
            return exceeded
        if valid_until and now > valid_until:
            addition = (
                f"The session has also expired, at {utc_moment(valid_until)}: ask the owner for a new session"
            )
        elif exceeded.resets_at is not None and at is not None and at < exceeded.resets_at <= now:
            addition = (
                f"It has reset by now ({utc_moment(now)}), but this operation claims the time {utc_moment(at)}, in "
                "the period that ended: a session account claims the chain's latest block time, and the chain has "
                "made no block since the period ended. Wait for the next block (on a development node, mine one) "
                "and send it again: it then counts in the new period"
            )
        else:
            return exceeded
        return LimitExceededError(
            f"{exceeded} {addition}",
            session_id=exceeded.session_id,
            call_index=exceeded.call_index,
            limit_index=exceeded.limit_index,
            amount=exceeded.amount,
            left=exceeded.left,
            resets_at=exceeded.resets_at,
        )

    def _count(
        self,
        call_data: bytes,
        used: tuple[int, ...],
        counters: Counters | None,
        at: int | None,
        cost: int = 0,
        paymaster: str | None = None,
        *,
        now: int | None = None,
    ) -> tuple[Counters, int, int] | None:
        """Count an accepted operation towards the session's limits: (counters after, window of its periods). A
        limit exceeded is said as the module reverts, and (at ``now``) that the session has expired too, if it has."""
        session = self.session
        if not session.limits or not any(session.is_limited(i) for i in used):
            return None
        _claimable(at)
        _countable(session, counters)
        calls = decode_execute(call_data).calls
        try:
            counted = count_limits(
                session,
                [(index, call.value, call.data) for index, call in zip(used, calls, strict=True)],
                initial_counters(session) if counters is None else counters,
                at=at,
                cost=cost,
                paymaster=paymaster,
                session_id=self.session_id,
            )
        except LimitExceededError as exceeded:
            raise self._also_expired(exceeded, now, at) from None
        return counted.counters, counted.valid_after, counted.valid_until

    def check_gas_cost(self, op: UserOperation) -> None:
        """Raise :class:`~keyscope.errors.GasCostTooHighError` when ``op`` could cost more than the session's
        cap: its prefund, every gas limit (the paymaster's two included) times maxFeePerGas, as the module
        counts it. A paymaster the session lists in ``paymasters`` lifts the cap; any other does not, since
        a paymaster may charge the account (an ERC-20 paymaster takes its tokens in postOp)."""
        _operation(op)
        cap = self.session.gas_cap
        if not cap or (op.paymaster is not None and op.paymaster in self.session.paymasters):
            return
        cost = required_prefund(op)
        if cost <= cap:
            return
        via = f" through paymaster {op.paymaster}" if op.paymaster is not None else ""
        paymaster_gas = ""
        if op.paymaster is not None:
            paymaster_gas = (
                f", paymaster verification {op.paymaster_verification_gas_limit:,} and postOp "
                f"{op.paymaster_post_op_gas_limit:,}"
            )
        raise GasCostTooHighError(
            f"this operation could cost up to {cost:,} wei in gas{via} (verification "
            f"{op.verification_gas_limit:,}, call {op.call_gas_limit:,}, preVerification {op.pre_verification_gas:,}"
            f"{paymaster_gas} gas at maxFeePerGas {op.max_fee_per_gas:,} wei), over the session's cap of {cap:,} "
            "wei: lower the gas limits or the fee, split the calls, or ask the owner for a session with a higher "
            "max_gas_cost (or one that lists this paymaster)",
            self.session_id,
            cost=cost,
            limit=cap,
        )

    def _execute(self, call_data: bytes | str, revoked: bool) -> tuple[int, ...]:
        """Check an ``execute`` callData's head and calls; the permission index each call used."""
        data = call_data if type(call_data) is bytes else to_bytes(call_data, name="callData")
        size = len(data)
        if size < 100:
            raise ExecuteDecodeError(
                f"execute callData of {size} bytes is shorter than its 100-byte head (selector, mode, offset and "
                f"length of executionCalldata): {_ENCODE}"
            )
        if data[:4] != EXECUTE_SELECTOR:
            raise ExecuteDecodeError(
                f"callData selector 0x{data[:4].hex()} is not execute(bytes32,bytes) "
                f"(0x{EXECUTE_SELECTOR.hex()}): a session operation must call the account's execute"
            )
        call_type, exec_type = data[4], data[5]
        if call_type > 1 or exec_type > 1 or data[6:36] != _ZERO_MODE_TAIL:
            raise ExecuteDecodeError(
                f"execution mode 0x{data[4:36].hex()} is not allowed: sessions may make single or batch "
                "calls (default or try execution) only"
            )
        if data[36:68] != _WORD_0X40:
            raise ExecuteDecodeError(
                f"the executionCalldata offset is not the canonical 0x40 (it is 0x{int.from_bytes(data[36:68], 'big'):x}): "
                f"{_ENCODE}"
            )
        length = int.from_bytes(data[68:100], "big")
        if length > size - 100:
            raise ExecuteDecodeError(
                f"executionCalldata claims {length} bytes but only {size - 100} follow the head: {_ENCODE}"
            )
        refuse_bytes_after_execution(data[100 + length :])
        execution = data[100 : 100 + length]
        if call_type == 0:
            if length < 52:
                raise ExecuteDecodeError(
                    f"a single execution needs at least 52 bytes (a 20-byte target, then a 32-byte value, then the "
                    f"call's data), got {length}: {_ENCODE}"
                )
            used = self._call(
                0, execution[:20], int.from_bytes(execution[20:52], "big"), execution[52:], revoked
            )
            return (used,)
        return self._batch(execution, revoked)

    def check_calls(
        self,
        calls: Call | Sequence[Call],
        *,
        now: int | None = None,
        revoked: bool = False,
        counters: Counters | None = None,
        at: int | None = None,
    ) -> CheckResult:
        """Check the calls an operation would make (one call, or a batch in order)."""
        batch = (calls,) if isinstance(calls, Call) else tuple(calls)
        if not batch:
            raise ExecuteDecodeError("the batch is empty: an operation makes at least one call")
        used = []
        for index, call in enumerate(batch):
            if not isinstance(call, Call):
                raise BadInputError(f"call {index} is {a_type(call)}, not a keyscope.execution.Call")
            used.append(self._call(index, bytes.fromhex(call.target[2:]), call.value, call.data, revoked))
        counted = None
        session = self.session
        if session.limits and any(session.is_limited(i) for i in used):
            _claimable(at)
            _countable(session, counters)
            result = count_limits(
                session,
                [(i, call.value, call.data) for i, call in zip(used, batch, strict=True)],
                initial_counters(session) if counters is None else counters,
                at=at,
                session_id=self.session_id,
            )
            counted = (result.counters, result.valid_after, result.valid_until)
        return self._window(tuple(used), now, counted, at)

    # -- the module's checks -------------------------------------------------------------------------------

    def _batch(self, execution: bytes, revoked: bool) -> tuple[int, ...]:
        size = len(execution)
        if size < 64 or execution[:32] != (0x20).to_bytes(32, "big"):
            found = f"0x{int.from_bytes(execution[:32], 'big'):x}" if size >= 32 else f"{size} bytes"
            raise ExecuteDecodeError(
                f"the batch is not an ABI-encoded Execution[] at the canonical offset 0x20 (found {found}): {_ENCODE}"
            )
        count = int.from_bytes(execution[32:64], "big")
        if count == 0:
            raise ExecuteDecodeError("the batch is empty: an operation makes at least one call")
        if count > (size - 64) // 32:
            raise ExecuteDecodeError(
                f"the batch claims {count} calls but is too short for their offsets ({size} bytes): {_ENCODE}"
            )
        expected = count * 32
        used: list[int] = []
        for index in range(count):
            head = 64 + 32 * index
            offset = int.from_bytes(execution[head : head + 32], "big")
            if offset != expected:
                raise ExecuteDecodeError(
                    f"call {index} is not canonically encoded (offset {offset}, expected {expected}): {_ENCODE}"
                )
            start = 64 + expected
            if start + 128 > size:
                raise ExecuteDecodeError(
                    f"call {index} runs past the end of the batch ({size} bytes, its head ends at byte "
                    f"{start + 128}): {_ENCODE}"
                )
            target = int.from_bytes(execution[start : start + 32], "big")
            if target >> 160 or int.from_bytes(execution[start + 64 : start + 96], "big") != 0x60:
                data_offset = int.from_bytes(execution[start + 64 : start + 96], "big")
                raise ExecuteDecodeError(
                    f"call {index} is not canonically encoded (target word 0x{target:064x}, whose high 12 bytes "
                    f"must be zero; data offset 0x{data_offset:x}, which must be 0x60): {_ENCODE}"
                )
            length = int.from_bytes(execution[start + 96 : start + 128], "big")
            if length > size - start - 128:
                raise ExecuteDecodeError(
                    f"call {index} claims {length} bytes of data past the end of the batch: {_ENCODE}"
                )
            value = int.from_bytes(execution[start + 32 : start + 64], "big")
            data = execution[start + 128 : start + 128 + length]
            refuse_dirty_padding(execution, index, start + 128 + length)
            used.append(self._call(index, execution[start + 12 : start + 32], value, data, revoked))
            expected += 128 + length + (-length % 32)
        refuse_bytes_after_batch(execution, 64 + expected)
        return tuple(used)

    def _call(self, index: int, target: bytes, value: int, data: bytes, revoked: bool) -> int:
        if target == self._account or target == self._module:
            raise self._forbidden(index, target)
        size = len(data)
        if size >= 4:
            selector = data[:4]
            if selector == _ZERO_SELECTOR:
                raise CallRefusedError(
                    f"call {index} to {to_address(target)} has {size} bytes of calldata starting with the selector "
                    "0x00000000, which permissions keep for plain transfers (empty calldata): the target's "
                    "fallback would act on bytes no permission describes. Send a plain transfer with no data, or "
                    "call a function with its own selector",
                    reason="ZeroSelectorCall",
                    session_id=self.session_id,
                    call_index=index,
                )
        elif size:
            raise CallRefusedError(
                f"call {index} has {size} bytes of calldata: a call needs none (a plain transfer) or at "
                "least a 4-byte selector",
                reason="InvalidCallData",
                session_id=self.session_id,
                call_index=index,
            )
        else:
            selector = _ZERO_SELECTOR
        if revoked:
            raise SessionRevokedError(
                f"{self._name} was revoked: the module finds no permission for call {index}; ask the "
                "owner for a new session",
                self.session_id,
            )
        permission = self._by_call.get(target + selector)
        if permission is None:
            raise self._no_permission(index, target, selector)
        if value > permission.limit:
            raise CallRefusedError(
                f"call {index} ({permission.permission.label}) sends {value} wei, over its permission's "
                f"limit of {permission.limit} wei: send less, or ask the owner for a higher value limit",
                reason="ValueLimitExceeded",
                session_id=self.session_id,
                call_index=index,
                permission_index=permission.index,
            )
        for first, end, canonical, flip, test, number in permission.rules:
            if size < end:
                raise self._too_short(index, permission, number, size)
            word = int.from_bytes(data[first:end], "big")
            if canonical is not None and not canonical(word):
                raise self._non_canonical(index, permission, number, word)
            if not test(word ^ flip):
                raise self._violated(index, permission, number, word)
        return permission.index

    def _window(
        self,
        used: tuple[int, ...],
        now: int | None,
        counted: tuple[Counters, int, int] | None = None,
        at: int | None = None,
    ) -> CheckResult:
        session = self.session
        if now is not None and not (_whole_number(now) and 0 <= now <= _NOW_MAX):
            raise BadInputError(
                f"now={shown(now)} is not a unix time in whole seconds from 0 to 2**64 - 1: give an int, such as "
                "int(time.time()), or None for the wall clock"
            )
        moment = int(time.time()) if now is None else now
        valid_after, valid_until, counters = session.valid_after, session.valid_until, None
        if counted is not None:
            counters, period_after, period_until = counted
            valid_after = max(valid_after, period_after)
            until = min(valid_until or UINT48_MAX, period_until)
            valid_until = 0 if until == UINT48_MAX else until
        opens = self._opening(session.valid_after)
        if moment < opens:
            raise SessionNotYetValidError(
                f"{self._name} is valid from {utc_moment(opens)}{self._v08_note(session.valid_after)}, "
                f"{opens - moment}s after now ({utc_moment(moment)}): wait, or ask the owner for a session valid now",
                self.session_id,
            )
        if session.valid_until and moment > session.valid_until:
            raise SessionExpiredError(
                f"{self._name} expired at {utc_moment(session.valid_until)}, "
                f"{moment - session.valid_until}s before now ({utc_moment(moment)}): ask the owner for a new "
                "session",
                self.session_id,
            )
        if moment > UINT48_MAX:  # validUntil 0 (no end) reads as type(uint48).max at the EntryPoint
            raise SessionExpiredError(
                f"now ({utc_moment(moment)}) is past 2**48 - 1 ({utc_moment(UINT48_MAX)}), where the EntryPoint ends every "
                f"window, that of {self._name} included (its valid_until 0, no end, reads as that moment): check the "
                "clock you passed as now",
                self.session_id,
            )
        if moment < self._opening(valid_after) or (valid_until and moment > valid_until):
            raise self._outside_period(moment, valid_after, valid_until, at)
        return CheckResult(valid_after, valid_until, used, counters)

    def _opening(self, valid_after: int) -> int:
        """The first second the EntryPoint accepts an operation whose validation data opens at ``valid_after``."""
        # v0.8 refuses `now <= validAfter`, validAfter 0 (no start) included: even its window opens at second 1
        return valid_after + 1 if self.opens_after else valid_after

    def _v08_note(self, valid_after: int) -> str:
        return (
            f" (EntryPoint v0.8 opens the window the second after {utc_moment(valid_after)})"
            if (self._opening(valid_after) != valid_after)
            else ""
        )

    def _outside_period(
        self, moment: int, valid_after: int, valid_until: int, at: int | None
    ) -> SessionError:
        """The operation counts in a period that does not hold ``moment``: the EntryPoint refuses it (AA22).
        ``at`` is the time the operation claims (the period it counts in is the one holding it)."""
        opens = self._opening(valid_after)
        if moment < opens:
            return SessionNotYetValidError(
                f"this operation counts towards a limit in the period from {utc_moment(opens)}"
                f"{self._v08_note(valid_after)}, {opens - moment}s after now ({utc_moment(moment)}): claim the current "
                "time, or wait",
                self.session_id,
            )
        # a period is narrowed only from a claimed time, which is in it: a session account claims the latest block's
        # time, and a chain that has made no block since the period ended still reads the old time
        claimed = f"claims the time {utc_moment(at)}, so it " if at is not None else ""
        return LimitPeriodEndingError(
            f"this operation {claimed}counts towards a limit in the period that ended at {utc_moment(valid_until)}, "
            f"{moment - valid_until}s before now ({utc_moment(moment)}), and the EntryPoint would refuse it as expired. "
            "The session has not expired: a session account claims the chain's latest block time, so if the chain "
            "has made no block since the period ended, wait for the next block (on a development node, mine one) "
            "and send it again; otherwise claim the current time",
            self.session_id,
            period_ends_at=valid_until,
        )

    # -- messages ------------------------------------------------------------------------------------------

    @property
    def _name(self) -> str:
        return f"session {self.session_id}" if self.session_id else "the session"

    def _forbidden(self, index: int, target: bytes) -> CallRefusedError:
        what = "the account itself" if target == self._account else "the session module"
        return CallRefusedError(
            f"call {index} targets {what} ({to_address(target)}): a session may never call the account "
            "or its validator module; make that call as the owner",
            reason="ForbiddenTarget",
            session_id=self.session_id,
            call_index=index,
        )

    def _no_permission(self, index: int, target: bytes, selector: bytes) -> CallRefusedError:
        address = to_address(target)
        if selector == _ZERO_SELECTOR:
            what = "a plain transfer (empty calldata)"
        else:
            names = {p.function for p in self.session.permissions if p.selector == selector and p.function}
            name = next(iter(names), None) or _KNOWN_SELECTORS.get(selector)
            what = f"{name} (0x{selector.hex()})" if name else f"selector 0x{selector.hex()}"
        allowed = "; ".join(p.label for p in self.session.permissions)
        return CallRefusedError(
            f"call {index}: no permission for {what} on {address}; this session allows: {allowed}. "
            "Change the call, or ask the owner for a session that allows it",
            reason="NoPermission",
            session_id=self.session_id,
            call_index=index,
        )

    def _too_short(self, index: int, compiled: _Compiled, number: int, size: int) -> CallRefusedError:
        rule = compiled.permission.rules[number]
        label, _ = _labelled(compiled.permission, rule)
        return self._rule_error(
            index,
            compiled,
            number,
            f"its calldata ({size} bytes) ends before {label} (bytes {rule.offset + 4} to {rule.offset + 36}) "
            f"that rule {number} checks: encode every argument of the function",
            "CalldataTooShort",
        )

    def _non_canonical(self, index: int, compiled: _Compiled, number: int, word: int) -> CallRefusedError:
        rule = compiled.permission.rules[number]
        label, kind = _labelled(compiled.permission, rule)
        type_name = _type_name(rule.arg_type, kind)
        article = "an" if type_name[0] in "ai" else "a"
        return self._rule_error(
            index,
            compiled,
            number,
            f"{label} is {article} {type_name}, but its word 0x{word:064x} is not a canonical {type_name} encoding "
            f"({_CANONICAL[rule.arg_type >> 5]}); a target that masks the word instead of reverting would read "
            "another value than the rule judged. Encode the argument with its ABI type",
            "NonCanonicalArgument",
            word,
        )

    def _violated(self, index: int, compiled: _Compiled, number: int, word: int) -> CallRefusedError:
        rule = compiled.permission.rules[number]
        label, kind = _labelled(compiled.permission, rule)
        show = [_show(v, kind, rule.is_signed) for v in rule.values]
        return self._rule_error(
            index,
            compiled,
            number,
            f"{label} {rule.requirement(show)}, got {_show(word, kind, rule.is_signed)}; change the call, or ask the owner for a "
            "session that allows it",
            "RuleViolated",
            word,
        )

    def _rule_error(
        self, index: int, compiled: _Compiled, number: int, what: str, reason: str, actual: int | None = None
    ) -> CallRefusedError:
        """Call ``index`` refused by rule ``number`` of ``compiled``: ``what`` follows the call's name."""
        return CallRefusedError(
            f"call {index} ({compiled.permission.label}): {what}",
            reason=reason,
            session_id=self.session_id,
            call_index=index,
            permission_index=compiled.index,
            rule_index=number,
            actual=actual,
        )


_CANONICAL = {
    0: "its unused high bytes must be zero",
    1: "it must be sign-extended from the type's top bit",
    2: "its unused low bytes must be zero",
    3: "it must be 0 or 1",
}


def _labelled(permission: Permission, rule: Rule) -> tuple[str, AbiType | None]:
    """``("argument `to`", address type)`` for a rule, from its name and the permission's signature."""
    kind: AbiType | None = None
    name = rule.name
    if permission.function and "(" in permission.function:
        try:
            found = parse_signature(permission.function).word_at(rule.offset)
        except BadInputError:
            found = None
        if found is not None:
            name = name or found[0]
            kind = found[1]
    if name:
        return f"argument `{name}`", kind
    return f"the word at argument offset {rule.offset}", kind


def _type_name(arg_type: int, kind: AbiType | None) -> str:
    """The rule's type as the argument's: ``address`` where the function's signature says so (an address rule has
    uint160's code, :meth:`ArgType.name`'s answer), else the code's name."""
    if arg_type == ArgType.ADDRESS and kind is not None and kind.name == "address":
        return "address"
    return ArgType.name(arg_type)


def _show(word: int, kind: AbiType | None, signed: bool) -> str:
    """A calldata word as its argument's type reads it (raw hex when the word is not a clean value)."""
    name = kind.name if kind is not None else ""
    if name == "address" and word >> 160 == 0:
        return to_address(word.to_bytes(20, "big"))
    if name == "bool" and word in (0, 1):
        return "true" if word else "false"
    if name.startswith("bytes") and name[5:].isdigit():
        size = int(name[5:])
        raw = word.to_bytes(32, "big")
        if not any(raw[size:]):
            return "0x" + raw[:size].hex()
    if signed or name.startswith("int"):
        return str(word - 2**256 if word >> 255 else word)
    if name.startswith("uint") or word < 2**64:
        return str(word)
    return "0x" + word.to_bytes(32, "big").lstrip(b"\x00").hex().rjust(40, "0")


def _claimable(at: int | None) -> None:
    """Refuse a claimed time the signature's 6-byte field cannot carry (the module would never see it)."""
    if at is not None and not (_whole_number(at) and 0 <= at <= UINT48_MAX):
        raise BadInputError(
            f"claimed time {shown(at)} is not a unix time from 0 to 2**48 - 1: an operation claims its time in 6 bytes"
        )


def _operation(op: object) -> None:
    """Refuse anything but a :class:`~keyscope.userop.UserOperation` where a whole operation is checked."""
    if not isinstance(op, UserOperation):
        raise BadInputError(
            f"a whole operation is a keyscope UserOperation, got {type(op).__name__}: build one (UserOperation(...) or "
            "UserOperation.from_rpc(...)), or check its callData alone with check()"
        )


def _countable(session: Session, counters: Counters | None) -> None:
    """Refuse counters that are not one :class:`~keyscope.limits.Counter` per limit of the session."""
    if counters is None:
        return
    if not isinstance(counters, (tuple, list)) or len(counters) != len(session.limits):
        size = len(counters) if isinstance(counters, (tuple, list)) else None
        got = f"{size} counters" if size is not None else a_type(counters)
        raise BadInputError(
            f"counters must hold one Counter per limit of the session ({len(session.limits)}), got {got}: pass "
            "the session's counters (session.usage(), counters_from_chain) or None for a fresh session's"
        )
    for index, counter in enumerate(counters):
        if not (
            isinstance(counter, Counter)
            and _whole_number(counter.left)
            and _whole_number(counter.period)
            and counter.left >= 0
            and counter.period >= 0
        ):
            raise BadInputError(
                f"counter {index} is {shown(counter)}, not a keyscope.limits.Counter of non-negative ints: pass the "
                "session's counters (session.usage(), counters_from_chain) or None for a fresh session's"
            )


# -- one-call form, with a small cache of compiled sessions ------------------------------------------------

_CACHE: dict[tuple[int, str | None, str | None], tuple[object, PolicyChecker]] = {}
_CACHE_SIZE = 64


def _checker_for(subject: SessionGrant | Session, account: Any, module: Any) -> PolicyChecker:
    raw_account = account if account is None or isinstance(account, str) else to_address(account)
    raw_module = module if module is None or isinstance(module, str) else to_address(module)
    key = (id(subject), raw_account, raw_module)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is subject:
        return cached[1]
    if isinstance(subject, SessionGrant):
        if account is not None or module is not None:
            raise BadInputError(
                "a SessionGrant names its account and module: do not pass account= or module="
            )
        checker = PolicyChecker.for_grant(subject)
    elif isinstance(subject, Session):
        if account is None or module is None:
            raise BadInputError("checking a bare Session needs account= and module= (or pass a SessionGrant)")
        checker = PolicyChecker(subject, account, module)
    else:
        raise BadInputError(f"check() takes a SessionGrant or a Session, got {type(subject).__name__}")
    if len(_CACHE) >= _CACHE_SIZE:
        with contextlib.suppress(RuntimeError, StopIteration):  # another thread may be evicting too
            _CACHE.pop(next(iter(_CACHE)), None)
    _CACHE[key] = (subject, checker)
    return checker


def check(
    subject: SessionGrant | Session,
    operation: bytes | str | Call | Sequence[Call] | UserOperation,
    *,
    account: Any = None,
    module: Any = None,
    now: int | None = None,
    revoked: bool = False,
) -> CheckResult:
    """Check ``operation`` (``execute`` callData, one :class:`Call` or a list of them, or a whole
    :class:`~keyscope.userop.UserOperation`, its gas cost included) against a granted
    session, or a bare :class:`Session` with its ``account`` and ``module``.

    ``now`` is the unix time to check the window at (the wall clock when None); ``revoked`` says the owner
    revoked the session. Returns a :class:`CheckResult`, or raises what the chain would refuse (see the
    module docstring). Compiled sessions are cached, so repeated checks cost a few microseconds.
    """
    checker = _checker_for(subject, account, module)
    if not isinstance(operation, (UserOperation, bytes, str, bytearray, memoryview, Call, list, tuple)):
        raise BadInputError(
            f"check() takes execute callData (bytes or 0x-hex), a Call or a list of Calls, or a UserOperation; "
            f"got {type(operation).__name__}"
        )
    if isinstance(operation, UserOperation):
        return checker.check_operation(operation, now=now, revoked=revoked)
    if isinstance(operation, (bytes, str)):
        return checker.check(operation, now=now, revoked=revoked)
    if isinstance(operation, (bytearray, memoryview)):
        return checker.check(bytes(operation), now=now, revoked=revoked)
    return checker.check_calls(operation, now=now, revoked=revoked)
