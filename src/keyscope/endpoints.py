"""Where sessions live: a node, a bundler, the EntryPoint and the session module, in one object.

:class:`Endpoints` is what the owner's and the session's paths need to build and send operations; the public
:class:`~keyscope.network.Network` adds the factories of those two objects on top of it.

One network uses one EntryPoint, v0.7 or v0.8, and hashes every operation for it: its version is known from the
canonical addresses or asked of the EntryPoint once (v0.8 answers ERC-5267's ``eip712Domain()``), so a v0.7 hash
never goes to v0.8 nor the reverse. Without an EntryPoint given, :meth:`Endpoints.from_urls` takes the one the
configured factory or EIP-7702 delegate trusts (their ``entryPoint()``), else the canonical v0.7; an account that
trusts another EntryPoint is refused before anything is sent (:meth:`Endpoints.check_entry_point`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from .accounts import AccountKind, KeyscopeDelegateKind
from .accounts import account_id as _account_id
from .accounts.detect import unreachable
from .accounts.resolve import ADAPTERS, check_kind, resolve_kind
from .artifacts import ENTRY_POINT_V07
from .bundler.client import BundlerClient
from .bundler.types import Bundler
from .chain import Chain, RpcChain
from .eip7702 import delegate_of
from .endpoint_kinds import node_given_twice, swapped_or_misplaced
from .entrypoint import EIP712_DOMAIN, canonical_entry_point_version, entry_point_version_from_domain
from .errors import (
    BadInputError,
    CallRevertedError,
    ConfigurationError,
    KeyscopeError,
    TransportError,
    UnknownOptionError,
    UnsupportedAccountError,
    shown,
)
from .hashing import user_op_hash
from .hexutil import to_address
from .paymaster import PaymasterClient
from .selectors import ENTRY_POINT, IS_MODULE_INSTALLED
from .urls import mask_url
from .userop import UserOperation

if TYPE_CHECKING:
    from typing_extensions import Never  # typing's own from Python 3.11 on

__all__ = ["Endpoints", "entry_point_of", "entry_point_version"]


def entry_point_of(chain: Chain, contract: str) -> str | None:
    """The ``entryPoint()`` of an account, a factory or an EIP-7702 delegate; None when it answers none."""
    try:
        raw = chain.call(to_address(contract, name="contract"), ENTRY_POINT)
    except CallRevertedError:
        return None
    if len(raw) != 32 or any(raw[:12]):
        return None
    return to_address(raw[12:])


def entry_point_version(chain: Chain, entry_point: str) -> str:
    """The version ("0.7" or "0.8") of the EntryPoint at ``entry_point``: known for the canonical addresses, else
    asked of the contract (``eip712Domain()``, which v0.8 has and v0.7 has not)."""
    known = canonical_entry_point_version(entry_point)
    if known is not None:
        return known
    try:
        return entry_point_version_from_domain(chain.call(to_address(entry_point), EIP712_DOMAIN))
    except CallRevertedError:
        return "0.7"


_E = TypeVar("_E", bound="Endpoints")

_NO_MODULE = "".join(("module", " not given"))
"""connect()'s ``module`` when the caller gave none (a string of its own, told apart by identity)."""
_OPTIONS = ("module", "entry_point", "factory", "paymaster", "kind", "owner_validator", "delegate", "timeout")
"""The keyword options :meth:`Endpoints.from_urls` (:func:`keyscope.connect`) takes, in its signature's order."""


def _check_endpoint(value: object, kind: type, name: str, expected: str) -> None:
    """Refuse an endpoint that is neither a URL (a string) nor a ready object of ``kind`` (None is a paymaster's
    absence)."""
    if isinstance(value, (str, kind)) or (value is None and name == "paymaster"):
        return
    raise BadInputError(f"{name}: give {expected}; got {type(value).__name__} {shown(value)}")


