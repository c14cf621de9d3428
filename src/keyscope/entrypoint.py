"""EntryPoint calls and events (v0.7 and v0.8 share them), encoded and decoded without a web3 or ape dependency,
and which EntryPoint version an address is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from .artifacts import ENTRY_POINTS
from .hexutil import to_address
from .userop import PackedUserOperation

__all__ = [
    "EIP712_DOMAIN",
    "PACKED_USEROP_ABI_TYPE",
    "USER_OPERATION_EVENT_TOPIC",
    "USER_OPERATION_REVERT_REASON_TOPIC",
    "OperationOutcome",
    "UserOperationEventFields",
    "canonical_entry_point_version",
    "decode_user_operation_event",
    "decode_user_operation_events",
    "encode_balance_of",
    "encode_deposit_to",
    "encode_get_nonce",
    "encode_get_user_op_hash",
    "encode_handle_ops",
    "entry_point_version_from_domain",
    "outcome_in_logs",
]

PACKED_USEROP_ABI_TYPE = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"

_HANDLE_OPS = keccak(f"handleOps({PACKED_USEROP_ABI_TYPE}[],address)".encode())[:4]
_GET_USER_OP_HASH = keccak(f"getUserOpHash({PACKED_USEROP_ABI_TYPE})".encode())[:4]
_GET_NONCE = keccak(b"getNonce(address,uint192)")[:4]
_BALANCE_OF = keccak(b"balanceOf(address)")[:4]
_DEPOSIT_TO = keccak(b"depositTo(address)")[:4]
EIP712_DOMAIN = keccak(b"eip712Domain()")[:4]
"""Calldata of ERC-5267's ``eip712Domain()``: EntryPoint v0.8 answers with its domain, v0.7 has no such function."""

USER_OPERATION_EVENT_TOPIC = keccak(
    b"UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)"
)
USER_OPERATION_REVERT_REASON_TOPIC = keccak(b"UserOperationRevertReason(bytes32,address,uint256,bytes)")


def canonical_entry_point_version(address: str) -> str | None:
    """The version ("0.7", "0.8") of the EntryPoint at ``address`` when it is a canonical address, else None."""
    checksummed = to_address(address, name="entry_point")
    for version, release in ENTRY_POINTS.items():
        if release.address == checksummed:
            return version
    return None


def entry_point_version_from_domain(result: bytes) -> str:
    """The version of an EntryPoint from its answer to ``eip712Domain()``: "0.8" when the domain is ERC-4337's
    (``{name "ERC4337", version "1"}``), else "0.7" (which has no EIP-712 domain)."""
    try:
        _fields, name, version, *_rest = abi_decode(
            ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"], result
        )
    except Exception:
        return "0.7"
    return "0.8" if (name, version) == ("ERC4337", "1") else "0.7"


def encode_handle_ops(ops: list[PackedUserOperation], beneficiary: str) -> bytes:
    """Calldata of ``handleOps(ops, beneficiary)``."""
    return _HANDLE_OPS + abi_encode(
        [f"{PACKED_USEROP_ABI_TYPE}[]", "address"], [[op.as_tuple() for op in ops], beneficiary]
    )


def encode_get_user_op_hash(op: PackedUserOperation) -> bytes:
    """Calldata of ``getUserOpHash(op)``."""
    return _GET_USER_OP_HASH + abi_encode([PACKED_USEROP_ABI_TYPE], [op.as_tuple()])


@lru_cache(maxsize=1024)
def encode_get_nonce(sender: str, key: int) -> bytes:
    """Calldata of ``getNonce(sender, key)`` (key: the 192-bit nonce lane). A client asks it of the same few
    lanes before every operation: the encodings are remembered."""
    return _GET_NONCE + abi_encode(["address", "uint192"], [sender, key])


def encode_balance_of(account: str) -> bytes:
    """Calldata of ``balanceOf(account)``: the account's deposit at the EntryPoint."""
    return _BALANCE_OF + abi_encode(["address"], [account])


def encode_deposit_to(account: str) -> bytes:
    """Calldata of ``depositTo(account)`` (payable)."""
    return _DEPOSIT_TO + abi_encode(["address"], [account])


def _topic_bytes(topic: Any) -> bytes:
    if isinstance(topic, str):
        return bytes.fromhex(topic[2:] if topic.startswith("0x") else topic)
    return bytes(topic)


def _log_data(log: Mapping[str, Any]) -> bytes:
    data = log.get("data", b"")
    return _topic_bytes(data) if isinstance(data, str) else bytes(data)


@dataclass(frozen=True)
class UserOperationEventFields:
    """One EntryPoint ``UserOperationEvent``, decoded: operation ``user_op_hash`` of ``sender`` with ``nonce`` ran,
    its call succeeding or not (``success``), at ``actual_gas_cost`` wei for ``actual_gas_used`` gas, ``paymaster``
    paying (None: the account paid)."""

    user_op_hash: bytes
    sender: str
    paymaster: str | None
    nonce: int
    success: bool
    actual_gas_cost: int
    actual_gas_used: int


