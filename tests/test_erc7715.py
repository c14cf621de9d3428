"""ERC-7715: requests read as a keyscope session and written back, responses whose context carries the grant,
wallet_revokePermissions, the permissions capability, and a clear refusal for every type keyscope cannot grant
exactly."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope import Policy, SessionGrant, SessionKey, arg
from keyscope.clock import LAST_READABLE_TIME, utc_text
from keyscope.erc7715 import (
    GAS_COST_POLICY,
    PAYMASTERS_POLICY,
    REFUSED_TYPES,
    PermissionRequest,
    PermissionResponse,
    TypedEntry,
    UnsupportedTypeError,
    address_of_did_key,
    capabilities,
    did_key_of,
    grant_from_context,
    grant_from_response,
    grant_to_revoke,
    plan_from_requests,
    requests_for_session,
    responses_for,
)
from keyscope.errors import BadInputError
from keyscope.hexutil import to_address
from keyscope.policy import Limits
from keyscope.session import Condition, Limit, LimitKind, Rule, Session
from support.strategies import addresses, sessions

TOKEN = to_address("0x" + "a0" * 20)
SHOP = to_address("0x" + "5b" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)


def _wire(requests: list[PermissionRequest]) -> list[dict[str, Any]]:
    """What a dapp sends: the JSON text of the requests, parsed."""
    parsed: list[dict[str, Any]] = json.loads(json.dumps([r.to_wire() for r in requests]))
    return parsed


def _grant(session: Session, account: str = ACCOUNT, factory: str | None = None) -> SessionGrant:
    return SessionGrant(
        session=session,
        account=account,
        module="0x" + "11" * 20,
        chain_id=31337,
        entry_point="0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        epoch=3,
        session_id=session.session_id(account, 3),
        how="offchain",
        owner_signature=b"\x01" * 65,
        factory=factory,
        factory_data=b"\xca\xfe" if factory else b"",
    )


# --------------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    session=sessions(max_permissions=4, last_time=LAST_READABLE_TIME - 1),
    chain_id=st.integers(1, 2**64),
    account=st.none() | addresses,
)
def test_a_session_written_as_requests_reads_back_the_same(
    session: Session, chain_id: int, account: str | None
) -> None:
    requests = requests_for_session(session, chain_id=chain_id, account=account)
    plan = plan_from_requests(_wire(requests))
    assert (plan.chain_id, plan.account, plan.session_key) == (chain_id, account, session.session_key)
    assert plan.session(max_gas_cost=session.max_gas_cost, salt=session.salt) == session
    # and written again, the same requests
    rebuilt = plan.session(max_gas_cost=session.max_gas_cost, salt=1)
    assert _wire(requests_for_session(rebuilt, chain_id=chain_id, account=account)) == _wire(requests)


@settings(max_examples=40, deadline=None)
@given(session=sessions(last_time=LAST_READABLE_TIME - 1), factory=st.none() | addresses)
def test_responses_carry_the_grant_in_their_context(session: Session, factory: str | None) -> None:
    plan = plan_from_requests(_wire(requests_for_session(session, chain_id=31337)))
    grant = _grant(session, factory=factory)
    responses = responses_for(plan, grant)
    assert len(responses) == len(session.permissions)
    for response in responses:
        wire = json.loads(json.dumps(response.model_dump(mode="json", by_alias=True, exclude_none=True)))
        assert wire["chainId"] == "0x7a69" and wire["address"] == grant.account
        assert wire["expiry"] == (session.valid_until + 1 if session.valid_until else 0)
        assert ("accountMeta" in wire) == (factory is not None)
        assert PermissionResponse.model_validate(wire) == response
        assert grant_from_response(wire) == grant
        assert grant_to_revoke({"permissionContext": wire["context"]}).session_id == grant.session_id


def test_a_hand_written_request_reads_as_the_policy_builder_makes_it() -> None:
    key = SessionKey.generate()
    request = {
        "chainId": "0x7a69",
        "address": ACCOUNT,
        "expiry": 1_900_000_000,
        "signer": {"type": "key", "data": {"id": did_key_of(_public(key))}},
        "permission": {
            "type": "contract-call",
            "data": {
                "address": TOKEN,
                "function": "transfer(address to, uint256 amount)",
                "rules": [
                    {"arg": "to", "op": "==", "value": SHOP},
                    {"arg": "amount", "op": "in", "values": ["1", "0xf4240"]},
                ],
            },
        },
        "policies": [
            {"type": GAS_COST_POLICY, "data": {"limit": "0x2386f26fc10000"}},
            {"type": PAYMASTERS_POLICY, "data": {"addresses": [SHOP]}},
        ],
    }
    plan = plan_from_requests([request])
    assert plan.session_key == key.address and plan.valid_until == 1_899_999_999
    session = plan.session(max_gas_cost=0, salt=7)
    assert session.max_gas_cost == 10**16 and session.paymasters == (SHOP,)
    expected = Policy.call(
        TOKEN,
        "transfer(address to, uint256 amount)",
        rules=[arg("to") == SHOP, arg("amount").in_range(1, 10**6)],
    )
    assert session.permissions == (expected,)


def test_plain_transfers_and_raw_rules() -> None:
    request = _request(
        {"type": "contract-call", "data": {"address": SHOP, "selector": "0x00000000", "valueLimit": "1000"}}
    )
    (permission,) = plan_from_requests([request]).permissions
    assert permission == Policy.transfer(SHOP, 1000)
    raw = _request(
        {
            "type": "contract-call",
            "data": {
                "address": TOKEN,
                "selector": "0x12345678",
                "rules": [{"offset": 32, "type": "int64", "op": ">=", "value": "-5", "name": "delta"}],
            },
        }
    )
    (permission,) = plan_from_requests([raw]).permissions
    assert permission.selector == bytes.fromhex("12345678")
    assert permission.rules == (
        Rule(
            condition=Condition.GREATER_THAN_OR_EQUAL,
            offset=32,
            arg_type=0x38,
            values=(Rule.signed_word(-5),),
            name="delta",
        ),
    )


def test_did_key_of_a_secp256k1_key_is_its_address() -> None:
    key = SessionKey.generate()
    did = did_key_of(_public(key))
    assert did.startswith("did:key:zQ3s")  # how every secp256k1 did:key begins
    assert address_of_did_key(did) == key.address
    with pytest.raises(BadInputError, match="not a secp256k1 key"):
        address_of_did_key("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")  # an Ed25519 key
    with pytest.raises(BadInputError, match="not a did:key"):
        address_of_did_key("did:web:example")


def test_the_permissions_capability_lists_what_keyscope_grants() -> None:
    answer = capabilities([31337, 1])
    assert set(answer) == {"0x7a69", "0x1"}
    permissions = answer["0x7a69"]["permissions"]
    assert permissions["supported"] is True
    assert permissions["permissionTypes"] == [
        "contract-call",
        "erc20-token-transfer",
        "native-token-transfer",
        "native-token-limit",
    ]
    assert {"gas-limit", "call-limit", "rate-limit"} <= set(permissions["policyTypes"])
    assert set(permissions["signerTypes"]) == {"key", "account"}
    assert GAS_COST_POLICY in permissions["policyTypes"]


# --------------------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------------------


def _public(key: SessionKey) -> bytes:
    import coincurve

    return bytes(coincurve.PrivateKey(key.private_key).public_key.format(compressed=True))


def _request(permission: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "chainId": 31337,
        "expiry": 1_900_000_000,
        "signer": {"type": "account", "data": {"address": SHOP}},
        "permission": permission,
        "policies": [],
    }
    base.update(fields)
    return base


_CALL = {"type": "contract-call", "data": {"address": TOKEN, "function": "mint(address to)"}}


@pytest.mark.parametrize(("category", "type_name"), sorted(REFUSED_TYPES))
def test_every_known_type_keyscope_cannot_grant_is_refused_by_name(category: str, type_name: str) -> None:
    entry = {"type": type_name, "data": {"allowance": "0x1"}}
    if category == "permission":
        request = _request(entry)
    elif category == "policy":
        request = _request(_CALL, policies=[entry])
    else:
        request = _request(_CALL, signer=entry)
    with pytest.raises(UnsupportedTypeError) as refused:
        plan_from_requests([request])
    assert refused.value.category == category and refused.value.type_name == type_name
    assert repr(type_name) in str(refused.value) and REFUSED_TYPES[(category, type_name)] in str(
        refused.value
    )


def test_an_unknown_type_is_refused_naming_it_and_what_is_granted() -> None:
    with pytest.raises(UnsupportedTypeError, match=r"permission type 'teleport'.*grants: contract-call"):
        plan_from_requests([_request({"type": "teleport", "data": {}})])
    with pytest.raises(UnsupportedTypeError, match="policy type 'frobnicate'"):
        plan_from_requests([_request(_CALL, policies=[{"type": {"custom": "frobnicate"}, "data": {}}])])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"address": TOKEN, "function": "mint(address to)", "allowance": "0x10"}, "unknown field"),
        ({"address": TOKEN, "function": "mint(address to)", "rules": [{"arg": "to", "op": "~", "value": SHOP}]}, "'op'"),
        ({"address": TOKEN, "function": "mint(address to)", "rules": [{"arg": "who", "op": "==", "value": SHOP}]}, "no argument named 'who'"),
        # digits other than ASCII's are no index ("²" made int() raise a ValueError past the request's refusals; "\u0661" read as 1)
        ({"address": TOKEN, "function": "mint(address to)", "rules": [{"arg": "²", "op": "==", "value": SHOP}]}, "no argument named '²'"),
        ({"address": TOKEN, "function": "mint(address to, address from)", "rules": [{"arg": "\u0661", "op": "==", "value": SHOP}]}, "no argument named '\u0661'"),
        ({"address": TOKEN, "function": "mint((address to) order)", "rules": [{"arg": "order.²", "op": "==", "value": SHOP}]}, "no component named '²'"),
        ({"address": TOKEN, "function": "mint(string name)", "rules": [{"arg": "name", "op": "==", "value": "x"}]}, "dynamic value"),
        ({"address": TOKEN, "function": "mint(uint8 n)", "rules": [{"arg": "n", "op": "<=", "value": 256}]}, "out of range"),
        ({"address": TOKEN, "function": "mint(address to)", "rules": [{"arg": "to", "op": "in", "values": [SHOP]}]}, "low, high"),
        ({"address": TOKEN, "selector": "0x12345678", "rules": [{"arg": 0, "op": "==", "value": 1}]}, "needs the permission's 'function'"),
        ({"address": TOKEN}, "name the function"),
        ({"function": "mint(address to)"}, "'address'"),
        ({"address": TOKEN, "selector": "0x00000000", "rules": [{"offset": 0, "type": "uint256", "op": "==", "value": 1}]}, "plain transfers"),
    ],
)  # fmt: skip
def test_malformed_contract_calls_are_refused_saying_what_is_wrong(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        plan_from_requests([_request({"type": "contract-call", "data": data})])


def test_requests_of_one_call_must_make_one_session() -> None:
    first = _request(_CALL)
    second = _request(_CALL, expiry=1_900_000_001)
    with pytest.raises(BadInputError, match="request 1 asks another expiry"):
        plan_from_requests([first, second])
    gas = {"type": GAS_COST_POLICY, "data": {"limit": "0x3b9aca00"}}
    other_gas = {"type": GAS_COST_POLICY, "data": {"limit": "0x77359400"}}
    call2 = {"type": "contract-call", "data": {"address": SHOP, "function": "mint(address to)"}}
    with pytest.raises(BadInputError, match="another request asked"):
        plan_from_requests([_request(_CALL, policies=[gas]), _request(call2, policies=[other_gas])])
    with pytest.raises(BadInputError, match="non-empty list"):
        plan_from_requests([])


@pytest.mark.parametrize(
    ("expiry", "year"),
    [(LAST_READABLE_TIME + 1, "10,000"), (1_767_225_600_000, "57,971"), (1_800_000_000_123, "59,009")],
    ids=["first-second-after-9999", "2026-01-01-in-ms", "date-now-in-ms"],
)
def test_an_expiry_in_milliseconds_is_refused_naming_what_it_would_mean(expiry: int, year: str) -> None:
    """ERC-7715's expiry is unix seconds; ``Date.now()`` (milliseconds) was granted as written: a session ending in
    the year 57,971, which in effect never expires. An expiry after the year 9999 can only be milliseconds: it is
    refused, naming the value, the year it means in seconds, the date it means in milliseconds and what to pass."""
    with pytest.raises(BadInputError) as refused:
        plan_from_requests([_request(_CALL, expiry=expiry)])
    message = str(refused.value)
    assert message.startswith(f"the requests' expiry {expiry} is after the year 9999 "), message
    assert f"as seconds it ends in the year {year}: a session that in effect never expires" in message
    assert f"it can only be milliseconds, {utc_text(expiry // 1000)} read as such" in message
    assert "pass Math.floor(Date.now() / 1000) plus the session's duration in seconds" in message
    assert message.endswith("Nothing was granted"), message


def test_an_expiry_past_the_year_9999_even_in_milliseconds_is_refused() -> None:
    """The largest expiry the wire takes (2**48 - 1, a stand-in for "no end" elsewhere) is after the year 9999 read
    either way: refused, saying so and that a session without end is asked for with expiry 0."""
    with pytest.raises(BadInputError) as refused:
        plan_from_requests([_request(_CALL, expiry=2**48 - 1)])
    message = str(refused.value)
    assert "as seconds it ends in the year 8,921,556" in message, message
    assert "and would be even as milliseconds" in message and "for a session without end, expiry 0" in message


def test_a_valid_after_timestamp_in_milliseconds_is_refused() -> None:
    """keyscope's ``valid-after`` policy takes unix seconds too: ``Date.now()`` there made a session that starts in
    the year 57,971, never valid. Refused the same way, naming the policy."""
    policy: dict[str, Any] = {"type": "valid-after", "data": {"timestamp": 1_767_225_600_000}}
    with pytest.raises(BadInputError) as refused:
        plan_from_requests([_request(_CALL, expiry=0, policies=[policy])])
    message = str(refused.value)
    assert message.startswith(
        "request 0 policy 0 (valid-after): the timestamp 1767225600000 is after the year 9999"
    )
    assert "as seconds the session starts in the year 57,971: it would never be valid" in message, message
    assert "it can only be milliseconds, 2026-01-01 00:00:00 UTC read as such" in message, message
    policy["data"]["timestamp"] = 1_767_225_600
    assert plan_from_requests([_request(_CALL, expiry=0, policies=[policy])]).valid_after == 1_767_225_600


@pytest.mark.parametrize("expiry", [0, 1_900_000_000, LAST_READABLE_TIME])
def test_an_expiry_in_seconds_or_none_is_granted_as_asked(expiry: int) -> None:
    """Expiry 0 still asks for a session without end (the consent page warns about it), and every time in seconds
    up to the last second of the year 9999 is taken as the second the session has ended by: its last valid second
    (the EntryPoint's inclusive ``validUntil``) is the one before."""
    plan = plan_from_requests([_request(_CALL, expiry=expiry)])
    assert plan.valid_until == (expiry - 1 if expiry else 0)
    assert plan.session(max_gas_cost=0, salt=1).valid_until == plan.valid_until


def test_an_expiry_of_1_is_refused_rather_than_granted_without_end() -> None:
    """An ``expiry`` of 1 leaves a last valid second of 0, which the EntryPoint reads as no expiry at all: the
    request that asked for a session ended in 1970 would have been granted one that never ends."""
    with pytest.raises(BadInputError) as refused:
        plan_from_requests([_request(_CALL, expiry=1)])
    message = str(refused.value)
    assert "expiry 1" in message and "no expiry" in message and "Nothing was granted" in message, message


@pytest.mark.parametrize("form", ["text", "bytes", "one request"])
def test_the_params_as_json_text_or_one_request_say_to_give_the_list(form: str) -> None:
    """``plan_from_requests(json.dumps(params))`` was read character by character: "request 0 is not a valid
    ERC-7715 object: the object: Input should be a valid dictionary", naming a request the caller never gave."""
    wire = [_request(_CALL)]
    one = PermissionRequest.model_validate(wire[0])
    given = {"text": json.dumps(wire), "bytes": json.dumps(wire).encode(), "one request": one}[form]
    with pytest.raises(BadInputError) as info:
        plan_from_requests(given)  # type: ignore[arg-type]
    said = str(info.value)
    assert said.startswith("wallet_grantPermissions takes a non-empty list of PermissionRequest objects"), (
        said
    )
    assert "request 0" not in said and "Input should be" not in said
    if form != "one request":
        assert said.endswith("for the params as JSON text, give json.loads(text)"), said
    assert (
        plan_from_requests(json.loads(json.dumps(wire))).session_key == plan_from_requests([one]).session_key
    )


def test_a_session_wide_policy_asked_by_some_requests_only_is_refused() -> None:
    """A cap or a paymaster list asked on one request would bind the whole session: the calls of a request that
    asked neither would go over the wallet's default cap, or uncapped through the listed paymaster."""
    call2 = {"type": "contract-call", "data": {"address": SHOP, "function": "mint(address to)"}}
    paymasters = {"type": PAYMASTERS_POLICY, "data": {"addresses": [SHOP]}}
    big_cap = {"type": GAS_COST_POLICY, "data": {"limit": hex(10**18)}}
    for policy in (paymasters, big_cap):
        with pytest.raises(
            BadInputError, match=f"do not both ask the session-wide policy '{policy['type']}'"
        ):
            plan_from_requests([_request(_CALL, policies=[policy]), _request(call2)])
        with pytest.raises(
            BadInputError, match=f"do not both ask the session-wide policy '{policy['type']}'"
        ):
            plan_from_requests([_request(_CALL), _request(call2, policies=[policy])])
    # asked by every request, it is the session's
    both = plan_from_requests(
        [_request(_CALL, policies=[paymasters]), _request(call2, policies=[paymasters])]
    )
    assert both.paymasters == (SHOP,)


def test_a_context_keyscope_did_not_write_is_refused() -> None:
    with pytest.raises(BadInputError, match="not written by keyscope"):
        grant_from_context("0x016562aa41a8697720ce0943f003141f5deae0060000771577157715")
    # what keyscope's contexts start with is said as theirs (not as the given one's start), and a short context is
    # shown whole, without an ellipsis
    with pytest.raises(BadInputError) as info:
        grant_from_context("0x1234")
    assert (
        "context 0x1234 was not written by keyscope (keyscope's contexts start with 'keyscope.grant.v1:'"
        in str(info.value)
    ), str(info.value)
    with pytest.raises(BadInputError, match="not a valid ERC-7715 object"):
        grant_to_revoke({"context": "0x00"})


def test_a_malformed_request_names_the_field() -> None:
    with pytest.raises(BadInputError, match=r"request 0 is not a valid ERC-7715 object: chainId"):
        plan_from_requests([{**_request(_CALL), "chainId": "seven"}])
    assert TypedEntry(type={"custom": "x"}, data={}).type == "x"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# what sits beside a type's data, who the signer is, how numbers are spelled
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        ("permission", "policies", [{"type": "call-limit", "data": {"count": 1}}]),
        ("permission", "rules", [{"type": "expiry", "data": {"timestamp": 1_800_000_000}}]),
        ("permission", "valueLimit", "0x0"),
        ("policy", "interval", 3600),
        ("signer", "expiry", 1_800_000_000),
    ],
)
def test_a_constraint_beside_a_types_data_is_refused_rather_than_dropped(
    where: str, field: str, value: Any
) -> None:
    """A field next to ``type`` and ``data`` is no part of the grant: keyscope maps ``data`` only. A dapp that put
    a call limit or a rule there (an earlier revision of the draft nests policies in each permission, the latest
    has ``rules``) would have been granted the permission without it, its response echoing the field back as if
    granted."""
    entry = {"type": "call-limit", "data": {"count": 3}}
    request = json.loads(json.dumps(_request(_PAY, policies=[entry])))
    target = {
        "permission": request["permission"],
        "policy": request["policies"][0],
        "signer": request["signer"],
    }
    target = target[where]
    target[field] = value
    location = {"permission": "permission", "policy": r"policies\.0", "signer": "signer"}[where]
    with pytest.raises(
        BadInputError,
        match=rf"request 0 .*: {location}: .*unknown field\(s\) '{field}' beside 'type' and 'data'.*refuses",
    ):
        plan_from_requests([request])


