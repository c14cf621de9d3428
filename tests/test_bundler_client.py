"""BundlerClient and PendingUserOperation against a real local HTTP server serving scripted JSON-RPC answers.

The answers take the shapes Alto and ERC-7769 give (receipts with the transaction receipt nested under
``receipt``, quantities as hex strings, ``{slow, standard, fast}`` gas prices, Alto's rejection messages),
and the faults a client meets (HTML error pages, truncated JSON, JSON that is not JSON-RPC, slow answers,
a closed port). The server is a real ``http.server`` on 127.0.0.1, started by the tests.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.accounts import create_account_data
from keyscope.bundler import (
    Bundler,
    BundlerClient,
    FeeQuote,
    GasEstimate,
    PendingUserOperation,
    UserOperationReceipt,
    submit,
    wait_many,
)
from keyscope.bundler.client import (
    ETH_ESTIMATE_USER_OPERATION_GAS,
    ETH_GET_USER_OPERATION_RECEIPT,
    ETH_SEND_USER_OPERATION,
    PIMLICO_GET_USER_OPERATION_GAS_PRICE,
    parse_gas_estimate,
    parse_user_operation_receipt,
)
from keyscope.chain import RpcChain
from keyscope.errors import (
    ENDPOINT_TEXT_SHOWN,
    BadInputError,
    BundlerRejectedError,
    ConfigurationError,
    KeyscopeError,
    PaymasterError,
    SimulationRevertedError,
    TransportError,
    UnsupportedEntryPointError,
    UserOperationFailedError,
    UserOperationTimeoutError,
)
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.rpc import JsonRpcError
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation

ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
OTHER_ENTRY_POINT = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"  # v0.6
SENDER = to_address("0x1de4a4a0b5c7a0f2b1e7e56dc3a6bc0a9b6ef1a2")
BUNDLER_EOA = to_address("0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc")
USER_OP_HASH = keccak(b"a user operation")
TX_HASH = keccak(b"a bundle transaction")
BLOCK_HASH = keccak(b"a block")

# --------------------------------------------------------------------------------------------------
# The scripted JSON-RPC server
# --------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One HTTP answer."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0


Script = Callable[[dict[str, Any]], Reply]


def ok(value: Any) -> Script:
    """A JSON-RPC result, echoing the request id."""
    return lambda request: Reply(
        json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": value}).encode()
    )


def fail(code: int | None, message: str, data: Any = None, status: int = 200) -> Script:
    """A JSON-RPC error object; ``code`` None leaves it out, as Alto does for some internal errors."""

    def reply(request: dict[str, Any]) -> Reply:
        error: dict[str, Any] = {"message": message}
        if code is not None:
            error["code"] = code
        if data is not None:
            error["data"] = data
        return Reply(json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": error}).encode(), status)

    return reply


def raw(body: str, status: int = 200, content_type: str = "application/json") -> Script:
    """Any bytes at all."""
    return lambda request: Reply(body.encode(), status, content_type)


def slow(seconds: float, script: Script) -> Script:
    """``script``'s answer, after ``seconds``."""

    def reply(request: dict[str, Any]) -> Reply:
        answer = script(request)
        answer.delay = seconds
        return answer

    return reply


def sequence(*scripts: Script) -> Script:
    """One script per request, in order; the last one repeats."""
    queue = list(scripts)
    lock = threading.Lock()

    def reply(request: dict[str, Any]) -> Reply:
        with lock:
            script = queue.pop(0) if len(queue) > 1 else queue[0]
        return script(request)

    return reply


def method_not_found(request: dict[str, Any]) -> Reply:
    """What Alto answers for a method it does not know (code -32601, from its request validation)."""
    message = f'Validation error: Invalid discriminator value at "method" for {request.get("method")!r}'
    return fail(-32601, message)(request)


@dataclass
class Received:
    at: float
    method: str
    params: list[Any]


@dataclass
class ScriptedServer:
    """An HTTP JSON-RPC server on 127.0.0.1 answering each method from its script."""

    scripts: dict[str, Script] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                method = request.get("method", "")
                server.received.append(Received(time.monotonic(), method, request.get("params", [])))
                reply = server.scripts.get(method, method_not_found)(request)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._http.block_on_close = False
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def on(self, method: str, script: Script) -> ScriptedServer:
        self.scripts[method] = script
        return self

    def calls(self, method: str) -> list[list[Any]]:
        return [r.params for r in self.received if r.method == method]

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@contextmanager
def scripted_bundler() -> Iterator[ScriptedServer]:
    """A scripted server answering as a bundler of chain 31337 serving ``ENTRY_POINT`` (script the rest), stopped
    at the end."""
    scripted = ScriptedServer()
    scripted.on("eth_chainId", ok("0x7a69")).on("eth_supportedEntryPoints", ok([ENTRY_POINT.lower()]))
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_bundler() as scripted:
        yield scripted


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[BundlerClient]:
    with BundlerClient(server.url, timeout=2.0) as bundler:
        yield bundler


class Pauses:
    """What ``keyscope.bundler.pending`` sees as its ``time`` module: the real clock, and real pauses that are
    also recorded, so that a test reads the polling schedule itself rather than infer it from wall-clock gaps
    (which a loaded machine stretches)."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    monotonic = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> None:
        self.taken.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the waits of ``keyscope.bundler.pending`` take, in order."""
    recorder = Pauses()
    monkeypatch.setattr("keyscope.bundler.pending.time", recorder)
    return recorder.taken


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------------------------------
# Answers in the shapes real bundlers give
# --------------------------------------------------------------------------------------------------


def alto_receipt(
    *, success: bool = True, reason: bytes | None = None, paymaster: str | None = None
) -> dict[str, Any]:
    """``eth_getUserOperationReceipt`` as Alto answers it (ERC-7769 shape)."""
    log = {
        "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "topics": ["0x" + keccak(b"Transfer(address,address,uint256)").hex()],
        "data": "0x",
        "blockNumber": "0x1a",
        "transactionHash": "0x" + TX_HASH.hex(),
        "transactionIndex": "0x0",
        "blockHash": "0x" + BLOCK_HASH.hex(),
        "logIndex": "0x1",
        "removed": False,
    }
    result: dict[str, Any] = {
        "userOpHash": "0x" + USER_OP_HASH.hex(),
        "entryPoint": ENTRY_POINT,
        "sender": SENDER,
        "nonce": "0x1e240000000000000000000000000000000000000000000005",
        "actualGasCost": "0x1c6bf52634000",
        "actualGasUsed": "0x2a3f1",
        "success": success,
        "logs": [log],
        "receipt": {
            "transactionHash": "0x" + TX_HASH.hex(),
            "transactionIndex": "0x0",
            "blockHash": "0x" + BLOCK_HASH.hex(),
            "blockNumber": "0x1a",
            "from": BUNDLER_EOA,
            "to": ENTRY_POINT,
            "cumulativeGasUsed": "0x31e1a",
            "gasUsed": "0x31e1a",
            "contractAddress": None,
            "logs": [log],
            "logsBloom": "0x" + "00" * 256,
            "status": "0x1",
            "effectiveGasPrice": "0xb2d05e00",
        },
    }
    if paymaster is not None:
        result["paymaster"] = paymaster
    if reason is not None:
        result["reason"] = "0x" + reason.hex()
    return result


