"""The eighth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in the Python code the owner reads after the grant (the dashboard's sessions and their usage), in the dangers
of an asset an allowance does not count, in a session written back as ERC-7715 requests, and in the policy
builder's input checks.

Pinned here, without a chain, and on ape's chain for ``owner.grant``:

* an ``increaseAllowance`` whose amount a rule bounds per call adds to the spender's allowance at every call, as
  often as the session's window allows: the consent page raises a danger on it, and ``owner.grant`` a
  ``TargetWarning``, unless a lifetime allowance counts its amount (attack 349).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from keyscope import Policy, SessionKey, arg
from keyscope.consent.describe import Facts, GrantDescription, describe_session
from keyscope.consent.tokens import ContractFacts
from keyscope.errors import TargetWarning
from keyscope.hexutil import to_address
from keyscope.owner import Owner
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.targets import warn_about_approvals_that_add_up
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.sdk import sdk_owner  # noqa: F401 (fixture)

TOKEN = to_address("0x" + "a0" * 20)
KEY = to_address("0x" + "ab" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)
SHOP = to_address("0x" + "5b" * 20)
FACTS = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)
INCREASE = "increaseAllowance(address spender,uint256 addedValue)"


def _session(*permissions: Permission, **fields: Any) -> Session:
    """A session of ``permissions`` for KEY, valid until 2033 with a gas cap of 0.01 ETH."""
    base: dict[str, Any] = {"session_key": KEY, "valid_until": 2_000_000_000, "max_gas_cost": 10**16}
    return Session(permissions=permissions, **(base | fields))


def _words(*permissions: Permission, **fields: Any) -> GrantDescription:
    """The consent page's words for a session of ``permissions`` (targets with code, no token, no module)."""
    return describe_session(_session(*permissions, **fields), account=ACCOUNT, chain_id=1, facts=FACTS)


def _adding_up(words: GrantDescription) -> list[str]:
    """The dangers the page raises of an approval whose calls add up."""
    return [w.text for w in words.warnings if w.level == "danger" and "adds to" in w.text]


def _bounded_increase() -> Permission:
    return Policy.call(TOKEN, INCREASE, [arg("spender") == SHOP, arg("addedValue") <= 100])


def test_an_increase_of_an_allowance_bounded_per_call_is_warned_of_as_adding_up() -> None:
    """Attack 349. A rule bounds one ``increaseAllowance`` call's amount, not the allowance: every call adds to it,
    as often as the window allows, and the allowance outlives the session. The page says so in red, naming the
    permission; a lifetime allowance counting the amount (``erc20_allowance`` without a period) bounds it, and
    then the page says nothing of it."""
    words = _words(_bounded_increase())
    (danger,) = _adding_up(words)
    assert danger.startswith(
        f"increaseAllowance(address spender, uint256 addedValue) on {TOKEN}: each call adds to the spender's "
        "allowance"
    ), danger
    assert "as often as the session's window allows" in danger, danger
    assert [w.permission for w in words.warnings if w.text == danger] == [0]
    assert _adding_up(_words(*Policy.erc20_allowance(TOKEN, 500))) == []
    approve = Policy.call(TOKEN, "approve(address spender,uint256 amount)", [arg(0) == SHOP, arg(1) <= 100])
    assert _adding_up(_words(approve)) == []  # approve sets the allowance: its calls do not add up


def test_an_increase_counted_only_per_period_or_on_another_word_still_adds_up() -> None:
    """A periodic total starts again each period while the allowances it counted stay (attack 260), and a total on
    the spender's word counts no amount: both leave the allowance growing, and the danger stays. An unbounded
    amount has its own danger (an UNLIMITED allowance), not this one."""

    def counted(period: int, offset: int) -> GrantDescription:
        total = Limit(
            kind=LimitKind.AMOUNT, amount=500, period=period, meters=(Meter(permission=0, offset=offset),)
        )
        return _words(_bounded_increase(), limits=(total,))

    assert _adding_up(counted(0, 32)) == []
    assert len(_adding_up(counted(86_400, 32))) == 1
    assert len(_adding_up(counted(0, 0))) == 1
    unbounded = _words(Policy.call(TOKEN, INCREASE, [arg("spender") == SHOP]))
    assert _adding_up(unbounded) == []
    assert any("UNLIMITED" in w.text for w in unbounded.warnings), unbounded.warnings


def test_a_program_granting_a_bounded_increase_is_warned_that_its_calls_add_up() -> None:
    """What ``owner.grant`` runs before it signs (one check serves the page and the warning)."""
    with pytest.warns(TargetWarning) as caught:
        warn_about_approvals_that_add_up(_session(_bounded_increase()))
    (said,) = [str(w.message) for w in caught]
    assert said.startswith(f"granting increaseAllowance(address,uint256) on {TOKEN}: each call adds to"), said
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        warn_about_approvals_that_add_up(_session(*Policy.erc20_allowance(TOKEN, 500)))


def test_owner_grant_warns_that_a_bounded_increase_adds_up(usdc: Any, owner: Owner) -> None:
    """Attack 349 through ``owner.grant``: an owner granting from a program sees no page."""
    bounded = Policy.call(usdc.address, INCREASE, [arg("spender") == SHOP, arg("addedValue") <= 100])
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), [bounded])
    assert [str(w.message) for w in caught if "each call adds to" in str(w.message)], caught.list
