"""The ``SessionKeyValidator`` module as the SDK talks to it: the selectors of its functions, the calls the
owner and the tools make (encoded) and their answers (decoded), and the one judgement of a session's status
from what the module and the session's window say.

The session's own schema (the ``Session``, ``Permission`` and ``Rule`` types, their EIP-712 hashes and the
signature layouts) is :mod:`keyscope.session`; this module is the contract's interface around it
(``contracts/interfaces/ISessionKeyValidator.sol``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from enum import Enum

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from .chain import Chain, read_many
from .clock import window_now
from .endpoints import Endpoints
from .errors import BadInputError, CallRevertedError, ConfigurationError
from .grant import SessionGrant
from .hexutil import keccak, to_address, to_bytes
from .limits import Counters, LimitUsage, counters_from_chain, initial_counters, usage_of
from .selectors import IS_INITIALIZED
from .session import SESSION_ABI_TYPE, SIGN_IN_SUFFIX, Session, TypedDataPermission, sign_in_domain_error

__all__ = [
    "CO_SIGNER_OF",
    "ENABLE_SESSION",
    "EPOCH_OF",
    "INVALIDATE_ALL_SESSIONS",
    "INVALIDATE_ALL_SESSIONS_AT",
    "IS_INITIALIZED",
    "IS_SESSION_ACTIVE",
    "IS_SESSION_REVOKED",
    "LIMIT_USAGE",
    "REVOKE_SESSION",
    "ROTATE_CO_SIGNER",
    "SESSIONS_INVALIDATED",
    "SESSION_ENABLED",
    "SESSION_REVOKED",
    "SessionStatus",
    "answers_as_module",
    "co_signer_of_data",
    "decode_bool",
    "decode_co_signer",
    "decode_epoch",
    "decode_limit_counters",
    "enable_session_data",
    "epoch_of_data",
    "invalidate_all_sessions_data",
    "is_initialized_data",
    "limit_usage_data",
    "module_answers",
    "read_co_signer",
    "read_limit_usage",
    "read_session_state",
    "read_session_status",
    "revoke_session_data",
    "session_flag_calls",
    "session_status",
    "unpredictable_epoch",
]

ENABLE_SESSION = keccak(f"enableSession({SESSION_ABI_TYPE})".encode())[:4]
REVOKE_SESSION = keccak(b"revokeSession(bytes32)")[:4]
INVALIDATE_ALL_SESSIONS = keccak(b"invalidateAllSessions()")[:4]
"""The whole calldata of ``invalidateAllSessions()``: it takes no argument, and the module moves the account to an
epoch drawn from the block that runs it (read the new epoch back with ``epochOf``)."""
INVALIDATE_ALL_SESSIONS_AT = keccak(b"invalidateAllSessions(uint32)")[:4]
"""Selector of ``invalidateAllSessions(uint32 nextEpoch)``: the account moves to ``nextEpoch``."""
IS_SESSION_ACTIVE = keccak(b"isSessionActive(address,bytes32)")[:4]
IS_SESSION_REVOKED = keccak(b"isSessionRevoked(address,bytes32)")[:4]
EPOCH_OF = keccak(b"epochOf(address)")[:4]
LIMIT_USAGE = keccak(b"limitUsage(address,bytes32)")[:4]
_LIMIT_USAGE_ROWS = "(uint8,uint256,uint32,uint48,uint256,uint256)[]"
ROTATE_CO_SIGNER = keccak(b"rotateCoSigner(bytes32,address)")[:4]
CO_SIGNER_OF = keccak(b"coSignerOf(address,bytes32)")[:4]
IS_TARGET_OF_LIVE_SESSION = keccak(b"isTargetOfLiveSession(address,address)")[:4]
SIGNING_PERMISSION = keccak(b"signingPermission(address,bytes32)")[:4]
_SIGNING_LIVE = 1 << 248
"""The live flag of a signing permission's header."""

