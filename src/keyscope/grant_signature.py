"""The owner's signature of an off-chain grant, checked before the grant is handed out.

A grant whose signature the account would refuse fails only at the session's first operation, as an AA23 far
from its cause. So a signature is checked when the grant is completed, the way the module will check it:

* on a deployed account, through the account's ERC-1271 ``isValidSignature``, asked as the module asks it
  (the account is the final word: an owner that is itself a smart account, or a validator with its own rules,
  is judged by the account's own code);
* on an account not deployed yet, against the owner's key: the signature, unwrapped from the account kind's
  ERC-1271 framing, must recover to the owner over the digest the kind has the owner sign.
"""

from __future__ import annotations

from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as SignatureShapeError

from .accounts import AccountKind
from .accounts.verify import verify_owner_signature
from .endpoints import Endpoints
from .errors import (
    AccountSetupError,
    BadInputError,
    ConfigurationError,
    InvalidGrantSignatureError,
    KeyscopeError,
)
from .grant import SessionGrant
from .hexutil import to_address
from .signing import recover_hash

__all__ = ["check_grant_signature", "recover_grant_signer"]

_ECDSA_LENGTH = 65


def recover_grant_signer(kind: AccountKind, grant: SessionGrant, signature: bytes) -> str | None:
    """The key whose ECDSA signature ``signature`` is (framed for the account's ``isValidSignature`` as ``kind``
    frames it) over the digest ``kind`` has the owner sign for ``grant``; None when it is not such a
    signature."""
    if len(signature) < _ECDSA_LENGTH:
        return None
    raw = signature[-_ECDSA_LENGTH:]
    try:
        if kind.wrap_erc1271_signature(raw) != signature:
            return None
        digest = kind.erc1271_digest(grant.account, grant.chain_id, grant.digest)
    except KeyscopeError:  # the adapter lacks what framing needs (its owner validator): the account judges
        return None
    try:
        return recover_hash(digest, raw)
    except (BadInputError, BadSignature, SignatureShapeError):  # r or s out of range, no point: nobody's
        return None


def _refusal(grant: SessionGrant, owner: str | None, recovered: str | None, detail: str) -> str:
    who = f"the owner {owner}" if owner is not None else "the account's owner"
    found = f"it recovers to {recovered}" if recovered is not None else "it is not an ECDSA signature of it"
    return (
        f"the signature does not grant session 0x{grant.session_id.hex()}: {found}, not to {who} of "
        f"{grant.account}{detail}. Have {who}'s wallet sign the request's typed_data with eth_signTypedData_v4 "
        f"(chain {grant.chain_id}), and pass the signature exactly as the wallet returns it"
    )


def check_grant_signature(
    grant: SessionGrant,
    signature: bytes,
    *,
    kind: AccountKind,
    owner: str | None,
    endpoints: Endpoints | None,
    deployed: bool | None = None,
) -> None:
    """Raise unless the account will accept ``signature`` as its owner's grant of ``grant``'s session.

    ``owner`` is the owner's key (None when unknown); ``endpoints`` reach the chain (None: check locally only);
    ``deployed`` says whether the account has code (None: ask). Raises
    :class:`~keyscope.errors.InvalidGrantSignatureError` for a signature by another key or by none,
    :class:`~keyscope.errors.AccountSetupError` when a deployed account refuses a signature by its owner's key
    (a wrong account kind or owner validator), and :class:`~keyscope.errors.ConfigurationError` when nothing
    can judge it (no owner and no chain).
    """
    owner = to_address(owner, name="owner") if owner is not None else None
    if not signature:
        raise InvalidGrantSignatureError(
            _refusal(grant, owner, None, " (the signature is empty)"), account=grant.account, owner=owner
        )
    recovered = recover_grant_signer(kind, grant, signature)
    if deployed is None and endpoints is not None:
        deployed = endpoints.is_deployed(grant.account)
    if deployed and endpoints is not None:
        try:
            verify_owner_signature(
                endpoints.chain, kind, grant.account, grant.module, grant.digest, signature
            )
        except AccountSetupError:
            if owner is not None and recovered != owner:  # the plainer cause: another key signed
                raise InvalidGrantSignatureError(
                    _refusal(grant, owner, recovered, " (the account refuses it too)"),
                    account=grant.account,
                    owner=owner,
                    recovered=recovered,
                ) from None
            raise
        return
    if owner is None:
        raise ConfigurationError(
            f"cannot check the grant's signature: the account {grant.account} has no code to ask"
            + (" and" if endpoints is not None else ", no node was given, and")
            + " the owner's address is unknown. Complete the request made by Owner.prepare_grant, or pass "
            "owner= (and network= to ask a deployed account)"
        )
    if recovered != owner:
        raise InvalidGrantSignatureError(
            _refusal(grant, owner, recovered, ""), account=grant.account, owner=owner, recovered=recovered
        )
