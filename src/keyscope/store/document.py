"""Grants, nonce lanes and the outbox over JSON documents: the logic the memory and file stores share.

A backend supplies :class:`Documents` (read, write, delete and list JSON objects by kind and name) and an
exclusive lock; :class:`DocumentStore` does the rest. Every operation runs under the lock, so each is
atomic with respect to every other one on the same documents.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from ..errors import BadInputError, SessionStoreError, StoreLockedError
from ..grant import SessionGrant
from ..hexutil import to_address
from ..userop import UserOperation
from .base import (
    PENDING_STATES,
    Lease,
    OutboxRecord,
    OutboxState,
    SessionStore,
    check_intent,
    check_intent_id,
    check_lane,
    check_limit,
    check_state,
    check_ttl,
    check_worker_id,
    grant_is_active,
    normalize_hash,
    normalize_session_id,
    now_or,
    pending_cutoff,
    transition_error,
)

__all__ = ["DocumentStore", "Documents"]

log = logging.getLogger("keyscope.store")

GRANT = "grants"
LANES = "lanes"
OUTBOX = "outbox"
HASH = "hashes"
META = "meta"
KINDS = (GRANT, LANES, OUTBOX, HASH, META)


class Documents(abc.ABC):
    """JSON objects addressed by (kind, name). Names are made of letters, digits, ``0x`` and ``-``."""

    @abc.abstractmethod
    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        """The document, or None. Raises :class:`SessionStoreError` naming it when it is not a JSON object."""

    @abc.abstractmethod
    def write(self, kind: str, name: str, doc: dict[str, Any]) -> None:
        """Replace (or create) the document atomically."""

    @abc.abstractmethod
    def delete(self, kind: str, name: str) -> bool:
        """Remove the document; returns whether it existed."""

    @abc.abstractmethod
    def names(self, kind: str) -> list[str]:
        """Names of the documents of one kind."""

    @abc.abstractmethod
    def where(self, kind: str, name: str) -> str:
        """Where the document lives, for error messages."""


def corrupted(where: str, problem: object) -> SessionStoreError:
    """The error for a stored record that cannot be read."""
    return SessionStoreError(
        f"{where} is corrupted ({problem}); it was left as is. Restore it from a backup, or delete it to "
        "drop that record."
    )


class DocumentStore(SessionStore):
    """Grants, lanes and the outbox for stores made of JSON documents. Subclasses add keys and a lock."""

    _docs: Documents

    @abc.abstractmethod
    def _locked(self) -> AbstractContextManager[None]:
        """Hold the store's exclusive lock (re-entrant)."""

    def _read(self, kind: str, name: str) -> dict[str, Any] | None:
        return self._docs.read(kind, name)

    # -- grants ----------------------------------------------------------------------------------------

    def _grant_doc(self, session_id: str) -> dict[str, Any]:
        doc = self._read(GRANT, session_id)
        if doc is None:
            raise SessionStoreError(
                f"no grant with session id {session_id} in {self.url}: store it with put_grant first"
            )
        return doc

    def _parse_grant(self, doc: dict[str, Any], name: str) -> SessionGrant:
        try:
            grant = SessionGrant.model_validate(doc["grant"])
            if not isinstance(doc["revoked"], bool) or not isinstance(doc["enabled"], bool):
                raise TypeError("the revoked and enabled flags must be booleans")
        except Exception as exc:
            raise corrupted(self._docs.where(GRANT, name), exc) from None
        if "0x" + grant.session_id.hex() != name:
            raise corrupted(self._docs.where(GRANT, name), f"it holds session {grant.session_id.hex()}")
        return grant

    def put_grant(self, grant: SessionGrant) -> None:
        if not isinstance(grant, SessionGrant):
            raise BadInputError(f"put_grant takes a SessionGrant, got {type(grant).__name__}")
        name = normalize_session_id(grant.session_id)
        with self._locked():
            now = time.time()
            doc = self._read(GRANT, name)
            if doc is not None:
                self._parse_grant(doc, name)
            else:
                doc = {
                    "created_at": now,
                    "revoked": False,
                    "enabled": False,
                    "revoked_at": None,
                    "enabled_at": None,
                }
            doc["grant"] = json.loads(grant.to_json())
            doc["updated_at"] = now
            if grant.how == "onchain" and not doc["enabled"]:
                doc["enabled"], doc["enabled_at"] = True, now
            self._docs.write(GRANT, name, doc)

    def get_grant(self, session_id: bytes | str) -> SessionGrant:
        name = normalize_session_id(session_id)
        with self._locked():
            return self._parse_grant(self._grant_doc(name), name)

    def list_grants(
        self,
        account: str | None = None,
        *,
        active_only: bool = False,
        now: float | None = None,
        on_corrupt: Callable[[str, SessionStoreError], None] | None = None,
    ) -> list[SessionGrant]:
        wanted = to_address(account) if account is not None else None
        moment = now_or(now)
        found: list[tuple[float, str, SessionGrant]] = []
        with self._locked():
            for name in self._docs.names(GRANT):
                try:
                    doc = self._read(GRANT, name)
                    if doc is None:
                        continue
                    grant = self._parse_grant(doc, name)
                except SessionStoreError as error:
                    if on_corrupt is None:
                        raise
                    on_corrupt(name, error)
                    continue
                if wanted is not None and grant.account != wanted:
                    continue
                if active_only and not grant_is_active(grant, doc["revoked"], moment):
                    continue
                found.append((float(doc.get("created_at", 0.0)), name, grant))
        return [grant for _, _, grant in sorted(found, key=lambda item: (item[0], item[1]))]

    def _set_flag(self, session_id: bytes | str, flag: str) -> None:
        name = normalize_session_id(session_id)
        with self._locked():
            doc = self._grant_doc(name)
            self._parse_grant(doc, name)
            if not doc[flag]:
                doc[flag], doc[f"{flag}_at"], doc["updated_at"] = True, time.time(), time.time()
                self._docs.write(GRANT, name, doc)

    def _flag(self, session_id: bytes | str, flag: str) -> bool:
        name = normalize_session_id(session_id)
        with self._locked():
            doc = self._grant_doc(name)
            self._parse_grant(doc, name)
            return bool(doc[flag])

    # -- nonce lanes -----------------------------------------------------------------------------------

    @staticmethod
    def _lanes_name(account: str, session_id: str) -> str:
        return f"{account.lower()}-{session_id}"

    def _lanes(self, name: str) -> list[dict[str, Any]]:
        doc = self._read(LANES, name)
        if doc is None:
            return []
        lanes = doc.get("lanes")
        if not isinstance(lanes, list) or any(
            not isinstance(entry, dict) or entry.get("lane") != index for index, entry in enumerate(lanes)
        ):
            raise corrupted(
                self._docs.where(LANES, name), "lanes must be a list of entries numbered 0, 1, 2, ..."
            )
        return lanes

    def lease_lane(self, account: str, session_id: bytes | str, worker_id: str, ttl_seconds: float) -> Lease:
        owner = to_address(account)
        session = normalize_session_id(session_id)
        worker = check_worker_id(worker_id)
        ttl = check_ttl(ttl_seconds)
        name = self._lanes_name(owner, session)
        with self._locked():
            lanes = self._lanes(name)
            now = time.time()
            chosen = next(
                (e for e in lanes if e.get("lease_id") is None or float(e.get("expires_at") or 0.0) <= now),
                None,
            )
            if chosen is None:
                chosen = {"lane": len(lanes)}
                lanes.append(chosen)
            elif chosen.get("lease_id") is not None:
                log.info(
                    "reclaiming expired lease on lane %d of %s/%s from %s",
                    chosen["lane"],
                    owner,
                    session,
                    chosen.get("worker_id"),
                )
            chosen.update(
                lease_id=secrets.token_hex(16), worker_id=worker, expires_at=now + ttl, leased_at=now
            )
            self._docs.write(LANES, name, {"account": owner, "session_id": session, "lanes": lanes})
            return Lease(chosen["lane"], chosen["lease_id"], chosen["expires_at"], owner, session, worker)

    def _held(self, lease: Lease) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
        if not isinstance(lease, Lease):
            raise BadInputError(f"expected a Lease from lease_lane, got {type(lease).__name__}")
        name = self._lanes_name(lease.account, lease.session_id)
        lanes = self._lanes(name)
        entry = lanes[lease.lane] if lease.lane < len(lanes) else None
        if entry is None or entry.get("lease_id") != lease.lease_id:
            return name, lanes, None
        return name, lanes, entry

    def renew_lease(self, lease: Lease, ttl_seconds: float) -> Lease:
        ttl = check_ttl(ttl_seconds)
        with self._locked():
            name, lanes, entry = self._held(lease)
            if entry is None:
                raise StoreLockedError(
                    f"lease {lease.lease_id} on lane {lease.lane} of "
                    f"{lease.account}/{lease.session_id} is no "
                    "longer held (released, or reclaimed by another worker after it expired): stop "
                    "using that "
                    "lane and lease a new one"
                )
            entry["expires_at"] = time.time() + ttl
            self._docs.write(
                LANES, name, {"account": lease.account, "session_id": lease.session_id, "lanes": lanes}
            )
            return Lease(
                lease.lane,
                lease.lease_id,
                entry["expires_at"],
                lease.account,
                lease.session_id,
                lease.worker_id,
            )

    def release_lease(self, lease: Lease) -> bool:
        with self._locked():
            name, lanes, entry = self._held(lease)
            if entry is None:
                return False
            for key in ("lease_id", "worker_id", "expires_at", "leased_at"):
                entry[key] = None
            self._docs.write(
                LANES, name, {"account": lease.account, "session_id": lease.session_id, "lanes": lanes}
            )
            return True

    # -- outbox ----------------------------------------------------------------------------------------

    @staticmethod
    def _intent_name(intent_id: str) -> str:
        return hashlib.sha256(intent_id.encode()).hexdigest()

    def _parse_record(self, doc: dict[str, Any], name: str) -> OutboxRecord:
        try:
            record = OutboxRecord(
                intent_id=str(doc["intent_id"]),
                account=to_address(doc["account"]),
                session_id=normalize_session_id(doc["session_id"]),
                lane=check_lane(doc["lane"]),
                op=UserOperation.from_rpc(doc["op"]),
                user_op_hash=normalize_hash(doc["user_op_hash"]),
                state=OutboxState(doc["state"]),
                attempts=int(doc["attempts"]),
                created_at=float(doc["created_at"]),
                updated_at=float(doc["updated_at"]),
                sent_at=_opt_float(doc.get("sent_at")),
                finished_at=_opt_float(doc.get("finished_at")),
                tx_hash=None if doc.get("tx_hash") is None else normalize_hash(doc["tx_hash"], "tx_hash"),
                success=_opt_type(doc.get("success"), bool),
                error=_opt_type(doc.get("error"), str),
            )
        except Exception as exc:
            raise corrupted(self._docs.where(OUTBOX, name), exc) from None
        if self._intent_name(record.intent_id) != name:
            raise corrupted(self._docs.where(OUTBOX, name), f"it holds intent {record.intent_id!r}")
        return record

    def _outbox_docs(self) -> Iterator[tuple[int, OutboxRecord]]:
        """(sequence number, record) of every outbox record."""
        for name in self._docs.names(OUTBOX):
            doc = self._read(OUTBOX, name)
            if doc is None:
                continue
            record = self._parse_record(doc, name)
            seq = doc.get("seq")
            if isinstance(seq, bool) or not isinstance(seq, int):
                raise corrupted(self._docs.where(OUTBOX, name), f"sequence number {seq!r}")
            yield seq, record

    def record_intent(
        self,
        intent_id: str,
        account: str,
        session_id: bytes | str,
        lane: int,
        op: UserOperation,
        user_op_hash: bytes | str,
    ) -> OutboxRecord:
        intent, owner, session, lane_number, op_hash = check_intent(
            intent_id, account, session_id, lane, op, user_op_hash
        )
        name = self._intent_name(intent)
        with self._locked():
            existing = self._read(OUTBOX, name)
            if existing is not None:
                return self._parse_record(existing, name)
            other = self._by_hash(op_hash)
            if other is not None:
                raise BadInputError(
                    f"UserOperation {op_hash} is already recorded for intent {other.intent_id!r}: "
                    "record each "
                    "operation under one intent_id"
                )
            meta = self._read(META, "outbox-seq") or {"next": 1}
            seq = int(meta["next"])
            self._docs.write(META, "outbox-seq", {"next": seq + 1})
            now = time.time()
            doc: dict[str, Any] = {
                "seq": seq,
                "intent_id": intent,
                "account": owner,
                "session_id": session,
                "lane": lane_number,
                "op": op.to_rpc(),
                "user_op_hash": op_hash,
                "state": OutboxState.BUILT.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "sent_at": None,
                "finished_at": None,
                "tx_hash": None,
                "success": None,
                "error": None,
            }
            # The hash index first: a record is never without it, even after a crash between the writes.
            self._docs.write(HASH, op_hash, {"intent": name})
            self._docs.write(OUTBOX, name, doc)
            return self._parse_record(doc, name)

    def _by_hash(self, op_hash: str) -> OutboxRecord | None:
        index = self._read(HASH, op_hash)
        if index is None:
            return None
        name = index.get("intent")
        doc = self._read(OUTBOX, name) if isinstance(name, str) else None
        if doc is None:
            return None
        record = self._parse_record(doc, name)  # type: ignore[arg-type]
        return record if record.user_op_hash == op_hash else None

    def _update(self, user_op_hash: bytes | str, change: str, apply: Any) -> OutboxRecord:
        op_hash = normalize_hash(user_op_hash)
        with self._locked():
            record = self._by_hash(op_hash)
            if record is None:
                raise SessionStoreError(
                    f"no outbox record for UserOperation {op_hash} in {self.url}: record_intent it "
                    f"before {change}"
                )
            name = self._intent_name(record.intent_id)
            doc = self._read(OUTBOX, name)
            assert doc is not None
            if apply(doc, record, time.time()):
                self._docs.write(OUTBOX, name, doc)
            return self._parse_record(doc, name)

    def mark_sent(self, user_op_hash: bytes | str) -> OutboxRecord:
        def apply(doc: dict[str, Any], record: OutboxRecord, now: float) -> bool:
            if record.state not in PENDING_STATES:
                raise SessionStoreError(transition_error(record, OutboxState.SENT))
            doc.update(
                state=OutboxState.SENT.value, attempts=record.attempts + 1, sent_at=now, updated_at=now
            )
            return True

        return self._update(user_op_hash, "mark_sent", apply)

    def mark_included(self, user_op_hash: bytes | str, tx_hash: bytes | str, success: bool) -> OutboxRecord:
        tx = normalize_hash(tx_hash, "tx_hash")
        if not isinstance(success, bool):
            raise BadInputError(f"success must be a bool, got {success!r}")

        def apply(doc: dict[str, Any], record: OutboxRecord, now: float) -> bool:
            if record.state == OutboxState.INCLUDED:
                if record.tx_hash == tx and record.success == success:
                    return False
                raise SessionStoreError(
                    transition_error(record, OutboxState.INCLUDED) + f" (it was included in {record.tx_hash})"
                )
            doc.update(
                state=OutboxState.INCLUDED.value, tx_hash=tx, success=success, finished_at=now, updated_at=now
            )
            return True

        return self._update(user_op_hash, "mark_included", apply)

    def mark_failed(self, user_op_hash: bytes | str, reason: str) -> OutboxRecord:
        if not isinstance(reason, str):
            raise BadInputError(f"reason must be a string, got {type(reason).__name__}")

        def apply(doc: dict[str, Any], record: OutboxRecord, now: float) -> bool:
            if record.state == OutboxState.FAILED:
                return False
            if record.state == OutboxState.INCLUDED:
                raise SessionStoreError(transition_error(record, OutboxState.FAILED))
            doc.update(state=OutboxState.FAILED.value, error=reason, finished_at=now, updated_at=now)
            return True

        return self._update(user_op_hash, "mark_failed", apply)

    def get_by_intent(self, intent_id: str) -> OutboxRecord | None:
        name = self._intent_name(check_intent_id(intent_id))
        with self._locked():
            doc = self._read(OUTBOX, name)
            return None if doc is None else self._parse_record(doc, name)

    def get_by_hash(self, user_op_hash: bytes | str) -> OutboxRecord | None:
        op_hash = normalize_hash(user_op_hash)
        with self._locked():
            return self._by_hash(op_hash)

    def pending(self, older_than: float | None = None, *, now: float | None = None) -> list[OutboxRecord]:
        cutoff = pending_cutoff(older_than, now_or(now))
        with self._locked():
            rows = [
                (seq, record)
                for seq, record in self._outbox_docs()
                if record.is_pending and (cutoff is None or record.updated_at <= cutoff)
            ]
        return [record for _, record in sorted(rows, key=lambda item: item[0])]

    def list_outbox(self, state: OutboxState | str | None = None, *, limit: int = 100) -> list[OutboxRecord]:
        wanted = check_state(state)
        size = check_limit(limit)
        with self._locked():
            rows = [
                (seq, record)
                for seq, record in self._outbox_docs()
                if wanted is None or record.state == wanted
            ]
        return [record for _, record in sorted(rows, key=lambda item: -item[0])[:size]]


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _opt_type(value: Any, kind: type[Any]) -> Any:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value
