"""SessionWorker on ape's local chain: the in-process bundler, the real EntryPoint and module, SQLite stores.

Every worker here runs without its background thread (``background=False``): it makes progress only when
the test sends, waits or polls, so that ape's chain is only ever used from the test's thread. What a dead
worker leaves behind (an operation recorded but never sent, or sent to a bundler that then lost it) is
made exactly as a worker makes it: built and signed by a ``SessionAccount``, recorded in the same store.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ETHER
from keyscope import (
    Network,
    Policy,
    PolicyViolationError,
    SessionKey,
    SessionRevokedError,
    TargetWarning,
    arg,
    function_call,
)
from keyscope.bundler import UserOperationReceipt
from keyscope.cli import main as cli
from keyscope.errors import BadInputError, StoreLockedError
from keyscope.hexutil import keccak, to_address
from keyscope.scale import EventLog, Intent, SessionWorker
from keyscope.scale.worker import MAX_REBUILDS
from keyscope.signing import LocalSigner
from keyscope.store import OutboxState, SessionStore, open_store

KEK = bytes(range(32))
KEK_HEX = KEK.hex()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keyscope.db'}"


@pytest.fixture
def store(db):
    opened = open_store(db, kek=KEK)
    yield opened
    opened.close()


@pytest.fixture
def events(net):
    log = EventLog.for_network(net)
    assert log is not None
    return log


class User:
    """An owner with a funded account (created by its first session operation) and one granted session."""

    def __init__(self, net: Network, harness, store: SessionStore, nft) -> None:
        self.owner = net.owner(LocalSigner.generate())
        harness.fund(self.owner.account, ETHER)
        self.key = SessionKey.generate()
        policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == self.owner.account])
        self.grant = self.owner.grant(self.key, [policy], valid_for=3600)
        store.put_key(self.key)
        store.put_grant(self.grant)
        self.nft = nft

    @property
    def account(self) -> str:
        return self.owner.account

    @property
    def session_id(self) -> str:
        return "0x" + self.grant.session_id.hex()

    def mint(self):
        return function_call(self.nft, "safeMint(address)", self.account)


@pytest.fixture
def user(net, harness, store, nft) -> User:
    return User(net, harness, store, nft)


def worker(store: SessionStore, net: Network, **options) -> SessionWorker:
    options.setdefault("background", False)
    options.setdefault("poll_interval", 0.01)
    return SessionWorker(store, net, **options)


def dead_worker_records(
    store: SessionStore, net: Network, user: User, intent: str, *, lane: int = 0, ttl=30.0
):
    """What a worker that died right after recording leaves: a lease on ``lane`` and a ``built`` record of a
    signed operation that nobody sent."""
    lease = store.lease_lane(user.account, user.session_id, "dead-worker", ttl)
    assert lease.lane == lane
    op = net.session(user.grant, user.key).build(user.mint(), lane=lane)
    op_hash = events_hash(net, op)
    return store.record_intent(intent, user.account, user.session_id, lane, op, op_hash)


def events_hash(net: Network, op) -> str:
    from keyscope.hashing import user_op_hash_v07

    return "0x" + user_op_hash_v07(op.pack(), net.entry_point, net.chain_id).hex()


# --------------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------------


def test_send_records_then_sends_and_follows_to_inclusion(net, store, user, nft, events):
    with worker(store, net) as w:
        sub = w.send("order-1", user.session_id, user.mint())
        assert not sub.resumed
        recorded = store.get_by_intent("order-1")
        assert recorded is not None and recorded.user_op_hash == sub.user_op_hash
        assert recorded.state is OutboxState.SENT and recorded.attempts == 1
        assert recorded.lane == 0 and recorded.account == user.account

        final = sub.wait(30)
        assert final.state is OutboxState.INCLUDED and final.success is True
        assert store.get_by_intent("order-1").state is OutboxState.INCLUDED
    assert nft.balanceOf(user.account) == 1
    assert events.count([sub.user_op_hash]) == {sub.user_op_hash: 1}
    # the first operation created the account and enabled the off-chain grant: the store knows it
    assert store.is_enabled(user.session_id)
    assert net.is_deployed(user.account)


def test_retrying_an_intent_never_builds_a_second_operation(net, store, user, nft, events, entry_point):
    with worker(store, net) as w:
        first = w.send("order-2", user.session_id, user.mint())
        again = w.send("order-2", user.session_id, user.mint())  # while still in flight
        assert again.resumed and again.user_op_hash == first.user_op_hash
        first.wait(30)
        nonce = entry_point.getNonce(user.account, net.kind_for(user.account).nonce_key(net.module, 0))
        later = w.send("order-2", user.session_id, user.mint())  # after it landed
        assert later.resumed and later.user_op_hash == first.user_op_hash
        assert later.wait(1).state is OutboxState.INCLUDED
        assert (
            entry_point.getNonce(user.account, net.kind_for(user.account).nonce_key(net.module, 0)) == nonce
        )
    assert nft.balanceOf(user.account) == 1
    assert events.count([first.user_op_hash])[first.user_op_hash] == 1


def test_another_worker_retrying_the_intent_follows_the_recorded_operation(net, db, store, user, nft):
    other_store = open_store(db, kek=KEK)
    try:
        with worker(store, net) as a, worker(other_store, net) as b:
            sent = a.send("order-3", user.session_id, user.mint())
            retried = b.send("order-3", user.session_id, user.mint())
            assert retried.resumed and retried.user_op_hash == sent.user_op_hash
            assert retried.wait(30).state is OutboxState.INCLUDED
            sent.wait(30)
    finally:
        other_store.close()
    assert nft.balanceOf(user.account) == 1


def test_an_intent_id_recorded_for_another_session_is_refused_not_reported_done(
    net, harness, db, store, user, nft
):
    """Intent ids are one per store. Two users' backends both naming an intent ``move-1``: the second user's
    send returned the first user's recorded operation, followed to its inclusion, so the second user's intent was
    reported done while nothing of it was sent (their NFT never minted). It is refused, naming the session that
    holds the id, on the worker that recorded it and on another, and the first user's intent is untouched."""
    other = User(net, harness, store, nft)
    other_store = open_store(db, kek=KEK)
    try:
        with worker(store, net) as a, worker(other_store, net) as b:
            first = a.send("move-1", user.session_id, user.mint())
            for w in (a, b):
                with pytest.raises(BadInputError) as info:
                    w.send("move-1", other.session_id, other.mint())
                message = str(info.value)
                assert f"intent 'move-1' is already recorded for session {user.session_id}" in message, (
                    message
                )
                assert f"not for session {other.session_id}" in message and "an id of its own" in message
            assert first.wait(30).state is OutboxState.INCLUDED
            # the same session retrying its intent still follows the recorded operation
            assert b.send("move-1", user.session_id, user.mint()).resumed
    finally:
        other_store.close()
    assert nft.balanceOf(user.account) == 1 and nft.balanceOf(other.account) == 0
    record = store.get_by_intent("move-1")
    assert record is not None and record.session_id == user.session_id


