"""Validators kept in a sentinel-linked list (Nexus, Safe7579): uninstalling one names the entry before it.

Both accounts store their validators as a linked list headed by the sentinel ``0x…01`` and list them, head
first, with ``getValidatorsPaginated(cursor, size)``. ``uninstallModule(1, validator, data)`` wants
``data = abi.encode(prev, deinitData)``, where ``prev`` points to ``validator`` in that list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import CallRevertedError, UnsupportedAccountError
from ..hexutil import to_address

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["SENTINEL", "installed_validators", "lists_validators", "previous_validator", "uninstall_data"]

SENTINEL = "0x0000000000000000000000000000000000000001"
_PAGINATED = keccak(b"getValidatorsPaginated(address,uint256)")[:4]
_PAGE = 64


def lists_validators(chain: Chain, account: str) -> bool:
    """Whether ``account`` lists its validators with ``getValidatorsPaginated`` (a sentinel-linked list): an
    account that keeps them otherwise (OpenZeppelin's ``AccountERC7579`` keeps a set) reverts or answers
    something else."""
    data = _PAGINATED + abi_encode(["address", "uint256"], [SENTINEL, 1])
    try:
        abi_decode(["address[]", "address"], chain.call(to_address(account), data))
    except CallRevertedError:
        return False
    except Exception:  # eth_abi's decoding errors: an answer that is no (address[], address)
        return False
    return True


def installed_validators(chain: Chain, account: str, *, at_most: int = _PAGE) -> list[str]:
    """The first ``at_most`` validators of ``account``'s list, head first."""
    data = _PAGINATED + abi_encode(["address", "uint256"], [SENTINEL, at_most])
    entries, _ = abi_decode(["address[]", "address"], chain.call(to_address(account), data))
    return [to_address(entry) for entry in entries]


def previous_validator(chain: Chain, account: str, validator: str) -> str:
    """The entry before ``validator`` in ``account``'s validator list (the sentinel when it is the head)."""
    target = to_address(validator)
    previous = SENTINEL
    cursor = SENTINEL
    while True:
        data = _PAGINATED + abi_encode(["address", "uint256"], [cursor, _PAGE])
        entries, following = abi_decode(["address[]", "address"], chain.call(to_address(account), data))
        for entry in entries:
            if to_address(entry) == target:
                return previous
            previous = to_address(entry)
        if not entries or to_address(following) in (SENTINEL, to_address("0x" + "00" * 20)):
            break
        cursor = to_address(following)
    raise UnsupportedAccountError(
        f"{validator} is not installed as a validator on {account}: nothing to uninstall"
    )


def uninstall_data(chain: Chain, account: str, validator: str, deinit_data: bytes) -> bytes:
    """``abi.encode(prev, deinitData)`` for ``uninstallModule(1, validator, ...)``."""
    return abi_encode(["address", "bytes"], [previous_validator(chain, account, validator), deinit_data])
