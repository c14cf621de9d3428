"""The command line's rough edges, smoothed: a corrupted grant does not hide the others, a store that cannot be
opened says where and why, URLs read as they were given, one id syntax, options after ``--``, progress while
waiting, negative amounts, masked bundler URLs and readable JSON errors.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import ETHER
from keyscope import Policy, SessionKey, arg
from keyscope.bundler.pending import PendingUserOperation
from keyscope.cli import Deployments, Progress, main, options_first, parse_amount, parse_validity
from keyscope.cli.options import OptionsAfterDashes
from keyscope.cli.settings import _bundler_setting
from keyscope.errors import BadInputError, UserOperationTimeoutError
from keyscope.signing import LocalSigner
from keyscope.store import open_store


@pytest.fixture
def grants(net, harness, nft):
    """Three off-chain grants of one owner's account (nothing sent)."""
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    return [owner.grant(SessionKey.generate(), [policy]) for _ in range(3)]


def sessions(store: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["sessions", "--store", store, *args])
    return result.exit_code, result.output


# --------------------------------------------------------------------------------------------------
# one corrupted grant
# --------------------------------------------------------------------------------------------------


def test_a_corrupted_grant_file_is_flagged_and_the_others_are_listed(grants, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = open_store(folder)
    for grant in grants:
        store.put_grant(grant)
    bad = "0x" + grants[1].session_id.hex()
    path = folder / "grants" / f"{bad}.json"
    path.write_text(path.read_text()[:60])  # cut off mid-write

    code, output = sessions(str(folder), "--json")
    assert code == 0, output
    listed = json.loads(output)
    assert [row["session_id"] for row in listed["sessions"]] == [
        "0x" + grants[0].session_id.hex(),
        "0x" + grants[2].session_id.hex(),
    ]
    assert [item["name"] for item in listed["unreadable"]] == [bad]
    assert str(path) in listed["unreadable"][0]["problem"]

    code, table = sessions(str(folder))
    assert code == 0 and "2 session(s) and 1 unreadable grant(s)" in table
    assert "unreadable" in table and bad[:10] in table and "is corrupted" in table


def test_a_corrupted_grant_row_is_flagged_and_the_others_are_listed(grants, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        for grant in grants:
            store.put_grant(grant)
    bad = "0x" + grants[0].session_id.hex()
    with sqlite3.connect(tmp_path / "sessions.db") as db:
        db.execute("UPDATE keyscope_grants SET grant_json = '{\"session\": ' WHERE session_id = ?", (bad,))
    code, output = sessions(url, "--json")
    assert code == 0, output
    listed = json.loads(output)
    assert len(listed["sessions"]) == 2 and [item["name"] for item in listed["unreadable"]] == [bad]
    # one id syntax: a prefix finds a readable grant while another is unreadable
    prefix = "0x" + grants[2].session_id.hex()[:8]
    revoked = CliRunner().invoke(main, ["revoke", "--store", url, prefix])
    assert revoked.exit_code == 0, revoked.output
    assert (
        f"session 0x{grants[2].session_id.hex()} of {grants[2].account} is revoked in the store"
        in revoked.output
    )


# --------------------------------------------------------------------------------------------------
# the store's place, and its URL as given
# --------------------------------------------------------------------------------------------------


def test_a_store_that_cannot_be_opened_names_the_path_and_the_cause(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    code, output = sessions(f"sqlite:///{folder}")
    assert code == 1
    assert (
        f"--store sqlite:///{folder}: cannot open the SQLite store {folder}: {folder} is a folder" in output
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, output = sessions(f"sqlite:///{blocker}/sessions.db")
    assert code == 1 and f"cannot create the folder {blocker}: {blocker} is a file, not a folder" in output


def test_messages_show_the_store_url_as_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(main, ["revoke", "--store", url, "0x" + "ab" * 4])
    assert result.exit_code == 1
    assert f"in the store {url}:" in result.output and "pysqlite" not in result.output
    code, table = sessions(url)
    assert code == 0 and url in table and "pysqlite" not in table


# --------------------------------------------------------------------------------------------------
# options after --, and the other parsers
# --------------------------------------------------------------------------------------------------


@click.command(cls=OptionsAfterDashes)
@click.argument("args", nargs=-1)
@click.option("--network")
@click.option("--wait", is_flag=True)
@click.option("--value", default="0")
def _send(args: tuple[str, ...], network: str | None, wait: bool, value: str) -> None:
    click.echo(json.dumps({"args": list(args), "network": network, "wait": wait, "value": value}))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nft", "--", "-2", "--network", "URL"], (["nft", "-2"], "URL", False, "0")),
        (["--", "-2", "--wait", "-3", "--value=5"], (["-2", "-3"], None, True, "5")),
        (["--network", "A", "x", "--", "-1"], (["x", "-1"], "A", False, "0")),
        (["x", "y"], (["x", "y"], None, False, "0")),
    ],
)
def test_options_after_dashes_are_options(argv: list[str], expected: tuple) -> None:
    result = CliRunner().invoke(_send, argv)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["args"], shown["network"], shown["wait"], shown["value"]) == expected


def test_options_first_moves_only_options() -> None:
    assert options_first(_send, ["a", "--", "-1", "--network", "X", "--nope"]) == [
        "a",
        "--network",
        "X",
        "--",
        "-1",
        "--nope",
    ]


def test_negative_amounts_and_validity() -> None:
    with pytest.raises(BadInputError, match="--value: '-1' must not be negative"):
        parse_amount("-1", "--value")
    assert parse_validity("never") is None and parse_validity("1h") == 3600
    with pytest.raises(BadInputError, match="or 'never' for a session without end"):
        parse_validity("forever")


def test_a_bundler_that_is_no_url_is_shown_masked() -> None:
    with pytest.raises(BadInputError) as info:
        _bundler_setting("api.pimlico.io/v2/1/rpc?apikey=pim_SECRETKEY1234567890")
    assert "SECRETKEY" not in str(info.value) and "***" in str(info.value)


def test_a_cut_deployments_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text('{"module": "0x12')
    with pytest.raises(BadInputError) as info:
        Deployments.load(path)
    message = str(info.value)
    assert "Unterminated string starting at: line 1, column 12" in message and "at at" not in message


# --------------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------------


def test_progress_says_what_is_waited_for_and_for_how_long(net, harness, nft, bundler) -> None:
    lines: list[str] = []
    progress = Progress(interval=0.1, echo=lines.append)
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    pending = owner.execute(harness_call(nft, owner.account))
    receipt = progress.wait(pending, "the owner's operation", 30)
    assert receipt.success
    assert (
        lines[0]
        == f"waiting for the owner's operation to be included (UserOperation {pending.hex_hash}, up to 30 s)"
    )
    assert lines[-1].startswith("  the owner's operation included after ")

    lines.clear()
    lost = PendingUserOperation(bundler, b"\x42" * 32)  # never sent: no receipt will come
    with pytest.raises(UserOperationTimeoutError) as info:
        progress.wait(lost, "a lost operation", 0.35)
    assert info.value.timeout == 0.35
    assert any(
        line.startswith("  still waiting for a lost operation: ") and "of 0.35 s" in line for line in lines
    )


def harness_call(nft, to):
    from keyscope import function_call

    return function_call(nft, "safeMint(address)", to)


def test_keyscope_warnings_are_one_line_each_and_others_pass_through() -> None:
    import warnings

    from keyscope.cli import reports_errors
    from keyscope.errors import TargetWarning

    @click.command()
    @reports_errors
    def warn() -> None:
        warnings.warn("granting f() on 0x…: no code\n  there", TargetWarning, stacklevel=1)
        warnings.warn("something else", DeprecationWarning, stacklevel=1)
        click.echo("done")

    result = CliRunner().invoke(warn, [])
    assert result.exit_code == 0
    assert "warning: granting f() on 0x…: no code there\n" in result.output and "done" in result.output
