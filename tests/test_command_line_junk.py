"""Junk given to every option, argument and environment variable of the command lines (``keyscope``'s commands,
``python -m keyscope.sponsor``, ``python -m keyscope.local``'s numbers): each is refused with status 1 or 2, an
``error:`` line that says what was wrong, no traceback, no private key echoed, and no file it reads changed nor
any created. No network: node and bundler URLs point at 127.0.0.1 ports where nothing listens.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.errors import PRIVATE_KEY_NOT_SHOWN
from keyscope.local.__main__ import _parser as local_parser
from keyscope.sponsor.__main__ import _parser as sponsor_parser
from keyscope.sponsor.__main__ import main as sponsor_main
from keyscope.store import open_store
from test_store import make_grant

KEY = "0x" + "5a" * 32
"""A private key (well formed, not the owner of anything here): given where it does not belong, never echoed."""
PRIVATE_KEY = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
DEAD_NODE = "http://127.0.0.1:9"
DEAD_BUNDLER = "http://127.0.0.1:7"
ADDRESS = "0x" + "cd" * 20
UNKNOWN_SESSION = "0x" + "ee" * 32

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run, as the suite's other property tests in CI
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Workspace:
    """A folder the commands run in: a store with one grant, a folder, files of garbage and of JSON of the wrong
    shape, a valid ERC-7715 requests file, a sponsorship policy; and what it holds, to see that nothing changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store_file = root / "sessions.db"
        self.store = f"sqlite:///{self.store_file}"
        with open_store(self.store) as store:
            store.put_grant(make_grant())
        (root / "folder").mkdir()
        self.folder = root / "folder"
        self.missing = root / "missing" / "file.json"
        self.garbage = root / "garbage.bin"
        self.garbage.write_bytes(b"\xff\xfe\x00garbage\x1b[31m" + bytes(range(256)))
        self.wrong_json = root / "wrong.json"
        self.wrong_json.write_text(json.dumps({"module": 7, "rpc_url": ["x"], "chain_id": "one", "0": None}))
        self.key_file = root / "key.txt"
        self.key_file.write_text(KEY + "\n")
        self.requests = root / "requests.json"
        self.requests.write_text(
            json.dumps(
                [
                    {
                        "chainId": "0x7a69",
                        "expiry": 2_000_000_000,
                        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
                        "permission": {
                            "type": "contract-call",
                            "data": {"address": ADDRESS, "function": "safeMint(address to)"},
                        },
                        "policies": [],
                    }
                ]
            )
        )
        self.policy = root / "policy.json"
        self.policy.write_text('{"targets": "any", "total_budget_wei": "1"}')

    def snapshot(self) -> dict[str, bytes | None]:
        return {
            str(path.relative_to(self.root)): None if path.is_dir() else path.read_bytes()
            for path in sorted(self.root.rglob("*"))
        }

    @contextlib.contextmanager
    def unchanged(self) -> Iterator[None]:
        """Run in the workspace; assert afterwards that no file in it was changed, created or removed."""
        before = self.snapshot()
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            yield
        finally:
            os.chdir(cwd)
        after = self.snapshot()
        changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
        assert not changed, f"changed or created: {changed}"


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("junk"))


def junk_words(space: Workspace) -> st.SearchStrategy[str]:
    """Command-line words that are no valid value of any option here."""
    fixed = [
        "",
        " ",
        "\t\n",
        "\u2603",
        "é\u0301",
        "\u202eevil",
        "\x1b[31mred",
        "\x07",
        "9" * 80,
        "-" + "9" * 80,
        "-1",
        "-0.5",
        "0.5",
        "1e309",
        "nan",
        "-inf",
        "0x",
        "0x1",
        "0xabc",
        "abc",
        "0xzz",
        "ab" * 20,
        "0x" + "ab" * 19 + "a",
        KEY,
        KEY[2:],
        str(space.folder),
        str(space.missing),
        str(space.garbage),
        str(space.wrong_json),
        "ftp://127.0.0.1:9",
        "http://127.0.0.1:0",
        "http://127.0.0.1:65536",
        "http://[::1",
        "http://127.0.0.1:99999999999999999999",
        "sqlite:///" + str(space.folder),
        "sqlite:///" + str(space.garbage),
        "sqlite:///" + str(space.missing),
        "postgresql://127.0.0.1:0/x",
        "file:///etc/passwd",
    ]
    random = st.text(max_size=12).filter(lambda word: not word.strip().isdigit())
    # no NUL: no program's arguments can hold one (exec takes C strings); a file's path with one is refused below
    return (st.sampled_from(fixed) | random).filter(lambda word: "\x00" not in word)


