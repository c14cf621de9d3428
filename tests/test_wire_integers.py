"""Numbers read by the wire-format models are integers as the wire writes them: an int, or its decimal text
where a field took text before. A bool or a float is refused, naming the field: ``False`` would read as 0, which
means "no bound" for a gas cap, a value limit or an expiry, and a float past 2**53 holds no exact number of wei."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.consent.server import ConsentServer
from keyscope.erc7715.models import PermissionRequest
from keyscope.errors import BadInputError
from keyscope.grant import SessionGrant
from keyscope.session import Limit, LimitKind, Meter, Permission, Rule, Session, TypedDataPermission

KEY = "0x" + "11" * 20
TARGET = "0x" + "22" * 20
ACCOUNT = "0x" + "33" * 20
MODULE = "0x" + "44" * 20
ENTRY_POINT = "0x" + "55" * 20
PERMISSION = {"target": TARGET, "selector": "0xa9059cbb"}

# model, the valid fields it is built from, the integer field under test and a valid value of it
CASES: list[tuple[type, dict[str, Any], str, int]] = [
    (Rule, {"condition": 1, "offset": 32, "values": (5,)}, "condition", 1),
    (Rule, {"condition": 1, "offset": 32, "values": (5,)}, "offset", 32),
    (Rule, {"condition": 1, "offset": 32, "values": (5,)}, "arg_type", 0),
    (Meter, {"permission": 0}, "permission", 0),
    (Meter, {"permission": 0}, "offset", 64),
    (Limit, {"kind": int(LimitKind.AMOUNT), "amount": 10}, "kind", 1),
    (Limit, {"kind": int(LimitKind.AMOUNT), "amount": 10}, "amount", 10),
    (Limit, {"kind": int(LimitKind.AMOUNT), "amount": 10}, "period", 3600),
    (Limit, {"kind": int(LimitKind.AMOUNT), "amount": 10}, "decimals", 6),
    (Permission, PERMISSION, "value_limit", 10**18),
    (
        TypedDataPermission,
        {"domain_fields": 4, "chain_id": 1, "contents_name": "Mail", "contents_type": "Mail(address to)"},
        "domain_fields",
        4,
    ),
    (
        TypedDataPermission,
        {"domain_fields": 4, "chain_id": 1, "contents_name": "Mail", "contents_type": "Mail(address to)"},
        "chain_id",
        1,
    ),
    (Session, {"session_key": KEY, "permissions": (PERMISSION,)}, "valid_after", 1),
    (Session, {"session_key": KEY, "permissions": (PERMISSION,)}, "valid_until", 2**40),
    (Session, {"session_key": KEY, "permissions": (PERMISSION,)}, "max_gas_cost", 10**16),
    (Session, {"session_key": KEY, "permissions": (PERMISSION,)}, "salt", 7),
]
IDS = [f"{model.__name__}.{field}" for model, _, field, _ in CASES]

NOT_INTEGERS = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=2**53, max_value=2**200).map(float),
)


@pytest.mark.parametrize(("model", "fields", "name", "good"), CASES, ids=IDS)
@settings(max_examples=25, deadline=None)
@given(bad=NOT_INTEGERS)
def test_a_bool_or_a_float_is_refused_naming_the_field(
    model: type, fields: dict[str, Any], name: str, good: int, bad: object
) -> None:
    with pytest.raises(BadInputError, match=rf"\b{name}\b.*(integer|bool|float)"):
        model(**{**fields, name: bad})


@pytest.mark.parametrize(("model", "fields", "name", "good"), CASES, ids=IDS)
def test_an_int_and_its_decimal_text_are_read_as_before(
    model: type, fields: dict[str, Any], name: str, good: int
) -> None:
    assert getattr(model(**{**fields, name: good}), name) == good
    assert getattr(model(**{**fields, name: str(good)}), name) == good


@pytest.mark.parametrize(("model", "fields", "name", "good"), CASES, ids=IDS)
def test_decimal_text_in_other_than_ascii_digits_is_refused(
    model: type, fields: dict[str, Any], name: str, good: int
) -> None:
    """``int()`` reads other scripts' digits (``"\u0663"`` is 3), spaces and ``_``: a wire number is digits 0-9."""
    arabic_indic = str(good).translate({ord("0") + d: 0x0660 + d for d in range(10)})
    for written in (arabic_indic, f" {good}", f"{good}_0"):
        with pytest.raises(BadInputError, match=rf"\b{name}\b.*write digits 0-9"):
            model(**{**fields, name: written})


