"""Sessions at scale on a real anvil node and Alto bundler: worker processes sharing one store.

* **Load, with two workers starved**: 8 worker processes on PostgreSQL, 4 sessions, 160 session
  UserOperations (the count comes from ``KEYSCOPE_SCALE_OPS`` when set), and the same on SQLite with 96
  operations. Two of the eight run at a lower priority with a one-second lease, and are stopped (SIGSTOP) for longer
  than that again and again: other workers take their lanes while they hold operations. Every operation
  lands exactly once: its ``UserOperationEvent`` is counted on chain by hash, the sessions' accounts got
  exactly that many events, every nonce lane's nonces run 0, 1, 2... without a gap or a repeat, and no
  intent had to be rebuilt.
* **Pauses at every step of a send**: a worker stops itself (SIGSTOP) before it records, after it records
  and before it sends, and after it sends, for longer than its lease; another worker takes its lanes over;
  then it goes on (SIGCONT). On SQLite and PostgreSQL: every intent included exactly once, none rebuilt, and
  the paused worker's late record was fenced.
* **Faults**: a worker SIGKILLed while it has operations in flight and the bundler killed and restarted
  mid-run; a replacement worker retries the dead one's intents; afterwards (and after ``recover()``) every
  intended operation is included exactly once. The database restarted mid-run: workers retry, nothing is
  lost.
* **The operator's CLI** against a real chain.

Each worker is a real ``python -m keyscope.scale.runner`` process. Accounts are created up front by their
factory (a backend's users have accounts already); sessions are granted off-chain, so each session's first
operation enables it. No test here has a deadline of the clock: each waits for as long as the workers make
progress (operations landing, records changing), and fails only when nothing moved for ``STALL_SECONDS``.
The loads are small enough to prove the guarantee in about a minute each; the large ones (starved workers
included) are measured by ``benchmarks/scale.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keyscope import KeyscopeError, Policy, SessionKey, SessionRevokedError, arg, connect
from keyscope.accounts import create_account_data
from keyscope.calls import encode_function_call
from keyscope.execution import Call
from keyscope.grant import SessionGrant
from keyscope.hashing import user_op_hash_v07
from keyscope.local import LocalStack
from keyscope.module import IS_SESSION_REVOKED
from keyscope.network import Network
from keyscope.rpc import JsonRpcClient
from keyscope.scale import EventLog, Intent, SessionWorker, Submission
from keyscope.scale.runner import WorkerProcess, start_worker
from keyscope.scale.worker import STEPS
from keyscope.signing import LocalSigner
from keyscope.store import OutboxRecord, OutboxState, SessionStore, open_store
from keyscope.userop import UserOperation
from support.postgres import postgres_fixture
from support.starver import Starver, signal_all

pytestmark = pytest.mark.e2e

postgres_server = postgres_fixture(scope="module")

KEK = bytes(range(1, 33))
ENV = {"KEYSCOPE_STORE_KEK": KEK.hex()}
ETHER = 10**18
USERS = 48
"""Users (an account and a session each) shared by every test of the module; each test takes a slice."""
LOAD_OPS = int(os.environ.get("KEYSCOPE_SCALE_OPS", "160"))
"""Operations of the PostgreSQL load: forty per session over four sessions. The large loads
(600 operations per configuration, two starved workers among eight) are measured by benchmarks/scale.py, not
here."""
LOAD_SESSIONS = 4
SQLITE_SESSIONS = 8
LOAD_WORKERS = 8
STARVED = 2
"""Of the load's workers, how many are starved: a lower priority (nice 10), a one-second lease, and stopped
(SIGSTOP) for :data:`STARVE_PAUSE` seconds every :data:`STARVE_EVERY` seconds or so while the other workers
run. Each sends half a share of the intents, so that the tail they leave on a busy machine stays short."""
STARVE_PAUSE = 3.0
STARVE_EVERY = 4.0
STARVED_NICE = 10
STALL_SECONDS = 240.0
"""How long a test waits while nothing moves (no operation lands, no record changes, no worker ends) before it
fails: the only timeout here, so a slow machine makes the tests slower, never red."""
PAUSE_RUNNER = Path(__file__).with_name("pause_runner.py")
SEQUENCE = 2**64 - 1


@pytest.fixture(scope="module")
def stack():
    """A stack of our own: the fault tests kill its bundler. Alto logs warnings only (at this rate its
    request log would cost more than the bundling), with two executor keys."""
    with LocalStack(executors=2, alto_log_level="warn", accounts=2) as started:
        yield started


@dataclass
class User:
    owner: LocalSigner
    account: str
    key: SessionKey
    grant: SessionGrant | None = None

    @property
    def session_id(self) -> str:
        assert self.grant is not None
        return "0x" + self.grant.session_id.hex()


class Population:
    """Users with created, funded accounts and one off-chain session each, granted to mint NFTs to
    themselves; :meth:`store` puts their keys and grants in a fresh store."""

    def __init__(self, stack: LocalStack, count: int) -> None:
        self.stack = stack
        self.net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
        self.users: list[User] = []
        pending = []
        for _ in range(count):
            signer = LocalSigner.generate()
            owner = self.net.owner(signer)
            data = create_account_data(owner.signer.address, owner.creation_modules, 0)
            pending.append(
                stack.node.request(
                    "eth_sendTransaction",
                    [{"from": stack.deployer.address, "to": stack.factory, "data": "0x" + data.hex()}],
                )
            )
            stack.fund(owner.account, ETHER)
            self.users.append(User(signer, owner.account, SessionKey.generate()))
        for tx in pending:
            _receipt(stack, tx)
        for user in self.users:
            owner = self.net.owner(user.owner)
            assert owner.is_deployed()
            policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == user.account])
            # sustained load fills blocks and raises the base fee (EIP-1559): a cap of 1 ETH per operation
            user.grant = owner.grant(user.key, [policy], valid_for=7 * 86400, max_gas_cost=ETHER)
            assert user.grant.factory is None  # the account exists: the first operation only enables

    def store(self, url: str, users: list[User] | None = None) -> SessionStore:
        store = open_store(url, kek=KEK)
        for user in users or self.users:
            assert user.grant is not None
            store.put_key(user.key)
            store.put_grant(user.grant)
        return store

    def intents(self, count: int, prefix: str, users: list[User] | None = None) -> list[dict[str, Any]]:
        """``count`` mint intents spread over the users (round robin), in a shuffled order."""
        chosen = users or self.users
        out = []
        for n in range(count):
            user = chosen[n % len(chosen)]
            data = encode_function_call("safeMint(address)", user.account)
            out.append(
                {
                    "intent_id": f"{prefix}-{n}",
                    "session_id": user.session_id,
                    "to": self.stack.nft,
                    "value": 0,
                    "data": "0x" + data.hex(),
                }
            )
        random.Random(prefix).shuffle(out)
        return out


def _receipt(stack: LocalStack, tx_hash: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def mined() -> bool:
        found.update(stack.node.request("eth_getTransactionReceipt", [tx_hash]) or {})
        return bool(found)

    wait_until(mined, lambda: stack.block_number(), f"transaction {tx_hash} to be mined")
    assert found["status"] == "0x1", found
    return found


@pytest.fixture(scope="module")
def population(stack) -> Population:
    return Population(stack, USERS)


def spec(stack: LocalStack, url: str, intents: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    worker = {"lease_ttl": 10.0, "resubmit_after": 5.0, **extra.pop("worker", {})}
    return {
        "store": url,
        "node": stack.rpc_url,
        "bundler": stack.bundler_url,
        "module": stack.module,
        "concurrency": 3,
        "timeout": None,  # the test watches for progress instead
        "worker": worker,
        "intents": intents,
        **extra,
    }


def run_workers(
    stack: LocalStack,
    url: str,
    folder: Path,
    shares: list[list[dict[str, Any]]],
    *,
    starved: int = 0,
    **extra: Any,
) -> list[WorkerProcess]:
    """A worker process per share; the last ``starved`` of them at a lower priority (:data:`STARVED_NICE`) and
    with a one-second lease."""
    workers = []
    for n, share in enumerate(shares):
        options = dict(extra)
        nice = 0
        if n >= len(shares) - starved:
            options["worker"] = {**options.get("worker", {}), "lease_ttl": 1.0}
            nice = STARVED_NICE
        workers.append(start_worker(spec(stack, url, share, **options), folder, f"w{n}", env=ENV, nice=nice))
    return workers


class Progress:
    """What moves while workers get on with it: the chain's block number (anvil mines a block per bundle),
    the outbox's unfinished records, the workers still running and what they printed. ``stalled()`` says
    whether none of it changed for ``STALL_SECONDS``."""

    def __init__(self, stack: LocalStack, store: SessionStore | None, workers: list[WorkerProcess]) -> None:
        self.stack = stack
        self.store = store
        self.workers = workers
        self._last: Any = None
        self._moved = time.monotonic()

    def _state(self) -> Any:
        pending = None
        if self.store is not None:
            try:
                pending = sorted((r.user_op_hash, r.state.value, r.attempts) for r in self.store.pending())
            except KeyscopeError:
                pending = "unreadable"
        logs = [w.log_path.stat().st_size if w.log_path.exists() else 0 for w in self.workers]
        running = [w.process.poll() is None for w in self.workers]
        return self.stack.block_number(), pending, logs, running

    def stalled(self) -> bool:
        state = self._state()
        if state != self._last:
            self._last, self._moved = state, time.monotonic()
        return time.monotonic() - self._moved > STALL_SECONDS


def wait_until(
    condition: Callable[[], bool], progress: Callable[[], Any] | Progress, what: str, *, pause: float = 0.1
) -> None:
    """Wait until ``condition()``, for as long as ``progress`` moves (a :class:`Progress`, or a function
    whose value changes as things progress)."""
    watch = progress if isinstance(progress, Progress) else None
    last, moved = None, time.monotonic()
    while not condition():
        if watch is not None:
            stuck = watch.stalled()
        else:
            value = progress()  # type: ignore[operator]
            if value != last:
                last, moved = value, time.monotonic()
            stuck = time.monotonic() - moved > STALL_SECONDS
        assert not stuck, f"no progress for {STALL_SECONDS:.0f}s while waiting for {what}"
        time.sleep(pause)


def finish(
    workers: list[WorkerProcess], stack: LocalStack, store: SessionStore | None = None
) -> list[dict[str, Any]]:
    """Wait for every worker to end, for as long as they make progress; their results."""
    progress = Progress(stack, store, workers)
    try:
        wait_until(
            lambda: all(w.process.poll() is not None for w in workers), progress, "the workers", pause=0.5
        )
    except AssertionError:
        running = [w for w in workers if w.process.poll() is None]
        for worker in workers:
            worker.kill()
        raise AssertionError(
            f"no progress for {STALL_SECONDS:.0f}s; worker {running[0].name} did not finish:\n"
            f"{running[0].log_tail()}"
        ) from None
    results = []
    for worker in workers:
        code = worker.wait()
        result = worker.result()
        assert result is not None and code == 0, f"worker {worker.name} exited {code}:\n{worker.log_tail()}"
        results.append(result)
    return results


def first_block(stack: LocalStack) -> int:
    """The first block that can hold what a test sends from now on: the one after the latest. The latest
    block itself is already mined and may hold the previous test's last bundle, with operations of the same
    users' accounts (anvil mines each bundle at once, so nothing else need come after it)."""
    return stack.block_number() + 1


