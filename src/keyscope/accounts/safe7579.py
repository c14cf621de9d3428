"""Safe 1.4.1 with the Safe7579 adapter 1.0 (``accountId()`` ``rhinestone.safe7579.v1.0.x``).

* Nonce: the 192-bit key is ``validator (20 bytes) ‖ lane (4)``, as in the ERC-7579 reference account. A key
  naming no installed validator falls back to the Safe owners' signatures (over Safe7579's own typed data,
  not the userOpHash): an unknown validator therefore gives AA24, not AA23.
* Installing a validator: ``installModule(1, module, initData)``, ``initData`` passed to ``onInstall``.
  Uninstalling: ``uninstallModule(1, module, abi.encode(prev, deinitData))`` (sentinel list, needs the chain).
* ERC-1271: ``validator (20 bytes) ‖ sig``, the validator asked about the raw hash.
* Creation: the Safe proxy factory creates a proxy of the Safe7579 launchpad
  (``createProxyWithNonce(launchpad, preValidationSetup(initHash, 0, ""), salt)``); the first operation's
  callData must be ``launchpad.setupSafe(InitData)``, which turns the proxy into a Safe with Safe7579 as module
  and fallback handler, then runs ``InitData.callData`` (the real ``execute``). The validators listed in
  ``InitData`` (the owner validator and the session module) are installed while that operation is validated.
  Because that first callData is not ``execute``, a session's first operation cannot create the account: the
  owner's first operation does (:attr:`sessions_can_create` is False).
* Errors a validator reverts with reach the bundler as Safe7579's ``ExecutionFailed()``: the session module's
  reason (``RuleViolated`` ...) is not passed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import BadInputError, ConfigurationError
from ..hexutil import to_address, to_bytes
from .base import Deployment
from .module_owned import ModuleOwnedAccountKind, optional_address

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["INIT_DATA_ABI_TYPE", "Safe7579AccountKind", "Safe7579Deployment"]

INIT_DATA_ABI_TYPE = "(address,address[],uint256,address,bytes,address,(address,bytes)[],bytes)"
"""``Safe7579Launchpad.InitData``: singleton, owners, threshold, setupTo, setupData, safe7579, validators,
callData."""

_SETUP_SAFE = keccak(f"setupSafe({INIT_DATA_ABI_TYPE})".encode())[:4]
_INIT_SAFE7579 = keccak(
    b"initSafe7579(address,(address,bytes)[],(address,bytes)[],(address,bytes)[],address[],uint8)"
)[:4]
_PRE_VALIDATION_SETUP = keccak(b"preValidationSetup(bytes32,address,bytes)")[:4]
_CREATE_PROXY = keccak(b"createProxyWithNonce(address,bytes,uint256)")[:4]
_PROXY_CREATION_CODE = keccak(b"proxyCreationCode()")[:4]
_ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class Safe7579Deployment(Deployment):
    """A Safe7579 deployment, with the launchpad's ``InitData`` (its ``callData`` left empty) that the first
    operation's ``setupSafe`` carries."""

    init_data: tuple[Any, ...] = ()


