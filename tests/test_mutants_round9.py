"""The ninth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in the code many workers share (the session stores, their key encryption, the nonce lanes) and in the services
a dapp runs beside the bundler (the sponsor and its budget ledger, the co-signer).

Pinned here, without a chain:

* each private key a SQL store seals has a nonce of its own: a leaked session key and the store's rows reveal no
  other key (AES-GCM under one nonce twice gives the XOR of two plaintexts, attack 359), and a sealed value of
  another format version is not opened as this one;
* a lane's lease is live to its last instant: no store hands its lane to a second worker before it expires
  (two live leases on one lane would build two operations on one nonce, attack 359);
* a file store's write that fails (a full disk) leaves the document it replaces as it was: a revocation that
  cannot be written loses no grant;
* a file store's key file is read only when its scrypt cost is one the store writes (a damaged or planted file
  asking 2**40 is refused, not tried), and only as the key of the address it is named for;
* a file store's nonce index does not hold a nonce for a record that failed, even one an older keyscope (which
  keeps no index) marked failed: the lane's next operation takes that nonce again;
* the sponsor's ledger, read back at a restart, counts a signature's reservation through the last second of its
  ``validUntil`` (the EntryPoint still pays it then, attack 360), and counts the reservations of its own paymaster
  and chain only; and a reservation that would pass the total budget for all accounts is refused, even while some
  of the total is left (attack 360);
  A release of more than was reserved gives back what was reserved, no more;
* the sponsorship digest of an EIP-7702 operation whose delegate is the zero address is refused, not made (the
  policy refuses such an operation first; the digest's own check holds for a direct call);
* a worker's lane being given back is offered to no send meanwhile (its lease is about to be free for another
  worker, attack 359); a lane's lease is renewed once a third of its time-to-live is past, and again right before
  an operation on it is recorded; a new lease's lane is read from the outbox as it is after the lease began, not
  from an older read (an unfinished operation recorded since would be missed, and a second one built on its
  nonce, attack 359);
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from eth_utils import keccak

from keyscope.errors import BadInputError, SessionStoreError
from keyscope.grant import SessionGrant
from keyscope.hexutil import to_address
from keyscope.scale import lanes as lanes_module
from keyscope.scale.lanes import LanePool, LaneSlot, PendingSnapshots
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from keyscope.sponsor import BudgetLedger, SponsorshipRefused
from keyscope.sponsor.paymaster_data import sponsorship_init_code_hash
from keyscope.store import FileStore, Lease, MemoryStore, SessionStore, SqlStore
from keyscope.store import document as document_module
from keyscope.store import sql as sql_module
from keyscope.store.crypto import KeyEncryptionKey
from keyscope.userop import UserOperation

KEK = bytes(range(32))
NONCE = slice(1, 13)
ACCOUNT = "0x" + "a1" * 20
SESSION = "0x" + "5e" * 32
KEY = (to_address(ACCOUNT), SESSION)
"""(account, session id) as the store normalises them, the key of a worker's lanes."""


