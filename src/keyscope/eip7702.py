"""EIP-7702 (Prague): an EOA's code delegated to a contract, and the authorizations that delegate it.

An EOA delegates by signing an *authorization* ``(chain_id, address, nonce)``; any type-4 transaction may carry
it (the EOA's own, a bundler's). The EOA's code then becomes the 23-byte *delegation designator*

    0xef0100 ‖ delegate (20 bytes)

and calls to the EOA run the delegate's code on the EOA's own storage and balance. What the EOA signs is

    keccak256(0x05 ‖ rlp([chain_id, address, nonce]))

with its ordinary secp256k1 key, so any :class:`~keyscope.signing.HashSigner` signs authorizations. An
authorization is valid only while the EOA's transaction nonce equals ``nonce`` (using it increments the nonce,
so it is used once), and only on ``chain_id``; chain id 0 means *any chain*, which keyscope never signs (it would
let anyone replay the delegation on every chain where the EOA's nonce matches).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from .errors import BadInputError
from .hexutil import Address, HexInt, keccak, rpc_name, to_address, to_bytes
from .signing import SECP256K1_HALF_N, HashSigner, recover_hash

__all__ = [
    "DELEGATION_PREFIX",
    "SET_CODE_TX_TYPE",
    "Authorization",
    "authorization_digest",
    "delegate_of",
    "delegation_code",
    "sign_authorization",
]

DELEGATION_PREFIX = bytes.fromhex("ef0100")
"""The first three bytes of a delegated EOA's code."""

SET_CODE_TX_TYPE = 4
"""The EIP-2718 type of transactions that carry authorizations."""

_MAGIC = b"\x05"
_UINT64_MAX = 2**64 - 1
_UINT256_MAX = 2**256 - 1


def delegation_code(delegate: str) -> bytes:
    """The code an EOA has once it delegates to ``delegate``: ``0xef0100 ‖ delegate``."""
    return DELEGATION_PREFIX + to_bytes(to_address(delegate, name="delegate"))


def delegate_of(code: bytes) -> str | None:
    """The delegate of an EOA whose code is ``code``, or None when ``code`` is not a delegation designator."""
    if len(code) == 23 and code[:3] == DELEGATION_PREFIX:
        return to_address(code[3:])
    return None


def _rlp_bytes(raw: bytes) -> bytes:
    if len(raw) == 1 and raw[0] < 0x80:
        return raw
    if len(raw) < 56:
        return bytes((0x80 + len(raw),)) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes((0xB7 + len(size),)) + size + raw


def _rlp_int(value: int) -> bytes:
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b"")


def _rlp_list(items: list[bytes]) -> bytes:
    payload = b"".join(items)
    if len(payload) < 56:
        return bytes((0xC0 + len(payload),)) + payload
    size = len(payload).to_bytes((len(payload).bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(size),)) + size + payload


def authorization_digest(chain_id: int, delegate: str, nonce: int) -> bytes:
    """What the EOA signs to delegate to ``delegate`` on ``chain_id`` at its transaction nonce ``nonce``."""
    if not 0 <= nonce <= _UINT64_MAX:
        raise BadInputError(f"an authorization's nonce is a uint64, got {nonce}")
    if chain_id < 0:
        raise BadInputError(f"an authorization's chain id cannot be negative, got {chain_id}")
    address = to_bytes(to_address(delegate, name="delegate"))
    return keccak(_MAGIC + _rlp_list([_rlp_int(chain_id), _rlp_bytes(address), _rlp_int(nonce)]))


