"""Versioned schema for the SQL store: migrations applied in order when a store opens.

``keyscope_schema_version`` holds one row per applied migration. :func:`migrate` runs in one write
transaction under a lock (PostgreSQL: a transaction-level advisory lock; SQLite: the ``BEGIN IMMEDIATE``
write lock the transaction already holds), so several processes opening the same database at once apply
each migration exactly once and the others see the result. Both databases run DDL inside transactions,
so a migration that fails leaves no trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Double, Integer, MetaData, String, Table, insert, select, text

from ..errors import SessionStoreError
from .schema import LATEST_VERSION, version_1

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


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "keys, grants, nonce lanes and outbox", _create_version_1),)
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
