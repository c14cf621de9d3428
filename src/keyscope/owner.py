"""The account owner's side: create the account, install the session module, grant and revoke sessions.

The owner signs once per grant. Off-chain (the default), the owner signs the session's EIP-712 typed data
and nothing is sent: the session key's first operation carries the signature and enables the session on
chain. On-chain, the owner sends one UserOperation calling ``enableSession``.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import BaseModel, PrivateAttr

from .accounts import MODULE_TYPE_VALIDATOR, AccountKind, Deployment, create_account_data
from .accounts.base import INSTALL_MODULE
from .accounts.capabilities import (
    EXECUTION_REVERTED,
    refuse_batch_mode,
    refuse_execute_from_elsewhere,
    refuse_silent_module_queries,
    refuse_user_op_validation,
    runs_batches_only,
    supports_execution_mode,
)
from .accounts.erc7579 import ERC7579AccountKind, MSAAccountKind
from .accounts.keyscope_account import KeyscopeAccountKind
from .accounts.modules import claimed_module, fallback_routes, initialised_question, read_asking_modules
from .accounts.premises import (
    refuse_broken_premises,
    refuse_install_on_broken_premises,
    warn_premises_unasked,
)
from .accounts.resolve import kind_named
from .accounts.verify import verify_owner_signature, verify_owner_validator
from .bundler.pending import PendingUserOperation
from .bundler.types import UserOperationReceipt
from .chain import Chain, node_request, read_many
from .clock import LAST_READABLE_TIME, utc_text, window_now
from .eip7702 import Authorization
from .endpoints import Endpoints
from .errors import (
    AccountSetupError,
    BadInputError,
    BundlerRejectedError,
    CallRevertedError,
    ConfigurationError,
    InvalidFieldsError,
    KeyscopeError,
    KeyscopeWarning,
    SessionRevokedError,
    SimulationRevertedError,
    UnknownOptionError,
    UnsupportedAccountError,
    shown,
)
from .execution import MODE_BATCH, Call, ExecuteDecodeError, decode_execute, encode_execute
from .grant import SessionGrant, refuse_forbidden_targets
from .grant_signature import check_grant_signature
from .hexutil import ZERO_ADDRESS, Address, keccak, to_address, to_bytes, to_int
from .limits import refuse_unusable_limits
from .module import (
    INVALIDATE_ALL_SESSIONS,
    answers_as_module,
    co_signer_of_data,
    decode_bool,
    decode_co_signer,
    decode_epoch,
    enable_session_data,
    epoch_of_data,
    module_answers,
    revoke_session_data,
    rotate_co_signer_data,
    session_flag_calls,
    signing_permission_data,
    signing_permission_is_live,
    target_of_live_session_data,
)
from .operations import (
    DEFAULT_OWNER_MAX_GAS_COST,
    OperationBuilder,
    prefund_refusal,
    refuse_owner_cost,
)
from .policy import Limits
from .report import SessionReport, StoreMarks, report_from_chain, unjudged
from .revert import decode_revert, describe_revert, grant_refusal_todo
from .session import Limit, Permission, Session, TypedDataPermission
from .signers import SignerLike, as_signer
from .signing import PLACEHOLDER_ECDSA, HashSigner
from .targets import (
    warn_about_approvals_that_add_up,
    warn_about_passing_for,
    warn_about_paymasters,
    warn_about_standing_approvals,
    warn_about_targets,
    warn_about_uncounted_assets,
)
from .token_facts import cached_contract_facts
from .userop import UserOperation

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .store import SessionStore

__all__ = [
    "DEFAULT_MAX_GAS_COST",
    "DEFAULT_VALID_FOR",
    "GrantRequest",
    "Owner",
    "PendingGrant",
    "SessionOptions",
    "session_window",
]

DEFAULT_MAX_GAS_COST = 5 * 10**16
"""The per-operation gas cost cap sessions get unless the owner chooses another: 0.05 ether."""

DEFAULT_VALID_FOR = 3600
"""How long a session lasts unless the owner says otherwise: one hour, in the SDK and the command line alike.
A session that never expires must be asked for (``never_expires=True``, ``--valid-for never``)."""


class GrantRequest(SessionGrant):
    """A session ready for the owner's one signature: the off-chain :class:`~keyscope.grant.SessionGrant` as it
    will be, without the signature. Show :attr:`typed_data` to the owner's wallet (``eth_signTypedData_v4``),
    then :meth:`complete` with the signature, which checks it.

    ``owner`` is the address of the owner's key, when known (it judges the signature while the account has no
    code); it is not part of the grant."""

    owner: Address | None = None
    _owner: Owner | None = PrivateAttr(default=None)

    def complete(
        self, owner_signature: bytes | str, *, network: Endpoints | None = None, check: bool = True
    ) -> SessionGrant:
        """The off-chain :class:`~keyscope.grant.SessionGrant` carrying ``owner_signature`` (bytes or hex, shaped
        for the account's ``isValidSignature``: what a wallet returns, for keyscope's account).

        The signature is checked first, as the module will check it (see :mod:`keyscope.grant_signature`): on a
        deployed account through its ERC-1271. On an account without code, a request made by
        :meth:`Owner.prepare_grant` in this process (and completed without ``network``) is checked against its
        owner's key, which that owner holds; with ``network`` (a request read back from JSON, whose :attr:`owner`
        anyone could have written), the account is asked all the same, created for one ``eth_call`` by the
        request's :attr:`factory` call (ERC-6492's deployless check); without either, only :attr:`owner` judges.
        Raises :class:`~keyscope.errors.InvalidGrantSignatureError` for a signature by another key or by none,
        :class:`~keyscope.errors.UnsupportedAccountError` for an account without code that cannot be created to
        be asked (no factory named, a factory call that reverts or creates another account), and
        :class:`~keyscope.errors.BadInputError` for a session that has ended since the request was made (a wallet
        that took longer than the session lasts: by the wall clock, which bundlers judge windows by).
        ``check=False`` skips the checks (for tests of what the chain does with a bad grant)."""
        signature = to_bytes(owner_signature, name="the owner's signature")
        if check:
            _refuse_ended_window(
                self.session,
                int(time.time()),
                clock="the wall clock",
                todo="the session ended while the request waited for the signature; prepare a new grant request",
            )
        grant = SessionGrant.model_construct(**{**self._fields(), "owner_signature": signature})
        if check:
            made_by = self._owner
            endpoints = network if network is not None else (made_by.network if made_by else None)
            create = False
            if made_by is not None and network is None:
                kind, deployed = made_by.kind, made_by.is_deployed()
            elif endpoints is not None:
                kind, deployed = endpoints.kind_for(self.account, named=self.account_kind), None
                # the owner field is only what the request says: the account judges, created if need be
                create = True
            else:
                kind, deployed = kind_named(self.account_kind), False
            check_grant_signature(
                grant,
                signature,
                kind=kind,
                owner=self.owner,
                endpoints=endpoints,
                deployed=deployed,
                create=create,
            )
        return grant

    def enabled_on_chain(self) -> SessionGrant:
        """The :class:`~keyscope.grant.SessionGrant` of this session once ``enableSession`` has landed."""
        return SessionGrant.model_construct(
            **{**self._fields(), "how": "onchain", "factory": None, "factory_data": b""}
        )

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SessionGrant.model_fields}


class PendingGrant:
    """An on-chain grant sent to the bundler: :meth:`wait` returns the :class:`SessionGrant` once included."""

    def __init__(self, pending: PendingUserOperation, request: GrantRequest) -> None:
        self.operation = pending
        self.request = request
        self.receipt: UserOperationReceipt | None = None

    @property
    def session_id(self) -> bytes:
        return self.request.session_id

    def wait(self, timeout: float = 60.0) -> SessionGrant:
        """Wait for the owner's operation; raises if it failed."""
        self.receipt = self.operation.wait(timeout)
        return self.request.enabled_on_chain()


def session_window(
    *,
    valid_for: float | None = None,
    valid_after: int = 0,
    valid_until: int | None = None,
    never_expires: bool = False,
    now: int | None = None,
) -> tuple[int, int]:
    """``(valid_after, valid_until)`` of a new session from the window options (see :meth:`Owner.session_for`).

    Without ``valid_for``, ``valid_until`` or ``never_expires``, the session lasts :data:`DEFAULT_VALID_FOR`
    seconds. ``valid_for`` counts from ``now`` (or from ``valid_after`` when that is later); ``now`` is needed
    only then; it is at least 1 second, and a fraction of a second past whole seconds is dropped. A session without
    end must be asked for with ``never_expires=True``."""
    if isinstance(valid_after, bool) or not isinstance(valid_after, int) or valid_after < 0:
        raise BadInputError(f"valid_after must be a unix time in seconds (0 = now), got {shown(valid_after)}")
    # a text such as "false" is truthy: it would grant a session without end
    if not isinstance(never_expires, bool):
        raise BadInputError(
            f"never_expires is True or False, got {shown(never_expires)}: pass never_expires=True for a session "
            "without end, or leave it out"
        )
    given = [
        name for name, value in (("valid_for", valid_for), ("valid_until", valid_until)) if value is not None
    ]
    if never_expires:
        if given:
            raise BadInputError(f"never_expires=True and {given[0]} contradict each other: give one of them")
        return _within_time_limit(valid_after, 0)
    if len(given) == 2:
        raise BadInputError("give valid_for or valid_until, not both")
    if valid_until is not None:
        if isinstance(valid_until, bool) or not isinstance(valid_until, int) or valid_until <= 0:
            hint = ": for a session without end, pass never_expires=True" if valid_until == 0 else ""
            raise BadInputError(f"valid_until must be a unix time in seconds, got {shown(valid_until)}{hint}")
        if valid_until <= valid_after:
            raise BadInputError(
                f"valid_until {valid_until} is not after valid_after {valid_after}: the session would never be "
                "valid"
            )
        return _within_time_limit(valid_after, valid_until)
    seconds = DEFAULT_VALID_FOR if valid_for is None else valid_for
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise BadInputError(f"valid_for must be a positive number of seconds, got {shown(seconds)}")
    if seconds < 1:  # the module counts whole seconds: 0.5 would end the session as it starts
        raise BadInputError(
            f"valid_for {shown(seconds)} is under a second, and session times are whole seconds: give at least 1 "
            "second"
        )
    if seconds >= _TIME_LIMIT:
        raise BadInputError(
            f"valid_for {shown(seconds)} is longer than the module can keep (its times end at 2**48 - 1, some nine "
            "million years from now): for a session without end, pass never_expires=True"
        )
    if now is None:
        raise BadInputError("valid_for counts from now: give now= (unix seconds)")
    return _within_time_limit(valid_after, max(now, valid_after) + int(seconds))


