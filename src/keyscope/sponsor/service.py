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
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..artifacts import ENTRY_POINT_V07
from ..chain import Chain, RpcChain
from ..errors import PRIVATE_KEY_NOT_SHOWN, BadInputError, has_private_key_form, shown
from ..gas import required_prefund
from ..hexutil import to_address, to_int
from ..signers import SignerLike, as_signer
from ..signing import HashSigner
from ..userop import UserOperation
from .budget import BudgetLedger
from .errors import (
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
    "ChainClock",
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


class ChainClock:
    """A clock for :class:`Sponsor` that follows a chain: called, the later of this machine's time and the latest
    block's timestamp; :meth:`chain_time` is the latest block's timestamp alone.

    The EntryPoint judges a window by the timestamp of the block that includes the operation, bundlers (Alto) by
    their wall clock: a ``validUntil`` counted from the later of both is in the future for each of them. Whether a
    signature made before can still be paid is the EntryPoint's question alone (anyone may call ``handleOps``
    without a bundler), and the only time every chain's next block is sure not to precede is the latest block's:
    a development node's clock may be set behind this machine's (``evm_setTime``, a snapshot reverted), and a
    machine's clock may run ahead of the chain's. So a ledger read back at a restart keeps a reservation until
    :meth:`chain_time` passes its ``validUntil``.
    """

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def __call__(self) -> float:
        return max(time.time(), float(self.chain.block_timestamp()))

    def chain_time(self) -> int:
        """The latest block's timestamp: no block that can still include an operation is stamped earlier."""
        return int(self.chain.block_timestamp())

    def __repr__(self) -> str:
        return f"ChainClock({self.chain!r})"


def chain_clock(node: str | Chain) -> ChainClock:
    """A clock for :class:`Sponsor` following the chain at ``node`` (a URL or a :class:`~keyscope.chain.Chain`):
    windows are counted from the later of this machine's time and the latest block's timestamp, and a ledger read
    back at a restart drops a reservation only once the chain's own time has passed its ``validUntil`` (see
    :class:`ChainClock`)."""
    return ChainClock(RpcChain(node) if isinstance(node, str) else node)


class Sponsor:
    """Answers ERC-7677 requests for one ``SponsorPaymaster`` (``paymaster``) on one chain.

    * ``signer``: the key the paymaster's ``signer()`` is set to, in any form :func:`~keyscope.signers.as_signer`
      takes (a ``0x…`` private key, bytes, an eth-account ``LocalAccount``, a ``HashSigner``);
    * ``chain_id`` and ``entry_point``: requests for other ones are refused;
    * ``policy``: what is sponsored (:class:`~keyscope.sponsor.policy.SponsorshipPolicy`);
    * ``clock``: unix seconds the window is counted from (default: this machine's time; use
      :func:`chain_clock` when the chain's time may run ahead or behind, as on a development node: a ledger is
      then read back by the chain's own time, see :meth:`expiry_now`);
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
        if ledger is not None and has_private_key_form(os.fspath(ledger)):
            # a file named as the key would sit on disk, and every budget refusal quotes the ledger's path to clients
            raise BadInputError(
                f"ledger: {PRIVATE_KEY_NOT_SHOWN} is not the path of a ledger file: a private key is not given in its "
                "place (nothing was created or served); give the path of the SQLite file that keeps the budgets, "
                "and the sponsor's key in its own setting"
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
            now=self.expiry_now() if ledger is not None else 0,
        )
        if policy.accounts == "any" and policy.total_budget_wei is None:
            log.warning(
                "the sponsorship policy covers any account with no total_budget_wei: anyone can make fresh "
                "accounts, each with a full budget, and draw the paymaster's whole deposit; set total_budget_wei"
            )
        elif policy.accounts != "any" and policy.budget_wei is None and policy.total_budget_wei is None:
            log.warning(
                "the sponsorship policy lists its accounts with no budget_wei and no total_budget_wei: one of them, "
                "or a leaked session key whose grant lists this paymaster, can draw the paymaster's whole deposit "
                "in operations it bundles itself; set budget_wei or total_budget_wei"
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

    def expiry_now(self) -> int:
        """The time a signature made before is judged expired at, when a ledger file is read back: a
        :class:`ChainClock`'s :meth:`~ChainClock.chain_time` (the EntryPoint's clock: a reservation dropped by this
        machine's time, ahead of the chain's, would be of a signature the EntryPoint still pays), else the clock's."""
        if isinstance(self._clock, ChainClock):
            return self._clock.chain_time()
        return self.now()

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
            f"method {shown(method)} is not served here: this sponsor implements {GET_PAYMASTER_STUB_DATA} and "
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
        reservation = self.ledger.reserve(op.sender, cost, valid_until=valid_until)
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
            self.ledger.release(op.sender, cost, reservation=reservation)
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
