"""The off-chain policy checker: every check the module makes, at its boundaries, in the module's order.

The expected verdicts here come from the module's rules written out directly (Python comparisons on uint256
or int256 words); ``test_differential.py`` checks the same checker against the deployed module.
"""

from __future__ import annotations

import json
import operator
import statistics
import time

import pytest
from eth_abi import encode as abi_encode
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope.checker import VALUE_LIMIT_MAX, CallRefusedError, CheckResult, PolicyChecker, check
from keyscope.clock import utc_moment
from keyscope.errors import (
    BadInputError,
    GasCostTooHighError,
    InvalidFieldsError,
    LimitExceededError,
    PolicyViolationError,
    SessionExpiredError,
    SessionNotYetValidError,
    SessionRevokedError,
)
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute
from keyscope.grant import SessionGrant
from keyscope.hexutil import keccak, to_address
from keyscope.policy import Policy, arg
from keyscope.session import SIGNED, ArgType, Condition, Limit, LimitKind, Meter, Permission, Rule, Session
from keyscope.userop import UserOperation
from support.smuggling import smuggling_encodings

U256 = 2**256 - 1
ACCOUNT = to_address("0x" + "a1" * 20)
MODULE = to_address("0x" + "b2" * 20)
NFT = to_address("0x" + "c3" * 20)
TOKEN = to_address("0x" + "d4" * 20)
USER = to_address("0x" + "e5" * 20)
OTHER = to_address("0x" + "f6" * 20)
KEY = to_address("0x" + "17" * 20)
T0 = 1_700_000_000
SELECTOR = bytes.fromhex("12345678")

MINT = Policy.call(NFT, "safeMint(address to)", rules=[arg("to") == USER])
PAY = Policy.call(
    TOKEN, "transfer(address to,uint256 amount)", rules=[arg("to") == USER, arg("amount") <= 1000]
)


def session(*permissions: Permission, valid_after: int = 0, valid_until: int = 0) -> Session:
    return Session(session_key=KEY, valid_after=valid_after, valid_until=valid_until, permissions=permissions)


def checker(*permissions: Permission, **window: int) -> PolicyChecker:
    return PolicyChecker(session(*permissions, **window), ACCOUNT, MODULE)


def mint(to: str = USER, value: int = 0) -> Call:
    return Call.of(NFT, value, MINT.selector + abi_encode(["address"], [to]))


def pay(to: str = USER, amount: int = 1, value: int = 0) -> Call:
    return Call.of(TOKEN, value, PAY.selector + abi_encode(["address", "uint256"], [to, amount]))


def refusal(run, reason: str) -> CallRefusedError:
    with pytest.raises(CallRefusedError) as info:
        run()
    assert info.value.reason == reason, info.value
    return info.value


def signed(word: int) -> int:
    return word - 2**256 if word >> 255 else word


ORDERED = {
    Condition.LESS_THAN: operator.lt,
    Condition.LESS_THAN_OR_EQUAL: operator.le,
    Condition.GREATER_THAN: operator.gt,
    Condition.GREATER_THAN_OR_EQUAL: operator.ge,
}


def expected_holds(rule: Rule, word: int) -> bool:
    """The module's rule semantics, written out: equality on words, order as uint256 or int256."""
    op, values = rule.op, rule.values
    if op == Condition.EQUAL:
        return word == values[0]
    if op == Condition.NOT_EQUAL:
        return word != values[0]
    if op == Condition.ONE_OF:
        return word in values
    as_number = signed if rule.is_signed else int
    if op == Condition.IN_RANGE:
        return as_number(values[0]) <= as_number(word) <= as_number(values[1])
    return ORDERED[op](as_number(word), as_number(values[0]))


def rule_checker(rule: Rule, value_limit: int = 0) -> PolicyChecker:
    return checker(Permission(target=TOKEN, selector=SELECTOR, value_limit=value_limit, rules=(rule,)))


def word_call(word: int, offset: int = 0, value: int = 0) -> bytes:
    return encode_execute(Call(TOKEN, value, SELECTOR + bytes(offset) + word.to_bytes(32, "big")))


def accepts(run) -> bool:
    try:
        run()
    except CallRefusedError as error:
        assert error.reason == "RuleViolated", error
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------

REFERENCES = [0, 1, 1000, 2**160, 2**223 - 1, 2**223, 2**255 - 1, 2**255, 2**256 - 2**223, U256 - 1, U256]


@pytest.mark.parametrize("op", [*ORDERED, Condition.EQUAL, Condition.NOT_EQUAL])
@pytest.mark.parametrize("is_signed", [False, True])
@pytest.mark.parametrize("reference", REFERENCES)
def test_each_condition_at_reference_minus_one_equal_and_plus_one(op, is_signed, reference):
    rule = Rule(condition=int(op) | (SIGNED if is_signed else 0), offset=0, values=(reference,))
    subject = rule_checker(rule)
    for word in ((reference - 1) % 2**256, reference, (reference + 1) % 2**256):
        assert accepts(lambda word=word: subject.check(word_call(word), now=T0)) == expected_holds(rule, word)


def test_signed_and_unsigned_order_differ_on_negative_words():
    minus_one = U256
    unsigned = rule_checker(Rule(condition=Condition.LESS_THAN, offset=0, values=(10,)))
    signed_rule = rule_checker(Rule(condition=Condition.LESS_THAN | SIGNED, offset=0, values=(10,)))
    assert not accepts(lambda: unsigned.check(word_call(minus_one), now=T0))
    assert accepts(lambda: signed_rule.check(word_call(minus_one), now=T0))
    minus_five = Rule.signed_word(-5)
    above = rule_checker(Rule(condition=Condition.GREATER_THAN | SIGNED, offset=0, values=(minus_five,)))
    assert accepts(lambda: above.check(word_call(Rule.signed_word(-4)), now=T0))
    assert not accepts(lambda: above.check(word_call(Rule.signed_word(-5)), now=T0))
    assert not accepts(lambda: above.check(word_call(Rule.signed_word(-(2**255))), now=T0))


@pytest.mark.parametrize("is_signed", [False, True])
@pytest.mark.parametrize(("low", "high"), [(0, 0), (5, 10), (0, U256), (2**255 - 3, 2**255 + 3)])
def test_in_range_includes_both_ends(is_signed, low, high):
    as_number = signed if is_signed else int
    if as_number(low) > as_number(high):
        low, high = high, low
    rule = Rule(condition=Condition.IN_RANGE | (SIGNED if is_signed else 0), offset=0, values=(low, high))
    subject = rule_checker(rule)
    for word in {(low - 1) % 2**256, low, (low + 1) % 2**256, (high - 1) % 2**256, high, (high + 1) % 2**256}:
        inside = as_number(low) <= as_number(word) <= as_number(high)
        assert accepts(lambda word=word: subject.check(word_call(word), now=T0)) == inside


def test_signed_in_range_around_zero():
    rule = Rule(condition=Condition.IN_RANGE | SIGNED, offset=0, values=(Rule.signed_word(-5), 5))
    subject = rule_checker(rule)
    verdicts = {
        n: accepts(lambda n=n: subject.check(word_call(Rule.signed_word(n)), now=T0)) for n in range(-7, 8)
    }
    assert verdicts == {n: -5 <= n <= 5 for n in range(-7, 8)}


