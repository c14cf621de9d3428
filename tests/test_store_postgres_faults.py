"""The PostgreSQL store under what a real deployment does to it: a server whose default isolation is stricter
than READ COMMITTED, worker processes whose connections are killed mid-transaction, workers opening a new
store with different secrets at once, and the keys as the database holds them.

Workers are separate processes (``spawn``: nothing shared but the database), each with its own connections.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from keyscope.errors import NonceTakenError, WrongPassphraseError
from keyscope.hexutil import keccak, to_address
from keyscope.signing import LocalSigner
from keyscope.store import SqlStore, open_store
from keyscope.userop import UserOperation
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


def record_nonces(url: str, worker: int, nonces: list[int], start_at: float) -> dict[int, bool]:
    """Record one intent of this worker's per nonce under a lease (in a random order), a retry of each intent
    too; returns, per nonce, whether this worker's record was the one kept."""
    store = SqlStore(url, kek=KEK, retry_seconds=30)
    kept = {}
    try:
        lease = store.lease_lane(ACCOUNT, SESSION, f"w{worker}", 300)
        order = list(nonces)
        random.Random(worker).shuffle(order)
        time.sleep(max(0.0, start_at - time.time()))
        for nonce in order:
            op = UserOperation(sender=ACCOUNT, nonce=nonce, call_data=bytes([worker]))
            op_hash = "0x" + keccak(f"{nonce}/{worker}".encode()).hex()
            try:
                record = store.record_intent(f"n{nonce}/w{worker}", ACCOUNT, SESSION, 0, op, op_hash)
            except NonceTakenError:
                kept[nonce] = False
                continue
            assert record.user_op_hash == op_hash, (nonce, worker, record)
            # the caller retrying the intent (its answer lost with the connection) gets the same record
            again = store.record_intent(f"n{nonce}/w{worker}", ACCOUNT, SESSION, 0, op, keccak(b"other"))
            assert again.user_op_hash == op_hash, (nonce, worker, again)
            kept[nonce] = True
        renewed = store.renew_lease(lease, 300)
        assert renewed.lease_id == lease.lease_id, (lease, renewed)
    finally:
        store.close()
    return kept


def open_with_passphrase(url: str, passphrase: str, start_at: float) -> str:
    """Open the new store with ``passphrase`` at ``start_at`` and store a key: the key's address, or the
    error's class name."""
    time.sleep(max(0.0, start_at - time.time()))
    try:
        store = open_store(url, passphrase=passphrase, scrypt_n=2**10)
    except WrongPassphraseError:
        return "WrongPassphraseError"
    try:
        signer = LocalSigner.generate()
        store.put_key(signer)
        assert store.get_key(signer.address).private_key == signer.private_key
        return signer.address
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


def _kill_backends(url: str, stop: threading.Event, killed: list[int]) -> None:
    """Terminate every other connection to the database of ``url`` every few milliseconds, mid-transaction
    or idle, until ``stop``; every eighth time, after a quiet spell of a few hundred milliseconds. Without the
    spells, a machine busy enough for a transaction to outlast the kills' spacing saw every try of one killed until
    the store's retries (bounded in time, as they must be) gave up: a test of the machine's speed, not the store."""
    with psycopg.connect(url, autocommit=True) as killer:
        while not stop.is_set():
            rows = killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
            killed.append(sum(1 for (done,) in rows if done))
            quiet = len(killed) % 8 == 0
            time.sleep(random.uniform(0.2, 0.5) if quiet else random.uniform(0.005, 0.04))


