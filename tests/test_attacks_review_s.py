"""A dapp as the attacker, sixth round: calls carried in other types than ``bytes``.

Attack 408, a dispatcher whose calls are not ``bytes``: attack 376 cautioned of a function the page does not know
whose arguments hold ``bytes`` (the contract may run them as calls no rule holds). A ``string`` is the same bytes
under another name (``address(this).delegatecall(bytes(step))``), and so is an array of words (``bytes32[]``,
``uint256[]``: their packed words are any bytes). A dapp's request for its router, ``approve(spender == router, amount
<= 1,000)`` on the token, ``swap(..., recipient == this account)`` and ``batch(string[] steps)`` (to batch them, it
says), read the batch as "any arguments: no rule limits them", no warning at all; the key's ``batch`` runs a swap of
the account's tokens to the dapp, as attack 376's did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy
from keyscope.consent import GrantDescription
from keyscope.session import Permission
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)


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
