"""The entry point of the SDK: a :class:`Network` (node, bundler, EntryPoint, session module) and the two
objects made from it, the account's :class:`~keyscope.owner.Owner` and a dapp's
:class:`~keyscope.session_account.SessionAccount`."""

from __future__ import annotations

from collections.abc import Callable

from .co_signer import CoSigner
from .endpoints import Endpoints
from .eoa import EOAOwner
from .grant import SessionGrant
from .hexutil import to_address
from .keys import SessionKey
from .operations import DEFAULT_OWNER_MAX_GAS_COST
from .owner import Owner
from .session_account import SessionAccount
from .signers import SignerLike, as_signer

__all__ = ["Network", "connect"]


class Network(Endpoints):
    """A node (:class:`~keyscope.chain.Chain`), a bundler (:class:`~keyscope.bundler.Bundler`), the EntryPoint
    (v0.7 or v0.8) and the deployed ``SessionKeyValidator``; ``factory`` (a ``KeyscopeAccountFactory``) is needed
    only to create keyscope accounts, ``delegate`` (a ``KeyscopeDelegate``) only to make EOAs session-capable with
    EIP-7702, ``paymaster`` only to have operations sponsored.

    ``kind`` is the adapter of the accounts used here; None (the default) finds each account's kind out
    (:meth:`kind_for`), with ``owner_validator`` as the validator module owners sign through where the kind
    has one.

    Build it with :func:`connect`.
    """

    def owner(
        self,
        signer: SignerLike,
        account: str | None = None,
        *,
        salt: int = 0,
        max_gas_cost: int = DEFAULT_OWNER_MAX_GAS_COST,
    ) -> Owner:
        """The :class:`~keyscope.owner.Owner` of ``account`` (or, with ``account`` None, of the keyscope account
        ``signer`` owns at ``salt``, created by its first operation with the session module installed). With
        ``account`` the signer's own address, the owner of that EOA (:meth:`eoa`).

        ``signer`` is the owner's key: a private key (``"0x"`` and 64 hex digits), an eth-account
        ``LocalAccount``, an ape account or any :class:`~keyscope.signing.HashSigner`; anything else raises
        :class:`~keyscope.errors.BadInputError` (see :func:`keyscope.signers.as_signer`).

        ``max_gas_cost``: the most one of the owner's operations may cost in gas, in wei (0.1 ether unless given; 0
        for no cap), as the bundler prices it; one priced higher is refused before the owner signs it."""
        if account is not None:
            own = as_signer(signer, role="owner")
            if to_address(account, name="account") == to_address(own.address):
                return self.eoa(own, max_gas_cost=max_gas_cost)
        return Owner(self, signer, account, salt=salt, max_gas_cost=max_gas_cost)

    def eoa(self, signer: SignerLike, *, max_gas_cost: int = DEFAULT_OWNER_MAX_GAS_COST) -> EOAOwner:
        """The :class:`~keyscope.eoa.EOAOwner` of ``signer``'s own EOA (``signer`` in any form :meth:`owner`
        takes), made session-capable with EIP-7702 (needs ``delegate``, keyscope's ``KeyscopeDelegate``, and
        EntryPoint v0.8)."""
        return EOAOwner(self, as_signer(signer, role="owner"), max_gas_cost=max_gas_cost)

    def session(
        self,
        grant: SessionGrant,
        key: SessionKey | SignerLike,
        *,
        lane: int = 0,
        clock: Callable[[], float] | None = None,
        verify_on_chain: bool = True,
        estimate_ttl: float = 30.0,
        co_signer: CoSigner | None = None,
    ) -> SessionAccount:
        """A :class:`~keyscope.session_account.SessionAccount` sending operations with ``key`` under ``grant``
        (``key`` in any form :meth:`owner` takes; the options are the session account's, see there)."""
        return SessionAccount(
            grant,
            key,
            network=self,
            lane=lane,
            clock=clock,
            verify_on_chain=verify_on_chain,
            estimate_ttl=estimate_ttl,
            co_signer=co_signer,
        )


connect = Network.from_urls
"""``connect(node, bundler, *, module, ...)``: a :class:`Network` from URLs (see :meth:`Network.from_urls`)."""
