"""The node interface: Web3Chain on ape's local chain, RpcChain and Web3Chain on a real anvil, and RpcChain
against a scripted HTTP server for answers a node should never give."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.artifacts import entry_point_artifact
from keyscope.chain import Chain, RpcChain, Web3Chain, normalize_transaction
from keyscope.entrypoint import encode_handle_ops
from keyscope.errors import BadInputError, CallRevertedError, ConfigurationError, TransportError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.revert import split_failed_op
from keyscope.rpc import JsonRpcClient, JsonRpcError
from keyscope.userop import UserOperation
from test_bundler_client import ScriptedServer, closed_port_url, ok

ANVIL = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "anvil"
STRANGER = to_address("0x" + "5a" * 20)
INCREMENT_NONCE = keccak(b"incrementNonce(uint192)")[:4]
FAILED_OP_WITH_REVERT = keccak(b"FailedOpWithRevert(uint256,string,bytes)")[:4]


def handle_ops_for(sender: str, beneficiary: str) -> bytes:
    """``handleOps`` calldata for one operation whose sender has no ``validateUserOp`` (pass the EntryPoint
    itself): the EntryPoint reverts with ``FailedOpWithRevert(0, "AA23 reverted", "")``."""
    op = UserOperation(
        sender=sender,
        nonce=0,
        call_gas_limit=100_000,
        verification_gas_limit=100_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**10,
        max_priority_fee_per_gas=10**9,
    )
    return encode_handle_ops([op.pack()], beneficiary)


def increment_nonce_data(key: int) -> bytes:
    return INCREMENT_NONCE + key.to_bytes(32, "big")


def mined(url: str, tx_hash: bytes | str, timeout: float = 15.0) -> dict[str, Any]:
    """The receipt of ``tx_hash``, once the node has mined it (anvil may answer the send first)."""
    text = tx_hash if isinstance(tx_hash, str) else "0x" + tx_hash.hex()
    deadline = time.monotonic() + timeout
    with JsonRpcClient(url) as rpc:
        while (receipt := rpc.request("eth_getTransactionReceipt", [text])) is None:
            assert time.monotonic() < deadline, f"{text} not mined after {timeout}s"
            time.sleep(0.02)
    return dict(receipt)


# --------------------------------------------------------------------------------------------------
# Web3Chain under ape test (ape's local py-evm chain)
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def ape_chain(chain: Any) -> Web3Chain:
    return Web3Chain(chain.provider.web3)


def test_web3_chain_is_a_chain_and_caches_the_chain_id(ape_chain: Web3Chain, chain: Any) -> None:
    assert isinstance(ape_chain, Chain)
    assert ape_chain.chain_id() == chain.chain_id
    assert ape_chain._chain_id == chain.chain_id
    assert ape_chain.chain_id() == chain.chain_id


CALLER_CODE = bytes.fromhex("3360005260206000f3")
"""Creation code whose constructor returns its caller (``CALLER; MSTORE at 0; RETURN 32 bytes``)."""


def test_a_call_naming_no_sender_comes_from_the_testers_first_account_as_web3_makes_it(
    ape_chain: Web3Chain, chain: Any, accounts: Any
) -> None:
    """On ape's local chain web3 gives a call or an estimate without a sender the tester's first account (a node is
    given none, see test_anvil_calls_naming_no_sender_come_from_no_account); Web3Chain names that account itself,
    looked up once, and a sender the caller names stays."""
    first = chain.provider.web3.eth.accounts[0]
    for _ in range(2):
        assert ape_chain.call_creation(CALLER_CODE)[12:] == bytes.fromhex(first[2:])
    assert ape_chain.estimate_gas({"data": CALLER_CODE}) > 21_000
    named = accounts[3].address
    assert ape_chain.call(named, b"", sender=named) == b""
    assert ape_chain._sender_filled({"from": named})["from"] == named


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.integers(min_value=0, max_value=2**192 - 1), bumps=st.integers(min_value=0, max_value=3))
def test_get_nonce_equals_the_entry_points_answer(
    chain: Any, entry_point: Any, accounts: Any, key: int, bumps: int
) -> None:
    web3_chain = Web3Chain(chain.provider.web3)
    sender = accounts[4]
    for _ in range(bumps):
        entry_point.incrementNonce(key, sender=sender)
    nonce = web3_chain.get_nonce(entry_point.address, sender.address, key)
    assert nonce == entry_point.getNonce(sender.address, key)
    assert nonce >> 64 == key
    assert nonce & (2**64 - 1) >= bumps


def test_call_of_a_reverting_function_raises_with_the_decoded_custom_error(
    ape_chain: Web3Chain, account: str, accounts: Any
) -> None:
    caller = accounts[0].address
    data = encode_execute(Call(caller, 1, b""))
    with pytest.raises(CallRevertedError) as info:
        ape_chain.call(account, data, sender=caller)
    error = info.value
    assert error.method == "eth_call" and error.to == account
    assert error.data[:4] == keccak(b"AccountUnauthorized(address)")[:4]
    assert error.description.startswith("AccountUnauthorized(")
    assert caller in error.description
    assert f"eth_call to {account} reverted: AccountUnauthorized(" in str(error)


def test_call_of_handle_ops_decodes_the_entry_points_failed_op(
    ape_chain: Web3Chain, entry_point: Any, accounts: Any
) -> None:
    with pytest.raises(CallRevertedError) as info:
        ape_chain.call(entry_point.address, handle_ops_for(entry_point.address, accounts[0].address))
    assert info.value.data[:4] == FAILED_OP_WITH_REVERT
    assert split_failed_op(info.value.data) == (0, "AA23 reverted", b"")
    assert info.value.description == "AA23 reverted: (no revert data)"


def test_web3_chain_reads_state_like_ape(
    ape_chain: Web3Chain, chain: Any, entry_point: Any, accounts: Any
) -> None:
    assert ape_chain.get_code(entry_point.address) == bytes(chain.provider.get_code(entry_point.address))
    assert len(ape_chain.get_code(entry_point.address)) > 10_000
    assert ape_chain.get_code(STRANGER) == b""
    assert ape_chain.get_balance(accounts[0].address) == accounts[0].balance
    head = chain.blocks.head
    assert ape_chain.block_timestamp() == head.timestamp
    assert ape_chain.base_fee() == head.base_fee
    assert ape_chain.max_priority_fee() >= 0


def test_web3_chain_estimates_and_sends(ape_chain: Web3Chain, accounts: Any, entry_point: Any) -> None:
    sender, receiver = accounts[5], accounts[6]
    assert ape_chain.estimate_gas({"from": sender.address, "to": receiver.address, "value": 1}) == 21_000
    before = receiver.balance
    tx_hash = ape_chain.send_transaction({"from": sender.address, "to": receiver.address, "value": "0x2a"})
    assert len(tx_hash) == 32
    assert receiver.balance == before + 42
    with pytest.raises(CallRevertedError) as info:
        ape_chain.estimate_gas(
            {
                "from": sender.address,
                "to": entry_point.address,
                "data": handle_ops_for(entry_point.address, STRANGER),
            }
        )
    assert info.value.method == "eth_estimateGas"
    assert info.value.description == "AA23 reverted: (no revert data)"


def _quantity(value: Any) -> int:
    return value if isinstance(value, int) else int(value, 16)


def test_web3_chain_gives_transaction_receipts_in_web3s_shape(ape_chain: Web3Chain, accounts: Any) -> None:
    """Through web3.py's API (eth-tester's raw answer has its own field names): what a receipt's confirmation
    reads, a block number, a status and the logs; None for a transaction the chain has not."""
    tx_hash = ape_chain.send_transaction({"from": accounts[5].address, "to": accounts[6].address, "value": 1})
    found = ape_chain.transaction_receipt(tx_hash)
    assert found is not None and _quantity(found["status"]) == 1 and found["logs"] == []
    assert _quantity(found["blockNumber"]) == ape_chain.w3.eth.block_number
    assert ape_chain.transaction_receipt(b"\x42" * 32) is None


def test_get_nonce_where_no_entry_point_is_deployed(ape_chain: Web3Chain, accounts: Any) -> None:
    with pytest.raises(ConfigurationError, match="is an EntryPoint deployed at that address"):
        ape_chain.get_nonce(STRANGER, accounts[0].address, 0)


# --------------------------------------------------------------------------------------------------
# RpcChain and Web3Chain on a real anvil
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anvil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh anvil on a port the kernel picks (read from its own log, so that no other node on the
    machine can be mistaken for it), stopped afterwards."""
    log_path = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", "0", "--color", "never"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"Listening on 127\.0\.0\.1:(\d+)", log_path.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.02)
        url = f"http://127.0.0.1:{match.group(1)}"
        with RpcChain(url, timeout=5.0) as probe:
            assert probe.chain_id() == 31337
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def anvil_entry_point(anvil_url: str) -> tuple[str, str]:
    """(EntryPoint address, funded dev account) on the anvil, deployed with eth_sendTransaction."""
    with JsonRpcClient(anvil_url) as rpc:
        dev = to_address(rpc.request("eth_accounts")[0])
        bytecode = entry_point_artifact()["bytecode"]
        tx_hash = rpc.request("eth_sendTransaction", [{"from": dev, "data": bytecode, "gas": hex(8_000_000)}])
    receipt = mined(anvil_url, tx_hash)
    assert receipt["status"] == "0x1"
    return to_address(receipt["contractAddress"]), dev


@pytest.fixture(params=["rpc", "web3"])
def node(request: pytest.FixtureRequest, anvil_url: str) -> Iterator[Chain]:
    if request.param == "rpc":
        with RpcChain(anvil_url) as rpc_chain:
            yield rpc_chain
    else:
        from web3 import HTTPProvider, Web3

        yield Web3Chain(Web3(HTTPProvider(anvil_url)))


def test_anvil_calls_naming_no_sender_come_from_no_account(node: Chain) -> None:
    """A node's eth_call without ``from`` runs from the zero address: neither chain adds a sender of its own."""
    assert node.call_creation(CALLER_CODE) == bytes(32)


def test_anvil_basics(node: Chain, anvil_url: str) -> None:
    assert node.chain_id() == 31337
    with JsonRpcClient(anvil_url) as rpc:
        block = rpc.request("eth_getBlockByNumber", ["latest", False])
        priority = int(rpc.request("eth_maxPriorityFeePerGas"), 16)
    assert node.base_fee() == int(block["baseFeePerGas"], 16) > 0
    assert node.max_priority_fee() == priority
    assert abs(node.block_timestamp() - time.time()) < 120


def test_anvil_get_nonce_follows_increment_nonce(
    node: Chain, anvil_url: str, anvil_entry_point: tuple[str, str]
) -> None:
    entry_point, dev = anvil_entry_point
    key = 0xC0FFEE + (1 if isinstance(node, RpcChain) else 2)
    assert node.get_nonce(entry_point, dev, key) == key << 64
    tx_hash = node.send_transaction({"from": dev, "to": entry_point, "data": increment_nonce_data(key)})
    assert len(tx_hash) == 32
    assert mined(anvil_url, tx_hash)["status"] == "0x1"
    assert node.get_nonce(entry_point, dev, key) == (key << 64) | 1