def test_two_workers_on_one_session_use_separate_lanes(net, db, store, user, nft, events):
    other_store = open_store(db, kek=KEK)
    hashes = []
    try:
        with worker(store, net, max_lanes=2) as a, worker(other_store, net, max_lanes=2) as b:
            a.send("warm-up", user.session_id, user.mint()).wait(30)  # creates the account
            subs = []
            for n in range(6):
                subs.append(a.send(f"a-{n}", user.session_id, user.mint()))
                subs.append(b.send(f"b-{n}", user.session_id, user.mint()))
            records = [s.wait(30) for s in subs]
            assert a.stats()["lanes_held"] <= 2 and b.stats()["lanes_held"] <= 2
    finally:
        other_store.close()
    assert all(r.state is OutboxState.INCLUDED and r.success for r in records)
    lanes_a = {r.lane for r in records if r.intent_id.startswith("a-")}
    lanes_b = {r.lane for r in records if r.intent_id.startswith("b-")}
    assert lanes_a and lanes_b and not lanes_a & lanes_b  # never the same lane at once
    nonces = [(r.op.sender, r.op.nonce) for r in records]
    assert len(set(nonces)) == len(nonces)
    hashes = [r.user_op_hash for r in records]
    assert set(events.count(hashes).values()) == {1}
    assert nft.balanceOf(user.account) == 13


def test_send_many(net, harness, store, user, nft, events):
    second = User(net, harness, store, nft)
    intents = [
        Intent(f"batch-{n}", (user if n % 2 else second).session_id, (user if n % 2 else second).mint())
        for n in range(8)
    ]
    with worker(store, net) as w:
        result = w.send_many(intents, concurrency=1)
    assert not result.errors
    assert len(result.included) == 8 and not result.failed
    assert set(events.count([r.user_op_hash for r in result.included]).values()) == {1}
    assert nft.balanceOf(user.account) == 4 and nft.balanceOf(second.account) == 4


def test_without_the_nodes_log_receipts_are_followed(net, store, user, nft):
    with worker(store, net, events=None) as w:
        assert w.events is None
        records = [w.send(f"plain-{n}", user.session_id, user.mint()) for n in range(3)]
        assert all(s.wait(30).state is OutboxState.INCLUDED for s in records)
    assert nft.balanceOf(user.account) == 3


# --------------------------------------------------------------------------------------------------
# Refusals: nothing is recorded, nothing is sent
# --------------------------------------------------------------------------------------------------


def test_a_session_revoked_in_the_store_is_refused_by_every_worker(net, db, store, user):
    other_store = open_store(db, kek=KEK)
    try:
        with worker(store, net) as a, worker(other_store, net) as b:
            a.send("before", user.session_id, user.mint()).wait(30)
            other_store.mark_revoked(user.session_id)  # through the other worker's store
            with pytest.raises(SessionRevokedError, match="revoked in the store"):
                a.send("after", user.session_id, user.mint())
            with pytest.raises(SessionRevokedError):
                b.send("after-b", user.session_id, user.mint())
    finally:
        other_store.close()
    assert store.get_by_intent("after") is None and store.get_by_intent("after-b") is None


