"""The owner's signatures in the name of keyscope's account (ERC-1271), as ``contracts/KeyscopeAccount.sol`` checks
them: ERC-7739 nested signatures, bound to the account's EIP-712 domain (``KeyscopeAccount``, version ``1``, its
chain and address). An owner's signature made for one account is worthless for the owner's other accounts and for
the owner's own address, where the owner's bare signature of, say, a Permit2 permit (which names no owner) would
be as good for each of them.

What the account takes::

    typed data  ownerSignature (65) | appDomainSeparator (32) | contentsHash (32) | contentsDescr
                | len(contentsDescr) (2)
                the owner signs TypedDataSign{contents, name, version, chainId, verifyingContract, salt} in the
                application's domain: its contents the application's message, the rest the account's domain
    message     ownerSignature (65): the owner signs PersonalSign{prefixed} in the account's domain, ``prefixed``
                the message's EIP-191 hash

``contentsDescr`` is the contents' type definitions (the primary type's and those it uses, sorted by name), then
the primary type's name when its definition does not come first.

The session grant is not signed this way: the session module asks the account about it, and the account takes
its owner's bare signature from the validator it is asking to validate an operation (the module, in ENABLE mode), the
grant's digest naming the account, module and chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import BadInputError
from .hexutil import address_word, keccak, to_address, word
from .session import DOMAIN_NAME, DOMAIN_VERSION
from .signing import HashSigner
from .typed_data import (
    DOMAIN_FIELDS,
    TypedData,
    domain_separator,
    eip191_hash,
    eip191_message,
    typed_data_sign_type_hash,
    wallet_typed_data,
)

__all__ = [
    "ACCOUNT_DOMAIN_NAME",
    "ACCOUNT_DOMAIN_VERSION",
    "account_domain",
    "encode_owner_typed_data_signature",
    "nested_typed_data",
    "owner_message_hash",
    "owner_typed_data_hash",
    "personal_sign_typed_data",
    "refuse_session_grant",
    "sign_message_as_account",
    "sign_typed_data_as_account",
]

ACCOUNT_DOMAIN_NAME = "KeyscopeAccount"
"""The name in keyscope's account's EIP-712 domain (ERC-5267 ``eip712Domain()``)."""
ACCOUNT_DOMAIN_VERSION = "1"

_PERSONAL_SIGN_TYPEHASH = keccak(b"PersonalSign(bytes prefixed)")
_NO_SALT = bytes(32)


def account_domain(account: str, chain_id: int) -> dict[str, Any]:
    """The account's EIP-712 domain, as its ``eip712Domain()`` gives it."""
    return {
        "name": ACCOUNT_DOMAIN_NAME,
        "version": ACCOUNT_DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_address(account, name="account"),
    }


def _contents_descr(typed: TypedData) -> str:
    """ERC-7739's contentsDescr: implicit (the contents type alone) when the primary type's definition comes
    first, else explicit (the contents type, then the primary type's name)."""
    contents = typed.contents_type
    if contents.startswith(typed.primary_type + "("):
        return contents
    return contents + typed.primary_type


def owner_typed_data_hash(data: Mapping[str, Any], *, account: str, chain_id: int) -> bytes:
    """What the owner signs for typed ``data`` (``eth_signTypedData_v4``'s JSON form) as ``account``: the EIP-712
    hash of ``TypedDataSign`` in ``data``'s own domain."""
    typed = TypedData(data)
    struct_hash = keccak(
        typed_data_sign_type_hash(typed.primary_type, typed.contents_type)
        + typed.struct_hash
        + keccak(ACCOUNT_DOMAIN_NAME.encode())
        + keccak(ACCOUNT_DOMAIN_VERSION.encode())
        + word(chain_id)
        + address_word(to_address(account, name="account"))
        + _NO_SALT
    )
    return keccak(b"\x19\x01" + typed.domain_separator + struct_hash)


