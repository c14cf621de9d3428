"""Deploy the EntryPoint v0.7 and keyscope's contracts on a development node, over plain JSON-RPC.

Transactions are sent with ``eth_sendTransaction`` from the node's unlocked development accounts (anvil
unlocks them), so nothing here needs ape or web3. Every deployment is checked: the receipt's status, the
address the contract must land at, and code present there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from ..artifacts import (
    DETERMINISTIC_DEPLOYER,
    ENTRY_POINT_V07,
    ENTRY_POINT_V07_SALT,
    contract_artifact,
    entry_point_artifact,
)
from ..hexutil import keccak, to_address, to_bytes
from ..rpc import JsonRpcClient
from .errors import DeploymentError, LocalStackError

__all__ = [
    "ETHER",
    "Contracts",
    "DepositInfo",
    "create_address",
    "deploy_contract",
    "deploy_entry_point",
    "deploy_keyscope",
    "entry_point_code_matches",
    "get_deposit_info",
    "send_transaction",
]

ETHER = 10**18

_ADD_STAKE = keccak(b"addStake(uint32)")[:4]
_GET_DEPOSIT_INFO = keccak(b"getDepositInfo(address)")[:4]


@dataclass(frozen=True)
class Contracts:
    """Where the stack's contracts are."""

    entry_point: str
    factory: str
    module: str
    nft: str


@dataclass(frozen=True)
class DepositInfo:
    """``EntryPoint.getDepositInfo(address)``: deposit and stake (wei), unstake delay, withdrawal time."""

    deposit: int
    staked: bool
    stake: int
    unstake_delay_sec: int
    withdraw_time: int


# -- addresses and code -------------------------------------------------------------------------------


def _rlp_int(value: int) -> bytes:
    if value == 0:
        return b"\x80"
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if len(raw) == 1 and raw[0] < 0x80:
        return raw
    return bytes((0x80 + len(raw),)) + raw


def create_address(sender: str, nonce: int) -> str:
    """The address a ``CREATE`` from ``sender`` with ``nonce`` deploys to."""
    payload = b"\x94" + to_bytes(to_address(sender)) + _rlp_int(nonce)
    return to_address(keccak(bytes((0xC0 + len(payload),)) + payload)[12:])


def entry_point_code_matches(code: bytes, entry_point: str = ENTRY_POINT_V07) -> bool:
    """Whether ``code`` is the runtime code of the npm artefact's EntryPoint v0.7 deployed at ``entry_point``.

    The artefact's runtime code has zeros where the EntryPoint keeps its one immutable, the address of the
    ``SenderCreator`` it creates in its constructor (its first ``CREATE``, nonce 1): those words are
    filled in before comparing.
    """
    expected = bytearray(to_bytes(entry_point_artifact()["deployedBytecode"]))
    if len(code) != len(expected):
        return False
    immutable = bytes(12) + to_bytes(create_address(entry_point, 1))
    start = code.find(immutable)
    while start != -1:
        if expected[start : start + 32] == bytes(32):
            expected[start : start + 32] = immutable
        start = code.find(immutable, start + 1)
    return bytes(expected) == code


def get_code(rpc: JsonRpcClient, address: str) -> bytes:
    """The code at ``address`` (latest block)."""
    return to_bytes(rpc.request("eth_getCode", [to_address(address), "latest"]))


# -- transactions -------------------------------------------------------------------------------------


