"""Run a batch of intents through one worker process: ``python -m keyscope.scale.runner SPEC.json``.

The spec is a JSON object::

    {
      "store": "postgresql://app@db/keyscope",
      "node": "http://127.0.0.1:8545", "bundler": "http://127.0.0.1:4337",
      "module": "0x...", "entry_point": "0x...",            (entry_point optional: v0.7's)
      "worker": {"lease_ttl": 30, "max_lanes": 4},          (SessionWorker options, optional)
      "concurrency": 8,                                     (sends at once, optional)
      "timeout": 600,                                       (seconds for the whole batch; null: no limit)
      "recover_first": true,                                (run recover() before sending, optional)
      "intents": [{"intent_id": "...", "session_id": "0x...", "to": "0x...", "value": 0, "data": "0x..."}],
      "result": "path/to/result.json"                       (optional)
    }

The store's secret comes from ``KEYSCOPE_STORE_KEK`` (64 hex digits) or ``KEYSCOPE_STORE_PASSPHRASE``;
``KEYSCOPE_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR or CRITICAL; default WARNING) sets what the worker logs
to stderr.
Intents already recorded (by this or any earlier run) are followed, not sent again: running the same spec
twice sends each intent's operation once. The result file holds, per intent, the final outbox record's
state, userOpHash, lane and nonce (or the error), the worker's counters, and timings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import ENTRY_POINT_V07
from ..errors import BadInputError, KeyscopeError
from ..execution import Call
from ..hexutil import to_bytes
from ..network import connect
from ..store import open_store
from .results import Intent
from .worker import SessionWorker, StepHook

__all__ = ["WorkerProcess", "main", "run_spec", "start_worker"]


def _store_secret() -> dict[str, Any]:
    kek = os.environ.get("KEYSCOPE_STORE_KEK")
    if kek:
        return {
            "kek": to_bytes(
                kek if kek.startswith("0x") else "0x" + kek, name="KEYSCOPE_STORE_KEK", length=32, secret=True
            )
        }
    passphrase = os.environ.get("KEYSCOPE_STORE_PASSPHRASE")
    return {"passphrase": passphrase} if passphrase else {}


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level() -> str:
    """``KEYSCOPE_LOG_LEVEL`` (WARNING when unset or empty), upper-cased; :class:`~keyscope.errors.BadInputError`
    naming the variable and the levels it takes when it is none of them."""
    value = os.environ.get("KEYSCOPE_LOG_LEVEL", "").strip()
    if not value:
        return "WARNING"
    if value.upper() not in _LOG_LEVELS:
        raise BadInputError(
            f"KEYSCOPE_LOG_LEVEL is {value!r}, not a log level: set it to one of {', '.join(_LOG_LEVELS)}"
            " (any case), or unset it for WARNING"
        )
    return value.upper()


def _intent(item: dict[str, Any]) -> Intent:
    call = Call(item["to"], int(item.get("value", 0)), to_bytes(item.get("data", "0x"), name="data"))
    return Intent(str(item["intent_id"]), str(item["session_id"]), call)


def run_spec(spec: dict[str, Any], *, on_step: StepHook | None = None) -> dict[str, Any]:
    """Run ``spec`` (see the module docstring); the result as a dict. ``on_step`` is the worker's
    (:class:`~keyscope.scale.SessionWorker`)."""
    for field in ("store", "node", "bundler", "module", "intents"):
        if field not in spec:
            raise BadInputError(f"the spec has no {field!r}")
    intents = [_intent(item) for item in spec["intents"]]
    store = open_store(spec["store"], **_store_secret())
    net = connect(
        spec["node"],
        spec["bundler"],
        module=spec["module"],
        entry_point=spec.get("entry_point", ENTRY_POINT_V07),
        factory=spec.get("factory"),
    )
    began = time.time()
    try:
        with SessionWorker(store, net, on_step=on_step, **spec.get("worker", {})) as worker:
            recovered = str(worker.recover(wait=30.0)) if spec.get("recover_first") else None
            sending = time.time()
            timeout = spec.get("timeout", 600.0)
            batch = worker.send_many(
                intents,
                concurrency=int(spec.get("concurrency", 8)),
                timeout=None if timeout is None else float(timeout),
            )
            finished = time.time()
            stats = worker.stats()
    finally:
        store.close()
    records = {
        intent: {
            "state": record.state.value,
            "user_op_hash": record.user_op_hash,
            "lane": record.lane,
            "nonce": record.op.nonce,
            "sender": record.op.sender,
            "success": record.success,
            "error": record.error,
            "attempts": record.attempts,
            "rebuilds": record.rebuilds,
            "created_at": record.created_at,
            "finished_at": record.finished_at,
        }
        for intent, record in batch.records.items()
    }
    return {
        "pid": os.getpid(),
        "records": records,
        "errors": {intent: f"{type(exc).__name__}: {exc}" for intent, exc in batch.errors.items()},
        "stats": stats,
        "recovered": recovered,
        "started_at": began,
        "sending_at": sending,
        "finished_at": finished,
    }


@dataclass
class WorkerProcess:
    """A worker running a spec in its own process (see :func:`start_worker`)."""

    name: str
    process: subprocess.Popen[bytes]
    spec_path: Path
    result_path: Path
    log_path: Path

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end; its exit code."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL it, as a crash would: nothing is cleaned up, nothing written."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def result(self) -> dict[str, Any] | None:
        """The result it wrote, or None (killed, or failed before writing)."""
        if not self.result_path.exists():
            return None
        value: dict[str, Any] = json.loads(self.result_path.read_text())
        return value

    def log_tail(self, size: int = 3000) -> str:
        """The end of what it printed."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


