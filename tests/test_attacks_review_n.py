"""A dapp as the attacker, fourth round: what the consent page alone said, every surface says; and a vault's shares.

Attacks 378 and 379 beyond the page (attack 383): a hybrid ERC-20/ERC-721 token found by ``getApproved(1)`` and a
listed address that passes for the account (same first and last hex digits) were dangers on the consent page only.
An owner granting from a program (``owner.grant``, no page) had no ``TargetWarning`` of either, and the session report
(``owner.sessions()``, ``keyscope sessions``) read the grant as "approve ... amount at most 10**18" and "to must be one
of 0xAcAc..., 0xacAC...", as if both were what they seem.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.report import StoreMarks, report_from_chain, report_from_store
from keyscope.session import Permission
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
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
        Policy.call(token.address, "transfer(address to,uint256 amount)", rules=[arg("to") == owner.account]),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        signed = owner.grant(SessionKey.generate(), grant, valid_for=3600)
    assert report_from_chain(net, signed).dangers == []
