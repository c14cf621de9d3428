"""Attack 260: a periodic ERC-20 allowance whose approvals pile up across periods and outlive the session.

``Policy.erc20_allowance(token, 5, "day")`` (and an ERC-7715 ``erc20-token-transfer`` request with
``periodDuration``, which maps to it) granted ``transfer``, ``transferFrom``, ``approve`` and ``increaseAllowance``
against one budget of 5 per day. An approval's amount is counted when it is made, but the allowance stays: a leaked
key raising a thief's allowance by the day's whole budget each day let the thief take three days' worth at one
moment, after the owner had revoked the session, where the consent page says at most twice the amount may go within
moments, across a period's end. A periodic allowance now grants the two transfers only; a lifetime one (no period),
whose budget bounds the sum of every approval, keeps the approvals.
"""

from __future__ import annotations

from keyscope import Policy
from keyscope.erc7715 import plan_from_requests
from keyscope.execution import Call
from keyscope.hexutil import keccak
from support.limit_fixtures import (  # noqa: F401 (fixtures)
    limits_account_fixture,
    session_fixtures_first_fixture,
    token_fixture,
)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)

DAY = 86400
APPROVALS = {keccak(b"approve(address,uint256)")[:4], keccak(b"increaseAllowance(address,uint256)")[:4]}
TRANSFERS = {keccak(b"transfer(address,uint256)")[:4], keccak(b"transferFrom(address,address,uint256)")[:4]}


def test_a_daily_allowance_lets_no_approval_pile_up_across_days(
    sessions, token, account, owner, session_key, accounts, chain
):
    """The dapp's ERC-7715 request for 5 tokens a day: the grant holds transfers only. The leaked key's
    ``increaseAllowance(thief, 5)`` is refused on chain on each of three days, and the thief can take nothing; a
    transfer within the day's budget goes through. Without the defence each raise passed and the thief took 15 at
    once after the session was revoked: fails."""
    now = chain.pending_timestamp
    start = now - 100
    request = {
        "chainId": hex(chain.chain_id),
        "expiry": now + 30 * DAY,
        "signer": {"type": "account", "data": {"address": session_key.address}},
        "permission": {
            "type": "erc20-token-transfer",
            "data": {"address": token.address, "allowance": "0x5", "periodDuration": DAY},
        },
        "policies": [{"type": "valid-after", "data": {"timestamp": start}}],
    }
    session = plan_from_requests([request]).session(max_gas_cost=0, salt=0)
    assert {p.selector for p in session.permissions} == TRANSFERS
    sessions.grant_onchain(account, owner, session)
    thief = accounts[6]
    for day in range(3):
        if day:
            chain.pending_timestamp = start + day * DAY + 10
        increase = Call.of(token.address, 0, token.increaseAllowance.encode_input(thief.address, 5))
        outcome = sessions.outcome(sessions.op(account, session_key, increase, at=start + day * DAY))
        assert "AA24" in outcome or "NoPermission" in outcome, outcome  # no permission of the key's names it
    assert token.allowance(account, thief.address) == 0
    before = token.balanceOf(thief.address)
    send = Call.of(token.address, 0, token.transfer.encode_input(thief.address, 5))
    assert sessions.outcome(sessions.op(account, session_key, send, at=start + 2 * DAY)) == "ok"
    assert token.balanceOf(thief.address) == before + 5


def test_a_lifetime_allowance_keeps_its_approvals_and_a_periodic_one_has_none(token) -> None:
    """Over the session's life the budget bounds the sum of every approval, so ``approve`` and
    ``increaseAllowance`` stay, metered with the transfers; per period they are left out."""
    lifetime = Policy.erc20_allowance(token.address, 5)
    assert {p.selector for p in lifetime} == TRANSFERS | APPROVALS
    assert len(lifetime[0].limits[0].meters) == 4 and lifetime[0].limits[0].period == 0
    daily = Policy.erc20_allowance(token.address, 5, "day")
    assert {p.selector for p in daily} == TRANSFERS
    assert len(daily[0].limits[0].meters) == 2 and daily[0].limits[0].period == DAY
