"""Event logs read from a node that may refuse a query over the whole chain: public providers cap the blocks one
``eth_getLogs`` spans or the logs it answers, and say so in an error. :func:`range_refused` tells such a refusal
from other errors; :func:`recent_logs` reads a query's logs in chunks, newest first, within a bounded number of
requests, and says which blocks it left unread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .chain import Chain, node_request
from .errors import TransportError
from .hexutil import to_int
from .rpc import JsonRpcError

__all__ = ["FIRST_CHUNK_BLOCKS", "LogsRead", "range_refused", "recent_logs"]

_RANGE_WORDS = ("range", "limit", "too many", "more than", "exceed", "too large", "block")

FIRST_CHUNK_BLOCKS = 10_000
"""Blocks in :func:`recent_logs`'s first chunk once a provider refuses a whole-history query; a chunk refused is
halved, and while none has been refused each next chunk is twice the last."""


def range_refused(error: JsonRpcError) -> bool:
    """Whether ``error`` is a provider refusing a query for its size (-32005 and -32602/-32000 wordings)."""
    text = error.rpc_message.lower()
    return error.code == -32005 or any(word in text for word in _RANGE_WORDS)


@dataclass(frozen=True)
class LogsRead:
    """The logs :func:`recent_logs` read, and ``unread_to``: the last block of the history it did not read (blocks
    0 to it), None when it read the whole chain."""

    logs: tuple[Mapping[str, Any], ...]
    unread_to: int | None = None


def _get_logs(chain: Chain, query: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``eth_getLogs`` of ``query``: through the chain's own ``get_logs`` when it has one (:class:`~keyscope.chain.
    RpcChain`, :class:`~keyscope.chain.Web3Chain`), else as a raw request."""
    get_logs = getattr(chain, "get_logs", None)
    answer = get_logs(query) if get_logs is not None else node_request(chain, "eth_getLogs", [dict(query)])
    if not isinstance(answer, list) or not all(isinstance(log, Mapping) for log in answer):
        raise TransportError(f"eth_getLogs answered {str(answer)[:100]!r}, not a list of logs")
    return answer


def _latest(chain: Chain) -> int:
    block_number = getattr(chain, "block_number", None)
    if block_number is not None:
        return int(block_number())
    return to_int(node_request(chain, "eth_blockNumber", []), name="eth_blockNumber")


def recent_logs(chain: Chain, query: Mapping[str, Any], *, max_requests: int = 32) -> LogsRead:
    """``query``'s logs over the whole chain in one ``eth_getLogs``; when the provider refuses it for its size, in
    chunks from the latest block back (:data:`FIRST_CHUNK_BLOCKS`, halved when refused, doubled while none was),
    in at most ``max_requests`` requests in all: the oldest blocks left are then unread (:attr:`LogsRead.unread_to`).
    Any other error of the node is raised (:class:`~keyscope.rpc.JsonRpcError`,
    :class:`~keyscope.errors.TransportError`)."""
    whole = {**query, "fromBlock": "0x0", "toBlock": "latest"}
    try:
        return LogsRead(tuple(_get_logs(chain, whole)))
    except JsonRpcError as error:
        if not range_refused(error):
            raise
    end = _latest(chain)
    asked, size, refused = 2, FIRST_CHUNK_BLOCKS, False
    logs: list[Mapping[str, Any]] = []
    while end >= 0 and asked < max_requests:
        start = max(0, end - size + 1)
        asked += 1
        try:
            part = _get_logs(chain, {**query, "fromBlock": hex(start), "toBlock": hex(end)})
        except JsonRpcError as error:
            if size == 1 or not range_refused(error):
                raise
            size, refused = size // 2, True
            continue
        logs.extend(part)
        end = start - 1
        if not refused:
            size *= 2
    return LogsRead(tuple(logs), end if end >= 0 else None)
