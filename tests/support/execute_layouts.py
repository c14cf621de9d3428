"""``execute(bytes32 mode, bytes executionCalldata)`` callData laid out every way an ERC-7579 account could read
otherwise than the session module: mode bytes (call type, exec type, the unused bytes, the mode selector, the
payload), the outer ABI offset and length of executionCalldata, bytes after it, a single execution shorter than
its 52-byte head or longer than its call, and a batch's array offset, count, element offsets, data offsets, data
lengths, target words and padding.

:func:`two_view_layouts` builds callData whose canonical reading (the module's) is an allowed call while a
decoder that follows the encoding's offsets, or gives the mode another meaning, reaches a forbidden one;
:func:`other_entry_points` wraps a forbidden call in the account entry points that are not ``execute``;
:func:`execute_layouts` is a hypothesis strategy drawing callData from calls, modes and mutations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from hypothesis import strategies as st

from keyscope.execution import EXECUTE_SELECTOR, Call
from keyscope.hexutil import keccak

__all__ = [
    "Layout",
    "batch_execution",
    "element",
    "execute_call_data",
    "execute_layouts",
    "mode",
    "other_entry_points",
    "single_execution",
    "two_view_layouts",
]

U256 = 2**256 - 1
ERC7821_BATCH = bytes.fromhex("78210001")
"""ERC-7821's mode selector for a batch with opData (executionData = abi.encode(calls, opData))."""
ERC7821_BATCH_OF_BATCHES = bytes.fromhex("78210002")


@dataclass(frozen=True)
class Layout:
    """callData and what it tries: ``kind`` names the family, ``label`` the case. ``reaches`` (chosen layouts):
    every ERC-7579 account here, run with these bytes, makes a call the canonical reading does not (the forbidden
    call, a delegatecall): what the module's refusal stops."""

    kind: str
    label: str
    call_data: bytes
    reaches: bool = False


def words(*values: int) -> bytes:
    return b"".join((v % 2**256).to_bytes(32, "big") for v in values)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 32)


def mode(
    call_type: int,
    exec_type: int = 0,
    unused: bytes = bytes(4),
    selector: bytes = bytes(4),
    payload: bytes = bytes(22),
) -> bytes:
    """A 32-byte ERC-7579 mode: call type, exec type, 4 unused bytes, mode selector, 22-byte payload."""
    return bytes([call_type, exec_type]) + unused + selector + payload


def single_execution(call: Call) -> bytes:
    """target (20) ‖ value (32) ‖ callData."""
    return bytes.fromhex(call.target[2:]) + words(call.value) + call.data


def element(call: Call) -> bytes:
    """One canonical ``Execution`` tuple: target, value, data offset 0x60, data length, padded data."""
    return words(int(call.target, 16), call.value, 0x60, len(call.data)) + padded(call.data)


def batch_execution(calls: Sequence[Call]) -> bytes:
    """``abi.encode(Execution[])`` as a canonical encoder lays it out."""
    offsets, position = [], 32 * len(calls)
    for call in calls:
        offsets.append(position)
        position += len(element(call))
    return words(0x20, len(calls), *offsets) + b"".join(element(call) for call in calls)


def execute_call_data(
    mode_word: bytes,
    execution: bytes,
    *,
    offset: int = 0x40,
    length: int | None = None,
    before: bytes = b"",
    tail: bytes = b"",
) -> bytes:
    """``execute(mode, execution)``: the bytes argument's offset word, then ``before`` (bytes between the head
    and the length word: a non-canonical offset points past them), its length word (default: the execution's),
    the padded execution, then ``tail``."""
    size = len(execution) if length is None else length
    return EXECUTE_SELECTOR + mode_word + words(offset) + before + words(size) + padded(execution) + tail


