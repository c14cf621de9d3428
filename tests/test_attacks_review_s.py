"""A dapp as the attacker, sixth round: calls carried in other types than ``bytes``, a struct's free recipient,
other accounts' dispatches, a wrapped ether of the dapp's own, dispatches in the session report, and a component's
rule named by another.

Attack 408, a dispatcher whose calls are not ``bytes``: attack 376 cautioned of a function the page does not know
whose arguments hold ``bytes`` (the contract may run them as calls no rule holds). A ``string`` is the same bytes
under another name (``address(this).delegatecall(bytes(step))``), and so is an array of words (``bytes32[]``,
``uint256[]``: their packed words are any bytes). A dapp's request for its router, ``approve(spender == router, amount
<= 1,000)`` on the token, ``swap(..., recipient == this account)`` and ``batch(string[] steps)`` (to batch them, it
says), read the batch as "any arguments: no rule limits them", no warning at all; the key's ``batch`` runs a swap of
the account's tokens to the dapp, as attack 376's did.

Attack 409, a struct whose components are not shown: a function's struct argument was shown by its type alone,
``swap((address,address,uint256) order)``, on the page and in the session report, with the rule ``order.amount
(uint256) must be at most 1,000``. The same function with flat arguments shows ``address recipient`` with no rule
under it; in the struct, the owner reads one component's bound and cannot see that another is a recipient no rule
holds, which the key sets to the dapp.

Attack 410, another account's dispatch cautioned as if it might not be one: the page knew an account's ``execute``
and ``executeBatch(address[], uint256[], bytes[])`` by selector; a Coinbase Smart Wallet's or Kernel v2's
``executeBatch`` of a struct array, a LightAccount's ``executeBatch(address[], bytes[])``, Safe's ``multiSend`` and what
a Safe or an ERC-7579 account runs for one of its modules (``execTransactionFromModule``, ``executeFromExecutor``)
read with attack 376's caution only ("if the contract runs them as calls"), while each runs any call the key picks.

Attack 411 (held), wrapped ether: a dapp's contract calling itself Wrapped Ether (WETH) at an address of its own,
asked for ``deposit()`` (up to 1 ETH a call, "to wrap your ETH") and ``withdraw(wad)``. The page shows the name as the
contract's claim and the ETH each ``deposit`` sends to it; the ETH a withdrawal pays the account leaves it only as a
permission's value limit allows (the module refuses 1 wei on a payable function granted none).

Attack 412, a dispatch's danger on the page only: the session report read a ``multicall`` as a function like any other.

Attack 413, a struct component's rule named by another component: with attack 409's names shown, a label naming two
components ``to`` (or the first only, with the rule on the second labelled ``legs.to``) read "legs.to must be this
account" for the word the line does not name ``to``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.consent import GrantDescription
from keyscope.execution import Call
from keyscope.policy import AbiFunction, AbiType, parse_signature
from keyscope.report import StoreMarks, describe_permission, report_from_store
from keyscope.session import Condition, Permission, Rule, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
from test_attacks import words as abi_words


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


ROUTER = "0x" + "7e" * 20
ACCOUNT = "0x" + "ac" * 20


@pytest.mark.parametrize(
    "signature",
    [
        "batch(string[] steps)",
        "relay(address to,string payload)",
        "forward(address to,bytes32[] words)",
        "run((address target,uint256[] data)[] calls)",
    ],
)
def test_a_dispatcher_carrying_its_calls_in_a_string_or_words_is_cautioned(
    signature: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 408, what the owner reads: a function the page does not know whose arguments carry data no rule reads in
    a ``string`` or an array of words is cautioned as one taking ``bytes`` is (attack 376): the contract may run that
    data as calls no rule of the session holds."""
    described = words(_labelled(Policy.call(ROUTER, signature), signature), account=ACCOUNT)
    cautions = [w.text for w in described.warnings if w.permission == 0]
    assert any("no rule reads" in text and "as calls" in text for text in cautions), described.warnings


