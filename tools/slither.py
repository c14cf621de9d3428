#!/usr/bin/env python3
"""Static analysis of keyscope's contracts with slither, reproducibly.

    tools/slither.py            # analyse contracts/, print every finding, fail on untriaged high/medium ones
    tools/slither.py --json F   # also write slither's results (JSON) to F

What it does:

* runs itself inside ``.cache/slither/venv``, a virtual environment of its own holding the pinned
  ``slither-analyzer`` and ``crytic-compile`` below (created on first use from PyPI, kept out of the project's
  ``.venv`` so that slither's dependency pins never meet ape's);
* compiles every ``.sol`` file under ``contracts/`` in one Solidity Standard JSON job, with the settings of
  ``ape-config.yaml`` (compiler version, EVM version, optimizer runs, via-IR) and the npm dependencies it
  lists as remappings into ``node_modules/``, through the project's ``solc`` command (``.cache/solcx``,
  solcjs behind ``tools/solc-shim.js``, installed by ``make setup``): crytic-compile's standard-json mode
  needs nothing but ``solc --version`` and ``solc --standard-json``;
* runs every slither detector, leaves out findings that lie only in dependencies (``node_modules``);
* reads the triage table of ``docs/static-analysis.md``: a row whose first cell is a detector name and whose
  second cell is the function (``Contract.function(types)``) or contract a finding is about, both in
  backquotes, triages every finding of that detector there. The run fails (exit 1) when a high or medium
  finding has no triage row, and warns about rows that match no finding any more.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

SLITHER = "slither-analyzer==0.11.6"
CRYTIC_COMPILE = "crytic-compile==0.4.2"

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "slither" / "venv"
DOC = ROOT / "docs" / "static-analysis.md"
FAILING_IMPACTS = ("High", "Medium")
IMPACT_ORDER = {"High": 0, "Medium": 1, "Low": 2, "Informational": 3, "Optimization": 4}


def fail(message: str) -> None:
    print(f"slither: error: {message}", file=sys.stderr)
    sys.exit(2)


# -- the environment --------------------------------------------------------------------------------


def ensure_venv() -> None:
    """Re-run this script inside the slither virtual environment, creating it when needed."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    stamp = VENV / ".keyscope-stamp"
    wanted = f"{SLITHER} {CRYTIC_COMPILE}"
    if not python.exists() or not stamp.exists() or stamp.read_text().strip() != wanted:
        print(
            f"slither: installing {SLITHER} and {CRYTIC_COMPILE} in {VENV.relative_to(ROOT)}", file=sys.stderr
        )
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        result = subprocess.run([*pip, SLITHER, CRYTIC_COMPILE])
        if result.returncode != 0:
            fail(
                "pip could not install slither: check that PyPI is reachable, then run tools/slither.py again"
            )
        stamp.write_text(wanted + "\n")
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def ape_settings() -> dict[str, Any]:
    """The compiler settings ape uses (ape-config.yaml), read without a YAML library."""
    text = (ROOT / "ape-config.yaml").read_text()
    block = re.search(r"^solidity:\n((?:[ \t]+.*\n|\n)*)", text, re.M)
    if block is None:
        fail("ape-config.yaml has no solidity: section")
    solidity = block.group(1) if block else ""

    def setting(name: str) -> str:
        match = re.search(rf"^\s+{name}:\s*([\w.]+)\s*$", solidity, re.M)
        if match is None:
            fail(f"ape-config.yaml has no solidity setting {name!r}")
        return match.group(1) if match else ""

    packages = re.findall(r'^\s+npm:\s*"([^"]+)"', text, re.M)
    return {
        "version": setting("version"),
        "evm_version": setting("evm_version"),
        "optimize": setting("optimize") == "true",
        "runs": int(setting("optimization_runs")),
        "via_ir": setting("via_ir") == "true",
        "remappings": [f"{name}/=node_modules/{name}/" for name in packages],
    }


def standard_json(settings: dict[str, Any]) -> dict[str, Any]:
    sources = sorted((ROOT / "contracts").rglob("*.sol"))
    if not sources:
        fail("no .sol files under contracts/")
    for remapping in settings["remappings"]:
        folder = ROOT / remapping.split("=", 1)[1]
        if not folder.is_dir():
            fail(f"{folder.relative_to(ROOT)} is missing: run `make setup` (npm ci) first")
    return {
        "language": "Solidity",
        "sources": {str(p.relative_to(ROOT)): {"content": p.read_text()} for p in sources},
        "settings": {
            "remappings": settings["remappings"],
            "optimizer": {"enabled": settings["optimize"], "runs": settings["runs"]},
            "viaIR": settings["via_ir"],
            "evmVersion": settings["evm_version"],
        },
    }


