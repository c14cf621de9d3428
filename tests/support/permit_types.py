"""The EIP-712 types of the permits the signing tests grant and sign: Permit2's PermitSingle and EIP-2612's
Permit, in the JSON form ``eth_signTypedData_v4`` takes."""

from __future__ import annotations

PERMIT_SINGLE_TYPES = {
    "PermitSingle": [
        {"name": "details", "type": "PermitDetails"},
        {"name": "spender", "type": "address"},
        {"name": "sigDeadline", "type": "uint256"},
    ],
    "PermitDetails": [
        {"name": "token", "type": "address"},
        {"name": "amount", "type": "uint160"},
        {"name": "expiration", "type": "uint48"},
        {"name": "nonce", "type": "uint48"},
    ],
}
PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}

USDC = "0x" + "a0" * 20
"""The token the permits name (no contract: the verifier only records allowances)."""
ROUTER = "0x" + "b0" * 20
LIMIT = 100 * 10**6
EXPIRY = 2**40


def permit2_permit(
    verifier: str, chain_id: int, amount: int = LIMIT, expiry: int = EXPIRY
) -> dict[str, object]:
    """A Permit2 ``PermitSingle`` of ``amount`` USDC to ROUTER, in the domain of ``verifier`` (a Permit2-like test
    contract) on ``chain_id``, valid until ``expiry``: the permit the signing tests grant and sign."""
    return {
        "types": PERMIT_SINGLE_TYPES,
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": chain_id, "verifyingContract": verifier},
        "message": {
            "details": {"token": USDC, "amount": amount, "expiration": expiry, "nonce": 0},
            "spender": ROUTER,
            "sigDeadline": expiry,
        },
    }
