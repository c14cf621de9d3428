"""What the session report (``owner.sessions()``, ``session.status()``, ``keyscope sessions``) says of a function known
by selector, in the words the consent page and ``owner.grant`` use.

Attack 438, a known function's dangers missing from the report: attacks 431 and 433 made the page and ``owner.grant``
say, from one helper (:func:`keyscope.known_functions.function_warnings`), that ``approve`` may approve ANY spender
or an UNLIMITED allowance (or an amount a limit caps), that ``transfer`` may send to ANY address, that
``setApprovalForAll`` may let ANY operator move every token; the report, where the owner reviews the sessions he
granted to choose which to revoke, listed a dispatch's danger only (attack 412), so a grant of ``approve`` with no
rule read there as a function like any other.

The report may be made from a store, without asking any chain whether a target is an ERC-20 token or an ERC-721
collection, whose ``approve(address,uint256)`` and ``transferFrom(address,address,uint256)`` share the selectors and
mean other things (an allowance's amount, a token id). It then says what each reading allows, each saying which
reading it is of, never the one reading that shows less; made on chain, it reads the target as ``owner.grant`` does.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.consent.describe import Facts, describe_session
from keyscope.consent.tokens import ContractFacts, TokenFacts
from keyscope.hexutil import to_address
from keyscope.limits import limit_text
from keyscope.report import SessionReport, StoreMarks, report_from_chain, report_from_store
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.session_fixtures import stored_grant

TOKEN = to_address("0x" + "70" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
SPENDER = to_address("0x" + "7e" * 20)
APPROVE = "approve(address spender,uint256 amount)"
TRANSFER_FROM = "transferFrom(address from,address to,uint256 amount)"
NOT_721 = "if the target is not an ERC-721 collection: "
IS_721 = "if the target is an ERC-721 collection: "
ANY_SPENDER = (
    "may approve ANY spender: no rule holds the spender to one you know, so a leaked session key can let anyone "
    "take this token from the account"
)
UNLIMITED = "may approve an UNLIMITED allowance: no rule caps the amount"
TOKEN_IDS = (
    "this ERC-721 collection takes a token id here, not an amount: each call {does} one token, any the rules "
    "allow, so every token of the account whose id is in the rule's range (any id, without a rule) may go, as many "
    "calls as the session's window allows"
)


def _session(*permissions: Permission, limits: tuple[Limit, ...] = ()) -> Session:
    return Session(session_key=KEY, valid_until=2_000_000_000, permissions=permissions, limits=limits)


def _report(session: Session) -> SessionReport:
    """The report of ``session`` as a store alone knows it (no chain asked)."""
    return report_from_store(
        stored_grant(session, ACCOUNT, epoch=0), StoreMarks(revoked=False, enabled=True), now=1
    )


def _page(session: Session, index: int, facts: ContractFacts) -> list[str]:
    """The consent page's dangers and cautions of permission ``index``, each without its function's name, for a
    target the chain describes as ``facts``."""
    described = describe_session(
        session,
        account=ACCOUNT,
        chain_id=31337,
        facts=Facts(contract=lambda address: facts, is_module=lambda address: None),
    )
    return [w.text.split(": ", 1)[1] for w in described.warnings if w.permission == index]


USDC = ContractFacts(TOKEN, True, TokenFacts("USDC", "USD Coin", 6))
"""The target as the chain would describe a token of 6 decimals."""
COLLECTION = ContractFacts(TOKEN, True, None, erc721=True)
"""The target as the chain would describe an ERC-721 collection (ERC-165)."""


def test_the_store_report_gives_a_known_function_s_dangers_and_cautions_in_the_page_s_words() -> None:
    """Attack 438: the report from a store lists, for a function known by selector, the page's dangers and cautions
    in the page's words: a transfer to ANY address of an amount no rule caps (said of any target, since the store
    cannot tell a token: true of every one), an operator over every token, an allowance that grows call after call;
    the same functions held by rules give none."""
    loose = _session(
        Policy.call(TOKEN, "transfer(address to,uint256 amount)"),
        Policy.call(TOKEN, "setApprovalForAll(address operator,bool approved)"),
        Policy.call(TOKEN, "increaseAllowance(address spender,uint256 addedValue)"),
    )
    assert _report(loose).dangers == [
        f"transfer on {TOKEN}: may send to ANY address: no rule holds the recipient to one you know",
        f"transfer on {TOKEN}: no rule caps the amount of one call",
        f"setApprovalForAll on {TOKEN}: setApprovalForAll: may let ANY operator move EVERY token of this collection "
        "the account holds",
        f"increaseAllowance on {TOKEN}: {ANY_SPENDER}",
        f"increaseAllowance on {TOKEN}: {UNLIMITED}",
    ]
    for index, permission in enumerate(loose.permissions):
        page = _page(loose, index, USDC)
        name = permission.label.split("(")[0]
        said = [d.split(": ", 1)[1] for d in _report(loose).dangers if d.startswith(f"{name} on ")]
        assert said and set(said) <= set(page), (said, page)

    held = _session(
        Policy.call(
            TOKEN, "transfer(address to,uint256 amount)", rules=[arg("to") == ACCOUNT, arg("amount") <= 5]
        ),
        Policy.call(
            TOKEN,
            "setApprovalForAll(address operator,bool approved)",
            rules=[arg("approved") == False],  # noqa: E712
        ),
        Policy.call(
            TOKEN,
            "increaseAllowance(address spender,uint256 addedValue)",
            rules=[arg("spender") == SPENDER, arg("addedValue") <= 5],
        ),
    )
    assert _report(held).dangers == []


def test_a_store_report_gives_both_readings_of_a_selector_erc20_and_erc721_share() -> None:
    """Attack 438: from a store, ``approve(address,uint256)`` and ``transferFrom(address,address,uint256)`` may be an
    ERC-20 token's (an amount) or an ERC-721 collection's (a token id): the report gives the page's warnings of each
    reading, each saying which it is of, and never one reading alone. A ``transferFrom`` bounded to 5 and sent to
    the account is nothing on a token, and every token of ids 0 to 5 on a collection: that is said."""
    session = _session(
        Policy.call(TOKEN, APPROVE),
        Policy.call(TOKEN, TRANSFER_FROM, rules=[arg("to") == ACCOUNT, arg("amount") <= 5]),
    )
    assert _report(session).dangers == [
        f"approve on {TOKEN}: {NOT_721}{ANY_SPENDER}",
        f"approve on {TOKEN}: {NOT_721}{UNLIMITED}",
        f"approve on {TOKEN}: {IS_721}may name ANY spender: no rule holds the spender to one you know",
        f"approve on {TOKEN}: {IS_721}{TOKEN_IDS.format(does='approves the spender for')}",
        f"transferFrom on {TOKEN}: {IS_721}{TOKEN_IDS.format(does='moves')}",
    ]
    for index, name in enumerate(("approve", "transferFrom")):
        said = [d.split(": ", 1)[1] for d in _report(session).dangers if d.startswith(f"{name} on ")]
        for reading, facts in ((NOT_721, USDC), (IS_721, COLLECTION)):
            page = _page(session, index, facts)
            of_it = [text.removeprefix(reading) for text in said if text.startswith(reading)]
            assert set(of_it) <= set(page), (of_it, page)
            assert [text for text in page if text in of_it or "ERC-721" in text or "ANY" in text] == [
                text for text in page if text in of_it
            ], (of_it, page)
    # made on chain, but the node gave nothing of the target: read as from a store, not as ERC-20's
    unread = replace(
        _report(session),
        source="chain",
        collections=frozenset(),
        tokens=frozenset(),
        unread=frozenset({TOKEN}),
    )
    assert unread.dangers == _report(session).dangers


def _amount_limit(permission: int, offset: int = 32) -> Limit:
    return Limit(
        kind=LimitKind.AMOUNT, amount=5_000_000, meters=(Meter(permission=permission, offset=offset),)
    )


def test_the_report_s_unlimited_danger_knows_the_limit_that_caps_the_amount() -> None:
    """Attack 438 with attack 433's limits: a limit over the session's life that counts the approved amount is named
    as its cap, in the words of the report's own line for that limit, never an UNLIMITED allowance; a limit on the
    spender's word caps nothing, and the UNLIMITED danger stays."""
    approve = Policy.call(TOKEN, APPROVE, rules=[arg("spender") == SPENDER])
    increase = Policy.call(TOKEN, "increaseAllowance(address spender,uint256 addedValue)")
    capped = _session(approve, increase, limits=(_amount_limit(0), _amount_limit(1)))
    report = _report(capped)
    caution = (
        "the amount is capped by a limit, not by a rule on each call: {limit}, counted from its amount; an allowance "
        "it approves stays after the session ends"
    )
    assert report.limits == [limit_text(capped.limits[0], 0), limit_text(capped.limits[1], 1)]
    assert report.dangers == [
        f"approve on {TOKEN}: {NOT_721}{caution.format(limit=report.limits[0])}",
        f"approve on {TOKEN}: {IS_721}{TOKEN_IDS.format(does='approves the spender for')}",
        f"increaseAllowance on {TOKEN}: {ANY_SPENDER}",
        f"increaseAllowance on {TOKEN}: {caution.format(limit=report.limits[1])}",
    ]
    on_the_spender = _session(approve, increase, limits=(_amount_limit(0, 0), _amount_limit(1, 0)))
    assert [d for d in _report(on_the_spender).dangers if UNLIMITED in d] == [
        f"approve on {TOKEN}: {NOT_721}{UNLIMITED}",
        f"increaseAllowance on {TOKEN}: {UNLIMITED}",
    ]


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


