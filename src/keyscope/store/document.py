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
import math
import secrets
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from ..errors import LeaseLostError, SessionStoreError
from ..grant import SessionGrant
from ..userop import UserOperation
from .base import (
    PENDING_STATES,
    Lease,
    NewOperation,
    OnCorrupt,
    OutboxRecord,
    OutboxState,
    SessionStore,
    grant_is_active,
    hash_taken,
    lease_lost,
    needs_rebuild,
    nonce_taken,
    nonce_text,
    normalize_session_id,
    now_or,
    pending_cutoff,
    refuse_another_place,
    stored_record,
    transition_error,
    unknown_operation,
)

__all__ = ["DocumentStore", "Documents"]

log = logging.getLogger("keyscope.store")

GRANT = "grants"
LANES = "lanes"
OUTBOX = "outbox"
HASH = "hashes"
NONCES = "nonces"
META = "meta"
KINDS = (GRANT, LANES, OUTBOX, HASH, NONCES, META)


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


def _lease_problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with a lane entry's lease as the store writes it (None when nothing): a free lane has no
    ``lease_id``; a leased one has a text ``lease_id`` and a finite ``expires_at``. A lane whose expiry cannot
    be read is neither free nor held: taking it could take it from a live holder."""
    lease_id = entry.get("lease_id")
    if lease_id is None:
        return None
    if not isinstance(lease_id, str):
        return f"lease_id {lease_id!r} is not text"
    expires = entry.get("expires_at")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or not math.isfinite(expires):
        return f"expires_at {expires!r} of lease {lease_id} is not a time"
    return None


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
            created = doc["created_at"]
            if isinstance(created, bool) or not isinstance(created, (int, float)):
                raise TypeError(f"created_at {created!r} is not a time")
        except Exception as exc:
            raise corrupted(self._docs.where(GRANT, name), exc) from None
        if "0x" + grant.session_id.hex() != name:
            raise corrupted(self._docs.where(GRANT, name), f"it holds session {grant.session_id.hex()}")
        return grant

    def _put_grant(self, grant: SessionGrant, session_id: str) -> None:
        name = session_id
        with self._locked():
            now = time.time()
            doc = self._read(GRANT, name)
            if doc is not None:
                refuse_another_place(self._parse_grant(doc, name), grant, self.url)
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

    def _list_grants(
        self, account: str | None, active_only: bool, now: float, on_corrupt: OnCorrupt | None
    ) -> list[SessionGrant]:
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
                if account is not None and grant.account != account:
                    continue
                if active_only and not grant_is_active(grant, doc["revoked"], now):
                    continue
                found.append((float(doc["created_at"]), name, grant))
        return [grant for _, _, grant in sorted(found, key=lambda item: (item[0], item[1]))]

    def _set_flag(self, session_id: str, flag: str) -> None:
        with self._locked():
            doc = self._grant_doc(session_id)
            self._parse_grant(doc, session_id)
            if not doc[flag]:
                doc[flag], doc[f"{flag}_at"], doc["updated_at"] = True, time.time(), time.time()
                self._docs.write(GRANT, session_id, doc)

    def _flag(self, session_id: str, flag: str) -> bool:
        with self._locked():
            doc = self._grant_doc(session_id)
            self._parse_grant(doc, session_id)
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
        for entry in lanes:
            problem = _lease_problem(entry)
            if problem is not None:
                raise corrupted(self._docs.where(LANES, name), f"lane {entry['lane']}: {problem}")
        return lanes

    def _write_lanes(self, account: str, session_id: str, lanes: list[dict[str, Any]]) -> None:
        doc = {"account": account, "session_id": session_id, "lanes": lanes}
        self._docs.write(LANES, self._lanes_name(account, session_id), doc)

    def _lease_lane(self, account: str, session_id: str, worker_id: str, ttl: float) -> Lease:
        with self._locked():
            lanes = self._lanes(self._lanes_name(account, session_id))
            now = time.time()
            chosen = next(
                (e for e in lanes if e.get("lease_id") is None or e["expires_at"] <= now),
                None,
            )
            if chosen is None:
                chosen = {"lane": len(lanes)}
                lanes.append(chosen)
            elif chosen.get("lease_id") is not None:
                log.info(
                    "reclaiming expired lease on lane %d of %s/%s from %s",
                    chosen["lane"],
                    account,
                    session_id,
                    chosen.get("worker_id"),
                )
            chosen.update(
                lease_id=secrets.token_hex(16), worker_id=worker_id, expires_at=now + ttl, leased_at=now
            )
            self._write_lanes(account, session_id, lanes)
            return Lease(
                chosen["lane"], chosen["lease_id"], chosen["expires_at"], account, session_id, worker_id
            )

    def _held(self, lease: Lease) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The lanes of the lease's session and the lease's lane entry; :class:`LeaseLostError` when the
        lease no longer holds the lane (its fencing token is the entry's ``lease_id``)."""
        lanes = self._lanes(self._lanes_name(lease.account, lease.session_id))
        entry = lanes[lease.lane] if lease.lane < len(lanes) else None
        if entry is None or entry.get("lease_id") != lease.lease_id:
            raise lease_lost(lease, self.url)
        return lanes, entry

    def _renew_lease(self, lease: Lease, ttl: float) -> Lease:
        with self._locked():
            lanes, entry = self._held(lease)
            entry["expires_at"] = time.time() + ttl
            self._write_lanes(lease.account, lease.session_id, lanes)
            return Lease(
                lease.lane,
                lease.lease_id,
                entry["expires_at"],
                lease.account,
                lease.session_id,
                lease.worker_id,
            )

    def _release_lease(self, lease: Lease) -> bool:
        with self._locked():
            try:
                lanes, entry = self._held(lease)
            except LeaseLostError:
                return False
            for key in ("lease_id", "worker_id", "expires_at", "leased_at"):
                entry[key] = None
            self._write_lanes(lease.account, lease.session_id, lanes)
            return True

    # -- outbox ----------------------------------------------------------------------------------------

    @staticmethod
    def _intent_name(intent_id: str) -> str:
        return hashlib.sha256(intent_id.encode()).hexdigest()

    @staticmethod
    def _nonce_name(account: str, nonce: str) -> str:
        return f"{account}-{nonce}"

    def _parse_record(self, doc: dict[str, Any], name: str) -> OutboxRecord:
        try:
            record = stored_record(doc, UserOperation.from_rpc(doc["op"]), doc.get("displaced") or [])
        except Exception as exc:
            raise corrupted(self._docs.where(OUTBOX, name), exc) from None
        if self._intent_name(record.intent_id) != name:
            raise corrupted(self._docs.where(OUTBOX, name), f"it holds intent {record.intent_id!r}")
        return record

    def _outbox_docs(self, on_corrupt: OnCorrupt | None = None) -> Iterator[tuple[int, OutboxRecord]]:
        """(sequence number, record) of every outbox record; a damaged one raises, or goes to ``on_corrupt``
        when given."""
        for name in self._docs.names(OUTBOX):
            try:
                found = self._outbox_doc(name)
            except SessionStoreError as error:
                if on_corrupt is None:
                    raise
                on_corrupt(name, error)
                continue
            if found is not None:
                yield found

    def _outbox_doc(self, name: str) -> tuple[int, OutboxRecord] | None:
        """(sequence number, record) of the outbox record ``name``; None when it is gone."""
        doc = self._read(OUTBOX, name)
        if doc is None:
            return None
        record = self._parse_record(doc, name)
        seq = doc.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise corrupted(self._docs.where(OUTBOX, name), f"sequence number {seq!r}")
        return seq, record

    # The nonce index: (account, nonce) -> the intent whose record, not failed, has that nonce. An entry is
    # only believed when that record still has the nonce and is not failed, so an entry left behind (a crash
    # between two writes, a record failed or rebuilt since) takes nothing.

    def _nonce_holder(self, account: str, nonce: str) -> OutboxRecord | None:
        index = self._read(NONCES, self._nonce_name(account, nonce))
        name = None if index is None else index.get("intent")
        doc = self._read(OUTBOX, name) if isinstance(name, str) else None
        if doc is None:
            return None
        record = self._parse_record(doc, name)  # type: ignore[arg-type]
        holds = record.state is not OutboxState.FAILED and nonce_text(record.op.nonce) == nonce
        return record if holds and record.account == account else None

    def _claim_nonce(self, record: OutboxRecord) -> None:
        name = self._nonce_name(record.account, nonce_text(record.op.nonce))
        self._docs.write(NONCES, name, {"intent": self._intent_name(record.intent_id)})

    def _free_nonce(self, record: OutboxRecord) -> None:
        name = self._nonce_name(record.account, nonce_text(record.op.nonce))
        index = self._read(NONCES, name)
        if index is not None and index.get("intent") == self._intent_name(record.intent_id):
            self._docs.delete(NONCES, name)

    def _index_nonces(self) -> None:
        """Build the nonce index of a store written before it existed (once; under the lock)."""
        if self._read(META, "nonce-index") is not None:
            return
        self._add_to_index()
        self._docs.write(META, "nonce-index", {"version": 1})

    def _add_to_index(self) -> None:
        """Put every record that is not failed and whose nonce no other record holds into the nonce index
        (under the lock): a store written before the index existed, or records an older keyscope wrote
        since (it keeps no index)."""
        for _, record in sorted(self._outbox_docs(), key=lambda item: item[0]):
            if record.state is OutboxState.FAILED:
                continue
            holder = self._nonce_holder(record.account, nonce_text(record.op.nonce))
            if holder is None:
                self._claim_nonce(record)
            elif holder.intent_id != record.intent_id:
                log.warning(
                    "outbox records of intents %r and %r (not failed) have the same nonce: %r keeps it in "
                    "the index; at most one of them can land, and the other's worker rebuilds it",
                    holder.intent_id,
                    record.intent_id,
                    holder.intent_id,
                )

    def _claim(self, entry: NewOperation, lease: Lease | None) -> None:
        """What every write of a new operation checks, in this order: the lease (when given) still holds the
        lane, no record that is not failed has the nonce, and the hash is no other intent's."""
        if lease is not None:
            self._held(lease)
        holder = self._nonce_holder(entry.account, entry.nonce)
        if holder is not None and holder.intent_id != entry.intent_id:
            raise nonce_taken(entry, holder, self.url)
        other = self._by_hash(entry.user_op_hash)
        if other is not None and other.intent_id != entry.intent_id:
            raise hash_taken(entry, other)

    @staticmethod
    def _operation_fields(entry: NewOperation, now: float) -> dict[str, Any]:
        """The fields a new (or rebuilt) operation sets."""
        return {
            "lane": entry.lane,
            "op": entry.op.to_rpc(),
            "user_op_hash": entry.user_op_hash,
            "state": OutboxState.BUILT.value,
            "attempts": 0,
            "updated_at": now,
            "sent_at": None,
            "finished_at": None,
            "tx_hash": None,
            "success": None,
            "error": None,
        }

    def _write_operation(self, name: str, doc: dict[str, Any]) -> OutboxRecord:
        """Write a record with a new operation: its indexes first, so that a crash between the writes leaves
        no record without them (an index entry without its record takes nothing)."""
        record = self._parse_record(doc, name)
        self._docs.write(HASH, record.user_op_hash, {"intent": name})
        self._claim_nonce(record)
        self._docs.write(OUTBOX, name, doc)
        return record

    def _record_intent(self, entry: NewOperation, lease: Lease | None) -> OutboxRecord:
        name = self._intent_name(entry.intent_id)
        with self._locked():
            existing = self._read(OUTBOX, name)
            if existing is not None:
                return self._parse_record(existing, name)
            seq = self._next_seq()
            self._claim(entry, lease)
            self._docs.write(META, "outbox-seq", {"next": seq + 1, "indexed": seq + 1})
            now = time.time()
            doc: dict[str, Any] = {
                "seq": seq,
                "intent_id": entry.intent_id,
                "account": entry.account,
                "session_id": entry.session_id,
                "created_at": now,
                "rebuilds": 0,
                "displaced": [],
                **self._operation_fields(entry, now),
            }
            return self._write_operation(name, doc)

    def _next_seq(self) -> int:
        """The outbox's next sequence number (under the lock)."""
        meta = self._read(META, "outbox-seq")
        if meta is None:
            return 1
        seq = meta.get("next")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise corrupted(self._docs.where(META, "outbox-seq"), f"next sequence number {seq!r}")
        if meta.get("indexed") != seq:
            # the counter was last moved by a writer that keeps no nonce index (a keyscope from before it,
            # still running): what it recorded enters the index before anything is claimed against it
            log.warning("outbox records in %s were written without the nonce index: indexing them", self.url)
            self._add_to_index()
        return seq

    def _rebuild_intent(self, entry: NewOperation, displaced: str, lease: Lease) -> OutboxRecord:
        name = self._intent_name(entry.intent_id)
        with self._locked():
            doc = self._read(OUTBOX, name)
            current = None if doc is None else self._parse_record(doc, name)
            if not needs_rebuild(current, entry, displaced, self.url):
                assert current is not None
                return current  # rebuilt by another worker already, or it landed after all
            assert doc is not None and current is not None
            self._claim(entry, lease)
            self._free_nonce(current)
            doc.update(
                rebuilds=current.rebuilds + 1,
                displaced=[*current.displaced, displaced],
                **self._operation_fields(entry, time.time()),
            )
            return self._write_operation(name, doc)

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

    def _update(self, op_hash: str, wanted: OutboxState, apply: Any) -> OutboxRecord:
        with self._locked():
            record = self._by_hash(op_hash)
            if record is None:
                raise SessionStoreError(unknown_operation(op_hash, self.url, f"marking it {wanted.value}"))
            name = self._intent_name(record.intent_id)
            doc = self._read(OUTBOX, name)
            assert doc is not None
            if apply(doc, record, time.time()):
                self._docs.write(OUTBOX, name, doc)
            return self._parse_record(doc, name)

    def _mark_sent(self, op_hash: str) -> OutboxRecord:
        def apply(doc: dict[str, Any], record: OutboxRecord, now: float) -> bool:
            if record.state not in PENDING_STATES:
                raise SessionStoreError(transition_error(record, OutboxState.SENT))
            doc.update(
                state=OutboxState.SENT.value, attempts=record.attempts + 1, sent_at=now, updated_at=now
            )
            return True

        return self._update(op_hash, OutboxState.SENT, apply)

    def _mark_included(self, op_hash: str, tx_hash: str, success: bool) -> OutboxRecord:
        def apply(doc: dict[str, Any], record: OutboxRecord, now: float) -> bool:
            if record.state == OutboxState.INCLUDED:
                if record.tx_hash == tx_hash and record.success == success:
                    return False
                raise SessionStoreError(
                    transition_error(record, OutboxState.INCLUDED) + f" (it was included in {record.tx_hash})"
                )
            if record.state == OutboxState.FAILED:  # it landed after all: its nonce is taken again
                holder = self._nonce_holder(record.account, nonce_text(record.op.nonce))
                if holder is not None and holder.intent_id != record.intent_id:
                    raise SessionStoreError(
                        f"UserOperation {op_hash} cannot become included in {self.url}: intent "
                        f"{holder.intent_id!r}, not failed, has its nonce (that operation can never land now: "
                        "rebuild its intent first)"
                    )
                self._claim_nonce(record)
            doc.update(
                state=OutboxState.INCLUDED.value,
                tx_hash=tx_hash,
                success=success,
                finished_at=now,
                updated_at=now,
            )
            return True

        return self._update(op_hash, OutboxState.INCLUDED, apply)

    def _mark_failed(self, op_hash: str, reason: str) -> OutboxRecord:
        def apply(doc: dict[str, Any], record: OutboxRecord, now: float) -> bool:
            if record.state == OutboxState.FAILED:
                return False
            if record.state == OutboxState.INCLUDED:
                raise SessionStoreError(transition_error(record, OutboxState.FAILED))
            doc.update(state=OutboxState.FAILED.value, error=reason, finished_at=now, updated_at=now)
            self._free_nonce(record)
            return True

        return self._update(op_hash, OutboxState.FAILED, apply)

    def _get_by_intent(self, intent_id: str) -> OutboxRecord | None:
        name = self._intent_name(intent_id)
        with self._locked():
            doc = self._read(OUTBOX, name)
            return None if doc is None else self._parse_record(doc, name)

    def _get_by_hash(self, op_hash: str) -> OutboxRecord | None:
        with self._locked():
            return self._by_hash(op_hash)

    def pending(
        self,
        older_than: float | None = None,
        *,
        now: float | None = None,
        on_corrupt: OnCorrupt | None = None,
    ) -> list[OutboxRecord]:
        cutoff = pending_cutoff(older_than, now_or(now))
        with self._locked():
            rows = [
                found
                for found in self._outbox_docs(on_corrupt)
                if found[1].is_pending and (cutoff is None or found[1].updated_at <= cutoff)
            ]
        return [record for _, record in sorted(rows, key=lambda item: item[0])]

    def _list_outbox(
        self, state: OutboxState | None, limit: int, on_corrupt: OnCorrupt | None
    ) -> list[OutboxRecord]:
        with self._locked():
            rows = [
                (seq, record)
                for seq, record in self._outbox_docs(on_corrupt)
                if state is None or record.state == state
            ]
        return [record for _, record in sorted(rows, key=lambda item: -item[0])[:limit]]
