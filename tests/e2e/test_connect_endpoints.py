"""``connect(node, bundler, ...)`` given the bundler's URL as the node, against the real anvil and Alto: the two URLs
swapped, or the bundler's given twice. Once connect took them (or, with a factory, failed on the factory's read
saying only that the URL did not serve ``eth_call``, "the right endpoint" left to guess) and the first node read
failed the same way; it now says that they look swapped, and where each URL goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyscope import ConfigurationError, Policy, SessionKey, arg, connect
from keyscope.cli.browser import _Connection
from keyscope.hexutil import to_address
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.relay import Relay

pytestmark = pytest.mark.e2e

KEY = "SECRETKEY1234567890ab"


@pytest.mark.parametrize("with_factory", [False, True], ids=["module only", "with a factory"])
def test_connect_given_the_node_and_the_bundler_swapped_says_so_and_where_each_goes(
    local_stack: LocalStack, with_factory: bool
) -> None:
    """The bundler's URL first and the node's second (the node's with a key in its query, never shown)."""
    node, bundler = f"{local_stack.rpc_url}/?apikey={KEY}", local_stack.bundler_url
    options = {"factory": local_stack.factory} if with_factory else {}
    with pytest.raises(ConfigurationError) as info:
        connect(bundler, node, module=local_stack.module, **options)
    said = str(info.value)
    assert said.startswith("the node and the bundler look swapped: "), said
    shown_node = f"{local_stack.rpc_url}/?apikey=***"
    assert f"the node given, {bundler}, is an ERC-4337 bundler" in said, said
    assert f"the bundler given, {shown_node}, is a node" in said, said
    assert f"give {shown_node} as the node and {bundler} as the bundler" in said, said
    assert "connect(node, bundler, ...) takes the node's URL first and the bundler's second" in said, said
    assert KEY not in said


def test_connect_given_the_bundler_s_url_for_both_says_the_node_s_is_missing(local_stack: LocalStack) -> None:
    """Not swapped: no node at all. The message says the node's URL is a bundler's, and asks for a node's."""
    bundler = local_stack.bundler_url
    with pytest.raises(ConfigurationError) as info:
        connect(bundler, bundler, module=local_stack.module)
    said = str(info.value)
    assert f"the node given, {bundler}, is an ERC-4337 bundler's URL, not a node's" in said, said
    assert "give the node's JSON-RPC URL as the node" in said and "swapped" not in said, said


def test_connect_given_the_node_and_the_bundler_in_order_connects(local_stack: LocalStack) -> None:
    """The check costs the right order nothing but one question to the node, which it refuses."""
    net = connect(
        local_stack.rpc_url, local_stack.bundler_url, module=local_stack.module, factory=local_stack.factory
    )
    assert net.chain_id == local_stack.chain_id
    assert local_stack.entry_point in net.bundler.supported_entry_points()


@pytest.mark.parametrize("with_factory", [False, True], ids=["module only", "with the factory"])
def test_the_page_commands_take_the_deployments_files_entry_point(
    local_stack: LocalStack, tmp_path: Path, with_factory: bool
) -> None:
    """``keyscope consent`` and ``keyscope dashboard`` connected to the canonical EntryPoint v0.7 whatever EntryPoint
    the deployments file named, unless its factory told them another, where every other command takes the file's:
    with a file of EntryPoint v0.8 naming no factory, the owner's revocations were built and signed for the wrong
    EntryPoint, and failed at the bundler."""
    described = local_stack.describe()
    stack = {key: value for key, value in described.items() if key != "factory"}
    stack["entry_point"] = described["entry_point_v08"]
    if with_factory:
        stack["factory"] = described["factory_v08"]
    path = tmp_path / "stack-v08.json"
    path.write_text(json.dumps(stack))
    network = _Connection(str(path), None, None, None, None).network()
    assert network.entry_point == to_address(described["entry_point_v08"])


class _RecordingRelay(Relay):
    """A relay in front of the real Alto that keeps the name of every method asked of it."""

    def __init__(self, upstream: str) -> None:
        self.methods: list[str] = []
        super().__init__(upstream)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        self.methods.append(str(request.get("method")))
        return super().handle(request)


def test_a_session_on_a_node_and_a_bundler_of_two_chains_is_refused_before_anything_is_sent(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """``connect(node of chain B, bundler of chain A, ...)`` asked nothing up front, and the session's first operation
    went to the bundler to be estimated against chain A's state, signed for chain B: only the bundler's refusal
    (its simulation on the other chain) had the SDK ask both chain ids and name them. Now the bundler's chain is
    asked once, before the operation is estimated or sent, and the error names both chains; nothing reaches the
    bundler but that question (and eth_supportedEntryPoints)."""
    other_chain = local_stack.chain_id + 1
    with LocalStack(bundler=False, chain_id=other_chain, accounts=1, log_dir=tmp_path / "other") as other:
        node, relay = other.rpc_url, _RecordingRelay(local_stack.bundler_url)
        try:
            with connect(other.rpc_url, relay.url, module=other.module, factory=other.factory) as net:
                owner = net.owner(LocalSigner.generate())
                key = SessionKey.generate()
                grant = owner.grant(
                    key, [Policy.call(other.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
                )
                session = net.session(grant, key)
                for _ in range(2):  # the bundler's chain is asked once per network, and kept
                    with pytest.raises(ConfigurationError) as refused:
                        session.execute(other.nft, "safeMint(address)", owner.account)
        finally:
            relay.stop()
    assert relay.methods == ["eth_chainId"], relay.methods
    said = str(refused.value)
    assert said == (
        f"the bundler {relay.url} serves chain {local_stack.chain_id}, but the node {node} is chain "
        f"{other_chain}: nothing was sent to it; connect() a node and a bundler of the same chain"
    ), said
