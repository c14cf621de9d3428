"""JSON-RPC batches, and the values an answer echoes, at the sponsor and the co-signer (their real servers on
127.0.0.1, hand-written bodies).

Every request of a batch gets an answer of its own, an invalid one included (JSON-RPC 2.0). Without a bound on a
batch's size, a body of ``[1,1,1,…]`` (two bytes a request) drew an error object of 130 bytes for each, 65
times the request, up to the body limit; and a batch of valid requests made the service sign (and reserve budget) for
each in one HTTP request. A batch over :data:`~keyscope.http_service.MAX_BATCH` requests is refused as a whole, with
one invalid-request error, and none of its requests is run.

An answer echoes the request's ``id`` and names an unknown method: each comes back no longer than it was sent.

A notification (a request object without an ``id`` member) gets no answer, alone or in a batch (JSON-RPC 2.0), and
is not run: every method of these services exists for its answer, so a notification could only make the sponsor
reserve budget, and either service sign, for no one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.hexutil import to_address
from keyscope.http_service import MAX_BATCH
from keyscope.sponsor import Sponsor, SponsorServer, SponsorshipPolicy
from keyscope.sponsor.server import MAX_BODY
from support.signatures import CountingSigner
from support.userops import plain_op

CHAIN_ID = 31337
ENTRY_POINT = ENTRY_POINT_V07
MODULE = "0x" + "11" * 20
ACCOUNT = to_address("0x" + "ab12cd34ef" * 4)
TARGET = "0x" + "33" * 20
PAYMASTER = "0x" + "77" * 20
SESSION_ID = "0x" + "44" * 32
CALL_DATA = encode_execute(Call.of(TARGET, 0, bytes.fromhex("a9059cbb") + bytes(64)))
KINDS = ["sponsor", "cosigner"]


class Served:
    """A running service: its URL, its key, the JSON-RPC request that makes it sign, and (the sponsor) its ledger."""

    def __init__(self, url: str, signer: CountingSigner, sponsor: Sponsor | None) -> None:
        self.url = url
        self.signer = signer
        self.sponsor = sponsor

    def signing_request(self, request_id: int) -> dict[str, Any]:
        """A request the service answers with a signature, for an operation of its own nonce (``request_id``)."""
        op = plain_op(ACCOUNT, CALL_DATA, nonce=request_id).to_rpc()
        if self.sponsor is not None:
            method, params = "pm_getPaymasterData", [op, ENTRY_POINT, hex(CHAIN_ID)]
        else:
            method, params = "keyscope_coSignUserOperation", [ACCOUNT, SESSION_ID, op]
        return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


@contextmanager
def _served(kind: str, ledger: Path) -> Iterator[Served]:
    signer = CountingSigner()
    if kind == "sponsor":
        policy = SponsorshipPolicy(accounts={ACCOUNT}, targets={TARGET: "any"})
        sponsor = Sponsor(paymaster=PAYMASTER, signer=signer, chain_id=CHAIN_ID, policy=policy, ledger=ledger)
        try:
            with SponsorServer(sponsor) as server:
                yield Served(server.url, signer, sponsor)
        finally:
            sponsor.close()
        return
    policy_ = CoSignPolicy(accounts=frozenset({ACCOUNT}), targets=frozenset({TARGET}))
    service = CoSignerService(
        signer, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=policy_
    )
    with CoSignerServer(service) as server:
        yield Served(server.url, signer, None)


def _post(url: str, body: bytes) -> httpx.Response:
    answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer


def _batch(requests: list[dict[str, Any]]) -> bytes:
    return json.dumps(requests).encode()


def _ledger_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM reservations").fetchone()[0])


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_over_the_limit_is_refused_whole_and_runs_none_of_its_requests(
    kind: str, tmp_path: Path
) -> None:
    """A batch of MAX_BATCH + 1 requests, each of which the service would sign: one invalid-request error object (no
    array) naming the limit and what to do; nothing is signed, and the sponsor's ledger holds no reservation."""
    ledger = tmp_path / "ledger.sqlite"
    with _served(kind, ledger) as served:
        answer = _post(served.url, _batch([served.signing_request(i) for i in range(MAX_BATCH + 1)])).json()
        assert served.signer.signed == 0
        if served.sponsor is not None:
            assert served.sponsor.ledger.reserved_total() == 0
    assert isinstance(answer, dict), answer
    assert answer["id"] is None and answer["error"]["code"] == -32600, answer
    message = answer["error"]["message"]
    assert (
        f"batch of {MAX_BATCH + 1} requests" in message
        and f"at most {MAX_BATCH} requests per batch" in message
    )
    assert answer["error"]["data"] == {"reason": "batch", "limit": MAX_BATCH, "requests": MAX_BATCH + 1}
    if kind == "sponsor":
        assert _ledger_rows(ledger) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_at_the_limit_is_answered_request_by_request(kind: str, tmp_path: Path) -> None:
    """A batch of exactly MAX_BATCH requests: each is answered, by its id, with a signature; the sponsor reserves
    each operation's cost."""
    ledger = tmp_path / "ledger.sqlite"
    with _served(kind, ledger) as served:
        answers = _post(served.url, _batch([served.signing_request(i) for i in range(MAX_BATCH)])).json()
        assert served.signer.signed == MAX_BATCH
        if served.sponsor is not None:
            final = plain_op(ACCOUNT, CALL_DATA).replace(
                paymaster=PAYMASTER, paymaster_verification_gas_limit=60_000
            )
            assert served.sponsor.ledger.reserved(ACCOUNT) == MAX_BATCH * required_prefund(final)
    assert [answer["id"] for answer in answers] == list(range(MAX_BATCH))
    assert all("result" in answer for answer in answers), [a for a in answers if "result" not in a][:1]
    if kind == "sponsor":
        assert _ledger_rows(ledger) == MAX_BATCH


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_of_tiny_invalid_requests_draws_a_bounded_answer(kind: str, tmp_path: Path) -> None:
    """``[1,1,1,…]`` as large as the body limit takes is refused in one error object of a few hundred bytes (it was
    65 times the body: some 68 MB); the same at the limit draws MAX_BATCH short errors, each answered."""
    count = (MAX_BODY - 2) // 2
    with _served(kind, tmp_path / "ledger.sqlite") as served:
        flood = _post(served.url, b"[" + b",".join([b"1"] * count) + b"]")
        assert len(flood.content) < 512, len(flood.content)
        assert flood.json()["error"]["data"]["requests"] == count

        at_limit = _post(served.url, b"[" + b",".join([b"1"] * MAX_BATCH) + b"]")
        answers = at_limit.json()
        assert len(answers) == MAX_BATCH and all(a["error"]["code"] == -32600 for a in answers)
        assert len(at_limit.content) <= MAX_BATCH * 128, len(at_limit.content)


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_batch_is_one_invalid_request(kind: str, tmp_path: Path) -> None:
    """``[]`` is answered with one invalid-request error object, as JSON-RPC 2.0 says (not an empty array)."""
    with _served(kind, tmp_path / "ledger.sqlite") as served:
        answer = _post(served.url, b"[]").json()
    assert isinstance(answer, dict) and answer["id"] is None, answer
    assert answer["error"]["code"] == -32600 and "empty batch" in answer["error"]["message"], answer


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_inside_a_batch_is_an_invalid_request_and_is_not_run(kind: str, tmp_path: Path) -> None:
    """``[[request], request]``: the inner array is one invalid request (a batch holds request objects), answered
    as such, and its request is not run; the outer request is."""
    with _served(kind, tmp_path / "ledger.sqlite") as served:
        body = _batch([[served.signing_request(1)], served.signing_request(2)])  # type: ignore[list-item]
        answers = _post(served.url, body).json()
        assert served.signer.signed == 1
    assert len(answers) == 2, answers
    assert answers[0]["id"] is None and answers[0]["error"]["code"] == -32600, answers
    assert answers[1]["id"] == 2 and "result" in answers[1], answers


