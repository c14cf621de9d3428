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

``initCodeHash`` is EntryPoint v0.8's (:func:`sponsorship_init_code_hash`): for an EIP-7702 account's operation
(an initCode starting with the ``0x7702`` marker) it covers the delegate the sender's code names when the
operation is validated, ``keccak256(delegate)`` (followed by the initCode's bytes after the first 20, if any), so
a sponsorship holds only for the delegate it was signed for; any other initCode is hashed as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

from ..errors import BadInputError
from ..hashing import eip712_domain_separator, hashed_init_code, is_eip7702_init_code
from ..hexutil import address_word, to_address, word
from ..signing import HashSigner
from ..userop import PackedUserOperation, UserOperation

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
    "sponsorship_init_code_hash",
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


def sponsorship_init_code_hash(init_code: bytes, eip7702_delegate: str | None = None) -> bytes:
    """The ``initCodeHash`` of a ``Sponsorship`` (EntryPoint v0.8's, ``Eip7702Support``): for an initCode starting
    with the EIP-7702 marker, ``keccak256(delegate)``, or ``keccak256(delegate || initCode[20:])`` when the initCode
    is longer than 20 bytes, where ``delegate`` is the address the sender's code delegates to when the operation is
    validated (``eip7702_delegate``, required then); otherwise ``keccak256(initCode)``."""
    if is_eip7702_init_code(init_code) and eip7702_delegate is not None and int(eip7702_delegate, 16) == 0:
        raise BadInputError(
            "this operation's initCode starts with the EIP-7702 marker 0x7702, but its delegate is the zero address, "
            "which clears the EOA's code instead of delegating it: there is no delegate to cover (the paymaster "
            "refuses it, SenderNotEip7702Delegated); authorize the delegate the EOA is to run"
        )
    return keccak(hashed_init_code(init_code, eip7702_delegate))


def sponsorship_hash(
    op: UserOperation | PackedUserOperation,
    paymaster: str,
    chain_id: int,
    *,
    valid_until: int,
    valid_after: int,
    eip7702_delegate: str | None = None,
) -> bytes:
    """The digest the sponsor signs (``SponsorPaymaster.sponsorshipHash``): every field of ``op`` but the
    signature and paymasterData, with its paymaster gas limits, and the window.

    For an EIP-7702 account's operation (``factory`` ``"0x7702"``) the digest covers the delegate: the one its
    ``eip7702_auth`` names, unless ``eip7702_delegate`` names it (for a packed operation, which carries no
    authorization, ``eip7702_delegate`` is required). A packed operation's paymasterAndData needs at least its
    first 52 bytes (address and the two gas limits), as the contract's does."""
    _check_window(valid_until, valid_after)
    if isinstance(op, PackedUserOperation):
        packed = op
        pad = op.paymaster_and_data
        if len(pad) < 52:
            raise BadInputError(
                f"paymasterAndData of {len(pad)} bytes: the sponsorship covers the paymaster's two gas limits, in "
                "its bytes 20..52"
            )
        paymaster_verification_gas_limit = int.from_bytes(pad[20:36], "big")
        paymaster_post_op_gas_limit = int.from_bytes(pad[36:52], "big")
    else:
        packed = op.pack()
        paymaster_verification_gas_limit = op.paymaster_verification_gas_limit
        paymaster_post_op_gas_limit = op.paymaster_post_op_gas_limit
        if eip7702_delegate is None and op.eip7702_auth is not None:
            eip7702_delegate = op.eip7702_auth.address
    struct_hash = keccak(
        SPONSORSHIP_TYPEHASH
        + address_word(packed.sender)
        + word(packed.nonce)
        + sponsorship_init_code_hash(packed.init_code, eip7702_delegate)
        + keccak(packed.call_data)
        + packed.account_gas_limits
        + word(packed.pre_verification_gas)
        + packed.gas_fees
        + word(paymaster_verification_gas_limit)
        + word(paymaster_post_op_gas_limit)
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
    eip7702_delegate: str | None = None,
) -> bytes:
    """The ``paymasterData`` sponsoring ``op`` (whose paymaster gas limits must already be final); for an EIP-7702
    account's operation, for the delegate its ``eip7702_auth`` names (or ``eip7702_delegate``) only."""
    digest = sponsorship_hash(
        op,
        paymaster,
        chain_id,
        valid_until=valid_until,
        valid_after=valid_after,
        eip7702_delegate=eip7702_delegate,
    )
    return encode_paymaster_data(valid_until, valid_after, signer.sign_hash(digest))
