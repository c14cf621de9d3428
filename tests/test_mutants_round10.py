"""The tenth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in opening a store by URL, the SQL store's retries, the workers' following of their operations and the
JSON-RPC services' HTTP side.

Pinned here, without a chain:

* ``open_store`` itself refuses a store URL whose scheme lacks its ``//`` (``sqlite:x.db``), creating nothing: the
  command line checks it first, and a program calling the SDK would otherwise get a new folder store named
  ``sqlite:x.db`` in its working directory instead of the database meant;
* a ``file://`` store URL is read percent-decoded, as a URL is: ``file:///srv/a%20b`` opens the folder ``a b``
  (``Path.as_uri`` writes it so), not a new, empty folder ``a%20b`` beside it;
* a JSON-RPC service reads a body of exactly its size limit and refuses one byte more unread (413), at once;
* the SQL store retries a transaction only after a transient failure (a connection lost, a server shutting down,
  a deadlock), and only for ``retry_seconds``: an error the server answered (a full disk, a cancelled statement)
  is raised after one try, and the operation retried after a transient one runs again and returns its result;
* a service's connection limit counts the connections of every client address: with the limit held by two
  addresses, each within its share, a third address is refused (503), not served past the limit; and an address's
  share is counted again after one of its connections ends (its open connections, not one fewer);
* a ``Content-Length`` of a Latin-1 digit that is no ASCII digit (``²``) is refused with 400, not left to raise;
* a SQLite error other than a lost connection is raised at once, not retried;
* a worker process that writes no result of its own has none, not the result an earlier run of its name left;
* an operation whose nonce the node's log says its own event used is included, not failed (an event mined between
  the two questions, attack 361);
* a new SQLite store's file is its owner's only (0o600);
* the consumer of a nonce the node's log names is the sender's event of that nonce, not its first event;
* an operation a bundler already holds (``already known``) is sent, not failed as rejected.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError

from keyscope.cosigner.server import MAX_BODY, CoSignerServer
from keyscope.cosigner.service import CoSignerService
from keyscope.errors import BadInputError, BundlerRejectedError, SessionStoreError
from keyscope.network import Network
from keyscope.scale.events import EventLog, UserOperationEvent
from keyscope.scale.probe import Prober, Verdict
from keyscope.scale.runner import start_worker
from keyscope.store import FileStore, OutboxRecord, SqlStore, open_store
from keyscope.store import sql as sql_module

_NO_SERVICE = cast(CoSignerService, object())
"""A co-signer server's service, for requests its handler refuses before they reach one."""


def test_open_store_refuses_a_scheme_without_its_slashes_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``open_store("sqlite:x.db")`` names, as written, a folder store in the working directory: refused by the SDK,
    not only by the command line, naming the URL meant."""
    monkeypatch.chdir(tmp_path)
    for url, meant in (
        ("sqlite:x.db", "sqlite:///x.db"),
        ("postgresql:app@db/keyscope", "postgresql://app@db"),
    ):
        with pytest.raises(BadInputError) as refused:
            open_store(url, passphrase="pass")
        assert "lacks the //" in str(refused.value) and meant in str(refused.value), refused.value
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_is_read_percent_decoded(tmp_path: Path) -> None:
    """``Path.as_uri()`` writes a space as ``%20``: the store opened is the folder named, not a new one named with
    the escape."""
    folder = tmp_path / "a b"
    with open_store(folder.as_uri(), passphrase="pass", scrypt_n=2**4) as store:
        assert isinstance(store, FileStore)
    assert folder.is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a b"]


def _read_all(sock: socket.socket) -> bytes:
    """Everything ``sock`` is sent until the server closes it, resets it, or its timeout passes."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def _exchange(port: int, raw: bytes, *, timeout: float) -> bytes:
    """Send ``raw`` on a new connection; what the server answers within ``timeout`` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return _read_all(sock)


def _post(port: int, length: int, body: bytes, *, timeout: float) -> bytes:
    """POST ``body`` declared as ``length`` bytes; what the server answers within ``timeout`` seconds."""
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    return _exchange(port, head.encode() + body, timeout=timeout)


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused_unread() -> None:
    """The limit is the largest body read: one byte more is refused (413) before a byte of it is read, so the
    answer comes at once though the client sent only its first byte; the limit itself is read (a parse error for
    a body of spaces, not a 413)."""
    with CoSignerServer(_NO_SERVICE) as server:
        over = _post(server.port, MAX_BODY + 1, b"{", timeout=2.0)
        assert over.startswith(b"HTTP/1.1 413 "), over[:200]
        exact = _post(server.port, MAX_BODY, b" " * MAX_BODY, timeout=5.0)
        assert exact.startswith(b"HTTP/1.1 200 ") and b"-32700" in exact, exact[:300]


class _DriverError(Exception):
    """A driver's exception as psycopg raises it: its SQLSTATE (None when the server never answered)."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _failing(errors: list[OperationalError]) -> tuple[Callable[[Any], str], list[int]]:
    """A store operation that raises ``errors`` in turn, then succeeds; and the list of its calls."""
    calls: list[int] = []

    def work(_conn: Any) -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"

    return work, calls


