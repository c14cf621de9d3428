"""What an account says it can do, asked before keyscope relies on it: whether it is an ERC-7579 account at all,
whether it answers ``isModuleInstalled`` for validators, which execution modes it runs, and whether its own
``validateUserOp`` takes an operation the way its adapter built it.

ERC-7579 leaves some of this to each account, and an account keyscope has no adapter for may do otherwise than
the generic adapter assumes. These reads (``eth_call``) turn such a difference into an
:class:`~keyscope.errors.UnsupportedAccountError` (or its subclass :class:`~keyscope.errors.AccountSetupError`)
saying what the account does and what to do, before an operation is sent, instead of a bundler's ``AAxx`` or a
revert inside the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..errors import AccountSetupError, CallRevertedError, UnsupportedAccountError
from ..execution import MODE_BATCH, MODE_SINGLE
from ..hexutil import to_address
from ..selectors import IS_MODULE_INSTALLED
from .base import MODULE_TYPE_VALIDATOR, AccountKind
from .detect import NO_ACCOUNT_ID, account_id, account_id_said, ask_bool, supports_validators, unreachable

if TYPE_CHECKING:
    from ..chain import Chain
    from ..userop import UserOperation

__all__ = [
    "EXECUTION_REVERTED",
    "refuse_batch_mode",
    "refuse_execute_from_elsewhere",
    "refuse_non_erc7579",
    "refuse_silent_module_queries",
    "refuse_user_op_validation",
    "refuse_without_validators",
    "runs_batches_only",
    "supports_execution_mode",
    "supports_validators",
]

_SUPPORTS_EXECUTION_MODE = keccak(b"supportsExecutionMode(bytes32)")[:4]
_VALIDATE_USER_OP_V07 = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
SIG_VALIDATION_FAILED = 1
"""The ``validationData`` an account's ``validateUserOp`` returns for a signature it refuses (ERC-4337)."""


def supports_execution_mode(chain: Chain, account: str, mode: bytes) -> bool | None:
    """Whether ``account`` runs the ERC-7579 execution ``mode`` (``supportsExecutionMode``); None when unknown."""
    return ask_bool(chain, to_address(account), _SUPPORTS_EXECUTION_MODE + mode.rjust(32, b"\0")[:32])


def runs_batches_only(chain: Chain, account: str) -> bool:
    """Whether the deployed ``account`` runs batches but no single call (``supportsExecutionMode`` says no to
    single mode and not no to batch mode): ERC-7579 leaves the modes to the account, and such an account makes one
    call as a batch of one. False for an account without code (it says nothing yet)."""
    address = to_address(account)
    if not chain.get_code(address):
        return False
    if supports_execution_mode(chain, address, MODE_SINGLE) is not False:
        return False
    return supports_execution_mode(chain, address, MODE_BATCH) is not False


def refuse_non_erc7579(chain: Chain, account: str, kind: AccountKind | None = None) -> str | None:
    """Raise :class:`~keyscope.errors.UnsupportedAccountError` when the deployed ``account`` is known not to be an
    ERC-7579 account (:func:`refuse_without_validators`); return its ``accountId()`` (None: it answers none, or has
    no code). An account without code, or one the node cannot be asked about, is left to the other checks."""
    address = to_address(account, name="account")
    if not chain.get_code(address):
        return None
    found = account_id(chain, address)
    if found is None:
        refuse_without_validators(chain, address, kind)
    return found


def refuse_without_validators(chain: Chain, account: str, kind: AccountKind | None = None) -> None:
    """Raise :class:`~keyscope.errors.UnsupportedAccountError` when ``account``, deployed and answering no
    ``accountId()``, does not answer ``supportsModule(1)`` with a yes either: an ERC-4337 account of another design
    such as eth-infinitism's ``SimpleAccount``, a Safe without an ERC-7579 adapter, a token. keyscope's session
    module is an ERC-7579 validator: such an account cannot install it, whatever the adapter."""
    address = to_address(account, name="account")
    if supports_validators(chain, address) is not False:
        return
    driven = f" (given the {kind.name!r} adapter)" if kind is not None else ""
    said = account_id_said(chain, address)
    neither = (
        "answers neither accountId() nor supportsModule(1) with a yes"
        if said == NO_ACCOUNT_ID
        else f"{said}, and does not answer supportsModule(1) with a yes"
    )
    raise UnsupportedAccountError(
        f"{address}{driven} is not an ERC-7579 modular account: it {neither}. keyscope's sessions are an ERC-7579 validator module, which only such an "
        "account can install; nothing was signed or sent. Use an ERC-7579 account (keyscope's own, Kernel, "
        "Nexus, a Safe with the Safe7579 adapter, ...) or make this one modular first"
    )


