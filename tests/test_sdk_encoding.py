"""The SDK's fast encodings give the same bytes as the plain ones: the ENABLE signature spliced onto a prefix
encoded once, the hash of an operation read without building the packed model, calldata from an encoder kept
per function signature, the getNonce calldata remembered per lane."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.calls import encode_function_call
from keyscope.entrypoint import encode_get_nonce
from keyscope.errors import BadInputError
from keyscope.hashing import user_op_hash_v07, user_op_hash_v08
from keyscope.hexutil import keccak, to_address
from keyscope.session import (
    Condition,
    Permission,
    Rule,
    Session,
    enable_signature_prefix,
    enable_signature_with_prefix,
    encode_enable_signature,
)
from keyscope.userop import UserOperation
from test_userop import user_operations

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: to_address(raw))
words = st.integers(0, 2**256 - 1)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    permissions = []
    for index in range(draw(st.integers(1, 3))):
        rules = tuple(
            Rule(condition=Condition.EQUAL, offset=32 * draw(st.integers(0, 3)), values=(draw(words),))
            for _ in range(draw(st.integers(0, 3)))
        )
        selector = keccak(f"f{index}(uint256,uint256,uint256,uint256)".encode())[:4]
        permissions.append(Permission(target=draw(addresses), selector=selector, rules=rules))
    return Session(
        session_key=draw(addresses.filter(lambda a: int(a, 16) != 0)),
        permissions=tuple(permissions),
        salt=draw(st.integers(0, 2**64)),
        valid_until=draw(st.integers(0, 2**40)),
    )


@settings(max_examples=25, deadline=None)
@given(
    session=sessions(),
    owner_signature=st.binary(min_size=65, max_size=200),
    signature=st.binary(min_size=65, max_size=65),
)
def test_the_enable_prefix_and_a_signature_are_the_full_enable_encoding(
    session: Session, owner_signature: bytes, signature: bytes
) -> None:
    prefix = enable_signature_prefix(session, owner_signature)
    assert enable_signature_with_prefix(prefix, signature) == encode_enable_signature(
        session, owner_signature, signature
    )


@pytest.mark.parametrize("length", [0, 64, 66, 96])
def test_the_enable_prefix_refuses_a_signature_not_of_65_bytes(length: int) -> None:
    session = Session(
        session_key="0x" + "11" * 20, permissions=(Permission(target="0x" + "22" * 20, selector=bytes(4)),)
    )
    prefix = enable_signature_prefix(session, bytes(65))
    with pytest.raises(BadInputError, match=f"{length} bytes"):
        enable_signature_with_prefix(prefix, bytes(length))


@settings(max_examples=50, deadline=None)
@given(op=user_operations(), entry_point=addresses, chain_id=st.integers(1, 2**64))
def test_an_operations_hash_is_the_hash_of_its_packed_form(
    op: UserOperation, entry_point: str, chain_id: int
) -> None:
    packed = op.pack()
    assert op.hash(entry_point, chain_id) == user_op_hash_v07(packed, entry_point, chain_id)
    assert op.hash(entry_point, chain_id, "0.8") == user_op_hash_v08(packed, entry_point, chain_id)


SIGNATURES = {
    "f(address,uint256)": st.tuples(addresses, words),
    "g(bool,bytes,string)": st.tuples(st.booleans(), st.binary(max_size=80), st.text(max_size=20)),
    "h(uint8[],bytes32,int64)": st.tuples(
        st.lists(st.integers(0, 255), max_size=5),
        st.binary(min_size=32, max_size=32),
        st.integers(-(2**63), 2**63 - 1),
    ),
}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), signature=st.sampled_from(sorted(SIGNATURES)))
def test_function_calls_are_eth_abis_encoding(data: st.DataObject, signature: str) -> None:
    args = data.draw(SIGNATURES[signature])
    types = signature[signature.index("(") + 1 : -1].split(",")
    expected = keccak(signature.encode())[:4] + abi_encode(types, list(args))
    assert encode_function_call(signature, *args) == expected
    assert encode_function_call(signature, *args) == expected  # the kept encoder, a second time


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0x" + "11" * 20,), "takes 2 argument"),
        (("0x" + "11" * 20, -1), "cannot encode"),
        (("0x" + "11" * 20, 2**256), "cannot encode"),
        (("not an address", 1), "cannot encode"),
    ],
)
def test_function_call_arguments_that_do_not_fit_are_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        encode_function_call("f(address,uint256)", *args)


@settings(max_examples=30)
@given(sender=addresses, key=st.integers(0, 2**192 - 1))
def test_get_nonce_calldata_is_eth_abis_encoding(sender: str, key: int) -> None:
    expected = keccak(b"getNonce(address,uint192)")[:4] + abi_encode(["address", "uint192"], [sender, key])
    assert encode_get_nonce(sender, key) == expected
    assert encode_get_nonce(sender, key) == expected
