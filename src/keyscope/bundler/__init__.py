"""Talking to ERC-4337 bundlers."""

from .client import BundlerClient, FeeTier
from .pending import PendingUserOperation, TransactionReceipts, submit, wait_many
from .types import Bundler, FeeQuote, GasEstimate, UserOperationReceipt

__all__ = [
    "Bundler",
    "BundlerClient",
    "FeeQuote",
    "FeeTier",
    "GasEstimate",
    "PendingUserOperation",
    "TransactionReceipts",
    "UserOperationReceipt",
    "submit",
    "wait_many",
]
