"""Small, strict conversions between Python values and the hex forms Ethereum tools exchange."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated, Any

from eth_utils import keccak, to_checksum_address
from pydantic import BeforeValidator, PlainSerializer

from .errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    InvalidAddressError,
    a_type,
    has_private_key_form,
    hex_shown,
    shown,
)

__all__ = [
    "ZERO_ADDRESS",
    "Address",
    "HexBytes32",
    "HexData",
    "HexInt",
    "HexRepr",
    "WireInt",
    "address_word",
    "keccak",
    "rpc_name",
    "shown_hex",
    "to_address",
    "to_bytes",
    "to_int",
    "to_quantity",
    "to_wire_int",
    "word",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DECIMAL = re.compile(r"-?[0-9]+")
"""Decimal text in ASCII digits: ``int`` also reads other scripts' digits (``"٣"`` is 3), spaces and ``_``."""
_HEX_QUANTITY = re.compile(r"0[xX][0-9a-fA-F]+")


def to_address(value: object, *, name: str = "address") -> str:
    """Return ``value`` as an EIP-55 checksummed address.

    Accepts a 0x-prefixed 40-digit hex string (all lowercase, all uppercase, or correctly checksummed),
    20 raw bytes, or any object with an ``address`` attribute (ape and eth-account accounts, contracts).
    Raises :class:`InvalidAddressError` otherwise.
    """
    field = None if name == "address" else name  # named in a message when the caller said which value it is
    if not isinstance(value, (str, bytes, bytearray)) and hasattr(value, "address"):
        value = value.address
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 20:
            raise InvalidAddressError(value, f"{len(value)} bytes, expected 20", field)
        return _checksummed(bytes(value).hex())
    if not isinstance(value, str):
        raise InvalidAddressError(value, f"{a_type(value)}, expected a hex string", field)
    text = value.strip()
    if not text.startswith(("0x", "0X")) or len(text) != 42 or not set(text[2:]) <= _HEX_DIGITS:
        raise InvalidAddressError(value, "expected 0x and 40 hex digits", field)
    digits = text[2:]
    checksummed = _checksummed(digits.lower())
    if digits not in (digits.lower(), digits.upper()) and checksummed[2:] != digits:
        raise InvalidAddressError(value, f"bad EIP-55 checksum (did you mean {checksummed}?)", field)
    return checksummed


@lru_cache(maxsize=4096)
def _checksummed(digits: str) -> str:
    """The EIP-55 form of 40 lowercase hex digits (a keccak each: addresses recur, so they are remembered)."""
    return to_checksum_address("0x" + digits)


def to_bytes(value: object, *, name: str = "value", length: int | None = None, secret: bool = False) -> bytes:
    """Return ``value`` (bytes or a 0x-hex string) as bytes, checking ``length`` when given. A ``secret`` value (a
    private key) is never shown in an error, only its length."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        if len(text) % 2 or not set(text) <= _HEX_DIGITS:
            given = f"({len(value)} characters)" if secret else shown(value)
            raise BadInputError(
                f"{name} {given} is not hex data: give 0x followed by an even number of hex digits"
            )
        raw = bytes.fromhex(text)
    elif hasattr(value, "__bytes__"):
        raw = bytes(value)
    else:
        raise BadInputError(f"{name} must be bytes or a 0x-hex string, got {type(value).__name__}")
    if length is not None and len(raw) != length:
        given = "" if secret else f": 0x{raw[:40].hex()}{'…' if len(raw) > 40 else ''}"
        raise BadInputError(
            f"{name} must be {length} bytes (0x and {2 * length} hex digits), got {len(raw)} bytes{given}"
        )
    return raw


def _decimal(digits: str, name: str) -> int:
    """``digits`` (ASCII decimal digits) as an int. Python refuses to convert more than
    ``sys.get_int_max_str_digits()`` digits (4,300 by default, against quadratic conversion time) with a ValueError
    that no caller takes for bad input; no number keyscope reads needs more than 78 (2**256)."""
    try:
        return int(digits, 10)
    except ValueError:
        raise BadInputError(
            f"{name} has {len(digits)} decimal digits, more than any number keyscope reads has (2**256 has 78): "
            "give the number in at most 78 digits"
        ) from None


def _hex_quantity(text: str, name: str) -> int:
    """``text`` (``0x`` and ASCII hex digits) as an int. Python converts hex of any length, but refuses to write a
    number of more than ``sys.get_int_max_str_digits()`` decimal digits (4,300 by default) with a ValueError that no
    caller takes for bad input, and callers name the numbers they refuse in decimal: such a number is refused here,
    as :func:`_decimal` refuses its decimal text. No number keyscope reads needs more than 64 hex digits (2**256 - 1)."""
    result = int(text, 16)
    limit = sys.get_int_max_str_digits()
    # 3 bits a decimal digit is fewer than a digit holds (log2(10) = 3.32): such a number is written in under `limit`
    if limit and result.bit_length() > 3 * limit:
        raise BadInputError(
            f"{name} has {len(text) - 2} hex digits, more than any number keyscope reads has (2**256 - 1 has 64): "
            "give the number in at most 64 hex digits"
        )
    return result


def to_int(value: object, *, name: str = "value") -> int:
    """Return ``value`` (an int, a decimal string or a 0x-hex quantity) as a non-negative int. Text is ASCII digits
    only (as every number keyscope reads): no other script's digits, spaces or ``_`` separators."""
    if isinstance(value, bool):
        raise BadInputError(f"{name} must be an integer, got a bool")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str):
        if _HEX_QUANTITY.fullmatch(value):
            result = _hex_quantity(value, name)
        elif _DECIMAL.fullmatch(value):
            result = _decimal(value, name)
        else:
            given = f": {PRIVATE_KEY_NOT_SHOWN}," if has_private_key_form(value) else f" {shown(value)}"
            raise BadInputError(
                f"{name}{given} is not an integer or a 0x-hex quantity: write decimal digits 0-9 or 0x and hex "
                "digits"
            )
    else:
        raise BadInputError(f"{name} must be an integer, got {type(value).__name__}")
    if result < 0:
        raise BadInputError(f"{name} must not be negative, got {result}")
    return result


