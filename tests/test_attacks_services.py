"""The co-signer service and the sponsor service asked over raw HTTP (their real servers on 127.0.0.1, hand-written
JSON bodies) by a leaked session key's holder, for angles the other files do not take:

* a co-signature of a message (``keyscope_coSignTypedData``) whose typed data spells an operation as EntryPoint
  v0.8 hashes it (EIP-712 ``PackedUserOperation`` in the EntryPoint's domain), to carry it to that operation;
* quantities and addresses spelled otherwise (ints, leading zeros, upper-case hex, lower-case addresses);
* a sponsor's request naming callData twice, or in both spellings;
* one account spelled several ways, to draw its sponsorship budget more than once.

Each must end with no signature, or a signature that counts for the operation judged (and its budget) only."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyscope.artifacts import ENTRY_POINT_V07, ENTRY_POINT_V08
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy
from keyscope.erc1271 import co_sign_digest
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.hashing import user_op_hash_v07, user_op_hash_v08
from keyscope.hexutil import to_address
from keyscope.signing import LocalSigner, recover_hash
from keyscope.sponsor import (
    Sponsor,
    SponsorServer,
    SponsorshipPolicy,
    decode_paymaster_data,
    sponsorship_hash,
)
from keyscope.typed_data import TypedData
from keyscope.userop import UserOperation
from support.userops import plain_op, v08_typed_data

CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ENTRY_POINT = ENTRY_POINT_V07
ACCOUNT = to_address("0x" + "ab12cd34ef" * 4)
ALLOWED = "0x" + "33" * 20
FORBIDDEN = "0x" + "66" * 20
PAYMASTER = "0x" + "77" * 20
SESSION_ID = bytes.fromhex("44" * 32)
CO_SIGNER = LocalSigner.generate()
SPONSOR = LocalSigner.generate()
DATA = bytes.fromhex("a9059cbb") + bytes(64)


@pytest.fixture(scope="module")
def co_signer_url() -> Iterator[str]:
    """A co-signer that approves calls to ALLOWED only, and co-signs messages."""
    policy = CoSignPolicy(accounts=frozenset({ACCOUNT}), targets=frozenset({ALLOWED}), messages=True)
    service = CoSignerService(
        CO_SIGNER, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=policy
    )
    with CoSignerServer(service) as server:
        yield server.url


def _op(call_data: bytes, **fields: Any) -> UserOperation:
    return plain_op(ACCOUNT, call_data, **fields)


def _rpc(method: str, params: list[Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _post(url: str, body: bytes | dict[str, Any]) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = httpx.post(url, content=content, headers={"Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _co_sign_op(url: str, op: dict[str, Any]) -> Any:
    return _post(url, _rpc("keyscope_coSignUserOperation", [ACCOUNT, "0x" + SESSION_ID.hex(), op]))


def _signature(answer: Any) -> bytes:
    assert "result" in answer, answer
    return bytes.fromhex(answer["result"]["signature"][2:])


def test_a_message_co_signature_is_no_co_signature_of_the_operation_it_spells(co_signer_url: str) -> None:
    """The co-signer refuses an operation calling FORBIDDEN; the key's holder then asks it to co-sign, as a message,
    typed data whose EIP-712 digest is that very operation's EntryPoint v0.8 userOpHash (the module validates
    EIP-7702 accounts' operations on v0.8). The co-signer signs ``CoSign(sessionId, d)`` for the ERC-7739
    ``TypedDataSign`` hash of the message (which binds the account and the module), never for the message's own
    digest: the co-signature it gives recovers to nobody for the operation, under either EntryPoint."""
    op = _op(encode_execute(Call.of(FORBIDDEN, 0, DATA)))
    refused = _co_sign_op(co_signer_url, op.to_rpc())
    assert "result" not in refused and refused["error"]["data"] == {"reason": "target"}, refused

    for entry_point in (ENTRY_POINT_V08, ENTRY_POINT):
        typed = v08_typed_data(op, entry_point, CHAIN_ID)
        op_hash = user_op_hash_v08(op.packed_fields(), entry_point, CHAIN_ID)
        assert TypedData(typed).digest == op_hash  # the message is the operation, as v0.8 hashes it
        answer = _post(
            co_signer_url, _rpc("keyscope_coSignTypedData", [ACCOUNT, "0x" + SESSION_ID.hex(), typed])
        )
        signature = _signature(answer)  # messages are co-signed: the policy's targets do not reach them
        for digest in (op_hash, user_op_hash_v07(op.packed_fields(), entry_point, CHAIN_ID)):
            as_operation = co_sign_digest(SESSION_ID, digest, chain_id=CHAIN_ID, module=MODULE)
            assert recover_hash(as_operation, signature) != CO_SIGNER.address


@pytest.mark.parametrize(
    "spelled",
    [
        {"nonce": 3},
        {"nonce": "0x03"},
        {"nonce": "0x0000000000000003"},
        {"callGasLimit": "0x186A0"},
        {"callGasLimit": "0X186a0"},
        {"maxFeePerGas": 10**9},
        {"sender": ACCOUNT.lower()},
        {"sender": "0x" + ACCOUNT[2:].upper()},
        {"callData": "0x" + encode_execute(Call.of(ALLOWED, 0, DATA)).hex().upper()},
        {"nonce": "3"},
        {"nonce": 3.0},
        {"nonce": True},
        {"nonce": "0x-3"},
        {"callGasLimit": " 0x186a0"},
    ],
    ids=lambda spelled: "{}={!r}".format(*next(iter(spelled.items()))),
)
def test_quantities_and_addresses_spelled_otherwise_are_signed_as_the_chain_reads_them(
    co_signer_url: str, spelled: dict[str, Any]
) -> None:
    """A covered operation with one field spelled otherwise than ``to_rpc`` spells it (an int, leading zeros,
    upper-case hex or ``0X``, the sender in lower or upper case; a decimal string, a float, a bool, a signed or
    padded hex): refused as malformed, or co-signed for the operation as the EntryPoint reads it (the canonical
    value packed), never for another value."""
    op = _op(encode_execute(Call.of(ALLOWED, 0, DATA)))
    body = op.to_rpc() | spelled
    answer = _co_sign_op(co_signer_url, body)
    if "result" not in answer:
        assert answer["error"]["data"] == {"reason": "params"}, answer
        return
    signature = _signature(answer)
    digest = co_sign_digest(
        SESSION_ID,
        user_op_hash_v07(op.packed_fields(), ENTRY_POINT, CHAIN_ID),
        chain_id=CHAIN_ID,
        module=MODULE,
    )
    assert recover_hash(digest, signature) == CO_SIGNER.address


# -- the sponsor ---------------------------------------------------------------------------------------------------


def _serve_sponsor(policy: SponsorshipPolicy) -> SponsorServer:
    sponsor = Sponsor(paymaster=PAYMASTER, signer=SPONSOR, chain_id=CHAIN_ID, policy=policy)
    return SponsorServer(sponsor)


def _sponsor_request(op: dict[str, Any] | str) -> bytes:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "pm_getPaymasterData",
        "params": ["OP", ENTRY_POINT, hex(CHAIN_ID)],
    }
    return json.dumps(body).replace('"OP"', op if isinstance(op, str) else json.dumps(op)).encode()


def _sponsored(op: UserOperation, result: dict[str, Any]) -> bool:
    """Whether the sponsor's fields in ``result`` sponsor ``op`` (their signature recovers to the sponsor)."""
    final = op.replace(
        paymaster=result["paymaster"],
        paymaster_verification_gas_limit=int(result["paymasterVerificationGasLimit"], 16),
        paymaster_post_op_gas_limit=int(result["paymasterPostOpGasLimit"], 16),
        paymaster_data=bytes.fromhex(result["paymasterData"][2:]),
    )
    data = decode_paymaster_data(final.paymaster_data)
    digest = sponsorship_hash(
        final, PAYMASTER, CHAIN_ID, valid_until=data.valid_until, valid_after=data.valid_after
    )
    return recover_hash(digest, data.signature) == SPONSOR.address