class Authorization(BaseModel):
    """A signed EIP-7702 authorization: ``address`` is the delegate (``0x0…0`` clears the delegation).

    :meth:`to_rpc` is the ``eip7702Auth`` object of an EntryPoint v0.8 UserOperation in a bundler's JSON-RPC;
    :meth:`to_transaction` the entry of a type-4 transaction's ``authorizationList``.
    """

    model_config = ConfigDict(alias_generator=rpc_name, populate_by_name=True, frozen=True, extra="ignore")

    chain_id: HexInt
    address: Address
    nonce: HexInt
    y_parity: HexInt
    r: HexInt
    s: HexInt

    @field_validator("chain_id", "r", "s")
    @classmethod
    def _fits_uint256(cls, value: int, info: Any) -> int:
        if not 0 <= value <= _UINT256_MAX:
            name = "chain id" if info.field_name == "chain_id" else info.field_name
            raise ValueError(f"an authorization's {name} is a uint256, got {value}")
        return value

    @field_validator("nonce")
    @classmethod
    def _fits_uint64(cls, value: int) -> int:
        if not 0 <= value <= _UINT64_MAX:
            raise ValueError(f"an authorization's nonce is a uint64, got {value}")
        return value

    @field_validator("y_parity")
    @classmethod
    def _is_a_parity(cls, value: int) -> int:
        if value not in (0, 1):
            raise ValueError(f"an authorization's y_parity is 0 or 1, got {value}")
        return value

    @property
    def digest(self) -> bytes:
        """The digest the authority signed."""
        return authorization_digest(self.chain_id, self.address, self.nonce)

    @property
    def signature(self) -> bytes:
        """The signature as 65 bytes ``r ‖ s ‖ v`` (``v`` 27 or 28)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes((27 + self.y_parity,))

    def authority(self) -> str:
        """The EOA that signed (and is delegated by) this authorization. Raises
        :class:`~keyscope.errors.BadInputError` for a signature the EIP refuses (``s`` in the upper half,
        ``y_parity`` other than 0 or 1)."""
        if self.y_parity not in (0, 1):
            raise BadInputError(f"an authorization's y_parity is 0 or 1, got {self.y_parity}")
        if not 0 < self.s <= SECP256K1_HALF_N:
            raise BadInputError(
                f"an authorization's s must be in the lower half of the curve order (EIP-2), got {self.s:#066x}: "
                "sign it again with a signer that normalises s"
            )
        return recover_hash(self.digest, self.signature)

    def to_rpc(self) -> dict[str, str]:
        """The ``eip7702Auth`` object of a UserOperation (ERC-7769 with EntryPoint v0.8): quantities for the chain
        id, nonce and y parity, 32-byte hex for ``r`` and ``s``."""
        return {
            "address": self.address,
            "chainId": hex(self.chain_id),
            "nonce": hex(self.nonce),
            "yParity": hex(self.y_parity),
            "r": "0x" + self.r.to_bytes(32, "big").hex(),
            "s": "0x" + self.s.to_bytes(32, "big").hex(),
        }

    def to_transaction(self) -> dict[str, Any]:
        """The entry of a type-4 transaction's ``authorizationList`` as eth-account takes it."""
        return {
            "chainId": self.chain_id,
            "address": self.address,
            "nonce": self.nonce,
            "yParity": self.y_parity,
            "r": self.r,
            "s": self.s,
        }

    @classmethod
    def from_signature(cls, chain_id: int, delegate: str, nonce: int, signature: bytes) -> Authorization:
        """The authorization ``(chain_id, delegate, nonce)`` with a 65-byte ``r ‖ s ‖ v`` signature of its digest
        (``v`` 27/28 or 0/1)."""
        if len(signature) != 65:
            raise BadInputError(f"a signature is 65 bytes, got {len(signature)}")
        v = signature[64]
        if v not in (0, 1, 27, 28):
            raise BadInputError(
                f"a signature's v is 27 or 28 (or 0 or 1), got {v}: an authorization carries no EIP-155 chain id in v"
            )
        return cls(
            chain_id=chain_id,
            address=delegate,
            nonce=nonce,
            y_parity=v - 27 if v >= 27 else v,
            r=int.from_bytes(signature[:32], "big"),
            s=int.from_bytes(signature[32:64], "big"),
        )


def sign_authorization(signer: HashSigner, chain_id: int, delegate: str, nonce: int) -> Authorization:
    """``signer``'s authorization to delegate its EOA to ``delegate`` on ``chain_id`` at transaction nonce
    ``nonce``. Chain id 0 (valid on every chain) is refused: keyscope binds every delegation to one chain."""
    if chain_id == 0:
        raise BadInputError(
            "an authorization for chain id 0 is valid on every chain where the EOA's nonce matches, so anyone could "
            "replay it there: sign it for the chain it is meant for"
        )
    digest = authorization_digest(chain_id, delegate, nonce)
    return Authorization.from_signature(chain_id, delegate, nonce, signer.sign_hash(digest))
