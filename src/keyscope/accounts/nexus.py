"""Biconomy Nexus 1.0 (``accountId()`` ``biconomy.nexus.1.0.x``).

* Nonce: the 192-bit key is ``lane (3 bytes) ‖ mode (1) ‖ validator (20)``; mode 0 validates with an
  installed validator (1 would install a module from the signature first). The lane has 24 bits. An unknown
  validator reverts (``ValidatorNotInstalled``, AA23).
* Installing a validator: ``installModule(1, module, initData)``, ``initData`` passed to ``onInstall``.
  Uninstalling: ``uninstallModule(1, module, abi.encode(prev, deinitData))``, ``prev`` read from the account's
  validator list (so this adapter needs the chain for it).
* ERC-1271: ``validator (20 bytes) ‖ sig``, the validator asked about the raw hash.
* Creation: ``NexusAccountFactory.createAccount(abi.encode(bootstrap, initNexus(validators, [], no hook, [],
  registry 0, [], 0)), salt)``: the owner validator and the session module are both installed by the
  bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import ConfigurationError
from ..hexutil import to_address
from .base import Deployment
from .module_owned import FactoryCreatedAccountKind

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["NexusAccountKind"]

_INIT_NEXUS = keccak(
    b"initNexus((address,bytes)[],(address,bytes)[],(address,bytes),(address,bytes)[],address,address[],uint8)"
)[:4]
_CREATE_ACCOUNT = keccak(b"createAccount(bytes,bytes32)")[:4]
_COMPUTE_ADDRESS = keccak(b"computeAccountAddress(bytes,bytes32)")[:4]
_ZERO = "0x" + "00" * 20


class NexusAccountKind(FactoryCreatedAccountKind):
    """Adapter for Nexus 1.0.

    ``owner_validator`` is the validator the owner signs through (e.g. an ECDSA validator holding the owner's
    key): needed for owner operations and ERC-1271. ``factory`` (a ``NexusAccountFactory``) and ``bootstrap`` (a
    ``NexusBootstrap``) are needed only to create accounts, ``chain`` only to uninstall a validator.
    """

    account_id_prefix = "biconomy.nexus.1.0."
    name = "nexus"
    lane_bits = 24
    _validator_phrase = "a Nexus validator"
    _lane_phrase = "Nexus"

    def __repr__(self) -> str:
        return f"NexusAccountKind(owner_validator={self.owner_validator}, factory={self.factory})"

    def _missing_owner_validator(self) -> str:
        return "a Nexus account's owner signs through a validator module: give owner_validator= (its address)"

    # -- validation ----------------------------------------------------------------------------------

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return (lane << 168) | int(self._nonce_validator(validator, lane), 16)  # mode byte 0: validate

    # -- creation ------------------------------------------------------------------------------------

    def init_data(self, owner: str, modules: Sequence[tuple[int, str, bytes]] = ()) -> bytes:
        """``abi.encode(bootstrap, initNexus(...))``: the owner validator (with ``owner``) and ``modules``
        (validators only), no registry."""
        if self.bootstrap is None:
            raise ConfigurationError("creating a Nexus account needs bootstrap= (a NexusBootstrap)")
        validators = self._creation_validators(owner, modules)
        call = _INIT_NEXUS + abi_encode(
            [
                "(address,bytes)[]",
                "(address,bytes)[]",
                "(address,bytes)",
                "(address,bytes)[]",
                "address",
                "address[]",
                "uint8",
            ],
            [validators, [], (_ZERO, b""), [], _ZERO, [], 0],
        )
        return abi_encode(["address", "bytes"], [self.bootstrap, call])

    def deployment(
        self, chain: Chain, owner: str, modules: Sequence[tuple[int, str, bytes]], salt: int = 0
    ) -> Deployment:
        if self.factory is None:
            raise ConfigurationError("creating a Nexus account needs factory= (a NexusAccountFactory)")
        args = abi_encode(["bytes", "bytes32"], [self.init_data(owner, modules), salt.to_bytes(32, "big")])
        (address,) = abi_decode(["address"], chain.call(self.factory, _COMPUTE_ADDRESS + args))
        return Deployment(
            address=to_address(address), factory=self.factory, factory_data=_CREATE_ACCOUNT + args
        )