def test_the_report_on_chain_reads_each_target_as_owner_grant_does(net: Any, usdc: Any, nft: Any) -> None:
    """Attack 438 on chain: the report made on chain asks the targets as ``owner.grant`` does (one cache of their
    facts) and says of each known function what ``owner.grant`` warned of it, in the same words and no more: on a
    token, ERC-20's ``approve`` and a transfer's amount no rule caps; on a collection, ERC-721's ``approve``; no
    reading the chain ruled out."""
    owner = net.owner(LocalSigner.generate())
    granted = [
        Policy.call(usdc.address, APPROVE),
        Policy.call(usdc.address, "transfer(address to,uint256 amount)"),
        Policy.call(nft.address, APPROVE),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grant = owner.grant(SessionKey.generate(), granted, valid_for=3600)
    said = [str(w.message) for w in caught if issubclass(w.category, TargetWarning)]
    dangers = report_from_chain(net, grant).dangers
    for permission in granted:
        shown = permission.label.split(" on ")[0]
        warned = [
            text.removeprefix(f"granting {permission.label}: ").rsplit("; if that is not what you mean", 1)[0]
            for text in said
            if text.startswith(f"granting {permission.label}: ")
        ]
        listed = [
            text.removeprefix(f"{shown.split('(')[0]} on {permission.target}: ")
            for text in dangers
            if text.startswith(f"{shown.split('(')[0]} on {permission.target}: ")
        ]
        assert warned and listed == warned, (permission.label, listed, warned)
    assert not [text for text in dangers if "if the target is" in text], dangers
    assert [text for text in dangers if "ERC-721" in text] == [
        f"approve on {nft.address}: {TOKEN_IDS.format(does='approves the spender for')}"
    ], dangers