def assert_exactly_once(
    stack: LocalStack,
    store: SessionStore,
    intents: list[dict[str, Any]],
    start_block: int,
    users: list[User],
    *,
    rebuilt: bool = False,
) -> dict[str, Any]:
    """Every intent has one record, included with success, whose hash is on chain exactly once; the users'
    accounts got no other operation from ``start_block`` (see :func:`first_block`) on; every lane's nonces
    are 0..n-1, each used once. Unless ``rebuilt``, no intent's operation was displaced and rebuilt: the
    fencing kept every nonce to one operation."""
    records = {}
    for intent in intents:
        record = store.get_by_intent(intent["intent_id"])
        assert record is not None, f"intent {intent['intent_id']} was never recorded"
        assert record.state is OutboxState.INCLUDED and record.success, record
        assert rebuilt or record.rebuilds == 0, f"intent {record.intent_id} was displaced: {record}"
        records[intent["intent_id"]] = record
    assert not store.pending()
    hashes = [r.user_op_hash for r in records.values()]
    assert len(set(hashes)) == len(hashes)
    log = EventLog.from_url(stack.rpc_url, stack.entry_point)
    counts = log.count(hashes, from_block=start_block)
    missing = [h for h, c in counts.items() if c != 1]
    assert not missing, f"{len(missing)} operations not on chain exactly once, e.g. {missing[:3]}"
    senders = {user.account for user in users}
    events = [e for e in log.events(start_block) if e.sender in senders]
    recorded = set(hashes)
    unintended = [
        f"{e.user_op_hash} (block {e.block_number}, {e.sender} lane key {e.nonce >> 64:#x} nonce {e.nonce & SEQUENCE})"
        for e in events
        if e.user_op_hash not in recorded
    ]
    assert not unintended, f"the sessions' accounts ran operations nobody intended: {unintended}"
    assert len(events) == len(intents), "the sessions' accounts ran operations nobody intended"
    lanes: dict[tuple[str, int], list[int]] = defaultdict(list)
    for event in events:
        lanes[(event.sender, event.nonce >> 64)].append(event.nonce & SEQUENCE)
    first_use = {key: min(seqs) for key, seqs in lanes.items()}
    for key, seqs in lanes.items():
        assert sorted(seqs) == list(range(first_use[key], first_use[key] + len(seqs))), f"lane {key}: {seqs}"
    return records


