"""The sponsor's budgets: what its signatures have reserved, per account and in all, in memory or in a ledger file
that a restarted service reads back (see :class:`BudgetLedger`)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from ..errors import ConfigurationError
from ..hexutil import to_address
from .errors import BUDGET_EXHAUSTED, SponsorshipRefused

__all__ = ["BudgetLedger"]


class BudgetLedger:
    """Per-account wei reserved by the sponsor's signatures against a per-account ``limit`` and, across every
    account together, a ``total`` (None: no limit). Thread-safe.

    A per-account limit alone does not bound what the sponsor signs for when anyone may be sponsored: a
    stranger can make as many fresh accounts as they like, each with a full budget. ``total`` does.

    Kept in memory, the reservations die with the process, while the signatures they were made for stay valid until
    their ``validUntil``: a service restarted within that time (an operator refilling an exhausted budget, a deploy,
    a crash) would sign a fresh budget beside them, and the deposit pays for both. With ``path`` (a SQLite file, one
    service at a time: it is held locked while open) every reservation is written, with the ``validUntil`` of its
    signature, before the signature is given out, and a ledger opened on the file counts again every reservation of
    ``scope`` (the paymaster and chain it signs for) whose signature is still valid at ``now``; expired ones are
    dropped, since nothing more can be paid for them. Call :meth:`close` to release the file.
    """

    def __init__(
        self,
        limit: int | None,
        total: int | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        scope: str = "",
        now: int = 0,
    ) -> None:
        self.limit = limit
        self.total = total
        self.path = None if path is None else Path(path)
        self.scope = scope
        self._reserved: dict[str, int] = {}
        self._reserved_total = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self._open(now)

    # -- the file ------------------------------------------------------------------------------------

    def _open(self, now: int) -> None:
        assert self.path is not None
        try:
            db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise ConfigurationError(
                f"the sponsor's ledger {self.path} cannot be opened ({error}): give a file in a directory the "
                "service can write to"
            ) from None
        try:
            # held exclusively while open: two services counting one file apart would each sign a full budget
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "CREATE TABLE IF NOT EXISTS reservations (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, "
                "account TEXT NOT NULL, amount TEXT NOT NULL, valid_until INTEGER NOT NULL)"
            )
            # a signature whose window has closed can no longer be paid for; validUntil 0 never closes
            db.execute(
                "DELETE FROM reservations WHERE scope = ? AND valid_until != 0 AND valid_until < ?",
                (self.scope, now),
            )
            rows = db.execute(
                "SELECT account, amount FROM reservations WHERE scope = ?", (self.scope,)
            ).fetchall()
            db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            db.close()
            locked = "locked" in str(error)
            raise ConfigurationError(
                f"the sponsor's ledger {self.path} "
                + (
                    "is held by another sponsor service: give each service its own ledger file (two counting one "
                    "budget apart would each sign all of it)"
                    if locked
                    else f"cannot be used ({error}): give a SQLite file the service can write to"
                )
            ) from None
        except sqlite3.DatabaseError as error:
            db.close()
            raise ConfigurationError(
                f"the sponsor's ledger {self.path} is not a ledger ({error}): give the file this service wrote, or a "
                "new path"
            ) from None
        for account, amount in rows:
            self._reserved[account] = self._reserved.get(account, 0) + int(amount)
            self._reserved_total += int(amount)
        self._db = db

    def close(self) -> None:
        """Release the ledger's file (nothing to do for a ledger in memory)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def reserved(self, account: str) -> int:
        """Wei reserved so far for ``account``."""
        with self._lock:
            return self._reserved.get(to_address(account), 0)

    def reserved_total(self) -> int:
        """Wei reserved so far for every account together."""
        with self._lock:
            return self._reserved_total

    def remaining(self, account: str) -> int | None:
        """Wei left for ``account``, the smaller of its own budget and the total (None: no limit)."""
        with self._lock:
            return self._remaining(to_address(account))

    def _remaining(self, account: str) -> int | None:
        left: list[int] = []
        if self.limit is not None:
            left.append(max(self.limit - self._reserved.get(account, 0), 0))
        if self.total is not None:
            left.append(max(self.total - self._reserved_total, 0))
        return min(left) if left else None

    def require_some(self, account: str) -> None:
        """Refuse (``BUDGET_EXHAUSTED``) when nothing is left for ``account``."""
        if self.remaining(account) == 0:
            raise self._exhausted(to_address(account), None)

    def reserve(self, account: str, amount: int, *, valid_until: int = 0) -> int | None:
        """Reserve ``amount`` wei for ``account``, or refuse (``BUDGET_EXHAUSTED``) if it does not fit in its
        own budget or in the total, or if either has nothing left (even for an ``amount`` of 0). ``valid_until`` is
        the ``validUntil`` of the signature it is for (0: none): with a ledger file, the reservation is counted again
        by a ledger opened on it until then. Returns the reservation's row in the file (None without one), for
        :meth:`release` to give back this reservation and no other."""
        account = to_address(account)
        with self._lock:
            used = self._reserved.get(account, 0)
            # a budget with nothing left signs nothing, not even an operation of no cost (maxFeePerGas 0), as the
            # stub's check (require_some) says
            over_account = self.limit is not None and (used + amount > self.limit or used >= self.limit)
            over_total = self.total is not None and (
                self._reserved_total + amount > self.total or self._reserved_total >= self.total
            )
            if over_account or over_total:
                raise self._exhausted_locked(account, amount)
            row = None
            if self.path is not None:
                # written before the signature is given out: a reservation lost would let it be paid twice
                row = (
                    self._file()
                    .execute(
                        "INSERT INTO reservations (scope, account, amount, valid_until) VALUES (?, ?, ?, ?)",
                        (self.scope, account, str(amount), valid_until),
                    )
                    .lastrowid
                )
            self._reserved[account] = used + amount
            self._reserved_total += amount
            return row

    def release(self, account: str, amount: int, *, reservation: int | None = None) -> None:
        """Give back ``amount`` wei reserved for ``account``: with a ledger file, the row ``reservation`` (what
        :meth:`reserve` returned), or else the newest reservation of that account and amount. Another request's
        reservation of the same amount, made while this one's signature was being made, is that of a signature given
        out, valid until later: deleting it instead would let a restarted service forget it."""
        account = to_address(account)
        with self._lock:
            used = self._reserved.get(account, 0)
            given_back = min(used, amount)
            if self.path is not None and given_back:
                if reservation is not None:
                    self._file().execute(
                        "DELETE FROM reservations WHERE id = ? AND scope = ? AND account = ? AND amount = ?",
                        (reservation, self.scope, account, str(amount)),
                    )
                else:
                    self._file().execute(
                        "DELETE FROM reservations WHERE id = (SELECT max(id) FROM reservations WHERE scope = ? AND "
                        "account = ? AND amount = ?)",
                        (self.scope, account, str(amount)),
                    )
            self._reserved[account] = used - given_back
            self._reserved_total -= given_back

    def _file(self) -> sqlite3.Connection:
        if self._db is None:
            raise ConfigurationError(
                f"the sponsor's ledger {self.path} is closed: a closed ledger keeps no reservation, so it signs nothing"
            )
        return self._db

    def _exhausted(self, account: str, amount: int | None) -> SponsorshipRefused:
        with self._lock:
            return self._exhausted_locked(account, amount)

    def _exhausted_locked(self, account: str, amount: int | None) -> SponsorshipRefused:
        used = self._reserved.get(account, 0)
        needed = f"; this operation may cost up to {amount} wei" if amount is not None else ""
        account_left = None if self.limit is None else max(self.limit - used, 0)
        total_left = None if self.total is None else max(self.total - self._reserved_total, 0)
        account_short = account_left is not None and (account_left == 0 or (amount or 0) > account_left)
        if account_short or total_left is None:
            assert self.limit is not None and account_left is not None
            message = (
                f"budget exhausted: account {account} has {account_left} wei left of its {self.limit} wei "
                f"sponsorship budget{needed}"
            )
            reason, budget, left, key = "budget", self.limit, account_left, "budget_wei"
        else:
            assert self.total is not None
            message = (
                f"budget exhausted: the sponsor has {total_left} wei left of its {self.total} wei total "
                f"budget for all accounts{needed}"
            )
            reason, budget, left, key = "totalBudget", self.total, total_left, "total_budget_wei"
        # what can be done: reservations are final and budgets never refill while the service runs (waiting
        # does not help); a restart starts every budget afresh
        fits = self._remaining(account) or 0  # what still fits, in the account's budget and in the total
        cheaper = (
            f"send an operation whose maximum cost is at most {fits} wei (lower gas limits or maxFeePerGas), or "
            if fits > 0
            else ""
        )
        afresh = (
            f"but for what the signatures still valid may cost, read back from the ledger {self.path}"
            if self.path is not None
            else "(the signatures made before can still be paid for until their window ends: without a ledger file "
            "they are paid beside the fresh budget)"
        )
        message += (
            f". It does not refill while the sponsor runs (waiting does not help): {cheaper}send this operation "
            f"unsponsored (the account pays its own gas); the sponsor's operator can raise {key} in the policy "
            f"and restart the service, which starts every budget afresh {afresh}"
        )
        return SponsorshipRefused(
            BUDGET_EXHAUSTED,
            message,
            {"reason": reason, "account": account, "budget": budget, "remaining": left, "cost": amount},
        )
