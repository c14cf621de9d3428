"""Attacks on what a session signs in the account's name (ERC-1271), on ape's chain with the real module.

A leaked session key may sign only what its signing permissions allow; the owner grants those permissions from the
words the consent page shows. Each test here tries to get the account to approve something the owner did not read
as granted, and shows where it stops.
"""

from __future__ import annotations

from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from eth_utils import keccak

from keyscope import Policy, SessionGrant, SessionKey, arg
from keyscope.consent import ConsentServer
from keyscope.consent.describe import describe_session
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address
from keyscope.session import ArgType, Condition, Rule, Session, TypedDataPermission
from keyscope.signing import LocalSigner
from keyscope.signing_words import signing_warnings
from support.permit_types import PERMIT_SINGLE_TYPES
from support.signatures import sign_raw_words
from support.strict_reverts import revert_data

ORDER_TYPES = {
    "Order": [
        {"name": "buyer", "type": "address"},
        {"name": "minPrice", "type": "uint64"},
        {"name": "maxLoss", "type": "int64"},
    ]
}
"""``RawWordOrders``' order (contracts/test): the verifier hashes the words raw, then reads each field cleaned to
its type."""

BUYER = to_address("0x" + "b0" * 20)
INVALID_SIGNATURE = keccak(text="InvalidSignature(address,bytes32)")[:4]


def _word(value: int) -> bytes:
    return (value % 2**256).to_bytes(32, "big")


def _order_permission(orders: str, chain_id: int, rules: tuple[Rule, ...]) -> TypedDataPermission:
    """The ``Order`` permission in the book's domain with ``rules`` as a dapp writes them (a grant request is plain
    data: the SDK's ``Policy.typed_data`` is not the only way to make one); built past the SDK's checks."""
    built = Policy.typed_data(
        {"name": "Raw Orders", "chainId": chain_id, "verifyingContract": orders}, ORDER_TYPES, "Order"
    )
    return built.model_copy(update={"rules": rules})


def _raw_session(key: str, permission: TypedDataPermission) -> Session:
    """A Session as a hand-made grant request carries it: no SDK check runs."""
    return Session.model_construct(
        session_key=key, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(), salt=0, permissions=(),
        limits=(), co_signer=None, typed_data_permissions=(permission,), sign_in=(),
    )  # fmt: skip


WIDE_RULES = (
    # minPrice (uint64) >= 100, read as a uint256: a word with bits above 64 is no uint64, yet would pass
    Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=32, arg_type=ArgType.WORD, values=(100,)),
    # maxLoss (int64) <= 10, read as an int256: a negative int256 whose low 64 bits are 1000 would pass
    Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=64, arg_type=ArgType.INT256, values=(10,)),
)
TYPED_RULES = (
    Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=32, arg_type=ArgType.uint_of(64), values=(100,)),
    Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=64, arg_type=ArgType.int_of(64), values=(10,)),
)


@pytest.fixture(scope="module")
def orders(project, deployer):
    return project.RawWordOrders.deploy(sender=deployer)


def _grant_orders(
    sessions: Any, orders: Any, rules: tuple[Rule, ...], salt: int
) -> tuple[SessionGrant, SessionKey]:
    owner, key = LocalSigner.generate(), SessionKey.generate()
    chain_id = sessions.h.chain_id
    session = Session(
        session_key=key.address,
        typed_data_permissions=(_order_permission(orders.address, chain_id, rules),),
    )
    account = sessions.account(owner, salt)
    session_id = sessions.grant_onchain(account, owner, session)
    grant = SessionGrant(
        session=session,
        account=account,
        module=sessions.module.address,
        chain_id=chain_id,
        entry_point=sessions.h.entry_point.address,
        epoch=sessions.epoch(account),
        session_id=session_id,
        how="onchain",
    )
    return grant, key


def _fill(orders: Any, grant: SessionGrant, key: SessionKey, words: tuple[bytes, ...], deployer: Any) -> bool:
    try:
        orders.fill(grant.account, words, sign_raw_words(grant, key, words), sender=deployer)
    except ContractLogicError as error:  # the book's refusal: SignatureChecker said no
        assert "InvalidSignature" in repr(error) or revert_data(error)[:4] == INVALID_SIGNATURE, error
        return False
    return True


def _refused(module: Any, sender: Any, session: Session) -> dict[str, Any]:
    """The inputs of the module's ``TypedDataRuleTypeMismatch`` refusal to enable ``session`` (any other outcome
    fails)."""
    with pytest.raises(module.TypedDataRuleTypeMismatch) as refusal:
        module.enableSession.call(session.as_abi(), sender=sender)
    assert type(refusal.value).__name__ == "TypedDataRuleTypeMismatch"
    return dict(refusal.value.inputs)


