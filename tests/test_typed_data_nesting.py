"""Typed data nested past what its hashing can descend (attack 230).

EIP-712 lets a struct hold an array of its own type (a thread of replies), so valid typed data may nest as deep as
its sender likes: 800 levels are 20 kB, under every size limit, and shallower than the JSON decoder's own limit
(attack 154). Its hash is computed by recursion, three Python frames a level, so such data made the co-signer's
``keyscope_coSignTypedData`` raise RecursionError, which no refusal caught: an "internal error" answer and a traceback
of thousands of lines in the service's log for each request. The SDK's own reading of typed data (a session's
``sign_typed_data``, its local check) let the same RecursionError out. A message nested more than ``MAX_NESTING``
levels is refused as bad input before anything descends into it."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import httpx
import pytest

from keyscope.cosigner import CoSignerService, CoSignPolicy
from keyscope.cosigner.server import CoSignerServer
from keyscope.errors import BadInputError
from keyscope.signing import LocalSigner
from keyscope.typed_data import MAX_NESTING, TypedData

CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
ACCOUNT = "0x" + "22" * 20
SESSION_ID = "0x" + "44" * 32


def thread_of_replies(levels: int) -> dict[str, Any]:
    """Typed data whose message is a ``Post`` with ``levels`` - 1 replies nested one in another: valid EIP-712
    (the innermost post has no replies), its message ``levels`` objects deep, ``2 * levels - 1`` with the lists."""
    message: dict[str, Any] = {"text": "last", "replies": []}
    for _ in range(levels - 1):
        message = {"text": "re", "replies": [message]}
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Post": [{"name": "text", "type": "string"}, {"name": "replies", "type": "Post[]"}],
        },
        "primaryType": "Post",
        "domain": {"name": "Forum", "chainId": CHAIN_ID},
        "message": message,
    }


def _co_sign(url: str, typed: dict[str, Any]) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "keyscope_coSignTypedData",
        "params": [ACCOUNT, SESSION_ID, typed],
    }
    content = json.dumps(body, separators=(",", ":")).encode()
    answer = httpx.post(url, content=content, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    return reply


def test_the_co_signer_refuses_typed_data_nested_past_its_limit_and_signs_data_within_it(caplog):
    service = CoSignerService(
        LocalSigner.generate(),
        chain_id=CHAIN_ID,
        module=MODULE,
        entry_point=ENTRY_POINT,
        policy=CoSignPolicy(accounts=frozenset({ACCOUNT})),
    )
    caplog.set_level(logging.INFO)
    limit = sys.getrecursionlimit()
    # a served process runs at Python's default limit (1000); the test process may have raised it. 2000 leaves the
    # test's own stack room, and lets the server's JSON decoder read the 1,600 levels of the request's objects and
    # lists (800 posts), which the hashing's three frames a post then exceed
    sys.setrecursionlimit(2000)
    try:
        with CoSignerServer(service) as server:
            refused = _co_sign(server.url, thread_of_replies(800))
            # the deepest a message may nest: its objects and lists together (a post and its replies' list a level)
            within = _co_sign(server.url, thread_of_replies((MAX_NESTING + 1) // 2))
    finally:
        sys.setrecursionlimit(limit)
    error = refused["error"]
    assert error["code"] == -32602, error
    assert error["data"] == {"reason": "params"}, error
    assert f"nested more than {MAX_NESTING} levels deep" in error["message"], error
    assert "Recursion" not in error["message"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    assert within["result"]["signature"].startswith("0x"), within


@pytest.mark.parametrize("levels", [200, 400, 5_000])
def test_typed_data_nested_past_the_limit_is_refused_naming_where(levels):
    with pytest.raises(
        BadInputError, match=f"the typed data's message is nested more than {MAX_NESTING} levels"
    ):
        TypedData(thread_of_replies(levels))


def test_typed_data_at_the_limit_is_read_and_hashed():
    typed = TypedData(thread_of_replies((MAX_NESTING + 1) // 2))
    assert len(typed.digest) == 32
    assert typed.digest != TypedData(thread_of_replies((MAX_NESTING + 1) // 2 - 1)).digest
