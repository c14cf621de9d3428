"""The dapp's side: send UserOperations from the user's account with the session key, no wallet prompt.

Before anything is sent, every call is checked against the session's policy exactly as the module will
check it (:mod:`keyscope.checker`), and the session's window and revocation are checked against the chain:
a call the module would refuse never reaches the bundler, and the error says which permission and rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from .bundler.pending import PendingUserOperation
from .bundler.types import Bundler
from .calls import function_call
from .chain import Chain
from .checker import CheckResult, PolicyChecker
from .errors import BadInputError, ConfigurationError, GasCostTooHighError, SessionRevokedError
from .execution import Call, encode_execute
from .gas import required_prefund
from .grant import SessionGrant
from .hexutil import to_address
from .network import Network, connect
from .operations import Draft, OperationBuilder
from .session import encode_enable_signature, encode_use_with_key_signature
from .signing import HashSigner
from .userop import UserOperation

__all__ = ["SessionAccount"]

_IS_SESSION_ACTIVE = keccak(b"isSessionActive(address,bytes32)")[:4]
_IS_SESSION_REVOKED = keccak(b"isSessionRevoked(address,bytes32)")[:4]
_PLACEHOLDER_ECDSA = b"\xff" * 32 + b"\x7f" * 32 + b"\x1c"


class SessionAccount:
    """Sends operations from ``grant.account`` signed by the session ``key``.

    Give a :class:`~keyscope.network.Network` (``network=``), or the ``bundler`` and ``node`` URLs (or
    objects). Options:

    * ``lane``: the nonce lane (0..2**32-1) under the module's nonce key; several workers using one
      session concurrently each take their own lane.
    * ``clock``: unix seconds used for the window check; by default the chain's latest block time (the
      clock the EntryPoint judges by).
    * ``verify_on_chain``: check before each send that the session is neither revoked nor invalidated on
      chain (one ``eth_call``); on by default.
    """

    def __init__(
        self,
        grant: SessionGrant,
        key: HashSigner,
        *,
        network: Network | None = None,
        bundler: str | Bundler | None = None,
        node: str | Chain | None = None,
        lane: int = 0,
        clock: Callable[[], float] | None = None,
        verify_on_chain: bool = True,
    ) -> None:
        if to_address(key.address) != grant.session_key:
            raise BadInputError(
                f"the key {key.address} is not this session's key {grant.session_key}: load the key the session "
                "was granted to"
            )
        if network is None:
            if bundler is None or node is None:
                raise ConfigurationError(
                    "SessionAccount needs network=, or both bundler= and node= (URLs or clients)"
                )
            network = connect(node, bundler, module=grant.module, entry_point=grant.entry_point)
        if network.module != grant.module or network.entry_point != grant.entry_point:
            raise ConfigurationError(
                f"the grant is for module {grant.module} and EntryPoint {grant.entry_point}, but the network uses "
                f"{network.module} and {network.entry_point}"
            )
        self.grant = grant
        self.key = key
        self.network = network
        self.lane = lane
        self.verify_on_chain = verify_on_chain
        self._clock = clock
        self._builder = OperationBuilder(network)
        self._checker = PolicyChecker.for_grant(grant)
        self._enabled = grant.how == "onchain"
        self._nonce_key = network.kind.nonce_key(network.module, lane)

    def __repr__(self) -> str:
        return f"SessionAccount({self.grant.account}, key {self.key.address}, lane {self.lane})"

    @property
    def address(self) -> str:
        """The smart account the session acts for."""
        return self.grant.account

    # -- checks -------------------------------------------------------------------------------------

    def now(self) -> int:
        """The time the window is checked against."""
        return int(self._clock()) if self._clock is not None else self.network.chain.block_timestamp()

    def _module_flag(self, selector: bytes) -> bool:
        data = selector + abi_encode(["address", "bytes32"], [self.grant.account, self.grant.session_id])
        return bool(abi_decode(["bool"], self.network.chain.call(self.network.module, data))[0])

    def is_enabled(self) -> bool:
        """Whether the session is enabled on chain (an off-chain grant becomes enabled by its first operation)."""
        if not self._enabled and self._module_flag(_IS_SESSION_ACTIVE):
            self._enabled = True
        return self._enabled

    def _verify_status(self) -> None:
        if self._enabled:
            if self._module_flag(_IS_SESSION_ACTIVE):
                return
            revoked = self._module_flag(_IS_SESSION_REVOKED)
            raise SessionRevokedError(
                f"session 0x{self.grant.session_id.hex()} is "
                + (
                    "revoked"
                    if revoked
                    else "no longer active (the module was uninstalled or all sessions invalidated)"
                )
                + " on chain: ask the owner for a new session",
                "0x" + self.grant.session_id.hex(),
            )
        if self._module_flag(_IS_SESSION_REVOKED):
            raise SessionRevokedError(
                f"session 0x{self.grant.session_id.hex()} is revoked on chain: ask the owner for a new session",
                "0x" + self.grant.session_id.hex(),
            )
        self.is_enabled()

    def check(self, calls: Call | Sequence[Call], *, batch: bool | None = None) -> CheckResult:
        """Check ``calls`` against the policy and the window, as the module and EntryPoint will; raises
        :class:`~keyscope.errors.PolicyViolationError` (or a session error) when they would refuse."""
        call_data = encode_execute(calls if isinstance(calls, Call) else list(calls), batch=batch)
        return self._checker.check(call_data, now=self.now())

    # -- building and sending -------------------------------------------------------------------------

    def nonce_key(self, lane: int | None = None) -> int:
        """The EntryPoint nonce key of ``lane`` (default: this instance's :attr:`lane`) under the module."""
        if lane is None:
            return self._nonce_key
        return self.network.kind.nonce_key(self.network.module, lane)

    def _draft(self, call_data: bytes, nonce_key: int) -> Draft:
        return Draft(
            sender=self.grant.account,
            call_data=call_data,
            nonce_key=nonce_key,
            factory=self.grant.factory,
            factory_data=self.grant.factory_data,
        )

    def _signature(self, digest_signature: bytes) -> bytes:
        if self._enabled:
            return digest_signature
        if self.grant.owner_signature is None:
            raise ConfigurationError(
                "this off-chain grant has no owner signature and the session is not enabled on chain"
            )
        return encode_enable_signature(self.grant.session, self.grant.owner_signature, digest_signature)

    def _placeholder(self) -> bytes:
        if self._enabled:
            return encode_use_with_key_signature(self.key.address, _PLACEHOLDER_ECDSA)
        return self._signature(_PLACEHOLDER_ECDSA)

    def build(
        self,
        calls: Call | Sequence[Call],
        *,
        batch: bool | None = None,
        check: bool = True,
        nonce: int | None = None,
        lane: int | None = None,
    ) -> UserOperation:
        """A signed operation making ``calls``, ready to send (see :meth:`send_calls`).

        ``lane`` builds on another nonce lane than this instance's (a store-leased one, say); ``nonce`` gives
        the full nonce instead of asking the EntryPoint for the lane's next one.
        """
        call_data = encode_execute(calls if isinstance(calls, Call) else list(calls), batch=batch)
        if check:
            self._checker.check(call_data, now=self.now())
        if self.verify_on_chain:
            self._verify_status()
        draft = self._draft(call_data, self.nonce_key(lane))
        op = self._builder.prepare(draft, self._placeholder(), nonce=nonce)
        self._check_gas_cost(op)
        return self._builder.sign(op, lambda digest: self._signature(self.key.sign_hash(digest)))

    def _check_gas_cost(self, op: UserOperation) -> None:
        cap = self.grant.session.gas_cap
        if cap and op.paymaster is None and (cost := required_prefund(op)) > cap:
            raise GasCostTooHighError(
                f"this operation could cost the account up to {cost:,} wei in gas (gas limits times maxFeePerGas "
                f"{op.max_fee_per_gas:,}), over the session's cap of {cap:,} wei: split the calls, wait for lower "
                "fees, or ask the owner for a session with a higher max_gas_cost",
                "0x" + self.grant.session_id.hex(),
            )

    def send(self, op: UserOperation) -> PendingUserOperation:
        """Send an operation made by :meth:`build`."""
        return self._builder.send(op)

    def send_calls(
        self, calls: Call | Sequence[Call], *, batch: bool | None = None, check: bool = True
    ) -> PendingUserOperation:
        """Check, build, sign and send an operation making ``calls``; :meth:`PendingUserOperation.wait` for
        the receipt. ``check=False`` skips the local policy check (the chain still enforces it)."""
        return self.send(self.build(calls, batch=batch, check=check))

    def execute(
        self, target: Any, function: str, *args: Any, value: int = 0, check: bool = True
    ) -> PendingUserOperation:
        """Call ``target.function(*args)`` from the account: ``function`` is a signature such as
        ``"safeMint(address)"`` (argument names allowed)."""
        return self.send_calls(function_call(target, function, *args, value=value), check=check)

    def execute_batch(self, calls: Sequence[Call], *, check: bool = True) -> PendingUserOperation:
        """Make several calls in one operation (all or nothing)."""
        return self.send_calls(list(calls), batch=True, check=check)
