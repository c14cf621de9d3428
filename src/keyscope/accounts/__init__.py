"""Adapters for the ERC-7579 accounts keyscope supports."""

from .base import MODULE_TYPE_VALIDATOR, AccountKind, Deployment
from .keyscope_account import KeyscopeAccountKind, create_account_data

__all__ = ["MODULE_TYPE_VALIDATOR", "AccountKind", "Deployment", "KeyscopeAccountKind", "create_account_data"]
