"""SessionKeyValidator: premises docs/session-module.md states about grants, each held by the module itself.

The SDK refuses every malformed grant below before an owner signs it; a dapp's grant request made without the
SDK reaches the module as it is, so the module must refuse it too (or, for the saturated fields, read it as the
most its storage holds). Each test builds the grant with ``model_construct`` / ``model_copy``, past the SDK's own
checks, and asks the module."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from keyscope.checker import PolicyChecker
from keyscope.errors import RuleRefusalError
from keyscope.execution import Call
from keyscope.policy import Policy, arg
from keyscope.session import (
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    TypedDataPermission,
)
from keyscope.signing import LocalSigner
from support.permit_types import PERMIT_SINGLE_TYPES

RECORD = keccak(b"record(uint256,int256,address,bytes32,bool)")[:4]
OTHER = keccak(b"other(uint256)")[:4]
GWEI = 10**9
PERMIT2 = "0x" + "22" * 20


def record_call(target, amount=0, value=0) -> Call:
    return Call.of(
        target.address, value, target.record.encode_input(amount, 0, "0x" + "00" * 20, b"\x00" * 32, False)
    )


@pytest.fixture
def account(sessions, owner):
    return sessions.account(owner)


def _raw(key: str, permissions=(), typed_data=(), sign_in=(), **fields) -> Session:
    """A Session as a hand-made grant request carries it: no SDK check runs."""
    values = dict(
        session_key=key, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(), salt=0,
        permissions=tuple(permissions), limits=(), co_signer=None, typed_data_permissions=tuple(typed_data),
        sign_in=tuple(sign_in),
    )  # fmt: skip
    values.update(fields)
    return Session.model_construct(**values)


def _refuse(module, sender, session: Session, error: str, **inputs) -> None:
    """Assert that enabling ``session`` from ``sender`` reverts with the module's custom error ``error`` and exactly
    these ``inputs`` (a strict class match: any other revert, a panic included, fails)."""
    with pytest.raises(getattr(module, error)) as refusal:
        module.enableSession.call(session.as_abi(), sender=sender)
    assert type(refusal.value).__name__ == error
    for name, value in inputs.items():
        assert refusal.value.inputs[name] == value, (error, refusal.value.inputs)


def _plain(target: str, selector: bytes = OTHER, **fields) -> Permission:
    values = dict(target=target, selector=selector, value_limit=0, rules=(), function=None, limits=())
    values.update(fields)
    return Permission.model_construct(**values)


# ------------------------------------------------------------------------------------------------------
# Saturated header fields: "a larger grant behaves the same"
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value_limit", [2**96, 2**256 - 1])
def test_a_value_limit_past_the_headers_96_bits_is_read_as_its_most(
    sessions, account, owner, session_key, target, value_limit
):
    """``valueLimit`` is stored saturated at 2**96 - 1 wei. A grant of more (an SDK's "unlimited", 2**256 - 1) must
    not spill into the header's other fields (permission index, rule count, gas cap, live, limited): the value is
    allowed and the permission's rule still holds, named as permission 0's rule 0. The SDK's checker reads it the
    same way."""
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, values=(10,))
    permission = Permission(target=target.address, selector=RECORD, value_limit=value_limit, rules=(rule,))
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(account, owner, session)
    assert (
        sessions.outcome(sessions.op(account, session_key, record_call(target, amount=10, value=1000)))
        == "ok"
    )
    refused = sessions.outcome(sessions.op(account, session_key, record_call(target, amount=11, value=1000)))
    assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in refused, refused
    checker = PolicyChecker(session, account=account, module=sessions.module.address)
    checker.check_calls([record_call(target, amount=10, value=1000)])
    with pytest.raises(RuleRefusalError) as refusal:
        checker.check_calls([record_call(target, amount=11, value=1000)])
    assert (refusal.value.reason, refusal.value.permission_index, refusal.value.rule_index) == (
        "RuleViolated",
        0,
        0,
    )


@pytest.mark.parametrize("max_gas_cost", [(2**40 + 1) * GWEI, 2**256 - 1])
def test_a_gas_cap_past_the_headers_40_bits_is_read_as_its_most(
    sessions, account, owner, session_key, target, max_gas_cost
):
    """``maxGasCost`` is kept in whole gwei, saturated at 2**40 - 1 gwei (about 1,100 ether). A larger cap must not
    wrap to its low 40 bits (2**40 + 1 gwei would be a cap of 1 gwei, refusing every operation) nor spill into the
    live, paymaster-count and limited bits: an ordinary operation passes, and the rule still holds."""
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, values=(10,))
    permission = Permission(target=target.address, selector=RECORD, rules=(rule,))
    session = Session(session_key=session_key.address, max_gas_cost=max_gas_cost, permissions=(permission,))
    assert session.gas_cap == (2**40 - 1) * GWEI
    sessions.grant_onchain(account, owner, session)
    assert sessions.outcome(sessions.op(account, session_key, record_call(target, amount=10))) == "ok"
    refused = sessions.outcome(sessions.op(account, session_key, record_call(target, amount=11)))
    assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in refused, refused


def test_a_limit_amount_past_the_records_176_bits_is_read_as_its_most(
    sessions, account, owner, session_key, target
):
    """A limit's amount is stored saturated at 2**176 - 1 ("amount (saturated at 2^176 - 1)"): an "unlimited" total
    of 2**256 - 1 must not spill into the record's period and period-index bits (the session would then need a claimed
    time, and its usage would read another kind). It counts as 2**176 - 1: 5 passes, 2**176 - 5 more does not."""
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, values=(2**200,))
    permission = Permission(target=target.address, selector=RECORD, rules=(rule,))
    total = Limit(kind=LimitKind.AMOUNT, amount=2**256 - 1, meters=(Meter(permission=0),))
    session = Session(session_key=session_key.address, permissions=(permission,), limits=(total,))
    session_id = sessions.grant_onchain(account, owner, session)
    most = 2**176 - 1
    assert [tuple(row) for row in sessions.module.limitUsage(account, session_id)] == [
        (LimitKind.AMOUNT, most, 0, 0, 0, most)
    ]
    assert sessions.outcome(sessions.op(account, session_key, record_call(target, amount=5))) == "ok"
    refused = sessions.outcome(sessions.op(account, session_key, record_call(target, amount=most - 4)))
    assert f"LimitExceeded(callIndex=0, limitIndex=0, amount={most - 4}, left={most - 5})" in refused, refused
    assert [tuple(row) for row in sessions.module.limitUsage(account, session_id)] == [
        (LimitKind.AMOUNT, most, 0, 0, 5, most - 5)
    ]


# ------------------------------------------------------------------------------------------------------
# The shape of a session: "0..16 Permission", "at least one permission of any kind", "at most 8" signing
# ------------------------------------------------------------------------------------------------------


def test_a_session_with_no_permission_or_more_than_sixteen_is_refused(module, accounts, session_key, target):
    """A session needs at least one permission of any kind, and holds at most 16 call permissions (its record keeps
    16 grants, which revoking clears): anything else is ``InvalidPermissionCount(count)``."""
    empty = _raw(session_key.address)
    _refuse(module, accounts[7], empty, "InvalidPermissionCount", count=0)
    many = [_plain(target.address, selector=i.to_bytes(4, "big")) for i in range(1, 18)]
    _refuse(module, accounts[7], _raw(session_key.address, many), "InvalidPermissionCount", count=17)
    module.enableSession.call(_raw(session_key.address, many[:16]).as_abi(), sender=accounts[7])


def test_more_than_eight_signing_permissions_are_refused(module, accounts, session_key):
    """At most 8 signing permissions (typed data and sign-in together): the session's record of signing keys, which
    revoking clears, holds 8. Nine are ``InvalidSigningPermissionCount(9)``."""
    websites = [f"app{i}.example.com" for i in range(9)]
    _refuse(
        module,
        accounts[7],
        _raw(session_key.address, sign_in=websites),
        "InvalidSigningPermissionCount",
        count=9,
    )
    module.enableSession.call(_raw(session_key.address, sign_in=websites[:8]).as_abi(), sender=accounts[7])


@pytest.mark.parametrize(
    "domain",
    [
        "",  # empty
        "a" * 256,  # longer than 255 bytes
        "app.example.com wants you",  # a space: the first line could be read with another website in it
        "app.example.com\nevil.example",  # a line break
        "app.example.com\x00",  # below the printable range
        "app.example.\x7f",  # DEL, above it
    ],
)
def test_a_sign_in_website_must_be_printable_ascii_without_spaces(module, accounts, session_key, domain):
    """A sign-in permission is a website's authority, 1 to 255 printable ASCII bytes without spaces: its first line
    ``<domain> wants you to sign in with your Ethereum account:`` then names one website only."""
    session = _raw(session_key.address, sign_in=[domain])
    _refuse(module, accounts[7], session, "InvalidSignInDomain", index=0)


# ------------------------------------------------------------------------------------------------------
# Typed-data permissions: the domain the wallet shows, a valid ERC-7739 name, a strictly increasing nested list
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def permit_permission(chain) -> TypedDataPermission:
    """A well-formed Permit2 ``PermitSingle`` permission (domain name, chainId, verifyingContract: 0x0d)."""
    contents_type = "".join(
        name + "(" + ",".join(field["type"] + " " + field["name"] for field in fields) + ")"
        for name, fields in sorted(PERMIT_SINGLE_TYPES.items())
    )
    return TypedDataPermission(
        domain_fields=0x0D, name="Permit2", chain_id=chain.chain_id, verifying_contract=PERMIT2,
        contents_name="PermitSingle", contents_type=contents_type, nested=(0,),
    )  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {
            "domain_fields": 0x0C
        },  # the name is set, but the bitmap leaves it out: the wallet would not show it
        {"domain_fields": 0x0D, "version": "1"},  # a version outside the bitmap
        {"domain_fields": 0x09},  # a chainId outside the bitmap
        {"domain_fields": 0x05},  # a verifyingContract outside the bitmap
        {"salt": b"\x01" * 32},  # a salt outside the bitmap
        {"domain_fields": 0x2D},  # a bit above the five ERC-5267 fields
        {"contents_name": ""},  # ERC-7739: not empty
        {"contents_name": "permitSingle"},  # nor starting with a-z
        {"contents_name": "permit", "contents_type": "permit(uint256 a)"},  # though defined so
        {"contents_name": "Permit Single"},  # nor holding a space, a comma, a parenthesis or NUL
        {"contents_name": "PermitBatch"},  # a name the contents type does not define
        {"contents_name": "Permit"},  # a prefix of a definition is not one
        {"contents_name": "PermitSinglf"},  # nor a name of its length differing only in its last character
        {
            "contents_name": "Permit ",
            "contents_type": "Permit (uint256 a)",
        },  # a space last, though defined so
        {"contents_name": "Per,mit", "contents_type": "Per,mit(uint256 a)"},  # a comma, though defined so
        {"contents_type": "PermitSingle(address spender"},  # a contents type not ending with ')'
        {
            "contents_name": "XY",
            "contents_type": "A(uint256 a)B)",
        },  # no definition, up to the type's last byte
        {"nested": (0, 0)},  # the nested list strictly increasing
        {"nested": tuple(range(9))},  # at most 8 nested frames
    ],
)
def test_a_malformed_typed_data_permission_is_refused(
    module, accounts, session_key, permit_permission, change
):
    """Fields the domain bitmap leaves out must be empty, so that the domain signed is the domain the wallet shows;
    the contents name must be an ERC-7739 name defined by the contents type; ``nested`` must be strictly
    increasing (which words are expanded is the grant's, one meaning per position) and at most 8 long. Anything else
    is ``InvalidTypedDataPermission(index)``; the well-formed permission is granted."""
    module.enableSession.call(
        _raw(session_key.address, typed_data=[permit_permission]).as_abi(), sender=accounts[7]
    )
    broken = permit_permission.model_copy(update=change)
    _refuse(
        module,
        accounts[7],
        _raw(session_key.address, typed_data=[broken]),
        "InvalidTypedDataPermission",
        index=0,
    )


def test_a_typed_data_permission_expanding_eight_nested_structs_is_granted(
    module, accounts, session_key, permit_permission
):
    """At most 8 nested frames, and 8 itself: a contents type whose primary struct has eight struct members,
    each expanded, is granted by the module (nine entries are refused above)."""
    members = ",".join(f"Inner a{i}" for i in range(8))
    eight = permit_permission.model_copy(
        update={
            "contents_name": "Outer",
            "contents_type": f"Inner(uint256 x)Outer({members})",
            "nested": tuple(range(8)),
        }
    )
    module.enableSession.call(_raw(session_key.address, typed_data=[eight]).as_abi(), sender=accounts[7])
    nine = eight.model_copy(update={"nested": tuple(range(9))})
    _refuse(
        module,
        accounts[7],
        _raw(session_key.address, typed_data=[nine]),
        "InvalidTypedDataPermission",
        index=0,
    )


# ------------------------------------------------------------------------------------------------------
# Rules: "other condition values are refused", "other codes (0x61-0xff) are refused", no rules on plain transfers
# ------------------------------------------------------------------------------------------------------


def _rule(condition: int = Condition.EQUAL, offset: int = 0, arg_type: int = 0, values=(5,)) -> Rule:
    return Rule.model_construct(
        condition=condition, offset=offset, arg_type=arg_type, values=tuple(values), name=None
    )


@pytest.mark.parametrize(
    ("rule", "selector"),
    [
        (_rule(condition=8), OTHER),  # past ONE_OF: the stored check would read it as GREATER_THAN
        (_rule(condition=0x0F), OTHER),
        (_rule(condition=0x41), OTHER),  # SIGNED is the argType's, never the condition's
        (_rule(condition=0x81), OTHER),  # WIDE is storage's own flag
        (_rule(arg_type=0x61, values=(1,)), OTHER),  # past bool
        (_rule(arg_type=0x80, values=(1,)), OTHER),  # (values a bool could be: only the type is wrong)
        (_rule(arg_type=0xFF, values=(1,)), OTHER),
        (_rule(), bytes(4)),  # a rule on a plain transfer (selector 0x00000000: empty calldata)
    ],
)
def test_a_rule_outside_the_language_is_refused(module, accounts, session_key, target, rule, selector):
    """Conditions 0-7 and the argTypes of the table only, and no rule on a plain-transfer permission: anything else
    is ``InvalidRule(permissionIndex, ruleIndex)``, so that a stored rule never means what the wallet did not show."""
    good = _rule(condition=Condition.LESS_THAN_OR_EQUAL, values=(10,))
    allowed = _raw(session_key.address, [_plain(target.address, rules=(good,))])
    module.enableSession.call(allowed.as_abi(), sender=accounts[7])
    refused = _raw(session_key.address, [_plain(target.address, selector=selector, rules=(good, rule))])
    expected = 0 if selector == bytes(4) else 1
    _refuse(module, accounts[7], refused, "InvalidRule", permissionIndex=0, ruleIndex=expected)


def test_a_signing_rule_must_read_a_whole_word_of_the_contents(
    module, accounts, session_key, permit_permission
):
    """A typed-data rule's offset is a multiple of 32: every word of the flattened contents is one field's, and a rule
    between two would judge half of each (``InvalidRule(index, ruleIndex)``)."""
    aligned = permit_permission.model_copy(update={"rules": (_rule(offset=64, values=(1,)),)})
    module.enableSession.call(_raw(session_key.address, typed_data=[aligned]).as_abi(), sender=accounts[7])
    straddling = permit_permission.model_copy(update={"rules": (_rule(offset=48, values=(1,)),)})
    _refuse(
        module, accounts[7], _raw(session_key.address, typed_data=[straddling]), "InvalidRule", ruleIndex=0
    )


# ------------------------------------------------------------------------------------------------------
# "they count towards the account's 256 live permissions": signing permissions keep revocation bounded too
# ------------------------------------------------------------------------------------------------------


def test_signing_permissions_count_towards_the_live_permission_cap(module, accounts, target):
    """Uninstalling and ``invalidateAllSessions`` clear every live permission, signing ones included: the 256-cap that
    keeps that within a block must count them, or signing-only sessions (8 sign-in permissions each, no call
    permission) would pile up until ending them all no longer fits a block, and a leaked key would go on signing. Past
    256 live permissions of either kind a grant is ``TooManyLivePermissions``; revoking a session frees its signing
    permissions; invalidating clears them all in bounded gas."""
    eoa = accounts[8]
    cap = int(module.MAX_LIVE_PERMISSIONS())
    websites = [f"app{i}.example.com" for i in range(8)]

    def signing_only(index: int) -> Session:
        return Session(session_key=LocalSigner.generate().address, sign_in=tuple(websites), salt=index)

    granted = [signing_only(i) for i in range(cap // len(websites))]
    for session in granted:
        module.enableSession(session.as_abi(), sender=eoa)
    one_call = Session(
        session_key=LocalSigner.generate().address,
        permissions=(Permission(target=target.address, selector=OTHER),),
    )
    for extra in (signing_only(cap), one_call):
        _refuse(module, eoa, extra, "TooManyLivePermissions", account=eoa.address, max=cap)
    # revoking one signing-only session frees its 8 permissions
    module.revokeSession(granted[0].session_id(eoa.address, int(module.epochOf(eoa.address))), sender=eoa)
    module.enableSession(signing_only(cap + 1).as_abi(), sender=eoa)
    _refuse(module, eoa, one_call, "TooManyLivePermissions")
    receipt = module.invalidateAllSessions(sender=eoa)
    assert receipt.gas_used < 3_000_000
    module.enableSession(one_call.as_abi(), sender=eoa)


# ------------------------------------------------------------------------------------------------------
# "A key holds at most one live typed-data permission per (domain, type) and one sign-in per website"
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def ruled_permit(chain) -> TypedDataPermission:
    """Permit2 ``PermitSingle`` signing, ruled ``details.amount <= 100e6`` (typed by the SDK's builder)."""
    domain = {"name": "Permit2", "chainId": chain.chain_id, "verifyingContract": PERMIT2}
    return Policy.typed_data(
        domain, PERMIT_SINGLE_TYPES, "PermitSingle", [arg("details", "amount") <= 100 * 10**6]
    )


@pytest.mark.parametrize(
    "twin",
    [
        "the same permission without its rule",
        "the same permission with a wider rule",
        "a sign-in website twice",
    ],
)
def test_a_grant_repeating_a_signing_permission_is_refused_and_enables_nothing(
    sessions, module, accounts, account, owner, session_key, target, ruled_permit, twin
):
    """A dapp's grant request made without the SDK lists one signing permission twice: Permit2's ``PermitSingle``
    ruled ``details.amount <= 100e6``, then the same domain and type again without the rule (or with a wider one).
    Both copies would be stored under one (key, domain, type) slot, the second written over the first, so the key
    would sign permits of any amount while the wallet showed the rule. The module refuses the grant,
    ``SigningPermissionAlreadyGranted(index)`` naming the repeat, when the key's first operation carries it through
    the EntryPoint (ENABLE, AA23) and when the account enables it itself; nothing is enabled. A website listed twice
    is refused alike. The SDK refuses to build either session (which the owner's wallet would otherwise be asked to
    sign); the grant without the repeat enables and its call runs."""
    call_permission = _plain(target.address, RECORD)
    if twin == "a sign-in website twice":
        signing = {"sign_in": ("app.example.com", "app.example.com")}
        repeat, said = 1, "a sign-in domain is listed twice"
    else:
        wider = (arg("details", "amount") <= 10**12,) if "wider" in twin else ()
        copy = Policy.typed_data(
            {"name": "Permit2", "chainId": sessions.h.chain_id, "verifyingContract": PERMIT2},
            PERMIT_SINGLE_TYPES,
            "PermitSingle",
            wider,
        )
        signing = {"typed_data": (ruled_permit, copy)}
        repeat, said = 1, "typed-data permission 1 repeats"
    repeated = _raw(session_key.address, [call_permission], **signing)
    # the SDK: the owner is never asked to sign it
    with pytest.raises(ValueError, match=said):
        Session(
            session_key=session_key.address,
            permissions=(Permission(target=target.address, selector=RECORD),),
            typed_data_permissions=signing.get("typed_data", ()),
            sign_in=signing.get("sign_in", ()),
        )
    # the module, when the key's first operation carries the owner's signature of it
    epoch = sessions.epoch(account)
    signature = sessions.owner_signature(account, owner, repeated)
    refused = sessions.outcome(
        sessions.enable_op(account, session_key, repeated, signature, record_call(target))
    )
    assert "AA23" in refused and f"SigningPermissionAlreadyGranted(index={repeat})" in refused, refused
    assert not module.isSessionActive(account, repeated.session_id(account, epoch))
    # and when the account enables it on chain
    _refuse(module, accounts[7], repeated, "SigningPermissionAlreadyGranted", index=repeat)
    # without the repeat, the grant enables and its call runs
    single = _raw(
        session_key.address,
        [call_permission],
        typed_data=signing.get("typed_data", ())[:1],
        sign_in=signing.get("sign_in", ())[:1],
    )
    signature = sessions.owner_signature(account, owner, single)
    assert (
        sessions.outcome(sessions.enable_op(account, session_key, single, signature, record_call(target)))
        == "ok"
    )
    assert module.isSessionActive(account, single.session_id(account, epoch))
