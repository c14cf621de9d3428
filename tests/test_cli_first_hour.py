"""The command line's rough edges, smoothed: a corrupted grant does not hide the others, a store that cannot be
opened says where and why, URLs read as they were given, one id syntax, options after ``--``, progress while
waiting, negative amounts, masked bundler URLs and readable JSON errors.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from conftest import ETHER
from keyscope import Policy, SessionKey, arg
from keyscope.bundler.pending import PendingUserOperation
from keyscope.cli import (
    Deployments,
    Progress,
    list_sessions,
    main,
    make_owner,
    options_first,
    parse_amount,
    parse_validity,
    status_bundler,
)
from keyscope.cli.actions import session_key_from
from keyscope.cli.options import OptionsAfterDashes, owner_options
from keyscope.cli.settings import _bundler_setting
from keyscope.errors import BadInputError, ConfigurationError, UserOperationTimeoutError
from keyscope.hexutil import to_address as to_checksum
from keyscope.module import SessionStatus
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from test_store import ACCOUNT as STORE_ACCOUNT
from test_store import SESSION as STORE_SESSION
from test_store import h as store_hash
from test_store import make_grant, make_op

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(harness, module, nft, local_stack):
    """The session-scoped fixtures this module uses, made before its own: ape snapshots the chain per fixture scope,
    and one made later (the local stack, which three tests here use) has it rebase every snapshot taken before."""


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
    # the cells' words, whichever lines the table folded them onto (the file's path varies in length)
    words = " ".join(re.sub("[\u2500-\u257f]", " ", table).split())
    assert "unreadable" in words and bad[:10] in words and "is corrupted" in words


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
    # a revoked session has no time left, whatever its window says
    code, output = sessions(url, "--json")
    assert code == 0, output
    (revoked_item,) = [
        item for item in json.loads(output)["sessions"] if item["status"] == SessionStatus.REVOKED.value
    ]
    assert revoked_item["time_left"] == 0 and revoked_item["valid_until"] > revoked_item["now"], revoked_item
    code, table = sessions(url)
    words = " ".join(re.sub("[\u2500-\u257f]", " ", table).split())
    assert code == 0 and words.count("none: revoked") == 1, table


def _two_grants_sharing_a_prefix() -> tuple[Any, Any]:
    """Two grants whose session ids share their first 4 hex digits (found among salts: a few hundred)."""
    seen: dict[str, Any] = {}
    for salt in range(100_000):
        grant = make_grant(key="0x" + "b2" * 20, salt=salt)
        prefix = grant.session_id.hex()[:4]
        if prefix in seen:
            return seen[prefix], grant
        seen[prefix] = grant
    raise AssertionError("no two session ids share a prefix")  # pragma: no cover


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_prefix_that_also_names_an_unreadable_grant_picks_no_session(tmp_path: Path, kind: str) -> None:
    """The prefix given to ``revoke`` matches two sessions, one of them unreadable (damaged in the store): that
    one may be the session meant, so nothing is revoked and the message names it. Before, the unreadable one
    was skipped and the other, readable, session was revoked in its place, while the one meant stayed live."""
    meant, other = _two_grants_sharing_a_prefix()
    url = str(tmp_path / "store") if kind == "file" else f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(meant)
        store.put_grant(other)
    name = "0x" + meant.session_id.hex()
    if kind == "file":
        path = tmp_path / "store" / "grants" / f"{name}.json"
        path.write_text(path.read_text()[:60])  # cut off mid-write
    else:
        with sqlite3.connect(tmp_path / "sessions.db") as db:
            db.execute(
                "UPDATE keyscope_grants SET grant_json = '{\"session\": ' WHERE session_id = ?", (name,)
            )

    prefix = meant.session_id.hex()[:4]
    refused = CliRunner().invoke(main, ["revoke", "--store", url, prefix])
    assert refused.exit_code == 1, refused.output
    words = " ".join(refused.output.split())
    assert f"prefix 0x{prefix} matches the unreadable grant(s) {name}" in words, words
    assert "nothing was done" in words and "Traceback" not in refused.output
    with open_store(url) as store:
        assert not store.is_revoked(other.session_id), "another session was revoked in place of the one meant"


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
    assert (
        code == 1 and f"--store sqlite:///{blocker}/sessions.db: {blocker} is a file, not a folder" in output
    )
    assert sorted(tmp_path.iterdir()) == sorted([blocker, folder])  # nothing created


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_command_that_reads_no_keys_never_sets_the_stores_secret(tmp_path: Path, kind: str) -> None:
    """A store of grants with no keys yet (so no secret), and an operator's shell with a mistyped
    ``KEYSCOPE_STORE_PASSPHRASE``: ``keyscope sessions`` and ``outbox`` list what is there and leave the store
    without a secret, so the workers' passphrase still becomes the store's. Before, the read-only command made
    the mistyped passphrase the store's: every worker was refused ("the passphrase does not open the keys").
    Once the store has its secret, a wrong one is refused as before."""
    url = str(tmp_path / "store") if kind == "file" else f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(make_grant())
    typo = {"KEYSCOPE_STORE_PASSPHRASE": "corect horse"}
    for command in (["sessions", "--json"], ["outbox"]):
        read = CliRunner().invoke(main, [command[0], "--store", url, *command[1:]], env=typo)
        assert read.exit_code == 0, read.output

    signer = LocalSigner.generate()
    with open_store(url, passphrase="correct horse", scrypt_n=2**10) as worker:  # the workers' passphrase
        worker.put_key(signer)
        assert worker.get_key(signer.address).address == signer.address
    refused = CliRunner().invoke(main, ["sessions", "--store", url], env=typo)
    assert refused.exit_code == 1 and "passphrase does not open" in refused.output, refused.output


@pytest.mark.parametrize("form", ["{path}", "file://{path}"])
def test_a_sqlite_store_given_as_a_plain_path_is_named_with_its_url(tmp_path: Path, form: str) -> None:
    """The workers' SQLite file given to ``--store`` as a path (a file store's form): the message says it is a
    SQLite database and gives the URL that opens it, which works; the file is left as it was."""
    path = tmp_path / "sessions.db"
    with open_store(f"sqlite:///{path}") as store:
        store.put_grant(make_grant())
    before = path.read_bytes()
    code, output = sessions(form.format(path=path))
    assert code == 1 and f"{path} is a SQLite database" in output and f"sqlite:///{path}" in output, output
    assert path.read_bytes() == before
    code, output = sessions(f"sqlite:///{path}", "--json")
    assert code == 0 and len(json.loads(output)["sessions"]) == 1, output


@pytest.mark.parametrize("command", [["sessions"], ["outbox"], ["revoke", "abcd1234"]])
@pytest.mark.parametrize("form", ["sqlite:///{path}/sessions.db", "{path}/folder", "file://{path}/folder"])
def test_a_store_that_does_not_exist_is_not_taken_for_an_empty_one(
    tmp_path: Path, command: list[str], form: str
) -> None:
    """A mistyped store path is said, not listed as an empty store, and nothing is created there."""
    url = form.format(path=tmp_path / "typo")
    result = CliRunner().invoke(main, [command[0], "--store", url, *command[1:]])
    assert result.exit_code == 1, result.output
    missing = "sessions.db" if "sqlite" in url else "folder"
    assert f"error: --store {url}: there is no store at {tmp_path / 'typo' / missing}: check the path" in (
        result.output
    )
    assert "Traceback" not in result.output and not (tmp_path / "typo").exists()


def test_a_relative_sqlite_path_meant_as_an_absolute_one_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sessions", "--store", "sqlite:///var/keyscope/sessions.db"])
    assert result.exit_code == 1
    assert (
        "(sqlite:///var/keyscope/sessions.db is relative to the current folder; "
        "sqlite:////var/keyscope/sessions.db is absolute)" in " ".join(result.output.split())
    )
    assert not (tmp_path / "var").exists()


def test_a_private_key_pasted_as_a_session_id_is_not_echoed(tmp_path: Path) -> None:
    """A session id and a private key have one form (64 hex digits): ``keyscope revoke --store URL 0xKEY`` (the
    session's key pasted where its id goes) printed the key twice in "unknown session id 0xKEY: ... no grant with
    session id 0xKEY". An unknown full id is shown by its first 8 digits, as the listings show ids."""
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(make_grant())
    key = SessionKey.generate().private_key.hex()
    for given in ("0x" + key, key):
        result = CliRunner().invoke(main, ["revoke", "--store", url, given])
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and f"unknown session id 0x{key[:8]}…" in said, said
        assert key[8:] not in said and "keyscope sessions" in said, said


def test_messages_show_the_store_url_as_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()
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


@pytest.mark.parametrize("number", ["-1", "-2.5", "-0x10"])
def test_a_negative_number_without_dashes_says_to_put_dashes_before_it(number: str) -> None:
    """Without ``--``, click reads a negative number as an unknown option ("No such option: -1"): the message
    says how to pass it. A mistyped option is still click's own refusal."""
    result = CliRunner().invoke(_send, ["nft", number, "--network", "URL"])
    assert result.exit_code == 2
    assert (
        f"Error: {number} was taken for an option: put -- before the arguments when one starts with a dash"
        in (result.output)
    )
    assert f"-- {number}` (options may still follow)" in result.output
    mistyped = CliRunner().invoke(_send, ["nft", "--wiat"])
    assert mistyped.exit_code == 2 and "No such option: --wiat" in mistyped.output


@click.command(cls=OptionsAfterDashes)
@click.argument("args", nargs=-1)
@click.option("--network")
@click.option("--verbosity", "-v")
@click.option("--json", "as_json", is_flag=True)
def _send_with_verbosity(
    args: tuple[str, ...], network: str | None, verbosity: str | None, as_json: bool
) -> None:
    click.echo(json.dumps({"args": list(args), "network": network, "verbosity": verbosity, "json": as_json}))


@pytest.mark.parametrize("verbosity", [["-v", "WARNING"], ["--verbosity", "WARNING"]])
def test_a_short_option_after_dashes_is_an_option_too(verbosity: list[str]) -> None:
    """docs/scripts.md hides ape's log lines with ``-v WARNING`` and takes options after ``--``: ``send ID nft
    "f(int256)" -- -2 --network URL -v WARNING --json`` passed ``-v`` and ``WARNING`` to the call ("takes 2
    argument(s) ..., got 4") while ``--verbosity WARNING`` was an option. Negative numbers stay arguments."""
    argv = ["nft", "--", "-2", "--network", "URL", *verbosity, "--json", "-3"]
    result = CliRunner().invoke(_send_with_verbosity, argv)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "args": ["nft", "-2", "-3"],
        "network": "URL",
        "verbosity": "WARNING",
        "json": True,
    }


