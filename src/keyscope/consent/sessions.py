"""An account's sessions as its owner sees them: every session the module's events name and every grant a store
holds, each with its state, its permissions in words and its time left; and the owner's revocations, prepared
here and signed in the owner's wallet.

The module logs ``SessionEnabled`` (with the key and window), ``SessionRevoked`` and ``SessionsInvalidated``; a
grant not used yet (off-chain, never enabled) is only in the store. The permissions of a session are known only
from its grant: a session seen only in events is listed with its key and window, and can be revoked all the same.

A wallet never signs a bare hash (``eth_sign`` is gone from MetaMask, and anvil's prefixes the message too): the
owner's revocation is a UserOperation prepared here, whose userOpHash the wallet signs with ``personal_sign``;
keyscope's account accepts its owner's EIP-191 signature of the hash, as Kernel's and Nexus's ECDSA validators do.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_keys.exceptions import ValidationError as SignatureShapeError
from pydantic import BaseModel, ConfigDict

from ..accounts.base import AccountKind
from ..bundler.types import UserOperationReceipt
from ..chain import Chain
from ..endpoints import Endpoints
from ..entrypoint import USER_OPERATION_EVENT_TOPIC
from ..errors import BadInputError, ConfigurationError, TransportError
from ..execution import Call, encode_execute
from ..grant import SessionGrant
from ..hexutil import to_address, to_bytes
from ..log_queries import range_refused
from ..module import (
    INVALIDATE_ALL_SESSIONS,
    SESSION_ENABLED,
    SESSION_REVOKED,
    SESSIONS_INVALIDATED,
    SessionStatus,
    decode_bool,
    read_co_signer,
    read_limit_usage,
    read_session_status,
    revoke_session_data,
    session_flag_calls,
)
from ..operations import DEFAULT_OWNER_MAX_GAS_COST, OperationBuilder, refuse_owner_cost
from ..rpc import JsonRpcError
from ..signing import PLACEHOLDER_ECDSA
from ..signing_words import held_co_signer_line
from ..store import SessionStore
from ..store.base import OnCorrupt
from ..userop import UserOperation
from .describe import NATIVE, Facts, GrantDescription, describe_session, limit_usage_words
from .tokens import format_amount

__all__ = [
    "OperationTotals",
    "OwnerOperation",
    "SessionView",
    "account_sessions",
    "module_events",
    "operations_by_nonce_key",
    "prepare_revocation",
    "recover_personal_signer",
]

LANES_COUNTED = 16
"""The nonce lanes of a session whose operations count as its usage: the lanes from its base (derived from its
id) on. The SDK sends on lane 0 and a worker on a few more (``max_lanes``, 4 by default). Lanes are not owned:
another session of the account whose lanes overlap these (odds of 31 in 2**32 for a pair of sessions on keyscope's
account, whose lanes take 32 bits; 31 in 65,536 on Kernel's 16) would have its operations counted here too."""


class SessionView(BaseModel):
    """One session of an account, as the dashboard shows it. ``seconds_left`` is None for a session that never
    expires; ``description`` None when no grant of it is known (seen only in the module's events)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    session_key: str
    status: str
    valid_after: int
    valid_until: int
    seconds_left: int | None
    enabled_on_chain: bool
    in_store: bool
    description: GrantDescription | None
    usage: tuple[str, ...] = ()
    """What the session has used, in words: its operations (from the EntryPoint's events) and the gas they paid,
    then each lifetime limit's use and what is left (read from the module, for a known grant that can still be
    used)."""


@dataclass(frozen=True)
class _Enabled:
    session_id: bytes
    session_key: str
    valid_after: int
    valid_until: int


LOG_CHUNK_BLOCKS = 10_000
"""Blocks per ``eth_getLogs`` once a provider refuses a whole-history query (public RPCs cap the range or the
number of results); a chunk still refused is halved."""


def _logs_in_chunks(client: Any, query: dict[str, Any]) -> list[Any]:
    """``query`` over blocks 0..latest, asked in chunks of LOG_CHUNK_BLOCKS, halving a chunk still refused."""
    latest = int(client.request("eth_blockNumber", []), 16)
    logs: list[Any] = []
    start, size = 0, LOG_CHUNK_BLOCKS
    while start <= latest:
        end = min(latest, start + size - 1)
        try:
            part = client.request("eth_getLogs", [{**query, "fromBlock": hex(start), "toBlock": hex(end)}])
        except JsonRpcError as error:
            if size == 1 or not range_refused(error):
                raise
            size //= 2
            continue
        if not isinstance(part, list):
            raise TransportError(f"eth_getLogs answered {str(part)[:100]!r}, not a list of logs")
        logs.extend(part)
        start = end + 1
    return logs


def _get_logs(chain: Chain, query: dict[str, Any]) -> list[dict[str, Any]]:
    """The logs of ``query`` over the whole chain: one query, or chunks when the provider refuses one."""
    client = getattr(chain, "client", None)
    if client is not None and hasattr(client, "request"):
        try:
            result = client.request("eth_getLogs", [query])
        except JsonRpcError as error:
            if not range_refused(error):
                raise
            result = _logs_in_chunks(client, query)
    else:
        w3 = getattr(chain, "w3", None)
        if w3 is None:
            raise ConfigurationError(f"{chain!r} gives no access to event logs (eth_getLogs)")
        result = [dict(log) for log in w3.eth.get_logs({**query, "fromBlock": 0, "toBlock": "latest"})]
    if not isinstance(result, list):
        raise TransportError(f"eth_getLogs answered {str(result)[:100]!r}, not a list of logs")
    return result


def _topic(log: dict[str, Any], index: int) -> bytes:
    return to_bytes(log["topics"][index], name="log topic")


def module_events(chain: Chain, module: str, account: str) -> tuple[list[_Enabled], set[bytes], int]:
    """The module's events for ``account``: the sessions enabled (oldest first), the ids revoked, and how many
    times every session was invalidated."""
    account_topic = "0x" + "00" * 12 + to_address(account)[2:].lower()
    query = {
        "address": to_address(module),
        "fromBlock": "0x0",
        "toBlock": "latest",
        "topics": [
            ["0x" + t.hex() for t in (SESSION_ENABLED, SESSION_REVOKED, SESSIONS_INVALIDATED)],
            account_topic,
        ],
    }
    enabled, revoked, invalidations = [], set(), 0
    for log in _get_logs(chain, query):
        topic = _topic(log, 0)
        if topic == SESSION_ENABLED:
            after, until = abi_decode(["uint48", "uint48"], to_bytes(log["data"], name="log data"))
            key = to_address(_topic(log, 3)[12:])
            enabled.append(_Enabled(_topic(log, 2), key, int(after), int(until)))
        elif topic == SESSION_REVOKED:
            revoked.add(_topic(log, 2))
        elif topic == SESSIONS_INVALIDATED:
            invalidations += 1
    return enabled, revoked, invalidations


@dataclass(frozen=True)
class OperationTotals:
    """The operations on one nonce key: how many landed, how many of them reverted in their calls, and the gas
    they paid (wei)."""

    count: int = 0
    failed: int = 0
    gas_cost: int = 0


def operations_by_nonce_key(chain: Chain, entry_point: str, account: str) -> dict[int, OperationTotals]:
    """The EntryPoint's ``UserOperationEvent`` s of ``account``, totalled by the operations' nonce keys (a
    session's operations are those on its nonce lanes)."""
    account = to_address(account, name="account")
    query = {
        "address": to_address(entry_point),
        "fromBlock": "0x0",
        "toBlock": "latest",
        "topics": ["0x" + USER_OPERATION_EVENT_TOPIC.hex(), None, "0x" + "00" * 12 + account[2:].lower()],
    }
    totals: dict[int, OperationTotals] = {}
    for log in _get_logs(chain, query):
        nonce, success, cost, _ = abi_decode(
            ["uint256", "bool", "uint256", "uint256"], to_bytes(log["data"], name="log data")
        )
        before = totals.get(int(nonce) >> 64, OperationTotals())
        totals[int(nonce) >> 64] = OperationTotals(
            before.count + 1, before.failed + (not success), before.gas_cost + int(cost)
        )
    return totals


def _usage(
    kind: AccountKind | None, module: str, session_id: bytes, operations: dict[int, OperationTotals]
) -> tuple[str, ...]:
    """The session's usage in words, from the operations on its nonce lanes (``kind``: the account's, None
    when it has sent no operation at all)."""
    if kind is None:
        return ("No operations sent yet",)
    lanes = 1 << kind.lane_bits
    base = int.from_bytes(session_id[:4], "big") % lanes
    keys = {kind.nonce_key(module, (base + offset) % lanes) for offset in range(min(LANES_COUNTED, lanes))}
    used = [operations[key] for key in keys if key in operations]
    count = sum(o.count for o in used)
    if not count:
        return ("No operations sent yet",)
    failed = sum(o.failed for o in used)
    sent = f"{count} operation{'s' if count != 1 else ''} sent"
    if failed:
        sent += f" ({failed} of them reverted in their calls)"
    paid = f"{format_amount(sum(o.gas_cost for o in used), 18, NATIVE)} paid in gas (by the account or its paymaster)"
    return (sent, paid)


def account_sessions(
    endpoints: Endpoints,
    account: str,
    *,
    store: SessionStore | None = None,
    describe: Callable[[SessionGrant], GrantDescription] | None = None,
    facts: Facts | None = None,
    on_corrupt: OnCorrupt | None = None,
) -> list[SessionView]:
    """Every session of ``account`` at ``endpoints``' module, newest first: from the module's events and from
    ``store``'s grants, each with its status on chain now and (for grants) its words (``describe``). A limit's use
    is shown as the module counts it, with a token's amounts also at what ``facts`` reads of it
    (:func:`~keyscope.consent.describe.limit_usage_words`). A grant the store cannot read is passed to
    ``on_corrupt`` (as :meth:`SessionStore.list_grants <keyscope.store.SessionStore.list_grants>` does) and the
    listing goes on; without it, such a grant raises."""
    address = to_address(account, name="account")
    enabled, revoked, _ = module_events(endpoints.chain, endpoints.module, address)
    now = endpoints.chain.block_timestamp()
    stored = store.list_grants(address, on_corrupt=on_corrupt) if store is not None else []
    operations = operations_by_nonce_key(endpoints.chain, endpoints.entry_point, address)
    kind = endpoints.kind_for(address) if operations else None  # operations: the account has code
    grants = {
        g.session_id: g for g in stored if g.module == endpoints.module and g.chain_id == endpoints.chain_id
    }
    seen = {e.session_id for e in enabled}
    views: list[SessionView] = []
    ordered: list[bytes] = [e.session_id for e in enabled]
    ordered += [sid for sid in grants if sid not in seen]
    by_id = {e.session_id: e for e in enabled}
    for session_id in dict.fromkeys(ordered):
        grant = grants.get(session_id)
        event = by_id.get(session_id)
        limits: tuple[str, ...] = ()
        if grant is not None:
            judged = read_session_status(endpoints, grant, now=now)
            status = judged.value
            if grant.session.limits and judged in (SessionStatus.ACTIVE, SessionStatus.NOT_YET_ENABLED):
                limits = tuple(
                    limit_usage_words(row, grant.session, facts)
                    for row in read_limit_usage(endpoints, grant, now=now)
                )
            after, until, key = grant.valid_after, grant.valid_until, grant.session_key
            words = describe(grant) if describe is not None else None
            if (
                words is not None and grant.session.co_signer is not None
            ):  # the owner may have replaced or removed it
                held = held_co_signer_line(grant.session, read_co_signer(endpoints, grant))
                words = words.model_copy(update={"cosigner": held})
        else:
            assert event is not None
            after, until, key = event.valid_after, event.valid_until, event.session_key
            status = _status_from_events(endpoints, address, event, revoked, now)
            words = None
        views.append(
            SessionView(
                session_id="0x" + session_id.hex(),
                session_key=key,
                status=status,
                valid_after=after,
                valid_until=until,
                seconds_left=None if not until else max(0, until - now),
                enabled_on_chain=event is not None,
                in_store=grant is not None,
                description=words,
                usage=_usage(kind, endpoints.module, session_id, operations) + limits,
            )
        )
    views.reverse()
    return views


def _status_from_events(
    endpoints: Endpoints, account: str, event: _Enabled, revoked: set[bytes], now: int
) -> str:
    if event.session_id in revoked:
        return "revoked"
    if event.valid_until and now > event.valid_until:
        return "expired"
    active_call, _ = session_flag_calls(account, event.session_id)
    if not decode_bool(endpoints.chain.call(endpoints.module, active_call)):
        return "invalidated"
    return "not yet valid" if now < event.valid_after else "active"


# --------------------------------------------------------------------------------------------------
# the owner's operations, signed in a wallet
# --------------------------------------------------------------------------------------------------


@dataclass
class OwnerOperation:
    """An owner's UserOperation waiting for the wallet's signature: the wallet signs ``user_op_hash`` with
    ``personal_sign``; :meth:`finish` sends it."""

    account: str
    what: str
    session_ids: tuple[bytes, ...] | None
    op: UserOperation
    user_op_hash: bytes
    builder: OperationBuilder = field(repr=False)
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    created: float = field(default_factory=time.monotonic)

    def finish(
        self, signature: bytes | str, *, signer: str | None = None, timeout: float = 60.0
    ) -> UserOperationReceipt:
        """Send the operation with the wallet's ``signature`` (over the EIP-191 message of the userOpHash) and
        wait for it. ``signer``, the wallet's address, is checked against the signature first."""
        raw = to_bytes(signature, name="the wallet's signature")
        if signer is not None:
            recovered = recover_personal_signer(self.user_op_hash, raw)
            if recovered != to_address(signer):
                raise BadInputError(
                    f"the wallet's signature recovers to {recovered}, not to the connected address {signer}: "
                    "sign with the account owner's address"
                )
        kind = self.builder.network.kind_for(self.account)
        signed = self.op.replace(signature=kind.owner_user_op_signature(raw))
        return self.builder.send(signed).wait(timeout)


def recover_personal_signer(digest: bytes, signature: bytes) -> str | None:
    """The address whose ``personal_sign`` of the 32 bytes ``digest`` ``signature`` is (None: nobody's)."""
    try:
        return to_address(Account.recover_message(encode_defunct(primitive=digest), signature=signature))
    except (ValueError, BadSignature, SignatureShapeError):  # r or s out of range, no point: nobody's
        return None


def prepare_revocation(
    endpoints: Endpoints,
    account: str,
    session_ids: Sequence[bytes] | None,
    *,
    creation: tuple[str, bytes] | None = None,
    max_gas_cost: int = DEFAULT_OWNER_MAX_GAS_COST,
) -> OwnerOperation:
    """The owner's operation revoking ``session_ids`` of ``account`` (None: every session, by
    ``invalidateAllSessions``), estimated and ready for the wallet's signature. ``creation`` (factory, factory
    data) creates the account first when it has no code yet: a session granted off-chain can still be enabled by
    its first operation, so revoking it matters before the account exists. The wallet signs only the operation's
    hash: one the bundler prices over ``max_gas_cost`` wei (0: no cap) is refused here
    (:class:`~keyscope.errors.OwnerGasCostTooHighError`), as the owner's own operations are."""
    address = to_address(account, name="account")
    if session_ids is None:
        calls = [Call(endpoints.module, 0, INVALIDATE_ALL_SESSIONS)]
        what = f"revoke every session of {address}"
    else:
        if not session_ids:
            raise BadInputError("name at least one session to revoke")
        calls = [Call(endpoints.module, 0, revoke_session_data(sid)) for sid in session_ids]
        what = "revoke session " + ", ".join("0x" + sid.hex() for sid in session_ids)
    kind = endpoints.kind_for(address)
    factory, factory_data = creation if creation is not None else (None, b"")
    if factory is None and not endpoints.is_deployed(address):
        raise BadInputError(
            f"the account {address} has no code yet and no grant in the store says how to create it: nothing to "
            "revoke on chain before its first operation"
        )
    builder = OperationBuilder(endpoints)
    draft = builder.draft(address, encode_execute(calls), kind.nonce_key(None), factory, factory_data)
    op = builder.prepare(draft, kind.owner_user_op_signature(PLACEHOLDER_ECDSA)).op
    refuse_owner_cost(op, max_gas_cost)
    ids = None if session_ids is None else tuple(session_ids)
    return OwnerOperation(address, what, ids, op, builder.user_op_hash(op), builder)


def describe_with(endpoints: Endpoints, facts: Facts) -> Callable[[SessionGrant], GrantDescription]:
    """A describer of grants on ``endpoints``' chain."""

    def describe(grant: SessionGrant) -> GrantDescription:
        return describe_session(grant.session, account=grant.account, chain_id=grant.chain_id, facts=facts)

    return describe
