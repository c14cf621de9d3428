"""A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, on 127.0.0.1.

::

    with PostgresServer() as server:          # initdb + pg_ctl start
        url = server.create_database()        # postgresql://keyscope@127.0.0.1:<port>/<fresh db>
        url = server.create_schema()          # or a fresh schema (search_path) in the default database
        ...
        server.stop(mode="immediate")         # a crash, mid-test
        server.start()                        # same data, same port
    # stopped, folder removed (also when the block raised)

In a pytest module or conftest: ``postgres_server = postgres_fixture()`` gives a ``postgres_server`` fixture
(session scope by default) holding a :class:`PostgresServer`.

The cluster trusts local connections (no password), listens on 127.0.0.1 only on a free port, keeps its
socket in its own folder, and never waits for the disk (``fsync=off``, ``full_page_writes=off``): fast, and
only for tests. Commits still reach the operating system before they return (``synchronous_commit`` stays
on), so stopping the server with ``mode="immediate"`` (a crash) loses no committed transaction. PostgreSQL refuses to run as root, so when this
process is root the server runs as the ``postgres`` system user (``os_user``) and the folder is given to it.
A watchdog process stops the server and removes the folder if the process that started it dies without
calling :meth:`PostgresServer.close` (killed, or crashed).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from keyscope.errors import ConfigurationError

__all__ = ["PostgresServer", "find_postgres_binaries", "postgres_fixture", "postgres_server"]

_INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql), or put the folder holding "
    "initdb and pg_ctl on PATH or in KEYSCOPE_PG_BINDIR"
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Runs beside the test process, blocked reading a pipe from it. When the pipe closes (close() was called,
# or the test process died, even by SIGKILL) it stops the server if it still runs and removes the folder,
# so that no throwaway server outlives the process that started it.
_WATCHDOG = """
import os, shutil, subprocess, sys
sys.stdin.buffer.read()
pg_ctl, data, base, uid, gid = sys.argv[1:6]
if os.path.exists(os.path.join(data, "postmaster.pid")):
    user = {} if uid == "-" else {"user": int(uid), "group": int(gid), "extra_groups": []}
    subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], cwd=base, capture_output=True, **user)
