"""``sqlite:///path.db`` and ``postgresql://user@host:port/db``: the store for many workers.

One code path (SQLAlchemy 2 Core) serves both databases; what differs lives in :class:`_Dialect`:

* SQLite: every writing transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write lock
  up front, so a read-then-write (leasing a lane, recording an intent) is atomic across processes; WAL
  journal, a 30 s busy timeout, and the store's clock is the machine's.
* PostgreSQL: ``READ COMMITTED`` (set on every connection, whatever the server's default) with row locks;
  free lanes are picked with ``FOR UPDATE SKIP LOCKED`` so
  concurrent workers do not queue on one row; timestamps come from the server's clock, so workers on
  machines with skewed clocks agree on when a lease expires. Connections are checked before use and an
  operation that meets a dropped connection (a database restart) is retried for ``retry_seconds``.

Every update that could race is also guarded in its ``WHERE`` clause (a lane is only taken if it is still
free, a state only changes from the states it may change from), and inserts that collide on a unique key
are retried or resolved by reading the winner's row.

Private keys are sealed with AES-256-GCM (:mod:`keyscope.store.crypto`) under the operator's key-encryption
key; the database never sees them in plaintext.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    create_engine,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from ..errors import (
    BadInputError,
    ConfigurationError,
    SessionStoreError,
    StoreLockedError,
    StoreNotFoundError,
    WrongPassphraseError,
    a_type,
)
from ..grant import SessionGrant
from ..hexutil import to_address
from ..signing import LocalSigner
from ..urls import escape_password, hide_password, without_password
from ..userop import UserOperation
from .base import (
    PENDING_STATES,
    KeyInfo,
    Lease,
    NewOperation,
    OnCorrupt,
    OutboxRecord,
    OutboxState,
    SessionStore,
    grant_is_active,
    hash_taken,
    lease_lost,
    needs_rebuild,
    nonce_taken,
    normalize_session_id,
    pending_cutoff,
    refuse_another_place,
    stored_record,
    transition_error,
    unknown_operation,
)
from .crypto import KeyEncryptionKey, ScryptParams
from .migrations import applied_versions, migrate, schema_version_table
from .schema import NONCE_CLAIMED, current

__all__ = ["SqlStore"]

log = logging.getLogger("keyscope.store")
T = TypeVar("T")

_KEK_CHECK = "kek.check"
_KEK_SCRYPT = "kek.scrypt"
_PENDING = [state.value for state in PENDING_STATES]
_RACE_ATTEMPTS = 100
_SQLITE_BUSY_SECONDS = 30.0
"""How long a SQLite connection waits for another connection's write lock."""


class _Dialect:
    """What SQLite needs; :class:`_Postgres` overrides the differences."""

    name = "sqlite"

    def now(self, conn: Connection) -> float:
        """The store clock: this machine's (SQLite lives on one machine)."""
        return time.time()

    def pick_free(self, query: Select[Any]) -> Select[Any]:
        """SQLite's ``BEGIN IMMEDIATE`` already excludes every other writer: no row locks."""
        return query

    def lock(self, query: Select[Any]) -> Select[Any]:
        """Lock the selected rows until the transaction ends (SQLite: the write lock already does)."""
        return query

    def transient(self, exc: DBAPIError) -> bool:
        """Whether retrying the whole transaction may succeed."""
        return bool(exc.connection_invalidated)

    def describe(self, exc: DBAPIError, url: str) -> SessionStoreError:
        message = _first_line(exc)
        if "locked" in message or "busy" in message:
            return StoreLockedError(
                f"the SQLite database {url} stayed locked by another writer past the busy timeout "
                f"({message}): "
                "retry, and keep write transactions short"
            )
        return SessionStoreError(f"SQLite database {url}: {message}; check the file, its folder and the disk")


