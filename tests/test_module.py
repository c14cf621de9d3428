"""The module facade and the straight grant and operation paths.

* ``session_status`` is the one judgement of a session's status: a table of every branch, and properties
  (a revocation always wins; without the module's answer, only the window speaks).
* ``read_session_status`` reads it from the real module on ape's chain through a session's life: never used,
  enabled, revoked, invalidated with the account's epoch.
* A grant reads the chain once (epoch, code and clock together); an operation's build reads it once.
* ``UserOperation.replace`` validates exactly as the constructor does, for the fields it changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from keyscope import Policy, SessionKey, function_call
from keyscope.errors import InvalidFieldsError
from keyscope.grant import SessionGrant
from keyscope.module import SessionStatus, read_session_status, session_status
from keyscope.owner import GrantRequest
from keyscope.session import Session
from keyscope.userop import UINT128_MAX, UserOperation
from support.counting_chain import CountingChain
from support.sdk import mint_policy, sdk_owner  # noqa: F401 -- sdk_owner: the owner fixture

ACCOUNT = "0x" + "22" * 20
MODULE = "0x" + "33" * 20
ENTRY_POINT = "0x" + "44" * 20


def grant_of(
    *, valid_after: int = 0, valid_until: int = 0, how: str = "offchain", epoch: int = 0
) -> SessionGrant:
    permission = Policy.transfer("0x" + "55" * 20, 1)
    session = Session(
        session_key="0x" + "11" * 20,
        valid_after=valid_after,
        valid_until=valid_until,
        salt=7,
        permissions=(permission,),
    )
    return SessionGrant(
        session=session,
        account=ACCOUNT,
        module=MODULE,
        chain_id=1,
        entry_point=ENTRY_POINT,
        epoch=epoch,
        session_id=session.session_id(ACCOUNT, epoch),
        how=how,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------------------------------
# session_status
# --------------------------------------------------------------------------------------------------

WINDOW = {"valid_after": 100, "valid_until": 200}
S = SessionStatus


@pytest.mark.parametrize(
    ("grant", "facts", "expected"),
    [
        (grant_of(**WINDOW), {"revoked": True, "active": True, "now": 150}, S.REVOKED),
        (grant_of(**WINDOW), {"revoked": False, "active": True, "now": 250}, S.EXPIRED),
        (grant_of(**WINDOW), {"revoked": False, "active": True, "now": 50}, S.NOT_YET_VALID),
        (grant_of(**WINDOW), {"revoked": False, "active": True, "now": 150}, S.ACTIVE),
        (grant_of(**WINDOW), {"revoked": False, "active": False, "now": 150}, S.NOT_YET_ENABLED),
        (grant_of(**WINDOW), {"revoked": False, "active": False, "now": 150, "epoch": 1}, S.INVALIDATED),
        (grant_of(**WINDOW), {"revoked": False, "active": False, "enabled": True}, S.INVALIDATED),
        (grant_of(how="onchain"), {"revoked": False, "active": False}, S.INVALIDATED),
        (grant_of(how="onchain"), {"revoked": False, "active": False, "enabled": False}, S.NOT_YET_ENABLED),
        (grant_of(**WINDOW), {"revoked": False, "now": 150}, S.ACTIVE),  # a store's view: window only
        (grant_of(**WINDOW), {"revoked": False, "now": 250}, S.EXPIRED),
        (grant_of(), {"revoked": False, "active": True, "now": 10**12}, S.ACTIVE),  # 0: no expiry
        (grant_of(**WINDOW), {"revoked": False, "active": True}, S.ACTIVE),  # no clock: no window
    ],
)
def test_session_status(grant: SessionGrant, facts: dict[str, Any], expected: SessionStatus) -> None:
    assert session_status(grant, **facts) is expected


windows = st.tuples(st.integers(0, 1000), st.integers(1, 1000)).map(lambda w: (w[0], w[0] + w[1]))
facts = st.fixed_dictionaries(
    {
        "active": st.none() | st.booleans(),
        "now": st.none() | st.integers(0, 3000),
        "enabled": st.none() | st.booleans(),
        "epoch": st.none() | st.integers(0, 3),
    }
)


@settings(max_examples=200, deadline=None)
@given(windows, st.sampled_from(["offchain", "onchain"]), facts)
def test_a_revocation_always_wins_and_the_window_is_judged_first(
    window: tuple[int, int], how: str, known: dict[str, Any]
) -> None:
    grant = grant_of(valid_after=window[0], valid_until=window[1], how=how)
    assert session_status(grant, revoked=True, **known) is S.REVOKED
    status = session_status(grant, revoked=False, **known)
    now, active = known["now"], known["active"]
    if active is None:  # a store's view: the window alone
        assert status in (S.ACTIVE, S.EXPIRED, S.NOT_YET_VALID)
    if now is None or window[0] <= now <= window[1]:
        assert status not in (S.EXPIRED, S.NOT_YET_VALID)
    elif now > window[1]:
        assert status is S.EXPIRED
    elif active is not False:
        assert status is S.NOT_YET_VALID
    else:  # before its window and not on chain: whether it can still be enabled
        assert status in (S.NOT_YET_ENABLED, S.INVALIDATED)


# --------------------------------------------------------------------------------------------------
# on the real module
# --------------------------------------------------------------------------------------------------


def test_the_status_of_a_session_through_its_life(net, owner, nft) -> None:
    policy = mint_policy(nft, owner.account)
    key = SessionKey.generate()
    grant = owner.grant(key, [policy], valid_for=3600)
    assert read_session_status(net, grant) is S.NOT_YET_ENABLED
    net.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait()
    assert read_session_status(net, grant) is S.ACTIVE
    assert read_session_status(net, grant, now=grant.valid_until + 1) is S.EXPIRED
    unused = owner.grant(SessionKey.generate(), [policy], valid_for=3600)
    owner.revoke(grant).wait()
    assert read_session_status(net, grant) is S.REVOKED
    assert read_session_status(net, unused) is S.NOT_YET_ENABLED
    owner.invalidate_all().wait()  # the epoch moves: the unused grant's enable signature is dead
    assert read_session_status(net, unused) is S.INVALIDATED


def test_a_grant_reads_the_chain_once_and_a_build_once(net, owner, nft) -> None:
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # the account exists
    counting = CountingChain(net.chain)
    net.chain = counting
    net.chain_id  # noqa: B018 -- asked once per network, before any grant
    net.check_entry_point(owner.account)  # asked once per account and network: the EntryPoint it trusts
    assert counting.asked == ["call"]
    counting.asked.clear()
    key = SessionKey.generate()
    policy = mint_policy(nft, owner.account)
    signing = Policy.typed_data(
        {"name": "Notes", "verifyingContract": "0x" + "5e" * 20},
        {"Note": [{"name": "n", "type": "uint256"}]},
        "Note",
    )
    request = owner.prepare_grant(key, [policy], valid_for=3600, typed_data=[signing])
    # epoch, code, clock, the module questions (the call target, the signing domain) and whether each says it is a
    # module initialised for the account, in one read; then one log query for approvals the account gave the
    # targets before (attack 357), which finds none, so nothing more is asked
    assert counting.asked == ["read_many", "get_logs"]
    assert isinstance(request, GrantRequest)
    assert request.digest == request.session.enable_digest(
        request.account, request.epoch, request.chain_id, request.module
    )
    grant = request.complete("0x" + owner.sign_grant(request).owner_signature.hex())
    assert type(grant) is SessionGrant and SessionGrant.from_json(grant.to_json()) == grant

    session = net.session(grant, key)
    session.execute(nft, "safeMint(address)", owner.account).wait()  # enables it
    counting.asked.clear()
    session.build(function_call(nft, "safeMint(address)", owner.account))
    assert counting.asked == ["read_many"]  # nonce, status and clock in one read


# --------------------------------------------------------------------------------------------------
# UserOperation.replace
# --------------------------------------------------------------------------------------------------

BASE = UserOperation(sender="0x" + "66" * 20, nonce=5, call_data=b"\x01\x02", signature=b"\x03")
ints = st.integers(0, UINT128_MAX) | st.integers(0, UINT128_MAX).map(hex)
changes = st.dictionaries(
    st.sampled_from(
        [
            "nonce",
            "callGasLimit",
            "verification_gas_limit",
            "pre_verification_gas",
            "maxFeePerGas",
            "paymaster_post_op_gas_limit",
            "call_data",
            "signature",
            "paymaster",
            "factory",
        ]
    ),
    st.none(),
    max_size=6,
)


def _value(name: str, draw: Any) -> Any:
    if name in ("call_data", "signature"):
        return draw(st.binary(max_size=40) | st.binary(max_size=40).map(lambda b: "0x" + b.hex()))
    if name in ("paymaster", "factory"):
        return draw(st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()))
    return draw(ints)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@settings(max_examples=150, deadline=None)
@given(changes, st.data())
def test_replace_is_the_constructor_for_the_changed_fields(
    names: dict[str, None], data: st.DataObject
) -> None:
    update = {name: _value(name, data.draw) for name in names}
    replaced = BASE.replace(**update)
    rebuilt = UserOperation.model_validate({**BASE.model_dump(), **{_snake(k): v for k, v in update.items()}})
    assert replaced == rebuilt
    assert UserOperation(sender="0x" + "66" * 20, nonce=5, call_data=b"\x01\x02", signature=b"\x03") == BASE


@pytest.mark.parametrize(
    "change",
    [
        {"call_gas_limit": UINT128_MAX + 1},
        {"nonce": -1},
        {"sender": "0x1234"},
        {"signature": "0xzz"},
        {"bogus": 1},
    ],
)
def test_replace_refuses_what_the_constructor_refuses(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidFieldsError):
        BASE.replace(**change)
    with pytest.raises(ValidationError):
        UserOperation.model_validate({**BASE.model_dump(), **change})


def test_no_more_functions_sort_before_validate_user_op() -> None:
    """The dispatcher compares selectors in ascending order: each external function whose selector sorts before
    validateUserOp's costs every session operation one more comparison. Eight sort before it: the module's before
    signing and limits, with limitUsage (limits) in place of enableSession (whose Session type, with the signing
    fields and limits, now sorts after it); new functions (and functions whose argument types change) must sort
    after it."""
    from eth_utils import keccak as _keccak

    from keyscope.artifacts import contract_artifact

    def canonical(entry: dict[str, Any]) -> str:
        if entry["type"].startswith("tuple"):
            return "(" + ",".join(canonical(c) for c in entry["components"]) + ")" + entry["type"][5:]
        return str(entry["type"])

    abi = contract_artifact("SessionKeyValidator")["abi"]
    selectors = {
        _keccak(text=f"{e['name']}({','.join(canonical(i) for i in e['inputs'])})")[:4]: e["name"]
        for e in abi
        if e["type"] == "function"
    }
    validate = _keccak(
        text="validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
    )[:4]
    assert selectors[validate] == "validateUserOp"
    before = sorted(name for selector, name in selectors.items() if selector < validate)
    assert before == sorted(
        [
            "MAX_RULE_WORDS",
            "invalidateAllSessions",
            "epochOf",
            "onInstall",
            "limitUsage",
            "MAX_PERMISSIONS",
            "eip712Domain",
            "onUninstall",
        ]
    )
