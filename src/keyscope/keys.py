"""Session keys: ordinary secp256k1 keys that a dapp holds and the owner grants a session to."""

from __future__ import annotations

from .signing import LocalSigner

__all__ = ["SessionKey"]


class SessionKey(LocalSigner):
    """A session key (an EOA key). ``SessionKey.generate()`` makes a new one; keep it in a
    :mod:`keyscope.store` (encrypted at rest) to use it again later."""

    @classmethod
    def generate(cls) -> SessionKey:
        """A new random session key."""
        return cls(LocalSigner.generate().private_key)

    def __repr__(self) -> str:
        return f"SessionKey({self.address})"
