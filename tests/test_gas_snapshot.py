"""The gas snapshot: every row of ``benchmarks/gas_snapshot.json`` recomputed on the in-process chain must equal
the committed figure. Gas is deterministic (fixed keys, fixed limits, contracts at fixed addresses, each operation
from the same state: see tests/support/gas_snapshot.py), so any difference is a change of the contracts, of the
encodings the SDK sends, or of the measured operations. When the change is meant, `make gas-snapshot` rewrites
the file: commit it with the change, and the diff shows the gas each row gained or lost."""

from __future__ import annotations

import os

import pytest

from support import gas_snapshot


@pytest.fixture(scope="module")
def measured(chain, project, accounts) -> dict[str, dict[str, int]]:
    return gas_snapshot.compute(chain, project, accounts[0])


def test_the_gas_of_every_operation_is_the_committed_snapshot(measured) -> None:
    if os.environ.get("KEYSCOPE_UPDATE_GAS_SNAPSHOT") == "1":
        gas_snapshot.save(measured)
    committed = gas_snapshot.load()
    assert committed, (
        f"no gas snapshot at {gas_snapshot.SNAPSHOT}: run `{gas_snapshot.UPDATE_COMMAND}` and commit the file"
    )
    differences = gas_snapshot.compare(committed, measured)
    assert not differences, (
        "the gas of these operations differs from the committed snapshot (benchmarks/gas_snapshot.json):\n  "
        + "\n  ".join(differences)
        + f"\nIf the change is meant, run `{gas_snapshot.UPDATE_COMMAND}` and commit the snapshot with it."
    )


def test_the_snapshot_covers_every_call_shape_for_owner_and_session(measured) -> None:
    for owner_row, session_row in gas_snapshot.SHAPES.values():
        assert measured[owner_row]["tx_gas"] > 21_000
        assert measured[session_row]["tx_gas"] > measured[owner_row]["tx_gas"]


def test_a_changed_figure_is_reported_with_its_row_and_difference() -> None:
    committed = {"owner": {"tx_gas": 100_000, "actual_gas_used": 110_000, "handle_ops_bytes": 868}}
    measured = {
        "owner": {"tx_gas": 100_012, "actual_gas_used": 110_000, "handle_ops_bytes": 868},
        "session_x": {"tx_gas": 1, "actual_gas_used": 1, "handle_ops_bytes": 1},
    }
    assert gas_snapshot.compare(committed, measured) == [
        "owner.tx_gas: 100,000 -> 100,012 (+12)",
        "session_x: new row {'tx_gas': 1, 'actual_gas_used': 1, 'handle_ops_bytes': 1}, not in the snapshot",
    ]
    assert gas_snapshot.compare(measured, committed) == [
        "owner.tx_gas: 100,012 -> 100,000 (-12)",
        "session_x: in the snapshot, no longer measured",
    ]
    assert gas_snapshot.compare(committed, committed) == []
