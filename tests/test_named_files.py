"""Files a person names and addresses that must hold keyscope's contracts, given wrong: a deployments file, an
ERC-7715 requests file, a sponsorship policy, a sponsor's key file and an ABI file that are not UTF-8 text (a
binary file, a file saved in another encoding), an ABI given by its path, a deployments file (or a grant, revoked with ``keyscope revoke``) of another chain, and
a module, factory or paymaster address without the contract, on a real anvil. Each is refused in one line that
says what was wrong (the bytes in hex, never a key's) and what to give, with no traceback and nothing served.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscope import Policy
from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.cli import Deployments, main
from keyscope.errors import BadInputError, InvalidAbiError, UnknownFunctionError
from keyscope.hexutil import to_address
from keyscope.rpc import JsonRpcClient
from keyscope.sponsor import SponsorshipPolicy
from keyscope.sponsor.__main__ import main as sponsor_main
from keyscope.store import open_store
from keyscope.textfile import read_text_file
from support.postgres import postgres_fixture
from test_chain import anvil_url  # noqa: F401  (a module-scoped fixture: a real anvil)
from test_store import make_grant

ROOT = Path(__file__).resolve().parents[1]
TARGET = to_address("0x" + "cd" * 20)
KEY_HEX = "11" * 32
ABI = [
    {"type": "function", "name": "safeMint", "inputs": [{"name": "to", "type": "address"}], "outputs": []},
]
# a UTF-16 file, as some editors save JSON: not UTF-8 from its second byte on
UTF16 = '{"module": "0x"}'.encode("utf-16")

postgres_server = postgres_fixture(scope="module")


def one_line_refusal(args: list[str]) -> str:
    """Run ``keyscope args``: refused with status 1, one ``error:`` line, no traceback; that line."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), f"a traceback: {result.exception!r}"
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "unexpected" not in result.output, result.output
    return result.output.strip()


# --------------------------------------------------------------------------------------------------
# text that is not UTF-8
# --------------------------------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_named_with_its_bytes_in_hex(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(BadInputError) as info:
        read_text_file(path, "deployments file", "a JSON object")
    assert str(info.value) == (
        f"deployments file {path} is not UTF-8 text: byte 0xff at offset 7 (bytes 3 to 10: 0x223a2022fffe227d); "
        "give a JSON object"
    )
    # a byte-order mark, as some editors write: read as the text after it
    path.write_bytes(b"\xef\xbb\xbf[1]")
    assert read_text_file(path, "file") == "[1]"
    with pytest.raises(BadInputError, match="no such file; check the path"):
        read_text_file(tmp_path / "missing.json", "file")
    with pytest.raises(BadInputError, match="is a folder, not a file"):
        read_text_file(tmp_path, "file")


def test_a_key_file_that_is_not_utf8_is_refused_without_its_bytes(tmp_path: Path) -> None:
    """A raw 32-byte key is not text: the message names the file, never a byte of what may be the key."""
    secret = bytes.fromhex("ff" + "a7" * 31)
    path = tmp_path / "sponsor.key"
    path.write_bytes(secret)
    with pytest.raises(BadInputError) as info:
        read_text_file(path, "the signing key file", secret=True)
    message = str(info.value)
    assert f"{path} is not UTF-8 text" in message and "offset 0" in message
    assert "a7a7" not in message and "0xff" not in message


def _a_store(folder: Path) -> str:
    """The URL of a session store set up in ``folder`` (the dashboard reads an existing store only)."""
    url = f"sqlite:///{folder / 'sessions.db'}"
    open_store(url).close()
    return url


def test_the_commands_refuse_a_deployments_or_requests_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Once ``error: unexpected UnicodeDecodeError: 'utf-8' codec can't decode byte ...``."""
    path = tmp_path / "deployments.json"
    path.write_bytes(UTF16)
    said = one_line_refusal(["dashboard", TARGET, "--deployments", str(path), "--store", _a_store(tmp_path)])
    assert said.startswith(
        f"error: deployments file {path} is not UTF-8 text: byte 0xff at offset 0 (bytes 0 to"
    )
    assert "give the JSON object `python -m keyscope.local --json` prints" in said
    with pytest.raises(BadInputError, match="is not UTF-8 text"):
        Deployments.load(path)  # what the `ape run` scripts read too
    said = one_line_refusal(["consent", str(path), "--deployments", str(path)])
    assert said.startswith(f"error: requests file {path} is not UTF-8 text: byte 0xff at offset 0")


