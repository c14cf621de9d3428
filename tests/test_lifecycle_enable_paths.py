"""A session's life through every path it can be enabled and used, as the holder of a leaked key (and of a leaked
co-signer key) sees it, against a model of what must be alive, refused and counted.

The owner grants sessions on chain (``enableSession``) or off chain (one EIP-712 signature, carried by the session's
first operation in ENABLE mode), with or without a co-signer, with or without a calls limit over the session's life
or per day; the owner revokes any of them (before its first use too), rotates or removes a co-signer, invalidates
every session (to an epoch the module draws, or to one the owner names: one the account was at before, one below it,
so that the install's move one ahead comes back to it, the next or any), uninstalls and reinstalls the module; the
clock moves on by days. The key sends operations in every mode (USE, USE_WITH_KEY, SESSION, ENABLE), replays every
ENABLE payload ever signed (after revoke, after the epoch moved, after a reinstall), signs co-signed operations with
a co-signer the owner replaced, and claims times in periods other than the current one. Everything goes through
the real EntryPoint v0.7 ``handleOps``, with the in-process bundler's simulation and submission, on a fresh anvil
of the file's own (the module, the account factory and the targets are ape's build of their sources, on a node that
runs them natively); after every step the module's views (epoch, each session's status, each limited session's
counters, the live list's targets) and the targets' call counts must equal the model's.

The property: after a revocation, an invalidation or an uninstall nothing signed before acts again (no ENABLE
payload, no co-signature), and no limit is exceeded, nor reset by enabling again. Back at an epoch it was at
(attacks 322, 323), a session an invalidation cleared there stays dead: out of the live list, refused by
``enableSession`` as a revoked one (``SessionIsRevoked``), its ENABLE payload enabling nothing (the module takes it
for a retry and judges the operation by what the key holds now), its revocation moving no other session; the ENABLE
payloads of that epoch never used are good again (only the account chooses its epoch). The view ``isSessionActive``
asks the live list, so it says no for such a session; ``rotateCoSigner`` reads the meta word alone and sets the
co-signer of a co-signed one (a space with no permission left), a known quirk the model records rather than hides.
ENABLE operations whose enable data is malformed (cut, extended, a byte, a head, length, offset or count word
changed) are judged apart, on fresh sessions: the module refuses each or takes it as the well-formed one, and then
it enables the very session the owner signed.

``KEYSCOPE_FUZZ=deep`` runs many more examples than the default ("ci", derandomized).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import KIND
from keyscope.erc1271 import co_sign_digest
from keyscope.execution import Call, encode_execute
from keyscope.module import invalidate_all_sessions_data
from keyscope.revert import decode_revert
from keyscope.session import (
    SESSION_ABI_TYPE,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Session,
    encode_at_signature,
    encode_enable_signature,
    encode_session_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.anvil_chain import anvil_chain
from support.anvil_harness import AnvilClock, BareViews, anvil_sessions
from support.fuzz import DEEP, ON_CHAIN
from support.malformed import malform
from support.raw_call import revert_bytes

ETHER = 10**18
DAY = 86400
EPOCHS = 2**32  # an epoch is a uint32: the install's move one ahead wraps
# how the machine draws the epochs visited again (constants out of its class, which seeds the derandomized runs):
# the weight of the step moving back to an epoch, how many of the latest epochs it may go back to, and one
# on-chain grant in how many is of a session the epoch knows already
COME_BACK_WEIGHT = 2
EPOCHS_BACK = 4
AGAIN = 3
OTHER = keccak(b"other(uint256)")[:4]
KEYS = tuple(LocalSigner(keccak(b"keyscope enable paths key %d" % i)) for i in range(2))
CO_SIGNERS = tuple(LocalSigner(keccak(b"keyscope enable paths co-signer %d" % i)) for i in range(2))
OWNER = LocalSigner(keccak(b"keyscope enable paths owner"))
LIMITS: tuple[tuple[str, int] | None, ...] = (None, ("day", 1), ("life", 1), ("day", 2), ("life", 2))
TALLY: Counter[str] = Counter()


@dataclass
class Grant:
    """One session as the model knows it: a Session struct granted in one epoch (its id binds the epoch)."""

    session: Session
    session_id: bytes
    key: int
    target: int
    co_signer: int | None  # the co-signer granted (index of CO_SIGNERS), None: not co-signed
    limit: tuple[str, int] | None
    epoch: int
    owner_signature: bytes | None = None  # the off-chain grant, None: granted on chain
    # pending (signed, never enabled), active, revoked, dead (invalidated or uninstalled; its meta word still says
    # "active at its epoch", which the account may come back to, where it is out of the live list)
    status: str = "pending"
    current_co_signer: int | None = None  # after rotations; None once removed (for a co-signed session)
    index: int = 0  # the limit record's period index (0 for a limit over the life)
    left: int = 0  # what the limit record has left in that period
    counted: int = 0  # operations counted towards its limit, over its life

    @property
    def space(self) -> tuple[str, Any]:
        """Where its permission lives: under its key, or in its co-signed space."""
        return ("key", self.key) if self.co_signer is None else ("co", self.session_id)


@dataclass
class Payload:
    """An ENABLE payload the owner signed: the session and the owner's signature, and the epoch it was signed in."""

    session: Session
    owner_signature: bytes
    epoch: int
    key: int
    target: int
    co_signer: int | None
    limit: tuple[str, int] | None


