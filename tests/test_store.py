"""The session store, one suite over its four backends: memory, file, SQLite and PostgreSQL.

Every backend is real: files in a temporary folder, SQLite files, and a PostgreSQL server this module
starts (``support.postgres``, tests/support/), with a fresh database per test. Persistence, encryption at rest and
corruption tests run on the three persistent backends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from keyscope.errors import (
    BadInputError,
    ConfigurationError,
    KeyscopeError,
    LeaseLostError,
    NonceTakenError,
    SessionStoreError,
    StoreLockedError,
    StoreNotFoundError,
    WrongPassphraseError,
)
from keyscope.grant import SessionGrant
from keyscope.hexutil import to_address
from keyscope.session import SIGNED, Condition, Permission, Rule, Session
from keyscope.signing import LocalSigner
from keyscope.store import (
    FileStore,
    Lease,
    MemoryStore,
    OutboxRecord,
    OutboxState,
    SessionStore,
    SqlStore,
    open_store,
)
from keyscope.store.schema import LATEST_VERSION, current
from keyscope.userop import UserOperation
from support.postgres import PostgresServer, find_postgres_binaries, postgres_fixture

postgres_server = postgres_fixture(scope="module")

BACKENDS = ["memory", "file", "sqlite", "postgresql"]
PERSISTENT = ["file", "sqlite", "postgresql"]
SQL = ["sqlite", "postgresql"]
PASSPHRASE = "correct horse battery staple"
KEK = bytes(range(32))
SCRYPT_N = 2**10  # fast for tests; the defaults are 2**18 (key files) and 2**15 (SQL KEK)
TABLES = {
    "keyscope_keys": "address",
    "keyscope_grants": "session_id",
    "keyscope_lanes": "account, session_id, lane",
    "keyscope_outbox": "seq",
    "keyscope_meta": "name",
}

ACCOUNT = to_address("0x" + "a1" * 20)
OTHER_ACCOUNT = to_address("0x" + "b2" * 20)
SESSION = "0x" + "5e" * 32
TARGET = to_address("0x" + "c3" * 20)


# --------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------


@dataclass
class Backend:
    """One backend under test: how to open it, and how to look at its raw bytes behind its back."""

    kind: str
    url: str
    folder: Path
    server: PostgresServer | None = None
    opened: list[SessionStore] = field(default_factory=list)

    def open(self, **secret: Any) -> SessionStore:
        """Open the store; ``secret`` overrides the default (a passphrase, or the KEK for PostgreSQL)."""
        if not secret:
            secret = {"kek": KEK} if self.kind == "postgresql" else {"passphrase": PASSPHRASE}
        if self.kind == "memory" and self.opened:
            return self.opened[0]  # one process: every "worker" shares the one in-memory store
        store = open_store(self.url, scrypt_n=SCRYPT_N, **secret)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()

    # -- raw access ----------------------------------------------------------------------------------

    @property
    def sqlite_path(self) -> Path:
        return self.folder / "store.db"

    def files(self) -> dict[str, bytes]:
        """Every file of the file store or SQLite database (with its -wal and -shm), by relative path."""
        root = self.folder / "store" if self.kind == "file" else self.folder
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != ".lock"
        }

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Raw column values of every store table, as the database driver returns them."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                return {
                    t: conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in TABLES.items()
                }
        assert self.kind == "postgresql"
        with psycopg.connect(self.url) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in TABLES.items()}

    def execute(self, statement: str, *params: Any) -> None:
        """Change the database behind the store's back."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                conn.execute(statement.replace("%s", "?"), params)
            return
        with psycopg.connect(self.url) as conn:
            conn.execute(statement, params)

    def snapshot(self) -> Any:
        """Everything persisted: files for the file store, table contents for SQL."""
        return self.files() if self.kind == "file" else self.rows()

    def everything_on_disk(self) -> bytes:
        """All bytes this backend persisted: its files, or the database's raw values and whole data folder."""
        if self.kind in ("file", "sqlite"):
            return b"".join(self.files().values())
        assert self.server is not None
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        data = b"".join(path.read_bytes() for path in self.server.data_dir.rglob("*") if path.is_file())
        return data + _flatten(self.rows())


def _flatten(rows: dict[str, list[tuple[Any, ...]]]) -> bytes:
    out = bytearray()
    for table in rows.values():
        for row in table:
            for value in row:
                out += bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
    return bytes(out)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    yield from _backend(request, kind, tmp_path)


@pytest.fixture(params=PERSISTENT)
def persistent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request, request.param, tmp_path)


@pytest.fixture(params=SQL)
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request, request.param, tmp_path)


