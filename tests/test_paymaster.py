"""Gas sponsorship on ape's py-evm chain, through the real EntryPoint v0.7: the ``SponsorPaymaster`` contract,
the ERC-7677 sponsor service over HTTP, and the SDK sending sponsored session operations with it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ETHER
from keyscope import Network, PaymasterError, Policy, SessionKey, Web3Chain
from keyscope.accounts import create_account_data
from keyscope.eip7702 import sign_authorization
from keyscope.errors import BadInputError, ConfigurationError, TransportError
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.hexutil import ZERO_ADDRESS, keccak, to_address
from keyscope.paymaster import PaymasterClient
from keyscope.rpc import JsonRpcClient
from keyscope.signing import LocalSigner, recover_hash
from keyscope.sponsor import (
    BUDGET_EXHAUSTED,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    NOT_SPONSORED,
    PAYMASTER_DATA_LENGTH,
    Sponsor,
    SponsorServer,
    SponsorshipPolicy,
    SponsorshipRefused,
    chain_clock,
    decode_paymaster_data,
    encode_paymaster_data,
    sign_sponsorship,
    sponsorship_hash,
)
from keyscope.sponsor.paymaster_data import STUB_SIGNATURE
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import AnvilClock, anvil_sessions
from support.raw_call import revert_bytes
from support.sdk import local_network, mint_policy

PM_VERIFICATION_GAS = 60_000
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, target, bundler):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


@pytest.fixture(scope="module")
def sponsor_key():
    return LocalSigner.generate()


def _deploy_paymaster(project, entry_point, deployer, signer, *, deposit=10 * ETHER, stake=ETHER):
    paymaster = project.SponsorPaymaster.deploy(entry_point, deployer, signer, sender=deployer)
    if deposit:
        paymaster.deposit(value=deposit, sender=deployer)
    if stake:
        paymaster.addStake(86_400, value=stake, sender=deployer)
    return paymaster


@pytest.fixture(scope="module")
def paymaster(project, entry_point, deployer, sponsor_key):
    return _deploy_paymaster(project, entry_point, deployer, sponsor_key.address)


@pytest.fixture(scope="module")
def chain_id(chain):
    return int(chain.chain_id)


@dataclass(frozen=True)
class OnAnvil:
    """The paymaster's generated tests' chain: a fresh anvil of the file's own with the session harness (the
    EntryPoint, the factory, the module, the in-process bundler), the paymaster of ``sponsor_key`` (deposit and
    stake as ``paymaster``'s), the demo NFT and the account for the operations meant to be refused, made as on ape's
    chain."""

    chain: AnvilChain
    harness: Any
    paymaster: AnvilContract
    nft: AnvilContract
    sponsored_owner: LocalSigner
    sponsored_account: str

    @property
    def clock(self) -> AnvilClock:
        return AnvilClock(self.chain)


@pytest.fixture(scope="module")
def on_anvil(project, sponsor_key) -> Iterator[OnAnvil]:
    with anvil_chain() as chain:
        deployer = chain.accounts[0]
        harness = anvil_sessions(chain, project).h
        paymaster = chain.deploy(
            project.SponsorPaymaster,
            harness.entry_point.address,
            deployer,
            sponsor_key.address,
            sender=deployer,
        )
        paymaster.deposit.transact(value=10 * ETHER, sender=deployer)
        paymaster.addStake.transact(86_400, value=ETHER, sender=deployer)
        nft = chain.deploy(project.DemoNFT, sender=deployer)
        owner = LocalSigner.generate()
        yield OnAnvil(chain, harness, paymaster, nft, owner, harness.create(owner, salt=7))


@pytest.fixture(scope="module")
def sponsored_owner():
    return LocalSigner.generate()


@pytest.fixture(scope="module")
def sponsored_account(harness, sponsored_owner):
    """A deployed account for the operations that are meant to be refused."""
    return harness.create(sponsored_owner, salt=7)


def _now(chain) -> int:
    return int(chain.blocks.head.timestamp)


def _with_paymaster(op: UserOperation, paymaster: str, *, verification=PM_VERIFICATION_GAS, post_op=0):
    return op.replace(
        paymaster=paymaster,
        paymaster_verification_gas_limit=verification,
        paymaster_post_op_gas_limit=post_op,
        paymaster_data=bytes(PAYMASTER_DATA_LENGTH),
    )


def _sponsor(
    op: UserOperation, key, paymaster: str, chain_id: int, *, valid_until: int, valid_after: int = 0
):
    data = sign_sponsorship(key, op, paymaster, chain_id, valid_until=valid_until, valid_after=valid_after)
    return op.replace(paymaster_data=data)


def _mint_call_data(nft, to: str) -> bytes:
    return encode_execute(Call(nft.address, 0, nft.safeMint.encode_input(to)))


@contextmanager
def _reverts_with(error: str) -> Iterator[None]:
    """The block reverts with the custom error (ape raises it as a class of that name) or message ``error``."""
    with pytest.raises(Exception) as info:
        yield
    assert type(info.value).__name__ == error or error in str(info.value), repr(info.value)


def _deposit(entry_point, paymaster) -> int:
    return int(entry_point.balanceOf(paymaster.address))


# ------------------------------------------------------------------------------------------------------
# The contract
# ------------------------------------------------------------------------------------------------------


def test_zero_eth_account_is_created_and_mints_paid_by_the_deposit(
    harness, entry_point, factory, nft, paymaster, sponsor_key, chain, chain_id
):
    owner = LocalSigner.generate()
    account = harness.counterfactual(owner.address)
    assert chain.provider.get_balance(account) == 0
    op = harness.op(
        account,
        _mint_call_data(nft, account),
        factory=factory.address,
        factory_data=create_account_data(owner.address),
    )
    op = _sponsor(
        _with_paymaster(op, paymaster.address),
        sponsor_key,
        paymaster.address,
        chain_id,
        valid_until=_now(chain) + 600,
    )
    op = harness.sign_owner(op, owner)

    before = _deposit(entry_point, paymaster)
    receipt = harness.submit(op)
    after = _deposit(entry_point, paymaster)

    assert receipt.success, receipt.reason
    assert receipt.paymaster == paymaster.address
    assert before - after == receipt.actual_gas_cost > 0
    assert int(paymaster.getDeposit()) == after
    assert chain.provider.get_balance(account) == 0
    assert int(entry_point.balanceOf(account)) == 0
    assert nft.balanceOf(account) == 1


def test_python_digest_matches_the_contract(on_anvil):
    paymaster, chain_id = on_anvil.paymaster, on_anvil.chain.chain_id

    @SETTINGS
    @given(
        nonce=st.integers(0, 2**256 - 1),
        call_data=st.binary(max_size=200),
        factory_data=st.none() | st.binary(max_size=80),
        gas=st.lists(st.integers(0, 2**128 - 1), min_size=7, max_size=7),
        pre_verification_gas=st.integers(0, 2**256 - 1),
        valid_until=st.integers(0, 2**48 - 1),
        valid_after=st.integers(0, 2**48 - 1),
    )
    def check(nonce, call_data, factory_data, gas, pre_verification_gas, valid_until, valid_after):
        op = UserOperation(
            sender=LocalSigner.generate().address,
            nonce=nonce,
            factory=None if factory_data is None else paymaster.address,
            factory_data=factory_data or b"",
            call_data=call_data,
            call_gas_limit=gas[0],
            verification_gas_limit=gas[1],
            pre_verification_gas=pre_verification_gas,
            max_fee_per_gas=gas[2],
            max_priority_fee_per_gas=gas[3],
            paymaster=paymaster.address,
            paymaster_verification_gas_limit=gas[4],
            paymaster_post_op_gas_limit=gas[5],
            paymaster_data=gas[6].to_bytes(16, "big"),
        )
        expected = sponsorship_hash(
            op, paymaster.address, chain_id, valid_until=valid_until, valid_after=valid_after
        )
        onchain = paymaster.sponsorshipHash(op.pack().as_tuple(), valid_until, valid_after)
        assert bytes(onchain) == expected

    check()


@given(
    valid_until=st.integers(0, 2**48 - 1),
    valid_after=st.integers(0, 2**48 - 1),
    signature=st.binary(min_size=65, max_size=65),
)
def test_paymaster_data_round_trip(valid_until, valid_after, signature):
    data = encode_paymaster_data(valid_until, valid_after, signature)
    assert len(data) == PAYMASTER_DATA_LENGTH
    decoded = decode_paymaster_data(data)
    assert (decoded.valid_until, decoded.valid_after, decoded.signature) == (
        valid_until,
        valid_after,
        signature,
    )


def test_contract_parses_the_layout(paymaster):
    data = encode_paymaster_data(0x0102030405, 0x0A0B0C, b"\x42" * 65)
    pad = bytes.fromhex(paymaster.address[2:]) + (1).to_bytes(16, "big") + (2).to_bytes(16, "big") + data
    valid_until, valid_after, signature = paymaster.parsePaymasterAndData(pad)
    assert (valid_until, valid_after, bytes(signature)) == (0x0102030405, 0x0A0B0C, b"\x42" * 65)


@given(digest=st.binary(min_size=32, max_size=32))
def test_stub_signature_recovers_but_not_to_the_sponsor(digest):
    """Like a real signature, the stub costs an ecrecover that succeeds (same gas), for nobody's key."""
    recovered = recover_hash(digest, STUB_SIGNATURE)
    assert recovered != "0x" + "00" * 20


@pytest.mark.parametrize(
    "case", ["other key", "stub signature", "garbage signature", "other chain", "other paymaster"]
)
def test_a_signature_that_does_not_verify_fails_with_aa34(
    case, harness, sponsored_account, sponsored_owner, nft, paymaster, sponsor_key, chain, chain_id, project,
    entry_point, deployer,
):  # fmt: skip
    until = _now(chain) + 600
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    if case == "other key":
        op = _sponsor(op, LocalSigner.generate(), paymaster.address, chain_id, valid_until=until)
    elif case == "stub signature":
        op = op.replace(paymaster_data=encode_paymaster_data(until, 0, STUB_SIGNATURE))
    elif case == "garbage signature":  # v = 0x99: ecrecover fails; validation must not revert
        op = op.replace(paymaster_data=encode_paymaster_data(until, 0, b"\x01" * 64 + b"\x99"))
    elif case == "other chain":
        op = _sponsor(op, sponsor_key, paymaster.address, chain_id + 1, valid_until=until)
    else:  # signed for another paymaster with the same signer: the EIP-712 domain binds the address
        other = _deploy_paymaster(project, entry_point, deployer, sponsor_key.address, stake=0)
        op = _sponsor(op, sponsor_key, other.address, chain_id, valid_until=until)
    error = harness.rejected(harness.sign_owner(op, sponsored_owner))
    assert error.reason == "AA34", error


def test_validation_returns_failure_and_the_window_instead_of_reverting(
    paymaster, entry_point, sponsored_account, harness, nft, chain_id, sponsor_key, chain
):
    """Called as the EntryPoint would (an eth_call from its address): the packed validation data."""
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    until, after = _now(chain) + 600, 5
    good = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=until, valid_after=after)
    bad = _sponsor(
        op, LocalSigner.generate(), paymaster.address, chain_id, valid_until=until, valid_after=after
    )
    for signed, sig_failed in ((good, 0), (bad, 1)):
        context, validation_data = paymaster.validatePaymasterUserOp.call(
            signed.pack().as_tuple(), b"\x00" * 32, 0, sender=entry_point.address
        )
        assert bytes(context) == b""
        assert validation_data == sig_failed | (until << 160) | (after << 208)


