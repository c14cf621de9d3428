"""An HTTP JSON-RPC relay in front of a real bundler that passes every request on and, where a test says so,
answers in the bundler's place or changes the bundler's answer: a bundler that makes up receipts, say."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

__all__ = ["Answer", "Change", "Relay", "made_up_receipt"]

Answer = Callable[[dict[str, Any]], Any]
"""Given a JSON-RPC request, the ``result`` to answer in the bundler's place."""
Change = Callable[[Any], Any]
"""Given the bundler's ``result``, the ``result`` to answer instead."""


class Relay:
    """An HTTP JSON-RPC relay on 127.0.0.1 in front of ``upstream``: each request is passed on unless an answer
    is set for its method; a change set for the method rewrites the upstream's result."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.answers: dict[str, Answer] = {}
        self.changes: dict[str, Change] = {}
        self._client = httpx.Client(timeout=30.0)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                reply = [relay.handle(one) for one in body] if isinstance(body, list) else relay.handle(body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request.get("method", "")
        if method in self.answers:
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": self.answers[method](request)}
        response: dict[str, Any] = self._client.post(self.upstream, json=request).json()
        if method in self.changes and response.get("result") is not None:
            response["result"] = self.changes[method](response["result"])
        return response

    def honest(self) -> None:
        self.answers.clear()
        self.changes.clear()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._client.close()


def made_up_receipt(
    user_op_hash: bytes, sender: str, nonce: int, tx_hash: bytes, block: int, *, entry_point: str
) -> dict[str, Any]:
    """A whole successful receipt of ``user_op_hash`` (of ``sender`` with ``nonce``, sent to ``entry_point``) in
    transaction ``tx_hash`` of ``block``, as a bundler may make one up."""
    tx = "0x" + tx_hash.hex()
    return {
        "userOpHash": "0x" + user_op_hash.hex(),
        "entryPoint": entry_point,
        "sender": sender,
        "nonce": hex(nonce),
        "actualGasCost": hex(10**15),
        "actualGasUsed": hex(150_000),
        "success": True,
        "logs": [],
        "receipt": {"transactionHash": tx, "blockNumber": hex(block), "status": "0x1", "logs": []},
        "transactionHash": tx,
        "blockNumber": hex(block),
    }
