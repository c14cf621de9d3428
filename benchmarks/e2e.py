"""End to end on the local stack (anvil + Alto): send-to-receipt latency and UserOperations per second.

Three clients do the same work (a session key minting an NFT), side by side in the same run:

* **SDK**: ``SessionAccount.build(call)`` with its defaults (local policy check, the session's status and the
  chain's clock read from the node, nonce, fees, the bundler's gas estimate, signature), then ``send`` and
  ``PendingUserOperation.wait``, timed from the start of ``build`` to the receipt: what a dapp sees.
* **SDK, tuned**: the same ``SessionAccount.build`` through public options only: the local clock, no per-operation
  status read (``verify_on_chain=False``), the nonce counted locally (``build(nonce=...)``), and a
  :class:`~keyscope.bundler.Bundler` wrapper that keeps the bundler's gas estimate per call shape and the fee
  quote for 10 s. It shows what the SDK's own path could give (see docs/benchmarks.md).
* **Floor**: a bare JSON-RPC client (httpx, nothing else) sending operations built and signed beforehand:
  only ``eth_sendUserOperation`` and ``eth_getUserOperationReceipt`` polling, timed from the send.

All poll the receipt at the same fixed interval. Each session has its own nonce lane on one account.

* 1 session: the clients take turns operation by operation (the order rotating), so that every client meets
  the same machine load; operations per second are 1 / mean latency (one client, one operation at a time).
* 20 sessions: rounds of 20 threads (one per session, each sending its operations one after the other, their
  first sends spread over one poll interval), client after client in rotating order, many short rounds so that
  the load of a shared machine falls on every client alike; operations per second are operations / wall time
  of a round (median over rounds).
"""

from __future__ import annotations

import json
import math
import random
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from common import fixed_signer, ratio, summary
from gas import enable_session_call, mint_permission

from keyscope import SessionAccount, SessionKey, connect
from keyscope.bundler.types import FeeQuote, GasEstimate
from keyscope.calls import function_call
from keyscope.execution import Call
from keyscope.network import Network
from keyscope.rpc import JsonRpcClient
from keyscope.userop import UserOperation

ETHER = 10**18
SESSIONS = 20
CONCURRENCY = (1, SESSIONS)
CLIENTS = ("floor", "sdk", "sdk_tuned")
POLL_SECONDS = {1: 0.02, SESSIONS: 0.1}
"""Receipt poll interval of every client, by number of concurrent sessions (20 threads polling every 20 ms
load Alto more than the operations do: on this machine the floor then falls to a few operations per second)."""


class BareClient:
    """The floor: JSON-RPC over one keep-alive HTTP connection, no parsing beyond the JSON."""

    def __init__(self, url: str, entry_point: str) -> None:
        self.url = url
        self.entry_point = entry_point
        self.http = httpx.Client(timeout=30.0)
        self.ids = 0

    def request(self, method: str, params: list[Any]) -> Any:
        self.ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params})
        answer = self.http.post(self.url, content=body, headers={"Content-Type": "application/json"}).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def send_and_wait(self, op: dict[str, str], poll: float) -> None:
        user_op_hash = self.request("eth_sendUserOperation", [op, self.entry_point])
        while True:
            receipt = self.request("eth_getUserOperationReceipt", [user_op_hash])
            if receipt is not None:
                if not receipt.get("success"):
                    raise RuntimeError(f"operation {user_op_hash} failed")
                return
            time.sleep(poll)

    def close(self) -> None:
        self.http.close()


