"""A bundler answering for another operation than the one the SDK sent: its userOpHash, or its receipt.

A bundler (hostile, or broken) can answer ``eth_sendUserOperation`` with the hash of another operation (an
earlier one of the same account that succeeded), and ``eth_getUserOperationReceipt`` with the receipt of
another operation. Either way the SDK would report the other operation's fate as this one's: an operation
never sent, or reverted, reported as landed. The SDK knows the hash of what it sent and the receipt must be
the receipt of that hash, of that sender and nonce.

A bundler can also make up a whole receipt of this very operation (its hash, sender and nonce, with ``success``
and a transaction of its choosing). Where the SDK has a node, the node's transaction receipt is the word: the
EntryPoint's ``UserOperationEvent`` of the operation must be in the transaction the receipt names, with the same
sender, nonce and success. Here the scripted server answers as the node too; the same against a real node and
bundler is in ``tests/e2e/test_receipts_against_the_node.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope.bundler import BundlerClient, PendingUserOperation
from keyscope.bundler.client import ETH_GET_USER_OPERATION_RECEIPT, ETH_SEND_USER_OPERATION
from keyscope.chain import RpcChain
from keyscope.endpoints import Endpoints
from keyscope.entrypoint import USER_OPERATION_EVENT_TOPIC
from keyscope.errors import (
    ReceiptContradictedError,
    ReceiptUnconfirmedError,
    TransportError,
    UserOperationFailedError,
    UserOperationTimeoutError,
)
from keyscope.hexutil import keccak
from keyscope.operations import OperationBuilder
from test_bundler_client import (
    BLOCK_HASH,
    ENTRY_POINT,
    SENDER,
    TX_HASH,
    USER_OP_HASH,
    ScriptedServer,
    alto_receipt,
    ok,
    scripted_bundler,
    sequence,
    user_op,
)

MODULE = "0x" + "5e" * 20
OTHER_HASH = keccak(b"an earlier operation of the same account, that succeeded")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_bundler() as scripted:
        yield scripted


@pytest.fixture
def builder(server: ScriptedServer) -> Iterator[OperationBuilder]:
    with BundlerClient(server.url, timeout=2.0) as bundler, RpcChain(server.url, timeout=2.0) as chain:
        yield OperationBuilder(
            Endpoints(chain=chain, bundler=bundler, module=MODULE, entry_point=ENTRY_POINT)
        )


def receipt_of(user_op_hash: bytes, **changes: Any) -> dict[str, Any]:
    """Alto's receipt of ``user_op_hash``, successful, with ``changes`` to its top-level fields."""
    receipt = alto_receipt()
    receipt["userOpHash"] = "0x" + user_op_hash.hex()
    receipt["nonce"] = hex(user_op().nonce)
    receipt.update(changes)
    return receipt


def node_transaction_receipt(
    user_op_hash: bytes,
    *,
    success: bool = True,
    sender: str = SENDER,
    nonce: int | None = None,
    gas_cost: int = 0x1C6BF52634000,
) -> dict[str, Any]:
    """The node's ``eth_getTransactionReceipt`` of the bundle ``TX_HASH`` (block 0x1a), holding a Transfer log of
    the operation's call and the EntryPoint's ``UserOperationEvent`` of ``user_op_hash``."""
    transfer = {
        "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "topics": ["0x" + keccak(b"Transfer(address,address,uint256)").hex()],
        "data": "0x",
        "logIndex": "0x0",
    }
    event = {
        "address": ENTRY_POINT.lower(),
        "topics": [
            "0x" + USER_OPERATION_EVENT_TOPIC.hex(),
            "0x" + user_op_hash.hex(),
            "0x" + bytes(12).hex() + sender[2:].lower(),
            "0x" + bytes(32).hex(),
        ],
        "data": "0x"
        + abi_encode(
            ["uint256", "bool", "uint256", "uint256"],
            [user_op().nonce if nonce is None else nonce, success, gas_cost, 0x2A3F1],
        ).hex(),
        "logIndex": "0x1",
    }
    for log in (transfer, event):
        log.update(
            blockNumber="0x1a", transactionHash="0x" + TX_HASH.hex(), blockHash="0x" + BLOCK_HASH.hex()
        )
    return {
        "transactionHash": "0x" + TX_HASH.hex(),
        "blockHash": "0x" + BLOCK_HASH.hex(),
        "blockNumber": "0x1a",
        "status": "0x1",
        "logs": [transfer, event],
    }


