"""Turn the benchmark results into ``benchmarks/results.json`` and ``docs/benchmarks.md``.

The document's prose is ``benchmarks/benchmarks.md.tmpl``; this module fills in its ``${name}`` fields with
figures and Markdown tables only. The document has the same sections, tables, rows and columns on every run;
only the figures change (a part that was skipped or failed shows ``n/a``). ``python benchmarks/run.py
--report-only`` rewrites the document from the stored results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from string import Template
from typing import Any

from common import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
TEMPLATE = ROOT / "benchmarks" / "benchmarks.md.tmpl"
RESULTS = ROOT / "benchmarks" / "results.json"
BEFORE = ROOT / "benchmarks" / "gas_before.json"
SNAPSHOT = ROOT / "benchmarks" / "gas_snapshot.json"
"""Gas rows measured before a change to the module, shown beside the current ones."""
BEFORE_AFTER = (
    ("owner", "owner (inline ECDSA)"),
    ("session_0_rules", "session, 0 rules"),
    ("session_2_rules", "session, 2 rules on an address (EQUAL, NOT_EQUAL)"),
    ("session_8_rules", "session, 8 rules on an address"),
    ("owner_mint_batch", "owner, `mintBatch(to, 2)`"),
    ("session_2_word_rules", "session, 2 rules on a uint256 (`mintBatch` count)"),
    ("session_batch_10", "session batch of 10, 2 rules each"),
    ("session_enable_offchain", "ENABLE (off-chain grant) and mint"),
    ("owner_enable_session", "owner `enableSession` (2 rules)"),
)
NA = "n/a"

RULE_COUNTS = (0, 1, 2, 4, 8)
BATCH_SIZES = (1, 5, 10)
SESSION_COUNTS = (1, 10, 100)
KINDS = ("keyscope", "kernel", "nexus", "safe7579", "msa")
KIND_NAMES = {
    "keyscope": "KeyscopeAccount",
    "kernel": "Kernel v3.1",
    "nexus": "Nexus 1.0",
    "safe7579": "Safe7579",
    "msa": "ERC-7579 reference (MSA)",
}
E2E_CLIENTS = (
    ("floor", "floor: bare JSON-RPC, pre-signed"),
    ("sdk", "SDK (defaults)"),
    ("sdk_tuned", "SDK, tuned"),
)

# -- others' published figures (Nov 2026, same kind of machine, handleOps tx gas, same mint(to) call) -----
OTHERS = {
    "biconomy_ratio_2_rules": 1.158,
    "biconomy_ratio_0_rules": 1.123,
    "biconomy_validation_ratio": 1.63,
    "smart_sessions_ratio_ecdsa": 1.62,
    "smart_sessions_ratio_minimal": 1.49,
    "smart_sessions_validation_ratio": 3.36,
    "smart_sessions_first_op_ratio": 3.79,
    "smart_sessions_enable_onchain_gas": 480_000,
}
FLOOR_GAS = {"ecrecover": 3_000, "cold_sload": 2_100, "signature_calldata": 65 * 16}


# -- access and formatting ----------------------------------------------------------------------------------


def get(data: Any, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...``, or None where anything is missing."""
    for step in path:
        if isinstance(data, dict):
            data = data.get(str(step)) if str(step) in data else data.get(step)  # type: ignore[call-overload]
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
        else:
            return None
        if data is None:
            return None
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def gas(value: Any) -> str:
    number = _number(value)
    return NA if number is None else f"{round(number):,}"


def signed_gas(value: Any) -> str:
    number = _number(value)
    return NA if number is None else f"{round(number):+,}"