def test_a_sponsor_request_naming_calldata_twice_is_judged_as_it_is_signed() -> None:
    """A ``pm_getPaymasterData`` body naming callData twice (covered and uncovered, in either order) or as both
    ``callData`` and ``call_data``: nothing is signed. A key written twice is refused before anything is judged
    (attack 299: Python reads its last copy, a proxy before the sponsor may judge the first); a field in both
    spellings is malformed."""
    allowed = encode_execute(Call.of(ALLOWED, 0, DATA))
    forbidden = encode_execute(Call.of(FORBIDDEN, 0, DATA))
    op = _op(allowed)
    policy = SponsorshipPolicy(targets={ALLOWED: "any"})
    text = json.dumps(op.to_rpc())
    spelled = f'"callData": "0x{allowed.hex()}"'
    other = f'"callData": "0x{forbidden.hex()}"'
    bodies = {
        "forbidden last": text.replace(spelled, f"{spelled}, {other}"),
        "allowed last": text.replace(spelled, f"{other}, {spelled}"),
        "call_data forbidden": text.replace(spelled, f'{spelled}, "call_data": "0x{forbidden.hex()}"'),
        "call_data allowed": text.replace(spelled, f'{other}, "call_data": "0x{allowed.hex()}"'),
    }
    outcomes = {}
    with _serve_sponsor(policy) as server:
        for name, body in bodies.items():
            answer = _post(server.url, _sponsor_request(body))
            if "result" not in answer:
                assert answer["error"]["code"] in (-32003, -32602, -32700), (name, answer)
                outcomes[name] = "refused unread" if answer["error"]["code"] == -32700 else "refused"
                if name.endswith("last"):
                    assert "callData" in answer["error"]["message"], answer
                continue
            assert _sponsored(op, answer["result"]), (
                f"{name}: the sponsor signed another operation than the covered one"
            )
            assert not _sponsored(op.replace(call_data=forbidden), answer["result"]), (
                f"{name}: the sponsorship counts for the uncovered callData"
            )
            outcomes[name] = "signed"
    assert outcomes == {
        "forbidden last": "refused unread",
        "allowed last": "refused unread",
        "call_data forbidden": "refused",
        "call_data allowed": "refused",
    }


