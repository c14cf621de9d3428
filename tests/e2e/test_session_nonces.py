"""A session's nonces on a real anvil and Alto: operations sent in a row take consecutive nonces without
waiting for inclusion, and operations a bundler drops do not leave the lane stuck behind a nonce gap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyscope import Policy, SessionKey, arg, connect, function_call
from keyscope import session_account as session_account_module
from keyscope.local import LocalStack
from keyscope.rpc import JsonRpcClient
from keyscope.signing import LocalSigner

pytestmark = pytest.mark.e2e

SEQUENCE = 2**64 - 1


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of its own: this test switches Alto to manual bundling and kills it."""
    with LocalStack() as stack:
        yield stack


def test_dropped_operations_do_not_leave_a_nonce_gap(stack: LocalStack, monkeypatch) -> None:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    key = SessionKey.generate()
    policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.grant(key, [policy], valid_for=3600)
    session = net.session(grant, key)
    assert session.execute(stack.nft, "safeMint(address)", owner.account).wait().success  # created, enabled

    alto = JsonRpcClient(stack.bundler_url)
    assert alto.request("debug_bundler_setBundlingMode", ["manual"]) == "ok"
    first = session.execute(stack.nft, "safeMint(address)", owner.account)
    second = session.execute(stack.nft, "safeMint(address)", owner.account)
    assert second.op.nonce == first.op.nonce + 1  # counted locally: the first has not landed
    assert first.op.nonce & SEQUENCE == 1

    stack.restart_bundler(kill=True)  # the bundler dies with both in its mempool; the new one bundles at once
    # still within the trust period, the lane's local count stands (the two may yet land elsewhere)...
    assert (
        session.build(function_call(stack.nft, "safeMint(address)", owner.account)).nonce
        == second.op.nonce + 1
    )
    # ...past it, the chain's nonce is used again: the dropped ones are given up, no gap is left
    monkeypatch.setattr(session_account_module, "_PENDING_TRUST", 0.0)
    again = session.execute(stack.nft, "safeMint(address)", owner.account)
    assert again.op.nonce == first.op.nonce
    assert again.wait().success
    assert net.chain.get_nonce(net.entry_point, owner.account, again.op.nonce >> 64) & SEQUENCE == 2