def test_the_draft_fields_beside_data_are_read_as_flags_and_echoed() -> None:
    flagged = {**_PAY, "required": True, "isAdjustmentAllowed": False}
    plan = plan_from_requests([_request(flagged)])
    assert plan.requests[0].permission.model_extra == {"required": True, "isAdjustmentAllowed": False}
    assert plan.requests[0].to_wire()["permission"]["isAdjustmentAllowed"] is False
    # a flag that is no bool says nothing keyscope can read: refused, not taken for yes or no
    with pytest.raises(BadInputError, match="'isAdjustmentAllowed' is true or false, got 'no'"):
        plan_from_requests([_request({**_PAY, "isAdjustmentAllowed": "no"})])


def test_an_account_signer_naming_two_keys_is_refused() -> None:
    """``account`` reads ``address``, or ``id`` without one; a signer giving both, for two keys, was granted to
    ``address`` while the dapp may hold ``id``'s key (or the other way round)."""
    signer = {"type": "account", "data": {"address": SHOP, "id": TOKEN}}
    with pytest.raises(BadInputError, match=rf"'address' {SHOP} and 'id' {TOKEN} name two keys"):
        plan_from_requests([_request(_PAY, signer=signer)])
    same = {"type": "account", "data": {"address": SHOP, "id": SHOP.lower()}}
    assert plan_from_requests([_request(_PAY, signer=same)]).session_key == SHOP


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("0010", 10), ("0x0010", 16), ("0X10", 16), ("16", 16), (16, 16), ("0", 0), ("0x0", 0), (hex(2**256 - 1), 2**256 - 1)],
)  # fmt: skip
def test_an_amount_reads_as_the_number_it_spells(spelling: Any, value: int) -> None:
    """Decimal strings are decimal (leading zeros too, as JSON-RPC clients read them), 0x and 0X strings hex."""
    data = {**_PAY["data"], "valueLimit": spelling}
    plan = plan_from_requests([_request({"type": "contract-call", "data": data})])
    assert plan.permissions[0].value_limit == value


