"""The SDK's side of session signatures, without a chain: ERC-7739 hashing against eth-account's EIP-712 encoder,
the typed-data permission builder and its refusals, and the local check of typed data and sign-in messages."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope import Policy, arg
from keyscope.errors import BadInputError
from keyscope.grant import SessionGrant
from keyscope.hexutil import to_address
from keyscope.message_signing import SignatureRefusedError, check_sign_in, check_typed_data, sign_in_message
from keyscope.report import unjudged
from keyscope.session import Session
from keyscope.typed_data import TypedData, typed_data_sign_hash
from support.erc7739 import typed_data_sign_wrapping
from support.permit_types import PERMIT_SINGLE_TYPES

ACCOUNT = "0x" + "22" * 20
MODULE = "0x" + "33" * 20
PERMIT2 = "0x" + "44" * 20
USDC = "0x" + "a0" * 20
ROUTER = "0x" + "b0" * 20
TYPES = PERMIT_SINGLE_TYPES
DOMAIN = {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2}


def permit(amount: int, token: str = USDC, spender: str = ROUTER) -> dict[str, Any]:
    return {
        "types": TYPES,
        "primaryType": "PermitSingle",
        "domain": DOMAIN,
        "message": {
            "details": {"token": token, "amount": amount, "expiration": 10, "nonce": 0},
            "spender": spender,
            "sigDeadline": 10,
        },
    }


PERMISSION = Policy.typed_data(
    DOMAIN, TYPES, "PermitSingle", [arg("details", "amount") <= 100, arg("spender") == ROUTER]
)
SESSION = Session(
    session_key="0x" + "11" * 20, typed_data_permissions=(PERMISSION,), sign_in=("app.example.com",)
)


@settings(max_examples=25, deadline=None)
@given(amount=st.integers(0, 2**160 - 1), nonce=st.integers(0, 2**48 - 1), chain_id=st.integers(1, 2**64))
def test_what_the_session_key_signs_is_erc7739_typed_data_sign_as_eth_account_encodes_it(
    amount: int, nonce: int, chain_id: int
) -> None:
    data = permit(amount)
    data["message"]["details"]["nonce"] = nonce
    typed = TypedData(data)
    ours = typed_data_sign_hash(
        typed.domain_separator,
        "PermitSingle",
        typed.contents_type,
        typed.struct_hash,
        account=ACCOUNT,
        chain_id=chain_id,
        module=MODULE,
    )
    nested = typed_data_sign_wrapping(
        data,
        [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        account=ACCOUNT,
        chain_id=chain_id,
        module=MODULE,
    )
    signable = encode_typed_data(full_message=nested)
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == ours


def test_the_builder_lays_the_rules_on_the_flattened_contents() -> None:
    assert PERMISSION.nested == (0,)  # details (word 0) is expanded into frame 1, words 3..6
    amount, spender = PERMISSION.rules
    assert (amount.offset, amount.name) == (32 * 4, "details.amount")
    assert (spender.offset, spender.name) == (32 * 1, "spender")
    assert PERMISSION.contents_type == (
        "PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"
        "PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)"
    )
    assert PERMISSION.contents_type_hash == TypedData(permit(1)).type_hash


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (arg("details") == 1, "hash of a struct"),
        (arg("details", "missing") == 1, "no member 'missing'"),
        (arg("details", "amount") <= 2**160, "out of range"),
        (arg("spender") <= ROUTER, None),
        # once "cannot build a Rule: ONE_OF takes 1 to 31 values, got 0", naming no field
        (
            arg("details", "amount").one_of(),
            r"field `details.amount` \(uint160\) of PermitSingle: one_of takes 1 to 31",
        ),
        (
            arg("details", "amount").one_of(list(range(32))),
            r"field `details.amount` \(uint160\) of PermitSingle: one_of takes 1 to 31 distinct values, got 32",
        ),
    ],
)
def test_the_builder_refuses_rules_it_cannot_bind(rule: Any, message: str | None) -> None:
    if message is None:  # an ordering on an address is allowed (its word is a number)
        Policy.typed_data(DOMAIN, TYPES, "PermitSingle", [rule])
        return
    with pytest.raises(BadInputError, match=message):
        Policy.typed_data(DOMAIN, TYPES, "PermitSingle", [rule])


def test_strings_take_equality_on_their_hash_and_arrays_take_nothing() -> None:
    types = {"Order": [{"name": "memo", "type": "string"}, {"name": "ids", "type": "uint256[]"}]}
    granted = Policy.typed_data(DOMAIN, types, "Order", [arg("memo") == "hello"])
    assert granted.rules[0].values == (int.from_bytes(keccak(b"hello"), "big"),)
    with pytest.raises(BadInputError, match="only ==, != and one_of"):
        Policy.typed_data(DOMAIN, types, "Order", [arg("memo") <= "hello"])
    with pytest.raises(BadInputError, match="an array"):
        Policy.typed_data(DOMAIN, types, "Order", [arg("ids") == 1])


def test_a_rule_on_a_bytes_field_binds_the_bytes_its_hex_spells_as_the_message_encodes_them() -> None:
    """A ``bytes`` value in typed data is bytes or 0x-hex (its JSON form); a rule's value on a ``bytes`` field is read
    the same way, so ``== "0x0102"`` binds the two bytes 0x0102, not the six characters "0x0102"."""
    types = {"Order": [{"name": "data", "type": "bytes"}, {"name": "memo", "type": "string"}]}
    granted = Policy.typed_data(DOMAIN, types, "Order", [arg("data") == "0x0102", arg("memo") == "0x0102"])
    assert granted.rules[0].values == (int.from_bytes(keccak(b"\x01\x02"), "big"),)
    assert granted.rules[1].values == (int.from_bytes(keccak(b"0x0102"), "big"),)  # a string is its text
    session = Session(session_key="0x" + "11" * 20, typed_data_permissions=(granted,))

    def order(data: Any) -> dict[str, Any]:
        return {
            "types": types,
            "primaryType": "Order",
            "domain": DOMAIN,
            "message": {"data": data, "memo": "0x0102"},
        }

    for spelled in ("0x0102", b"\x01\x02"):
        assert check_typed_data(session, order(spelled), session_id="0x01").permission_index == 0
    with pytest.raises(SignatureRefusedError) as info:  # the text's bytes are another value
        check_typed_data(session, order(b"0x0102"), session_id="0x01")
    assert (info.value.reason, info.value.rule_index) == ("SignedRuleViolated", 0)
    with pytest.raises(BadInputError, match=r"field `data` \(bytes\) of Order.*'hello' is not hex data"):
        Policy.typed_data(DOMAIN, types, "Order", [arg("data") == "hello"])


def test_the_local_check_names_the_permission_and_rule() -> None:
    assert check_typed_data(SESSION, permit(100), session_id="0x01").permission_index == 0
    with pytest.raises(SignatureRefusedError, match=r"details\.amount must be at most 100\)") as info:
        check_typed_data(SESSION, permit(101), session_id="0x01")
    assert (info.value.reason, info.value.rule_index, info.value.actual) == ("SignedRuleViolated", 0, 101)
    with pytest.raises(SignatureRefusedError) as other:
        check_typed_data(SESSION, permit(1, spender=USDC), session_id="0x01")
    assert other.value.rule_index == 1
    elsewhere = permit(1)
    elsewhere["domain"] = {**DOMAIN, "chainId": 2}
    with pytest.raises(SignatureRefusedError, match="no signing permission") as info:
        check_typed_data(SESSION, elsewhere, session_id="0x01")
    assert info.value.reason == "SigningNotGranted"


def test_the_window_binds_signatures() -> None:
    timed = Session(
        session_key="0x" + "11" * 20, typed_data_permissions=(PERMISSION,), valid_after=10, valid_until=20
    )
    check_typed_data(timed, permit(1), session_id="0x01", now=15)
    for now in (9, 21):
        with pytest.raises(SignatureRefusedError, match="window") as info:
            check_typed_data(timed, permit(1), session_id="0x01", now=now)
        assert info.value.reason == "SignatureOutsideWindow"


def test_sign_in_messages_are_checked_as_the_module_reads_them() -> None:
    message = sign_in_message(
        "app.example.com",
        ACCOUNT,
        uri="https://app.example.com",
        chain_id=1,
        nonce="abcdefgh12",
        issued_at="now",
    )
    checked = check_sign_in(SESSION, message, account=ACCOUNT, session_id="0x01")
    assert checked.first_line_length == len(
        b"app.example.com wants you to sign in with your Ethereum account:\n"
    )
    assert check_sign_in(
        SESSION,
        message.replace(ACCOUNT, ACCOUNT.upper().replace("0X", "0x")),
        account=ACCOUNT,
        session_id="0x01",
    )  # any case, as the module
    with pytest.raises(SignatureRefusedError) as info:
        check_sign_in(SESSION, message.replace("app.", "evil."), account=ACCOUNT, session_id="0x01")
    assert info.value.reason == "SignInNotGranted"
    with pytest.raises(SignatureRefusedError) as other:
        check_sign_in(SESSION, message, account="0x" + "99" * 20, session_id="0x01")
    assert other.value.reason == "SignInAccountMismatch"
    with pytest.raises(BadInputError, match="nonce"):
        sign_in_message("app.example.com", ACCOUNT, uri="u", chain_id=1, nonce="x", issued_at="now")


def _grant(session: Session) -> SessionGrant:
    return SessionGrant(
        session=session,
        account=ACCOUNT,
        module="0x" + "33" * 20,
        chain_id=1,
        entry_point="0x" + "55" * 20,
        epoch=0,
        session_id=session.session_id(ACCOUNT, 0),
        how="offchain",
    )


def test_the_session_report_says_what_a_session_may_sign_and_who_co_signs_it() -> None:
    """The report the CLI and ``SessionAccount.status()`` print names each signing permission from its signed
    contents type (nested fields by path, amounts as numbers, addresses as addresses) and the co-signer."""
    co_signer = to_address("0x" + "c0" * 20)
    report = unjudged(_grant(SESSION.model_copy(update={"co_signer": co_signer})), "not yet enabled", now=0)
    assert report.signing == [
        "May sign PermitSingle messages as the account (EIP-712 typed data of name 'Permit2', chain 1, contract "
        f"{to_address(PERMIT2)}): details.amount must be at most 100; spender must be {to_address(ROUTER)}",
        "May sign in to app.example.com as the account (an EIP-4361 message naming app.example.com and the account)",
    ]
    assert report.co_signer == co_signer
    text = str(report)
    assert f"  signs   {report.signing[0]}" in text and f"  cosigned by {co_signer}" in text
    assert report.to_dict()["signing"] == report.signing and report.to_dict()["co_signer"] == co_signer
    plain = Session(session_key=SESSION.session_key, permissions=(Policy.transfer(ROUTER, 1),))
    assert unjudged(_grant(plain), "not yet enabled", now=0).signing == []


@pytest.mark.parametrize("now", ["now", -1, 1.5, True, b"\x01"])
def test_a_junk_now_is_refused_as_bad_input_naming_it(now: Any) -> None:
    message = sign_in_message(
        "app.example.com",
        ACCOUNT,
        uri="https://app.example.com",
        chain_id=1,
        nonce="abcdefgh12",
        issued_at="now",
    )
    with pytest.raises(BadInputError, match=r"now=.*int\(time.time\(\)\)") as refused:
        check_sign_in(SESSION, message, account=ACCOUNT, session_id="0x01", now=now)
    assert "b'" not in str(refused.value)
    assert check_sign_in(SESSION, message, account=ACCOUNT, session_id="0x01", now=0)


def test_a_contents_type_defining_a_struct_twice_is_refused() -> None:
    """The module hashes the first definition of the primary type in the contents type; a typehash taken from a
    second one would give signatures the account refuses. Such a contents type (a grant request made without the
    SDK) is refused when the permission is read, naming the struct."""
    fields = PERMISSION.model_dump()
    twice = "PermitSingle(address spender)" + fields["contents_type"]
    with pytest.raises(
        ValueError, match=r"defines 'PermitSingle' twice: give each struct type one definition"
    ):
        type(PERMISSION).model_validate({**fields, "contents_type": twice})
    assert type(PERMISSION).model_validate(fields) == PERMISSION
