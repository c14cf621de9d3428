"""A session's ERC-1271 signature, checked before it is returned: typed data whose verifying contract the module
refuses a session's signature to, and the account's own answer to ``isValidSignature`` for the signature just made.

Each refusal is a :class:`~keyscope.message_signing.SignatureRefusedError` naming the module's error (or the
SDK's) and the typed-data or sign-in permission.
"""

from __future__ import annotations

from collections.abc import Callable

from eth_abi import encode as abi_encode

from .accounts.verify import ERC1271_MAGIC, unfunded_sender
from .chain import Chain
from .errors import CallRevertedError, SessionRevokedError
from .grant import SessionGrant
from .hexutil import to_address
from .message_signing import SignatureRefusedError
from .rpc import JsonRpcError
from .selectors import IS_VALID_SIGNATURE
from .typed_data import TypedData

__all__ = [
    "refuse_account_passing_another_sender",
    "refuse_forbidden_verifier",
    "require_account_accepts",
    "signature_refusal",
    "verifying_contract",
]


def signature_refusal(
    grant: SessionGrant, text: str, reason: str, permission_index: int
) -> SignatureRefusedError:
    """The :class:`SignatureRefusedError` of this session for ``text``, ``reason`` (the module's error name or
    the SDK's) and the typed-data or sign-in permission ``permission_index``."""
    return SignatureRefusedError(
        text,
        reason=reason,
        session_id="0x" + grant.session_id.hex(),
        permission_index=permission_index,
    )


def refuse_forbidden_verifier(grant: SessionGrant, typed: TypedData, permission_index: int) -> None:
    """Refuse, before anything is signed, typed data whose verifying contract is the account or the session
    module: the module refuses a session's signature any of them asks about (``SignatureSenderForbidden``: an
    account asks its validators for its owner's approval of its own configuration), whatever the chain says."""
    verifying = verifying_contract(typed)
    named = {
        to_address(grant.account): "the account itself",
        to_address(grant.module): "the session module",
    }
    what = None if verifying is None else named.get(verifying)
    if what is None:
        return
    raise signature_refusal(
        grant,
        f"nothing was signed: the typed data's verifying contract {verifying} is {what}, and the module refuses "
        "a session's signature to the account and to itself (the account asks its validators for its owner's "
        "approval of its own configuration)",
        "SignatureSenderForbidden",
        permission_index,
    )


def require_account_accepts(
    chain: Chain,
    grant: SessionGrant,
    digest: bytes,
    signature: bytes,
    verifier: str | None,
    permission_index: int,
    recheck: Callable[[], object],
) -> None:
    """Ask the account itself, as a verifier would (``isValidSignature(digest, signature)``, from ``verifier``
    when the typed data names one), whether it takes the signature just made, and refuse to return one it does
    not: an account that does not pass ERC-1271 questions to its validators, or a session revoked or
    invalidated on chain since this object last looked, would otherwise leave a signature every verifier
    refuses.

    ``recheck`` reads the session's status again, raising :class:`~keyscope.errors.SessionRevokedError` when it is
    revoked or invalidated: the refusal then says which."""
    account = grant.account
    question = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    try:
        try:
            answer = chain.call(account, question, sender=verifier)
        except JsonRpcError as error:  # a node that charges calls for gas will not run one from a contract
            if verifier is None or not unfunded_sender(error):
                raise
            answer = chain.call(account, question)
    except CallRevertedError as error:
        said = f"reverted with {error.description}"
    else:
        if answer[:4] == ERC1271_MAGIC:
            return
        said = f"answered 0x{answer[:32].hex()}" if answer else "answered nothing"
    asker = f" asked by {verifier}" if verifier is not None else ""
    said = (
        f"no signature was returned: the account {account}'s isValidSignature{asker} {said} for the session's "
        f"signature of 0x{digest.hex()}, so every verifier would refuse it"
    )
    try:  # a session revoked or invalidated since this object last looked: say which
        recheck()
    except SessionRevokedError as gone:
        raise signature_refusal(grant, f"{said}: {gone}", "AccountRefused", permission_index) from None
    raise signature_refusal(
        grant,
        f"{said}. The account may not pass ERC-1271 questions to its validators (the module "
        f"{grant.module}), or the session was revoked or every session invalidated on chain: see "
        "session.status()",
        "AccountRefused",
        permission_index,
    )


def refuse_account_passing_another_sender(
    chain: Chain, grant: SessionGrant, digest: bytes, signature: bytes, permission_index: int
) -> None:
    """Refuse a signature the account takes when it asks itself (``isValidSignature`` from the account's own
    address): an account handing the session module its caller as ``sender`` (ERC-7579) makes the module refuse
    it, since the account, the module and the account's other modules take the account's ERC-1271 answer as its
    owner's approval of their own configuration. An account that hands another ``sender`` (the zero address, say)
    lets every module of the account, its owner's validator among them, take a session's signature as the owner's
    (threat model, attacks 85, 161 and 353). A node that cannot run the call from a contract leaves the check."""
    account = to_address(grant.account)
    question = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = chain.call(account, question, sender=account)
    except CallRevertedError:
        return
    except JsonRpcError as error:
        if unfunded_sender(error):
            return
        raise
    if answer[:4] != ERC1271_MAGIC:
        return
    raise signature_refusal(
        grant,
        f"no signature was returned: the account {account} takes the session's signature of 0x{digest.hex()} even "
        "when it asks itself, so it does not hand the session module its caller as ERC-1271's sender; the module "
        "then cannot refuse the signature to the account's own modules (its owner's validator among them), which "
        "take the account's answer as the owner's approval of their configuration. Do not grant signing "
        "permissions on this account (docs/accounts.md: an account must pass its caller as sender)",
        "AccountSenderUnchecked",
        permission_index,
    )


def verifying_contract(typed: TypedData) -> str | None:
    """The typed data's ``verifyingContract`` (the contract that will ask the account), if its domain names one."""
    verifying = typed.domain.get("verifyingContract")
    return None if verifying is None else to_address(verifying, name="the domain's verifyingContract")
