"""Store-backed sending: many sessions, several worker processes or machines, one database.

::

    store = open_store("postgresql://app@db/keyscope", kek=kek)
    net = connect(node_url, bundler_url, module=MODULE)
    with SessionWorker(store, net) as worker:
        worker.recover()                               # finish what a dead worker left in flight
        sub = worker.send("order-8812", session_id, function_call(nft, "safeMint(address)", user))
        record = sub.wait()                            # included (record.success) or failed (record.error)

For each intent the worker loads the grant and the decrypted key from the store, refuses a session revoked
in the store or on chain, takes a nonce lane leased from the store, builds and signs the operation on it,
**records it in the outbox before sending it** (a write the store fences with the lane's lease: a worker
that lost its lane, say after a long pause, records nothing and sends nothing), and sends it. A background
thread follows every operation in flight until it is included or failed, renews the leases, resends an
operation a bundler lost (the same one, byte for byte), rebuilds an intent whose operation was displaced
(its nonce used by another operation, so it can never land), and writes each outcome to the outbox.
docs/scaling.md gives the protocol in full.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import (
    BadInputError,
    BundlerRejectedError,
    ConfigurationError,
    KeyscopeError,
    LeaseLostError,
    LimitPeriodEndingError,
    NonceTakenError,
    SessionError,
    SessionRevokedError,
    SessionStoreError,
    StoreLockedError,
    TransportError,
    shown,
)
from ..execution import CALLTYPE_BATCH, Call, ExecuteDecodeError, decode_execute
from ..grant import SessionGrant
from ..network import Network
from ..session_account import SessionAccount
from ..store import OutboxRecord, OutboxState, SessionStore
from ..store.base import check_intent_id, check_worker_id, normalize_session_id
from ..userop import UserOperation
from .events import EventLog
from .lanes import LanePool, LaneSlot, PendingSnapshots
from .probe import UNREACHABLE, Outcome, Prober, Verdict
from .results import BatchResult, Intent, RecoveryReport, Submission, Tracked

__all__ = ["SessionWorker"]

log = logging.getLogger("keyscope.worker")

_AUTO: Any = object()
_MAX_PROBES_PER_ROUND = 64
_REVOKED_CACHE_SECONDS = 2.0
_REVOKED_UNSENT = (
    "the session was revoked in the store: the operation was not sent (again) (if a bundler still holds a copy, "
    "it may land; revoke on chain to stop it)"
)

MAX_REBUILDS = 3
"""How many times one intent's operation may be displaced and rebuilt before the intent is failed."""

STEPS = ("signed", "recorded", "sent")
"""The steps of a send that ``on_step`` is told of: the operation is built and signed and the lane's lease
renewed (it is about to be recorded); it is recorded in the outbox (about to be sent); it was handed to the
bundler (or queued for sending)."""

StepHook = Callable[[str, str], None]
"""``on_step(step, intent_id)``: see :data:`STEPS`."""


@dataclass
class _Session:
    grant: SessionGrant
    account: SessionAccount
    key: tuple[str, str]
    deployed: bool = False
    checked_at: float = -1.0


