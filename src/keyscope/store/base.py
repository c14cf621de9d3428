"""The session store interface: where a dapp keeps session keys, grants, nonce lanes and its outbox.

One abstract class, :class:`SessionStore`, with four backends chosen by URL through
:func:`~keyscope.store.opening.open_store`:

==========================================  ===========================================================
``memory://``                               in this process only (tests, one-off scripts)
``file:///path/to/dir`` or a plain path     a directory of JSON files; keys in keystore v3 files
``sqlite:///path.db``                       one SQLite file: several processes on one machine
``postgresql://user@host:port/db``          PostgreSQL: many workers on several machines
==========================================  ===========================================================

Four kinds of records:

* **keys**: session private keys, encrypted at rest in every persistent backend.
* **grants**: :class:`~keyscope.grant.SessionGrant` records with their revoked / enabled flags.
* **nonce lanes**: small integers leased to one worker at a time per (account, session), so that parallel
  workers never race on one EntryPoint nonce sequence; the caller turns a lane into a nonce key.
* **outbox**: a durable record of every UserOperation, written before it is sent, keyed by the caller's
  idempotency key (``intent_id``) and followed through ``built -> sent -> included | failed``.

Every method is safe to call from several threads; the SQL backends also from several processes and
machines sharing one database.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from types import TracebackType

from ..errors import BadInputError, SessionStoreError
from ..grant import SessionGrant
from ..hexutil import to_address, to_bytes
from ..signing import LocalSigner
from ..userop import UserOperation

__all__ = [
    "MAX_INTENT_ID",
    "MAX_WORKER_ID",
    "KeyInfo",
    "Lease",
    "OutboxRecord",
    "OutboxState",
    "SessionStore",
    "check_intent",
    "grant_is_active",
    "normalize_hash",
    "normalize_session_id",
]

MAX_INTENT_ID = 200
"""Longest ``intent_id`` (characters) a store accepts."""

MAX_WORKER_ID = 200
"""Longest ``worker_id`` (characters) a store accepts."""


class OutboxState(str, Enum):
    """Where an outbox record is: ``built -> sent -> included | failed``."""

    BUILT = "built"
    """Recorded, not handed to a bundler yet."""
    SENT = "sent"
    """Handed to a bundler at least once (``attempts`` counts the sends)."""
    INCLUDED = "included"
    """In a block (``success`` says whether its execution succeeded)."""
    FAILED = "failed"
    """Given up on: rejected, dropped or replaced (``error`` says why)."""


PENDING_STATES = (OutboxState.BUILT, OutboxState.SENT)


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without the key: its address, optional label and when it was stored."""

    address: str
    label: str | None
    created_at: float


@dataclass(frozen=True)
class Lease:
    """A nonce lane held by one worker until ``expires_at`` (seconds since the epoch, store clock).

    Renew it with :meth:`SessionStore.renew_lease` before it expires; once expired, the next
    :meth:`SessionStore.lease_lane` on the same (account, session) may hand the lane to another worker.
    """

    lane: int
    lease_id: str
    expires_at: float
    account: str
    session_id: str
    worker_id: str


@dataclass(frozen=True)
class OutboxRecord:
    """One UserOperation in the outbox, with its state, timestamps (seconds since the epoch) and attempts."""

    intent_id: str
    account: str
    session_id: str
    lane: int
    op: UserOperation
    user_op_hash: str
    state: OutboxState
    attempts: int
    created_at: float
    updated_at: float
    sent_at: float | None = None
    finished_at: float | None = None
    tx_hash: str | None = None
    success: bool | None = None
    error: str | None = None

    @property
    def is_pending(self) -> bool:
        """Built or sent: not finished yet."""
        return self.state in PENDING_STATES


# --------------------------------------------------------------------------------------------------
# Normalisation shared by the backends
# --------------------------------------------------------------------------------------------------


def _hex32(value: object, name: str) -> str:
    return "0x" + to_bytes(value, name=name, length=32).hex()


def normalize_session_id(value: object) -> str:
    """A session id (32 bytes, or 0x-hex) as ``0x`` and 64 lowercase hex digits."""
    return _hex32(value, "session id")


def normalize_hash(value: object, name: str = "user_op_hash") -> str:
    """A 32-byte hash (bytes or 0x-hex) as ``0x`` and 64 lowercase hex digits."""
    return _hex32(value, name)


def _check_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise BadInputError(
            f"{name} must be a non-empty string of at most {limit} characters without NUL, got {value!r}"
        )
    return value


