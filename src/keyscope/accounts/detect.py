"""Which adapter an existing account needs, from its ERC-7579 ``accountId()``: the one made for it, else the
generic ERC-7579 adapter (the reference implementation's conventions). An EOA that delegates its code with
EIP-7702 (code ``0xef0100 ‖ delegate``) answers with its delegate's code, and its adapter records the delegate."""

from __future__ import annotations

from typing import Protocol

from eth_abi import decode as abi_decode
from eth_utils import keccak

from ..chain import Chain, RpcChain
from ..eip7702 import delegate_of
from ..errors import TransportError, UnsupportedAccountError
from ..hexutil import to_address
from ..rpc import METHOD_NOT_FOUND, JsonRpcError
from .base import AccountKind
from .delegate import KeyscopeDelegateKind
from .erc7579 import ERC7579AccountKind, MSAAccountKind
from .kernel import KernelAccountKind
from .keyscope_account import KeyscopeAccountKind
from .nexus import NexusAccountKind
from .safe7579 import Safe7579AccountKind

__all__ = ["SUPPORTED_ACCOUNT_IDS", "account_id", "detect_kind"]

_ACCOUNT_ID = keccak(b"accountId()")[:4]

SUPPORTED_ACCOUNT_IDS: tuple[str, ...] = (
    KeyscopeAccountKind.account_id_prefix + "*",
    KeyscopeDelegateKind.account_id_prefix + "*",
    KernelAccountKind.account_id_prefix,
    NexusAccountKind.account_id_prefix + "*",
    Safe7579AccountKind.account_id_prefix + "*",
    MSAAccountKind.account_id_prefix + "*",
)
"""The ``accountId()`` values keyscope has adapters made for (``*``: any suffix); any other ERC-7579 account gets
the generic :class:`~keyscope.accounts.ERC7579AccountKind`."""


class _Connected(Protocol):
    """A :class:`~keyscope.network.Network`, or anything else that carries its node as ``chain``."""

    @property
    def chain(self) -> Chain: ...


def _chain(network_or_chain: _Connected | Chain | str) -> Chain:
    if isinstance(network_or_chain, str):
        return RpcChain(network_or_chain)
    if isinstance(network_or_chain, Chain):
        return network_or_chain
    return network_or_chain.chain


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the node could not be asked at all (down, or not a node), rather than that a contract
    lacks a function: such an error must reach the person, not read as "no such function"."""
    return isinstance(error, TransportError) or (
        isinstance(error, JsonRpcError) and error.code == METHOD_NOT_FOUND
    )


def account_id(chain: Chain, account: str) -> str | None:
    """``accountId()`` of ``account``, or None when it has no code or no such function."""
    address = to_address(account, name="account")
    if not chain.get_code(address):
        return None
    return _call_account_id(chain, address)


def _call_account_id(chain: Chain, address: str) -> str | None:
    try:
        return str(abi_decode(["string"], chain.call(address, _ACCOUNT_ID))[0])
    except Exception as error:  # no such function (a revert), or an answer that is no string
        if unreachable(error):
            raise
        return None


def detect_kind(
    network_or_chain: _Connected | Chain | str, account: str, *, owner_validator: str | None = None
) -> AccountKind:
    """The adapter for the deployed ``account``, chosen by its ``accountId()``.

    ``network_or_chain`` is a :class:`~keyscope.network.Network`, a :class:`~keyscope.chain.Chain` or a node
    URL. ``owner_validator`` is the validator module the owner signs through (Nexus, Safe7579, the reference
    account and other ERC-7579 accounts; Kernel's root validator needs no address). An ``accountId()`` no adapter
    is made for gets the generic :class:`~keyscope.accounts.ERC7579AccountKind` (its ``account_id`` set to it).
    Raises :class:`~keyscope.errors.UnsupportedAccountError` when the address has no code or no ``accountId()``.

    An EOA delegating with EIP-7702 is detected by its delegate's ``accountId()`` like any account, and the adapter's
    :attr:`~keyscope.accounts.AccountKind.delegate` names the delegate (``KeyscopeDelegate``:
    :class:`~keyscope.accounts.KeyscopeDelegateKind`).
    """
    chain = _chain(network_or_chain)
    address = to_address(account, name="account")
    code = chain.get_code(address)
    delegate = delegate_of(code)
    detected = _call_account_id(chain, address) if code else None
    if detected is None:
        if not code:
            reason = "has no code"
        elif delegate is not None:
            reason = (
                f"is an EOA delegating to {delegate} (EIP-7702), whose code answers no ERC-7579 accountId()"
            )
        else:
            reason = "answers no ERC-7579 accountId()"
        raise UnsupportedAccountError(
            f"{address} {reason}: keyscope detects the account kind from accountId(); deploy the account first "
            "(an EOA: delegate it to keyscope's KeyscopeDelegate), or give its kind explicitly"
        )
    kind = _adapter_for(detected, chain, owner_validator)
    if delegate is not None:
        kind.delegate = delegate
    return kind


def _adapter_for(detected: str, chain: Chain, owner_validator: str | None) -> AccountKind:
    if detected.startswith(KeyscopeAccountKind.account_id_prefix):
        return KeyscopeAccountKind()
    if detected.startswith(KeyscopeDelegateKind.account_id_prefix):
        return KeyscopeDelegateKind()
    if detected == KernelAccountKind.account_id_prefix:
        return KernelAccountKind(owner_validator=owner_validator)
    if detected.startswith(NexusAccountKind.account_id_prefix):
        return NexusAccountKind(owner_validator=owner_validator, chain=chain)
    if detected.startswith(Safe7579AccountKind.account_id_prefix):
        return Safe7579AccountKind(owner_validator=owner_validator, chain=chain)
    if detected.startswith(MSAAccountKind.account_id_prefix):
        return MSAAccountKind(owner_validator=owner_validator, chain=chain, account_id=detected)
    return ERC7579AccountKind(owner_validator=owner_validator, chain=chain, account_id=detected)