@settings(max_examples=25, deadline=None)
@given(bad=NOT_INTEGERS)
def test_a_rules_reference_value_is_an_integer_word(bad: object) -> None:
    with pytest.raises(BadInputError, match=r"values.*(integer|bool|float)"):
        Rule(condition=1, offset=0, values=(bad,))


@pytest.mark.parametrize("written", [2**62 - 1, 10**18 + 1])
def test_a_float_value_limit_past_2_53_is_refused_not_rounded(written: int) -> None:
    # float(2**62 - 1) is 2**62: a wei more than written; float(10**18 + 1) a wei less
    assert int(float(written)) != written
    with pytest.raises(BadInputError, match=r"value_limit: .*float"):
        Permission(**PERMISSION, value_limit=float(written))
    with pytest.raises(BadInputError, match=r"amount: .*float"):
        Limit(kind=LimitKind.NATIVE, amount=float(written))


def _grant_json() -> dict[str, Any]:
    built = Session(session_key=KEY, permissions=(PERMISSION,), max_gas_cost=0)
    grant = SessionGrant(
        session=built,
        account=ACCOUNT,
        module=MODULE,
        chain_id=1,
        entry_point=ENTRY_POINT,
        epoch=0,
        session_id=built.session_id(ACCOUNT, 0),
        how="onchain",
    )
    return json.loads(grant.to_json())


@pytest.mark.parametrize("field", ["max_gas_cost", "valid_until", "valid_after", "salt"])
@pytest.mark.parametrize("bad", [False, True, 0.0, 1.0])
def test_a_grants_json_with_a_bool_or_a_float_in_its_session_is_refused(field: str, bad: object) -> None:
    doc = _grant_json()
    doc["session"][field] = bad
    with pytest.raises(BadInputError, match=rf"session\.{field}: .*(integer|bool|float)"):
        SessionGrant.from_json(json.dumps(doc))


@pytest.mark.parametrize("field", ["chain_id", "epoch"])
@pytest.mark.parametrize("bad", [False, True, 1.0])
def test_a_grants_json_with_a_bool_or_a_float_chain_or_epoch_is_refused(field: str, bad: object) -> None:
    doc = _grant_json()
    doc[field] = bad
    with pytest.raises(BadInputError, match=rf"{field}: .*(integer|bool|float)"):
        SessionGrant.from_json(json.dumps(doc))


def test_a_grants_json_as_written_is_read_back_unchanged() -> None:
    doc = _grant_json()
    assert json.loads(SessionGrant.from_json(json.dumps(doc)).to_json()) == doc


def _request(expiry: object) -> dict[str, Any]:
    return {
        "chainId": "0x1",
        "expiry": expiry,
        "signer": {"type": "account", "data": {"id": KEY}},
        "permission": {"type": "native-token-recurring-allowance", "data": {}},
    }


@pytest.mark.parametrize("bad", [False, True, 1.7e9])
def test_an_erc7715_expiry_of_false_is_refused_not_read_as_no_expiry(bad: object) -> None:
    with pytest.raises(ValueError, match=r"(?s)expiry.*(integer|bool|float)"):
        PermissionRequest.model_validate_json(json.dumps(_request(bad)))
    with pytest.raises(ValueError, match=r"(?s)expiry.*(integer|bool|float)"):
        PermissionRequest.model_validate(_request(bad))


def test_an_erc7715_expiry_as_an_integer_or_decimal_text_is_read() -> None:
    assert PermissionRequest.model_validate(_request(1_700_000_000)).expiry == 1_700_000_000
    assert PermissionRequest.model_validate(_request("1700000000")).expiry == 1_700_000_000


@pytest.mark.parametrize("bad", [False, True, 0.0, 5e16])
def test_the_consent_servers_gas_cap_is_integer_wei(bad: object) -> None:
    with pytest.raises(BadInputError, match=r"max_gas_cost.*integer"):
        ConsentServer(None, max_gas_cost=bad)  # type: ignore[arg-type]  # refused before the network is used
