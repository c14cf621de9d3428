"""The SDK's checks of a grant against the deployed module's ``enableSession``, on generated sessions.

The SDK refuses a session when it is built (:class:`~keyscope.session.Session`, a :class:`BadInputError`) and a
session naming the account, the module or the zero address as a target when it is granted
(:func:`~keyscope.grant.refuse_forbidden_targets`); the module refuses a session when it is enabled. Each generated
session must get the same verdict from both: a session the SDK builds is one the module enables (its encoding is
the one the SDK sends), and a session the SDK refuses is one the module refuses (sent as the fields were given).
The one refusal the SDK adds on purpose is an AMOUNT limit metering a plain-transfer permission, whose every call
the module would refuse (``CalldataTooShortForLimit``): enabled anyway, it must be enabled.

The fields vary where either side draws a line: the window's ends (0, equal, the 48-bit maximum), the gas cap
around 1 gwei, paymaster lists of 0 to 8 (the zero address, the account, the module, repeats), permission counts around the module's
maximum, co-signers (the session key, zero: none, another key), targets (the account, the module, zero), repeated (target, selector) pairs (one address spelled
twice), rules of every condition (and an unknown one) on valid and invalid argument types, their value counts,
values that are not canonical for their type, IN_RANGE ends in either order (signed or not), ONE_OF lists
around 31 values, rule words with the session's paymasters and a limit's meter word around the 31-word room,
sign-in websites (1 to 255 printable ASCII bytes, or not; repeated; up to 9 signing permissions, with or without
call permissions), and limits of every kind (and an unknown one), periods around the 60-second minimum, meters on missing
permissions, with offsets, or more than 8 on one permission, and more than 8 limits.

The dry runs are ``eth_call`` s from the account: no session stays enabled. The module is ape's build of its
source, deployed on a fresh anvil of this file's own, which runs it natively.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.errors import BadInputError
from keyscope.grant import refuse_forbidden_targets
from keyscope.hexutil import keccak, to_address
from keyscope.module import enable_session_data
from keyscope.revert import decode_revert
from keyscope.session import (
    GWEI,
    MAX_RULE_WORDS,
    ArgType,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
)
from support.anvil_chain import anvil_chain
from support.fuzz import DEEP, ON_CHAIN
from support.raw_call import revert_bytes

EXAMPLES = 2000 if DEEP else 400
U256 = 2**256 - 1
U48 = 2**48 - 1
T0 = 1_700_000_000
ZERO = "0x" + "00" * 20
TARGETS = tuple(to_address(keccak(f"keyscope grant target {i}".encode())[12:]) for i in range(6))
PAYMASTERS = tuple(to_address(keccak(f"keyscope grant paymaster {i}".encode())[12:]) for i in range(8))
DOMAINS = ["app.example.com", "localhost:3000", "!", "~" * 255, "a.b"]
ODD_DOMAINS = ["", "a" * 256, "has space", "tab\tthere", "caf\u00e9.com", "del\x7f", "new\nline"]
"""Sign-in websites: printable ASCII of 1 to 255 bytes, and otherwise (empty, 256 bytes, a space, a control
character, UTF-8 beyond ASCII)."""
CO_SIGNER = to_address(keccak(b"keyscope grant co-signer")[12:])
SELECTORS = (bytes.fromhex("a9059cbb"), bytes.fromhex("12345678"), bytes(4))
VALID_TYPES = (
    ArgType.WORD, ArgType.INT256, ArgType.ADDRESS, ArgType.BOOL, ArgType.UINT8, ArgType.int_of(8),
    ArgType.int_of(128), ArgType.bytes_of(1), ArgType.bytes_of(4), ArgType.bytes_of(31),
)  # fmt: skip
INVALID_TYPES = (0x61, 0x7F, 0x80, 0xFF)
TALLY: Counter[str] = Counter()

SETTINGS = settings(
    max_examples=EXAMPLES,
    database=None,  # the same examples every run (the coverage check below counts on them)
    **ON_CHAIN,
)


# --------------------------------------------------------------------------------------------------
# Strategies: a session's fields, as plain data (what a caller gives the SDK)
# --------------------------------------------------------------------------------------------------


def _canonical_words(arg_type: int) -> st.SearchStrategy[int]:
    """Words of ``arg_type`` (any word for an invalid type code)."""
    if not ArgType.is_valid(arg_type) or not ArgType.restricts(arg_type):
        return st.one_of(st.sampled_from([0, 1, 2**215, 2**216, 2**255, U256]), st.integers(0, U256))
    if arg_type == ArgType.BOOL:
        return st.sampled_from([0, 1])
    kind, padding = arg_type >> 5, arg_type & 0x1F
    bits = 256 - 8 * padding
    if kind == 0:
        return st.integers(0, 2**bits - 1)
    if kind == 1:
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1).map(lambda v: v % 2**256)
    return st.integers(0, 2**bits - 1).map(lambda v: v << (8 * padding))


@st.composite
def reference_words(draw: st.DrawFn, arg_type: int, dirty: bool) -> int:
    """A reference value, canonical for the type, or when ``dirty`` (and the type has some) with a bit the type
    leaves out set."""
    word = draw(_canonical_words(arg_type))
    if dirty and ArgType.is_valid(arg_type) and ArgType.restricts(arg_type):
        if arg_type == ArgType.BOOL:
            return word | 2
        padding = arg_type & 0x1F
        bit = draw(st.integers(0, 8 * padding - 1))
        return word ^ (1 << bit if arg_type >> 5 == 2 else 1 << (255 - bit))
    return word


FAULTS = (
    "none", "none", "none", "window", "key", "count", "gas cap", "paymasters", "target", "repeat", "condition",
    "type", "value count", "order", "dirty", "room", "limit kind", "meter", "meters", "meter offset", "period", "limits", "co-signer", "sign-in",
    "sign-in count", "mixed", "mixed", "mixed",
)  # fmt: skip
"""What one generated session gets wrong (one line each, so that the module's later checks are reached too), or
nothing, or any of them at random ("mixed")."""

Off = Callable[..., bool]


def offs(draw: st.DrawFn, fault: str) -> Off:
    """``off(name, one_in)``: whether the field ``name`` is drawn off its line: always for the session's fault,
    never for the others, and about one time in ``one_in`` when the fault is "mixed"."""

    def off(name: str, one_in: int = 12) -> bool:
        if fault != "mixed":
            return fault == name
        # the last of the choices, which hypothesis draws as often as the others (it favours the first)
        return draw(st.sampled_from([False] * (one_in - 1) + [True]))

    return off


@st.composite
def rules(draw: st.DrawFn, off: Off, room: int) -> dict[str, Any]:
    """A rule: mostly well formed (any condition, a valid type, canonical values in order); ``room`` asks for a
    ONE_OF of about that many values (0: the usual counts)."""
    condition = (
        draw(st.sampled_from([8, 0x48, 0xFF])) if off("condition") else draw(st.sampled_from(list(Condition)))
    )
    types = st.sampled_from(INVALID_TYPES) if off("type") else st.sampled_from(VALID_TYPES)
    arg_type = draw(types)
    if room:
        condition = Condition.ONE_OF
        count = room + draw(st.sampled_from([-1, 0, 1]))
    elif off("value count"):
        count = draw(st.sampled_from([0, 2, 3, 31, 32]))
    elif condition == Condition.IN_RANGE:
        count = 2
    elif condition == Condition.ONE_OF:
        count = draw(st.sampled_from([1, 2, 5, 12]))
    else:
        count = 1
    dirty = off("dirty", 4)
    values = [draw(reference_words(arg_type, dirty)) for _ in range(count)]
    if condition == Condition.IN_RANGE and count == 2 and not off("order", 2):
        order = (lambda w: w - 2**256 if w >> 255 else w) if ArgType.is_signed(arg_type) else (lambda w: w)
        values.sort(key=order)
    offset = draw(st.one_of(st.sampled_from([0, 32, 0xFFFF]), st.integers(0, 0xFFFF)))
    return {"condition": condition, "offset": offset, "arg_type": arg_type, "values": tuple(values)}


@st.composite
def permissions(
    draw: st.DrawFn, off: Off, account: str, module: str, pair: tuple[str, bytes], room: int
) -> dict[str, Any]:
    target, selector = pair
    if off("target", 4):
        target = draw(st.sampled_from([ZERO, account, module]))
    count = draw(st.integers(0, 3)) if selector != bytes(4) or off("transfer rules", 20) else 0
    granted = [draw(rules(off, 0)) for _ in range(count)]
    if room and selector != bytes(4):
        granted.append(draw(rules(off, room)))
    return {
        "target": target,
        "selector": selector,
        "value_limit": draw(st.sampled_from([0, 1, 2**96 - 1, 2**96, U256])),
        "rules": tuple(granted),
    }


@st.composite
def limits(draw: st.DrawFn, off: Off, permission_count: int) -> dict[str, Any]:
    kind = (
        draw(st.sampled_from([5, 0xFF])) if off("limit kind", 3) else draw(st.sampled_from(list(LimitKind)))
    )
    meters = []
    if kind in (LimitKind.NATIVE, LimitKind.AMOUNT, LimitKind.CALLS) or off("meter", 3):
        for _ in range(draw(st.integers(0 if kind >= LimitKind.OPERATIONS else 1, 3))):
            last = max(permission_count - 1, 0)
            index = permission_count if off("meter", 3) else draw(st.integers(0, last))
            offset = 32 if kind == LimitKind.AMOUNT else 0
            if off("meter offset", 2):
                offset = draw(st.sampled_from([0, 4, 0xFFFF]))
            meters.append({"permission": index, "offset": offset})
    period = (
        draw(st.sampled_from([1, 59]))
        if off("period", 2)
        else draw(st.sampled_from([0, 60, 3600, 2**32 - 1]))
    )
    return {
        "kind": kind,
        "amount": draw(st.sampled_from([0, 1, 100, 2**176 - 1, 2**176, U256])),
        "period": period,
        "meters": tuple(meters),
    }


@st.composite
def sessions(
    draw: st.DrawFn, key: str, account: str, module: str, fault: str | None = None
) -> dict[str, Any]:
    """A grant's fields, wrong in ``fault`` (drawn from :data:`FAULTS` when not given)."""
    if fault is None:
        fault = draw(st.sampled_from(FAULTS))
    off = offs(draw, fault)
    edge = st.sampled_from([0, 1, T0, T0 + 1, U48 - 1, U48])
    if off("window", 3):
        valid_after, valid_until = draw(edge), draw(edge)
    else:
        valid_after = draw(edge.filter(lambda m: m < U48))
        valid_until = draw(st.sampled_from([0, valid_after + 1, U48]))
    count = draw(st.sampled_from([0, 16, 17])) if off("count") else draw(st.sampled_from([1, 2, 3, 16]))
    if fault.startswith("sign-in") and draw(st.booleans()):
        count = 0  # a signing-only session
    paymasters = draw(
        st.one_of(
            st.just(list(PAYMASTERS)),
            st.lists(st.sampled_from(PAYMASTERS), max_size=6).flatmap(
                lambda p: st.sampled_from([ZERO, account, module]).map(lambda bad: [*p, bad])
            ),
        )
        if off("paymasters")
        else st.lists(st.sampled_from(PAYMASTERS), max_size=7, unique=True)
    )
    room = MAX_RULE_WORDS - len(paymasters) - draw(st.integers(0, 2)) if off("room", 4) else 0
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(TARGETS), st.sampled_from(SELECTORS)),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    granted = [
        draw(permissions(off, account, module, pair, room if i == 0 else 0)) for i, pair in enumerate(pairs)
    ]
    filled = count and (off("room", 3) or (fault == "none" and draw(st.booleans())))
    if count > 1 and off("repeat", 4):  # a (target, selector) pair twice, maybe spelled otherwise
        first = granted[0]
        target = first["target"].lower() if draw(st.booleans()) else first["target"]
        granted[-1] = {**granted[-1], "target": target, "selector": first["selector"], "rules": ()}
    limit_count = 9 if off("limits", 20) else draw(st.sampled_from([0, 0, 1, 2, 3, 8]))
    fields = {
        "session_key": ZERO if off("key", 40) else key,
        # the session's own fault always draws its refusal (the session key as its co-signer, an odd website, one
        # website past the 8 allowed), so that the coverage check below meets each one on any run's examples
        "co_signer": (
            key
            if fault == "co-signer"
            else draw(st.sampled_from([key, ZERO, CO_SIGNER]))
            if off("co-signer")
            else None
        ),
        "sign_in": tuple(
            draw(
                st.lists(st.sampled_from(DOMAINS + ODD_DOMAINS), max_size=7).flatmap(
                    lambda listed: st.sampled_from(ODD_DOMAINS).map(lambda odd: [*listed, odd])
                )
                if fault == "sign-in"
                else st.permutations(DOMAINS).map(lambda d: [*d, *(f"{n}.example.org" for n in range(4))])
                if fault == "sign-in count"
                else st.one_of(
                    st.lists(st.sampled_from(DOMAINS + ODD_DOMAINS), min_size=1, max_size=8),
                    st.lists(st.sampled_from(DOMAINS), min_size=9, max_size=9),  # one past the 8 allowed
                )
                if off("sign-in", 4)
                else st.lists(st.sampled_from(DOMAINS), max_size=2 if count else 3, unique=True)
            )
        ),
        "valid_after": valid_after,
        "valid_until": valid_until,
        "max_gas_cost": draw(
            st.sampled_from([1, GWEI - 1])
            if off("gas cap")
            else st.sampled_from([0, GWEI, GWEI + 1, 10**15 + 7, U256])
        ),
        "paymasters": tuple(paymasters),
        "permissions": tuple(granted),
        "limits": tuple(draw(limits(off, count)) for _ in range(limit_count)),
    }
    if fault == "meters":  # 8 or 9 meters on permission 0 (three limits metering it up to three times each)
        meters = ({"permission": 0, "offset": 0},) * 3
        calls = {"kind": LimitKind.CALLS, "amount": 10, "period": 0, "meters": meters}
        last = {**calls, "meters": meters[: draw(st.sampled_from([2, 3]))]}
        fields["limits"] = (calls, calls, last)
    if filled:
        words = MAX_RULE_WORDS + (1 if fault == "room" else draw(st.integers(-1, 0)))
        fields["permissions"] = (fill(fields, words), *granted[1:])
    return fields


