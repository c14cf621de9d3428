"""That a command's node URL and bundler URL are a node and a bundler, of one chain, serving the EntryPoints the
command needs: asked before anything is done there, so that swapped or wrong URLs are said, naming both, rather
than met half-way (a bundler asked for a nonce, a node asked for an operation's receipt)."""

from __future__ import annotations

from collections.abc import Sequence

from ..endpoint_kinds import node_given_twice, swapped_or_misplaced
from ..errors import BundlerRejectedError, ConfigurationError
from ..hexutil import to_address
from ..network import Network, connect
from ..rpc import JsonRpcError
from ..urls import mask_url

__all__ = ["connect_node_and_bundler", "require_node_and_bundler"]


def connect_node_and_bundler(
    node_url: str,
    bundler_url: str,
    *,
    module: str,
    entry_point: str | None = None,
    factory: str | None = None,
    after: str = "",
) -> Network:
    """:func:`keyscope.connect` for a command's ``--node`` and ``--bundler``; a bundler's URL given as ``--node``
    (the two swapped, most often) is refused first, in the command's words (the options to give each URL), with
    ``after`` added (what was not done)."""
    misplaced = swapped_or_misplaced(node_url, bundler_url, node_name="--node", bundler_name="--bundler")
    if misplaced is not None:
        raise ConfigurationError(misplaced + after)
    twice = node_given_twice(node_url, bundler_url, node_name="--node", bundler_name="--bundler")
    if twice is not None:
        raise ConfigurationError(f"{twice}; give a bundler's URL to --bundler{after}")
    return connect(node_url, bundler_url, module=module, entry_point=entry_point, factory=factory)


def require_node_and_bundler(
    network: Network,
    node_url: str,
    bundler_url: str,
    *,
    entry_points: Sequence[str] = (),
    after: str = "",
) -> None:
    """Raise :class:`~keyscope.errors.ConfigurationError`, naming both URLs (their secrets masked), when
    ``bundler_url`` is no ERC-4337 bundler (it does not answer ``eth_supportedEntryPoints``: a node's URL, the
    two swapped, say), serves another chain than the node, or does not serve each of ``entry_points``; and when
    ``node_url`` is no node (it does not answer ``eth_getCode``: a bundler's URL) or has no code at those
    EntryPoints (with none given: at the first EntryPoint the bundler serves). The advice names the options
    ``--node`` and ``--bundler``; ``after`` is added to each message (what was not done). Asks the node for its chain id first:
    one that cannot be reached is said as such."""
    node_option, bundler_option = "--node", "--bundler"
    node, bundler = mask_url(node_url), mask_url(bundler_url)
    both = f"(node {node}, bundler {bundler})"
    chain_id = network.chain_id
    try:
        supported = [to_address(address) for address in network.bundler.supported_entry_points()]
    except BundlerRejectedError as exc:
        raise ConfigurationError(
            f"the bundler {bundler} does not answer eth_supportedEntryPoints ({_said(exc.code, exc.rpc_message)}), so "
            f"it is no ERC-4337 bundler: a node's URL, perhaps (the node given is {node}); give the bundler's URL as "
            f"{bundler_option} and the node's as {node_option}{after}"
        ) from None
    wanted = [to_address(address) for address in entry_points]
    if not wanted and not supported:
        raise ConfigurationError(
            f"the bundler {bundler} serves no EntryPoint (its eth_supportedEntryPoints is empty) {both}: give an "
            f"ERC-4337 bundler's URL as {bundler_option}{after}"
        )
    codes: dict[str, bytes] = {}
    for entry_point in wanted or supported[:1]:  # the first also asks whether the node is one
        try:
            codes[entry_point] = network.chain.get_code(entry_point)
        except JsonRpcError as exc:
            raise ConfigurationError(
                f"the node {node} does not answer eth_getCode ({_said(exc.code, exc.rpc_message)}), so it is no "
                f"node's JSON-RPC URL: a bundler's, perhaps (the bundler given is {bundler}); give the node's URL as "
                f"{node_option} and the bundler's as {bundler_option}{after}"
            ) from None
    served = network.bundler.chain_id()
    if served != chain_id:
        raise ConfigurationError(
            f"the bundler {bundler} serves chain {served}, but the node {node} is chain {chain_id}: give a node and "
            f"a bundler of the same chain ({node_option}, {bundler_option}){after}"
        )
    for entry_point in wanted:
        if entry_point not in supported:
            raise ConfigurationError(
                f"the bundler {bundler} serves the EntryPoints {', '.join(supported) or 'none'}, not {entry_point} "
                f"(chain {chain_id}, node {node}): give a bundler of that EntryPoint ({bundler_option}){after}"
            )
    missing = [entry_point for entry_point, code in codes.items() if not code]
    if missing:
        raise ConfigurationError(
            f"no EntryPoint at {', '.join(missing)} on chain {chain_id} {both}, though the bundler serves it: give "
            f"the node of the bundler's chain ({node_option}){after}"
        )


def _said(code: int, message: str | None) -> str:
    """A JSON-RPC error, its message cut short (a bundler may list every method it serves)."""
    text = " ".join((message or "").split())
    return f"JSON-RPC error {code}" + (f": {text[:80]}…" if len(text) > 80 else f": {text}" if text else "")
