"""A leaked session key against bugs other projects' session keys and permission systems had, transposed to keyscope.

* A spend limit that other selectors of its token go around (a session-key plugin's ERC-20 limit tracked some of the
  token's functions while the allowlist let the key call others): keyscope's module counts exactly the calls a
  limit's meters name, and refuses a second permission on a metered (target, selector) (attack 92), but a grant may
  pair a token allowance with a permission on another function of the same token: ERC-1363's ``transferAndCall``,
  ERC-777's ``send``, ``burn``, any function. The consent page showed the allowance ("At most 5 USDC over the
  session's life") and that permission ("any arguments: no rule limits them") with no word that the allowance does
  not count it (attack 336). The same for ETH: a native allowance metering some of a grant's permissions (a grant built
  without the SDK), and another permission that may carry value.

Read on ape's py-evm chain, as the page reads the chain.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope import Limits, Policy, arg
from keyscope.consent import ConsentServer, GrantDescription
from keyscope.consent.describe import describe_session
from keyscope.erc7715 import plan_from_requests
from keyscope.errors import TargetWarning
from keyscope.hexutil import to_address
from keyscope.keys import SessionKey
from keyscope.owner import Owner
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.sdk import sdk_owner  # noqa: F401 (fixture)

OWNER = to_address("0x" + "ac" * 20)
ROUTER = to_address("0x" + "5e" * 20)
TIP_JAR = to_address("0x" + "71" * 20)

# functions of other standards (or none) that move a token's balance, which an ERC-20 allowance does not count
AROUND = (
    "transferAndCall(address to,uint256 value)",  # ERC-1363
    "transferAndCall(address to,uint256 value,bytes data)",  # ERC-1363, ERC-677
    "send(address recipient,uint256 amount,bytes data)",  # ERC-777
    "burn(uint256 amount)",
)


def _describe(net: Any, session: Session) -> GrantDescription:
    """The consent page's description of ``session`` for a made-up account, read from the chain."""
    facts = ConsentServer(net).facts(OWNER)  # not started: its describer reads the chain
    return describe_session(session, account=OWNER, chain_id=net.chain_id, facts=facts)


def _session(*permissions: Permission) -> Session:
    return Session(
        session_key=LocalSigner.generate().address,
        valid_until=2_000_000_000,
        max_gas_cost=10**16,
        permissions=permissions,
    )


def _uncounted(described: GrantDescription, index: int) -> list[str]:
    """The red warnings on permission ``index`` that say a limit does not count its calls."""
    return [
        w.text
        for w in described.warnings
        if w.level == "danger" and w.permission == index and "does not count" in w.text
    ]


