"""Set-up step: fetch the creation bytecode of Kernel v3.1, Nexus 1.0 and Safe7579 (with Safe 1.4.1), and of the
ERC-7579 reference account (MSA, with its bootstrap and proxy).

The bytecode comes from the npm package ``@rhinestone/modulekit`` (GPL-3.0), which ships it as hex constants in
``src/deployment/precompiles/{Kernel,Nexus,Safe7579,ERC7579}Precompiles.sol``. The package's own dependencies are
git-hosted, so it is not installed: ``npm pack`` downloads its tarball into ``.cache/accounts/`` (checked by
npm against the registry's integrity hash), this script reads the four files from it and writes the constants
to ``.cache/accounts/modulekit-<version>.json``. Nothing of it is committed; keyscope's end-to-end tests deploy
these accounts on a local anvil from that file (see ``tests/support/accounts.py``).

Idempotent: does nothing when the JSON file is there and complete. Exits non-zero with a message naming the step
that failed. Usage: ``python tools/fetch_account_bytecode.py [--quiet]``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / ".cache" / "accounts"
PACKAGE = "@rhinestone/modulekit"
VERSION = "0.5.9"
OUT_FILE = OUT_DIR / f"modulekit-{VERSION}.json"
TARBALL = OUT_DIR / f"rhinestone-modulekit-{VERSION}.tgz"

SOURCES = {
    "kernel": "package/src/deployment/precompiles/KernelPrecompiles.sol",
    "nexus": "package/src/deployment/precompiles/NexusPrecompiles.sol",
    "safe7579": "package/src/deployment/precompiles/Safe7579Precompiles.sol",
    "erc7579": "package/src/deployment/precompiles/ERC7579Precompiles.sol",
}
# Constants each account needs, and the accountId() its implementation reports (found in its bytecode).
REQUIRED = {
    "kernel": (["KERNEL_BYTECODE", "KERNEL_FACTORY_BYTECODE"], "kernel.advanced.v0.3.1"),
    "nexus": (
        ["NEXUS_BYTECODE", "NEXUS_ACCOUNT_FACTORY_BYTECODE", "NEXUS_BOOTSTRAP_BYTECODE"],
        "biconomy.nexus.1.0.0",
    ),
    "safe7579": (
        [
            "SAFE7579_BYTECODE",
            "SAFE7579_LAUNCHPAD_BYTECODE",
            "SAFE_SINGLETON_BYTECODE",
            "SAFE_PROXY_FACTORY_BYTECODE",
        ],
        "rhinestone.safe7579.v1.0.0",
    ),
    # the ERC-7579 reference account (MSA), its bootstrap and its proxy
    "erc7579": (
        ["ERC7579_BYTECODE", "ERC7579_BOOTSTRAP_BYTECODE", "MSAPROXY_BYTECODE"],
        "uMSA.advanced/withHook.v0.1",
    ),
}
_CONSTANT = re.compile(
    r"bytes\s+(?:public\s+|internal\s+)?constant\s+([A-Z0-9_]+)\s*=\s*hex\"([0-9a-fA-F]*)\""
)


class SetupError(Exception):
    """A step failed; the message says which and what to do."""


def _say(message: str, quiet: bool) -> None:
    """A set-up line, marked as tools/setup.sh marks its own."""
    if not quiet:
        print(f"\033[1;34m[setup]\033[0m {message}")


def is_complete(path: Path = OUT_FILE) -> bool:
    """Whether ``path`` holds every constant this version needs."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if data.get("package") != f"{PACKAGE}@{VERSION}":
        return False
    bytecode = data.get("bytecode", {})
    return all(name in bytecode for names, _ in REQUIRED.values() for name in names)


def download() -> Path:
    """``npm pack`` the package into the cache folder (unless its tarball is already there)."""
    if TARBALL.is_file():
        return TARBALL
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError("npm not found: install Node.js and npm, then run tools/setup.sh again")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(OUT_DIR), "--silent"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not TARBALL.is_file():
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise SetupError(
            f"`npm pack {PACKAGE}@{VERSION}` failed (exit {result.returncode}): {' / '.join(detail) or 'no output'}. "
            "Check that the npm registry is reachable, then run tools/setup.sh again"
        )
    return TARBALL


def extract(tarball: Path) -> dict[str, dict[str, str]]:
    """The hex constants of the precompile files, by account kind, checked against REQUIRED."""
    found: dict[str, dict[str, str]] = {}
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for kind, member in SOURCES.items():
                handle = archive.extractfile(member)
                if handle is None:
                    raise SetupError(f"{tarball.name} has no file {member}: is it {PACKAGE}@{VERSION}?")
                text = handle.read().decode()
                found[kind] = {name: "0x" + code.lower() for name, code in _CONSTANT.findall(text)}
    except (tarfile.TarError, KeyError, OSError) as error:
        raise SetupError(
            f"cannot read {tarball} ({error}): delete it and run tools/setup.sh again to download it anew"
        ) from error
    for kind, (names, account_id) in REQUIRED.items():
        missing = [name for name in names if not found[kind].get(name, "0x")[2:]]
        if missing:
            raise SetupError(
                f"{SOURCES[kind]} in {PACKAGE}@{VERSION} lacks the constants {', '.join(missing)}"
            )
        if account_id.encode().hex() not in found[kind][names[0]]:
            raise SetupError(
                f"{names[0]} in {PACKAGE}@{VERSION} does not report accountId {account_id!r}: wrong package version"
            )
    return found


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    if is_complete():
        return 0
    try:
        _say(
            f"fetching {PACKAGE}@{VERSION} (Kernel, Nexus, Safe7579 and MSA bytecode, GPL-3.0, kept in .cache)",
            quiet,
        )
        constants = extract(download())
    except SetupError as error:
        print(f"\033[1;31m[setup] error:\033[0m account bytecode: {error}", file=sys.stderr)
        return 1
    bytecode = {name: code for kind in constants.values() for name, code in kind.items()}
    payload = {
        "package": f"{PACKAGE}@{VERSION}",
        "license": "GPL-3.0",
        "accounts": {kind: names for kind, (names, _) in REQUIRED.items()},
        "bytecode": bytecode,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    partial = OUT_FILE.with_suffix(".partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    partial.replace(OUT_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
