"""UserOperations for tests that judge one without a chain: a plain operation of fixed gas, and the EIP-712 typed
data EntryPoint v0.8 hashes it as."""

from __future__ import annotations

from typing import Any

from keyscope.userop import UserOperation

__all__ = ["plain_op", "v08_typed_data"]


def plain_op(sender: str, call_data: bytes, **fields: Any) -> UserOperation:
    """An operation of ``sender`` at nonce 3 making ``call_data``, with fixed gas limits and fees; ``fields``
    replace any of them."""
    op = UserOperation(
        sender=sender,
        nonce=3,
        call_data=call_data,
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )
    return op.replace(**fields) if fields else op


def v08_typed_data(op: UserOperation, entry_point: str, chain_id: int) -> dict[str, Any]:
    """``op`` as EntryPoint v0.8 hashes it: its userOpHash is this typed data's EIP-712 digest (bytes as hex)."""
    packed = op.pack()
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "PackedUserOperation": [
                {"name": "sender", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "initCode", "type": "bytes"},
                {"name": "callData", "type": "bytes"},
                {"name": "accountGasLimits", "type": "bytes32"},
                {"name": "preVerificationGas", "type": "uint256"},
                {"name": "gasFees", "type": "bytes32"},
                {"name": "paymasterAndData", "type": "bytes"},
            ],
        },
        "primaryType": "PackedUserOperation",
        "domain": {"name": "ERC4337", "version": "1", "chainId": chain_id, "verifyingContract": entry_point},
        "message": {
            "sender": packed.sender,
            "nonce": packed.nonce,
            "initCode": "0x" + packed.init_code.hex(),
            "callData": "0x" + packed.call_data.hex(),
            "accountGasLimits": "0x" + packed.account_gas_limits.hex(),
            "preVerificationGas": packed.pre_verification_gas,
            "gasFees": "0x" + packed.gas_fees.hex(),
            "paymasterAndData": "0x" + packed.paymaster_and_data.hex(),
        },
    }
