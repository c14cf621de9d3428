"""A bare ``eth_call`` on the test chain, for the state machines and probes that call the module as an account,
and the revert data of one that failed."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from keyscope.bundler.inprocess import revert_data_of

__all__ = ["raw_call", "revert_bytes"]


def raw_call(chain: Any) -> Callable[[dict[str, Any]], Any]:
    """``eth_call`` of a transaction dict: py-evm's tester itself on ape's local chain (no ape round trip per
    call), else the provider's web3."""
    provider = chain.provider
    tester = getattr(getattr(provider, "tester", None), "ethereum_tester", None)
    call: Callable[[dict[str, Any]], Any] = tester.call if tester is not None else provider.web3.eth.call
    return call


def revert_bytes(error: Exception) -> bytes:
    """The revert data of a failed ``eth_call``: eth-tester gives the bytes' repr as the message."""
    raw = revert_data_of(error)
    if raw is not None:
        return raw
    text = str(error.args[0]) if error.args else ""
    if text.startswith(("b'", 'b"')):
        value = ast.literal_eval(text)
        if isinstance(value, bytes):
            return value
    raise error
