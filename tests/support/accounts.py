"""Third-party ERC-7579 accounts on a local node: Kernel v3.1, Nexus 1.0, Safe7579 and the ERC-7579 reference
account (MSA), next to keyscope's own.

``deploy_accounts(stack)`` deploys, from the deployer of a running :class:`~keyscope.local.LocalStack`, each
account's implementation and factory (creation bytecode fetched at set-up from ``@rhinestone/modulekit``, see
``tools/fetch_account_bytecode.py``; the reference account's factory is ``contracts/test/ReferenceAccountFactory``
around the released proxy) and ``OwnerECDSAValidator``, the owner validator of those accounts in these tests. :meth:`AccountContracts.kind` then gives an adapter able to create such accounts, and
:func:`measure_gas` the session-versus-owner gas figures for one kind.

Kernel's implementation (28,581 bytes of runtime code) is over EIP-170: the stack must be started with
``disable_code_size_limit=True``. No registry is deployed: the accounts get the zero address where they take one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi import encode as abi_encode

from keyscope.accounts import (
    AccountKind,
    KernelAccountKind,
    KeyscopeAccountKind,
    MSAAccountKind,
    NexusAccountKind,
    Safe7579AccountKind,
)
from keyscope.calls import function_call
from keyscope.errors import ConfigurationError
from keyscope.hexutil import to_address, to_bytes
from keyscope.keys import SessionKey
from keyscope.policy import Policy, arg
from keyscope.signing import LocalSigner

if TYPE_CHECKING:
    from keyscope.local import LocalStack
    from keyscope.network import Network
    from keyscope.rpc import JsonRpcClient

__all__ = [
    "ACCOUNT_KINDS",
    "AccountContracts",
    "GasFigures",
    "account_bytecode",
    "build_bytecode",
    "deploy_accounts",
    "deploy_code",
    "measure_gas",
    "network_for",
    "owner_validator_bytecode",
]

MODULEKIT = "modulekit-0.5.9.json"
ACCOUNT_KINDS = ("keyscope", "kernel", "nexus", "safe7579", "msa")
"""The account kinds the SDK supports, by adapter name."""

_ZERO = "0x" + "00" * 20


def _project_file(relative: str, env: str) -> Path:
    """``relative`` under the first of ``$env``, the working directory and its parents, and the source checkout
    this package lives in, that has it."""
    roots: list[Path] = []
    if value := os.environ.get(env):
        roots.append(Path(value))
    cwd = Path.cwd()
    roots.extend((cwd, *cwd.parents))
    roots.extend(Path(__file__).resolve().parents)
    for root in roots:
        if (root / relative).is_file():
            return root / relative
    raise ConfigurationError(
        f"{relative} not found (looked in ${env}, the working directory and its parents, and the source "
        "checkout): run `make setup` in keyscope's source checkout"
    )


@cache
def account_bytecode() -> dict[str, str]:
    """The creation bytecode of the third-party accounts, by modulekit's constant name (``KERNEL_BYTECODE``...),
    from ``.cache/accounts`` (``$KEYSCOPE_PROJECT`` or the source checkout)."""
    path = _project_file(f".cache/accounts/{MODULEKIT}", "KEYSCOPE_PROJECT")
    bytecode: dict[str, str] = json.loads(path.read_text())["bytecode"]
    return bytecode


@cache
def build_bytecode(name: str) -> bytes:
    """Creation bytecode of the contract ``name`` (e.g. one of ``contracts/test/``), from the project's build."""
    path = _project_file(".build/__local__.json", "KEYSCOPE_PROJECT")
    types = json.loads(path.read_text())["contractTypes"]
    if name not in types:
        raise ConfigurationError(f"{path} has no {name}: run `make setup` to compile it")
    return to_bytes(types[name]["deploymentBytecode"]["bytecode"])