def _operational(sqlstate: str | None, message: str = "the server said no") -> OperationalError:
    return OperationalError("SELECT 1", {}, _DriverError(message, sqlstate))


@pytest.mark.parametrize("sqlstate", ["53100", "57014", "55006"])
def test_an_error_the_server_answered_is_not_retried(tmp_path: Path, sqlstate: str) -> None:
    """A PostgreSQL error with a SQLSTATE outside the transient ones (a full disk, a cancelled statement, an object
    in use) is the server's answer: retrying the transaction changes nothing, so it is raised at once, after one
    try, not retried for ``retry_seconds``."""
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}", retry_seconds=30)
    try:
        store._dialect = sql_module._Postgres()
        work, calls = _failing([_operational(sqlstate)])
        began = time.monotonic()
        with pytest.raises(SessionStoreError, match="refused the operation"):
            store._run(work, write=True)
        assert len(calls) == 1 and time.monotonic() - began < 1.0
    finally:
        store.close()


@pytest.mark.parametrize("sqlstate", [None, "08006", "57P01", "40P01"])
def test_a_transient_error_is_retried_until_the_operation_succeeds(
    tmp_path: Path, sqlstate: str | None
) -> None:
    """A connection lost (no SQLSTATE, or class 08), a server shutting down and a deadlock are retried: the
    operation runs again and its result is returned, nothing lost."""
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}", retry_seconds=30)
    try:
        store._dialect = sql_module._Postgres()
        work, calls = _failing([_operational(sqlstate), _operational(sqlstate)])
        assert store._run(work, write=True) == "done"
        assert len(calls) == 3
    finally:
        store.close()


def test_a_transient_error_past_the_retry_time_is_raised_not_retried_for_ever(tmp_path: Path) -> None:
    """``retry_seconds`` bounds the retries: an operation whose connection keeps failing is given up after it, with
    the store's error."""
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}", retry_seconds=0.3)
    try:
        store._dialect = sql_module._Postgres()
        work, calls = _failing([_operational(None)] * 50)
        began = time.monotonic()
        with pytest.raises(SessionStoreError, match="check the server is running"):
            store._run(work, write=True)
        assert 1 < len(calls) < 50 and time.monotonic() - began < 2.0
    finally:
        store.close()


def _held(server: CoSignerServer, sources: list[str]) -> list[socket.socket]:
    """Connections from ``sources`` (loopback addresses standing for machines), opened and left silent, each
    counted by the server once this returns."""
    held = [
        socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(source, 0))
        for source in sources
    ]
    deadline = time.monotonic() + 5
    while server._server is not None and server._server._served < len(held) and time.monotonic() < deadline:
        time.sleep(0.01)
    return held


