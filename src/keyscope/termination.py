"""SIGTERM stops a keyscope command the way Ctrl-C does.

A service manager, a container runtime or ``kill`` stops a process with SIGTERM, which Python leaves to the
operating system: the process ends at once, saying nothing, running none of its clean-up (a page's server, a
store, a ledger file), with the signal's status. :func:`sigterm_as_ctrl_c` has SIGTERM raise :class:`Terminated`,
a ``KeyboardInterrupt``, in the main thread for as long as it is in effect, so that the command's own handling of
Ctrl-C runs: the same line on stderr, the same clean-up, the same exit status.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "sigterm_as_ctrl_c"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C raises ``KeyboardInterrupt``."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Stop as Ctrl-C stops."""
    raise Terminated("SIGTERM")


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``; after it, SIGTERM does what it did before (unless a handler set inside the block, such as
    the local stack's, which stops its processes and then calls this one, is still in place: it is kept).

    Outside the main thread, where no signal handler can be set, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