def fill(fields: dict[str, Any], words: int) -> dict[str, Any]:
    """Permission 0 with rules taking ``words`` storage words along with the session's stored paymasters and its
    meter word (a ONE_OF of inline values, topped up by an EQUAL)."""
    limits = fields["limits"]
    gas_limit = any(x["kind"] == LimitKind.GAS for x in limits)
    stored = len(fields["paymasters"]) if fields["max_gas_cost"] >= GWEI or gas_limit else 0
    metered = any(
        x["kind"] in (LimitKind.OPERATIONS, LimitKind.GAS) or any(m["permission"] == 0 for m in x["meters"])
        for x in limits
    )
    left = max(words - stored - metered, 1)
    values = tuple(range(min(left, 31)))
    rules = [{"condition": Condition.ONE_OF, "offset": 0, "arg_type": ArgType.WORD, "values": values}]
    if left > 31:
        rules.append({"condition": Condition.EQUAL, "offset": 32, "arg_type": ArgType.WORD, "values": (7,)})
    return {**fields["permissions"][0], "selector": SELECTORS[1], "rules": tuple(rules)}


# --------------------------------------------------------------------------------------------------
# The two verdicts
# --------------------------------------------------------------------------------------------------


def forged(fields: dict[str, Any]) -> Session:
    """The session exactly as given, past every check of the SDK: what a caller could send the module."""
    return Session.model_construct(
        **{
            "valid_after": 0,
            "valid_until": 0,
            "max_gas_cost": 0,
            "paymasters": (),
            "co_signer": None,
            "sign_in": (),
            **fields,
            "salt": 0,
            "typed_data_permissions": (),
            "permissions": tuple(
                Permission.model_construct(
                    **{
                        **p,
                        "function": None,
                        "limits": (),
                        "rules": tuple(Rule.model_construct(**r, name=None) for r in p["rules"]),
                    }
                )
                for p in fields["permissions"]
            ),
            "limits": tuple(
                Limit.model_construct(
                    **{
                        **x,
                        "name": None,
                        "unit": None,
                        "decimals": 0,
                        "meters": tuple(
                            Meter.model_construct(**m, target=None, selector=None, name=None)
                            for m in x["meters"]
                        ),
                    }
                )
                for x in fields.get("limits", ())
            ),
        }
    )


