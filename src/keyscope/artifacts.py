"""Compiled contracts keyscope deploys: its own (shipped in the package) and the EntryPoints v0.7 and v0.8.

keyscope's own contracts (account, factory, EIP-7702 delegate, session module, paymaster, demo NFT) are shipped
as ``keyscope/artifacts/<Name>.json`` (ABI and bytecode), exported from the project's compile by
``tools/export_artifacts.py``. The EntryPoints come from the official npm packages, looked up in
``node_modules`` folders: v0.7 from ``@account-abstraction/contracts@0.7.0``, v0.8 from
``@account-abstraction/contracts@0.8.0`` (installed beside it under the alias
``@account-abstraction/contracts-v0.8``, or as ``@account-abstraction/contracts`` itself in a project that uses
only v0.8).

Each EntryPoint lands at its canonical address through the deterministic deployment proxy, with the salt its
release was deployed with (the address follows from the salt and the artefact's creation bytecode):

=======  ==============================================  ===================================================================
version  address                                         salt
=======  ==============================================  ===================================================================
0.7      ``0x0000000071727De22E5E9d8BAf0edAc6f37da032``  ``0x90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3``
0.8      ``0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108``  ``0x0a59dbff790c23c976a548690c27297883cc66b4c67024f9117b0238995e35e9``
=======  ==============================================  ===================================================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "DETERMINISTIC_DEPLOYER",
    "ENTRY_POINTS",
    "ENTRY_POINT_V06",
    "ENTRY_POINT_V07",
    "ENTRY_POINT_V07_SALT",
    "ENTRY_POINT_V08",
    "ENTRY_POINT_V08_SALT",
    "KNOWN_ENTRY_POINTS",
    "EntryPointRelease",
    "contract_artifact",
    "entry_point_artifact",
    "npm_package_dir",
]

ENTRY_POINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
ENTRY_POINT_V07_SALT = bytes.fromhex("90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3")
ENTRY_POINT_V08 = "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108"
ENTRY_POINT_V08_SALT = bytes.fromhex("0a59dbff790c23c976a548690c27297883cc66b4c67024f9117b0238995e35e9")
ENTRY_POINT_V06 = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
KNOWN_ENTRY_POINTS = frozenset(a.lower() for a in (ENTRY_POINT_V06, ENTRY_POINT_V07, ENTRY_POINT_V08))
"""The canonical EntryPoints (v0.6, v0.7, v0.8), lowercase: each keeps a deposit and stake by caller, and an account
that moved to a later one may keep a deposit at an earlier one (attack 375)."""
DETERMINISTIC_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C"


@dataclass(frozen=True)
class EntryPointRelease:
    """One official EntryPoint release: its version, canonical address, deployment salt and npm package."""

    version: str
    address: str
    salt: bytes
    npm_version: str
    npm_packages: tuple[str, ...]


ENTRY_POINTS: dict[str, EntryPointRelease] = {
    "0.7": EntryPointRelease(
        "0.7", ENTRY_POINT_V07, ENTRY_POINT_V07_SALT, "0.7.0", ("@account-abstraction/contracts",)
    ),
    "0.8": EntryPointRelease(
        "0.8",
        ENTRY_POINT_V08,
        ENTRY_POINT_V08_SALT,
        "0.8.0",
        ("@account-abstraction/contracts-v0.8", "@account-abstraction/contracts"),
    ),
}
"""The EntryPoint releases keyscope works with, by version."""

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
def entry_point_artifact(version: str = "0.7") -> dict[str, Any]:
    """ABI and creation bytecode of the EntryPoint ``version`` ("0.7" or "0.8") from its official npm package
    (see the module's notes for where it is looked up)."""
    release = ENTRY_POINTS.get(version)
    if release is None:
        raise ConfigurationError(
            f"unknown EntryPoint version {version!r}: keyscope works with {', '.join(map(repr, ENTRY_POINTS))}"
        )
    found: list[str] = []
    for name in release.npm_packages:
        try:
            package = npm_package_dir(name)
        except ConfigurationError:
            continue
        installed = json.loads((package / "package.json").read_text()).get("version")
        if installed == release.npm_version:
            data: dict[str, Any] = json.loads((package / "artifacts" / "EntryPoint.json").read_text())
            return data
        found.append(f"{name} {installed} in {package}")
    where = f" (found {'; '.join(found)})" if found else ""
    official = f"@account-abstraction/contracts@{release.npm_version}"
    name = release.npm_packages[0]
    install = official if name == "@account-abstraction/contracts" else f"{name}@npm:{official}"
    raise ConfigurationError(
        f"the EntryPoint v{version} artefact comes from the npm package {official}{where}: run `npm ci` in the "
        f"keyscope checkout, or `npm install --save-dev {install}` in your project"
    )
