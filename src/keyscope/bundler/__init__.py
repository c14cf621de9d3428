"""Talking to ERC-4337 bundlers."""

from .client import BundlerClient, FeeTier
from .pending import PendingUserOperation, submit, wait_many
from .types import Bundler, FeeQuote, GasEstimate, UserOperationReceipt

__all__ = [
    "Bundler",
    "BundlerClient",
    "FeeQuote",
    "FeeTier",
    "GasEstimate",
    "PendingUserOperation",
    "UserOperationReceipt",
    "submit",
    "wait_many",
]