def to_wire_int(value: object, *, name: str = "value") -> int:
    """Return ``value`` (an int or its decimal text in ASCII digits, as JSON and forms write a number) as an int;
    any sign, the caller bounds it. A bool is refused, not read as 0 or 1 (``False`` would be 0, which means "no bound" for a gas
    cap, a value limit or an expiry), and so is a float: one past 2**53 holds no exact number (``1e30`` is
    1000000000000000019884624838656), and a whole one is a number written as a fraction, which no wire sends."""
    if isinstance(value, bool):
        raise BadInputError(f"{name} must be an integer, got a bool: write the number itself")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            given = f": {PRIVATE_KEY_NOT_SHOWN}," if has_private_key_form(value) else f" {shown(value)}"
            raise BadInputError(f"{name}{given} is not an integer in decimal digits: write digits 0-9")
        return _decimal(value, name)
    if isinstance(value, float):
        raise BadInputError(
            f"{name} must be an integer, got a float, which holds no exact number past 2**53: "
            "write the integer (e.g. 5 * 10**16, not 5e16)"
        )
    raise BadInputError(f"{name} must be an integer, got {type(value).__name__}")


def to_quantity(value: int) -> str:
    """JSON-RPC quantity: minimal 0x-hex for an int."""
    return hex(value)


def _parse_address(value: Any) -> str:
    return to_address(value)


def _parse_data(value: Any) -> bytes:
    return to_bytes(value)


def _parse_bytes32(value: Any) -> bytes:
    return to_bytes(value, length=32)


def _parse_int(value: Any) -> int:
    return to_int(value)


def _parse_wire_int(value: Any) -> int:
    return to_wire_int(value)  # the error is located at the field (its loc): it names it


Address = Annotated[str, BeforeValidator(_parse_address)]
"""A checksummed address; validates strings, bytes and objects with ``.address``."""

HexData = Annotated[
    bytes, BeforeValidator(_parse_data), PlainSerializer(lambda b: "0x" + b.hex(), return_type=str)
]
"""Arbitrary bytes; validates bytes or 0x-hex, serialises to 0x-hex."""

HexBytes32 = Annotated[
    bytes, BeforeValidator(_parse_bytes32), PlainSerializer(lambda b: "0x" + b.hex(), return_type=str)
]
"""Exactly 32 bytes."""

HexInt = Annotated[int, BeforeValidator(_parse_int), PlainSerializer(to_quantity, return_type=str)]
"""A non-negative integer; validates ints, decimal strings and 0x quantities, serialises to 0x-hex."""

WireInt = Annotated[int, BeforeValidator(_parse_wire_int)]
"""An integer as the wire writes it: an int, or its decimal text; never a bool or a float (see
:func:`to_wire_int`). Serialises as an int; bounds are the field's (``Field(ge=...)``)."""


shown_hex = hex_shown
"""``value`` with every ``bytes`` in it (also inside lists, tuples and dicts) as 0x-hex text: what a person sees
of bytes."""


class HexRepr:
    """A mixin for pydantic models: their ``repr`` and ``str`` show bytes fields as 0x-hex
    (``transaction_hash='0x7347ee…'``), never as Python bytes literals."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():  # type: ignore[misc]
            yield name, shown_hex(value)


# Re-exported so that callers hash with the same implementation everywhere.
keccak = keccak


def word(value: int) -> bytes:
    """``value`` as one big-endian 32-byte ABI word (a ``uint256``)."""
    return value.to_bytes(32, "big")


def address_word(address: str) -> bytes:
    """A 0x-hex ``address`` as one 32-byte ABI word (left-padded with zeros)."""
    return bytes(12) + bytes.fromhex(address[2:])


def rpc_name(name: str) -> str:
    """The JSON-RPC (camelCase) name of a Python field name: ``call_gas_limit`` is ``callGasLimit``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
