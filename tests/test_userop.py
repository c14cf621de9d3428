"""Wire models, hashing, execute encoding and signing: properties, and the hash against the real EntryPoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.errors import BadInputError
from keyscope.execution import (
    EXECUTE_SELECTOR,
    MODE_BATCH,
    MODE_SINGLE,
    Call,
    ExecuteDecodeError,
    decode_execute,
    encode_execute,
)
from keyscope.hashing import user_op_hash_v07, user_op_hash_v08
from keyscope.signing import LocalSigner, recover_hash
from keyscope.userop import PackedUserOperation, UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import deploy_entry_point
from support.userops import v08_typed_data

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
u128 = st.integers(min_value=0, max_value=2**128 - 1)
u256 = st.integers(min_value=0, max_value=2**256 - 1)
data = st.binary(max_size=200)


@st.composite
def user_operations(draw: st.DrawFn) -> UserOperation:
    factory = draw(st.none() | addresses)
    paymaster = draw(st.none() | addresses)
    return UserOperation(
        sender=draw(addresses),
        nonce=draw(u256),
        factory=factory,
        factory_data=draw(data) if factory else b"",
        call_data=draw(data),
        call_gas_limit=draw(u128),
        verification_gas_limit=draw(u128),
        pre_verification_gas=draw(u256),
        max_fee_per_gas=draw(u128),
        max_priority_fee_per_gas=draw(u128),
        paymaster=paymaster,
        paymaster_verification_gas_limit=draw(u128) if paymaster else 0,
        paymaster_post_op_gas_limit=draw(u128) if paymaster else 0,
        paymaster_data=draw(data) if paymaster else b"",
        signature=draw(data),
    )


# ------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------


@given(user_operations())
def test_pack_and_unpack_are_inverse(op: UserOperation) -> None:
    packed = op.pack()
    assert packed.unpack() == op
    assert PackedUserOperation.model_validate(packed.model_dump()) == packed


@given(user_operations())
def test_rpc_form_round_trips_and_leaves_out_unset_fields(op: UserOperation) -> None:
    rpc = op.to_rpc()
    assert UserOperation.from_rpc(rpc) == op
    assert ("factory" in rpc) == (op.factory is not None)
    assert ("paymaster" in rpc) == (op.paymaster is not None)
    assert all(isinstance(v, str) and v.startswith("0x") for v in rpc.values())


def test_packed_layout_is_the_entry_points() -> None:
    op = UserOperation(
        sender="0x" + "11" * 20,
        nonce=7,
        factory="0x" + "22" * 20,
        factory_data=b"\x01\x02",
        call_gas_limit=3,
        verification_gas_limit=4,
        max_fee_per_gas=5,
        max_priority_fee_per_gas=6,
        paymaster="0x" + "33" * 20,
        paymaster_verification_gas_limit=8,
        paymaster_post_op_gas_limit=9,
        paymaster_data=b"\xaa",
    )
    packed = op.pack()
    assert packed.init_code == bytes.fromhex("22" * 20) + b"\x01\x02"
    assert packed.account_gas_limits == (4).to_bytes(16, "big") + (3).to_bytes(16, "big")
    assert packed.gas_fees == (6).to_bytes(16, "big") + (5).to_bytes(16, "big")
    assert (
        packed.paymaster_and_data
        == bytes.fromhex("33" * 20) + (8).to_bytes(16, "big") + (9).to_bytes(16, "big") + b"\xaa"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("call_gas_limit", 2**128, "128 bits"),
        ("max_fee_per_gas", -1, "negative"),
        ("sender", "0x1234", "not a valid address"),
        ("call_data", "0xzz", "not hex data"),
    ],
)
def test_bad_fields_are_refused_with_a_reason(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"sender": "0x" + "11" * 20, "nonce": 0, field: value}
    with pytest.raises(ValueError, match=message):
        UserOperation(**fields)


def test_from_rpc_refuses_unknown_fields() -> None:
    with pytest.raises(BadInputError, match=r"not a v0\.7 UserOperation"):
        UserOperation.from_rpc({"sender": "0x" + "11" * 20, "nonce": "0x0", "initCode": "0x"})


# ------------------------------------------------------------------------------------------------------
# Hashes
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anvil_entry_point() -> Iterator[tuple[AnvilChain, AnvilContract]]:
    """The official EntryPoint v0.7 on a fresh anvil of the file's own, which runs it natively."""
    with anvil_chain() as chain:
        yield chain, deploy_entry_point(chain, chain.accounts[0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=user_operations())
def test_v07_hash_equals_the_entry_points_get_user_op_hash(
    op: UserOperation, anvil_entry_point: tuple[AnvilChain, AnvilContract]
) -> None:
    """The Python hash against EntryPoint v0.7's own getUserOpHash, on the file's anvil, over 300 operations (each
    an eth_call; with and without factory and paymaster, empty and filled data), both ways it is computed: from
    the packed model and from the operation (``op.hash``, which reads the packed fields without the model)."""
    chain, entry_point = anvil_entry_point
    packed = op.pack()
    on_chain = bytes(entry_point.getUserOpHash(packed.as_tuple()))
    assert user_op_hash_v07(packed, entry_point.address, chain.chain_id) == on_chain
    assert op.hash(entry_point.address, chain.chain_id) == on_chain


@settings(max_examples=200, deadline=None)
@given(op=user_operations(), entry_point=addresses, chain_id=st.integers(min_value=1, max_value=2**64))
def test_v08_hash_is_the_eip712_hash_of_the_packed_operation(
    op: UserOperation, entry_point: str, chain_id: int
) -> None:
    """v0.8's hash against eth-account's independent EIP-712 encoder."""
    packed = op.pack()
    typed = v08_typed_data(op, entry_point, chain_id)
    signable = encode_typed_data(full_message=typed)
    from eth_utils import keccak

    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert user_op_hash_v08(packed, entry_point, chain_id) == expected


def test_v08_hash_of_an_eip7702_operation_needs_the_delegate() -> None:
    op = UserOperation(sender="0x" + "11" * 20, nonce=0, factory="0x7702" + "00" * 18).pack()
    with pytest.raises(BadInputError, match="eip7702_delegate"):
        user_op_hash_v08(op, "0x" + "22" * 20, 1)
    with_delegate = user_op_hash_v08(op, "0x" + "22" * 20, 1, eip7702_delegate="0x" + "44" * 20)
    assert with_delegate != user_op_hash_v08(op.model_copy(update={"init_code": b""}), "0x" + "22" * 20, 1)


@given(op=user_operations())
def test_the_hash_binds_every_signed_field(op: UserOperation) -> None:
    base = user_op_hash_v07(op.pack(), "0x" + "22" * 20, 1)
    assert user_op_hash_v07(op.replace(nonce=(op.nonce + 1) % 2**256).pack(), "0x" + "22" * 20, 1) != base
    assert user_op_hash_v07(op.replace(call_data=op.call_data + b"\x00").pack(), "0x" + "22" * 20, 1) != base
    assert user_op_hash_v07(op.pack(), "0x" + "22" * 20, 2) != base
    assert user_op_hash_v07(op.pack(), "0x" + "23" * 20, 1) != base
    assert user_op_hash_v07(op.replace(signature=op.signature + b"\x01").pack(), "0x" + "22" * 20, 1) == base


# ------------------------------------------------------------------------------------------------------
# execute encoding
# ------------------------------------------------------------------------------------------------------

calls = st.builds(Call.of, addresses, u256, data)


@given(st.lists(calls, min_size=1, max_size=6))
def test_batch_encoding_is_the_abi_encoding_and_decodes_back(call_list: list[Call]) -> None:
    encoded = encode_execute(call_list, batch=True)
    execution = abi_encode(["(address,uint256,bytes)[]"], [[(c.target, c.value, c.data) for c in call_list]])
    assert encoded == EXECUTE_SELECTOR + abi_encode(["bytes32", "bytes"], [MODE_BATCH, execution])
    assert decode_execute(encoded).calls == tuple(call_list)


@given(calls)
def test_single_encoding_is_packed_and_decodes_back(call: Call) -> None:
    encoded = encode_execute(call)
    execution = bytes.fromhex(call.target[2:]) + call.value.to_bytes(32, "big") + call.data
    assert encoded == EXECUTE_SELECTOR + abi_encode(["bytes32", "bytes"], [MODE_SINGLE, execution])
    assert decode_execute(encoded).calls == (call,)


@given(st.lists(calls, min_size=1, max_size=4), st.integers(min_value=0, max_value=400), st.integers(1, 255))
def test_decoding_refuses_tampered_encodings_or_reads_the_same_calls(
    call_list: list[Call], position: int, delta: int
) -> None:
    encoded = bytearray(encode_execute(call_list, batch=True))
    position %= len(encoded)
    encoded[position] = (encoded[position] + delta) % 256
    try:
        decoded = decode_execute(bytes(encoded))
    except ExecuteDecodeError:
        return
    # a byte of data or padding changed: still canonical, and the decoder reads what the bytes say
    assert len(decoded.calls) == len(call_list)


def test_encoding_refuses_no_calls_and_several_in_single_mode() -> None:
    with pytest.raises(BadInputError):
        encode_execute([])
    with pytest.raises(BadInputError, match="single mode"):
        encode_execute([Call.of("0x" + "11" * 20), Call.of("0x" + "22" * 20)], batch=False)


# ------------------------------------------------------------------------------------------------------
# Signing
# ------------------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.binary(min_size=32, max_size=32))
def test_signatures_equal_eth_accounts_and_recover(digest: bytes) -> None:
    signer = LocalSigner.generate()
    signature = signer.sign_hash(digest)
    assert signature == bytes(Account.from_key(signer.private_key).unsafe_sign_hash(digest).signature)
    assert recover_hash(digest, signature) == signer.address
    assert (
        int.from_bytes(signature[32:64], "big")
        <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    )


def test_signer_never_shows_its_key() -> None:
    signer = LocalSigner.generate()
    assert signer.private_key.hex() not in repr(signer)
    with pytest.raises(BadInputError):
        LocalSigner(b"\x00" * 32)
