"""Daily limits on a real anvil and Alto: a token allowance, a call count and a native-value allowance, each
spent to the unit, refused at the next smallest unit (by the SDK, and by the EntryPoint when sent anyway), and
spent again once the next period has begun.

The periods are real days whose boundary falls a few seconds after the test starts (the session's validAfter,
where periods start, is set a day minus those seconds before): Alto judges an operation's window by its wall
clock and the EntryPoint by the block's time, so the test waits for the boundary instead of moving anvil's
clock (see tests/e2e/test_session_window.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keyscope import (
    BundlerRejectedError,
    LimitExceededError,
    Limits,
    Policy,
    SessionKey,
    TargetWarning,
    arg,
    connect,
    function_call,
)
from keyscope.execution import Call
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.stack_clock import mine_until
from support.victims import deploy, transact, view

pytestmark = pytest.mark.e2e

DAY = 86400
BOUNDARY = 40
"""Seconds from the test's start to the daily periods' boundary: room for the first period's operations, which
Alto accepts only while their window (the period) ends at least 5 s after its clock."""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of its own: the test waits for wall-clock time and mines blocks."""
    with LocalStack() as stack:
        yield stack


def test_daily_allowance_call_count_and_native_value(stack: LocalStack) -> None:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    token = deploy(stack, "TestToken")
    transact(stack, token, "mint(address,uint256)", ["address", "uint256"], [owner.account, 100])
    friend = LocalSigner.generate().address
    boundary = max(stack.timestamp(), int(time.time())) + BOUNDARY
    key = SessionKey.generate()
    with pytest.warns(TargetWarning):  # an allowance pays ANY address, by design: said (attack 431)
        grant = owner.grant(
            key,
            [
                Policy.erc20_allowance(token, 5, period="day", symbol="TUSD"),
                Policy.call(
                    stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account], rate="2/day"
                ),
                Policy.transfer(friend, value_limit=5),
            ],
            limits=[Limits.native(5, per="day")],
            valid_after=boundary - DAY,
            valid_until=boundary + DAY,
        )
    session = net.session(grant, key)
    transfer = "transfer(address,uint256)"
    mint = function_call(stack.nft, "safeMint(address)", owner.account)

    # period 0: each limit spent to the unit (the first operation also creates the account and enables the session)
    assert session.execute(token, transfer, friend, 5).wait().success
    assert session.execute_batch([mint, mint]).wait().success
    assert session.send_calls(Call(friend, 5, b"")).wait().success
    assert view(stack, token, "balanceOf(address)", ["address"], [friend]) == 5
    used = {row.limit.label: (row.used, row.left) for row in session.usage()}
    assert used == {
        "native allowance": (5, 0),
        "TUSD allowance": (5, 0),
        f"rate of safeMint(address) on {stack.nft}": (2, 0),
    }

    # the next smallest unit: refused by the SDK, and by the EntryPoint when sent anyway
    over = {
        "TUSD allowance": [function_call(token, transfer, friend, 1)],
        "rate of safeMint": [mint],
        "native allowance": [Call(friend, 1, b"")],
    }
    for name, calls in over.items():
        with pytest.raises(LimitExceededError) as refused:
            session.send_calls(calls)
        assert name in str(refused.value) and refused.value.resets_at == boundary, refused.value
        with pytest.raises(BundlerRejectedError) as rejected:
            session.send_calls(calls, check=False)
        assert "LimitExceeded(callIndex=0" in str(rejected.value) and "left=0" in str(rejected.value), (
            rejected.value
        )

    # period 1: all three whole again
    mine_until(stack, boundary)
    assert session.execute(token, transfer, friend, 5).wait().success
    assert session.execute_batch([mint, mint]).wait().success
    assert session.send_calls(Call(friend, 5, b"")).wait().success
    assert view(stack, token, "balanceOf(address)", ["address"], [friend]) == 10
    assert all(row.left == 0 and row.period_start == boundary for row in session.usage())