def test_a_session_revoked_in_the_store_while_a_send_builds_is_not_sent(net, db, store, user, nft):
    """The operator revokes the session after the worker read the revoked flag and while it builds and signs
    (here: at the step hook right before recording). The flag is read again before the first send: the
    operation is recorded, failed unsent, and never lands."""
    other_store = open_store(db, kek=KEK)

    def revoke(step: str, intent: str) -> None:
        if step == "signed" and intent == "raced":
            other_store.mark_revoked(user.session_id)

    try:
        with worker(store, net, on_step=revoke) as w:
            w.send("before", user.session_id, user.mint()).wait(30)
            final = w.send("raced", user.session_id, user.mint()).wait(30)
            assert w.drain(5)
    finally:
        other_store.close()
    assert final.state is OutboxState.FAILED and "revoked in the store" in (final.error or "")
    assert final.attempts == 0 and final.sent_at is None
    assert nft.balanceOf(user.account) == 1


def test_an_operation_is_not_sent_again_once_its_session_is_revoked_in_the_store(net, db, store, user, nft):
    """A worker that read the session's flag a moment ago (and keeps it for a little while) still reads it
    again before it sends a recorded operation: one revoked meanwhile is failed, not sent."""
    other_store = open_store(db, kek=KEK)
    try:
        with worker(store, net) as w:
            w.send("warm-up", user.session_id, user.mint()).wait(30)  # creates the account; holds lane 0
            dead_worker_records(other_store, net, user, "orphan-1", lane=1)
            assert w.recover(wait=30).included == ["orphan-1"]  # the flag was read: not revoked
            orphan = dead_worker_records(other_store, net, user, "orphan-2", lane=2)
            other_store.mark_revoked(user.session_id)
            report = w.recover()
    finally:
        other_store.close()
    assert list(report.failed) == ["orphan-2"] and "revoked in the store" in report.failed["orphan-2"]
    final = store.get_by_intent("orphan-2")
    assert final.state is OutboxState.FAILED and final.attempts == 0
    assert final.user_op_hash == orphan.user_op_hash
    assert nft.balanceOf(user.account) == 2


def test_a_recorded_operation_is_not_sent_while_its_revocation_cannot_be_read(
    net, db, store, user, nft
) -> None:
    """Attack 170: the store's revocation mark is read afresh right before a recorded operation is sent again
    (attack 35), and a resend writes nothing to the store first, so it went ahead while the store's grants could
    not be read: "cannot be read" counted as "not revoked", and the revoked session's operation landed. Now it
    waits until the store can say, then is failed as revoked."""
    with worker(store, net) as w:
        w.send("warm-up", user.session_id, user.mint()).wait(30)  # creates the account; holds lane 0
        other_store = open_store(db, kek=KEK)
        try:
            orphan = dead_worker_records(other_store, net, user, "orphan", lane=1)
            other_store.mark_revoked(user.session_id)  # the owner revokes it in the store
        finally:
            other_store.close()
        # the grants cannot be read now (a restore in progress, a migration gone wrong, the table's file lost):
        # the outbox still can
        path = db[len("sqlite:///") :]
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE keyscope_grants RENAME TO keyscope_grants_away")
        report = w.recover()
        assert nft.balanceOf(user.account) == 1, "the revoked session's operation was sent and landed"
        assert "orphan" not in report.included
        assert store.get_by_intent("orphan").attempts == 0
        # readable again: the revocation is read, and the operation is failed, never sent
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE keyscope_grants_away RENAME TO keyscope_grants")
        report = w.recover()
    assert list(report.failed) == ["orphan"] and "revoked in the store" in report.failed["orphan"], report
    final = store.get_by_intent("orphan")
    assert final.state is OutboxState.FAILED and final.attempts == 0
    assert final.user_op_hash == orphan.user_op_hash
    assert nft.balanceOf(user.account) == 1


def test_one_unreadable_outbox_record_does_not_stop_other_sessions(net, harness, db, store, nft, events):
    """A record of one session damaged in the database (its operation unreadable). A new lane of another
    session is adopted from a read of the unfinished records: that read leaves the damaged one out (with a
    warning) instead of failing, so the other session's operation is sent and lands."""
    damaged = User(net, harness, store, nft)
    other = User(net, harness, store, nft)
    dead_worker_records(store, net, damaged, "orphan")
    with sqlite3.connect(db[len("sqlite:///") :]) as conn:
        conn.execute("UPDATE keyscope_outbox SET op_json = '{' WHERE intent_id = 'orphan'")
    with worker(store, net) as w:
        final = w.send("other-1", other.session_id, other.mint()).wait(30)
    assert final.state is OutboxState.INCLUDED
    assert nft.balanceOf(other.account) == 1