def _backend(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[Backend]:
    server = None
    if kind == "memory":
        url = "memory://"
    elif kind == "file":
        url = (tmp_path / "store").as_uri()
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_schema()
    backend = Backend(kind, url, tmp_path, server)
    try:
        yield backend
    finally:
        backend.close_all()


@pytest.fixture
def store(backend: Backend) -> SessionStore:
    return backend.open()


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


def make_grant(
    *,
    account: str = ACCOUNT,
    key: str | None = None,
    valid_after: int = 0,
    valid_until: int = 0,
    salt: int = 0,
    how: str = "offchain",
) -> SessionGrant:
    session = Session(
        session_key=key or LocalSigner.generate().address,
        valid_after=valid_after,
        valid_until=valid_until,
        salt=salt,
        permissions=(Permission(target=TARGET, selector=b"\x12\x34\x56\x78", rules=()),),
    )
    return SessionGrant(
        session=session,
        account=account,
        module=to_address("0x" + "d4" * 20),
        chain_id=31337,
        entry_point=to_address("0x" + "e5" * 20),
        epoch=0,
        session_id=session.session_id(account, 0),
        how=how,  # type: ignore[arg-type]
        owner_signature=b"\x01" * 65 if how == "offchain" else None,
    )


def make_op(nonce: int = 0, call_data: bytes = b"\xca\xfe", **extra: Any) -> UserOperation:
    return UserOperation(sender=ACCOUNT, nonce=nonce, call_data=call_data, call_gas_limit=100_000, **extra)


def h(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


# Hypothesis strategies -------------------------------------------------------------------------------

addresses = st.binary(min_size=20, max_size=20).map(to_address).filter(lambda a: int(a, 16) != 0)
words = st.integers(0, 2**256 - 1)
u128 = st.integers(0, 2**128 - 1)
labels = st.none() | st.text(max_size=12)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    kind = draw(st.sampled_from(["single", "range", "one_of"]))
    offset = draw(st.integers(0, 0xFFFF))
    name = draw(labels)
    if kind == "single":
        condition = draw(st.integers(Condition.EQUAL, Condition.NOT_EQUAL)) | draw(
            st.sampled_from([0, SIGNED])
        )
        return Rule(condition=condition, offset=offset, values=(draw(words),), name=name)
    if kind == "range":
        low, high = sorted((draw(words), draw(words)))
        return Rule(condition=Condition.IN_RANGE, offset=offset, values=(low, high), name=name)
    values = tuple(draw(st.lists(words, min_size=1, max_size=4)))
    return Rule(condition=Condition.ONE_OF, offset=offset, values=values, name=name)


permissions = st.builds(
    Permission,
    target=addresses.filter(lambda a: int(a, 16) != 0),  # the module refuses the zero address
    selector=st.binary(min_size=4, max_size=4).filter(any),  # a plain transfer's has no rules
    value_limit=words,
    rules=st.lists(rules(), max_size=3).map(tuple),
    function=labels,
)


@st.composite
def grants(draw: st.DrawFn) -> SessionGrant:
    valid_after = draw(st.integers(0, 2**48 - 2))
    valid_until = draw(st.just(0) | st.integers(valid_after + 1, 2**48 - 1))
    perms = draw(
        st.lists(permissions, min_size=1, max_size=3, unique_by=lambda p: (p.target, p.selector)).map(tuple)
    )
    session = Session(
        session_key=draw(addresses), valid_after=valid_after, valid_until=valid_until, salt=draw(words),
        permissions=perms,
    )  # fmt: skip
    how = draw(st.sampled_from(["onchain", "offchain"]))
    account, module, epoch = draw(addresses), draw(addresses), draw(st.integers(0, 2**32 - 1))
    assume({account, module}.isdisjoint(p.target for p in perms))  # the module refuses such a grant
    return SessionGrant(
        session=session,
        account=account,
        module=module,
        chain_id=draw(st.integers(1, 2**64)),
        entry_point=draw(addresses),
        epoch=epoch,
        session_id=session.session_id(account, epoch),
        how=how,
        owner_signature=draw(st.none() | st.binary(max_size=130)),
        account_kind=draw(st.text(min_size=1, max_size=12)),
    )


@st.composite
def user_ops(draw: st.DrawFn) -> UserOperation:
    factory = draw(st.none() | addresses)
    paymaster = draw(st.none() | addresses)
    return UserOperation(
        sender=draw(addresses),
        nonce=draw(words),
        factory=factory,
        factory_data=draw(st.binary(max_size=64)) if factory else b"",
        call_data=draw(st.binary(max_size=200)),
        call_gas_limit=draw(u128),
        verification_gas_limit=draw(u128),
        pre_verification_gas=draw(words),
        max_fee_per_gas=draw(u128),
        max_priority_fee_per_gas=draw(u128),
        paymaster=paymaster,
        paymaster_verification_gas_limit=draw(u128) if paymaster else 0,
        paymaster_post_op_gas_limit=draw(u128) if paymaster else 0,
        paymaster_data=draw(st.binary(max_size=64)) if paymaster else b"",
        signature=draw(st.binary(max_size=130)),
    )


STORE_EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --------------------------------------------------------------------------------------------------
# open_store
# --------------------------------------------------------------------------------------------------


def test_open_store_picks_the_backend_from_the_url(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    with open_store(tmp_path / "plain") as plain:
        assert isinstance(plain, FileStore) and plain.url == (tmp_path / "plain").as_uri()
    with open_store((tmp_path / "by-url").as_uri()) as by_url:
        assert isinstance(by_url, FileStore)
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as sql:
        assert isinstance(sql, SqlStore) and sql.schema_version() == LATEST_VERSION


@pytest.mark.parametrize("name", ["sessions.db", "keys.sqlite", "Store.SQLITE3"])
def test_a_plain_path_named_like_a_database_file_is_not_set_up_as_a_folder(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``open_store("sessions.db")`` set up a folder of keystore files named sessions.db, where a SQLite database was
    meant: it is refused now, nothing created, naming the sqlite:/// URL that opens one there (relative or absolute)
    and the file:// form that still sets up a folder of that name; a folder store already there opens as before."""
    monkeypatch.chdir(tmp_path)
    for place, sqlite_url in ((name, f"sqlite:///{name}"), (tmp_path / name, f"sqlite:///{tmp_path / name}")):
        with pytest.raises(BadInputError) as refused:
            open_store(place)
        said = str(refused.value)
        assert "a plain path opens a folder of keystore files" in said and f"give {sqlite_url} for" in said, (
            said
        )
        assert "file:// and the folder's absolute path" in said, said
        assert not (tmp_path / name).exists()
    with open_store(f"sqlite:///{name}") as sql:
        assert isinstance(sql, SqlStore)
    (tmp_path / name).unlink()
    with open_store((tmp_path / name).as_uri()) as folder:  # a folder of that name, asked for as one
        assert isinstance(folder, FileStore)
    with open_store(tmp_path / name) as again:  # once there, the plain path opens it
        assert isinstance(again, FileStore)


@pytest.mark.parametrize(
    ("url", "secret", "needle"),
    [
        ("ftp://somewhere", {}, "unknown store URL scheme"),
        ("memory://", {"passphrase": "a", "kek": KEK}, "either passphrase or kek"),
        ("{tmp}/files", {"kek": KEK}, "give passphrase="),
        ("sqlite:///{tmp}/k.db", {"kek": b"short"}, "32 raw bytes"),
        ("sqlite:///:memory:", {}, "memory://"),
        ("sqlite:///{tmp}/s.db", {"passphrase": ""}, "non-empty"),
        ("file://otherhost/x", {}, "names host"),
    ],
)
def test_open_store_refuses_bad_arguments(
    tmp_path: Path, url: str, secret: dict[str, Any], needle: str
) -> None:
    with pytest.raises(BadInputError, match=needle):
        open_store(url.format(tmp=tmp_path), **secret)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://app@db.example:not-a-port/keyscope", "not a database URL"),
        ("postgresql://app@[::1/keyscope", "not a database URL"),
        ("postgresql://app@127.0.0.1:99999/keyscope", "a port is a number"),
        ("postgresql://app@127.0.0.1:0/keyscope", "a port is a number"),
        ("sqlite:///{tmp}/a%00b.db", "NUL"),
        ("sqlite:///{tmp}/s.db?mode=ro", "carries options"),
    ],
)
def test_malformed_database_urls_are_refused_with_keyscope_errors(
    tmp_path: Path, url: str, needle: str
) -> None:
    with pytest.raises(BadInputError, match=needle):
        open_store(url.format(tmp=tmp_path), kek=KEK)
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize("retry", ["15", -1, float("nan"), float("inf"), None])
def test_a_bad_retry_time_is_refused_when_the_store_opens(tmp_path: Path, retry: Any) -> None:
    with pytest.raises(BadInputError, match="retry_seconds"):
        SqlStore(f"sqlite:///{tmp_path / 's.db'}", retry_seconds=retry)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tail=st.text(alphabet=st.sampled_from("ab.-_%?#&=:@[]/ \x00é0"), max_size=24).filter(
        lambda t: ".." not in t
    ),
    port=st.text(alphabet=st.sampled_from("0123456789:abc-[] %"), max_size=8),
)
@example(tail="@.", port="")  # PostgreSQL host "." (like "db..example"): no IDNA name to look up
def test_any_database_url_opens_a_store_or_fails_with_a_keyscope_error(
    tmp_path: Path, tail: str, port: str
) -> None:
    """Whatever follows ``sqlite:///`` (a path in a fresh folder) or sits in a PostgreSQL URL's port: the
    store opens, or the error derives from keyscope's root (never a parser's ValueError). The PostgreSQL
    ports here are never a live server's: not all digits, or a closed one."""
    folder = tmp_path / f"case-{time.monotonic_ns()}"
    folder.mkdir()
    closed = port if not port.isdigit() else "1"
    for url in (f"sqlite:///{folder}/{tail}", f"postgresql://keyscope@127.0.0.1:{closed}/{tail or 'db'}"):
        with contextlib.suppress(KeyscopeError):
            SqlStore(url, retry_seconds=0).close()


def test_open_store_explains_unusable_places(tmp_path: Path) -> None:
    with pytest.raises(SessionStoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SessionStoreError, match="not a keyscope store"):
        open_store(tmp_path)
    with pytest.raises(SessionStoreError, match="not a directory"):
        open_store(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_store_opened_to_use_an_existing_one_refuses_every_place_without_one_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """``create=False``: no file or folder, an empty file or folder, another program's SQLite database, a memory
    store. Each is refused with what is there (``StoreNotFoundError.reason``), and left as it was: no file, folder,
    table or write-ahead log appears."""
    folder = tmp_path / "empty"
    folder.mkdir()
    photos = tmp_path / "photos"  # a folder of other files: not a new store's place to suggest either
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8")
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(other)) as database:
        database.execute("CREATE TABLE users (id INTEGER)")
        database.commit()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    places = {
        f"sqlite:///{tmp_path / 'missing.db'}": f"there is no SQLite file {tmp_path / 'missing.db'}",
        f"sqlite:///{empty}": f"{empty} is an empty file, not a keyscope store",
        f"sqlite:///{other}": f"the SQLite database {other} holds no keyscope store (its tables: users)",
        str(tmp_path / "missing"): f"there is no store at {tmp_path / 'missing'}",
        folder.as_uri(): f"the folder {folder} is empty, not a keyscope store",
        photos.as_uri(): f"the folder {photos} is not a keyscope store (it has no keyscope-store.json)",
        "memory://": "a memory store is a new, empty one each time it is opened",
    }
    for url, reason in places.items():
        with pytest.raises(StoreNotFoundError) as refused:
            open_store(url, passphrase=PASSPHRASE, create=False)
        assert refused.value.reason == reason
        assert str(refused.value).endswith(
            f"{reason}, and nothing was created or written: check the URL, or open the store with create=True to "
            "set a new one up there"
        )
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert empty.stat().st_size == 0
    with contextlib.closing(sqlite3.connect(other)) as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    with pytest.raises(BadInputError, match="create must be True or False"):
        open_store(f"sqlite:///{other}", create="no")  # type: ignore[arg-type]


def test_a_store_opened_to_use_an_existing_one_serves_it(persistent: Backend) -> None:
    """The store a worker set up opens with ``create=False``, keys and grants and all."""
    signer = LocalSigner.generate()
    persistent.open().put_key(signer, label="kept")
    secret = {"kek": KEK} if persistent.kind == "postgresql" else {"passphrase": PASSPHRASE}
    again = open_store(persistent.url, **secret, scrypt_n=SCRYPT_N, create=False)
    persistent.opened.append(again)
    assert again.get_key(signer.address).private_key == signer.private_key


def test_a_database_refusing_connections_is_retried_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PostgreSQL server that refuses connections (not started, restarting) is retried for ``retry_seconds``: the
    first retry is a warning, the others are logged for debugging only (a program using the SDK got one warning a
    retry, about twenty for the default 15 s), and the error at the end says what to check."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://app:secret@127.0.0.1:{port}/keyscope"
    refusal = "check the server is running and reachable"
    with (
        caplog.at_level(logging.DEBUG, logger="keyscope.store"),
        pytest.raises(SessionStoreError, match=refusal) as refused,
    ):
        SqlStore(url, retry_seconds=1.5, create=False)
    retries = [record for record in caplog.records if record.getMessage().endswith("; retrying")]
    assert [record.levelno for record in retries][:1] == [logging.WARNING]
    assert len(retries) >= 3 and {record.levelno for record in retries[1:]} == {logging.DEBUG}
    assert "secret" not in str(refused.value) and all("secret" not in r.getMessage() for r in caplog.records)


def test_a_postgresql_database_without_a_store_is_refused_and_gets_no_table(postgres_server) -> None:
    """``create=False`` on another program's database, or on an empty schema through the search_path: refused, and
    none of keyscope's tables is created."""
    other = postgres_server.create_database()
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    for url in (other, postgres_server.create_schema()):
        with pytest.raises(StoreNotFoundError) as refused:
            open_store(url, kek=KEK, create=False)
        assert refused.value.reason == (
            "the PostgreSQL database holds no keyscope store (no keyscope tables where the connection looks)"
        )
    with psycopg.connect(other) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == [("users",)]


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------


def test_keys_round_trip(backend: Backend, store: SessionStore) -> None:
    signers = [LocalSigner.generate() for _ in range(3)]
    for index, signer in enumerate(signers):
        store.put_key(signer, label=f"worker {index}")
    for signer in signers:
        assert store.has_key(signer.address)
        assert store.get_key(signer.address).private_key == signer.private_key
        assert store.get_key(signer.address.lower()).address == signer.address
    infos = store.list_keys()
    assert [i.address for i in infos] == [s.address for s in signers]
    assert [i.label for i in infos] == ["worker 0", "worker 1", "worker 2"]

    store.put_key(signers[0])  # again without a label: the label stays
    store.put_key(signers[1], label="renamed")
    assert {i.address: i.label for i in store.list_keys()}[signers[0].address] == "worker 0"
    assert {i.address: i.label for i in store.list_keys()}[signers[1].address] == "renamed"

    assert store.delete_key(signers[0].address) is True
    assert store.delete_key(signers[0].address) is False
    assert not store.has_key(signers[0].address)
    with pytest.raises(SessionStoreError, match="put_key"):
        store.get_key(signers[0].address)
    assert len(store.list_keys()) == 2


def test_keys_survive_reopening(persistent: Backend) -> None:
    signer = LocalSigner.generate()
    persistent.open().put_key(signer, label="kept")
    again = persistent.open()
    assert again.get_key(signer.address).private_key == signer.private_key
    assert again.list_keys()[0].label == "kept"


def test_key_bad_input(store: SessionStore) -> None:
    with pytest.raises(BadInputError):
        store.put_key("0x" + "11" * 32)  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="label"):
        store.put_key(LocalSigner.generate(), label="nul\x00")
    with pytest.raises(BadInputError):
        store.get_key("not an address")


def test_a_store_opened_without_secret_refuses_keys_but_serves_the_rest(persistent: Backend) -> None:
    signer = LocalSigner.generate()
    persistent.open().put_key(signer)
    bare = open_store(persistent.url)
    persistent.opened.append(bare)
    with pytest.raises(ConfigurationError, match="passphrase"):
        bare.get_key(signer.address)
    with pytest.raises(ConfigurationError, match="passphrase"):
        bare.put_key(LocalSigner.generate())
    assert bare.has_key(signer.address)
    grant = make_grant()
    bare.put_grant(grant)
    assert bare.get_grant(grant.session_id) == grant