@pytest.mark.parametrize("command", ["sessions", "outbox", "recover"])
def test_a_missing_store_names_the_environment_variable_that_gives_it_too(command: str) -> None:
    """docs/scaling.md: the store URL may also come from KEYSCOPE_STORE; without either, click said only "Missing
    option '--store'"."""
    extra = (
        ["--node", "http://127.0.0.1:9", "--bundler", "http://127.0.0.1:9"] if command == "recover" else []
    )
    result = CliRunner(env={"KEYSCOPE_STORE": None}).invoke(main, [command, *extra])
    assert result.exit_code == 2, result.output
    assert (
        "Error: Missing option '--store'. Give the store's URL with --store URL, or set KEYSCOPE_STORE to it"
        in result.output
    )


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


@click.command()
@owner_options(account=False)
def _as_owner(owner_account: Any) -> None:
    click.echo(f"owner {owner_account.address}")


def test_a_private_key_given_for_an_ape_alias_or_a_session_key_address_is_never_shown() -> None:
    """``--owner`` (or ``KEYSCOPE_OWNER``) takes an ape alias, and a raw key goes in ``KEYSCOPE_OWNER_KEY``; ``grant
    --session-key`` takes a stored key's address or ``env:NAME``. A key given there by mistake was quoted whole
    in the refusal, onto the terminal and into a job's log ("Account with alias '0x…' not found", "--session-key:
    '0x…' is not a valid address"): now its form is named and it is not shown."""
    key = SessionKey.generate()
    digits = key.private_key.hex()
    for args, env in (
        (["--owner", "0x" + digits], {}),
        ([], {"KEYSCOPE_OWNER": digits}),
        (["--owner", digits.upper()], {}),
    ):
        result = CliRunner().invoke(_as_owner, args, env=env)
        assert result.exit_code == 2, result.output
        assert digits not in result.output.lower(), result.output
        assert "the form of a private key (not shown) is not an ape account alias" in result.output
        assert "KEYSCOPE_OWNER_KEY" in result.output
    found = CliRunner().invoke(_as_owner, ["--owner", "TEST::0"])
    assert found.exit_code == 0 and found.output.startswith("owner 0x"), found.output
    unknown = CliRunner().invoke(
        _as_owner, ["--owner", "nobody"]
    )  # other aliases are ape's to refuse, as before
    assert unknown.exit_code == 2 and "'nobody'" in unknown.output, unknown.output
    with open_store("memory://") as store:
        for given in ("0x" + digits, digits, f" {digits} ", "env:0x" + digits):
            with pytest.raises(BadInputError) as info:
                session_key_from(store, given)
            said = str(info.value)
            assert digits not in said.lower() and "the form of a private key (not shown)" in said, said
            assert "env:NAME" in said, said
        assert session_key_from(store, None)[1]  # none given: a new key


def test_a_cut_deployments_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text('{"module": "0x12')
    with pytest.raises(BadInputError) as info:
        Deployments.load(path)
    message = str(info.value)
    assert "Unterminated string starting at: line 1, column 12" in message and "at at" not in message


