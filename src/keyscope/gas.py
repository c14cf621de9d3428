"""Gas arithmetic that needs no node: preVerificationGas and the prefund an operation requires."""

from __future__ import annotations

from eth_abi import encode as abi_encode

from .entrypoint import PACKED_USEROP_ABI_TYPE
from .userop import UserOperation

__all__ = ["calldata_gas", "pre_verification_gas", "required_prefund"]

# The reference bundler's overheads (eth-infinitism bundler, DefaultGasOverheads).
_FIXED = 21_000
_PER_USER_OP = 18_300
_PER_USER_OP_WORD = 4


def calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata gas: 4 per zero byte, 16 per other byte."""
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


def pre_verification_gas(
    op: UserOperation, *, bundle_size: int = 1, signature_size: int | None = None
) -> int:
    """preVerificationGas as the reference bundler computes it for a bundle of ``bundle_size`` operations.

    When ``signature_size`` is given, the signature is taken to be that long (for estimates made with a
    placeholder signature).
    """
    packed = op.pack()
    if signature_size is not None:
        packed = packed.model_copy(update={"signature": b"\x01" * signature_size})
    encoded = abi_encode([PACKED_USEROP_ABI_TYPE], [packed.as_tuple()])
    words = (len(encoded) + 31) // 32
    return calldata_gas(encoded) + _FIXED // bundle_size + _PER_USER_OP + _PER_USER_OP_WORD * words


def required_prefund(op: UserOperation) -> int:
    """The most the EntryPoint can charge: every gas limit times ``maxFeePerGas`` (the v0.7 prefund). The paymaster's
    two gas limits count only with a paymaster: without one they are packed nowhere (``paymasterAndData`` is empty),
    so neither the EntryPoint nor the session module sees them."""
    gas = op.verification_gas_limit + op.call_gas_limit + op.pre_verification_gas
    if op.paymaster is not None:
        gas += op.paymaster_verification_gas_limit + op.paymaster_post_op_gas_limit
    return gas * op.max_fee_per_gas
