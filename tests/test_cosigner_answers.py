"""What the SDK makes of a co-signer service's answer (attack 156): a broken or lying service (a result that is no
``{"signature": "0x…"}``, garbage, an error object of its own shape) is a keyscope error naming the service and
what it answered, never a raw TypeError or KeyError out of ``session.execute``."""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.co_signer import CoSignerRefusedError, CoSignRequest
from keyscope.cosigner import remote_co_signer
from keyscope.errors import KeyscopeError, TransportError
from keyscope.execution import Call, encode_execute
from support.userops import plain_op
from test_bundler_client import ScriptedServer, fail, ok, raw

METHOD = "keyscope_coSignUserOperation"
ACCOUNT = "0x" + "22" * 20


def _request() -> CoSignRequest:
    op = plain_op(ACCOUNT, encode_execute(Call.of("0x" + "33" * 20, 0, b"")), nonce=1)
    return CoSignRequest(
        kind="operation",
        account=ACCOUNT,
        session_id=bytes(32),
        digest=bytes(32),
        chain_id=31337,
        module="0x" + "11" * 20,
        call_data=op.call_data,
        operation=op,
    )


def _refusal_of(answer: Any, expected: type[KeyscopeError]) -> tuple[KeyscopeError, str]:
    """What ``remote_co_signer`` raises when a real server on 127.0.0.1 answers ``answer``, and that server's URL."""
    server = ScriptedServer().on(METHOD, answer)
    try:
        with pytest.raises(expected) as info:
            remote_co_signer(server.url, timeout=5)(_request())
    finally:
        server.stop()
    return info.value, server.url


@pytest.mark.parametrize(
    "answer",
    [
        ok("0x" + "ab" * 65),  # the signature bare, not in an object
        ok(None),
        ok({}),
        ok([]),
        ok({"signature": None}),
        ok({"signature": 7}),
        ok({"signature": "0x" + "ab" * 64}),  # 64 bytes
        ok({"signature": "not hex"}),
        raw("<html>502 Bad Gateway</html>", status=502, content_type="text/html"),
        raw('{"jsonrpc": "2.0", "id": 1}'),
    ],
    ids=["bare", "null", "empty", "list", "null-signature", "int", "short", "not-hex", "html", "no-result"],
)
def test_a_co_signer_answering_junk_is_a_keyscope_error(answer: Any) -> None:
    error, url = _refusal_of(answer, KeyscopeError)
    assert isinstance(error, (TransportError, CoSignerRefusedError)) or "co-signature" in str(error)
    assert url in str(error) or "co-signature" in str(error), str(error)


@pytest.mark.parametrize(
    "error",
    [fail(-32003, "no", data="a string, not an object"), fail(None, "no code"), fail(-32003, "x", data=[1])],
    ids=["string-data", "no-code", "list-data"],
)
def test_a_refusal_of_any_shape_is_a_co_signer_refusal(error: Any) -> None:
    refusal, url = _refusal_of(error, CoSignerRefusedError)
    assert url in str(refusal)
