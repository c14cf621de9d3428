"""Run a batch of intents through one worker process: ``python -m keyscope.scale.runner SPEC.json``.

The spec is a JSON object::

    {
      "store": "postgresql://app@db/keyscope",
      "node": "http://127.0.0.1:8545", "bundler": "http://127.0.0.1:4337",
      "module": "0x...", "entry_point": "0x...",            (entry_point optional: v0.7's)
      "worker": {"lease_ttl": 30, "max_lanes": 4},          (SessionWorker options, optional: worker_id,
                                                            lease_ttl, max_lanes, idle_seconds, resubmit_after,
                                                            poll_interval, retry_seconds, lane_timeout,
                                                            verify_on_chain, probe_threads)
      "concurrency": 8,                                     (sends at once, optional)
      "timeout": 600,                                       (seconds for the whole batch; null: no limit)
      "recover_first": true,                                (run recover() before sending, optional)
      "intents": [{"intent_id": "...", "session_id": "0x...", "to": "0x...", "value": 0, "data": "0x..."}],
      "result": "path/to/result.json"                       (optional)
    }

Every field is checked before the store is opened: a wrong one is refused with an ``error:`` line naming it (and
the intent). The store's secret comes from ``KEYSCOPE_STORE_KEK`` (64 hex digits) or ``KEYSCOPE_STORE_PASSPHRASE``;
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
from ..errors import BadInputError, KeyscopeError, shown
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


_WORKER_OPTIONS = (
    "worker_id",
    "lease_ttl",
    "max_lanes",
    "idle_seconds",
    "resubmit_after",
    "poll_interval",
    "retry_seconds",
    "lane_timeout",
    "verify_on_chain",
    "probe_threads",
)
"""The :class:`~keyscope.scale.SessionWorker` options a spec's ``worker`` object may set (the others are
callables, or set by the runner)."""

_INTENT_FIELDS = (
    "intent_id, session_id and to (an address), and optionally value (wei) and data (0x-hex calldata)"
)


def _refused(where: str, problem: str) -> BadInputError:
    return BadInputError(f"the spec's {where} {problem}")


def _whole(value: Any, where: str, what: str, *, least: int) -> int:
    """``value`` as a whole number of at least ``least`` (a JSON number, or its digits or 0x-hex as a string)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isascii() and text.isdigit():
            number = int(text)
        elif text[:2].lower() == "0x" and len(text) > 2:
            try:
                number = int(text, 16)
            except ValueError:
                number = None
    if number is None or number < least:
        raise _refused(where, f"is {shown(value)}: give {what}")
    return number


def _intent(index: int, item: Any) -> Intent:
    where = f"intents[{index}]"
    if not isinstance(item, dict):
        raise _refused(
            where, f"is a JSON {type(item).__name__}, not an object: each intent holds {_INTENT_FIELDS}"
        )
    for name in ("intent_id", "session_id", "to"):
        if name not in item:
            raise _refused(where, f"has no {name!r}: each intent holds {_INTENT_FIELDS}")
    intent_id, session_id = item["intent_id"], item["session_id"]
    if isinstance(intent_id, bool) or not isinstance(intent_id, (str, int)) or not str(intent_id):
        raise _refused(
            where, f"'intent_id' is {shown(intent_id)}: give the intent's idempotency key, a string"
        )
    if not isinstance(session_id, str):
        raise _refused(
            where, f"'session_id' is {shown(session_id)}: give the session's id, 0x and 64 hex digits"
        )
    value = _whole(item.get("value", 0), f"{where} 'value'", "a whole number of wei, 0 or more", least=0)
    data = item.get("data", "0x")
    if not isinstance(data, str):
        raise _refused(f"{where} 'data'", f"is {shown(data)}: give the calldata as 0x-hex")
    try:
        calldata = to_bytes(data, name="data")
    except BadInputError as exc:
        raise _refused(f"{where} 'data'", f"is refused: {exc}") from None
    try:
        call = Call(item["to"], value, calldata)
    except BadInputError as exc:
        raise _refused(f"{where} 'to'", f"is refused: {exc}") from None
    return Intent(str(intent_id), session_id, call)


def _worker_options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise _refused(
            "'worker'",
            f"is a JSON {type(options).__name__}, not an object of SessionWorker options ({', '.join(_WORKER_OPTIONS)})",
        )
    for name in options:
        if name not in _WORKER_OPTIONS:
            raise _refused(
                "'worker'",
                f"has {name!r}, which is not a SessionWorker option it may set: give any of "
                f"{', '.join(_WORKER_OPTIONS)}",
            )
    return dict(options)


def _checked(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec``'s fields, each checked before the store is opened or a service asked: the intents, the worker's
    options, ``concurrency``, ``timeout`` and ``recover_first``. :class:`~keyscope.errors.BadInputError` naming the
    field (and the intent) that is wrong and what it takes."""
    for field in ("store", "node", "bundler", "module", "intents"):
        if field not in spec:
            raise BadInputError(f"the spec has no {field!r}")
    for field, what in (
        ("store", "the store's URL (sqlite:///FILE, postgresql://..., or a folder)"),
        ("node", "the node's JSON-RPC URL"),
        ("bundler", "the bundler's JSON-RPC URL"),
        ("module", "the session module's address (0x and 40 hex digits)"),
    ):
        if not isinstance(spec[field], str) or not spec[field].strip():
            raise _refused(repr(field), f"is {shown(spec[field])}: give {what}")
    for field in ("entry_point", "factory"):
        if spec.get(field) is not None and not isinstance(spec[field], str):
            raise _refused(repr(field), f"is {shown(spec[field])}: give an address (0x and 40 hex digits)")
    if not isinstance(spec["intents"], list):
        raise _refused(
            "'intents'",
            f"is a JSON {type(spec['intents']).__name__}, not a list: give a list of intents, each an object "
            f"holding {_INTENT_FIELDS}",
        )
    timeout = spec.get("timeout", 600.0)
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf")
    ):
        raise _refused(
            "'timeout'",
            f"is {shown(timeout)}: give the seconds the whole batch may take (a positive number), or null",
        )
    recover_first = spec.get("recover_first", False)
    if not isinstance(recover_first, bool):
        raise _refused("'recover_first'", f"is {shown(recover_first)}: give true or false")
    return {
        "intents": [_intent(index, item) for index, item in enumerate(spec["intents"])],
        "worker": _worker_options(spec.get("worker", {})),
        "concurrency": _whole(
            spec.get("concurrency", 8), "'concurrency'", "a whole number of sends at once, 1 or more", least=1
        ),
        "timeout": None if timeout is None else float(timeout),
        "recover_first": recover_first,
    }


def run_spec(spec: dict[str, Any], *, on_step: StepHook | None = None) -> dict[str, Any]:
    """Run ``spec`` (see the module docstring); the result as a dict. ``on_step`` is the worker's
    (:class:`~keyscope.scale.SessionWorker`)."""
    checked = _checked(spec)
    intents = checked["intents"]
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
        with SessionWorker(store, net, on_step=on_step, **checked["worker"]) as worker:
            recovered = str(worker.recover(wait=30.0)) if checked["recover_first"] else None
            sending = time.time()
            batch = worker.send_many(intents, concurrency=checked["concurrency"], timeout=checked["timeout"])
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
