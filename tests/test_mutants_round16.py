"""The sixteenth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it
let pass in the consent page's order and its look at each target's claims, the salt and the field order of the
EIP-712 domains a session key and the owner sign in, a token limit's use scaled for JSON, a token's text claims,
and this week's known functions' warnings.

Pinned here, without a chain (a stub node stands for a token where one is read):

* the consent page (``keyscope.consent.describe.describe_session``): every danger before any caution, each target's
  claims read once, on the first permission calling it;
"""

from __future__ import annotations

from typing import Any

from keyscope.consent.describe import Facts, GrantDescription, describe_session
from keyscope.hexutil import to_address
from keyscope.policy import parse_signature
from keyscope.session import Permission, Session
from keyscope.token_facts import ContractFacts, TokenFacts

ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
TOKEN = to_address("0x" + "70" * 20)
LOOKALIKE = to_address("0x" + "71" * 20)
TRANSFER = parse_signature("transfer(address,uint256)").selector
APPROVE = parse_signature("approve(address,uint256)").selector


def _session(**fields: Any) -> Session:
    base: dict[str, Any] = {"session_key": KEY, "valid_until": 2_000_000_000, "max_gas_cost": 10**15}
    return Session(**(base | fields))


# -- the consent page's order and its look at each target's claims (describe_session) -------------------------------


def _usdc_like(address: str) -> ContractFacts:
    """A token of 6 decimals whose symbol passes for USDC (a Cyrillic ES for the C) when it is ``LOOKALIKE``, USDC
    itself otherwise."""
    symbol = "USD\u0421" if address == LOOKALIKE else "USDC"
    return ContractFacts(address, True, TokenFacts(symbol, "USD Coin", 6))


def _page(session: Session) -> GrantDescription:
    return describe_session(
        session, account=ACCOUNT, chain_id=31337, facts=Facts(contract=_usdc_like, is_module=lambda a: None)
    )


def test_the_page_lists_every_danger_before_any_caution_each_level_in_the_permissions_order() -> None:
    """A caution of the first permission (a transfer to any recipient) and the dangers of the second (an approval
    of any spender, of any amount): the dangers come first, each level keeping the order it was found in."""
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=TOKEN, selector=APPROVE, function="approve(address,uint256)"),
        )
    )
    levels = [warning.level for warning in _page(session).warnings]
    assert "caution" in levels and "danger" in levels, levels
    assert levels == sorted(levels, key=lambda level: level != "danger"), levels
    dangers = [w for w in _page(session).warnings if w.level == "danger" and w.permission == 1]
    assert [w.text.split(": ", 1)[1][:25] for w in dangers] == [
        "may approve ANY spender: ",
        "may approve an UNLIMITED ",
    ], dangers


def test_each_target_s_claims_are_read_once_on_the_first_permission_that_calls_it() -> None:
    """Two permissions on a token whose symbol passes for USDC, after one on a true USDC: its lookalike symbol is a
    danger once, on the first permission calling it (index 1), not on the page's first permission, and not left out
    because it is not the first target."""
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=LOOKALIKE, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=LOOKALIKE, selector=APPROVE, function="approve(address,uint256)"),
        )
    )
    claims = [w for w in _page(session).warnings if w.text.startswith(f"{LOOKALIKE}: the symbol")]
    assert [(w.level, w.permission) for w in claims] == [("danger", 1)], _page(session).warnings
