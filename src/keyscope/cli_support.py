"""What the ``ape run`` scripts in ``scripts/`` share: options, settings, signers, parsers and the actions
they run, each a thin layer over the SDK.

A script parses its options with the decorators below, calls one action (:func:`create_account`,
:func:`grant_session`, :func:`revoke_session`, :func:`send_session_call`, :func:`list_sessions`,
:func:`operation_status`, :func:`deploy_keyscope`) and prints the result with :func:`emit`;
:func:`reports_errors` turns any :class:`~keyscope.errors.KeyscopeError` into one ``error: ...`` line on
stderr and exit status 1.

Settings come from, in this order: the command-line option, its environment variable, the deployments file
(``--deployments``, as written by ``python -m keyscope.local --json`` or ``ape run deploy --out``), and the
default. The node is the ape network the command is connected to (``--network``).

Importing this module needs ape (``pip install keyscope[ape]``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from .artifacts import ENTRY_POINT_V07
from .bundler.client import BundlerClient
from .bundler.pending import PendingUserOperation
from .bundler.types import Bundler, FeeQuote, GasEstimate, UserOperationReceipt
from .chain import Chain, Web3Chain
from .errors import (
    BadInputError,
    ConfigurationError,
    InvalidAddressError,
    KeyscopeError,
    SessionStoreError,
)
from .execution import Call
from .grant import SessionGrant
from .hexutil import ZERO_ADDRESS, to_address, to_bytes
from .keys import SessionKey
from .network import Network
from .owner import GrantRequest, Owner
from .policy import AbiFunction, AbiType, RuleSpec, arg, parse_signature
from .policy import Policy as PolicyBuilder
from .revert import describe_revert
from .signing import HashSigner, LocalSigner, recover_hash
from .store import SessionStore, open_store
from .userop import UserOperation

__all__ = [
    "DEFAULT_STORE_URL",
    "ENV_BUNDLER",
    "ENV_DEPLOYMENTS",
    "ENV_ENTRY_POINT",
    "ENV_FACTORY",
    "ENV_MODULE",
    "ENV_OWNER",
    "ENV_OWNER_KEY",
    "ENV_STORE",
    "ENV_STORE_KEK",
    "ENV_STORE_PASSPHRASE",
    "ENV_SUBMITTER",
    "INPROCESS",
    "ApeAccountSigner",
    "ConnectionOptions",
    "CreatedAccount",
    "Deployments",
    "GrantResult",
    "OperationStatus",
    "RevokeResult",
    "SendResult",
    "SessionRow",
    "Settings",
    "SigningDeclinedError",
    "ape_account_type",
    "ape_node",
    "connect",
    "connect_ape",
    "connection_options",
    "create_account",
    "deploy_keyscope",
    "describe_permission",
    "describe_permissions",
    "describe_time",
    "emit",
    "find_grant",
    "grant_session",
    "hex_of",
    "json_option",
    "list_sessions",
    "make_bundler",
    "make_owner",
    "open_session_store",
    "operation_status",
    "owner_options",
    "owner_signer",
    "parse_amount",
    "parse_call_args",
    "parse_duration",
    "parse_rule",
    "receipt_lines",
    "reports_errors",
    "require_ape_account",
    "resolve_address",
    "resolve_settings",
    "revoke_session",
    "send_session_call",
    "session_key_from",
    "session_lines",
    "session_status",
    "sign_grant_request",
    "status_bundler",
    "store_option",
    "timeout_option",
]

F = TypeVar("F", bound=Callable[..., Any])

INPROCESS = "inprocess"
"""``--bundler inprocess``: send ``handleOps`` from an ape account instead of using a bundler."""

DEFAULT_STORE_URL = "sqlite:///.keyscope/sessions.db"

ENV_BUNDLER = "KEYSCOPE_BUNDLER_URL"
ENV_MODULE = "KEYSCOPE_MODULE"
ENV_FACTORY = "KEYSCOPE_FACTORY"
ENV_ENTRY_POINT = "KEYSCOPE_ENTRY_POINT"
ENV_DEPLOYMENTS = "KEYSCOPE_DEPLOYMENTS"
ENV_SUBMITTER = "KEYSCOPE_SUBMITTER"
ENV_STORE = "KEYSCOPE_STORE"
ENV_STORE_PASSPHRASE = "KEYSCOPE_STORE_PASSPHRASE"
ENV_STORE_KEK = "KEYSCOPE_STORE_KEK"
ENV_OWNER = "KEYSCOPE_OWNER"
ENV_OWNER_KEY = "KEYSCOPE_OWNER_KEY"

_IS_SESSION_ACTIVE = keccak(b"isSessionActive(address,bytes32)")[:4]
_IS_SESSION_REVOKED = keccak(b"isSessionRevoked(address,bytes32)")[:4]
_EPOCH_OF = keccak(b"epochOf(address)")[:4]
_SIGNER = keccak(b"signer()")[:4]


class SigningDeclinedError(KeyscopeError):
    """An ape account did not sign (the user said no, or could not be asked)."""


# --------------------------------------------------------------------------------------------------
# Errors and output
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Deployments and settings
# --------------------------------------------------------------------------------------------------

_DEPLOYMENT_KEYS = {
    "entry_point": "entry_point",
    "entryPoint": "entry_point",
    "factory": "factory",
    "module": "module",
    "nft": "nft",
    "chain_id": "chain_id",
    "chainId": "chain_id",
    "bundler_url": "bundler_url",
    "bundlerUrl": "bundler_url",
    "rpc_url": "rpc_url",
    "rpcUrl": "rpc_url",
}


@dataclass(frozen=True)
class Deployments:
    """Where keyscope lives on one chain: the JSON object of ``python -m keyscope.local --json`` (and of
    ``ape run deploy --out``). Unknown keys are ignored."""

    entry_point: str | None = None
    factory: str | None = None
    module: str | None = None
    nft: str | None = None
    chain_id: int | None = None
    bundler_url: str | None = None
    rpc_url: str | None = None
    source: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> Deployments:
        """Read a deployments file; :class:`BadInputError` says what is wrong with it."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BadInputError(
                f"deployments file {file} not found: write one with `python -m keyscope.local --json > {file}` "
                f"or `ape run deploy --out {file}`"
            ) from None
        except OSError as error:
            raise BadInputError(f"cannot read deployments file {file}: {error.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            data = _last_json_line(text)
            if data is None:
                raise BadInputError(
                    f"deployments file {file} is not JSON ({error.msg} at line {error.lineno}): give the JSON "
                    "object `python -m keyscope.local --json` prints"
                ) from None
        if not isinstance(data, dict):
            raise BadInputError(
                f"deployments file {file} must hold one JSON object, got {type(data).__name__}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = _DEPLOYMENT_KEYS.get(key)
            if name is None or value is None:
                continue
            if name in ("entry_point", "factory", "module", "nft"):
                values[name] = _address_from(value, f"{key} in {file}")
            elif name == "chain_id":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise BadInputError(f"{key} in {file} must be a positive integer, got {value!r}")
                values[name] = value
            else:
                if not isinstance(value, str):
                    raise BadInputError(f"{key} in {file} must be a URL string, got {value!r}")
                values[name] = value
        return cls(**values, source=str(file))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object :meth:`load` reads (only the keys that are set)."""
        keys = ("chain_id", "entry_point", "factory", "module", "nft", "bundler_url", "rpc_url")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (creating the folder)."""
        file = Path(path)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            raise BadInputError(f"cannot write deployments file {file}: {error.strerror}") from None

    @property
    def names(self) -> dict[str, str]:
        """Named addresses usable in place of an address (``nft``, ``module``, ``factory``, ``entry_point``)."""
        return {
            name: value
            for name in ("nft", "module", "factory", "entry_point")
            if isinstance(value := getattr(self, name), str)
        }


def _last_json_line(text: str) -> Any:
    """The JSON value on the last non-empty line of ``text`` (output with log lines before it), or None."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return None


def _address_from(value: Any, what: str) -> str:
    try:
        return to_address(value)
    except InvalidAddressError as error:
        raise BadInputError(f"{what}: {error}") from None


@dataclass(frozen=True)
class ConnectionOptions:
    """The connection options of a command, as given (None where not given)."""

    deployments: str | None = None
    bundler: str | None = None
    module: str | None = None
    factory: str | None = None
    entry_point: str | None = None
    submitter: Any = None


@dataclass(frozen=True)
class Settings:
    """Resolved settings: addresses checksummed, the bundler a URL, ``inprocess`` or None."""

    module: str
    entry_point: str
    factory: str | None
    bundler: str | None
    chain_id: int | None
    names: dict[str, str] = field(default_factory=dict)
    deployments: Deployments = field(default_factory=Deployments)


def resolve_settings(
    options: ConnectionOptions, *, module: str | None = None, entry_point: str | None = None
) -> Settings:
    """Settings from the options (and their environment variables), then ``module`` / ``entry_point`` given
    here (a stored grant's), then the deployments file, then the defaults (the canonical EntryPoint v0.7)."""
    deployments = Deployments.load(options.deployments) if options.deployments else Deployments()

    def address(value: str | None, option: str) -> str | None:
        return None if value is None else _address_from(value, option)

    chosen_module = address(options.module, "--module") or module or deployments.module
    if chosen_module is None:
        raise ConfigurationError(
            f"no session module address: pass --module, set {ENV_MODULE}, or give --deployments FILE (from "
            "`python -m keyscope.local --json` or `ape run deploy --out FILE`)"
        )
    chosen_entry_point = (
        address(options.entry_point, "--entry-point")
        or entry_point
        or deployments.entry_point
        or ENTRY_POINT_V07
    )
    bundler = _bundler_setting(options.bundler or deployments.bundler_url)
    names = dict(deployments.names)
    names.update(module=chosen_module, entry_point=chosen_entry_point)
    factory = address(options.factory, "--factory") or deployments.factory
    if factory is not None:
        names["factory"] = factory
    return Settings(
        module=chosen_module,
        entry_point=chosen_entry_point,
        factory=factory,
        bundler=bundler,
        chain_id=deployments.chain_id,
        names=names,
        deployments=deployments,
    )


def _bundler_setting(value: str | None) -> str | None:
    if value is None:
        return None
    bundler = value.strip()
    if bundler.lower() == INPROCESS:
        return INPROCESS
    if not re.match(r"^https?://", bundler, re.I):
        raise BadInputError(
            f"--bundler {bundler!r} is neither an http(s) URL nor {INPROCESS!r}: give the bundler's JSON-RPC URL "
            f"(e.g. http://127.0.0.1:4337), or {INPROCESS} to send handleOps from an ape account"
        )
    return bundler


class _NoBundler:
    """The bundler of a command run without ``--bundler``: any use says how to give one."""

    def _missing(self) -> ConfigurationError:
        return ConfigurationError(
            f"this needs a bundler: pass --bundler URL (or {INPROCESS} with --submitter ALIAS), set "
            f"{ENV_BUNDLER}, or give --deployments FILE with a bundler_url"
        )

    def chain_id(self) -> int:
        raise self._missing()

    def supported_entry_points(self) -> list[str]:
        raise self._missing()

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        raise self._missing()

    def send_user_operation(self, op: UserOperation, entry_point: str) -> bytes:
        raise self._missing()

    def get_user_operation_receipt(self, user_op_hash: bytes) -> UserOperationReceipt | None:
        raise self._missing()

    def get_user_operation_by_hash(self, user_op_hash: bytes) -> dict[str, Any] | None:
        raise self._missing()

    def fee_quote(self) -> FeeQuote:
        raise self._missing()


def _require_code(chain: Chain, address: str, what: str, option: str, chain_id: int) -> None:
    if not chain.get_code(address):
        raise ConfigurationError(
            f"no contract at the {what} address {address} on chain {chain_id}: deploy keyscope there "
            f"(`ape run deploy`), or pass {option} / --deployments for this network (--network)"
        )


def make_bundler(settings: Settings, chain: Chain, submitter: Any = None) -> Bundler:
    """The bundler the settings name: a :class:`BundlerClient`, an in-process one sending ``handleOps`` from
    ``submitter`` (an ape account), or one that explains that none was given."""
    if settings.bundler is None:
        return _NoBundler()
    if settings.bundler == INPROCESS:
        if submitter is None:
            raise ConfigurationError(
                f"--bundler {INPROCESS} sends handleOps from an ape account: pass --submitter ALIAS (e.g. "
                f"TEST::0 on a local chain) or set {ENV_SUBMITTER}"
            )
        from .testing.submitter import InProcessBundler

        return InProcessBundler(settings.entry_point, submitter)
    return BundlerClient(settings.bundler, node=chain)


def connect_ape(
    settings: Settings,
    *,
    submitter: Any = None,
    need_bundler: bool = False,
    need_factory: bool = False,
) -> Network:
    """A :class:`~keyscope.network.Network` on the ape network the command is connected to.

    Checks that the module (and the factory, the EntryPoint and the bundler when the command needs them) are
    there, and that the deployments file and the bundler are for this chain.
    """
    chain = ape_node()
    chain_id = chain.chain_id()
    if settings.chain_id is not None and settings.chain_id != chain_id:
        where = f" (node {settings.deployments.rpc_url})" if settings.deployments.rpc_url else ""
        raise ConfigurationError(
            f"the deployments file {settings.deployments.source} is for chain {settings.chain_id}{where}, but "
            f"--network is connected to chain {chain_id}: pass --network for that chain"
            + (f", e.g. --network {settings.deployments.rpc_url}" if settings.deployments.rpc_url else "")
        )
    _require_code(chain, settings.module, "session module", "--module", chain_id)
    if need_factory:
        if settings.factory is None:
            raise ConfigurationError(
                f"no account factory: pass --factory, set {ENV_FACTORY}, or give --deployments FILE with a factory"
            )
        _require_code(chain, settings.factory, "account factory", "--factory", chain_id)
    bundler = make_bundler(settings, chain, submitter)
    if need_bundler:
        if settings.bundler is None:
            raise _NoBundler()._missing()
        _require_code(chain, settings.entry_point, "EntryPoint", "--entry-point", chain_id)
        served = bundler.chain_id()
        if served != chain_id:
            raise ConfigurationError(
                f"the bundler {settings.bundler} serves chain {served}, but --network is connected to chain "
                f"{chain_id}: use a bundler and a network of the same chain"
            )
    return Network(
        chain=chain,
        bundler=bundler,
        module=settings.module,
        entry_point=settings.entry_point,
        factory=settings.factory,
    )


def connect(
    options: ConnectionOptions,
    *,
    owner_account: Any = None,
    need_bundler: bool = False,
    need_factory: bool = False,
    module: str | None = None,
    entry_point: str | None = None,
    deploy: bool = False,
) -> tuple[Network, Settings]:
    """:func:`resolve_settings` then :func:`connect_ape`; with ``--bundler inprocess`` the submitter is
    ``--submitter``, else the owner's ape account.

    ``deploy`` first deploys keyscope (:func:`deploy_keyscope`) from that account and uses those addresses:
    for ape's local test chain, which starts empty on every run."""
    submitter = options.submitter if options.submitter is not None else owner_account
    if deploy:
        deployer = require_ape_account(submitter, "--submitter (or --owner)")
        deployed = deploy_keyscope(deployer, entry_point=options.entry_point)
        options = ConnectionOptions(
            deployments=None,
            bundler=options.bundler,
            module=deployed.module,
            factory=deployed.factory,
            entry_point=deployed.entry_point,
            submitter=options.submitter,
        )
    settings = resolve_settings(options, module=module, entry_point=entry_point)
    if deploy and deployed.nft:
        settings.names["nft"] = deployed.nft
    network = connect_ape(settings, submitter=submitter, need_bundler=need_bundler, need_factory=need_factory)
    return network, settings


# --------------------------------------------------------------------------------------------------
# Click options
# --------------------------------------------------------------------------------------------------


def ape_account_type(name: str) -> Any:
    """ape's click type for an account alias (``TEST::n`` for a test account), as ``account_option`` uses."""
    from ape.cli.choices import AccountAliasPromptChoice

    return AccountAliasPromptChoice(name=name)


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


def store_option(function: F) -> F:
    """``--store URL`` (env ``KEYSCOPE_STORE``, default ``sqlite:///.keyscope/sessions.db``); the callback gets
    ``store_url``."""
    return click.option(
        "--store",
        "store_url",
        envvar=ENV_STORE,
        default=DEFAULT_STORE_URL,
        show_default=True,
        metavar="URL",
        help=f"session store (sqlite:///FILE, postgresql://..., or a folder); keys are encrypted with "
        f"{ENV_STORE_PASSPHRASE} or {ENV_STORE_KEK} [env {ENV_STORE}]",
    )(function)


def owner_options(*, account: bool = True) -> Callable[[F], F]:
    """``--owner ALIAS`` (an ape account, as ape's ``account_option`` takes it; env ``KEYSCOPE_OWNER``; without
    it, the private key in ``KEYSCOPE_OWNER_KEY``); the callback gets ``owner_account``. With ``account``, also
    ``--account ADDRESS`` and ``--salt N`` (the callback gets ``account`` and ``salt``)."""

    def decorate(function: F) -> F:
        if account:
            function = click.option(
                "--salt", type=int, default=0, show_default=True, help="salt of the owner's keyscope account"
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
        type=click.FloatRange(min=0, min_open=True),
        default=60.0,
        show_default=True,
        help="seconds to wait for an operation's receipt",
    )(function)


# --------------------------------------------------------------------------------------------------
# Signers
# --------------------------------------------------------------------------------------------------


class ApeAccountSigner:
    """An ape account (``AccountAPI``) as a :class:`~keyscope.signing.HashSigner`.

    UserOperation hashes go through ``sign_raw_msghash`` and EIP-712 typed data through ``sign_message``.
    When ``APE_ACCOUNTS_<alias>_PASSPHRASE`` is set, a keyfile account is unlocked with it and set to sign
    messages without asking; ape still asks to confirm every raw-hash signature.
    """

    def __init__(self, account: Any) -> None:
        self.account = account
        self._address = to_address(account.address)
        alias = getattr(account, "alias", None)
        if alias and hasattr(account, "set_autosign") and os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE"):
            from ape.exceptions import AccountsError

            try:
                account.set_autosign(True)
            except AccountsError as error:
                raise ConfigurationError(
                    f"APE_ACCOUNTS_{alias}_PASSPHRASE does not unlock the ape account {alias!r} ({error}): set "
                    "it to that account's passphrase"
                ) from None

    @property
    def address(self) -> str:
        return self._address

    def __repr__(self) -> str:
        return f"ApeAccountSigner({getattr(self.account, 'alias', None) or self._address})"

    def _signature(self, sign: Callable[[], Any], what: str, digest: bytes) -> bytes:
        from ape.exceptions import APINotImplementedError

        name = getattr(self.account, "alias", None) or self._address
        try:
            signature = sign()
        except APINotImplementedError:
            raise ConfigurationError(
                f"the ape account {name} cannot sign {what}: use another account for --owner, or "
                f"{ENV_OWNER_KEY}"
            ) from None
        except click.exceptions.Abort:
            signature = None
        if signature is None:
            raise SigningDeclinedError(
                f"the ape account {name} did not sign {what}: confirm when ape asks (ape asks for every raw-hash "
                "signature; answer 'y', also on stdin for an unattended run)"
            )
        v = int(signature.v)
        raw = bytes(signature.r).rjust(32, b"\x00") + bytes(signature.s).rjust(32, b"\x00")
        result = raw + bytes((v + 27 if v < 27 else v,))
        if recover_hash(digest, result) != self._address:
            raise SigningDeclinedError(
                f"the ape account {name} returned a signature of another key for {what}"
            )
        return result

    def sign_hash(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest as is (``sign_raw_msghash``)."""
        from hexbytes import HexBytes

        if len(digest) != 32:
            raise BadInputError(f"a digest to sign must be 32 bytes, got {len(digest)}")
        return self._signature(
            lambda: self.account.sign_raw_msghash(HexBytes(digest)), "the hash 0x" + digest.hex(), digest
        )

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        """Sign EIP-712 typed data (``sign_message`` with the EIP-712 signable message)."""
        signable = encode_typed_data(full_message=typed_data)
        digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
        return self._signature(
            lambda: self.account.sign_message(signable), "the EIP-712 session grant", digest
        )


def owner_signer(owner_account: Any = None) -> HashSigner:
    """The owner's signer: the ape account given (``--owner``), else the key in ``KEYSCOPE_OWNER_KEY``."""
    if owner_account is not None:
        return ApeAccountSigner(owner_account)
    key = os.environ.get(ENV_OWNER_KEY, "").strip()
    if key:
        try:
            return LocalSigner(key)
        except BadInputError:
            raise BadInputError(
                f"{ENV_OWNER_KEY} is not a private key: give 0x and 64 hex digits (or use --owner ALIAS)"
            ) from None
    raise ConfigurationError(
        f"no owner key: pass --owner ALIAS (an ape account; TEST::n for a test account) or set {ENV_OWNER}, or "
        f"put the owner's private key in {ENV_OWNER_KEY}"
    )


def make_owner(network: Network, signer: HashSigner, account: str | None = None, salt: int = 0) -> Owner:
    """The :class:`~keyscope.owner.Owner` of ``account`` (or of the signer's keyscope account at ``salt``),
    checked to be owned by ``signer`` when the account exists."""
    if salt < 0:
        raise BadInputError(f"--salt must be >= 0, got {salt}")
    if account is None and network.factory is None:
        raise ConfigurationError(
            f"no account factory to locate the owner's account: pass --account ADDRESS, or --factory (env "
            f"{ENV_FACTORY}) or --deployments FILE"
        )
    address = None if account is None else _address_from(account, "--account")
    owner = network.owner(signer, address, salt=salt)
    if owner.is_deployed():
        try:
            result = network.chain.call(owner.account, _SIGNER)
            actual = to_address(result[12:32]) if len(result) >= 32 else None
        except KeyscopeError:
            actual = None
        if actual is not None and actual != to_address(signer.address):
            raise BadInputError(
                f"{signer.address} is not the owner of {owner.account} (its owner is {actual}): give that key "
                "with --owner or KEYSCOPE_OWNER_KEY"
            )
    return owner


# --------------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)", re.I)
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNITS = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}
_AMOUNT = re.compile(r"^(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)$", re.I)


def parse_duration(text: str) -> int:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"1h"``, ``"1h30m"``, ``"2d"``, ``"1w"``; must be > 0."""
    value = text.strip().lower().replace(" ", "")
    if value.isdigit():
        seconds = int(value)
    else:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != value:
            raise BadInputError(
                f"{text!r} is not a duration: give seconds or a number with a unit, e.g. 90s, 15m, 1h, 1h30m, 2d, 1w"
            )
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise BadInputError(f"the duration {text!r} must be longer than 0 seconds")
    return seconds


def _integer(text: str, what: str, *, signed: bool = False, units: bool = True) -> int:
    value = text.strip().replace("_", "")
    negative = signed and value.startswith("-")
    if negative:
        value = value[1:].strip()
    if value.lower().startswith("0x"):
        try:
            number = int(value, 16)
        except ValueError:
            raise BadInputError(f"{what}: {text!r} is not a number") from None
        return -number if negative else number
    match = _AMOUNT.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or (unit and (not units or unit not in _UNITS)):
        hint = " (a number, optionally with wei, gwei or ether)" if units else " (decimal or 0x-hex)"
        raise BadInputError(f"{what}: {text!r} is not an integer{hint}")
    try:
        amount = Decimal(match.group(1)) * (Decimal(10) ** _UNITS.get(unit, 0))
    except InvalidOperation:
        raise BadInputError(f"{what}: {text!r} is not a number") from None
    if amount != amount.to_integral_value():
        raise BadInputError(f"{what}: {text!r} is not a whole number of wei")
    number = int(amount)
    return -number if negative else number


def parse_amount(text: str, what: str = "amount") -> int:
    """Wei in ``"1000"``, ``"0x3e8"``, ``"10gwei"``, ``"0.5ether"`` (``eth`` too)."""
    return _integer(text, what)


def _named_address(text: str, names: Mapping[str, str], what: str) -> str:
    value = text.strip()
    if value in names:
        return names[value]
    try:
        return to_address(value)
    except InvalidAddressError as error:
        known = f", or one of the names {', '.join(sorted(names))}" if names else ""
        reason = str(error).split(". Give", 1)[0].split(": ", 1)[-1]
        raise BadInputError(
            f"{what}: {value!r} is not an address ({reason}): give 0x and 40 hex digits (all lowercase, or with "
            f"a correct EIP-55 checksum){known}"
        ) from None


def resolve_address(text: str, names: Mapping[str, str], what: str = "address") -> str:
    """An address given as hex, or by name (``nft``, ``account``... see the command's help)."""
    address = _named_address(text, names, what)
    if address == ZERO_ADDRESS:
        raise BadInputError(f"{what} is the zero address: give a contract address")
    return address


def _value(text: Any, kind: AbiType, names: Mapping[str, str], where: str) -> Any:
    """``text`` (a command-line string, or a JSON value inside an array/tuple) as the Python value for ``kind``."""
    if kind.kind == "array":
        items = _json_list(text, where, kind.name)
        assert kind.element is not None
        if kind.length is not None and len(items) != kind.length:
            raise BadInputError(f"{where}: {kind.name} takes {kind.length} items, got {len(items)}")
        return [_value(item, kind.element, names, f"{where}[{i}]") for i, item in enumerate(items)]
    if kind.kind == "tuple":
        items = _json_list(text, where, kind.name)
        if len(items) != len(kind.components):
            raise BadInputError(
                f"{where}: {kind.name} has {len(kind.components)} components, got {len(items)}"
            )
        return tuple(
            _value(item, param.type, names, f"{where}.{param.name or i}")
            for i, (item, param) in enumerate(zip(items, kind.components, strict=True))
        )
    name = kind.name
    if isinstance(text, bool) and name == "bool":
        return text
    if isinstance(text, int) and not isinstance(text, bool) and re.fullmatch(r"u?int\d+", name):
        return text
    if not isinstance(text, str):
        raise BadInputError(f"{where}: expected a {name} value, got {text!r}")
    if name == "address":
        return _named_address(text, names, where)
    if name == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BadInputError(f"{where}: {text!r} is not a bool: give true or false")
    if match := re.fullmatch(r"(u?)int(\d+)", name):
        return _integer(text, where, signed=not match.group(1))
    if name == "string":
        return text
    if name == "bytes" or name.startswith("bytes"):
        data = to_bytes(text.strip(), name=where)
        if name != "bytes" and len(data) != int(name[5:]):
            raise BadInputError(f"{where}: {name} takes exactly {name[5:]} bytes, got {len(data)}")
        return data
    raise BadInputError(f"{where}: values of type {name} are not supported on the command line")


def _json_list(text: Any, where: str, type_name: str) -> list[Any]:
    if isinstance(text, list):
        return text
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list):
        raise BadInputError(
            f"{where}: give the {type_name} value as a JSON list, e.g. '[1, 2]', got {text!r}"
        )
    return value


def parse_call_args(
    function: str | AbiFunction, args: Sequence[str], names: Mapping[str, str] | None = None
) -> list[Any]:
    """The Python arguments for ``function`` (a signature) from command-line strings: addresses (hex or a
    name), integers (decimal, 0x-hex, or with wei/gwei/ether), bools, 0x-hex bytes, strings, and JSON lists
    for arrays and tuples."""
    parsed = parse_signature(function) if isinstance(function, str) else function
    if len(args) != len(parsed.inputs):
        raise BadInputError(
            f"{parsed.signature} takes {len(parsed.inputs)} argument(s) ({parsed.describe_inputs()}), got "
            f"{len(args)}"
        )
    return [
        _value(text, param.type, names or {}, f"argument {param.name or i} ({param.type.name})")
        for i, (text, param) in enumerate(zip(args, parsed.inputs, strict=True))
    ]


_RULE = re.compile(
    r"^\s*(?P<path>[A-Za-z_$0-9][\w$]*(?:\.[\w$]+)*)\s*"
    r"(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)"
    r"|\s(?:in)\s+(?P<low>\S+?)\s*\.\.\s*(?P<high>\S+)"
    r"|\s(?:one\s+of|oneof)\s+(?P<values>.+?))\s*$",
    re.I,
)
_OPERATORS = {"==": "__eq__", "!=": "__ne__", "<=": "__le__", ">=": "__ge__", "<": "__lt__", ">": "__gt__"}


def parse_rule(text: str, function: str | AbiFunction, names: Mapping[str, str] | None = None) -> RuleSpec:
    """A rule from its text form, for ``function`` (which gives the argument's type):
    ``to==0x…``, ``amount<=1000``, ``id in 1..5``, ``token one of 0x…,0x…`` (also ``!=``, ``<``, ``>``,
    ``>=``). The argument is a name or a 0-based index, with ``.component`` steps into tuples and
    fixed-size arrays (``order.amount``)."""
    parsed = parse_signature(function) if isinstance(function, str) else function
    match = _RULE.match(text)
    if match is None:
        raise BadInputError(
            f"rule {text!r} is not understood: write ARG==VALUE (also !=, <, <=, >, >=), 'ARG in LOW..HIGH' or "
            "'ARG one of V1,V2,...', where ARG is an argument name or index"
        )
    path = tuple(int(step) if step.isdigit() else step for step in match.group("path").split("."))
    try:
        _, kind, label = parsed.locate(path)
    except BadInputError as error:
        raise BadInputError(f"rule {text!r}: {error}") from None
    where = f"rule {text!r} ({label}: {kind.name})"
    if kind.kind != "elementary":
        raise BadInputError(f"{where}: rules apply to single values, not to {kind.name}")
    ref = arg(*path)
    known = names or {}
    if match.group("op"):
        value = _value(match.group("value"), kind, known, where)
        spec: RuleSpec = getattr(ref, _OPERATORS[match.group("op")])(value)
        return spec
    if match.group("low") is not None:
        low = _value(match.group("low"), kind, known, where)
        high = _value(match.group("high"), kind, known, where)
        return ref.in_range(low, high)
    values = [item for item in (part.strip() for part in match.group("values").split(",")) if item]
    if not values:
        raise BadInputError(f"{where}: 'one of' needs values separated by commas")
    return ref.one_of(*[_value(item, kind, known, where) for item in values])


# --------------------------------------------------------------------------------------------------
# The session store
# --------------------------------------------------------------------------------------------------


def open_session_store(url: str, *, keys: bool) -> SessionStore:
    """Open the store at ``url``; with ``keys`` (the command reads or writes session keys), with the passphrase
    in ``KEYSCOPE_STORE_PASSPHRASE`` or the KEK (64 hex digits) in ``KEYSCOPE_STORE_KEK``, one of which must
    be set. Without ``keys`` no secret is used (grants need none). The folder of a new SQLite file is
    created."""
    passphrase = (os.environ.get(ENV_STORE_PASSPHRASE) or None) if keys else None
    kek_text = (os.environ.get(ENV_STORE_KEK, "").strip() or None) if keys else None
    if passphrase and kek_text:
        raise ConfigurationError(f"set {ENV_STORE_PASSPHRASE} or {ENV_STORE_KEK}, not both")
    if keys and not (passphrase or kek_text):
        raise ConfigurationError(
            f"the session store keeps session keys encrypted and no secret is set: set {ENV_STORE_PASSPHRASE} "
            f"(a passphrase) or {ENV_STORE_KEK} (32 bytes as 64 hex digits)"
        )
    kek = None
    if kek_text:
        try:
            kek = to_bytes(kek_text, name=ENV_STORE_KEK, length=32)
        except BadInputError:
            raise ConfigurationError(f"{ENV_STORE_KEK} must be 32 bytes as 64 hex digits") from None
    text = url.strip()
    if text.lower().startswith("memory:"):
        raise BadInputError(
            f"--store {text}: a memory store is gone when the command ends; give sqlite:///FILE, postgresql://... "
            "or a folder"
        )
    if text.lower().startswith("sqlite") and ":///" in text:
        path = text.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise SessionStoreError(f"cannot create the folder of {path}: {error.strerror}") from None
    return open_store(text, passphrase=passphrase, kek=kek)


def find_grant(store: SessionStore, session_id: str) -> SessionGrant:
    """The grant whose id is ``session_id``, or starts with it (at least 4 hex digits, unique)."""
    text = session_id.strip().lower()
    digits = text[2:] if text.startswith("0x") else text
    if not digits or len(digits) > 64 or not re.fullmatch(r"[0-9a-f]+", digits):
        raise BadInputError(
            f"{session_id!r} is not a session id: give 0x and 64 hex digits (or a unique prefix), as "
            "`ape run sessions` lists them"
        )
    if len(digits) == 64:
        try:
            return store.get_grant("0x" + digits)
        except SessionStoreError:
            raise BadInputError(
                f"unknown session id 0x{digits} in the store {store.url}: list the sessions with `ape run "
                "sessions`, or give the --store that holds it"
            ) from None
    if len(digits) < 4:
        raise BadInputError(f"session id prefix {session_id!r} is too short: give at least 4 hex digits")
    matches = [grant for grant in store.list_grants() if grant.session_id.hex().startswith(digits)]
    if not matches:
        raise BadInputError(
            f"no session id starting with 0x{digits} in the store {store.url}: list the sessions with `ape run "
            "sessions`, or give the --store that holds it"
        )
    if len(matches) > 1:
        raise BadInputError(f"session id prefix 0x{digits} matches {len(matches)} sessions: give more digits")
    return matches[0]


# --------------------------------------------------------------------------------------------------
# Session status
# --------------------------------------------------------------------------------------------------


def _module_flag(network: Network, selector: bytes, grant: SessionGrant) -> bool:
    data = selector + abi_encode(["address", "bytes32"], [grant.account, grant.session_id])
    return bool(abi_decode(["bool"], network.chain.call(network.module, data))[0])


def session_status(network: Network, grant: SessionGrant, *, now: int | None = None) -> str:
    """The grant's state on chain: ``active``, ``not yet enabled`` (an off-chain grant never used yet),
    ``not yet valid``, ``expired``, ``revoked``, ``invalidated`` (all sessions invalidated or the module
    uninstalled), or ``other chain`` / ``other module`` when the grant is not for ``network``."""
    if (grant.chain_id, grant.module, grant.entry_point) != (
        network.chain_id,
        network.module,
        network.entry_point,
    ):
        return "other chain" if grant.chain_id != network.chain_id else "other module"
    if _module_flag(network, _IS_SESSION_REVOKED, grant):
        return "revoked"
    moment = network.chain.block_timestamp() if now is None else now
    if grant.valid_until and moment > grant.valid_until:
        return "expired"
    active = _module_flag(network, _IS_SESSION_ACTIVE, grant)
    if active:
        return "not yet valid" if moment < grant.valid_after else "active"
    if grant.how == "onchain":
        return "invalidated"
    epoch = network.chain.call(network.module, _EPOCH_OF + abi_encode(["address"], [grant.account]))
    if int(abi_decode(["uint32"], epoch)[0]) != grant.epoch:
        return "invalidated"
    if network.is_deployed(grant.account) and not network.supports_sessions(grant.account):
        return "invalidated"
    return "not yet enabled"


@dataclass(frozen=True)
class SessionRow:
    """One session of the store, with its state on chain."""

    grant: SessionGrant
    status: str
    marked_revoked: bool

    def to_dict(self) -> dict[str, Any]:
        grant = self.grant
        return {
            "session_id": hex_of(grant.session_id),
            "account": grant.account,
            "session_key": grant.session_key,
            "how": grant.how,
            "chain_id": grant.chain_id,
            "valid_after": grant.valid_after,
            "valid_until": grant.valid_until,
            "status": self.status,
            "marked_revoked": self.marked_revoked,
            "permissions": [describe_permission(p) for p in grant.session.permissions],
        }


def describe_permission(permission: Any) -> str:
    """``safeMint(address) on 0x… (to == 0x…; value <= 0 wei)`` for listings."""
    rules = [rule.describe() for rule in permission.rules]
    rules.append(f"value <= {permission.value_limit} wei")
    return f"{permission.label} ({'; '.join(rules)})"


def describe_permissions(grant: SessionGrant) -> list[str]:
    """One line per permission of ``grant``."""
    return [describe_permission(p) for p in grant.session.permissions]


def describe_time(moment: int) -> str:
    """A unix time as UTC text; 0 reads as never."""
    if not moment:
        return "never expires"
    import datetime

    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def session_lines(rows: Sequence[SessionRow]) -> list[str]:
    """A listing of sessions for people."""
    if not rows:
        return ["no sessions in the store"]
    lines = []
    for row in rows:
        grant = row.grant
        marked = " (marked revoked in the store)" if row.marked_revoked and row.status != "revoked" else ""
        lines.extend(
            [
                f"{hex_of(grant.session_id)}  {row.status}{marked}",
                f"    account {grant.account}, key {grant.session_key}, granted {grant.how}, chain {grant.chain_id}",
                f"    valid until {describe_time(grant.valid_until)}",
                *(f"    allows {text}" for text in describe_permissions(grant)),
            ]
        )
    return lines


def list_sessions(chain: Chain, store: SessionStore, account: str | None = None) -> list[SessionRow]:
    """Every grant in ``store`` (of ``account`` when given), oldest first, with its state on ``chain``
    (judged at the module and EntryPoint each grant names)."""
    chosen = None if account is None else _address_from(account, "--account")
    chain_id = chain.chain_id()
    now = chain.block_timestamp()
    networks: dict[tuple[str, str], Network] = {}
    rows = []
    for grant in store.list_grants(chosen):
        marked = store.is_revoked(grant.session_id)
        if grant.chain_id != chain_id:
            rows.append(SessionRow(grant, "other chain", marked))
            continue
        where = (grant.module, grant.entry_point)
        if where not in networks:
            networks[where] = Network(
                chain=chain, bundler=_NoBundler(), module=grant.module, entry_point=grant.entry_point
            )
        network = networks[where]
        status = session_status(network, grant, now=now) if network.is_deployed(grant.module) else "no module"
        rows.append(SessionRow(grant, status, marked))
    return rows


def ape_node() -> Chain:
    """The node of the ape network the command is connected to."""
    from ape import chain as ape_chain

    return Web3Chain(ape_chain.provider.web3)


# --------------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------------


def _receipt_dict(receipt: UserOperationReceipt) -> dict[str, Any]:
    return {
        "user_op_hash": hex_of(receipt.user_op_hash),
        "success": receipt.success,
        "sender": receipt.sender,
        "nonce": receipt.nonce,
        "transaction_hash": hex_of(receipt.transaction_hash),
        "block_number": receipt.block_number,
        "actual_gas_used": receipt.actual_gas_used,
        "actual_gas_cost": receipt.actual_gas_cost,
        "paymaster": receipt.paymaster,
        "revert_reason": None if receipt.success else describe_revert(receipt.reason),
    }


def receipt_lines(receipt: UserOperationReceipt) -> list[str]:
    """A receipt for people."""
    state = "succeeded" if receipt.success else f"reverted: {describe_revert(receipt.reason)}"
    return [
        f"included      block {receipt.block_number}, transaction {hex_of(receipt.transaction_hash)}",
        f"execution     {state}",
        f"gas used      {receipt.actual_gas_used:,} (cost {receipt.actual_gas_cost:,} wei)",
    ]


@dataclass(frozen=True)
class CreatedAccount:
    """What :func:`create_account` did."""

    account: str
    owner: str
    created: bool
    funded: int
    receipt: UserOperationReceipt | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "owner": self.owner,
            "created": self.created,
            "funded_wei": self.funded,
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }


def create_account(
    network: Network,
    signer: HashSigner,
    *,
    salt: int = 0,
    fund: int = 0,
    funder: Any = None,
    timeout: float = 60.0,
) -> CreatedAccount:
    """Create the keyscope account of ``signer`` at ``salt`` (session module installed at creation) with one
    owner operation, after sending it ``fund`` wei from the ape account ``funder``. An account that already
    exists is left as it is."""
    owner = make_owner(network, signer, salt=salt)
    if owner.is_deployed():
        if not owner.supports_sessions():
            raise ConfigurationError(
                f"the account {owner.account} exists but the session module {network.module} is not installed: "
                "install it with an owner operation (Owner.install_sessions)"
            )
        return CreatedAccount(owner.account, signer.address, False, 0, None)
    if fund:
        if funder is None and isinstance(signer, ApeAccountSigner):
            funder = signer.account
        if funder is None:
            raise ConfigurationError(
                "--fund sends ETH from an ape account: pass --funder ALIAS (or use --owner ALIAS, which funds by "
                "default)"
            )
        funder.transfer(owner.account, fund)
    receipt = owner.execute(Call(to_address(signer.address), 0, b"")).wait(timeout)
    if not owner.is_deployed():
        raise ConfigurationError(
            f"the operation {hex_of(receipt.user_op_hash)} landed but {owner.account} has no code"
        )
    return CreatedAccount(owner.account, signer.address, True, fund, receipt)


@dataclass(frozen=True)
class GrantResult:
    """What :func:`grant_session` did."""

    grant: SessionGrant
    key_generated: bool
    receipt: UserOperationReceipt | None

    def to_dict(self) -> dict[str, Any]:
        grant = self.grant
        return {
            "session_id": hex_of(grant.session_id),
            "account": grant.account,
            "session_key": grant.session_key,
            "key_generated": self.key_generated,
            "how": grant.how,
            "valid_after": grant.valid_after,
            "valid_until": grant.valid_until,
            "permissions": [describe_permission(p) for p in grant.session.permissions],
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }


def session_key_from(store: SessionStore, given: str | None) -> tuple[LocalSigner, bool]:
    """The session key for a new grant: a new one (``given`` None), the key stored for the address ``given``,
    or the private key in the environment variable named by ``given`` as ``env:NAME``. Returns the key and
    whether it is new."""
    if given is None:
        return SessionKey.generate(), True
    text = given.strip()
    if text.lower().startswith("env:"):
        name = text[4:]
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigurationError(f"--session-key {text}: the environment variable {name} is not set")
        try:
            return LocalSigner(value), False
        except BadInputError:
            raise BadInputError(
                f"--session-key {text}: {name} is not a private key (0x and 64 hex digits)"
            ) from None
    address = _address_from(text, "--session-key")
    if not store.has_key(address):
        raise BadInputError(
            f"--session-key {address}: no key for this address in the store {store.url}; give env:NAME for a key "
            "held in an environment variable, or leave --session-key out to generate one"
        )
    return store.get_key(address), False


def grant_session(
    network: Network,
    owner: Owner,
    store: SessionStore,
    *,
    target: str,
    function: str,
    rules: Sequence[str] = (),
    value_limit: int = 0,
    valid_for: int,
    onchain: bool = False,
    session_key: str | None = None,
    names: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> GrantResult:
    """Grant one permission (``function`` on ``target`` with ``rules`` in text form, see :func:`parse_rule`)
    for ``valid_for`` seconds to a session key, off-chain (the owner signs the EIP-712 grant) or on-chain (an
    owner operation); the key (encrypted) and the grant go to ``store``."""
    known = {"account": owner.account, "owner": to_address(owner.signer.address), **(names or {})}
    parsed = parse_signature(function)
    address = resolve_address(target, known, "target")
    specs = [parse_rule(text, parsed, known) for text in rules]
    permission = PolicyBuilder.call(address, function, rules=specs, value_limit=value_limit)
    if not owner.supports_sessions():
        raise ConfigurationError(
            f"the session module {network.module} is not installed on {owner.account}: install it with an owner "
            "operation first"
        )
    key, generated = session_key_from(store, session_key)
    store.put_key(key, label=f"session key of {owner.account}")
    receipt = None
    if onchain:
        pending = owner.grant_onchain(key, [permission], valid_for=valid_for)
        grant = pending.wait(timeout)
        receipt = pending.receipt
    else:
        grant = sign_grant_request(owner, owner.prepare_grant(key, [permission], valid_for=valid_for))
    store.put_grant(grant)
    return GrantResult(grant, generated, receipt)


def sign_grant_request(owner: Owner, request: GrantRequest) -> SessionGrant:
    """The owner's one signature on ``request``: over the EIP-712 typed data itself (what a wallet shows)
    where the account checks the EIP-712 digest as it is, else over the account's wrapped digest."""
    kind = owner.network.kind
    if kind.erc1271_digest(request.account, request.chain_id, request.digest) != request.digest:
        return owner.sign_grant(request)
    signature = owner.signer.sign_typed_data(request.typed_data)
    if recover_hash(request.digest, signature) != to_address(owner.signer.address):
        raise SigningDeclinedError("the owner's signature of the session grant does not recover to the owner")
    return request.complete(kind.wrap_erc1271_signature(signature))


@dataclass(frozen=True)
class RevokeResult:
    """What :func:`revoke_session` did."""

    grant: SessionGrant
    receipt: UserOperationReceipt

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": hex_of(self.grant.session_id),
            "account": self.grant.account,
            "revoked": True,
            "receipt": _receipt_dict(self.receipt),
        }


def owner_for_grant(network: Network, signer: HashSigner, grant: SessionGrant) -> Owner:
    """The :class:`~keyscope.owner.Owner` of the grant's account; for an account not created yet, one whose first
    operation creates it with the factory call the grant carries."""
    if network.is_deployed(grant.account):
        return make_owner(network, signer, grant.account)
    if not grant.factory_data or grant.factory is None:
        raise ConfigurationError(
            f"the account {grant.account} does not exist on chain {network.chain_id} and the grant does not say "
            "how to create it"
        )
    try:
        owner_key, _, salt = abi_decode(
            ["address", "(uint256,address,bytes)[]", "uint256"], grant.factory_data[4:]
        )
    except Exception:
        raise ConfigurationError(
            f"the account {grant.account} does not exist yet and its creation call is not a keyscope factory's"
        ) from None
    if to_address(owner_key) != to_address(signer.address):
        raise BadInputError(
            f"{signer.address} is not the owner of {grant.account} (its owner is {to_address(owner_key)}): give "
            "that key with --owner or KEYSCOPE_OWNER_KEY"
        )
    owner = make_owner(dataclasses.replace(network, factory=grant.factory), signer, salt=int(salt))
    if owner.account != grant.account:
        raise ConfigurationError(
            f"the grant's creation call gives {owner.account}, not {grant.account}: is --network the grant's chain?"
        )
    return owner


def revoke_session(
    network: Network, signer: HashSigner, store: SessionStore, grant: SessionGrant, *, timeout: float = 60.0
) -> RevokeResult:
    """Revoke ``grant`` with an owner operation, wait for it, and mark it revoked in ``store``."""
    _check_grant_network(network, grant)
    owner = owner_for_grant(network, signer, grant)
    receipt = owner.revoke(grant).wait(timeout)
    store.mark_revoked(grant.session_id)
    return RevokeResult(grant, receipt)


def _check_grant_network(network: Network, grant: SessionGrant) -> None:
    if grant.chain_id != network.chain_id:
        raise ConfigurationError(
            f"session {hex_of(grant.session_id)} was granted on chain {grant.chain_id}, but --network is "
            f"connected to chain {network.chain_id}: pass --network for chain {grant.chain_id}"
        )


@dataclass(frozen=True)
class SendResult:
    """What :func:`send_session_call` did."""

    grant: SessionGrant
    pending: PendingUserOperation
    receipt: UserOperationReceipt | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": hex_of(self.grant.session_id),
            "account": self.grant.account,
            "user_op_hash": self.pending.hex_hash,
            "receipt": None if self.receipt is None else _receipt_dict(self.receipt),
        }


def send_session_call(
    network: Network,
    store: SessionStore,
    grant: SessionGrant,
    *,
    target: str,
    function: str,
    args: Sequence[str] = (),
    value: int = 0,
    check: bool = True,
    wait: bool = False,
    timeout: float = 60.0,
    names: Mapping[str, str] | None = None,
) -> SendResult:
    """Send ``target.function(*args)`` from the grant's account, signed by its session key (from ``store``).

    With ``check`` the policy, the window and the session's state on chain are checked first, and a call the
    chain would refuse raises before anything is sent; ``check=False`` sends it anyway. With ``wait`` the
    receipt is awaited (execution failures are reported in it, not raised)."""
    _check_grant_network(network, grant)
    known = {"account": grant.account, **(names or {})}
    address = resolve_address(target, known, "target")
    call_args = parse_call_args(function, args, known)
    key = store.get_key(grant.session_key)
    session = network.session(grant, key, verify_on_chain=check)
    pending = session.execute(address, function, *call_args, value=value, check=check)
    receipt = pending.wait(timeout, check=False) if wait else None
    if receipt is not None and receipt.success and grant.how == "offchain":
        store.mark_enabled(grant.session_id)
    return SendResult(grant, pending, receipt)


@dataclass(frozen=True)
class OperationStatus:
    """A UserOperation as a bundler knows it: ``included`` (with the receipt), ``pending`` or ``unknown``."""

    user_op_hash: str
    state: str
    receipt: UserOperationReceipt | None = None
    operation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"user_op_hash": self.user_op_hash, "state": self.state}
        if self.receipt is not None:
            data["receipt"] = _receipt_dict(self.receipt)
        if self.operation is not None:
            data["operation"] = self.operation
        return data

    def lines(self) -> list[str]:
        if self.receipt is not None:
            return [f"UserOperation {self.user_op_hash}", *receipt_lines(self.receipt)]
        if self.state == "pending":
            sender = (self.operation or {}).get("userOperation", {}).get("sender")
            return [
                f"UserOperation {self.user_op_hash}",
                f"pending       known to the bundler (sender {sender})",
            ]
        return [
            f"UserOperation {self.user_op_hash}",
            "unknown       the bundler has neither a receipt nor the operation (dropped, or sent elsewhere)",
        ]


