"""Any ERC-7579 account that follows the reference implementation's conventions, and the reference account itself
(``erc7579/erc7579-implementation``, "MSA", ``accountId()`` ``uMSA.advanced/withHook.v0.1``).

ERC-7579 standardises modules, ``execute`` and ``installModule``, but leaves three things to each account; the
reference implementation settles them as follows, and :class:`ERC7579AccountKind` assumes the same:

* Nonce: the 192-bit key is ``validator (20 bytes) ‖ lane (4)``; the owner signs through a validator module
  (``owner_validator``) like any other. A key naming no installed validator fails validation (AA24).
* ERC-1271: ``validator (20 bytes) ‖ sig``; the validator is asked about the hash as it is.
* Uninstalling a validator: ``uninstallModule(1, module, abi.encode(prev, deinitData))``, ``prev`` read from the
  account's sentinel-linked validator list (``getValidatorsPaginated``), so the adapter needs the chain. An
  account that lists no validators that way (OpenZeppelin's ``AccountERC7579`` keeps them in a set, and passes
  ``deInitData`` to the module as it is) gets ``uninstallModule(1, module, deinitData)``: the adapter asks the
  account which it is.

Creation, where the adapter is given a ``factory`` and a ``bootstrap``: the reference factory's
``createAccount(bytes32 salt, bytes initCode)`` (address from ``getAddress(salt, initCode)``), ``initCode`` being
``abi.encode(bootstrap, initMSA(validators, executors, hook, fallbacks))`` with the owner validator (given the
owner's address) and the modules to install as ``validators``.

Accounts whose ``accountId()`` keyscope has no adapter for get an :class:`ERC7579AccountKind` from
:func:`~keyscope.accounts.detect_kind`: the conventions above are the likeliest, not certain. When such an account
refuses the owner's signature, :meth:`~keyscope.owner.Owner.grant` says so before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import ConfigurationError
from ..execution import Call
from ..hexutil import ZERO_ADDRESS, to_address
from .base import UNINSTALL_MODULE, Deployment, module_config_call
from .module_owned import FactoryCreatedAccountKind
from .sentinel import lists_validators

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["ERC7579AccountKind", "MSAAccountKind"]

_INIT_MSA = keccak(b"initMSA((address,bytes)[],(address,bytes)[],(address,bytes),(address,bytes)[])")[:4]
_CREATE_ACCOUNT = keccak(b"createAccount(bytes32,bytes)")[:4]
_GET_ADDRESS = keccak(b"getAddress(bytes32,bytes)")[:4]


class ERC7579AccountKind(FactoryCreatedAccountKind):
    """Adapter for an ERC-7579 account with the reference implementation's conventions (see the module's docs).

    ``owner_validator`` is the validator module the owner signs through (needed for owner operations and
    ERC-1271); ``chain`` is needed to uninstall a validator; ``factory`` (with the reference factory's interface)
    and ``bootstrap`` (with the reference bootstrap's ``initMSA``) only to create accounts. ``account_id`` is the
    ``accountId()`` the adapter was chosen for, shown in messages.
    """

    name = "erc7579"
    lane_bits = 32

    def __repr__(self) -> str:
        detected = f", account_id={self.account_id!r}" if self.account_id else ""
        return (
            f"{type(self).__name__}(owner_validator={self.owner_validator}, factory={self.factory}{detected})"
        )

    def _missing_owner_validator(self) -> str:
        what = (
            f"an account with accountId() {self.account_id!r}" if self.account_id else "an ERC-7579 account"
        )
        return (
            f"the owner of {what} signs through a validator module: give owner_validator= (its address), e.g. "
            "connect(..., owner_validator=ADDRESS) or detect_kind(..., owner_validator=ADDRESS)"
        )

    # -- validation ----------------------------------------------------------------------------------

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return (int(self._nonce_validator(validator, lane), 16) << 32) | lane

    def uninstall_validator_call(self, account: str, module: str, deinit_data: bytes = b"") -> Call:
        """``uninstallModule(1, module, ...)``: with the neighbour in the account's validator list when the
        account lists them with ``getValidatorsPaginated`` (the reference implementation), else with
        ``deinit_data`` as it is (an account keeping its validators in a set, as OpenZeppelin's does)."""
        if self.chain is not None and not lists_validators(self.chain, account):
            return module_config_call(UNINSTALL_MODULE, account, module, deinit_data)
        return super().uninstall_validator_call(account, module, deinit_data)

    # -- creation ------------------------------------------------------------------------------------

    def init_code(self, owner: str, modules: Sequence[tuple[int, str, bytes]] = ()) -> bytes:
        """``abi.encode(bootstrap, initMSA(validators, [], no hook, []))``: the owner validator (given ``owner``)
        and ``modules`` (validators only) installed."""
        if self.bootstrap is None:
            raise ConfigurationError(
                "creating an ERC-7579 reference account needs bootstrap= (a bootstrap with initMSA)"
            )
        validators = self._creation_validators(owner, modules)
        call = _INIT_MSA + abi_encode(
            ["(address,bytes)[]", "(address,bytes)[]", "(address,bytes)", "(address,bytes)[]"],
            [validators, [], (ZERO_ADDRESS, b""), []],
        )
        return abi_encode(["address", "bytes"], [self.bootstrap, call])

    def deployment(
        self, chain: Chain, owner: str, modules: Sequence[tuple[int, str, bytes]], salt: int = 0
    ) -> Deployment | None:
        if self.factory is None:
            return None
        args = abi_encode(["bytes32", "bytes"], [salt.to_bytes(32, "big"), self.init_code(owner, modules)])
        (address,) = abi_decode(["address"], chain.call(self.factory, _GET_ADDRESS + args))
        return Deployment(
            address=to_address(address), factory=self.factory, factory_data=_CREATE_ACCOUNT + args
        )


class MSAAccountKind(ERC7579AccountKind):
    """Adapter for the ERC-7579 reference account (MSA): :class:`ERC7579AccountKind`'s conventions are its own."""

    account_id_prefix = "uMSA."
    name = "msa"
