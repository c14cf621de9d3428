"""The EntryPoint harness of ``conftest`` (``Harness``, ``SessionHarness``) on a test file's own anvil
(:mod:`support.anvil_chain`): the official EntryPoint v0.7, ape's build of ``KeyscopeAccountFactory`` (staked)
and of ``SessionKeyValidator``, and the in-process bundler, simulating each operation with ``handleOps`` as an
``eth_call`` and sending it alone in a ``handleOps`` transaction of a development account.

``anvil_sessions(chain, project)`` builds the whole set; its pieces serve a file that needs only some:

- :class:`DevelopmentAccount`: a development account paying as ape's test account does (``transfer``);
- :class:`AnvilBundler`: the in-process bundler on the anvil;
- :class:`AnvilClock`: ``blocks.head.timestamp``, ``pending_timestamp`` and ``mine``, as a test asks of ape's chain;
- :class:`BareViews`: a contract's views answered through bare ``eth_call``s decoded with eth_abi;
- :func:`deploy_entry_point`: the EntryPoint v0.7 from its npm package.

The module holds no ETH here: anvil does not make an ``eth_call``'s sender afford its gas, as py-evm does.
"""

from __future__ import annotations

from typing import Any

from ape.contracts import ContractContainer
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from ethpm_types import ContractType
from web3 import Web3

from conftest import Harness, SessionHarness
from keyscope.artifacts import entry_point_artifact
from keyscope.bundler import UserOperationReceipt
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract

__all__ = [
    "AnvilBundler",
    "AnvilClock",
    "BareViews",
    "DevelopmentAccount",
    "anvil_sessions",
    "deploy_entry_point",
]

ETHER = 10**18


class BareViews:
    """A contract whose views named in ``views`` (name: signature, output types) answer through a bare
    ``eth_call``, decoded with eth_abi; everything else is the contract's own. A stateful test's invariant asks
    dozens of views after every step."""

    def __init__(
        self, contract: Any, call: Any, sender: str, views: dict[str, tuple[str, list[str]]]
    ) -> None:
        self._contract, self._call, self._sender, self._views = contract, call, sender, views

    def __getattr__(self, name: str) -> Any:
        if name not in self._views:
            return getattr(self._contract, name)
        signature, outputs = self._views[name]
        inputs = signature[signature.index("(") + 1 : -1]

        def view(*args: Any) -> Any:
            data = keccak(signature.encode())[:4] + abi_encode(
                inputs.split(",") if inputs else [], list(args)
            )
            tx = {"from": self._sender, "to": self._contract.address, "data": "0x" + data.hex(), "gas": 10**7}
            result = self._call(tx)
            answer = abi_decode(
                outputs, bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result)
            )
            return answer[0] if len(answer) == 1 else tuple(answer)

        return view


class DevelopmentAccount:
    """A development account of the file's anvil, paying as ape's test account does: ``transfer`` is a transaction
    that must succeed."""

    def __init__(self, chain: AnvilChain, address: str) -> None:
        self.chain = chain
        self.address = address

    def transfer(self, to: str, value: int, data: bytes = b"") -> None:
        self.chain.send(self.address, to, data, value=value)


class AnvilBundler(InProcessBundler):
    """The in-process bundler on the file's anvil: each operation simulated (``handleOps`` as an ``eth_call``,
    refused with the EntryPoint's FailedOp as the bundler words it), then sent alone in a ``handleOps``
    transaction of ``submitter``; its fee quote and gas estimates ask the anvil too (through web3), so that the
    SDK's ``send_calls`` runs there as on ape's chain."""

    def __init__(self, chain: AnvilChain, entry_point: str, submitter: str) -> None:
        self._anvil = chain
        self.entry_point = entry_point
        self.submitter = DevelopmentAccount(chain, submitter)
        self.beneficiary = submitter
        self._receipts: dict[bytes, UserOperationReceipt] = {}
        self._ops: dict[bytes, UserOperation] = {}
        self._node = Web3(Web3.HTTPProvider(chain.url))

    @property
    def _web3(self) -> Any:
        """web3 on the file's anvil, for what the bundler reads of the chain (code, blocks, gas estimates)."""
        return self._node

    def _call(self, to: str, data: bytes, sender: str | None = None, gas: int = 30_000_000) -> bytes:
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex(), "gas": gas}
        if sender:
            tx["from"] = sender
        return bytes.fromhex(self._anvil.call(tx)[2:])

    def chain_id(self) -> int:
        return self._anvil.chain_id

    def _submit(self, data: bytes) -> tuple[list[dict[str, Any]], bytes, int]:
        receipt = self._anvil.send(self.submitter.address, self.entry_point, data)
        return receipt["logs"], bytes.fromhex(receipt["transactionHash"][2:]), int(receipt["blockNumber"], 16)


class AnvilClock:
    """What a stateful machine asks of ape's chain, on the file's anvil: ``blocks.head.timestamp``, and a block mined
    (``mine``) at the ``pending_timestamp`` set before it."""

    def __init__(self, chain: AnvilChain) -> None:
        self._chain = chain

    @property
    def blocks(self) -> AnvilClock:
        return self

    @property
    def head(self) -> AnvilClock:
        return self

    @property
    def timestamp(self) -> int:
        return int(self._chain.rpc.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def _set_pending_timestamp(self, timestamp: int) -> None:
        self._chain.rpc.request("evm_setNextBlockTimestamp", [hex(timestamp)])

    pending_timestamp = property(fset=_set_pending_timestamp, doc="The timestamp of the next block mined.")

    def mine(self) -> None:
        self._chain.rpc.request("evm_mine")


def deploy_entry_point(chain: AnvilChain, deployer: str) -> AnvilContract:
    """The official EntryPoint v0.7 (from its npm package) deployed on the file's anvil."""
    artifact = entry_point_artifact("0.7")
    contract_type = ContractType.model_validate(
        {
            "contractName": "EntryPoint",
            "abi": artifact["abi"],
            "deploymentBytecode": {"bytecode": artifact["bytecode"]},
            "runtimeBytecode": {"bytecode": artifact["deployedBytecode"]},
        }
    )
    return chain.deploy(ContractContainer(contract_type), sender=deployer)


def anvil_sessions(
    chain: AnvilChain, project: Any, module_views: dict[str, tuple[str, list[str]]] | None = None
) -> SessionHarness:
    """The session harness on ``chain``: the EntryPoint deployed by the first development account, the factory
    (staked 1 ether for a day), the module, and the bundler submitting from the second development account, which
    funds nothing; the first funds accounts (``h.fund``). The module's views named in ``module_views`` answer
    through :class:`BareViews`."""
    deployer, submitter = chain.accounts[0], chain.accounts[1]
    entry_point = deploy_entry_point(chain, deployer)
    factory = chain.deploy(project.KeyscopeAccountFactory, entry_point.address, deployer, sender=deployer)
    factory.addStake.transact(86400, sender=deployer, value=ETHER)
    bundler = AnvilBundler(chain, entry_point.address, submitter)
    harness = Harness(entry_point, factory, bundler, DevelopmentAccount(chain, deployer), chain)
    module: Any = chain.deploy(project.SessionKeyValidator, sender=deployer)
    if module_views:
        module = BareViews(module, chain.call, deployer, module_views)
    return SessionHarness(harness, module)
