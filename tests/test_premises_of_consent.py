"""The premise docs/browser.md states about the dashboard's revocations and a shared store, checked as worded:
"only its grants at the server's module on the server's chain: 'revoke all' ends the sessions of that module, and a
grant the store holds of a second deployment of the module (installed on the account too) or of another chain stays
unmarked, as it stays live there." ``tests/test_dashboard_revocation.py`` tries the second deployment; here the
other chain: the same account and module address, a grant of chain 10 in the same store.

Real components: the consent server on 127.0.0.1 over HTTP, keyscope's account and module on ape's chain with the
in-process bundler, a SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

from conftest import ETHER
from keyscope import Policy, SessionKey, arg
from keyscope.consent import ConsentServer
from keyscope.module import SessionStatus, read_session_status
from keyscope.signing import LocalSigner
from keyscope.store import open_store


def _post(server: ConsentServer, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST ``body`` as JSON to the server's ``path``."""
    return httpx.post(server.url + path, json=body, timeout=60)


def _revoke_all_from_the_dashboard(server: ConsentServer, account: str, owner: LocalSigner) -> httpx.Response:
    """What the dashboard's page does for "revoke all": prepare the owner's operation, have the wallet
    ``personal_sign`` its userOpHash, hand the signature back."""
    prepared = _post(server, f"/api/accounts/{account}/revoke", {"all": True})
    assert prepared.status_code == 200, prepared.text
    answer = prepared.json()
    signature = Account.sign_message(
        encode_defunct(primitive=bytes.fromhex(answer["userOpHash"][2:])), owner.private_key
    ).signature
    return _post(
        server,
        f"/api/operations/{answer['operationId']}/signature",
        {"signature": "0x" + signature.hex(), "from": owner.address},
    )


def test_revoking_all_from_the_dashboard_marks_no_grant_of_another_chain(  # type: ignore[no-untyped-def]
    net, harness, nft, tmp_path: Path
) -> None:
    """The account's grant on this chain is ended and marked; its grant of chain 10 at the same module address,
    held in the same store, is not marked: the key still works there."""
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        signer = LocalSigner.generate()
        owner = net.owner(signer)
        harness.fund(owner.account, ETHER)
        mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
        here = owner.grant(SessionKey.generate(), [mint], onchain=True)
        store.put_grant(here)
        elsewhere = owner.grant(SessionKey.generate(), [mint], valid_for=3600).model_copy(
            update={"chain_id": 10}
        )
        assert (elsewhere.account, elsewhere.module) == (here.account, here.module)
        store.put_grant(elsewhere)

        with ConsentServer(net, store=store) as server:
            answer = _revoke_all_from_the_dashboard(server, owner.account, signer)
        assert answer.status_code == 200 and answer.json()["success"] is True, answer.text
        assert store.is_revoked(here.session_id)
        assert read_session_status(net, here) is SessionStatus.INVALIDATED
        assert not store.is_revoked(elsewhere.session_id)
    finally:
        store.close()
