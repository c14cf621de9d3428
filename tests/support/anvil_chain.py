"""A fresh anvil for one test file's generated cases: the contracts ape compiled from ``contracts/``, deployed on
a real node whose EVM runs them natively.

The differential and stateful tests ask the module thousands of questions (a ``validateUserOp``, a view, a grant),
and py-evm, which runs EVM bytecode in Python, spent most of their time running them. On anvil each question is
one JSON-RPC round trip of well under a millisecond of this process's time, so the same examples run in a fraction
of the time. The bytecode is ape's own build of the sources (a changed contract is what these tests judge, as on
py-evm); the rest of the suite stays on ape's py-evm chain.

Each file gets its own node (started on a port the kernel picks, stopped by PID), its development accounts
unlocked: a transaction is an ``eth_sendTransaction`` and an ``evm_mine``, which answers once its block is mined.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ape import networks
from ape.types import AddressType

from keyscope.hexutil import to_address
from keyscope.local.anvil import AnvilConfig, start_anvil
from keyscope.local.processes import ManagedProcess
from keyscope.rpc import JsonRpcError

__all__ = ["AnvilChain", "AnvilContract", "NodeConnection", "TransactionFailedError", "anvil_chain"]

GAS = 30_000_000


class TransactionFailedError(AssertionError):
    """A transaction the test meant to succeed reverted: its receipt says where."""


class NodeConnection:
    """The harness's own JSON-RPC requests to the file's anvil (``request``, ``close``), on one kept-alive
    connection of the standard library's HTTP client: a generated test asks the node thousands of questions, and
    this costs a third of the test process's time per request that keyscope's client (httpx) does. An error
    answer raises :class:`~keyscope.rpc.JsonRpcError` with the node's code, message and data, as keyscope's client
    raises it; the SDK under test keeps its own client."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        host, _, port = url.split("//", 1)[1].rstrip("/").partition(":")
        self._host, self._port, self._timeout = host, int(port), timeout
        self._connection: http.client.HTTPConnection | None = None
        self._id = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            connection.connect()
            assert connection.sock is not None
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        """Call ``method`` and return its ``result``."""
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or []})
        reused = self._connection is not None
        try:
            connection = self._connect()
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            answer = connection.getresponse().read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.close()
            if not reused:
                raise
            # the node closed a kept-alive connection before reading the request: send it on a new one
            connection = self._connect()
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            answer = connection.getresponse().read()
        reply = json.loads(answer)
        error = reply.get("error")
        if error is not None:
            raise JsonRpcError(
                method,
                int(error.get("code", 0)),
                str(error.get("message", "")),
                error.get("data"),
                url=self.url,
            )
        return reply["result"]


class AnvilChain:
    """One running anvil: ``call`` (a bare ``eth_call``, raising :class:`~keyscope.rpc.JsonRpcError` with the
    revert data), ``send`` (a transaction from an unlocked development account that must succeed) and
    ``deploy`` (an ape contract container's bytecode)."""

    def __init__(self, process: ManagedProcess, url: str) -> None:
        self.process = process
        self.url = url
        self.rpc = NodeConnection(url, timeout=60.0)
        self.chain_id = int(self.rpc.request("eth_chainId"), 16)
        self.accounts: list[str] = [to_address(a) for a in self.rpc.request("eth_accounts")]

    def stop(self) -> None:
        """Close the client and stop the node."""
        self.rpc.close()
        self.process.stop()

    def call(self, tx: dict[str, Any]) -> str:
        """``eth_call`` of ``tx`` (``gas`` as an int or hex) at the latest block: the output as hex."""
        request = {key: hex(value) if isinstance(value, int) else value for key, value in tx.items()}
        result: str = self.rpc.request("eth_call", [request, "latest"])
        return result

    def send(
        self, sender: str, to: str | None, data: bytes, *, value: int = 0, gas: int = GAS
    ) -> dict[str, Any]:
        """Send ``data`` from ``sender`` (a development account) and return its receipt, which must show success."""
        tx: dict[str, Any] = {
            "from": sender,
            "data": "0x" + bytes(data).hex(),
            "gas": hex(gas),
            "value": hex(value),
        }
        if to is not None:
            tx["to"] = to
        tx_hash = self.rpc.request("eth_sendTransaction", [tx])
        self.rpc.request("evm_mine")  # answers once the block is mined (anvil's automine would answer before)
        receipt: dict[str, Any] = self.rpc.request("eth_getTransactionReceipt", [tx_hash])
        if receipt is None or receipt.get("status") != "0x1":
            raise TransactionFailedError(
                f"the transaction to {to} with data 0x{bytes(data).hex()} failed: {receipt}"
            )
        return receipt

    def deploy(self, container: Any, *args: Any, sender: str | None = None, value: int = 0) -> AnvilContract:
        """Deploy ape's build of ``container`` (``project.Name``) with constructor ``args``."""
        contract_type = container.contract_type
        bytecode = bytes(contract_type.deployment_bytecode.to_bytes())
        constructor = contract_type.constructor
        ecosystem = networks.ethereum
        code = bytecode + (
            bytes(ecosystem.encode_calldata(constructor, *args)) if constructor.inputs else b""
        )
        receipt = self.send(sender or self.accounts[0], None, code, value=value)
        return AnvilContract(self, to_address(receipt["contractAddress"]), contract_type)


