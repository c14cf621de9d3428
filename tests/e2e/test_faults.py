"""Faults against the real bundler: Alto killed and restarted around the SDK, 200 concurrent operations,
and a damaged session store.

Every test here runs on a stack of its own (anvil + Alto), so killing its bundler disturbs no other test.
What must hold:

* while the bundler is down, ``send`` raises :class:`~keyscope.errors.TransportError` and ``wait`` raises
  :class:`~keyscope.errors.UserOperationTimeoutError` caused by one: typed, never a hang or a bare httpx error;
* nothing is lost: the signed operation (kept by the caller, or in the store's outbox) can be sent again,
  under the same userOpHash, and it lands exactly once, counted from the EntryPoint's ``UserOperationEvent``
  logs on chain;
* 200 operations sent at once from several sessions, keys and nonce lanes each land exactly once;
* a damaged store file, or a wrong passphrase, gives a clear error and leaves every file byte for byte as
  it was.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode

from keyscope import (
    BundlerRejectedError,
    Policy,
    SessionKey,
    TransportError,
    UserOperationTimeoutError,
    arg,
    connect,
)
from keyscope.bundler.pending import PendingUserOperation
from keyscope.calls import function_call
from keyscope.entrypoint import USER_OPERATION_EVENT_TOPIC
from keyscope.errors import SessionStoreError, WrongPassphraseError
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import to_address
from keyscope.local import LocalStack
from keyscope.network import Network
from keyscope.owner import Owner
from keyscope.rpc import JsonRpcClient
from keyscope.session_account import SessionAccount
from keyscope.signing import LocalSigner
from keyscope.store import OutboxState, open_store
from keyscope.userop import UserOperation

pytestmark = pytest.mark.e2e

ETHER = 10**18
SAFE_MINT = "safeMint(address)"


# -- the stack, sessions and the chain's own count ------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(accounts=2) as local:
        yield local


@pytest.fixture(scope="module")
def net(stack: LocalStack) -> Network:
    return connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory, timeout=10.0)


def _owner(net: Network, stack: LocalStack) -> Owner:
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10 * ETHER)
    return owner


def _grant(owner: Owner, stack: LocalStack, key: SessionKey) -> Any:
    return owner.grant(
        key,
        [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])],
        valid_for=86_400,
    )


def _enabled(net: Network, stack: LocalStack, owner: Owner | None = None) -> tuple[Owner, SessionAccount]:
    """A session whose first operation (ENABLE, creating the account if needed) has landed."""
    owner = owner or _owner(net, stack)
    key = SessionKey.generate()
    session = net.session(_grant(owner, stack, key), key)
    session.execute(stack.nft, SAFE_MINT, owner.account).wait()
    return owner, session


def _expected_hash(stack: LocalStack, op: UserOperation) -> bytes:
    return user_op_hash_v07(op.pack(), stack.entry_point, stack.chain_id)


def _events(
    stack: LocalStack, from_block: int, senders: set[str] | None = None
) -> dict[bytes, list[dict[str, Any]]]:
    """UserOperationEvent logs of the EntryPoint since ``from_block``, by userOpHash (of ``senders`` only)."""
    found: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    if from_block > stack.block_number():
        return found
    logs = stack.node.request(
        "eth_getLogs",
        [
            {
                "address": stack.entry_point,
                "fromBlock": hex(from_block),
                "toBlock": "latest",
                "topics": ["0x" + USER_OPERATION_EVENT_TOPIC.hex()],
            }
        ],
    )
    for log in logs:
        sender = to_address("0x" + log["topics"][2][-40:])
        if senders is None or sender in senders:
            nonce, success, _cost, _used = abi_decode(
                ["uint256", "bool", "uint256", "uint256"], bytes.fromhex(log["data"][2:])
            )
            found[bytes.fromhex(log["topics"][1][2:])].append(
                {"sender": sender, "nonce": nonce, "success": success, "tx": log["transactionHash"]}
            )
    return found


def _landed_once(stack: LocalStack, from_block: int, user_op_hash: bytes) -> dict[str, Any]:
    events = _events(stack, from_block).get(user_op_hash, [])
    assert len(events) == 1, (
        f"UserOperation 0x{user_op_hash.hex()} has {len(events)} UserOperationEvents on chain"
    )
    assert events[0]["success"], events[0]
    return events[0]


def _nonce(net: Network, session: SessionAccount) -> int:
    """The next sequence number of the session's nonce lane (the low 64 bits of the EntryPoint nonce)."""
    key = session.nonce_key()
    return net.chain.get_nonce(net.entry_point, session.address, key) & (2**64 - 1)