def test_one_account_spelled_several_ways_draws_one_budget() -> None:
    """The sender of a covered operation spelled checksummed, in lower case and in upper case, each asked for in
    turn: one account, one budget; the third request, past it, is refused."""
    op = _op(encode_execute(Call.of(ALLOWED, 0, DATA)))
    cost = required_prefund(op.replace(paymaster=PAYMASTER, paymaster_verification_gas_limit=60_000))
    policy = SponsorshipPolicy(targets={ALLOWED: "any"}, budget_wei=2 * cost)
    spellings = [ACCOUNT, ACCOUNT.lower(), "0x" + ACCOUNT[2:].upper()]
    answers = []
    with _serve_sponsor(policy) as server:
        for nonce, sender in enumerate(spellings):
            body = op.replace(nonce=nonce).to_rpc() | {"sender": sender}
            answers.append(_post(server.url, _sponsor_request(body)))
        assert server.sponsor.ledger.reserved(ACCOUNT) == 2 * cost
    assert ["result" in answer for answer in answers] == [True, True, False], answers
    assert answers[2]["error"]["code"] == -32005 and answers[2]["error"]["data"]["reason"] == "budget"


# -- connections left open -----------------------------------------------------------------------------------------


def _closed_within(url: str, sent: bytes, seconds: float) -> bool:
    """Whether the server closes a connection on which the client sent ``sent`` and then nothing, within
    ``seconds``."""
    host, port = url[len("http://") :].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=seconds) as sock:
        sock.sendall(sent)
        try:
            while sock.recv(4096):
                pass
        except TimeoutError:
            return False
        return True


