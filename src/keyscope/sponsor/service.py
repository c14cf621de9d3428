"""The sponsor: ERC-7677 ``pm_getPaymasterStubData`` and ``pm_getPaymasterData`` for ``SponsorPaymaster``.

* ``pm_getPaymasterStubData(userOp, entryPoint, chainId, context)`` checks the EntryPoint, the chain and the
  policy (account, calls, some budget left), and returns the paymaster, stub ``paymasterData`` of the real
  shape (the window and a signature that verifies to nobody), the paymaster's gas limits and
  ``isFinal: false`` (and ``sponsor: {name}`` when the policy names one).
* ``pm_getPaymasterData(userOp, entryPoint, chainId, context)`` checks the same, reserves the operation's
  maximum cost (every gas limit, the paymaster's included, times ``maxFeePerGas``: what the EntryPoint
  takes from the deposit before refunding the unused part) from the account's budget, and signs. It returns
  the paymaster's gas limits it signed over too: the paymaster's ``paymasterVerificationGasLimit`` is the
  operation's (as estimated by the bundler) or, when it has none, the sponsor's default; the post-op gas
  limit is always the sponsor's own (``SponsorPaymaster`` has no postOp, so it is 0).

A signature reserves the operation's maximum cost for good, whether or not the operation is then sent (the sponsor
cannot take a signature back before it expires), and the actual cost is not refunded to the budget. Restarting the
service starts every budget afresh, except for what signatures still valid may cost: those can still land, so with a
``ledger`` file their reservations are read back and counted. Without one the budgets are kept in memory only, and
the signatures made before a restart may be paid for beside a fresh budget.

``context`` is accepted and ignored: this service has one policy.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..artifacts import ENTRY_POINT_V07
from ..chain import Chain, RpcChain
from ..errors import BadInputError, ConfigurationError, shown
from ..gas import required_prefund
from ..hexutil import to_address, to_int
from ..signers import SignerLike, as_signer
from ..signing import HashSigner
from ..userop import UserOperation
from .errors import (
    BUDGET_EXHAUSTED,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    SponsorshipRefused,
)
from .paymaster_data import STUB_SIGNATURE, encode_paymaster_data, sign_sponsorship
from .policy import SponsorshipPolicy

__all__ = [
    "DEFAULT_POST_OP_GAS_LIMIT",
    "DEFAULT_VERIFICATION_GAS_LIMIT",
    "GET_PAYMASTER_DATA",
    "GET_PAYMASTER_STUB_DATA",
    "BudgetLedger",
    "Sponsor",
    "chain_clock",
]

GET_PAYMASTER_STUB_DATA = "pm_getPaymasterStubData"
GET_PAYMASTER_DATA = "pm_getPaymasterData"

DEFAULT_VERIFICATION_GAS_LIMIT = 60_000
"""The paymaster's verification gas limit in stub data (SponsorPaymaster needs about a third of it)."""
DEFAULT_POST_OP_GAS_LIMIT = 0
"""SponsorPaymaster returns no context, so the EntryPoint never calls its postOp."""

log = logging.getLogger("keyscope.sponsor")

_OP_FIELDS = frozenset(
    name
    for field_name, info in UserOperation.model_fields.items()
    for name in (field_name, info.alias)
    if name
)
_PACKED_ONLY_FIELDS = ("initCode", "paymasterAndData", "accountGasLimits", "gasFees")