def test_only_the_entry_point_may_validate(paymaster, harness, sponsored_account, nft, accounts):
    op = _with_paymaster(harness.op(sponsored_account, b""), paymaster.address)
    with _reverts_with("PaymasterUnauthorized"):
        paymaster.validatePaymasterUserOp.call(op.pack().as_tuple(), b"\x00" * 32, 0, sender=accounts[5])


@pytest.mark.parametrize("window", ["expired", "not yet valid"])
def test_a_sponsorship_outside_its_window_fails_with_aa32(
    window, harness, sponsored_account, sponsored_owner, nft, paymaster, sponsor_key, chain, chain_id
):
    now = _now(chain)
    until, after = (now - 1, 0) if window == "expired" else (now + 7200, now + 3600)
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=until, valid_after=after)
    error = harness.rejected(harness.sign_owner(op, sponsored_owner))
    assert error.reason == "AA32", error


_TAMPERED_FIELDS = [
    "call_data",
    "call_gas_limit",
    "verification_gas_limit",
    "pre_verification_gas",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "paymaster_verification_gas_limit",
    "paymaster_post_op_gas_limit",
    "valid_until",
    "valid_after",
]


@SETTINGS
@given(field=st.sampled_from(_TAMPERED_FIELDS), delta=st.integers(1, 5_000))
def test_changing_a_signed_field_fails_with_aa34(field, delta, on_anvil, sponsor_key, accounts):
    """The account re-signs what it changed (its own signature is fine): only the sponsor's check fails (on the
    file's anvil)."""
    harness, sponsored_account, sponsored_owner = (
        on_anvil.harness,
        on_anvil.sponsored_account,
        on_anvil.sponsored_owner,
    )
    nft, paymaster, chain_id = on_anvil.nft, on_anvil.paymaster, on_anvil.chain.chain_id
    now = _now(on_anvil.clock)
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account), call_gas=500_000),
        paymaster.address,
    )
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=now + 600, valid_after=now - 600)
    if field == "call_data":
        changed = op.replace(call_data=_mint_call_data(nft, accounts[delta % 10].address))
    elif field in ("valid_until", "valid_after"):
        data = decode_paymaster_data(op.paymaster_data)
        until = data.valid_until + (delta if field == "valid_until" else 0)
        after = data.valid_after - (delta if field == "valid_after" else 0)
        changed = op.replace(paymaster_data=encode_paymaster_data(until, after, data.signature))
    else:
        changed = op.replace(**{field: getattr(op, field) + delta})
    error = harness.rejected(harness.sign_owner(changed, sponsored_owner))
    assert error.reason == "AA34", (field, error)


def test_malformed_paymaster_data_reverts_with_aa33(
    harness, sponsored_account, sponsored_owner, nft, paymaster
):
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    op = op.replace(paymaster_data=bytes(PAYMASTER_DATA_LENGTH - 1))
    error = harness.rejected(harness.sign_owner(op, sponsored_owner))
    assert error.reason == "AA33"
    selector = keccak(b"InvalidPaymasterDataLength(uint256,uint256)")[:4]
    assert error.data == "0x" + (selector + (128).to_bytes(32, "big") + (129).to_bytes(32, "big")).hex()


def test_no_byte_rides_after_the_sponsors_signature(
    harness, sponsored_account, sponsored_owner, nft, paymaster, sponsor_key, chain, chain_id, entry_point
):
    """paymasterAndData is exactly what the sponsor signed: the paymaster, its two gas limits, the window and the
    65-byte signature. A bundler or a session key holding a sponsorship (and re-signing the operation for the
    account) appends bytes after the signature: one byte, a word, the signature a second time. None of them is
    covered by the sponsor's signature, so each is refused before it is read, AA33
    ``InvalidPaymasterDataLength(length, 129)``, the deposit untouched; the operation as signed lands."""
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=_now(chain) + 600)
    signature = decode_paymaster_data(op.paymaster_data).signature
    selector = keccak(b"InvalidPaymasterDataLength(uint256,uint256)")[:4]
    before = _deposit(entry_point, paymaster)
    for suffix in (b"\x00", b"\x01" * 32, signature):
        padded = op.replace(paymaster_data=op.paymaster_data + suffix)
        error = harness.rejected(harness.sign_owner(padded, sponsored_owner))
        assert error.reason == "AA33", (suffix, error)
        length = 52 + PAYMASTER_DATA_LENGTH + len(suffix)
        assert error.data == "0x" + (selector + length.to_bytes(32, "big") + (129).to_bytes(32, "big")).hex()
    assert _deposit(entry_point, paymaster) == before
    receipt = harness.submit(harness.sign_owner(op, sponsored_owner))
    assert receipt.success and receipt.paymaster == paymaster.address, receipt.reason
    assert before - _deposit(entry_point, paymaster) == receipt.actual_gas_cost


