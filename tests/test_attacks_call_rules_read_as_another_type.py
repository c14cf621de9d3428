"""Attack 258: a call rule typed otherwise than its argument, shown to the owner as a small bound.

The module knows a call permission's target and selector, not its argument types: it reads the word at a rule's
offset as the rule's own type and compares whole words. A grant request (an ERC-7715 ``contract-call`` by selector,
or a hand-made permission) may type a rule on ERC-20 ``approve``'s ``uint256 amount`` as ``bytes1`` with "at most
0x7f": the word is then compared with ``0x7f << 248``, so the key may approve ``0x7f * 2**248`` base units, an
unlimited allowance in effect. The consent page showed "the bytes1 at byte 32 of the arguments must be at most 0x7f",
and no danger: the amount's bound was taken as that word, which is under the "unlimited" line of ``2**255``.

Now a rule whose type reads its argument's word otherwise (signed for unsigned, bytes for a number, or the reverse:
``ArgType.reads_alike``) is a danger on the page, its values shown as the whole words the chain compares, and it
bounds no amount (so ``approve`` says UNLIMITED); a rule where no argument starts is a danger too. ``Policy.call``
refuses such a ready-made rule, and so does an ERC-7715 request that names the function.
"""

from __future__ import annotations

import pytest

from keyscope import Policy, arg
from keyscope.consent import ConsentServer, GrantDescription
from keyscope.erc7715 import plan_from_requests
from keyscope.errors import BadInputError
from keyscope.execution import Call
from keyscope.hexutil import to_address
from keyscope.session import ArgType, Condition, Permission, Rule, Session
from support.consent_fixtures import usdc_fixture, words_fixture  # noqa: F401 (fixtures)
from support.erc7715_requests import contract_call_request
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)

SPENDER = to_address("0x" + "5e" * 20)
APPROVE = bytes.fromhex("095ea7b3")  # approve(address,uint256)
TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
BYTES1 = ArgType.bytes_of(1)
HUGE = 0x7F << 248
"""What "at most 0x7f" as a ``bytes1`` lets ``approve``'s ``uint256`` amount be."""
SPENDER_RULE = Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(int(SPENDER, 16),))
SMALL_AS_BYTES = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=BYTES1, values=(HUGE,))


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, module):
    """Session-scoped fixtures before this module's token (ape snapshots per fixture scope)."""


def _dangers(description: GrantDescription) -> list[str]:
    return [w.text for w in description.warnings if w.level == "danger"]


def _request(token: str, chain_id: int, rule: dict[str, object], **call: object) -> dict[str, object]:
    """One request for a ``contract-call`` of ``token``, its first argument held to spender, with ``rule``."""
    return contract_call_request(token, chain_id, SPENDER, rule, **call)


def test_the_key_approves_an_unlimited_allowance_under_at_most_0x7f_as_a_bytes1(
    sessions, module_account, owner, session_key, usdc
) -> None:
    """What the module enforces, whatever the page says: the grant is enabled, and the key approves
    ``0x7f * 2**248`` to the spender. This is why the page must not show the rule as a small bound."""
    session = Session(
        session_key=session_key.address,
        permissions=(
            Permission(target=usdc.address, selector=APPROVE, rules=(SPENDER_RULE, SMALL_AS_BYTES)),
        ),
    )
    sessions.grant_onchain(module_account, owner, session)
    data = APPROVE + int(SPENDER, 16).to_bytes(32, "big") + HUGE.to_bytes(32, "big")
    assert sessions.outcome(sessions.op(module_account, session_key, Call.of(usdc.address, 0, data))) == "ok"
    assert usdc.allowance(module_account, SPENDER) == HUGE


def test_the_consent_page_warns_of_a_rule_typed_otherwise_than_its_argument(words, usdc) -> None:
    """The page names the argument and the type the rule reads it as, shows the whole word the chain compares, and
    says the allowance is UNLIMITED; without the defence it showed "at most 0x7f" and no danger: fails."""
    described = words(Permission(target=usdc.address, selector=APPROVE, rules=(SPENDER_RULE, SMALL_AS_BYTES)))
    (shown,) = described.permissions
    assert shown.rules[1] == (
        f"the word of amount (uint256) read as a bytes1 must be at most the word 0x{HUGE:064x}"
    ), shown.rules
    dangers = _dangers(described)
    assert any("may approve an UNLIMITED allowance" in text for text in dangers), dangers
    assert any(
        "rule 1 reads `amount` (uint256) as a bytes1, which reads its word otherwise" in text
        for text in dangers
    ), dangers


