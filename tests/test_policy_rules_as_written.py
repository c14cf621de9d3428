"""Policy.call rules mean what their author wrote: a property test against an independent oracle.

For every ABI type a call rule takes (uintN, intN, address, bool, bytesN, tuple components, fixed-array
elements) and every condition, a rule is written with its reference values in any spelling a user may
plausibly give (ints and their subclasses and enums; checksummed, lowercase, uppercase-hex and raw-bytes
addresses and objects with an ``address``; bytes, bytearray, HexBytes, bare hex and 0x-hex in either case
for bytesN; 0/1 for bool), and the SDK checker's verdict on the ABI-encoded call is compared with the
oracle: the condition evaluated in plain Python on the argument values as written (integers as integers,
bytesN as byte strings, addresses as the number their hex spells, False < True). The oracle reads the
spellings itself, never through the SDK's encoders.

A spelling the oracle calls wrong for the type (out of range, a wrong length, a bad checksum, a string or a
float for an integer, a bool for an integer, text for bytes, 2 for a bool) or a rule that cannot mean what
it says (in_range with low above high, a rule on a dynamic argument) must be refused with a BadInputError
naming the argument. The chain differential (test_differential.py) shows the module judges as the checker.

``KEYSCOPE_FUZZ=deep`` runs many more examples than the default ("ci").
"""

from __future__ import annotations

import enum
import random
from decimal import Decimal
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.checker import CallRefusedError, PolicyChecker
from keyscope.errors import BadInputError
from keyscope.execution import Call
from keyscope.policy import Policy, arg, parse_signature
from keyscope.session import MAX_RULE_WORDS, Condition, Session
from support.fuzz import DEEP

EXAMPLES = 20_000 if DEEP else 400
"""Rules drawn per test: 400 (about 3,000 calls judged) take some 5 s; ``deep`` runs 20,000."""

TARGET = to_checksum_address("0x" + "c3" * 20)
ACCOUNT = to_checksum_address("0x" + "a1" * 20)
MODULE = to_checksum_address("0x" + "b2" * 20)
SESSION_KEY = to_checksum_address("0x" + "d4" * 20)

SIGNATURE = (
    "act(uint8 u8, bytes data, uint64 u64, uint256 u256, int8 i8, int136 i136, int256 i256, address who, "
    "bool flag, bytes1 b1, bytes4 b4, bytes20 b20, bytes32 b32, "
    "(uint16 kind, (int32 lvl, bytes2 tag) inner, uint40 tail) spec, int24[3] arr, (address to, uint96 amt)[2] legs, "
    "string note, function fn)"
)
FUNCTION = parse_signature(SIGNATURE)

PATHS: dict[tuple[str | int, ...], str] = {
    ("u8",): "uint8",
    ("u64",): "uint64",
    ("u256",): "uint256",
    ("i8",): "int8",
    ("i136",): "int136",
    ("i256",): "int256",
    ("who",): "address",
    ("flag",): "bool",
    ("b1",): "bytes1",
    ("b4",): "bytes4",
    ("b20",): "bytes20",
    ("b32",): "bytes32",
    ("spec", "kind"): "uint16",
    ("spec", "inner", "lvl"): "int32",
    ("spec", "inner", "tag"): "bytes2",
    ("spec", "tail"): "uint40",
    ("arr", 0): "int24",
    ("arr", 1): "int24",
    ("arr", 2): "int24",
    ("legs", 0, "to"): "address",
    ("legs", 0, "amt"): "uint96",
    ("legs", 1, "to"): "address",
    ("legs", 1, "amt"): "uint96",
    ("fn",): "bytes24",  # a Solidity function value: 24 bytes (address, selector), left-aligned
}


def label_of(path: tuple[str | int, ...]) -> str:
    """The argument's name as the builder's messages give it: ``spec.inner.tag``, ``legs[1].amt``."""
    return str(path[0]) + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path[1:])


DYNAMIC = (("data",), ("note",))

