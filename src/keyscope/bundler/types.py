"""What any bundler gives back, as typed models, and the :class:`Bundler` interface.

The JSON-RPC client (:mod:`keyscope.bundler.client`) and the in-process submitter used under ``ape test``
(:mod:`keyscope.bundler.inprocess`) both implement :class:`Bundler`, so one dapp code path runs against both.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..hexutil import Address, HexData, HexInt, HexRepr, rpc_name
from ..userop import UserOperation

__all__ = ["Bundler", "FeeQuote", "GasEstimate", "UserOperationReceipt"]


class _Rpc(HexRepr, BaseModel):
    model_config = ConfigDict(alias_generator=rpc_name, populate_by_name=True, frozen=True, extra="ignore")


class GasEstimate(_Rpc):
    """``eth_estimateUserOperationGas`` result (v0.7 and v0.8)."""

    pre_verification_gas: HexInt
    verification_gas_limit: HexInt
    call_gas_limit: HexInt
    paymaster_verification_gas_limit: HexInt | None = None
    paymaster_post_op_gas_limit: HexInt | None = None


class FeeQuote(_Rpc):
    """EIP-1559 fees to put in a UserOperation."""

    max_fee_per_gas: HexInt
    max_priority_fee_per_gas: HexInt


class UserOperationReceipt(_Rpc):
    """``eth_getUserOperationReceipt`` result: the operation's fate, from the EntryPoint's event."""

    user_op_hash: HexData
    entry_point: Address
    sender: Address
    nonce: HexInt
    paymaster: Address | None = None
    actual_gas_cost: HexInt
    actual_gas_used: HexInt
    success: bool
    reason: HexData = Field(default=b"")
    """The revert data of the operation's call when ``success`` is false (from UserOperationRevertReason)."""
    transaction_hash: HexData
    block_number: HexInt
    logs: list[dict[str, Any]] = Field(default_factory=list)


@runtime_checkable
class Bundler(Protocol):
    """An ERC-4337 bundler: the JSON-RPC methods keyscope uses."""

    def chain_id(self) -> int:
        """``eth_chainId``."""
        ...

    def supported_entry_points(self) -> list[str]:
        """``eth_supportedEntryPoints``."""
        ...

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        """``eth_estimateUserOperationGas``; ``op.signature`` must have the real signature's shape."""
        ...

    def send_user_operation(self, op: UserOperation, entry_point: str) -> bytes:
        """``eth_sendUserOperation``; returns the userOpHash."""
        ...

    def get_user_operation_receipt(self, user_op_hash: bytes) -> UserOperationReceipt | None:
        """``eth_getUserOperationReceipt``; None while the operation is not included."""
        ...

    def get_user_operation_by_hash(self, user_op_hash: bytes) -> dict[str, Any] | None:
        """``eth_getUserOperationByHash``; None when the bundler does not know the hash."""
        ...

    def fee_quote(self) -> FeeQuote:
        """Fees for a new operation: the bundler's own quote where it offers one, else the node's."""
        ...