def test_owner_functions(
    project, entry_point, deployer, accounts, sponsor_key, chain, harness, nft, chain_id
):
    paymaster = _deploy_paymaster(
        project, entry_point, deployer, sponsor_key.address, deposit=2 * ETHER, stake=0
    )
    stranger = accounts[6]
    owner = LocalSigner.generate()
    account = harness.create(owner, salt=11)

    def sponsored_by(key):
        op = _with_paymaster(harness.op(account, _mint_call_data(nft, account)), paymaster.address)
        return harness.sign_owner(
            _sponsor(op, key, paymaster.address, chain_id, valid_until=_now(chain) + 600), owner
        )

    # the signer: only the owner may change it; the old key's signatures stop working at once
    new_key = LocalSigner.generate()
    with _reverts_with("OwnableUnauthorizedAccount"):
        paymaster.setSigner(new_key.address, sender=stranger)
    with _reverts_with("ZeroSigner"):
        paymaster.setSigner("0x" + "00" * 20, sender=deployer)
    receipt = paymaster.setSigner(new_key.address, sender=deployer)
    assert paymaster.signer() == new_key.address
    assert [(e.previousSigner, e.newSigner) for e in receipt.events] == [
        (sponsor_key.address, new_key.address)
    ]
    assert harness.rejected(sponsored_by(sponsor_key)).reason == "AA34"
    assert harness.submit(sponsored_by(new_key)).success

    # the deposit: anyone funds it, only the owner withdraws
    before = int(paymaster.getDeposit())
    paymaster.deposit(value=ETHER, sender=stranger)
    assert int(paymaster.getDeposit()) == before + ETHER
    with _reverts_with("OwnableUnauthorizedAccount"):
        paymaster.withdrawTo(stranger, 1, sender=stranger)
    balance = chain.provider.get_balance(stranger.address)
    paymaster.withdrawTo(stranger, ETHER // 2, sender=deployer)
    assert chain.provider.get_balance(stranger.address) == balance + ETHER // 2
    assert int(paymaster.getDeposit()) == before + ETHER // 2

    # the stake: add, unlock, wait out the delay, withdraw; all owner-only
    for call, args in (
        (paymaster.addStake, (100,)),
        (paymaster.unlockStake, ()),
        (paymaster.withdrawStake, (stranger,)),
    ):
        with _reverts_with("OwnableUnauthorizedAccount"):
            call(*args, sender=stranger)
    paymaster.addStake(100, value=ETHER, sender=deployer)
    info = entry_point.getDepositInfo(paymaster.address)
    assert info.staked and info.stake == ETHER and info.unstakeDelaySec == 100
    paymaster.unlockStake(sender=deployer)
    assert not entry_point.getDepositInfo(paymaster.address).staked
    with _reverts_with("Stake withdrawal is not due"):
        paymaster.withdrawStake(stranger, sender=deployer)
    chain.pending_timestamp = _now(chain) + 101
    balance = chain.provider.get_balance(stranger.address)
    paymaster.withdrawStake(stranger, sender=deployer)
    assert chain.provider.get_balance(stranger.address) == balance + ETHER
    assert entry_point.getDepositInfo(paymaster.address).stake == 0


def test_validation_gas(
    paymaster, entry_point, harness, sponsored_account, nft, sponsor_key, chain, chain_id, capsys
):
    """The paymaster's validation cost, measured as the EntryPoint calls it (reported, and bounded by the
    stub's limit with room to spare)."""
    web3 = chain.provider.web3
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=_now(chain) + 600)
    data = paymaster.validatePaymasterUserOp.encode_input(op.pack().as_tuple(), b"\x00" * 32, 0)
    total = web3.eth.estimate_gas({"from": entry_point.address, "to": paymaster.address, "data": data.hex()})
    data_bytes = bytes.fromhex(data.hex()[2:] if data.hex().startswith("0x") else data.hex())
    calldata_cost = sum(4 if b == 0 else 16 for b in data_bytes)
    execution = total - 21_000 - calldata_cost
    with capsys.disabled():
        print(
            f"\n[measure] SponsorPaymaster.validatePaymasterUserOp: {execution} gas (cold), stub limit {PM_VERIFICATION_GAS}"
        )
    assert execution < PM_VERIFICATION_GAS // 2


# ------------------------------------------------------------------------------------------------------
# The policy
# ------------------------------------------------------------------------------------------------------

_TARGETS = [LocalSigner.generate().address for _ in range(3)]
_SELECTORS = [bytes.fromhex(s) for s in ("40d097c3", "a9059cbb", "00000000")]


@given(
    allowed=st.dictionaries(
        st.sampled_from(_TARGETS),
        st.just("any") | st.lists(st.sampled_from(_SELECTORS), unique=True),
        max_size=3,
    ),
    calls=st.lists(st.tuples(st.sampled_from(_TARGETS), st.sampled_from(_SELECTORS)), min_size=1, max_size=4),
)
def test_policy_covers_exactly_the_listed_calls(allowed, calls):
    policy = SponsorshipPolicy(targets={t: v if v == "any" else tuple(v) for t, v in allowed.items()})
    encoded = [Call(t, 0, b"" if s == bytes(4) else s + bytes(32)) for t, s in calls]
    op = UserOperation(sender=_TARGETS[0], nonce=0, call_data=encode_execute(encoded, batch=len(encoded) > 1))
    covered = all(t in allowed and (allowed[t] == "any" or s in allowed[t]) for t, s in calls)
    if covered:
        assert [(c.target, c.selector) for c in policy.check(op)] == [(t, s) for t, s in calls]
    else:
        with pytest.raises(SponsorshipRefused) as info:
            policy.check(op)
        assert info.value.code == NOT_SPONSORED
        assert info.value.data["reason"] in ("target", "selector")


def test_policy_file_format(tmp_path):
    target = _TARGETS[0]
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {
                "name": "demo",
                "accounts": [target.lower()],
                "factories": [_TARGETS[1].lower()],
                "delegates": [_TARGETS[2].lower()],
                "targets": {target: ["safeMint(address to)", "0xa9059cbb"], _TARGETS[1]: "any"},
                "budget_wei": "50000000000000000",
                "validity_seconds": 120,
            }
        )
    )
    policy = SponsorshipPolicy.from_file(path)
    assert policy.accounts == (target,)
    assert policy.factories == (_TARGETS[1],)
    assert policy.delegates == (_TARGETS[2],)
    assert policy.targets[target] == (keccak(b"safeMint(address)")[:4], bytes.fromhex("a9059cbb"))
    assert policy.budget_wei == 5 * 10**16
    assert policy.validity_seconds == 120
    assert SponsorshipPolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValueError, match="not a sponsorship policy"):
        SponsorshipPolicy.from_dict({"targets": {target: ["0x1234"]}})
    with pytest.raises(ValueError, match="the sponsorship policy has unknown key 'unknown'"):
        SponsorshipPolicy.from_dict({"targets": "any", "unknown": 1})


def test_policy_0x00000000_covers_calls_without_data_only():
    """A call starting with four zero bytes is not a call without data: the target's fallback would act on it."""
    target = _TARGETS[0]
    policy = SponsorshipPolicy(targets={target: (bytes(4),)})
    plain = UserOperation(sender=target, nonce=0, call_data=encode_execute(Call(target, 1, b"")))
    assert [c.target for c in policy.check(plain)] == [target]
    for data in (bytes(4), bytes(4) + bytes(64)):
        op = UserOperation(sender=target, nonce=0, call_data=encode_execute(Call(target, 0, data)))
        with pytest.raises(SponsorshipRefused, match="covers calls without data only") as info:
            policy.check(op)
        assert info.value.data["reason"] == "selector"


def test_policy_refuses_calldata_it_cannot_read():
    policy = SponsorshipPolicy(targets="any")
    with pytest.raises(SponsorshipRefused, match="not an ERC-7579 execute call"):
        policy.check(UserOperation(sender=_TARGETS[0], nonce=0, call_data=b"\x12\x34\x56\x78"))


class _FlakySigner:
    """The sponsor's key behind a signing service that does not answer while ``failing[name]`` is above 0 (each
    failure counts it down; several signers may share the count, as a restarted service shares its signer's)."""

    def __init__(self, key: LocalSigner, failing: dict[str, int], name: str) -> None:
        self.address = key.address
        self._key, self._failing, self._name = key, failing, name

    def sign_hash(self, digest: bytes) -> bytes:
        if self._failing[self._name]:
            self._failing[self._name] -= 1
            raise TransportError("the signing service did not answer", url="http://kms")
        return self._key.sign_hash(digest)

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        raise AssertionError("the sponsor signs digests only")


