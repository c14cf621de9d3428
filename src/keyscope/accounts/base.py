"""What differs between ERC-7579 smart accounts, behind one small interface.

The session flow (grant, use, revoke) is the same for every account; an :class:`AccountKind` says how this
kind of account selects a validator through the nonce, how it is created, how a module is installed, and how
its owner's ERC-1271 signatures are shaped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import ConfigurationError
from ..execution import Call
from ..hexutil import to_address, to_bytes

if TYPE_CHECKING:
    from ..chain import Chain
    from ..signing import HashSigner

__all__ = [
    "INSTALL_MODULE",
    "MODULE_TYPE_VALIDATOR",
    "UNINSTALL_MODULE",
    "AccountKind",
    "Deployment",
    "module_config_call",
]

MODULE_TYPE_VALIDATOR = 1
INSTALL_MODULE = keccak(b"installModule(uint256,address,bytes)")[:4]
UNINSTALL_MODULE = keccak(b"uninstallModule(uint256,address,bytes)")[:4]


def module_config_call(selector: bytes, account: str, module: str, data: bytes) -> Call:
    """``account.installModule`` / ``uninstallModule`` (``selector``) of the validator ``module`` with ``data``,
    as a call from the account to itself."""
    args = abi_encode(["uint256", "address", "bytes"], [MODULE_TYPE_VALIDATOR, to_address(module), data])
    return Call(to_address(account), 0, selector + args)


@dataclass(frozen=True)
class Deployment:
    """How to create an account in its first UserOperation (``factory``/``factoryData``), and where it lands."""

    address: str
    factory: str
    factory_data: bytes


class AccountKind(ABC):
    """One kind of ERC-7579 account (keyscope's own, Kernel, Nexus, Safe7579, the reference account, ...)."""

    #: Prefix of the ``accountId()`` this kind reports, used to detect it.
    account_id_prefix: str = ""
    #: Short name for messages and configuration.
    name: str = ""
    #: How many bits of the nonce key the account leaves for parallel lanes.
    lane_bits: int = 32
    #: Whether a session's first operation may create the account (False when the creating operation's
    #: callData must be something else than ``execute``, as with the Safe7579 launchpad).
    sessions_can_create: bool = True
    #: The validator module the owner signs through (None: the account checks the owner itself, as keyscope's
    #: own account does).
    owner_validator: str | None = None
    #: Whether the account takes its owner's bare signature of a digest only from the validator it is asking to
    #: validate one of its operations, while it does (keyscope's account: the session module in ENABLE mode; every
    #: other caller must present ERC-7739 signatures bound to the account).
    bare_owner_signature_from_validators_only: bool = False
    #: The contract an EIP-7702 account (an EOA) delegates its code to; None for a smart account with code of its
    #: own. :func:`~keyscope.accounts.detect_kind` sets it for a delegated EOA of any kind.
    delegate: str | None = None

    @abstractmethod
    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        """The 192-bit EntryPoint nonce key that makes the account validate with ``validator``
        (None: the owner / root validator), on parallel ``lane``."""

    def install_validator_call(self, account: str, module: str, init_data: bytes = b"") -> Call:
        """The call (from the account to itself) that installs ``module`` as a validator; by default the
        standard ERC-7579 ``installModule(1, module, init_data)``."""
        return module_config_call(INSTALL_MODULE, account, module, init_data)

    def uninstall_validator_call(self, account: str, module: str, deinit_data: bytes = b"") -> Call:
        """The call (from the account to itself) that uninstalls the validator ``module``; by default the
        standard ERC-7579 ``uninstallModule(1, module, deinit_data)``."""
        return module_config_call(UNINSTALL_MODULE, account, module, deinit_data)

    def erc1271_digest(self, account: str, chain_id: int, digest: bytes) -> bytes:
        """What the owner's key actually signs when the account is asked ``isValidSignature(digest, ...)``.

        Most accounts pass the digest through; some (Kernel) wrap it in their own EIP-712 domain.
        """
        return digest

    def wrap_erc1271_signature(self, signature: bytes) -> bytes:
        """The owner's raw ECDSA signature shaped for the account's ``isValidSignature``."""
        return signature

    def validator_erc1271_signature(self, validator: str, signature: bytes) -> bytes:
        """A signature for the validator module ``validator`` (a session's, in the module's ERC-1271 layout) shaped
        for the account's ``isValidSignature``: by default the validator's address (20 bytes) first, which is how
        keyscope's account, Nexus, Safe7579 and the reference account pick the validator they ask."""
        return to_bytes(validator, name="validator", length=20) + signature

    def owner_user_op_signature(self, signature: bytes) -> bytes:
        """The owner's signature of a userOpHash shaped for the account's root validation."""
        return signature

    def validator_user_op_signature(self, validator: str, signature: bytes) -> bytes:
        """A UserOperation signature for the validator module ``validator`` (a session's, in the session module's
        layout) shaped for the account's ``validateUserOp``: as it is by default, the accounts keyscope has adapters
        for selecting the validator by the nonce key (:meth:`nonce_key`). An account that selects it otherwise (by
        the signature's first 20 bytes, say) frames it here."""
        return signature

    def owner_typed_data_signature(
        self, signer: HashSigner, data: Mapping[str, Any], *, account: str, chain_id: int
    ) -> bytes:
        """The owner ``signer``'s signature of EIP-712 typed ``data`` in the account's name: what a verifier
        (Permit2, an EIP-2612 token) passes to the account's ``isValidSignature`` with ``data``'s digest."""
        raise ConfigurationError(
            f"keyscope does not sign typed data in the name of a {self.name!r} account: have the owner sign it "
            "with the account's own wallet software, which knows how the account binds owner signatures to it"
        )

    def owner_message_signature(
        self, signer: HashSigner, message: bytes, *, account: str, chain_id: int
    ) -> bytes:
        """The owner ``signer``'s signature of a ``personal_sign`` ``message`` in the account's name: what a
        verifier passes to the account's ``isValidSignature`` with the message's EIP-191 hash."""
        raise ConfigurationError(
            f"keyscope does not sign messages in the name of a {self.name!r} account: have the owner sign it "
            "with the account's own wallet software, which knows how the account binds owner signatures to it"
        )

    def deployment(
        self, chain: Chain, owner: str, modules: Sequence[tuple[int, str, bytes]], salt: int = 0
    ) -> Deployment | None:
        """How a first operation creates an account of this kind owned by ``owner`` with ``modules`` (module type,
        address, init data) installed, and where it lands; None when the adapter does not create accounts (the
        owner then needs ``network.factory``, keyscope's own account factory)."""
        return None

    def creation_call_data(self, deployment: Deployment, call_data: bytes) -> bytes:
        """The callData of the operation that creates the account through ``deployment``, given the ``execute``
        callData it should run (most accounts run it as it is)."""
        return call_data
