"""Fixtures and helpers shared by the tests of limits over a session's life (``test_limits``,
``test_limits_life``): import them into a test module to use them there. As in :mod:`support.session_fixtures`,
each fixture's function is named apart from the fixture (``name=``).
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.execution import Call
from keyscope.session import Session

ETHER = 10**18


@pytest.fixture(name="session_fixtures_first", scope="module", autouse=True)
def session_fixtures_first_fixture(sessions: Any, target: Any, nft: Any, module: Any) -> None:
    """Session-scoped fixtures before the test module's own (ape snapshots the chain per fixture scope)."""


@pytest.fixture(name="token", scope="module")
def token_fixture(project: Any, deployer: Any) -> Any:
    """An ERC-20 test token, deployed once per test module."""
    return project.TestToken.deploy(sender=deployer)


@pytest.fixture(name="account")
def limits_account_fixture(module_account: str, sessions: Any, token: Any) -> str:
    """A keyscope account with the module installed (support.session_fixtures), 5 ether and 100 tokens."""
    token.mint(module_account, 100 * ETHER, sender=sessions.h.funder)
    return module_account


def grant(
    sessions: Any, account: str, owner: Any, key: Any, permissions: Any, limits: Any = (), **fields: Any
) -> tuple[Session, bytes]:
    """Grant ``key`` a session of ``permissions`` and ``limits`` on chain (the owner's operation); the session and
    its id."""
    session = Session(session_key=key.address, permissions=tuple(permissions), limits=tuple(limits), **fields)
    return session, sessions.grant_onchain(account, owner, session)


def transfer(token: Any, to: str, amount: int) -> Call:
    """The call of ``token.transfer(to, amount)``."""
    return Call.of(token.address, 0, token.transfer.encode_input(to, amount))


def usage(module: Any, account: str, session_id: bytes) -> list[tuple[int, ...]]:
    """The module's ``limitUsage`` rows of the session, as tuples."""
    return [tuple(row) for row in module.limitUsage(account, session_id)]
