"""The ABI type a rule reads its word as: the one byte a grant signs per rule (:class:`ArgType`), and the code of an
elementary type's name (:func:`arg_type_of`)."""

from __future__ import annotations

import re

__all__ = ["ArgType", "arg_type_of"]


class ArgType:
    """The ABI type of a rule's argument, in the one byte the grant signs (``Rule.arg_type``).

    Bits 5-7 are the kind, bits 0-4 the number of bytes ``p`` the type leaves out of its 32-byte word:

    ========  ==========================  ===========  ===============================================
    kind      types                       code         canonical word (what ABI coder v2 accepts)
    ========  ==========================  ===========  ===============================================
    0 uint    uint256 .. uint8, address   ``0x00 + p`` the high ``p`` bytes zero (address: ``p`` = 12)
    1 int     int256 .. int8              ``0x20 + p`` sign-extended from bit ``255 - 8p``
    2 bytes   bytes32 .. bytes1           ``0x40 + p`` the low ``p`` bytes zero
    3 bool    bool                        ``0x60``     0 or 1
    ========  ==========================  ===========  ===============================================

    The module refuses a call whose ruled word is not canonical for the rule's type, whatever the condition
    (``NonCanonicalArgument``; under EQUAL and ONE_OF, which only pass a canonical reference value, a dirty
    word is a ``RuleViolated``), and compares intN words as signed. ``WORD`` (uint256, the default) accepts
    every word.
    """

    WORD = 0x00
    UINT256 = 0x00
    ADDRESS = 0x0C
    UINT8 = 0x1F
    INT256 = 0x20
    BYTES32 = 0x40
    BOOL = 0x60

    @staticmethod
    def uint_of(bits: int) -> int:
        """The code of ``uint<bits>`` (8 to 256, a multiple of 8)."""
        return _width(bits) // 8

    @staticmethod
    def int_of(bits: int) -> int:
        """The code of ``int<bits>`` (8 to 256, a multiple of 8)."""
        return 0x20 | _width(bits) // 8

    @staticmethod
    def bytes_of(size: int) -> int:
        """The code of ``bytes<size>`` (1 to 32)."""
        if not 1 <= size <= 32:
            raise ValueError(f"bytes{size} is not an ABI type: bytesN takes N from 1 to 32")
        return 0x40 | (32 - size)

    @staticmethod
    def is_valid(code: int) -> bool:
        """Whether ``code`` names a type (kinds 0-2 with any padding, or exactly BOOL)."""
        return 0 <= code <= 0xFF and (code >> 5 < 3 or code == ArgType.BOOL)

    @staticmethod
    def is_signed(code: int) -> bool:
        """Whether words of this type compare as int256 (intN)."""
        return code >> 5 == 1

    @staticmethod
    def restricts(code: int) -> bool:
        """Whether some words are not canonical for this type (every type but the 256-bit ones)."""
        return code & 0x1F != 0 or code == ArgType.BOOL

    @staticmethod
    def is_canonical(code: int, word: int) -> bool:
        """Whether ``word`` (as uint256) is the canonical ABI encoding of a value of type ``code``."""
        kind, padding = code >> 5, code & 0x1F
        if kind == 0:
            return word >> (256 - 8 * padding) == 0
        if kind == 2:
            return word % (1 << (8 * padding)) == 0
        if kind == 3:
            return word >> 1 == 0
        bits = 256 - 8 * padding
        return word < 1 << (bits - 1) or word >= (1 << 256) - (1 << (bits - 1))

    @staticmethod
    def reads_alike(code: int, other: int) -> bool:
        """Whether a word means the same value read as type ``code`` and as type ``other``: both unsigned numbers
        (uintN, an address, a bool), both signed (intN), or both bytes left-aligned (bytesN). Where a rule's type and
        its argument's do not read alike, the words the rule lets through are not what its values, read as the rule's
        type, say of the argument (``0x7f`` as a ``bytes1`` lets a ``uint256`` amount be ``0x7f * 2**248``)."""

        def reading(c: int) -> int:
            kind = c >> 5
            return 0 if kind == 3 else kind

        return reading(code) == reading(other)

    @staticmethod
    def within(code: int, other: int) -> bool:
        """Whether every word canonical for type ``code`` is canonical for type ``other``: a rule of type ``code``
        on an argument of type ``other`` then lets through no word the argument's type refuses, which a target
        built with ABI coder v1 or reading calldata in assembly would clean into another value. Narrower is within
        (a ``uint128`` rule on a ``uint256`` amount); wider is not (a ``uint256`` rule on a ``bool`` passes the word
        2, read as ``true``; an ``int256`` rule on an ``int8`` passes 0x80, read as -128)."""
        kind, other_kind = code >> 5, other >> 5
        if other_kind == 3:
            return code == ArgType.BOOL
        if kind == 3:
            return other_kind == 0
        return kind == other_kind and code & 0x1F >= other & 0x1F

    @staticmethod
    def name(code: int) -> str:
        """``uint8``, ``int64``, ``bytes4``, ``bool`` (``address`` reads as ``uint160``)."""
        kind, padding = code >> 5, code & 0x1F
        if kind == 0:
            return f"uint{256 - 8 * padding}"
        if kind == 1:
            return f"int{256 - 8 * padding}"
        if kind == 2:
            return f"bytes{32 - padding}"
        return "bool" if code == ArgType.BOOL else f"unknown type 0x{code:02x}"


def _width(bits: int) -> int:
    """Bits of the word a ``bits``-bit integer type leaves out."""
    if not (8 <= bits <= 256 and bits % 8 == 0):
        raise ValueError(f"{bits} is not an ABI integer width: use 8 to 256, a multiple of 8")
    return 256 - bits


_SIZED = re.compile(r"(u?int|bytes)([0-9]+)")


def arg_type_of(abi_type: str) -> int:
    """The :class:`ArgType` code of an elementary static ABI type name: ``address``, ``bool``, ``uintN``,
    ``intN``, ``bytesN``, ``function`` (bytes24). Enums are ``uint8`` in the ABI. Raises ValueError for other
    names (dynamic types have no word of their own to judge)."""
    if abi_type == "address":
        return ArgType.ADDRESS
    if abi_type == "bool":
        return ArgType.BOOL
    if abi_type == "function":
        return ArgType.bytes_of(24)
    alias = {"uint": "uint256", "int": "int256", "byte": "bytes1"}.get(abi_type, abi_type)
    match = _SIZED.fullmatch(alias)
    if match is not None and not match.group(2).startswith("0"):
        size = int(match.group(2))
        if match.group(1) == "bytes":
            return ArgType.bytes_of(size)
        return ArgType.uint_of(size) if match.group(1) == "uint" else ArgType.int_of(size)
    raise ValueError(f"{abi_type!r} is not an elementary static ABI type a rule can check")