words = st.one_of(st.integers(0, U256), st.sampled_from(REFERENCES), st.integers(0, 64))


@st.composite
def any_rule(draw: st.DrawFn) -> Rule:
    op = draw(st.sampled_from(list(Condition)))
    flags = SIGNED if draw(st.booleans()) else 0
    if op == Condition.IN_RANGE:
        pair = sorted(draw(st.tuples(words, words)), key=signed if flags else int)
        return Rule(condition=op | flags, offset=0, values=tuple(pair))
    if op == Condition.ONE_OF:
        return Rule(
            condition=op | flags,
            offset=0,
            values=tuple(
                draw(st.lists(words, min_size=1, max_size=30))
            ),  # fits 31 words, a wide first included
        )
    return Rule(condition=op | flags, offset=0, values=(draw(words),))


@settings(max_examples=500, deadline=None)
@given(rule=any_rule(), word=words, near=st.sampled_from([-1, 0, 1]), use_reference=st.booleans())
def test_every_rule_decides_as_the_module_does(rule, word, near, use_reference):
    if use_reference:
        word = (rule.values[word % len(rule.values)] + near) % 2**256
    subject = rule_checker(rule)
    decided = accepts(lambda: subject.check(word_call(word), now=T0))
    assert decided == expected_holds(rule, word) == rule.holds(word)


@settings(max_examples=200, deadline=None)
# 30 members at most: with a first value too wide to sit inline (an extra word), 31 storage words, the most
# one permission may use
@given(members=st.lists(words, min_size=1, max_size=30, unique=True), other=words)
@example(members=[2**255 - 1, *range(29)], other=29)  # the most words one permission holds
def test_one_of_accepts_exactly_its_members(members, other):
    subject = rule_checker(Rule(condition=Condition.ONE_OF, offset=0, values=tuple(members)))
    for member in members:
        assert accepts(lambda member=member: subject.check(word_call(member), now=T0))
    assert accepts(lambda: subject.check(word_call(other), now=T0)) == (other in members)


def test_rule_violation_names_the_call_permission_rule_and_word():
    subject = checker(MINT, PAY)
    error = refusal(lambda: subject.check(encode_execute(pay(amount=1001)), now=T0), "RuleViolated")
    assert (error.call_index, error.permission_index, error.rule_index, error.actual) == (0, 1, 1, 1001)
    assert "argument `amount` must be at most 1000, got 1001" in str(error)
    assert "transfer(address,uint256) on " + TOKEN in str(error)
    error = refusal(lambda: subject.check(encode_execute(mint(OTHER)), now=T0), "RuleViolated")
    assert f"argument `to` must be {USER}, got {OTHER}" in str(error)
    assert isinstance(error, PolicyViolationError)


def test_messages_show_values_as_their_types_read_them():
    swap = Policy.call(
        TOKEN,
        "swap(int24 fee,bytes4 tag,bool flag,uint8 kind)",
        rules=[
            arg("fee") > -500,
            arg("tag") == b"\x01\x02\x03\x04",
            arg("flag") == True,  # noqa: E712 (a rule, not a truth test)
            arg("kind").in_range(1, 3),
        ],
    )
    subject = checker(swap)

    def call(fee: int, tag: bytes, flag: bool, kind: int) -> bytes:
        data = swap.selector + abi_encode(["int24", "bytes4", "bool", "uint8"], [fee, tag, flag, kind])
        return encode_execute(Call(TOKEN, 0, data))

    message = str(
        refusal(lambda: subject.check(call(-600, b"\x01\x02\x03\x04", True, 1), now=T0), "RuleViolated")
    )
    assert "argument `fee` must be more than -500, got -600" in message
    message = str(refusal(lambda: subject.check(call(0, b"\xff" * 4, True, 1), now=T0), "RuleViolated"))
    assert "argument `tag` must be 0x01020304, got 0xffffffff" in message
    message = str(
        refusal(lambda: subject.check(call(0, b"\x01\x02\x03\x04", False, 1), now=T0), "RuleViolated")
    )
    assert "argument `flag` must be true, got false" in message
    message = str(
        refusal(lambda: subject.check(call(0, b"\x01\x02\x03\x04", True, 9), now=T0), "RuleViolated")
    )
    assert "argument `kind` must be between 1 and 3 (both included), got 9" in message


def test_one_of_message_lists_the_allowed_values():
    subject = checker(Policy.call(TOKEN, "pick(uint256)", rules=[arg(0).one_of(3, 5, 8)]))
    data = keccak(b"pick(uint256)")[:4] + (4).to_bytes(32, "big")
    message = str(
        refusal(lambda: subject.check(encode_execute(Call(TOKEN, 0, data)), now=T0), "RuleViolated")
    )
    assert "argument `arg0` must be one of: 3, 5, 8, got 4" in message


# --------------------------------------------------------------------------------------------------
# Argument types: a word must be its type's canonical encoding
# --------------------------------------------------------------------------------------------------

# (kind, bits or bytes) of every shape of type: the narrowest, the widest and typical sizes
TYPES = [("uint", n) for n in (8, 16, 160, 248, 256)] + [("int", n) for n in (8, 24, 128, 248, 256)]
TYPES += [("bytes", n) for n in (1, 4, 31, 32)] + [("bool", 1)]


def type_code(kind: str, size: int) -> int:
    return {
        "uint": ArgType.uint_of,
        "int": ArgType.int_of,
        "bytes": ArgType.bytes_of,
        "bool": lambda _: ArgType.BOOL,
    }[kind](size)


def canonical_by_definition(kind: str, size: int, word: int) -> bool:
    """What ABI coder v2 accepts for the type, written out."""
    if kind == "uint":
        return word < 2**size
    if kind == "int":
        return -(2 ** (size - 1)) <= signed(word) < 2 ** (size - 1)
    if kind == "bytes":
        return word % 2 ** (8 * (32 - size)) == 0
    return word in (0, 1)


@st.composite
def typed_word(draw: st.DrawFn, kind: str, size: int, canonical: bool) -> int:
    """A word of the type (its ends, zero, anything in range), or one with a single bit of its padding flipped."""
    if kind == "bool":
        value = draw(st.sampled_from([0, 1]))
    elif kind == "uint":
        value = draw(st.one_of(st.sampled_from([0, 1, 2**size - 1]), st.integers(0, 2**size - 1)))
    elif kind == "int":
        low, high = -(2 ** (size - 1)), 2 ** (size - 1) - 1
        value = draw(st.one_of(st.sampled_from([low, -1, 0, 1, high]), st.integers(low, high))) % 2**256
    else:
        unit = 2 ** (8 * (32 - size))
        value = draw(st.integers(0, 2 ** (8 * size) - 1)) * unit
    if canonical or (kind in ("uint", "int", "bytes") and size == (32 if kind == "bytes" else 256)):
        return value
    if kind == "bytes":
        return value ^ (1 << draw(st.integers(0, 8 * (32 - size) - 1)))
    return value ^ (1 << draw(st.integers(size, 255)))


