"""The EntryPoint's ``UserOperationEvent`` has one decoder, :func:`keyscope.entrypoint.decode_user_operation_event`:
the SDK's receipts confirmed at the node (``outcome_in_logs``), the in-process bundler's receipts
(``decode_user_operation_events``) and the workers' event log (``keyscope.scale.events``) read an event alike, in the
JSON-RPC form and in web3.py's, and refuse one they cannot decode with a clear error rather than eth_abi's own."""

from __future__ import annotations

from typing import Any

import pytest
from hexbytes import HexBytes

from keyscope.bundler import BundlerClient, PendingUserOperation
from keyscope.bundler.client import ETH_GET_USER_OPERATION_RECEIPT
from keyscope.chain import RpcChain
from keyscope.entrypoint import (
    USER_OPERATION_EVENT_TOPIC,
    decode_user_operation_event,
    decode_user_operation_events,
    outcome_in_logs,
)
from keyscope.errors import TransportError
from keyscope.scale.events import parse_event
from test_bundler_client import ENTRY_POINT, SENDER, TX_HASH, USER_OP_HASH, ok, scripted_bundler, user_op
from test_endpoint_answers_for_other_operations import node_transaction_receipt, receipt_of

PAYMASTER = "0x" + "7a" * 20


def _event_log(**changes: Any) -> dict[str, Any]:
    """The node's log of the ``UserOperationEvent`` of ``USER_OP_HASH`` (paid by ``PAYMASTER``), JSON-RPC form."""
    log: dict[str, Any] = dict(node_transaction_receipt(USER_OP_HASH, gas_cost=12345)["logs"][1])
    topics = list(log["topics"])
    topics[3] = "0x" + bytes(12).hex() + PAYMASTER[2:]
    log["topics"] = topics
    log.update(changes)
    return log


def _web3_form(log: dict[str, Any]) -> dict[str, Any]:
    """``log`` as web3.py gives it: topics, data and hashes as HexBytes, quantities as ints."""
    return {
        **log,
        "topics": [HexBytes(topic) for topic in log["topics"]],
        "data": HexBytes(log["data"]),
        "transactionHash": HexBytes(log["transactionHash"]),
        "blockNumber": int(log["blockNumber"], 16),
        "logIndex": int(log["logIndex"], 16),
    }


def test_the_workers_event_log_and_the_sdks_receipts_read_one_event_alike() -> None:
    log = _event_log()
    expected = decode_user_operation_event(
        [bytes.fromhex(topic[2:]) for topic in log["topics"]], bytes.fromhex(log["data"][2:])
    )
    assert expected.user_op_hash == USER_OP_HASH and expected.sender == SENDER
    assert expected.nonce == user_op().nonce and expected.success and expected.actual_gas_cost == 12345
    assert expected.paymaster is not None and expected.paymaster.lower() == PAYMASTER
    for form in (log, _web3_form(log)):
        event = parse_event(form)
        outcome = outcome_in_logs([form], ENTRY_POINT, USER_OP_HASH)
        assert outcome is not None
        receipts = decode_user_operation_events([form], ENTRY_POINT)
        fields = receipts[USER_OP_HASH]
        read = {
            "worker": (event.sender, event.paymaster, event.nonce, event.success, event.actual_gas_cost,
                       event.actual_gas_used),
            "sdk": (outcome.event.sender, outcome.event.paymaster, outcome.event.nonce, outcome.event.success,
                    outcome.event.actual_gas_cost, outcome.event.actual_gas_used),
            "in-process bundler": (fields["sender"], fields["paymaster"], fields["nonce"], fields["success"],
                                   fields["actualGasCost"], fields["actualGasUsed"]),
        }  # fmt: skip
        assert set(read.values()) == {
            (expected.sender, expected.paymaster, expected.nonce, True, 12345, expected.actual_gas_used)
        }, read
        assert event.user_op_hash == "0x" + USER_OP_HASH.hex() and event.tx_hash == "0x" + TX_HASH.hex()
        assert (event.block_number, event.log_index) == (0x1A, 1)


def test_a_log_that_is_not_the_event_is_refused_naming_its_topics() -> None:
    transfer = node_transaction_receipt(USER_OP_HASH)["logs"][0]
    with pytest.raises(
        TransportError, match="the node returned a log that is not a UserOperationEvent: topics"
    ):
        parse_event(transfer)
    with pytest.raises(ValueError, match="not a UserOperationEvent: topics"):
        decode_user_operation_event([USER_OPERATION_EVENT_TOPIC, USER_OP_HASH], b"")


def test_an_event_whose_data_is_cut_short_is_a_clear_error_in_the_worker_and_the_sdk() -> None:
    """Once eth_abi's ``InsufficientDataBytes`` from both decoders: out of the worker's log reading (which handles
    keyscope's errors) and out of ``wait()`` as an unexpected error."""
    cut = _event_log(data=_event_log()["data"][:66])  # one word of the four
    with pytest.raises(TransportError, match="a UserOperationEvent log it cannot decode") as info:
        parse_event(cut)
    assert "is not its four words" in str(info.value) and "32 bytes" in str(info.value)
    node_says = {**node_transaction_receipt(USER_OP_HASH), "logs": [cut]}
    with scripted_bundler() as server:
        server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH)))
        server.on("eth_getTransactionReceipt", ok(node_says))
        with BundlerClient(server.url, timeout=2.0) as client, RpcChain(server.url, timeout=2.0) as chain:
            pending = PendingUserOperation(
                client, USER_OP_HASH, user_op(), node=chain, entry_point=ENTRY_POINT
            )
            with pytest.raises(
                TransportError, match="with an EntryPoint log it cannot decode: a UserOperationEvent"
            ):
                pending.receipt()
