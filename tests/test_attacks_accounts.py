"""Attacks on the contracts around the session module, through the real EntryPoint v0.7 on ape's local chain."""

from __future__ import annotations

import pytest

from conftest import ETHER
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address
from keyscope.signing import LocalSigner

ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, bundler):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


def _proxy_of(implementation: str, deployer, chain) -> str:
    """An ERC-1167 proxy of ``implementation`` deployed by ``deployer`` itself, not by the factory: the account's
    code over storage no factory set up, as an EOA delegating to the implementation has it (py-evm has no EIP-7702;
    tests/e2e/test_eip7702.py runs delegations on a Prague node)."""
    init = (
        bytes.fromhex("3d602d80600a3d3981f3363d3d373d3d3d363d73")
        + bytes.fromhex(implementation[2:])
        + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
    )
    tx = chain.provider.network.ecosystem.create_transaction(
        data=init, sender=deployer.address, gas_limit=200_000
    )
    return to_address(deployer.call(tx).contract_address)


def test_nobody_but_the_factory_initialises_the_accounts_code_over_fresh_storage(
    harness, factory, entry_point, project, deployer, accounts, chain
):
    """An EOA that delegates (EIP-7702) to the account's implementation instead of to ``KeyscopeDelegate`` runs the
    implementation's code over its own storage, which no initialiser has touched: its `initialize` is open. A
    stranger watching the mempool copies the EOA's authorization into a transaction of its own that calls
    `initialize(stranger, [])` (before the owner's, or alone), becomes the owner, and takes the EOA's ether through
    the EntryPoint with operations it signs. Here the EOA is a proxy of the implementation that the factory did not
    make (same code, fresh storage): `initialize` from anyone but the factory reverts `InitializerNotFactory`, the
    stranger's operation fails AA24, and the ether stays. The factory's own creation initialises as before."""
    implementation = factory.accountImplementation()
    victim = project.KeyscopeAccount.at(_proxy_of(implementation, deployer, chain))
    harness.fund(victim.address, ETHER)
    stranger_key = LocalSigner.generate()
    stranger = accounts[8]

    with pytest.raises(Exception) as info:
        victim.initialize(stranger_key.address, [], sender=stranger)
    refused = type(info.value).__name__ + str(info.value)
    assert "InitializerNotFactory" in refused, info.value
    assert victim.signer() == ZERO

    take = encode_execute(Call.of(stranger.address, ETHER))
    op = harness.op(victim.address, take)
    error = harness.rejected(op.replace(signature=stranger_key.sign_hash(harness.hash(op))))
    assert error.reason == "AA24", error
    assert chain.provider.get_balance(victim.address) == ETHER

    # the factory's clone, created and initialised in one call, belongs to the owner it names
    owner = LocalSigner.generate()
    account = harness.create(owner, salt=51)
    assert project.KeyscopeAccount.at(account).signer() == owner.address
