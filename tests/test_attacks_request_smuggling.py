"""A request carrying ``Transfer-Encoding: chunked`` to the sponsor service, the co-signer (and the consent server,
on the same ``http_service`` plumbing).

The handlers read a body by ``Content-Length`` alone (``http_service.content_length``: 0 when absent) and never look at
``Transfer-Encoding``. A chunked body is then not read as the body: its bytes stay on the connection and are parsed
as the *next request*. RFC 9112 (6.1, 6.3) says a server must read a chunked body by its chunks, and one that gets
both ``Transfer-Encoding`` and ``Content-Length`` must take the chunks or refuse the request and close the
connection, since the disagreement is how request smuggling works. The docs put a service reachable by others
behind a proxy that bounds each client (attacks 187, 256, the budget's residual risk); a proxy that frames the
request by its chunks (as RFC 9112 has it) and forwards both headers hands these servers a request whose chunk data
holds a second, complete request of the client's making, which the server then runs as if it came on its own,
past whatever the proxy checks per request. Without a proxy, one request already draws two answers (a desync).

Each server must refuse a request with ``Transfer-Encoding`` (it has no reader for one: ``501``/``400``/``411``)
and close the connection, running nothing that follows on it."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorServer, SponsorshipPolicy
from support.userops import plain_op

CHAIN_ID = 31337
ACCOUNT = to_address("0x" + "ab12cd34ef" * 4)
ALLOWED = "0x" + "33" * 20
PAYMASTER = "0x" + "77" * 20
DATA = bytes.fromhex("a9059cbb") + bytes(64)


def _exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on one connection and return everything the server answers until it closes it (or 3 s pass)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(raw)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer


def _answers(answer: bytes) -> int:
    """How many answers ``answer`` holds: each framed by its ``Content-Length``; bytes past them (an answer of
    Python's HTTP/0.9 form, a bare HTML error page with no status line) count as one more."""
    count = 0
    while answer:
        head, separator, rest = answer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or not separator:
            return count + 1
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = rest[length:]
        count += 1
    return count


def _smuggling(port: int, inner_body: bytes) -> bytes:
    """A POST whose chunked body (one chunk) is a whole second POST carrying ``inner_body``; ``Content-Length``
    covers the chunk's size line only (a TE.CL request, as a proxy reading the chunks would forward it)."""
    inner = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(inner_body)}\r\n\r\n"
    ).encode() + inner_body
    size_line = f"{len(inner):x}\r\n".encode()
    chunked = size_line + inner + b"\r\n0\r\n\r\n"
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(size_line)}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    return head + chunked


def _rpc(method: str, params: list[Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 99, "method": method, "params": params}).encode()


def test_a_request_smuggled_in_a_chunked_body_reserves_no_sponsorship_budget() -> None:
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    policy = SponsorshipPolicy(accounts="any", targets={ALLOWED: "any"}, total_budget_wei=10**18)
    sponsor = Sponsor(paymaster=PAYMASTER, signer=LocalSigner.generate(), chain_id=CHAIN_ID, policy=policy)
    with SponsorServer(sponsor) as server:
        inner = _rpc("pm_getPaymasterData", [op.to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)])
        answer = _exchange(server.port, _smuggling(server.port, inner))
        reserved = sponsor.ledger.reserved_total()
    responses = _answers(answer)
    assert reserved == 0 and responses == 1, (
        f"one request with Transfer-Encoding: chunked drew {responses} answers, and the request smuggled in its "
        f"chunk was run: {reserved} wei reserved\n{answer.decode(errors='replace')[:1500]}"
    )
    assert b"paymasterData" not in answer


def _co_signer() -> CoSignerService:
    """A co-signer that signs calls to ALLOWED only."""
    return CoSignerService(
        LocalSigner.generate(),
        chain_id=CHAIN_ID,
        module="0x" + "11" * 20,
        entry_point=ENTRY_POINT_V07,
        policy=CoSignPolicy(targets=frozenset({ALLOWED})),
    )


def _co_sign_request() -> bytes:
    """A co-signing request the co-signer would sign, to smuggle past its framing."""
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    return _rpc("keyscope_coSignUserOperation", [ACCOUNT, "0x" + "44" * 32, op.to_rpc()])


