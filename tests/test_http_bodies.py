"""Request bodies the servers refuse before reading them.

Attack 91: a request body declared with a negative (or otherwise non-decimal) ``Content-Length``.

``int("-1")`` passes every server's ``length > MAX_BODY`` test, and ``rfile.read(-1)`` then reads until the
client closes the connection: a client can stream any amount past the size limit into the server's memory,
and holds a request thread for as long as it likes. Each server must answer 400 at once, without reading."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from keyscope.consent import ConsentServer
from keyscope.cosigner.server import CoSignerServer
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorServer, SponsorshipPolicy

SPONSOR = "0x" + "11" * 20


@contextmanager
def _sponsor_server(_net: Any) -> Iterator[str]:
    sponsor = Sponsor(
        paymaster=SPONSOR,
        signer=LocalSigner.generate(),
        chain_id=1,
        policy=SponsorshipPolicy(targets="any"),
    )
    with SponsorServer(sponsor) as server:
        yield server.url


@contextmanager
def _cosigner_server(_net: Any) -> Iterator[str]:
    # the handler refuses before it reaches the service, so none is needed
    with CoSignerServer(object()) as server:  # type: ignore[arg-type]
        yield server.url


@contextmanager
def _consent_server(net: Any) -> Iterator[str]:
    with ConsentServer(net) as server:
        yield f"http://127.0.0.1:{server.port}/requests/00/approve"


SERVERS = {"sponsor": _sponsor_server, "cosigner": _cosigner_server, "consent": _consent_server}


def _exchange(url: str, length: str, body: bytes) -> bytes:
    """Send a POST with ``Content-Length: length`` and the start of ``body`` (keeping the connection open, as
    a client streaming more would), and return what the server answers before it closes the connection (or 5 s pass)."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    assert host is not None and port is not None
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            (
                f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            ).encode()
            + body
        )
        answer = b""
        try:
            while chunk := sock.recv(4096):  # the server closes the connection after refusing
                answer += chunk
        except TimeoutError:
            pass
        return answer or b"(no answer: the server is still reading the body)"


