"""``CommittedPolicyProbe`` (contracts/test), the prototype whose gas docs/benchmarks.md reports as the floor of the
commitment design, judges what it claims to judge: the gas it costs is the gas of a real check, not of one that
lets anything through. Each case calls its ``validateUserOp`` as the account would (an eth_call from the account's
address, on ape's chain) for an ERC-20 ``transfer(to, amount)`` granted with ``to == recipient`` and
``amount <= limit``."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_bytes
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support import commitment_probe as probe
from support.raw_call import raw_call, revert_bytes

LIMIT = 1000 * 10**18
RECIPIENT = "0x" + "ab" * 20
TOKEN = "0x" + "cd" * 20
HASH = keccak(b"an operation's hash")
KEY = LocalSigner(keccak(b"probe session key"))
TRANSFER = keccak(b"transfer(address,uint256)")[:4]
LESS_THAN_OR_EQUAL = 1
RULES = [probe.rule(0, probe.EQUAL, probe.ADDRESS_TYPE), probe.rule(1, LESS_THAN_OR_EQUAL, 0, LIMIT)]
POLICY = probe.policy(RULES, gas_cap_gwei=5 * 10**7)
SIG_VALIDATION_FAILED = 1


@pytest.fixture(scope="module")
def granted(project, accounts) -> tuple[Any, Any]:
    """The probe, and the account (a funded test account) whose permission it holds."""
    contract = project.CommittedPolicyProbe.deploy(sender=accounts[0])
    account = accounts[2]
    commitment = probe.commitment(POLICY, [int(RECIPIENT, 16)])
    contract.grant(KEY.address, TOKEN, TRANSFER, commitment, sender=account)
    return contract, account


def transfer(to: str = RECIPIENT, amount: int = 1, target: str = TOKEN) -> Call:
    return Call(target, 0, TRANSFER + abi_encode(["address", "uint256"], [to, amount]))


def verdict(
    granted: tuple[Any, str],
    chain: Any,
    call: Call,
    *,
    policy: bytes = POLICY,
    signer: LocalSigner = KEY,
    batch: bool = False,
) -> int | str:
    """The probe's validation data for ``call`` signed by ``signer`` with ``policy``, or its revert data as hex."""
    contract, account = granted[0], granted[1].address
    op = UserOperation(
        sender=account,
        nonce=0,
        call_data=encode_execute([call], batch=batch),
        call_gas_limit=100_000,
        verification_gas_limit=100_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
        signature=signer.sign_hash(HASH) + policy,
    )
    data = contract.validateUserOp.encode_input(op.pack().as_tuple(), HASH)
    try:
        answer = raw_call(chain)(
            {"from": account, "to": contract.address, "data": "0x" + data.hex(), "gas": 1_000_000}
        )
    except Exception as error:
        return revert_bytes(error).hex()
    return int.from_bytes(to_bytes(answer), "big")


def refusal(reason: int) -> str:
    """The probe's revert data for ``reason``, as hex."""
    return (keccak(b"Refused(uint256)")[:4] + reason.to_bytes(32, "big")).hex()


@settings(max_examples=25, deadline=None)
@given(amount=st.integers(min_value=0, max_value=2 * LIMIT))
def test_the_amount_rule_is_judged(granted, chain, amount: int) -> None:
    got = verdict(granted, chain, transfer(amount=amount))
    if amount <= LIMIT:
        assert got == 0
    else:
        assert got == refusal(12)


def test_an_equal_rule_binds_the_call_s_own_word(granted, chain) -> None:
    assert verdict(granted, chain, transfer(to="0x" + "ee" * 20)) == SIG_VALIDATION_FAILED


def test_policy_bytes_other_than_the_committed_ones_fail(granted, chain) -> None:
    raised = probe.policy(
        [RULES[0], probe.rule(1, LESS_THAN_OR_EQUAL, 0, 10 * LIMIT)], gas_cap_gwei=5 * 10**7
    )
    assert verdict(granted, chain, transfer(amount=2 * LIMIT), policy=raised) == SIG_VALIDATION_FAILED
    uncapped = probe.policy(RULES)
    assert verdict(granted, chain, transfer(), policy=uncapped) == SIG_VALIDATION_FAILED


def test_another_key_target_or_mode_fails(granted, chain) -> None:
    other = LocalSigner(keccak(b"another key"))
    assert verdict(granted, chain, transfer(), signer=other) == SIG_VALIDATION_FAILED
    assert verdict(granted, chain, transfer(target="0x" + "ce" * 20)) == SIG_VALIDATION_FAILED
    assert verdict(granted, chain, transfer(), batch=True) == refusal(4)
    assert verdict(granted, chain, transfer(target=granted[1].address)) == refusal(6)


def test_the_gas_cap_is_judged(granted, chain) -> None:
    capped = probe.policy(RULES, gas_cap_gwei=1)  # 1 gwei for the whole operation
    contract, account = granted
    commitment = probe.commitment(capped, [int(RECIPIENT, 16)])
    other_token = "0x" + "cf" * 20
    contract.grant(KEY.address, other_token, TRANSFER, commitment, sender=account)
    assert verdict(granted, chain, transfer(target=other_token), policy=capped) == refusal(13)
