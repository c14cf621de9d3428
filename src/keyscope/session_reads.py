"""What a session account reads of the chain before an operation, in one round trip, and how it judges it.

The lane's nonce, the session's flags (and, for an off-chain grant not enabled yet, the account's epoch), whether
the account installed the module, a co-signed session's co-signer record, the limit counters, the latest block's
time and which addresses have code ride in one JSON-RPC batch (:func:`keyscope.chain.read_many`);
:func:`judge_status` raises the session error a revoked or dead session means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .chain import read_many
from .endpoints import Endpoints
from .entrypoint import encode_get_nonce
from .errors import SessionRevokedError
from .grant import SessionGrant
from .limits import Counters
from .module import (
    SessionStatus,
    co_signer_of_data,
    decode_bool,
    decode_co_signer,
    decode_epoch,
    decode_limit_counters,
    epoch_of_data,
    is_initialized_data,
    limit_usage_data,
    session_flag_calls,
    session_status,
)

__all__ = ["SessionFlags", "SessionRead", "SessionReads", "judge_status", "read_session_state"]


@dataclass
class SessionReads:
    """The calls a session account asks the module about its session, and what it last read of the chain."""

    flag_calls: tuple[bytes, bytes]
    """Calldata of the module's ``isSessionActive`` and ``isSessionRevoked`` for this session."""
    usage_call: bytes | None
    """Calldata of the module's ``limitUsage`` for a session with limits."""
    co_signer_call: bytes | None
    """Calldata of the module's ``coSignerOf`` for a co-signed session."""
    counters: Counters | None = None
    """The session's limit counters as last read from the module."""
    with_code: set[str] = field(default_factory=set)
    """Targets seen with code (code does not go away outside the transaction that creates it)."""
    installed: bool | None = None
    """The module's ``isInitialized(account)`` as last read: whether the account installed it."""
    co_signer: tuple[bool, str] | None = None
    """A co-signed session's co-signer record as last read from the module: (recorded, co-signer)."""

    @classmethod
    def for_grant(cls, grant: SessionGrant) -> SessionReads:
        """The calls for ``grant``'s session, nothing read yet."""
        return cls(
            flag_calls=session_flag_calls(grant.account, grant.session_id),
            usage_call=limit_usage_data(grant.account, grant.session_id) if grant.session.limits else None,
            co_signer_call=(
                co_signer_of_data(grant.account, grant.session_id)
                if grant.session.co_signer is not None
                else None
            ),
        )


class SessionFlags(NamedTuple):
    """The module's flags of the session, and the account's epoch when it was asked."""

    active: bool
    revoked: bool
    epoch: int | None


class SessionRead(NamedTuple):
    """What one read returns: the lane's nonce, the latest block's time, and the session's flags (each when
    asked)."""

    nonce: int | None
    timestamp: int | None
    flags: SessionFlags | None


def read_session_state(
    network: Endpoints,
    grant: SessionGrant,
    reads: SessionReads,
    *,
    enabled: bool,
    nonce_key: int | None,
    status: bool,
    clock: bool,
    codes: Sequence[str] = (),
) -> SessionRead:
    """Read, in one round trip, what a new operation needs from the chain: the lane's nonce (when
    ``nonce_key`` is given), the session's status (when ``status``), the latest block's time (when ``clock``) and
    whether the addresses ``codes`` have code (those that do are remembered in ``reads.with_code``). The limit
    counters, the module's installation and the co-signer record are remembered in ``reads``; the session's flags
    are returned for :func:`judge_status` (with the account's epoch for a session not ``enabled`` yet)."""
    calls: list[tuple[str, bytes]] = []
    if nonce_key is not None:
        calls.append((network.entry_point, encode_get_nonce(grant.account, nonce_key)))
    # an off-chain grant not enabled yet: its ENABLE holds only at the epoch it was signed in
    epoch_too = status and not enabled
    if status:
        calls.extend((network.module, data) for data in reads.flag_calls)
    if epoch_too:
        calls.append((network.module, epoch_of_data(grant.account)))
    if status:
        calls.append((network.module, is_initialized_data(grant.account)))
    co_signer_too = status and reads.co_signer_call is not None
    if co_signer_too:
        assert reads.co_signer_call is not None
        calls.append((network.module, reads.co_signer_call))
    if reads.usage_call is not None:
        calls.append((network.module, reads.usage_call))
    results, found, timestamp = read_many(network.chain, calls, codes=codes, timestamp=clock)
    reads.with_code.update(address for address, code in zip(codes, found, strict=True) if code)
    nonce = int.from_bytes(results.pop(0)[:32], "big") if nonce_key is not None else None
    if reads.usage_call is not None:
        reads.counters = decode_limit_counters(grant.session, results.pop())
    if co_signer_too:
        reads.co_signer = decode_co_signer(results.pop(), network.module)
    if status:
        reads.installed = decode_bool(results.pop())
    epoch = decode_epoch(results.pop(), network.module) if epoch_too else None
    flags = None
    if status:
        active, revoked = (decode_bool(result) for result in results)
        flags = SessionFlags(active, revoked, epoch)
    return SessionRead(nonce, timestamp, flags)


def judge_status(
    grant: SessionGrant, active: bool, revoked: bool, enabled: bool, epoch: int | None = None
) -> bool:
    """Raise when the module's flags (and, for a session not enabled yet, the account's ``epoch``) say the
    session can no longer be used; note when it is enabled.

    Returns whether the session is enabled now: ``enabled`` (as the session account knew it), or ``active``."""
    status = session_status(grant, revoked=revoked, active=active, enabled=enabled, epoch=epoch)
    session_id = "0x" + grant.session_id.hex()
    if status is SessionStatus.REVOKED:
        raise SessionRevokedError(
            f"session {session_id} is revoked on chain: ask the owner for a new session", session_id
        )
    if status is SessionStatus.INVALIDATED and not enabled and not active:
        raise SessionRevokedError(
            f"session {session_id} was granted at the account's epoch {grant.epoch}, and the account is at "
            f"epoch {epoch} now (the owner invalidated all sessions, or uninstalled the module): the module no "
            "longer accepts the owner's signature of this grant (InvalidOwnerSignature); ask the owner for a new "
            "session",
            session_id,
        )
    if status is SessionStatus.INVALIDATED:
        raise SessionRevokedError(
            f"session {session_id} is no longer active on chain (the module was uninstalled or all sessions "
            "invalidated): ask the owner for a new session",
            session_id,
        )
    return enabled or active
