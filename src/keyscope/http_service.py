"""A small HTTP server run in a background thread, shared by the consent server and the sponsor server.

:class:`BackgroundServer` binds, serves in a daemon thread, stops idempotently and works as a context manager;
:func:`send_body` writes one complete response; :func:`content_length` reads a request's declared body size. For the
JSON-RPC services (the sponsor, the co-signer): :data:`MAX_BATCH` and :func:`batch_refusal` bound a batch,
:func:`request_problem` judges one request, :func:`is_notification` tells a notification (neither run nor answered:
:func:`send_no_answer`), :func:`json_answer` writes an answer no longer than what it echoes.
"""

from __future__ import annotations

import contextlib
import email.errors
import io
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

from .errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    ConfigurationError,
    TransportError,
    has_private_key_form,
    shown,
)
from .json_objects import one_of_each_key

__all__ = [
    "BUSY_RETRY_AFTER",
    "INVALID_REQUEST",
    "MAX_BATCH",
    "MAX_CONNECTIONS",
    "REQUEST_TIMEOUT",
    "SERVER_BUSY",
    "BackgroundServer",
    "DeadlineRequestHandler",
    "JsonRpcHTTPServer",
    "LocalHTTPServer",
    "LocalRequestHandler",
    "NestedTooDeepError",
    "answer_id",
    "batch_refusal",
    "cannot_listen",
    "connection_limits",
    "content_length",
    "foreign_host",
    "is_notification",
    "json_answer",
    "json_body",
    "request_problem",
    "require_host",
    "send_body",
    "send_no_answer",
]

_S = TypeVar("_S", bound="BackgroundServer")

REQUEST_TIMEOUT = 30.0
"""Seconds a server gives a request to arrive whole (its request line, its headers and its body, counted from when
the server starts waiting for it), and a client to read each part of the answer, before it closes the connection.
Without it, a connection opened and left silent (or a kept-alive one never used again) held its request thread and
file descriptor until the client closed it, so a few hundred idle connections left a service unable to accept
another (a process's file descriptors are bounded); a timeout per read alone let a client trickling a byte at a
time hold one for ever."""

MAX_CONNECTIONS = 64
"""The most connections a server (the sponsor, the co-signer, the consent server) serves at once, unless given
another limit (``max_connections``). Each connection it serves holds a thread and a file descriptor until its
request is answered or :data:`REQUEST_TIMEOUT` cuts it; the deadline alone bounded how long, not how many: a client
opening 500 connections and trickling a byte into each held 500 threads, and, past the process's file descriptors
(1,024 is a common default), left the service accepting no other connection until the deadlines passed. A
connection past the limit is answered at once from the accepting thread, ``503 Service Unavailable`` with
``Retry-After`` (:data:`BUSY_RETRY_AFTER`), and closed: it gets no thread and waits for nothing. Each request of
these services takes milliseconds, so 64 at once is far more than their honest clients (a bundler, a dapp) keep
open."""

BUSY_RETRY_AFTER = 1
"""Seconds a client refused for the connection limit is told to wait (``Retry-After``): a slot frees as soon as
a request is answered, or at the latest after :data:`REQUEST_TIMEOUT`."""


def connection_limits(max_connections: object, per_address: object) -> tuple[int, int | None]:
    """``(max_connections, per_address)`` checked: each a whole number of connections, at least 1, the share of one
    client address no more than the whole; ``per_address`` None chooses it when the server is bound
    (:meth:`LocalHTTPServer.per_address_limit`). :class:`BadInputError` otherwise."""
    checked = [("max_connections", max_connections)]
    if per_address is not None:
        checked.append(("max_connections_per_address", per_address))
    for name, value in checked:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInputError(
                f"{name} {value!r} is no number of connections: give a whole number, at least 1 (by default a "
                f"server takes {MAX_CONNECTIONS} at once, and from one client address all of them on a loopback "
                "address, a quarter on another)"
            )
    assert isinstance(max_connections, int)
    if isinstance(per_address, int) and per_address > max_connections:
        raise BadInputError(
            f"max_connections_per_address {per_address} is over max_connections {max_connections}: one client "
            f"address can hold no more than the whole; give at most {max_connections}"
        )
    return max_connections, per_address if isinstance(per_address, int) else None


