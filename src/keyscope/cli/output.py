"""Errors and output: the ``error: ...`` line, ``warning: ...`` lines, ``--json``, what a command prints (lines
or a table), and progress while it waits."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..bundler.pending import PendingUserOperation
from ..bundler.types import UserOperationReceipt
from ..clock import utc_text
from ..errors import KeyscopeError, KeyscopeWarning, ReceiptUnconfirmedError, UserOperationTimeoutError
from ..termination import Terminated, sigterm_as_ctrl_c

F = TypeVar("F", bound=Callable[..., Any])


ENV_DEBUG = "KEYSCOPE_DEBUG"
"""Set (to anything but empty) to let an unexpected error show its traceback."""


def reports_errors(function: F) -> F:
    """Wrap a command's callback: a :class:`KeyscopeError` prints ``error: <message>`` (one line) on stderr
    and exits with status 1, without a traceback. So does any other error (a file that cannot be written, or a
    fault keyscope did not foresee), named by its type, unless ``KEYSCOPE_DEBUG`` is set; click's own usage
    errors keep their usage message (status 2)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        once = _Once()
        store_log = logging.getLogger("keyscope.store")
        store_log.addFilter(once)
        try:
            return _run(function, args, kwargs)
        finally:
            store_log.removeFilter(once)

    return wrapper  # type: ignore[return-value]


