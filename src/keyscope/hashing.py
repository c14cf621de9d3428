"""UserOperation hashes, as pure functions.

* EntryPoint v0.7: ``keccak256(abi.encode(keccak256(pack(op)), entryPoint, chainId))`` where ``pack`` encodes
  the fields with the dynamic ones (initCode, callData, paymasterAndData) replaced by their hashes.
* EntryPoint v0.8: the EIP-712 hash of the same fields as a ``PackedUserOperation`` struct, in the domain
  ``{name: "ERC4337", version: "1", chainId, verifyingContract: entryPoint}``. For an EIP-7702 account
  (``initCode`` whose first 20 bytes, zero-padded, are ``0x7702`` followed by zeros) the hashed initCode is the
  delegate's address followed by the initCode's bytes after the first 20, so the delegate must be given.
"""

from __future__ import annotations

from typing import Protocol

from eth_hash.auto import keccak

from .errors import BadInputError
from .hexutil import address_word, to_address, to_bytes, word

__all__ = [
    "EIP7702_INIT_CODE",
    "PACKED_USEROP_TYPEHASH",
    "PackedFields",
    "eip712_domain_separator",
    "hashed_init_code",
    "is_eip7702_init_code",
    "user_op_hash",
    "user_op_hash_v07",
    "user_op_hash_v08",
]

PACKED_USEROP_TYPEHASH = keccak(
    b"PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,bytes32 accountGasLimits,"
    b"uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)"
)
_EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
EIP7702_INIT_CODE = b"\x77\x02"
"""The initCode of an EntryPoint v0.8 UserOperation from an EIP-7702 account (bundlers' ``factory: "0x7702"``)."""
_EIP7702_MARKER_WORD = EIP7702_INIT_CODE.ljust(20, b"\0")
_KECCAK_OF_NOTHING = keccak(b"")
"""The hash of an empty initCode or paymasterAndData (most operations have both empty)."""


def _keccak_of(data: bytes) -> bytes:
    return keccak(data) if data else _KECCAK_OF_NOTHING


def is_eip7702_init_code(init_code: bytes) -> bool:
    """Whether EntryPoint v0.8 treats ``init_code`` as an EIP-7702 account's: at least 2 bytes, whose first 20
    (zero-padded, as calldata reads past the end) are ``0x7702`` and 18 zero bytes. A factory whose address merely
    starts with ``7702`` is a factory."""
    return len(init_code) >= 2 and init_code[:20].ljust(20, b"\0") == _EIP7702_MARKER_WORD


def hashed_init_code(init_code: bytes, eip7702_delegate: str | None = None) -> bytes:
    """The bytes EntryPoint v0.8 hashes for ``init_code`` (``Eip7702Support``): for an EIP-7702 account's (see
    :func:`is_eip7702_init_code`) the delegate its code names when the operation is validated (``eip7702_delegate``,
    required then), followed by the initCode's bytes after the first 20; any other initCode as it is."""
    if not is_eip7702_init_code(init_code):
        return init_code
    if eip7702_delegate is None:
        raise BadInputError(
            "this UserOperation's initCode starts with the EIP-7702 marker 0x7702, whose hash covers the delegate "
            "the EOA installs: give eip7702_delegate (the address the account delegates to), or an operation "
            "carrying its eip7702Auth"
        )
    return to_bytes(to_address(eip7702_delegate, name="eip7702_delegate")) + init_code[20:]


class PackedFields(Protocol):
    """The hashed fields of a ``PackedUserOperation`` (:class:`~keyscope.userop.PackedUserOperation` has them)."""

    @property
    def sender(self) -> str: ...
    @property
    def nonce(self) -> int: ...
    @property
    def init_code(self) -> bytes: ...
    @property
    def call_data(self) -> bytes: ...
    @property
    def account_gas_limits(self) -> bytes: ...
    @property
    def pre_verification_gas(self) -> int: ...
    @property
    def gas_fees(self) -> bytes: ...
    @property
    def paymaster_and_data(self) -> bytes: ...


def _encoded_fields(op: PackedFields, init_code: bytes) -> bytes:
    return b"".join(
        (
            address_word(op.sender),
            word(op.nonce),
            _keccak_of(init_code),
            keccak(op.call_data),
            op.account_gas_limits,
            word(op.pre_verification_gas),
            op.gas_fees,
            _keccak_of(op.paymaster_and_data),
        )
    )


def eip712_domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """The EIP-712 domain separator of ``{name, version, chainId, verifyingContract}``."""
    return keccak(
        _EIP712_DOMAIN_TYPEHASH
        + keccak(name.encode())
        + keccak(version.encode())
        + word(chain_id)
        + address_word(verifying_contract)
    )


def user_op_hash_v07(op: PackedFields, entry_point: str, chain_id: int) -> bytes:
    """``EntryPoint.getUserOpHash(op)`` for EntryPoint v0.7 at ``entry_point`` on chain ``chain_id``."""
    inner = keccak(_encoded_fields(op, op.init_code))
    return keccak(inner + address_word(entry_point) + word(chain_id))


def user_op_hash_v08(
    op: PackedFields, entry_point: str, chain_id: int, *, eip7702_delegate: str | None = None
) -> bytes:
    """``EntryPoint.getUserOpHash(op)`` for EntryPoint v0.8 (EIP-712)."""
    struct_hash = keccak(
        PACKED_USEROP_TYPEHASH + _encoded_fields(op, hashed_init_code(op.init_code, eip7702_delegate))
    )
    domain = eip712_domain_separator("ERC4337", "1", chain_id, entry_point)
    return keccak(b"\x19\x01" + domain + struct_hash)


def user_op_hash(
    op: PackedFields,
    entry_point: str,
    chain_id: int,
    *,
    version: str = "0.7",
    eip7702_delegate: str | None = None,
) -> bytes:
    """The userOpHash for the EntryPoint ``version`` ("0.7" or "0.8"); ``eip7702_delegate`` as for
    :func:`user_op_hash_v08`."""
    if version == "0.7":
        return user_op_hash_v07(op, entry_point, chain_id)
    if version == "0.8":
        return user_op_hash_v08(op, entry_point, chain_id, eip7702_delegate=eip7702_delegate)
    raise BadInputError(f"unknown EntryPoint version {version!r}: keyscope hashes for '0.7' and '0.8'")
