"""ERC-7579 ``execute(bytes32 mode, bytes executionCalldata)`` encoding, both ways.

Mode (32 bytes): byte 0 call type (0x00 single, 0x01 batch, 0xff delegatecall), byte 1 exec type
(0x00 revert on failure, 0x01 try), then 4 unused bytes, a 4-byte mode selector and a 22-byte payload.

* single: ``executionCalldata = target (20 bytes) || value (32 bytes) || callData``
* batch:  ``executionCalldata = abi.encode(Execution[])``, ``Execution = (address target, uint256 value, bytes callData)``

Decoding is strict: the session-key module accepts only the canonical ABI encoding (what :func:`encode_execute`
produces), so that every decoder, on every account, reads the same calls it checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadInputError, a_type
from .hexutil import to_address, to_bytes, to_int, word
from .selectors import EXECUTE as EXECUTE_SELECTOR

__all__ = [
    "CALLTYPE_BATCH",
    "CALLTYPE_DELEGATECALL",
    "CALLTYPE_SINGLE",
    "EXECUTE_SELECTOR",
    "MODE_BATCH",
    "MODE_SINGLE",
    "Call",
    "DecodedExecute",
    "ExecuteDecodeError",
    "decode_execute",
    "encode_execute",
    "encode_mode",
    "refuse_bytes_after_batch",
    "refuse_bytes_after_execution",
    "refuse_dirty_padding",
]

_UINT256_MAX = 2**256 - 1
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
CALLTYPE_SINGLE = 0x00
CALLTYPE_BATCH = 0x01
CALLTYPE_DELEGATECALL = 0xFF
EXECTYPE_DEFAULT = 0x00
EXECTYPE_TRY = 0x01


def encode_mode(call_type: int, exec_type: int = EXECTYPE_DEFAULT) -> bytes:
    """A 32-byte ERC-7579 mode with the given call and exec types and zero selector and payload."""
    return bytes([call_type, exec_type]) + bytes(30)


MODE_SINGLE = encode_mode(CALLTYPE_SINGLE)
MODE_BATCH = encode_mode(CALLTYPE_BATCH)


@dataclass(frozen=True, slots=True)
class Call:
    """One call the account makes: ``target.call{value: value}(data)``."""

    target: str
    value: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        # a call built directly (not through Call.of) with a value or data the chain cannot carry would pass the
        # local check (a negative value is under every limit) and fail later with a raw error: refuse it here
        target, value, data = self.target, self.value, self.data
        if not (
            type(target) is str
            and len(target) == 42
            and target[:2] in ("0x", "0X")
            and _HEX_DIGITS.issuperset(target[2:])
        ):
            object.__setattr__(self, "target", to_address(target, name="call target"))
        if type(value) is not int or not 0 <= value <= _UINT256_MAX:
            value = to_int(value, name="call value")
            if value > _UINT256_MAX:
                raise BadInputError(f"call value {value} does not fit in 256 bits")
            object.__setattr__(self, "value", value)
        if type(data) is not bytes:
            object.__setattr__(self, "data", to_bytes(data, name="call data"))

    @classmethod
    def of(cls, target: object, value: object = 0, data: object = b"") -> Call:
        """Validate and normalise a call (address checksum, non-negative value, bytes data)."""
        return cls(
            to_address(target, name="target"), to_int(value, name="value"), to_bytes(data, name="data")
        )

    def __repr__(self) -> str:
        return f"Call(target={self.target!r}, value={self.value}, data='0x{self.data.hex()}')"

    @property
    def selector(self) -> bytes:
        """The first 4 bytes of ``data`` (``b"\\x00" * 4`` for a call with no data)."""
        return self.data[:4] if self.data else bytes(4)


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 32)


def _encode_batch(calls: list[Call]) -> bytes:
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * len(calls)
    for call in calls:
        heads.append(word(offset))
        element = (
            bytes(12)
            + bytes.fromhex(call.target[2:])
            + word(call.value)
            + word(0x60)
            + word(len(call.data))
            + _padded(call.data)
        )
        tails.append(element)
        offset += len(element)
    return word(0x20) + word(len(calls)) + b"".join(heads) + b"".join(tails)


def encode_execute(
    calls: list[Call] | Call, *, batch: bool | None = None, exec_type: int = EXECTYPE_DEFAULT
) -> bytes:
    """Calldata for ``account.execute(mode, executionCalldata)``.

    One call is sent in single mode unless ``batch=True``; several calls always go in batch mode.
    """
    if isinstance(calls, Call):
        call_list = [calls]
    elif isinstance(calls, (str, bytes, bytearray)) or not hasattr(calls, "__iter__"):
        raise BadInputError(f"encode_execute takes a Call or a list of them, got {type(calls).__name__}")
    else:
        call_list = list(calls)
    if not call_list:
        raise BadInputError(
            "an operation makes at least one call, got none: give a Call (function_call(...)) or a list of one or more"
        )
    for index, call in enumerate(call_list):
        if not isinstance(call, Call):
            raise BadInputError(
                f"call {index} is {a_type(call)}, not a keyscope.execution.Call: build it with Call.of "
                "or function_call"
            )
    use_batch = len(call_list) > 1 if batch is None else batch
    if not use_batch and len(call_list) > 1:
        raise BadInputError(f"{len(call_list)} calls cannot be sent in single mode: use batch=True")
    if use_batch:
        mode = encode_mode(CALLTYPE_BATCH, exec_type)
        execution = _encode_batch(call_list)
    else:
        mode = encode_mode(CALLTYPE_SINGLE, exec_type)
        only = call_list[0]
        execution = bytes.fromhex(only.target[2:]) + word(only.value) + only.data
    return EXECUTE_SELECTOR + mode + word(0x40) + word(len(execution)) + _padded(execution)


class ExecuteDecodeError(BadInputError):
    """callData that is not a canonical ERC-7579 ``execute`` (what the session module refuses)."""


@dataclass(frozen=True, slots=True)
class DecodedExecute:
    """An ``execute`` call taken apart: the mode and the calls it makes."""

    mode: bytes
    calls: tuple[Call, ...]

    @property
    def call_type(self) -> int:
        return self.mode[0]

    @property
    def exec_type(self) -> int:
        return self.mode[1]


def _read_word(data: bytes, offset: int, what: str) -> int:
    if offset + 32 > len(data):
        raise ExecuteDecodeError(f"{what}: the data ends at byte {len(data)}, before the word at {offset}")
    return int.from_bytes(data[offset : offset + 32], "big")


def refuse_bytes_after_execution(after: bytes) -> None:
    """Refuse what follows executionCalldata in execute callData unless it is up to 31 zero bytes (its padding, or
    part of it), as the session module does: an account reading a single call's data to its callData's end would
    pass anything else to the target."""
    if len(after) > 31 or any(after):
        raise ExecuteDecodeError(
            f"{len(after)} bytes follow executionCalldata (0x{after[:32].hex()}{'…' if len(after) > 32 else ''}), "
            "not only the zero bytes of its padding: an account reading a single call's data to the callData's end "
            "would pass them to the target; encode the calls with keyscope.execution.encode_execute and append "
            "nothing"
        )


def _shown(data: bytes) -> str:
    return f"0x{data[:32].hex()}{'…' if len(data) > 32 else ''}"


def refuse_dirty_padding(batch: bytes, index: int, data_end: int) -> None:
    """Refuse the padding after call ``index``'s data, which ends at byte ``data_end`` of the batch, unless it is
    all zero bytes, as the session module does."""
    padding = batch[data_end : data_end + (-data_end % 32)]
    if any(padding):
        raise ExecuteDecodeError(
            f"the padding after call {index}'s data holds nonzero bytes ({_shown(padding)}): a batch's padding is "
            "zero bytes; encode the calls with keyscope.execution.encode_execute"
        )


def refuse_bytes_after_batch(batch: bytes, end: int) -> None:
    """Refuse a batch that does not end at byte ``end``, where its last call's padded data ends, as the session
    module does: a canonical batch leaves no byte an account could read that the module did not judge."""
    if len(batch) < end:
        raise ExecuteDecodeError(
            f"the batch ends at byte {len(batch)}, inside the padding of its last call's data (up to byte {end}); "
            "encode the calls with keyscope.execution.encode_execute"
        )
    if len(batch) > end:
        raise ExecuteDecodeError(
            f"{len(batch) - end} bytes follow the batch's last call ({_shown(batch[end:])}): an account could read "
            "them as calls the module never judged; encode the calls with keyscope.execution.encode_execute and "
            "append nothing"
        )


def decode_execute(call_data: bytes) -> DecodedExecute:
    """Take apart ``execute`` callData, accepting exactly what the session module accepts.

    Raises :class:`ExecuteDecodeError` for another selector, a mode other than single/batch with
    default/try execution and zero selector and payload, any non-canonical encoding, or bytes after
    executionCalldata other than up to 31 zero bytes (its padding).
    """
    if call_data[:4] != EXECUTE_SELECTOR:
        raise ExecuteDecodeError(
            f"callData selector 0x{call_data[:4].hex()} is not execute(bytes32,bytes) (0x{EXECUTE_SELECTOR.hex()})"
        )
    if len(call_data) < 100:
        raise ExecuteDecodeError(
            f"execute callData of {len(call_data)} bytes is shorter than its 100-byte head"
        )
    mode = call_data[4:36]
    if (
        mode[0] not in (CALLTYPE_SINGLE, CALLTYPE_BATCH)
        or mode[1] not in (EXECTYPE_DEFAULT, EXECTYPE_TRY)
        or any(mode[2:])
    ):
        raise ExecuteDecodeError(
            f"execution mode 0x{mode.hex()} is not allowed: sessions may use single or batch calls only"
        )
    if _read_word(call_data, 36, "executionCalldata offset") != 0x40:
        raise ExecuteDecodeError("the executionCalldata offset is not the canonical 0x40")
    length = _read_word(call_data, 68, "executionCalldata length")
    if 100 + length > len(call_data):
        raise ExecuteDecodeError(f"executionCalldata claims {length} bytes but the callData is shorter")
    refuse_bytes_after_execution(call_data[100 + length :])
    execution = call_data[100 : 100 + length]
    if mode[0] == CALLTYPE_SINGLE:
        if len(execution) < 52:
            raise ExecuteDecodeError(f"a single execution needs at least 52 bytes, got {len(execution)}")
        call = Call(to_address(execution[:20]), int.from_bytes(execution[20:52], "big"), execution[52:])
        return DecodedExecute(mode, (call,))
    return DecodedExecute(mode, _decode_batch(execution))


def _decode_batch(data: bytes) -> tuple[Call, ...]:
    if _read_word(data, 0, "batch array offset") != 0x20:
        raise ExecuteDecodeError("the batch array offset is not the canonical 0x20")
    count = _read_word(data, 32, "batch length")
    if count == 0:
        raise ExecuteDecodeError("the batch is empty")
    if 64 + 32 * count > len(data):
        raise ExecuteDecodeError(f"the batch claims {count} calls but is too short for their offsets")
    base = 64
    expected = 32 * count
    calls: list[Call] = []
    for index in range(count):
        offset = _read_word(data, base + 32 * index, f"offset of call {index}")
        if offset != expected:
            raise ExecuteDecodeError(
                f"call {index} is not canonically encoded (offset {offset}, expected {expected})"
            )
        start = base + offset
        target_word = _read_word(data, start, f"target of call {index}")
        if target_word >> 160:
            raise ExecuteDecodeError(f"the target of call {index} has dirty upper bits")
        value = _read_word(data, start + 32, f"value of call {index}")
        if _read_word(data, start + 64, f"data offset of call {index}") != 0x60:
            raise ExecuteDecodeError(f"the data offset of call {index} is not the canonical 0x60")
        size = _read_word(data, start + 96, f"data length of call {index}")
        if start + 128 + size > len(data):
            raise ExecuteDecodeError(f"call {index} claims {size} bytes of data past the end of the batch")
        refuse_dirty_padding(data, index, start + 128 + size)
        calls.append(
            Call(to_address(target_word.to_bytes(20, "big")), value, data[start + 128 : start + 128 + size])
        )
        expected += 128 + size + (-size % 32)
    refuse_bytes_after_batch(data, base + expected)
    return tuple(calls)