_TIME_LIMIT = 2**48
"""The module keeps a session's validAfter and validUntil in 48 bits: times from here on cannot be signed."""


def _within_time_limit(valid_after: int, valid_until: int) -> tuple[int, int]:
    """``(valid_after, valid_until)``, or a :class:`BadInputError` when either is past what the module keeps."""
    for name, moment in (("valid_after", valid_after), ("valid_until", valid_until)):
        end = ", or never_expires=True for a session without end" if name == "valid_until" else ""
        if moment >= _TIME_LIMIT:
            raise BadInputError(
                f"{name} {moment} is past the module's last time (2**48 - 1, some nine million years from now): "
                f"give a nearer time{end}"
            )
        if moment > LAST_READABLE_TIME:
            raise BadInputError(
                f"{name} {moment} is after the year 9999: was it given in milliseconds? Session times are unix "
                f"seconds ({moment // 1000} seconds would be {utc_text(moment // 1000)}); give seconds{end}"
            )
    return valid_after, valid_until


def _gas_cap_option(value: object) -> int:
    """The ``max_gas_cost`` option as written: wei as an integer (or its decimal or 0x-hex text). A bool or a float
    is refused: ``False`` and ``0.0`` would read as 0, no cap at all, and a float holds no exact number of wei."""
    if (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str):
        try:
            return to_int(value, name="max_gas_cost")
        except BadInputError:
            pass
    raise BadInputError(
        "max_gas_cost is wei as an integer (e.g. 5 * 10**16 for 0.05 ether; 0 for no cap): the most one "
        f"operation may cost in gas; got {shown(value)}"
    )


def _co_signer_option(value: object, none: str) -> str:
    """The address of a co-signer written as ``value``; the zero address, which a grant carries for "no co-signer",
    is refused rather than read as none (``none`` says how to ask for none)."""
    address = to_address(value, name="co-signer")
    if address == ZERO_ADDRESS:
        raise BadInputError(
            f"co_signer is the zero address, which no key signs as and which the grant reads as no co-signer: give "
            f"the co-signer key's address, or {none}"
        )
    return address


_ENDED_TODO = "give a valid_until in the future, or valid_for=SECONDS; nothing was signed"
_WINDOW_CLOCK = "the later of the chain's latest block time and the wall clock"


def _refuse_ended_window(
    session: Session, now: int, *, clock: str = _WINDOW_CLOCK, todo: str = _ENDED_TODO
) -> None:
    """Raise :class:`BadInputError` when ``session`` ended before ``now`` (read on ``clock``: by default the later of
    the chain's latest block time and the wall clock, :func:`~keyscope.clock.window_now`), saying ``todo``. The
    module reads no clock: it enables such a session, on chain or at its first operation, but the EntryPoint refuses
    every operation of it as expired (AA22), so the grant could never be used."""
    end = session.valid_until
    if end and end < now:
        raise BadInputError(
            f"valid_until {end} ({utc_text(end)}) is already past: it is {now - end}s before now ({utc_text(now)}, "
            f"{clock}). The module would enable this session, but the EntryPoint would refuse every operation of it "
            f"as expired (AA22): {todo}"
        )


class SessionOptions(TypedDict, total=False):
    """The options of a session, the keyword arguments :meth:`Owner.session_for` takes and :meth:`Owner.grant`,
    :meth:`Owner.prepare_grant` and :meth:`Owner.grant_onchain` pass on to it (see :meth:`Owner.session_for`
    for their meaning). Left out, each has the default written beside it."""

    valid_for: float | None  # None: DEFAULT_VALID_FOR, unless valid_until or never_expires is given
    valid_after: int  # 0: from now
    valid_until: int | None  # None: counted from valid_for
    never_expires: bool  # False
    max_gas_cost: int  # DEFAULT_MAX_GAS_COST
    paymasters: Iterable[Any]  # none
    salt: int | None  # None: random
    limits: Iterable[Limit]  # none
    gas_budget: int | None  # None: no gas budget
    typed_data: Iterable[TypedDataPermission]  # none
    sign_in: Iterable[str]  # none
    co_signer: Any  # None: no co-signer


_NESTED_EXECUTES = 4
"""How deep :meth:`Owner.build` looks into the account's ``execute`` calls of itself for an install of the session
module (attack 440)."""


def _refuse_offchain_signing_only(session: Session) -> None:
    """Refuse an off-chain grant of ``session`` when it has signing permissions only: the session's first operation
    stores an off-chain grant, and a session allowed no call makes none, so the owner would sign a grant that could
    never be used."""
    if not session.permissions:
        raise BadInputError(
            "this session has signing permissions only: an off-chain grant is stored by the session's first "
            "operation, and a session allowed no call makes none, so the grant could never be used. Grant it "
            "on chain (owner.grant(..., onchain=True)); nothing was signed"
        )


def _check_options(options: SessionOptions) -> None:
    """Refuse an option :class:`SessionOptions` does not name (a typo), as Python refuses an unknown keyword."""
    for name in sorted(options.keys() - SessionOptions.__optional_keys__):
        known = ", ".join(sorted(SessionOptions.__optional_keys__))
        raise UnknownOptionError(
            f"unexpected keyword argument {shown(name)}: the session options are {known}"
        )
    for name, example in _LIST_OPTIONS.items():
        value = options.get(name, ())
        # one item where a list is asked for: a text would be read letter by letter, a model field by field
        if isinstance(value, (str, bytes, Mapping, BaseModel)) or not isinstance(value, Iterable):
            raise BadInputError(
                f"{name} takes a list, got {type(value).__name__} {shown(value)}: give {example}"
            )


_LIST_OPTIONS = {
    "paymasters": "paymasters=[SPONSOR_ADDRESS]",
    "sign_in": 'sign_in=["app.example.com"]',
    "typed_data": "typed_data=[Policy.typed_data(...)]",
    "limits": "limits=[Limits.native(...)]",
}
"""The session options that take a list, and how to write one."""


def _counts_from_now(options: SessionOptions) -> bool:
    """Whether the session's window is counted from now (a duration, not an end or no end)."""
    return options.get("valid_until") is None and not options.get("never_expires", False)


_REVOKE_FIRST = (
    "revoke that session first (owner.revoke, or `ape run revoke ID`), or grant to a new session key; nothing was "
    "signed"
)


def _module_target_message(target: str, account: str, what: str) -> str:
    return (
        f"a permission targets {target}, a {what} module of the account {account}: modules keep their "
        "configuration per calling account, so a session could reconfigure it (an owner validator's onInstall "
        "would replace the owner). The module refuses such grants; grant permissions on other contracts only"
    )


def _claimed_module_message(target: str, account: str, what: str) -> str:
    return (
        f"a permission targets {target}, which says it is a {what} module initialised for the account {account} "
        "(isModuleType and isInitialized answer true): it keeps configuration for the account and takes the "
        "account's calls to change it, so a session could reconfigure or remove it. The account does not list it as "
        "installed (Kernel v3.1 answers no hook question; Kernel's policies and signers and Safe7579's per-selector "
        "hooks cannot be asked), so the module cannot refuse the grant on chain: keyscope refuses it here. Grant "
        "permissions on other contracts only; nothing was signed or sent"
    )


def _fallback_target_message(target: str, selector: bytes, account: str) -> str:
    return (
        f"a permission targets {target} with selector 0x{selector.hex()}, and the account {account} routes that "
        "selector to it as its fallback handler (isModuleInstalled(3, target, selector) answers true): a handler "
        "takes the account's own caller from the calldata's last 20 bytes, which a session's direct call could set "
        "to the account or the EntryPoint, posing as them for what the handler keeps for the account. The module "
        "refuses such grants (PermissionTargetIsModule, module type 3); call the function through the account "
        "instead, or grant the handler only selectors the account does not route to it"
    )


_INVALID_CO_SIGNER = keccak(b"InvalidCoSigner(address)")[:4]
"""The module's refusal of a co-signer that is the session's own key (or no key)."""

_OWNER_EXECUTION_HINT = (
    "validation passed (the owner's signature was accepted): the call reverted inside the account or its target; "
    "check the call's arguments and the target"
)


def _owner_execution_reverted(error: BundlerRejectedError) -> BundlerRejectedError:
    """The bundler's refusal of an owner's operation whose execution reverted in simulation, with the owner's hint
    instead of a session's (an owner's operation passes no session policy)."""
    if isinstance(error, SimulationRevertedError):
        return SimulationRevertedError(
            error.method,
            error.code,
            error.rpc_message,
            error.data,
            revert_data=error.revert_data,
            revert_description=error.revert_description,
            hint=_OWNER_EXECUTION_HINT,
        )
    return BundlerRejectedError(
        error.method, error.code, error.rpc_message, error.data, hint=_OWNER_EXECUTION_HINT
    )


