"""Sessions at scale: included session operations per second with 1, 4 and 8 worker processes, and with 8 of
which 2 are starved of CPU.

``.venv/bin/python benchmarks/scale.py`` starts its own local stack (anvil + Alto) and a throwaway
PostgreSQL server, grants ``--sessions`` sessions on accounts that already exist, enables them all (not
measured), then runs the same number of operations through each configuration, side by side in one run:

========== ============ =================================================================================
store      workers
========== ============ =================================================================================
SQLite     1            one file, one worker process (the default set-up)
PostgreSQL 1, 4, 8      one database shared by that many worker processes
PostgreSQL 8, 2 starved the same, two of the eight starved: a lower priority (nice 10), a one-second lease,
                        started first and stopped (SIGSTOP) until another worker has taken one of their
                        lanes over, then stopped for 2.5 s every 4 s or so while the others run; every
                        worker gives a lane back after a second idle (the fenced guarantee under load)
========== ============ =================================================================================

Each worker is a real ``python -m keyscope.scale.runner`` process sending its share of the intents through a
``SessionWorker`` (``--concurrency`` sends at a time). Throughput is included operations per second, from
the first send to the last inclusion the workers recorded; latency is each operation's time from being
recorded in the outbox to being seen included. Every operation is checked on chain: its
``UserOperationEvent`` must be there exactly once, and none may have been rebuilt (displaced). The starved
row also counts the lanes the starved workers lost to the others and their records that were fenced.

Prints a table and writes ``benchmarks/scale.json``. Options: ``--ops`` (per configuration), ``--sessions``,
``--concurrency``, ``--quick`` (200 operations, 40 sessions), ``--only STORE:WORKERS:STARVED`` (those rows
only, e.g. ``postgresql:8:2``), ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, machine, percentile

from keyscope import Policy, SessionKey, arg, connect
from keyscope.accounts import create_account_data
from keyscope.calls import encode_function_call
from keyscope.local import LocalStack
from keyscope.local.alto import ALTO_VERSION
from keyscope.scale import EventLog
from keyscope.scale.runner import WorkerProcess, start_worker
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from support.postgres import PostgresServer
from support.starver import Starver, stop_until_taken_over

KEK = bytes(range(7, 39))
ENV = {"KEYSCOPE_STORE_KEK": KEK.hex()}
CONFIGURATIONS = (
    ("sqlite", 1, 0),
    ("postgresql", 1, 0),
    ("postgresql", 4, 0),
    ("postgresql", 8, 0),
    ("postgresql", 8, 2),
)
"""(store, worker processes, of which starved)."""
STARVED_SETTINGS: dict[str, Any] = {
    "nice": 10,
    "lease_ttl": 1.0,
    "pause": 2.5,
    "every": 4.0,
    "idle_seconds": 1.0,
}
"""How a starved worker is starved: its priority, its lease, and how long and how often it is stopped. In a row
with starved workers every worker gives a lane back after ``idle_seconds`` idle, so that lanes are leased
again and again and the starved workers' expired lanes are taken over."""
STACK_SETTINGS: dict[str, Any] = {"executors": 2, "alto_log_level": "warn"}
"""Alto logs warnings only: at these rates its request log costs more CPU than the bundling."""
WORKER_SETTINGS: dict[str, Any] = {"lease_ttl": 30.0, "resubmit_after": 10.0}
MAX_GAS_COST = 10**18
"""The sessions' per-operation gas cost cap: sustained load fills blocks past half the gas limit, so the base
fee climbs block after block (EIP-1559); the default cap would then refuse operations, which is not what is
measured here. Between configurations the base fee is let down again (empty blocks)."""


class Sessions:
    """Users whose accounts exist (created by their factory in a plain transaction), funded, each with one
    off-chain session allowed to mint NFTs to its own account."""

    def __init__(self, stack: LocalStack, count: int) -> None:
        self.stack = stack
        net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
        owners = [net.owner(LocalSigner.generate()) for _ in range(count)]
        txs = []
        for owner in owners:
            data = create_account_data(owner.signer.address, owner.creation_modules, 0)
            txs.append(
                stack.node.request(
                    "eth_sendTransaction",
                    [{"from": stack.deployer.address, "to": stack.factory, "data": "0x" + data.hex()}],
                )
            )
            stack.fund(owner.account, 10**18)
        for tx in txs:
            _mined(stack, tx)
        self.users = []
        for owner in owners:
            key = SessionKey.generate()
            policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
            grant = owner.grant(key, [policy], valid_for=7 * 86400, max_gas_cost=MAX_GAS_COST)
            self.users.append((owner.account, key, grant))

    def fill(self, url: str) -> None:
        """Put every key and grant into the store at ``url``."""
        store = open_store(url, kek=KEK)
        try:
            for _, key, grant in self.users:
                store.put_key(key)
                store.put_grant(grant)
        finally:
            store.close()

    def intents(self, count: int, prefix: str) -> list[dict[str, Any]]:
        out = []
        for n in range(count):
            account, _, grant = self.users[n % len(self.users)]
            data = encode_function_call("safeMint(address)", account)
            out.append(
                {
                    "intent_id": f"{prefix}-{n}",
                    "session_id": "0x" + grant.session_id.hex(),
                    "to": self.stack.nft,
                    "value": 0,
                    "data": "0x" + data.hex(),
                }
            )
        random.Random(prefix).shuffle(out)
        return out


