"""The shared stores under several OS processes at once: SQLite and PostgreSQL (and the file store, which
locks its folder with ``flock``).

Workers are separate processes (``spawn``: nothing shared but the database), released together at one
instant so that their transactions really overlap. Python 3.10+ (``itertools.pairwise``).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import astuple
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from keyscope.errors import LeaseLostError, NonceTakenError, StoreLockedError
from keyscope.grant import SessionGrant
from keyscope.hexutil import keccak, to_address
from keyscope.session import Permission, Session
from keyscope.store import Lease, SessionStore, open_store
from keyscope.store.schema import LATEST_VERSION
from keyscope.userop import UserOperation
from support.postgres import postgres_fixture

postgres_server = postgres_fixture(scope="module")

WORKERS = 6
KEK = bytes(range(32))
ACCOUNT = to_address("0x" + "a1" * 20)
MODULE = to_address("0x" + "d4" * 20)
SESSION = "0x" + "5e" * 32
SHARED = ["file", "sqlite", "postgresql"]


# --------------------------------------------------------------------------------------------------
# Worker side: top-level functions, run in the pool's processes
# --------------------------------------------------------------------------------------------------


def _open(url: str) -> SessionStore:
    secret: dict[str, Any] = {} if url.startswith("file:") else {"kek": KEK}
    return open_store(url, **secret)


def _wait_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def ready() -> int:
    """Warm a worker up (imports done); returns its pid."""
    return os.getpid()


def open_and_lease(url: str, worker: str, count: int, start_at: float) -> list[tuple[int, str]]:
    """Open the (possibly brand-new) store at ``start_at`` and keep ``count`` leases."""
    _wait_until(start_at)
    store = _open(url)
    try:
        return [
            (lease.lane, lease.lease_id)
            for lease in (store.lease_lane(ACCOUNT, SESSION, f"{worker}/{n}", 300) for n in range(count))
        ]
    finally:
        store.close()


def churn(url: str, worker: str, rounds: int, start_at: float) -> list[tuple[int, float, float]]:
    """Lease, hold briefly, release, ``rounds`` times; returns (lane, held from, held until) per round.

    The recorded span starts after the lease is taken and ends before it is released, so it lies inside the
    real lease: if two spans on one lane overlap, two live leases shared the lane.
    """
    store = _open(url)
    spans = []
    try:
        _wait_until(start_at)
        for n in range(rounds):
            lease = store.lease_lane(ACCOUNT, SESSION, f"{worker}/{n}", 60)
            held_from = time.time()
            time.sleep(random.uniform(0, 0.004))
            held_until = time.time()
            assert store.release_lease(lease)
            spans.append((lease.lane, held_from, held_until))
    finally:
        store.close()
    return spans


def record_intents(url: str, worker: int, intents: list[str], start_at: float) -> dict[str, tuple[str, int]]:
    """Record every intent (in a random order) with this worker's own operation; returns what the store kept."""
    store = _open(url)
    kept = {}
    try:
        order = list(intents)
        random.Random(worker).shuffle(order)
        _wait_until(start_at)
        for intent in order:
            # one nonce per (intent, worker): the intent's number above the worker's
            nonce = (int(intent.rsplit("-", 1)[1]) << 8) | worker
            op = UserOperation(sender=ACCOUNT, nonce=nonce, call_data=intent.encode())
            op_hash = keccak(f"{intent}/{worker}".encode())
            record = store.record_intent(intent, ACCOUNT, SESSION, 0, op, op_hash)
            kept[intent] = (record.user_op_hash, record.op.nonce)
    finally:
        store.close()
    return kept


def record_nonces(url: str, worker: int, nonces: list[int], start_at: float) -> dict[int, bool]:
    """Record one intent of this worker's per nonce (in a random order); returns, per nonce, whether this
    worker's record was the one kept."""
    store = _open(url)
    kept = {}
    try:
        order = list(nonces)
        random.Random(worker).shuffle(order)
        _wait_until(start_at)
        for nonce in order:
            op = UserOperation(sender=ACCOUNT, nonce=nonce, call_data=bytes([worker]))
            try:
                store.record_intent(
                    f"n{nonce}/w{worker}", ACCOUNT, SESSION, 0, op, keccak(f"{nonce}/{worker}".encode())
                )
                kept[nonce] = True
            except NonceTakenError:
                kept[nonce] = False
    finally:
        store.close()
    return kept