@pytest.fixture
def bundler_back(stack: LocalStack) -> Iterator[None]:
    """Whatever a test does to Alto and anvil's mining, leave them as the next test expects."""
    yield
    stack.node.request("evm_setAutomine", [True])
    if not stack.running:
        stack.start_bundler()


# -- the bundler down, killed, restarted ------------------------------------------------------------------


def test_bundler_down_send_and_wait_raise_typed_errors_and_the_same_operation_lands_once_later(
    net: Network, stack: LocalStack, bundler_back: None
) -> None:
    owner, session = _enabled(net, stack)
    start = stack.block_number() + 1  # blocks from here on
    landed = session.execute(stack.nft, SAFE_MINT, owner.account)
    landed.wait()
    op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
    nonce = _nonce(net, session)

    stack.stop_bundler(kill=True)
    with pytest.raises(TransportError) as sending:
        session.send(op)
    assert sending.value.method == "eth_sendUserOperation"
    with pytest.raises(TransportError) as building:
        session.execute(stack.nft, SAFE_MINT, owner.account)
    # whichever bundler call comes first fails: the fee quote and the estimate may be reused from a moment ago
    assert building.value.method in (
        "pimlico_getUserOperationGasPrice",
        "eth_estimateUserOperationGas",
        "eth_sendUserOperation",
    )
    fresh = PendingUserOperation(net.bundler, landed.hash, landed.op)  # a receipt not fetched yet
    with pytest.raises(TransportError):
        fresh.receipt()
    began = time.monotonic()
    with pytest.raises(UserOperationTimeoutError) as waiting:
        fresh.wait(timeout=1.0)
    assert isinstance(waiting.value.__cause__, TransportError)
    assert time.monotonic() - began < 1.0 + 10.0  # bounded by the timeout plus one request timeout
    assert _nonce(net, session) == nonce and _expected_hash(stack, op) not in _events(stack, start)

    stack.start_bundler()
    pending = session.send(op)  # the very operation built before the outage
    assert pending.hash == _expected_hash(stack, op)
    receipt = pending.wait(timeout=30)
    assert receipt.success and receipt.user_op_hash == pending.hash
    _landed_once(stack, start, pending.hash)
    # sending it yet again is refused by the nonce, and it still landed once
    with pytest.raises(BundlerRejectedError) as again:
        session.send(op)
    assert again.value.reason == "AA25", again.value
    _landed_once(stack, start, pending.hash)
    assert _nonce(net, session) == nonce + 1


def test_bundler_killed_with_the_operation_in_its_mempool(
    net: Network, stack: LocalStack, bundler_back: None, tmp_path: Path
) -> None:
    """Alto keeps its mempool in memory: a crash loses the operation. The outbox still has it, and sending
    it again after the restart lands it once, under the same hash."""
    owner, session = _enabled(net, stack)
    start = stack.block_number() + 1  # blocks from here on
    nonce = _nonce(net, session)
    store = open_store(tmp_path / "outbox")
    with JsonRpcClient(stack.bundler_url) as alto:
        assert alto.request("debug_bundler_setBundlingMode", ["manual"]) == "ok"
        op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
        expected = _expected_hash(stack, op)
        store.record_intent("mint-1", session.address, session.grant.session_id, session.lane, op, expected)
        pending = session.send(op)
        assert pending.hash == expected
        store.mark_sent(expected)
        mempool = alto.request("debug_bundler_dumpMempool", [stack.entry_point])
        assert [to_address(m["sender"]) for m in mempool] == [session.address], mempool
        # the same operation again, while the bundler holds it: refused as a duplicate, not queued twice
        with pytest.raises(BundlerRejectedError, match=r"(?i)already known"):
            session.send(op)
        assert len(alto.request("debug_bundler_dumpMempool", [stack.entry_point])) == 1

    stack.stop_bundler(kill=True)
    with pytest.raises(UserOperationTimeoutError) as waiting:
        pending.wait(timeout=1.0)
    assert isinstance(waiting.value.__cause__, TransportError)
    store.close()

    stack.start_bundler()  # bundling automatically again
    assert net.bundler.get_user_operation_receipt(expected) is None
    assert net.bundler.get_user_operation_by_hash(expected) is None  # the mempool died with the process
    assert _nonce(net, session) == nonce and expected not in _events(stack, start)

    # Recovery, as a restarted worker would do it: what the outbox says is still pending goes out again.
    store = open_store(tmp_path / "outbox")
    [record] = store.pending()
    assert record.intent_id == "mint-1" and record.state is OutboxState.SENT and record.attempts == 1
    assert record.op == op and record.user_op_hash == "0x" + expected.hex()
    again = session.send(record.op)
    assert again.hash == expected
    store.mark_sent(expected)
    receipt = again.wait(timeout=30)
    store.mark_included(expected, receipt.transaction_hash, receipt.success)
    assert (
        pending.wait(timeout=5).transaction_hash == receipt.transaction_hash
    )  # the first handle sees it too
    _landed_once(stack, start, expected)
    assert store.get_by_hash(expected).state is OutboxState.INCLUDED  # type: ignore[union-attr]
    assert store.pending() == []
    store.close()