def test_anvil_transaction_receipts(node: RpcChain | Web3Chain, anvil_entry_point: tuple[str, str]) -> None:
    """RpcChain and Web3Chain give a mined transaction's receipt (block, status, logs), None for one unknown.
    anvil mines a sent transaction apart from answering its hash: under load the receipt may come a moment later,
    so the receipt is asked for until it comes (a few seconds at most)."""
    entry_point, dev = anvil_entry_point
    tx_hash = node.send_transaction({"from": dev, "to": entry_point, "data": increment_nonce_data(7)})
    deadline = time.monotonic() + 10
    while (found := node.transaction_receipt(tx_hash)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found is not None and _quantity(found["status"]) == 1 and isinstance(found["logs"], list)
    assert _quantity(found["blockNumber"]) >= 1
    assert node.transaction_receipt(b"\x42" * 32) is None


def test_anvil_call_revert_carries_the_data(node: Chain, anvil_entry_point: tuple[str, str]) -> None:
    entry_point, dev = anvil_entry_point
    with pytest.raises(CallRevertedError) as info:
        node.call(entry_point, handle_ops_for(entry_point, dev), sender=dev)
    error = info.value
    assert (error.method, error.to) == ("eth_call", entry_point)
    assert split_failed_op(error.data) == (0, "AA23 reverted", b"")
    assert error.description == "AA23 reverted: (no revert data)"
    with pytest.raises(CallRevertedError) as empty:
        node.call(entry_point, b"\xde\xad\xbe\xef")
    assert empty.value.data == b""
    assert empty.value.description == "(no revert data)"


def test_anvil_estimate_gas(node: Chain, anvil_entry_point: tuple[str, str]) -> None:
    entry_point, dev = anvil_entry_point
    assert node.estimate_gas({"from": dev, "to": STRANGER, "value": 1}) == 21_000
    with pytest.raises(CallRevertedError) as info:
        node.estimate_gas({"from": dev, "to": entry_point, "data": handle_ops_for(entry_point, dev)})
    assert info.value.method == "eth_estimateGas"
    assert info.value.description == "AA23 reverted: (no revert data)"


def test_anvil_reads_code_balance_and_old_blocks(
    node: Chain, anvil_url: str, anvil_entry_point: tuple[str, str]
) -> None:
    entry_point, dev = anvil_entry_point
    with JsonRpcClient(anvil_url) as rpc:
        assert node.get_code(entry_point) == bytes.fromhex(
            rpc.request("eth_getCode", [entry_point, "latest"])[2:]
        )
    assert len(node.get_code(entry_point)) == len(entry_point_artifact()["deployedBytecode"]) // 2 - 1
    assert node.get_code(STRANGER) == b""
    assert node.get_balance(dev) > 9_000 * 10**18
    # Before the deployment there was no code: the call returns nothing.
    assert node.call(entry_point, b"\x35\x56\x7e\x1e", block=0) == b""
    with pytest.raises(BadInputError, match="neither a block number"):
        node.call(entry_point, b"", block="newest")


def test_anvil_send_from_a_locked_account_is_a_json_rpc_error(node: Chain) -> None:
    with pytest.raises(JsonRpcError) as info:
        node.send_transaction({"from": STRANGER, "to": STRANGER, "value": 1})
    assert info.value.method == "eth_sendTransaction"
    assert "signer" in info.value.rpc_message.lower()


def test_unreachable_node_is_a_transport_error() -> None:
    from web3 import HTTPProvider, Web3

    url = closed_port_url()
    with pytest.raises(TransportError, match="cannot reach"):
        RpcChain(url, timeout=1.0).get_balance(STRANGER)
    with pytest.raises(TransportError, match="cannot reach the node for eth_getBalance"):
        Web3Chain(Web3(HTTPProvider(url, request_kwargs={"timeout": 1.0}))).get_balance(STRANGER)


# --------------------------------------------------------------------------------------------------
# Answers a node should never give
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def scripted_node() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("method", "answer", "expected"),
    [
        ("eth_chainId", "banana", "which is not a quantity"),
        ("eth_getBalance", None, "which is not a quantity"),
        ("eth_getCode", 12, "which is not 0x-hex data"),
        ("eth_getBlockByNumber", None, "which is not a block object"),
        ("eth_getBlockByNumber", {"number": "0x1"}, "a block with a timestamp quantity"),
    ],
)
def test_rpc_chain_refuses_malformed_answers(
    scripted_node: ScriptedServer, method: str, answer: Any, expected: str
) -> None:
    scripted_node.on(method, ok(answer))
    calls = {
        "eth_chainId": lambda c: c.chain_id(),
        "eth_getBalance": lambda c: c.get_balance(STRANGER),
        "eth_getCode": lambda c: c.get_code(STRANGER),
        "eth_getBlockByNumber": lambda c: c.block_timestamp(),
    }
    with RpcChain(scripted_node.url) as rpc_chain, pytest.raises(TransportError) as info:
        calls[method](rpc_chain)
    assert expected in str(info.value)
    assert "Ethereum node's JSON-RPC endpoint" in str(info.value)
    assert (info.value.method, info.value.url) == (method, scripted_node.url)


