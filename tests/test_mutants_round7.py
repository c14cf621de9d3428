"""The seventh round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in the Python code between a dapp's request and the owner's signature, none of it on a chain.

Pinned here:

* an ERC-7715 ``call-limit`` on an ``erc20-token-transfer`` request counts the calls of every permission the
  allowance makes (``transfer``, ``transferFrom``, ``approve``, ``increaseAllowance``), not its first only;
"""

from __future__ import annotations

from typing import Any

from keyscope.erc7715 import plan_from_requests
from keyscope.hexutil import to_address
from keyscope.session import LimitKind

TOKEN = to_address("0x" + "a0" * 20)
KEY = to_address("0x" + "ab" * 20)


def _request(permission: dict[str, Any], policies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One ``wallet_grantPermissions`` request of ``permission`` for a key signer, expiring in 2033."""
    return {
        "chainId": "0x7a69",
        "expiry": 2_000_000_000,
        "signer": {"type": "account", "data": {"address": KEY}},
        "permission": permission,
        "policies": policies or [],
    }


def test_a_call_limit_on_an_erc20_allowance_counts_the_calls_of_every_permission_it_makes() -> None:
    allowance = {"type": "erc20-token-transfer", "data": {"address": TOKEN, "allowance": "0x64"}}
    plan = plan_from_requests([_request(allowance, [{"type": "call-limit", "data": {"count": 2}}])])
    session = plan.session(max_gas_cost=0, salt=0)
    assert len(session.permissions) == 4  # transfer, transferFrom, approve, increaseAllowance
    (calls,) = [limit for limit in session.limits if limit.kind == LimitKind.CALLS]
    assert calls.amount == 2
    assert [meter.permission for meter in calls.meters] == [0, 1, 2, 3]