@pytest.mark.parametrize("spelling", ["0x", "", "-1", "-0x1", "1e3", "0b11", "1_000", "0o17", " ", True, 1.0])
def test_an_amount_spelled_as_no_uint256_is_refused_naming_it(spelling: Any) -> None:
    data = {**_PAY["data"], "valueLimit": spelling}
    with pytest.raises(BadInputError, match=r"valueLimit: .* (is not an integer|is not a uint256 amount)"):
        plan_from_requests([_request({"type": "contract-call", "data": data})])


def test_a_rule_offset_must_be_a_number_of_bytes() -> None:
    rule = {"offset": True, "type": "uint256", "op": "<", "value": "1"}
    data = {"address": TOKEN, "selector": "0x12345678", "rules": [rule]}
    with pytest.raises(BadInputError, match="by 'offset' \\(bytes\\) and 'type'"):
        plan_from_requests([_request({"type": "contract-call", "data": data})])


@pytest.mark.parametrize(
    ("rule", "function", "said"),
    [
        (
            {"arg": "b", "op": "==", "value": "0x1234"},
            "f(bytes4 b)",
            "argument `b` (bytes4) of f(bytes4): expected",
        ),
        (
            {"arg": "a", "op": "==", "value": "0x12"},
            "f(address a)",
            "argument `a` (address) of f(address): '0x12'",
        ),
        (
            {"arg": "a", "op": "in", "values": [1, 300]},
            "f(uint8 a)",
            "argument `a` (uint8) of f(uint8): 300 is out",
        ),
        (
            {"offset": 0, "type": "bytes4", "op": "==", "value": "0x12"},
            None,
            "the bytes4 word at byte 0: expected",
        ),
        (
            {"offset": 32, "type": "uint8", "op": "<", "value": 256},
            None,
            "the uint8 word at byte 32: 256 is out",
        ),
    ],
)
def test_a_rule_value_its_type_cannot_hold_is_refused_naming_the_rule(
    rule: dict[str, Any], function: str | None, said: str
) -> None:
    """A rule's value its argument's type cannot hold (a bytes4 of 2 bytes, an address of one, 300 for a uint8) is
    refused with the rule's place in the requests, as every other fault of a rule is, and a rule by offset is named by
    its word, not by the stand-in function its value is read through."""
    data: dict[str, Any] = {"address": TOKEN, "rules": [rule]}
    data.update({"function": function} if function else {"selector": "0x12345678"})
    with pytest.raises(BadInputError) as info:
        plan_from_requests([_request({"type": "contract-call", "data": data}), _request(_PAY)])
    assert str(info.value).startswith(f"request 0 permission contract-call.rules[0]: {said}"), str(info.value)
    assert "rule(" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# allowances and limits: native-token-transfer, erc20-token-transfer, gas-limit, call-limit, rate-limit