@pytest.mark.parametrize("text", ["", "\n"])
def test_an_empty_deployments_file_says_the_stack_writes_it_once_ready(tmp_path: Path, text: str) -> None:
    """docs/scripts.md's terminal 2 run while terminal 1's stack is still starting: stack.json is there and empty,
    which was refused as "not JSON (Expecting value: line 1, column 1)"."""
    path = tmp_path / "stack.json"
    path.write_text(text)
    with pytest.raises(BadInputError) as info:
        Deployments.load(path)
    assert str(info.value).startswith(
        f"deployments file {path} is empty: `python -m keyscope.local --json > {path}` writes it once the stack is "
        "ready"
    ), info.value


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
    # ten of the 0.1 s intervals: a loaded machine's slow queries still leave some to report on
    with pytest.raises(UserOperationTimeoutError) as info:
        progress.wait(lost, "a lost operation", 1.0)
    assert info.value.timeout == 1.0
    # a command's error says which command waits again, not the SDK's wait()
    assert f"`ape run status {lost.hex_hash} --wait`" in str(info.value) and "wait()" not in str(info.value)
    assert "longer --timeout" in str(info.value)
    assert lines[0].startswith("waiting for a lost operation to be included") and "up to 1 s" in lines[0]
    assert any(
        line.startswith("  still waiting for a lost operation: ") and "of 1 s" in line for line in lines
    )


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit(130)], ids=["python", "ape"])
def test_ctrl_c_while_waiting_says_the_operation_may_land_and_how_to_follow_it(
    bundler, interrupt: BaseException
) -> None:
    """Ctrl-C during ``ape run send --wait`` stopped the command with nothing said: the operation, sent, may still
    be included, and a newcomer sending it again would mint twice. (Under ``ape run``, ape's SIGINT handler makes
    Ctrl-C ``SystemExit(130)``.)"""
    lines: list[str] = []
    pending = PendingUserOperation(bundler, b"\x42" * 32)

    def ctrl_c(*_: object, **__: object) -> None:
        raise interrupt

    pending.wait = ctrl_c  # type: ignore[method-assign]
    with pytest.raises(type(interrupt)):
        Progress(echo=lines.append).wait(pending, "the session's operation", 60)
    assert lines[-1] == (
        f"interrupted while waiting: UserOperation {pending.hex_hash} may still be included; follow it with "
        f"`ape run status {pending.hex_hash} --wait` before sending it again"
    ), lines


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


# --------------------------------------------------------------------------------------------------
# bad input on every command: one clear line, a non-zero status, no traceback
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def empty_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    open_store(url).close()
    return url


def _refused(args: list[str]) -> str:
    """Run ``keyscope args``: it must fail with a message and no traceback; the message, on one line."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"a traceback: {result.exception!r}"
    )
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["revoke", "abcd", "--timeout", "nan"],
            "Invalid value for '--timeout': 'nan' is not a number of seconds",
        ),
        (["revoke", "abcd", "--timeout", "-1"], "'-1' is not a number of seconds above 0"),
        (["revoke", "abcd", "--timeout", "0"], "'0' is not a number of seconds above 0"),
        (["revoke", "abcd", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (
            [
                "recover",
                "--node",
                "http://127.0.0.1:9",
                "--bundler",
                "http://127.0.0.1:9",
                "--older-than",
                "-3",
            ],
            "Invalid value for '--older-than': '-3' is not a number of seconds 0 or more",
        ),
        (
            ["recover", "--node", "http://127.0.0.1:9", "--bundler", "http://127.0.0.1:9", "--wait", "inf"],
            "Invalid value for '--wait': 'inf' is not a number of seconds",
        ),
        (["outbox", "--limit", "9" * 30], "Invalid value for '--limit'"),
        (
            ["sessions", "--node", "localhost:8545"],
            "Invalid value for '--node': 'localhost:8545' is not an http(s) URL",
        ),
        (["sessions", "--node", ""], "Invalid value for '--node': '' is not an http(s) URL"),
        (
            ["revoke", "abcd", "--node", "127.0.0.1:8545", "--bundler", "http://127.0.0.1:9"],
            "Invalid value for '--node'",
        ),
        (
            [
                "recover",
                "--node",
                "http://127.0.0.1:9",
                "--bundler",
                "api.example.com/rpc?apikey=SECRETKEY1234567890ab",
            ],
            "Invalid value for '--bundler': 'api.example.com/rpc?***' is not an http(s) URL",
        ),
    ],
)
def test_numbers_and_urls_out_of_range_are_usage_errors(empty_store: str, args: list[str], said: str) -> None:
    message = _refused([args[0], "--store", empty_store, *args[1:]])
    assert said in message and "SECRETKEY" not in message


def test_an_outbox_limit_past_any_listing_is_refused_not_a_crash(empty_store: str) -> None:
    """A --limit beyond SQLite's integers once ended in an OverflowError traceback."""
    result = CliRunner().invoke(
        main, ["outbox", "--store", empty_store, "--limit", "99999999999999999999999"]
    )
    assert result.exit_code == 2 and "is not in the range 1<=x<=1000000" in result.output
    assert CliRunner().invoke(main, ["outbox", "--store", empty_store, "--limit", "1000000"]).exit_code == 0


def test_stored_text_is_shown_as_text_never_as_markup_or_terminal_codes(empty_store: str) -> None:
    """An outbox record whose intent id (the dapp's) and failure reason (a bundler's or a contract's words)
    hold rich markup and terminal escape sequences: ``keyscope outbox`` lists it with the markup as written
    and every control character written out, so the text can neither restyle, hide nor clear what the
    operator reads. Before, a reason holding ``[/]`` stopped the listing ("unexpected MarkupError": no record
    shown), ``[bold]`` restyled it, and an escape sequence reached the terminal as is."""
    intent = "order-\x1b]0;renamed\x07"
    reason = "reverted: \x1b[2J\x1b[31mALL GOOD[/] [bold]x[/bold] \u202eevil"
    with open_store(empty_store) as store:
        store.record_intent(intent, STORE_ACCOUNT, STORE_SESSION, 0, make_op(1), store_hash(1))
        store.mark_failed(store_hash(1), reason)
    shown = CliRunner().invoke(main, ["outbox", "--store", empty_store])
    assert shown.exit_code == 0, shown.output
    words = " ".join(re.sub("[\u2500-\u257f]", " ", shown.output).split())
    assert "order-\\x1b]0;renamed\\x07" in words, words
    for piece in ("\\x1b[2J\\x1b[31mALL GOOD[/]", "[bold]x[/bold]", "\\u202eevil"):  # as folded in the table
        assert piece in words, (piece, words)
    assert not any(c in shown.output for c in "\x1b\x07\u202e")
    recorded = json.loads(CliRunner().invoke(main, ["outbox", "--store", empty_store, "--json"]).output)
    assert [(r["intent_id"], r["error"]) for r in recorded] == [
        (intent, reason)
    ]  # the store keeps them as given


