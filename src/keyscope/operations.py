"""Turn calls into a sent UserOperation: nonce, fees, gas estimate (with a placeholder signature of the real
shape), paymaster fields, signature, and the bundler. Shared by the owner and the session paths."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .bundler.pending import PendingUserOperation, TransactionReceipts
from .bundler.types import FeeQuote, GasEstimate
from .eip7702 import Authorization
from .endpoints import Endpoints
from .entrypoint import encode_balance_of
from .errors import (
    BundlerRejectedError,
    InsufficientPrefundError,
    KeyscopeError,
    OwnerGasCostTooHighError,
    TransportError,
)
from .gas import required_prefund
from .paymaster import PaymasterFields
from .userop import EIP7702_FACTORY, UserOperation

__all__ = ["DEFAULT_OWNER_MAX_GAS_COST", "Draft", "OperationBuilder", "Prepared", "refuse_owner_cost"]

# Margins over the bundler's estimate. Unused verification gas costs nothing in EntryPoint v0.7;
# unused call gas above 40,000 costs 10 %, so the call gas limit gets only a small margin.
VERIFICATION_MARGIN = 1.15
CALL_MARGIN = 1.05
# Fees move block by block; a quote a couple of seconds old is as good as a new one.
FEE_TTL = 2.0

DEFAULT_OWNER_MAX_GAS_COST = 10**17
"""The most an owner's operation may cost in gas unless the owner chooses another cap: 0.1 ether. The bundler's
estimate and fee quote price the operation, and the owner signs only its hash: without a cap a bundler padding
preVerificationGas (charged in full) and the priority fee (paid to it as beneficiary) is paid what it padded."""


@dataclass(frozen=True)
class Draft:
    """What an operation is to do: ``sender`` runs ``call_data`` on nonce lane ``nonce_key``; the account is
    created by ``factory``/``factory_data`` when they are set (:meth:`OperationBuilder.draft` sets them only
    while the account has no code). An EOA's operation that delegates it (EIP-7702, EntryPoint v0.8) carries its
    ``eip7702_auth``; it is then marked ``factory: "0x7702"``, so that its hash binds the delegate."""

    sender: str
    call_data: bytes
    nonce_key: int
    factory: str | None = None
    factory_data: bytes = b""
    eip7702_auth: Authorization | None = None


class Prepared(NamedTuple):
    """An unsigned operation ready to sign, and the gas figures it was priced with (the bundler's estimate, or
    the figures given, before margins)."""

    op: UserOperation
    gas: GasEstimate


def _post_op_limit(stub: PaymasterFields | None, gas: GasEstimate, op: UserOperation | None) -> int:
    """ERC-7677: the stub's post-op limit is the paymaster's own figure; keep it when it gave one, else the
    bundler's estimate, else what the operation has."""
    if stub is not None and stub.paymasterPostOpGasLimit is not None:
        return stub.paymasterPostOpGasLimit
    if gas.paymaster_post_op_gas_limit is not None:
        return gas.paymaster_post_op_gas_limit
    return 0 if op is None else op.paymaster_post_op_gas_limit


def _gas_fields(
    gas: GasEstimate, op: UserOperation | None, stub: PaymasterFields | None, saved_bytes: int
) -> dict[str, int]:
    """The gas fields of an operation priced with ``gas`` (``op``: the operation estimated, with its paymaster
    fields; None without a paymaster): margins over the estimate, and the preVerificationGas of
    ``saved_bytes`` fewer signature bytes than the estimate was made with."""
    if gas.paymaster_verification_gas_limit is not None:
        paymaster_verification = int(gas.paymaster_verification_gas_limit * VERIFICATION_MARGIN)
    else:
        paymaster_verification = 0 if op is None else op.paymaster_verification_gas_limit
    return {
        "pre_verification_gas": max(gas.pre_verification_gas - 16 * saved_bytes, 0),
        "verification_gas_limit": int(gas.verification_gas_limit * VERIFICATION_MARGIN),
        "call_gas_limit": int(gas.call_gas_limit * CALL_MARGIN),
        "paymaster_verification_gas_limit": paymaster_verification,
        "paymaster_post_op_gas_limit": _post_op_limit(stub, gas, op),
    }


