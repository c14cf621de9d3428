"""A dapp as the attacker, fifth round: a vault's shares priced on every surface, and addresses that pass for more
than the account.

Attack 384 beyond the page (attack 386): a bound in an ERC-4626 vault's shares was shown with what the shares cost
or return now on the consent page only. An owner granting from a program (``owner.grant``, no page) read nothing of
it, and the session report judged on chain read "mint ... where shares must be at most 1000", a number of a unit the
owner cannot price, whose worth the dapp sets by what it gives its vault.

Attack 387, an address that passes for more than the account: attacks 379 and 383 looked for a listed address that
shares its ends with the account or the session key only. A dapp's request names its router twice, as a target
(``swap``) and as the spender of an ``approve`` on the token; the spender it lists is a vanity address of its own
sharing the router's first and last eight hex digits, and the owner reads "spender must be 0x5FbD...0aa3", the
router he just read above. The same with Permit2 (``approve(spender == 0x0000...8BA3)``, a request every wallet
sees) and the canonical EntryPoints: the page, ``owner.grant`` and the session report said nothing.

Attack 388, a count of zero: ``Policy.call(..., rate="0/hour")``, ``calls=0``, ``Limits.operations(0)`` and an
ERC-7715 ``call-limit``/``rate-limit`` of count 0 built a limit that allows nothing: the module enables it, and the
permission can never be used. The SDK refused it only when a grant was built from it, naming the limit's label; an
ERC-7715 request with it was planned and shown. The module's view agrees with the grant: it enables such a limit,
stores its period (a zero amount's state is written for a periodic limit), reports it as 0 of 0 used per hour and
refuses every call it counts.

Attack 389, names too long to read: an argument's (or a function's) name is the dapp's text, of any length, and a
contract it deploys may declare ``pay(address to_____...(20,000 characters), uint256 amount)``. The page showed it
whole, in the function's line and in each of its warnings, and so did the session report: a wall of text a screen
long and more, pushing the rules and the dangers after it out of sight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.consent import GrantDescription
from keyscope.erc7715 import plan_from_requests
from keyscope.errors import BadInputError
from keyscope.execution import Call
from keyscope.policy import Limits
from keyscope.report import StoreMarks, report_from_chain, report_from_store
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.signing import LocalSigner
from keyscope.standing_approvals import PERMIT2
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
from test_attacks import words as abi_words
from test_attacks_review_m import _lookalike
from test_attacks_review_n import _priced_vault, _share_requests
from test_erc7715 import _limited_requests


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


APPROVE = "approve(address spender,uint256 amount)"
SWAP = "swap(address tokenIn,uint256 amountIn,address recipient)"


def _router_grant(token: str, router: str, spender: str, account: str) -> tuple[Permission, Permission]:
    """Attack 387's request: approve ``spender`` (the router, it says) for at most 1,000 on the token, and swap on the
    router to the account."""
    return (
        Policy.call(token, APPROVE, rules=[arg("spender") == spender, arg("amount") <= 1000]),
        Policy.call(router, SWAP, rules=[arg("recipient") == account]),
    )


def _said(described: GrantDescription, permission: int) -> list[str]:
    return [w.text for w in described.warnings if w.level == "danger" and w.permission == permission]


def test_an_address_that_passes_for_a_target_of_the_grant_is_a_danger(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 387, what the owner reads: the approved spender shares the router's (another permission's target)
    first and last hex digits and is not it: a danger naming both in full. The router itself as the spender is no
    danger."""
    token = project.TestToken.deploy(sender=deployer)
    router = project.EffectRecorder.deploy(sender=deployer)
    account = "0x" + "ac" * 20
    fake = _lookalike(router.address)
    described = words(*_router_grant(token.address, router.address, fake, account), account=account)
    assert any(
        f"{fake} passes for a contract this grant calls ({router.address})" in text
        for text in _said(described, 0)
    ), described.warnings
    honest = words(*_router_grant(token.address, router.address, router.address, account), account=account)
    assert not [text for text in _said(honest, 0) if "passes for" in text], honest.warnings