ADDRESSES = (
    *(to_checksum_address(f"0x{n:040x}") for n in (0, 1, 0xFF, 2**159, 2**160 - 1, int("c3" * 20, 16))),
    to_checksum_address("0x" + "1" * 40),
    to_checksum_address("0x" + "a" * 40),
    "0x52908400098527886E0F7030069857D2E4169EE7",  # EIP-55 examples: all caps, all lower, mixed
    "0xde709f2102306220921060314715629080e2fb77",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
)


def bounds(kind: str) -> tuple[int, int]:
    bits = int(kind.removeprefix("u").removeprefix("int"))
    return (0, 2**bits - 1) if kind.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def size_of(kind: str) -> int:
    return int(kind.removeprefix("bytes"))


# --------------------------------------------------------------------------------------------------
# The oracle: what a value means, read from its spelling without the SDK's encoders
# --------------------------------------------------------------------------------------------------


class Wrong:
    """A reference value the builder must refuse, and why."""

    def __init__(self, value: Any, why: str) -> None:
        self.value = value
        self.why = why

    def __repr__(self) -> str:
        return f"Wrong({self.value!r}: {self.why})"


class Amount(int):
    """A library's int subclass (as web3's and ape's currency values are)."""


class Level(enum.IntEnum):
    LOW = -5
    HIGH = 7


class Plain(enum.Enum):
    """A plain Enum whose value is what the rule should use."""

    SEVEN = 7


class WithAddress:
    """An account or contract object: the builder takes its ``.address``."""

    def __init__(self, address: str) -> None:
        self.address = address

    def __repr__(self) -> str:
        return f"WithAddress({self.address})"


def meaning(kind: str, value: Any) -> Any:
    """The value a canonical Python argument ``value`` of ``kind`` stands for, in an order Python compares
    as written: ints, bools, byte strings, and addresses as the integer their hex spells."""
    if kind == "address":
        return int(value[2:], 16)
    return value


@st.composite
def spelled(draw: st.DrawFn, kind: str, value: Any) -> Any:
    """``value`` (canonical: an int, a bool, bytes, a checksummed address) in a spelling the builder should
    read as ``value``."""
    if kind == "address":
        digits = value[2:]
        return draw(
            st.sampled_from(
                [
                    value,
                    "0x" + digits.lower(),
                    "0x" + digits.upper(),
                    "0X" + digits.lower(),
                    bytes.fromhex(digits),
                    bytearray.fromhex(digits),
                    WithAddress(value),
                ]
            )
        )
    if kind == "bool":
        return draw(st.sampled_from([value, int(value)]))
    if kind.startswith("bytes"):
        return draw(
            st.sampled_from(
                [
                    value,
                    bytearray(value),
                    "0x" + value.hex(),
                    "0x" + value.hex().upper(),
                    "0X" + value.hex(),
                    value.hex(),  # bare hex: 2N digits for N bytes, never an N-character text's reading
                    HexBytes(value),
                ]
            )
        )
    choices: list[Any] = [value, Amount(value)]
    if value in (-5, 7):
        choices.append(Level(value))
    if value == 7:
        choices.append(Plain.SEVEN)
    return draw(st.sampled_from(choices))


