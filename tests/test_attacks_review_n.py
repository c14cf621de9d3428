"""A dapp as the attacker, fourth round: what the consent page alone said, every surface says; and a vault's shares.

Attacks 378 and 379 beyond the page (attack 383): a hybrid ERC-20/ERC-721 token found by ``getApproved(1)`` and a
listed address that passes for the account (same first and last hex digits) were dangers on the consent page only.
An owner granting from a program (``owner.grant``, no page) had no ``TargetWarning`` of either, and the session report
(``owner.sessions()``, ``keyscope sessions``) read the grant as "approve ... amount at most 10**18" and "to must be one
of 0xAcAc..., 0xacAC...", as if both were what they seem.

Attack 384, an ERC-4626 vault's shares read as if they were worth nothing in particular: a dapp's request for its
vault's ``mint(shares <= 1,000, receiver == this account)`` (or ``redeem`` of at most 1,000 shares) read "shares
(uint256) must be at most 1,000", a number of a unit the owner cannot price. What those shares cost or return is the
vault's rate, which the dapp sets by what it gives the vault: the key's ``mint(1000)`` at a rate the dapp raised a
moment before takes the account's 1,000 whole tokens. The page now asks the vault (``previewMint``/``previewRedeem``
of the bound) and shows the assets beside the bound, saying that the rate can change; a vault that does not answer
gets a caution.

Attack 385, Permit2's ``transferFrom`` with its arguments renamed: attacks 365, 374 and 380's renaming on Permit2's
AllowanceTransfer, whose ``approve`` the page knew (an allowance over every token the account approved Permit2 for)
and whose ``transferFrom(address from, address to, uint160 amount, address token)`` it did not. A dapp's request for
``transferFrom(address to, address from, uint160 amount, address token)`` (the standard's ``from`` and ``to``
swapped) with ``to == this account`` read "to (address) must be ... (this account)", no caution, while the rule holds
``from``: the key moves the account's tokens, under the Permit2 allowance the account gave itself (``approve`` with
``spender == this account`` reads harmless), to the dapp. The batch form, whose recipients no rule can reach, read
"any arguments" with no caution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.consent import GrantDescription
from keyscope.consent.tokens import format_amount
from keyscope.execution import Call
from keyscope.hexutil import to_address
from keyscope.report import StoreMarks, report_from_chain, report_from_store
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
from test_attacks import words as abi_words
from test_attacks_review_m import _hybrid_approval, _lookalike, _lookalike_transfer


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


def _hybrid_and_lookalike(project: Any, deployer: Any, account: str) -> tuple[Any, tuple[Permission, ...]]:
    """Attacks 378 and 379's requests in one grant: an approval of the dapp for at most one whole token on a hybrid,
    and a transfer whose recipient must be one of the account and its look-alike."""
    hybrid = project.HybridToken.deploy(sender=deployer)
    hybrid.mint(deployer, 10, sender=deployer)
    token = project.TestToken.deploy(sender=deployer)
    return hybrid, (
        _hybrid_approval(hybrid.address, "0x" + "da" * 20),
        _lookalike_transfer(token.address, account),
    )


def test_owner_grant_warns_of_a_hybrid_token_and_of_an_address_that_passes_for_the_account(
    net: Any, project: Any, deployer: Any
) -> None:
    """Attack 383 in code: an owner granting from a program sees no consent page, so ``owner.grant`` says what the
    page says in red (a ``TargetWarning`` each, pointing at the owner's code): the hybrid's numbers may be token ids,
    and the listed look-alike is not the account."""
    owner = net.owner(LocalSigner.generate())
    hybrid, grant = _hybrid_and_lookalike(project, deployer, owner.account)
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), list(grant), valid_for=3600)
    said = [str(w.message) for w in caught if issubclass(w.category, TargetWarning)]
    assert any(
        f"{hybrid.address} also answers a collection's getApproved" in text and "token id" in text
        for text in said
    ), said
    lookalike = _lookalike(owner.account)
    assert any(f"{lookalike} passes for this account ({owner.account})" in text for text in said), said
    assert {w.filename for w in caught if issubclass(w.category, TargetWarning)} == {__file__}


def test_the_session_report_shows_the_hybrid_and_the_lookalike_as_dangers(
    net: Any, project: Any, deployer: Any
) -> None:
    """Attack 383 in the session report: judged on chain it gives both dangers (``dangers``, its ``danger`` lines,
    ``to_dict``); from a store alone, which asks no chain, the look-alike (read from the grant itself)."""
    owner = net.owner(LocalSigner.generate())
    hybrid, grant = _hybrid_and_lookalike(project, deployer, owner.account)
    with pytest.warns(TargetWarning):
        signed = owner.grant(SessionKey.generate(), list(grant), valid_for=3600)
    lookalike = _lookalike(owner.account)
    report = report_from_chain(net, signed)
    assert any("getApproved" in text and hybrid.address in text for text in report.dangers), report.dangers
    assert any(f"{lookalike} passes for this account" in text for text in report.dangers), report.dangers
    assert [line for line in report.lines() if line.startswith("  danger  ")] == [
        f"  danger  {text}" for text in report.dangers
    ]
    assert report.to_dict()["dangers"] == report.dangers
    stored = report_from_store(signed, StoreMarks(revoked=False, enabled=True), now=report.now)
    assert [text for text in stored.dangers if "passes for" in text] == [
        text for text in report.dangers if "passes for" in text
    ], stored.dangers


def test_a_plain_grant_raises_neither_danger(net: Any, project: Any, deployer: Any) -> None:
    """An approval on a plain ERC-20 token and a transfer to the account itself: no warning of either kind, and a
    report with no dangers."""
    import warnings

    owner = net.owner(LocalSigner.generate())
    token = project.TestToken.deploy(sender=deployer)
    grant = [
        _hybrid_approval(token.address, "0x" + "da" * 20),
        Policy.call(
            token.address,
            "transfer(address to,uint256 amount)",
            rules=[arg("to") == owner.account, arg("amount") <= 10**18],
        ),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        signed = owner.grant(SessionKey.generate(), grant, valid_for=3600)
    assert report_from_chain(net, signed).dangers == []


MINT = "mint(uint256 shares,address receiver)"
REDEEM = "redeem(uint256 shares,address receiver,address owner)"


def _priced_vault(project: Any, deployer: Any, donated: int) -> tuple[Any, Any]:
    """An ERC-4626 vault (OpenZeppelin's) over a token with 18 decimals, holding 1,000 base units of a depositor's
    for 1,000 shares, and ``donated`` more given to it (which raises what each share is worth)."""
    token = project.TestToken.deploy(sender=deployer)
    vault = project.TestVault.deploy(token.address, sender=deployer)
    token.mint(deployer, 1000 + donated, sender=deployer)
    token.approve(vault.address, 1000, sender=deployer)
    vault.deposit(1000, deployer, sender=deployer)
    if donated:
        token.transfer(vault.address, donated, sender=deployer)
    return token, vault


def _share_requests(vault: str, account: str) -> tuple[Permission, Permission]:
    """The dapp's request on its vault: mint or redeem at most 1,000 shares, to the account."""
    return (
        Policy.call(vault, MINT, rules=[arg("shares") <= 1000, arg("receiver") == account]),
        Policy.call(
            vault, REDEEM, rules=[arg("shares") <= 1000, arg("receiver") == account, arg("owner") == account]
        ),
    )


def test_a_bound_in_shares_is_shown_with_what_the_shares_cost_and_return_now(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 384, what the owner reads: beside "shares at most 1,000", the assets 1,000 shares cost
    (``previewMint``) or return (``previewRedeem``) now, in the asset's units, and that the rate can change."""
    _, vault = _priced_vault(project, deployer, 10**21)
    account = "0x" + "ac" * 20
    described = words(*_share_requests(vault.address, account), account=account)
    for permission, preview, does in (
        (described.permissions[0], vault.previewMint(1000), "cost"),
        (described.permissions[1], vault.previewRedeem(1000), "return"),
    ):
        worth = [rule for rule in permission.rules if "now" in rule and "shares" in rule]
        assert len(worth) == 1, permission.rules
        assert f"1,000 shares {does} {format_amount(preview, 18, 'TUSD')}" in worth[0], worth
        assert "the rate can change" in worth[0], worth
    assert vault.previewMint(1000) > 10**20  # the bound's thousand shares are a hundred whole tokens and more


def test_a_vault_that_does_not_answer_is_cautioned(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """A "vault" that gives no ``previewMint``/``previewRedeem`` (here a plain token): a caution that what the shares
    cost or return is not known, and no line claiming a worth."""
    token = project.TestToken.deploy(sender=deployer)
    account = "0x" + "ac" * 20
    described = words(*_share_requests(token.address, account), account=account)
    for index, preview in ((0, "previewMint"), (1, "previewRedeem")):
        cautions = [w.text for w in described.warnings if w.permission == index and preview in w.text]
        assert len(cautions) == 1 and "not known" in cautions[0], described.warnings
        assert not [rule for rule in described.permissions[index].rules if " now" in rule]


def test_the_chain_lets_the_key_pay_all_the_account_s_tokens_for_a_thousand_shares(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "mint at most 1,000 shares, to this account" lets the dapp do: it gives its
    vault 1,000 whole tokens after the grant (a share was one base unit of the token when the owner read it), and its
    key's ``mint(1000)`` takes the 1,000 whole tokens the account approved the vault for."""
    token, vault = _priced_vault(project, deployer, 0)
    token.mint(module_account, 10**21, sender=deployer)
    approve = Policy.call(
        token.address,
        "approve(address spender,uint256 amount)",
        rules=[arg("spender") == vault.address, arg("amount") <= 10**21],
    )
    mint = _share_requests(vault.address, module_account)[0]
    session = Session(session_key=session_key.address, permissions=(approve, mint))
    sessions.grant_onchain(module_account, owner, session)
    assert vault.previewMint(1000) == 1000
    token.mint(deployer, 10**21, sender=deployer)
    token.transfer(vault.address, 10**21, sender=deployer)  # the dapp raises the rate
    calls = [
        Call.of(token.address, 0, approve.selector + abi_words(int(vault.address, 16), 10**21)),
        Call.of(vault.address, 0, mint.selector + abi_words(1000, int(module_account, 16))),
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert vault.balanceOf(module_account) == 1000
    assert token.balanceOf(module_account) < 10**18  # 999 whole tokens and more paid for 1,000 shares


SWAPPED_PERMIT2 = "transferFrom(address to,address from,uint160 amount,address token)"
"""Permit2's ``transferFrom(from, to, amount, token)`` as the dapp's request labels it: ``from`` and ``to`` swapped."""
PERMIT2_BATCH = "transferFrom((address from,address to,uint160 amount,address token)[] transferDetails)"


def _swapped_permit2(permit2: str, account: str) -> Permission:
    """Attack 385's permission: "to must be this account" on the word Permit2 reads as ``from``."""
    built = Policy.call(permit2, SWAPPED_PERMIT2, rules=[arg("to") == account])
    return built.model_copy(update={"function": SWAPPED_PERMIT2})


def test_a_permit2_transfer_with_its_arguments_renamed_is_shown_with_permit2_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 385, what the owner reads: Permit2's ``transferFrom`` known by selector, with its own names (the rule
    holds ``from``) and a caution that the tokens may go to ANY address; its batch form carries the same caution."""
    account = to_address("0x" + "ac" * 20)
    permit2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
    described = words(
        _swapped_permit2(permit2, account), Policy.call(permit2, PERMIT2_BATCH), account=account
    )
    single = described.permissions[0]
    assert single.function == "transferFrom(address from, address to, uint160 amount, address token)", single
    assert any(rule.startswith("from (address) must be") for rule in single.rules), single.rules
    for index in (0, 1):
        cautions = [w.text for w in described.warnings if w.permission == index]
        assert any("may send to ANY address" in text for text in cautions), (index, described.warnings)


def test_the_chain_lets_the_key_send_from_the_account_under_the_renamed_rule(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "to must be this account" lets the dapp's key do: call ``transferFrom`` with
    ``from`` the account, ``to`` the dapp and the largest ``uint160`` amount; the module accepts it (the rule holds
    the word Permit2 reads as ``from``), and Permit2 would move the account's tokens to the dapp."""
    target = project.EffectRecorder.deploy(sender=deployer)
    permission = _swapped_permit2(target.address, module_account)
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    token, dapp = int("70" * 20, 16), int(accounts[8].address, 16)
    data = permission.selector + abi_words(int(module_account, 16), dapp, 2**160 - 1, token)
    assert (
        sessions.outcome(sessions.op(module_account, session_key, [Call.of(target.address, 0, data)])) == "ok"
    )