shutil.rmtree(base, ignore_errors=True)
"""

_TEST_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}


def find_postgres_binaries(bin_dir: str | Path | None = None) -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``.

    Uses ``bin_dir``, or else ``$KEYSCOPE_PG_BINDIR``, when given; otherwise searches ``PATH``,
    ``pg_config --bindir`` and Debian's ``/usr/lib/postgresql/<version>/bin`` (newest first).
    Raises :class:`ConfigurationError` when no folder has both.
    """
    for given, source in ((bin_dir, "bin_dir"), (os.environ.get("KEYSCOPE_PG_BINDIR"), "KEYSCOPE_PG_BINDIR")):
        if given:  # an explicit choice is honoured, not silently replaced by another installation
            folder = Path(given)
            if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
                return folder
            raise ConfigurationError(f"{source} {folder} holds no initdb and pg_ctl: {_INSTALL_HINT}")
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(debian, key=lambda p: _version_key(p), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise ConfigurationError(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {_INSTALL_HINT}")


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A PostgreSQL cluster created in a temporary folder, started on 127.0.0.1 and removed on :meth:`close`.

    ``port`` (default: a free one), ``superuser`` (the role the URLs log in as), ``database`` (created at the
    first start), ``settings`` (``postgresql.conf`` entries over the fast test defaults), ``os_user`` (who
    runs the server when this process is root; default ``postgres``) and ``bin_dir`` (see
    :func:`find_postgres_binaries`).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        superuser: str = "keyscope",
        database: str = "keyscope",
        settings: dict[str, str] | None = None,
        os_user: str | None = None,
        bin_dir: str | Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        for label, value in (("superuser", superuser), ("database", database)):
            if not _NAME.match(value):
                raise ConfigurationError(f"{label} {value!r} must be a lowercase SQL identifier")
        self.superuser = superuser
        self.database = database
        self.settings = {**_TEST_SETTINGS, **(settings or {})}
        self.startup_timeout = startup_timeout
        self._fixed_port = port
        self.port = port or 0
        self._bin_dir = bin_dir
        self._os_user = os_user
        self._base: Path | None = None
        self._initialised = False
        self._running = False
        self._run_as: pwd.struct_passwd | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- paths and URLs --------------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """The temporary folder (data, socket and log); exists between :meth:`start` and :meth:`close`."""
        if self._base is None:
            raise ConfigurationError(
                "the PostgreSQL server was not started: call start() or use it in a with block"
            )
        return self._base

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder of the server's Unix socket."""
        return self.base_dir / "socket"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.base_dir / "server.log"

    @property
    def running(self) -> bool:
        """Whether the server was started and not stopped since."""
        return self._running

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the default database."""
        return self.database_url(self.database)

    def database_url(self, name: str) -> str:
        """``postgresql://`` URL of database ``name`` on this server."""
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{name}"

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Create the cluster (first call) and start the server; returns self. Restarts keep data and port."""
        if self._running:
            return self
        try:
            if not self._initialised:
                self._init_cluster()
            self._start_server()
            if not self._initialised:
                self._initialised = True
                self._create(self.database)
        except BaseException:
            self.close()
            raise
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: ``fast`` (clean), ``immediate`` (like a crash) or ``smart``."""
        if not self._running:
            return
        if mode not in ("fast", "immediate", "smart"):
            raise ConfigurationError(f"unknown stop mode {mode!r}: use fast, immediate or smart")
        result = self._pg_ctl("stop", "-m", mode, "-w", "-t", "60", check=False)
        if result.returncode != 0:
            self._kill_postmaster()
        self._running = False

    def restart(self, mode: str = "fast") -> None:
        """Stop (``mode``) and start again on the same port with the same data."""
        self.stop(mode)
        self.start()

    def close(self) -> None:
        """Stop the server (if running) and remove its folder."""
        try:
            if self._running:
                self.stop("immediate")
        finally:
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None
            self._initialised = False
            self._running = False
            self._stop_watchdog()

    def _start_watchdog(self) -> None:
        user = self._run_as
        uid, gid = ("-", "-") if user is None else (str(user.pw_uid), str(user.pw_gid))
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self._bin() / "pg_ctl"), str(self.data_dir), str(self.base_dir),
             uid, gid],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # survives a Ctrl-C aimed at the test run, to clean up after it
        )  # fmt: skip

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        if watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.close()
        try:
            watchdog.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - it only removes a stopped server's folder
            watchdog.kill()
            watchdog.wait()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- databases -------------------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create a database (default: a fresh random name) and return its URL."""
        name = name or f"test_{secrets.token_hex(6)}"
        self._create(name)
        return self.database_url(name)

    def create_schema(self, name: str | None = None) -> str:
        """Create a schema (default: a fresh random name) in the default database and return a URL whose
        connections use it (``?options=-csearch_path%3D<name>``): much cheaper than a database per test."""
        name = name or f"test_{secrets.token_hex(6)}"
        if not _NAME.match(name):
            raise ConfigurationError(f"schema name {name!r} must be a lowercase SQL identifier")
        self._admin(f'CREATE SCHEMA "{name}"', database=self.database)
        return f"{self.url}?options=-csearch_path%3D{name}"

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, disconnecting its sessions."""
        if not _NAME.match(name):
            raise ConfigurationError(f"database name {name!r} must be a lowercase SQL identifier")
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _create(self, name: str) -> None:
        if not _NAME.match(name):
            raise ConfigurationError(f"database name {name!r} must be a lowercase SQL identifier")
        self._admin(f'CREATE DATABASE "{name}"')

    def _admin(self, statement: str, database: str = "postgres") -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigurationError(
                "PostgresServer needs psycopg 3: pip install 'keyscope[postgres]'"
            ) from None
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.superuser,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(statement)  # a statement built around a name validated above

    # -- processes -------------------------------------------------------------------------------------

    def _user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        name = self._os_user or "postgres"
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise ConfigurationError(
                f"PostgreSQL refuses to run as root and there is no {name!r} user to run it as: create one "
                "(installing the postgresql package does) or pass os_user="
            ) from None

    def _run(
        self, args: list[str], *, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self._run_as is not None:
            extra = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if self._run_as is not None:
            env["HOME"] = str(self.base_dir)
        result = subprocess.run(
            args,
            cwd=self.base_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **extra,
        )
        if check and result.returncode != 0:
            raise ConfigurationError(
                f"{Path(args[0]).name} failed with exit code {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(self._bin() / "pg_ctl"), "-D", str(self.data_dir), *args], check=check)

    def _bin(self) -> Path:
        return find_postgres_binaries(self._bin_dir)

    def _init_cluster(self) -> None:
        binaries = self._bin()
        self._run_as = self._user()
        self._base = Path(tempfile.mkdtemp(prefix="keyscope-pg-"))
        _cleanup_at_exit(self)
        self._start_watchdog()
        self.socket_dir.mkdir(mode=0o700)
        if self._run_as is not None:
            for path in (self._base, self.socket_dir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        self._run(
            [
                str(binaries / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        settings = {**self.settings, "unix_socket_directories": f"'{self.socket_dir}'"}
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# keyscope throwaway test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self) -> None:
        # The first start may move to another free port if the chosen one was taken meanwhile; a restart
        # keeps its port, so that URLs handed out stay valid.
        first = not self._initialised
        if first and not self._fixed_port:
            self.port = _free_port()
        attempts = 5 if first and not self._fixed_port else 1
        for attempt in range(attempts):
            if attempt:
                self.port = _free_port()
            result = self._pg_ctl(
                "start", "-w", "-t", str(int(self.startup_timeout)), "-l", str(self.log_file),
                "-o", f"-p {self.port}", check=False,
            )  # fmt: skip
            if result.returncode == 0:
                self._running = True
                return
            if "could not bind" not in self._log_tail():
                break
        raise ConfigurationError(
            f"PostgreSQL did not start on 127.0.0.1:{self.port}: {(result.stderr or result.stdout).strip()}\n"
            f"server log:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)


_open_servers: list[PostgresServer] = []


def _cleanup_at_exit(server: PostgresServer) -> None:
    if not _open_servers:
        atexit.register(_close_all)
    _open_servers.append(server)


def _close_all() -> None:
    for server in _open_servers:
        with contextlib.suppress(Exception):
            server.close()


@contextlib.contextmanager
def postgres_server(**options: Any) -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer` (``options`` as its constructor's), stopped and removed "
    "afterwards."""
    with PostgresServer(**options) as server:
        yield server


def postgres_fixture(
    *, scope: str = "session", name: str = "postgres_server", **options: Any
) -> Callable[..., Any]:
    """A pytest fixture named ``name`` yielding a started :class:`PostgresServer`; assign it in a test module
    or conftest: ``postgres_server = postgres_fixture()``."""
    import pytest

    def _fixture() -> Iterator[PostgresServer]:
        with PostgresServer(**options) as server:
            yield server

    return pytest.fixture(scope=scope, name=name)(_fixture)  # type: ignore[call-overload,no-any-return]