def record_under_lease(url: str, lease: tuple[Any, ...], start_at: float, give_up_at: float) -> list[int]:
    """Record operations under ``lease`` one after another, as fast as the store takes them, until a write
    is fenced (or ``give_up_at``); returns the numbers of those recorded."""
    store = _open(url)
    held = Lease(*lease)
    recorded = []
    try:
        _wait_until(start_at)
        for n in itertools.count():
            if time.time() > give_up_at:
                break
            op = UserOperation(sender=ACCOUNT, nonce=n)
            try:
                store.record_intent(
                    f"fenced-{n}", ACCOUNT, SESSION, held.lane, op, keccak(f"f{n}".encode()), lease=held
                )
            except LeaseLostError:
                break
            recorded.append(n)
    finally:
        store.close()
    return recorded


def lease_pause_record(
    url: str, worker: int, rounds: int, ttl: float, start_at: float
) -> tuple[list[tuple[int, str, float]], list[tuple[int, str, float]]]:
    """Lease a lane, pause (often past the lease's ``ttl``), record under the lease, give it back half the
    time; returns (lane, lease id, granted at) per lease and (lane, lease id, created at) per record kept,
    in the store's clock."""
    store = _open(url)
    rng = random.Random(worker)
    leases, records = [], []
    try:
        _wait_until(start_at)
        for n in range(rounds):
            lease = store.lease_lane(ACCOUNT, SESSION, f"w{worker}", ttl)
            leases.append((lease.lane, lease.lease_id, lease.expires_at - ttl))
            time.sleep(rng.choice([0.0, 0.0, ttl / 10, ttl * 0.7, ttl * 1.4]))
            op = UserOperation(sender=ACCOUNT, nonce=(lease.lane << 64) | (worker << 16) | n)
            try:
                record = store.record_intent(
                    f"w{worker}-{n}",
                    ACCOUNT,
                    SESSION,
                    lease.lane,
                    op,
                    keccak(f"{worker}/{n}".encode()),
                    lease=lease,
                )
                records.append((lease.lane, lease.lease_id, record.created_at))
            except LeaseLostError:
                pass
            if rng.random() < 0.5:
                store.release_lease(lease)
    finally:
        store.close()
    return leases, records


def send_many(url: str, op_hash: str, times: int, start_at: float) -> int:
    """``mark_sent`` the same operation ``times`` times; returns the last attempt count seen."""
    store = _open(url)
    try:
        _wait_until(start_at)
        return max(store.mark_sent(op_hash).attempts for _ in range(times))
    finally:
        store.close()


def read_revoked(url: str, session_id: str) -> bool:
    store = _open(url)
    try:
        return store.is_revoked(session_id)
    finally:
        store.close()


# --------------------------------------------------------------------------------------------------
# Test side
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as executor:
        pids = {f.result(timeout=120) for f in [executor.submit(ready) for _ in range(WORKERS * 3)]}
        assert len(pids) >= 2  # really several processes
        yield executor


@pytest.fixture(params=SHARED)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_server").create_schema())


def _soon() -> float:
    return time.time() + 0.5


def _results(futures: list[Future[Any]]) -> list[Any]:
    return [future.result(timeout=180) for future in futures]


def test_processes_opening_a_new_store_at_once_lease_distinct_lanes(
    pool: ProcessPoolExecutor, url: str
) -> None:
    per_worker = 5
    start = _soon()
    futures = [pool.submit(open_and_lease, url, f"p{i}", per_worker, start) for i in range(WORKERS)]
    leases = [lease for result in _results(futures) for lease in result]
    lanes = sorted(lane for lane, _ in leases)
    assert lanes == list(range(WORKERS * per_worker)), "two live leases share a lane, or a lane was skipped"
    assert len({lease_id for _, lease_id in leases}) == len(leases)
    store = _open(url)
    if hasattr(store, "schema_version"):
        # migrated once, although every process opened a fresh store
        assert store.schema_version() == LATEST_VERSION
    store.close()


def test_leases_churning_across_processes_never_overlap(pool: ProcessPoolExecutor, url: str) -> None:
    rounds = 25
    start = _soon()
    futures = [pool.submit(churn, url, f"p{i}", rounds, start) for i in range(WORKERS)]
    by_lane: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for spans in _results(futures):
        for lane, held_from, held_until in spans:
            by_lane[lane].append((held_from, held_until))
    assert sum(len(spans) for spans in by_lane.values()) == WORKERS * rounds
    for lane, spans in by_lane.items():
        spans.sort()
        for (_, earlier_until), (later_from, _) in pairwise(spans):
            assert later_from >= earlier_until, f"lane {lane} was held by two workers at once"
    # lowest free lane first: with at most one lease per worker, no lane number reaches WORKERS
    assert max(by_lane) < WORKERS


