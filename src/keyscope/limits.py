"""Limits over a session's life or per period, counted off-chain exactly as ``SessionLimits`` counts them on chain.

The module keeps, per limit, what is **left** and the **period** it is left in; an operation that passed the policy
takes from its sessions' limits, in the order the module takes (each call's meters in the order the grant lists
them, then the session's OPERATIONS and GAS limits once per operation), and is valid only inside the periods it
was counted in. :func:`count_limits` does the same on :class:`Counters` and raises what the chain would refuse;
:class:`LimitUsage` is what the tools show (``session.usage()``, ``keyscope sessions``).

Periods start at the session's ``valid_after``; an operation picks its period by the time it claims (the MODE_AT
signature prefix, which the SDK sets to the chain's time), and the module bounds its validity to that period.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from .clock import utc_text
from .errors import BadInputError, LimitError, LimitExceededError, shown
from .session import Limit, LimitKind, Session

__all__ = [
    "UINT48_MAX",
    "Counter",
    "Counters",
    "LimitUsage",
    "count_limits",
    "counters_from_chain",
    "enforced_amount",
    "initial_counters",
    "limit_fields",
    "limit_text",
    "owner_label",
    "period_note",
    "period_seconds",
    "refuse_unusable_limits",
    "reset_text",
    "usage_of",
]

UINT48_MAX = 2**48 - 1

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def period_seconds(per: int | str | None) -> int:
    """Seconds in a period written ``"day"``, ``"hour"``, ``"2 hours"``, ``"week"``, ``"90s"`` or as seconds;
    0 for None (the session's life)."""
    if per is None:
        return 0
    if isinstance(per, bool) or not isinstance(per, (int, str)):
        raise BadInputError(f"a period is a number of seconds or a word like 'day', got {shown(per)}")
    if isinstance(per, int):
        if per <= 0:
            raise BadInputError(f"a period must be a positive number of seconds, got {per}")
        return per
    text = per.strip().lower()
    match = re.fullmatch(r"([0-9]+)\s*(s|m|h|d|w|seconds?|minutes?|hours?|days?|weeks?)?", text)
    if match is not None:
        count = int(match.group(1))
        if count == 0:  # not "over the session's life" (None): a period of 0 seconds is no period
            raise BadInputError(f"a period must be a positive number of seconds, got {shown(per)}")
        unit = match.group(2) or "s"
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}.get(unit) or _UNITS[unit.rstrip("s")]
        return count * seconds
    if text in _UNITS:
        return _UNITS[text]
    raise BadInputError(
        f"unknown period {shown(per)}: use 'minute', 'hour', 'day', 'week', '6h' (or '6 hours') or seconds"
    )


@dataclass(frozen=True, slots=True)
class Counter:
    """One limit's state as the module stores it: what is ``left`` in period ``period`` (0 over the life)."""

    left: int
    period: int = 0


Counters = tuple[Counter, ...]
"""Every limit's :class:`Counter`, in the session's order."""


def initial_counters(session: Session) -> Counters:
    """The counters of a session just enabled: each limit's whole amount left in period 0."""
    return tuple(Counter(limit.stored_amount, 0) for limit in session.limits)


def counters_from_chain(session: Session, rows: Sequence[tuple[int, int, int, int, int, int]]) -> Counters:
    """Counters from the module's ``limitUsage`` rows ``(kind, amount, period, periodStart, used, left)``."""
    counters = []
    for limit, row in zip(session.limits, rows, strict=True):
        # plain ints: a client library may hand back its own int subclass
        period_start, left = int(row[3]), int(row[5])
        index = (period_start - session.valid_after) // limit.period if limit.period else 0
        counters.append(Counter(left, index))
    return tuple(counters)


@dataclass(frozen=True, slots=True)
class Counted:
    """What :func:`count_limits` found: the counters after the operation and the window of its periods."""

    counters: Counters
    valid_after: int
    valid_until: int
    """UINT48_MAX when no period bounds it."""


