"""An EOA as a session-capable account: EIP-7702 delegation to ``KeyscopeDelegate`` on EntryPoint v0.8.

The EOA keeps its address, its assets, its history and its key; its key becomes the owner of keyscope's account.
:meth:`EOAOwner.upgrade` does it in one step: the EOA signs an EIP-7702 authorization for the delegate, and one
UserOperation carries it (``eip7702Auth``), installs the session module and enables the session. Where no
bundler can carry the authorization, ``upgrade(..., transaction=True)`` does the same in the EOA's own type-4
transaction. From then on sessions work as on any other account (:meth:`Network.session
<keyscope.network.Network.session>`).

Every upgrade (and every :meth:`EOAOwner.install_sessions` that does anything) starts a new epoch at the session
module: ``invalidateAllSessions(nextEpoch)``, with an epoch drawn at random then, runs before any session is enabled
in its operation, so no session and no enable signature from before comes back (not even one signed ahead of time for
another epoch), whether the EOA delegates for the first time, comes back after delegating
elsewhere, or someone landed its authorization first. The delegate cannot tell these apart: EIP-7702 leaves the
EOA's storage as it was, and the module keeps its state by the EOA's address. :meth:`EOAOwner.undelegate` leaves
the other way: one transaction of the EOA clears (or moves) the delegation and invalidates every session at the
module, so that even a later delegation back made without keyscope finds no live session.

The EOA's key still signs ordinary transactions: the owner can always act directly, for instance revoke with
:meth:`EOAOwner.revoke_directly` (a transaction to the module, which keys everything by its caller). A session
key cannot: it is not the EOA's key, and the module refuses any call of a session to the account itself.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any, NamedTuple

from eth_abi import encode as abi_encode
from eth_account.typed_transactions.typed_transaction import TypedTransaction

from .accounts import AccountKind, KeyscopeAccountKind, KeyscopeDelegateKind
from .accounts.delegate import (
    DELEGATE_EXECUTORS_SLOT,
    DELEGATE_FALLBACK_HANDLERS_SLOT,
    DELEGATE_VALIDATORS_SLOT,
    delegate_set_value_slot,
    delegate_validator_slot,
)
from .bundler.pending import PendingUserOperation
from .chain import node_request, read_many
from .clock import window_now
from .eip7702 import SET_CODE_TX_TYPE, Authorization, delegate_of, sign_authorization
from .endpoints import Endpoints
from .errors import BadInputError, ConfigurationError, DelegationError, DelegationWarning
from .execution import Call, encode_execute
from .grant import SessionGrant
from .hexutil import ZERO_ADDRESS, to_address, to_bytes
from .module import (
    INVALIDATE_ALL_SESSIONS,
    IS_SESSION_ACTIVE,
    decode_bool,
    decode_epoch,
    enable_session_data,
    epoch_of_data,
    invalidate_all_sessions_data,
    revoke_session_data,
    unpredictable_epoch,
)
from .operations import DEFAULT_OWNER_MAX_GAS_COST
from .owner import GrantRequest, Owner, PendingGrant, refuse_used_authorization_nonce
from .revert import describe_revert
from .rpc import JsonRpcError
from .selectors import IS_INITIALIZED, RESET_MODULES
from .session import Permission, Session
from .signing import HashSigner
from .targets import is_keyscope_delegate
from .userop import UserOperation

__all__ = ["DelegationState", "EOAOwner", "TransactionReceipt"]

_DYNAMIC_FEE_TX_TYPE = 2
_LEFT_MODULES_READ = 8  # entries read of each of the delegate's sets when something was left there
# no set the delegate keeps gets longer (each entry is an install): a longer length was written over it
_PLAUSIBLE_SET_LENGTH = 2**32
_GAS_MARGIN = 1.2

TransactionReceipt = dict[str, Any]
"""A transaction receipt as the node returns it (``eth_getTransactionReceipt``)."""


class DelegationState(NamedTuple):
    """Where an EOA stands, read in a few requests (:meth:`EOAOwner.delegation`)."""

    delegate: str | None
    """The delegate its code names now (None: it has no code)."""
    transaction_nonce: int
    """Its next transaction nonce (what an authorization must name when someone else's transaction carries it)."""
    epoch: int
    """Its epoch at the session module."""
    module_initialized: bool
    """The module's ``isInitialized(eoa)``."""
    module_registered: bool
    """Whether keyscope's delegate holds the module as a validator in the EOA's storage (its ERC-7201 namespace):
    readable before the EOA delegates, and left there by an earlier delegation."""


def _outside_keyscope() -> int:
    """The ``stacklevel`` of a warning issued here that names the first caller outside keyscope's package."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("keyscope."):
        frame, level = frame.f_back, level + 1
    return level


class EOAOwner(Owner):
    """The owner of an EOA, holding the EOA's own key: the account is the EOA itself, and keyscope's account runs in
    it through EIP-7702 delegation to ``network.delegate`` (a ``KeyscopeDelegate`` on EntryPoint v0.8).

    Get it with :meth:`Network.owner <keyscope.network.Network.owner>` given the signer's own address, or
    :meth:`Network.eoa <keyscope.network.Network.eoa>`.
    """

    def __init__(
        self,
        network: Endpoints,
        signer: HashSigner,
        account: str | None = None,
        *,
        max_gas_cost: int = DEFAULT_OWNER_MAX_GAS_COST,
    ) -> None:
        own = to_address(signer.address)
        if account is not None and to_address(account, name="account") != own:
            raise BadInputError(
                f"an EOA's owner is its own key: {signer.address} cannot own the EOA {account}; give the EOA's key"
            )
        self._ready = False
        self._checked_delegates: set[str] = set()
        super().__init__(network, signer, own, max_gas_cost=max_gas_cost)

    def __repr__(self) -> str:
        return f"EOAOwner({self.account})"

    def _resolve_kind(self, account: str | None) -> AccountKind:
        return self.network.eoa_kind(self.signer.address)

    def _needs_code(self) -> bool:
        return False  # the EOA's operations delegate it

    # -- where the EOA stands --------------------------------------------------------------------------

    @property
    def delegate(self) -> str:
        """keyscope's delegate this EOA delegates (or is to delegate) to: the network's, else the one it delegates
        to now when that is keyscope's."""
        if self.network.delegate is not None:
            return self.network.delegate
        if isinstance(self.kind, KeyscopeDelegateKind) and self.kind.delegate is not None:
            return self.kind.delegate
        raise ConfigurationError(
            "no EIP-7702 delegate configured: connect(..., delegate=...) with keyscope's KeyscopeDelegate"
        )

    def delegation(self) -> DelegationState:
        """The EOA's delegation, transaction nonce and state at the session module and in keyscope's delegate."""
        net, account = self.network, self.account
        (epoch, initialized), (code,), _ = read_many(
            net.chain,
            [
                (net.module, epoch_of_data(account)),
                (net.module, IS_INITIALIZED + bytes(12) + to_bytes(account)),
            ],
            codes=(account,),
        )
        nonce = int(node_request(net.chain, "eth_getTransactionCount", [account, "pending"]), 16)
        return DelegationState(
            delegate=delegate_of(code),
            transaction_nonce=nonce,
            epoch=decode_epoch(epoch, net.module),
            module_initialized=decode_bool(initialized),
            module_registered=self._module_listed(),
        )

    def _module_listed(self) -> bool:
        """Whether the delegate's validator set in the EOA's storage lists the session module, as the delegate reads
        it: the module's position is non-zero, at most the set's length, and names the entry holding the module (a
        position other code wrote alone does not make the delegate hold the module). The entry is the whole word the
        delegate compares, the module's address with nothing above it, at the slot the EVM reaches (modulo 2**256:
        other code may write a position whose entry lies past the last slot)."""
        module = self.network.module
        position = self._storage_word(delegate_validator_slot(module))
        if not position or position > self._storage_word(DELEGATE_VALIDATORS_SLOT):
            return False
        entry = self._storage_word(delegate_set_value_slot(DELEGATE_VALIDATORS_SLOT, position - 1))
        return entry == int(to_address(module), 16)

    def is_delegated(self) -> bool:
        """Whether the EOA delegates to keyscope's delegate now."""
        return delegate_of(self.network.chain.get_code(self.account)) == self.delegate

    def supports_sessions(self) -> bool:
        """Whether sessions can be granted now: the EOA delegates to keyscope's delegate and it has the module."""
        if self._ready:
            return True
        state = self.delegation()
        self._ready = state.delegate == self.delegate and state.module_registered
        return self._ready

    # -- becoming session-capable ----------------------------------------------------------------------

    def _setup(self, state: DelegationState, sessions: Sequence[Session]) -> tuple[list[Call], bool, int]:
        """The calls that leave the EOA (delegated to keyscope's delegate in the same operation, or already) with
        the module installed, a new epoch and ``sessions`` enabled in it; whether they need an authorization; the
        module's epoch once they ran.

        The new epoch comes before any session is enabled, whatever the EOA's state: the delegation may be new, or
        the EOA may have left and come back (or someone may have landed its authorization before this operation),
        and the module keeps what an earlier delegation left. Nothing granted before survives it. The epoch is drawn
        here, so that this operation's grants know their ids and no grant signed before names it but by chance; it
        comes after the module's install, whose uninstall of what the module held (the delegate's clean-state path)
        moves the account to an epoch drawn from the block (which this draw equals by a chance of 1 in 2**32, the
        operation then failing whole)."""
        module, account = self.network.module, self.account
        delegating = state.delegate != self.delegate
        calls: list[Call] = []
        if delegating:
            # until the authorization lands, code the EOA delegated to before may write the delegate's sets after
            # they were listed (attack 308): the delegate forgets every module first, and the module is installed
            calls.append(Call(account, 0, RESET_MODULES))
        if not state.module_registered or delegating:
            calls.append(self.kind.install_validator_call(account, module, b""))
        # the module refuses the epoch it is at (EpochNotMoved): the one read now, or the one after it, where an
        # install over sessions the module kept while it was not installed moves the account first
        taken = (state.epoch, (state.epoch + 1) % 2**32)
        epoch = unpredictable_epoch()
        while epoch in taken:
            epoch = unpredictable_epoch()
        calls.append(Call(module, 0, invalidate_all_sessions_data(epoch)))
        calls.extend(Call(module, 0, enable_session_data(session)) for session in sessions)
        return calls, delegating, epoch

    def _authorization(self, nonce: int) -> Authorization:
        self._check_delegate_code()
        self._check_left_modules()
        return sign_authorization(self.signer, self.network.chain_id, self.delegate, nonce)

    def _operation_authorization(self, state: DelegationState) -> Authorization:
        """The authorization an operation carries, at the EOA's current nonce; with a warning when the EOA delegates
        to other code now: whoever sees the authorization (the bundler's pool) can land it in a transaction of their
        own, and until the operation's first call resets the delegate's sets that code can still write a module
        into them (attack 308). The EOA's own type-4 transaction's authorization no one else can land."""
        if state.delegate is not None:
            warnings.warn(
                f"the EOA {self.account} delegates to {state.delegate}, not keyscope's delegate: until this "
                "operation's authorization lands that code can still act, and whoever sees the authorization can "
                "land it first and let that code run before the operation resets the delegate's modules; if that "
                "code is not trusted, upgrade(..., transaction=True) sends the same as the EOA's own type-4 "
                "transaction, whose authorization no one else can land",
                DelegationWarning,
                stacklevel=_outside_keyscope(),
            )
        return self._authorization(state.transaction_nonce)

    def _storage_word(self, slot: int) -> int:
        return int(
            node_request(self.network.chain, "eth_getStorageAt", [self.account, hex(slot), "latest"]), 16
        )

    def _check_left_modules(self) -> None:
        """Refuse to sign an authorization that would bring back modules left in keyscope's delegate's namespace of
        the EOA's storage (EIP-7702 never clears storage): validators other than the session module, executors and
        fallback handlers, written by an earlier delegation or by other code the EOA delegated to (which may write
        anything there). An executor the delegate holds calls ``executeFromExecutor`` with no signature at all, a
        validator validates the EOA's operations, and a fallback handler is called by the EOA itself for anyone who
        calls its selector (a token as the handler of ``transfer`` moves the EOA's tokens), so delegating back over
        them hands the EOA to whoever chose them. The delegate calls a handler only while it is in its handler set,
        which is listed here; one only in the selector mapping (which cannot be listed) is in force nowhere."""
        module = self.network.module
        left: list[str] = []
        for what, set_slot in (
            ("validator", DELEGATE_VALIDATORS_SLOT),
            ("executor", DELEGATE_EXECUTORS_SLOT),
            ("fallback handler", DELEGATE_FALLBACK_HANDLERS_SLOT),
        ):
            count = self._storage_word(set_slot)
            if not count:
                continue
            found = [
                to_address(
                    self._storage_word(delegate_set_value_slot(set_slot, index)).to_bytes(32, "big")[12:]
                )
                for index in range(min(count, _LEFT_MODULES_READ))
            ]
            others = [address for address in found if what != "validator" or address != module]
            more = count - len(found)
            if others or more:
                listed = _left_listing(others, count, more)
                left.append(f"{what}s {listed}")
        if left:
            raise DelegationError(
                f"the EOA {self.account}'s storage holds, in keyscope's delegate's namespace, {'; '.join(left)}, "
                "left there by an earlier delegation or by other code it delegated to (which may write anything "
                "there): delegating it to the delegate would put them in force at once (an executor acts as the EOA "
                "without any signature, a validator validates its operations, a fallback handler is called by the EOA "
                "for anyone), so nothing was signed. If you "
                "installed them yourself and want them back, delegate with your own authorization and uninstall "
                "what you do not want; otherwise consider the EOA's storage tampered with",
                account=self.account,
                delegate=self.delegate,
            )

    def _check_authorization(self, auth: Authorization) -> None:
        """As :meth:`Owner._check_authorization <keyscope.owner.Owner._check_authorization>`, and the authorization
        must delegate the EOA to keyscope's delegate (an authorization for other code, given to an operation of
        keyscope's account, would run that code instead)."""
        super()._check_authorization(auth)
        if auth.address != self.delegate:
            raise DelegationError(
                f"the authorization delegates the EOA {self.account} to {auth.address}, not to keyscope's "
                f"KeyscopeDelegate {self.delegate}: keyscope sends an EOA's authorization only for its delegate "
                "(to leave it, EOAOwner.undelegate)",
                account=self.account,
                delegate=auth.address,
            )
        self._check_delegate_code()

    def _check_delegate_code(self) -> None:
        """Refuse to sign an authorization for code that is not keyscope's delegate: the factory's account
        implementation (its owner is set by an ``initialize`` only the factory may call, so an EOA delegating there
        would have no owner), another account's code, or an address without code."""
        delegate = self.delegate
        if delegate in self._checked_delegates:
            return
        answered = self.network.account_id(delegate)
        prefix = KeyscopeDelegateKind.account_id_prefix
        if answered is None or not answered.startswith(prefix):
            what = (
                "has no code"
                if not self.network.chain.get_code(delegate)
                else ("answers no accountId()" if answered is None else f"answers accountId() {answered!r}")
            )
            hint = (
                " (keyscope's account implementation, which an EOA must not delegate to)"
                if answered is not None and answered.startswith(KeyscopeAccountKind.account_id_prefix)
                else ""
            )
            raise DelegationError(
                f"the delegate {delegate} {what}{hint}, not {prefix}*: the EOA {self.account} signs an EIP-7702 "
                "authorization only for keyscope's KeyscopeDelegate: connect(..., delegate=...) with a deployed "
                "KeyscopeDelegate's address",
                account=self.account,
                delegate=delegate,
            )
        if not is_keyscope_delegate(self.network.chain, delegate):
            # what code answers of itself proves nothing: any code can answer keyscope's delegate's accountId()
            raise DelegationError(
                f"the delegate {delegate} answers accountId() {answered!r} but does not run keyscope's "
                "KeyscopeDelegate code (this version's, but for its EntryPoint): the EOA "
                f"{self.account} signs an EIP-7702 authorization only for keyscope's KeyscopeDelegate, since the "
                "code it delegates to holds everything the EOA holds: connect(..., delegate=...) with a "
                "KeyscopeDelegate deployed from this version of keyscope",
                account=self.account,
                delegate=delegate,
            )
        self._checked_delegates.add(delegate)

    def install_sessions(self) -> PendingUserOperation | None:
        """Delegate the EOA to keyscope's delegate and install the session module in a new epoch, in one operation
        carrying the EOA's authorization; None when the EOA delegates to it with the module installed already
        (nothing changes then: :meth:`upgrade` always starts a new epoch). A first session is better granted in
        the same operation: :meth:`upgrade`."""
        state = self.delegation()
        if state.delegate == self.delegate and state.module_registered:
            return None
        calls, delegating, _ = self._setup(state, ())
        auth = self._operation_authorization(state) if delegating else None
        return self.execute(calls, eip7702_auth=auth)

    def build_upgrade(
        self, key: Any, permissions: Iterable[Permission], **window: Any
    ) -> tuple[UserOperation, GrantRequest]:
        """The one operation that makes the EOA session-capable and grants ``permissions`` to ``key`` (see
        :meth:`upgrade`), signed and not sent, with the request of the grant it makes."""
        state, request, calls, delegating = self._plan_upgrade(key, permissions, window)
        auth = self._operation_authorization(state) if delegating else None
        return self._build_or_refuse_prefund(calls, eip7702_auth=auth), request

    def send_upgrade(self, key: Any, permissions: Iterable[Permission], **window: Any) -> PendingGrant:
        """Send :meth:`build_upgrade`'s operation; :meth:`PendingGrant.wait <keyscope.owner.PendingGrant.wait>`
        gives the grant."""
        op, request = self.build_upgrade(key, permissions, **window)
        return PendingGrant(self.send(op), request)

    def upgrade(
        self,
        key: Any,
        permissions: Iterable[Permission],
        *,
        transaction: bool = False,
        timeout: float = 60.0,
        **window: Any,
    ) -> SessionGrant:
        """Make the EOA session-capable and grant ``permissions`` to the session ``key``, in one step.

        The EOA's key signs an EIP-7702 authorization for keyscope's delegate (for this chain only, at the EOA's
        current nonce) and one UserOperation that carries it, starts a new epoch at the session module, installs
        the module and enables the session; the EOA's address, balance and assets stay where they are. With
        ``transaction``, the EOA sends the same as its own type-4 transaction (paying its gas) instead, for
        bundlers that cannot carry authorizations. On an EOA that delegates to the delegate already, no
        authorization is needed, and the operation still starts a new epoch: every earlier session of the EOA
        dies (to add a session beside others, :meth:`grant <keyscope.owner.Owner.grant>`). The window options are
        :meth:`Owner.session_for <keyscope.owner.Owner.session_for>`'s. Returns the grant once the session is
        active on chain."""
        if transaction:
            state, request, calls, delegating = self._plan_upgrade(key, permissions, window)
            self._transact_setup(state, calls, delegating)
            grant = request.enabled_on_chain()
        else:
            grant = self.send_upgrade(key, permissions, **window).wait(timeout)
        self._check_active(grant)
        self._ready = True
        return grant

    def _plan_upgrade(
        self, key: Any, permissions: Iterable[Permission], window: dict[str, Any]
    ) -> tuple[DelegationState, GrantRequest, list[Call], bool]:
        state = self.delegation()
        session = self.session_for(key, permissions, **window)
        self._judge_undelegated_grant(session)  # as a grant is judged, but for the account's own answers
        calls, delegating, epoch = self._setup(state, (session,))
        # a given end is judged against the clock (a duration counts from it)
        now = (
            window_now(self.network.chain.block_timestamp())
            if window.get("valid_until") is not None
            else None
        )
        # the operation starts a new epoch first: the sessions alive now cannot meet this one
        return state, self._request(session, epoch, deployed=True, now=now), calls, delegating

    def _check_active(self, grant: SessionGrant) -> None:
        net = self.network
        data = IS_SESSION_ACTIVE + abi_encode(["address", "bytes32"], [self.account, grant.session_id])
        if not decode_bool(net.chain.call(net.module, data)):
            raise DelegationError(
                f"the upgrade of {self.account} landed, but session 0x{grant.session_id.hex()} is not active at the "
                "module: its epoch moved in between (another operation of the owner?); grant again",
                account=self.account,
                delegate=self.delegate,
            )

    def uninstall_sessions(self) -> PendingUserOperation:
        """As :meth:`Owner.uninstall_sessions <keyscope.owner.Owner.uninstall_sessions>`; grants need
        :meth:`upgrade` or :meth:`install_sessions` again afterwards."""
        self._ready = False
        return super().uninstall_sessions()

    # -- grants need the module first ----------------------------------------------------------------

    def _prepare(
        self, key: Any, permissions: Iterable[Permission | Sequence[Permission]], **window: Any
    ) -> GrantRequest:
        """As :meth:`Owner.prepare_grant <keyscope.owner.Owner.prepare_grant>` (and :meth:`grant`), once the EOA is
        session-capable (:meth:`upgrade` or :meth:`install_sessions` first: the delegation moves the epoch grants
        are bound to)."""
        if not self.supports_sessions():
            raise ConfigurationError(
                f"the EOA {self.account} is not session-capable yet (not delegated to {self.delegate}, or without "
                "the session module): owner.upgrade(key, permissions) grants the first session in the operation "
                "that delegates it"
            )
        return super()._prepare(key, permissions, **window)

    # -- the EOA's own transactions -------------------------------------------------------------------

    def send_transaction(
        self,
        to: str,
        data: bytes = b"",
        *,
        value: int = 0,
        authorization: Authorization | None = None,
        authorize: Callable[[int], Authorization] | None = None,
        timeout: float = 60.0,
    ) -> TransactionReceipt:
        """Send a transaction from the EOA itself, signed by its key (type 2, or type 4 carrying
        ``authorization``), and wait for it; raises :class:`~keyscope.errors.DelegationError` when it reverts, and
        :class:`~keyscope.errors.BadInputError`, before anything is signed, for an authorization the node would skip
        or anyone could replay on another chain (chain id 0, another chain, a nonce other than the one it must name).
        ``authorize`` instead makes the authorization from the transaction's own nonce, once read (the EOA's own
        authorization must name that nonce + 1: the transaction increments it first), so that no other transaction
        of the EOA landing in between leaves it naming a used nonce."""
        chain, account = self.network.chain, self.account
        nonce = int(node_request(chain, "eth_getTransactionCount", [account, "pending"]), 16)
        if authorize is not None:
            if authorization is not None:
                raise BadInputError("give an authorization or a way to make one (authorize), not both")
            authorization = authorize(nonce)
        if authorization is not None:
            self._check_transaction_authorization(authorization, nonce)
        priority = chain.max_priority_fee()
        tx: dict[str, Any] = {
            "type": SET_CODE_TX_TYPE if authorization is not None else _DYNAMIC_FEE_TX_TYPE,
            "chainId": self.network.chain_id,
            "nonce": nonce,
            "to": to_address(to),
            "value": value,
            "data": "0x" + data.hex(),
            "maxPriorityFeePerGas": priority,
            "maxFeePerGas": 2 * chain.base_fee() + priority,
            "accessList": [],
        }
        estimate: dict[str, Any] = {
            "from": account,
            "to": tx["to"],
            "value": hex(value),
            "data": tx["data"],
        }
        if authorization is not None:
            tx["authorizationList"] = [authorization.to_transaction()]
            estimate["authorizationList"] = [
                {key: hex(item) if isinstance(item, int) else item for key, item in entry.items()}
                for entry in tx["authorizationList"]
            ]
        try:
            gas = int(node_request(chain, "eth_estimateGas", [estimate]), 16)
        except JsonRpcError as exc:
            reverted = _revert_bytes(exc.data)
            why = describe_revert(reverted) if reverted else exc.rpc_message
            raise DelegationError(
                f"the EOA's transaction to {tx['to']} would fail ({why}): nothing was sent",
                account=account,
                delegate=authorization.address if authorization is not None else None,
            ) from None
        tx["gas"] = int(gas * _GAS_MARGIN)
        unsigned = TypedTransaction.from_dict(tx)
        signature = self.signer.sign_hash(bytes(unsigned.hash()))
        signed = TypedTransaction.from_dict(
            {
                **tx,
                "v": signature[64] - 27,
                "r": int.from_bytes(signature[:32], "big"),
                "s": int.from_bytes(signature[32:64], "big"),
            }
        )
        tx_hash = node_request(chain, "eth_sendRawTransaction", ["0x" + signed.encode().hex()])
        receipt = _wait_for_receipt(self, tx_hash, timeout)
        if int(receipt["status"], 16) != 1:
            raise DelegationError(
                f"the EOA's transaction {tx_hash} to {tx['to']} reverted: see it with the node's trace",
                account=account,
                delegate=authorization.address if authorization is not None else None,
                transaction=tx_hash,
            )
        return receipt

    def _check_transaction_authorization(self, auth: Authorization, nonce: int) -> None:
        """Refuse, before the EOA signs its transaction at ``nonce``, an authorization the node would skip or that
        anyone could replay elsewhere: one for chain id 0 or another chain; the EOA's own at another nonce than
        ``nonce`` + 1 (its transaction increments the nonce before the authorization is applied); another EOA's at
        a nonce that EOA has used. Where it delegates to is the caller's choice (``undelegate`` names other code)."""
        self._check_authorization_chain(auth)
        authority = auth.authority()
        if authority != self.account:
            refuse_used_authorization_nonce(self.network.chain, auth, authority)
        elif auth.nonce != nonce + 1:
            raise BadInputError(
                f"the EOA's own authorization names nonce {auth.nonce}, but its transaction is sent at nonce "
                f"{nonce} and increments it first: the node would skip the authorization and run the call on the "
                f"code the EOA has now; sign it at nonce {nonce + 1}, or give authorize= to make it from the "
                "transaction's own nonce"
            )

    def _transact_setup(
        self, state: DelegationState, calls: list[Call], delegating: bool
    ) -> TransactionReceipt:
        # the EOA's own transaction increments its nonce before the authorization is checked: the transaction's
        # nonce + 1, read when it is sent (another transaction of the EOA may land after the plan was read)
        receipt = self.send_transaction(
            self.account,
            encode_execute(calls),
            authorize=(lambda nonce: self._authorization(nonce + 1)) if delegating else None,
        )
        if not self.is_delegated():
            raise DelegationError(
                f"the EOA's transaction {receipt['transactionHash']} was mined but {self.account} does not delegate "
                f"to {self.delegate}: the node skipped its authorization",
                account=self.account,
                delegate=self.delegate,
                transaction=receipt["transactionHash"],
            )
        return receipt

    def revoke_directly(self, grant: SessionGrant | bytes | str) -> TransactionReceipt:
        """Revoke a session with the EOA's own transaction to the module (no bundler, no UserOperation). Refused
        before anything is sent, as :meth:`revoke` refuses: a grant of another account
        (:class:`~keyscope.errors.BadInputError`), a session the module holds revoked already
        (:class:`~keyscope.errors.SessionRevokedError`: a second revocation changes nothing and costs gas)."""
        return self.send_transaction(self.network.module, revoke_session_data(self._revocable_id(grant)))

    def invalidate_all_directly(self) -> TransactionReceipt:
        """Invalidate every session of the EOA with its own transaction to the module."""
        return self.send_transaction(self.network.module, INVALIDATE_ALL_SESSIONS)

    def undelegate(self, to: str | None = None) -> TransactionReceipt:
        """Leave keyscope's delegate: one transaction of the EOA that clears its code (``to`` None) or delegates it
        to ``to``, and invalidates every session at the module, so that a later delegation back to keyscope's
        delegate (made with keyscope or without) finds none alive."""
        target = ZERO_ADDRESS if to is None else to_address(to, name="to")
        chain_id = self.network.chain_id
        receipt = self.send_transaction(
            self.network.module,
            INVALIDATE_ALL_SESSIONS,
            authorize=lambda nonce: sign_authorization(self.signer, chain_id, target, nonce + 1),
        )
        now = delegate_of(self.network.chain.get_code(self.account))
        if now != (None if to is None else target):
            raise DelegationError(
                f"the EOA's transaction {receipt['transactionHash']} was mined but {self.account} delegates to {now}",
                account=self.account,
                delegate=None if to is None else target,
                transaction=receipt["transactionHash"],
            )
        self._ready = False
        self.network.forget_kind(self.account)
        return receipt


def _left_listing(others: Sequence[str], count: int, more: int) -> str:
    """What :meth:`EOAOwner._check_left_modules` says of one set: the modules it read (``others``), and ``more``
    entries past those of a set whose length word is ``count``."""
    parts = [", ".join(others)] if others else []
    if more > _PLAUSIBLE_SET_LENGTH:
        if others:
            parts.append(
                f"more (the set's length word is 0x{count:x}, which no set the delegate keeps reaches)"
            )
        else:
            parts.append(f"with a length word of 0x{count:x}, which no set the delegate keeps reaches")
    elif more:
        parts.append(f"{more} more")
    return " and ".join(parts)


def _revert_bytes(data: Any) -> bytes | None:
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _wait_for_receipt(owner: EOAOwner, tx_hash: str, timeout: float) -> TransactionReceipt:
    deadline = time.monotonic() + timeout
    while True:
        receipt = node_request(owner.network.chain, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            result: TransactionReceipt = receipt
            return result
        if time.monotonic() > deadline:
            raise DelegationError(
                f"the EOA's transaction {tx_hash} was not mined within {timeout:.0f}s: is the node mining?",
                account=owner.account,
                transaction=tx_hash,
            )
        time.sleep(0.05)
