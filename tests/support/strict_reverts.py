"""``ape.reverts(contract.SomeError)`` made strict for the whole test suite.

As released, ape compares the error class only when the revert is itself a custom error: a panic (an array index out
of bounds, an overflow), a bare ``revert()`` or a ``require`` message pass any expected custom error, and an expected
input whose name the error lacks is skipped. A test written as ``with ape.reverts(module.InvalidRule):`` would then
still pass with the module's check removed, whenever the call goes on to fail some other way. Here an expected custom
error must be the very error raised, by name, with every input the test names."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ape.exceptions import CustomError
from ape.pytest.contextmanagers import RevertsContextManager

_released_exit = RevertsContextManager.__exit__


def _strict_exit(
    self: Any,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> bool:
    expected = self.expected_message
    if exc_value is not None and isinstance(expected, type) and issubclass(expected, CustomError):
        if not isinstance(exc_value, CustomError) or type(exc_value).__name__ != expected.__name__:
            raise AssertionError(
                f"expected the custom error {expected.__name__}, got {type(exc_value).__name__}: {exc_value}"
            ) from exc_value
        unknown = set(self.error_inputs or {}) - set(exc_value.inputs)
        if unknown:
            raise AssertionError(f"{expected.__name__} has no input named {sorted(unknown)}") from exc_value
    return bool(_released_exit(self, exc_type, exc_value, traceback))


def install() -> None:
    """Make every ``ape.reverts`` of the test run strict (idempotent)."""
    RevertsContextManager.__exit__ = _strict_exit  # type: ignore[method-assign]
