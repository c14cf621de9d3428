"""How a keyscope command starts. A Ctrl-C while it is still starting (importing the SDK, under a second) ends in
one line on stderr, not in Python's traceback of the import; a program importing keyscope as a library keeps
Python's own handling. Either way the process ends by the interrupt, so a shell sees it as interrupted. And the
start loads no more than the command needs: the SQL store's database toolkit only with a SQL store."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyscope._command_start import INTERRUPTED, launched_as_command

SCRIPT = Path(sys.executable).parent / "keyscope"


@pytest.mark.parametrize(
    ("argv", "orig_argv", "expected"),
    [
        (["/venv/bin/keyscope", "sessions"], ["/venv/bin/python", "/venv/bin/keyscope", "sessions"], True),
        (["-m"], ["python", "-m", "keyscope", "--help"], True),
        (["-m"], ["python", "-m", "keyscope.local", "--json"], True),
        (["-m"], ["python", "-m", "keyscopes"], False),
        (["-m"], ["python", "-m", "pytest", "tests"], False),
        (["-m"], ["python", "-m"], False),
        (["app.py"], ["python", "app.py"], False),
        (
            ["/venv/bin/ape", "run", "grant_session"],
            ["python", "/venv/bin/ape", "run", "grant_session"],
            False,
        ),
        ([], [], False),
        ([""], ["python"], False),
    ],
)
def test_only_keyscope_s_own_commands_count_as_launched_as_the_command(
    argv: list[str], orig_argv: list[str], expected: bool
) -> None:
    assert launched_as_command(argv, orig_argv) is expected


def _interrupted_after(delay: float) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [str(SCRIPT), "--help"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a test runner may start its workers with Ctrl-C ignored, which the child would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, "", err)


@pytest.mark.skipif(os.name != "posix" or not SCRIPT.exists(), reason="the installed script, sent SIGINT")
def test_a_ctrl_c_while_the_command_starts_is_one_line_not_a_traceback() -> None:
    interrupted = 0
    for delay in (0.25, 0.5):
        result = _interrupted_after(delay)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode != 0:  # a fast machine may have finished `--help` first
            interrupted += 1
            assert result.returncode == -signal.SIGINT
            assert result.stderr == INTERRUPTED
    assert interrupted, "the command finished before any interrupt reached it; nothing was shown"


@pytest.mark.parametrize(
    ("code", "quiet"),
    [
        ("import sys; sys.argv[0] = '/venv/bin/keyscope'; import keyscope; raise KeyboardInterrupt", True),
        ("import keyscope; raise KeyboardInterrupt", False),
        ("import sys; sys.argv[0] = '/venv/bin/keyscope'; import keyscope; raise ValueError('kept')", False),
    ],
    ids=["the-command", "a-library-user", "another-error-in-the-command"],
)
def test_the_quiet_interrupt_is_the_command_s_alone(code: str, quiet: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    if quiet:
        assert result.stderr == INTERRUPTED
        assert result.returncode == -signal.SIGINT
    else:
        assert "Traceback" in result.stderr
        assert result.stderr.rstrip().splitlines()[-1] in ("KeyboardInterrupt", "ValueError: kept")


def test_the_database_toolkit_loads_only_with_a_sql_store(tmp_path: Path) -> None:
    code = (
        "import sys; import keyscope.cli, keyscope.store; from keyscope.store import open_store\n"
        "assert 'sqlalchemy' not in sys.modules, 'loaded by the command line'\n"
        f"open_store({str(tmp_path / 'keys')!r}, passphrase='p', scrypt_n=2).close()\n"
        "assert 'sqlalchemy' not in sys.modules, 'loaded by a folder store'\n"
        f"open_store('sqlite:///{tmp_path / 'k.db'}', passphrase='p', scrypt_n=2).close()\n"
        "assert 'sqlalchemy' in sys.modules\n"
        "from keyscope.store import SqlStore; from keyscope.store.sql import SqlStore as Same; assert SqlStore is Same\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