def _calling(sender: str, target: str, data: bytes) -> UserOperation:
    """An estimated operation of ``sender`` making one call to ``target``, ready for a sponsor."""
    return UserOperation(
        sender=sender,
        nonce=0,
        call_data=encode_execute(Call(target, 0, data)),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )


def test_the_sponsor_signs_no_eip7702_init_call(paymaster, sponsor_key, chain_id):
    """On EntryPoint v0.8 an initCode of the ``0x7702`` marker followed by data makes the SenderCreator call the
    account with that data before validation: work the policy, which judges the callData, never sees (a fallback
    handler's, another vendor's init function). The sponsor refuses it, spelled ``0x7702`` or as the 20-byte
    marker address; the bare marker (an EIP-7702 account's ordinary first operation) is sponsored."""
    target = _TARGETS[0]
    sponsor = Sponsor(
        paymaster=paymaster.address,
        signer=sponsor_key,
        chain_id=chain_id,
        policy=SponsorshipPolicy(targets={target: ("0x12345678",)}),
    )
    eoa_key = LocalSigner.generate()
    eoa = eoa_key.address
    covered = _calling(eoa, target, bytes.fromhex("12345678")).replace(
        factory="0x7702", eip7702_auth=sign_authorization(eoa_key, chain_id, _TARGETS[1], 0)
    )
    assert decode_paymaster_data(bytes.fromhex(sponsor.data(covered)["paymasterData"][2:]))
    init_call = keccak(b"anything(uint256)")[:4] + bytes(32)
    spelled = UserOperation.from_rpc(
        {**covered.to_rpc(), "factory": "0x7702" + "0" * 36, "factoryData": "0x" + init_call.hex()}
    )
    for op in (covered.replace(factory_data=init_call), spelled):
        reserved = sponsor.ledger.reserved(eoa)
        for ask in (sponsor.stub_data, sponsor.data):
            with pytest.raises(SponsorshipRefused, match="carries an EIP-7702 init call of 36 bytes") as info:
                ask(op)
            assert info.value.code == NOT_SPONSORED
            assert info.value.data == {"reason": "initCall", "account": eoa, "length": 36}
        assert sponsor.ledger.reserved(eoa) == reserved


def test_the_sponsor_signs_an_eip7702_operation_for_the_listed_delegate_its_authorization_names(
    paymaster, sponsor_key, chain_id
):
    """An EOA's delegating operation (factory ``0x7702``) is signed only with the authorization it lands with, to
    a delegate the policy lists, and the signature covers that delegate (the paymaster hashes the one the sender's
    code names): one without an authorization, or an authorization on an operation without the marker (which would
    bind nothing), or one to unlisted code or to the zero address (which clears the code) is refused before anything
    is reserved."""
    target, listed, other = _TARGETS
    sponsor = Sponsor(
        paymaster=paymaster.address,
        signer=sponsor_key,
        chain_id=chain_id,
        policy=SponsorshipPolicy(delegates=(listed,), targets={target: ("0x12345678",)}),
    )
    eoa_key = LocalSigner.generate()
    eoa = eoa_key.address
    plain = _calling(eoa, target, bytes.fromhex("12345678"))
    to_listed = sign_authorization(eoa_key, chain_id, listed, 0)
    refused = {
        "eip7702Auth": (
            plain.replace(factory="0x7702"),
            "is an EIP-7702 account's (factory 0x7702) but carries no eip7702Auth",
            {"reason": "eip7702Auth", "account": eoa},
        ),
        "unmarked": (
            plain.replace(eip7702_auth=to_listed),
            f"carries an EIP-7702 authorization (eip7702Auth, delegate {listed}) but no factory 0x7702",
            {"reason": "eip7702Auth", "account": eoa, "delegate": listed},
        ),
        "delegate": (
            plain.replace(factory="0x7702", eip7702_auth=sign_authorization(eoa_key, chain_id, other, 0)),
            f"delegates {eoa} to {other} (EIP-7702), which the sponsorship policy does not list: it "
            f"sponsors delegation to {listed}",
            {"reason": "delegate", "account": eoa, "delegate": other},
        ),
        "zero delegate": (  # what an EOA signs to clear its code: no delegate for the sponsorship to cover
            plain.replace(
                factory="0x7702", eip7702_auth=sign_authorization(eoa_key, chain_id, ZERO_ADDRESS, 0)
            ),
            f"delegates {eoa} to the zero address, which clears the EOA's code",
            {"reason": "delegate", "account": eoa, "delegate": ZERO_ADDRESS},
        ),
    }
    for op, message, data in refused.values():
        for ask in (sponsor.stub_data, sponsor.data):
            with pytest.raises(SponsorshipRefused, match=re.escape(message)) as info:
                ask(op)
            assert info.value.code == NOT_SPONSORED
            assert info.value.data == data
    assert sponsor.ledger.reserved(eoa) == 0

    op = plain.replace(factory="0x7702", eip7702_auth=to_listed)
    answer = sponsor.data(op)
    signed = op.replace(
        paymaster=answer["paymaster"],
        paymaster_verification_gas_limit=int(answer["paymasterVerificationGasLimit"], 16),
        paymaster_post_op_gas_limit=int(answer["paymasterPostOpGasLimit"], 16),
        paymaster_data=bytes.fromhex(answer["paymasterData"][2:]),
    )
    fields = decode_paymaster_data(signed.paymaster_data)
    window = {"valid_until": fields.valid_until, "valid_after": fields.valid_after}
    for delegate, signer in ((listed, sponsor_key.address), (other, None)):
        digest = sponsorship_hash(signed, paymaster.address, chain_id, **window, eip7702_delegate=delegate)
        assert (recover_hash(digest, fields.signature) == sponsor_key.address) is (signer is not None)
    assert sponsorship_hash(signed, paymaster.address, chain_id, **window) == sponsorship_hash(
        signed, paymaster.address, chain_id, **window, eip7702_delegate=listed
    )  # the authorization's delegate unless one is named


def test_the_contract_hashes_the_eip7702_marker_only_for_a_delegated_sender(paymaster, chain_id):
    """``sponsorshipHash`` of an operation marked ``0x7702`` reads the delegate from the sender's code: a sender
    that delegates nowhere (ape's chain has no EIP-7702) is refused with ``SenderNotEip7702Delegated``, and the
    Python digest refuses to guess the delegate; a factory whose address merely starts with 7702 is hashed as
    any initCode is."""
    sender = LocalSigner.generate().address
    op = _with_paymaster(_calling(sender, _TARGETS[0], b""), paymaster.address)
    for init_code in (bytes.fromhex("7702"), bytes.fromhex("7702").ljust(20, b"\0") + b"\x01"):
        packed = op.pack().model_copy(update={"init_code": init_code})
        with pytest.raises(Exception) as refused:
            paymaster.sponsorshipHash(packed.as_tuple(), 0, 0)
        # ape names the error only when eth-tester hands it the revert data as hex, which depends on the bytes of
        # the (random) sender: the data itself is the error and its argument
        assert type(refused.value).__name__ == "SenderNotEip7702Delegated" or revert_bytes(refused.value) == (
            keccak(b"SenderNotEip7702Delegated(address)")[:4] + bytes(12) + bytes.fromhex(sender[2:])
        ), repr(refused.value)
        with pytest.raises(BadInputError, match="give eip7702_delegate"):
            sponsorship_hash(packed, paymaster.address, chain_id, valid_until=0, valid_after=0)
    factory = bytes.fromhex("7702") + bytes(17) + b"\x01"
    packed = op.pack().model_copy(update={"init_code": factory + b"\x02"})
    assert bytes(paymaster.sponsorshipHash(packed.as_tuple(), 0, 0)) == sponsorship_hash(
        packed, paymaster.address, chain_id, valid_until=0, valid_after=0
    )


