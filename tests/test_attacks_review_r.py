"""A dapp as the attacker, fifth round: a vault's shares priced on every surface, and addresses that pass for more
than the account.

Attack 384 beyond the page (attack 386): a bound in an ERC-4626 vault's shares was shown with what the shares cost
or return now on the consent page only. An owner granting from a program (``owner.grant``, no page) read nothing of
it, and the session report judged on chain read "mint ... where shares must be at most 1000", a number of a unit the
owner cannot price, whose worth the dapp sets by what it gives its vault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import SessionKey, TargetWarning
from keyscope.consent import GrantDescription
from keyscope.report import StoreMarks, report_from_chain, report_from_store
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from test_attacks_review_n import _priced_vault, _share_requests


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


def _page_worth(words: Callable[..., GrantDescription], vault: str, account: str) -> list[str]:
    """What the consent page shows beside each share bound of attack 384's requests (one line each)."""
    described = words(*_share_requests(vault, account), account=account)
    return [
        next(rule for rule in p.rules if "shares" in rule and " now" in rule) for p in described.permissions
    ]


def test_owner_grant_says_what_a_bound_in_shares_costs_and_returns_now(
    net: Any, project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 386 in code: ``owner.grant`` of attack 384's requests warns (a ``TargetWarning`` each, pointing at the
    owner's code) with the page's own words: what 1,000 shares cost and return now, and that the rate can change."""
    owner = net.owner(LocalSigner.generate())
    _, vault = _priced_vault(project, deployer, 10**21)
    with pytest.warns(TargetWarning) as caught:
        owner.grant(
            SessionKey.generate(), list(_share_requests(vault.address, owner.account)), valid_for=3600
        )
    said = [(str(w.message), w.filename) for w in caught if issubclass(w.category, TargetWarning)]
    for shown in _page_worth(words, vault.address, owner.account):
        assert "the rate can change" in shown, shown
        matching = [(text, where) for text, where in said if shown in text]
        assert len(matching) == 1, (shown, said)
        assert matching[0][1] == __file__


def test_owner_grant_cautions_of_a_vault_that_does_not_answer(net: Any, project: Any, deployer: Any) -> None:
    """A "vault" that gives no ``previewMint``/``previewRedeem`` (a plain token): ``owner.grant`` says that what the
    shares cost or return is not known, as the page's caution does."""
    owner = net.owner(LocalSigner.generate())
    token = project.TestToken.deploy(sender=deployer)
    with pytest.warns(TargetWarning) as caught:
        owner.grant(
            SessionKey.generate(), list(_share_requests(token.address, owner.account)), valid_for=3600
        )
    said = [str(w.message) for w in caught if issubclass(w.category, TargetWarning)]
    for question in ("previewMint", "previewRedeem"):
        assert any(f"gives no {question}(uint256)" in text and "not known" in text for text in said), said


def test_the_session_report_judged_on_chain_prices_the_shares(
    net: Any, project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 386 in the session report: judged on chain, each share-bounded permission reads with the page's line
    of what the shares cost or return now (``permissions``, its ``allows`` lines, ``to_dict``); from a store, which
    asks no chain, with no worth claimed."""
    owner = net.owner(LocalSigner.generate())
    _, vault = _priced_vault(project, deployer, 10**21)
    with pytest.warns(TargetWarning):
        signed = owner.grant(
            SessionKey.generate(), list(_share_requests(vault.address, owner.account)), valid_for=3600
        )
    report = report_from_chain(net, signed)
    for text, shown in zip(report.permissions, _page_worth(words, vault.address, owner.account), strict=True):
        assert shown in text, (shown, text)
    assert report.to_dict()["permissions"] == report.permissions
    assert [line for line in report.lines() if line.startswith("  allows  ")] == [
        f"  allows  {text}" for text in report.permissions
    ]
    stored = report_from_store(signed, StoreMarks(revoked=False, enabled=True), now=report.now)
    assert not [text for text in stored.permissions if " now" in text], stored.permissions
