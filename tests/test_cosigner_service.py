"""The co-signer service's answers, called directly (no server, no chain): what it signs is the co-signing digest
of the operation's EntryPoint v0.7 hash, and what it cannot judge or sign is refused with a reason, never an
internal error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.cosigner import CoSignerService, CoSignPolicy
from keyscope.cosigner.service import INVALID_PARAMS, NOT_CO_SIGNED, CoSignRefused
from keyscope.erc1271 import co_sign_digest
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.signing import LocalSigner, recover_hash
from keyscope.userop import UserOperation

CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
ACCOUNT = "0x" + "22" * 20
TARGET = "0x" + "33" * 20
SESSION_ID = "0x" + "44" * 32
METHOD = "keyscope_coSignUserOperation"

CO_SIGNER = LocalSigner.generate()


def service(**policy: Any) -> CoSignerService:
    return CoSignerService(
        CO_SIGNER, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=CoSignPolicy(**policy)
    )


def operation(**fields: Any) -> dict[str, Any]:
    op = UserOperation(
        sender=ACCOUNT,
        nonce=7,
        call_data=encode_execute(Call.of(TARGET, 0, bytes.fromhex("a9059cbb") + bytes(64))),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )
    return op.replace(**fields).to_rpc() if fields else op.to_rpc()


def test_the_service_signs_the_co_signing_digest_of_the_v07_hash() -> None:
    rpc = operation()
    answer = service(targets=frozenset({TARGET})).handle(METHOD, [ACCOUNT, SESSION_ID, rpc])
    digest = user_op_hash_v07(UserOperation.from_rpc(rpc).pack(), ENTRY_POINT, CHAIN_ID)
    signed = co_sign_digest(bytes.fromhex(SESSION_ID[2:]), digest, chain_id=CHAIN_ID, module=MODULE)
    assert recover_hash(signed, bytes.fromhex(answer["signature"][2:])) == CO_SIGNER.address


@settings(max_examples=25, deadline=None)
@given(
    spelled=st.sampled_from(["0x7702", "0x7702" + "0" * 36]),
    factory_data=st.binary(max_size=40),
)
def test_an_eip7702_operation_is_refused_with_its_reason(spelled: str, factory_data: bytes) -> None:
    """An EIP-7702 account's operation (the marker, short or spelled as an address, with or without an init
    call) runs on EntryPoint v0.8: the v0.7 co-signer refuses it by name instead of failing inside."""
    rpc = operation()
    rpc["factory"] = spelled
    rpc["factoryData"] = "0x" + factory_data.hex()
    with pytest.raises(CoSignRefused, match="EIP-7702") as refused:
        service().handle(METHOD, [ACCOUNT, SESSION_ID, rpc])
    assert refused.value.code == NOT_CO_SIGNED
    assert refused.value.to_rpc()["data"] == {"reason": "factory"}


def test_a_factory_operation_is_still_co_signed() -> None:
    """Any other factory is an ordinary counterfactual account's: its initCode is part of the hash signed."""
    rpc = operation(factory="0x" + "55" * 20, factory_data=b"\x01\x02")
    answer = service().handle(METHOD, [ACCOUNT, SESSION_ID, rpc])
    digest = user_op_hash_v07(UserOperation.from_rpc(rpc).pack(), ENTRY_POINT, CHAIN_ID)
    signed = co_sign_digest(bytes.fromhex(SESSION_ID[2:]), digest, chain_id=CHAIN_ID, module=MODULE)
    assert recover_hash(signed, bytes.fromhex(answer["signature"][2:])) == CO_SIGNER.address


def test_a_malformed_operation_is_refused_as_params() -> None:
    rpc = operation()
    rpc["callGasLimit"] = hex(1 << 130)
    with pytest.raises(CoSignRefused, match="malformed") as refused:
        service().handle(METHOD, [ACCOUNT, SESSION_ID, rpc])
    assert refused.value.code == INVALID_PARAMS