SESSION_ENABLED = keccak(b"SessionEnabled(address,bytes32,address,uint48,uint48)")
"""Topic of the module's ``SessionEnabled(account, sessionId, sessionKey, validAfter, validUntil)`` event."""
SESSION_REVOKED = keccak(b"SessionRevoked(address,bytes32)")
"""Topic of ``SessionRevoked(account, sessionId)``."""
SESSIONS_INVALIDATED = keccak(b"SessionsInvalidated(address,uint32)")
"""Topic of ``SessionsInvalidated(account, newEpoch)``."""


# -- calls and answers ----------------------------------------------------------------------------------


def enable_session_data(session: Session) -> bytes:
    """Calldata of ``enableSession(session)`` (the owner's on-chain grant)."""
    return ENABLE_SESSION + abi_encode([SESSION_ABI_TYPE], [session.as_abi()])


def unpredictable_epoch() -> int:
    """An epoch drawn at random now, for :func:`invalidate_all_sessions_data`: no grant signed before names it but by
    a chance of 1 in 2^32."""
    return secrets.randbelow(1 << 32)


def invalidate_all_sessions_data(next_epoch: int) -> bytes:
    """Calldata of ``invalidateAllSessions(nextEpoch)``: every session dies, and the account moves to ``next_epoch``
    (the module refuses the epoch the account is at, ``EpochNotMoved``). Draw it when the call is made
    (:func:`unpredictable_epoch`): an epoch known before lets a grant signed ahead of time for it be enabled after the
    call."""
    if isinstance(next_epoch, bool) or not isinstance(next_epoch, int) or not 0 <= next_epoch < 1 << 32:
        raise BadInputError(f"an epoch is a whole number from 0 to {(1 << 32) - 1}, got {next_epoch!r}")
    return INVALIDATE_ALL_SESSIONS_AT + abi_encode(["uint32"], [next_epoch])


def revoke_session_data(session_id: bytes) -> bytes:
    """Calldata of ``revokeSession(sessionId)``."""
    return REVOKE_SESSION + abi_encode(["bytes32"], [session_id])


def rotate_co_signer_data(session_id: bytes, co_signer: str) -> bytes:
    """Calldata of ``rotateCoSigner(sessionId, coSigner)`` (``coSigner`` the zero address: remove it)."""
    return ROTATE_CO_SIGNER + abi_encode(
        ["bytes32", "address"], [to_bytes(session_id, name="session id", length=32), to_address(co_signer)]
    )


def epoch_of_data(account: str) -> bytes:
    """Calldata of ``epochOf(account)``: the epoch enable signatures are bound to."""
    return EPOCH_OF + abi_encode(["address"], [to_address(account)])


def is_initialized_data(account: str) -> bytes:
    """Calldata of ``isInitialized(account)``: whether the account installed the module (its ``onInstall`` ran, and
    no ``onUninstall`` since)."""
    return IS_INITIALIZED + abi_encode(["address"], [to_address(account)])


def decode_epoch(result: bytes, module: str) -> int:
    """The ``uint32`` answer of ``module``'s ``epochOf``; a :class:`~keyscope.errors.ConfigurationError` when there
    is none (no code at ``module`` on this chain: a wrong module address, or another chain's)."""
    if len(result) < 32:
        raise ConfigurationError(
            f"the session module {module} gave no answer to epochOf"
            + (f" (only 0x{result.hex()})" if result else "")
            + ": no SessionKeyValidator is there on this chain; check the module address given to connect() "
            "(or the grant's) and that the node is the chain it was deployed on"
        )
    return int(abi_decode(["uint32"], result[:32])[0])


def answers_as_module(chain: Chain, module: str) -> bool:
    """Whether ``module`` answers ``epochOf`` as the session module does (False where another contract is, one
    that reverts the question, or no code at all)."""
    try:
        answer = chain.call(module, epoch_of_data("0x" + "00" * 20))
    except CallRevertedError:
        return False
    return len(answer) == 32