def reset_text(moment: int) -> str:
    """When a period resets, in UTC to the second (``2025-01-02 14:00:30 UTC``), as every surface shows it: shown
    to the minute it read up to 59 seconds before the reset, when an operation spending the whole amount again is
    still refused (attack 422). A time no calendar reaches is given as its number."""
    try:
        return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"unix time {moment}"


class _Counting:
    """One operation being counted (mirrors the module's ``Tally``)."""

    def __init__(self, session: Session, session_id: str | None, counters: Counters, at: int | None) -> None:
        self.session = session
        self.session_id = session_id
        self.counters = list(counters)
        self.at = at
        self.valid_after = 0
        self.valid_until = UINT48_MAX

    def spend(self, number: int, amount: int, call_index: int, label: str) -> None:
        limit = self.session.limits[number]
        counter = self.counters[number]
        left, index = counter.left, counter.period
        anchor = self.session.valid_after
        resets_at = None
        if limit.period:
            if self.at is None:
                raise LimitError(
                    f"call {call_index} ({label}) counts towards limit {number} ({limit.label}, {limit.per}), but the "
                    "operation claims no time to pick the period by: sign it with a claimed time (MODE_AT)",
                    reason="ClaimedTimeRequired",
                    session_id=self.session_id,
                    call_index=call_index,
                    limit_index=number,
                )
            k = limit.period_of(self.at, anchor)
            if k < index:
                raise LimitError(
                    f"call {call_index} ({label}) claims period {k} of limit {number} ({limit.label}), which is over: "
                    f"the limit has counted in period {index} already. Claim the current time",
                    reason="PeriodPassed",
                    session_id=self.session_id,
                    call_index=call_index,
                    limit_index=number,
                )
            if k > index:
                left, index = limit.stored_amount, k
            start = anchor + k * limit.period
            self.valid_after = max(self.valid_after, start)
            self.valid_until = min(self.valid_until, start + limit.period - 1)
            resets_at = start + limit.period
        if amount > left:
            used = limit.stored_amount - left
            if resets_at is not None:  # a limit per period
                state = f" used in this period, {limit.show(left)} left; resets {reset_text(resets_at)}"
                advice = "Spend less, wait until it resets, or ask the owner for a larger limit"
            else:
                state = f" used, {limit.show(left)} left"
                advice = "Spend less, or ask the owner for a new session with a larger limit: this one never resets"
            raise LimitExceededError(
                f"call {call_index} ({label}) would spend {limit.show(amount)} of limit {number} ({limit.label}, "
                f"{limit.per}); {limit.show(used)} of {limit.show(limit.stored_amount)}{state}. {advice}",
                session_id=self.session_id,
                call_index=call_index,
                limit_index=number,
                amount=amount,
                left=left,
                resets_at=resets_at,
            )
        self.counters[number] = Counter(left - amount, index)