def test_the_connection_limit_counts_every_address_s_connections() -> None:
    """With ``max_connections`` connections held, from different addresses each within its own share, the next
    one, from a third address, is refused at once (503): the whole limit holds, not only each address's share."""
    with CoSignerServer(_NO_SERVICE, max_connections=2, max_connections_per_address=2) as server:
        held = _held(server, ["127.0.0.1", "127.0.0.2"])
        try:
            with socket.create_connection(
                ("127.0.0.1", server.port), timeout=2, source_address=("127.0.0.3", 0)
            ) as third:
                answer = _read_all(third)
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert b"its limit of 2 connections at once" in answer, answer
        finally:
            for sock in held:
                sock.close()


def _refused_at_once(port: int, source: str) -> bytes:
    """What a new, silent connection from ``source`` is sent within a second: a refusal is sent at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=1, source_address=(source, 0)) as sock:
        return _read_all(sock)


def test_an_address_s_share_is_counted_again_after_one_of_its_connections_ends() -> None:
    """One address's share is its connections open now: after one of two ends, the address holds one, so a second
    is served and a third refused (503), not three served at once because the count was dropped with the first."""
    with CoSignerServer(_NO_SERVICE, max_connections=10, max_connections_per_address=2) as server:
        assert server._server is not None
        held = _held(server, ["127.0.0.2", "127.0.0.2"])
        try:
            held.pop().close()
            deadline = time.monotonic() + 5
            while server._server._served > 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            held += _held(server, ["127.0.0.2"])
            answer = _refused_at_once(server.port, "127.0.0.2")
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
            assert b"from your address 127.0.0.2" in answer, answer
        finally:
            for sock in held:
                sock.close()


def test_a_sqlite_error_is_raised_at_once_not_retried(tmp_path: Path) -> None:
    """On SQLite only a connection lost is transient: a disk error (or a database locked past the busy timeout,
    which already waited) is raised after one try, not retried for ``retry_seconds``."""
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}", retry_seconds=30)
    try:
        work, calls = _failing([OperationalError("SELECT 1", {}, Exception("disk I/O error"))])
        began = time.monotonic()
        with pytest.raises(SessionStoreError, match="disk I/O error"):
            store._run(work, write=True)
        assert len(calls) == 1 and time.monotonic() - began < 1.0
    finally:
        store.close()


def test_a_content_length_of_a_non_ascii_digit_is_refused_with_400() -> None:
    """A header is read as Latin-1, where ``²`` is a digit to ``str.isdigit`` but no number to ``int``: the length
    is refused (400), not left to raise in the handler, which dropped the connection without an answer."""
    with CoSignerServer(_NO_SERVICE) as server:
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        answer = _exchange(server.port, head.encode() + b"Content-Length: \xb2\r\n\r\n{", timeout=2.0)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"Content-Length must be a decimal number of bytes" in answer, answer


def test_a_worker_process_that_writes_no_result_has_none_not_an_older_run_s(tmp_path: Path) -> None:
    """``start_worker`` removes the result file of an earlier run of the same name before it starts: a run that
    ends before writing its own (a crash, a bad spec) has no result, not the earlier run's records taken for its
    own."""
    (tmp_path / "w.result.json").write_text(json.dumps({"records": {"intent-1": {"state": "included"}}}))
    worker = start_worker({}, tmp_path, "w", command=[sys.executable, "-c", "pass"])
    assert worker.wait(30) == 0
    assert worker.result() is None


class _LogLandingMeanwhile:
    """A node's log where the operation's own event appears between the two questions ``settle_used`` asks: not
    yet there when its hash is looked up, there when its nonce's consumer is (a block mined in between)."""

    def __init__(self, event: UserOperationEvent) -> None:
        self.event = event

    def find(self, user_op_hash: str) -> UserOperationEvent | None:
        return None

    def consumer_of(self, sender: str, nonce: int) -> UserOperationEvent | None:
        return self.event


