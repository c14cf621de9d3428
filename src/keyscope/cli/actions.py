"""What the commands do: create an account, grant, revoke and use a session, follow an operation."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode

from ..artifacts import ENTRY_POINT_V07
from ..bundler.client import BundlerClient
from ..bundler.pending import PendingUserOperation
from ..bundler.types import Bundler, UserOperationReceipt
from ..chain import RpcChain
from ..endpoint_kinds import swapped_or_misplaced
from ..errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    ConfigurationError,
    InsufficientPrefundError,
    KeyscopeError,
    UserOperationFailedError,
    UserOperationUnknownError,
    has_private_key_form,
)
from ..execution import Call
from ..grant import SessionGrant
from ..hexutil import to_address, to_bytes
from ..keys import SessionKey
from ..network import Network
from ..owner import GrantRequest, Owner
from ..policy import Limits, parse_signature
from ..policy import Policy as PolicyBuilder
from ..report import describe_wei
from ..revert import describe_revert
from ..signing import HashSigner, LocalSigner, recover_hash
from ..store import SessionStore
from ..urls import mask_url
from .listing import grant_fields
from .output import Progress, hex_of
from .parsing import parse_budget, parse_call_args, parse_count, parse_rule, parse_total, resolve_address
from .settings import ENV_BUNDLER, INPROCESS, Deployments, _address_from, _bundler_setting
from .signers import APE_KEY_OPTIONS, ApeAccountSigner, SigningDeclinedError, make_owner
from .stores import store_url_of


def _wait(
    progress: Progress | None, pending: PendingUserOperation, what: str, timeout: float, *, check: bool = True
) -> UserOperationReceipt:
    """``pending``'s receipt, telling the person what is waited for when ``progress`` is given."""
    if progress is None:
        return pending.wait(timeout, check=check)
    return progress.wait(pending, what, timeout, check=check)


def _window(valid_for: int | None) -> dict[str, Any]:
    """The grant's window options: ``valid_for`` seconds, or (None) a session that never expires."""
    return {"never_expires": True} if valid_for is None else {"valid_for": valid_for}


def _receipt_dict(receipt: UserOperationReceipt) -> dict[str, Any]:
    return {
        "user_op_hash": hex_of(receipt.user_op_hash),
        "success": receipt.success,
        "sender": receipt.sender,
        "nonce": receipt.nonce,
        "transaction_hash": hex_of(receipt.transaction_hash),
        "block_number": receipt.block_number,
        "actual_gas_used": receipt.actual_gas_used,
        "actual_gas_cost": receipt.actual_gas_cost,
        "paymaster": receipt.paymaster,
        "revert_reason": None if receipt.success else describe_revert(receipt.reason),
    }


def receipt_lines(receipt: UserOperationReceipt) -> list[str]:
    """A receipt for people."""
    state = "succeeded" if receipt.success else f"reverted: {describe_revert(receipt.reason)}"
    return [
        f"included      block {receipt.block_number}, transaction {hex_of(receipt.transaction_hash)}",
        f"execution     {state}",
        f"gas used      {receipt.actual_gas_used:,} (cost {receipt.actual_gas_cost:,} wei)",
    ]


