"""Fixtures shared by the tests of the consent page's words (``test_consent``, ``test_attacks_call_rules_read_as_another_type``):
import them into a test module to use them there. Each fixture's function is named apart from the fixture
(``name=``), so that a test taking the fixture as an argument does not redefine the imported name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope.consent import ConsentServer, GrantDescription
from keyscope.consent.describe import describe_session
from keyscope.hexutil import to_address
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner


@pytest.fixture(name="usdc", scope="module")
def usdc_fixture(project: Any, deployer: Any) -> Any:
    """A token that calls itself USD Coin (USDC), with 6 decimals."""
    return project.NamedToken.deploy("USD Coin", "USDC", 6, sender=deployer)


@pytest.fixture(name="words")
def words_fixture(net: Any) -> Callable[..., GrantDescription]:
    """``words(*permissions, account=None, **session)``: the consent page's description of a session granting
    ``permissions`` (valid until 2033, a gas cap of 0.01 ETH unless given), read from the chain as the page reads it."""
    server = ConsentServer(net)  # not started: its describer reads the chain

    def describe(*permissions: Permission, account: str | None = None, **session: Any) -> GrantDescription:
        owner = account or to_address("0x" + "ac" * 20)
        built = Session(
            session_key=LocalSigner.generate().address,
            valid_until=session.pop("valid_until", 2_000_000_000),
            max_gas_cost=session.pop("max_gas_cost", 10**16),
            permissions=permissions,
            **session,
        )
        return describe_session(built, account=owner, chain_id=net.chain_id, facts=server.facts(owner))

    return describe
