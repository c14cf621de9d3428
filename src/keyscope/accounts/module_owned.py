"""What the accounts whose owner signs through a validator module share (the ERC-7579 reference account,
Nexus, Safe7579).

Such an account keeps its validators in a sentinel-linked list (uninstalling one names its neighbour, read from
the chain), prefixes an ERC-1271 signature with the validator's address, and is created with the owner
validator (given the owner's address) and further validators installed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import BadInputError, ConfigurationError
from ..execution import Call
from ..hexutil import to_address, to_bytes
from .base import MODULE_TYPE_VALIDATOR, UNINSTALL_MODULE, AccountKind, module_config_call
from .nonce_keys import check_lane
from .sentinel import installed_validators, uninstall_data

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["FactoryCreatedAccountKind", "ModuleOwnedAccountKind", "optional_address"]


def optional_address(value: str | None, name: str) -> str | None:
    """``value`` checked as an address (``name`` in the error), or None when it is not given."""
    return to_address(value, name=name) if value else None


class ModuleOwnedAccountKind(AccountKind):
    """An account kind whose owner signs through the validator module ``owner_validator``; ``chain`` is needed
    to uninstall a validator.

    Subclasses say how they are named in messages (:meth:`_missing_owner_validator`, :attr:`_validator_phrase`,
    :attr:`_lane_phrase`) and lay out their nonce key.
    """

    #: "uninstalling <this> names its neighbour ..."
    _validator_phrase = "a validator of this account"
    #: "... does not fit in the N bytes <this> leaves free"
    _lane_phrase = "this account"

    def __init__(self, *, owner_validator: str | None, chain: Chain | None) -> None:
        self.owner_validator = optional_address(owner_validator, "owner_validator")
        self.chain = chain

    @abstractmethod
    def _missing_owner_validator(self) -> str:
        """The message when an owner operation needs ``owner_validator`` and it was not given."""

    #: the account this adapter was detected for (``detect_kind``), whose validators the error for a missing
    #: owner validator lists
    detected_account: str | None = None

    def _owner_validator(self) -> str:
        if self.owner_validator is None:
            raise ConfigurationError(self._missing_owner_validator() + self._validators_hint())
        return self.owner_validator

    def _validators_hint(self) -> str:
        """The validators installed on the detected account, for the error when the owner's is not given (empty
        when they cannot be read)."""
        if self.chain is None or self.detected_account is None:
            return ""
        try:
            found = installed_validators(self.chain, self.detected_account)
        except Exception:  # an account that does not list them: the message stays as it is
            return ""
        if not found:
            return ""
        return (
            f"; the account {self.detected_account} has these validators installed: {', '.join(found)} (the "
            "owner's is the one its key signs through; the session module is not it)"
        )

    # -- validation ----------------------------------------------------------------------------------

    def _nonce_validator(self, validator: str | None, lane: int) -> str:
        """The validator a nonce key names (the owner validator for None), once ``lane`` is checked to fit."""
        check_lane(lane, self.lane_bits, self._lane_phrase)
        return self._owner_validator() if validator is None else to_address(validator)

    def uninstall_validator_call(self, account: str, module: str, deinit_data: bytes = b"") -> Call:
        if self.chain is None:
            raise ConfigurationError(
                f"uninstalling {self._validator_phrase} names its neighbour in the account's list: create the "
                "adapter with chain= (or through detect_kind)"
            )
        packed = uninstall_data(self.chain, account, module, deinit_data)
        return module_config_call(UNINSTALL_MODULE, account, module, packed)

    # -- owner signatures ----------------------------------------------------------------------------

    def wrap_erc1271_signature(self, signature: bytes) -> bytes:
        return to_bytes(self._owner_validator(), length=20) + signature

    # -- creation ------------------------------------------------------------------------------------

    def _creation_validators(
        self, owner: str, modules: Sequence[tuple[int, str, bytes]]
    ) -> list[tuple[str, bytes]]:
        """The validators installed at creation: the owner validator (given ``owner``'s address), then
        ``modules``, which must all be validators."""
        validators = [(self._owner_validator(), to_bytes(to_address(owner), length=20))]
        for module_type, module, data in modules:
            if module_type != MODULE_TYPE_VALIDATOR:
                raise BadInputError(
                    f"only validators can be installed at creation here, not module type {module_type}"
                )
            validators.append((to_address(module), data))
        return validators


class FactoryCreatedAccountKind(ModuleOwnedAccountKind):
    """A module-owned account created by a ``factory`` through a ``bootstrap`` that installs its modules (the
    ERC-7579 reference account, Nexus); both are needed only to create accounts. ``account_id`` is the
    ``accountId()`` the adapter was chosen for, when it was detected."""

    def __init__(
        self,
        *,
        owner_validator: str | None = None,
        factory: str | None = None,
        bootstrap: str | None = None,
        chain: Chain | None = None,
        account_id: str | None = None,
    ) -> None:
        super().__init__(owner_validator=owner_validator, chain=chain)
        self.factory = optional_address(factory, "factory")
        self.bootstrap = optional_address(bootstrap, "bootstrap")
        self.account_id = account_id
