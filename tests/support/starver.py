"""Starving worker processes of CPU, for the scale tests and the scale benchmark.

::

    with Starver(processes, pause=2.5, every=5.0, until=others_done) as starver:
        ...                                   # the processes are stopped now and then
    starver.pauses                            # how many times they were stopped

    stop_until_taken_over(processes, taken_over, lease=1.0, longest=20.0, start_others=..., waiting=...)

A stopped process (SIGSTOP) runs nothing, renews no lease and answers nothing, like a process in a long GC
pause, a starved VM or a stopped container; SIGCONT lets it go on where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence


class Starver:
    """Stops the ``processes`` (SIGSTOP) all together for ``pause`` seconds at random moments, ``every``
    seconds apart on average, until ``until()`` or the end of the ``with`` block; a process that ended is
    left alone. The moments come from a seeded generator, so that runs are alike."""

    def __init__(
        self,
        processes: Sequence[subprocess.Popen[bytes]],
        *,
        pause: float,
        every: float,
        until: Callable[[], bool],
        seed: int = 7,
    ) -> None:
        self.processes = list(processes)
        self.pause = pause
        self.every = every
        self.until = until
        self.pauses = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="starver", daemon=True)

    def __enter__(self) -> Starver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._rng.uniform(0.5, 1.5) * self.every) and not self.until():
            signal_all(self.processes, signal.SIGSTOP)
            self.pauses += 1
            self._stop.wait(self.pause)
            signal_all(self.processes, signal.SIGCONT)


def signal_all(processes: Sequence[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    """Send ``sig`` to each of ``processes`` still running."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)


def stop_until_taken_over(
    processes: Sequence[subprocess.Popen[bytes]],
    taken_over: Callable[[], bool],
    *,
    lease: float,
    longest: float,
    start_others: Callable[[], None],
    waiting: Callable[[], None],
) -> None:
    """Stop ``processes`` (SIGSTOP) until ``taken_over()`` (another worker took one of their lanes), at most
    ``longest`` seconds at a time (a worker stopped inside a SQLite write transaction holds the database's
    lock: the others must not wait for it too long), then let them go on (SIGCONT). ``start_others()`` is
    called once, when the first stop has outlived the stopped workers' ``lease``; ``waiting()`` is called
    between checks (to fail when nothing moves)."""
    started = False
    while True:
        signal_all(processes, signal.SIGSTOP)
        time.sleep(lease + 0.5)  # their leases run out: a stopped worker renews nothing
        if not started:
            start_others()
            started = True
        until = time.monotonic() + longest
        while not taken_over() and time.monotonic() < until:
            waiting()
            time.sleep(0.2)
        signal_all(processes, signal.SIGCONT)
        if taken_over():
            return
        time.sleep(1.0)