def test_a_signing_rule_typed_otherwise_than_its_field_is_refused_by_the_module_and_the_sdk(
    sessions, orders, deployer, accounts
):
    """A dapp's grant request (plain data) rules an order's ``minPrice`` (a uint64) as a uint256 and its ``maxLoss``
    (an int64) as an int256. Were it granted, the module would judge each word as the rule's type, so
    ``2**64 + 50`` would pass ``>= 100`` and a negative int256 whose low 64 bits are 1000 would pass ``<= 10``, and
    the raw-word book, which reads each field cleaned to its type, would fill the order at minPrice 50, maxLoss
    1000. The module reads the contents type's members when it grants and refuses a rule whose type is not its
    field's (``TypedDataRuleTypeMismatch``, naming the rule, its offset, its type and the field's), on chain and in
    the owner's enabling operation alike; the SDK refuses to build the request, naming the same. The correctly
    typed grant is enabled, and refuses the dirty words (``SignedNonCanonical``)."""
    chain_id = sessions.h.chain_id
    key = SessionKey.generate().address
    wide = _order_permission(orders.address, chain_id, WIDE_RULES)
    assert _refused(sessions.module, accounts[7], _raw_session(key, wide)) == {
        "permissionIndex": 0,
        "ruleIndex": 0,
        "offset": 32,
        "ruleType": ArgType.WORD,
        "fieldType": ArgType.uint_of(64),
    }
    loss_only = _order_permission(orders.address, chain_id, (TYPED_RULES[0], WIDE_RULES[1]))
    assert _refused(sessions.module, accounts[7], _raw_session(key, loss_only)) == {
        "permissionIndex": 0,
        "ruleIndex": 1,
        "offset": 64,
        "ruleType": ArgType.INT256,
        "fieldType": ArgType.int_of(64),
    }
    with pytest.raises(BadInputError) as sdk_refusal:
        TypedDataPermission(**wide.model_dump())
    assert (
        "rule 0 of the Order permission reads the field minPrice (offset 32, type uint64) as uint256"
        in str(sdk_refusal.value)
    )
    assert "give it the field's type, uint64" in str(sdk_refusal.value)

    # the owner's operation calling enableSession, and the session's first operation carrying the owner's
    # signature of the grant (ENABLE), fail alike: the session is never active
    owner, session_key = LocalSigner.generate(), SessionKey.generate()
    account = sessions.account(owner, 185)
    raw = _raw_session(session_key.address, wide)
    call = Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(raw.as_abi()))
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(call)), owner))
    assert not receipt.success
    enabling = sessions.enable_op(
        account,
        session_key,
        raw,
        sessions.owner_signature(account, owner, raw),
        Call.of(orders.address, 0, b""),
    )
    refusal = sessions.outcome(enabling)
    assert "TypedDataRuleTypeMismatch" in refusal, refusal
    assert not sessions.module.isSessionActive(account, raw.session_id(account, sessions.epoch(account)))

    # the typed grant is taken, and refuses the words the wide one would have let through
    dirty = (_word(int(BUYER, 16)), _word(2**64 + 50), _word(-(2**64) + 1000))
    grant, key_ = _grant_orders(sessions, orders, TYPED_RULES, salt=186)
    assert not _fill(orders, grant, key_, dirty, deployer)
    assert tuple(orders.filled(grant.account))[1] == 0
    clean = (_word(int(BUYER, 16)), _word(150), _word(-5))
    assert _fill(orders, grant, key_, clean, deployer)
    assert tuple(orders.filled(grant.account))[1:] == (150, -5)


