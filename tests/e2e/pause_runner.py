"""A worker process that stops itself at one step of one send: ``python pause_runner.py SPEC.json``.

The spec is :mod:`keyscope.scale.runner`'s, with ``"pause_at": {"step": ..., "intent": ...}`` (a step of
``keyscope.scale.worker.STEPS``). When the worker reaches that step for that intent, the process sends itself
SIGSTOP: every thread stops at once (the lease renewal too), as in a starved VM, a stopped container or a
long GC pause. The test lets the lease run out, has another worker take over, then sends SIGCONT.

The stop never falls inside a store transaction: the store's transactions in this process take one lock,
which the hook holds while it stops. A process stopped inside a transaction would keep its database locks
until it resumes (other workers wait, or skip the locked lane): a delay, not the fault under test.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection

from keyscope.scale.runner import main
from keyscope.scale.worker import STEPS, StepHook
from keyscope.store import SqlStore

T = TypeVar("T")
_TRANSACTIONS = threading.RLock()
_run = SqlStore._run


def _one_at_a_time(self: SqlStore, work: Callable[[Connection], T], *, write: bool) -> T:
    with _TRANSACTIONS:
        return _run(self, work, write=write)


def _between_transactions() -> None:
    """Wrap the store's transactions so that :func:`pause_at` can stop the process between two of them."""
    SqlStore._run = _one_at_a_time  # type: ignore[method-assign]


def pause_at(step: str, intent: str) -> StepHook:
    """A step hook that stops this process the first time the worker reaches ``step`` for ``intent``."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: one of {STEPS}")
    paused: list[str] = []

    def on_step(reached: str, intent_id: str) -> None:
        if not paused and reached == step and intent_id == intent:
            paused.append(intent_id)
            with _TRANSACTIONS:
                # to this very thread: it stops before it returns from the call (a signal to the process
                # may be taken by another thread, and this one would run on, into the next transaction)
                signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)

    return on_step


if __name__ == "__main__":
    where = json.loads(Path(sys.argv[1]).read_text())["pause_at"]
    _between_transactions()
    sys.exit(main(sys.argv[1:], on_step=pause_at(where["step"], where["intent"])))
