"""Checks, before anything is sent, that a deployed account works the way its adapter says.

An account of an unexpected kind, or an owner validator that is not the one installed, otherwise shows up only
when the bundler refuses an operation (AA24 for the owner's operations, AA23 for a session's first one), far
from its cause. These checks read the account with ``eth_call`` and raise
:class:`~keyscope.errors.AccountSetupError` saying what is wrong.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ..errors import AccountSetupError, CallRevertedError, KeyscopeError
from ..hexutil import to_address
from ..rpc import JsonRpcError
from ..selectors import IS_MODULE_INSTALLED, IS_VALID_SIGNATURE, SIGNER
from ..signing import try_recover
from .base import MODULE_TYPE_VALIDATOR, AccountKind
from .detect import account_id

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = [
    "ERC1271_MAGIC",
    "unfunded_sender",
    "validator_installed",
    "verify_owner_signature",
    "verify_owner_validator",
]

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
"""What ``isValidSignature`` returns for a signature it accepts."""


_UNFUNDED = re.compile(r"cannot afford|insufficient funds|insufficient balance", re.I)


def unfunded_sender(error: JsonRpcError) -> bool:
    """Whether the node refused a call because its sender cannot pay for the gas (not a revert)."""
    return bool(_UNFUNDED.search(error.rpc_message))


def validator_installed(chain: Chain, account: str, validator: str) -> bool | None:
    """Whether ``validator`` is installed on ``account`` as a validator (None when the account does not say)."""
    data = IS_MODULE_INSTALLED + abi_encode(
        ["uint256", "address", "bytes"], [MODULE_TYPE_VALIDATOR, to_address(validator), b""]
    )
    try:
        raw = chain.call(to_address(account), data)
    except CallRevertedError:
        return None
    if len(raw) < 32:
        return None
    return bool(abi_decode(["bool"], raw[:32])[0])


def _describe(chain: Chain, account: str, kind: AccountKind) -> tuple[str, str | None]:
    found = account_id(chain, account)
    reported = f"accountId() {found!r}" if found is not None else "no accountId()"
    return f"the account {account} ({reported}, driven by the {kind.name!r} adapter)", found


def verify_owner_validator(chain: Chain, kind: AccountKind, account: str) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the adapter's owner validator is known not to be
    installed on the deployed ``account``."""
    validator = kind.owner_validator
    address = to_address(account, name="account")
    if validator is None or validator_installed(chain, address, validator) is not False:
        return
    described, found = _describe(chain, address, kind)
    raise AccountSetupError(
        f"the owner validator {validator} is not installed on {described}: the owner's operations and "
        "signatures would be refused (AA24). Give the validator module the owner signs through on this account: "
        "connect(..., owner_validator=ADDRESS), or the adapter's owner_validator=",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=validator,
    )


