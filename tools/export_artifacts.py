"""Export the ABI and bytecode of keyscope's deployable contracts from ape's build into the package.

Run by tools/setup.sh after `ape compile`. The exported files (src/keyscope/artifacts/*.json) are committed,
so that the SDK, the local stack and the ape fixtures work from an installed package; the test suite checks
that they match a fresh compile.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".build" / "__local__.json"
OUT = ROOT / "src" / "keyscope" / "artifacts"
CONTRACTS = [
    "KeyscopeAccount",
    "KeyscopeAccountFactory",
    "KeyscopeDelegate",
    "SessionKeyValidator",
    "DemoNFT",
    "SponsorPaymaster",
    "DeploylessSignatureCheck",
]


def exported() -> dict[str, str]:
    """File name -> content for every exported artefact, from the current build."""
    types = json.loads(BUILD.read_text())["contractTypes"]
    files = {}
    for name in CONTRACTS:
        if name not in types:
            continue
        contract = types[name]
        artifact = {
            "contractName": name,
            "abi": contract["abi"],
            "bytecode": contract["deploymentBytecode"]["bytecode"],
            "deployedBytecode": contract["runtimeBytecode"]["bytecode"],
        }
        files[f"{name}.json"] = json.dumps(artifact, indent=1, sort_keys=True) + "\n"
    return files


def main() -> int:
    if not BUILD.exists():
        print("no .build/__local__.json: run `ape compile` first", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in exported().items():
        path = OUT / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