class Safe7579AccountKind(ModuleOwnedAccountKind):
    """Adapter for a Safe with the Safe7579 adapter.

    ``owner_validator`` is the validator module the owner signs through (needed for owner operations and
    ERC-1271). ``safe7579``, ``launchpad``, ``singleton`` (Safe 1.4.1) and ``proxy_factory`` are needed only to
    create accounts, ``chain`` only to uninstall a validator.
    """

    account_id_prefix = "rhinestone.safe7579.v1.0."
    name = "safe7579"
    sessions_can_create = False
    _validator_phrase = "a Safe7579 validator"
    _lane_phrase = "Safe7579"

    def __init__(
        self,
        *,
        owner_validator: str | None = None,
        safe7579: str | None = None,
        launchpad: str | None = None,
        singleton: str | None = None,
        proxy_factory: str | None = None,
        chain: Chain | None = None,
    ) -> None:
        super().__init__(owner_validator=owner_validator, chain=chain)
        self.safe7579 = optional_address(safe7579, "safe7579")
        self.launchpad = optional_address(launchpad, "launchpad")
        self.singleton = optional_address(singleton, "singleton")
        self.proxy_factory = optional_address(proxy_factory, "proxy_factory")

    def __repr__(self) -> str:
        return f"Safe7579AccountKind(owner_validator={self.owner_validator}, safe7579={self.safe7579})"

    def _missing_owner_validator(self) -> str:
        return "the owner of a Safe7579 account signs through a validator module here: give owner_validator= (its address)"

    # -- validation ----------------------------------------------------------------------------------

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return (int(self._nonce_validator(validator, lane), 16) << 32) | lane

    # -- creation ------------------------------------------------------------------------------------

    def _creation_contracts(self) -> tuple[str, str, str, str]:
        missing = [
            name
            for name in ("safe7579", "launchpad", "singleton", "proxy_factory")
            if getattr(self, name) is None
        ]
        if missing:
            raise ConfigurationError(
                f"creating a Safe7579 account needs {', '.join(m + '=' for m in missing)}"
            )
        assert self.safe7579 and self.launchpad and self.singleton and self.proxy_factory
        return self.safe7579, self.launchpad, self.singleton, self.proxy_factory

    def init_data(self, owner: str, modules: Sequence[tuple[int, str, bytes]] = ()) -> tuple[Any, ...]:
        """The launchpad's ``InitData`` (empty ``callData``): ``owner`` as the Safe's single owner, the owner
        validator (with ``owner``) and ``modules`` (validators only) installed, no registry."""
        safe7579, launchpad, singleton, _ = self._creation_contracts()
        validators = self._creation_validators(owner, modules)
        setup = _INIT_SAFE7579 + abi_encode(
            ["address", "(address,bytes)[]", "(address,bytes)[]", "(address,bytes)[]", "address[]", "uint8"],
            [safe7579, [], [], [], [], 0],
        )
        return (singleton, [to_address(owner)], 1, launchpad, setup, safe7579, validators, b"")

    @staticmethod
    def init_hash(init_data: tuple[Any, ...]) -> bytes:
        """``Safe7579Launchpad.hash(InitData)``: every field but ``callData``."""
        return keccak(
            abi_encode(
                ["address", "address[]", "uint256", "address", "bytes", "address", "(address,bytes)[]"],
                list(init_data[:7]),
            )
        )

    def deployment(
        self, chain: Chain, owner: str, modules: Sequence[tuple[int, str, bytes]], salt: int = 0
    ) -> Safe7579Deployment:
        _, launchpad, _, proxy_factory = self._creation_contracts()
        init_data = self.init_data(owner, modules)
        initializer = _PRE_VALIDATION_SETUP + abi_encode(
            ["bytes32", "address", "bytes"], [self.init_hash(init_data), _ZERO, b""]
        )
        factory_data = _CREATE_PROXY + abi_encode(
            ["address", "bytes", "uint256"], [launchpad, initializer, salt]
        )
        (creation_code,) = abi_decode(["bytes"], chain.call(proxy_factory, _PROXY_CREATION_CODE))
        create2_salt = keccak(keccak(initializer) + salt.to_bytes(32, "big"))
        code_hash = keccak(creation_code + abi_encode(["address"], [launchpad]))
        address = keccak(b"\xff" + to_bytes(proxy_factory, length=20) + create2_salt + code_hash)[12:]
        return Safe7579Deployment(
            address=to_address("0x" + address.hex()),
            factory=proxy_factory,
            factory_data=factory_data,
            init_data=init_data,
        )

    def creation_call_data(self, deployment: Deployment, call_data: bytes) -> bytes:
        if not isinstance(deployment, Safe7579Deployment):
            raise BadInputError("a Safe7579 account is created through a Safe7579Deployment")
        init_data = (*deployment.init_data[:7], call_data)
        return _SETUP_SAFE + abi_encode([INIT_DATA_ABI_TYPE], [init_data])
