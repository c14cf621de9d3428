"""Which kind of JSON-RPC endpoint a URL is, asked of the endpoint itself: an ERC-4337 bundler answers
``eth_supportedEntryPoints`` with a list, a node answers ``eth_getCode`` with hex. A hosted provider may serve both at
one URL; Alto, a bundler, serves no ``eth_getCode``, and a node serves no ``eth_supportedEntryPoints``.

:func:`swapped_or_misplaced` tells a node's URL and a bundler's given each in the other's place, so that
:func:`keyscope.connect` and the ``ape run`` scripts say so, naming where each URL goes, instead of failing later on a
method the endpoint does not serve."""

from __future__ import annotations

import re

from .errors import KeyscopeError
from .rpc import JsonRpcClient
from .urls import mask_url

__all__ = [
    "PROBE_TIMEOUT",
    "answers_as_bundler",
    "answers_as_node",
    "node_given_twice",
    "swapped_or_misplaced",
]

PROBE_TIMEOUT = 5.0
"""Seconds each question of this module waits for its answer (at most the caller's own timeout)."""

_ZERO_ADDRESS = "0x" + "00" * 20


def _answer(url: str, method: str, params: list[object], timeout: float) -> object:
    """``method``'s result at ``url``, or None when it has none to give: not an http(s) URL, unreachable, or a
    JSON-RPC error (a method the endpoint does not serve)."""
    if not re.match(r"^https?://", url, re.I):
        return None
    try:
        with JsonRpcClient(url, timeout=min(timeout, PROBE_TIMEOUT)) as client:
            return client.request(method, params)
    except KeyscopeError:
        return None


def answers_as_bundler(url: str, *, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``url`` (an http(s) URL) answers ``eth_supportedEntryPoints`` with a list, as an ERC-4337 bundler
    does and a node does not."""
    return isinstance(_answer(url, "eth_supportedEntryPoints", [], timeout), list)


def answers_as_node(url: str, *, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``url`` (an http(s) URL) answers ``eth_getCode`` with hex, as a node does and a bundler (Alto) does
    not."""
    code = _answer(url, "eth_getCode", [_ZERO_ADDRESS, "latest"], timeout)
    return isinstance(code, str) and code.startswith("0x")


def node_given_twice(
    node: str,
    bundler: str,
    *,
    node_name: str = "node",
    bundler_name: str = "bundler",
    timeout: float = PROBE_TIMEOUT,
) -> str | None:
    """What is wrong when ``bundler`` (given as ``bundler_name``) is the very URL given as ``node`` and a node's only:
    it answers ``eth_getCode`` and no ``eth_supportedEntryPoints``; None otherwise (a provider serving both at one URL).
    Asks nothing when the URLs differ."""
    if (
        node.strip() != bundler.strip()
        or answers_as_bundler(bundler, timeout=timeout)
        or not answers_as_node(node, timeout=timeout)
    ):
        return None
    return (
        f"the {bundler_name} given, {mask_url(bundler)}, is the URL given as the {node_name}, and it answers no "
        "eth_supportedEntryPoints: it is no ERC-4337 bundler"
    )


def swapped_or_misplaced(
    node: str,
    bundler: str,
    *,
    node_name: str = "node",
    bundler_name: str = "bundler",
    timeout: float = PROBE_TIMEOUT,
) -> str | None:
    """What is wrong when the URL given as the node (``node``, given as ``node_name``) is a bundler's and no node's:
    the two URLs swapped (``bundler`` answering as a node and not as a bundler), or the node's URL missing (a bundler
    given in its place); None when ``node`` is not a bundler's, or is also a node's (a provider serving both). The
    URLs are shown with their secrets masked. One question (``eth_supportedEntryPoints``) to ``node`` when it is a
    node's, as given; three more when it is not."""
    if not answers_as_bundler(node, timeout=timeout) or answers_as_node(node, timeout=timeout):
        return None
    shown_node, shown_bundler = mask_url(node), mask_url(bundler)
    if answers_as_node(bundler, timeout=timeout) and not answers_as_bundler(bundler, timeout=timeout):
        return (
            f"the node and the bundler look swapped: the {node_name} given, {shown_node}, is an ERC-4337 bundler "
            f"(it answers eth_supportedEntryPoints and no eth_getCode), and the {bundler_name} given, {shown_bundler}, "
            f"is a node (it answers eth_getCode and no eth_supportedEntryPoints): give {shown_bundler} as the "
            f"{node_name} and {shown_node} as the {bundler_name}"
        )
    return (
        f"the {node_name} given, {shown_node}, is an ERC-4337 bundler's URL, not a node's (it answers "
        f"eth_supportedEntryPoints and no eth_getCode): give the node's JSON-RPC URL as the {node_name}, and a "
        f"bundler's as the {bundler_name} (the {bundler_name} given is {shown_bundler})"
    )