def test_a_request_smuggled_in_a_chunked_body_is_not_co_signed() -> None:
    with CoSignerServer(_co_signer()) as server:
        inner = _co_sign_request()
        answer = _exchange(server.port, _smuggling(server.port, inner))
    responses = _answers(answer)
    assert b'"signature"' not in answer and responses == 1, (
        f"one request with Transfer-Encoding: chunked drew {responses} answers, the smuggled one co-signed\n"
        f"{answer.decode(errors='replace')[:1500]}"
    )


@pytest.mark.parametrize("kind", ["sponsor", "cosigner"])
def test_a_chunked_request_alone_draws_one_answer(kind: str) -> None:
    """Without a proxy: a plain chunked request (no Content-Length) gets one answer, not a parse error for its
    empty body followed by a 400 for its chunk-size line read as a request line."""
    if kind == "sponsor":
        policy = SponsorshipPolicy(targets="any")
        server: Any = SponsorServer(
            Sponsor(paymaster=PAYMASTER, signer=LocalSigner.generate(), chain_id=CHAIN_ID, policy=policy)
        )
    else:
        server = CoSignerServer(
            CoSignerService(
                LocalSigner.generate(),
                chain_id=CHAIN_ID,
                module="0x" + "11" * 20,
                entry_point=ENTRY_POINT_V07,
            )
        )
    with server:
        body = _rpc("nothing_here", [])
        raw = (
            (
                f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
        )
        answer = _exchange(server.port, raw)
    assert _answers(answer) == 1, answer.decode(errors="replace")


def _two_lengths(port: int, outer_body: bytes, inner_body: bytes) -> bytes:
    """A POST with two ``Content-Length`` headers (a CL.CL request): the first covers ``outer_body``, the second
    ``outer_body`` and a whole second POST carrying ``inner_body`` after it, as a proxy framing by the last of them
    forwards it in one piece."""
    inner = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(inner_body)}\r\n\r\n"
    ).encode() + inner_body
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(outer_body)}\r\nContent-Length: {len(outer_body) + len(inner)}\r\n\r\n"
    ).encode()
    return head + outer_body + inner


def test_a_request_smuggled_behind_a_second_content_length_reserves_no_sponsorship_budget() -> None:
    """Attack 282: two ``Content-Length`` headers of different values. RFC 9112 (6.3) makes such framing invalid, an
    unrecoverable error; the servers read the body by the first header (``headers.get``), so the bytes the second
    one covers stayed on the connection and ran as the next request: a proxy that frames by the last header (or
    forwards both) passed the sponsor a ``pm_getPaymasterData`` of the client's making inside a harmless request's
    body, past whatever it checks per request, and without a proxy one request drew two answers. Such a request is
    refused (400) and its connection closed, nothing after its head read or run."""
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    policy = SponsorshipPolicy(accounts="any", targets={ALLOWED: "any"}, total_budget_wei=10**18)
    sponsor = Sponsor(paymaster=PAYMASTER, signer=LocalSigner.generate(), chain_id=CHAIN_ID, policy=policy)
    with SponsorServer(sponsor) as server:
        outer = _rpc("pm_getPaymasterStubData", [op.to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)])
        inner = _rpc("pm_getPaymasterData", [op.to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)])
        answer = _exchange(server.port, _two_lengths(server.port, outer, inner))
        reserved = sponsor.ledger.reserved_total()
    responses = _answers(answer)
    assert reserved == 0 and responses == 1, (
        f"one request with two Content-Length headers drew {responses} answers, and the request behind the first "
        f"one's body was run: {reserved} wei reserved\n{answer.decode(errors='replace')[:1500]}"
    )
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length" in answer, answer[:400]
    assert b"paymasterData" not in answer


def test_a_request_smuggled_behind_a_second_content_length_is_not_co_signed() -> None:
    with CoSignerServer(_co_signer()) as server:
        outer = _rpc("nothing_here", [])
        inner = _co_sign_request()
        answer = _exchange(server.port, _two_lengths(server.port, outer, inner))
    responses = _answers(answer)
    assert b'"signature"' not in answer and responses == 1, (
        f"one request with two Content-Length headers drew {responses} answers, the smuggled one co-signed\n"
        f"{answer.decode(errors='replace')[:1500]}"
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:400]


def _spaced_length(port: int, inner_body: bytes, spelled: str) -> bytes:
    """A POST whose last header is ``spelled`` (a ``Content-Length`` with whitespace before its colon, or a
    ``Transfer-Encoding`` so written) covering a whole second POST carrying ``inner_body``, as a proxy that takes the
    header leniently frames and forwards it."""
    inner = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(inner_body)}\r\n\r\n"
    ).encode() + inner_body
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        + spelled.format(length=len(inner))
        + "\r\n\r\n"
    ).encode()
    return head + inner


