"""Waiting for a sent UserOperation: :class:`PendingUserOperation` polls its receipt with backoff.

Polling asks ``eth_getUserOperationReceipt`` first after ``poll`` seconds, then at intervals growing by
``backoff`` up to ``max_poll``. Transport errors and a bundler's internal errors while polling are retried
until the deadline; a timeout raises :class:`~keyscope.errors.UserOperationTimeoutError` (the operation may
still be included later); a receipt with ``success`` false raises
:class:`~keyscope.errors.UserOperationFailedError` with the decoded revert reason, unless ``check=False``.

A receipt is the bundler's word. Given a ``node`` (the SDK's send path always gives its own), a receipt is taken
only once the node confirms it: one ``eth_getTransactionReceipt`` of the transaction the receipt names, which must
hold the EntryPoint's ``UserOperationEvent`` of this userOpHash with the receipt's sender, nonce and success.
A transaction the node does not have (yet) is retried until the deadline
(:class:`~keyscope.errors.ReceiptUnconfirmedError`, then a timeout); one the node contradicts raises
:class:`~keyscope.errors.ReceiptContradictedError` at once. The receipt returned carries the node's figures (gas,
paymaster, block, revert reason and logs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..entrypoint import OperationOutcome, outcome_in_logs
from ..errors import (
    BadInputError,
    BundlerRejectedError,
    KeyscopeError,
    ReceiptContradictedError,
    ReceiptUnconfirmedError,
    TransportError,
    UserOperationFailedError,
    UserOperationTimeoutError,
    shown,
)
from ..hexutil import to_address, to_bytes, to_int
from ..revert import describe_revert
from ..userop import UserOperation
from .types import Bundler, UserOperationReceipt

__all__ = [
    "DEFAULT_MAX_POLL",
    "DEFAULT_POLL",
    "PendingUserOperation",
    "TransactionReceipts",
    "submit",
    "wait_many",
]

DEFAULT_POLL = 0.075
"""Seconds before the first receipt query."""

DEFAULT_MAX_POLL = 1.5
"""The longest pause between two receipt queries."""

_BACKOFF = 1.6

_TX_RECEIPT = "eth_getTransactionReceipt"


@runtime_checkable
class TransactionReceipts(Protocol):
    """A node that gives transaction receipts: :class:`~keyscope.chain.RpcChain` and
    :class:`~keyscope.chain.Web3Chain` do."""

    def transaction_receipt(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        """``eth_getTransactionReceipt`` of ``tx_hash`` (quantities as ints or hex text, data as bytes or hex
        text); None while the node has no such transaction."""
        ...


def _transient(exc: Exception) -> bool:
    """Errors worth retrying while polling: the bundler or the node unreachable or failing internally, a receipt
    the node does not confirm yet; never a receipt the node contradicts."""
    if isinstance(exc, ReceiptContradictedError):
        return False
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, BundlerRejectedError) and (exc.code in (0, -32603) or -32099 <= exc.code <= -32000)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_polling(timeout: float, poll: float, max_poll: float) -> None:
    if not _is_number(timeout) or not timeout >= 0:
        raise BadInputError(
            f"timeout must be a number of seconds >= 0 (float('inf') to wait without end), got {shown(timeout)}"
        )
    if not _is_number(poll) or not _is_number(max_poll) or not 0 < poll <= max_poll:
        raise BadInputError(
            f"poll ({shown(poll)}) and max_poll ({shown(max_poll)}) must be seconds with 0 < poll <= max_poll"
        )


class PendingUserOperation:
    """A UserOperation sent to ``bundler`` under ``user_op_hash`` (``op`` kept for reference when given).

    With ``node`` (and the ``entry_point`` the operation was sent to), a receipt is taken only once the node
    confirms it (see the module's docstring); without, the bundler's receipt is all there is to go by.
    """

    def __init__(
        self,
        bundler: Bundler,
        user_op_hash: bytes | str,
        op: UserOperation | None = None,
        *,
        node: TransactionReceipts | None = None,
        entry_point: str | None = None,
    ) -> None:
        self.bundler = bundler
        self._hash = to_bytes(user_op_hash, name="user_op_hash", length=32)
        self.op = op
        if node is not None and entry_point is None:
            raise BadInputError(
                "give entry_point with node: a receipt is confirmed by that EntryPoint's UserOperationEvent"
            )
        self.node = node
        self.entry_point = None if entry_point is None else to_address(entry_point, name="entry_point")
        self._receipt: UserOperationReceipt | None = None

    def __repr__(self) -> str:
        state = "included" if self._receipt is not None else "pending"
        return f"PendingUserOperation(0x{self._hash.hex()}, {state})"

    @property
    def hash(self) -> bytes:
        """The userOpHash."""
        return self._hash

    @property
    def hex_hash(self) -> str:
        """The userOpHash as 0x-hex."""
        return "0x" + self._hash.hex()

    def receipt(self) -> UserOperationReceipt | None:
        """The receipt, or None while the operation is not included (one query; remembered once found). With a
        node, a receipt the node does not confirm raises :class:`~keyscope.errors.ReceiptUnconfirmedError` (not
        remembered) and one it contradicts :class:`~keyscope.errors.ReceiptContradictedError`."""
        if self._receipt is None:
            receipt = self.bundler.get_user_operation_receipt(self._hash)
            if receipt is not None:
                self._check_describes(receipt)
                if self.node is not None and self.entry_point is not None:
                    receipt = self._confirmed(receipt, self.node, self.entry_point)
            self._receipt = receipt
        return self._receipt

    def _check_describes(self, receipt: UserOperationReceipt) -> None:
        """Refuse (:class:`TransportError`) a receipt of another operation than this one: another userOpHash, or
        (when the operation is known) another sender or nonce. The bundler's word is all a receipt is; taking
        another operation's would report this one's fate wrongly (a reverted or unsent one as landed)."""
        problem = None
        if bytes(receipt.user_op_hash) != self._hash:
            problem = f"the receipt of another operation, 0x{bytes(receipt.user_op_hash).hex()}"
        elif self.op is not None and receipt.sender != self.op.sender:
            problem = (
                f"a receipt names another sender ({receipt.sender}, the operation's is {self.op.sender})"
            )
        elif self.op is not None and receipt.nonce != self.op.nonce:
            problem = (
                f"a receipt names another nonce ({receipt.nonce:#x}, the operation's is {self.op.nonce:#x})"
            )
        if problem is not None:
            raise TransportError(
                f"the bundler answered eth_getUserOperationReceipt for {self.hex_hash} with {problem}: its outcome "
                "is not this operation's; is the bundler broken, or not to be trusted?",
                method="eth_getUserOperationReceipt",
            )

    def _confirmed(
        self, receipt: UserOperationReceipt, node: TransactionReceipts, entry_point: str
    ) -> UserOperationReceipt:
        """``receipt`` as the node has it: the node's ``eth_getTransactionReceipt`` of the transaction it names
        must hold the EntryPoint's ``UserOperationEvent`` of this operation, with the receipt's sender, nonce and
        success; the fields the event and the transaction give are the node's.

        Raises :class:`ReceiptUnconfirmedError` while the node has no such transaction (retried by
        :meth:`wait`), :class:`ReceiptContradictedError` when the node says otherwise than the receipt."""
        tx = bytes(receipt.transaction_hash)
        tx_hex = "0x" + tx.hex()
        if len(tx) != 32:
            raise self._contradiction(tx_hex, f"it names a transaction hash of {len(tx)} bytes, not 32")
        try:
            found = node.transaction_receipt(tx)
        except TransportError:
            raise
        except KeyscopeError as exc:  # the node's JSON-RPC error: what it does not confirm, it does not
            raise self._unconfirmed(
                receipt, tx_hex, f"the node answered {_TX_RECEIPT} with an error: {exc}"
            ) from exc
        if found is None:
            raise self._unconfirmed(receipt, tx_hex, "the node does not have that transaction")
        if not isinstance(found, Mapping) or not isinstance(found.get("logs"), list):
            raise TransportError(
                f"the node answered {_TX_RECEIPT} for {tx_hex} with {str(found)[:120]!r}, not a transaction "
                "receipt with logs",
                method=_TX_RECEIPT,
            )
        block = _quantity(found.get("blockNumber"), "blockNumber", tx_hex)
        try:
            outcome = outcome_in_logs(found["logs"], entry_point, self._hash)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise TransportError(
                f"the node answered {_TX_RECEIPT} for {tx_hex} with an EntryPoint log it cannot decode: {exc}",
                method=_TX_RECEIPT,
            ) from exc
        if outcome is None:
            status = found.get("status")
            reverted = status is not None and _quantity(status, "status", tx_hex) == 0
            raise self._contradiction(
                tx_hex,
                f"the node's transaction {tx_hex} (block {block}"
                + (", reverted" if reverted else "")
                + f") holds no UserOperationEvent of it from the EntryPoint {entry_point}",
            )
        self._check_outcome(receipt, outcome, tx_hex)
        return receipt.model_copy(
            update={
                "entry_point": entry_point,
                "paymaster": outcome.event.paymaster,
                "actual_gas_cost": outcome.event.actual_gas_cost,
                "actual_gas_used": outcome.event.actual_gas_used,
                "success": outcome.event.success,
                "reason": outcome.reason,
                "block_number": block,
                "logs": outcome.logs,
            }
        )

    def _check_outcome(self, receipt: UserOperationReceipt, outcome: OperationOutcome, tx_hex: str) -> None:
        """Refuse a receipt whose sender, nonce or success the node's event does not bear out."""
        if outcome.event.sender != receipt.sender:
            problem = f"the node's event names sender {outcome.event.sender}, the receipt {receipt.sender}"
        elif outcome.event.nonce != receipt.nonce:
            problem = f"the node's event names nonce {outcome.event.nonce:#x}, the receipt {receipt.nonce:#x}"
        elif outcome.event.success != receipt.success:
            problem = (
                "the node's event says its call reverted, the receipt that it succeeded"
                if receipt.success
                else "the node's event says its call succeeded, the receipt that it reverted"
            )
        else:
            return
        raise self._contradiction(tx_hex, problem + f" (transaction {tx_hex})")

    def _contradiction(self, tx_hex: str, problem: str) -> ReceiptContradictedError:
        return ReceiptContradictedError(
            f"the bundler's receipt of UserOperation {self.hex_hash} is not what the node says: {problem}; the "
            "operation's fate is the node's, not the receipt's: is the bundler broken, or not to be trusted?",
            user_op_hash=self.hex_hash,
            transaction_hash=tx_hex,
            problem=problem,
        )

    def _unconfirmed(self, receipt: UserOperationReceipt, tx_hex: str, why: str) -> ReceiptUnconfirmedError:
        return ReceiptUnconfirmedError(
            f"the bundler's receipt of UserOperation {self.hex_hash} names transaction {tx_hex} in block "
            f"{receipt.block_number}, which the node does not confirm: {why} (the node may be behind the "
            "bundler, or the bundler made the receipt up)",
            user_op_hash=self.hex_hash,
            transaction_hash=tx_hex,
            block_number=receipt.block_number,
            method=_TX_RECEIPT,
        )

    def check(self, receipt: UserOperationReceipt) -> UserOperationReceipt:
        """``receipt`` itself if the operation's call succeeded, else :class:`UserOperationFailedError`."""
        if not receipt.success:
            raise UserOperationFailedError(self.hex_hash, describe_revert(receipt.reason), receipt)
        return receipt

    def wait(
        self,
        timeout: float = 60.0,
        *,
        poll: float = DEFAULT_POLL,
        max_poll: float = DEFAULT_MAX_POLL,
        check: bool = True,
    ) -> UserOperationReceipt:
        """Poll until the receipt arrives and return it.

        Raises :class:`UserOperationTimeoutError` after ``timeout`` seconds without one (each query may
        overrun the deadline by at most the bundler client's own request timeout), or without the node
        confirming it (when there is a node); :class:`ReceiptContradictedError` when the node contradicts
        the bundler's receipt; and
        :class:`UserOperationFailedError` when the operation was included but reverted, unless ``check`` is
        false. A rejection other than a transient one (see the module's docstring) is raised at once.
        """
        return wait_many([self], timeout, poll=poll, max_poll=max_poll, check=check)[0]


def submit(
    bundler: Bundler, op: UserOperation, entry_point: str, *, node: TransactionReceipts | None = None
) -> PendingUserOperation:
    """Send ``op`` through ``bundler`` and return its :class:`PendingUserOperation` (whose receipt ``node``
    confirms, when given)."""
    entry = to_address(entry_point)
    return PendingUserOperation(
        bundler, bundler.send_user_operation(op, entry), op, node=node, entry_point=entry
    )


def _quantity(value: Any, name: str, tx_hex: str) -> int:
    """A quantity of the node's transaction receipt: an int (web3.py's form) or hex text (JSON-RPC's)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return to_int(value, name=name)
    except BadInputError as exc:
        raise TransportError(
            f"the node answered {_TX_RECEIPT} for {tx_hex} with a {name} that is no number: {exc}",
            method=_TX_RECEIPT,
        ) from exc


def wait_many(
    pendings: Sequence[PendingUserOperation],
    timeout: float = 60.0,
    *,
    poll: float = DEFAULT_POLL,
    max_poll: float = DEFAULT_MAX_POLL,
    check: bool = True,
) -> list[UserOperationReceipt]:
    """Wait for all of ``pendings`` within one ``timeout``; their receipts, in the same order.

    Each round queries every operation still without a receipt. On timeout, raises
    :class:`UserOperationTimeoutError` for the first one still pending. With ``check``, raises
    :class:`UserOperationFailedError` for the first (in order) that reverted, once all are included.
    """
    _check_polling(timeout, poll, max_poll)
    deadline = time.monotonic() + timeout
    interval = poll
    last_error: Exception | None = None
    errors: dict[int, Exception] = {}
    while True:
        waiting = [p for p in pendings if p._receipt is None]
        for pending in waiting:
            try:
                pending.receipt()
            except Exception as exc:
                if not _transient(exc):
                    raise
                last_error = errors[id(pending)] = exc
            else:
                errors.pop(id(pending), None)
        waiting = [p for p in waiting if p._receipt is None]
        if not waiting:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            advice = None
            unconfirmed = errors.get(id(waiting[0]))
            if isinstance(unconfirmed, ReceiptUnconfirmedError):
                last_error = unconfirmed
                advice = (
                    f"the bundler reported it included in transaction {unconfirmed.transaction_hash} (block "
                    f"{unconfirmed.block_number}), which the node has not confirmed: call wait() again if the node "
                    "is behind; if the node never has it, the bundler made the receipt up"
                )
            raise UserOperationTimeoutError(waiting[0].hex_hash, timeout, advice=advice) from last_error
        time.sleep(min(interval, remaining))
        interval = min(interval * _BACKOFF, max_poll)
    receipts = [p._receipt for p in pendings if p._receipt is not None]
    if check:
        for pending, receipt in zip(pendings, receipts, strict=True):
            pending.check(receipt)
    return receipts
