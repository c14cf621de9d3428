"""Fixtures shared by the tests that attack the session module and its limits (``test_attacks``,
``test_attacks_more``, ``test_limits``): import them into a test module to use them there. Each fixture's function
is named apart from the fixture (``name=``), so that a test taking the fixture as an argument does not redefine
the imported name.

``module_account`` is named apart from conftest's ``account`` (a deployed account without the module), which the
other tests keep.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.signing import LocalSigner

ETHER = 10**18


@pytest.fixture(name="module_account")
def module_account_fixture(sessions: Any, owner: LocalSigner) -> str:
    """A keyscope account of ``owner`` with the session module installed, holding 5 ether."""
    address: str = sessions.account(owner)
    sessions.h.fund(address, 4 * ETHER)
    return address


@pytest.fixture(name="attacker")
def attacker_fixture() -> str:
    """An address no test's account or session knows: where an attack tries to send what it takes."""
    return LocalSigner.generate().address