@contextlib.contextmanager
def module_answers(chain: Chain, module: str) -> Iterator[None]:
    """Reads that ask ``module``: a revert among them, when ``module`` itself reverts ``epochOf`` (another
    contract at the address given as the module's), is a :class:`~keyscope.errors.ConfigurationError` naming the
    module, not the revert of a call the person never made."""
    try:
        yield
    except CallRevertedError:
        if not answers_as_module(chain, module):
            raise ConfigurationError(
                f"the session module {module} reverted when asked epochOf: no SessionKeyValidator is there on this "
                "chain (another contract is); check the module address given to connect() (or the grant's) and "
                "that the node is the chain it was deployed on"
            ) from None
        raise


def co_signer_of_data(account: str, session_id: bytes) -> bytes:
    """Calldata of ``coSignerOf(account, sessionId)``: whether the module holds a co-signer record for the session
    (from its enabling on), and the co-signer (the zero address once the owner removed it)."""
    return CO_SIGNER_OF + abi_encode(["address", "bytes32"], [to_address(account), session_id])


def read_co_signer(endpoints: Endpoints, grant: SessionGrant) -> tuple[bool, str]:
    """``(recorded, co-signer)``: the module's co-signer record of ``grant``'s session, as ``coSignerOf`` answers it
    now (not recorded before the session is enabled; the co-signer the owner rotated to, or the zero address once
    the owner removed it)."""
    module = endpoints.module
    with module_answers(endpoints.chain, module):
        answer = endpoints.chain.call(module, co_signer_of_data(grant.account, grant.session_id))
    return decode_co_signer(answer, module)


def decode_co_signer(result: bytes, module: str) -> tuple[bool, str]:
    """``(recorded, co-signer)``, the answer of ``module``'s ``coSignerOf``; a
    :class:`~keyscope.errors.ConfigurationError` when there is none (no SessionKeyValidator at ``module``)."""
    if len(result) < 64:
        raise ConfigurationError(
            f"the session module {module} gave no full answer to coSignerOf (0x{result.hex()}): no "
            "SessionKeyValidator is there on this chain; check the module address given to connect() (or the grant's)"
        )
    recorded, co_signer = abi_decode(["bool", "address"], result[:64])
    return bool(recorded), to_address(co_signer)


def decode_bool(result: bytes) -> bool:
    """The ``bool`` answer of ``isSessionActive`` / ``isSessionRevoked``."""
    return bool(int.from_bytes(result[:32], "big"))


def limit_usage_data(account: str, session_id: bytes) -> bytes:
    """Calldata of ``limitUsage(account, sessionId)``: each limit's amount, period, used and left as counted."""
    return LIMIT_USAGE + abi_encode(["address", "bytes32"], [to_address(account), session_id])


def decode_limit_counters(session: Session, result: bytes) -> Counters:
    """The session's limit counters from a ``limitUsage`` answer (a session not enabled yet has no records: its
    counters are a fresh session's)."""
    rows = abi_decode([_LIMIT_USAGE_ROWS], result)[0]
    if not rows:
        return initial_counters(session)
    return counters_from_chain(
        session, [(int(a), int(b), int(c), int(d), int(e), int(f)) for a, b, c, d, e, f in rows]
    )


def read_limit_usage(
    endpoints: Endpoints, grant: SessionGrant, *, now: int | None = None
) -> tuple[LimitUsage, ...]:
    """What each limit of ``grant``'s session has used and has left at ``now`` (default: the chain's time), read
    from the module in one round trip."""
    session = grant.session
    if not session.limits:
        return ()
    (result,), _, timestamp = read_many(
        endpoints.chain,
        [(endpoints.module, limit_usage_data(grant.account, grant.session_id))],
        timestamp=now is None,
    )
    moment = timestamp if now is None else now
    assert moment is not None
    return usage_of(session, decode_limit_counters(session, result), moment)


