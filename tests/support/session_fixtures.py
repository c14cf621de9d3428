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

from keyscope.grant import SessionGrant
from keyscope.session import Session
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


def sdk_grant(
    sessions: Any,
    account: str,
    session: Session,
    *,
    how: str,
    epoch: int | None = None,
    session_id: bytes | None = None,
    owner_signature: bytes | None = None,
) -> SessionGrant:
    """The record the SDK keeps of ``session`` on ``account``, granted ``how`` ("onchain", or "offchain" with its
    ``owner_signature``) at ``epoch`` (the account's epoch on chain unless given), under ``session_id`` (the
    session's id at that epoch unless given)."""
    epoch = sessions.epoch(account) if epoch is None else epoch
    return SessionGrant(
        session=session,
        account=account,
        module=sessions.module.address,
        chain_id=sessions.h.chain_id,
        entry_point=sessions.h.entry_point.address,
        epoch=epoch,
        session_id=session.session_id(account, epoch) if session_id is None else session_id,
        how=how,
        owner_signature=owner_signature,
    )


def stored_grant(session: Session, account: str, *, how: str = "offchain", epoch: int = 3) -> SessionGrant:
    """A record the SDK keeps of ``session`` on ``account``, for the tests that read one without a chain (the
    report, the page's words): a made-up module at ``0x1111…``, the canonical EntryPoint v0.7, chain 31337, granted
    ``how`` at ``epoch``, an off-chain grant with a placeholder owner signature."""
    return SessionGrant(
        session=session,
        account=account,
        module="0x" + "11" * 20,
        chain_id=31337,
        entry_point="0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        epoch=epoch,
        session_id=session.session_id(account, epoch),
        how=how,
        owner_signature=b"\x01" * 65 if how == "offchain" else None,
    )
