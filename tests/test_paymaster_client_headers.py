"""``PaymasterClient(headers=...)``: a paymaster service that takes its API key in a header is reachable, as a
bundler is through ``BundlerClient(headers=...)``. The service here is keyscope's own sponsor over real HTTP, behind
a front that refuses every request without the key."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.errors import TransportError
from keyscope.execution import Call, encode_execute
from keyscope.http_service import (
    BackgroundServer,
    LocalHTTPServer,
    LocalRequestHandler,
    content_length,
    send_body,
)
from keyscope.paymaster import PaymasterClient
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorshipPolicy
from keyscope.sponsor.server import answer
from keyscope.userop import UserOperation

API_KEY = "k-3f9a1c"
CHAIN_ID = 31337
PAYMASTER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TARGET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


class _KeyedHandler(LocalRequestHandler):
    """The sponsor's JSON-RPC answers, for requests that carry ``x-api-key: API_KEY`` only (401 otherwise)."""

    server: _KeyedServer

    def do_POST(self) -> None:
        length = content_length(self)
        body = self.rfile.read(length or 0)
        if self.headers.get("x-api-key") != API_KEY:
            send_body(self, 401, b'{"error": "missing or wrong x-api-key"}', "application/json")
            return
        response = answer(self.server.sponsor, json.loads(body))
        send_body(self, 200, json.dumps(response).encode(), "application/json")


class _KeyedServer(LocalHTTPServer):
    def __init__(self, address: tuple[str, int], sponsor: Sponsor) -> None:
        self.sponsor = sponsor
        super().__init__(address, _KeyedHandler)


class _KeyedSponsorServer(BackgroundServer):
    _what = "keyed sponsor server"
    _thread_name = "keyed-sponsor"

    def __init__(self, sponsor: Sponsor) -> None:
        super().__init__("127.0.0.1", 0)
        self.sponsor = sponsor

    def _bind(self) -> _KeyedServer:
        return _KeyedServer((self.host, self.port), self.sponsor)

    def _started(self) -> None:
        pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def keyed_url() -> Iterator[str]:
    sponsor = Sponsor(
        paymaster=PAYMASTER,
        signer=LocalSigner.generate(),
        chain_id=CHAIN_ID,
        policy=SponsorshipPolicy(targets="any", total_budget_wei=10**18),
        clock=lambda: 1_700_000_000,
    )
    with _KeyedSponsorServer(sponsor) as server:
        yield server.url


def _operation() -> UserOperation:
    return UserOperation(sender=ACCOUNT, nonce=0, call_data=encode_execute(Call(TARGET, 0, b"")))


def test_the_header_given_reaches_the_service(keyed_url: str) -> None:
    client = PaymasterClient(keyed_url, headers={"x-api-key": API_KEY})
    try:
        fields = client.stub_data(_operation(), ENTRY_POINT_V07, CHAIN_ID)
    finally:
        client.close()
    assert fields.paymaster == PAYMASTER
    assert len(fields.paymasterData) > 12  # validUntil, validAfter and the stub signature


def test_without_the_header_the_service_refuses(keyed_url: str) -> None:
    client = PaymasterClient(keyed_url)
    try:
        with pytest.raises(TransportError, match="401"):
            client.stub_data(_operation(), ENTRY_POINT_V07, CHAIN_ID)
    finally:
        client.close()