def check_intent(
    intent_id: str,
    account: str,
    session_id: bytes | str,
    lane: int,
    op: UserOperation,
    user_op_hash: bytes | str,
) -> tuple[str, str, str, int, str]:
    """The arguments of :meth:`SessionStore.record_intent`, checked and normalised:
    ``(intent_id, account, session_id, lane, user_op_hash)``."""
    if not isinstance(op, UserOperation):
        raise BadInputError(f"record_intent takes a UserOperation, got {type(op).__name__}")
    return (
        check_intent_id(intent_id),
        to_address(account),
        normalize_session_id(session_id),
        check_lane(lane),
        normalize_hash(user_op_hash),
    )


def check_intent_id(intent_id: object) -> str:
    """Validate an idempotency key: a non-empty string of at most :data:`MAX_INTENT_ID` characters."""
    return _check_text(intent_id, "intent_id", MAX_INTENT_ID)


def check_worker_id(worker_id: object) -> str:
    """Validate a worker id: a non-empty string of at most :data:`MAX_WORKER_ID` characters."""
    return _check_text(worker_id, "worker_id", MAX_WORKER_ID)


def check_label(label: object) -> str | None:
    """Validate a key label: None, or a string without NUL of at most 1000 characters."""
    if label is None:
        return None
    if not isinstance(label, str) or len(label) > 1000 or "\x00" in label:
        raise BadInputError(
            f"a key label must be a string of at most 1000 characters without NUL, got {label!r}"
        )
    return label


