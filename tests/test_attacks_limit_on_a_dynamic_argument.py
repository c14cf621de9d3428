"""An argument total (an AMOUNT limit) metering a dynamic argument's head word: attack 255 for limits.

The module knows a permission's target and selector, not its argument types: a meter adds up the word at its
offset. For a dynamic argument (``uint256[] amounts``, ``bytes``) that word is the offset of the argument's data
(64 in the standard encoding of ``batchTransfer(address[] to, uint256[] amounts)``), whatever the amounts are. A
grant request made without the SDK (whose ``arg(...).total`` refuses dynamic arguments) carries such a limit; the
consent page described it as "At most 1,000 base units, counted from all of: its argument amounts (uint256[]) in
batchTransfer(...)", with no danger, and the key then moves any amount, 64 counted a call.
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

SIGNATURE = "batchTransfer(address[] to,uint256[] amounts)"
SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// A token with a batch transfer, compiled with ABI coder v2 (the default): an ordinary target.
contract BatchToken {
    mapping(address => uint256) public balanceOf;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function batchTransfer(address[] calldata to, uint256[] calldata amounts) external {
        require(to.length == amounts.length, "lengths");
        for (uint256 i = 0; i < to.length; ++i) {
            balanceOf[msg.sender] -= amounts[i];
            balanceOf[to[i]] += amounts[i];
        }
    }
}
"""


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, module):
    """Session-scoped fixtures before this module's token (ape snapshots per fixture scope)."""


@pytest.fixture(scope="module")
def batch_token(deployer):
    return ContractContainer(compile_contract_type(SOURCE, "BatchToken")).deploy(sender=deployer)


def _session(key: str, token: str) -> Session:
    function = parse_signature(SIGNATURE)
    return Session(
        session_key=key,
        valid_until=2_000_000_000,
        max_gas_cost=10**16,
        permissions=(Permission(target=token, selector=function.selector, function=function.signature),),
        limits=(
            Limit(
                kind=LimitKind.AMOUNT, amount=1000, meters=(Meter(permission=0, offset=32),), name="amounts"
            ),
        ),
    )


def test_a_total_on_a_dynamic_argument_counts_its_offset_and_the_page_warns_of_it(
    sessions, module_account, owner, session_key, attacker, batch_token, deployer
) -> None:
    """On chain: a total of 1,000 "on amounts" lets the key move 10**24 in one call (64 counted). On the page: a
    danger naming the dynamic argument, as for a rule on one (attack 255)."""
    account = module_account
    batch_token.mint(account, 10**24, sender=deployer)
    session = _session(session_key.address, batch_token.address)
    sessions.grant_onchain(account, owner, session)
    data = parse_signature(SIGNATURE).selector + abi_encode(
        ["address[]", "uint256[]"], [[attacker], [10**24]]
    )
    assert sessions.outcome(sessions.op(account, session_key, Call.of(batch_token.address, 0, data))) == "ok"
    assert batch_token.balanceOf(attacker) == 10**24  # "at most 1,000 counted from amounts"

    facts = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)
    words = describe_session(
        _session(SessionKey.generate().address, to_address("0x" + "5e" * 20)),
        account=to_address("0x" + "ac" * 20),
        chain_id=sessions.h.chain_id,
        facts=facts,
    )
    dangers = [w.text for w in words.warnings if w.level == "danger"]
    assert any("amounts" in text and "dynamic" in text for text in dangers), (dangers, words.limits)


def test_the_danger_of_such_a_total_shows_its_name_as_the_dapp_s_unsigned_label() -> None:
    """The danger named the limit by its ``name``, the dapp's unsigned text of any length, as if it were the page's
    own words: a name closing the parenthesis and going on ("amounts) is bounded by the token itself, so this
    warning does not apply (") read as the page saying so, in the very warning it dismissed, and a name of
    thousands of characters buried what the warning said. The dashboard names a limit as the dapp's unsigned
    label, quoted and cut (attack 139); the page's danger must too."""
    dismissal = "amounts) is bounded by the token itself, so this warning does not apply to it (" + "." * 5000
    session = _session(SessionKey.generate().address, to_address("0x" + "5e" * 20))
    limit = session.limits[0].model_copy(update={"name": dismissal})
    session = session.model_copy(update={"limits": (limit,)})
    facts = Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)
    words = describe_session(session, account=to_address("0x" + "ac" * 20), chain_id=1, facts=facts)
    (danger,) = [w.text for w in words.warnings if "dynamic argument" in w.text]
    assert "limit 0 ('amounts) is bounded by the token itself" in danger, danger
    assert "the dapp's unsigned label)" in danger
    assert "limit 0 (amounts) is bounded" not in danger
    assert len(danger) < 1000, len(danger)