def chain_clock(node: str | Chain) -> Callable[[], float]:
    """A clock for :class:`Sponsor`: the later of this machine's time and the latest block's timestamp.

    The EntryPoint judges a window by the block's timestamp, bundlers (Alto) by their wall clock: a
    validUntil counted from the later of both is in the future for each of them.
    """
    chain = RpcChain(node) if isinstance(node, str) else node

    def now() -> float:
        return max(time.time(), float(chain.block_timestamp()))

    return now


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

    def reserve(self, account: str, amount: int, *, valid_until: int = 0) -> None:
        """Reserve ``amount`` wei for ``account``, or refuse (``BUDGET_EXHAUSTED``) if it does not fit in its
        own budget or in the total. ``valid_until`` is the ``validUntil`` of the signature it is for (0: none): with a
        ledger file, the reservation is counted again by a ledger opened on it until then."""
        account = to_address(account)
        with self._lock:
            used = self._reserved.get(account, 0)
            over_account = self.limit is not None and used + amount > self.limit
            over_total = self.total is not None and self._reserved_total + amount > self.total
            if over_account or over_total:
                raise self._exhausted_locked(account, amount)
            if self.path is not None:
                # written before the signature is given out: a reservation lost would let it be paid twice
                self._file().execute(
                    "INSERT INTO reservations (scope, account, amount, valid_until) VALUES (?, ?, ?, ?)",
                    (self.scope, account, str(amount), valid_until),
                )
            self._reserved[account] = used + amount
            self._reserved_total += amount

    def release(self, account: str, amount: int) -> None:
        """Give back ``amount`` wei reserved for ``account``."""
        account = to_address(account)
        with self._lock:
            used = self._reserved.get(account, 0)
            given_back = min(used, amount)
            if self.path is not None and given_back:
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