def test_a_damaged_outbox_record_is_listed_as_unreadable_beside_the_others(
    empty_store: str, local_stack: Any
) -> None:
    """One damaged row once stopped ``keyscope outbox`` and ``keyscope recover`` at a store error, hiding every
    other record: each now lists it as unreadable, with its problem, and the others all the same."""
    from keyscope.userop import UserOperation

    account, session = "0x" + "a1" * 20, "0x" + "5e" * 32
    with open_store(empty_store) as store:
        for i in (1, 2):
            op = UserOperation(sender=account, nonce=i, call_data=b"\xca\xfe", call_gas_limit=100_000)
            store.record_intent(f"intent-{i}", account, session, i, op, "0x" + f"{i:064x}")
    with sqlite3.connect(empty_store[len("sqlite:///") :]) as conn:
        conn.execute("UPDATE keyscope_outbox SET op_json = '{' WHERE intent_id = 'intent-1'")
    for state in ([], ["--state", "pending"]):
        shown = CliRunner().invoke(main, ["outbox", "--store", empty_store, *state])
        assert shown.exit_code == 0 and "intent-2" in shown.output and "and 1 unreadable" in shown.output, (
            shown.output
        )
        assert re.search(r"intent-1\W+unreadable", shown.output) and "corrupted" in shown.output, shown.output
        rows = json.loads(
            CliRunner().invoke(main, ["outbox", "--store", empty_store, "--json", *state]).output
        )
        assert [(row["intent_id"], row["state"]) for row in rows] == [
            ("intent-2", "built"),
            ("intent-1", "unreadable"),
        ]
    with sqlite3.connect(empty_store[len("sqlite:///") :]) as conn:
        conn.execute("DELETE FROM keyscope_outbox WHERE intent_id = 'intent-2'")
    nodes = [
        "--node",
        local_stack.rpc_url,
        "--bundler",
        local_stack.bundler_url,
    ]  # checked even with nothing to do
    recovered = CliRunner().invoke(main, ["recover", "--store", empty_store, *nodes])
    assert recovered.exit_code == 0, recovered.output
    assert "nothing in flight that the store can read (1 unreadable)" in recovered.output
    assert "unreadable intent-1:" in recovered.output and "corrupted" in recovered.output


def test_keyscope_recover_refuses_swapped_or_wrong_node_and_bundler_urls_naming_both(
    local_stack: Any, tmp_path: Path
) -> None:
    """``keyscope recover`` checked that --node is of the records' chain, but not --bundler: given the two URLs
    swapped, or a bundler not serving the records' EntryPoint, it followed the records with a node asked for
    receipts and a bundler asked for nonces. It now asks the bundler for its chain and EntryPoints and the node for
    the EntryPoint's code first, and refuses, naming both URLs (their keys masked), before anything is followed or
    changed; with nothing in flight too, so that a job run with wrong URLs does not say "nothing in flight" for
    ever."""
    node, bundler = local_stack.rpc_url, local_stack.bundler_url
    keyed_node = (
        f"{node}/?apikey=SECRETKEY1234567890ab"  # the node answers there too: the key must not be shown
    )
    served = make_grant().model_copy(update={"entry_point": local_stack.entry_point})
    other = make_grant()  # granted for an EntryPoint the bundler does not serve
    url, empty = f"sqlite:///{tmp_path / 'sessions.db'}", f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(empty).close()
    with open_store(url) as store:
        for i, grant in enumerate((served, other)):
            store.put_grant(grant)
            store.record_intent(
                f"order-{i}", grant.account, grant.session_id, i, make_op(i), store_hash(i + 1)
            )

    def recover(store_url: str, *urls: str) -> str:
        return _refused(
            ["recover", "--store", store_url, "--node", urls[0], "--bundler", urls[1], "--wait", "0"]
        )

    for store_url in (url, empty):
        said = recover(store_url, bundler, keyed_node)  # swapped
        assert "the node and the bundler look swapped: the --node given, " in said, said
        assert f"give {node}/?apikey=*** as the --node and {bundler} as the --bundler" in said, said
        assert "SECRETKEY" not in said
        said = recover(store_url, bundler, bundler)  # the bundler's URL twice
        assert f"the --node given, {bundler}, is an ERC-4337 bundler's URL, not a node's" in said, said
        assert "give the node's JSON-RPC URL as the --node, and a bundler's as the --bundler" in said, said
        assert f"(the --bundler given is {bundler})" in said, said
    assert not said.endswith("(nothing was followed or changed)")  # the empty store: nothing there to follow
    said = recover(url, keyed_node, bundler)
    assert f"the bundler {bundler} serves the EntryPoints {local_stack.entry_point}, " in said, said
    assert f"not {other.entry_point} (chain {local_stack.chain_id}, node {node}/?apikey=***)" in said, said
    assert said.endswith("(nothing was followed or changed)") and "SECRETKEY" not in said, said
    with open_store(url, create=False) as store:
        for i in (0, 1):
            record = store.get_by_intent(f"order-{i}")
            assert record is not None and record.state == "built" and record.attempts == 0, record
    fine = CliRunner().invoke(main, ["recover", "--store", empty, "--node", keyed_node, "--bundler", bundler])
    assert fine.exit_code == 0 and "nothing in flight" in fine.output, fine.output


def test_keyscope_revoke_on_chain_refuses_swapped_node_and_bundler_urls_naming_both(
    local_stack: Any, tmp_path: Path
) -> None:
    """``keyscope revoke --node --bundler`` given the two URLs swapped asked the bundler for the account's code and
    failed on a method it does not serve. It now refuses as ``keyscope recover`` does, naming both URLs (keys
    masked); the session is revoked in the store all the same (a leaked key's workers stop first)."""
    node, bundler = local_stack.rpc_url, local_stack.bundler_url
    keyed_node = f"{node}/?apikey=SECRETKEY1234567890ab"
    grant = make_grant().model_copy(update={"entry_point": local_stack.entry_point})
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(grant)
    owner = {"KEYSCOPE_OWNER_KEY": "0x" + "42" * 32}
    session = "0x" + grant.session_id.hex()
    for given, said_first in (
        ((bundler, keyed_node), f"look swapped: the --node given, {bundler}, is an ERC-4337 bundler"),
        ((bundler, bundler), f"the --node given, {bundler}, is an ERC-4337 bundler's URL, not a node's"),
    ):
        args = ["revoke", "--store", url, session, "--node", given[0], "--bundler", given[1]]
        result = CliRunner(env=owner).invoke(main, args)
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and said_first in said, said
        assert said.endswith("(the session is revoked in the store; nothing was sent on chain)"), said
        assert "SECRETKEY" not in said and "Traceback" not in said
        with open_store(url, create=False) as store:
            assert store.is_revoked(grant.session_id)