class _Once(logging.Filter):
    """Let each kind of log message through once: a store retrying a lost database says so on one line, not on one
    line per attempt for the 15 s it keeps trying."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[object] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in self._seen:
            return False
        self._seen.add(record.msg)
        return True


def visible(text: object) -> str:
    """``text`` safe to print on a terminal: every control character but the line break (an escape sequence,
    a bell, a carriage return, a direction override) written out as ``\\xNN`` or ``\\uNNNN``. Stored text
    (an intent id, a bundler's or a contract's reason) can then never move the cursor, restyle or hide what
    the person reads."""
    return "".join(
        char if char == "\n" or unicodedata.category(char) not in ("Cc", "Cf") else _escaped(char)
        for char in str(text)
    )


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: object) -> str:
    """``text`` on one line: its whitespace, line breaks included, as single spaces (and :func:`visible`)."""
    return visible(" ".join(str(text).split()))


def _run(function: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call a command's callback, its errors and warnings shown as :func:`reports_errors` says. SIGTERM (a service
    manager's stop, ``kill``) stops it as Ctrl-C does: a wait says what it leaves in flight, and the command says it
    was interrupted and exits with 130, where SIGTERM ended it at once, silently."""
    with warnings.catch_warnings(), sigterm_as_ctrl_c():
        warnings.simplefilter("always", KeyscopeWarning)
        warnings.showwarning = _warning_lines(warnings.showwarning)
        try:
            return function(*args, **kwargs)
        except KeyboardInterrupt as stop:
            if os.environ.get(ENV_DEBUG):
                raise
            by = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
            # what a wait leaves in flight, and how to follow it, is said above by the wait itself (Progress)
            click.echo(
                f"interrupted ({by}): the command stopped before it finished; nothing more was done", err=True
            )
            sys.exit(130)
        except KeyscopeError as error:
            fail(one_line(error) or type(error).__name__)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OSError as error:
            if os.environ.get(ENV_DEBUG):
                raise
            where = f" {error.filename}" if error.filename else ""
            fail(f"cannot use{where}: {error.strerror or error}; check the path and its permissions")
        except Exception as error:
            if os.environ.get(ENV_DEBUG):
                raise
            detail = one_line(error)
            fail(
                f"unexpected {type(error).__name__}"
                + (f": {detail}" if detail else "")
                + f" (set {ENV_DEBUG}=1 to see where; if keyscope is at fault, please report it)"
            )


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _warning_lines(others: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints keyscope's warnings as one ``warning: ...`` line on stderr, and
    passes the others to ``others``."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, KeyscopeWarning):
            click.echo("warning: " + one_line(message), err=True)
        else:
            others(message, category, *args, **kwargs)

    return show


def json_option(function: F) -> F:
    """``--json``: print the result as JSON, on one line (the callback gets ``as_json``)."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the result as JSON (one line, the last one) instead of text.",
    )(function)


def emit(as_json: bool, data: Any, text: Sequence[str] | Table) -> None:
    """Print ``text`` for people (lines, or a table), or ``data`` as one JSON line with ``--json``."""
    if as_json:
        click.echo(json.dumps(data, default=_json_default))
    elif isinstance(text, Table):
        if text.title:  # on a line of its own: a long store URL must not be wrapped to the table's width
            click.echo(visible(text.title))
            text.title = None
        Console(width=200 if not sys.stdout.isatty() else None).print(text)
    else:
        for line in text:
            click.echo(visible(line))


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def hex_of(value: bytes) -> str:
    """``0x``-hex of ``value``."""
    return "0x" + bytes(value).hex()


def describe_time(moment: float, never: str = "never expires") -> str:
    """A unix time as UTC text; 0 reads as ``never``."""
    if not moment:
        return never
    return utc_text(moment)


def table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[str] = ()
) -> Table:
    """A table of ``rows`` under ``columns`` (those in ``right`` aligned right)."""
    result = Table(title=title)
    for column in columns:  # long words (ids, addresses) fold rather than lose their end to an ellipsis
        result.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:  # as text, never as markup: a stored "[/]" or "[link=...]" is shown as it is
        result.add_row(*(Text(visible(cell)) for cell in row))
    return result


class Progress:
    """What a command is waiting for, and for how long, on stderr (so that ``--json`` output stays one line):
    a line when the wait begins, then one every ``interval`` seconds while it lasts."""

    def __init__(self, *, interval: float = 5.0, echo: Callable[[str], None] | None = None) -> None:
        self.interval = interval
        self._echo = echo or (lambda line: click.echo(line, err=True))

    def say(self, line: str) -> None:
        """Tell the person something now."""
        self._echo(line)

    def wait(
        self, pending: PendingUserOperation, what: str, timeout: float, *, check: bool = True
    ) -> UserOperationReceipt:
        """Wait up to ``timeout`` seconds for ``pending``'s receipt (``what`` says what it is), telling the person
        as it goes; raises as :meth:`PendingUserOperation.wait` does."""
        try:
            self.say(
                f"waiting for {what} to be included (UserOperation {pending.hex_hash}, up to {timeout:g} s)"
            )
            return self._follow(pending, what, timeout, check=check)
        except (
            KeyboardInterrupt,
            SystemExit,
        ):  # Ctrl-C (ape's handler exits with 130) or SIGTERM stops the wait only
            # the operation goes on: where it went is said before the command ends, whenever the wait was stopped
            self.say(
                f"interrupted while waiting: UserOperation {pending.hex_hash} may still be included; follow it with "
                f"`ape run status {pending.hex_hash} --wait` before sending it again"
            )
            raise

    def _follow(
        self, pending: PendingUserOperation, what: str, timeout: float, *, check: bool
    ) -> UserOperationReceipt:
        start = time.monotonic()
        while True:
            left = timeout - (time.monotonic() - start)
            try:
                receipt = pending.wait(max(0.0, min(self.interval, left)), check=check)
            except UserOperationTimeoutError as error:
                waited = time.monotonic() - start
                unconfirmed = (
                    error.__cause__ if isinstance(error.__cause__, ReceiptUnconfirmedError) else None
                )
                if waited >= timeout:  # a command line has no wait() to call again: say which command waits
                    raise UserOperationTimeoutError(
                        pending.hex_hash, timeout, advice=_timeout_advice(pending, unconfirmed)
                    ) from unconfirmed
                self.say(
                    f"  still waiting for {what}: {waited:.0f} s of {timeout:g} s"
                    + (
                        ""
                        if unconfirmed is None
                        else f" (the bundler reports it in transaction {unconfirmed.transaction_hash}, which the node "
                        "does not have)"
                    )
                )
                continue
            self.say(f"  {what} included after {time.monotonic() - start:.1f} s")
            return receipt


def _timeout_advice(pending: PendingUserOperation, unconfirmed: ReceiptUnconfirmedError | None) -> str:
    """What to do when a command waited for ``pending`` in vain: wait again with ``status`` (given the node, so
    that the bundler's word is not all it goes by); ``unconfirmed``: the bundler's receipt the node never
    confirmed."""
    again = f"`ape run status {pending.hex_hash} --wait` (given --node, the node's URL, it takes a receipt only once the node confirms it)"
    if unconfirmed is None:
        return f"wait for it with {again} or the bundler's eth_getUserOperationReceipt, and give a longer --timeout next time"
    return (
        f"the bundler reported it included in transaction {unconfirmed.transaction_hash} (block "
        f"{unconfirmed.block_number}), which the node has not confirmed: if the node is behind, wait for it with "
        f"{again}; if the node never has that transaction, the bundler made the receipt up"
    )
