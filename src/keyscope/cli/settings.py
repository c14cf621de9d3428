"""Deployments files and settings: where keyscope lives, from the options, their environment variables,
the deployments file and the defaults."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import ENTRY_POINT_V07
from ..bundler.types import FeeQuote, GasEstimate, UserOperationReceipt
from ..errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    ConfigurationError,
    InvalidAddressError,
    has_private_key_form,
)
from ..hexutil import to_address
from ..textfile import read_text_file
from ..urls import mask_url
from ..userop import UserOperation

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
ENV_OWNER_MAX_GAS_COST = "KEYSCOPE_OWNER_MAX_GAS_COST"


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
        if has_private_key_form(str(path)):  # refused as a key, never shown as the name of a missing file
            raise BadInputError(
                f"the deployments file (--deployments or {ENV_DEPLOYMENTS}): {PRIVATE_KEY_NOT_SHOWN} is not a file "
                "name; give the JSON file `python -m keyscope.local --json` or `ape run deploy --out` wrote"
            )
        file = Path(path)
        if not file.exists():
            raise BadInputError(
                f"deployments file {file} not found: write one with `python -m keyscope.local --json > {file}` "
                f"or `ape run deploy --out {file}`"
            )
        text = read_text_file(
            file, "deployments file", "the JSON object `python -m keyscope.local --json` prints"
        )
        if not text.strip():  # terminal 2 of docs/scripts.md run before the stack in terminal 1 was ready
            raise BadInputError(
                f"deployments file {file} is empty: `python -m keyscope.local --json > {file}` writes it once the "
                "stack is ready, a few seconds after it starts (a stack that stopped leaves it empty: see its error)"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            data = _last_json_line(text)
            if data is None:
                raise BadInputError(
                    f"deployments file {file} is not JSON ({error.msg}: line {error.lineno}, column {error.colno}): "
                    "give the JSON object `python -m keyscope.local --json` prints"
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
                if not (name == "bundler_url" and value.strip().lower() == INPROCESS) and not re.match(
                    r"^https?://[^/\s]", value.strip(), re.I
                ):  # refused here, naming where it is, not later where it is used as one URL among others
                    raise BadInputError(
                        f"{key} in {file}: {mask_url(value)!r} is not an http(s) URL: give it as http://host:port"
                    )
                values[name] = value
        return cls(**values, source=str(file))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object :meth:`load` reads (only the keys that are set)."""
        keys = ("chain_id", "entry_point", "factory", "module", "nft", "bundler_url", "rpc_url")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}

    @staticmethod
    def check_writable(path: str | Path) -> None:
        """Refuse, before anything is deployed, a path :meth:`save` could not write (a folder, a file where a folder
        must be, a folder that cannot be created or written to): a deployment's addresses must not be lost to a
        mistyped ``--out``. Creates the missing folders, as :meth:`save` would."""
        file = Path(path)
        if file.is_dir():
            raise BadInputError(
                f"--out {file} is a folder: give a file path, e.g. {file / 'deployments.json'}"
            )
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=file.parent, prefix=".keyscope-check-"):
                pass
        except OSError as error:
            blocker = next(
                (p for p in (file.parent, *file.parent.parents) if p.exists() and not p.is_dir()), None
            )
            cause = (
                f"{blocker} is a file, not a folder" if blocker is not None else error.strerror or str(error)
            )
            raise BadInputError(
                f"--out {file}: cannot write there ({cause}); nothing was deployed: give a path in a folder you can "
                "write to"
            ) from None

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (creating the folder)."""
        file = Path(path)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            raise BadInputError(f"cannot write deployments file {file}: {error.strerror or error}") from None

    def save_deployed(self, path: str | Path) -> BadInputError | None:
        """Write :meth:`to_dict` to ``path`` once the contracts are deployed; the error when that fails (a full disk,
        a device that takes no data), None once written. The caller prints the addresses first and raises it then:
        the contracts are paid for, and their addresses must not be lost with the file."""
        try:
            self.save(path)
        except BadInputError as error:
            return BadInputError(
                f"{error}: the contracts are on chain, and their addresses are printed above instead; save them from "
                "there"
            )
        return None

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


_SETTING_KEYS = {"--node": "rpc_url", "--bundler": "bundler_url", "--module": "module"}
"""The key of the deployments file that gives each connection option."""


def missing_settings(missing: list[str], deployments_file: str | None) -> str:
    """What to say when the options ``missing`` (``--node``, ``--bundler``, ``--module``) were given neither on the
    command line nor by the deployments file ``deployments_file`` (None: none was given)."""
    if deployments_file:
        return (
            f"give {', '.join(missing)}: the deployments file {deployments_file} has no "
            f"{', '.join(_SETTING_KEYS[option] for option in missing)} (the keys `python -m keyscope.local --json` "
            "writes)"
        )
    return f"give {', '.join(missing)} (or --deployments with them)"


def node_and_bundler_urls(
    deployments: Deployments, node: str | None, bundler: str | None
) -> tuple[str | None, str | None]:
    """The node's and the bundler's URLs: ``node`` and ``bundler`` as given (``--node``, ``--bundler``), else the
    deployments file's ``rpc_url`` and ``bundler_url``; None where neither gives one. A file's ``bundler_url`` of
    ``inprocess`` (``ape run``'s own ``handleOps``) is refused: these commands need a bundler."""
    bundler_url = bundler or deployments.bundler_url
    if bundler_url is not None and bundler_url.strip().lower() == INPROCESS:
        raise BadInputError(
            f"the deployments file {deployments.source} gives bundler_url {INPROCESS} (handleOps sent from an ape "
            "account, which only `ape run` does): give an ERC-4337 bundler's URL with --bundler"
        )
    return node or deployments.rpc_url, bundler_url


def require_deployments_chain(
    deployments: Deployments, chain_id: int, node_url: str, after: str = ""
) -> None:
    """Refuse a node (``node_url``, of chain ``chain_id``) of another chain than the deployments file says, with
    ``after`` added (what was not done)."""
    if deployments.chain_id is not None and deployments.chain_id != chain_id:
        raise ConfigurationError(
            f"the deployments file {deployments.source} is for chain {deployments.chain_id}, but the node "
            f"{mask_url(node_url)} is chain {chain_id}: give the node of chain {deployments.chain_id} (--node), "
            f"or the deployments file of this chain{after}"
        )


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
    # a deployments file given, and lacking the module (its key misspelled, most often): said, not to give one
    if chosen_module is None and options.deployments:
        raise ConfigurationError(
            f"no session module address: the deployments file {options.deployments} has no module (the keys "
            f"`python -m keyscope.local --json` writes); add it there, pass --module, or set {ENV_MODULE}"
        )
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
            f"--bundler {mask_url(bundler)!r} is neither an http(s) URL nor {INPROCESS!r}: give the bundler's "
            f"JSON-RPC URL (e.g. http://127.0.0.1:4337), or {INPROCESS} to send handleOps from an ape account"
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
