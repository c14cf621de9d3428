""":class:`LocalStack`: a real anvil node and a real Alto bundler on 127.0.0.1, with keyscope deployed.

::

    with LocalStack() as stack:
        stack.rpc_url, stack.bundler_url          # http://127.0.0.1:<port>
        stack.entry_point, stack.factory, stack.module, stack.nft          # EntryPoint v0.7 and its factory
        stack.entry_point_v08, stack.factory_v08, stack.delegate         # EntryPoint v0.8, its factory, EIP-7702
        stack.accounts[0]                         # a funded LocalSigner for the test

Development accounts (anvil's mnemonic, path m/44'/60'/0'/0/i): 0 deploys everything and administers the
factory (:attr:`~LocalStack.deployer`), 1 is Alto's utility key, the next ``executors`` are Alto's executor
keys, and the remaining ``accounts`` are free for tests (:attr:`~LocalStack.accounts`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ..devnode import ETHER
from ..errors import shown
from ..hexutil import to_address, to_bytes
from ..rpc import JsonRpcClient
from ..signing import LocalSigner
from .alto import AltoConfig, find_alto, find_node, start_alto
from .anvil import ANVIL_MNEMONIC, AnvilConfig, dev_private_key, find_anvil, start_anvil
from .deploy import Contracts, deploy_keyscope
from .errors import LocalStackError, PortInUseError
from .processes import ManagedProcess, register_cleanup, unregister_cleanup

__all__ = ["LocalStack"]

_T = TypeVar("_T")
_PORT_ATTEMPTS = 5
_KEY_FUNDING = 1_000 * ETHER


def _require_whole(name: str, value: object, low: int, high: int, what: str) -> None:
    """Refuse ``value`` unless it is an int (not a bool) from ``low`` to ``high``, before anything is started (anvil
    would refuse it in its own words, and Python comparisons with a TypeError)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalStackError(
            f"{name} {shown(value)} is not {what}: give a whole number from {low} to {high}"
        )