def wait_for_receipt(rpc: JsonRpcClient, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
    """The receipt of ``tx_hash``, polling until it is mined (instantly with automine)."""
    deadline = time.monotonic() + timeout
    while True:
        receipt = rpc.request("eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            result: dict[str, Any] = receipt
            return result
        if time.monotonic() > deadline:
            raise LocalStackError(
                f"transaction {tx_hash} was not mined within {timeout:.0f}s: is the node mining?"
            )
        time.sleep(0.02)


def send_transaction(
    rpc: JsonRpcClient,
    sender: str,
    *,
    to: str | None = None,
    data: bytes = b"",
    value: int = 0,
    what: str = "transaction",
) -> dict[str, Any]:
    """Send a transaction from an unlocked account of the node, wait for it, and return its receipt.

    Raises :class:`DeploymentError` if it reverted; ``what`` names it in that message.
    """
    tx: dict[str, str] = {"from": to_address(sender), "data": "0x" + data.hex(), "value": hex(value)}
    if to is not None:
        tx["to"] = to_address(to)
    tx_hash = rpc.request("eth_sendTransaction", [tx])
    receipt = wait_for_receipt(rpc, tx_hash)
    if int(receipt["status"], 16) != 1:
        raise DeploymentError(
            f"{what} reverted (transaction {tx_hash}, gas used {int(receipt['gasUsed'], 16)})"
        )
    return receipt


# -- deployments --------------------------------------------------------------------------------------


def deploy_entry_point(rpc: JsonRpcClient, sender: str) -> str:
    """Put EntryPoint v0.7 at its canonical address through the deterministic deployer (CREATE2 with the
    official salt), unless it is already there; check its code either way and return the address."""
    code = get_code(rpc, ENTRY_POINT_V07)
    if not code:
        if not get_code(rpc, DETERMINISTIC_DEPLOYER):
            raise DeploymentError(
                f"the deterministic deployer {DETERMINISTIC_DEPLOYER} is not on this chain, so the "
                "EntryPoint cannot land at its canonical address: start anvil without "
                "--disable-default-create2-deployer"
            )
        init_code = to_bytes(entry_point_artifact()["bytecode"])
        send_transaction(
            rpc,
            sender,
            to=DETERMINISTIC_DEPLOYER,
            data=ENTRY_POINT_V07_SALT + init_code,
            what="EntryPoint deployment",
        )
        code = get_code(rpc, ENTRY_POINT_V07)
    if not entry_point_code_matches(code):
        detail = "no code" if not code else f"{len(code)} bytes of other code"
        raise DeploymentError(
            f"the EntryPoint v0.7 did not land at {ENTRY_POINT_V07} ({detail} there): check that "
            "@account-abstraction/contracts is 0.7.0 (npm ci) and that nothing else was deployed there"
        )
    return ENTRY_POINT_V07


def deploy_contract(
    rpc: JsonRpcClient,
    sender: str,
    name: str,
    constructor_types: list[str] | None = None,
    args: list[Any] | None = None,
) -> str:
    """Deploy one of keyscope's contracts (``contract_artifact(name)``) with ``CREATE``; return its
    address after checking that it landed where the sender's nonce says and has code."""
    init_code = to_bytes(contract_artifact(name)["bytecode"])
    if constructor_types:
        init_code += abi_encode(constructor_types, args or [])
    nonce = int(rpc.request("eth_getTransactionCount", [to_address(sender), "pending"]), 16)
    expected = create_address(sender, nonce)
    receipt = send_transaction(rpc, sender, data=init_code, what=f"{name} deployment")
    landed = receipt.get("contractAddress")
    if landed is None or to_address(landed) != expected:
        raise DeploymentError(
            f"{name} landed at {landed}, not at {expected} (sender {sender}, nonce {nonce}): another "
            "transaction from the deployer got in between; deploy from an account nothing else uses"
        )
    if not get_code(rpc, expected):
        raise DeploymentError(
            f"{name} has no code at {expected} after its deployment: its constructor returned nothing"
        )
    return expected


def get_deposit_info(rpc: JsonRpcClient, entry_point: str, account: str) -> DepositInfo:
    """``getDepositInfo(account)`` at the EntryPoint."""
    data = _GET_DEPOSIT_INFO + abi_encode(["address"], [to_address(account)])
    raw = rpc.request("eth_call", [{"to": to_address(entry_point), "data": "0x" + data.hex()}, "latest"])
    deposit, staked, stake, delay, withdraw = abi_decode(
        ["uint256", "bool", "uint112", "uint32", "uint48"], to_bytes(raw)
    )
    return DepositInfo(deposit, staked, stake, delay, withdraw)


def deploy_keyscope(
    rpc: JsonRpcClient, deployer: str, *, stake: int = ETHER, unstake_delay: int = 86_400
) -> Contracts:
    """Deploy the EntryPoint v0.7, a ``KeyscopeAccountFactory`` (admin ``deployer``) staked with ``stake``
    wei, the ``SessionKeyValidator`` and the ``DemoNFT``, all from ``deployer``."""
    entry_point = deploy_entry_point(rpc, deployer)
    factory = deploy_contract(
        rpc, deployer, "KeyscopeAccountFactory", ["address", "address"], [entry_point, deployer]
    )
    send_transaction(
        rpc,
        deployer,
        to=factory,
        data=_ADD_STAKE + abi_encode(["uint32"], [unstake_delay]),
        value=stake,
        what="KeyscopeAccountFactory.addStake",
    )
    info = get_deposit_info(rpc, entry_point, factory)
    if not info.staked or info.stake < stake:
        raise DeploymentError(
            f"the factory {factory} is not staked after addStake: the EntryPoint reports {info}"
        )
    module = deploy_contract(rpc, deployer, "SessionKeyValidator")
    nft = deploy_contract(rpc, deployer, "DemoNFT")
    return Contracts(entry_point=entry_point, factory=factory, module=module, nft=nft)