def _service(kind: str) -> CoSignerServer | SponsorServer:
    """A co-signer or a sponsor server (not started), as ``kind`` says."""
    if kind == "cosigner":
        return CoSignerServer(
            CoSignerService(CO_SIGNER, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT)
        )
    return _serve_sponsor(SponsorshipPolicy(targets="any"))


@pytest.mark.parametrize("kind", ["cosigner", "sponsor"])
def test_a_connection_left_silent_is_closed(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client opening connections to the co-signer or the sponsor and sending nothing (or a request line, or
    headers and part of the body) held a request thread and a file descriptor each until it closed them: a few
    hundred such connections, well under a process's file descriptors, left the service accepting no other. Each
    server closes a connection silent for its request timeout (shortened here to 0.3 s)."""
    with _service(kind) as server:
        handler = server._server.RequestHandlerClass  # type: ignore[union-attr]
        assert isinstance(handler.timeout, float) and 0 < handler.timeout <= 60, handler.timeout
        monkeypatch.setattr(handler, "timeout", 0.3)
        partial_body = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"
        for sent in (b"", b"POST / HTTP/1.1\r\n", partial_body):
            assert _closed_within(server.url, sent, 5), f"{kind}: still open after sending {sent!r}"
        # the service still answers
        answer = _post(server.url, _rpc("nope", []))
        assert answer["error"]["code"] == -32601, answer


def _seconds_until_closed(url: str, head: bytes, trickle: bytes, gap: float, give_up: float) -> float | None:
    """Send ``head`` at once, then ``trickle`` one byte every ``gap`` seconds: how long after the connection opened
    the server closed it, or None when it was still open after ``give_up`` seconds."""
    host, port = url[len("http://") :].rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=give_up) as sock:
        sock.sendall(head)
        sock.settimeout(gap)
        for byte in trickle:
            if time.monotonic() - started > give_up:
                return None
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except ConnectionResetError:
                return time.monotonic() - started
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
    return None


@pytest.mark.parametrize("kind", ["cosigner", "sponsor"])
@pytest.mark.parametrize("where", ["request line", "headers", "body"])
def test_a_request_trickled_a_byte_at_a_time_is_cut_at_the_request_timeout(
    kind: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that sends its request a byte at a time, each byte well within the request timeout, held a
    request thread and a file descriptor for as long as it kept trickling (the timeout bounded each read of the
    socket, not the request): a few such clients per thread left the service answering no one. The whole request
    must arrive within the timeout (shortened here to 1 s); the connection is closed then, and the service
    answers the next client."""
    with _service(kind) as server:
        handler = server._server.RequestHandlerClass  # type: ignore[union-attr]
        monkeypatch.setattr(handler, "timeout", 1.0)
        line = b"POST / HTTP/1.1\r\n"
        host = server.url[len("http://") :].encode()
        headers = b"Host: " + host + b"\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
        head, trickle = {
            "request line": (b"", line * 100),
            "headers": (line, b"X-Padding: " + b"a" * 4000),
            "body": (line + headers, b"[" + b" " * 3998 + b"]"),
        }[where]
        closed = _seconds_until_closed(server.url, head, trickle, gap=0.1, give_up=6.0)
        assert closed is not None, (
            f"{kind}: a request trickled into its {where} still held the connection after 6 s"
        )
        assert 0.9 < closed < 3.0, f"{kind}: closed after {closed:.2f} s, not at the 1 s request timeout"
        answer = _post(server.url, _rpc("nope", []))
        assert answer["error"]["code"] == -32601, answer
