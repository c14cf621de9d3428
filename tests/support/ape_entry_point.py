"""The official EntryPoint (v0.7 or v0.8, from its npm package) deployed on ape's chain."""

from __future__ import annotations

from typing import Any

from ape.contracts import ContractContainer
from ethpm_types import ContractType

from keyscope.artifacts import entry_point_artifact


def deploy_entry_point(deployer: Any, version: str = "0.7") -> Any:
    """Deploy the EntryPoint of ``version`` from ``deployer``; returns ape's contract instance."""
    artifact = entry_point_artifact(version)
    contract_type = ContractType.model_validate(
        {
            "contractName": "EntryPoint",
            "abi": artifact["abi"],
            "deploymentBytecode": {"bytecode": artifact["bytecode"]},
            "runtimeBytecode": {"bytecode": artifact["deployedBytecode"]},
        }
    )
    return ContractContainer(contract_type).deploy(sender=deployer)