def decode_user_operation_event(topics: Sequence[bytes], data: bytes) -> UserOperationEventFields:
    """The ``UserOperationEvent`` whose log has ``topics`` (the event's topic, then the indexed userOpHash, sender
    and paymaster, 32 bytes each) and ``data`` (nonce, success, actualGasCost, actualGasUsed): the one decoder of
    the event, for the SDK's receipts and the workers' event log alike. Raises ``ValueError`` for a log that is
    not the event, or whose data is not its four words."""
    if len(topics) != 4 or bytes(topics[0]) != USER_OPERATION_EVENT_TOPIC:
        raise ValueError(
            f"not a UserOperationEvent: topics {['0x' + bytes(topic).hex() for topic in topics]}"
        )
    sizes = [len(topic) for topic in topics]
    if any(size != 32 for size in sizes):
        raise ValueError(f"a UserOperationEvent with topics of {sizes} bytes, not 32 each")
    try:
        nonce, success, cost, used = abi_decode(["uint256", "bool", "uint256", "uint256"], bytes(data))
    except DecodingError as exc:
        raise ValueError(
            f"a UserOperationEvent whose data (0x{bytes(data).hex()[:80]}, {len(data)} bytes) is not its four "
            f"words: {exc}"
        ) from exc
    paymaster = to_address(bytes(topics[3][12:]))
    return UserOperationEventFields(
        user_op_hash=bytes(topics[1]),
        sender=to_address(bytes(topics[2][12:])),
        paymaster=None if int(paymaster, 16) == 0 else paymaster,
        nonce=int(nonce),
        success=bool(success),
        actual_gas_cost=int(cost),
        actual_gas_used=int(used),
    )


def _event_fields(topics: list[bytes], data: bytes) -> dict[str, Any]:
    """The fields of a ``UserOperationEvent`` (``topics`` its four topics, ``data`` its data) by their names in a
    bundler's receipt."""
    event = decode_user_operation_event(topics, data)
    return {
        "userOpHash": event.user_op_hash,
        "sender": event.sender,
        "paymaster": event.paymaster,
        "nonce": event.nonce,
        "success": event.success,
        "actualGasCost": event.actual_gas_cost,
        "actualGasUsed": event.actual_gas_used,
    }


def decode_user_operation_events(logs: list[dict[str, Any]], entry_point: str) -> dict[bytes, dict[str, Any]]:
    """From a handleOps transaction's logs: userOpHash -> the fields of its ``UserOperationEvent``, with the
    ``reason`` of a ``UserOperationRevertReason`` when the call reverted, and the logs emitted while the
    operation executed."""
    entry = entry_point.lower()
    results: dict[bytes, dict[str, Any]] = {}
    reasons: dict[bytes, bytes] = {}
    pending: list[dict[str, Any]] = []
    for log in logs:
        address = str(log.get("address", "")).lower()
        topics = [_topic_bytes(t) for t in log.get("topics", [])]
        if address != entry or not topics:
            pending.append(log)
            continue
        if topics[0] == USER_OPERATION_REVERT_REASON_TOPIC:
            (_nonce, reason) = abi_decode(["uint256", "bytes"], _log_data(log))
            reasons[topics[1]] = bytes(reason)
        elif topics[0] == USER_OPERATION_EVENT_TOPIC:
            fields = _event_fields(topics, _log_data(log))
            results[topics[1]] = {**fields, "reason": reasons.get(topics[1], b""), "logs": pending}
            pending = []
    return results


@dataclass(frozen=True)
class OperationOutcome:
    """What a transaction's logs say of one operation: its ``UserOperationEvent`` (``event``), the revert data of
    its call (``reason``, from ``UserOperationRevertReason``; empty when it succeeded) and ``logs``, the
    transaction's logs between the previous operation's ``UserOperationEvent`` and its own (as bundlers fill a
    receipt's ``logs``), in the form they were given."""

    event: UserOperationEventFields
    reason: bytes
    logs: list[dict[str, Any]]


def outcome_in_logs(
    logs: Sequence[Mapping[str, Any]], entry_point: str, user_op_hash: bytes
) -> OperationOutcome | None:
    """The outcome of operation ``user_op_hash`` from the logs of the transaction that carried it (a node's
    ``eth_getTransactionReceipt`` ``logs``, hex strings or bytes): None when ``entry_point`` emitted no
    ``UserOperationEvent`` of it there. Raises ``ValueError`` for a log of the EntryPoint that cannot be decoded."""
    entry = to_address(entry_point, name="entry_point").lower()
    wanted = bytes(user_op_hash)
    start = 0
    reason = b""
    for index, log in enumerate(logs):
        if str(log.get("address", "")).lower() != entry:
            continue
        topics = [_topic_bytes(t) for t in log.get("topics", [])]
        if len(topics) < 2 or topics[1] != wanted:
            if topics and topics[0] == USER_OPERATION_EVENT_TOPIC:
                start = index + 1
            continue
        if topics[0] == USER_OPERATION_REVERT_REASON_TOPIC:
            (_nonce, revert) = abi_decode(["uint256", "bytes"], _log_data(log))
            reason = bytes(revert)
        elif topics[0] == USER_OPERATION_EVENT_TOPIC and len(topics) == 4:
            return OperationOutcome(
                event=decode_user_operation_event(topics, _log_data(log)),
                reason=reason,
                logs=[dict(entry_log) for entry_log in logs[start:index]],
            )
    return None