# --------------------------------------------------------------------------------------------------

DAY = 86400
_GAS = {"type": GAS_COST_POLICY, "data": {"limit": "0x2386f26fc10000"}}
_PAY = {
    "type": "contract-call",
    "data": {"address": SHOP, "selector": "0x00000000", "valueLimit": "0xde0b6b3a7640000"},
}


def _shape(limit: Limit) -> tuple[int, int, int, tuple[tuple[int, int], ...]]:
    """What the grant signs of a limit (its labels aside)."""
    return (limit.kind, limit.amount, limit.period, tuple((m.permission, m.offset) for m in limit.meters))


def _limited_requests(
    native: int = 10**18,
    native_period: int | None = None,
    tokens: int = 5 * 10**6,
    token_period: int | None = DAY,
    calls: int = 3,
    rate: tuple[int, int] = (2, 3600),
    gas: int = 10**17,
) -> list[dict[str, Any]]:
    """Requests asking for each allowance and limit, in the order keyscope writes them."""
    session_wide = [_GAS, {"type": "gas-limit", "data": {"limit": hex(gas)}}]
    erc20: dict[str, Any] = {"address": TOKEN, "allowance": hex(tokens), "ticker": "USDC"}
    if token_period:
        erc20["periodDuration"] = token_period
    allowance: dict[str, Any] = {"allowance": hex(native)}
    if native_period:
        allowance["periodDuration"] = native_period
    return [
        _request(
            _PAY,
            policies=[
                *session_wide,
                {"type": "call-limit", "data": {"count": calls}},
                {"type": "rate-limit", "data": {"count": rate[0], "interval": rate[1]}},
            ],
        ),
        _request({"type": "erc20-token-transfer", "data": erc20}, policies=session_wide),
        _request({"type": "native-token-transfer", "data": allowance}, policies=session_wide),
    ]


