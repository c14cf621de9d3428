"""Every form a key may be given in: :func:`as_signer` turns it into a :class:`~keyscope.signing.HashSigner`.

``net.owner(...)`` and ``net.session(grant, key)`` take any of:

* a private key: ``"0x"`` and 64 hex digits, or 32 bytes;
* an eth-account ``LocalAccount`` (``Account.from_key(...)``, ``Account.create()``);
* an ape account (``accounts.load("alias")``, ``accounts.test_accounts[0]``): it signs through ape;
* a :class:`~keyscope.signing.HashSigner` (a :class:`~keyscope.signing.LocalSigner`, a
  :class:`~keyscope.keys.SessionKey`, or your own: a hardware wallet, a remote signer).
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

from .ape_signer import ApeAccountSigner, is_ape_account
from .errors import BadInputError, a_type
from .hexutil import to_address
from .signing import HashSigner, LocalSigner

__all__ = ["SignerLike", "as_signer", "looks_like_a_path"]

SignerLike: TypeAlias = Any
"""What :func:`as_signer` accepts: a private key (hex or bytes), an eth-account ``LocalAccount``, an ape account
or a :class:`~keyscope.signing.HashSigner`."""

_FORMS = (
    'a private key ("0x" and 64 hex digits), an eth-account LocalAccount, an ape account, or a HashSigner '
    "(such as keyscope.LocalSigner)"
)
_OTHER_FORMS = (
    "or give an eth-account LocalAccount, an ape account, or a HashSigner such as keyscope.LocalSigner"
)
"""What else :func:`as_signer` takes, said after a key's own refusal (which already says what a key is)."""
_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_FILE_ENDINGS = (".key", ".json", ".txt", ".pem")
_PHRASE_LENGTHS = (12, 15, 18, 21, 24)
"""The word counts of a BIP-39 recovery phrase, what a wallet shows as its "secret recovery phrase"."""


def looks_like_a_path(text: str) -> bool:
    """Whether ``text``, given where a private key goes, reads as a file's path (a key is hex: it has no slash and
    no file ending)."""
    return "/" in text or "\\" in text or text.lower().endswith(_FILE_ENDINGS)


def as_signer(value: Any, *, role: str = "owner") -> HashSigner:
    """``value`` as a :class:`~keyscope.signing.HashSigner`; ``role`` names whose key it is in errors.

    Raises :class:`~keyscope.errors.BadInputError` for anything else, never showing the value itself (it may
    be a key)."""
    if is_ape_account(value):
        return ApeAccountSigner(value)
    if isinstance(value, HashSigner):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _ADDRESS.match(text):
            shown = to_address(text) if text.startswith("0x") else text
            raise BadInputError(f"the {role}'s key {shown} is an address, not a key: give {_FORMS}")
        words = text.split()
        if len(words) in _PHRASE_LENGTHS and all(word.isalpha() for word in words):
            raise BadInputError(
                f"the {role}'s key is not a private key but {len(words)} words, a recovery phrase: give the key "
                "of the account it derives, e.g. eth-account's Account.from_mnemonic(phrase) (after "
                f"Account.enable_unaudited_hdwallet_features()), which is a LocalAccount; give {_FORMS}"
            )
        if looks_like_a_path(text):
            raise BadInputError(
                f"the {role}'s key looks like a file's path: give the key itself, not a file ({_FORMS}); read a key "
                "file yourself, e.g. Path(FILE).read_text().strip()"
            )
        try:
            return LocalSigner(text)
        except BadInputError as error:  # its message never shows the key
            raise BadInputError(
                f"the {role}'s key is not a private key ({len(text)} characters): {error} ({_OTHER_FORMS})"
            ) from None
    if isinstance(value, (bytes, bytearray)):
        try:
            return LocalSigner(bytes(value))
        except BadInputError as error:  # its message never shows the key
            raise BadInputError(
                f"the {role}'s key is not a private key ({len(value)} bytes): {error} ({_OTHER_FORMS})"
            ) from None
    key = getattr(value, "key", None)
    if isinstance(key, (bytes, bytearray)) and callable(getattr(value, "unsafe_sign_hash", None)):
        signer = LocalSigner(bytes(key))  # an eth-account LocalAccount
        if signer.address != to_address(getattr(value, "address", signer.address)):
            raise BadInputError(f"the {role}'s account's key does not match its address")
        return signer
    raise BadInputError(f"the {role}'s key cannot be {a_type(value)}: give {_FORMS}")
