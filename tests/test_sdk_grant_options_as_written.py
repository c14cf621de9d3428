"""A grant's options are granted as the developer wrote them, or refused: never read into a wider session.

``never_expires``, ``max_gas_cost`` and ``co_signer`` each have a value meaning "no bound" (a session without end,
no gas cap, no co-signer). A value written for something else must not land on it: the text ``"false"`` for
``never_expires`` (a truthy string), ``False`` or a float for ``max_gas_cost`` (read as 0 wei, no cap, or rounded
to another number of wei), the zero address for a co-signer (which the grant carries for none).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyscope import SessionKey
from keyscope.errors import BadInputError
from keyscope.hexutil import ZERO_ADDRESS
from keyscope.owner import DEFAULT_MAX_GAS_COST, session_window
from support.sdk import mint_policy, sdk_owner  # noqa: F401 -- sdk_owner: the owner fixture


@pytest.mark.parametrize("written", ["false", "no", "0", 1, None, [False]])
def test_never_expires_takes_true_or_false_only(written: Any) -> None:
    """A truthy text such as ``"false"`` (read from a configuration file or the environment) once granted a
    session without end."""
    with pytest.raises(
        BadInputError, match=r"never_expires is True or False, got .*: pass never_expires=True"
    ):
        session_window(never_expires=written, now=1_000)


def test_never_expires_as_a_bool_is_read_as_written() -> None:
    assert session_window(never_expires=True, now=1_000) == (0, 0)
    assert session_window(never_expires=False, valid_for=60, now=1_000) == (0, 1_060)


@pytest.mark.parametrize("written", [0.5, 0.999, 1e-9])
def test_a_session_under_a_second_is_refused(written: float) -> None:
    """Session times are whole seconds: ``valid_for=0.5`` once became a session ending the second it started,
    granted and signed without a word."""
    with pytest.raises(BadInputError, match=r"valid_for .* is under a second.*: give at least 1 second"):
        session_window(valid_for=written, now=1_000)


def test_a_session_of_a_second_or_more_counts_whole_seconds() -> None:
    assert session_window(valid_for=1, now=1_000) == (0, 1_001)
    assert session_window(valid_for=1.5, now=1_000) == (0, 1_001)


@pytest.mark.parametrize(
    ("written", "said"),
    [
        (False, "got False"),  # once 0 wei: no gas cap at all
        (0.0, "got 0.0"),  # once 0 wei: no gas cap at all
        (99_999_999_999_999_999.0, "got 1e+17"),  # once 10**17 wei: a float holds no exact wei
        (5e16, "got 5e+16"),
        ("0.05 ether", "got '0.05 ether'"),
        (None, "got None"),
    ],
)
def test_max_gas_cost_takes_wei_as_an_integer_only(owner, nft, written: Any, said: str) -> None:
    key = SessionKey.generate()
    with pytest.raises(BadInputError, match=r"max_gas_cost is wei as an integer .*; " + re.escape(said)):
        owner.session_for(key, [mint_policy(nft, owner.account)], never_expires=True, max_gas_cost=written)
    with pytest.raises(BadInputError, match="max_gas_cost is wei as an integer"):
        owner.grant(key, [mint_policy(nft, owner.account)], max_gas_cost=written)


@pytest.mark.parametrize(("written", "granted"), [(0, 0), (10**16, 10**16), ("0x2386f26fc10000", 10**16)])
def test_max_gas_cost_in_wei_is_granted_as_written(owner, nft, written: Any, granted: int) -> None:
    session = owner.session_for(
        SessionKey.generate(), [mint_policy(nft, owner.account)], never_expires=True, max_gas_cost=written
    )
    assert session.max_gas_cost == granted
    default = owner.session_for(SessionKey.generate(), [mint_policy(nft, owner.account)], never_expires=True)
    assert default.max_gas_cost == DEFAULT_MAX_GAS_COST


def test_the_zero_address_as_a_co_signer_is_refused_not_granted_as_none(owner, nft) -> None:
    """The grant carries the zero address for "no co-signer": written as the co-signer, it once granted a session
    that any one signature of the session key could use."""
    key = SessionKey.generate()
    for zero in (ZERO_ADDRESS, bytes(20)):
        with pytest.raises(BadInputError, match=r"co_signer is the zero address.*leave co_signer out"):
            owner.session_for(key, [mint_policy(nft, owner.account)], never_expires=True, co_signer=zero)
        with pytest.raises(BadInputError, match="co_signer is the zero address"):
            owner.grant(key, [mint_policy(nft, owner.account)], co_signer=zero)


def test_rotating_to_the_zero_address_is_refused_not_read_as_removing_the_co_signer(owner, nft) -> None:
    """``rotate_co_signer(grant, None)`` removes the co-signer; the zero address, written as a new co-signer, once
    removed it too."""
    key, co_signer = SessionKey.generate(), SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], co_signer=co_signer.address, onchain=True)
    with pytest.raises(BadInputError, match=r"co_signer is the zero address.*pass None"):
        owner.rotate_co_signer(grant, ZERO_ADDRESS)
