"""Which adapter an existing account needs, from its ERC-7579 ``accountId()``: the one made for it, else the
generic ERC-7579 adapter (the reference implementation's conventions). An EOA that delegates its code with
EIP-7702 (code ``0xef0100 ‖ delegate``) answers with its delegate's code, and its adapter records the delegate.

Another version of a vendor keyscope has an adapter for (Kernel v0.3.3 where the adapter is made for v0.3.1, Nexus
1.2 where it is made for 1.0) gets neither: the generic adapter is known not to fit those vendors' accounts (they
read the validator from other bytes of the nonce key), and the vendor's adapter is not known to fit another version.
:class:`~keyscope.errors.UnsupportedAccountVersionError` says so and how to drive the account anyway."""

from __future__ import annotations

from typing import Protocol

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..chain import Chain, RpcChain
from ..eip7702 import delegate_of
from ..errors import (
    CallRevertedError,
    TransportError,
    UnsupportedAccountError,
    UnsupportedAccountVersionError,
)
from ..hexutil import to_address
from ..rpc import METHOD_NOT_FOUND, JsonRpcError
from .base import MODULE_TYPE_VALIDATOR, AccountKind
from .delegate import KeyscopeDelegateKind
from .erc7579 import ERC7579AccountKind, MSAAccountKind
from .kernel import KernelAccountKind
from .keyscope_account import KeyscopeAccountKind
from .module_owned import ModuleOwnedAccountKind
from .nexus import NexusAccountKind
from .safe7579 import Safe7579AccountKind

__all__ = [
    "NO_ACCOUNT_ID",
    "SUPPORTED_ACCOUNT_IDS",
    "account_id",
    "account_id_said",
    "ask_bool",
    "detect_kind",
    "supports_validators",
]

_ACCOUNT_ID = keccak(b"accountId()")[:4]
_EIP712_DOMAIN = keccak(b"eip712Domain()")[:4]
_SUPPORTS_MODULE = keccak(b"supportsModule(uint256)")[:4]

# Vendors with an adapter here whose other versions the generic adapter does not fit: (the prefix every version's
# accountId() starts with, the vendor, the adapter, what the generic adapter gets wrong on them).
_FAMILIES: tuple[tuple[str, str, type[AccountKind], str], ...] = (
    (
        "kernel.advanced.",
        "ZeroDev Kernel",
        KernelAccountKind,
        "Kernel reads the validator from the nonce key after a mode and a type byte, and hands ERC-1271 checks "
        "its own EIP-712 wrapping of the hash",
    ),
    (
        "biconomy.nexus.",
        "Biconomy Nexus",
        NexusAccountKind,
        "Nexus reads the validator from the nonce key's low 20 bytes, after the lane and a mode byte",
    ),
)

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


NO_ACCOUNT_ID = "answers no accountId()"
"""What :func:`account_id_said` says of a contract whose ``accountId()`` reverts without data (no such function)."""

_HEX_SHOWN = 64
"""How many bytes of an answer or a revert a message shows as hex."""


def _hex_cut(raw: bytes) -> str:
    if len(raw) <= _HEX_SHOWN:
        return "0x" + raw.hex()
    return f"0x{raw[:_HEX_SHOWN].hex()}… (the first {_HEX_SHOWN} of {len(raw)} bytes)"


def account_id_said(chain: Chain, account: str) -> str:
    """What the deployed ``account`` answered ``accountId()`` when :func:`account_id` found no id in it, for a
    message (``"<address> {said}"``): :data:`NO_ACCOUNT_ID` for a revert without data, else that phrase with the
    revert's data as hex, or the answer as hex when it is no ABI-encoded string (junk, another return type)."""
    address = to_address(account, name="account")
    try:
        raw = chain.call(address, _ACCOUNT_ID)
    except CallRevertedError as revert:
        if not revert.data:
            return NO_ACCOUNT_ID
        decoded = "" if revert.description.startswith("0x") else f": {revert.description}"
        return f"{NO_ACCOUNT_ID} (the call reverts with {_hex_cut(revert.data)}{decoded})"
    except Exception as error:
        if unreachable(error):
            raise
        return NO_ACCOUNT_ID
    try:
        return f"answers accountId() {str(abi_decode(['string'], raw)[0])!r}"  # an id after all (asked again)
    except Exception:  # what account_id() found no string in
        pass
    if not raw:
        return f"{NO_ACCOUNT_ID} (the call returns no data)"
    return (
        f"answers accountId() with {_hex_cut(raw)} ({len(raw)} bytes), which is no ABI-encoded string (ERC-7579's "
        "accountId() returns the account's vendor and version as one)"
    )


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
            raise UnsupportedAccountError(_no_account_id(chain, address))
        raise UnsupportedAccountError(
            f"{address} {reason}: keyscope detects the account kind from accountId(); deploy the account first "
            "(an EOA: delegate it to keyscope's KeyscopeDelegate), or give its kind explicitly"
        )
    kind = _adapter_for(detected, chain, owner_validator)
    if isinstance(kind, ModuleOwnedAccountKind):
        kind.detected_account = address
    if type(kind) is ERC7579AccountKind:
        _refuse_other_version(chain, address, detected)
    if delegate is not None:
        kind.delegate = delegate
    return kind


