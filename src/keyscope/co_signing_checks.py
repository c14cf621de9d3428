"""A co-signed session's checks before anything is sent or signed: which co-signer the module requires, that the
session account has one to ask, and that its signature is one the module takes as that key's.

Each refusal is a :class:`~keyscope.errors.CoSignerMismatchError` naming the co-signer the module holds, raised
where the bundler (AA24) or every verifier would otherwise refuse the signature.
"""

from __future__ import annotations

from .co_signer import CoSigner, CoSignRequest
from .errors import BadInputError, CoSignerMismatchError
from .grant import SessionGrant
from .hexutil import ZERO_ADDRESS
from .signing import try_recover
from .userop import UserOperation

__all__ = ["ask_co_signature", "expected_co_signer", "refuse_missing_co_signer"]


def expected_co_signer(grant: SessionGrant, record: tuple[bool, str] | None) -> str | None:
    """The co-signer whose signature the module requires on this session's operations: the one it holds once the
    session is enabled (read with the nonce: the owner may have rotated it, or removed it), else the grant's; None
    when no co-signature is required (a session without co-signer, or one whose co-signer the owner removed).

    ``record`` is the module's co-signer record for the session as last read, (recorded, co-signer), if read."""
    granted = grant.session.co_signer
    if granted is None or record is None or not record[0]:
        return granted
    return None if record[1] == ZERO_ADDRESS else record[1]


def refuse_missing_co_signer(
    grant: SessionGrant, co_signer: CoSigner | None, expected: str | None, kind: str = "operation"
) -> None:
    """Raise :class:`CoSignerMismatchError` when the module requires ``expected``'s co-signature and this session
    account has no co-signer to ask: the module would find the signature invalid (an operation's: AA24)."""
    if expected is None or co_signer is not None:
        return
    refused = (
        "the bundler would refuse the operation (AA24 signature error); nothing was sent"
        if kind == "operation"
        else "every verifier would refuse the signature; nothing was signed"
    )
    raise CoSignerMismatchError(
        f"session 0x{grant.session_id.hex()} is co-signed: the module accepts its {kind}s only with the "
        f"signature of its co-signer {expected} beside the session key's, and this session account has no "
        f"co-signer to ask, so {refused}. "
        "Give the co-signer: net.session(grant, key, co_signer=...) (keyscope.co_signer.local_co_signer(key), or "
        "your co-signer service)",
        session_id="0x" + grant.session_id.hex(),
        expected=expected,
        given=None,
    )


def ask_co_signature(
    grant: SessionGrant,
    co_signer: CoSigner | None,
    kind: str,
    digest: bytes,
    call_data: bytes = b"",
    message: object = None,
    operation: UserOperation | None = None,
    expected: str | None = None,
) -> bytes:
    """The co-signer's signature of ``digest`` (none without a co-signer). With ``expected`` (the co-signer the
    module holds), a signature the module would not take as that key's raises
    :class:`~keyscope.errors.CoSignerMismatchError`."""
    if co_signer is None:
        return b""
    request = CoSignRequest(
        kind,  # type: ignore[arg-type]
        grant.account,
        grant.session_id,
        digest,
        grant.chain_id,
        grant.module,
        call_data=call_data,
        message=message,
        operation=operation,
    )
    co_signature = co_signer(request)
    if len(co_signature) != 65:
        raise BadInputError(
            f"the co-signer answered {len(co_signature)} bytes, not a 65-byte ECDSA signature"
        )
    if expected is not None:
        given = try_recover(request.co_sign_digest, co_signature)
        if given != expected:
            what = (
                f"is by {given}"
                if given is not None
                else "is not a signature the module takes (low s, v 27 or 28)"
            )
            refused = (
                "the bundler would refuse the operation (AA24 signature error); nothing was sent"
                if kind == "operation"
                else "every verifier would refuse the signature; nothing was signed"
            )
            raise CoSignerMismatchError(
                f"the co-signer's signature 0x{co_signature.hex()} {what}, but the module checks session "
                f"0x{grant.session_id.hex()}'s {kind}s against its co-signer {expected} (the owner may have "
                f"rotated it), so {refused}. Ask the session's current co-signer",
                session_id="0x" + grant.session_id.hex(),
                expected=expected,
                given=given,
            )
    return co_signature
