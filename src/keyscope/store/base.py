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

Two rules make the outbox safe whatever the timing of the workers (docs/scaling.md, "The fenced guarantee"):

* **Fencing.** An operation recorded with ``lease=`` is written only if that lease still holds its lane,
  checked in the same transaction as the write (:class:`~keyscope.errors.LeaseLostError` otherwise).
* **One nonce, one operation.** No two records of one account that are not failed have the same nonce (key
  and sequence): a unique key in the SQL stores (:class:`~keyscope.errors.NonceTakenError` otherwise).

The public methods check and normalise their arguments here, once; backends implement the ``_``-prefixed
methods with values already checked.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any

from ..errors import BadInputError, LeaseLostError, NonceTakenError, SessionStoreError, shown
from ..grant import SessionGrant
from ..hexutil import to_address, to_bytes
from ..signing import LocalSigner
from ..userop import UserOperation

__all__ = [
    "MAX_INTENT_ID",
    "MAX_LANE",
    "MAX_WORKER_ID",
    "KeyInfo",
    "Lease",
    "NewOperation",
    "OnCorrupt",
    "OutboxRecord",
    "OutboxState",
    "SessionStore",
    "check_intent",
    "grant_is_active",
    "nonce_text",
    "normalize_hash",
    "normalize_session_id",
    "refuse_another_place",
    "storable_text",
    "stored_record",
]

MAX_INTENT_ID = 200
"""Longest ``intent_id`` (characters) a store accepts."""

MAX_WORKER_ID = 200
"""Longest ``worker_id`` (characters) a store accepts."""

MAX_LANE = 2**31 - 1
"""Highest lane number a store accepts (the SQL stores keep it in a 32-bit integer column; account kinds
have room for at most 2**32 lanes in the nonce key)."""


class OutboxState(str, Enum):
    """Where an outbox record is: ``built -> sent -> included | failed``."""

    BUILT = "built"
    """Recorded, not handed to a bundler yet."""
    SENT = "sent"
    """Handed to a bundler at least once (``attempts`` counts the sends)."""
    INCLUDED = "included"
    """In a block (``success`` says whether its execution succeeded)."""
    FAILED = "failed"
    """Given up on: it can never land (``error`` says why)."""


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
    ``lease_id`` is the fencing token: a write made under the lease (``record_intent(..., lease=)``) is
    refused once another lease holds the lane.
    """

    lane: int
    lease_id: str
    expires_at: float
    account: str
    session_id: str
    worker_id: str


@dataclass(frozen=True)
class NewOperation:
    """An operation to record, its arguments checked and normalised (what a backend writes)."""

    intent_id: str
    account: str
    session_id: str
    lane: int
    op: UserOperation
    user_op_hash: str

    @property
    def nonce(self) -> str:
        """The operation's full nonce (key and sequence) as the stores key it: see :func:`nonce_text`."""
        return nonce_text(self.op.nonce)


@dataclass(frozen=True)
class OutboxRecord(NewOperation):
    """One intent's UserOperation in the outbox (the :class:`NewOperation` recorded), with its state, timestamps
    (seconds since the epoch) and attempts.

    ``rebuilds`` counts the times the intent's operation was displaced (its nonce used by another operation,
    so it could never land) and replaced by a new one; ``displaced`` lists their userOpHashes, oldest first.
    """

    state: OutboxState
    attempts: int
    created_at: float
    updated_at: float
    sent_at: float | None = None
    finished_at: float | None = None
    tx_hash: str | None = None
    success: bool | None = None
    error: str | None = None
    rebuilds: int = 0
    displaced: tuple[str, ...] = ()

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


def nonce_text(nonce: int) -> str:
    """A 256-bit EntryPoint nonce (192-bit key, 64-bit sequence) as ``0x`` and 64 lowercase hex digits:
    fixed width, so that equal nonces are equal strings."""
    return "0x" + nonce.to_bytes(32, "big").hex()


