"""Starving worker processes of CPU, for the scale tests and the scale benchmark.

::

    with Starver(processes, pause=2.5, every=5.0, until=others_done) as starver:
        ...                                   # the processes are stopped now and then
    starver.pauses                            # how many times they were stopped

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

    def _signal(self, sig: signal.Signals) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, sig)

    def _run(self) -> None:
        while not self._stop.wait(self._rng.uniform(0.5, 1.5) * self.every) and not self.until():
            self._signal(signal.SIGSTOP)
            self.pauses += 1
            self._stop.wait(self.pause)
            self._signal(signal.SIGCONT)
