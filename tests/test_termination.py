"""``termination.sigterm_as_ctrl_c``: SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``) within the block, so a
command's handling of Ctrl-C runs for it too, and SIGTERM does what it did before once the block is left."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from keyscope.termination import Terminated, sigterm_as_ctrl_c


def test_sigterm_is_ctrl_c_within_the_block_and_as_before_after_it() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as caught, sigterm_as_ctrl_c():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes of the main thread
            pass
    assert isinstance(caught.value, Terminated)
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_nothing_changes() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def run() -> None:
        with sigterm_as_ctrl_c():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before] and signal.getsignal(signal.SIGTERM) is before