def _mined(stack: LocalStack, tx: str) -> None:
    for _ in range(1000):
        receipt = stack.node.request("eth_getTransactionReceipt", [tx])
        if receipt:
            if receipt["status"] != "0x1":
                raise SystemExit(f"creating an account failed: {receipt}")
            return
        time.sleep(0.02)
    raise SystemExit(f"transaction {tx} was not mined")


def run_workers(
    stack: LocalStack,
    url: str,
    intents: list[dict[str, Any]],
    workers: int,
    concurrency: int,
    folder: Path,
    starved: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Split ``intents`` over ``workers`` processes, the last ``starved`` of them starved (see
    :data:`STARVED_SETTINGS`) with half a share each; their results (exits on any failure) and how many times
    the starved ones were stopped."""
    slots = [n for n in range(workers - starved) for _ in range(2)] + list(range(workers - starved, workers))
    shares: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    for index, intent in enumerate(intents):
        shares[slots[index % len(slots)]].append(intent)

    def start(numbers: range) -> list[WorkerProcess]:
        started = []
        for n in numbers:
            is_starved = n >= workers - starved
            spec = {
                "store": url,
                "node": stack.rpc_url,
                "bundler": stack.bundler_url,
                "module": stack.module,
                "concurrency": concurrency,
                "worker": {
                    **WORKER_SETTINGS,
                    **({"idle_seconds": STARVED_SETTINGS["idle_seconds"]} if starved else {}),
                    **({"lease_ttl": STARVED_SETTINGS["lease_ttl"]} if is_starved else {}),
                },
                "intents": shares[n],
            }
            nice = STARVED_SETTINGS["nice"] if is_starved else 0
            started.append(start_worker(spec, folder, f"worker{n}", env=ENV, nice=nice))
        return started

    if not starved:
        processes = start(range(workers))
    else:
        processes = start(range(workers - starved, workers))
        starved_processes = [p.process for p in processes]
        _take_over(
            url,
            shares[workers - starved :],
            starved_processes,
            lambda: processes.extend(start(range(workers - starved))),
        )
        processes = processes[starved:] + processes[:starved]  # in worker order: the starved last
    others_done = lambda: all(p.process.poll() is not None for p in processes[: workers - starved])  # noqa: E731
    results = []
    with Starver(
        [p.process for p in processes[workers - starved :]],
        pause=STARVED_SETTINGS["pause"],
        every=STARVED_SETTINGS["every"],
        until=lambda: starved == 0 or others_done(),
    ) as starver:
        for process in processes:
            code = process.wait(1800)
            result = process.result()
            if code != 0 or result is None or result["errors"]:
                for other in processes:
                    other.kill()
                errors = list((result or {}).get("errors", {}).items())[:5]
                raise SystemExit(
                    f"worker {process.name} failed (exit {code}): {errors}\n{process.log_tail()}"
                )
            results.append(result)
    return results, starver.pauses


def _take_over(
    url: str,
    starved_shares: list[list[dict[str, Any]]],
    starved: list[Any],
    start_others: Callable[[], None],
) -> None:
    """Once each starved worker has recorded an operation, stop them until another worker (started by
    ``start_others`` once their leases ran out) has recorded on one of their lanes: every run then has lanes
    taken over while held, not only by chance."""
    theirs = {i["intent_id"] for share in starved_shares for i in share}
    store = open_store(url, kek=KEK)
    try:
        began = time.monotonic()

        def waiting() -> None:
            if time.monotonic() - began > 600:
                raise SystemExit("no lane of a starved worker was taken over in 10 minutes")

        while not all(any(store.get_by_intent(i["intent_id"]) for i in share) for share in starved_shares):
            waiting()
            time.sleep(0.2)

        def taken_over() -> bool:
            lanes: dict[bool, set[tuple[str, str, int]]] = {True: set(), False: set()}
            for r in store.list_outbox(limit=10_000):
                lanes[r.intent_id in theirs].add((r.account, r.session_id, r.lane))
            return bool(lanes[True] & lanes[False])

        stop_until_taken_over(
            starved,
            taken_over,
            lease=STARVED_SETTINGS["lease_ttl"],
            longest=20.0,
            start_others=start_others,
            waiting=waiting,
        )
    finally:
        store.close()


def measure(
    stack: LocalStack,
    sessions: Sessions,
    backend: str,
    url: str,
    workers: int,
    ops: int,
    concurrency: int,
    folder: Path,
    starved: int = 0,
) -> dict[str, Any]:
    sessions.fill(url)
    intents = sessions.intents(ops, f"{backend}-{workers}-{starved}")
    start_block = stack.block_number()
    began = time.monotonic()
    results, pauses = run_workers(stack, url, intents, workers, concurrency, folder, starved)
    wall = time.monotonic() - began
    records = [record for result in results for record in result["records"].values()]
    if len(records) != ops or any(r["state"] != "included" or not r["success"] for r in records):
        raise SystemExit(f"{backend} x{workers}: not every operation was included")
    if any(r["rebuilds"] for r in records):
        raise SystemExit(f"{backend} x{workers}: an operation was displaced and rebuilt: a nonce was shared")
    counts = EventLog.from_url(stack.rpc_url, stack.entry_point).count(
        [r["user_op_hash"] for r in records], from_block=start_block
    )
    if set(counts.values()) != {1}:
        raise SystemExit(f"{backend} x{workers}: an operation is not on chain exactly once")
    first_send = min(result["sending_at"] for result in results)
    last_inclusion = max(r["finished_at"] for r in records)
    seconds = last_inclusion - first_send
    latencies = [r["finished_at"] - r["created_at"] for r in records]
    stats: dict[str, int] = {}
    for result in results:
        for name, value in result["stats"].items():
            stats[name] = stats.get(name, 0) + value
    starved_stats: dict[str, int] = {}
    for result in results[workers - starved :]:
        for name, value in result["stats"].items():
            starved_stats[name] = starved_stats.get(name, 0) + value
    return {
        "store": backend,
        "workers": workers,
        "starved": starved,
        "operations": ops,
        "seconds": round(seconds, 2),
        "ops_per_second": round(ops / seconds, 2),
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p95_s": round(percentile(latencies, 95), 3),
        "wall_seconds_with_startup": round(wall, 2),
        "blocks": stack.block_number() - start_block,
        "lanes": len({(r["sender"], r["nonce"] >> 64) for r in records}),
        "resent": stats.get("resent", 0),
        "outbox_scans": stats.get("outbox_scans", 0),
        "starved_stopped": pauses,
        "starved_lanes_lost": starved_stats.get("lanes_lost", 0) if starved else 0,
        "starved_fenced": starved_stats.get("fenced", 0) if starved else 0,
    }


def _workers(row: dict[str, Any]) -> str:
    starved = row.get("starved", 0)
    return f"{row['workers']} ({starved} st.)" if starved else str(row["workers"])


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'store':<11} {'workers':>11} {'ops':>6} {'seconds':>8} {'ops/s':>7} {'p50 s':>7} {'p95 s':>7} {'lanes':>6} {'lost':>5}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['store']:<11} {_workers(row):>11} {row['operations']:>6} {row['seconds']:>8.1f} "
            f"{row['ops_per_second']:>7.1f} {row['latency_p50_s']:>7.2f} {row['latency_p95_s']:>7.2f} "
            f"{row['lanes']:>6} {row.get('starved_lanes_lost', 0):>5}"
        )
    print("(st.: starved workers; lost: lanes the starved workers lost to the others while stopped)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keyscope sessions at scale: throughput per worker count")
    parser.add_argument("--ops", type=int, default=600, help="operations per configuration")
    parser.add_argument("--sessions", type=int, default=100, help="sessions (one account each)")
    parser.add_argument("--concurrency", type=int, default=3, help="sends at once per worker process")
    parser.add_argument("--quick", action="store_true", help="200 operations over 40 sessions")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write scale.json")
    parser.add_argument(
        "--only",
        metavar="STORE:WORKERS:STARVED",
        action="append",
        help="run only these rows (e.g. postgresql:8:2)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.ops, args.sessions = 200, 40
    started = time.time()
    where = machine()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keyscope-scale-") as tmp:
        folder = Path(tmp)
        with LocalStack(**STACK_SETTINGS) as stack, PostgresServer() as postgres:
            print(f"granting {args.sessions} sessions on existing accounts...", flush=True)
            sessions = Sessions(stack, args.sessions)
            warm_up = f"sqlite:///{folder / 'warm-up.db'}"
            sessions.fill(warm_up)
            run_workers(
                stack, warm_up, sessions.intents(args.sessions, "enable"), 4, args.concurrency, folder
            )
            print("sessions enabled (one operation each, not measured)", flush=True)
            chosen = [c for c in CONFIGURATIONS if not args.only or ":".join(map(str, c)) in args.only]
            for backend, workers, starved in chosen:
                url = (
                    f"sqlite:///{folder / f'scale-{workers}.db'}"
                    if backend == "sqlite"
                    else postgres.create_database()
                )
                stack.mine(64)  # the base fee falls back (12.5 % per empty block): every row starts alike
                print(f"{backend} x{workers} ({starved} starved): {args.ops} operations...", flush=True)
                rows.append(
                    measure(
                        stack, sessions, backend, url, workers, args.ops, args.concurrency, folder, starved
                    )
                )
    print()
    print_table(rows)
    document = {
        "date": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": where,
        "alto": ALTO_VERSION,
        "settings": {
            "sessions": args.sessions,
            "operations_per_configuration": args.ops,
            "concurrency_per_worker": args.concurrency,
            "stack": STACK_SETTINGS,
            "worker": WORKER_SETTINGS,
            "starved": STARVED_SETTINGS,
        },
        "rows": rows,
    }
    if not args.no_write:
        path = ROOT / "benchmarks" / "scale.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
