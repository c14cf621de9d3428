"""The sessions of a store with their status (on chain, or as the store alone knows it), and their listing for
people."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..chain import Chain
from ..endpoints import Endpoints
from ..grant import SessionGrant
from ..module import read_session_status, session_status
from ..store import SessionStore
from ..store.base import normalize_session_id
from .output import describe_time, hex_of
from .settings import _address_from, _NoBundler


@dataclass(frozen=True)
class SessionRow:
    """One session of the store, with its state on chain."""

    grant: SessionGrant
    status: str
    marked_revoked: bool

    def to_dict(self) -> dict[str, Any]:
        return {**grant_fields(self.grant), "status": self.status, "marked_revoked": self.marked_revoked}


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
        "permissions": [describe_permission(p) for p in grant.session.permissions],
    }


def describe_permission(permission: Any) -> str:
    """``safeMint(address) on 0x… (to == 0x…; value <= 0 wei)`` for listings."""
    rules = [rule.describe() for rule in permission.rules]
    rules.append(f"value <= {permission.value_limit} wei")
    return f"{permission.label} ({'; '.join(rules)})"


def describe_permissions(grant: SessionGrant) -> list[str]:
    """One line per permission of ``grant``."""
    return [describe_permission(p) for p in grant.session.permissions]


def session_lines(rows: Sequence[SessionRow]) -> list[str]:
    """A listing of sessions for people."""
    if not rows:
        return ["no sessions in the store"]
    lines = []
    for row in rows:
        grant = row.grant
        marked = " (marked revoked in the store)" if row.marked_revoked and row.status != "revoked" else ""
        lines.extend(
            [
                f"{hex_of(grant.session_id)}  {row.status}{marked}",
                f"    account {grant.account}, key {grant.session_key}, granted {grant.how}, chain {grant.chain_id}",
                f"    valid until {describe_time(grant.valid_until)}",
                *(f"    allows {text}" for text in describe_permissions(grant)),
            ]
        )
    return lines


def list_sessions(chain: Chain, store: SessionStore, account: str | None = None) -> list[SessionRow]:
    """Every grant in ``store`` (of ``account`` when given), oldest first, with its state on ``chain``
    (judged at the module and EntryPoint each grant names)."""
    chosen = None if account is None else _address_from(account, "--account")
    chain_id = chain.chain_id()
    now = chain.block_timestamp()
    networks: dict[tuple[str, str], Endpoints] = {}
    rows = []
    for grant in store.list_grants(chosen):
        marked = store.is_revoked(grant.session_id)
        if grant.chain_id != chain_id:
            rows.append(SessionRow(grant, "other chain", marked))
            continue
        where = (grant.module, grant.entry_point)
        if where not in networks:
            networks[where] = Endpoints(
                chain=chain, bundler=_NoBundler(), module=grant.module, entry_point=grant.entry_point
            )
        network = networks[where]
        if not network.is_deployed(grant.module):
            rows.append(SessionRow(grant, "no module", marked))
            continue
        rows.append(SessionRow(grant, read_session_status(network, grant, now=now).value, marked))
    return rows


def store_sessions(store: SessionStore, account: str | None = None) -> list[dict[str, Any]]:
    """Every grant in ``store`` (of ``account`` when given), oldest first, as the store alone knows it: its
    status judged from the store's revocation mark and the window (now), whether its first operation landed,
    and how many operations are in flight for it."""
    in_flight = Counter(record.session_id for record in store.pending())
    now = time.time()
    rows = []
    for grant in store.list_grants(account):
        name = normalize_session_id(grant.session_id)
        rows.append(
            {
                "session_id": name,
                "account": grant.account,
                "session_key": grant.session_key,
                "status": session_status(grant, revoked=store.is_revoked(name), now=now).value,
                "enabled": store.is_enabled(name),
                "grant": grant.how,
                "valid_after": grant.valid_after,
                "valid_until": grant.valid_until,
                "pending": in_flight.get(name, 0),
            }
        )
    return rows
