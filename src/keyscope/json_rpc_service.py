"""The JSON-RPC side of keyscope's HTTP services (the paymaster sponsor, the co-signer), written once.

:func:`rpc_answer` answers one request object: an invalid one with ``-32600``, a notification (no ``id`` member)
with nothing and without running it, a refusal with its own error object, a failure with ``-32603`` naming its
kind only (:func:`~keyscope.http_service.internal_error_message`). :class:`JsonRpcRequestHandler` reads a POST
body of ``Content-Type: application/json`` (the only type a page of another site cannot post without a CORS preflight,
which is never granted) within ``max_body`` bytes from the server's own Host, and answers one request or a batch
(:func:`~keyscope.http_service.batch_refusal` bounds it); a body of notifications only gets ``204``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

from .errors import shown
from .http_service import (
    INVALID_REQUEST,
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
from .json_objects import DuplicateKeyError

__all__ = [
    "INTERNAL_ERROR",
    "PARSE_ERROR",
    "JsonRpcRequestHandler",
    "Refusal",
    "Service",
    "rpc_answer",
    "rpc_error",
]

PARSE_ERROR = -32700
"""JSON-RPC 2.0's code for a body that is not JSON."""

INTERNAL_ERROR = -32603
"""JSON-RPC 2.0's code for a request the service failed to run."""


class Service(Protocol):
    """A JSON-RPC service: ``handle(method, params)`` runs one request and gives its result."""

    def handle(self, method: str, params: Any) -> Any: ...


class Refusal(Protocol):
    """A service's refusal of a request: its ``message`` for the log, and its JSON-RPC ``error`` object."""

    message: str

    def to_rpc(self) -> dict[str, Any]: ...


def rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC 2.0 error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def rpc_answer(
    request: Any,
    service: Service,
    *,
    refused: type[Exception],
    log: logging.Logger,
    not_done: str,
) -> dict[str, Any] | None:
    """The JSON-RPC response to one request object, ``service.handle(method, params)`` giving its result; a ``refused``
    exception (a :class:`Refusal`) is answered with its own error object. None for a notification, which is neither
    run nor answered (``not_done`` says in the log what was not done for it)."""
    problem = request_problem(request)
    if problem is not None:
        return rpc_error(answer_id(request), INVALID_REQUEST, problem)
    request_id, method = request.get("id"), request["method"]
    if is_notification(request):
        log.info("%s sent as a notification (no id): %s, as no answer goes back", shown(method), not_done)
        return None
    try:
        result = service.handle(method, request.get("params", []))
    except refused as exc:
        refusal = cast(Refusal, exc)
        log.info("%s refused: %s", shown(method), refusal.message)
        return {"jsonrpc": "2.0", "id": request_id, "error": refusal.to_rpc()}
    except Exception as exc:
        log.exception("%s failed", method)
        return rpc_error(request_id, INTERNAL_ERROR, internal_error_message(method, exc))
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class JsonRpcRequestHandler(LocalRequestHandler):
    """Reads a JSON-RPC POST body of at most :attr:`max_body` bytes sent to the server's own address and answers it
    with :meth:`answer`, a request or a batch; anything else is refused with a JSON-RPC error object."""

    max_body = 1 << 20
    """The largest body read, in bytes; a larger one is refused (413) unread."""

    def answer(self, request: Any) -> dict[str, Any] | None:
        """The response to one request object (None: a notification, not answered)."""
        raise NotImplementedError

    def do_POST(self) -> None:
        length = content_length(self)
        host = foreign_host(self)
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        # a browser posts cross-site without a CORS preflight only a form encoding, text/plain or a body with no type
        # at all (an ArrayBuffer); JSON needs the preflight, which this server never grants (no OPTIONS): a page of
        # another site cannot drive it blind
        cross_site = media != "application/json"
        chunked = self.headers.get("Transfer-Encoding") is not None
        if chunked:
            # a body framed otherwise than by Content-Length is not read here: left on the connection, its bytes were
            # parsed as the next request (a second request smuggled in a chunk, past a proxy framing by the chunks)
            length = None
        if host is not None or length is None or cross_site or length > self.max_body:
            # the body is left unread: the connection cannot carry another request
            self.close_connection = True
            status, message = (
                (421, f"unknown Host {host!r}: this server answers requests to its own address only")
                if host is not None
                else (501, "Transfer-Encoding is not supported: send the body with a Content-Length")
                if chunked
                else (400, "Content-Length must be a decimal number of bytes, given once")
                if length is None
                else (415, "send JSON-RPC as JSON (Content-Type: application/json)")
                if cross_site
                else (413, f"request body over {self.max_body} bytes")
            )
            self._send(status, rpc_error(None, INVALID_REQUEST, message))
            return
        try:
            request = json_body(self.rfile.read(length))
        except ValueError as error:
            message = (
                str(error)
                if isinstance(error, (NestedTooDeepError, DuplicateKeyError))
                else "the request body is not JSON"
            )
            self._send(200, rpc_error(None, PARSE_ERROR, message))
            return
        if not isinstance(request, list):
            self._send(200, self.answer(request))
            return
        refusal = batch_refusal(request)
        if refusal is not None:
            self._send(200, {"jsonrpc": "2.0", "id": None, "error": refusal})
            return
        answers = [a for a in (self.answer(item) for item in request) if a is not None]
        self._send(200, answers or None)  # notifications only: no array at all, not an empty one

    def do_GET(self) -> None:
        self._send(405, rpc_error(None, INVALID_REQUEST, "send JSON-RPC requests with POST"))

    def _send(self, status: int, payload: Any) -> None:
        """Send ``payload`` as JSON; None (no answer: notifications only) as 204 No Content."""
        if payload is None:
            send_no_answer(self)
        else:
            send_body(self, status, json_answer(payload), "application/json")
