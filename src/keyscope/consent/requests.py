"""Consent requests waiting for the owner: what the page shows, the grant request the wallet signs, and the
outcome the dapp's backend waits for."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..endpoints import Endpoints
from ..erc7715 import PermissionResponse, SessionPlan, responses_for
from ..errors import BadInputError, KeyscopeError, UnsupportedAccountError
from ..grant import SessionGrant
from ..hexutil import to_address, to_wire_int
from ..owner import DEFAULT_MAX_GAS_COST, GrantRequest, Owner
from .describe import GrantDescription
from .wallet import WalletAddress

__all__ = [
    "ConsentDeclinedError",
    "ConsentRequest",
    "ConsentTimeoutError",
    "gas_cap",
    "require_wallet_signable",
]


def gas_cap(value: object) -> int:
    """A per-operation gas cap as given: integer wei (or its decimal text) from 0 (no cap) to 2**256 - 1. A bool
    or a float is refused: ``False`` and ``0.0`` would read as 0, no cap at all."""
    cap = to_wire_int(value, name="max_gas_cost")
    if not 0 <= cap < 2**256:
        raise BadInputError(f"max_gas_cost is wei from 0 (no cap) to 2**256 - 1, got {cap}")
    return cap


def require_wallet_signable(endpoints: Endpoints, request: GrantRequest) -> None:
    """Raise unless a wallet's ``eth_signTypedData_v4`` of ``request.typed_data`` is what the account checks:
    accounts that wrap the digest in their own EIP-712 domain (Kernel) need the owner to sign the wrapped one."""
    kind = endpoints.kind_for(request.account, named=request.account_kind)
    if kind.erc1271_digest(request.account, request.chain_id, request.digest) != request.digest:
        raise UnsupportedAccountError(
            f"the {kind.name} account {request.account} checks its owner's signature over its own wrapping of the "
            "grant's digest, not over the grant's typed data a wallet signs: the consent page cannot grant on it. "
            "Grant with Owner.grant (the owner's key in the backend), or use an account that checks the digest as "
            "it is (keyscope's, Nexus, Safe7579)"
        )


class ConsentDeclinedError(KeyscopeError):
    """The owner declined the grant on the consent page."""


class ConsentTimeoutError(KeyscopeError, TimeoutError):
    """The owner did not answer the consent page in time."""


@dataclass
class ConsentRequest:
    """A grant the owner is asked to consent to, at :attr:`url`.

    Made by :meth:`ConsentServer.request_grant` (a ready :class:`~keyscope.owner.GrantRequest`) or
    :meth:`ConsentServer.request_permissions` (ERC-7715 requests: the grant request is made for the account of
    the wallet that connects). :meth:`wait` returns the checked grant, or raises when the owner declines.
    ``max_gas_cost`` is checked as :func:`gas_cap` does (a bool, a float or a negative number is refused).
    """

    description: GrantDescription
    grant_request: GrantRequest | None = None
    plan: SessionPlan | None = None
    max_gas_cost: int = DEFAULT_MAX_GAS_COST
    """The gas cap of a ``plan`` that sets none: the one its description shows, so the one the wallet signs."""
    url: str = ""
    id: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    grant: SessionGrant | None = None
    responses: list[PermissionResponse] | None = None
    declined: bool = False
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.max_gas_cost = gas_cap(self.max_gas_cost)

    @property
    def state(self) -> str:
        """``waiting``, ``granted`` or ``declined``."""
        if self.grant is not None:
            return "granted"
        return "declined" if self.declined else "waiting"

    @property
    def owner(self) -> str | None:
        """The address whose wallet must sign (None: whichever wallet connects, for its own account)."""
        return self.grant_request.owner if self.grant_request is not None and self.plan is None else None

    def connect(self, endpoints: Endpoints, address: str, chain_id: int) -> GrantRequest:
        """The grant request the wallet of ``address`` (on ``chain_id``) signs; raises
        :class:`~keyscope.errors.BadInputError` for the wrong wallet or chain, or a request already answered."""
        wallet = to_address(address, name="the wallet's address")
        with self._lock:
            if self.state != "waiting":
                raise BadInputError(f"this request is already {self.state}")
            expected = self.plan.chain_id if self.plan is not None else self.description.chain_id
            if chain_id != expected:
                raise BadInputError(
                    f"the wallet is on chain {chain_id}, the grant is for chain {expected}: switch the wallet's "
                    "network, then approve again"
                )
            if self.plan is None:
                assert self.grant_request is not None
                owner = self.grant_request.owner
                if owner is not None and wallet != owner:
                    raise BadInputError(f"connect the wallet of the account's owner {owner}, not {wallet}")
                return self.grant_request
            if self.grant_request is None or self.grant_request.owner != wallet:
                owner_of = Owner(endpoints, WalletAddress(wallet), self.plan.account)
                session = self.plan.session(max_gas_cost=self.max_gas_cost, salt=secrets.randbits(64))
                request = owner_of.request_for(session)
                require_wallet_signable(endpoints, request)
                self.grant_request = request
            return self.grant_request

    def complete(
        self,
        signature: str,
        store_grant: Callable[[SessionGrant], Any] | None,
        *,
        endpoints: Endpoints | None = None,
    ) -> SessionGrant:
        """Check the wallet's signature and finish the request (the waiting :meth:`wait` returns). With
        ``endpoints``, a deployed account is asked whether it takes the signature (its ERC-1271, as the module will
        ask), rather than the request's ``owner`` field alone being compared with its signer: a request read from a
        dapp's JSON names whatever owner the dapp wrote."""
        with self._lock:
            if self.state != "waiting" or self.grant_request is None:
                raise BadInputError(
                    "connect the wallet first"
                    if self.state == "waiting"
                    else f"this request is already {self.state}"
                )
            grant = self.grant_request.complete(signature, network=endpoints)
            if store_grant is not None:
                store_grant(grant)
            if self.plan is not None:
                self.responses = responses_for(self.plan, grant)
            self.grant = grant
        self._done.set()
        return grant

    def decline(self) -> None:
        """The owner said no."""
        with self._lock:
            if self.state != "waiting":
                raise BadInputError(f"this request is already {self.state}")
            self.declined = True
        self._done.set()

    def wait(self, timeout: float | None = None) -> SessionGrant:
        """Block until the owner answers: the grant, checked (:class:`ConsentDeclinedError` if declined,
        :class:`ConsentTimeoutError` after ``timeout`` seconds)."""
        if not self._done.wait(timeout):
            raise ConsentTimeoutError(
                f"the owner did not answer the consent page {self.url} in {timeout:g} s: nothing was granted; ask "
                "again, with more time for the owner"
            )
        if self.grant is None:
            raise ConsentDeclinedError(f"the owner declined the grant at {self.url}")
        return self.grant
