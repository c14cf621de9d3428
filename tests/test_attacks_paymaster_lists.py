"""Limits over a session's life and the paymaster list, attacked by a leaked session key through the real EntryPoint
v0.7 ``handleOps``: a gas budget met in a batch that also calls another session of the key, one that lists the
operation's paymaster; the account itself or the module listed as a paymaster the cap does not bind (refused), and
an address without code (listed; the EntryPoint charges nothing). Each test asserts what the account pays and what the limits count."""

from __future__ import annotations

from typing import Any

import ape
import pytest

from conftest import KIND
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.grant import refuse_forbidden_targets
from keyscope.policy import Limits, Policy, arg
from keyscope.session import Session
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.limit_fixtures import (  # noqa: F401 (fixtures)
    grant,
    limits_account_fixture,
    session_fixtures_first_fixture,
    token_fixture,
    usage,
)
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)

ETHER = 10**18
GWEI = 10**9
CAP = ETHER // 100  # a session's cap: 0.01 ether
# gas fields whose prefund (every gas limit, the paymaster's two included, times maxFeePerGas) is over CAP
COSTLY = {
    "verification_gas_limit": 500_000,
    "call_gas_limit": 400_000,
    "pre_verification_gas": 60_000,
    "max_fee_per_gas": 20 * GWEI,
    "max_priority_fee_per_gas": GWEI,
    "paymaster_verification_gas_limit": 100_000,
    "paymaster_post_op_gas_limit": 100_000,
}


@pytest.fixture(scope="module")
def token_paymaster(project, deployer, entry_point, token, accounts):
    """An ERC-20 paymaster charging one token unit per wei of gas, in postOp, from the account's approval."""
    paymaster = project.TokenPaymaster.deploy(entry_point, token, ETHER, accounts[9], sender=deployer)
    paymaster.deposit(value=20 * ETHER, sender=deployer)
    return paymaster


def paid_op(
    sessions, account: str, key: LocalSigner, calls: Call | list[Call], paymaster: str
) -> UserOperation:
    """A session operation (USE) naming ``paymaster``, with the COSTLY gas fields."""
    op = sessions.h.op(account, encode_execute(calls), key=KIND.nonce_key(sessions.module.address))
    op = op.replace(paymaster=paymaster, **COSTLY)
    return op.replace(signature=key.sign_hash(sessions.h.hash(op)))


def _let_the_token_paymaster_charge(
    sessions: Any, account: str, owner: Any, token: Any, token_paymaster: Any
) -> None:
    """The owner approves the charging paymaster to take the account's tokens without bound."""
    sessions.h.owner_execute(
        account,
        owner,
        Call.of(token.address, 0, token.approve.encode_input(token_paymaster.address, 2**256 - 1)),
    )


def test_a_gas_budget_is_never_lifted_by_the_paymaster_list_of_another_session_of_the_key(
    sessions, module, target, nft, token, token_paymaster, account, owner, session_key
):
    """One key, two sessions, both with limits: A (dapp A's) lists an ERC-20 paymaster as one the owner lets charge
    for A's operations; B (dapp B's) has no cap but a gas budget and lists no paymaster. A batch of a call under A
    and one under B naming A's paymaster is uncapped (A's call is lifted, B has no cap), so B's gas budget is all
    that bounds what the paymaster takes from the account for B: it must count the operation's prefund, read against
    B's own list. Were the list read from the first session the operation met (A's), B's calls would ride in A's
    batches, uncounted, and the paymaster would take the account's tokens for them past B's budget."""
    other = Call.of(target.address, 0, target.other.encode_input(1))
    mint = Call.of(nft.address, 0, nft.safeMint.encode_input(account))
    prefund = required_prefund(paid_op(sessions, account, session_key, other, token_paymaster.address))
    assert prefund > CAP
    budget = prefund + prefund // 2
    session_a, id_a = grant(
        sessions, account, owner, session_key, [Policy.call(target.address, "other(uint256)")],
        [Limits.operations(100)], max_gas_cost=CAP, paymasters=(token_paymaster.address,),
    )  # fmt: skip
    assert session_a.is_limited(0)  # A's calls enter the count first, with A's list
    _, id_b = grant(
        sessions, account, owner, session_key, [Policy.call(nft.address, "safeMint(address)")],
        [Limits.gas(budget)], max_gas_cost=0, salt=1,
    )  # fmt: skip
    _let_the_token_paymaster_charge(sessions, account, owner, token, token_paymaster)

    # the first batch fits B's budget: B counts its prefund, A its one operation (A's call twice, once)
    assert (
        sessions.outcome(
            paid_op(sessions, account, session_key, [other, mint, other], token_paymaster.address)
        )
        == "ok"
    )
    assert usage(module, account, id_a)[0][4:] == (1, 99)
    assert usage(module, account, id_b)[0][4:] == (prefund, budget - prefund)
    tokens = token.balanceOf(account)
    minted = nft.balanceOf(account)

    # the second does not, whatever calls of A ride along with B's
    for calls, index in (([other, mint], 1), ([mint], 0), ([other, other, mint], 2)):
        result = sessions.outcome(paid_op(sessions, account, session_key, calls, token_paymaster.address))
        expected = (
            f"LimitExceeded(callIndex={index}, limitIndex=0, amount={prefund}, left={budget - prefund})"
        )
        assert expected in result, (calls, result)
    assert usage(module, account, id_b)[0][4:] == (prefund, budget - prefund)
    assert token.balanceOf(account) == tokens and nft.balanceOf(account) == minted

    # A's call alone is what the owner let the paymaster charge for: it lands and counts nothing of B's
    assert sessions.outcome(paid_op(sessions, account, session_key, other, token_paymaster.address)) == "ok"
    assert token.balanceOf(account) < tokens
    assert usage(module, account, id_a)[0][4:] == (2, 98)
    assert usage(module, account, id_b)[0][4:] == (prefund, budget - prefund)


