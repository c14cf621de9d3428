"""A leaked session key, and a bundler respelling what it relays, against ERC-7579 accounts nobody on this project
wrote (attacks 393 onwards).

The premises of a session's bounds on an account keyscope has no adapter of its own for (docs/accounts.md): the
account hands the EntryPoint the module's validation data as it is, and hands the module its caller as ERC-1271's
``sender``. The dapp's SDK asks them of a session's first operation and signature (attacks 352, 353), which a leaked
key does not need; the owner's grant is where keyscope can still refuse such an account, and now does: the account
is asked with ``eth_call`` in which the module's address runs a probe validator (a state override), through a
forwarder, so that the account's caller is neither the call's origin nor the account. Through a real anvil and Alto.
"""

from __future__ import annotations

import warnings

import pytest

from keyscope import Policy as SdkPolicy
from keyscope import SessionKey
from keyscope.accounts import ERC7579AccountKind
from keyscope.errors import AccountPremiseWarning, AccountSetupError
from keyscope.local import LocalStack
from keyscope.policy import arg
from keyscope.signing import LocalSigner
from support.permit_types import LIMIT, PERMIT_SINGLE_TYPES, ROUTER
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    entry_point_nonce,
    stack_fixture,
)
from support.victims import deploy as deploy_victim
from test_attacks_review_j import foreign_account


def _mint(stack: LocalStack) -> SdkPolicy:
    return SdkPolicy.call(
        stack.nft, "safeMint(address to)", rules=[arg("to") == LocalSigner.generate().address]
    )


def _permit2(stack: LocalStack, chain_id: int) -> SdkPolicy:
    permits = deploy_victim(stack, "SignedPermits")
    return SdkPolicy.typed_data(
        {"name": "Permit2", "chainId": chain_id, "verifyingContract": permits},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") <= LIMIT, arg("spender") == ROUTER],
    )


@pytest.mark.e2e
@pytest.mark.parametrize("onchain", [False, True], ids=["offchain", "onchain"])
def test_owner_grant_refuses_an_account_that_drops_the_module_s_window_before_signing(
    stack: LocalStack, onchain: bool
) -> None:
    """Attack 393. The owner's grant on an account that hands the EntryPoint its own success for the module's
    (``WindowDroppingERC7579Account``) was signed, and the session's key, leaked, ran it past its window (attack
    352's premise test). The grant is refused before the owner's key signs, off-chain and on-chain, naming the
    window the account answered; fails without the check: the grant is returned."""
    account, _, _, owner = foreign_account(stack, "WindowDroppingERC7579Account")
    assert type(owner.kind) is ERC7579AccountKind
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    lane = owner.kind.nonce_key(None)
    sent = entry_point_nonce(stack, account, lane)
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600, onchain=onchain)
    said = str(refused.value)
    assert "validation data as it is" in said and "validUntil 0 (no end)" in said, said
    assert "Nothing was signed" in said, said
    assert refused.value.account == account
    assert entry_point_nonce(stack, account, lane) == sent  # no grant operation sent


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["ZeroSenderERC7579Account", "OriginSenderERC7579Account"])
def test_owner_grant_of_signing_permissions_refuses_an_account_not_passing_its_caller_as_sender(
    stack: LocalStack, name: str
) -> None:
    """Attack 394. An account asking its validators with the zero address as ``sender`` (attack 353's), or with the
    transaction's origin (which an ``eth_call`` from an address cannot tell from its caller: attack 353's residual),
    lets its own modules take a session's signature as the owner's. The owner's grant of signing permissions there
    is refused before signing (the probe asks through a forwarder, from another origin); a grant of calls only is
    not concerned and is signed. Fails without the check: the grant is returned."""
    _, _, net, owner = foreign_account(stack, name)
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], typed_data=[_permit2(stack, net.chain_id)])
    said = str(refused.value)
    assert "caller as ERC-1271's sender" in said and "Nothing was signed" in said, said
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccountPremiseWarning)
        grant = owner.grant(SessionKey.generate(), [_mint(stack)])
    assert grant.owner_signature


@pytest.mark.e2e
def test_an_account_keeping_both_premises_is_granted_without_a_word(stack: LocalStack) -> None:
    """The control: OpenZeppelin's ``AccountERC7579`` as it comes hands on the probe's window and its caller, and
    the owner's grant of calls and of a permit signature goes through with no warning about the account."""
    _, _, net, owner = foreign_account(stack, "PlainERC7579Account")
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccountPremiseWarning)
        grant = owner.grant(SessionKey.generate(), [_mint(stack)], typed_data=[_permit2(stack, net.chain_id)])
    assert grant.owner_signature


@pytest.mark.e2e
def test_a_grant_the_account_cannot_be_asked_about_says_so(stack: LocalStack) -> None:
    """Attack 395. Before the module is installed, the account cannot route the probe to it: the grant is signed
    (the session's first operation is still asked, attack 352) with an ``AccountPremiseWarning`` saying what was not
    checked, pointing at the owner's line."""
    _, _, _, owner = foreign_account(stack, "WindowDroppingERC7579Account")
    with pytest.warns(AccountPremiseWarning, match="is not installed on it yet") as said:
        grant = owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600)
    assert grant.owner_signature
    assert said[0].filename == __file__
