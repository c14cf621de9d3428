"""The two wire forms of an ERC-4337 v0.7 UserOperation, and one conversion each way.

* :class:`UserOperation` is what a bundler's JSON-RPC sees: unpacked fields (``factory``/``factoryData``,
  separate gas limits and fees, ``paymaster`` with its own gas limits) and hex quantities.
* :class:`PackedUserOperation` is the struct the EntryPoint receives in ``handleOps`` and hashes:
  ``initCode``, ``accountGasLimits``, ``gasFees`` and ``paymasterAndData`` packed into bytes.

``UserOperation.pack()`` and ``PackedUserOperation.unpack()`` convert between them without loss.

The v0.7 and v0.8 EntryPoints take the same struct. A v0.8 operation of an EIP-7702 account may also carry, in
JSON-RPC only, the EOA's authorization (``eip7702Auth``, put in the bundle's type-4 transaction by the bundler)
and ``factory: "0x7702"`` (packed as the 2-byte initCode ``0x7702``, which makes the EntryPoint hash the
account's delegate into the userOpHash).
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .eip7702 import Authorization
from .errors import BadInputError, InvalidFieldsError, RaisesBadInput, validation_problems
from .hashing import EIP7702_INIT_CODE, is_eip7702_init_code, user_op_hash
from .hexutil import Address, HexBytes32, HexData, HexInt, HexRepr, rpc_name, to_address

__all__ = ["EIP7702_FACTORY", "UINT128_MAX", "PackedUserOperation", "UserOperation"]

UINT128_MAX = 2**128 - 1
UINT256_MAX = 2**256 - 1

EIP7702_FACTORY = "0x7702"
"""The ``factory`` of an EIP-7702 account's UserOperation (EntryPoint v0.8, ERC-7769)."""


_EIP7702_MARKER_ADDRESS = EIP7702_FACTORY + "0" * 36


def _parse_factory(value: Any) -> str:
    if isinstance(value, str) and value.lower() == EIP7702_FACTORY:
        return EIP7702_FACTORY
    address = to_address(value)
    # the marker spelled as an address (0x7702 and 18 zero bytes) is the marker: EntryPoint v0.8 reads it so, and
    # no factory can be there
    return EIP7702_FACTORY if address.lower() == _EIP7702_MARKER_ADDRESS else address


Factory = Annotated[str, BeforeValidator(_parse_factory)]
"""A factory's address, or ``"0x7702"`` for an EIP-7702 account (also when given as the 20-byte marker
``0x7702`` followed by 18 zero bytes)."""


class _PackedFields(NamedTuple):
    """The fields of a ``PackedUserOperation``, in struct order, without validation (built from a valid
    :class:`UserOperation` only)."""

    sender: str
    nonce: int
    init_code: bytes
    call_data: bytes
    account_gas_limits: bytes
    pre_verification_gas: int
    gas_fees: bytes
    paymaster_and_data: bytes
    signature: bytes


class _Wire(HexRepr, RaisesBadInput, BaseModel):
    model_config = ConfigDict(
        alias_generator=rpc_name, populate_by_name=True, frozen=True, extra="forbid", validate_assignment=True
    )


