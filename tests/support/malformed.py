"""Malformed respellings of well-formed bytes (a signature, ENABLE data) for the differential proofs: the bytes cut at a
byte, extended, one byte changed, or one of their length, offset or count words changed.

Each respelling is picked by a ``lot`` (a hash of the example's own bytes), never drawn: a generated test that adds
them draws exactly what it drew before, so its derandomized examples, and the tallies they reach, stay the same.
"""

from __future__ import annotations

from collections.abc import Sequence

KINDS = ("cut", "extended", "byte changed", "word changed")
"""What a respelling does to the bytes; "word changed" is a length, offset or count field of any width."""


def _field_values(value: int, size: int, width: int) -> list[int]:
    """What a length, offset or count field ``value`` of ``width`` bytes, in data of ``size`` bytes, is changed to:
    one more or less, a word more or less, the data's size and just past it, the largest value, its top bit alone,
    2**64 (past what a reader's 64-bit length takes) and zero; each taken modulo the field's range, none ``value``."""
    top = 2 ** (8 * width)
    values = (value + 1, value - 1, value + 32, value - 32, size, size + 1, top - 1, top // 2, 2**64, 0)
    return sorted({v % top for v in values} - {value})


def malform(data: bytes, lot: bytes, fields: Sequence[tuple[int, int]] = ()) -> tuple[bytes, str]:
    """``data`` malformed as ``lot`` picks (at least 8 bytes of it), and what was done: cut to fewer bytes (none at
    all now and then), extended by 1 to 64 bytes (zeros or not), one byte changed, or, when ``fields`` names the
    length, offset or count fields of ``data`` (each its byte offset and width), one of them changed (see
    ``_field_values``). The result always differs from ``data``."""
    if len(lot) < 8:
        raise ValueError("a lot of at least 8 bytes")
    kind = KINDS[lot[0] % (4 if fields else 3)]
    pick = int.from_bytes(lot[1:5], "big")
    if kind == "cut" and data:
        at = 0 if lot[5] % 16 == 0 else pick % len(data)
        return data[:at], f"cut to {at} of {len(data)} bytes"
    if kind == "word changed":
        offset, width = fields[pick % len(fields)]
        value = int.from_bytes(data[offset : offset + width], "big")
        choices = _field_values(value, len(data), width)
        new = choices[lot[5] % len(choices)]
        changed = data[:offset] + new.to_bytes(width, "big") + data[offset + width :]
        return changed, f"{width}-byte field at byte {offset} changed from {value} to {new}"
    if kind == "byte changed" and data:
        at = pick % len(data)
        flip = lot[6] or 0x80
        return data[:at] + bytes((data[at] ^ flip,)) + data[at + 1 :], f"byte {at} xor 0x{flip:02x}"
    extra = 1 + lot[5] % 64
    tail = bytes(extra) if lot[6] % 2 == 0 else bytes((lot[7] | 1,)) * extra
    return data + tail, f"extended by {extra} bytes (0x{tail[:1].hex()}...)"