ALTO_ESTIMATE = {
    "preVerificationGas": "0xcf08",
    "verificationGasLimit": "0x1a0f4",
    "callGasLimit": "0x9f6c",
    "paymasterVerificationGasLimit": "0x0",
    "paymasterPostOpGasLimit": "0x0",
}

ALTO_GAS_PRICE = {
    "slow": {"maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x3b9aca00"},
    "standard": {"maxFeePerGas": "0x41cdb400", "maxPriorityFeePerGas": "0x41cdb400"},
    "fast": {"maxFeePerGas": "0x47868c00", "maxPriorityFeePerGas": "0x47868c00"},
}


def error_string(message: str) -> bytes:
    """Revert data of ``Error(string)``."""
    return keccak(b"Error(string)")[:4] + abi_encode(["string"], [message])


def rule_violated(call_index: int, permission: int, rule: int, value: bytes) -> bytes:
    """Revert data of the session module's ``RuleViolated(uint256,uint256,uint256,bytes32)``."""
    selector = keccak(b"RuleViolated(uint256,uint256,uint256,bytes32)")[:4]
    return selector + abi_encode(
        ["uint256", "uint256", "uint256", "bytes32"], [call_index, permission, rule, value]
    )


def user_op(**changes: Any) -> UserOperation:
    op = UserOperation(
        sender=SENDER,
        nonce=0x1E240000000000000000000000000000000000000000000005,  # the receipts above name it
        call_data=b"\xb6\x1d\x27\xf6" + bytes(96),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=2 * 10**9,
        max_priority_fee_per_gas=10**9,
        signature=b"\x01" * 65,
    )
    return op.replace(**changes) if changes else op


# --------------------------------------------------------------------------------------------------
# The Bundler interface on valid answers
# --------------------------------------------------------------------------------------------------


def test_client_implements_the_bundler_protocol(client: BundlerClient) -> None:
    assert isinstance(client, Bundler)


def test_chain_id_and_entry_points_are_parsed_and_cached(
    server: ScriptedServer, client: BundlerClient
) -> None:
    assert client.chain_id() == 31337
    assert client.chain_id() == 31337
    assert client.supported_entry_points() == [ENTRY_POINT]
    assert client.supported_entry_points() == [ENTRY_POINT]
    assert len(server.calls("eth_chainId")) == 1
    assert len(server.calls("eth_supportedEntryPoints")) == 1


def test_estimate_sends_the_rpc_form_and_parses_alto_estimate(
    server: ScriptedServer, client: BundlerClient
) -> None:
    server.on(ETH_ESTIMATE_USER_OPERATION_GAS, ok(ALTO_ESTIMATE))
    op = user_op()
    estimate = client.estimate_user_operation_gas(op, ENTRY_POINT.lower())
    assert estimate == GasEstimate(
        pre_verification_gas=0xCF08,
        verification_gas_limit=0x1A0F4,
        call_gas_limit=0x9F6C,
        paymaster_verification_gas_limit=0,
        paymaster_post_op_gas_limit=0,
    )
    assert server.calls(ETH_ESTIMATE_USER_OPERATION_GAS) == [[op.to_rpc(), ENTRY_POINT]]


def test_estimate_accepts_numbers_and_missing_paymaster_limits(
    server: ScriptedServer, client: BundlerClient
) -> None:
    server.on(
        ETH_ESTIMATE_USER_OPERATION_GAS,
        ok({"preVerificationGas": 53000, "verificationGasLimit": "106740", "callGasLimit": "0x9f6c"}),
    )
    estimate = client.estimate_user_operation_gas(user_op(), ENTRY_POINT)
    assert (estimate.pre_verification_gas, estimate.verification_gas_limit, estimate.call_gas_limit) == (
        53000,
        106740,
        0x9F6C,
    )
    assert estimate.paymaster_verification_gas_limit is None


def test_send_returns_the_user_op_hash(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(ETH_SEND_USER_OPERATION, ok("0x" + USER_OP_HASH.hex()))
    op = user_op()
    assert client.send_user_operation(op, ENTRY_POINT) == USER_OP_HASH
    assert server.calls(ETH_SEND_USER_OPERATION) == [[op.to_rpc(), ENTRY_POINT]]


def test_receipt_in_alto_shape_lifts_the_transaction_fields(
    server: ScriptedServer, client: BundlerClient
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(alto_receipt()))
    receipt = client.get_user_operation_receipt(USER_OP_HASH)
    assert receipt is not None
    assert receipt.user_op_hash == USER_OP_HASH
    assert receipt.entry_point == ENTRY_POINT
    assert receipt.sender == SENDER
    assert receipt.nonce == 0x1E240000000000000000000000000000000000000000000005
    assert receipt.paymaster is None
    assert receipt.actual_gas_cost == 0x1C6BF52634000
    assert receipt.actual_gas_used == 0x2A3F1
    assert receipt.success is True
    assert receipt.reason == b""
    assert receipt.transaction_hash == TX_HASH
    assert receipt.block_number == 0x1A
    assert receipt.logs[0]["logIndex"] == "0x1"
    assert server.calls(ETH_GET_USER_OPERATION_RECEIPT) == [["0x" + USER_OP_HASH.hex()]]


def test_receipt_zero_paymaster_reads_as_none_and_a_real_one_is_kept(
    server: ScriptedServer, client: BundlerClient
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(alto_receipt(paymaster="0x" + "00" * 20)))
    receipt = client.get_user_operation_receipt(USER_OP_HASH)
    assert receipt is not None and receipt.paymaster is None
    paymaster = to_address("0x" + "ab" * 20)
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(alto_receipt(paymaster=paymaster.lower())))
    receipt = client.get_user_operation_receipt(USER_OP_HASH)
    assert receipt is not None and receipt.paymaster == paymaster


def test_receipt_null_means_not_included(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(None))
    assert client.get_user_operation_receipt(USER_OP_HASH) is None


def test_receipt_query_refuses_a_hash_of_the_wrong_length(client: BundlerClient) -> None:
    with pytest.raises(BadInputError, match="32 bytes"):
        client.get_user_operation_receipt(USER_OP_HASH[:31])


def test_get_user_operation_by_hash(server: ScriptedServer, client: BundlerClient) -> None:
    op = user_op()
    found = {
        "userOperation": op.to_rpc(),
        "entryPoint": ENTRY_POINT.lower(),
        "transactionHash": "0x" + TX_HASH.hex(),
        "blockHash": "0x" + BLOCK_HASH.hex(),
        "blockNumber": "0x1a",
    }
    server.on("eth_getUserOperationByHash", sequence(ok(found), ok(None)))
    result = client.get_user_operation_by_hash(USER_OP_HASH)
    assert result is not None
    assert result["entryPoint"] == ENTRY_POINT
    assert UserOperation.from_rpc(result["userOperation"]) == op
    assert client.get_user_operation_by_hash(USER_OP_HASH) is None


# --------------------------------------------------------------------------------------------------
# Fees
# --------------------------------------------------------------------------------------------------


def test_fee_quote_uses_the_bundlers_fast_tier(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(PIMLICO_GET_USER_OPERATION_GAS_PRICE, ok(ALTO_GAS_PRICE))
    assert client.fee_quote() == FeeQuote(max_fee_per_gas=0x47868C00, max_priority_fee_per_gas=0x47868C00)


def test_fee_quote_tier_is_a_parameter(server: ScriptedServer) -> None:
    server.on(PIMLICO_GET_USER_OPERATION_GAS_PRICE, ok(ALTO_GAS_PRICE))
    with BundlerClient(server.url, fee_tier="slow") as slow_client:
        assert slow_client.fee_quote() == FeeQuote(max_fee_per_gas=10**9, max_priority_fee_per_gas=10**9)
    with pytest.raises(BadInputError, match="fee_tier"):
        BundlerClient(server.url, fee_tier="urgent")  # type: ignore[arg-type]


def test_fee_quote_falls_back_to_the_node_and_remembers(server: ScriptedServer) -> None:
    node = ScriptedServer()
    try:
        node.on("eth_maxPriorityFeePerGas", ok("0x3b9aca00"))
        node.on(
            "eth_getBlockByNumber", ok({"number": "0x10", "timestamp": "0x6b0862a3", "baseFeePerGas": "0x7"})
        )
        with BundlerClient(server.url, node=node.url) as bundler:
            expected = FeeQuote(max_fee_per_gas=2 * 7 + 10**9, max_priority_fee_per_gas=10**9)
            assert bundler.fee_quote() == expected
            assert bundler.fee_quote() == expected
        assert len(server.calls(PIMLICO_GET_USER_OPERATION_GAS_PRICE)) == 1
        assert len(node.calls("eth_maxPriorityFeePerGas")) == 2
    finally:
        node.stop()


@pytest.mark.parametrize(
    "missing",
    [
        fail(-32000, "the method pimlico_getUserOperationGasPrice does not exist/is not available"),
        fail(-32603, "Method not supported: pimlico_getUserOperationGasPrice"),
        fail(-32602, "unsupported method pimlico_getUserOperationGasPrice"),
    ],
    ids=["geth-style", "alto-restricted", "other"],
)
def test_fee_quote_recognises_other_method_missing_answers(server: ScriptedServer, missing: Script) -> None:
    server.on(PIMLICO_GET_USER_OPERATION_GAS_PRICE, missing)
    with BundlerClient(server.url) as bundler, pytest.raises(ConfigurationError, match="pass node="):
        bundler.fee_quote()


def test_fee_quote_without_the_method_or_a_node_says_to_pass_a_node(client: BundlerClient) -> None:
    with pytest.raises(ConfigurationError, match=r"pass node=") as info:
        client.fee_quote()
    assert PIMLICO_GET_USER_OPERATION_GAS_PRICE in str(info.value)


def test_fee_quote_other_errors_are_not_taken_for_a_missing_method(server: ScriptedServer) -> None:
    server.on(PIMLICO_GET_USER_OPERATION_GAS_PRICE, fail(-32603, "gas price oracle unavailable"))
    node = RpcChain(closed_port_url())
    with BundlerClient(server.url, node=node) as bundler, pytest.raises(BundlerRejectedError) as info:
        bundler.fee_quote()
    assert info.value.code == -32603
    assert info.value.method == PIMLICO_GET_USER_OPERATION_GAS_PRICE


def test_fee_quote_with_a_malformed_tier_is_a_transport_error(
    server: ScriptedServer, client: BundlerClient
) -> None:
    server.on(PIMLICO_GET_USER_OPERATION_GAS_PRICE, ok({"slow": ALTO_GAS_PRICE["slow"]}))
    with pytest.raises(TransportError, match="no 'fast' tier") as info:
        client.fee_quote()
    assert info.value.method == PIMLICO_GET_USER_OPERATION_GAS_PRICE


# --------------------------------------------------------------------------------------------------
# Transport faults
# --------------------------------------------------------------------------------------------------

HTML_500 = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (raw(HTML_500, 500, "text/html"), r"HTTP 500 and a body that is not JSON: '<html>"),
        (raw('{"jsonrpc": "2.0", "id": 1, "result": {"userOpHash": "0x12'), "not JSON"),
        (raw('{"status": "ok", "value": 3}'), "JSON that is not a JSON-RPC response"),
        (raw("[1, 2, 3]"), "JSON that is not a JSON-RPC response"),
    ],
    ids=["http-500-html", "truncated-json", "json-not-json-rpc", "json-array"],
)
def test_garbage_answers_are_transport_errors(
    server: ScriptedServer, client: BundlerClient, script: Script, expected: str
) -> None:
    server.on(ETH_SEND_USER_OPERATION, script)
    with pytest.raises(TransportError, match=expected) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    assert info.value.url == server.url
    assert info.value.method == ETH_SEND_USER_OPERATION
    assert isinstance(info.value, ConnectionError)


