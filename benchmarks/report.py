"""Turn the benchmark results into ``benchmarks/results.json`` and ``docs/benchmarks.md``.

The document has the same sections, tables, rows and columns on every run; only the figures change (a part
that was skipped or failed shows ``n/a``). ``python benchmarks/run.py --report-only`` rewrites the document
from the stored results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from common import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results.json"
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
    """The six targets: value, limit, whether met, and the raw figures behind each ratio."""
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
                "keyscope_ops_per_s_median": get(sdk, "hot_path_ops_per_s_median", "keyscope"),
                "viem_ops_per_s_median": get(sdk, "hot_path_ops_per_s_median", "viem"),
                "same_bytes": sdk.get("same_bytes_as_viem"),
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
            },
        ),
    }


def _met(entry: dict[str, Any]) -> str:
    return {True: "met", False: "**missed**", None: NA}[entry.get("met")]


def _miss(entry: dict[str, Any]) -> str:
    """How far off a missed target is, in words."""
    value, limit = entry.get("value"), entry["limit"]
    if value is None:
        return "not measured"
    if entry["op"] == "<=":
        return f"{value:.3g} against at most {limit:g}: {100 * (value / limit - 1):.0f} % over"
    return f"{value:.3g} against at least {limit:g}: {100 * (1 - value / limit):.0f} % short"


# -- the document ---------------------------------------------------------------------------------------------


def _raw_summary(key: str, entry: dict[str, Any]) -> str:
    raw = entry.get("raw") or {}
    if key == "gas_ratio_session_over_owner_1call_2rules":
        return f"{gas(raw.get('session_tx_gas'))} / {gas(raw.get('owner_tx_gas'))} gas"
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
            f"{rate(raw.get('keyscope_ops_per_s_median'))} / {rate(raw.get('viem_ops_per_s_median'))} ops/s"
        )
    if key == "policy_check_us":
        rounds = ", ".join(fixed(x, 2) for x in raw.get("rounds_us") or [])
        return f"CPU time, median of {rounds} µs (wall: {fixed(raw.get('wall_median_us'), 2)} µs)"
    return f"{ms(raw.get('sdk_p50_s'))} / {ms(raw.get('floor_p50_s'))} ms"


def _targets_section(results: dict[str, Any]) -> list[str]:
    found = targets(results)
    rows = []
    for key, entry in found.items():
        digits = {
            "use_signature_bytes": 0,
            "policy_check_us": 2,
            "gas_ratio_session_over_owner_1call_2rules": 4,
        }.get(key, 3)
        rows.append(
            [
                f"`{key}`",
                entry["target"],
                fixed(entry.get("value"), digits),
                _met(entry),
                _raw_summary(key, entry),
            ]
        )
    out = [
        "## Targets",
        "",
        table(["key", "target", "measured", "", "raw figures"], rows, "llrll"),
        "",
    ]
    close = [
        key
        for key, entry in found.items()
        if entry.get("met")
        and entry.get("value") is not None
        and abs(entry["value"] / entry["limit"] - 1) < 0.01
    ]
    out += ["### Met within 1 % of the limit", ""]
    if not close:
        out += ["None in this run.", ""]
    for key in close:
        out += [f"**`{key}`**: {_close(key, found[key], results)}", ""]
    missed = [key for key, entry in found.items() if entry.get("met") is False]
    out += ["### Missed targets", ""]
    if not missed:
        out += ["None in this run.", ""]
    for key in missed:
        out += [f"**`{key}`**: {_miss(found[key])}.", "", _why(key, results), ""]
    return out


def _close(key: str, entry: dict[str, Any], results: dict[str, Any]) -> str:
    """What a target met by a hair means, and where to find room."""
    value, limit = entry["value"], entry["limit"]
    text = f"{value:.5f} against {limit:g}."
    if key == "gas_ratio_session_over_owner_1call_2rules":
        raw = entry.get("raw") or {}
        owner, session = _number(raw.get("owner_tx_gas")), _number(raw.get("session_tx_gas"))
        if owner is not None and session is not None:
            text += (
                f" The session operation may cost {gas(owner * limit)} gas; it costs {gas(session)}, "
                f"{gas(owner * limit - session)} to spare: any gas added to the USE path misses the target, and the "
                "zero bytes of other keys' signatures and addresses move transaction gas by about a dozen gas "
                "(the KeyscopeAccount row of the other-accounts table, the same method with other keys: "
                f"{fixed(get(results, 'kinds', 'keyscope', 'tight', 'tx_gas_ratio'), 5)}). "
                "Room: each rule is one cold storage read (2,100 gas) of a 32-byte word; packing small reference "
                "values two to a word, or committing to a hash of the permission and carrying its rules in the "
                "signature, trades those reads for calldata (a longer signature). The other large item is the "
                "account's call into the module (a cold account access, 2,600 gas, and the copy of the operation): "
                "see the floor at the end of the comparison section."
            )
    return text


def _why(key: str, results: dict[str, Any]) -> str:
    """Why a target was missed and what would fix it, from the figures of this run."""
    if key == "e2e_p50_ratio_over_floor":
        one = get(results, "e2e", "scenarios", "1") or {}
        calls = get(results, "e2e", "sdk_requests_per_op") or {}
        before = [
            f"`{method}` x{fixed(info.get('per_op'), 1)} ({fixed(info.get('ms_p50'), 1)} ms)"
            for method, info in calls.items()
            if method not in ("eth_sendUserOperation", "eth_getUserOperationReceipt")
        ]
        return (
            "Why: the floor only sends and polls; the SDK's `SessionAccount.build` first makes "
            f"{len(before)} kinds of request to the node and the bundler for every operation — "
            + ", ".join(before)
            + f" (p50 durations) — so its build alone takes {ms(get(one, 'sdk', 'build_s', 'p50'))} ms at p50 "
            f"against a floor latency of {ms(get(one, 'floor', 'latency_s', 'p50'))} ms. The bundler's gas "
            "estimate is the largest part: Alto simulates the whole operation for it.\n\n"
            "Proposed change (in `src/keyscope/session_account.py` and `src/keyscope/operations.py`, which this "
            "work did not touch): (1) keep the bundler's gas estimate per call shape (sender, callData, signature "
            "mode) for the life of a `SessionAccount`, re-estimating only when an operation is rejected for gas "
            "(AA13/AA23/AA40/AA41/AA95-type errors) or the callData changes; (2) keep the fee quote for a few "
            "seconds; (3) count the nonce locally per lane after the first read (the store already keeps nonce "
            "lanes), re-reading it after an AA25 rejection; (4) read the session status and the chain clock at "
            "most every few seconds (or in one JSON-RPC batch with the nonce) instead of before every operation. "
            "The *SDK, tuned* client does exactly this through public options (a caching `Bundler` wrapper, "
            "`clock=time.time`, `verify_on_chain=False`, `build(nonce=...)`): its p50 ratio is "
            f"{fixed(get(one, 'sdk_tuned', 'p50_ratio_over_floor'))} in this run "
            f"({ms(get(one, 'sdk_tuned', 'build_s', 'p50'))} ms to build; "
            f"{fixed(get(results, 'e2e', 'scenarios', '20', 'sdk_tuned', 'p50_ratio_over_floor'))} with 20 sessions). "
            "What remains between it and the floor is the SDK's send and receipt handling (about a millisecond of "
            "Python) and the noise of a shared machine: the bundler's 10-50 ms bundling and 25 ms receipt polling "
            "make single latencies vary by tens of milliseconds."
        )
    if key == "gas_ratio_session_over_owner_1call_2rules":
        headline = get(results, "gas", "headline") or {}
        return (
            "Why: the session path adds the module call (a cold account access, 2,600 gas, and the copy of the "
            "UserOperation) and one cold storage read per permission header and rule word (2,100 each) to the "
            f"owner's inline ECDSA check: {gas(sub(headline.get('session_validation_gas'), headline.get('owner_validation_gas')))} "
            "gas of validation over the owner's. Proposed: pack several small rules into one storage word, or "
            "keep only a hash of the rules on chain and carry the rules in the signature (one read for all)."
        )
    if key == "sdk_ops_per_s_ratio_over_viem":
        return (
            "Why: see the SDK section; the hot path is `UserOperation.pack()` (pydantic), two keccaks and one "
            "libsecp256k1 signature. Proposed: pack into bytes without building the intermediate pydantic model."
        )
    if key == "policy_check_us":
        return "Why: see the SDK section. Proposed: compile each permission's rules into one tuple of slices."
    if key == "validation_gas_ratio_100_over_1_sessions":
        return "Why: validation reads grew with the number of sessions; see the scaling table."
    return "Why: see the Bytes section."


def _gas_section(results: dict[str, Any]) -> list[str]:
    g = results.get("gas") or {}
    rows_data = g.get("rows") or {}

    def row(label: str) -> dict[str, Any]:
        return rows_data.get(label) or {}

    owner = row("owner")
    out = [
        "## Gas",
        "",
        "Measured on anvil with the real EntryPoint v0.7 (`handleOps`), keyscope's `KeyscopeAccount` (owner ECDSA "
        "built in) and `SessionKeyValidator`, calling `DemoNFT.safeMint(to)` with `to` a fixed EOA. How:",
        "",
        "* **Identical state.** Every operation runs from the same chain state: `evm_snapshot` before, `evm_revert` "
        "after. The account exists and both nonce lanes (the owner's and the module's lane 0) were used once before, "
        "so no figure pays a lane's first nonce write (that costs the *lane's first use* row below). The sessions "
        "compared are all enabled on the account beforehand. Keys are fixed, so the calldata bytes are the same "
        "every run.",
        "* **Submission.** Directly to `handleOps`, one operation per transaction, from a funded development "
        "account that is also the beneficiary (so the figures are those of one-operation bundles). The same signed "
        "operations are then sent through Alto: the *route check* table shows the same `actualGasUsed` and a "
        "transaction gas within a few gas (the beneficiary's address bytes).",
        "* **Gas limits.** verificationGasLimit and preVerificationGas are Alto's estimates, made with the "
        "placeholder signature the SDK uses (65 bytes for the owner, the 86-byte USE_WITH_KEY form for sessions). "
        "callGasLimit is set tight: a first run on the same state measures the gas the account's `execute` used "
        "(`used`), then the operation runs with `used + used/63 + 100` (more in steps if that fails: each call level "
        "forwards only 63/64 of its gas), which is what the figures come from. The EntryPoint v0.7.0 deployed here "
        "charges 10 % of *all* unused call gas (the 40,000-gas allowance is v0.8's), so the unused-gas penalty in "
        "`actualGasUsed` is at most the *penalty ≤* column, the same for owner and session.",
        "* **Prefund.** The accounts hold a deposit at the EntryPoint, so validation pays no prefund; one pair of "
        "rows repeats the comparison with the prefund paid from the account's balance.",
        "* **Columns.** *tx gas*: the handleOps transaction's `gasUsed` (what the bundler pays; the ratios use it). "
        "*actualGasUsed*: from `UserOperationEvent` (what the account is charged: includes preVerificationGas and any "
        "penalty, not the transaction's 21,000 and calldata). *validation*: `gasUsed` of the EntryPoint → account "
        "`validateUserOp` frame of a `callTracer` trace (the account's whole validation). *module*: the account → "
        "module `validateUserOp` frame inside it.",
        "",
        "### Owner vs session: one `safeMint`",
        "",
    ]
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
    out += [table(headers, rows), ""]
    zero, eight = row("session_0_rules"), row("session_8_rules")
    per_rule = div(sub(eight.get("module_gas"), zero.get("module_gas")), 8)
    out += [
        f"Each one-word rule costs about {gas(per_rule)} gas of validation (one cold storage read, 2,100, and its "
        f"comparison). The session operation's preVerificationGas is {gas(sub(row('session_2_rules').get('pre_verification_gas'), owner.get('pre_verification_gas')))} "
        "gas above the owner's, mostly because the bundler priced it with the 86-byte USE_WITH_KEY placeholder, "
        "though the operation carries the 65-byte USE signature: the SDK could lower it by 16 gas per byte saved "
        "before signing (bundlers check preVerificationGas against the operation as sent).",
        "",
        "### Batches (`execute` in batch mode, n x `safeMint`, session with 2 rules)",
        "",
    ]
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
    out += [
        table(
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
        ),
        "",
        "### Granting, revoking, a lane's first use",
        "",
    ]
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
    out += [
        table(["operation", "tx gas", "actualGasUsed", "tx gas ÷ owner op"], rows),
        "",
        f"The off-chain grant's first operation costs {fixed(first.get('offchain_over_onchain_total'))} x the on-chain "
        "grant and first use together (one operation instead of two, and no second 21,000-gas transaction share). A "
        f"lane's first use adds {gas(first.get('lane_first_use_extra_tx_gas'))} gas (the EntryPoint's zero-to-nonzero "
        "nonce write), which the comparisons above exclude.",
        "",
        "### Validation with 1, 10 and 100 sessions on the account",
        "",
    ]
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
    out += [
        table(["sessions granted", "validation", "module", "tx gas"], rows),
        "",
        "A second account; the measured session (2 rules) is the first granted, the others are granted by owner "
        "operations in between (other keys, the same permission). A USE operation reads its permission's header "
        "and rule words only, keyed by (key, target, selector): the number of sessions never enters.",
        "",
        "### The headline pair with the prefund paid from the account's balance",
        "",
    ]
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
    out += [
        table(["operation", "tx gas", "actualGasUsed", "validation", "tx gas ÷ owner"], rows),
        "",
        "The account's deposit was withdrawn first (down to the refund of that operation), so each operation tops "
        "it up from the account's balance during validation, as most accounts do: the same extra for both.",
        "",
        "### Route check: the same signed operations sent directly and through Alto",
        "",
    ]
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
    out += [
        table(
            [
                "operation",
                "actualGasUsed, direct",
                "actualGasUsed, Alto",
                "tx gas, direct",
                "tx gas, Alto",
                "ops in Alto's bundle",
            ],
            rows,
        ),
        "",
    ]
    return out


def _bytes_section(results: dict[str, Any]) -> list[str]:
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
    return [
        "## Bytes",
        "",
        table(["signature (`userOp.signature`)", "bytes", "layout"], rows, "lrl"),
        "",
        "`handleOps` calldata of a one-operation bundle (`safeMint`, packed UserOperation, beneficiary):",
        "",
        table(["bundle of one", "bytes"], calldata),
        "",
    ]


def _sdk_section(results: dict[str, Any]) -> list[str]:
    sdk = results.get("sdk") or {}
    ours = get(sdk, "hot_path_ops_per_s", "keyscope") or []
    theirs = get(sdk, "hot_path_ops_per_s", "viem") or []
    ratios = sdk.get("hot_path_ratio_per_round") or []
    rounds = max(len(ours), 3)
    rows = [
        [str(i + 1), rate(get(ours, i)), rate(get(theirs, i)), fixed(get(ratios, i), 2)]
        for i in range(rounds)
    ]
    rows.append(
        [
            "**median**",
            rate(get(sdk, "hot_path_ops_per_s_median", "keyscope")),
            rate(get(sdk, "hot_path_ops_per_s_median", "viem")),
            fixed(sdk.get("ratio_over_viem"), 2),
        ]
    )
    same = sdk.get("same_bytes_as_viem")
    return [
        "## SDK",
        "",
        "One core (the process and its children pinned to one CPU), no network. The **hot path** turns a built "
        "session UserOperation into its signature: keyscope's `op.pack()`, `user_op_hash_v07` and "
        "`LocalSigner.sign_hash` (libsecp256k1 through coincurve) against viem's `getUserOperationHash` (v0.7; it "
        "packs the operation) and a local account's `sign({hash})` (`benchmarks/sdk_viem.mjs`), on the same "
        f"{get(sdk, 'operations') or NA} operations and key, in alternating rounds of {fixed(sdk.get('seconds_per_round'), 1)} s "
        "after a warm-up. Both produce the same hash and signature bytes for every operation: "
        f"**{'yes' if same else 'no' if same is not None else NA}**. Most of the difference is the signature: "
        "libsecp256k1 (C, through coincurve) against @noble/curves (JavaScript), both deterministic (RFC 6979).",
        "",
        table(
            ["round", "keyscope ops/s", f"viem {sdk.get('viem_version') or ''} ops/s", "keyscope ÷ viem"],
            rows,
        ),
        "",
        table(
            ["other SDK figures (one core)", "median", "rounds"],
            [
                [
                    "`SessionAccount.build(call, nonce=...)`, full path, operations/s",
                    rate(sdk.get("full_build_ops_per_s_median")),
                    ", ".join(rate(x) for x in sdk.get("full_build_ops_per_s") or []) or NA,
                ],
                [
                    "`PolicyChecker.check`, 1 call, 2 rules, µs per call (CPU time of the thread)",
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
        "",
        "The full path is everything `SessionAccount.build` does with a node and a bundler that answer from memory at "
        "once: `execute` encoding, policy check, session status check, fees, gas limits with the SDK's margins, "
        "packing, hashing, signing and the final validated UserOperation. viem has no equivalent of it to compare.",
        "",
    ]


def _e2e_section(results: dict[str, Any]) -> list[str]:
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
    polls = e.get("poll_seconds") or {}
    return [
        "## End to end",
        "",
        "A local anvil (mining each transaction at once) and Alto "
        f"{get(results, 'versions', 'alto') or ''} started by `LocalStack(executors={stack.get('executors', NA)}"
        f"{', alto_args=' + repr(stack.get('alto_args')) if stack.get('alto_args') else ''})`: Alto bundles every 10 to "
        "50 ms, polls the node every 25 ms, safe mode off. 20 sessions are granted on one account, each with its own "
        "nonce lane; every lane was used once before timing. Latency is send → receipt in ms; the SDK's includes "
        "building the operation (*build* column). Three clients, side by side in the same run:",
        "",
        "* **floor**: a bare JSON-RPC client (httpx only) sending operations built and signed beforehand: only "
        "`eth_sendUserOperation` and `eth_getUserOperationReceipt` polling;",
        "* **SDK (defaults)**: `SessionAccount.build`, `send`, `PendingUserOperation.wait`, as a dapp calls them;",
        "* **SDK, tuned**: the same calls with public options only: a `Bundler` wrapper that keeps the gas estimate "
        "per call shape and the fee quote for 10 s, `clock=time.time`, `verify_on_chain=False`, and the nonce "
        "counted locally (`build(nonce=...)`).",
        "",
        f"Every client polls the receipt every {ms(polls.get('1'))} ms with 1 session and every {ms(polls.get('20'))} ms "
        "with 20 (20 threads polling faster load Alto more than the operations do). With 1 session the clients take "
        "turns operation by operation (rotating order) and operations/s is 1 ÷ mean latency; with 20 sessions, 20 "
        "threads send one operation after another (their first sends spread over one poll interval), in rounds "
        "client after client in rotating order (many short rounds, so that the load of the shared machine falls on "
        "every client alike), and operations/s is operations ÷ wall time of a round (median over rounds).",
        "",
        table(
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
        "",
        "Requests an SDK operation makes (5 operations, 1 session, the SDK's own JSON-RPC clients):",
        "",
        table(["method", "per operation", "p50 ms"], call_rows),
        "",
    ]


def _kinds_section(results: dict[str, Any]) -> list[str]:
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
    return [
        "## Other accounts: Kernel, Nexus, Safe7579, the ERC-7579 reference account",
        "",
        "The same module on the ERC-7579 accounts the SDK supports (`keyscope.accounts`; their bytecode from "
        "`@rhinestone/modulekit`). Their owner signs through `OwnerECDSAValidator`, an external validator module, "
        "where keyscope's account checks its owner inline — so their owner operations already pay a module call, "
        "and the session's extra is smaller relative to them.",
        "",
        "* *tight* columns: this document's method (one `safeMint`, session with 2 rules, identical state, tight "
        "callGasLimit, deposit at the EntryPoint, handleOps transaction gas);",
        "* *adapter* columns: `support.accounts.measure_gas` (tests/support/accounts.py), the accounts' own figures: `actualGasUsed` "
        "through Alto with the SDK's gas limits (estimate plus margins, so they include some unused-gas penalty), "
        "1 rule, prefund paid from the balance; *first-use extra* is what the session's first operation (ENABLE) "
        "costs over a later one.",
        "",
        table(
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
        "",
        *([*errors, ""] if errors else []),
    ]


def _comparison_section(results: dict[str, Any]) -> list[str]:
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
    floor = sum(FLOOR_GAS.values())
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
            f"{fixed(first.get('offchain_enable_over_owner_op'), 2)} (same warm state)",
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
    return [
        "## Comparison with published figures",
        "",
        "Columns other than *keyscope* are **others' figures**, measured on this kind of machine in Nov 2026 (handleOps "
        "transaction gas, the same `mint(to)` call, the same account state) or published by the projects; they were "
        "not measured by this benchmark.",
        "",
        table(
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
        "",
        "What is and is not like-for-like:",
        "",
        "* **EntryPoint.** Biconomy v2 runs on EntryPoint v0.6, whose per-operation overhead differs from v0.7's: "
        "its ratios compare in spirit, its absolute gas does not. Smart Sessions and keyscope are both on v0.7.",
        "* **The owner path in the denominator.** keyscope's account checks its owner inline (no module call), so "
        "its owner operation is cheap and the ratio strict; Smart Sessions' figures are on a reference account whose "
        "owner also goes through a validator module. The closer like-for-like to them are the Kernel, Nexus and "
        f"Safe7579 rows above, where the owner signs through a validator module: {kind_ratios_text}. The cheap "
        "inline owner check is also why keyscope's validation-gas ratio is high next to its transaction-gas ratio: "
        f"the owner's whole validation is {gas(headline.get('owner_validation_gas'))} gas.",
        "* **Rules.** Both sides' 2-rule figures use two argument rules on the same call; Biconomy's session data and "
        "Merkle proof travel in the signature, Smart Sessions checks its policies in separate policy contracts, "
        "keyscope's rules are words in the module's own storage.",
        "* **First operation.** Smart Sessions' 3.79 divides by the owner's *first* operation; keyscope's figure "
        "divides by an owner operation on the same warm state with both lanes already used (a lane's first use, "
        f"{gas(first.get('lane_first_use_extra_tx_gas'))} gas, is excluded from both sides).",
        "* **Signatures.** keyscope's USE signature is the session key's 65-byte ECDSA signature and nothing else; "
        "the key is recovered, not named. A compact EIP-2098 signature (64 bytes) is the floor for an ECDSA session "
        "key. Kernel's ≥ 66 bytes add at least a mode byte, Smart Sessions' 98 bytes a mode byte and a 32-byte "
        "permission id.",
        f"* **The floor of a session check**: one `ecrecover` ({FLOOR_GAS['ecrecover']:,} gas), one cold storage read "
        f"({FLOOR_GAS['cold_sload']:,}) and the signature's calldata ({FLOOR_GAS['signature_calldata']:,} for 65 nonzero "
        f"bytes): {floor:,} gas. keyscope's module with 0 rules uses {gas(module_zero)} gas of validation (its frame; the "
        "signature's calldata is paid by the transaction), and the account's call into it adds "
        f"{gas(sub(get(rows_data, 'session_0_rules', 'validation_gas'), module_zero))}.",
        "",
    ]


def _settings_section(results: dict[str, Any]) -> list[str]:
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
    return ["## Run", "", table(["", ""], rows, "ll"), ""]


def _scale_section(results: dict[str, Any]) -> list[str]:
    scale = results.get("scale")
    if not scale:
        return []
    settings = scale.get("settings", {})
    lines = [
        "## Sessions at scale",
        "",
        f"Included operations per second with 1, 4 and 8 worker processes (SQLite with 1, PostgreSQL with all), "
        f"side by side in one run: {settings.get('operations_per_configuration', '?')} session operations per row "
        f"over {settings.get('sessions', '?')} sessions (one account each), every one checked on chain "
        "(`benchmarks/scale.py`, see [scaling.md](scaling.md)). The workers share one Alto process on the same two "
        "cores, which simulates every operation twice: past one worker it is the ceiling, so more workers add "
        "latency rather than throughput here.",
        "",
        "| store | workers | operations | ops/s | latency p50 (s) | latency p95 (s) | lanes | resent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in scale.get("rows", []):
        lines.append(
            f"| {row['store']} | {row['workers']} | {row['operations']} | {row['ops_per_second']:.1f} | "
            f"{row['latency_p50_s']:.2f} | {row['latency_p95_s']:.2f} | {row.get('lanes', '')} | {row.get('resent', '')} |"
        )
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """docs/benchmarks.md for ``results``."""
    parts: list[str] = [
        "# Benchmarks",
        "",
        "Gas, signature sizes, SDK speed and end-to-end latency of keyscope's session keys, each compared side by "
        "side in the same run. Regenerate with `make bench` (about three minutes here, the sessions-at-scale part included; `make bench ARGS=--quick` for a "
        "shorter, noisier run): it prints these tables and rewrites this file and `benchmarks/results.json` "
        "(machine-readable, with the raw figures behind every ratio). Timings come from a shared, noisy 2-core "
        "machine: ratios measured side by side are what count; gas figures are exact and repeat run to run.",
        "",
    ]
    sections: list[Callable[[dict[str, Any]], list[str]]] = [
        _targets_section,
        _gas_section,
        _bytes_section,
        _sdk_section,
        _e2e_section,
        _kinds_section,
        _scale_section,
        _comparison_section,
        _settings_section,
    ]
    for section in sections:
        parts += section(results)
    return "\n".join(parts).rstrip() + "\n"


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
