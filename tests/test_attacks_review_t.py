"""The premises of a session's bounds on an ERC-7579 account keyscope has no adapter of its own for, asked where the
owner's grant did not ask them yet (attacks 417 onwards).

``owner.grant`` asks such an account, before the owner signs, whether it hands the EntryPoint the module's validation
data as it is and the module its caller as ``sender`` (attacks 393 to 397). The owner's install of the module did not:
an account taking its validators' refusal for a yes got the module installed, after which anyone's operation naming
it runs any call, no session granted. Through a real anvil and Alto, as the grant's questions are asked.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope import Network, Policy, SessionKey
from keyscope.errors import AccountSetupError, TargetWarning
from keyscope.execution import Call
from keyscope.hexutil import keccak
from keyscope.local import LocalStack
from keyscope.owner import Owner
from keyscope.policy import arg
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.counting_chain import CountingChain
from support.sdk import sdk_owner  # noqa: F401 (fixture)
from support.variant_accounts import entry_point_nonce, stack_fixture  # noqa: F401 (stack_fixture: the stack)
from test_attacks_review_j import foreign_account


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "answered"),
    [
        ("FailureMaskingERC7579Account", "which is no refusal"),
        ("WindowDroppingERC7579Account", "validUntil 0 (no end)"),
    ],
)
def test_install_sessions_refuses_an_account_not_handing_on_its_validators_answer(
    stack: LocalStack, name: str, answered: str
) -> None:
    """Attack 417. ``owner.install_sessions()`` on an account that clears its validators' failure bit
    (``FailureMaskingERC7579Account``: with the module installed, anyone's operation naming it mints, attack 397's
    premise test) or drops their window (``WindowDroppingERC7579Account``, attack 393) is refused before anything
    is signed or sent, the account asked through its owner's validator as a grant before the install is; the
    module stays uninstalled. Fails without the question: the install is sent and the module installed."""
    account, _, _, owner = foreign_account(stack, name)
    lane = owner.kind.nonce_key(None)
    with pytest.raises(AccountSetupError) as refused:
        owner.install_sessions()
    said = str(refused.value)
    assert answered in said and "validation data as it is" in said, said
    assert "Nothing was sent: do not install the session module on this account" in said, said
    assert owner.kind.owner_validator in said, said  # the validator asked in the module's place
    assert refused.value.account == account
    assert entry_point_nonce(stack, account, lane) == 0  # no operation sent
    assert owner.supports_sessions() is False


FACTS = {
    keccak(b"decimals()")[:4]: "decimals()",
    keccak(b"symbol()")[:4]: "symbol()",
    keccak(b"name()")[:4]: "name()",
    keccak(b"supportsInterface(bytes4)")[:4]: "supportsInterface(bytes4)",
    keccak(b"getApproved(uint256)")[:4]: "getApproved(uint256)",
}
"""What a grant reads of a token to describe it: its decimals, names and ERC-165 answer, and whether it answers a
collection's ``getApproved`` too (a hybrid)."""


def test_one_grant_reads_each_token_s_facts_once(
    net: Network, owner: Owner, usdc: Any, project: Any, deployer: Any
) -> None:
    """A grant on a token the account already approved a target of the grant for (``usdc.approve(router)``) warns
    of the standing approval at the token's decimals (attack 357) and asks whether the token's ``approve`` numbers
    may be token ids (attack 378): both read the token's decimals, names and ERC-165 answer, each once per grant."""
    router = project.RecordingTarget.deploy(sender=deployer)
    approve = keccak(b"approve(address,uint256)")[:4] + abi_encode(
        ["address", "uint256"], [router.address, 2**256 - 1]
    )
    owner.execute(Call(usdc.address, 0, approve)).wait()  # the account is created, with a standing approval
    counting = CountingChain(net.chain)
    net.chain = counting
    permissions = [
        Policy.call(router.address, "other(uint256 amount)"),
        Policy.call(
            usdc.address,
            "approve(address spender, uint256 amount)",
            rules=[arg("spender") == router.address, arg("amount") <= 5 * 10**6],
        ),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        owner.grant(SessionKey.generate(), permissions)
    assert any(
        issubclass(w.category, TargetWarning)
        and "already holds" in str(w.message)
        and "USDC" in str(w.message)
        for w in caught
    ), [str(w.message) for w in caught]
    read = Counter(FACTS[data[:4]] for to, data in counting.calls if to == usdc.address and data[:4] in FACTS)
    assert read and set(read.values()) == {1}, read
