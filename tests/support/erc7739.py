"""ERC-7739's ``TypedDataSign`` wrapping written out as typed data for eth-account's EIP-712 encoder: the independent
judge of the hash a session key signs for an application's typed data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ACCOUNT_DOMAIN_NAME = "keyscope Session"
ACCOUNT_DOMAIN_VERSION = "1"


def typed_data_sign_wrapping(
    data: Mapping[str, Any],
    domain_type: Sequence[Mapping[str, str]],
    *,
    account: str,
    chain_id: int,
    module: str,
) -> dict[str, Any]:
    """``data`` (the application's typed data, its domain typed by ``domain_type``) wrapped as ERC-7739's
    ``TypedDataSign`` in the account's domain: keyscope's name and version, ``chain_id``, ``account`` as the verifying
    contract and ``module`` as the salt."""
    types = {name: members for name, members in data["types"].items() if name != "EIP712Domain"}
    return {
        "types": {
            "EIP712Domain": list(domain_type),
            "TypedDataSign": [
                {"name": "contents", "type": data["primaryType"]},
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
                {"name": "salt", "type": "bytes32"},
            ],
            **types,
        },
        "primaryType": "TypedDataSign",
        "domain": data["domain"],
        "message": {
            "contents": data["message"],
            "name": ACCOUNT_DOMAIN_NAME,
            "version": ACCOUNT_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": account,
            "salt": bytes(12) + bytes.fromhex(module[2:]),
        },
    }
