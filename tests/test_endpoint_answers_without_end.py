"""An endpoint (bundler, paymaster service, node) whose answer never ends, or never stops growing.

Every request to an endpoint has a timeout, but a timeout between two reads of the socket is no bound on the
whole answer: an endpoint sending a byte of its body now and then (whitespace, valid before any JSON) kept a
request waiting as long as it liked, and an endpoint sending an endless body had it read into memory. Each
answer is bounded in time (the request's timeout, for the whole of it) and in size.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from keyscope.bundler import BundlerClient
from keyscope.errors import TransportError
from keyscope.rpc import DEFAULT_MAX_RESPONSE_BYTES, JsonRpcClient

USER_OP_HASH = b"\x11" * 32


@dataclass
class EndlessAnswers:
    """An HTTP server on 127.0.0.1 answering every request 200 with a chunked body of spaces that never ends:
    ``chunk`` bytes every ``pause`` seconds, for at most ``limit`` seconds or ``chunks`` chunks (then the body
    ends, not JSON)."""

    chunk: int
    pause: float
    limit: float = 30.0
    chunks: int = 1_000_000

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                received = b""
                while b"\r\n\r\n" not in received:
                    received += connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                piece = b"%x\r\n" % self.chunk + b" " * self.chunk + b"\r\n"
                ends = time.monotonic() + self.limit
                for _ in range(self.chunks):
                    if self._stopped.is_set() or time.monotonic() >= ends:
                        break
                    connection.sendall(piece)
                    time.sleep(self.pause)
                connection.sendall(b"0\r\n\r\n")
            except OSError:  # the client gave up
                pass

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()


@pytest.fixture
def trickling() -> Iterator[EndlessAnswers]:
    server = EndlessAnswers(chunk=1, pause=0.05)
    yield server
    server.stop()


@pytest.fixture
def flooding() -> Iterator[EndlessAnswers]:
    # 16 MiB in all: without a limit the client reads it whole (a test machine has that much to spare)
    server = EndlessAnswers(chunk=256 * 1024, pause=0.0, chunks=64)
    yield server
    server.stop()


def test_an_answer_trickling_forever_times_out_within_the_requests_timeout(trickling: EndlessAnswers) -> None:
    with BundlerClient(trickling.url, timeout=0.5) as bundler:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"timed out after 0\.5s") as info:
            bundler.get_user_operation_receipt(USER_OP_HASH)
        elapsed = time.monotonic() - started
    # the answer would go on for 30 s; each byte comes well within the read timeout (a loaded machine may add
    # a second or two, never the 30)
    assert elapsed < 10.0
    assert info.value.method == "eth_getUserOperationReceipt"


def test_an_answer_growing_without_end_is_refused_past_the_size_limit(flooding: EndlessAnswers) -> None:
    limit = 1024 * 1024
    with JsonRpcClient(flooding.url, timeout=10.0, max_response_bytes=limit) as client:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"more than 1048576 bytes") as info:
            client.request("eth_getLogs", [{}])
        elapsed = time.monotonic() - started
    assert elapsed < 10.0
    assert info.value.method == "eth_getLogs"
    assert "max_response_bytes" in str(info.value)


def test_every_endpoint_client_has_a_size_limit_by_default(flooding: EndlessAnswers) -> None:
    assert 16 * 1024 * 1024 <= DEFAULT_MAX_RESPONSE_BYTES <= 1024 * 1024 * 1024
    with JsonRpcClient(flooding.url) as client:
        assert client.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES


def test_an_answer_under_the_size_limit_is_read_whole() -> None:
    from test_bundler_client import ScriptedServer, ok

    server = ScriptedServer()
    big = "0x" + "ab" * 200_000
    server.on("eth_call", ok(big))
    try:
        with JsonRpcClient(server.url, timeout=5.0, max_response_bytes=1024 * 1024) as client:
            assert client.request("eth_call", []) == big
        with (
            JsonRpcClient(server.url, timeout=5.0, max_response_bytes=100_000) as client,
            pytest.raises(TransportError, match="more than 100000 bytes"),
        ):
            client.request("eth_call", [])
    finally:
        server.stop()