def test_recover_reports_an_unreadable_record_and_finishes_the_others(net, harness, db, store, nft, events):
    """Two workers died with operations in flight, one record damaged since: the recovery pass reports it as
    unreadable, leaves its bytes as they are, and still sends and finishes the other."""
    damaged = User(net, harness, store, nft)
    other = User(net, harness, store, nft)
    dead_worker_records(store, net, damaged, "orphan")
    record = dead_worker_records(store, net, other, "other")
    with sqlite3.connect(db[len("sqlite:///") :]) as conn:
        conn.execute("UPDATE keyscope_outbox SET op_json = '{' WHERE intent_id = 'orphan'")
    with worker(store, net) as w:
        report = w.recover(wait=30)
    assert list(report.unreadable) == ["orphan"] and "corrupted" in report.unreadable["orphan"], report
    assert report.included == ["other"] and "1 unreadable, left as they are" in str(report), report
    shown = report.as_json()  # what `keyscope recover --json` prints: every list the report keeps
    assert set(shown) == {"examined", *(name.name for name in dataclasses.fields(report))}
    assert shown["examined"] == 1 and shown["included"] == ["other"] and shown["rebuilt"] == []
    assert json.loads(json.dumps(shown)) == shown
    assert events.count([record.user_op_hash])[record.user_op_hash] == 1
    assert nft.balanceOf(other.account) == 1 and nft.balanceOf(damaged.account) == 0
    with sqlite3.connect(db[len("sqlite:///") :]) as conn:
        assert conn.execute("SELECT op_json FROM keyscope_outbox WHERE intent_id = 'orphan'").fetchone() == (
            "{",
        )


def test_a_session_revoked_on_chain_is_refused_and_marked_in_the_store(net, store, user):
    with worker(store, net) as w:
        w.send("first", user.session_id, user.mint()).wait(30)
        user.owner.revoke(user.grant).wait()
        with pytest.raises(SessionRevokedError, match="revoked"):
            w.send("second", user.session_id, user.mint())
    assert store.get_by_intent("second") is None
    assert store.is_revoked(user.session_id)


def test_a_call_outside_the_policy_is_refused_before_recording(net, store, user, nft, accounts):
    with worker(store, net) as w:
        call = function_call(nft, "safeMint(address)", accounts[4].address)
        with pytest.raises(PolicyViolationError):
            w.send("bad", user.session_id, call)
        assert w.stats()["lanes_held"] == 0
    assert store.get_by_intent("bad") is None


def test_an_expired_session_or_an_operation_over_its_gas_cap_is_refused_before_recording(
    net, harness, store, nft, chain
):
    """docs/scaling.md: ``send`` refuses an expired session and an operation over the session's gas cost cap
    before anything is recorded (nothing to recover, nothing the bundler could be handed later)."""
    from keyscope.errors import GasCostTooHighError, SessionExpiredError

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    mint = function_call(nft, "safeMint(address)", owner.account)
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    capped_key, short_key = SessionKey.generate(), SessionKey.generate()
    capped = owner.grant(capped_key, [policy], valid_for=3600, max_gas_cost=10**9)
    short = owner.grant(short_key, [policy], valid_for=60)
    for key, grant in ((capped_key, capped), (short_key, short)):
        store.put_key(key)
        store.put_grant(grant)
    with worker(store, net) as w:
        with pytest.raises(GasCostTooHighError, match="over the session's cap of 1,000,000,000 wei"):
            w.send("capped", "0x" + capped.session_id.hex(), mint)
        chain.pending_timestamp = chain.blocks.head.timestamp + 120
        chain.mine()
        with pytest.raises(SessionExpiredError):
            w.send("expired", "0x" + short.session_id.hex(), mint)
    assert store.get_by_intent("capped") is None and store.get_by_intent("expired") is None
    assert store.pending() == []


def test_calldata_to_no_code_and_a_co_signed_session_without_its_co_signer_are_refused_before_recording(
    net, harness, store, nft
):
    """The README: calldata sent to an address without code, and an operation without the co-signature the module
    expects, are refused before sending (TargetWithoutCodeError, CoSignerMismatchError). A worker builds after it
    checked the policy, and refuses both before anything is recorded (once it recorded and sent them: the first
    landed doing nothing, its gas paid; the bundler refused the second, AA24). Once the owner removed the
    co-signer, the session signs alone and the worker sends for it. Both are refused before a nonce lane is
    leased (once the worker leased one first, and held it idle after the refusal)."""
    from keyscope.errors import CoSignerMismatchError, TargetWithoutCodeError

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    nowhere = "0x" + "12" * 20
    mint = function_call(nft, "safeMint(address)", owner.account)
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    lost_key, co_signed_key, co_signer = SessionKey.generate(), SessionKey.generate(), LocalSigner.generate()
    with pytest.warns(TargetWarning):
        lost = owner.grant(lost_key, [policy, Policy.call(nowhere, "ping(uint256 n)")])
    co_signed = owner.grant(co_signed_key, [policy], co_signer=co_signer.address, onchain=True)
    for key, grant in ((lost_key, lost), (co_signed_key, co_signed)):
        store.put_key(key)
        store.put_grant(grant)
    with worker(store, net) as w:
        with pytest.raises(TargetWithoutCodeError, match=f"sends calldata to {to_address(nowhere)}"):
            w.send("nowhere", "0x" + lost.session_id.hex(), function_call(nowhere, "ping(uint256)", 1))
        with pytest.raises(CoSignerMismatchError, match="no co-signer to ask"):
            w.send("co-signed", "0x" + co_signed.session_id.hex(), mint)
        assert store.get_by_intent("nowhere") is None and store.get_by_intent("co-signed") is None
        assert store.pending() == []
        # both refused before a lane was leased: none held by this worker, lane 0 free for any other
        assert w.stats()["lanes_leased"] == 0 and w.stats()["lanes_held"] == 0, w.stats()
        for grant in (lost, co_signed):
            lease = store.lease_lane(grant.account, grant.session_id, "another-worker", 30.0)
            assert lease.lane == 0, lease
            store.release_lease(lease)
        owner.rotate_co_signer(co_signed, None).wait()
        assert w.send("alone", "0x" + co_signed.session_id.hex(), mint).wait(30).success


