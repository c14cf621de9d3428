"""The nonce lanes one worker holds: leased from the store, renewed while used, given back when idle.

A lane is one EntryPoint nonce sequence of an (account, session): ``kind.nonce_key(module, lane)``. The
store hands each lane to one live lease at a time; this pool keeps a worker's leases, and enforces the rule
the outbox protocol rests on: **at most one unfinished operation per lane**. A slot is *reserved* while a
send builds on it and *busy* while its operation is in flight; only a slot that is neither can take the
next operation, whose nonce is then the lane's next nonce on chain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import LeaseLostError, SessionStoreError, StoreLockedError
from ..store import Lease, OutboxRecord, SessionStore

__all__ = ["LanePool", "LaneSlot", "PendingSnapshots"]

_ZERO_RETRY = 1.0
"""Seconds between two attempts at lane 0 while another worker holds it."""

log = logging.getLogger("keyscope.worker")

SessionKey = tuple[str, str]
"""(account, session id) as the store normalises them."""


@dataclass(eq=False)
class LaneSlot:
    """One leased lane of an (account, session) in this worker."""

    lease: Lease
    renewed_at: float
    """``time.monotonic()`` of the lease's last renewal (or grant)."""
    busy: set[str] = field(default_factory=set)
    """userOpHashes of unfinished operations on the lane (normally at most one)."""
    reserved: bool = False
    """A send is building on the lane."""
    idle_since: float = 0.0
    lost: bool = False
    """The lease was reclaimed or released: the slot must not take new operations."""

    @property
    def lane(self) -> int:
        """The lane number."""
        return self.lease.lane

    @property
    def free(self) -> bool:
        """Whether the slot can take the next operation."""
        return not self.busy and not self.reserved and not self.lost


