"""The owner's signature posted back to the consent server (POST /api/consent/ID/signature), over HTTP on ape's
py-evm chain: the server finishes a consent request only with the connected wallet's signature of that request's
own typed data. A page of the dapp (or anyone holding a request's id) posting another grant's signature, another
key's, one for another chain's typed data, or the right one twice gets nothing granted and nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import ETHER
from keyscope import Policy, SessionKey, arg, function_call
from keyscope.consent import ConsentServer
from keyscope.owner import GrantRequest
from keyscope.signing import LocalSigner
from keyscope.store import open_store

SESSION_KEY = LocalSigner.generate().address


def _params(chain_id: int, nft: str) -> list[Any]:
    return [
        {
            "chainId": hex(chain_id),
            "expiry": 2_000_000_000,
            "signer": {"type": "key", "data": {"id": SESSION_KEY}},
            "permission": {
                "type": "contract-call",
                "data": {"address": nft, "function": "safeMint(address to)"},
            },
            "policies": [],
        }
    ]


def _connect(url: str, consent_id: str, wallet: str, chain_id: int) -> dict[str, Any]:
    answer = httpx.post(
        f"{url}/api/consent/{consent_id}/connect", json={"address": wallet, "chainId": chain_id}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["typedData"]  # type: ignore[no-any-return]


def _post_signature(url: str, consent_id: str, signature: bytes) -> httpx.Response:
    return httpx.post(f"{url}/api/consent/{consent_id}/signature", json={"signature": "0x" + signature.hex()})


def _state(url: str, consent_id: str) -> str:
    return httpx.get(f"{url}/api/consent/{consent_id}").json()["state"]  # type: ignore[no-any-return]


@pytest.fixture
def owner() -> LocalSigner:
    return LocalSigner.generate()


def test_only_the_connected_wallet_s_signature_of_this_request_finishes_it(net, nft, owner) -> None:
    store = open_store("memory://")
    with ConsentServer(net, store=store) as server:
        first = server.request_permissions(_params(net.chain_id, nft.address))
        second = server.request_permissions(_params(net.chain_id, nft.address))
        typed_first = _connect(server.url, first.id, owner.address, net.chain_id)
        typed_second = _connect(server.url, second.id, owner.address, net.chain_id)
        # the same permissions, two sessions: each request's typed data is its own (its own session id)
        assert typed_first["message"] != typed_second["message"]
        signed_first = owner.sign_typed_data(typed_first)

        # the owner's signature of the first grant, posted to the second: refused, nothing granted or stored
        refused = _post_signature(server.url, second.id, signed_first)
        assert refused.status_code == 400, refused.text
        assert "signature" in refused.json()["error"]
        # another key's signature of the second grant's very typed data
        stranger = LocalSigner.generate().sign_typed_data(typed_second)
        refused = _post_signature(server.url, second.id, stranger)
        assert refused.status_code == 400, refused.text
        # the owner's signature of the second grant's typed data for another chain
        elsewhere = {**typed_second, "domain": {**typed_second["domain"], "chainId": net.chain_id + 1}}
        refused = _post_signature(server.url, second.id, owner.sign_typed_data(elsewhere))
        assert refused.status_code == 400, refused.text
        # the first signature with a byte changed
        bent = signed_first[:-1] + bytes([signed_first[-1] ^ 1])
        refused = _post_signature(server.url, first.id, bent)
        assert refused.status_code == 400, refused.text
        assert _state(server.url, first.id) == _state(server.url, second.id) == "waiting"
        assert store.list_grants() == []

        # each request's own signature finishes it, once
        granted = _post_signature(server.url, first.id, signed_first)
        assert granted.status_code == 200, granted.text
        again = _post_signature(server.url, first.id, signed_first)
        assert again.status_code == 400 and "already granted" in again.json()["error"]
        assert _post_signature(server.url, second.id, owner.sign_typed_data(typed_second)).status_code == 200
    grants = store.list_grants()
    assert {g.session_id for g in grants} == {first.grant.session_id, second.grant.session_id}


def test_a_wallet_switched_after_signing_gets_its_signature_refused(net, nft, owner) -> None:
    """The page connected the owner's wallet and the owner signed; before the signature is posted, another wallet
    connects to the same request (the grant is remade for that wallet's account): the owner's signature no longer
    finishes it, and the request is granted only by the wallet connected last, for that wallet's account."""
    store = open_store("memory://")
    other = LocalSigner.generate()
    with ConsentServer(net, store=store) as server:
        consent = server.request_permissions(_params(net.chain_id, nft.address))
        signed = owner.sign_typed_data(_connect(server.url, consent.id, owner.address, net.chain_id))
        typed_other = _connect(server.url, consent.id, other.address, net.chain_id)
        refused = _post_signature(server.url, consent.id, signed)
        assert refused.status_code == 400, refused.text
        assert store.list_grants() == [] and _state(server.url, consent.id) == "waiting"
        granted = _post_signature(server.url, consent.id, other.sign_typed_data(typed_other))
        assert granted.status_code == 200, granted.text
        assert granted.json()["account"] == consent.grant.account
    assert consent.grant_request is not None and consent.grant_request.owner == other.address


def test_a_grant_request_naming_another_owner_is_finished_only_by_a_signature_the_account_takes(
    net, harness, nft
) -> None:
    """A grant request read from a dapp's JSON carries its own ``owner`` field (the key that should sign), which is
    no part of the grant. A dapp names its own key there for a deployed account it does not own, connects that
    wallet and signs: the server checked the signature against the request's ``owner`` only, called the request
    granted and stored a grant the account refuses, listed on the account's dashboard as a session its owner
    never signed. The signature is checked as the module will: through the account's ERC-1271."""
    signer, stranger = LocalSigner.generate(), LocalSigner.generate()
    victim = net.owner(signer)
    harness.fund(victim.account, ETHER)
    victim.execute(function_call(nft, "safeMint(address)", victim.account)).wait()  # creates the account
    mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == victim.account])
    request = victim.prepare_grant(SessionKey.generate(), [mint], valid_for=3600)
    forged = GrantRequest.model_validate_json(
        request.model_copy(update={"owner": stranger.address}).model_dump_json()
    )
    store = open_store("memory://")
    with ConsentServer(net, store=store) as server:
        consent = server.request_grant(forged)
        typed = _connect(server.url, consent.id, stranger.address, net.chain_id)
        answer = _post_signature(server.url, consent.id, stranger.sign_typed_data(typed))
        assert answer.status_code == 400, answer.text
        assert _state(server.url, consent.id) == "waiting"
    assert store.list_grants(victim.account) == []