def operation_status(
    bundler: Bundler, user_op_hash: str, *, wait: bool = False, timeout: float = 60.0
) -> OperationStatus:
    """Ask ``bundler`` about a UserOperation: its receipt, else ``eth_getUserOperationByHash``; with ``wait``,
    wait for the receipt."""
    raw = to_bytes(user_op_hash.strip(), name="the UserOperation hash", length=32)
    text = hex_of(raw)
    if wait:
        return OperationStatus(
            text, "included", PendingUserOperation(bundler, raw).wait(timeout, check=False)
        )
    receipt = bundler.get_user_operation_receipt(raw)
    if receipt is not None:
        return OperationStatus(text, "included", receipt)
    found = bundler.get_user_operation_by_hash(raw)
    if found is not None:
        return OperationStatus(text, "pending", operation=found)
    return OperationStatus(text, "unknown")


def status_bundler(bundler_url: str | None, deployments_file: str | None = None) -> Bundler:
    """The bundler ``status`` asks, from ``--bundler`` or the deployments file: a JSON-RPC one (an in-process
    bundler keeps nothing between runs)."""
    deployments = Deployments.load(deployments_file) if deployments_file else Deployments()
    bundler = _bundler_setting(bundler_url or deployments.bundler_url)
    if bundler is None:
        raise _NoBundler()._missing()
    if bundler == INPROCESS:
        raise ConfigurationError(
            f"--bundler {INPROCESS} keeps no record between runs: `send --wait` prints the receipt of an "
            "operation sent in-process; ask a JSON-RPC bundler about operations it received"
        )
    return BundlerClient(bundler)