def test_private_keys_are_never_stored_in_plaintext(
    persistent: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # SQLAlchemy and keyscope log everything they are willing to log
    signers = [LocalSigner.generate() for _ in range(4)]
    store = persistent.open()
    for signer in signers:
        store.put_key(signer, label="secret-test")
        store.get_key(signer.address)
    store.put_grant(make_grant(key=signers[0].address))
    store.close()

    raw = persistent.everything_on_disk()
    address = signers[0].address
    assert address.encode() in raw or address[2:].lower().encode() in raw  # the search sees the stored data
    for signer in signers:
        key = signer.private_key
        for needle in (key, key.hex().encode(), key.hex().upper().encode(), key[:16], key[16:]):
            assert needle not in raw, f"private key of {signer.address} found in plaintext"
        assert key.hex() not in caplog.text.lower()
        assert key.hex() not in repr(store)
    if persistent.kind == "file":
        root = persistent.folder / "store"
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        for path in root.rglob("*.json"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert not path.name.startswith(".tmp-")
        keystore = json.loads((root / "keys" / f"{signers[0].address}.json").read_text())
        assert keystore["version"] == 3 and keystore["crypto"]["kdf"] == "scrypt"
    if persistent.kind == "sqlite":
        assert stat.S_IMODE(persistent.sqlite_path.stat().st_mode) == 0o600


def test_a_wrong_passphrase_fails_cleanly_and_changes_nothing(persistent: Backend) -> None:
    signer = LocalSigner.generate()
    first = persistent.open()
    first.put_key(signer)
    first.put_grant(make_grant())
    first.close()
    before = persistent.snapshot()

    wrong: dict[str, Any] = {"kek": bytes(32)} if persistent.kind == "postgresql" else {"passphrase": "wrong"}
    with pytest.raises(WrongPassphraseError) as info:
        persistent.open(**wrong)
    assert "passphrase" in str(info.value) or "key-encryption key" in str(info.value)
    assert signer.private_key.hex() not in str(info.value)
    assert persistent.snapshot() == before
    assert persistent.open().get_key(signer.address).private_key == signer.private_key


@pytest.mark.parametrize("first", ["passphrase", "kek"])
def test_sql_kek_from_raw_bytes_or_passphrase(sql_backend: Backend, first: str) -> None:
    signer = LocalSigner.generate()
    right: dict[str, Any] = {"passphrase": PASSPHRASE} if first == "passphrase" else {"kek": KEK}
    sql_backend.open(**right).put_key(signer)
    before = sql_backend.snapshot()
    wrongs: list[dict[str, Any]] = [{"passphrase": "other"}, {"kek": os.urandom(32)}]
    for wrong in wrongs:
        with pytest.raises(WrongPassphraseError) as info:
            sql_backend.open(**wrong)
        if first not in wrong:  # the other kind of secret: the error says which the store takes, and where
            sealed, todo = (
                ("a passphrase", "KEYSCOPE_STORE_PASSPHRASE")
                if first == "passphrase"
                else ("a raw", "KEYSCOPE_STORE_KEK")
            )
            assert f"sealed under {sealed}" in str(info.value) and todo in str(info.value), str(info.value)
    assert sql_backend.snapshot() == before
    assert sql_backend.open(**right).get_key(signer.address).address == signer.address


def test_a_store_says_whether_its_secret_is_set_and_reading_that_sets_none(persistent: Backend) -> None:
    """``has_secret`` is False for a store opened only without a secret (asking it sets none), and True once
    a secret was given (its keys are bound to it): what a command that reads no keys asks before it opens
    the store with the operator's secret."""
    plain = open_store(persistent.url)
    try:
        assert not plain.has_secret() and not plain.has_secret()
    finally:
        plain.close()
    persistent.open()
    again = open_store(persistent.url)
    try:
        assert again.has_secret()
    finally:
        again.close()
    assert not MemoryStore().has_secret()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("kek.scrypt", "scrypt$1000$8$1$" + "00" * 16),  # n not a power of two
        ("kek.scrypt", "scrypt$-2$8$1$" + "00" * 16),
        ("kek.scrypt", "scrypt$1024$0$1$" + "00" * 16),
        ("kek.scrypt", "scrypt$1099511627776$8$1$" + "00" * 16),  # no memory bound would do
        ("kek.scrypt", "scrypt$1048576$32$1$" + "00" * 16),
        ("kek.scrypt", "scrypt$1024$8$1$"),  # no salt
        ("kek.check", "01abcd"),  # truncated
    ],
)
def test_a_corrupted_key_encryption_row_gives_a_clear_error_and_loses_nothing(
    sql_backend: Backend, name: str, value: str
) -> None:
    """The passphrase's scrypt parameters or the key-encryption key's check value damaged in the database:
    opening says which row is corrupted (not a hashlib error, not a wrong passphrase) and writes nothing;
    the keys come back once the row is restored."""
    signer = LocalSigner.generate()
    store = sql_backend.open(passphrase=PASSPHRASE)
    store.put_key(signer)
    store.close()
    saved = {row[0]: row[1] for row in sql_backend.rows()["keyscope_meta"]}
    sql_backend.execute("UPDATE keyscope_meta SET value = %s WHERE name = %s", value, name)
    before = sql_backend.snapshot()
    with pytest.raises(
        SessionStoreError, match=f"name='{name}' of table keyscope_meta .* is corrupted"
    ) as info:
        sql_backend.open(passphrase=PASSPHRASE)
    assert not isinstance(info.value, WrongPassphraseError)
    assert sql_backend.snapshot() == before
    sql_backend.execute("UPDATE keyscope_meta SET value = %s WHERE name = %s", saved[name], name)
    assert sql_backend.open(passphrase=PASSPHRASE).get_key(signer.address).address == signer.address


@pytest.mark.parametrize("cost", [2**21, 2**40, 3, True, 0])
def test_an_unusable_scrypt_cost_is_refused_before_anything_is_written(
    sql_backend: Backend, cost: Any
) -> None:
    """A scrypt cost hashlib cannot run (or not a power of two) is refused at once: it is not stored as the
    database's parameters, which would leave the store unopenable by passphrase."""
    with pytest.raises(BadInputError, match="scrypt_n"):
        open_store(sql_backend.url, passphrase=PASSPHRASE, scrypt_n=cost)
    store = sql_backend.open(passphrase=PASSPHRASE)
    store.put_key(LocalSigner.generate())
    assert len(store.list_keys()) == 1


def test_a_corrupted_key_gives_a_clear_error_and_is_left_untouched(persistent: Backend) -> None:
    signer, other = LocalSigner.generate(), LocalSigner.generate()
    store = persistent.open()
    store.put_key(signer)
    store.put_key(other)
    if persistent.kind == "file":
        path = persistent.folder / "store" / "keys" / f"{signer.address}.json"
        doc = json.loads(path.read_text())
        cipher = doc["crypto"]["ciphertext"]
        doc["crypto"]["ciphertext"] = ("0" if cipher[0] != "0" else "1") + cipher[1:]
        path.write_text(json.dumps(doc))
        where = str(path)
    else:
        [sealed] = [row[2] for row in persistent.rows()["keyscope_keys"] if row[0] == signer.address]
        damaged = bytearray(sealed)
        damaged[20] ^= 0x01
        persistent.execute(
            "UPDATE keyscope_keys SET sealed = %s WHERE address = %s", bytes(damaged), signer.address
        )
        where = f"address={signer.address}"
    before = persistent.snapshot()

    fresh = persistent.open()  # the store's passphrase check still passes: only the one key is damaged
    with pytest.raises(SessionStoreError) as info:
        fresh.get_key(signer.address)
    assert not isinstance(info.value, WrongPassphraseError)
    assert where in str(info.value) and "corrupted" in str(info.value)
    assert fresh.get_key(other.address).address == other.address
    assert persistent.snapshot() == before