@st.composite
def wrong(draw: st.DrawFn, kind: str) -> Wrong:
    """A reference value of the wrong type, range, length or spelling for ``kind``."""
    if kind == "address":
        good = draw(st.sampled_from(ADDRESSES[6:]))
        digits = good[2:]
        flipped = digits.swapcase()
        choices = [
            Wrong(good[:-1], "39 hex digits"),
            Wrong(good + "0", "41 hex digits"),
            Wrong(digits, "no 0x"),
            Wrong(int(digits, 16), "an int"),
            Wrong(bytes.fromhex(digits)[:19], "19 bytes"),
            Wrong("0x" + "00" * 12 + digits.lower(), "a 32-byte word"),
            Wrong(None, "None"),
        ]
        if flipped not in (digits, digits.lower(), digits.upper()):
            choices.append(Wrong("0x" + flipped, "a bad EIP-55 checksum"))
        return draw(st.sampled_from(choices))
    if kind == "bool":
        return draw(
            st.sampled_from(
                [
                    Wrong(2, "2"),
                    Wrong(-1, "-1"),
                    Wrong("true", "text"),
                    Wrong(None, "None"),
                    Wrong(1.0, "a float"),
                ]
            )
        )
    if kind.startswith("bytes"):
        size = size_of(kind)
        data = draw(st.binary(min_size=size, max_size=size))
        choices = [
            Wrong(data + b"\x00", f"{size + 1} bytes"),
            Wrong("0x" + (data + b"\x01").hex(), f"{size + 1} bytes of hex"),
            Wrong("0x" + data.hex()[:-1], "an odd number of hex digits"),
            Wrong(int.from_bytes(data, "big"), "an int"),
            Wrong("0x" + "zz" * size, "not hex"),
            Wrong("K" * size, f"{size} characters of text"),
        ]
        if size > 1:
            choices += [
                Wrong(data[:-1], f"{size - 1} bytes"),
                Wrong("0x" + data[:-1].hex(), f"{size - 1} bytes of hex"),
            ]
        return draw(st.sampled_from(choices))
    low, high = bounds(kind)
    return draw(
        st.sampled_from(
            [
                Wrong(low - 1, "below the type's range"),
                Wrong(high + 1, "above the type's range"),
                Wrong(str(max(low, 0) + 5), "a decimal string"),
                Wrong(hex(max(low, 0) + 5), "a hex string"),
                Wrong(float(max(low, 0) + 5), "a float"),
                Wrong(Decimal(5), "a Decimal"),
                Wrong(True, "a bool"),
                Wrong(None, "None"),
            ]
        )
    )


def specials(kind: str) -> list[Any]:
    """Boundary values of ``kind``."""
    if kind == "address":
        return list(ADDRESSES)
    if kind == "bool":
        return [False, True]
    if kind.startswith("bytes"):
        size = size_of(kind)
        return [bytes(size), b"\xff" * size, b"\x80" + bytes(size - 1), b"\x01".rjust(size, b"\x00")]
    low, high = bounds(kind)
    return [v for v in (low, low + 1, -5, -1, 0, 1, 7, high - 1, high) if low <= v <= high]


def random_value(kind: str, rng: random.Random) -> Any:
    """A canonical Python value of ``kind`` (what eth-abi encodes), a boundary one time in two."""
    if rng.random() < 0.5:
        return rng.choice(specials(kind))
    if kind == "address":
        return to_checksum_address(rng.randbytes(20))
    if kind == "bool":
        return rng.random() < 0.5
    if kind.startswith("bytes"):
        return rng.randbytes(size_of(kind))
    low, high = bounds(kind)
    return rng.randint(low, high)


