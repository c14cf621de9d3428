"""The co-signer service asked over raw HTTP (the real server on 127.0.0.1, hand-written JSON bodies), the way a
leaked session key's holder would ask it: callData that says a call it covers in one reading and makes another
in the account's, JSON that says two things, and a co-signature carried to another operation.

The co-signer judges the calls of an operation and signs ``CoSign(sessionId, userOpHash)`` of that very operation:
every refusal here must come with no signature, and every signature must count for the operation judged only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyscope import ENTRY_POINT_V07
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy
from keyscope.erc1271 import co_sign_digest
from keyscope.execution import EXECUTE_SELECTOR, Call, encode_execute, encode_mode
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import word
from keyscope.signing import LocalSigner, recover_hash
from keyscope.userop import UserOperation
from support.userops import plain_op

CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ENTRY_POINT = ENTRY_POINT_V07
ACCOUNT = "0x" + "22" * 20
ALLOWED = "0x" + "33" * 20
FORBIDDEN = "0x" + "66" * 20
SESSION_ID = bytes.fromhex("44" * 32)
KEY = LocalSigner.generate()
DATA = bytes.fromhex("a9059cbb") + bytes(64)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    policy = CoSignPolicy(
        accounts=frozenset({ACCOUNT}), targets=frozenset({ALLOWED}), max_value=0, messages=False
    )
    service = CoSignerService(KEY, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=policy)
    with CoSignerServer(service) as server:
        yield server.url


def _op(call_data: bytes, **fields: Any) -> UserOperation:
    return plain_op(ACCOUNT, call_data, **fields)


def _request(op: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "keyscope_coSignUserOperation",
        "params": [ACCOUNT, "0x" + SESSION_ID.hex(), op],
    }


def _post(url: str, body: bytes) -> Any:
    answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _co_signed(op: UserOperation, *, entry_point: str = ENTRY_POINT, chain_id: int = CHAIN_ID) -> bytes:
    """What a co-signature of ``op`` (as the EntryPoint ``entry_point`` on ``chain_id`` hashes it) signs."""
    return co_sign_digest(
        SESSION_ID, user_op_hash_v07(op.pack(), entry_point, chain_id), chain_id=CHAIN_ID, module=MODULE
    )


def _signature(answer: dict[str, Any]) -> bytes:
    assert "error" not in answer, answer
    return bytes.fromhex(answer["result"]["signature"][2:])


def _execution_single(target: str, value: int = 0, data: bytes = b"") -> bytes:
    return bytes.fromhex(target[2:]) + word(value) + data


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 32)


def _batch_element(target: str, data: bytes) -> bytes:
    return word(int(target, 16)) + word(0) + word(0x60) + word(len(data)) + _padded(data)


def _hiding_encodings() -> dict[str, bytes]:
    """callData of an ``execute`` that a lax decoder reads as a call to the allowed target, while the canonical
    reading (the account's, for a strict ABI decoder; another layout for a lax one) holds the forbidden target,
    or that runs code the co-signer cannot judge."""
    allowed = _execution_single(ALLOWED, 0, DATA)
    forbidden = _execution_single(FORBIDDEN, 0, DATA)
    single = encode_mode(0)
    batch = encode_mode(1)
    # executionCalldata's offset at 0x60: a decoder following it reads the allowed call placed there, one reading
    # the canonical place (0x40) reads the forbidden one
    offset_moved = (
        EXECUTE_SELECTOR
        + single
        + word(0x40 + 32 + len(_padded(forbidden)))
        + word(len(forbidden))
        + _padded(forbidden)
        + word(len(allowed))
        + _padded(allowed)
    )
    # a batch of one whose element offset skips a forbidden element to an allowed one behind it
    skipped = _batch_element(FORBIDDEN, DATA)
    hidden_batch = word(0x20) + word(1) + word(0x20 + len(skipped)) + skipped + _batch_element(ALLOWED, DATA)
    batch_offset_moved = (
        EXECUTE_SELECTOR + batch + word(0x40) + word(len(hidden_batch)) + _padded(hidden_batch)
    )
    # a batch whose array offset is not 0x20, pointing past a forbidden array at an allowed one
    forbidden_array = word(1) + word(0x20) + _batch_element(FORBIDDEN, DATA)
    allowed_array = word(1) + word(0x20) + _batch_element(ALLOWED, DATA)
    array_moved = word(0x20 + len(forbidden_array)) + forbidden_array + allowed_array
    array_offset_moved = EXECUTE_SELECTOR + batch + word(0x40) + word(len(array_moved)) + _padded(array_moved)
    # the allowed call with a target word carrying bits of the forbidden address above its 160 bits
    dirty = (
        word(((int(FORBIDDEN, 16) & (2**96 - 1)) << 160) | int(ALLOWED, 16))
        + word(0)
        + word(0x60)
        + word(len(DATA))
        + DATA
    )
    dirty_batch = word(0x20) + word(1) + word(0x20) + dirty
    dirty_target = EXECUTE_SELECTOR + batch + word(0x40) + word(len(dirty_batch)) + _padded(dirty_batch)
    # the execution of the allowed call run as delegatecall (the target's code acting as the account)
    delegate = encode_execute(Call.of(ALLOWED, 0, DATA))
    delegatecall = EXECUTE_SELECTOR + encode_mode(0xFF) + delegate[36:]
    # a mode with a selector or payload (ERC-7579 lets an account give those bytes any meaning)
    mode_selector = (
        EXECUTE_SELECTOR + bytes([0, 0, 0, 0, 0, 0]) + bytes.fromhex("deadbeef") + bytes(22) + delegate[36:]
    )
    mode_payload = EXECUTE_SELECTOR + bytes([0, 0]) + bytes(29) + b"\x01" + delegate[36:]
    # EntryPoint v0.7's executeUserOp wrapping of an allowed execute (the account then reads the rest its own way)
    execute_user_op = bytes.fromhex("8dd7712f") + delegate
    return {
        "execution offset moved": offset_moved,
        "batch element offset moved": batch_offset_moved,
        "batch array offset moved": array_offset_moved,
        "dirty target word": dirty_target,
        "delegatecall": delegatecall,
        "mode selector": mode_selector,
        "mode payload": mode_payload,
        "executeUserOp": execute_user_op,
    }


WHY = {
    "execution offset moved": "executionCalldata offset is not the canonical 0x40",
    "batch element offset moved": "call 0 is not canonically encoded",
    "batch array offset moved": "batch array offset is not the canonical 0x20",
    "dirty target word": "target of call 0 has dirty upper bits",
    "delegatecall": "execution mode 0xff",
    "mode selector": "execution mode 0x000000000000deadbeef",
    "mode payload": "is not allowed: sessions may use single or batch calls only",
    "executeUserOp": "callData selector 0x8dd7712f is not execute",
}


@pytest.mark.parametrize("name", sorted(_hiding_encodings()))
def test_calldata_read_otherwise_than_canonically_is_refused_unsigned(url: str, name: str) -> None:
    """Each encoding is refused at the step that sees it (not by accident elsewhere), with no signature."""
    call_data = _hiding_encodings()[name]
    answer = _post(url, json.dumps(_request(_op(call_data).to_rpc())).encode())
    assert "result" not in answer, f"{name}: co-signed {answer}"
    assert answer["error"]["code"] == -32003
    assert answer["error"]["data"] == {"reason": "callData"}, answer
    assert WHY[name] in answer["error"]["message"], answer


def test_single_and_batch_of_the_same_call_are_each_signed_for_their_own_encoding(url: str) -> None:
    """The same allowed call as a single execute and as a batch of one: both are co-signed, each co-signature
    counts for its own callData only (the userOpHash covers it), so neither is replayed onto the other."""
    call = Call.of(ALLOWED, 0, DATA)
    single, batch = _op(encode_execute(call)), _op(encode_execute([call], batch=True))
    single_sig = _signature(_post(url, json.dumps(_request(single.to_rpc())).encode()))
    batch_sig = _signature(_post(url, json.dumps(_request(batch.to_rpc())).encode()))
    assert recover_hash(_co_signed(single), single_sig) == KEY.address
    assert recover_hash(_co_signed(batch), batch_sig) == KEY.address
    assert recover_hash(_co_signed(batch), single_sig) != KEY.address
    assert recover_hash(_co_signed(single), batch_sig) != KEY.address


@pytest.mark.parametrize(
    "moved",
    [
        {"nonce": 4},
        {"call_gas_limit": 10_000_000},
        {"pre_verification_gas": 5_000_000},
        {"max_fee_per_gas": 10**12},
        {"paymaster": "0x" + "99" * 20, "paymaster_verification_gas_limit": 60_000},
        {"factory": "0x" + "55" * 20, "factory_data": b"\x01"},
        {"call_data": encode_execute(Call.of(ALLOWED, 0, DATA)) + b"\x00" * 32},
    ],
    ids=["nonce", "callGas", "preVerificationGas", "maxFee", "paymaster", "factory", "trailing bytes"],
)
def test_a_co_signature_counts_for_the_operation_judged_only(url: str, moved: dict[str, Any]) -> None:
    """A co-signature moved onto the same operation with another nonce, padded gas, a paymaster, a factory or
    bytes appended to its callData (which the module refuses too), or onto it under another EntryPoint or chain, does not
    recover to the co-signer."""
    op = _op(encode_execute(Call.of(ALLOWED, 0, DATA)))
    signature = _signature(_post(url, json.dumps(_request(op.to_rpc())).encode()))
    assert recover_hash(_co_signed(op), signature) == KEY.address
    assert recover_hash(_co_signed(op.replace(**moved)), signature) != KEY.address
    assert recover_hash(_co_signed(op, entry_point="0x" + "43" * 20), signature) != KEY.address
    assert recover_hash(_co_signed(op, chain_id=1), signature) != KEY.address


def test_a_key_written_twice_is_refused_before_anything_is_judged(url: str) -> None:
    """A body naming callData twice (allowed first, forbidden last, and the other way round): Python reads the last
    copy, and a proxy before the co-signer may judge the first, so either order is refused as a parse error naming
    the key, and nothing is signed (attack 299)."""
    allowed = encode_execute(Call.of(ALLOWED, 0, DATA))
    forbidden = encode_execute(Call.of(FORBIDDEN, 0, DATA))
    body = json.dumps(_request(_op(allowed).to_rpc()))
    spelled = f'"callData": "0x{allowed.hex()}"'
    assert body.count(spelled) == 1
    for twice in (
        body.replace(spelled, f'{spelled}, "callData": "0x{forbidden.hex()}"'),
        body.replace(spelled, f'"callData": "0x{forbidden.hex()}", {spelled}'),
    ):
        answer = _post(url, twice.encode())
        assert "result" not in answer and answer["error"]["code"] == -32700, answer
        assert "callData" in answer["error"]["message"] and "twice" in answer["error"]["message"], answer


def test_a_field_given_in_both_spellings_is_refused(url: str) -> None:
    """``callData`` (judged) and ``call_data`` (another reading's name for it) in one userOp: refused as
    malformed, not judged by one name and signed by the other."""
    op = _op(encode_execute(Call.of(ALLOWED, 0, DATA))).to_rpc()
    op["call_data"] = "0x" + encode_execute(Call.of(FORBIDDEN, 0, DATA)).hex()
    answer = _post(url, json.dumps(_request(op)).encode())
    assert "result" not in answer and answer["error"]["data"] == {"reason": "params"}, answer


def test_each_answer_of_a_json_rpc_batch_is_bound_to_its_own_request(url: str) -> None:
    """A JSON-RPC batch mixing a covered operation and an uncovered one: the uncovered one is refused under its
    own id, and the covered one's signature counts for it alone (not for its neighbour)."""
    allowed = _op(encode_execute(Call.of(ALLOWED, 0, DATA)))
    forbidden = _op(encode_execute(Call.of(FORBIDDEN, 0, DATA)), nonce=9)
    body = json.dumps([_request(forbidden.to_rpc(), 7), _request(allowed.to_rpc(), 8)]).encode()
    answers = {answer["id"]: answer for answer in _post(url, body)}
    assert "result" not in answers[7] and answers[7]["error"]["data"] == {"reason": "target"}
    signature = _signature(answers[8])
    assert recover_hash(_co_signed(allowed), signature) == KEY.address
    assert recover_hash(_co_signed(forbidden), signature) != KEY.address