# --------------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------------


def _load(
    stack: LocalStack,
    store: SessionStore,
    url: str,
    folder: Path,
    intents: list[dict[str, Any]],
    users: list[User],
) -> tuple[list[dict[str, Any]], dict[str, Any], Starver, float]:
    """Run ``intents`` through :data:`LOAD_WORKERS` worker processes, the last :data:`STARVED` of them
    starved (with half a share each); check that every intent landed exactly once.

    The starved workers start first, and each stops itself (SIGSTOP, between two store transactions) once
    its first intent's operation is recorded, holding its lanes with operations in flight; their one-second
    leases run out. The others start and lease the lowest free lanes, which are the stopped workers' lanes.
    Once another worker has recorded on one of them, the starved workers go on (SIGCONT), and are stopped
    again and again at random until the others are done."""
    slots = [n for n in range(LOAD_WORKERS - STARVED) for _ in range(2)] + list(
        range(LOAD_WORKERS - STARVED, LOAD_WORKERS)
    )
    shares: list[list[dict[str, Any]]] = [[] for _ in range(LOAD_WORKERS)]
    for index, intent in enumerate(intents):
        shares[slots[index % len(slots)]].append(intent)
    theirs = {i["intent_id"] for share in shares[-STARVED:] for i in share}
    options: dict[str, Any] = {"worker": {"resubmit_after": 10.0}}
    start_block = first_block(stack)
    began = time.monotonic()
    starved = [
        start_worker(
            spec(
                stack,
                url,
                share,
                worker={**options["worker"], "lease_ttl": 1.0},
                pause_at={"step": "recorded", "intent": share[0]["intent_id"]},
            ),
            folder,
            f"w{LOAD_WORKERS - STARVED + n}",
            env=ENV,
            nice=STARVED_NICE,
            command=[sys.executable, str(PAUSE_RUNNER)],
        )
        for n, share in enumerate(shares[-STARVED:])
    ]
    workers = list(starved)
    try:

        def each_stopped() -> bool:  # each stops itself once its first intent is recorded, holding its lanes
            for worker in starved:
                assert worker.process.poll() is None, (
                    f"{worker.name} ended without stopping:\n{worker.log_tail()}"
                )
            return all(_state(w.process.pid) == "T" for w in starved)

        wait_until(each_stopped, Progress(stack, store, workers), "the starved workers to stop")
        time.sleep(1.5)  # their one-second leases run out: a stopped worker renews nothing
        workers = run_workers(stack, url, folder, shares[:-STARVED], **options) + starved

        def taken_over() -> bool:  # another worker recorded on a lane a stopped worker holds
            lanes: dict[bool, set[tuple[str, str, int]]] = {True: set(), False: set()}
            for r in store.list_outbox(limit=1000):
                lanes[r.intent_id in theirs].add((r.account, r.session_id, r.lane))
            return bool(lanes[True] & lanes[False])

        wait_until(taken_over, Progress(stack, store, workers), "a stopped worker's lane to be taken over")
        processes = [w.process for w in starved]
        signal_all(processes, signal.SIGCONT)
        others_done = lambda: all(w.process.poll() is not None for w in workers[:-STARVED])  # noqa: E731
        with Starver(processes, pause=STARVE_PAUSE, every=STARVE_EVERY, until=others_done) as starver:
            results = finish(workers, stack, store)
    finally:
        for worker in workers:
            worker.kill()
    elapsed = time.monotonic() - began
    assert all(not r["errors"] for r in results), [r["errors"] for r in results if r["errors"]]
    records = assert_exactly_once(stack, store, intents, start_block, users)
    stats: Counter[str] = Counter()
    for r in results:
        stats.update(r["stats"])
    assert stats["first_failed"] == 0 and stats["failed"] == 0
    lost: Counter[str] = Counter()
    for r in results[-STARVED:]:
        lost.update(r["stats"])
    # stopped for longer than their lease while holding lanes: the others took lanes over, and the starved
    # workers found out at their next renewal or record
    assert lost["lanes_lost"] > 0, lost
    return results, records, starver, elapsed


