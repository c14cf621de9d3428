"""A bundler answering for another operation than the one the SDK sent: its userOpHash, or its receipt.

A bundler (hostile, or broken) can answer ``eth_sendUserOperation`` with the hash of another operation (an
earlier one of the same account that succeeded), and ``eth_getUserOperationReceipt`` with the receipt of
another operation. Either way the SDK would report the other operation's fate as this one's: an operation
never sent, or reverted, reported as landed. The SDK knows the hash of what it sent and the receipt must be
the receipt of that hash, of that sender and nonce.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyscope.bundler import BundlerClient, PendingUserOperation
from keyscope.bundler.client import ETH_GET_USER_OPERATION_RECEIPT, ETH_SEND_USER_OPERATION
from keyscope.chain import RpcChain
from keyscope.endpoints import Endpoints
from keyscope.errors import TransportError, UserOperationTimeoutError
from keyscope.hexutil import keccak
from keyscope.operations import OperationBuilder
from test_bundler_client import (
    ENTRY_POINT,
    SENDER,
    USER_OP_HASH,
    ScriptedServer,
    alto_receipt,
    ok,
    scripted_bundler,
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
    pending = builder.send(op)
    assert pending.hash == mine
    receipt = pending.wait(timeout=5.0)
    assert receipt.user_op_hash == mine and receipt.success


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