def test_a_signed_rule_on_an_amount_bounds_nothing_the_page_shows(words, usdc) -> None:
    """``int8`` "at most 5" on ``transfer``'s amount lets every negative int8, words near ``2**256``, through: the
    page warns of the rule, and of no cap on the amount."""
    signed = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.int_of(8), values=(5,))
    to = Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(int(SPENDER, 16),))
    assert signed.holds(2**256 - 1)  # -1, as the token reads it 2**256 - 1 base units
    described = words(Permission(target=usdc.address, selector=TRANSFER, rules=(to, signed)))
    assert any("reads `amount` (uint256) as a int8" in text for text in _dangers(described)), (
        described.warnings
    )
    cautions = [w.text for w in described.warnings if w.level == "caution"]
    assert any("no rule caps the amount of one call" in text for text in cautions), cautions


def test_a_rule_of_a_type_that_reads_the_word_alike_is_no_danger(words, usdc) -> None:
    """A ``uint128`` rule on a ``uint256`` amount reads its word as the same number (stricter, as canonical
    ``uint128`` words are): no warning of its type, the amount shown and bounded as usual."""
    narrow = Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.uint_of(128), values=(10**6,)
    )
    described = words(Permission(target=usdc.address, selector=APPROVE, rules=(SPENDER_RULE, narrow)))
    assert _dangers(described) == [], described.warnings
    assert "1 USDC" in described.permissions[0].rules[1], described.permissions[0].rules


def test_a_rule_where_no_argument_starts_is_warned_of(words, usdc) -> None:
    """A rule at byte 16 of ``approve``'s arguments reads half the spender's word and half the amount's: it binds
    no argument as the token reads them."""
    straddling = Rule(condition=Condition.EQUAL, offset=16, arg_type=ArgType.WORD, values=(0,))
    described = words(Permission(target=usdc.address, selector=APPROVE, rules=(SPENDER_RULE, straddling)))
    assert any(
        "rule 1 reads the 32 bytes at byte 16 of the arguments, where no argument of the function starts"
        in text
        for text in _dangers(described)
    ), described.warnings


def test_an_erc7715_request_by_selector_is_warned_of_and_one_naming_the_function_is_refused(
    net, usdc
) -> None:
    """The same rule in a dapp's ERC-7715 request: by selector, the grant is what the module enforces, and the
    consent page warns of it; naming the function, the SDK refuses to build it, saying what to write instead."""
    rule = {"offset": 32, "type": "bytes1", "name": "amount", "op": "<=", "value": "0x7f"}
    request = _request(usdc.address, net.chain_id, rule, selector="0x095ea7b3")
    granted = plan_from_requests([request]).session(max_gas_cost=10**16, salt=1).permissions[0]
    assert granted.rules[1].arg_type == BYTES1 and granted.rules[1].values == (HUGE,)
    with ConsentServer(net) as server:
        described = server.request_permissions([request]).description
    dangers = _dangers(described)
    assert any("UNLIMITED" in text for text in dangers) and any("as a bytes1" in text for text in dangers), (
        dangers
    )

    named = _request(usdc.address, net.chain_id, rule, function="approve(address spender,uint256 amount)")
    with pytest.raises(
        BadInputError, match=r"reads `amount` \(uint256\) in approve\(address,uint256\) as a bytes1"
    ):
        plan_from_requests([named])


def test_policy_call_refuses_a_ready_made_rule_typed_otherwise_than_its_argument(usdc) -> None:
    """``Policy.call`` with a raw ``Rule`` that reads its argument otherwise is refused, with what to write; one of
    a type that reads it alike, and an ``arg(...)`` comparison, are taken."""
    with pytest.raises(BadInputError) as refused:
        Policy.call(usdc.address, "approve(address spender,uint256 amount)", [SPENDER_RULE, SMALL_AS_BYTES])
    message = str(refused.value)
    assert "a rule at byte 32 reads `amount` (uint256) in approve(address,uint256) as a bytes1" in message
    assert "Give the rule the argument's type (uint256), or write it as an arg(...) comparison" in message
    narrow = Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.uint_of(128), values=(10**6,)
    )
    assert Policy.call(usdc.address, "approve(address,uint256)", [SPENDER_RULE, narrow]).rules[1] == narrow
    by_name = Policy.call(usdc.address, "approve(address spender,uint256 amount)", [arg("amount") <= 10**6])
    assert by_name.rules[0].arg_type == ArgType.UINT256