def fixed(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return NA if number is None else f"{number:.{digits}f}"


def ms(seconds: Any) -> str:
    number = _number(seconds)
    return NA if number is None else f"{number * 1000:.1f}"


def rate(value: Any) -> str:
    number = _number(value)
    if number is None:
        return NA
    return f"{number:,.0f}" if number >= 100 else f"{number:.1f}"


def div(a: Any, b: Any) -> float | None:
    x, y = _number(a), _number(b)
    return None if x is None or not y else x / y


def sub(a: Any, b: Any) -> float | None:
    x, y = _number(a), _number(b)
    return None if x is None or y is None else x - y


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` has one letter per column (l or r), numbers right-aligned by default."""
    spec = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in spec]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- targets --------------------------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The targets: value, limit, whether met, and the raw figures behind each ratio."""
    headline = get(results, "gas", "headline") or {}
    scaling = get(results, "gas", "scaling") or {}
    sdk = results.get("sdk") or {}
    one = get(results, "e2e", "scenarios", "1") or {}
    many = get(results, "e2e", "scenarios", "20") or {}

    def entry(value: Any, target: str, raw: dict[str, Any]) -> dict[str, Any]:
        sign, limit_text = target.split()
        op = "<=" if sign == "≤" else ">="
        limit = float(limit_text)
        number = _number(value)
        met = None if number is None else (number <= limit if op == "<=" else number >= limit)
        return {"value": number, "target": target, "op": op, "limit": limit, "met": met, "raw": raw}

    return {
        "gas_ratio_session_over_owner_1call_2rules": entry(
            headline.get("tx_gas_ratio"),
            "≤ 1.10",
            {
                "measure": "handleOps transaction gasUsed, one safeMint, session with 2 rules vs owner",
                "owner_tx_gas": headline.get("owner_tx_gas"),
                "session_tx_gas": headline.get("session_tx_gas"),
                "owner_actual_gas_used": headline.get("owner_actual_gas_used"),
                "session_actual_gas_used": headline.get("session_actual_gas_used"),
                "actual_gas_ratio": headline.get("actual_gas_ratio"),
                "owner_validation_gas": headline.get("owner_validation_gas"),
                "session_validation_gas": headline.get("session_validation_gas"),
            },
        ),
        "gas_ratio_session_over_owner_max_over_shapes": entry(
            get(results, "gas", "shapes", "max_tx_gas_ratio"),
            "≤ 1.05",
            {
                "measure": "handleOps transaction gasUsed, session with 2 rules vs owner, the largest over the call "
                "shapes (NFT mint, ERC-20 transfer, ERC-721 transferFrom of an owned token)",
                "per_shape": {
                    shape: figures.get("tx_gas_ratio")
                    for shape, figures in (get(results, "gas", "shapes", "per_shape") or {}).items()
                },
            },
        ),
        "first_op_ratio_session_over_owner": entry(
            get(results, "gas_decomposition", "first_op", "ratio"),
            "≤ 1.35",
            {
                "measure": "handleOps transaction gasUsed of a new account's first operation (creation through "
                "the factory and a mint): a session granted off-chain (ENABLE, 2 rules) vs the owner",
                "owner_tx_gas": get(results, "gas_decomposition", "first_op", "owner_tx_gas"),
                "session_tx_gas": get(results, "gas_decomposition", "first_op", "session_tx_gas"),
                "grant_fresh_slots": get(results, "gas_decomposition", "first_op", "grant_fresh_slots"),
                "grant_fresh_slots_unread": get(
                    results, "gas_decomposition", "first_op", "grant_fresh_slots_unread"
                ),
            },
        ),
        "use_signature_bytes": entry(
            get(results, "gas", "bytes", "use_signature"),
            "≤ 100",
            {"use_with_key_bytes": get(results, "gas", "bytes", "use_with_key_signature")},
        ),
        "validation_gas_ratio_100_over_1_sessions": entry(
            scaling.get("validation_ratio_100_over_1"),
            "≤ 1.02",
            {
                "validation_gas_1_session": get(scaling, "validation_gas", "1"),
                "validation_gas_100_sessions": get(scaling, "validation_gas", "100"),
            },
        ),
        "sdk_ops_per_s_ratio_over_viem": entry(
            sdk.get("ratio_over_viem"),
            "≥ 1.5",
            {
                "measure": "a built operation's hash and signature, operations per CPU second of each process",
                "keyscope_ops_per_cpu_s_median": get(sdk, "hot_path_ops_per_cpu_s_median", "keyscope"),
                "viem_ops_per_cpu_s_median": get(sdk, "hot_path_ops_per_cpu_s_median", "viem"),
                "wall_time_ratio_over_viem": sdk.get("hot_path_wall_ratio_over_viem"),
                "same_bytes": sdk.get("same_bytes_as_viem"),
            },
        ),
        "sdk_full_path_ratio_over_viem": entry(
            sdk.get("full_path_ratio_over_viem"),
            "≥ 1.5",
            {
                "measure": "from a call to the signed UserOperation, chain and bundler answers from memory",
                "keyscope_ops_per_cpu_s_median": get(sdk, "full_path_ops_per_cpu_s_median", "keyscope"),
                "viem_ops_per_cpu_s_median": get(sdk, "full_path_ops_per_cpu_s_median", "viem"),
                "viem_account_api_ops_per_cpu_s_median": get(
                    sdk, "full_path_ops_per_cpu_s_median", "viem_account"
                ),
                "ratio_over_viem_account_api": sdk.get("full_path_ratio_over_viem_account"),
                "wall_time_ratio_over_viem": sdk.get("full_path_wall_ratio_over_viem"),
                "same_bytes": sdk.get("full_path_same_bytes_as_viem"),
            },
        ),
        "policy_check_us": entry(
            sdk.get("policy_check_us_median"),
            "≤ 20",
            {
                "rounds_us": sdk.get("policy_check_us"),
                "wall_median_us": sdk.get("policy_check_us_wall_median"),
            },
        ),
        "e2e_p50_ratio_over_floor": entry(
            get(one, "sdk", "p50_ratio_over_floor"),
            "≤ 1.2",
            {
                "sdk_p50_s": get(one, "sdk", "latency_s", "p50"),
                "floor_p50_s": get(one, "floor", "latency_s", "p50"),
                "sdk_tuned_p50_s": get(one, "sdk_tuned", "latency_s", "p50"),
                "sdk_tuned_ratio": get(one, "sdk_tuned", "p50_ratio_over_floor"),
                "ratio_20_sessions": get(many, "sdk", "p50_ratio_over_floor"),
                "ci95": get(one, "sdk", "p50_ratio_interval", "ci95"),
                "resolves": get(one, "sdk", "p50_ratio_interval", "resolves"),
            },
        ),
    }


Fields = dict[str, str]
"""Values of the template's ``${name}`` fields: figures and Markdown tables."""


def _met(entry: dict[str, Any]) -> str:
    return {True: "met", False: "**missed**", None: NA}[entry.get("met")]


def _miss(entry: dict[str, Any]) -> str:
    """How far off a missed target is."""
    value, limit = entry.get("value"), entry["limit"]
    if value is None:
        return "not measured"
    if entry["op"] == "<=":
        return f"{100 * (value / limit - 1):.0f} % over"
    return f"{100 * (1 - value / limit):.0f} % short"


def _raw_summary(key: str, entry: dict[str, Any]) -> str:
    raw = entry.get("raw") or {}
    if key == "gas_ratio_session_over_owner_1call_2rules":
        return f"{gas(raw.get('session_tx_gas'))} / {gas(raw.get('owner_tx_gas'))} gas"
    if key == "gas_ratio_session_over_owner_max_over_shapes":
        shapes = raw.get("per_shape") or {}
        return ", ".join(f"{shape} {fixed(value, 4)}" for shape, value in shapes.items()) or NA
    if key == "first_op_ratio_session_over_owner":
        return (
            f"{gas(raw.get('session_tx_gas'))} / {gas(raw.get('owner_tx_gas'))} gas; the grant writes "
            f"{fixed(raw.get('grant_fresh_slots'), 0)} fresh slots, {fixed(raw.get('grant_fresh_slots_unread'), 0)} "
            "of them never read by validation"
        )
    if key == "use_signature_bytes":
        return (
            f"USE {fixed(entry.get('value'), 0)} B (USE_WITH_KEY {fixed(raw.get('use_with_key_bytes'), 0)} B)"
        )
    if key == "validation_gas_ratio_100_over_1_sessions":
        return (
            f"{gas(raw.get('validation_gas_100_sessions'))} / {gas(raw.get('validation_gas_1_session'))} gas"
        )
    if key == "sdk_ops_per_s_ratio_over_viem":
        return (
            f"{rate(raw.get('keyscope_ops_per_cpu_s_median'))} / {rate(raw.get('viem_ops_per_cpu_s_median'))} "
            f"ops per CPU second (wall time: {fixed(raw.get('wall_time_ratio_over_viem'), 2)}x)"
        )
    if key == "sdk_full_path_ratio_over_viem":
        return (
            f"{rate(raw.get('keyscope_ops_per_cpu_s_median'))} / {rate(raw.get('viem_ops_per_cpu_s_median'))} "
            f"ops per CPU second (viem's account API: {rate(raw.get('viem_account_api_ops_per_cpu_s_median'))}, "
            f"{fixed(raw.get('ratio_over_viem_account_api'), 2)}x; wall time: "
            f"{fixed(raw.get('wall_time_ratio_over_viem'), 2)}x)"
        )
    if key == "policy_check_us":
        rounds = ", ".join(fixed(x, 2) for x in raw.get("rounds_us") or [])
        return f"CPU time, median of {rounds} µs (wall: {fixed(raw.get('wall_median_us'), 2)} µs)"
    interval = raw.get("ci95")
    spread = ""
    if interval:
        spread = f", 95 % CI [{fixed(interval[0], 3)}, {fixed(interval[1], 3)}]" + (
            "" if raw.get("resolves") else ": noise-bound"
        )
    return f"{ms(raw.get('sdk_p50_s'))} / {ms(raw.get('floor_p50_s'))} ms{spread}"


_DIGITS = {
    "first_op_ratio_session_over_owner": 4,
    "gas_ratio_session_over_owner_max_over_shapes": 4,
    "use_signature_bytes": 0,
    "policy_check_us": 2,
    "gas_ratio_session_over_owner_1call_2rules": 4,
}
"""Decimals each target's measured value is shown with (3 by default)."""


def _targets_section(results: dict[str, Any]) -> Fields:
    found = targets(results)
    rows = []
    for key, entry in found.items():
        rows.append(
            [
                f"`{key}`",
                entry["target"],
                fixed(entry.get("value"), _DIGITS.get(key, 3)),
                _met(entry),
                _raw_summary(key, entry),
            ]
        )
    close = [
        [f"`{key}`", fixed(entry["value"], 5), entry["target"]]
        for key, entry in found.items()
        if entry.get("met")
        and entry.get("value") is not None
        and abs(entry["value"] / entry["limit"] - 1) < 0.01
    ]
    missed = [
        [f"`{key}`", fixed(entry.get("value"), _DIGITS.get(key, 3)), entry["target"], _miss(entry)]
        for key, entry in found.items()
        if entry.get("met") is False
    ]
    headline = get(results, "gas", "headline") or {}
    limit = found["gas_ratio_session_over_owner_1call_2rules"]["limit"]
    owner, session = _number(headline.get("owner_tx_gas")), _number(headline.get("session_tx_gas"))
    # the most gas the session operation may cost and still meet the target: whole gas, rounded down
    allowed = None if owner is None else math.floor(Fraction(round(owner)) * Fraction(str(limit)))
    one = get(results, "e2e", "scenarios", "1") or {}
    return {
        "targets_table": table(["key", "target", "measured", "", "raw figures"], rows, "llrll"),
        "close_table": table(["key", "measured", "target"], close or [["none in this run", "—", "—"]], "lrl"),
        "missed_table": table(
            ["key", "measured", "target", "off by"], missed or [["none in this run", "—", "—", "—"]], "lrll"
        ),
        "headline_allowed": gas(allowed),
        "headline_session": gas(session),
        "headline_spare": gas(sub(allowed, session)),
        "headline_other_keys_ratio": fixed(get(results, "kinds", "keyscope", "tight", "tx_gas_ratio"), 5),
        "session_validation_extra": gas(
            sub(headline.get("session_validation_gas"), headline.get("owner_validation_gas"))
        ),
        "e2e_sdk_build_p50": ms(get(one, "sdk", "build_s", "p50")),
        "e2e_floor_p50": ms(get(one, "floor", "latency_s", "p50")),
        "e2e_tuned_ratio_1": fixed(get(one, "sdk_tuned", "p50_ratio_over_floor")),
        "e2e_tuned_build_p50": ms(get(one, "sdk_tuned", "build_s", "p50")),
        "e2e_tuned_ratio_20": fixed(
            get(results, "e2e", "scenarios", "20", "sdk_tuned", "p50_ratio_over_floor")
        ),
    }


def _gas_section(results: dict[str, Any]) -> Fields:
    g = results.get("gas") or {}
    rows_data = g.get("rows") or {}

    def row(label: str) -> dict[str, Any]:
        return rows_data.get(label) or {}

    owner = row("owner")
    out: Fields = {}
    headers = [
        "operation",
        "tx gas",
        "÷ owner",
        "actualGasUsed",
        "÷ owner",
        "validation",
        "module",
        "callGasLimit (Alto's)",
        "PVG",
        "penalty ≤",
    ]
    rows = []
    for label, name in [("owner", "owner (inline ECDSA)")] + [
        (f"session_{n}_rules", f"session, {n} rule{'s' if n != 1 else ''}") for n in RULE_COUNTS
    ]:
        r = row(label)
        rows.append(
            [
                name,
                gas(r.get("tx_gas")),
                fixed(div(r.get("tx_gas"), owner.get("tx_gas"))),
                gas(r.get("actual_gas_used")),
                fixed(div(r.get("actual_gas_used"), owner.get("actual_gas_used"))),
                gas(r.get("validation_gas")),
                gas(r.get("module_gas")) if label != "owner" else "—",
                f"{gas(r.get('call_gas_limit'))} ({gas(r.get('estimated_call_gas_limit'))})",
                gas(r.get("pre_verification_gas")),
                gas(r.get("penalty_bound")),
            ]
        )
    out["owner_vs_session_table"] = table(headers, rows)
    out["before_and_now_table"] = _before_after(row)
    limits = g.get("limits") or {}
    limit_names = {
        "limits_allowance": "an allowance on `count` over the session's life",
        "limits_allowance_daily": "an allowance on `count` per day (claimed time, 7 signature bytes)",
        "limits_count": "a call count over the session's life",
        "limits_each": "one of each: call count, rate per hour, daily total, operations per hour, gas budget",
    }
    out["limits_table"] = table(
        [
            "session, `mintBatch(to, 2)`, 2 rules on `count`, with",
            "tx gas",
            "extra tx gas",
            "module",
            "extra module",
            "signature bytes",
        ],
        [
            [
                "no limit (the `session, 2 rules on a uint256` row)",
                gas(row("session_2_word_rules").get("tx_gas")),
                "—",
                gas(row("session_2_word_rules").get("module_gas")),
                "—",
                str(row("session_2_word_rules").get("signature_bytes", "—")),
            ]
        ]
        + [
            [
                limit_names.get(label, label),
                gas(data.get("tx_gas")),
                signed_gas(data.get("extra_tx_gas")),
                gas(data.get("module_gas")),
                signed_gas(data.get("extra_module_gas")),
                str(data.get("signature_bytes", "—")),
            ]
            for label, data in limits.items()
        ],
    )
    zero, eight = row("session_0_rules"), row("session_8_rules")
    out["per_rule_gas"] = gas(div(sub(eight.get("module_gas"), zero.get("module_gas")), 8))
    out["session_pvg_extra"] = gas(
        sub(row("session_2_rules").get("pre_verification_gas"), owner.get("pre_verification_gas"))
    )
    rows = []
    for size in BATCH_SIZES:
        o, s = row(f"owner_batch_{size}"), row(f"session_batch_{size}")
        rows.append(
            [
                str(size),
                gas(o.get("tx_gas")),
                gas(s.get("tx_gas")),
                fixed(div(s.get("tx_gas"), o.get("tx_gas"))),
                gas(o.get("validation_gas")),
                gas(s.get("validation_gas")),
                gas(div(sub(s.get("validation_gas"), o.get("validation_gas")), size)),
            ]
        )
    out["batches_table"] = table(
        [
            "calls",
            "owner tx gas",
            "session tx gas",
            "÷ owner",
            "owner validation",
            "session validation",
            "session validation extra ÷ calls",
        ],
        rows,
    )
    first = g.get("first_use") or {}
    rows = [
        [
            "owner operation: `safeMint` (reference)",
            gas(owner.get("tx_gas")),
            gas(owner.get("actual_gas_used")),
            "1.000",
        ],
        [
            "off-chain grant: the session's first operation enables it (ENABLE) and mints",
            gas(row("session_enable_offchain").get("tx_gas")),
            gas(row("session_enable_offchain").get("actual_gas_used")),
            fixed(first.get("offchain_enable_over_owner_op")),
        ],
        [
            "on-chain grant: owner operation `enableSession` (2 rules)",
            gas(row("owner_enable_session").get("tx_gas")),
            gas(row("owner_enable_session").get("actual_gas_used")),
            fixed(div(row("owner_enable_session").get("tx_gas"), owner.get("tx_gas"))),
        ],
        [
            "… then the session's first `safeMint` (USE)",
            gas(row("session_after_onchain_grant").get("tx_gas")),
            gas(row("session_after_onchain_grant").get("actual_gas_used")),
            fixed(div(row("session_after_onchain_grant").get("tx_gas"), owner.get("tx_gas"))),
        ],
        [
            "on-chain grant + first use, together",
            gas(first.get("onchain_total_tx_gas")),
            gas(
                (row("owner_enable_session").get("actual_gas_used") or 0)
                + (row("session_after_onchain_grant").get("actual_gas_used") or 0)
                or None
            ),
            fixed(div(first.get("onchain_total_tx_gas"), owner.get("tx_gas"))),
        ],
        [
            "owner operation `revokeSession`",
            gas(row("owner_revoke_session").get("tx_gas")),
            gas(row("owner_revoke_session").get("actual_gas_used")),
            fixed(div(row("owner_revoke_session").get("tx_gas"), owner.get("tx_gas"))),
        ],
        [
            "session `safeMint` on a never-used nonce lane (lane 1)",
            gas(row("session_new_lane").get("tx_gas")),
            gas(row("session_new_lane").get("actual_gas_used")),
            fixed(div(row("session_new_lane").get("tx_gas"), owner.get("tx_gas"))),
        ],
    ]
    out["first_use_table"] = table(["operation", "tx gas", "actualGasUsed", "tx gas ÷ owner op"], rows)
    out["offchain_over_onchain"] = fixed(first.get("offchain_over_onchain_total"))
    out["lane_first_use_extra"] = gas(first.get("lane_first_use_extra_tx_gas"))
    scaling = g.get("scaling") or {}
    rows = [
        [
            str(n),
            gas(get(scaling, "validation_gas", str(n))),
            gas(get(scaling, "module_gas", str(n))),
            gas(get(scaling, "tx_gas", str(n))),
        ]
        for n in SESSION_COUNTS
    ]
    out["scaling_table"] = table(["sessions granted", "validation", "module", "tx gas"], rows)
    out["scaling_tx_gas_over_headline"] = signed_gas(
        sub(get(scaling, "tx_gas", "1"), row("session_2_rules").get("tx_gas"))
    )
    po, ps = row("owner_prefund_paid"), row("session_2_rules_prefund_paid")
    rows = [
        [
            "owner",
            gas(po.get("tx_gas")),
            gas(po.get("actual_gas_used")),
            gas(po.get("validation_gas")),
            "1.000",
        ],
        [
            "session, 2 rules",
            gas(ps.get("tx_gas")),
            gas(ps.get("actual_gas_used")),
            gas(ps.get("validation_gas")),
            fixed(div(ps.get("tx_gas"), po.get("tx_gas"))),
        ],
    ]
    out["prefund_table"] = table(
        ["operation", "tx gas", "actualGasUsed", "validation", "tx gas ÷ owner"], rows
    )
    route = g.get("route_check") or {}
    rows = []
    for label, name in (("owner", "owner"), ("session_2_rules", "session, 2 rules")):
        r = route.get(label) or {}
        rows.append(
            [
                name,
                gas(r.get("direct_actual_gas_used")),
                gas(r.get("alto_actual_gas_used")),
                gas(r.get("direct_tx_gas")),
                gas(r.get("alto_tx_gas")),
                gas(r.get("alto_bundle_ops")),
            ]
        )
    out["route_table"] = table(
        [
            "operation",
            "actualGasUsed, direct",
            "actualGasUsed, Alto",
            "tx gas, direct",
            "tx gas, Alto",
            "ops in Alto's bundle",
        ],
        rows,
    )
    return out


def _before_after(row: Callable[[str], dict[str, Any]]) -> str:
    """The rows of ``benchmarks/gas_before.json`` beside this run's."""
    if not BEFORE.exists():
        return NA
    before = json.loads(BEFORE.read_text(encoding="utf-8"))
    rows = []
    for label, name in BEFORE_AFTER:
        then, now = before["rows"].get(label) or {}, row(label)
        change = div(sub(now.get("tx_gas"), then.get("tx_gas")), then.get("tx_gas"))
        rows.append(
            [
                name,
                gas(then.get("tx_gas")),
                gas(now.get("tx_gas")),
                signed_gas(sub(now.get("tx_gas"), then.get("tx_gas"))),
                NA if change is None else f"{100 * change:+.2f} %",
                gas(then.get("module_gas")) if then.get("module_gas") is not None else "—",
                gas(now.get("module_gas")) if now.get("module_gas") is not None else "—",
            ]
        )
    headers = ["operation", "tx gas before", "tx gas now", "change", "", "module before", "module now"]
    return table(headers, rows)


def _bytes_section(results: dict[str, Any]) -> Fields:
    b = get(results, "gas", "bytes") or {}
    rows = [
        [
            "USE (an enabled session's operations)",
            gas(b.get("use_signature")),
            "the session key's ECDSA signature r‖s‖v",
        ],
        [
            "USE_WITH_KEY (gas estimation)",
            gas(b.get("use_with_key_signature")),
            "0x02 ‖ key (20) ‖ signature (65)",
        ],
        [
            "ENABLE, 2-rule session (first operation of an off-chain grant)",
            gas(b.get("enable_signature_2_rules")),
            "0x01 ‖ abi.encode(Session, ownerSignature, sessionSignature)",
        ],
        ["owner (reference)", gas(b.get("owner_signature")), "the owner's ECDSA signature"],
    ]
    calldata = [
        ["owner operation", gas(b.get("handle_ops_calldata_owner"))],
        ["session operation (USE)", gas(b.get("handle_ops_calldata_session"))],
        ["session's first operation (ENABLE, 2 rules)", gas(b.get("handle_ops_calldata_enable"))],
    ]
    return {
        "signature_bytes_table": table(["signature (`userOp.signature`)", "bytes", "layout"], rows, "lrl"),
        "calldata_table": table(["bundle of one", "bytes"], calldata),
    }


def _sdk_section(results: dict[str, Any]) -> Fields:
    sdk = results.get("sdk") or {}
    ours = get(sdk, "hot_path_ops_per_cpu_s", "keyscope") or []
    theirs = get(sdk, "hot_path_ops_per_cpu_s", "viem") or []
    ratios = sdk.get("hot_path_ratio_per_round") or []
    rounds = max(len(ours), 3)
    rows = [
        [str(i + 1), rate(get(ours, i)), rate(get(theirs, i)), fixed(get(ratios, i), 2)]
        for i in range(rounds)
    ]
    rows.append(
        [
            "**median**",
            rate(get(sdk, "hot_path_ops_per_cpu_s_median", "keyscope")),
            rate(get(sdk, "hot_path_ops_per_cpu_s_median", "viem")),
            fixed(sdk.get("ratio_over_viem"), 2),
        ]
    )
    same = sdk.get("same_bytes_as_viem")
    full = get(sdk, "full_path_ops_per_cpu_s") or {}
    full_rows = [
        [
            str(i + 1),
            rate(get(full, "keyscope", i)),
            rate(get(full, "viem", i)),
            rate(get(full, "viem_account", i)),
            fixed(div(get(full, "keyscope", i), get(full, "viem", i)), 2),
            fixed(div(get(full, "keyscope", i), get(full, "viem_account", i)), 2),
        ]
        for i in range(max(len(full.get("keyscope") or []), 3))
    ]
    medians = get(sdk, "full_path_ops_per_cpu_s_median") or {}
    full_rows.append(
        [
            "**median**",
            rate(medians.get("keyscope")),
            rate(medians.get("viem")),
            rate(medians.get("viem_account")),
            fixed(sdk.get("full_path_ratio_over_viem"), 2),
            fixed(sdk.get("full_path_ratio_over_viem_account"), 2),
        ]
    )
    full_same = sdk.get("full_path_same_bytes_as_viem")
    warm = sdk.get("warm_up_cpu_seconds")
    wall = get(sdk, "full_path_ops_per_s_median") or {}
    hot_wall = get(sdk, "hot_path_ops_per_s_median") or {}
    hot_cpu = get(sdk, "hot_path_ops_per_cpu_s_median") or {}

    def share(side: str) -> str:
        """The hot path's share of the full path's time per operation, both in CPU time."""
        value = div(medians.get(side), hot_cpu.get(side))
        return NA if value is None else f"{100 * value:.0f} %"

    return {
        "sdk_hot_share_viem": share("viem"),
        "sdk_hot_share_keyscope": share("keyscope"),
        "hot_path_wall": (
            f"In wall time the medians are {rate(hot_wall.get('keyscope'))} and {rate(hot_wall.get('viem'))} "
            f"operations/s: keyscope ÷ viem {fixed(sdk.get('hot_path_wall_ratio_over_viem'), 2)}."
        ),
        "full_path_wall": (
            f"In wall time (which adds whatever the machine's other processes took) the medians are "
            f"{rate(wall.get('keyscope'))}, {rate(wall.get('viem'))} and {rate(wall.get('viem_account'))} "
            f"operations/s: keyscope ÷ viem by hand {fixed(sdk.get('full_path_wall_ratio_over_viem'), 2)}."
        ),
        "sdk_full_same_bytes": "yes" if full_same else "no" if full_same is not None else NA,
        "sdk_warm_up": (
            f"a warm-up of {fixed(warm, 2)} s of its process's CPU time"
            if warm is not None
            else "a warm-up of 0.3 s of wall time (an older run's method: it left viem's code less warm)"
        ),
        "full_path_table": table(
            [
                "round",
                "keyscope ops per CPU s",
                "viem by hand",
                "viem account API",
                "keyscope ÷ viem by hand",
                "keyscope ÷ viem account API",
            ],
            full_rows,
        ),
        "sdk_operations": str(get(sdk, "operations") or NA),
        "sdk_seconds_per_round": fixed(sdk.get("seconds_per_round"), 1),
        "sdk_same_bytes": "yes" if same else "no" if same is not None else NA,
        "hot_path_table": table(
            [
                "round",
                "keyscope ops per CPU s",
                f"viem {sdk.get('viem_version') or ''} ops per CPU s",
                "keyscope ÷ viem",
            ],
            rows,
        ),
        "sdk_figures_table": table(
            ["other SDK figures (one core)", "median", "rounds"],
            [
                [
                    "`SessionAccount.build(call, nonce=...)` of a call built beforehand, nonce given, operations/s",
                    rate(sdk.get("full_build_ops_per_s_median")),
                    ", ".join(rate(x) for x in sdk.get("full_build_ops_per_s") or []) or NA,
                ],
                [
                    "`PolicyChecker.check`, 1 call, 2 rules, µs per call (CPU time of the process)",
                    fixed(sdk.get("policy_check_us_median"), 2),
                    ", ".join(fixed(x, 2) for x in sdk.get("policy_check_us") or []) or NA,
                ],
                [
                    "the same in wall time (adds what other processes took)",
                    fixed(sdk.get("policy_check_us_wall_median"), 2),
                    ", ".join(fixed(x, 2) for x in sdk.get("policy_check_us_wall") or []) or NA,
                ],
            ],
            "lrl",
        ),
    }


def _e2e_section(results: dict[str, Any]) -> Fields:
    e = results.get("e2e") or {}
    stack = results.get("stack") or {}
    rows = []
    for scenario in ("1", "20"):
        for client, name in E2E_CLIENTS:
            c = get(e, "scenarios", scenario, client) or {}
            rows.append(
                [
                    scenario,
                    name,
                    ms(get(c, "latency_s", "p50")),
                    ms(get(c, "latency_s", "p95")),
                    ms(get(c, "build_s", "p50")) if client != "floor" else "—",
                    rate(c.get("ops_per_s_median")),
                    fixed(c.get("p50_ratio_over_floor"), 2) if client != "floor" else "1.00",
                    fixed(c.get("p95_ratio_over_floor"), 2) if client != "floor" else "1.00",
                    gas(get(c, "latency_s", "n")),
                ]
            )
    calls = e.get("sdk_requests_per_op") or {}
    call_rows = [
        [f"`{method}`", fixed(info.get("per_op"), 1), fixed(info.get("ms_p50"), 1)]
        for method, info in calls.items()
    ] or [[NA, NA, NA]]
    interval = get(e, "scenarios", "1", "sdk", "p50_ratio_interval") or {}
    tuned_interval = get(e, "scenarios", "1", "sdk_tuned", "p50_ratio_interval") or {}
    if interval:
        low, high = interval.get("ci95") or [None, None]
        verdict = (
            "narrower than 0.09: it tells a ratio of 1.09 from 1.0"
            if interval.get("resolves")
            else (
                "wider than 0.09: **the ratio is noise-bound** at this sample size; it cannot tell 1.09 from 1.0 "
                f"(about {gas(interval.get('turns_needed'))} turns would make it narrow enough, if the noise stays "
                "as it is)"
            )
        )
        tl, th = tuned_interval.get("ci95") or [None, None]
        e2e_interval = (
            f"With 1 session, the SDK's p50 ÷ floor is {fixed(interval.get('p50_ratio'), 3)} over "
            f"{gas(interval.get('turns'))} turns; its 95 % confidence interval (paired bootstrap over turns, "
            f"{gas(10_000)} resamples: a turn's samples of both clients are drawn together, so that load common to a "
            f"turn cancels) is [{fixed(low, 3)}, {fixed(high, 3)}], {fixed(interval.get('ci95_width'), 3)} wide, "
            f"{verdict}. The tuned client's: [{fixed(tl, 3)}, {fixed(th, 3)}]. The median paired difference "
            f"(SDK minus floor, same turn) is {ms(interval.get('paired_difference_s_p50'))} ms. What the SDK itself adds "
            "is measured without that noise: its build time (the *build p50* column) and its requests (below)."
        )
    else:
        e2e_interval = "No confidence interval in these results (an older run): rerun `make bench`."
    polls = e.get("poll_seconds") or {}
    alto_args = f", alto_args={stack.get('alto_args')!r}" if stack.get("alto_args") else ""
    return {
        "alto_version": str(get(results, "versions", "alto") or ""),
        "stack_call": f"LocalStack(executors={stack.get('executors', NA)}{alto_args})",
        "poll_ms_1": ms(polls.get("1")),
        "poll_ms_20": ms(polls.get("20")),
        "e2e_table": table(
            [
                "sessions",
                "client",
                "p50",
                "p95",
                "build p50",
                "ops/s",
                "p50 ÷ floor",
                "p95 ÷ floor",
                "samples",
            ],
            rows,
            "llrrrrrrr",
        ),
        "requests_table": table(["method", "per operation", "p50 ms"], call_rows),
        "e2e_interval": e2e_interval,
    }


def _kinds_section(results: dict[str, Any]) -> Fields:
    k = results.get("kinds") or {}
    rows = []
    for kind in KINDS:
        entry = k.get(kind) or {}
        tight = entry.get("tight") or {}
        adapter = entry.get("adapter_figures") or {}
        o, s = tight.get("owner") or {}, tight.get("session") or {}
        rows.append(
            [
                KIND_NAMES[kind],
                gas(o.get("tx_gas")),
                gas(s.get("tx_gas")),
                fixed(tight.get("tx_gas_ratio")),
                gas(o.get("validation_gas")),
                gas(s.get("validation_gas")),
                gas(s.get("module_gas")),
                gas(adapter.get("owner")),
                gas(adapter.get("session")),
                fixed(adapter.get("ratio")),
                gas(adapter.get("first_use_extra")),
            ]
        )
    errors = [
        f"* {KIND_NAMES[kind]}: {part}: {(k.get(kind) or {}).get(part, {}).get('error')}"
        for kind in KINDS
        for part in ("tight", "adapter_figures")
        if isinstance((k.get(kind) or {}).get(part), dict) and (k.get(kind) or {}).get(part, {}).get("error")
    ]
    return {
        "kinds_table": table(
            [
                "account",
                "owner tx gas",
                "session tx gas",
                "÷ owner",
                "owner validation",
                "session validation",
                "module",
                "adapter: owner",
                "adapter: session",
                "adapter: ÷ owner",
                "adapter: first-use extra",
            ],
            rows,
        ),
        "kinds_errors": "\n" + "\n".join(errors) + "\n" if errors else "",
    }


def _comparison_section(results: dict[str, Any]) -> Fields:
    headline = get(results, "gas", "headline") or {}
    rows_data = get(results, "gas", "rows") or {}
    owner_tx = get(rows_data, "owner", "tx_gas")
    zero_ratio = div(get(rows_data, "session_0_rules", "tx_gas"), owner_tx)
    scaling = get(results, "gas", "scaling") or {}
    growth = sub(get(scaling, "validation_gas", "100"), get(scaling, "validation_gas", "1"))
    first = get(results, "gas", "first_use") or {}
    kinds = results.get("kinds") or {}
    kind_ratios = [get(kinds, kind, "tight", "tx_gas_ratio") for kind in ("kernel", "nexus", "safe7579")]
    kind_ratios_text = ", ".join(fixed(x) for x in kind_ratios)
    module_zero = get(rows_data, "session_0_rules", "module_gas")
    rows = [
        [
            "session ÷ owner, handleOps tx gas, 2 rules",
            f"{fixed(headline.get('tx_gas_ratio'))} (Kernel, Nexus, Safe7579: {kind_ratios_text})",
            f"{OTHERS['biconomy_ratio_2_rules']}",
            f"{OTHERS['smart_sessions_ratio_ecdsa']} (its ECDSA validator as signer), {OTHERS['smart_sessions_ratio_minimal']} (minimal signer)",
            "—",
        ],
        ["same, 0 rules", fixed(zero_ratio), f"{OTHERS['biconomy_ratio_0_rules']}", "—", "—"],
        [
            "validation gas, session ÷ owner",
            fixed(headline.get("validation_gas_ratio"), 2),
            f"{OTHERS['biconomy_validation_ratio']}",
            f"{OTHERS['smart_sessions_validation_ratio']}",
            "—",
        ],
        [
            "USE signature, bytes",
            gas(get(results, "gas", "bytes", "use_signature")),
            "640 (2 rules), 544 (0 rules), + 32 per Merkle level",
            "98",
            "Kernel permissions ≥ 66; Alchemy session keys 65",
        ],
        [
            "validation as sessions grow",
            f"{signed_gas(growth)} gas from 1 to 100 sessions",
            "+~850 gas per doubling",
            "flat",
            "—",
        ],
        [
            "first operation carrying the grant ÷ an owner operation",
            f"{fixed(first.get('offchain_enable_over_owner_op'), 2)} (÷ an owner operation on the same warm state); "
            f"{fixed(get(results, 'gas_decomposition', 'first_op', 'ratio'), 2)} (a new account's first operation, "
            "which creates it, ÷ the owner's first operation)",
            "—",
            f"{OTHERS['smart_sessions_first_op_ratio']} (÷ the owner's first operation)",
            "—",
        ],
        [
            "enabling a 2-rule session on chain, gas",
            f"{gas(get(rows_data, 'owner_enable_session', 'tx_gas'))} (the whole owner operation)",
            "—",
            f"~{OTHERS['smart_sessions_enable_onchain_gas']:,}",
            "—",
        ],
    ]
    return {
        "comparison_table": table(
            [
                "",
                "keyscope (this run)",
                "Biconomy v2 session keys (others; EntryPoint v0.6)",
                "Smart Sessions (others; ERC-7579, v0.7, reference account)",
                "published elsewhere",
            ],
            rows,
            "lllll",
        ),
        "kind_ratios": kind_ratios_text,
        "owner_validation_gas": gas(headline.get("owner_validation_gas")),
        "smart_sessions_first_op_ratio": str(OTHERS["smart_sessions_first_op_ratio"]),
        "floor_ecrecover": gas(FLOOR_GAS["ecrecover"]),
        "floor_cold_sload": gas(FLOOR_GAS["cold_sload"]),
        "floor_signature_calldata": gas(FLOOR_GAS["signature_calldata"]),
        "floor_total": gas(sum(FLOOR_GAS.values())),
        "module_gas_0_rules": gas(module_zero),
        "account_call_gas": gas(sub(get(rows_data, "session_0_rules", "validation_gas"), module_zero)),
    }


def _settings_section(results: dict[str, Any]) -> Fields:
    machine = results.get("machine") or {}
    versions = results.get("versions") or {}
    stack = results.get("stack") or {}
    rows = [
        [
            "generated",
            str(results.get("generated_at", NA)) + (" (quick run)" if results.get("quick") else ""),
        ],
        ["machine", f"{machine.get('cpu', NA)}, {machine.get('cpus', NA)} CPUs, {machine.get('system', NA)}"],
        [
            "load average at start",
            ", ".join(str(x) for x in machine.get("load_average_at_start") or []) or NA,
        ],
        ["Python", str(machine.get("python", NA))],
        ["node", str(versions.get("node", NA))],
        ["anvil", str(versions.get("anvil", NA))],
        ["Alto", str(versions.get("alto", NA))],
        ["viem", str(versions.get("viem", NA))],
        [
            "EntryPoint",
            f"v{versions.get('entry_point', NA)} (`@account-abstraction/contracts`), canonical address",
        ],
        [
            "local stack",
            f"`LocalStack({', '.join(f'{k}={v!r}' for k, v in stack.items() if k != 'startup_seconds')})`, started in {stack.get('startup_seconds', NA)} s",
        ],
        ["whole run", f"{results.get('seconds', NA)} s"],
    ]
    merged = results.get("merged_from")
    if merged:
        # a run of some parts (--merge): the others' figures are an earlier run's, on its own machine state
        rows.append(
            [
                "parts from an earlier run",
                f"{', '.join(merged.get('parts') or []) or NA} (generated {merged.get('generated_at', NA)}); "
                "the rows above describe the run of the other parts (a part run without the stack parts before "
                "it starts from another chain state, so the gas figures of such a run can differ from a full run's)",
            ]
        )
    return {"run_table": table(["", ""], rows, "ll")}


def _scale_workers(row: dict[str, Any]) -> str:
    starved = row.get("starved") or 0
    workers = str(row.get("workers", NA))
    return (
        f"{workers} ({starved} starved, {row.get('starved_lanes_lost', 0)} lanes lost)"
        if starved
        else workers
    )


def _scale_section(results: dict[str, Any]) -> Fields:
    scale = results.get("scale") or {}
    settings = scale.get("settings") or {}
    rows = [
        [
            str(row.get("store", NA)),
            _scale_workers(row),
            str(row.get("operations", NA)),
            fixed(row.get("ops_per_second"), 1),
            fixed(row.get("latency_p50_s"), 2),
            fixed(row.get("latency_p95_s"), 2),
            str(row.get("lanes", "")),
            str(row.get("resent", "")),
        ]
        for row in scale.get("rows") or []
    ] or [[NA] * 8]
    return {
        "scale_operations": str(settings.get("operations_per_configuration", NA)),
        "scale_sessions": str(settings.get("sessions", NA)),
        "scale_table": table(
            [
                "store",
                "workers",
                "operations",
                "ops/s",
                "latency p50 (s)",
                "latency p95 (s)",
                "lanes",
                "resent",
            ],
            rows,
        ),
    }


_SHAPE_NAMES = {
    "nft_mint": "NFT `safeMint(to)` (a new token)",
    "erc20_transfer": "ERC-20 `transfer(to, amount)`",
    "erc721_transfer_from": "ERC-721 `transferFrom(account, to, id)` of a token the account owns",
}


def _snapshot_section(results: dict[str, Any]) -> Fields:
    """The call shapes of the committed gas snapshot (read from its file, not from ``results``)."""
    if not SNAPSHOT.is_file():
        return {"snapshot_shapes_table": "No gas snapshot committed.", "snapshot_rows": NA}
    snapshot = json.loads(SNAPSHOT.read_text())
    rows = snapshot.get("rows") or {}
    shape_rows = []
    pairs = {
        "nft_mint": ("owner", "session_2_rules"),
        "erc20_transfer": ("owner_erc20_transfer", "session_erc20_transfer_2_rules"),
        "erc721_transfer_from": ("owner_erc721_transfer_from", "session_erc721_transfer_from_2_rules"),
    }
    for shape, (owner, session) in pairs.items():
        o, s_ = rows.get(owner) or {}, rows.get(session) or {}
        shape_rows.append(
            [
                _SHAPE_NAMES[shape],
                gas(o.get("tx_gas")),
                gas(s_.get("tx_gas")),
                signed_gas(sub(s_.get("tx_gas"), o.get("tx_gas"))),
                fixed(div(s_.get("tx_gas"), o.get("tx_gas")), 4),
                fixed(div(s_.get("actual_gas_used"), o.get("actual_gas_used")), 4),
            ]
        )
    return {
        "snapshot_rows": str(len(rows)),
        "snapshot_shapes_table": table(
            [
                "call shape",
                "owner tx gas",
                "session tx gas",
                "extra",
                "tx gas ÷ owner",
                "actualGasUsed ÷ owner",
            ],
            shape_rows,
            "lrrrrr",
        ),
    }


def _shapes_section(results: dict[str, Any]) -> Fields:
    """The call shapes on anvil (tight limits): keyscope's account, then each other account kind."""
    sources = [("keyscope (this page's account)", get(results, "gas", "shapes"))]
    for kind, entry in (results.get("kinds") or {}).items():
        if kind != "keyscope":
            sources.append((kind, get(entry, "tight", "shapes")))
    rows = []
    for account, shapes in sources:
        for shape, figures in ((shapes or {}).get("per_shape") or {}).items():
            rows.append(
                [
                    account,
                    _SHAPE_NAMES.get(shape, shape),
                    gas(figures.get("owner_tx_gas")),
                    gas(figures.get("session_tx_gas")),
                    fixed(figures.get("tx_gas_ratio"), 4),
                    gas(figures.get("owner_validation_gas")),
                    gas(figures.get("session_validation_gas")),
                ]
            )
    if not rows:
        return {"shapes_table": "Not measured in these results (an older run): rerun `make bench`."}
    return {
        "shapes_table": table(
            [
                "account",
                "call shape",
                "owner tx gas",
                "session tx gas",
                "÷ owner",
                "owner validation",
                "session validation",
            ],
            rows,
            "llrrrrr",
        )
    }


_STEP_NAMES = {
    "intrinsic": "transaction: 21,000 and the calldata",
    "entry_point": "EntryPoint: around validation and execution",
    "proxy": "account: the clone's delegatecall (cold implementation)",
    "dispatch": "account: `validateUserOp`'s dispatch",
    "lookup": "account: installed-validator lookup (cold read)",
    "owner_hash": "owner: the hash and the signature's decoding",
    "call_copy": "session: the call's set-up, ABI copy of the operation",
    "call": "session: the call into the module (cold account)",
    "module_entry": "module: dispatch and the signature's decoding",
    "ecrecover": "ecrecover (3,000 + warm access 100)",
    "owner_read_prep": "owner: between ecrecover and the owner's read",
    "owner_read": "owner: the owner's slot (cold read)",
    "call_decode": "module: the call's decoding, the permission's slot",
    "header_read": "module: permission header (cold read)",
    "header_decode": "module: the header's checks",
    "rule_1_read": "module: rule word 1 (cold read)",
    "rule_1_check": "module: rule 1's check",
    "rule_2_read": "module: rule word 2 (cold read)",
    "other_reads": "module: further words",
    "tail": "module: rule 2's check, gas cap, validation data, limits check, return",
    "after_call": "session: the answer, prefund check, return",
    "owner_tail": "owner: the verdict, prefund check, return",
    "execution": "execution (`innerHandleOp`)",
}
_FIRST_OP_PARTS = (
    ("intrinsic", "transaction: 21,000 and the calldata"),
    ("creation", "creation: the factory, the clone, `initialize`"),
    ("module_install", "… of which the module's `onInstall`"),
    ("validation", "validation (the account's `validateUserOp`)"),
    ("module_validation", "… of which the module (ENABLE: the grant, then the check)"),
    ("execution", "execution (`innerHandleOp`)"),
    ("entry_point", "EntryPoint: around validation and execution"),
)
_ENABLE_KINDS = (
    ("fresh_slot_writes", "fresh slots written (20,000 each, and the slot's first, cold access)"),
    ("other_writes", "other writes (the account's counters, warm)"),
    ("reads", "other storage reads"),
    (
        "account_calls",
        "calls back into the account (`isValidSignature`, 4 module-target checks, 1 fallback-handler check)",
    ),
    ("other_calls", "calls to the signature verifier (the grant's EIP-712 hash, the rules' encoding)"),
    ("delegatecall", "the module's DELEGATECALL into its grant side (the call's own cost)"),
    ("ecrecover", "ecrecover (the session key)"),
    ("code", "the module's own code, its grant side's included (decoding the grant, checks, events)"),
)


def _decomposition_section(results: dict[str, Any]) -> Fields:
    """The session's extra gas per step (three shapes), the floor, and the first operation's parts."""
    found = results.get("gas_decomposition") or {}
    shapes = found.get("shapes") or {}
    names = [shape for shape in ("nft_mint", "erc20_transfer", "erc721_transfer_from") if shape in shapes]
    if not names:
        missing = "Not measured in these results: rerun `make bench`."
        return dict.fromkeys(
            (
                "decomposition_table",
                "floor_table",
                "first_op_table",
                "first_op_enable_table",
                "grant_slots_table",
                "prototype_table",
            ),
            missing,
        ) | dict.fromkeys(_DECOMPOSITION_FIGURES, NA)
    mint = shapes["nft_mint"]
    rows = []
    for step, label in _STEP_NAMES.items():
        owner = get(mint, "owner_steps", step)
        session = get(mint, "session_steps", step)
        rows.append(
            [label, gas(owner), gas(session)]
            + [signed_gas(get(shapes[name], "extra", step)) for name in names]
        )
    rows.append(
        ["**total: handleOps transaction gas**", gas(mint["owner_tx_gas"]), gas(mint["session_tx_gas"])]
        + [signed_gas(shapes[name]["extra_total"]) for name in names]
    )
    rows.append(["**session ÷ owner**", "", ""] + [fixed(shapes[name]["tx_gas_ratio"], 4) for name in names])
    floor_rows = []
    for name in names:
        floor = shapes[name]["floor"]
        floor_rows.append(
            [
                _SHAPE_NAMES.get(name, name),
                gas(shapes[name]["owner_tx_gas"]),
                signed_gas(floor["extra_now"]),
                fixed(shapes[name]["tx_gas_ratio"], 4),
                gas(floor["allowed_extra_at_1_05"]),
                signed_gas(floor["extra"]),
                fixed(floor["ratio"], 4),
                signed_gas(floor.get("extra_two_words")),
                fixed(floor.get("ratio_two_words"), 4),
                signed_gas(floor["extra_without_module_call"]),
                fixed(floor["ratio_without_module_call"], 4),
                gas(floor["to_cut_for_1_05"]),
            ]
        )
    prototype = found.get("prototype") or {}
    prototype_rows = [
        [
            _SHAPE_NAMES.get(name, name),
            fixed(prototype[name]["keyscope_ratio"], 4),
            gas(prototype[name]["owner_tx_gas"]),
            gas(prototype[name]["prototype_tx_gas"]),
            signed_gas(prototype[name]["prototype_extra"]),
            gas(prototype[name]["allowed_extra_at_1_05"]),
            fixed(prototype[name]["prototype_ratio"], 4),
            fixed(prototype[name]["signature_bytes"], 0),
            gas(prototype[name]["frame_code_gas"]),
            fixed(prototype[name]["ratio_with_warm_call"], 4),
        ]
        for name in names
        if name in prototype
    ]
    proto_names = [name for name in names if name in prototype]
    first = found.get("first_op") or {}
    first_rows = [
        [label, gas(get(first, "owner_parts", part)), gas(get(first, "session_parts", part))]
        for part, label in _FIRST_OP_PARTS
    ]
    first_rows.append(["**total**", gas(first.get("owner_tx_gas")), gas(first.get("session_tx_gas"))])
    enable_rows = [
        [label, gas(get(first, "session_parts", "module_validation_breakdown", kind))]
        for kind, label in _ENABLE_KINDS
    ]
    slot_rows = [
        [
            write["slot"].split(" [")[0],
            gas(write["gas"]),
            "yes" if write["fresh"] else "no",
            "yes" if write["read_by_validation"] else "**no**",
        ]
        for write in first.get("grant_writes") or []
    ]
    zero = found.get("nft_mint_0_rules") or {}
    per_rule = sub(mint["extra_total"], zero.get("extra_total"))
    floor_mint = mint["floor"]["parts"]
    module_code = sum(
        get(mint, "session_steps", step) or 0
        for step in ("module_entry", "call_decode", "header_decode", "rule_1_check", "tail")
    )
    owner_code = sum(
        get(mint, "owner_steps", step) or 0 for step in ("owner_hash", "owner_read_prep", "owner_tail")
    )
    budgets = [
        shapes[name]["floor"]["allowed_extra_at_1_05"] - shapes[name]["floor"]["extra"] for name in names
    ]
    return {
        "decomposition_table": table(
            ["step", "owner (mint)", "session (mint)"] + [f"extra: {name}" for name in names], rows
        ),
        "floor_table": table(
            [
                "call shape",
                "owner tx gas",
                "session extra now",
                "÷ owner now",
                "extra allowed at 1.05",
                "floor extra",
                "floor ÷ owner",
                "floor extra, 2 words",
                "÷ owner",
                "floor extra, no module call",
                "÷ owner",
                "to cut for 1.05",
            ],
            floor_rows,
            "lrrrrrrrrrrr",
        ),
        "first_op_table": table(
            ["part", "owner's first operation", "session's first operation (ENABLE)"], first_rows
        ),
        "first_op_enable_table": table(["the module's ENABLE validation", "gas"], enable_rows),
        "prototype_table": table(
            [
                "call shape",
                "keyscope's session ÷ owner",
                "owner tx gas",
                "prototype tx gas",
                "extra",
                "extra allowed at 1.05",
                "prototype ÷ owner",
                "its signature (bytes)",
                "its frame's code",
                "÷ owner, the call warm",
            ],
            prototype_rows,
            "lrrrrrrrrr",
        )
        if prototype_rows
        else "Not measured in these results: rerun `make bench`.",
        "proto_missed": ", ".join(
            f"{_SHAPE_NAMES.get(name, name)} ({fixed(prototype[name]['prototype_ratio'], 4)})"
            for name in proto_names
            if prototype[name]["prototype_extra"] > prototype[name]["allowed_extra_at_1_05"]
        )
        or "no shape",
        "proto_max": fixed(
            max((prototype[name]["prototype_ratio"] for name in proto_names), default=None), 4
        ),
        "proto_code_beyond": " to ".join(
            gas(f(prototype[name]["code_beyond_owner"] for name in proto_names)) for f in (min, max)
        )
        if proto_names
        else NA,
        "proto_warm_max": fixed(
            max((prototype[name]["ratio_with_warm_call"] for name in proto_names), default=None), 4
        ),
        "grant_slots_table": table(
            [
                "slot the grant writes",
                "SSTORE gas",
                "fresh (zero to nonzero)",
                "read by a later USE validation",
            ],
            slot_rows,
            "lrll",
        ),
        "dec_extra_mint": gas(mint["extra_total"]),
        "dec_zero_rule_extra": gas(zero.get("extra_total")),
        "dec_per_rule": gas(None if per_rule is None else per_rule / 2),
        "dec_module_frame": gas(mint.get("module_frame_gas")),
        "dec_nonce_key": gas(floor_mint["calldata"]),
        "dec_cold_access": gas(floor_mint["module_cold_access"]),
        "dec_call_copy": gas(floor_mint["call_copy"]),
        "dec_lookup": gas(get(mint, "owner_steps", "lookup")),
        "dec_max_floor_ratio": fixed(found.get("max_floor_ratio"), 4),
        "dec_two_word_ratios": ", ".join(
            f"{name} {fixed(shapes[name]['floor'].get('ratio_two_words'), 4)}" for name in names
        ),
        "dec_two_word_unreachable": ", ".join(
            _SHAPE_NAMES.get(name, name)
            for name in names
            if shapes[name]["floor"].get("reachable_two_words") is False
        )
        or "none",
        "dec_module_code": gas(module_code),
        "dec_module_entry": gas(get(mint, "session_steps", "module_entry")),
        "dec_call_decode": gas(get(mint, "session_steps", "call_decode")),
        "dec_tail_range": " to ".join(
            gas(f(get(shapes[name], "session_steps", "tail") or 0 for name in names)) for f in (min, max)
        ),
        "dec_owner_code": gas(owner_code),
        "dec_code_margin": gas(module_code - owner_code),
        "dec_budget_min": gas(min(budgets)),
        "dec_budget_max": gas(max(budgets)),
        "dec_mint_two_word_budget": gas(
            None
            if mint["floor"].get("extra_two_words") is None
            else mint["floor"]["allowed_extra_at_1_05"] - mint["floor"]["extra_two_words"]
        ),
        "first_op_ratio": fixed(first.get("ratio"), 4),
        "first_op_owner": gas(first.get("owner_tx_gas")),
        "first_op_session": gas(first.get("session_tx_gas")),
        "first_op_fresh": fixed(first.get("grant_fresh_slots"), 0),
        "first_op_unread": fixed(first.get("grant_fresh_slots_unread"), 0),
        "first_op_unread_gas": gas(first.get("grant_fresh_slots_unread_gas")),
        "first_op_slot_cost": gas(first.get("fresh_slot_cost")),
        "first_op_without_unread": fixed(first.get("ratio_without_unread_slots"), 4),
        "first_op_rules_in_header": fixed(first.get("ratio_without_unread_slots_rules_in_header"), 4),
        "first_op_allowed": gas(first.get("allowed_session_tx_gas_at_1_35")),
        "first_op_to_cut": gas(first.get("to_cut_for_1_35")),
        "first_op_calldata_extra": gas(
            sub(get(first, "session_parts", "intrinsic"), get(first, "owner_parts", "intrinsic"))
        ),
    }


_DECOMPOSITION_FIGURES = (
    "proto_missed",
    "proto_max",
    "proto_code_beyond",
    "proto_warm_max",
    "dec_extra_mint",
    "dec_zero_rule_extra",
    "dec_per_rule",
    "dec_module_frame",
    "dec_nonce_key",
    "dec_cold_access",
    "dec_call_copy",
    "dec_lookup",
    "dec_max_floor_ratio",
    "dec_two_word_ratios",
    "dec_two_word_unreachable",
    "dec_module_code",
    "dec_module_entry",
    "dec_call_decode",
    "dec_tail_range",
    "dec_owner_code",
    "dec_code_margin",
    "dec_budget_min",
    "dec_budget_max",
    "dec_mint_two_word_budget",
    "first_op_ratio",
    "first_op_owner",
    "first_op_session",
    "first_op_fresh",
    "first_op_unread",
    "first_op_unread_gas",
    "first_op_slot_cost",
    "first_op_without_unread",
    "first_op_rules_in_header",
    "first_op_allowed",
    "first_op_to_cut",
    "first_op_calldata_extra",
)


def markdown(results: dict[str, Any]) -> str:
    """docs/benchmarks.md for ``results``: the template with every field filled in."""
    sections: list[Callable[[dict[str, Any]], Fields]] = [
        _targets_section,
        _gas_section,
        _snapshot_section,
        _shapes_section,
        _decomposition_section,
        _bytes_section,
        _sdk_section,
        _e2e_section,
        _kinds_section,
        _scale_section,
        _comparison_section,
        _settings_section,
    ]
    fields: Fields = {}
    for section in sections:
        fields.update(section(results))
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(fields).rstrip() + "\n"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write(results: dict[str, Any]) -> None:
    """Write benchmarks/results.json and docs/benchmarks.md."""
    results = _clean(results)
    results["targets"] = _clean(targets(results))
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    DOC.write_text(markdown(results), encoding="utf-8")