def _check_kind(kind: object) -> None:
    """Refuse a ``kind`` that is no account adapter (a name such as ``"kernel"``, or an adapter's class), which was
    taken as it was and failed at the owner's first step with an ``AttributeError``."""
    if kind is None or isinstance(kind, AccountKind):
        return
    if isinstance(kind, type) and issubclass(kind, AccountKind):
        raise BadInputError(
            f"kind: give an adapter, not its class: kind={kind.__name__}(...) with the options it takes (see "
            "docs/accounts.md), or leave kind out to have each account's kind found from its accountId()"
        )
    if isinstance(kind, str):
        meant = [
            adapter.__name__
            for adapter in ADAPTERS.values()
            if kind.strip().lower() in (str(getattr(adapter, "name", "")).lower(), adapter.__name__.lower())
        ]
        if meant:
            raise BadInputError(
                f"kind: give an adapter, not its name: kind={meant[0]}(...) with the options it takes (from "
                f"keyscope.accounts; docs/accounts.md), or leave kind out to have each account's kind found from "
                f"its accountId(); got {shown(kind)}"
            )
    raise BadInputError(
        f"kind: give an account adapter from keyscope.accounts (KeyscopeAccountKind(), KernelAccountKind(), "
        f"NexusAccountKind(owner_validator=..., chain=...), ...; docs/accounts.md), or leave kind out to have each "
        f"account's kind found from its accountId(); got {type(kind).__name__} {shown(kind)}"
    )


