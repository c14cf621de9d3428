"""The owner as the backend knows them when their key is in a browser wallet: an address, no key."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..hexutil import to_address

__all__ = ["WalletAddress"]


class WalletAddress:
    """A :class:`~keyscope.signing.HashSigner` that is only an address: it lets an
    :class:`~keyscope.owner.Owner` prepare what the owner's wallet signs (a grant request, an operation), and
    refuses to sign itself, since the key is in the wallet."""

    __slots__ = ("_address",)

    def __init__(self, address: str) -> None:
        self._address = to_address(address, name="the wallet's address")

    @property
    def address(self) -> str:
        """The owner's address, as the wallet reported it."""
        return self._address

    def _refuse(self) -> ConfigurationError:
        return ConfigurationError(
            f"the key of {self._address} is in the owner's wallet: have the wallet sign (the consent page and the "
            "dashboard do), keyscope cannot"
        )

    def sign_hash(self, digest: bytes) -> bytes:
        raise self._refuse()

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        raise self._refuse()

    def __repr__(self) -> str:
        return f"WalletAddress({self._address})"
