"""What the owner is shown of an approval's amount that a limit of the session caps, the same on the consent page and
in ``owner.grant``'s warnings, and in the session report (attack 438).

Attack 433, a danger the grant's limits rule out, and a limit made to silence a danger it does not touch: the page
and ``owner.grant`` said of ``approve`` (and ``increaseAllowance``) that it "may approve an UNLIMITED allowance: no
rule caps the amount" whenever no rule bounded the amount, also when a limit over the session's life counts that
very amount (``Policy.erc20_allowance``), so that every allowance it approves together is capped. Only a limit of
AMOUNT that counts the amount word of that very permission (its target and selector) caps it: one over another
argument (the spender's word), over another function's amount (``transfer``'s, at the same offset), over the same
function on another token, or that counts calls, leaves the allowance as unlimited as it was.
"""

from __future__ import annotations

import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope import Policy, TargetWarning
from keyscope.consent.describe import Facts, GrantWarning, describe_session
from keyscope.consent.tokens import ContractFacts, TokenFacts
from keyscope.hexutil import to_address
from keyscope.known_functions import UNLIMITED, counted_words, function_warnings
from keyscope.limits import limit_text
from keyscope.report import StoreMarks, report_from_store
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.targets import known_function_problems, warn_about_passing_for
from support.session_fixtures import stored_grant

