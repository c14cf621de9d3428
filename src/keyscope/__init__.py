"""keyscope: ERC-4337 session keys for ERC-7579 smart accounts.

A user signs once; a dapp then sends UserOperations from the user's account with a session key, within
what the user signed — checked by the ``SessionKeyValidator`` module on chain, and by this SDK before
anything is sent::

    from keyscope import Policy, SessionKey, arg, connect

    net = connect(node_url, bundler_url, module=MODULE, factory=FACTORY)
    owner = net.owner(owner_key)     # "0x…" key, LocalAccount or ape account; the account is created on first use
    key = SessionKey.generate()
    grant = owner.grant(key, [Policy.call(nft, "safeMint(address)", rules=[arg("to") == user])], valid_for=3600)
    session = net.session(grant, key)
    receipt = session.execute(nft, "safeMint(address)", user).wait()
"""

import importlib
from types import ModuleType

from . import _command_start  # noqa: F401  (first: a Ctrl-C while the command starts is one line, no traceback)
from .artifacts import ENTRY_POINT_V07, ENTRY_POINT_V08
from .bundler import Bundler, BundlerClient, FeeQuote, GasEstimate, PendingUserOperation, UserOperationReceipt
from .calls import encode_function_call, function_call
from .chain import Chain, RpcChain, Web3Chain
from .checker import PolicyChecker, check
from .co_signer import CoSignerRefusedError
from .eoa import EOAOwner
from .errors import (
    AccountPremiseWarning,
    AccountSetupError,
    BadInputError,
    BundlerRejectedError,
    ConfigurationError,
    CoSignerMismatchError,
    DelegationError,
    DelegationWarning,
    GasCostTooHighError,
    InsufficientPrefundError,
    KeyscopeError,
    KeyscopeWarning,
    LimitError,
    LimitExceededError,
    LimitPeriodEndingError,
    OwnerGasCostTooHighError,
    PaymasterError,
    PolicyViolationError,
    ReceiptContradictedError,
    ReceiptUnconfirmedError,
    SessionError,
    SessionExpiredError,
    SessionNotYetValidError,
    SessionRevokedError,
    TargetRevertedError,
    TargetWarning,
    TargetWithoutCodeError,
    TransportError,
    UnsupportedAccountError,
    UnsupportedAccountVersionError,
    UnsupportedEntryPointError,
    UserOperationFailedError,
    UserOperationTimeoutError,
    UserOperationUnknownError,
)
from .execution import Call
from .grant import SessionGrant
from .keys import SessionKey
from .limits import LimitUsage
from .message_signing import SignatureRefusedError
from .network import Network, connect
from .owner import GrantRequest, Owner
from .policy import Limits, Policy, arg
from .report import SessionReport
from .session import Condition, Limit, LimitKind, Permission, Rule, Session
from .session_account import SessionAccount
from .signers import as_signer
from .signing import HashSigner, LocalSigner
from .userop import PackedUserOperation, UserOperation

__version__ = "0.1.0"

_SUBMODULES = frozenset(
    ("local", "store", "scale", "consent", "erc7715", "sponsor", "cosigner", "accounts", "bundler", "testing")
)
"""Packages of keyscope that ``import keyscope`` leaves unloaded (a local stack, stores and their drivers, the
services): ``keyscope.local.LocalStack()`` and the like load them on first use."""


def __getattr__(name: str) -> ModuleType:
    """``keyscope.local``, ``keyscope.store``, ``keyscope.scale``, ``keyscope.consent``, ... after a bare
    ``import keyscope``, as the README writes them: the package is imported on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENTRY_POINT_V07",
    "ENTRY_POINT_V08",
    "AccountPremiseWarning",
    "AccountSetupError",
    "BadInputError",
    "Bundler",
    "BundlerClient",
    "BundlerRejectedError",
    "Call",
    "Chain",
    "CoSignerMismatchError",
    "CoSignerRefusedError",
    "Condition",
    "ConfigurationError",
    "DelegationError",
    "DelegationWarning",
    "EOAOwner",
    "FeeQuote",
    "GasCostTooHighError",
    "GasEstimate",
    "GrantRequest",
    "HashSigner",
    "InsufficientPrefundError",
    "KeyscopeError",
    "KeyscopeWarning",
    "Limit",
    "LimitError",
    "LimitExceededError",
    "LimitKind",
    "LimitPeriodEndingError",
    "LimitUsage",
    "Limits",
    "LocalSigner",
    "Network",
    "Owner",
    "OwnerGasCostTooHighError",
    "PackedUserOperation",
    "PaymasterError",
    "PendingUserOperation",
    "Permission",
    "Policy",
    "PolicyChecker",
    "PolicyViolationError",
    "ReceiptContradictedError",
    "ReceiptUnconfirmedError",
    "RpcChain",
    "Rule",
    "Session",
    "SessionAccount",
    "SessionError",
    "SessionExpiredError",
    "SessionGrant",
    "SessionKey",
    "SessionNotYetValidError",
    "SessionReport",
    "SessionRevokedError",
    "SignatureRefusedError",
    "TargetRevertedError",
    "TargetWarning",
    "TargetWithoutCodeError",
    "TransportError",
    "UnsupportedAccountError",
    "UnsupportedAccountVersionError",
    "UnsupportedEntryPointError",
    "UserOperation",
    "UserOperationFailedError",
    "UserOperationReceipt",
    "UserOperationTimeoutError",
    "UserOperationUnknownError",
    "Web3Chain",
    "arg",
    "as_signer",
    "check",
    "connect",
    "encode_function_call",
    "function_call",
]