@dataclass
class Endpoints:
    """A node (:class:`~keyscope.chain.Chain`), a bundler (:class:`~keyscope.bundler.Bundler`), the EntryPoint
    (v0.7 or v0.8) and the deployed ``SessionKeyValidator``; ``factory`` (a ``KeyscopeAccountFactory``) is needed
    only to create keyscope accounts, ``delegate`` (a ``KeyscopeDelegate``) only to turn EOAs into accounts with
    EIP-7702 (EntryPoint v0.8), ``paymaster`` only to have operations sponsored.

    ``kind`` is the adapter of the accounts used here; None (the default) finds each account's kind out
    (:meth:`kind_for`), with ``owner_validator`` as the validator module owners sign through where the kind
    has one."""

    chain: Chain
    bundler: Bundler
    module: str
    entry_point: str = ENTRY_POINT_V07
    factory: str | None = None
    paymaster: PaymasterClient | None = None
    kind: AccountKind | None = None
    owner_validator: str | None = None
    delegate: str | None = None
    _chain_id: int | None = field(default=None, init=False, repr=False)
    _entry_point_version: str | None = field(default=None, init=False, repr=False)
    _kinds: dict[str | None, AccountKind] = field(default_factory=dict, init=False, repr=False)
    _entry_points_checked: set[str] = field(default_factory=set, init=False, repr=False)
    _bundler_chain_checked: bool = field(default=False, init=False, repr=False)

    def close(self) -> None:
        """Close the HTTP connection pools of keyscope's clients here: the node's (an :class:`~keyscope.chain.RpcChain`),
        the bundler's (a :class:`~keyscope.bundler.BundlerClient`) and the paymaster service's. A request after it
        raises :class:`~keyscope.errors.TransportError` saying so. ``with connect(...) as net:`` closes them at
        the block's end."""
        for client in (self.bundler, self.chain, self.paymaster):
            if isinstance(client, (RpcChain, BundlerClient, PaymasterClient)):
                client.close()

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        self.module = to_address(self.module, name="module")
        self.entry_point = to_address(self.entry_point, name="entry_point")
        if self.factory is not None:
            self.factory = to_address(self.factory, name="factory")
        if self.owner_validator is not None:
            self.owner_validator = to_address(self.owner_validator, name="owner_validator")
        if self.delegate is not None:
            self.delegate = to_address(self.delegate, name="delegate")

    @classmethod
    def from_urls(
        cls: type[_E],
        node: str | Chain,
        bundler: str | Bundler,
        *,
        module: str = _NO_MODULE,
        entry_point: str | None = None,
        factory: str | None = None,
        paymaster: str | PaymasterClient | None = None,
        kind: AccountKind | None = None,
        owner_validator: str | None = None,
        delegate: str | None = None,
        timeout: float = 30.0,
        **unknown: Never,
    ) -> _E:
        """From URLs (or ready :class:`~keyscope.chain.Chain` / bundler / paymaster objects); ``timeout`` bounds
        each request in seconds. ``paymaster`` is an ERC-7677 paymaster service URL (or client): when given,
        operations are sponsored. Without ``kind``, each account's kind is found out (:meth:`kind_for`);
        ``owner_validator`` is the validator module owners sign through on accounts that have one (Nexus,
        Safe7579, ERC-7579 reference accounts). ``delegate`` is keyscope's EIP-7702 delegate, for EOAs.
        :func:`keyscope.connect` is this method. Given two URLs, it asks the node's whether it is a bundler's
        (``eth_supportedEntryPoints``, once) and refuses a bundler's URL given as the node, saying when the two look
        swapped (:func:`~keyscope.endpoint_kinds.swapped_or_misplaced`); given one node's URL twice, it refuses it as the
        bundler; nothing else is asked before it is needed. An option it does not take (a typo, most often) raises
        :class:`~keyscope.errors.UnknownOptionError` naming it and the options there are (a type checker refuses
        it too: nothing fits ``Never``).

        ``entry_point`` None: the EntryPoint ``factory`` trusts, else the one ``delegate`` trusts (each asked
        once, with ``entryPoint()``), else the canonical v0.7. A factory and a delegate that trust different
        EntryPoints, or a factory trusting another one than ``entry_point`` when it is given, are refused
        (:class:`~keyscope.errors.ConfigurationError`): one network never mixes EntryPoints, and an existing
        account is checked against it before its owner's first operation (:meth:`check_entry_point`)."""
        for name in sorted(unknown):
            raise UnknownOptionError(
                f"connect() got an unexpected keyword argument {shown(name)}: its options are {', '.join(_OPTIONS)}"
            )
        if module is _NO_MODULE:
            raise BadInputError(
                "connect() needs module=ADDRESS, the address of keyscope's session module (SessionKeyValidator) on "
                "this chain: a LocalStack's stack.module, or the deployments file `ape run deploy` wrote"
            )
        _check_endpoint(node, Chain, "node", "the node's JSON-RPC URL (http://host:port) or a Chain")
        _check_endpoint(bundler, Bundler, "bundler", "the bundler's URL (http://host:port) or a Bundler")
        _check_endpoint(paymaster, PaymasterClient, "paymaster", "an ERC-7677 paymaster service URL, or None")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise BadInputError(f"timeout is a positive number of seconds per request, got {shown(timeout)}")
        if isinstance(node, str) and isinstance(bundler, str):
            # a bundler's URL given as the node (the two swapped, most often) failed only at the first node read,
            # saying that the URL did not serve the method: asked now, it is said as what it is
            misplaced = swapped_or_misplaced(node, bundler, timeout=timeout)
            if misplaced is not None:
                raise ConfigurationError(
                    f"{misplaced}; connect(node, bundler, ...) takes the node's URL first and the bundler's second"
                )
            twice = node_given_twice(node, bundler, timeout=timeout)
            if twice is not None:  # refused now, not at the first operation the bundler cannot take
                raise ConfigurationError(f"{twice}; connect(node, bundler, ...) takes a bundler's URL second")
        chain = RpcChain(node, timeout=timeout) if isinstance(node, str) else node
        client = BundlerClient(bundler, node=chain, timeout=timeout) if isinstance(bundler, str) else bundler
        if isinstance(paymaster, str):
            paymaster = PaymasterClient(paymaster, timeout=timeout)
        trusted = {
            what: entry_point_of(chain, address)
            for what, address in (("factory", factory), ("delegate", delegate))
            if address is not None and (entry_point is None or what == "factory")
        }
        if entry_point is None:
            found = {address for address in trusted.values() if address is not None}
            if len(found) > 1:
                raise ConfigurationError(
                    f"the factory trusts EntryPoint {trusted['factory']} and the delegate {trusted['delegate']}: "
                    "a network uses one EntryPoint; connect twice, once for each"
                )
            entry_point = found.pop() if found else ENTRY_POINT_V07
        elif trusted.get("factory") not in (None, to_address(entry_point, name="entry_point")):
            # (a delegate is judged when an EOA delegates to it: what it is, and that its operations go to v0.8)
            raise ConfigurationError(
                f"the factory {factory} trusts EntryPoint {trusted['factory']}, but entry_point is "
                f"{to_address(entry_point, name='entry_point')}: the accounts it creates would refuse every "
                "operation sent there (AA23 AccountUnauthorized), after the owner signed; leave entry_point out to use "
                "the factory's, or give the factory made for that EntryPoint"
            )
        return cls(
            chain=chain,
            bundler=client,
            module=module,
            entry_point=entry_point,
            factory=factory,
            paymaster=paymaster,
            kind=kind,
            owner_validator=owner_validator,
            delegate=delegate,
        )

    @property
    def chain_id(self) -> int:
        """The node's chain id (queried once)."""
        if self._chain_id is None:
            self._chain_id = self.chain.chain_id()
        return self._chain_id

    def check_bundler_chain(self) -> None:
        """Raise :class:`~keyscope.errors.ConfigurationError` when the bundler (a :class:`BundlerClient`) serves
        another chain than the node, before an operation is estimated or sent: a bundler of another chain simulates
        it against another chain's state, and its refusal (the owner's signature invalid, an account without funds)
        sends its reader after the wrong cause, or it sends the operation where it was not signed for. Asked of the
        bundler once per network (``eth_chainId``, which the client keeps); says nothing when either cannot tell,
        and asks again before the next operation when the bundler could not be reached."""
        if self._bundler_chain_checked or not isinstance(self.bundler, BundlerClient):
            return
        try:
            served, chain_id = self.bundler.chain_id(), self.chain_id
        except TransportError:  # not reached: the operation's own request says so; asked again next time
            return
        except KeyscopeError:  # it answered, with no chain id: the refusal path cannot tell either
            self._bundler_chain_checked = True
            return
        if served != chain_id:
            raise self._bundler_of_another_chain(served, chain_id, "nothing was sent to it")
        self._bundler_chain_checked = True

    def refuse_bundler_of_another_chain(self) -> None:
        """Raise :class:`~keyscope.errors.ConfigurationError` when the bundler (a :class:`BundlerClient`) serves
        another chain than the node. Asked after the bundler refused an operation (for a bundler given to
        :class:`Endpoints` that :meth:`check_bundler_chain` could not ask). Says nothing when either cannot tell."""
        if not isinstance(self.bundler, BundlerClient):
            return
        try:
            served, chain_id = self.bundler.chain_id(), self.chain_id
        except KeyscopeError:
            return
        if served != chain_id:
            raise self._bundler_of_another_chain(
                served, chain_id, "its refusal of the operation is about another chain"
            )

    def _bundler_of_another_chain(self, served: int, chain_id: int, consequence: str) -> ConfigurationError:
        assert isinstance(self.bundler, BundlerClient)
        node = f" {mask_url(self.chain.url)}" if isinstance(self.chain, RpcChain) else ""
        return ConfigurationError(
            f"the bundler {mask_url(self.bundler.url)} serves chain {served}, but the node{node} is chain "
            f"{chain_id}: {consequence}; connect() a node and a bundler of the same chain"
        )

    @property
    def entry_point_version(self) -> str:
        """The version of :attr:`entry_point`, "0.7" or "0.8" (known or asked once, see :func:`entry_point_version`)."""
        if self._entry_point_version is None:
            self._entry_point_version = entry_point_version(self.chain, self.entry_point)
        return self._entry_point_version

    def user_op_hash(self, op: UserOperation) -> bytes:
        """The userOpHash :attr:`entry_point` computes for ``op`` on this chain, for its version. An EIP-7702
        operation (``factory`` ``"0x7702"``, v0.8) hashes the account's delegate: its authorization's, else the one
        its code names now."""
        version = self.entry_point_version
        delegate = None
        if op.is_eip7702:
            if version == "0.7":
                raise ConfigurationError(
                    f"an EIP-7702 operation (factory 0x7702) needs EntryPoint v0.8, and this network uses the v0.7 "
                    f"one at {self.entry_point}: connect(..., entry_point=ENTRY_POINT_V08)"
                )
            if op.eip7702_auth is not None:
                delegate = op.eip7702_auth.address
            else:
                delegate = delegate_of(self.chain.get_code(op.sender))
                if delegate is None:
                    raise UnsupportedAccountError(
                        f"{op.sender} does not delegate its code (EIP-7702), so an operation marked as an EIP-7702 "
                        "account's cannot be hashed: give it the EOA's authorization (eip7702_auth)"
                    )
        return user_op_hash(
            op.packed_fields(), self.entry_point, self.chain_id, version=version, eip7702_delegate=delegate
        )

    def check_entry_point(self, account: str) -> None:
        """Raise :class:`~keyscope.errors.ConfigurationError` when the deployed ``account`` (or an EOA's delegate)
        trusts another EntryPoint than this network's; accounts that do not say (no ``entryPoint()``) pass.
        Asked once per account."""
        address = to_address(account, name="account")
        if address in self._entry_points_checked:
            return
        trusted = entry_point_of(self.chain, address)
        if trusted is not None and trusted != self.entry_point:
            version = entry_point_version(self.chain, trusted)
            raise ConfigurationError(
                f"the account {address} trusts EntryPoint v{version} at {trusted}, but this network sends to the "
                f"v{self.entry_point_version} one at {self.entry_point}: connect(..., entry_point={shown(trusted)}) "
                "for this account"
            )
        self._entry_points_checked.add(address)

    def eoa_kind(self, account: str) -> AccountKind:
        """The adapter for ``account`` as an EOA its owner's key controls: the kind its delegate's code reports when
        it delegates (EIP-7702), else keyscope's :class:`~keyscope.accounts.KeyscopeDelegateKind` for
        :attr:`delegate`, to delegate to. Raises :class:`~keyscope.errors.UnsupportedAccountError` for a
        contract, and :class:`~keyscope.errors.ConfigurationError` when there is no delegate to delegate to."""
        address = to_address(account, name="account")
        code = self.chain.get_code(address)
        current = delegate_of(code)
        if code and current is None:
            raise UnsupportedAccountError(
                f"{address} is a contract, not an EOA: its owner's key is not its own; use net.owner(signer, "
                "account) with the key that owns it"
            )
        if current is not None and (self.delegate is None or current == self.delegate):
            return self.kind_for(address)
        if self.delegate is None:
            where = "has no code" if current is None else f"delegates to {current}"
            raise ConfigurationError(
                f"the EOA {address} {where}: to make it an account, connect(..., delegate=...) with keyscope's "
                "KeyscopeDelegate (LocalStack.delegate on a local stack)"
            )
        kind = KeyscopeDelegateKind(self.delegate)
        self._kinds[address] = kind
        return kind

    def kind_for(self, account: str | None, *, named: str | None = None) -> AccountKind:
        """The adapter for ``account`` (None: the account :attr:`factory` creates), remembered per account:
        :attr:`kind` when given (checked against a deployed account's ``accountId()``), else found out: a
        deployed account's ``accountId()``, else ``named`` (the kind a grant was signed for), else the kind
        :attr:`factory` creates. Raises :class:`~keyscope.errors.UnsupportedAccountError` (or its subclass
        :class:`~keyscope.errors.AccountSetupError`) when nothing says it, or the given kind does not fit."""
        key = to_address(account, name="account") if account is not None else None
        found = self._kinds.get(key)
        if found is not None and (self.kind is None or found is self.kind):
            return found
        if self.kind is not None:
            if key is not None:
                check_kind(self.chain, self.kind, key)  # a given kind must fit the account
            found = self.kind
        else:
            found = resolve_kind(
                self.chain, key, factory=self.factory, owner_validator=self.owner_validator, named=named
            )
        self._kinds[key] = found
        return found

    def forget_kind(self, account: str) -> None:
        """Forget the adapter found for ``account`` (an EOA whose delegation changed): the next use finds it out."""
        self._kinds.pop(to_address(account, name="account"), None)

    def is_deployed(self, account: str) -> bool:
        """Whether ``account`` has code."""
        return bool(self.chain.get_code(to_address(account)))

    def supports_sessions(self, account: str) -> bool:
        """Whether the session module is installed on the (deployed) ``account``."""
        data = IS_MODULE_INSTALLED + abi_encode(["uint256", "address", "bytes"], [1, self.module, b""])
        try:
            result = self.chain.call(to_address(account), data)
        except Exception as error:  # an account without the function reverts; a node that is down must say so
            if unreachable(error):
                raise
            return False
        return len(result) >= 32 and bool(abi_decode(["bool"], result[:32])[0])

    def account_id(self, account: str) -> str | None:
        """The ERC-7579 ``accountId()`` of ``account``, or None if it has none (or no code)."""
        return _account_id(self.chain, account)
