"""keyscope's own account (``contracts/KeyscopeAccount.sol``): an OpenZeppelin ``AccountERC7579`` with the
owner's ECDSA check built in.

* Nonce: the top 20 bytes of the 192-bit key name the validator; key 0 is the owner. The low 4 bytes of the
  key are free for parallel lanes.
* Creation: ``KeyscopeAccountFactory.createAccount(owner, modules, salt)``, CREATE2 clones.
* ERC-1271: the owner's 65-byte ECDSA signature over the digest itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..hexutil import to_address
from ..owner_signatures import sign_message_as_account, sign_typed_data_as_account
from ..signing import HashSigner
from .base import AccountKind
from .nonce_keys import validator_lane_key

__all__ = ["KeyscopeAccountKind", "ModuleInit", "create_account_data"]

ModuleInit = tuple[int, str, bytes]
"""(module type id, module address, init data) installed while the account is created."""

_CREATE_ACCOUNT = keccak(b"createAccount(address,(uint256,address,bytes)[],uint256)")[:4]
_GET_ADDRESS = keccak(b"getAddress(address,(uint256,address,bytes)[],uint256)")[:4]


def create_account_data(
    owner: str, modules: Sequence[ModuleInit] = (), salt: int = 0, *, view: bool = False
) -> bytes:
    """Calldata of ``createAccount(owner, modules, salt)`` (or of ``getAddress`` with ``view=True``)."""
    args = abi_encode(
        ["address", "(uint256,address,bytes)[]", "uint256"],
        [to_address(owner), [(t, to_address(m), bytes(d)) for t, m, d in modules], salt],
    )
    return (_GET_ADDRESS if view else _CREATE_ACCOUNT) + args


class KeyscopeAccountKind(AccountKind):
    """Adapter for ``KeyscopeAccount``."""

    account_id_prefix = "keyscope.account."
    name = "keyscope"
    bare_owner_signature_from_validators_only = True

    def __repr__(self) -> str:
        return "KeyscopeAccountKind()"

    def owner_typed_data_signature(
        self, signer: HashSigner, data: Mapping[str, Any], *, account: str, chain_id: int
    ) -> bytes:
        """ERC-7739 TypedDataSign, bound to the account (see :mod:`keyscope.owner_signatures`)."""
        return sign_typed_data_as_account(signer, data, account=account, chain_id=chain_id)

    def owner_message_signature(
        self, signer: HashSigner, message: bytes, *, account: str, chain_id: int
    ) -> bytes:
        """ERC-7739 PersonalSign, bound to the account (see :mod:`keyscope.owner_signatures`)."""
        return sign_message_as_account(signer, message, account=account, chain_id=chain_id)

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return validator_lane_key(validator, lane)