@dataclass(frozen=True)
class CreatedAccount:
    """What :func:`create_account` did."""

    account: str
    owner: str
    created: bool
    funded: int
    receipt: UserOperationReceipt | None
    funder: str | None = None
    """The address that sent ``funded`` wei (None when nothing was sent)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "owner": self.owner,
            "created": self.created,
            "funded_wei": self.funded,
            "funder": self.funder,
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }


def create_account(
    network: Network,
    signer: HashSigner,
    *,
    salt: int = 0,
    fund: int = 0,
    funder: Any = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> CreatedAccount:
    """Create the keyscope account of ``signer`` at ``salt`` (session module installed at creation) with one
    owner operation, after sending it ``fund`` wei from the ape account ``funder``. An account that already
    exists is left as it is."""
    owner = make_owner(network, signer, salt=salt)
    if owner.is_deployed():
        if not owner.supports_sessions():
            raise ConfigurationError(
                f"the account {owner.account} exists but the session module {network.module} is not installed: "
                "install it with an owner operation (Owner.install_sessions)"
            )
        return CreatedAccount(owner.account, signer.address, False, 0, None)
    funder_address = None
    if fund:
        if funder is None and isinstance(signer, ApeAccountSigner):
            funder = signer.account
        if funder is None:
            raise ConfigurationError(
                "--fund sends ETH from an ape account: pass --funder ALIAS (or use --owner ALIAS, which funds by "
                "default)"
            )
        funder_address = to_address(funder.address)
        held = network.chain.get_balance(funder_address)
        if held < fund:  # said before anything is sent, where ape's gas estimation said "Insufficient funds"
            raise BadInputError(
                f"--funder {funder_address} holds {describe_wei(held)}, less than --fund {describe_wei(fund)} (and the "
                "transfer's gas): nothing was sent or created; give a smaller --fund, or a --funder with the ETH"
            )
        funder.transfer(owner.account, fund)
    try:
        pending = owner.execute(Call(to_address(signer.address), 0, b""))
    except InsufficientPrefundError as error:
        if not fund:  # the command's own way to send it ETH, which the SDK's words cannot name
            error.args = (
                f"{error}; --fund AMOUNT sends it ETH before it is created, from --funder ALIAS or the --owner "
                "account (on the local stack: --fund 1ether --funder TEST::5)",
            )
        raise
    receipt = _wait(progress, pending, f"the operation creating {owner.account}", timeout)
    if not owner.is_deployed():
        raise ConfigurationError(
            f"the operation {hex_of(receipt.user_op_hash)} landed but {owner.account} has no code"
        )
    return CreatedAccount(owner.account, signer.address, True, fund, receipt, funder_address)


@dataclass(frozen=True)
class GrantResult:
    """What :func:`grant_session` did."""

    grant: SessionGrant
    key_generated: bool
    receipt: UserOperationReceipt | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **grant_fields(self.grant),
            "key_generated": self.key_generated,
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }


def session_key_from(store: SessionStore, given: str | None) -> tuple[LocalSigner, bool]:
    """The session key for a new grant: a new one (``given`` None), the key stored for the address ``given``,
    or the private key in the environment variable named by ``given`` as ``env:NAME``. Returns the key and
    whether it is new."""
    if given is None:
        return SessionKey.generate(), True
    text = given.strip()
    if has_private_key_form(text[4:] if text.lower().startswith("env:") else text):
        raise BadInputError(
            f"--session-key: {PRIVATE_KEY_NOT_SHOWN} is not the address of a stored key nor env:NAME: a private key "
            "is not given on the command line, which every user of the machine can read; put it in an environment "
            "variable and give env:NAME"
        )
    if text.lower().startswith("env:"):
        name = text[4:]
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigurationError(f"--session-key {text}: the environment variable {name} is not set")
        try:
            return LocalSigner(value), False
        except BadInputError:
            raise BadInputError(
                f"--session-key {text}: {name} is not a private key (0x and 64 hex digits)"
            ) from None
    address = _address_from(text, "--session-key")
    if not store.has_key(address):
        raise BadInputError(
            f"--session-key {address}: no key for this address in the store {store_url_of(store)}; give env:NAME "
            "for a key "
            "held in an environment variable, or leave --session-key out to generate one"
        )
    return store.get_key(address), False


def grant_session(
    network: Network,
    owner: Owner,
    store: SessionStore,
    *,
    target: str,
    function: str,
    rules: Sequence[str] = (),
    value_limit: int = 0,
    valid_for: int | None,
    calls: str | None = None,
    rate: str | None = None,
    totals: Sequence[str] = (),
    native_total: str | None = None,
    operations: str | None = None,
    gas_budget: str | None = None,
    onchain: bool = False,
    session_key: str | None = None,
    names: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> GrantResult:
    """Grant one permission (``function`` on ``target`` with ``rules`` in text form, see :func:`parse_rule`)
    for ``valid_for`` seconds (None: a session that never expires, asked for explicitly) to a session key,
    off-chain (the owner signs the EIP-712 grant) or on-chain (an owner operation); the key (encrypted) and the
    grant go to ``store``. Lifetime limits in text: ``calls`` (``"10"``), ``rate`` (``"10/hour"``), ``totals``
    (``"amount<=5000000/day"``), ``native_total`` (``"0.1ether/day"``), ``operations`` (``"100/day"``) and
    ``gas_budget`` (``"0.05ether"``)."""
    known = {"account": owner.account, "owner": to_address(owner.signer.address), **(names or {})}
    parsed = parse_signature(function)
    address = resolve_address(target, known, "target")
    specs = [parse_rule(text, parsed, known) for text in rules]
    rate_limit = parse_count(rate, "--rate") if rate else None
    if rate_limit is not None and rate_limit[1] is None:
        raise BadInputError(f"--rate: {rate!r} needs a period, e.g. 10/hour (use --calls for a total)")
    call_limit = parse_count(calls, "--calls") if calls else None
    if call_limit is not None and call_limit[1] is not None:  # its period was dropped: a life's total granted
        raise BadInputError(
            f"--calls: {calls!r} has a period, and --calls counts over the session's life: give --rate {calls} "
            f"for calls per period, or --calls {call_limit[0]} for a total"
        )
    permission = PolicyBuilder.call(
        address,
        function,
        rules=specs,
        value_limit=value_limit,
        calls=call_limit[0] if call_limit else None,
        rate=(rate_limit[0], rate_limit[1] or 0) if rate_limit else None,
        totals=[parse_total(text, parsed) for text in totals],
    )
    limits = []
    if native_total:
        amount, per = parse_budget(native_total, "--native-total")
        limits.append(Limits.native(amount, per=per))
    if operations:
        count, per = parse_count(operations, "--operations")
        limits.append(Limits.operations(count, per=per))
    if gas_budget:
        amount, per = parse_budget(gas_budget, "--gas-budget")
        limits.append(Limits.gas(amount, per=per))
    if not owner.supports_sessions():
        raise ConfigurationError(
            f"the session module {network.module} is not installed on {owner.account}: install it with an owner "
            "operation first"
        )
    key, generated = session_key_from(store, session_key)
    store.put_key(key, label=f"session key of {owner.account}")
    receipt = None
    window = _window(valid_for)
    if onchain:
        pending = owner.grant_onchain(key, [permission], limits=limits, **window)
        receipt = _wait(progress, pending.operation, "the owner's enableSession operation", timeout)
        grant = pending.request.enabled_on_chain()
    else:
        grant = sign_grant_request(owner, owner.prepare_grant(key, [permission], limits=limits, **window))
    store.put_grant(grant)
    return GrantResult(grant, generated, receipt)


def sign_grant_request(owner: Owner, request: GrantRequest) -> SessionGrant:
    """The owner's one signature on ``request``: over the EIP-712 typed data itself (what a wallet shows)
    where the account checks the EIP-712 digest as it is, else over the account's wrapped digest."""
    kind = owner.kind
    if kind.erc1271_digest(request.account, request.chain_id, request.digest) != request.digest:
        return owner.sign_grant(request)
    signature = owner.signer.sign_typed_data(request.typed_data)
    if recover_hash(request.digest, signature) != to_address(owner.signer.address):
        raise SigningDeclinedError("the owner's signature of the session grant does not recover to the owner")
    return request.complete(kind.wrap_erc1271_signature(signature))  # checked as the module will