def test_each_allowance_and_limit_type_maps_to_the_limit_that_enforces_it() -> None:
    plan = plan_from_requests(_limited_requests())
    session = plan.session(max_gas_cost=0, salt=0)
    expected = Session(
        session_key=SHOP,
        valid_until=1_899_999_999,
        max_gas_cost=10**16,
        permissions=(
            Policy.transfer(SHOP, 10**18, calls=3, rate=(2, "hour")),
            *Policy.erc20_allowance(TOKEN, 5 * 10**6, "day", symbol="USDC"),
        ),
        limits=(Limits.gas(10**17), Limits.native(10**18)),
    )
    assert [_shape(x) for x in session.limits] == [_shape(x) for x in expected.limits]
    assert [x.op for x in session.limits] == [
        LimitKind.GAS,
        LimitKind.NATIVE,
        LimitKind.CALLS,
        LimitKind.CALLS,
        LimitKind.AMOUNT,
    ]
    assert session.permissions == expected.permissions
    assert session.struct_hash(ACCOUNT, 3) == expected.struct_hash(ACCOUNT, 3)
    # the ERC-20 allowance counts transfer, transferFrom, approve and increaseAllowance, per day
    budget = session.limits[4]
    assert (budget.amount, budget.period, len(budget.meters), budget.unit) == (
        5 * 10**6,
        DAY,
        2,
        "USDC",
    )  # transfers only: no approval per period (attack 260)
    # the call and rate limits count the transfer permission's calls only; the native allowance every call
    # that can carry value (here the transfer)
    assert [m.permission for m in session.limits[2].meters] == [0]
    assert session.limits[3].period == 3600
    assert [m.permission for m in session.limits[1].meters] == [0]


