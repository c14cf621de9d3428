"""The seventh round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in the Python code between a dapp's request and the owner's signature.

Pinned here on ape's chain: the owner's SDK refuses, before anything is signed, a grant whose call target the
account says is one of its modules (a validator installed after the account was created).

Pinned here, without a chain:

* an ERC-7715 ``call-limit`` on an ``erc20-token-transfer`` request counts the calls of every permission the
  allowance makes (``transfer``, ``transferFrom``, ``approve``, ``increaseAllowance``), not its first only;
* the consent page shows each call's and each plain transfer's value limit in ether at 18 decimals, and a limit of 1
  wei as 1 wei, never as "no ETH may be sent";
* it warns of an argument total whose meter counts a signed number (an ``int256``), whose word is not the amount it
  reads as;
* an ``approve`` whose amount a range rule bounds is said to allow an unlimited allowance when the range's top is
  unlimited, whatever its low end;
* a spender or recipient that a rule only keeps from one address (``!=``) is any other: the page says the approval
  may go to ANY spender and the transfer to ANY address;
* an operator approval held to ``approved == true`` makes an operator (its danger raised); only ``approved == false``
  is a revocation;
* a paymaster listed by a session with a gas budget and no gas cap lifts the budget: the page warns of one that may
  charge the account, as it does with a cap;
* a signing permission in the account's or the session module's own domain is warned of when its domain names the
  verifying contract without a chain id.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import ETHER
from keyscope import Policy, SessionKey, arg, function_call
from keyscope.consent.describe import Facts, GrantDescription, describe_session
from keyscope.consent.tokens import ContractFacts
from keyscope.erc7715 import plan_from_requests
from keyscope.errors import BadInputError
from keyscope.hexutil import to_address
from keyscope.policy import Limits
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.signing import LocalSigner

TOKEN = to_address("0x" + "a0" * 20)
KEY = to_address("0x" + "ab" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)
SHOP = to_address("0x" + "5b" * 20)
FACTS = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)


def _words(*permissions: Permission, **session: Any) -> GrantDescription:
    """The consent page's words for a session of ``permissions`` (targets with code, no token, no module)."""
    fields: dict[str, Any] = {"session_key": KEY, "valid_until": 2_000_000_000, "max_gas_cost": 10**16}
    return describe_session(
        Session(permissions=permissions, **(fields | session)), account=ACCOUNT, chain_id=1, facts=FACTS
    )


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


def test_a_value_limit_is_shown_in_ether_at_18_decimals_and_one_wei_is_not_shown_as_none() -> None:
    words = _words(
        Policy.transfer(SHOP, 10**18),
        Policy.call(TOKEN, "ping()", value_limit=1),
        Policy.call(KEY, "pong()", value_limit=0),
    )
    transfer, one_wei, none = (p.value for p in words.permissions)
    assert transfer == "each transfer may send at most 1 ETH"
    assert one_wei == "each call may send at most 0.000000000000000001 ETH"
    assert none == "no ETH may be sent with these calls"


def test_an_argument_total_on_a_signed_number_is_warned_of() -> None:
    spend = Policy.call(SHOP, "spend(address to,int256 amount)")
    total = Limit(kind=LimitKind.AMOUNT, amount=100, meters=(Meter(permission=0, offset=32),), name="spent")
    dangers = [w.text for w in _words(spend, limits=(total,)).warnings if w.level == "danger"]
    (danger,) = [text for text in dangers if "`arg1` (int256)" in text]
    assert "which is no unsigned number" in danger, dangers


def test_an_approval_bounded_by_a_range_is_judged_by_the_range_s_top() -> None:
    def dangers(low: int, high: int) -> list[str]:
        approve = Policy.call(
            TOKEN, "approve(address,uint256)", rules=[arg(0) == SHOP, arg(1).in_range(low, high)]
        )
        return [w.text for w in _words(approve).warnings if w.level == "danger"]

    unlimited = "approve(address spender, uint256 amount): may approve an UNLIMITED allowance: no rule caps the amount"
    assert unlimited in dangers(0, 2**256 - 1)
    assert unlimited in dangers(0, 2**255)
    assert unlimited not in dangers(0, 2**255 - 1)
    assert dangers(5, 10**6) == []