def _report(
    what: str, results: list[dict[str, Any]], records: dict[str, Any], starver: Starver, elapsed: float
) -> str:
    sending = min(r["sending_at"] for r in results)
    last = max(r.finished_at or 0 for r in records.values())
    stats: Counter[str] = Counter()
    for r in results:
        stats.update(r["stats"])
    starved: Counter[str] = Counter()
    for r in results[-STARVED:]:
        starved.update(r["stats"])
    lanes_used = {(r.account, r.session_id, r.lane) for r in records.values()}
    return (
        f"\n{len(records)} operations, {LOAD_WORKERS} worker processes on {what} ({STARVED} starved, stopped "
        f"{starver.pauses} times): all included once in {last - sending:.1f}s after the first send "
        f"({len(records) / (last - sending):.1f} ops/s; {elapsed:.1f}s with process start-up); "
        f"{len(lanes_used)} lanes; outbox scans {stats['outbox_scans']}, probes "
        f"{sum(v for k, v in stats.items() if k.startswith('probe_'))}; the starved workers lost "
        f"{starved['lanes_lost']} lanes, had {starved['fenced']} records fenced, and sent "
        f"{sum(len(r['records']) for r in results[-STARVED:])} intents"
    )


def test_load_with_two_starved_workers_on_postgresql_every_operation_included_once(
    stack, population, postgres_server, tmp_path
):
    users = population.users[:LOAD_SESSIONS]
    url = postgres_server.create_database()
    store = population.store(url, users)
    try:
        intents = population.intents(LOAD_OPS, "load", users)
        results, records, starver, elapsed = _load(stack, store, url, tmp_path, intents, users)
        print(_report("PostgreSQL", results, records, starver, elapsed))
    finally:
        store.close()