def test_the_older_native_token_limit_is_the_same_allowance() -> None:
    older = _request({"type": "native-token-limit", "data": {"amount": "0x10", "periodDuration": DAY}})
    newer = _request({"type": "native-token-transfer", "data": {"allowance": "16", "periodDuration": DAY}})
    sessions_made = [
        plan_from_requests([_request(_PAY), r]).session(max_gas_cost=0, salt=0) for r in (older, newer)
    ]
    assert sessions_made[0] == sessions_made[1]
    assert [_shape(x) for x in sessions_made[0].limits] == [(LimitKind.NATIVE, 16, DAY, ((0, 0),))]


@settings(max_examples=25, deadline=None)
@given(
    native=st.integers(0, 2**256 - 1),
    native_period=st.none() | st.integers(60, 2**32 - 1),
    tokens=st.integers(0, 2**256 - 1),
    token_period=st.none() | st.integers(60, 2**32 - 1),
    calls=st.integers(1, 2**64),  # a count of 0 is refused (attack 388)
    rate=st.tuples(st.integers(1, 2**64), st.integers(60, 2**32 - 1)),
    gas=st.integers(0, 2**256 - 1),
)
def test_limited_requests_round_trip_through_a_session_and_its_responses(
    native: int,
    native_period: int | None,
    tokens: int,
    token_period: int | None,
    calls: int,
    rate: tuple[int, int],
    gas: int,
) -> None:
    requests = _limited_requests(native, native_period, tokens, token_period, calls, rate, gas)
    plan = plan_from_requests(requests)
    session = plan.session(max_gas_cost=0, salt=9)
    read = [PermissionRequest.model_validate(r) for r in requests]
    # the session written as requests: the requests asked
    assert _wire(requests_for_session(session, chain_id=31337)) == _wire(read)
    # and the responses echo each request's permission with its policies
    responses = responses_for(plan, _grant(session))
    assert [(r.permission, r.policies) for r in responses] == [(r.permission, r.policies) for r in read]
    assert grant_from_response(responses[0].to_wire()).session == session


