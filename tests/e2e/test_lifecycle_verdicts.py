"""The session's lifecycle on a real anvil and Alto: for every state the owner or time can put a session in, what
``session.execute`` says with its checks on, against what the bundler and the chain say when the same calls are
sent with the checks off (no local check, no read of the session's status).

Each state is one of: both accept (the operation lands); or both refuse, and the SDK's error is of the class, and
says the words, that name the real reason and what to do. The SDK letting through what the chain refuses (the user
would get the bundler's bare refusal), refusing what the chain accepts, or refusing for another reason fails.

The states: revoked (enabled, and before its first use); every session invalidated; the module uninstalled, and
reinstalled; before validAfter, after validUntil; a lifetime and a per-period limit, and a gas budget, spent, in
this period and the next, and the next by the wall clock on a chain that has made no block since the boundary (an
operation claims the latest block's time); an operation whose period ends within the bundler's margin; a co-signer
rotated or removed; an account that cannot pay; an off-chain grant whose key holds a live session of the same call; a
session granted through ERC-7715.

Time is real: Alto judges windows by its wall clock and the EntryPoint by the block's time (see
tests/e2e/test_session_window.py), so the per-period states wait for a boundary a few seconds away.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from keyscope import (
    BundlerRejectedError,
    CoSignerMismatchError,
    InsufficientPrefundError,
    LimitExceededError,
    LimitPeriodEndingError,
    Limits,
    Policy,
    SessionError,
    SessionExpiredError,
    SessionKey,
    SessionNotYetValidError,
    SessionRevokedError,
    arg,
    connect,
    function_call,
)
from keyscope.co_signer import local_co_signer
from keyscope.erc7715 import grant_from_response, grant_to_revoke, plan_from_requests, responses_for
from keyscope.errors import KeyscopeError
from keyscope.execution import Call
from keyscope.grant import SessionGrant
from keyscope.local import LocalStack
from keyscope.network import Network
from keyscope.owner import DEFAULT_MAX_GAS_COST, Owner
from keyscope.signing import LocalSigner
from support.stack_clock import mine_until

pytestmark = pytest.mark.e2e

PERIOD = 60
"""The shortest period the module takes."""
BOUNDARY = 12
"""Seconds from granting the per-period sessions to their first boundary: room to spend and refuse in period 0,
then to send within the bundler's 5 s margin of the period's end."""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of its own: the test waits for wall-clock time and mines blocks."""
    with LocalStack() as stack:
        yield stack


@dataclass(frozen=True)
class Refused:
    """The SDK refuses with ``error`` (and not with the bundler's bare refusal) saying each of ``words``."""

    error: type[Exception]
    words: tuple[str, ...] = ()


ACCEPTED = None
Expected = Refused | None


@dataclass
class Verdicts:
    """What the SDK said with its checks on (None: the operation landed), and what the bundler and chain said to
    the same calls sent with the checks off (None: it landed)."""

    local: KeyscopeError | None
    chain: KeyscopeError | None


class Lab:
    """Owners, grants and verdicts on one stack."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.net: Network = connect(
            stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory
        )

    def owner(self) -> Owner:
        """A funded owner whose account exists (its first operation made it)."""
        owner = self.net.owner(LocalSigner.generate())
        self.stack.fund(owner.account, 10**18)
        assert owner.execute(self.mint_call(owner)).wait().success
        return owner

    def mint(self, owner: Owner, **limits: object) -> Policy:
        return Policy.call(
            self.stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account], **limits
        )

    def mint_call(self, owner: Owner) -> Call:
        return function_call(self.stack.nft, "safeMint(address)", owner.account)

    def verdicts(
        self,
        grant: SessionGrant,
        key: SessionKey,
        calls: Call | Sequence[Call],
        co_signer: LocalSigner | None = None,
    ) -> Verdicts:
        """``session.execute``'s verdict with its checks on; when it refuses, the verdict of the same calls sent
        with the checks off and without reading the session's status."""
        co = local_co_signer(co_signer) if co_signer is not None else None
        try:
            receipt = self.net.session(grant, key, co_signer=co).send_calls(calls).wait()
        except KeyscopeError as local:
            raw = self.net.session(grant, key, verify_on_chain=False, co_signer=co)
            try:
                raw.send_calls(calls, check=False).wait()
            except KeyscopeError as chain:
                return Verdicts(local, chain)
            return Verdicts(local, None)
        assert receipt.success, receipt.reason
        return Verdicts(None, None)


