"""A session's time window on a real anvil and Alto: not yet valid, valid, expired.

The window is a few seconds of real time: Alto judges windows by its wall clock and the EntryPoint by the
block's time, so moving anvil's clock alone would set the two apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keyscope import (
    BundlerRejectedError,
    Policy,
    SessionExpiredError,
    SessionKey,
    SessionNotYetValidError,
    arg,
    connect,
)
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.stack_clock import mine_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of its own, so that the blocks mined here do not disturb other tests."""
    with LocalStack() as stack:
        yield stack


def test_window_opens_and_closes_with_the_chains_clock(stack: LocalStack) -> None:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    start = max(stack.timestamp(), int(time.time()))
    key = SessionKey.generate()
    policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    # open from start + 4 (room to be refused first), until start + 18: Alto takes an operation only while its
    # window ends more than 5 s after Alto's clock, so the operation sent at start + 5 has 8 s to reach it
    grant = owner.grant(key, [policy], valid_after=start + 4, valid_until=start + 18)
    session = net.session(grant, key)

    with pytest.raises(SessionNotYetValidError):
        session.execute(stack.nft, "safeMint(address)", owner.account)
    assert not owner.is_deployed()  # refused before anything was sent

    mine_until(stack, start + 5)
    receipt = session.execute(stack.nft, "safeMint(address)", owner.account).wait()
    assert receipt.success

    mine_until(stack, start + 19)
    with pytest.raises(SessionExpiredError) as expired:
        session.execute(stack.nft, "safeMint(address)", owner.account)
    assert expired.value.session_id == "0x" + grant.session_id.hex()


@pytest.fixture
def idle_chain(stack: LocalStack) -> Iterator[int]:
    """The chain's clock nine minutes behind the wall clock, as on a local chain left idle (its latest block
    is old); put back afterwards. Yields how far behind it is."""
    behind = 540
    stack.node.request("evm_setTime", [hex(int(time.time()) - behind)])
    stack.mine()
    try:
        yield behind
    finally:
        stack.node.request("evm_setTime", [hex(int(time.time()))])
        stack.mine()


def test_a_duration_counts_on_the_wall_clock_when_the_chain_lags(stack: LocalStack, idle_chain: int) -> None:
    """A two-minute session on a chain whose latest block is nine minutes old: counted from that block, it
    would have expired by the bundler's clock before it was granted."""
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    assert stack.timestamp() <= time.time() - idle_chain + 5
    key = SessionKey.generate()
    policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.grant(key, [policy], valid_for=120)
    assert grant.valid_until >= time.time() + 110
    receipt = net.session(grant, key).execute(stack.nft, "safeMint(address)", owner.account).wait()
    assert receipt.success
    before = int(time.time())
    report = net.session(grant, key).status()
    after = int(time.time())
    # counted on the wall clock at the moment of asking (however long the operation took): at most 120 s
    assert report.status == "active" and before <= report.now <= after, (report.now, before, after)
    assert report.time_left == grant.valid_until - report.now <= 120


def test_the_bundlers_expires_too_soon_is_a_session_expired_error(stack: LocalStack) -> None:
    """Alto refuses an operation whose window ends within five seconds of its clock; the SDK's check, which
    has no such margin, lets it through, and the refusal is the session's expiry."""
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    key = SessionKey.generate()
    policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    # 4 s: under the bundler's 5 s margin, and as long as it can be, so that a slow machine still sends the
    # operation before the window ends (the SDK's own check would then refuse it first)
    grant = owner.grant(key, [policy], valid_for=4)
    with pytest.raises(SessionExpiredError) as expired:
        net.session(grant, key).execute(stack.nft, "safeMint(address)", owner.account)
    assert expired.value.session_id == "0x" + grant.session_id.hex()
    said = str(expired.value)  # a slow machine may send it after the window ended, by the bundler's clock
    assert ("too soon for the bundler" in said or "by the bundler's clock" in said) and str(
        grant.valid_until
    ) in said
    assert isinstance(expired.value.__cause__, BundlerRejectedError)


def test_a_session_over_by_the_bundlers_clock_is_said_to_have_expired_at_a_date(stack: LocalStack) -> None:
    """Sent without the SDK's check after its window ended, a session was refused as expiring "at 1796474005, too
    soon for the bundler (its clock reads 1796474007)": over already, and in bare unix seconds."""
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    key = SessionKey.generate()
    grant = owner.grant(key, [Policy.call(stack.nft, "safeMint(address to)")], valid_for=2)
    time.sleep(max(0.0, grant.valid_until - time.time()) + 1.5)
    with pytest.raises(SessionExpiredError) as expired:
        net.session(grant, key).execute(stack.nft, "safeMint(address)", owner.account, check=False)
    message = str(expired.value)
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(grant.valid_until))
    assert f"expired at {until} (unix {grant.valid_until}), by the bundler's clock (it reads 20" in message, (
        message
    )
    assert "too soon" not in message and message.endswith("ask the owner for a new session")
    assert isinstance(expired.value.__cause__, BundlerRejectedError)
