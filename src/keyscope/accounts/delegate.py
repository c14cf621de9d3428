"""keyscope's account for EOAs (``contracts/KeyscopeDelegate.sol``): an EOA delegates its code to it with EIP-7702
and its own key becomes the owner.

* Nonce: as keyscope's own account, the top 20 bytes of the 192-bit key name the validator; key 0 (and any key
  naming no installed validator) is the owner. The low 4 bytes of the key are free for parallel lanes.
* Creation: none; the EOA exists already. It *delegates*: an EIP-7702 authorization signed by its key, carried
  by its first operation (EntryPoint v0.8) or by a type-4 transaction (:mod:`keyscope.eoa`).
* ERC-1271: the EOA's 65-byte ECDSA signature over the digest itself.
* Storage: the delegate keeps its modules under the ERC-7201 namespace ``keyscope.storage.KeyscopeDelegate``
  (:func:`delegate_validator_slot` says where a validator's entry is, so that it can be read before the EOA
  delegates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_abi import encode as abi_encode

from ..errors import BadInputError
from ..hexutil import keccak, to_address
from ..owner_signatures import refuse_session_grant
from ..signing import HashSigner
from ..typed_data import TypedData, eip191_hash
from .base import AccountKind
from .nonce_keys import validator_lane_key

__all__ = [
    "DELEGATE_EXECUTORS_SLOT",
    "DELEGATE_FALLBACK_HANDLERS_SLOT",
    "DELEGATE_STORAGE_LOCATION",
    "DELEGATE_VALIDATORS_SLOT",
    "KeyscopeDelegateKind",
    "delegate_set_value_slot",
    "delegate_validator_slot",
]

DELEGATE_STORAGE_LOCATION = (
    int.from_bytes(
        keccak((int.from_bytes(keccak(b"keyscope.storage.KeyscopeDelegate"), "big") - 1).to_bytes(32, "big")),
        "big",
    )
    & ~0xFF
)
"""The delegate's ERC-7201 namespace: ``keccak256(abi.encode(uint256(keccak256("keyscope.storage.KeyscopeDelegate"))
- 1)) & ~0xff``. Its slots, from there: the validators (an OpenZeppelin ``EnumerableSet.AddressSet``: values at +0,
positions at +1), the executors (+2, +3), the fallback handlers by selector (+4), each handler's selector count
(+5), the set of fallback handlers (+6, +7; a selector's handler is in force only while it is in this set), the
set of selectors with a handler (+8, +9; a selector's handler is in force only while the selector is in it too, so
that the delegate's ``resetModules()`` forgets every selector)."""

DELEGATE_VALIDATORS_SLOT = DELEGATE_STORAGE_LOCATION
"""The validator set's values array (its length here, its entries from :func:`delegate_set_value_slot`)."""
DELEGATE_EXECUTORS_SLOT = DELEGATE_STORAGE_LOCATION + 2
"""The executor set's values array (its length here, its entries from :func:`delegate_set_value_slot`)."""
DELEGATE_FALLBACK_HANDLERS_SLOT = DELEGATE_STORAGE_LOCATION + 6
"""The fallback handler set's values array (its length here, its entries from :func:`delegate_set_value_slot`): the
delegate calls a selector's handler only while it is in this set, which can be listed, unlike the selector mapping."""
_VALIDATOR_POSITIONS = DELEGATE_STORAGE_LOCATION + 1
_ENTRY_POINT_DOMAIN = ("ERC4337", "1")
"""EntryPoint v0.8's EIP-712 domain name and version: it hashes a UserOperation as typed data in it."""
_SLOTS = 2**256


def delegate_set_value_slot(set_slot: int, index: int) -> int:
    """The slot of entry ``index`` of the delegate's set whose values array is at ``set_slot``
    (:data:`DELEGATE_VALIDATORS_SLOT`, :data:`DELEGATE_EXECUTORS_SLOT`, :data:`DELEGATE_FALLBACK_HANDLERS_SLOT`):
    ``keccak256(set_slot) + index`` modulo 2**256, as the EVM adds slots: a position other code wrote can name an entry
    past the last slot, which the delegate reads at the start of storage."""
    return (int.from_bytes(keccak(set_slot.to_bytes(32, "big")), "big") + index) % _SLOTS


def delegate_validator_slot(module: str) -> int:
    """The storage slot (in the EOA's storage) holding the position of ``module`` in the delegate's validator set:
    non-zero exactly when the delegate has it installed as a validator. ``_positions`` maps the address as a
    ``bytes32`` (left-padded) to its 1-based index."""
    key = abi_encode(["address", "uint256"], [to_address(module, name="module"), _VALIDATOR_POSITIONS])
    return int.from_bytes(keccak(key), "big")


class KeyscopeDelegateKind(AccountKind):
    """Adapter for an EOA delegating to ``KeyscopeDelegate``; ``delegate`` is the delegate's address when known."""

    account_id_prefix = "keyscope.delegate."
    name = "keyscope-7702"
    sessions_can_create = False

    def __init__(self, delegate: str | None = None) -> None:
        self.delegate = to_address(delegate, name="delegate") if delegate is not None else None

    def __repr__(self) -> str:
        return f"KeyscopeDelegateKind(delegate={self.delegate})"

    def owner_typed_data_signature(
        self, signer: HashSigner, data: Mapping[str, Any], *, account: str, chain_id: int
    ) -> bytes:
        """The EOA's own signature of ``data``: the account is the owner's address, which any verifier takes
        (by ``ecrecover`` or through the delegate's ERC-1271).

        That bare signature is also what the delegate takes as the owner's approval of a UserOperation (EntryPoint
        v0.8 hashes one as typed data) and the session module as the owner's grant of a session, so typed data that
        is either is refused: an operation is the owner's through ``Owner.execute`` (its checks and gas cap), a
        grant through ``Owner.sign_grant`` (its judgement of the session)."""
        _refuse_operations_and_grants(data)
        return signer.sign_typed_data(dict(data))

    def owner_message_signature(
        self, signer: HashSigner, message: bytes, *, account: str, chain_id: int
    ) -> bytes:
        """The EOA's own ``personal_sign`` signature of ``message``."""
        return signer.sign_hash(eip191_hash(bytes(message)))

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return validator_lane_key(validator, lane)


def _refuse_operations_and_grants(data: Mapping[str, Any]) -> None:
    """Raise :class:`~keyscope.errors.BadInputError` for typed data whose digest an EIP-7702 account's owner key
    must not sign as a mere message: a UserOperation (EntryPoint v0.8's domain, whichever EntryPoint it names, or
    a primary type named as one) or a session grant (the session module's domain)."""
    typed = TypedData(data)
    named = (typed.domain.get("name"), typed.domain.get("version"))
    if named == _ENTRY_POINT_DOMAIN or "UserOperation" in typed.primary_type:
        raise BadInputError(
            f"this typed data ({typed.primary_type} in the domain {typed.domain.get('name')!r}) is a UserOperation: "
            "the EOA's signature of it is the owner's approval of the operation, which the account would run. "
            "Send the owner's operations with Owner.execute; nothing was signed"
        )
    refuse_session_grant(data)