class UserOperation(_Wire):
    """A v0.7 UserOperation as ERC-4337 bundlers exchange it over JSON-RPC.

    Fields use Python names (``call_data``) and accept the JSON-RPC names too (``callData``).
    """

    sender: Address
    nonce: HexInt
    factory: Factory | None = None
    factory_data: HexData = b""
    call_data: HexData = b""
    call_gas_limit: HexInt = 0
    verification_gas_limit: HexInt = 0
    pre_verification_gas: HexInt = 0
    max_fee_per_gas: HexInt = 0
    max_priority_fee_per_gas: HexInt = 0
    paymaster: Address | None = None
    paymaster_verification_gas_limit: HexInt = 0
    paymaster_post_op_gas_limit: HexInt = 0
    paymaster_data: HexData = b""
    signature: HexData = b""
    eip7702_auth: Authorization | None = None

    @field_validator(
        "call_gas_limit",
        "verification_gas_limit",
        "max_fee_per_gas",
        "max_priority_fee_per_gas",
        "paymaster_verification_gas_limit",
        "paymaster_post_op_gas_limit",
    )
    @classmethod
    def _fits_uint128(cls, value: int) -> int:
        if value > UINT128_MAX:
            raise ValueError(f"{value} does not fit in 128 bits (the EntryPoint packs it into a uint128)")
        return value

    @field_validator("nonce", "pre_verification_gas")
    @classmethod
    def _fits_uint256(cls, value: int) -> int:
        if value > UINT256_MAX:
            raise ValueError(f"{value} does not fit in 256 bits")
        return value

    # -- conversions ---------------------------------------------------------------------------------

    @property
    def is_eip7702(self) -> bool:
        """Whether this is an EIP-7702 account's operation marked as such (``factory`` ``"0x7702"``)."""
        return self.factory == EIP7702_FACTORY

    def pack(self) -> PackedUserOperation:
        """The :class:`PackedUserOperation` the EntryPoint hashes and executes."""
        return PackedUserOperation.model_construct(**self.packed_fields()._asdict())

    def packed_fields(self) -> _PackedFields:
        """The packed fields as a plain named tuple, in struct order: what the hashes read, without building the
        :class:`PackedUserOperation` model (:meth:`pack`)."""
        if self.factory is None:
            init_code = b""
        elif self.factory == EIP7702_FACTORY:
            if self.factory_data:
                raise BadInputError(
                    "an EIP-7702 operation (factory 0x7702) with factoryData: EntryPoint v0.8 would send the data to "
                    "the account as an init call before validation, which keyscope's delegate and session module "
                    "refuse for sessions; leave factoryData empty"
                )
            init_code = EIP7702_INIT_CODE
        else:
            init_code = bytes.fromhex(self.factory[2:]) + self.factory_data
        if self.paymaster is None:
            paymaster_and_data = b""
        else:
            paymaster_and_data = (
                bytes.fromhex(self.paymaster[2:])
                + self.paymaster_verification_gas_limit.to_bytes(16, "big")
                + self.paymaster_post_op_gas_limit.to_bytes(16, "big")
                + self.paymaster_data
            )
        return _PackedFields(
            self.sender,
            self.nonce,
            init_code,
            self.call_data,
            self.verification_gas_limit.to_bytes(16, "big") + self.call_gas_limit.to_bytes(16, "big"),
            self.pre_verification_gas,
            self.max_priority_fee_per_gas.to_bytes(16, "big") + self.max_fee_per_gas.to_bytes(16, "big"),
            paymaster_and_data,
            self.signature,
        )

    def to_rpc(self) -> dict[str, Any]:
        """The JSON-RPC object for ``eth_sendUserOperation`` and ``eth_estimateUserOperationGas``.

        ``factory``/``factoryData``, the paymaster fields and ``eip7702Auth`` are left out when unset, as bundlers
        expect.
        """
        out: dict[str, Any] = {
            "sender": self.sender,
            "nonce": hex(self.nonce),
        }
        if self.factory is not None:
            out["factory"] = self.factory
            out["factoryData"] = "0x" + self.factory_data.hex()
        out["callData"] = "0x" + self.call_data.hex()
        out["callGasLimit"] = hex(self.call_gas_limit)
        out["verificationGasLimit"] = hex(self.verification_gas_limit)
        out["preVerificationGas"] = hex(self.pre_verification_gas)
        out["maxFeePerGas"] = hex(self.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = hex(self.max_priority_fee_per_gas)
        if self.paymaster is not None:
            out["paymaster"] = self.paymaster
            out["paymasterVerificationGasLimit"] = hex(self.paymaster_verification_gas_limit)
            out["paymasterPostOpGasLimit"] = hex(self.paymaster_post_op_gas_limit)
            out["paymasterData"] = "0x" + self.paymaster_data.hex()
        out["signature"] = "0x" + self.signature.hex()
        if self.eip7702_auth is not None:
            out["eip7702Auth"] = self.eip7702_auth.to_rpc()
        return out

    @classmethod
    def from_rpc(cls, data: dict[str, Any]) -> UserOperation:
        """Read a UserOperation from a bundler's JSON (unknown keys are an error)."""
        if not isinstance(data, dict):
            raise BadInputError(
                f"a UserOperation is a JSON object of its fields (sender, nonce, callData, ...), got "
                f"{type(data).__name__}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise BadInputError(
                f"not a v0.7 UserOperation: {validation_problems(error)}; give the fields in their JSON-RPC form "
                "(0x-hex quantities and data, as eth_sendUserOperation takes them)"
            ) from None

    def replace(self, **changes: Any) -> UserOperation:
        """A copy with ``changes`` applied (names in Python or JSON-RPC form). Each changed field is validated
        as the constructor would; the others, valid already, are not validated again."""
        copy = self.model_copy()
        fields = type(self).model_fields
        validator = type(self).__pydantic_validator__
        for key, value in changes.items():
            # the copy is not shared yet: fill it in field by field, through the fields' own validation
            try:
                validator.validate_assignment(copy, key if key in fields else _snake(key), value)
            except ValidationError as error:
                raise InvalidFieldsError(type(self).__name__, error) from None
        return copy

    def hash(
        self, entry_point: str, chain_id: int, version: str = "0.7", *, eip7702_delegate: str | None = None
    ) -> bytes:
        """The ``userOpHash`` the EntryPoint (``version`` "0.7" or "0.8") computes for this operation. For an
        EIP-7702 operation (v0.8) the delegate is the authorization's, unless ``eip7702_delegate`` names it."""
        if eip7702_delegate is None and self.eip7702_auth is not None:
            eip7702_delegate = self.eip7702_auth.address
        return user_op_hash(
            self.packed_fields(), entry_point, chain_id, version=version, eip7702_delegate=eip7702_delegate
        )


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


class PackedUserOperation(_Wire):
    """The v0.7 ``PackedUserOperation`` struct, as ``handleOps`` takes it and ``getUserOpHash`` hashes it."""

    sender: Address
    nonce: HexInt
    init_code: HexData = b""
    call_data: HexData = b""
    account_gas_limits: HexBytes32 = Field(default=bytes(32))
    pre_verification_gas: HexInt = 0
    gas_fees: HexBytes32 = Field(default=bytes(32))
    paymaster_and_data: HexData = b""
    signature: HexData = b""

    def unpack(self) -> UserOperation:
        """The :class:`UserOperation` JSON-RPC form of this struct."""
        if 0 < len(self.init_code) < 20 and not is_eip7702_init_code(self.init_code):
            raise BadInputError(
                f"initCode of {len(self.init_code)} bytes: it must be empty, start with a factory, or be the "
                "EIP-7702 marker 0x7702"
            )
        if 0 < len(self.paymaster_and_data) < 52:
            raise BadInputError(
                f"paymasterAndData of {len(self.paymaster_and_data)} bytes: it must be empty or hold at least "
                "the paymaster address and its two 16-byte gas limits"
            )
        pad = self.paymaster_and_data
        if is_eip7702_init_code(self.init_code):
            factory: str | None = EIP7702_FACTORY
        else:
            factory = to_address(self.init_code[:20]) if self.init_code else None
        return UserOperation(
            sender=self.sender,
            nonce=self.nonce,
            factory=factory,
            factory_data=self.init_code[20:],
            call_data=self.call_data,
            verification_gas_limit=int.from_bytes(self.account_gas_limits[:16], "big"),
            call_gas_limit=int.from_bytes(self.account_gas_limits[16:], "big"),
            pre_verification_gas=self.pre_verification_gas,
            max_priority_fee_per_gas=int.from_bytes(self.gas_fees[:16], "big"),
            max_fee_per_gas=int.from_bytes(self.gas_fees[16:], "big"),
            paymaster=to_address(pad[:20]) if pad else None,
            paymaster_verification_gas_limit=int.from_bytes(pad[20:36], "big") if pad else 0,
            paymaster_post_op_gas_limit=int.from_bytes(pad[36:52], "big") if pad else 0,
            paymaster_data=pad[52:],
            signature=self.signature,
        )

    def as_tuple(self) -> tuple[str, int, bytes, bytes, bytes, int, bytes, bytes, bytes]:
        """The struct as an ABI tuple, in field order, for ``handleOps`` and ``getUserOpHash``."""
        return (
            self.sender,
            self.nonce,
            self.init_code,
            self.call_data,
            self.account_gas_limits,
            self.pre_verification_gas,
            self.gas_fees,
            self.paymaster_and_data,
            self.signature,
        )