@settings(max_examples=400, deadline=None)
@given(data=st.data(), shape=st.sampled_from(TYPES), op=st.sampled_from(list(Condition)))
def test_a_word_is_judged_as_its_type_reads_it(data, shape, op):
    """Every condition on every shape of type: a dirty word is refused (NonCanonicalArgument, or RuleViolated
    under EQUAL and ONE_OF, which pass only a reference value); a canonical one meets the condition or not."""
    kind, size = shape
    values_of = typed_word(kind, size, canonical=True)
    count = {Condition.IN_RANGE: 2, Condition.ONE_OF: data.draw(st.integers(1, 4))}.get(op, 1)
    values = [data.draw(values_of) for _ in range(count)]
    if op == Condition.IN_RANGE:
        values.sort(key=signed if kind == "int" else int)
    rule = Rule(condition=op, offset=0, arg_type=type_code(kind, size), values=tuple(values))
    word = data.draw(typed_word(kind, size, canonical=data.draw(st.booleans())))
    canonical = canonical_by_definition(kind, size, word)
    assert rule.is_canonical(word) == canonical
    subject = rule_checker(rule)
    try:
        subject.check(word_call(word), now=T0)
    except CallRefusedError as error:
        if canonical:
            assert error.reason == "RuleViolated" and not expected_holds(rule, word)
        elif op in (Condition.EQUAL, Condition.ONE_OF):
            assert error.reason == "RuleViolated"
        else:
            assert error.reason == "NonCanonicalArgument" and error.actual == word
        return
    assert canonical and expected_holds(rule, word)


def test_a_dirty_word_message_names_the_type_and_the_word():
    subject = checker(Policy.call(TOKEN, "setTier(uint8 tier)", rules=[arg("tier") >= 3]))
    data = keccak(b"setTier(uint8)")[:4] + (256).to_bytes(32, "big")
    error = refusal(
        lambda: subject.check(encode_execute(Call(TOKEN, 0, data)), now=T0), "NonCanonicalArgument"
    )
    assert (error.call_index, error.permission_index, error.rule_index, error.actual) == (0, 0, 0, 256)
    message = str(error)
    assert "argument `tier` is a uint8" in message and "0x" + "00" * 30 + "0100" in message
    assert "high bytes must be zero" in message


def test_a_dirty_word_message_names_the_type_the_function_gives_its_argument():
    """An address rule has uint160's type code: where the permission's function says the argument is an address,
    the refusal says so (not "a uint160", a type the function has no argument of); an intN is "an intN". A
    permission without a function's signature can only name the code's type."""
    subject = checker(
        Policy.call(TOKEN, "set(address who,int8 delta)", rules=[arg("who") != USER, arg("delta") > -3])
    )
    selector = keccak(b"set(address,int8)")[:4]

    def said(who: int, delta: int) -> str:
        data = selector + who.to_bytes(32, "big") + delta.to_bytes(32, "big")
        return str(
            refusal(
                lambda: subject.check(encode_execute(Call(TOKEN, 0, data)), now=T0), "NonCanonicalArgument"
            )
        )

    address = said(1 << 170 | 5, 0)
    assert "argument `who` is an address, but its word" in address, address
    assert "not a canonical address encoding" in address and "uint160" not in address, address
    assert "argument `delta` is an int8, but its word" in said(5, 256)
    bare = rule_checker(Rule(condition=Condition.NOT_EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(5,)))
    message = str(refusal(lambda: bare.check(word_call(1 << 170), now=T0), "NonCanonicalArgument"))
    assert "the word at argument offset 0 is a uint160, but its word" in message, message


# --------------------------------------------------------------------------------------------------
# Gas cost: the cap counts a paymaster's gas, and lifts only for the paymasters the session lists
# --------------------------------------------------------------------------------------------------

SPONSOR = to_address("0x" + "5a" * 20)
CHARGER = to_address("0x" + "c4" * 20)


def gas_op(fee: int, paymaster: str | None = None, pm_gas: tuple[int, int] = (0, 0)) -> UserOperation:
    """100,000 + 200,000 + 50,000 gas, plus the paymaster's two limits, at ``fee`` wei per gas."""
    return UserOperation(
        sender=ACCOUNT,
        nonce=0,
        call_data=encode_execute(mint()),
        verification_gas_limit=100_000,
        call_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=fee,
        paymaster=paymaster,
        paymaster_verification_gas_limit=pm_gas[0],
        paymaster_post_op_gas_limit=pm_gas[1],
    )