def test_a_send_answered_with_another_operations_hash_is_not_taken(
    server: ScriptedServer, builder: OperationBuilder
) -> None:
    op = user_op()
    mine = builder.user_op_hash(op)
    assert mine != OTHER_HASH
    server.on(ETH_SEND_USER_OPERATION, ok("0x" + OTHER_HASH.hex()))
    # the other operation's receipt says it succeeded: taking the bundler's hash would report this one landed
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(OTHER_HASH)))
    with pytest.raises(TransportError) as info:
        builder.send(op)
    message = str(info.value)
    assert "0x" + OTHER_HASH.hex() in message and "0x" + mine.hex() in message
    assert "may have been sent" in message
    assert info.value.method == ETH_SEND_USER_OPERATION
    assert len(server.calls(ETH_SEND_USER_OPERATION)) == 1


def test_a_send_answered_with_its_own_hash_is_pending_under_it(
    server: ScriptedServer, builder: OperationBuilder
) -> None:
    op = user_op()
    mine = builder.user_op_hash(op)
    server.on(ETH_SEND_USER_OPERATION, ok("0x" + mine.hex()))
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(mine)))
    server.on("eth_getTransactionReceipt", ok(node_transaction_receipt(mine)))
    pending = builder.send(op)
    assert pending.hash == mine
    receipt = pending.wait(timeout=5.0)
    assert receipt.user_op_hash == mine and receipt.success
    # the node (here the same scripted endpoint) was asked about the receipt's transaction
    assert server.calls("eth_getTransactionReceipt") == [["0x" + TX_HASH.hex()]]


def test_a_receipt_of_another_operation_is_refused(server: ScriptedServer) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(OTHER_HASH)))
    with (
        BundlerClient(server.url, timeout=2.0) as client,
        pytest.raises(TransportError, match="receipt of another operation") as info,
    ):
        client.get_user_operation_receipt(USER_OP_HASH)
    assert "0x" + OTHER_HASH.hex() in str(info.value) and "0x" + USER_OP_HASH.hex() in str(info.value)


def test_waiting_on_an_operation_never_takes_another_operations_receipt(server: ScriptedServer) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(OTHER_HASH)))
    with BundlerClient(server.url, timeout=2.0) as client:
        pending = PendingUserOperation(client, USER_OP_HASH, user_op())
        with pytest.raises(UserOperationTimeoutError) as info:
            pending.wait(timeout=0.5, poll=0.05, max_poll=0.1)
    assert isinstance(info.value.__cause__, TransportError)
    assert repr(pending).endswith("pending)")


@pytest.mark.parametrize(
    ("field", "value"),
    [("sender", "0x" + "ab" * 20), ("nonce", hex(user_op().nonce + 1))],
)
def test_a_receipt_of_this_hash_naming_another_sender_or_nonce_is_refused(
    server: ScriptedServer, field: str, value: str
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH, **{field: value})))
    with BundlerClient(server.url, timeout=2.0) as client:
        pending = PendingUserOperation(client, USER_OP_HASH, user_op())
        with pytest.raises(TransportError, match=f"receipt names another {field}"):
            pending.receipt()
        # the same receipt checked against the operation it describes is taken
        server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH)))
        found = pending.receipt()
    assert found is not None and found.sender == SENDER and found.nonce == user_op().nonce


# -- a receipt of this very operation, made up: the node's UserOperationEvent is the word (attack 239) ----------


def pending_with_node(client: BundlerClient, chain: RpcChain) -> PendingUserOperation:
    return PendingUserOperation(client, USER_OP_HASH, user_op(), node=chain, entry_point=ENTRY_POINT)


def test_a_made_up_receipt_whose_transaction_the_node_has_not_is_never_taken(server: ScriptedServer) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH)))
    server.on("eth_getTransactionReceipt", ok(None))
    with BundlerClient(server.url, timeout=2.0) as client, RpcChain(server.url, timeout=2.0) as chain:
        pending = pending_with_node(client, chain)
        with pytest.raises(ReceiptUnconfirmedError) as unconfirmed:
            pending.receipt()
        with pytest.raises(UserOperationTimeoutError) as info:
            pending.wait(timeout=0.5, poll=0.05, max_poll=0.1)
    assert repr(pending).endswith("pending)")
    assert "0x" + TX_HASH.hex() in str(unconfirmed.value) and "0x" + USER_OP_HASH.hex() in str(
        unconfirmed.value
    )
    assert isinstance(info.value.__cause__, ReceiptUnconfirmedError)
    assert "0x" + TX_HASH.hex() in str(info.value) and "made the receipt up" in str(info.value)
    assert len(server.calls("eth_getTransactionReceipt")) >= 2  # asked again while waiting