def test_a_dead_workers_lease_is_reclaimed_after_it_expires(url: str) -> None:
    # A forked process starts at once (a spawned one re-imports everything); it opens its own store, takes
    # a lease and dies holding it. The test process holds no store while forking.
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    ttl = 0.6
    worker = context.Process(target=_abandon_into_pipe, args=(url, ttl, writer))
    worker.start()
    worker.join(timeout=120)
    assert worker.exitcode == 0
    lane, lease_id, expires_at = reader.recv()
    assert lane == 0

    store = _open(url)
    try:
        if time.time() < expires_at - 0.2:  # still live: another worker gets another lane
            early = store.lease_lane(ACCOUNT, SESSION, "early", 60)
            # judged by when the store granted it (its clock), not by the margin above: a loaded machine may
            # take longer than that to get the lease, and then the dead one has expired already
            if early.expires_at - 60 < expires_at - 0.001:
                assert early.lane == 1
            assert store.release_lease(early)
        _wait_until(expires_at + 0.1)
        reclaimed = store.lease_lane(ACCOUNT, SESSION, "survivor", 60)
        assert reclaimed.lane == 0 and reclaimed.lease_id != lease_id
        dead = Lease(lane, lease_id, expires_at, ACCOUNT, SESSION, "doomed")
        with pytest.raises(StoreLockedError):
            store.renew_lease(dead, 60)
        assert store.release_lease(dead) is False
        assert store.renew_lease(reclaimed, 60).lane == 0
    finally:
        store.close()


def _abandon_into_pipe(url: str, ttl: float, pipe: Any) -> None:
    store = _open(url)
    lease = store.lease_lane(ACCOUNT, SESSION, f"doomed-{os.getpid()}", ttl)
    pipe.send((lease.lane, lease.lease_id, lease.expires_at))
    os._exit(0)  # no cleanup of any kind: as if the worker was killed


def test_the_same_intent_from_several_processes_yields_one_record(
    pool: ProcessPoolExecutor, url: str
) -> None:
    intents = [f"mint-{n}" for n in range(15)]
    start = _soon()
    futures = [pool.submit(record_intents, url, worker, intents, start) for worker in range(WORKERS)]
    kept = _results(futures)
    for intent in intents:
        answers = {result[intent] for result in kept}
        assert len(answers) == 1, f"{intent} was recorded as {answers}"
    store = _open(url)
    try:
        records = store.list_outbox(limit=1000)
        assert sorted(r.intent_id for r in records) == sorted(intents)
        for record in records:
            winner = record.op.nonce & 0xFF  # the worker whose operation was recorded first
            assert record.user_op_hash == "0x" + keccak(f"{record.intent_id}/{winner}".encode()).hex()
            assert kept[0][record.intent_id] == (record.user_op_hash, record.op.nonce)
    finally:
        store.close()


def test_processes_recording_one_nonce_for_different_intents_keep_one(
    pool: ProcessPoolExecutor, url: str
) -> None:
    """The unique (account, nonce) key under real concurrency: of the workers' intents with one nonce, one is
    recorded and every other is refused, whichever commits first (PostgreSQL runs READ COMMITTED: the check
    in the transaction alone would let two through; the key does not)."""
    nonces = list(range(12))
    start = _soon()
    futures = [pool.submit(record_nonces, url, worker, nonces, start) for worker in range(WORKERS)]
    kept = _results(futures)
    for nonce in nonces:
        winners = [worker for worker, answers in enumerate(kept) if answers[nonce]]
        assert len(winners) == 1, f"nonce {nonce} was recorded by workers {winners}"
    store = _open(url)
    try:
        records = store.list_outbox(limit=1000)
    finally:
        store.close()
    assert sorted(r.op.nonce for r in records) == nonces


def test_a_paused_lease_holder_writes_nothing_once_its_lane_is_taken(
    pool: ProcessPoolExecutor, url: str
) -> None:
    """A worker records under its lease, without renewing it, as fast as it can; once the lease expired the
    test takes the lane over and reads the outbox, as a new holder adopting the lane does. Every record the
    old holder got in must be in that read: none was written after the lane changed hands."""
    store = _open(url)
    try:
        ttl = 1.0
        lease = store.lease_lane(ACCOUNT, SESSION, "paused", ttl)
        start = _soon()
        future = pool.submit(record_under_lease, url, astuple(lease), start, lease.expires_at + 60.0)
        _wait_until(lease.expires_at + 0.05)
        # the lease, although expired, holds the lane until another worker takes it: the old holder keeps
        # recording meanwhile. On a loaded machine its first record may come only now; wait for it.
        while not store.pending():
            assert not future.done(), future.result()
            time.sleep(0.01)
        while True:  # the lane row is locked while the old holder records: lowest free may be another lane
            taken = store.lease_lane(ACCOUNT, SESSION, "new holder", 60)
            if taken.lane == lease.lane:
                break
            store.release_lease(taken)
        seen = {r.intent_id for r in store.pending()}
        recorded = future.result(timeout=180)
    finally:
        store.close()
    assert recorded, "the old holder recorded nothing while its lease held"
    late = [n for n in recorded if f"fenced-{n}" not in seen]
    assert not late, f"{len(late)} records written after the lane was taken over, from {late[0]}"


