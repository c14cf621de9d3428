"""A bundler pricing the owner's operations: nothing but its word sets their gas figures and fees.

The owner signs a userOpHash (a browser wallet shows only the hash), so the SDK is what stands between a bundler's
estimate and what the account pays. A bundler is untrusted (the threat model's actors): one that pads
preVerificationGas, which the EntryPoint charges in full, and quotes the priority fee at maxFeePerGas, then lands
the operation with itself as beneficiary, is paid what it padded, out of the account's balance.

Here the bundler is the in-process submitter (the real EntryPoint ``handleOps`` on ape's local chain) with the
attacker as beneficiary, answering the estimate and the fee quote as such a bundler would.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope import BadInputError, OwnerGasCostTooHighError, function_call
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.bundler.types import FeeQuote, GasEstimate
from keyscope.consent.sessions import prepare_revocation
from keyscope.operations import DEFAULT_OWNER_MAX_GAS_COST
from keyscope.owner import Owner
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.sdk import ETHER, local_network

FEE = 100 * 10**9
"""The hostile quote: 100 gwei, all of it priority fee (paid to the beneficiary)."""


class PaddingBundler(InProcessBundler):
    """A bundler that estimates honestly, then pads preVerificationGas until the operation's prefund is ``target``
    wei at its own fee quote, and lands what it is sent with the attacker as beneficiary."""

    def __init__(self, entry_point: str, submitter: Any, attacker: str, target: int) -> None:
        super().__init__(entry_point, submitter, beneficiary=attacker)
        self.target = target

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        honest = super().estimate_user_operation_gas(op, entry_point)
        limits = int(honest.verification_gas_limit * 1.15) + int(honest.call_gas_limit * 1.05)
        padded = self.target // FEE - limits
        return honest.model_copy(update={"pre_verification_gas": max(padded, honest.pre_verification_gas)})

    def fee_quote(self) -> FeeQuote:
        return FeeQuote(max_fee_per_gas=FEE, max_priority_fee_per_gas=FEE)


@pytest.fixture
def attacker() -> str:
    return LocalSigner.generate().address


@pytest.fixture
def hostile(chain, module, entry_point, factory, submitter_account, attacker):
    """The SDK's network with the padding bundler, which prices an operation at 0.9 ether."""
    bundler = PaddingBundler(entry_point.address, submitter_account, attacker, 9 * ETHER // 10)
    return local_network(chain, bundler, module, entry_point, factory)


def test_the_owner_signs_no_operation_a_bundler_priced_past_the_owners_cap(
    hostile, harness, nft, chain, entry_point, attacker
):
    """Without a cap the owner's first operation (a mint, creating the account) lands at the padded price: the
    attacker, as beneficiary, takes some 0.7 ether of the account's 1 ether."""
    owner: Owner = hostile.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    with pytest.raises(OwnerGasCostTooHighError, match="owner's cap") as refused:
        owner.execute(function_call(nft, "safeMint(address)", owner.account))
    assert refused.value.limit == DEFAULT_OWNER_MAX_GAS_COST == 10**17
    assert refused.value.cost == 9 * ETHER // 10 and refused.value.account == owner.account
    assert "900,000,000,000,000,000 wei" in str(refused.value) and "check the bundler" in str(refused.value)
    assert chain.provider.get_balance(owner.account) == ETHER
    assert chain.provider.get_balance(attacker) == 0
    assert int(entry_point.getNonce(owner.account, 0)) == 0


def test_the_dashboards_revocation_is_not_prepared_at_a_padded_price(
    net, hostile, harness, nft, chain, attacker
):
    """The dashboard's revocation (the wallet signs its hash) is priced by the bundler too."""
    owner: Owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # an honest bundler
    held = chain.provider.get_balance(owner.account)
    with pytest.raises(OwnerGasCostTooHighError, match="owner's cap"):
        prepare_revocation(hostile, owner.account, None)
    assert chain.provider.get_balance(owner.account) == held
    assert chain.provider.get_balance(attacker) == 0


def test_an_owner_who_raises_the_cap_is_priced_as_the_bundler_says(hostile, harness, nft, chain, attacker):
    """The cap is the owner's: raised (or 0, none), the operation is sent at the bundler's price, as before."""
    owner: Owner = hostile.owner(LocalSigner.generate(), max_gas_cost=ETHER)
    harness.fund(owner.account, ETHER)
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()
    assert chain.provider.get_balance(attacker) > ETHER // 2
    assert nft.balanceOf(owner.account) == 1


@pytest.mark.parametrize("cap", [True, 0.5, -1, "lots"])
def test_a_cap_that_is_no_amount_of_wei_is_refused(net, cap):
    with pytest.raises(BadInputError, match="max_gas_cost is wei as an integer"):
        net.owner(LocalSigner.generate(), max_gas_cost=cap)


def test_the_dashboard_refuses_to_ask_the_wallet_for_a_padded_revocation(
    net, hostile, harness, nft, chain, attacker
):
    """Over HTTP, as the dashboard's page asks: the revocation is refused before the wallet sees its hash, naming
    the cap; the server's owner_max_gas_cost raises it."""
    import httpx

    from keyscope.consent import ConsentServer

    owner: Owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # an honest bundler
    path = f"/api/accounts/{owner.account}/revoke"
    with ConsentServer(hostile) as server:
        answer = httpx.post(server.url + path, json={"all": True}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert "owner's cap of 100,000,000,000,000,000 wei" in answer.json()["error"]
    with ConsentServer(hostile, owner_max_gas_cost=ETHER) as server:
        answer = httpx.post(server.url + path, json={"all": True}, timeout=30)
    assert answer.status_code == 200 and answer.json()["userOpHash"].startswith("0x"), answer.text
    assert chain.provider.get_balance(attacker) == 0  # prepared, never signed


@pytest.mark.parametrize("cap", [True, 0.5, -1])
def test_a_dashboard_cap_that_is_no_amount_of_wei_is_refused(net, cap):
    from keyscope.consent import ConsentServer

    with pytest.raises(BadInputError, match="max_gas_cost"):
        ConsentServer(net, owner_max_gas_cost=cap)
