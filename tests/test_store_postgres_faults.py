"""The PostgreSQL store under what a real deployment does to it: a server whose default isolation is stricter
than READ COMMITTED, worker processes whose connections are killed mid-transaction, workers opening a new
store with different secrets at once, and the keys as the database holds them.

Workers are separate processes (``spawn``: nothing shared but the database), each with its own connections.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import psycopg
import pytest

from keyscope.hexutil import to_address
from keyscope.store import open_store
from support.postgres import PostgresServer, postgres_fixture

postgres_server = postgres_fixture(scope="module")

KEK = bytes(range(32))
ACCOUNT = to_address("0x" + "a1" * 20)
SESSION = "0x" + "5e" * 32
# the advisory lock key the store's migrations take: "keyscope" in ASCII
MIGRATION_LOCK = int.from_bytes(b"keyscope", "big")


# --------------------------------------------------------------------------------------------------
# Worker side: top-level functions, run in the pool's processes
# --------------------------------------------------------------------------------------------------


def ready() -> bool:
    return True


def open_and_lease(url: str) -> str:
    """Open the (new) store and lease a lane; "ok", or the error as text."""
    try:
        store = open_store(url, kek=KEK)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        store.lease_lane(ACCOUNT, SESSION, "w", 60)
        return "ok"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        store.close()


# --------------------------------------------------------------------------------------------------
# Test side
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as executor:
        assert all(f.result(timeout=120) for f in [executor.submit(ready) for _ in range(8)])
        yield executor


def _database_defaulting_to(server: PostgresServer, level: str) -> str:
    url = server.create_database()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = '{level}'")
    return url


def _wait_for_waiters(conn: psycopg.Connection[Any], count: int, deadline: float) -> None:
    """Until ``count`` other connections wait for the migration lock."""
    while True:
        waiting = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        if waiting is not None and waiting[0] >= count:
            return
        assert time.monotonic() < deadline, f"only {waiting} workers reached the migration lock"
        time.sleep(0.05)


@pytest.mark.parametrize("level", ["repeatable read", "serializable"])
def test_workers_opening_a_new_store_at_once_on_a_server_defaulting_to_a_stricter_isolation(
    pool: ProcessPoolExecutor, postgres_server: PostgresServer, level: str
) -> None:
    """A database whose administrator set ``default_transaction_isolation`` to REPEATABLE READ or SERIALIZABLE
    (a common hardening): workers opening the new store at once queue on the migration lock; the ones after
    the first must see the tables it created, not a snapshot taken before they waited."""
    url = _database_defaulting_to(postgres_server, level)
    workers = 3
    with psycopg.connect(url, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        futures: list[Future[str]] = [pool.submit(open_and_lease, url) for _ in range(workers)]
        _wait_for_waiters(gate, workers, time.monotonic() + 120)
        gate.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        results = [future.result(timeout=120) for future in futures]
    assert results == ["ok"] * workers, results
    store = open_store(url, kek=KEK, create=False)
    try:
        assert store.schema_version() >= 3
        assert sorted(lease.lane for lease in [store.lease_lane(ACCOUNT, SESSION, "t", 60)]) == [workers]
    finally:
        store.close()