class LanePool:
    """A worker's leased lanes, at most ``max_lanes`` per (account, session).

    ``adopt(slot)`` runs after each new lease, before the slot is used: the worker marks the slot busy with
    any unfinished operation a previous holder left on that lane.
    """

    def __init__(
        self,
        store: SessionStore,
        worker_id: str,
        *,
        ttl: float,
        max_lanes: int,
        idle_seconds: float,
        adopt: Callable[[LaneSlot], None],
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._ttl = ttl
        self._max_lanes = max_lanes
        self._idle_seconds = idle_seconds
        self._adopt = adopt
        self._slots: dict[SessionKey, list[LaneSlot]] = {}
        self._leasing: set[SessionKey] = set()
        self._zero_tried: dict[SessionKey, float] = {}
        """When lane 0 of a session was last tried for and found taken (``time.monotonic()``)."""
        self._by_hash: dict[str, LaneSlot] = {}
        self._cond = threading.Condition()
        self.leased = 0
        """How many leases this pool took."""
        self.lost = 0
        """How many of them were found reclaimed by another worker."""

    # -- taking a slot --------------------------------------------------------------------------------

    def acquire(
        self,
        key: SessionKey,
        *,
        timeout: float,
        lane_zero_only: Callable[[], bool] | None = None,
        idle: Callable[[], None] | None = None,
    ) -> LaneSlot:
        """A free slot of ``key``, reserved for the caller; leases a new lane when all held ones are busy
        and fewer than ``max_lanes`` are held, else waits for one to free up.

        With ``lane_zero_only`` returning True (an account whose first operation must create it), only
        lane 0 is used, so that one creating operation is in flight at a time. ``idle`` is called instead of
        sleeping while waiting (to make progress without a background thread). Raises
        :class:`~keyscope.errors.StoreLockedError` after ``timeout`` seconds without a slot.
        """
        deadline = time.monotonic() + timeout
        while True:
            only_zero = lane_zero_only() if lane_zero_only is not None else False
            with self._cond:
                slots = self._slots.setdefault(key, [])
                free = [s for s in slots if s.free and (s.lane == 0 or not only_zero)]
                if free:
                    chosen = min(free, key=lambda s: s.lane)
                    chosen.reserved = True
                    return chosen
                has_zero = any(s.lane == 0 for s in slots)
                # lane 0 held elsewhere is asked for again once a second, not in a loop: its holder renews
                # it while the creating operation is in flight, and a dead holder's lease takes lease_ttl
                zero_due = time.monotonic() - self._zero_tried.get(key, 0.0) >= _ZERO_RETRY
                wants_lane = (only_zero and not has_zero and zero_due) or (
                    not only_zero and len(slots) < self._max_lanes
                )
                lease_it = wants_lane and key not in self._leasing
                if lease_it:
                    self._leasing.add(key)
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        if only_zero:
                            raise StoreLockedError(
                                f"{key[0]} has no code yet, so its next operation must create it, on lane 0 of "
                                f"session {key[1]}; lane 0 stayed busy or with another worker for {timeout:.0f}s"
                            )
                        raise StoreLockedError(
                            f"no free nonce lane of {key[0]}/{key[1]} within {timeout:.0f}s: this worker holds "
                            f"{len(slots)} lane(s), all busy with operations in flight"
                        )
                    if idle is None:
                        self._cond.wait(min(remaining, 0.25 if only_zero else 1.0))
                        continue
            if not lease_it:
                assert idle is not None
                idle()
                continue
            leased = self._lease(key, only_zero)
            if leased is not None:
                return leased
            # lane 0 was not to be had, or the new lane carries an adopted operation: look again
            if time.monotonic() > deadline:
                raise StoreLockedError(
                    f"no usable nonce lane of {key[0]}/{key[1]} within {timeout:.0f}s (lane 0 stayed with another "
                    "worker while the account's creating operation is in flight, or every new lane carried an "
                    "unfinished operation)"
                )

    def _lease(self, key: SessionKey, only_zero: bool) -> LaneSlot | None:
        try:
            lease = self._store.lease_lane(key[0], key[1], self._worker_id, self._ttl)
            if only_zero and lease.lane != 0:
                self._store.release_lease(lease)
                with self._cond:
                    self._zero_tried[key] = time.monotonic()
                return None
            slot = LaneSlot(lease, time.monotonic(), reserved=True)
            self.leased += 1
            try:
                self._adopt(slot)
            except BaseException:
                self._store.release_lease(lease)
                raise
        finally:
            with self._cond:
                self._leasing.discard(key)
                self._cond.notify_all()
        with self._cond:
            self._slots.setdefault(key, []).append(slot)
            for op_hash in slot.busy:
                self._by_hash[op_hash] = slot
            if slot.busy:  # the lane carries someone else's unfinished operation: not usable yet
                slot.reserved = False
                return None
            return slot

    def confirm(self, slot: LaneSlot) -> None:
        """Renew ``slot``'s lease now, right before an operation on it is recorded (the record itself is
        fenced by the lease in the store; renewing first makes it very likely to find the lease held).
        Raises :class:`~keyscope.errors.LeaseLostError` (and drops the slot) when the lease was lost."""
        try:
            slot.lease = self._store.renew_lease(slot.lease, self._ttl)
        except LeaseLostError:
            self._drop(slot)
            raise
        slot.renewed_at = time.monotonic()

    def lose(self, slot: LaneSlot) -> None:
        """A write under ``slot``'s lease was fenced: another worker holds the lane now. Stop using it."""
        if not slot.lost:
            self._drop(slot)

    def unreserve(self, slot: LaneSlot) -> None:
        """The send on ``slot`` ended without recording an operation: the slot is free again."""
        with self._cond:
            slot.reserved = False
            slot.idle_since = time.monotonic()
            self._cond.notify_all()

    def occupy(self, slot: LaneSlot, op_hash: str) -> None:
        """``op_hash`` is now in flight on ``slot`` (which stays busy until :meth:`vacate`)."""
        with self._cond:
            slot.busy.add(op_hash)
            slot.reserved = False
            self._by_hash[op_hash] = slot

    def vacate(self, op_hash: str) -> None:
        """The operation ``op_hash`` is finished: its lane may take the next one."""
        with self._cond:
            slot = self._by_hash.pop(op_hash, None)
            if slot is None:
                return
            slot.busy.discard(op_hash)
            slot.idle_since = time.monotonic()
            self._cond.notify_all()

    def holds(self, op_hash: str) -> bool:
        """Whether ``op_hash`` occupies one of this pool's lanes."""
        with self._cond:
            return op_hash in self._by_hash

    # -- upkeep ----------------------------------------------------------------------------------------

    def upkeep(self) -> None:
        """Renew leases a third of their time-to-live old; give back lanes idle for ``idle_seconds``.

        A store that cannot be reached is retried at the next call; a lease found reclaimed (this worker
        was presumed dead) is dropped: its unfinished operation stays in the outbox for the new holder.
        """
        now = time.monotonic()
        with self._cond:
            slots = [slot for group in self._slots.values() for slot in group]
        for slot in slots:
            idle = slot.free and now - slot.idle_since > self._idle_seconds
            try:
                if idle:
                    with self._cond:
                        if not slot.free:
                            continue
                        slot.lost = True  # no longer offered while it is given back
                    self._store.release_lease(slot.lease)
                    self._remove(slot)
                elif now - slot.renewed_at > self._ttl / 3:
                    slot.lease = self._store.renew_lease(slot.lease, self._ttl)
                    slot.renewed_at = time.monotonic()
            except LeaseLostError:
                self._drop(slot)
            except SessionStoreError as exc:
                if idle:
                    with self._cond:
                        slot.lost = False
                log.warning("renewing lane %d of %s: %s", slot.lane, slot.lease.account, exc)

    def discard(self, slot: LaneSlot) -> None:
        """Stop using ``slot`` and give its lease back (best effort: unreleased, it expires)."""
        with self._cond:
            slot.lost = True
            slot.reserved = False
        self._remove(slot)
        self._release(slot)

    def release_all(self) -> None:
        """Give back every lease (on close). Unfinished operations stay in the outbox for the next holder."""
        with self._cond:
            slots = [slot for group in self._slots.values() for slot in group]
            self._slots.clear()
            self._by_hash.clear()
        for slot in slots:
            self._release(slot)

    def _release(self, slot: LaneSlot) -> None:
        """Give ``slot``'s lease back, best effort (unreleased, it expires)."""
        try:
            self._store.release_lease(slot.lease)
        except SessionStoreError as exc:
            log.warning("releasing lane %d of %s: %s", slot.lane, slot.lease.account, exc)

    def held(self) -> int:
        """How many lanes the pool holds now."""
        with self._cond:
            return sum(len(group) for group in self._slots.values())

    def _drop(self, slot: LaneSlot) -> None:
        self.lost += 1
        log.warning(
            "lane %d of %s/%s was reclaimed by another worker: dropping it",
            slot.lane,
            slot.lease.account,
            slot.lease.session_id,
        )
        with self._cond:
            slot.lost = True
        self._remove(slot)

    def _remove(self, slot: LaneSlot) -> None:
        with self._cond:
            key = (slot.lease.account, slot.lease.session_id)
            group = self._slots.get(key, [])
            if slot in group:
                group.remove(slot)
            if not group:
                self._slots.pop(key, None)
            for op_hash in list(slot.busy):
                if self._by_hash.get(op_hash) is slot:
                    del self._by_hash[op_hash]
            self._cond.notify_all()


def _skip_corrupt(name: str, error: SessionStoreError) -> None:
    log.warning("outbox record %s cannot be read, left out of lane adoption: %s", name, error)


class PendingSnapshots:
    """The outbox's unfinished records, grouped by lane, read once for many new leases.

    A lease granted at ``moment`` needs a read of the outbox that *began after* ``moment``: whatever a
    previous holder recorded on the lane, it recorded while its own lease was valid, so before this lease
    was granted, so such a read sees it. Reads are shared: one read serves every lease granted before it
    began, and at most one runs at a time, so a burst of new leases costs one scan of the outbox.
    """

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._by_lane: dict[tuple[str, str, int], list[OutboxRecord]] = {}
        self._began = float("-inf")
        self._reading_since: float | None = None
        self.reads = 0
        """How many times the outbox was read."""

    def on_lane(self, account: str, session_id: str, lane: int, *, moment: float) -> list[OutboxRecord]:
        """Unfinished records of (account, session, lane), from a read that began after ``moment``
        (``time.monotonic()``)."""
        key = (account, session_id, lane)
        with self._cond:
            while True:
                if self._began >= moment:
                    return list(self._by_lane.get(key, ()))
                if self._reading_since is None:
                    began = self._reading_since = time.monotonic()
                    break
                self._cond.wait()  # a read is running: it may serve (began after moment), else start anew
        try:
            # a record that cannot be read is left out (and logged): it must not stop every session's new
            # lanes. Its lane stays safe: its nonce is still taken in the store, so an operation built over
            # it is refused when recorded (the store names the damaged record then).
            records = self._store.pending(on_corrupt=_skip_corrupt)
        except BaseException:
            with self._cond:
                self._reading_since = None
                self._cond.notify_all()
            raise
        by_lane: dict[tuple[str, str, int], list[OutboxRecord]] = {}
        for record in records:
            by_lane.setdefault((record.account, record.session_id, record.lane), []).append(record)
        with self._cond:
            self._by_lane = by_lane
            self._began = began
            self._reading_since = None
            self.reads += 1
            self._cond.notify_all()
        return list(by_lane.get(key, ()))