def test_a_receipt_the_node_confirms_a_little_later_is_taken_then(server: ScriptedServer) -> None:
    """A node behind the bundler: the receipt is retried until the node has its transaction."""
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH)))
    server.on(
        "eth_getTransactionReceipt", sequence(ok(None), ok(None), ok(node_transaction_receipt(USER_OP_HASH)))
    )
    with BundlerClient(server.url, timeout=2.0) as client, RpcChain(server.url, timeout=2.0) as chain:
        receipt = pending_with_node(client, chain).wait(timeout=5.0, poll=0.05, max_poll=0.1)
    assert receipt.success and receipt.transaction_hash == TX_HASH
    assert len(server.calls("eth_getTransactionReceipt")) == 3


@pytest.mark.parametrize(
    ("node_says", "problem"),
    [
        (node_transaction_receipt(USER_OP_HASH, success=False), "says its call reverted"),
        (node_transaction_receipt(OTHER_HASH), "holds no UserOperationEvent of it"),
        (node_transaction_receipt(USER_OP_HASH, sender="0x" + "ab" * 20), "names sender"),
        (node_transaction_receipt(USER_OP_HASH, nonce=user_op().nonce + 1), "names nonce"),
        ({**node_transaction_receipt(USER_OP_HASH), "status": "0x0", "logs": []}, r"reverted\) holds no"),
    ],
    ids=["reverted", "another-operation", "another-sender", "another-nonce", "bundle-reverted"],
)
def test_a_receipt_the_node_contradicts_is_refused_at_once(
    server: ScriptedServer, node_says: dict[str, Any], problem: str
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH)))  # success, in TX_HASH
    server.on("eth_getTransactionReceipt", ok(node_says))
    with BundlerClient(server.url, timeout=2.0) as client, RpcChain(server.url, timeout=2.0) as chain:
        pending = pending_with_node(client, chain)
        with pytest.raises(ReceiptContradictedError, match=problem) as info:
            pending.wait(timeout=30.0, poll=0.05, max_poll=0.1)
    assert (
        info.value.user_op_hash == "0x" + USER_OP_HASH.hex()
        and info.value.transaction_hash == "0x" + TX_HASH.hex()
    )
    assert "0x" + USER_OP_HASH.hex() in str(info.value) and "not to be trusted" in str(info.value)
    assert len(server.calls(ETH_GET_USER_OPERATION_RECEIPT)) == 1  # not waited on: the node's word is final


def test_the_nodes_figures_replace_the_bundlers(server: ScriptedServer) -> None:
    """The receipt returned carries the node's gas cost, block and logs, whatever the bundler said of them."""
    server.on(
        ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH, actualGasCost="0x1", blockNumber="0x99"))
    )
    server.on("eth_getTransactionReceipt", ok(node_transaction_receipt(USER_OP_HASH, gas_cost=12345)))
    with BundlerClient(server.url, timeout=2.0) as client, RpcChain(server.url, timeout=2.0) as chain:
        receipt = pending_with_node(client, chain).wait(timeout=5.0)
    assert receipt.actual_gas_cost == 12345 and receipt.block_number == 0x1A
    assert [log["logIndex"] for log in receipt.logs] == ["0x0"]  # the call's log, not the EntryPoint's event


def test_a_reverted_operation_the_node_confirms_is_reported_failed_with_the_nodes_reason(
    server: ScriptedServer,
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH, success=False)))
    server.on("eth_getTransactionReceipt", ok(node_transaction_receipt(USER_OP_HASH, success=False)))
    with BundlerClient(server.url, timeout=2.0) as client, RpcChain(server.url, timeout=2.0) as chain:
        pending = pending_with_node(client, chain)
        with pytest.raises(UserOperationFailedError):
            pending.wait(timeout=5.0)
        assert pending.wait(timeout=5.0, check=False).success is False
