"""``ape run status``'s node: given one (``--node``, ``--network`` as a URL, or the deployments file's ``rpc_url``),
a bundler's receipt is shown only once the node confirms it; without, it is shown as the bundler's word and said to
be. The node must be a node, of the bundler's chain. Against a real anvil and Alto, with a bundler that makes
receipts up: ``tests/e2e/test_scripts.py::test_status_shows_a_receipt_only_once_the_node_confirms_it``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscope.bundler import BundlerClient
from keyscope.bundler.client import ETH_GET_USER_OPERATION_RECEIPT
from keyscope.cli import operation_status, status_node, status_node_option
from keyscope.errors import BadInputError, ConfigurationError, ReceiptContradictedError
from test_bundler_client import ENTRY_POINT, TX_HASH, USER_OP_HASH, ScriptedServer, ok, scripted_bundler
from test_endpoint_answers_for_other_operations import OTHER_HASH, node_transaction_receipt, receipt_of

HASH = "0x" + USER_OP_HASH.hex()


@pytest.fixture
def bundler() -> Iterator[ScriptedServer]:
    with scripted_bundler() as scripted:
        scripted.on(ETH_GET_USER_OPERATION_RECEIPT, ok(receipt_of(USER_OP_HASH)))
        yield scripted


@pytest.fixture
def node() -> Iterator[ScriptedServer]:
    """A scripted node of chain 31337 (no bundler's methods)."""
    scripted = ScriptedServer()
    scripted.on("eth_chainId", ok("0x7a69"))
    try:
        yield scripted
    finally:
        scripted.stop()


def test_without_a_node_the_receipt_is_shown_as_the_bundlers_word(bundler: ScriptedServer) -> None:
    with BundlerClient(bundler.url, timeout=2.0) as client:
        assert status_node(client, None) is None
        status = operation_status(client, HASH)
    assert status.state == "included" and status.confirmed_by is None
    assert status.to_dict()["confirmed_by_node"] is False and status.to_dict()["node"] is None
    assert status.lines()[-1].startswith(
        "unconfirmed   the bundler's word only: no node was given to confirm it"
    )


def test_with_a_node_the_receipt_is_shown_once_the_node_confirms_it(
    bundler: ScriptedServer, node: ScriptedServer
) -> None:
    node.on("eth_getTransactionReceipt", ok(node_transaction_receipt(USER_OP_HASH, gas_cost=12345)))
    with BundlerClient(bundler.url, timeout=2.0) as client:
        status = operation_status(client, HASH, node=status_node(client, node.url, entry_point=ENTRY_POINT))
    assert status.receipt is not None and status.receipt.actual_gas_cost == 12345  # the node's figure
    assert status.to_dict()["confirmed_by_node"] is True and status.to_dict()["node"] == node.url
    assert status.lines()[-1].startswith(f"confirmed     by the node {node.url}")
    assert node.calls("eth_getTransactionReceipt")[0] == ["0x" + TX_HASH.hex()]


def test_a_receipt_the_node_contradicts_is_refused(bundler: ScriptedServer, node: ScriptedServer) -> None:
    node.on("eth_getTransactionReceipt", ok(node_transaction_receipt(OTHER_HASH)))
    with (
        BundlerClient(bundler.url, timeout=2.0) as client,
        pytest.raises(ReceiptContradictedError, match="holds no UserOperationEvent of it"),
    ):
        operation_status(client, HASH, node=status_node(client, node.url, entry_point=ENTRY_POINT))


def test_the_deployments_files_node_and_entry_point_are_used(
    bundler: ScriptedServer, node: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"rpc_url": node.url, "entry_point": ENTRY_POINT, "bundler_url": bundler.url}))
    with BundlerClient(bundler.url, timeout=2.0) as client:
        chosen = status_node(client, None, deployments_file=str(path))
    assert chosen is not None and chosen.url == node.url and chosen.entry_point.lower() == ENTRY_POINT.lower()


def test_a_node_of_another_chain_than_the_bundler_is_refused(
    bundler: ScriptedServer, node: ScriptedServer
) -> None:
    node.on("eth_chainId", ok("0x1"))
    with BundlerClient(bundler.url, timeout=2.0) as client, pytest.raises(ConfigurationError) as info:
        status_node(client, node.url)
    said = str(info.value)
    assert f"the bundler serves chain 31337, but the node {node.url} (--node) is chain 1" in said
    assert "give the node of the bundler's chain (--node)" in said


def test_a_bundlers_url_given_as_the_node_is_refused(bundler: ScriptedServer) -> None:
    with (
        scripted_bundler() as other,
        BundlerClient(bundler.url, timeout=2.0) as client,
        pytest.raises(ConfigurationError, match="--node") as info,
    ):
        status_node(client, other.url)
    assert other.url in str(info.value)


def test_the_network_option_is_the_node_when_it_is_a_url() -> None:
    url = "http://127.0.0.1:8545"
    assert status_node_option(None, url) == url
    assert status_node_option(url, url) == url
    assert status_node_option(url, None) == url
    said: list[str] = []

    class Say:
        def say(self, line: str) -> None:
            said.append(line)

    assert status_node_option(None, "ethereum:local:foundry", Say()) is None  # type: ignore[arg-type]
    assert said == [
        "note: status does not connect through ape: --network ethereum:local:foundry is not used; give the node's "
        "URL with --node to have the receipt confirmed at the node"
    ]
    with pytest.raises(BadInputError, match="name two nodes: give the node's URL once"):
        status_node_option(url, "http://127.0.0.1:9")