# -- triage -----------------------------------------------------------------------------------------


def triage_rows() -> dict[tuple[str, str], str]:
    """``(detector, where) -> verdict`` from the triage table of docs/static-analysis.md."""
    rows: dict[tuple[str, str], str] = {}
    if not DOC.exists():
        return rows
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"`[a-z0-9-]+`", cells[0]) and re.fullmatch(r"`[^`]+`", cells[1]):
            rows[(cells[0].strip("`"), cells[1].strip("`"))] = cells[3]
    return rows


def where(result: dict[str, Any]) -> str:
    """The function (``Contract.name(types)``) or contract a finding is about."""
    for element in result.get("elements", []):
        kind = element.get("type")
        fields = element.get("type_specific_fields", {})
        if kind == "function":
            return f"{fields['parent']['name']}.{fields.get('signature', element['name'])}"
        if kind == "contract":
            return str(element["name"])
        if kind == "variable" and "parent" in fields:
            return f"{fields['parent']['name']}.{element['name']}"
    return "?"


# -- the run ----------------------------------------------------------------------------------------


def analyse() -> list[dict[str, Any]]:
    import inspect
    import logging

    # this file is tools/slither.py: keep its folder off the import path so that `slither` is the package
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]

    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    logging.basicConfig(level=logging.WARNING)
    settings = ape_settings()
    solc = ROOT / ".cache" / "solcx" / f"solc-v{settings['version']}"
    if not os.access(solc, os.X_OK):
        fail(f"{solc.relative_to(ROOT)} is missing: run `make setup` first (it installs the solc command)")
    version = subprocess.run([str(solc), "--version"], capture_output=True, text=True, check=False).stdout
    if settings["version"] not in version:
        fail(f"{solc.relative_to(ROOT)} answers {version.strip()!r}, not solc {settings['version']}")
    print(
        f"slither: compiling contracts/ with solc {settings['version']} (solcjs), EVM {settings['evm_version']}, "
        f"optimizer {settings['runs'] if settings['optimize'] else 'off'}, via-IR {settings['via_ir']}",
        file=sys.stderr,
    )
    platform = SolcStandardJson(standard_json(settings))
    compilation = CryticCompile(platform, solc=str(solc), solc_working_dir=str(ROOT))
    slither = Slither(compilation, filter_paths=["node_modules"], exclude_dependencies=True)
    for _, detector in inspect.getmembers(all_detectors, inspect.isclass):
        if issubclass(detector, AbstractDetector):
            slither.register_detector(detector)
    results = [result for per_detector in slither.run_detectors() for result in per_detector]
    return sorted(results, key=lambda r: (IMPACT_ORDER.get(r["impact"], 9), r["check"], where(r), r["id"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the findings to this JSON file")
    args = parser.parse_args()
    ensure_venv()
    os.chdir(ROOT)
    results = analyse()
    triage = triage_rows()
    used: set[tuple[str, str]] = set()
    untriaged = []
    for result in results:
        key = (result["check"], where(result))
        verdict = triage.get(key)
        if verdict is not None:
            used.add(key)
        elif result["impact"] in FAILING_IMPACTS:
            untriaged.append(result)
        first = result["description"].strip().splitlines()[0]
        mark = (
            f"triaged: {verdict}" if verdict else ("UNTRIAGED" if result["impact"] in FAILING_IMPACTS else "")
        )
        print(f"{result['impact']:<13} {result['confidence']:<7} {result['check']:<22} {first}")
        if mark:
            print(f"{'':<44}-> {mark}")
    counts: dict[str, int] = {}
    for result in results:
        counts[result["impact"]] = counts.get(result["impact"], 0) + 1
    print("\nslither: " + ", ".join(f"{counts.get(i, 0)} {i.lower()}" for i in IMPACT_ORDER) + " finding(s)")
    for key in sorted(set(triage) - used):
        print(
            f"slither: warning: triage row `{key[0]}` `{key[1]}` in {DOC.relative_to(ROOT)} matches no finding"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if untriaged:
        print(f"slither: {len(untriaged)} high/medium finding(s) not triaged in {DOC.relative_to(ROOT)}:")
        for result in untriaged:
            print(f"  `{result['check']}` `{where(result)}`")
        return 1
    print("slither: every high and medium finding is triaged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
