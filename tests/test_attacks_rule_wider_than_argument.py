"""A call rule typed WIDER than its argument (``uint256`` on a ``bool`` or a ``uint8``, ``int256`` on an ``int8``,
``bytes32`` on a ``bytes4``): attack 41/42 reopened through a grant request's own rule types.

Attacks 41 and 42 are stopped by the rule's argType: the module refuses a ruled word that is not the canonical
encoding of the rule's type, so a coder v1 or assembly target never gets a dirty word to clean. Attack 258 made the
SDK refuse (and the consent page warn of) a rule whose type reads its argument's word otherwise
(``ArgType.reads_alike``): signed for unsigned, bytes for a number. But ``reads_alike`` takes every width of one
kind as alike, so a rule typed ``uint256`` on ``setApprovalForAll``'s ``bool approved`` is taken: its
``approved != true`` (``!= 1``) is then checked as a 256-bit word, every word canonical, and the word 2 passes. A
coder v1 target reads 2 as ``true``: the leaked key approves an operator for every token of the account under a
grant whose page said "approved must not be 1", with no danger shown. Narrower is stricter (a ``uint128`` rule
on a ``uint256`` amount refuses more words), wider is not.

The module cannot tell (it knows no argument types); the SDK can: ``Policy.call`` with a ready-made rule, an
ERC-7715 request naming the function (both know the ABI), and the consent page (a known function by selector).
"""

from __future__ import annotations

import pytest

import test_attacks
from keyscope import Policy
from keyscope.checker import PolicyChecker
from keyscope.erc7715 import plan_from_requests
from keyscope.errors import BadInputError
from keyscope.execution import Call
from keyscope.hexutil import keccak
from keyscope.policy import arg
from keyscope.session import ArgType, Condition, Permission, Rule, Session
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)
from test_attacks import selector, words

legacy_collection = test_attacks.collection
"""The coder v1 victim (a module-scoped fixture of attack 41's tests)."""

APPROVE = "setApprovalForAll(address operator, bool approved)"
TIER = "setTier(uint8 tier)"
NEVER_APPROVE_AS_WORD = Rule(condition=Condition.NOT_EQUAL, offset=32, arg_type=ArgType.WORD, values=(1,))
"""``approved != true`` typed ``uint256`` instead of ``bool``: every word but 1 passes, 2 among them."""
PREMIUM_AS_WORD = Rule(
    condition=Condition.GREATER_THAN_OR_EQUAL, offset=0, arg_type=ArgType.WORD, values=(3,)
)
"""``tier >= 3`` typed ``uint256`` instead of ``uint8``: 256 passes, which coder v1 reads as tier 0."""


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, module):
    """Session-scoped fixtures before this module's victim (ape snapshots per fixture scope)."""


def test_a_rule_typed_wider_than_its_argument_lets_the_key_approve_an_operator_for_all(
    sessions, module, legacy_collection, module_account, owner, session_key, attacker
) -> None:
    """What the chain does with such a grant (an ERC-7715 ``contract-call`` by selector, or a hand-made permission):
    the module enables it and passes the words 2 and 256, and the coder v1 collection approves the attacker for
    every token and sets tier 0. The SDK's checker agrees with the module. Then what the SDK must do: refuse to
    build the rule from the function's signature, as it refuses a rule of another kind (attack 258)."""
    account, collection = module_account, legacy_collection
    session = Session(
        session_key=session_key.address,
        permissions=(
            Permission(target=collection.address, selector=selector(APPROVE), rules=(NEVER_APPROVE_AS_WORD,)),
            Permission(target=collection.address, selector=selector(TIER), rules=(PREMIUM_AS_WORD,)),
        ),
    )
    sessions.grant_onchain(account, owner, session)
    calls = [
        Call.of(collection.address, 0, selector(APPROVE) + words(int(attacker, 16), 2)),
        Call.of(collection.address, 0, selector(TIER) + words(256)),
    ]
    PolicyChecker(session, account, module.address).check_calls(calls, now=0)  # the checker agrees: allowed
    assert sessions.outcome(sessions.op(account, session_key, calls)) == "ok"
    assert collection.isApprovedForAll(account, attacker)  # "approved must not be true"
    assert collection.tierOf(account) == 0  # "tier at least 3"

    for function, rule in ((APPROVE, NEVER_APPROVE_AS_WORD), (TIER, PREMIUM_AS_WORD)):
        with pytest.raises(BadInputError, match=r"reads `(approved|tier)` \((bool|uint8)\)"):
            Policy.call(collection.address, function, [rule])


