"""One signing primitive for every raw-hash signature keyscope makes (UserOperation hashes).

:class:`LocalSigner` holds a secp256k1 private key and signs 32-byte digests directly (no EIP-191 prefix),
returning 65 bytes ``r || s || v`` with ``v`` in {27, 28} and ``s`` in the lower half of the curve order,
exactly what ``eth_account``'s ``unsafe_sign_hash`` returns. It signs through coincurve (libsecp256k1),
which is several times faster than going through eth-account's object layers; the test suite checks that
both produce the same bytes. Typed data (EIP-712) is signed through eth-account.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import coincurve
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_utils import keccak

from .errors import BadInputError
from .hexutil import to_address, to_bytes

__all__ = [
    "PLACEHOLDER_ECDSA",
    "SECP256K1_HALF_N",
    "HashSigner",
    "LocalSigner",
    "recover_hash",
    "try_recover",
]

_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = _SECP256K1_N // 2
"""The largest ``s`` an Ethereum signature may carry (EIP-2): the high-``s`` twin of a signature is refused."""

PLACEHOLDER_ECDSA = b"\xff" * 32 + b"\x7f" * 32 + b"\x1c"
"""A 65-byte ``r || s || v`` of the real shape that is nobody's signature, for gas estimates: its non-zero
bytes cost what a real signature's calldata costs at most, and it recovers to no key."""


@runtime_checkable
class HashSigner(Protocol):
    """Anything that can sign a 32-byte digest as an Ethereum ECDSA signature."""

    @property
    def address(self) -> str: ...

    def sign_hash(self, digest: bytes) -> bytes: ...

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes: ...


class LocalSigner:
    """A secp256k1 key held in memory.

    Never printed: ``repr`` shows only the address.
    """

    __slots__ = ("_address", "_coincurve", "_key")

    def __init__(self, private_key: bytes | str) -> None:
        if isinstance(
            private_key, str
        ):  # a digit dropped or added in a copy: say so by the count, never the key
            digits = private_key.strip()
            digits = digits[2:] if digits[:2] in ("0x", "0X") else digits
            if _HEX_DIGITS.fullmatch(digits) and len(digits) != 64:
                raise BadInputError(
                    f"the private key has {len(digits)} hex digits, not 64: give 0x and 64 hex digits"
                )
        raw = to_bytes(private_key, name="private key", length=32, secret=True)
        number = int.from_bytes(raw, "big")
        if not 0 < number < _SECP256K1_N:
            raise BadInputError("the private key is out of range for secp256k1 (it must be in [1, n-1])")
        self._key = raw
        self._coincurve = coincurve.PrivateKey(raw)
        public = self._coincurve.public_key.format(compressed=False)[1:]
        self._address = to_address(keccak(public)[12:])

    @classmethod
    def generate(cls) -> LocalSigner:
        """A new random key (from the OS's CSPRNG)."""
        return cls(Account.create().key)

    @property
    def address(self) -> str:
        """The key's checksummed Ethereum address."""
        return self._address

    @property
    def private_key(self) -> bytes:
        """The raw 32-byte private key. Handle with care: store it only encrypted."""
        return self._key

    def sign_hash(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest as is; returns ``r || s || v`` (65 bytes, ``v`` 27 or 28)."""
        if len(digest) != 32:
            raise BadInputError(f"a digest to sign must be 32 bytes, got {len(digest)}")
        signature = self._coincurve.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes((signature[64] + 27,))

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        """Sign EIP-712 typed data (``domain``, ``types``, ``primaryType``, ``message``) through eth-account."""
        signable = encode_typed_data(full_message=typed_data)
        signed = Account.sign_message(signable, self._key)
        return bytes(signed.signature)

    def __repr__(self) -> str:
        return f"LocalSigner({self._address})"


def recover_hash(digest: bytes, signature: bytes) -> str:
    """The address that signed ``digest`` (65-byte ``r || s || v`` signature, ``v`` 27/28 or 0/1)."""
    if len(signature) != 65:
        raise BadInputError(f"a signature must be 65 bytes, got {len(signature)}")
    v = signature[64]
    recovery = v - 27 if v >= 27 else v
    public = keys.Signature(signature[:64] + bytes((recovery,))).recover_public_key_from_msg_hash(digest)
    return to_address(public.to_canonical_address())


def try_recover(digest: bytes, signature: bytes) -> str | None:
    """The key a contract recovers from the 65-byte ECDSA ``signature`` of ``digest`` with OpenZeppelin's
    ``ECDSA.tryRecover``, as the session module and keyscope's account do: ``s`` in the lower half of the curve's
    order and ``v`` 27 or 28 (a high-``s`` twin, which ``ecrecover`` would take, recovers nothing); None when it
    recovers none."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < s <= SECP256K1_HALF_N:
        return None
    try:
        return recover_hash(digest, signature)
    except (BadInputError, ValueError):
        return None