@dataclass(frozen=True)
class RevokeResult:
    """What :func:`revoke_session` did: the store marks the session revoked; ``receipt`` is the owner's
    ``revokeSession`` operation (None when nothing was sent on chain)."""

    grant: SessionGrant
    receipt: UserOperationReceipt | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": hex_of(self.grant.session_id),
            "account": self.grant.account,
            "revoked": True,
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }


def owner_for_grant(
    network: Network,
    signer: HashSigner,
    grant: SessionGrant,
    *,
    node_option: str = "--network",
    key_options: str = APE_KEY_OPTIONS,
) -> Owner:
    """The :class:`~keyscope.owner.Owner` of the grant's account (its kind found out, the grant's own where the
    account does not say it); for an account not created yet, one whose first operation creates it with the
    factory call the grant carries."""
    if network.is_deployed(grant.account):
        network.kind_for(grant.account, named=grant.account_kind)  # remembered for the owner
        return make_owner(network, signer, grant.account, key_options=key_options)
    if not grant.factory_data or grant.factory is None:
        raise ConfigurationError(
            f"the account {grant.account} does not exist on chain {network.chain_id} and the grant does not say "
            "how to create it"
        )
    try:
        owner_key, _, salt = abi_decode(
            ["address", "(uint256,address,bytes)[]", "uint256"], grant.factory_data[4:]
        )
    except Exception:
        raise ConfigurationError(
            f"the account {grant.account} does not exist yet and its creation call is not a keyscope factory's"
        ) from None
    if to_address(owner_key) != to_address(signer.address):
        raise BadInputError(
            f"{signer.address} is not the owner of {grant.account} (its owner is {to_address(owner_key)}): give "
            f"that key with {key_options}"
        )
    owner = make_owner(
        dataclasses.replace(network, factory=grant.factory), signer, salt=int(salt), key_options=key_options
    )
    if owner.account != grant.account:
        raise ConfigurationError(
            f"the grant's creation call gives {owner.account}, not {grant.account}: is {node_option} the grant's "
            "chain?"
        )
    return owner