def assert_refused(exit_code: int, output: str, exception: BaseException | None = None) -> None:
    """Refused as the project says: status 1 or 2, an error line, no traceback, no key, not 'unexpected'."""
    assert exception is None or isinstance(exception, SystemExit), f"raised {exception!r}\n{output}"
    assert exit_code in (1, 2), (exit_code, output)
    assert "Traceback" not in output, output
    assert re.search(r"^(error: |Error: |.*: error: )", output, re.M), output
    assert "unexpected" not in output, output
    assert not PRIVATE_KEY.search(output), output


# --------------------------------------------------------------------------------------------------
# keyscope COMMAND
# --------------------------------------------------------------------------------------------------


def _commands(space: Workspace) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each command with options that are fine but end in a refusal (a session not in the store, a node where
    nothing listens): with one of them replaced by junk, the command must still be refused."""
    store = ["--store", space.store]
    endpoints = ["--node", DEAD_NODE, "--bundler", DEAD_BUNDLER]
    pages = [*endpoints, "--module", ADDRESS, "--factory", ADDRESS, *store]
    return {
        "sessions": (["sessions", *store, "--node", DEAD_NODE, "--account", ADDRESS], {}),
        "outbox": (["outbox", *store, "--state", "pending", "--limit", "5"], {}),
        "revoke": (
            ["revoke", UNKNOWN_SESSION, *store, *endpoints, "--timeout", "5"],
            {"KEYSCOPE_OWNER_KEY": KEY},
        ),
        "recover": (["recover", *store, *endpoints, "--older-than", "1", "--wait", "1"], {}),
        "consent": (
            [
                "consent",
                str(space.requests),
                *pages,
                "--out",
                "responses.json",
                "--timeout",
                "5",
                "--port",
                "0",
            ],
            {},
        ),
        "dashboard": (["dashboard", ADDRESS, *pages, "--port", "0"], {}),
    }


_ENV = {
    "sessions": ["KEYSCOPE_STORE"],
    "outbox": ["KEYSCOPE_STORE"],
    "revoke": ["KEYSCOPE_STORE", "KEYSCOPE_OWNER_KEY"],
    "recover": ["KEYSCOPE_STORE", "KEYSCOPE_STORE_PASSPHRASE", "KEYSCOPE_STORE_KEK"],
    "consent": ["KEYSCOPE_STORE", "KEYSCOPE_DEPLOYMENTS", "KEYSCOPE_BUNDLER_URL", "KEYSCOPE_MODULE"],
    "dashboard": ["KEYSCOPE_STORE", "KEYSCOPE_DEPLOYMENTS", "KEYSCOPE_BUNDLER_URL", "KEYSCOPE_FACTORY"],
}
"""The variables each command reads; set to junk with the option that would give it left out."""
_BY_ENV = {
    "KEYSCOPE_STORE": "--store",
    "KEYSCOPE_DEPLOYMENTS": "--deployments",
    "KEYSCOPE_BUNDLER_URL": "--bundler",
    "KEYSCOPE_MODULE": "--module",
    "KEYSCOPE_FACTORY": "--factory",
}
_CLEAN_ENV = {
    name: None
    for name in {
        *_BY_ENV,
        "KEYSCOPE_OWNER_KEY",
        "KEYSCOPE_STORE_PASSPHRASE",
        "KEYSCOPE_STORE_KEK",
        "KEYSCOPE_DEBUG",
    }
}


def _slots(args: list[str]) -> list[int]:
    """The indexes of the values in ``args`` (an option's value, or an argument): what junk replaces."""
    return [i for i in range(1, len(args)) if not args[i].startswith("--")]


def _without(args: list[str], option: str) -> list[str]:
    if option not in args:
        return args
    at = args.index(option)
    return args[:at] + args[at + 2 :]


def run_keyscope(space: Workspace, args: list[str], env: dict[str, str]) -> None:
    with space.unchanged():
        result = CliRunner().invoke(main, args, env={**_CLEAN_ENV, **env})
    assert_refused(result.exit_code, result.output, result.exception)


@pytest.mark.parametrize("command", list(_ENV))
def test_each_command_as_set_up_for_the_junk_is_refused(
    space: Workspace, never_serve: None, command: str
) -> None:
    """The starting point of each command's junk: refused as it is (so that junk that is taken is seen)."""
    args, env = _commands(space)[command]
    if command == "outbox":  # it reads the store only: as set up, it lists nothing
        assert CliRunner().invoke(main, args, env=_CLEAN_ENV).exit_code == 0
        return
    run_keyscope(space, args, env)


@SETTINGS
@given(data=st.data(), command=st.sampled_from(list(_ENV)))
def test_junk_in_any_value_of_a_command_is_refused_clearly(
    space: Workspace, never_serve: None, data: st.DataObject, command: str
) -> None:
    args, env = _commands(space)[command]
    slots = _slots(args)
    for at in data.draw(st.lists(st.sampled_from(slots), min_size=1, max_size=2, unique=True), label="slots"):
        args[at] = data.draw(
            junk_words(space), label=args[at - 1] if args[at - 1].startswith("--") else "arg"
        )
    run_keyscope(space, args, env)


@SETTINGS
@given(data=st.data(), command=st.sampled_from(list(_ENV)))
def test_junk_in_any_environment_variable_a_command_reads_is_refused_clearly(
    space: Workspace, never_serve: None, data: st.DataObject, command: str
) -> None:
    args, env = _commands(space)[command]
    name = data.draw(st.sampled_from(_ENV[command]), label="variable")
    value = data.draw(junk_words(space), label="value")
    args = _without(args, _BY_ENV.get(name, ""))
    run_keyscope(space, args, {**env, name: value})


@pytest.mark.parametrize(
    ("command", "replace", "said"),
    [
        (
            "outbox",
            {"--store": KEY},
            "--store (or KEYSCOPE_STORE): a value of 32 bytes, the form of a private key",
        ),
        ("sessions", {"--store": KEY[2:]}, "is not a store's URL"),
        (
            "outbox",
            {"--state": KEY},
            "Invalid value for '--state': a value of 32 bytes, the form of a private key",
        ),
        ("outbox", {"--limit": KEY[2:]}, "Invalid value for '--limit'"),
        ("consent", {"requests": KEY}, "Invalid value for 'REQUESTS_FILE'"),
        ("dashboard", {"--port": KEY[2:]}, "Invalid value for '--port'"),
        (
            "consent",
            {"--deployments": KEY},
            "the deployments file (--deployments or KEYSCOPE_DEPLOYMENTS): a value",
        ),
        ("dashboard", {"KEYSCOPE_DEPLOYMENTS": KEY}, "is not a file name"),
    ],
)
def test_a_private_key_given_for_a_store_a_choice_a_number_or_a_file_is_never_echoed(
    space: Workspace, never_serve: None, command: str, replace: dict[str, str], said: str
) -> None:
    """Once each echoed the key: "there is no store at /…/0x5a5a…", click's "'0x5a5a…' is not one of 'pending', …",
    "Path '0x5a5a…' does not exist", "deployments file 0x5a5a… not found: write one with … > 0x5a5a…"."""
    args, env = _commands(space)[command]
    for name, value in replace.items():
        if name.startswith("KEYSCOPE_"):
            env = {**env, name: value}
        elif name == "requests":
            args[args.index(str(space.requests))] = value
        elif name in args:
            args[args.index(name) + 1] = value
        else:
            args += [name, value]
    with space.unchanged():
        result = CliRunner().invoke(main, args, env={**_CLEAN_ENV, **env})
    assert_refused(result.exit_code, result.output, result.exception)
    assert said in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("command", ["dashboard", "outbox"])
def test_a_store_under_the_home_of_no_user_is_refused_in_words(
    space: Workspace, never_serve: None, command: str
) -> None:
    """``--store ~0`` (a ~name naming no user here): once "unexpected RuntimeError: Could not determine home
    directory"."""
    args, env = _commands(space)[command]
    args[args.index("--store") + 1] = "~0"
    with space.unchanged():
        result = CliRunner().invoke(main, args, env={**_CLEAN_ENV, **env})
    assert_refused(result.exit_code, result.output, result.exception)
    assert "~ is not expanded here, only by a shell: give the full path)" in result.output, result.output


def test_a_file_store_under_the_home_of_no_user_is_refused_as_bad_input(space: Workspace) -> None:
    from keyscope.errors import BadInputError
    from keyscope.store import FileStore

    with pytest.raises(BadInputError, match="starts with a ~ that names no user's home folder here"):
        FileStore("~0/store")


# --------------------------------------------------------------------------------------------------
# python -m keyscope.sponsor
# --------------------------------------------------------------------------------------------------

_SPONSOR_KEY_ENV = "KEYSCOPE_TEST_JUNK_SPONSOR_KEY"


def _sponsor_args(space: Workspace) -> list[str]:
    return [
        "--paymaster",
        ADDRESS,
        "--policy",
        str(space.policy),
        "--rpc-url",
        DEAD_NODE,
        "--chain-id",
        "31337",
        "--entry-point",
        ADDRESS,
        "--signer-key-env",
        _SPONSOR_KEY_ENV,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--max-connections",
        "64",
        "--max-connections-per-address",
        "16",
        "--valid-after-slack",
        "5",
        "--verification-gas-limit",
        "100000",
        "--ledger",
        "ledger.db",
    ]


@pytest.fixture
def never_sponsor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sponsor that starts after all stops at once (Ctrl-C), its status 0 failing the test, instead of serving."""

    def stop(self: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("keyscope.sponsor.server.SponsorServer.serve_forever", stop)


def run_sponsor(space: Workspace, argv: list[str], env: dict[str, str]) -> None:
    out = io.StringIO()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with space.unchanged(), contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
            try:
                status = sponsor_main(argv)
            except SystemExit as exit:
                status = exit.code if isinstance(exit.code, int) else 1
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert_refused(status, out.getvalue())


@SETTINGS
@given(data=st.data())
def test_junk_in_any_option_of_the_sponsor_command_is_refused_clearly(
    space: Workspace, data: st.DataObject
) -> None:
    argv = _sponsor_args(space)
    for at in data.draw(
        st.lists(st.sampled_from(range(1, len(argv), 2)), min_size=1, max_size=2, unique=True)
    ):
        argv[at] = data.draw(junk_words(space), label=argv[at - 1])
    run_sponsor(space, argv, {_SPONSOR_KEY_ENV: KEY})


@SETTINGS
@given(data=st.data())
def test_a_sponsor_key_variable_or_file_of_junk_is_refused_without_showing_it(
    space: Workspace, never_sponsor: None, data: st.DataObject
) -> None:
    key = data.draw(
        junk_words(space) | st.sampled_from([KEY[:-1], KEY + "0", KEY.upper(), " " + KEY[2:] + "g"]),
        label="key",
    )
    argv = _sponsor_args(space)
    if data.draw(st.booleans(), label="from a file"):
        (space.root / "key.txt").write_text(key, errors="surrogateescape")
        argv += ["--signer-key-file", str(space.key_file)]
    run_sponsor(space, argv, {_SPONSOR_KEY_ENV: key})


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        (
            "--chain-id",
            KEY,
            "--chain-id: the number: a value of 32 bytes, the form of a private key (not shown), is not an",
        ),
        ("--port", KEY[2:], "the form of a private key (not shown), is not an integer in decimal digits"),
        ("--rpc-url", "", "error: --rpc-url is '': give the node's URL"),
        ("--rpc-url", " ", "error: --rpc-url is ' ': give the node's URL"),
    ],
)
def test_the_sponsor_command_never_echoes_a_key_given_as_a_number_nor_serves_with_an_empty_node_url(
    space: Workspace, never_sponsor: None, option: str, value: str, said: str
) -> None:
    """A key given as --chain-id was echoed in argparse's refusal. ``--rpc-url ""`` (``--rpc-url "$NODE"`` with NODE
    unset) served beside --chain-id with no node: no check of the paymaster's signer, and this machine's clock."""
    argv = _sponsor_args(space)
    argv[argv.index(option) + 1] = value
    out = io.StringIO()
    os.environ[_SPONSOR_KEY_ENV] = KEY
    try:
        with space.unchanged(), contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
            try:
                status = sponsor_main(argv)
            except SystemExit as exit:
                status = int(exit.code or 0)
    finally:
        del os.environ[_SPONSOR_KEY_ENV]
    assert_refused(status, out.getvalue())
    assert said in out.getvalue(), out.getvalue()


# --------------------------------------------------------------------------------------------------
# python -m keyscope.local: its numbers, read before anything starts
# --------------------------------------------------------------------------------------------------


@SETTINGS
@given(
    option=st.sampled_from(["--chain-id", "--block-time", "--node-port", "--bundler-port"]),
    value=st.sampled_from(["", " ", "--", "0x", "1e3", "-1", "9" * 80, "٣", "1_0", "0.5", KEY, "nan"])
    | st.text(max_size=8).filter(lambda word: not word.strip().isascii() or not word.strip().isdigit()),
)
def test_junk_numbers_of_the_local_stack_are_usage_errors(option: str, value: str) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit:
        local_parser().parse_args([f"{option}={value}"])
    assert_refused(int(exit.value.code or 0), err.getvalue())
    assert option in err.getvalue()


def test_a_key_given_as_a_number_of_the_local_stack_is_never_echoed() -> None:
    """Once: "argument --chain-id: '0x5a5a…' is not a whole number in digits 0-9 (a chain id)"."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit:
        local_parser().parse_args(["--chain-id", KEY])
    assert exit.value.code == 2
    assert (
        "argument --chain-id: a value of 32 bytes, the form of a private key (not shown) is not a whole"
        in (err.getvalue())
    )
    assert KEY[2:] not in err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["--chain-id=--"],
        ["--node-port=--"],
        ["--paymaster", "0x" + "11" * 20, "--policy", "p.json", "--port=--"],
        ["--paymaster=--", "--policy", "p.json"],
    ],
)
def test_an_option_given_the_end_of_options_as_its_value_is_a_usage_error(argv: list[str]) -> None:
    """Once ``--chain-id=--`` parsed: argparse read the ``--`` as the end of the options and gave the option an
    empty list, without its type's check (the sponsor's ``--port=--`` and ``--paymaster=--`` likewise)."""
    parser = sponsor_parser() if "--policy" in argv else local_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit:
        parser.parse_args(argv)
    assert exit.value.code == 2
    option = next(word for word in argv if word.endswith("=--")).removesuffix("=--")
    assert f"argument {option}: expected one value, got none ('--' ends the options there)" in err.getvalue()


@pytest.mark.parametrize("path", ["a\x00b", KEY])
def test_a_policy_file_named_by_a_nul_byte_or_a_key_is_refused_without_showing_it(path: str) -> None:
    """Once "unexpected ValueError: embedded null byte", and "sponsorship policy 0x5a5a…: no such file"."""
    from keyscope.errors import BadInputError
    from keyscope.sponsor import SponsorshipPolicy

    with pytest.raises(BadInputError) as info:
        SponsorshipPolicy.from_file(path)
    assert "NUL byte" in str(info.value) if "\x00" in path else PRIVATE_KEY_NOT_SHOWN in str(info.value)
    assert KEY[2:] not in str(info.value)