def test_the_account_or_the_module_is_never_listed_as_a_paymaster_and_a_keyless_one_charges_nothing(
    sessions, module, target, entry_point, account, owner, session_key, chain
):
    """A grant made without the SDK lists, as a paymaster the cap does not bind, the account itself or the module (a
    dapp's request naming them, the owner not looking): an account answering the EntryPoint as a paymaster would
    then pay its session's fees uncapped. ``enableSession`` refuses it (``InvalidPaymasters`` at the index), and the
    SDK refuses it before anything is signed. An address without code can be listed (the module cannot tell a
    paymaster deployed later): the module lifts the cap for it, and the EntryPoint, which charges a paymaster's own
    deposit and asks it to validate, refuses the bundle even with a deposit there above the operation's prefund
    (anyone may deposit for any address): nothing runs, nothing is counted, and neither the account's balance nor
    its deposit moves."""
    keyless = LocalSigner.generate().address
    call = Policy.call(target.address, "other(uint256)")
    for index, forbidden in enumerate((account, module.address)):
        listed = (keyless, forbidden) if index else (forbidden,)
        refused = Session(
            session_key=session_key.address,
            permissions=(call,),
            limits=(Limits.gas(CAP),),
            max_gas_cost=CAP,
            paymasters=listed,
        )
        with ape.reverts(module.InvalidPaymasters, count=len(listed), index=index):
            module.enableSession.call(refused.as_abi(), sender=account)
        with pytest.raises(
            BadInputError, match=rf"paymaster {index} of the session is the (account itself|session module)"
        ):
            refuse_forbidden_targets(refused, account, module.address)
    session = Session(
        session_key=session_key.address,
        permissions=(call,),
        limits=(Limits.gas(CAP),),
        max_gas_cost=CAP,
        paymasters=(keyless,),
    )
    session_id = sessions.grant_onchain(account, owner, session)
    other = Call.of(target.address, 0, target.other.encode_input(1))
    prefund = required_prefund(paid_op(sessions, account, session_key, other, keyless))
    assert prefund > CAP
    entry_point.depositTo(keyless, value=2 * prefund, sender=sessions.h.funder)
    web3 = chain.provider.web3
    calls = target.calls()
    op = paid_op(sessions, account, session_key, other, keyless)
    # the module lifts the cap and counts no gas: the listed paymaster is the owner's to trust
    data = module.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op))
    answer = web3.eth.call(
        {"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 5_000_000}
    )
    assert int.from_bytes(bytes(answer), "big") % 2**160 == 0
    balance, deposit = web3.eth.get_balance(account), entry_point.balanceOf(account)
    # the keyless address answers the EntryPoint's call with nothing, which its decoder cannot read
    result = sessions.outcome(op)
    assert "handleOps reverted" in result, result
    assert (web3.eth.get_balance(account), entry_point.balanceOf(account)) == (balance, deposit)
    assert target.calls() == calls
    assert usage(module, account, session_id)[0][4:] == (0, CAP)
    # the same operation naming no paymaster is capped, and the account pays for what it lands within the cap
    unpaid = sessions.h.op(account, encode_execute(other), key=KIND.nonce_key(module.address))
    unpaid = unpaid.replace(**{k: v for k, v in COSTLY.items() if not k.startswith("paymaster")})
    result = sessions.outcome(unpaid.replace(signature=session_key.sign_hash(sessions.h.hash(unpaid))))
    assert "GasCostTooHigh" in result, result


def test_a_listed_paymaster_is_found_after_rules_of_sixteen_words_or_more(
    sessions, module, target, token, token_paymaster, account, owner
):
    """The meter word of a limited permission records where the session's paymaster list starts among the
    permission's words (five bits: the list may start as late as word 29). A permission whose rules take 25 words
    (a ONE_OF of 24 wide values) lists one paymaster: an operation it pays, whose prefund is over both the cap and the
    gas budget, is lifted from both and counts no gas. Were the start read from four bits, the list would be looked
    for among the rule words, the paymaster not found, and its operations counted against (and refused by) the gas
    budget the owner let it bypass."""
    key = LocalSigner.generate()
    wide = [2**255 + n for n in range(24)]  # one word each: 24 values and the rule's own word
    other = Call.of(target.address, 0, target.other.encode_input(wide[7]))
    prefund = required_prefund(paid_op(sessions, account, key, other, token_paymaster.address))
    assert prefund > CAP
    session, session_id = grant(
        sessions, account, owner, key,
        [Policy.call(target.address, "other(uint256)", rules=[arg(0).one_of(*wide)])],
        [Limits.gas(prefund - 1)], max_gas_cost=CAP, paymasters=(token_paymaster.address,),
    )  # fmt: skip
    assert session.is_limited(0)
    _let_the_token_paymaster_charge(sessions, account, owner, token, token_paymaster)
    tokens = token.balanceOf(account)
    assert sessions.outcome(paid_op(sessions, account, key, other, token_paymaster.address)) == "ok"
    assert usage(module, account, session_id)[0][4:] == (0, prefund - 1)
    assert token.balanceOf(account) < tokens  # the listed paymaster charged the account, as the owner allowed


def test_the_last_of_seven_listed_paymasters_lifts_the_cap(
    sessions, module, target, token, token_paymaster, account, owner
):
    """A session may list seven paymasters the cap does not bind; the permission's header keeps their count in three
    bits. With the operation's paymaster listed seventh, an operation whose prefund is over the cap lands; with it
    not listed, the same operation is refused. Were the count read from two bits, the seventh (and every one from
    the fourth on) would go unlisted and its operations be capped where the owner let them go uncapped."""
    key = LocalSigner.generate()
    others = tuple(LocalSigner.generate().address for _ in range(6))
    other = Call.of(target.address, 0, target.other.encode_input(1))
    assert required_prefund(paid_op(sessions, account, key, other, token_paymaster.address)) > CAP
    grant(
        sessions, account, owner, key, [Policy.call(target.address, "other(uint256)")],
        max_gas_cost=CAP, paymasters=(*others, token_paymaster.address),
    )  # fmt: skip
    _let_the_token_paymaster_charge(sessions, account, owner, token, token_paymaster)
    assert sessions.outcome(paid_op(sessions, account, key, other, token_paymaster.address)) == "ok"
    unlisted = LocalSigner.generate()
    grant(
        sessions, account, owner, unlisted, [Policy.call(target.address, "other(uint256)")],
        max_gas_cost=CAP, paymasters=others,
    )  # fmt: skip
    refused = sessions.outcome(paid_op(sessions, account, unlisted, other, token_paymaster.address))
    assert refused != "ok", refused


def test_the_last_of_seven_listed_paymasters_lifts_the_gas_budget(
    sessions, module, target, token, token_paymaster, account, owner
):
    """The gas budget's own reading of the paymaster list: a session lists seven paymasters, the operation's seventh,
    and has a gas budget one wei short of the operation's prefund. The operation lands, lifted from the cap and the
    budget, and the budget is untouched. The limits read the list's length from the permission's header themselves
    (three bits); were it read from two, the fourth to seventh listed paymasters would go unlisted for the budget,
    and their operations be counted against (and refused by) the budget the owner let them bypass."""
    key = LocalSigner.generate()
    others = tuple(LocalSigner.generate().address for _ in range(6))
    other = Call.of(target.address, 0, target.other.encode_input(1))
    prefund = required_prefund(paid_op(sessions, account, key, other, token_paymaster.address))
    assert prefund > CAP
    session, session_id = grant(
        sessions, account, owner, key, [Policy.call(target.address, "other(uint256)")],
        [Limits.gas(prefund - 1)], max_gas_cost=CAP, paymasters=(*others, token_paymaster.address),
    )  # fmt: skip
    assert session.is_limited(0)
    _let_the_token_paymaster_charge(sessions, account, owner, token, token_paymaster)
    assert sessions.outcome(paid_op(sessions, account, key, other, token_paymaster.address)) == "ok"
    assert usage(module, account, session_id)[0][4:] == (0, prefund - 1)
