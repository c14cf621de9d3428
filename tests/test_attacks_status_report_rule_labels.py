"""The status report and the command line's listing name each rule by the argument whose word it checks.

A rule's ``name`` and a permission's ``function`` are labels, not signed: a grant request made without the SDK (an
ERC-7715 ``contract-call`` rule given by offset, a hand-made request) carries the dapp's text there, and the consent
page names each rule from the function's layout instead (attacks 258, 278). ``describe_permission``, which
``session.status()``, ``owner.sessions()`` and the command line's listing show, wrote both as they came: a rule on
``transfer``'s recipient labelled ``amount`` read "amount must be 0x…", a label of words wrote the report's own words
("amount must be at most 1; to must be 5", for a rule on the amount only), and a function label of words was shown as
the function.
"""

from __future__ import annotations

from keyscope.hexutil import keccak, to_address
from keyscope.policy import Policy, arg, parse_signature
from keyscope.report import describe_permission
from keyscope.session import ArgType, Condition, Permission, Rule

TOKEN = to_address("0x" + "70" * 20)
SHOP = to_address("0x" + "5b" * 20)
TRANSFER = parse_signature("transfer(address,uint256)").selector


def _rule(offset: int, arg_type: int, value: int, name: str | None, condition: int = Condition.EQUAL) -> Rule:
    return Rule(condition=condition, offset=offset, arg_type=arg_type, values=(value,), name=name)


def test_a_rule_is_named_by_the_argument_it_checks_not_by_its_label() -> None:
    permission = Permission(
        target=TOKEN,
        selector=TRANSFER,
        function="transfer(address,uint256)",
        rules=(
            _rule(0, ArgType.ADDRESS, int(SHOP, 16), "amount"),
            _rule(32, ArgType.UINT256, 5, "amount must be at most 1; to", Condition.LESS_THAN_OR_EQUAL),
        ),
    )
    described = describe_permission(permission)
    assert f"where to must be {SHOP} and amount must be at most 5;" in described, described
    assert "amount must be 0x" not in described and "at most 1" not in described, described


def test_a_function_label_that_is_not_the_selector_s_function_is_not_shown_as_the_function() -> None:
    """A known function reads as the table has it; another as its label declares it, without trailing words; a label
    that is another function than the selector's, by its selector."""
    words = " to the shop only, at most 1 USDC"
    known = Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)" + words)
    assert f"call transfer(address to,uint256 amount) on {TOKEN};" in describe_permission(known)
    pay = parse_signature("pay(address,uint256)").selector
    unknown = Permission(target=TOKEN, selector=pay, function="pay(address shop, uint256 amount)" + words)
    assert f"call pay(address shop,uint256 amount) on {TOKEN};" in describe_permission(unknown)
    other = Permission(target=TOKEN, selector=pay, function="transferFrom(address,address,uint256)")
    assert f"call the function with selector 0x{pay.hex()} on" in describe_permission(other)


def test_labels_a_misaligned_rule_or_one_on_an_unnamed_argument_takes() -> None:
    """Where no argument's word starts, the rule is the word at its offset, whatever its label; two labels naming
    two words alike name neither; a label that fits an unnamed argument (``order.amount`` on ``arg0.1``) stays."""
    function = parse_signature("settle((address,uint256),uint24)")
    permission = Permission(
        target=TOKEN,
        selector=function.selector,
        function=function.signature,
        rules=(
            _rule(16, ArgType.UINT256, 5, "fee"),
            _rule(32, ArgType.UINT256, 6, "order.amount"),
            _rule(64, ArgType.uint_of(24), 500, "order.amount"),
        ),
    )
    described = describe_permission(permission)
    assert "word at offset 16 must be 5" in described, described
    assert "arg0.1 must be 6 and arg1 must be 500" in described, described
    single = permission.model_copy(update={"rules": permission.rules[1:2]})
    assert "where order.amount must be 6;" in describe_permission(single)


def test_the_sdk_s_own_labels_read_as_before() -> None:
    swap = Policy.call(
        TOKEN,
        "swap((address token,uint256 amount) order,uint24 fee,uint256[2] legs)",
        rules=[
            arg("order", "amount") <= 5,
            arg("fee") == 500,
            arg("order", "token") == SHOP,
            arg("legs", 1) >= 2,
        ],
    )
    described = describe_permission(swap)
    assert (
        f"where order.amount must be at most 5 and fee must be 500 and order.token must be {SHOP} and legs[1] must "
        "be at least 2;" in described
    ), described
    unnamed = Policy.call(TOKEN, "pay(address,uint256)", rules=[arg(1) <= 9])
    assert "where arg1 must be at most 9;" in describe_permission(unnamed)
    assert keccak(b"pay(address,uint256)")[:4] == unnamed.selector
