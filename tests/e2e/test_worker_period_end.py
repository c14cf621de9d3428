"""A worker's batch over a limit period's end (attack 310): an operation counted in a period that has ended by the
wall clock while the chain has made no block since (or that ends within the bundler's margin) is refused with
:class:`~keyscope.errors.LimitPeriodEndingError`, which says the session goes on and to send again once the next
period has begun on chain. ``SessionWorker.send_many`` retries what is not refused for good: it must retry this too,
and the intent lands once a block is made, instead of being returned as refused for good."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscope import Policy, SessionKey, arg, connect, function_call
from keyscope.local import LocalStack
from keyscope.scale import Intent, SessionWorker
from keyscope.signing import LocalSigner
from keyscope.store import open_store

pytestmark = pytest.mark.e2e

PERIOD = 60
"""The shortest period the module takes."""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of its own: the test keeps the chain idle past a period's end."""
    with LocalStack() as stack:
        yield stack


def test_send_many_sends_again_once_the_chain_is_in_the_next_period(
    stack: LocalStack, tmp_path: Path
) -> None:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    mint = function_call(stack.nft, "safeMint(address)", owner.account)
    assert owner.execute(mint).wait().success
    boundary = max(stack.timestamp(), int(time.time())) + 3
    key = SessionKey.generate()
    policy = Policy.call(
        stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account], rate="5/minute"
    )
    grant = owner.grant(key, [policy], valid_after=boundary - PERIOD, valid_until=boundary + 3600)
    store = open_store(f"sqlite:///{tmp_path / 'keyscope.db'}", kek=bytes(range(32)))
    store.put_key(key)
    store.put_grant(grant)
    # the wall clock past the period's end, the chain idle since before it
    time.sleep(max(0.0, boundary + 1 - time.time()))
    assert stack.timestamp() < boundary
    # a block made a little later, as any other traffic on the chain would
    later = threading.Timer(3.0, stack.mine)
    later.start()
    try:
        with SessionWorker(store, net, poll_interval=0.05) as worker:
            result = worker.send_many([Intent("across", "0x" + grant.session_id.hex(), mint)], timeout=90)
    finally:
        later.cancel()
        later.join()
        store.close()
    assert not result.errors, result.errors
    assert [record.intent_id for record in result.included] == ["across"]