def refuse_silent_module_queries(chain: Chain, kind: AccountKind, account: str, module: str) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the deployed ``account`` gives no answer (a revert, an
    answer that is not a bool) when asked ``isModuleInstalled(1, module, "")``. ERC-7579 says it answers; keyscope
    reads whether the session module is installed from it, and the session module refuses a grant whose call target,
    signing domain or verifier such an account is asked about (``ModuleQueryUnanswered``): it cannot tell the
    account's validators from other contracts. keyscope refuses such accounts before anything is signed."""
    address = to_address(account, name="account")
    data = IS_MODULE_INSTALLED + abi_encode(
        ["uint256", "address", "bytes"], [MODULE_TYPE_VALIDATOR, to_address(module), b""]
    )
    try:
        answer = chain.call(address, data)
    except CallRevertedError as error:
        refusal, detail = "reverts", f" ({error.description})"
    except Exception as error:
        if unreachable(error):
            raise
        return
    else:
        if len(answer) >= 32 and int.from_bytes(answer[:32], "big") < 2:
            return
        refusal, detail = f"answers 0x{answer.hex()} (not a bool)", ""
    found = account_id(chain, address)
    raise AccountSetupError(
        f"the account {address} (accountId() {found!r}, driven by the {kind.name!r} adapter) {refusal} when asked "
        f"isModuleInstalled(1, {to_address(module)}, 0x){detail}: keyscope cannot tell whether the session module "
        "is installed, and the session module cannot tell the account's validators from other call targets, so it "
        "refuses every grant naming one (ModuleQueryUnanswered). keyscope does not grant sessions on such an "
        "account; nothing was signed or sent",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    ) from None


