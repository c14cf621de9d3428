"""What the owner is shown of a grant, the same on every surface: the consent page, ``owner.grant``'s warnings and the
session report (``owner.sessions()``, ``keyscope sessions``, the consent dashboard).

Attack 420, calls no rule holds said on the page only: a dispatch known by selector (``multicall(bytes[])``, Safe's
``multiSend``) is a danger on the page and in the report, and a function known by no table whose arguments carry
bytes (``batch(string[] steps)``) a caution on the page (attacks 373, 376, 408, 410, 412); an owner granting from a
program (``owner.grant``, no page) was told nothing of either, and the report said nothing of the second.

Attack 421, the dashboard's usage line read as a rolling budget: the page and the report say a periodic limit counts
in fixed periods back to back (attack 414); the dashboard's line of what a limit has used and has left did not.

Attack 422, a reset shown early: the report gave a period's reset to the minute (floored) while the page gave it to
the second, so a reset at 14:00:30 read "14:00" in the report, 30 seconds before the module counts anew.

Attack 423, decided: an address argument no rule holds in a function no table knows is no warning on any surface.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.consent import GrantDescription
from keyscope.consent.describe import limit_usage_words
from keyscope.grant import SessionGrant
from keyscope.hexutil import to_address
from keyscope.limits import LimitUsage, period_note
from keyscope.module import SessionStatus
from keyscope.report import SessionReport, StoreMarks, report_from_store
from keyscope.session import Limit, LimitKind, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import stored_grant


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


ROUTER = to_address("0x" + "7e" * 20)
ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
RUNS_CALLS = (
    "multicall(bytes[] data)",
    "multiSend(bytes transactions)",
    "batch(string[] steps)",
    "relay(address to,bytes32[] words)",
)
"""Two dispatches known by selector (a danger on the page) and two functions known by no table whose arguments carry
bytes (a caution on the page)."""


def _grant(session: Session) -> SessionGrant:
    """``session`` as a stored off-chain grant of :data:`ACCOUNT`'s (read by the report without a chain)."""
    return stored_grant(session, ACCOUNT, epoch=0)


