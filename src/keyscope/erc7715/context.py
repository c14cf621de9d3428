"""The ``context`` of keyscope's ERC-7715 responses: the grant itself.

``context`` is ``"keyscope.grant.v1:"`` followed by the :class:`~keyscope.grant.SessionGrant`'s JSON (UTF-8),
as 0x-hex. It carries everything a dapp needs to use the session (the session, the account, the module, the
owner's signature, the factory of an account not deployed yet) except the session key, which the dapp holds;
``wallet_revokePermissions`` reads the session's id from it. Nothing in it is secret.
"""

from __future__ import annotations

from pydantic import ValidationError

from ..errors import BadInputError
from ..grant import SessionGrant
from ..hexutil import to_bytes

__all__ = ["CONTEXT_PREFIX", "grant_from_context", "grant_to_context"]

CONTEXT_PREFIX = b"keyscope.grant.v1:"


def grant_to_context(grant: SessionGrant) -> bytes:
    """The ``context`` bytes that carry ``grant``."""
    plain = SessionGrant.model_construct(**{name: getattr(grant, name) for name in SessionGrant.model_fields})
    return CONTEXT_PREFIX + plain.to_json().encode()


def grant_from_context(context: bytes | str) -> SessionGrant:
    """The grant a ``context`` (bytes or 0x-hex) carries; raises :class:`~keyscope.errors.BadInputError` for a
    context keyscope did not write."""
    raw = to_bytes(context, name="permission context")
    if not raw.startswith(CONTEXT_PREFIX):
        raise BadInputError(
            f"the permission context 0x{raw[:24].hex()}{'…' if len(raw) > 24 else ''} was not written by keyscope "
            f"(keyscope's contexts start with {CONTEXT_PREFIX.decode()!r}, 0x{CONTEXT_PREFIX.hex()}): give the "
            "context of a keyscope grant"
        )
    try:
        return SessionGrant.from_json(raw[len(CONTEXT_PREFIX) :])
    except ValidationError as error:
        raise BadInputError(
            f"the permission context holds no valid grant: {error.errors()[0]['msg']}"
        ) from None