def test_connections_killed_mid_transaction_never_let_two_records_share_a_nonce_or_lose_one(
    pool: ProcessPoolExecutor, postgres_server: PostgresServer
) -> None:
    """Three worker processes record one intent each for every nonce of a lane at once, while another
    connection kills their backends (``pg_terminate_backend``) again and again: inside transactions, between
    them, between a commit and its answer. Every nonce is kept by exactly one worker (the one whose
    operation the database holds), none is left without a record, and each retry of an intent finds its
    record."""
    url = postgres_server.create_database()
    open_store(url, kek=KEK).close()
    nonces = list(range(30))
    stop, killed = threading.Event(), []
    start = time.time() + 1.0
    futures = [pool.submit(record_nonces, url, worker, nonces, start) for worker in range(3)]
    killer = threading.Thread(target=_kill_backends, args=(url, stop, killed))
    time.sleep(max(0.0, start - 0.3 - time.time()))
    killer.start()
    try:
        results = [future.result(timeout=180) for future in futures]
    finally:
        stop.set()
        killer.join()
    assert sum(killed) > 0, "no backend was killed: the test proves nothing"
    for nonce in nonces:
        keepers = [worker for worker, kept in enumerate(results) if kept[nonce]]
        assert len(keepers) == 1, f"nonce {nonce} kept by workers {keepers}"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT nonce, intent_id FROM keyscope_outbox WHERE state <> 'failed' ORDER BY nonce"
        ).fetchall()
    held = {int(nonce, 16): intent for nonce, intent in rows}
    assert len(rows) == len(held) == len(nonces), "a nonce recorded twice, or one lost"
    for nonce in nonces:
        keeper = next(worker for worker, kept in enumerate(results) if kept[nonce])
        assert held[nonce] == f"n{nonce}/w{keeper}"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_workers_opening_a_new_store_at_once_with_different_passphrases_seal_under_one(
    pool: ProcessPoolExecutor, request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    """Workers configured with different passphrases open a new store at the same instant: the first to
    set the store's secret wins; every other is refused before it writes a key, so the table holds only keys
    the store's one passphrase opens, none of them in plaintext (SQLite for comparison)."""
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    start = time.time() + 1.0
    passphrases = ["right-one", "another", "a-third"]
    results = [
        future.result(timeout=120)
        for future in [pool.submit(open_with_passphrase, url, word, start) for word in passphrases]
    ]
    opened = [
        (word, address)
        for word, address in zip(passphrases, results, strict=True)
        if address != "WrongPassphraseError"
    ]
    assert len(opened) == 1, results
    winner, address = opened[0]
    store = open_store(url, passphrase=winner)
    try:
        assert [info.address for info in store.list_keys()] == [address]
        signer = store.get_key(address)
    finally:
        store.close()
    with pytest.raises(WrongPassphraseError):
        open_store(url, passphrase=next(word for word in passphrases if word != winner))
    if database == "sqlite":
        with closing(sqlite3.connect(tmp_path / "store.db")) as lite:
            sealed = lite.execute("SELECT sealed FROM keyscope_keys").fetchall()
    else:
        with psycopg.connect(url) as conn:
            sealed = conn.execute("SELECT sealed FROM keyscope_keys").fetchall()
    assert len(sealed) == 1
    raw = bytes(sealed[0][0])
    assert signer.private_key not in raw and signer.private_key.hex().encode() not in raw


def _version_1_store(url: str) -> None:
    """A database as schema version 1 left it, holding two live records with one nonce (what the unfenced
    protocol could leave) and one other."""
    import json

    from sqlalchemy import MetaData, create_engine, insert

    from keyscope.store.migrations import schema_version_table
    from keyscope.store.schema import version_1

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            metadata = MetaData()
            tables = version_1(metadata)
            schema_version_table.create(conn)
            metadata.create_all(conn)
            conn.execute(insert(schema_version_table).values(version=1, description="v1", applied_at=0.0))
            for n, (intent, nonce, state) in enumerate(
                [("live", 2, "sent"), ("live-twin", 2, "built"), ("other", 3, "built")], start=1
            ):
                op = UserOperation(sender=ACCOUNT, nonce=nonce, call_data=bytes([n]))
                conn.execute(
                    insert(tables.outbox).values(
                        intent_id=intent,
                        user_op_hash="0x" + keccak(bytes([n])).hex(),
                        account=ACCOUNT,
                        session_id=SESSION,
                        lane=0,
                        op_json=json.dumps(op.to_rpc()),
                        state=state,
                        attempts=1,
                        created_at=float(n),
                        updated_at=float(n),
                    )
                )
    finally:
        engine.dispose()


@pytest.mark.parametrize("level", ["read committed", "serializable"])
def test_workers_opening_an_old_store_at_once_migrate_it_once(
    pool: ProcessPoolExecutor, postgres_server: PostgresServer, level: str
) -> None:
    """A store of schema version 1, opened by three newer workers at the same instant (queued on the
    migration lock, so that each waits while another migrates): each migration is applied once, every worker
    opens the store, and the two live records with one nonce keep that nonce once."""
    url = _database_defaulting_to(postgres_server, level)
    _version_1_store(url)
    workers = 3
    with psycopg.connect(url, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        futures: list[Future[str]] = [pool.submit(open_and_lease, url) for _ in range(workers)]
        _wait_for_waiters(gate, workers, time.monotonic() + 120)
        gate.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        results = [future.result(timeout=120) for future in futures]
    assert results == ["ok"] * workers, results
    with psycopg.connect(url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM keyscope_schema_version ORDER BY 1")]
        kept = dict(conn.execute("SELECT intent_id, nonce FROM keyscope_outbox").fetchall())
    assert versions == [1, 2, 3]
    assert kept == {
        "live": "0x" + (2).to_bytes(32, "big").hex(),
        "live-twin": "none:2",
        "other": "0x" + (3).to_bytes(32, "big").hex(),
    }