@pytest.mark.parametrize("known, name", [(PERMIT2, "Permit2"), (ENTRY_POINT_V07, "the EntryPoint v0.7")])
def test_an_address_that_passes_for_a_well_known_contract_is_a_danger(
    known: str, name: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 387 on the well-known addresses: ``approve(spender == ...)`` of an address sharing Permit2's (or a
    canonical EntryPoint's) ends reads as an approval of it; the page says it passes for it and is not it. Permit2
    itself is no such danger."""
    token = "0x" + "70" * 20
    account = "0x" + "ac" * 20
    fake = _lookalike(known)
    described = words(Policy.call(token, APPROVE, rules=[arg("spender") == fake]), account=account)
    assert any(f"{fake} passes for {name} ({known})" in text for text in _said(described, 0)), (
        described.warnings
    )
    real = words(Policy.call(token, APPROVE, rules=[arg("spender") == known]), account=account)
    assert not [text for text in _said(real, 0) if "passes for" in text], real.warnings


def test_owner_grant_and_the_session_report_give_the_lookalike_of_a_target(
    net: Any, project: Any, deployer: Any
) -> None:
    """Attack 387 past the page: ``owner.grant`` warns (a ``TargetWarning``, pointing at the owner's code) and the
    session report lists it under ``dangers``, judged on chain or from a store (read from the grant itself)."""
    owner = net.owner(LocalSigner.generate())
    token = project.TestToken.deploy(sender=deployer)
    router = project.EffectRecorder.deploy(sender=deployer)
    fake = _lookalike(router.address)
    with pytest.warns(TargetWarning) as caught:
        signed = owner.grant(
            SessionKey.generate(),
            list(_router_grant(token.address, router.address, fake, owner.account)),
            valid_for=3600,
        )
    said = [(str(w.message), w.filename) for w in caught if issubclass(w.category, TargetWarning)]
    matching = [
        where
        for text, where in said
        if f"{fake} passes for a contract this grant calls ({router.address})" in text
    ]
    assert matching == [__file__], said
    report = report_from_chain(net, signed)
    assert any(
        f"{fake} passes for a contract this grant calls ({router.address})" in text for text in report.dangers
    ), report.dangers
    stored = report_from_store(signed, StoreMarks(revoked=False, enabled=True), now=report.now)
    assert [t for t in stored.dangers if "passes for" in t] == [
        t for t in report.dangers if "passes for" in t
    ]


def test_the_chain_lets_the_key_approve_the_router_s_lookalike(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "approve the router for at most 1,000" lets the dapp's key do: approve the
    look-alike, an address that is not the router (here one no one deployed), which then spends the allowance."""
    token = project.TestToken.deploy(sender=deployer)
    router = project.EffectRecorder.deploy(sender=deployer)
    fake = _lookalike(router.address)
    approve, swap = _router_grant(token.address, router.address, fake, module_account)
    session = Session(session_key=session_key.address, permissions=(approve, swap))
    sessions.grant_onchain(module_account, owner, session)
    data = approve.selector + abi_words(int(fake, 16), 1000)
    assert (
        sessions.outcome(sessions.op(module_account, session_key, [Call.of(token.address, 0, data)])) == "ok"
    )
    assert token.allowance(module_account, fake) == 1000
    assert token.allowance(module_account, router.address) == 0


_TARGET = "0x" + "70" * 20
_CALL = "other(uint256 amount)"


@pytest.mark.parametrize(
    "build, option",
    [
        (lambda: Policy.call(_TARGET, _CALL, calls=0), "calls=0"),
        (lambda: Policy.call(_TARGET, _CALL, rate="0/hour"), "rate='0/hour'"),
        (lambda: Policy.call(_TARGET, _CALL, rate=(0, "day")), "rate=(0, 'day')"),
        (lambda: Policy.transfer(_TARGET, 10**18, rate="0 per minute"), "rate='0 per minute'"),
        (lambda: Limits.operations(0), "Limits.operations(0)"),
        (lambda: Limits.operations(0, per="day"), "Limits.operations(0, per='day')"),
    ],
)
def test_a_count_of_zero_is_refused_naming_its_option(build: Callable[[], object], option: str) -> None:
    """Attack 388: a count of zero allows no call (or no operation) at all; the builder refuses it, naming the
    option as written and saying what to give instead."""
    with pytest.raises(BadInputError) as info:
        build()
    message = str(info.value)
    assert message.startswith(option + " "), message
    assert "could never be used" in message and "positive" in message, message


@pytest.mark.parametrize("kwargs, field", [({"calls": 0}, "call-limit"), ({"rate": (0, 3600)}, "rate-limit")])
def test_an_erc7715_count_of_zero_is_refused_naming_its_field(kwargs: dict[str, Any], field: str) -> None:
    """Attack 388 in a dapp's ERC-7715 request: a ``call-limit`` or ``rate-limit`` of count 0 is refused, naming
    the request's policy and its ``count``, before anything is shown to the owner."""
    with pytest.raises(BadInputError) as info:
        plan_from_requests(_limited_requests(**kwargs))
    message = str(info.value)
    assert field in message and ".count" in message and "could never be used" in message, message


def test_the_module_enables_a_zero_count_rate_and_refuses_every_call(
    sessions: Any,
    module: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """The module's view of a zero count (why the SDK refuses it): it enables a session whose rate allows 0 calls an
    hour, its ``limitUsage`` reads the limit as signed (0 calls per hour, none used, none left), and it refuses every
    call the limit counts."""
    target = project.EffectRecorder.deploy(sender=deployer)
    rate = Limit(kind=LimitKind.CALLS, amount=0, period=3600, meters=(Meter(),), name="rate")
    permission = Policy.call(target.address, _CALL).model_copy(update={"limits": (rate,)})
    session = Session(session_key=session_key.address, permissions=(permission,))
    session_id = sessions.grant_onchain(module_account, owner, session)
    usage = [tuple(row) for row in module.limitUsage(module_account, session_id)]
    assert [(row[0], row[1], row[2], row[4], row[5]) for row in usage] == [
        (int(LimitKind.CALLS), 0, 3600, 0, 0)
    ]
    call = Call.of(target.address, 0, permission.selector + abi_words(1))
    now = project.provider.get_block("latest").timestamp
    result = sessions.outcome(sessions.op(module_account, session_key, [call], at=now))
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result


LONG = "to" + "_" * 20_000


def _long_named(target: str, account: str, labelled: bool) -> Permission:
    """Attack 389's request: a payment whose recipient's name is 20,002 characters long, its rule under that name;
    ``labelled``: the function's label carries the name too (a dapp's own request; ``Policy.call`` keeps types
    only)."""
    function = f"pay(address {LONG},uint256 amount)"
    built = Policy.call(target, function, rules=[arg(LONG) == account, arg("amount") <= 1000])
    return built.model_copy(update={"function": function}) if labelled else built


@pytest.mark.parametrize("labelled", [False, True])
def test_a_name_too_long_to_read_is_not_shown_whole(
    labelled: bool, words: Callable[..., GrantDescription]
) -> None:
    """Attack 389, what the owner reads: no line of the page carries the 20,000-character name, nor does the
    session report's. A rule's name too long is left for the argument's place; a function's label carrying one is
    shown by its selector, with a caution saying why."""
    from keyscope.report import describe_permission

    account = "0x" + "ac" * 20
    permission = _long_named("0x" + "70" * 20, account, labelled)
    described = words(permission, account=account)
    texts = [*described.permissions[0].rules, described.permissions[0].function]
    texts += [w.text for w in described.warnings]
    assert max(len(text) for text in texts) < 1_000, [text[:200] for text in texts if len(text) >= 1_000]
    said = describe_permission(permission)
    assert len(said) < 1_000, said[:300]
    cautions = [w.text for w in described.warnings if w.permission == 0 and "20,002 characters" in w.text]
    if labelled:
        assert (
            described.permissions[0].function
            == f"an unknown function (selector 0x{permission.selector.hex()})"
        )
        assert len(cautions) == 1, described.warnings
        assert f"selector 0x{permission.selector.hex()}" in said, said
    else:
        assert described.permissions[0].function == "pay(address, uint256 amount)", described.permissions[0]
        assert described.permissions[0].rules[0].startswith("arg0 (address) must be"), described.permissions[
            0
        ]
