"""A bundler's receipt is believed only as far as the node bears it out.

``eth_getUserOperationReceipt`` is the bundler's word. A bundler (hostile, or broken) can make up a whole receipt
for the right userOpHash, sender and nonce: ``success`` and a transaction hash of its own invention, for an
operation it never sent, or ``success`` for one whose call reverted on chain. The SDK's ``wait()`` asks the node
for the transaction the receipt names, and takes the receipt only when the EntryPoint's ``UserOperationEvent`` of
the operation is in it with the same sender, nonce and success.

Here a real node (anvil) and a real bundler (Alto) run, and the SDK talks to Alto through a small HTTP relay
that passes every request on and, where a test says so, answers in Alto's place or changes Alto's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyscope import (
    ReceiptContradictedError,
    ReceiptUnconfirmedError,
    UserOperationFailedError,
    UserOperationTimeoutError,
    connect,
)
from keyscope.calls import function_call
from keyscope.hexutil import keccak
from keyscope.local import LocalStack
from keyscope.network import Network
from keyscope.owner import Owner
from keyscope.signing import LocalSigner
from support.relay import Relay, made_up_receipt

pytestmark = pytest.mark.e2e

ETHER = 10**18
SAFE_MINT = "safeMint(address)"


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The test process's ``local_stack``, shared with the other files that use it: each test funds a new owner's
    account there, and the relay in front of the bundler is this file's own."""
    yield local_stack


@pytest.fixture(scope="module")
def relay(stack: LocalStack) -> Iterator[Relay]:
    relay = Relay(stack.bundler_url)
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def net(stack: LocalStack, relay: Relay) -> Iterator[Network]:
    relay.honest()
    yield connect(stack.rpc_url, relay.url, module=stack.module, factory=stack.factory, timeout=10.0)
    relay.honest()


@pytest.fixture
def owner(net: Network, stack: LocalStack) -> Owner:
    """An owner whose account exists: its first operation (creating it and minting) landed through the relay
    passing everything on: a genuine receipt is taken, as the node has it."""
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10 * ETHER)
    receipt = owner.execute(function_call(stack.nft, SAFE_MINT, owner.account)).wait(60.0)
    assert receipt.success and receipt.sender == owner.account
    on_chain = stack.node.request("eth_getTransactionReceipt", ["0x" + receipt.transaction_hash.hex()])
    assert int(on_chain["blockNumber"], 16) == receipt.block_number
    return owner


def test_a_receipt_invented_for_an_operation_never_sent_is_not_believed(
    net: Network, relay: Relay, stack: LocalStack, owner: Owner
) -> None:
    """The bundler says it took the operation and answers a successful receipt in a transaction it made up; the
    operation was never sent. ``wait()`` finds no such transaction at the node and times out: never a success."""
    op = owner.build(function_call(stack.nft, SAFE_MINT, owner.account))
    mine = net.user_op_hash(op)
    made_up = keccak(b"a bundle transaction no node has")
    relay.answers["eth_sendUserOperation"] = lambda request: "0x" + mine.hex()
    relay.answers["eth_getUserOperationReceipt"] = lambda request: made_up_receipt(
        mine, op.sender, op.nonce, made_up, stack.block_number(), entry_point=net.entry_point
    )
    pending = owner.send(op)
    with pytest.raises(UserOperationTimeoutError) as info:
        pending.wait(timeout=2.0)
    assert isinstance(info.value.__cause__, ReceiptUnconfirmedError)
    message = str(info.value)
    assert "0x" + mine.hex() in message and "0x" + made_up.hex() in message
    assert "made the receipt up" in message
    # what the chain says: the operation's nonce was never used
    assert net.chain.get_nonce(net.entry_point, owner.account, op.nonce >> 64) == op.nonce


def test_a_receipt_invented_in_another_operations_transaction_is_refused(
    net: Network, relay: Relay, stack: LocalStack, owner: Owner
) -> None:
    """The made-up receipt names a real transaction (the account's first operation's): the node has it, and it
    holds no UserOperationEvent of this operation, so ``wait()`` refuses at once."""
    first = owner.execute(function_call(stack.nft, SAFE_MINT, owner.account)).wait(60.0)
    op = owner.build(function_call(stack.nft, SAFE_MINT, owner.account))
    mine = net.user_op_hash(op)
    relay.answers["eth_sendUserOperation"] = lambda request: "0x" + mine.hex()
    relay.answers["eth_getUserOperationReceipt"] = lambda request: made_up_receipt(
        mine, op.sender, op.nonce, first.transaction_hash, first.block_number, entry_point=net.entry_point
    )
    with pytest.raises(ReceiptContradictedError, match="holds no UserOperationEvent of it") as info:
        owner.send(op).wait(timeout=30.0)
    assert info.value.user_op_hash == "0x" + mine.hex()
    assert info.value.transaction_hash == "0x" + first.transaction_hash.hex()
    assert net.chain.get_nonce(net.entry_point, owner.account, op.nonce >> 64) == op.nonce


def test_a_reverted_operation_reported_as_succeeded_is_not_believed(
    net: Network, relay: Relay, stack: LocalStack, owner: Owner
) -> None:
    """A real operation whose call runs out of gas (its callGasLimit cut below what the mint needs) lands with
    ``success`` false; the bundler's receipt says true (the reason dropped). ``wait()`` reads the node's event."""
    built = owner.build(function_call(stack.nft, SAFE_MINT, owner.account))
    starved = built.replace(call_gas_limit=20_000)
    op = starved.replace(
        signature=owner.kind.owner_user_op_signature(owner.signer.sign_hash(net.user_op_hash(starved)))
    )

    def succeeded(receipt: dict[str, Any]) -> dict[str, Any]:
        return {**receipt, "success": True, "reason": "0x"}

    relay.changes["eth_getUserOperationReceipt"] = succeeded
    pending = owner.send(op)
    with pytest.raises(ReceiptContradictedError, match="the node's event says its call reverted") as info:
        pending.wait(timeout=60.0)
    assert info.value.user_op_hash == pending.hex_hash
    # the same operation asked of the bundler as it is: the node's word, a revert, and the operation's nonce used
    relay.honest()
    with pytest.raises(UserOperationFailedError):
        pending.wait(timeout=60.0)
    assert net.chain.get_nonce(net.entry_point, owner.account, op.nonce >> 64) == op.nonce + 1