def test_the_sponsor_pays_for_creation_by_listed_factories_only(paymaster, sponsor_key, chain_id):
    """The policy reads callData as an ERC-7579 ``execute``, which means what it says only on an account that
    implements it so. A policy listing ``factories`` signs a first operation (``factory`` and ``factoryData``) only
    when a listed factory creates the account: another factory's account is refused, in both methods, before
    anything is reserved; an existing account's operation and the listed factory's are signed."""
    target, listed, other = _TARGETS[0], _TARGETS[1], LocalSigner.generate().address
    sponsor = Sponsor(
        paymaster=paymaster.address,
        signer=sponsor_key,
        chain_id=chain_id,
        policy=SponsorshipPolicy(factories=(listed.lower(),), targets={target: ("0x12345678",)}),
    )
    assert sponsor.policy.factories == (listed,)
    account = LocalSigner.generate().address
    existing = _calling(account, target, bytes.fromhex("12345678"))
    for covered in (existing, existing.replace(factory=listed, factory_data=b"\x01" * 36)):
        assert decode_paymaster_data(bytes.fromhex(sponsor.data(covered)["paymasterData"][2:]))
    foreign = existing.replace(factory=other, factory_data=b"\x01" * 36)
    reserved = sponsor.ledger.reserved(account)
    for ask in (sponsor.stub_data, sponsor.data):
        with pytest.raises(
            SponsorshipRefused, match=f"through factory {other}, which the sponsorship policy"
        ) as info:
            ask(foreign)
        assert info.value.code == NOT_SPONSORED
        assert info.value.data == {"reason": "factory", "account": account, "factory": other}
        assert f"accounts created by {listed}" in str(info.value)
    assert sponsor.ledger.reserved(account) == reserved
    # none listed: no account's creation; the default, "any": every factory
    with pytest.raises(SponsorshipRefused, match="it sponsors no account's creation"):
        SponsorshipPolicy(factories=(), targets="any").check(foreign)
    assert SponsorshipPolicy(targets="any").check(foreign)


def test_a_sponsorship_pays_for_its_own_sender_and_nonce_once(
    harness, sponsored_account, sponsored_owner, nft, paymaster, sponsor_key, chain, chain_id, entry_point
):
    """A bundler holding a signed sponsorship (and the account's key, to re-sign) moves it to another account of
    the same owner, or to a fresh nonce lane of the account, or lands it twice: the sponsor pays once, for the
    operation it signed."""
    other = harness.create(sponsored_owner, salt=8)
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=_now(chain) + 600)
    before = _deposit(entry_point, paymaster)
    moved = (
        op.replace(sender=other, nonce=harness.nonce(other, 0), call_data=_mint_call_data(nft, other)),
        op.replace(sender=other, nonce=harness.nonce(other, 0)),
        op.replace(nonce=harness.nonce(sponsored_account, 1)),
    )
    for changed in moved:
        error = harness.rejected(harness.sign_owner(changed, sponsored_owner))
        assert error.reason == "AA34", error
    signed = harness.sign_owner(op, sponsored_owner)
    receipt = harness.submit(signed)
    assert receipt.success, receipt.reason
    assert before - _deposit(entry_point, paymaster) == receipt.actual_gas_cost
    error = harness.rejected(signed)
    assert error.reason == "AA25", error
    assert before - _deposit(entry_point, paymaster) == receipt.actual_gas_cost


def test_a_sponsorship_holds_for_its_own_paymaster_on_its_own_chain(
    project,
    deployer,
    harness,
    sponsored_account,
    sponsored_owner,
    nft,
    paymaster,
    sponsor_key,
    chain,
    chain_id,
    entry_point,
):
    """The sponsor runs a second paymaster with the same key (another dapp's budget, another EntryPoint's
    deployment). A session key (or a bundler) holding a sponsorship signed for the first moves it, unchanged, to the
    second, hoping the deposit it drains is the one nobody meant to spend; or presents a sponsorship the sponsor
    signed for the same operation on another chain (the same account address, the paymaster at the same address
    there). The paymaster's EIP-712 domain holds its address and the chain id, so each is refused, AA34, and
    neither deposit moves; the sponsorship lands only through the paymaster and on the chain it was signed for."""
    second = _deploy_paymaster(project, entry_point, deployer, sponsor_key.address, deposit=ETHER)
    assert second.signer() == paymaster.signer() == sponsor_key.address
    op = _with_paymaster(
        harness.op(sponsored_account, _mint_call_data(nft, sponsored_account)), paymaster.address
    )
    until = _now(chain) + 600
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=until)
    first_before, second_before = _deposit(entry_point, paymaster), _deposit(entry_point, second)
    moved = op.replace(paymaster=second.address)
    assert moved.paymaster_data == op.paymaster_data
    other_chain = _sponsor(op, sponsor_key, paymaster.address, chain_id + 1, valid_until=until)
    for changed in (moved, other_chain):
        error = harness.rejected(harness.sign_owner(changed, sponsored_owner))
        assert error.reason == "AA34", error
    assert (_deposit(entry_point, paymaster), _deposit(entry_point, second)) == (first_before, second_before)
    receipt = harness.submit(harness.sign_owner(op, sponsored_owner))
    assert receipt.success and receipt.paymaster == paymaster.address, receipt.reason
    assert first_before - _deposit(entry_point, paymaster) == receipt.actual_gas_cost
    assert _deposit(entry_point, second) == second_before


def test_a_failing_sponsored_operation_costs_at_most_what_the_sponsor_signed(
    harness, sponsored_account, sponsored_owner, nft, paymaster, sponsor_key, chain, chain_id, entry_point
):
    """Draining the deposit through failing operations: an operation whose execution reverts, its callGasLimit
    left unused (the 10 % penalty), preVerificationGas padded and the priority fee at maxFeePerGas, takes from
    the deposit at most its prefund, which is what the sponsor reserved before signing; an operation refused in
    validation (here by the account) takes nothing, and the paymaster has no postOp to be made to fail."""
    op = _with_paymaster(
        harness.op(
            sponsored_account,
            encode_execute(Call(nft.address, 0, bytes.fromhex("deadbeef"))),
            call_gas=3_000_000,
        ),
        paymaster.address,
    ).replace(pre_verification_gas=400_000, max_priority_fee_per_gas=2 * 10**9)
    op = _sponsor(op, sponsor_key, paymaster.address, chain_id, valid_until=_now(chain) + 600)
    before = _deposit(entry_point, paymaster)
    error = harness.rejected(op.replace(signature=LocalSigner.generate().sign_hash(harness.hash(op))))
    assert error.reason == "AA24", error
    assert _deposit(entry_point, paymaster) == before
    receipt = harness.submit(harness.sign_owner(op, sponsored_owner))
    assert not receipt.success
    spent = before - _deposit(entry_point, paymaster)
    assert spent == receipt.actual_gas_cost
    assert spent <= required_prefund(op)
    # the unused callGasLimit's penalty was charged, and still within the prefund
    assert spent > (op.pre_verification_gas + op.call_gas_limit // 10) * 10**9


# ------------------------------------------------------------------------------------------------------
# The service over HTTP
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def serve(paymaster, sponsor_key, entry_point, chain_id, chain):
    """Start a sponsor service for the module's paymaster with a given policy; stopped after the test."""
    servers: list[SponsorServer] = []

    def start(policy: SponsorshipPolicy, **options: Any) -> SponsorServer:
        sponsor = Sponsor(
            paymaster=paymaster.address,
            signer=sponsor_key,
            chain_id=chain_id,
            entry_point=entry_point.address,
            policy=policy,
            clock=chain_clock(Web3Chain(chain.provider.web3)),
            **options,
        )
        server = SponsorServer(sponsor).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def sponsored_net(chain, bundler, module, entry_point, factory):
    def make(url: str | None) -> Network:
        return local_network(
            chain, bundler, module, entry_point, factory, paymaster=PaymasterClient(url) if url else None
        )

    return make


def test_sdk_session_operation_from_a_zero_eth_account_is_sponsored(
    nft, paymaster, entry_point, chain, serve, sponsored_net
):
    server = serve(SponsorshipPolicy(name="test sponsor", targets={nft.address: ["safeMint(address)"]}))
    net = sponsored_net(server.url)
    owner = net.owner(LocalSigner.generate())  # never funded
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    session = net.session(grant, key)

    before = _deposit(entry_point, paymaster)
    pending = session.execute(nft, "safeMint(address)", owner.account)
    receipt = pending.wait()
    after = _deposit(entry_point, paymaster)

    assert receipt.success and receipt.paymaster == paymaster.address
    assert owner.is_deployed() and nft.balanceOf(owner.account) == 1
    assert chain.provider.get_balance(owner.account) == 0
    assert before - after == receipt.actual_gas_cost
    # what was sent is what the sponsor signed: its window and its own post-op gas limit
    op = pending.op
    assert op.paymaster == paymaster.address and op.paymaster_post_op_gas_limit == 0
    assert decode_paymaster_data(op.paymaster_data).valid_until > _now(chain)
    reserved = server.sponsor.ledger.reserved(owner.account)
    assert reserved >= receipt.actual_gas_cost

    # the second operation (plain session signature) is sponsored too
    receipt = session.execute(nft, "safeMint(address)", owner.account).wait()
    assert receipt.success and nft.balanceOf(owner.account) == 2
    assert server.sponsor.ledger.reserved(owner.account) > reserved


def test_sdk_calls_outside_the_sponsors_policy_are_refused(nft, target, accounts, serve, sponsored_net):
    server = serve(SponsorshipPolicy(targets={nft.address: ["safeMint(address)"]}))
    net = sponsored_net(server.url)
    owner = net.owner(LocalSigner.generate())
    key = SessionKey.generate()
    permissions = [
        mint_policy(nft, owner.account),
        Policy.call(nft, "mintBatch(address to, uint256 count)"),
        Policy.call(target, "other(uint256 amount)"),
    ]
    session = net.session(owner.grant(key, permissions, valid_for=3600), key)

    with pytest.raises(PaymasterError) as info:
        session.execute(nft, "mintBatch(address,uint256)", owner.account, 2)
    assert info.value.code == NOT_SPONSORED
    assert "selector 0x" in str(info.value) and "is not in the sponsorship policy" in str(info.value)
    assert info.value.method == "pm_getPaymasterStubData"

    with pytest.raises(PaymasterError, match=f"target {target.address} .* is not in the sponsorship policy"):
        session.execute(target, "other(uint256)", 1)
    assert not owner.is_deployed()  # nothing was sent

    other = serve(SponsorshipPolicy(accounts=[accounts[3].address], targets="any"))
    session = sponsored_net(other.url).session(session.grant, key)
    with pytest.raises(PaymasterError, match=f"account {owner.account} is not sponsored") as info:
        session.execute(nft, "safeMint(address)", owner.account)
    assert info.value.code == NOT_SPONSORED


def test_sdk_without_a_paymaster_still_pays_itself(sponsored_net, nft, harness, chain):
    net = sponsored_net(None)
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    key = SessionKey.generate()
    session = net.session(owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600), key)
    receipt = session.execute(nft, "safeMint(address)", owner.account).wait()
    assert receipt.success and receipt.paymaster is None
    assert (
        chain.provider.get_balance(owner.account) + int(harness.entry_point.balanceOf(owner.account)) < ETHER
    )