def _canonical(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.one_of(
            st.sampled_from(ADDRESSES), st.binary(min_size=20, max_size=20).map(to_checksum_address)
        )
    if kind == "bool":
        return st.booleans()
    if kind.startswith("bytes"):
        size = size_of(kind)
        return st.one_of(st.sampled_from(specials(kind)), st.binary(min_size=size, max_size=size))
    return st.one_of(st.sampled_from(specials(kind)), st.integers(*bounds(kind)))


CANONICAL = {kind: _canonical(kind) for kind in set(PATHS.values())}
"""Canonical Python values of each kind (what eth-abi encodes), boundaries first."""


def canonical_values(kind: str) -> st.SearchStrategy[Any]:
    return CANONICAL[kind]


def near(kind: str, value: Any, delta: int) -> Any:
    """A canonical value of ``kind`` ``delta`` steps from ``value`` in the type's order (clamped to the type)."""
    if kind == "bool":
        return value if delta == 0 else not value
    if kind == "address":
        number = min(max(int(value[2:], 16) + delta, 0), 2**160 - 1)
        return to_checksum_address(f"0x{number:040x}")
    if kind.startswith("bytes"):
        size = size_of(kind)
        number = min(max(int.from_bytes(value, "big") + delta, 0), 2 ** (8 * size) - 1)
        return number.to_bytes(size, "big")
    low, high = bounds(kind)
    return min(max(value + delta, low), high)


def holds(op: Condition, actual: Any, references: tuple[Any, ...]) -> bool:
    """The condition as written, on values as written."""
    first = references[0]
    return {
        Condition.EQUAL: lambda: actual == first,
        Condition.NOT_EQUAL: lambda: actual != first,
        Condition.LESS_THAN: lambda: actual < first,
        Condition.LESS_THAN_OR_EQUAL: lambda: actual <= first,
        Condition.GREATER_THAN: lambda: actual > first,
        Condition.GREATER_THAN_OR_EQUAL: lambda: actual >= first,
        Condition.IN_RANGE: lambda: first <= actual <= references[1],
        Condition.ONE_OF: lambda: actual in references,
    }[op]()


def written(ref: Any, op: Condition, values: tuple[Any, ...]) -> Any:
    """The rule as a user writes it."""
    if op == Condition.IN_RANGE:
        return ref.in_range(*values)
    if op == Condition.ONE_OF:
        return ref.one_of(*values)
    return {
        Condition.EQUAL: lambda v: ref == v,
        Condition.NOT_EQUAL: lambda v: ref != v,
        Condition.LESS_THAN: lambda v: ref < v,
        Condition.LESS_THAN_OR_EQUAL: lambda v: ref <= v,
        Condition.GREATER_THAN: lambda v: ref > v,
        Condition.GREATER_THAN_OR_EQUAL: lambda v: ref >= v,
    }[op](values[0])


# --------------------------------------------------------------------------------------------------
# Rules and calls
# --------------------------------------------------------------------------------------------------


@st.composite
def rules(draw: st.DrawFn) -> tuple[tuple[str | int, ...], str, Condition, tuple[Any, ...], tuple[Any, ...]]:
    """``(path, kind, op, canonical references, references as spelled)``."""
    path = draw(st.sampled_from(list(PATHS)))
    kind = PATHS[path]
    op = draw(st.sampled_from(list(Condition)))
    count = {Condition.IN_RANGE: 2, Condition.ONE_OF: draw(st.integers(1, 4))}.get(op, 1)
    values = tuple(draw(canonical_values(kind)) for _ in range(count))
    if op == Condition.IN_RANGE:
        values = tuple(sorted(values, key=lambda v: meaning(kind, v)))
    return path, kind, op, values, tuple(draw(spelled(kind, v)) for v in values)


def arguments(draw: st.DrawFn, chosen: list[tuple[Any, ...]]) -> dict[tuple[str | int, ...], Any]:
    """Canonical argument values, the ruled ones mostly at, or one step off, one of their references."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    by_path = {path: random_value(kind, rng) for path, kind in PATHS.items()}
    for path, kind, _, values, _ in chosen:
        if draw(st.integers(0, 4)):
            by_path[path] = near(kind, draw(st.sampled_from(values)), draw(st.sampled_from([-1, 0, 0, 1])))
    return by_path


def call_data(by_path: dict[tuple[str | int, ...], Any], data: bytes, note: str) -> bytes:
    v = by_path
    types = [p.type.name for p in FUNCTION.inputs]
    types[-1] = "bytes24"  # eth-abi has no `function` type; it encodes the same 24 bytes, left-aligned
    values = [
        v[("u8",)], data, v[("u64",)], v[("u256",)], v[("i8",)], v[("i136",)], v[("i256",)], v[("who",)],
        v[("flag",)], v[("b1",)], v[("b4",)], v[("b20",)], v[("b32",)],
        (v[("spec", "kind")], (v[("spec", "inner", "lvl")], v[("spec", "inner", "tag")]), v[("spec", "tail")]),
        [v[("arr", 0)], v[("arr", 1)], v[("arr", 2)]],
        [(v[("legs", 0, "to")], v[("legs", 0, "amt")]), (v[("legs", 1, "to")], v[("legs", 1, "amt")])],
        note, v[("fn",)],
    ]  # fmt: skip
    return FUNCTION.selector + abi_encode(types, values)


def checker_of(permission: Any) -> PolicyChecker:
    session = Session(session_key=SESSION_KEY, valid_after=0, valid_until=2**40, permissions=(permission,))
    return PolicyChecker(session, ACCOUNT, MODULE)


def checker_allows(checker: PolicyChecker, data: bytes) -> bool:
    try:
        checker.check_calls(Call.of(TARGET, 0, data))
    except CallRefusedError as error:
        assert error.reason == "RuleViolated", error
        return False
    return True


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not DEEP,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(data=st.data())
def test_rules_judge_calls_as_their_values_are_written(data):
    """The checker allows an ABI-encoded call exactly when every rule, evaluated on the argument values as
    written with the reference values as written (in any accepted spelling), holds."""
    chosen = data.draw(st.lists(rules(), min_size=1, max_size=3), label="rules")
    permission = Policy.call(
        TARGET, SIGNATURE, rules=[written(arg(*path), op, spelled) for path, _, op, _, spelled in chosen]
    )
    checker = checker_of(permission)
    for _ in range(8):
        by_path = arguments(data.draw, chosen)
        encoded = call_data(by_path, data.draw(st.binary(max_size=40)), data.draw(st.text(max_size=8)))
        expected = all(
            holds(op, meaning(kind, by_path[path]), tuple(meaning(kind, v) for v in values))
            for path, kind, op, values, _ in chosen
        )
        assert checker_allows(checker, encoded) == expected, (by_path, chosen)


def assert_refused(spec_of: Any, path: tuple[str | int, ...]) -> None:
    with pytest.raises(BadInputError) as caught:
        Policy.call(TARGET, SIGNATURE, rules=[spec_of()])
    message = str(caught.value)
    assert f"`{label_of(path)}`" in message, message
    assert "Traceback" not in message


@SETTINGS
@given(data=st.data())
def test_values_wrong_for_their_type_are_refused_naming_the_argument(data):
    """A reference value out of the argument's range, of the wrong length, or in a spelling that does not
    name one value of its type is refused with a BadInputError naming the argument, in every position of
    every condition."""
    path = data.draw(st.sampled_from(list(PATHS)), label="path")
    kind = PATHS[path]
    op = data.draw(st.sampled_from(list(Condition)), label="op")
    bad = data.draw(wrong(kind), label="wrong value")
    count = {Condition.IN_RANGE: 2, Condition.ONE_OF: data.draw(st.integers(1, 4))}.get(op, 1)
    values: list[Any] = [data.draw(spelled(kind, data.draw(canonical_values(kind)))) for _ in range(count)]
    values[data.draw(st.integers(0, count - 1), label="position")] = bad.value
    assert_refused(lambda: written(arg(*path), op, tuple(values)), path)


@pytest.mark.parametrize("path", sorted(PATHS, key=str), ids=label_of)
def test_a_range_with_its_ends_swapped_is_refused(path):
    """in_range(high, low), as the type orders them (signed for intN), is refused rather than left to
    match nothing."""
    kind = PATHS[path]
    if kind == "bool":
        low, high = False, True
    elif kind == "address":
        low, high = ADDRESSES[1], ADDRESSES[4]
    elif kind.startswith("bytes"):
        low, high = b"\x7f" + bytes(size_of(kind) - 1), b"\x80" + bytes(size_of(kind) - 1)
    else:
        low, high = bounds(kind)[0], -1 if kind.startswith("int") else 1
    Policy.call(TARGET, SIGNATURE, rules=[arg(*path).in_range(low, high)])
    assert_refused(lambda: arg(*path).in_range(high, low), path)


@pytest.mark.parametrize("path", DYNAMIC, ids=lambda p: p[0])
@pytest.mark.parametrize("op", list(Condition), ids=lambda op: op.name)
def test_rules_on_dynamic_arguments_are_refused(path, op):
    """bytes and string arguments hold only an offset in their head word: a call rule on them is refused."""
    values = ("0x01", "0x02") if op == Condition.IN_RANGE else ("0x01",)
    assert_refused(lambda: written(arg(*path), op, values), path)


def test_one_of_takes_at_most_the_module_s_number_of_distinct_values():
    """one_of with more distinct values than the module stores is refused, naming the argument; repeated
    values (in any spelling) count once."""
    assert_refused(lambda: arg("u64").one_of(range(MAX_RULE_WORDS + 1)), ("u64",))
    same = ADDRESSES[6]
    permission = Policy.call(
        TARGET, SIGNATURE, rules=[arg("who").one_of(same, same.lower(), "0x" + same[2:].upper())]
    )
    assert len(permission.rules[0].values) == 1
