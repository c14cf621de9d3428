"""Endpoints over https: every JSON-RPC client (node, bundler, paymaster service) checks the server's certificate.

The clients share one certificate-checking context, built once per ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` setting
(building one reads the whole CA bundle). These tests run a real TLS server on 127.0.0.1 with a self-signed
certificate (``tests/support/tls``): a client refuses it, and takes it once ``SSL_CERT_FILE`` names that certificate,
which shows the setting is read, not frozen by the first client."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscope import rpc
from keyscope.errors import TransportError
from keyscope.rpc import JsonRpcClient

TLS = Path(__file__).parent / "support" / "tls"


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        asked = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": asked["id"], "result": "0x7a69"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


CERTIFICATE = (TLS / "cert.pem", TLS / "key.pem")
"""A self-signed certificate for 127.0.0.1 (valid until 2126, made with ``openssl req -x509``) and its key: test
material only, which no authority vouches for."""


@pytest.fixture
def certificate() -> tuple[Path, Path]:
    return CERTIFICATE


@pytest.fixture
def https_url(certificate: tuple[Path, Path]) -> Iterator[str]:
    cert, key = certificate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_certificate_nobody_vouches_for_is_refused_by_every_client(
    https_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for _ in range(2):  # the second client reuses the first one's context, which checks as much
        with JsonRpcClient(https_url, timeout=10.0) as client, pytest.raises(TransportError) as refused:
            client.request("eth_chainId")
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value), refused.value
        assert f"cannot reach {https_url} for eth_chainId" in str(refused.value)


def test_clients_of_one_certificate_setting_share_one_tls_context(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Building a TLS context reads the whole CA bundle (about 20 ms of CPU) and ``connect`` makes several clients:
    clients of the same ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` build it once between them."""
    built: list[int] = []
    real = rpc.httpx.create_ssl_context

    def counting() -> ssl.SSLContext:
        built.append(1)
        return real()

    monkeypatch.setattr(rpc.httpx, "create_ssl_context", counting)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    roots = tmp_path / "roots.pem"  # a setting no earlier client used
    roots.write_bytes(certificate[0].read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(roots))
    for _ in range(3):
        JsonRpcClient("https://127.0.0.1:1", timeout=1.0).close()
    assert len(built) == 1


def test_a_certificate_named_by_ssl_cert_file_is_taken(
    https_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with JsonRpcClient(https_url, timeout=10.0) as client, pytest.raises(TransportError):
        client.request("eth_chainId")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with JsonRpcClient(https_url, timeout=10.0) as client:
        assert client.request("eth_chainId") == "0x7a69"
    monkeypatch.delenv("SSL_CERT_FILE")
    with JsonRpcClient(https_url, timeout=10.0) as client, pytest.raises(TransportError):
        client.request("eth_chainId")


def test_an_https_url_for_a_service_speaking_plain_http_says_to_write_http() -> None:
    """docs/sponsorship.md writes ``paymaster="https://…"``; given the local sponsor service's address that way,
    the client said only ``ConnectError: [SSL: WRONG_VERSION_NUMBER] wrong version number``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        with JsonRpcClient(url, timeout=10.0) as client, pytest.raises(TransportError) as refused:
            client.request("pm_getPaymasterStubData")
    finally:
        server.shutdown()
        server.server_close()
    said = str(refused.value)
    assert f"cannot reach {url} for pm_getPaymasterStubData" in said
    assert "plain HTTP" in said and "http://" in said and "WRONG_VERSION_NUMBER" not in said, said
