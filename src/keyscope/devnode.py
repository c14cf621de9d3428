"""Transactions on a development node over plain JSON-RPC: send from an account the node has unlocked (anvil's
development accounts), deploy one of keyscope's contracts, stake at the EntryPoint and read a deposit.

Nothing here needs ape or web3. Every step is checked: the receipt's status, the address a contract must land
at, and code present there; a failure raises :class:`~keyscope.errors.DeploymentError` saying which.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from .artifacts import contract_artifact
from .errors import DeploymentError
from .hexutil import keccak, to_address, to_bytes
from .rpc import JsonRpcClient
from .selectors import ADD_STAKE, GET_DEPOSIT_INFO

__all__ = [
    "ETHER",
    "DepositInfo",
    "add_stake",
    "create_address",
    "deploy_contract",
    "get_code",
    "get_deposit_info",
    "read_address",
    "send_transaction",
    "wait_for_receipt",
]

ETHER = 10**18


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


def get_code(rpc: JsonRpcClient, address: str) -> bytes:
    """The code at ``address`` (latest block)."""
    return to_bytes(rpc.request("eth_getCode", [to_address(address), "latest"]))


def _call(rpc: JsonRpcClient, to: str, data: bytes) -> bytes:
    return to_bytes(rpc.request("eth_call", [{"to": to_address(to), "data": "0x" + data.hex()}, "latest"]))


def read_address(rpc: JsonRpcClient, contract: str, selector: bytes) -> str:
    """The address a view function without arguments (``selector``) of ``contract`` returns."""
    return to_address(abi_decode(["address"], _call(rpc, contract, selector))[0])


def get_deposit_info(rpc: JsonRpcClient, entry_point: str, account: str) -> DepositInfo:
    """``getDepositInfo(account)`` at the EntryPoint."""
    raw = _call(rpc, entry_point, GET_DEPOSIT_INFO + abi_encode(["address"], [to_address(account)]))
    deposit, staked, stake, delay, withdraw = abi_decode(
        ["uint256", "bool", "uint112", "uint32", "uint48"], raw
    )
    return DepositInfo(deposit, staked, stake, delay, withdraw)


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
            raise DeploymentError(
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

    Raises :class:`~keyscope.errors.DeploymentError` if it reverted; ``what`` names it in that message.
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


def add_stake(
    rpc: JsonRpcClient, sender: str, contract: str, *, stake: int, unstake_delay: int, what: str
) -> None:
    """Have ``contract`` (a factory or a paymaster with ``addStake(uint32)``, owned by ``sender``) stake
    ``stake`` wei at its EntryPoint for ``unstake_delay`` seconds; ``what`` names it in messages."""
    send_transaction(
        rpc,
        sender,
        to=contract,
        data=ADD_STAKE + abi_encode(["uint32"], [unstake_delay]),
        value=stake,
        what=f"{what}.addStake",
    )