def two_view_layouts(allowed: Call, forbidden: Call) -> list[Layout]:
    """callData whose canonical reading is ``allowed`` (or which the module refuses outright), while an account
    that follows the offsets the encoding names, or reads the mode otherwise, reaches ``forbidden`` (a call on
    the same target as ``allowed`` for the layouts that move only data)."""
    single, batch = mode(0), mode(1)
    allowed_single, forbidden_single = single_execution(allowed), single_execution(forbidden)
    allowed_batch, forbidden_batch = batch_execution([allowed]), batch_execution([forbidden])
    cases: list[Layout] = []

    def add(label: str, call_data: bytes, reaches: bool = True, kind: str = "two views") -> None:
        cases.append(Layout(kind, label, call_data, reaches))

    # execute's bytes offset: the canonical place (0x40) holds the allowed execution, the offset names a later one
    for name, first, second, word in (
        ("single", allowed_single, forbidden_single, single),
        ("batch", allowed_batch, forbidden_batch, batch),
    ):
        canonical_area = words(len(first)) + padded(first)
        add(
            f"execute's bytes offset past a canonical copy ({name})",
            EXECUTE_SELECTOR
            + word
            + words(0x40 + len(canonical_area))
            + canonical_area
            + words(len(second))
            + padded(second),
        )
    # the batch's array offset: a canonical array of the allowed call, the offset names a later array
    add(
        "array offset past a canonical array",
        execute_call_data(
            batch, words(0x20 + len(allowed_batch) - 32) + allowed_batch[32:] + forbidden_batch[32:]
        ),
    )
    # an element offset naming an element after the canonical one
    add(
        "element offset past the canonical element",
        execute_call_data(
            batch, words(0x20, 1, 32 + len(element(allowed))) + element(allowed) + element(forbidden)
        ),
    )
    # an element's data offset naming data after the canonical data (the allowed call's target and value)
    moved = words(int(allowed.target, 16), allowed.value, 0x80 + len(padded(allowed.data)), len(allowed.data))
    moved += padded(allowed.data) + words(len(forbidden.data)) + padded(forbidden.data)
    add("data offset past the canonical data", execute_call_data(batch, words(0x20, 1, 32) + moved))
    # two elements, the second's offset aliased onto the first: the account runs the first twice
    two = bytearray(batch_execution([allowed, forbidden]))
    two[96:128] = two[64:96]
    add("element offsets aliased", execute_call_data(batch, bytes(two)), reaches=False)
    # the target word with dirty upper bits
    dirty = bytearray(allowed_batch)
    dirty[96] = 0xFF
    add("target word with dirty upper bits", execute_call_data(batch, bytes(dirty)), reaches=False)

    # delegatecall: the account runs the target's code as itself
    add(
        "delegatecall mode (0xff), target ‖ data",
        execute_call_data(mode(0xFF), forbidden_single[:20] + forbidden.data),
    )
    for exec_type in (0, 1):
        add(
            f"delegatecall mode (0xff), exec type {exec_type}, target ‖ value ‖ data",
            execute_call_data(mode(0xFF, exec_type), forbidden_single),
        )
    add("static call mode (0xfe)", execute_call_data(mode(0xFE), forbidden_single), reaches=False)

    # ERC-7821's batch with opData: executionData = abi.encode(Execution[], bytes opData); an account that ignores
    # the mode selector decodes the array its first word names
    opdata = abi_encode(
        ["(address,uint256,bytes)[]", "bytes"],
        [[(forbidden.target, forbidden.value, forbidden.data)], b"\x01" * 65],
    )
    for selector in (ERC7821_BATCH, ERC7821_BATCH_OF_BATCHES):
        add(
            f"ERC-7821 mode selector 0x{selector.hex()} with opData",
            execute_call_data(mode(1, 0, selector=selector), opdata),
        )

    # mode bytes the module requires zero and the accounts ignore: they run the call
    for label, word in (
        ("unused mode bytes set (single)", mode(0, unused=b"\xde\xad\xbe\xef")),
        ("mode selector set (single)", mode(0, selector=b"\x12\x34\x56\x78")),
        ("mode payload set (single)", mode(0, payload=b"\x01" * 22)),
        ("unused mode bytes set (batch, try)", mode(1, 1, unused=b"\x00\x00\x00\x01")),
        ("mode selector set (batch)", mode(1, selector=ERC7821_BATCH)),
        ("mode payload set (batch)", mode(1, payload=bytes(21) + b"\x01")),
    ):
        add(
            label,
            execute_call_data(word, forbidden_single if word[0] == 0 else forbidden_batch),
            kind="mode bytes",
        )
    for call_type in (0x02, 0x7F, 0x80, 0xFD):
        add(
            f"unknown call type 0x{call_type:02x}",
            execute_call_data(mode(call_type), forbidden_single),
            reaches=False,
            kind="mode bytes",
        )
    for exec_type in (0x02, 0xFF):
        add(
            f"unknown exec type 0x{exec_type:02x}",
            execute_call_data(mode(0, exec_type), forbidden_single),
            reaches=False,
            kind="mode bytes",
        )
    return cases


