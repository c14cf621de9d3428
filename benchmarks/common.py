"""Helpers shared by the benchmark scripts: fixed keys, summary statistics, one-core pinning."""

from __future__ import annotations

import math
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The checkout (benchmarks/ is one level below it)."""

# the test tooling the benchmarks share with the tests (``support``: PostgreSQL, third-party accounts) lives in
# tests/support/, outside the shipped package; every benchmark script imports this module first
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(1, str(ROOT / "tests"))

from support.gas_shapes import fixed_signer  # noqa: E402  (a key derived from a label, the same every run)

__all__ = ["ROOT", "STACK_SETTINGS", "fixed_signer", "machine", "one_core", "percentile", "ratio", "summary"]


STACK_SETTINGS: dict[str, Any] = {
    "executors": 1,
    "disable_code_size_limit": True,
    "alto_args": [],
}
"""How the local stack is started (LocalStack keyword arguments). One executor: the end-to-end limit on this
machine is Alto's CPU (simulations and receipt queries), not its executor keys; anvil mines each bundle at once.
The code size limit is lifted for Kernel's implementation (kinds.py); it changes no gas figure."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p95, mean, min and max of ``values``."""
    if not values:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "mean": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0 or either side is missing."""
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return numerator / denominator


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pin this process (and children started inside) to one CPU, the last one, and restore afterwards.

    Yields the CPU number, or None where affinity cannot be set (the work then runs unpinned).
    """
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield None
        return
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def machine() -> dict[str, Any]:
    """What the figures were measured on (no paths, no host names)."""
    import platform

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with suppress(OSError):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info
