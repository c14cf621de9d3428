"""A web page of another site driving the sponsor service or the co-signer on 127.0.0.1 (a cross-site request
forgery: the page never reads an answer).

Attack 63 keeps such pages off the consent server: its API takes ``Content-Type: application/json`` only, which a
browser sends cross-site only after a CORS preflight the server never grants. Attack 158 keeps them from *reading*
the two JSON-RPC services through DNS rebinding (their ``Host`` check). But a page needs to read nothing to spend:
``fetch("http://127.0.0.1:PORT", {method: "POST", mode: "no-cors", body: JSON.stringify(request)})`` is a "simple"
request (``Content-Type: text/plain;charset=UTF-8``, an ``Origin`` of the page's site, ``Host`` the service's own),
sent without a preflight, so it passes the ``Host`` check. Each such request to the sponsor reserves the operation's
maximum cost from the account's budget and the total for good (until the signature expires, across a restart with a
ledger), for a signature no one holds (what attack 249 fixed for notifications): a page open in a browser on the
operator's machine (the dapp's developer, a staging box) spends the sponsor's whole total budget in a few requests and
the sponsor then refuses every real user. The co-signer likewise signs for the page.

Each service must refuse a body the browser can send cross-site without a preflight (a form encoding, or any
request carrying another site's ``Origin``), as the consent server does, before running it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.hexutil import to_address
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorServer, SponsorshipPolicy
from support.userops import plain_op

CHAIN_ID = 31337
ACCOUNT = to_address("0x" + "ab12cd34ef" * 4)
ALLOWED = "0x" + "33" * 20
PAYMASTER = "0x" + "77" * 20
MODULE = "0x" + "11" * 20
SESSION_ID = "0x" + "44" * 32
DATA = bytes.fromhex("a9059cbb") + bytes(64)

# what a browser sends cross-site without a preflight: the CORS-safelisted request content types, and no
# Content-Type at all (``fetch`` with an ArrayBuffer, a typed array or an untyped Blob as its body sends none)
SIMPLE_CONTENT_TYPES = [
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    None,
]
CROSS_SITE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}


def _rpc(method: str, params: list[Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


def _forged_post(url: str, body: bytes, content_type: str | None) -> httpx.Response:
    """The request a page of another site makes with ``fetch(url, {method: "POST", mode: "no-cors", body})``."""
    headers = dict(CROSS_SITE) if content_type is None else {"Content-Type": content_type, **CROSS_SITE}
    return httpx.post(url, content=body, headers=headers, timeout=10)


@pytest.mark.parametrize("content_type", SIMPLE_CONTENT_TYPES)
def test_a_page_of_another_site_spends_no_sponsorship_budget(content_type: str | None) -> None:
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    cost = required_prefund(op.replace(paymaster=PAYMASTER, paymaster_verification_gas_limit=60_000))
    policy = SponsorshipPolicy(
        accounts="any", targets={ALLOWED: "any"}, budget_wei=cost, total_budget_wei=cost
    )
    sponsor = Sponsor(paymaster=PAYMASTER, signer=LocalSigner.generate(), chain_id=CHAIN_ID, policy=policy)
    with SponsorServer(sponsor) as server:
        body = _rpc("pm_getPaymasterData", [op.to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)])
        forged = _forged_post(server.url, body, content_type)
        reserved = sponsor.ledger.reserved_total()
        # the operator's own client (application/json, no Origin) is then still served within the budget
        honest = httpx.post(
            server.url,
            content=_rpc(
                "pm_getPaymasterData", [op.replace(nonce=4).to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)]
            ),
            headers={"Content-Type": "application/json"},
            timeout=10,
        ).json()
    assert reserved == 0, (
        f"a cross-site {content_type} POST (no preflight) reserved {reserved} wei of the sponsor's total budget for "
        f"a signature no one holds; the answer was {forged.status_code} {forged.text[:300]}"
    )
    assert "result" in honest, honest


@pytest.mark.parametrize("content_type", SIMPLE_CONTENT_TYPES)
def test_a_page_of_another_site_gets_nothing_co_signed(content_type: str | None) -> None:
    signed: list[str] = []

    class Recording(CoSignerService):
        def handle(self, method: str, params: Any) -> dict[str, str]:
            answer = super().handle(method, params)
            signed.append(answer["signature"])
            return answer

    service = Recording(
        LocalSigner.generate(),
        chain_id=CHAIN_ID,
        module=MODULE,
        entry_point=ENTRY_POINT_V07,
        policy=CoSignPolicy(targets=frozenset({ALLOWED})),
    )
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    with CoSignerServer(service) as server:
        body = _rpc("keyscope_coSignUserOperation", [ACCOUNT, SESSION_ID, op.to_rpc()])
        forged = _forged_post(server.url, body, content_type)
    assert not signed, (
        f"a cross-site {content_type} POST (no preflight) had the co-signer sign; the answer was "
        f"{forged.status_code} {forged.text[:200]}"
    )