def test_a_key_file_that_is_not_json_is_reported_by_path(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s", passphrase=PASSPHRASE, scrypt_n=SCRYPT_N)
    signer = LocalSigner.generate()
    store.put_key(signer)
    path = tmp_path / "s" / "keys" / f"{signer.address}.json"
    path.write_bytes(b"\x00garbage{")
    with pytest.raises(SessionStoreError, match=str(path)):
        store.get_key(signer.address)
    assert path.read_bytes() == b"\x00garbage{"


def test_a_corrupted_grant_gives_a_clear_error_and_is_left_untouched(persistent: Backend) -> None:
    grant = make_grant()
    persistent.open().put_grant(grant)
    session_id = "0x" + grant.session_id.hex()
    if persistent.kind == "file":
        path = persistent.folder / "store" / "grants" / f"{session_id}.json"
        path.write_text('{"grant": {"session": 1}, "revoked": false, "enabled": false}')
        where = str(path)
    else:
        persistent.execute(
            "UPDATE keyscope_grants SET grant_json = %s WHERE session_id = %s", '{"broken', session_id
        )
        where = f"session_id={session_id}"
    before = persistent.snapshot()
    store = persistent.open()
    for read in (lambda: store.get_grant(session_id), lambda: store.list_grants()):
        with pytest.raises(SessionStoreError) as info:
            read()
        assert where in str(info.value) and "corrupted" in str(info.value)
    assert persistent.snapshot() == before


def test_a_corrupted_outbox_record_gives_a_clear_error(persistent: Backend) -> None:
    store = persistent.open()
    store.record_intent("intent-1", ACCOUNT, SESSION, 0, make_op(), h(1))
    if persistent.kind == "file":
        [path] = (persistent.folder / "store" / "outbox").glob("*.json")
        doc = json.loads(path.read_text())
        doc["op"]["nonce"] = "not a number"
        path.write_text(json.dumps(doc))
        where = str(path)
    else:
        persistent.execute("UPDATE keyscope_outbox SET op_json = %s", "[]")
        where = "intent_id='intent-1'"
    before = persistent.snapshot()
    with pytest.raises(SessionStoreError, match="corrupted") as info:
        persistent.open().get_by_intent("intent-1")
    assert where in str(info.value)
    assert persistent.snapshot() == before


def damage_outbox_record(persistent: Backend, intent_id: str) -> str:
    """Make the outbox record of ``intent_id`` unreadable (its operation no longer JSON); returns the name the
    store reports it by (the file's for the file store, the intent id for the databases)."""
    if persistent.kind == "file":
        name = hashlib.sha256(intent_id.encode()).hexdigest()
        (persistent.folder / "store" / "outbox" / f"{name}.json").write_text('{"op": ')
        return name
    persistent.execute("UPDATE keyscope_outbox SET op_json = %s WHERE intent_id = %s", "[]", intent_id)
    return intent_id


def test_pending_reports_a_corrupted_record_and_lists_the_others_when_asked(persistent: Backend) -> None:
    """One unreadable record must not hide every other unfinished one from a worker adopting a lane: with
    ``on_corrupt`` it is reported and left out; its nonce stays taken (recording over it fails, naming it)."""
    store = persistent.open()
    store.record_intent("intent-1", ACCOUNT, SESSION, 0, make_op(1), h(1))
    store.record_intent("intent-2", ACCOUNT, SESSION, 1, make_op(2), h(2))
    name = damage_outbox_record(persistent, "intent-1")
    again = persistent.open()
    with pytest.raises(SessionStoreError, match="corrupted"):
        again.pending()
    reported: list[tuple[str, SessionStoreError]] = []
    assert [r.intent_id for r in again.pending(on_corrupt=lambda n, e: reported.append((n, e)))] == [
        "intent-2"
    ]
    assert [n for n, _ in reported] == [name] and "corrupted" in str(reported[0][1])
    with pytest.raises(SessionStoreError, match="corrupted"):
        again.record_intent("over-it", ACCOUNT, SESSION, 0, make_op(1, call_data=b"\x01"), h(3))
    assert again.get_by_intent("over-it") is None


def test_the_outbox_listing_reports_a_corrupted_record_and_lists_the_others_when_asked(
    persistent: Backend,
) -> None:
    """What ``keyscope outbox`` shows: one damaged record must not hide the others, whatever their state."""
    store = persistent.open()
    for i in (1, 2, 3):
        store.record_intent(f"intent-{i}", ACCOUNT, SESSION, i, make_op(i), h(i))
    store.mark_failed(h(3), "refused")
    name = damage_outbox_record(persistent, "intent-2")
    again = persistent.open()
    with pytest.raises(SessionStoreError, match="corrupted"):
        again.list_outbox()
    reported: list[str] = []
    listed = again.list_outbox(on_corrupt=lambda n, e: reported.append(n))
    assert [r.intent_id for r in listed] == ["intent-3", "intent-1"] and reported == [name]
    assert [r.intent_id for r in again.list_outbox("failed", on_corrupt=lambda n, e: None)] == ["intent-3"]


# --------------------------------------------------------------------------------------------------
# Grants
# --------------------------------------------------------------------------------------------------


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@pytest.mark.parametrize("expires_at", ["soon", [1], {"at": 1}, "nan", True, None])
def test_a_file_store_lane_whose_lease_expiry_is_damaged_is_reported_not_taken(
    tmp_path: Path, expires_at: Any
) -> None:
    """The ``expires_at`` of a held lane in a file store's lanes file damaged (text, a list, a flag, missing):
    leasing a lane of that session and renewing the lease say which file is corrupted and leave it as it
    was. Before, text or a list crashed ``lease_lane`` with a raw ValueError / TypeError, and a flag or a
    missing expiry counted as expired: the lane was handed to a second worker while its holder still held
    it."""
    root = tmp_path / "store"
    store = FileStore(root, passphrase=PASSPHRASE, scrypt_n=SCRYPT_N)
    grant = make_grant()
    store.put_grant(grant)
    held = store.lease_lane(ACCOUNT, grant.session_id, "holder", 3600)
    store.close()
    (lanes_file,) = (root / "lanes").glob("*.json")
    doc = json.loads(lanes_file.read_text())
    doc["lanes"][held.lane]["expires_at"] = expires_at
    damaged = json.dumps(doc).encode()
    lanes_file.write_bytes(damaged)

    reopened = FileStore(root, passphrase=PASSPHRASE, scrypt_n=SCRYPT_N)
    try:
        for call in (
            lambda: reopened.lease_lane(ACCOUNT, grant.session_id, "other", 60),
            lambda: reopened.renew_lease(held, 60),
        ):
            with pytest.raises(SessionStoreError, match="corrupted") as info:
                call()
            assert lanes_file.name in str(info.value) and "expires_at" in str(info.value)
            assert lanes_file.read_bytes() == damaged
    finally:
        reopened.close()


@dataclass(frozen=True)
class DamageTemplate:
    """A store written once with the records the damage tests damage (a key, a grant, a lane leased for a day, an
    intent recorded under that lease and a failed one): each example damages a copy of ``path``, the same records
    a store written afresh holds, without paying for the writes (two thirds of an example's time) again."""

    path: Path
    signer: LocalSigner
    grant: SessionGrant
    lease: Lease


def _write_damage_records(store: SessionStore, path: Path) -> DamageTemplate:
    """Write the damage tests' records into ``store`` (kept at ``path``) and close it."""
    signer = LocalSigner(bytes(31) + b"\x07")  # fixed: the same files (names) in every example
    grant = make_grant(key=signer.address)
    store.put_key(signer)
    store.put_grant(grant)
    lease = store.lease_lane(ACCOUNT, grant.session_id, "w", 86400)
    store.record_intent("i", ACCOUNT, grant.session_id, lease.lane, make_op(1), h(1), lease=lease)
    store.record_intent("j", ACCOUNT, grant.session_id, 1, make_op(2), h(2))
    store.mark_failed(h(2), "refused")
    store.close()
    return DamageTemplate(path, signer, grant, lease)


@pytest.fixture(scope="module")
def file_store_to_damage(tmp_path_factory: pytest.TempPathFactory) -> DamageTemplate:
    root = tmp_path_factory.mktemp("damage") / "file-store"
    return _write_damage_records(FileStore(root, passphrase=PASSPHRASE, scrypt_n=SCRYPT_N), root)


@pytest.fixture(scope="module")
def sqlite_store_to_damage(tmp_path_factory: pytest.TempPathFactory) -> DamageTemplate:
    path = tmp_path_factory.mktemp("damage") / "store.db"
    written = _write_damage_records(SqlStore(f"sqlite:///{path}", kek=KEK), path)
    # closed: one file, nothing left in a journal beside it
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return written


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_file_store_file_gives_a_keyscope_error(
    tmp_path: Path, file_store_to_damage: DamageTemplate, data: st.DataObject
) -> None:
    """One file of a file store (a grant, the lanes, an outbox record, an index, the sequence counter, a key
    file, the marker) truncated, or replaced by any JSON, or one of its fields replaced by any JSON value:
    every call of the store API succeeds or raises a KeyscopeError (nothing raw), and the file is left as
    it was."""
    root = tmp_path / f"store-{time.monotonic_ns()}"
    shutil.copytree(file_store_to_damage.path, root)
    signer, grant, lease = file_store_to_damage.signer, file_store_to_damage.grant, file_store_to_damage.lease

    files = sorted(p for p in root.rglob("*.json") if p.is_file())
    victim = data.draw(st.sampled_from(files), label="file")
    original = victim.read_bytes()
    how = data.draw(st.sampled_from(["truncate", "replace", "field"]), label="how")
    if how == "truncate":
        damaged = original[: data.draw(st.integers(0, 2**16), label="keep") % len(original)]
    elif how == "replace":
        damaged = json.dumps(data.draw(_JSON, label="json")).encode()
    else:
        doc = json.loads(original)
        field_name = data.draw(st.sampled_from(sorted(doc)), label="field")
        doc[field_name] = data.draw(_JSON, label="value")
        damaged = json.dumps(doc).encode()
    victim.write_bytes(damaged)

    calls = _every_store_call(signer, grant, lease)
    calls.append(
        lambda s: s.record_intent("l", ACCOUNT, grant.session_id, 1, make_op(2, call_data=b"\x02"), h(4))
    )
    try:
        reopened = FileStore(root, passphrase=PASSPHRASE, scrypt_n=SCRYPT_N)
    except KeyscopeError:
        assert victim.read_bytes() == damaged
        return
    _call_each(reopened, calls)


def _every_store_call(signer: Any, grant: Any, lease: Any) -> list[Callable[[Any], Any]]:
    """One call of each store method, on the records the damage tests write first."""
    return [
        lambda s: s.get_key(signer.address),
        lambda s: s.list_keys(),
        lambda s: s.get_grant(grant.session_id),
        lambda s: s.list_grants(),
        lambda s: s.list_grants(active_only=True),
        lambda s: s.is_revoked(grant.session_id),
        lambda s: s.mark_revoked(grant.session_id),
        lambda s: s.put_grant(grant),
        lambda s: s.renew_lease(lease, 60),
        lambda s: s.lease_lane(ACCOUNT, grant.session_id, "v", 60),
        lambda s: s.release_lease(lease),
        lambda s: s.get_by_intent("i"),
        lambda s: s.get_by_hash(h(1)),
        lambda s: s.pending(),
        lambda s: s.list_outbox(),
        lambda s: s.record_intent("k", ACCOUNT, grant.session_id, 2, make_op(3), h(3)),
        lambda s: s.mark_sent(h(1)),
        lambda s: s.mark_included(h(2), h(50), True),
        lambda s: s.mark_failed(h(1), "x"),
        lambda s: s.rebuild_intent("i", h(1), lease.lane, make_op(9), h(9), lease=lease),
    ]


def _call_each(store: Any, calls: list[Callable[[Any], Any]]) -> None:
    """Run every call on ``store`` (then close it): each may refuse with a KeyscopeError, and only with one."""
    try:
        for call in calls:
            with contextlib.suppress(KeyscopeError):
                call(store)
    finally:
        store.close()


_SQL_COLUMNS = {
    "keyscope_outbox": [
        "intent_id", "user_op_hash", "account", "session_id", "lane", "op_json", "state", "attempts", "created_at",
        "updated_at", "sent_at", "finished_at", "tx_hash", "success", "error", "nonce", "rebuilds", "displaced",
    ],
    "keyscope_grants": [
        "account", "session_key", "valid_after", "valid_until", "grant_json", "revoked", "enabled", "created_at",
    ],
    "keyscope_lanes": ["lane", "worker_id", "lease_id", "expires_at", "leased_at"],
    "keyscope_keys": ["label", "sealed", "created_at"],
}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    value=st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10),
)
def test_any_damage_to_a_sqlite_column_gives_a_keyscope_error(
    tmp_path: Path, sqlite_store_to_damage: DamageTemplate, data: st.DataObject, value: Any
) -> None:
    """SQLite keeps any value in any column: one column of one table overwritten with any value (an integer
    where the sealed key was, text where a lane number was...). Every call of the store API succeeds or
    raises a KeyscopeError: nothing raw, and no allocation sized by the damage."""
    path = tmp_path / f"store-{time.monotonic_ns()}.db"
    url = f"sqlite:///{path}"
    shutil.copyfile(sqlite_store_to_damage.path, path)
    signer, grant, lease = (
        sqlite_store_to_damage.signer,
        sqlite_store_to_damage.grant,
        sqlite_store_to_damage.lease,
    )
    table = data.draw(st.sampled_from(sorted(_SQL_COLUMNS)), label="table")
    column = data.draw(st.sampled_from(_SQL_COLUMNS[table]), label="column")
    with sqlite3.connect(path) as conn:
        try:
            conn.execute(f"UPDATE {table} SET {column} = ?", (value,))
        except sqlite3.IntegrityError:
            return  # NOT NULL, a unique key or the nonce trigger: the database refuses that damage itself
    calls = _every_store_call(signer, grant, lease)
    reopened = SqlStore(url, kek=KEK)
    _call_each(reopened, calls)


def test_grants_round_trip_and_list(store: SessionStore) -> None:
    first, second = make_grant(salt=1), make_grant(salt=2, how="onchain")
    elsewhere = make_grant(account=OTHER_ACCOUNT)
    for grant in (first, second, elsewhere):
        store.put_grant(grant)
    assert store.get_grant(first.session_id) == first
    assert store.get_grant("0x" + second.session_id.hex()) == second
    assert store.list_grants() == [first, second, elsewhere]
    assert store.list_grants(ACCOUNT) == [first, second]
    assert store.list_grants(OTHER_ACCOUNT.lower()) == [elsewhere]
    store.put_grant(first)  # storing again changes nothing visible
    assert store.list_grants(ACCOUNT) == [first, second]


