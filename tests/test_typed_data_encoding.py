"""EIP-712 encoding, ERC-7739 wrapping and the flattening a session signature carries, without a chain: every hash
the session key signs is the one eth-account's EIP-712 encoder computes for the same data, on types that use every
kind of member (nested structs reached only through arrays, fixed arrays, bytesN, signed integers, bool, string,
bytes) in a domain with all five fields; input no wallet would encode as given is refused as ``BadInputError``; and
the frames a typed-data permission lays out are the words the module reads."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

from keyscope.errors import BadInputError
from keyscope.message_signing import nested_frames, sign_in_message
from keyscope.typed_data import (
    Frame,
    TypedData,
    eip191_message,
    encode_type,
    personal_sign_hash,
    plan_frames,
    typed_data_sign_hash,
)
from support.erc7739 import typed_data_sign_wrapping

ACCOUNT = "0x" + "22" * 20
MODULE = "0x" + "33" * 20
CHAIN_ID = 8453

TYPES: dict[str, list[dict[str, str]]] = {
    "Order": [
        {"name": "maker", "type": "address"},
        {"name": "legs", "type": "Leg[]"},
        {"name": "pair", "type": "Leg[2]"},
        {"name": "tag", "type": "bytes4"},
        {"name": "delta", "type": "int64"},
        {"name": "ok", "type": "bool"},
        {"name": "memo", "type": "string"},
        {"name": "blob", "type": "bytes"},
        {"name": "fee", "type": "Amount"},
        {"name": "ids", "type": "uint8[3]"},
    ],
    "Leg": [{"name": "asset", "type": "Asset"}, {"name": "amount", "type": "uint128"}],
    "Asset": [{"name": "token", "type": "address"}, {"name": "id", "type": "uint256"}],
    "Amount": [{"name": "value", "type": "uint96"}, {"name": "cap", "type": "int256"}],
}
DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
    {"name": "salt", "type": "bytes32"},
]
DOMAIN = {
    "name": "Exchange",
    "version": "2",
    "chainId": CHAIN_ID,
    "verifyingContract": "0x" + "44" * 20,
    "salt": bytes(range(1, 33)),
}


def leg(token: int, asset_id: int, amount: int) -> dict[str, Any]:
    return {"asset": {"token": "0x" + f"{token:02x}" * 20, "id": asset_id}, "amount": amount}


def order(**changes: Any) -> dict[str, Any]:
    message = {
        "maker": "0x" + "55" * 20,
        "legs": [leg(0x66, 7, 2**128 - 1), leg(0x67, 2**256 - 1, 0), leg(0x68, 1, 3)],
        "pair": [leg(0x69, 0, 1), leg(0x6A, 5, 2)],
        "tag": bytes.fromhex("a1b2c3d4"),
        "delta": -(2**63),
        "ok": True,
        "memo": "déjà vu",
        "blob": bytes.fromhex("00ff10"),
        "fee": {"value": 2**96 - 1, "cap": -1},
        "ids": [0, 255, 9],
    }
    message.update(changes)
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, **TYPES},
        "primaryType": "Order",
        "domain": DOMAIN,
        "message": message,
    }


def eth_account_digest(data: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=copy.deepcopy(data))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"delta": 2**63 - 1, "ok": False, "legs": [], "ids": [255, 0, 1]},
        {"tag": bytes.fromhex("000000ff"), "memo": "", "blob": b"", "fee": {"value": 0, "cap": -(2**255)}},
        {"legs": [leg(0x70, 2**255, 2**127)], "fee": {"value": 1, "cap": 2**255 - 1}, "delta": -1},
    ],
    ids=["every kind", "other bounds", "zero-ended words", "one leg"],
)
def test_the_digest_and_the_struct_hash_are_eth_account_s(changes: dict[str, Any]) -> None:
    data = order(**changes)
    typed = TypedData(data)
    assert typed.digest == eth_account_digest(data)
    assert typed.encode_type == (
        "Order(address maker,Leg[] legs,Leg[2] pair,bytes4 tag,int64 delta,bool ok,string memo,bytes blob,"
        "Amount fee,uint8[3] ids)Amount(uint96 value,int256 cap)Asset(address token,uint256 id)"
        "Leg(Asset asset,uint128 amount)"
    )
    assert typed.contents_type == (
        "Amount(uint96 value,int256 cap)Asset(address token,uint256 id)Leg(Asset asset,uint128 amount)"
        + typed.encode_type[: typed.encode_type.index("Amount(")]
    )


def test_the_session_key_signs_typed_data_sign_in_the_application_s_domain_as_eth_account_encodes_it() -> (
    None
):
    data = order()
    typed = TypedData(data)
    ours = typed_data_sign_hash(
        typed.domain_separator,
        "Order",
        typed.contents_type,
        typed.struct_hash,
        account=ACCOUNT,
        chain_id=CHAIN_ID,
        module=MODULE,
    )
    wrapped = typed_data_sign_wrapping(data, DOMAIN_TYPE, account=ACCOUNT, chain_id=CHAIN_ID, module=MODULE)
    assert ours == eth_account_digest(wrapped)


@pytest.mark.parametrize(
    "message", [b"", b"hello", bytes(range(256)) * 2], ids=["empty", "short", "512 bytes"]
)
def test_the_session_key_signs_personal_sign_in_the_account_s_domain_as_eth_account_encodes_it(
    message: bytes,
) -> None:
    wrapped = {
        "types": {"EIP712Domain": DOMAIN_TYPE, "PersonalSign": [{"name": "prefixed", "type": "bytes"}]},
        "primaryType": "PersonalSign",
        "domain": {
            "name": "keyscope Session",
            "version": "1",
            "chainId": CHAIN_ID,
            "verifyingContract": ACCOUNT,
            "salt": bytes(12) + bytes.fromhex(MODULE[2:]),
        },
        "message": {"prefixed": b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message},
    }
    assert eip191_message(message) == wrapped["message"]["prefixed"]
    assert personal_sign_hash(
        message, account=ACCOUNT, chain_id=CHAIN_ID, module=MODULE
    ) == eth_account_digest(wrapped)


def _with_domain(**domain: Any) -> dict[str, Any]:
    data = order()
    data["types"] = dict(TYPES)
    data["domain"] = domain
    return data


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (_with_domain(name="x", chainid=1), "chainid"),
        (_with_domain(name="x", salt=bytes(31)), "32"),
        (order(ok=1), "true or false"),
        (order(tag=bytes.fromhex("a1b2c3")), "exactly 4 bytes"),
        (order(delta=2**63), "out of range for int64"),
        (order(ids=[0, 256, 1]), "out of range for uint8"),
        (order(pair=[leg(1, 1, 1)] * 3), "expected 2 elements"),
        (order(extra=1), "extra"),
        ({**order(), "types": {"EIP712Domain": DOMAIN_TYPE[::-1], **TYPES}}, "EIP-712's order"),
    ],
    ids=[
        "a domain key EIP-712 has not",
        "a 31-byte salt",
        "1 as a bool",
        "3 bytes as a bytes4",
        "int64 one past its maximum",
        "uint8 one past its maximum",
        "three elements in a Leg[2]",
        "a member the type has not",
        "the domain's type in another order",
    ],
)
def test_input_a_wallet_would_not_encode_as_given_is_refused(data: dict[str, Any], says: str) -> None:
    with pytest.raises(BadInputError, match=says):
        assert TypedData(data).digest is None


def test_the_frames_of_a_nested_struct_are_its_words_after_the_primary_s() -> None:
    typed = TypedData(order())
    fee = 8
    planned = plan_frames("Order", typed.types, [("fee",)])
    assert planned == (Frame("Order", (), 0, None), Frame("Amount", ("fee",), 10, fee))
    assert nested_frames("Order", typed.types, [fee]) == planned
    frames = typed.frames(planned)
    assert frames.sizes == (10, 2)
    assert frames.nested_type_hashes == (keccak(encode_type("Amount", typed.types).encode()),)
    assert frames.words[fee] == keccak(frames.nested_type_hashes[0] + b"".join(frames.words[10:]))
    assert frames.word(32 * 10) == 2**96 - 1
    assert frames.word(32 * 11) == 2**256 - 1
    assert frames.word(32 * 4) == 2**256 - 2**63
    assert frames.word(32 * 3) == 0xA1B2C3D4 << 224
    assert frames.word(32 * 12) is None


@pytest.mark.parametrize(
    "word", [0, 9, 10], ids=["an address", "a fixed array", "the first past the primary"]
)
def test_a_word_that_is_not_a_nested_struct_is_not_expanded(word: int) -> None:
    typed = TypedData(order())
    with pytest.raises(BadInputError, match=f"word {word} of Order"):
        nested_frames("Order", typed.types, [word])


@pytest.mark.parametrize("path", [("maker",), ("ids",), ("legs",)])
def test_a_member_that_is_not_a_nested_struct_is_not_planned(path: tuple[str, ...]) -> None:
    typed = TypedData(order())
    with pytest.raises(BadInputError, match="cannot expand"):
        plan_frames("Order", typed.types, [path])


@pytest.mark.parametrize(("members", "refused"), [(255, False), (256, True)])
def test_a_frame_holds_at_most_255_words(members: int, refused: bool) -> None:
    data = {
        "types": {"Wide": [{"name": f"m{i}", "type": "uint8"} for i in range(members)]},
        "primaryType": "Wide",
        "domain": {"name": "wide"},
        "message": {f"m{i}": i % 256 for i in range(members)},
    }
    typed = TypedData(data)
    planned = plan_frames("Wide", typed.types)
    if refused:
        with pytest.raises(BadInputError, match="at most 255"):
            typed.frames(planned)
    else:
        assert typed.frames(planned).sizes == (255,)


def test_a_sign_in_message_is_eip_4361_s_lines() -> None:
    address = "0x" + "ab" * 20
    text = sign_in_message(
        "app.example.com",
        address,
        uri="https://app.example.com",
        chain_id=1,
        nonce="abcd1234",
        issued_at="2026-01-01T00:00:00Z",
    )
    assert text.split("\n") == [
        "app.example.com wants you to sign in with your Ethereum account:",
        to_checksum_address(address),
        "",
        "URI: https://app.example.com",
        "Version: 1",
        "Chain ID: 1",
        "Nonce: abcd1234",
        "Issued At: 2026-01-01T00:00:00Z",
    ]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("nonce", "abcd123", "at least 8"),
        ("statement", "one\ntwo", "one line"),
        ("uri", "https://a\nb", "one line"),
    ],
)
def test_a_sign_in_message_refuses_what_eip_4361_does_not_allow(field: str, value: str, says: str) -> None:
    given: dict[str, Any] = {"uri": "https://app.example.com", "nonce": "abcd1234", "issued_at": "now"}
    given[field] = value
    with pytest.raises(BadInputError, match=says):
        sign_in_message("app.example.com", "0x" + "ab" * 20, chain_id=1, **given)