@pytest.mark.parametrize(
    "signature",
    ["pay(address to,uint256 amount)", "claim(address[] pools,bool[] flags)", "settle(uint256[2] legs)"],
)
def test_arguments_that_carry_no_call_are_not_cautioned_as_calls(
    signature: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 408's caution is not on every function: words fixed in number, addresses and flags carry no call."""
    described = words(_labelled(Policy.call(ROUTER, signature), signature), account=ACCOUNT)
    assert not [w for w in described.warnings if "as calls" in w.text], described.warnings


def _labelled(permission: Permission, label: str) -> Permission:
    """``permission`` as a dapp's request labels it: its signature with the argument and component names."""
    return permission.model_copy(update={"function": label})


ORDER = "swap((address tokenIn,address recipient,uint256 amount) order)"
"""Attack 409's function: the recipient is a component of the struct, beside the amount a rule bounds."""


def _order_swap(router: str) -> Permission:
    """Attack 409's request: ``order.amount`` at most 1,000, nothing on ``order.recipient``."""
    return _labelled(Policy.call(router, ORDER, rules=[arg("order", "amount") <= 1000]), ORDER)


def test_a_struct_is_shown_with_its_components_names(words: Callable[..., GrantDescription]) -> None:
    """Attack 409, what the owner reads: the function's line names each component of its struct (``address
    recipient``, with no rule under it), on the page and in the session report, as a flat argument is named."""
    described = words(_order_swap(ROUTER), account=ACCOUNT)
    (permission,) = described.permissions
    assert permission.function == "swap((address tokenIn, address recipient, uint256 amount) order)", (
        permission
    )
    assert permission.rules == ("order.amount (uint256) must be at most 1,000",), permission.rules
    reported = describe_permission(_order_swap(ROUTER))
    assert "swap((address tokenIn,address recipient,uint256 amount) order)" in reported, reported


def test_the_chain_lets_the_key_pay_the_swap_to_anyone(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant read as "order.amount at most 1,000" lets the dapp do: its key calls ``swap`` with the
    recipient its own; the module accepts it (the component no rule holds is the key's to pick)."""
    target = project.EffectRecorder.deploy(sender=deployer)
    permission = _order_swap(target.address)
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    order = abi_words(int("70" * 20, 16), int(LocalSigner.generate().address, 16), 1000)
    calls = [Call.of(target.address, 0, permission.selector + order)]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"


@pytest.mark.parametrize(
    "signature",
    [
        "executeBatch((address target,uint256 value,bytes data)[] calls)",
        "executeBatch(address[] dest,bytes[] func)",
        "multiSend(bytes transactions)",
        "execTransactionFromModule(address to,uint256 value,bytes data,uint8 operation)",
        "execTransactionFromModuleReturnData(address to,uint256 value,bytes data,uint8 operation)",
        "executeFromExecutor(bytes32 mode,bytes executionCalldata)",
    ],
)
def test_another_account_s_dispatch_is_shown_as_running_calls_no_rule_holds(
    signature: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 410, what the owner reads: another account's batch (a struct array, or without values), Safe's
    ``multiSend`` and what a Safe or an ERC-7579 account runs for one of its modules carry attack 373's danger that
    no rule of the session holds what they run, whatever the request calls them; never a caution that they may."""
    described = words(Policy.call(ROUTER, signature), account=ACCOUNT)
    dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == 0]
    assert any("no rule of this session holds them" in text for text in dangers), described.warnings
    assert described.permissions[0].function.startswith(signature.split("(")[0] + "("), described.permissions


def test_wrapped_ether_of_the_dapp_s_own_is_shown_as_its_claim_with_the_eth_each_call_sends(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 411 (held), what the owner reads of a dapp's contract that calls itself Wrapped Ether (WETH) at an
    address of its own, asked for ``deposit()`` with up to 1 ETH a call ("to wrap your ETH") and ``withdraw(wad <= 1
    WETH)``: the name is shown as the contract's claim ("calls itself"), never as a known token; ``deposit`` says the
    ETH each call sends to that contract and that no limit over the session's life bounds the calls; ``withdraw``
    sends none (the module refuses any value above a permission's limit, whatever the target does with the ETH a
    withdrawal paid the account)."""
    fake = project.NamedToken.deploy("Wrapped Ether", "WETH", 18, sender=deployer)
    deposit = _labelled(Policy.call(fake.address, "deposit()", value_limit=10**18), "deposit()")
    withdraw = _labelled(
        Policy.call(fake.address, "withdraw(uint256 wad)", rules=[arg("wad") <= 10**18]),
        "withdraw(uint256 wad)",
    )
    described = words(deposit, withdraw, account=ACCOUNT)
    shown_deposit, shown_withdraw = described.permissions
    for shown in (shown_deposit, shown_withdraw):
        assert shown.contract_label == "a token that calls itself Wrapped Ether (WETH)", shown
    assert shown_deposit.value == "each call may send at most 1 ETH", shown_deposit
    assert shown_withdraw.value == "no ETH may be sent with these calls", shown_withdraw
    assert shown_withdraw.rules == ("wad (uint256) must be at most 1,000,000,000,000,000,000",), (
        shown_withdraw
    )
    assert described.limits[0].startswith("No limits over the session's life"), described.limits


def test_the_chain_sends_no_eth_through_a_payable_function_granted_none(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """Attack 411 (held) on chain: the ETH a withdrawal paid the account leaves only as the grant says. A payable
    function granted with no ETH (``note(uint256)``, as a wrapped token's ``withdraw`` is granted) runs without
    value, and the module refuses the key's call of it carrying 1 wei."""
    target = project.EffectRecorder.deploy(sender=deployer)
    permission = Policy.call(target.address, "note(uint256 amount)")
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    data = permission.selector + abi_words(10**18)
    assert (
        sessions.outcome(sessions.op(module_account, session_key, [Call.of(target.address, 0, data)])) == "ok"
    )
    refused = sessions.outcome(sessions.op(module_account, session_key, [Call.of(target.address, 1, data)]))
    assert "ValueLimitExceeded(callIndex=0, permissionIndex=0, value=1, valueLimit=0)" in refused, refused
    assert target.balance == 0


def test_the_session_report_says_a_dispatch_runs_calls_no_rule_holds(
    net: Any, project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 412: the session report of a grant holding a ``multicall`` and an ERC-7579 ``executeFromExecutor``
    (which the page shows in red) gives each the page's danger that no rule of the session holds what it runs, from
    the grant alone (judged from a store, no chain asked); a plain function beside them raises none."""
    owner = net.owner(LocalSigner.generate())
    router = project.EffectRecorder.deploy(sender=deployer).address
    grant = [
        Policy.call(router, "multicall(bytes[] data)"),
        Policy.call(router, "executeFromExecutor(bytes32 mode,bytes executionCalldata)"),
        Policy.call(router, "pay(address to,uint256 amount)", rules=[arg("to") == owner.account]),
    ]
    with pytest.warns(TargetWarning):  # owner.grant says it too (attack 420)
        signed = owner.grant(SessionKey.generate(), grant, valid_for=3600)
    report = report_from_store(
        signed, StoreMarks(revoked=False, enabled=True), now=signed.session.valid_after
    )
    page = [w.text for w in words(*grant, account=owner.account).warnings if w.level == "danger"]
    assert len(report.dangers) == 2, report.dangers
    for name, danger in zip(("multicall", "executeFromExecutor"), report.dangers, strict=True):
        assert danger.startswith(f"{name} on {router}: "), danger
        assert any(text.endswith(danger.split(": ", 1)[1]) for text in page), (danger, page)
        assert f"  danger  {danger}" in report.lines()


@pytest.mark.parametrize(
    "label",
    ["pay((address to,address to) legs,uint256 amount)", "pay((address to,address) legs,uint256 amount)"],
)
def test_a_component_s_rule_is_never_named_by_another_component(
    label: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 413: a rule holding a struct's second component, labelled ``legs.to`` where the label names the first
    ``to`` (twice among the struct's components, or the first only), is shown as ``legs.1`` on the page and in the
    session report, never as the ``to`` the function's line shows on the first."""
    built = Policy.call(
        ROUTER, "pay((address a,address b) legs,uint256 amount)", rules=[arg("legs", "b") == ACCOUNT]
    )
    permission = built.model_copy(
        update={"function": label, "rules": (built.rules[0].model_copy(update={"name": "legs.to"}),)}
    )
    (shown,) = words(permission, account=ACCOUNT).permissions
    assert shown.function == "pay((address to, address) legs, uint256 amount)", shown
    assert shown.rules[0].startswith("legs.1 (address) must be "), shown.rules
    reported = describe_permission(permission)
    assert "pay((address to,address) legs,uint256 amount)" in reported, reported
    assert "where legs.1 must be " in reported, reported


def test_a_label_declaring_millions_of_words_is_named_without_listing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attack 413's check that a rule's name is not another word's path listed every static word of the label's
    function: the dapp's label ``f(uint256[100000000] a,address to)`` with a rule named ``a[1]`` held the owner's
    session report for good. The path is now followed, the words never listed: the report asks the function about
    the rule's own word only."""
    asked: list[int] = []
    word_at = AbiFunction.word_at

    def counted(self: AbiFunction, offset: int) -> tuple[str, AbiType] | None:
        asked.append(offset)
        return word_at(self, offset)

    monkeypatch.setattr(AbiFunction, "word_at", counted)
    label = "f(uint256[10000] a,address to)"  # ten thousand words: listing them fails here in a moment
    permission = Permission(
        target=ROUTER,
        selector=parse_signature(label).selector,
        function=label,
        rules=(Rule(condition=Condition.EQUAL, offset=32, arg_type=0, values=(1,), name="a[1]"),),
    )
    assert "where a[1] must be 1" in describe_permission(permission)
    assert asked and set(asked) == {32}  # only the rule's own word, never the others