def count_limits(
    session: Session,
    calls: Sequence[tuple[int, int, bytes]],
    counters: Counters,
    *,
    at: int | None,
    cost: int = 0,
    paymaster: str | None = None,
    session_id: str | None = None,
) -> Counted:
    """Count an operation that passed the policy: ``calls`` are ``(permission index, value, calldata)`` in order,
    ``at`` the time the operation claims (None: none), ``cost`` its prefund (0: not known, no GAS limit counts),
    ``paymaster`` the paymaster it names. Raises :class:`~keyscope.errors.LimitError` as the module reverts."""
    counting = _Counting(session, session_id, counters, at)
    meters: dict[int, list[tuple[int, LimitKind, int]]] = {}
    for number, limit in enumerate(session.limits):
        for meter in limit.meters:
            meters.setdefault(meter.permission, []).append((number, limit.op, meter.offset))
    per_operation = [
        (n, x.op) for n, x in enumerate(session.limits) if x.op in (LimitKind.OPERATIONS, LimitKind.GAS)
    ]
    first: int | None = None
    for call_index, (permission, value, data) in enumerate(calls):
        if not session.is_limited(permission):
            continue
        label = session.permissions[permission].label
        for number, kind, offset in meters.get(permission, ()):
            if kind == LimitKind.CALLS:
                amount = 1
            elif kind == LimitKind.NATIVE:
                amount = value
            else:
                if len(data) < offset + 36:
                    raise LimitError(
                        f"call {call_index} ({label}): its calldata ({len(data)} bytes) ends before the argument "
                        f"limit {number} ({session.limits[number].label}) counts (bytes {offset + 4} to {offset + 36})",
                        reason="CalldataTooShortForLimit",
                        session_id=session_id,
                        call_index=call_index,
                        limit_index=number,
                    )
                amount = int.from_bytes(data[offset + 4 : offset + 36], "big")
            if amount:
                counting.spend(number, amount, call_index, label)
        if first is None and per_operation:
            first = call_index
    if first is not None:
        label = "the operation"
        for number, kind in per_operation:
            if kind == LimitKind.OPERATIONS:
                counting.spend(number, 1, first, label)
        listed = paymaster is not None and paymaster in session.paymasters
        if cost and not listed:
            for number, kind in per_operation:
                if kind == LimitKind.GAS:
                    counting.spend(number, cost, first, f"{label}'s gas")
    return Counted(tuple(counting.counters), counting.valid_after, counting.valid_until)


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """What one limit of a session has used and has left now."""

    index: int
    limit: Limit
    used: int
    left: int
    period_start: int
    """The start of the current period (the session's valid_after over its life)."""
    resets_at: int | None
    """When the next period begins; None over the session's life."""

    @property
    def amount(self) -> int:
        return self.limit.stored_amount

    def describe(self) -> str:
        """``USDC allowance: 4.2 of 5 USDC used per day, 0.8 USDC left; resets 2025-01-02 14:00:00 UTC``."""
        limit = self.limit
        text = f"{limit.label}: {limit.show(self.used)} of {limit.show(self.amount)} used {limit.per}"
        text += f", {limit.show(self.left)} left"
        if self.resets_at is not None:
            text += f"; resets {reset_text(self.resets_at)}"
        return text

    def enforced_text(self, scaled: str | None = None) -> str:
        """What the owner reads of this row: the amounts as the module counts them (:func:`enforced_amount`), the
        grant's label marked as unsigned: ``limit 0 ("USDC allowance", the dapp's unsigned label): 4,200,000 of
        5,000,000 base units used per day, 800,000 base units left; resets 2025-01-02 14:00:00 UTC``. ``scaled``:
        words put in brackets after what is left, such as the token's amounts at the decimals the chain gives
        (:func:`keyscope.token_facts.scaled_usage`). :meth:`describe` shows the grant's own unit and decimals,
        which only the dapp that wrote them vouches for."""
        limit = self.limit
        text = (
            f"{owner_label(limit, self.index)}: {enforced_amount(limit, self.used, unit=False)} of "
            f"{enforced_amount(limit, self.amount)} used {limit.per}, {enforced_amount(limit, self.left)} left"
        )
        if scaled is not None:
            text += f" ({scaled})"
        if self.resets_at is not None:
            text += f"; resets {reset_text(self.resets_at)}"
        return text

    def to_dict(self) -> dict[str, object]:
        """The row as plain JSON values (amounts in the limit's base unit, times in unix seconds)."""
        return {
            **limit_fields(self.limit, self.index),
            "index": self.index,
            "used": self.used,
            "left": self.left,
            "period_start": self.period_start,
            "resets_at": self.resets_at,
            "text": self.enforced_text(),
        }


_ENFORCED_UNITS = {
    LimitKind.CALLS: "calls",
    LimitKind.OPERATIONS: "operations",
    LimitKind.AMOUNT: "base units",
}


def enforced_amount(limit: Limit, amount: int, *, unit: bool = True) -> str:
    """``amount`` of ``limit`` as the module counts it, from the signed kind alone: ETH (exact) for NATIVE and GAS,
    calls, operations, or base units for AMOUNT -- never the grant's ``unit`` and ``decimals``, which are not signed
    (a dapp could make a budget read a million times smaller through them). ``unit=False``: the number alone
    where the unit follows (``4,200,000 of 5,000,000 base units``)."""
    if limit.op in (LimitKind.NATIVE, LimitKind.GAS):
        whole, fraction = divmod(amount, 10**18)
        digits = f"{fraction:018d}".rstrip("0")
        return f"{whole:,}{'.' + digits if digits else ''}" + (" ETH" if unit else "")
    return f"{amount:,}" + (f" {_ENFORCED_UNITS[limit.op]}" if unit else "")


