"""The owner's signer (an ape account or a private key) and the owner of an account."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from ..errors import BadInputError, ConfigurationError, KeyscopeError
from ..hexutil import to_address
from ..network import Network
from ..owner import Owner
from ..signing import HashSigner, LocalSigner, recover_hash
from .settings import ENV_FACTORY, ENV_OWNER, ENV_OWNER_KEY, _address_from

_SIGNER = keccak(b"signer()")[:4]


class SigningDeclinedError(KeyscopeError):
    """An ape account did not sign (the user said no, or could not be asked)."""


class ApeAccountSigner:
    """An ape account (``AccountAPI``) as a :class:`~keyscope.signing.HashSigner`.

    UserOperation hashes go through ``sign_raw_msghash`` and EIP-712 typed data through ``sign_message``.
    When ``APE_ACCOUNTS_<alias>_PASSPHRASE`` is set, a keyfile account is unlocked with it and set to sign
    messages without asking; ape still asks to confirm every raw-hash signature.
    """

    def __init__(self, account: Any) -> None:
        self.account = account
        self._address = to_address(account.address)
        alias = getattr(account, "alias", None)
        if alias and hasattr(account, "set_autosign") and os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE"):
            from ape.exceptions import AccountsError

            try:
                account.set_autosign(True)
            except AccountsError as error:
                raise ConfigurationError(
                    f"APE_ACCOUNTS_{alias}_PASSPHRASE does not unlock the ape account {alias!r} ({error}): set "
                    "it to that account's passphrase"
                ) from None

    @property
    def address(self) -> str:
        return self._address

    def __repr__(self) -> str:
        return f"ApeAccountSigner({getattr(self.account, 'alias', None) or self._address})"

    def _signature(self, sign: Callable[[], Any], what: str, digest: bytes) -> bytes:
        from ape.exceptions import APINotImplementedError

        name = getattr(self.account, "alias", None) or self._address
        try:
            signature = sign()
        except APINotImplementedError:
            raise ConfigurationError(
                f"the ape account {name} cannot sign {what}: use another account for --owner, or "
                f"{ENV_OWNER_KEY}"
            ) from None
        except click.exceptions.Abort:
            signature = None
        if signature is None:
            raise SigningDeclinedError(
                f"the ape account {name} did not sign {what}: confirm when ape asks (ape asks for every raw-hash "
                "signature; answer 'y', also on stdin for an unattended run)"
            )
        v = int(signature.v)
        raw = bytes(signature.r).rjust(32, b"\x00") + bytes(signature.s).rjust(32, b"\x00")
        result = raw + bytes((v + 27 if v < 27 else v,))
        if recover_hash(digest, result) != self._address:
            raise SigningDeclinedError(
                f"the ape account {name} returned a signature of another key for {what}"
            )
        return result

    def sign_hash(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest as is (``sign_raw_msghash``)."""
        from hexbytes import HexBytes

        if len(digest) != 32:
            raise BadInputError(f"a digest to sign must be 32 bytes, got {len(digest)}")
        return self._signature(
            lambda: self.account.sign_raw_msghash(HexBytes(digest)), "the hash 0x" + digest.hex(), digest
        )

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        """Sign EIP-712 typed data (``sign_message`` with the EIP-712 signable message)."""
        signable = encode_typed_data(full_message=typed_data)
        digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
        return self._signature(
            lambda: self.account.sign_message(signable), "the EIP-712 session grant", digest
        )


def owner_signer(owner_account: Any = None, *, ape_accounts: bool = True) -> HashSigner:
    """The owner's signer: the ape account given (``--owner``), else the key in ``KEYSCOPE_OWNER_KEY``
    (``ape_accounts`` False: a command without ``--owner``)."""
    if owner_account is not None:
        return ApeAccountSigner(owner_account)
    other = " (or use --owner ALIAS)" if ape_accounts else ""
    key = os.environ.get(ENV_OWNER_KEY, "").strip()
    if key:
        try:
            return LocalSigner(key)
        except BadInputError:
            raise BadInputError(
                f"{ENV_OWNER_KEY} is not a private key: give 0x and 64 hex digits{other}"
            ) from None
    if not ape_accounts:
        raise ConfigurationError(f"no owner key: put the account owner's private key in {ENV_OWNER_KEY}")
    raise ConfigurationError(
        f"no owner key: pass --owner ALIAS (an ape account; TEST::n for a test account) or set {ENV_OWNER}, or "
        f"put the owner's private key in {ENV_OWNER_KEY}"
    )


def make_owner(network: Network, signer: HashSigner, account: str | None = None, salt: int = 0) -> Owner:
    """The :class:`~keyscope.owner.Owner` of ``account`` (or of the signer's keyscope account at ``salt``),
    checked to be owned by ``signer`` when the account exists."""
    if salt < 0:
        raise BadInputError(f"--salt must be >= 0, got {salt}")
    if account is None and network.factory is None:
        raise ConfigurationError(
            f"no account factory to locate the owner's account: pass --account ADDRESS, or --factory (env "
            f"{ENV_FACTORY}) or --deployments FILE"
        )
    address = None if account is None else _address_from(account, "--account")
    owner = network.owner(signer, address, salt=salt)
    if owner.is_deployed():
        try:
            result = network.chain.call(owner.account, _SIGNER)
            actual = to_address(result[12:32]) if len(result) >= 32 else None
        except KeyscopeError:
            actual = None
        if actual is not None and actual != to_address(signer.address):
            raise BadInputError(
                f"{signer.address} is not the owner of {owner.account} (its owner is {actual}): give that key "
                "with --owner or KEYSCOPE_OWNER_KEY"
            )
    return owner