@pytest.mark.parametrize(
    ("signature", "rule"),
    [
        (
            "pay(address to,int8 priority,bytes4 tag)",
            Rule(condition=Condition.NOT_EQUAL, offset=0, arg_type=ArgType.WORD, values=(0xABC,)),
        ),
        (
            "pay(address to,int8 priority,bytes4 tag)",
            Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=32, arg_type=ArgType.INT256, values=(0,)),
        ),
        (
            "pay(address to,int8 priority,bytes4 tag)",
            Rule(
                condition=Condition.NOT_EQUAL,
                offset=64,
                arg_type=ArgType.BYTES32,
                values=(0xDEADBEEF << 224,),
            ),
        ),
    ],
    ids=["uint256-on-address", "int256-on-int8", "bytes32-on-bytes4"],
)
def test_policy_call_refuses_every_rule_wider_than_its_argument(signature: str, rule: Rule) -> None:
    """Attack 42's assembly target (an address with a high bit set, 0x80 as int8 -128, a tag with a low byte set):
    each dirty word passes a rule typed as the 256-bit type of its argument's kind."""
    with pytest.raises(BadInputError):
        Policy.call("0x" + "5e" * 20, signature, [rule])


def test_an_erc7715_request_naming_the_function_with_a_wider_rule_type_is_refused(net) -> None:
    """The dapp's request names ``setApprovalForAll`` and types its rule on ``approved`` as ``uint256``."""
    request = {
        "chainId": hex(net.chain_id),
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
        "permission": {
            "type": "contract-call",
            "data": {
                "address": "0x" + "5e" * 20,
                "function": APPROVE,
                "rules": [{"offset": 32, "type": "uint256", "name": "approved", "op": "!=", "value": 1}],
            },
        },
        "policies": [],
    }
    with pytest.raises(BadInputError):
        plan_from_requests([request])


def test_the_consent_page_warns_of_a_rule_wider_than_a_known_functions_argument(words) -> None:
    """By selector (no function the SDK could refuse by), ``setApprovalForAll`` is a known function: the page
    shows the rule as "the uint256 at byte 32 of the arguments must not be 1" and warns only of the operator
    approval the rule was meant to forbid. It must say that the rule binds ``approved`` as no bool."""
    permission = Permission(
        target="0x" + "5e" * 20, selector=selector(APPROVE), rules=(NEVER_APPROVE_AS_WORD,)
    )
    described = words(permission)
    dangers = [w.text for w in described.warnings if w.level == "danger"]
    assert any("approved" in text and "bool" in text and "rule 0" in text for text in dangers), dangers


@pytest.mark.parametrize(
    ("rule", "refused"),
    [
        (Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.WORD, values=(0xABC,)), False),
        (Rule(condition=Condition.ONE_OF, offset=32, arg_type=ArgType.INT256, values=(1, 2**256 - 1)), False),
        (Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.WORD, values=(1 << 200,)), True),
        (Rule(condition=Condition.ONE_OF, offset=32, arg_type=ArgType.INT256, values=(1, 0x80)), True),
        (Rule(condition=Condition.IN_RANGE, offset=32, arg_type=ArgType.INT256, values=(1, 2)), False),
        (Rule(condition=Condition.IN_RANGE, offset=32, arg_type=ArgType.INT256, values=(1, 0x80)), True),
        (Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.INT256, values=(5,)), True),
        (
            Rule(
                condition=Condition.LESS_THAN_OR_EQUAL, offset=0, arg_type=ArgType.WORD, values=(2**160 - 1,)
            ),
            False,
        ),
        (Rule(condition=Condition.IN_RANGE, offset=0, arg_type=ArgType.WORD, values=(1, 2**160 - 1)), False),
        (Rule(condition=Condition.IN_RANGE, offset=0, arg_type=ArgType.WORD, values=(1, 2**160)), True),
        (Rule(condition=Condition.LESS_THAN, offset=0, arg_type=ArgType.WORD, values=(2**160,)), False),
        (Rule(condition=Condition.LESS_THAN, offset=0, arg_type=ArgType.WORD, values=(2**160 + 1,)), True),
        (Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=0, arg_type=ArgType.WORD, values=(1,)), True),
    ],
    ids=[
        "equal-address",
        "one-of-int8",
        "equal-dirty-address",
        "one-of-dirty-int8",
        "range-int8",
        "range-dirty-int8",
        "at-most-int8",
        "at-most-an-address",
        "range-an-address",
        "range-past-an-address",
        "below-2**160",
        "below-2**160+1",
        "at-least",
    ],
)
def test_a_wider_rule_passing_only_the_argument_s_own_words_is_taken(
    words, rule: Rule, refused: bool
) -> None:
    """EQUAL and ONE_OF pass their values' words only, an upper bound on an unsigned argument no word above it, a
    range on a signed one nothing outside it: with those values canonical words of the argument's type (an address
    as a uint256, -1 and 1 as int256 words on an int8), no dirty word gets through, so the rule reads its argument
    as written and is taken without a danger. A value the argument's type cannot be, or a side left open (at most,
    on a signed argument; at least), is refused as above."""
    signature = "pay(address to,int8 priority,bytes4 tag)"
    if refused:
        with pytest.raises(BadInputError, match="takes words the argument's type refuses"):
            Policy.call("0x" + "5e" * 20, signature, [rule])
        return
    policy = Policy.call("0x" + "5e" * 20, signature, [rule])
    assert policy.rules == (rule,)
    described = words(policy)
    assert not [w.text for w in described.warnings if w.level == "danger" and "rule 0" in w.text]