def test_leases_expiring_while_their_holders_pause_fence_every_late_record(
    pool: ProcessPoolExecutor, url: str
) -> None:
    """Workers in separate processes lease lanes with a short time-to-live, pause before recording (often
    past the lease, so other workers take the lane), record under the lease and sometimes give it back. A
    record written under a lease must have been written before any later lease of its lane was granted
    (else a new holder adopting the lane could miss it): checked for every record against every lease."""
    ttl = 0.15
    start = _soon()
    futures = [pool.submit(lease_pause_record, url, w, 25, ttl, start) for w in range(WORKERS)]
    results = _results(futures)
    granted = {lease_id: (lane, at) for leases, _ in results for lane, lease_id, at in leases}
    records = [record for _, kept in results for record in kept]
    assert records and len(records) < WORKERS * 25  # some recorded, some fenced
    late = [
        (lane, lease_id, created, other)
        for lane, lease_id, created in records
        for other, (other_lane, at) in granted.items()
        if other_lane == lane and other != lease_id and granted[lease_id][1] < at < created
    ]
    assert not late, f"records written after a later lease of their lane was granted: {late[:3]}"


def test_concurrent_sends_count_every_attempt(pool: ProcessPoolExecutor, url: str) -> None:
    store = _open(url)
    op_hash = "0x" + keccak(b"op").hex()
    store.record_intent("busy", ACCOUNT, SESSION, 0, UserOperation(sender=ACCOUNT, nonce=1), op_hash)
    times = 10
    start = _soon()
    _results([pool.submit(send_many, url, op_hash, times, start) for _ in range(WORKERS)])
    record = store.get_by_hash(op_hash)
    store.close()
    assert record is not None and record.attempts == WORKERS * times


def test_revocation_is_visible_to_another_process_on_its_next_read(
    pool: ProcessPoolExecutor, url: str
) -> None:
    key = to_address("0x" + "c3" * 20)
    session = Session(session_key=key, permissions=(Permission(target=key, selector=b"\x12\x34\x56\x78"),))
    grant = SessionGrant(
        session=session, account=ACCOUNT, module=MODULE, chain_id=1, entry_point=key, epoch=0,
        session_id=session.session_id(ACCOUNT, 0), how="onchain",
    )  # fmt: skip
    store = _open(url)
    store.put_grant(grant)
    session_id = "0x" + grant.session_id.hex()
    assert pool.submit(read_revoked, url, session_id).result(timeout=60) is False
    store.mark_revoked(session_id)
    store.close()
    assert all(_results([pool.submit(read_revoked, url, session_id) for _ in range(WORKERS)]))


def test_a_lease_taken_over_starts_after_the_record_its_predecessor_committed(postgres_server: Any) -> None:
    """The race behind ``test_leases_expiring_while_their_holders_pause_fence_every_late_record``, made certain: a
    worker taking over an expired lane reads the server's clock (to see which leases expired), and before it locks
    the lane the paused holder wakes and records under its lease, which still holds the lane (the fence is the lease
    id, not the clock). The new lease must start after that record: dated at the clock read before the lock, it
    started before a record that committed ahead of it, and the store's dates said the record was written under a
    lane another worker already held. The holder's next record is fenced."""
    url = str(postgres_server.create_schema())
    holder, taker = _open(url), _open(url)
    try:
        old = holder.lease_lane(ACCOUNT, SESSION, "paused", 0.05)
        time.sleep(0.1)  # the lease expires while its holder pauses
        recorded: list[Any] = []
        clock = taker._dialect.now  # type: ignore[attr-defined]

        def now_then_the_holder_records(conn: Any) -> float:
            value = clock(conn)
            if not recorded:  # the taker's first reading: the holder wakes and records now
                op = UserOperation(sender=ACCOUNT, nonce=old.lane << 64)
                recorded.append(
                    holder.record_intent("late", ACCOUNT, SESSION, old.lane, op, b"\x11" * 32, lease=old)
                )
            return value

        taker._dialect.now = now_then_the_holder_records  # type: ignore[attr-defined]
        new = taker.lease_lane(ACCOUNT, SESSION, "taker", 60.0)
        assert new.lane == old.lane and new.lease_id != old.lease_id
        assert recorded and recorded[0].created_at < new.expires_at - 60.0, (recorded, new)
        with pytest.raises(LeaseLostError):
            holder.record_intent(
                "later",
                ACCOUNT,
                SESSION,
                old.lane,
                UserOperation(sender=ACCOUNT, nonce=(old.lane << 64) | 1),
                b"\x22" * 32,
                lease=old,
            )
    finally:
        holder.close()
        taker.close()
