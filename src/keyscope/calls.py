"""Build :class:`~keyscope.execution.Call` objects from a function signature and Python arguments."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_abi import is_encodable
from eth_abi.encoding import TupleEncoder
from eth_abi.registry import registry

from .errors import BadInputError, shown
from .execution import Call
from .policy import AbiFunction, parse_signature

__all__ = ["encode_function_call", "function_call"]


@lru_cache(maxsize=256)
def _function(signature: str) -> tuple[AbiFunction, list[str], TupleEncoder]:
    """The parsed ``signature``, its argument types and their ABI encoder (what ``eth_abi.encode`` would build
    for every call), remembered per signature."""
    function = parse_signature(signature)
    types = [param.type.name for param in function.inputs]
    encoders = [registry.get_encoder(name) for name in types]
    return function, types, TupleEncoder(encoders=encoders)  # type: ignore[no-untyped-call]  # eth_abi's


def encode_function_call(signature: str, *args: Any) -> bytes:
    """Calldata for ``signature`` (e.g. ``"transfer(address to,uint256 amount)"``) called with ``args``."""
    function, types, encoder = _function(signature)
    if len(args) != len(types):
        raise BadInputError(
            f"{function.signature} takes {len(types)} argument(s) ({function.describe_inputs()}), got {len(args)}"
        )
    plain = [
        getattr(a, "address", a) if not isinstance(a, (str, bytes, int, bool, list, tuple)) else a
        for a in args
    ]
    try:
        return function.selector + encoder(plain)
    except Exception:
        raise BadInputError(_refusal(function, types, plain)) from None


def _refusal(function: AbiFunction, types: list[str], args: list[Any]) -> str:
    """Which argument of ``function`` its ABI type cannot take, in words (eth_abi's own message shows bytes as
    Python literals and names its encoder classes)."""
    for index, (kind, value) in enumerate(zip(types, args, strict=True)):
        if not is_encodable(kind, value):
            name = function.inputs[index].name or f"arg{index}"
            return (
                f"cannot encode the arguments of {function.signature}: `{name}` ({kind}) cannot take "
                f"{shown(value)} ({type(value).__name__}); give an int in range for uintN/intN, bytes of "
                "the right size for bytesN, an address as 0x-hex, a list for an array, a tuple for a struct"
            )
    return f"cannot encode the arguments of {function.signature} ({function.describe_inputs()})"


def function_call(target: Any, signature: str, *args: Any, value: int = 0) -> Call:
    """The call ``target.signature(*args)`` carrying ``value`` wei."""
    return Call.of(target, value, encode_function_call(signature, *args))
