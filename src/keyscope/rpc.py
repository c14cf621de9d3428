"""A small JSON-RPC 2.0 client over HTTP, shared by the bundler client, the paymaster client and the node.

Every failure becomes a keyscope error: :class:`~keyscope.errors.TransportError` when the endpoint cannot
be reached, times out, or answers something that is not JSON-RPC; :class:`JsonRpcError` (carrying the
code, message and data) when it answers a JSON-RPC error.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import KeyscopeError, TransportError, endpoint_text
from .urls import mask_url, masked_text

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "METHOD_NOT_FOUND", "JsonRpcClient", "JsonRpcError"]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""The largest answer body a :class:`JsonRpcClient` reads (64 MiB) unless told otherwise: an endpoint's answer
past it is a :class:`~keyscope.errors.TransportError`, not read into memory."""

METHOD_NOT_FOUND = -32601
"""JSON-RPC's code for a method the endpoint does not serve (a node asked a bundler's method, or the reverse)."""
INVALID_PARAMS = -32602
"""JSON-RPC's code for parameters the method does not take (Alto's answer to a method it does not know)."""


class JsonRpcError(KeyscopeError):
    """The endpoint answered a JSON-RPC error object."""

    def __init__(
        self, method: str, code: int, message: str, data: Any = None, url: str | None = None
    ) -> None:
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data
        self.url = url
        if code == METHOD_NOT_FOUND:
            shown = message if len(message) <= 120 else message[:120] + "…"
            where = url or "the endpoint"
            super().__init__(
                f"{where} does not serve {method} (JSON-RPC error {code}: {shown}): check that the URL is the right "
                "endpoint (a node's JSON-RPC URL where a node is asked for, a bundler's where a bundler is)"
            )
            return
        super().__init__(f"{method} failed with JSON-RPC error {code}: {endpoint_text(message)}")


@dataclass(frozen=True)
class _Answer:
    """An endpoint's HTTP answer, read whole."""

    status_code: int
    text: str


def _plain_http_answered_tls(exc: BaseException) -> bool:
    """Whether ``exc`` is a TLS handshake that met a server speaking plain HTTP (an https URL for an http service)."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # a chain may loop back on itself
        visited.add(id(seen))
        if isinstance(seen, ssl.SSLError) and seen.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"):
            return True
        if "WRONG_VERSION_NUMBER" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@functools.cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's own certificate check (certifi's roots, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), built once
    per setting and shared by every client: building it reads the whole CA bundle, about 20 ms of CPU that each
    client paid again (``connect`` makes several)."""
    return httpx.create_ssl_context()


def _local_stack_hint(service: str, url: str) -> str:
    """Where a node or a bundler on this machine is not running: the command that starts both (the README's
    examples use the URLs it serves)."""
    if service not in ("node", "bundler"):
        return ""
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return " (on this machine, `python -m keyscope.local` runs a node and a bundler)" if local else ""