# -- what an answer echoes -----------------------------------------------------------------------------------------


def _raw(request: dict[str, Any]) -> bytes:
    """``request`` as compact JSON with its text unescaped (a DEL character is one byte, as JSON allows; a lone
    surrogate, which UTF-8 cannot carry, is its escape)."""
    return json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


@pytest.mark.parametrize("kind", KINDS)
def test_an_echoed_id_comes_back_no_longer_than_it_was_sent(kind: str, tmp_path: Path) -> None:
    """An id of 100,000 DEL characters (one byte each in the body) came back as ``\\u007f`` escapes, six times the
    request; an id with characters past ASCII comes back as it was sent, and a lone surrogate as its escape."""
    with _served(kind, tmp_path / "ledger.sqlite") as served:
        for request_id in ("\x7f" * 100_000, "é€😀" * 10_000, "\ud800 \udfff", 10**1000):
            body = _raw({"jsonrpc": "2.0", "id": request_id, "method": "nope", "params": []})
            answer = _post(served.url, body)
            assert len(answer.content) <= len(body) + 256, (len(answer.content), len(body))
            assert answer.json()["id"] == request_id


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "request_id", [1e15, 1.5, [0] * 1000, {"a": 1}, True], ids=["1E15", "1.5", "array", "object", "true"]
)
def test_an_id_that_is_no_string_whole_number_or_null_is_an_invalid_request(
    kind: str, request_id: Any, tmp_path: Path
) -> None:
    """An id spelled ``1E15`` came back as ``1000000000000000.0``, an array id with a space after each comma: an id
    must be a string, a whole number or null (JSON-RPC 2.0), or the request is answered as invalid, with id null,
    and not run."""
    with _served(kind, tmp_path / "ledger.sqlite") as served:
        request = served.signing_request(1) | {"id": request_id}
        body = json.dumps(request, separators=(",", ":")).replace("1000000000000000.0", "1E15").encode()
        answer = _post(served.url, body)
        assert served.signer.signed == 0
    assert len(answer.content) < 512, len(answer.content)
    error = answer.json()
    assert error["id"] is None and error["error"]["code"] == -32600, error
    assert "id must be a string, a whole number or null" in error["error"]["message"], error


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_method_s_name_is_cut_in_the_answer(kind: str, tmp_path: Path) -> None:
    """A method named with 100,000 DEL characters came back in full, each as ``\\\\x7f``: five times the request. The
    answer names it cut short, and stays a few hundred bytes."""
    with _served(kind, tmp_path / "ledger.sqlite") as served:
        body = _raw({"jsonrpc": "2.0", "id": 1, "method": "\x7f" * 100_000, "params": []})
        answer = _post(served.url, body)
    assert len(answer.content) < 1024, len(answer.content)
    error = answer.json()["error"]
    assert error["code"] == -32601 and "\\x7f" in error["message"], error