@pytest.mark.parametrize(
    ("permission", "policies", "message"),
    [
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x5", "startTime": 1_800_000_000}}, [], "'startTime' is refused"),
        ({"type": "native-token-transfer", "data": {"allowance": "0x5", "startTime": 1_800_000_000}}, [], "'startTime' is refused"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x5", "periodDuration": 30}}, [], r"periodDuration: 30 is not a period keyscope's module keeps"),
        ({"type": "native-token-transfer", "data": {"allowance": "0x5", "periodDuration": "day"}}, [], r"periodDuration: 'day' is not a period"),
        ({"type": "native-token-transfer", "data": {"allowance": "0x5", "periodDuration": 2**32}}, [], "below 2\\*\\*32"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x5", "to": SHOP}}, [], r"unknown field\(s\) 'to'"),
        ({"type": "erc20-token-transfer", "data": {"address": TOKEN}}, [], "'allowance' .* required"),
        ({"type": "native-token-transfer", "data": {"ticker": "ETH"}}, [], "unknown field"),
        ({"type": "native-token-transfer", "data": {"allowance": "0x5"}}, [{"type": "call-limit", "data": {"count": 1}}], "makes no calls of its own"),
        (_CALL, [{"type": "rate-limit", "data": {"count": 1, "interval": 59}}], "interval: 59 is not a period"),
        (_CALL, [{"type": "rate-limit", "data": {"count": 1}}], "'interval' .* required"),
        (_CALL, [{"type": "call-limit", "data": {"count": -1}}], "not a uint256"),
        (_CALL, [{"type": "gas-limit", "data": {"limit": "0x1", "per": 3600}}], "unknown field"),
    ],
)  # fmt: skip
def test_a_field_keyscope_cannot_enforce_exactly_is_refused_by_name(
    permission: dict[str, Any], policies: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        plan_from_requests([_request(_PAY), _request(permission, policies=policies)])


def test_a_gas_cost_cap_of_zero_is_refused_rather_than_granted_as_no_cap() -> None:
    """A dapp asking ``gas-cost-per-operation`` with a limit of 0 asked for the tightest cap there is; the module
    reads a maxGasCost of 0 as no cap at all, so the session made of it would let one operation cost anything."""
    zero = {"type": GAS_COST_POLICY, "data": {"limit": "0x0"}}
    with pytest.raises(
        BadInputError, match="a cap of 0 wei is refused: the module reads a maxGasCost of 0 as no cap"
    ):
        plan_from_requests([_request(_PAY, policies=[zero])]).session(max_gas_cost=10**16, salt=0)
    # a cap the module keeps is granted as asked; no policy leaves the wallet's default
    one_gwei = {"type": GAS_COST_POLICY, "data": {"limit": hex(10**9)}}
    assert (
        plan_from_requests([_request(_PAY, policies=[one_gwei])]).session(max_gas_cost=10**16, salt=0).gas_cap
        == 10**9
    )
    assert plan_from_requests([_request(_PAY)]).session(max_gas_cost=10**16, salt=0).gas_cap == 10**16


def test_limits_the_requests_cannot_agree_on_or_carry_are_refused() -> None:
    gas = [{"type": "gas-limit", "data": {"limit": "0x1"}}]
    other = [{"type": "gas-limit", "data": {"limit": "0x2"}}]
    with pytest.raises(BadInputError, match="asks gas_limit 2, another request asked 1"):
        plan_from_requests([_request(_PAY, policies=gas), _request(_CALL, policies=other)])
    # a native allowance grants no transfer by itself: keyscope's permissions name their recipient
    with pytest.raises(BadInputError, match=r"the requests grant no call.*'selector': '0x00000000'"):
        plan_from_requests([_request({"type": "native-token-transfer", "data": {"allowance": "0x5"}})])
    # a native allowance with no permission that can carry value would count nothing
    native = _request({"type": "native-token-transfer", "data": {"allowance": "0x5"}})
    with pytest.raises(BadInputError, match="no permission of the session can carry any"):
        plan_from_requests([_request(_CALL), native]).session(max_gas_cost=0, salt=0)


def test_a_session_whose_limits_erc7715_cannot_say_is_not_written() -> None:
    transfer = Policy.transfer(SHOP, 10**18)
    for limits in ([Limits.operations(5)], [Limits.gas(10**17, per="day")]):
        session = Session(session_key=SHOP, permissions=(transfer,), limits=tuple(limits))
        with pytest.raises(
            BadInputError, match="cannot be written as ERC-7715 requests that ask for exactly it"
        ):
            requests_for_session(session, chain_id=1)
    # a call limit shared by the permissions of two requests has no request to sit on
    mint = Policy.call(TOKEN, "mint(address to)")
    shared = Limit(kind=LimitKind.CALLS, amount=2, meters=({"permission": 0}, {"permission": 1}))  # type: ignore[arg-type]
    session = Session(session_key=SHOP, permissions=(transfer, mint), limits=(shared,))
    with pytest.raises(BadInputError, match="cannot be written"):
        requests_for_session(session, chain_id=1)
    # built by the SDK in another order than the requests read: refused rather than written as another session
    session = Session(
        session_key=SHOP, permissions=(Policy.transfer(SHOP, 10**18, calls=2),), limits=(Limits.native(5),)
    )
    assert [x.op for x in session.limits] == [LimitKind.NATIVE, LimitKind.CALLS]
    plan = plan_from_requests(_wire(requests_for_session(session, chain_id=1)))
    assert plan.session(max_gas_cost=0, salt=0).struct_hash(ACCOUNT, 0) == session.struct_hash(ACCOUNT, 0)


# --------------------------------------------------------------------------------------------------
# on chain: an erc20-token-transfer grant, enforced by the module
# --------------------------------------------------------------------------------------------------

ETHER = 10**18


@pytest.fixture(scope="module")
def erc20(sessions, project, deployer):
    """A test token (after the session-scoped fixtures: ape snapshots the chain per fixture scope)."""
    return project.TestToken.deploy(sender=deployer)


def test_a_session_granted_from_an_erc20_request_is_refused_past_its_allowance(
    sessions, module, erc20, owner, session_key
) -> None:
    from keyscope.errors import BundlerRejectedError
    from keyscope.execution import Call

    account = sessions.account(owner)
    sessions.h.fund(account, ETHER)
    erc20.mint(account, 100, sender=sessions.h.funder)
    request = _request(
        {"type": "erc20-token-transfer", "data": {"address": erc20.address, "allowance": "0x5"}},
        signer={"type": "account", "data": {"address": session_key.address}},
    )
    session = plan_from_requests([request]).session(max_gas_cost=0, salt=0)
    sessions.grant_onchain(account, owner, session)
    shop = SessionKey.generate().address

    def pay(amount: int) -> Call:
        return Call.of(erc20.address, 0, erc20.transfer.encode_input(shop, amount))

    sessions.run(sessions.op(account, session_key, pay(3)))
    with pytest.raises(
        BundlerRejectedError, match=r"LimitExceeded\(callIndex=0, limitIndex=0, amount=3, left=2\)"
    ):
        sessions.run(sessions.op(account, session_key, pay(3)))
    # approve counts towards the same allowance: a spender cannot be handed more than is left
    approve = Call.of(erc20.address, 0, erc20.approve.encode_input(shop, 3))
    with pytest.raises(
        BundlerRejectedError, match=r"LimitExceeded\(callIndex=0, limitIndex=0, amount=3, left=2\)"
    ):
        sessions.run(sessions.op(account, session_key, approve))
    sessions.run(sessions.op(account, session_key, pay(2)))
    assert erc20.balanceOf(shop) == 5


def test_a_session_granted_from_a_native_allowance_and_a_call_limit_is_held_to_both(
    sessions, module, owner, session_key, chain
) -> None:
    """The value per call (``valueLimit``), the native allowance over every call and the request's ``call-limit``,
    as the requests ask them, are what the module counts: the limits come in the order the requests read (the native
    allowance first, then the call limit of the request that asked it)."""
    from keyscope.execution import Call

    account = sessions.account(owner)
    sessions.h.fund(account, 2 * ETHER)
    shop = SessionKey.generate().address
    tenth = ETHER // 10
    pay = {
        "type": "contract-call",
        "data": {"address": shop, "selector": "0x00000000", "valueLimit": hex(4 * tenth)},
    }
    signer = {"type": "account", "data": {"address": session_key.address}}
    requests = [
        _request(pay, signer=signer, policies=[{"type": "call-limit", "data": {"count": "3"}}]),
        _request({"type": "native-token-transfer", "data": {"allowance": str(ETHER)}}, signer=signer),
    ]
    session = plan_from_requests(requests).session(max_gas_cost=0, salt=0)
    assert [(x.op, x.amount) for x in session.limits] == [(LimitKind.NATIVE, ETHER), (LimitKind.CALLS, 3)]
    sessions.grant_onchain(account, owner, session)

    def send(value: int) -> str:
        return sessions.outcome(sessions.op(account, session_key, Call.of(shop, value, b"")))

    over = 4 * tenth + 1
    assert re.search(rf"ValueLimitExceeded\(callIndex=0, permissionIndex=0, value={over}\b", send(over))
    assert send(4 * tenth) == send(4 * tenth) == "ok"
    # the allowance has 0.2 ETH left: a call within its own value limit is refused past it
    assert f"LimitExceeded(callIndex=0, limitIndex=0, amount={4 * tenth}, left={2 * tenth})" in send(
        4 * tenth
    )
    assert send(2 * tenth) == "ok"
    # three calls made: the fourth is refused by the call limit, even carrying no value
    assert "LimitExceeded(callIndex=0, limitIndex=1, amount=1, left=0)" in send(0)
    assert chain.provider.get_balance(shop) == ETHER


def test_responses_refuse_a_grant_that_is_not_of_the_requests() -> None:
    """``responses_for`` echoes each request's permission beside the grant in ``context``: a grant of another
    chain, of another account than the requests name, or of another session (another key, another permission)
    would have the responses describe what the owner did not grant, so it is refused, naming what differs."""
    key = SessionKey.generate()
    session = Session(
        session_key=key.address,
        valid_until=1_900_000_000,
        max_gas_cost=10**16,
        salt=4,
        permissions=(Policy.call(SHOP, "buy(uint256 id)", rules=[arg("id") <= 5]),),
    )
    requests = _wire(requests_for_session(session, chain_id=31337, account=ACCOUNT))
    plan = plan_from_requests(requests)
    assert responses_for(plan, _grant(session))[0].address == ACCOUNT

    with pytest.raises(BadInputError, match=r"the grant is for chain 1, the requests ask for chain 31337"):
        responses_for(plan, _grant(session).model_copy(update={"chain_id": 1}))
    other_account = to_address("0x" + "ad" * 20)
    with pytest.raises(
        BadInputError, match=rf"the grant is for account {other_account}, the requests ask for"
    ):
        responses_for(plan, _grant(session, account=other_account))
    other_key = session.model_copy(update={"session_key": SessionKey.generate().address})
    with pytest.raises(BadInputError, match=r"is not the one the requests ask for .*sign plan\.session"):
        responses_for(plan, _grant(other_key))
    wider = session.model_copy(
        update={"permissions": (Policy.call(SHOP, "buy(uint256 id)", rules=[arg("id") <= 500]),)}
    )
    with pytest.raises(BadInputError, match=r"is not the one the requests ask for"):
        responses_for(plan, _grant(wider))
