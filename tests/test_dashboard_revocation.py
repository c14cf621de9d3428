"""The dashboard's revocations and the shared store: a revocation the dashboard sends marks sessions revoked in the
store, where every worker reads it before each send (attack 35). Only the account's own sessions may be marked:
a revocation sent by one account's owner says nothing of another account's sessions.

Real components: the consent server on 127.0.0.1 over HTTP, keyscope's account and module on ape's chain with
the in-process bundler, a SQLite store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

from conftest import ETHER, KIND
from keyscope import Policy, SessionKey, arg
from keyscope.consent import ConsentServer
from keyscope.module import SessionStatus, read_session_status
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from support.sdk import second_module


def _post(server: ConsentServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=60)


def _revoke_from_the_dashboard(
    server: ConsentServer, account: str, owner: LocalSigner, body: dict[str, Any]
) -> httpx.Response:
    """What the dashboard's page does: prepare the owner's operation, have the wallet ``personal_sign`` its
    userOpHash, hand the signature back."""
    prepared = _post(server, f"/api/accounts/{account}/revoke", body)
    if prepared.status_code != 200:
        return prepared
    answer = prepared.json()
    signature = Account.sign_message(
        encode_defunct(primitive=bytes.fromhex(answer["userOpHash"][2:])), owner.private_key
    ).signature
    return _post(
        server,
        f"/api/operations/{answer['operationId']}/signature",
        {"signature": "0x" + signature.hex(), "from": owner.address},
    )


def test_one_owner_s_revocation_marks_no_other_account_s_session_in_the_store(
    net, harness, nft, tmp_path: Path
) -> None:
    """Two users of one dapp, one shared store. The stranger, owner of account B, asks the dashboard to revoke
    "on B" the session id of the victim's session on account A, and signs that operation with B's owner key:
    ``revokeSession(id)`` from B succeeds on chain (it writes B's own record), and the server marked the victim's
    session revoked in the store, so that every worker refused a session its owner never revoked."""
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    victim, stranger = LocalSigner.generate(), LocalSigner.generate()
    victim_owner, stranger_owner = net.owner(victim), net.owner(stranger)
    for owner in (victim_owner, stranger_owner):
        harness.fund(owner.account, ETHER)
    victim_key = SessionKey.generate()
    victim_grant = victim_owner.grant(
        victim_key, [Policy.call(nft, "safeMint(address to)", rules=[arg("to") == victim_owner.account])]
    )
    # the stranger's own grant in the store (from the dapp's consent page, say): the dashboard creates B with it
    stranger_grant = stranger_owner.grant(
        SessionKey.generate(),
        [Policy.call(nft, "safeMint(address to)", rules=[arg("to") == stranger_owner.account])],
    )
    store.put_grant(victim_grant)
    store.put_grant(stranger_grant)

    with ConsentServer(net, store=store) as server:
        answer = _revoke_from_the_dashboard(
            server,
            stranger_owner.account,
            stranger,
            {"sessionIds": ["0x" + victim_grant.session_id.hex()]},
        )
        # every worker reads this mark before each send: the victim's session must not be marked
        assert not store.is_revoked(victim_grant.session_id), answer.text
        assert answer.status_code == 400, answer.text
        assert "is a session of " + victim_owner.account in answer.json()["error"]

        # the stranger's own session, named with the victim's: refused whole, nothing sent
        both = [
            "0x" + stranger_grant.session_id.hex(),
            "0x" + victim_grant.session_id.hex(),
        ]
        answer = _revoke_from_the_dashboard(server, stranger_owner.account, stranger, {"sessionIds": both})
        assert answer.status_code == 400, answer.text

    assert not store.is_revoked(victim_grant.session_id)
    assert not store.is_revoked(stranger_grant.session_id)
    # the victim's session still works: enabled by its first operation, it mints
    session = net.session(victim_grant, victim_key)
    assert session.execute(nft, "safeMint(address)", victim_owner.account).wait().success
    assert read_session_status(net, victim_grant) is SessionStatus.ACTIVE


def test_an_owner_s_revocation_from_the_dashboard_marks_its_own_sessions(
    net, harness, nft, tmp_path: Path
) -> None:
    """The premise the defence keeps: the owner's revocation of the account's own session lands and marks it."""
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, ETHER)
    grant = owner.grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
    )
    store.put_grant(grant)
    with ConsentServer(net, store=store) as server:
        answer = _revoke_from_the_dashboard(
            server, owner.account, signer, {"sessionIds": ["0x" + grant.session_id.hex()]}
        )
    assert answer.status_code == 200 and answer.json()["success"] is True, answer.text
    assert store.is_revoked(grant.session_id)
    assert read_session_status(net, grant) is SessionStatus.REVOKED


def test_revoking_all_from_the_dashboard_marks_no_session_of_another_module_deployment(
    net, harness, nft, project, deployer, tmp_path: Path
) -> None:
    """One store keeps the account's grants of every deployment of the module it uses. The dashboard lists the
    sessions of its own module, and "revoke all" ends them there (``invalidateAllSessions``); the server then marked
    every grant of the account in the store revoked, a session live at a second deployment installed on the account
    too among them: every worker refused it and the store's listing read it revoked, while its key still worked
    there on chain. Only the dashboard module's grants are marked; nor is a grant of the account on another chain
    (chain 10, the same account and module address), which stays live there (docs/browser.md)."""
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, ETHER)
    mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    here = owner.grant(SessionKey.generate(), [mint], onchain=True)
    store.put_grant(here)
    there = second_module(net, owner, project, deployer, KIND)
    live_key = SessionKey.generate()
    live = there.owner(signer, owner.account).grant(live_key, [mint], onchain=True)
    store.put_grant(live)
    elsewhere = owner.grant(SessionKey.generate(), [mint], valid_for=3600).model_copy(update={"chain_id": 10})
    assert (elsewhere.account, elsewhere.module) == (here.account, here.module)
    store.put_grant(elsewhere)

    with ConsentServer(net, store=store) as server:
        answer = _revoke_from_the_dashboard(server, owner.account, signer, {"all": True})
    assert answer.status_code == 200 and answer.json()["success"] is True, answer.text
    assert store.is_revoked(here.session_id)
    assert read_session_status(net, here) is SessionStatus.INVALIDATED
    # the second deployment's session is live on chain: the store must not say otherwise
    assert read_session_status(there, live) is SessionStatus.ACTIVE
    assert not store.is_revoked(live.session_id)
    assert not store.is_revoked(elsewhere.session_id)
    assert there.session(live, live_key).execute(nft, "safeMint(address)", owner.account).wait().success


def test_revoking_from_the_dashboard_creates_the_account_with_this_chain_s_grant(
    net, harness, nft, tmp_path: Path
) -> None:
    """An account not created yet, with an off-chain grant never used: the dashboard's revocation creates it with the
    factory call of a stored grant. The store also held an older grant of the account on another chain (the same
    address there), naming that chain's factory, which is no factory here: the revocation was built on it and
    refused, and the owner could not end the session from the dashboard. Only this chain's grants give the call."""
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, ETHER)
    mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    far = net.owner(signer).grant(SessionKey.generate(), [mint])
    elsewhere = far.model_copy(update={"chain_id": 10, "factory": nft.address})  # chain 10's factory
    store.put_grant(elsewhere)
    time.sleep(0.05)  # stored after it: the listing gives the other chain's grant first
    here = owner.grant(SessionKey.generate(), [mint])
    store.put_grant(here)
    assert not net.is_deployed(owner.account)

    with ConsentServer(net, store=store) as server:
        answer = _revoke_from_the_dashboard(server, owner.account, signer, {"all": True})
    assert answer.status_code == 200 and answer.json()["success"] is True, answer.text
    assert net.is_deployed(owner.account)
    assert read_session_status(net, here) is SessionStatus.INVALIDATED
    assert store.is_revoked(here.session_id) and not store.is_revoked(elsewhere.session_id)


