"""Opening a session store by URL: the one place that knows every backend."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import BadInputError, StoreNotFoundError, shown
from ..urls import hide_password
from .base import SessionStore
from .file import FileStore, is_sqlite_file
from .memory import MemoryStore

__all__ = ["open_store"]

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
"""Names that say "a SQLite file": a plain path so named, where nothing is yet, is not set up as a folder store."""


def open_store(
    url: str | Path,
    *,
    passphrase: str | None = None,
    kek: bytes | None = None,
    scrypt_n: int | None = None,
    create: bool = True,
) -> SessionStore:
    """Open the store at ``url`` (``memory://``, a directory path or ``file:///...``, ``sqlite:///...``, ``postgresql://...``).

    * ``memory://`` keeps keys in memory only; ``passphrase`` and ``kek`` are not needed.
    * file stores encrypt each key in an eth-account keystore v3 file with ``passphrase`` (scrypt).
    * SQL stores encrypt keys with AES-256-GCM under a key-encryption key: ``kek`` (32 raw bytes) or one
      derived from ``passphrase`` with scrypt and a salt kept in the database.

    ``scrypt_n`` sets the scrypt cost for new key files (default 2**18) or for deriving the SQL KEK the
    first time the database is opened with a passphrase (default 2**15). A store opened without a
    passphrase or KEK serves grants, lanes and the outbox, and refuses key operations.

    ``create=False`` opens an existing store only: where ``url`` points at no keyscope store (no file or folder,
    an empty one, another program's database) it raises :class:`~keyscope.errors.StoreNotFoundError` and creates
    or writes nothing. A program that only reads or marks what its workers stored should open it so, lest a
    mistyped URL be taken for an empty store.
    Raises :class:`~keyscope.errors.WrongPassphraseError` when the passphrase or KEK is not the store's.
    """
    if passphrase is not None and kek is not None:
        raise BadInputError("give either passphrase or kek, not both")
    if not isinstance(create, bool):
        raise BadInputError(f"create must be True or False, got {shown(create)}")
    if isinstance(url, Path):
        url = str(url)
    if not isinstance(url, str) or not url:
        raise BadInputError(f"a store URL must be a non-empty string, got {shown(url)}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        if not create:
            raise StoreNotFoundError(url, "a memory store is a new, empty one each time it is opened")
        return MemoryStore()
    if scheme == "":
        refuse_scheme_without_slashes(url)
    if scheme in ("", "file"):
        path = url if scheme == "" else _file_url_path(url)
        if is_sqlite_file(Path(path)):
            raise BadInputError(
                f"{path} is a SQLite database, not a folder of keystore files: give sqlite:///{path}"
            )
        if kek is not None:
            raise BadInputError(
                "the file store encrypts keys as keystore v3 files with a passphrase: give "
                "passphrase=, not kek="
            )
        if scheme == "" and Path(path).suffix.lower() in _SQLITE_SUFFIXES and not Path(path).exists():
            # a plain path is a folder store: one named like a database file was most likely meant as SQLite
            raise BadInputError(
                f"store {shown(path)}: a plain path opens a folder of keystore files, and {path} is named like a "
                f"SQLite database: give sqlite:///{path} for a SQLite store, or file:// and the folder's absolute path "
                "for a folder store of that name"
            )
        return FileStore(path, passphrase=passphrase, scrypt_n=scrypt_n, create=create)
    if scheme.split("+", 1)[0] in ("sqlite", "postgresql", "postgres"):
        from .sql import SqlStore  # here: its database toolkit loads only for a SQL store

        return SqlStore(url, passphrase=passphrase, kek=kek, scrypt_n=scrypt_n, create=create)
    raise BadInputError(
        f"unknown store URL scheme {shown(scheme)} in {shown(hide_password(url))}: use memory://, file:///path/to/dir (or a "
        "plain path), "
        "sqlite:///path.db or postgresql://user@host:port/db"
    )


_SCHEME_WITHOUT_SLASHES = re.compile(r"(sqlite|postgresql|postgres|file|memory)(\+[a-z0-9]+)?:(?!//)", re.I)


def refuse_scheme_without_slashes(url: str) -> None:
    """Refuse ``postgresql:app@db/keyscope`` and ``sqlite:app.db``: a store URL's scheme without its ``//`` is a
    plain path to a folder store, which would be created there, in the working directory, instead of the
    database meant."""
    found = _SCHEME_WITHOUT_SLASHES.match(url)
    if found is None:
        return
    scheme, rest = found.group(0)[:-1], url[found.end() :]
    kind = scheme.lower().split("+", 1)[0]
    if kind == "sqlite":
        meant = f"{scheme}:///{rest}"  # sqlite:///relative.db, sqlite:////absolute.db
    elif kind == "file":
        meant = f"file://{rest}" if rest.startswith("/") else rest  # a relative folder is its plain path
    else:
        meant = f"{scheme}://{rest.lstrip('/')}"
    raise BadInputError(
        f"the store URL lacks the // after {scheme}: (as written it names a folder store in the working "
        f"directory, not the database meant): give {shown(hide_password(meant))}"
    )


def _file_url_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise BadInputError(
            f"file store URL {shown(hide_password(url))} names host {shown(hide_password('//' + parts.netloc)[2:])}: "
            "use file:///path/to/dir"
        )
    path = unquote(parts.path)
    if not path:
        raise BadInputError(f"file store URL {shown(url)} has no path: use file:///path/to/dir")
    return path
