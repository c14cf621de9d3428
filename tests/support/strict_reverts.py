"""``ape.reverts(contract.SomeError)`` made strict for the whole test suite.

As released, ape compares the error class only when the revert is itself a custom error: a panic (an array index out
of bounds, an overflow), a bare ``revert()`` or a ``require`` message pass any expected custom error, and an expected
input whose name the error lacks is skipped. A test written as ``with ape.reverts(module.InvalidRule):`` would then
still pass with the module's check removed, whenever the call goes on to fail some other way. Here an expected custom
error must be the very error raised, by name, with every input the test names.

ape leaves some custom errors undecoded: revert data whose bytes hold a quote character (``0x27``, in a random
address one time in thirteen) reaches it as the repr of a bytes object, which it does not parse. Such a revert is
decoded here, against the expected error's ABI, and held to the same rule: its selector must be the expected
error's, and its inputs those the test names."""

from __future__ import annotations

import ast
from types import TracebackType
from typing import Any

from ape.exceptions import ContractLogicError, CustomError
from ape.pytest.contextmanagers import RevertsContextManager
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

_released_exit = RevertsContextManager.__exit__


def revert_data(error: ContractLogicError) -> bytes | None:
    """The revert data of an error ape did not decode (``0x…`` hex or a bytes repr), None if it holds none."""
    message = error.revert_message
    if isinstance(message, bytes):
        return message
    if not isinstance(message, str):
        return None
    if message.startswith("0x"):
        try:
            return bytes.fromhex(message[2:])
        except ValueError:
            return None
    if message.startswith(("b'", 'b"')):
        try:
            data = ast.literal_eval(message)
        except (ValueError, SyntaxError):
            return None
        return data if isinstance(data, bytes) else None
    return None


def _decoded_inputs(expected: Any, data: bytes) -> dict[str, Any] | None:
    """The inputs of ``data`` read as the custom error ``expected`` (None when its selector is another's)."""
    abi = expected.abi
    if data[:4] != keccak(text=abi.selector)[:4]:
        return None
    types = [item.canonical_type for item in abi.inputs]
    values = abi_decode(types, data[4:])
    return {
        item.name: to_checksum_address(value) if kind == "address" else value
        for item, kind, value in zip(abi.inputs, types, values, strict=True)
    }


def _strict_exit(
    self: Any,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    expected = self.expected_message
    if exc_value is not None and isinstance(expected, type) and issubclass(expected, CustomError):
        decoded = None
        if isinstance(exc_value, ContractLogicError) and not isinstance(exc_value, CustomError):
            data = revert_data(exc_value)
            decoded = None if data is None else _decoded_inputs(expected, data)
        if decoded is None and (
            not isinstance(exc_value, CustomError) or type(exc_value).__name__ != expected.__name__
        ):
            raise AssertionError(
                f"expected the custom error {expected.__name__}, got {type(exc_value).__name__}: {exc_value}"
            ) from exc_value
        raised = decoded if decoded is not None else getattr(exc_value, "inputs", {})
        unknown = set(self.error_inputs or {}) - set(raised)
        if unknown:
            raise AssertionError(f"{expected.__name__} has no input named {sorted(unknown)}") from exc_value
        if decoded is not None:  # ape's own check compares the inputs of the errors it decoded
            wrong = {
                name: (want, raised[name])
                for name, want in (self.error_inputs or {}).items()
                if raised[name] != want
            }
            if wrong:
                raise AssertionError(
                    f"{expected.__name__} raised with other inputs (expected, raised): {wrong}"
                ) from exc_value
            if self.revert_info is not None:
                self.revert_info.value = exc_value
            return True
    return bool(_released_exit(self, exc_type, exc_value, traceback))


def install() -> None:
    """Make every ``ape.reverts`` of the test run strict (idempotent)."""
    RevertsContextManager.__exit__ = _strict_exit  # type: ignore[method-assign]