def test_keyscope_sessions_given_a_bundlers_url_as_node_says_so(
    grants, local_stack: Any, tmp_path: Path
) -> None:
    """``keyscope sessions --node`` given the bundler's URL (the other URL the local stack prints) failed on the
    node's method the bundler does not serve, with the bundler's validation error; it now says that the URL is a
    bundler's and where the node's is found, its key masked."""
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(grants[0])
    keyed = f"{local_stack.bundler_url}/?apikey=SECRETKEY1234567890ab"
    code, output = sessions(url, "--node", keyed)
    said = " ".join(output.split())
    assert code == 1, said
    assert said.startswith(f"error: --node {local_stack.bundler_url}/"), said
    assert "is an ERC-4337 bundler's URL, not a node's: give --node the node's JSON-RPC URL" in said, said
    assert "SECRETKEY" not in said and "Traceback" not in said and "eth_getBlockByNumber" not in said, said
    code, output = sessions(
        url, "--node", local_stack.rpc_url
    )  # the node's URL: listed (another chain's grant)
    assert code == 0 and "1 session(s)" in output, output


def test_on_chain_revocation_without_the_owners_key_changes_nothing(grants, tmp_path: Path) -> None:
    """The owner's key is read first: a missing or malformed one stops the command before the store is touched."""
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(grants[0])
    session_id = "0x" + grants[0].session_id.hex()
    base = [
        "revoke",
        "--store",
        url,
        session_id,
        "--node",
        "http://127.0.0.1:9",
        "--bundler",
        "http://127.0.0.1:9",
    ]
    for key, said in (
        (None, "no owner key"),
        ("0x1234", "KEYSCOPE_OWNER_KEY is not a private key"),
        (
            "/tmp/nowhere/owner.key",
            "KEYSCOPE_OWNER_KEY looks like a file's path: it takes the owner's key itself",
        ),
    ):
        env = {"KEYSCOPE_OWNER_KEY": key} if key else {}
        result = CliRunner(env=env).invoke(main, base)
        assert result.exit_code == 1 and f"error: {said}" in result.output, result.output
        assert "revoked in the store" not in result.output
        with open_store(url) as store:
            assert not store.is_revoked(grants[0].session_id)


@pytest.mark.parametrize("deployed", [False, True])
def test_a_revocation_by_a_key_that_is_not_the_owners_leaves_the_store_as_it_was(
    net, harness, nft, tmp_path: Path, deployed: bool
) -> None:
    """``ape run revoke ID --owner TEST::5`` (another account's key): the store once marked the session revoked, then
    the command failed on the owner check, saying only that the key is not the owner's. The key is checked first;
    the owner's own key then revokes in the store and on chain."""
    from keyscope.cli.actions import revoke_session

    owner_key, stranger, key = LocalSigner.generate(), LocalSigner.generate(), SessionKey.generate()
    owner = net.owner(owner_key)
    harness.fund(owner.account, ETHER)
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.grant(key, [policy])
    if deployed:  # the session's first operation creates the account and enables the session
        assert net.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait().success
    assert net.is_deployed(owner.account) is deployed
    with open_store(f"sqlite:///{tmp_path / 'sessions.db'}") as store:
        store.put_grant(grant)
        with pytest.raises(BadInputError) as info:
            revoke_session(grant, store=store, network=net, signer=stranger)
        said = str(info.value)
        assert said.startswith(f"{stranger.address} is not the owner of {owner.account} (its owner is "), said
        assert not store.is_revoked(grant.session_id)
        said: list[str] = []
        result = revoke_session(
            grant, store=store, network=net, signer=owner_key, progress=Progress(echo=said.append)
        )
        assert result.receipt is not None and result.receipt.success
        assert store.is_revoked(grant.session_id)
    # said before the owner signs (an ape account's owner may decline, leaving the store's mark alone)
    assert said[0] == (
        f"session 0x{grant.session_id.hex()} is marked revoked in the store (every worker refuses it); now revoking "
        "it on chain"
    )


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("0x" + "00" * 32, "out of range for secp256k1"),  # 64 hex digits, and still no key
        ("0x" + "ff" * 32, "out of range for secp256k1"),
        ("0x" + "ab" * 20, "the private key has 40 hex digits, not 64"),
        ("0x" + "zq" * 32, "is not hex data"),
    ],
)
def test_an_owner_key_that_is_no_key_says_what_is_wrong_with_it_and_never_shows_it(
    monkeypatch: pytest.MonkeyPatch, key: str, said: str
) -> None:
    from keyscope.cli.signers import owner_signer

    monkeypatch.setenv("KEYSCOPE_OWNER_KEY", key)
    with pytest.raises(BadInputError) as info:
        owner_signer(ape_accounts=False)
    message = str(info.value)
    assert message.startswith("KEYSCOPE_OWNER_KEY is not a private key (") and said in message, message
    assert message.endswith("give the owner's key, 0x and 64 hex digits"), message
    assert key[2:] not in message and key[2:12] not in message


def test_a_key_that_is_not_the_accounts_owner_is_refused_naming_the_owner(net, harness) -> None:
    """docs/scripts.md: when the account exists, the commands check that the key is its owner (its ``signer()``)
    and refuse with the real owner's address otherwise."""
    owner, stranger = LocalSigner.generate(), LocalSigner.generate()
    account = harness.create(owner)
    assert make_owner(net, owner, account).account == account
    with pytest.raises(BadInputError) as info:
        make_owner(net, stranger, account)
    assert f"{stranger.address} is not the owner of {account} (its owner is {owner.address})" in str(
        info.value
    )


def test_an_account_without_code_that_the_key_would_not_create_is_refused_naming_the_keys_own(net) -> None:
    """``ape run grant --account`` with a mistyped address once went on to say "the session module is not installed
    on" it; an account the key's first operation creates (its own keyscope account, not deployed yet) is fine."""
    owner = LocalSigner.generate()
    own = net.owner(owner).account
    assert make_owner(net, owner, own).account == own
    codeless = "0x" + "12" * 20
    with pytest.raises(BadInputError) as info:
        make_owner(net, owner, codeless)
    assert str(info.value) == (
        f"--account {to_checksum(codeless)} has no code on chain {net.chain_id}, and nothing here would create it; "
        f"this key's keyscope account at --salt 0 is {own}: give the address of an account that exists, or leave "
        "--account out for the key's keyscope account"
    )


def test_a_grant_whose_module_has_no_code_here_is_listed_as_no_module(grants, net, tmp_path: Path) -> None:
    """docs/scripts.md's listing states: a grant whose session module has no code on the connected chain (a chain
    reset since, another deployment), or another contract there (here the EntryPoint, which reverts the module's
    questions), is listed as ``no module``, beside a grant judged on chain: one such grant does not stop the
    listing."""
    gone = grants[0].model_copy(update={"module": "0x" + "12" * 20})
    elsewhere = grants[2].model_copy(update={"module": grants[2].entry_point})
    with open_store(f"sqlite:///{tmp_path / 'sessions.db'}") as store:
        store.put_grant(gone)
        store.put_grant(elsewhere)
        store.put_grant(grants[1])
        listing = list_sessions(net.chain, store)
    statuses = {report.session_id: report.status for report in listing.reports}
    assert statuses == {
        "0x" + gone.session_id.hex(): "no module",
        "0x" + elsewhere.session_id.hex(): "no module",
        "0x" + grants[1].session_id.hex(): "not yet enabled",
    }


