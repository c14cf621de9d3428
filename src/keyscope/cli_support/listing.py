"""The sessions of a store with their state on chain, and their listing for people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..chain import Chain
from ..grant import SessionGrant
from ..network import Network
from ..store import SessionStore
from .output import hex_of
from .settings import _address_from, _NoBundler

_IS_SESSION_ACTIVE = keccak(b"isSessionActive(address,bytes32)")[:4]
_IS_SESSION_REVOKED = keccak(b"isSessionRevoked(address,bytes32)")[:4]
_EPOCH_OF = keccak(b"epochOf(address)")[:4]


def _module_flag(network: Network, selector: bytes, grant: SessionGrant) -> bool:
    data = selector + abi_encode(["address", "bytes32"], [grant.account, grant.session_id])
    return bool(abi_decode(["bool"], network.chain.call(network.module, data))[0])


def session_status(network: Network, grant: SessionGrant, *, now: int | None = None) -> str:
    """The grant's state on chain: ``active``, ``not yet enabled`` (an off-chain grant never used yet),
    ``not yet valid``, ``expired``, ``revoked``, ``invalidated`` (all sessions invalidated or the module
    uninstalled), or ``other chain`` / ``other module`` when the grant is not for ``network``."""
    if (grant.chain_id, grant.module, grant.entry_point) != (
        network.chain_id,
        network.module,
        network.entry_point,
    ):
        return "other chain" if grant.chain_id != network.chain_id else "other module"
    if _module_flag(network, _IS_SESSION_REVOKED, grant):
        return "revoked"
    moment = network.chain.block_timestamp() if now is None else now
    if grant.valid_until and moment > grant.valid_until:
        return "expired"
    active = _module_flag(network, _IS_SESSION_ACTIVE, grant)
    if active:
        return "not yet valid" if moment < grant.valid_after else "active"
    if grant.how == "onchain":
        return "invalidated"
    epoch = network.chain.call(network.module, _EPOCH_OF + abi_encode(["address"], [grant.account]))
    if int(abi_decode(["uint32"], epoch)[0]) != grant.epoch:
        return "invalidated"
    if network.is_deployed(grant.account) and not network.supports_sessions(grant.account):
        return "invalidated"
    return "not yet enabled"


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


def describe_time(moment: int) -> str:
    """A unix time as UTC text; 0 reads as never."""
    if not moment:
        return "never expires"
    import datetime

    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


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
    networks: dict[tuple[str, str], Network] = {}
    rows = []
    for grant in store.list_grants(chosen):
        marked = store.is_revoked(grant.session_id)
        if grant.chain_id != chain_id:
            rows.append(SessionRow(grant, "other chain", marked))
            continue
        where = (grant.module, grant.entry_point)
        if where not in networks:
            networks[where] = Network(
                chain=chain, bundler=_NoBundler(), module=grant.module, entry_point=grant.entry_point
            )
        network = networks[where]
        status = session_status(network, grant, now=now) if network.is_deployed(grant.module) else "no module"
        rows.append(SessionRow(grant, status, marked))
    return rows