def _refuse_own_signing_domains(signing: Sequence[TypedDataPermission], account: str, module: str) -> None:
    """Raise :class:`BadInputError` if a permission of ``signing`` is in the domain of ``account`` or of the session
    ``module``: the module refuses to enable such a session whatever the account says (``ForbiddenSigningDomain``)."""
    named = {account: "the account itself", module: "the session module"}
    for index, permission in enumerate(signing):
        if not isinstance(permission, TypedDataPermission) or not permission.domain_fields & 0x08:
            continue  # refused with the session's other fields (Owner.session_for); no verifying contract
        verifying = to_address(permission.verifying_contract)
        what = named.get(verifying)
        if what is not None:
            raise BadInputError(
                f"signing permission {index} ({permission.describe}) is in the domain of {what} ({verifying}): the "
                "account and the session module take signatures in their own domain as the owner's approval of how "
                "the account is controlled (a module to install, a session to enable), so the session could approve "
                "them as the owner. The module refuses such grants (ForbiddenSigningDomain); grant signing "
                "permissions in other domains only"
            )


def _signing_domains(signing: Sequence[TypedDataPermission], account: str) -> dict[str, int]:
    """The verifying contracts the domains of ``signing`` name, each with the index of the first permission naming
    it, as the module asks the account about them when it enables a session: not the zero address (the module does
    not ask about it: Nexus and the reference account report it as their empty hook slot's module) nor the account
    (the module refuses it whatever the account says: :func:`_refuse_own_signing_domains`)."""
    domains: dict[str, int] = {}
    for index, permission in enumerate(signing):
        if not isinstance(permission, TypedDataPermission):
            continue  # refused with the session's other fields (Owner.session_for)
        verifying = to_address(permission.verifying_contract)
        if permission.domain_fields & 0x08 and verifying not in (ZERO_ADDRESS, account):
            domains.setdefault(verifying, index)
    return domains


def _signing_domain_message(index: int, permission: TypedDataPermission, account: str, what: str) -> str:
    verifying = to_address(permission.verifying_contract)
    return (
        f"signing permission {index} ({permission.describe}) is in the domain of {verifying}, a {what} module of the "
        f"account {account}: modules take the account's signature as its owner's approval of their configuration, "
        "so the session could approve another module's configuration (a session for another key) as the owner. "
        "The module refuses such grants (ForbiddenSigningDomain); grant signing permissions in other domains only"
    )


def _claims(addresses: Sequence[str], domains: Mapping[str, int]) -> list[str]:
    """The contracts attack 266's question is asked of: a grant's call targets, then its signing domains not among
    them (:func:`~keyscope.accounts.modules.claimed_module`)."""
    return [*addresses, *(d for d in domains if d not in addresses)]


def module_claims(session: Session, account: str) -> list[str]:
    """The contracts a grant of ``session`` on ``account`` asks whether they say they are a module initialised for
    the account (attack 266), as :meth:`Owner.prepare_grant` asks them: its call targets other than the account,
    and the verifying contracts its signing permissions' domains name (not the zero address nor the account)."""
    account = to_address(account)
    addresses = sorted({p.target for p in session.permissions if p.target != account})
    return _claims(addresses, _signing_domains(session.typed_data_permissions, account))


def refuse_used_authorization_nonce(chain: Chain, auth: Authorization, authority: str) -> None:
    """Refuse an authorization of ``authority`` naming a nonce its EOA has used already: nodes skip it."""
    used = int(node_request(chain, "eth_getTransactionCount", [authority, "latest"]), 16)
    if auth.nonce < used:
        raise BadInputError(
            f"the authorization of {authority} names nonce {auth.nonce}, which the EOA has used already (its "
            f"next nonce is {used}): nodes skip it; sign it again at nonce {used}"
        )


def _flatten(permissions: Iterable[Permission | Sequence[Permission]]) -> tuple[Permission, ...]:
    """Permissions, with groups (tuples or lists of them, as ``Policy.erc20_allowance`` returns) laid out flat.

    One permission, a text or a mapping where the list of them is asked for is refused: a permission (a model)
    would be read field by field, and the error would name its first field's name as the permission given."""
    if isinstance(permissions, (Permission, str, bytes, Mapping, BaseModel)) or not isinstance(
        permissions, Iterable
    ):
        raise BadInputError(
            f"the permissions take a list, got {type(permissions).__name__} {shown(permissions)}: give "
            "[Policy.call(...)], a list of the permissions, even for one"
        )
    flat: list[Permission] = []
    for item in permissions:
        if isinstance(item, Permission):
            flat.append(item)
        elif isinstance(item, (tuple, list)):
            flat.extend(_flatten(item))
        else:
            raise BadInputError(f"a grant takes Policy permissions, got {type(item).__name__}: {shown(item)}")
    return tuple(flat)


