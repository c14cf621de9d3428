"""Where a dapp keeps its session keys, granted sessions, nonce lanes and in-flight UserOperations.

Open a store by URL with :func:`open_store`::

    store = open_store("sqlite:///keyscope.db", kek=kek_bytes)
    store.put_key(signer)
    lease = store.lease_lane(account, grant.session_id, worker_id="worker-1", ttl_seconds=60)

Backends: ``memory://`` (:class:`MemoryStore`), a directory (:class:`FileStore`), SQLite and PostgreSQL
(:class:`SqlStore`). See :mod:`keyscope.store.base` for the interface.
"""

from typing import TYPE_CHECKING, Any

from .base import KeyInfo, Lease, OutboxRecord, OutboxState, SessionStore
from .file import FileStore
from .memory import MemoryStore
from .opening import open_store

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = [
    "FileStore",
    "KeyInfo",
    "Lease",
    "MemoryStore",
    "OutboxRecord",
    "OutboxState",
    "SessionStore",
    "SqlStore",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """``SqlStore``, imported when first asked for: its database toolkit takes a fifth of a second to load, which a
    command that opens no SQL store need not pay."""
    if name == "SqlStore":
        from .sql import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