def revoke_session(
    grant: SessionGrant,
    *,
    store: SessionStore | None = None,
    network: Network | None = None,
    signer: HashSigner | None = None,
    create: bool = True,
    timeout: float = 60.0,
    progress: Progress | None = None,
    node_option: str = "--network",
    key_options: str = APE_KEY_OPTIONS,
) -> RevokeResult:
    """Revoke ``grant``: first in ``store`` when given, so that every worker refuses it at its next send; then,
    given the ``network`` and the account owner's ``signer``, on chain with an owner operation, waited for.

    An account not created yet is created by that operation with ``create`` (the grant's factory call: its
    first operation would otherwise create it and enable the session); without ``create`` nothing is sent
    for it (the result's ``receipt`` is None). The signer is checked to be the account's owner before the store
    is touched: a wrong key changes nothing, and says which key is the owner's.
    """
    owner = None
    if network is not None:
        check_grant_network(network, grant, node_option)
        if signer is not None and (create or network.is_deployed(grant.account)):
            owner = owner_for_grant(network, signer, grant, node_option=node_option, key_options=key_options)
    if store is not None:
        store.mark_revoked(grant.session_id)
        if (
            owner is not None and progress is not None
        ):  # said before the owner is asked to sign, who may decline
            progress.say(
                f"session {hex_of(grant.session_id)} is marked revoked in the store (every worker refuses it); "
                "now revoking it on chain"
            )
    if owner is None:
        return RevokeResult(grant, None)
    pending = owner.revoke(grant)
    receipt = _wait(progress, pending, "the owner's revokeSession operation", timeout)
    return RevokeResult(grant, receipt)