def test_slow_answer_times_out_with_a_hint(server: ScriptedServer) -> None:
    # the answer would come after 30 s: the client gives up after its 0.3 s, long before (a loaded machine
    # may add a second or two, never the answer's 30)
    server.on(ETH_GET_USER_OPERATION_RECEIPT, slow(30.0, ok(None)))
    with BundlerClient(server.url, timeout=0.3) as bundler:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"timed out after 0\.3s.*raise the timeout") as info:
            bundler.get_user_operation_receipt(USER_OP_HASH)
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 10.0
    assert info.value.method == ETH_GET_USER_OPERATION_RECEIPT


def test_connection_refused_names_the_url_and_what_to_check() -> None:
    url = closed_port_url()
    with BundlerClient(url, timeout=2.0) as bundler, pytest.raises(TransportError) as info:
        bundler.chain_id()
    assert info.value.url == url
    assert info.value.method == "eth_chainId"
    assert "cannot reach" in str(info.value) and "running" in str(info.value)


def test_not_an_http_url_is_refused() -> None:
    with pytest.raises(TransportError, match="not an http"):
        BundlerClient("localhost:4337")


@pytest.mark.parametrize(
    ("method", "answer", "call", "expected"),
    [
        ("eth_chainId", True, lambda c: c.chain_id(), "chain id True is not a quantity"),
        ("eth_chainId", "0xzz", lambda c: c.chain_id(), "not an integer"),
        ("eth_supportedEntryPoints", ENTRY_POINT, lambda c: c.supported_entry_points(), "list of addresses"),
        ("eth_supportedEntryPoints", ["0x1234"], lambda c: c.supported_entry_points(), "not a valid address"),
        (
            ETH_SEND_USER_OPERATION,
            "0x" + "ab" * 31,
            lambda c: c.send_user_operation(user_op(), ENTRY_POINT),
            "32 bytes",
        ),
        (
            ETH_SEND_USER_OPERATION,
            {"hash": "0x"},
            lambda c: c.send_user_operation(user_op(), ENTRY_POINT),
            "0x-hex",
        ),
        (
            ETH_ESTIMATE_USER_OPERATION_GAS,
            {"preVerificationGas": "0x1", "verificationGasLimit": "0x2"},
            lambda c: c.estimate_user_operation_gas(user_op(), ENTRY_POINT),
            "callGasLimit: Field required",
        ),
        (
            ETH_ESTIMATE_USER_OPERATION_GAS,
            "0x5208",
            lambda c: c.estimate_user_operation_gas(user_op(), ENTRY_POINT),
            "should be a JSON object",
        ),
        (
            ETH_GET_USER_OPERATION_RECEIPT,
            {**alto_receipt(), "success": "maybe"},
            lambda c: c.get_user_operation_receipt(USER_OP_HASH),
            "success: Input should be a valid boolean",
        ),
        (
            ETH_GET_USER_OPERATION_RECEIPT,
            {**alto_receipt(), "receipt": {"status": "0x1"}},
            lambda c: c.get_user_operation_receipt(USER_OP_HASH),
            "transactionHash: Field required",
        ),
        (
            ETH_GET_USER_OPERATION_RECEIPT,
            {**alto_receipt(), "actualGasCost": "-0x1"},
            lambda c: c.get_user_operation_receipt(USER_OP_HASH),
            "actualGasCost",
        ),
        (
            "eth_getUserOperationByHash",
            {"entryPoint": ENTRY_POINT},
            lambda c: c.get_user_operation_by_hash(USER_OP_HASH),
            "userOperation should be a JSON object",
        ),
    ],
    ids=[
        "chain-id-bool",
        "chain-id-not-hex",
        "entry-points-not-a-list",
        "entry-point-short",
        "hash-31-bytes",
        "hash-object",
        "estimate-missing-field",
        "estimate-not-object",
        "receipt-success-garbage",
        "receipt-missing-tx-hash",
        "receipt-negative-cost",
        "by-hash-no-op",
    ],
)
def test_malformed_results_are_transport_errors_naming_the_problem(
    server: ScriptedServer,
    client: BundlerClient,
    method: str,
    answer: Any,
    call: Callable[[BundlerClient], Any],
    expected: str,
) -> None:
    server.on(method, ok(answer))
    with pytest.raises(TransportError) as info:
        call(client)
    message = str(info.value)
    assert expected in message
    assert f"answered {method} with a malformed result" in message
    assert "ERC-4337 bundler" in message
    assert info.value.method == method and info.value.url == server.url


# --------------------------------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------------------------------


