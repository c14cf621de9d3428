"""Compiled contracts keyscope deploys: its own (shipped in the package) and the EntryPoint v0.7.

keyscope's own contracts (account, factory, session module, paymaster, demo NFT) are shipped as
``keyscope/artifacts/<Name>.json`` (ABI and bytecode), exported from the project's compile by
``tools/export_artifacts.py``. The EntryPoint v0.7 comes from the npm package
``@account-abstraction/contracts@0.7.0``, looked up in ``node_modules`` folders.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = ["ENTRY_POINT_V07", "contract_artifact", "entry_point_artifact", "npm_package_dir"]

ENTRY_POINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
ENTRY_POINT_V07_SALT = bytes.fromhex("90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3")
DETERMINISTIC_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C"

_PACKAGE_ARTIFACTS = Path(__file__).parent / "artifacts"


@cache
def contract_artifact(name: str) -> dict[str, Any]:
    """``{"abi": [...], "bytecode": "0x...", "deployedBytecode": "0x..."}`` of one of keyscope's contracts."""
    path = _PACKAGE_ARTIFACTS / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        available = sorted(p.stem for p in _PACKAGE_ARTIFACTS.glob("*.json"))
        raise ConfigurationError(
            f"no compiled artefact for {name!r} in the keyscope package (have: {', '.join(available) or 'none'}); "
            "in a source checkout run `make setup` to compile and export them"
        ) from None
    return data


def npm_package_dir(package: str, version: str | None = None) -> Path:
    """The folder of an installed npm package, searched in ``$KEYSCOPE_NODE_MODULES``, then in the
    ``node_modules`` of the working directory and its parents, then beside keyscope's source checkout.
    ``version`` is the one keyscope needs, for the message when the package is missing."""
    roots: list[Path] = []
    if env := os.environ.get("KEYSCOPE_NODE_MODULES"):
        roots.append(Path(env))
    cwd = Path.cwd()
    roots.extend(parent / "node_modules" for parent in (cwd, *cwd.parents))
    roots.extend(parent / "node_modules" for parent in Path(__file__).resolve().parents)
    for root in roots:
        candidate = root / package
        if (candidate / "package.json").is_file():
            return candidate
    wanted = f"{package}@{version}" if version else package
    raise ConfigurationError(
        f"the npm package {package} is not installed: run `npm install --save-dev {wanted}` in your project (in a "
        "keyscope checkout, `make setup`), or point KEYSCOPE_NODE_MODULES at a node_modules folder that has it"
    )


@cache
def entry_point_artifact() -> dict[str, Any]:
    """ABI and creation bytecode of EntryPoint v0.7, from ``@account-abstraction/contracts@0.7.0``."""
    package = npm_package_dir("@account-abstraction/contracts", "0.7.0")
    version = json.loads((package / "package.json").read_text()).get("version")
    if version != "0.7.0":
        raise ConfigurationError(
            f"@account-abstraction/contracts is {version} in {package}, but keyscope needs 0.7.0 (EntryPoint v0.7): "
            "npm install --save-dev @account-abstraction/contracts@0.7.0"
        )
    data: dict[str, Any] = json.loads((package / "artifacts" / "EntryPoint.json").read_text())
    return data