def check_ttl(ttl_seconds: object) -> float:
    """Validate a lease time-to-live: a positive number of seconds."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)) or not ttl_seconds > 0:
        raise BadInputError(f"ttl_seconds must be a positive number of seconds, got {ttl_seconds!r}")
    return float(ttl_seconds)


def check_lane(lane: object) -> int:
    """Validate a lane number: an int >= 0."""
    if isinstance(lane, bool) or not isinstance(lane, int) or lane < 0:
        raise BadInputError(f"lane must be an int >= 0 (as lease_lane returns it), got {lane!r}")
    return lane


def grant_is_active(grant: SessionGrant, revoked: bool, now: float) -> bool:
    """Whether a grant can sign at ``now``: not revoked, and ``valid_after <= now <= valid_until``.

    ``valid_until`` 0 means no expiry. The bounds are inclusive, as the EntryPoint checks them.
    """
    if revoked or now < grant.valid_after:
        return False
    return grant.valid_until == 0 or now <= grant.valid_until


def transition_error(record: OutboxRecord, wanted: OutboxState) -> str:
    """The message for a state change the outbox does not allow."""
    return (
        f"outbox record {record.intent_id!r} (UserOperation {record.user_op_hash}) is {record.state.value}; "
        f"it cannot become {wanted.value}. Read it again with get_by_hash to see what happened to it."
    )


# --------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------


class SessionStore(abc.ABC):
    """Keys, grants, nonce lanes and the outbox behind one interface. Open one with :func:`open_store`."""

    url: str
    """Where the store lives (without any password)."""

    # -- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release connections and file handles. The store must not be used afterwards."""

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- keys ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def put_key(self, signer: LocalSigner, *, label: str | None = None) -> None:
        """Store ``signer``'s private key, encrypted at rest.

        Storing the same key again keeps it, and updates its label when ``label`` is given.
        """

    @abc.abstractmethod
    def get_key(self, address: str) -> LocalSigner:
        """The signer stored for ``address``; :class:`~keyscope.errors.SessionStoreError` when none is."""

    @abc.abstractmethod
    def has_key(self, address: str) -> bool:
        """Whether a key is stored for ``address`` (without decrypting it)."""

    @abc.abstractmethod
    def delete_key(self, address: str) -> bool:
        """Remove the key stored for ``address``; returns whether there was one."""

    @abc.abstractmethod
    def list_keys(self) -> list[KeyInfo]:
        """Addresses and labels of the stored keys (never the keys), oldest first."""

    # -- grants ----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def put_grant(self, grant: SessionGrant) -> None:
        """Store a grant. Storing it again replaces the grant but keeps its revoked and enabled flags."""

    @abc.abstractmethod
    def get_grant(self, session_id: bytes | str) -> SessionGrant:
        """The grant with this session id; :class:`~keyscope.errors.SessionStoreError` when unknown."""

    @abc.abstractmethod
    def list_grants(
        self,
        account: str | None = None,
        *,
        active_only: bool = False,
        now: float | None = None,
        on_corrupt: Callable[[str, SessionStoreError], None] | None = None,
    ) -> list[SessionGrant]:
        """Grants (of ``account`` when given), oldest first.

        ``active_only`` keeps those not revoked whose window contains ``now`` (default: the current time). A grant
        that cannot be read (a corrupted file or row) raises :class:`~keyscope.errors.SessionStoreError`; with
        ``on_corrupt``, it is passed to ``on_corrupt(session id or name, error)`` instead and the listing goes on
        (whatever ``account`` is asked for: an unreadable grant's account is unknown).
        """

    @abc.abstractmethod
    def _set_flag(self, session_id: bytes | str, flag: str) -> None:
        """Set the grant's ``flag`` (``revoked`` or ``enabled``); an unknown grant is an error."""

    @abc.abstractmethod
    def _flag(self, session_id: bytes | str, flag: str) -> bool:
        """The grant's ``flag`` (``revoked`` or ``enabled``); an unknown grant is an error."""

    def mark_revoked(self, session_id: bytes | str) -> None:
        """Record that the session was revoked. Every worker sees it on its next read; it is never undone."""
        self._set_flag(session_id, "revoked")

    def is_revoked(self, session_id: bytes | str) -> bool:
        """Whether the session was marked revoked."""
        return self._flag(session_id, "revoked")

    def mark_enabled(self, session_id: bytes | str) -> None:
        """Record that an off-chain grant's first operation landed: it no longer needs the ENABLE payload."""
        self._set_flag(session_id, "enabled")

    def is_enabled(self, session_id: bytes | str) -> bool:
        """Whether the session is stored on chain (always true for on-chain grants)."""
        return self._flag(session_id, "enabled")

    # -- nonce lanes -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def lease_lane(self, account: str, session_id: bytes | str, worker_id: str, ttl_seconds: float) -> Lease:
        """Lease the lowest free lane of (account, session) for ``ttl_seconds``, atomically.

        A lane is free when it was never leased, was released, or its lease expired (a dead worker's lease
        is reclaimed here). Two leases that are both live never share a lane.
        """

    @abc.abstractmethod
    def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease:
        """Extend a lease to ``ttl_seconds`` from now.

        Raises :class:`~keyscope.errors.StoreLockedError` when the lease was released or reclaimed by another
        worker: stop using its lane and lease a new one.
        """

    @abc.abstractmethod
    def release_lease(self, lease: Lease) -> bool:
        """Give the lane back; returns False when the lease was already released or reclaimed."""

    # -- outbox ----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def record_intent(
        self,
        intent_id: str,
        account: str,
        session_id: bytes | str,
        lane: int,
        op: UserOperation,
        user_op_hash: bytes | str,
    ) -> OutboxRecord:
        """Record an operation (state ``built``) before it is sent.

        ``intent_id`` is the caller's idempotency key: recording the same intent again returns the record
        already there, unchanged (even if ``op`` differs), so an intent never yields two operations.
        """

    @abc.abstractmethod
    def mark_sent(self, user_op_hash: bytes | str) -> OutboxRecord:
        """A bundler accepted the operation (again): state ``sent``, one more attempt."""

    @abc.abstractmethod
    def mark_included(self, user_op_hash: bytes | str, tx_hash: bytes | str, success: bool) -> OutboxRecord:
        """The operation landed in transaction ``tx_hash``; ``success`` is its execution result."""

    @abc.abstractmethod
    def mark_failed(self, user_op_hash: bytes | str, reason: str) -> OutboxRecord:
        """Give up on an operation that did not land (rejected, dropped, replaced)."""

    @abc.abstractmethod
    def get_by_intent(self, intent_id: str) -> OutboxRecord | None:
        """The record of ``intent_id``, or None."""

    @abc.abstractmethod
    def get_by_hash(self, user_op_hash: bytes | str) -> OutboxRecord | None:
        """The record of the operation with this hash, or None."""

    @abc.abstractmethod
    def pending(self, older_than: float | None = None, *, now: float | None = None) -> list[OutboxRecord]:
        """Built or sent records, oldest first: what a recovering worker must finish.

        ``older_than`` (seconds) keeps those not updated for at least that long before ``now``.
        """

    @abc.abstractmethod
    def list_outbox(self, state: OutboxState | str | None = None, *, limit: int = 100) -> list[OutboxRecord]:
        """The newest ``limit`` records (in ``state`` when given), newest first."""


def pending_cutoff(older_than: float | None, now: float) -> float | None:
    """The ``updated_at`` bound for :meth:`SessionStore.pending`, after checking ``older_than``."""
    if older_than is None:
        return None
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or older_than < 0:
        raise BadInputError(f"older_than must be a number of seconds >= 0, got {older_than!r}")
    return now - older_than


def check_state(state: OutboxState | str | None) -> OutboxState | None:
    """An outbox state given by value or member."""
    if state is None or isinstance(state, OutboxState):
        return state
    try:
        return OutboxState(state)
    except ValueError:
        names = ", ".join(s.value for s in OutboxState)
        raise BadInputError(f"unknown outbox state {state!r}: use one of {names}") from None


def check_limit(limit: object) -> int:
    """A positive page size."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadInputError(f"limit must be an int >= 1, got {limit!r}")
    return limit


def now_or(now: float | None) -> float:
    """``now`` or the current time."""
    return time.time() if now is None else float(now)