def _priced_op(sender: str, nft) -> UserOperation:
    return UserOperation(
        sender=sender,
        nonce=0,
        call_data=_mint_call_data(nft, sender),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )


def test_budget_is_reserved_per_account_and_refused_when_spent(serve, nft, entry_point, chain_id, paymaster):
    op = _priced_op(LocalSigner.generate().address, nft)
    cost = (100_000 + 200_000 + 50_000 + PM_VERIFICATION_GAS) * 10**9
    server = serve(SponsorshipPolicy(targets="any", budget_wei=cost))
    client = PaymasterClient(server.url)
    fields = client.data(
        op.replace(paymaster_verification_gas_limit=PM_VERIFICATION_GAS), entry_point.address, chain_id
    )
    assert fields.paymaster == paymaster.address
    assert server.sponsor.ledger.reserved(op.sender) == cost
    for ask in (client.stub_data, client.data):
        with pytest.raises(PaymasterError) as info:
            ask(op, entry_point.address, chain_id)
        assert info.value.code == BUDGET_EXHAUSTED
        assert f"budget exhausted: account {op.sender} has 0 wei left of its {cost} wei" in str(info.value)
        # and what to do: it does not refill while the service runs; unsponsored, or the operator raises it
        assert "does not refill while the sponsor runs (waiting does not help)" in str(info.value)
        assert "send this operation unsponsored" in str(info.value)
        assert "raise budget_wei in the policy and restart the service" in str(info.value)
        assert "at most" not in str(info.value)  # nothing fits: no cheaper operation is suggested
    # another account has its own budget
    other = _priced_op(LocalSigner.generate().address, nft)
    assert client.stub_data(other, entry_point.address, chain_id).isFinal is False

    small = serve(SponsorshipPolicy(targets="any", budget_wei=cost - 1))
    with pytest.raises(PaymasterError, match=f"has {cost - 1} wei left .* may cost up to {cost} wei") as info:
        PaymasterClient(small.url).data(op, entry_point.address, chain_id)
    # a cheaper operation still fits in what is left: said, with the amount
    assert f"send an operation whose maximum cost is at most {cost - 1} wei" in str(info.value)
    assert "raise budget_wei" in str(info.value)


def test_a_request_that_ends_without_a_signature_keeps_no_budget(paymaster, sponsor_key, chain_id):
    """Attack 179. ``pm_getPaymasterData`` reserves the operation's maximum cost, reads its clock for the window
    (``chain_clock`` asks the node for its latest block) and signs. A clock that cannot be read (the node down, a
    hosted node's rate limit) or a signer that fails ends the request with no signature: what it reserved is given
    back. Kept, each such failure would spend an operation's cost of the account's budget and of the total for
    good (until the service restarts), with nothing signed: a few failed requests during a node's outage, and the
    sponsor refuses every account."""
    failing = {"clock": 1, "signer": 1}

    def clock() -> float:
        if failing["clock"]:
            failing["clock"] -= 1
            raise TransportError("the node did not answer", url="http://node", method="eth_getBlockByNumber")
        return 1_000_000.0

    cost = (100_000 + 200_000 + 50_000 + PM_VERIFICATION_GAS) * 10**9
    sponsor = Sponsor(
        paymaster=paymaster.address,
        signer=_FlakySigner(sponsor_key, failing, "signer"),
        chain_id=chain_id,
        policy=SponsorshipPolicy(targets="any", budget_wei=cost, total_budget_wei=cost),
        clock=clock,
    )
    op = _calling(LocalSigner.generate().address, _TARGETS[0], bytes.fromhex("12345678"))
    for failure in ("the node did not answer", "the signing service did not answer"):
        with pytest.raises(TransportError, match=failure):
            sponsor.data(op)
        assert (sponsor.ledger.reserved(op.sender), sponsor.ledger.reserved_total()) == (0, 0), failure
    assert failing == {"clock": 0, "signer": 0}
    signed = decode_paymaster_data(bytes.fromhex(sponsor.data(op)["paymasterData"][2:]))
    assert signed.valid_until == 1_000_000 + sponsor.policy.validity_seconds
    assert (sponsor.ledger.reserved(op.sender), sponsor.ledger.reserved_total()) == (cost, cost)
    with pytest.raises(SponsorshipRefused) as info:
        sponsor.data(op)
    assert info.value.code == BUDGET_EXHAUSTED


def test_concurrent_requests_never_overspend_the_budget(nft, entry_point, chain_id, paymaster, serve):
    op = _priced_op(LocalSigner.generate().address, nft).replace(
        paymaster=paymaster.address, paymaster_verification_gas_limit=PM_VERIFICATION_GAS
    )
    cost = (100_000 + 200_000 + 50_000 + PM_VERIFICATION_GAS) * 10**9
    server = serve(SponsorshipPolicy(targets="any", budget_wei=5 * cost))

    def ask(_: int) -> str:
        try:
            PaymasterClient(server.url).data(op, entry_point.address, chain_id)
        except PaymasterError as error:
            assert error.code == BUDGET_EXHAUSTED
            return "refused"
        return "signed"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(ask, range(24)))
    assert outcomes.count("signed") == 5 and outcomes.count("refused") == 19
    assert server.sponsor.ledger.reserved(op.sender) == 5 * cost