def test_bundler_killed_after_it_submitted_the_bundle(
    net: Network, stack: LocalStack, bundler_back: None
) -> None:
    """The bundle transaction is in the node's pool when Alto dies: it is mined anyway, the restarted Alto
    finds the receipt on chain, and sending the operation again cannot make it land twice."""
    owner, session = _enabled(net, stack)
    start = stack.block_number() + 1  # blocks from here on
    op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
    stack.node.request("evm_setAutomine", [False])
    pending = session.send(op)
    deadline = time.monotonic() + 20
    while int(stack.node.request("txpool_status")["pending"], 16) == 0:
        assert time.monotonic() < deadline, "Alto never submitted the bundle"
        time.sleep(0.02)
    stack.stop_bundler(kill=True)
    stack.node.request("evm_mine")
    stack.node.request("evm_setAutomine", [True])
    event = _landed_once(stack, start, pending.hash)
    assert event["sender"] == session.address

    stack.start_bundler()
    receipt = pending.wait(timeout=30)
    assert receipt.success and receipt.transaction_hash.hex() == event["tx"][2:]
    with pytest.raises(BundlerRejectedError) as again:
        session.send(op)
    assert again.value.reason == "AA25", again.value
    stack.mine()
    _landed_once(stack, start, pending.hash)


@dataclass
class _Stats:
    lock: threading.Lock
    counts: Counter[str]

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


def _retrying(action: Callable[[], Any], stats: _Stats, deadline: float) -> Any:
    """``action()``, again after a pause while the bundler cannot be reached."""
    while True:
        try:
            return action()
        except TransportError:
            stats.add("transport error (building)")
            assert time.monotonic() < deadline, "the bundler did not come back"
            time.sleep(0.1)


def _deliver(session: SessionAccount, op: UserOperation, stats: _Stats, deadline: float) -> bytes:
    """Send ``op`` until it lands, the way a careful caller recovers from a bundler crash: resend the same
    signed operation after a transport error or a receipt timeout; "already known" means the bundler has it;
    AA25 (nonce used) means it landed (verified on chain by the test)."""
    expected = user_op_hash_v07(op.pack(), session.network.entry_point, session.network.chain_id)
    while True:
        assert time.monotonic() < deadline, "the operation did not land in time"
        try:
            pending = session.send(op)
            assert pending.hash == expected
            stats.add("sent")
        except TransportError:
            stats.add("transport error (sending)")
            time.sleep(0.1)
            continue
        except BundlerRejectedError as error:
            # "already known" is about the (sender, nonce), not the hash: make sure it is this operation
            if (
                "already known" in error.rpc_message.lower()
                and session.network.bundler.get_user_operation_by_hash(expected)
            ):
                stats.add("already known")
                pending = PendingUserOperation(session.network.bundler, expected, op)
            elif error.reason == "AA25":
                stats.add("nonce used (landed)")
                return expected
            else:
                raise
        try:
            pending.wait(timeout=4.0)
            return expected
        except UserOperationTimeoutError:
            stats.add("receipt timeout")