# --------------------------------------------------------------------------------------------------
# Recovery
# --------------------------------------------------------------------------------------------------


def test_recover_sends_an_operation_built_but_never_sent(net, store, user, nft, events):
    record = dead_worker_records(store, net, user, "orphan")
    assert record.state is OutboxState.BUILT
    with worker(store, net) as w:
        report = w.recover(wait=30)
    assert report.included == ["orphan"] and report.resent == ["orphan"], report
    final = store.get_by_intent("orphan")
    assert final.state is OutboxState.INCLUDED and final.user_op_hash == record.user_op_hash
    assert final.attempts == 1
    assert events.count([record.user_op_hash])[record.user_op_hash] == 1
    assert nft.balanceOf(user.account) == 1


def test_recover_resends_the_same_operation_a_bundler_lost(net, store, user, nft, events):
    record = dead_worker_records(store, net, user, "lost")
    store.mark_sent(record.user_op_hash)  # a bundler accepted it, then lost its mempool
    with worker(store, net) as w:
        report = w.recover(wait=30)
    assert report.included == ["lost"] and report.resent == ["lost"]
    final = store.get_by_intent("lost")
    assert final.user_op_hash == record.user_op_hash and final.attempts == 2
    assert events.count([record.user_op_hash])[record.user_op_hash] == 1


def test_recover_marks_included_what_landed_before_the_worker_died(net, store, user, nft):
    record = dead_worker_records(store, net, user, "landed")
    net.bundler.send_user_operation(record.op, net.entry_point)  # sent; the worker died before marking it
    with worker(store, net) as w:
        report = w.recover()
    assert report.included == ["landed"] and not report.resent
    final = store.get_by_intent("landed")
    assert final.state is OutboxState.INCLUDED and final.attempts == 0 and final.success
    assert nft.balanceOf(user.account) == 1


class MadeUpReceipts:
    """A bundler (hostile, or broken) in front of the real one: the operations it is given it takes without sending,
    and answers each with a successful receipt of its own making, under the operation's own hash, sender and nonce,
    in transaction ``tx_hash`` (one no node has, or a real one of something else)."""

    def __init__(self, real, net: Network, tx_hash: bytes) -> None:
        self.real, self.net, self.tx_hash = real, net, tx_hash
        self.taken: dict[bytes, object] = {}

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def send_user_operation(self, op, entry_point: str) -> bytes:
        mine = self.net.user_op_hash(op)
        self.taken[mine] = op
        return mine

    def get_user_operation_receipt(self, user_op_hash: bytes) -> UserOperationReceipt | None:
        op = self.taken.get(bytes(user_op_hash))
        if op is None:
            return self.real.get_user_operation_receipt(user_op_hash)
        return UserOperationReceipt(
            user_op_hash=bytes(user_op_hash),
            entry_point=self.net.entry_point,
            sender=op.sender,
            nonce=op.nonce,
            actual_gas_cost=10**15,
            actual_gas_used=150_000,
            success=True,
            transaction_hash=self.tx_hash,
            block_number=1,
        )


@pytest.mark.parametrize("named", ["a transaction no node has", "a real transaction of something else"])
def test_a_receipt_the_bundler_makes_up_is_not_recorded_as_included(net, store, user, named):
    """The worker's probe asked the bundler for a receipt and took its word: a bundler taking an operation without
    sending it, answering a successful receipt of its own making, had the outbox record the operation included
    (the dapp's ``sub.wait()`` and ``keyscope outbox`` said it landed) while it never ran. The node must confirm the
    receipt (attack 248)."""
    if named == "a transaction no node has":
        tx_hash = keccak(b"a bundle transaction no node has")
    else:  # the block that funded the account: its transaction holds no UserOperationEvent
        tx_hash = bytes(net.chain.w3.eth.get_block("latest")["transactions"][0])
    lying = dataclasses.replace(net, bundler=MadeUpReceipts(net.bundler, net, tx_hash))
    record = dead_worker_records(store, lying, user, "never-sent")
    lying.bundler.send_user_operation(record.op, net.entry_point)  # taken, never sent
    store.mark_sent(record.user_op_hash)
    w = worker(store, lying)
    try:
        report = w.recover(wait=1.0)
    finally:  # the operation never lands: closing follows it a while longer, then leaves it in the outbox
        w.close(timeout=2.0)
    assert "never-sent" not in report.included, report
    assert store.get_by_intent("never-sent").state is not OutboxState.INCLUDED
    # what the chain says: the operation never ran, its nonce unused
    assert net.chain.get_nonce(net.entry_point, user.account, record.op.nonce >> 64) == record.op.nonce


def _overtake(net: Network, user: User) -> str:
    """Another operation on lane 0 with the next nonce, sent outside the outbox (two mints in one): what a
    second sender on the same nonce key does. Returns its userOpHash once it landed."""
    session = net.session(user.grant, user.key)
    other = session.send(session.build([user.mint(), user.mint()], batch=True, lane=0)).wait()
    return "0x" + other.user_op_hash.hex()


