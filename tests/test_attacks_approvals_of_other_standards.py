"""What the owner reads against what the owner signs: approvals the consent page did not know by their selector.

The consent page warns in red of a permission that lets a leaked session key hand the account's tokens to anyone:
ERC-20 ``approve`` and ``increaseAllowance`` to any spender or without a bound, ERC-721/1155 ``setApprovalForAll``,
Permit2's ``approve`` (attack 269). Its warnings go by selector (``KNOWN_FUNCTIONS``), so a standard function that
grants the same power under another selector raised nothing: a dapp's request named it, the page read "May call
approveAndCall(address spender, uint256 amount)", "any arguments: no rule limits them", and no warning at all (the
function is named, so not even the caution of a function known only by its selector). The owner who had been taught
that a red line marks an approval to anyone signed one (attack 314):

* ERC-1363 ``approveAndCall(address spender, uint256 value)`` and its ``(…, bytes data)`` form: ERC-20 ``approve``
  and then a call into the spender;
* ERC-6909 ``setOperator(address spender, bool approved)``: an operator over every id of the multi-token the account
  holds, and ``approve(address spender, uint256 id, uint256 amount)``, whose largest amount never runs down;
* ERC-777 ``authorizeOperator(address operator)``: an operator over all of the account's tokens of the contract.

Read on ape's py-evm chain, as the page reads the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyscope.consent import GrantDescription
from keyscope.hexutil import to_address
from keyscope.policy import parse_signature
from keyscope.session import ArgType, Condition, Permission, Rule
from support.consent_fixtures import usdc_fixture, words_fixture  # noqa: F401 (fixtures)

SPENDER = to_address("0x" + "5e" * 20)
MULTI_TOKEN = to_address("0x" + "69" * 20)

Words = Callable[..., GrantDescription]


def _dangers(words: Words, permission: Permission) -> list[str]:
    """The red warnings the page gives a session granting ``permission`` alone."""
    return [w.text for w in words(permission).warnings if w.level == "danger"]


def _permission(target: str, signature: str, *rules: Rule) -> Permission:
    """A permission for ``signature`` (argument names and all) on ``target``, as a dapp's request names it."""
    selector = parse_signature(signature).selector
    return Permission(target=target, selector=selector, function=signature, rules=rules)


def _spender_is(offset: int) -> Rule:
    return Rule(
        condition=Condition.EQUAL, offset=offset, arg_type=ArgType.ADDRESS, values=(int(SPENDER, 16),)
    )


def _at_most(offset: int, amount: int) -> Rule:
    return Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=offset, arg_type=ArgType.UINT256, values=(amount,)
    )


def test_an_erc1363_approve_and_call_to_any_spender_is_a_danger_as_an_erc20_approve_is(
    words: Words, usdc: Any
) -> None:
    """ERC-1363's ``approveAndCall`` is ERC-20 ``approve`` and a callback: to any spender, or without a bound, it is the
    same two dangers, in both of its forms; held to one spender and a bound it raises neither, and its amount reads in
    the token's decimals as ``approve``'s does."""
    for signature in (
        "approveAndCall(address spender,uint256 value)",
        "approveAndCall(address spender,uint256 value,bytes data)",
    ):
        dangers = _dangers(words, _permission(usdc.address, signature))
        assert any("ANY spender" in text for text in dangers), (signature, dangers)
        assert any("UNLIMITED" in text for text in dangers), (signature, dangers)
        bounded = _permission(usdc.address, signature, _spender_is(0), _at_most(32, 5 * 10**6))
        described = words(bounded)
        assert not [w.text for w in described.warnings if w.level == "danger"], described.warnings
        rules = described.permissions[0].rules
        assert any("5 USDC" in rule for rule in rules), rules


def test_an_erc6909_operator_or_allowance_to_anyone_is_a_danger(words: Words) -> None:
    """ERC-6909's ``setOperator`` makes an operator of every id the account holds: a danger unless a rule holds
    ``approved`` to false (a revocation only). Its ``approve(spender, id, amount)`` is an ERC-20 approval per id, whose
    largest amount is never spent down: to any spender or uncapped, a danger."""
    operator = "setOperator(address spender,bool approved)"
    dangers = _dangers(words, _permission(MULTI_TOKEN, operator))
    assert any("EVERY" in text and "ANY operator" in text for text in dangers), dangers
    pinned = _dangers(words, _permission(MULTI_TOKEN, operator, _spender_is(0)))
    assert any("the operator its rule names" in text for text in pinned), pinned
    revoke_only = Rule(condition=Condition.EQUAL, offset=32, arg_type=ArgType.BOOL, values=(0,))
    assert not _dangers(words, _permission(MULTI_TOKEN, operator, revoke_only))
    allowance = "approve(address spender,uint256 id,uint256 amount)"
    dangers = _dangers(words, _permission(MULTI_TOKEN, allowance))
    assert any("ANY spender" in text for text in dangers), dangers
    assert any("UNLIMITED" in text for text in dangers), dangers
    assert not _dangers(words, _permission(MULTI_TOKEN, allowance, _spender_is(0), _at_most(64, 10**18)))


def test_an_erc777_operator_is_a_danger(words: Words) -> None:
    """ERC-777's ``authorizeOperator`` lets the operator send every token of the contract the account holds, and has
    no argument that could make it harmless: a danger, naming the operator when a rule holds it."""
    operator = "authorizeOperator(address operator)"
    dangers = _dangers(words, _permission(MULTI_TOKEN, operator))
    assert any("EVERY" in text and "ANY operator" in text for text in dangers), dangers
    pinned = _dangers(words, _permission(MULTI_TOKEN, operator, _spender_is(0)))
    assert any("EVERY" in text and "the operator its rule names" in text for text in pinned), pinned
