"""Tables of the SQL store (SQLAlchemy Core), the same for SQLite and PostgreSQL.

Each schema version is a function that adds its changes to a :class:`~sqlalchemy.MetaData`: the migration
of version N runs version N's function on the tables of the versions before it and creates what it defines,
and the tables the store queries are those of every version applied in order (:func:`current`). A version
that alters a table returns what it added (:class:`Alteration`), and its migration adds exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = ["LATEST_VERSION", "NONCE_CLAIMED", "Alteration", "Tables", "current", "version_1", "version_2"]

_ADDRESS = 42
_HASH = 66
_ID = 200

# An auto-incrementing 64-bit key: BIGSERIAL on PostgreSQL; SQLite needs INTEGER to alias the rowid.
_SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class Tables:
    """The store's tables."""

    meta: Table
    keys: Table
    grants: Table
    lanes: Table
    outbox: Table


def version_1(metadata: MetaData) -> Tables:
    """Version 1: meta, keys, grants, lanes and outbox."""
    meta = Table(
        "keyscope_meta",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    keys = Table(
        "keyscope_keys",
        metadata,
        Column("address", String(_ADDRESS), primary_key=True),
        Column("label", Text, nullable=True),
        Column("sealed", LargeBinary, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
    )
    grants = Table(
        "keyscope_grants",
        metadata,
        Column("session_id", String(_HASH), primary_key=True),
        Column("account", String(_ADDRESS), nullable=False),
        Column("session_key", String(_ADDRESS), nullable=False),
        Column("valid_after", BigInteger, nullable=False),
        Column("valid_until", BigInteger, nullable=False),
        Column("grant_json", Text, nullable=False),
        Column("revoked", Boolean, nullable=False),
        Column("enabled", Boolean, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
        Column("revoked_at", Double, nullable=True),
        Column("enabled_at", Double, nullable=True),
        Index("ix_keyscope_grants_account", "account", "created_at"),
        Index("ix_keyscope_grants_window", "revoked", "valid_after", "valid_until"),
    )
    lanes = Table(
        "keyscope_lanes",
        metadata,
        Column("account", String(_ADDRESS), primary_key=True),
        Column("session_id", String(_HASH), primary_key=True),
        Column("lane", Integer, primary_key=True, autoincrement=False),
        Column("worker_id", String(_ID), nullable=True),
        Column("lease_id", String(32), nullable=True),
        Column("expires_at", Double, nullable=True),
        Column("leased_at", Double, nullable=True),
        Index("ix_keyscope_lanes_lease", "lease_id", unique=True),
    )
    outbox = Table(
        "keyscope_outbox",
        metadata,
        Column("seq", _SEQUENCE, primary_key=True, autoincrement=True),
        Column("intent_id", String(_ID), nullable=False),
        Column("user_op_hash", String(_HASH), nullable=False),
        Column("account", String(_ADDRESS), nullable=False),
        Column("session_id", String(_HASH), nullable=False),
        Column("lane", Integer, nullable=False),
        Column("op_json", Text, nullable=False),
        Column("state", String(10), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
        Column("sent_at", Double, nullable=True),
        Column("finished_at", Double, nullable=True),
        Column("tx_hash", String(_HASH), nullable=True),
        Column("success", Boolean, nullable=True),
        Column("error", Text, nullable=True),
        Index("ux_keyscope_outbox_intent", "intent_id", unique=True),
        Index("ux_keyscope_outbox_hash", "user_op_hash", unique=True),
        Index("ix_keyscope_outbox_state", "state", "updated_at"),
        Index("ix_keyscope_outbox_account", "account", "seq"),
    )
    return Tables(meta=meta, keys=keys, grants=grants, lanes=lanes, outbox=outbox)


@dataclass(frozen=True)
class Alteration:
    """What a schema version adds to an existing table: columns, then indexes."""

    table: Table
    columns: tuple[Column[object], ...]
    indexes: tuple[Index, ...]


NONCE_CLAIMED = "state <> 'failed'"
"""The outbox rows whose nonce is taken: every record but the failed ones (a failed operation never landed,
so its nonce is free for the next operation on its lane)."""


def version_2(tables: Tables) -> Alteration:
    """Version 2: the outbox's fencing key and rebuilds.

    * ``nonce``: the operation's full 256-bit nonce (key and sequence) as 66 characters of hex, with the
      unique key ``(account, nonce)`` over the records that are not failed: two operations of one account
      that could both land, or one that landed and one that could, never share a nonce.
    * ``rebuilds`` and ``displaced``: how many times the intent's operation was displaced (its nonce used by
      another operation) and rebuilt, and the displaced userOpHashes (a JSON list).
    """
    outbox = tables.outbox
    columns: tuple[Column[object], ...] = (
        Column("nonce", String(_HASH), nullable=True),
        Column("rebuilds", Integer, nullable=False, server_default="0"),
        Column("displaced", Text, nullable=True),
    )
    for column in columns:
        outbox.append_column(column)
    claimed = text(NONCE_CLAIMED)
    nonce_key = Index(
        "ux_keyscope_outbox_nonce",
        outbox.c.account,
        outbox.c.nonce,
        unique=True,
        sqlite_where=claimed,
        postgresql_where=claimed,
    )
    return Alteration(outbox, columns, (nonce_key,))


LATEST_VERSION = 3
"""The schema version this code reads and writes (version 3 changes no table: it makes ``nonce`` required,
see :mod:`keyscope.store.migrations`)."""


def current() -> tuple[MetaData, Tables]:
    """The tables as of :data:`LATEST_VERSION`."""
    metadata = MetaData()
    tables = version_1(metadata)
    version_2(tables)
    return metadata, tables