def judge(name: str, verdicts: Verdicts, expected: Expected) -> str | None:
    """What is wrong with ``verdicts`` for the state ``name`` (None: nothing)."""
    local, chain = verdicts.local, verdicts.chain
    said = f"{name}: the SDK said {type(local).__name__}: {local}; the chain said {type(chain).__name__}: {chain}"
    if expected is ACCEPTED:
        return None if local is None and chain is None else said
    if local is None:
        return f"{name}: the SDK let through what it should refuse; {said}"
    if chain is None:
        return f"{name}: the SDK refused what the chain accepts; {said}"
    if type(local) is BundlerRejectedError or not isinstance(local, expected.error):
        return f"{name}: expected {expected.error.__name__}; {said}"
    missing = [word for word in expected.words if word not in str(local)]
    return f"{name}: the SDK's error does not say {missing}; {said}" if missing else None


Step = tuple[str, Callable[[], Verdicts], Expected]


def untimed_states(lab: Lab) -> Iterator[Step]:
    """States the owner puts a session in, each with its verdicts and what they must be (run in order)."""
    stack = lab.stack

    # revoked: enabled on chain; an off-chain grant before its first use; an off-chain grant after it
    owner = lab.owner()
    call = lab.mint_call(owner)
    key = SessionKey.generate()
    onchain = owner.grant(key, [lab.mint(owner)], onchain=True)
    assert owner.revoke(onchain).wait().success
    yield (
        "revoked (granted on chain)",
        lambda: lab.verdicts(onchain, key, call),
        Refused(SessionRevokedError, ("revoked on chain", "ask the owner for a new session")),
    )
    unused_key = SessionKey.generate()
    unused = owner.grant(unused_key, [lab.mint(owner)])
    assert owner.revoke(unused).wait().success
    yield (
        "revoked before its first use (off-chain grant)",
        lambda: lab.verdicts(unused, unused_key, call),
        Refused(SessionRevokedError, ("revoked on chain",)),
    )
    used_key = SessionKey.generate()
    used = owner.grant(used_key, [lab.mint(owner)])
    yield "an off-chain grant's first use", lambda: lab.verdicts(used, used_key, call), ACCEPTED
    assert owner.revoke(used).wait().success
    yield (
        "revoked after its first use (off-chain grant)",
        lambda: lab.verdicts(used, used_key, call),
        Refused(SessionRevokedError, ("revoked on chain",)),
    )

    # every session invalidated: one enabled, one off-chain grant not used yet (its signature's epoch is over)
    owner = lab.owner()
    call = lab.mint_call(owner)
    live_key, waiting_key = SessionKey.generate(), SessionKey.generate()
    live = owner.grant(live_key, [lab.mint(owner)], onchain=True)
    waiting = owner.grant(waiting_key, [lab.mint(owner)])
    assert owner.invalidate_all().wait().success
    yield (
        "every session invalidated (enabled)",
        lambda: lab.verdicts(live, live_key, call),
        Refused(SessionRevokedError, ("no longer active", "invalidated", "ask the owner for a new session")),
    )
    yield (
        "every session invalidated (off-chain, not used)",
        lambda: lab.verdicts(waiting, waiting_key, call),
        Refused(
            SessionRevokedError, ("epoch", "invalidated all sessions", "ask the owner for a new session")
        ),
    )

    # the module uninstalled, then reinstalled: the sessions it held stay dead, a new grant works
    owner = lab.owner()
    call = lab.mint_call(owner)
    live_key, waiting_key = SessionKey.generate(), SessionKey.generate()
    live = owner.grant(live_key, [lab.mint(owner)], onchain=True)
    waiting = owner.grant(waiting_key, [lab.mint(owner)])
    assert owner.uninstall_sessions().wait().success
    yield (
        "module uninstalled (enabled session)",
        lambda: lab.verdicts(live, live_key, call),
        Refused(SessionRevokedError, ("uninstalled",)),
    )
    yield (
        "module uninstalled (off-chain, not used)",
        lambda: lab.verdicts(waiting, waiting_key, call),
        Refused(SessionRevokedError, ("uninstalled the module",)),
    )
    pending = owner.install_sessions()
    assert pending is not None and pending.wait().success
    yield (
        "module reinstalled (enabled before)",
        lambda: lab.verdicts(live, live_key, call),
        Refused(SessionRevokedError, ("uninstalled",)),
    )
    yield (
        "module reinstalled (off-chain grant signed before)",
        lambda: lab.verdicts(waiting, waiting_key, call),
        Refused(SessionRevokedError, ("epoch",)),
    )
    fresh_key = SessionKey.generate()
    fresh = owner.grant(fresh_key, [lab.mint(owner)])
    yield "module reinstalled (a grant signed after)", lambda: lab.verdicts(fresh, fresh_key, call), ACCEPTED

    # lifetime limits spent: a call count, an operation count, a gas budget
    owner = lab.owner()
    call = lab.mint_call(owner)
    for name, policy, limits in (
        ("a lifetime call limit", lab.mint(owner, calls=1), []),
        ("a lifetime operation limit", lab.mint(owner), [Limits.operations(1)]),
    ):
        key = SessionKey.generate()
        grant = owner.grant(key, [policy], limits=limits)
        yield f"{name}, whole", lambda grant=grant, key=key: lab.verdicts(grant, key, call), ACCEPTED
        yield (
            f"{name}, spent",
            lambda grant=grant, key=key: lab.verdicts(grant, key, call),
            Refused(LimitExceededError, ("never resets",)),
        )
    key = SessionKey.generate()
    budget = owner.grant(key, [lab.mint(owner)], limits=[Limits.gas(10**15)])
    outcomes = [lab.verdicts(budget, key, call) for _ in range(6)]
    spent = next((i for i, v in enumerate(outcomes) if v.local is not None), None)
    assert spent is not None and spent >= 1, [o.local for o in outcomes]
    for verdicts in outcomes[spent:]:
        yield (
            "a lifetime gas budget, spent",
            lambda verdicts=verdicts: verdicts,
            Refused(LimitExceededError, ("gas budget", "never resets")),
        )

    # co-signed: rotated, then removed
    owner = lab.owner()
    call = lab.mint_call(owner)
    first, second = LocalSigner.generate(), LocalSigner.generate()
    key = SessionKey.generate()
    co_signed = owner.grant(key, [lab.mint(owner)], co_signer=first.address)
    yield (
        "co-signed, no co-signer given",
        lambda: lab.verdicts(co_signed, key, call),
        Refused(CoSignerMismatchError, (first.address, "co_signer=")),
    )
    yield "co-signed, first use", lambda: lab.verdicts(co_signed, key, call, first), ACCEPTED
    assert owner.rotate_co_signer(co_signed, second.address).wait().success
    yield (
        "co-signer rotated, the old one asked",
        lambda: lab.verdicts(co_signed, key, call, first),
        Refused(CoSignerMismatchError, (second.address, "rotated")),
    )
    yield "co-signer rotated, the new one asked", lambda: lab.verdicts(co_signed, key, call, second), ACCEPTED
    assert owner.rotate_co_signer(co_signed, None).wait().success
    yield (
        "co-signer removed, the old one still given",
        lambda: lab.verdicts(co_signed, key, call, first),
        ACCEPTED,
    )
    yield "co-signer removed, none given", lambda: lab.verdicts(co_signed, key, call), ACCEPTED

    # an off-chain grant whose key was since granted the same call in a session enabled on chain
    owner = lab.owner()
    call = lab.mint_call(owner)
    key = SessionKey.generate()
    later = owner.grant(key, [lab.mint(owner)])
    owner.grant(key, [lab.mint(owner)], onchain=True)
    yield (
        "ENABLE of a call the key holds in a live session",
        lambda: lab.verdicts(later, key, call),
        Refused(SessionError, ("PermissionAlreadyGranted", "nothing was sent")),
    )

    # an account that cannot pay: its balance and deposit below the operation's prefund
    owner = lab.owner()
    call = lab.mint_call(owner)
    key = SessionKey.generate()
    poor = owner.grant(key, [lab.mint(owner)], onchain=True)
    stack.node.request("anvil_setBalance", [owner.account, hex(10**9)])
    yield (
        "the account cannot pay",
        lambda: lab.verdicts(poor, key, call),
        Refused(InsufficientPrefundError, ("AA21", "send it ETH, or use a paymaster")),
    )

    # granted through ERC-7715: used, its call limit spent, revoked by wallet_revokePermissions' context
    owner = lab.owner()
    call = lab.mint_call(owner)
    key = SessionKey.generate()
    request = {
        "chainId": hex(stack.chain_id),
        "address": owner.account,
        "expiry": int(time.time()) + 3600,
        "signer": {"type": "account", "data": {"address": key.address}},
        "permission": {
            "type": "contract-call",
            "data": {
                "address": stack.nft,
                "function": "safeMint(address to)",
                "rules": [{"arg": "to", "op": "==", "value": owner.account}],
            },
        },
        "policies": [{"type": "call-limit", "data": {"count": 2}}],
    }
    plan = plan_from_requests([request])
    signed = owner.sign_grant(
        owner.request_for(plan.session(max_gas_cost=DEFAULT_MAX_GAS_COST, salt=secrets.randbits(64)))
    )
    response = responses_for(plan, signed)[0].to_wire()
    granted = grant_from_response(response)
    yield "ERC-7715 grant, first use", lambda: lab.verdicts(granted, key, call), ACCEPTED
    yield (
        "ERC-7715 grant, a batch over its call limit",
        lambda: lab.verdicts(granted, key, [call, call]),
        Refused(LimitExceededError, ("call 1", "0 calls left")),
    )
    yield "ERC-7715 grant, its last call", lambda: lab.verdicts(granted, key, call), ACCEPTED
    yield (
        "ERC-7715 grant, its call limit spent",
        lambda: lab.verdicts(granted, key, call),
        Refused(LimitExceededError, ("never resets",)),
    )
    assert owner.revoke(grant_to_revoke({"permissionContext": response["context"]})).wait().success
    yield (
        "ERC-7715 grant, revoked by its context",
        lambda: lab.verdicts(granted, key, call),
        Refused(SessionRevokedError, ("revoked on chain",)),
    )


