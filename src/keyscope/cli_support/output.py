"""Errors and output: the ``error: ...`` line, ``--json`` and what a command prints."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from ..errors import KeyscopeError

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(function: F) -> F:
    """Wrap a command's callback: a :class:`KeyscopeError` prints ``error: <message>`` on stderr and exits
    with status 1, without a traceback."""

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
    """``--json``: print the result as one JSON object (the callback gets ``as_json``)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as one JSON object on the last line."
    )(function)


def emit(as_json: bool, data: Mapping[str, Any], lines: Sequence[str]) -> None:
    """Print ``lines`` for people, or ``data`` as one JSON line with ``--json``."""
    if as_json:
        click.echo(json.dumps(data, default=_json_default))
    else:
        for line in lines:
            click.echo(line)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def hex_of(value: bytes) -> str:
    """``0x``-hex of ``value``."""
    return "0x" + bytes(value).hex()
