"""The sponsor's JSON-RPC 2.0 server over HTTP: bound to 127.0.0.1, a free port by default, one thread per
connection (at most :data:`~keyscope.http_service.MAX_CONNECTIONS` at once unless given another limit), stopped by :meth:`SponsorServer.stop` (or the end of a ``with`` block).

It answers ``POST`` requests at any path, single or batched (at most :data:`~keyscope.http_service.MAX_BATCH`
requests a batch); every refusal is a JSON-RPC error object (see :mod:`keyscope.sponsor.errors`) in an HTTP 200
response, as JSON-RPC over HTTP does. A notification (a request without an ``id`` member) is neither run nor
answered (:func:`~keyscope.http_service.is_notification`): nothing is signed or reserved for it, and a body of
notifications only is answered 204 No Content.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import shown
from ..http_service import (
    MAX_CONNECTIONS,
    BackgroundServer,
    JsonRpcHTTPServer,
    LocalRequestHandler,
    NestedTooDeepError,
    answer_id,
    batch_refusal,
    content_length,
    foreign_host,
    internal_error_message,
    is_notification,
    json_answer,
    json_body,
    request_problem,
    send_body,
    send_no_answer,
)
from .errors import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, SponsorshipRefused
from .service import Sponsor

__all__ = ["SponsorServer"]

log = logging.getLogger("keyscope.sponsor")

MAX_BODY = 1 << 20


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def answer(sponsor: Sponsor, request: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to one request object; None for a notification, which is neither run nor answered."""
    problem = request_problem(request)
    if problem is not None:
        return _error(answer_id(request), INVALID_REQUEST, problem)
    request_id = request.get("id")
    method = request["method"]
    if is_notification(request):
        log.info(
            "%s sent as a notification (no id): not run (nothing signed or reserved), as no answer goes back",
            shown(method),
        )
        return None
    try:
        result = sponsor.handle(method, request.get("params", []))
    except SponsorshipRefused as refusal:
        log.info("%s refused: %s", shown(method), refusal.message)
        return {"jsonrpc": "2.0", "id": request_id, "error": refusal.to_rpc()}
    except Exception as exc:
        log.exception("%s failed", method)
        return _error(request_id, INTERNAL_ERROR, internal_error_message(method, exc))
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class _Handler(LocalRequestHandler):
    server: _Server
    logger = log

    def do_POST(self) -> None:
        length = content_length(self)
        host = foreign_host(self)
        if host is not None or length is None or length > MAX_BODY:
            # the body is left unread: the connection cannot carry another request
            self.close_connection = True
            if host is not None:
                message = f"unknown Host {host!r}: this server answers requests to its own address only"
                self._send(421, _error(None, INVALID_REQUEST, message))
            elif length is None:
                self._send(
                    400, _error(None, INVALID_REQUEST, "Content-Length must be a decimal number of bytes")
                )
            else:
                self._send(413, _error(None, INVALID_REQUEST, f"request body over {MAX_BODY} bytes"))
            return
        body = self.rfile.read(length)
        try:
            request = json_body(body)
        except ValueError as error:
            message = str(error) if isinstance(error, NestedTooDeepError) else "the request body is not JSON"
            self._send(200, _error(None, PARSE_ERROR, message))
            return
        sponsor = self.server.sponsor
        if isinstance(request, list):
            refusal = batch_refusal(request)
            if refusal is not None:
                self._send(200, {"jsonrpc": "2.0", "id": None, "error": refusal})
                return
            responses = [r for r in (answer(sponsor, item) for item in request) if r is not None]
            self._send(200, responses or None)  # notifications only: no array at all, not an empty one
            return
        self._send(200, answer(sponsor, request))

    def do_GET(self) -> None:
        self._send(405, _error(None, INVALID_REQUEST, "send JSON-RPC requests with POST"))

    def _send(self, status: int, payload: Any) -> None:
        """Send ``payload`` as JSON; None (no answer: notifications only) as 204 No Content."""
        if payload is None:
            send_no_answer(self)
        else:
            send_body(self, status, json_answer(payload), "application/json")


class _Server(JsonRpcHTTPServer):
    def __init__(self, address: tuple[str, int], sponsor: Sponsor, **limits: Any) -> None:
        self.sponsor = sponsor
        super().__init__(address, _Handler, **limits)


class SponsorServer(BackgroundServer):
    """Serves a :class:`~keyscope.sponsor.service.Sponsor` over HTTP.

    ``host`` defaults to 127.0.0.1 (serving other machines is a deliberate choice: pass their interface),
    ``port`` to a free one chosen by the kernel. ``url`` is known once started. It serves at most
    ``max_connections`` connections at once, ``max_connections_per_address`` of them from one client address
    (default: all of them on a loopback address, a quarter on another; behind a proxy on another machine give
    ``max_connections``, and let the proxy bound each client); one past a limit is answered 503 at once
    (:class:`~keyscope.http_service.LocalHTTPServer`).
    """

    def __init__(
        self,
        sponsor: Sponsor,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_address: int | None = None,
    ) -> None:
        super().__init__(
            host,
            port,
            max_connections=max_connections,
            max_connections_per_address=max_connections_per_address,
        )
        self.sponsor = sponsor

    _what = "sponsor server"
    _thread_name = "keyscope-sponsor"

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host, port = self._require_running().server_address[:2]
        return f"http://{host!s}:{port}"

    def _bind(self) -> _Server:
        return _Server((self.host, self.port), self.sponsor, **self.connection_options)

    def _started(self) -> None:
        log.info("sponsor for paymaster %s serving at %s", self.sponsor.paymaster, self.url)

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another one (or KeyboardInterrupt)."""
        if self._server is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"SponsorServer({where})"
