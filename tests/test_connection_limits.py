"""How many connections the sponsor, the co-signer and the consent server serve at once (attack 256).

Each connection a server serves holds a request thread and a file descriptor until its request is answered or the
request timeout cuts it. The timeout bounded how long, not how many: a client opening hundreds of connections and
trickling a byte into each (reconnecting as each is cut) held that many threads, and past the process's file
descriptors left the service accepting no other client. Each server now serves at most ``max_connections`` at once
and ``max_connections_per_address`` from one client address; a connection past either is answered ``503`` with
``Retry-After`` by the accepting thread and closed, with no thread of its own.

The servers run for real on 127.0.0.1 (a client taking 127.0.0.2 as its address stands for another machine)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from keyscope import connect
from keyscope.consent import ConsentServer
from keyscope.cosigner import CoSignerServer, CoSignerService
from keyscope.errors import BadInputError
from keyscope.http_service import MAX_CONNECTIONS, REQUEST_TIMEOUT, SERVER_BUSY, LocalHTTPServer
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorServer, SponsorshipPolicy

CHAIN_ID = 31337
ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
KINDS = ["cosigner", "sponsor", "consent"]


def _server(kind: str, **limits: Any) -> CoSignerServer | SponsorServer | ConsentServer:
    """A server of ``kind`` (not started) with the connection ``limits`` given."""
    if kind == "cosigner":
        service = CoSignerService(
            LocalSigner.generate(), chain_id=CHAIN_ID, module="0x" + "11" * 20, entry_point=ENTRY_POINT
        )
        return CoSignerServer(service, **limits)
    if kind == "sponsor":
        sponsor = Sponsor(
            paymaster="0x" + "77" * 20,
            signer=LocalSigner.generate(),
            chain_id=CHAIN_ID,
            policy=SponsorshipPolicy(targets="any"),
        )
        return SponsorServer(sponsor, **limits)
    # its static files need no node: the network (whose node and bundler are reached only when asked) is never asked
    network = connect("http://127.0.0.1:9", "http://127.0.0.1:9", module="0x" + "11" * 20)
    return ConsentServer(network, max_connections=limits["max_connections"])


def _request(kind: str, port: int) -> bytes:
    """A whole request each server answers at once, without a node."""
    host = f"127.0.0.1:{port}"
    if kind == "consent":
        return f"GET /static/keyscope.css HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "nope", "params": []}).encode()
    head = f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def _answer(sock: socket.socket, within: float) -> bytes:
    """What the server sends on ``sock`` within ``within`` seconds: its head and as much body as it declares (or
    everything until it closes)."""
    sock.settimeout(within)
    received = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        if _ and b"content-length:" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                break
    return received


def _ask(
    kind: str, port: int, source: str = "127.0.0.1", within: float = 2.0
) -> tuple[int | None, bytes, float]:
    """Send a whole request from ``source``: the answer's status (None: no answer within ``within`` s), its bytes
    and the seconds it took."""
    started = time.monotonic()
    with _connect(port, source) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):  # refused before it was sent: the 503 is there
            sock.sendall(_request(kind, port))
        raw = _answer(sock, within)
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.") else None
    return status, raw, time.monotonic() - started


def _request_threads() -> int:
    """How many request threads (one per connection served) run in this process."""
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


@contextmanager
def _held(port: int, count: int, source: str = "127.0.0.1") -> Iterator[list[socket.socket]]:
    """``count`` connections from ``source`` that sent part of a request line and wait, closed on exit."""
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(_connect(port, source))
            sock.sendall(b"POST / HT")
            socks.append(sock)
        time.sleep(0.3)  # the server accepts them all
        yield socks


PROMPT = 5.0
"""Seconds within which a client the limits leave served must be answered: far under the 30 s a held connection
keeps a request thread (``REQUEST_TIMEOUT``), which a client the limits failed would wait out, and far over what a
busy machine takes to answer (how fast is for the benchmarks, not these tests)."""


@pytest.mark.parametrize("kind", KINDS)
def test_a_connection_past_the_limit_is_answered_503_at_once(kind: str) -> None:
    """With ``max_connections`` 4 held by a client that sends part of a request and waits, a fifth connection is
    answered ``503`` with ``Retry-After`` at once (the body says which limit, a JSON-RPC error for the JSON-RPC
    services) and given no request thread; once the held ones close, a request is answered as before. Without the
    limit the fifth got a thread of its own, as would the 500th."""
    with _server(kind, max_connections=4) as server:
        before = _request_threads()
        with _held(server.port, 4):
            assert _request_threads() - before == 4
            # answered within PROMPT s, not after a held connection gives up (REQUEST_TIMEOUT, 30 s)
            status, raw, _ = _ask(kind, server.port, within=PROMPT)
            assert status == 503, f"{kind}: a fifth connection past the limit of 4 was answered {raw[:200]!r}"
            head, _, body = raw.partition(b"\r\n\r\n")
            fields = head.lower().split(b"\r\n")
            assert b"retry-after: 1" in fields and b"connection: close" in fields, head
            answer = json.loads(body)
            message = answer["error"]["message"] if kind != "consent" else answer["error"]
            if kind != "consent":
                assert answer["error"]["code"] == SERVER_BUSY and answer["id"] is None, answer
            assert "limit of 4 connections at once" in message, message
            assert _request_threads() - before == 4, f"{kind}: the refused connection got a thread"
        deadline = time.monotonic() + 3
        while _request_threads() > before and time.monotonic() < deadline:
            time.sleep(0.02)
        status, raw, _ = _ask(kind, server.port)
        assert status == 200, f"{kind}: after the held connections closed: {raw[:200]!r}"


@pytest.mark.parametrize("kind", ["cosigner", "sponsor"])
def test_trickling_connections_from_one_address_leave_the_others_served(kind: str) -> None:
    """200 connections from one address, each trickling a byte of its request line every 0.1 s, against a server
    serving 16 at once and 4 per address: the server holds 4 of them (4 request threads, not 200), answers each
    other one 503 at once, and answers a client from another address promptly, while the trickling goes on."""
    assert PROMPT * 4 < REQUEST_TIMEOUT, "a client waiting out a held connection would pass as served"
    with _server(kind, max_connections=16, max_connections_per_address=4) as server:
        before = _request_threads()
        with ExitStack() as stack:
            flood = [stack.enter_context(_connect(server.port, "127.0.0.2")) for _ in range(200)]
            for sock in flood:
                sock.sendall(b"P")
            time.sleep(0.3)
            refused, held = 0, []
            for sock in flood:  # the refused ones hold their 503; the held ones hold nothing yet
                raw = _answer(sock, 0.005)
                if raw.startswith(b"HTTP/1.1 503"):
                    assert b"from your address 127.0.0.2" in raw, raw
                    refused += 1
                else:
                    held.append(sock)
            threads = _request_threads() - before
            assert threads <= 4, f"{kind}: {threads} request threads held by one address past its share of 4"
            assert (refused, len(held)) == (196, 4)
            for _ in range(3):  # the held ones go on trickling
                for sock in held:
                    sock.sendall(b"O")
                status, raw, _ = _ask(kind, server.port, "127.0.0.1", within=PROMPT)
                assert status == 200, f"{kind}: another address's client got {raw[:200]!r} within {PROMPT} s"
                time.sleep(0.1)


def test_the_share_of_one_address_is_the_whole_limit_on_loopback_and_a_quarter_elsewhere() -> None:
    """Every client of a server on 127.0.0.1 (and a proxy in front of it on the machine) has that one address, so
    a share would only lower the limit; on another address one client address gets a quarter by default, and any
    share given is kept."""
    server = LocalHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        assert server.max_connections == MAX_CONNECTIONS
        assert server.per_address_limit == MAX_CONNECTIONS
        server.server_address = ("192.0.2.1", server.server_address[1])  # as if bound to another interface
        assert server.per_address_limit == MAX_CONNECTIONS // 4
    finally:
        server.server_close()
    given = LocalHTTPServer(
        ("127.0.0.1", 0), BaseHTTPRequestHandler, max_connections=10, max_connections_per_address=3
    )
    try:
        assert given.per_address_limit == 3
    finally:
        given.server_close()


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"max_connections": 0}, "max_connections 0 is no number of connections"),
        ({"max_connections": True}, "max_connections True is no number"),
        ({"max_connections": 2.5}, "max_connections 2.5 is no number"),
        ({"max_connections_per_address": -1}, "max_connections_per_address -1 is no number"),
        ({"max_connections": 8, "max_connections_per_address": 9}, "max_connections_per_address 9 is over"),
    ],
)
@pytest.mark.parametrize("kind", ["cosigner", "sponsor"])
def test_a_connection_limit_that_is_no_number_of_connections_is_refused(
    kind: str, limits: dict[str, Any], named: str
) -> None:
    with pytest.raises(BadInputError, match=named):
        _server(kind, **limits)


def test_a_client_library_reads_the_503() -> None:
    """An HTTP client sending its request after the refusal was written still reads the 503 (the server reads
    what arrived before it closes, so that closing does not reset the connection over the answer)."""
    with _server("sponsor", max_connections=1) as server, _held(server.port, 1):
        answer = httpx.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "nope"}, timeout=5)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["code"] == SERVER_BUSY
