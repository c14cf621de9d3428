"""The anvil node: where its binary is, how it is started, and its standard development keys."""

from __future__ import annotations

import os
import platform
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from eth_account.hdaccount import key_from_seed, seed_from_mnemonic

from ..artifacts import npm_package_dir
from ..errors import ConfigurationError, KeyscopeError
from ..rpc import JsonRpcClient
from .errors import LocalStackError, StartupTimeoutError, ToolNotFoundError
from .processes import ManagedProcess, serve

__all__ = [
    "ANVIL_MNEMONIC",
    "AnvilConfig",
    "anvil_npm_package",
    "dev_private_key",
    "find_anvil",
    "start_anvil",
]

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
"""The mnemonic anvil derives its development accounts from unless told otherwise."""

ANVIL_VERSION = "1.7.1"
"""The anvil release keyscope's local stack is tested with (package.json pins its npm package at it)."""

_LISTENING = re.compile(r"Listening on ([0-9.]+):([0-9]+)")

_PLATFORMS = {"linux": "linux", "darwin": "darwin", "windows": "win32"}
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def anvil_npm_package() -> str:
    """The npm package holding the anvil binary for this machine (``@foundry-rs/anvil-linux-amd64`` here)."""
    system = _PLATFORMS.get(platform.system().lower(), platform.system().lower())
    machine = _MACHINES.get(platform.machine().lower(), platform.machine().lower())
    return f"@foundry-rs/anvil-{system}-{machine}"


def find_anvil(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The anvil binary: ``explicit``, else ``$KEYSCOPE_ANVIL``, else the one in the npm package."""
    package = anvil_npm_package()
    given = explicit or os.environ.get("KEYSCOPE_ANVIL")
    if given:
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            source = "given" if explicit else "named by KEYSCOPE_ANVIL"
            raise ToolNotFoundError(
                f"the anvil binary {source}, {path}, does not exist or is not executable: fix the path, or "
                f"leave it out to use the one from the npm package {package} (`make setup` or `npm ci` "
                "installs it)"
            )
        return path
    try:
        directory = npm_package_dir(package)
    except ConfigurationError:
        raise ToolNotFoundError(
            f"anvil is not installed: it comes from the npm package {package}. Run `npm install --save-dev "
            f"{package}@{ANVIL_VERSION}` in your project (in a keyscope checkout, `make setup`), point "
            "KEYSCOPE_NODE_MODULES at a node_modules folder that has it, or KEYSCOPE_ANVIL at an anvil binary"
        ) from None
    binary = directory / "bin" / "anvil"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise ToolNotFoundError(
            f"the npm package {package} in {directory} has no executable bin/anvil: reinstall it "
            "with `npm ci`"
        )
    return binary


@cache
def dev_private_key(index: int, mnemonic: str = ANVIL_MNEMONIC) -> bytes:
    """Private key of anvil's development account ``index`` for ``mnemonic`` (path m/44'/60'/0'/0/index)."""
    seed = seed_from_mnemonic(mnemonic, "")
    return bytes(key_from_seed(seed, f"m/44'/60'/0'/0/{index}"))


@dataclass(frozen=True)
class AnvilConfig:
    """How to start anvil.

    ``port`` None lets the kernel pick a free port (``--port 0``; the stack reads the port anvil reports).
    ``accounts`` development accounts get ``balance_ether`` each. ``extra_args`` come last; a ``--hardfork`` given
    there replaces ``hardfork``.
    """

    chain_id: int = 31337
    port: int | None = None
    accounts: int = 10
    balance_ether: int = 10_000
    mnemonic: str = ANVIL_MNEMONIC
    disable_code_size_limit: bool = False
    hardfork: str | None = None
    extra_args: Sequence[str] = field(default_factory=tuple)

    def arguments(self) -> list[str]:
        """anvil's command-line arguments (without the binary)."""
        args = [
            "--host", "127.0.0.1",
            "--port", str(self.port or 0),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_ether),
            "--mnemonic", self.mnemonic,
            "--color", "never",
        ]  # fmt: skip
        if self.disable_code_size_limit:
            args.append("--disable-code-size-limit")
        overridden = {arg.split("=", 1)[0] for arg in self.extra_args if arg.startswith("--")}
        if self.hardfork and "--hardfork" not in overridden:
            args += ["--hardfork", self.hardfork]
        return args + list(self.extra_args)


def start_anvil(
    config: AnvilConfig, log_path: Path, *, binary: Path | None = None, timeout: float = 30.0
) -> tuple[ManagedProcess, str]:
    """Start anvil and wait until it answers JSON-RPC; return the process and its URL.

    On failure the process is stopped and a :class:`~keyscope.local.errors.LocalStackError` says why.

    Past a few hundred blocks anvil writes the states of older blocks to disk (gigabytes over a long run), in a
    folder of its own that it removes only when it exits by itself, not when it is stopped by a signal. Unless
    ``config.extra_args`` name a ``--cache-path``, that folder is a temporary one, removed whenever the process is
    stopped.
    """
    argv = [str(binary or find_anvil()), *config.arguments()]
    states = None
    if not any(arg.split("=", 1)[0] == "--cache-path" for arg in config.extra_args):
        states = Path(tempfile.mkdtemp(prefix="keyscope-anvil-states-"))
        argv += ["--cache-path", str(states)]
    process = ManagedProcess("anvil", argv, log_path, scratch=states)
    url = serve(
        process,
        _LISTENING,
        config.port,
        timeout,
        lambda url: _wait_until_serving(process, url, config.chain_id, timeout),
    )
    return process, url


def _wait_until_serving(process: ManagedProcess, url: str, chain_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with JsonRpcClient(url, timeout=2.0) as rpc:
        while True:
            try:
                answered = int(rpc.request("eth_chainId"), 16)
            except KeyscopeError:
                if not process.alive():
                    process.raise_exited("it served JSON-RPC")
                if time.monotonic() > deadline:
                    raise StartupTimeoutError(
                        f"anvil listens at {url} but did not answer eth_chainId within {timeout:.0f}s",
                        log_path=process.log_path,
                        log_tail=process.log_tail(),
                    ) from None
                time.sleep(0.02)
                continue
            if answered != chain_id:
                raise LocalStackError(
                    f"anvil at {url} reports chain id {answered}, not the {chain_id} it was started with: is "
                    "another node answering on that port?",
                    log_path=process.log_path,
                    log_tail=process.log_tail(),
                )
            return