class _Postgres(_Dialect):
    name = "postgresql"

    def now(self, conn: Connection) -> float:
        """The server's clock, shared by every worker whatever its machine's clock says."""
        return float(conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())

    def pick_free(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update(skip_locked=True)

    def lock(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update()

    def transient(self, exc: DBAPIError) -> bool:
        code = getattr(exc.orig, "sqlstate", None)
        if _login_refused(exc) is not None:
            return False  # the server is up and will refuse this login again: waiting changes nothing
        if exc.connection_invalidated or (isinstance(exc, OperationalError) and code is None):
            return True  # the connection dropped, or the server refused it (down or restarting)
        # 40001 serialization failure, 40P01 deadlock, 57P01-57P03 shutting down or starting, class 08.
        return isinstance(code, str) and (
            code in ("40001", "40P01", "57P01", "57P02", "57P03") or code.startswith("08")
        )

    def describe(self, exc: DBAPIError, url: str) -> SessionStoreError:
        refused = _login_refused(exc)
        if refused is not None:
            return SessionStoreError(
                f"PostgreSQL at {url} refused the connection: {_first_line(exc)}; {refused} (nothing was read or "
                "written)"
            )
        if getattr(exc.orig, "sqlstate", None) == "42501":  # insufficient privilege
            return SessionStoreError(
                f"PostgreSQL at {url} refused the operation: {_first_line(exc)}; the store URL's role may not "
                "create or use keyscope's tables in this database: give a database the role owns (CREATE DATABASE "
                "keyscope OWNER role; docs/scaling.md), or grant it the rights (nothing was written)"
            )
        if not self.transient(exc):  # the server answered and refused this statement
            return SessionStoreError(
                f"PostgreSQL at {url} refused the operation: {_first_line(exc)}; check the database and its "
                "keyscope tables (nothing was written)"
            )
        return SessionStoreError(
            f"PostgreSQL at {url}: {_first_line(exc)}; check the server is running and reachable. "
            "Every store "
            "operation is safe to retry."
        )


# what the server says when it refuses a login for good (psycopg gives these no SQLSTATE), and what to do
_LOGIN_REFUSALS = (
    (
        re.compile(r"password authentication failed for user|no password supplied|authentication failed"),
        "check the user and password in the store URL (a password with @ : / ? # is best percent-encoded)",
    ),
    (
        re.compile(r'database "[^"]*" does not exist'),
        "check the database name in the store URL, or create the database first (CREATE DATABASE; keyscope "
        "creates its tables, not the database)",
    ),
    (
        re.compile(r'role "[^"]*" does not exist'),
        "check the user name in the store URL, or create the role first (CREATE ROLE ... LOGIN PASSWORD ...)",
    ),
    (
        re.compile(r"no pg_hba\.conf entry|permission denied for database|not permitted to log in"),
        "the server does not let this user connect to this database from here: check its pg_hba.conf and the "
        "role's CONNECT privilege and LOGIN attribute",
    ),
)


def _login_refused(exc: DBAPIError) -> str | None:
    """What to do about a login the server refused for good (wrong password, no such database or role), else
    None: a refusal that retrying cannot cure, unlike a server that is down or restarting."""
    if not isinstance(exc, OperationalError) or getattr(exc.orig, "sqlstate", None) is not None:
        return None
    message = _first_line(exc)
    for pattern, advice in _LOGIN_REFUSALS:
        if pattern.search(message):
            return advice
    return None


def _first_line(exc: DBAPIError) -> str:
    text_ = str(exc.orig) if exc.orig is not None else type(exc).__name__
    return (text_.strip().splitlines() or [type(exc).__name__])[0]


def _parse_url(url: object) -> URL:
    """``url`` parsed; :class:`BadInputError` when it is not a database URL (a port that is not a number, an
    unclosed ``[``, not a string at all). A password holding an ``@`` is taken whole, as if percent-encoded."""
    if not isinstance(url, str):
        raise BadInputError(f"a database URL must be a string, got {type(url).__name__}")
    try:
        return make_url(escape_password(url))
    except (ArgumentError, ValueError) as exc:
        problem = without_password(str(exc), url)
        if port := re.fullmatch(r"invalid literal for int\(\) with base 10: '(.*)'", problem):
            problem = f"its port {port.group(1)!r} is not a number"
        raise BadInputError(
            f"{hide_password(url)!r} is not a database URL ({problem}): use sqlite:///path.db or "
            "postgresql://user@host:port/db"
        ) from None


def _normalize_url(given: str) -> tuple[URL, _Dialect]:
    parsed = _parse_url(given)
    url = hide_password(given)  # messages name the URL without its password
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise BadInputError(
                f"{url!r} is not a SQLite file: give sqlite:///path.db (use memory:// for a store in memory)"
            )
        if "\x00" in database:
            raise BadInputError(f"{url!r} names a file with a NUL character: give sqlite:///path.db")
        if parsed.query:
            # pysqlite would ignore most of them (``?mode=ro`` opens the file for writing all the same)
            raise BadInputError(
                f"{url!r} carries options ({', '.join(sorted(parsed.query))}): the SQLite store sets its own "
                "(WAL journal, busy timeout); give sqlite:///path.db"
            )
        return parsed.set(drivername="sqlite+pysqlite"), _Dialect()
    if backend in ("postgresql", "postgres"):
        if parsed.port is not None and not 0 < parsed.port < 65536:
            # the driver would call it a connection failure, retried for retry_seconds
            raise BadInputError(f"{url!r} names port {parsed.port}: a port is a number from 1 to 65535")
        return parsed.set(drivername="postgresql+psycopg"), _Postgres()
    raise BadInputError(f"unsupported database {backend!r} in {url!r}: use sqlite or postgresql")


def _use_wal(cursor: Any) -> None:
    """Switch the database to the WAL journal (a no-op once it is: the mode is kept in the file).

    The switch needs the file to itself, and while another connection is writing in the old journal mode
    (several processes or threads opening a new store at once: one of them is creating the tables) SQLite
    answers "database is locked" at once, without waiting out the busy timeout. That is waited out here.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    pause = 0.01
    while True:
        try:
            row = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() + pause > deadline:
                raise
        else:
            if (row and str(row[0]).lower() == "wal") or time.monotonic() + pause > deadline:
                return
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _sqlite_cause(path: Path) -> str | None:
    """Why SQLite cannot open and write the database at ``path`` (None when nothing visible stops it)."""
    if path.is_dir():
        return f"{path} is a folder, not a database file: give a file path, e.g. {path / 'sessions.db'}"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"the file {path} cannot be read and written by this user (or its file system is read-only)"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return (
            f"the folder {path.parent} cannot be written by this user (or its file system is read-only); SQLite "
            "writes its journal files beside the database"
        )
    return None


def _sqlite_engine(url: URL) -> Engine:
    path = Path(url.database or "")
    if not path.parent.is_dir():
        raise SessionStoreError(f"cannot create the SQLite store {path}: folder {path.parent} does not exist")
    cause = _sqlite_cause(path)
    if cause is not None:
        raise SessionStoreError(f"cannot open the SQLite store {path}: {cause}")
    if not path.exists():
        # The file holds sealed keys: readable by its owner only (SQLite gives -wal and -shm the same mode).
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise SessionStoreError(f"cannot create the SQLite store {path}: {exc.strerror}") from None
    engine = create_engine(
        url, connect_args={"timeout": _SQLITE_BUSY_SECONDS, "check_same_thread": False}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun explicitly below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_SECONDS * 1000)}")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("keyscope_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: URL) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "the PostgreSQL store needs psycopg 3: pip install 'keyscope[postgres]'"
        ) from None
    try:
        return create_engine(
            url,
            pool_pre_ping=True,
            # the store's transactions are written for READ COMMITTED (each statement sees what committed before
            # it: the migration after the advisory lock, the lane and outbox writes after their row locks), not
            # for whatever default_transaction_isolation the server or the database was given
            isolation_level="READ COMMITTED",
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": 10},
            hide_parameters=True,
        )
    except NoSuchModuleError:  # pragma: no cover - psycopg imported above
        raise ConfigurationError(
            "SQLAlchemy cannot load the psycopg driver: pip install 'psycopg[binary]'"
        ) from None


def _require_sqlite_store(path: Path, url: str) -> None:
    """Refuse, for a store opened with ``create=False``, a SQLite path that holds no keyscope store: no file, an
    empty one, or another program's database. Asked through a read-only connection, before the store's engine
    (which would create the file and turn on write-ahead logging) touches it."""
    if not path.exists():
        raise StoreNotFoundError(url, f"there is no SQLite file {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise StoreNotFoundError(url, f"{path} is an empty file, not a keyscope store")
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as database:
            tables = [
                row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
    except sqlite3.Error:
        return  # not a database, or locked: opening it says which
    if schema_version_table.name not in tables:
        listed = ", ".join(sorted(tables)[:8]) + (", …" if len(tables) > 8 else "") if tables else "none"
        raise StoreNotFoundError(
            url, f"the SQLite database {path} holds no keyscope store (its tables: {listed})"
        )


class SqlStore(SessionStore):
    """The store in a SQLite file or a PostgreSQL database. Safe to share between threads, processes and
    machines: each process opens its own :class:`SqlStore` on the same URL.

    ``kek`` (32 bytes) or ``passphrase`` unlocks the keys; a store opened with neither serves grants, lanes
    and the outbox. ``retry_seconds`` bounds how long an operation retries after losing its connection. With
    ``create`` false the database must already hold a keyscope store (:class:`StoreNotFoundError` otherwise, and
    nothing is written): for a program that only reads or marks what its workers stored.
    """

    def __init__(
        self,
        url: str,
        *,
        passphrase: str | None = None,
        kek: bytes | None = None,
        scrypt_n: int | None = None,
        retry_seconds: float = 15.0,
        create: bool = True,
    ) -> None:
        if passphrase is not None and kek is not None:
            raise BadInputError("give either passphrase or kek, not both")
        if passphrase is not None and (not isinstance(passphrase, str) or not passphrase):
            raise BadInputError("the passphrase must be a non-empty string")
        if (
            isinstance(retry_seconds, bool)
            or not isinstance(retry_seconds, (int, float))
            or not 0 <= retry_seconds < float("inf")
        ):
            raise BadInputError(
                f"retry_seconds must be a finite number of seconds >= 0, got {retry_seconds!r}"
            )
        parsed, self._dialect = _normalize_url(url)
        # messages show the URL as it was given (without the driver added here), its password hidden
        # (and a ``password`` query parameter's value too: libpq reads it as the password)
        self.url = hide_password(_parse_url(url).render_as_string(hide_password=True))
        self._retry_seconds = retry_seconds
        if not create and self._dialect.name == "sqlite":
            _require_sqlite_store(Path(parsed.database or ""), self.url)
        self._engine = _sqlite_engine(parsed) if self._dialect.name == "sqlite" else _postgres_engine(parsed)
        _, self._t = current()
        self._kek: KeyEncryptionKey | None = None

        def set_up(conn: Connection) -> list[int]:
            if not create and not inspect(conn).has_table(schema_version_table.name):
                database = "SQLite" if self._dialect.name == "sqlite" else "PostgreSQL"
                raise StoreNotFoundError(
                    self.url,
                    f"the {database} database holds no keyscope store (no keyscope tables where the connection looks)",
                )
            return migrate(conn)

        try:
            self._run(set_up, write=True)
            if kek is not None:
                self._kek = self._unlock(KeyEncryptionKey(kek), raw=True)
            elif passphrase is not None:
                self._kek = self._unlock_passphrase(passphrase, scrypt_n)
        except BaseException:
            self._engine.dispose()
            raise

    # -- plumbing --------------------------------------------------------------------------------------

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Connection]:
        try:
            connected = self._engine.connect()
        except UnicodeError as exc:  # the driver looks the host up by its IDNA name: "db..example" is none
            raise SessionStoreError(
                f"store {self.url}: its host name cannot be looked up ({exc}); check the URL"
            ) from None
        with connected as conn:
            if write:
                conn.execution_options(keyscope_write=True)
            with conn.begin():
                yield conn

    def _run(self, work: Callable[[Connection], T], *, write: bool) -> T:
        """Run ``work`` in one transaction; retry it after a lost connection or a deadlock.

        :class:`IntegrityError` goes to the caller, which knows what a duplicate key means.
        """
        deadline = time.monotonic() + self._retry_seconds
        pause = 0.05
        level = logging.WARNING  # the first retry of this operation; the others only for debugging
        while True:
            try:
                with self._tx(write) as conn:
                    return work(conn)
            except IntegrityError:
                raise
            except DBAPIError as exc:
                if self._dialect.transient(exc) and time.monotonic() + pause < deadline:
                    log.log(level, "store %s: %s; retrying", self.url, _first_line(exc))
                    level = logging.DEBUG
                    time.sleep(pause)
                    pause = min(pause * 2, 1.0)
                    continue
                raise self._dialect.describe(exc, self.url) from None
            except SQLAlchemyError as exc:
                raise SessionStoreError(f"store {self.url}: {type(exc).__name__}: {exc}") from None

    def _run_racing(self, work: Callable[[Connection], T]) -> T:
        """:meth:`_run` a writing ``work`` again when a concurrent insert took its unique key first."""
        for _ in range(_RACE_ATTEMPTS):
            try:
                return self._run(work, write=True)
            except IntegrityError:
                time.sleep(random.uniform(0, 0.005))
        raise StoreLockedError(
            f"store {self.url}: gave up after {_RACE_ATTEMPTS} collisions with concurrent writers; retry"
        )

    def has_secret(self) -> bool:
        return self._run(lambda conn: self._meta(conn, _KEK_CHECK), write=False) is not None

    def schema_version(self) -> int:
        """The highest schema migration applied to the database."""
        return max(self._run(applied_versions, write=False), default=0)

    # -- key-encryption key ----------------------------------------------------------------------------

    def _meta(self, conn: Connection, name: str) -> str | None:
        meta = self._t.meta
        value = conn.execute(select(meta.c.value).where(meta.c.name == name)).scalar_one_or_none()
        return None if value is None else str(value)

    def _meta_once(self, name: str, value: str) -> str:
        """Store ``value`` under ``name`` unless a value is there already; returns the stored one."""

        def work(conn: Connection) -> str:
            existing = self._meta(conn, name)
            if existing is not None:
                return existing
            conn.execute(insert(self._t.meta).values(name=name, value=value))
            return value

        return self._run_racing(work)

    def _unlock_passphrase(self, passphrase: str, scrypt_n: int | None) -> KeyEncryptionKey:
        stored = self._run(
            lambda conn: (self._meta(conn, _KEK_SCRYPT), self._meta(conn, _KEK_CHECK)), write=False
        )
        text_, check = stored
        if text_ is None and check is not None:
            raise WrongPassphraseError(
                f"the keys in {self.url} are sealed under a raw key-encryption key, not a passphrase: "
                "open the store with kek= (for the keyscope command, KEYSCOPE_STORE_KEK: 64 hex digits)"
            )
        if text_ is None:
            text_ = self._meta_once(_KEK_SCRYPT, ScryptParams.new(scrypt_n).encode())
        params = ScryptParams.decode(text_)
        if params is None:
            raise self._corrupted_meta(_KEK_SCRYPT)
        return self._unlock(KeyEncryptionKey.derive(passphrase, params), raw=False)

    def _unlock(self, kek: KeyEncryptionKey, *, raw: bool) -> KeyEncryptionKey:
        check_hex = self._meta_once(_KEK_CHECK, kek.check_value().hex())
        try:
            check = bytes.fromhex(check_hex)
        except ValueError:
            raise self._corrupted_meta(_KEK_CHECK) from None
        if not KeyEncryptionKey.well_formed(check):
            raise self._corrupted_meta(_KEK_CHECK)
        if not kek.matches(check):
            if raw and self._run(lambda conn: self._meta(conn, _KEK_SCRYPT), write=False) is not None:
                raise WrongPassphraseError(
                    f"the keys in {self.url} are sealed under a passphrase, not a raw key-encryption key: open the "
                    "store with passphrase= (for the keyscope command, KEYSCOPE_STORE_PASSPHRASE)"
                )
            what = "key-encryption key" if raw else "passphrase"
            raise WrongPassphraseError(
                f"the {what} does not open the keys in {self.url}: give the one the store was created with"
            )
        return kek

    def _corrupted_meta(self, name: str) -> SessionStoreError:
        return SessionStoreError(
            f"row name={name!r} of table keyscope_meta in {self.url} is corrupted: it was left as is; "
            "restore it from a backup"
        )

    def _need_kek(self) -> KeyEncryptionKey:
        if self._kek is None:
            raise ConfigurationError(
                f"the store {self.url} was opened without a passphrase or key-encryption key: open it with "
                "passphrase= or kek= to store or read keys"
            )
        return self._kek

    # -- keys ------------------------------------------------------------------------------------------

    def _scalar(self, query: Select[Any]) -> Any:
        """The one value ``query`` selects, or None, read in a transaction of its own."""
        return self._run(lambda conn: conn.execute(query).scalar_one_or_none(), write=False)

    def _put_key(self, signer: LocalSigner, label: str | None) -> None:
        kek = self._need_kek()
        address = signer.address
        keys = self._t.keys

        def work(conn: Connection) -> None:
            now = self._dialect.now(conn)
            sealed = kek.seal(signer.private_key, bytes.fromhex(address[2:]))
            found = conn.execute(select(keys.c.address).where(keys.c.address == address)).first()
            if found is None:
                conn.execute(
                    insert(keys).values(
                        address=address, label=label, sealed=sealed, created_at=now, updated_at=now
                    )
                )
                return
            values: dict[str, Any] = {"sealed": sealed, "updated_at": now}
            if label is not None:
                values["label"] = label
            conn.execute(update(keys).where(keys.c.address == address).values(**values))

        self._run_racing(work)

    def get_key(self, address: str) -> LocalSigner:
        name = to_address(address)
        kek = self._need_kek()
        keys = self._t.keys
        sealed = self._scalar(select(keys.c.sealed).where(keys.c.address == name))
        if sealed is None:
            raise SessionStoreError(f"no key for {name} in {self.url}: store it with put_key first")
        where = f"row address={name} of table keyscope_keys in {self.url}"
        if not isinstance(sealed, (bytes, bytearray, memoryview)):  # SQLite keeps any type in any column
            raise _corrupted(where, f"sealed is {a_type(sealed)}, not bytes")
        raw = kek.open(bytes(sealed), bytes.fromhex(name[2:]))
        if raw is None:
            raise _corrupted(
                where, "it does not decrypt with the key-encryption key the store's check value accepts"
            )
        try:
            signer = LocalSigner(raw)
        except Exception:
            raise _corrupted(where, "it decrypts to a value that is not a private key") from None
        if signer.address != name:
            raise _corrupted(where, f"it holds the key of {signer.address}")
        return signer

    def has_key(self, address: str) -> bool:
        name = to_address(address)
        keys = self._t.keys
        return self._scalar(select(keys.c.address).where(keys.c.address == name)) is not None

    def delete_key(self, address: str) -> bool:
        name = to_address(address)
        keys = self._t.keys
        count = self._run(
            lambda conn: conn.execute(sql_delete(keys).where(keys.c.address == name)).rowcount, write=True
        )
        return bool(count)

    def list_keys(self) -> list[KeyInfo]:
        keys = self._t.keys
        query = select(keys.c.address, keys.c.label, keys.c.created_at).order_by(
            keys.c.created_at, keys.c.address
        )
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        infos = []
        for row in rows:
            created, label = row.created_at, row.label
            if isinstance(created, bool) or not isinstance(created, (int, float)):
                where = f"row address={row.address} of table keyscope_keys in {self.url}"
                raise _corrupted(where, f"created_at {created!r} is not a time")
            if label is not None and not isinstance(label, str):
                where = f"row address={row.address} of table keyscope_keys in {self.url}"
                raise _corrupted(where, f"label {label!r} is not text")
            infos.append(KeyInfo(row.address, label, float(created)))
        return infos

    # -- grants ----------------------------------------------------------------------------------------

    def _parse_grant(self, session_id: str, grant_json: str) -> SessionGrant:
        where = f"row session_id={session_id} of table keyscope_grants in {self.url}"
        try:
            grant = SessionGrant.from_json(grant_json)
        except Exception as exc:
            raise _corrupted(where, f"grant_json does not parse: {str(exc).splitlines()[0]}") from None
        if "0x" + grant.session_id.hex() != session_id:
            raise _corrupted(where, f"grant_json holds session {grant.session_id.hex()}")
        return grant

    def _put_grant(self, grant: SessionGrant, session_id: str) -> None:
        grants = self._t.grants
        onchain = grant.how == "onchain"

        def work(conn: Connection) -> None:
            now = self._dialect.now(conn)
            values: dict[str, Any] = {
                "account": grant.account,
                "session_key": grant.session_key,
                "valid_after": grant.valid_after,
                "valid_until": grant.valid_until,
                "grant_json": grant.to_json(),
                "updated_at": now,
            }
            # locked (PostgreSQL) for the comparison below: two workers storing grants of two chains under one id at
            # once would each compare with the row as it was, and the second replace the first
            found = conn.execute(
                self._dialect.lock(
                    select(grants.c.enabled, grants.c.grant_json).where(grants.c.session_id == session_id)
                )
            ).first()
            if found is not None:
                try:
                    stored = self._parse_grant(session_id, found.grant_json)
                except SessionStoreError:
                    stored = None  # a damaged row is replaced by the grant given, as before
                if stored is not None:
                    refuse_another_place(stored, grant, self.url)
            if found is None:
                conn.execute(
                    insert(grants).values(
                        session_id=session_id,
                        revoked=False,
                        enabled=onchain,
                        created_at=now,
                        enabled_at=now if onchain else None,
                        **values,
                    )
                )
                return
            if onchain and not found.enabled:
                values.update(enabled=True, enabled_at=now)
            conn.execute(update(grants).where(grants.c.session_id == session_id).values(**values))

        self._run_racing(work)

    def _unknown_grant(self, session_id: str) -> SessionStoreError:
        return SessionStoreError(
            f"no grant with session id {session_id} in {self.url}: store it with put_grant first"
        )

    def get_grant(self, session_id: bytes | str) -> SessionGrant:
        name = normalize_session_id(session_id)
        grants = self._t.grants
        text_ = self._scalar(select(grants.c.grant_json).where(grants.c.session_id == name))
        if text_ is None:
            raise self._unknown_grant(name)
        return self._parse_grant(name, text_)

    def _list_grants(
        self, account: str | None, active_only: bool, now: float, on_corrupt: OnCorrupt | None
    ) -> list[SessionGrant]:
        grants = self._t.grants
        query = select(grants.c.session_id, grants.c.grant_json, grants.c.revoked).order_by(
            grants.c.created_at, grants.c.session_id
        )
        if account is not None:
            query = query.where(grants.c.account == account)
        if active_only:
            query = query.where(
                grants.c.revoked.is_(False),
                grants.c.valid_after <= now,
                or_(grants.c.valid_until == 0, grants.c.valid_until >= now),
            )
        rows = self._run(lambda conn: conn.execute(query).all(), write=False)
        found = []
        for row in rows:
            try:
                found.append((self._parse_grant(row.session_id, row.grant_json), bool(row.revoked)))
            except SessionStoreError as error:
                if on_corrupt is None:
                    raise
                on_corrupt(row.session_id, error)
        return [grant for grant, revoked in found if not active_only or grant_is_active(grant, revoked, now)]

    def _set_flag(self, session_id: str, flag: str) -> None:
        grants = self._t.grants

        def work(conn: Connection) -> int:
            now = self._dialect.now(conn)
            stamp = grants.c[f"{flag}_at"]
            result = conn.execute(
                update(grants)
                .where(grants.c.session_id == session_id)
                .values({flag: True, stamp.key: func.coalesce(stamp, now), "updated_at": now})
            )
            return result.rowcount

        if not self._run(work, write=True):
            raise self._unknown_grant(session_id)

    def _flag(self, session_id: str, flag: str) -> bool:
        grants = self._t.grants
        value = self._scalar(select(grants.c[flag]).where(grants.c.session_id == session_id))
        if value is None:
            raise self._unknown_grant(session_id)
        return bool(value)

    # -- nonce lanes -----------------------------------------------------------------------------------

    def _lease_lane(self, account: str, session_id: str, worker_id: str, ttl: float) -> Lease:
        lanes = self._t.lanes
        mine = and_(lanes.c.account == account, lanes.c.session_id == session_id)

        def work(conn: Connection) -> Lease | None:
            now = self._dialect.now(conn)
            free = or_(lanes.c.lease_id.is_(None), lanes.c.expires_at <= now)
            candidate = conn.execute(
                self._dialect.pick_free(
                    select(lanes.c.lane, lanes.c.worker_id, lanes.c.lease_id)
                    .where(mine, free)
                    .order_by(lanes.c.lane)
                    .limit(1)
                )
            ).first()
            # the lease starts once the lane row is held (PostgreSQL: locked by the select above): a record that
            # committed under the previous lease before then is older than the new lease, never dated after it
            granted = self._dialect.now(conn)
            lease_id = secrets.token_hex(16)
            values = {
                "worker_id": worker_id,
                "lease_id": lease_id,
                "expires_at": granted + ttl,
                "leased_at": granted,
            }
            if candidate is not None:
                taken = conn.execute(
                    update(lanes).where(mine, lanes.c.lane == candidate.lane, free).values(**values)
                )
                if taken.rowcount != 1:
                    return None  # another worker took it between our read and write: try again
                if candidate.lease_id is not None:
                    log.info(
                        "reclaimed lane %d of %s/%s from expired lease of %s",
                        candidate.lane,
                        account,
                        session_id,
                        candidate.worker_id,
                    )
                lane = self._lane_number(candidate.lane, account, session_id)
            else:
                top = conn.execute(select(func.max(lanes.c.lane)).where(mine)).scalar_one_or_none()
                lane = 0 if top is None else self._lane_number(top, account, session_id) + 1
                conn.execute(
                    insert(lanes).values(account=account, session_id=session_id, lane=lane, **values)
                )
            return Lease(lane, lease_id, granted + ttl, account, session_id, worker_id)

        for _ in range(_RACE_ATTEMPTS):
            lease = self._run_racing(work)
            if lease is not None:
                return lease
        raise StoreLockedError(
            f"could not lease a lane of {account}/{session_id} in {self.url}: too much contention; retry"
        )

    def _lane_number(self, value: Any, account: str, session_id: str) -> int:
        """A lane number read from the lanes table; a corrupted row when it is not one the store writes."""
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31 - 1:
            where = f"a row of {account}/{session_id} in table keyscope_lanes of {self.url}"
            raise _corrupted(where, f"lane {value!r} is not a lane number")
        return value

    def _lease_row(self, lease: Lease) -> Any:
        """The lane row while ``lease`` holds it (its fencing token is the row's ``lease_id``)."""
        lanes = self._t.lanes
        return and_(
            lanes.c.lease_id == lease.lease_id,
            lanes.c.account == lease.account,
            lanes.c.session_id == lease.session_id,
            lanes.c.lane == lease.lane,
        )

    def _renew_lease(self, lease: Lease, ttl: float) -> Lease:
        lanes = self._t.lanes

        def work(conn: Connection) -> float | None:
            now = self._dialect.now(conn)
            result = conn.execute(update(lanes).where(self._lease_row(lease)).values(expires_at=now + ttl))
            return now + ttl if result.rowcount == 1 else None

        expires = self._run(work, write=True)
        if expires is None:
            raise lease_lost(lease, self.url)
        return Lease(lease.lane, lease.lease_id, expires, lease.account, lease.session_id, lease.worker_id)

    def _release_lease(self, lease: Lease) -> bool:
        lanes = self._t.lanes
        released = update(lanes).where(self._lease_row(lease))
        released = released.values(worker_id=None, lease_id=None, expires_at=None, leased_at=None)
        return bool(self._run(lambda conn: conn.execute(released).rowcount, write=True))

    def _hold(self, conn: Connection, lease: Lease) -> None:
        """Fence the transaction on ``conn``: lock the lane row while ``lease`` holds it, so that no other
        worker can take the lane before this transaction ends; :class:`LeaseLostError` when it does not."""
        lanes = self._t.lanes
        held = conn.execute(self._dialect.lock(select(lanes.c.lane).where(self._lease_row(lease)))).first()
        if held is None:
            raise lease_lost(lease, self.url)

    # -- outbox ----------------------------------------------------------------------------------------

    def _record(self, row: Any) -> OutboxRecord:
        where = f"row intent_id={row.intent_id!r} of table keyscope_outbox in {self.url}"
        try:
            displaced = json.loads(row.displaced) if row.displaced else []
            return stored_record(row._mapping, UserOperation.from_rpc(json.loads(row.op_json)), displaced)
        except Exception as exc:
            raise _corrupted(where, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None

    def _select_record(self, conn: Connection, *conditions: Any) -> OutboxRecord | None:
        row = conn.execute(select(self._t.outbox).where(*conditions)).first()
        return None if row is None else self._record(row)

    def _claim(self, conn: Connection, entry: NewOperation, lease: Lease | None) -> None:
        """What every write of a new operation checks, in its transaction and in this order: the lease (when
        given) still holds the lane, no record that is not failed has the nonce, and the hash is no other
        intent's. (Two intents with the same calls built on one lane with one nonce are the same operation:
        the fence and the nonce speak first.)"""
        if lease is not None:
            self._hold(conn, lease)
        outbox = self._t.outbox
        holder = self._select_record(
            conn,
            outbox.c.account == entry.account,
            outbox.c.nonce == entry.nonce,
            text(NONCE_CLAIMED),
            outbox.c.intent_id != entry.intent_id,
        )
        if holder is not None:
            raise nonce_taken(entry, holder, self.url)
        other = self._select_record(conn, outbox.c.user_op_hash == entry.user_op_hash)
        if other is not None and other.intent_id != entry.intent_id:
            raise hash_taken(entry, other)

    def _operation_values(self, entry: NewOperation, now: float) -> dict[str, Any]:
        """The columns a new (or rebuilt) operation sets."""
        return {
            "user_op_hash": entry.user_op_hash,
            "lane": entry.lane,
            "op_json": json.dumps(entry.op.to_rpc()),
            "nonce": entry.nonce,
            "state": OutboxState.BUILT.value,
            "attempts": 0,
            "updated_at": now,
        }

    def _record_intent(self, entry: NewOperation, lease: Lease | None) -> OutboxRecord:
        outbox = self._t.outbox
        mine = outbox.c.intent_id == entry.intent_id

        def work(conn: Connection) -> OutboxRecord:
            existing = self._select_record(conn, mine)
            if existing is not None:
                return existing
            self._claim(conn, entry, lease)
            now = self._dialect.now(conn)
            conn.execute(
                insert(outbox).values(
                    intent_id=entry.intent_id,
                    account=entry.account,
                    session_id=entry.session_id,
                    created_at=now,
                    rebuilds=0,
                    **self._operation_values(entry, now),
                )
            )
            record = self._select_record(conn, mine)
            assert record is not None
            return record

        # A concurrent writer that inserted the same intent (or took the nonce) makes our insert fail: the
        # retry returns its row (or names it).
        return self._run_racing(work)

    def _rebuild_intent(self, entry: NewOperation, displaced: str, lease: Lease) -> OutboxRecord:
        outbox = self._t.outbox
        mine = outbox.c.intent_id == entry.intent_id

        def work(conn: Connection) -> OutboxRecord:
            current = self._select_record(conn, mine)
            if not needs_rebuild(current, entry, displaced, self.url):
                assert current is not None
                return current  # rebuilt by another worker already, or it landed after all
            assert current is not None
            self._claim(conn, entry, lease)
            now = self._dialect.now(conn)
            guarded = and_(mine, outbox.c.user_op_hash == displaced)
            conn.execute(
                update(outbox)
                .where(guarded)
                .values(
                    sent_at=None,
                    finished_at=None,
                    tx_hash=None,
                    success=None,
                    error=None,
                    rebuilds=current.rebuilds + 1,
                    displaced=json.dumps([*current.displaced, displaced]),
                    **self._operation_values(entry, now),
                )
            )
            record = self._select_record(conn, mine)
            assert record is not None
            return record

        return self._run_racing(work)

    def _transition(
        self,
        op_hash: str,
        wanted: OutboxState,
        allowed: Any,
        values: Callable[[float], dict[str, Any]],
        settle: Callable[[OutboxRecord], bool],
    ) -> OutboxRecord:
        """Move a record to ``wanted`` when its state satisfies ``allowed``; ``settle`` accepts a record that
        already has the outcome (a repeated call), anything else is an invalid change."""
        outbox = self._t.outbox
        this = outbox.c.user_op_hash == op_hash

        def work(conn: Connection) -> OutboxRecord:
            now = self._dialect.now(conn)
            conn.execute(update(outbox).where(this, allowed).values(**values(now)))
            record = self._select_record(conn, this)
            if record is None:
                raise SessionStoreError(unknown_operation(op_hash, self.url, f"marking it {wanted.value}"))
            return record

        try:
            record = self._run(work, write=True)
        except IntegrityError:  # a failed record landing after all, while another record took its nonce
            raise SessionStoreError(
                f"UserOperation {op_hash} cannot become {wanted.value} in {self.url}: another record of its "
                "account that is not failed has its nonce (that operation can never land now: rebuild its "
                "intent first)"
            ) from None
        if record.state != wanted or not settle(record):
            raise SessionStoreError(transition_error(record, wanted))
        return record

    def _mark_sent(self, op_hash: str) -> OutboxRecord:
        outbox = self._t.outbox
        return self._transition(
            op_hash,
            OutboxState.SENT,
            outbox.c.state.in_(_PENDING),
            lambda now: {
                "state": OutboxState.SENT.value,
                "attempts": outbox.c.attempts + 1,
                "sent_at": now,
                "updated_at": now,
            },
            lambda record: True,
        )

    def _mark_included(self, op_hash: str, tx_hash: str, success: bool) -> OutboxRecord:
        outbox = self._t.outbox
        return self._transition(
            op_hash,
            OutboxState.INCLUDED,
            outbox.c.state != OutboxState.INCLUDED.value,
            lambda now: {
                "state": OutboxState.INCLUDED.value,
                "tx_hash": tx_hash,
                "success": success,
                "finished_at": now,
                "updated_at": now,
            },
            lambda record: record.tx_hash == tx_hash and record.success == success,
        )

    def _mark_failed(self, op_hash: str, reason: str) -> OutboxRecord:
        outbox = self._t.outbox
        return self._transition(
            op_hash,
            OutboxState.FAILED,
            outbox.c.state.in_(_PENDING),
            lambda now: {
                "state": OutboxState.FAILED.value,
                "error": reason,
                "finished_at": now,
                "updated_at": now,
            },
            lambda record: True,
        )

    def _get_by_intent(self, intent_id: str) -> OutboxRecord | None:
        outbox = self._t.outbox
        return self._run(lambda conn: self._select_record(conn, outbox.c.intent_id == intent_id), write=False)

    def _get_by_hash(self, op_hash: str) -> OutboxRecord | None:
        outbox = self._t.outbox
        return self._run(
            lambda conn: self._select_record(conn, outbox.c.user_op_hash == op_hash), write=False
        )

    def pending(
        self,
        older_than: float | None = None,
        *,
        now: float | None = None,
        on_corrupt: OnCorrupt | None = None,
    ) -> list[OutboxRecord]:
        outbox = self._t.outbox

        def work(conn: Connection) -> list[Any]:
            moment = self._dialect.now(conn) if now is None else float(now)
            cutoff = pending_cutoff(older_than, moment)
            query = select(outbox).where(outbox.c.state.in_(_PENDING)).order_by(outbox.c.seq)
            if cutoff is not None:
                query = query.where(outbox.c.updated_at <= cutoff)
            return list(conn.execute(query).all())

        return self._records(self._run(work, write=False), on_corrupt)

    def _list_outbox(
        self, state: OutboxState | None, limit: int, on_corrupt: OnCorrupt | None
    ) -> list[OutboxRecord]:
        outbox = self._t.outbox
        query = select(outbox).order_by(outbox.c.seq.desc()).limit(limit)
        if state is not None:
            query = query.where(outbox.c.state == state.value)
        return self._records(self._run(lambda conn: conn.execute(query).all(), write=False), on_corrupt)

    def _records(self, rows: Sequence[Any], on_corrupt: OnCorrupt | None) -> list[OutboxRecord]:
        """The records of outbox ``rows``; a damaged one raises, or goes to ``on_corrupt`` when given."""
        found = []
        for row in rows:
            try:
                found.append(self._record(row))
            except SessionStoreError as error:
                if on_corrupt is None:
                    raise
                on_corrupt(str(row.intent_id), error)
        return found


def _corrupted(where: str, problem: str) -> SessionStoreError:
    return SessionStoreError(
        f"{where} is corrupted ({problem}); it was left as is. Restore it from a backup, or delete "
        "the row to "
        "drop that record."
    )
