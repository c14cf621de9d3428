"""An argument total (an AMOUNT limit) metering the first word of a fixed-size array or a static struct.

A meter adds up the one word at its offset. A static array (``uint256[2] amounts``) or struct sits inline in the
arguments, one word per element or member, so a meter at the argument's start counts its FIRST element only. A grant
request made without the SDK (whose ``arg(...).total`` must name one element, ``arg("amounts", 0)``) carries such a
limit; the consent page named the whole argument, "counted from all of: its argument amounts (uint256[2]) in
payTwo(...)", and the key then moves any amount through the second element, 1 counted a call.
"""

from __future__ import annotations

import pytest
from ape.contracts import ContractContainer
from eth_abi import encode as abi_encode

from keyscope import SessionKey
from keyscope.consent.describe import Facts, describe_session
from keyscope.execution import Call
from keyscope.hexutil import to_address
from keyscope.policy import parse_signature
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.token_facts import ContractFacts
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)
from support.solidity import compile_contract_type

SIGNATURE = "payTwo(address[2] to,uint256[2] amounts)"
SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// A token paying two recipients in one call, compiled with ABI coder v2 (the default): an ordinary target.
contract PairToken {
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function payTwo(address[2] calldata to, uint256[2] calldata amounts) external {
        for (uint256 i = 0; i < 2; ++i) {
            balanceOf[msg.sender] -= amounts[i];
            balanceOf[to[i]] += amounts[i];
        }
    }
}
"""
FACTS = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, module):
    """Session-scoped fixtures before this module's token (ape snapshots per fixture scope)."""


@pytest.fixture(scope="module")
def pair_token(deployer):
    return ContractContainer(compile_contract_type(SOURCE, "PairToken")).deploy(sender=deployer)


def _session(key: str, token: str, signature: str = SIGNATURE, offset: int = 64) -> Session:
    function = parse_signature(signature)
    return Session(
        session_key=key,
        valid_until=2_000_000_000,
        max_gas_cost=10**16,
        permissions=(Permission(target=token, selector=function.selector, function=signature),),
        limits=(
            Limit(
                kind=LimitKind.AMOUNT,
                amount=1000,
                meters=(Meter(permission=0, offset=offset),),
                name="amounts",
            ),
        ),
    )


def _limit_line(session: Session) -> str:
    words = describe_session(session, account=to_address("0x" + "ac" * 20), chain_id=1, facts=FACTS)
    (line,) = [line for line in words.limits if "counted from" in line]
    return line


def test_a_total_at_a_fixed_array_s_start_counts_its_first_element_and_the_page_names_that_element(
    sessions, module_account, owner, session_key, attacker, pair_token, deployer
) -> None:
    """On chain: a total of 1,000 at the start of ``amounts`` lets the key move 10**24 as the second amount in one
    call (1 counted). On the page: the limit is counted from ``amounts[0]``, not from "amounts (uint256[2])"."""
    account = module_account
    pair_token.mint(account, 10**24 + 1, sender=deployer)
    session = _session(session_key.address, pair_token.address)
    sessions.grant_onchain(account, owner, session)
    data = parse_signature(SIGNATURE).selector + abi_encode(
        ["address[2]", "uint256[2]"], [[attacker, attacker], [1, 10**24]]
    )
    assert sessions.outcome(sessions.op(account, session_key, Call.of(pair_token.address, 0, data))) == "ok"
    assert pair_token.balanceOf(attacker) == 10**24 + 1  # "at most 1,000 counted from amounts"

    line = _limit_line(_session(SessionKey.generate().address, to_address("0x" + "5e" * 20)))
    assert "its argument amounts[0] (uint256)" in line, line
    assert "uint256[2])" not in line, line


@pytest.mark.parametrize(
    ("signature", "offset", "named"),
    [
        ("settle((uint256 amount,uint256 fee) order,address to)", 0, "order.amount (uint256)"),
        ("settle((uint256 amount,uint256 fee) order,address to)", 32, "order.fee (uint256)"),
        ("settle(address to,(uint128,uint256)[2] legs)", 96, "legs[1].0 (uint128)"),
        ("settle(address to,(uint128,uint256)[2] legs)", 128, "legs[1].1 (uint256)"),
        ("settle(uint256[3],uint256 fee)", 0, "arg0[0] (uint256)"),
        ("settle(uint256[3],uint256 fee)", 96, "fee (uint256)"),
    ],
)
def test_the_page_names_the_word_a_total_counts_inside_a_static_argument(signature, offset, named) -> None:
    """The page names the element or member whose word the meter counts, as it names a rule's, whether the meter sits
    at the start of a static struct or array (where it named the whole argument) or further in (where it showed a bare
    byte offset)."""
    line = _limit_line(
        _session(SessionKey.generate().address, to_address("0x" + "5e" * 20), signature, offset)
    )
    assert f"its argument {named} in settle(" in line, line