# --------------------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------------------


def deploy_keyscope(
    deployer: Any, *, entry_point: str | None = None, stake: int = 10**18, nft: bool = True
) -> Deployments:
    """Deploy keyscope on the connected ape network from ``deployer``: the EntryPoint v0.7 (from the npm
    artefact, unless ``entry_point`` or the canonical one already has code), a staked factory, the session
    module and (``nft``) the demo NFT."""
    from ape import chain as ape_chain

    from .testing.deploy import contract_container, deploy_contract, deploy_entry_point, deploy_factory

    web3 = ape_chain.provider.web3
    if entry_point is not None:
        address = _address_from(entry_point, "--entry-point")
        if not web3.eth.get_code(address):
            raise ConfigurationError(
                f"no contract at the EntryPoint address {address}: leave --entry-point out to deploy one"
            )
        ep = contract_container("EntryPoint").at(address)
    elif web3.eth.get_code(ENTRY_POINT_V07):
        ep = contract_container("EntryPoint").at(ENTRY_POINT_V07)
    else:
        ep = deploy_entry_point(deployer)
    factory = deploy_factory(ep, deployer, stake=stake)
    module = deploy_contract("SessionKeyValidator", deployer)
    demo = deploy_contract("DemoNFT", deployer) if nft else None
    return Deployments(
        entry_point=to_address(ep.address),
        factory=to_address(factory.address),
        module=to_address(module.address),
        nft=None if demo is None else to_address(demo.address),
        chain_id=int(ape_chain.chain_id),
    )
