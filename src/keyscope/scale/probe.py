"""What became of a recorded operation, and the one thing a worker may do about it: send the SAME operation.

:class:`Prober` answers for one outbox record, in this order:

1. a receipt exists (bundler) and the node confirms it → **included** (with its transaction and execution
   result, the node's);
2. the bundler reports the operation (``eth_getUserOperationByHash``) → **waiting** for it to land;
3. the operation's nonce is already used on chain → it can never land again: if the chain's event for its
   hash exists it was **included**; if the chain's event for that nonce names another operation, this one
   was **displaced** (its intent may be built again: the old operation can never execute); without the
   node's log to tell → **failed**;
4. otherwise the operation is sent again, byte for byte (same userOpHash): accepted, or already held by the
   bundler → **sent**; refused for good → **failed** with the bundler's reason; bundler unreachable or a
   conflicting operation in its mempool → **waiting**.

Nothing here ever builds or signs: the prober only ever sends the operation recorded for an intent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ..bundler.pending import PendingUserOperation, TransactionReceipts
from ..errors import BundlerRejectedError, KeyscopeError, ReceiptContradictedError, TransportError
from ..network import Network
from ..store import OutboxRecord
from ..userop import UserOperation
from .events import EventLog, UserOperationEvent

__all__ = ["UNREACHABLE", "Outcome", "Prober", "Verdict"]

log = logging.getLogger("keyscope.worker")

_SEQUENCE_BITS = 64

UNREACHABLE = "the bundler is unreachable"
"""How a WAITING outcome's reason starts when the bundler did not answer."""


class Verdict(str, Enum):
    """What a probe found."""

    INCLUDED = "included"
    """On chain (``success`` says whether its call succeeded)."""
    FAILED = "failed"
    """Can never land (``reason`` says why)."""
    DISPLACED = "displaced"
    """Can never land because another operation (``consumer``) used its nonce: the intent is not done."""
    SENT = "sent"
    """A bundler holds it now: accepted again, or it already had it."""
    WAITING = "waiting"
    """Unknown yet: the bundler is unreachable, or holds a conflicting operation; ask again later."""


@dataclass(frozen=True)
class Outcome:
    """A probe's answer."""

    verdict: Verdict
    tx_hash: str | None = None
    success: bool | None = None
    reason: str = ""
    consumer: UserOperationEvent | None = None
    """For a displaced operation: the event of the operation that used its nonce."""

    @property
    def final(self) -> bool:
        """Included or failed: nothing more will happen to the operation."""
        return self.verdict in (Verdict.INCLUDED, Verdict.FAILED)


def _transient(exc: BundlerRejectedError) -> bool:
    """A bundler error that says nothing about the operation (internal error, overload)."""
    if exc.reason is not None:
        return False
    return exc.code in (0, -32603) or -32099 <= exc.code <= -32000


def _already_known(exc: BundlerRejectedError) -> bool:
    return "already known" in exc.rpc_message.lower()


def _nonce_problem(exc: BundlerRejectedError) -> bool:
    return exc.reason == "AA25" or "nonce" in exc.rpc_message.lower()