# --------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------


def _pending_of(store: SessionStore, intent_ids: set[str]) -> list[Any]:
    return [r for r in store.pending() if r.intent_id in intent_ids]


def test_worker_killed_and_bundler_restarted_mid_run(stack, population, postgres_server, tmp_path):
    """Alto is switched to manual bundling so that operations pile up in its mempool; then the worker
    holding some of them is SIGKILLed, and Alto is killed with its mempool. The live workers resend theirs,
    a replacement worker retries the dead one's intents (finishing its orphans first)."""
    users = population.users[:24]
    url = postgres_server.create_database()
    store = population.store(url, users)
    intents = population.intents(120, "fault", users)
    shares = [intents[n::4] for n in range(4)]
    doomed = {i["intent_id"] for i in shares[0]}
    bundler = JsonRpcClient(stack.bundler_url)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module)
    start_block = first_block(stack)
    workers = run_workers(stack, url, tmp_path, shares)
    progress = Progress(stack, store, workers)
    try:

        def enough_included() -> bool:
            assert workers[0].process.poll() is None, workers[0].log_tail()
            return len(store.list_outbox("included", limit=1000)) >= 24

        wait_until(enough_included, progress, "24 operations to land")
        bundler.request("debug_bundler_setBundlingMode", ["manual"])

        def doomed_in_mempool() -> bool:  # the doomed worker has operations held by the bundler
            held = {
                _hash(net, op) for op in bundler.request("debug_bundler_dumpMempool", [stack.entry_point])
            }
            in_flight = [r for r in _pending_of(store, doomed) if r.user_op_hash in held]
            return len(in_flight) >= 2 and len(held) >= 6

        wait_until(doomed_in_mempool, progress, "the doomed worker's operations in the mempool")
        workers[0].kill()
        orphans = _pending_of(store, doomed)
        held = {_hash(net, op) for op in bundler.request("debug_bundler_dumpMempool", [stack.entry_point])}
        stack.restart_bundler(kill=True)  # the mempool is gone; the new Alto bundles automatically

        replacement = start_worker(
            spec(stack, url, shares[0], recover_first=True), tmp_path, "replacement", env=ENV
        )
        results = finish([*workers[1:], replacement], stack, store)
    finally:
        for worker in workers:
            worker.kill()
    assert all(not r["errors"] for r in results), [r["errors"] for r in results]

    # anything still unfinished (none expected) is finished by a recovery pass
    with SessionWorker(store, net) as rescuer:
        report = rescuer.recover(wait=STALL_SECONDS)  # returns as soon as everything is finished
    assert not report.failed and not report.waiting, report

    records = assert_exactly_once(stack, store, intents, start_block, users)
    by_hash = {r.user_op_hash: r for r in records.values()}
    for orphan in orphans:  # what was in flight at the kill landed as recorded: never rebuilt
        assert records[orphan.intent_id].user_op_hash == orphan.user_op_hash
    ours = held & by_hash.keys()
    # Alto may already have put some of its mempool in a bundle that lands after the kill; the rest was lost
    # with it and was sent again, the same operation (same hash), and landed once
    resent = [h for h in ours if by_hash[h].attempts >= 2]
    assert len(resent) >= 4, {h: by_hash[h].attempts for h in ours}


