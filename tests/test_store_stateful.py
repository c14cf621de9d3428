"""The four store backends against one another over random sequences of lane and outbox operations.

A hypothesis ``RuleBasedStateMachine`` runs the same steps on a memory, a file, a SQLite and a PostgreSQL
store (each fresh per example): leases taken, renewed and released (fresh or stale), operations recorded
with or without a lease (the same intent again, a nonce or a hash already taken), displaced operations
rebuilt, and state changes. Every backend must give the same answer to each step (the same record, or the
same kind of error), and after each step the outbox must keep the protocol's rules: at most one record per
intent, one intent per operation hash, and no two records of one account that are not failed with one
nonce.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from keyscope.errors import KeyscopeError
from keyscope.hexutil import keccak, to_address
from keyscope.store import Lease, OutboxRecord, SessionStore, open_store
from keyscope.userop import UserOperation
from support.postgres import PostgresServer, postgres_fixture

postgres_server = postgres_fixture(scope="module")

KEK = bytes(range(32))
ACCOUNTS = [to_address("0x" + "a1" * 20), to_address("0x" + "b2" * 20)]
SESSIONS = ["0x" + "5e" * 32, "0x" + "6f" * 32]
INTENTS = [f"intent-{n}" for n in range(5)]
BACKENDS = ("memory", "file", "sqlite", "postgresql")

Outcome = tuple[str, Any]


def _hash(seed: int) -> str:
    return "0x" + keccak(f"operation {seed}".encode()).hex()


def _op(account: str, lane: int, sequence: int, seed: int) -> UserOperation:
    # the nonce key holds the lane, as an account kind's nonce_key does; call data tells operations apart
    return UserOperation(sender=account, nonce=(lane << 64) | sequence, call_data=seed.to_bytes(2, "big"))


def _view(record: OutboxRecord | None) -> Any:
    """What every backend must agree on about a record (not its timestamps)."""
    if record is None:
        return None
    return (
        record.intent_id,
        record.account,
        record.session_id,
        record.lane,
        record.op.nonce,
        record.op.call_data,
        record.user_op_hash,
        record.state.value,
        record.attempts,
        record.tx_hash,
        record.success,
        record.error,
        record.rebuilds,
        record.displaced,
    )


def _outcome(call: Callable[[], Any], view: Callable[[Any], Any]) -> Outcome:
    try:
        return ("ok", view(call()))
    except KeyscopeError as exc:
        return ("error", type(exc).__name__)


class StoreMachine(RuleBasedStateMachine):
    """The same steps on every backend; each step's outcomes must be equal."""

    server: PostgresServer
    folder: Path

    def __init__(self) -> None:
        super().__init__()
        StoreMachine.count = getattr(StoreMachine, "count", 0) + 1
        folder = self.folder / f"example-{StoreMachine.count}"
        folder.mkdir()
        urls = {
            "memory": "memory://",
            "file": (folder / "files").as_uri(),
            "sqlite": f"sqlite:///{folder / 'store.db'}",
            "postgresql": self.server.create_schema(),
        }
        self.stores: dict[str, SessionStore] = {}
        for kind, url in urls.items():
            self.stores[kind] = open_store(url) if kind in ("memory", "file") else open_store(url, kek=KEK)
        self.leases: list[dict[str, Lease]] = []
        self.hashes: dict[str, str] = {}
        """intent -> its operation's hash now (as the stores agree)."""

    def teardown(self) -> None:
        for store in self.stores.values():
            store.close()

    def _each(self, step: Callable[[SessionStore, str], Any], view: Callable[[Any], Any] = _view) -> Outcome:
        outcomes = {
            kind: _outcome(lambda kind=kind, store=store: step(store, kind), view)
            for kind, store in self.stores.items()
        }
        first = outcomes["memory"]
        assert all(outcome == first for outcome in outcomes.values()), outcomes
        return first

    def _remember(self, outcome: Outcome) -> None:
        if outcome[0] == "ok" and outcome[1] is not None:
            self.hashes[outcome[1][0]] = outcome[1][6]

    # -- lanes ----------------------------------------------------------------------------------------------

    @rule(account=st.integers(0, 1), session=st.integers(0, 1), worker=st.integers(0, 2))
    def lease(self, account: int, session: int, worker: int) -> None:
        taken: dict[str, Lease] = {}

        def step(store: SessionStore, kind: str) -> int:
            taken[kind] = store.lease_lane(ACCOUNTS[account], SESSIONS[session], f"worker-{worker}", 3600)
            return taken[kind].lane

        outcome = self._each(step, view=lambda lane: lane)
        if outcome[0] == "ok":
            self.leases.append(taken)

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        held = data.draw(st.sampled_from(self.leases))
        self._each(lambda store, kind: store.renew_lease(held[kind], 3600), view=lambda lease: lease.lane)

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        held = data.draw(st.sampled_from(self.leases))
        self._each(lambda store, kind: store.release_lease(held[kind]), view=lambda released: released)

    # -- the outbox -----------------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        intent=st.sampled_from(INTENTS),
        sequence=st.integers(0, 2),
        seed=st.integers(0, 7),
        fenced=st.booleans(),
    )
    def record(self, data: st.DataObject, intent: str, sequence: int, seed: int, fenced: bool) -> None:
        held = data.draw(st.sampled_from(self.leases)) if fenced and self.leases else None
        if held is not None:
            some = held["memory"]
            account, session, lane = some.account, some.session_id, some.lane
        else:
            account = data.draw(st.sampled_from(ACCOUNTS))
            session = data.draw(st.sampled_from(SESSIONS))
            lane = data.draw(st.integers(0, 2))
        op = _op(account, lane, sequence, seed)

        def step(store: SessionStore, kind: str) -> OutboxRecord:
            lease = None if held is None else held[kind]
            return store.record_intent(intent, account, session, lane, op, _hash(seed), lease=lease)

        self._remember(self._each(step))

    @precondition(lambda self: self.hashes and self.leases)
    @rule(data=st.data(), sequence=st.integers(0, 2), seed=st.integers(0, 7), stale=st.booleans())
    def rebuild(self, data: st.DataObject, sequence: int, seed: int, stale: bool) -> None:
        intent = data.draw(st.sampled_from(sorted(self.hashes)))
        displaced = _hash(data.draw(st.integers(0, 7))) if stale else self.hashes[intent]
        held = data.draw(st.sampled_from(self.leases))
        some = held["memory"]
        op = _op(some.account, some.lane, sequence, seed)

        def step(store: SessionStore, kind: str) -> OutboxRecord:
            return store.rebuild_intent(intent, displaced, some.lane, op, _hash(seed), lease=held[kind])

        self._remember(self._each(step))

    @rule(
        seed=st.integers(0, 7), change=st.sampled_from(["sent", "included", "failed"]), success=st.booleans()
    )
    def mark(self, seed: int, change: str, success: bool) -> None:
        op_hash = _hash(seed)

        def step(store: SessionStore, kind: str) -> OutboxRecord:
            if change == "sent":
                return store.mark_sent(op_hash)
            if change == "included":
                return store.mark_included(op_hash, _hash(100 + seed), success)
            return store.mark_failed(op_hash, f"reason {seed}")

        self._each(step)

    # -- what every backend must show the same, and keep ------------------------------------------------

    @invariant()
    def same_outbox(self) -> None:
        self._each(
            lambda store, kind: [_view(r) for r in store.list_outbox(limit=100)], view=lambda rows: rows
        )
        self._each(lambda store, kind: [_view(r) for r in store.pending()], view=lambda rows: rows)
        for intent in INTENTS:
            self._each(lambda store, kind, intent=intent: store.get_by_intent(intent))

    @invariant()
    def outbox_rules(self) -> None:
        records = self.stores["memory"].list_outbox(limit=100)
        assert len({r.intent_id for r in records}) == len(records)
        assert len({r.user_op_hash for r in records}) == len(records)
        live = [(r.account, r.op.nonce) for r in records if r.state.value != "failed"]
        assert len(set(live)) == len(live), records
        for record in records:
            self._each(lambda store, kind, h=record.user_op_hash: store.get_by_hash(h))


def test_every_backend_gives_the_same_answers(postgres_server: PostgresServer, tmp_path: Path) -> None:
    StoreMachine.server = postgres_server
    StoreMachine.folder = tmp_path
    run_state_machine_as_test(
        StoreMachine,
        settings=settings(
            max_examples=int(os.environ.get("KEYSCOPE_STORE_EXAMPLES", "30")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
