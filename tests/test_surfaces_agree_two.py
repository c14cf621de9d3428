"""What the owner is shown of a grant, the same on every surface, round two: the consent page, ``owner.grant``'s
warnings and the session report.

Attack 431, a known function's warnings on the page only: the page says of a function known by selector
(``approve``, ``transfer``, ``setApprovalForAll``, a vault's ``deposit``) that it may approve ANY spender, send to ANY
address, or take an amount no rule caps; an owner granting from a program (``owner.grant``, no page) was told
nothing of it.

Attack 432, decided: calls in a fixed-length array of words (``bytes32[8]``) are no caution on any surface, as
calls in a dynamic one (``bytes32[]``, attack 408) are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.consent import GrantDescription
from keyscope.hexutil import to_address
from keyscope.report import StoreMarks, report_from_store
from keyscope.session import Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import usdc_fixture, words_fixture  # noqa: F401 (fixtures)
from support.session_fixtures import stored_grant


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


ROUTER = to_address("0x" + "7e" * 20)
HOLD_IT = (
    "if that is not what you mean, hold it with a rule (arg(...) == a value you know, arg(...) <= a bound), "
    "or leave this function out of the grant"
)
"""What ``owner.grant`` says to do about a known function's warning."""


REVOKES = arg("approved") == False  # noqa: E712 (a rule, not a comparison)
"""A rule holding ``setApprovalForAll``'s flag to false: a revocation only."""


def _said(caught: Any) -> list[str]:
    """The ``TargetWarning`` texts ``caught``, but that a target has no code (said of the made-up router)."""
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, TargetWarning) and "has no code on this chain" not in str(w.message)
    ]


def test_owner_grant_warns_of_a_known_function_s_dangers_and_cautions_in_the_page_s_words(
    net: Any, words: Callable[..., GrantDescription], usdc: Any
) -> None:
    """Attack 431: ``owner.grant`` (here ``prepare_grant``, which signs and sends nothing) warns of each danger and
    caution the page shows for a function known by selector, in the page's words, pointing at the owner's line: an
    approval of ANY spender and of an UNLIMITED amount, a transfer to ANY address of an amount no rule caps (on a
    token: it answers decimals()), ANY operator over a collection. The same functions held by rules raise none."""
    owner = net.owner(LocalSigner.generate())
    loose = [
        Policy.call(usdc.address, "approve(address spender,uint256 amount)"),
        Policy.call(usdc.address, "transfer(address to,uint256 amount)"),
        Policy.call(ROUTER, "setApprovalForAll(address operator,bool approved)"),
    ]
    held = [
        Policy.call(
            usdc.address,
            "approve(address spender,uint256 amount)",
            rules=[arg("spender") == ROUTER, arg("amount") <= 1_000],
        ),
        Policy.call(
            usdc.address,
            "transfer(address to,uint256 amount)",
            rules=[arg("to") == owner.account, arg("amount") <= 5],
        ),
        Policy.call(ROUTER, "setApprovalForAll(address operator,bool approved)", rules=[REVOKES]),
    ]
    with pytest.warns(TargetWarning) as caught:
        owner.prepare_grant(SessionKey.generate(), loose, valid_for=3600)
    said = _said(caught)
    page = words(*loose, account=owner.account).warnings
    expected = []
    for index, permission in enumerate(loose):
        shown = [w for w in page if w.permission == index and w.level in ("danger", "caution")]
        texts = [w.text.split(": ", 1)[1] for w in shown if "no code" not in w.text]
        assert texts, page
        expected += [f"granting {permission.label}: {text}; {HOLD_IT}" for text in texts]
    assert sorted(said) == sorted(expected), (said, expected)
    assert [w for w in page if w.level == "caution" and "caps the amount of one call" in w.text], page
    assert {w.filename for w in caught if issubclass(w.category, TargetWarning)} == {__file__}

    with pytest.warns(TargetWarning) as caught:  # the router has no code: that, and nothing else
        owner.prepare_grant(SessionKey.generate(), held, valid_for=3600)
    assert _said(caught) == [], _said(caught)


ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
FIXED_WORDS = (
    "add_liquidity(uint256[2] amounts,uint256 min_mint_amount)",
    "verifyProof(uint256 root,uint256 nullifierHash,uint256[8] proof)",
    "relay(address to,bytes32[8] words)",
)
"""Functions known by no table with a fixed-length array of words: a pool's amounts (Curve's), a zero-knowledge
proof (World ID's, Semaphore's), and a relay whose eight words may be a call's bytes."""


def test_a_fixed_array_of_words_is_no_caution_of_calls_on_any_surface_by_choice(
    net: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 432, decided: a fixed-length array of words (``uint256[2]``, ``bytes32[8]``) of a function known by no
    table carries no caution that its words may be run as calls, on the page, in ``owner.grant``'s warnings or in
    the session report, while the same words in a dynamic array (``bytes32[]``) carry it on all three (attacks 408
    and 420). A fixed array is so many words at fixed places, as that many ``uint256`` arguments are: a rule holds
    each of them (``arg("words", 7)``, shown as ``arg1[7]``), which no rule can do for a dynamic array's words; and
    the functions that take one are most often a pool's amounts or a proof, which a caution would cry wolf over."""
    owner = net.owner(LocalSigner.generate())
    fixed = [Policy.call(ROUTER, signature) for signature in FIXED_WORDS]
    dynamic = Policy.call(ROUTER, "relay(address to,bytes32[] words)")
    grant = [*fixed, dynamic]
    with pytest.warns(TargetWarning) as caught:
        owner.prepare_grant(SessionKey.generate(), grant, valid_for=3600)
    said = _said(caught)
    assert [text for text in said if "as calls" in text] == [
        text for text in said if text.startswith(f"granting {dynamic.label}: ")
    ], said
    assert len(said) == 1, said
    page = words(*grant, account=owner.account).warnings
    assert [w.permission for w in page if "as calls" in w.text] == [len(fixed)], page
    session = Session(session_key=KEY, valid_until=2_000_000_000, permissions=tuple(grant))
    report = report_from_store(
        stored_grant(session, ACCOUNT, epoch=0), StoreMarks(revoked=False, enabled=True), now=1
    )
    assert len(report.dangers) == 1 and report.dangers[0].startswith("relay on "), report.dangers
    assert "bytes32[]" in report.dangers[0], report.dangers

    held = Policy.call(ROUTER, "relay(address to,bytes32[8] words)", rules=[arg("words", 7) == bytes(32)])
    assert held.rules[0].offset == 32 + 7 * 32, held.rules
    (shown,) = words(held, account=ACCOUNT).permissions
    assert shown.rules == ("arg1[7] (bytes32) must be 0x" + "00" * 32,), shown.rules