def test_an_operation_whose_own_event_names_its_nonce_s_consumer_is_included_not_failed_or_displaced() -> (
    None
):
    """Its nonce used, and the event of the operation that used it is its own: it landed. Taken as displaced, its
    intent was built and sent again (its calls run twice); taken as failed, it was reported as never landing though
    it ran (and a caller retrying it runs its calls twice) (attack 361)."""
    op_hash = "0x" + "ab" * 32
    event = UserOperationEvent(
        user_op_hash=op_hash,
        sender="0x" + "11" * 20,
        paymaster=None,
        nonce=5,
        success=True,
        actual_gas_cost=1,
        actual_gas_used=1,
        tx_hash="0x" + "cd" * 32,
        block_number=9,
        log_index=0,
    )
    record = cast(
        OutboxRecord,
        SimpleNamespace(user_op_hash=op_hash, op=SimpleNamespace(sender=event.sender, nonce=5), lane=0),
    )
    prober = Prober(cast(Network, None), cast(EventLog, _LogLandingMeanwhile(event)))
    outcome = prober.settle_used(record)
    assert (outcome.verdict, outcome.tx_hash, outcome.success) == (Verdict.INCLUDED, event.tx_hash, True), (
        outcome
    )


def test_a_new_sqlite_store_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The file holds the sealed keys, the grants and the outbox: created for its owner only (``0o600``), whatever
    the process's umask lets others read, and its write-ahead log files with it."""
    path = tmp_path / "s.db"
    old = os.umask(0o022)
    try:
        store = SqlStore(f"sqlite:///{path}", kek=bytes(range(32)))
        try:
            for file in (path, *tmp_path.glob("s.db-*")):
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, (file, oct(file.stat().st_mode))
        finally:
            store.close()
    finally:
        os.umask(old)


def test_a_nonce_s_consumer_is_the_sender_s_event_of_that_nonce_not_its_first() -> None:
    """The node's log holds the sender's earlier operations too: the consumer of a nonce is the event with that
    nonce, not the first of the sender's events (a wrong consumer is credited as included, and named as the
    operation that displaced this one)."""
    sender = "0x" + "11" * 20

    def event(nonce: int) -> UserOperationEvent:
        return UserOperationEvent(
            user_op_hash="0x" + f"{nonce:02x}" * 32,
            sender=sender,
            paymaster=None,
            nonce=nonce,
            success=True,
            actual_gas_cost=1,
            actual_gas_used=1,
            tx_hash="0x" + f"{nonce + 16:02x}" * 32,
            block_number=nonce,
            log_index=0,
        )

    class _Log(EventLog):
        def events(self, *args: Any, **kwargs: Any) -> list[UserOperationEvent]:
            return [event(3), event(4), event(5)]

    log = _Log(lambda method, params: None, "0x" + "22" * 20)
    consumer = log.consumer_of(sender, 5, from_block=0)
    assert consumer is not None and consumer.nonce == 5 and consumer.user_op_hash == "0x" + "05" * 32
    assert log.consumer_of(sender, 6, from_block=0) is None


def test_an_operation_the_bundler_already_holds_is_sent_not_failed() -> None:
    """A bundler refusing an operation sent again because it already holds it (``already known``, here with an
    invalid-params code, not a transient one) holds it: SENT, followed to its inclusion, not failed as rejected
    while it can still land."""
    rejected = BundlerRejectedError("eth_sendUserOperation", -32602, "already known")

    def send_user_operation(op: Any, entry_point: str) -> bytes:
        raise rejected

    network = SimpleNamespace(
        bundler=SimpleNamespace(send_user_operation=send_user_operation), entry_point="0x" + "22" * 20
    )
    prober = Prober(cast(Network, network), None)
    prober._settle_if_used = lambda record: None  # type: ignore[method-assign]
    record = cast(OutboxRecord, SimpleNamespace(user_op_hash="0x" + "ab" * 32, op=object(), lane=0))
    outcome = prober.submit(record)
    assert outcome.verdict is Verdict.SENT, outcome
