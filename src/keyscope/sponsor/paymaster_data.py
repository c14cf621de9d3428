"""What ``SponsorPaymaster`` verifies, as pure functions: the sponsorship digest and the paymasterData layout.

``paymasterData`` (77 bytes, after the paymaster address and its two 16-byte gas limits in
``paymasterAndData``)::

    validUntil (6 bytes, big-endian; 0 = no expiry) || validAfter (6 bytes) || signature (65 bytes, r || s || v)

The signature is the sponsor key's raw ECDSA signature of the EIP-712 digest of::

    Sponsorship(address sender, uint256 nonce, bytes32 initCodeHash, bytes32 callDataHash,
                bytes32 accountGasLimits, uint256 preVerificationGas, bytes32 gasFees,
                uint128 paymasterVerificationGasLimit, uint128 paymasterPostOpGasLimit,
                uint48 validUntil, uint48 validAfter)

in the domain ``{name: "KeyscopeSponsorPaymaster", version: "1", chainId, verifyingContract: paymaster}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

from ..errors import BadInputError
from ..hashing import eip712_domain_separator
from ..hexutil import address_word, to_address, word
from ..signing import HashSigner
from ..userop import UserOperation

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "PAYMASTER_DATA_LENGTH",
    "SPONSORSHIP_TYPEHASH",
    "STUB_SIGNATURE",
    "SponsorshipData",
    "decode_paymaster_data",
    "domain_separator",
    "encode_paymaster_data",
    "sign_sponsorship",
    "sponsorship_hash",
]

DOMAIN_NAME = "KeyscopeSponsorPaymaster"
DOMAIN_VERSION = "1"
SPONSORSHIP_TYPEHASH = keccak(
    b"Sponsorship(address sender,uint256 nonce,bytes32 initCodeHash,bytes32 callDataHash,bytes32 accountGasLimits,"
    b"uint256 preVerificationGas,bytes32 gasFees,uint128 paymasterVerificationGasLimit,"
    b"uint128 paymasterPostOpGasLimit,uint48 validUntil,uint48 validAfter)"
)
PAYMASTER_DATA_LENGTH = 77
UINT48_MAX = 2**48 - 1

# A well-formed signature (r the x coordinate of the curve's generator, low s, v 27): it recovers, to an
# address nobody holds the key of, so the paymaster's check runs the same code and gas on stub data as on
# a real signature and returns SIG_VALIDATION_FAILED, which gas estimation tolerates.
STUB_SIGNATURE = bytes.fromhex(
    "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" + "22" * 32 + "1b"
)


def domain_separator(paymaster: str, chain_id: int) -> bytes:
    """The EIP-712 domain separator of the paymaster at ``paymaster`` on chain ``chain_id``."""
    return eip712_domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, to_address(paymaster))


def _check_window(valid_until: int, valid_after: int) -> None:
    for name, value in (("valid_until", valid_until), ("valid_after", valid_after)):
        if not 0 <= value <= UINT48_MAX:
            raise BadInputError(f"{name} {value} does not fit in 48 bits (unix seconds)")


def sponsorship_hash(
    op: UserOperation, paymaster: str, chain_id: int, *, valid_until: int, valid_after: int
) -> bytes:
    """The digest the sponsor signs (``SponsorPaymaster.sponsorshipHash``): every field of ``op`` but the
    signature and paymasterData, with its paymaster gas limits, and the window."""
    _check_window(valid_until, valid_after)
    packed = op.pack()
    struct_hash = keccak(
        SPONSORSHIP_TYPEHASH
        + address_word(op.sender)
        + word(op.nonce)
        + keccak(packed.init_code)
        + keccak(op.call_data)
        + packed.account_gas_limits
        + word(op.pre_verification_gas)
        + packed.gas_fees
        + word(op.paymaster_verification_gas_limit)
        + word(op.paymaster_post_op_gas_limit)
        + word(valid_until)
        + word(valid_after)
    )
    return keccak(b"\x19\x01" + domain_separator(paymaster, chain_id) + struct_hash)


def encode_paymaster_data(valid_until: int, valid_after: int, signature: bytes) -> bytes:
    """``validUntil (6) || validAfter (6) || signature (65)``."""
    _check_window(valid_until, valid_after)
    if len(signature) != 65:
        raise BadInputError(f"the sponsor's signature must be 65 bytes (r || s || v), got {len(signature)}")
    return valid_until.to_bytes(6, "big") + valid_after.to_bytes(6, "big") + signature


@dataclass(frozen=True)
class SponsorshipData:
    """``paymasterData`` taken apart."""

    valid_until: int
    valid_after: int
    signature: bytes


def decode_paymaster_data(data: bytes) -> SponsorshipData:
    """Read a 77-byte ``paymasterData``."""
    if len(data) != PAYMASTER_DATA_LENGTH:
        raise BadInputError(
            f"paymasterData of {len(data)} bytes: SponsorPaymaster reads exactly {PAYMASTER_DATA_LENGTH} "
            "(validUntil 6, validAfter 6, signature 65)"
        )
    return SponsorshipData(int.from_bytes(data[:6], "big"), int.from_bytes(data[6:12], "big"), data[12:])


def sign_sponsorship(
    signer: HashSigner,
    op: UserOperation,
    paymaster: str,
    chain_id: int,
    *,
    valid_until: int,
    valid_after: int = 0,
) -> bytes:
    """The ``paymasterData`` sponsoring ``op`` (whose paymaster gas limits must already be final)."""
    digest = sponsorship_hash(op, paymaster, chain_id, valid_until=valid_until, valid_after=valid_after)
    return encode_paymaster_data(valid_until, valid_after, signer.sign_hash(digest))
