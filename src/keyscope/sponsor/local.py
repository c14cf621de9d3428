"""A sponsor for a running :class:`~keyscope.local.LocalStack`: deploys, funds and stakes a
``SponsorPaymaster`` on its anvil and serves the ERC-7677 sponsor service for it on 127.0.0.1.

::

    with LocalStack() as stack, LocalSponsor(stack) as sponsor:
        net = keyscope.connect(stack.rpc_url, stack.bundler_url, module=stack.module,
                               factory=stack.factory, paymaster=sponsor.url)
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ..devnode import ETHER
from ..errors import ConfigurationError
from ..hexutil import to_address
from ..signing import LocalSigner
from .deploy import PaymasterState, deploy_sponsor_paymaster, paymaster_state
from .policy import SponsorshipPolicy
from .server import SponsorServer
from .service import Sponsor, chain_clock

if TYPE_CHECKING:
    from ..local import LocalStack

__all__ = ["LocalSponsor"]


class LocalSponsor:
    """A ``SponsorPaymaster`` on ``stack`` and its sponsor service.

    * ``policy``: what is sponsored; by default every account, new accounts only from the stack's keyscope
      factory for the paymaster's EntryPoint, EOAs delegating only to the stack's ``KeyscopeDelegate`` (on
      EntryPoint v0.8; none on v0.7, which has no EIP-7702 operations), only the stack's demo NFT, and at most the
      deposit in all (``total_budget_wei``);
    * ``signer``: the sponsor's key (default: a new random one);
    * ``deposit`` / ``stake``: wei put at the EntryPoint (the deposit pays; the stake lets the paymaster
      read its own storage during validation, as ERC-7562 requires);
    * ``entry_point``: the EntryPoint the paymaster serves (default: the stack's v0.7; ``stack.entry_point_v08``
      for v0.8).

    The paymaster is deployed (from the stack's deployer, who owns it) by :meth:`start`; the service is
    stopped by :meth:`stop` (the paymaster stays on the chain).
    """

    def __init__(
        self,
        stack: LocalStack,
        *,
        policy: SponsorshipPolicy | None = None,
        signer: LocalSigner | None = None,
        deposit: int = 10 * ETHER,
        stake: int = ETHER,
        unstake_delay: int = 86_400,
        entry_point: str | None = None,
    ) -> None:
        self.stack = stack
        self.entry_point = entry_point
        self.signer = signer or LocalSigner.generate()
        self.deposit = deposit
        self.stake = stake
        self.unstake_delay = unstake_delay
        self._policy = policy
        self._paymaster: str | None = None
        self._server: SponsorServer | None = None

    def start(self) -> LocalSponsor:
        """Deploy the paymaster (first call only) and start the service; returns self."""
        stack = self.stack
        if self._server is not None:
            raise ConfigurationError("this LocalSponsor is already running")
        if self._paymaster is None:
            self._paymaster = deploy_sponsor_paymaster(
                stack.node,
                stack.deployer.address,
                entry_point=self._entry_point,
                signer=self.signer.address,
                deposit=self.deposit,
                stake=self.stake,
                unstake_delay=self.unstake_delay,
            )
        # the stack's keyscope factory for this EntryPoint (a v0.7 factory's accounts never reach a v0.8 paymaster)
        v08 = to_address(self._entry_point) != to_address(stack.entry_point)
        factory = stack.factory_v08 if v08 else stack.factory
        policy = self._policy or SponsorshipPolicy(
            name="keyscope local sponsor",
            factories=(factory,),
            delegates=(stack.delegate,) if v08 else (),
            targets={stack.nft: "any"},
            total_budget_wei=self.deposit,
        )
        sponsor = Sponsor(
            paymaster=self._paymaster,
            signer=self.signer,
            chain_id=stack.chain_id,
            entry_point=self._entry_point,
            policy=policy,
            clock=chain_clock(stack.rpc_url),
        )
        self._server = SponsorServer(sponsor).start()
        return self

    def stop(self) -> None:
        """Stop the service. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalSponsor:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The ERC-7677 service's URL (give it as ``paymaster=`` to :func:`keyscope.connect`)."""
        return self._running().url

    @property
    def sponsor(self) -> Sponsor:
        """The service's sponsor (policy, budget ledger)."""
        return self._running().sponsor

    @property
    def paymaster(self) -> str:
        """The ``SponsorPaymaster``'s address."""
        if self._paymaster is None:
            raise ConfigurationError("the sponsor paymaster is not deployed yet: call start()")
        return self._paymaster

    def state(self) -> PaymasterState:
        """The paymaster's signer, owner, deposit and stake, read from the chain."""
        return paymaster_state(self.stack.node, self.paymaster, self._entry_point)

    @property
    def _entry_point(self) -> str:
        return self.entry_point or self.stack.entry_point

    def _running(self) -> SponsorServer:
        if self._server is None:
            raise ConfigurationError(
                "the local sponsor is not running: call start() or use it in a with block"
            )
        return self._server

    def __repr__(self) -> str:
        if self._server is None:
            return "LocalSponsor(stopped)"
        return f"LocalSponsor(paymaster={self._paymaster}, url={self._server.url})"