def test_rpc_chain_base_fee_is_zero_without_eip_1559(scripted_node: ScriptedServer) -> None:
    scripted_node.on("eth_getBlockByNumber", ok({"number": "0x1", "timestamp": "0x10"}))
    with RpcChain(scripted_node.url) as rpc_chain:
        assert rpc_chain.base_fee() == 0
        assert rpc_chain.block_timestamp() == 16


def test_rpc_chain_passes_other_node_errors_through(scripted_node: ScriptedServer) -> None:
    from test_bundler_client import fail

    scripted_node.on("eth_call", fail(-32005, "request rate exceeded"))
    with RpcChain(scripted_node.url) as rpc_chain, pytest.raises(JsonRpcError) as info:
        rpc_chain.call(STRANGER, b"")
    assert (info.value.code, info.value.rpc_message) == (-32005, "request rate exceeded")


def test_rpc_chain_decodes_revert_data_nested_in_an_object(scripted_node: ScriptedServer) -> None:
    from test_bundler_client import error_string, fail

    revert = error_string("not allowed")
    scripted_node.on(
        "eth_call", fail(-32603, "Error: VM Exception", {"message": "revert", "data": "0x" + revert.hex()})
    )
    with RpcChain(scripted_node.url) as rpc_chain, pytest.raises(CallRevertedError) as info:
        rpc_chain.call(STRANGER, b"")
    assert (info.value.data, info.value.description) == (revert, "not allowed")


