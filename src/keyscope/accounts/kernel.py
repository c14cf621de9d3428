"""ZeroDev Kernel v3.1 (``accountId()`` ``kernel.advanced.v0.3.1``).

* Nonce: the 192-bit key is ``mode (1 byte) ‖ type (1) ‖ validator (20) ‖ lane (2)``: mode 0 validates as
  installed (1 would enable a validator from the signature), type 0 means the root validator (whatever the
  next 20 bytes say), type 1 a validator module named by the next 20 bytes. The lane has 16 bits.
* Installing a validator: ``installModule(1, module, hook (20 bytes) ‖ abi.encode(validatorData, hookData,
  selectorData))``. A non-root validator may validate only operations whose callData selector it was granted:
  the session module is granted ``execute`` (0xe9ae5c53) and nothing else, so a session can never call
  ``installModule`` or any other account function. No hook (address 0).
* ERC-1271: ``0x00 ‖ sig`` asks the root validator, but Kernel hands it its own EIP-712 hash of the digest
  (``Kernel(bytes32 hash)`` in the domain ``"Kernel"``, ``"0.3.1"``, chain id, account), so that is what the
  owner signs.
* Creation: ``KernelFactory.createAccount(initialize(0x01 ‖ rootValidator, hook 0, rootValidatorData, "",
  initConfig), salt)``; ``initConfig`` holds ``installModule`` calls the account makes to itself, which is how
  the session module is installed at creation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import BadInputError, ConfigurationError
from ..execution import Call
from ..hexutil import ZERO_ADDRESS, to_address, to_bytes
from ..selectors import EXECUTE as EXECUTE_SELECTOR
from .base import (
    INSTALL_MODULE,
    MODULE_TYPE_VALIDATOR,
    AccountKind,
    Deployment,
    module_config_call,
)

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["EXECUTE_SELECTOR", "KernelAccountKind"]

_INITIALIZE = keccak(b"initialize(bytes21,address,bytes,bytes,bytes[])")[:4]
_CREATE_ACCOUNT = keccak(b"createAccount(bytes,bytes32)")[:4]
_GET_ADDRESS = keccak(b"getAddress(bytes,bytes32)")[:4]

_TYPE_VALIDATOR = 1
_WRAPPER_TYPEHASH = keccak(b"Kernel(bytes32 hash)")
_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_NO_HOOK = bytes(20)


class KernelAccountKind(AccountKind):
    """Adapter for Kernel v3.1.

    ``owner_validator`` (the root validator, e.g. an ECDSA validator) and ``factory`` (a ``KernelFactory``)
    are needed only to create accounts; an existing account's root validator is selected without naming it.
    """

    account_id_prefix = "kernel.advanced.v0.3.1"
    name = "kernel"
    lane_bits = 16
    domain_name = "Kernel"
    domain_version = "0.3.1"

    def __init__(self, *, owner_validator: str | None = None, factory: str | None = None) -> None:
        self.owner_validator = (
            to_address(owner_validator, name="owner_validator") if owner_validator else None
        )
        self.factory = to_address(factory, name="factory") if factory else None

    def __repr__(self) -> str:
        return f"KernelAccountKind(owner_validator={self.owner_validator}, factory={self.factory})"

    # -- validation ----------------------------------------------------------------------------------

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        if not 0 <= lane < 2**16:
            raise BadInputError(
                f"nonce lane {lane} does not fit in the 2 bytes Kernel leaves free (0..65535)"
            )
        if validator is None:
            return lane  # mode 0, type 0: the root validator
        return (_TYPE_VALIDATOR << 176) | (int(to_address(validator), 16) << 16) | lane

    def install_validator_call(self, account: str, module: str, init_data: bytes = b"") -> Call:
        return Call(to_address(account), 0, self._install_data(module, init_data))

    @staticmethod
    def _install_data(module: str, init_data: bytes) -> bytes:
        """``installModule`` calldata: no hook, ``init_data`` for the validator, ``execute`` granted."""
        packed = _NO_HOOK + abi_encode(["bytes", "bytes", "bytes"], [init_data, b"", EXECUTE_SELECTOR])
        return module_config_call(INSTALL_MODULE, ZERO_ADDRESS, module, packed).data

    # -- owner signatures ----------------------------------------------------------------------------

    def domain_separator(self, account: str, chain_id: int) -> bytes:
        """Kernel's EIP-712 domain separator for ``account`` on ``chain_id``."""
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPEHASH,
                    keccak(self.domain_name.encode()),
                    keccak(self.domain_version.encode()),
                    chain_id,
                    to_address(account),
                ],
            )
        )

    def erc1271_digest(self, account: str, chain_id: int, digest: bytes) -> bytes:
        struct_hash = keccak(abi_encode(["bytes32", "bytes32"], [_WRAPPER_TYPEHASH, digest]))
        return keccak(b"\x19\x01" + self.domain_separator(account, chain_id) + struct_hash)

    def wrap_erc1271_signature(self, signature: bytes) -> bytes:
        return b"\x00" + signature  # root validator

    def validator_erc1271_signature(self, validator: str, signature: bytes) -> bytes:
        """Kernel's validation id of a validator module: ``0x01 ‖ validator (20 bytes)``, then the signature. Kernel
        hands the validator its own wrapping of the hash (:meth:`erc1271_digest`), which the session module
        recognises in the account's EIP-712 domain."""
        return b"\x01" + to_bytes(validator, name="validator", length=20) + signature

    # -- creation ------------------------------------------------------------------------------------

    def initialize_data(self, owner: str, modules: Sequence[tuple[int, str, bytes]] = ()) -> bytes:
        """``Kernel.initialize`` calldata: the owner validator as root (given ``owner``), ``modules`` (validators
        only) installed by ``initConfig``."""
        if self.owner_validator is None:
            raise ConfigurationError("creating a Kernel account needs owner_validator= (its root validator)")
        config = []
        for module_type, module, data in modules:
            if module_type != MODULE_TYPE_VALIDATOR:
                raise BadInputError(
                    f"only validators can be installed at creation here, not module type {module_type}"
                )
            config.append(self._install_data(module, data))
        root = b"\x01" + to_bytes(self.owner_validator, length=20)
        return _INITIALIZE + abi_encode(
            ["bytes21", "address", "bytes", "bytes", "bytes[]"],
            [root, to_address("0x" + "00" * 20), to_bytes(to_address(owner), length=20), b"", config],
        )

    def deployment(
        self, chain: Chain, owner: str, modules: Sequence[tuple[int, str, bytes]], salt: int = 0
    ) -> Deployment:
        if self.factory is None:
            raise ConfigurationError("creating a Kernel account needs factory= (a KernelFactory)")
        args = abi_encode(
            ["bytes", "bytes32"], [self.initialize_data(owner, modules), salt.to_bytes(32, "big")]
        )
        (address,) = abi_decode(["address"], chain.call(self.factory, _GET_ADDRESS + args))
        return Deployment(
            address=to_address(address), factory=self.factory, factory_data=_CREATE_ACCOUNT + args
        )
