"""The gas snapshot: every gas row of the benchmark's operations, recomputed on ape's in-process chain (py-evm)
and compared with the committed ``benchmarks/gas_snapshot.json`` by ``tests/test_gas_snapshot.py``.

Gas is deterministic when everything that reaches the EVM is: the contracts are deployed by a key derived from a
label at its first nonces (so their addresses are the same in every run, whatever other tests did on the chain
before), the accounts, owners and session keys are fixed keys, the gas limits of every operation are fixed, and
every measured operation runs alone in a ``handleOps`` transaction from the same state (the chain is restored
after each). The figures per row:

* ``tx_gas``: the ``handleOps`` transaction's gasUsed (what the bundler pays);
* ``actual_gas_used``: the ``UserOperationEvent``'s actualGasUsed (what the account is charged: with the fixed
  preVerificationGas and the EntryPoint's 10 % charge on unused call gas, so that a change of execution gas moves
  it too);
* ``handle_ops_bytes``: the ``handleOps`` calldata length.

The rows are the benchmark's shapes (``benchmarks/gas.py``: a ``safeMint`` by the owner and by sessions with 0 to
8 rules, rules on a 256-bit word, batches, the off-chain grant's first use, granting, revoking, a lane's first use)
and the three call shapes each compared with 2 rules on the same account state: an NFT mint, an ERC-20
``transfer`` and an ERC-721 ``transferFrom`` of a token the account owns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account

from keyscope.accounts import KeyscopeAccountKind, create_account_data
from keyscope.artifacts import entry_point_artifact
from keyscope.calls import function_call
from keyscope.entrypoint import decode_user_operation_events, encode_deposit_to, encode_handle_ops
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.session import SESSION_ABI_TYPE, Permission, Session, encode_enable_signature
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation

from .gas_shapes import (
    ERC20_AMOUNT,
    erc20_transfer_permission,
    erc721_transfer_permission,
    fixed_signer,
    mint_permission,
    word_permission,
)

__all__ = ["SHAPES", "SNAPSHOT", "compare", "compute", "load", "save"]

SNAPSHOT = Path(__file__).resolve().parents[2] / "benchmarks" / "gas_snapshot.json"
UPDATE_COMMAND = "make gas-snapshot"
RULE_COUNTS = (0, 1, 2, 4, 8)
BATCH_SIZES = (1, 5, 10)
ETHER = 10**18
KIND = KeyscopeAccountKind()
SHAPES = {
    "nft_mint": ("owner", "session_2_rules"),
    "erc20_transfer": ("owner_erc20_transfer", "session_erc20_transfer_2_rules"),
    "erc721_transfer_from": ("owner_erc721_transfer_from", "session_erc721_transfer_from_2_rules"),
}
"""The call shapes compared owner against session (2 rules), on the same account state: (owner row, session
row)."""
_ENABLE_SESSION = keccak(f"enableSession({SESSION_ABI_TYPE})".encode())[:4]
_REVOKE_SESSION = keccak(b"revokeSession(bytes32)")[:4]


@dataclass(frozen=True)
class Row:
    tx_gas: int
    actual_gas_used: int
    handle_ops_bytes: int

    def as_dict(self) -> dict[str, int]:
        return {
            "tx_gas": self.tx_gas,
            "actual_gas_used": self.actual_gas_used,
            "handle_ops_bytes": self.handle_ops_bytes,
        }


class Chain:
    """Raw transactions from fixed keys on ape's chain, and its snapshots."""

    def __init__(self, ape_chain: Any, funder: Any) -> None:
        self.ape_chain = ape_chain
        self.w3 = ape_chain.provider.web3
        self.chain_id = int(self.w3.eth.chain_id)
        self.funder = funder

    def fund(self, address: str, wei: int) -> None:
        self.funder.transfer(address, wei)

    def transact(self, key: LocalSigner, to: str | None, data: bytes, value: int = 0) -> dict[str, Any]:
        """Send ``data`` to ``to`` (None: a deployment) from ``key``; the receipt, which must show success."""
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas") or 0)
        tx: dict[str, Any] = {
            "data": "0x" + data.hex(),
            "value": value,
            "gas": 15_000_000,
            "nonce": self.w3.eth.get_transaction_count(key.address),
            "chainId": self.chain_id,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        if to is not None:
            tx["to"] = to
        signed = Account.sign_transaction(tx, key.private_key)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = dict(self.w3.eth.wait_for_transaction_receipt(tx_hash))
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction to {to} from {key.address} failed")
        return receipt

    def deploy(self, key: LocalSigner, bytecode: bytes, args: bytes = b"") -> str:
        return to_address(self.transact(key, None, bytecode + args)["contractAddress"])

    def snapshot(self) -> Any:
        return self.ape_chain.snapshot()

    def restore(self, snapshot: Any) -> None:
        self.ape_chain.restore(snapshot)


class Lab:
    """The contracts, the account and its sessions, and one measured operation at a time."""

    def __init__(self, chain: Chain, project: Any) -> None:
        self.chain = chain
        self.deployer = fixed_signer("gas-snapshot/deployer")
        self.submitter = fixed_signer("gas-snapshot/submitter")
        for key in (self.deployer, self.submitter):
            chain.fund(key.address, 1000 * ETHER)
        artifact = entry_point_artifact()
        self.entry_point = chain.deploy(self.deployer, bytes.fromhex(artifact["bytecode"].removeprefix("0x")))

        def code(name: str) -> bytes:
            return bytes.fromhex(str(getattr(project, name).contract_type.deployment_bytecode.bytecode)[2:])

        self.module = chain.deploy(self.deployer, code("SessionKeyValidator"))
        self.factory = chain.deploy(
            self.deployer,
            code("KeyscopeAccountFactory"),
            abi_encode(["address", "address"], [self.entry_point, self.deployer.address]),
        )
        self.nft = chain.deploy(self.deployer, code("DemoNFT"))
        self.token = chain.deploy(self.deployer, code("TestToken"))

    # -- operations ----------------------------------------------------------------------------------

    def nonce(self, sender: str, key: int) -> int:
        data = keccak(b"getNonce(address,uint192)")[:4] + abi_encode(["address", "uint192"], [sender, key])
        return int.from_bytes(bytes(self.chain.w3.eth.call({"to": self.entry_point, "data": data})), "big")

    def op(
        self,
        sender: str,
        calls: Sequence[Call],
        *,
        key: int,
        batch: bool | None = None,
        call_gas: int | None = None,
        **extra: Any,
    ) -> UserOperation:
        """An unsigned operation with fixed gas limits (call gas, unless given: 150,000 plus 40,000 a call)."""
        return UserOperation(
            sender=sender,
            nonce=self.nonce(sender, key),
            call_data=encode_execute(list(calls), batch=batch),
            call_gas_limit=150_000 + 40_000 * len(calls) if call_gas is None else call_gas,
            verification_gas_limit=1_000_000,
            pre_verification_gas=60_000,
            max_fee_per_gas=2 * 10**9,
            max_priority_fee_per_gas=10**9,
            **extra,
        )

    def signed(
        self, op: UserOperation, key: LocalSigner, wrap: Callable[[bytes], bytes] = bytes
    ) -> UserOperation:
        return op.replace(signature=wrap(key.sign_hash(op.hash(self.entry_point, self.chain.chain_id))))

    def send(self, op: UserOperation) -> Row:
        """``handleOps([op])`` from the submitter (the beneficiary); the operation must succeed."""
        data = encode_handle_ops([op.pack()], self.submitter.address)
        receipt = self.chain.transact(self.submitter, self.entry_point, data)
        events = list(
            decode_user_operation_events([dict(log) for log in receipt["logs"]], self.entry_point).values()
        )
        if len(events) != 1 or not events[0]["success"]:
            raise RuntimeError(f"the operation of {op.sender} did not execute: {events}")
        return Row(int(receipt["gasUsed"]), int(events[0]["actualGasUsed"]), len(data))

    def measure(self, make: Callable[[], UserOperation]) -> Row:
        """The operation ``make`` builds, run from the current state, which is restored afterwards."""
        snapshot = self.chain.snapshot()
        try:
            return self.send(make())
        finally:
            self.chain.restore(snapshot)

    def owner_op(self, account: str, owner: LocalSigner, calls: Sequence[Call], **kw: Any) -> UserOperation:
        return self.signed(self.op(account, calls, key=KIND.nonce_key(None), **kw), owner)

    def session_op(
        self, account: str, key: LocalSigner, calls: Sequence[Call], *, lane: int = 0, **kw: Any
    ) -> UserOperation:
        return self.signed(self.op(account, calls, key=KIND.nonce_key(self.module, lane), **kw), key)

    def grant(
        self, account: str, owner: LocalSigner, key: LocalSigner, permission: Permission, salt: int
    ) -> Session:
        session = Session(session_key=key.address, permissions=(permission,), salt=salt)
        self.send(self.owner_op(account, owner, [enable_call(self.module, session)], call_gas=2_000_000))
        return session


def enable_call(module: str, session: Session) -> Call:
    return Call(module, 0, _ENABLE_SESSION + abi_encode([SESSION_ABI_TYPE], [session.as_abi()]))


def compute(ape_chain: Any, project: Any, funder: Any) -> dict[str, dict[str, int]]:
    """Every row, measured on ``ape_chain`` (state is left as found: everything runs inside a snapshot)."""
    chain = Chain(ape_chain, funder)
    outer = chain.snapshot()
    try:
        return _rows(Lab(chain, project))
    finally:
        chain.restore(outer)


def _rows(lab: Lab) -> dict[str, dict[str, int]]:
    recipient = fixed_signer("gas/recipient").address
    owner = fixed_signer("gas-snapshot/owner")
    mint = function_call(lab.nft, "safeMint(address)", recipient)

    # the account: created by its first owner operation (a mint), the module installed at creation; a deposit
    account = to_address(
        bytes(
            lab.chain.w3.eth.call(
                {
                    "to": lab.factory,
                    "data": create_account_data(owner.address, [(1, lab.module, b"")], 0, view=True),
                }
            )
        )[12:32]
    )
    lab.chain.fund(account, 10 * ETHER)
    lab.send(
        lab.owner_op(
            account,
            owner,
            [mint],
            factory=lab.factory,
            factory_data=create_account_data(owner.address, [(1, lab.module, b"")], 0),
        )
    )
    lab.chain.transact(lab.submitter, lab.entry_point, encode_deposit_to(account), value=10 * ETHER)

    # sessions granted on chain; the module's lane 0 used once
    keys = {rules: fixed_signer(f"gas-snapshot/key-{rules}") for rules in RULE_COUNTS}
    sessions = {
        rules: lab.grant(account, owner, keys[rules], mint_permission(lab.nft, recipient, rules), salt=rules)
        for rules in RULE_COUNTS
    }
    lab.send(lab.session_op(account, keys[2], [mint]))
    word_key = fixed_signer("gas-snapshot/key-word-rules")
    lab.grant(account, owner, word_key, word_permission(lab.nft, recipient), salt=200)

    # the ERC-20 and ERC-721 shapes: the account holds tokens and an NFT, the recipient holds some already
    token_id = int.from_bytes(
        bytes(lab.chain.w3.eth.call({"to": lab.nft, "data": keccak(b"nextTokenId()")[:4]})), "big"
    )
    lab.send(
        lab.owner_op(
            account,
            owner,
            [
                function_call(lab.token, "mint(address,uint256)", account, 100 * ERC20_AMOUNT),
                function_call(lab.token, "mint(address,uint256)", recipient, ERC20_AMOUNT),
                function_call(lab.nft, "safeMint(address)", account),
            ],
        )
    )
    erc20_key = fixed_signer("gas-snapshot/key-erc20")
    lab.grant(account, owner, erc20_key, erc20_transfer_permission(lab.token, recipient), salt=300)
    erc721_key = fixed_signer("gas-snapshot/key-erc721")
    lab.grant(account, owner, erc721_key, erc721_transfer_permission(lab.nft, account, recipient), salt=301)
    transfer = function_call(lab.token, "transfer(address,uint256)", recipient, ERC20_AMOUNT)
    transfer_from = function_call(
        lab.nft, "transferFrom(address,address,uint256)", account, recipient, token_id
    )

    rows: dict[str, Row] = {}
    rows["owner"] = lab.measure(lambda: lab.owner_op(account, owner, [mint]))
    for rules in RULE_COUNTS:
        rows[f"session_{rules}_rules"] = lab.measure(partial(lab.session_op, account, keys[rules], [mint]))
    mint_two = function_call(lab.nft, "mintBatch(address,uint256)", recipient, 2)
    rows["owner_mint_batch"] = lab.measure(lambda: lab.owner_op(account, owner, [mint_two]))
    rows["session_2_word_rules"] = lab.measure(lambda: lab.session_op(account, word_key, [mint_two]))
    for size in BATCH_SIZES:
        rows[f"owner_batch_{size}"] = lab.measure(
            partial(lab.owner_op, account, owner, [mint] * size, batch=True)
        )
        rows[f"session_batch_{size}"] = lab.measure(
            partial(lab.session_op, account, keys[2], [mint] * size, batch=True)
        )
    rows["owner_erc20_transfer"] = lab.measure(lambda: lab.owner_op(account, owner, [transfer]))
    rows["session_erc20_transfer_2_rules"] = lab.measure(
        lambda: lab.session_op(account, erc20_key, [transfer])
    )
    rows["owner_erc721_transfer_from"] = lab.measure(lambda: lab.owner_op(account, owner, [transfer_from]))
    rows["session_erc721_transfer_from_2_rules"] = lab.measure(
        lambda: lab.session_op(account, erc721_key, [transfer_from])
    )

    # first use of an off-chain grant (ENABLE), an on-chain grant and its first use, revoking, a new lane
    headline = mint_permission(lab.nft, recipient, 2)
    enable_key = fixed_signer("gas-snapshot/key-enable")
    offchain = Session(session_key=enable_key.address, permissions=(headline,), salt=100)
    epoch = int.from_bytes(
        bytes(
            lab.chain.w3.eth.call(
                {
                    "to": lab.module,
                    "data": keccak(b"epochOf(address)")[:4] + bytes(12) + bytes.fromhex(account[2:]),
                }
            )
        ),
        "big",
    )
    owner_signature = owner.sign_hash(offchain.enable_digest(account, epoch, lab.chain.chain_id, lab.module))
    rows["session_enable_offchain"] = lab.measure(
        lambda: lab.signed(
            lab.op(account, [mint], key=KIND.nonce_key(lab.module, 0)),
            enable_key,
            lambda signature: encode_enable_signature(offchain, owner_signature, signature),
        )
    )
    onchain_key = fixed_signer("gas-snapshot/key-onchain")
    onchain = Session(session_key=onchain_key.address, permissions=(headline,), salt=101)
    rows["owner_enable_session"] = lab.measure(
        lambda: lab.owner_op(account, owner, [enable_call(lab.module, onchain)], call_gas=250_000)
    )
    # two permissions on one target (safeMint, mintBatch): the account is asked about its modules once
    one_target = Session(
        session_key=fixed_signer("gas-snapshot/key-one-target").address,
        permissions=(headline, word_permission(lab.nft, recipient)),
        salt=102,
    )
    rows["owner_enable_session_one_target_twice"] = lab.measure(
        lambda: lab.owner_op(account, owner, [enable_call(lab.module, one_target)], call_gas=400_000)
    )
    outer = lab.chain.snapshot()
    try:
        lab.send(lab.owner_op(account, owner, [enable_call(lab.module, onchain)], call_gas=2_000_000))
        rows["session_after_onchain_grant"] = lab.measure(
            lambda: lab.session_op(account, onchain_key, [mint])
        )
    finally:
        lab.chain.restore(outer)
    revoke = Call(lab.module, 0, _REVOKE_SESSION + sessions[2].session_id(account, epoch))
    rows["owner_revoke_session"] = lab.measure(lambda: lab.owner_op(account, owner, [revoke]))
    rows["session_new_lane"] = lab.measure(lambda: lab.session_op(account, keys[2], [mint], lane=1))
    return {label: row.as_dict() for label, row in rows.items()}


def ratios(rows: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Per call shape: session over owner, in transaction gas and in actualGasUsed."""
    out: dict[str, dict[str, float]] = {}
    for shape, (owner, session) in SHAPES.items():
        out[shape] = {
            "tx_gas_ratio": round(rows[session]["tx_gas"] / rows[owner]["tx_gas"], 4),
            "actual_gas_ratio": round(rows[session]["actual_gas_used"] / rows[owner]["actual_gas_used"], 4),
        }
    return out


def load(path: Path = SNAPSHOT) -> dict[str, dict[str, int]]:
    """The committed rows (empty when there is no snapshot yet)."""
    if not path.is_file():
        return {}
    rows: dict[str, dict[str, int]] = json.loads(path.read_text())["rows"]
    return rows


def save(rows: dict[str, dict[str, int]], path: Path = SNAPSHOT) -> None:
    document = {
        "about": (
            "Gas of keyscope's operations on ape's in-process chain (py-evm), recomputed by "
            f"tests/test_gas_snapshot.py; after a deliberate change, run `{UPDATE_COMMAND}` and commit this file "
            "with it. Method: tests/support/gas_snapshot.py."
        ),
        "shapes": ratios(rows),
        "rows": rows,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def compare(committed: dict[str, dict[str, int]], measured: dict[str, dict[str, int]]) -> list[str]:
    """One line per difference (a changed figure, a row missing on either side); empty when they agree."""
    lines = []
    for label in sorted(set(committed) | set(measured), key=lambda name: (name not in measured, name)):
        if label not in committed:
            lines.append(f"{label}: new row {measured[label]}, not in the snapshot")
            continue
        if label not in measured:
            lines.append(f"{label}: in the snapshot, no longer measured")
            continue
        for figure, was in committed[label].items():
            now = measured[label].get(figure)
            if now != was:
                change = f"{now - was:+,}" if isinstance(now, int) else "missing"
                lines.append(
                    f"{label}.{figure}: {was:,} -> {now if now is None else format(now, ',')} ({change})"
                )
    return lines