def test_a_sponsorship_policy_that_is_not_utf8_or_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_bytes(UTF16)
    with pytest.raises(
        BadInputError, match=r"sponsorship policy .* is not UTF-8 text: byte 0xff at offset 0"
    ):
        SponsorshipPolicy.from_file(path)
    path.write_text("targets: any")
    with pytest.raises(BadInputError, match=r"sponsorship policy .* is not JSON \(Expecting value"):
        SponsorshipPolicy.from_file(path)


# --------------------------------------------------------------------------------------------------
# a store path that names something else
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["sessions"], ["outbox"], ["revoke", "0xabcd"]])
def test_a_command_that_only_reads_writes_no_store_into_an_empty_folder_or_another_programs_database(
    tmp_path: Path, command: list[str]
) -> None:
    """Once listed as an empty store, after setting one up there: keyscope's folders in an empty folder, its six
    tables in the database of another program (a mistyped --store)."""
    folder = tmp_path / "data"
    folder.mkdir()
    empty = tmp_path / "sessions.db"
    empty.touch()
    other = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(other)) as database:
        database.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        database.execute("INSERT INTO users VALUES (1, 'ann')")
        database.commit()
    fix = "and nothing was written to it: check the path, or give the store your workers use"
    for url, said in [
        (str(folder), f"the folder {folder} is empty, not a keyscope store, {fix}"),
        (f"file://{folder}", f"the folder {folder} is empty, not a keyscope store, {fix}"),
        (f"sqlite:///{empty}", f"{empty} is an empty file, not a keyscope store, {fix}"),
        (
            f"sqlite:///{other}",
            f"the SQLite database {other} holds no keyscope store (its tables: users), {fix}",
        ),
    ]:
        assert one_line_refusal([command[0], "--store", url, *command[1:]]) == f"error: --store {url}: {said}"
    assert list(folder.iterdir()) == [] and empty.stat().st_size == 0
    with contextlib.closing(sqlite3.connect(other)) as database:
        assert database.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [
            ("users",)
        ]
        assert database.execute("SELECT * FROM users").fetchall() == [(1, "ann")]


def test_the_folder_of_a_sqlite_store_given_for_the_store_names_the_stores_url(tmp_path: Path) -> None:
    """``--store .keyscope``, the folder of the default store ``sqlite:///.keyscope/sessions.db``, was refused as
    ``not a keyscope store (it has no keyscope-store.json)``, leaving the newcomer to guess the URL."""
    folder = tmp_path / ".keyscope"
    folder.mkdir()  # as `ape run grant` makes it
    open_store(f"sqlite:///{folder / 'sessions.db'}").close()
    said = one_line_refusal(["sessions", "--store", str(folder)])
    assert f"it holds the SQLite store sessions.db, sqlite:///{folder / 'sessions.db'}" in said, said
    assert sorted(p.name for p in folder.iterdir()) == ["sessions.db"]