def target_of_live_session_data(account: str, target: str) -> bytes:
    """Calldata of ``isTargetOfLiveSession(account, target)``: whether a session of the account that is not revoked
    (expired ones included) may call ``target``."""
    return IS_TARGET_OF_LIVE_SESSION + abi_encode(
        ["address", "address"], [to_address(account), to_address(target)]
    )


def signing_permission_data(
    account: str, space: str, typed_data: Sequence[TypedDataPermission], sign_in: Sequence[str]
) -> list[bytes]:
    """Calldata of ``signingPermission(account, signingKey)`` for each signing permission held under ``space`` (a
    session key): the ``typed_data`` ones, then the ``sign_in`` websites', as the module keys them."""
    owner = to_bytes(to_address(space))
    # what is not a permission yet is refused when the session is built, with its own message: nothing to ask
    keys = [
        keccak(b"\x01" + owner + p.domain_separator + p.contents_type_hash)
        for p in typed_data
        if isinstance(p, TypedDataPermission)
    ]
    lines = [domain + SIGN_IN_SUFFIX for domain in sign_in if sign_in_domain_error(domain) is None]
    keys += [keccak(b"\x02" + owner + keccak(line.encode())) for line in lines]
    return [SIGNING_PERMISSION + abi_encode(["address", "bytes32"], [to_address(account), k]) for k in keys]


def signing_permission_is_live(result: bytes) -> bool:
    """Whether a ``signingPermission`` answer's header has the live flag."""
    return len(result) >= 32 and int.from_bytes(result[:32], "big") & _SIGNING_LIVE != 0


def session_flag_calls(account: str, session_id: bytes) -> tuple[bytes, bytes]:
    """Calldata of ``isSessionActive(account, sessionId)`` and ``isSessionRevoked(account, sessionId)``."""
    args = abi_encode(["address", "bytes32"], [to_address(account), session_id])
    return IS_SESSION_ACTIVE + args, IS_SESSION_REVOKED + args


# -- status -------------------------------------------------------------------------------------------


class SessionStatus(str, Enum):
    """Where a session stands. The values are what the tools print."""

    ACTIVE = "active"
    """Usable now: enabled on chain (or, judged from a store alone, neither revoked nor out of its window)."""
    NOT_YET_ENABLED = "not yet enabled"
    """An off-chain grant never used yet: its first operation will enable it."""
    NOT_YET_VALID = "not yet valid"
    """Its window has not begun."""
    EXPIRED = "expired"
    """Its window has ended."""
    REVOKED = "revoked"
    """The owner revoked it (on chain, or in the store of the tools)."""
    INVALIDATED = "invalidated"
    """Dead without a revocation of its own: the owner invalidated every session, moved the epoch its
    enable signature is bound to, or uninstalled the module."""


def session_status(
    grant: SessionGrant,
    *,
    revoked: bool,
    active: bool | None = None,
    now: float | None = None,
    enabled: bool | None = None,
    epoch: int | None = None,
) -> SessionStatus:
    """The status of the session of ``grant`` from what is known of it; every tool judges through this.

    * ``revoked``: the module's revocation flag (or a store's);
    * ``active``: the module's ``isSessionActive``; None when it was not asked: the status is then judged from
      ``revoked`` and the window alone;
    * ``now``: the time to judge the window by; None leaves the window out;
    * ``enabled``: whether the session was enabled on chain before (default: for an on-chain grant): no longer
      active then means invalidated;
    * ``epoch``: the account's epoch at the module now; an off-chain grant signed under another one can never
      be enabled.
    """
    if revoked:
        return SessionStatus.REVOKED
    if now is not None and grant.valid_until and now > grant.valid_until:
        return SessionStatus.EXPIRED
    if active is None or active:
        if now is not None and now < grant.valid_after:
            return SessionStatus.NOT_YET_VALID
        return SessionStatus.ACTIVE
    was_enabled = grant.how == "onchain" if enabled is None else enabled
    if was_enabled or (epoch is not None and epoch != grant.epoch):
        return SessionStatus.INVALIDATED
    return SessionStatus.NOT_YET_ENABLED