def test_stub_and_final_fields(serve, nft, entry_point, chain_id, paymaster, sponsor_key, chain):
    server = serve(
        SponsorshipPolicy(name="Demo sponsor", targets="any", validity_seconds=300), valid_after_slack=60
    )
    op = _priced_op(LocalSigner.generate().address, nft)
    with JsonRpcClient(server.url) as rpc:
        stub = rpc.request("pm_getPaymasterStubData", [op.to_rpc(), entry_point.address, hex(chain_id), {}])
        final = rpc.request(
            "pm_getPaymasterData",
            [op.replace(paymaster=paymaster.address, paymaster_verification_gas_limit=70_000,
                        paymaster_post_op_gas_limit=99).to_rpc(),
             entry_point.address.lower(), chain_id],
        )  # fmt: skip
    now = _now(chain)
    assert stub["paymaster"] == paymaster.address and stub["isFinal"] is False
    assert stub["sponsor"] == {"name": "Demo sponsor"}
    assert int(stub["paymasterVerificationGasLimit"], 16) == PM_VERIFICATION_GAS
    assert int(stub["paymasterPostOpGasLimit"], 16) == 0
    stub_data = decode_paymaster_data(bytes.fromhex(stub["paymasterData"][2:]))
    assert stub_data.signature == STUB_SIGNATURE
    assert now + 300 <= stub_data.valid_until <= now + 330

    # the final data signs the operation's verification limit and the sponsor's own post-op limit
    assert set(final) == {
        "paymaster",
        "paymasterData",
        "paymasterVerificationGasLimit",
        "paymasterPostOpGasLimit",
    }
    assert (int(final["paymasterVerificationGasLimit"], 16), int(final["paymasterPostOpGasLimit"], 16)) == (
        70_000,
        0,
    )
    data = decode_paymaster_data(bytes.fromhex(final["paymasterData"][2:]))
    assert data.valid_after == data.valid_until - 360
    signed = op.replace(
        paymaster=paymaster.address, paymaster_verification_gas_limit=70_000, paymaster_post_op_gas_limit=0
    )
    digest = sponsorship_hash(
        signed, paymaster.address, chain_id, valid_until=data.valid_until, valid_after=data.valid_after
    )
    assert recover_hash(digest, data.signature) == sponsor_key.address


def test_wrong_entry_point_chain_or_params_are_refused(serve, nft, entry_point, chain_id):
    server = serve(SponsorshipPolicy(targets="any"))
    client = PaymasterClient(server.url)
    op = _priced_op(LocalSigner.generate().address, nft)
    with pytest.raises(
        PaymasterError, match="EntryPoint 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108 is not supported"
    ) as info:
        client.stub_data(op, "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108", chain_id)
    assert info.value.code == INVALID_PARAMS
    with pytest.raises(
        PaymasterError,
        match=f"chain id {chain_id + 1} is not supported: this sponsor pays on chain {chain_id}",
    ):
        client.data(op, entry_point.address, chain_id + 1)
    with pytest.raises(PaymasterError, match="verificationGasLimit is 0"):
        client.data(op.replace(verification_gas_limit=0), entry_point.address, chain_id)

    with JsonRpcClient(server.url) as rpc:
        for params, message in (
            ([op.to_rpc(), entry_point.address], "takes \\[userOp, entryPoint, chainId, context\\]"),
            ([{**op.to_rpc(), "initCode": "0x12"}, entry_point.address, hex(chain_id)], "has initCode"),
            ([{"nonce": "0x0"}, entry_point.address, hex(chain_id)], "bad userOp"),
            ([op.to_rpc(), entry_point.address, hex(chain_id), "ctx"], "context must be an object"),
        ):
            with pytest.raises(Exception, match=message) as info:
                rpc.request("pm_getPaymasterStubData", params)
            assert info.value.code == INVALID_PARAMS
        with pytest.raises(Exception, match="is not served here") as info:
            rpc.request("eth_sendUserOperation", [])
        assert info.value.code == METHOD_NOT_FOUND


def test_http_surface(serve):
    server = serve(SponsorshipPolicy(targets="any"))
    assert server.url.startswith("http://127.0.0.1:")
    with httpx.Client() as http:
        json_type = {"Content-Type": "application/json"}
        assert http.post(server.url, content=b"{nope", headers=json_type).json()["error"]["code"] == -32700
        # a body without its JSON type is one a page of another site can post without a CORS preflight: refused
        untyped = http.post(server.url, content=b"{nope")
        assert untyped.status_code == 415 and untyped.json()["error"]["code"] == -32600
        assert http.post(server.url, json={"id": 1}).json()["error"]["code"] == -32600
        batch = http.post(
            server.url,
            json=[{"jsonrpc": "2.0", "id": 1, "method": "x"}, {"jsonrpc": "2.0", "method": "notification"}],
        ).json()
        assert [r["id"] for r in batch] == [1] and batch[0]["error"]["code"] == METHOD_NOT_FOUND
        assert http.get(server.url).status_code == 405
    server.stop()
    server.stop()
    with pytest.raises(Exception, match="not running"):
        _ = server.url


def test_sponsor_refuses_bad_options(paymaster, sponsor_key):
    with pytest.raises(ValueError, match="valid_after_slack"):
        Sponsor(
            paymaster=paymaster.address,
            signer=sponsor_key,
            chain_id=1,
            policy=SponsorshipPolicy(targets="any"),
            valid_after_slack=-1,
        )
    assert to_address(paymaster.address) == paymaster.address


def test_the_sponsor_takes_its_key_in_any_form_the_sdk_takes(paymaster, sponsor_key, chain_id):
    """``Sponsor(signer=...)`` as docs/sponsorship.md writes it, with the key as a ``0x…`` hex string: the
    sponsor signs exactly as with the signer object; an address in its place is refused at construction."""

    def sponsor(signer: Any) -> Sponsor:
        return Sponsor(
            paymaster=paymaster.address,
            signer=signer,
            chain_id=chain_id,
            policy=SponsorshipPolicy(targets="any", total_budget_wei=ETHER),
            clock=lambda: 1_000_000,
        )

    op = UserOperation(
        sender=LocalSigner.generate().address,
        nonce=0,
        call_data=encode_execute(Call(_TARGETS[0], 0, bytes.fromhex("12345678"))),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )
    from_hex = sponsor("0x" + sponsor_key.private_key.hex())
    assert from_hex.signer.address == sponsor_key.address
    assert sponsor_key.address in repr(from_hex)
    assert from_hex.data(op) == sponsor(sponsor_key).data(op)
    with pytest.raises(BadInputError, match=r"the sponsor's key .* is an address, not a key"):
        sponsor(sponsor_key.address)


# ------------------------------------------------------------------------------------------------------
# Attack 90: fresh accounts, each with a full budget, and a padded fee paid to the stranger's own bundle
# ------------------------------------------------------------------------------------------------------


