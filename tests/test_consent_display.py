"""What the owner reads on the consent page against what the wallet signs and the module enforces, attacked by a
dapp that writes the request and the token contracts it names. Each test drives the real consent server over
HTTP (ape's py-evm chain): the description the page renders (GET /api/consent/ID) and the typed data the wallet
is handed to sign (POST .../connect)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from keyscope.consent import ConsentServer
from keyscope.owner import DEFAULT_MAX_GAS_COST
from keyscope.signing import LocalSigner

KEY = LocalSigner.generate().address


def _params(chain_id: int, permission: dict[str, Any], *, expiry: int = 2_000_000_000, **extra: Any) -> list[Any]:
    return [
        {
            "chainId": hex(chain_id),
            "expiry": expiry,
            "signer": {"type": "key", "data": {"id": KEY}},
            "permission": permission,
            "policies": extra.pop("policies", []),
            **extra,
        }
    ]


def _shown(server: ConsentServer, consent_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/consent/{consent_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["description"]  # type: ignore[no-any-return]


def _signed(server: ConsentServer, consent_id: str, wallet: str, chain_id: int) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.url}/api/consent/{consent_id}/connect", json={"address": wallet, "chainId": chain_id}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["typedData"]  # type: ignore[no-any-return]


def test_an_erc7715_session_without_a_gas_policy_is_signed_with_the_cap_the_page_shows(net, nft) -> None:
    """A server set to cap sessions at 0.001 ETH per operation described ERC-7715 requests with that cap, and then
    had the wallet sign the SDK's default (0.05 ETH, fifty times more) once it connected."""
    cap = 10**15
    params = _params(
        net.chain_id,
        {"type": "contract-call", "data": {"address": nft.address, "function": "safeMint(address to)"}},
    )
    wallet = LocalSigner.generate().address
    with ConsentServer(net, max_gas_cost=cap) as server:
        consent = server.request_permissions(params)
        shown = _shown(server, consent.id)
        assert shown["gas"].startswith("One operation may cost at most 0.001 ETH in gas")
        typed = _signed(server, consent.id, wallet, net.chain_id)
    signed = int(typed["message"]["maxGasCost"])
    assert signed == cap != DEFAULT_MAX_GAS_COST
    assert consent.grant_request is not None and consent.grant_request.session.max_gas_cost == cap