def test_a_command_that_only_reads_writes_no_store_into_another_programs_postgresql_database(
    postgres_server,
) -> None:
    """A mistyped --store naming another program's PostgreSQL database (or a schema of its own through the
    search_path) is refused by the commands that only read, and gets none of keyscope's tables; a database that
    holds a keyscope store is listed as before."""
    import psycopg

    other = postgres_server.create_database()
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ann')")
    empty_schema = postgres_server.create_schema()
    said = (
        "the PostgreSQL database holds no keyscope store (no keyscope tables where the connection looks), and "
        "nothing was written to it: check the database and its search_path, or give the store your workers use"
    )
    for url in (other, empty_schema):
        for command in (["sessions"], ["outbox"], ["revoke", "0xabcd"]):
            refusal = one_line_refusal([command[0], "--store", url, *command[1:]])
            assert refusal.startswith("error: --store ") and refusal.endswith(said), refusal
    with psycopg.connect(other) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        assert tables == [("users",)]
        assert conn.execute("SELECT * FROM users").fetchall() == [(1, "ann")]

    ours = postgres_server.create_database()
    grant = make_grant()
    store = open_store(ours)
    try:
        store.put_grant(grant)
    finally:
        store.close()
    listed = CliRunner().invoke(main, ["sessions", "--store", ours, "--json"])
    assert listed.exit_code == 0, listed.output
    assert grant.session_id.hex() in listed.output.replace("0x", ""), listed.output


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sqlite:x.db", "the store URL lacks the // after sqlite: (as written it names a folder store"),
        ("sqlite:x.db", "give 'sqlite:///x.db'"),
        ("~/stores/s", "(~ is not expanded here, only by a shell: give the full path, "),
        (
            "file://relative/dir",
            "error: file store URL 'file://relative/dir' names host 'relative': use file:///",
        ),
        ("postgresql://app@db:543x/keyscope", "(its port '543x' is not a number): use sqlite:///path.db or"),
    ],
)
def test_a_store_url_written_wrong_says_how_to_write_it(
    url: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once "there is no store at .../sqlite:x.db (sqlite:///sqlite:x.db is relative ...)", "there is no store at
    /dir" (the host taken for a folder), and Python's "invalid literal for int() with base 10"."""
    monkeypatch.chdir(tmp_path)
    assert said in one_line_refusal(["sessions", "--store", url])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' is not a valid URL (Port out of range 0-65535)"),
        ("http://[::1", "'http://[::1' is not a valid URL (Invalid port: ':1')"),
        ("http://node:85a5", "'http://node:85a5' is not a valid URL (Invalid port: '85a5')"),
    ],
)
def test_a_node_url_that_is_not_a_url_is_refused_in_one_line(url: str, said: str, tmp_path: Path) -> None:
    """Once ``unexpected InvalidURL`` (an unclosed ``[``), or "Connection refused" for a port past 65535."""
    open_store(f"sqlite:///{tmp_path / 's.db'}").close()
    refusal = one_line_refusal(["sessions", "--store", f"sqlite:///{tmp_path / 's.db'}", "--node", url])
    assert refusal == f"error: {said}: give the endpoint as http://host:port"


def test_a_node_url_with_a_wrong_path_says_to_check_it(anvil_url: str, tmp_path: Path) -> None:  # noqa: F811
    open_store(f"sqlite:///{tmp_path / 's.db'}").close()
    url = anvil_url + "/v2/extra"
    refusal = one_line_refusal(["sessions", "--store", f"sqlite:///{tmp_path / 's.db'}", "--node", url])
    assert refusal.startswith(f"error: {url} answered eth_chainId with HTTP ")
    assert refusal.endswith("check that the URL (its host, port and path) is the JSON-RPC endpoint")


def test_a_store_that_holds_nothing_yet_is_listed_as_empty(tmp_path: Path) -> None:
    """What a worker set up and has not written to yet is a store: listed, with no session."""
    for url in (str(tmp_path / "store"), f"sqlite:///{tmp_path / 'store.db'}"):
        open_store(url).close()
        result = CliRunner().invoke(main, ["sessions", "--store", url, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"sessions": [], "unreadable": []}


# --------------------------------------------------------------------------------------------------
# where a deployment's addresses go
# --------------------------------------------------------------------------------------------------


def test_a_deployments_file_that_cannot_be_written_is_refused_and_a_writable_one_is_left_untouched(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    for out, said in [
        (tmp_path, f"--out {tmp_path} is a folder: give a file path, e.g. {tmp_path / 'deployments.json'}"),
        (blocker / "d.json", f"cannot write there ({blocker} is a file, not a folder); nothing was deployed"),
    ]:
        with pytest.raises(BadInputError) as info:
            Deployments.check_writable(out)
        assert said in str(info.value)
    fine = tmp_path / "new" / "deployments.json"
    Deployments.check_writable(fine)
    assert (
        not fine.exists() and list(fine.parent.iterdir()) == []
    )  # its folder made, as save() would; no file


def test_ape_run_deploy_sends_nothing_when_its_out_file_cannot_be_written(
    anvil_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Once every contract was deployed (and paid for) and then the addresses were lost to the bad --out."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEYSCOPE_")}
    ape = Path(sys.executable).with_name("ape")
    args = [
        str(ape),
        "run",
        "deploy",
        "--network",
        anvil_url,
        "--deployer",
        "TEST::0",
        "--out",
        f"{blocker}/d.json",
    ]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: --out {blocker}/d.json: cannot write there ({blocker} is a file, not a folder); nothing was "
        "deployed: give a path in a folder you can write to"
    ], done.stderr
    deployer = JsonRpcClient(anvil_url).request("eth_accounts")[0]
    assert JsonRpcClient(anvil_url).request("eth_getTransactionCount", [deployer, "latest"]) == "0x0"