TOKEN = to_address("0x" + "70" * 20)
OTHER = to_address("0x" + "71" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
UNLIMITED_DANGER = "may approve an UNLIMITED allowance: no rule caps the amount"
APPROVE = "approve(address spender,uint256 amount)"
PERMIT2_APPROVE = "approve(address token,address spender,uint160 amount,uint48 expiration)"
DAY = 86400


def _usdc(address: str) -> ContractFacts:
    return ContractFacts(address, True, TokenFacts("USDC", "USD Coin", 6))


FACTS = Facts(contract=_usdc, is_module=lambda address: None)
"""Every target a token of 6 decimals, as the chain would say of USDC; the session module answers nothing."""


def _session(*permissions: Permission, limits: tuple[Limit, ...] = ()) -> Session:
    return Session(session_key=KEY, valid_until=2_000_000_000, permissions=permissions, limits=limits)


def _amount_limit(permission: int, offset: int = 32, amount: int = 5_000_000, period: int = 0) -> Limit:
    return Limit(
        kind=LimitKind.AMOUNT,
        amount=amount,
        period=period,
        meters=(Meter(permission=permission, offset=offset),),
    )


def _page(session: Session, index: int) -> list[GrantWarning]:
    """The consent page's warnings of permission ``index``."""
    shown = describe_session(session, account=ACCOUNT, chain_id=31337, facts=FACTS).warnings
    return [w for w in shown if w.permission == index]


def _granted(session: Session, index: int) -> list[str]:
    """What ``owner.grant`` says of permission ``index``'s known function, without the label and what to do."""
    label = session.permissions[index].label
    return [
        text.removeprefix(f"{label}: ").rsplit("; if that is not what you mean", 1)[0]
        for text in known_function_problems(session, index, _usdc)
    ]


def _agree(session: Session, index: int) -> list[tuple[str, str]]:
    """Permission ``index``'s warnings on the page, each ``(level, text)``, after checking that ``owner.grant`` says
    its known function's warnings, and the page says each of them at the same level."""
    page = [(w.level, w.text.split(": ", 1)[1]) for w in _page(session, index)]
    known = function_warnings(session.permissions[index], True, counted=counted_words(session, index))
    granted = _granted(session, index)
    assert sorted(granted) == sorted(text for _, text in known), (known, granted)
    assert set(known) <= set(page), (known, page)
    return page


def test_a_lifetime_limit_on_the_approved_amount_is_shown_as_its_cap_not_as_an_unlimited_allowance() -> None:
    """Attack 433: ``Policy.erc20_allowance``'s budget over the session's life counts ``approve``'s and
    ``increaseAllowance``'s amounts: every allowance they approve together is at most the budget. The page and
    ``owner.grant`` name that limit as the cap, in the words the report gives the limit, and never call the
    allowance UNLIMITED; the spender no rule holds stays a danger."""
    session = _session(*Policy.erc20_allowance(TOKEN, 5_000_000, symbol="USDC"))
    cap = limit_text(session.limits[0], 0)
    assert cap == "limit 0 ('USDC allowance', the dapp's unsigned label): at most 5,000,000 base units over the " \
        "session's life"  # fmt: skip
    for index in (2, 3):  # approve, increaseAllowance
        said = _agree(session, index)
        assert not [text for _, text in said if "UNLIMITED" in text or "no rule caps" in text], said
        assert [level for level, text in said if cap in text] == ["caution"], said
        assert [level for level, text in said if "ANY spender" in text] == ["danger"], said
    report = report_from_store(
        stored_grant(session, ACCOUNT, epoch=0), StoreMarks(revoked=False, enabled=True), now=1
    )
    assert report.limits == [cap], report.limits
    capped = (
        f"the amount is capped by a limit, not by a rule on each call: {cap}, counted from its amount; an allowance "
        "it approves stays after the session ends"
    )
    any_spender = (
        "may approve ANY spender: no rule holds the spender to one you know, so a leaked session key can let anyone "
        "take this token from the account"
    )
    erc721 = "if the target is an ERC-721 collection: "
    erc20 = "if the target is not an ERC-721 collection: "
    token_ids = (
        "this ERC-721 collection takes a token id here, not an amount: each call {} one token, any the rules allow, "
        "so every token of the account whose id is in the rule's range (any id, without a rule) may go, as many "
        "calls as the session's window allows"
    )
    anywhere = "may send to ANY address: no rule holds the recipient to one you know"
    uncapped = "no rule caps the amount of one call"
    # from a store, the report says what the page says of each known function (attack 438), the allowance's cap
    # in the limit's own words, and of approve and transferFrom both readings, a token's and a collection's
    assert report.dangers == [
        f"transfer on {TOKEN}: {anywhere}",
        f"transfer on {TOKEN}: {uncapped}",
        f"transferFrom on {TOKEN}: {erc20}{anywhere}",
        f"transferFrom on {TOKEN}: {erc20}{uncapped}",
        f"transferFrom on {TOKEN}: {erc721}may name ANY recipient: no rule holds the recipient to one you know",
        f"transferFrom on {TOKEN}: {erc721}{token_ids.format('moves')}",
        f"approve on {TOKEN}: {erc20}{any_spender}",
        f"approve on {TOKEN}: {erc20}{capped}",
        f"approve on {TOKEN}: {erc721}may name ANY spender: no rule holds the spender to one you know",
        f"approve on {TOKEN}: {erc721}{token_ids.format('approves the spender for')}",
        f"increaseAllowance on {TOKEN}: {any_spender}",
        f"increaseAllowance on {TOKEN}: {capped}",
    ], report.dangers


def test_a_periodic_limit_on_the_approved_amount_is_a_cap_per_period_only() -> None:
    """Attack 433: a limit per day on ``approve``'s amount caps each day's approvals, the whole amount again the next
    day, while the allowances stay: a caution that says so (a danger for ``increaseAllowance``, whose allowance
    grows day after day), never an UNLIMITED allowance. A lifetime limit beside it is the cap shown."""
    approve = Policy.call(TOKEN, APPROVE)
    increase = Policy.call(TOKEN, "increaseAllowance(address spender,uint256 addedValue)")
    daily = _amount_limit(0, period=DAY), _amount_limit(1, period=DAY)
    session = _session(approve, increase, limits=daily)
    for index, level in ((0, "caution"), (1, "danger")):
        said = _agree(session, index)
        capped = [(lvl, text) for lvl, text in said if "capped per period only" in text]
        assert [lvl for lvl, _ in capped] == [level], said
        assert limit_text(daily[index], index) in capped[0][1] and "per day" in capped[0][1], capped
        assert "whole amount again each period" in capped[0][1], capped
        assert not [text for _, text in said if "UNLIMITED" in text], said

    both = _session(approve, limits=(_amount_limit(0, period=DAY), _amount_limit(0, amount=7_000_000)))
    said = _agree(both, 0)
    assert [text for _, text in said if "capped" in text] == [
        "the amount is capped by a limit, not by a rule on each call: limit 1 (amount): at most 7,000,000 base units "
        "over the session's life, counted from its amount; an allowance it approves stays after the session ends"
    ], said


def test_a_limit_that_does_not_count_the_approved_amount_leaves_the_unlimited_danger() -> None:
    """Attack 433: a limit made to look like a cap, counting the spender's word, ``transfer``'s amount (at the same
    offset as ``approve``'s), ``approve``'s amount on another token, ``approve``'s calls, or an amount Permit2 reads
    as no bound, caps nothing of the allowance: the UNLIMITED danger stays on the page and in ``owner.grant``'s
    warnings."""
    approve, transfer = Policy.call(TOKEN, APPROVE), Policy.call(TOKEN, "transfer(address to,uint256 amount)")
    elsewhere = Policy.call(OTHER, APPROVE)
    calls = Limit(kind=LimitKind.CALLS, amount=3, meters=(Meter(permission=0),))
    for session in (
        _session(approve, transfer, limits=(_amount_limit(0, offset=0),)),
        _session(approve, transfer, limits=(_amount_limit(1),)),
        _session(approve, elsewhere, limits=(_amount_limit(1),)),
        _session(approve, transfer, limits=(calls,)),
    ):
        said = _agree(session, 0)
        assert ("danger", UNLIMITED_DANGER) in said, (session.limits, said)
        assert not [text for _, text in said if "capped" in text], said
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_about_passing_for(None, ACCOUNT, session, _usdc)  # type: ignore[arg-type] # no chain is asked
        said_by_grant = [str(w.message) for w in caught if w.category is TargetWarning]
        assert [text for text in said_by_grant if UNLIMITED_DANGER in text], said_by_grant
    # a count of calls is no amount, whatever the word a meter of one would name
    assert counted_words(_session(approve, transfer, limits=(calls,)), 0) == {}
    permit2 = Policy.call(TOKEN, PERMIT2_APPROVE)
    for amount, capped in ((2**160 - 2, True), (2**160 - 1, False), (2**256 - 1, False)):
        texts = [text for _, text in function_warnings(permit2, True, counted=counted_words(
            _session(permit2, limits=(_amount_limit(0, offset=64, amount=amount),)), 0))]  # fmt: skip
        assert (UNLIMITED_DANGER not in texts) is capped, (amount, texts)


def test_with_no_limit_the_unlimited_danger_is_unchanged() -> None:
    """Without a limit (or with a rule capping the amount) the warnings are what they were: the UNLIMITED danger, or
    none of the amount."""
    approve = Policy.call(TOKEN, APPROVE)
    assert _agree(_session(approve), 0) == [
        ("danger", "may approve ANY spender: no rule holds the spender to one you know, so a leaked session key can "
         "let anyone take this token from the account"),
        ("danger", UNLIMITED_DANGER),
    ]  # fmt: skip
    assert function_warnings(approve, True) == function_warnings(approve, True, counted={})


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(list(LimitKind)[:3]),
    permission=st.integers(0, 2),
    offset=st.sampled_from([0, 32, 64]),
    period=st.sampled_from([0, DAY]),
    amount=st.sampled_from([1, 5_000_000, UNLIMITED - 1, UNLIMITED, 2**256 - 1]),
)
def test_only_a_limit_counting_the_very_amount_word_caps_it(
    kind: LimitKind, permission: int, offset: int, period: int, amount: int
) -> None:
    """Attack 433: ``approve``'s UNLIMITED danger is gone exactly when an AMOUNT limit counts its amount word (the
    permission's own, at byte 32) with an amount the module stores below the unlimited one; a lifetime one is then
    the cap shown, a periodic one a cap per period only."""
    permissions = (
        Policy.call(TOKEN, APPROVE),
        Policy.call(TOKEN, "transfer(address to,uint256 amount)"),
        Policy.call(OTHER, APPROVE),
    )
    meter = Meter(permission=permission, offset=offset if kind == LimitKind.AMOUNT else 0)
    limit = Limit(kind=kind, amount=amount, period=period, meters=(meter,))
    session = _session(*permissions, limits=(limit,))
    texts = [text for _, text in function_warnings(permissions[0], True, counted=counted_words(session, 0))]
    caps = kind == LimitKind.AMOUNT and permission == 0 and offset == 32 and limit.stored_amount < UNLIMITED
    assert (UNLIMITED_DANGER not in texts) is caps, texts
    if caps:
        (capped,) = [text for text in texts if limit_text(limit, 0) in text]
        assert ("per period only" in capped) is bool(period), capped