class Sponsor:
    """Answers ERC-7677 requests for one ``SponsorPaymaster`` (``paymaster``) on one chain.

    * ``signer``: the key the paymaster's ``signer()`` is set to, in any form :func:`~keyscope.signers.as_signer`
      takes (a ``0x…`` private key, bytes, an eth-account ``LocalAccount``, a ``HashSigner``);
    * ``chain_id`` and ``entry_point``: requests for other ones are refused;
    * ``policy``: what is sponsored (:class:`~keyscope.sponsor.policy.SponsorshipPolicy`);
    * ``clock``: unix seconds the window is counted from (default: this machine's time; use
      :func:`chain_clock` when the chain's time may run ahead, as on a development node);
    * ``valid_after_slack``: None leaves ``validAfter`` 0 (a signature cannot be used before it exists
      anyway); a number of seconds sets ``validAfter`` to that long before now;
    * ``verification_gas_limit`` / ``post_op_gas_limit``: the paymaster gas limits given in stub data;
    * ``ledger``: a SQLite file keeping the budgets' reservations across restarts (see :class:`BudgetLedger`):
      a signature stays valid for ``validity_seconds`` after it is made, so a service restarted within that time
      must count what it may still cost. Without one, budgets live in memory. One service per file; :meth:`close`
      releases it.
    """

    def __init__(
        self,
        *,
        paymaster: str,
        signer: SignerLike,
        chain_id: int,
        policy: SponsorshipPolicy,
        entry_point: str = ENTRY_POINT_V07,
        clock: Callable[[], float] | None = None,
        valid_after_slack: int | None = None,
        verification_gas_limit: int = DEFAULT_VERIFICATION_GAS_LIMIT,
        post_op_gas_limit: int = DEFAULT_POST_OP_GAS_LIMIT,
        ledger: str | os.PathLike[str] | None = None,
    ) -> None:
        if ledger is not None and not isinstance(ledger, (str, os.PathLike)):
            raise BadInputError(
                f"ledger is the path of a SQLite file (or None: budgets in memory), got {shown(ledger)}"
            )
        if valid_after_slack is not None:
            # True would be 1 second, a float a validAfter no paymaster word holds
            if isinstance(valid_after_slack, bool) or not isinstance(valid_after_slack, int):
                raise BadInputError(
                    "valid_after_slack is whole seconds from 0 (or None: validAfter 0), got "
                    f"{shown(valid_after_slack)}"
                )
            if valid_after_slack < 0:
                raise BadInputError(f"valid_after_slack must not be negative, got {valid_after_slack}")
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
            raise BadInputError(
                f"chain_id must be a positive integer (the chain's EIP-155 id), got {shown(chain_id)}"
            )
        for name, gas in (
            ("verification_gas_limit", verification_gas_limit),
            ("post_op_gas_limit", post_op_gas_limit),
        ):
            if isinstance(gas, bool) or not isinstance(gas, int) or not 0 <= gas < 2**128:
                raise BadInputError(
                    f"{name} must be an integer from 0 to 2**128 - 1 (the EntryPoint packs it into a uint128), got "
                    f"{shown(gas)}"
                )
        self.paymaster = to_address(paymaster, name="paymaster")
        self.signer: HashSigner = as_signer(signer, role="sponsor")
        self.chain_id = chain_id
        self.entry_point = to_address(entry_point, name="entry_point")
        self.policy = policy
        self._clock = clock or time.time
        # the reservations of signatures still valid now, read back from the ledger file when there is one
        self.ledger = BudgetLedger(
            policy.budget_wei,
            policy.total_budget_wei,
            path=ledger,
            scope=f"{self.paymaster}@{chain_id}",
            now=self.now() if ledger is not None else 0,
        )
        if policy.accounts == "any" and policy.total_budget_wei is None:
            log.warning(
                "the sponsorship policy covers any account with no total_budget_wei: anyone can make fresh "
                "accounts, each with a full budget, and draw the paymaster's whole deposit; set total_budget_wei"
            )
        self.valid_after_slack = valid_after_slack
        self.verification_gas_limit = verification_gas_limit
        self.post_op_gas_limit = post_op_gas_limit

    def __repr__(self) -> str:
        return f"Sponsor(paymaster={self.paymaster}, chain {self.chain_id}, signer {self.signer.address})"

    def close(self) -> None:
        """Release the ledger file, if any (a closed sponsor signs nothing more)."""
        self.ledger.close()

    # -- time --------------------------------------------------------------------------------------

    def now(self) -> int:
        """The time windows are counted from."""
        return int(self._clock())

    def window(self) -> tuple[int, int]:
        """``(validUntil, validAfter)`` for a signature made now."""
        now = self.now()
        valid_after = 0 if self.valid_after_slack is None else max(now - self.valid_after_slack, 0)
        return now + self.policy.validity_seconds, valid_after

    # -- JSON-RPC ----------------------------------------------------------------------------------

    def handle(self, method: str, params: Any) -> Any:
        """The result of one JSON-RPC call; raises :class:`~keyscope.sponsor.errors.SponsorshipRefused`."""
        if method == GET_PAYMASTER_STUB_DATA:
            return self.stub_data(*self._parse(method, params))
        if method == GET_PAYMASTER_DATA:
            return self.data(*self._parse(method, params))
        raise SponsorshipRefused(
            METHOD_NOT_FOUND,
            f"method {method!r} is not served here: this sponsor implements {GET_PAYMASTER_STUB_DATA} and "
            f"{GET_PAYMASTER_DATA} (ERC-7677)",
        )

    def _parse(self, method: str, params: Any) -> tuple[UserOperation, dict[str, Any]]:
        if not isinstance(params, list) or not 3 <= len(params) <= 4:
            raise SponsorshipRefused(
                INVALID_PARAMS, f"{method} takes [userOp, entryPoint, chainId, context] (ERC-7677)"
            )
        raw_op, entry_point, chain_id = params[:3]
        context = params[3] if len(params) == 4 else None
        given_entry_point = _param(to_address, entry_point, "entryPoint")
        if given_entry_point != self.entry_point:
            raise SponsorshipRefused(
                INVALID_PARAMS,
                f"EntryPoint {given_entry_point} is not supported: this sponsor serves the EntryPoint at "
                f"{self.entry_point}",
                {"reason": "entryPoint", "entryPoint": given_entry_point, "supported": [self.entry_point]},
            )
        given_chain = _param(to_int, chain_id, "chainId")
        if given_chain != self.chain_id:
            raise SponsorshipRefused(
                INVALID_PARAMS,
                f"chain id {given_chain} is not supported: this sponsor pays on chain {self.chain_id}",
                {"reason": "chainId", "chainId": hex(given_chain), "supported": hex(self.chain_id)},
            )
        if context is not None and not isinstance(context, dict):
            raise SponsorshipRefused(INVALID_PARAMS, "context must be an object (or absent)")
        return self._user_operation(raw_op), context or {}

    @staticmethod
    def _user_operation(raw: Any) -> UserOperation:
        if not isinstance(raw, dict):
            raise SponsorshipRefused(
                INVALID_PARAMS, "userOp must be a JSON object (EntryPoint v0.7/v0.8 fields)"
            )
        packed = [name for name in _PACKED_ONLY_FIELDS if raw.get(name) not in (None, "0x")]
        if packed:
            raise SponsorshipRefused(
                INVALID_PARAMS,
                f"userOp has {', '.join(packed)}: give the EntryPoint v0.7/v0.8 JSON-RPC form (factory/factoryData, "
                "separate gas limits and fees, paymaster fields)",
            )
        fields = {key: value for key, value in raw.items() if key in _OP_FIELDS and value is not None}
        try:
            return UserOperation.from_rpc(fields)
        except BadInputError as exc:
            raise SponsorshipRefused(INVALID_PARAMS, f"bad userOp: {exc}") from None

    # -- ERC-7677 ------------------------------------------------------------------------------------

    def stub_data(self, op: UserOperation, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """``pm_getPaymasterStubData``: placeholder fields for estimation, if the policy covers ``op``."""
        self.policy.check(op)
        self.ledger.require_some(op.sender)
        valid_until, valid_after = self.window()
        result: dict[str, Any] = {
            "paymaster": self.paymaster,
            "paymasterData": "0x" + encode_paymaster_data(valid_until, valid_after, STUB_SIGNATURE).hex(),
            "paymasterVerificationGasLimit": hex(self.verification_gas_limit),
            "paymasterPostOpGasLimit": hex(self.post_op_gas_limit),
            "isFinal": False,
        }
        if self.policy.name:
            result["sponsor"] = {"name": self.policy.name}
        return result

    def data(self, op: UserOperation, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """``pm_getPaymasterData``: the signed fields, if the policy and the budget cover ``op``."""
        self.policy.check(op)
        if op.verification_gas_limit == 0:
            raise SponsorshipRefused(
                INVALID_PARAMS,
                f"{GET_PAYMASTER_DATA} signs the final gas limits and fees, but verificationGasLimit is 0: "
                f"estimate gas (with {GET_PAYMASTER_STUB_DATA}'s fields) first",
            )
        final = op.replace(
            paymaster=self.paymaster,
            paymaster_verification_gas_limit=op.paymaster_verification_gas_limit
            or self.verification_gas_limit,
            paymaster_post_op_gas_limit=self.post_op_gas_limit,
            paymaster_data=b"",
        )
        cost = required_prefund(final)
        # the clock (a node, for chain_clock) is read before anything is reserved: a request that ends without a
        # signature keeps no budget
        valid_until, valid_after = self.window()
        self.ledger.reserve(op.sender, cost, valid_until=valid_until)
        try:
            paymaster_data = sign_sponsorship(
                self.signer,
                final,
                self.paymaster,
                self.chain_id,
                valid_until=valid_until,
                valid_after=valid_after,
            )
        except BaseException:
            self.ledger.release(op.sender, cost)
            raise
        return {
            "paymaster": self.paymaster,
            "paymasterData": "0x" + paymaster_data.hex(),
            "paymasterVerificationGasLimit": hex(final.paymaster_verification_gas_limit),
            "paymasterPostOpGasLimit": hex(final.paymaster_post_op_gas_limit),
        }


_T = TypeVar("_T")


def _param(parse: Callable[..., _T], value: Any, name: str) -> _T:
    """``parse(value, name=name)``; bad input is refused as INVALID_PARAMS naming the parameter."""
    try:
        return parse(value, name=name)
    except BadInputError as exc:
        raise SponsorshipRefused(INVALID_PARAMS, f"bad {name}: {exc}") from None
