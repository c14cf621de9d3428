"""A leaked session key against what the recent reviews left aside: the gas cap against everything EntryPoint v0.8
charges, through the real v0.8 ``handleOps`` on ape's chain. Each attack holds; the tests keep it so.
"""

from __future__ import annotations

from typing import Any

import pytest
from ape.exceptions import ContractLogicError

from keyscope import Network, Policy, SessionKey, Web3Chain, arg
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.calls import function_call
from keyscope.revert import describe_revert
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.ape_entry_point import deploy_entry_point

ETHER = 10**18


@pytest.fixture(scope="module")
def entry_point_v08(deployer: Any) -> Any:
    """An EntryPoint v0.8 (at a non-canonical address, which the SDK reads the version of from its domain)."""
    return deploy_entry_point(deployer, "0.8")


# ------------------------------------------------------------------------------------------------------
# The gas cap against EntryPoint v0.8's charges
# ------------------------------------------------------------------------------------------------------


def test_an_operation_at_the_gas_cap_on_entry_point_v08_takes_at_most_the_cap_from_the_account(
    project: Any,
    chain: Any,
    deployer: Any,
    submitter_account: Any,
    entry_point_v08: Any,
    module: Any,
    nft: Any,
    harness: Any,
) -> None:
    """EntryPoint v0.8 charges the gas used, preVerificationGas in full, and a 10 % penalty on the execution gas
    left unused (callGasLimit and the paymaster's postOp limit) when more than 40,000 is left: the charge rule
    v0.7's test of the cap never met. A leaked key with a session capped at 0.01 ether makes every part of that as
    large as the cap lets it (preVerificationGas padded to 3,000,000, a callGasLimit of 700,000 it leaves unused, the priority
    fee equal to maxFeePerGas, so the gas price is the highest the prefund priced) and lands it itself (its own
    beneficiary): the account's balance and deposit together lose no more than the cap, and one wei more of fee
    per gas is ``GasCostTooHigh``."""
    factory = project.KeyscopeAccountFactory.deploy(entry_point_v08, deployer, sender=deployer)
    factory.addStake(86400, value=ETHER, sender=deployer)
    net = Network.from_urls(
        Web3Chain(chain.provider.web3),
        InProcessBundler(entry_point_v08.address, submitter_account),
        module=module.address,
        factory=factory.address,
    )
    assert net.entry_point_version == "0.8"
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    key = SessionKey.generate()
    cap = 10**16
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    session = net.session(owner.grant(key, [policy], max_gas_cost=cap), key)
    mint = function_call(nft, "safeMint(address)", owner.account)
    # the first operation creates the account and enables the session; the attack is the next one (USE mode)
    assert session.send(session.build(mint)).wait().success

    limits = {"verification_gas_limit": 300_000, "call_gas_limit": 700_000, "pre_verification_gas": 3_000_000}
    fee = cap // sum(limits.values())

    def signed(fee_per_gas: int) -> UserOperation:
        op = session.build(mint).replace(
            max_fee_per_gas=fee_per_gas, max_priority_fee_per_gas=fee_per_gas, signature=b"", **limits
        )
        return op.replace(signature=key.sign_hash(net.user_op_hash(op)))

    def holdings() -> int:
        return chain.provider.get_balance(owner.account) + int(entry_point_v08.balanceOf(owner.account))

    before = holdings()
    op = signed(fee)
    entry_point_v08.handleOps([op.pack().as_tuple()], submitter_account.address, sender=submitter_account)
    assert nft.balanceOf(owner.account) == 2
    lost = before - holdings()
    # preVerificationGas and v0.8's penalty on the 600,000 and more gas left unused are charged: near the cap, in it
    assert (3_000_000 + 60_000) * fee < lost <= cap

    with pytest.raises(ContractLogicError) as refused:
        over = signed(fee + 1)
        entry_point_v08.handleOps(
            [over.pack().as_tuple()], submitter_account.address, sender=submitter_account
        )
    assert "AA23" in str(refused.value)
    assert describe_revert(bytes(refused.value.inputs["inner"])).startswith("GasCostTooHigh(")
    assert nft.balanceOf(owner.account) == 2