class _Clock:
    """Stands for the ``time`` module of a store: ``time()`` is set by the test, the rest is the real module's."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(params=["memory", "file", "sqlite"])
def clocked_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SessionStore, _Clock]]:
    """A store of each kind whose clock the test sets (PostgreSQL's is the server's)."""
    clock = _Clock(1_000_000.0)
    module: ModuleType = sql_module if request.param == "sqlite" else document_module
    monkeypatch.setattr(module, "time", clock)
    store: SessionStore
    if request.param == "memory":
        store = MemoryStore()
    elif request.param == "file":
        store = FileStore(tmp_path / "store")
    else:
        store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    with store:
        yield store, clock


def test_each_sealed_key_has_a_nonce_of_its_own_so_one_leaked_key_reveals_no_other(tmp_path: Path) -> None:
    """Two keys sealed by a SQL store, and one key sealed twice, never share a nonce: under one AES-GCM nonce the XOR
    of two sealed keys is the XOR of the keys, so whoever holds one session key (a leaked one) and a copy of the
    rows would read every other key without the key-encryption key."""
    path = tmp_path / "store.db"
    signers = [LocalSigner.generate() for _ in range(2)]
    with SqlStore(f"sqlite:///{path}", kek=KEK) as store:
        for signer in signers:
            store.put_key(signer)
    with sqlite3.connect(path) as conn:
        sealed = [bytes(row[0]) for row in conn.execute("SELECT sealed FROM keyscope_keys ORDER BY address")]
    assert len(sealed) == 2 and sealed[0][NONCE] != sealed[1][NONCE]
    leaked = min(signers, key=lambda s: s.address).private_key
    other = max(signers, key=lambda s: s.address).private_key
    body = slice(13, 13 + 32)
    keystream_guess = bytes(a ^ b for a, b in zip(sealed[0][body], leaked, strict=True))
    assert bytes(a ^ b for a, b in zip(sealed[1][body], keystream_guess, strict=True)) != other

    kek = KeyEncryptionKey(KEK)
    first, second = kek.seal(leaked, b"row"), kek.seal(leaked, b"row")
    assert first[NONCE] != second[NONCE] and first != second
    assert kek.open(first, b"row") == kek.open(second, b"row") == leaked


def test_a_sealed_value_of_another_format_version_is_not_opened() -> None:
    """The first byte names the sealed value's format: a value of another version is not read as this one's."""
    kek = KeyEncryptionKey(KEK)
    sealed = kek.seal(b"\x11" * 32, b"row")
    assert kek.open(sealed, b"row") == b"\x11" * 32
    for version in (0, 2, 0xFF):
        assert kek.open(bytes([version]) + sealed[1:], b"row") is None


def test_a_lease_holds_its_lane_to_its_last_instant(clocked_store: tuple[SessionStore, _Clock]) -> None:
    """A lease of 10 s is live until its tenth second: half a second before, another worker gets another lane, not
    this one (two live leases on one lane would both build on its next nonce, and one operation is lost); at its
    expiry the lane is reclaimed."""
    store, clock = clocked_store
    held = store.lease_lane(ACCOUNT, SESSION, "first", 10)
    assert held.lane == 0
    clock.now += 9.5
    other = store.lease_lane(ACCOUNT, SESSION, "second", 60)
    assert other.lane == 1
    assert store.renew_lease(held, 0.25).lane == 0  # still held: it now ends at 9.75 s
    clock.now += 0.125
    assert store.lease_lane(ACCOUNT, SESSION, "third", 60).lane == 2
    clock.now += 0.125
    reclaimed = store.lease_lane(ACCOUNT, SESSION, "fourth", 60)
    assert (reclaimed.lane, reclaimed.worker_id) == (0, "fourth")


def _grant() -> SessionGrant:
    session = Session(
        session_key=LocalSigner.generate().address,
        permissions=(Permission(target="0x" + "7a" * 20, selector=b"\x12\x34\x56\x78", rules=()),),
    )
    return SessionGrant(
        session=session,
        account=ACCOUNT,
        module="0x" + "d4" * 20,
        chain_id=31337,
        entry_point="0x" + "e5" * 20,
        epoch=0,
        session_id=session.session_id(ACCOUNT, 0),
        how="offchain",
        owner_signature=b"\x01" * 65,
    )


class _FullDisk:
    """A file opened for writing on a full disk: nothing it is given is written."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_file_store_write_that_fails_leaves_the_document_it_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation written to a full disk fails, and the grant it would have rewritten is still there, whole and
    not revoked (a write in place would have emptied or removed the grant's file first: the session lost, its
    owner's signature with it)."""
    grant = _grant()
    with FileStore(tmp_path / "store") as store:
        store.put_grant(grant)
        files = {path: path.read_bytes() for path in (tmp_path / "store").rglob("*") if path.is_file()}
        with monkeypatch.context() as patched:
            patched.setattr(os, "fdopen", lambda fd, mode: _FullDisk(fd))
            with pytest.raises((OSError, SessionStoreError)):
                store.mark_revoked(grant.session_id)
        assert {path: path.read_bytes() for path in files} == files
        assert store.get_grant(grant.session_id) == grant
        assert store.is_revoked(grant.session_id) is False
        store.mark_revoked(grant.session_id)
        assert store.is_revoked(grant.session_id) is True


def test_a_nonce_of_a_record_an_older_writer_failed_is_free_again(tmp_path: Path) -> None:
    """A keyscope from before the nonce index marks a record failed by rewriting the record alone: the index still
    names it. Its nonce never landed, so the lane's next operation must be able to take it (refused, the lane would
    stay stuck on a nonce no operation can use)."""
    root = tmp_path / "store"
    op = UserOperation(sender=ACCOUNT, nonce=5, call_data=b"\x01", call_gas_limit=100_000)
    with FileStore(root) as store:
        store.record_intent("first", ACCOUNT, SESSION, 0, op, "0x" + "01" * 32)
    record = root / "outbox" / f"{hashlib.sha256(b'first').hexdigest()}.json"
    doc = json.loads(record.read_text())
    doc.update(state="failed", error="AA25 invalid account nonce")  # what the older writer changes
    record.write_text(json.dumps(doc))
    assert any((root / "nonces").iterdir())  # the index still names the failed record
    with FileStore(root) as store:
        again = op.replace(call_data=b"\x02")
        taken = store.record_intent("second", ACCOUNT, SESSION, 0, again, "0x" + "02" * 32)
        assert taken.intent_id == "second" and taken.op.nonce == 5


def test_a_restarted_ledger_counts_a_reservation_through_the_last_second_of_its_signature(
    tmp_path: Path,
) -> None:
    """The EntryPoint pays a sponsorship while the block's timestamp is at most its ``validUntil``: a ledger read back
    at that very second must still count the reservation (dropped, the restarted sponsor would sign the same budget
    again beside a signature the deposit still pays); a second later it is gone."""
    path = tmp_path / "ledger.sqlite"
    account = "0x" + "ac" * 20
    ledger = BudgetLedger(100, 1_000, path=path, scope="paymaster@1", now=1_000)
    ledger.reserve(account, 60, valid_until=2_000)
    ledger.close()
    for now, counted in ((1_999, 60), (2_000, 60), (2_001, 0)):
        again = BudgetLedger(100, 1_000, path=path, scope="paymaster@1", now=now)
        try:
            assert (again.reserved(account), again.reserved_total()) == (counted, counted), now
        finally:
            again.close()


def test_a_ledger_counts_the_reservations_of_its_own_paymaster_and_chain_only(tmp_path: Path) -> None:
    """One ledger file read by the service of another paymaster (or chain) counts none of the first one's
    reservations against its budgets, and the first's are still there for it."""
    path = tmp_path / "ledger.sqlite"
    account = "0x" + "ac" * 20
    ledger = BudgetLedger(100, 1_000, path=path, scope="paymaster@1", now=1_000)
    ledger.reserve(account, 70, valid_until=5_000)
    ledger.close()
    for scope, counted in (("paymaster@2", 0), ("other@1", 0), ("paymaster@1", 70)):
        again = BudgetLedger(100, 1_000, path=path, scope=scope, now=1_500)
        try:
            assert (again.reserved(account), again.remaining(account)) == (counted, 100 - counted), scope
        finally:
            again.close()


def test_a_reservation_past_the_total_budget_is_refused_while_some_of_it_is_left() -> None:
    """A total of 100 wei for every account: 60 for one account, then 60 more for another would be 120, past the
    total, so it is refused, though 40 are left; 40 fit exactly, and then nothing more does."""
    ledger = BudgetLedger(None, 100)
    first, second = "0x" + "a1" * 20, "0x" + "a2" * 20
    ledger.reserve(first, 60)
    with pytest.raises(SponsorshipRefused, match="40 wei left of its 100 wei total"):
        ledger.reserve(second, 60)
    assert (ledger.reserved(second), ledger.reserved_total()) == (0, 60)
    ledger.reserve(second, 40)
    assert ledger.remaining(second) == 0
    with pytest.raises(SponsorshipRefused):
        ledger.reserve(first, 1)


class _ReleasingStore(MemoryStore):
    """A store whose :meth:`release_lease` first lets the test act while a lane is being given back."""

    def __init__(self) -> None:
        super().__init__()
        self.while_releasing: list[LaneSlot] = []
        self.pool: LanePool | None = None

    def release_lease(self, lease: Lease) -> bool:
        if self.pool is not None and not self.while_releasing:
            self.while_releasing.append(self.pool.acquire(KEY, timeout=2))
        return super().release_lease(lease)


def test_a_lane_being_given_back_is_offered_to_no_send() -> None:
    """Upkeep gives back a lane idle for ``idle_seconds``: while the store releases its lease (then free for any
    worker to take), a send asking for a lane must get another one, not the lane on its way out (two workers would
    build on its next nonce, and one operation fails)."""
    store = _ReleasingStore()
    pool = LanePool(store, "worker", ttl=60, max_lanes=4, idle_seconds=0, adopt=lambda slot: None)
    store.pool = pool
    idle = pool.acquire(KEY, timeout=2)
    assert idle.lane == 0
    pool.unreserve(idle)
    time.sleep(0.01)
    pool.upkeep()
    assert [slot.lane for slot in store.while_releasing] == [1]
    assert idle.lost and pool.held() == 1


def test_a_release_of_more_than_was_reserved_gives_back_what_was_reserved() -> None:
    """Giving back more wei than an account holds reserved leaves it (and the total) at 0, never below: a negative
    reservation would widen the account's budget and the total past what the policy says."""
    ledger = BudgetLedger(100, 150)
    account = "0x" + "a1" * 20
    ledger.reserve(account, 10)
    ledger.release(account, 50)
    assert (ledger.reserved(account), ledger.reserved_total(), ledger.remaining(account)) == (0, 0, 100)
    with pytest.raises(SponsorshipRefused):
        ledger.reserve(account, 101)


class _Monotonic:
    """Stands for the ``time`` module of the lanes: ``monotonic()`` is set by the test, the rest is the real
    module's."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _CountingStore(MemoryStore):
    """A memory store that counts the renewals it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.renewals = 0

    def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease:
        self.renewals += 1
        return super().renew_lease(lease, ttl_seconds)


def test_a_lane_s_lease_is_renewed_a_third_into_its_time_to_live_and_before_a_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Upkeep renews a lease once a third of its time-to-live has passed since its last renewal (renewed later, a
    worker slowed down a little would lose it to another worker mid-send), and :meth:`LanePool.confirm` renews it
    right before an operation on the lane is recorded."""
    clock = _Monotonic()
    monkeypatch.setattr(lanes_module, "time", clock)
    store = _CountingStore()
    pool = LanePool(store, "worker", ttl=30, max_lanes=2, idle_seconds=3_600, adopt=lambda slot: None)
    slot = pool.acquire(KEY, timeout=1)
    clock.now += 9.9
    pool.upkeep()
    assert store.renewals == 0
    clock.now += 0.2
    pool.upkeep()
    assert store.renewals == 1 and slot.renewed_at == clock.now
    before = slot.lease.expires_at
    time.sleep(0.01)
    pool.confirm(slot)
    assert store.renewals == 2 and slot.lease.expires_at > before


def test_a_new_lease_reads_the_outbox_as_it_is_after_the_lease_began() -> None:
    """An operation recorded on a lane after the outbox was last read is seen by a lease granted after that: the
    read it is given began after the lease, not before (the older read would hide it, and the new holder build a
    second operation on its nonce)."""
    store = MemoryStore()
    snapshots = PendingSnapshots(store)
    account = to_address(ACCOUNT)
    assert snapshots.on_lane(account, SESSION, 0, moment=time.monotonic()) == []
    op = UserOperation(sender=account, nonce=0, call_data=b"\x01", call_gas_limit=100_000)
    store.record_intent("later", account, SESSION, 0, op, "0x" + "0c" * 32)
    time.sleep(0.001)
    found = snapshots.on_lane(account, SESSION, 0, moment=time.monotonic())
    assert [record.intent_id for record in found] == ["later"] and snapshots.reads == 2
    assert snapshots.on_lane(account, SESSION, 1, moment=0.0) == []  # an older lease: the last read serves it
    assert snapshots.reads == 2


def test_no_sponsorship_digest_covers_a_delegation_to_the_zero_address() -> None:
    """An EIP-7702 initCode whose delegate is the zero address clears the EOA's code: there is no delegate for a
    sponsorship to cover, and the digest is refused (the paymaster would refuse the operation,
    SenderNotEip7702Delegated); another delegate is hashed as EntryPoint v0.8 hashes it."""
    marker = bytes.fromhex("7702") + bytes(18)
    with pytest.raises(BadInputError, match="zero address"):
        sponsorship_init_code_hash(marker, "0x" + "00" * 20)
    delegate = "0x" + "de" * 20
    assert sponsorship_init_code_hash(marker, delegate) == keccak(bytes.fromhex("de" * 20))
    assert sponsorship_init_code_hash(marker, delegate) != sponsorship_init_code_hash(
        marker, "0x" + "df" * 20
    )


def _file_store_with_two_keys(root: Path) -> tuple[LocalSigner, LocalSigner]:
    signers = (LocalSigner.generate(), LocalSigner.generate())
    with FileStore(root, passphrase="correct horse", scrypt_n=2) as store:
        for signer in signers:
            store.put_key(signer)
    return signers


def test_a_key_file_asking_an_unbounded_scrypt_cost_is_refused_untried(tmp_path: Path) -> None:
    """A key file whose scrypt cost is past what the store writes (2**20) is damage or a trap: trying it would take
    unbounded time or memory from every worker that opens the key. It is refused, naming the parameters."""
    root = tmp_path / "store"
    first, _ = _file_store_with_two_keys(root)
    path = root / "keys" / f"{first.address}.json"
    keystore = json.loads(path.read_text())
    keystore["crypto"]["kdfparams"]["n"] = 2**40
    path.write_text(json.dumps(keystore))
    with (
        FileStore(root, passphrase="correct horse") as store,
        pytest.raises(SessionStoreError, match="scrypt parameters out of range: n=1099511627776"),
    ):
        store.get_key(first.address)


def test_a_key_file_holding_another_address_s_key_is_refused(tmp_path: Path) -> None:
    """A keystore file names no address the store binds it to: one copied over another key's file (a restore gone
    wrong, or a planted file) opens with the passphrase, and the store must refuse it rather than hand a worker the
    other key for this address."""
    root = tmp_path / "store"
    first, second = _file_store_with_two_keys(root)
    keys = root / "keys"
    (keys / f"{first.address}.json").write_bytes((keys / f"{second.address}.json").read_bytes())
    with FileStore(root, passphrase="correct horse") as store:
        with pytest.raises(SessionStoreError, match=f"holds the key of {second.address}"):
            store.get_key(first.address)
        assert store.get_key(second.address).address == second.address