def sdk_verdict(fields: dict[str, Any], account: str, module: str) -> Session | BadInputError:
    """The session the SDK builds from ``fields`` and lets be granted on ``account``, or its refusal."""
    try:
        session = Session(**fields)
        refuse_forbidden_targets(session, account, module)
    except BadInputError as refusal:
        return refusal
    return session


def module_verdict(
    call: Any, account: str, module: str, session: Session
) -> tuple[str, dict[str, Any]] | None:
    """The module's custom error when ``account`` enables ``session`` (None: enabled)."""
    tx = {"from": account, "to": module, "data": "0x" + enable_session_data(session).hex(), "gas": 30_000_000}
    try:
        call(tx)
    except Exception as error:
        decoded = decode_revert(revert_bytes(error))
        assert decoded is not None, error
        return decoded
    return None


def transfer_total(fields: dict[str, Any]) -> bool:
    """Whether an AMOUNT limit meters a plain-transfer permission (the one refusal the SDK adds)."""
    granted = fields["permissions"]
    return any(
        x["kind"] == LimitKind.AMOUNT
        and m["permission"] < len(granted)
        and granted[m["permission"]]["selector"] == bytes(4)
        for x in fields["limits"]
        for m in x["meters"]
    )


DRY_RUN_ACCOUNT = to_address(keccak(b"keyscope grant differential account")[12:])
"""The account the grants are enabled for, in calls that change nothing: an address no other test uses, so that
no state other tests leave (its live permissions, sessions it enabled) changes the module's verdicts, and the
same examples reach the same refusals whichever tests run before."""