def refuse_batch_mode(chain: Chain, kind: AccountKind, account: str, mode: bytes) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the deployed ``account`` says it does not run the
    execution ``mode`` (ERC-7579 ``supportsExecutionMode``), e.g. batches. An address without code says nothing
    of the modes it will run: an EOA whose operation carries its EIP-7702 authorization has no code until the
    operation lands (its refusal is then the bundler's own, an unpaid prefund say), and neither has an account its
    first operation creates."""
    address = to_address(account, name="account")
    if not chain.get_code(address):
        return
    if supports_execution_mode(chain, address, mode) is not False:
        return
    found = account_id(chain, address)
    raise AccountSetupError(
        f"the account {address} (accountId() {found!r}) does not run the execution mode 0x{mode.hex()} "
        "(supportsExecutionMode answers no): send the calls one per operation (single mode), not as a batch",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )


EXECUTION_REVERTED = -32521
"""ERC-7769's code for an operation whose execution (not its validation) reverted in a bundler's simulation."""


def refuse_execute_from_elsewhere(
    chain: Chain, kind: AccountKind, account: str, entry_point: str, call_data: bytes
) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the deployed ``account`` refuses an operation's
    ``execute`` ``call_data`` from the EntryPoint and runs it from itself: asked with ``eth_call`` from
    ``entry_point``, then from the account. Such an account runs operations some other way (through ERC-4337's
    ``executeUserOp``, say); keyscope's operations are ``execute`` calls, and the session module validates nothing
    else, so its sessions cannot run there. Asked when an operation's execution reverted at the bundler's estimate,
    to tell this apart from a call reverting in its target (which reverts from the account too). A node that cannot
    run the calls leaves the refusal to the caller."""
    address = to_address(account)
    try:
        chain.call(address, call_data, sender=to_address(entry_point))
    except CallRevertedError as error:
        refusal = error.description
    except Exception as error:
        if unreachable(error):
            raise
        return
    else:
        return
    try:
        chain.call(address, call_data, sender=address)
    except Exception as error:
        if unreachable(error):
            raise
        return
    found = account_id(chain, address)
    raise AccountSetupError(
        f"the account {address} (accountId() {found!r}, driven by the {kind.name!r} adapter) refuses execute from "
        f"the EntryPoint {to_address(entry_point)} (asked with eth_call, it reverted with {refusal}, and ran from "
        "the account itself): it runs operations some other way (ERC-4337's executeUserOp, say). keyscope's "
        "operations are ERC-7579 execute calls and the session module validates nothing else, so keyscope's "
        "sessions cannot run on this account; nothing was sent. (Unless the call's target itself tells the two "
        "callers apart, by tx.origin say: then the call reverts in the target, for every account)",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )


def refuse_user_op_validation(
    chain: Chain,
    kind: AccountKind,
    entry_point: str,
    op: UserOperation,
    user_op_hash: bytes,
    what: str,
    *,
    reverts: bool = True,
    window: tuple[int, int] | None = None,
) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when the deployed account's own ``validateUserOp``, asked
    from the EntryPoint as the EntryPoint asks it (``eth_call``, no funds missing), refuses the signed ``op``:
    it selects its validator otherwise than the adapter put it (the generic adapter: the nonce key's top 20
    bytes), or the validator refuses the signature. ``what`` names the operation. A node that cannot run the call
    (a revert it cannot show, an unfunded caller) leaves the check to the bundler, and so does a revert when
    ``reverts`` is False (a session's operation: the session module's own refusals revert, and say more).

    ``window`` is a session's ``(valid_after, valid_until)``, for a session's operation: the session module bounds
    the operation's validation data by it (``valid_until`` 0: no end), and the EntryPoint enforces only what the
    account hands it. An account that accepts the operation with a wider window (its own 0 for the module's
    success, say) would run the session's operations outside its window and any limit period: refused too."""
    address = to_address(op.sender)
    packed = op.pack().as_tuple()
    data = _VALIDATE_USER_OP_V07 + abi_encode(
        ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)", "bytes32", "uint256"],
        [packed, user_op_hash, 0],
    )
    try:
        answer = chain.call(address, data, sender=to_address(entry_point))
    except CallRevertedError as error:
        if not reverts:
            return
        refusal = f"reverted with {error.description}"
    except Exception as error:
        if unreachable(error):
            raise
        return
    else:
        if len(answer) < 32:
            return
        (validation,) = abi_decode(["uint256"], answer[:32])
        if validation & ((1 << 160) - 1) != SIG_VALIDATION_FAILED:
            if window is not None and validation & ((1 << 160) - 1) == 0:
                _refuse_wider_window(chain, kind, address, validation, window)
            return
        refusal = "returned SIG_VALIDATION_FAILED"
    found = account_id(chain, address)
    raise AccountSetupError(
        f"the account {address} (accountId() {found!r}, driven by the {kind.name!r} adapter) refuses {what} as "
        f"the adapter built it (validateUserOp {refusal}, nonce key 0x{(op.nonce >> 64):048x}): either the "
        "validator or key is not the account's, or the account selects the validator otherwise than the adapter "
        "(the generic ERC-7579 adapter names it in the nonce key's top 20 bytes), or it hands its validators a "
        f"hash of its own instead of the EntryPoint's userOpHash 0x{user_op_hash.hex()}, the one keyscope signs "
        "(a hash without the chain id, say, through OpenZeppelin's _signableUserOpHash). Nothing was sent. For "
        "the first two, give the account's own adapter (see docs/accounts.md, \"Writing an adapter for another "
        "account\"); an account signing a hash of its own cannot run keyscope's sessions, whatever the adapter",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )


def _refuse_wider_window(
    chain: Chain, kind: AccountKind, address: str, validation: int, window: tuple[int, int]
) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` when ``validation``, the account's answer for a session's
    operation, lets the EntryPoint run it outside the session's ``window`` (``(valid_after, valid_until)``)."""
    valid_after, valid_until = window
    answered_after = (validation >> 208) & ((1 << 48) - 1)
    answered_until = (validation >> 160) & ((1 << 48) - 1)
    if answered_after >= valid_after and (
        valid_until == 0 or (answered_until != 0 and answered_until <= valid_until)
    ):
        return
    found = account_id(chain, address)
    raise AccountSetupError(
        f"the account {address} (accountId() {found!r}, driven by the {kind.name!r} adapter) accepts the session's "
        f"operation with validAfter {answered_after} and validUntil {answered_until} ("
        f"{'no end' if answered_until == 0 else 'its end'}), where the session module bounds it by the session's "
        f"window, validAfter {valid_after} and validUntil {valid_until or 'none'}: the account does not hand the "
        "EntryPoint the module's validation data as it is, so the EntryPoint would run the session's operations "
        "outside its window, and in limit periods other than the one they were counted in. keyscope's sessions "
        "cannot be bounded on this account (docs/accounts.md: an account must return the module's validation data "
        "as it is); nothing was sent. Revoke the session (owner.revoke) and do not grant sessions on this account",
        account=address,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )
