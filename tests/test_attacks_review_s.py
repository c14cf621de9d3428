"""A dapp as the attacker, sixth round: calls carried in other types than ``bytes``, and a struct's free recipient.

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, arg
from keyscope.consent import GrantDescription
from keyscope.execution import Call
from keyscope.report import describe_permission
from keyscope.session import Permission, Session
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
