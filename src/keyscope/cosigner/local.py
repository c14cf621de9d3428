"""A co-signer service for a running :class:`~keyscope.local.LocalStack`, on 127.0.0.1::

with LocalStack() as stack, LocalCoSigner(stack) as co_signer:
    grant = owner.grant(key, permissions, co_signer=co_signer.address, onchain=True)
    session = net.session(grant, key, co_signer=remote_co_signer(co_signer.url))
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..signers import SignerLike, as_signer
from ..signing import LocalSigner
from .server import CoSignerServer
from .service import CoSignerService, CoSignPolicy

if TYPE_CHECKING:
    from ..local import LocalStack

__all__ = ["LocalCoSigner"]


class LocalCoSigner:
    """The co-signer service for ``stack``'s session module and EntryPoint v0.7, holding ``key`` (in any form a
    keyscope key takes; default: a new random one; a bad one refused now, never shown) and approving what
    ``policy`` allows (default: anything)."""

    def __init__(
        self, stack: LocalStack, *, key: SignerLike | None = None, policy: CoSignPolicy | None = None
    ) -> None:
        self.stack = stack
        self.key = LocalSigner.generate() if key is None else as_signer(key, role="co-signer")
        self.policy = policy
        self._server: CoSignerServer | None = None

    @property
    def address(self) -> str:
        """The co-signer's address, for grants (``co_signer=``)."""
        return self.key.address

    @property
    def url(self) -> str:
        """The service's URL, for :func:`~keyscope.cosigner.remote_co_signer`."""
        if self._server is None:
            raise ConfigurationError(
                "the co-signer service is not running: call start() or use it in a with block"
            )
        return self._server.url

    def start(self) -> LocalCoSigner:
        """Start the service; returns self."""
        stack = self.stack
        service = CoSignerService(
            self.key,
            chain_id=stack.chain_id,
            module=stack.module,
            entry_point=stack.entry_point,
            policy=self.policy,
        )
        self._server = CoSignerServer(service).start()
        return self

    def stop(self) -> None:
        """Stop the service. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalCoSigner:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