class JsonRpcClient:
    """Blocking JSON-RPC over HTTP(S) with a connection pool; safe to share between threads.

    ``timeout`` bounds each request in seconds: connecting, each read, and the whole answer (an endpoint
    sending its answer a byte at a time does not hold a request longer). An answer body of more than
    ``max_response_bytes`` is refused as it arrives. Requests go to ``url`` as given (an API key in its query
    string or path included); messages and errors show it as :attr:`shown_url`, the key masked. ``service``
    names what answers there (``"node"``, ``"bundler"``) when it cannot be reached.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        service: str = "service",
    ) -> None:
        # as the commands read an option: spaces around a pasted URL, and a scheme in capitals (HTTP://), are no
        # other endpoint; refused, they were said as "'http://...' is not an http(s) URL", the URL shown normalised
        url = url.strip()
        if not re.match(r"https?://", url, re.IGNORECASE):
            raise TransportError(
                f"{mask_url(url)!r} is not an http(s) URL: give the endpoint as http://host:port",
                url=mask_url(url),
            )
        try:
            httpx.URL(url)
            urlsplit(url).port  # noqa: B018  (a port past 65535 raises)
        except (httpx.InvalidURL, ValueError) as exc:
            raise TransportError(
                f"{mask_url(url)!r} is not a valid URL ({masked_text(str(exc), url)}): give the endpoint as "
                "http://host:port",
                url=mask_url(url),
            ) from None
        self.url = url
        self.shown_url = mask_url(url)
        self.service = service
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Content-Type": "application/json", **(headers or {})},
            verify=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> JsonRpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, what: str, payload: Any, timeout: float | None) -> _Answer:
        if self._http.is_closed:
            raise TransportError(
                f"the connection to {self.shown_url} was closed (close(), or the end of a with block) before "
                f"{what}: connect again to send more",
                url=self.shown_url,
            )
        limit = timeout or self.timeout
        deadline = time.monotonic() + limit
        try:
            with self._http.stream("POST", self.url, content=json.dumps(payload), timeout=limit) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        raise TransportError(
                            f"{self.shown_url} answered {what} with more than {self.max_response_bytes} bytes: "
                            "check that the URL is the right endpoint, or raise the client's max_response_bytes "
                            "for an answer that large",
                            url=self.shown_url,
                            method=what,
                        )
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the whole answer took longer than the timeout")
                charset = response.charset_encoding or "utf-8"
                return _Answer(response.status_code, body.decode(charset, errors="replace"))
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"{what} to {self.shown_url} timed out after {limit:.1f}s: is the endpoint overloaded "
                "or stuck? Retry, or raise the timeout",
                url=self.shown_url,
                method=what,
            ) from exc
        except httpx.HTTPError as exc:
            if _plain_http_answered_tls(exc):
                raise TransportError(
                    f"cannot reach {self.shown_url} for {what}: it answers plain HTTP, not TLS; give its URL "
                    "with http:// instead of https://",
                    url=self.shown_url,
                    method=what,
                ) from exc
            raise TransportError(
                f"cannot reach {self.shown_url} for {what} ({type(exc).__name__}: "
                f"{masked_text(str(exc), self.url)}): check the URL and that the {self.service} is running"
                f"{_local_stack_hint(self.service, self.url)}",
                url=self.shown_url,
                method=what,
            ) from exc
        except LookupError:  # a charset Python does not know
            raise TransportError(
                f"{self.shown_url} answered {what} in an unknown character set: check that the URL is the "
                "JSON-RPC endpoint",
                url=self.shown_url,
                method=what,
            ) from None

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def request(self, method: str, params: list[Any] | None = None, *, timeout: float | None = None) -> Any:
        """Call ``method`` and return its ``result``."""
        payload = {"jsonrpc": "2.0", "id": self._next_id(), "method": method, "params": params or []}
        response = self._post(method, payload, timeout)
        return self._result(method, self._json(method, response), response.status_code)

    def batch(
        self, calls: Sequence[tuple[str, list[Any]]], *, timeout: float | None = None, settled: bool = False
    ) -> list[Any]:
        """Send several calls in one JSON-RPC batch (one HTTP round trip); their results, in order.

        The first call that failed raises its :class:`JsonRpcError`; with ``settled``, each failed call's
        :class:`JsonRpcError` takes its place among the results instead (the caller judges each).
        """
        if not calls:
            return []
        ids = [self._next_id() for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            for request_id, (method, params) in zip(ids, calls, strict=True)
        ]
        what = "batch of " + ", ".join(method for method, _ in calls)
        response = self._post(what, payload, timeout)
        body = self._json(what, response)
        if not isinstance(body, list):
            # a node that does not take batches answers one error object for the whole request
            return [self._result(what, body, response.status_code)]
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        results = []
        for request_id, (method, _) in zip(ids, calls, strict=True):
            if request_id not in by_id:
                raise TransportError(
                    f"{self.shown_url} left {method} out of its answer to a JSON-RPC batch",
                    url=self.shown_url,
                    method=method,
                )
            try:
                results.append(self._result(method, by_id[request_id], response.status_code))
            except JsonRpcError as error:
                if not settled:
                    raise
                results.append(error)
        return results

    def _json(self, method: str, response: _Answer) -> Any:
        text = response.text
        try:
            return json.loads(text)
        except ValueError:
            snippet = text[:200] + ("…" if len(text) > 200 else "")
            raise TransportError(
                f"{self.shown_url} answered {method} with HTTP {response.status_code} and a body that is not JSON: "
                f"{snippet!r}; check that the URL (its host, port and path) is the JSON-RPC endpoint",
                url=self.shown_url,
                method=method,
            ) from None

    def _result(self, method: str, body: Any, status: int) -> Any:
        if (
            not isinstance(body, dict)
            or body.get("jsonrpc") != "2.0"
            or ("result" not in body and "error" not in body)
        ):
            raise TransportError(
                f"{self.shown_url} answered {method} with HTTP {status} and JSON that is not a JSON-RPC "
                f"response: {str(body)[:200]!r}",
                url=self.shown_url,
                method=method,
            )
        error = body.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise TransportError(
                    f"{self.shown_url} answered {method} with a malformed error: {error!r}",
                    url=self.shown_url,
                    method=method,
                )
            raise JsonRpcError(
                method,
                int(error.get("code", 0)),
                str(error.get("message", "")),
                error.get("data"),
                url=self.shown_url,
            )
        return body["result"]
