"""A bare ``eth_call`` on the test chain, for the state machines and probes that call the module as an account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["raw_call"]


def raw_call(chain: Any) -> Callable[[dict[str, Any]], Any]:
    """``eth_call`` of a transaction dict: py-evm's tester itself on ape's local chain (no ape round trip per
    call), else the provider's web3."""
    provider = chain.provider
    tester = getattr(getattr(provider, "tester", None), "ethereum_tester", None)
    call: Callable[[dict[str, Any]], Any] = tester.call if tester is not None else provider.web3.eth.call
    return call
