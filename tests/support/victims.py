"""Test contracts (contracts/test/) that act on what a session's call carries, deployed on a local stack: a vault
whose fallback pays out on zero-selector calldata, and an ERC-20 paymaster that charges the account in postOp."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eth_abi import encode as abi_encode

from keyscope.devnode import send_transaction
from keyscope.hexutil import keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner

from .accounts import deploy_code

ETHER = 10**18
BUILD = Path(__file__).resolve().parents[2] / ".build" / "__local__.json"


@dataclass(frozen=True)
class Victims:
    """Where the victims are: the vault, the token and the token paymaster (one token unit per wei of gas)."""

    vault: str
    token: str
    token_paymaster: str


def deploy(
    stack: LocalStack, name: str, types: list[str] | None = None, args: list[object] | None = None
) -> str:
    """Deploy the project's compiled contract ``name`` from the stack's deployer."""
    built = json.loads(BUILD.read_text())["contractTypes"][name]
    init = to_bytes(built["deploymentBytecode"]["bytecode"]) + abi_encode(types or [], args or [])
    return deploy_code(stack.node, stack.accounts[0].address, init, name)


def transact(
    stack: LocalStack, to: str, signature: str, types: list[str], args: list[object], value: int = 0
) -> None:
    """A transaction from the stack's deployer."""
    data = keccak(signature.encode())[:4] + abi_encode(types, args)
    send_transaction(stack.node, stack.accounts[0].address, to=to, data=data, value=value, what=signature)


def view(stack: LocalStack, to: str, signature: str, types: list[str], args: list[object]) -> int:
    """A uint256 view's result."""
    data = keccak(signature.encode())[:4] + abi_encode(types, args)
    return int(stack.node.request("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]), 16)


def deploy_victims(stack: LocalStack) -> Victims:
    """The vault, the token, and the token paymaster with a 20-ether deposit and a stake at the EntryPoint
    (bundlers require a stake of a paymaster that returns a context)."""
    vault = deploy(stack, "CalldataVault")
    token = deploy(stack, "TestToken")
    treasury = LocalSigner.generate().address
    paymaster = deploy(
        stack,
        "TokenPaymaster",
        ["address", "address", "uint256", "address"],
        [stack.entry_point, token, ETHER, treasury],
    )
    transact(stack, paymaster, "deposit()", [], [], value=20 * ETHER)
    transact(stack, paymaster, "addStake(uint32)", ["uint32"], [86400], value=ETHER)
    return Victims(vault, token, paymaster)