def check_grant_network(network: Network, grant: SessionGrant, node_option: str = "--network") -> None:
    """Raise :class:`~keyscope.errors.ConfigurationError` when ``network`` is of another chain than ``grant``'s,
    naming ``node_option`` (the command's option for the node)."""
    if grant.chain_id != network.chain_id:
        raise ConfigurationError(
            f"session {hex_of(grant.session_id)} was granted on chain {grant.chain_id}, but {node_option} is "
            f"connected to chain {network.chain_id}: pass {node_option} for chain {grant.chain_id}"
        )


@dataclass(frozen=True)
class SendResult:
    """What :func:`send_session_call` did."""

    grant: SessionGrant
    pending: PendingUserOperation
    receipt: UserOperationReceipt | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": hex_of(self.grant.session_id),
            "account": self.grant.account,
            "user_op_hash": self.pending.hex_hash,
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }

    def problem(self) -> UserOperationFailedError | None:
        """Why a script must not take this as the call done: it was waited for and its call reverted (None
        otherwise). ``send`` raises it once the receipt is printed, and exits with 1."""
        if self.receipt is None or self.receipt.success:
            return None
        return reverted(self.pending.hex_hash, self.receipt)


def send_session_call(
    network: Network,
    store: SessionStore,
    grant: SessionGrant,
    *,
    target: str,
    function: str,
    args: Sequence[str] = (),
    value: int = 0,
    check: bool = True,
    wait: bool = False,
    timeout: float = 60.0,
    names: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> SendResult:
    """Send ``target.function(*args)`` from the grant's account, signed by its session key (from ``store``).

    With ``check`` the policy, the window and the session's state on chain are checked first, and a call the
    chain would refuse raises before anything is sent; ``check=False`` sends it anyway. With ``wait`` the
    receipt is awaited (execution failures are reported in it, not raised)."""
    check_grant_network(network, grant)
    known = {"account": grant.account, **(names or {})}
    address = resolve_address(target, known, "target")
    call_args = parse_call_args(function, args, known)
    key = store.get_key(grant.session_key)
    session = network.session(grant, key, verify_on_chain=check)
    pending = session.execute(address, function, *call_args, value=value, check=check)
    receipt = _wait(progress, pending, "the session's operation", timeout, check=False) if wait else None
    if (
        receipt is not None and grant.how == "offchain"
    ):  # included: validated, so enabled (if the call reverted too)
        store.mark_enabled(grant.session_id)
    return SendResult(grant, pending, receipt)


@dataclass(frozen=True)
class OperationStatus:
    """A UserOperation as a bundler knows it: ``included`` (with the receipt), ``pending`` or ``unknown``.

    ``confirmed_by`` is the node (its URL, secrets masked) that confirmed the receipt: its transaction holds the
    EntryPoint's ``UserOperationEvent`` of the operation, and the receipt's figures are the node's. None: the
    receipt is the bundler's word only (no node was given)."""

    user_op_hash: str
    state: str
    receipt: UserOperationReceipt | None = None
    operation: dict[str, Any] | None = None
    confirmed_by: str | None = None
    bundler: str | None = None
    """The bundler asked (its URL, secrets masked)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"user_op_hash": self.user_op_hash, "state": self.state}
        if self.receipt is not None:
            data["receipt"] = _receipt_dict(self.receipt)
            data["confirmed_by_node"] = self.confirmed_by is not None
            data["node"] = self.confirmed_by
        if self.operation is not None:
            data["operation"] = self.operation
        return data

    def problem(self) -> KeyscopeError | None:
        """Why a script must not take this as the operation done (None: included, its call succeeded): the
        bundler does not know it (:class:`~keyscope.errors.UserOperationUnknownError`), or its call reverted
        (:class:`~keyscope.errors.UserOperationFailedError`). ``status`` raises it once the state is printed, and
        exits with 1; a pending operation exits with :data:`PENDING_EXIT`."""
        if self.state == "unknown":
            return UserOperationUnknownError(self.user_op_hash, self.bundler or "asked")
        if self.receipt is not None and not self.receipt.success:
            return reverted(self.user_op_hash, self.receipt)
        return None

    def lines(self) -> list[str]:
        if self.receipt is not None:
            confirmed = (
                f"confirmed     by the node {self.confirmed_by}: its transaction holds the EntryPoint's "
                "UserOperationEvent of the operation"
                if self.confirmed_by is not None
                else f"unconfirmed   the bundler's word only: no node was given to confirm it ({STATUS_NODE_ADVICE})"
            )
            return [f"UserOperation {self.user_op_hash}", *receipt_lines(self.receipt), confirmed]
        if self.state == "pending":
            sender = (self.operation or {}).get("userOperation", {}).get("sender")
            return [
                f"UserOperation {self.user_op_hash}",
                f"pending       known to the bundler (sender {sender})",
            ]
        return [
            f"UserOperation {self.user_op_hash}",
            "unknown       the bundler has neither a receipt nor the operation (dropped, or sent elsewhere)",
        ]


PENDING_EXIT = 3
"""``status``'s exit status for an operation the bundler holds and has not included yet: not done, and not an
error (run it again, or with --wait)."""


def reverted(user_op_hash: str, receipt: UserOperationReceipt) -> UserOperationFailedError:
    """What ``send --wait`` and ``status`` raise, once the receipt is printed, when the operation was included and
    its call reverted."""
    return UserOperationFailedError(user_op_hash, describe_revert(receipt.reason), receipt)


STATUS_NODE_ADVICE = "give the node's URL with --node, or a deployments file with its rpc_url"
"""How ``status`` is given a node to confirm a receipt with."""


@dataclass(frozen=True)
class StatusNode:
    """The node ``status`` confirms a receipt with: ``chain`` at ``url`` (shown as ``shown``), and the EntryPoint
    whose ``UserOperationEvent`` a confirmed receipt's transaction must hold."""

    chain: RpcChain
    url: str
    shown: str
    entry_point: str


def operation_status(
    bundler: Bundler,
    user_op_hash: str,
    *,
    node: StatusNode | None = None,
    wait: bool = False,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> OperationStatus:
    """Ask ``bundler`` about a UserOperation: its receipt, else ``eth_getUserOperationByHash``; with ``wait``,
    wait for the receipt.

    With ``node``, a receipt is taken only once the node confirms it (as :class:`PendingUserOperation` does with
    a node): one the node contradicts raises :class:`~keyscope.errors.ReceiptContradictedError`, one naming a
    transaction the node does not have :class:`~keyscope.errors.ReceiptUnconfirmedError` (with ``wait``: waited
    for, then :class:`~keyscope.errors.UserOperationTimeoutError`). Without, the receipt is the bundler's word,
    and the result says so (``confirmed_by`` None)."""
    try:
        raw = to_bytes(user_op_hash.strip(), name="the UserOperation hash", length=32)
    except BadInputError as error:  # a session id's prefix, say, which the listings show
        raise BadInputError(
            f"{error}: give the hash that `ape run send` printed on its `UserOperation 0x…` line (a session's "
            "state is in `ape run sessions`)"
        ) from None
    text = hex_of(raw)
    confirmed_by = None if node is None else node.shown
    pending = (
        PendingUserOperation(bundler, raw)
        if node is None
        else PendingUserOperation(bundler, raw, node=node.chain, entry_point=node.entry_point)
    )
    if wait:
        receipt = _wait(progress, pending, "the operation", timeout, check=False)
        return OperationStatus(text, "included", receipt, confirmed_by=confirmed_by)
    found_receipt = pending.receipt()
    if found_receipt is not None:
        return OperationStatus(text, "included", found_receipt, confirmed_by=confirmed_by)
    found = bundler.get_user_operation_by_hash(raw)
    if found is not None:
        return OperationStatus(text, "pending", operation=found)
    shown = mask_url(bundler.url) if isinstance(bundler, BundlerClient) else None
    return OperationStatus(text, "unknown", bundler=shown)


def status_bundler(bundler_url: str | None, deployments_file: str | None = None) -> Bundler:
    """The bundler ``status`` asks, from ``--bundler`` or the deployments file: a JSON-RPC one (an in-process
    bundler keeps nothing between runs)."""
    deployments = Deployments.load(deployments_file) if deployments_file else Deployments()
    bundler = _bundler_setting(bundler_url or deployments.bundler_url)
    if bundler is None:  # not "or inprocess", as other commands say: status refuses it
        raise ConfigurationError(
            f"status asks a bundler: pass --bundler URL (the one that received the operation), set {ENV_BUNDLER}, "
            "or give --deployments FILE with a bundler_url"
        )
    if bundler == INPROCESS:
        raise ConfigurationError(
            f"--bundler {INPROCESS} keeps no record between runs: `send --wait` prints the receipt of an "
            "operation sent in-process; ask a JSON-RPC bundler about operations it received"
        )
    return BundlerClient(bundler)


def status_node_option(node: str | None, network: str | None, progress: Progress | None = None) -> str | None:
    """The node URL ``status`` is given: ``--node``, or ``--network`` when that is a URL (the other commands'
    habit: their ``--network`` is the node). ``status`` does not connect through ape: a ``--network`` that is an
    ape network choice is not used, and ``progress`` says so."""
    if network is None:
        return node
    given = network.strip()
    if not re.match(r"^https?://", given, re.I):
        if progress is not None:
            progress.say(
                f"note: status does not connect through ape: --network {mask_url(given)} is not used; give the "
                "node's URL with --node to have the receipt confirmed at the node"
            )
        return node
    if node is not None and node.strip() != given:
        raise BadInputError(
            f"--node {mask_url(node.strip())} and --network {mask_url(given)} name two nodes: give the node's URL "
            "once (--node)"
        )
    return node or given


def status_node(
    bundler: Bundler,
    node_url: str | None,
    *,
    entry_point: str | None = None,
    deployments_file: str | None = None,
) -> StatusNode | None:
    """The node ``status`` confirms a receipt with: ``node_url`` (``--node``), else the deployments file's
    ``rpc_url``; None when neither is given (the receipt is then the bundler's word). The EntryPoint is
    ``entry_point`` (``--entry-point``), else the deployments file's, else the canonical v0.7: never the one a
    receipt names, which is the bundler's word too. The node must answer, as a node (not a bundler's URL given in
    its place), and be of the bundler's chain."""
    deployments = Deployments.load(deployments_file) if deployments_file else Deployments()
    url = node_url or deployments.rpc_url
    if url is None:
        return None
    where = "--node" if node_url else f"the deployments file's rpc_url ({deployments.source})"
    if not re.match(r"^https?://[^/\s]", url.strip(), re.I):
        raise BadInputError(
            f"{where}: {mask_url(url)!r} is not an http(s) URL: give the node's URL as http://host:port"
        )
    url = url.strip()
    shown = mask_url(url)
    chain = RpcChain(url)
    bundler_url = getattr(bundler, "url", None)
    if isinstance(bundler_url, str):
        misplaced = swapped_or_misplaced(url, bundler_url, node_name="--node", bundler_name="--bundler")
        if misplaced is not None:
            raise ConfigurationError(misplaced)
    chain_id = chain.chain_id()
    served = bundler.chain_id()
    if served != chain_id:
        raise ConfigurationError(
            f"the bundler serves chain {served}, but the node {shown} ({where}) is chain {chain_id}: give the node "
            "of the bundler's chain (--node), which confirms the receipt"
        )
    chosen = (
        _address_from(entry_point, "--entry-point")
        if entry_point
        else deployments.entry_point or ENTRY_POINT_V07
    )
    return StatusNode(chain, url, shown, to_address(chosen))