def start_worker(
    spec: dict[str, Any],
    folder: Path,
    name: str,
    *,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    nice: int = 0,
) -> WorkerProcess:
    """Write ``spec`` to ``folder/name.spec.json`` and run it in a new ``python -m keyscope.scale.runner``
    process; its result goes to ``folder/name.result.json``, its output to ``folder/name.log``. ``env`` is
    added to this process's environment (the store's secret, say). ``command`` runs another program that
    takes the spec's path as its last argument (a runner of one's own around :func:`main`); ``nice`` lowers
    the process's scheduling priority by that much."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / f"{name}.spec.json"
    result_path = folder / f"{name}.result.json"
    log_path = folder / f"{name}.log"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}))
    with open(log_path, "wb") as log:
        program = command or [sys.executable, "-m", "keyscope.scale.runner"]
        niced = ["nice", "-n", str(nice)] if nice else []  # nice(1) execs the program: same process id
        process = subprocess.Popen(
            [*niced, *program, str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    return WorkerProcess(name, process, spec_path, result_path, log_path)


def _read_spec(path: Path) -> dict[str, Any]:
    """The spec at ``path``; :class:`~keyscope.errors.BadInputError` saying what is wrong with the file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInputError(
            f"no spec file at {path}: give the path of a JSON spec (--help shows what it holds)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read the spec file {path}: {exc}") from None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise BadInputError(f"the spec file {path} is not JSON ({exc}); --help shows what it holds") from None
    if not isinstance(spec, dict):
        raise BadInputError(
            f"the spec file {path} holds a JSON {type(spec).__name__}, not an object: --help shows what it holds"
        )
    return spec


def main(argv: list[str] | None = None, *, on_step: StepHook | None = None) -> int:
    """Entry point: ``python -m keyscope.scale.runner SPEC.json``. ``on_step`` is the worker's."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 1 and args[0] in ("-h", "--help"):
        with contextlib.suppress(BrokenPipeError):  # the reader stopped early (a pager, head)
            print(__doc__)
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        print(
            "usage: python -m keyscope.scale.runner SPEC.json  (--help: what the spec holds)", file=sys.stderr
        )
        return 2
    try:
        level = _log_level()
    except BadInputError as exc:  # refused as a bad spec is: before anything is opened
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # KEYSCOPE_LOG_LEVEL is keyscope's own log: the HTTP library logs each request at INFO with the node's or
    # the bundler's URL as given, API key or password included, so it stays at WARNING
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("keyscope").setLevel(level)
    try:
        spec = _read_spec(Path(args[0]))
        result = run_spec(spec, on_step=on_step)
    except (KeyscopeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if spec.get("result"):
        path = Path(spec["result"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)
    else:
        print(json.dumps(result))
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
