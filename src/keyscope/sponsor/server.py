"""The sponsor's JSON-RPC 2.0 server over HTTP: bound to 127.0.0.1, a free port by default, one thread per
connection (at most :data:`~keyscope.http_service.MAX_CONNECTIONS` at once unless given another limit), stopped by
:meth:`SponsorServer.stop` (or the end of a ``with`` block). Requests are read and answered as every keyscope
JSON-RPC service does (:mod:`keyscope.json_rpc_service`).

It answers ``POST`` requests at any path, single or batched (at most :data:`~keyscope.http_service.MAX_BATCH`
requests a batch); every refusal is a JSON-RPC error object (see :mod:`keyscope.sponsor.errors`) in an HTTP 200
response, as JSON-RPC over HTTP does. A notification (a request without an ``id`` member) is neither run nor
answered (:func:`~keyscope.http_service.is_notification`): nothing is signed or reserved for it, and a body of
notifications only is answered 204 No Content.
"""

from __future__ import annotations

import logging
from typing import Any

from ..http_service import (
    MAX_CONNECTIONS,
    BackgroundServer,
    JsonRpcHTTPServer,
)
from ..json_rpc_service import JsonRpcRequestHandler, rpc_answer
from .errors import SponsorshipRefused
from .service import Sponsor

__all__ = ["SponsorServer"]

log = logging.getLogger("keyscope.sponsor")

MAX_BODY = 1 << 20


def answer(sponsor: Sponsor, request: Any) -> dict[str, Any] | None:
    """The JSON-RPC response to one request object; None for a notification, which is neither run nor answered."""
    return rpc_answer(
        request,
        sponsor,
        refused=SponsorshipRefused,
        log=log,
        not_done="not run (nothing signed or reserved)",
    )


class _Handler(JsonRpcRequestHandler):
    server: _Server
    logger = log
    max_body = MAX_BODY

    def answer(self, request: Any) -> dict[str, Any] | None:
        return answer(self.server.sponsor, request)


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
