"""``did:key`` identifiers of secp256k1 keys, the ERC-7715 ``key`` signer's ``id``.

``did:key:z…`` is the multibase base58btc (``z``) encoding of the multicodec ``secp256k1-pub`` prefix (the
varint of 0xe7: ``e7 01``) followed by the 33-byte compressed public key. keyscope's session key is the
Ethereum address of that key.
"""

from __future__ import annotations

import coincurve

from ..errors import BadInputError, shown
from ..hexutil import keccak, to_address

__all__ = ["address_of_did_key", "did_key_of"]

_PREFIX = "did:key:z"
_SECP256K1_PUB = bytes((0xE7, 0x01))
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: index for index, char in enumerate(_ALPHABET)}


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise BadInputError(f"{shown(char)} is not a base58btc digit")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def address_of_did_key(did: str) -> str:
    """The Ethereum address of the secp256k1 key ``did`` (``did:key:zQ3s…``); raises
    :class:`~keyscope.errors.BadInputError` for another key type or a malformed identifier."""
    if not isinstance(did, str) or not did.startswith(_PREFIX):
        raise BadInputError(f"{shown(did)} is not a did:key identifier (did:key:z followed by base58btc)")
    raw = _b58decode(did[len(_PREFIX) :])
    if raw[:2] != _SECP256K1_PUB:
        raise BadInputError(
            f"{shown(did)} is not a secp256k1 key (multicodec 0x{raw[:2].hex()}): session keys are secp256k1 (ECDSA) keys"
        )
    try:
        public = coincurve.PublicKey(raw[2:])
    except ValueError:
        raise BadInputError(f"{shown(did)} does not hold a valid compressed secp256k1 public key") from None
    return to_address(keccak(public.format(compressed=False)[1:])[12:])


def did_key_of(public_key: bytes) -> str:
    """The ``did:key`` of a secp256k1 public key (33-byte compressed or 65-byte uncompressed)."""
    try:
        compressed = coincurve.PublicKey(public_key).format(compressed=True)
    except ValueError:
        raise BadInputError("not a valid secp256k1 public key") from None
    return _PREFIX + _b58encode(_SECP256K1_PUB + compressed)