def _hash(net: Network, op: dict[str, Any]) -> str:
    """The userOpHash of an operation as Alto's mempool dump shows it (absent fields as nulls)."""
    fields = {key: value for key, value in op.items() if value is not None}
    return "0x" + user_op_hash_v07(UserOperation.from_rpc(fields).pack(), net.entry_point, net.chain_id).hex()


def test_database_restart_mid_run_loses_nothing(stack, population, tmp_path):
    from support.postgres import PostgresServer

    users = population.users[24:40]
    with PostgresServer() as server:  # its own server: it is restarted under the workers
        url = server.create_database()
        store = population.store(url, users)
        intents = population.intents(96, "dbrestart", users)
        shares = [intents[n::4] for n in range(4)]
        start_block = first_block(stack)
        workers = run_workers(stack, url, tmp_path, shares, worker={"lease_ttl": 30.0})
        try:
            wait_until(
                lambda: len(store.list_outbox("included", limit=1000)) >= 24,
                Progress(stack, store, workers),
                "24 operations to land",
                pause=0.2,
            )
            server.restart(mode="immediate")  # a crash: connections drop, the server comes back
            results = finish(workers, stack, store)
        finally:
            for worker in workers:
                worker.kill()
        assert all(not r["errors"] for r in results), [r["errors"] for r in results]
        assert_exactly_once(stack, store, intents, start_block, users)
        store.close()


# --------------------------------------------------------------------------------------------------
# SQLite, and the operator
# --------------------------------------------------------------------------------------------------


def test_load_with_two_starved_workers_on_sqlite_every_operation_included_once(stack, population, tmp_path):
    users = population.users[-SQLITE_SESSIONS:]
    url = f"sqlite:///{tmp_path / 'keyscope.db'}"
    store = population.store(url, users)
    try:
        intents = population.intents(12 * len(users), "sqlite", users)
        results, records, starver, elapsed = _load(stack, store, url, tmp_path, intents, users)
        print(_report("SQLite", results, records, starver, elapsed))
    finally:
        store.close()


# --------------------------------------------------------------------------------------------------
# A worker paused at each step of a send
# --------------------------------------------------------------------------------------------------


