"""Errors of the local stack. All derive from :class:`LocalStackError` (itself a ``KeyscopeError``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigurationError, DeploymentError, KeyscopeError

__all__ = [
    "DeploymentError",
    "LocalStackError",
    "PortInUseError",
    "ProcessStartError",
    "StartupTimeoutError",
    "ToolNotFoundError",
]


class LocalStackError(KeyscopeError):
    """The local node or bundler could not be started, or misbehaved.

    ``log_path`` is the log of the process concerned (None when none was started) and ``log_tail`` its last
    lines, which the message repeats.
    """

    def __init__(self, message: str, *, log_path: Path | None = None, log_tail: str = "") -> None:
        self.log_path = log_path
        self.log_tail = log_tail
        text = message
        if log_path is not None:
            text += f"\n(full log: {log_path})"
        if log_tail:
            text += "\n--- last lines of the log ---\n" + log_tail.rstrip("\n")
        super().__init__(text)


class ToolNotFoundError(LocalStackError, ConfigurationError):
    """A program the stack runs (node, anvil, Alto) is not installed."""


class ProcessStartError(LocalStackError):
    """A process exited while it was starting."""


class PortInUseError(ProcessStartError):
    """A process could not listen because another program holds its port."""


class StartupTimeoutError(LocalStackError, TimeoutError):
    """A process did not become ready in time."""