def test_a_spender_or_recipient_kept_only_from_one_address_is_any_other() -> None:
    approve = Policy.call(TOKEN, "approve(address,uint256)", rules=[arg(0) != SHOP, arg(1) <= 100])
    transfer = Policy.call(TOKEN, "transfer(address,uint256)", rules=[arg(0) != SHOP, arg(1) <= 100])
    warnings = [(w.level, w.text) for w in _words(approve, transfer).warnings]
    any_spender = "approve(address spender, uint256 amount): may approve ANY spender"
    any_recipient = "transfer(address to, uint256 amount): may send to ANY address"
    assert any(level == "danger" and text.startswith(any_spender) for level, text in warnings), warnings
    assert any(level == "caution" and text.startswith(any_recipient) for level, text in warnings), warnings
    pinned = _words(
        Policy.call(TOKEN, "approve(address,uint256)", rules=[arg(0).one_of(SHOP, KEY), arg(1) <= 100])
    )
    # held to listed spenders: no danger; the one caution left is attack 372's, of a target that gives no decimals()
    # and does not say it is an ERC-721 collection (its number may be a token id)
    assert [(w.level, "token id" in w.text) for w in pinned.warnings] == [("caution", True)], pinned.warnings


def test_an_operator_approval_held_to_true_is_warned_of_and_held_to_false_is_a_revocation() -> None:
    def dangers(approved: bool) -> list[str]:
        rules = [arg(0) == SHOP, arg(1) == approved]
        permission = Policy.call(TOKEN, "setApprovalForAll(address,bool)", rules=rules)
        return [w.text for w in _words(permission).warnings if w.level == "danger"]

    assert dangers(True) == [
        "setApprovalForAll(address operator, bool approved): setApprovalForAll: may let the operator its rule names "
        "move EVERY token of this collection the account holds"
    ]
    assert dangers(False) == []


def test_a_paymaster_listed_with_a_gas_budget_and_no_cap_is_warned_of() -> None:
    charging = to_address("0x" + "5e" * 20)
    facts = Facts(
        contract=lambda address: ContractFacts(address, True, None),
        is_module=lambda address: None,
        is_sponsor=lambda paymaster: False,
    )

    def dangers(**fields: Any) -> list[str]:
        session = Session(
            session_key=KEY, permissions=(Policy.call(SHOP, "ping()"),), paymasters=(charging,), **fields
        )
        words = describe_session(session, account=ACCOUNT, chain_id=1, facts=facts)
        return [w.text for w in words.warnings if w.level == "danger" and "listed as a paymaster" in w.text]

    assert len(dangers(max_gas_cost=0, limits=(Limits.gas(10**17),))) == 1
    assert len(dangers(max_gas_cost=10**16)) == 1
    assert dangers(max_gas_cost=0) == []  # the list lifts nothing: the module does not store it


def test_a_signing_permission_in_an_own_domain_without_a_chain_id_is_warned_of() -> None:
    module = to_address("0x" + "11" * 20)
    facts = Facts(
        contract=lambda address: ContractFacts(address, True, None),
        is_module=lambda address: None,
        module=module,
    )
    for verifying, who in ((ACCOUNT, "this account itself"), (module, "the session module")):
        domain = {"name": "Own", "verifyingContract": verifying}
        signing = Policy.typed_data(domain, {"Approval": [{"name": "hash", "type": "bytes32"}]}, "Approval")
        session = Session(
            session_key=KEY, permissions=(Policy.call(SHOP, "ping()"),), typed_data_permissions=(signing,)
        )
        words = describe_session(session, account=ACCOUNT, chain_id=1, facts=facts)
        dangers = [w.text for w in words.warnings if w.level == "danger"]
        assert any(
            text.startswith(f"{verifying} is {who}: the Approval messages in its domain")
            and "(the module refuses this grant)" in text
            for text in dangers
        ), dangers


def test_the_owner_refuses_a_grant_on_a_validator_the_account_installed(
    net, harness, nft, project, deployer
) -> None:
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, ETHER)
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    validator = project.OwnerECDSAValidator.deploy(sender=deployer).address
    owner.execute(
        owner.kind.install_validator_call(owner.account, validator, bytes.fromhex(signer.address[2:]))
    ).wait()
    aimed = [Policy.call(validator, "onInstall(bytes data)")]
    with pytest.raises(
        BadInputError, match=f"a permission targets {validator}, a validator module of the account"
    ):
        owner.prepare_grant(SessionKey.generate(), aimed, valid_for=3600)
    assert owner.prepare_grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], valid_for=3600
    )
