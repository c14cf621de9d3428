"""Adapters for the ERC-7579 accounts keyscope supports."""

from .base import MODULE_TYPE_VALIDATOR, AccountKind, Deployment
from .delegate import KeyscopeDelegateKind
from .detect import SUPPORTED_ACCOUNT_IDS, account_id, detect_kind
from .erc7579 import ERC7579AccountKind, MSAAccountKind
from .kernel import KernelAccountKind
from .keyscope_account import KeyscopeAccountKind, create_account_data
from .nexus import NexusAccountKind
from .safe7579 import Safe7579AccountKind, Safe7579Deployment

__all__ = [
    "MODULE_TYPE_VALIDATOR",
    "SUPPORTED_ACCOUNT_IDS",
    "AccountKind",
    "Deployment",
    "ERC7579AccountKind",
    "KernelAccountKind",
    "KeyscopeAccountKind",
    "KeyscopeDelegateKind",
    "MSAAccountKind",
    "NexusAccountKind",
    "Safe7579AccountKind",
    "Safe7579Deployment",
    "account_id",
    "create_account_data",
    "detect_kind",
]
