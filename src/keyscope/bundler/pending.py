"""Waiting for a sent UserOperation: :class:`PendingUserOperation` polls its receipt with backoff.

Polling asks ``eth_getUserOperationReceipt`` first after ``poll`` seconds, then at intervals growing by
``backoff`` up to ``max_poll``. Transport errors and a bundler's internal errors while polling are retried
until the deadline; a timeout raises :class:`~keyscope.errors.UserOperationTimeoutError` (the operation may
still be included later); a receipt with ``success`` false raises
:class:`~keyscope.errors.UserOperationFailedError` with the decoded revert reason, unless ``check=False``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..errors import (
    BadInputError,
    BundlerRejectedError,
    TransportError,
    UserOperationFailedError,
    UserOperationTimeoutError,
)
from ..hexutil import to_address, to_bytes
from ..revert import describe_revert
from ..userop import UserOperation
from .types import Bundler, UserOperationReceipt

__all__ = ["DEFAULT_MAX_POLL", "DEFAULT_POLL", "PendingUserOperation", "submit", "wait_many"]

DEFAULT_POLL = 0.075
"""Seconds before the first receipt query."""

DEFAULT_MAX_POLL = 1.5
"""The longest pause between two receipt queries."""

_BACKOFF = 1.6


def _transient(exc: Exception) -> bool:
    """Errors worth retrying while polling: the bundler unreachable or failing internally."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, BundlerRejectedError) and (exc.code in (0, -32603) or -32099 <= exc.code <= -32000)


def _check_polling(timeout: float, poll: float, max_poll: float) -> None:
    if not timeout >= 0:
        raise BadInputError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    if not 0 < poll <= max_poll:
        raise BadInputError(f"poll ({poll!r}) and max_poll ({max_poll!r}) must satisfy 0 < poll <= max_poll")


class PendingUserOperation:
    """A UserOperation sent to ``bundler`` under ``user_op_hash`` (``op`` kept for reference when given)."""

    def __init__(self, bundler: Bundler, user_op_hash: bytes | str, op: UserOperation | None = None) -> None:
        self.bundler = bundler
        self._hash = to_bytes(user_op_hash, name="user_op_hash", length=32)
        self.op = op
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
        """The receipt, or None while the operation is not included (one query; remembered once found)."""
        if self._receipt is None:
            receipt = self.bundler.get_user_operation_receipt(self._hash)
            if receipt is not None:
                self._check_describes(receipt)
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
        overrun the deadline by at most the bundler client's own request timeout), and
        :class:`UserOperationFailedError` when the operation was included but reverted, unless ``check`` is
        false. A rejection other than a transient one (see the module's docstring) is raised at once.
        """
        return wait_many([self], timeout, poll=poll, max_poll=max_poll, check=check)[0]


def submit(bundler: Bundler, op: UserOperation, entry_point: str) -> PendingUserOperation:
    """Send ``op`` through ``bundler`` and return its :class:`PendingUserOperation`."""
    return PendingUserOperation(bundler, bundler.send_user_operation(op, to_address(entry_point)), op)


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
    while True:
        waiting = [p for p in pendings if p._receipt is None]
        for pending in waiting:
            try:
                pending.receipt()
            except Exception as exc:
                if not _transient(exc):
                    raise
                last_error = exc
        waiting = [p for p in waiting if p._receipt is None]
        if not waiting:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UserOperationTimeoutError(waiting[0].hex_hash, timeout) from last_error
        time.sleep(min(interval, remaining))
        interval = min(interval * _BACKOFF, max_poll)
    receipts = [p._receipt for p in pendings if p._receipt is not None]
    if check:
        for pending, receipt in zip(pendings, receipts, strict=True):
            pending.check(receipt)
    return receipts
