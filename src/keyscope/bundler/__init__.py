"""Talking to ERC-4337 bundlers."""

from .types import Bundler, FeeQuote, GasEstimate, UserOperationReceipt

__all__ = ["Bundler", "FeeQuote", "GasEstimate", "UserOperationReceipt"]