def test_a_damaged_grant_in_the_store_hides_no_session_from_the_dashboard(
    net, harness, nft, tmp_path: Path
) -> None:
    """A store shared by a dapp's services holds one grant that cannot be read (a file cut off mid-write, or written
    so by whoever shares the store); it is another account's. The dashboard read the store's grants without
    allowing for one: every account's dashboard answered an error instead of its sessions, so the owner saw none of
    the live ones, and its "revoke every session" stayed disabled. The sessions are listed, the unreadable grant is
    named, and the owner's revocation still lands and marks the account's own grants."""
    folder = tmp_path / "store"
    store = open_store(folder)
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, ETHER)
    live = owner.grant(
        SessionKey.generate(),
        [Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])],
        onchain=True,
    )
    store.put_grant(live)
    other = net.owner(LocalSigner.generate())
    damaged = other.grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)", rules=[arg("to") == other.account])]
    )
    store.put_grant(damaged)
    name = "0x" + damaged.session_id.hex()
    path = folder / "grants" / f"{name}.json"
    path.write_text(path.read_text()[:60])

    with ConsentServer(net, store=store) as server:
        listed = httpx.get(f"{server.url}/api/accounts/{owner.account}/sessions", timeout=60)
        assert listed.status_code == 200, listed.text
        sessions = listed.json()["sessions"]
        assert [(s["session_id"], s["status"]) for s in sessions] == [
            ("0x" + live.session_id.hex(), SessionStatus.ACTIVE.value)
        ]
        assert listed.json()["unreadable"] == [name]

        answer = _revoke_from_the_dashboard(server, owner.account, signer, {"all": True})
    assert answer.status_code == 200 and answer.json()["success"] is True, answer.text
    assert read_session_status(net, live) is SessionStatus.INVALIDATED
    assert store.is_revoked(live.session_id)


def test_an_unreadable_grant_s_name_cannot_turn_the_dashboard_s_words_around(net, tmp_path: Path) -> None:
    """Whoever shares the store (attack 233) names a damaged grant's file: the dashboard named it as it was, the one
    string of its words not written visible, so a right-to-left override in it turned the rest of the warning
    around ("Revoke every session" ends this account's among them too, read backwards) and a newline broke it. The
    name is shown with such characters as their code points, as every other string of the pages."""
    folder = tmp_path / "store"
    store = open_store(folder)
    (folder / "grants" / "0xdead\u202e, none of yours\u2066.json").write_text("{")
    with ConsentServer(net, store=store) as server:
        listed = httpx.get(f"{server.url}/api/accounts/{'0x' + 'ac' * 20}/sessions", timeout=60)
    assert listed.status_code == 200, listed.text
    assert listed.json()["unreadable"] == ["0xdead<U+202E>, none of yours<U+2066>"]
