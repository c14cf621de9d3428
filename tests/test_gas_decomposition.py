"""The gas decomposition's accounting (benchmarks/decompose.py): a struct log cut into call frames, each step's
gas taken from the gas left, a call's own cost told apart from what its callee spent, and every step counted once
(the parts add up to the frame's gas). On a small struct log written out by hand, with the figures worked out."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from decompose import ECRECOVER, TX_GAS, Trace

MODULE = "0x" + "ab" * 20
ENTRY_POINT = "0x" + "ee" * 20


def _step(op: str, gas: int, cost: int, depth: int, stack: list[str] | None = None) -> dict[str, object]:
    return {"op": op, "gas": gas, "gasCost": cost, "depth": depth, "stack": stack or []}


def _log() -> dict[str, object]:
    # the root frame: PUSH1; CALL the module (cold: 2,600), which pushes, reads a cold slot and returns; then
    # ecrecover (a precompile: no frame of its own, 3,100); STOP
    return {
        "gas": 21_000 + 7_806,
        "structLogs": [
            _step("PUSH1", 100_000, 3, 1),
            _step("CALL", 99_997, 92_600, 1, ["0x0", "0x0", "0x" + MODULE[2:], "0x15f90"]),
            _step("PUSH1", 90_000, 3, 2),
            _step("SLOAD", 89_997, 2_100, 2, ["0x7"]),
            _step("RETURN", 87_897, 0, 2),
            _step("STATICCALL", 95_294, 3_100, 1, ["0x0", "0x" + ECRECOVER[2:], "0xbb8"]),
            _step("STOP", 92_194, 0, 1),
        ],
    }


def test_a_struct_log_is_cut_into_frames_whose_steps_add_up() -> None:
    trace = Trace(_log(), ENTRY_POINT)
    assert trace.intrinsic == TX_GAS - 100_000
    (module,) = trace.root.children.values()
    assert module.to == MODULE and module.opcode == "CALL" and module.steps == [2, 3, 4]
    assert trace.used(module) == 3 + 2_100
    events = trace.events(trace.root)
    assert [kind for kind, _, _ in events] == ["code", "call", "code", "precompile", "code"]
    # the CALL step took 99,997 - 95,294 = 4,703 gas: 2,103 the module spent, 2,600 the call itself
    assert events[1][1] == 2_600 and events[1][2]["frame"] is module
    assert events[3] == ("precompile", 3_100, {"to": ECRECOVER})
    assert (
        trace.used(trace.root) == 3 + 4_703 + 3_100 == sum(gas for _, gas, _ in events) + trace.used(module)
    )
    assert trace.sloads(trace.root) == [(7, 2_100)]
    assert trace.find(trace.root, MODULE.upper().replace("0X", "0x")) is module