class CachingBundler:
    """A :class:`~keyscope.bundler.Bundler` in front of another: one gas estimate per (sender, callData,
    signature length, factory), fee quotes kept for ``fee_seconds``; every other method passes through."""

    def __init__(self, inner: Any, fee_seconds: float = 10.0) -> None:
        self.inner = inner
        self.fee_seconds = fee_seconds
        self._estimates: dict[tuple[Any, ...], GasEstimate] = {}
        self._fees: tuple[float, FeeQuote] | None = None
        self._lock = threading.Lock()

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        key = (op.sender, op.call_data, len(op.signature), op.factory)
        with self._lock:
            known = self._estimates.get(key)
        if known is None:
            known = self.inner.estimate_user_operation_gas(op, entry_point)
            with self._lock:
                self._estimates[key] = known
        return known

    def fee_quote(self) -> FeeQuote:
        now = time.monotonic()
        with self._lock:
            cached = self._fees
        if cached is not None and now - cached[0] < self.fee_seconds:
            return cached[1]
        quote: FeeQuote = self.inner.fee_quote()
        with self._lock:
            self._fees = (now, quote)
        return quote

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Tuned:
    """A session used through :class:`CachingBundler`, the local clock and a locally counted nonce."""

    def __init__(self, session: SessionAccount, network: Network) -> None:
        self.account = SessionAccount(
            session.grant,
            session.key,
            network=network,
            lane=session.lane,
            clock=time.time,
            verify_on_chain=False,
        )
        self.nonce: int | None = None

    def build(self, call: Call) -> UserOperation:
        if self.nonce is None:
            net = self.account.network
            key = self.account.nonce_key()
            self.nonce = net.chain.get_nonce(net.entry_point, self.account.address, key)
        op = self.account.build(call, nonce=self.nonce)
        self.nonce += 1
        return op

    def resync(self) -> None:
        """Forget the nonce: the next build reads it from the chain."""
        self.nonce = None

    def used_elsewhere(self) -> None:
        """Another client used the lane once."""
        if self.nonce is not None:
            self.nonce += 1


def _presigned(session: SessionAccount, count: int, call: Call) -> list[dict[str, str]]:
    """``count`` consecutive operations of ``session`` making ``call`` (one SDK build for the gas figures, then
    the nonce moved on and the operation signed again), in JSON-RPC form."""
    first = session.build(call)
    net = session.network
    out = []
    for index in range(count):
        op = first.replace(nonce=first.nonce + index)
        digest = op.hash(net.entry_point, net.chain_id)
        out.append(op.replace(signature=session.key.sign_hash(digest)).to_rpc())
    return out