def test_every_lifecycle_state_gets_the_chains_verdict_from_the_sdk(stack: LocalStack) -> None:
    lab = Lab(stack)
    wrong: list[str] = []

    def expect(name: str, verdicts: Verdicts, expected: Expected) -> None:
        problem = judge(name, verdicts, expected)
        if problem is not None:
            wrong.append(problem)

    # windows: one not open for a minute, one closing in 3 s (judged once the per-period states are done)
    owner = lab.owner()
    window_call = lab.mint_call(owner)
    start = max(stack.timestamp(), int(time.time()))
    early_key, closing_key = SessionKey.generate(), SessionKey.generate()
    early = owner.grant(early_key, [lab.mint(owner)], valid_after=start + 60, valid_until=start + 3600)
    closing = owner.grant(closing_key, [lab.mint(owner)], valid_after=start - 60, valid_until=start + 3)
    expect(
        "before validAfter",
        lab.verdicts(early, early_key, window_call),
        Refused(SessionNotYetValidError, ("is valid from", "wait")),
    )

    for name, verdicts, expected in untimed_states(lab):
        expect(name, verdicts(), expected)

    # per-period limits: a call rate and a gas budget per minute, spent in period 0 and whole in period 1
    owner = lab.owner()
    call = lab.mint_call(owner)
    boundary = max(stack.timestamp(), int(time.time())) + BOUNDARY
    window = {"valid_after": boundary - PERIOD, "valid_until": boundary + 3600}
    rate_key, gas_key, edge_key = SessionKey.generate(), SessionKey.generate(), SessionKey.generate()
    rate = owner.grant(rate_key, [lab.mint(owner, rate="1/minute")], **window)
    gas = owner.grant(gas_key, [lab.mint(owner)], limits=[Limits.gas(10**15, per="minute")], **window)
    edge = owner.grant(edge_key, [lab.mint(owner, rate="1/minute")], **window)
    expect("a rate per period, whole", lab.verdicts(rate, rate_key, call), ACCEPTED)
    expect(
        "a rate per period, spent",
        lab.verdicts(rate, rate_key, call),
        Refused(LimitExceededError, ("used in this period", "resets")),
    )
    gas_outcomes = [lab.verdicts(gas, gas_key, call) for _ in range(6)]
    spent = next((i for i, v in enumerate(gas_outcomes) if v.local is not None), None)
    assert spent is not None and spent >= 1, [o.local for o in gas_outcomes]
    expect(
        "a gas budget per period, spent",
        gas_outcomes[spent],
        Refused(LimitExceededError, ("gas budget", "resets")),
    )

    # an operation counted in a period that ends within the bundler's margin (Alto: 5 s)
    mine_until(stack, boundary - 4)
    assert time.time() < boundary - 2, "the machine was too slow to reach the period's last seconds in time"
    edge_verdicts = lab.verdicts(edge, edge_key, call)
    expect(
        "an operation whose period ends within the bundler's margin",
        edge_verdicts,
        Refused(LimitPeriodEndingError, ("period that ends at", "not expired", "send again")),
    )

    if isinstance(edge_verdicts.local, LimitPeriodEndingError):
        assert edge_verdicts.local.next_period_at == boundary, edge_verdicts.local

    # the next period by the wall clock, the chain idle since (no block since the period ended): an operation
    # claims the latest block's time, in the ended period, until a block is made
    time.sleep(max(0.0, boundary + 1 - time.time()))
    assert stack.timestamp() < boundary
    expect(
        "a rate per period, spent, the chain idle past the boundary",
        lab.verdicts(rate, rate_key, call),
        Refused(LimitExceededError, ("no block", "mine one")),
    )
    expect(
        "the period's edge passed, the chain idle since",
        lab.verdicts(edge, edge_key, call),
        Refused(LimitPeriodEndingError, ("no block", "mine one", "not expired")),
    )

    mine_until(stack, boundary + 1)
    expect("a rate per period, the next period", lab.verdicts(rate, rate_key, call), ACCEPTED)
    expect("a gas budget per period, the next period", lab.verdicts(gas, gas_key, call), ACCEPTED)
    expect("the period's edge passed", lab.verdicts(edge, edge_key, call), ACCEPTED)
    expect(
        "after validUntil",
        lab.verdicts(closing, closing_key, window_call),
        Refused(SessionExpiredError, ("expired", "ask the owner for a new session")),
    )
    assert not wrong, "\n".join(wrong)