def owner_label(limit: Limit, index: int) -> str:
    """``limit 0 (calls)``, or ``limit 0 ("USDC allowance", the dapp's unsigned label)``: the grant's ``name`` is
    the dapp's words, shown as such."""
    if limit.name is None:
        return f"limit {index} ({limit.op.name.lower()})"
    return f"limit {index} ({shown(limit.name)}, the dapp's unsigned label)"


def period_note(limit: Limit, valid_after: int) -> str:
    """How a periodic limit counts, put after its line on the consent page and in the session report (attack 135):
    in fixed periods back to back from the session's ``valid_after`` (the module's), not over any span of that
    length, so the whole amount again is there as soon as a period ends; empty for a limit over the session's
    life."""
    if not limit.period:
        return ""
    start = utc_text(valid_after) if valid_after else "1970-01-01 00:00:00 UTC"
    return (
        f" (fixed periods back to back from {start}, each with the whole amount: up to twice it may go within "
        "moments across a period's end)"
    )


def limit_text(limit: Limit, index: int = 0) -> str:
    """A limit as granted, in the owner's words: ``limit 0 (amount): at most 5,000,000 base units over the session's
    life`` (the amount the module enforces, :func:`enforced_amount`; the grant's ``name`` as the dapp's,
    :func:`owner_label`)."""
    return f"{owner_label(limit, index)}: at most {enforced_amount(limit, limit.stored_amount)} {limit.per}"


def limit_fields(limit: Limit, index: int = 0) -> dict[str, object]:
    """A limit as granted, as plain JSON values: what the tools print of a grant's limits (``text``:
    :func:`limit_text`)."""
    return {
        "name": limit.label,
        "kind": limit.op.name,
        "amount": limit.stored_amount,
        "period": limit.period,
        "text": limit_text(limit, index),
    }


def refuse_unusable_limits(session: Session) -> None:
    """Refuse, at grant time, a limit that allows nothing: ``calls=0``, ``rate="0/hour"``, ``Limits.operations(0)``,
    a zero allowance or total, or a zero gas budget without a listed paymaster (every operation would be counted
    and refused). The module accepts such limits, so the permission (or the session) could never be used; this is
    a usability check, raising :class:`~keyscope.errors.BadInputError` naming the limit."""
    for number, limit in enumerate(session.limits):
        if limit.amount:
            continue
        if limit.op == LimitKind.NATIVE:
            continue  # only value-carrying calls are stopped; plain calls still pass
        if limit.op == LimitKind.GAS and session.paymasters:
            continue  # operations the listed paymasters pay are not counted
        what = {
            LimitKind.CALLS: "no call of the permissions it counts can ever be made",
            LimitKind.OPERATIONS: "the session could never send an operation",
            LimitKind.AMOUNT: "only calls moving nothing (an amount of 0) could ever be made",
            LimitKind.GAS: "every operation's gas counts against it and none would fit (no paymaster is listed)",
        }[limit.op]
        raise BadInputError(
            f"limit {number} ({limit.label}, {limit.per}) is 0: {what}. The module would accept this grant, but "
            "the permission could never be used: give a positive amount, or leave the limit out"
        )


def usage_of(session: Session, counters: Counters, now: int) -> tuple[LimitUsage, ...]:
    """Each limit's use at ``now`` (a period begun since the last count is unused)."""
    rows = []
    for number, (limit, counter) in enumerate(zip(session.limits, counters, strict=True)):
        left, index = counter.left, counter.period
        start = session.valid_after
        resets_at = None
        if limit.period:
            current = limit.period_of(now, session.valid_after)
            if current > index:
                left, index = limit.stored_amount, current
            start = session.valid_after + index * limit.period
            resets_at = start + limit.period
        rows.append(LimitUsage(number, limit, limit.stored_amount - left, left, start, resets_at))
    return tuple(rows)
