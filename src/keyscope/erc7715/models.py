"""The ERC-7715 wire formats keyscope reads and writes, as pydantic models with the ERC's JSON names.

These follow the draft's ``wallet_grantPermissions`` revision: a ``PermissionRequest`` is one permission with
its policies, for one signer, account, chain and expiry; a ``PermissionResponse`` is the request as granted
plus ``context`` (here: the grant, see :mod:`keyscope.erc7715.context`) and ``accountMeta`` (the factory of an
account not deployed yet). ``wallet_revokePermissions`` takes a ``permissionContext``; the ``permissions``
capability of ``wallet_getCapabilities`` lists the signer, permission and policy types a wallet grants.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import BadInputError
from ..hexutil import Address, HexData, HexInt, WireInt

__all__ = [
    "FLAGS",
    "AccountMeta",
    "PermissionRequest",
    "PermissionResponse",
    "PermissionsCapability",
    "RevokePermissionsParams",
    "SignerMeta",
    "TypedEntry",
    "read_model",
]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


FLAGS = ("isAdjustmentAllowed", "required")
"""The fields other revisions of the draft put beside a type's ``data``: true or false, kept and echoed."""


class TypedEntry(BaseModel):
    """A ``{type, data}`` object: a signer, a permission or a policy. The flags other ERC revisions add
    (``required``, ``isAdjustmentAllowed``: booleans) are kept as they came and echoed in the response; any other
    field beside ``type`` and ``data`` is refused, as keyscope maps ``data`` only: a constraint put there (the
    policies an earlier revision nests in a permission) would be granted without."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type", mode="before")
    @classmethod
    def _custom_type(cls, value: Any) -> Any:
        # viem writes a custom type as {"custom": "name"}
        if isinstance(value, dict) and set(value) == {"custom"}:
            return value["custom"]
        return value

    @model_validator(mode="after")
    def _only_flags_beside_data(self) -> TypedEntry:
        extra = self.model_extra or {}
        unknown = sorted(set(extra) - set(FLAGS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(map(repr, unknown))} beside 'type' and 'data' (known: "
                f"{', '.join(FLAGS)}); put the {self.type!r} constraints inside 'data', and policies in the "
                "request's 'policies': keyscope refuses rather than grant without a constraint the request may expect"
            )
        for name, value in extra.items():
            if not isinstance(value, bool):
                raise ValueError(f"{name!r} is true or false, got {value!r}")
        return self


class PermissionRequest(_Wire):
    """One element of ``wallet_grantPermissions``' params: ``permission`` (with ``policies``) for ``signer``, on
    the account ``address`` (None: the wallet's choice) of chain ``chain_id``, until ``expiry`` (unix seconds;
    0 is read as no expiry, which the consent page warns about; one after the year 9999, which can only be
    milliseconds, is refused when the requests are read into a session by
    :func:`~keyscope.erc7715.plan_from_requests`)."""

    chain_id: HexInt = Field(alias="chainId", ge=1)
    address: Address | None = None
    expiry: WireInt = Field(ge=0, lt=2**48)
    signer: TypedEntry
    permission: TypedEntry
    policies: tuple[TypedEntry, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """The JSON object (camelCase names, ``chainId`` as a hex quantity, no null ``address``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class AccountMeta(_Wire):
    """How to create an account not deployed yet (ERC-4337 ``factory`` and ``factoryData``)."""

    factory: Address
    factory_data: HexData = Field(alias="factoryData")


class SignerMeta(_Wire):
    """The ERC-7679 UserOp builder or ERC-7710 delegation manager of a grant; keyscope's grants have neither (the
    SDK builds the session's operations), so it is written only when it came in a response read back."""

    user_op_builder: Address | None = Field(default=None, alias="userOpBuilder")
    delegation_manager: Address | None = Field(default=None, alias="delegationManager")


class PermissionResponse(PermissionRequest):
    """One element of ``wallet_grantPermissions``' result: the request as granted, ``context`` (the grant) and,
    for an account not deployed yet, ``accountMeta``."""

    context: HexData
    account_meta: AccountMeta | None = Field(default=None, alias="accountMeta")
    signer_meta: SignerMeta | None = Field(default=None, alias="signerMeta")


class RevokePermissionsParams(_Wire):
    """``wallet_revokePermissions``' params: the ``context`` of the grant to revoke."""

    permission_context: HexData = Field(alias="permissionContext")


class PermissionsCapability(_Wire):
    """The ``permissions`` capability ``wallet_getCapabilities`` reports for a chain."""

    supported: bool = True
    signer_types: tuple[str, ...] = Field(alias="signerTypes")
    permission_types: tuple[str, ...] = Field(alias="permissionTypes")
    policy_types: tuple[str, ...] = Field(alias="policyTypes")


def read_model(model: type[_Wire], value: Any, what: str) -> Any:
    """``value`` (a JSON object, or a model already) read as ``model``; a malformed one raises
    :class:`~keyscope.errors.BadInputError` naming ``what`` and each wrong field."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'the object'}: {item['msg']}"
            for item in error.errors()
        )
        raise BadInputError(f"{what} is not a valid ERC-7715 object: {problems}") from None