def test_ape_run_status_takes_the_network_option_the_other_commands_take_and_says_an_ape_choice_is_not_used() -> (
    None
):
    """Once "No such option: --network" (exit 2) for a newcomer who gave it as to every other command. A node's URL
    given as --network is the node that confirms a receipt (tests/e2e/test_scripts.py); an ape network choice is
    not used, and the note says how to give the node."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEYSCOPE_")}
    ape = Path(sys.executable).with_name("ape")
    args = [str(ape), "run", "status", "0x" + "ab" * 32, "--bundler", "http://127.0.0.1:9", "--network", "x"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith(("note: ", "error: "))]
    assert lines[0] == (
        "note: status does not connect through ape: --network x is not used; give the node's URL with --node to have "
        "the receipt confirmed at the node"
    )
    assert lines[1].startswith("error: cannot reach http://127.0.0.1:9 for eth_getUserOperationReceipt")


# --------------------------------------------------------------------------------------------------
# ABIs given by their file
# --------------------------------------------------------------------------------------------------


def test_an_abi_is_read_from_its_file_by_path(tmp_path: Path) -> None:
    """``Policy.from_abi(nft, "NFT.json", ...)``: once "the ABI is not valid JSON (Expecting value ...)"."""
    plain = tmp_path / "NFT.json"
    plain.write_text(json.dumps(ABI))
    artefact = tmp_path / "artefact.json"
    artefact.write_text(json.dumps({"contractName": "NFT", "abi": ABI}))
    for given in (plain, str(plain), str(artefact), f"  {artefact}\n"):
        assert Policy.from_abi(TARGET, given, "safeMint").function == "safeMint(address)"


def test_an_abi_file_that_is_missing_or_not_an_abi_says_so(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"ABI file NFT\.json: no such file; check the path"):
        Policy.from_abi(TARGET, "NFT.json", "safeMint")
    binary = tmp_path / "NFT.json"
    binary.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(BadInputError, match=r"ABI file .*NFT\.json is not UTF-8 text: byte 0x89 at offset 0"):
        Policy.from_abi(TARGET, binary, "safeMint")
    binary.write_text("safeMint(address)")
    with pytest.raises(InvalidAbiError, match=r"the ABI file .*NFT\.json is not valid JSON"):
        Policy.from_abi(TARGET, str(binary), "safeMint")
    binary.write_text('{"bytecode": "0x00"}')
    with pytest.raises(
        InvalidAbiError, match=r"the ABI is a JSON object, not a list of entries \(keys: bytecode\)"
    ):
        Policy.from_abi(TARGET, binary, "safeMint")
    with pytest.raises(
        UnknownFunctionError, match="The ABI has no functions: check that it is the contract's ABI"
    ):
        Policy.from_abi(TARGET, [{"type": "event", "name": "Transfer", "inputs": []}], "safeMint")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("5", "the ABI file {path} holds the number 5"),
        (
            json.dumps(json.dumps(ABI)),
            "the ABI file {path} holds a string (the ABI's JSON text written as one",
        ),
        ('{"abi": null}', "the 'abi' key of the ABI file {path} holds null"),
    ],
    ids=["a-number", "the-list-as-a-json-string", "an-abi-key-of-null"],
)
def test_an_abi_file_holding_json_that_is_no_list_says_what_it_holds(
    tmp_path: Path, content: str, said: str
) -> None:
    """A file of JSON that is no list of entries (the ABI's text saved as one JSON string, say) was refused as
    ``cannot read an ABI from a str``: the file's path, given as a string, taken for the ABI."""
    path = tmp_path / "NFT.json"
    path.write_text(content)
    with pytest.raises(InvalidAbiError) as refused:
        Policy.from_abi(TARGET, str(path), "safeMint")
    assert str(refused.value).startswith(said.format(path=path)), str(refused.value)
    assert "from a str" not in str(refused.value)


def test_an_abi_nested_past_the_parsers_depth_is_refused_as_bad_input() -> None:
    """Once a RecursionError from the JSON decoder."""
    with pytest.raises(
        InvalidAbiError, match="nests arrays and objects more than 256 deep, which no ABI does"
    ):
        Policy.from_abi(TARGET, "[" * 100_000 + "]" * 100_000, "safeMint")


# --------------------------------------------------------------------------------------------------
# another chain, or no contract where keyscope's must be (a real anvil)
# --------------------------------------------------------------------------------------------------


def test_the_owners_pages_refuse_a_deployments_file_of_another_chain(
    anvil_url: str,  # noqa: F811
    tmp_path: Path,
    never_serve: None,
) -> None:
    """Once the dashboard was served for chain 31337 with the addresses of chain 5."""
    deployments = tmp_path / "deployments.json"
    deployments.write_text(
        json.dumps(
            {"chain_id": 5, "rpc_url": anvil_url, "bundler_url": "http://127.0.0.1:9", "module": TARGET}
        )
    )
    said = one_line_refusal(
        ["dashboard", TARGET, "--deployments", str(deployments), "--store", _a_store(tmp_path)]
    )
    assert said == (
        f"error: the deployments file {deployments} is for chain 5, but the node {anvil_url} is chain 31337: "
        "give the node of chain 5 (--node), or the deployments file of this chain"
    )


def test_keyscope_revoke_names_its_own_options_for_a_node_of_another_chain(
    anvil_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once "pass --network for chain 5", an option of the ``ape run`` scripts that ``keyscope revoke`` lacks."""
    grant = make_grant().model_copy(update={"chain_id": 5})
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(grant)
    monkeypatch.setenv("KEYSCOPE_OWNER_KEY", "0x" + KEY_HEX)
    session = "0x" + grant.session_id.hex()
    args = ["revoke", "--store", url, session, "--node", anvil_url, "--bundler", "http://127.0.0.1:9"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    revoked, said = result.output.splitlines()  # revoked in the store first, as the command says
    assert revoked.endswith("is revoked in the store: every worker refuses it")
    assert said == (
        f"error: session {session} was granted on chain 5, but --node is connected to chain 31337: pass --node "
        "for chain 5"
    )


@pytest.fixture
def sponsor_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anvil_url: str) -> list[str]:  # noqa: F811
    policy = tmp_path / "policy.json"
    policy.write_text('{"targets": "any", "total_budget_wei": "1"}')
    monkeypatch.setenv("KEYSCOPE_TEST_SPONSOR_KEY", "0x" + KEY_HEX)
    return ["--policy", str(policy), "--signer-key-env", "KEYSCOPE_TEST_SPONSOR_KEY", "--rpc-url", anvil_url]


def sponsor_refusal(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert sponsor_main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert "unexpected" not in err, err
    return err.strip()


def test_the_sponsor_refuses_a_paymaster_without_code_or_of_another_kind(
    sponsor_args: list[str],
    anvil_url: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Once eth_abi's InsufficientDataBytes traceback: ``signer()`` read from an address without code."""
    said = sponsor_refusal([*sponsor_args, "--paymaster", TARGET], capsys)
    assert said == (
        f"error: no contract at the paymaster address {TARGET} on chain 31337 (node {anvil_url}): check the "
        "address and the node, or deploy a SponsorPaymaster there (docs/sponsorship.md)"
    )
    client = JsonRpcClient(anvil_url)
    reverts, silent = to_address("0x" + "a1" * 20), to_address("0x" + "a2" * 20)
    client.request("anvil_setCode", [reverts, "0x5f5ffd"])  # PUSH0 PUSH0 REVERT: every call reverts
    client.request("anvil_setCode", [silent, "0x00"])  # STOP: every call returns nothing
    client.request("anvil_setCode", [ENTRY_POINT_V07, "0x00"])  # an EntryPoint there, as far as code goes
    for paymaster in (reverts, silent):
        said = sponsor_refusal([*sponsor_args, "--paymaster", paymaster], capsys)
        assert said.startswith(
            f"error: the contract at {paymaster} does not answer signer(), owner() and entryPoint() as "
            "keyscope's SponsorPaymaster does ("
        )
        assert said.endswith("): give the address of a SponsorPaymaster")
    said = sponsor_refusal([*sponsor_args, "--paymaster", silent, "--entry-point", TARGET], capsys)
    assert f"no contract at the EntryPoint address {TARGET} on chain 31337" in said
    client.request("anvil_setCode", [ENTRY_POINT_V07, "0x"])


def test_the_sponsor_refuses_a_key_file_that_is_not_text_without_showing_it(
    sponsor_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once a UnicodeDecodeError traceback, which also printed the start of the key file's bytes."""
    key_file = tmp_path / "sponsor.key"
    key_file.write_bytes(bytes.fromhex("ff" + KEY_HEX[2:]))
    said = sponsor_refusal([*sponsor_args, "--paymaster", TARGET, "--signer-key-file", str(key_file)], capsys)
    assert said.startswith(f"error: the signing key file {key_file} is not UTF-8 text")
    assert "1111" not in said and "0xff" not in said


def test_the_sponsor_refuses_an_entry_point_its_paymaster_does_not_serve(
    sponsor_args: list[str],
    anvil_url: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A SponsorPaymaster deployed for one EntryPoint, served with ``--entry-point`` another (v0.8 for a v0.7
    paymaster, say): the service started and signed for operations no EntryPoint would let it pay for (its deposit
    is at the one it serves). It is refused at start, naming the EntryPoint the paymaster serves."""
    from keyscope.devnode import deploy_contract
    from keyscope.signing import LocalSigner

    client = JsonRpcClient(anvil_url)
    served, other = to_address("0x" + "e7" * 20), to_address("0x" + "e8" * 20)
    for address in (served, other):
        client.request("anvil_setCode", [address, "0x00"])  # EntryPoints, as far as code goes
    deployer = client.request("eth_accounts")[0]
    signer = LocalSigner("0x" + KEY_HEX).address
    paymaster = deploy_contract(
        client, deployer, "SponsorPaymaster", ["address", "address", "address"], [served, deployer, signer]
    )
    said = sponsor_refusal([*sponsor_args, "--paymaster", paymaster, "--entry-point", other], capsys)
    assert said == (
        f"error: the paymaster {paymaster} serves the EntryPoint {served}, not {other}: give --entry-point "
        f"{served}, or the address of the paymaster deployed for {other}"
    )


def test_keyscope_recover_refuses_a_node_of_another_chain_than_the_records_in_flight(
    anvil_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """``keyscope recover --node`` of the wrong network (a testnet's node for a mainnet store, say) followed the
    records in flight on that chain: a nonce used there made an operation look displaced, to be failed or built
    again, while it could still land on its own chain. It is refused, naming both chains, and nothing changes."""
    from test_store import h, make_op

    grant = make_grant().model_copy(update={"chain_id": 5})
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(grant)
        store.record_intent("order-1", grant.account, grant.session_id, 0, make_op(), h(1))
    session = "0x" + grant.session_id.hex()
    result = CliRunner().invoke(
        main,
        ["recover", "--store", url, "--node", anvil_url, "--bundler", "http://127.0.0.1:9", "--wait", "0"],
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert " ".join(result.output.split()) == (
        "error: records in flight are of sessions granted on another chain than --node's (31337): chain 5: 1 "
        f"session(s), {session}; pass --node and --bundler of chain 5 (nothing was followed or changed)"
    )
    with open_store(url, create=False) as store:
        record = store.get_by_intent("order-1")
        assert record is not None and record.state == "built" and record.attempts == 0
