"""EIP-712 typed data as JSON, exactly as a wallet's ``eth_signTypedData_v4`` takes it.

Wallets read the typed data from JSON text, so every value must survive ``JSON.parse``: bytes travel as 0x-hex
strings, and an integer travels as a JSON number only while a JavaScript number holds it exactly (at most
2**53 - 1). Larger integers travel as decimal strings, which MetaMask and anvil both read as the integer they
spell; a JSON number above 2**64 is refused by anvil ("type mismatch") and rounded by JavaScript. The values are
converted by walking the declared types, so a field added to a struct later is converted the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import BadInputError

__all__ = ["MAX_SAFE_INTEGER", "wallet_typed_data", "wallet_value"]

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript number holds exactly."""

_ARRAY = re.compile(r"^(?P<element>.+)\[(?P<length>\d*)\]$")


def wallet_value(value: Any) -> Any:
    """One elementary value as JSON: 0x-hex for bytes, a number for a safe integer, a decimal string for a
    larger one; strings and booleans as they are."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    raise BadInputError(f"{value!r} ({type(value).__name__}) has no EIP-712 JSON form")


def _convert(type_name: str, value: Any, types: Mapping[str, Any]) -> Any:
    array = _ARRAY.match(type_name)
    if array is not None:
        if not isinstance(value, (list, tuple)):
            raise BadInputError(f"the {type_name} value {value!r} is not a list")
        return [_convert(array.group("element"), item, types) for item in value]
    fields = types.get(type_name)
    if fields is not None:
        if not isinstance(value, Mapping):
            raise BadInputError(f"the {type_name} value {value!r} is not an object")
        return {
            field["name"]: _convert(field["type"], value[field["name"]], types)
            for field in fields
            if field["name"] in value
        }
    return wallet_value(value)


def wallet_typed_data(typed_data: Mapping[str, Any]) -> dict[str, Any]:
    """``typed_data`` (``types``, ``primaryType``, ``domain``, ``message``, values in any form eth-account
    takes) with every value in its wallet JSON form; ``json.dumps`` of the result is what
    ``eth_signTypedData_v4`` takes, and its EIP-712 digest is unchanged."""
    types = typed_data["types"]
    return {
        "types": {name: [dict(field) for field in fields] for name, fields in types.items()},
        "primaryType": typed_data["primaryType"],
        "domain": _convert("EIP712Domain", typed_data["domain"], types),
        "message": _convert(typed_data["primaryType"], typed_data["message"], types),
    }
