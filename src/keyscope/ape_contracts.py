"""Deploy keyscope's contracts and the EntryPoint v0.7 with an ape account, on any ape network."""

from __future__ import annotations

from typing import Any

from .artifacts import contract_artifact, entry_point_artifact
from .devnode import ETHER

__all__ = ["contract_container", "deploy_contract", "deploy_entry_point", "deploy_factory"]


def contract_container(name: str) -> Any:
    """An ape ``ContractContainer`` for one of keyscope's contracts, or ``"EntryPoint"``."""
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    artifact = entry_point_artifact() if name == "EntryPoint" else contract_artifact(name)
    contract_type = ContractType.model_validate(
        {
            "contractName": name,
            "abi": artifact["abi"],
            "deploymentBytecode": {"bytecode": artifact["bytecode"]},
            "runtimeBytecode": {"bytecode": artifact["deployedBytecode"]},
        }
    )
    return ContractContainer(contract_type)


def deploy_contract(name: str, deployer: Any, *args: Any) -> Any:
    """Deploy one of keyscope's contracts."""
    return contract_container(name).deploy(*args, sender=deployer)


def deploy_entry_point(deployer: Any) -> Any:
    """Deploy EntryPoint v0.7 from the npm artefact (at whatever address the deployer's nonce gives)."""
    return contract_container("EntryPoint").deploy(sender=deployer)


def deploy_factory(
    entry_point: Any, deployer: Any, *, stake: int = ETHER, unstake_delay: int = 86_400
) -> Any:
    """Deploy a ``KeyscopeAccountFactory`` and stake it (ERC-7562 lets staked factories' accounts initialise
    modules during creation)."""
    factory = deploy_contract("KeyscopeAccountFactory", deployer, entry_point.address, deployer.address)
    factory.addStake(unstake_delay, value=stake, sender=deployer)
    return factory