def _stranger_op(harness, factory, nft, paymaster: str, owner: LocalSigner, budget: int) -> UserOperation:
    """A fresh account's first operation (a covered mint), its preVerificationGas padded so that its maximum
    cost is exactly ``budget``: the EntryPoint charges preVerificationGas in full, whatever ran."""
    account = harness.counterfactual(owner.address)
    op = harness.op(
        account,
        _mint_call_data(nft, account),
        factory=factory.address,
        factory_data=create_account_data(owner.address),
        verification_gas=400_000,
        call_gas=200_000,
    )
    fee = 50 * 10**9
    op = op.replace(max_fee_per_gas=fee, max_priority_fee_per_gas=fee)
    gas = 400_000 + 200_000 + PM_VERIFICATION_GAS
    return _with_paymaster(op.replace(pre_verification_gas=budget // fee - gas), paymaster)


def test_fresh_accounts_cannot_draw_more_than_the_total_budget_from_the_deposit(
    serve, harness, factory, nft, entry_point, chain_id, paymaster, accounts, chain
):
    """Attack 90. The policy sponsors ``"any"`` account with a per-account budget. A stranger makes fresh
    accounts through the public factory, asks the sponsor to sign each one's first operation (a covered mint)
    with preVerificationGas and the priority fee padded up to that budget, and submits them in their own
    ``handleOps`` with themselves as beneficiary: the deposit pays them each account's budget. A per-account
    budget bounds nothing here; the policy's ``total_budget_wei`` bounds the whole."""
    budget = ETHER // 10
    server = serve(
        SponsorshipPolicy(
            accounts="any",
            targets={nft.address: ["safeMint(address)"]},
            budget_wei=budget,
            total_budget_wei=2 * budget,
        )
    )
    client = PaymasterClient(server.url)
    stranger = accounts[9]
    signed: list[UserOperation] = []
    for _ in range(2):
        owner = LocalSigner.generate()
        op = _stranger_op(harness, factory, nft, paymaster.address, owner, budget)
        op = client.data(op, entry_point.address, chain_id).apply(op)
        signed.append(harness.sign_owner(op, owner))

    deposit_before = _deposit(entry_point, paymaster)
    balance_before = chain.provider.get_balance(stranger.address)
    receipt = entry_point.handleOps(
        [op.pack().as_tuple() for op in signed], stranger.address, sender=stranger
    )
    paid = deposit_before - _deposit(entry_point, paymaster)
    gained = chain.provider.get_balance(stranger.address) - balance_before
    # the stranger's bundle is paid most of each budget and profits well beyond its own transaction fee
    assert paid > budget, paid
    assert gained > paid // 2, (gained, paid, receipt.gas_used)

    # a third fresh account: its own budget is untouched, but the total is spent
    third = _stranger_op(harness, factory, nft, paymaster.address, LocalSigner.generate(), budget)
    for ask in (client.stub_data, client.data):
        with pytest.raises(PaymasterError) as info:
            ask(third, entry_point.address, chain_id)
        assert info.value.code == BUDGET_EXHAUSTED
        assert info.value.data["reason"] == "totalBudget"
        assert "the sponsor has 0 wei left of its" in str(info.value)
        assert "raise total_budget_wei in the policy and restart the service" in str(info.value)
        assert "does not refill while the sponsor runs" in str(info.value)
    assert server.sponsor.ledger.reserved(third.sender) == 0
    assert server.sponsor.ledger.reserved_total() == 2 * budget


# ------------------------------------------------------------------------------------------------------
# Attack 221: a restart forgets the reservations of signatures that are still valid
# ------------------------------------------------------------------------------------------------------


def test_a_restart_does_not_let_signatures_made_before_it_draw_a_second_budget(
    harness, factory, nft, entry_point, chain_id, paymaster, sponsor_key, accounts, chain, tmp_path
):
    """Attack 221. A stranger has the sponsor sign, for a fresh account, a covered operation padded to the whole
    ``total_budget_wei`` (attack 90's operation), and keeps it: nothing is paid yet, and the sponsor now refuses
    everyone, saying that its operator can raise the budget and restart the service. A signature stays valid for
    ``validity_seconds`` after the sponsor made it, whatever happens to the service: were the restarted service to
    start its budgets from nothing, it would sign the total again, and the stranger's bundle would land both,
    paid twice the total from the deposit. The ledger file brings the reservations of signatures still valid
    back into the restarted service's budgets."""
    budget = ETHER // 10
    policy = SponsorshipPolicy(
        accounts="any", targets={nft.address: ["safeMint(address)"]}, total_budget_wei=budget
    )
    ledger = tmp_path / "sponsor-ledger.sqlite"

    def start() -> Sponsor:
        return Sponsor(
            paymaster=paymaster.address,
            signer=sponsor_key,
            chain_id=chain_id,
            entry_point=entry_point.address,
            policy=policy,
            clock=chain_clock(Web3Chain(chain.provider.web3)),
            ledger=ledger,
        )

    def signed_by(sponsor: Sponsor) -> UserOperation:
        owner = LocalSigner.generate()
        op = _stranger_op(harness, factory, nft, paymaster.address, owner, budget)
        data = bytes.fromhex(sponsor.data(op)["paymasterData"][2:])
        return harness.sign_owner(op.replace(paymaster_data=data), owner)

    first = start()
    kept = [signed_by(first)]
    with pytest.raises(SponsorshipRefused) as info:
        signed_by(first)
    assert info.value.code == BUDGET_EXHAUSTED
    assert "raise total_budget_wei in the policy and restart the service" in info.value.message
    first.close()  # the operator restarts the service, as the refusal says it may

    again = start()
    refused = None
    try:
        kept.append(signed_by(again))
    except SponsorshipRefused as refusal:
        refused = refusal
    stranger = accounts[9]
    deposit_before = _deposit(entry_point, paymaster)
    entry_point.handleOps([op.pack().as_tuple() for op in kept], stranger.address, sender=stranger)
    paid = deposit_before - _deposit(entry_point, paymaster)
    assert paid <= budget, f"the deposit paid {paid} wei for signatures of a total budget of {budget} wei"
    # the signature made before the restart landed, within the total; the restarted service refused the second
    assert len(kept) == 1 and paid > budget // 2, paid
    assert refused is not None and refused.code == BUDGET_EXHAUSTED
    assert refused.data["reason"] == "totalBudget" and refused.data["remaining"] == 0
    assert f"read back from the ledger {ledger}" in refused.message
    again.close()


def test_the_ledger_counts_signatures_until_they_expire_for_one_service_of_its_paymaster(
    paymaster, sponsor_key, chain_id, tmp_path
):
    """What the ledger file keeps across restarts (attack 221): the reservation of a signature counts again until
    the signature's window closes on the service's clock, then the budget starts afresh; a reservation given back
    (the signer failed: nothing signed) is gone; a service of another paymaster or chain on the file counts none of
    them; and a second service on a file in use is refused at start, since two services counting one file apart
    would each sign the whole budget."""
    cost = (100_000 + 200_000 + 50_000 + PM_VERIFICATION_GAS) * 10**9
    ledger = tmp_path / "ledger.sqlite"
    now = {"t": 1_000_000}
    failures = {"left": 1}
    op = _calling(LocalSigner.generate().address, _TARGETS[0], bytes.fromhex("12345678"))

    def start(*, chain: int = chain_id, address: str = paymaster.address) -> Sponsor:
        return Sponsor(
            paymaster=address,
            signer=_FlakySigner(sponsor_key, failures, "left"),
            chain_id=chain,
            policy=SponsorshipPolicy(targets="any", budget_wei=3 * cost, total_budget_wei=3 * cost),
            clock=lambda: float(now["t"]),
            ledger=ledger,
        )

    sponsor = start()
    with pytest.raises(TransportError):
        sponsor.data(op)
    sponsor.data(op)
    with pytest.raises(
        ConfigurationError, match="is held by another sponsor service: give each service its own"
    ):
        start()
    sponsor.close()
    with pytest.raises(ConfigurationError, match="is closed"):
        sponsor.data(op)

    restarted = start()
    assert (restarted.ledger.reserved(op.sender), restarted.ledger.reserved_total()) == (cost, cost)
    restarted.data(op)
    restarted.close()
    # another paymaster, or the same address on another chain, has its own signatures
    for elsewhere in ({"address": sponsor_key.address}, {"chain": chain_id + 1}):
        other = start(**elsewhere)
        assert other.ledger.reserved_total() == 0, elsewhere
        other.close()
    # a signature's window closes validity_seconds after it was made: what it reserved is not counted again
    now["t"] += SponsorshipPolicy(targets="any").validity_seconds
    restarted = start()
    assert restarted.ledger.reserved_total() == 2 * cost
    restarted.close()
    now["t"] += 1
    restarted = start()
    assert restarted.ledger.reserved_total() == 0
    restarted.close()


def test_a_policy_for_any_account_without_a_total_budget_is_warned_about(paymaster, sponsor_key, caplog):
    def make(**policy: Any) -> None:
        Sponsor(
            paymaster=paymaster.address,
            signer=sponsor_key,
            chain_id=1,
            policy=SponsorshipPolicy(targets="any", **policy),
        )

    with caplog.at_level("WARNING", logger="keyscope.sponsor"):
        make(budget_wei=ETHER)
    assert "covers any account with no total_budget_wei" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="keyscope.sponsor"):
        make(budget_wei=ETHER, total_budget_wei=10 * ETHER)
        make(accounts=[paymaster.address], budget_wei=ETHER)
        make(accounts=[paymaster.address], total_budget_wei=ETHER)
    assert caplog.text == ""


def test_a_policy_for_listed_accounts_without_any_budget_is_warned_about(paymaster, sponsor_key, caplog):
    """A policy listing its accounts with neither budget lets one listed account, or a leaked session key whose
    grant lists the sponsor, draw the paymaster's whole deposit in operations it bundles itself: the service
    warns of it as it warns of any account without a total."""
    with caplog.at_level("WARNING", logger="keyscope.sponsor"):
        Sponsor(
            paymaster=paymaster.address,
            signer=sponsor_key,
            chain_id=1,
            policy=SponsorshipPolicy(targets="any", accounts=[paymaster.address]),
        )
    assert "no budget_wei and no total_budget_wei" in caplog.text
    assert "whole deposit" in caplog.text