@pytest.fixture(scope="module")
def dry_run(project):
    with anvil_chain() as chain:
        module = chain.deploy(project.SessionKeyValidator)
        yield (
            DRY_RUN_ACCOUNT,
            module.address,
            lambda session: module_verdict(chain.call, DRY_RUN_ACCOUNT, module.address, session),
        )


def _sdk_and_module_agree(dry_run, fault, data):
    account, module, enable = dry_run
    key = to_address(keccak(b"keyscope grant key")[12:])
    fields = data.draw(sessions(key, account, module, fault), label="session")
    verdict = sdk_verdict(fields, account, module)
    if isinstance(verdict, Session):
        refusal = enable(verdict)
        assert refusal is None, f"the SDK built a session the module refuses: {refusal}\n{verdict!r}"
        TALLY["both enable"] += 1
        return
    refusal = enable(forged(fields))
    if refusal is None and transfer_total(fields) and "CalldataTooShortForLimit" in str(verdict):
        TALLY["the SDK refuses a total on a transfer"] += 1
        return
    assert refusal is not None, f"the SDK refused a session the module enables: {verdict}\n{fields!r}"
    TALLY[f"both refuse ({refusal[0]})"] += 1


def test_the_sdk_refuses_exactly_the_grants_the_module_refuses(dry_run):
    """The property on generated grants; then, that the generator reached each refusal and each acceptance."""
    TALLY.clear()
    # each fault gets its share of the examples in a run of its own: which refusals the examples reach then does
    # not hang on how the one run would have spread its examples over the faults
    shares = Counter(FAULTS)
    for fault, share in shares.items():
        examples = max(1, EXAMPLES * share // len(FAULTS))
        run = settings(SETTINGS, max_examples=examples)(given(data=st.data())(_sdk_and_module_agree))
        run(dry_run, fault)
    print("\ngrant differential:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    expected = [
        "both enable",
        "both refuse (InvalidRule)",
        "both refuse (TooManyRules)",
        "both refuse (InvalidTimeWindow)",
        "both refuse (InvalidPaymasters)",
        "both refuse (PermissionAlreadyGranted)",
        "both refuse (ForbiddenPermissionTarget)",
        "both refuse (InvalidLimit)",
        "both refuse (InvalidMaxGasCost)",
        "both refuse (InvalidPermissionCount)",
        "both refuse (InvalidSessionKey)",
        "both refuse (TooManyLimits)",
        "both refuse (TooManyMeters)",
        "both refuse (InvalidCoSigner)",
        "both refuse (InvalidSignInDomain)",
        "both refuse (InvalidSigningPermissionCount)",
    ]
    missing = [name for name in expected if not TALLY[name]]
    assert not missing, f"no generated grant met {missing}: {TALLY}"


def test_a_zero_co_signer_is_no_co_signer_on_both_sides(dry_run):
    """The grant carries None as the zero address, and the module reads a zero coSigner as none: the SDK builds
    such a session as one without a co-signer (the same id), which the module enables."""
    account, module, enable = dry_run
    key = to_address(keccak(b"keyscope grant key")[12:])
    fields = {
        "session_key": key,
        "permissions": ({"target": TARGETS[0], "selector": SELECTORS[1], "value_limit": 0, "rules": ()},),
        "co_signer": ZERO,
    }
    session = sdk_verdict(fields, account, module)
    assert isinstance(session, Session), session
    assert session.co_signer is None
    assert session.session_id(account, 0) == Session(**{**fields, "co_signer": None}).session_id(account, 0)
    assert enable(session) is None and enable(forged(fields)) is None
    refused = sdk_verdict({**fields, "co_signer": key}, account, module)
    assert isinstance(refused, BadInputError) and "another key than the session key" in str(refused)
    assert enable(forged({**fields, "co_signer": key}))[0] == "InvalidCoSigner"