class _Method:
    def __init__(self, contract: AnvilContract, name: str, abis: Sequence[Any]) -> None:
        self._contract = contract
        self._name = name
        self._abis = abis

    def _abi(self, args: Sequence[Any]) -> Any:
        fitting = [abi for abi in self._abis if len(abi.inputs) == len(args)]
        if len(fitting) != 1:
            raise TypeError(
                f"{self._name} has {len(fitting)} forms taking {len(args)} arguments: pick by selector"
            )
        return fitting[0]

    def encode_input(self, *args: Any) -> bytes:
        """The call's calldata: selector and ABI-encoded ``args``, as ape encodes them."""
        abi = self._abi(args)
        ecosystem = networks.ethereum
        return bytes(ecosystem.get_method_selector(abi)) + bytes(ecosystem.encode_calldata(abi, *args))

    def __call__(self, *args: Any, sender: str | None = None) -> Any:
        """A view's answer (one output as itself, several as a tuple), asked by ``sender`` if given."""
        abi = self._abi(args)
        tx: dict[str, Any] = {"to": self._contract.address, "data": "0x" + self.encode_input(*args).hex()}
        if sender is not None:
            tx["from"] = sender
        output = self._contract.chain.call(tx)
        decoded = networks.ethereum.decode_returndata(abi, bytes.fromhex(output[2:]))
        return decoded[0] if len(decoded) == 1 else decoded

    def transact(self, *args: Any, sender: str, value: int = 0) -> dict[str, Any]:
        """Send the call from ``sender`` (a development account); its receipt must show success."""
        return self._contract.chain.send(
            sender, self._contract.address, self.encode_input(*args), value=value
        )


class AnvilContract:
    """A deployed contract: ``address``, and each function by name with ``encode_input``, a view call
    (``contract.fn(*args)``) and ``transact``."""

    def __init__(self, chain: AnvilChain, address: str, contract_type: Any) -> None:
        self.chain = chain
        self.address: AddressType = address
        self._methods: dict[str, list[Any]] = {}
        for abi in [*contract_type.view_methods, *contract_type.mutable_methods]:
            self._methods.setdefault(abi.name, []).append(abi)

    def __getattr__(self, name: str) -> _Method:
        methods = self.__dict__.get("_methods", {})
        if name not in methods:
            raise AttributeError(f"the contract at {self.__dict__.get('address')} has no function {name!r}")
        return _Method(self, name, methods[name])

    def __str__(self) -> str:
        return str(self.address)


@contextmanager
def anvil_chain(extra_args: Sequence[str] = ()) -> Iterator[AnvilChain]:
    """A fresh anvil for one test file: started on a free port, stopped when the block ends, its log (the names of
    the requests it served; a failed start reports the log's tail) removed with it."""
    log_dir = Path(tempfile.mkdtemp(prefix="keyscope-anvil-"))
    try:
        config = AnvilConfig(extra_args=("--no-mining", *extra_args))
        process, url = start_anvil(config, log_dir / "anvil.log")
        chain = AnvilChain(process, url)
        try:
            yield chain
        finally:
            chain.stop()
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
