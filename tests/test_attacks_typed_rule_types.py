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
from keyscope.hexutil import to_address
from keyscope.session import ArgType, Condition, Rule, Session, TypedDataPermission
from keyscope.signing import LocalSigner
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
    data: the SDK's ``Policy.typed_data`` is not the only way to make one)."""
    built = Policy.typed_data(
        {"name": "Raw Orders", "chainId": chain_id, "verifyingContract": orders}, ORDER_TYPES, "Order"
    )
    return TypedDataPermission.model_validate({**built.model_dump(), "rules": rules})


WIDE_RULES = (
    # minPrice (uint64) >= 100, read as a uint256: a word with bits above 64 is no uint64, yet passes
    Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=32, arg_type=ArgType.WORD, values=(100,)),
    # maxLoss (int64) <= 10, read as an int256: a negative int256 whose low 64 bits are 1000 passes
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


def test_a_signing_rule_read_as_another_type_than_its_field_is_not_shown_as_a_rule_on_the_field(
    sessions, orders, net, deployer
):
    """A dapp's grant request (plain data) rules an order's ``minPrice`` (a uint64) as a uint256 and its ``maxLoss``
    (an int64) as an int256. The module reads each rule's word as the rule's type (attack 114's check is on the
    rule's type, not the field's, which the module does not parse), so a word outside the field's type passes the
    rule and the raw-word book fills the order cleaned: minPrice 50, maxLoss 1000. The consent page showed
    "minPrice must be at least 100; maxLoss must be at most 10", the very words of a correctly typed grant, which
    refuses both words (``SignedNonCanonical``). The page must show what the module enforces and warn."""
    chain_id = sessions.h.chain_id
    wide = Session(
        session_key=LocalSigner.generate().address,
        typed_data_permissions=(_order_permission(orders.address, chain_id, WIDE_RULES),),
    )
    typed = Session(
        session_key=LocalSigner.generate().address,
        typed_data_permissions=(_order_permission(orders.address, chain_id, TYPED_RULES),),
    )
    account = to_address("0x" + "ac" * 20)
    facts = ConsentServer(net).facts(account)
    wide_words = describe_session(wide, account=account, chain_id=chain_id, facts=facts)
    typed_words = describe_session(typed, account=account, chain_id=chain_id, facts=facts)
    (typed_line,) = typed_words.signing
    assert "minPrice must be at least 100; maxLoss must be at most 10" in typed_line
    (wide_line,) = wide_words.signing
    assert wide_line != typed_line, "the wide grant reads exactly as the typed one"
    assert "minPrice must be at least" not in wide_line and "maxLoss must be at most" not in wide_line
    assert "uint256" in wide_line and "int256" in wide_line
    dangers = [w.text for w in wide_words.warnings if w.level == "danger"]
    assert any("minPrice (uint64)" in text and "uint256" in text for text in dangers), dangers
    assert any("maxLoss (int64)" in text and "int256" in text for text in dangers), dangers
    assert not any("reads the field" in w.text for w in typed_words.warnings)

    # what the owner approves by that grant, on chain: the book fills what the words it showed excluded
    dirty = (_word(int(BUYER, 16)), _word(2**64 + 50), _word(-(2**64) + 1000))
    grant, key = _grant_orders(sessions, orders, WIDE_RULES, salt=185)
    assert _fill(orders, grant, key, dirty, deployer)
    filled = tuple(orders.filled(grant.account))
    assert (filled[1], filled[2]) == (50, 1000)
    # the typed grant refuses the same words
    grant, key = _grant_orders(sessions, orders, TYPED_RULES, salt=186)
    assert not _fill(orders, grant, key, dirty, deployer)
    assert tuple(orders.filled(grant.account))[1] == 0


def test_a_nested_field_s_rule_is_judged_by_its_type_and_a_struct_word_reads_as_a_hash(sessions, net):
    """The same in a nested struct, and the words a struct's word gets: Permit2's ``details.amount`` is a uint160
    (the fifth word of the flattened contents once ``details`` is expanded); a request ruling it as a uint256
    lets an amount above 2**160 pass ``<= 100e6``'s type check and reads as the typed rule unless shown
    otherwise. A rule on ``details`` itself reads its word, the hash of the struct: it is shown as that hash,
    not as if it bounded the struct's members. The SDK's own grants (``Policy.typed_data``) carry every field's
    type and raise no such warning."""
    chain_id = sessions.h.chain_id
    permit2 = to_address("0x" + "22" * 20)
    domain = {"name": "Permit2", "chainId": chain_id, "verifyingContract": permit2}
    typed = Policy.typed_data(
        domain, PERMIT_SINGLE_TYPES, "PermitSingle", [arg("details", "amount") <= 100 * 10**6]
    )
    (amount_rule,) = typed.rules
    assert amount_rule.offset == 128 and amount_rule.arg_type == ArgType.uint_of(160)
    wide = TypedDataPermission.model_validate(
        {
            **typed.model_dump(),
            "rules": (
                amount_rule.model_copy(update={"arg_type": ArgType.WORD}),
                Rule(condition=Condition.NOT_EQUAL, offset=0, arg_type=ArgType.WORD, values=(0,)),
            ),
        }
    )
    account = to_address("0x" + "ac" * 20)
    facts = ConsentServer(net).facts(account)

    def described(permission: TypedDataPermission) -> tuple[str, list[str]]:
        session = Session(session_key=LocalSigner.generate().address, typed_data_permissions=(permission,))
        words = describe_session(session, account=account, chain_id=chain_id, facts=facts)
        (line,) = words.signing
        return line, [w.text for w in words.warnings if w.level == "danger"]

    typed_line, typed_dangers = described(typed)
    assert typed_line.endswith("details.amount must be at most 100,000,000")
    assert not any("reads the field" in text for text in typed_dangers)
    wide_line, wide_dangers = described(wide)
    assert "details.amount must be" not in wide_line
    assert "the word at offset 128, read as uint256 (the field details.amount is uint160)" in wide_line
    assert "details (the hash of its contents) must not be 0" in wide_line
    assert [text for text in wide_dangers if "reads the field" in text] == [
        "Rule 0 of the PermitSingle permission reads the field details.amount (uint160) as uint256: the module "
        "judges the word as a uint256, not as the uint160 a verifier reads, so a word that is no uint160 may pass "
        "the rule and be acted on as a value the rule never judged"
    ]