def test_normalize_transaction() -> None:
    tx = normalize_transaction(
        {"from": STRANGER.lower(), "to": None, "input": "0x01", "value": "0x10", "gas": 5}
    )
    assert tx == {"from": STRANGER, "data": b"\x01", "value": 16, "gas": 5}
    with pytest.raises(BadInputError, match="unknown transaction field 'gasLimit'"):
        normalize_transaction({"gasLimit": 1})
    with pytest.raises(BadInputError):
        normalize_transaction({"value": -1})


# A contract whose every call logs one empty LOG0: init code copies the 6-byte runtime PUSH1 0 PUSH1 0 LOG0 STOP.
_LOGGER_INIT = "0x6006600c60003960066000f360006000a000"


class _RangeCappedProxy:
    """A JSON-RPC proxy in front of a real node that refuses ``eth_getLogs`` over more than ``max_blocks`` blocks,
    with the error public providers give (-32005), and records the ranges it was asked for."""

    def __init__(self, upstream: str, max_blocks: int) -> None:
        import http.server
        import json
        import threading
        import urllib.request

        proxy = self
        self.ranges: list[tuple[int, int]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer: Any = None
                if body.get("method") == "eth_getLogs":
                    query = body["params"][0]
                    latest = int(proxy._ask(upstream, "eth_blockNumber", []), 16)
                    start = int(query.get("fromBlock", "0x0"), 16)
                    end = latest if query.get("toBlock", "latest") == "latest" else int(query["toBlock"], 16)
                    proxy.ranges.append((start, end))
                    if end - start + 1 > max_blocks:
                        answer = {"jsonrpc": "2.0", "id": body["id"], "error": {
                            "code": -32005, "message": f"query exceeds max block range {max_blocks}"}}  # fmt: skip
                if answer is None:
                    request = urllib.request.Request(
                        upstream, json.dumps(body).encode(), {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(request, timeout=10) as response:
                        answer = json.loads(response.read())
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _ask(url: str, method: str, params: list[Any]) -> Any:
        with JsonRpcClient(url) as rpc:
            return rpc.request(method, params)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_dashboard_reads_logs_in_chunks_from_a_provider_that_caps_ranges(anvil_url: str) -> None:
    """A provider that refuses a whole-history eth_getLogs (as public RPCs do) still gives every log: the reader
    falls back to chunks, halving a chunk still refused; an error that is not about the range is not swallowed."""
    from keyscope.consent import sessions as dashboard_logs

    with JsonRpcClient(anvil_url) as rpc:
        dev = to_address(rpc.request("eth_accounts")[0])
        deployed = rpc.request(
            "eth_sendTransaction", [{"from": dev, "data": _LOGGER_INIT, "gas": hex(100_000)}]
        )
        receipt = None
        while receipt is None:  # mined at once, answered once the node has indexed it
            receipt = rpc.request("eth_getTransactionReceipt", [deployed])
        logger = to_address(receipt["contractAddress"])
        for _ in range(7):
            rpc.request("eth_sendTransaction", [{"from": dev, "to": logger, "gas": hex(50_000)}])
        rpc.request("evm_mine", [])
    query = {"address": logger, "fromBlock": "0x0", "toBlock": "latest", "topics": []}
    with RpcChain(anvil_url) as direct:
        expected = dashboard_logs._get_logs(direct, query)
    assert len(expected) == 7

    proxy = _RangeCappedProxy(anvil_url, max_blocks=3)
    old_chunk = dashboard_logs.LOG_CHUNK_BLOCKS
    dashboard_logs.LOG_CHUNK_BLOCKS = 8  # larger than the cap: the reader must halve it
    try:
        with RpcChain(proxy.url) as capped:
            assert dashboard_logs._get_logs(capped, query) == expected
        assert all(end - start + 1 <= 8 for start, end in proxy.ranges[1:])
        assert any(end - start + 1 == 2 for start, end in proxy.ranges)  # 8 -> 4 -> 2
        with RpcChain(proxy.url) as capped, pytest.raises(JsonRpcError):
            dashboard_logs._get_logs(capped, {**query, "address": "not an address"})
    finally:
        dashboard_logs.LOG_CHUNK_BLOCKS = old_chunk
        proxy.stop()


def test_optional_calls_ride_in_the_batch_and_a_failure_is_no_answer(anvil_url: str) -> None:
    """``read_many``'s optional questions (asked of contracts that may not implement them) go in the same JSON-RPC
    batch as its calls; one that reverts, or asks an address without code, reads ``b""``, on the batching
    ``RpcChain`` and one call at a time alike, while a call that reverts still raises."""
    from keyscope.chain import read_many

    client = JsonRpcClient(anvil_url)
    reverts, answers = to_address("0x" + "b1" * 20), to_address("0x" + "b2" * 20)
    client.request("anvil_setCode", [reverts, "0x5f5ffd"])  # PUSH0 PUSH0 REVERT
    client.request("anvil_setCode", [answers, "0x60016000526020" + "6000f3"])  # return the word 1
    empty = to_address("0x" + "b3" * 20)
    one = (1).to_bytes(32, "big")
    with RpcChain(anvil_url) as node:
        for chain in (node, _OneByOne(node)):
            read = read_many(
                chain, [(answers, b"\x01")], optional=[(reverts, b"\x02"), (answers, b""), (empty, b"")]
            )
            assert read.results == [one, b"", one, b""]
            with pytest.raises(CallRevertedError):
                read_many(chain, [(reverts, b"\x01")], optional=[(answers, b"")])


class _OneByOne:
    """A chain that cannot batch: ``read_many`` asks it one call at a time."""

    def __init__(self, inner: RpcChain) -> None:
        self._inner = inner

    def call(self, to: str, data: bytes) -> bytes:
        return self._inner.call(to, data)

    def get_code(self, address: str) -> bytes:
        return self._inner.get_code(address)


def test_a_node_refusing_an_optional_call_is_not_taken_for_no_answer() -> None:
    """A hosted node may refuse one request of a batch itself (a rate limit): that is no answer of the called code,
    and ``read_many`` raises it rather than reading ``b""`` (the attack-266 question would then pass for a no)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from keyscope.chain import read_many

    class Batch(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            requests = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answers = [{"jsonrpc": "2.0", "id": requests[0]["id"], "result": "0x" + "00" * 31 + "01"}]
            answers += [
                {"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32005, "message": "limit exceeded"}}
                for r in requests[1:]
            ]
            body = json.dumps(answers).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Batch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with (
            RpcChain(f"http://127.0.0.1:{server.server_address[1]}") as node,
            pytest.raises(JsonRpcError, match="limit exceeded"),
        ):
            read_many(node, [("0x" + "b1" * 20, b"\x01")], optional=[("0x" + "b2" * 20, b"\x02")])
    finally:
        server.shutdown()
        server.server_close()