def test_aa23_with_revert_data_in_the_message_is_decoded(
    server: ScriptedServer, client: BundlerClient
) -> None:
    revert = rule_violated(0, 1, 2, (500).to_bytes(32, "big"))
    message = f"UserOperation reverted with reason: AA23 reverted 0x{revert.hex()}"
    server.on(ETH_SEND_USER_OPERATION, fail(-32500, message))
    with pytest.raises(SimulationRevertedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    error = info.value
    assert isinstance(error, BundlerRejectedError)
    assert (error.method, error.code, error.reason, error.data) == (
        ETH_SEND_USER_OPERATION,
        -32500,
        "AA23",
        None,
    )
    assert error.rpc_message == message
    assert error.revert_data == revert
    assert (
        error.revert_description
        == f"RuleViolated(callIndex=0, permissionIndex=1, ruleIndex=2, actual=0x{500:064x})"
    )
    text = str(error)
    assert "session policy refused the call" in text
    # the decoded form stands in place of the raw hex: no wall of digits for a person to read
    assert f"AA23 reverted {error.revert_description} (" in text
    assert revert.hex() not in text and "revert data:" not in text


@pytest.mark.parametrize(
    ("revert", "shown", "said"),
    [
        (
            keccak(b"InvalidOwnerSignature(address,bytes32)")[:4]
            + abi_encode(["address", "bytes32"], ["0x" + "ab" * 20, b"\x07" * 32]),
            "InvalidOwnerSignature(account=0x",
            "refused the owner's signature of the session grant",
        ),
        (  # the module refusing to enable the grant the first operation carries
            keccak(b"PermissionAlreadyGranted(uint256,address,bytes4)")[:4]
            + abi_encode(["uint256", "address", "bytes4"], [0, "0x" + "ab" * 20, b"\x12\x34\x56\x78"]),
            "PermissionAlreadyGranted(permissionIndex=0, target=0x",
            "refused to enable the session's grant, not the call under its policy: the session key holds that call",
        ),
        (
            keccak(b"SessionIsRevoked(bytes32)")[:4] + abi_encode(["bytes32"], [b"\x07" * 32]),
            "SessionIsRevoked(sessionId=0x0707",
            "this grant was revoked: ask the owner for a new session",
        ),
        (  # keyscope's account refusing its caller: the operation went to another EntryPoint than the account's
            keccak(b"AccountUnauthorized(address)")[:4] + abi_encode(["address"], ["0x" + "43" * 20]),
            "AccountUnauthorized(sender=0x4343",
            "takes operations from another EntryPoint than the one this operation was sent to",
        ),
        (  # an account's own error (the reference account's InvalidModule(address)): not the module's
            keccak(b"InvalidModule(address)")[:4] + abi_encode(["address"], ["0x" + "cd" * 20]),
            "0x" + keccak(b"InvalidModule(address)")[:4].hex(),
            "not the session module's",
        ),
    ],
)
def test_aa23_that_is_not_a_policy_refusal_does_not_blame_the_policy(
    server: ScriptedServer, client: BundlerClient, revert: bytes, shown: str, said: str
) -> None:
    message = f"UserOperation reverted with reason: AA23 reverted 0x{revert.hex()}"
    server.on(ETH_SEND_USER_OPERATION, fail(-32500, message))
    with pytest.raises(SimulationRevertedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    text = str(info.value)
    assert info.value.reason == "AA23" and info.value.revert_data == revert
    assert shown in text and said in text
    assert "session policy refused" not in text


def test_a_bundlers_megabyte_of_error_text_is_cut_in_the_message_and_kept_whole_on_the_exception(
    server: ScriptedServer, client: BundlerClient
) -> None:
    """A bundler (or anything answering as one) may send an error text of megabytes; the message a terminal or a log
    line takes shows its start and says how much more there is, and loses nothing: the whole text stays on the
    exception, and the AA code and its hint are still read."""
    message = "UserOperation failed validation with reason: AA25 invalid account nonce " + "z" * 1_000_000
    server.on(ETH_SEND_USER_OPERATION, fail(-32602, message))
    with pytest.raises(BundlerRejectedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    text = str(info.value)
    assert len(text) < ENDPOINT_TEXT_SHOWN + 400
    assert info.value.rpc_message == message and info.value.reason == "AA25"
    assert (
        f"(the first {ENDPOINT_TEXT_SHOWN} of {len(message)} characters: the whole text is the exception's"
        in text
    )
    assert "fetch a fresh one" in text


@pytest.mark.parametrize(
    "make",
    [
        lambda text: JsonRpcError("eth_call", -32000, text),
        lambda text: BundlerRejectedError("eth_sendUserOperation", -32500, text),
        lambda text: PaymasterError("pm_getPaymasterData", -32000, text),
    ],
    ids=["node", "bundler", "paymaster"],
)
def test_every_endpoint_error_cuts_long_text_in_its_message_only(make: Callable[[str], Exception]) -> None:
    short = "execution reverted"
    assert short in str(make(short)) and "the whole text" not in str(make(short))
    exact = "y" * ENDPOINT_TEXT_SHOWN  # at the limit: whole
    assert exact in str(make(exact)) and "the whole text" not in str(make(exact))
    error = make(exact + "y")
    assert exact + "y" not in str(
        error
    ) and f"(the first {ENDPOINT_TEXT_SHOWN} of {ENDPOINT_TEXT_SHOWN + 1} ch" in str(error)
    assert error.rpc_message == exact + "y"  # type: ignore[attr-defined]


def test_aa24_signature_error(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(
        ETH_SEND_USER_OPERATION, fail(-32507, "UserOperation reverted with reason: AA24 signature error")
    )
    with pytest.raises(BundlerRejectedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    error = info.value
    assert type(error) is BundlerRejectedError
    assert (error.code, error.reason) == (-32507, "AA24")
    assert "wrong signer, revoked or unknown session" in str(error)


def test_aa25_nonce_error_says_to_fetch_a_fresh_nonce(server: ScriptedServer, client: BundlerClient) -> None:
    message = "UserOperation failed validation with reason: AA25 invalid account nonce"
    server.on(ETH_SEND_USER_OPERATION, fail(-32602, message))
    with pytest.raises(BundlerRejectedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    assert (info.value.code, info.value.reason, info.value.rpc_message) == (-32602, "AA25", message)
    assert "fetch a fresh one" in str(info.value)


@pytest.mark.parametrize(
    "message, said",
    [
        ("AA31 paymaster deposit too low", "ask the sponsor to top it up (EntryPoint depositTo)"),
        ("AA32 paymaster expired or not due", "build the operation again to get a fresh sponsorship"),
    ],
)
def test_paymaster_refusals_say_what_to_do(
    server: ScriptedServer, client: BundlerClient, message: str, said: str
) -> None:
    server.on(ETH_SEND_USER_OPERATION, fail(-32500, f"UserOperation reverted with reason: {message}"))
    with pytest.raises(BundlerRejectedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    assert info.value.reason == message[:4] and said in str(info.value)


def test_revert_data_in_the_error_data_is_decoded(server: ScriptedServer, client: BundlerClient) -> None:
    revert = error_string("Ownable: caller is not the owner")
    data = {"reason": "execution reverted", "revertData": "0x" + revert.hex()}
    server.on(ETH_ESTIMATE_USER_OPERATION_GAS, fail(-32521, "execution reverted", data))
    with pytest.raises(SimulationRevertedError) as info:
        client.estimate_user_operation_gas(user_op(), ENTRY_POINT)
    error = info.value
    assert (error.code, error.reason, error.data) == (-32521, None, data)
    assert error.revert_data == revert
    assert error.revert_description == "Ownable: caller is not the owner"
    assert str(error).endswith("revert data: Ownable: caller is not the owner")


def test_revert_data_as_a_hex_data_field(server: ScriptedServer, client: BundlerClient) -> None:
    inner = rule_violated(1, 0, 0, bytes(32))
    failed_op = keccak(b"FailedOpWithRevert(uint256,string,bytes)")[:4] + abi_encode(
        ["uint256", "string", "bytes"], [0, "AA23 reverted", inner]
    )
    server.on(ETH_SEND_USER_OPERATION, fail(-32500, "AA23 reverted", "0x" + failed_op.hex()))
    with pytest.raises(SimulationRevertedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    assert info.value.reason == "AA23"
    assert info.value.revert_description.startswith(
        "AA23 reverted: RuleViolated(callIndex=1, permissionIndex=0,"
    )


def test_unknown_revert_data_after_reason_is_kept_as_hex(
    server: ScriptedServer, client: BundlerClient
) -> None:
    unknown = bytes.fromhex("cafebabe") + (7).to_bytes(32, "big")
    message = f"UserOperation reverted during simulation with reason: 0x{unknown.hex()}"
    server.on(ETH_ESTIMATE_USER_OPERATION_GAS, fail(-32521, message))
    with pytest.raises(SimulationRevertedError) as info:
        client.estimate_user_operation_gas(user_op(), ENTRY_POINT)
    assert info.value.revert_data == unknown
    assert info.value.revert_description == "0x" + unknown.hex()
    # the message shows the data already; the execution-revert code adds only where the fault lies
    assert str(info.value).endswith(
        f"{message} (validation passed, so the session policy accepted it: the call reverted inside the account "
        "or its target; check the call's arguments and the target)"
    )
    assert "revert data:" not in str(info.value)


def test_addresses_and_hashes_in_a_message_are_not_taken_for_revert_data(
    server: ScriptedServer, client: BundlerClient
) -> None:
    message = f"UserOperation with hash 0x{USER_OP_HASH.hex()} from {SENDER} already known"
    server.on(ETH_SEND_USER_OPERATION, fail(-32602, message))
    with pytest.raises(BundlerRejectedError) as info:
        client.send_user_operation(user_op(), ENTRY_POINT)
    assert type(info.value) is BundlerRejectedError
    assert info.value.reason is None


def test_unsupported_entry_point_is_refused_before_sending(
    server: ScriptedServer, client: BundlerClient
) -> None:
    with pytest.raises(UnsupportedEntryPointError) as info:
        client.send_user_operation(user_op(), OTHER_ENTRY_POINT)
    error = info.value
    assert isinstance(error, BadInputError) and isinstance(error, ValueError)
    assert error.supported == [ENTRY_POINT]
    assert error.entry_point == OTHER_ENTRY_POINT
    assert ENTRY_POINT in str(error) and OTHER_ENTRY_POINT in str(error) and server.url in str(error)
    assert server.calls(ETH_SEND_USER_OPERATION) == []
    with pytest.raises(UnsupportedEntryPointError):
        client.estimate_user_operation_gas(user_op(), OTHER_ENTRY_POINT)
    assert server.calls(ETH_ESTIMATE_USER_OPERATION_GAS) == []


# --------------------------------------------------------------------------------------------------
# Parsers on random valid quantities
# --------------------------------------------------------------------------------------------------

uint256 = st.integers(min_value=0, max_value=2**256 - 1)
uint128 = st.integers(min_value=0, max_value=2**128 - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_address(b))
hashes = st.binary(min_size=32, max_size=32)


def as_wire(value: int) -> st.SearchStrategy[Any]:
    """A quantity as bundlers write it: 0x-hex (either case), a JSON number, or a decimal string."""
    return st.sampled_from([hex(value), hex(value).upper().replace("0X", "0x"), value, str(value)])


@st.composite
def receipts(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    expected = {
        "user_op_hash": draw(hashes),
        "entry_point": draw(addresses),
        "sender": draw(addresses),
        "nonce": draw(uint256),
        "paymaster": draw(st.none() | addresses.filter(lambda a: int(a, 16) != 0)),
        "actual_gas_cost": draw(uint256),
        "actual_gas_used": draw(uint256),
        "success": draw(st.booleans()),
        "reason": draw(st.binary(max_size=100)),
        "transaction_hash": draw(hashes),
        "block_number": draw(st.integers(min_value=0, max_value=2**64)),
    }
    wire: dict[str, Any] = {
        "userOpHash": "0x" + expected["user_op_hash"].hex(),
        "entryPoint": expected["entry_point"].lower(),
        "sender": expected["sender"],
        "nonce": draw(as_wire(expected["nonce"])),
        "actualGasCost": draw(as_wire(expected["actual_gas_cost"])),
        "actualGasUsed": draw(as_wire(expected["actual_gas_used"])),
        "success": expected["success"],
        "logs": [],
    }
    if expected["paymaster"] is not None:
        wire["paymaster"] = expected["paymaster"]
    if expected["reason"] or draw(st.booleans()):
        wire["reason"] = "0x" + expected["reason"].hex()
    tx_fields = {
        "transactionHash": "0x" + expected["transaction_hash"].hex(),
        "blockNumber": draw(as_wire(expected["block_number"])),
    }
    if draw(st.booleans()):  # ERC-7769 / Alto: nested; older bundlers: at the top level too
        wire["receipt"] = {**tx_fields, "status": "0x1", "logs": []}
    else:
        wire.update(tx_fields)
    return wire, expected


@given(receipts())
def test_receipts_with_random_quantities_round_trip(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    wire, expected = case
    receipt = parse_user_operation_receipt(wire)
    assert receipt is not None
    for name, value in expected.items():
        assert getattr(receipt, name) == value, name
    assert parse_user_operation_receipt(json.loads(json.dumps(receipt.model_dump(by_alias=True)))) == receipt


@given(uint256, uint128, uint128, st.none() | uint128, st.none() | uint128, st.data())
def test_gas_estimates_with_random_quantities_round_trip(
    pvg: int, vgl: int, cgl: int, pm_vgl: int | None, pm_post: int | None, data: st.DataObject
) -> None:
    wire: dict[str, Any] = {
        "preVerificationGas": data.draw(as_wire(pvg)),
        "verificationGasLimit": data.draw(as_wire(vgl)),
        "callGasLimit": data.draw(as_wire(cgl)),
    }
    if pm_vgl is not None:
        wire["paymasterVerificationGasLimit"] = data.draw(as_wire(pm_vgl))
    if pm_post is not None:
        wire["paymasterPostOpGasLimit"] = data.draw(as_wire(pm_post))
    estimate = parse_gas_estimate(wire)
    assert (estimate.pre_verification_gas, estimate.verification_gas_limit, estimate.call_gas_limit) == (
        pvg,
        vgl,
        cgl,
    )
    assert (estimate.paymaster_verification_gas_limit, estimate.paymaster_post_op_gas_limit) == (
        pm_vgl,
        pm_post,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(receipts())
def test_receipts_round_trip_over_http(
    server: ScriptedServer, client: BundlerClient, case: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    wire, expected = case
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(wire))
    receipt = client.get_user_operation_receipt(expected["user_op_hash"])
    assert receipt is not None
    assert {name: getattr(receipt, name) for name in expected} == expected


# --------------------------------------------------------------------------------------------------
# Waiting for receipts
# --------------------------------------------------------------------------------------------------


def test_wait_polls_with_growing_intervals_until_the_receipt(
    server: ScriptedServer, client: BundlerClient, pauses: list[float]
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, sequence(*[ok(None)] * 7, ok(alto_receipt())))
    pending = PendingUserOperation(client, "0x" + USER_OP_HASH.hex())
    assert pending.hash == USER_OP_HASH
    receipt = pending.wait(timeout=10.0, poll=0.05, max_poll=0.3)
    assert receipt.transaction_hash == TX_HASH
    times = [r.at for r in server.received if r.method == ETH_GET_USER_OPERATION_RECEIPT]
    assert len(times) == 8
    # Pauses of 0.05 s growing by 1.6 per query, capped at max_poll 0.3 s: 0.05, 0.08, 0.128, 0.205, 0.3...
    expected = [min(0.05 * 1.6**n, 0.3) for n in range(len(times) - 1)]
    assert pauses == pytest.approx(expected), pauses
    # ...each taken between two queries (a loaded machine only lengthens the gaps)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= pause * 0.95 for gap, pause in zip(gaps, expected, strict=True)), gaps
    # The receipt is remembered: no further query.
    assert pending.receipt() == receipt
    assert len(server.calls(ETH_GET_USER_OPERATION_RECEIPT)) == 8


def test_wait_times_out_saying_the_operation_may_still_land(
    server: ScriptedServer, client: BundlerClient, pauses: list[float]
) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(None))
    pending = PendingUserOperation(client, USER_OP_HASH)
    started = time.monotonic()
    with pytest.raises(UserOperationTimeoutError) as info:
        pending.wait(timeout=0.6)
    elapsed = time.monotonic() - started
    # it pauses no longer than the timeout in all, and gives up after the one query past it: its time is the
    # timeout plus the queries' (which a loaded machine slows, seconds at worst)
    assert len(pauses) >= 2 and sum(pauses) <= 0.6 + 1e-9, pauses
    assert len(server.calls(ETH_GET_USER_OPERATION_RECEIPT)) == len(pauses) + 1
    assert 0.6 <= elapsed < 0.6 + 10.0
    assert info.value.user_op_hash == "0x" + USER_OP_HASH.hex()
    assert info.value.timeout == 0.6
    assert "may still be included" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    assert pending.receipt() is None


def test_wait_raises_the_decoded_revert_of_a_failed_operation(
    server: ScriptedServer, client: BundlerClient
) -> None:
    revert = error_string("DemoNFT: sold out")
    server.on(ETH_GET_USER_OPERATION_RECEIPT, ok(alto_receipt(success=False, reason=revert)))
    pending = PendingUserOperation(client, USER_OP_HASH)
    with pytest.raises(UserOperationFailedError) as info:
        pending.wait(timeout=5.0)
    assert info.value.reason == "DemoNFT: sold out"
    assert info.value.user_op_hash == "0x" + USER_OP_HASH.hex()
    assert isinstance(info.value.receipt, UserOperationReceipt)
    assert info.value.receipt.reason == revert
    assert "its call reverted inside the account or its target: DemoNFT: sold out" in str(info.value)
    assert "not a session policy refusal" in str(info.value)
    receipt = pending.wait(timeout=5.0, check=False)
    assert receipt.success is False


def test_wait_retries_transient_faults_until_the_receipt(
    server: ScriptedServer, client: BundlerClient
) -> None:
    server.on(
        ETH_GET_USER_OPERATION_RECEIPT,
        sequence(
            raw(HTML_500, 502, "text/html"),
            raw('{"jsonrpc": "2.0", "id": 3, "res'),
            fail(None, "Failed to get user operation receipt", status=500),
            fail(-32603, "internal error"),
            slow(10.0, ok(None)),
            ok(alto_receipt()),
        ),
    )
    # the slow answer (10 s) outlasts the client's timeout (1 s), which the other answers never reach, even on a
    # loaded machine: each fault costs exactly one query
    with BundlerClient(server.url, timeout=1.0) as impatient:
        receipt = PendingUserOperation(impatient, USER_OP_HASH).wait(timeout=30.0, poll=0.02, max_poll=0.05)
    assert receipt.success
    assert len(server.calls(ETH_GET_USER_OPERATION_RECEIPT)) == 6


def test_wait_raises_a_real_rejection_at_once(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(ETH_GET_USER_OPERATION_RECEIPT, fail(-32602, "Missing/invalid userOpHash"))
    started = time.monotonic()
    with pytest.raises(BundlerRejectedError) as info:
        PendingUserOperation(client, USER_OP_HASH).wait(timeout=10.0)
    assert info.value.code == -32602
    assert len(server.calls(ETH_GET_USER_OPERATION_RECEIPT)) == 1  # not asked again
    assert time.monotonic() - started < 5.0  # long before the 10 s timeout


def test_wait_on_an_unreachable_bundler_times_out_with_the_cause() -> None:
    gone = BundlerClient(closed_port_url(), timeout=1.0)
    with gone, pytest.raises(UserOperationTimeoutError) as info:
        PendingUserOperation(gone, USER_OP_HASH).wait(timeout=0.4)
    assert isinstance(info.value.__cause__, TransportError)


def test_wait_refuses_nonsense_polling(client: BundlerClient) -> None:
    pending = PendingUserOperation(client, USER_OP_HASH)
    with pytest.raises(BadInputError, match="poll"):
        pending.wait(poll=0)
    with pytest.raises(BadInputError, match="timeout"):
        pending.wait(timeout=-1)
    with pytest.raises(BadInputError, match="32 bytes"):
        PendingUserOperation(client, b"\x01" * 20)


def test_wait_many_returns_receipts_in_order(server: ScriptedServer, client: BundlerClient) -> None:
    second_hash = keccak(b"another user operation")
    second = {**alto_receipt(), "userOpHash": "0x" + second_hash.hex()}
    late = sequence(ok(None), ok(None), ok(None), ok(second))
    first = alto_receipt()

    def by_hash(request: dict[str, Any]) -> Reply:
        return late(request) if request["params"][0] == "0x" + second_hash.hex() else ok(first)(request)

    server.on(ETH_GET_USER_OPERATION_RECEIPT, by_hash)
    pendings = [PendingUserOperation(client, second_hash), PendingUserOperation(client, USER_OP_HASH)]
    receipts = wait_many(pendings, timeout=5.0, poll=0.02)
    assert [r.user_op_hash for r in receipts] == [second_hash, USER_OP_HASH]
    calls = server.calls(ETH_GET_USER_OPERATION_RECEIPT)
    assert calls.count(["0x" + USER_OP_HASH.hex()]) == 1  # found in the first round, not asked again
    assert calls.count(["0x" + second_hash.hex()]) == 4


def test_wait_many_times_out_naming_the_pending_one(server: ScriptedServer, client: BundlerClient) -> None:
    stuck = keccak(b"stuck")

    def by_hash(request: dict[str, Any]) -> Reply:
        return (
            ok(None)(request) if request["params"][0] == "0x" + stuck.hex() else ok(alto_receipt())(request)
        )

    server.on(ETH_GET_USER_OPERATION_RECEIPT, by_hash)
    pendings = [PendingUserOperation(client, USER_OP_HASH), PendingUserOperation(client, stuck)]
    with pytest.raises(UserOperationTimeoutError) as info:
        wait_many(pendings, timeout=0.3)
    assert info.value.user_op_hash == "0x" + stuck.hex()
    assert pendings[0].receipt() is not None


def test_submit_sends_and_returns_a_pending_operation(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(ETH_SEND_USER_OPERATION, ok("0x" + USER_OP_HASH.hex()))
    server.on(ETH_GET_USER_OPERATION_RECEIPT, sequence(ok(None), ok(alto_receipt())))
    op = user_op()
    pending = submit(client, op, ENTRY_POINT)
    assert pending.op == op and pending.hash == USER_OP_HASH
    assert "pending" in repr(pending)
    assert pending.wait(timeout=5.0).sender == SENDER
    assert "included" in repr(pending)


def test_all_errors_share_the_keyscope_root(server: ScriptedServer, client: BundlerClient) -> None:
    server.on(ETH_SEND_USER_OPERATION, raw("oops", 500, "text/plain"))
    with pytest.raises(KeyscopeError):
        client.send_user_operation(user_op(), ENTRY_POINT)


# --------------------------------------------------------------------------------------------------
# End to end: the real Alto bundler on the local stack
# --------------------------------------------------------------------------------------------------

# Well-formed (low s, v 27) but nobody's: the account's ECDSA check fails without reverting, as gas
# estimation needs before the owner signs.
DUMMY_SIGNATURE = bytes.fromhex("11" * 32 + "22" * 32 + "1b")


def _priced(client: BundlerClient, op: UserOperation, entry_point: str) -> UserOperation:
    estimate = client.estimate_user_operation_gas(op, entry_point)
    fees = client.fee_quote()
    return op.replace(
        call_gas_limit=estimate.call_gas_limit,
        verification_gas_limit=estimate.verification_gas_limit,
        pre_verification_gas=estimate.pre_verification_gas,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
    )


@pytest.mark.e2e
def test_client_against_alto_on_the_local_stack(local_stack: Any) -> None:
    entry_point, chain_id = local_stack.entry_point, local_stack.chain_id
    node = RpcChain(local_stack.rpc_url)
    owner = LocalSigner.generate()
    account = to_address(node.call(local_stack.factory, create_account_data(owner.address, view=True))[12:32])
    local_stack.fund(account, 10**18)

    def sign(op: UserOperation) -> UserOperation:
        return op.replace(signature=owner.sign_hash(op.hash(entry_point, chain_id)))

    with BundlerClient(local_stack.bundler_url, node=node) as client:
        assert client.chain_id() == chain_id
        assert client.supported_entry_points() == [entry_point, local_stack.entry_point_v08]
        fees = client.fee_quote()
        assert fees.max_fee_per_gas >= fees.max_priority_fee_per_gas > 0

        # 1. Create the account and mint it an NFT: estimate, sign, send, wait.
        mint = keccak(b"safeMint(address)")[:4] + abi_encode(["address"], [account])
        draft = UserOperation(
            sender=account,
            nonce=node.get_nonce(entry_point, account, 0),
            factory=local_stack.factory,
            factory_data=create_account_data(owner.address),
            call_data=encode_execute(Call(local_stack.nft, 0, mint)),
            signature=DUMMY_SIGNATURE,
        )
        first = sign(_priced(client, draft, entry_point))
        pending = submit(client, first, entry_point)
        assert pending.hash == first.hash(entry_point, chain_id)
        receipt = pending.wait(timeout=30)
        assert receipt.success and receipt.sender == account and receipt.entry_point == entry_point
        assert receipt.user_op_hash == pending.hash and receipt.paymaster is None
        assert receipt.actual_gas_cost > 0 and receipt.block_number > 0
        assert node.get_code(account) != b""
        found = client.get_user_operation_by_hash(pending.hash)
        assert found is not None and UserOperation.from_rpc(found["userOperation"]) == first

        # 2. The same operation again: the bundler refuses it, with the EntryPoint's reason.
        with pytest.raises(BundlerRejectedError) as again:
            client.send_user_operation(first, entry_point)
        assert again.value.reason in ("AA10", "AA25"), again.value
        assert again.value.method == ETH_SEND_USER_OPERATION

        # 3. A call that reverts with a custom error: estimation is refused with the decoded error...
        install = keccak(b"installModule(uint256,address,bytes)")[:4] + abi_encode(
            ["uint256", "address", "bytes"], [99, local_stack.module, b""]
        )
        failing = UserOperation(
            sender=account,
            nonce=node.get_nonce(entry_point, account, 0),
            call_data=encode_execute(Call(account, 0, install)),
            signature=DUMMY_SIGNATURE,
        )
        with pytest.raises(SimulationRevertedError) as refused:
            client.estimate_user_operation_gas(failing, entry_point)
        assert "ERC7579UnsupportedModuleType(" in refused.value.revert_description

        # ...and sent with gas limits of its own, it is included but reverts: wait() says why.
        quote = client.fee_quote()
        failing = sign(
            failing.replace(
                call_gas_limit=200_000,
                verification_gas_limit=200_000,
                pre_verification_gas=100_000,
                max_fee_per_gas=quote.max_fee_per_gas,
                max_priority_fee_per_gas=quote.max_priority_fee_per_gas,
            )
        )
        with pytest.raises(UserOperationFailedError) as reverted:
            submit(client, failing, entry_point).wait(timeout=30)
        assert reverted.value.reason.startswith("ERC7579UnsupportedModuleType(")

        # 4. Signed by someone else than the owner: AA24, with its hint.
        forged = failing.replace(call_data=b"", nonce=node.get_nonce(entry_point, account, 0))
        forged = forged.replace(
            signature=LocalSigner.generate().sign_hash(forged.hash(entry_point, chain_id))
        )
        with pytest.raises(BundlerRejectedError) as wrong_signer:
            client.send_user_operation(forged, entry_point)
        assert (wrong_signer.value.code, wrong_signer.value.reason) == (-32507, "AA24")
        assert "wrong signer" in str(wrong_signer.value)
    node.close()