def test_active_grants_follow_the_window_and_revocation(store: SessionStore) -> None:
    open_ended = make_grant(salt=1)
    window = make_grant(salt=2, valid_after=1_000, valid_until=2_000)
    revoked = make_grant(salt=3)
    for grant in (open_ended, window, revoked):
        store.put_grant(grant)
    store.mark_revoked(revoked.session_id)
    assert store.list_grants(active_only=True, now=999) == [open_ended]
    assert store.list_grants(active_only=True, now=1_000) == [open_ended, window]  # bounds are inclusive
    assert store.list_grants(active_only=True, now=2_000) == [open_ended, window]
    assert store.list_grants(active_only=True, now=2_001) == [open_ended]
    assert store.list_grants(ACCOUNT, active_only=True) == [open_ended]  # now: the current time
    assert len(store.list_grants()) == 3


def test_revocation_and_enabling_are_visible_to_every_worker(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    offchain, onchain = make_grant(salt=1), make_grant(salt=2, how="onchain")
    writer.put_grant(offchain)
    writer.put_grant(onchain)
    assert not reader.is_revoked(offchain.session_id)
    assert not reader.is_enabled(offchain.session_id) and reader.is_enabled(onchain.session_id)

    writer.mark_revoked(offchain.session_id)
    writer.mark_enabled(offchain.session_id)
    assert reader.is_revoked(offchain.session_id)
    assert reader.is_enabled(offchain.session_id)
    writer.mark_revoked(offchain.session_id)  # idempotent
    writer.put_grant(offchain)  # storing the grant again never un-revokes it
    assert reader.is_revoked(offchain.session_id) and reader.is_enabled(offchain.session_id)
    assert not reader.is_revoked(onchain.session_id)


def test_a_grant_of_another_chain_or_module_under_a_stored_id_is_refused(backend: Backend) -> None:
    """A session's id names the session, the account and the epoch, not the chain or the module, and keyscope's
    contracts and accounts have the same addresses on every chain: the same session granted on two chains (or at
    two deployments of the module) has one id. The store kept one grant per id, so the second grant replaced the
    first: the first grant and its owner signature were lost, its workers refused the session as granted on the
    other chain or module, and ``keyscope revoke --node`` revoked it at the other module only. It is refused,
    naming both, and the first grant stays whole; the same grant stored again (enabled on chain since) is taken."""
    writer, reader = backend.open(), backend.open()
    first = make_grant(salt=7)
    writer.put_grant(first)
    writer.mark_revoked(first.session_id)
    others = {
        "chain": first.model_copy(update={"chain_id": 10}),
        "module": first.model_copy(update={"module": to_address("0x" + "d5" * 20)}),
        "EntryPoint": first.model_copy(update={"entry_point": to_address("0x" + "e6" * 20)}),
    }
    for what, other in others.items():
        assert other.session_id == first.session_id
        with pytest.raises(BadInputError) as info:
            writer.put_grant(other)
        said = str(info.value)
        assert f"session 0x{first.session_id.hex()} is stored in" in said, said
        assert f"as granted on the {what}" in said and "nothing was stored" in said, said
        assert reader.get_grant(first.session_id) == first
    enabled = first.model_copy(update={"how": "onchain", "owner_signature": None})
    writer.put_grant(enabled)
    assert reader.get_grant(first.session_id) == enabled
    assert reader.is_revoked(first.session_id) and reader.is_enabled(first.session_id)


def test_unknown_sessions_are_reported(store: SessionStore) -> None:
    for call in (store.get_grant, store.mark_revoked, store.is_revoked, store.mark_enabled, store.is_enabled):
        with pytest.raises(SessionStoreError, match="put_grant"):
            call(SESSION)
    with pytest.raises(BadInputError):
        store.get_grant("0x1234")


@given(grant=grants())
@settings(max_examples=100, deadline=None)
def test_grant_json_round_trip_is_lossless(grant: SessionGrant) -> None:
    text = grant.to_json()
    again = SessionGrant.from_json(text)
    assert again == grant
    assert again.to_json() == text


@given(grant=grants())
@STORE_EXAMPLES
def test_grants_round_trip_through_every_store(store: SessionStore, grant: SessionGrant) -> None:
    with contextlib.suppress(SessionStoreError):  # an example before stored this id at another place: refused
        kept = store.get_grant(grant.session_id)
        assume(
            (kept.chain_id, kept.module, kept.entry_point)
            == (grant.chain_id, grant.module, grant.entry_point)
        )
    store.put_grant(grant)
    stored = store.get_grant(grant.session_id)
    assert stored == grant
    assert stored.to_json() == grant.to_json()
    assert grant in store.list_grants(grant.account)
    if grant.how == "onchain":
        assert store.is_enabled(grant.session_id)


# --------------------------------------------------------------------------------------------------
# Nonce lanes
# --------------------------------------------------------------------------------------------------


def test_lanes_are_handed_out_lowest_first_and_reused(store: SessionStore) -> None:
    leases = [store.lease_lane(ACCOUNT, SESSION, f"w{i}", 60) for i in range(4)]
    assert [lease.lane for lease in leases] == [0, 1, 2, 3]
    assert len({lease.lease_id for lease in leases}) == 4
    assert all(lease.account == ACCOUNT and lease.session_id == SESSION for lease in leases)
    assert all(lease.expires_at > time.time() + 50 for lease in leases)

    assert store.release_lease(leases[1]) is True
    assert store.release_lease(leases[1]) is False
    again = store.lease_lane(ACCOUNT, SESSION, "w9", 60)
    assert again.lane == 1 and again.worker_id == "w9"
    with pytest.raises(StoreLockedError, match="lease a new one"):
        store.renew_lease(leases[1], 60)

    # another session, another account: lanes of their own
    assert store.lease_lane(ACCOUNT, h(7), "w0", 60).lane == 0
    assert store.lease_lane(OTHER_ACCOUNT, SESSION, "w0", 60).lane == 0
    assert store.lease_lane(ACCOUNT.lower(), SESSION.upper().replace("0X", "0x"), "w0", 60).lane == 4


def _sleep_past(lease: Lease) -> None:
    """Sleep until ``lease`` has expired (the stores judge leases by the wall clock)."""
    time.sleep(max(0.0, lease.expires_at - time.time()) + 0.1)


def test_renewing_extends_a_lease(store: SessionStore) -> None:
    # a short lease, long enough that a loaded machine still renews it before it expires
    lease = store.lease_lane(ACCOUNT, SESSION, "w", 1.5)
    renewed = store.renew_lease(lease, 60)
    assert renewed.lane == lease.lane and renewed.lease_id == lease.lease_id
    assert renewed.expires_at > lease.expires_at + 50
    _sleep_past(lease)  # past the first expiry
    assert store.lease_lane(ACCOUNT, SESSION, "other", 60).lane == 1  # lane 0 is still held


def test_an_expired_lease_is_reclaimed(backend: Backend) -> None:
    dead_worker, live_worker = backend.open(), backend.open()
    # a short lease, long enough that a loaded machine leases the next two lanes before it expires
    dead = dead_worker.lease_lane(ACCOUNT, SESSION, "dead", 1.5)
    held = dead_worker.lease_lane(ACCOUNT, SESSION, "held", 60)
    assert live_worker.lease_lane(ACCOUNT, SESSION, "live", 60).lane == 2  # lane 0 is still live
    _sleep_past(dead)
    reclaimed = live_worker.lease_lane(ACCOUNT, SESSION, "live", 60)
    assert reclaimed.lane == dead.lane == 0
    assert reclaimed.lease_id != dead.lease_id
    with pytest.raises(StoreLockedError):
        dead_worker.renew_lease(dead, 60)
    assert dead_worker.release_lease(dead) is False  # a late release does not free the new holder's lane
    assert live_worker.renew_lease(reclaimed, 60).lane == 0
    assert live_worker.lease_lane(ACCOUNT, SESSION, "next", 60).lane == 3
    assert held.lane == 1


def test_lease_bad_input(store: SessionStore) -> None:
    for ttl in (
        0,
        -1,
        float("nan"),
        float("inf"),
    ):  # an endless lease would never come back from a dead worker
        with pytest.raises(BadInputError, match="ttl_seconds"):
            store.lease_lane(ACCOUNT, SESSION, "w", ttl)
    with pytest.raises(BadInputError, match="worker_id"):
        store.lease_lane(ACCOUNT, SESSION, "", 10)
    with pytest.raises(BadInputError, match="session id"):
        store.lease_lane(ACCOUNT, "0x12", "w", 10)
    with pytest.raises(BadInputError):
        store.renew_lease("lease-id", 10)  # type: ignore[arg-type]


def test_threads_leasing_at_once_never_share_a_lane(backend: Backend) -> None:
    threads, per_thread = 8, 5
    barrier = threading.Barrier(threads)
    found: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        try:
            store = backend.open()
            barrier.wait(timeout=60)
            for n in range(per_thread):
                lease = store.lease_lane(ACCOUNT, SESSION, f"t{index}-{n}", 60)
                with lock:
                    found.append(lease.lane)
        except BaseException as exc:  # collected and reported below
            errors.append(exc)
            barrier.abort()  # the other threads stop waiting

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not [e for e in errors if not isinstance(e, threading.BrokenBarrierError)], errors
    assert not errors
    assert sorted(found) == list(range(threads * per_thread))


# --------------------------------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------------------------------


def test_outbox_lifecycle(store: SessionStore) -> None:
    op = make_op(nonce=(3 << 64) | 7)
    record = store.record_intent("mint #1", ACCOUNT, SESSION, 3, op, h(1))
    assert record.state == OutboxState.BUILT and record.attempts == 0 and record.is_pending
    assert record.op == op and record.lane == 3 and record.user_op_hash == h(1)
    assert record.sent_at is None and record.finished_at is None and record.created_at == record.updated_at
    assert store.get_by_intent("mint #1") == record == store.get_by_hash(bytes.fromhex(h(1)[2:]))

    sent = store.mark_sent(h(1))
    assert sent.state == OutboxState.SENT and sent.attempts == 1 and sent.sent_at is not None
    resent = store.mark_sent(h(1))
    assert resent.attempts == 2 and resent.sent_at >= sent.sent_at  # type: ignore[operator]

    included = store.mark_included(h(1), h(99), True)
    assert included.state == OutboxState.INCLUDED and included.tx_hash == h(99) and included.success is True
    assert included.finished_at is not None and not included.is_pending and included.attempts == 2
    assert store.mark_included(h(1), h(99), True) == included  # repeated: same record
    with pytest.raises(SessionStoreError, match="included"):
        store.mark_included(h(1), h(98), True)
    with pytest.raises(SessionStoreError, match="cannot become sent"):
        store.mark_sent(h(1))
    with pytest.raises(SessionStoreError, match="cannot become failed"):
        store.mark_failed(h(1), "dropped")
    assert store.get_by_hash(h(1)) == included


def test_failed_operations_and_late_inclusion(store: SessionStore) -> None:
    store.record_intent("a", ACCOUNT, SESSION, 0, make_op(1), h(1))
    failed = store.mark_failed(h(1), "AA25 invalid account nonce")
    assert failed.state == OutboxState.FAILED and failed.error == "AA25 invalid account nonce"
    assert store.mark_failed(h(1), "another reason").error == "AA25 invalid account nonce"
    with pytest.raises(SessionStoreError, match="cannot become sent"):
        store.mark_sent(h(1))
    late = store.mark_included(h(1), h(50), False)  # a "dropped" operation can still land
    assert late.state == OutboxState.INCLUDED and late.success is False and late.error == failed.error


def test_recording_an_intent_twice_returns_the_first_record(store: SessionStore) -> None:
    first = store.record_intent("once", ACCOUNT, SESSION, 0, make_op(1), h(1))
    store.mark_sent(h(1))
    again = store.record_intent("once", ACCOUNT, SESSION, 1, make_op(2), h(2))
    assert again.user_op_hash == h(1) and again.op == make_op(1) and again.state == OutboxState.SENT
    assert again.created_at == first.created_at
    assert store.get_by_hash(h(2)) is None
    assert len(store.list_outbox()) == 1
    with pytest.raises(BadInputError, match="already recorded for intent 'once'"):
        store.record_intent("other", ACCOUNT, SESSION, 0, make_op(7), h(1))
    # the very same operation for another intent: its nonce speaks first
    with pytest.raises(NonceTakenError, match="'once'"):
        store.record_intent("other", ACCOUNT, SESSION, 0, make_op(1), h(1))


def test_pending_and_listing(store: SessionStore) -> None:
    for n in range(1, 6):
        store.record_intent(f"i{n}", ACCOUNT, SESSION, 0, make_op(n), h(n))
    store.mark_sent(h(2))
    store.mark_included(h(3), h(30), True)
    store.mark_failed(h(4), "rejected")
    assert [r.intent_id for r in store.pending()] == ["i1", "i2", "i5"]
    assert store.pending(older_than=60) == []
    later = time.time() + 3600
    assert [r.intent_id for r in store.pending(older_than=60, now=later)] == ["i1", "i2", "i5"]

    assert [r.intent_id for r in store.list_outbox()] == ["i5", "i4", "i3", "i2", "i1"]
    assert [r.intent_id for r in store.list_outbox(limit=2)] == ["i5", "i4"]
    assert [r.intent_id for r in store.list_outbox("built")] == ["i5", "i1"]
    assert [r.intent_id for r in store.list_outbox(OutboxState.INCLUDED)] == ["i3"]
    with pytest.raises(BadInputError, match="unknown outbox state"):
        store.list_outbox("lost")
    with pytest.raises(BadInputError, match="limit"):
        store.list_outbox(limit=0)
    # past a database integer: every backend says so alike (SQLite once raised an OverflowError)
    with pytest.raises(
        BadInputError, match=r"limit must be an int from 1 to 2\*\*63 - 1, got 9223372036854775808"
    ):
        store.list_outbox(limit=2**63)
    assert len(store.list_outbox(limit=2**63 - 1)) == 5
    with pytest.raises(BadInputError, match="older_than"):
        store.pending(older_than=-1)


def test_outbox_unknown_and_bad_input(store: SessionStore) -> None:
    assert store.get_by_hash(h(1)) is None and store.get_by_intent("nothing") is None
    for mark in (lambda: store.mark_sent(h(1)), lambda: store.mark_failed(h(1), "x"),
                 lambda: store.mark_included(h(1), h(2), True)):  # fmt: skip
        with pytest.raises(SessionStoreError, match="record_intent"):
            mark()
    with pytest.raises(BadInputError, match="intent_id"):
        store.record_intent("", ACCOUNT, SESSION, 0, make_op(), h(1))
    with pytest.raises(BadInputError, match="intent_id"):
        store.record_intent("x" * 201, ACCOUNT, SESSION, 0, make_op(), h(1))
    for lane in (
        -1,
        2**31,
        2**63,
        2**64,
    ):  # every backend the same (SQLite raised OverflowError, PostgreSQL a
        with pytest.raises(BadInputError, match="lane must be"):  # server error, the others recorded it)
            store.record_intent("x", ACCOUNT, SESSION, lane, make_op(), h(1))
    assert store.get_by_intent("x") is None
    with pytest.raises(BadInputError, match="UserOperation"):
        store.record_intent("x", ACCOUNT, SESSION, 0, make_op().to_rpc(), h(1))  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="user_op_hash"):
        store.record_intent("x", ACCOUNT, SESSION, 0, make_op(), "0x12")


