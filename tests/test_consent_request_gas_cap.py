"""A ``ConsentRequest`` checks its own ``max_gas_cost`` (the gas cap of an ERC-7715 plan that sets none, the one
the wallet signs), as the consent server does: a bool, a float or a negative number is refused, not read as a
number of wei (``False`` and ``0.0`` would be 0, no cap at all)."""

from __future__ import annotations

import pytest

from keyscope.consent import ConsentRequest
from keyscope.consent.describe import GrantDescription
from keyscope.errors import BadInputError


def _description() -> GrantDescription:
    return GrantDescription.model_construct()


@pytest.mark.parametrize(
    ("cap", "said"),
    [
        (False, "got a bool"),
        (True, "got a bool"),
        (0.0, "got a float"),
        (5e16, "got a float"),
        (-1, "from 0 \\(no cap\\) to 2\\*\\*256 - 1, got -1"),
        (2**256, "from 0 \\(no cap\\) to 2\\*\\*256 - 1"),
        ("lots", "not an integer"),
    ],
    ids=["false", "true", "zero-float", "float", "negative", "past-uint256", "text"],
)
def test_a_gas_cap_that_is_not_whole_wei_is_refused(cap: object, said: str) -> None:
    with pytest.raises(BadInputError, match=f"max_gas_cost.*{said}"):
        ConsentRequest(description=_description(), max_gas_cost=cap)  # type: ignore[arg-type]


def test_a_gas_cap_in_whole_wei_is_kept() -> None:
    assert ConsentRequest(description=_description(), max_gas_cost=10**15).max_gas_cost == 10**15
    assert ConsentRequest(description=_description(), max_gas_cost=0).max_gas_cost == 0
    assert ConsentRequest(description=_description(), max_gas_cost="7").max_gas_cost == 7  # type: ignore[arg-type]