def test_the_gas_cap_counts_the_paymasters_gas_and_lifts_for_listed_paymasters():
    cap = 10**15
    grant = Session(session_key=KEY, max_gas_cost=cap, paymasters=(SPONSOR,), permissions=(MINT,))
    subject = PolicyChecker(grant, ACCOUNT, MODULE)
    at_cap = cap // 350_000
    subject.check_operation(gas_op(at_cap), now=T0)
    with pytest.raises(GasCostTooHighError) as info:
        subject.check_operation(gas_op(at_cap + 1), now=T0)
    assert (info.value.cost, info.value.limit) == (350_000 * (at_cap + 1), cap)
    # another paymaster: its gas limits count, one gas over is too much
    for pm_gas in ((1, 0), (0, 1)):
        with pytest.raises(GasCostTooHighError, match=f"through paymaster {CHARGER}"):
            subject.check_gas_cost(gas_op(at_cap, CHARGER, pm_gas))
    subject.check_gas_cost(gas_op(cap // 352_000, CHARGER, (1000, 1000)))
    # the listed sponsor goes uncapped
    subject.check_operation(gas_op(1000 * 10**9, SPONSOR, (10**6, 10**6)), now=T0)
    # no cap at all: nothing to check
    PolicyChecker(session(MINT), ACCOUNT, MODULE).check_gas_cost(gas_op(10**12, CHARGER, (10**7, 10**7)))
    # the policy comes first, as in the module
    refusal(
        lambda: subject.check_operation(gas_op(at_cap + 1).replace(call_data=encode_execute(mint(OTHER)))),
        "RuleViolated",
    )


def test_sessions_list_at_most_seven_paymasters_none_zero():
    many = tuple(to_address(bytes([i]) * 20) for i in range(1, 9))
    with pytest.raises(ValueError, match="at most 7 paymasters"):
        Session(session_key=KEY, max_gas_cost=10**15, paymasters=many, permissions=(MINT,))
    with pytest.raises(ValueError, match="zero address is not a paymaster"):
        Session(session_key=KEY, max_gas_cost=10**15, paymasters=("0x" + "00" * 20,), permissions=(MINT,))
    # the paymasters take storage words after each permission's rules (when there is a cap to lift)
    wide = Policy.call(TOKEN, "pick(uint256)", rules=[arg(0).one_of(range(100, 128))])
    Session(session_key=KEY, max_gas_cost=10**15, paymasters=many[:3], permissions=(wide,))
    with pytest.raises(ValueError, match="32 storage words for its rules and the session's 4 paymasters"):
        Session(session_key=KEY, max_gas_cost=10**15, paymasters=many[:4], permissions=(wide,))
    Session(session_key=KEY, paymasters=many[:4], permissions=(wide,))


# --------------------------------------------------------------------------------------------------
# Calldata length, value limit, permissions, forbidden targets
# --------------------------------------------------------------------------------------------------


def test_calldata_must_reach_the_end_of_every_ruled_word():
    subject = checker(PAY)
    full = pay().data
    assert subject.check_calls(Call(TOKEN, 0, full), now=T0).permission_indices == (0,)
    error = refusal(lambda: subject.check_calls(Call(TOKEN, 0, full[:-1]), now=T0), "CalldataTooShort")
    assert (error.permission_index, error.rule_index) == (0, 1)
    assert "argument `amount` (bytes 36 to 68)" in str(error)
    error = refusal(lambda: subject.check_calls(Call(TOKEN, 0, full[:35]), now=T0), "CalldataTooShort")
    assert error.rule_index == 0
    error = refusal(lambda: subject.check_calls(Call(TOKEN, 0, PAY.selector), now=T0), "CalldataTooShort")
    assert error.rule_index == 0
    assert subject.check_calls(Call(TOKEN, 0, full + b"trailing bytes"), now=T0).permission_indices == (0,)


def test_a_rule_before_the_short_word_is_checked_first():
    subject = checker(PAY)
    data = pay(to=OTHER).data[:40]
    error = refusal(lambda: subject.check_calls(Call(TOKEN, 0, data), now=T0), "RuleViolated")
    assert error.rule_index == 0


@pytest.mark.parametrize("limit", [0, 1, 10**18, VALUE_LIMIT_MAX - 1])
def test_value_limit_boundary(limit):
    subject = rule_checker(Rule(condition=Condition.EQUAL, offset=0, values=(7,)), value_limit=limit)
    assert subject.check(word_call(7, value=limit), now=T0).permission_indices == (0,)
    error = refusal(lambda: subject.check(word_call(7, value=limit + 1), now=T0), "ValueLimitExceeded")
    assert (error.call_index, error.permission_index, error.rule_index) == (0, 0, None)
    assert f"sends {limit + 1} wei, over its permission's limit of {limit} wei" in str(error)


@pytest.mark.parametrize("limit", [VALUE_LIMIT_MAX, VALUE_LIMIT_MAX + 1, 2**200, U256])
def test_value_limits_saturate_at_96_bits_as_the_module_stores_them(limit):
    subject = rule_checker(Rule(condition=Condition.EQUAL, offset=0, values=(7,)), value_limit=limit)
    assert subject.check(word_call(7, value=VALUE_LIMIT_MAX), now=T0)
    error = refusal(
        lambda: subject.check(word_call(7, value=VALUE_LIMIT_MAX + 1), now=T0), "ValueLimitExceeded"
    )
    assert f"limit of {VALUE_LIMIT_MAX} wei" in str(error)


@pytest.mark.parametrize("batch", [False, True])
def test_every_byte_of_the_value_word_counts_against_the_value_limit(batch):
    """The module reads a call's value as its whole 32-byte word, single call or batch: a value whose one set bit
    is in any byte past the limit's 96 bits, the top byte and the top bit included, is over the limit."""
    subject = rule_checker(
        Rule(condition=Condition.EQUAL, offset=0, values=(7,)), value_limit=VALUE_LIMIT_MAX
    )
    for value in [1 << (8 * byte) for byte in range(12, 32)] + [1 << 255]:
        call_data = encode_execute(Call(TOKEN, value, SELECTOR + (7).to_bytes(32, "big")), batch=batch)
        error = refusal(lambda call_data=call_data: subject.check(call_data, now=T0), "ValueLimitExceeded")
        assert f"sends {value} wei" in str(error)


def test_the_value_is_checked_before_the_rules():
    error = refusal(lambda: checker(PAY).check_calls(pay(to=OTHER, value=1), now=T0), "ValueLimitExceeded")
    assert error.rule_index is None


def test_no_permission_names_the_function_and_what_the_session_allows():
    subject = checker(MINT, PAY)
    approve = Call.of(TOKEN, 0, keccak(b"approve(address,uint256)")[:4] + bytes(64))
    error = refusal(lambda: subject.check_calls([mint(), approve], now=T0), "NoPermission")
    assert (error.call_index, error.permission_index, error.rule_index) == (1, None, None)
    message = str(error)
    assert f"call 1: no permission for approve(address,uint256) (0x095ea7b3) on {TOKEN}" in message
    assert f"this session allows: safeMint(address) on {NFT}; transfer(address,uint256) on {TOKEN}" in message
    # a known selector on another target, and an unknown selector
    error = refusal(lambda: subject.check_calls(Call(OTHER, 0, pay().data), now=T0), "NoPermission")
    assert f"transfer(address,uint256) (0xa9059cbb) on {OTHER}" in str(error)
    error = refusal(lambda: subject.check_calls(Call(TOKEN, 0, b"\xde\xad\xbe\xef"), now=T0), "NoPermission")
    assert "selector 0xdeadbeef" in str(error)


def test_plain_transfers_need_a_transfer_permission():
    tip = Policy.transfer(USER, value_limit=10**16)
    subject = checker(MINT, tip)
    assert subject.check_calls(Call.of(USER, 10**16), now=T0).permission_indices == (1,)
    refusal(lambda: subject.check_calls(Call.of(USER, 10**16 + 1), now=T0), "ValueLimitExceeded")
    error = refusal(lambda: checker(MINT).check_calls(Call.of(USER, 1), now=T0), "NoPermission")
    assert "a plain transfer" in str(error)
    # selector 0x00000000 names empty calldata only: four zero bytes and arguments would reach the fallback
    for data in (bytes(4), bytes(4) + b"anything"):
        error = refusal(
            lambda data=data: subject.check_calls(Call(USER, 10, data), now=T0), "ZeroSelectorCall"
        )
        assert error.call_index == 0 and "0x00000000" in str(error) and "plain transfer" in str(error)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_one_to_three_bytes_of_calldata_are_refused(size):
    subject = checker(Policy.transfer(USER, 1))
    error = refusal(lambda: subject.check_calls(Call(USER, 0, b"\x01" * size), now=T0), "InvalidCallData")
    assert f"call 0 has {size} bytes of calldata" in str(error)


@pytest.mark.parametrize("target", [ACCOUNT, MODULE])
def test_calls_to_the_account_or_the_module_are_forbidden(target):
    subject = checker(MINT, Policy.transfer(OTHER, 1))
    error = refusal(lambda: subject.check_calls([mint(), Call(target, 0, b"")], now=T0), "ForbiddenTarget")
    assert error.call_index == 1
    assert target in str(error)
    # forbidden even with a permission naming it (the module never stores one)
    own = checker(Permission(target=target, selector=bytes(4)))
    refusal(lambda: own.check_calls(Call(target, 0, b""), now=T0), "ForbiddenTarget")


def test_forbidden_target_comes_before_the_calldata_checks():
    subject = checker(MINT)
    refusal(lambda: subject.check_calls(Call(ACCOUNT, 0, b"\x01"), now=T0), "ForbiddenTarget")


# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------


def test_a_batch_reports_its_first_bad_call():
    subject = checker(MINT, PAY)
    calls = [mint(), pay(amount=5000), mint(OTHER)]
    error = refusal(lambda: subject.check_calls(calls, now=T0), "RuleViolated")
    assert (error.call_index, error.permission_index, error.rule_index) == (1, 1, 1)
    assert subject.check_calls([mint(), pay(), mint()], now=T0).permission_indices == (0, 1, 0)


def test_a_bad_call_is_reported_before_a_later_malformed_element():
    subject = checker(MINT, PAY)
    data = bytearray(encode_execute([mint(), pay(amount=5000), mint()]))
    # break the third element's data offset word (execution starts at 100; offsets at 164 + 32 i)
    third = 164 + int.from_bytes(data[164 + 64 : 164 + 96], "big")
    data[third + 64 : third + 96] = (0x61).to_bytes(32, "big")
    error = refusal(lambda: subject.check(bytes(data), now=T0), "RuleViolated")
    assert error.call_index == 1
    with pytest.raises(ExecuteDecodeError):
        decode_execute(bytes(data))
    fine = bytearray(encode_execute([mint(), pay(), mint()]))
    fine[third + 64 : third + 96] = (0x61).to_bytes(32, "big")
    with pytest.raises(ExecuteDecodeError, match="call 2"):
        subject.check(bytes(fine), now=T0)


def test_single_and_batch_modes_and_try_execution_agree():
    subject = checker(MINT)
    for call_data in (
        encode_execute(mint()),
        encode_execute(mint(), batch=True),
        encode_execute(mint(), exec_type=1),
        encode_execute([mint(), mint()], exec_type=1),
    ):
        assert subject.check(call_data, now=T0).permission_indices[0] == 0


# --------------------------------------------------------------------------------------------------
# The execute encoding
# --------------------------------------------------------------------------------------------------


def _with(data: bytes, position: int, replacement: bytes) -> bytes:
    return data[:position] + replacement + data[position + len(replacement) :]


GOOD = encode_execute(mint())
GOOD_BATCH = encode_execute([mint(), mint()])


def _dirty_padding() -> bytes:
    """A batch whose first call's data (35 bytes) is followed by a nonzero byte in its padding."""
    data = bytearray(encode_execute([Call(NFT, 0, mint().data[:35]), mint()]))
    first_data = 164 + int.from_bytes(data[164:196], "big") + 128
    data[first_data + 40] = 0xAA
    return bytes(data)


def _cut_batch() -> bytes:
    """A batch whose executionCalldata length leaves out the last 5 bytes of its last call's padding (its data is 36
    bytes; the 5 follow as zero bytes, as a padding of executionCalldata would)."""
    data = GOOD_BATCH
    return _with(data, 68, (int.from_bytes(data[68:100], "big") - 5).to_bytes(32, "big"))


MALFORMED = {
    "too short for the head": GOOD[:99],
    "another selector": _with(GOOD, 0, b"\xde\xad\xbe\xef"),
    "delegatecall": _with(GOOD, 4, b"\xff"),
    "call type 2": _with(GOOD, 4, b"\x02"),
    "exec type 2": _with(GOOD, 5, b"\x02"),
    "a mode selector": _with(GOOD, 10, b"\x01"),
    "a mode payload": _with(GOOD, 35, b"\x01"),
    "offset 0x60": _with(GOOD, 36, (0x60).to_bytes(32, "big")),
    "length past the end": _with(GOOD, 68, (len(GOOD) - 99).to_bytes(32, "big")),
    "single under 52 bytes": _with(GOOD, 68, (51).to_bytes(32, "big")),
    # the whole of a 51-byte execution, padded: its value word is one byte short, and no bytes follow it
    "a single execution of 51 bytes": GOOD[:68] + (51).to_bytes(32, "big") + GOOD[100:151] + bytes(13),
    # call types the module does not run, on a batch's encoding (a single's would fail as a batch anyway)
    "call type 2 on a batch": _with(GOOD_BATCH, 4, b"\x02"),
    "staticcall on a batch": _with(GOOD_BATCH, 4, b"\xfe"),
    "batch array offset": _with(GOOD_BATCH, 100, (0x40).to_bytes(32, "big")),
    "empty batch": _with(GOOD_BATCH, 132, bytes(32)),
    "batch count too large": _with(GOOD_BATCH, 132, (2**64).to_bytes(32, "big")),
    "element offset": _with(GOOD_BATCH, 164, (0x60).to_bytes(32, "big")),
    "element offset below the canonical": _with(GOOD_BATCH, 164, (0x20).to_bytes(32, "big")),
    "dirty target": _with(GOOD_BATCH, 164 + 64, b"\x01"),
    "data offset": _with(GOOD_BATCH, 164 + 64 + 64, (0x40).to_bytes(32, "big")),
    "data length": _with(GOOD_BATCH, 164 + 64 + 96, (10**6).to_bytes(32, "big")),
    # the last call, a plain transfer no permission allows, claims 10 bytes of data where none follow: the
    # encoding is refused before the call is judged
    "data length a few bytes past the end": encode_execute([mint(), Call(OTHER, 0, b"")])[:-32]
    + (10).to_bytes(32, "big"),
    # after executionCalldata: anything but up to 31 zero bytes (an account reading a single call's data to the
    # callData's end would hand it to the target)
    "bytes after the execution": GOOD + b"trailing bytes after the execution",
    "a zero word after the padding": GOOD + bytes(32),
    "a nonzero padding byte": GOOD[:-1] + b"\x01",
    "a length short of the callData's end": _with(
        encode_execute(Call(NFT, 0, mint().data + bytes(10))), 68, (52 + 36).to_bytes(32, "big")
    ),
    "a batch's bytes after the execution": GOOD_BATCH + b"\x01",
    # inside a batch: every byte accounted for (an account reading a batch otherwise than by its count and lengths
    # finds no call the module left unjudged)
    "a nonzero byte in a batch call's padding": _dirty_padding(),
    "a call after the batch's count": smuggling_encodings(mint(), mint())[1],
    "a batch ending inside its last call's padding": _cut_batch(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_non_canonical_execute_encodings_are_refused(name):
    with pytest.raises(ExecuteDecodeError) as refused:
        checker(MINT).check(MALFORMED[name], now=T0)
    with pytest.raises(ExecuteDecodeError):
        decode_execute(MALFORMED[name])
    # what was wrong (words in hex, never a bytes literal), and what to do
    message = str(refused.value)
    assert "b'" not in message and 'b"' not in message, message
    todo = ("encode_execute", "must call the account's execute", "single or batch calls", "at least one call")
    assert any(words in message for words in todo), message


def test_what_the_module_tolerates_the_checker_tolerates():
    subject = checker(MINT)
    assert subject.check(encode_execute(mint(), exec_type=1), now=T0)
    # executionCalldata without its padding, or with part of it: zero bytes short of a word
    assert len(GOOD) % 32 == 4 and GOOD[-8:] == bytes(8)
    for cut in range(9):
        assert subject.check(GOOD[: len(GOOD) - cut], now=T0)
        assert decode_execute(GOOD[: len(GOOD) - cut]).calls == (mint(),)


FUZZ_TARGETS = (NFT, TOKEN, USER)
FUZZ_SELECTORS = (bytes(4), SELECTOR, MINT.selector)
OPEN = checker(
    *(Permission(target=t, selector=s, value_limit=U256) for t in FUZZ_TARGETS for s in FUZZ_SELECTORS)
)


@st.composite
def open_calls(draw: st.DrawFn) -> Call:
    data = b""
    if draw(st.booleans()):
        data = draw(st.sampled_from(FUZZ_SELECTORS)) + draw(st.binary(max_size=70))
    return Call(draw(st.sampled_from(FUZZ_TARGETS)), draw(st.integers(0, VALUE_LIMIT_MAX)), data)


@st.composite
def mutated_executes(draw: st.DrawFn) -> bytes:
    calls = draw(st.lists(open_calls(), min_size=1, max_size=3))
    data = bytearray(encode_execute(calls, batch=len(calls) > 1 or draw(st.booleans())))
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[position] = draw(st.sampled_from([0, 1, 0x20, 0x40, 0x60, 0xFF]))
        else:
            data[position : position + 32] = draw(st.integers(0, 2**16)).to_bytes(32, "big")
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(max_examples=1000, deadline=None)
@given(call_data=mutated_executes())
def test_the_checker_reads_an_execute_as_decode_execute_does(call_data):
    """The checker accepts no encoding decode_execute refuses (it may refuse an earlier call first, as the
    module does), and otherwise checks exactly the calls decode_execute reads, in order."""
    try:
        decoded = decode_execute(call_data)
    except ExecuteDecodeError:
        with pytest.raises((ExecuteDecodeError, CallRefusedError)):
            OPEN.check(call_data, now=T0)
        return
    expected = []
    for index, call in enumerate(decoded.calls):
        if 0 < len(call.data) < 4:
            reason = "InvalidCallData"
        elif call.data[:4] == bytes(4):
            reason = "ZeroSelectorCall"
        elif call.target not in FUZZ_TARGETS or call.selector not in FUZZ_SELECTORS:
            reason = "NoPermission"
        elif call.value > VALUE_LIMIT_MAX:
            reason = "ValueLimitExceeded"
        else:
            expected.append(FUZZ_TARGETS.index(call.target) * 3 + FUZZ_SELECTORS.index(call.selector))
            continue
        assert refusal(lambda: OPEN.check(call_data, now=T0), reason).call_index == index
        return
    assert OPEN.check(call_data, now=T0).permission_indices == tuple(expected)


@settings(max_examples=300, deadline=None)
@given(calls=st.lists(open_calls(), min_size=1, max_size=4), batch=st.booleans())
def test_checking_calls_is_checking_their_execute(calls, batch):
    subject = checker(MINT, PAY, Policy.transfer(USER, 5), Permission(target=NFT, selector=bytes(4)))
    outcomes = []
    for run in (
        lambda: subject.check_calls(calls, now=T0),
        lambda: subject.check(encode_execute(calls, batch=batch or len(calls) > 1), now=T0),
    ):
        try:
            outcomes.append(run())
        except CallRefusedError as error:
            outcomes.append((error.reason, error.call_index, error.permission_index, error.rule_index))
    assert outcomes[0] == outcomes[1]


def test_an_empty_list_of_calls_is_refused():
    with pytest.raises(ExecuteDecodeError, match="empty"):
        checker(MINT).check_calls([], now=T0)


# --------------------------------------------------------------------------------------------------
# Window and revocation
# --------------------------------------------------------------------------------------------------


def test_the_window_is_inclusive_at_both_ends_as_the_entry_point_applies_it():
    subject = checker(MINT, valid_after=T0, valid_until=T0 + 100)
    with pytest.raises(SessionNotYetValidError, match="1s after now") as early:
        subject.check_calls(mint(), now=T0 - 1)
    assert f"session is valid from {utc_moment(T0)}" in str(
        early.value
    )  # the session's window, not a period's
    for now in (T0, T0 + 50, T0 + 100):
        result = subject.check_calls(mint(), now=now)
        assert (result.valid_after, result.valid_until) == (T0, T0 + 100)
    with pytest.raises(SessionExpiredError, match="1s before now") as late:
        subject.check_calls(mint(), now=T0 + 101)
    assert type(late.value) is SessionExpiredError and f"expired at {utc_moment(T0 + 100)}" in str(late.value)


def test_valid_until_zero_never_expires():
    subject = checker(MINT, valid_after=5)
    assert subject.check_calls(mint(), now=2**48 - 1)
    with pytest.raises(SessionNotYetValidError):
        subject.check_calls(mint(), now=4)


@pytest.mark.parametrize("valid_after", [0, 5])
def test_for_entry_point_v08_the_window_opens_the_second_after_valid_after(valid_after):
    """EntryPoint v0.8 refuses ``now <= validAfter``: with validAfter 0 (no start), second 0 too."""
    subject = PolicyChecker(session(MINT, valid_after=valid_after), ACCOUNT, MODULE, opens_after=True)
    with pytest.raises(SessionNotYetValidError, match="the second after"):
        subject.check_calls(mint(), now=valid_after)
    assert subject.check_calls(mint(), now=valid_after + 1).valid_after == valid_after


@pytest.mark.parametrize("valid_after", [0, 2**48 - 1])
def test_no_end_is_the_end_of_48_bit_time_as_the_entry_point_reads_it(valid_after):
    """EntryPoint v0.7 and v0.8 read validUntil 0 as type(uint48).max: past it, every operation is expired."""
    subject = checker(MINT, valid_after=valid_after)
    assert subject.check_calls(mint(), now=2**48 - 1).valid_until == 0
    with pytest.raises(SessionExpiredError, match=r"past 2\*\*48 - 1.*valid_until 0") as expired:
        subject.check_calls(mint(), now=2**48)
    assert "check the clock" in str(expired.value)


def test_without_now_the_wall_clock_decides():
    now = int(time.time())
    assert checker(MINT, valid_until=now + 3600).check_calls(mint())
    with pytest.raises(SessionExpiredError):
        checker(MINT, valid_after=now - 7200, valid_until=now - 3600).check_calls(mint())


def test_policy_refusals_come_before_the_window():
    subject = checker(MINT, valid_after=T0, valid_until=T0 + 1)
    refusal(lambda: subject.check_calls(mint(OTHER), now=T0 + 5), "RuleViolated")


def test_validation_data_packs_the_window_as_the_module_returns_it():
    result = checker(MINT, valid_after=T0, valid_until=T0 + 100).check_calls(mint(), now=T0)
    assert result.validation_data == ((T0 + 100) << 160) | (T0 << 208)
    assert checker(MINT).check_calls(mint(), now=T0).validation_data == 0


def test_a_revoked_session_refuses_where_the_module_finds_no_permission():
    subject = checker(MINT)
    with pytest.raises(SessionRevokedError, match="revoked"):
        subject.check_calls(mint(), now=T0, revoked=True)
    # the checks before the permission lookup still come first, as on chain
    refusal(lambda: subject.check_calls(Call(MODULE, 0, b""), now=T0, revoked=True), "ForbiddenTarget")
    refusal(lambda: subject.check_calls(Call(NFT, 0, b"\x01\x02"), now=T0, revoked=True), "InvalidCallData")


# --------------------------------------------------------------------------------------------------
# check(): grants, bare sessions, the cache
# --------------------------------------------------------------------------------------------------


def grant(subject: Session) -> SessionGrant:
    return SessionGrant(
        session=subject,
        account=ACCOUNT,
        module=MODULE,
        chain_id=1337,
        entry_point="0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        epoch=0,
        session_id=subject.session_id(ACCOUNT, 0),
        how="onchain",
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda g: g["session"]["permissions"][0].update(value_limit=10**18),  # the module's limit is 0
        lambda g: g["session"]["permissions"][0].update(rules=[]),  # the module still checks `to`
        lambda g: g["session"].update(valid_until=0),
        lambda g: g.update(epoch=1),
        lambda g: g.update(account=USER),
    ],
    ids=["value limit raised", "rule dropped", "window widened", "epoch", "account"],
)
def test_a_grant_edited_by_hand_is_refused_before_the_checker_trusts_it(edit):
    """A grant's id is the module's id of its session: a session edited in the JSON (a limit raised, a rule
    dropped) would pass checks the module refuses, so reading it back says it was changed."""
    granted = grant(session(PAY, valid_until=T0 + 60))
    text = json.loads(granted.to_json())
    edit(text)
    with pytest.raises(BadInputError, match="is not the id of its session"):
        SessionGrant.from_json(json.dumps(text))
    assert SessionGrant.from_json(granted.to_json()) == granted


def test_a_grant_with_a_chain_id_over_256_bits_is_refused_when_read():
    text = json.loads(grant(session(MINT)).to_json())
    text["chain_id"] = 2**256
    with pytest.raises(BadInputError, match="chain_id: Input should be less than"):
        SessionGrant.from_json(json.dumps(text))


@given(
    value=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**256), st.booleans(), st.floats()),
)
def test_a_call_with_a_value_the_chain_cannot_carry_is_refused_not_checked(value):
    """A negative value is under every value limit: a Call built directly with one passed the local check, and its
    encoding failed with a raw OverflowError. Such a call is refused when built, as Call.of refuses it."""
    with pytest.raises(BadInputError, match="call value"):
        Call(NFT, value, b"")
    assert Call(NFT, 2**256 - 1, b"").value == 2**256 - 1


@pytest.mark.parametrize(
    ("target", "data", "problem"),
    [
        ("0xzz", b"", "not a valid address"),
        ("0x" + "g" * 40, b"", "not a valid address"),
        (NFT, None, "call data must be bytes"),
        (NFT, "0xabc", "is not hex data"),
    ],
)
def test_a_call_with_a_malformed_target_or_data_says_what_is_wrong(target, data, problem):
    with pytest.raises(BadInputError, match=problem):
        Call(target, 0, data)


def test_a_call_takes_hex_data_and_address_objects_as_call_of_does():
    class Contract:
        address = NFT.lower()

    call = Call(Contract(), 0, "0x" + MINT.selector.hex())  # type: ignore[arg-type]
    assert call == Call.of(NFT, 0, MINT.selector)
    assert checker(MINT).check_calls(
        Call(NFT, 0, MINT.selector + bytes(12) + bytes.fromhex(USER[2:])), now=T0
    )


@pytest.mark.parametrize(
    ("calls", "problem"),
    [
        ("0x" + "00" * 52, "takes a Call or a list of them, got str"),
        (7, "takes a Call or a list of them, got int"),
        ([mint(), {"to": NFT}], "call 1 is a dict, not a keyscope.execution.Call"),
    ],
)
def test_encoding_something_else_than_calls_says_what_is_wrong(calls, problem):
    with pytest.raises(BadInputError, match=problem):
        encode_execute(calls)


@pytest.mark.parametrize("at", [-1, 2**48, 2**64])
def test_a_claimed_time_the_signature_cannot_carry_is_refused(at):
    """The module reads a claimed time from 6 bytes: the checker refused none, counting a time no operation can
    claim (and the signature's encoding then failed)."""
    subject = PolicyChecker(
        Session(
            session_key=KEY,
            permissions=(MINT,),
            limits=(Limit(kind=LimitKind.CALLS, amount=3, period=60, meters=(Meter(permission=0),)),),
        ),
        ACCOUNT,
        MODULE,
    )
    with pytest.raises(BadInputError, match="claimed time"):
        subject.check(encode_execute(mint()), now=T0, at=at)
    with pytest.raises(BadInputError, match="claimed time"):
        subject.check_calls(mint(), now=T0, at=at)
    last = subject.check(encode_execute(mint()), now=2**48 - 1, at=2**48 - 1)  # the last period has no end
    assert (last.valid_after, last.valid_until) == (2**48 - 1 - (2**48 - 1) % 60, 0)


def test_check_of_a_user_operation_checks_its_gas_too():
    capped = Session(session_key=KEY, permissions=(MINT,), max_gas_cost=10**15)
    op = UserOperation(
        sender=ACCOUNT,
        nonce=0,
        call_data=encode_execute(mint()),
        call_gas_limit=10**6,
        max_fee_per_gas=10**9 + 1,
    )
    with pytest.raises(GasCostTooHighError):
        check(capped, op, account=ACCOUNT, module=MODULE, now=T0)
    assert check(capped, op.replace(max_fee_per_gas=10**9), account=ACCOUNT, module=MODULE, now=T0)


@pytest.mark.parametrize("forbidden", [ACCOUNT, MODULE, "0x" + "00" * 20])
def test_a_grant_naming_the_account_the_module_or_zero_as_a_target_is_refused(forbidden):
    """enableSession refuses such a session (ForbiddenPermissionTarget): the checker passed its other calls, so an
    off-chain grant's first operation passed the local check and failed on chain."""
    subject = session(MINT, Permission(target=forbidden, selector=bytes(4)))
    assert PolicyChecker(subject, ACCOUNT, MODULE).check_calls(
        mint(), now=T0
    )  # the checker alone cannot know
    with pytest.raises(InvalidFieldsError, match="ForbiddenPermissionTarget"):
        grant(subject)
    text = json.loads(grant(session(MINT)).to_json())
    text["session"]["permissions"].append({"target": forbidden, "selector": "0x00000000"})
    with pytest.raises(BadInputError, match=r"permission 1 targets .*ForbiddenPermissionTarget"):
        SessionGrant.from_json(json.dumps(text))


def test_check_takes_a_grant_or_a_session_with_its_account_and_module():
    plain = session(MINT)
    granted = grant(plain)
    call_data = encode_execute(mint())
    assert isinstance(check(granted, call_data, now=T0), CheckResult)
    assert check(plain, call_data, account=ACCOUNT, module=MODULE, now=T0).permission_indices == (0,)
    assert check(granted, "0x" + call_data.hex(), now=T0).permission_indices == (0,)
    assert check(granted, [mint(), mint()], now=T0).permission_indices == (0, 0)
    assert check(granted, mint(), now=T0).permission_indices == (0,)
    with pytest.raises(BadInputError, match="account= and module="):
        check(plain, call_data, now=T0)
    with pytest.raises(BadInputError, match="names its account"):
        check(granted, call_data, account=ACCOUNT, now=T0)
    error = refusal(lambda: check(granted, encode_execute(mint(OTHER)), now=T0), "RuleViolated")
    assert error.session_id == "0x" + granted.session_id.hex()
    with pytest.raises(SessionExpiredError) as info:
        check(grant(session(MINT, valid_until=T0)), call_data, now=T0 + 1)
    assert info.value.session_id is not None


def test_check_caches_compiled_sessions_per_object():
    first = session(MINT)
    second = session(PAY)
    for _ in range(3):
        assert check(first, encode_execute(mint()), account=ACCOUNT, module=MODULE, now=T0)
        refusal(
            lambda: check(second, encode_execute(mint()), account=ACCOUNT, module=MODULE, now=T0),
            "NoPermission",
        )
    # the same session on another account forbids that account instead
    refusal(
        lambda: check(first, encode_execute(mint()), account=NFT, module=MODULE, now=T0), "ForbiddenTarget"
    )


def test_a_single_call_with_two_rules_checks_in_microseconds():
    subject = PolicyChecker.for_grant(grant(session(MINT, PAY)))
    call_data = encode_execute(pay())
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(2000):
            subject.check(call_data, now=T0)
        samples.append((time.perf_counter() - started) / 2000)
    # about 4 us on a laptop; the bound only catches an accidental slow path
    assert statistics.median(samples) < 100e-6


def test_a_bundler_refusing_an_operation_before_its_limit_period_began_says_the_clocks_differ():
    """A session with a limit per period makes each operation valid in its period only: validAfter is the
    period's start by the chain's clock. A bundler whose clock is behind refused it as "not valid yet" with bare unix
    times, which the SDK passed on as they came (only the session's own valid_after was explained)."""
    from keyscope.bundler_refusals import session_refusal
    from keyscope.errors import BundlerRejectedError

    limited = Session(
        session_key=KEY,
        permissions=(MINT,),
        limits=(Limit(kind=LimitKind.CALLS, amount=2, period=3600, meters=(Meter(permission=0),)),),
    )
    period_start, bundler_now = 1_796_504_400, 1_796_502_349
    refused = BundlerRejectedError(
        "eth_sendUserOperation",
        -32503,
        f"User operation is not valid yet, validAfter={period_start}, now={bundler_now}",
    )
    translated = session_refusal(grant(limited), refused)
    assert isinstance(translated, SessionNotYetValidError), translated
    said = str(translated)
    assert (
        "limit period that begins at 2026-12-05 21:00:00 UTC (unix 1796504400) by the chain's clock" in said
    ), said
    assert (
        "its clock reads 2026-12-05 20:25:49 UTC (unix 1796502349)" in said
        and "wait until then and send again" in said
    ), said
    # without a periodic limit, a validAfter that is not the session's own is not the session's to explain
    assert session_refusal(grant(session(MINT)), refused) is None


def test_a_bundlers_expires_too_soon_at_a_limit_periods_end_is_that_periods_end_not_the_sessions():
    """An operation counted in a period is valid in that period only: in its last seconds Alto refuses it as
    "expires too soon, validUntil=<the period's last second>", which the SDK passed on as the bundler's bare error
    (the session lasts for hours). Attack 305."""
    from keyscope.bundler_refusals import session_refusal
    from keyscope.errors import BundlerRejectedError, LimitPeriodEndingError

    limited = Session(
        session_key=KEY,
        valid_after=1_796_500_000,
        valid_until=1_796_600_000,
        permissions=(MINT,),
        limits=(Limit(kind=LimitKind.CALLS, amount=2, period=3600, meters=(Meter(permission=0),)),),
    )
    period_end = 1_796_500_000 + 2 * 3600 - 1

    def refusal(valid_until: int, now: int) -> BundlerRejectedError:
        return BundlerRejectedError(
            "eth_sendUserOperation",
            -32503,
            f"UserOperation expires too soon, validUntil={valid_until}, now={now}",
        )

    ending = session_refusal(grant(limited), refusal(period_end, period_end - 3))
    assert isinstance(ending, LimitPeriodEndingError) and ending.next_period_at == period_end + 1, ending
    said = str(ending)
    assert "the period that ends at 2026-12-05 21:46:39 UTC (unix 1796507199)" in said, said
    assert (
        "has not expired" in said and "wait until the next period begins at 2026-12-05 21:46:40 UTC" in said
    )
    # a period already over by the bundler's clock: the operation claimed a stale block time
    ended = session_refusal(grant(limited), refusal(period_end, period_end + 4))
    assert isinstance(ended, LimitPeriodEndingError) and "mine one" in str(ended), ended
    # the session's own end is still its expiry; a time that ends no period is not the session's to explain
    expired = session_refusal(grant(limited), refusal(1_796_600_000, 1_796_599_998))
    assert type(expired) is SessionExpiredError, expired
    assert session_refusal(grant(limited), refusal(period_end - 1, period_end - 3)) is None
    assert session_refusal(grant(session(MINT)), refusal(period_end, period_end - 3)) is None


def test_a_limit_used_up_on_an_expired_session_says_it_expired_too():
    """The module reverts ``LimitExceeded`` before the EntryPoint judges the window, so the checker says the limit
    first; its advice ("ask for a larger limit") alone misled for a session that had expired anyway."""
    limited = Session(
        session_key=KEY,
        valid_until=T0 + 100,
        permissions=(MINT,),
        limits=(Limit(kind=LimitKind.CALLS, amount=1, meters=(Meter(permission=0),)),),
    )
    subject = PolicyChecker(limited, ACCOUNT, MODULE)
    spent = subject.check(encode_execute(mint()), now=T0).counters
    for now, expired in ((T0 + 50, False), (T0 + 200, True)):
        with pytest.raises(LimitExceededError) as refused:
            subject.check(encode_execute(mint()), now=now, counters=spent)
        said = str(refused.value)
        assert "1 call of 1 call used" in said and refused.value.left == 0, said
        assert ("The session has also expired, at " in said) is expired, said
    with pytest.raises(LimitExceededError, match="has also expired"):
        subject.check_operation(
            UserOperation(sender=ACCOUNT, nonce=0, call_data=encode_execute(mint())),
            now=T0 + 200,
            counters=spent,
        )


def test_check_calls_counts_limits_as_check_does():
    """``check_calls`` (the calls alone, without an ``execute`` encoding) counts the limits the same way as
    ``check``: from the first limited call of the batch wherever it stands, from the counters given, with the
    window narrowed to the counted period, and refusing counters that are not the session's."""
    limited = Session(
        session_key=KEY,
        permissions=(MINT, PAY),
        limits=(Limit(kind=LimitKind.CALLS, amount=1, period=60, meters=(Meter(permission=0),)),),
    )
    subject = PolicyChecker(limited, ACCOUNT, MODULE)
    at = T0 + 30
    batch = [pay(), mint()]  # the limited call is the second
    by_calls = subject.check_calls(batch, now=at, at=at)
    by_check = subject.check(encode_execute(batch), now=at, at=at)
    assert by_calls.permission_indices == by_check.permission_indices == (1, 0)
    assert by_calls.counters == by_check.counters and by_calls.counters is not None
    assert by_calls.counters[0].left == 0
    # the window is the period the call counts in, as the module's validation data says
    assert (by_calls.valid_after, by_calls.valid_until) == (by_check.valid_after, by_check.valid_until)
    assert (by_calls.valid_after, by_calls.valid_until) == (T0 - T0 % 60, T0 - T0 % 60 + 59)
    # the counters given are the ones counted from: the one call is spent
    with pytest.raises(LimitExceededError):
        subject.check_calls(mint(), now=at, at=at, counters=by_calls.counters)
    for counters in ((), (by_calls.counters[0], by_calls.counters[0]), "counters"):
        with pytest.raises(BadInputError, match="one Counter per limit"):
            subject.check_calls(mint(), now=at, at=at, counters=counters)
