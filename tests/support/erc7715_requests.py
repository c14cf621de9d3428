"""ERC-7715 ``wallet_grantPermissions`` requests as the attack tests write them."""

from __future__ import annotations

__all__ = ["contract_call_request"]


def contract_call_request(
    target: str, chain_id: int, first_argument: str, rule: dict[str, object], **call: object
) -> dict[str, object]:
    """One request for a ``contract-call`` of ``target`` (``call`` gives its ``selector`` or ``function``) whose first
    argument, an address, is held to ``first_argument``, with ``rule`` besides; expiring in 2033, for a key signer."""
    return {
        "chainId": hex(chain_id),
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
        "permission": {
            "type": "contract-call",
            "data": {
                "address": target,
                **call,
                "rules": [{"offset": 0, "type": "address", "op": "==", "value": first_argument}, rule],
            },
        },
        "policies": [],
    }
