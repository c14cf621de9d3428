"""Envelope encryption for the SQL stores: each private key sealed with AES-256-GCM under an operator KEK.

A sealed value is ``0x01 || nonce (12 bytes, random) || ciphertext || tag (16 bytes)``; the associated data
(the key's address) binds a ciphertext to its row, so a sealed key copied to another row does not open.
The key-encryption key (KEK) is 32 raw bytes, or derived from a passphrase with scrypt and a stored salt.
A store keeps a *check value* (a constant sealed under the KEK) to tell a wrong KEK from a corrupted row.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from Crypto.Cipher import AES

from ..errors import BadInputError

__all__ = ["KEK_BYTES", "MAX_SCRYPT_N", "KeyEncryptionKey", "ScryptParams"]

KEK_BYTES = 32
MAX_SCRYPT_N = 2**20
"""The largest scrypt cost a store derives a key-encryption key with (about 1 GiB of memory at r=8)."""
_MIN_SALT_BYTES = 8
_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_CHECK_PLAINTEXT = b"keyscope key-encryption key check v1"
_CHECK_AAD = b"keyscope:kek-check"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters and salt for deriving a KEK from a passphrase."""

    salt: bytes
    n: int = 2**15
    r: int = 8
    p: int = 1

    @classmethod
    def new(cls, n: int | None = None) -> ScryptParams:
        """Fresh parameters with a random 16-byte salt."""
        cost = 2**15 if n is None else n
        if not _power_of_two(cost, MAX_SCRYPT_N):
            raise BadInputError(f"scrypt_n must be a power of two between 2 and 2**20, got {cost!r}")
        return cls(salt=secrets.token_bytes(16), n=cost)

    def encode(self) -> str:
        """Text form kept in the store: ``scrypt$n$r$p$salt-hex``."""
        return f"scrypt${self.n}${self.r}${self.p}${self.salt.hex()}"

    @classmethod
    def decode(cls, text: str) -> ScryptParams | None:
        """Read :meth:`encode`'s form; None when it is not that form."""
        parts = text.split("$")
        if len(parts) != 5 or parts[0] != "scrypt":
            return None
        try:
            params = cls(salt=bytes.fromhex(parts[4]), n=int(parts[1]), r=int(parts[2]), p=int(parts[3]))
        except ValueError:
            return None
        # what new() writes: anything else is damage (and unbounded values would cost unbounded time or memory)
        if not _power_of_two(params.n, MAX_SCRYPT_N) or not 1 <= params.r <= 32 or not 1 <= params.p <= 16:
            return None
        if _scrypt_memory(params) >= 2**31 - 1:  # more than hashlib.scrypt can be given
            return None
        return params if len(params.salt) >= _MIN_SALT_BYTES else None


def _scrypt_memory(params: ScryptParams) -> int:
    """The memory bound scrypt with ``params`` is given (what it needs, and a MiB to spare)."""
    return 128 * params.r * (params.n + params.p + 2) + 1024 * 1024


def _power_of_two(value: object, limit: int) -> bool:
    """Whether ``value`` is an int (not a bool) power of two between 2 and ``limit``."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 2 <= value <= limit
        and not value & (value - 1)
    )


class KeyEncryptionKey:
    """A 32-byte AES-256 key that seals and opens stored private keys. Never printed."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEK_BYTES:
            size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
            hexadecimal = isinstance(key, str) and len(key.removeprefix("0x")) == 2 * KEK_BYTES
            hint = ": for 64 hex digits, pass bytes.fromhex(text.removeprefix('0x'))" if hexadecimal else ""
            raise BadInputError(
                f"a key-encryption key must be {KEK_BYTES} raw bytes (got {size}){hint}; "
                "or open the store with passphrase= to derive one"
            )
        self._key = bytes(key)

    @classmethod
    def derive(cls, passphrase: str | bytes, params: ScryptParams) -> KeyEncryptionKey:
        """The KEK scrypt derives from ``passphrase`` with ``params``."""
        secret = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)
        if not secret:
            raise BadInputError("the passphrase is empty: give a non-empty passphrase")
        memory = _scrypt_memory(params)
        key = hashlib.scrypt(
            secret, salt=params.salt, n=params.n, r=params.r, p=params.p, maxmem=memory, dklen=KEK_BYTES
        )
        return cls(key)

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` bound to ``associated_data``, with a fresh random nonce."""
        nonce = os.urandom(_NONCE_BYTES)
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
        cipher.update(associated_data)
        ciphertext, tag = cipher.encrypt_and_digest(plaintext)
        return _VERSION + nonce + ciphertext + tag

    def open(self, sealed: bytes, associated_data: bytes) -> bytes | None:
        """The plaintext of :meth:`seal`'s output, or None when it does not authenticate (wrong key, altered
        bytes, other associated data, unknown format)."""
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[:1] != _VERSION:
            return None
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        body, tag = sealed[1 + _NONCE_BYTES : -_TAG_BYTES], sealed[-_TAG_BYTES:]
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
        cipher.update(associated_data)
        try:
            return cipher.decrypt_and_verify(body, tag)
        except ValueError:
            return None

    def check_value(self) -> bytes:
        """A sealed constant that only this KEK opens; stores keep one to recognise their KEK."""
        return self.seal(_CHECK_PLAINTEXT, _CHECK_AAD)

    @staticmethod
    def well_formed(check_value: bytes) -> bool:
        """Whether ``check_value`` has the shape :meth:`check_value` gives (whatever the key)."""
        expected = 1 + _NONCE_BYTES + len(_CHECK_PLAINTEXT) + _TAG_BYTES
        return len(check_value) == expected and check_value[:1] == _VERSION

    def matches(self, check_value: bytes) -> bool:
        """Whether ``check_value`` (from :meth:`check_value`) was made with this KEK."""
        return self.open(check_value, _CHECK_AAD) == _CHECK_PLAINTEXT

    def __repr__(self) -> str:
        return "KeyEncryptionKey(<hidden>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a KeyEncryptionKey is not picklable: pass the KEK or passphrase to each process")