def test_recover_rebuilds_an_intent_whose_operation_was_displaced(net, store, user, nft, events):
    record = dead_worker_records(store, net, user, "overtaken")
    other_hash = _overtake(net, user)
    with worker(store, net) as w:
        report = w.recover(wait=30)
        assert w.stats()["rebuilt"] == 1
    assert report.rebuilt == ["overtaken"] and report.included == ["overtaken"], report
    final = store.get_by_intent("overtaken")
    assert final.state is OutboxState.INCLUDED and final.success
    assert final.rebuilds == 1 and final.displaced == (record.user_op_hash,)
    assert final.user_op_hash != record.user_op_hash and final.op.call_data == record.op.call_data
    assert final.op.nonce > record.op.nonce  # a fresh nonce: the displaced one was used by the other
    assert store.get_by_hash(record.user_op_hash) is None
    counts = events.count([record.user_op_hash, final.user_op_hash, other_hash])
    assert counts == {record.user_op_hash: 0, final.user_op_hash: 1, other_hash: 1}
    assert nft.balanceOf(user.account) == 3  # the other operation's two mints, and the intent's one


def test_a_retried_intent_whose_operation_was_displaced_lands_once(net, store, user, nft, events):
    record = dead_worker_records(store, net, user, "retried")
    _overtake(net, user)
    with worker(store, net) as w:
        sub = w.send("retried", user.session_id, user.mint())
        assert sub.resumed
        final = sub.wait(30)
        assert sub.user_op_hash == final.user_op_hash != record.user_op_hash
    assert final.state is OutboxState.INCLUDED and final.rebuilds == 1
    assert events.count([final.user_op_hash])[final.user_op_hash] == 1
    assert nft.balanceOf(user.account) == 3


def test_a_displaced_intent_of_a_revoked_session_fails_for_that_reason(net, store, user, nft):
    record = dead_worker_records(store, net, user, "revoked-later")
    _overtake(net, user)
    store.mark_revoked(user.session_id)
    with worker(store, net) as w:
        report = w.recover(wait=30)
    reason = report.failed["revoked-later"]
    assert "can never land" in reason and "revoked" in reason, reason
    final = store.get_by_intent("revoked-later")
    assert final.state is OutboxState.FAILED and final.rebuilds == 0
    assert final.user_op_hash == record.user_op_hash
    assert nft.balanceOf(user.account) == 2


def test_a_session_revoked_while_its_displaced_intent_is_rebuilt_is_not_sent(
    net, store, user, nft, monkeypatch
):
    """The operator revokes the session after the worker built the displaced intent again and recorded it (here:
    right after the store swapped the records): the flag is read afresh before the rebuilt operation is first sent,
    so it is failed unsent and never lands (a revoked session acting through a rebuild)."""
    dead_worker_records(store, net, user, "rebuilt-revoked")
    _overtake(net, user)
    rebuild = store.rebuild_intent

    def rebuild_then_revoke(*args, **kwargs):
        rebuilt = rebuild(*args, **kwargs)
        store.mark_revoked(user.session_id)
        return rebuilt

    monkeypatch.setattr(store, "rebuild_intent", rebuild_then_revoke)
    with worker(store, net) as w:
        w.recover(wait=30)
    final = store.get_by_intent("rebuilt-revoked")
    assert final.state is OutboxState.FAILED and "revoked" in (final.error or ""), final
    assert final.rebuilds == 1 and final.sent_at is None
    assert nft.balanceOf(user.account) == 2  # the other operation's two mints only


def test_a_displaced_intent_of_an_expired_session_fails_without_leasing_a_lane(net, store, user, nft, chain):
    """The session's window closed before its displaced intent could be built again: the intent fails, naming the
    expiry, and the worker leased no lane for it (it once leased one, then built, then gave it back idle)."""
    dead_worker_records(store, net, user, "expired-later")
    _overtake(net, user)
    chain.pending_timestamp = chain.blocks.head.timestamp + 3_700  # the grant's hour is over
    chain.mine()
    with worker(store, net) as w:
        report = w.recover(wait=30)
        assert w.stats()["lanes_leased"] == 0, w.stats()
    reason = report.failed["expired-later"]
    assert "it cannot be built again" in reason and "expired" in reason, reason
    assert store.get_by_intent("expired-later").rebuilds == 0


def test_without_the_nodes_log_a_displaced_operation_cannot_be_proved_and_fails(net, store, user, nft):
    dead_worker_records(store, net, user, "unprovable")
    _overtake(net, user)
    with worker(store, net, events=None) as w:
        report = w.recover()
    assert "cannot name it" in report.failed["unprovable"]
    assert store.get_by_intent("unprovable").rebuilds == 0