INVALID_REQUEST = -32600
"""JSON-RPC 2.0's code for a request (or a batch) that is no valid request object."""

SERVER_BUSY = -32000
"""The JSON-RPC error code (implementation-defined server error) of a connection refused, ``503``, for the
connection limit (:data:`MAX_CONNECTIONS`)."""

MAX_BATCH = 100
"""The most requests a JSON-RPC service (the sponsor, the co-signer) takes in one batch. A larger batch is refused
as a whole, with one invalid-request error (:func:`batch_refusal`), and none of its requests is run. Every request
of a batch gets an answer of its own, even an invalid one (JSON-RPC 2.0): without a bound, a body of 1 MiB holding
``[1,1,1,…]`` (two bytes a request) drew some 68 MB of identical errors (130 bytes each), and a batch of valid
requests made the service sign (and the sponsor read the node's clock) some 2,700 times for one HTTP request (as
many as 1 MiB holds). A client of these services asks for one operation's fields or co-signature at a time; 100 is
Erigon's and Bor's default, a tenth of geth's (``--rpc.batch-request-limit`` 1000, for a node whose requests are
mostly reads)."""


def batch_refusal(batch: list[Any]) -> dict[str, Any] | None:
    """The one invalid-request error object a JSON-RPC batch is answered with as a whole, or None to answer each of
    its requests. An empty batch is one invalid request (JSON-RPC 2.0); a batch of more than :data:`MAX_BATCH`
    requests is refused before any of them is run (``data``: ``reason`` ``batch``, ``limit``, ``requests``)."""
    if not batch:
        return {
            "code": INVALID_REQUEST,
            "message": "empty batch: a batch is an array of one or more requests (JSON-RPC 2.0)",
        }
    if len(batch) > MAX_BATCH:
        return {
            "code": INVALID_REQUEST,
            "message": f"batch of {len(batch)} requests is over this service's limit of {MAX_BATCH}: none of them "
            f"was run; send at most {MAX_BATCH} requests per batch (split it, or send them one at a time)",
            "data": {"reason": "batch", "limit": MAX_BATCH, "requests": len(batch)},
        }
    return None


def request_problem(request: Any) -> str | None:
    """What makes ``request`` (one item of a body) no JSON-RPC 2.0 request object, or None. Its ``id`` must be a
    string, a whole number or null: an id is echoed in the answer, and a fractional or exponent number comes back
    longer than it was sent (``1E15`` as ``1000000000000000.0``), an object or array id is no id at all."""
    if (
        not isinstance(request, dict)
        or request.get("jsonrpc") != "2.0"
        or not isinstance(request.get("method"), str)
    ):
        return "not a JSON-RPC 2.0 request (jsonrpc, method, params, id)"
    request_id = request.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int))):
        return "the request's id must be a string, a whole number or null (JSON-RPC 2.0)"
    return None


def is_notification(request: Any) -> bool:
    """Whether ``request``, a valid request object (:func:`request_problem` found nothing in it), is a notification:
    one without an ``id`` member at all (JSON-RPC 2.0). A request with ``"id": null`` is no notification: it is run
    and answered, with id null. An invalid request object is answered (id null) whether it has an id or not.

    The JSON-RPC services (the sponsor, the co-signer) neither answer a notification (JSON-RPC 2.0: the server MUST
    NOT reply to one, in a batch or alone) nor run it: each of their methods exists for its answer (a paymaster's
    fields and signature, a co-signature), which a notification asks nobody to receive. Run, ``pm_getPaymasterData``
    sent as a notification reserved the operation's maximum cost from the account's sponsorship budget for good, for
    a signature no one holds, and each co-signing notification made the service sign for no one; the caller saw
    nothing of either. A batch's notifications are left out of its answer array; a body of notifications only is
    answered with :func:`send_no_answer`."""
    return isinstance(request, dict) and "id" not in request


