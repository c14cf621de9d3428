"""The fourth round of mutation testing on the Python side (docs/static-analysis.md, "The SDK's checker"): what the
tests before it let pass in the input checks around the EIP-712 encoding and the JSON form wallets take.

Pinned here, without a chain:

* typed data a wallet would not encode as given is refused as ``BadInputError`` naming the fault, never taken and
  never met by Python's own ``TypeError`` or ``KeyError``: a ``types`` entry that is not a list of ``{name, type}``
  members with string names and types, an atomic type of a width EIP-712 has not (``bytes0``, ``bytes33``,
  ``uint7``, ``uint0``, ``uint264``), a bool given for an integer, a message or domain that is not an object, an
  ``EIP712Domain`` type listing other fields than the domain has, a member path through a value that is no object;
* integers given as strings are read as eth-account reads them (``0x`` hex, else decimal), to its digest, and a
  string spelling one otherwise (binary, octal, a signed hex, ``0X``) is refused, as eth-account refuses it;
* data nested exactly :data:`~keyscope.typed_data.MAX_NESTING` levels (objects and lists alike) is hashed as
  eth-account hashes it, one level more is refused, in the message as in the domain;
* a lone surrogate is refused wherever it is, in a list of the message or in one of its keys;
* :func:`~keyscope.typed_data.wallet_value` refuses a value with no EIP-712 JSON form (a float);
* the checker's refusals name the right moments and figures: a limit used up on a session past its last second
  (not at it) says it has expired too, at its end; one used up in a period that has reset by ``now`` (from the
  reset's own second) says so, naming ``now`` and the claimed time; a claim in a period not begun names its first
  second and how far off it is (EntryPoint v0.8's a second later); a claim in an ended period names the claimed
  time, the period's last second and how long ago it was.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from keyscope.checker import PolicyChecker
from keyscope.clock import utc_moment
from keyscope.errors import BadInputError, LimitExceededError, LimitPeriodEndingError, SessionNotYetValidError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address
from keyscope.policy import Policy, arg
from keyscope.session import Limit, LimitKind, Meter, Session
from keyscope.typed_data import MAX_NESTING, TypedData, plan_frames, wallet_value

DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}]
DOMAIN = {"name": "Shop", "chainId": 8453}


def typed(
    types: dict[str, Any], message: dict[str, Any], primary: str = "M", **changes: Any
) -> dict[str, Any]:
    data = {
        "types": {"EIP712Domain": DOMAIN_TYPE, **types},
        "primaryType": primary,
        "domain": DOMAIN,
        "message": message,
    }
    data.update(changes)
    return data


def eth_account_digest(data: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=copy.deepcopy(data))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


ONE_UINT = {"M": [{"name": "n", "type": "uint8"}]}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (typed({"M": ""}, {}), r"types\['M'\] must be a list"),
        (typed({"M": "ab"}, {}), r"types\['M'\] must be a list"),
        (typed({"M": [{"name": "n", "type": 8}]}, {"n": 1}), "has a member that is not"),
        (typed({"M": [{"name": 5, "type": "uint8"}]}, {5: 1}), "has a member that is not"),
        (typed({"M": [{"name": "b", "type": "bytes0"}]}, {"b": b""}), "bytesN takes N from 1 to 32"),
        (typed({"M": [{"name": "b", "type": "bytes33"}]}, {"b": bytes(33)}), "bytesN takes N from 1 to 32"),
        (typed({"M": [{"name": "n", "type": "uint7"}]}, {"n": 1}), "integer widths are 8 to 256, by 8"),
        (typed({"M": [{"name": "n", "type": "int12"}]}, {"n": 1}), "integer widths are 8 to 256, by 8"),
        (typed({"M": [{"name": "n", "type": "uint0"}]}, {"n": 0}), "integer widths are 8 to 256, by 8"),
        (typed({"M": [{"name": "n", "type": "uint264"}]}, {"n": 1}), "integer widths are 8 to 256, by 8"),
        (typed(ONE_UINT, {"n": True}), "expected an integer"),
        (typed(ONE_UINT, 5), "message must be an object"),  # type: ignore[arg-type]
        (typed(ONE_UINT, ["n"]), "message must be an object"),  # type: ignore[arg-type]
        (typed(ONE_UINT, {"n": 1}, domain=[]), "types and domain must be objects"),
        (typed(ONE_UINT, {"n": 1}, domain="ab"), "types and domain must be objects"),
        (
            {**typed(ONE_UINT, {"n": 1}), "types": {"EIP712Domain": DOMAIN_TYPE[:1], **ONE_UINT}},
            "exactly those of the domain",
        ),
    ],
    ids=[
        "an empty string as members",
        "a string as members",
        "a member's type a number",
        "a member's name a number",
        "bytes0",
        "bytes33",
        "uint7",
        "int12",
        "uint0",
        "uint264",
        "true as an integer",
        "a number as the message",
        "a list as the message",
        "a list as the domain",
        "a string as the domain",
        "the domain's type without a field the domain has",
    ],
)
def test_typed_data_no_wallet_encodes_as_given_is_refused_naming_the_fault(
    data: dict[str, Any], says: str
) -> None:
    with pytest.raises(BadInputError, match=says):
        assert TypedData(data).digest is None


@pytest.mark.parametrize(
    "spelled",
    ["0x10", "0xff", "16", "255", "0", "0x0", "010"],
    ids=["hex", "hex ff", "decimal", "decimal 255", "0", "0x0", "a leading zero"],
)
def test_an_integer_given_as_a_string_is_read_as_eth_account_reads_it(spelled: str) -> None:
    data = typed(
        {"M": [{"name": "n", "type": "uint8"}, {"name": "m", "type": "int256"}]}, {"n": spelled, "m": "-20"}
    )
    assert TypedData(data).digest == eth_account_digest(data)
    number = int(spelled, 16) if spelled.startswith("0x") else int(spelled)
    as_number = typed(
        {"M": [{"name": "n", "type": "uint8"}, {"name": "m", "type": "int256"}]}, {"n": number, "m": -20}
    )
    assert TypedData(data).digest == TypedData(as_number).digest


def _lists(depth: int) -> Any:
    value: Any = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [MAX_NESTING, MAX_NESTING + 1])
def test_a_message_nested_in_lists_is_hashed_to_the_limit_and_refused_past_it(levels: int) -> None:
    # the message is one level, the lists the rest
    data = typed({"M": [{"name": "a", "type": "uint8" + "[]" * (levels - 1)}]}, {"a": _lists(levels - 1)})
    if levels > MAX_NESTING:
        with pytest.raises(
            BadInputError, match=f"the typed data's message is nested more than {MAX_NESTING} levels"
        ):
            TypedData(data)
    else:
        assert TypedData(data).digest == eth_account_digest(data)


def test_a_domain_nested_past_the_limit_is_refused_before_anything_descends_into_it() -> None:
    data = typed(ONE_UINT, {"n": 1}, domain={"name": _lists(5_000)})
    data["types"] = dict(ONE_UINT)
    with pytest.raises(
        BadInputError, match=f"the typed data's domain is nested more than {MAX_NESTING} levels"
    ):
        TypedData(data)


def test_a_lone_surrogate_in_a_list_or_a_key_of_the_message_is_refused_naming_where() -> None:
    listed = typed({"M": [{"name": "memo", "type": "string[]"}]}, {"memo": ["ok", "\ud800"]})
    with pytest.raises(BadInputError, match=r"message\.memo\[1\] holds U\+D800 at position 0"):
        TypedData(listed)
    keyed = typed({"M": [{"name": "memo", "type": "string"}]}, {"memo": "", "\udc00": 1})
    with pytest.raises(BadInputError, match=r"message: a key holds U\+DC00 at position 0"):
        TypedData(keyed)


NESTED = {
    "M": [{"name": "inner", "type": "Mid"}],
    "Mid": [{"name": "leaf", "type": "Leaf"}],
    "Leaf": [{"name": "n", "type": "uint8"}],
}


@pytest.mark.parametrize(
    "inner",
    [5, "leaf", ["leaf"], {"other": 1}],
    ids=["a number", "a string", "a list", "an object without it"],
)
def test_a_member_path_through_what_is_no_object_holding_it_is_refused(inner: Any) -> None:
    reading = TypedData(typed(NESTED, {"inner": inner}))
    with pytest.raises(BadInputError, match=r"the message has no member inner\.leaf"):
        reading.value_at(("inner", "leaf"))
    with pytest.raises(BadInputError, match=r"message\.inner"):
        reading.frames(plan_frames("M", reading.types, [("inner",), ("inner", "leaf")]))
    with pytest.raises(BadInputError, match="the message has no member nope"):
        reading.value_at(("nope",))


@pytest.mark.parametrize("value", [1.5, 2.0, object()], ids=["a fraction", "a whole float", "an object"])
def test_a_value_with_no_eip712_json_form_is_refused(value: Any) -> None:
    with pytest.raises(BadInputError, match="has no EIP-712 JSON form"):
        wallet_value(value)


# -- the checker's messages: the moments and figures they name ------------------------------------------------

T0 = 1_700_000_000
HOUR = 3600
TARGET = to_address("0x" + "c3" * 20)
USER = to_address("0x" + "e5" * 20)
ACCOUNT = to_address("0x" + "a1" * 20)
MODULE = to_address("0x" + "b2" * 20)
KEY = to_address("0x" + "17" * 20)
MINT = Policy.call(TARGET, "safeMint(address to)", rules=[arg("to") == USER])


def _mint() -> bytes:
    return encode_execute(Call.of(TARGET, 0, MINT.selector + abi_encode(["address"], [USER])))


def _limited(valid_until: int = 0, period: int = HOUR, *, opens_after: bool = False) -> PolicyChecker:
    session = Session(
        session_key=KEY,
        valid_after=T0,
        valid_until=valid_until,
        permissions=(MINT,),
        limits=(Limit(kind=LimitKind.CALLS, amount=1, period=period, meters=(Meter(permission=0),)),),
    )
    return PolicyChecker(session, ACCOUNT, MODULE, opens_after=opens_after)


def test_a_limit_used_up_says_the_session_expired_only_past_its_last_second_naming_its_end() -> None:
    subject = _limited(valid_until=T0 + 100, period=0)
    spent = subject.check(_mint(), now=T0).counters
    for now, expired in ((T0 + 99, False), (T0 + 100, False), (T0 + 101, True), (T0 + 5_000, True)):
        with pytest.raises(LimitExceededError) as refused:
            subject.check(_mint(), now=now, counters=spent)
        said = str(refused.value)
        assert ("has also expired" in said) is expired, said
        if expired:
            assert f"The session has also expired, at {utc_moment(T0 + 100)}: ask" in said, said


def test_a_limit_used_up_in_a_period_that_has_just_reset_says_so_from_the_reset_s_own_second() -> None:
    subject = _limited()
    stale = T0 + HOUR - 30
    spent = subject.check(_mint(), now=stale, at=stale).counters
    for now, reset in ((T0 + HOUR - 1, False), (T0 + HOUR, True), (T0 + HOUR + 15, True)):
        with pytest.raises(LimitExceededError) as refused:
            subject.check(_mint(), now=now, counters=spent, at=stale)
        said = str(refused.value)
        assert refused.value.resets_at == T0 + HOUR, refused.value
        assert (
            f"It has reset by now ({utc_moment(now)}), but this operation claims the time" in said
        ) is reset, said
        if reset:
            assert f"claims the time {utc_moment(stale)}, in the period that ended" in said, said


@pytest.mark.parametrize("opens_after", [False, True], ids=["v0.7", "v0.8"])
def test_a_claim_in_a_period_not_yet_begun_names_its_first_second_and_how_far_off_it_is(
    opens_after: bool,
) -> None:
    subject = _limited(opens_after=opens_after)
    claimed, now = T0 + HOUR + 5, T0 + HOUR - 10
    opens = T0 + HOUR + (1 if opens_after else 0)
    with pytest.raises(SessionNotYetValidError) as refused:
        subject.check(_mint(), now=now, at=claimed)
    said = str(refused.value)
    assert f"counts towards a limit in the period from {utc_moment(opens)}" in said, said
    assert f", {opens - now}s after now ({utc_moment(now)}): claim the current time" in said, said
    assert ("EntryPoint v0.8 opens the window the second after" in said) is opens_after, said


def test_a_claim_in_an_ended_period_names_the_claimed_time_the_period_s_end_and_how_long_ago() -> None:
    subject = _limited()
    claimed, now = T0 + HOUR - 30, T0 + HOUR + 15
    with pytest.raises(LimitPeriodEndingError) as refused:
        subject.check(_mint(), now=now, at=claimed)
    said = str(refused.value)
    assert refused.value.period_ends_at == T0 + HOUR - 1, refused.value
    assert (
        f"this operation claims the time {utc_moment(claimed)}, so it counts towards a limit in the period that "
        f"ended at {utc_moment(T0 + HOUR - 1)}, 16s before now ({utc_moment(now)})"
    ) in said, said


@pytest.mark.parametrize(
    "spelled",
    ["0b101", "0o17", "-0x10", "0B1", "0O7", "0XfF"],
    ids=["binary", "octal", "negative hex", "binary B", "octal O", "hex 0X"],
)
def test_an_integer_string_that_is_neither_decimal_nor_0x_hex_is_refused_as_eth_account_refuses_it(
    spelled: str,
) -> None:
    """Python's ``int(text, 0)`` reads ``0b`` and ``0o`` prefixes and a signed ``-0x``; eth-account reads none of
    them (nor does a wallet, which reads a decimal or ``0x``-hex string), so such a value was signed as a number no
    verifier would rebuild from the data."""
    data = typed({"M": [{"name": "n", "type": "int256"}]}, {"n": spelled})
    with pytest.raises(ValueError):
        eth_account_digest(data)
    with pytest.raises(BadInputError, match="is not an integer"):
        assert TypedData(data).digest is None
