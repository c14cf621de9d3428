"""The benchmark's SDK part runs and measures what it claims: the benchmark is not part of the test run, so
this keeps its code from rotting unnoticed between runs of ``make bench``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sdk_benchmark_runs_and_signs_the_same_bytes_as_viem(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--smoke",
            "--skip",
            "gas,decompose,kinds,e2e,scale",
            "--no-write",
            "--json",
            str(tmp_path / "results.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    targets = results["targets"]
    viem = targets["sdk_ops_per_s_ratio_over_viem"]
    assert viem["raw"]["same_bytes"] is True  # both sides produced the same hashes and signatures
    assert viem["raw"]["keyscope_ops_per_cpu_s_median"] > 0 and viem["raw"]["viem_ops_per_cpu_s_median"] > 0
    assert 0 < targets["policy_check_us"]["value"] < 1_000
    full = targets["sdk_full_path_ratio_over_viem"]
    assert full["raw"]["same_bytes"] is True  # the same callData, hash and signature on both sides
    assert full["value"] > 0 and full["raw"]["viem_account_api_ops_per_cpu_s_median"] > 0
    assert "## SDK" in completed.stdout


def test_the_report_never_allows_the_headline_session_operation_more_gas_than_its_target():
    """The Targets section says how much gas the headline session operation may cost and still meet its target
    (≤ 1.10 of the owner's): that much gas over the owner's must meet the target, one gas more must not."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report

    owner, session = 117_337, 128_566  # owner x 1.10 = 129,070.7: 129,071 gas would be a ratio over 1.10
    results = {
        "gas": {
            "headline": {"owner_tx_gas": owner, "session_tx_gas": session, "tx_gas_ratio": session / owner}
        }
    }
    fields = report._targets_section(results)
    allowed = int(fields["headline_allowed"].replace(",", ""))
    assert allowed * 100 <= owner * 110, f"{allowed:,} gas is a ratio of {allowed / owner:.7f}, over 1.10"
    assert (allowed + 1) * 100 > owner * 110
    assert fields["headline_spare"] == f"{allowed - session:,}"