def test_a_grant_the_chain_could_not_judge_claims_no_disagreement_with_the_store(
    grants, net, tmp_path: Path
) -> None:
    """A grant of another chain, or whose module has no code here, marked revoked in the store: the listing does not
    say it is "not revoked on chain" (the chain was not asked), and says what it could not judge."""
    other_chain = grants[0].model_copy(update={"chain_id": net.chain_id + 1})
    no_module = grants[1].model_copy(update={"module": "0x" + "12" * 20})
    with open_store(f"sqlite:///{tmp_path / 'sessions.db'}") as store:
        for grant in (other_chain, no_module, grants[2]):
            store.put_grant(grant)
            store.mark_revoked(grant.session_id)
        listing = list_sessions(net.chain, store)
    found = {report.session_id: report for report in listing.reports}
    for grant, status in ((other_chain, "other chain"), (no_module, "no module")):
        report = found["0x" + grant.session_id.hex()]
        assert report.status == status and report.store is not None and report.store.revoked
        assert report.disagreements == []
    judged = found["0x" + grants[2].session_id.hex()]  # asked, and not revoked on chain: said
    assert judged.status == "not yet enabled"
    assert judged.disagreements[0].startswith("marked revoked in the store but not on chain")


def test_status_refuses_the_in_process_bundler() -> None:
    """docs/scripts.md: an in-process bundler keeps no record between runs, so ``status`` refuses it."""
    with pytest.raises(ConfigurationError, match="keeps no record between runs"):
        status_bundler("inprocess")


def test_status_without_a_bundler_does_not_offer_the_in_process_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ape run status HASH`` with no bundler given was told to pass "--bundler URL (or inprocess with --submitter
    ALIAS)", which status then refuses."""
    monkeypatch.delenv("KEYSCOPE_BUNDLER_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        status_bundler(None)
    assert str(info.value) == (
        "status asks a bundler: pass --bundler URL (the one that received the operation), set KEYSCOPE_BUNDLER_URL, "
        "or give --deployments FILE with a bundler_url"
    )


def test_an_unforeseen_error_is_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyscope.cli import reports_errors

    @click.command()
    @reports_errors
    def broken() -> None:
        raise RuntimeError("something\nkeyscope did not foresee")

    @click.command()
    @click.argument("path")
    @reports_errors
    def writes(path: str) -> None:
        Path(path).write_text("x")

    result = CliRunner().invoke(broken, [])
    assert result.exit_code == 1 and not isinstance(result.exception, RuntimeError)
    assert result.output.startswith(
        "error: unexpected RuntimeError: something keyscope did not foresee (set "
    )
    assert result.output.count("\n") == 1
    result = CliRunner().invoke(writes, ["/nonexistent-folder/out.json"])
    assert result.exit_code == 1
    assert "error: cannot use /nonexistent-folder/out.json: No such file or directory" in result.output
    monkeypatch.setenv("KEYSCOPE_DEBUG", "1")
    assert isinstance(CliRunner().invoke(broken, []).exception, RuntimeError)  # the traceback, when asked for


DEAD_ENDPOINTS = [
    "--node",
    "http://127.0.0.1:9",
    "--bundler",
    "http://127.0.0.1:9",
    "--module",
    "0x" + "cd" * 20,
]
"""A node, a bundler and a module where nothing answers: for refusals made before anything is asked."""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["dashboard", "0x1234"], "error: ACCOUNT: '0x1234' is not a valid address"),
        (
            ["dashboard", "0x" + "ab" * 20, "--module", "0x12"],
            "error: --module: '0x12' is not a valid address",
        ),
        (
            ["dashboard", "0x" + "ab" * 20, "--factory", "nft"],
            "error: --factory: 'nft' is not a valid address",
        ),
        (["dashboard", "0x" + "ab" * 20, "--node", "8545"], "Invalid value for '--node'"),
        (["dashboard", "0x" + "ab" * 20], "cannot reach http://127.0.0.1:9 for eth_chainId"),
    ],
)
def test_the_owners_pages_refuse_bad_input_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    """Nothing is served (the dashboard would wait for Ctrl-C) when an address is malformed or the node is down."""

    class CtrlC:
        @staticmethod
        def sleep(seconds: float) -> None:
            raise KeyboardInterrupt  # a dashboard that serves after all stops at once, and the test fails

    monkeypatch.setattr("keyscope.cli.browser.time", CtrlC)
    given = {word for word in args if word.startswith("--")}
    extra = [
        w
        for i in range(0, len(DEAD_ENDPOINTS), 2)
        if DEAD_ENDPOINTS[i] not in given
        for w in DEAD_ENDPOINTS[i : i + 2]
    ]
    store = f"sqlite:///{tmp_path / 's.db'}"
    open_store(store).close()  # the dashboard reads an existing store only
    message = _refused([*args, *extra, "--store", store])
    assert said in message


