"""The click options the commands share."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any, overload

import click

from ..artifacts import ENTRY_POINT_V07
from ..endpoint_kinds import answers_as_bundler, node_given_twice, swapped_or_misplaced
from ..errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    ConfigurationError,
    has_private_key_form,
)
from ..hexutil import to_int, to_wire_int
from ..urls import mask_url
from .output import F, fail, one_line
from .settings import (
    DEFAULT_STORE_URL,
    ENV_BUNDLER,
    ENV_DEPLOYMENTS,
    ENV_ENTRY_POINT,
    ENV_FACTORY,
    ENV_MODULE,
    ENV_OWNER,
    ENV_OWNER_KEY,
    ENV_STORE,
    ENV_STORE_KEK,
    ENV_STORE_PASSPHRASE,
    ENV_SUBMITTER,
    INPROCESS,
    ConnectionOptions,
)


class Seconds(click.ParamType):
    """A number of seconds: finite, not negative (and above 0 with ``positive``), at most :attr:`MAX`. ``nan``,
    ``inf``, negative numbers and absurd ones (``1e300``, which a wait's clock cannot hold) are refused with a usage
    error naming the option, where a float would let them through."""

    name = "seconds"
    MAX = 10 * 365 * 86_400
    """Ten years: more than any wait or age a command is given, and far within what a clock or a wait can hold."""

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds (e.g. 30 or 2.5)", param, ctx)
        if not math.isfinite(seconds) or seconds < 0 or (self.positive and seconds == 0):
            least = "above 0" if self.positive else "0 or more"
            self.fail(f"{value!r} is not a number of seconds {least} (e.g. 30 or 2.5)", param, ctx)
        if seconds > self.MAX:
            self.fail(
                f"{value!r} seconds is more than ten years: give at most {self.MAX} (e.g. 30 or 2.5)",
                param,
                ctx,
            )
        return seconds


class WholeNumber(click.ParamType):
    """A whole number from ``low`` to ``high`` written in ASCII digits 0-9 (with ``hex``, also ``0x`` and hex
    digits), as keyscope reads every number (:func:`keyscope.hexutil.to_int`): click's ``int`` also reads other
    scripts' digits, ``_`` separators and spaces around, which are refused here with a usage error naming the
    option, as are numbers out of range. ``what`` names the number in that message."""

    name = "integer"

    def __init__(self, low: int, high: int, *, what: str, hex: bool = False) -> None:
        self.low, self.high, self.what, self.hex = low, high, what, hex

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value)
        shown = text if len(text) <= 40 else text[:40] + "…"
        try:
            if isinstance(value, int) and not isinstance(value, bool):  # a default
                number = value
            elif self.hex and text[:2] in ("0x", "0X"):
                number = to_int(text)
            else:
                number = to_wire_int(text)
        except BadInputError:
            written = "digits 0-9, or 0x and hex digits" if self.hex else "digits 0-9"
            self.fail(f"{shown!r} is not a whole number in {written} ({self.what})", param, ctx)
        if not self.low <= number <= self.high:
            self.fail(
                f"{shown} is out of range: {self.what} is {self.low} to {_power_shown(self.high)}", param, ctx
            )
        return number


def _power_shown(number: int) -> str:
    """``number`` as written in a message: ``2**256 - 1`` for a large one below a power of two."""
    bits = (number + 1).bit_length() - 1
    return f"2**{bits} - 1" if number > 10**6 and number + 1 == 1 << bits else str(number)


SALT = WholeNumber(0, 2**256 - 1, what="a salt", hex=True)
"""The click type of an account's ``--salt``: 0 to 2**256 - 1, in decimal or 0x-hex."""


class HttpUrl(click.ParamType):
    """An http(s) URL (a node's, a bundler's): anything else is a usage error naming the option, the text shown
    with any key in it masked."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not re.match(r"^https?://[^/\s]", text, re.I):
            self.fail(f"{mask_url(text)!r} is not an http(s) URL: give it as http://host:port", param, ctx)
        return text


_APE_OPTIONS = {"--network": True, "--provider-settings": True}
"""Options ape adds to a connected command (``True``: it takes a value)."""


def options_first(command: click.Command, args: list[str]) -> list[str]:
    """``args`` with ``command``'s options that follow ``--`` moved before it: after ``--``, click takes every
    word as an argument, so ``ape run send ID nft "f(int256)" -- -2 --network URL`` would pass ``--network`` and
    ``URL`` to the call (and connect to the default network). A word that is exactly an option's name (or
    ``--name=value``) is taken as that option wherever it stands, a short name too (ape's ``-v WARNING``, which
    docs/scripts.md gives to hide ape's log lines: a dash and a letter, never a negative number); every other word
    keeps its place."""
    if "--" not in args:
        return args
    cut = args.index("--")
    takes_value = dict(_APE_OPTIONS)
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                if name.startswith("--") or (len(name) == 2 and name[0] == "-" and name[1].isalpha()):
                    takes_value[name] = not (param.is_flag or param.count)
    moved: list[str] = []
    kept: list[str] = []
    tail = args[cut + 1 :]
    index = 0
    while index < len(tail):
        word = tail[index]
        name = word.split("=", 1)[0]
        if name not in takes_value:
            kept.append(word)
            index += 1
            continue
        moved.append(word)
        if takes_value[name] and "=" not in word and index + 1 < len(tail):
            moved.append(tail[index + 1])
            index += 1
        index += 1
    return [*args[:cut], *moved, "--", *kept]


def refuse_repeated_options(ctx: click.Context, order: list[click.Parameter]) -> None:
    """Refuse an option that takes one value given more than once (``order``: the parameters as click's parser
    met them, once per occurrence). click keeps the last silently: ``grant ... --valid-for 1h ... --valid-for
    never`` would grant a session that never expires, ``--value-limit`` twice the larger or the smaller limit by
    where it stands. Which one the operator meant is not guessed. Repeatable options (``multiple``), counts and
    flags are not refused."""
    seen: dict[str, int] = {}
    for param in order:
        if isinstance(param, click.Option) and not (param.multiple or param.count or param.is_flag):
            name = max(param.opts, key=len)
            seen[name] = seen.get(name, 0) + 1
    repeated = [f"{name} is given {times} times" for name, times in seen.items() if times > 1]
    if repeated:
        raise click.UsageError(
            f"{', '.join(repeated)}: give it once (which value was meant is not guessed; nothing was done)",
            ctx,
        )


class OptionsAfterDashes(click.Command):
    """A click command that also takes its options after ``--`` (see :func:`options_first`), and refuses an
    option that takes one value given twice (see :func:`refuse_repeated_options`)."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_once(args: list[str]) -> Any:
            opts, rest, order = parse(args=args)
            refuse_repeated_options(ctx, order)
            return opts, rest, order

        parser.parse_args = parse_once  # type: ignore[method-assign]
        return parser

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser consumes the list it is given
        try:
            return super().parse_args(ctx, options_first(self, args))
        except click.NoSuchOption as error:
            # click reads a short option letter by letter: the word as given is the one it starts
            word = next((a for a in given if a.startswith(error.option_name)), error.option_name)
            if not re.fullmatch(r"-\.?\d.*", word):
                raise
            # a negative number, read as an option: click's "No such option: -1" says nothing of the way out
            raise click.UsageError(
                f"{word} was taken for an option: put -- before the arguments when one starts with a dash, as in "
                f'`... "f(int256)" -- {word}` (options may still follow)',
                ctx,
            ) from None


@functools.cache
def ape_command() -> type[click.Command]:
    """The command class of the ``ape run`` scripts: ape's ``ConnectedProviderCommand`` (``--network`` connects
    to an ape network before the command runs) that also takes its options after ``--``."""
    from ape.cli import ConnectedProviderCommand
    from ape.exceptions import ProviderError

    def parse_args(self: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
        network = network_given(args)
        if network is not None:
            ctx.meta[_NETWORK_GIVEN] = network
            if _HOST_AND_PORT.fullmatch(network):  # ape would list its ecosystems, none of them the way out
                raise click.UsageError(
                    f"--network {mask_url(network)!r} is a host and port without a scheme: give the node's URL, "
                    f"--network http://{mask_url(network)}",
                    ctx,
                )
        return OptionsAfterDashes.parse_args(self, ctx, args)  # type: ignore[arg-type]

    def invoke(self: click.Command, ctx: click.Context) -> Any:
        network = ctx.meta.get(_NETWORK_GIVEN)
        bundler = ctx.params.get("bundler")
        if network and isinstance(bundler, str):
            # the node's URL given to --bundler as well: said before anything is signed, naming the option, rather
            # than as the node's "Method not found" for eth_supportedEntryPoints once the command is under way
            twice = node_given_twice(network, bundler, node_name="--network", bundler_name="--bundler")
            if twice is not None:
                fail(f"{twice}; give --bundler the bundler's URL (bundler_url in the deployments file)")
        # the callback reports its own errors (reports_errors): a ProviderError reaching here is ape's, raised
        # while connecting to --network before the command ran, which ape would show as a traceback
        try:
            return ConnectedProviderCommand.invoke(self, ctx)  # type: ignore[arg-type]
        except ProviderError as error:
            if network and isinstance(bundler, str) and bundler != network:
                # --bundler given as well: the two swapped are said as such, with where each URL goes
                misplaced = swapped_or_misplaced(
                    network, bundler, node_name="--network", bundler_name="--bundler"
                )
                if misplaced is not None:
                    fail(misplaced)
            if network and answers_as_bundler(network):
                fail(
                    f"--network {mask_url(network)} is an ERC-4337 bundler's URL, not a node's: give --network the "
                    "node's URL (rpc_url in the deployments file) and --bundler the bundler's (bundler_url)"
                )
            said = one_line(error).rstrip(".") or type(error).__name__
            fail(
                f"cannot connect to the node: {said}; start it (the local stack: python -m keyscope.local --json), "
                "or give --network the URL of a running node"
            )

    return type(
        "KeyscopeScriptCommand",
        (OptionsAfterDashes, ConnectedProviderCommand),
        {"parse_args": parse_args, "invoke": invoke},
    )


_NETWORK_GIVEN = "keyscope.network"
_HOST_AND_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]+(/\S*)?")
"""``127.0.0.1:8545``, ``localhost:8545/rpc``: a node's address without ``http://`` (ape's own choices,
``ethereum:local:foundry``, have no port)."""


def network_given(args: list[str]) -> str | None:
    """The value of ``--network`` in ``args`` as given (``--network X`` or ``--network=X``; the last one), or None."""
    found = None
    for index, word in enumerate(args):
        if word == "--network" and index + 1 < len(args):
            found = args[index + 1]
        elif word.startswith("--network="):
            found = word.split("=", 1)[1]
    return found


def ape_account_type(name: str) -> Any:
    """ape's click type for an account alias (``TEST::n`` for a test account), as ``account_option`` uses. A value
    with the form of a private key (64 hex digits: a key given where its alias goes, on the command line or in the
    option's environment variable) is refused without being shown; ape's own refusal quotes what it was given."""
    from ape.cli.choices import AccountAliasPromptChoice

    class AliasNotKey(AccountAliasPromptChoice):
        def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
            if has_private_key_form(value):
                where = f"; a raw private key of the owner goes in {ENV_OWNER_KEY}" if name == "owner" else ""
                self.fail(
                    f"{PRIVATE_KEY_NOT_SHOWN} is not an ape account alias: give the alias `ape accounts list` shows "
                    f"(TEST::n for a test account){where}",
                    param,
                    ctx,
                )
            return super().convert(value, param, ctx)

    return AliasNotKey(name=name)


def require_ape_account(account: Any, option: str) -> Any:
    """``account``, or a clear error naming ``option`` when it was not given."""
    if account is None:
        raise ConfigurationError(
            f"no ape account: pass {option} ALIAS (see `ape accounts list`; TEST::n for a test account)"
        )
    return account


def connection_options(function: F) -> F:
    """``--deployments``, ``--bundler``, ``--module``, ``--factory``, ``--entry-point`` and ``--submitter``,
    each also from its environment variable; the callback gets them as ``connection``
    (:class:`ConnectionOptions`)."""

    @functools.wraps(function)
    def wrapper(
        *args: Any,
        deployments: str | None,
        bundler: str | None,
        module: str | None,
        factory: str | None,
        entry_point: str | None,
        submitter: Any,
        **kwargs: Any,
    ) -> Any:
        connection = ConnectionOptions(deployments, bundler, module, factory, entry_point, submitter)
        return function(*args, connection=connection, **kwargs)

    options = [
        click.option(
            "--deployments",
            envvar=ENV_DEPLOYMENTS,
            metavar="FILE",
            help=f"JSON file with keyscope's addresses (from `python -m keyscope.local --json` or `ape run deploy "
            f"--out`) [env {ENV_DEPLOYMENTS}]",
        ),
        click.option(
            "--bundler",
            envvar=ENV_BUNDLER,
            metavar="URL|inprocess",
            help=f"ERC-4337 bundler JSON-RPC URL, or '{INPROCESS}' to send handleOps from --submitter "
            f"[env {ENV_BUNDLER}]",
        ),
        click.option(
            "--module", envvar=ENV_MODULE, metavar="ADDRESS", help=f"SessionKeyValidator [env {ENV_MODULE}]"
        ),
        click.option(
            "--factory",
            envvar=ENV_FACTORY,
            metavar="ADDRESS",
            help=f"KeyscopeAccountFactory [env {ENV_FACTORY}]",
        ),
        click.option(
            "--entry-point",
            envvar=ENV_ENTRY_POINT,
            metavar="ADDRESS",
            help=f"EntryPoint v0.7 (default: the canonical {ENTRY_POINT_V07}) [env {ENV_ENTRY_POINT}]",
        ),
        click.option(
            "--submitter",
            envvar=ENV_SUBMITTER,
            type=ape_account_type("submitter"),
            metavar="ALIAS",
            help=f"ape account that sends (and pays for) handleOps with --bundler {INPROCESS} [env {ENV_SUBMITTER}]",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


class _StoreOption(click.Option):
    """``--store``, whose refusal when missing names the environment variable that may give it too (click's says
    only "Missing option '--store'", though the URL may come from ``KEYSCOPE_STORE``)."""

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        if self.required and self.value_is_missing(value):
            raise click.MissingParameter(
                ctx=ctx,
                param=self,
                message=f"Give the store's URL with --store URL, or set {ENV_STORE} to it",
            )
        return super().process_value(ctx, value)


@overload
def store_option(function: F) -> F: ...


@overload
def store_option(*, required: bool = ...) -> Callable[[F], F]: ...


def store_option(function: F | None = None, *, required: bool = False) -> F | Callable[[F], F]:
    """``--store URL`` (env ``KEYSCOPE_STORE``); the callback gets ``store_url``. Without ``required``, it
    defaults to ``sqlite:///.keyscope/sessions.db``. Use as ``@store_option`` or ``@store_option(required=True)``."""

    def decorate(callback: F) -> F:
        return click.option(
            "--store",
            "store_url",
            cls=_StoreOption,
            envvar=ENV_STORE,
            required=required,
            default=None if required else DEFAULT_STORE_URL,
            show_default=not required,
            metavar="URL",
            help="session store: sqlite:///FILE (relative to the current folder; sqlite:////FILE absolute), "
            f"postgresql://user@host/db or a folder; keys are encrypted with {ENV_STORE_PASSPHRASE} or "
            f"{ENV_STORE_KEK} [env {ENV_STORE}]",
        )(callback)

    return decorate if function is None else decorate(function)


def owner_options(*, account: bool = True) -> Callable[[F], F]:
    """``--owner ALIAS`` (an ape account, as ape's ``account_option`` takes it; env ``KEYSCOPE_OWNER``; without
    it, the private key in ``KEYSCOPE_OWNER_KEY``); the callback gets ``owner_account``. With ``account``, also
    ``--account ADDRESS`` and ``--salt N`` (the callback gets ``account`` and ``salt``)."""

    def decorate(function: F) -> F:
        if account:
            function = click.option(
                "--salt", type=SALT, default=0, show_default=True, help="salt of the owner's keyscope account"
            )(function)
            function = click.option(
                "--account",
                metavar="ADDRESS",
                help="the smart account (default: the owner's keyscope account at --salt)",
            )(function)
        return click.option(
            "--owner",
            "owner_account",
            envvar=ENV_OWNER,
            type=ape_account_type("owner"),
            metavar="ALIAS",
            help=f"ape account alias of the owner (TEST::n for a test account) [env {ENV_OWNER}]; without it, "
            f"the private key in {ENV_OWNER_KEY}",
        )(function)

    return decorate


def timeout_option(function: F) -> F:
    """``--timeout SECONDS`` (default 60) for waiting on operations; the callback gets ``timeout``."""
    return click.option(
        "--timeout",
        type=Seconds(positive=True),
        default=60.0,
        show_default=True,
        help="seconds to wait for an operation's receipt",
    )(function)