def _refuse_final_changes(final: PaymasterFields, op: UserOperation, service: str) -> None:
    """Refuse ``pm_getPaymasterData`` fields that change what the operation was estimated with: another paymaster
    than the stub's, or other paymaster gas limits (ERC-7677's final answer is the data for the stub's paymaster);
    signing them would sign for an operation other than the one estimated and shown."""
    changes = []
    if final.paymaster != op.paymaster:
        changes.append(f"another paymaster, {final.paymaster}, than its stub's {op.paymaster}")
    for field, had in (
        ("paymasterVerificationGasLimit", op.paymaster_verification_gas_limit),
        ("paymasterPostOpGasLimit", op.paymaster_post_op_gas_limit),
    ):
        given = getattr(final, field)
        if given is not None and given != had:
            changes.append(f"{field} {given}, not the operation's {had}")
    if changes:
        raise TransportError(
            f"the paymaster service at {service} answered pm_getPaymasterData with {'; '.join(changes)}: the "
            "operation was estimated with the stub's paymaster and limits, so nothing was signed; check the "
            "paymaster service (broken, or not to be trusted)",
            url=service,
            method="pm_getPaymasterData",
        )


class OperationBuilder:
    """Builds, signs and sends UserOperations on a :class:`~keyscope.endpoints.Endpoints`."""

    def __init__(self, network: Endpoints, *, fee_ttl: float = FEE_TTL) -> None:
        self.network = network
        self.fee_ttl = fee_ttl
        self._fees: tuple[float, FeeQuote] | None = None
        self.deployed: set[str] = set()
        """Accounts seen with code: they are not asked about again."""

    def draft(
        self,
        sender: str,
        call_data: bytes,
        nonce_key: int,
        factory: str | None = None,
        factory_data: bytes = b"",
    ) -> Draft:
        """The :class:`Draft` of an operation of ``sender``, keeping ``factory`` only when the account must be
        created by it (it has no code yet). An account once seen deployed is not asked about again."""
        if factory is not None and sender not in self.deployed:
            if not self.network.is_deployed(sender):
                return Draft(sender, call_data, nonce_key, factory, factory_data)
            self.deployed.add(sender)
        return Draft(sender, call_data, nonce_key)

    def fee_quote(self) -> FeeQuote:
        """The bundler's fee quote, reused for ``fee_ttl`` seconds."""
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > self.fee_ttl:
            self._fees = (now, self.network.bundler.fee_quote())
        return self._fees[1]

    def prepare(
        self,
        draft: Draft,
        placeholder_signature: bytes,
        *,
        gas: GasEstimate | None = None,
        nonce: int | None = None,
        signature_size: int | None = None,
    ) -> Prepared:
        """An unsigned operation with nonce, fees, gas limits and paymaster fields filled in, and the gas figures
        it was priced with.

        ``placeholder_signature`` must have the shape (and for the session module, the mode) of the real
        signature: bundlers simulate validation with it to estimate gas. Pass ``gas`` to skip estimation.
        ``signature_size``: the length of the real signature when it is shorter than the placeholder; the
        preVerificationGas priced for the placeholder's calldata is lowered by 16 gas per byte saved (bundlers
        check it against the operation as sent). ``draft.factory`` creates the account when set (see
        :meth:`draft`).
        """
        net = self.network
        net.check_bundler_chain()  # before anything is asked about the operation or sent
        fees = self.fee_quote()
        delegating = draft.eip7702_auth is not None
        fields: dict[str, Any] = {
            "sender": draft.sender,
            "nonce": net.chain.get_nonce(net.entry_point, draft.sender, draft.nonce_key)
            if nonce is None
            else nonce,
            "factory": EIP7702_FACTORY if delegating else draft.factory,
            "factory_data": b"" if delegating else draft.factory_data,
            "eip7702_auth": draft.eip7702_auth,
            "call_data": draft.call_data,
            "max_fee_per_gas": fees.max_fee_per_gas,
            "max_priority_fee_per_gas": fees.max_priority_fee_per_gas,
            "signature": placeholder_signature,
        }
        saved = max(len(placeholder_signature) - signature_size, 0) if signature_size is not None else 0
        if gas is not None and net.paymaster is None:  # everything is known: the operation is built once
            return Prepared(UserOperation(**fields, **_gas_fields(gas, None, None, saved)), gas)
        op = UserOperation(**fields)
        stub = None
        if net.paymaster is not None:
            stub = net.paymaster.stub_data(op, net.entry_point, net.chain_id)
            op = stub.apply(op)
        if gas is None:
            try:
                gas = net.bundler.estimate_user_operation_gas(op, net.entry_point)
            except BundlerRejectedError:
                net.refuse_bundler_of_another_chain()
                raise
        op = op.replace(**_gas_fields(gas, op, stub, saved))
        if net.paymaster is not None and stub is not None and not stub.isFinal:
            final = net.paymaster.data(op, net.entry_point, net.chain_id)
            _refuse_final_changes(final, op, net.paymaster.shown_url)
            op = final.apply(op)
        return Prepared(op, gas)

    def user_op_hash(self, op: UserOperation) -> bytes:
        """The userOpHash of ``op`` on this network, for its EntryPoint's version (:meth:`Endpoints.user_op_hash`)."""
        return self.network.user_op_hash(op)

    def sign(self, op: UserOperation, signature_for: Callable[[bytes], bytes]) -> UserOperation:
        """``op`` with ``signature_for(userOpHash)`` as its signature."""
        return op.replace(signature=signature_for(self.user_op_hash(op)))

    def send(self, op: UserOperation) -> PendingUserOperation:
        """Send a signed operation to the bundler. A bundler answering another userOpHash than the operation's is
        a :class:`~keyscope.errors.TransportError` (the operation is then followed under neither hash by this call).
        The pending operation's receipt is confirmed by the network's node (its ``UserOperationEvent``) where the
        node answers raw JSON-RPC (:class:`~keyscope.chain.RpcChain`, :class:`~keyscope.chain.Web3Chain`)."""
        net = self.network
        net.check_bundler_chain()
        mine = self.user_op_hash(op)
        try:
            returned = net.bundler.send_user_operation(op, net.entry_point)
        except BundlerRejectedError:
            net.refuse_bundler_of_another_chain()
            raise
        if bytes(returned) != mine:
            raise TransportError(
                f"the bundler answered eth_sendUserOperation with userOpHash 0x{bytes(returned).hex()}, not the "
                f"operation's 0x{mine.hex()}: the operation may have been sent; follow it under its own hash "
                f"(PendingUserOperation(bundler, '0x{mine.hex()}', op)), and check the bundler: broken, or not to "
                "be trusted",
                method="eth_sendUserOperation",
            )
        node = net.chain if isinstance(net.chain, TransactionReceipts) else None
        return PendingUserOperation(net.bundler, mine, op, node=node, entry_point=net.entry_point)


