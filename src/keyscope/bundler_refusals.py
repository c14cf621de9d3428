"""A bundler's refusal of a session's operation, said as the SDK's error it means.

A refusal about the session's window becomes :class:`~keyscope.errors.SessionExpiredError` or
:class:`~keyscope.errors.SessionNotYetValidError`, and one about the end of the limit period an operation counts
in :class:`~keyscope.errors.LimitPeriodEndingError`; one about a call reverting inside its target (the policy
accepted the call) :class:`~keyscope.errors.TargetRevertedError`; one about the account's funds (AA21) says what
it holds and what the operation may cost (:func:`keyscope.operations.prefund_refusal`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .clock import utc_moment
from .endpoints import Endpoints
from .errors import (
    BadInputError,
    BundlerRejectedError,
    LimitPeriodEndingError,
    SessionExpiredError,
    SessionNotYetValidError,
    TargetRevertedError,
)
from .execution import Call
from .grant import SessionGrant
from .hexutil import to_address, to_bytes
from .operations import prefund_refusal
from .revert import describe_revert
from .userop import UserOperation

__all__ = ["bundler_refusals", "describe_call", "session_refusal", "target_refusal"]

_EXPIRES_SHORTLY = -32503
"""ERC-7769's code for an operation outside, or too close to the end of, its time window."""
_EXECUTION_REVERTED = -32521
"""ERC-7769's code for an operation whose execution (not its validation) reverted in simulation."""
_EXPIRES = re.compile(r"expires? too soon", re.I)
_NOT_YET_VALID = re.compile(r"not (yet )?valid yet|not yet valid|not valid until", re.I)
"""A refusal about the window's start, in any bundler's order of the words (Alto's "not valid yet", "not yet valid"):
read as an expiry, a session not started yet was said to need a new grant."""


def _described(data: object) -> str:
    """The decoded revert in a bundler error's ``data`` when it is 0x-hex revert data, else empty."""
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return ""
    try:
        return describe_revert(to_bytes(data))
    except BadInputError:
        return ""


def _number_after(name: str, message: str) -> int | None:
    """The integer that follows ``name=`` in a bundler's message (Alto: ``validUntil=1796190748, now=...``)."""
    found = re.search(rf"\b{name}\s*[=:]\s*(\d+)", message)
    return int(found.group(1)) if found else None


@contextmanager
def bundler_refusals(
    network: Endpoints,
    grant: SessionGrant,
    calls: Call | Sequence[Call] | None,
    op: UserOperation | None = None,
) -> Iterator[None]:
    """A bundler's refusal that is about the session's window becomes the session error it means; one that
    is about the call reverting inside its target says so (the policy accepted the call); one about the
    account's funds (AA21) says what it holds and what ``op`` may cost."""
    try:
        yield
    except BundlerRejectedError as error:
        translated = (
            session_refusal(grant, error)
            or target_refusal(grant, error, calls)
            or prefund_refusal(network, grant.account, error, op)
        )
        if translated is None:
            raise
        raise translated from error


def session_refusal(grant: SessionGrant, error: BundlerRejectedError) -> Exception | None:
    """:class:`SessionExpiredError` / :class:`SessionNotYetValidError` for a bundler's window refusal (ERC-7769
    code -32503, or Alto's words) that the session's own window explains, :class:`LimitPeriodEndingError` for one
    that the end of a per-period limit's period explains (the validUntil the module gave an operation counted in
    it); None otherwise (a paymaster's window, say)."""
    message = error.rpc_message or ""
    expiring = _EXPIRES.search(message)
    early = _NOT_YET_VALID.search(message)
    if error.code != _EXPIRES_SHORTLY and not (expiring or early):
        return None
    session_id = "0x" + grant.session_id.hex()
    bundler_now = _number_after("now", message)
    if early or (error.code == _EXPIRES_SHORTLY and "valid yet" in message.lower()):
        valid_after = _number_after("validAfter", message)
        if grant.valid_after and valid_after in (None, grant.valid_after):
            clock = f" (its clock reads {utc_moment(bundler_now)})" if bundler_now is not None else ""
            return SessionNotYetValidError(
                f"session {session_id} is not valid yet by the bundler's clock{clock}: its window opens at "
                f"{utc_moment(grant.valid_after)}; wait until then and send again",
                session_id,
            )
        if valid_after is not None and any(limit.period for limit in grant.session.limits):
            # the module makes an operation counted in a period valid in that period only: the period began by the
            # node's clock (the latest block's time), and not yet by the bundler's
            clock = f"; its clock reads {utc_moment(bundler_now)}" if bundler_now is not None else ""
            return SessionNotYetValidError(
                f"session {session_id}'s operation is counted in the limit period that begins at "
                f"{utc_moment(valid_after)} by the chain's clock, which the bundler's clock has not reached{clock}: "
                "the two clocks differ; wait until then and send again",
                session_id,
            )
        return None
    valid_until = _number_after("validUntil", message)
    if grant.valid_until and valid_until in (None, grant.valid_until):
        if bundler_now is not None and grant.valid_until <= bundler_now:  # not "too soon": over already
            return SessionExpiredError(
                f"session {session_id} expired at {utc_moment(grant.valid_until)}, by the bundler's clock (it reads "
                f"{utc_moment(bundler_now)}): ask the owner for a new session",
                session_id,
            )
        clock = f" (its clock reads {utc_moment(bundler_now)})" if bundler_now is not None else ""
        return SessionExpiredError(
            f"session {session_id} expires at {utc_moment(grant.valid_until)}, too soon for the bundler{clock}, which "
            "refuses operations that expire within seconds: ask the owner for a new session",
            session_id,
        )
    if valid_until is not None and _ends_a_period(grant, valid_until):
        return _period_ending(session_id, valid_until, bundler_now)
    return None