def default_worker_id() -> str:
    """``host/pid/random``: unique per worker instance, readable in the store's lane table."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


class SessionWorker:
    """Sends session operations for many sessions, sharing a store with other workers.

    ``store`` holds keys, grants, lanes and the outbox (open it with the key-encryption key or passphrase to
    send; :meth:`recover` needs neither). ``network`` is the node and bundler. Options:

    * ``worker_id``: how this worker appears in lane leases (default ``host/pid/random``).
    * ``lease_ttl``: seconds a lane lease lasts unrenewed: a dead worker's lanes return after that long.
      Leases are renewed every third of it while held.
    * ``max_lanes``: lanes this worker holds at most per session (operations in flight per session).
    * ``idle_seconds``: a lane unused that long is given back.
    * ``resubmit_after``: seconds an operation may go unseen on chain before the bundler is asked about it
      (and it is sent again if the bundler lost it).
    * ``poll_interval``: seconds between two looks at the chain for inclusions.
    * ``retry_seconds``: how long :meth:`send` retries a node or bundler that cannot be reached before
      anything is recorded.
    * ``events``: the node's :class:`~keyscope.scale.events.EventLog` (default: from the network's node
      when it allows; None to follow operations through bundler receipts only).
    * ``verify_on_chain``: check before each build that the session is still active on chain.
    * ``clock``: unix seconds for the session window check (default: the chain's latest block time).
    * ``background``: follow operations in a background thread (default). With False nothing happens
      between calls: :meth:`poll` does one round, and :meth:`Submission.wait` polls while it waits (for a
      single-threaded host, or a node client that must not be shared between threads).
    * ``probe_threads``: threads that probe (and resend) operations overdue on chain, in the background.
    * ``on_step``: called as ``on_step(step, intent_id)`` at each step of a send (:data:`STEPS`), in the
      sending thread: for tracing, metrics and fault-injection tests. It must not raise.
    """

    def __init__(
        self,
        store: SessionStore,
        network: Network,
        *,
        worker_id: str | None = None,
        lease_ttl: float = 30.0,
        max_lanes: int = 4,
        idle_seconds: float = 60.0,
        resubmit_after: float = 10.0,
        poll_interval: float = 0.2,
        retry_seconds: float = 60.0,
        lane_timeout: float = 120.0,
        events: EventLog | None = _AUTO,
        verify_on_chain: bool = True,
        clock: Callable[[], float] | None = None,
        background: bool = True,
        probe_threads: int = 4,
        on_step: StepHook | None = None,
    ) -> None:
        if not isinstance(store, SessionStore):
            raise BadInputError(
                f"SessionWorker takes an open session store, got {type(store).__name__} {shown(store)}: open it "
                "first, keyscope.store.open_store(url, passphrase=...)"
            )
        if not isinstance(network, Network):
            raise BadInputError(
                f"SessionWorker sends through a network: give it keyscope.connect(node_url, bundler_url, module=...), "
                f"got {type(network).__name__} {shown(network)}"
            )
        for name, seconds, positive in (
            ("lease_ttl", lease_ttl, True),
            ("resubmit_after", resubmit_after, True),
            ("poll_interval", poll_interval, True),
            ("idle_seconds", idle_seconds, False),
            ("retry_seconds", retry_seconds, False),
            ("lane_timeout", lane_timeout, False),
        ):
            number = not isinstance(seconds, bool) and isinstance(seconds, (int, float))
            if not number or not (0 < seconds < math.inf if positive else seconds >= 0):
                what = "a positive, finite number" if positive else "a number (0 or more)"
                raise BadInputError(f"{name} must be {what} of seconds, got {shown(seconds)}")
        for name, count in (("max_lanes", max_lanes), ("probe_threads", probe_threads)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise BadInputError(f"{name} must be an int >= 1, got {shown(count)}")
        if worker_id is not None:
            check_worker_id(worker_id)
        self.store = store
        self.network = network
        self.worker_id = worker_id or default_worker_id()
        self.lease_ttl = lease_ttl
        self.resubmit_after = resubmit_after
        self.poll_interval = poll_interval
        self.retry_seconds = retry_seconds
        self.lane_timeout = lane_timeout
        self.verify_on_chain = verify_on_chain
        self._clock = clock
        self._on_step = on_step
        self.events = EventLog.for_network(network) if events is _AUTO else events
        self.prober = Prober(network, self.events)
        self.lanes = LanePool(
            store,
            self.worker_id,
            ttl=lease_ttl,
            max_lanes=max_lanes,
            idle_seconds=idle_seconds,
            adopt=self._adopt,
        )
        self._snapshots = PendingSnapshots(store)
        self._lock = threading.RLock()
        self._tracked: dict[str, Tracked] = {}
        self._sessions: dict[str, _Session] = {}
        self._revoked: dict[str, tuple[bool, float]] = {}
        self._marked_enabled: set[str] = set()
        """Sessions this worker knows the store has marked enabled (not asked again)."""
        self._stats: dict[str, int] = {}
        self._next_block: int | None = None
        if self.events is not None:
            try:  # inclusions are looked for from here on (earlier ones are found by probing)
                self._next_block = self.events.block_number()
            except KeyscopeError as exc:
                log.warning("reading the node's block number: %s", exc)
        self._stop = threading.Event()
        self._closed = False
        self._last_upkeep = 0.0
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None
        self._upkeep_thread: threading.Thread | None = None
        self._probes: ThreadPoolExecutor | None = None
        if background:
            # three kinds of background work, kept apart so that none waits for another: following
            # inclusions, probing overdue operations (node and bundler calls that may be slow), and
            # renewing leases (which must never be late, or other workers take the lanes)
            self._probes = ThreadPoolExecutor(max(1, probe_threads), thread_name_prefix="keyscope-probe")
            self._thread = threading.Thread(
                target=self._run, name=f"keyscope-follow {self.worker_id}", daemon=True
            )
            self._upkeep_thread = threading.Thread(
                target=self._run_upkeep, name=f"keyscope-lanes {self.worker_id}", daemon=True
            )
            self._thread.start()
            self._upkeep_thread.start()

    def __repr__(self) -> str:
        return f"SessionWorker({self.worker_id!r}, {self.store!r})"

    def __enter__(self) -> SessionWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -------------------------------------------------------------------------------------

    def send(
        self,
        intent_id: str,
        session_id: str | bytes,
        calls: Call | Sequence[Call],
        *,
        batch: bool | None = None,
        check: bool = True,
    ) -> Submission:
        """Send ``calls`` from session ``session_id``'s account, once per ``intent_id``.

        Returns when the operation is recorded in the outbox and handed to the bundler (or, the bundler being
        unreachable, recorded and queued for sending): :meth:`Submission.wait` gives the outcome. A retry of
        an intent already recorded returns its recorded operation, followed to its end, never a new one.

        An operation that another worker's record fences out (this worker lost the lane while it was built)
        is never recorded nor sent: the intent is built again on a lane this worker holds.

        Raises before anything is recorded, and only then: :class:`~keyscope.errors.SessionRevokedError`
        (revoked in the store or on chain), :class:`~keyscope.errors.PolicyViolationError` and the other
        :class:`~keyscope.errors.SessionError` s, :class:`~keyscope.errors.SessionStoreError` (unknown
        grant or key, store unreachable), :class:`~keyscope.errors.StoreLockedError` (no lane free within
        ``lane_timeout``), a bundler's rejection of the gas estimate, and
        :class:`~keyscope.errors.TransportError` after ``retry_seconds`` of unreachable node or bundler.
        Retrying the same intent after any of these is always safe.
        """
        self._check_open()
        intent = check_intent_id(intent_id)
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.2
        while True:
            try:
                return self._send_once(intent, session_id, calls, batch=batch, check=check)
            except (TransportError, BundlerRejectedError) as exc:
                if isinstance(exc, TransportError):
                    self._bundler_unreachable()
                transient = isinstance(exc, TransportError) or (
                    exc.reason is None and (exc.code in (0, -32603) or -32099 <= exc.code <= -32000)
                )
                if not transient or time.monotonic() + pause > deadline:
                    raise
                log.info("intent %s: %s; retrying", intent, exc)
            except (LeaseLostError, NonceTakenError) as exc:
                # nothing was recorded: the lane was lost (this worker was paused, say) or its next nonce
                # is another operation's until that one is finished; build again on a lane of its own
                if time.monotonic() + pause > deadline:
                    raise
                log.info("intent %s: %s; building again", intent, exc)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def send_many(
        self, intents: Sequence[Intent], *, concurrency: int = 8, timeout: float | None = 600.0
    ) -> BatchResult:
        """Send every intent (``concurrency`` at a time) and wait for all of them to be included or failed,
        for up to ``timeout`` seconds in all (None: for as long as it takes).

        An intent refused before anything was recorded is retried (the same intent: still at most one
        operation) while the failure looks temporary (store, node or bundler unreachable, or a limit period that
        ends too soon or has ended on an idle chain: :class:`~keyscope.errors.LimitPeriodEndingError`, the session
        going on); its last error is in :attr:`BatchResult.errors`. Intents refused for good (revoked, outside the
        policy) are not retried.
        """
        if concurrency < 1:
            raise BadInputError(f"concurrency must be >= 1, got {concurrency}")
        result = BatchResult()
        deadline = float("inf") if timeout is None else time.monotonic() + timeout

        def one(intent: Intent) -> Submission | Exception:
            pause = 0.5
            while True:
                try:
                    return self.send(intent.intent_id, intent.session_id, intent.calls, batch=intent.batch)
                except KeyscopeError as exc:
                    # a refusal is for good, but for LimitPeriodEndingError (a SessionError): the operation expires,
                    # not the session, and sent again it counts in the next period once the chain is in it
                    final = isinstance(exc, (SessionError, BadInputError, ConfigurationError))
                    if (
                        final and not isinstance(exc, LimitPeriodEndingError)
                    ) or time.monotonic() + pause > deadline:
                        return exc
                    log.info("intent %s: %s; sending again", intent.intent_id, exc)
                    time.sleep(pause)
                    pause = min(pause * 2, 5.0)

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="keyscope-send") as pool:
            outcomes = list(pool.map(one, intents))
        for intent, outcome in zip(intents, outcomes, strict=True):
            if isinstance(outcome, Exception):
                result.errors[intent.intent_id] = outcome
                continue
            try:
                left = None if timeout is None else max(0.0, deadline - time.monotonic())
                result.records[intent.intent_id] = outcome.wait(left)
            except KeyscopeError as exc:
                result.errors[intent.intent_id] = exc
        return result

    def recover(self, *, older_than: float | None = None, wait: float = 0.0) -> RecoveryReport:
        """Finish what was in flight, whichever worker recorded it: one pass over the outbox's pending
        records (``older_than``: only those untouched for that many seconds).

        For each: a receipt → marked included; the bundler lost it → the same signed operation is sent again
        (same userOpHash); built but never sent → sent; its nonce used by another operation (named by the
        node's log) → the intent is rebuilt as a new operation, which needs the session's key from the store
        (without it the record is left for a worker that has it). With ``wait`` > 0, follows those still
        unfinished for up to ``wait`` seconds and reports their outcomes. Builds and signs nothing else. A
        record the store cannot read is logged, reported as unreadable and left as it is; the pass goes on.
        """
        self._check_open()
        report = RecoveryReport()
        followed: list[Tracked] = []

        def unreadable(name: str, error: SessionStoreError) -> None:
            problem = " ".join(str(error).split())
            log.warning("recover: outbox record %s is unreadable, left as it is: %s", name, problem)
            report.unreadable[name] = problem

        for record in self.store.pending(older_than=older_than, on_corrupt=unreadable):
            with self._lock:
                mine = record.user_op_hash in self._tracked
            if mine:
                report.skipped.append(record.intent_id)
                continue
            tracked = Tracked(record, None, time.monotonic())
            outcome = self._probe(tracked)
            self._count(f"recover_{outcome.verdict.value}")
            if outcome.verdict is Verdict.DISPLACED:
                with self._lock:
                    self._tracked.setdefault(record.user_op_hash, tracked)
                rebuilt = self._rebuild(tracked, outcome)
                if rebuilt:
                    report.rebuilt.append(record.intent_id)
                if tracked.done.is_set():
                    assert tracked.final is not None
                    self._file_record(report, tracked.final)
                elif wait > 0:
                    followed.append(tracked)
                else:
                    done = "rebuilt and sent" if rebuilt else "to be rebuilt"
                    report.waiting[record.intent_id] = f"displaced ({outcome.reason}): {done}"
                continue
            if outcome.final:
                self._finish(tracked, outcome)
                self._file(report, record.intent_id, outcome)
                continue
            if outcome.verdict is Verdict.SENT:
                self._save_sent(tracked)
                if not outcome.reason:  # accepted again: the bundler had lost it (or never had it)
                    report.resent.append(record.intent_id)
                    self._count("resent")
            if wait > 0:
                followed.append(self._follow(tracked, outcome))
            else:
                report.waiting[record.intent_id] = outcome.reason or "sent again"
        deadline = time.monotonic() + wait
        for tracked in followed:
            while not tracked.done.is_set() and time.monotonic() < deadline:
                if self._thread is None:
                    self._pump()
                else:
                    tracked.done.wait(max(0.0, deadline - time.monotonic()))
            if tracked.final is None:
                report.waiting[tracked.record.intent_id] = "still unfinished after the wait"
            else:
                self._file_record(report, tracked.final)
        return report

    def in_flight(self) -> int:
        """Operations this worker follows now."""
        with self._lock:
            return sum(1 for t in self._tracked.values() if not t.done.is_set())

    def stats(self) -> dict[str, int]:
        """Counters since start: ``built`` (operations recorded), ``first_<verdict>`` (outcome of their first
        send), ``probe_<verdict>`` and ``recover_<verdict>`` (probes by the background and by
        :meth:`recover`), ``resent`` (sent again after a bundler lost them), ``included``, ``failed``,
        ``adopted`` (found on a newly leased lane), ``resumed`` (intents retried), ``fenced`` (a record
        refused because the lane's lease was lost meanwhile: nothing sent), ``nonce_taken`` (a record refused
        because its nonce was another's), ``displaced`` and ``rebuilt`` (operations found displaced, intents
        built again), ``outbox_scans``, ``lanes_leased``, ``lanes_lost`` (reclaimed by others) and
        ``lanes_held``."""
        with self._lock:
            out = dict(self._stats)
        out["outbox_scans"] = self._snapshots.reads
        out["lanes_leased"] = self.lanes.leased
        out["lanes_lost"] = self.lanes.lost
        out["lanes_held"] = self.lanes.held()
        return out

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is in flight here (True), or ``timeout`` seconds (False)."""
        deadline = time.monotonic() + timeout
        while self.in_flight():
            if time.monotonic() > deadline:
                return False
            self._pump()
        return True

    def poll(self) -> None:
        """One round of following, for ``background=False``: lease upkeep and outcomes the store could not
        take before (at most once a second), inclusions seen on chain, due probes and resends."""
        with self._round:
            now = time.monotonic()
            if now - self._last_upkeep >= 1.0:
                self.lanes.upkeep()
                self._housekeeping()
                self._last_upkeep = now
            self._see_inclusions()
            for tracked in self._due():
                self._probe_one(tracked)

    @property
    def _pump_for_wait(self) -> Callable[[], None] | None:
        return None if self._thread is not None else self._pump

    def _pump(self) -> None:
        """Let time pass for an operation to progress: a poll round without the background thread."""
        if self._thread is None:
            self.poll()
        time.sleep(self.poll_interval if self._thread is None else 0.05)

    def close(self, *, timeout: float = 30.0) -> None:
        """Wait up to ``timeout`` seconds for operations in flight, write outcomes, give the lanes back and
        stop. Whatever is still unfinished stays in the outbox for :meth:`recover` or the lane's next
        holder."""
        if self._closed:
            return
        self.drain(timeout)
        self._closed = True
        self._stop.set()
        for thread in (self._thread, self._upkeep_thread):
            if thread is not None:
                thread.join(timeout=max(5.0, self.poll_interval * 10))
        if self._probes is not None:
            self._probes.shutdown(wait=True, cancel_futures=True)
        self._save_unsaved()
        self.lanes.release_all()

    # -- sending ----------------------------------------------------------------------------------------

    def _send_once(
        self,
        intent: str,
        session_id: str | bytes,
        calls: Call | Sequence[Call],
        *,
        batch: bool | None,
        check: bool,
    ) -> Submission:
        existing = self.store.get_by_intent(intent)
        if existing is not None:
            _require_same_session(existing, session_id)
            return self._resume(existing)
        session = self._session(session_id)
        name = session.key[1]
        if self.store.is_revoked(name):
            raise SessionRevokedError(
                f"session {name} is revoked in the store {self.store.url}: every worker refuses it; ask the owner "
                "for a new session",
                name,
            )
        if check:
            # the policy, then what the SDK refuses before sending beside it (calldata to an address without
            # code, a co-signed session this worker cannot co-sign), in build's order, before a lane is leased:
            # a refusal holds nothing, in this worker or in the store
            session.account.check(calls, batch=batch)
            session.account.refuse_unsendable(calls)
        slot = self.lanes.acquire(
            session.key,
            timeout=self.lane_timeout,
            lane_zero_only=lambda: self._must_create(session),
            idle=self._pump_for_wait,
        )
        recorded = False
        try:
            try:
                # checked again as the SDK checks before sending: what only the built operation shows (its gas
                # against the session's gas budget) and what only the first use of an off-chain grant asks (the
                # module's dry run of the enabling), refused before anything is recorded
                op = session.account.build(calls, batch=batch, check=check, lane=slot.lane)
            except SessionRevokedError:
                self._note_revoked(name)
                raise
            if check:  # again, on the state build read (a co-signer given back meanwhile): nothing recorded
                session.account.refuse_unsendable(calls)
            op_hash = self.prober.user_op_hash(op)
            self.lanes.confirm(slot)  # renewed: the record below is very likely to find the lease held
            self._step("signed", intent)
            record = self._record(intent, session, slot, op, op_hash)
            if record.user_op_hash != op_hash:
                # another worker recorded this intent first: ours was never recorded, so never sent
                _require_same_session(record, session_id)
                return self._resume(record)
            recorded = True
            tracked = self._track(record, slot)
        finally:
            if not recorded and not slot.lost:
                self.lanes.unreserve(slot)
        self._count("built")
        self._step("recorded", intent)
        # the session may have been revoked in the store while the operation was built and recorded: the
        # revoked flag is read again now, right before the first send, and a revoked session's operation is
        # failed unsent
        outcome = self._unsent_if_revoked(tracked.record) or self.prober.submit(tracked.record)
        self._count(f"first_{outcome.verdict.value}")
        self._apply(tracked, outcome)
        self._step("sent", intent)
        return Submission(tracked, resumed=False, pump=self._pump_for_wait)

    def _record(
        self, intent: str, session: _Session, slot: LaneSlot, op: UserOperation, op_hash: str
    ) -> OutboxRecord:
        """Record ``op`` on ``slot``'s lane, fenced by its lease: the store writes it only while this worker
        still holds the lane. The slot is given up when the write was refused or its result is unknown."""
        try:
            return self.store.record_intent(
                intent, session.grant.account, session.key[1], slot.lane, op, op_hash, lease=slot.lease
            )
        except LeaseLostError:
            # fenced: another worker holds the lane now (this one was too slow to renew, or paused); the
            # operation was not recorded and is never sent
            self._count("fenced")
            self.lanes.lose(slot)
            raise
        except NonceTakenError:
            self._count("nonce_taken")
            self.lanes.discard(slot)
            raise
        except SessionStoreError:
            # perhaps recorded, perhaps not: the lane may carry this operation now. Give it up; its next
            # holder (maybe this worker) looks for an unfinished operation on it before using it.
            self.lanes.discard(slot)
            raise

    def _step(self, step: str, intent: str) -> None:
        if self._on_step is not None:
            self._on_step(step, intent)

    def _resume(self, record: OutboxRecord) -> Submission:
        """Follow an intent recorded before (by any worker): at once if finished, else probe it now."""
        self._count("resumed")
        with self._lock:
            tracked = self._tracked.get(record.user_op_hash)
            if tracked is None:
                tracked = Tracked(record, None, time.monotonic())
                if record.is_pending:
                    self._tracked[record.user_op_hash] = tracked
        if not record.is_pending and tracked.final is None:
            tracked.close(record)
        return Submission(tracked, resumed=True, pump=self._pump_for_wait)

    def _session(self, session_id: str | bytes) -> _Session:
        name = normalize_session_id(session_id)
        with self._lock:
            cached = self._sessions.get(name)
        if cached is not None:
            return cached
        grant = self.store.get_grant(name)
        key = self.store.get_key(grant.session_key)
        account = SessionAccount(
            grant, key, network=self.network, clock=self._clock, verify_on_chain=self.verify_on_chain
        )
        session = _Session(grant, account, (grant.account, name), deployed=grant.factory is None)
        with self._lock:
            return self._sessions.setdefault(name, session)

    def _must_create(self, session: _Session) -> bool:
        """Whether the session's next operation must create the account (then only lane 0 is used); the
        node is asked at most twice a second per session."""
        if session.deployed:
            return False
        now = time.monotonic()
        if now - session.checked_at < 0.5:
            return True
        session.checked_at = now
        if self.network.is_deployed(session.grant.account):
            session.deployed = True
            return False
        return True

    def _note_revoked(self, session_id: str) -> None:
        """The chain says the session is dead: tell every worker through the store."""
        try:
            self.store.mark_revoked(session_id)
        except SessionStoreError as exc:
            log.warning("marking session %s revoked in the store: %s", session_id, exc)

    def _revoked_in_store(self, session_id: str, *, fresh: bool = False) -> bool | None:
        """Whether the session is revoked in the store: read at most every ``_REVOKED_CACHE_SECONDS``, or now
        with ``fresh``; None when the store cannot be read (unknown: nothing may be sent on it)."""
        now = time.monotonic()
        with self._lock:
            cached = self._revoked.get(session_id)
        if not fresh and cached is not None and now - cached[1] < _REVOKED_CACHE_SECONDS:
            return cached[0]
        try:
            revoked = self.store.is_revoked(session_id)
        except SessionStoreError as exc:
            log.warning("whether session %s is revoked cannot be read from the store: %s", session_id, exc)
            return None
        with self._lock:
            self._revoked[session_id] = (revoked, now)
        return revoked

    # -- following operations ----------------------------------------------------------------------------

    def _track(self, record: OutboxRecord, slot: LaneSlot | None) -> Tracked:
        """Follow a record about to be sent for the first time: its first probe is ``resubmit_after`` away."""
        with self._lock:
            tracked = self._tracked.get(record.user_op_hash)
            if tracked is None:
                tracked = Tracked(record, slot, time.monotonic() + self.resubmit_after)
                self._tracked[record.user_op_hash] = tracked
            elif slot is not None:
                tracked.slot = slot
        if slot is not None:
            self.lanes.occupy(slot, record.user_op_hash)
        return tracked

    def _follow(self, tracked: Tracked, outcome: Outcome) -> Tracked:
        """Hand an operation probed outside the tracker (by :meth:`recover`) to the tracker."""
        with self._lock:
            existing = self._tracked.get(tracked.record.user_op_hash)
            if existing is not None:
                return existing
            self._tracked[tracked.record.user_op_hash] = tracked
        self._schedule(tracked, outcome, time.monotonic())
        return tracked

    def _adopt(self, slot: LaneSlot) -> None:
        """A lane just leased may carry an unfinished operation of its previous holder (a worker that died or
        lost its lease): follow it, and keep the lane busy until it is finished. Only then is the lane's next
        nonce known."""
        lease = slot.lease
        unfinished = self._snapshots.on_lane(
            lease.account, lease.session_id, lease.lane, moment=slot.renewed_at
        )
        for record in unfinished:
            with self._lock:
                tracked = self._tracked.get(record.user_op_hash)
                if tracked is not None and tracked.done.is_set():
                    continue  # finished here since the outbox was read
                if tracked is None:
                    tracked = Tracked(record, slot, time.monotonic())
                    self._tracked[record.user_op_hash] = tracked
                tracked.slot = slot
                tracked.next_probe = time.monotonic()
            slot.busy.add(record.user_op_hash)
            self._count("adopted")
            log.info(
                "lane %d of %s/%s carries unfinished intent %s (%s): following it first",
                lease.lane,
                lease.account,
                lease.session_id,
                record.intent_id,
                record.user_op_hash,
            )

    def _apply(self, tracked: Tracked, outcome: Outcome) -> None:
        """Act on a probe's or a send's outcome."""
        now = time.monotonic()
        if outcome.verdict is Verdict.DISPLACED:
            self._rebuild(tracked, outcome)
            return
        if outcome.final:
            self._finish(tracked, outcome)
            return
        if outcome.verdict is Verdict.SENT:
            self._save_sent(tracked)
        self._schedule(tracked, outcome, now)

    def _schedule(self, tracked: Tracked, outcome: Outcome, now: float) -> None:
        if outcome.verdict is Verdict.SENT:
            # a bundler holds it: ask again after resubmit_after, then less and less often while it keeps it
            tracked.held += 1
            tracked.next_probe = now + self.resubmit_after * min(2 ** (tracked.held - 1), 4)
            tracked.backoff = 0.5
        else:  # waiting: ask again soon, then less often
            if outcome.reason.startswith(UNREACHABLE):
                self._bundler_unreachable()
            tracked.next_probe = now + tracked.backoff
            tracked.backoff = min(tracked.backoff * 2, self.resubmit_after)
            if outcome.reason:
                log.info(
                    "%s (intent %s): %s",
                    tracked.record.user_op_hash,
                    tracked.record.intent_id,
                    outcome.reason,
                )

    def _bundler_unreachable(self) -> None:
        """The bundler did not answer: it may be restarting, its mempool lost. Every operation it was found
        holding is probed again within ``resubmit_after``, not after a long back-off."""
        horizon = time.monotonic() + self.resubmit_after
        with self._lock:
            for tracked in self._tracked.values():
                if tracked.held:
                    tracked.held = 0
                    tracked.next_probe = min(tracked.next_probe, horizon)

    def _probe(self, tracked: Tracked) -> Outcome:
        """The prober's answer, except that an operation of a session revoked in the store is never sent
        again: unless it landed, it is failed."""
        record = tracked.record
        if self._revoked_in_store(record.session_id) is not True:
            # the cached answer may be old (or the store unreadable): it is read again right before anything is
            # sent
            return self.prober.probe(record, may_send=lambda: self._unsent_if_revoked(record))
        found = self.prober.receipt(record.user_op_hash, record.op)
        if found is not None:
            return found
        try:
            used = self.prober.nonce_used(record.op)
        except KeyscopeError as exc:
            return Outcome(Verdict.WAITING, reason=f"the node cannot be asked: {exc}")
        if used:
            return self.prober.settle_used(record)
        return Outcome(Verdict.FAILED, reason=_REVOKED_UNSENT)

    def _unsent_if_revoked(self, record: OutboxRecord) -> Outcome | None:
        """Right before ``record``'s operation is sent (for the first time or again): FAILED when its session
        is revoked in the store now (read afresh, not from the cache), WAITING when the store cannot tell (a
        revocation there must hold through an outage: the operation is sent once it can be read and says no),
        else None (send it)."""
        revoked = self._revoked_in_store(record.session_id, fresh=True)
        if revoked is None:
            return Outcome(
                Verdict.WAITING,
                reason="whether its session is revoked cannot be read from the store: not sent until it can",
            )
        if revoked:
            return Outcome(Verdict.FAILED, reason=_REVOKED_UNSENT)
        return None

    # -- displaced operations -------------------------------------------------------------------------------

    def _rebuild(self, tracked: Tracked, outcome: Outcome) -> bool:
        """``tracked``'s operation was displaced: another operation (``outcome.consumer``, named by the
        chain's event) used its nonce, so it can never execute, and its intent is not done. Build the
        intent's calls again as a new operation on a lane this worker holds, record it in place of the
        displaced one (fenced by the lease, and once: the store swaps it only while the intent still holds
        the displaced operation) and send it. Returns whether this worker rebuilt it.

        Only a reason of the intent's own fails it here: its session revoked or expired, its calls refused by
        the policy (or displaced :data:`MAX_REBUILDS` times over). Anything else (no lane free, the store or
        the node unreachable, no key in this worker's store) is tried again at the next probe."""
        with self._lock:
            if tracked.rebuilding or tracked.done.is_set():
                return False
            tracked.rebuilding = True
        old = tracked.record
        try:
            self.lanes.vacate(old.user_op_hash)  # its nonce is used: its lane may take the next operation
            self._count("displaced")
            log.warning(
                "%s (intent %s): %s; building it again", old.user_op_hash, old.intent_id, outcome.reason
            )
            current = self._current(old)
            if current is not None and current.user_op_hash != old.user_op_hash:
                self._switch(tracked, current, None)  # another worker rebuilt it first
                return False
            if old.rebuilds >= MAX_REBUILDS:
                reason = f"{outcome.reason}; displaced {old.rebuilds + 1} times: not built again"
                self._finish(tracked, Outcome(Verdict.FAILED, reason=reason))
                return False
            try:
                record, slot = self._build_again(old)
            except LimitPeriodEndingError as exc:
                # the operation would expire with its limit period, not the session: built again later
                log.info("building intent %s again: %s; trying again later", old.intent_id, exc)
                tracked.next_probe = time.monotonic() + max(tracked.backoff, 1.0)
                tracked.backoff = min(tracked.backoff * 2, self.resubmit_after)
                return False
            except (SessionError, ExecuteDecodeError) as exc:
                # the intent's own reason: revoked, expired, refused by the policy, or not a session's call
                reason = f"{outcome.reason}; it cannot be built again: {exc}"
                self._finish(tracked, Outcome(Verdict.FAILED, reason=reason))
                return False
            except KeyscopeError as exc:
                log.warning("building intent %s again: %s; trying again later", old.intent_id, exc)
                tracked.next_probe = time.monotonic() + max(tracked.backoff, 1.0)
                tracked.backoff = min(tracked.backoff * 2, self.resubmit_after)
                return False
            self._switch(tracked, record, slot)
        finally:
            tracked.rebuilding = False
        if slot is None:
            return False  # rebuilt by another worker meanwhile, or it landed after all: followed as it is
        self._count("rebuilt")
        if outcome.consumer is not None:
            consumer = outcome.consumer
            self._credit(consumer.user_op_hash, consumer.tx_hash, consumer.success)
        sent = self._unsent_if_revoked(tracked.record) or self.prober.submit(tracked.record)
        self._count(f"first_{sent.verdict.value}")
        self._apply(tracked, sent)
        return True

    def _build_again(self, old: OutboxRecord) -> tuple[OutboxRecord, LaneSlot | None]:
        """Build ``old``'s calls again on a lane of this worker and record the new operation in its place.
        Returns the intent's record and the slot when the new operation is the intent's now (else the
        record as another worker left it, and None)."""
        session = self._session(old.session_id)
        name = session.key[1]
        if self.store.is_revoked(name):
            raise SessionRevokedError(f"session {name} is revoked in the store {self.store.url}", name)
        decoded = decode_execute(old.op.call_data)
        calls, batch = list(decoded.calls), decoded.call_type == CALLTYPE_BATCH
        # what build refuses, asked before a lane is leased (as send does): a refusal holds no lane
        try:
            session.account.check(calls, batch=batch)
        except SessionRevokedError:
            self._note_revoked(name)
            raise
        session.account.refuse_unsendable(calls)
        # no idle pump here: this may run inside a poll round, which must not be entered again
        slot = self.lanes.acquire(
            session.key, timeout=self.lane_timeout, lane_zero_only=lambda: self._must_create(session)
        )
        mine = False
        try:
            try:
                op = session.account.build(calls, batch=batch, lane=slot.lane)  # checked as send checks
            except SessionRevokedError:
                self._note_revoked(name)
                raise
            # again, on the state build read (a co-signer given back meanwhile)
            session.account.refuse_unsendable(calls)
            if op.call_data != old.op.call_data:
                raise SessionError(
                    f"the calls of intent {old.intent_id} encode differently when built again "
                    f"(0x{old.op.call_data.hex()[:16]}…): it is not rebuilt",
                    name,
                )
            op_hash = self.prober.user_op_hash(op)
            self.lanes.confirm(slot)
            try:
                record = self.store.rebuild_intent(
                    old.intent_id, old.user_op_hash, slot.lane, op, op_hash, lease=slot.lease
                )
            except LeaseLostError:
                self._count("fenced")
                self.lanes.lose(slot)
                raise
            except SessionStoreError:  # the nonce another's, or unknown whether written: give the lane up
                self.lanes.discard(slot)
                raise
            mine = record.user_op_hash == op_hash
        finally:
            if not mine and not slot.lost:
                self.lanes.unreserve(slot)
        return record, slot if mine else None

    def _switch(self, tracked: Tracked, record: OutboxRecord, slot: LaneSlot | None) -> None:
        """Follow ``record``, the intent's operation now, in place of ``tracked``'s displaced one (on
        ``slot`` when this worker holds its lane)."""
        with self._lock:
            previous = tracked.record.user_op_hash
            if self._tracked.get(previous) is tracked:
                del self._tracked[previous]
            tracked.record = record
            tracked.slot = slot
            tracked.held = 0
            tracked.backoff = 0.5
            tracked.next_probe = time.monotonic() + (self.resubmit_after if slot is not None else 0.0)
            if not record.is_pending:
                tracked.close(record)
                return
            existing = self._tracked.setdefault(record.user_op_hash, tracked)
            if existing is not tracked:  # followed here already (a retried intent): finish together
                existing.followers.append(tracked)
        if slot is not None:
            self.lanes.occupy(slot, record.user_op_hash)

    def _finish(self, tracked: Tracked, outcome: Outcome) -> None:
        with self._lock:
            if tracked.done.is_set() or tracked.final is not None:
                return  # finished already (by the other thread)
            final = tracked.settle(outcome, time.time())
        self._count(outcome.verdict.value)
        tracked.unsaved = outcome
        self._save_outcome(tracked)
        self.lanes.vacate(tracked.record.user_op_hash)
        tracked.close(tracked.final or final)
        if outcome.verdict is Verdict.INCLUDED:
            self._mark_enabled(final.session_id)
        if outcome.consumer is not None:
            self._credit(outcome.consumer.user_op_hash, outcome.consumer.tx_hash, outcome.consumer.success)

    def _mark_enabled(self, session_id: str) -> None:
        """Record in the store that session ``session_id`` is enabled on chain: one of its operations was
        included, so the module validated it (an off-chain grant's first operation enables it in validation,
        which stays done when the call then reverts). Judged by the inclusion, never by the signature's bytes,
        which an account's adapter may frame."""
        if session_id in self._marked_enabled:
            return
        try:
            if not self.store.is_enabled(session_id):
                self.store.mark_enabled(session_id)
        except SessionStoreError as exc:
            log.warning("marking session %s enabled: %s", session_id, exc)
            return
        self._marked_enabled.add(session_id)

    def _credit(self, user_op_hash: str, tx_hash: str, success: bool) -> None:
        """The operation that took a failed one's nonce: if the outbox has it unfinished or failed, it landed."""
        try:
            other = self.store.get_by_hash(user_op_hash)
            if other is not None and other.state is not OutboxState.INCLUDED:
                self.store.mark_included(user_op_hash, tx_hash, success)
        except SessionStoreError as exc:
            log.warning("marking %s included: %s", user_op_hash, exc)
            return
        if other is not None:
            self._mark_enabled(other.session_id)

    # -- writing to the store (which may be down for a while) ----------------------------------------------

    def _save_sent(self, tracked: Tracked) -> None:
        try:
            tracked.record = self.store.mark_sent(tracked.record.user_op_hash)
        except SessionStoreError as exc:
            # the operation is with the bundler either way; the record says "built" until it is finished
            log.warning("marking %s sent: %s", tracked.record.user_op_hash, exc)

    def _save_outcome(self, tracked: Tracked) -> bool:
        outcome = tracked.unsaved
        if outcome is None:
            return True
        op_hash = tracked.record.user_op_hash
        try:
            if outcome.verdict is Verdict.INCLUDED:
                assert outcome.tx_hash is not None and outcome.success is not None
                saved = self.store.mark_included(op_hash, outcome.tx_hash, outcome.success)
            else:
                saved = self.store.mark_failed(op_hash, outcome.reason)
        except StoreLockedError as exc:
            log.warning("writing the outcome of %s: %s", op_hash, exc)
            return False
        except SessionStoreError as exc:
            current = self._reread(op_hash)
            if current is None and self._replaced(tracked.record):
                log.info("%s (intent %s) was rebuilt by another worker", op_hash, tracked.record.intent_id)
                tracked.unsaved = None
                return True
            if current is None or current.is_pending:
                log.warning("writing the outcome of %s: %s; will retry", op_hash, exc)
                return False
            saved = current  # someone else wrote the outcome first
        tracked.final = saved
        tracked.unsaved = None
        return True

    def _reread(self, op_hash: str) -> OutboxRecord | None:
        try:
            return self.store.get_by_hash(op_hash)
        except SessionStoreError:
            return None

    def _current(self, record: OutboxRecord) -> OutboxRecord | None:
        """The intent's record as the store has it now (None when it cannot be read)."""
        try:
            return self.store.get_by_intent(record.intent_id)
        except SessionStoreError:
            return None

    def _replaced(self, record: OutboxRecord) -> bool:
        """Whether the intent's operation is no longer ``record``'s (it was displaced and rebuilt)."""
        current = self._current(record)
        return current is not None and current.user_op_hash != record.user_op_hash

    def _save_unsaved(self) -> None:
        with self._lock:
            waiting = [t for t in self._tracked.values() if t.unsaved is not None]
        for tracked in waiting:
            self._save_outcome(tracked)

    # -- the background thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        """The following thread: inclusions every ``poll_interval``, due probes handed to the probe pool."""
        last_housekeeping = 0.0
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._see_inclusions()
                assert self._probes is not None
                for tracked in self._due():
                    tracked.probing = True
                    self._probes.submit(self._probe_one, tracked)
                if began - last_housekeeping >= 1.0:
                    self._housekeeping()
                    last_housekeeping = began
            except Exception:  # the thread must survive anything: log it and go on
                log.exception("worker %s: following round failed", self.worker_id)
            self._stop.wait(max(0.0, self.poll_interval - (time.monotonic() - began)))

    def _run_upkeep(self) -> None:
        """The lanes thread: renew leases, give back idle lanes, once a second (more often for a short
        ``lease_ttl``: a lease is renewed when a third of it has gone)."""
        while not self._stop.wait(min(1.0, self.lease_ttl / 6)):
            try:
                self.lanes.upkeep()
            except Exception:
                log.exception("worker %s: lane upkeep failed", self.worker_id)

    def _housekeeping(self) -> None:
        self._save_unsaved()
        self._forget_finished()

    def _unfinished(self) -> list[Tracked]:
        with self._lock:
            return [t for t in self._tracked.values() if not t.done.is_set()]

    def _see_inclusions(self) -> None:
        if self.events is None:
            self._poll_receipts(self._unfinished())
            return
        try:
            latest = self.events.block_number()
            if self._next_block is None:
                self._next_block = max(0, latest - 1)
            if latest < self._next_block:
                return
            found = self.events.events(self._next_block, latest)
        except KeyscopeError as exc:
            log.warning("reading the chain's UserOperationEvents: %s", exc)
            return
        self._next_block = latest + 1
        if not found:
            return
        with self._lock:
            by_hash = {event.user_op_hash: self._tracked.get(event.user_op_hash) for event in found}
        for event in found:
            tracked = by_hash.get(event.user_op_hash)
            if tracked is not None and not tracked.done.is_set():
                self._finish(tracked, Outcome(Verdict.INCLUDED, event.tx_hash, event.success))

    def _poll_receipts(self, unfinished: list[Tracked]) -> None:
        now = time.monotonic()
        for tracked in unfinished:
            if tracked.next_receipt > now:
                continue
            found = self.prober.receipt(tracked.record.user_op_hash, tracked.record.op)
            if found is not None:
                self._finish(tracked, found)
            else:
                tracked.receipt_interval = min(tracked.receipt_interval * 1.5, 1.0)
                tracked.next_receipt = now + tracked.receipt_interval

    def _due(self) -> list[Tracked]:
        """Unfinished operations whose probe is due and not already running, most overdue first."""
        now = time.monotonic()
        due = [t for t in self._unfinished() if t.next_probe <= now and not t.probing]
        due.sort(key=lambda t: t.next_probe)
        return due[:_MAX_PROBES_PER_ROUND]

    def _probe_one(self, tracked: Tracked) -> None:
        try:
            if self._stop.is_set() or tracked.done.is_set():
                return
            outcome = self._probe(tracked)
            self._count(f"probe_{outcome.verdict.value}")
            if outcome.verdict is Verdict.SENT and not outcome.reason:
                self._count("resent")
            if not tracked.done.is_set():
                self._apply(tracked, outcome)
        except Exception:
            log.exception("probing %s", tracked.record.user_op_hash)
            tracked.next_probe = time.monotonic() + tracked.backoff
        finally:
            tracked.probing = False

    def _forget_finished(self) -> None:
        """Drop finished operations whose outcome is written (their Submissions keep their own reference)."""
        with self._lock:
            for op_hash in [h for h, t in self._tracked.items() if t.done.is_set() and t.unsaved is None]:
                del self._tracked[op_hash]

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._stats[name] = self._stats.get(name, 0) + amount

    @staticmethod
    def _file_record(report: RecoveryReport, record: OutboxRecord) -> None:
        if record.state is OutboxState.INCLUDED:
            report.included.append(record.intent_id)
        else:
            report.failed[record.intent_id] = record.error or ""

    @staticmethod
    def _file(report: RecoveryReport, intent_id: str, outcome: Outcome) -> None:
        if outcome.verdict is Verdict.INCLUDED:
            report.included.append(intent_id)
        else:
            report.failed[intent_id] = outcome.reason

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this SessionWorker is closed: create a new one")


def _require_same_session(record: OutboxRecord, session_id: str | bytes) -> None:
    """Refuse an intent id recorded for another session: intent ids are one per store, whichever session sends,
    and following the other session's operation would report this intent done while nothing of it was sent."""
    wanted = normalize_session_id(session_id)
    if record.session_id.lower() != wanted.lower():
        raise BadInputError(
            f"intent {record.intent_id!r} is already recorded for session {record.session_id} of {record.account} "
            f"(state {record.state.value}), not for session {wanted}: an intent id names one intent in the whole "
            "store, whichever session sends it; give this intent an id of its own (with the user or session in it), "
            "nothing was sent for it"
        )