def test_a_nested_field_s_rule_must_carry_its_type_and_a_struct_word_reads_as_a_hash(sessions, net, accounts):
    """The same in a nested struct, and the words a struct's word gets: Permit2's ``details.amount`` is a uint160
    (the fifth word of the flattened contents once ``details`` is expanded); a request ruling it as a uint256 is
    refused by the module (``TypedDataRuleTypeMismatch``, field type 0x0c) and the SDK. A rule on ``details``
    itself reads its word, the hash of the struct: typed uint256 it is taken and shown as that hash, not as if it
    bounded the struct's members; typed bytes32 it is refused. A ``nested`` entry that expands a word that is no
    struct (``spender``) would let a rule judge words no verifier reads: refused (``InvalidTypedDataPermission``)."""
    chain_id = sessions.h.chain_id
    permit2 = to_address("0x" + "22" * 20)
    domain = {"name": "Permit2", "chainId": chain_id, "verifyingContract": permit2}
    typed = Policy.typed_data(
        domain, PERMIT_SINGLE_TYPES, "PermitSingle", [arg("details", "amount") <= 100 * 10**6]
    )
    (amount_rule,) = typed.rules
    assert amount_rule.offset == 128 and amount_rule.arg_type == ArgType.uint_of(160)
    key = SessionKey.generate().address
    module = sessions.module
    module.enableSession.call(_raw_session(key, typed).as_abi(), sender=accounts[7])
    hash_rule = Rule(condition=Condition.NOT_EQUAL, offset=0, arg_type=ArgType.WORD, values=(0,))
    wide = typed.model_copy(
        update={"rules": (amount_rule.model_copy(update={"arg_type": ArgType.WORD}), hash_rule)}
    )
    assert _refused(module, accounts[7], _raw_session(key, wide)) == {
        "permissionIndex": 0,
        "ruleIndex": 0,
        "offset": 128,
        "ruleType": ArgType.WORD,
        "fieldType": ArgType.ADDRESS,  # uint160's code
    }
    with pytest.raises(
        BadInputError, match=r"reads the field details\.amount \(offset 128, type uint160\) as uint256"
    ):
        TypedDataPermission(**wide.model_dump())
    bytes32_hash = typed.model_copy(
        update={"rules": (hash_rule.model_copy(update={"arg_type": ArgType.BYTES32}),)}
    )
    assert _refused(module, accounts[7], _raw_session(key, bytes32_hash))["fieldType"] == ArgType.WORD
    with pytest.raises(
        BadInputError, match=r"reads the field details \(offset 0, type PermitDetails\) as bytes32"
    ):
        TypedDataPermission(**bytes32_hash.model_dump())
    not_a_struct = typed.model_copy(update={"nested": (1,), "rules": (hash_rule,)})
    with pytest.raises(module.InvalidTypedDataPermission):
        module.enableSession.call(_raw_session(key, not_a_struct).as_abi(), sender=accounts[7])
    with pytest.raises(BadInputError, match="not a nested struct"):
        TypedDataPermission(**not_a_struct.model_dump())

    hashed = TypedDataPermission(**typed.model_copy(update={"rules": (amount_rule, hash_rule)}).model_dump())
    module.enableSession.call(_raw_session(key, hashed).as_abi(), sender=accounts[7])
    account = to_address("0x" + "ac" * 20)
    facts = ConsentServer(net).facts(account)
    session = Session(session_key=LocalSigner.generate().address, typed_data_permissions=(hashed,))
    words = describe_session(session, account=account, chain_id=chain_id, facts=facts)
    (line,) = words.signing
    assert line.endswith(
        "details.amount must be at most 100,000,000; details (the hash of its contents) must not be 0"
    )
    assert not any("reads the field" in w.text for w in words.warnings)


LISTING_TYPES = {
    "Listing": [
        {"name": "seller", "type": "address"},
        {"name": "title", "type": "string"},
        {"name": "payload", "type": "bytes"},
        {"name": "tags", "type": "string[]"},
        {"name": "price", "type": "uint256"},
    ]
}
"""A listing with a field of each kind EIP-712 encodes as a hash (string, bytes, an array) beside a plain uint."""


