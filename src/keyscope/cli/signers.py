"""The owner's signer (an ape account or a private key) and the owner of an account."""

from __future__ import annotations

import os
from typing import Any

from ..ape_signer import ApeAccountSigner
from ..errors import BadInputError, ConfigurationError, KeyscopeError, SigningDeclinedError
from ..hexutil import to_address, to_int
from ..network import Network
from ..operations import DEFAULT_OWNER_MAX_GAS_COST
from ..owner import Owner
from ..selectors import SIGNER
from ..signers import looks_like_a_path
from ..signing import HashSigner, LocalSigner
from .settings import ENV_FACTORY, ENV_OWNER, ENV_OWNER_KEY, ENV_OWNER_MAX_GAS_COST, _address_from

__all__ = ["ApeAccountSigner", "SigningDeclinedError", "make_owner", "owner_signer"]


def owner_signer(owner_account: Any = None, *, ape_accounts: bool = True) -> HashSigner:
    """The owner's signer: the ape account given (``--owner``), else the key in ``KEYSCOPE_OWNER_KEY``
    (``ape_accounts`` False: a command without ``--owner``)."""
    if owner_account is not None:
        return ApeAccountSigner(owner_account)
    other = " (or use --owner ALIAS)" if ape_accounts else ""
    key = os.environ.get(ENV_OWNER_KEY, "").strip()
    if key:
        if looks_like_a_path(key):
            raise BadInputError(
                f"{ENV_OWNER_KEY} looks like a file's path: it takes the owner's key itself, 0x and 64 hex digits, not "
                f'a file (export {ENV_OWNER_KEY}="$(cat FILE)" reads it from one){other}'
            )
        try:
            return LocalSigner(key)
        except BadInputError as error:  # what is wrong with it, never the key itself
            raise BadInputError(
                f"{ENV_OWNER_KEY} is not a private key ({error}): give the owner's key, 0x and 64 hex digits{other}"
            ) from None
    if not ape_accounts:
        raise ConfigurationError(f"no owner key: put the account owner's private key in {ENV_OWNER_KEY}")
    raise ConfigurationError(
        f"no owner key: pass --owner ALIAS (an ape account; TEST::n for a test account) or set {ENV_OWNER}, or "
        f"put the owner's private key in {ENV_OWNER_KEY}"
    )


APE_KEY_OPTIONS = "--owner or KEYSCOPE_OWNER_KEY"
"""Where the ``ape run`` scripts take the owner's key from (the ``keyscope`` command: KEYSCOPE_OWNER_KEY only)."""


def owner_max_gas_cost() -> int:
    """The owner's gas cap (wei) from ``KEYSCOPE_OWNER_MAX_GAS_COST``: decimal or 0x-hex, 0 for none; 0.1 ether
    when unset. Anything else raises :class:`~keyscope.errors.BadInputError` naming the variable."""
    text = os.environ.get(ENV_OWNER_MAX_GAS_COST, "").strip()
    if not text:
        return DEFAULT_OWNER_MAX_GAS_COST
    try:
        return to_int(text, name=ENV_OWNER_MAX_GAS_COST)
    except BadInputError:
        raise BadInputError(
            f"{ENV_OWNER_MAX_GAS_COST} is the most one of the owner's operations may cost in gas, in wei, as a whole "
            "number in decimal or 0x-hex (0 for no cap): e.g. 200000000000000000 for 0.2 ether; unset it for the "
            "default of 0.1 ether"
        ) from None


def make_owner(
    network: Network,
    signer: HashSigner,
    account: str | None = None,
    salt: int = 0,
    *,
    key_options: str = APE_KEY_OPTIONS,
) -> Owner:
    """The :class:`~keyscope.owner.Owner` of ``account`` (or of the signer's keyscope account at ``salt``),
    checked to be owned by ``signer`` when the account exists (a refusal says to give the key with
    ``key_options``)."""
    if salt < 0:
        raise BadInputError(f"--salt must be >= 0, got {salt}")
    if account is None and network.factory is None:
        raise ConfigurationError(
            f"no account factory to locate the owner's account: pass --account ADDRESS, or --factory (env "
            f"{ENV_FACTORY}) or --deployments FILE"
        )
    address = None if account is None else _address_from(account, "--account")
    owner = network.owner(signer, address, salt=salt, max_gas_cost=owner_max_gas_cost())
    if address is not None and not owner.is_deployed():
        # an account with no code is one this owner's first operation creates, or none at all (a mistyped address)
        own = None if network.factory is None else network.owner(signer, salt=salt).account
        if own != address:
            yours = f"; this key's keyscope account at --salt {salt} is {own}" if own is not None else ""
            raise BadInputError(
                f"--account {address} has no code on chain {network.chain_id}, and nothing here would create it{yours}: "
                "give the address of an account that exists, or leave --account out for the key's keyscope account"
            )
    if owner.is_deployed():
        try:
            result = network.chain.call(owner.account, SIGNER)
            actual = to_address(result[12:32]) if len(result) >= 32 else None
        except KeyscopeError:
            actual = None
        if actual is not None and actual != to_address(signer.address):
            raise BadInputError(
                f"{signer.address} is not the owner of {owner.account} (its owner is {actual}): give that key "
                f"with {key_options}"
            )
    return owner