def test_bundler_restarted_under_load(net: Network, stack: LocalStack, bundler_back: None) -> None:
    """Six workers (three sessions, two lanes each) send 30 operations while Alto is killed and restarted
    twice; every operation lands exactly once."""
    sessions = []
    for _ in range(3):
        _, session = _enabled(net, stack)
        sessions += [session, net.session(session.grant, session.key, lane=1)]
    start = stack.block_number() + 1  # blocks from here on
    per_worker = 5
    total = per_worker * len(sessions)
    stats = _Stats(threading.Lock(), Counter())
    done: list[bytes] = []
    done_lock = threading.Lock()
    deadline = time.monotonic() + 240

    def worker(session: SessionAccount) -> list[bytes]:
        hashes = []
        for _ in range(per_worker):
            op = _retrying(
                lambda: session.build(function_call(stack.nft, SAFE_MINT, session.address)), stats, deadline
            )
            hashes.append(_deliver(session, op, stats, deadline))
            with done_lock:
                done.append(hashes[-1])
        return hashes

    with ThreadPoolExecutor(len(sessions)) as pool:
        futures = [pool.submit(worker, s) for s in sessions]
        for threshold in (total // 3, 2 * total // 3):
            while len(done) < threshold and not any(f.done() for f in futures):
                time.sleep(0.02)
            stack.restart_bundler(kill=True)
            stats.add("restart")
        hashes = [h for f in futures for h in f.result()]

    assert len(set(hashes)) == total
    events = _events(stack, start, {s.address for s in sessions})
    assert set(events) == set(hashes), "an operation landed that no worker sent, or one is missing"
    assert all(len(events[h]) == 1 and events[h][0]["success"] for h in hashes), events
    for session in sessions:
        assert _nonce(net, session) == per_worker + (1 if session.lane == 0 else 0)
    assert stats.counts["restart"] == 2
    faults = sum(n for what, n in stats.counts.items() if what not in ("sent", "restart"))
    assert faults > 0, f"no worker noticed the restarts: {stats.counts}"
    print(f"\nrestarts under load: {dict(stats.counts)}")


# -- 200 concurrent operations ----------------------------------------------------------------------------


def test_200_concurrent_operations_land_exactly_once(
    net: Network, stack: LocalStack, bundler_back: None
) -> None:
    """Five sessions on four accounts (one account holds two session keys), four nonce lanes each: twenty
    threads, ten operations each, all at once. Each lane sends its next operation when the previous one
    landed (Alto queues one operation per lane, at most ten lanes per account).

    Each session's lanes start at a base lane derived from its id, so the two sessions of the first account
    use distinct lanes too."""
    owners = [_owner(net, stack) for _ in range(4)]
    sessions: list[SessionAccount] = []
    for owner in (*owners, owners[0]):
        _, session = _enabled(net, stack, owner)
        sessions += [net.session(session.grant, session.key, lane=lane) for lane in range(4)]
    assert len({s.key.address for s in sessions}) == 5 and len(sessions) == 20
    per_lane = 10
    start = stack.block_number() + 1  # blocks from here on
    nonces = {(s.address, s.nonce_key()): _nonce(net, s) for s in sessions}
    assert len(nonces) == 20  # no two threads share a nonce lane

    def lane(session: SessionAccount) -> list[tuple[bytes, UserOperation]]:
        sent = []
        for _ in range(per_lane):
            pending = session.execute(stack.nft, SAFE_MINT, session.address)
            assert pending.op is not None and pending.hash == _expected_hash(stack, pending.op)
            receipt = pending.wait(timeout=120)
            assert receipt.success and receipt.user_op_hash == pending.hash
            sent.append((pending.hash, pending.op))
        return sent

    began = time.monotonic()
    with ThreadPoolExecutor(len(sessions)) as pool:
        results = [h for batch in pool.map(lane, sessions) for h in batch]
    seconds = time.monotonic() - began

    hashes = [h for h, _ in results]
    assert len(hashes) == 200 and len(set(hashes)) == 200
    senders = {s.address for s in sessions}
    events = _events(stack, start, senders)
    counts = Counter({h: len(found) for h, found in events.items()})
    assert set(counts) == set(hashes), "an operation landed that no thread sent, or one is missing"
    assert set(counts.values()) == {1}, [h.hex() for h, n in counts.items() if n != 1]
    assert all(event["success"] for found in events.values() for event in found)
    for session in sessions:
        assert _nonce(net, session) == nonces[(session.address, session.nonce_key())] + per_lane
    blocks = stack.block_number() - start
    print(f"\n200 UserOperations from 20 threads (5 session keys, 4 lanes each) landed in {seconds:.1f} s "
          f"({200 / seconds:.1f} ops/s, {blocks} blocks)")  # fmt: skip


# -- the session store --------------------------------------------------------------------------------------

SCRYPT_N = 2**10  # cheap keystores: the checks are about damage, not cost


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def filled_store() -> Iterator[tuple[Path, list[LocalSigner]]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "sessions"
        keys = [LocalSigner.generate() for _ in range(3)]
        store = open_store(f"file://{root}", passphrase="correct horse", scrypt_n=SCRYPT_N)
        for index, key in enumerate(keys):
            store.put_key(key, label=f"key {index}")
        op = UserOperation(sender=keys[0].address, nonce=7, call_data=b"\x01\x02", signature=b"\x03" * 65)
        store.record_intent("intent-1", keys[0].address, b"\x11" * 32, 0, op, b"\x22" * 32)
        store.close()
        yield root, keys


def _reopen(root: Path, passphrase: str = "correct horse") -> Any:
    return open_store(f"file://{root}", passphrase=passphrase, scrypt_n=SCRYPT_N)


def test_wrong_passphrase_is_refused_and_nothing_is_touched(
    filled_store: tuple[Path, list[LocalSigner]],
) -> None:
    root, keys = filled_store
    before = _snapshot(root)
    with pytest.raises(WrongPassphraseError, match="passphrase does not open"):
        _reopen(root, "Correct horse")
    assert _snapshot(root) == before
    with _reopen(root) as store:
        assert store.get_key(keys[1].address).address == keys[1].address


def _damage_key(raw: bytes) -> list[tuple[str, bytes]]:
    keystore = json.loads(raw)
    flipped = dict(keystore, crypto=dict(keystore["crypto"]))
    text = flipped["crypto"]["ciphertext"]
    flipped["crypto"]["ciphertext"] = ("1" if text[0] == "0" else "0") + text[1:]
    costly = dict(
        keystore, crypto=dict(keystore["crypto"], kdfparams=dict(keystore["crypto"]["kdfparams"], n=2**30))
    )
    return [
        ("truncated", raw[: len(raw) // 2]),
        ("not JSON at all", b"\x00\xff garbage"),
        ("ciphertext changed", json.dumps(flipped).encode()),
        ("scrypt cost raised to 2**30", json.dumps(costly).encode()),
        ("empty", b""),
    ]


def test_corrupted_key_file_is_a_clear_error_and_left_as_is(
    filled_store: tuple[Path, list[LocalSigner]],
) -> None:
    root, keys = filled_store
    victim = root / "keys" / f"{keys[0].address}.json"
    original = victim.read_bytes()
    for what, damaged in _damage_key(original):
        victim.write_bytes(damaged)
        before = _snapshot(root)
        began = time.monotonic()
        with _reopen(root) as store:
            with pytest.raises(SessionStoreError, match=f"{victim.name}.* is corrupted .*left as is") as info:
                store.get_key(keys[0].address)
            assert not isinstance(info.value, WrongPassphraseError), what
            # the other keys are still there and readable
            assert store.get_key(keys[2].address).address == keys[2].address
        assert time.monotonic() - began < 10, f"{what}: the store spent {time.monotonic() - began:.1f}s on it"
        assert _snapshot(root) == before, what
    victim.write_bytes(original)
    with _reopen(root) as store:
        assert store.get_key(keys[0].address).address == keys[0].address


def test_corrupted_store_marker_and_outbox_are_clear_errors_and_left_as_is(
    filled_store: tuple[Path, list[LocalSigner]],
) -> None:
    root, _ = filled_store
    marker = root / "keyscope-store.json"
    original = marker.read_bytes()
    for damaged in (b"{", b"[]", json.dumps({"format": "something else"}).encode()):
        marker.write_bytes(damaged)
        before = _snapshot(root)
        for passphrase in ("correct horse", None):
            with pytest.raises(SessionStoreError, match=r"keyscope-store\.json.* is corrupted"):
                open_store(f"file://{root}", passphrase=passphrase, scrypt_n=SCRYPT_N)
        assert _snapshot(root) == before
    marker.write_bytes(original)

    [record] = list((root / "outbox").glob("*.json"))
    kept = record.read_bytes()
    record.write_bytes(kept[:-25])
    before = _snapshot(root)
    with _reopen(root) as store:
        for read in (
            lambda: store.get_by_intent("intent-1"),
            lambda: store.get_by_hash(b"\x22" * 32),
            lambda: store.pending(),
            lambda: store.mark_sent(b"\x22" * 32),
        ):
            with pytest.raises(SessionStoreError, match=f"{record.name}.* is corrupted"):
                read()
    assert _snapshot(root) == before
    record.write_bytes(kept)
    with _reopen(root) as store:
        [pending] = store.pending()
        assert pending.intent_id == "intent-1" and pending.state is OutboxState.BUILT
