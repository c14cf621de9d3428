"""The premise docs/erc7715.md states about the session-wide policies of one ``wallet_grantPermissions`` call,
checked as worded: "each of ``gas-cost-per-operation``, ``uncapped-paymasters``, ``valid-after`` and ``gas-limit``
is asked by every request, with one value, or by none". The existing tests took two of the four for presence and one
for value; here every policy is asked by one request only (in either place) and by both with two values (in either
order), and each is refused before a session is planned: the calls of the request that did not ask would be bound,
or freed, by what the other asked."""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.erc7715 import plan_from_requests
from keyscope.errors import BadInputError
from keyscope.hexutil import to_address

TOKEN = to_address("0x" + "a0" * 20)
SHOP = to_address("0x" + "5b" * 20)
OTHER = to_address("0x" + "0e" * 20)
MINT = {"type": "contract-call", "data": {"address": TOKEN, "function": "mint(address to)"}}
BURN = {"type": "contract-call", "data": {"address": TOKEN, "function": "burn(uint256 id)"}}

POLICIES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "gas-cost-per-operation": ({"limit": hex(10**15)}, {"limit": hex(10**18)}, "max_gas_cost"),
    "uncapped-paymasters": ({"addresses": [SHOP]}, {"addresses": [OTHER]}, "paymasters"),
    "valid-after": ({"timestamp": 1_800_000_000}, {"timestamp": 1_700_000_000}, "valid_after"),
    "gas-limit": ({"limit": hex(10**16)}, {"limit": hex(10**17)}, "gas_limit"),
}


def _request(permission: dict[str, Any], policies: list[dict[str, Any]]) -> dict[str, Any]:
    """One request of the call, on the test chain, with a shared signer and expiry."""
    return {
        "chainId": 31337,
        "expiry": 1_900_000_000,
        "signer": {"type": "account", "data": {"address": SHOP}},
        "permission": permission,
        "policies": policies,
    }


@pytest.mark.parametrize("kind", sorted(POLICIES))
@pytest.mark.parametrize("asked_by", [0, 1])
def test_a_session_wide_policy_asked_by_one_request_only_is_refused(kind: str, asked_by: int) -> None:
    """Asked by request 0 or request 1 only: refused, naming the policy."""
    policy = {"type": kind, "data": POLICIES[kind][0]}
    requests = [
        _request(MINT, [policy] if asked_by == 0 else []),
        _request(BURN, [policy] if asked_by == 1 else []),
    ]
    with pytest.raises(BadInputError, match=f"do not both ask the session-wide policy '{kind}'"):
        plan_from_requests(requests)


@pytest.mark.parametrize("kind", sorted(POLICIES))
@pytest.mark.parametrize("order", ["first-second", "second-first"])
def test_a_session_wide_policy_asked_with_two_values_is_refused(kind: str, order: str) -> None:
    """Asked by both requests with two values, in either order: refused, naming the setting and both values; asked
    with one value by both, it is the session's."""
    first, second, name = POLICIES[kind]
    values = [first, second] if order == "first-second" else [second, first]
    requests = [
        _request(MINT, [{"type": kind, "data": values[0]}]),
        _request(BURN, [{"type": kind, "data": values[1]}]),
    ]
    with pytest.raises(BadInputError, match=f"asks {name} .*another request asked"):
        plan_from_requests(requests)
    agreed = [
        _request(MINT, [{"type": kind, "data": first}]),
        _request(BURN, [{"type": kind, "data": first}]),
    ]
    plan = plan_from_requests(agreed)
    assert [p.selector for p in plan.session(max_gas_cost=10**16, salt=0).permissions] == [
        p.selector for p in plan_from_requests([agreed[0]]).session(max_gas_cost=10**16, salt=0).permissions
    ] + [p.selector for p in plan_from_requests([agreed[1]]).session(max_gas_cost=10**16, salt=0).permissions]


PAY = {"type": "contract-call", "data": {"address": SHOP, "selector": "0x00000000", "valueLimit": "0x64"}}
PERIODS: dict[str, tuple[dict[str, Any], str]] = {
    "native periodDuration": (
        {"type": "native-token-transfer", "data": {"allowance": "0x5"}},
        "periodDuration",
    ),
    "erc20 periodDuration": (
        {"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x5"}},
        "periodDuration",
    ),
    "rate-limit interval": ({"type": "rate-limit", "data": {"count": 1}}, "interval"),
}


def _with_period(where: str, seconds: int) -> list[dict[str, Any]]:
    """The requests of a call whose period ``where`` is ``seconds`` long (a payment the native allowance meters)."""
    entry, field = PERIODS[where]
    entry = {"type": entry["type"], "data": {**entry["data"], field: seconds}}
    if entry["type"] == "rate-limit":
        return [_request(MINT, [entry])]
    return [_request(PAY, []), _request(entry, [])]


@pytest.mark.parametrize("where", sorted(PERIODS))
@pytest.mark.parametrize("seconds", [59, 2**32])
def test_a_period_outside_sixty_seconds_to_two_to_the_thirty_two_is_refused(where: str, seconds: int) -> None:
    """erc7715.md: "Periods (``periodDuration``, ``interval``) are whole seconds from 60 ... to 2**32 - 1", for each
    of the three fields that carry one: one second short of either bound is refused, naming the field."""
    field = PERIODS[where][1]
    with pytest.raises(BadInputError, match=f"{field}: {seconds} "):
        plan_from_requests(_with_period(where, seconds))


@pytest.mark.parametrize("where", sorted(PERIODS))
@pytest.mark.parametrize("seconds", [60, 2**32 - 1])
def test_a_period_at_either_bound_is_the_limit_s_period(where: str, seconds: int) -> None:
    """The bounds themselves are periods the session's limit keeps, as asked."""
    session = plan_from_requests(_with_period(where, seconds)).session(max_gas_cost=10**16, salt=0)
    assert [limit.period for limit in session.limits if limit.period] != []
    assert {limit.period for limit in session.limits if limit.period} == {seconds}