def owner_validator_bytecode() -> bytes:
    """Creation bytecode of ``contracts/test/OwnerECDSAValidator.sol``, from the project's build."""
    return build_bytecode("OwnerECDSAValidator")


def deploy_code(rpc: JsonRpcClient, sender: str, init_code: bytes, what: str) -> str:
    """Deploy ``init_code`` with ``CREATE`` from the unlocked ``sender``; return the address, checked for code."""
    from keyscope.devnode import get_code, send_transaction
    from keyscope.errors import DeploymentError

    receipt = send_transaction(rpc, sender, data=init_code, what=f"{what} deployment")
    address = receipt.get("contractAddress")
    if address is None or not get_code(rpc, address):
        raise DeploymentError(f"{what} left no code (transaction {receipt.get('transactionHash')})")
    return to_address(address)


@dataclass(frozen=True)
class AccountContracts:
    """Where the third-party accounts' contracts are on the local chain."""

    owner_validator: str
    kernel_implementation: str
    kernel_factory: str
    nexus_implementation: str
    nexus_factory: str
    nexus_bootstrap: str
    safe7579: str
    safe7579_launchpad: str
    safe_singleton: str
    safe_proxy_factory: str
    reference_account: str
    """The ERC-7579 reference account's implementation (``accountId()`` ``uMSA.advanced/withHook.v0.1``)."""
    reference_bootstrap: str
    reference_factory: str

    def kind(self, name: str, network: Network | None = None) -> AccountKind:
        """An adapter of kind ``name`` (one of :data:`ACCOUNT_KINDS`) that can create accounts here; Nexus
        and Safe7579 adapters get ``network``'s chain to uninstall validators."""
        chain = network.chain if network is not None else None
        if name == "keyscope":
            return KeyscopeAccountKind()
        if name == "kernel":
            return KernelAccountKind(owner_validator=self.owner_validator, factory=self.kernel_factory)
        if name == "nexus":
            return NexusAccountKind(
                owner_validator=self.owner_validator,
                factory=self.nexus_factory,
                bootstrap=self.nexus_bootstrap,
                chain=chain,
            )
        if name == "safe7579":
            return Safe7579AccountKind(
                owner_validator=self.owner_validator,
                safe7579=self.safe7579,
                launchpad=self.safe7579_launchpad,
                singleton=self.safe_singleton,
                proxy_factory=self.safe_proxy_factory,
                chain=chain,
            )
        if name == "msa":
            return MSAAccountKind(
                owner_validator=self.owner_validator,
                factory=self.reference_factory,
                bootstrap=self.reference_bootstrap,
                chain=chain,
            )
        raise ConfigurationError(f"unknown account kind {name!r}: use one of {', '.join(ACCOUNT_KINDS)}")


