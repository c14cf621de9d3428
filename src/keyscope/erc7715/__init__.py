"""ERC-7715 for keyscope: ``wallet_grantPermissions`` requests read as a keyscope session, answered with
``PermissionResponse`` objects whose ``context`` carries the grant; ``wallet_revokePermissions`` and the
``permissions`` capability of ``wallet_getCapabilities``.

::

    plan = plan_from_requests(params)                 # raises UnsupportedTypeError naming a type it cannot grant
    ...                                               # the owner signs (the consent page does this)
    result = responses_for(plan, grant)               # wallet_grantPermissions' result
    grant = grant_to_revoke({"permissionContext": ...})

See docs/erc7715.md for the types keyscope grants and their JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import BadInputError, shown
from ..grant import SessionGrant
from ..hexutil import to_address
from .context import CONTEXT_PREFIX, grant_from_context, grant_to_context
from .didkey import address_of_did_key, did_key_of
from .mapping import (
    GAS_COST_POLICY,
    PAYMASTERS_POLICY,
    PERMISSION_TYPES,
    POLICY_TYPES,
    REFUSED_TYPES,
    SIGNER_TYPES,
    VALID_AFTER_POLICY,
    SessionPlan,
    UnsupportedTypeError,
    expiry_of,
    last_valid_second,
    permission_entry,
    plan_from_requests,
    request_policies,
    requests_for_session,
    session_policies,
)
from .models import (
    AccountMeta,
    PermissionRequest,
    PermissionResponse,
    PermissionsCapability,
    RevokePermissionsParams,
    SignerMeta,
    TypedEntry,
    read_model,
)

__all__ = [
    "CONTEXT_PREFIX",
    "GAS_COST_POLICY",
    "PAYMASTERS_POLICY",
    "PERMISSION_TYPES",
    "POLICY_TYPES",
    "REFUSED_TYPES",
    "SIGNER_TYPES",
    "VALID_AFTER_POLICY",
    "AccountMeta",
    "PermissionRequest",
    "PermissionResponse",
    "PermissionsCapability",
    "RevokePermissionsParams",
    "SessionPlan",
    "SignerMeta",
    "TypedEntry",
    "UnsupportedTypeError",
    "address_of_did_key",
    "capabilities",
    "did_key_of",
    "expiry_of",
    "grant_from_context",
    "grant_from_response",
    "grant_to_context",
    "grant_to_revoke",
    "last_valid_second",
    "permission_entry",
    "permissions_capability",
    "plan_from_requests",
    "request_policies",
    "requests_for_session",
    "responses_for",
    "session_policies",
]


def responses_for(plan: SessionPlan, grant: SessionGrant) -> list[PermissionResponse]:
    """``wallet_grantPermissions``' result for the requests of ``plan``, granted as ``grant``: each request as
    granted (the account, the expiry and the policies the session has, the owner's default gas cap included) with
    ``context`` carrying the grant, and ``accountMeta`` when the session's first operation creates the
    account.

    Raises :class:`~keyscope.errors.BadInputError` when ``grant`` is not a grant of ``plan`` (another chain, another
    account than the requests name, or another session than they ask for): the responses would describe what was
    not granted."""
    _check_grant_of_plan(plan, grant)
    context = grant_to_context(grant)
    meta = (
        AccountMeta(factory=grant.factory, factory_data=grant.factory_data)
        if grant.factory is not None
        else None
    )
    return [
        PermissionResponse(
            chain_id=grant.chain_id,
            address=grant.account,
            expiry=expiry_of(grant.valid_until),
            signer=request.signer,
            permission=request.permission,
            policies=request_policies(grant.session, span),
            context=context,
            account_meta=meta,
        )
        for request, span in zip(plan.requests, plan.spans, strict=True)
    ]


def _check_grant_of_plan(plan: SessionPlan, grant: SessionGrant) -> None:
    """Refuse a grant whose chain, account or session differ from what ``plan``'s requests ask."""
    if grant.chain_id != plan.chain_id:
        raise BadInputError(
            f"the grant is for chain {grant.chain_id}, the requests ask for chain {plan.chain_id}: write the "
            "responses with the grant of these requests"
        )
    if plan.account is not None and to_address(grant.account) != to_address(plan.account):
        raise BadInputError(
            f"the grant is for account {grant.account}, the requests ask for account {plan.account}: have the "
            "owner of that account sign the session the requests ask for"
        )
    asked = plan.session(max_gas_cost=grant.session.max_gas_cost, salt=grant.session.salt)
    if asked != grant.session:
        raise BadInputError(
            f"the grant's session 0x{bytes(grant.session_id).hex()} is not the one the requests ask for (key, window, "
            "permissions, gas cap, paymasters or limits differ): sign plan.session(...) of these requests, "
            "then write their responses with that grant"
        )


def grant_from_response(response: PermissionResponse | Mapping[str, Any]) -> SessionGrant:
    """The grant a ``PermissionResponse`` (or its JSON) carries in its ``context``."""
    read = read_model(PermissionResponse, response, "the permission response")
    return grant_from_context(read.context)


def grant_to_revoke(params: RevokePermissionsParams | Mapping[str, Any]) -> SessionGrant:
    """The grant ``wallet_revokePermissions``' params name (its session is what the owner revokes)."""
    read = read_model(RevokePermissionsParams, params, "wallet_revokePermissions' params")
    return grant_from_context(read.permission_context)


def permissions_capability() -> PermissionsCapability:
    """The ``permissions`` capability: the signer, permission and policy types keyscope grants."""
    return PermissionsCapability(
        supported=True,
        signer_types=tuple(SIGNER_TYPES),
        permission_types=tuple(PERMISSION_TYPES),
        policy_types=tuple(POLICY_TYPES),
    )


def _chain_id(value: Any, index: int) -> int:
    """A chain id given as a number or as the wire writes it (0x-hex, or decimal digits)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (text := value.strip()):
        if (
            text[:2] in ("0x", "0X")
            and all(c in "0123456789abcdefABCDEF" for c in text[2:])
            and len(text) > 2
        ):
            number = int(text[2:], 16)
        elif text.isascii() and text.isdigit():
            number = int(text, 10)
    if number is None or number <= 0:
        raise BadInputError(
            f"capabilities: chain id {index}, {shown(value)}, is not a chain id: give positive integers, as numbers "
            "or 0x-hex as wallet_getCapabilities' params write them (e.g. [8453] or ['0x2105'])"
        )
    return number


def capabilities(chain_ids: Iterable[int | str]) -> dict[str, dict[str, Any]]:
    """``wallet_getCapabilities``' answer for ``chain_ids`` (numbers, or 0x-hex as its params write them):
    ``{"0x<chain>": {"permissions": {...}}}``."""
    if isinstance(chain_ids, (str, bytes, bytearray, Mapping)) or not isinstance(chain_ids, Iterable):
        raise BadInputError(
            f"capabilities takes a list of chain ids (e.g. [8453] or ['0x2105']), got {type(chain_ids).__name__} "
            f"{shown(chain_ids)}"
        )
    ids = [_chain_id(chain_id, index) for index, chain_id in enumerate(chain_ids)]
    capability = permissions_capability().model_dump(mode="json", by_alias=True)
    return {hex(chain_id): {"permissions": capability} for chain_id in ids}
