"""The dapp's side: send UserOperations from the user's account with the session key, no wallet prompt.

Before anything is sent, every call is checked against the session's policy exactly as the module will
check it (:mod:`keyscope.checker`), and the session's window and revocation are checked against the chain:
a call the module would refuse never reaches the bundler, and the error says which permission and rule.
"""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .accounts import AccountKind
from .accounts.capabilities import (
    EXECUTION_REVERTED,
    refuse_batch_mode,
    refuse_execute_from_elsewhere,
    refuse_user_op_validation,
    runs_batches_only,
)
from .accounts.erc7579 import ERC7579AccountKind
from .accounts.modules import read_asking_modules
from .bundler.pending import PendingUserOperation
from .bundler.types import Bundler, GasEstimate
from .bundler_refusals import bundler_refusals
from .calls import function_call
from .chain import Chain
from .checker import CheckResult, PolicyChecker
from .clock import window_now
from .co_signer import CoSigner
from .co_signing_checks import ask_co_signature, expected_co_signer, refuse_missing_co_signer
from .enable_checks import refuse_what_enabling_refuses, verify_grant_owner_signature
from .endpoints import Endpoints
from .erc1271 import Signer, encode_sign_in_signature, encode_typed_data_signature
from .errors import (
    BadInputError,
    BundlerRejectedError,
    ConfigurationError,
    SessionError,
    TargetWithoutCodeError,
    shown,
)
from .execution import CALLTYPE_BATCH, Call, encode_execute
from .grant import SessionGrant
from .hexutil import ZERO_ADDRESS, to_address
from .limits import LimitUsage, usage_of
from .message_signing import check_sign_in, check_typed_data, sign_in_message
from .module import (
    IS_SESSION_ACTIVE,
    decode_bool,
    decode_co_signer,
    decode_epoch,
    epoch_of_data,
)
from .operations import OperationBuilder
from .report import SessionReport, report_from_chain
from .session import (
    ECDSA_SIGNATURE_BYTES,
    enable_signature_prefix,
    enable_signature_with_prefix,
    encode_at_signature,
    encode_enable_signature,
    encode_session_signature,
    encode_use_with_key_signature,
)
from .session_reads import SessionReads, judge_status, read_session_state
from .signers import SignerLike, as_signer
from .signing import PLACEHOLDER_ECDSA
from .signing_checks import (
    refuse_account_passing_another_sender,
    refuse_forbidden_verifier,
    require_account_accepts,
    signature_refusal,
    verifying_contract,
)
from .typed_data import TypedData, personal_sign_hash, typed_data_sign_hash
from .userop import UserOperation

__all__ = ["SessionAccount"]

_PRECOMPILES = 0xFFFF
"""Addresses up to this one are taken for precompiles (0x01-0x11 on L1, 0x100 for P-256 on some chains): they
have no code, yet calls to them do something, so they are not refused as targets without code."""
_MAX_ESTIMATES = 256
"""Gas estimates kept per session account (distinct calls); past that, expired and oldest ones go."""
_PENDING_TRUST = 60.0
"""Seconds after its last send that a lane's locally counted nonce is trusted over the chain's."""


def _calls(calls: Any, method: str = "") -> Call | list[Call]:
    """``calls`` as a :class:`Call` or a list of them, read once (an iterator would be empty at its second reading);
    anything that is no call and holds none is refused naming what it is (the items are judged where they are
    encoded)."""
    if isinstance(calls, Call) and not method:
        return calls
    if isinstance(calls, (str, bytes, bytearray, Mapping)) or not isinstance(calls, Iterable):
        shape = "a list of Call" if method else "a Call or a list of them"
        raise BadInputError(
            f"{method or 'the calls'} takes {shape} (Call(to, value=wei), or function_call(target, "
            f"'fn(...)', *args)), got {type(calls).__name__} {shown(calls)}"
        )
    return list(calls)


