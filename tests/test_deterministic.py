"""Deterministic addresses: the CREATE2 formula and what the addresses depend on (and what they do not)."""

from __future__ import annotations

import pytest

from keyscope.artifacts import ENTRY_POINT_V07, ENTRY_POINT_V07_SALT, entry_point_artifact
from keyscope.deterministic import KEYSCOPE_SALT, create2_address, deterministic_plan
from keyscope.devnode import create_address
from keyscope.errors import BadInputError
from keyscope.hexutil import keccak, to_bytes
from keyscope.signing import LocalSigner

ADMIN = LocalSigner.generate().address
SIGNER = LocalSigner.generate().address


def test_create2_through_the_proxy_gives_the_canonical_entry_point_address() -> None:
    init_code = to_bytes(entry_point_artifact()["bytecode"])
    assert create2_address(init_code, ENTRY_POINT_V07_SALT) == ENTRY_POINT_V07
    assert create2_address(init_code, KEYSCOPE_SALT) != ENTRY_POINT_V07
    with pytest.raises(BadInputError, match="32 bytes"):
        create2_address(init_code, b"\x01")


def test_the_plan_depends_on_the_constructor_arguments_only() -> None:
    plan = deterministic_plan(ADMIN, paymaster_signer=SIGNER)
    again = deterministic_plan(ADMIN.lower(), paymaster_signer=SIGNER.lower())
    assert [c.address for c in plan.contracts] == [c.address for c in again.contracts]
    assert plan.salt == KEYSCOPE_SALT == keccak(b"keyscope")
    assert plan.account_implementation == create_address(plan.factory.address, 1)
    assert [c.name for c in plan.contracts] == [
        "SessionKeyValidator",
        "KeyscopeAccountFactory",
        "SponsorPaymaster",
    ]
    assert plan.paymaster is not None

    other_admin = deterministic_plan(LocalSigner.generate().address, paymaster_signer=SIGNER)
    assert other_admin.module.address == plan.module.address  # no constructor arguments
    assert other_admin.factory.address != plan.factory.address
    assert other_admin.account_implementation != plan.account_implementation
    assert other_admin.paymaster is not None and other_admin.paymaster.address != plan.paymaster.address

    other_signer = deterministic_plan(ADMIN, paymaster_signer=LocalSigner.generate().address)
    assert other_signer.factory.address == plan.factory.address
    assert other_signer.paymaster is not None and other_signer.paymaster.address != plan.paymaster.address

    other_entry_point = deterministic_plan(ADMIN, entry_point=LocalSigner.generate().address)
    assert other_entry_point.factory.address != plan.factory.address
    assert deterministic_plan(ADMIN).paymaster is None


def test_each_address_commits_to_its_init_code() -> None:
    plan = deterministic_plan(ADMIN, paymaster_signer=SIGNER)
    for contract in plan.contracts:
        assert contract.address == create2_address(contract.init_code)
        assert create2_address(contract.init_code + b"\x00") != contract.address