def other_entry_points(forbidden: Call) -> list[Layout]:
    """``forbidden`` wrapped in the account entry points that are not ``execute``: ERC-7579's
    ``executeFromExecutor``, ERC-4337's ``executeUserOp``, earlier accounts' ``execute``/``executeBatch``
    (Kernel v2's, SimpleAccount's), Safe's ``execTransactionFromModule``, ``installModule``, and a selector no
    account has (a fallback handler's)."""
    single = single_execution(forbidden)
    packed_op = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"

    def sig(text: str) -> bytes:
        return keccak(text.encode())[:4]

    inner = execute_call_data(mode(0), single)
    return [
        Layout(
            "entry point",
            "executeFromExecutor",
            sig("executeFromExecutor(bytes32,bytes)") + abi_encode(["bytes32", "bytes"], [mode(0), single]),
        ),
        Layout(
            "entry point",
            "executeUserOp wrapping execute",
            sig(f"executeUserOp({packed_op},bytes32)") + inner,
        ),
        Layout(
            "entry point",
            "Kernel v2 execute(address,uint256,bytes,uint8)",
            sig("execute(address,uint256,bytes,uint8)")
            + abi_encode(
                ["address", "uint256", "bytes", "uint8"],
                [forbidden.target, forbidden.value, forbidden.data, 0],
            ),
        ),
        Layout(
            "entry point",
            "SimpleAccount execute(address,uint256,bytes)",
            sig("execute(address,uint256,bytes)")
            + abi_encode(
                ["address", "uint256", "bytes"], [forbidden.target, forbidden.value, forbidden.data]
            ),
        ),
        Layout(
            "entry point",
            "executeBatch((address,uint256,bytes)[])",
            sig("executeBatch((address,uint256,bytes)[])")
            + abi_encode(
                ["(address,uint256,bytes)[]"], [[(forbidden.target, forbidden.value, forbidden.data)]]
            ),
        ),
        Layout(
            "entry point",
            "Safe execTransactionFromModule",
            sig("execTransactionFromModule(address,uint256,bytes,uint8)")
            + abi_encode(
                ["address", "uint256", "bytes", "uint8"],
                [forbidden.target, forbidden.value, forbidden.data, 0],
            ),
        ),
        Layout(
            "entry point",
            "installModule",
            sig("installModule(uint256,address,bytes)")
            + abi_encode(["uint256", "address", "bytes"], [1, forbidden.target, b""]),
        ),
        Layout("entry point", "a fallback selector", b"\x13\x37\xc0\xde" + inner[4:]),
    ]


# -- generated layouts ---------------------------------------------------------------------------------------


def _word_at(data: bytes | bytearray, position: int) -> int:
    return int.from_bytes(data[position : position + 32], "big")


@st.composite
def _mode(draw: st.DrawFn, call_type: int, exec_type: int) -> tuple[bytes, str]:
    """Mostly the mode the execution was encoded for; else one of its parts changed."""
    part = draw(st.sampled_from(["same"] * 10 + ["call type", "exec type", "unused", "selector", "payload"]))
    if part == "same":
        return mode(call_type, exec_type), "mode as encoded"
    if part == "call type":
        value = draw(st.sampled_from([0x00, 0x01, 0xFE, 0xFF, 0x02]) | st.integers(0, 255))
        return mode(value, exec_type), f"call type 0x{value:02x}"
    if part == "exec type":
        value = draw(st.sampled_from([0x00, 0x01, 0x02, 0xFF]) | st.integers(0, 255))
        return mode(call_type, value), f"exec type 0x{value:02x}"
    if part == "unused":
        return mode(call_type, exec_type, unused=draw(st.binary(min_size=4, max_size=4))), "unused bytes"
    if part == "selector":
        selector = draw(
            st.sampled_from([ERC7821_BATCH, ERC7821_BATCH_OF_BATCHES]) | st.binary(min_size=4, max_size=4)
        )
        return mode(call_type, exec_type, selector=selector), f"mode selector 0x{selector.hex()}"
    payload = draw(st.binary(min_size=22, max_size=22))
    return mode(call_type, exec_type, payload=payload), "mode payload"