def _threads(work: list[Callable[[], None]]) -> float:
    """Run every callable in its own thread, all released at once; the wall time until the last ends."""
    barrier = threading.Barrier(len(work) + 1)
    errors: list[BaseException] = []

    def body(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=body, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


class Runner:
    """The three clients on the same sessions."""

    def __init__(self, stack: Any, sessions: list[SessionAccount], mint: Call) -> None:
        self.stack = stack
        self.sessions = sessions
        self.mint = mint
        net = sessions[0].network
        tuned_net = Network(
            chain=net.chain,
            bundler=CachingBundler(net.bundler),  # type: ignore[arg-type]
            module=net.module,
            entry_point=net.entry_point,
            factory=net.factory,
        )
        self.tuned = [Tuned(s, tuned_net) for s in sessions]
        self.bare = [BareClient(stack.bundler_url, stack.entry_point) for _ in sessions]

    def close(self) -> None:
        for client in self.bare:
            client.close()

    def one(
        self, client: str, index: int, poll: float, op: dict[str, str] | None = None
    ) -> tuple[float, float]:
        """One operation of session ``index`` by ``client``: (latency, build time) in seconds."""
        if client == "floor":
            assert op is not None
            start = time.perf_counter()
            self.bare[index].send_and_wait(op, poll)
            self.tuned[index].used_elsewhere()
            return time.perf_counter() - start, 0.0
        start = time.perf_counter()
        if client == "sdk":
            session = self.sessions[index]
            built = session.build(self.mint)
        else:
            tuned = self.tuned[index]
            built = tuned.build(self.mint)
            session = tuned.account
        ready = time.perf_counter()
        session.send(built).wait(poll=poll, max_poll=poll)
        if client == "sdk":
            self.tuned[index].used_elsewhere()
        return time.perf_counter() - start, ready - start

    def interleaved(self, count: int, poll: float) -> dict[str, dict[str, list[float]]]:
        """Session 0, the clients taking turns (rotating order) ``count`` times."""
        samples: dict[str, dict[str, list[float]]] = {c: {"latency": [], "build": []} for c in CLIENTS}
        for turn in range(count):
            order = CLIENTS[turn % 3 :] + CLIENTS[: turn % 3]
            for client in order:
                op = _presigned(self.sessions[0], 1, self.mint)[0] if client == "floor" else None
                latency, build = self.one(client, 0, poll, op)
                samples[client]["latency"].append(latency)
                samples[client]["build"].append(build)
        return samples

    def round(self, client: str, per_session: int, poll: float) -> dict[str, Any]:
        """Every session at once, ``per_session`` operations each, by ``client``."""
        latencies: list[float] = []
        builds: list[float] = []
        lock = threading.Lock()
        prepared = (
            [_presigned(s, per_session, self.mint) for s in self.sessions] if client == "floor" else None
        )
        for tuned in self.tuned:
            tuned.resync()

        def job(index: int) -> Callable[[], None]:
            def work() -> None:
                # spread the threads' first sends over one poll interval, so that they do not send and poll in
                # lockstep (the same for every client; not timed)
                time.sleep(poll * index / len(self.sessions))
                for number in range(per_session):
                    op = prepared[index][number] if prepared is not None else None
                    latency, build = self.one(client, index, poll, op)
                    with lock:
                        latencies.append(latency)
                        builds.append(build)

            return work

        elapsed = _threads([job(i) for i in range(len(self.sessions))])
        return {"latency": latencies, "build": builds, "rate": len(latencies) / elapsed}


@contextmanager
def _counting_requests() -> Iterator[dict[str, list[float]]]:
    """Time every JSON-RPC request keyscope's clients make (method -> durations) while active."""
    seen: dict[str, list[float]] = defaultdict(list)
    original = JsonRpcClient.request

    def timed(self: JsonRpcClient, method: str, params: Any = None, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, method, params, **kwargs)
        finally:
            seen[method].append(time.perf_counter() - start)

    JsonRpcClient.request = timed  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        JsonRpcClient.request = original  # type: ignore[method-assign]


def _scenario(samples: dict[str, dict[str, list[float]]], rates: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for client in CLIENTS:
        out[client] = {
            "latency_s": summary(samples[client]["latency"]),
            "build_s": summary(samples[client]["build"]),
            "ops_per_s": rates[client],
            "ops_per_s_median": statistics.median(rates[client]) if rates[client] else float("nan"),
        }
    floor = out["floor"]["latency_s"]
    for client in ("sdk", "sdk_tuned"):
        out[client]["p50_ratio_over_floor"] = ratio(out[client]["latency_s"]["p50"], floor["p50"])
        out[client]["p95_ratio_over_floor"] = ratio(out[client]["latency_s"]["p95"], floor["p95"])
    return out


BOOTSTRAP_RESAMPLES = 10_000
RESOLVE = 0.09
"""The difference the 1-session interval must be able to tell: a p50 ratio of 1.09 from 1.0."""


def _median_ratio(ours: list[float], floor: list[float]) -> float:
    return statistics.median(ours) / statistics.median(floor)


def paired_interval(ours: list[float], floor: list[float], *, seed: int = 7) -> dict[str, Any]:
    """A 95 % confidence interval of ``median(ours) / median(floor)`` where ``ours[i]`` and ``floor[i]`` were
    measured in the same turn (the paired bootstrap: turns drawn with replacement, both clients' samples of a
    drawn turn kept together, so that load shared by a turn cancels), and whether it can tell a ratio of
    ``1 + RESOLVE`` from 1.0: it can when the interval is narrower than ``RESOLVE`` (then it cannot hold both).
    ``turns_needed`` extrapolates, by the usual square-root law, how many turns would make it that narrow."""
    turns = len(ours)
    draw = random.Random(seed)
    ratios = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        picked = [draw.randrange(turns) for _ in range(turns)]
        ratios.append(_median_ratio([ours[i] for i in picked], [floor[i] for i in picked]))
    ratios.sort()
    low = ratios[int(0.025 * BOOTSTRAP_RESAMPLES)]
    high = ratios[int(0.975 * BOOTSTRAP_RESAMPLES) - 1]
    width = high - low
    differences = sorted(a - b for a, b in zip(ours, floor, strict=True))
    return {
        "turns": turns,
        "p50_ratio": _median_ratio(ours, floor),
        "ci95": [low, high],
        "ci95_width": width,
        "resolves": width < RESOLVE,
        "turns_needed": math.ceil(turns * (width / RESOLVE) ** 2) if width >= RESOLVE else turns,
        "paired_difference_s_p50": statistics.median(differences),
    }


def run(stack: Any, *, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Latency and throughput figures, as a dict for results.json."""
    turns = 12 if quick else 150
    rounds = 2 if quick else 6
    per_session = 2
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    recipient = fixed_signer("e2e/recipient").address
    mint = function_call(stack.nft, "safeMint(address)", recipient)

    log(f"e2e: set-up ({SESSIONS} sessions on one account, one nonce lane each, granted on chain)")
    owner = net.owner(fixed_signer("e2e/owner"))
    stack.fund(owner.account, 1000 * ETHER)
    owner.execute(mint).wait()
    permission = mint_permission(stack.nft, recipient, 2)
    keys = [SessionKey(fixed_signer(f"e2e/key-{i}").private_key) for i in range(SESSIONS)]
    requests = [
        owner.prepare_grant(key, [permission], salt=i, never_expires=True) for i, key in enumerate(keys)
    ]
    owner.execute([enable_session_call(stack.module, request.session) for request in requests]).wait()
    grants = [request.enabled_on_chain() for request in requests]
    sessions = [
        net.session(grant, key, lane=i) for i, (grant, key) in enumerate(zip(grants, keys, strict=True))
    ]
    poll = POLL_SECONDS[1]
    _threads([lambda s=s: s.send_calls(mint).wait(poll=poll, max_poll=poll) for s in sessions])

    log("e2e: where an SDK operation's time goes (5 operations, one session)")
    with _counting_requests() as seen:
        for _ in range(5):
            sessions[0].send_calls(mint).wait(poll=poll, max_poll=poll)
    requests_per_op = {
        method: {"per_op": len(times) / 5, "ms_p50": summary(times)["p50"] * 1000}
        for method, times in sorted(seen.items())
    }

    runner = Runner(stack, sessions, mint)
    scenarios: dict[str, Any] = {}
    try:
        log(f"e2e: 1 session, the three clients taking turns, {turns} operations each")
        samples = runner.interleaved(turns, POLL_SECONDS[1])
        rates = {c: [1 / summary(samples[c]["latency"])["mean"]] for c in CLIENTS}
        scenarios["1"] = _scenario(samples, rates)
        for client in ("sdk", "sdk_tuned"):
            scenarios["1"][client]["p50_ratio_interval"] = paired_interval(
                samples[client]["latency"], samples["floor"]["latency"]
            )
        scenarios["1"]["samples_s"] = {client: samples[client]["latency"] for client in CLIENTS}

        samples = {c: {"latency": [], "build": []} for c in CLIENTS}
        rates = {c: [] for c in CLIENTS}
        for number in range(rounds):
            order = CLIENTS[number % 3 :] + CLIENTS[: number % 3]
            for client in order:
                log(f"e2e: {SESSIONS} sessions at once, round {number + 1}/{rounds}, {client}")
                result = runner.round(client, per_session, POLL_SECONDS[SESSIONS])
                samples[client]["latency"] += result["latency"]
                samples[client]["build"] += result["build"]
                rates[client].append(result["rate"])
        scenarios[str(SESSIONS)] = _scenario(samples, rates)
    finally:
        runner.close()

    return {
        "poll_seconds": {str(k): v for k, v in POLL_SECONDS.items()},
        "turns_1_session": turns,
        "rounds_20_sessions": rounds,
        "ops_per_session_per_round": per_session,
        "sdk_requests_per_op": requests_per_op,
        "scenarios": scenarios,
    }