class SessionAccount:
    """Sends operations from ``grant.account`` signed by the session ``key``.

    Give a :class:`~keyscope.network.Network` (``network=``), or the ``bundler`` and ``node`` URLs (or
    objects). Options:

    * ``lane``: which of the session's nonce lanes to use. Each session's lanes start at a base lane derived
      from its id, so that sessions of different dapps on one account do not race on one nonce sequence;
      several workers sending for one session concurrently each take their own ``lane`` (0, 1, 2, …).
    * ``clock``: unix seconds used for the window check; by default the later of the chain's latest block
      time and the wall clock (:func:`~keyscope.clock.window_now`): the block that includes an operation is
      stamped no earlier, and bundlers judge windows by their wall clock.
    * ``verify_on_chain``: check before each send that the session is neither revoked nor invalidated on
      chain, and before an off-chain grant's first operation on a deployed account that the account accepts
      the owner's signature (:class:`~keyscope.errors.AccountSetupError` otherwise); on by default.
    * ``co_signer``: for a session granted with a co-signer, the co-signer (:mod:`keyscope.co_signer`) asked to
      co-sign every operation and message. The co-signer the module holds is read with the nonce: an operation
      without its co-signature, or with one by another key (the owner rotated the co-signer), is refused before it
      is sent (:class:`~keyscope.errors.CoSignerMismatchError`); once the owner removed the co-signer
      (``rotateCoSigner(id, 0)``) the session signs alone, as the module then requires.

    Sessions granted signing permissions also sign messages as the account (ERC-1271): :meth:`sign_typed_data`,
    :meth:`sign_in`.

    The account's adapter (:attr:`kind`) is the network's, or found out: a deployed account's ``accountId()``,
    else the kind the grant was signed for.

    A session with limits: before each operation its counters are read with the rest, and the local check refuses
    an operation over a limit, naming it and the numbers (:class:`~keyscope.errors.LimitExceededError`); an
    operation of a session with per-period limits claims the chain's time (it is then valid in that period only).
    :meth:`usage` says what each limit has used and has left.

    Before each operation the nonce, the session's status and the chain's clock are read in one round trip
    (one JSON-RPC batch on a node URL). Fee quotes are reused for a couple of seconds, and gas estimates of
    identical calls for ``estimate_ttl`` seconds. Operations sent in a row on one lane take consecutive
    nonces without waiting for inclusion; if they have not landed a minute after the last send (a bundler
    dropped them), the next operation takes the chain's nonce again.
    """

    def __init__(
        self,
        grant: SessionGrant,
        key: SignerLike,
        *,
        network: Endpoints | None = None,
        bundler: str | Bundler | None = None,
        node: str | Chain | None = None,
        lane: int = 0,
        clock: Callable[[], float] | None = None,
        verify_on_chain: bool = True,
        estimate_ttl: float = 30.0,
        co_signer: CoSigner | None = None,
    ) -> None:
        if not isinstance(grant, SessionGrant):
            read = (
                " (SessionGrant.from_json(text) reads what grant.to_json() wrote)"
                if isinstance(grant, (str, bytes, Mapping))
                else ""
            )
            raise BadInputError(
                f"a session is sent under a SessionGrant, got {type(grant).__name__}: give the grant "
                f"owner.grant(...) returned{read}"
            )
        key = as_signer(key, role="session")
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
            network = Endpoints.from_urls(node, bundler, module=grant.module, entry_point=grant.entry_point)
        if network.module != grant.module or network.entry_point != grant.entry_point:
            raise ConfigurationError(
                f"the grant is for module {grant.module} and EntryPoint {grant.entry_point}, but the network uses "
                f"{network.module} and {network.entry_point}: connect(..., module={shown(grant.module)}, "
                f"entry_point={shown(grant.entry_point)}) to use this session"
            )
        if co_signer is not None and grant.session.co_signer is None:
            raise BadInputError("this session was granted without a co-signer: give no co_signer")
        if co_signer is not None and not callable(co_signer):
            # a co-signer's key (or address) here failed at the first operation, "'str' object is not callable"
            raise BadInputError(
                f"co_signer must be a co-signer, a callable that signs what it is asked, got {type(co_signer).__name__} "
                "(not shown): for a key held here give keyscope.co_signer.local_co_signer(key), for a service "
                "keyscope.cosigner.remote_co_signer(url)"
            )
        self.grant = grant
        self.key = key
        self.co_signer = co_signer
        self.network = network
        self.lane = lane
        self.verify_on_chain = verify_on_chain
        self._clock = clock
        self._builder = OperationBuilder(network)
        self._checker = PolicyChecker.for_grant(grant, opens_after=network.entry_point_version == "0.8")
        self._enabled = grant.how == "onchain"
        self._owner_signature_checked = False
        self.kind: AccountKind = network.kind_for(grant.account, named=grant.account_kind)
        self._reads = SessionReads.for_grant(grant)
        """The calls asked about the session with each operation, and what the chain last answered."""
        self._enable_prefix: bytes | None = None
        """The ENABLE signature's bytes before the session key's signature (encoded at the first use)."""
        self._placeholders: dict[tuple[bool, bool], tuple[bytes, int]] = {}
        """Per enabled state and co-signature: the placeholder signature gas is estimated with, and the real one's
        length."""
        self._nonce_keys: dict[int, int] = {}
        self._lane_base = int.from_bytes(grant.session_id[:4], "big") % (1 << self.kind.lane_bits)
        self.nonce_key(lane)  # refuses a lane out of range now rather than at the first send
        self.estimate_ttl = estimate_ttl
        self._estimates: dict[tuple[bytes, int, int, bool], tuple[float, GasEstimate]] = {}
        self._next_nonce: dict[int, tuple[int, float]] = {}
        """Per nonce key: the nonce after the last one sent, and when it was sent (``time.monotonic()``)."""
        self._periodic = any(limit.period for limit in grant.session.limits)
        """Operations claim a time (MODE_AT): the session has per-period limits."""
        self._enable_checked = False
        """Whether the module's dry run enabled this (off-chain) session without refusal."""
        self._runs_batches_only: bool | None = None
        """Whether the account runs batches but no single call (asked once, of generic-adapter accounts)."""
        self._validation_checked = False
        """Whether the account's validateUserOp took a checked operation of this session (generic adapters)."""

    def __repr__(self) -> str:
        return f"SessionAccount({self.grant.account}, key {self.key.address}, lane {self.lane})"

    @property
    def address(self) -> str:
        """The smart account the session acts for."""
        return self.grant.account

    # -- checks -------------------------------------------------------------------------------------

    def now(self) -> int:
        """The time the window is checked against (see ``clock``)."""
        return (
            int(self._clock())
            if self._clock is not None
            else window_now(self.network.chain.block_timestamp())
        )

    def status(self) -> SessionReport:
        """Where the session stands on chain: its status, its permissions in words, its window and the time left
        (one round trip to the node; for a session with limits, one more, and a few calls per token limit to read
        its token's decimals and symbol). ``str()`` of the result reads well."""
        now = int(self._clock()) if self._clock is not None else None
        return report_from_chain(self.network, self.grant, now=now)

    def _module_flag(self, selector: bytes) -> bool:
        """The module's answer to ``selector(account, sessionId)`` (``isSessionActive``, ``isSessionRevoked``)."""
        arguments = self._reads.flag_calls[0][4:]
        return decode_bool(self.network.chain.call(self.network.module, selector + arguments))

    def is_enabled(self) -> bool:
        """Whether the session is enabled on chain (an off-chain grant becomes enabled by its first operation)."""
        if not self._enabled and self._module_flag(IS_SESSION_ACTIVE):
            self._enabled = True
        return self._enabled

    def _read_state(
        self, nonce_key: int | None, status: bool, clock: bool, codes: Sequence[str] = ()
    ) -> tuple[int | None, int | None]:
        """Read, in one round trip, what a new operation needs from the chain: the lane's nonce (when
        ``nonce_key`` is given), the session's status (when ``status``; raises if it is revoked or dead), the
        latest block's time (when ``clock``) and whether the addresses ``codes`` have code (those that do are
        remembered in ``_reads.with_code``). Returns (nonce, time)."""
        read = read_session_state(
            self.network,
            self.grant,
            self._reads,
            enabled=self._enabled,
            nonce_key=nonce_key,
            status=status,
            clock=clock,
            codes=codes,
        )
        flags = read.flags
        if flags is not None:
            self._enabled = judge_status(self.grant, flags.active, flags.revoked, self._enabled, flags.epoch)
        return read.nonce, read.timestamp

    def usage(self) -> tuple[LimitUsage, ...]:
        """What each limit of the session has used and has left now (by the chain's clock), read from the module
        in one round trip; empty for a session without limits."""
        if self._reads.usage_call is None:
            return ()
        _, timestamp = self._read_state(None, status=False, clock=self._clock is None)
        moment = int(self._clock()) if self._clock is not None else timestamp
        assert moment is not None and self._reads.counters is not None
        return usage_of(self.grant.session, self._reads.counters, moment)

    def check(self, calls: Call | Sequence[Call], *, batch: bool | None = None) -> CheckResult:
        """Check ``calls`` against the policy and the window, as the module and EntryPoint will; raises
        :class:`~keyscope.errors.PolicyViolationError` (or a session error) when they would refuse."""
        call_data = encode_execute(_calls(calls), batch=batch)
        if self._reads.usage_call is None:
            return self._checker.check(call_data, now=self.now())
        _, timestamp = self._read_state(None, status=False, clock=self._clock is None)
        claimed = int(self._clock()) if self._clock is not None else timestamp
        assert claimed is not None
        now = claimed if self._clock is not None else window_now(claimed)
        return self._checker.check(call_data, now=now, counters=self._reads.counters, at=claimed)

    def refuse_unsendable(self, calls: Call | Sequence[Call]) -> None:
        """Raise what :meth:`build` refuses before sending beside the policy and the window (which :meth:`check`
        judges), for a sender that checks before it builds (:class:`~keyscope.scale.SessionWorker`, before it leases a
        lane):
        :class:`~keyscope.errors.TargetWithoutCodeError` for a call with calldata to an address without code, and
        :class:`~keyscope.errors.CoSignerMismatchError` when the module requires a co-signature and this session
        account has no co-signer to ask. Reads the chain only for targets not yet known to have code, and, before
        refusing a co-signed session, for the module's co-signer record (the owner may have removed the co-signer
        since it was last read), so that it can be called before anything else is read or held (a worker calls it
        before it leases a lane)."""
        checked = _calls(calls)
        batch_calls = [checked] if isinstance(checked, Call) else checked
        targets = [
            to_address(call.target) if call.data and int(call.target, 16) > _PRECOMPILES else None
            for call in batch_calls
        ]
        known = self._reads.with_code | {self.grant.account}
        unknown = sorted({t for t in targets if t is not None and t not in known})
        if unknown:
            self._read_state(None, status=False, clock=False, codes=unknown)
            self._refuse_targets_without_code(targets, set(unknown) - self._reads.with_code)
        expected = expected_co_signer(self.grant, self._reads.co_signer)
        if expected is not None and self.co_signer is None and self.verify_on_chain:
            # about to refuse on the record as last read (or the grant's co-signer, not read yet): read it now
            assert self._reads.co_signer_call is not None  # a co-signed grant's record is asked for
            answer = self.network.chain.call(self.network.module, self._reads.co_signer_call)
            self._reads.co_signer = decode_co_signer(answer, self.network.module)
            expected = expected_co_signer(self.grant, self._reads.co_signer)
        refuse_missing_co_signer(self.grant, self.co_signer, expected)

    # -- building and sending -------------------------------------------------------------------------

    def nonce_key(self, lane: int | None = None) -> int:
        """The EntryPoint nonce key of the session's ``lane`` (default: this instance's :attr:`lane`): the
        module's key on the lane ``base + lane``, ``base`` being derived from the session id."""
        offset = self.lane if lane is None else lane
        key = self._nonce_keys.get(offset)
        if key is None:
            lanes = 1 << self.kind.lane_bits
            if not 0 <= offset < lanes:
                raise BadInputError(
                    f"lane {offset} is out of range: this account has {lanes} nonce lanes per validator"
                )
            key = self.kind.nonce_key(self.network.module, (self._lane_base + offset) % lanes)
            self._nonce_keys[offset] = key
        return key

    def _batches_only(self, calls: Call | Sequence[Call]) -> bool:
        """Whether one call goes to the account as a batch of one: an account the generic adapter drives (whose
        modes are not known) that says it runs batches but no single call. Asked once the account has code."""
        if not (isinstance(calls, Call) or len(calls) == 1) or not isinstance(self.kind, ERC7579AccountKind):
            return False
        if self._runs_batches_only is None and self.network.chain.get_code(self.grant.account):
            self._runs_batches_only = runs_batches_only(self.network.chain, self.grant.account)
        return bool(self._runs_batches_only)

    def _refuse_what_enabling_refuses(self) -> None:
        """Before an off-chain grant's first operation on a deployed account: enable the session in a dry run (an
        ``eth_call`` of the module's ``enableSession`` from the account) and raise :class:`SessionError` for what the
        module would refuse when the operation's ENABLE signature enables it, which changed since the grant: a call
        or signing permission the key holds in another session enabled since (``PermissionAlreadyGranted``), the
        account's live permissions, a target installed as one of its modules. The bundler would refuse the
        operation (AA23). Asked once; a dry run the node cannot make (not the module's revert) refuses nothing."""
        grant = self.grant
        if (
            self._enabled
            or self._enable_checked
            or not self.verify_on_chain
            or grant.account not in self._reads.with_code
        ):
            return
        self._enable_checked = refuse_what_enabling_refuses(self.network.chain, grant)

    def _check_owner_signature(self) -> None:
        """Before an off-chain grant's first operation on a deployed account: the account must accept the
        owner's signature as the module will ask it (else the bundler's refusal would look like a policy one)."""
        grant = self.grant
        if (
            self._enabled
            or self._owner_signature_checked
            or not self.verify_on_chain
            or grant.owner_signature is None
            or not self.network.is_deployed(grant.account)
        ):
            return
        verify_grant_owner_signature(self.network.chain, self.kind, grant, grant.owner_signature)
        self._owner_signature_checked = True

    @property
    def co_signed(self) -> bool:
        """Whether the session was granted with a co-signer (its operations go in the SESSION mode)."""
        return self.grant.session.co_signer is not None

    def _signature(self, digest_signature: bytes, co_signature: bytes = b"", at: int | None = None) -> bytes:
        """The operation's signature: USE (SESSION for a co-signed session) once enabled, else ENABLE carrying
        the key's signature and the co-signer's; behind the AT prefix when ``at`` claims a time."""
        signature = digest_signature
        if self._enabled:
            if self.co_signed:
                signature = encode_session_signature(self.grant.session_id, digest_signature, co_signature)
        else:
            if self.grant.owner_signature is None:
                raise ConfigurationError(
                    "this off-chain grant has no owner signature and the session is not enabled on chain"
                )
            key_signatures = digest_signature + co_signature
            if len(key_signatures) != ECDSA_SIGNATURE_BYTES:
                signature = encode_enable_signature(
                    self.grant.session, self.grant.owner_signature, key_signatures
                )
            else:
                if (
                    self._enable_prefix is None
                ):  # the grant is encoded once, not for the placeholder and again
                    self._enable_prefix = enable_signature_prefix(
                        self.grant.session, self.grant.owner_signature
                    )
                signature = enable_signature_with_prefix(self._enable_prefix, key_signatures)
        return signature if at is None else encode_at_signature(at, signature)

    def _placeholder(self, at: int | None, co_signed: bool = False) -> tuple[bytes, int]:
        """The placeholder signature gas is estimated with (USE_WITH_KEY once enabled: bundlers cannot recover
        the key from a placeholder; else ENABLE as it will be sent), claiming the time ``at`` when operations
        claim one, with a co-signature when ``co_signed``, and the length of the real signature. Each shape is
        encoded once per session account."""
        cached = self._placeholders.get((self._enabled, co_signed))
        if cached is None:
            co_placeholder = PLACEHOLDER_ECDSA if co_signed else b""
            if self._enabled and not self.co_signed:
                placeholder = encode_use_with_key_signature(self.key.address, PLACEHOLDER_ECDSA)
                cached = (placeholder, len(PLACEHOLDER_ECDSA))
            else:  # ENABLE, and the SESSION mode, are sent as they are estimated
                placeholder = self._signature(PLACEHOLDER_ECDSA, co_placeholder)
                cached = (placeholder, len(placeholder))
            self._placeholders[(self._enabled, co_signed)] = cached
        if at is None:
            return cached
        return encode_at_signature(at, cached[0]), cached[1] + 7

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
        calls = _calls(calls)  # once: an iterator would be empty at its second reading
        if batch is None and self._batches_only(calls):
            batch = True  # the account makes one call as a batch of one
        call_data = encode_execute(calls, batch=batch)
        nonce_key = self.nonce_key(lane)
        self._check_chain()
        batch_calls = [calls] if isinstance(calls, Call) else calls
        # a call with calldata to an address without code succeeds and does nothing: asked with the rest
        targets = [
            to_address(call.target) if call.data and check and int(call.target, 16) > _PRECOMPILES else None
            for call in batch_calls
        ]
        known = self._reads.with_code | {self.grant.account}
        unknown = sorted({t for t in targets if t is not None and t not in known})
        # without a factory the account must exist already (else AA20, which bundlers report as a bare revert);
        # once it exists, it must have the module installed
        created = self.grant.factory is not None or self.grant.account in self._reads.with_code
        if self.grant.account not in self._reads.with_code:
            unknown.append(self.grant.account)
        chain_nonce, chain_time = self._read_state(
            nonce_key if nonce is None else None,
            status=self.verify_on_chain,
            clock=(check or self._periodic) and self._clock is None,
            codes=unknown,
        )
        if not created and self.grant.account not in self._reads.with_code:
            raise SessionError(
                f"the account {self.grant.account} has no code on chain {self.grant.chain_id} and the grant names no "
                "factory to create it, so the EntryPoint would refuse the operation (AA20): have the owner deploy "
                "the account first (its first operation creates it), or ask for a grant that creates it",
                "0x" + self.grant.session_id.hex(),
            )
        if self._reads.installed is False and self.grant.account in self._reads.with_code:
            raise SessionError(
                f"the session module {self.grant.module} is not installed on the account {self.grant.account} (the "
                "module's isInitialized answers false): the account would not ask it to validate this session's "
                "operations, so the bundler would refuse the operation (AA24 signature error); nothing was sent. "
                "The owner installs it with owner.install_sessions(); the grant stays valid",
                "0x" + self.grant.session_id.hex(),
            )
        claimed = int(self._clock()) if self._clock is not None else chain_time
        at = claimed if self._periodic else None  # the period the operation counts in: the chain's time
        now = int(self._clock()) if self._clock is not None else window_now(chain_time)
        co_signer = expected_co_signer(self.grant, self._reads.co_signer)
        if check:
            self._checker.check(call_data, now=now, counters=self._reads.counters, at=at)
            self._refuse_targets_without_code(targets, set(unknown) - self._reads.with_code)
            refuse_missing_co_signer(self.grant, self.co_signer, co_signer)
        self._check_owner_signature()
        if check:
            self._refuse_what_enabling_refuses()
        if nonce is None:
            assert chain_nonce is not None
            nonce = self._lane_nonce(nonce_key, chain_nonce)
        grant = self.grant
        draft = self._builder.draft(grant.account, call_data, nonce_key, grant.factory, grant.factory_data)
        co_signs = co_signer is not None and self.co_signer is not None
        placeholder, final_size = self._placeholder(at, co_signs)
        framed = self.kind.validator_user_op_signature(self.network.module, placeholder)
        final_size += len(framed) - len(placeholder)  # the account's framing, around the module's signature
        placeholder = framed
        # estimates of an enabled session's identical calls are reused; never a first (enable/deploy) one
        cacheable = self._enabled and draft.factory is None and self.network.paymaster is None
        # a lane's first operation pays more verification gas (its nonce slot goes from zero to non-zero)
        cache_key = (call_data, len(placeholder), nonce_key, nonce & (2**64 - 1) == 0)
        cached = self._cached_estimate(cache_key) if cacheable else None
        try:
            with bundler_refusals(self.network, self.grant, calls):
                op, gas = self._builder.prepare(
                    draft, placeholder, nonce=nonce, gas=cached, signature_size=final_size
                )
        except BundlerRejectedError as error:
            if call_data[4] == CALLTYPE_BATCH:  # an account that runs no batch: said as such, not as a revert
                refuse_batch_mode(self.network.chain, self.kind, grant.account, call_data[4:36])
            if error.code == EXECUTION_REVERTED and isinstance(self.kind, ERC7579AccountKind):
                # an account whose execute the EntryPoint may not call: said as such, not as a target's revert
                refuse_execute_from_elsewhere(
                    self.network.chain,
                    self.kind,
                    grant.account,
                    self.network.entry_point,
                    call_data,
                )
            raise
        if cacheable and cached is None:
            self._remember_estimate(cache_key, gas)
        self._checker.check_gas_cost(op)
        if check and self._reads.counters is not None and self.grant.session.has_gas_limit:
            self._checker.check_operation(op, now=now, counters=self._reads.counters, at=at)  # the gas budget
        signed = self._builder.sign(
            op,
            lambda digest: self.kind.validator_user_op_signature(
                self.network.module,
                self._signature(
                    self.key.sign_hash(digest),
                    ask_co_signature(
                        self.grant,
                        self.co_signer,
                        "operation",
                        digest,
                        call_data=call_data,
                        operation=op,
                        expected=co_signer if check else None,
                    )
                    if co_signs
                    else b"",
                    at,
                ),
            ),
        )
        if (
            check
            and not self._validation_checked
            and self.verify_on_chain
            and isinstance(self.kind, ERC7579AccountKind)
            and grant.account in self._reads.with_code
        ):  # its validator selection is assumed, not known: ask the account, as for the owner's first operation
            refuse_user_op_validation(
                self.network.chain,
                self.kind,
                self.network.entry_point,
                signed,
                self._builder.user_op_hash(signed),
                "the session's operation",
                reverts=False,
                window=(grant.session.valid_after, grant.session.valid_until),
            )
            self._validation_checked = True
        return signed

    def _refuse_targets_without_code(self, targets: Sequence[str | None], empty: set[str]) -> None:
        """Raise :class:`TargetWithoutCodeError` for the first call with calldata to an address in ``empty``."""
        for index, target in enumerate(targets):
            if target in empty:
                raise TargetWithoutCodeError(
                    f"call {index} sends calldata to {target}, which has no code on chain {self.grant.chain_id}: the "
                    "call would succeed and do nothing, and the operation's gas would be paid for nothing. Check the "
                    "address and that the contract is deployed on this chain (if an earlier call of the batch "
                    "deploys it, send with check=False)",
                    session_id="0x" + self.grant.session_id.hex(),
                    target=target,
                    call_index=index,
                )

    def _check_chain(self) -> None:
        """Refuse a grant signed for another chain than the node's (asked once; signing needs the id anyway): the
        module would refuse the owner's signature of it (AA23 InvalidOwnerSignature), or find no such session."""
        chain_id = self.network.chain_id
        if chain_id != self.grant.chain_id:
            raise ConfigurationError(
                f"session 0x{self.grant.session_id.hex()} was granted on chain {self.grant.chain_id}, but the node is "
                f"on chain {chain_id}: the module there would refuse the owner's signature of it (AA23 "
                f"InvalidOwnerSignature). Connect to chain "
                f"{self.grant.chain_id}'s node and bundler, or ask the owner for a grant on chain {chain_id}"
            )

    def _cached_estimate(self, key: tuple[bytes, int, int, bool]) -> GasEstimate | None:
        cached = self._estimates.get(key)
        if cached is None or time.monotonic() - cached[0] > self.estimate_ttl:
            return None
        return cached[1]

    def _remember_estimate(self, key: tuple[bytes, int, int, bool], estimate: GasEstimate) -> None:
        now = time.monotonic()
        if len(self._estimates) >= _MAX_ESTIMATES:  # drop the expired ones, then the oldest
            fresh = {k: v for k, v in self._estimates.items() if now - v[0] <= self.estimate_ttl}
            self._estimates = dict(
                sorted(fresh.items(), key=lambda item: item[1][0])[-(_MAX_ESTIMATES // 2) :]
            )
        self._estimates[key] = (now, estimate)

    def _lane_nonce(self, nonce_key: int, chain_nonce: int) -> int:
        """The nonce for the lane's next operation: the chain's, or past the operations this instance sent
        that have not landed yet. Those are trusted for ``_PENDING_TRUST`` seconds after the last send: an
        operation a bundler dropped would otherwise leave every later nonce waiting on a gap."""
        sent = self._next_nonce.get(nonce_key)
        if sent is None or chain_nonce >= sent[0] or time.monotonic() - sent[1] > _PENDING_TRUST:
            self._next_nonce.pop(nonce_key, None)
            return chain_nonce
        return sent[0]

    def send(self, op: UserOperation) -> PendingUserOperation:
        """Send an operation made by :meth:`build`."""
        key = op.nonce >> 64
        try:
            with bundler_refusals(self.network, self.grant, None, op):
                pending = self._builder.send(op)
        except Exception:
            self._next_nonce.pop(key, None)  # ask the chain again next time
            raise
        after = max(self._next_nonce.get(key, (0, 0.0))[0], op.nonce + 1)
        self._next_nonce[key] = (after, time.monotonic())
        return pending

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
        return self.send_calls(_calls(calls, "execute_batch"), batch=True, check=check)

    # -- messages (ERC-1271) ----------------------------------------------------------------------------

    def _require_enabled_for_signing(self, typed: TypedData | None = None, permission_index: int = 0) -> None:
        """Refuse to sign while the session is not enabled on chain (:class:`~keyscope.errors.SessionRevokedError` when
        it is revoked, or its off-chain grant predates the account's epoch), and (for ``typed``) typed data whose verifying
        contract is now a module of the account (installed after the grant, or the grant would have been refused):
        the module refuses a session's signature to such a verifier. A co-signed session's co-signer, as the module
        holds it (the owner may have rotated or removed it), is read too. The questions ride in one batch of reads."""
        if not self.verify_on_chain:
            return
        calls: list[tuple[str, bytes]] = []
        status = not self._enabled
        if status:  # why not, too: revoked, or granted at an epoch the account has left
            calls.extend((self.network.module, data) for data in self._reads.flag_calls)
            calls.append((self.network.module, epoch_of_data(self.grant.account)))
        if self._reads.co_signer_call is not None:
            calls.append((self.network.module, self._reads.co_signer_call))
        target = None if typed is None else verifying_contract(typed)
        # the zero address (an eth_call without a sender) is not asked about, as the module does not ask: it runs no
        # code, and Nexus and the reference account report it as their empty hook slot's module
        targets = [] if target is None or target == ZERO_ADDRESS else [target]
        if not calls and not targets:
            return
        asked = read_asking_modules(self.network.chain, self.kind, self.grant.account, targets, calls)
        results = list(asked.reads.results)
        if self._reads.co_signer_call is not None:
            self._reads.co_signer = decode_co_signer(results.pop(), self.network.module)
        if status:
            active, revoked, epoch = results
            self._enabled = judge_status(
                self.grant,
                decode_bool(active),
                decode_bool(revoked),
                self._enabled,
                decode_epoch(epoch, self.network.module),
            )
            if not self._enabled:
                raise SessionError(
                    "the session is not enabled on chain yet, so verifiers would refuse its signatures: an "
                    "off-chain grant is stored by the session's first operation (send one first), or grant it on "
                    "chain",
                    "0x" + self.grant.session_id.hex(),
                )
        found = asked.verdict()
        if found is not None and found.unanswered:
            raise signature_refusal(
                self.grant,
                f"nothing was signed: the account {self.grant.account} gives no answer when asked "
                f"isModuleInstalled(1, {found.target}, 0x) (ERC-7579 has every account answer it), so the module "
                "cannot tell whether the typed data's verifying contract is one of its validators and refuses a "
                "session's signature to it",
                "ModuleQueryUnanswered",
                permission_index,
            )
        if found is not None:
            raise signature_refusal(
                self.grant,
                f"nothing was signed: the typed data's verifying contract {found.target} is a {found.module} module "
                f"of the account {self.grant.account}, and the module refuses a session's signature to any module of "
                "the account (modules take the account's signature as its owner's approval of their configuration)",
                "SignatureSenderForbidden",
                permission_index,
            )

    def _recheck_status(self) -> None:
        """Read the session's status again: raises :class:`~keyscope.errors.SessionRevokedError` when it is revoked or
        invalidated on chain."""
        self._read_state(None, status=True, clock=False)

    def _message_header(self, signed: bytes, message: object) -> bytes:
        """``who ‖ key or session id ‖ signatures`` for the ERC-7739 hash ``signed``."""
        grant = self.grant
        signature = self.key.sign_hash(signed)
        # None: not co-signed, or the owner removed the co-signer
        expected = expected_co_signer(grant, self._reads.co_signer)
        refuse_missing_co_signer(grant, self.co_signer, expected, "message")
        co_signature = (
            ask_co_signature(grant, self.co_signer, "message", signed, message=message, expected=expected)
            if expected is not None
            else b""
        )
        signer = Signer(grant.session_key, grant.session_id, self.co_signed, bool(co_signature))
        return signer.header(signature, co_signature or None)

    def sign_typed_data(self, data: Mapping[str, Any]) -> bytes:
        """Sign EIP-712 typed data (the JSON form ``eth_signTypedData_v4`` takes) as the account: the signature a
        verifier passes to the account's ``isValidSignature(hash, signature)`` with ``hash`` the typed data's digest
        (OpenZeppelin's SignatureChecker, Permit2, an EIP-2612 token).

        The session's signing permissions are checked first, as the module checks them: typed data of a domain and
        type it was not granted, or breaking a rule, raises :class:`~keyscope.message_signing.SignatureRefusedError`
        saying which permission and rule, and nothing is signed."""
        grant = self.grant
        checked = check_typed_data(
            grant.session, data, session_id="0x" + grant.session_id.hex(), now=self.now()
        )
        typed: TypedData = checked.data
        refuse_forbidden_verifier(grant, typed, checked.permission_index)
        self._require_enabled_for_signing(typed, checked.permission_index)
        permission = checked.permission
        signed = typed_data_sign_hash(
            permission.domain_separator,
            permission.contents_name,
            permission.contents_type,
            typed.struct_hash,
            account=grant.account,
            chain_id=grant.chain_id,
            module=grant.module,
        )
        body = encode_typed_data_signature(
            self._message_header(signed, data), permission.domain_separator, typed.type_hash, checked.frames
        )
        signature = self.kind.validator_erc1271_signature(grant.module, body)
        if self.verify_on_chain:
            require_account_accepts(
                self.network.chain,
                grant,
                typed.digest,
                signature,
                verifying_contract(typed),
                checked.permission_index,
                self._recheck_status,
            )
            if isinstance(self.kind, ERC7579AccountKind):  # how it frames ERC-1271 is assumed, not known: ask
                refuse_account_passing_another_sender(
                    self.network.chain, grant, typed.digest, signature, checked.permission_index
                )
        return signature

    def sign_in(
        self,
        domain: str,
        *,
        uri: str,
        statement: str | None = None,
        nonce: str | None = None,
        issued_at: str | None = None,
        expiration_time: str | None = None,
    ) -> tuple[str, bytes]:
        """Sign in to the website ``domain`` as the account (EIP-4361, Sign-In with Ethereum): returns the message
        and the signature the server checks through the account's ``isValidSignature`` (with the message's EIP-191
        hash). ``nonce`` is the server's (a random one by default), ``issued_at`` now by default."""
        message = sign_in_message(
            domain,
            self.grant.account,
            uri=uri,
            chain_id=self.grant.chain_id,
            statement=statement,
            nonce=nonce or secrets.token_hex(8),
            issued_at=issued_at
            or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            expiration_time=expiration_time,
        )
        return message, self.sign_in_message(message)

    def sign_in_message(self, message: str | bytes) -> bytes:
        """Sign an EIP-4361 message a website gave (its first line must name a website the session may sign in to,
        its second line the account), as the account."""
        grant = self.grant
        checked = check_sign_in(
            grant.session,
            message,
            account=grant.account,
            session_id="0x" + grant.session_id.hex(),
            now=self.now(),
        )
        self._require_enabled_for_signing()
        signed = personal_sign_hash(
            checked.message, account=grant.account, chain_id=grant.chain_id, module=grant.module
        )
        body = encode_sign_in_signature(
            self._message_header(signed, checked.message.decode(errors="replace")),
            checked.message,
            checked.first_line_length,
        )
        signature = self.kind.validator_erc1271_signature(grant.module, body)
        if self.verify_on_chain:
            require_account_accepts(
                self.network.chain,
                grant,
                checked.hash,
                signature,
                None,
                checked.permission_index,
                self._recheck_status,
            )
            if isinstance(self.kind, ERC7579AccountKind):  # how it frames ERC-1271 is assumed, not known: ask
                refuse_account_passing_another_sender(
                    self.network.chain, grant, checked.hash, signature, checked.permission_index
                )
        return signature