SPACED_HEADERS = ["Content-Length : {length}", "Content-Length\t: {length}", "Transfer-Encoding : chunked"]


@pytest.mark.parametrize("spelled", SPACED_HEADERS)
def test_a_request_smuggled_behind_a_header_spaced_before_its_colon_reserves_no_sponsorship_budget(
    spelled: str,
) -> None:
    """Attack 283: ``Content-Length : N`` (whitespace between the field name and its colon, which RFC 9112 (5.1) says
    a server must refuse with 400). Python's header parser takes such a line for the end of the headers (a
    ``MissingHeaderBodySeparatorDefect``), so the servers saw no ``Content-Length`` at all, read an empty body, and
    ran the bytes the header covers as the next request: behind a proxy that takes the header leniently, a
    ``pm_getPaymasterData`` of the client's making, past whatever the proxy checks per request (and
    ``Transfer-Encoding : chunked`` likewise got past attack 263's check). A request whose headers Python's parser
    finds malformed is refused (400) and its connection closed."""
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    policy = SponsorshipPolicy(accounts="any", targets={ALLOWED: "any"}, total_budget_wei=10**18)
    sponsor = Sponsor(paymaster=PAYMASTER, signer=LocalSigner.generate(), chain_id=CHAIN_ID, policy=policy)
    with SponsorServer(sponsor) as server:
        inner = _rpc("pm_getPaymasterData", [op.to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)])
        answer = _exchange(server.port, _spaced_length(server.port, inner, spelled))
        reserved = sponsor.ledger.reserved_total()
    responses = _answers(answer)
    assert reserved == 0 and responses == 1, (
        f"one request with {spelled!r} drew {responses} answers, and the request its body holds was run: "
        f"{reserved} wei reserved\n{answer.decode(errors='replace')[:1500]}"
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:400]
    assert b"paymasterData" not in answer


def test_a_request_smuggled_behind_a_header_spaced_before_its_colon_is_not_co_signed() -> None:
    with CoSignerServer(_co_signer()) as server:
        inner = _co_sign_request()
        answer = _exchange(server.port, _spaced_length(server.port, inner, SPACED_HEADERS[0]))
    responses = _answers(answer)
    assert b'"signature"' not in answer and responses == 1, (
        f"one request with a spaced Content-Length drew {responses} answers, the smuggled one co-signed\n"
        f"{answer.decode(errors='replace')[:1500]}"
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:400]


def test_a_content_length_behind_a_bare_cr_is_not_read() -> None:
    """Attack 284: ``X-Pad: a<CR>Content-Length: N`` (a carriage return alone inside a header line). RFC 9112 (2.2)
    has a recipient refuse a bare CR or read it as a space, so a proxy sees one header ``X-Pad`` and a request without
    a body, and takes the bytes after the head for the next request on its connection to the server (another
    client's, on a pooled connection); Python's header parser splits the line at the CR and read ``Content-Length:
    N``, so the servers took those N bytes as this request's body and ran it: here a ``pm_getPaymasterData``, signed
    and its maximum cost reserved, which the proxy never saw as a request. A request whose head holds a bare CR is
    refused (400) and its connection closed."""
    op = plain_op(ACCOUNT, encode_execute(Call.of(ALLOWED, 0, DATA)))
    policy = SponsorshipPolicy(accounts="any", targets={ALLOWED: "any"}, total_budget_wei=10**18)
    sponsor = Sponsor(paymaster=PAYMASTER, signer=LocalSigner.generate(), chain_id=CHAIN_ID, policy=policy)
    with SponsorServer(sponsor) as server:
        body = _rpc("pm_getPaymasterData", [op.to_rpc(), ENTRY_POINT_V07, hex(CHAIN_ID)])
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            f"X-Pad: a\rContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        answer = _exchange(server.port, head + body)
        reserved = sponsor.ledger.reserved_total()
    assert reserved == 0 and b"paymasterData" not in answer, (
        f"a Content-Length behind a bare CR was read: {reserved} wei reserved\n"
        f"{answer.decode(errors='replace')[:1500]}"
    )
    assert answer.startswith(b"HTTP/1.1 400") and _answers(answer) == 1, answer[:400]
