"""Deploy the EntryPoint v0.7 and keyscope's contracts on a development node, over plain JSON-RPC.

Transactions are sent with ``eth_sendTransaction`` from the node's unlocked development accounts (anvil
unlocks them) through :mod:`keyscope.devnode`, so nothing here needs ape or web3. Every deployment is checked:
the receipt's status, the address the contract must land at, and code present there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..artifacts import DETERMINISTIC_DEPLOYER, ENTRY_POINT_V07, ENTRY_POINT_V07_SALT, entry_point_artifact
from ..devnode import (
    ETHER,
    add_stake,
    create_address,
    deploy_contract,
    get_code,
    get_deposit_info,
    send_transaction,
)
from ..errors import DeploymentError
from ..hexutil import to_bytes
from ..rpc import JsonRpcClient

__all__ = ["Contracts", "deploy_entry_point", "deploy_keyscope", "entry_point_code_matches"]


@dataclass(frozen=True)
class Contracts:
    """Where the stack's contracts are."""

    entry_point: str
    factory: str
    module: str
    nft: str


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


def deploy_keyscope(
    rpc: JsonRpcClient, deployer: str, *, stake: int = ETHER, unstake_delay: int = 86_400
) -> Contracts:
    """Deploy the EntryPoint v0.7, a ``KeyscopeAccountFactory`` (admin ``deployer``) staked with ``stake``
    wei, the ``SessionKeyValidator`` and the ``DemoNFT``, all from ``deployer``."""
    entry_point = deploy_entry_point(rpc, deployer)
    factory = deploy_contract(
        rpc, deployer, "KeyscopeAccountFactory", ["address", "address"], [entry_point, deployer]
    )
    add_stake(rpc, deployer, factory, stake=stake, unstake_delay=unstake_delay, what="KeyscopeAccountFactory")
    info = get_deposit_info(rpc, entry_point, factory)
    if not info.staked or info.stake < stake:
        raise DeploymentError(
            f"the factory {factory} is not staked after addStake: the EntryPoint reports {info}"
        )
    module = deploy_contract(rpc, deployer, "SessionKeyValidator")
    nft = deploy_contract(rpc, deployer, "DemoNFT")
    return Contracts(entry_point=entry_point, factory=factory, module=module, nft=nft)
