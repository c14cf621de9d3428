"""Gas on anvil, from the real EntryPoint v0.7: owner versus session UserOperations on identical account state.

Every measured operation runs on the same chain state: ``evm_snapshot`` before, ``evm_revert`` after. The
account is created and both of its nonce lanes (the owner's, key 0, and the session module's, lane 0) are
used once before anything is measured, so no figure pays a lane's first zero-to-nonzero nonce write.

Measured operations are sent straight to ``EntryPoint.handleOps`` in a transaction of their own from a funded
development account (which is also the beneficiary), never batched with others; the figures are then read from

* the ``UserOperationEvent`` (``actualGasUsed``: what the account is charged, preVerificationGas included),
* the transaction receipt (``gasUsed`` of the whole handleOps transaction: what the bundler pays), and
* a ``callTracer`` trace of that transaction (``validateUserOp`` frames: the validation part).

Gas limits: verificationGasLimit and preVerificationGas are the bundler's (Alto's) estimates for the operation,
estimated with the placeholder signature the SDK uses; callGasLimit is the least that succeeds just above the gas
the account's ``execute`` call used in a first run of the same operation on the same state (then reverted):
``used + used // 63 + 100`` or a step more (:meth:`Lab.measure`), so that the EntryPoint's 10 % penalty on unused
execution gas is small and the same for owner and session (v0.7.0 charges it on all unused call gas; the
40,000-gas allowance came with v0.8); each row records its bound (``penalty_bound``). The accounts hold a deposit at the EntryPoint, so validation pays no
prefund; one pair of rows repeats the headline comparison with the prefund paid from the account's balance.

The same signed operations are finally sent through Alto to check that the route does not change the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from common import fixed_signer, ratio
from eth_abi import encode as abi_encode

from keyscope import Limits, Policy, SessionKey, arg, connect
from keyscope.calls import function_call
from keyscope.entrypoint import (
    decode_user_operation_events,
    encode_balance_of,
    encode_deposit_to,
    encode_handle_ops,
)
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.grant import SessionGrant
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak, to_bytes
from keyscope.network import Network
from keyscope.owner import Owner
from keyscope.session import (
    SESSION_ABI_TYPE,
    Permission,
    encode_at_signature,
    encode_enable_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.gas_shapes import (
    ERC20_AMOUNT,
    erc20_transfer_permission,
    erc721_transfer_permission,
    mint_permission,
    word_permission,
)
from support.victims import deploy as deploy_project_contract
from support.victims import transact

ETHER = 10**18
RULE_COUNTS = (0, 1, 2, 4, 8)
BATCH_SIZES = (1, 5, 10)
SESSION_COUNTS = (1, 10, 100)
HEADLINE_RULES = 2

VALIDATE_USER_OP = bytes.fromhex("19822f7c")  # IAccount.validateUserOp(op, hash, missingAccountFunds)
MODULE_VALIDATE_USER_OP = bytes.fromhex("97003203")  # IERC7579Validator.validateUserOp(op, hash)
INNER_HANDLE_OP = bytes.fromhex("0042dc53")
ENABLE_SESSION = keccak(f"enableSession({SESSION_ABI_TYPE})".encode())[:4]
REVOKE_SESSION = keccak(b"revokeSession(bytes32)")[:4]
WITHDRAW_TO = keccak(b"withdrawTo(address,uint256)")[:4]
PLACEHOLDER_ECDSA = b"\xff" * 32 + b"\x7f" * 32 + b"\x1c"
TX_GAS = 15_000_000


@dataclass
class Measured:
    """One UserOperation in a handleOps transaction of its own."""

    label: str
    tx_gas: int
    actual_gas_used: int
    validation_gas: int
    """gasUsed of the EntryPoint -> account ``validateUserOp`` frame (the account's whole validation)."""
    module_gas: int | None
    """gasUsed of the account -> session module ``validateUserOp`` frame (session operations only)."""
    execution_gas: int
    """gasUsed of the EntryPoint's ``innerHandleOp`` frame (the execution part the EntryPoint accounts)."""
    call_gas_limit: int
    estimated_call_gas_limit: int
    verification_gas_limit: int
    pre_verification_gas: int
    penalty_bound: int
    """At most this much of actualGasUsed is the unused-gas penalty: 10 % of callGasLimit above what the call
    used."""
    signature_bytes: int
    handle_ops_bytes: int
    success: bool
    op: UserOperation | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("op")
        return data


@dataclass
class Draft:
    """An estimated, unsigned operation and how to sign it."""

    op: UserOperation
    sign: Callable[[bytes], bytes]
    estimated_call_gas_limit: int


def _frames(frame: dict[str, Any]) -> list[dict[str, Any]]:
    out = [frame]
    for child in frame.get("calls", []) or []:
        out.extend(_frames(child))
    return out


def _selector(frame: dict[str, Any]) -> bytes:
    return to_bytes(frame.get("input", "0x"))[:4]


def _gas(frame: dict[str, Any]) -> int:
    return int(frame.get("gasUsed", "0x0"), 16)


class Lab:
    """Builds operations with tight limits, sends them to handleOps from a development account, measures."""

    def __init__(self, stack: Any, net: Network) -> None:
        self.stack = stack
        self.net = net
        self.node = stack.node
        self.entry_point = stack.entry_point
        self.module = stack.module
        self.chain_id = stack.chain_id
        self.submitter = stack.accounts[0].address
        self.fees = net.bundler.fee_quote()

    # -- building --------------------------------------------------------------------------------------

    def draft(
        self,
        sender: str,
        nonce_key: int,
        call_data: bytes,
        placeholder: bytes,
        sign: Callable[[bytes], bytes],
    ) -> Draft:
        op = UserOperation(
            sender=sender,
            nonce=self.net.chain.get_nonce(self.entry_point, sender, nonce_key),
            call_data=call_data,
            max_fee_per_gas=self.fees.max_fee_per_gas,
            max_priority_fee_per_gas=self.fees.max_priority_fee_per_gas,
            signature=placeholder,
        )
        estimate = self.net.bundler.estimate_user_operation_gas(op, self.entry_point)
        op = op.replace(
            verification_gas_limit=estimate.verification_gas_limit,
            call_gas_limit=estimate.call_gas_limit,
            pre_verification_gas=estimate.pre_verification_gas,
        )
        return Draft(op, sign, estimate.call_gas_limit)

    def signed(self, draft: Draft, call_gas_limit: int | None = None) -> UserOperation:
        op = draft.op if call_gas_limit is None else draft.op.replace(call_gas_limit=call_gas_limit)
        digest = user_op_hash_v07(op.pack(), self.entry_point, self.chain_id)
        return op.replace(signature=draft.sign(digest))

    def owner_draft(self, owner: Owner, calls: Sequence[Call], *, batch: bool | None = None) -> Draft:
        kind = self.net.kind_for(owner.account)
        return self.draft(
            owner.account,
            kind.nonce_key(None),
            encode_execute(list(calls), batch=batch),
            kind.owner_user_op_signature(PLACEHOLDER_ECDSA),
            lambda digest: kind.owner_user_op_signature(owner.signer.sign_hash(digest)),
        )

    def session_draft(
        self,
        account: str,
        key: LocalSigner,
        calls: Sequence[Call],
        *,
        batch: bool | None = None,
        lane: int = 0,
        at: int | None = None,
    ) -> Draft:
        """A session operation; ``at``: the time it claims (per-period limits), as an AT signature prefix."""
        placeholder = encode_use_with_key_signature(key.address, PLACEHOLDER_ECDSA)
        sign = key.sign_hash
        if at is not None:
            placeholder = encode_at_signature(at, placeholder)

            def sign(digest: bytes) -> bytes:
                return encode_at_signature(at, key.sign_hash(digest))

        return self.draft(
            account,
            self.net.kind_for(account).nonce_key(self.module, lane),
            encode_execute(list(calls), batch=batch),
            placeholder,
            sign,
        )

    def enable_draft(self, grant: SessionGrant, key: LocalSigner, calls: Sequence[Call]) -> Draft:
        assert grant.owner_signature is not None
        owner_signature = grant.owner_signature
        return self.draft(
            grant.account,
            self.net.kind_for(grant.account, named=grant.account_kind).nonce_key(self.module, 0),
            encode_execute(list(calls)),
            encode_enable_signature(grant.session, owner_signature, PLACEHOLDER_ECDSA),
            lambda digest: encode_enable_signature(grant.session, owner_signature, key.sign_hash(digest)),
        )

    # -- sending ---------------------------------------------------------------------------------------

    def receipt(self, tx_hash: str) -> dict[str, Any]:
        """The receipt of ``tx_hash`` (mined at once: anvil mines every transaction)."""
        for _ in range(1000):
            receipt = self.node.request("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return dict(receipt)
            time.sleep(0.01)
        raise RuntimeError(f"transaction {tx_hash} was not mined within 10 s")

    def send(self, op: UserOperation) -> dict[str, Any]:
        """handleOps([op]) in a transaction of its own; the receipt, the operation's event and the trace."""
        data = encode_handle_ops([op.pack()], self.submitter)
        tx = {"from": self.submitter, "to": self.entry_point, "data": "0x" + data.hex(), "gas": hex(TX_GAS)}
        tx_hash = self.node.request("eth_sendTransaction", [tx])
        receipt = self.receipt(tx_hash)
        if int(receipt["status"], 16) != 1:
            raise RuntimeError(f"handleOps transaction {tx_hash} failed or was not mined: {receipt}")
        events = decode_user_operation_events(receipt["logs"], self.entry_point)
        if len(events) != 1:
            raise RuntimeError(f"handleOps transaction {tx_hash} has {len(events)} UserOperationEvents")
        trace = self.node.request("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        return {
            "receipt": receipt,
            "event": next(iter(events.values())),
            "trace": trace,
            "calldata": len(data),
        }

    def _analyse(
        self, label: str, op: UserOperation, sent: dict[str, Any], estimated: int, call_used: int
    ) -> Measured:
        sender = op.sender.lower()
        module = self.module.lower()
        frames = _frames(sent["trace"])
        validation = next(
            f for f in frames if f.get("to", "").lower() == sender and _selector(f) == VALIDATE_USER_OP
        )
        module_frame = next(
            (
                f
                for f in _frames(validation)
                if f.get("to", "").lower() == module and _selector(f) == MODULE_VALIDATE_USER_OP
            ),
            None,
        )
        inner = next(
            f
            for f in frames
            if f.get("to", "").lower() == self.entry_point.lower() and _selector(f) == INNER_HANDLE_OP
        )
        execution = _gas(inner)
        event = sent["event"]
        return Measured(
            label=label,
            tx_gas=int(sent["receipt"]["gasUsed"], 16),
            actual_gas_used=int(event["actualGasUsed"]),
            validation_gas=_gas(validation),
            module_gas=_gas(module_frame) if module_frame is not None else None,
            execution_gas=execution,
            call_gas_limit=op.call_gas_limit,
            estimated_call_gas_limit=estimated,
            verification_gas_limit=op.verification_gas_limit,
            pre_verification_gas=op.pre_verification_gas,
            penalty_bound=max(0, op.call_gas_limit - call_used) // 10,
            signature_bytes=len(op.signature),
            handle_ops_bytes=sent["calldata"],
            success=bool(event["success"]),
            op=op,
        )

    def _execute_frame_gas(self, op: UserOperation, sent: dict[str, Any]) -> int:
        inner = next(
            f
            for f in _frames(sent["trace"])
            if f.get("to", "").lower() == self.entry_point.lower() and _selector(f) == INNER_HANDLE_OP
        )
        call = next(f for f in inner.get("calls", []) if f.get("to", "").lower() == op.sender.lower())
        return _gas(call)

    def measure(self, label: str, make: Callable[[], Draft]) -> Measured:
        """Run the operation ``make`` builds on the same state, reverting after each run: once with the
        estimated callGasLimit to learn the gas its call uses (``used``), then with the least limit that
        succeeds among a few candidates (the figures).

        A call needs more than it uses because each call level forwards only 63/64 of the gas left: the
        candidates are ``used + k * (used // 63 + 100)`` for k = 1, 2, 3 (the account is a proxy, so a call to a
        contract is two levels deep), then the bundler's estimate."""
        snapshot = self.stack.snapshot()
        try:
            draft = make()
            first = self.signed(draft)
            used = self._execute_frame_gas(first, self.send(first))
        finally:
            self.stack.revert(snapshot)
        step = used // 63 + 100
        candidates = [used + k * step for k in (1, 2, 3)]
        candidates.append(max(draft.estimated_call_gas_limit, candidates[-1] + step))
        result: Measured | None = None
        for limit in candidates:
            snapshot = self.stack.snapshot()
            try:
                op = self.signed(draft, call_gas_limit=limit)
                result = self._analyse(label, op, self.send(op), draft.estimated_call_gas_limit, used)
            finally:
                self.stack.revert(snapshot)
            if result.success:
                return result
        raise RuntimeError(f"{label}: the operation's call failed even with callGasLimit {candidates[-1]}")

    def apply(self, op: UserOperation) -> None:
        """Send ``op`` for good (no revert)."""
        sent = self.send(op)
        if not sent["event"]["success"]:
            raise RuntimeError("an operation applied during set-up failed")

    def deposit(self, account: str, wei: int) -> None:
        data = encode_deposit_to(account)
        tx = {"from": self.submitter, "to": self.entry_point, "data": "0x" + data.hex(), "value": hex(wei)}
        tx_hash = self.node.request("eth_sendTransaction", [tx])
        if int(self.receipt(tx_hash)["status"], 16) != 1:
            raise RuntimeError("depositTo failed")

    def deposit_of(self, account: str) -> int:
        result = self.node.request(
            "eth_call", [{"to": self.entry_point, "data": "0x" + encode_balance_of(account).hex()}, "latest"]
        )
        return int(result, 16)


# -- policies (shared with the gas snapshot: tests/support/gas_shapes.py) ---------------------------------


LIMIT_ROWS: dict[str, dict[str, Any]] = {
    "limits_allowance": {"totals": True},
    "limits_allowance_daily": {"totals": True, "per": "day"},
    "limits_count": {"calls": True},
    "limits_each": {
        "totals": True,
        "per": "day",
        "calls": True,
        "rate": True,
        "operations": True,
        "gas": True,
    },
}
"""Sessions like ``session_2_word_rules`` (``mintBatch``, two rules on ``count``) with limits: an allowance on
``count`` over the life or per day, a call count, and one of each kind (a call count, a rate per hour, a daily
total, operations per hour, a gas budget)."""


def limited_grant_args(nft: str, recipient: str, spec: dict[str, Any]) -> tuple[Permission, list[Any]]:
    """The permission and the session-wide limits of a LIMIT_ROWS entry (amounts no measurement reaches)."""
    big = 10**30
    permission = Policy.call(
        nft,
        "mintBatch(address to,uint256 count)",
        rules=[arg("count") >= 1, arg("count") <= 3],
        calls=big if spec.get("calls") else None,
        rate=(10**12, "hour") if spec.get("rate") else None,
        totals=[arg("count").total(big, per=spec.get("per"))] if spec.get("totals") else [],
    )
    limits: list[Any] = []
    if spec.get("operations"):
        limits.append(Limits.operations(10**12, per="hour"))
    if spec.get("gas"):
        limits.append(Limits.gas(big))
    return permission, limits


def withdraw_call(entry_point: str, account: str, amount: int) -> Call:
    return Call(entry_point, 0, WITHDRAW_TO + abi_encode(["address", "uint256"], [account, amount]))


def enable_session_call(module: str, grant_session: Any) -> Call:
    return Call(module, 0, ENABLE_SESSION + abi_encode([SESSION_ABI_TYPE], [grant_session.as_abi()]))


# -- the benchmark --------------------------------------------------------------------------------------


def run(stack: Any, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every gas and byte figure, as a dict for results.json."""
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    lab = Lab(stack, net)
    recipient = fixed_signer("gas/recipient").address
    mint = function_call(stack.nft, "safeMint(address)", recipient)

    # -- set-up through the SDK and Alto: account, deposit, sessions, both lanes used once ---------------
    log("gas: set-up (account, deposit, sessions, both nonce lanes used once)")
    owner = net.owner(fixed_signer("gas/owner"))
    stack.fund(owner.account, 100 * ETHER)
    owner.execute(mint).wait()
    lab.deposit(owner.account, 10 * ETHER)
    keys = {rules: SessionKey(fixed_signer(f"gas/key-{rules}").private_key) for rules in RULE_COUNTS}
    grants: dict[int, SessionGrant] = {}
    for rules in RULE_COUNTS:
        permission = mint_permission(stack.nft, recipient, rules)
        grants[rules] = owner.grant(keys[rules], [permission], onchain=True, salt=rules, never_expires=True)
    # the module's lane 0, which every session row below uses (the SDK would give each session a lane of its
    # own, whose first use is the 'lane's first use' row)
    lab.send(lab.signed(lab.session_draft(owner.account, keys[HEADLINE_RULES], [mint])))
    word_key = SessionKey(fixed_signer("gas/key-word-rules").private_key)
    owner.grant(word_key, [word_permission(stack.nft, recipient)], onchain=True, salt=200, never_expires=True)
    headline_permission = mint_permission(stack.nft, recipient, HEADLINE_RULES)
    enable_key = SessionKey(fixed_signer("gas/key-enable").private_key)
    offchain = owner.grant(enable_key, [headline_permission], salt=100, never_expires=True)
    onchain_key = SessionKey(fixed_signer("gas/key-onchain").private_key)
    onchain_session = owner.session_for(onchain_key, [headline_permission], salt=101, never_expires=True)

    out: dict[str, Any] = {"rows": {}}
    rows: dict[str, Measured] = {}

    def keep(measured: Measured) -> Measured:
        rows[measured.label] = measured
        return measured

    log("gas: owner vs session, 0/1/2/4/8 rules")
    owner_mint = keep(lab.measure("owner", lambda: lab.owner_draft(owner, [mint])))
    for rules in RULE_COUNTS:
        keep(
            lab.measure(
                f"session_{rules}_rules",
                lambda rules=rules: lab.session_draft(owner.account, keys[rules], [mint]),
            )
        )
    headline = rows[f"session_{HEADLINE_RULES}_rules"]
    mint_two = function_call(stack.nft, "mintBatch(address,uint256)", recipient, 2)
    keep(lab.measure("owner_mint_batch", lambda: lab.owner_draft(owner, [mint_two])))
    keep(lab.measure("session_2_word_rules", lambda: lab.session_draft(owner.account, word_key, [mint_two])))

    log("gas: batches of 1, 5 and 10 calls")
    for size in BATCH_SIZES:
        keep(
            lab.measure(
                f"owner_batch_{size}", lambda size=size: lab.owner_draft(owner, [mint] * size, batch=True)
            )
        )
        keep(
            lab.measure(
                f"session_batch_{size}",
                lambda size=size: lab.session_draft(
                    owner.account, keys[HEADLINE_RULES], [mint] * size, batch=True
                ),
            )
        )

    log("gas: first use, off-chain grant (ENABLE) vs on-chain grant + use; revoke; a lane's first use")
    keep(lab.measure("session_enable_offchain", lambda: lab.enable_draft(offchain, enable_key, [mint])))
    grant_call = enable_session_call(stack.module, onchain_session)
    outer = stack.snapshot()
    try:
        grant_op = keep(lab.measure("owner_enable_session", lambda: lab.owner_draft(owner, [grant_call])))
        assert grant_op.op is not None
        lab.apply(grant_op.op)
        keep(
            lab.measure(
                "session_after_onchain_grant", lambda: lab.session_draft(owner.account, onchain_key, [mint])
            )
        )
    finally:
        stack.revert(outer)
    revoke_call = Call(stack.module, 0, REVOKE_SESSION + grants[HEADLINE_RULES].session_id)
    keep(lab.measure("owner_revoke_session", lambda: lab.owner_draft(owner, [revoke_call])))
    keep(
        lab.measure(
            "session_new_lane",
            lambda: lab.session_draft(owner.account, keys[HEADLINE_RULES], [mint], lane=1),
        )
    )

    log("gas: the headline pair with the prefund paid from the account's balance")
    outer = stack.snapshot()
    try:
        # withdraw all of the deposit the operation leaves: afterwards only its refund remains, which is less
        # than any operation's prefund, so every operation tops the deposit up from the account's balance
        draft = lab.owner_draft(owner, [withdraw_call(stack.entry_point, owner.account, 0)])
        op = draft.op.replace(call_gas_limit=2 * draft.op.call_gas_limit)
        amount = lab.deposit_of(owner.account) - required_prefund(op)
        op = op.replace(call_data=encode_execute([withdraw_call(stack.entry_point, owner.account, amount)]))
        lab.apply(lab.signed(Draft(op, draft.sign, draft.estimated_call_gas_limit)))
        keep(lab.measure("owner_prefund_paid", lambda: lab.owner_draft(owner, [mint])))
        keep(
            lab.measure(
                "session_2_rules_prefund_paid",
                lambda: lab.session_draft(owner.account, keys[HEADLINE_RULES], [mint]),
            )
        )
    finally:
        stack.revert(outer)

    log("gas: the same signed operations through Alto (route check)")
    route: dict[str, Any] = {}
    for label in ("owner", f"session_{HEADLINE_RULES}_rules"):
        measured = rows[label]
        assert measured.op is not None
        pending = net.bundler.send_user_operation(measured.op, stack.entry_point)
        receipt = None
        for _ in range(1000):
            receipt = net.bundler.get_user_operation_receipt(pending)
            if receipt is not None:
                break
            time.sleep(0.02)
        if receipt is None:
            raise RuntimeError(f"{label}: Alto did not include the operation")
        tx_receipt = stack.node.request("eth_getTransactionReceipt", ["0x" + receipt.transaction_hash.hex()])
        route[label] = {
            "direct_actual_gas_used": measured.actual_gas_used,
            "alto_actual_gas_used": receipt.actual_gas_used,
            "direct_tx_gas": measured.tx_gas,
            "alto_tx_gas": int(tx_receipt["gasUsed"], 16),
            "alto_bundle_ops": sum(
                1 for log_entry in tx_receipt["logs"] if log_entry["topics"][0] == _USER_OPERATION_EVENT
            ),
        }
    out["route_check"] = route

    log("gas: limits (an allowance, a call count, one of each) on the same call")
    now = stack.timestamp()
    for number, (label, spec) in enumerate(LIMIT_ROWS.items()):
        limit_key = SessionKey(fixed_signer(f"gas/key-{label}").private_key)
        permission, limits = limited_grant_args(stack.nft, recipient, spec)
        owner.grant(
            limit_key, [permission], limits=limits, onchain=True, salt=300 + number, valid_after=now - 3600
        )
        at = now if spec.get("per") or spec.get("rate") or spec.get("operations") else None
        # counted once before, as the other rows' lanes: the records hold this period's count
        lab.send(lab.signed(lab.session_draft(owner.account, limit_key, [mint_two], at=at)))
        keep(
            lab.measure(
                label,
                lambda limit_key=limit_key, at=at: lab.session_draft(
                    owner.account, limit_key, [mint_two], at=at
                ),
            )
        )

    log("gas: validation with 1, 10 and 100 sessions on the account")
    scaling = _session_scaling(stack, net, lab, recipient, mint)
    rows.update(scaling)

    log("gas: the call shapes (ERC-20 transfer, ERC-721 transferFrom) by the owner and a 2-rule session")
    token = deploy_project_contract(stack, "TestToken")
    outer = stack.snapshot()
    try:
        rows.update(measure_shapes(stack, lab, owner, token))
    finally:
        stack.revert(outer)
    out["shapes"] = shape_ratios(rows)

    out["rows"] = {label: measured.row() for label, measured in rows.items()}
    owner_row = owner_mint
    out["headline"] = {
        "rules": HEADLINE_RULES,
        "owner_tx_gas": owner_row.tx_gas,
        "session_tx_gas": headline.tx_gas,
        "tx_gas_ratio": ratio(headline.tx_gas, owner_row.tx_gas),
        "owner_actual_gas_used": owner_row.actual_gas_used,
        "session_actual_gas_used": headline.actual_gas_used,
        "actual_gas_ratio": ratio(headline.actual_gas_used, owner_row.actual_gas_used),
        "owner_validation_gas": owner_row.validation_gas,
        "session_validation_gas": headline.validation_gas,
        "validation_gas_ratio": ratio(headline.validation_gas, owner_row.validation_gas),
        "session_module_gas": headline.module_gas,
    }
    base = rows["session_2_word_rules"]
    out["limits"] = {
        label: {
            "tx_gas": rows[label].tx_gas,
            "extra_tx_gas": rows[label].tx_gas - base.tx_gas,
            "module_gas": rows[label].module_gas,
            "extra_module_gas": (rows[label].module_gas or 0) - (base.module_gas or 0),
            "signature_bytes": rows[label].signature_bytes,
        }
        for label in LIMIT_ROWS
    }
    first = rows["session_enable_offchain"]
    onchain_total = rows["owner_enable_session"].tx_gas + rows["session_after_onchain_grant"].tx_gas
    out["first_use"] = {
        "offchain_enable_tx_gas": first.tx_gas,
        "onchain_grant_tx_gas": rows["owner_enable_session"].tx_gas,
        "onchain_use_tx_gas": rows["session_after_onchain_grant"].tx_gas,
        "onchain_total_tx_gas": onchain_total,
        "offchain_over_onchain_total": ratio(first.tx_gas, onchain_total),
        "offchain_enable_over_owner_op": ratio(first.tx_gas, owner_row.tx_gas),
        "offchain_enable_actual_over_owner": ratio(first.actual_gas_used, owner_row.actual_gas_used),
        "lane_first_use_extra_tx_gas": rows["session_new_lane"].tx_gas - headline.tx_gas,
    }
    one, hundred = rows["sessions_1"], rows["sessions_100"]
    out["scaling"] = {
        "validation_gas": {str(n): rows[f"sessions_{n}"].validation_gas for n in SESSION_COUNTS},
        "module_gas": {str(n): rows[f"sessions_{n}"].module_gas for n in SESSION_COUNTS},
        "tx_gas": {str(n): rows[f"sessions_{n}"].tx_gas for n in SESSION_COUNTS},
        "validation_ratio_100_over_1": ratio(hundred.validation_gas, one.validation_gas),
    }
    out["bytes"] = {
        "use_signature": headline.signature_bytes,
        "use_with_key_signature": len(
            encode_use_with_key_signature(keys[HEADLINE_RULES].address, PLACEHOLDER_ECDSA)
        ),
        "enable_signature_2_rules": first.signature_bytes,
        "owner_signature": owner_row.signature_bytes,
        "handle_ops_calldata_owner": owner_row.handle_ops_bytes,
        "handle_ops_calldata_session": headline.handle_ops_bytes,
        "handle_ops_calldata_enable": first.handle_ops_bytes,
    }
    return out


SHAPES = {
    "nft_mint": ("owner", f"session_{HEADLINE_RULES}_rules"),
    "erc20_transfer": ("owner_erc20_transfer", "session_erc20_transfer_2_rules"),
    "erc721_transfer_from": ("owner_erc721_transfer_from", "session_erc721_transfer_from_2_rules"),
}
"""Per call shape: the owner's row and the 2-rule session's row, on the same account state."""


def measure_shapes(stack: Any, lab: Lab, owner: Owner, token: str, prefix: str = "") -> dict[str, Measured]:
    """The ERC-20 ``transfer`` and ERC-721 ``transferFrom`` shapes on ``owner``'s account (which must have the
    module's lane 0 used once): the account gets tokens and an NFT, the recipient a token balance already (so the
    transfer updates nonzero balances), two 2-rule sessions are granted on chain; then the owner's and the session's
    operation of each shape on the same state. Rows are named as in :data:`SHAPES`, after ``prefix``."""
    recipient = fixed_signer("gas/recipient").address
    account = owner.account
    next_id = stack.node.request(
        "eth_call", [{"to": stack.nft, "data": "0x" + keccak(b"nextTokenId()")[:4].hex()}, "latest"]
    )
    token_id = int(next_id, 16)
    # from the stack's deployer: some accounts take no ERC-721 safeMint (no onERC721Received), so the NFT is
    # minted to the deployer and moved with transferFrom
    deployer = stack.accounts[0].address
    transact(stack, token, "mint(address,uint256)", ["address", "uint256"], [account, 100 * ERC20_AMOUNT])
    transact(stack, token, "mint(address,uint256)", ["address", "uint256"], [recipient, ERC20_AMOUNT])
    transact(stack, stack.nft, "safeMint(address)", ["address"], [deployer])
    transact(
        stack,
        stack.nft,
        "transferFrom(address,address,uint256)",
        ["address", "address", "uint256"],
        [deployer, account, token_id],
    )
    erc20_key = SessionKey(fixed_signer(f"gas/{prefix}key-erc20").private_key)
    owner.grant(
        erc20_key, [erc20_transfer_permission(token, recipient)], onchain=True, salt=300, never_expires=True
    )
    erc721_key = SessionKey(fixed_signer(f"gas/{prefix}key-erc721").private_key)
    owner.grant(
        erc721_key,
        [erc721_transfer_permission(stack.nft, account, recipient)],
        onchain=True,
        salt=301,
        never_expires=True,
    )
    transfer = function_call(token, "transfer(address,uint256)", recipient, ERC20_AMOUNT)
    transfer_from = function_call(
        stack.nft, "transferFrom(address,address,uint256)", account, recipient, token_id
    )
    rows: dict[str, Measured] = {}
    for name, call, key in (
        ("erc20_transfer", transfer, erc20_key),
        ("erc721_transfer_from", transfer_from, erc721_key),
    ):
        owner_label, session_label = SHAPES[name]
        rows[prefix + owner_label] = lab.measure(
            prefix + owner_label, lambda call=call: lab.owner_draft(owner, [call])
        )
        rows[prefix + session_label] = lab.measure(
            prefix + session_label, lambda call=call, key=key: lab.session_draft(account, key, [call])
        )
    return rows


def shape_ratios(rows: dict[str, Measured], prefix: str = "") -> dict[str, Any]:
    """Per call shape: both rows' transaction gas and actualGasUsed and the session's ratios over the owner's;
    and the largest transaction-gas ratio over the shapes."""
    out: dict[str, Any] = {}
    for shape, (owner_label, session_label) in SHAPES.items():
        owner_row, session_row = rows.get(prefix + owner_label), rows.get(prefix + session_label)
        if owner_row is None or session_row is None:
            continue
        out[shape] = {
            "owner_tx_gas": owner_row.tx_gas,
            "session_tx_gas": session_row.tx_gas,
            "tx_gas_ratio": ratio(session_row.tx_gas, owner_row.tx_gas),
            "owner_actual_gas_used": owner_row.actual_gas_used,
            "session_actual_gas_used": session_row.actual_gas_used,
            "actual_gas_ratio": ratio(session_row.actual_gas_used, owner_row.actual_gas_used),
            "owner_validation_gas": owner_row.validation_gas,
            "session_validation_gas": session_row.validation_gas,
        }
    ratios = [entry["tx_gas_ratio"] for entry in out.values()]
    return {"per_shape": out, "max_tx_gas_ratio": max(ratios) if ratios else None}


_USER_OPERATION_EVENT = (
    "0x" + keccak(b"UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)").hex()
)


def _session_scaling(stack: Any, net: Network, lab: Lab, recipient: str, mint: Call) -> dict[str, Measured]:
    """A second account: its session's validation with 1, then 10, then 100 sessions granted on it. The measured
    operations are the first on the module's lane 0 of this account (the session's first operation went through
    the SDK's own lane), so their transaction gas includes that lane's first nonce write; validation does not."""
    owner = net.owner(fixed_signer("gas/scaling-owner"))
    stack.fund(owner.account, 100 * ETHER)
    owner.execute(mint).wait()
    lab.deposit(owner.account, 10 * ETHER)
    permission = mint_permission(stack.nft, recipient, HEADLINE_RULES)
    key = SessionKey(fixed_signer("gas/scaling-key").private_key)
    grant = owner.grant(key, [permission], onchain=True, salt=0, never_expires=True)
    net.session(grant, key).send_calls(mint).wait()
    results: dict[str, Measured] = {}
    granted = 1
    for target in SESSION_COUNTS:
        while granted < target:
            batch = []
            for _ in range(min(10, target - granted)):
                other = fixed_signer(f"gas/scaling-other-{granted}")
                batch.append(
                    enable_session_call(
                        stack.module, owner.session_for(other, [permission], salt=granted, never_expires=True)
                    )
                )
                granted += 1
            owner.execute(batch).wait()
        results[f"sessions_{target}"] = lab.measure(
            f"sessions_{target}", lambda: lab.session_draft(owner.account, key, [mint])
        )
    assert grant.session_id
    return results
