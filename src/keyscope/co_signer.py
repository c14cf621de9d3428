"""Co-signers: the second key a co-signed session needs on every operation and every message it signs.

A co-signer is anything that, given a :class:`CoSignRequest`, returns its 65-byte ECDSA signature of
:attr:`CoSignRequest.co_sign_digest` (the module's EIP-712 ``CoSign(sessionId, digest)``), or raises
:class:`CoSignerRefusedError`. :func:`local_co_signer` makes one from a key and a policy function; a wallet or dapp
service holding the key would answer the same requests over the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .erc1271 import co_sign_digest
from .errors import KeyscopeError
from .signers import SignerLike, as_signer

if TYPE_CHECKING:
    from .userop import UserOperation

__all__ = ["CoSignRequest", "CoSigner", "CoSignerRefusedError", "local_co_signer"]


class CoSignerRefusedError(KeyscopeError):
    """The co-signer refused to co-sign: ``reason`` says why (its policy's words)."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CoSignRequest:
    """What a co-signer is asked to approve: an operation (``kind`` ``"operation"``: ``digest`` is its userOpHash,
    ``call_data`` its callData) or a message (``kind`` ``"message"``: ``digest`` is the ERC-7739 hash the session key
    signed, ``message`` the typed data or sign-in text) of session ``session_id`` on ``account``. ``operation`` is
    the operation itself (unsigned), for co-signers that recompute the userOpHash from what they judge."""

    kind: Literal["operation", "message"]
    account: str
    session_id: bytes
    digest: bytes
    chain_id: int
    module: str
    call_data: bytes = b""
    message: object = None
    operation: UserOperation | None = None

    @property
    def co_sign_digest(self) -> bytes:
        """What the co-signer's key signs (raw ECDSA): the module's ``CoSign(sessionId, digest)`` EIP-712 hash."""
        return co_sign_digest(self.session_id, self.digest, chain_id=self.chain_id, module=self.module)


CoSigner = Callable[[CoSignRequest], bytes]
"""A co-signer: returns its 65-byte signature of ``request.co_sign_digest``, or raises CoSignerRefusedError."""


def local_co_signer(key: SignerLike, policy: Callable[[CoSignRequest], str | None] | None = None) -> CoSigner:
    """A co-signer holding ``key`` here (in any form :func:`~keyscope.signers.as_signer` takes: a private key, an
    eth-account ``LocalAccount``, a :class:`~keyscope.signing.HashSigner`; anything else is refused now, never
    shown). ``policy`` (optional) returns why it refuses a request, None to sign."""
    signer = as_signer(key, role="co-signer")  # hex text kept as it was failed at the first operation

    def co_sign(request: CoSignRequest) -> bytes:
        refusal = policy(request) if policy is not None else None
        if refusal is not None:
            raise CoSignerRefusedError(f"the co-signer refused the {request.kind}: {refusal}", reason=refusal)
        return signer.sign_hash(request.co_sign_digest)

    return co_sign
