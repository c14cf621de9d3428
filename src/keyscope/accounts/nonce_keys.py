"""Nonce keys: the 192-bit EntryPoint nonce key that names a validator and a parallel lane."""

from __future__ import annotations

from ..errors import BadInputError
from ..hexutil import to_address

__all__ = ["check_lane", "validator_lane_key"]


def check_lane(lane: int, bits: int, account: str = "this account") -> None:
    """Refuse ``lane`` unless it fits in the ``bits`` of the nonce key ``account`` leaves free."""
    if not 0 <= lane < 2**bits:
        raise BadInputError(f"nonce lane {lane} does not fit in the {bits // 8} bytes {account} leaves free")


def validator_lane_key(validator: str | None, lane: int) -> int:
    """``validator (20 bytes) ‖ lane (4 bytes)``; with no validator, just the lane (the account checks the owner
    itself)."""
    check_lane(lane, 32)
    if validator is None:
        return lane
    return (int(to_address(validator), 16) << 32) | lane
