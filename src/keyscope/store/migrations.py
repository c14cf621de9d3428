"""Versioned schema for the SQL store: migrations applied in order when a store opens.

``keyscope_schema_version`` holds one row per applied migration. :func:`migrate` runs in one write
transaction under a lock (PostgreSQL: a transaction-level advisory lock; SQLite: the ``BEGIN IMMEDIATE``
write lock the transaction already holds), so several processes opening the same database at once apply
each migration exactly once and the others see the result. Both databases run DDL inside transactions,
so a migration that fails leaves no trace.

Version 2 (the outbox's fencing key) fills the new ``nonce`` column from each record's operation. A store
written before it may hold two records of one account, not failed, with one nonce (the timing fault the key
now rules out): the first keeps its nonce in the key and the later ones are left without (NULL, outside
the key), with a warning naming them. At most one of them can land; the worker that follows another finds it
displaced and rebuilds it.

Version 3 closes the key to writers that do not know it: a keyscope of schema version 1 still running
while a newer one migrated the store would record operations without a nonce, outside the key, and so
record two live operations with one nonce. Every record without a nonce is given its nonce (or, when
another live record has that nonce or its operation cannot be read, a marker that is no nonce,
``none:<seq>``), and from then on the database refuses a record without one (``NOT NULL`` on
PostgreSQL, triggers on SQLite): an older writer's record fails, before it sends anything.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.schema import CreateColumn

from ..errors import SessionStoreError
from .base import nonce_text
from .schema import LATEST_VERSION, NONCE_CLAIMED, Alteration, current, version_1, version_2

__all__ = ["MIGRATIONS", "Migration", "applied_versions", "migrate", "schema_version_table"]

log = logging.getLogger("keyscope.store")

# "keyscope" in ASCII: the advisory lock key that serialises migrations on PostgreSQL.
_ADVISORY_LOCK = int.from_bytes(b"keyscope", "big")

_version_metadata = MetaData()
schema_version_table = Table(
    "keyscope_schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", Double, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One schema change: ``apply`` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_version_1(conn: Connection) -> None:
    metadata = MetaData()
    version_1(metadata)
    metadata.create_all(conn, checkfirst=True)


def _alter(conn: Connection, alteration: Alteration) -> None:
    """Add an alteration's columns to its table (ALTER TABLE ... ADD COLUMN, as the dialect spells it)."""
    for column in alteration.columns:
        ddl = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {alteration.table.name} ADD COLUMN {ddl}"))


def _nonce_of(op_json: str) -> str | None:
    try:
        raw: Any = json.loads(op_json)["nonce"]
        return nonce_text(int(raw, 16) if isinstance(raw, str) else int(raw))
    except (ValueError, KeyError, TypeError, OverflowError):
        return None  # an unreadable record keeps no nonce; reading it reports the damage


def _add_fencing(conn: Connection) -> None:
    metadata = MetaData()
    alteration = version_2(version_1(metadata))
    _alter(conn, alteration)
    outbox = alteration.table
    rows = conn.execute(
        select(outbox.c.seq, outbox.c.account, outbox.c.state, outbox.c.op_json).order_by(outbox.c.seq)
    ).all()
    claimed: dict[tuple[str, str], int] = {}
    values = []
    for row in rows:
        nonce = _nonce_of(row.op_json)
        if nonce is None:
            continue
        if row.state != "failed":
            first = claimed.setdefault((row.account, nonce), row.seq)
            if first != row.seq:
                log.warning(
                    "outbox records %d and %d of %s (not failed) have the same nonce %s: record %d is left "
                    "outside the unique key; at most one of them can land, and the other's worker rebuilds it",
                    first,
                    row.seq,
                    row.account,
                    nonce,
                    row.seq,
                )
                continue
        values.append({"row_seq": row.seq, "row_nonce": nonce})
    if values:
        conn.execute(
            update(outbox).where(outbox.c.seq == bindparam("row_seq")).values(nonce=bindparam("row_nonce")),
            values,
        )
    for index in alteration.indexes:
        index.create(conn)


_NO_NONCE = (
    "keyscope_outbox.nonce is required since schema version 3: this keyscope is older than the store, "
    "upgrade it"
)


def _require_nonce(conn: Connection) -> None:
    """Give every record without a nonce its nonce (or a marker outside the key), then refuse records
    without one."""
    _, tables = current()
    outbox = tables.outbox
    rows = conn.execute(
        select(outbox.c.seq, outbox.c.account, outbox.c.state, outbox.c.op_json)
        .where(outbox.c.nonce.is_(None))
        .order_by(outbox.c.seq)
    ).all()
    for row in rows:
        nonce = _nonce_of(row.op_json)
        value = f"none:{row.seq}"
        if nonce is not None:
            holder = conn.execute(
                select(outbox.c.seq).where(
                    outbox.c.account == row.account, outbox.c.nonce == nonce, text(NONCE_CLAIMED)
                )
            ).first()
            if holder is None or row.state == "failed":
                value = nonce
            else:
                log.warning(
                    "outbox records %d and %d of %s (not failed) have the same nonce %s: record %d is left "
                    "outside the unique key; at most one of them can land, and the other's worker rebuilds it",
                    holder.seq,
                    row.seq,
                    row.account,
                    nonce,
                    row.seq,
                )
        conn.execute(update(outbox).where(outbox.c.seq == row.seq).values(nonce=value))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE keyscope_outbox ALTER COLUMN nonce SET NOT NULL")
        return
    for name, change in (("insert", "INSERT"), ("update", "UPDATE OF nonce")):
        conn.exec_driver_sql(
            f"CREATE TRIGGER keyscope_outbox_nonce_{name} BEFORE {change} ON keyscope_outbox "
            f"WHEN NEW.nonce IS NULL BEGIN SELECT RAISE(ABORT, '{_NO_NONCE}'); END"
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "keys, grants, nonce lanes and outbox", _create_version_1),
    Migration(2, "the outbox's unique (account, nonce) key, rebuilds and displaced operations", _add_fencing),
    Migration(3, "every outbox record has a nonce: writers that do not set it are refused", _require_nonce),
)
assert MIGRATIONS[-1].version == LATEST_VERSION


def applied_versions(conn: Connection) -> list[int]:
    """Versions recorded in ``keyscope_schema_version`` (empty when the table does not exist)."""
    if not conn.dialect.has_table(conn, schema_version_table.name):
        return []
    return sorted(conn.execute(select(schema_version_table.c.version)).scalars())


def migrate(conn: Connection) -> list[int]:
    """Apply the missing migrations in order, inside the caller's write transaction; returns those applied.

    Raises :class:`SessionStoreError` when the database was migrated by a newer keyscope.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    schema_version_table.create(conn, checkfirst=True)
    done = set(applied_versions(conn))
    newest = max(done, default=0)
    if newest > LATEST_VERSION:
        raise SessionStoreError(
            f"the database's schema is at version {newest}, newer than this keyscope knows "
            f"({LATEST_VERSION}): "
            "upgrade keyscope to use it"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        migration.apply(conn)
        conn.execute(
            insert(schema_version_table).values(
                version=migration.version, description=migration.description, applied_at=time.time()
            )
        )
        log.info("applied store schema migration %d: %s", migration.version, migration.description)
        applied.append(migration.version)
    return applied
