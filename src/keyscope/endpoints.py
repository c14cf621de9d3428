"""Where sessions live: a node, a bundler, the EntryPoint and the session module, in one object.

:class:`Endpoints` is what the owner's and the session's paths need to build and send operations; the public
:class:`~keyscope.network.Network` adds the factories of those two objects on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from .accounts import AccountKind
from .accounts import account_id as _account_id
from .accounts.resolve import check_kind, resolve_kind
from .artifacts import ENTRY_POINT_V07
from .bundler.client import BundlerClient
from .bundler.types import Bundler
from .chain import Chain, RpcChain
from .hexutil import to_address
from .paymaster import PaymasterClient

__all__ = ["Endpoints"]

_IS_MODULE_INSTALLED = keccak(b"isModuleInstalled(uint256,address,bytes)")[:4]

_E = TypeVar("_E", bound="Endpoints")


@dataclass
class Endpoints:
    """A node (:class:`~keyscope.chain.Chain`), a bundler (:class:`~keyscope.bundler.Bundler`), the EntryPoint
    v0.7 and the deployed ``SessionKeyValidator``; ``factory`` (a ``KeyscopeAccountFactory``) is needed only
    to create keyscope accounts, ``paymaster`` only to have operations sponsored.

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
    _chain_id: int | None = field(default=None, init=False, repr=False)
    _kinds: dict[str | None, AccountKind] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.module = to_address(self.module, name="module")
        self.entry_point = to_address(self.entry_point, name="entry_point")
        if self.factory is not None:
            self.factory = to_address(self.factory, name="factory")
        if self.owner_validator is not None:
            self.owner_validator = to_address(self.owner_validator, name="owner_validator")

    @classmethod
    def from_urls(
        cls: type[_E],
        node: str | Chain,
        bundler: str | Bundler,
        *,
        module: str,
        entry_point: str = ENTRY_POINT_V07,
        factory: str | None = None,
        paymaster: str | PaymasterClient | None = None,
        kind: AccountKind | None = None,
        owner_validator: str | None = None,
        timeout: float = 30.0,
    ) -> _E:
        """From URLs (or ready :class:`~keyscope.chain.Chain` / bundler / paymaster objects); ``timeout`` bounds
        each request in seconds. ``paymaster`` is an ERC-7677 paymaster service URL (or client): when given,
        operations are sponsored. Without ``kind``, each account's kind is found out (:meth:`kind_for`);
        ``owner_validator`` is the validator module owners sign through on accounts that have one (Nexus,
        Safe7579, ERC-7579 reference accounts). :func:`keyscope.connect` is ``Network.from_urls``."""
        chain = RpcChain(node, timeout=timeout) if isinstance(node, str) else node
        client = BundlerClient(bundler, node=chain, timeout=timeout) if isinstance(bundler, str) else bundler
        if isinstance(paymaster, str):
            paymaster = PaymasterClient(paymaster, timeout=timeout)
        return cls(
            chain=chain,
            bundler=client,
            module=module,
            entry_point=entry_point,
            factory=factory,
            paymaster=paymaster,
            kind=kind,
            owner_validator=owner_validator,
        )

    @property
    def chain_id(self) -> int:
        """The node's chain id (queried once)."""
        if self._chain_id is None:
            self._chain_id = self.chain.chain_id()
        return self._chain_id

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

    def is_deployed(self, account: str) -> bool:
        """Whether ``account`` has code."""
        return bool(self.chain.get_code(to_address(account)))

    def supports_sessions(self, account: str) -> bool:
        """Whether the session module is installed on the (deployed) ``account``."""
        data = _IS_MODULE_INSTALLED + abi_encode(["uint256", "address", "bytes"], [1, self.module, b""])
        try:
            result = self.chain.call(to_address(account), data)
        except Exception:
            return False
        return len(result) >= 32 and bool(abi_decode(["bool"], result[:32])[0])

    def account_id(self, account: str) -> str | None:
        """The ERC-7579 ``accountId()`` of ``account``, or None if it has none (or no code)."""
        return _account_id(self.chain, account)
