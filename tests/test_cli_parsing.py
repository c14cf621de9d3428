"""The scripts' parsers of command-line text: durations, amounts, addresses, call arguments and rules.

Pure functions of their text (no chain, no bundler): each test checks the value a text reads as, or that a bad
text raises :class:`~keyscope.errors.BadInputError` with a message that names it and says what was wrong.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.cli import parse_amount, parse_call_args, parse_duration, parse_rule, resolve_address
from keyscope.errors import BadInputError, InvalidAbiError
from keyscope.hexutil import ZERO_ADDRESS, to_address
from keyscope.policy import parse_signature
from keyscope.session import Condition, Rule

NFT = to_address("0x5fbdb2315678afecb367f032d93f642f64180aa3")
ACCOUNT = to_address("0x" + "11" * 20)
NAMES = {"nft": NFT, "account": ACCOUNT}

TRANSFER = "transfer(address to,uint256 amount)"
NESTED = "f((address a,uint256 n) o, uint256[3] xs, bytes data, string s, int16 i)"

GWEI = 10**9
ETHER = 10**18
UINT256_MAX = 2**256 - 1
# decimal text is read exactly up to 28 significant digits (see test_amount_of_more_than_28_digits)
DECIMAL_MAX = 10**28 - 1

OPERATORS = {
    "==": Condition.EQUAL,
    "!=": Condition.NOT_EQUAL,
    "<": Condition.LESS_THAN,
    "<=": Condition.LESS_THAN_OR_EQUAL,
    ">": Condition.GREATER_THAN,
    ">=": Condition.GREATER_THAN_OR_EQUAL,
}

ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
spaces = st.sampled_from(["", " ", "  "])
addresses = st.binary(min_size=20, max_size=20).filter(any)


def bad_input(text: str) -> pytest.RaisesExc[BadInputError]:
    """``pytest.raises(BadInputError)`` whose message contains ``text`` as is."""
    return pytest.raises(BadInputError, match=re.escape(text))


# --------------------------------------------------------------------------------------------------
# parse_duration
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("1w", 604_800),
        ("1w2d3h4m5s", 604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5),
        ("1 h 30 m", 5400),
        (" 1H30M ", 5400),
        ("007", 7),
        ("0h1s", 1),
    ],
)
def test_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "1.5h", "-5", "1h30", "one hour", "1 hour", "5ms"])
def test_duration_not_understood(text: str) -> None:
    with bad_input(f"{text!r} is not a duration: give seconds or a number with a unit"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0", "0s", "0h0m", "000"])
def test_duration_of_zero(text: str) -> None:
    with bad_input(f"the duration {text!r} must be longer than 0 seconds"):
        parse_duration(text)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.tuples(*(st.integers(0, 500) for _ in range(5))).filter(any),
    upper=st.booleans(),
    gap=spaces,
)
def test_duration_adds_its_parts(parts: tuple[int, ...], upper: bool, gap: str) -> None:
    units = ("w", "d", "h", "m", "s")
    text = gap.join(
        f"{n}{gap}{unit.upper() if upper else unit}" for n, unit in zip(parts, units, strict=True) if n
    )
    weeks, days, hours, minutes, seconds = parts
    expected = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    assert parse_duration(text) == expected


@settings(max_examples=100, deadline=None)
@given(seconds=st.integers(1, 10**12), gap=spaces)
def test_duration_in_plain_seconds(seconds: int, gap: str) -> None:
    assert parse_duration(f"{gap}{seconds}{gap}") == seconds
    assert parse_duration(f"{seconds}{gap}s") == seconds


@settings(max_examples=300, deadline=None)
@given(text=ascii_text)
def test_duration_is_positive_or_bad_input(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except BadInputError as error:
        assert repr(text) in str(error)
    else:
        assert seconds > 0


def test_duration_of_a_superscript_digit() -> None:
    with bad_input("'²' is not a duration"):
        parse_duration("²")


# --------------------------------------------------------------------------------------------------
# parse_amount
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wei"),
    [
        ("0", 0),
        ("1000", 1000),
        ("1_000_000", 1_000_000),
        ("0x3e8", 1000),
        ("0X3E8", 1000),
        ("7 wei", 7),
        ("10gwei", 10 * GWEI),
        ("10 GWEI", 10 * GWEI),
        ("1.5 gwei", 1_500_000_000),
        ("0.5ether", 5 * 10**17),
        ("0.5 ether", 5 * 10**17),
        (" 2 ETHER ", 2 * ETHER),
        ("1 eth", ETHER),
        ("0.000000000000000001 ether", 1),
        ("1e18", ETHER),
        ("1E3", 1000),
        ("2e9 wei", 2 * GWEI),
        ("1.0", 1),
    ],
)
def test_amount(text: str, wei: int) -> None:
    assert parse_amount(text) == wei


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not an integer (a number, optionally with wei, gwei or ether)"),
        ("abc", "is not an integer (a number, optionally with wei, gwei or ether)"),
        ("-1", "must not be negative"),
        ("-0x10", "must not be negative"),
        ("-1 ether", "must not be negative"),
        ("2 finney", "is not an integer (a number, optionally with wei, gwei or ether)"),
        (".5 ether", "is not an integer (a number, optionally with wei, gwei or ether)"),
        ("1e-3 ether", "is not an integer (a number, optionally with wei, gwei or ether)"),
        ("1.5", "is not a whole number of wei"),
        ("0.5 gwei1", "is not an integer"),
        ("0.0000000000000000001 ether", "is not a whole number of wei"),
        ("0x", "is not a number"),
        ("0xZZ", "is not a number"),
    ],
)
def test_amount_refused(text: str, problem: str) -> None:
    with bad_input(f"amount: {text!r} {problem}"):
        parse_amount(text)


def test_amount_error_names_the_option() -> None:
    with bad_input("--value: '1.5' is not a whole number of wei"):
        parse_amount("1.5", "--value")


def test_a_fraction_without_a_unit_says_it_counts_wei_and_how_to_write_ether() -> None:
    """``create_account --fund 0.1`` (meant in ether) was refused as "not a whole number of wei" only."""
    with pytest.raises(BadInputError) as info:
        parse_amount("0.1", "--fund")
    assert str(info.value) == (
        "--fund: '0.1' is not a whole number of wei: a number without a unit counts wei; for ether, write 0.1ether"
    )
    with pytest.raises(BadInputError) as info:
        parse_amount("1.5 wei", "--fund")
    assert str(info.value) == "--fund: '1.5 wei' is not a whole number of wei"
    assert parse_amount("0.1ether") == ETHER // 10
    with pytest.raises(BadInputError) as info:  # a call's argument, a count say, gets no word of ether
        parse_call_args("f(uint256 count)", ["1.5"], {})
    assert str(info.value) == "argument count (uint256): '1.5' is not a whole number"  # no unit: not "of wei"


@settings(max_examples=200, deadline=None)
@given(wei=st.integers(0, DECIMAL_MAX))
def test_amount_in_decimal(wei: int) -> None:
    assert parse_amount(str(wei)) == wei
    assert parse_amount(f"{wei:_}") == wei
    assert parse_amount(f"{wei} wei") == wei


@settings(max_examples=200, deadline=None)
@given(wei=st.integers(0, UINT256_MAX), upper=st.booleans())
def test_amount_in_hex(wei: int, upper: bool) -> None:
    text = hex(wei).upper().replace("0X", "0x") if upper else hex(wei)
    assert parse_amount(text) == wei


@settings(max_examples=200, deadline=None)
@given(
    whole=st.integers(0, 10**9),
    fraction=st.integers(0, 10**18 - 1),
    places=st.integers(1, 18),
    unit=st.sampled_from(["ether", "eth", "ETH", "Ether"]),
    gap=spaces,
)
def test_amount_in_ether(whole: int, fraction: int, places: int, unit: str, gap: str) -> None:
    fraction %= 10**places
    text = f"{whole}.{fraction:0{places}d}{gap}{unit}"
    assert parse_amount(text) == whole * ETHER + fraction * 10 ** (18 - places)


@settings(max_examples=100, deadline=None)
@given(gwei=st.integers(0, 10**18), gap=spaces)
def test_amount_in_gwei(gwei: int, gap: str) -> None:
    assert parse_amount(f"{gwei}{gap}gwei") == gwei * GWEI


@settings(max_examples=100, deadline=None)
@given(wei=st.integers(1, GWEI - 1).filter(lambda n: n % 10))
def test_amount_below_one_wei_is_refused(wei: int) -> None:
    text = f"0.{wei:09d} wei"
    with bad_input(f"amount: {text!r} is not a whole number of wei"):
        parse_amount(text)


@settings(max_examples=300, deadline=None)
@given(text=ascii_text)
def test_amount_is_an_integer_or_bad_input(text: str) -> None:
    try:
        wei = parse_amount(text)
    except BadInputError as error:
        assert str(error).startswith(
            (
                f"amount: {text!r} is not ",
                f"amount: {text!r} is too large",
                f"amount: {text!r} must not be negative",
            )
        )
        plain = text.strip().replace("_", "")
        negative_number = plain.startswith("-") and plain[1:].strip()[:1].isdigit()
        assert ("must not be negative" in str(error)) == negative_number
    else:
        assert isinstance(wei, int)
        assert 0 <= wei < 2**256


@pytest.mark.parametrize(
    "text",
    ["1e1000000", "1e78", "115792089237316195423570985008687907853269984665640564039457584007913129639936"],
)
def test_amount_past_a_256_bit_word_is_refused(text: str) -> None:
    with bad_input(f"amount: {text!r} is too large"):
        parse_amount(text)


@pytest.mark.parametrize("wei", [UINT256_MAX, 10**28 + 1, 1_234_567_890_123_456_789_012_345_678_901])
def test_amount_of_more_than_28_digits(wei: int) -> None:
    assert parse_amount(str(wei)) == wei


@given(st.integers(min_value=0, max_value=UINT256_MAX), st.sampled_from([0, 9, 18]))
def test_amount_with_a_unit_is_exact(wei: int, decimals: int) -> None:
    """Any wei amount written in gwei or ether (as many decimals as it takes) reads back exactly."""
    unit = {0: "wei", 9: "gwei", 18: "ether"}[decimals]
    whole, fraction = divmod(wei, 10**decimals)
    text = str(whole) + (f".{fraction:0{decimals}d}" if decimals else "")
    assert parse_amount(f"{text} {unit}") == wei


@pytest.mark.parametrize(
    ("signature", "text"),
    [("f(uint8 x)", "256"), ("f(uint8 x)", "300"), ("f(int8 x)", "-129"), ("f(int8 x)", "128")],
)
def test_integer_argument_out_of_its_type_range_is_refused(signature: str, text: str) -> None:
    with bad_input("is out of range for"):
        parse_call_args(signature, [text])


def test_integer_in_a_json_array_out_of_range_is_refused() -> None:
    with bad_input("is out of range for uint8"):
        parse_call_args("f(uint8[] xs)", ["[1, 256]"])


# --------------------------------------------------------------------------------------------------
# resolve_address
# --------------------------------------------------------------------------------------------------


def test_address_by_name() -> None:
    assert resolve_address("nft", NAMES) == NFT
    assert resolve_address(" account ", NAMES) == ACCOUNT


def test_address_in_hex() -> None:
    assert resolve_address(NFT.lower(), NAMES) == NFT
    assert resolve_address("0x" + NFT[2:].upper(), NAMES) == NFT
    assert resolve_address(NFT, {}) == NFT


def test_address_that_is_not_one() -> None:
    with bad_input(
        "target: '0x1234' is not an address (expected 0x and 40 hex digits): give 0x and 40 hex digits (all "
        "lowercase, or with a correct EIP-55 checksum), or one of the names account, nft"
    ):
        resolve_address("0x1234", NAMES, "target")


def test_address_that_is_no_name() -> None:
    with pytest.raises(BadInputError) as raised:
        resolve_address("bob", {})
    message = str(raised.value)
    assert message.startswith("address: 'bob' is not an address (expected 0x and 40 hex digits)")
    assert "one of the names" not in message


def test_address_with_a_bad_checksum() -> None:
    at = next(i for i in range(len(NFT) - 1, 1, -1) if NFT[i].isalpha())
    wrong = NFT[:at] + NFT[at].swapcase() + NFT[at + 1 :]
    with bad_input(f"target: {wrong!r} is not an address (bad EIP-55 checksum (did you mean {NFT}?))"):
        resolve_address(wrong, NAMES, "target")


def test_zero_address() -> None:
    with bad_input("target is the zero address: give a contract address"):
        resolve_address(ZERO_ADDRESS, NAMES, "target")
    with bad_input("zero address"):
        resolve_address("zero", {"zero": ZERO_ADDRESS})


@settings(max_examples=200, deadline=None)
@given(raw=addresses, upper=st.booleans())
def test_address_reads_as_its_checksum(raw: bytes, upper: bool) -> None:
    digits = raw.hex().upper() if upper else raw.hex()
    checksummed = to_address(raw)
    assert resolve_address("0x" + digits, {}) == checksummed
    assert resolve_address(checksummed, {}) == checksummed
    assert resolve_address("mine", {"mine": checksummed}) == checksummed


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789abcdef", max_size=60).filter(lambda d: len(d) != 40))
def test_address_of_a_wrong_length(digits: str) -> None:
    text = "0x" + digits
    with bad_input(f"address: {text!r} is not an address (expected 0x and 40 hex digits)"):
        resolve_address(text, NAMES)


# --------------------------------------------------------------------------------------------------
# parse_call_args
# --------------------------------------------------------------------------------------------------


def test_call_args() -> None:
    assert parse_call_args(TRANSFER, ["nft", "1 gwei"], NAMES) == [NFT, GWEI]
    assert parse_call_args(parse_signature(TRANSFER), [ACCOUNT.lower(), "0x10"]) == [ACCOUNT, 16]
    assert parse_call_args("ping()", []) == []


def test_call_args_of_each_type() -> None:
    function = "f(int8 x,bool b,bytes4 s,bytes d,string t,address a)"
    args = ["-5", "yes", "0x01020304", "0x", "hello world", "account"]
    assert parse_call_args(function, args, NAMES) == [
        -5,
        True,
        b"\x01\x02\x03\x04",
        b"",
        "hello world",
        ACCOUNT,
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("No", False),
    ],
)
def test_call_args_bool(text: str, value: bool) -> None:
    assert parse_call_args("f(bool b)", [text]) == [value]


def test_call_args_signed() -> None:
    assert parse_call_args("f(int256 a,int256 b)", ["-0x10", "-1 gwei"]) == [-16, -GWEI]


def test_call_args_arrays_and_tuples() -> None:
    assert parse_call_args("f(uint256[2] xs)", ["[1, 2]"]) == [[1, 2]]
    assert parse_call_args("f(uint256[] xs)", ['[1, "0x10", "1 gwei"]']) == [[1, 16, GWEI]]
    assert parse_call_args("f(bool[] b)", ["[true, false]"]) == [[True, False]]
    assert parse_call_args("f((address a,uint256 n) o)", ['["nft", 5]'], NAMES) == [(NFT, 5)]
    assert parse_call_args("f((address,uint256)[] os)", ['[["nft", 1], ["account", "2"]]'], NAMES) == [
        [(NFT, 1), (ACCOUNT, 2)]
    ]


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        (
            TRANSFER,
            ["nft"],
            "transfer(address,uint256) takes 2 argument(s) (to (address), amount (uint256)), got 1",
        ),
        ("ping()", ["1"], "ping() takes 0 argument(s) (none), got 1"),
        ("f(bool b)", ["maybe"], "argument b (bool): 'maybe' is not a bool: give true or false"),
        ("f(bytes4 b)", ["0x01"], "argument b (bytes4): bytes4 takes exactly 4 bytes, got 1"),
        ("f(uint256 n)", ["abc"], "argument n (uint256): 'abc' is not an integer"),
        ("f(uint256 n)", ["-1"], "argument n (uint256): '-1' must not be negative"),
        ("f(uint256 n)", ["1.5"], "argument n (uint256): '1.5' is not a whole number"),
        ("f(address a)", ["0x1234"], "argument a (address): '0x1234' is not an address"),
        ("f(address a)", ["bob"], "or one of the names account, nft"),
        (
            "f(uint256[] b)",
            ["1,2"],
            "argument b (uint256[]): give the uint256[] value as a JSON list, e.g. '[1, 2]'",
        ),
        ("f(uint256[2] xs)", ["[1]"], "argument xs (uint256[2]): uint256[2] takes 2 items, got 1"),
        ("f(uint256[] xs)", ["[true]"], "argument xs (uint256[])[0]: expected a uint256 value, got True"),
        ("f(uint256[] xs)", ['[1, "x"]'], "argument xs (uint256[])[1]: 'x' is not an integer"),
        (
            "f((address a,uint256 n) o)",
            ['["nft"]'],
            "argument o ((address,uint256)): (address,uint256) has 2",
        ),
        (
            "f((address a,uint256 n) o)",
            ['["nft", "z"]'],
            "argument o ((address,uint256)).n: 'z' is not an integer",
        ),
        ("f(uint256)", ["q"], "argument 0 (uint256): 'q' is not an integer"),
        ("f(function x)", ["1"], "argument x (function): values of type function are not supported"),
    ],
)
def test_call_args_refused(function: str, args: list[str], message: str) -> None:
    with bad_input(message):
        parse_call_args(function, args, NAMES)


def test_call_args_of_a_bad_signature() -> None:
    with pytest.raises(InvalidAbiError, match="expected '\\('"):
        parse_call_args("not a signature", [])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, DECIMAL_MAX), min_size=1, max_size=5), hexadecimal=st.booleans())
def test_call_args_uint_list(values: list[int], hexadecimal: bool) -> None:
    texts = [hex(v) if hexadecimal else str(v) for v in values]
    assert parse_call_args(f"f(uint256[{len(values)}] a)", [json.dumps(texts)]) == [values]
    assert parse_call_args("f(uint256[] a)", [json.dumps(values)]) == [values]
    function = "f(" + ",".join(f"uint256 a{i}" for i in range(len(values))) + ")"
    assert parse_call_args(function, texts) == values


@settings(max_examples=200, deadline=None)
@given(value=st.integers(-(2**255), 2**255 - 1))
def test_call_args_int256_in_hex(value: int) -> None:
    text = f"-{hex(-value)}" if value < 0 else hex(value)
    assert parse_call_args("f(int256 a)", [text]) == [value]


@settings(max_examples=200, deadline=None)
@given(value=st.integers(-DECIMAL_MAX, DECIMAL_MAX))
def test_call_args_int256_in_decimal(value: int) -> None:
    assert parse_call_args("f(int256 a)", [str(value)]) == [value]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=32), dynamic=st.booleans())
def test_call_args_bytes(data: bytes, dynamic: bool) -> None:
    kind = "bytes" if dynamic else f"bytes{len(data)}"
    assert parse_call_args(f"f({kind} b)", ["0x" + data.hex()]) == [data]


@settings(max_examples=100, deadline=None)
@given(raw=addresses, text=st.text(max_size=30))
def test_call_args_address_and_string(raw: bytes, text: str) -> None:
    assert parse_call_args("f(address a,string s)", ["0x" + raw.hex(), text]) == [to_address(raw), text]


# --------------------------------------------------------------------------------------------------
# parse_rule
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "condition"), list(OPERATORS.items()))
def test_rule_of_each_comparison(symbol: str, condition: Condition) -> None:
    for text in (f"amount{symbol}1000", f"amount {symbol} 1000", f"1{symbol}1000", f" amount{symbol} 0x3e8 "):
        spec = parse_rule(text, TRANSFER)
        assert spec.op == condition
        assert spec.values == (1000,)
        assert spec.ref.path == (("amount",) if text.strip().startswith("amount") else (1,))
        assert spec.resolve(parse_signature(TRANSFER)) == Rule(
            condition=condition, offset=32, values=(1000,), name="amount"
        )


def test_rule_on_an_address() -> None:
    spec = parse_rule("to==nft", TRANSFER, NAMES)
    assert (spec.ref.path, spec.op, spec.values) == (("to",), Condition.EQUAL, (NFT,))
    spec = parse_rule(f"0 != {ACCOUNT.lower()}", TRANSFER)
    assert (spec.ref.path, spec.op, spec.values) == ((0,), Condition.NOT_EQUAL, (ACCOUNT,))


def test_rule_with_a_unit() -> None:
    spec = parse_rule("amount <= 1.5 gwei", TRANSFER)
    assert (spec.op, spec.values) == (Condition.LESS_THAN_OR_EQUAL, (1_500_000_000,))


@pytest.mark.parametrize("text", ["amount in 1..5", "amount in 1 .. 5", "amount IN 1..5", "1 in 0x1..5"])
def test_rule_in_a_range(text: str) -> None:
    spec = parse_rule(text, TRANSFER)
    assert spec.op == Condition.IN_RANGE
    assert spec.values == (1, 5)
    assert spec.resolve(parse_signature(TRANSFER)) == Rule(
        condition=Condition.IN_RANGE, offset=32, values=(1, 5), name="amount"
    )


@pytest.mark.parametrize(
    "text",
    ["to one of nft,account", "to oneof nft, account", "to ONE OF nft , account", "0 one of nft,account,"],
)
def test_rule_one_of(text: str) -> None:
    spec = parse_rule(text, TRANSFER, NAMES)
    assert spec.op == Condition.ONE_OF
    assert spec.values == (NFT, ACCOUNT)


def test_rule_on_a_component() -> None:
    cases = {
        "o.n<=5": (("o", "n"), Condition.LESS_THAN_OR_EQUAL, (5,), 32),
        "o.a==nft": (("o", "a"), Condition.EQUAL, (NFT,), 0),
        "0.1==7": ((0, 1), Condition.EQUAL, (7,), 32),
        "xs.2 in 1..9": (("xs", 2), Condition.IN_RANGE, (1, 9), 4 * 32),
    }
    for text, (path, condition, values, offset) in cases.items():
        spec = parse_rule(text, NESTED, NAMES)
        assert (spec.ref.path, spec.op, spec.values) == (path, condition, values)
        assert spec.resolve(parse_signature(NESTED)).offset == offset


def test_rule_on_a_signed_argument() -> None:
    spec = parse_rule("i in -5..5", NESTED)
    assert (spec.op, spec.values) == (Condition.IN_RANGE, (-5, 5))
    rule = spec.resolve(parse_signature(NESTED))
    assert rule.condition == Condition.IN_RANGE and rule.is_signed  # the argument's intN type: signed order
    assert rule.values == (2**256 - 5, 5)


@pytest.mark.parametrize(
    "text", ["amount = 5", "amount", "amount in 1..", "==5", "", "amount =< 5", "amount in 5"]
)
def test_rule_not_understood(text: str) -> None:
    with bad_input(
        f"rule {text!r} is not understood: write ARG==VALUE (also !=, <, <=, >, >=), 'ARG in LOW..HIGH' or 'ARG "
        "one of V1,V2,...', where ARG is an argument name or index"
    ):
        parse_rule(text, TRANSFER, NAMES)


@pytest.mark.parametrize(
    ("text", "function", "message"),
    [
        (
            "bogus==1",
            TRANSFER,
            "rule 'bogus==1': function transfer(address,uint256) has no argument named 'bogus'",
        ),
        (
            "5==1",
            TRANSFER,
            "rule '5==1': function transfer(address,uint256) has 2 arguments: index 5 is out of range",
        ),
        ("to==0x1234", TRANSFER, "rule 'to==0x1234' (to: address): '0x1234' is not an address"),
        ("to==bob", TRANSFER, "rule 'to==bob' (to: address): 'bob' is not an address"),
        ("amount==abc", TRANSFER, "rule 'amount==abc' (amount: uint256): 'abc' is not an integer"),
        ("amount<=-1", TRANSFER, "rule 'amount<=-1' (amount: uint256): '-1' must not be negative"),
        ("amount in 1..x", TRANSFER, "rule 'amount in 1..x' (amount: uint256): 'x' is not an integer"),
        ("amount one of 1,z", TRANSFER, "rule 'amount one of 1,z' (amount: uint256): 'z' is not an integer"),
        ("amount one of ,", TRANSFER, "rule 'amount one of ,' (amount: uint256): 'one of' needs values"),
        ("o==1", NESTED, "rule 'o==1': `o` is a (address,uint256) taking 64 bytes"),
        ("xs==1", NESTED, "rule 'xs==1': `xs` is a uint256[3] taking 96 bytes"),
        (
            "xs.3==1",
            NESTED,
            "rule 'xs.3==1': `xs` is a uint256[3]: index it with an integer from 0 to 2, got 3",
        ),
        ("o.zz==1", NESTED, "rule 'o.zz==1': `o` ((address,uint256)) has no component named 'zz'"),
        ("data==0x01", NESTED, "rule 'data==0x01': `data` is a bytes in"),
        ("s==x", NESTED, "rule 's==x': `s` is a string in"),
    ],
)
def test_rule_refused(text: str, function: str, message: str) -> None:
    with bad_input(message):
        parse_rule(text, function, NAMES)


def test_rule_of_a_bad_signature() -> None:
    with pytest.raises(InvalidAbiError, match="cannot read 'not a signature'"):
        parse_rule("x==1", "not a signature")


@settings(max_examples=200, deadline=None)
@given(
    symbol=st.sampled_from(sorted(OPERATORS)),
    value=st.integers(0, DECIMAL_MAX),
    by_index=st.booleans(),
    hexadecimal=st.booleans(),
    before=spaces,
    after=spaces,
)
def test_rule_comparison_property(
    symbol: str, value: int, by_index: bool, hexadecimal: bool, before: str, after: str
) -> None:
    ref = "1" if by_index else "amount"
    text = f"{ref}{before}{symbol}{after}{hex(value) if hexadecimal else value}"
    spec = parse_rule(text, TRANSFER)
    assert spec.ref.path == ((1,) if by_index else ("amount",))
    assert (spec.op, spec.values) == (OPERATORS[symbol], (value,))
    assert spec.resolve(parse_signature(TRANSFER)) == Rule(
        condition=OPERATORS[symbol], offset=32, values=(value,), name="amount"
    )


@settings(max_examples=200, deadline=None)
@given(low=st.integers(-(2**15), 2**15 - 1), high=st.integers(-(2**15), 2**15 - 1))
def test_rule_range_property(low: int, high: int) -> None:
    if low > high:  # the module would hold no value: refused as written
        with pytest.raises(BadInputError, match=f"write the low end first, 'i in {high}..{low}'"):
            parse_rule(f"i in {low}..{high}", NESTED)
        return
    spec = parse_rule(f"i in {low}..{high}", NESTED)
    assert (spec.ref.path, spec.op, spec.values) == (("i",), Condition.IN_RANGE, (low, high))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(addresses, min_size=1, max_size=8), spaced=st.booleans())
def test_rule_one_of_property(values: list[bytes], spaced: bool) -> None:
    text = "to one of " + (", " if spaced else ",").join("0x" + raw.hex() for raw in values)
    spec = parse_rule(text, TRANSFER)
    assert (spec.ref.path, spec.op) == (("to",), Condition.ONE_OF)
    assert spec.values == tuple(to_address(raw) for raw in values)


@settings(max_examples=300, deadline=None)
@given(text=ascii_text)
def test_rule_is_a_spec_or_bad_input(text: str) -> None:
    try:
        spec = parse_rule(text, TRANSFER, NAMES)
    except BadInputError as error:
        assert f"rule {text!r}" in str(error)
    else:
        assert spec.op in Condition


@pytest.mark.parametrize("text", ["1m1h", "1h1h", "30s1m", "1d2w"])
def test_duration_units_out_of_order_or_repeated_are_refused(text: str) -> None:
    with bad_input(f"{text!r} is not a duration: give each unit once, largest first"):
        parse_duration(text)


def test_lifetime_limit_texts() -> None:
    """The grant command's limit options: counts and budgets with an optional period, totals on a named argument,
    and a clear error for each malformed text."""
    from keyscope.cli.parsing import parse_budget, parse_count, parse_total

    assert parse_count("10", "--calls") == (10, None)
    assert parse_count("10/hour", "--rate") == (10, 3600)
    assert parse_budget("0.1ether/day", "--native-total") == (10**17, 86400)
    assert parse_budget("5000", "--gas-budget") == (5000, None)
    transfer = parse_signature("transfer(address to,uint256 amount)")
    total = parse_total("amount<=5000000/day", transfer)
    assert (total.amount, total.period) == (5_000_000, 86400)
    for call, message in [
        (lambda: parse_count("0", "--calls"), "not a positive whole number"),
        (lambda: parse_count("ten/hour", "--rate"), "not a positive whole number"),
        (lambda: parse_count("10/fortnight", "--rate"), "unknown period"),
        (lambda: parse_budget("0/day", "--native-total"), "must be more than 0"),
        (lambda: parse_total("amount>=5", transfer), "ARGUMENT<=AMOUNT"),
        (lambda: parse_total("value<=5", transfer), "has no argument 'value' (its arguments: to, amount)"),
    ]:
        with pytest.raises(BadInputError, match=re.escape(message)):
            call()


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        (
            "count in 3..1",
            "the range's low end 3 is above its high end 1: write the low end first, 'count in 1..3'",
        ),
        (
            "delta in 5..-5",
            "the range's low end 5 is above its high end -5: write the low end first, 'delta in -5..5'",
        ),
    ],
)
def test_a_range_written_high_end_first_says_so_as_written(rule: str, said: str) -> None:
    """``--rule "count in 3..1"`` was refused later, by the SDK, as "in_range(3, 1) has low above high", naming
    neither the rule as written nor what to write."""
    with pytest.raises(BadInputError) as info:
        parse_rule(rule, "f(uint256 count, int8 delta)")
    assert str(info.value).startswith(f"rule {rule!r} (") and str(info.value).endswith(said), info.value
