"""The sessions of a store with their status (on chain, or as the store alone knows it), and their listing for
people: one table for the ``keyscope`` command and the ``ape run`` scripts.

Every status is judged by :func:`keyscope.module.session_status` (through :mod:`keyscope.report`); a grant the
store cannot read is listed as unreadable, and the rest are listed all the same.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from ..chain import Chain
from ..clock import window_now
from ..endpoints import Endpoints
from ..errors import SessionStoreError
from ..grant import SessionGrant
from ..module import answers_as_module
from ..report import (
    SessionReport,
    StoreMarks,
    describe_permission,
    report_from_chain,
    report_from_store,
    unjudged,
)
from ..store import SessionStore
from ..store.base import normalize_session_id
from ..token_facts import cached_contract_facts
from .output import describe_time, hex_of, one_line, table
from .settings import _address_from, _NoBundler

__all__ = [
    "Listing",
    "describe_permission",
    "describe_permissions",
    "grant_fields",
    "list_sessions",
    "session_lines",
    "store_sessions",
]


def grant_fields(grant: SessionGrant) -> dict[str, Any]:
    """What the scripts print of a grant (JSON): ids, key, how it was granted, window and permissions."""
    return {
        "session_id": hex_of(grant.session_id),
        "account": grant.account,
        "session_key": grant.session_key,
        "how": grant.how,
        "chain_id": grant.chain_id,
        "valid_after": grant.valid_after,
        "valid_until": grant.valid_until,
        "permissions": describe_permissions(grant),
    }


def describe_permissions(grant: SessionGrant) -> list[str]:
    """One line per permission of ``grant``, in words."""
    return [describe_permission(p) for p in grant.session.permissions]


@dataclass(frozen=True)
class Unreadable:
    """A grant (or an outbox record) of the store that could not be read: its file or row name, and what is wrong
    with it."""

    name: str
    problem: str


@dataclass
class Listing:
    """The sessions of a store, each with its :class:`~keyscope.report.SessionReport`, the grants that could
    not be read, and (for the ``keyscope`` command) how many operations each session has in flight, with the
    outbox records that could not be read (whose sessions' counts may miss them)."""

    reports: list[SessionReport] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    in_flight: dict[str, int] | None = None
    unreadable_records: list[Unreadable] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"sessions": [...], "unreadable": [...]}`` (JSON-ready), and ``"unreadable_outbox"`` when an outbox
        record could not be read."""
        sessions = []
        for report in self.reports:
            row = report.to_dict()
            if self.in_flight is not None:
                row["in_flight"] = self.in_flight.get(report.session_id, 0)
            sessions.append(row)
        listed: dict[str, Any] = {
            "sessions": sessions,
            "unreadable": [{"name": item.name, "problem": item.problem} for item in self.unreadable],
        }
        if self.unreadable_records:
            listed["unreadable_outbox"] = [
                {"name": item.name, "problem": item.problem} for item in self.unreadable_records
            ]
        return listed

    def table(self, where: str) -> Table:
        """The sessions as a table: id (its first 8 hex digits, which every tool takes for the whole id),
        account, status, time left, permissions in words, limits (when a session has any: used and left when
        judged on chain) and operations in flight."""
        judged = {report.source for report in self.reports}
        source = (
            " (judged on chain)" if judged == {"chain"} else " (as the store knows them)" if judged else ""
        )
        columns = ["session id", "account", "status", "time left", "permissions"]
        limited = any(report.grant.session.limits for report in self.reports)
        if limited:
            columns.append("limits")
        if self.in_flight is not None:
            columns.append("in flight")
        rows: list[list[str]] = []
        for report in self.reports:
            status = report.status + "".join(f"\n({note.split(':')[0]})" for note in report.disagreements)
            row = [
                _short_id(report.session_id),
                report.account,
                status,
                _time_left(report),
                "\n".join(report.permissions),
            ]
            if limited:
                row.append("\n".join(report.limits) or "none")
            if self.in_flight is not None:
                row.append(str(self.in_flight.get(report.session_id, 0)))
            rows.append(row)
        unreadable = [(item, "unreadable", "") for item in self.unreadable]
        unreadable += [(item, "unreadable outbox record", "?") for item in self.unreadable_records]
        for item, what, in_flight in unreadable:
            row = [_short_id(item.name), "?", what, "", item.problem]
            if limited:
                row.append("")
            if self.in_flight is not None:
                row.append(in_flight)
            rows.append(row)
        count = f"{len(self.reports)} session(s)" + (
            f" and {len(self.unreadable)} unreadable grant(s)" if self.unreadable else ""
        )
        if self.unreadable_records:
            count += f" ({len(self.unreadable_records)} unreadable outbox record(s): in-flight counts may miss them)"
        return table(f"{count} in {where}{source}", columns, rows, right=("in flight",))


def _short_id(session_id: str) -> str:
    """The first 8 hex digits of a session id: every tool takes a unique prefix for the whole id (``--json``
    shows it whole)."""
    return session_id[:10] if session_id.startswith("0x") and len(session_id) == 66 else session_id


def _time_left(report: SessionReport) -> str:
    text = report.describe_time_left()
    if report.valid_until:
        text += f"\n(until {describe_time(report.valid_until)})"
    return text


def session_lines(listing: Listing) -> list[str]:
    """A listing of sessions for people, one fact a line (the tables' content, for narrow outputs)."""
    if not listing.reports and not listing.unreadable:
        return ["no sessions in the store"]
    lines = [line for report in listing.reports for line in report.lines()]
    lines.extend(f"unreadable grant {item.name}: {item.problem}" for item in listing.unreadable)
    return lines


def _grants(store: SessionStore, account: str | None) -> tuple[list[SessionGrant], list[Unreadable]]:
    """The store's grants (of ``account``), and the ones it could not read."""
    bad: list[Unreadable] = []

    def unreadable(name: str, error: SessionStoreError) -> None:
        bad.append(Unreadable(name, one_line(error)))

    return store.list_grants(account, on_corrupt=unreadable), bad


def _marks(store: SessionStore, grant: SessionGrant) -> StoreMarks:
    return StoreMarks(store.is_revoked(grant.session_id), store.is_enabled(grant.session_id))


def list_sessions(chain: Chain, store: SessionStore, account: str | None = None) -> Listing:
    """Every grant in ``store`` (of ``account`` when given), oldest first, judged on ``chain`` (at the module and
    EntryPoint each grant names), with the store's marks set against it."""
    chosen = None if account is None else _address_from(account, "--account")
    grants, unreadable = _grants(store, chosen)
    chain_id = chain.chain_id()
    now = window_now(chain.block_timestamp())
    networks: dict[tuple[str, str], Endpoints] = {}
    served: dict[tuple[str, str], bool] = {}
    contracts = cached_contract_facts(chain)
    reports = []
    for grant in grants:
        marks = _marks(store, grant)
        if grant.chain_id != chain_id:
            reports.append(unjudged(grant, "other chain", now=now, store=marks))
            continue
        where = (grant.module, grant.entry_point)
        if where not in networks:
            networks[where] = Endpoints(
                chain=chain, bundler=_NoBundler(), module=grant.module, entry_point=grant.entry_point
            )
            served[where] = answers_as_module(chain, grant.module)  # no code, or another contract there
        if not served[where]:
            reports.append(unjudged(grant, "no module", now=now, store=marks))
            continue
        network = networks[where]
        reports.append(report_from_chain(network, grant, store=marks, now=now, contracts=contracts))
    return Listing(reports, unreadable)


def store_sessions(store: SessionStore, account: str | None = None) -> Listing:
    """Every grant in ``store`` (of ``account`` when given), oldest first, as the store alone knows it (see
    :func:`~keyscope.report.report_from_store`), with how many operations are in flight for each."""
    chosen = None if account is None else _address_from(account, "--account")
    # the outbox is written by the workers: one record they left unreadable must not hide every session (as
    # `keyscope outbox` lists around it, this names it)
    bad_records: list[Unreadable] = []

    def unreadable_record(name: str, error: SessionStoreError) -> None:
        bad_records.append(Unreadable(name, one_line(error)))

    pending = store.pending(on_corrupt=unreadable_record)
    in_flight = Counter(normalize_session_id(record.session_id) for record in pending)
    grants, unreadable = _grants(store, chosen)
    now = int(time.time())
    reports = [report_from_store(grant, _marks(store, grant), now=now) for grant in grants]
    return Listing(reports, unreadable, dict(in_flight), bad_records)
