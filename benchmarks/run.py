"""keyscope's benchmarks, in one command: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``).

Prints the tables, writes ``docs/benchmarks.md`` and ``benchmarks/results.json``. Not part of the test run.

1. SDK speed on one core, before anything else starts (``sdk.py``, against viem: ``sdk_viem.mjs``);
2. then one local stack (anvil + Alto, ``keyscope.local.LocalStack``) for the rest:
   gas and bytes (``gas.py``), the session's gas step by step from opcode traces and the first operation
   (``decompose.py``), the module on other accounts (``kinds.py``), end to end (``e2e.py``);
3. sessions at scale: worker processes on SQLite and PostgreSQL through a stack of their own (``scale.py``,
   run as its own process; it writes ``benchmarks/scale.json``).

Options: ``--quick`` (fewer rounds, for trying things out), ``--smoke`` (one short SDK round: the test suite's check
that the benchmark runs), ``--skip sdk,gas,decompose,kinds,e2e``, ``--merge`` (keep the
skipped parts' figures from the existing results.json; a stack part run without the stack parts before it starts
from another chain state, so its gas figures can differ from a full run's), ``--no-write`` (print only), ``--report-only`` (rewrite
docs/benchmarks.md from the existing results.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import report
from common import ROOT, STACK_SETTINGS, machine

from keyscope.local import LocalStack
from keyscope.local.alto import ALTO_VERSION
from keyscope.local.anvil import find_anvil

PARTS = ("sdk", "gas", "decompose", "kinds", "e2e", "scale")
RESULT_KEYS = {"decompose": "gas_decomposition"}
"""The results.json key of a part, where it is not the part's name."""
STACK_PARTS = {"gas", "decompose", "kinds", "e2e"}
"""The parts that run on the local stack."""


def _versions() -> dict[str, str]:
    def output(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "?"

    entry_point = json.loads((ROOT / "node_modules/@account-abstraction/contracts/package.json").read_text())
    return {
        "anvil": output([str(find_anvil()), "--version"]).splitlines()[0].replace("anvil Version: ", ""),
        "alto": ALTO_VERSION,
        "node": output(["node", "--version"]),
        "entry_point": entry_point["version"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keyscope benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (figures are noisier)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one short SDK round: checks the benchmark runs (figures meaningless)",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated parts to skip: {', '.join(PARTS)}")
    parser.add_argument("--no-write", action="store_true", help="print the tables, write no file")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from results.json")
    parser.add_argument("--json", type=Path, help="also write the results (JSON) to this file")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the parts of the existing results.json that this run skips (their figures are then older)",
    )
    args = parser.parse_args(argv)

    if args.report_only:
        results = json.loads(report.RESULTS.read_text())
        report.write(results)
        print(report.markdown(results))
        return 0

    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    unknown = skip - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: use {', '.join(PARTS)}")
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    order = [part for part in PARTS if part in STACK_PARTS]
    running = [part for part in order if part not in skip]
    before_skipped = [
        part for part in order if part in skip and running and order.index(part) < order.index(running[-1])
    ]
    if before_skipped:
        # the stack parts share one chain: each starts from the state the parts before it left
        log(
            f"note: {', '.join(before_skipped)} skipped, so {', '.join(running)} start(s) from another chain state than "
            "in a full run (other contract addresses, token ids, balances): gas figures can differ from a full "
            "run's, by a few gas (address bytes) or by a fresh slot's 17,100 (a balance a skipped part made "
            "nonzero, as the other accounts' ERC-721 shape shows)"
        )

    kept: dict[str, Any] = {}
    if args.merge and report.RESULTS.is_file():
        previous = json.loads(report.RESULTS.read_text())
        kept = {
            RESULT_KEYS.get(part, part): previous[RESULT_KEYS.get(part, part)]
            for part in PARTS
            if part in skip and RESULT_KEYS.get(part, part) in previous
        }
        if "first_op_ratio_session_over_owner" in previous and "decompose" in skip:
            kept["first_op_ratio_session_over_owner"] = previous["first_op_ratio_session_over_owner"]
        if "stack" in previous and skip >= STACK_PARTS:
            kept["stack"] = previous["stack"]
        kept["merged_from"] = {
            "generated_at": previous.get("generated_at"),
            "parts": sorted(part for part in PARTS if RESULT_KEYS.get(part, part) in kept),
        }
    results: dict[str, Any] = {
        "schema": 1,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "versions": _versions(),
        "stack": STACK_SETTINGS,
        **kept,
    }
    if "sdk" in kept:
        results["versions"]["viem"] = kept["sdk"].get("viem_version")
    if "sdk" not in skip:
        import sdk

        log("sdk: hot path against viem, full build, policy check (one core)")
        results["sdk"] = sdk.run(quick=args.quick, smoke=args.smoke)
        results["versions"]["viem"] = results["sdk"]["viem_version"]

    if STACK_PARTS - skip:
        log("starting the local stack (anvil + Alto)")
        with LocalStack(**STACK_SETTINGS) as stack:
            results["stack"] = {
                **STACK_SETTINGS,
                "startup_seconds": round(stack.timings.get("total", 0.0), 1),
            }
            if "gas" not in skip:
                import gas

                results["gas"] = gas.run(stack, log=log)
            if "decompose" not in skip:
                import decompose

                results["gas_decomposition"] = decompose.run(stack, log=log)
                results["first_op_ratio_session_over_owner"] = results["gas_decomposition"]["first_op"][
                    "ratio"
                ]
                print(decompose.table(results["gas_decomposition"]), flush=True)
            if "kinds" not in skip:
                import kinds

                results["kinds"] = kinds.run(stack, log=log)
            if "e2e" not in skip:
                import e2e

                results["e2e"] = e2e.run(stack, quick=args.quick, log=log)
    if "scale" not in skip:
        log("scale: worker processes on SQLite and PostgreSQL (a stack of its own)")
        command = [sys.executable, str(ROOT / "benchmarks" / "scale.py")]
        if args.quick:
            command.append("--quick")
        subprocess.run(command, check=True, cwd=ROOT)
        results["scale"] = json.loads((ROOT / "benchmarks" / "scale.json").read_text())
    results["seconds"] = round(time.monotonic() - began, 1)
    results["targets"] = report.targets(results)
    log("done")
    print()
    print(report.markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_write:
        report.write(results)
        log(f"wrote {report.DOC.relative_to(ROOT)} and {report.RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