def test_an_intent_displaced_again_and_again_is_failed_after_the_last_rebuild(net, store, user, nft, events):
    """An intent rebuilt MAX_REBUILDS times already (here by hand: each operation on a lane of its own) whose
    operation is displaced once more is not built again: it fails, naming the displacement."""
    record = dead_worker_records(store, net, user, "unlucky")
    session = net.session(user.grant, user.key)
    for lane in range(1, MAX_REBUILDS + 1):
        lease = store.lease_lane(user.account, user.session_id, "dead-worker", 30)
        assert lease.lane == lane
        op = session.build(user.mint(), lane=lane)
        record = store.rebuild_intent(
            "unlucky", record.user_op_hash, lane, op, events_hash(net, op), lease=lease
        )
    assert record.rebuilds == MAX_REBUILDS
    other = session.send(session.build([user.mint(), user.mint()], batch=True, lane=MAX_REBUILDS)).wait()
    with worker(store, net) as w:
        report = w.recover(wait=30)
    reason = report.failed["unlucky"]
    assert "0x" + other.user_op_hash.hex() in reason and f"displaced {MAX_REBUILDS + 1} times" in reason
    assert store.get_by_intent("unlucky").state is OutboxState.FAILED
    assert nft.balanceOf(user.account) == 2


def test_a_worker_that_loses_its_lane_before_recording_records_nothing(net, db, store, user, nft, events):
    """The worker is paused (here: its step hook sleeps) after building and signing, past its lease; another
    worker takes the lane and records an operation with the same nonce. The paused worker's record is
    fenced: it records nothing and sends nothing, and builds the intent again on a lane of its own."""
    other_store = open_store(db, kek=KEK)
    taken = []

    def pause(step: str, intent: str) -> None:
        if step == "signed" and intent == "slow" and not taken:
            time.sleep(0.4)  # past the 0.3 s lease
            taken.append(dead_worker_records(other_store, net, user, "other", lane=0))

    try:
        with worker(store, net, lease_ttl=0.3, on_step=pause) as w:
            w.send("warm-up", user.session_id, user.mint()).wait(30)  # creates the account
            sub = w.send("slow", user.session_id, user.mint())
            final = sub.wait(30)
            assert w.stats()["fenced"] == 1
            assert w.recover(wait=30).included == ["other"]
    finally:
        other_store.close()
    [other] = taken
    assert final.state is OutboxState.INCLUDED and final.rebuilds == 0 and final.lane == 1
    assert store.get_by_intent("other").state is OutboxState.INCLUDED and other.lane == 0
    hashes = [final.user_op_hash, other.user_op_hash]
    assert set(events.count(hashes).values()) == {1}
    assert nft.balanceOf(user.account) == 3


def test_a_new_lane_holder_finishes_the_previous_holders_operation_first(net, store, user, nft, events):
    orphan = dead_worker_records(store, net, user, "orphan-on-lane-0", ttl=0.5)
    time.sleep(0.7)  # the dead worker's lease expires: lane 0 is free to reclaim
    with worker(store, net) as w:
        sub = w.send("next", user.session_id, user.mint())
        # lane 0 carried the orphan: it is followed first, never built over (same nonce)
        assert sub.record.lane != 0 or sub.record.op.nonce > orphan.op.nonce
        assert sub.wait(30).state is OutboxState.INCLUDED
        assert w.drain(30)
        assert w.stats()["adopted"] == 1
    final = store.get_by_intent("orphan-on-lane-0")
    assert final.state is OutboxState.INCLUDED and final.user_op_hash == orphan.user_op_hash
    assert set(events.count([orphan.user_op_hash, sub.user_op_hash]).values()) == {1}
    assert nft.balanceOf(user.account) == 2


def test_only_lane_zero_creates_an_account(net, store, user, nft):
    """While the account has no code, its operations carry the factory call: only one may be in flight, so
    only lane 0 is used. Lane 0 is held by a (live) worker whose creating operation is recorded."""
    dead_worker_records(store, net, user, "creating", ttl=30)
    with worker(store, net, lane_timeout=1.0) as w:
        with pytest.raises(StoreLockedError, match="lane 0"):
            w.send("meanwhile", user.session_id, user.mint())
        assert store.get_by_intent("meanwhile") is None
        assert w.recover(wait=30).included == ["creating"]
        assert net.is_deployed(user.account)
        sub = w.send("meanwhile", user.session_id, user.mint())
        assert sub.record.lane == 1 and sub.wait(30).state is OutboxState.INCLUDED
    assert nft.balanceOf(user.account) == 2


def test_event_log_over_web3(net, store, user, events):
    with worker(store, net) as w:
        subs = [w.send(f"ev-{n}", user.session_id, user.mint()) for n in range(2)]
        records = [s.wait(30) for s in subs]
    found = events.find(records[1].user_op_hash)
    assert found is not None and found.sender == user.account and found.success
    assert found.tx_hash == records[1].tx_hash
    assert events.consumer_of(user.account, records[0].op.nonce).user_op_hash == records[0].user_op_hash
    assert events.find("0x" + "00" * 32) is None


# --------------------------------------------------------------------------------------------------
# The operator's CLI
# --------------------------------------------------------------------------------------------------