def test_a_grant_request_for_an_account_without_code_naming_another_owner_is_refused(net, nft) -> None:
    """The same forged ``owner`` field for an account its owner has not created yet (no code to ask): the server
    compared the signer with that field only and stored a grant the account, once created, refuses. The account is
    asked all the same, created for one eth_call by the factory call the request carries: the dapp's key's
    signature is refused; the owner's own grants the session."""
    signer, stranger = LocalSigner.generate(), LocalSigner.generate()
    victim = net.owner(signer)
    assert not victim.is_deployed()
    mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == victim.account])
    request = victim.prepare_grant(SessionKey.generate(), [mint], valid_for=3600)
    forged = GrantRequest.model_validate_json(
        request.model_copy(update={"owner": stranger.address}).model_dump_json()
    )
    genuine = GrantRequest.model_validate_json(request.model_dump_json())
    store = open_store("memory://")
    with ConsentServer(net, store=store) as server:
        consent = server.request_grant(forged)
        typed = _connect(server.url, consent.id, stranger.address, net.chain_id)
        answer = _post_signature(server.url, consent.id, stranger.sign_typed_data(typed))
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert f"recovers to {stranger.address}, not to the owner {signer.address}" in error, error
        assert _state(server.url, consent.id) == "waiting"
        assert store.list_grants(victim.account) == []

        honest = server.request_grant(genuine)
        typed = _connect(server.url, honest.id, signer.address, net.chain_id)
        granted = _post_signature(server.url, honest.id, signer.sign_typed_data(typed))
        assert granted.status_code == 200, granted.text
        assert _state(server.url, honest.id) == "granted"
    assert [g.session_id for g in store.list_grants(victim.account)] == [request.session_id]
    assert not victim.is_deployed()  # asked in an eth_call: nothing was created