class Prober:
    """Probes and (re)sends recorded operations on ``network``; ``events`` (the node's log) makes the
    nonce-consumed case exact, without it receipts are asked again for ``grace`` seconds."""

    def __init__(self, network: Network, events: EventLog | None, *, grace: float = 2.0) -> None:
        self.network = network
        self.events = events
        self.grace = grace

    # -- the single questions -------------------------------------------------------------------------

    def receipt(self, user_op_hash: str, op: UserOperation | None = None) -> Outcome | None:
        """INCLUDED when the bundler has a receipt of ``user_op_hash`` (of ``op``'s sender and nonce, when given)
        that the node confirms, as :class:`~keyscope.bundler.PendingUserOperation` confirms one: the transaction it
        names holds the EntryPoint's ``UserOperationEvent`` of the operation with the same sender, nonce and
        success. None when the bundler has none or cannot be asked, and when the node does not confirm it (it may
        be behind; a receipt the node contradicts is logged): a receipt is the bundler's word, which could have an
        operation never sent, or one that reverted, recorded as landed. Only a node without
        ``eth_getTransactionReceipt`` leaves the bundler's word to go by."""
        net = self.network
        node = net.chain if isinstance(net.chain, TransactionReceipts) else None
        pending = PendingUserOperation(
            net.bundler,
            user_op_hash,
            op,
            node=node,
            entry_point=net.entry_point if node is not None else None,
        )
        try:
            receipt = pending.receipt()
        except ReceiptContradictedError as exc:
            log.warning("the bundler's receipt of %s is not taken: %s", user_op_hash, exc)
            return None
        except (
            TransportError,
            BundlerRejectedError,
        ) as exc:  # ReceiptUnconfirmedError too: asked again later
            log.debug("receipt of %s: %s", user_op_hash, exc)
            return None
        if receipt is None:
            return None
        return Outcome(Verdict.INCLUDED, "0x" + receipt.transaction_hash.hex(), receipt.success)

    def nonce_used(self, op: UserOperation) -> bool:
        """Whether the EntryPoint's nonce of ``op``'s lane is already past ``op.nonce``."""
        net = self.network
        current = net.chain.get_nonce(net.entry_point, op.sender, op.nonce >> _SEQUENCE_BITS)
        return current > op.nonce

    def user_op_hash(self, op: UserOperation) -> str:
        """The userOpHash of ``op`` on this network (for its EntryPoint's version)."""
        return "0x" + self.network.user_op_hash(op).hex()

    # -- the whole probe ------------------------------------------------------------------------------

    def probe(self, record: OutboxRecord, *, may_send: Callable[[], Outcome | None] | None = None) -> Outcome:
        """Find out what became of ``record``'s operation; send it again when a bundler may have lost it.

        ``may_send`` is asked right before the operation would be sent again: an outcome it returns is the
        answer instead (the operation is not sent)."""
        found = self.receipt(record.user_op_hash, record.op)
        if found is not None:
            return found
        try:
            known = self.network.bundler.get_user_operation_by_hash(bytes.fromhex(record.user_op_hash[2:]))
        except TransportError as exc:
            return Outcome(Verdict.WAITING, reason=f"{UNREACHABLE}: {exc}")
        except BundlerRejectedError as exc:
            return Outcome(Verdict.WAITING, reason=f"the bundler cannot be asked: {exc}")
        if known is not None:
            if known.get("transactionHash"):
                # included, but no receipt served yet: the node's log has the outcome, else ask again later
                event = self._event(record.user_op_hash)
                if event is not None:
                    return Outcome(Verdict.INCLUDED, event.tx_hash, event.success)
                return Outcome(Verdict.WAITING, reason="included, receipt not served yet")
            return Outcome(Verdict.SENT, reason="the bundler holds it")
        settled = self._settle_if_used(record)
        if settled is not None:
            return settled
        refused = may_send() if may_send is not None else None
        return refused if refused is not None else self.submit(record)

    def submit(self, record: OutboxRecord) -> Outcome:
        """Send ``record``'s operation (again) exactly as recorded."""
        net = self.network
        try:
            returned = net.bundler.send_user_operation(record.op, net.entry_point)
        except TransportError as exc:
            return Outcome(Verdict.WAITING, reason=f"{UNREACHABLE}: {exc}")
        except BundlerRejectedError as exc:
            if _already_known(exc):
                return Outcome(Verdict.SENT, reason="the bundler already holds it")
            if _transient(exc):
                return Outcome(Verdict.WAITING, reason=str(exc))
            # The refusal was judged on the chain's state when the bundler simulated: this very operation may
            # have landed just before (its nonce is used then, and e.g. a creating operation is refused with
            # AA10). Only a nonce still unused, read after the refusal, makes the refusal final.
            settled = self._settle_if_used(record)
            if settled is not None:
                return settled
            if _nonce_problem(exc):
                # another operation with this nonce (or a creating one) is in the bundler's mempool: whichever
                # lands decides; until then this one is neither lost nor final
                return Outcome(Verdict.WAITING, reason=str(exc))
            return Outcome(Verdict.FAILED, reason=f"rejected by the bundler: {exc}")
        returned_hex = "0x" + bytes(returned).hex()
        if returned_hex != record.user_op_hash:
            log.error(
                "the bundler answered userOpHash %s for operation %s: is the network's chain id right?",
                returned_hex,
                record.user_op_hash,
            )
        return Outcome(Verdict.SENT)

    def settle_used(self, record: OutboxRecord) -> Outcome:
        """``record``'s nonce is used: INCLUDED if this operation used it, DISPLACED when the node's log names
        the operation that did, else FAILED."""
        if self.events is not None:
            try:
                event = self.events.find(record.user_op_hash)
            except KeyscopeError as exc:
                return Outcome(Verdict.WAITING, reason=f"the node's log cannot be read: {exc}")
            if event is not None:
                return Outcome(Verdict.INCLUDED, event.tx_hash, event.success)
        else:
            deadline = time.monotonic() + self.grace
            while True:
                found = self.receipt(record.user_op_hash, record.op)
                if found is not None:
                    return found
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(0.25, self.grace))
        consumer = None
        if self.events is not None:
            try:
                consumer = self.events.consumer_of(record.op.sender, record.op.nonce)
            except KeyscopeError:
                consumer = None
        if consumer is not None and consumer.user_op_hash == record.user_op_hash:
            # its own event, there by now (a block mined since the lookup above): it landed
            return Outcome(Verdict.INCLUDED, consumer.tx_hash, consumer.success)
        sequence = record.op.nonce & (2**_SEQUENCE_BITS - 1)
        if consumer is not None:
            return Outcome(
                Verdict.DISPLACED,
                reason=f"nonce {sequence} of lane {record.lane} was used by UserOperation "
                f"{consumer.user_op_hash}; this operation can never land",
                consumer=consumer,
            )
        return Outcome(
            Verdict.FAILED,
            reason=f"nonce {sequence} of lane {record.lane} was used by another operation (the node's log cannot "
            "name it); this operation can never land",
        )

    def _used(self, op: UserOperation) -> bool:
        return self.nonce_used(op)

    def _settle_if_used(self, record: OutboxRecord) -> Outcome | None:
        """:meth:`settle_used` when ``record``'s nonce is used; WAITING when the node cannot say; None when the
        nonce is still unused."""
        try:
            used = self._used(record.op)
        except KeyscopeError as exc:
            return Outcome(Verdict.WAITING, reason=f"the node cannot be asked: {exc}")
        return self.settle_used(record) if used else None

    def _event(self, user_op_hash: str) -> UserOperationEvent | None:
        if self.events is None:
            return None
        try:
            return self.events.find(user_op_hash)
        except KeyscopeError:
            return None