def read_session_state(
    endpoints: Endpoints, grant: SessionGrant, *, now: int | None = None
) -> tuple[SessionStatus, int]:
    """The status of ``grant``'s session on chain (at ``endpoints``' node and module), and the time it was judged
    at: ``now``, or by default :func:`~keyscope.clock.window_now` of the chain's latest block time (the later
    of the chain's clock and the wall clock, as the EntryPoint and the bundler judge windows).

    The module's two flags, the account's epoch, the account's code and (unless ``now`` is given) the chain's
    time are read in one round trip. A grant of another chain than the node's is refused
    (:class:`~keyscope.errors.ConfigurationError`): this chain's module says nothing of it. A session the module counts as usable (active, not yet valid, or an
    off-chain grant never used) on a deployed account that answers that the module is not installed is
    invalidated: the account asks the module about none of its operations, and a reinstall kills what an
    uninstall left (its ``onUninstall`` never ran: Kernel, Nexus and Safe7579 drop a module whose ``onUninstall``
    fails). That question is asked only then. An off-chain grant never used, at the account's epoch, on an
    account the module holds nothing of (``isInitialized`` false: never installed, or uninstalled with its
    ``onUninstall`` run) stays not yet enabled: installing the module does not move the epoch (unless the module
    holds live sessions of the account enabled while it was not installed, which the install ends), so the grant's
    first operation after ``Owner.install_sessions()`` enables it.
    """
    if grant.chain_id != endpoints.chain_id:
        # the module and the account have the same addresses on every chain: read here, a session of another chain
        # would be judged by this chain's flags (invalidated, or not yet enabled, for one live where it is)
        raise ConfigurationError(
            f"session 0x{grant.session_id.hex()} was granted on chain {grant.chain_id}, but the node is on chain "
            f"{endpoints.chain_id}: its status is what chain {grant.chain_id}'s module says. Read it through a node of "
            f"chain {grant.chain_id}"
        )
    module, account = endpoints.module, grant.account
    active_call, revoked_call = session_flag_calls(account, grant.session_id)
    with module_answers(endpoints.chain, module):
        (active, revoked, epoch, initialized), (code,), timestamp = read_many(
            endpoints.chain,
            [
                (module, active_call),
                (module, revoked_call),
                (module, epoch_of_data(account)),
                (module, is_initialized_data(account)),
            ],
            codes=[account],
            timestamp=now is None,
        )
    moment = window_now(timestamp) if now is None else now
    status = session_status(
        grant,
        revoked=decode_bool(revoked),
        active=decode_bool(active),
        now=moment,
        epoch=decode_epoch(epoch, module),
    )
    if status in _USABLE_WITH_THE_MODULE and code and not endpoints.supports_sessions(account):
        if status is SessionStatus.NOT_YET_ENABLED and not decode_bool(initialized):
            # the module holds nothing of the account (never installed, or its onUninstall ran and moved the
            # epoch): an install leaves the epoch where it is, so this grant's first operation enables it then
            return status, moment
        return SessionStatus.INVALIDATED, moment
    return status, moment


_USABLE_WITH_THE_MODULE = frozenset(
    {SessionStatus.ACTIVE, SessionStatus.NOT_YET_VALID, SessionStatus.NOT_YET_ENABLED}
)
"""The statuses that hold only while the account has the module installed."""


def read_session_status(
    endpoints: Endpoints, grant: SessionGrant, *, now: int | None = None
) -> SessionStatus:
    """The status of ``grant``'s session on chain (see :func:`read_session_state`, which also gives the time it
    was judged at)."""
    return read_session_state(endpoints, grant, now=now)[0]