def test_owner_grant_warns_of_a_permission_on_an_allowance_s_token_that_it_does_not_count(
    usdc: Any, owner: Owner
) -> None:
    """Attack 336 in code: an owner granting from a program sees no consent page, so ``owner.grant`` says it too (a
    ``TargetWarning`` naming the permission and the allowance), and says nothing of the allowance's own functions."""
    allowance = Policy.erc20_allowance(usdc.address, 5 * 10**6, symbol="USDC")
    around = Policy.call(usdc.address, "transferAndCall(address to,uint256 value,bytes data)")
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), [allowance, around])
    said = [str(w.message) for w in caught if "does not count" in str(w.message)]
    assert len(said) == 1, said
    # each of keyscope's warnings points at the owner's code that granted (the node's own, if any, are not its)
    ours = {w.filename for w in caught if issubclass(w.category, TargetWarning)}
    assert ours == {__file__}, "each warning points at the owner's code that granted"
    assert said[0].startswith(
        f"granting transferAndCall(address,uint256,bytes) on {usdc.address}: limit 0 "
    ), said
    assert "may move this token through it beyond that amount" in said[0], said
    # the allowance alone: its functions' own warnings (a recipient, a spender no rule holds), none of an asset
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), [allowance])
    assert not [w for w in caught if "does not count" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.parametrize("signature", AROUND)
def test_a_token_allowance_warns_of_a_permission_on_its_token_that_it_does_not_count(
    net: Any, usdc: Any, signature: str
) -> None:
    """Attack 336. A dapp asks for an allowance of 5 USDC and, besides, for another function of the same token that
    moves it. The module counts the allowance's four functions only (the grant says so), so a leaked key would move
    every USDC the account holds through the fifth, while the page's only bound on USDC reads "At most 5 USDC". The
    page now says, in red on that permission, that the allowance does not count its calls; the allowance's own
    functions, and the same function on another contract, get no such warning."""
    allowance = Policy.erc20_allowance(usdc.address, 5 * 10**6, symbol="USDC")
    around = Policy.call(usdc.address, signature)
    described = _describe(net, _session(*allowance, around))
    index = len(allowance)
    assert any(line.startswith("At most 5 USDC ") for line in described.limits), described.limits
    (text,) = _uncounted(described, index)
    assert usdc.address in text and "USDC allowance" in text, text
    for own in range(index):
        assert not _uncounted(described, own), described.warnings
    elsewhere = _describe(net, _session(*allowance, Policy.call(ROUTER, signature)))
    assert not _uncounted(elsewhere, index), elsewhere.warnings


def test_a_daily_allowance_warns_of_an_approval_of_its_token_it_does_not_count(net: Any, usdc: Any) -> None:
    """Attack 336. A periodic allowance counts transfers only (an approval outlives its period, attack 260), so an
    ``approve`` granted next to it, even held to one spender and a small amount, is not counted by it: each approval
    may be as large as its rule lets, as often as the window allows, and none of it is in the daily amount the page
    shows. The page says so on the approval."""
    allowance = Policy.erc20_allowance(usdc.address, 5 * 10**6, "day", symbol="USDC")
    approve = Policy.call(
        usdc.address,
        "approve(address spender,uint256 amount)",
        [arg("spender") == ROUTER, arg("amount") <= 10**6],
    )
    described = _describe(net, _session(*allowance, approve))
    (text,) = _uncounted(described, len(allowance))
    assert "approve(address spender, uint256 amount)" in text, text


def test_a_function_of_the_token_another_of_its_limits_counts_gets_no_such_warning(
    net: Any, usdc: Any
) -> None:
    """Attack 336, the other way: an ``approve`` next to a daily allowance, counted by a lifetime total of its own
    on the same token, is bounded by that total, which the page shows: no word that it goes uncounted."""
    allowance = Policy.erc20_allowance(usdc.address, 5 * 10**6, "day", symbol="USDC")
    approve = Policy.call(
        usdc.address,
        "approve(address spender,uint256 amount)",
        [arg("spender") == ROUTER],
        totals=[arg("amount").total(10**6)],
    )
    described = _describe(net, _session(*allowance, approve))
    assert not _uncounted(described, len(allowance)), described.warnings


def test_a_native_allowance_warns_of_a_permission_carrying_eth_it_does_not_count(net: Any) -> None:
    """Attack 336 for ETH: a grant built without the SDK (a dapp's JSON grant request) meters its native allowance of
    0.1 ETH on one permission, while another may send 1 ETH a call. The page shows "At most 0.1 ETH ... sent by all
    of: pay", and now says in red that the allowance does not count the other's ETH. ``Limits.native``, which counts
    every permission that can carry value, raises nothing."""
    pay = Policy.call(ROUTER, "pay(address to)", value_limit=10**17)
    tip = Policy.call(TIP_JAR, "tip(address to)", value_limit=10**18)
    native = Limit(kind=LimitKind.NATIVE, amount=10**17, meters=(Meter(permission=0),))
    described = _describe(net, _session(pay, tip).model_copy(update={"limits": (native,)}))
    (text,) = _uncounted(described, 1)
    assert "ETH" in text and TIP_JAR in text, text
    assert not _uncounted(described, 0), described.warnings
    everything = _session(pay, tip).model_copy(update={"limits": ()})
    counted = Session(**{**everything.model_dump(), "limits": (Limits.native(10**17),)})
    assert not [w for w in _describe(net, counted).warnings if "does not count" in w.text]


def test_an_erc7715_allowance_warns_of_a_contract_call_on_its_token_that_it_does_not_count(
    net: Any, usdc: Any
) -> None:
    """Attack 336, as a ``wallet_grantPermissions`` request asks it: an ``erc20-token-transfer`` allowance of 5 USDC
    and a ``contract-call`` of the token's ``transferAndCall``. The mapping takes both (it refuses a twin of a counted
    function only, attack 92), and the page describing the plan warns of the uncounted one."""
    base = {
        "chainId": hex(net.chain_id),
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": LocalSigner.generate().address}},
    }
    requests = [
        {
            **base,
            "permission": {
                "type": "erc20-token-transfer",
                "data": {"address": usdc.address, "allowance": hex(5 * 10**6), "ticker": "USDC"},
            },
        },
        {
            **base,
            "permission": {
                "type": "contract-call",
                "data": {"address": usdc.address, "function": AROUND[1]},
            },
        },
    ]
    session = plan_from_requests(requests).session(max_gas_cost=10**16, salt=0)
    described = _describe(net, session)
    index = next(
        i
        for i, p in enumerate(session.permissions)
        if p.selector == Policy.call(usdc.address, AROUND[1]).selector
    )
    assert _uncounted(described, index), described.warnings