def test_an_order_rule_on_a_hashed_field_is_refused_by_the_module_and_the_sdk(sessions, accounts):
    """A dapp's grant request (plain data, built without the SDK) asks the owner for "title must be at most 'Z'":
    the consent reads like a limit, but EIP-712 encodes a string as the hash of its text, so the module would
    compare that hash with the rule's value and the key would sign any title (it tries titles until one's hash is
    below the bound; for a bound near 2**256 every title passes at once). The module reads the field's type from
    the contents type when it grants and refuses a rule that orders (<=, <, >=, >, IN_RANGE) a string, bytes,
    array or struct field (``TypedDataRuleOrdersHash``, naming the permission, the rule, its offset and its
    condition): on chain, in the owner's enabling operation and in the session's first operation (ENABLE) alike,
    through the EntryPoint; the SDK refuses to build it, naming the same. ==, != and one_of on such a field bind
    the hash of the allowed values, and are granted."""
    chain_id = sessions.h.chain_id
    market = to_address("0x" + "3a" * 20)
    domain = {"name": "Market", "chainId": chain_id, "verifyingContract": market}
    built = Policy.typed_data(domain, LISTING_TYPES, "Listing", [arg("title") == "Lamp", arg("price") <= 100])
    title_rule, price_rule = built.rules
    assert (title_rule.offset, price_rule.offset) == (32, 128)
    module = sessions.module
    key = SessionKey.generate().address

    def refused(rules: tuple[Rule, ...]) -> dict[str, Any]:
        with pytest.raises(module.TypedDataRuleOrdersHash) as refusal:
            module.enableSession.call(
                _raw_session(key, built.model_copy(update={"rules": rules})).as_abi(), sender=accounts[7]
            )
        assert type(refusal.value).__name__ == "TypedDataRuleOrdersHash"
        return dict(refusal.value.inputs)

    almost_any = 2**256 - 2
    at_most = Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.WORD, values=(almost_any,)
    )
    assert refused((price_rule, at_most)) == {
        "permissionIndex": 0,
        "ruleIndex": 1,
        "offset": 32,
        "condition": Condition.LESS_THAN_OR_EQUAL,
    }
    # bytes, an array, and each ordering condition
    for offset, condition, values in (
        (64, Condition.LESS_THAN, (almost_any,)),
        (64, Condition.GREATER_THAN_OR_EQUAL, (1,)),
        (96, Condition.GREATER_THAN, (0,)),
        (96, Condition.IN_RANGE, (0, almost_any)),
    ):
        rule = Rule(condition=condition, offset=offset, arg_type=ArgType.WORD, values=values)
        assert refused((rule,)) == {
            "permissionIndex": 0,
            "ruleIndex": 0,
            "offset": offset,
            "condition": condition,
        }
    with pytest.raises(BadInputError) as sdk_refusal:
        TypedDataPermission(**built.model_copy(update={"rules": (price_rule, at_most)}).model_dump())
    assert (
        "rule 1 of the Listing permission orders the field title (offset 32, type string) with condition "
        "LESS_THAN_OR_EQUAL" in str(sdk_refusal.value)
    )
    assert "TypedDataRuleOrdersHash" in str(sdk_refusal.value)
    with pytest.raises(BadInputError, match="only ==, != and one_of can bind it"):
        Policy.typed_data(domain, LISTING_TYPES, "Listing", [arg("title") <= "Z"])

    # the owner's operation calling enableSession, and the session's first operation carrying the owner's
    # signature of the grant (ENABLE), fail alike through the EntryPoint: the session is never active
    owner, session_key = LocalSigner.generate(), SessionKey.generate()
    account = sessions.account(owner, 187)
    raw = _raw_session(session_key.address, built.model_copy(update={"rules": (at_most,)}))
    call = Call.of(module.address, 0, module.enableSession.encode_input(raw.as_abi()))
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(call)), owner))
    assert not receipt.success
    enabling = sessions.enable_op(
        account, session_key, raw, sessions.owner_signature(account, owner, raw), Call.of(market, 0, b"")
    )
    refusal = sessions.outcome(enabling)
    assert "TypedDataRuleOrdersHash" in refusal, refusal
    assert not module.isSessionActive(account, raw.session_id(account, sessions.epoch(account)))
    # a page shown such a request (built past the SDK's checks) warns that the bound holds for the hash
    assert any(
        "orders the field title (string), whose word is the hash of its contents" in warning
        and "may sign any title" in warning
        for warning in signing_warnings(raw)
    )

    # binding the hash is granted: == on the title (the SDK's), != on the payload, one_of on the tags
    bound = (
        title_rule,
        Rule(condition=Condition.NOT_EQUAL, offset=64, arg_type=ArgType.WORD, values=(0,)),
        Rule(condition=Condition.ONE_OF, offset=96, arg_type=ArgType.WORD, values=(1, 2)),
        price_rule,
    )
    granted = TypedDataPermission(**built.model_copy(update={"rules": bound}).model_dump())
    module.enableSession.call(_raw_session(key, granted).as_abi(), sender=accounts[7])

    # a struct's word is a hash too: Permit2's `details` ordered is refused, its members are not hashes
    permit = Policy.typed_data(
        {"name": "Permit2", "chainId": chain_id, "verifyingContract": to_address("0x" + "22" * 20)},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
    )
    struct_order = Rule(condition=Condition.LESS_THAN, offset=0, arg_type=ArgType.WORD, values=(almost_any,))
    with pytest.raises(module.TypedDataRuleOrdersHash):
        module.enableSession.call(
            _raw_session(key, permit.model_copy(update={"rules": (struct_order,)})).as_abi(),
            sender=accounts[7],
        )
    with pytest.raises(BadInputError, match=r"orders the field details \(offset 0, type PermitDetails\)"):
        TypedDataPermission(**permit.model_copy(update={"rules": (struct_order,)}).model_dump())
