"""The owner's signature of an off-chain grant, checked before the grant is handed out.

A grant whose signature the account would refuse fails only at the session's first operation, as an AA23 far
from its cause. So a signature is checked when the grant is completed, the way the module will check it:

* on a deployed account, through the account's ERC-1271 ``isValidSignature``, asked as the module asks it
  (the account is the final word: an owner that is itself a smart account, or a validator with its own rules,
  is judged by the account's own code);
* on an account not deployed yet, when the owner's key comes from a request read from elsewhere (a dapp's JSON,
  whose ``owner`` field no signature covers) and a node is given (``create=True``): through the account's ERC-1271
  all the same, the account created for one ``eth_call`` by the factory call its first operation carries
  (:mod:`keyscope.accounts.deployless`); a request naming no factory is refused, except for an EOA not upgraded
  yet, whose key is the account itself;
* otherwise, on an account not deployed yet, against the owner's key: the signature, unwrapped from the account
  kind's ERC-1271 framing, must recover to the owner over the digest the kind has the owner sign.
"""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as SignatureShapeError

from .accounts import MODULE_TYPE_VALIDATOR, AccountKind
from .accounts.delegate import KeyscopeDelegateKind
from .accounts.deployless import ask_undeployed_account
from .accounts.verify import ERC1271_MAGIC, verify_owner_signature
from .endpoints import Endpoints
from .errors import (
    AccountSetupError,
    BadInputError,
    ConfigurationError,
    InvalidGrantSignatureError,
    KeyscopeError,
    UnsupportedAccountError,
)
from .grant import SessionGrant
from .hexutil import to_address
from .selectors import IS_MODULE_INSTALLED, SIGNER
from .signing import recover_hash, try_recover

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


def _shown(signature: bytes) -> str:
    """``signature`` as 0x-hex, its middle elided past 16 bytes."""
    text = signature.hex()
    return "0x" + (text if len(signature) <= 16 else f"{text[:16]}…{text[-16:]}")


def _refusal(
    grant: SessionGrant, owner: str | None, recovered: str | None, detail: str, signature: bytes = b""
) -> str:
    who = f"the owner {owner}" if owner is not None else "the account's owner"
    if recovered is not None:
        found = f"it recovers to {recovered}"
    elif not signature:
        found = "it is empty and recovers to no key"
    else:  # what it is, so that a truncated or mangled value is seen as such
        found = f"it is {len(signature)} bytes ({_shown(signature)}) and recovers to no key"
        if len(signature) < _ECDSA_LENGTH:
            found += f" (an ECDSA signature is {_ECDSA_LENGTH} bytes)"
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
    create: bool = False,
) -> None:
    """Raise unless the account will accept ``signature`` as its owner's grant of ``grant``'s session.

    ``owner`` is the owner's key (None when unknown); ``endpoints`` reach the chain (None: check locally only);
    ``deployed`` says whether the account has code (None: ask). With ``create`` (and ``endpoints``), an account
    without code is asked all the same, created for one ``eth_call`` by ``grant``'s factory call: ``owner`` is then
    no judge (a request read from a dapp's JSON names whatever owner the dapp wrote). Raises
    :class:`~keyscope.errors.InvalidGrantSignatureError` for a signature by another key or by none,
    :class:`~keyscope.errors.AccountSetupError` when a deployed account refuses a signature by its owner's key
    (a wrong account kind or owner validator), :class:`~keyscope.errors.UnsupportedAccountError` when an account
    without code cannot be created to be asked (``create``: no factory named, the factory call reverts, or it
    creates another account), and :class:`~keyscope.errors.ConfigurationError` when nothing can judge it (no
    owner and no chain).
    """
    owner = to_address(owner, name="owner") if owner is not None else None
    if not signature:
        raise InvalidGrantSignatureError(_refusal(grant, owner, None, ""), account=grant.account, owner=owner)
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
                    _refusal(grant, owner, recovered, " (the account refuses it too)", signature),
                    account=grant.account,
                    owner=owner,
                    recovered=recovered,
                ) from None
            raise
        return
    if create and endpoints is not None:
        _check_undeployed(grant, signature, kind=kind, endpoints=endpoints, recovered=recovered)
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
            _refusal(grant, owner, recovered, "", signature),
            account=grant.account,
            owner=owner,
            recovered=recovered,
        )


def _check_undeployed(
    grant: SessionGrant, signature: bytes, *, kind: AccountKind, endpoints: Endpoints, recovered: str | None
) -> None:
    """Raise unless the account ``grant`` is for, which has no code yet, takes ``signature`` once created as its
    first operation will create it (see :func:`check_grant_signature`'s ``create``)."""
    if isinstance(kind, KeyscopeDelegateKind):  # an EOA not upgraded yet: its own key is its only owner
        if recovered != grant.account:
            raise InvalidGrantSignatureError(
                _refusal(
                    grant,
                    grant.account,
                    recovered,
                    " (an EOA's grant is signed by the EOA's own key)",
                    signature,
                ),
                account=grant.account,
                owner=grant.account,
                recovered=recovered,
            )
        return
    if grant.factory is None or not grant.factory_data:
        raise UnsupportedAccountError(
            f"cannot check the signature of session 0x{grant.session_id.hex()}: the account {grant.account} has no "
            "code yet and the grant request names no factory and factory_data that create it, so the account "
            "cannot be asked whose signature it takes (the request's owner field is no answer: nothing signs it). "
            "Create the account first (its owner's first operation: Owner.install_sessions() or any owner "
            "operation), then ask for the grant again; or send a grant request carrying the account's factory data "
            "(Owner.prepare_grant writes it)"
        )
    bare_rule = kind.bare_owner_signature_from_validators_only
    reads = (
        [
            SIGNER,
            IS_MODULE_INSTALLED
            + abi_encode(["uint256", "address", "bytes"], [MODULE_TYPE_VALIDATOR, grant.module, b""]),
        ]
        if bare_rule
        else []
    )
    answer = ask_undeployed_account(
        endpoints.chain,
        account=grant.account,
        factory=grant.factory,
        factory_data=grant.factory_data,
        digest=grant.digest,
        signature=signature,
        reads=reads,
    )
    if answer.magic == ERC1271_MAGIC:
        return
    account_owner: str | None = None
    if bare_rule:
        # keyscope's account takes its owner's bare signature from the validator it asks to validate an operation
        # (the session module in ENABLE mode), which the check cannot be: its rule is applied to what it holds
        signer_word, installed_word = answer.reads
        if len(signer_word) >= 32 and not any(signer_word[:12]):  # an address word, not a stray answer
            account_owner = to_address("0x" + signer_word[12:32].hex())
        installed = len(installed_word) >= 32 and int.from_bytes(installed_word[:32], "big") == 1
        # the account's OpenZeppelin ECDSA takes no high-s twin of the owner's signature
        if account_owner is not None and try_recover(grant.digest, signature) == account_owner:
            if installed:
                return
            raise AccountSetupError(
                f"the account {grant.account}, as the grant request's factory data creates it, does not have the "
                f"session module {grant.module} installed: it would not ask the module to validate the session's "
                "operations, nor take the owner's signature of the grant. Prepare the grant request again with "
                "Owner.prepare_grant, whose factory data installs the module",
                account=grant.account,
                kind=kind.name,
            )
    detail = " (the account, created as its first operation creates it, refuses it"
    detail += f": isValidSignature answered 0x{answer.magic.hex()})" if answer.magic else ")"
    raise InvalidGrantSignatureError(
        _refusal(grant, account_owner, recovered, detail, signature),
        account=grant.account,
        owner=account_owner,
        recovered=recovered,
    )
