"""Sessions at scale on a real anvil node and Alto bundler: worker processes sharing one store.

* **Load on PostgreSQL**: 8 worker processes, 100 sessions, 2,000 session UserOperations (the count comes
  from ``KEYSCOPE_SCALE_OPS`` when set). Every operation lands exactly once: its ``UserOperationEvent`` is
  counted on chain by hash, the sessions' accounts got exactly that many events, and every nonce lane's
  nonces run 0, 1, 2... without a gap or a repeat.
* **Faults**: a worker SIGKILLed while it has operations in flight and the bundler killed and restarted
  mid-run; a replacement worker retries the dead one's intents; afterwards (and after ``recover()``) every
  intended operation is included exactly once. The database restarted mid-run: workers retry, nothing is
  lost.
* **SQLite** shared by worker processes on one machine, and the operator's CLI against a real chain.

Each worker is a real ``python -m keyscope.scale.runner`` process. Accounts are created up front by their
factory (a backend's users have accounts already); sessions are granted off-chain, so each session's first
operation enables it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keyscope import Policy, SessionKey, SessionRevokedError, arg, connect
from keyscope.accounts import create_account_data
from keyscope.calls import encode_function_call
from keyscope.execution import Call
from keyscope.grant import SessionGrant
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak
from keyscope.local import LocalStack
from keyscope.network import Network
from keyscope.rpc import JsonRpcClient
from keyscope.scale import EventLog, SessionWorker
from keyscope.scale.runner import WorkerProcess, start_worker
from keyscope.signing import LocalSigner
from keyscope.store import OutboxState, SessionStore, open_store
from keyscope.userop import UserOperation
from support.postgres import postgres_fixture

pytestmark = pytest.mark.e2e

postgres_server = postgres_fixture(scope="module")

KEK = bytes(range(1, 33))
ENV = {"KEYSCOPE_STORE_KEK": KEK.hex()}
ETHER = 10**18
LOAD_OPS = int(os.environ.get("KEYSCOPE_SCALE_OPS", "2000"))
LOAD_SESSIONS = 100
LOAD_WORKERS = 8
SEQUENCE = 2**64 - 1
IS_SESSION_REVOKED = keccak(b"isSessionRevoked(address,bytes32)")[:4]


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

    def store(self, url: str) -> SessionStore:
        store = open_store(url, kek=KEK)
        for user in self.users:
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
    for _ in range(600):
        receipt = stack.node.request("eth_getTransactionReceipt", [tx_hash])
        if receipt:
            assert receipt["status"] == "0x1", receipt
            return dict(receipt)
        time.sleep(0.02)
    raise AssertionError(f"transaction {tx_hash} was not mined")


@pytest.fixture(scope="module")
def population(stack) -> Population:
    return Population(stack, LOAD_SESSIONS)


def spec(stack: LocalStack, url: str, intents: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    worker = {"lease_ttl": 10.0, "resubmit_after": 5.0, **extra.pop("worker", {})}
    return {
        "store": url,
        "node": stack.rpc_url,
        "bundler": stack.bundler_url,
        "module": stack.module,
        "concurrency": 3,
        "worker": worker,
        "intents": intents,
        **extra,
    }


def run_workers(
    stack: LocalStack, url: str, folder: Path, shares: list[list[dict[str, Any]]], **extra: Any
) -> list[WorkerProcess]:
    return [
        start_worker(spec(stack, url, share, **extra), folder, f"w{n}", env=ENV)
        for n, share in enumerate(shares)
    ]


def finish(workers: list[WorkerProcess], timeout: float = 600.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    results = []
    for worker in workers:
        try:
            code = worker.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in workers:
                other.kill()
            raise AssertionError(f"worker {worker.name} did not finish:\n{worker.log_tail()}") from None
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
    stack: LocalStack, store: SessionStore, intents: list[dict[str, Any]], start_block: int, users: list[User]
) -> dict[str, Any]:
    """Every intent has one record, included with success, whose hash is on chain exactly once; the users'
    accounts got no other operation from ``start_block`` (see :func:`first_block`) on; every lane's nonces
    are 0..n-1, each used once."""
    records = {}
    for intent in intents:
        record = store.get_by_intent(intent["intent_id"])
        assert record is not None, f"intent {intent['intent_id']} was never recorded"
        assert record.state is OutboxState.INCLUDED and record.success, record
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


def test_load_on_postgresql_every_operation_included_once(stack, population, postgres_server, tmp_path):
    url = postgres_server.create_database()
    store = population.store(url)
    intents = population.intents(LOAD_OPS, "load")
    shares = [intents[n::LOAD_WORKERS] for n in range(LOAD_WORKERS)]
    start_block = first_block(stack)
    began = time.monotonic()
    results = finish(run_workers(stack, url, tmp_path, shares, worker={"resubmit_after": 10.0}))
    elapsed = time.monotonic() - began
    try:
        assert all(not r["errors"] for r in results), [r["errors"] for r in results if r["errors"]]
        records = assert_exactly_once(stack, store, intents, start_block, population.users)
        sending = min(r["sending_at"] for r in results)
        last = max(r.finished_at or 0 for r in records.values())
        stats = Counter()
        for r in results:
            stats.update(r["stats"])
        assert stats["first_failed"] == 0 and stats["failed"] == 0
        lanes_used = {(r.account, r.session_id, r.lane) for r in records.values()}
        print(
            f"\n{LOAD_OPS} operations, {LOAD_SESSIONS} sessions, {LOAD_WORKERS} worker processes on PostgreSQL: "
            f"all included once in {last - sending:.1f}s after the first send ({LOAD_OPS / (last - sending):.1f} "
            f"ops/s; {elapsed:.1f}s with process start-up); {len(lanes_used)} lanes; outbox scans "
            f"{stats['outbox_scans']}, probes {sum(v for k, v in stats.items() if k.startswith('probe_'))}"
        )
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
    users = population.users[:40]
    url = postgres_server.create_database()
    store = population.store(url)
    intents = population.intents(400, "fault", users)
    shares = [intents[n::4] for n in range(4)]
    doomed = {i["intent_id"] for i in shares[0]}
    bundler = JsonRpcClient(stack.bundler_url)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module)
    start_block = first_block(stack)
    workers = run_workers(stack, url, tmp_path, shares)
    try:
        deadline = time.monotonic() + 240
        while len(store.list_outbox("included", limit=1000)) < 40:
            assert time.monotonic() < deadline and workers[0].process.poll() is None, workers[0].log_tail()
            time.sleep(0.1)
        bundler.request("debug_bundler_setBundlingMode", ["manual"])
        while True:  # until the doomed worker has operations held by the bundler
            held = {
                _hash(net, op) for op in bundler.request("debug_bundler_dumpMempool", [stack.entry_point])
            }
            in_flight = [r for r in _pending_of(store, doomed) if r.user_op_hash in held]
            if len(in_flight) >= 2 and len(held) >= 6:
                break
            assert time.monotonic() < deadline, workers[0].log_tail()
            time.sleep(0.1)
        workers[0].kill()
        orphans = _pending_of(store, doomed)
        held = {_hash(net, op) for op in bundler.request("debug_bundler_dumpMempool", [stack.entry_point])}
        stack.restart_bundler(kill=True)  # the mempool is gone; the new Alto bundles automatically

        replacement = start_worker(
            spec(stack, url, shares[0], recover_first=True), tmp_path, "replacement", env=ENV
        )
        results = finish([*workers[1:], replacement])
    finally:
        for worker in workers:
            worker.kill()
    assert all(not r["errors"] for r in results), [r["errors"] for r in results]

    # anything still unfinished (none expected) is finished by a recovery pass
    with SessionWorker(store, net) as rescuer:
        report = rescuer.recover(wait=60)
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

    users = population.users[40:80]
    with PostgresServer() as server:  # its own server: it is restarted under the workers
        url = server.create_database()
        store = population.store(url)
        intents = population.intents(300, "dbrestart", users)
        shares = [intents[n::4] for n in range(4)]
        start_block = first_block(stack)
        workers = run_workers(stack, url, tmp_path, shares, worker={"lease_ttl": 30.0})
        try:
            deadline = time.monotonic() + 240
            while len(store.list_outbox("included", limit=1000)) < 60:
                assert time.monotonic() < deadline, workers[0].log_tail()
                time.sleep(0.2)
            server.restart(mode="immediate")  # a crash: connections drop, the server comes back
            results = finish(workers)
        finally:
            for worker in workers:
                worker.kill()
        assert all(not r["errors"] for r in results), [r["errors"] for r in results]
        assert_exactly_once(stack, store, intents, start_block, users)
        store.close()


# --------------------------------------------------------------------------------------------------
# SQLite, and the operator
# --------------------------------------------------------------------------------------------------


def test_sqlite_shared_by_worker_processes(stack, population, tmp_path):
    users = population.users[80:]
    url = f"sqlite:///{tmp_path / 'keyscope.db'}"
    store = population.store(url)
    intents = population.intents(160, "sqlite", users)
    start_block = first_block(stack)
    results = finish(run_workers(stack, url, tmp_path, [intents[0::2], intents[1::2]]))
    assert all(not r["errors"] for r in results)
    assert_exactly_once(stack, store, intents, start_block, users)
    store.close()


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
        assert worker.send("cli-1", user.session_id, Call(stack.nft, 0, mint)).wait(60).success

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
    assert recovered.returncode == 0, recovered.stderr
    assert "1 included" in recovered.stdout or "1 sent again" in recovered.stdout, recovered.stdout
    assert store.get_by_intent("cli-orphan").user_op_hash == orphan.user_op_hash
    deadline = time.monotonic() + 60
    while store.get_by_intent("cli-orphan").state is not OutboxState.INCLUDED:
        assert time.monotonic() < deadline
        _cli("recover", "--store", url, "--node", stack.rpc_url, "--bundler", stack.bundler_url, env=ENV)

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
        assert worker.send("cli-3", other.session_id, Call(stack.nft, 0, other_mint)).wait(60).success

    sessions = _cli("sessions", "--store", url, env=ENV)
    assert sessions.returncode == 0 and "revoked" in sessions.stdout and "active" in sessions.stdout
    # judged on chain, with the one status function `ape run sessions` uses
    judged = _cli("sessions", "--store", url, "--node", stack.rpc_url, "--json", env=ENV)
    assert judged.returncode == 0, judged.stderr
    rows = {row["session_id"]: row for row in json.loads(judged.stdout)["sessions"]}
    assert rows[user.session_id]["status"] == "revoked" and rows[user.session_id]["source"] == "chain"
    assert rows[other.session_id]["status"] == "active" and rows[other.session_id]["disagreements"] == []
    store.close()