class Owner:
    """The owner of a smart account, holding the owner's key (any :class:`~keyscope.signing.HashSigner`).

    With ``account`` None, the account is the one created for this owner and ``salt``, with the session module
    installed at creation (so its first operation can already be a session's): the kind's own creation path
    when the network's :class:`~keyscope.accounts.AccountKind` has one (``kind.deployment``), else the keyscope
    account made by ``network.factory``.

    :attr:`kind` is the account's adapter: the network's, or found out (:meth:`Network.kind_for
    <keyscope.network.Network.kind_for>`: a deployed account's ``accountId()``, else what ``network.factory``
    creates). On a deployed account, the owner's first operation checks that the adapter's owner validator is
    installed, and every off-chain grant that the account accepts the owner's signature, so that a wrong kind
    or validator is reported before anything is sent (:class:`~keyscope.errors.AccountSetupError`).
    """

    def __init__(
        self,
        network: Endpoints,
        signer: SignerLike,
        account: str | None = None,
        *,
        salt: int = 0,
        max_gas_cost: int = DEFAULT_OWNER_MAX_GAS_COST,
    ) -> None:
        self.network = network
        self.signer: HashSigner = as_signer(signer, role="owner")
        self.max_gas_cost = max_gas_cost
        if isinstance(salt, bool) or not isinstance(salt, int) or not 0 <= salt < 2**256:
            raise BadInputError(f"salt is a whole number from 0 to 2**256 - 1, got {shown(salt)}")
        self._granted: dict[bytes, SessionGrant] = {}
        self.salt = salt
        self._builder = OperationBuilder(network)
        self._factory_data = b""
        self._deployment: Deployment | None = None
        self._owner_validator_checked = False
        self._runs_batches_only: bool | None = None
        self.kind: AccountKind = self._resolve_kind(account)
        if account is None:
            deployment = self.kind.deployment(network.chain, self.signer.address, self.creation_modules, salt)
            if deployment is not None:
                self._deployment = deployment
                self._factory_data = deployment.factory_data
                self.account = to_address(deployment.address)
                return
            if network.factory is None:
                raise ConfigurationError(
                    "no account given and no factory configured: pass account=, or connect(..., factory=...) "
                    "to create keyscope accounts"
                )
            self._factory_data = create_account_data(self.signer.address, self.creation_modules, salt)
            self.account = self._counterfactual_address()
        else:
            self.account = to_address(account, name="account")

    def __repr__(self) -> str:
        return f"Owner({self.signer.address} of {self.account})"

    def _resolve_kind(self, account: str | None) -> AccountKind:
        """The account's adapter (:meth:`Endpoints.kind_for <keyscope.endpoints.Endpoints.kind_for>`)."""
        return self.network.kind_for(account)

    # -- the account --------------------------------------------------------------------------------

    @property
    def creation_modules(self) -> list[tuple[int, str, bytes]]:
        """Modules the factory installs when it creates the account: the session module."""
        return [(MODULE_TYPE_VALIDATOR, self.network.module, b"")]

    @property
    def factory(self) -> str | None:
        """The factory that creates the account, when keyscope creates it."""
        if not self._factory_data:
            return None
        return self._deployment.factory if self._deployment is not None else self.network.factory

    @property
    def factory_data(self) -> bytes:
        """The factory call creating the account (empty for an account given by address)."""
        return self._factory_data

    def _counterfactual_address(self) -> str:
        assert self.network.factory is not None
        data = create_account_data(self.signer.address, self.creation_modules, self.salt, view=True)
        return to_address(self.network.chain.call(self.network.factory, data)[12:32])

    def is_deployed(self) -> bool:
        """Whether the account has code yet (once it has, the node is not asked again)."""
        if self.account in self._builder.deployed:
            return True
        deployed = self.network.is_deployed(self.account)
        if deployed:
            self._builder.deployed.add(self.account)
        return deployed

    def supports_sessions(self) -> bool:
        """Whether the session module is installed (or will be, by the factory, when the account is created)."""
        if self.is_deployed():
            return self.network.supports_sessions(self.account)
        return bool(self._factory_data)

    def sign_typed_data(self, data: Mapping[str, Any]) -> bytes:
        """Sign EIP-712 typed ``data`` (``eth_signTypedData_v4``'s JSON form) in the account's name: the signature
        a verifier (Permit2, an EIP-2612 token, OpenZeppelin's SignatureChecker) passes to the account's
        ``isValidSignature`` with ``data``'s digest. For keyscope's account it is an ERC-7739 nested signature,
        bound to this account: worthless for the owner's other accounts and for the owner's own address."""
        return self.kind.owner_typed_data_signature(
            self.signer, data, account=self.account, chain_id=self.network.chain_id
        )

    def sign_message(self, message: bytes | str) -> bytes:
        """Sign a ``personal_sign`` ``message`` (text is UTF-8) in the account's name: the signature a verifier
        passes to the account's ``isValidSignature`` with the message's EIP-191 hash (an EIP-4361 sign-in, say).
        For keyscope's account it is an ERC-7739 nested signature, bound to this account."""
        raw = message.encode() if isinstance(message, str) else to_bytes(message, name="message")
        return self.kind.owner_message_signature(
            self.signer, raw, account=self.account, chain_id=self.network.chain_id
        )

    def execute(
        self, calls: Call | Sequence[Call], *, eip7702_auth: Authorization | None = None
    ) -> PendingUserOperation:
        """Send an owner-signed operation making ``calls`` (creating the account first if needed). An EOA's
        operation that delegates it carries its EIP-7702 authorization (``eip7702_auth``, EntryPoint v0.8).

        A call among ``calls`` installing the session module on this account (its ``installModule`` naming the
        module) is asked first what :meth:`install_sessions` asks (see :meth:`build`)."""
        return self.send(self._build_or_refuse_prefund(calls, eip7702_auth=eip7702_auth))

    def _installs_session_module(self, calls: Sequence[Call], depth: int = 0) -> bool:
        """Whether one of ``calls`` is this account's ``installModule`` of the session module, of any module type (the
        module's address read from the low 20 bytes of its word, as an account that does not check the upper bytes
        would read it), itself or in a call of the account's own ``execute`` it makes (to a few levels)."""
        module = bytes.fromhex(self.network.module[2:])
        account = to_address(self.account)
        for call in calls:
            data = bytes(call.data)
            if to_address(call.target) != account:
                continue
            if data[:4] == INSTALL_MODULE and data[48:68] == module:
                return True
            if depth < _NESTED_EXECUTES:
                try:
                    inner = decode_execute(data).calls
                except ExecuteDecodeError:
                    continue
                if self._installs_session_module(inner, depth + 1):
                    return True
        return False

    def _build_or_refuse_prefund(
        self, calls: Call | Sequence[Call], *, eip7702_auth: Authorization | None = None
    ) -> UserOperation:
        """:meth:`build`, with a bundler's AA21 refusal at gas estimation (an account that cannot pay) raised as
        :class:`~keyscope.errors.InsufficientPrefundError`, with the account's balance and deposit."""
        try:
            return self.build(calls, eip7702_auth=eip7702_auth)
        except BundlerRejectedError as error:
            refusal = prefund_refusal(self.network, self.account, error, None)
            if refusal is None:
                raise
            raise refusal from error

    def send(self, op: UserOperation) -> PendingUserOperation:
        """Send an operation :meth:`build` made. An account that cannot pay for it (AA21) gets
        :class:`~keyscope.errors.InsufficientPrefundError` with its balance, its deposit and the prefund."""
        try:
            return self._builder.send(op)
        except BundlerRejectedError as error:
            refusal = prefund_refusal(self.network, self.account, error, op)
            if refusal is None:
                raise
            raise refusal from error

    @property
    def max_gas_cost(self) -> int:
        """The most one of the owner's operations may cost in gas, in wei (default
        :data:`~keyscope.operations.DEFAULT_OWNER_MAX_GAS_COST`, 0.1 ether; 0 for no cap): an operation the bundler
        prices higher (its prefund: every gas limit times maxFeePerGas) is refused before the owner signs it
        (:class:`~keyscope.errors.OwnerGasCostTooHighError`)."""
        return self._max_gas_cost

    @max_gas_cost.setter
    def max_gas_cost(self, value: int) -> None:
        self._max_gas_cost = _gas_cap_option(value)

    def build(
        self, calls: Call | Sequence[Call], *, eip7702_auth: Authorization | None = None
    ) -> UserOperation:
        """The owner-signed operation :meth:`execute` sends, ready to send (nonce, fees and gas filled in).

        A call among ``calls`` installing the session module on this account (its ``installModule`` naming the
        module) is asked first what :meth:`install_sessions` asks: an account that would not hand the EntryPoint the
        module's answer as it is is refused with :class:`~keyscope.errors.AccountSetupError`, nothing signed."""
        kind = self.kind
        call_list = [calls] if isinstance(calls, Call) else list(calls)
        if self._installs_session_module(call_list):
            self._refuse_install_on_broken_premises()
        call_data = encode_execute(call_list, batch=True if self._batches_only(call_list) else None)
        draft = self._builder.draft(
            self.account, call_data, kind.nonce_key(None), self.factory, self._factory_data
        )
        if eip7702_auth is not None:
            self._check_authorization(eip7702_auth)
            draft = dataclasses.replace(draft, eip7702_auth=eip7702_auth)
        if draft.factory is not None and self._deployment is not None:  # this operation creates the account
            draft = dataclasses.replace(draft, call_data=kind.creation_call_data(self._deployment, call_data))
        first_check = (
            not self._owner_validator_checked
            and draft.factory is None
            and eip7702_auth is None
            and self._deployed_or_refused()
        )
        if first_check:
            verify_owner_validator(self.network.chain, kind, self.account)
            self.network.check_entry_point(self.account)
        try:
            op = self._builder.prepare(draft, kind.owner_user_op_signature(PLACEHOLDER_ECDSA)).op
        except BundlerRejectedError as error:
            if len(call_list) > 1 and draft.factory is None:  # an account that runs no batch: said as such
                refuse_batch_mode(self.network.chain, kind, self.account, MODE_BATCH)
            if (
                error.code == EXECUTION_REVERTED
                and draft.factory is None
                and isinstance(kind, ERC7579AccountKind)
            ):
                # an account whose execute the EntryPoint may not call: said as such, not as a target's revert
                refuse_execute_from_elsewhere(
                    self.network.chain,
                    kind,
                    self.account,
                    self.network.entry_point,
                    call_data,
                )
            if (
                error.code == EXECUTION_REVERTED
            ):  # no session policy in an owner's operation: not said to pass
                raise _owner_execution_reverted(error) from error
            raise
        refuse_owner_cost(op, self.max_gas_cost)
        signed = self._builder.sign(
            op, lambda digest: kind.owner_user_op_signature(self.signer.sign_hash(digest))
        )
        if first_check:
            if isinstance(kind, ERC7579AccountKind):  # its validator selection is assumed, not known: ask
                refuse_user_op_validation(
                    self.network.chain,
                    kind,
                    self.network.entry_point,
                    signed,
                    self._builder.user_op_hash(signed),
                    "the owner's operation",
                )
            self._owner_validator_checked = True
        return signed

    def _batches_only(self, calls: Sequence[Call]) -> bool:
        """Whether one call goes to the account as a batch of one: an account the generic adapter drives (whose
        modes are not known) that says it runs batches but no single call. Asked once the account has code."""
        if len(calls) != 1 or not isinstance(self.kind, ERC7579AccountKind):
            return False
        if self._runs_batches_only is None and self.is_deployed():
            self._runs_batches_only = runs_batches_only(self.network.chain, self.account)
        return bool(self._runs_batches_only)

    def _deployed_or_refused(self) -> bool:
        """Whether the account has code; raises :class:`~keyscope.errors.UnsupportedAccountError` when it has none
        and nothing creates it (no factory, no delegation): every operation would fail with AA20."""
        if self.is_deployed():
            return True
        self._refuse_uncreatable()
        return False

    def _refuse_uncreatable(self) -> None:
        """Raise :class:`~keyscope.errors.UnsupportedAccountError` when nothing creates the account (it has no
        code: the caller knows)."""
        if not self._factory_data and self._needs_code():
            raise UnsupportedAccountError(
                f"{self.account} has no code and nothing creates it ({self._why_nothing_creates_it()}), so the "
                "EntryPoint would refuse every operation (AA20); nothing was signed or sent. Deploy the account "
                "first, or give the address of an account that exists"
            )

    def _why_nothing_creates_it(self) -> str:
        """Why no factory creates the account, an address given with no code there: keyscope knows of no factory for
        it, or (a factory given to connect) the factory's account of this owner is at another address."""
        unknown = f"keyscope does not know how to create a {self.kind.name!r} account at this address"
        if self.network.factory is None or self.kind.name != KeyscopeAccountKind.name:
            return f"no factory: {unknown}"
        try:
            own = self._counterfactual_address()
        except KeyscopeError:  # the factory cannot say: the words without it
            return f"no factory: {unknown}"
        return (
            f"the factory {self.network.factory} creates the keyscope account of the owner {self.signer.address} "
            f"at {own} (salt {self.salt}), not at this address: leave the account out, net.owner(key), for that "
            "one"
        )

    def _check_authorization(self, auth: Authorization) -> None:
        """Refuse, before it leaves the SDK, an EIP-7702 authorization the account's operation cannot carry: one
        valid on every chain (chain id 0, which anyone could replay wherever the EOA's nonce matches), for another
        chain, signed by another key than the account's, or at a nonce the account has used already."""
        account = self.account
        self._check_authorization_chain(auth)
        authority = auth.authority()
        if authority != account:
            raise BadInputError(
                f"the authorization is signed by {authority}, not by {account}: it would delegate {authority}, "
                f"not the account; sign it with {account}'s own key"
            )
        chain = self.network.chain
        if (
            getattr(chain, "request", None) is None
        ):  # a chain that cannot ask the EOA's nonce: the node judges it
            return
        refuse_used_authorization_nonce(chain, auth, authority)

    def _check_authorization_chain(self, auth: Authorization) -> None:
        """Refuse an authorization valid on every chain (chain id 0) or made for another chain than this network's."""
        account, chain_id = self.account, self.network.chain_id
        if auth.chain_id == 0:
            raise BadInputError(
                f"the authorization delegating {account} to {auth.address} is for chain id 0, valid on every chain "
                "where the EOA's nonce matches, so anyone holding it could replay it there: keyscope neither signs "
                f"nor sends one; sign it for chain {chain_id} only"
            )
        if auth.chain_id != chain_id:
            raise BadInputError(
                f"the authorization delegating {account} to {auth.address} is for chain {auth.chain_id}, not this "
                f"network's chain {chain_id}: nodes skip it here; sign it for chain {chain_id}"
            )

    def _needs_code(self) -> bool:
        """Whether an operation of this owner needs the account to have code (an EOA's does not: it delegates)."""
        return True

    def install_sessions(self) -> PendingUserOperation | None:
        """Install the session module if it is not installed yet; None when there is nothing to do.

        On an ERC-7579 account driven by an adapter made for no vendor's account, the account is first asked whether
        it hands the EntryPoint its validators' validation data as it is
        (:func:`~keyscope.accounts.premises.refuse_install_on_broken_premises`): one that does not is refused with
        :class:`~keyscope.errors.AccountSetupError`, nothing sent."""
        if self.supports_sessions():
            return None
        if not self.is_deployed():
            raise UnsupportedAccountError(
                f"{self.account} has no code and keyscope does not know how to create it: deploy it first"
            )
        net = self.network
        refuse_silent_module_queries(net.chain, self.kind, self.account, net.module)
        # build() asks the account's premises of the install call below (attacks 417 and 440)
        return self.execute(self.kind.install_validator_call(self.account, net.module))

    def _refuse_install_on_broken_premises(self) -> None:
        """Before an operation installing the session module on this account is signed: on an account the premises
        are asked of (:meth:`_asks_premises`), deployed and without the module yet, the questions of
        :func:`~keyscope.accounts.premises.refuse_install_on_broken_premises`, whichever call of the owner's installs
        it (:meth:`install_sessions`, or the owner's own ``installModule`` call through :meth:`execute` or
        :meth:`build`, attack 440)."""
        if not self._asks_premises() or not self.is_deployed() or self.supports_sessions():
            return
        net = self.network
        # an account trusting another EntryPoint is said to be one first, as a grant says it: the questions below
        # are asked from this network's EntryPoint, which such an account does not answer
        net.check_entry_point(self.account)
        # an account taking its validators' refusal for a yes runs anyone's operation naming the module once it
        # is installed, no session granted (attack 417): asked before the install is signed, as a grant is
        refuse_install_on_broken_premises(net.chain, self.kind, self.account, net.module, net.entry_point)

    def uninstall_sessions(self) -> PendingUserOperation:
        """Uninstall the session module: every session of the account dies, for good.

        One operation calls the module's ``invalidateAllSessions()``, then uninstalls it. Kernel, Nexus and
        Safe7579 ignore a failing ``onUninstall``, and a bundler's gas estimate cannot see that failure: an
        ``onUninstall`` short of gas would leave the sessions alive for a later reinstall. Invalidating first,
        in a call whose failure fails the operation, rules that out.

        An account that runs no batch (``supportsExecutionMode`` says no) gets two operations: the invalidation,
        waited for, then the uninstall, whose pending operation is returned.
        """
        module = self.network.module
        invalidate = Call(module, 0, INVALIDATE_ALL_SESSIONS)
        uninstall = self.kind.uninstall_validator_call(self.account, module)
        if (
            self.is_deployed()
            and supports_execution_mode(self.network.chain, self.account, MODE_BATCH) is False
        ):
            self.execute(invalidate).wait()
            return self.execute(uninstall)
        return self.execute([invalidate, uninstall])

    # -- grants -------------------------------------------------------------------------------------

    def epoch(self) -> int:
        """The account's current epoch at the module (enable signatures are bound to it)."""
        with module_answers(self.network.chain, self.network.module):
            answer = self.network.chain.call(self.network.module, epoch_of_data(self.account))
        return decode_epoch(answer, self.network.module)

    def _grant_state(
        self,
        clock: bool,
        targets: Sequence[Permission] = (),
        signing: Sequence[TypedDataPermission] = (),
        *,
        key: str | None = None,
        sign_in: Sequence[str] = (),
    ) -> tuple[int, bool, int | None, dict[str, bytes], bool]:
        """What a grant needs from the chain, in one round trip: the account's epoch at the module, whether
        the account has code, (``clock``) the latest block's time, the code of each permission's target, and
        whether the account has any of the targets, or of the verifying contracts the ``signing`` permissions'
        domains name, installed as a module (validator, executor, hook, pre-validation hook, Safe module), or routes a permission's
        selector to its target as its fallback handler: a grant on one is refused, as the module refuses it on chain
        (``PermissionTargetIsModule``, ``ForbiddenSigningDomain``). A signing domain
        that is the account's or the session module's is refused before anything is read.

        The last value says whether the grant may meet a permission the module holds already (a target some session
        not revoked may call, or a signing permission of ``key``, the session key, live): the module then refuses a
        repeated one, which :meth:`_refuse_what_enabling_refuses` asks it about."""
        net = self.network
        _refuse_own_signing_domains(signing, self.account, net.module)
        known = self.account in self._builder.deployed
        addresses = sorted({p.target for p in targets if p.target != self.account})
        domains = _signing_domains(signing, self.account)
        asked_about = sorted({*addresses, *domains})
        epoch_call = (net.module, epoch_of_data(self.account))
        live_targets = [(net.module, target_of_live_session_data(self.account, a)) for a in addresses]
        live_signing = (
            [(net.module, data) for data in signing_permission_data(self.account, key, signing, sign_in)]
            if key is not None
            else []
        )
        code_of = addresses if known else [self.account, *addresses]
        # the module asks about a fallback handler per (target, selector): the account routes selectors to handlers
        routed = fallback_routes(targets, self.account)
        # whether a target or domain says it is a module initialised for the account (asked in the same batch)
        claims = _claims(addresses, domains)
        initialised = initialised_question(self.account)
        with module_answers(net.chain, net.module):
            asked = read_asking_modules(
                net.chain,
                self.kind,
                self.account,
                asked_about,
                [epoch_call, *live_targets, *live_signing],
                codes=code_of,
                timestamp=clock,
                fallbacks=routed,
                optional=[(claim, initialised) for claim in claims],
            )
        (epoch, *flags), codes, now = asked.reads
        occupied = any(decode_bool(flag) for flag in flags[: len(live_targets)]) or any(
            signing_permission_is_live(flag) for flag in flags[len(live_targets) :]
        )
        if not known:
            deployed, codes = bool(codes[0]), codes[1:]
        else:
            deployed = True
        if deployed:
            self._builder.deployed.add(self.account)
            found = asked.verdict()
            if found is not None and found.unanswered:
                refuse_silent_module_queries(net.chain, self.kind, self.account, found.target)
                raise AccountSetupError(  # it answered since: the module would have refused the grant
                    f"the account {self.account} gave no answer when asked isModuleInstalled(1, {found.target}, "
                    "0x): the module refuses a grant naming it (ModuleQueryUnanswered); nothing was signed or sent",
                    account=self.account,
                    kind=self.kind.name,
                )
            if found is not None and found.selector is not None:
                raise BadInputError(_fallback_target_message(found.target, found.selector, self.account))
            if found is not None and found.target not in addresses:
                index = domains[found.target]
                raise BadInputError(
                    _signing_domain_message(index, signing[index], self.account, found.module)
                )
            if found is not None:
                raise BadInputError(_module_target_message(found.target, self.account, found.module))
        codes_of = dict(zip(addresses, codes, strict=True))
        if deployed:
            claimed = claimed_module(net.chain, self.account, claims, asked.optional_answers)
            if claimed is not None:
                self._refuse_claimed_module(*claimed, signing, domains)
        return decode_epoch(epoch, net.module), deployed, now, codes_of, deployed and occupied

    def _judge_undelegated_grant(self, session: Session) -> None:
        """The grant-time checks of :meth:`request_for` that need no answer from the account itself, for a grant
        made while the account cannot yet be asked (an EOA delegating in the same operation: :class:`EOAOwner
        <keyscope.eoa.EOAOwner>`'s upgrade): known module targets, the account's and the module's own signing
        domains, a target or domain that says it is a module initialised for the account, and every grant's warnings
        (:meth:`_warn_about_grant`). In one read of the chain."""
        net = self.network
        self._refuse_module_targets(session.permissions)
        signing = session.typed_data_permissions
        _refuse_own_signing_domains(signing, self.account, net.module)
        addresses = sorted({p.target for p in session.permissions if p.target != self.account})
        domains = _signing_domains(signing, self.account)
        claims = _claims(addresses, domains)
        initialised = initialised_question(self.account)
        read = read_many(net.chain, codes=addresses, optional=[(claim, initialised) for claim in claims])
        claimed = claimed_module(net.chain, self.account, claims, read.results)
        if claimed is not None:
            self._refuse_claimed_module(*claimed, signing, domains)
        self._warn_about_grant(session, session.permissions, dict(zip(addresses, read.codes, strict=True)))

    def _refuse_claimed_module(
        self, target: str, what: str, signing: Sequence[TypedDataPermission], domains: dict[str, int]
    ) -> None:
        """Refuse a grant whose call target or signing domain ``target`` says of itself that it is a ``what`` module
        initialised for the account (:func:`~keyscope.accounts.modules.claimed_module`), which the account did not
        say it has installed: the module cannot ask the target, so the SDK refuses what it would let through."""
        if target in domains:
            permission = signing[domains[target]]
            raise BadInputError(
                f"signing permission {domains[target]} ({permission.describe}) is in the domain of {target}, which "
                f"says it is a {what} module initialised for the account {self.account} (isModuleType and "
                "isInitialized answer true): modules take the account's signature as its owner's approval of their "
                "configuration, so the session could approve a change to it as the owner. The account does not list "
                "it as installed, so the module cannot refuse the grant on chain: keyscope refuses it here. Grant "
                "signing permissions in other domains only; nothing was signed or sent"
            )
        raise BadInputError(_claimed_module_message(target, self.account, what))

    def _refuse_module_targets(self, permissions: Sequence[Permission]) -> list[str]:
        """The distinct targets of ``permissions``, after refusing those this SDK knows to be the account's
        modules whatever the chain says (the owner validator and Safe7579's adapter are installed when the
        account is created)."""
        known = {
            getattr(self.kind, "owner_validator", None): "validator",
            getattr(self.kind, "safe7579", None): "Safe module (the Safe7579 adapter)",
        }
        targets = list(dict.fromkeys(p.target for p in permissions))
        for target in targets:
            if target in known:
                raise BadInputError(_module_target_message(target, self.account, known[target]))
        return targets

    def session_for(
        self,
        key: Any,
        permissions: Iterable[Permission | Sequence[Permission]],
        *,
        now: int | None = None,
        **options: Unpack[SessionOptions],
    ) -> Session:
        """The :class:`Session` granting ``permissions`` to ``key`` (a key or its address). ``permissions`` may
        hold groups of permissions too (``Policy.erc20_allowance``).

        The window: ``valid_for`` seconds (default :data:`DEFAULT_VALID_FOR`, one hour), or ``valid_until`` (unix
        seconds; a time after the year 9999 is refused, as milliseconds given for seconds most often are), or
        ``never_expires=True`` for a session without end; ``valid_after`` (unix seconds, 0 = now)
        delays its start. ``valid_for`` counts from ``now``, by default the later of the chain's latest block
        time and the wall clock (:func:`~keyscope.clock.window_now`: the clocks the EntryPoint and the bundler
        judge windows by). ``max_gas_cost``: the most one operation may cost in gas, in wei as an integer
        (default 0.05 ether; 0 for no cap; a bool or a float is refused), so that a session key cannot drain the
        account through absurd fees or gas limits, whoever pays: the cap bounds operations a paymaster pays too (an
        ERC-20 paymaster charges the account), except with the ``paymasters`` listed here (sponsors trusted not to
        charge the account). A random ``salt`` keeps
        ids unique. ``limits`` (``Limits.native``, ``Limits.operations``, ...) and ``gas_budget`` (wei over the
        session's operations, ``Limits.gas``) are counted by the module; periods start at ``valid_after`` (0: unix
        time 0, so days are UTC days).

        Signing permissions: ``typed_data`` (from :meth:`~keyscope.policy.Policy.typed_data`) and ``sign_in``
        (websites) let the session sign those messages as the account (ERC-1271); ``permissions`` may then be
        empty. ``co_signer`` (a key's address; the zero address, which the grant carries for none, is refused) makes
        every operation and message of the session need that key's signature too. ``never_expires`` is ``True`` or
        ``False`` (a text such as ``"false"`` is refused).
        """
        _check_options(options)
        if _counts_from_now(options) and now is None:
            now = window_now(self.network.chain.block_timestamp())
        start, end = session_window(
            valid_for=options.get("valid_for"),
            valid_after=options.get("valid_after", 0),
            valid_until=options.get("valid_until"),
            never_expires=options.get("never_expires", False),
            now=now,
        )
        gas_budget = options.get("gas_budget")
        budget = [Limits.gas(gas_budget)] if gas_budget is not None else []
        salt = options.get("salt")
        co_signer = options.get("co_signer")
        try:
            session = Session(
                session_key=to_address(key, name="session key"),
                valid_after=start,
                valid_until=end,
                max_gas_cost=_gas_cap_option(options.get("max_gas_cost", DEFAULT_MAX_GAS_COST)),
                paymasters=tuple(to_address(p, name="paymaster") for p in options.get("paymasters", ())),
                salt=secrets.randbits(64) if salt is None else salt,
                permissions=_flatten(permissions),
                limits=(*options.get("limits", ()), *budget),
                typed_data_permissions=tuple(options.get("typed_data", ())),
                sign_in=tuple(options.get("sign_in", ())),
                co_signer=None
                if co_signer is None
                else _co_signer_option(co_signer, "leave co_signer out for none"),
            )
        except InvalidFieldsError as error:
            raise BadInputError(f"this session cannot be granted: {error.summary}") from None
        refuse_unusable_limits(session)
        return session

    def prepare_grant(
        self,
        key: Any,
        permissions: Iterable[Permission | Sequence[Permission]],
        **options: Unpack[SessionOptions],
    ) -> GrantRequest:
        """A :class:`GrantRequest`: the typed data for the owner's wallet to sign (see :meth:`session_for` for the
        window, the limits and the other options). ``permissions`` may hold groups (``Policy.erc20_allowance``).
        The chain is asked once, for the epoch, the account's code, the targets' code, whether a target is one
        of the account's modules (refused: :class:`~keyscope.errors.BadInputError`) and (for a duration) the
        time; a target without code, or one known to lack the function, is reported with a
        :class:`~keyscope.errors.TargetWarning`. The same read asks whether a session not revoked may call a
        target, and whether a signing permission is live under the key; if so, the module enables the session in a
        dry run (a second read), so that a permission the key holds already in a session not revoked is refused
        before the owner signs (:class:`~keyscope.errors.BadInputError`), as the module would refuse it. A session
        with signing permissions only is refused too: the request is an off-chain grant, which the session's first
        operation stores, and such a session makes none (grant it with ``grant(..., onchain=True)``). Then the
        approvals the account already gave a target are looked for (its ``Approval``/``ApprovalForAll`` logs, one
        query or a bounded number of chunks, then one batch of calls confirming them:
        :func:`~keyscope.standing_approvals.standing_approvals`), each still standing reported with a
        :class:`~keyscope.errors.TargetWarning`, and a node that cannot answer with one saying so."""
        request = self._prepare(key, permissions, **options)
        _refuse_offchain_signing_only(request.session)
        return request

    def _prepare(
        self,
        key: Any,
        permissions: Iterable[Permission | Sequence[Permission]],
        **options: Unpack[SessionOptions],
    ) -> GrantRequest:
        """:meth:`prepare_grant` for a grant sent on chain or signed here (:meth:`grant` refuses what it must)."""
        _check_options(options)
        flat = _flatten(permissions)
        self._refuse_module_targets(flat)
        clock = _counts_from_now(options)
        ends = options.get("valid_until") is not None  # a given end: judged against the clock too
        if "typed_data" in options:  # read twice (the chain's questions, the session): an iterator only once
            options["typed_data"] = tuple(options["typed_data"])
        if "sign_in" in options:
            options["sign_in"] = tuple(options["sign_in"])
        epoch, deployed, chain_time, codes, occupied = self._grant_state(
            clock=clock or ends,
            targets=flat,
            signing=tuple(options.get("typed_data", ())),
            key=to_address(key, name="session key"),
            sign_in=tuple(options.get("sign_in", ())),
        )
        session = self.session_for(
            key,
            flat,
            now=window_now(chain_time) if clock else None,
            **options,
        )
        self._warn_about_grant(session, flat, codes)
        now = None if chain_time is None else window_now(chain_time)
        return self._request(session, epoch, deployed, occupied, now=now)

    def request_for(self, session: Session) -> GrantRequest:
        """The :class:`GrantRequest` for an already built ``session`` (refused as :meth:`prepare_grant` refuses, in
        the same order: what the module would refuse first, then a session with signing permissions only)."""
        self._refuse_module_targets(session.permissions)
        epoch, deployed, chain_time, codes, occupied = self._grant_state(
            clock=bool(session.valid_until),
            targets=session.permissions,
            signing=session.typed_data_permissions,
            key=session.session_key,
            sign_in=session.sign_in,
        )
        self._warn_about_grant(session, session.permissions, codes)
        request = self._request(
            session, epoch, deployed, occupied, now=None if chain_time is None else window_now(chain_time)
        )
        _refuse_offchain_signing_only(session)
        return request

    def _warn_about_grant(
        self, session: Session, permissions: Sequence[Permission], codes: Mapping[str, bytes]
    ) -> None:
        """The grant's warnings (:class:`~keyscope.errors.TargetWarning`), as the consent page shows its dangers:
        its call targets, its paymasters, an asset an allowance does not count, approvals that add up, approvals
        the account already gave a target (attack 357), an address that passes for the account or the key (attack
        379), a hybrid token's token ids (attack 378), calls no rule holds (attack 420) and a known function's
        spender, recipient or amount no rule holds (attack 431); each points at the owner's code that asked for the
        grant."""
        warn_about_targets(permissions, codes, self.network.entry_point)
        warn_about_paymasters(self.network.chain, session)
        warn_about_uncounted_assets(session)
        warn_about_approvals_that_add_up(session)
        # one reading of each target's decimals, names and ERC-165 answer for the grant's checks that need them
        contracts = cached_contract_facts(self.network.chain)
        warn_about_standing_approvals(self.network.chain, self.account, permissions, contracts)
        warn_about_passing_for(self.network.chain, self.account, session, contracts)

    def _request(
        self, session: Session, epoch: int, deployed: bool, occupied: bool = False, *, now: int | None = None
    ) -> GrantRequest:
        """The request for ``session``, after refusing what the module would refuse to enable or could never use;
        ``now`` (the time windows are judged at) refuses a session that has ended already."""
        if now is not None:
            _refuse_ended_window(session, now)
        refuse_unusable_limits(session)
        net = self.network
        refuse_forbidden_targets(session, self.account, net.module)
        if not deployed:
            self._refuse_uncreatable()  # a grant on an account nothing creates could never be used
            if self._asks_premises():
                warn_premises_unasked(
                    self.kind, self.account, "it has no code yet: create it, then grant, to have it asked"
                )
        else:
            # an account trusting another EntryPoint would refuse every operation of the session (AA23,
            # AccountUnauthorized) after the owner signed: said before the owner signs, as for its own operations
            net.check_entry_point(self.account)
            if occupied:
                self._refuse_what_enabling_refuses(session)
            if self._asks_premises():
                # an account nobody wrote an adapter for: the two premises of a session's bounds, asked before the
                # owner signs (a leaked key needs no SDK, so the session's own checks come too late; attack 393)
                refuse_broken_premises(
                    net.chain,
                    self.kind,
                    self.account,
                    net.module,
                    net.entry_point,
                    signing=bool(session.typed_data_permissions or session.sign_in),
                )
        # the framing of the owner's signature for the account, tried on no signature: an adapter that cannot
        # frame it (no owner validator given for an account whose owner signs through one) says so before the
        # owner's key or wallet signs, not after
        self.kind.wrap_erc1271_signature(b"")
        # the session's first operation creates the account only where the kind allows it
        creates = not deployed and self.kind.sessions_can_create
        request = GrantRequest(
            session=session,
            account=self.account,
            module=net.module,
            chain_id=net.chain_id,
            entry_point=net.entry_point,
            epoch=epoch,
            session_id=session.session_id(self.account, epoch),
            how="offchain",
            account_kind=self.kind.name,
            factory=self.factory if creates else None,
            factory_data=self._factory_data if creates else b"",
            owner=self.signer.address,
        )
        request._owner = self
        return request

    def _asks_premises(self) -> bool:
        """Whether the owner's grant asks the account the premises of a session's bounds
        (:mod:`keyscope.accounts.premises`): an ERC-7579 account driven by an adapter made for no vendor's account."""
        return isinstance(self.kind, ERC7579AccountKind) and not isinstance(self.kind, MSAAccountKind)

    def _refuse_what_enabling_refuses(self, session: Session) -> None:
        """Enable ``session`` in a dry run (an ``eth_call`` of the module's ``enableSession`` from the account, whose
        address keys its storage) and raise :class:`~keyscope.errors.BadInputError` for what the module would refuse
        against the account's other sessions, which the session alone does not show: a call or signing permission
        the same key holds in a session not revoked (an expired one keeps its permissions until it is revoked:
        ``PermissionAlreadyGranted``, ``SigningPermissionAlreadyGranted``), the account's live permissions
        (``TooManyLivePermissions``), a session id revoked before (``SessionIsRevoked``). Without it the owner signs
        a grant whose first operation fails at the bundler (AA23), or an on-chain grant that reverts. A dry run the
        node cannot make (a revert that is not the module's) refuses nothing."""
        net = self.network
        try:
            net.chain.call(net.module, enable_session_data(session), sender=self.account)
        except CallRevertedError as error:
            decoded = decode_revert(error.data)
            if decoded is None:
                return
            name, args = decoded
            key = session.session_key
            if name == "PermissionAlreadyGranted":
                permission = session.permissions[int(args["permissionIndex"])]
                raise BadInputError(
                    f"permission {args['permissionIndex']} ({permission.label}): the session key {key} already holds "
                    f"this permission on {self.account} in another session that is not revoked (an expired session "
                    "keeps its permissions until it is revoked), and the module holds one per key and call "
                    f"(PermissionAlreadyGranted): {_REVOKE_FIRST}"
                ) from None
            if name == "SigningPermissionAlreadyGranted":
                index = int(args["index"])
                signing = [p.describe for p in session.typed_data_permissions] + [
                    f"sign-in to {domain}" for domain in session.sign_in
                ]
                raise BadInputError(
                    f"signing permission {index} ({signing[index]}): the session key {key} already holds it on "
                    f"{self.account} in another session that is not revoked (an expired session keeps its "
                    "permissions until it is revoked), and the module holds one per key "
                    f"(SigningPermissionAlreadyGranted): {_REVOKE_FIRST}"
                ) from None
            todo = grant_refusal_todo(name)
            hint = f": {todo}" if todo else ""
            raise BadInputError(
                f"the module would refuse to enable this session on {self.account}: {describe_revert(error.data)}"
                f"{hint}; nothing was signed"
            ) from None

    def sign_grant(self, request: GrantRequest) -> SessionGrant:
        """Sign ``request`` with the owner's key (ERC-1271-shaped for the account kind). On a deployed account,
        first checks that the account accepts the signature as the module will ask it, raising
        :class:`~keyscope.errors.AccountSetupError` otherwise.

        A request this owner did not prepare (read back from JSON: a dapp's backend prepared it; or another
        ``Owner`` of the same key) is judged before it is signed as :meth:`request_for` judges a session (what the
        module would refuse, an ended window, a target that says it is a module of the account, the warnings), and
        refused when its digest is not the one this owner would sign for that session (another epoch, chain or
        module): whatever prepared it, the owner's signature is given only to what the owner's own checks pass."""
        if request._owner is not self:
            self._judge_foreign_request(request)
        kind = self.kind
        digest = kind.erc1271_digest(request.account, request.chain_id, request.digest)
        signature = kind.wrap_erc1271_signature(self.signer.sign_hash(digest))
        if request._owner is not self:  # checked by this owner's chain and kind, made here or not
            self.verify_grant_signature(request, signature)
            return request.complete(signature, check=False)
        return request.complete(signature)

    def _judge_foreign_request(self, request: GrantRequest) -> None:
        """Refuse a request this owner did not prepare, before its signature, as :meth:`sign_grant` says."""
        if to_address(request.account) != self.account:
            raise BadInputError(
                f"the grant request is for the account {request.account}, and this owner signs for {self.account}: "
                "sign it with the Owner of that account; nothing was signed"
            )
        judged = self.request_for(request.session)
        if judged.digest != request.digest:
            raise BadInputError(
                f"the grant request's digest 0x{request.digest.hex()} is not the one this owner would sign for its "
                f"session (0x{judged.digest.hex()}: epoch {judged.epoch}, chain {judged.chain_id}, module "
                f"{judged.module}; the request says epoch {request.epoch}, chain {request.chain_id}, module "
                f"{request.module}): prepare the request again on this network; nothing was signed"
            )

    def verify_grant_signature(self, request: GrantRequest, signature: bytes) -> None:
        """Check, on a deployed account, that it accepts ``signature`` (ERC-1271-shaped) for ``request`` as the
        module will ask it; raises :class:`~keyscope.errors.AccountSetupError` saying what is wrong otherwise.
        Nothing to check while the account has no code."""
        if self.is_deployed():
            verify_owner_signature(
                self.network.chain, self.kind, request.account, request.module, request.digest, signature
            )

    def grant(
        self,
        key: Any,
        permissions: Iterable[Permission | Sequence[Permission]],
        *,
        onchain: bool = False,
        timeout: float = 60.0,
        **options: Unpack[SessionOptions],
    ) -> SessionGrant:
        """Grant ``permissions`` to the session ``key`` with one owner signature.

        Off-chain (default): returns at once, after one read of the chain; the session key's first operation
        enables the session. On-chain (``onchain=True``): sends the owner's ``enableSession`` operation and
        waits for it (up to ``timeout`` seconds). The session lasts ``valid_for`` seconds (default one hour),
        until ``valid_until``, or for ever with ``never_expires=True``; see :meth:`session_for` for the rest
        (signing permissions ``typed_data`` and ``sign_in``, a ``co_signer``). A session with signing permissions
        only is granted on chain: with no call permission it makes no operation to carry an off-chain grant.
        """
        request = self._prepare(key, permissions, **options)
        if onchain:
            pending = self._send_grant(request)
            grant = pending.wait(timeout)
            self._granted[grant.session_id] = grant
            return grant
        _refuse_offchain_signing_only(request.session)
        grant = self.sign_grant(request)
        self._granted[grant.session_id] = grant
        return grant

    def grant_onchain(
        self,
        key: Any,
        permissions: Iterable[Permission | Sequence[Permission]],
        **options: Unpack[SessionOptions],
    ) -> PendingGrant:
        """Send the owner's ``enableSession`` operation; :meth:`PendingGrant.wait` gives the grant. The options
        are :meth:`grant`'s."""
        request = self._prepare(key, permissions, **options)
        return self._send_grant(request)

    def _send_grant(self, request: GrantRequest) -> PendingGrant:
        if self.is_deployed() and not self.network.supports_sessions(self.account):
            module = self.network.module
            raise AccountSetupError(
                f"the session module {module} is not installed on {self.account}: a session enabled there on chain "
                "now would end when the module is installed (installing it ends every session it holds for an "
                "account that never installed it), and the account would not ask the module to validate the "
                "session's operations before. Install the module first (owner.install_sessions()), then grant; "
                "nothing was sent",
                account=self.account,
                kind=self.kind.name,
                validator=self.kind.owner_validator,
            )
        data = enable_session_data(request.session)
        return PendingGrant(self.execute(Call(self.network.module, 0, data)), request)

    def sessions(
        self, store: SessionStore | None = None, *, grants: Iterable[SessionGrant] = ()
    ) -> list[SessionReport]:
        """Where each known session of the account stands on chain, oldest grant first: the grants this object
        made, ``grants``, and (with ``store``) the store's grants of this account, each with the store's marks set
        against the chain (:attr:`SessionReport.disagreements <keyscope.report.SessionReport.disagreements>`).
        Each is judged at the module and EntryPoint its grant names (a second deployment of the module the account
        installed too, say); a grant of another chain reads ``"other chain"``, one naming a module address that
        answers nothing here ``"no module"``, as ``keyscope sessions`` reads them.

        One round trip to the node per session, one more for a live session with limits, one for a co-signed one
        (the co-signer the module holds now), and a few per token a limit counts (its ``decimals()`` and
        ``symbol()``, read once for the whole listing: a token limit's use is also shown at the token's decimals,
        :attr:`SessionReport.scaled <keyscope.report.SessionReport.scaled>`).
        A store's grant that cannot be read is skipped with a :class:`~keyscope.errors.KeyscopeWarning` naming it."""
        if store is not None:
            # imported here: the store package loads SQLAlchemy, which `import keyscope` does not need
            from .store.base import SessionStore as Store

            if not isinstance(store, Store):
                raise BadInputError(
                    f"sessions() takes an open session store, got {type(store).__name__} {shown(store)}: open it "
                    "first, keyscope.store.open_store(url, create=False), or leave it out for the grants this owner "
                    "made"
                )
        given = (
            list(grants) if isinstance(grants, Iterable) and not isinstance(grants, (str, bytes)) else None
        )
        if given is None or not all(isinstance(grant, SessionGrant) for grant in given):
            raise BadInputError(
                f"grants= takes SessionGrant objects (SessionGrant.from_json(text) reads a saved one), got "
                f"{shown(grants)}"
            )
        found: dict[bytes, SessionGrant] = {}
        for grant in [*self._granted.values(), *given]:
            if grant.account == self.account:
                found.setdefault(grant.session_id, grant)
        marks: dict[bytes, StoreMarks] = {}
        if store is not None:

            def unreadable(name: str, error: Exception) -> None:
                warnings.warn(f"skipped the unreadable grant {name}: {error}", KeyscopeWarning, stacklevel=4)

            for grant in store.list_grants(self.account, on_corrupt=unreadable):
                found.setdefault(grant.session_id, grant)
                marks[grant.session_id] = StoreMarks(
                    store.is_revoked(grant.session_id), store.is_enabled(grant.session_id)
                )
        return self._judge(found, marks)

    def _judge(
        self, found: Mapping[bytes, SessionGrant], marks: Mapping[bytes, StoreMarks]
    ) -> list[SessionReport]:
        """The report of each grant of ``found``, judged at the module and EntryPoint the grant names on this chain
        (a store keeps the account's sessions of every deployment of the module it is used with, and the account
        has the same address on every chain its factory made it on): a grant of another chain is not judged
        (``"other chain"``), nor one whose module address answers nothing here (``"no module"``). Read at this
        network's module, a session live at another one was reported ``invalidated`` (dead, its key still
        working)."""
        net = self.network
        contracts = cached_contract_facts(net.chain)
        networks: dict[tuple[str, str], Endpoints | None] = {(net.module, net.entry_point): net}
        now: int | None = None
        reports = []
        for sid, grant in found.items():
            where = (grant.module, grant.entry_point)
            if grant.chain_id != net.chain_id:
                endpoints: Endpoints | None = None
                status = "other chain"
            else:
                if where not in networks:
                    networks[where] = (
                        Endpoints(
                            chain=net.chain,
                            bundler=net.bundler,
                            module=grant.module,
                            entry_point=grant.entry_point,
                            kind=net.kind,
                            owner_validator=net.owner_validator,
                        )
                        if answers_as_module(net.chain, grant.module)
                        else None
                    )
                endpoints, status = networks[where], "no module"
            if endpoints is None:
                if now is None:
                    now = window_now(net.chain.block_timestamp())
                reports.append(unjudged(grant, status, now=now, store=marks.get(sid)))
                continue
            reports.append(report_from_chain(endpoints, grant, store=marks.get(sid), contracts=contracts))
        return reports

    def _require_own(self, grant: SessionGrant, what: str) -> None:
        """Raise :class:`~keyscope.errors.BadInputError` unless ``grant`` is a session of this owner's account, at
        this network's module and chain: the module keys sessions by the account that sends, so this account's
        operation would change nothing for the grant's own session (which would stay live)."""
        net = self.network
        for field, granted, here in (
            ("account", grant.account, self.account),
            ("module", grant.module, net.module),
            ("chain", grant.chain_id, net.chain_id),
        ):
            if granted != here:
                raise BadInputError(
                    f"session 0x{grant.session_id.hex()} was granted for the {field} {granted}, and this owner's "
                    f"is {here}: nothing was sent (an operation of {self.account} would leave that session as it "
                    f"is); {what} with the owner of {grant.account} on the grant's network, "
                    f"net.owner(key, {grant.account})"
                )

    def revoke(self, grant: SessionGrant | bytes | str) -> PendingUserOperation:
        """Revoke a session (a grant or its id), enabled or not yet: it can never be used again.

        A session the module already holds revoked is refused with
        :class:`~keyscope.errors.SessionRevokedError` before anything is signed: a second revocation would change
        nothing and still cost the account an operation's gas."""
        return self.execute(Call(self.network.module, 0, revoke_session_data(self._revocable_id(grant))))

    def _revocable_id(self, grant: SessionGrant | bytes | str) -> bytes:
        """The id of the session ``grant`` names, refused (before anything is signed) when it is another account's
        grant (:class:`~keyscope.errors.BadInputError`) or the module holds it revoked already
        (:class:`~keyscope.errors.SessionRevokedError`)."""
        if isinstance(grant, SessionGrant):
            self._require_own(grant, "revoke")
            session_id = grant.session_id
        else:
            session_id = to_bytes(grant, name="session id", length=32)
        is_revoked = session_flag_calls(self.account, session_id)[1]
        if decode_bool(self.network.chain.call(self.network.module, is_revoked)):
            name = "0x" + session_id.hex()
            raise SessionRevokedError(
                f"session {name} is already revoked on chain for {self.account}: nothing was sent (a revoked "
                "session can never be used again; grant a new one if the key needs one)",
                name,
            )
        return session_id

    def rotate_co_signer(self, grant: SessionGrant | bytes | str, co_signer: Any) -> PendingUserOperation:
        """Replace the co-signer of a co-signed session (enabled on chain), or remove it (``co_signer`` None): from
        then on the old co-signer's signatures count for nothing, pending ones included.

        What the module would refuse is refused before anything is signed (:class:`~keyscope.errors.BadInputError`):
        a session without a co-signer on chain (granted without one, or an off-chain grant not enabled yet:
        ``NotCoSigned``), one no longer active (revoked or invalidated: ``SessionNotActive``), and the session key as
        its own co-signer (``InvalidCoSigner``)."""
        if isinstance(grant, SessionGrant):
            self._require_own(grant, "rotate its co-signer")
        session_id = (
            grant.session_id
            if isinstance(grant, SessionGrant)
            else to_bytes(
                grant,
                name="the grant to rotate the co-signer of (a SessionGrant, or its session id)",
                length=32,
            )
        )
        new = ZERO_ADDRESS if co_signer is None else _co_signer_option(co_signer, "pass None to remove it")
        self._refuse_what_rotating_refuses(grant, session_id, new)
        return self.execute(Call(self.network.module, 0, rotate_co_signer_data(session_id, new)))

    def _refuse_what_rotating_refuses(
        self, grant: SessionGrant | bytes | str, session_id: bytes, new: str
    ) -> None:
        """Raise :class:`~keyscope.errors.BadInputError` for a co-signer rotation the module would refuse, in its
        order (the session's co-signer record, the session being active, the new co-signer), reading the module
        once."""
        net = self.network
        name = "0x" + session_id.hex()
        is_active = session_flag_calls(self.account, session_id)[0]
        (active, record), _, _ = read_many(
            net.chain, [(net.module, is_active), (net.module, co_signer_of_data(self.account, session_id))]
        )
        if not decode_co_signer(record, net.module)[0]:
            granted = isinstance(grant, SessionGrant) and grant.session.co_signer is not None
            why = (
                "it was granted with one, but off-chain and not used yet: the module records the co-signer when the "
                "session's first operation enables it (rotate after that, or grant anew)"
                if granted
                else "it was granted without one (a co-signer is part of the grant: grant a new session with "
                "co_signer=)"
            )
            raise BadInputError(
                f"session {name} has no co-signer at the module for {self.account}: {why}. The module refuses the "
                "rotation (NotCoSigned); nothing was signed or sent"
            )
        if not decode_bool(active):
            raise BadInputError(
                f"session {name} is not active on chain for {self.account} (revoked, or every session invalidated): "
                "the module refuses to rotate its co-signer (SessionNotActive); nothing was signed or sent"
            )
        key = grant.session_key if isinstance(grant, SessionGrant) else None
        if key is None and new != ZERO_ADDRESS:  # named by id: the module knows the key, ask it in a dry run
            try:
                net.chain.call(net.module, rotate_co_signer_data(session_id, new), sender=self.account)
            except CallRevertedError as error:
                if error.data[:4] != _INVALID_CO_SIGNER:
                    raise
                key = new
        if key is not None and new == key:
            raise BadInputError(
                f"{new} is the session's own key: a co-signer must be another key (one leaked key would make both "
                "signatures), and the module refuses it (InvalidCoSigner); nothing was signed or sent"
            )

    def invalidate_all(self) -> PendingUserOperation:
        """Invalidate every session of the account and every enable signature of the module not yet used.

        An enable signature of the account itself carrying sessions in the module's install data (Kernel's
        ``Enable``, Nexus's ``ModuleEnableMode``; keyscope makes none) is the account's to end, not the module's:
        on Kernel, ``invalidateNonce`` above its nonce."""
        return self.execute(Call(self.network.module, 0, INVALIDATE_ALL_SESSIONS))
