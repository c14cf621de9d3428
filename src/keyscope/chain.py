"""What keyscope needs from an Ethereum node, behind one small interface: :class:`Chain`.

Two implementations raise the same errors:

* :class:`RpcChain` talks JSON-RPC to a node URL through :class:`~keyscope.rpc.JsonRpcClient`;
* :class:`Web3Chain` wraps any web3.py ``Web3`` object (for example ape's ``chain.provider.web3`` under
  ``ape test``), without importing web3 itself.

A reverting ``call`` or ``estimate_gas`` raises :class:`~keyscope.errors.CallRevertedError` carrying the
revert data and its decoded description; an unreachable node raises
:class:`~keyscope.errors.TransportError`; any other JSON-RPC error raises :class:`~keyscope.rpc.JsonRpcError`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol, runtime_checkable

from .entrypoint import encode_get_nonce
from .errors import BadInputError, CallRevertedError, ConfigurationError, TransportError, shown
from .hexutil import to_address, to_bytes, to_int
from .revert import describe_revert
from .rpc import JsonRpcClient, JsonRpcError

__all__ = [
    "BlockId",
    "Chain",
    "Reads",
    "RpcChain",
    "Web3Chain",
    "call_creation_code",
    "node_request",
    "normalize_transaction",
    "read_many",
    "state_overrides",
]

BlockId = str | int
"""A block tag ("latest", "pending", "safe", "finalized", "earliest") or a block number."""

_BLOCK_TAGS = frozenset({"latest", "pending", "safe", "finalized", "earliest"})
_ADDRESS_FIELDS = ("from", "to")
_QUANTITY_FIELDS = ("value", "gas", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "chainId")


@runtime_checkable
class Chain(Protocol):
    """The node access keyscope needs. Implementations: :class:`RpcChain`, :class:`Web3Chain`."""

    def chain_id(self) -> int:
        """The chain id (cached after the first query)."""
        ...

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: BlockId = "latest") -> bytes:
        """``eth_call``: the return data; a revert raises :class:`~keyscope.errors.CallRevertedError`."""
        ...

    def get_code(self, address: str) -> bytes:
        """The code deployed at ``address`` (empty for an account without code)."""
        ...

    def get_balance(self, address: str) -> int:
        """The balance of ``address`` in wei."""
        ...

    def block_timestamp(self) -> int:
        """The timestamp of the latest block, in seconds."""
        ...

    def base_fee(self) -> int:
        """The latest block's ``baseFeePerGas`` in wei (0 on a chain without EIP-1559)."""
        ...

    def max_priority_fee(self) -> int:
        """The node's suggested priority fee (``eth_maxPriorityFeePerGas``) in wei."""
        ...

    def estimate_gas(self, tx: Mapping[str, Any]) -> int:
        """``eth_estimateGas`` of a transaction with JSON-RPC field names (``from``, ``to``, ``data``...)."""
        ...

    def get_nonce(self, entry_point: str, sender: str, key: int = 0) -> int:
        """``EntryPoint.getNonce(sender, key)``: the next nonce of ``sender`` in lane ``key``."""
        ...

    def send_transaction(self, tx: Mapping[str, Any]) -> bytes:
        """``eth_sendTransaction`` from an account the node unlocks (anvil's dev accounts); the tx hash."""
        ...


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def normalize_transaction(tx: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a transaction given with JSON-RPC field names: checksummed addresses, int quantities and
    ``data`` as bytes (``input`` is accepted for ``data``). Unknown fields are an error."""
    out: dict[str, Any] = {}
    for key, value in tx.items():
        if value is None:
            continue
        if key in _ADDRESS_FIELDS:
            out[key] = to_address(value, name=key)
        elif key in _QUANTITY_FIELDS:
            out[key] = to_int(value, name=key)
        elif key in ("data", "input"):
            out["data"] = to_bytes(value, name=key)
        else:
            known = ", ".join((*_ADDRESS_FIELDS, *_QUANTITY_FIELDS, "data"))
            raise BadInputError(f"unknown transaction field {shown(key)}: use the JSON-RPC names ({known})")
    return out


def _check_block(block: BlockId) -> BlockId:
    valid_number = isinstance(block, int) and not isinstance(block, bool) and block >= 0
    if not valid_number and not (isinstance(block, str) and block in _BLOCK_TAGS):
        raise BadInputError(
            f"block {shown(block)} is neither a block number nor one of {', '.join(sorted(_BLOCK_TAGS))}"
        )
    return block


def _revert_error(method: str, to: str | None, data: bytes) -> CallRevertedError:
    return CallRevertedError(method, to, data, describe_revert(data))


def _nonce_from(result: bytes, entry_point: str) -> int:
    if len(result) < 32:
        raise ConfigurationError(
            f"EntryPoint.getNonce at {entry_point} returned {len(result)} bytes instead of a uint256: is an "
            "EntryPoint deployed at that address on this chain?"
        )
    return int.from_bytes(result[:32], "big")


def _hex_bytes(value: object) -> bytes | None:
    """Bytes of a 0x-hex string (or of a ``{"data": "0x..."}`` wrapper some nodes use), else None."""
    if isinstance(value, Mapping):
        value = value.get("data")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value.startswith(("0x", "0X")):
        try:
            return to_bytes(value)
        except BadInputError:
            return None
    return None


# --------------------------------------------------------------------------------------------------
# JSON-RPC
# --------------------------------------------------------------------------------------------------


def _rpc_revert_data(error: JsonRpcError) -> bytes | None:
    """The revert data of a JSON-RPC error from ``eth_call``/``eth_estimateGas``, or None if it is no revert.

    geth and anvil answer code 3 with the data as a hex string; other nodes nest it in an object, or give
    code -32000/-32603 with "revert" in the message.
    """
    data = _hex_bytes(error.data)
    if data is not None:
        return data
    if error.code == 3 or "revert" in error.rpc_message.lower():
        return b""
    return None


_HALTS = ("out of gas", "outofgas", "invalid opcode", "invalidfeopcode", "opcodenotfound", "stack underflow")
"""How nodes word an ``eth_call`` whose code halted without reverting (all its gas burnt, ``INVALID``)."""


def is_no_answer(error: JsonRpcError) -> bool:
    """Whether ``error``, a node's answer to an ``eth_call``, is the called code's failing to answer (a revert, or
    its code halting: all its gas burnt); a node's own refusal (a rate limit, a bad request) is not."""
    return _rpc_revert_data(error) is not None or any(h in error.rpc_message.lower() for h in _HALTS)


@contextmanager
def _reverts(method: str, to: str | None) -> Iterator[None]:
    """A JSON-RPC error that carries revert data becomes :class:`~keyscope.errors.CallRevertedError`; any other
    passes through."""
    try:
        yield
    except JsonRpcError as exc:
        revert = _rpc_revert_data(exc)
        if revert is None:
            raise
        raise _revert_error(method, to, revert) from exc


class RpcChain:
    """:class:`Chain` over JSON-RPC to ``url``; ``timeout`` bounds each request in seconds."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.client = JsonRpcClient(url, timeout=timeout, service="node")
        self.url = url
        self._chain_id: int | None = None

    def __repr__(self) -> str:
        return f"RpcChain({self.client.shown_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    def __enter__(self) -> RpcChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- result parsing ------------------------------------------------------------------------------

    def _malformed(self, method: str, result: object, expected: str) -> TransportError:
        return TransportError(
            f"{self.client.shown_url} answered {method} with {str(result)[:200]!r}, which is not {expected}: is this URL "
            "an Ethereum node's JSON-RPC endpoint?",
            url=self.client.shown_url,
            method=method,
        )

    def _quantity(self, method: str, params: list[Any]) -> int:
        result = self.client.request(method, params)
        if not isinstance(result, (str, int)) or isinstance(result, bool):
            raise self._malformed(method, result, "a quantity")
        try:
            return to_int(result, name=method)
        except BadInputError:
            raise self._malformed(method, result, "a quantity") from None

    def _data(self, method: str, result: object) -> bytes:
        if not isinstance(result, str):
            raise self._malformed(method, result, "0x-hex data")
        try:
            return to_bytes(result, name=method)
        except BadInputError:
            raise self._malformed(method, result, "0x-hex data") from None

    def _latest_block(self) -> Mapping[str, Any]:
        method = "eth_getBlockByNumber"
        block = self.client.request(method, ["latest", False])
        if not isinstance(block, Mapping):
            raise self._malformed(method, block, "a block object")
        return block

    def _block_field(self, name: str, *, default: int | None = None) -> int:
        block = self._latest_block()
        value = block.get(name)
        if value is None and default is not None:
            return default
        try:
            return to_int(value, name=name)
        except BadInputError:
            raise self._malformed("eth_getBlockByNumber", block, f"a block with a {name} quantity") from None

    @staticmethod
    def _rpc_tx(tx: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in normalize_transaction(tx).items():
            if isinstance(value, bytes):
                out[key] = "0x" + value.hex()
            elif isinstance(value, int):
                out[key] = hex(value)
            else:
                out[key] = value
        return out

    @staticmethod
    def _rpc_block(block: BlockId) -> str:
        block = _check_block(block)
        return hex(block) if isinstance(block, int) else block

    # -- Chain ---------------------------------------------------------------------------------------

    def chain_id(self) -> int:
        """``eth_chainId``, cached."""
        if self._chain_id is None:
            self._chain_id = self._quantity("eth_chainId", [])
        return self._chain_id

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: BlockId = "latest") -> bytes:
        """``eth_call``; a revert raises :class:`~keyscope.errors.CallRevertedError` with the revert data."""
        method = "eth_call"
        tx: dict[str, Any] = {"to": to, "data": data}
        if sender is not None:
            tx["from"] = sender
        params = [self._rpc_tx(tx), self._rpc_block(block)]
        with _reverts(method, to_address(to)):
            result = self.client.request(method, params)
        return self._data(method, result)

    def call_with_code(
        self,
        to: str,
        data: bytes,
        codes: Mapping[str, bytes],
        *,
        sender: str | None = None,
        storage: Mapping[str, Mapping[int, int]] | None = None,
    ) -> bytes:
        """``eth_call`` at the latest block with ``codes`` (address to runtime code) in place of the code at those
        addresses, and ``storage`` (address to slot to word) in place of those storage words, the rest of each
        address's storage kept, for this one call (the state override set of geth, anvil and most providers: its
        ``code`` and ``stateDiff``); a revert raises :class:`~keyscope.errors.CallRevertedError`. A node without
        state overrides refuses the call or ignores them: callers check that the override took."""
        method = "eth_call"
        tx: dict[str, Any] = {"to": to, "data": data}
        if sender is not None:
            tx["from"] = sender
        params = [self._rpc_tx(tx), "latest", state_overrides(codes, storage)]
        with _reverts(method, to_address(to)):
            result = self.client.request(method, params)
        return self._data(method, result)

    def call_creation(self, code: bytes) -> bytes:
        """``eth_call`` of creation ``code`` (no ``to``): its constructor's return data (see
        :func:`call_creation_code`)."""
        method = "eth_call"
        with _reverts(method, None):
            result = self.client.request(method, [self._rpc_tx({"data": code}), "latest"])
        return self._data(method, result)

    def read_many(
        self,
        calls: Sequence[tuple[str, bytes]] = (),
        *,
        codes: Sequence[str] = (),
        timestamp: bool = False,
        optional: Sequence[tuple[str, bytes]] = (),
    ) -> Reads:
        """Several ``eth_call``s, ``eth_getCode``s and the latest block's timestamp in one JSON-RPC batch round
        trip (see :func:`read_many`)."""
        every = [*calls, *optional]
        requests: list[tuple[str, list[Any]]] = [
            ("eth_call", [self._rpc_tx({"to": to, "data": data}), "latest"]) for to, data in every
        ]
        requests.extend(("eth_getCode", [to_address(address), "latest"]) for address in codes)
        if timestamp:
            requests.append(("eth_getBlockByNumber", ["latest", False]))
        with _reverts("eth_call", None):
            results = self.client.batch(requests, settled=bool(optional))
            # an optional call whose code fails is no answer; any other failure raises
            for index, result in enumerate(results):
                optional_call = len(calls) <= index < len(every)
                if isinstance(result, JsonRpcError) and not (optional_call and is_no_answer(result)):
                    raise result
        data = [
            b"" if isinstance(result, JsonRpcError) else self._data("eth_call", result)
            for result in results[: len(every)]
        ]
        code = [self._data("eth_getCode", result) for result in results[len(every) : len(every) + len(codes)]]
        if not timestamp:
            return Reads(data, code, None)
        block = results[-1]
        if not isinstance(block, Mapping):
            raise self._malformed("eth_getBlockByNumber", block, "a block object")
        try:
            return Reads(data, code, to_int(block.get("timestamp"), name="timestamp"))
        except BadInputError:
            raise self._malformed("eth_getBlockByNumber", block, "a block with a timestamp") from None

    def get_code(self, address: str) -> bytes:
        """``eth_getCode`` at the latest block."""
        method = "eth_getCode"
        return self._data(method, self.client.request(method, [to_address(address), "latest"]))

    def get_balance(self, address: str) -> int:
        """``eth_getBalance`` at the latest block, in wei."""
        return self._quantity("eth_getBalance", [to_address(address), "latest"])

    def block_timestamp(self) -> int:
        """The latest block's timestamp."""
        return self._block_field("timestamp")

    def base_fee(self) -> int:
        """The latest block's ``baseFeePerGas`` (0 when the chain has no base fee)."""
        return self._block_field("baseFeePerGas", default=0)

    def max_priority_fee(self) -> int:
        """``eth_maxPriorityFeePerGas``."""
        return self._quantity("eth_maxPriorityFeePerGas", [])

    def estimate_gas(self, tx: Mapping[str, Any]) -> int:
        """``eth_estimateGas``; a revert raises :class:`~keyscope.errors.CallRevertedError`."""
        method = "eth_estimateGas"
        params = [self._rpc_tx(tx)]
        with _reverts(method, params[0].get("to")):
            return self._quantity(method, params)

    def get_nonce(self, entry_point: str, sender: str, key: int = 0) -> int:
        """``EntryPoint.getNonce(sender, key)`` through ``eth_call``."""
        return _nonce_from(self.call(entry_point, encode_get_nonce(to_address(sender), key)), entry_point)

    def request(self, method: str, params: list[Any]) -> Any:
        """Any JSON-RPC ``method`` with ``params`` as they go on the wire; the ``result``. For what the
        :class:`Chain` methods do not cover (see :func:`node_request`)."""
        return self.client.request(method, params)

    def get_logs(self, query: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """``eth_getLogs`` of ``query`` (a filter as it goes on the wire: hex block numbers or tags, hex topics,
        ``None`` for any topic, a list for any of several); the logs as the node answers them."""
        result = self.client.request("eth_getLogs", [dict(query)])
        if not isinstance(result, list) or not all(isinstance(log, Mapping) for log in result):
            raise self._malformed("eth_getLogs", result, "a list of logs")
        return result

    def block_number(self) -> int:
        """The latest block's number (``eth_blockNumber``)."""
        return self._quantity("eth_blockNumber", [])

    def transaction_receipt(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        """``eth_getTransactionReceipt`` of ``tx_hash`` as the node answers it (quantities and data as hex text);
        None while the node has no such transaction."""
        result = self.client.request("eth_getTransactionReceipt", ["0x" + bytes(tx_hash).hex()])
        if result is not None and not isinstance(result, Mapping):
            raise self._malformed("eth_getTransactionReceipt", result, "a transaction receipt or null")
        return result

    def send_transaction(self, tx: Mapping[str, Any]) -> bytes:
        """``eth_sendTransaction``; the node must unlock ``tx["from"]`` (anvil does for its dev accounts)."""
        method = "eth_sendTransaction"
        params = [self._rpc_tx(tx)]
        with _reverts(method, params[0].get("to")):
            result = self.client.request(method, params)
        tx_hash = self._data(method, result)
        if len(tx_hash) != 32:
            raise self._malformed(method, result, "a 32-byte transaction hash")
        return tx_hash


# --------------------------------------------------------------------------------------------------
# web3.py
# --------------------------------------------------------------------------------------------------

_BYTES_IN_MESSAGE = re.compile(r"""reverted:?\s*(b(['"]).*\2)\s*$""", re.S)


def _web3_revert_data(exc: BaseException) -> bytes | None:
    """Revert data from a web3.py contract error (``.data``) or an eth-tester ``TransactionFailed``
    (``execution reverted: b'...'``); None when ``exc`` is no revert."""
    data = _hex_bytes(getattr(exc, "data", None))
    if data is not None:
        return data
    names = {cls.__name__ for cls in type(exc).__mro__}
    if not names & {"ContractLogicError", "TransactionFailed"}:
        return None
    for arg in exc.args:
        if isinstance(arg, (bytes, bytearray)):
            return bytes(arg)
        if isinstance(arg, str) and (match := _BYTES_IN_MESSAGE.search(arg)):
            try:
                value = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, bytes):
                return value
    return b""


def _web3_rpc_error(method: str, exc: BaseException) -> JsonRpcError | None:
    response = getattr(exc, "rpc_response", None)
    if not isinstance(response, Mapping) or not isinstance(response.get("error"), Mapping):
        return None
    error = response["error"]
    code = error.get("code", 0)
    return JsonRpcError(
        method, code if isinstance(code, int) else 0, str(error.get("message", "")), error.get("data")
    )


def _refused_by_the_node(exc: BaseException) -> bool:
    """Whether ``exc`` is py-evm's refusal of a transaction or call as invalid (``eth_utils.ValidationError``)."""
    return any(
        cls.__name__ == "ValidationError" and cls.__module__.startswith("eth_utils")
        for cls in type(exc).__mro__
    )


class Web3Chain:
    """:class:`Chain` over a web3.py ``Web3`` object (duck-typed: web3 is not imported here).

    Under ``ape test``: ``Web3Chain(chain.provider.web3)``.
    """

    def __init__(self, w3: Any) -> None:
        self.w3 = w3
        self._chain_id: int | None = None
        self._tester_sender: str | None = None

    def _sender_filled(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the sender web3 would fill in anyway. web3's tester provider (ape's local chain) gives a
        call or an estimate that names no sender its first account, and asks for the account list three times on
        every such call (about 2 ms of CPU each time); that account is looked up once here instead. A node's
        provider fills in nothing, and nothing is added for it."""
        if params.get("from") is not None or getattr(self.w3.provider, "ethereum_tester", None) is None:
            return params
        if self._tester_sender is None:
            accounts = self.w3.eth.accounts
            if not accounts:
                return params
            self._tester_sender = str(accounts[0])
        return {**params, "from": self._tester_sender}

    def __repr__(self) -> str:
        return f"Web3Chain({self.w3!r})"

    @contextmanager
    def _errors(self, method: str, to: str | None = None) -> Iterator[None]:
        """Turn web3.py, eth-tester and connection exceptions into keyscope errors."""
        try:
            yield
        except (CallRevertedError, BadInputError, TransportError, JsonRpcError):
            raise
        except Exception as exc:
            revert = _web3_revert_data(exc)
            if revert is not None:
                raise _revert_error(method, to, revert) from exc
            rpc_error = _web3_rpc_error(method, exc)
            if rpc_error is not None:
                raise rpc_error from exc
            if _refused_by_the_node(exc):
                # py-evm (ape's local chain) refuses what a JSON-RPC node refuses with an error answer, e.g. a
                # sender that cannot pay for the call's gas: the same error type as from a node URL
                raise JsonRpcError(method, -32000, str(exc)) from exc
            names = {cls.__name__ for cls in type(exc).__mro__}
            if isinstance(exc, (OSError, TimeoutError)) or "ProviderConnectionError" in names:
                raise TransportError(
                    f"cannot reach the node for {method} ({type(exc).__name__}: {exc}): check that it runs",
                    method=method,
                ) from exc
            raise

    @staticmethod
    def _web3_tx(tx: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: "0x" + value.hex() if isinstance(value, bytes) else value
            for key, value in normalize_transaction(tx).items()
        }

    def _latest_block(self) -> Mapping[str, Any]:
        with self._errors("eth_getBlockByNumber"):
            block: Mapping[str, Any] = self.w3.eth.get_block("latest")
        return block

    # -- Chain ---------------------------------------------------------------------------------------

    def chain_id(self) -> int:
        """``w3.eth.chain_id``, cached."""
        if self._chain_id is None:
            with self._errors("eth_chainId"):
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: BlockId = "latest") -> bytes:
        """``eth_call``; a revert raises :class:`~keyscope.errors.CallRevertedError` with the revert data."""
        target = to_address(to)
        tx: dict[str, Any] = {"to": target, "data": data}
        if sender is not None:
            tx["from"] = sender
        params = self._sender_filled(self._web3_tx(tx))
        with self._errors("eth_call", target):
            return bytes(self.w3.eth.call(params, _check_block(block)))

    def call_with_code(
        self,
        to: str,
        data: bytes,
        codes: Mapping[str, bytes],
        *,
        sender: str | None = None,
        storage: Mapping[str, Mapping[int, int]] | None = None,
    ) -> bytes:
        """``eth_call`` at the latest block with ``codes`` (address to runtime code) in place of the code at those
        addresses and ``storage`` in place of those storage words (see :meth:`RpcChain.call_with_code`; a provider
        without state overrides may ignore them)."""
        target = to_address(to)
        tx: dict[str, Any] = {"to": target, "data": data}
        if sender is not None:
            tx["from"] = sender
        params = self._sender_filled(self._web3_tx(tx))
        overrides: Any = state_overrides(codes, storage)
        with self._errors("eth_call", target):
            return bytes(self.w3.eth.call(params, "latest", overrides))

    def call_creation(self, code: bytes) -> bytes:
        """``eth_call`` of creation ``code`` (no ``to``): its constructor's return data (see
        :func:`call_creation_code`)."""
        params = self._sender_filled(self._web3_tx({"data": code}))
        with self._errors("eth_call"):
            return bytes(self.w3.eth.call(params))

    def get_code(self, address: str) -> bytes:
        """``eth_getCode`` at the latest block."""
        with self._errors("eth_getCode"):
            return bytes(self.w3.eth.get_code(to_address(address)))

    def get_balance(self, address: str) -> int:
        """``eth_getBalance`` at the latest block, in wei."""
        with self._errors("eth_getBalance"):
            return int(self.w3.eth.get_balance(to_address(address)))

    def block_timestamp(self) -> int:
        """The latest block's timestamp."""
        return int(self._latest_block()["timestamp"])

    def base_fee(self) -> int:
        """The latest block's ``baseFeePerGas`` (0 when the chain has no base fee)."""
        return int(self._latest_block().get("baseFeePerGas") or 0)

    def max_priority_fee(self) -> int:
        """``w3.eth.max_priority_fee``."""
        with self._errors("eth_maxPriorityFeePerGas"):
            return int(self.w3.eth.max_priority_fee)

    def estimate_gas(self, tx: Mapping[str, Any]) -> int:
        """``eth_estimateGas``; a revert raises :class:`~keyscope.errors.CallRevertedError`."""
        params = self._sender_filled(self._web3_tx(tx))
        with self._errors("eth_estimateGas", params.get("to")):
            return int(self.w3.eth.estimate_gas(params))

    def get_nonce(self, entry_point: str, sender: str, key: int = 0) -> int:
        """``EntryPoint.getNonce(sender, key)`` through ``eth_call``."""
        return _nonce_from(self.call(entry_point, encode_get_nonce(to_address(sender), key)), entry_point)

    def get_logs(self, query: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """``w3.eth.get_logs`` of ``query`` (a filter as it goes on the wire; hex block numbers are given to web3.py
        as numbers), each log as a dict: through web3.py's API rather than the raw request, which some providers
        (eth-tester, under ``ape test``) do not take in the wire's shape."""
        params = {
            key: int(value, 16) if key in ("fromBlock", "toBlock") and str(value).startswith("0x") else value
            for key, value in query.items()
        }
        with self._errors("eth_getLogs"):
            return [dict(log) for log in self.w3.eth.get_logs(params)]

    def block_number(self) -> int:
        """The latest block's number."""
        with self._errors("eth_blockNumber"):
            return int(self.w3.eth.block_number)

    def request(self, method: str, params: list[Any]) -> Any:
        """Any JSON-RPC ``method`` through the provider (``make_request``); the ``result``, or
        :class:`~keyscope.rpc.JsonRpcError` for an error answer."""
        with self._errors(method):
            response = self.w3.provider.make_request(method, params)
        error = response.get("error") if isinstance(response, Mapping) else None
        if error:
            raise JsonRpcError(
                method, int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
            )
        return response.get("result") if isinstance(response, Mapping) else None

    def transaction_receipt(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        """``w3.eth.get_transaction_receipt`` of ``tx_hash`` (quantities as ints, data as bytes, logs as dicts);
        None while the node has no such transaction. Through web3.py's API rather than the raw request, whose
        answer some providers (eth-tester, under ``ape test``) give in their own shape."""
        with self._errors("eth_getTransactionReceipt"):
            try:
                receipt = self.w3.eth.get_transaction_receipt("0x" + bytes(tx_hash).hex())
            except Exception as exc:
                if "TransactionNotFound" in {cls.__name__ for cls in type(exc).__mro__}:
                    return None
                raise
        if receipt is None:
            return None
        found = dict(receipt)
        found["logs"] = [dict(log) for log in found.get("logs") or []]
        return found

    def send_transaction(self, tx: Mapping[str, Any]) -> bytes:
        """``w3.eth.send_transaction`` (the provider must be able to sign for ``tx["from"]``)."""
        params = self._web3_tx(tx)
        with self._errors("eth_sendTransaction", params.get("to")):
            return bytes(self.w3.eth.send_transaction(params))


class Reads(NamedTuple):
    """What :func:`read_many` read: the ``eth_call`` results and the codes, in the order asked, and the latest
    block's timestamp (None when it was not asked)."""

    results: list[bytes]
    codes: list[bytes]
    timestamp: int | None


def state_overrides(
    codes: Mapping[str, bytes], storage: Mapping[str, Mapping[int, int]] | None = None
) -> dict[str, dict[str, Any]]:
    """An ``eth_call``'s state override set: ``codes`` (address to runtime code) as each address's ``code``,
    ``storage`` (address to slot to word) as its ``stateDiff`` (those words replaced, the rest of its storage
    kept), slots and words as 32-byte hex."""
    overrides: dict[str, dict[str, Any]] = {
        to_address(address): {"code": "0x" + code.hex()} for address, code in codes.items()
    }
    for address, words in (storage or {}).items():
        overrides.setdefault(to_address(address), {})["stateDiff"] = {
            "0x" + slot.to_bytes(32, "big").hex(): "0x" + word.to_bytes(32, "big").hex()
            for slot, word in words.items()
        }
    return overrides


def node_request(chain: Chain, method: str, params: list[Any]) -> Any:
    """The ``result`` of the JSON-RPC ``method`` at ``chain``'s node, for methods beyond :class:`Chain`'s
    (``eth_getStorageAt``, ``eth_sendRawTransaction``, ...). Raises :class:`~keyscope.errors.ConfigurationError`
    for a chain object that cannot make raw requests."""
    request = getattr(chain, "request", None)
    if request is None:
        raise ConfigurationError(
            f"{shown(chain)} cannot send the JSON-RPC request {method}: use a RpcChain (a node URL) or a Web3Chain"
        )
    return request(method, params)


def call_creation_code(chain: Chain, code: bytes) -> bytes:
    """``eth_call`` without ``to`` of creation ``code`` (a contract's bytecode and constructor arguments): the
    return data of its constructor, with nothing deployed (the node throws the call's state away). A revert raises
    :class:`~keyscope.errors.CallRevertedError` with the revert data; a chain object that cannot make such a call
    (no ``call_creation`` method, which :class:`RpcChain` and :class:`Web3Chain` have),
    :class:`~keyscope.errors.ConfigurationError`."""
    call_creation = getattr(chain, "call_creation", None)
    if call_creation is None:
        raise ConfigurationError(
            f"{shown(chain)} cannot make an eth_call of creation code: use a RpcChain (a node URL) or a Web3Chain"
        )
    result: bytes = call_creation(bytes(code))
    return result


def read_many(
    chain: Chain,
    calls: Sequence[tuple[str, bytes]] = (),
    *,
    codes: Sequence[str] = (),
    timestamp: bool = False,
    optional: Sequence[tuple[str, bytes]] = (),
) -> Reads:
    """``eth_call`` to each ``(to, data)`` pair, ``eth_getCode`` of each address in ``codes``, and the latest
    block's timestamp when asked: in one round trip where the chain can batch (:class:`RpcChain`), one after
    another elsewhere. The ``optional`` calls' results follow the calls' in ``results``: one whose code fails (a
    revert, or a halt: :func:`is_no_answer`) reads as no answer, ``b""``, where a call's failure raises; a node's
    own refusal of either (a rate limit) raises (a question a contract may not
    implement, asked of many in the same round trip)."""
    batched = getattr(chain, "read_many", None)
    if batched is not None:
        result: Reads = (
            batched(calls, codes=codes, timestamp=timestamp, optional=optional)
            if optional
            else batched(calls, codes=codes, timestamp=timestamp)
        )
        return result
    return Reads(
        [
            *(chain.call(to, payload) for to, payload in calls),
            *(_answer_or_none(chain, to, payload) for to, payload in optional),
        ],
        [chain.get_code(address) for address in codes],
        chain.block_timestamp() if timestamp else None,
    )


def _answer_or_none(chain: Chain, to: str, data: bytes) -> bytes:
    """``eth_call`` of an optional question: its answer, ``b""`` when it fails (a revert, or its code halting)."""
    try:
        return chain.call(to, data)
    except CallRevertedError:
        return b""
    except JsonRpcError as error:
        if not is_no_answer(error):
            raise
        return b""
