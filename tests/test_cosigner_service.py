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
from keyscope.errors import BadInputError
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


def test_the_co_signers_key_is_taken_in_any_form_and_a_bad_one_is_refused_at_once_never_shown() -> None:
    """``CoSignerService(key, chain_id=, module=, entry_point=)`` as docs/session-module.md writes it, with the key
    as hex text: the service kept the text as its key and every request failed inside it (``'str' object has no
    attribute 'sign_hash'``: the client got an internal error, and no co-signed session could send). It takes the
    forms every other key of keyscope takes, and refuses anything else when it is built, naming the co-signer's
    key but never showing it."""
    from eth_account import Account

    rpc = operation()
    key = CO_SIGNER.private_key
    for form in ("0x" + key.hex(), key.hex(), key, Account.from_key(key), CO_SIGNER):
        signing = CoSignerService(form, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT)
        answer = signing.handle(METHOD, [ACCOUNT, SESSION_ID, rpc])
        digest = co_sign_digest(
            bytes.fromhex(SESSION_ID[2:]),
            user_op_hash_v07(UserOperation.from_rpc(rpc).pack(), ENTRY_POINT, CHAIN_ID),
            chain_id=CHAIN_ID,
            module=MODULE,
        )
        assert recover_hash(digest, bytes.fromhex(answer["signature"][2:])) == CO_SIGNER.address
    for bad in ("0x" + key.hex()[:-1] + "z", "0x" + "00" * 32, key[:31], None):
        with pytest.raises(BadInputError) as info:
            CoSignerService(bad, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT)
        said = str(info.value)
        assert said.startswith("the co-signer's key "), said
        assert key.hex()[:16] not in said.lower(), said


def test_a_local_co_signer_takes_its_key_in_any_form_and_refuses_a_bad_one_at_once() -> None:
    """``local_co_signer(key, policy)`` (README) kept hex text as its key: the session's first operation then raised
    a bare ``AttributeError`` from inside the send. Its key now takes every form keyscope's keys take, and a bad
    one is refused when the co-signer is made, without being shown."""
    from eth_account import Account

    from keyscope.co_signer import CoSignRequest, local_co_signer

    key = CO_SIGNER.private_key
    request = CoSignRequest(
        kind="operation",
        account=ACCOUNT,
        session_id=bytes(32),
        digest=b"\x07" * 32,
        chain_id=CHAIN_ID,
        module=MODULE,
    )
    for form in ("0x" + key.hex(), key, Account.from_key(key), CO_SIGNER):
        signature = local_co_signer(form)(request)
        assert recover_hash(request.co_sign_digest, signature) == CO_SIGNER.address
    for bad in ("0x" + key.hex()[:-1] + "z", key[:31], 7):
        with pytest.raises(BadInputError) as info:
            local_co_signer(bad)
        said = str(info.value)
        assert said.startswith("the co-signer's key ") and key.hex()[:16] not in said.lower(), said


def test_the_local_co_signer_service_takes_its_key_in_any_form_and_refuses_a_bad_one_at_once() -> None:
    """``LocalCoSigner(stack, key="0x…")`` kept hex text as its key and failed at ``.address``, a bare
    ``AttributeError``; it takes a key as ``CoSignerService`` does and refuses a bad one when made, never showing
    it."""
    from keyscope.cosigner import LocalCoSigner

    key = CO_SIGNER.private_key
    stack: Any = None  # nothing of the stack is read before start()
    for form in ("0x" + key.hex(), key, CO_SIGNER):
        assert LocalCoSigner(stack, key=form).address == CO_SIGNER.address
    with pytest.raises(BadInputError) as info:
        LocalCoSigner(stack, key="0x" + key.hex()[:-1] + "z")
    assert (
        str(info.value).startswith("the co-signer's key ") and key.hex()[:16] not in str(info.value).lower()
    )


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