def test_outbox_survives_reopening(persistent: Backend) -> None:
    first = persistent.open()
    record = first.record_intent("durable", ACCOUNT, SESSION, 2, make_op(9), h(9))
    first.mark_sent(h(9))
    first.close()
    again = persistent.open()
    [pending] = again.pending()
    assert pending.intent_id == "durable" and pending.op == record.op and pending.attempts == 1


# --------------------------------------------------------------------------------------------------
# Fencing: the lease's token, and one operation per (account, nonce)
# --------------------------------------------------------------------------------------------------


def test_a_write_under_a_lost_lease_is_refused_and_writes_nothing(backend: Backend) -> None:
    paused, live = backend.open(), backend.open()
    stale = paused.lease_lane(ACCOUNT, SESSION, "paused", 0.2)
    time.sleep(0.3)  # the paused worker's lease expires; another worker takes the lane
    taken = live.lease_lane(ACCOUNT, SESSION, "live", 60)
    assert taken.lane == stale.lane == 0
    with pytest.raises(LeaseLostError, match="no longer held") as lost:
        paused.record_intent("late", ACCOUNT, SESSION, 0, make_op(5), h(5), lease=stale)
    assert (lost.value.lane, lost.value.lease_id, lost.value.account) == (0, stale.lease_id, ACCOUNT)
    assert isinstance(lost.value, StoreLockedError)
    assert live.get_by_intent("late") is None and live.get_by_hash(h(5)) is None
    with pytest.raises(LeaseLostError):
        paused.renew_lease(stale, 60)

    # the new holder records the same nonce for another intent: the lane and the nonce are its own
    record = live.record_intent("fresh", ACCOUNT, SESSION, 0, make_op(5), h(6), lease=taken)
    assert record.user_op_hash == h(6) and live.get_by_intent("fresh") == record
    # the same calls built on the same nonce are the same operation (same hash): still a fenced write
    with pytest.raises(LeaseLostError):
        paused.record_intent("late", ACCOUNT, SESSION, 0, make_op(5), h(6), lease=stale)
    # an intent recorded already is returned whatever the lease: nothing new is written
    assert paused.record_intent("fresh", ACCOUNT, SESSION, 0, make_op(7), h(7), lease=stale) == record

    released = live.lease_lane(ACCOUNT, SESSION, "live", 60)
    assert live.release_lease(released)
    with pytest.raises(LeaseLostError):
        live.record_intent("after-release", ACCOUNT, SESSION, released.lane, make_op(8), h(8), lease=released)
    assert live.get_by_intent("after-release") is None


def test_a_lease_fences_only_its_own_lane(store: SessionStore) -> None:
    lease = store.lease_lane(ACCOUNT, SESSION, "w", 60)
    with pytest.raises(BadInputError, match="record it under the lease of its own lane"):
        store.record_intent("x", ACCOUNT, SESSION, lease.lane + 1, make_op(1), h(1), lease=lease)
    with pytest.raises(BadInputError, match="lease of its own lane"):
        store.record_intent("x", ACCOUNT, h(77), lease.lane, make_op(1), h(1), lease=lease)
    with pytest.raises(BadInputError, match="Lease"):
        store.record_intent("x", ACCOUNT, SESSION, 0, make_op(1), h(1), lease="token")  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="sender"):
        store.record_intent("x", OTHER_ACCOUNT, SESSION, 0, make_op(1), h(1))
    assert store.list_outbox() == []


def test_two_operations_of_one_account_never_share_a_nonce(store: SessionStore) -> None:
    nonce = (2 << 64) | 9
    first = store.record_intent("first", ACCOUNT, SESSION, 2, make_op(nonce), h(1))
    with pytest.raises(NonceTakenError, match="already taken") as taken:
        store.record_intent("second", ACCOUNT, SESSION, 2, make_op(nonce, call_data=b"\x02"), h(2))
    assert (taken.value.holder, taken.value.holder_hash, taken.value.nonce) == ("first", h(1), nonce)
    assert store.get_by_intent("second") is None
    # the same nonce on another nonce key, or of another account, is another nonce
    store.record_intent("other-key", ACCOUNT, SESSION, 3, make_op((3 << 64) | 9), h(3))
    other = UserOperation(sender=OTHER_ACCOUNT, nonce=nonce)
    store.record_intent("other-account", OTHER_ACCOUNT, SESSION, 2, other, h(4))

    store.mark_sent(h(1))
    with pytest.raises(NonceTakenError):  # sent: still taken
        store.record_intent("second", ACCOUNT, SESSION, 2, make_op(nonce, call_data=b"\x02"), h(2))
    store.mark_failed(h(1), "rejected by the bundler: AA23")  # never landed: its nonce is free again
    second = store.record_intent("second", ACCOUNT, SESSION, 2, make_op(nonce, call_data=b"\x02"), h(2))
    assert second.user_op_hash == h(2)
    # the failed one cannot land after all while the second holds the nonce (one of them is doomed)
    with pytest.raises(SessionStoreError, match="rebuild its intent first"):
        store.mark_included(h(1), h(50), True)
    assert store.get_by_hash(h(1)).state is OutboxState.FAILED  # type: ignore[union-attr]
    store.mark_included(h(2), h(51), True)
    with pytest.raises(NonceTakenError):  # landed: taken for good
        store.record_intent("third", ACCOUNT, SESSION, 2, make_op(nonce, call_data=b"\x03"), h(5))
    assert first.intent_id == "first" and store.get_by_intent("third") is None


def test_a_failure_reason_is_stored_whatever_text_it_holds(backend: Backend) -> None:
    """A failure reason is often a bundler's or a node's words, decoded from JSON: a ``"\\u0000"`` or a lone
    ``"\\ud800"`` in them becomes a NUL or a lone surrogate. The reason is stored with those written out as
    escapes, on every backend. Before, the SQL stores raised a raw UnicodeEncodeError on the surrogate (past
    the worker's handling of store errors) and PostgreSQL refused the NUL (a store error: the worker retried
    writing the outcome for ever, the record stayed pending). Ids the store looks records up by are refused
    instead, with a BadInputError."""
    store = backend.open()
    store.record_intent("order", ACCOUNT, SESSION, 0, make_op(1), h(1))
    failed = store.mark_failed(h(1), 'AA23 reverted: \x00\ud800 {"x": 1}')
    assert failed.state is OutboxState.FAILED and failed.error == 'AA23 reverted: \\x00\\ud800 {"x": 1}'
    assert backend.open().get_by_hash(h(1)) == failed
    for bad in ("order-\ud800", "order-\x00"):
        with pytest.raises(BadInputError, match="intent_id must be"):
            store.record_intent(bad, ACCOUNT, SESSION, 1, make_op(2), h(2))
    with pytest.raises(BadInputError, match="worker_id must be"):
        store.lease_lane(ACCOUNT, SESSION, "worker-\udfff", 60)
    assert store.get_by_hash(h(2)) is None