def _ends_a_period(grant: SessionGrant, moment: int) -> bool:
    """Whether ``moment`` is the last second of a period of one of the session's per-period limits (periods start
    at the session's validAfter): the validUntil the module gives an operation counted in that period."""
    anchor = grant.session.valid_after
    return any(
        limit.period and moment + 1 > anchor and (moment + 1 - anchor) % limit.period == 0
        for limit in grant.session.limits
    )


def _period_ending(session_id: str, period_end: int, bundler_now: int | None) -> LimitPeriodEndingError:
    """The bundler's "expires too soon" for an operation whose limit period ends at ``period_end`` (its validUntil)."""
    next_period = utc_moment(period_end + 1)
    if bundler_now is not None and period_end < bundler_now:
        # the operation claimed the chain's latest block time, older than the period's end: no block since
        return LimitPeriodEndingError(
            f"session {session_id}'s operation counts towards its limits in the period that ended at "
            f"{utc_moment(period_end)} by the bundler's clock (it reads {utc_moment(bundler_now)}): the operation "
            "claims the chain's latest block time, and the chain has made no block since that period ended. The "
            "session has not expired: wait for the next block (on a development node, mine one) and send again; the "
            f"operation then counts in the period that began at {next_period}",
            session_id,
            period_ends_at=period_end,
        )
    clock = f" (its clock reads {utc_moment(bundler_now)})" if bundler_now is not None else ""
    return LimitPeriodEndingError(
        f"session {session_id}'s operation counts towards its limits in the period that ends at "
        f"{utc_moment(period_end)}, and is valid in that period only: too soon for the bundler{clock}, which "
        "refuses operations that expire within seconds. The session has not expired and nothing was counted: "
        f"wait until the next period begins at {next_period} and send again",
        session_id,
        period_ends_at=period_end,
    )


def target_refusal(
    grant: SessionGrant, error: BundlerRejectedError, calls: Call | Sequence[Call] | None
) -> Exception | None:
    """:class:`TargetRevertedError` for a simulation in which the account's call reverted (ERC-7769 code
    -32521): validation passed, so the session's policy is not the cause."""
    if error.code != _EXECUTION_REVERTED or calls is None:
        return None
    batch = [calls] if isinstance(calls, Call) else list(calls)
    described = "; ".join(describe_call(grant, call) for call in batch)
    why = getattr(error, "revert_description", "") or _described(error.data) or "no revert data"
    return TargetRevertedError(
        error.method,
        error.code,
        error.rpc_message,
        error.data,
        calls=described,
        reason=why,
    )


def describe_call(grant: SessionGrant, call: Call) -> str:
    """``call`` in words: the granted function it calls (else a plain transfer, or its selector) and its target."""
    permission = next(
        (
            p
            for p in grant.session.permissions
            if p.target == to_address(call.target) and p.selector == call.selector
        ),
        None,
    )
    name = permission.function if permission is not None else None
    shown = name or ("a plain transfer" if not call.data else f"selector 0x{call.selector.hex()}")
    return f"{shown} on {call.target}"