def _state(pid: int) -> str:
    """The process's scheduling state (``T`` when stopped), from /proc."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
@pytest.mark.parametrize("step", STEPS)
def test_a_worker_paused_past_its_lease_at_each_step_does_no_harm(
    stack, population, request, tmp_path, db, step
):
    """Worker A sends six intents for two sessions, one lane each, and stops itself (SIGSTOP) at ``step`` of
    its third intent, holding its lanes and maybe another operation in flight. Once its one-and-a-half-second
    leases ran out, worker B takes both lanes over (lane 0 of each session) and sends four intents of its own;
    then A goes on (SIGCONT).

    * ``signed``: A built and signed an operation on lane 0 with the lane's next nonce, and B then used that
      nonce for its own intent. A's record is fenced: A records nothing, sends nothing, and sends the intent
      again on a lane of its own. (Without the fence A would record and send an operation that can never
      land, and the intent would be displaced.)
    * ``recorded``: A recorded its operation and did not send it. B finds it on the lane it takes over (the
      record was written before B's lease began), sends it and waits for it before using the lane.
    * ``sent``: the same, for an operation A sent: B follows it to inclusion.

    Every intent lands exactly once, none is rebuilt, and the store's records match the chain's events."""
    offset = 2 * (STEPS.index(step) + (3 if db == "postgresql" else 0))
    users = population.users[offset : offset + 2]
    if db == "sqlite":
        url = f"sqlite:///{tmp_path / 'pause.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = population.store(url, users)
    mine = population.intents(6, f"paused-{db}-{step}", users)
    theirs = population.intents(4, f"taker-{db}-{step}", users)
    ttl = 1.5
    start_block = first_block(stack)
    paused = start_worker(
        spec(
            stack,
            url,
            mine,
            concurrency=2,
            worker={"lease_ttl": ttl, "max_lanes": 1},
            pause_at={"step": step, "intent": mine[2]["intent_id"]},
        ),
        tmp_path,
        "paused",
        env=ENV,
        command=[sys.executable, str(PAUSE_RUNNER)],
    )
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module)
    try:

        def stopped() -> bool:
            assert paused.process.poll() is None, f"A ended without pausing:\n{paused.log_tail()}"
            return _state(paused.process.pid) == "T"

        wait_until(stopped, Progress(stack, store, [paused]), f"A to stop at {step!r}")
        time.sleep(ttl + 0.5)  # A renews nothing while stopped: its leases run out
        taker_store = open_store(url, kek=KEK)
        try:
            with SessionWorker(taker_store, net, lease_ttl=10.0, max_lanes=1, resubmit_after=5.0) as taker:
                batch = [Intent(i["intent_id"], i["session_id"], _call(i)) for i in theirs]
                taken = taker.send_many(batch, concurrency=4, timeout=60.0 + 15.0 * len(batch))
                taker_stats = taker.stats()
        finally:
            taker_store.close()
        assert not taken.errors and len(taken.included) == len(theirs), taken
        assert _state(paused.process.pid) == "T"  # A was stopped all along
        os.kill(paused.process.pid, signal.SIGCONT)
        [result] = finish([paused], stack, store)
    finally:
        paused.kill()
    assert not result["errors"], result["errors"]
    records = assert_exactly_once(stack, store, mine + theirs, start_block, users)
    store.close()
    if step == "signed":
        assert result["stats"].get("fenced", 0) >= 1, result["stats"]  # the late record was refused
        late, taker_ops = records[mine[2]["intent_id"]], [records[i["intent_id"]] for i in theirs]
        assert late.op.nonce not in {r.op.nonce for r in taker_ops if r.account == late.account}
    else:
        assert taker_stats.get("adopted", 0) >= 1, taker_stats  # B finished A's operation first
    print(f"\npaused at {step!r} on {db}: A {result['stats']}, B {taker_stats}")


def _call(intent: dict[str, Any]) -> Call:
    return Call(intent["to"], int(intent["value"]), bytes.fromhex(intent["data"][2:]))


def _outcome(stack: LocalStack, submission: Submission) -> OutboxRecord:
    """The intent's final record, waited for as long as the chain moves."""
    wait_until(submission.done, stack.block_number, f"intent {submission.intent_id}")
    return submission.wait(0)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("keyscope")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )


def test_cli_revokes_on_chain_and_recovers(stack, tmp_path):
    small = Population(stack, 2)
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    store = small.store(url)
    user, other = small.users
    net: Network = connect(stack.rpc_url, stack.bundler_url, module=stack.module)
    with SessionWorker(store, net) as worker:
        mint = encode_function_call("safeMint(address)", user.account)
        assert _outcome(stack, worker.send("cli-1", user.session_id, Call(stack.nft, 0, mint))).success

        # an operation recorded by a worker that died before sending it
        session = net.session(user.grant, user.key)
        lease = store.lease_lane(user.account, user.session_id, "dead", 30)
        op = session.build(Call(stack.nft, 0, mint), lane=lease.lane)
        orphan = store.record_intent(
            "cli-orphan", user.account, user.session_id, lease.lane, op, worker.prober.user_op_hash(op)
        )

    listed = _cli("outbox", "--store", url, "--state", "pending", "--json", env=ENV)
    assert listed.returncode == 0, listed.stderr
    assert '"cli-orphan"' in listed.stdout

    recovered = _cli(
        "recover", "--store", url, "--node", stack.rpc_url, "--bundler", stack.bundler_url, env=ENV
    )
    # 0 once it is included; 3 while it is sent again and not landed yet (a job runs it again)
    assert recovered.returncode == (3 if "still unfinished" in recovered.stderr else 0), recovered.stderr
    assert "1 included" in recovered.stdout or "1 sent again" in recovered.stdout, recovered.stdout
    assert store.get_by_intent("cli-orphan").user_op_hash == orphan.user_op_hash

    def landed() -> bool:
        if store.get_by_intent("cli-orphan").state is OutboxState.INCLUDED:
            return True
        _cli("recover", "--store", url, "--node", stack.rpc_url, "--bundler", stack.bundler_url, env=ENV)
        return False

    wait_until(landed, stack.block_number, "the orphan to land")

    revoked = _cli(
        "revoke",
        "--store",
        url,
        user.session_id[:10],  # a unique prefix, as `ape run revoke` takes it
        "--node",
        stack.rpc_url,
        "--bundler",
        stack.bundler_url,
        env={**ENV, "KEYSCOPE_OWNER_KEY": user.owner.private_key.hex()},
    )
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked in the store" in revoked.stdout and "revoked on chain" in revoked.stdout
    assert "waiting for the owner's revokeSession operation to be included" in revoked.stderr
    assert user.owner.private_key.hex() not in revoked.stdout + revoked.stderr
    assert user.grant is not None
    assert small.net.session(user.grant, user.key)._module_flag(IS_SESSION_REVOKED)

    with SessionWorker(store, net) as worker:
        with pytest.raises(SessionRevokedError):
            worker.send("cli-2", user.session_id, Call(stack.nft, 0, mint))
        other_mint = encode_function_call("safeMint(address)", other.account)
        assert _outcome(stack, worker.send("cli-3", other.session_id, Call(stack.nft, 0, other_mint))).success

    sessions = _cli("sessions", "--store", url, env=ENV)
    assert sessions.returncode == 0 and "revoked" in sessions.stdout and "active" in sessions.stdout
    # judged on chain, with the one status function `ape run sessions` uses
    judged = _cli("sessions", "--store", url, "--node", stack.rpc_url, "--json", env=ENV)
    assert judged.returncode == 0, judged.stderr
    rows = {row["session_id"]: row for row in json.loads(judged.stdout)["sessions"]}
    assert rows[user.session_id]["status"] == "revoked" and rows[user.session_id]["source"] == "chain"
    assert rows[other.session_id]["status"] == "active" and rows[other.session_id]["disagreements"] == []
    store.close()


SCALING_DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def test_the_worker_example_of_the_docs_runs_as_written(stack, tmp_path):
    """docs/scaling.md's first block, as written, with a SQLite store in place of its PostgreSQL URL (the same
    store code, one URL): the worker recovers (nothing in flight), sends one intent and waits for its record."""
    small = Population(stack, 1)
    (user,) = small.users
    url = f"sqlite:///{tmp_path / 'docs.db'}"
    small.store(url).close()  # the user's key and grant, as a dapp stored them
    text = SCALING_DOC.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert code.count('"postgresql://app@db/keyscope"') == 1, code
    scope: dict[str, Any] = {
        "kek": KEK,
        "node_url": stack.rpc_url,
        "bundler_url": stack.bundler_url,
        "MODULE": stack.module,
        "session_id": user.session_id,
        "nft": stack.nft,
        "user": user.account,
    }
    exec(compile(code.replace('"postgresql://app@db/keyscope"', repr(url)), "docs/scaling.md", "exec"), scope)
    record = scope["record"]
    assert record.state == OutboxState.INCLUDED and record.success, record
    assert record.intent_id == "order-8812"