# -- notifications -------------------------------------------------------------------------------------------------


def _notification(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` without its ``id`` member: a notification (``"id": null`` would still be a request)."""
    return {name: value for name, value in request.items() if name != "id"}


def _assert_no_answer(response: httpx.Response) -> None:
    """204 No Content: no body (not even an empty array), no type and no length."""
    assert response.status_code == 204, (response.status_code, response.text[:300])
    assert response.content == b""
    assert "content-type" not in response.headers and "content-length" not in response.headers, (
        response.headers
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_signing_notification_gets_no_answer_and_is_not_run(kind: str, tmp_path: Path) -> None:
    """A signing request sent without an id (a notification) was answered by the co-signer with its co-signature,
    and run by the sponsor, which reserved the operation's maximum cost from the account's budget for good for a
    signature nobody received. It is answered 204 No Content and not run: nothing signed, nothing reserved. The
    same connection then carries requests that are answered: one whose id is null (a request, not a notification)
    and one with an id."""
    ledger = tmp_path / "ledger.sqlite"
    headers = {"Content-Type": "application/json"}
    with _served(kind, ledger) as served, httpx.Client(timeout=60) as http:
        silent = http.post(
            served.url, content=_raw(_notification(served.signing_request(1))), headers=headers
        )
        _assert_no_answer(silent)
        assert served.signer.signed == 0
        if served.sponsor is not None:
            assert served.sponsor.ledger.reserved_total() == 0

        for request_id in (None, 3):
            request = served.signing_request(2 if request_id is None else request_id) | {"id": request_id}
            answered = http.post(served.url, content=_raw(request), headers=headers)
            assert answered.status_code == 200, answered.text
            assert answered.json()["id"] == request_id and "result" in answered.json(), answered.json()
        assert served.signer.signed == 2
    if kind == "sponsor":
        assert _ledger_rows(ledger) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_s_notifications_are_left_out_of_its_answer_and_not_run(kind: str, tmp_path: Path) -> None:
    """In a batch, a notification's answer is left out of the array and the notification is not run; a request with
    ``"id": null`` is answered and run, and an invalid request object without an id (``method`` not a text) is
    answered as invalid, with id null, as JSON-RPC 2.0 answers every invalid request."""
    ledger = tmp_path / "ledger.sqlite"
    with _served(kind, ledger) as served:
        batch = [
            _notification(served.signing_request(1)),
            served.signing_request(2),
            served.signing_request(3) | {"id": None},
            {"jsonrpc": "2.0", "method": 1, "params": "bar"},
            {"jsonrpc": "2.0", "method": "nope", "params": []},
            _notification(served.signing_request(4)),
        ]
        answers = _post(served.url, _batch(batch)).json()
        assert served.signer.signed == 2
        if served.sponsor is not None:
            assert served.sponsor.ledger.reserved_total() > 0
    assert [answer["id"] for answer in answers] == [2, None, None], answers
    assert "result" in answers[0] and "result" in answers[1], answers
    assert answers[2]["error"]["code"] == -32600, answers
    if kind == "sponsor":
        assert _ledger_rows(ledger) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_of_notifications_only_gets_no_answer_at_all(kind: str, tmp_path: Path) -> None:
    """A batch of MAX_BATCH notifications (signing ones, and one of a method the service does not serve) gets no
    answer at all: 204 No Content, not an empty array (JSON-RPC 2.0); nothing is signed or reserved."""
    ledger = tmp_path / "ledger.sqlite"
    with _served(kind, ledger) as served:
        batch = [_notification(served.signing_request(i)) for i in range(MAX_BATCH - 1)]
        batch.append({"jsonrpc": "2.0", "method": "nope", "params": "not a list"})
        silent = httpx.post(
            served.url, content=_batch(batch), headers={"Content-Type": "application/json"}, timeout=60
        )
        _assert_no_answer(silent)
        assert served.signer.signed == 0
        if served.sponsor is not None:
            assert served.sponsor.ledger.reserved_total() == 0
    if kind == "sponsor":
        assert _ledger_rows(ledger) == 0
