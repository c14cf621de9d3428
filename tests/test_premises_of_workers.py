"""The premise docs/scaling.md states about a worker's refusals, checked as worded: "A session revoked in the store,
a call outside the policy or the session's window, calldata to an address without code and a co-signed session are
refused before a nonce lane is leased: the refusal holds no lane, in the worker or in the store."

``tests/test_worker.py`` proves it for calldata to no code and a co-signed session (``lanes_leased`` 0); for the
other three it checked only that nothing was recorded, or that no lane is held after the refusal, which a lane
leased then released also gives. Here each is sent to a fresh worker on ape's local chain (the in-process bundler,
the real EntryPoint and module, a SQLite store), and the worker's count of lanes leased must stay 0, and lane 0 of
the session must be free for another worker."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import ETHER
from keyscope import (
    Network,
    Policy,
    PolicyViolationError,
    SessionKey,
    SessionRevokedError,
    arg,
    function_call,
)
from keyscope.errors import SessionExpiredError
from keyscope.grant import SessionGrant
from keyscope.scale import SessionWorker
from keyscope.signing import LocalSigner
from keyscope.store import SessionStore, open_store

KEK = bytes(range(32))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A SQLite session store of its own."""
    opened = open_store(f"sqlite:///{tmp_path / 'keyscope.db'}", kek=KEK)
    yield opened
    opened.close()


def _granted(net: Network, harness, store: SessionStore, nft, valid_for: int) -> tuple[SessionGrant, str]:  # type: ignore[no-untyped-def]
    """A funded owner's session minting to the account, stored with its key; the grant and the account."""
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    key = SessionKey.generate()
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.grant(key, [policy], valid_for=valid_for)
    store.put_key(key)
    store.put_grant(grant)
    return grant, owner.account


def _assert_no_lane_was_leased(worker: SessionWorker, store: SessionStore, grant: SessionGrant) -> None:
    """The worker leased no lane, and lane 0 of the session is free for another worker."""
    stats = worker.stats()
    assert stats["lanes_leased"] == 0 and stats["lanes_held"] == 0, stats
    lease = store.lease_lane(grant.account, grant.session_id, "another-worker", 30.0)
    assert lease.lane == 0, lease
    store.release_lease(lease)


@pytest.mark.parametrize("reason", ["revoked in the store", "outside the policy", "outside the window"])
def test_each_refusal_the_docs_list_comes_before_a_nonce_lane_is_leased(  # type: ignore[no-untyped-def]
    net, harness, store, nft, chain, accounts, reason: str
) -> None:
    """Revoked in the store (``SessionRevokedError``), a call outside the policy (``PolicyViolationError``) and a
    session past its window (``SessionExpiredError``): refused, nothing recorded, no lane leased."""
    grant, account = _granted(
        net, harness, store, nft, valid_for=60 if reason == "outside the window" else 3600
    )
    session_id = "0x" + grant.session_id.hex()
    call = function_call(nft, "safeMint(address)", account)
    expected: type[Exception] = SessionRevokedError
    if reason == "revoked in the store":
        store.mark_revoked(session_id)
    elif reason == "outside the policy":
        call = function_call(nft, "safeMint(address)", accounts[4].address)
        expected = PolicyViolationError
    else:
        chain.pending_timestamp = chain.blocks.head.timestamp + 120
        chain.mine()
        expected = SessionExpiredError
    with SessionWorker(store, net, background=False, poll_interval=0.01) as worker:
        with pytest.raises(expected):
            worker.send("refused", session_id, call)
        assert store.get_by_intent("refused") is None and store.pending() == []
        _assert_no_lane_was_leased(worker, store, grant)


def test_a_worker_logs_and_raises_no_session_key(  # type: ignore[no-untyped-def]
    net, harness, store, nft, accounts, caplog: pytest.LogCaptureFixture
) -> None:
    """scaling.md: "Keys are read from the store and decrypted in the worker's memory only; nothing in the worker
    logs or raises a key." A worker sends an operation to inclusion, refuses one outside the policy and one of the
    session once revoked in the store, with every logger at DEBUG: the session key appears in no log record, no
    error's text or representation, and not in the worker's, the submission's or the store's representation."""
    caplog.set_level(logging.DEBUG)
    grant, account = _granted(net, harness, store, nft, valid_for=3600)
    secret = store.get_key(grant.session.session_key).private_key.hex()
    session_id = "0x" + grant.session_id.hex()
    texts: list[str] = []
    with SessionWorker(store, net, background=False, poll_interval=0.01) as worker:
        submission = worker.send("mint", session_id, function_call(nft, "safeMint(address)", account))
        outcome = submission.wait(30)
        assert outcome.success
        texts += [repr(worker), repr(submission), repr(outcome), repr(store), str(worker.stats())]
        with pytest.raises(PolicyViolationError) as outside:
            worker.send("outside", session_id, function_call(nft, "safeMint(address)", accounts[4].address))
        store.mark_revoked(session_id)
        with pytest.raises(SessionRevokedError) as revoked:
            worker.send("revoked", session_id, function_call(nft, "safeMint(address)", account))
    for error in (outside.value, revoked.value):
        texts += [str(error), repr(error), repr(error.args)]
    texts += [record.getMessage() for record in caplog.records]
    assert len(caplog.records) > 0
    for text in texts:
        assert secret.lower() not in text.lower(), text
