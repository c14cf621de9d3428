"""An ape account as a keyscope signer: :class:`ApeAccountSigner`.

Nothing here imports ape until a signature is asked for, so the SDK needs no ape to load this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils import keccak

from .errors import BadInputError, ConfigurationError, SigningDeclinedError
from .hexutil import to_address
from .signing import recover_hash

__all__ = ["ApeAccountSigner", "is_ape_account"]


def is_ape_account(value: Any) -> bool:
    """Whether ``value`` looks like an ape account (``AccountAPI``): an address and ape's signing methods."""
    return hasattr(value, "address") and callable(getattr(value, "sign_raw_msghash", None))


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
        import click
        from ape.exceptions import APINotImplementedError

        name = getattr(self.account, "alias", None) or self._address
        try:
            signature = sign()
        except APINotImplementedError:
            raise ConfigurationError(
                f"the ape account {name} cannot sign {what} (its account type cannot sign a raw hash): use "
                "another account, or the owner's private key"
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