def test_a_displaced_operation_is_rebuilt_once(backend: Backend) -> None:
    store, other_worker = backend.open(), backend.open()
    lane0 = store.lease_lane(ACCOUNT, SESSION, "w", 60)
    old = store.record_intent("order", ACCOUNT, SESSION, 0, make_op(4), h(1), lease=lane0)
    store.mark_sent(h(1))
    lane1 = store.lease_lane(ACCOUNT, SESSION, "w", 60)
    new_op = make_op((1 << 64) | 0, call_data=b"\xca\xfe")

    rebuilt = store.rebuild_intent("order", h(1), 1, new_op, h(2), lease=lane1)
    assert rebuilt.user_op_hash == h(2) and rebuilt.op == new_op and rebuilt.lane == 1
    assert rebuilt.state is OutboxState.BUILT and rebuilt.attempts == 0 and rebuilt.sent_at is None
    assert rebuilt.rebuilds == 1 and rebuilt.displaced == (h(1),)
    assert rebuilt.created_at == old.created_at and rebuilt.intent_id == "order"
    assert store.get_by_hash(h(2)) == rebuilt == store.get_by_intent("order")
    assert store.get_by_hash(h(1)) is None
    with pytest.raises(SessionStoreError, match="get_by_intent"):
        store.mark_sent(h(1))  # a follower of the displaced operation is told where to look
    # another worker that proved the same displacement finds it rebuilt: nothing changes
    lane2 = other_worker.lease_lane(ACCOUNT, SESSION, "v", 60)
    again = other_worker.rebuild_intent("order", h(1), 2, make_op((2 << 64) | 0), h(3), lease=lane2)
    assert again == rebuilt and other_worker.get_by_hash(h(3)) is None
    # the displaced operation's nonce is no longer the intent's
    store.record_intent("next", ACCOUNT, SESSION, 0, make_op(4, call_data=b"\x01"), h(4), lease=lane0)

    store.mark_sent(h(2))
    # a rebuild is fenced and keyed by nonce like a record
    stale = other_worker.lease_lane(ACCOUNT, SESSION, "v", 0.2)
    time.sleep(0.3)
    store.lease_lane(ACCOUNT, SESSION, "taker", 60)
    with pytest.raises(LeaseLostError):
        other_worker.rebuild_intent(
            "order", h(2), stale.lane, make_op((stale.lane << 64) | 0), h(5), lease=stale
        )
    with pytest.raises(NonceTakenError):
        store.rebuild_intent("order", h(2), 0, make_op(4, call_data=b"\x02"), h(6), lease=lane0)
    landed = store.mark_included(h(2), h(60), True)
    assert store.rebuild_intent("order", h(2), 0, make_op(5), h(7), lease=lane0) == landed  # it landed
    with pytest.raises(SessionStoreError, match="record_intent it first"):
        store.rebuild_intent("nothing", h(2), 0, make_op(5), h(7), lease=lane0)


