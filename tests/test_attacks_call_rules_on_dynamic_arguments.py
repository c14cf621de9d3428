"""A call rule on a dynamic argument: the module cannot tell it, so the SDK refuses to build it and the consent page
warns of one a grant request carries.

The module knows a call permission's target and selector, not its argument types: a rule's word at an offset is a
number to it. For a dynamic argument (``bytes``, ``string``, an array) that word is the offset of the argument's
data, which the caller picks, so a rule there binds nothing of the argument.
"""

from __future__ import annotations

import pytest
from eth_utils import function_signature_to_4byte_selector

from keyscope import Policy, SessionKey, arg
from keyscope.consent.describe import Facts, describe_session
from keyscope.errors import BadInputError
from keyscope.hexutil import to_address
from keyscope.session import ArgType, Condition, Permission, Rule, Session
from keyscope.token_facts import ContractFacts

SIGNATURE = "post(bytes payload,uint256 fee)"
TARGET = to_address("0x" + "5e" * 20)
PAYLOAD_HEAD = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=0, arg_type=ArgType.WORD, values=(64,))
"""``payload <= 64`` as a dapp writes it by hand: the word at offset 0 is the offset of the payload's data (64 in
the standard encoding), whatever the payload holds."""


def _facts() -> Facts:
    return Facts(contract=lambda address: ContractFacts(address, True, None), is_module=lambda address: None)


def test_a_rule_on_a_dynamic_argument_is_granted_by_the_module_refused_by_the_sdk_and_warned_of(
    sessions, accounts
) -> None:
    """A grant request (plain data) rules ``payload <= 64`` on ``post(bytes payload, uint256 fee)``: the module,
    which sees only the selector, enables it (it compares the payload's head word, the offset of its data, which
    is 64 in the standard encoding whatever the payload holds). The SDK refuses to build the rule, given by name or
    as a raw Rule at the head word's offset, and the consent page warns that the rule binds nothing of
    ``payload``."""
    with pytest.raises(
        BadInputError, match=r"`payload` is a bytes in post\(bytes,uint256\): a dynamic value"
    ):
        Policy.call(TARGET, SIGNATURE, [arg("payload") <= 64])
    with pytest.raises(
        BadInputError, match=r"`payload` is a bytes in post\(bytes,uint256\): a dynamic value"
    ):
        Policy.call(TARGET, SIGNATURE, [PAYLOAD_HEAD])
    fee = Policy.call(TARGET, SIGNATURE, [arg("fee") <= 100])
    assert fee.rules[0].offset == 32

    hand_made = Permission(
        target=TARGET,
        selector=function_signature_to_4byte_selector("post(bytes,uint256)"),
        value_limit=0,
        rules=(PAYLOAD_HEAD,),
        function="post(bytes,uint256)",
    )
    session = Session(session_key=SessionKey.generate().address, permissions=(hand_made,))
    sessions.module.enableSession.call(session.as_abi(), sender=accounts[7])  # the module cannot tell

    account = to_address("0x" + "ac" * 20)
    words = describe_session(session, account=account, chain_id=sessions.h.chain_id, facts=_facts())
    (warning,) = [w for w in words.warnings if "dynamic argument" in w.text]
    assert warning.level == "danger" and warning.permission == 0
    assert "rule 0 reads the head word of `arg0` (bytes)" in warning.text
    assert "binds nothing of `arg0`" in warning.text
    fee_session = Session(session_key=SessionKey.generate().address, permissions=(fee,))
    fee_words = describe_session(fee_session, account=account, chain_id=sessions.h.chain_id, facts=_facts())
    assert not [w for w in fee_words.warnings if "dynamic argument" in w.text]
