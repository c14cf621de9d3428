"""The EntryPoint's ``UserOperationEvent`` logs, read from the node: which operations landed, and where.

The chain is the final word on whether an operation was included: a bundler forgets its mempool when it
restarts and looks back only so far for receipts, but the node keeps every event. Workers use
:class:`EventLog` to see inclusions of all their operations with one ``eth_getLogs`` per poll, and to settle
the hard question of recovery: *an operation's nonce was consumed; was it by this operation?*

::

    log = EventLog.for_network(network)          # None when the node offers no log access
    log.find(user_op_hash)                       # the event, or None
    log.events(from_block, to_block)             # every UserOperationEvent in the range
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..entrypoint import USER_OPERATION_EVENT_TOPIC, decode_user_operation_event
from ..errors import BadInputError, TransportError
from ..hexutil import to_address, to_bytes, to_int
from ..rpc import JsonRpcClient

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["EventLog", "UserOperationEvent"]

_TOPIC = "0x" + USER_OPERATION_EVENT_TOPIC.hex()

Request = Callable[[str, list[Any]], Any]
"""A JSON-RPC call: ``request(method, params) -> result``."""


@dataclass(frozen=True)
class UserOperationEvent:
    """One ``UserOperationEvent``: the operation ``user_op_hash`` of ``sender`` with ``nonce`` landed in
    transaction ``tx_hash``; ``success`` is whether its call succeeded."""

    user_op_hash: str
    sender: str
    paymaster: str | None
    nonce: int
    success: bool
    actual_gas_cost: int
    actual_gas_used: int
    tx_hash: str
    block_number: int
    log_index: int


def _raw32(value: Any, name: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif hasattr(value, "hex") and not isinstance(value, str):
        raw = bytes(value)  # HexBytes and similar
    else:
        raw = to_bytes(value, name=name)
    if len(raw) != 32:
        raise TransportError(f"the node returned a {name} of {len(raw)} bytes in a log, expected 32")
    return raw


def _data(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if hasattr(value, "hex") and not isinstance(value, str):
        return bytes(value)
    return to_bytes(value, name="log data")


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return to_int(value, name=name)


def parse_event(log: Mapping[str, Any]) -> UserOperationEvent:
    """A ``UserOperationEvent`` log (JSON-RPC or web3.py form) as a :class:`UserOperationEvent`, decoded by
    :func:`keyscope.entrypoint.decode_user_operation_event` (the SDK's receipts use the same decoder). A log that
    is not the event, or that cannot be decoded, is a :class:`~keyscope.errors.TransportError`."""
    topics = [_raw32(topic, "topic") for topic in log.get("topics", [])]
    if len(topics) != 4 or topics[0] != USER_OPERATION_EVENT_TOPIC:
        shown = ["0x" + topic.hex() for topic in topics]
        raise TransportError(f"the node returned a log that is not a UserOperationEvent: topics {shown}")
    try:
        event = decode_user_operation_event(topics, _data(log["data"]))
    except ValueError as exc:
        raise TransportError(f"the node returned a UserOperationEvent log it cannot decode: {exc}") from exc
    return UserOperationEvent(
        user_op_hash="0x" + event.user_op_hash.hex(),
        sender=event.sender,
        paymaster=event.paymaster,
        nonce=event.nonce,
        success=event.success,
        actual_gas_cost=event.actual_gas_cost,
        actual_gas_used=event.actual_gas_used,
        tx_hash="0x" + _raw32(log["transactionHash"], "transaction hash").hex(),
        block_number=_quantity(log["blockNumber"], "blockNumber"),
        log_index=_quantity(log.get("logIndex", 0), "logIndex"),
    )


def _topic_of_address(address: str) -> str:
    return "0x" + "00" * 12 + to_address(address)[2:].lower()


class EventLog:
    """Reads ``UserOperationEvent`` logs of ``entry_point`` through ``request`` (a JSON-RPC call to a node).

    ``max_range`` bounds the blocks of one ``eth_getLogs`` (queries over more are split), ``lookback`` is
    how far back :meth:`find` searches by default (None: from the genesis block).
    """

    def __init__(
        self,
        request: Request,
        entry_point: str,
        *,
        max_range: int = 50_000,
        lookback: int | None = None,
    ) -> None:
        if max_range < 1:
            raise BadInputError(f"max_range must be at least 1 block, got {max_range}")
        self._request = request
        self.entry_point = to_address(entry_point, name="entry_point")
        self.max_range = max_range
        self.lookback = lookback

    @classmethod
    def from_url(cls, url: str, entry_point: str, **options: Any) -> EventLog:
        """An event log over a node URL."""
        client = JsonRpcClient(url)
        return cls(client.request, entry_point, **options)

    @classmethod
    def for_network(cls, network: Network, **options: Any) -> EventLog | None:
        """An event log over the network's node, or None when its :class:`~keyscope.chain.Chain` gives no
        raw JSON-RPC access (an :class:`~keyscope.chain.RpcChain` and a :class:`~keyscope.chain.Web3Chain`
        both do)."""
        chain: Any = network.chain
        client = getattr(chain, "client", None)
        if isinstance(client, JsonRpcClient):
            return cls(client.request, network.entry_point, **options)
        w3 = getattr(chain, "w3", None)
        if w3 is not None and hasattr(w3, "eth"):
            return cls(_web3_request(w3), network.entry_point, **options)
        return None

    # -- queries -------------------------------------------------------------------------------------

    def block_number(self) -> int:
        """The node's latest block number."""
        return _quantity(self._request("eth_blockNumber", []), "eth_blockNumber")

    def events(
        self,
        from_block: int,
        to_block: int | None = None,
        *,
        user_op_hashes: Sequence[str | bytes] | None = None,
        sender: str | None = None,
    ) -> list[UserOperationEvent]:
        """Every ``UserOperationEvent`` in blocks ``from_block..to_block`` (default: the latest), oldest
        first; only those of ``user_op_hashes`` and/or ``sender`` when given."""
        last = self.block_number() if to_block is None else to_block
        hashes: list[str] | None = None
        if user_op_hashes is not None:
            hashes = ["0x" + to_bytes(h, name="user_op_hash", length=32).hex() for h in user_op_hashes]
            if not hashes:
                return []
        topics: list[Any] = [_TOPIC, hashes, _topic_of_address(sender) if sender else None]
        while topics and topics[-1] is None:
            topics.pop()
        found: list[UserOperationEvent] = []
        start = max(0, from_block)
        while start <= last:
            end = min(last, start + self.max_range - 1)
            query = {
                "address": self.entry_point,
                "fromBlock": hex(start),
                "toBlock": hex(end),
                "topics": topics,
            }
            logs = self._request("eth_getLogs", [query])
            if not isinstance(logs, list):
                raise TransportError(f"eth_getLogs returned {str(logs)[:100]!r}, not a list of logs")
            found.extend(parse_event(log) for log in logs)
            start = end + 1
        return found

    def find(self, user_op_hash: str | bytes, *, from_block: int | None = None) -> UserOperationEvent | None:
        """The event of ``user_op_hash``, or None when it is not on chain (searched from ``from_block``, by
        default :attr:`lookback` blocks back, or from the genesis block)."""
        start = from_block if from_block is not None else self._default_start()
        found = self.events(start, user_op_hashes=[user_op_hash])
        return found[0] if found else None

    def consumer_of(
        self, sender: str, nonce: int, *, from_block: int | None = None
    ) -> UserOperationEvent | None:
        """The event of the operation that used ``nonce`` (the full 256-bit nonce) of ``sender``, if any."""
        start = from_block if from_block is not None else self._default_start()
        for event in self.events(start, sender=sender):
            if event.nonce == nonce:
                return event
        return None

    def count(self, user_op_hashes: Iterable[str | bytes], *, from_block: int = 0) -> dict[str, int]:
        """How many times each of ``user_op_hashes`` appears on chain (0, 1, or more if something is badly
        wrong): one query for all of them, over every event since ``from_block``."""
        wanted = {"0x" + to_bytes(h, name="user_op_hash", length=32).hex(): 0 for h in user_op_hashes}
        for event in self.events(from_block):
            if event.user_op_hash in wanted:
                wanted[event.user_op_hash] += 1
        return wanted

    def _default_start(self) -> int:
        if self.lookback is None:
            return 0
        return max(0, self.block_number() - self.lookback)


def _web3_request(w3: Any) -> Request:
    """A JSON-RPC call through a web3.py object (its ``eth`` API), for the two methods the log needs."""

    def request(method: str, params: list[Any]) -> Any:
        if method == "eth_blockNumber":
            return int(w3.eth.block_number)
        if method == "eth_getLogs":
            query = dict(params[0])
            query["fromBlock"] = int(query["fromBlock"], 16)
            query["toBlock"] = int(query["toBlock"], 16)
            return [dict(log) for log in w3.eth.get_logs(query)]
        raise BadInputError(f"the web3 event source does not serve {method}")

    return request
