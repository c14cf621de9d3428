"""Child processes that never outlive their owner.

A :class:`ManagedProcess` runs one server (anvil, Alto) in its own process group, with its output appended
to a log file, and stops it by process group: ``SIGTERM``, then ``SIGKILL`` after a grace period.

Every started process is tracked until it is stopped. The tracked processes (and anything else registered
with :func:`register_cleanup`, such as a whole stack) are stopped

* at interpreter exit (``atexit``),
* on ``SIGTERM`` (a handler stops them, then lets the signal do what it would have done), and
* on Linux, when the thread that started them dies without any of that running (``SIGKILL`` of Python):
  the kernel then sends them ``SIGTERM`` (``PR_SET_PDEATHSIG``).

Ctrl-C raises ``KeyboardInterrupt`` as usual, so ``with`` blocks and ``finally`` clauses stop their
processes on the way out; the children run in their own sessions, so the terminal's ``SIGINT`` does not
reach them before that. While a child is forked and recorded, Ctrl-C and ``SIGTERM`` are only noted, and raised
just after: Python runs code of its own around a fork (the ``logging`` module's lock handling), and an
interruption raised there is printed as "ignored" and lost, so that a stack went on starting as if never stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from .errors import PortInUseError, ProcessStartError, StartupTimeoutError

__all__ = ["ManagedProcess", "register_cleanup", "stop_everything", "unregister_cleanup"]

_PR_SET_PDEATHSIG = 1
_ADDRESS_IN_USE = re.compile(r"EADDRINUSE|[Aa]ddress already in use")

# -- process-wide clean-up ----------------------------------------------------------------------------

_cleanups: dict[int, Callable[[], None]] = {}
_cleanups_lock = threading.Lock()
_atexit_installed = False
_sigterm_installed = False


def register_cleanup(key: object, stop: Callable[[], None]) -> None:
    """Call ``stop`` at interpreter exit or on ``SIGTERM`` unless :func:`unregister_cleanup` ran first.

    Clean-ups run newest first, like ``atexit``.
    """
    _install_handlers()
    with _cleanups_lock:
        _cleanups[id(key)] = stop


def unregister_cleanup(key: object) -> None:
    """Forget the clean-up registered for ``key`` (nothing happens if there is none)."""
    with _cleanups_lock:
        _cleanups.pop(id(key), None)


def stop_everything() -> None:
    """Run every registered clean-up now, newest first; errors are ignored so that all of them run."""
    with _cleanups_lock:
        pending = list(_cleanups.values())[::-1]
        _cleanups.clear()
    for stop in pending:
        try:
            stop()
        except Exception:
            continue  # best effort: the remaining processes must still be stopped


def _install_handlers() -> None:
    global _atexit_installed, _sigterm_installed
    if not _atexit_installed:
        _atexit_installed = True
        atexit.register(stop_everything)
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread: the next start from it will
    _sigterm_installed = True
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop_everything()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            # Terminate exactly as the signal would have without this handler.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send SIGTERM to the child when this thread dies (Linux only).

    Only used from the main thread: the signal fires when the *thread* that forked exits, which for the
    main thread means the process.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return setup


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM are noted instead of raised; after it, the handlers are back and a
    signal that came meanwhile is raised again, once (main thread only: elsewhere Python runs no handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        came.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for noted in dict.fromkeys(came):
            signal.raise_signal(noted)


# -- one process --------------------------------------------------------------------------------------


class ManagedProcess:
    """One long-running child process with its output in ``log_path`` (appended to across restarts).

    ``name`` is used in messages ("anvil", "Alto"). ``scratch``, a folder the process writes to and nothing else
    reads (anvil's states on disk), is removed each time the process is stopped, and when it cannot start.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        scratch: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.scratch = scratch
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    # -- state ---------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the running process (also its process-group id), None before :meth:`start`."""
        return self._popen.pid if self._popen is not None else None

    def alive(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has exited (negative: killed by that signal)."""
        return self._popen.poll() if self._popen is not None else None

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the process in a new session (its own process group), output appended to the log."""
        if self.alive():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)  # removed at the last stop
        log = self.log_path.open("ab")
        log.write(f"\n===== keyscope: starting {self.name}: {' '.join(self.argv)}\n".encode())
        log.flush()
        self._log_start = log.tell()
        _install_handlers()  # before the signals are deferred: its SIGTERM handler chains to the one in place
        with _interrupts_deferred():  # a Ctrl-C meanwhile is raised once the child is recorded, to be stopped
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=_parent_death_signal(),  # only prctl and getppid run in the child
                )
            except OSError as exc:
                log.close()
                self._remove_scratch()
                raise ProcessStartError(
                    f"cannot run {self.name} ({self.argv[0]}): {exc}", log_path=self.log_path
                ) from exc
            self._log = log
            register_cleanup(self, self.stop)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent."""
        self._terminate(timeout, graceful=True)

    def kill(self) -> None:
        """Kill the whole process group at once (SIGKILL), as a crash would. Idempotent."""
        self._terminate(0.0, graceful=False)

    def _terminate(self, timeout: float, *, graceful: bool) -> None:
        unregister_cleanup(self)
        popen = self._popen
        if popen is not None:
            pgid = popen.pid
            if popen.poll() is None:
                _signal_group(pgid, signal.SIGTERM if graceful else signal.SIGKILL)
                try:
                    popen.wait(timeout if graceful else 10.0)
                except subprocess.TimeoutExpired:
                    _signal_group(pgid, signal.SIGKILL)
                    popen.wait()
            # Anything the process left behind in its group goes too. The group id cannot have been reused:
            # the kernel keeps it while any member lives, and after that killpg just finds nobody.
            _signal_group(pgid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    # -- log -----------------------------------------------------------------------------------------

    def log_text(self) -> str:
        """What the process wrote since its last start."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_start)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines the process wrote since its last start."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: re.Pattern[str], timeout: float, *, what: str) -> re.Match[str]:
        """Wait until a line of the log (since the last start) matches ``pattern``; return the match.

        Raises :class:`PortInUseError` or :class:`ProcessStartError` if the process exits first and
        :class:`StartupTimeoutError` after ``timeout`` seconds; ``what`` says what was awaited.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            match = pattern.search(text)
            if match is not None:
                return match
            if not self.alive():
                self.raise_exited(what)
            if time.monotonic() > deadline:
                raise StartupTimeoutError(
                    f"{self.name} did not report {what} within {timeout:.0f}s: see its log below; a slow "
                    "machine may need a longer start-up timeout",
                    log_path=self.log_path,
                    log_tail=self.log_tail(),
                )
            time.sleep(0.02)

    def raise_exited(self, what: str) -> None:
        """Raise the error for a process that exited while we waited for ``what``."""
        tail = self.log_tail()
        status = self.returncode
        if _ADDRESS_IN_USE.search(self.log_text()):
            raise PortInUseError(
                f"{self.name} exited (status {status}) before {what}: its port is taken by another program",
                log_path=self.log_path,
                log_tail=tail,
            )
        raise ProcessStartError(
            f"{self.name} exited (status {status}) before {what}: see its log below",
            log_path=self.log_path,
            log_tail=tail,
        )

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"ManagedProcess({self.name!r}, pid={self.pid}, {state})"


def serve(
    process: ManagedProcess,
    listening: re.Pattern[str],
    port: int | None,
    timeout: float,
    ready: Callable[[str], None],
) -> str:
    """Start ``process``, read the address it listens on from its log (``listening`` captures host and port),
    and return its URL once ``ready(url)`` returns. On any failure the process is stopped; a taken port is
    reported as :class:`PortInUseError` naming it."""
    process.start()
    try:
        match = process.wait_for_log(listening, timeout, what="the address it listens on")
        url = f"http://{match.group(1)}:{match.group(2)}"
        ready(url)
    except PortInUseError as exc:
        process.stop()
        raise PortInUseError(
            f"{process.name} cannot listen on 127.0.0.1:{port}: another program holds that port. Choose another "
            "port, or none to get a free one",
            log_path=exc.log_path,
            log_tail=exc.log_tail,
        ) from None
    except BaseException:
        process.stop()
        raise
    return url


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