def refuse_owner_cost(op: UserOperation, cap: int) -> None:
    """Raise :class:`~keyscope.errors.OwnerGasCostTooHighError`, before the owner signs, when ``op`` (priced by the
    bundler's estimate and fee quote) could cost more than ``cap`` wei: its prefund, every gas limit (a paymaster's
    included) times maxFeePerGas, the most the EntryPoint can charge. A ``cap`` of 0 is no cap."""
    cost = required_prefund(op)
    if not cap or cost <= cap:
        return
    paymaster = ""
    if op.paymaster is not None:
        paymaster = (
            f", paymaster verification {op.paymaster_verification_gas_limit:,} and postOp "
            f"{op.paymaster_post_op_gas_limit:,}"
        )
    raise OwnerGasCostTooHighError(
        f"the bundler priced this operation of {op.sender} at up to {cost:,} wei in gas (verification "
        f"{op.verification_gas_limit:,}, call {op.call_gas_limit:,}, preVerification {op.pre_verification_gas:,}"
        f"{paymaster} gas at maxFeePerGas {op.max_fee_per_gas:,} wei, priority fee {op.max_priority_fee_per_gas:,} "
        f"wei), over the owner's cap of {cap:,} wei; nothing was signed or sent. A bundler is paid what it pads "
        "(preVerificationGas is charged in full, the priority fee goes to it): check the bundler, and only if fees "
        "really are this high raise the owner's max_gas_cost (net.owner(..., max_gas_cost=), owner.max_gas_cost, "
        "KEYSCOPE_OWNER_MAX_GAS_COST for the keyscope command, its dashboard and consent pages included, and the ape "
        "run scripts, or ConsentServer(..., owner_max_gas_cost=) for pages served from code; 0 for none)",
        account=op.sender,
        cost=cost,
        limit=cap,
    )


def prefund_refusal(
    network: Endpoints, account: str, error: BundlerRejectedError, op: UserOperation | None
) -> InsufficientPrefundError | None:
    """:class:`~keyscope.errors.InsufficientPrefundError` for a bundler's AA21 refusal of ``account``'s operation,
    with the account's balance and EntryPoint deposit (read now) and ``op``'s prefund; None for another refusal,
    or when the chain cannot be read."""
    if error.reason != "AA21":
        return None
    try:
        balance = network.chain.get_balance(account)
        deposit = int.from_bytes(
            network.chain.call(network.entry_point, encode_balance_of(account))[:32], "big"
        )
    except KeyscopeError:
        return None
    return InsufficientPrefundError(
        error.method,
        error.code,
        error.rpc_message,
        error.data,
        account=account,
        balance=balance,
        deposit=deposit,
        cost=required_prefund(op) if op is not None and op.paymaster is None else None,
    )