@st.composite
def _mutation(draw: st.DrawFn, data: bytearray, batch: bool, count: int) -> str:
    """Change ``data`` (callData of ``execute``) in one place; return what was changed. Some changes keep the
    encoding canonical up to its last judged call (bytes after it inside executionCalldata, an element's padding),
    which the module accepts; bytes after executionCalldata other than its zero padding it refuses (attack 182)."""

    def tweak(value: int) -> int:
        return (
            draw(st.sampled_from([value - 32, value + 32, value - 1, value + 1, 0, U256, value + 2**255]))
            % 2**256
        )

    def put(position: int, value: int) -> None:
        if position + 32 <= len(data):
            data[position : position + 32] = (value % 2**256).to_bytes(32, "big")

    # the changes that keep the encoding canonical up to its last judged call come twice as often
    kinds = [
        "tail",
        "tail",
        "padding after",
        "padding after",
        "outer offset",
        "outer length",
        "truncate",
        "flip",
    ]
    if batch:
        kinds += ["array offset", "count", "element offset", "dirty target", "data offset", "size", "size"]
        kinds += ["padding", "padding", "extra", "extra"]
    else:
        kinds += ["short single", "longer single", "longer single"]
    kind = draw(st.sampled_from(kinds))
    if len(data) < 100:  # an earlier truncation: only more bytes
        data += draw(st.binary(min_size=1, max_size=96))
        return "tail"
    length = _word_at(data, 68)
    if kind == "tail":
        data += draw(st.binary(min_size=1, max_size=96))
    elif kind == "outer offset":
        put(36, tweak(0x40))
    elif kind == "outer length":
        put(68, draw(st.one_of(st.just(tweak(length)), st.integers(0, len(data)))))
    elif kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif kind == "flip":
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "padding after":  # the bytes between the execution's end and the next word
        end = 100 + length
        if end % 32 != 4 and end < len(data):
            data[draw(st.integers(end, min(len(data), end + (-(end - 4) % 32)) - 1))] = draw(
                st.integers(1, 255)
            )
    elif kind == "short single":  # executionCalldata shorter than target ‖ value
        put(68, draw(st.integers(0, 51)))
    elif kind == "longer single":  # the length word takes bytes of the padding or tail into the call's data
        data += draw(st.binary(min_size=0, max_size=40))
        put(68, max(0, min(len(data) - 100, length + draw(st.integers(1, 40)))))
    else:
        index = draw(st.integers(0, count - 1))
        start = 164 + _word_at(data, 164 + 32 * index)  # the element's tuple, where its offset says
        if kind == "array offset":
            put(100, tweak(0x20))
        elif kind == "count":
            put(132, draw(st.sampled_from([0, count - 1, count + 1, U256, 2**32])))
        elif kind == "element offset":
            other = draw(st.integers(0, count - 1))
            put(
                164 + 32 * index,
                draw(
                    st.sampled_from(
                        [tweak(_word_at(data, 164 + 32 * index)), _word_at(data, 164 + 32 * other)]
                    )
                ),
            )
        elif kind == "dirty target":
            if start + 12 <= len(data):
                data[start + draw(st.integers(0, 11))] = draw(st.integers(1, 255))
        elif kind == "data offset":
            put(start + 64, tweak(0x60))
        elif kind == "size":
            put(start + 96, tweak(_word_at(data, start + 96)))
        elif kind == "padding":
            size = _word_at(data, start + 96)
            if size % 32 and start + 128 + size < len(data):
                data[start + 128 + size + draw(st.integers(0, 31 - size % 32))] = draw(st.integers(1, 255))
        elif kind == "extra":  # words inside executionCalldata after the last element, the length word grown
            extra = draw(st.binary(min_size=1, max_size=96))
            end = 100 + length
            data[end:end] = extra
            put(68, length + len(extra))
    return kind


@st.composite
def execute_layouts(draw: st.DrawFn, calls: st.SearchStrategy[Call]) -> Layout:
    """callData of ``execute``: 1 to 3 calls drawn from ``calls``, single (one call) or batch, default or try
    execution, encoded canonically, then its mode changed (sometimes) and up to three mutations applied."""
    batch = draw(st.booleans())
    drawn = draw(st.lists(calls, min_size=1, max_size=3 if batch else 1))
    call_type, exec_type = (1 if batch else 0), draw(st.sampled_from([0, 1]))
    mode_word, mode_label = draw(_mode(call_type, exec_type))
    execution = batch_execution(drawn) if batch else single_execution(drawn[0])
    data = bytearray(execute_call_data(mode_word, execution))
    changes = [
        draw(_mutation(data, batch, len(drawn))) for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3])))
    ]
    label = ", ".join([("batch" if batch else "single") + f" exec type {exec_type}", mode_label, *changes])
    return Layout("generated", label, bytes(data))
