"""The Alto bundler (npm ``@pimlico/alto``): where it is, its settings, and starting it on 127.0.0.1.

Alto always listens on 0.0.0.0, so it runs under ``node -r alto-listen-localhost.cjs``: that preload script
rewrites every listen host to 127.0.0.1 and prints the address it got, which the stack waits for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import npm_package_dir
from ..errors import ConfigurationError, KeyscopeError
from ..rpc import JsonRpcClient
from .errors import StartupTimeoutError, ToolNotFoundError
from .processes import ManagedProcess, serve

__all__ = [
    "ALTO_NPM_PACKAGE",
    "ALTO_VERSION",
    "PRELOAD_SCRIPT",
    "AltoConfig",
    "find_alto",
    "find_node",
    "start_alto",
]

ALTO_NPM_PACKAGE = "@pimlico/alto"
ALTO_VERSION = "0.0.20"
PRELOAD_SCRIPT = Path(__file__).with_name("alto-listen-localhost.cjs")
"""The ``node -r`` script that keeps Alto on 127.0.0.1 (shipped in this package)."""

_LISTENING = re.compile(r"keyscope-listen: ([0-9.]+):([0-9]+)")
# Alto reads options from ALTO_* variables, Sentry settings and a .env file: keep the user's out of it.
_SCRUBBED_ENV = re.compile(r"^(ALTO_|SENTRY_|DOTENV_)|^ENVIRONMENT$")


def find_node(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``node`` binary: ``explicit``, else ``$KEYSCOPE_NODE``, else ``node`` on the PATH."""
    given = explicit or os.environ.get("KEYSCOPE_NODE")
    found = str(given) if given else shutil.which("node")
    if not found or not Path(found).is_file():
        raise ToolNotFoundError(
            "Node.js is not installed (the Alto bundler runs on node 18 or newer): install it (e.g. apt-get "
            "install nodejs npm), or point KEYSCOPE_NODE at a node binary"
        )
    return Path(found)


def find_alto() -> Path:
    """Alto's command-line script (``esm/cli/alto.js``) in the npm package ``@pimlico/alto``."""
    try:
        package = npm_package_dir(ALTO_NPM_PACKAGE)
    except ConfigurationError:
        raise ToolNotFoundError(
            "the Alto bundler is not installed: it comes from the npm package "
            f"{ALTO_NPM_PACKAGE}@{ALTO_VERSION}. Run `npm install --save-dev {ALTO_NPM_PACKAGE}@{ALTO_VERSION}` "
            "in your project (in a keyscope checkout, `make setup`), or point KEYSCOPE_NODE_MODULES at a "
            "node_modules folder that has it"
        ) from None
    manifest = json.loads((package / "package.json").read_text())
    if manifest.get("version") != ALTO_VERSION:
        raise ToolNotFoundError(
            f"{ALTO_NPM_PACKAGE} is {manifest.get('version')} in {package}, but keyscope's local stack is "
            f"set up for {ALTO_VERSION}: run `npm ci` in the keyscope checkout (package-lock.json pins it)"
        )
    bin_field = manifest.get("bin")
    relative = bin_field.get("alto") if isinstance(bin_field, dict) else bin_field
    script = package / str(relative or "esm/cli/alto.js")
    if not script.is_file():
        raise ToolNotFoundError(f"{script} is missing: reinstall {ALTO_NPM_PACKAGE} with `npm ci`")
    return script