def test_owner_grant_warns_of_calls_no_rule_holds_in_the_page_s_words(
    net: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 420 in code: ``owner.grant`` (here its first step, ``prepare_grant``, which signs and sends nothing)
    warns of each function that runs calls no rule holds, or may (a ``TargetWarning`` pointing at the owner's line),
    in the page's own words for it, with what to do; a plain function beside them raises no such warning."""
    owner = net.owner(LocalSigner.generate())
    grant = [Policy.call(ROUTER, signature) for signature in RUNS_CALLS]
    grant.append(Policy.call(ROUTER, "pay(address to,uint256 amount)", rules=[arg("to") == owner.account]))
    with pytest.warns(TargetWarning) as caught:
        owner.prepare_grant(SessionKey.generate(), grant, valid_for=3600)
    said = [str(w.message) for w in caught if issubclass(w.category, TargetWarning)]
    # the router's address has no code: said too, and left aside here
    said = [text for text in said if "has no code on this chain" not in text]
    page = words(*grant, account=owner.account).warnings
    for index, permission in enumerate(grant[:-1]):
        shown = [w.text.split(": ", 1)[1] for w in page if w.permission == index and "rule" in w.text]
        assert len(shown) == 1, page
        (warned,) = [text for text in said if text.startswith(f"granting {permission.label}: ")]
        advice = (
            "grant the functions it would run instead, each on its own with its own rules, or leave this "
        )
        assert warned == f"granting {permission.label}: {shown[0]}; {advice}function out of the grant"
    assert not [text for text in said if text.startswith(f"granting {grant[-1].label}")], said
    assert {w.filename for w in caught if issubclass(w.category, TargetWarning)} == {__file__}


def test_the_session_report_gives_the_page_s_caution_of_bytes_that_may_be_calls(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 420 in the session report: from the grant alone (a store, no chain asked) it gives the page's words
    for a function known by no table whose arguments carry bytes, as it does for a known dispatch (attack 412); a
    function whose arguments carry none (an address, a fixed array of words) raises nothing."""
    grant = [Policy.call(ROUTER, signature) for signature in RUNS_CALLS]
    grant += [Policy.call(ROUTER, "pay(address to,uint256[2] amounts)")]
    session = Session(session_key=KEY, valid_until=2_000_000_000, permissions=tuple(grant))
    report = report_from_store(_grant(session), StoreMarks(revoked=False, enabled=True), now=1_900_000_000)
    page = words(*grant, account=ACCOUNT).warnings
    assert len(report.dangers) == len(RUNS_CALLS), report.dangers
    for index, danger in enumerate(report.dangers):
        name = RUNS_CALLS[index].split("(")[0]
        assert danger.startswith(f"{name} on {ROUTER}: "), danger
        said = danger.split(": ", 1)[1]
        assert [w for w in page if w.permission == index and w.text.endswith(said)], (danger, page)
    assert not [w for w in page if w.permission == len(RUNS_CALLS) and "rule" in w.text], page


START = 1_900_000_050
"""A session's start 30 seconds past a minute: its periods reset at 30 seconds past one."""


def _usage() -> tuple[Session, LimitUsage]:
    """A session of a daily cap of ten calls and a lifetime one, and the daily one's use in its first day."""
    limits = (Limit(kind=LimitKind.CALLS, amount=10, period=86_400), Limit(kind=LimitKind.CALLS, amount=7))
    session = Session(
        session_key=KEY,
        valid_after=START,
        valid_until=START + 7 * 86_400,
        permissions=(Policy.call(ROUTER, "pay(address to,uint256 amount)"),),
        limits=limits,
    )
    return session, LimitUsage(0, limits[0], 3, 7, START, START + 86_400)


def test_the_dashboard_s_usage_line_says_a_periodic_limit_counts_in_fixed_periods() -> None:
    """Attack 421: the consent dashboard's line of what a periodic limit has used and has left ends with the page's
    and the report's note of how it counts (fixed periods back to back from the session's start), as the report's
    line of the same use does; a limit over the session's life says nothing of periods."""
    session, row = _usage()
    note = period_note(row.limit, START)
    assert note.startswith(" (fixed periods back to back from 2030-03-17 17:47:30 UTC"), note
    line = limit_usage_words(row, session, None)
    assert line.endswith(note), line
    report = SessionReport(_grant(session), SessionStatus.ACTIVE.value, START + 1, "chain", usage=(row,))
    assert report.limits[0].endswith(note), report.limits
    lifetime = LimitUsage(1, session.limits[1], 0, 7, START, None)
    assert "fixed periods" not in limit_usage_words(lifetime, session, None)


def _shown_reset(line: str) -> int:
    """The reset time a usage line shows, in unix seconds (its seconds as shown, 0 when it shows none)."""
    text = line.split("; resets ", 1)[1].split(" UTC", 1)[0]
    shape = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return int(datetime.strptime(text, shape).replace(tzinfo=timezone.utc).timestamp())


def test_a_reset_is_shown_to_the_second_alike_on_every_surface_and_never_early() -> None:
    """Attack 422: a period resetting at 30 seconds past a minute reads the same in the report (``owner.sessions()``,
    ``keyscope sessions``), in a report row's JSON text and on the dashboard, to the second; none shows it before the
    module counts anew."""
    session, row = _usage()
    page = limit_usage_words(row, session, None)
    report = SessionReport(_grant(session), SessionStatus.ACTIVE.value, START + 1, "chain", usage=(row,))
    assert report.limits == [page], (report.limits, page)
    for line in (page, report.limits[0], row.enforced_text(), str(row.to_dict()["text"]), row.describe()):
        assert _shown_reset(line) == START + 86_400, line
        assert "; resets 2030-03-18 17:47:30 UTC" in line, line


def test_an_address_no_rule_holds_in_a_function_no_table_knows_is_left_to_the_owner_s_reading(
    net: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 423, decided: an address argument of a function known by no table (flat or in a struct) that no rule
    holds is no warning on any surface. Such an argument is most often not a recipient (a token to swap, a pool,
    a market) and a warning on each would be noise on nearly every grant; the page shows the function with each
    argument's rules, so the owner sees which arguments no rule holds. A known function's recipient keeps its
    caution (attack 366 and the like)."""
    owner = net.owner(LocalSigner.generate())
    grant = [
        Policy.call(ROUTER, "swap(address tokenIn,uint256 amountIn)", rules=[arg("amountIn") <= 1_000]),
        Policy.call(ROUTER, "order((address market,uint256 size) o)"),
    ]
    with pytest.warns(TargetWarning) as caught:  # the router has no code: that, and nothing else
        owner.prepare_grant(SessionKey.generate(), grant, valid_for=3600)
    assert all("has no code" in str(w.message) for w in caught), [str(w.message) for w in caught]
    page = words(*grant, account=owner.account)
    assert [w.text for w in page.warnings if w.permission is not None and "no code" not in w.text] == []
    session = Session(session_key=KEY, valid_until=2_000_000_000, permissions=tuple(grant))
    assert report_from_store(_grant(session), StoreMarks(revoked=False, enabled=True), now=1).dangers == []