def test_a_wider_upper_bound_on_a_bool_argument_is_taken_only_at_most_one() -> None:
    """A bool is unsigned: a uint256 rule "at most 1" (or "below 2") on it passes its two words only and is taken;
    "at most 2" passes the dirty word 2, which a target masking the bool reads as false, and is refused."""
    signature = "setApprovalForAll(address operator,bool approved)"
    for rule in (
        Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.WORD, values=(1,)),
        Rule(condition=Condition.LESS_THAN, offset=32, arg_type=ArgType.WORD, values=(2,)),
    ):
        assert Policy.call("0x" + "5e" * 20, signature, [rule]).rules == (rule,)
    dirty = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.WORD, values=(2,))
    with pytest.raises(BadInputError, match="takes words the argument's type refuses"):
        Policy.call("0x" + "5e" * 20, signature, [dirty])


def test_a_ready_made_rule_on_a_fixed_point_argument_is_typed_as_its_word() -> None:
    """A ``fixedMxN`` word holds an ``intM`` (the value times 10**N), a ``ufixedMxN`` one a ``uintM``: a ready-made
    rule of that type is taken (the builder sends fixed-point rules here), one of another kind is refused by the
    SDK's own error naming the type to use, never a bare ValueError."""
    minimum = Rule(
        condition=Condition.GREATER_THAN_OR_EQUAL, offset=0, arg_type=ArgType.int_of(128), values=(10**18,)
    )
    assert Policy.call("0x" + "5e" * 20, "price(fixed128x18 p)", [minimum]).rules == (minimum,)
    as_word = Rule(
        condition=Condition.GREATER_THAN_OR_EQUAL, offset=0, arg_type=ArgType.WORD, values=(10**18,)
    )
    with pytest.raises(BadInputError, match=r"Give the rule the argument's type \(int128\)$"):
        Policy.call("0x" + "5e" * 20, "price(fixed128x18 p)", [as_word])
    with pytest.raises(BadInputError, match="write a Rule typed uint64 with the raw word"):
        Policy.call("0x" + "5e" * 20, "price(ufixed64x2 p)", [arg("p") >= 1])


def test_the_page_describes_a_rule_on_a_fixed_point_argument_and_names_a_misread_one(words) -> None:
    """A ``uint128`` rule on a ``ufixed128x18`` (the type the SDK says to write) is described as a rule on that
    argument; a ``uint256`` one reads its argument otherwise and the danger names the argument itself."""
    rate = keccak(b"setRate(ufixed128x18)")[:4]
    good = Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=0, arg_type=ArgType.uint_of(128), values=(10**18,)
    )
    described = words(
        Permission(
            target="0x" + "5e" * 20, selector=rate, function="setRate(ufixed128x18 rate)", rules=(good,)
        )
    )
    assert not [w.text for w in described.warnings if w.level == "danger" and "rule 0" in w.text]
    signed = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, arg_type=ArgType.INT256, values=(10**18,))
    described = words(
        Permission(
            target="0x" + "5e" * 20, selector=rate, function="setRate(ufixed128x18 rate)", rules=(signed,)
        )
    )
    dangers = [w.text for w in described.warnings if w.level == "danger" and "rule 0" in w.text]
    assert dangers and all("`rate`" in text and "{label}" not in text for text in dangers), dangers
