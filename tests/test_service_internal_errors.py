"""What a client of the sponsor or the co-signer learns when a request fails inside the service.

Attack 232: the sponsor and the co-signer answered a failure inside them (-32603) with the failure's own text. That
text names what the service depends on: the node behind the sponsor's ``chain_clock`` (a hosted node's URL, its
key in the path) or a remote signing service. URLs are masked where keyscope writes them, but no masking is sure to
catch every key (a short path key, a token in a path segment), and the client may be anyone who reaches the
service: it learned the operator's node key by asking while the node was down. The answer now says the kind of
failure and what to do; the text stays in the service's log, whole."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest

from keyscope.cosigner import CoSignerService, CoSignPolicy
from keyscope.cosigner.server import CoSignerServer
from keyscope.errors import TransportError
from keyscope.execution import Call, encode_execute
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorServer, SponsorshipPolicy
from keyscope.sponsor.service import chain_clock
from keyscope.userop import UserOperation

CHAIN_ID = 31337
ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
PAYMASTER = "0x" + "11" * 20
MODULE = "0x" + "12" * 20
TARGET = "0x" + "33" * 20
SESSION_ID = "0x" + "44" * 32
NODE_KEY = (
    "k3yQ9x"  # a short path key, as some hosted nodes give: not one a masking rule can tell from a path
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _operation(sender: str) -> UserOperation:
    return UserOperation(
        sender=sender,
        nonce=0,
        call_data=encode_execute(Call(TARGET, 0, bytes.fromhex("a9059cbb") + bytes(64))),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )


def _post(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=30)
    body = answer.json()
    assert isinstance(body, dict)
    return body


def test_a_sponsor_whose_node_is_down_does_not_tell_the_client_the_nodes_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = f"http://127.0.0.1:{_closed_port()}/v2/{NODE_KEY}"
    sponsor = Sponsor(
        paymaster=PAYMASTER,
        signer=LocalSigner.generate(),
        chain_id=CHAIN_ID,
        policy=SponsorshipPolicy(targets="any"),
        clock=chain_clock(node),
    )
    op = _operation(LocalSigner.generate().address)
    with pytest.raises(TransportError) as failure:  # the premise: the failure's own text carries the key
        sponsor.data(op)
    assert NODE_KEY in str(failure.value), failure.value

    params = [op.to_rpc(), ENTRY_POINT, hex(CHAIN_ID), {}]
    with caplog.at_level(logging.ERROR), SponsorServer(sponsor) as server:
        body = _post(server.url, "pm_getPaymasterData", params)
    error = body["error"]
    assert error["code"] == -32603, body
    assert NODE_KEY not in str(body) and "127.0.0.1" not in str(body), body
    assert error["message"] == (
        "internal error in pm_getPaymasterData: a service it depends on (the node, or the signing service) did not "
        "answer; nothing was signed: ask again"
    )
    assert any(NODE_KEY in record.getMessage() + str(record.exc_info) for record in caplog.records), (
        "log kept it"
    )
    assert sponsor.ledger.reserved_total() == 0


class _VaultSigner:
    """A co-signer key held by a signing service the operator runs (a KMS or a vault): its failures carry what
    it was called with."""

    def __init__(self, failure: Exception) -> None:
        self.address = LocalSigner.generate().address
        self._failure = failure

    def sign_hash(self, digest: bytes) -> bytes:
        raise self._failure

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        raise self._failure


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (
            TransportError(f"the vault at https://vault.internal/v1/{NODE_KEY}/sign did not answer"),
            "internal error in keyscope_coSignUserOperation: a service it depends on (the node, or the signing "
            "service) did not answer; nothing was signed: ask again",
        ),
        (
            PermissionError(f"token {NODE_KEY} may not sign with key transit/co-signer"),
            "internal error in keyscope_coSignUserOperation: PermissionError (the service's log has the details)",
        ),
    ],
)
def test_a_co_signer_whose_signing_service_fails_tells_the_client_the_kind_of_failure_only(
    failure: Exception, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = CoSignerService(
        _VaultSigner(failure),
        chain_id=CHAIN_ID,
        module=MODULE,
        entry_point=ENTRY_POINT,
        policy=CoSignPolicy(targets=frozenset({TARGET})),
    )
    account = LocalSigner.generate().address
    params = [account, SESSION_ID, _operation(account).to_rpc()]
    with caplog.at_level(logging.ERROR), CoSignerServer(service) as server:
        body = _post(server.url, "keyscope_coSignUserOperation", params)
    assert body["error"] == {"code": -32603, "message": said}, body
    assert NODE_KEY not in str(body), body
    assert any(NODE_KEY in str(record.exc_info) for record in caplog.records), (
        "the log keeps the failure whole"
    )
