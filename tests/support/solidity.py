"""Solidity source a test writes inline, compiled with the project's solc (0.8.28, optimizer on, Cancun) into an
ape ``ContractType`` that ``ContractContainer(...).deploy`` deploys on the test chain.

For contracts a test needs built otherwise than ``ape compile`` builds ``contracts/`` (a legacy code generator, a
token shaped for one attack), so that their source sits beside the test that uses them.
"""

from __future__ import annotations

from typing import Any

import solcx
from ethpm_types import ContractType


def compile_contract_type(source: str, name: str, *, via_ir: bool | None = None) -> ContractType:
    """Compile ``source`` and return contract ``name`` of it; ``via_ir`` False asks for the legacy code generator
    (the only one with ABI coder v1), None leaves solc's default."""
    file_name = f"{name}.sol"
    settings: dict[str, Any] = {
        "optimizer": {"enabled": True, "runs": 200},
        "evmVersion": "cancun",
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
    }
    if via_ir is not None:
        settings["viaIR"] = via_ir
    output = solcx.compile_standard(
        {"language": "Solidity", "sources": {file_name: {"content": source}}, "settings": settings},
        solc_version="0.8.28",
    )
    built = output["contracts"][file_name][name]
    return ContractType.model_validate(
        {
            "contractName": name,
            "abi": built["abi"],
            "deploymentBytecode": {"bytecode": "0x" + built["evm"]["bytecode"]["object"]},
            "runtimeBytecode": {"bytecode": "0x" + built["evm"]["deployedBytecode"]["object"]},
        }
    )