def nested_typed_data(data: Mapping[str, Any], *, account: str, chain_id: int) -> dict[str, Any]:
    """``data`` nested as the owner's wallet signs it (``eth_signTypedData_v4``): ``TypedDataSign`` in ``data``'s
    domain, ``data``'s message as its contents, so that the wallet still shows the message; its digest is
    :func:`owner_typed_data_hash`."""
    typed = TypedData(data)
    types = {name: list(fields) for name, fields in data["types"].items()}
    types["TypedDataSign"] = [
        {"name": "contents", "type": typed.primary_type},
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
        {"name": "salt", "type": "bytes32"},
    ]
    if "EIP712Domain" not in types:
        types["EIP712Domain"] = [
            {"name": name, "type": kind} for name, kind, _ in DOMAIN_FIELDS if name in typed.domain
        ]
    message = {
        "contents": data["message"],
        **account_domain(account, chain_id),
        "salt": "0x" + _NO_SALT.hex(),
    }
    return wallet_typed_data(
        {"types": types, "primaryType": "TypedDataSign", "domain": data["domain"], "message": message}
    )


def encode_owner_typed_data_signature(signature: bytes, data: Mapping[str, Any]) -> bytes:
    """The bytes the account's ``isValidSignature`` takes for typed ``data``, from the owner's ``signature`` of
    :func:`owner_typed_data_hash`."""
    typed = TypedData(data)
    descr = _contents_descr(typed).encode()
    return (
        bytes(signature) + typed.domain_separator + typed.struct_hash + descr + len(descr).to_bytes(2, "big")
    )


def refuse_session_grant(data: Mapping[str, Any]) -> None:
    """Raise :class:`~keyscope.errors.BadInputError` for typed data in the session module's EIP-712 domain (a
    session grant): the account takes the owner's signature of it in its name, nested (ERC-7739) or bare (an
    EIP-7702 account), as the owner's grant of the session, which only ``Owner.sign_grant`` gives after judging
    it."""
    typed = TypedData(data)
    if (typed.domain.get("name"), typed.domain.get("version")) == (DOMAIN_NAME, DOMAIN_VERSION):
        raise BadInputError(
            f"this typed data ({typed.primary_type} in the session module's domain) is a session grant: the "
            "owner's signature of it in the account's name enables the session. Sign grants with "
            "Owner.sign_grant, which judges them first; nothing was signed"
        )


def sign_typed_data_as_account(
    signer: HashSigner, data: Mapping[str, Any], *, account: str, chain_id: int
) -> bytes:
    """The owner ``signer``'s signature of typed ``data`` in ``account``'s name: what a verifier (Permit2, an
    EIP-2612 token, OpenZeppelin's SignatureChecker) passes to the account's ``isValidSignature`` with ``data``'s
    digest. The signer is shown the nested typed data (its wallet still shows the message). A session grant's typed
    data is refused (:func:`refuse_session_grant`)."""
    refuse_session_grant(data)
    nested = nested_typed_data(data, account=account, chain_id=chain_id)
    return encode_owner_typed_data_signature(signer.sign_typed_data(nested), data)


def owner_message_hash(message: bytes, *, account: str, chain_id: int) -> bytes:
    """What the owner signs for a ``personal_sign`` ``message`` as ``account``: the EIP-712 hash of
    ``PersonalSign{prefixed}`` in the account's domain."""
    struct_hash = keccak(_PERSONAL_SIGN_TYPEHASH + eip191_hash(bytes(message)))
    return keccak(b"\x19\x01" + domain_separator(account_domain(account, chain_id)) + struct_hash)


def sign_message_as_account(
    signer: HashSigner, message: bytes | str, *, account: str, chain_id: int
) -> bytes:
    """The owner ``signer``'s signature of a ``personal_sign`` ``message`` (text is UTF-8) in ``account``'s name:
    what a verifier passes to the account's ``isValidSignature`` with the message's EIP-191 hash (EIP-4361
    sign-in, for one)."""
    raw = message.encode() if isinstance(message, str) else bytes(message)
    return signer.sign_typed_data(personal_sign_typed_data(raw, account=account, chain_id=chain_id))


def personal_sign_typed_data(message: bytes, *, account: str, chain_id: int) -> dict[str, Any]:
    """``PersonalSign{prefixed}`` in the account's domain as the owner's wallet signs it (``eth_signTypedData_v4``),
    ``prefixed`` the EIP-191 prefixed message; its digest is :func:`owner_message_hash`."""
    return wallet_typed_data(
        {
            "types": {
                "EIP712Domain": [{"name": name, "type": kind} for name, kind, _ in DOMAIN_FIELDS[:4]],
                "PersonalSign": [{"name": "prefixed", "type": "bytes"}],
            },
            "primaryType": "PersonalSign",
            "domain": account_domain(account, chain_id),
            "message": {"prefixed": eip191_message(message)},
        }
    )
