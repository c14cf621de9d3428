"""What the worker hands back: a :class:`Submission` per intent, a :class:`BatchResult` per batch, and a
:class:`RecoveryReport` per recovery pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from ..errors import UserOperationTimeoutError
from ..execution import Call
from ..store import OutboxRecord, OutboxState
from .probe import Outcome, Verdict

if TYPE_CHECKING:
    from .lanes import LaneSlot

__all__ = ["BatchResult", "Intent", "RecoveryReport", "Submission"]


@dataclass(frozen=True)
class Intent:
    """One thing to do: ``calls`` from the account of session ``session_id``, under the caller's
    idempotency key ``intent_id`` (an order id, a game move id...)."""

    intent_id: str
    session_id: str | bytes
    calls: Call | Sequence[Call]
    batch: bool | None = None


class Tracked:
    """An outbox record this worker follows until it is included or failed (internal)."""

    def __init__(self, record: OutboxRecord, slot: LaneSlot | None, probe_at: float) -> None:
        self.record = record
        self.slot = slot
        self.done = threading.Event()
        self.final: OutboxRecord | None = None
        self.next_probe = probe_at
        """``time.monotonic()`` when to ask the bundler about it next (if not seen on chain before)."""
        now = time.monotonic()
        self.next_receipt = now
        self.receipt_interval = 0.1
        self.backoff = 0.5
        self.held = 0
        """How many times a bundler was found holding it (each time the next probe comes later)."""
        self.probing = False
        """A probe of this operation is running."""
        self.unsaved: Outcome | None = None
        """An outcome the store has not taken yet (it was unreachable)."""
        self.rebuilding = False
        """The operation was found displaced and its intent is being built again."""
        self.followers: list[Tracked] = []
        """Others following the same intent here (its operation was rebuilt into one already followed):
        finished with this one."""

    def close(self, final: OutboxRecord) -> None:
        """Finished with ``final``: this and its followers."""
        self.final = final
        self.done.set()
        for follower in self.followers:
            follower.record = follower.final = final
            follower.done.set()

    def settle(self, outcome: Outcome, now: float) -> OutboxRecord:
        """The final record as the store will hold it once written."""
        if outcome.verdict is Verdict.INCLUDED:
            final = replace(
                self.record,
                state=OutboxState.INCLUDED,
                tx_hash=outcome.tx_hash,
                success=outcome.success,
                finished_at=now,
                updated_at=now,
            )
        else:
            final = replace(self.record, state=OutboxState.FAILED, error=outcome.reason, finished_at=now)
        self.final = final
        return final


class Submission:
    """An intent handed to the worker: its one operation (``user_op_hash``) is recorded and on its way.

    ``resumed`` is True when the intent had been recorded before (a retry): the recorded operation is
    followed, never a new one built. :meth:`wait` returns the final :class:`~keyscope.store.OutboxRecord`.
    """

    def __init__(self, tracked: Tracked, *, resumed: bool, pump: Callable[[], None] | None = None) -> None:
        self._tracked = tracked
        self._pump = pump
        self.resumed = resumed

    def __repr__(self) -> str:
        return f"Submission({self.intent_id!r}, {self.user_op_hash}, {self.record.state.value})"

    @property
    def intent_id(self) -> str:
        """The idempotency key."""
        return self._tracked.record.intent_id

    @property
    def user_op_hash(self) -> str:
        """The operation's userOpHash (0x-hex)."""
        return self._tracked.record.user_op_hash

    @property
    def record(self) -> OutboxRecord:
        """The latest known record (final once :meth:`done`)."""
        return self._tracked.final or self._tracked.record

    def done(self) -> bool:
        """Whether the operation is included or failed."""
        return self._tracked.done.is_set()

    def wait(self, timeout: float | None = 120.0) -> OutboxRecord:
        """Block until the intent's operation is included or failed; the final record. ``state`` says which,
        with ``success`` (its call succeeded) or ``error`` (why it can never land). An operation displaced
        on the way (its nonce used by another) is rebuilt and followed: :attr:`user_op_hash` is then the new
        one's. Raises :class:`~keyscope.errors.UserOperationTimeoutError` after ``timeout`` seconds (None:
        no limit): the operation is still followed, and may land later."""
        if self._pump is None:
            if not self._tracked.done.wait(timeout):
                raise UserOperationTimeoutError(self.user_op_hash, timeout or 0.0)
        else:  # no background thread: poll while waiting
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._tracked.done.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    raise UserOperationTimeoutError(self.user_op_hash, timeout or 0.0)
                self._pump()
        assert self._tracked.final is not None
        return self._tracked.final


@dataclass
class BatchResult:
    """The outcome of :meth:`~keyscope.scale.SessionWorker.send_many`: a final record per intent that was
    recorded, and the error of each intent that was refused before anything was recorded."""

    records: dict[str, OutboxRecord] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)

    @property
    def included(self) -> list[OutboxRecord]:
        """Records whose operation landed (whether or not its call succeeded)."""
        return [r for r in self.records.values() if r.state is OutboxState.INCLUDED]

    @property
    def failed(self) -> list[OutboxRecord]:
        """Records whose operation can never land."""
        return [r for r in self.records.values() if r.state is OutboxState.FAILED]


@dataclass
class RecoveryReport:
    """What a :meth:`~keyscope.scale.SessionWorker.recover` pass found and did, by intent id."""

    included: list[str] = field(default_factory=list)
    """On chain (already, or once sent again during the wait): marked included."""
    failed: dict[str, str] = field(default_factory=dict)
    """Can never land: marked failed, with the reason."""
    waiting: dict[str, str] = field(default_factory=dict)
    """Not finished when the pass returned (held by the bundler, sent again, bundler unreachable...), with
    the reason; the worker that ran the pass keeps following them."""
    rebuilt: list[str] = field(default_factory=list)
    """Displaced (their nonce used by another operation) and built again as a new operation by this pass;
    each is also in one of the lists above."""
    resent: list[str] = field(default_factory=list)
    """Sent again by this pass, the same operation (the bundler had lost it, or it was never sent); each is
    also in one of the lists above."""
    skipped: list[str] = field(default_factory=list)
    """Followed by this worker already."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """Records the store could not read (damaged), with the problem: left as they are, their nonces still
    taken, while the pass went on with the others."""

    @property
    def examined(self) -> int:
        """How many pending records the pass looked at."""
        return len(self.included) + len(self.failed) + len(self.waiting) + len(self.skipped)

    def as_json(self) -> dict[str, Any]:
        """Every list above by its name, and :attr:`examined`: what ``keyscope recover --json`` prints."""
        return {"examined": self.examined, **{name.name: getattr(self, name.name) for name in fields(self)}}

    def __str__(self) -> str:
        return (
            f"{self.examined} pending: {len(self.included)} included, {len(self.failed)} failed, "
            f"{len(self.waiting)} still unfinished, {len(self.skipped)} followed here; "
            f"{len(self.resent)} sent again, {len(self.rebuilt)} rebuilt"
            + (f"; {len(self.unreadable)} unreadable, left as they are" if self.unreadable else "")
        )
