"""ERC-7715: requests read as a keyscope session and written back, responses whose context carries the grant,
wallet_revokePermissions, the permissions capability, and a clear refusal for every type keyscope cannot grant
exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope import Policy, SessionGrant, SessionKey, arg
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
from keyscope.session import Condition, Rule, Session
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
@given(session=sessions(max_permissions=4), chain_id=st.integers(1, 2**64), account=st.none() | addresses)
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
@given(session=sessions(), factory=st.none() | addresses)
def test_responses_carry_the_grant_in_their_context(session: Session, factory: str | None) -> None:
    plan = plan_from_requests(_wire(requests_for_session(session, chain_id=31337)))
    grant = _grant(session, factory=factory)
    responses = responses_for(plan, grant)
    assert len(responses) == len(session.permissions)
    for response in responses:
        wire = json.loads(json.dumps(response.model_dump(mode="json", by_alias=True, exclude_none=True)))
        assert wire["chainId"] == "0x7a69" and wire["address"] == grant.account
        assert wire["expiry"] == session.valid_until
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
    assert plan.session_key == key.address and plan.valid_until == 1_900_000_000
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
    assert permissions["permissionTypes"] == ["contract-call"]
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


def test_a_context_keyscope_did_not_write_is_refused() -> None:
    with pytest.raises(BadInputError, match="not written by keyscope"):
        grant_from_context("0x016562aa41a8697720ce0943f003141f5deae0060000771577157715")
    with pytest.raises(BadInputError, match="not a valid ERC-7715 object"):
        grant_to_revoke({"context": "0x00"})


def test_a_malformed_request_names_the_field() -> None:
    with pytest.raises(BadInputError, match=r"request 0 is not a valid ERC-7715 object: chainId"):
        plan_from_requests([{**_request(_CALL), "chainId": "seven"}])
    assert TypedEntry(type={"custom": "x"}, data={}).type == "x"  # type: ignore[arg-type]
