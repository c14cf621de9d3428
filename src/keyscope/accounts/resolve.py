"""Which adapter an account needs when none was given: never assumed, always found out.

* A deployed account says it: its ``accountId()`` (:func:`~keyscope.accounts.detect_kind`).
* An account not deployed yet is described by what will create it: a session grant names the kind it was
  signed for (:func:`kind_named`), and a factory says which accounts it makes through its implementation's
  ``accountId()`` (:func:`factory_account_id`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_utils import keccak

from ..errors import AccountSetupError, UnsupportedAccountError
from ..hexutil import to_address
from .base import AccountKind
from .capabilities import refuse_non_erc7579, refuse_without_validators
from .delegate import KeyscopeDelegateKind
from .detect import account_id, detect_kind, unreachable
from .erc7579 import ERC7579AccountKind, MSAAccountKind
from .kernel import KernelAccountKind
from .keyscope_account import KeyscopeAccountKind
from .nexus import NexusAccountKind
from .safe7579 import Safe7579AccountKind

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["ADAPTERS", "check_kind", "factory_account_id", "kind_named", "resolve_kind"]

ADAPTERS: dict[str, type[AccountKind]] = {
    kind.name: kind
    for kind in (
        KeyscopeAccountKind,
        KeyscopeDelegateKind,
        KernelAccountKind,
        NexusAccountKind,
        Safe7579AccountKind,
        MSAAccountKind,
        ERC7579AccountKind,
    )
}
"""The adapters by :attr:`~keyscope.accounts.AccountKind.name` (the ``account_kind`` a grant records)."""

# Getters of the implementation a factory clones or proxies: keyscope's factory, the ERC-7579 reference
# factory and Kernel's, Nexus's.
_IMPLEMENTATION_GETTERS = tuple(
    keccak(signature)[:4]
    for signature in (b"accountImplementation()", b"implementation()", b"ACCOUNT_IMPLEMENTATION()")
)


def kind_named(name: str, *, owner_validator: str | None = None, chain: Chain | None = None) -> AccountKind:
    """A bare adapter of kind ``name`` (as a grant records it): enough to select a validator through the nonce
    and to sign as the owner, not to create accounts. Raises
    :class:`~keyscope.errors.UnsupportedAccountError` for a name no adapter has."""
    adapter = ADAPTERS.get(name)
    if adapter is None:
        raise UnsupportedAccountError(
            f"unknown account kind {name!r} (known: {', '.join(ADAPTERS)}): give the adapter itself, "
            "connect(..., kind=...)"
        )
    if adapter is KeyscopeAccountKind:
        return KeyscopeAccountKind()
    if adapter is KeyscopeDelegateKind:
        return KeyscopeDelegateKind()
    if adapter is KernelAccountKind:
        return KernelAccountKind(owner_validator=owner_validator)
    if adapter is NexusAccountKind:
        return NexusAccountKind(owner_validator=owner_validator, chain=chain)
    if adapter is Safe7579AccountKind:
        return Safe7579AccountKind(owner_validator=owner_validator, chain=chain)
    assert issubclass(adapter, ERC7579AccountKind)
    return adapter(owner_validator=owner_validator, chain=chain)


def factory_account_id(chain: Chain, factory: str) -> str | None:
    """The ``accountId()`` of the accounts ``factory`` creates, read from the implementation it names
    (``accountImplementation()``, ``implementation()`` or ``ACCOUNT_IMPLEMENTATION()``); None when it names
    none that answers."""
    address = to_address(factory, name="factory")
    for getter in _IMPLEMENTATION_GETTERS:
        try:
            raw = chain.call(address, getter)
        except Exception as error:  # a factory without this getter reverts: try the next one
            if unreachable(error):
                raise
            continue
        if len(raw) != 32 or any(raw[:12]):
            continue
        (implementation,) = abi_decode(["address"], raw)
        found = account_id(chain, implementation)
        if found is not None:
            return found
    return None


def resolve_kind(
    chain: Chain,
    account: str | None,
    *,
    factory: str | None = None,
    owner_validator: str | None = None,
    named: str | None = None,
) -> AccountKind:
    """The adapter for ``account``, found out rather than assumed.

    A deployed account: its ``accountId()`` decides (:func:`~keyscope.accounts.detect_kind`). Else ``named``
    (the kind a grant was signed for) when given, also for a deployed account that answers no ``accountId()``. Else (``account`` None, or not deployed) the account is one
    ``factory`` creates, which must be keyscope's own account factory: keyscope's adapter for its accounts.
    Raises :class:`~keyscope.errors.UnsupportedAccountError` saying what is missing.
    """
    if account is not None:
        address = to_address(account, name="account")
        deployed = bool(chain.get_code(address))
        if named is not None and named not in ADAPTERS:
            raise UnsupportedAccountError(
                f"the grant for {address} was signed for an account of kind {named!r}, an adapter of the owner's "
                f"own that keyscope does not have (known: {', '.join(ADAPTERS)}): its operations must be built by "
                "that adapter, not by one found out from the account; give it, connect(..., kind=...). Nothing was "
                "signed or sent"
            )
        if deployed and (named is None or account_id(chain, address) is not None):
            return detect_kind(chain, address, owner_validator=owner_validator)
        if named is not None:  # not deployed yet, or deployed without an accountId() to tell
            if deployed:  # read above: it answers no accountId()
                refuse_without_validators(chain, address)
            return kind_named(named, owner_validator=owner_validator, chain=chain)
    where = (
        f"{to_address(account)} has no code yet"
        if account is not None
        else "the account is created by its first operation"
    )
    if factory is None:
        raise UnsupportedAccountError(
            f"{where} and nothing says which kind of account it is: give the account's adapter, "
            "connect(..., kind=...), or keyscope's factory, connect(..., factory=...)"
        )
    made = factory_account_id(chain, factory)
    if made is None and not chain.get_code(to_address(factory, name="factory")):
        raise UnsupportedAccountError(
            f"{where}, and there is no contract at the factory {to_address(factory)} on chain {chain.chain_id()}: "
            "check the address for this chain (each chain has the addresses keyscope was deployed at there; "
            "docs/networks.md), and that the node is the chain meant. Nothing was signed or sent"
        )
    if made is None:
        raise UnsupportedAccountError(
            f"{where}, and the factory {to_address(factory)} does not say which accounts it creates (no "
            "implementation answering accountId()): connect(..., factory=...) takes keyscope's "
            "KeyscopeAccountFactory; for another factory give its adapter, connect(..., kind=...)"
        )
    if not made.startswith(KeyscopeAccountKind.account_id_prefix):
        raise UnsupportedAccountError(
            f"{where}, and the factory {to_address(factory)} creates accounts reporting accountId() {made!r}, not "
            "keyscope's: connect(..., factory=...) takes keyscope's KeyscopeAccountFactory; for this factory give "
            "an adapter that creates its accounts, connect(..., kind=...) (see docs/accounts.md)"
        )
    return KeyscopeAccountKind()


def check_kind(chain: Chain, kind: AccountKind, account: str) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the deployed ``account`` reports an ``accountId()``
    that ``kind`` (an adapter given explicitly) is not made for. Adapters without an ``account_id_prefix`` (the
    generic one, most custom ones) are taken at their word, as is an account without code. Raises
    :class:`~keyscope.errors.UnsupportedAccountError` for a deployed account that is not an ERC-7579 account at
    all (:func:`~keyscope.accounts.capabilities.refuse_non_erc7579`), whatever the adapter."""
    address = to_address(account, name="account")
    found = refuse_non_erc7579(
        chain, address, kind
    )  # no adapter drives an account that cannot install the module
    prefix = kind.account_id_prefix
    # a Kernel adapter names one version's accountId() exactly, as detection takes it: v0.3.10 is not v0.3.1
    exact = isinstance(kind, KernelAccountKind)
    if not prefix or found is None or (found == prefix if exact else found.startswith(prefix)):
        return
    raise AccountSetupError(
        f"the account {address} reports accountId() {found!r}, but the {kind.name!r} adapter given is made for "
        f"{prefix}{'' if exact else '*'} accounts: its operations and signatures would be refused. Leave kind= out to have the kind "
        "detected, or give the adapter for this account",
        account=address,
        account_id=found,
        kind=kind.name,
    )