def answer_id(request: Any) -> Any:
    """The id an answer to ``request`` carries: its own when it is a valid id, else null."""
    request_id = request.get("id") if isinstance(request, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
        return None
    return request_id


def json_answer(payload: Any) -> bytes:
    """``payload`` as the bytes of a JSON answer, never longer than the request for what it echoes: without spaces
    after separators, and text written as it is, in UTF-8 (the default ``\\uXXXX`` escapes of every character past
    ``~`` made an id of ``\\x7f`` characters, one byte each in the request, six bytes each in the answer). A lone surrogate (which a request can
    only spell as an escape) is written back as that escape."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


class _DeadlineReader(io.RawIOBase):
    """A connection's incoming bytes, each read allowed only the time left until its handler's request deadline."""

    def __init__(self, connection: socket.socket, handler: DeadlineRequestHandler) -> None:
        self._connection = connection
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive whole within the server's request timeout")
        self._connection.settimeout(left)
        try:
            return self._connection.recv_into(buffer)
        finally:  # writes (the client reading the answer) keep the handler's own timeout
            self._connection.settimeout(self._handler.timeout)


class _HeadReader(io.BufferedReader):
    """A connection's buffered reader that keeps the lines read while :attr:`head_lines` is a list (the request
    line and headers, which Python's parser reads line by line), for checks its parser does not make."""

    head_lines: list[bytes] | None = None

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(-1 if size is None else size)
        if self.head_lines is not None:
            self.head_lines.append(line)
        return line


class DeadlineRequestHandler(BaseHTTPRequestHandler):
    """A request handler whose every request must arrive whole within :attr:`timeout` seconds of the server
    starting to wait for it (a silent client and one trickling a byte at a time alike), after which the
    connection is closed; each write to the client waits at most :attr:`timeout` too."""

    timeout = REQUEST_TIMEOUT
    deadline = float("inf")
    """When the request being read must have arrived whole (``time.monotonic()``)."""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: its reads would wait per read, not per request
        raw: io.RawIOBase = (
            socket.SocketIO(self.connection, "rb")
            if self.timeout is None
            else _DeadlineReader(self.connection, self)
        )
        self.rfile = _HeadReader(raw)

    def handle_one_request(self) -> None:
        if self.timeout is not None:
            self.deadline = time.monotonic() + self.timeout
        if isinstance(self.rfile, _HeadReader):
            self.rfile.head_lines = []  # the request's head, until it is parsed (LocalRequestHandler.parse_request)
        super().handle_one_request()


class LocalHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose request threads do not keep the process alive and whose port can be
    bound again at once, serving at most ``max_connections`` connections at once (:data:`MAX_CONNECTIONS`), and
    at most ``max_connections_per_address`` of them from one client address (:meth:`per_address_limit`).

    A connection past either limit is answered ``503`` with ``Retry-After`` by the accepting thread and closed
    (:meth:`busy_body` says which limit, in the server's own format): it gets no request thread, so a flood of
    connections costs the server one accept, one short write and one close each, and what it holds stays bounded.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    """The listening socket's backlog (socketserver's default, 5, dropped the connections a burst opened faster
    than one accept each, and their clients retried a second later)."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_address: int | None = None,
    ) -> None:
        self.max_connections, self.max_connections_per_address = connection_limits(
            max_connections, max_connections_per_address
        )
        self.refused_connections = 0
        """How many connections were refused for a limit since the server started."""
        self._served = 0
        self._served_by: dict[str, int] = {}
        self._count_lock = threading.Lock()
        super().__init__(address, handler)

    @property
    def per_address_limit(self) -> int:
        """The most connections served at once from one client address: ``max_connections_per_address`` when
        given; else the whole limit on a loopback address (every client of the machine, and a proxy in front of
        the service on it, comes from 127.0.0.1: a share would only lower the limit), and a quarter of it (at least
        1) on any other, so that one address reaching the service directly cannot take every connection. A service
        behind a proxy on another machine sees the proxy's address only: give the whole limit as the share there,
        and let the proxy bound each client."""
        if self.max_connections_per_address is not None:
            return self.max_connections_per_address
        if _is_loopback(str(self.server_address[0])):
            return self.max_connections
        return max(1, self.max_connections // 4)

    def busy_body(self, message: str) -> tuple[bytes, str]:
        """The body (and its type) of a ``503`` refusing a connection for a limit, which ``message`` explains."""
        return json.dumps({"error": message}).encode(), "application/json"

    def process_request(self, request: Any, client_address: Any) -> None:
        address = str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)
        share = self.per_address_limit
        with self._count_lock:
            if self._served >= self.max_connections:
                refusal = (
                    f"this service is serving its limit of {self.max_connections} connections at once: try again "
                    f"in {BUSY_RETRY_AFTER} s"
                )
            elif self._served_by.get(address, 0) >= share:
                refusal = (
                    f"this service is serving its limit of {share} connections at once from your address "
                    f"{address}: finish or close one of them, or try again in {BUSY_RETRY_AFTER} s"
                )
            else:
                refusal = None
                self._served += 1
                self._served_by[address] = self._served_by.get(address, 0) + 1
        if refusal is not None:
            self._refuse(request, address, refusal)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started (too many threads): the slot is free again
            self._release(address)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(
                str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a connection the client reset or broke off at DEBUG (it is the client's doing, and a flood of them
        would fill the log with tracebacks); anything else as socketserver does."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            logging.getLogger("keyscope").debug("%s broke off the connection: %s", client_address, error)
            return
        super().handle_error(request, client_address)

    def _release(self, address: str) -> None:
        with self._count_lock:
            self._served -= 1
            left = self._served_by.get(address, 0) - 1
            if left > 0:
                self._served_by[address] = left
            else:
                self._served_by.pop(address, None)

    def _refuse(self, request: socket.socket, address: str, message: str) -> None:
        """Answer ``503`` on ``request`` without waiting for anything (a write that would wait is dropped) and
        close it."""
        with self._count_lock:
            self.refused_connections += 1
        logging.getLogger("keyscope").debug("%s refused: %s", address, message)
        body, content_type = self.busy_body(message)
        head = (
            "HTTP/1.1 503 Service Unavailable\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Retry-After: {BUSY_RETRY_AFTER}\r\nConnection: close\r\n\r\n"
        )
        try:
            request.setblocking(False)
            # what the client sent already, read so that closing does not reset the connection over it
            with contextlib.suppress(BlockingIOError, InterruptedError):
                request.recv(1 << 16)
            request.send(head.encode("ascii") + body)
        except OSError:
            pass
        self.shutdown_request(request)


class JsonRpcHTTPServer(LocalHTTPServer):
    """A :class:`LocalHTTPServer` for a JSON-RPC service, whose ``503`` refusals carry a JSON-RPC error object
    (code -32000, id null), as its other refusals do."""

    def busy_body(self, message: str) -> tuple[bytes, str]:
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": SERVER_BUSY, "message": message}}
        return json_answer(error), "application/json"


_HEADER_LINE_DEFECTS = (
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.FirstHeaderLineIsContinuationDefect,
)
"""What Python's header parser reports for a line it cannot read as a header, and stops (or starts) there."""


class LocalRequestHandler(DeadlineRequestHandler):
    """A request handler speaking HTTP/1.1, with a deadline per request (:class:`DeadlineRequestHandler`), that
    logs each request at DEBUG to :attr:`logger`."""

    protocol_version = "HTTP/1.1"
    logger = logging.getLogger("keyscope")

    def log_message(self, format: str, *args: Any) -> None:
        self.logger.debug("%s %s", self.address_string(), format % args)

    def parse_request(self) -> bool:
        """The request line and headers, as :class:`BaseHTTPRequestHandler` reads them; a request other than a
        POST that says it has a body (a ``Content-Length``, or ``Transfer-Encoding``) has its connection closed
        after the answer: no handler here reads such a body, and left on the connection it would be parsed as the
        next request (a POST smuggled in a GET's body). A POST's handler judges its own framing."""
        parsed = super().parse_request()
        head: list[bytes] = []
        if isinstance(self.rfile, _HeadReader):
            head, self.rfile.head_lines = (
                self.rfile.head_lines or [],
                None,
            )  # the body and what follows are not kept
        if not parsed:
            return False
        malformed = (
            any(isinstance(defect, _HEADER_LINE_DEFECTS) for defect in self.headers.defects)
            or any("\n" in value or "\r" in value for value in self.headers.values())
            # a CR alone: Python's parser ends a line there, where RFC 9112 (2.2) has a recipient refuse it or read a
            # space, so a proxy's reading of the line and this server's differ (a header only one of them sees)
            or any(b"\r" in line.removesuffix(b"\r\n").removesuffix(b"\n") for line in head)
        )
        if malformed:
            # Python's parser ends the headers at a line it cannot read as one (whitespace before the colon, RFC 9112
            # 5.1, a leading continuation line), folds continuation lines into the header above and splits a line at
            # a bare CR: a Content-Length or Transfer-Encoding so written is seen by one reader and not the other, so
            # the bytes it covers would run as a request, or another request be read as a body
            self.send_error(
                400,
                "malformed header",
                "a header line is not 'Name: value' (whitespace before the colon, a line folded onto the one above, "
                "or a carriage return alone inside it): write each header on one line ending in CRLF, its name "
                "followed by the colon",
            )
            return False
        declared = self.headers.get("Transfer-Encoding") is not None or content_length(self) != 0
        if self.command != "POST" and declared:
            self.close_connection = True
        return True


def content_length(handler: BaseHTTPRequestHandler) -> int | None:
    """The request's ``Content-Length``: 0 when absent, None when it is not a plain decimal number or is given more
    than once.

    A server must refuse None rather than read: ``int()`` takes ``"-1"``, which passes any ``length > limit``
    test, and ``rfile.read(-1)`` then reads until the client closes the connection, however much it sends. Two
    headers make the framing invalid (RFC 9112 6.3): read by one of them (``headers.get`` gives the first), the bytes
    the other covers stay on the connection and run as the next request, a request smuggled past a proxy that
    frames by the other one.
    """
    given = handler.headers.get_all("Content-Length") or []
    if len(given) > 1:
        return None
    raw = given[0] if given else None
    # optional whitespace around a value is spaces and tabs (RFC 9110 5.6.3); str.strip also takes form feeds,
    # vertical tabs and other separators, which a proxy reads as part of the value (an invalid length, or none)
    if raw is None or not raw.strip(" \t"):
        return 0
    raw = raw.strip(" \t")
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (a bound address or a name) is this machine's loopback interface only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def foreign_host(handler: BaseHTTPRequestHandler) -> str | None:
    """The request's ``Host`` when the server listens on loopback only and that Host is none of its own names (else
    None). A web page of another site can reach a server on 127.0.0.1 by DNS rebinding (its name made to resolve
    to 127.0.0.1 after the page loaded): its requests then name that site in ``Host``, which this refuses, as
    clients of the server itself name 127.0.0.1, localhost or [::1] with its port. A server bound to another
    address is reached through the operator's network and names, so any Host is taken."""
    address: Any = handler.server.server_address
    bound, port = address[0], address[1]
    if not _is_loopback(str(bound)):
        return None
    host = (handler.headers.get("Host") or "").strip().lower()
    own = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", str(bound).lower())}
    return None if host in own else host


class NestedTooDeepError(BadInputError):
    """A request body whose JSON nests deeper than the decoder descends (a ValueError, as bad JSON is)."""


def json_body(raw: bytes) -> Any:
    """The JSON value of a request body, in UTF-8; raises ValueError when it is not JSON in UTF-8, including an
    object naming a key twice (:class:`~keyscope.json_objects.DuplicateKeyError`) and JSON nested deeper than Python's recursive decoder
    descends (:class:`NestedTooDeepError`: ``json.loads`` raises RecursionError, no
    ValueError, which a handler catching bad JSON let out as a raw traceback and a dropped connection)."""
    try:
        # UTF-8 only (RFC 8259 8.1): json.loads takes bytes in UTF-16 and UTF-32 too, which a proxy before the
        # server, reading UTF-8, cannot judge; a UnicodeDecodeError is a ValueError, refused as bad JSON
        return json.loads(raw.decode("utf-8"), object_pairs_hook=one_of_each_key)
    except RecursionError:
        raise NestedTooDeepError("the request body's JSON is nested too deeply") from None


def send_body(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Send ``status`` with ``body`` (its type unless None, its length, then ``headers``). A handler that will close
    the connection after this answer (``close_connection``: a body left unread) says so (``Connection: close``), so
    that a client sends its next request on a new connection instead of one the server is closing."""
    handler.send_response(status)
    if content_type is not None:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    if handler.close_connection:
        handler.send_header("Connection", "close")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def send_no_answer(handler: BaseHTTPRequestHandler) -> None:
    """Answer a JSON-RPC body that holds notifications only (:func:`is_notification`), which get no answer: HTTP 204
    No Content, with no body, no type and no length (RFC 9110 forbids a ``Content-Length`` in a 204; an HTTP/1.1
    client knows a 204 has no body, so the connection carries the next request). geth answers such a body with 200
    and an empty body; 204 says the same in its status, which a client can tell without reading a body."""
    handler.send_response(204)
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()


def cannot_listen(host: str, port: int, error: Exception) -> ConfigurationError:
    """The error for a server that could not bind ``host:port`` (taken, not this machine's, or no port at all)."""
    return ConfigurationError(
        f"cannot listen on {host}:{port}: {str(error).rstrip('.')}; give a port from 1 to 65535 that no other "
        "program holds (or 0 for any free one), on an address of this machine"
    )


def internal_error_message(method: str, error: BaseException) -> str:
    """What a JSON-RPC client is told when ``method`` failed inside the service (its -32603 answer): the kind of
    failure, never its text. The text stays in the service's log: it can name the node or the signing service the
    service uses, with a key in the URL that no masking is sure to catch (a short path key, say), and the client may
    be anyone who reaches the service."""
    if isinstance(error, TransportError):
        return (
            f"internal error in {method}: a service it depends on (the node, or the signing service) did not answer; "
            "nothing was signed: ask again"
        )
    return f"internal error in {method}: {type(error).__name__} (the service's log has the details)"


def require_host(host: object) -> str:
    """``host`` as an interface to listen on; :class:`BadInputError` for one that is not text or is blank. A blank
    host binds every interface of the machine, as ``0.0.0.0`` does: an unset variable in ``--host "$HOST"`` would
    have served other machines without a word. Serving them is a deliberate choice: give their interface, or
    ``0.0.0.0``. A value with the form of a private key (a key given where the host goes) is refused without being
    shown: the bind error would quote it."""
    if has_private_key_form(host):
        raise BadInputError(
            f"{PRIVATE_KEY_NOT_SHOWN} is not an interface to listen on: a private key is not given on the command "
            "line or in a host setting; give 127.0.0.1 to serve this machine only, or an interface's address"
        )
    if not isinstance(host, str) or not host.strip():
        raise BadInputError(
            f"host {host!r} names no interface (a blank host listens on every interface of the machine): give "
            "127.0.0.1 to serve this machine only, or 0.0.0.0 (or an interface's address) to serve others on purpose"
        )
    return host


def require_port(port: object) -> int:
    """``port`` as a TCP port number to listen on (0: a free one); :class:`BadInputError` for what is no integer
    (socketserver would raise a TypeError for text, and bind ``True`` as port 1). One out of range is refused when
    the server binds it, with the system's word."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise BadInputError(
            f"port {shown(port)} is not a TCP port: give an int from 1 to 65535 that no other program holds, or 0 "
            "for any free one"
        )
    return port


class BackgroundServer(ABC):
    """Serves on ``host``:``port`` (0: a free port the kernel chooses, known once started) in a background
    thread, at most ``max_connections`` connections at once and ``max_connections_per_address`` from one client
    address (:class:`LocalHTTPServer`; checked here, :class:`BadInputError`). Subclasses build the HTTP server
    with :attr:`connection_options` and name themselves in messages (:attr:`_what`) and the thread
    (:attr:`_thread_name`)."""

    #: "the <what> is not running", "the <what> is already running"
    _what = "server"
    _thread_name = "keyscope-server"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_address: int | None = None,
    ) -> None:
        self.host = require_host(host)
        self.port = require_port(port)
        self.max_connections, self.max_connections_per_address = connection_limits(
            max_connections, max_connections_per_address
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def connection_options(self) -> dict[str, Any]:
        """The connection limits, as :class:`LocalHTTPServer` takes them."""
        return {
            "max_connections": self.max_connections,
            "max_connections_per_address": self.max_connections_per_address,
        }

    @abstractmethod
    def _bind(self) -> ThreadingHTTPServer:
        """The HTTP server, bound to ``(host, port)``."""

    @abstractmethod
    def _started(self) -> None:
        """Called once serving has started (to log where)."""

    def _require_running(self) -> ThreadingHTTPServer:
        if self._server is None:
            raise ConfigurationError(
                f"the {self._what} is not running: call start() or use it in a with block"
            )
        return self._server

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self: _S) -> _S:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            raise ConfigurationError(f"the {self._what} is already running")
        try:
            self._server = self._bind()
        except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
            raise cannot_listen(self.host, self.port, exc) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=self._thread_name,
            daemon=True,
        )
        self._thread.start()
        self._started()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        server, thread = self._server, self._thread
        self._server = None
        self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
