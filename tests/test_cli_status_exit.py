"""``ape run status HASH`` in a script: its exit status says whether the operation is known. A CI job that checks
the hash `send` printed reads the exit status, not the words: an operation the bundler has neither a receipt nor
the operation of (dropped, sent to another bundler, a hash mistyped) must not read as done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from test_bundler_client import ENTRY_POINT, USER_OP_HASH, ScriptedServer, ok, scripted_bundler, user_op
from test_endpoint_answers_for_other_operations import receipt_of

ROOT = Path(__file__).resolve().parent.parent
HASH = "0x" + USER_OP_HASH.hex()


def _status_command() -> click.Command:
    """``scripts/status.py``'s command, as ``ape run status`` loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("keyscope_script_status", ROOT / "scripts" / "status.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command: click.Command = module.cli
    return command


@pytest.fixture
def bundler() -> Iterator[ScriptedServer]:
    with scripted_bundler() as scripted:
        yield scripted


def test_an_unknown_operation_exits_non_zero_and_says_what_to_check(bundler: ScriptedServer) -> None:
    bundler.on("eth_getUserOperationReceipt", ok(None)).on("eth_getUserOperationByHash", ok(None))
    result = CliRunner(mix_stderr=False).invoke(_status_command(), [HASH, "--bundler", bundler.url])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "unknown" in result.stdout and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: the bundler ") and "check the hash" in result.stderr


def test_an_unknown_operation_still_prints_its_json_and_exits_non_zero(bundler: ScriptedServer) -> None:
    bundler.on("eth_getUserOperationReceipt", ok(None)).on("eth_getUserOperationByHash", ok(None))
    result = CliRunner(mix_stderr=False).invoke(_status_command(), [HASH, "--bundler", bundler.url, "--json"])
    assert result.exit_code == 1, result.output
    printed = json.loads(result.stdout)
    assert printed == {"user_op_hash": HASH, "state": "unknown"}


def test_an_included_operation_whose_call_succeeded_exits_zero(bundler: ScriptedServer) -> None:
    bundler.on("eth_getUserOperationReceipt", ok(receipt_of(USER_OP_HASH)))
    result = CliRunner(mix_stderr=False).invoke(_status_command(), [HASH, "--bundler", bundler.url])
    assert result.exit_code == 0, result.output
    assert "included" in result.stdout and result.stderr == ""


def test_an_operation_whose_call_reverted_prints_its_receipt_and_exits_non_zero(
    bundler: ScriptedServer,
) -> None:
    reverted = {**receipt_of(USER_OP_HASH), "success": False, "reason": "0x"}
    bundler.on("eth_getUserOperationReceipt", ok(reverted))
    result = CliRunner(mix_stderr=False).invoke(_status_command(), [HASH, "--bundler", bundler.url, "--json"])
    assert result.exit_code == 1, result.output
    printed = json.loads(result.stdout)
    assert printed["state"] == "included" and printed["receipt"]["success"] is False
    assert result.stderr.startswith(f"error: UserOperation {HASH} was included, but its call reverted")


def test_a_pending_operation_exits_with_its_own_status(bundler: ScriptedServer) -> None:
    held = {"userOperation": user_op().to_rpc(), "entryPoint": ENTRY_POINT.lower(), "transactionHash": None}
    bundler.on("eth_getUserOperationReceipt", ok(None)).on("eth_getUserOperationByHash", ok(held))
    result = CliRunner(mix_stderr=False).invoke(_status_command(), [HASH, "--bundler", bundler.url])
    assert result.exit_code == 3, result.output
    assert "pending" in result.stdout and result.stderr == ""


def test_send_wait_of_a_call_that_reverted_is_an_error_once_its_receipt_is_printed(
    bundler: ScriptedServer,
) -> None:
    """``ape run send ... --wait`` prints the receipt; a call that reverted is the error it exits with (1), as the
    SDK's ``wait()`` raises it, not a success a script would go on from."""
    from keyscope.bundler import BundlerClient
    from keyscope.bundler.client import parse_user_operation_receipt
    from keyscope.bundler.pending import PendingUserOperation
    from keyscope.cli import SendResult
    from keyscope.errors import UserOperationFailedError

    reverted = parse_user_operation_receipt({**receipt_of(USER_OP_HASH), "success": False, "reason": "0x"})
    succeeded = parse_user_operation_receipt(receipt_of(USER_OP_HASH))
    assert reverted is not None and succeeded is not None
    with BundlerClient(bundler.url, timeout=2.0) as client:
        pending = PendingUserOperation(client, USER_OP_HASH)
        grant = None  # not read by problem()
        problem = SendResult(grant, pending, reverted).problem()  # type: ignore[arg-type]
        assert isinstance(problem, UserOperationFailedError) and problem.user_op_hash == HASH
        assert SendResult(grant, pending, succeeded).problem() is None  # type: ignore[arg-type]
        assert SendResult(grant, pending, None).problem() is None  # type: ignore[arg-type]
    source = (ROOT / "scripts" / "send.py").read_text()
    assert "result.problem()" in source