def deploy_accounts(stack: LocalStack) -> AccountContracts:
    """Deploy the owner validator and the implementations and factories of Kernel, Nexus, Safe7579 and the
    ERC-7579 reference account on the stack's node, from its deployer."""
    rpc, sender, entry_point = stack.node, stack.deployer.address, stack.entry_point
    code = {name: to_bytes(value) for name, value in account_bytecode().items()}

    def deploy(name: str, types: Iterable[str] = (), args: Iterable[Any] = ()) -> str:
        return deploy_code(rpc, sender, code[name] + abi_encode(list(types), list(args)), name)

    try:
        kernel = deploy("KERNEL_BYTECODE", ["address"], [entry_point])
    except Exception as error:
        raise ConfigurationError(
            f"Kernel's implementation could not be deployed ({error}): its runtime code is over EIP-170's 24,576 "
            "bytes, so start the stack with LocalStack(disable_code_size_limit=True)"
        ) from error
    nexus = deploy("NEXUS_BYTECODE", ["address"], [entry_point])
    reference = deploy("ERC7579_BYTECODE")
    reference_factory = deploy_code(
        rpc,
        sender,
        build_bytecode("ReferenceAccountFactory")
        + abi_encode(["address", "bytes"], [reference, code["MSAPROXY_BYTECODE"]]),
        "ReferenceAccountFactory",
    )
    return AccountContracts(
        owner_validator=deploy_code(rpc, sender, owner_validator_bytecode(), "OwnerECDSAValidator"),
        kernel_implementation=kernel,
        kernel_factory=deploy("KERNEL_FACTORY_BYTECODE", ["address"], [kernel]),
        nexus_implementation=nexus,
        nexus_factory=deploy("NEXUS_ACCOUNT_FACTORY_BYTECODE", ["address", "address"], [nexus, sender]),
        nexus_bootstrap=deploy("NEXUS_BOOTSTRAP_BYTECODE"),
        safe7579=deploy("SAFE7579_BYTECODE"),
        safe7579_launchpad=deploy(
            "SAFE7579_LAUNCHPAD_BYTECODE", ["address", "address"], [entry_point, _ZERO]
        ),
        safe_singleton=deploy("SAFE_SINGLETON_BYTECODE"),
        safe_proxy_factory=deploy("SAFE_PROXY_FACTORY_BYTECODE"),
        reference_account=reference,
        reference_bootstrap=deploy("ERC7579_BOOTSTRAP_BYTECODE"),
        reference_factory=reference_factory,
    )


def network_for(stack: LocalStack, kind: AccountKind) -> Network:
    """A :class:`~keyscope.network.Network` on the stack (its node, bundler, module and keyscope factory) for
    accounts of ``kind``."""
    from keyscope.network import connect

    return connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory, kind=kind)


@dataclass(frozen=True)
class GasFigures:
    """Gas of one ``DemoNFT.safeMint(recipient)`` operation from one account, as the EntryPoint charged it
    (``actualGasUsed``, the account's bill in gas).

    ``owner`` and ``session`` are the same call on the same account state, with both nonce lanes used once
    before; ``first_use`` is the session's first operation, which enables the session from the owner's
    off-chain signature (ENABLE) and uses its nonce lane for the first time. The recipient is an EOA (the
    owner's key), so no account's ``onERC721Received`` is part of the figures.
    """

    kind: str
    owner: int
    session: int
    first_use: int

    @property
    def ratio(self) -> float:
        """Session gas over owner gas."""
        return self.session / self.owner

    @property
    def first_use_extra(self) -> int:
        """What the first session operation costs over a later one."""
        return self.first_use - self.session


def measure_gas(
    stack: LocalStack,
    contracts: AccountContracts,
    kind_name: str,
    *,
    timeout: float = 60.0,
    owner_signer: LocalSigner | None = None,
    session_key: SessionKey | None = None,
) -> GasFigures:
    """Create an account of ``kind_name`` (module installed at creation) with a fresh owner and measure
    :class:`GasFigures` on it. ``owner_signer`` and ``session_key`` default to new random keys; give fixed ones for
    figures that repeat run to run (the keys' bytes, zero or not, change the calldata gas and the bundler's
    estimates by a few gas)."""
    net = network_for(stack, contracts.kind(kind_name))
    net.kind = contracts.kind(kind_name, net)
    signer = owner_signer if owner_signer is not None else LocalSigner.generate()
    owner = net.owner(signer)
    stack.fund(owner.account, 10**18)
    mint = function_call(stack.nft, "safeMint(address)", signer.address)

    def gas(pending: Any) -> int:
        return int(pending.wait(timeout).actual_gas_used)

    gas(owner.execute(mint))  # creates the account: the owner's lane is used once
    key = session_key if session_key is not None else SessionKey.generate()
    policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == signer.address])
    session = net.session(owner.grant(key, [policy]), key)
    first_use = gas(session.send_calls(mint))
    owner_gas = gas(owner.execute(mint))
    session_gas = gas(session.send_calls(mint))
    return GasFigures(kind=kind_name, owner=owner_gas, session=session_gas, first_use=first_use)