@pytest.mark.parametrize("length", ["-1", "-99999999", "1e3", "0x10", " +5", "١٢", "\x0c5", "5\x0b", "5\x1f"])
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_body_of_undeclared_size_is_refused_without_reading(kind, length, net):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": []}' + b" " * 65_536
    with SERVERS[kind](net) as url:
        answer = _exchange(url, length, body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"Content-Length must be a decimal number of bytes" in answer
    assert b"\r\nConnection: close\r\n" in answer  # the body is left unread: the client must not send another


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_body_framed_by_two_content_lengths_is_refused_without_reading(kind, net):
    """Attack 282 on each server: two ``Content-Length`` headers (different values, or the same twice) make the
    framing invalid (RFC 9112 6.3); read by the first, the bytes the second covers would run as the next request."""
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": []}'
    with SERVERS[kind](net) as url:
        for second in (len(body) + 40, len(body)):
            answer = _exchange(url, f"{len(body)}\r\nContent-Length: {second}", body + b" " * 40)
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert b"Content-Length must be a decimal number of bytes, given once" in answer
            assert b"\r\nConnection: close\r\n" in answer


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_header_spaced_before_its_colon_is_refused_without_reading(kind, net):
    """Attack 283 on each server: ``Content-Length : N`` ends Python's header parsing, so the length was never seen
    and the body ran as the next request; RFC 9112 (5.1) has a server refuse it, 400."""
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": []}'
    with SERVERS[kind](net) as url:
        answer = _exchange(url, f"{len(body)}\r\nContent-Length : {len(body)}", body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"malformed header" in answer and b"\r\nConnection: close\r\n" in answer, answer[:400]
    assert answer.count(b"HTTP/1.") == 1, answer.decode(errors="replace")


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_declared_size_over_the_limit_is_refused_without_reading(kind, net):
    with SERVERS[kind](net) as url:
        answer = _exchange(url, str(1 << 30), b"{")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"\r\nConnection: close\r\n" in answer


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_chunked_body_is_refused_and_its_chunks_never_run_as_a_request(kind, net):
    """Attack 263 on every server: the chunk's bytes hold a whole second request; it is refused with 501 and the
    connection closed, so nothing after the head is read as a request."""
    with SERVERS[kind](net) as url:
        parts = urlsplit(url)
        inner = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        ).encode()
        size_line = f"{len(inner):x}\r\n".encode()
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(
                (
                    f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(size_line)}\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                ).encode()
                + size_line
                + inner
                + b"\r\n0\r\n\r\n"
            )
            answer = b""
            try:
                while chunk := sock.recv(4096):
                    answer += chunk
            except TimeoutError:
                pass
    assert answer.startswith(b"HTTP/1.1 501 "), answer[:300]
    assert b"Transfer-Encoding is not supported" in answer
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.count(b"HTTP/1.") == 1, answer.decode(
        errors="replace"
    )  # one answer: the inner request never ran


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_get_s_body_never_runs_as_a_request(kind, net):
    """Attack 263 through a GET: no handler reads a GET's body, so one declared with ``Content-Length`` (here a
    whole POST) closes the connection after the GET's answer instead of being parsed as the next request."""
    with SERVERS[kind](net) as url:
        parts = urlsplit(url)
        host = f"{parts.hostname}:{parts.port}"
        inner = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        ).encode()
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(
                f"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(inner)}\r\n\r\n".encode() + inner
            )
            answer = b""
            try:
                while chunk := sock.recv(4096):
                    answer += chunk
            except TimeoutError:
                pass
    assert answer.startswith(b"HTTP/1."), answer[:300]
    assert answer.count(b"HTTP/1.") == 1, answer.decode(errors="replace")  # the POST in its body never ran


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]
)
def test_the_consent_server_takes_no_cross_site_form_and_grants_no_preflight(net, content_type):
    """docs/browser.md: the owner's pages take JSON bodies only, so a form on another site cannot post to them
    without a CORS preflight, which the server never grants. A browser sends the three form encodings without a
    preflight: each is refused; a preflight (OPTIONS) gets no Access-Control-Allow-* header."""
    with ConsentServer(net) as server:
        url = f"http://127.0.0.1:{server.port}/api/consent/{'a' * 24}/decline"
        with httpx.Client() as client:
            posted = client.post(
                url, content=b"x=1", headers={"Content-Type": content_type, "Origin": "https://evil.example"}
            )
            preflight = client.options(
                url,
                headers={
                    "Origin": "https://evil.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            )
    assert posted.status_code == 415, posted.text
    # the form's body is left unread, so the connection closes and says so: the preflight goes on a new one (it
    # failed now and then on the closing one, "Server disconnected without sending a response")
    assert posted.headers["Connection"] == "close"
    assert not any(name.lower().startswith("access-control-allow") for name in posted.headers)
    assert preflight.status_code >= 400
    assert not any(name.lower().startswith("access-control-allow") for name in preflight.headers)


def _deep(depth: int) -> bytes:
    """A JSON array nested ``depth`` deep: valid JSON, far past what Python's recursive decoder descends."""
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_body_nested_past_the_decoder_s_depth_is_refused_as_bad_json(kind, net, capfd):
    """Attack 167: 30,000 nested arrays, 60 kB (under every server's size limit). ``json.loads`` raises
    RecursionError, which is no ValueError: the sponsor's and the co-signer's handlers let it out of ``do_POST``, so
    the HTTP server printed a raw traceback on stderr and dropped the connection without an answer (the consent
    server answered 500 and logged the traceback as its own fault). Each must refuse it as the bad JSON it is, and
    answer the next request."""
    capfd.readouterr()
    limit = sys.getrecursionlimit()
    # a served process runs at Python's default limit (1000); the test process may have raised it. 2000 leaves the
    # test's own deep stack room, and the servers' request threads start shallow
    sys.setrecursionlimit(2000)
    try:
        _nested_exchange(kind, net)
    finally:
        sys.setrecursionlimit(limit)
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err and "RecursionError" not in printed.err, printed.err[-2000:]


def _nested_exchange(kind: str, net: Any) -> None:
    with SERVERS[kind](net) as url, httpx.Client(timeout=10) as client:
        answer = client.post(url, content=_deep(30_000), headers={"Content-Type": "application/json"})
        if kind == "consent":
            assert answer.status_code == 400, answer.text
            assert "not JSON" in answer.json()["error"]
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["error"]["code"] == -32700, answer.text
            assert "nested" in answer.json()["error"]["message"]
        # and the server still answers: a request of ordinary depth gets its ordinary refusal
        again = client.post(url, content=_deep(3), headers={"Content-Type": "application/json"})
        assert again.status_code in (200, 400)


def _post_with_host(url: str, host_header: str) -> httpx.Response:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "pm_getPaymasterStubData", "params": []}'
    return httpx.post(
        url, content=body, headers={"Host": host_header, "Content-Type": "application/json"}, timeout=5
    )


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_request_naming_another_host_is_refused_as_dns_rebinding(kind, net):
    """A web page of another site whose name was made to resolve to 127.0.0.1 after it loaded (DNS rebinding) reaches
    a server listening there, as its own origin, so it may read the answers: a co-signature, a sponsorship, a
    grant. Its requests name that site in ``Host``; every server refuses them (421) before reading the body, and
    answers requests naming its own address (127.0.0.1, localhost)."""
    with SERVERS[kind](net) as url:
        port = urlsplit(url).port
        for foreign in (f"rebound.example:{port}", f"127.0.0.1.rebound.example:{port}", "127.0.0.1", ""):
            refused = _post_with_host(url, foreign)
            assert refused.status_code == 421, (foreign, refused.status_code, refused.text)
            assert "Host" in refused.text
        for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            assert _post_with_host(url, own).status_code != 421, own


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_only_a_server_bound_to_loopback_checks_the_host(host, loopback):
    """A server bound to another address is reached through its operator's names (a proxy, a DNS name): it takes
    any Host, and the operator's network guards it."""
    from keyscope.http_service import _is_loopback

    assert _is_loopback(host) is loopback


UNREADABLE_BODIES = {
    "not UTF-8": b'{"address": "\xc3("}',
    "a byte order mark of UTF-16": b"\xff\xfe{",
    "a number past Python's digit limit": b'{"address": ' + b"1" * 5_000 + b"}",
    # attack 286: JSON that json.loads takes from bytes in any of UTF-8, -16 and -32, which a proxy reads as UTF-8
    "UTF-16": '{"jsonrpc": "2.0", "id": 1, "method": "x", "params": []}'.encode("utf-16-le"),
    "UTF-32": '{"jsonrpc": "2.0", "id": 1, "method": "x", "params": []}'.encode("utf-32-be"),
}


@pytest.mark.parametrize("body", sorted(UNREADABLE_BODIES))
@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_body_that_is_not_readable_json_is_refused_as_bad_json(kind, body, net, caplog):
    """Attack 229: a body that is not UTF-8, or JSON holding an integer of more than 4,300 digits (Python refuses to
    convert it, to keep its conversion from taking quadratic time). ``json.loads`` raises ValueError then, no
    JSONDecodeError: the consent server caught only the latter, so it answered 500 "internal error" and logged a
    traceback as its own fault for each such post. Every server refuses it as the bad JSON it is, and logs nothing
    as an error."""
    with SERVERS[kind](net) as url, httpx.Client(timeout=10) as client:
        if kind == "consent":
            url = url.rsplit("/", 3)[0] + f"/api/consent/{'a' * 24}/connect"
        answer = client.post(
            url, content=UNREADABLE_BODIES[body], headers={"Content-Type": "application/json"}
        )
    if kind == "consent":
        assert answer.status_code == 400, answer.text
        assert answer.json() == {"error": "the request body is not JSON"}
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json()["error"]["code"] == -32700, answer.text
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


def _rpc(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_number_past_python_s_digit_limit_is_refused_naming_the_parameter(net, caplog):
    """Attack 229: ``chainId`` written as a decimal of 5,000 digits. ``to_int`` let Python's ValueError (advising
    ``sys.set_int_max_str_digits()``) out of the sponsor's parameter check, which took only BadInputError: the
    sponsor answered -32603 "internal error" and logged a traceback. It is refused as the bad parameter it is (the
    text is not echoed back), and so is such a number anywhere a number is read."""
    from keyscope.artifacts import ENTRY_POINT_V07
    from keyscope.errors import BadInputError
    from keyscope.hexutil import to_int, to_wire_int

    digits = "1" * 5_000
    op = {"sender": "0x" + "22" * 20, "nonce": "0x0", "callData": "0x"}
    with _sponsor_server(net) as url:
        refused = _rpc(url, "pm_getPaymasterStubData", [op, ENTRY_POINT_V07, digits])
    error = refused["error"]
    assert error["code"] == -32602, error
    assert "chainId" in error["message"] and "5000 decimal digits" in error["message"], error
    assert digits not in error["message"] and "set_int_max_str_digits" not in error["message"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    for read in (to_int, to_wire_int):
        with pytest.raises(BadInputError, match="the allowance has 5000 decimal digits"):
            read(digits, name="the allowance")


def test_a_hex_quantity_past_python_s_digit_limit_is_refused_naming_the_parameter(net, caplog):
    """Attack 281: attack 229's number written as a 0x-hex quantity of 5,000 digits. Python converts hex of any
    length (its digit limit is for decimal), so ``to_int`` took it; the sponsor then named the chain id it refuses
    in decimal, which Python refuses to write past 4,300 digits: the ValueError (advising
    ``sys.set_int_max_str_digits()``) left the parameter check, the sponsor answered -32603 "internal error" and
    logged a traceback for each such request. In an operation's field the same ValueError came out of the field's
    own range check as the refusal's text. Each is refused as the bad parameter it is, naming it and its number of
    digits, and nothing is logged as the service's fault."""
    from keyscope.artifacts import ENTRY_POINT_V07
    from keyscope.errors import BadInputError
    from keyscope.hexutil import to_int

    quantity = "0x" + "f" * 5_000
    op = {"sender": "0x" + "22" * 20, "nonce": "0x0", "callData": "0x"}
    with _sponsor_server(net) as url:
        chain_refused = _rpc(url, "pm_getPaymasterStubData", [op, ENTRY_POINT_V07, quantity])
        nonce_refused = _rpc(url, "pm_getPaymasterData", [{**op, "nonce": quantity}, ENTRY_POINT_V07, "0x1"])
    for refused, name in ((chain_refused, "chainId"), (nonce_refused, "nonce")):
        error = refused["error"]
        assert error["code"] == -32602, error
        assert name in error["message"] and "5000 hex digits" in error["message"], error
        assert "set_int_max_str_digits" not in error["message"], error
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    with pytest.raises(BadInputError, match="the allowance has 5000 hex digits"):
        to_int(quantity, name="the allowance")
    # a number past 256 bits but short of the limit is still read, for its reader to say what range it has
    assert to_int("0x1" + "0" * 64) == 2**256


def test_a_sponsorship_request_in_utf_16_is_not_run(caplog):
    """Attack 286: ``json.loads`` reads bytes in UTF-8, UTF-16 or UTF-32, whichever they look like, so the JSON-RPC
    services ran a request written in UTF-16 (here a ``pm_getPaymasterData``: signed, its maximum cost reserved).
    RFC 8259 (8.1) has JSON between systems in UTF-8, and a proxy before a shared service (the docs' authentication
    and rate limits, attacks 187, 256) reads it so: in UTF-16 it finds no method and no sender to judge or count,
    and a rule matching ``pm_getPaymasterData`` in the body never matches. A body that is not UTF-8 is refused as
    not JSON (-32700), nothing run."""
    from keyscope.artifacts import ENTRY_POINT_V07
    from keyscope.execution import Call, encode_execute
    from support.userops import plain_op

    target = "0x" + "33" * 20
    policy = SponsorshipPolicy(targets={target: "any"}, total_budget_wei=10**18)
    sponsor = Sponsor(paymaster=SPONSOR, signer=LocalSigner.generate(), chain_id=1, policy=policy)
    op = plain_op("0x" + "ab" * 20, encode_execute(Call.of(target, 0, b"")))
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "pm_getPaymasterData",
        "params": [op.to_rpc(), ENTRY_POINT_V07, "0x1"],
    }
    with SponsorServer(sponsor) as server, httpx.Client(timeout=10) as client:
        for encoding in ("utf-16-le", "utf-16", "utf-32-be"):
            answer = client.post(
                server.url,
                content=json.dumps(request).encode(encoding),
                headers={"Content-Type": "application/json"},
            )
            assert answer.json()["error"]["code"] == -32700, (encoding, answer.text)
        assert sponsor.ledger.reserved_total() == 0
        # the same request in UTF-8 is run
        answer = client.post(server.url, json=request)
        assert "paymasterData" in answer.json()["result"], answer.text


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_a_body_naming_a_key_twice_is_refused_naming_the_key(kind, net):
    """Attack 299 on each server: JSON writing one key twice in an object is read by its last copy here and by its
    first in other readers (a proxy judging the request before the service), so it is refused unread, naming the
    key, at any depth."""
    bodies = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "x", "method": "y", "params": []}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": [{"sender": "0x1", "sender": "0x2"}]}',
    )
    with SERVERS[kind](net) as url, httpx.Client(timeout=10) as client:
        for body, key in zip(bodies, ("'method'", "'sender'"), strict=True):
            answer = client.post(url, content=body, headers={"Content-Type": "application/json"})
            said = answer.json()["error"]
            message = said if isinstance(said, str) else said["message"]
            assert f"holds {key} twice" in message, (kind, answer.text)
            if kind != "consent":
                assert said["code"] == -32700, answer.text
            else:
                assert answer.status_code == 400
