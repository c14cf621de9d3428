"""Errors and output: the ``error: ...`` line, ``--json``, and what a command prints (lines or a table)."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from ..errors import KeyscopeError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(function: F) -> F:
    """Wrap a command's callback: a :class:`KeyscopeError` prints ``error: <message>`` (one line) on stderr
    and exits with status 1, without a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except KeyscopeError as error:
            message = " ".join(str(error).split()) or type(error).__name__
            click.echo(f"error: {message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


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
        Console(width=200 if not sys.stdout.isatty() else None).print(text)
    else:
        for line in text:
            click.echo(line)


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
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[str] = ()
) -> Table:
    """A table of ``rows`` under ``columns`` (those in ``right`` aligned right)."""
    result = Table(title=title)
    for column in columns:
        result.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        result.add_row(*row)
    return result