class EnablePathsMachine(RuleBasedStateMachine):
    """One keyscope account (owner OWNER) with the module; two session keys, two co-signers and two targets. Each
    session grants ``other(uint256)`` on one target, any amount."""

    sessions: Any = None
    account: str = ""
    targets: tuple[Any, ...] = ()
    chain: Any = None
    # ENABLE payloads the owner signed before the examples (in an epoch each example's first step ends): the same
    # in every example, so that an example replays as it ran
    earlier: tuple[Payload, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.grants: dict[bytes, Grant] = {}
        self.payloads: list[Payload] = []  # signed in this example
        self.live: dict[tuple[tuple[str, Any], int], bytes] = {}  # (space, target) -> session id
        self.calls = [0, 0]
        self.epoch = 0
        self.visited: list[int] = []  # the epochs this example was at, in order
        self.installed = True

    # -- plumbing --------------------------------------------------------------------------------------

    @property
    def module(self) -> Any:
        return self.sessions.module

    def _owner(self, calls: Call | list[Call]) -> bool:
        """An owner operation making ``calls``: whether it executed (a revert of the module fails it)."""
        h = self.sessions.h
        receipt = h.submit(h.sign_owner(h.op(self.account, encode_execute(calls)), OWNER))
        return bool(receipt.success)

    def _module_call(self, data: bytes) -> Call:
        return Call.of(self.module.address, 0, data)

    def _module_error(self, data: bytes) -> str | None:
        """The name of the error the module reverts with when the account calls it with ``data`` (an ``eth_call``),
        None when it runs."""
        tx = {"from": self.account, "to": self.module.address, "data": "0x" + data.hex(), "gas": 10**7}
        try:
            self.sessions.h.chain.call(tx)
        except Exception as failure:
            decoded = decode_revert(revert_bytes(failure))
            return "?" if decoded is None else decoded[0]
        return None

    def _moved_to(self, epoch: int) -> None:
        """The account is at ``epoch`` now."""
        self.epoch = epoch
        self.visited.append(epoch)

    def _now(self) -> int:
        return int(self.chain.blocks.head.timestamp)

    def _period(self) -> int:
        return self._now() // DAY

    def _session_id(self, session: Session) -> bytes:
        return session.session_id(self.account, self.epoch)

    def _session(self, key: int, target: int, co_signer: int | None, limit: Any, salt: int) -> Session:
        limits: tuple[Limit, ...] = ()
        if limit is not None:
            limits = (
                Limit(
                    kind=LimitKind.CALLS,
                    amount=limit[1],
                    period=DAY if limit[0] == "day" else 0,
                    meters=(Meter(permission=0),),
                ),
            )
        return Session(
            session_key=KEYS[key].address,
            salt=salt,
            co_signer=None if co_signer is None else CO_SIGNERS[co_signer].address,
            permissions=(
                Permission(target=self.targets[target].address, selector=OTHER, function="other(uint256)"),
            ),
            limits=limits,
        )

    def _new_grant(self, payload: Payload, owner_signature: bytes | None) -> Grant:
        session_id = self._session_id(payload.session)
        grant = Grant(
            payload.session,
            session_id,
            payload.key,
            payload.target,
            payload.co_signer,
            payload.limit,
            self.epoch,
            owner_signature,
            current_co_signer=payload.co_signer,
        )
        if payload.limit is not None:
            grant.left = payload.limit[1]
        return grant

    def _activate(self, grant: Grant) -> None:
        grant.status = "active"
        self.live[(grant.space, grant.target)] = grant.session_id
        self.grants[grant.session_id] = grant

    def _kill_all(self) -> None:
        for grant in self.grants.values():
            if grant.status == "active":
                grant.status = "dead"
        self.live.clear()

    def _live_sessions(self) -> int:
        return sum(g.status == "active" for g in self.grants.values())

    def _op(self, target: int, sign: Any, at: int | None) -> UserOperation:
        """A session operation calling ``other(1)`` on ``target``, signed by ``sign(userOpHash)``."""
        h = self.sessions.h
        call = Call.of(self.targets[target].address, 0, self.targets[target].other.encode_input(1))
        op = h.op(self.account, encode_execute(call), key=KIND.nonce_key(self.module.address, 0))
        signature = sign(h.hash(op))
        return op.replace(signature=signature if at is None else encode_at_signature(at, signature))

    def _co_sign(self, co_signer: int | None, session_id: bytes, op_hash: bytes) -> bytes:
        if co_signer is None:
            return b""
        digest = co_sign_digest(
            session_id, op_hash, chain_id=self.sessions.h.chain_id, module=self.module.address
        )
        return CO_SIGNERS[co_signer].sign_hash(digest)

    def _claim(self, data: st.DataObject, grant: Grant | None) -> tuple[int | None, str]:
        """The time the operation claims: the current one mostly; for a session with a daily limit sometimes none,
        the day before or the day after (a period whose count the key would like)."""
        now = self._now() + 2
        if grant is None or grant.limit is None or grant.limit[0] != "day":
            return (now if data.draw(st.booleans(), label="claim") else None), "now"
        how = data.draw(
            st.sampled_from(["now", "now", "now", "none", "yesterday", "tomorrow"]), label="claim"
        )
        return {"now": now, "none": None, "yesterday": now - DAY, "tomorrow": now + DAY}[how], how

    def _limit_verdict(self, grant: Grant, claimed: int | None, how: str) -> str | None:
        """Why the module (or the EntryPoint, for the window it returns) refuses one more counted call of
        ``grant`` claiming ``claimed``; None: it counts it."""
        if grant.limit is None:
            return None
        if grant.limit[0] == "life":
            return None if grant.left > 0 else "LimitExceeded"
        if claimed is None:
            return "ClaimedTimeRequired"
        k = claimed // DAY
        if k < grant.index:
            return "PeriodPassed"
        left = grant.limit[1] if k > grant.index else grant.left
        if left == 0:
            return "LimitExceeded"
        if how != "now":
            return "AA22"  # counted in another period: the EntryPoint refuses its window
        return None

    def _count(self, grant: Grant, claimed: int | None) -> None:
        if grant.limit is None:
            return
        if grant.limit[0] == "day":
            assert claimed is not None
            k = claimed // DAY
            if k > grant.index:
                grant.index, grant.left = k, grant.limit[1]
        grant.left -= 1
        grant.counted += 1

    def _judge(self, op: UserOperation, expected: str | None, target: int, context: str) -> None:
        """Send ``op``; ``expected`` is None when it must run, else a fragment of its refusal ('' for any)."""
        outcome = self.sessions.outcome(op)
        if expected is None:
            assert outcome == "ok", f"{context}: refused: {outcome}"
            self.calls[target] += 1
            TALLY["ran"] += 1
        else:
            assert outcome != "ok", f"{context}: ran, the model refuses it ({expected or 'refused'})"
            assert expected in outcome, f"{context}: refused for another reason than {expected}: {outcome}"
            TALLY[f"refused {expected or 'other'}"] += 1

    # -- setting up each example -----------------------------------------------------------------------

    @initialize(data=st.data())
    def fresh_epoch(self, data: st.DataObject) -> None:
        """The module installed and every session an earlier example left dead: a new epoch, and a first
        off-chain grant signed in it."""
        if not self.module.isInitialized(self.account):
            h = self.sessions.h
            h.owner_execute(
                self.account, OWNER, KIND.install_validator_call(self.account, self.module.address)
            )
        assert self._owner(self._module_call(self.module.invalidateAllSessions.encode_input()))
        self._moved_to(int(self.module.epochOf(self.account)))
        self.calls = [int(t.calls()) for t in self.targets]
        # the middle of a day: no operation of a step lands in another period than the one it claims
        now = self._now()
        if abs(now % DAY - DAY // 2) > DAY // 4:
            self.chain.pending_timestamp = (now // DAY + 1) * DAY + DAY // 2
            self.chain.mine()
        self.sign_off_chain(data)

    # -- the steps -------------------------------------------------------------------------------------

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One step, of the key (about as often as all the owner's together) or of the owner. One rule drawing its step by weight rather than a
        rule per step: hypothesis turns rules off per example and tries the first ones first, which left the key's
        operations out of most of the few examples a CI run affords."""
        steps: list[tuple[str, int]] = [
            ("use", 6),
            ("enable_payload", 5),
            ("sign_off_chain", 2),
            ("sign_and_enable", 2),
            ("grant_on_chain", 3),
            ("revoke", 3 if any(g.status in ("active", "pending") for g in self.grants.values()) else 0),
            (
                "rotate_co_signer",
                2
                if any(g.co_signer is not None and g.status == "active" for g in self.grants.values())
                else 0,
            ),
            ("kill_all", 2 if any(g.status in ("active", "pending") for g in self.grants.values()) else 0),
            ("come_back", COME_BACK_WEIGHT if self._epochs_left() else 0),
            ("install", 0 if self.installed else 3),
            ("next_day", 1 if any(g.limit and g.limit[0] == "day" for g in self.grants.values()) else 0),
        ]
        name = data.draw(st.sampled_from([n for n, weight in steps for _ in range(weight)]), label="step")
        getattr(self, name)(data)

    # -- the owner's steps -----------------------------------------------------------------------------

    def sign_off_chain(self, data: st.DataObject) -> None:
        """The owner signs a grant (its ENABLE payload), to be enabled by the session's first operation."""
        key = data.draw(st.integers(0, len(KEYS) - 1), label="key")
        target = data.draw(st.integers(0, 1), label="target")
        co_signer = data.draw(st.sampled_from([0, None, 1, None]), label="co-signer")
        limit = data.draw(st.sampled_from(LIMITS), label="limit")
        salt = data.draw(st.integers(0, 1), label="salt")
        session = self._session(key, target, co_signer, limit, salt)
        signature = self.sessions.owner_signature(self.account, OWNER, session, epoch=self.epoch)
        payload = Payload(session, signature, self.epoch, key, target, co_signer, limit)
        self.payloads.append(payload)
        session_id = self._session_id(session)
        if session_id not in self.grants:
            self.grants[session_id] = self._new_grant(payload, signature)
        TALLY["signed off chain"] += 1

    def grant_on_chain(self, data: st.DataObject) -> None:
        """The owner's ``enableSession`` (installed or not: the module takes any caller): a new grant, or, one time in
        ``AGAIN``, one this epoch knows already (dead back at its epoch, revoked, active or signed), or a new one of a
        dead session's key and target (its key then holds the call the dead session's ENABLE payload names)."""
        here = [g for g in self.grants.values() if g.epoch == self.epoch]
        if here and data.draw(st.integers(1, AGAIN), label="a grant of this epoch again") == 1:
            dead = [g for g in here if g.status == "dead"]
            again = data.draw(st.sampled_from(dead + here), label="which")
            key, target, co_signer, limit = again.key, again.target, again.co_signer, again.limit
            session = again.session
            if again.status == "dead" and data.draw(st.booleans(), label="a new session of its key"):
                co_signer, salt = None, 2 + len(self.grants)
                session = self._session(key, target, co_signer, limit, salt)
        else:
            key = data.draw(st.integers(0, len(KEYS) - 1), label="key")
            target = data.draw(st.integers(0, 1), label="target")
            co_signer = data.draw(st.sampled_from([0, None, 1, None]), label="co-signer")
            limit = data.draw(st.sampled_from(LIMITS), label="limit")
            salt = data.draw(st.integers(0, 1), label="salt")
            session = self._session(key, target, co_signer, limit, salt)
        session_id = self._session_id(session)
        known = self.grants.get(session_id)
        payload = Payload(session, b"", self.epoch, key, target, co_signer, limit)
        grant = known if known is not None else self._new_grant(payload, None)
        enable = self.module.enableSession.encode_input(session.as_abi())
        error = self._module_error(enable)
        ran = self._owner(self._module_call(enable))
        assert ran == (error is None), (ran, error)
        if grant.status == "revoked":
            assert error == "SessionIsRevoked", f"a revoked session: {error}"
            TALLY["on chain: revoked"] += 1
        elif grant.status == "dead":
            # an invalidation cleared it at this epoch, which the account came back to: dead as a revoked one
            assert error == "SessionIsRevoked", f"a session dead back at its epoch: {error}"
            TALLY["on chain: dead back at its epoch"] += 1
        elif grant.status == "active":
            assert ran
            TALLY["on chain: active already"] += 1
        elif (grant.space, target) in self.live:
            assert error == "PermissionAlreadyGranted", f"a second session took a live permission: {error}"
            TALLY["on chain: permission taken"] += 1
        else:
            assert ran
            self._activate(grant)
            TALLY["on chain: enabled"] += 1

    def revoke(self, data: st.DataObject) -> None:
        """Revoke any session the model knows: signed and never used, active, revoked already or dead."""
        rank = {"active": 0, "pending": 1, "dead": 2, "revoked": 3}

        def order(session_id: bytes) -> float:
            grant = self.grants[session_id]
            # a session dead back at its epoch right after the active ones: its stale place is the list's
            return 0.5 if grant.status == "dead" and grant.epoch == self.epoch else rank[grant.status]

        # in the order granted, never by id: ids hold the epoch, which differs when hypothesis replays an example
        ordered = sorted(self.grants, key=order)
        session_id = data.draw(st.sampled_from(ordered), label="session")
        grant = self.grants[session_id]
        assert self._owner(self._module_call(self.module.revokeSession.encode_input(session_id)))
        TALLY[f"revoke {grant.status}"] += 1
        if grant.status == "dead" and grant.epoch == self.epoch:
            # its stale place in the live list is another session's, or past the list's end: nothing moves
            TALLY["revoke dead back at its epoch"] += 1
            if self.live:
                TALLY["revoke dead back at its epoch beside a live session"] += 1
        if grant.status == "active":
            del self.live[(grant.space, grant.target)]
            others = [g for g in self.grants.values() if g.status == "active" and g is not grant]
            if others:
                TALLY["revoke beside another live session"] += 1
            if any(g.key == grant.key for g in others):
                TALLY["revoke beside another live session of the key"] += 1
        grant.status = "revoked"

    def rotate_co_signer(self, data: st.DataObject) -> None:
        """The owner replaces a co-signer by the other one, or removes it (of an active session mostly; of one
        revoked, dead or never enabled the module refuses)."""
        co_signed = sorted(
            (i for i, g in self.grants.items() if g.co_signer is not None),
            key=lambda i: self.grants[i].status != "active",
        )
        session_id = data.draw(st.sampled_from(co_signed), label="session")
        new = data.draw(st.sampled_from([0, 1, None]), label="new co-signer")
        grant = self.grants[session_id]
        address = "0x" + "00" * 20 if new is None else CO_SIGNERS[new].address
        ran = self._owner(self._module_call(self.module.rotateCoSigner.encode_input(session_id, address)))
        if grant.status == "active":
            assert ran
            grant.current_co_signer = new
            TALLY["rotated"] += 1
        elif grant.status == "pending" and grant.epoch == self.epoch:
            assert not ran  # never enabled: no co-signer recorded
            TALLY["rotate refused"] += 1
        elif grant.status == "dead" and grant.epoch == self.epoch:
            # known quirk: rotateCoSigner asks the meta word alone, which says "active"
            # for a session an invalidation cleared at the epoch the account came back to; the co-signer recorded
            # for a session with no permission left changes nothing it can do (its SESSION operations stay refused)
            assert ran, "the module refused to rotate the co-signer of a session dead back at its epoch"
            grant.current_co_signer = new
            TALLY["quirk: rotated the co-signer of a session dead back at its epoch"] += 1
        else:
            assert not ran, f"rotated the co-signer of a {grant.status} session"
            TALLY["rotate refused"] += 1

    def _epochs_left(self) -> list[int]:
        """The epochs this example was at and is not at now, the latest first (at most ``EPOCHS_BACK``). Never one
        an earlier example was at: that example's sessions would be unknown to this one's model (and a draw
        depending on them, on what ran before the example, would not replay)."""
        return [e for e in dict.fromkeys(reversed(self.visited)) if e != self.epoch][:EPOCHS_BACK]

    def come_back(self, data: st.DataObject) -> None:
        """The owner moves the account back to an epoch it was at (``invalidateAllSessions(uint32)``): sessions
        cleared there stay dead, signatures of it never used are good again."""
        self.kill_all(data, back=True)

    def _epoch_to_move_to(self, data: st.DataObject, back: bool) -> tuple[int, str]:
        """The epoch of an ``invalidateAllSessions(uint32)``, and what it is: one the account was at (``back``), or
        one below such an epoch (so that a move one ahead, an install's, comes back to it), the epoch it is at
        (refused), the next one, or any."""
        left = self._epochs_left()
        if back:
            return data.draw(st.sampled_from(left), label="back to"), "back to an epoch it was at"
        where = data.draw(st.sampled_from(["below one visited", "here", "next", "any"]), label="epoch")
        if where == "below one visited" and left:
            below = data.draw(st.sampled_from(left), label="below")
            return (below - 1) % EPOCHS, "below an epoch it was at"
        if where == "here":
            return self.epoch, "here"
        if where == "any":
            # counted from the example's first epoch, drawn by the module: 0 (say) is the epoch the account was
            # created at, where the payloads signed before the examples would be good again
            return (
                self.visited[0] + data.draw(st.integers(0, EPOCHS - 1), label="any epoch")
            ) % EPOCHS, "any"
        return (self.epoch + 1) % EPOCHS, "next"

    def kill_all(self, data: st.DataObject, back: bool = False) -> None:
        """invalidateAllSessions (to an epoch drawn by the module, or to one the owner names: one the account was
        at, one below it, or any), or uninstalling the module (its onUninstall runs: a new epoch) and installing it
        again at once or later."""
        how = (
            "invalidate to an epoch"
            if back
            else data.draw(
                st.sampled_from(["invalidate", "reinstall", "invalidate to an epoch", "uninstall"]),
                label="how",
            )
        )
        if how in ("reinstall", "uninstall") and not self.installed:
            how = "invalidate"
        expected = None
        if how == "invalidate":
            assert self._owner(self._module_call(self.module.invalidateAllSessions.encode_input()))
        elif how == "invalidate to an epoch":
            asked, where = self._epoch_to_move_to(data, back)
            moved_there = self._owner(self._module_call(invalidate_all_sessions_data(asked)))
            if asked == self.epoch:  # EpochNotMoved: the owner's operation fails, nothing ends
                assert not moved_there and int(self.module.epochOf(self.account)) == self.epoch
                TALLY["invalidate to the epoch it is at (refused)"] += 1
                return
            assert moved_there
            expected = asked
            TALLY[f"invalidate to {where}"] += 1
        else:
            assert self._owner(KIND.uninstall_validator_call(self.account, self.module.address))
            self.installed = False
        moved = int(self.module.epochOf(self.account))
        if expected is None:
            # drawn from the block (attack 319): neither the epoch it left nor the next one
            assert moved not in (self.epoch, self.epoch + 1), (self.epoch, moved)
        else:
            assert moved == expected, (self.epoch, moved, expected)
        self._kill_all()
        self._moved_to(moved)
        TALLY[how] += 1
        if how == "reinstall":
            self.install()

    def install(self, data: st.DataObject | None = None) -> None:
        """Install the module again: sessions enabled on chain while it was not installed die (a new epoch)."""
        assert self._owner(KIND.install_validator_call(self.account, self.module.address))
        if self._live_sessions():
            self._kill_all()
            if (self.epoch + 1) % EPOCHS in self.visited:
                TALLY["install back to an epoch it was at"] += 1
            self._moved_to((self.epoch + 1) % EPOCHS)
            TALLY["install over live sessions"] += 1
        self.installed = True
        TALLY["install"] += 1

    def next_day(self, data: st.DataObject) -> None:
        """The clock moves to the middle of a later day: daily limits start again."""
        days = data.draw(st.sampled_from([1, 1, 2]), label="days")
        self.chain.pending_timestamp = (self._period() + days) * DAY + DAY // 2
        self.chain.mine()
        TALLY["next day"] += 1

    # -- the key's steps -------------------------------------------------------------------------------

    def _payload(self, data: st.DataObject) -> Payload:
        """A payload to replay: this epoch's (never enabled, enabled, revoked, or dead back at its epoch) three
        times as often as one signed in an earlier epoch of this example, or before the examples."""
        ours = [p for p in self.payloads if p.epoch == self.epoch]
        older = [p for p in self.payloads if p.epoch != self.epoch]
        which = data.draw(
            st.sampled_from(
                ["pending"] * 3 + ["active"] * 2 + ["dead", "revoked", "older", "older", "before"]
            ),
            label="which payloads",
        )
        if which in ("pending", "active", "revoked", "dead"):
            pool = [p for p in ours if self.grants[self._session_id(p.session)].status == which] or ours
        else:
            pool = older if which == "older" else []
        pool = pool or older or list(self.earlier)
        return data.draw(st.sampled_from(pool), label="payload")

    def sign_and_enable(self, data: st.DataObject) -> None:
        """The owner signs a grant and the session's first operation carries it at once; mostly, the key sends the
        same ENABLE again (a retry: it must count, and reset nothing)."""
        self.sign_off_chain(data)
        self.enable_payload(data, self.payloads[-1])
        if data.draw(st.sampled_from([True, True, False]), label="again"):
            self.enable_payload(data, self.payloads[-1])

    def enable_payload(self, data: st.DataObject, payload: Payload | None = None) -> None:
        """An ENABLE operation carrying any payload ever signed (this example's, or an earlier one's): its first
        use, a retry once enabled, or a replay after revoke, invalidate-all or uninstall."""
        if payload is None:
            payload = self._payload(data)
        session_id = self._session_id(payload.session)
        grant = self.grants.get(session_id)
        claimed, how = self._claim(data, grant)
        co_signer = payload.co_signer
        stale = False
        if grant is not None and grant.co_signer is not None and grant.status == "active":
            # a retry co-signed by the co-signer now, or by the one granted at first (replaced since, or not)
            co_signer = grant.current_co_signer
            if data.draw(st.integers(0, 3), label="co-signed by the granted co-signer") == 3:
                co_signer = grant.co_signer
                stale = co_signer != grant.current_co_signer
        key = KEYS[payload.key]

        def sign(op_hash: bytes) -> bytes:
            key_signature = key.sign_hash(op_hash)
            session_signature = key_signature + self._co_sign(co_signer, session_id, op_hash)
            return encode_enable_signature(payload.session, payload.owner_signature, session_signature)

        expected: str | None
        enables = False
        holder: Grant | None = None  # whose permission a dead session's payload is judged by
        if not self.installed:
            expected = ""
        elif grant is not None and grant.status == "dead":
            # back at the epoch it was enabled in (its id binds the epoch): its meta word says active there, so the
            # module takes the payload for a retry, checks no owner signature, enables nothing, and judges the
            # operation by the permission its key holds now (another live session's, granted since) or refuses it
            # for want of one; a co-signed session's space holds nothing any more
            held = self.live.get((grant.space, payload.target))
            holder = None if held is None else self.grants[held]
            expected = "" if holder is None else self._limit_verdict(holder, claimed, how)
            TALLY["ENABLE of a session dead back at its epoch"] += 1
            if holder is not None:
                TALLY["ENABLE of a session dead back at its epoch, its key holding the call again"] += 1
        elif grant is not None and grant.status == "revoked":
            # the owner's signature is checked first: one of another epoch is refused as such
            expected = "SessionIsRevoked" if payload.epoch == self.epoch else "InvalidOwnerSignature"
        elif grant is not None and grant.status == "active":
            expected = self._limit_verdict(grant, claimed, how)  # a retry: used as enabled
            if expected in (None, "AA22") and stale:
                expected = "AA24"
                TALLY["ENABLE co-signed by a replaced co-signer"] += 1
        elif payload.epoch != self.epoch or grant is None:
            # signed for another epoch: before an invalidation or an uninstall
            expected = "InvalidOwnerSignature"
        elif (grant.space, payload.target) in self.live:
            expected = "PermissionAlreadyGranted"
        else:
            fresh = self._new_grant(payload, payload.owner_signature)
            expected = self._limit_verdict(fresh, claimed, how)
            enables = expected is None
        label = "ours" if payload.epoch == self.epoch else "earlier epoch"
        context = f"ENABLE ({label}) of {session_id.hex()} claiming {how}"
        self._judge(self._op(payload.target, sign, claimed), expected, payload.target, context)
        if expected is None:
            if enables:
                assert grant is not None
                self._activate(grant)
                if grant.limit is not None:
                    grant.left = grant.limit[1]
                TALLY[f"ENABLE enabled ({label})"] += 1
            elif holder is not None:
                TALLY["quirk: a dead session's ENABLE ran as its key's live session"] += 1
            else:
                TALLY["ENABLE retried"] += 1
            assert grant is not None
            self._count(holder or grant, claimed)
        else:
            TALLY[f"ENABLE refused ({label})"] += 1

    def use(self, data: st.DataObject) -> None:
        """A key's operation on a target: USE or USE_WITH_KEY (its own permissions), or SESSION naming any known
        session (co-signed by its co-signer now, by the one granted at first, or by none, or signed by the other
        key)."""
        known = list(self.grants)  # in the order granted
        active = [i for i in known if self.grants[i].status == "active"]
        # an active session's key, three times in four (hypothesis starts from the first choices)
        pick = active and data.draw(st.integers(0, 3), label="another key or session") != 3
        chosen = data.draw(st.sampled_from(active), label="active") if pick else None
        if chosen is not None:
            co_signed = self.grants[chosen].co_signer is not None
            modes = ["session"] if co_signed else ["use_with_key", "use"]
        else:
            modes = ["use", "use_with_key", "session", "session"] if known else ["use", "use_with_key"]
        mode = data.draw(st.sampled_from(modes), label="mode")
        if mode == "session":
            session_id = chosen or data.draw(st.sampled_from(known), label="session")
            grant = self.grants[session_id]
            target = grant.target
            claimed, how = self._claim(data, grant)
            signer = data.draw(st.sampled_from(["key", "key", "key", "other key"]), label="signer")
            key = grant.key if signer == "key" else 1 - grant.key
            co = data.draw(st.sampled_from(["current", "current", "granted", "other", "none"]), label="co")
            current = grant.current_co_signer
            co_signer = {
                "current": current,
                "granted": grant.co_signer,
                "other": None if current is None else 1 - current,
                "none": None,
            }[co]

            def sign(op_hash: bytes) -> bytes:
                return encode_session_signature(
                    session_id, KEYS[key].sign_hash(op_hash), self._co_sign(co_signer, session_id, op_hash)
                )

            live = (
                self.installed
                and grant.co_signer is not None
                and grant.status == "active"
                and self.live.get((grant.space, target)) == session_id
            )
            signed_right = key == grant.key and co_signer == current
            if not live:
                expected: str | None = ""
            else:
                expected = self._limit_verdict(grant, claimed, how)
                if expected in (None, "AA22") and not signed_right:  # a wrong signature before the window
                    expected = "AA24"
            context = f"SESSION of {grant.status} {session_id.hex()} signed by {signer}, co-signed {co}"
        else:
            if chosen is not None:
                key, target = self.grants[chosen].key, self.grants[chosen].target
            else:
                key = data.draw(st.integers(0, len(KEYS) - 1), label="key")
                target = data.draw(st.integers(0, 1), label="target")
            held = self.live.get((("key", key), target))
            grant = None if held is None else self.grants[held]
            claimed, how = self._claim(data, grant)

            def sign(op_hash: bytes) -> bytes:
                signature = KEYS[key].sign_hash(op_hash)
                return (
                    signature
                    if mode == "use"
                    else encode_use_with_key_signature(KEYS[key].address, signature)
                )

            refused = not self.installed or grant is None
            expected = "" if refused or grant is None else self._limit_verdict(grant, claimed, how)
            context = f"{mode} by key {key} on target {target} claiming {how}"
        self._judge(self._op(target, sign, claimed), expected, target, context)
        if expected is None:
            assert grant is not None
            self._count(grant, claimed)
            TALLY[f"{mode} ran"] += 1

    # -- what the module says --------------------------------------------------------------------------

    @invariant()
    def module_agrees(self) -> None:
        """The epoch, every session's status and counters, the targets of the live list, and every call the targets
        received. ``isSessionActive`` asks the live list: it says no for a session an invalidation cleared at the
        epoch the account is back at, whose meta word still says active there (tallied); a session's life is also
        judged by the live list's targets (``isTargetOfLiveSession``) and by what its key's operations may do (each
        step)."""
        assert int(self.module.epochOf(self.account)) == self.epoch
        assert bool(self.module.isInitialized(self.account)) == self.installed
        for session_id, grant in self.grants.items():
            active = bool(self.module.isSessionActive(self.account, session_id))
            revoked = bool(self.module.isSessionRevoked(self.account, session_id))
            assert (active, revoked) == (grant.status == "active", grant.status == "revoked"), (
                session_id.hex(),
                grant.status,
            )
            if grant.status == "dead" and grant.epoch == self.epoch:
                TALLY["isSessionActive says no for a session dead back at its epoch"] += 1
            if grant.limit is not None and grant.status == "active":
                rows = [tuple(row) for row in self.module.limitUsage(self.account, session_id)]
                assert len(rows) == 1, rows
                _, amount, period, start, used, left = rows[0]
                assert (amount, left, used) == (grant.limit[1], grant.left, amount - left), (
                    session_id.hex(),
                    rows,
                )
                if grant.limit[0] == "day":
                    assert (period, start) == (DAY, grant.index * DAY), (rows, grant.index)
            if grant.co_signer is not None and grant.status == "active":
                co_signed, co_signer = self.module.coSignerOf(self.account, session_id)
                current = grant.current_co_signer
                expected = "0x" + "00" * 20 if current is None else CO_SIGNERS[current].address
                assert co_signed and co_signer.lower() == expected.lower(), (co_signer, expected)
        for t, target in enumerate(self.targets):
            listed = bool(self.module.isTargetOfLiveSession(self.account, target.address))
            assert listed == any(held == t for _, held in self.live), (t, listed, self.live)
        assert [int(t.calls()) for t in self.targets] == self.calls


MODULE_VIEWS = {
    "epochOf": ("epochOf(address)", ["uint32"]),
    "isInitialized": ("isInitialized(address)", ["bool"]),
    "isSessionActive": ("isSessionActive(address,bytes32)", ["bool"]),
    "isSessionRevoked": ("isSessionRevoked(address,bytes32)", ["bool"]),
    "isTargetOfLiveSession": ("isTargetOfLiveSession(address,address)", ["bool"]),
    # ISessionKeyValidator.LimitUsage[]: kind, amount, period, periodStart, used, left
    "limitUsage": ("limitUsage(address,bytes32)", ["(uint8,uint256,uint32,uint48,uint256,uint256)[]"]),
    "coSignerOf": ("coSignerOf(address,bytes32)", ["bool", "address"]),
}
TARGET_VIEWS = {"calls": ("calls()", ["uint256"])}


@pytest.fixture(scope="module")
def enable_paths(project):
    # hypothesis seeds its derandomized runs with the machine class's source: the class changed when it learnt to move
    # the account back to epochs it was at, so the steps generated are no longer those of ape's py-evm chain; the
    # test's tallies say what they reach
    with anvil_chain() as chain:
        deployer = chain.accounts[0]
        sessions = anvil_sessions(chain, project, MODULE_VIEWS)
        account = sessions.account(
            OWNER, salt=int.from_bytes(keccak(b"keyscope enable paths"), "big") % 2**32
        )
        sessions.h.fund(account, 20 * ETHER)
        EnablePathsMachine.sessions = sessions
        EnablePathsMachine.account = account
        EnablePathsMachine.targets = tuple(
            BareViews(
                chain.deploy(project.RecordingTarget, sender=deployer), chain.call, deployer, TARGET_VIEWS
            )
            for _ in range(2)
        )
        EnablePathsMachine.chain = AnvilClock(chain)
        epoch = int(sessions.module.epochOf(account))
        earlier = []
        for key, target, co_signer, limit in [
            (0, 0, None, None),
            (1, 1, 0, ("day", 1)),
            (0, 1, 1, ("life", 1)),
        ]:
            machine = EnablePathsMachine()
            machine.epoch = epoch
            session = machine._session(key, target, co_signer, limit, 0)
            signature = sessions.owner_signature(account, OWNER, session, epoch=epoch)
            earlier.append(Payload(session, signature, epoch, key, target, co_signer, limit))
        EnablePathsMachine.earlier = tuple(earlier)
        yield EnablePathsMachine


def test_nothing_signed_before_a_revocation_an_invalidation_or_an_uninstall_acts_again(enable_paths):
    """Sessions granted on chain and off chain (ENABLE), plain and co-signed, with lifetime and daily calls
    limits; revoked, rotated, invalidated, uninstalled and reinstalled in any order, with the days moving on. No
    ENABLE payload signed before a revocation, an invalidation or an uninstall enables anything again, no
    co-signature of a replaced co-signer or of a dead session passes, a retried ENABLE or a second enableSession
    resets no counter, and no limit lets more calls through than its grant, in its period; back at an epoch it
    was at, no session that died there comes back."""
    run = enable_paths.TestCase
    run.settings = settings(
        max_examples=60 if DEEP else 6,
        stateful_step_count=40 if DEEP else 30,
        **ON_CHAIN,
    )
    run().runTest()
    print("\nenable paths:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    for outcome in (
        "ENABLE enabled (ours)",
        "ENABLE retried",
        "ENABLE refused (earlier epoch)",
        "refused SessionIsRevoked",
        "refused InvalidOwnerSignature",
        "refused LimitExceeded",
        "session ran",
        "revoke active",
        "revoke beside another live session",
        "rotated",
    ):
        assert TALLY[outcome], f"no {outcome} among the generated steps: {TALLY}"
    assert TALLY["uninstall"] + TALLY["reinstall"], f"the module was never uninstalled: {TALLY}"
    assert TALLY["invalidate"], f"no invalidateAllSessions but each example's first: {TALLY}"
    back = TALLY["invalidate to back to an epoch it was at"] + TALLY["install back to an epoch it was at"]
    assert back, f"the account never came back to an epoch it was at: {TALLY}"
    assert TALLY["isSessionActive says no for a session dead back at its epoch"], TALLY
    dead_back = [
        "on chain: dead back at its epoch",
        "ENABLE of a session dead back at its epoch",
        "revoke dead back at its epoch",
    ]
    # each in a deep run; in a ci run's few examples, one of them at least
    reached = [TALLY[outcome] for outcome in dead_back]
    assert all(reached) if DEEP else any(reached), f"a session dead back at its epoch met {reached}: {TALLY}"


# -- malformed ENABLE data ---------------------------------------------------------------------------------------

VALIDATE_USER_OP = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
PACKED_OP = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"
ENABLE_DATA_EXAMPLES = 120 if DEEP else 8
MALFORMED_PER_EXAMPLE = 8
MALFORMED_TALLY: Counter[str] = Counter()
"""The module's verdicts on malformed ENABLE data; MALFORMED_CHANGES, what was changed for each."""
MALFORMED_CHANGES: Counter[str] = Counter()
SESSION_FIELDS = ("paymasters", "permissions", "limits", "typedData", "signIn")
"""The Session struct's dynamic members and their head slots: each an array whose count word a respelling changes."""
_malformed_keys = itertools.count()
SESSION_SLOTS = {"paymasters": 4, "permissions": 6, "limits": 7, "typedData": 9, "signIn": 10}


def _word(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 32], "big")


def enable_data_fields(data: bytes) -> dict[tuple[int, int], str]:
    """The length, offset and count fields of ENABLE data ``abi.encode(Session, bytes ownerSignature, bytes
    sessionSignature)`` a respelling changes ((byte offset, width): name): the three head words; the two signatures'
    length words and the last byte of their padding; the session key's and the window's first words (a value not
    canonical for address and uint48); the Session's offset words of its arrays and each array's count word."""
    session, owner, key = _word(data, 0), _word(data, 32), _word(data, 64)
    fields = {
        (0, 32): "the Session's offset",
        (32, 32): "the owner signature's offset",
        (64, 32): "the session signature's offset",
        (owner, 32): "the owner signature's length",
        (key, 32): "the session signature's length",
        (session, 32): "the session key's word",
        (session + 32, 32): "validAfter's word",
    }
    for at, name in ((owner, "the owner signature's"), (key, "the session signature's")):
        padded = 32 * ((_word(data, at) + 31) // 32)
        if padded > _word(data, at):
            fields[(at + 32 + padded - 1, 1)] = f"{name} padding"
    for name in SESSION_FIELDS:
        slot = session + 32 * SESSION_SLOTS[name]
        fields[(slot, 32)] = f"{name}' offset"
        fields[(session + _word(data, slot), 32)] = f"{name}' count"
    return fields


def what_changed(how: str, fields: dict[tuple[int, int], str], data: bytes) -> str:
    """What ``support.malformed``'s description ``how`` did to ENABLE data ``data``, the field it changed named, and
    for a changed byte, the part it is in: the heads, the Session, a signature or its padding."""
    for (offset, width), name in fields.items():
        if how.startswith(f"{width}-byte field at byte {offset} "):
            return name
    if not how.startswith("byte "):
        return how.split(" ")[0]
    at = int(how.split(" ")[1])
    if at < 96:
        return "a byte of the heads"
    for start, name in ((_word(data, 64), "session signature"), (_word(data, 32), "owner signature")):
        if at >= start:
            padding = at >= start + 32 + _word(data, start)
            return f"a byte of the {name}" + ("'s padding" if padding else "")
    return "a byte of the Session"


def validate_as_account(
    machine: EnablePathsMachine, op: UserOperation, op_hash: bytes
) -> tuple[int | None, str]:
    """The account's ``validateUserOp(op, op_hash, 0)`` as the EntryPoint calls it (an ``eth_call``; the account asks
    the module, which asks the account for the owner's signature while it validates): the validation data, or None
    and the name of the revert ("empty" when it carries no data, as the ABI decoder's own checks revert)."""
    data = VALIDATE_USER_OP + abi_encode(
        [PACKED_OP, "bytes32", "uint256"], [op.pack().as_tuple(), op_hash, 0]
    )
    sender = machine.sessions.h.entry_point.address
    tx = {"from": sender, "to": machine.account, "data": "0x" + data.hex(), "gas": 10**7}
    try:
        result = machine.sessions.h.chain.call(tx)
    except Exception as failure:
        raw = revert_bytes(failure)
        decoded = decode_revert(raw)
        if decoded is not None and decoded[0] == "Panic":  # the code says which of the compiler's checks
            return None, f"Panic 0x{decoded[1]['code']:02x}"
        return None, "empty" if not raw else "?" if decoded is None else decoded[0]
    output = bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result)
    return int.from_bytes(output, "big"), ""


def sdk_reading(data: bytes) -> tuple[Any, ...] | None:
    """ENABLE data as the SDK's ABI decoder reads it (the Session, the owner's signature; the session signature as the
    module slices it, at its head word), None when it cannot."""
    try:
        session, owner_signature, _ = abi_decode([SESSION_ABI_TYPE, "bytes", "bytes"], data, strict=False)
    except Exception:
        return None
    at = _word(data, 64)
    return session, owner_signature, data[at + 32 : at + 32 + _word(data, at)]


@settings(max_examples=ENABLE_DATA_EXAMPLES, **ON_CHAIN)
@given(data=st.data())
def test_malformed_enable_data_enables_no_other_grant(enable_paths, data):
    """An ENABLE operation whose enable data is malformed (cut, extended, a byte changed, a head, length or count word
    changed, a padding byte dirtied, a word not canonical for its type: ``support.malformed``, picked by the
    operation's hash, MALFORMED_PER_EXAMPLE of each): the module refuses it (a revert, MalformedEnableData or the
    ABI decoder's; the owner's signature of another grant; SIG_VALIDATION_FAILED), or takes it as the well-formed
    one: the same validation data, the bytes read by the SDK's decoder as the same session, owner signature and
    session signature, and, sent, it enables the very session the owner signed, as the well-formed one would."""
    machine = enable_paths()
    if not machine.module.isInitialized(machine.account):
        machine.sessions.install(machine.account, OWNER)
    machine.epoch = int(machine.module.epochOf(machine.account))
    key = LocalSigner(keccak(b"keyscope malformed enable data %d" % next(_malformed_keys)))  # holds nothing
    target = data.draw(st.integers(0, 1), label="target")
    co_signer = data.draw(st.sampled_from([None, None, 0]), label="co-signer")
    limit = data.draw(st.sampled_from([None, ("life", 2), ("day", 1)]), label="limit")
    session = machine._session(0, target, co_signer, limit, data.draw(st.integers(0, 2**64), label="salt"))
    session = session.model_copy(update={"session_key": key.address})
    owner_signature = machine.sessions.owner_signature(machine.account, OWNER, session, epoch=machine.epoch)
    session_id = machine._session_id(session)
    claimed = None if limit is None or limit[0] != "day" else machine._now() + 2

    def sign(op_hash: bytes) -> bytes:
        session_signature = key.sign_hash(op_hash) + machine._co_sign(co_signer, session_id, op_hash)
        return encode_enable_signature(session, owner_signature, session_signature)

    op = machine._op(target, sign, claimed)
    op_hash = machine.sessions.h.hash(op)
    prefix = op.signature[: 8 if claimed is not None else 1]
    well_formed = op.signature[len(prefix) :]
    expected, refusal = validate_as_account(machine, op, op_hash)
    assert expected is not None and expected & (2**160 - 1) == 0, (session, expected, refusal)
    canonical = sdk_reading(well_formed)
    assert canonical is not None
    fields = enable_data_fields(well_formed)
    for i in range(MALFORMED_PER_EXAMPLE):
        malformed, how = malform(well_formed, keccak(op_hash + bytes((i,))), list(fields))
        changed = op.replace(signature=prefix + malformed)
        answer, refusal = validate_as_account(machine, changed, op_hash)
        context = f"{session!r}: ENABLE data {how}: the module says {answer, refusal}, well-formed {expected}"
        MALFORMED_CHANGES[f"{what_changed(how, fields, well_formed)}: {refusal or answer}"] += 1
        if answer is None or answer == 1:
            MALFORMED_TALLY[refusal or "SIG_VALIDATION_FAILED"] += 1
            continue
        MALFORMED_TALLY[f"taken as the well-formed ({what_changed(how, fields, well_formed)})"] += 1
        assert answer == expected, context
        assert sdk_reading(malformed) == canonical, context
        assert machine.sessions.outcome(changed) == "ok", context
        assert machine.module.isSessionActive(machine.account, session_id), context
        return  # enabled: the session's later operations are not ENABLE's first


def test_malformed_enable_data_reached_each_refusal():
    """What the malformed ENABLE data met (shown with ``-s``), when the test above ran: each kind of refusal."""
    if not MALFORMED_TALLY:
        pytest.skip("the malformed ENABLE data test did not run")
    print("\nmalformed ENABLE data:", ", ".join(f"{k} {v}" for k, v in MALFORMED_TALLY.most_common()))
    print("changes:", ", ".join(f"{k} {v}" for k, v in sorted(MALFORMED_CHANGES.items())))
    for refusal in ("MalformedEnableData", "empty", "InvalidOwnerSignature", "SIG_VALIDATION_FAILED"):
        assert MALFORMED_TALLY[refusal], f"no malformed ENABLE data met {refusal}: {MALFORMED_TALLY}"
