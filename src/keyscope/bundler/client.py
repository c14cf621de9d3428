"""A JSON-RPC client for any ERC-4337 bundler (ERC-7769 methods, EntryPoint v0.7 and v0.8).

Each method has a name constant, one formatter for its params and one parser for its result. A parser
accepts what real bundlers send (quantities as hex strings or JSON numbers, Alto's and the spec's receipt
shape with the transaction receipt nested under ``receipt``) and rejects anything else with a
:class:`~keyscope.errors.TransportError` naming what was malformed.

A JSON-RPC error becomes :class:`~keyscope.errors.BundlerRejectedError` (code, ``AAxx`` reason, data and
method kept), or its subclass :class:`~keyscope.errors.SimulationRevertedError` when the error carries
revert data, which is then decoded with :func:`~keyscope.revert.describe_revert`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from ..chain import Chain, RpcChain
from ..errors import (
    BadInputError,
    BundlerRejectedError,
    ConfigurationError,
    SimulationRevertedError,
    TransportError,
    UnsupportedEntryPointError,
)
from ..hexutil import ZERO_ADDRESS, to_address, to_bytes, to_int
from ..revert import decode_revert, describe_revert, validation_hint
from ..rpc import METHOD_NOT_FOUND, JsonRpcClient, JsonRpcError
from ..userop import UserOperation
from .types import FeeQuote, GasEstimate, UserOperationReceipt

__all__ = [
    "ETH_CHAIN_ID",
    "ETH_ESTIMATE_USER_OPERATION_GAS",
    "ETH_GET_USER_OPERATION_BY_HASH",
    "ETH_GET_USER_OPERATION_RECEIPT",
    "ETH_SEND_USER_OPERATION",
    "ETH_SUPPORTED_ENTRY_POINTS",
    "PIMLICO_GET_USER_OPERATION_GAS_PRICE",
    "BundlerClient",
    "FeeTier",
    "bundler_error",
    "format_user_op_hash",
    "format_user_operation",
    "parse_chain_id",
    "parse_gas_estimate",
    "parse_gas_price",
    "parse_supported_entry_points",
    "parse_user_op_hash",
    "parse_user_operation_by_hash",
    "parse_user_operation_receipt",
]

ETH_CHAIN_ID = "eth_chainId"
ETH_SUPPORTED_ENTRY_POINTS = "eth_supportedEntryPoints"
ETH_ESTIMATE_USER_OPERATION_GAS = "eth_estimateUserOperationGas"
ETH_SEND_USER_OPERATION = "eth_sendUserOperation"
ETH_GET_USER_OPERATION_RECEIPT = "eth_getUserOperationReceipt"
ETH_GET_USER_OPERATION_BY_HASH = "eth_getUserOperationByHash"
PIMLICO_GET_USER_OPERATION_GAS_PRICE = "pimlico_getUserOperationGasPrice"

FeeTier = Literal["slow", "standard", "fast"]
"""The tiers of ``pimlico_getUserOperationGasPrice``."""

_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------------
# Formatters: Python values -> JSON-RPC params
# --------------------------------------------------------------------------------------------------


def format_user_operation(op: UserOperation, entry_point: str) -> list[Any]:
    """Params of ``eth_sendUserOperation`` and ``eth_estimateUserOperationGas``: ``[op, entryPoint]``."""
    return [op.to_rpc(), to_address(entry_point, name="entry_point")]


def format_user_op_hash(user_op_hash: bytes | str) -> list[Any]:
    """Params of ``eth_getUserOperationReceipt`` and ``eth_getUserOperationByHash``: ``[userOpHash]``."""
    return ["0x" + to_bytes(user_op_hash, name="user_op_hash", length=32).hex()]


# --------------------------------------------------------------------------------------------------
# Parsers: JSON-RPC result -> Python values. Each raises ValueError saying what is malformed.
# --------------------------------------------------------------------------------------------------


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} {value!r} is not a quantity")
    return to_int(value, name=name)


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} should be a JSON object, got {type(value).__name__} {str(value)[:80]!r}")
    return value


def parse_chain_id(result: Any) -> int:
    """``eth_chainId`` result: a quantity."""
    return _quantity(result, "the chain id")


def parse_supported_entry_points(result: Any) -> list[str]:
    """``eth_supportedEntryPoints`` result: a list of addresses, checksummed."""
    if not isinstance(result, list):
        raise ValueError(f"the supported EntryPoints should be a list of addresses, got {str(result)[:80]!r}")
    return [to_address(item, name="entry point") for item in result]


def parse_user_op_hash(result: Any) -> bytes:
    """``eth_sendUserOperation`` result: the 32-byte userOpHash."""
    if not isinstance(result, str):
        raise ValueError(f"the userOpHash should be a 0x-hex string, got {str(result)[:80]!r}")
    return to_bytes(result, name="the userOpHash", length=32)


def parse_gas_estimate(result: Any) -> GasEstimate:
    """``eth_estimateUserOperationGas`` result (v0.7 and v0.8 fields)."""
    return GasEstimate.model_validate(_object(result, "the gas estimate"))


def parse_user_operation_receipt(result: Any) -> UserOperationReceipt | None:
    """``eth_getUserOperationReceipt`` result; None while the operation is not included.

    ERC-7769 (and Alto) nest the transaction receipt under ``receipt``: its ``transactionHash`` and
    ``blockNumber`` are lifted to the top level. A zero ``paymaster`` reads as no paymaster.
    """
    if result is None:
        return None
    fields = dict(_object(result, "the receipt"))
    nested = fields.get("receipt")
    if nested is not None:
        nested = _object(nested, "the receipt's transaction receipt")
        for key in ("transactionHash", "blockNumber"):
            if fields.get(key) is None and key in nested:
                fields[key] = nested[key]
    paymaster = fields.get("paymaster")
    if paymaster is not None and to_address(paymaster, name="paymaster") == ZERO_ADDRESS:
        fields["paymaster"] = None
    if fields.get("reason") is None:
        fields.pop("reason", None)
    return UserOperationReceipt.model_validate(fields)


def parse_user_operation_by_hash(result: Any) -> dict[str, Any] | None:
    """``eth_getUserOperationByHash`` result; None when the bundler does not know the hash.

    Returned as given, after checking its shape: ``userOperation`` an object with a ``sender``,
    ``entryPoint`` an address (checksummed), ``transactionHash``/``blockNumber`` hex or null.
    """
    if result is None:
        return None
    fields = dict(_object(result, "the operation lookup"))
    op = _object(fields.get("userOperation"), "userOperation")
    to_address(op.get("sender"), name="userOperation.sender")
    fields["entryPoint"] = to_address(fields.get("entryPoint"), name="entryPoint")
    if fields.get("transactionHash") is not None:
        to_bytes(fields["transactionHash"], name="transactionHash", length=32)
    if fields.get("blockNumber") is not None:
        _quantity(fields["blockNumber"], "blockNumber")
    return fields


def parse_gas_price(result: Any, tier: FeeTier = "fast") -> FeeQuote:
    """``pimlico_getUserOperationGasPrice`` result: ``{slow, standard, fast}`` quotes; ``tier`` is kept."""
    quotes = _object(result, "the gas price quotes")
    if tier not in quotes:
        raise ValueError(f"the gas price quotes have no {tier!r} tier (got {', '.join(map(str, quotes))})")
    return FeeQuote.model_validate(_object(quotes[tier], f"the {tier!r} gas price"))


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

_AA_REASON_IN = re.compile(r"\b(AA\d\d)\b")
_HEX_IN_TEXT = re.compile(r"0x[0-9a-fA-F]{8,}")
_HEX_AFTER_REVERT = re.compile(r"\b(?:reason|reverted|revert)\b:?\s+(0x[0-9a-fA-F]{8,})\b", re.I)
_REVERT_KEYS = ("revertData", "revert_data", "data", "reason", "revertReason", "inner")
_METHOD_MISSING = re.compile(
    r"method\b.*\b(not found|not supported|does not exist|not available|unsupported|not whitelisted|"
    r"not allowed)|(unsupported|unknown) method",
    re.I,
)


def _hex_or_none(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        return None
    try:
        raw = to_bytes(value)
    except BadInputError:
        return None
    return raw if len(raw) >= 4 else None


def _revert_bytes(data: Any, message: str) -> bytes | None:
    """Revert data in a bundler's error: ``data`` as hex (or an object holding it), else hex in the message
    right after "reason"/"reverted" (Alto's form), else any hex in the message that decodes as a known
    error (so that addresses and hashes are not taken for revert data)."""
    found = _hex_or_none(data)
    if found is None and isinstance(data, Mapping):
        for key in _REVERT_KEYS:
            found = _hex_or_none(data.get(key))
            if found is not None:
                break
    if found is not None:
        return found
    for text in _HEX_AFTER_REVERT.findall(message or ""):
        found = _hex_or_none(text)
        if found is not None:
            return found
    candidates = sorted(_HEX_IN_TEXT.findall(message or ""), key=len, reverse=True)
    for text in candidates:
        raw = _hex_or_none(text if len(text) % 2 == 0 else text[:-1])
        if raw is not None and decode_revert(raw) is not None:
            return raw
    return None


_EXECUTION_REVERTED = -32521
"""ERC-7769: the operation passed validation, and its execution reverted in simulation."""
_EXECUTION_HINT = (
    "validation passed, so the session policy accepted it: the call reverted inside the account or its target; "
    "check the call's arguments and the target"
)


def bundler_error(method: str, error: JsonRpcError) -> BundlerRejectedError:
    """The keyscope error for a bundler's JSON-RPC error answer to ``method``."""
    revert = _revert_bytes(error.data, error.rpc_message)
    execution = _EXECUTION_HINT if error.code == _EXECUTION_REVERTED else None
    if error.code == METHOD_NOT_FOUND:
        execution = (
            f"{error.url or 'the bundler'} does not serve this ERC-4337 method: is it a node's URL? Give an "
            "ERC-4337 bundler's URL"
        )
    if revert is None:
        return BundlerRejectedError(method, error.code, error.rpc_message, error.data, hint=execution)
    reason = _AA_REASON_IN.search(error.rpc_message or "")
    return SimulationRevertedError(
        method,
        error.code,
        error.rpc_message,
        error.data,
        revert_data=revert,
        revert_description=describe_revert(revert),
        hint=execution or validation_hint(reason.group(1) if reason else None, revert),
    )


def _method_missing(error: JsonRpcError) -> bool:
    return error.code == -32601 or bool(_METHOD_MISSING.search(error.rpc_message))


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------


class BundlerClient:
    """The :class:`~keyscope.bundler.Bundler` interface over JSON-RPC to any ERC-4337 bundler.

    ``node`` (a :class:`~keyscope.chain.Chain` or a node URL) is only needed by :meth:`fee_quote` when the
    bundler does not offer ``pimlico_getUserOperationGasPrice``. ``timeout`` bounds each request (seconds);
    ``fee_tier`` picks the bundler's quote; ``headers`` are sent with every request (e.g. an API key).
    Safe to share between threads.
    """

    def __init__(
        self,
        url: str,
        *,
        node: Chain | str | None = None,
        timeout: float = 30.0,
        fee_tier: FeeTier = "fast",
        headers: dict[str, str] | None = None,
    ) -> None:
        if fee_tier not in ("slow", "standard", "fast"):
            raise BadInputError(f"fee_tier {fee_tier!r} is not one of 'slow', 'standard', 'fast'")
        self.url = url
        self.fee_tier: FeeTier = fee_tier
        self._rpc = JsonRpcClient(url, timeout=timeout, headers=headers, service="bundler")
        self.node: Chain | None = RpcChain(node, timeout=timeout) if isinstance(node, str) else node
        self._chain_id: int | None = None
        self._entry_points: list[str] | None = None
        self._has_gas_price: bool | None = None

    def __repr__(self) -> str:
        return f"BundlerClient({self._rpc.shown_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pools (the bundler's, and the node's when given as a URL)."""
        self._rpc.close()
        if isinstance(self.node, RpcChain):
            self.node.close()

    def __enter__(self) -> BundlerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------------------------------

    def _request(self, method: str, params: list[Any], parse: Callable[[Any], _T]) -> _T:
        try:
            result = self._rpc.request(method, params)
        except JsonRpcError as exc:
            raise bundler_error(method, exc) from exc
        return self._parse(method, result, parse)

    def _parse(self, method: str, result: Any, parse: Callable[[Any], _T]) -> _T:
        try:
            return parse(result)
        except ValueError as exc:
            problem = _describe_parse_error(exc)
            raise TransportError(
                f"{self._rpc.shown_url} answered {method} with a malformed result ({problem}): is this URL an ERC-4337 "
                "bundler serving EntryPoint v0.7 or v0.8?",
                url=self._rpc.shown_url,
                method=method,
            ) from exc

    def _check_entry_point(self, entry_point: str) -> str:
        address = to_address(entry_point, name="entry_point")
        supported = self.supported_entry_points()
        if address not in supported:
            raise UnsupportedEntryPointError(address, supported, self._rpc.shown_url)
        return address

    # -- Bundler -------------------------------------------------------------------------------------

    def chain_id(self) -> int:
        """``eth_chainId`` of the bundler's chain (cached)."""
        if self._chain_id is None:
            self._chain_id = self._request(ETH_CHAIN_ID, [], parse_chain_id)
        return self._chain_id

    def supported_entry_points(self) -> list[str]:
        """``eth_supportedEntryPoints``, checksummed (cached)."""
        if self._entry_points is None:
            self._entry_points = self._request(ETH_SUPPORTED_ENTRY_POINTS, [], parse_supported_entry_points)
        return list(self._entry_points)

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        """``eth_estimateUserOperationGas``. ``op.signature`` must have the real signature's shape (length,
        and a valid encoding for the account), as validation runs on it."""
        address = self._check_entry_point(entry_point)
        params = format_user_operation(op, address)
        return self._request(ETH_ESTIMATE_USER_OPERATION_GAS, params, parse_gas_estimate)

    def send_user_operation(self, op: UserOperation, entry_point: str) -> bytes:
        """``eth_sendUserOperation``: the userOpHash. An EntryPoint the bundler does not support is refused
        before sending, with :class:`~keyscope.errors.UnsupportedEntryPointError`."""
        address = self._check_entry_point(entry_point)
        params = format_user_operation(op, address)
        return self._request(ETH_SEND_USER_OPERATION, params, parse_user_op_hash)

    def get_user_operation_receipt(self, user_op_hash: bytes) -> UserOperationReceipt | None:
        """``eth_getUserOperationReceipt``; None while the operation is not included. A receipt of another
        operation than ``user_op_hash`` (its ``userOpHash`` another) is a :class:`~keyscope.errors.TransportError`:
        its fate is not this operation's."""
        params = format_user_op_hash(user_op_hash)
        receipt = self._request(ETH_GET_USER_OPERATION_RECEIPT, params, parse_user_operation_receipt)
        if receipt is not None and receipt.user_op_hash != bytes(to_bytes(user_op_hash)):
            raise TransportError(
                f"{self._rpc.shown_url} answered {ETH_GET_USER_OPERATION_RECEIPT} for {params[0]} with the receipt of "
                f"another operation, 0x{receipt.user_op_hash.hex()}: its outcome is not this operation's; is the "
                "bundler broken, or not to be trusted?",
                url=self._rpc.shown_url,
                method=ETH_GET_USER_OPERATION_RECEIPT,
            )
        return receipt

    def get_user_operation_by_hash(self, user_op_hash: bytes) -> dict[str, Any] | None:
        """``eth_getUserOperationByHash``; None when the bundler does not know the hash."""
        params = format_user_op_hash(user_op_hash)
        return self._request(ETH_GET_USER_OPERATION_BY_HASH, params, parse_user_operation_by_hash)

    def fee_quote(self) -> FeeQuote:
        """Fees for a new operation.

        The bundler's ``pimlico_getUserOperationGasPrice`` (tier ``fee_tier``) where it offers the method;
        otherwise the node's: ``maxPriorityFeePerGas`` = ``eth_maxPriorityFeePerGas`` and ``maxFeePerGas`` =
        2 x base fee + that priority fee. Whether the bundler has the method is asked once and remembered.
        """
        method = PIMLICO_GET_USER_OPERATION_GAS_PRICE
        if self._has_gas_price is not False:
            try:
                result = self._rpc.request(method, [])
            except JsonRpcError as exc:
                if not _method_missing(exc):
                    raise bundler_error(method, exc) from exc
                self._has_gas_price = False
            else:
                self._has_gas_price = True
                tier = self.fee_tier
                return self._parse(method, result, lambda value: parse_gas_price(value, tier))
        return self._node_fee_quote()

    def _node_fee_quote(self) -> FeeQuote:
        if self.node is None:
            raise ConfigurationError(
                f"the bundler at {self._rpc.shown_url} does not offer {PIMLICO_GET_USER_OPERATION_GAS_PRICE}, so fees "
                "must come from a node: pass node=<node RPC URL or Chain> to BundlerClient"
            )
        priority = self.node.max_priority_fee()
        base = self.node.base_fee()
        return FeeQuote(max_fee_per_gas=2 * base + priority, max_priority_fee_per_gas=priority)


def _describe_parse_error(exc: BaseException) -> str:
    """A short account of a parse failure: pydantic's field errors as ``field: problem``, else the text."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(map(str, err['loc'])) or 'value'}: {err['msg']} (got {str(err.get('input'))[:60]!r})"
            for err in exc.errors()[:3]
        ]
        return "; ".join(problems)
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