def verify_owner_signature(
    chain: Chain,
    kind: AccountKind,
    account: str,
    verifier: str,
    digest: bytes,
    signature: bytes,
    *,
    framed_by: str | None = None,
) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` unless the deployed ``account`` accepts ``signature``
    (the owner's) for ``digest`` when ``verifier`` (the session module) asks it through ERC-1271
    ``isValidSignature``, as the module does when a session's first operation enables it. ``kind`` is the
    account's adapter; ``framed_by`` the name of the adapter that shaped the signature, when another one."""
    address = to_address(account, name="account")
    if kind.bare_owner_signature_from_validators_only and _bare_owner_signature_accepted(
        chain, address, verifier, digest, signature
    ):
        # keyscope's account takes its owner's bare signature only from the validator it is asking to validate an
        # operation, while it does (the module in ENABLE mode), which no eth_call can be: judged by that rule
        return
    data = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = chain.call(address, data, sender=to_address(verifier))
    except CallRevertedError as error:
        refusal = f"reverted with {error.description}"
    except JsonRpcError as error:
        if not unfunded_sender(error):
            raise
        # a node that charges calls for gas (py-evm, under `ape test`) will not run one from the module, which
        # holds no ETH: ask from the node's default sender instead. A validator may answer differently per
        # caller, so only an account that checks its owner itself (no owner validator) is judged by a refusal
        # then; for the others, the check is left to the session's first operation. keyscope's account takes
        # its owner's bare signature from the validator validating an operation only: judge it by that rule.
        if kind.bare_owner_signature_from_validators_only:
            if _bare_owner_signature_accepted(chain, address, verifier, digest, signature):
                return
            refusal = "would refuse it (not the owner's signature of the digest, or the module not installed)"
            _refuse_uninstalled(chain, kind, address, verifier, refusal)
            verify_owner_validator(chain, kind, address)
            described, found = _describe(chain, address, kind)
            raise _refused(described, found, address, kind, refusal, framed_by) from None
        try:
            answer = chain.call(address, data)
        except CallRevertedError as retried:
            if kind.owner_validator is not None:
                return
            refusal = f"reverted with {retried.description}"
        else:
            if answer[:4] == ERC1271_MAGIC or kind.owner_validator is not None:
                return
            refusal = f"answered 0x{answer[:4].hex()}" if answer else "answered nothing"
    else:
        if answer[:4] == ERC1271_MAGIC:
            return
        refusal = f"answered 0x{answer[:4].hex()}" if answer else "answered nothing"
    _refuse_uninstalled(chain, kind, address, verifier, refusal)
    verify_owner_validator(chain, kind, address)  # the likeliest cause, said precisely
    described, found = _describe(chain, address, kind)
    raise _refused(described, found, address, kind, refusal, framed_by)


def _refuse_uninstalled(chain: Chain, kind: AccountKind, account: str, module: str, refusal: str) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the session ``module`` that asked for the owner's
    signature is known not to be installed on ``account``: the cause of the refusal, rather than the owner's key."""
    if validator_installed(chain, account, module) is not False:
        return
    described, found = _describe(chain, account, kind)
    raise AccountSetupError(
        f"{described} does not have the session module {to_address(module)} installed (isModuleInstalled(1, module, "
        f"0x) answers false), and refuses the owner's signature of the session grant asked by it (isValidSignature "
        f"{refusal}); the account would not ask the module to validate the session's operations either. Install the "
        "module first (owner.install_sessions()), then grant",
        account=account,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )


def _bare_owner_signature_accepted(
    chain: Chain, account: str, verifier: str, digest: bytes, signature: bytes
) -> bool:
    """keyscope's account's rule for a bare signature asked about by ``verifier`` while the account asks it to
    validate an operation: ``verifier`` is an installed validator and ``signature`` is the account's owner's ECDSA
    signature of ``digest``."""
    signed_by = try_recover(digest, signature)  # as the account's OpenZeppelin ECDSA: no high-s twin
    if signed_by is None:
        return False
    try:
        (owner,) = abi_decode(["address"], chain.call(account, SIGNER))
    except (CallRevertedError, KeyscopeError, ValueError):
        return False
    return to_address(owner) == signed_by and validator_installed(chain, account, verifier) is True


def _refused(
    described: str, found: str | None, address: str, kind: AccountKind, refusal: str, framed_by: str | None
) -> AccountSetupError:
    through = f"the validator {kind.owner_validator}" if kind.owner_validator else "the account"
    shaper = framed_by or kind.name
    remedy = (
        "the owner must grant the session again with the account's own adapter"
        if framed_by is not None and framed_by != kind.name
        else "give the account's own adapter and owner validator (see docs/accounts.md)"
    )
    return AccountSetupError(
        f"{described} refuses the owner's signature of the session grant (isValidSignature {refusal}), so the "
        "session's first operation would fail: this is not about the session's policy. Either the owner's key is "
        f"not the one {through} checks for this account, or the account frames ERC-1271 signatures otherwise "
        f"than the {shaper!r} adapter that shaped this one: {remedy}",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )
