"""ERC-7562 validation-scope rules, checked on a real opcode trace of ``EntryPoint.handleOps``.

A bundler running in safe mode traces the validation of every UserOperation and drops those whose validation
reads the environment, touches storage that is not the account's, or calls where it must not. The local stack
runs Alto without that tracer (anvil has no JavaScript tracers), so this module does the same checks from
anvil's ``debug_traceCall`` opcode log (the default struct logger, with stack and memory)::

    checker = Erc7562Checker(stack.node, stack.entry_point, submitter=stack.accounts[0].address)
    report = checker.check([op])          # traces handleOps([op], submitter) from the funded submitter
    report.assert_clean()                 # AssertionError listing every broken rule

How the trace is read:

* **Frames.** Every ``*CALL`` / ``CREATE*`` step whose next step is one level deeper opens a frame; the callee
  is taken from the stack (for ``CREATE2``, from the parent's stack once the frame returns). A call whose next
  step stays at the same depth ran no code: a precompile, or an address without code.
* **Phases.** The frames the EntryPoint (depth 1) opens during validation are, per operation and in this order:
  ``SenderCreator.createSender`` (the *factory* phase, when the operation has ``initCode``; for an EIP-7702
  account, EntryPoint v0.8's ``SenderCreator.initEip7702Sender`` when its initCode holds more than the
  ``0x7702`` marker, and no factory phase otherwise), the account's
  ``validateUserOp`` (the *account* phase) and the paymaster's ``validatePaymasterUserOp`` (the *paymaster*
  phase). Every frame below one of them belongs to its phase. Validation ends at the EntryPoint's first call
  to itself (``innerHandleOp``, the execution), or with the trace when validation reverted.
* **Keccak preimages.** Each ``KECCAK256`` step's input is read from the memory captured at that step, and its
  output from the next step's stack. A slot is *associated* with an address ``A`` when it equals ``A``, or is
  ``keccak256(A || x) + n`` with ``x`` 32 bytes and ``0 <= n < 128`` (the ERC's definition), ``A`` left-padded
  to 32 bytes as Solidity lays out ``mapping(address => ...)``.

The rules checked (numbers as in ERC-7562), in every frame of every phase except the EntryPoint's own code:

* OP-011 blocked opcodes: ``ORIGIN GASPRICE BLOCKHASH COINBASE TIMESTAMP NUMBER PREVRANDAO/DIFFICULTY GASLIMIT
  BASEFEE CREATE INVALID SELFDESTRUCT``, and the blob-era environment opcodes ``BLOBHASH BLOBBASEFEE``, which
  later drafts and bundlers block too;
* OP-012 ``GAS`` only immediately before a ``*CALL``; OP-013 no unassigned opcode; OP-020 no out-of-gas;
* OP-031 ``CREATE2`` exactly once, in the factory phase, creating the sender;
* OP-041 / OP-042 no ``EXTCODE*`` or ``*CALL`` on an address without code (the sender is exempt in the
  factory phase);
* OP-051..054 the EntryPoint may be asked ``EXTCODESIZE``, sent ``depositTo(sender)`` by the sender or factory,
  or called with empty calldata by the sender; nothing else;
* OP-061 no ``CALL`` with value except to the EntryPoint; OP-062 only precompiles 0x01..0x09 (more with
  ``extra_precompiles``);
* OP-070 ``TLOAD``/``TSTORE`` are checked as storage; OP-080 ``BALANCE``/``SELFBALANCE`` only for a staked
  entity;
* STO-010 the account's own storage; STO-021 storage associated with the account in any other contract when
  the account existed before the operation; STO-022 the same while the operation creates the account, only
  with a staked factory; STO-031/032/033 a staked entity's own storage, storage associated with it, and
  read-only access elsewhere.

An entity is *staked* when its EntryPoint stake is at least ``min_stake`` (default 1 ether) with an unstake
delay of at least ``MIN_UNSTAKE_DELAY`` (one day) and not withdrawing.

EIP-7702 accounts (EntryPoint v0.8): an operation carrying the EOA's authorization is traced with it
(``authorizationList`` in the traced call, as the bundler's type-4 transaction carries it), and its sender counts
as an account that existed before the operation and has code (for ``EXTCODECOPY`` on it, which the trace does not
settle, as a paymaster reading its delegate does): the delegation is in place before validation begins, and the
EOA was there all along. The EntryPoint reading the sender's code to find its delegate is its own code, as the
rules allow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from keyscope.eip7702 import Authorization
from keyscope.entrypoint import encode_handle_ops
from keyscope.hashing import is_eip7702_init_code
from keyscope.hexutil import to_address, to_bytes
from keyscope.revert import describe_revert
from keyscope.rpc import JsonRpcClient
from keyscope.userop import PackedUserOperation, UserOperation

__all__ = [
    "BLOCKED_OPCODES",
    "MIN_UNSTAKE_DELAY",
    "CallRecord",
    "Erc7562Checker",
    "Erc7562Report",
    "Frame",
    "Phase",
    "StakeInfo",
    "StorageAccess",
    "TraceError",
    "ValidationTrace",
    "Violation",
    "associated_with",
    "check_trace",
    "parse_validation_trace",
]

MIN_UNSTAKE_DELAY = 86_400
"""ERC-7562 ``MIN_UNSTAKE_DELAY``: one day."""

BLOCKED_OPCODES: Mapping[str, str] = {
    "ORIGIN": "OP-011",
    "GASPRICE": "OP-011",
    "BLOCKHASH": "OP-011",
    "COINBASE": "OP-011",
    "TIMESTAMP": "OP-011",
    "NUMBER": "OP-011",
    "DIFFICULTY": "OP-011",
    "PREVRANDAO": "OP-011",
    "RANDOM": "OP-011",
    "GASLIMIT": "OP-011",
    "BASEFEE": "OP-011",
    "BLOBHASH": "OP-011",
    "BLOBBASEFEE": "OP-011",
    "CREATE": "OP-011",
    "INVALID": "OP-011",
    "SELFDESTRUCT": "OP-011",
}
"""Opcodes never allowed in validation, by the name anvil's (or geth's) struct logger gives them."""

CALL_OPCODES = frozenset({"CALL", "CALLCODE", "DELEGATECALL", "STATICCALL"})
CREATE_OPCODES = frozenset({"CREATE", "CREATE2"})
EXTCODE_OPCODES = frozenset({"EXTCODESIZE", "EXTCODEHASH", "EXTCODECOPY"})
STORAGE_OPCODES = frozenset({"SLOAD", "SSTORE", "TLOAD", "TSTORE"})
_READS = frozenset({"SLOAD", "TLOAD"})
_BALANCE_OPCODES = frozenset({"BALANCE", "SELFBALANCE"})

# Every opcode assigned up to Cancun, under the names struct loggers use (with the aliases some use).
_ASSIGNED = frozenset(
    {
        *(f"PUSH{n}" for n in range(0, 33)),
        *(f"DUP{n}" for n in range(1, 17)),
        *(f"SWAP{n}" for n in range(1, 17)),
        *(f"LOG{n}" for n in range(0, 5)),
        "STOP", "ADD", "MUL", "SUB", "DIV", "SDIV", "MOD", "SMOD", "ADDMOD", "MULMOD", "EXP", "SIGNEXTEND",
        "LT", "GT", "SLT", "SGT", "EQ", "ISZERO", "AND", "OR", "XOR", "NOT", "BYTE", "SHL", "SHR", "SAR",
        "KECCAK256", "SHA3", "ADDRESS", "BALANCE", "ORIGIN", "CALLER", "CALLVALUE", "CALLDATALOAD",
        "CALLDATASIZE", "CALLDATACOPY", "CODESIZE", "CODECOPY", "GASPRICE", "EXTCODESIZE", "EXTCODECOPY",
        "RETURNDATASIZE", "RETURNDATACOPY", "EXTCODEHASH", "BLOCKHASH", "COINBASE", "TIMESTAMP", "NUMBER",
        "DIFFICULTY", "PREVRANDAO", "RANDOM", "GASLIMIT", "CHAINID", "SELFBALANCE", "BASEFEE", "BLOBHASH",
        "BLOBBASEFEE", "POP", "MLOAD", "MSTORE", "MSTORE8", "SLOAD", "SSTORE", "JUMP", "JUMPI", "PC",
        "MSIZE", "GAS", "JUMPDEST", "TLOAD", "TSTORE", "MCOPY", "CREATE", "CALL", "CALLCODE", "RETURN",
        "DELEGATECALL", "CREATE2", "STATICCALL", "REVERT", "INVALID", "SELFDESTRUCT", "SUICIDE",
    }
)  # fmt: skip

_CORE_PRECOMPILES = frozenset(range(1, 10))
_PRECOMPILE_CEILING = (
    0x400  # addresses up to here are reserved for precompiles: never "an address without code"
)
_EMPTY_CODE_HASH = int.from_bytes(keccak(b""), "big")

_VALIDATE_USER_OP = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
_VALIDATE_PAYMASTER = keccak(
    b"validatePaymasterUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
_CREATE_SENDER = keccak(b"createSender(bytes)")[:4]
_INIT_EIP7702_SENDER = keccak(b"initEip7702Sender(address,bytes)")[:4]
_DEPOSIT_TO = keccak(b"depositTo(address)")[:4]
_GET_DEPOSIT_INFO = keccak(b"getDepositInfo(address)")[:4]


class TraceError(Exception):
    """The trace cannot be read as a ``handleOps`` validation (wrong EntryPoint, unexpected call order, a node
    without ``debug_traceCall`` memory capture)."""


# --------------------------------------------------------------------------------------------------
# What the trace holds
# --------------------------------------------------------------------------------------------------


@dataclass
class Frame:
    """One call frame: ``address`` is the storage context (the caller's for ``DELEGATECALL``), ``code_address``
    the code that ran. A ``CREATE2`` frame's address is known once it returns (zero when creation failed)."""

    id: int
    depth: int
    kind: str
    address: str
    code_address: str
    caller: str
    value: int
    input: bytes
    parent: int | None
    phase: int | None = None

    @property
    def selector(self) -> bytes:
        """The first four bytes of the input (empty for a create or a call without data)."""
        return self.input[:4] if self.kind not in CREATE_OPCODES else b""


@dataclass(frozen=True)
class StorageAccess:
    """An ``SLOAD``/``SSTORE``/``TLOAD``/``TSTORE`` of ``slot`` in ``contract``'s storage."""

    step: int
    frame: int
    phase: int
    op: str
    contract: str
    slot: int
    pc: int

    @property
    def writes(self) -> bool:
        """Whether the access writes."""
        return self.op not in _READS


@dataclass(frozen=True)
class CallRecord:
    """A ``*CALL`` or ``CREATE*`` made during validation. ``entered`` says whether code ran in the callee;
    ``success`` is the result the caller saw (None when unknown: the trace ended)."""

    step: int
    frame: int
    phase: int
    op: str
    caller: str
    target: str
    value: int
    input: bytes
    entered: bool
    success: bool | None


@dataclass(frozen=True)
class OpcodeUse:
    """One executed opcode of interest (blocked, ``GAS``, ``EXTCODE*``, ``BALANCE``...) with what the checks
    need: the operand address for ``EXTCODE*``/``BALANCE`` and the result for ``EXTCODESIZE``/``EXTCODEHASH``."""

    step: int
    frame: int
    phase: int
    op: str
    contract: str
    pc: int
    operand: str | None = None
    result: int | None = None
    next_op: str | None = None
    error: str | None = None


@dataclass
class Phase:
    """The validation work of one entity for one operation."""

    index: int
    kind: str
    """``factory``, ``account`` or ``paymaster``."""
    op_index: int
    entity: str
    """The factory, the account (sender) or the paymaster."""
    sender: str
    frame: int
    frames: list[int] = field(default_factory=list)
    storage: list[StorageAccess] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    opcodes: list[OpcodeUse] = field(default_factory=list)
    opcode_counts: Counter[str] = field(default_factory=Counter)
    counts_by_contract: dict[str, Counter[str]] = field(default_factory=dict)
    """Opcodes executed in the storage context of each contract (a proxy and the code it delegates to count as
    the proxy)."""
    created: list[str] = field(default_factory=list)


@dataclass
class ValidationTrace:
    """The validation part of a ``handleOps`` trace, split into phases."""

    entry_point: str
    frames: list[Frame]
    phases: list[Phase]
    preimages: dict[int, bytes]
    """keccak256 output -> input, for every ``KECCAK256`` executed during validation."""
    failed: bool
    return_data: bytes
    steps: int
    validation_complete: bool
    """Whether the trace reached execution (every operation passed validation)."""

    @property
    def outcome(self) -> str:
        """``"ok"`` when ``handleOps`` succeeded, else the decoded revert (``"AA24 signature error"``...)."""
        return describe_revert(self.return_data) if self.failed else "ok"

    def phase(self, kind: str, op_index: int = 0) -> Phase:
        """The phase of ``kind`` for operation ``op_index``; :class:`TraceError` when the trace has none."""
        for phase in self.phases:
            if phase.kind == kind and phase.op_index == op_index:
                return phase
        raise TraceError(f"the trace has no {kind} phase for operation {op_index} (outcome: {self.outcome})")


# --------------------------------------------------------------------------------------------------
# Reading struct logs
# --------------------------------------------------------------------------------------------------


def _word(value: str) -> int:
    return int(value, 16)


def _address(value: int) -> str:
    return to_address("0x" + (value & (2**160 - 1)).to_bytes(20, "big").hex())


def _memory(step: Mapping[str, Any]) -> bytes:
    memory = step.get("memory")
    if memory is None:
        return b""
    if isinstance(memory, str):
        return to_bytes(memory)
    return b"".join(bytes.fromhex(word[2:] if word.startswith("0x") else word) for word in memory)


def _slice(memory: bytes, offset: int, size: int) -> bytes:
    if size == 0:
        return b""
    chunk = memory[offset : offset + size]
    return chunk + b"\x00" * (size - len(chunk))


@dataclass(frozen=True)
class _Expected:
    kind: str
    op_index: int
    entity: str
    sender: str


def _expected_phases(ops: Sequence[PackedUserOperation]) -> list[_Expected]:
    expected = []
    for index, op in enumerate(ops):
        sender = to_address(op.sender)
        if is_eip7702_init_code(op.init_code):
            if len(op.init_code) > 20:  # SenderCreator calls the delegated account with the rest
                expected.append(_Expected("factory", index, sender, sender))
        elif op.init_code:
            expected.append(_Expected("factory", index, to_address(op.init_code[:20]), sender))
        expected.append(_Expected("account", index, sender, sender))
        if op.paymaster_and_data:
            expected.append(_Expected("paymaster", index, to_address(op.paymaster_and_data[:20]), sender))
    return expected


def parse_validation_trace(
    trace: Mapping[str, Any], entry_point: str, ops: Sequence[UserOperation | PackedUserOperation]
) -> ValidationTrace:
    """Split a ``debug_traceCall`` struct-log trace of ``handleOps(ops, ...)`` into validation phases."""
    logs: list[dict[str, Any]] = trace.get("structLogs") or []
    if not logs:
        raise TraceError("the trace has no struct logs: trace with the default tracer (no 'tracer' option)")
    if "stack" not in logs[0]:
        raise TraceError("the trace has no stacks: trace with disableStack false")
    if "memory" not in logs[0]:
        raise TraceError(
            "the trace has no memory: trace with enableMemory true (call inputs and keccak preimages are read "
            "from memory)"
        )
    entry = to_address(entry_point)
    packed = [op.pack() if isinstance(op, UserOperation) else op for op in ops]
    expected = _expected_phases(packed)

    root = Frame(0, 1, "ROOT", entry, entry, "", 0, b"", None)
    frames = [root]
    stack = [root]
    phases: list[Phase] = []
    preimages: dict[int, bytes] = {}
    pending_keccak: tuple[int, bytes] | None = None
    complete = False

    for i, step in enumerate(logs):
        depth = int(step["depth"])
        words: list[str] = step.get("stack") or []
        # frames that returned: the parent's next step holds their result
        while depth < len(stack):
            done = stack.pop()
            if done.kind in CREATE_OPCODES:
                created = _address(_word(words[-1])) if words else _address(0)
                done.address = done.code_address = created
                if done.phase is not None and int(created, 16):
                    phases[done.phase].created.append(created)
        if depth > len(stack):
            raise TraceError(f"step {i} is at depth {depth} but no call opened that frame")
        frame = stack[-1]
        if pending_keccak is not None:
            digest_step, data = pending_keccak
            if depth == logs[digest_step]["depth"] and words:
                preimages[_word(words[-1])] = data
            pending_keccak = None
        op = str(step["op"])
        nxt = logs[i + 1] if i + 1 < len(logs) else None
        entered = nxt is not None and int(nxt["depth"]) == depth + 1

        if frame.phase is None and depth == 1 and op in CALL_OPCODES | CREATE_OPCODES and entered:
            target = _address(_word(words[-2]))
            if target == entry:
                complete = True  # innerHandleOp: validation is over
                break
        if frame.phase is None and depth > 1:
            raise TraceError(f"step {i}: code at depth {depth} outside any validation phase")

        phase = phases[frame.phase] if frame.phase is not None else None
        if phase is not None:
            phase.opcode_counts[op] += 1
            phase.counts_by_contract.setdefault(frame.address, Counter())[op] += 1
            _record_step(phase, frame, i, step, words, nxt, op)
            if op in STORAGE_OPCODES and words:
                phase.storage.append(
                    StorageAccess(
                        i, frame.id, phase.index, op, frame.address, _word(words[-1]), int(step["pc"])
                    )
                )
            if op in ("KECCAK256", "SHA3"):
                offset, size = _word(words[-1]), _word(words[-2])
                pending_keccak = (i, _slice(_memory(step), offset, size))

        if op in CALL_OPCODES | CREATE_OPCODES:
            new = _open_frame(len(frames), frame, op, words, step, entered)
            if phase is not None:
                success: bool | None = None
                if not entered and nxt is not None and int(nxt["depth"]) == depth and nxt.get("stack"):
                    success = _word(nxt["stack"][-1]) != 0
                if entered:
                    success = _result_of_frame(logs, i, depth)
                phase.calls.append(
                    CallRecord(
                        i, frame.id, phase.index, op, frame.address, new.code_address, new.value, new.input,
                        entered, success,
                    )
                )  # fmt: skip
            if entered:
                if frame.phase is None:
                    if len(phases) >= len(expected):
                        raise TraceError(
                            f"step {i}: the EntryPoint made more validation calls than the operations need "
                            f"({len(expected)} phases expected)"
                        )
                    want = expected[len(phases)]
                    kind = _phase_kind(new)
                    if kind != want.kind or (kind != "factory" and new.address != want.entity):
                        raise TraceError(
                            f"step {i}: the EntryPoint called {new.address} ({kind or 'unknown'}) where the "
                            f"{want.kind} phase of operation {want.op_index} ({want.entity}) was expected"
                        )
                    new.phase = len(phases)
                    phases.append(
                        Phase(new.phase, want.kind, want.op_index, want.entity, want.sender, new.id)
                    )
                else:
                    new.phase = frame.phase
                frames.append(new)
                stack.append(new)
                if new.phase is not None:
                    phases[new.phase].frames.append(new.id)

    # storage touched while a contract was being created is known by address only once the creation returned
    for phase in phases:
        phase.storage = [
            replace(access, contract=frames[access.frame].address) if not access.contract else access
            for access in phase.storage
        ]
    return ValidationTrace(
        entry_point=entry,
        frames=frames,
        phases=phases,
        preimages=preimages,
        failed=bool(trace.get("failed")),
        return_data=to_bytes(trace.get("returnValue") or "0x"),
        steps=len(logs),
        validation_complete=complete,
    )


def _phase_kind(frame: Frame) -> str | None:
    selector = frame.selector
    if selector in (_CREATE_SENDER, _INIT_EIP7702_SENDER):
        return "factory"
    if selector == _VALIDATE_USER_OP:
        return "account"
    if selector == _VALIDATE_PAYMASTER:
        return "paymaster"
    return None


def _open_frame(
    frame_id: int, parent: Frame, op: str, words: list[str], step: Mapping[str, Any], entered: bool
) -> Frame:
    if op in CREATE_OPCODES:
        value = _word(words[-1])
        memory = _memory(step) if entered else b""
        init = _slice(memory, _word(words[-2]), _word(words[-3])) if memory else b""
        return Frame(frame_id, parent.depth + 1, op, "", "", parent.address, value, init, parent.id)
    target = _address(_word(words[-2]))
    if op in ("CALL", "CALLCODE"):
        value = _word(words[-3])
        offset, size = _word(words[-4]), _word(words[-5])
    else:
        value = 0
        offset, size = _word(words[-3]), _word(words[-4])
    data = _slice(_memory(step), offset, size)
    if op in ("DELEGATECALL", "CALLCODE"):
        return Frame(
            frame_id, parent.depth + 1, op, parent.address, target, parent.caller, value, data, parent.id
        )
    return Frame(frame_id, parent.depth + 1, op, target, target, parent.address, value, data, parent.id)


def _result_of_frame(logs: list[dict[str, Any]], call_step: int, depth: int) -> bool | None:
    for j in range(call_step + 1, len(logs)):
        if int(logs[j]["depth"]) <= depth:
            words = logs[j].get("stack") or []
            return bool(words) and _word(words[-1]) != 0
    return None


def _record_step(
    phase: Phase,
    frame: Frame,
    i: int,
    step: Mapping[str, Any],
    words: list[str],
    nxt: Mapping[str, Any] | None,
    op: str,
) -> None:
    error = step.get("error")
    interesting = (
        op in BLOCKED_OPCODES
        or op in EXTCODE_OPCODES
        or op in _BALANCE_OPCODES
        or op in ("GAS", "CREATE2")
        or op not in _ASSIGNED
        or error
    )
    if not interesting:
        return
    operand: str | None = None
    result: int | None = None
    if op in EXTCODE_OPCODES or op == "BALANCE":
        operand = _address(_word(words[-1]))
    if op in ("EXTCODESIZE", "EXTCODEHASH") and nxt is not None and nxt.get("stack"):
        result = _word(nxt["stack"][-1])
    phase.opcodes.append(
        OpcodeUse(
            i, frame.id, phase.index, op, frame.address, int(step["pc"]), operand, result,
            str(nxt["op"]) if nxt is not None and int(nxt["depth"]) == int(step["depth"]) else None,
            str(error) if error else None,
        )
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StakeInfo:
    """An entity's stake at the EntryPoint (``getDepositInfo``)."""

    address: str
    stake: int
    unstake_delay_sec: int
    withdraw_time: int
    staked: bool

    def meets(self, min_stake: int, min_delay: int = MIN_UNSTAKE_DELAY) -> bool:
        """Whether this counts as staked for ERC-7562."""
        return (
            self.staked
            and self.withdraw_time == 0
            and self.stake >= min_stake
            and self.unstake_delay_sec >= min_delay
        )

    def __str__(self) -> str:
        ether = self.stake / 10**18
        return f"{self.address} stake {ether:g} ETH, unstake delay {self.unstake_delay_sec} s"


@dataclass(frozen=True)
class Violation:
    """A broken ERC-7562 rule."""

    rule: str
    phase: str
    entity: str
    contract: str
    step: int
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.phase} phase ({self.entity}), in {self.contract} at step {self.step}: {self.message}"


@dataclass(frozen=True)
class StorageVerdict:
    """Why a storage access is allowed (``rule``), or None when it is not; ``association`` says how the slot
    relates to the address it is associated with (``keccak256(A || x) + n``)."""

    access: StorageAccess
    rule: str | None
    associated: str | None
    offset: int | None
    reason: str


def associated_with(slot: int, address: str, preimages: Mapping[int, bytes]) -> int | None:
    """``n`` when ``slot == keccak256(pad32(address) || x) + n`` with ``x`` 32 bytes and ``0 <= n < 128``
    (``-1`` when ``slot`` is the address itself), else None."""
    value = int(address, 16)
    if slot == value:
        return -1
    prefix = value.to_bytes(32, "big")
    for digest, data in preimages.items():
        if 0 <= slot - digest < 128 and len(data) == 64 and data[:32] == prefix:
            return slot - digest
    return None


def _associated_address(slot: int, preimages: Mapping[int, bytes]) -> tuple[str, int] | None:
    """The address-shaped key ``A`` and ``n`` when ``slot == keccak256(A || x) + n``, for messages."""
    for digest, data in preimages.items():
        if 0 <= slot - digest < 128 and len(data) == 64 and not any(data[:12]):
            return to_address("0x" + data[12:32].hex()), slot - digest
    return None


@dataclass
class Erc7562Report:
    """The outcome of :func:`check_trace`: the trace, the violations, and a verdict for every storage access."""

    trace: ValidationTrace
    violations: list[Violation]
    storage: list[StorageVerdict]
    stakes: dict[str, StakeInfo]
    existed: dict[str, bool]

    @property
    def ok(self) -> bool:
        """No rule broken."""
        return not self.violations

    @property
    def outcome(self) -> str:
        """What ``handleOps`` did: ``"ok"`` or the decoded revert."""
        return self.trace.outcome

    def rules(self) -> set[str]:
        """The rule numbers broken."""
        return {v.rule for v in self.violations}

    def storage_in(self, contract: str, phase: str | None = None) -> list[StorageVerdict]:
        """Verdicts of the accesses to ``contract``'s storage (in phases of ``phase`` kind when given)."""
        address = to_address(contract)
        return [
            v
            for v in self.storage
            if v.access.contract == address
            and (phase is None or self.trace.phases[v.access.phase].kind == phase)
        ]

    def opcodes_in(self, contract: str, phase: str | None = None) -> Counter[str]:
        """How often each opcode ran in ``contract``'s context during validation (in ``phase`` kinds when
        given)."""
        address = to_address(contract)
        total: Counter[str] = Counter()
        for item in self.trace.phases:
            if phase is None or item.kind == phase:
                total.update(item.counts_by_contract.get(address, Counter()))
        return total

    def summary(self) -> str:
        """A few lines: outcome, phases with their sizes, storage verdicts by rule, violations."""
        lines = [f"handleOps outcome: {self.outcome}; {self.trace.steps} steps traced"]
        for phase in self.trace.phases:
            stake = self.stakes.get(phase.entity)
            staked = f", staked ({stake})" if stake is not None and stake.staked else ", unstaked"
            lines.append(
                f"  {phase.kind} phase of op {phase.op_index} ({phase.entity}{staked}): {len(phase.frames)} "
                f"frames, {sum(phase.opcode_counts.values())} opcodes, {len(phase.storage)} storage accesses"
            )
        by_rule = Counter(v.rule or "VIOLATION" for v in self.storage)
        if by_rule:
            lines.append(
                "  storage: " + ", ".join(f"{rule} x{count}" for rule, count in sorted(by_rule.items()))
            )
        lines += [f"  {violation}" for violation in self.violations]
        return "\n".join(lines)

    def assert_clean(self) -> None:
        """Raise AssertionError listing every violation, if any."""
        if self.violations:
            raise AssertionError("ERC-7562 violations:\n" + self.summary())


def check_trace(
    trace: ValidationTrace,
    *,
    stakes: Mapping[str, StakeInfo],
    existed: Mapping[str, bool],
    has_code: Callable[[str], bool],
    min_stake: int = 10**18,
    extra_precompiles: Iterable[int] = (),
) -> Erc7562Report:
    """Check every phase of ``trace`` against the ERC-7562 rules.

    ``stakes`` gives the stake of each entity (factory, paymaster, account; missing = unstaked), ``existed``
    whether each sender had code before the operation, ``has_code`` whether an address has code (asked only for
    ``EXTCODECOPY`` operands that the trace itself does not settle).
    """
    entry = trace.entry_point
    allowed_precompiles = _CORE_PRECOMPILES | frozenset(extra_precompiles)
    violations: list[Violation] = []
    verdicts: list[StorageVerdict] = []
    frames = trace.frames

    def staked(address: str) -> bool:
        info = stakes.get(address)
        return info is not None and info.meets(min_stake)

    entities = {phase.entity for phase in trace.phases} | {phase.sender for phase in trace.phases}
    created_in_trace = {address for phase in trace.phases for address in phase.created}

    for phase in trace.phases:

        def flag(rule: str, contract: str, step: int, message: str, phase: Phase = phase) -> None:
            violations.append(Violation(rule, phase.kind, phase.entity, contract, step, message))

        factory_phase = phase.kind == "factory"
        # -- opcodes ------------------------------------------------------------------------------------
        create2 = 0
        for use in phase.opcodes:
            if frames[use.frame].code_address == entry:
                continue  # the EntryPoint's own code (depositTo) is trusted
            if use.error and ("outofgas" in use.error.replace(" ", "").lower()):
                flag("OP-020", use.contract, use.step, f"out of gas at {use.op} (pc {use.pc})")
            if use.op in BLOCKED_OPCODES:
                flag(
                    BLOCKED_OPCODES[use.op], use.contract, use.step, f"blocked opcode {use.op} (pc {use.pc})"
                )
            elif use.op not in _ASSIGNED:
                flag("OP-013", use.contract, use.step, f"unassigned opcode {use.op} (pc {use.pc})")
            elif use.op == "GAS" and use.next_op not in CALL_OPCODES:
                flag(
                    "OP-012",
                    use.contract,
                    use.step,
                    f"GAS followed by {use.next_op}, not a *CALL (pc {use.pc})",
                )
            elif use.op in _BALANCE_OPCODES and not staked(phase.entity):
                flag("OP-080", use.contract, use.step, f"{use.op} by an unstaked entity (pc {use.pc})")
            elif use.op == "CREATE2":
                create2 += 1
            elif use.op in EXTCODE_OPCODES and use.operand is not None:
                target = use.operand
                if target == entry:
                    if use.op != "EXTCODESIZE":
                        flag("OP-054", use.contract, use.step, f"{use.op} on the EntryPoint")
                    continue
                if factory_phase and target == phase.sender:
                    continue  # OP-042
                if int(target, 16) < _PRECOMPILE_CEILING:
                    continue
                if use.op == "EXTCODESIZE":
                    empty = use.result == 0
                elif use.op == "EXTCODEHASH":
                    empty = use.result in (0, _EMPTY_CODE_HASH)
                else:
                    empty = target not in created_in_trace and not has_code(target)
                if empty:
                    flag("OP-041", use.contract, use.step, f"{use.op} on {target}, which has no code")
        if create2 and not factory_phase:
            flag("OP-031", phase.entity, phase.frame, f"CREATE2 outside the factory phase ({create2}x)")
        if factory_phase:
            if create2 != 1:
                flag(
                    "OP-031",
                    phase.entity,
                    phase.frame,
                    f"the factory phase ran CREATE2 {create2} times, not once",
                )
            elif phase.created != [phase.sender]:
                flag(
                    "OP-031",
                    phase.entity,
                    phase.frame,
                    f"CREATE2 made {phase.created}, not the sender {phase.sender}",
                )

        # -- calls --------------------------------------------------------------------------------------
        for call in phase.calls:
            if frames[call.frame].code_address == entry:
                continue
            if call.op in CREATE_OPCODES:
                continue
            target = call.target
            number = int(target, 16)
            if target == entry:
                selector = call.input[:4]
                if (
                    call.op == "CALL"
                    and selector == _DEPOSIT_TO
                    and call.caller in (phase.sender, phase.entity)
                ):
                    (beneficiary,) = abi_decode(["address"], call.input[4:36].ljust(32, b"\x00"))
                    if to_address(beneficiary) != phase.sender:
                        flag(
                            "OP-052",
                            call.caller,
                            call.step,
                            f"depositTo({beneficiary}) is not for the sender",
                        )
                elif call.op == "CALL" and not call.input and call.caller == phase.sender:
                    pass  # OP-053 allows it: the sender paying the EntryPoint with an empty call
                else:
                    flag(
                        "OP-054", call.caller, call.step,
                        f"{call.op} to the EntryPoint with input 0x{call.input[:4].hex()} from {call.caller}",
                    )  # fmt: skip
                continue
            if call.value and call.op in ("CALL", "CALLCODE"):
                flag("OP-061", call.caller, call.step, f"{call.op} with value {call.value} to {target}")
            if not call.entered:
                if 0 < number < _PRECOMPILE_CEILING:
                    if number not in allowed_precompiles:
                        flag(
                            "OP-062", call.caller, call.step, f"{call.op} to precompile {target}, not allowed"
                        )
                elif not (factory_phase and target == phase.sender):
                    flag("OP-041", call.caller, call.step, f"{call.op} to {target}, which has no code")

        # -- storage -----------------------------------------------------------------------------------
        for access in phase.storage:
            verdict = _storage_verdict(access, phase, trace, staked, existed, entities)
            verdicts.append(verdict)
            if verdict.rule is None:
                flag(
                    verdict.reason.split(":", 1)[0],
                    access.contract,
                    access.step,
                    verdict.reason.split(": ", 1)[1],
                )

    return Erc7562Report(trace, violations, verdicts, dict(stakes), dict(existed))


def _storage_verdict(
    access: StorageAccess,
    phase: Phase,
    trace: ValidationTrace,
    staked: Callable[[str], bool],
    existed: Mapping[str, bool],
    entities: set[str],
) -> StorageVerdict:
    sender = phase.sender
    slot = f"{access.op} slot 0x{access.slot:064x} of {access.contract}"
    if access.contract == trace.entry_point:
        # the EntryPoint's own bookkeeping (the deposit a prefund lands in): trusted, as bundlers treat it
        return StorageVerdict(access, "EntryPoint", None, None, f"EntryPoint: {slot} is the EntryPoint's own")
    if access.contract == sender:
        return StorageVerdict(
            access, "STO-010", sender, None, f"STO-010: {slot} is the account's own storage"
        )
    n = associated_with(access.slot, sender, trace.preimages)
    if n is not None:
        how = "the account's address" if n < 0 else f"keccak256(account || x) + {n}"
        if existed.get(sender, False):
            return StorageVerdict(
                access, "STO-021", sender, n, f"STO-021: {slot} is {how}; the account exists"
            )
        factory = next(
            (p.entity for p in trace.phases if p.kind == "factory" and p.op_index == phase.op_index), None
        )
        if factory is not None and staked(factory):
            return StorageVerdict(
                access, "STO-022", sender, n,
                f"STO-022: {slot} is {how}; the operation creates the account with the staked factory {factory}",
            )  # fmt: skip
        reason = f"STO-022: {slot} is {how}, but the account does not exist yet and " + (
            f"the factory {factory} is not staked" if factory is not None else "the operation has no factory"
        )
        return StorageVerdict(access, None, sender, n, reason)
    entity = phase.entity
    if entity != sender and staked(entity):
        if access.contract == entity:
            return StorageVerdict(
                access, "STO-031", entity, None, f"STO-031: {slot} is the staked entity's own"
            )
        m = associated_with(access.slot, entity, trace.preimages)
        if m is not None:
            return StorageVerdict(
                access, "STO-032", entity, m, f"STO-032: {slot} is associated with {entity}"
            )
        if access.op in _READS and access.contract not in entities:
            return StorageVerdict(
                access, "STO-033", None, None, f"STO-033: {slot} is read by the staked {entity}"
            )
    if entity == sender and staked(sender) and access.op in _READS and access.contract not in entities:
        return StorageVerdict(access, "STO-033", None, None, f"STO-033: {slot} is read by the staked account")
    owner = _associated_address(access.slot, trace.preimages)
    hint = f" (it is keccak256({owner[0]} || x) + {owner[1]})" if owner is not None else ""
    return StorageVerdict(
        access, None, None, None, f"STO-021: {slot} is neither the account's nor associated with it{hint}"
    )


# --------------------------------------------------------------------------------------------------
# Tracing on a node
# --------------------------------------------------------------------------------------------------


TRACE_BYTES = 8 << 30
"""The largest ``debug_traceCall`` answer the checker reads (8 GiB)."""


class Erc7562Checker:
    """Traces ``handleOps`` on a node with ``debug_traceCall`` and checks the validation against ERC-7562.

    ``submitter`` is the funded EOA the call is made from (and the beneficiary); ``min_stake`` is the stake an
    entity needs to count as staked on this chain.
    """

    def __init__(
        self,
        node: JsonRpcClient,
        entry_point: str,
        *,
        submitter: str,
        min_stake: int = 10**18,
        gas: int = 30_000_000,
        timeout: float = 180.0,
    ) -> None:
        self.node = node
        self.entry_point = to_address(entry_point)
        self.submitter = to_address(submitter)
        self.min_stake = min_stake
        self.gas = gas
        self.timeout = timeout

    def stake_of(self, address: str, block: str = "latest") -> StakeInfo:
        """``getDepositInfo(address)`` at the EntryPoint."""
        data = _GET_DEPOSIT_INFO + bytes(12) + bytes.fromhex(to_address(address)[2:])
        raw = to_bytes(
            self.node.request("eth_call", [{"to": self.entry_point, "data": "0x" + data.hex()}, block])
        )
        _deposit, staked, stake, delay, withdraw = abi_decode(
            ["uint256", "bool", "uint112", "uint32", "uint48"], raw
        )
        return StakeInfo(to_address(address), int(stake), int(delay), int(withdraw), bool(staked))

    def has_code(self, address: str, block: str = "latest") -> bool:
        """Whether ``address`` has code at ``block``."""
        return bool(to_bytes(self.node.request("eth_getCode", [to_address(address), block])))

    def trace(
        self, ops: Sequence[UserOperation | PackedUserOperation], block: str = "latest"
    ) -> dict[str, Any]:
        """The raw struct-log trace of ``handleOps(ops, submitter)`` sent by ``submitter``, with the operations'
        EIP-7702 authorizations in its ``authorizationList`` as a bundler's type-4 transaction carries them."""
        packed = [op.pack() if isinstance(op, UserOperation) else op for op in ops]
        data = encode_handle_ops(packed, self.submitter)
        tx: dict[str, Any] = {
            "from": self.submitter,
            "to": self.entry_point,
            "data": "0x" + data.hex(),
            "gas": hex(self.gas),
        }
        authorizations = _authorizations(ops)
        if authorizations:
            tx["authorizationList"] = [auth.to_rpc() for auth in authorizations]
        options = {
            "enableMemory": True,
            "disableStack": False,
            "disableStorage": True,
            "enableReturnData": False,
        }
        # a struct log with memory runs to hundreds of megabytes: past what a client reads by default
        with JsonRpcClient(self.node.url, timeout=self.timeout, max_response_bytes=TRACE_BYTES) as tracer:
            result: dict[str, Any] = tracer.request("debug_traceCall", [tx, block, options])
        return result

    def check(
        self,
        ops: Sequence[UserOperation | PackedUserOperation],
        *,
        stakes: Mapping[str, StakeInfo] | None = None,
        extra_precompiles: Iterable[int] = (),
    ) -> Erc7562Report:
        """Trace ``handleOps(ops)`` at the latest block and check it. ``stakes`` replaces the stakes read from
        the EntryPoint (to ask "what if this factory were not staked?")."""
        block = hex(int(self.node.request("eth_blockNumber"), 16))
        parsed = parse_validation_trace(self.trace(ops, block), self.entry_point, ops)
        if stakes is None:
            stakes = {address: self.stake_of(address, block) for address in {p.entity for p in parsed.phases}}
        senders = {phase.sender for phase in parsed.phases} | {to_address(op.sender) for op in ops}
        delegated = {to_address(op.sender) for op in ops if is_eip7702_init_code(_packed(op).init_code)}
        existed = {sender: sender in delegated or self.has_code(sender, block) for sender in senders}
        return check_trace(
            parsed,
            stakes=stakes,
            existed=existed,
            has_code=lambda address: address in delegated or self.has_code(address, block),
            min_stake=self.min_stake,
            extra_precompiles=extra_precompiles,
        )


def _packed(op: UserOperation | PackedUserOperation) -> PackedUserOperation:
    return op.pack() if isinstance(op, UserOperation) else op


def _authorizations(ops: Sequence[UserOperation | PackedUserOperation]) -> list[Authorization]:
    return [op.eip7702_auth for op in ops if isinstance(op, UserOperation) and op.eip7702_auth is not None]