def ask_bool(chain: Chain, account: str, data: bytes) -> bool | None:
    """``account``'s boolean answer to ``data``: False for a revert or an answer that is no boolean, None when the
    node could not run the call (an unfunded caller on a node charging calls for gas)."""
    try:
        answer = chain.call(account, data)
    except CallRevertedError:
        return False
    except Exception as error:
        if unreachable(error):
            raise
        return None
    return len(answer) >= 32 and int.from_bytes(answer[:32], "big") == 1


def supports_validators(chain: Chain, account: str) -> bool | None:
    """Whether ``account`` says it takes validator modules (ERC-7579 ``supportsModule(1)``); None when unknown."""
    data = _SUPPORTS_MODULE + abi_encode(["uint256"], [MODULE_TYPE_VALIDATOR])
    return ask_bool(chain, to_address(account), data)


def _no_account_id(chain: Chain, address: str) -> str:
    """What to say of a contract that answers no ``accountId()`` (:func:`account_id_said`: what it answered): an
    ERC-7579 account that does not say which (``supportsModule(1)`` says yes), or no ERC-7579 account at all."""
    said = account_id_said(chain, address)
    if supports_validators(chain, address):
        return (
            f"{address} is an ERC-7579 account (supportsModule(1) answers yes) that {said}, so "
            "keyscope cannot tell which adapter it needs and does not guess. If it follows the ERC-7579 reference "
            "implementation's conventions (docs/accounts.md), give the generic adapter: connect(..., "
            "kind=ERC7579AccountKind(owner_validator=ADDRESS, chain=RpcChain(NODE_URL))); otherwise write its "
            'adapter (docs/accounts.md, "Writing an adapter for another account")'
        )
    neither = (
        "answers neither accountId() nor supportsModule(1) with a yes"
        if said == NO_ACCOUNT_ID
        else f"{said}, and does not answer supportsModule(1) with a yes"
    )
    return (
        f"{address} is a contract but not an ERC-7579 modular account: it {neither} (an ERC-4337 account of another design, a Safe without an ERC-7579 adapter, "
        "a token...). keyscope's sessions are an ERC-7579 validator module, which only such an account can "
        "install; nothing was signed or sent. Use an ERC-7579 account, or make this one modular first"
    )


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


def _refuse_other_version(chain: Chain, address: str, detected: str) -> None:
    """Raise :class:`~keyscope.errors.UnsupportedAccountVersionError` when ``detected`` is a version of a vendor
    whose adapter is made for another version (the generic adapter would be a wrong guess)."""
    for prefix, vendor, adapter, misfit in _FAMILIES:
        if not detected.startswith(prefix):
            continue
        supported = adapter.account_id_prefix
        version = _domain_version(chain, address)
        domain = (
            f", and domain_version = {version!r} (the version of its eip712Domain())"
            if version is not None and adapter is KernelAccountKind
            else ""
        )
        raise UnsupportedAccountVersionError(
            f"the account {address} reports accountId() {detected!r}: {vendor}, in a version keyscope's "
            f"{adapter.__name__} is not made for (it is made for {supported}* accounts). The generic ERC-7579 "
            f"adapter does not fit {vendor} ({misfit}), so keyscope does not guess. If this version keeps the "
            f"conventions of {supported}* (docs/accounts.md says what they are), drive it with a subclass of "
            f"{adapter.__name__} whose account_id_prefix = {detected!r}{domain}, given as connect(..., kind=...); "
            'otherwise write its adapter (see docs/accounts.md, "Writing an adapter for another account")',
            account=address,
            account_id=detected,
            vendor=vendor,
            supported=supported,
            adapter=adapter.__name__,
            domain_version=version,
        )


def _domain_version(chain: Chain, address: str) -> str | None:
    """The version in ``address``'s ERC-5267 ``eip712Domain()``, or None when it has none."""
    try:
        answer = chain.call(address, _EIP712_DOMAIN)
        fields = abi_decode(
            ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"], answer
        )
    except Exception as error:  # no such function (a revert), or an answer of another shape
        if unreachable(error):
            raise
        return None
    return str(fields[2])