@pytest.mark.parametrize(
    ("requests", "said"),
    [
        ([], "wallet_grantPermissions takes a non-empty list of PermissionRequest objects"),
        ({}, "wallet_grantPermissions takes a non-empty list of PermissionRequest objects"),
        (
            [{"chainId": "0x1", "expiry": 2_000_000_000, "permission": {"type": "native-token-transfer"}}],
            "request 0 is not a valid ERC-7715 object: signer: Field required",
        ),
        (  # Date.now() in milliseconds for seconds: a session ending in the year 57,971
            [
                {
                    "chainId": "0x1",
                    "expiry": 1_767_225_600_000,
                    "signer": {"type": "account", "data": {"address": "0x" + "5b" * 20}},
                    "permission": {
                        "type": "contract-call",
                        "data": {"address": "0x" + "a0" * 20, "function": "f()"},
                    },
                }
            ],
            "it can only be milliseconds, 2026-01-01 00:00:00 UTC read as such",
        ),
    ],
)
def test_consent_requests_the_page_cannot_serve_leave_no_store_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, requests: Any, said: str
) -> None:
    """Requests that are no ERC-7715 params are refused before the node is asked and before the store is opened:
    neither the default store nor a store given with --store is set up for a grant that can never come."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(requests))
    for store in ([], ["--store", f"sqlite:///{tmp_path / 'given.db'}"]):
        result = CliRunner().invoke(main, ["consent", str(path), *DEAD_ENDPOINTS, *store])
        assert result.exit_code == 1 and said in result.output, result.output
        assert "cannot reach" not in result.output  # refused before the (dead) node was asked
        assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.json"]


def test_the_dashboard_reads_an_existing_store_and_never_sets_one_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped --store is refused before the node is asked, with nothing created there; the default store, when
    nothing was granted from this folder, is no store (said, and not created): the dashboard then knows sessions
    from the module's events only."""
    monkeypatch.chdir(tmp_path)
    account = "0x" + "ab" * 20
    mistyped = f"sqlite:///{tmp_path / 'sesions.db'}"
    result = CliRunner().invoke(main, ["dashboard", account, *DEAD_ENDPOINTS, "--store", mistyped])
    assert result.exit_code == 1, result.output
    assert f"error: --store {mistyped}: there is no store at {tmp_path / 'sesions.db'}" in result.output
    assert "cannot reach" not in result.output
    result = CliRunner().invoke(main, ["dashboard", account, *DEAD_ENDPOINTS])
    assert result.exit_code == 1, result.output
    # the default store's absence is said once the node answers (tests/e2e/test_browser.py), not before an error
    assert result.output == (
        "error: cannot reach http://127.0.0.1:9 for eth_chainId (ConnectError: [Errno 111] Connection refused): "
        "check the URL and that the node is running (on this machine, `python -m keyscope.local` runs a node and a "
        "bundler)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_endpoint_of_the_wrong_kind_is_named() -> None:
    """A bundler's URL given for the node (or the reverse) answers "method not found": the message says which
    URL and what to check, and a long list of the methods it does serve is cut."""
    from keyscope.bundler.client import bundler_error
    from keyscope.rpc import METHOD_NOT_FOUND, JsonRpcError

    served = "Invalid discriminator value. Expected " + " | ".join(f"'method_{n}'" for n in range(40))
    node = JsonRpcError("eth_getCode", METHOD_NOT_FOUND, served, url="http://127.0.0.1:4337")
    text = str(node)
    assert text.startswith("http://127.0.0.1:4337 does not serve eth_getCode (JSON-RPC error -32601: Invalid")
    assert "method_39" not in text and "a node's JSON-RPC URL where a node is asked for" in text
    bundler = bundler_error(
        "eth_supportedEntryPoints",
        JsonRpcError(
            "eth_supportedEntryPoints", METHOD_NOT_FOUND, "Method not found", url="http://127.0.0.1:8545"
        ),
    )
    assert bundler.code == METHOD_NOT_FOUND
    assert "http://127.0.0.1:8545 does not serve this ERC-4337 method: is it a node's URL?" in str(bundler)


def test_a_store_retrying_a_lost_database_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    """A SQL store retries a dropped connection for 15 s, logging each attempt: a command shows the first only."""
    import logging

    from keyscope.cli import reports_errors

    @click.command()
    @reports_errors
    def retries() -> None:
        log = logging.getLogger("keyscope.store")
        for attempt in range(6):
            log.warning("store %s: %s; retrying", "postgresql://db", f"connection refused ({attempt})")
        log.warning("store %s: something else", "postgresql://db")

    with caplog.at_level(logging.WARNING, logger="keyscope.store"):
        assert CliRunner().invoke(retries, []).exit_code == 0
    assert [record.getMessage() for record in caplog.records] == [
        "store postgresql://db: connection refused (0); retrying",
        "store postgresql://db: something else",
    ]
    assert not logging.getLogger("keyscope.store").filters  # nothing left behind for the next command


def test_the_command_says_its_version() -> None:
    """``keyscope --version``, what a newcomer tries first (once "No such option: --version")."""
    import keyscope

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"keyscope {keyscope.__version__}\n", result.output


@pytest.mark.parametrize(
    "command", [[], ["sessions"], ["outbox"], ["revoke"], ["recover"], ["consent"], ["dashboard"]]
)
def test_every_help_text_reads_as_plain_text(command: list[str]) -> None:
    """Help is for a terminal: no reStructuredText markup from the docstrings (``x``), and the secrets' variables
    named where a command uses them."""
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "``" not in result.output and ":class:" not in result.output and ":func:" not in result.output
    if not command:
        for name in ("KEYSCOPE_STORE", "KEYSCOPE_STORE_PASSPHRASE", "KEYSCOPE_OWNER_KEY", "KEYSCOPE_DEBUG"):
            assert name in result.output
        assert all(name in result.output for name in main.commands)


def test_the_consent_commands_help_says_what_its_requests_file_holds() -> None:
    """``keyscope consent --help`` named REQUESTS_FILE as "ERC-7715 REQUESTS_FILE" only: what a newcomer writes in
    it (the JSON list of PermissionRequest objects of wallet_grantPermissions) was not said."""
    result = CliRunner().invoke(main, ["consent", "--help"])
    said = " ".join(result.output.split())
    assert "a JSON list of PermissionRequest objects" in said and "docs/erc7715.md" in said, said
    assert "python -m keyscope.local --json" in said, said


def _script_command(name: str) -> click.Command:
    """``scripts/NAME.py``'s command, as ``ape run NAME`` loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"keyscope_script_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command: click.Command = module.cli
    return command


@pytest.mark.parametrize(
    ("script", "args", "said"),
    [
        (
            "create_account",
            ["--salt", "٣"],
            "'٣' is not a whole number in digits 0-9, or 0x and hex digits (a salt)",
        ),
        ("create_account", ["--salt", "1_000"], "'1_000' is not a whole number in digits 0-9, or 0x and hex"),
        ("create_account", ["--salt", " 7"], "' 7' is not a whole number in digits 0-9, or 0x and hex"),
        (
            "create_account",
            ["--salt", "0x1" + "0" * 64],
            ("0x1" + "0" * 37) + "… is out of range: a salt is 0 to 2**256 - 1",
        ),
        (
            "grant",
            ["nft", "safeMint(address to)", "--salt", "-1"],
            "-1 is out of range: a salt is 0 to 2**256 - 1",
        ),
        (
            "grant",
            ["nft", "safeMint(address to)", "--salt", "\uff14\uff12"],
            "'\uff14\uff12' is not a whole number in digits 0-9",
        ),
        (
            "deploy",
            ["--unstake-delay", "٨٦٤٠٠"],
            "'٨٦٤٠٠' is not a whole number in digits 0-9 (an unstake delay",
        ),
        ("deploy", ["--unstake-delay", "86_400"], "'86_400' is not a whole number in digits 0-9"),
        (
            "deploy",
            ["--unstake-delay", "0"],
            "0 is out of range: an unstake delay in seconds is 1 to 2**32 - 1",
        ),
        ("deploy", ["--unstake-delay", str(2**32)], f"{2**32} is out of range"),
    ],
)
def test_the_scripts_whole_numbers_are_digits_0_to_9_or_a_usage_error_naming_the_option(
    script: str, args: list[str], said: str
) -> None:
    """``--salt`` and ``--unstake-delay`` were click's ``int``, which reads other scripts' digits, ``_`` separators
    and spaces around (the same number, but keyscope reads numbers as digits 0-9 everywhere else), and let a
    negative salt or an unstake delay the EntryPoint refuses (0, past a uint32) through to the chain. They are
    refused while the command line is read, naming the option, before any node is asked."""
    result = CliRunner().invoke(_script_command(script), args)
    option = next(arg for arg in args if arg.startswith("--"))
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"Invalid value for '{option}': {said}" in message, message
    assert "Traceback" not in result.output


def test_a_salt_is_read_in_decimal_or_0x_hex() -> None:
    from keyscope.cli import SALT

    for text, number in (("42", 42), ("0x2a", 42), ("0X2A", 42), ("0", 0), (hex(2**256 - 1), 2**256 - 1)):
        assert SALT.convert(text, None, None) == number
    assert SALT.convert(7, None, None) == 7  # the default, given as an int


# --------------------------------------------------------------------------------------------------
# python -m keyscope.local
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--node-port", "99999"], "argument --node-port: 99999 is out of range: a TCP port is 0 to 65535"),
        (["--bundler-port", "-1"], "argument --bundler-port: -1 is out of range"),
        (["--chain-id", "0"], "argument --chain-id: 0 is out of range: a chain id is 1 to"),
        (["--block-time", "-1"], "argument --block-time: -1 is out of range: seconds between blocks is 1 to"),
        (["--block-time", "soon"], "argument --block-time: 'soon' is not a whole number"),
        # other scripts' digits, "_" and spaces, which int() reads: keyscope reads digits 0-9 only
        (
            ["--chain-id", "٣١٣٣٧"],
            "argument --chain-id: '٣١٣٣٧' is not a whole number in digits 0-9 (a chain id)",
        ),
        (["--block-time", "1_0"], "argument --block-time: '1_0' is not a whole number in digits 0-9"),
        (["--node-port", " 8545"], "argument --node-port: ' 8545' is not a whole number in digits 0-9"),
    ],
)
def test_the_local_stacks_numbers_are_checked_before_anything_starts(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port past 65535 once reached anvil (whose own refusal came back as a log), a chain id of 0 started a
    chain no wallet accepts, and a negative block time ended in a traceback."""
    from keyscope.local.__main__ import main as local_main

    def no_stack(**options: object) -> None:
        raise AssertionError(
            f"a stack was made of {options}"
        )  # nothing may start (it would run until Ctrl-C)

    monkeypatch.setattr("keyscope.local.__main__.LocalStack", no_stack)

    with pytest.raises(SystemExit) as done:
        local_main([*args, "--no-bundler"])
    assert done.value.code == 2 and said in capsys.readouterr().err


def test_the_local_stacks_help_names_what_it_deploys(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m keyscope.local --help`` said it deploys the EntryPoint v0.7 and keyscope's contracts: the README's
    EIP-7702 example needs the v0.8 one and the delegate, which it deploys too, and its ``--json`` names."""
    from keyscope.local.__main__ import main as local_main

    with pytest.raises(SystemExit) as done:
        local_main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0 and "EntryPoints v0.7 and v0.8" in said and "EIP-7702 delegate" in said, said


def test_a_log_folder_that_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyscope.local.__main__ import main as local_main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert local_main(["--log-dir", str(blocker / "logs"), "--no-bundler"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: cannot use {blocker / 'logs'}: {blocker} is a file, not a folder; check the path (--log-dir)"
    )
    assert "Traceback" not in err
    # the file itself given as the folder: once "File exists"
    assert local_main(["--log-dir", str(blocker), "--no-bundler"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot use {blocker}: {blocker} is a file, not a folder; check the path")


def test_a_corrupted_outbox_record_hides_no_session_from_the_listing(grants, tmp_path: Path) -> None:
    """`keyscope sessions` counts each session's operations in flight from the store's outbox, which the workers
    (the dapp's side) write. One record that cannot be read (cut off mid-write) made the whole listing fail, so the
    owner saw none of the account's sessions; `keyscope outbox` lists around such a record, and so does this: the
    sessions are listed and the record is named as unreadable."""
    folder = tmp_path / "store"
    store = open_store(folder)
    for grant in grants:
        store.put_grant(grant)
    session = "0x" + grants[0].session_id.hex()
    for n in (1, 2):
        op = make_op(n).replace(sender=grants[0].account)
        store.record_intent(f"intent-{n}", grants[0].account, session, 0, op, store_hash(n))
    damaged = next(iter(sorted((folder / "outbox").iterdir())))
    damaged.write_text('{"op": ')

    code, output = sessions(str(folder), "--json")
    assert code == 0, output
    listed = json.loads(output)
    assert [row["session_id"] for row in listed["sessions"]] == ["0x" + g.session_id.hex() for g in grants]
    assert listed["unreadable"] == []
    assert [item["name"] for item in listed["unreadable_outbox"]] == [damaged.stem]
    assert str(damaged) in listed["unreadable_outbox"][0]["problem"]
    code, table = sessions(str(folder))
    words = " ".join(re.sub("[\u2500-\u257f]", " ", table).split())
    assert code == 0 and "3 session(s) (1 unreadable outbox record(s)" in words, table
    assert "unreadable outbox record" in words


def test_the_commands_take_the_owner_s_gas_cap_from_the_environment(net, monkeypatch) -> None:
    """The owner's operations are refused past a gas cap (attack 287); the ``keyscope`` command and the ``ape run``
    scripts take it from ``KEYSCOPE_OWNER_MAX_GAS_COST`` (wei, decimal or 0x-hex; 0 for none), and refuse a value
    that is no such number, naming the variable."""
    from keyscope.operations import DEFAULT_OWNER_MAX_GAS_COST

    owner = LocalSigner.generate()
    monkeypatch.delenv("KEYSCOPE_OWNER_MAX_GAS_COST", raising=False)
    assert make_owner(net, owner).max_gas_cost == DEFAULT_OWNER_MAX_GAS_COST
    for given, cap in (("0", 0), ("2000000000000000000", 2 * 10**18), ("0x10", 16), (" 7 ", 7)):
        monkeypatch.setenv("KEYSCOPE_OWNER_MAX_GAS_COST", given)
        assert make_owner(net, owner).max_gas_cost == cap
    for wrong in ("0.5", "-1", "1e18", "lots", "0x"):
        monkeypatch.setenv("KEYSCOPE_OWNER_MAX_GAS_COST", wrong)
        with pytest.raises(BadInputError) as refused:
            make_owner(net, owner)
        assert "KEYSCOPE_OWNER_MAX_GAS_COST" in str(refused.value) and "wei" in str(refused.value)


def test_open_says_so_when_no_browser_could_be_opened(
    local_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``keyscope dashboard ACCOUNT --open`` on a machine without a browser (a server, a container) opened nothing and
    said nothing: the person waited for a page. It says to open the address it printed."""
    import types
    import webbrowser

    from keyscope.cli import browser

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt  # Ctrl-C, once the page is served

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    monkeypatch.setattr(browser, "time", types.SimpleNamespace(sleep=interrupted))
    endpoints = [
        "--node",
        local_stack.rpc_url,
        "--bundler",
        local_stack.bundler_url,
        "--module",
        local_stack.module,
    ]
    result = CliRunner().invoke(main, ["dashboard", "0x" + "ab" * 20, *endpoints, "--open"])
    assert result.exit_code == 130, result.output
    assert (
        "--open: no browser could be opened here; open the address above in the owner's browser\n"
        in result.output
    ), result.output
