"""The co-signer service over HTTP: JSON-RPC 2.0, bound to 127.0.0.1 on a free port by default, one thread per
connection (at most :data:`~keyscope.http_service.MAX_CONNECTIONS` at once unless given another limit), single or
batched (at most :data:`~keyscope.http_service.MAX_BATCH` requests a batch); every refusal is a JSON-RPC error
object (:class:`~keyscope.cosigner.service.CoSignRefused`). A notification (a request without an ``id`` member) is
neither run nor answered (:func:`~keyscope.http_service.is_notification`): nothing is signed for it, and a body
of notifications only is answered 204 No Content."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError
from ..http_service import (
    MAX_CONNECTIONS,
    JsonRpcHTTPServer,
    cannot_listen,
    connection_limits,
    require_host,
)
from ..json_rpc_service import JsonRpcRequestHandler, rpc_answer
from .service import CoSignerService, CoSignRefused

__all__ = ["CoSignerServer"]

log = logging.getLogger("keyscope.cosigner")
MAX_BODY = 1 << 20


def answer(service: CoSignerService, request: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to one request object; None for a notification, which is neither run nor answered."""
    return rpc_answer(request, service, refused=CoSignRefused, log=log, not_done="not co-signed")


class _Handler(JsonRpcRequestHandler):
    server: _Server
    logger = log
    max_body = MAX_BODY

    def answer(self, request: Any) -> dict[str, Any] | None:
        return answer(self.server.service, request)


class _Server(JsonRpcHTTPServer):
    def __init__(self, address: tuple[str, int], service: CoSignerService, **limits: Any) -> None:
        self.service = service
        super().__init__(address, _Handler, **limits)


class CoSignerServer:
    """Serves a :class:`CoSignerService`; ``url`` is known once started (``with CoSignerServer(service) as s``).

    It serves at most ``max_connections`` connections at once, ``max_connections_per_address`` of them from one
    client address (default: all of them on a loopback address, a quarter on another; behind a proxy on another
    machine give ``max_connections``, and let the proxy bound each client); one past a limit is answered 503 at
    once (:class:`~keyscope.http_service.LocalHTTPServer`)."""

    def __init__(
        self,
        service: CoSignerService,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_address: int | None = None,
    ) -> None:
        self.service = service
        self.host = require_host(host)
        self.port = port
        self.max_connections, self.max_connections_per_address = connection_limits(
            max_connections, max_connections_per_address
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise ConfigurationError(
                "the co-signer server is not running: call start() or use it in a with block"
            )
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CoSignerServer:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            raise ConfigurationError("the co-signer server is already running")
        try:
            self._server = _Server(
                (self.host, self.port),
                self.service,
                max_connections=self.max_connections,
                max_connections_per_address=self.max_connections_per_address,
            )
        except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
            raise cannot_listen(self.host, self.port, exc) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="keyscope-cosigner",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> CoSignerServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