def test_two_workers_rebuilding_one_intent_at_once_keep_the_first_rebuilt_operation(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers proving the same displacement at once, on PostgreSQL (whose writers do not wait for each other
    as SQLite's do): the second worker reads the intent's record, and before it writes the first worker's
    rebuild commits. The second's write must then change nothing (its update is guarded by the displaced hash,
    which the record no longer holds), or the first's operation, sent perhaps, would vanish from the outbox
    while it can still land: the intent would yield two operations, one untracked."""
    from keyscope.store import sql as sql_module

    url = postgres_server.create_schema()
    first, second = SqlStore(url), SqlStore(url)
    try:
        lane0 = first.lease_lane(ACCOUNT, SESSION, "w", 60)
        first.record_intent("order", ACCOUNT, SESSION, 0, make_op(4), h(1), lease=lane0)
        first.mark_sent(h(1))
        lane1 = first.lease_lane(ACCOUNT, SESSION, "first", 60)
        lane2 = second.lease_lane(ACCOUNT, SESSION, "second", 60)
        checked = sql_module.needs_rebuild
        raced: list[OutboxRecord] = []
        calls = 0

        def first_commits_meanwhile(*args: Any) -> bool:
            nonlocal calls
            calls += 1
            answer = checked(*args)
            if calls == 1:  # the second worker has read the record: the first rebuilds now, and commits
                raced.append(
                    first.rebuild_intent("order", h(1), 1, make_op((1 << 64) | 0), h(2), lease=lane1)
                )
            return answer

        monkeypatch.setattr(sql_module, "needs_rebuild", first_commits_meanwhile)
        late = second.rebuild_intent("order", h(1), 2, make_op((2 << 64) | 0), h(3), lease=lane2)
        assert raced[0].user_op_hash == h(2)
        assert late == raced[0] == second.get_by_intent("order")
        assert second.get_by_hash(h(3)) is None and second.get_by_hash(h(2)) == raced[0]
    finally:
        first.close()
        second.close()


@given(op=user_ops(), intent=st.text(min_size=1, max_size=200).filter(lambda s: "\x00" not in s),
       lane=st.integers(0, 2**31 - 1), op_hash=st.binary(min_size=32, max_size=32))  # fmt: skip
@STORE_EXAMPLES
def test_outbox_round_trips_any_operation(
    store: SessionStore, op: UserOperation, intent: str, lane: int, op_hash: bytes
) -> None:
    if store.get_by_intent(intent) is not None or store.get_by_hash(op_hash) is not None:
        return  # hypothesis repeated an intent or hash already recorded in this store
    try:
        record = store.record_intent(intent, op.sender, SESSION, lane, op, op_hash)
    except NonceTakenError:
        return  # hypothesis repeated a (sender, nonce) already recorded in this store

    for found in (store.get_by_intent(intent), store.get_by_hash(op_hash), record):
        assert found is not None
        assert found.op == op and found.op.to_rpc() == op.to_rpc()
        assert found.intent_id == intent and found.lane == lane and found.user_op_hash == "0x" + op_hash.hex()


# --------------------------------------------------------------------------------------------------
# SQL schema and PostgreSQL
# --------------------------------------------------------------------------------------------------


def test_schema_is_versioned_and_migrated_once(sql_backend: Backend) -> None:
    for _ in range(3):
        store = sql_backend.open()
        assert isinstance(store, SqlStore) and store.schema_version() == LATEST_VERSION
    from sqlalchemy import create_engine, inspect

    url = sql_backend.url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version FROM keyscope_schema_version").all()
            assert [tuple(v) for v in versions] == [(v,) for v in range(1, LATEST_VERSION + 1)]
            inspector = inspect(conn)
            _, tables = current()
            for table in (tables.meta, tables.keys, tables.grants, tables.lanes, tables.outbox):
                assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys())
                indexed = {i["name"] for i in inspector.get_indexes(table.name)}
                assert {i.name for i in table.indexes} <= indexed
    finally:
        engine.dispose()


def test_a_version_1_store_is_migrated_and_keeps_its_records(sql_backend: Backend) -> None:
    """A database left by version 1 of the schema, holding what the unfenced protocol could leave: a failed
    record whose nonce another operation used, and two live records with one nonce. Opening it adds the
    nonce key; the first of the two keeps the nonce, the later one is left outside the key (a marker that is
    no nonce: since version 3 every record has one)."""
    from sqlalchemy import MetaData, create_engine, insert, inspect

    from keyscope.store.migrations import schema_version_table
    from keyscope.store.schema import version_1

    engine = create_engine(sql_backend.url.replace("postgresql://", "postgresql+psycopg://"))
    rows = [
        ("landed", 1, "included"),
        ("lost-the-race", 1, "failed"),
        ("live", 2, "sent"),
        ("live-twin", 2, "built"),
        ("other", 3, "built"),
    ]
    try:
        with engine.begin() as conn:
            metadata = MetaData()
            tables = version_1(metadata)
            schema_version_table.create(conn)
            metadata.create_all(conn)
            conn.execute(insert(schema_version_table).values(version=1, description="v1", applied_at=0.0))
            for n, (intent, nonce, state) in enumerate(rows, start=1):
                op = make_op(nonce, call_data=bytes([n]))
                conn.execute(
                    insert(tables.outbox).values(
                        intent_id=intent, user_op_hash=h(n), account=ACCOUNT, session_id=SESSION, lane=0,
                        op_json=json.dumps(op.to_rpc()), state=state, attempts=1, created_at=float(n),
                        updated_at=float(n),
                    )
                )  # fmt: skip

        store = sql_backend.open()
        assert isinstance(store, SqlStore) and store.schema_version() == LATEST_VERSION
        for n, (intent, nonce, state) in enumerate(rows, start=1):
            record = store.get_by_intent(intent)
            assert record is not None and record.state.value == state and record.op.nonce == nonce
            assert record.user_op_hash == h(n) and record.rebuilds == 0 and record.displaced == ()
        with engine.connect() as conn:
            kept = dict(conn.exec_driver_sql("SELECT intent_id, nonce FROM keyscope_outbox").all())
            indexes = {i["name"] for i in inspect(conn).get_indexes("keyscope_outbox")}
        assert "ux_keyscope_outbox_nonce" in indexes
        assert kept["live"] == "0x" + (2).to_bytes(32, "big").hex() and kept["live-twin"] == "none:4"
        assert kept["landed"] and kept["lost-the-race"] and kept["other"]
        # the key now holds: the landed nonce and the live one are taken, the twin can be rebuilt
        for nonce in (1, 2, 3):
            with pytest.raises(NonceTakenError):
                store.record_intent(
                    f"new-{nonce}", ACCOUNT, SESSION, 0, make_op(nonce, call_data=b"\x09"), h(90 + nonce)
                )
        lease = store.lease_lane(ACCOUNT, SESSION, "w", 60)
        rebuilt = store.rebuild_intent("live-twin", h(4), 0, make_op(4), h(99), lease=lease)
        assert rebuilt.rebuilds == 1 and rebuilt.displaced == (h(4),)
    finally:
        engine.dispose()


def _old_writer_insert(conn: Any, intent: str, nonce: int, n: int, state: str = "built") -> None:
    """Record an operation as a keyscope of schema version 1 does: the version-1 columns only (no nonce)."""
    from sqlalchemy import MetaData, insert

    from keyscope.store.schema import version_1

    outbox = version_1(MetaData()).outbox
    op = make_op(nonce, call_data=bytes([n]))
    conn.execute(
        insert(outbox).values(
            intent_id=intent, user_op_hash=h(n), account=ACCOUNT, session_id=SESSION, lane=0,
            op_json=json.dumps(op.to_rpc()), state=state, attempts=0, created_at=float(n), updated_at=float(n),
        )
    )  # fmt: skip


def test_a_writer_older_than_the_schema_cannot_record_outside_the_nonce_key(sql_backend: Backend) -> None:
    """A keyscope of schema version 1 still running after a newer one migrated the store records without a
    nonce: outside the nonce key, so both versions could record a live operation with one nonce. The
    database refuses its record (it fails before it sends anything); the newer writer's stands alone."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import IntegrityError

    store = sql_backend.open()
    engine = create_engine(sql_backend.url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with pytest.raises(IntegrityError, match="nonce"), engine.begin() as conn:
            _old_writer_insert(conn, "old-writer", 7, 1)
    finally:
        engine.dispose()
    assert store.pending() == [] and store.get_by_intent("old-writer") is None
    record = store.record_intent("new-writer", ACCOUNT, SESSION, 0, make_op(7), h(2))
    assert [r.intent_id for r in store.pending()] == [record.intent_id]


def test_records_an_older_writer_left_without_a_nonce_get_it_when_the_store_is_migrated(
    sql_backend: Backend,
) -> None:
    """What a version-1 writer recorded into a store already at version 2 (no nonce) enters the nonce key
    when the store is opened by this keyscope; a record whose nonce another live record has stays outside
    it, as a version-1 twin did."""
    from sqlalchemy import create_engine, insert

    from keyscope.store.migrations import MIGRATIONS, schema_version_table

    engine = create_engine(sql_backend.url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            schema_version_table.create(conn)
            for migration in MIGRATIONS[:2]:  # the store as version 2 left it
                migration.apply(conn)
                conn.execute(
                    insert(schema_version_table).values(
                        version=migration.version, description=migration.description, applied_at=0.0
                    )
                )
            _old_writer_insert(conn, "old-live", 7, 1, "sent")
            _old_writer_insert(conn, "old-twin", 7, 2)
            _old_writer_insert(conn, "old-failed", 8, 3, "failed")
        store = sql_backend.open()
        assert isinstance(store, SqlStore) and store.schema_version() == LATEST_VERSION
        with engine.connect() as conn:
            kept = dict(conn.exec_driver_sql("SELECT intent_id, nonce FROM keyscope_outbox").all())
    finally:
        engine.dispose()
    assert kept == {
        "old-live": "0x" + (7).to_bytes(32, "big").hex(),
        "old-twin": "none:2",
        "old-failed": "0x" + (8).to_bytes(32, "big").hex(),
    }
    with pytest.raises(NonceTakenError, match="'old-live'"):
        store.record_intent("new", ACCOUNT, SESSION, 0, make_op(7, call_data=b"\x09"), h(9))
    assert store.record_intent("reuse", ACCOUNT, SESSION, 0, make_op(8, call_data=b"\x09"), h(10)).lane == 0


def test_a_file_store_written_before_the_nonce_index_gets_it_when_opened(tmp_path: Path) -> None:
    root = tmp_path / "store"
    first = open_store(root)
    first.record_intent("live", ACCOUNT, SESSION, 0, make_op(1), h(1))
    first.record_intent("gone", ACCOUNT, SESSION, 0, make_op(2), h(2))
    first.mark_failed(h(2), "refused")
    first.close()
    for path in (root / "nonces").iterdir():  # as an older keyscope left it: no index
        path.unlink()
    (root / "meta" / "nonce-index.json").unlink()
    again = open_store(root)
    with pytest.raises(NonceTakenError, match="'live'"):
        again.record_intent("twin", ACCOUNT, SESSION, 0, make_op(1, call_data=b"\x01"), h(3))
    assert again.record_intent("reuse", ACCOUNT, SESSION, 0, make_op(2, call_data=b"\x01"), h(4)).lane == 0


def test_a_file_store_writer_older_than_the_nonce_index_cannot_slip_a_nonce_past_it(tmp_path: Path) -> None:
    """A keyscope from before the nonce index, still running on a file store a newer one also writes:
    its records enter no index (it only moves the sequence counter, and writes the record and its hash
    entry). The newer writer notices the counter moved without the index and indexes those records before it
    records: a second live operation with the nonce is refused."""
    import hashlib

    root = tmp_path / "store"
    store = open_store(root)
    store.record_intent("new-1", ACCOUNT, SESSION, 0, make_op(1), h(1))
    # what the older keyscope writes for its record (seq 2, nonce 7): counter, hash entry, record
    op = make_op(7, call_data=b"\x07")
    name = hashlib.sha256(b"old-writer").hexdigest()
    (root / "meta" / "outbox-seq.json").write_text(json.dumps({"next": 3}))
    (root / "hashes" / f"{h(7)}.json").write_text(json.dumps({"intent": name}))
    doc = {
        "seq": 2, "intent_id": "old-writer", "account": ACCOUNT, "session_id": SESSION, "lane": 0,
        "op": op.to_rpc(), "user_op_hash": h(7), "state": "built", "attempts": 0, "created_at": 2.0,
        "updated_at": 2.0, "sent_at": None, "finished_at": None, "tx_hash": None, "success": None, "error": None,
    }  # fmt: skip
    (root / "outbox" / f"{name}.json").write_text(json.dumps(doc))
    with pytest.raises(NonceTakenError, match="'old-writer'"):
        store.record_intent("new-2", ACCOUNT, SESSION, 0, make_op(7, call_data=b"\x08"), h(8))
    assert [r.intent_id for r in store.pending()] == ["new-1", "old-writer"]
    assert store.record_intent("new-3", ACCOUNT, SESSION, 0, make_op(8), h(9)).intent_id == "new-3"
    assert json.loads((root / "meta" / "outbox-seq.json").read_text()) == {"next": 4, "indexed": 4}


def test_a_newer_schema_is_refused(sql_backend: Backend) -> None:
    sql_backend.open().close()
    sql_backend.execute(
        "INSERT INTO keyscope_schema_version (version, description, applied_at) VALUES (%s, %s, %s)",
        99,
        "x",
        0.0,
    )
    with pytest.raises(SessionStoreError, match="upgrade keyscope"):
        sql_backend.open()


@pytest.mark.parametrize("secret", [{}, {"passphrase": PASSPHRASE}])
def test_a_file_store_of_a_newer_version_is_refused_and_left_as_is(
    tmp_path: Path, secret: dict[str, Any]
) -> None:
    """A file store whose marker says a newer layout version (written by a newer keyscope) is refused, as a SQL
    store of a newer schema is, with or without a passphrase, and none of its files is changed. Before, it was
    opened and written in this version's layout, and opening it with a passphrase rewrote the marker as
    version 1."""
    root = tmp_path / "store"
    FileStore(root).close()  # grants only: no passphrase check yet
    marker = root / "keyscope-store.json"
    marker.write_text(json.dumps({"format": "keyscope-file-store", "version": 2, "layout": "of the future"}))
    before = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    with pytest.raises(
        SessionStoreError, match=r"version 2, newer than this keyscope knows \(1\): upgrade keyscope"
    ):
        FileStore(root, scrypt_n=SCRYPT_N, **secret)
    assert {path: path.read_bytes() for path in root.rglob("*") if path.is_file()} == before


def test_a_new_sqlite_store_opens_while_another_connection_writes_to_it(tmp_path: Path) -> None:
    """Switching a new file to the WAL journal needs the file to itself, and SQLite refuses it at once (no
    busy wait) while another connection writes in the old journal mode: what happens when several workers
    open a new store at once and one of them is creating the tables. Opening waits for the writer."""
    path = tmp_path / "store.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    committing: list[float] = []

    def commit_now() -> None:
        committing.append(time.monotonic())
        writer.execute("COMMIT")

    commit = threading.Timer(0.5, commit_now)
    commit.start()
    try:
        store = open_store(f"sqlite:///{path}", scrypt_n=SCRYPT_N, passphrase=PASSPHRASE)
        opened = time.monotonic()
    finally:
        commit.join()
        writer.close()
    try:
        assert committing and opened > committing[0]  # it waited for the writer (however slow the machine)
        assert store.lease_lane(ACCOUNT, SESSION, "w", 10).lane == 0
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


def test_postgres_store_rides_through_a_server_restart(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    backend = Backend("postgresql", postgres_server.create_schema(), tmp_path, postgres_server)
    store = backend.open()
    try:
        store.record_intent("before", ACCOUNT, SESSION, 0, make_op(1), h(1))
        postgres_server.restart(mode="immediate")  # every pooled connection is now dead
        assert store.get_by_intent("before") is not None

        postgres_server.stop()
        restarting: list[float] = []

        def restart() -> None:
            restarting.append(time.monotonic())
            postgres_server.start()

        restarter = threading.Timer(1.0, restart)
        restarter.start()
        try:
            store.record_intent("during", ACCOUNT, SESSION, 0, make_op(2), h(2))  # waits for the server
            recorded = time.monotonic()
        finally:
            restarter.join()
        assert restarting and recorded > restarting[0]  # it waited until the server was back
        assert [r.intent_id for r in store.list_outbox()] == ["during", "before"]
    finally:
        backend.close_all()
        if not postgres_server.running:
            postgres_server.start()


def test_postgres_store_reports_an_unreachable_server(postgres_server: PostgresServer) -> None:
    url = "postgresql://keyscope@127.0.0.1:1/keyscope"  # nothing listens on port 1
    with pytest.raises(SessionStoreError, match="PostgreSQL at") as info:
        SqlStore(url, retry_seconds=0.5)
    assert isinstance(info.value, KeyscopeError)


def test_a_statement_postgres_refuses_is_not_reported_as_an_unreachable_server(
    postgres_server: PostgresServer,
) -> None:
    """The server is up and answers, but refuses the statement (here: a table dropped behind the store's
    back): the error says so, not "check the server is running", and is not retried."""
    backend = Backend("postgresql", postgres_server.create_schema(), Path("."), postgres_server)
    store = backend.open()
    try:
        backend.execute("DROP TABLE keyscope_lanes")
        started = time.monotonic()
        with pytest.raises(SessionStoreError, match=r"refused the operation: .*keyscope_lanes") as info:
            store.lease_lane(ACCOUNT, SESSION, "w", 60)
        assert "running" not in str(info.value) and time.monotonic() - started < 5
    finally:
        backend.close_all()


def test_throwaway_postgres_cleans_up_and_explains_missing_binaries(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="apt-get install postgresql"):
        find_postgres_binaries(tmp_path)
    with pytest.raises(ConfigurationError, match="apt-get install postgresql"):
        PostgresServer(bin_dir=tmp_path).start()

    server = PostgresServer()
    with pytest.raises(RuntimeError), server:
        folder = server.base_dir
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        raise RuntimeError("a failing test")
    assert not folder.exists() and not server.running
