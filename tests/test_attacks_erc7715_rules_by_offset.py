"""Attack 315: an ERC-7715 request naming its function, with a rule by offset where no argument's word starts.

A ``contract-call`` rule names its word by ``arg`` (the function's argument) or by ``offset`` and ``type``, with an
unsigned ``name`` label. The module knows no argument types: it compares the word at the rule's offset. A request
naming ``transfer(address to, uint256 amount)`` with ``{"offset": 64, "type": "uint256", "name": "amount", "op":
"<=", "value": 5}`` reads as "amount at most 5", but byte 64 of ``transfer``'s arguments is past them: the key
appends a zero word, which the token never reads, and moves any amount. A rule straddling two words, or on a dynamic
argument's head word (the offset of its data, which the caller picks), binds no argument as the function reads it
either. The consent page warns of each (attacks 258, 265), but ``plan_from_requests``, which a wallet may use without
the page, built such a session without a word, while it refuses a rule typed otherwise than its argument (attack
258). Now a request naming its function is refused for a rule by offset where no static argument's word starts; one
by selector alone is granted as the module enforces it, and the page warns of it as before.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.erc7715 import plan_from_requests
from keyscope.errors import BadInputError
from keyscope.execution import Call
from keyscope.hexutil import to_address
from keyscope.session import ArgType, Condition, Rule
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.erc7715_requests import contract_call_request
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)

THIEF = to_address("0x" + "7e" * 20)
TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
PAST_THE_ARGUMENTS = {"offset": 64, "type": "uint256", "name": "amount", "op": "<=", "value": 5}
"""A rule labelled as ``transfer``'s amount, at the byte where its arguments end."""


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's token (ape snapshots per fixture scope)."""


def _request(token: str, chain_id: int, rule: dict[str, object], **call: object) -> dict[str, object]:
    """One request for a ``contract-call`` of ``token``, its first argument held to thief, with ``rule``."""
    return contract_call_request(token, chain_id, THIEF, rule, **call)


def test_the_key_moves_any_amount_under_a_rule_past_the_arguments(
    net: Any, sessions: Any, module_account: Any, owner: Any, session_key: Any, usdc: Any, deployer: Any
) -> None:
    """What the module enforces for such a request by selector (what the request naming its function made before
    the fix): the grant is enabled, and the key's transfer of 10**24 base units, followed by a zero word the token
    never reads, passes "amount at most 5". This is why the request naming its function must be refused."""
    request = _request(usdc.address, net.chain_id, PAST_THE_ARGUMENTS, selector="0xa9059cbb")
    planned = plan_from_requests([request]).session(max_gas_cost=10**16, salt=1)
    session = planned.model_copy(update={"session_key": session_key.address})
    sessions.grant_onchain(module_account, owner, session)
    usdc.mint(module_account, 10**24, sender=deployer)
    data = TRANSFER + int(THIEF, 16).to_bytes(32, "big") + (10**24).to_bytes(32, "big")
    assert sessions.outcome(sessions.op(module_account, session_key, Call.of(usdc.address, 0, data))) != "ok"
    padded = data + bytes(32)
    assert (
        sessions.outcome(sessions.op(module_account, session_key, Call.of(usdc.address, 0, padded))) == "ok"
    )
    assert usdc.balanceOf(THIEF) == 10**24


@pytest.mark.parametrize(
    ("function", "offset", "where"),
    [
        ("transfer(address to,uint256 amount)", 64, "past"),
        ("transfer(address to,uint256 amount)", 16, "straddling"),
        ("transfer(address to,uint256 amount)", 33, "straddling"),
    ],
)
def test_a_request_naming_its_function_refuses_a_rule_where_no_argument_s_word_starts(
    function: str, offset: int, where: str
) -> None:
    """Past the arguments, or across two words: the rule binds no argument as the function reads it, so a request
    naming the function is refused, naming the byte and the function (one on a dynamic argument's head word was
    refused already). Without the fix the session was built: fails."""
    rule = {**PAST_THE_ARGUMENTS, "offset": offset}
    request = _request("0x" + "22" * 20, 1, rule, function=function)
    with pytest.raises(BadInputError) as refused:
        plan_from_requests([request])
    message = str(refused.value)
    assert f"rules[1]: byte {offset} of the arguments of {function.split('(')[0]}(" in message, (
        where,
        message,
    )
    assert "no static argument's word starts" in message, message
    assert "give the rule by 'arg'" in message, message


def test_a_rule_at_an_argument_s_word_or_by_selector_alone_is_still_granted() -> None:
    """A rule by offset at an argument's word of the named function is taken as before; a request by selector alone
    (the page warns of a rule where no argument starts, attack 258) is granted as the module enforces it."""
    token = "0x" + "22" * 20
    on_amount = {**PAST_THE_ARGUMENTS, "offset": 32}
    named = _request(token, 1, on_amount, function="transfer(address to,uint256 amount)")
    (permission,) = plan_from_requests([named]).permissions
    assert permission.rules[1] == Rule(
        condition=Condition.LESS_THAN_OR_EQUAL,
        offset=32,
        arg_type=ArgType.UINT256,
        values=(5,),
        name="amount",
    )
    by_selector = _request(token, 1, PAST_THE_ARGUMENTS, selector="0xa9059cbb")
    (permission,) = plan_from_requests([by_selector]).permissions
    assert permission.rules[1].offset == 64