@dataclass(frozen=True)
class AltoConfig:
    """Settings of one Alto instance, tuned for fast inclusion on a local node.

    * bundles are built automatically: the mempool is looked at every ``min_bundle_interval_ms`` when
      idle, the interval growing with the rate of operations up to ``max_bundle_interval_ms``;
    * ``block_time_ms`` is what Alto assumes of the node: it polls for new blocks and receipts every quarter
      of it, so with anvil mining on demand a small value makes it see inclusions quickly;
    * safe mode is off (anvil has no tracer for the ERC-7562 checks); the simulation contracts are deployed
      at start-up with the funded utility key;
    * the debug endpoints (``debug_bundler_*``) are on.

    ``entry_point`` is the EntryPoint Alto serves, or several separated by commas (``--entrypoints``): the stack
    gives v0.7 and v0.8. Alto tells the versions apart by address (v0.8 starts ``0x433708``, as the canonical one
    does) and, for v0.8, accepts ``eip7702Auth`` on operations and sends them in type-4 transactions; that needs
    a node with EIP-7702 (Prague) and code overrides in ``eth_call``, which anvil has (``--code-override-support``,
    Alto's default).

    ``extra_args`` are added last; an option given there replaces the one set here.
    ``port`` None lets the kernel pick a free port.
    """

    entry_point: str
    rpc_url: str
    executor_keys: Sequence[bytes]
    utility_key: bytes
    port: int | None = None
    block_time_ms: int = 100
    min_bundle_interval_ms: int = 10
    max_bundle_interval_ms: int = 50
    log_level: str = "info"
    client_log_level: str = "warn"
    extra_args: Sequence[str] = field(default_factory=tuple)

    def arguments(self) -> list[str]:
        """Alto's command-line arguments."""
        options: dict[str, str] = {
            "--entrypoints": self.entry_point,
            "--rpc-url": self.rpc_url,
            "--port": str(self.port or 0),
            "--safe-mode": "false",
            "--deploy-simulations-contract": "true",
            "--bundle-mode": "auto",
            "--min-bundle-interval": str(self.min_bundle_interval_ms),
            "--max-bundle-interval": str(self.max_bundle_interval_ms),
            "--block-time": str(self.block_time_ms),
            "--enable-debug-endpoints": "true",
            "--log-level": self.log_level,
            "--public-client-log-level": self.client_log_level,
            "--wallet-client-log-level": self.client_log_level,
        }
        overridden = {arg.split("=", 1)[0] for arg in self.extra_args if arg.startswith("--")}
        args: list[str] = []
        for option, value in options.items():
            if option not in overridden:
                args += [option, value]
        return args + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        """The keys, passed as Alto's ``ALTO_*`` variables rather than arguments: the command line of a
        process is visible to every user of the machine, and ends up in the log."""
        return {
            "ALTO_EXECUTOR_PRIVATE_KEYS": ",".join("0x" + key.hex() for key in self.executor_keys),
            "ALTO_UTILITY_PRIVATE_KEY": "0x" + self.utility_key.hex(),
        }


def _child_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not _SCRUBBED_ENV.search(name)}
    env["DOTENV_CONFIG_PATH"] = os.devnull  # no .env file, wherever Alto runs
    return env


def start_alto(
    config: AltoConfig,
    log_path: Path,
    *,
    workdir: Path,
    node: Path | None = None,
    script: Path | None = None,
    timeout: float = 60.0,
) -> tuple[ManagedProcess, str]:
    """Start Alto and wait until ``eth_supportedEntryPoints`` lists every EntryPoint; return process and URL.

    ``workdir`` is its working directory (Alto would read a ``.env`` file there). On failure the process is
    stopped and a :class:`~keyscope.local.errors.LocalStackError` says why. ``node`` and ``script`` (Alto's
    ``alto.js``) are looked up when not given.
    """
    if not PRELOAD_SCRIPT.is_file():
        raise ToolNotFoundError(
            f"{PRELOAD_SCRIPT} is missing from the keyscope package: reinstall keyscope (`pip install -e .` "
            "in a checkout)"
        )
    argv = [
        str(node or find_node()),
        "-r",
        str(PRELOAD_SCRIPT),
        str(script or find_alto()),
        *config.arguments(),
    ]
    env = {**_child_environment(), **config.environment()}
    process = ManagedProcess("Alto", argv, log_path, env=env, cwd=workdir)
    url = serve(
        process,
        _LISTENING,
        config.port,
        timeout,
        lambda url: _wait_until_serving(process, url, config.entry_point, timeout),
    )
    return process, url


def _wait_until_serving(process: ManagedProcess, url: str, entry_points: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    wanted = {address.strip().lower() for address in entry_points.split(",")}
    with JsonRpcClient(url, timeout=2.0) as rpc:
        while True:
            try:
                supported = rpc.request("eth_supportedEntryPoints")
                if wanted <= {str(item).lower() for item in supported or []}:
                    return
                last = f"it answered {supported!r}"
            except KeyscopeError as exc:
                last = str(exc)
            if not process.alive():
                process.raise_exited("it served eth_supportedEntryPoints")
            if time.monotonic() > deadline:
                raise StartupTimeoutError(
                    f"Alto at {url} did not list the EntryPoints {entry_points} in eth_supportedEntryPoints "
                    f"within {timeout:.0f}s ({last})",
                    log_path=process.log_path,
                    log_tail=process.log_tail(),
                )
            time.sleep(0.02)