def test_cli_lists_sessions_and_the_outbox_and_revokes_in_the_store(net, db, store, user):
    with worker(store, net) as w:
        w.send("cli-1", user.session_id, user.mint()).wait(30)
    dead_worker_records(store, net, user, "cli-2", lane=0)
    runner = CliRunner()
    env = {"KEYSCOPE_STORE_KEK": KEK_HEX}

    listed = runner.invoke(cli, ["sessions", "--store", db, "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)["sessions"]
    assert [r["session_id"] for r in rows] == [user.session_id]
    assert rows[0]["status"] == "active" and rows[0]["marked_enabled"] is True and rows[0]["in_flight"] == 1
    assert rows[0]["source"] == "store" and rows[0]["time_left"] > 3000  # about an hour (by the wall clock)
    assert rows[0]["permissions"] == [
        f"call safeMint(address) on {user.nft.address}, where to must be {user.account}; no ETH"
    ]
    listing = runner.invoke(cli, ["sessions", "--store", db], env=env)
    assert listing.exit_code == 0, listing.output
    for column in ("session id", "status", "time left", "permissions", "in flight"):
        assert column in listing.output
    assert " left" in listing.output and "where to" in listing.output

    pending = runner.invoke(cli, ["outbox", "--store", db, "--state", "pending", "--json"], env=env)
    assert pending.exit_code == 0, pending.output
    assert [r["intent_id"] for r in json.loads(pending.output)] == ["cli-2"]

    table = runner.invoke(cli, ["outbox", "--store", db], env=env)
    assert table.exit_code == 0 and "cli-1" in table.output and "included" in table.output

    revoked = runner.invoke(cli, ["revoke", "--store", db, user.session_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert store.is_revoked(user.session_id)
    again = runner.invoke(cli, ["sessions", "--store", db, "--json"], env=env)
    assert json.loads(again.output)["sessions"][0]["status"] == "revoked"


def test_cli_errors_are_clear(db, store):
    runner = CliRunner()
    unknown = runner.invoke(cli, ["revoke", "--store", db, "0x" + "11" * 32])
    assert unknown.exit_code == 1 and "unknown session id 0x11111111…" in unknown.output, unknown.output
    bad_state = runner.invoke(cli, ["outbox", "--store", db, "--state", "lost"])
    assert bad_state.exit_code == 2 and "lost" in bad_state.output
    wrong_kek = runner.invoke(cli, ["sessions", "--store", db], env={"KEYSCOPE_STORE_KEK": "22" * 32})
    assert wrong_kek.exit_code == 1 and "does not open the keys" in wrong_kek.output
    bad_url = runner.invoke(cli, ["outbox", "--store", "nosuch://x"])
    assert bad_url.exit_code == 1 and "unknown store URL scheme" in bad_url.output
    half = runner.invoke(cli, ["revoke", "--store", db, "0x" + "11" * 32, "--node", "http://127.0.0.1:1"])
    assert half.exit_code == 2 and "--bundler" in half.output


def test_a_worker_refuses_an_operation_over_the_sessions_gas_budget_before_recording(
    net, harness, store, nft
):
    """README: the SDK refuses an operation over a limit before sending it (LimitExceededError); docs/scaling.md:
    a worker refuses what the SDK refuses before anything is recorded. A gas budget is counted on each operation's
    prefund, which only the built operation has: a worker that checked the calls alone recorded and handed the
    bundler an operation the module refuses (AA23 LimitExceeded), its lane held for it."""
    from keyscope.errors import LimitExceededError

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    mint = function_call(nft, "safeMint(address)", owner.account)
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    key = SessionKey.generate()
    grant = owner.grant(key, [policy], valid_for=3600, gas_budget=10**9)  # 1 gwei: no operation fits
    store.put_key(key)
    store.put_grant(grant)
    session = net.session(grant, key)
    with pytest.raises(LimitExceededError):
        session.build(mint)  # what the SDK refuses on its own path
    with worker(store, net) as w:
        with pytest.raises(LimitExceededError):
            w.send("over-budget", "0x" + grant.session_id.hex(), mint)
        assert w.stats().get("built", 0) == 0, w.stats()
    assert store.get_by_intent("over-budget") is None
    assert store.pending() == []


def test_a_worker_refuses_a_grant_the_module_no_longer_enables_before_recording(net, harness, store, nft):
    """README: two grants made off-chain to one key before either is used cannot both be; the second is refused when
    first used (PermissionAlreadyGranted, nothing sent). A worker checked the policy alone and built without the
    SDK's dry run of the enabling: it recorded the second grant's first operation and handed it to the bundler,
    which refused it (AA23), its intent failed. Refused before recording, the intent may be sent again once the
    owner revoked the first session."""
    from keyscope.errors import SessionError

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    mint = function_call(nft, "safeMint(address)", owner.account)
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    key = SessionKey.generate()
    first = owner.grant(key, [policy])
    second = owner.grant(key, [policy])  # nothing on chain yet: nothing to refuse
    store.put_key(key)
    store.put_grant(second)
    assert net.session(first, key).execute(nft, "safeMint(address)", owner.account).wait().success
    with worker(store, net) as w:
        with pytest.raises(SessionError, match="PermissionAlreadyGranted"):
            w.send("second", "0x" + second.session_id.hex(), mint)
        assert w.stats().get("built", 0) == 0, w.stats()
        assert store.get_by_intent("second") is None and store.pending() == []
        owner.revoke(first).wait()
        assert w.send("second", "0x" + second.session_id.hex(), mint).wait(30).success
