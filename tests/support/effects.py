"""Setting accounts up on an anvil for the by-effect fuzzing (``tests/test_fuzz_*_by_effect.py``): the vendors'
account contracts deployed on a node that mines only when asked, accounts created by their factories, a Safe created
by its owner's first operation through the Safe7579 launchpad, and a validator installed by the account's own call,
as its owner's operation would make it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode

from keyscope.accounts import AccountKind
from keyscope.artifacts import ENTRY_POINT_V07 as ENTRY_POINT
from keyscope.chain import RpcChain
from keyscope.entrypoint import encode_handle_ops
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain

ETHER = 10**18
BALANCE_OF = keccak(b"balanceOf(address)")[:4]
WITHDRAW_TO = keccak(b"withdrawTo(address,uint256)")[:4]


class MiningNode:
    """The anvil's JSON-RPC for the account deployments of ``support.accounts`` (which wait for receipts): each
    transaction is mined as it is sent, since the file's anvil does not mine by itself."""

    def __init__(self, chain: AnvilChain) -> None:
        self._chain = chain

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        answer = self._chain.rpc.request(method, params or [])
        if method == "eth_sendTransaction":
            self._chain.rpc.request("evm_mine")
        return answer


@dataclass(frozen=True)
class Deployer:
    address: str


@dataclass(frozen=True)
class Stack:
    """What :func:`support.accounts.deploy_accounts` asks of a local stack: its node, deployer and EntryPoint."""

    node: MiningNode
    deployer: Deployer
    entry_point: str


def create(anvil: AnvilChain, factory: str, factory_data: bytes, address: str) -> str:
    """The account created by its factory, called from the deployer (the owner signs nothing here)."""
    anvil.send(anvil.accounts[0], factory, factory_data)
    assert len(anvil.rpc.request("eth_getCode", [address, "latest"])) > 2, address
    return address


def install_by_own_call(
    anvil: AnvilChain, kind: AccountKind, account: str, module: str, install: bytes
) -> None:
    """The module installed with ``install`` by the account's own call, as its owner's operation would make it."""
    anvil.send(anvil.accounts[0], account, b"", value=ETHER)
    anvil.rpc.request("anvil_impersonateAccount", [account])
    anvil.send(account, account, kind.install_validator_call(account, module, install).data)
    anvil.rpc.request("anvil_stopImpersonatingAccount", [account])


def create_safe(anvil: AnvilChain, kind: AccountKind, owner: LocalSigner) -> str:
    """A Safe with the Safe7579 adapter and the owner's validator, created as its launchpad asks: by the owner's
    first operation (its ``initCode`` the proxy factory's call, its ``callData`` the launchpad's ``setupSafe`` with a
    call to the owner)."""
    deployment = kind.deployment(RpcChain(anvil.url), owner.address, [])
    assert deployment is not None
    anvil.send(anvil.accounts[0], deployment.address, b"", value=ETHER)  # the creating operation's prefund
    op = UserOperation(
        sender=deployment.address,
        nonce=kind.nonce_key(None) << 64,
        factory=deployment.factory,
        factory_data=deployment.factory_data,
        call_data=kind.creation_call_data(deployment, encode_execute(Call(owner.address, 0, b""))),
        call_gas_limit=1_000_000,
        verification_gas_limit=3_000_000,
        pre_verification_gas=100_000,
        max_fee_per_gas=2 * 10**9,
        max_priority_fee_per_gas=10**9,
    ).pack()
    digest = user_op_hash_v07(op, ENTRY_POINT, int(anvil.chain_id))
    op = op.model_copy(update={"signature": kind.owner_user_op_signature(owner.sign_hash(digest))})
    anvil.send(anvil.accounts[0], ENTRY_POINT, encode_handle_ops([op], anvil.accounts[0]))
    assert len(anvil.rpc.request("eth_getCode", [deployment.address, "latest"])) > 2, deployment
    # what the creation's prefund left at the EntryPoint, withdrawn: the seeds pay their own prefunds, so the
    # oracle learns that call of the validation phase as it does on the other accounts
    deposit = int(
        anvil.call(
            {
                "to": ENTRY_POINT,
                "data": "0x" + (BALANCE_OF + abi_encode(["address"], [deployment.address])).hex(),
            }
        ),
        16,
    )
    anvil.rpc.request("anvil_impersonateAccount", [deployment.address])
    anvil.send(
        deployment.address,
        ENTRY_POINT,
        WITHDRAW_TO + abi_encode(["address", "uint256"], [deployment.address, deposit]),
    )
    anvil.rpc.request("anvil_stopImpersonatingAccount", [deployment.address])
    return deployment.address