def stored_record(fields: Mapping[str, Any], op: UserOperation, displaced: object) -> OutboxRecord:
    """An outbox record from a backend's stored fields (a row's columns or a document's keys, by the names of
    :class:`OutboxRecord`; ``op`` and ``displaced``, a list of hashes, decoded by the backend), each checked
    and normalised. Raises ``KeyError``, ``TypeError`` or ``ValueError`` on a field that is missing or not
    what the store writes: the backend reports the record as corrupted."""
    if not isinstance(displaced, list):
        raise TypeError("displaced is not a list")
    tx_hash, success, error = fields.get("tx_hash"), fields.get("success"), fields.get("error")
    if success is not None and not isinstance(success, bool):
        raise TypeError(f"success {success!r} is not a bool")
    if error is not None and not isinstance(error, str):
        raise TypeError(f"error {error!r} is not a string")
    return OutboxRecord(
        intent_id=str(fields["intent_id"]),
        account=to_address(fields["account"]),
        session_id=normalize_session_id(fields["session_id"]),
        lane=check_lane(fields["lane"]),
        op=op,
        user_op_hash=normalize_hash(fields["user_op_hash"]),
        state=OutboxState(fields["state"]),
        attempts=int(fields["attempts"]),
        created_at=float(fields["created_at"]),
        updated_at=float(fields["updated_at"]),
        sent_at=_optional_float(fields.get("sent_at")),
        finished_at=_optional_float(fields.get("finished_at")),
        tx_hash=None if tx_hash is None else normalize_hash(tx_hash, "tx_hash"),
        success=success,
        error=error,
        rebuilds=int(fields.get("rebuilds") or 0),
        displaced=tuple(normalize_hash(h, "displaced") for h in displaced),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _unicode(text: str) -> bool:
    """Whether ``text`` is Unicode text a database can store: no lone surrogate (which has no UTF-8 form)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """``text`` as every backend can store it, its meaning kept: a NUL (which PostgreSQL refuses in text) and
    a lone surrogate (which has no UTF-8 form; JSON's ``"\\ud800"`` decodes to one) written out as
    backslash escapes. For text the store records as it is told (a failure reason), not for keys it looks
    records up by."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(value: object, name: str, limit: int) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > limit
        or "\x00" in value
        or not _unicode(value)
    ):
        raise BadInputError(
            f"{name} must be a non-empty string of at most {limit} characters without NUL or lone "
            f"surrogates (text a database can store), got {shown(value)}"
        )
    return value


def check_intent(
    intent_id: str,
    account: str,
    session_id: bytes | str,
    lane: int,
    op: UserOperation,
    user_op_hash: bytes | str,
) -> NewOperation:
    """The arguments of :meth:`SessionStore.record_intent`, checked and normalised."""
    if not isinstance(op, UserOperation):
        raise BadInputError(f"record_intent takes a UserOperation, got {type(op).__name__}")
    owner = to_address(account)
    if op.sender != owner:
        raise BadInputError(
            f"the operation's sender {op.sender} is not the account {owner} it is recorded for: record "
            "an operation under its own account"
        )
    return NewOperation(
        check_intent_id(intent_id),
        owner,
        normalize_session_id(session_id),
        check_lane(lane),
        op,
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
    if not isinstance(label, str) or len(label) > 1000 or "\x00" in label or not _unicode(label):
        raise BadInputError(
            f"a key label must be a string of at most 1000 characters without NUL or lone surrogates, got "
            f"{shown(label)}"
        )
    return label


def check_ttl(ttl_seconds: object) -> float:
    """Validate a lease time-to-live: a positive number of seconds."""
    if (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, (int, float))
        or not 0 < ttl_seconds < math.inf
    ):
        raise BadInputError(
            f"ttl_seconds must be a positive, finite number of seconds, got {shown(ttl_seconds)}"
        )
    return float(ttl_seconds)


def check_lane(lane: object) -> int:
    """Validate a lane number: an int from 0 to :data:`MAX_LANE`."""
    if isinstance(lane, bool) or not isinstance(lane, int) or not 0 <= lane <= MAX_LANE:
        raise BadInputError(
            f"lane must be an int from 0 to {MAX_LANE} (as lease_lane returns it), got {shown(lane)}"
        )
    return lane


def check_lease(lease: object) -> Lease:
    """A :class:`Lease` as :meth:`SessionStore.lease_lane` returns it."""
    if not isinstance(lease, Lease):
        raise BadInputError(f"expected a Lease from lease_lane, got {type(lease).__name__}")
    return lease


def check_fence(lease: Lease | None, entry: NewOperation) -> Lease | None:
    """The lease a write is fenced by, which must be the lease of the lane the operation is recorded on."""
    if lease is None:
        return None
    check_lease(lease)
    if (lease.account, lease.session_id, lease.lane) != (entry.account, entry.session_id, entry.lane):
        raise BadInputError(
            f"the lease is for lane {lease.lane} of {lease.account}/{lease.session_id}, but the operation is "
            f"recorded on lane {entry.lane} of {entry.account}/{entry.session_id}: record it under the "
            "lease of its own lane"
        )
    return lease


def lease_lost(lease: Lease, url: str) -> LeaseLostError:
    """The error for a lease that no longer holds its lane."""
    return LeaseLostError(
        f"lease {lease.lease_id} on lane {lease.lane} of {lease.account}/{lease.session_id} in {url} is no "
        "longer held (released, or reclaimed by another worker after it expired): nothing was written; stop "
        "using that lane and lease a new one",
        account=lease.account,
        session_id=lease.session_id,
        lane=lease.lane,
        lease_id=lease.lease_id,
    )


def nonce_taken(entry: NewOperation, holder: OutboxRecord, url: str) -> NonceTakenError:
    """The error for an operation whose nonce another live or landed record already has."""
    sequence = entry.op.nonce & (2**64 - 1)
    return NonceTakenError(
        f"nonce {sequence} (key {entry.op.nonce >> 64:#x}) of {entry.account} is already taken in {url} by "
        f"intent {holder.intent_id!r} (UserOperation {holder.user_op_hash}, {holder.state.value}): at most "
        "one of the two could land, so this one was not recorded; build it again once that one is finished",
        account=entry.account,
        nonce=entry.op.nonce,
        holder=holder.intent_id,
        holder_hash=holder.user_op_hash,
    )


def hash_taken(entry: NewOperation, other: OutboxRecord) -> BadInputError:
    """The error for an operation already recorded under another intent."""
    return BadInputError(
        f"UserOperation {entry.user_op_hash} is already recorded for intent {other.intent_id!r}: record each "
        "operation under one intent_id"
    )


def needs_rebuild(current: OutboxRecord | None, entry: NewOperation, displaced: str, url: str) -> bool:
    """Whether the intent's record ``current`` still holds the ``displaced`` operation, so that ``entry``
    replaces it; False when another worker rebuilt it first or it landed after all."""
    if current is None:
        raise SessionStoreError(
            f"no outbox record for intent {entry.intent_id!r} in {url}: record_intent it first"
        )
    if current.user_op_hash != displaced or current.state is OutboxState.INCLUDED:
        return False
    if (current.account, current.session_id) != (entry.account, entry.session_id):
        raise BadInputError(
            f"intent {entry.intent_id!r} is for {current.account}/{current.session_id}, not "
            f"{entry.account}/{entry.session_id}: rebuild it under a lease of its own session"
        )
    return True


def refuse_another_place(stored: SessionGrant, grant: SessionGrant, url: str) -> None:
    """Raise :class:`~keyscope.errors.BadInputError` when ``grant`` would replace ``stored``, the grant kept under
    the same session id, with one of another chain, module or EntryPoint. The module computes a session's id
    from the session, the account and the epoch alone, and keyscope's contracts and accounts have the same
    addresses on every chain: the same session granted on two chains (or at two deployments of the module) has one
    id, and the store keeps one grant, one revoked mark and one set of lanes per id. Replacing it lost the first
    grant (its owner signature too), left the first chain's (or module's) workers refusing the session as another
    one's, and sent ``keyscope revoke --node``, which revokes at the stored grant's module, to the other module: the
    session at the first stayed live while the command said it was revoked on chain."""
    for what, kept, given in (
        ("chain", stored.chain_id, grant.chain_id),
        ("module", stored.module, grant.module),
        ("EntryPoint", stored.entry_point, grant.entry_point),
    ):
        if kept != given:
            raise BadInputError(
                f"session 0x{grant.session_id.hex()} is stored in {url} as granted on the {what} {kept}; this grant "
                f"is for the {what} {given}, under the same id (a session's id does not name the chain or the "
                "module): nothing was stored. Grant it there with another salt (owner.grant(..., salt=...)), or "
                f"keep the grants of the {what} {given} in a store of their own"
            )


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


def unknown_operation(op_hash: str, url: str, change: str) -> str:
    """The message for a state change of an operation the outbox does not have."""
    return (
        f"no outbox record for UserOperation {op_hash} in {url}: record_intent it before {change} (or it "
        "was displaced and its intent rebuilt: read the intent with get_by_intent)"
    )


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
        raise BadInputError(f"unknown outbox state {shown(state)}: use one of {names}") from None


def check_limit(limit: object) -> int:
    """A positive page size, at most 2**63 - 1 (what a database's integers hold; every store takes the same)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit < 2**63:
        raise BadInputError(f"limit must be an int from 1 to 2**63 - 1, got {shown(limit)}")
    return limit


OnCorrupt = Callable[[str, SessionStoreError], None]
"""What :meth:`SessionStore.list_grants` and :meth:`SessionStore.pending` tell of a record they cannot read: its
session id, intent id or name, and the error."""


def now_or(now: float | None) -> float:
    """``now`` or the current time."""
    return time.time() if now is None else float(now)


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

    def put_key(self, signer: LocalSigner, *, label: str | None = None) -> None:
        """Store ``signer``'s private key, encrypted at rest.

        Storing the same key again keeps it, and updates its label when ``label`` is given.
        """
        if not isinstance(signer, LocalSigner):
            raise BadInputError(f"put_key takes a LocalSigner, got {type(signer).__name__}")
        self._put_key(signer, check_label(label))

    @abc.abstractmethod
    def _put_key(self, signer: LocalSigner, label: str | None) -> None:
        """Store the key (arguments checked)."""

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

    def has_secret(self) -> bool:
        """Whether the store's keys are bound to a passphrase or key-encryption key already (the first one
        the store was opened with to store keys). Until then, the first secret a store is opened with becomes
        its secret: a command that only reads opens it without one (a mistyped secret would lock the workers
        out)."""
        return False

    # -- grants ----------------------------------------------------------------------------------------

    def put_grant(self, grant: SessionGrant) -> None:
        """Store a grant. Storing it again replaces the grant but keeps its revoked and enabled flags; a grant of
        another chain, module or EntryPoint under the id of a stored one is refused
        (:class:`~keyscope.errors.BadInputError`): the id names no chain or module, and the store keeps one grant
        and one revoked mark per id."""
        if not isinstance(grant, SessionGrant):
            raise BadInputError(f"put_grant takes a SessionGrant, got {type(grant).__name__}")
        self._put_grant(grant, normalize_session_id(grant.session_id))

    @abc.abstractmethod
    def _put_grant(self, grant: SessionGrant, session_id: str) -> None:
        """Store the grant under its normalised ``session_id``."""

    @abc.abstractmethod
    def get_grant(self, session_id: bytes | str) -> SessionGrant:
        """The grant with this session id; :class:`~keyscope.errors.SessionStoreError` when unknown."""

    def list_grants(
        self,
        account: str | None = None,
        *,
        active_only: bool = False,
        now: float | None = None,
        on_corrupt: OnCorrupt | None = None,
    ) -> list[SessionGrant]:
        """Grants (of ``account`` when given), oldest first.

        ``active_only`` keeps those not revoked whose window contains ``now`` (default: the current time). A grant
        that cannot be read (a corrupted file or row) raises :class:`~keyscope.errors.SessionStoreError`; with
        ``on_corrupt``, it is passed to ``on_corrupt(session id or name, error)`` instead and the listing goes on
        (whatever ``account`` is asked for: an unreadable grant's account is unknown).
        """
        wanted = to_address(account) if account is not None else None
        return self._list_grants(wanted, active_only, now_or(now), on_corrupt)

    @abc.abstractmethod
    def _list_grants(
        self, account: str | None, active_only: bool, now: float, on_corrupt: OnCorrupt | None
    ) -> list[SessionGrant]:
        """:meth:`list_grants` with ``account`` normalised (None: every account) and ``now`` a time."""

    @abc.abstractmethod
    def _set_flag(self, session_id: str, flag: str) -> None:
        """Set the grant's ``flag`` (``revoked`` or ``enabled``); an unknown grant is an error."""

    @abc.abstractmethod
    def _flag(self, session_id: str, flag: str) -> bool:
        """The grant's ``flag`` (``revoked`` or ``enabled``); an unknown grant is an error."""

    def mark_revoked(self, session_id: bytes | str) -> None:
        """Record that the session was revoked. Every worker sees it on its next read; it is never undone."""
        self._set_flag(normalize_session_id(session_id), "revoked")

    def is_revoked(self, session_id: bytes | str) -> bool:
        """Whether the session was marked revoked."""
        return self._flag(normalize_session_id(session_id), "revoked")

    def mark_enabled(self, session_id: bytes | str) -> None:
        """Record that an off-chain grant's first operation landed: it no longer needs the ENABLE payload."""
        self._set_flag(normalize_session_id(session_id), "enabled")

    def is_enabled(self, session_id: bytes | str) -> bool:
        """Whether the session is stored on chain (always true for on-chain grants)."""
        return self._flag(normalize_session_id(session_id), "enabled")

    # -- nonce lanes -----------------------------------------------------------------------------------

    def lease_lane(self, account: str, session_id: bytes | str, worker_id: str, ttl_seconds: float) -> Lease:
        """Lease the lowest free lane of (account, session) for ``ttl_seconds``, atomically.

        A lane is free when it was never leased, was released, or its lease expired (a dead worker's lease
        is reclaimed here). Two leases that are both live never share a lane.
        """
        return self._lease_lane(
            to_address(account),
            normalize_session_id(session_id),
            check_worker_id(worker_id),
            check_ttl(ttl_seconds),
        )

    @abc.abstractmethod
    def _lease_lane(self, account: str, session_id: str, worker_id: str, ttl: float) -> Lease:
        """Lease a lane (arguments checked)."""

    def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease:
        """Extend a lease to ``ttl_seconds`` from now.

        Raises :class:`~keyscope.errors.LeaseLostError` when the lease was released or reclaimed by another
        worker: stop using its lane and lease a new one.
        """
        return self._renew_lease(check_lease(lease), check_ttl(ttl_seconds))

    @abc.abstractmethod
    def _renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Renew the lease (arguments checked)."""

    def release_lease(self, lease: Lease) -> bool:
        """Give the lane back; returns False when the lease was already released or reclaimed."""
        return self._release_lease(check_lease(lease))

    @abc.abstractmethod
    def _release_lease(self, lease: Lease) -> bool:
        """Release the lease (argument checked)."""

    # -- outbox ----------------------------------------------------------------------------------------

    def record_intent(
        self,
        intent_id: str,
        account: str,
        session_id: bytes | str,
        lane: int,
        op: UserOperation,
        user_op_hash: bytes | str,
        *,
        lease: Lease | None = None,
    ) -> OutboxRecord:
        """Record an operation (state ``built``) before it is sent.

        ``intent_id`` is the caller's idempotency key: recording the same intent again returns the record
        already there, unchanged (even if ``op`` differs), so an intent never yields two operations.

        With ``lease`` (the lease of ``lane``), the record is written only while that lease still holds the
        lane, checked in the same transaction: :class:`~keyscope.errors.LeaseLostError` otherwise, and
        nothing is written. Whatever the lease, an operation whose nonce another record of the account that
        is not failed has is refused with :class:`~keyscope.errors.NonceTakenError`.
        """
        entry = check_intent(intent_id, account, session_id, lane, op, user_op_hash)
        return self._record_intent(entry, check_fence(lease, entry))

    @abc.abstractmethod
    def _record_intent(self, entry: NewOperation, lease: Lease | None) -> OutboxRecord:
        """Record ``entry`` (checked), fenced by ``lease`` when given."""

    def rebuild_intent(
        self,
        intent_id: str,
        displaced: bytes | str,
        lane: int,
        op: UserOperation,
        user_op_hash: bytes | str,
        *,
        lease: Lease,
    ) -> OutboxRecord:
        """Replace the intent's operation ``displaced``, which can never land (its nonce was used by another
        operation), by a new one, ``op`` on ``lane``: state ``built`` again, ``rebuilds`` one more.

        Only the caller that proves the displacement should call this, and only with the lease of ``lane``
        (fenced like :meth:`record_intent`). When the intent no longer holds ``displaced`` (another worker
        rebuilt it first) or it landed, the record is returned unchanged: follow it.
        """
        check_lease(lease)
        entry = check_intent(intent_id, lease.account, lease.session_id, lane, op, user_op_hash)
        fence = check_fence(lease, entry)
        assert fence is not None
        return self._rebuild_intent(entry, normalize_hash(displaced, "displaced"), fence)

    @abc.abstractmethod
    def _rebuild_intent(self, entry: NewOperation, displaced: str, lease: Lease) -> OutboxRecord:
        """Replace the intent's operation ``displaced`` by ``entry`` (checked), fenced by ``lease``."""

    def mark_sent(self, user_op_hash: bytes | str) -> OutboxRecord:
        """A bundler accepted the operation (again): state ``sent``, one more attempt."""
        return self._mark_sent(normalize_hash(user_op_hash))

    @abc.abstractmethod
    def _mark_sent(self, op_hash: str) -> OutboxRecord:
        """Mark the operation sent (hash normalised)."""

    def mark_included(self, user_op_hash: bytes | str, tx_hash: bytes | str, success: bool) -> OutboxRecord:
        """The operation landed in transaction ``tx_hash``; ``success`` is its execution result."""
        tx = normalize_hash(tx_hash, "tx_hash")
        if not isinstance(success, bool):
            raise BadInputError(f"success must be a bool, got {success!r}")
        return self._mark_included(normalize_hash(user_op_hash), tx, success)

    @abc.abstractmethod
    def _mark_included(self, op_hash: str, tx_hash: str, success: bool) -> OutboxRecord:
        """Mark the operation included (arguments checked)."""

    def mark_failed(self, user_op_hash: bytes | str, reason: str) -> OutboxRecord:
        """Give up on an operation that can never land (refused for good, or its session revoked)."""
        if not isinstance(reason, str):
            raise BadInputError(f"reason must be a string, got {type(reason).__name__}")
        # the reason is often a bundler's or a node's words: stored whatever they hold
        return self._mark_failed(normalize_hash(user_op_hash), storable_text(reason))

    @abc.abstractmethod
    def _mark_failed(self, op_hash: str, reason: str) -> OutboxRecord:
        """Mark the operation failed (arguments checked)."""

    def get_by_intent(self, intent_id: str) -> OutboxRecord | None:
        """The record of ``intent_id``, or None."""
        return self._get_by_intent(check_intent_id(intent_id))

    @abc.abstractmethod
    def _get_by_intent(self, intent_id: str) -> OutboxRecord | None:
        """The record of the (checked) intent id, or None."""

    def get_by_hash(self, user_op_hash: bytes | str) -> OutboxRecord | None:
        """The record whose operation is now the one with this hash, or None."""
        return self._get_by_hash(normalize_hash(user_op_hash))

    @abc.abstractmethod
    def _get_by_hash(self, op_hash: str) -> OutboxRecord | None:
        """The record of the operation with this (normalised) hash, or None."""

    @abc.abstractmethod
    def pending(
        self,
        older_than: float | None = None,
        *,
        now: float | None = None,
        on_corrupt: OnCorrupt | None = None,
    ) -> list[OutboxRecord]:
        """Built or sent records, oldest first: what a recovering worker must finish.

        ``older_than`` (seconds) keeps those not updated for at least that long before ``now``. A record that
        cannot be read raises :class:`~keyscope.errors.SessionStoreError`; with ``on_corrupt``, it is passed
        to ``on_corrupt(its intent id or name, error)`` instead and the listing goes on.
        """

    def list_outbox(
        self,
        state: OutboxState | str | None = None,
        *,
        limit: int = 100,
        on_corrupt: OnCorrupt | None = None,
    ) -> list[OutboxRecord]:
        """The newest ``limit`` records (in ``state`` when given), newest first. A record that cannot be read
        raises :class:`~keyscope.errors.SessionStoreError`; with ``on_corrupt``, it is passed to
        ``on_corrupt(its intent id or name, error)`` instead and the listing goes on."""
        return self._list_outbox(check_state(state), check_limit(limit), on_corrupt)

    @abc.abstractmethod
    def _list_outbox(
        self, state: OutboxState | None, limit: int, on_corrupt: OnCorrupt | None
    ) -> list[OutboxRecord]:
        """The newest records (arguments checked)."""