class LocalStack:
    """anvil (Prague: EIP-7702) + the EntryPoints v0.7 and v0.8 at their canonical addresses + keyscope's contracts
    + Alto serving both EntryPoints, all on 127.0.0.1.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Every process it starts runs in its
    own process group and is stopped on :meth:`stop`, when the ``with`` block exits (also on an
    exception), at interpreter exit and on ``SIGTERM``.

    Options:

    * ``chain_id``: anvil's chain id.
    * ``hardfork``: anvil's hardfork; Prague by default, the first with EIP-7702 (type-4 transactions).
    * ``block_time``: seconds between blocks (interval mining); None mines every transaction at once.
      Contracts are always deployed with instant mining; interval mining starts afterwards.
    * ``disable_code_size_limit``: lift EIP-170 (for contracts over 24 KiB).
    * ``bundler``: False starts the node only (no Alto; :attr:`bundler_url` is then unavailable).
    * ``accounts``: how many funded development accounts to leave for tests.
    * ``executors``: how many executor keys Alto gets.
    * ``utility_key`` / ``executor_keys``: Alto's keys, instead of development accounts (they are funded).
    * ``alto_args`` / ``anvil_args``: extra command-line arguments (an Alto option given here replaces the
      stack's own setting of it).
    * ``node_port`` / ``bundler_port``: fixed ports; None lets the kernel pick free ones.
    * ``log_dir``: where ``anvil.log`` and ``alto.log`` go; by default a temporary folder, removed by
      :meth:`stop` after a successful run (kept when starting failed) unless ``keep_logs``.
    * ``startup_timeout``: seconds each process may take to become ready.
    """

    def __init__(
        self,
        *,
        chain_id: int = 31337,
        hardfork: str = "prague",
        block_time: int | None = None,
        disable_code_size_limit: bool = False,
        bundler: bool = True,
        accounts: int = 8,
        executors: int = 1,
        utility_key: bytes | str | None = None,
        executor_keys: Sequence[bytes | str] | None = None,
        mnemonic: str = ANVIL_MNEMONIC,
        alto_args: Sequence[str] = (),
        anvil_args: Sequence[str] = (),
        alto_log_level: str = "info",
        node_port: int | None = None,
        bundler_port: int | None = None,
        log_dir: str | Path | None = None,
        keep_logs: bool = False,
        startup_timeout: float = 90.0,
    ) -> None:
        _require_whole("chain_id", chain_id, 1, 2**63 - 1, "a chain id")
        for name, port in (("node_port", node_port), ("bundler_port", bundler_port)):
            if port is not None:
                _require_whole(name, port, 0, 65535, "a TCP port (0 or None: a free one)")
        if block_time is not None:
            _require_whole(
                "block_time",
                block_time,
                1,
                2**31 - 1,
                "seconds between blocks (None: a block per transaction)",
            )
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise LocalStackError(
                f"log_dir is a folder's path, got {type(log_dir).__name__} {shown(log_dir)}"
            )
        if executors < 1 and executor_keys is None:
            raise LocalStackError("Alto needs at least one executor key: use executors >= 1")
        if node_port is not None and node_port == bundler_port and bundler:
            raise LocalStackError(
                f"node_port and bundler_port are both {node_port}: anvil and Alto each need a port of their own; give "
                "two different ports, or leave either out for a free one"
            )
        if block_time is not None and block_time < 1:
            raise LocalStackError(
                "block_time is in whole seconds (anvil's interval mining): give 1 or more, or None"
            )
        self._chain_id = chain_id
        self._block_time = block_time
        self._with_bundler = bundler
        self._mnemonic = mnemonic
        first_free = 2 + executors
        self._anvil_config = AnvilConfig(
            chain_id=chain_id,
            port=node_port,
            accounts=first_free + accounts,
            mnemonic=mnemonic,
            disable_code_size_limit=disable_code_size_limit,
            hardfork=hardfork,
            extra_args=tuple(anvil_args),
        )
        self._deployer = LocalSigner(dev_private_key(0, mnemonic))
        self._utility = LocalSigner(
            to_bytes(utility_key, name="utility key") if utility_key else dev_private_key(1, mnemonic)
        )
        if executor_keys is not None:
            self._executors = tuple(LocalSigner(to_bytes(k, name="executor key")) for k in executor_keys)
        else:
            self._executors = tuple(LocalSigner(dev_private_key(2 + i, mnemonic)) for i in range(executors))
        if not self._executors:
            raise LocalStackError("executor_keys is empty: Alto needs at least one executor key")
        self._accounts = tuple(
            LocalSigner(dev_private_key(first_free + i, mnemonic)) for i in range(accounts)
        )
        self._alto_args = tuple(alto_args)
        self._alto_log_level = alto_log_level
        self._requested_bundler_port = bundler_port
        self._bundler_port = bundler_port
        self._given_log_dir = Path(log_dir) if log_dir is not None else None
        self._keep_logs = keep_logs
        self._timeout = startup_timeout

        self._log_dir: Path | None = None
        self._anvil: ManagedProcess | None = None
        self._alto: ManagedProcess | None = None
        self._rpc_url: str | None = None
        self._bundler_url: str | None = None
        self._node: JsonRpcClient | None = None
        self._contracts: Contracts | None = None
        self._started = False
        self._alto_tools: tuple[Path, Path] | None = None
        self.timings: dict[str, float] = {}
        """Seconds each start-up phase took: ``anvil``, ``deploy``, ``alto`` and ``total``."""

    # -- life cycle -------------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start anvil, deploy, fund Alto's keys, start Alto; return self. A failing step stops it all."""
        if self._anvil is not None:
            raise LocalStackError(
                "this LocalStack is already running: stop() it first, or use another instance"
            )
        began = time.monotonic()
        anvil_binary = find_anvil()
        if self._with_bundler:
            self._alto_tools = (find_node(), find_alto())
        register_cleanup(self, self.stop)
        self._started = False
        self._bundler_port = self._requested_bundler_port
        self.timings = {}
        try:
            self._log_dir = self._given_log_dir or Path(tempfile.mkdtemp(prefix="keyscope-stack-"))
            self._log_dir.mkdir(parents=True, exist_ok=True)

            phase = time.monotonic()
            self._anvil, self._rpc_url = self._start_with_ports(
                lambda: start_anvil(
                    self._anvil_config,
                    self._log_dir_path / "anvil.log",
                    binary=anvil_binary,
                    timeout=self._timeout,
                ),
                fixed=self._anvil_config.port is not None,
            )
            self._node = JsonRpcClient(self._rpc_url, timeout=30.0)
            self.timings["anvil"] = time.monotonic() - phase

            phase = time.monotonic()
            self._contracts = deploy_keyscope(self._node, self._deployer.address)
            for signer in (self._utility, *self._executors):
                self._ensure_funded(signer.address, _KEY_FUNDING)
            if self._block_time is not None:
                self._node.request("evm_setIntervalMining", [self._block_time])
            self.timings["deploy"] = time.monotonic() - phase

            if self._with_bundler:
                phase = time.monotonic()
                self.start_bundler()
                self.timings["alto"] = time.monotonic() - phase
        except BaseException:
            self._shutdown(remove_logs=False)
            raise
        self.timings["total"] = time.monotonic() - began
        self._started = True
        return self

    def stop(self) -> None:
        """Stop Alto and anvil (by process group) and remove the temporary log folder. Idempotent."""
        self._shutdown(remove_logs=self._started and self._given_log_dir is None and not self._keep_logs)

    def _shutdown(self, *, remove_logs: bool) -> None:
        unregister_cleanup(self)
        for process in (self._alto, self._anvil):
            if process is not None:
                process.stop()
        self._alto = None
        self._anvil = None
        if self._node is not None:
            self._node.close()
            self._node = None
        self._rpc_url = None
        self._bundler_url = None
        self._started = False
        if remove_logs and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    # -- bundler ----------------------------------------------------------------------------------------

    def start_bundler(self) -> str:
        """Start Alto (on its previous port if it ran before) and wait until it serves; return its URL."""
        if not self._with_bundler:
            raise LocalStackError("this stack was started without a bundler (bundler=False)")
        if self._alto is not None and self._alto.alive():
            raise LocalStackError("the bundler is already running: use restart_bundler() to restart it")
        node_url = self._require(self._rpc_url, "rpc_url")
        contracts = self._require(self._contracts, "entry_point")
        reuse_port = self._bundler_port is not None

        def launch() -> tuple[ManagedProcess, str]:
            config = AltoConfig(
                entry_point=f"{contracts.entry_point},{contracts.entry_point_v08}",
                rpc_url=node_url,
                executor_keys=[signer.private_key for signer in self._executors],
                utility_key=self._utility.private_key,
                port=self._bundler_port,
                block_time_ms=1000 * self._block_time if self._block_time else AltoConfig.block_time_ms,
                log_level=self._alto_log_level,
                extra_args=self._alto_args,
            )
            node, script = self._alto_tools or (find_node(), find_alto())
            return start_alto(
                config,
                self._log_dir_path / "alto.log",
                workdir=self._log_dir_path,
                node=node,
                script=script,
                timeout=self._timeout,
            )

        self._alto, url = self._start_with_ports(launch, fixed=reuse_port, wait_for_release=reuse_port)
        self._bundler_url = url
        self._bundler_port = int(url.rsplit(":", 1)[1])
        return url

    def stop_bundler(self, *, kill: bool = False) -> None:
        """Stop Alto (``kill=True``: SIGKILL at once, as a crash would), leaving the node running."""
        if self._alto is not None:
            if kill:
                self._alto.kill()
            else:
                self._alto.stop()
        self._alto = None

    def restart_bundler(self, *, kill: bool = True) -> str:
        """Kill Alto and start it again on the same port (its mempool is lost); return its URL."""
        self.stop_bundler(kill=kill)
        return self.start_bundler()

    @staticmethod
    def _start_with_ports(
        launch: Callable[[], tuple[ManagedProcess, str]], *, fixed: bool, wait_for_release: bool = False
    ) -> tuple[ManagedProcess, str]:
        """Run ``launch`` again when its port turns out to be taken: with a kernel-chosen port (not
        ``fixed``), each attempt gets a new one; a fixed port is retried only while a process we stopped
        releases it (``wait_for_release``)."""
        for attempt in range(_PORT_ATTEMPTS):
            try:
                return launch()
            except PortInUseError:
                if (fixed and not wait_for_release) or attempt == _PORT_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- node helpers ------------------------------------------------------------------------------------

    def fund(self, address: str, wei: int) -> int:
        """Add ``wei`` to the balance of ``address`` (``anvil_setBalance``, no transaction); return the new
        balance."""
        node = self.node
        target = to_address(address)
        balance = int(node.request("eth_getBalance", [target, "latest"]), 16) + wei
        node.request("anvil_setBalance", [target, hex(balance)])
        return balance

    def _ensure_funded(self, address: str, wei: int) -> None:
        node = self.node
        if int(node.request("eth_getBalance", [address, "latest"]), 16) < wei:
            node.request("anvil_setBalance", [address, hex(wei)])

    def balance(self, address: str) -> int:
        """The balance of ``address`` in wei."""
        return int(self.node.request("eth_getBalance", [to_address(address), "latest"]), 16)

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` blocks now; return the new block number."""
        if blocks == 1:
            self.node.request("evm_mine")
        else:
            self.node.request("anvil_mine", [hex(blocks)])
        return self.block_number()

    def block_number(self) -> int:
        """The latest block number."""
        return int(self.node.request("eth_blockNumber"), 16)

    def timestamp(self) -> int:
        """The timestamp of the latest block."""
        block = self.node.request("eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    def increase_time(self, seconds: int) -> int:
        """Move the chain's clock forward by ``seconds`` and mine a block; return that block's timestamp."""
        self.node.request("evm_increaseTime", [int(seconds)])
        self.node.request("evm_mine")
        return self.timestamp()

    def snapshot(self) -> str:
        """Snapshot the chain's state (``evm_snapshot``); pass the id to :meth:`revert`.

        Alto keeps its own view (mempool, executor nonces): revert only while no operation is in flight.
        """
        result: str = self.node.request("evm_snapshot")
        return result

    def revert(self, snapshot_id: str) -> None:
        """Return the chain to a snapshot (which is consumed, as anvil does)."""
        if not self.node.request("evm_revert", [snapshot_id]):
            raise LocalStackError(
                f"anvil has no snapshot {snapshot_id}: each snapshot can be reverted to once"
            )

    # -- what tests need ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the node (and the bundler, if any) is up."""
        node_up = self._anvil is not None and self._anvil.alive()
        bundler_up = not self._with_bundler or (self._alto is not None and self._alto.alive())
        return node_up and bundler_up

    @property
    def rpc_url(self) -> str:
        """anvil's JSON-RPC URL."""
        return self._require(self._rpc_url, "rpc_url")

    @property
    def bundler_url(self) -> str:
        """Alto's JSON-RPC URL."""
        if not self._with_bundler:
            raise LocalStackError(
                "this stack was started without a bundler (bundler=False): there is no bundler_url"
            )
        return self._require(self._bundler_url, "bundler_url")

    @property
    def node(self) -> JsonRpcClient:
        """A JSON-RPC client of anvil, shared by the stack's helpers."""
        return self._require(self._node, "node")

    @property
    def chain_id(self) -> int:
        """The chain id."""
        return self._chain_id

    @property
    def entry_point(self) -> str:
        """EntryPoint v0.7 (at its canonical address)."""
        return self._require(self._contracts, "entry_point").entry_point

    @property
    def factory(self) -> str:
        """The staked ``KeyscopeAccountFactory`` of EntryPoint v0.7."""
        return self._require(self._contracts, "factory").factory

    @property
    def entry_point_v08(self) -> str:
        """EntryPoint v0.8 (at its canonical address)."""
        return self._require(self._contracts, "entry_point_v08").entry_point_v08

    @property
    def factory_v08(self) -> str:
        """The staked ``KeyscopeAccountFactory`` of EntryPoint v0.8 (its accounts trust v0.8)."""
        return self._require(self._contracts, "factory_v08").factory_v08

    @property
    def delegate(self) -> str:
        """``KeyscopeDelegate``: keyscope's account for EOAs delegating with EIP-7702, on EntryPoint v0.8."""
        return self._require(self._contracts, "delegate").delegate

    @property
    def module(self) -> str:
        """The ``SessionKeyValidator`` module."""
        return self._require(self._contracts, "module").module

    @property
    def nft(self) -> str:
        """The ``DemoNFT``."""
        return self._require(self._contracts, "nft").nft

    @property
    def contracts(self) -> Contracts:
        """All deployed addresses at once."""
        return self._require(self._contracts, "contracts")

    @property
    def deployer(self) -> LocalSigner:
        """The development account that deployed the contracts and administers the factory."""
        return self._deployer

    @property
    def accounts(self) -> tuple[LocalSigner, ...]:
        """Funded development accounts the stack does not use itself: free for tests."""
        return self._accounts

    @property
    def utility(self) -> LocalSigner:
        """Alto's utility key."""
        return self._utility

    @property
    def executors(self) -> tuple[LocalSigner, ...]:
        """Alto's executor keys."""
        return self._executors

    @property
    def anvil_log(self) -> Path:
        """anvil's log file."""
        return self._log_dir_path / "anvil.log"

    @property
    def alto_log(self) -> Path:
        """Alto's log file (appended to by every restart)."""
        return self._log_dir_path / "alto.log"

    @property
    def log_dir(self) -> Path:
        """The folder holding both logs."""
        return self._log_dir_path

    @property
    def pids(self) -> dict[str, int]:
        """PIDs (= process-group ids) of the running processes: ``anvil`` and ``alto``."""
        out: dict[str, int] = {}
        for name, process in (("anvil", self._anvil), ("alto", self._alto)):
            if process is not None and process.pid is not None and process.alive():
                out[name] = process.pid
        return out

    @property
    def _log_dir_path(self) -> Path:
        return self._require(self._log_dir, "log_dir")

    @staticmethod
    def _require(value: _T | None, what: str) -> _T:
        if value is None:
            raise LocalStackError(
                f"the local stack is not running, so it has no {what}: call start() or use `with`"
            )
        return value

    def describe(self) -> dict[str, Any]:
        """URLs, chain id, addresses, keys' addresses, PIDs and log files, for printing."""
        info: dict[str, Any] = {
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            **{
                name: getattr(self.contracts, name)
                for name in (
                    "entry_point",
                    "factory",
                    "module",
                    "nft",
                    "entry_point_v08",
                    "factory_v08",
                    "delegate",
                )
            },
            "deployer": self.deployer.address,
            "accounts": [signer.address for signer in self.accounts],
            "pids": self.pids,
            "anvil_log": str(self.anvil_log),
        }
        if self._with_bundler:
            info["bundler_url"] = self.bundler_url
            info["alto_log"] = str(self.alto_log)
        return info

    def __repr__(self) -> str:
        if self._rpc_url is None:
            return "LocalStack(stopped)"
        return f"LocalStack(rpc_url={self._rpc_url!r}, bundler_url={self._bundler_url!r})"
