"""Session signatures in the account's name (ERC-1271), and co-signatures: their byte layouts and the digests each
key signs, as pure functions mirroring ``contracts/SessionSignatureVerifier.sol`` and ``SessionCoSigning.sol``.

What the account hands the module (after its own routing prefix, see ``docs/accounts.md``)::

    TYPED DATA  0x01 | who | key (20) or sessionId (32) | signatures | appDomainSeparator (32)
                | contentsTypeHash (32) | n (1) | frame sizes (n x 1) | nested typehashes ((n-1) x 32) | words
    SIGN-IN     0x02 | who | key (20) or sessionId (32) | signatures | first line's length (2) | message

    who 0x00  a session without co-signer: the key, then its signature (65)
        0x01  a co-signed session whose co-signer was removed: the session id, then the key's signature (65)
        0x02  a co-signed session: the session id, the key's signature (65), the co-signer's (65)

The co-signer signs ``CoSign(bytes32 sessionId,bytes32 digest)`` in the module's EIP-712 domain: ``digest`` is the
userOpHash of an operation, or the ERC-7739 hash the session key signed for a message.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

from .errors import BadInputError
from .hexutil import to_address, to_bytes
from .session import DOMAIN_NAME, DOMAIN_VERSION
from .typed_data import Frames, domain_separator

__all__ = [
    "CO_SIGN_TYPEHASH",
    "SIGN_IN",
    "SIGN_TYPED_DATA",
    "Signer",
    "co_sign_digest",
    "co_signed_space",
    "encode_sign_in_signature",
    "encode_typed_data_signature",
]

SIGN_TYPED_DATA = 0x01
SIGN_IN = 0x02
WHO_KEY = 0x00
WHO_SESSION = 0x01
WHO_CO_SIGNED = 0x02
CO_SIGN_TYPEHASH = keccak(b"CoSign(bytes32 sessionId,bytes32 digest)")
_CO_SIGNED_SPACE_TAG = b"keyscope co-signed session"


def co_signed_space(session_id: bytes) -> str:
    """The address a co-signed session's permissions are stored under (no single key reaches them)."""
    return to_address(keccak(_CO_SIGNED_SPACE_TAG + to_bytes(session_id, name="session id", length=32))[12:])


def co_sign_digest(session_id: bytes, digest: bytes, *, chain_id: int, module: str) -> bytes:
    """What a co-signer signs for ``digest`` (a userOpHash, or the hash a session key signed for a message) of
    session ``session_id``: EIP-712 ``CoSign(sessionId, digest)`` in the module's domain on ``chain_id``."""
    separator = domain_separator(
        {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": module}
    )
    struct_hash = keccak(
        CO_SIGN_TYPEHASH
        + to_bytes(session_id, name="session id", length=32)
        + to_bytes(digest, name="digest", length=32)
    )
    return keccak(b"\x19\x01" + separator + struct_hash)


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signs a session signature: a session without co-signer is named by its key; a co-signed session by its id,
    with the co-signature when it has a co-signer (``co_signed``: granted with one)."""

    key: str
    session_id: bytes
    co_signed: bool = False
    has_co_signer: bool = False

    def header(self, signature: bytes, co_signature: bytes | None) -> bytes:
        """``who | key or session id | signatures`` for the session key's ``signature`` and the ``co_signature``."""
        if len(signature) != 65:
            raise BadInputError(f"a session key's signature is 65 bytes, got {len(signature)}")
        if not self.co_signed:
            if co_signature is not None:
                raise BadInputError("this session has no co-signer: give no co-signature")
            return bytes((WHO_KEY,)) + to_bytes(self.key, length=20) + signature
        if not self.has_co_signer:
            if co_signature is not None:
                raise BadInputError("this session's co-signer was removed: give no co-signature")
            return bytes((WHO_SESSION,)) + self.session_id + signature
        if co_signature is None or len(co_signature) != 65:
            raise BadInputError("this co-signed session needs the co-signer's 65-byte signature too")
        return bytes((WHO_CO_SIGNED,)) + self.session_id + signature + co_signature


def encode_typed_data_signature(
    header: bytes, app_separator: bytes, contents_type_hash: bytes, frames: Frames
) -> bytes:
    """The TYPED DATA layout: ``0x01 | header | appDomainSeparator | contentsTypeHash | n | sizes | nested typehashes
    | words`` (``header`` from :meth:`Signer.header`)."""
    return (
        bytes((SIGN_TYPED_DATA,))
        + header
        + to_bytes(app_separator, length=32)
        + to_bytes(contents_type_hash, length=32)
        + bytes((len(frames.sizes),))
        + bytes(frames.sizes)
        + b"".join(frames.nested_type_hashes)
        + b"".join(frames.words)
    )


def encode_sign_in_signature(header: bytes, message: bytes, first_line_length: int) -> bytes:
    """The SIGN-IN layout: ``0x02 | header | first line's length (2 bytes) | message``."""
    if not 0 < first_line_length <= min(len(message), 0xFFFF):
        raise BadInputError(f"the first line's length {first_line_length} does not fit the message")
    return bytes((SIGN_IN,)) + header + first_line_length.to_bytes(2, "big") + message
