"""Gas sponsorship on a real anvil and a real Alto bundler: a ``SponsorPaymaster`` deployed, funded and staked
on the local stack, its ERC-7677 service on 127.0.0.1, and the SDK sending session operations through both."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

import keyscope
from keyscope import BundlerRejectedError, Network, PaymasterError, Policy, SessionKey, arg
from keyscope.bundler import UserOperationReceipt
from keyscope.hexutil import keccak, to_address, to_bytes
from keyscope.local import LocalStack, get_deposit_info
from keyscope.paymaster import PaymasterClient
from keyscope.signing import LocalSigner
from keyscope.sponsor import (
    INVALID_PARAMS,
    NOT_SPONSORED,
    LocalSponsor,
    Sponsor,
    SponsorServer,
    SponsorshipPolicy,
    decode_paymaster_data,
)
from support.erc7562 import Erc7562Checker, StakeInfo

pytestmark = pytest.mark.e2e

ETHER = 10**18
DEPOSIT = 10 * ETHER


@pytest.fixture(scope="module")
def local_sponsor(local_stack: LocalStack) -> Iterator[LocalSponsor]:
    policy = SponsorshipPolicy(
        name="keyscope e2e sponsor",
        targets={local_stack.nft: ["safeMint(address)"]},
        budget_wei=ETHER // 10,
        validity_seconds=600,
    )
    with LocalSponsor(local_stack, policy=policy, deposit=DEPOSIT) as sponsor:
        yield sponsor


@pytest.fixture(scope="module")
def sponsored_receipts() -> list[UserOperationReceipt]:
    """Every receipt of an operation the local sponsor paid for, for the deposit check at the end."""
    return []


def _connect(stack: LocalStack, paymaster: str | None = None) -> Network:
    return keyscope.connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory, paymaster=paymaster
    )


def _nft_balance(stack: LocalStack, owner: str) -> int:
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [owner])
    raw = stack.node.request("eth_call", [{"to": stack.nft, "data": "0x" + data.hex()}, "latest"])
    return int(abi_decode(["uint256"], to_bytes(raw))[0])


def _mint_permission(stack: LocalStack, account: str) -> Policy:
    return Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == account])


def test_the_paymaster_is_deployed_funded_and_staked(
    local_stack: LocalStack, local_sponsor: LocalSponsor
) -> None:
    state = local_sponsor.state()
    assert state.signer == local_sponsor.signer.address
    assert state.owner == local_stack.deployer.address
    assert state.deposit == DEPOSIT
    assert state.deposit_info.staked and state.deposit_info.stake == ETHER
    assert local_sponsor.url.startswith("http://127.0.0.1:")


def test_a_zero_eth_session_account_mints_through_sponsorship(
    local_stack: LocalStack, local_sponsor: LocalSponsor, sponsored_receipts: list[UserOperationReceipt]
) -> None:
    net = _connect(local_stack, local_sponsor.url)
    owner = net.owner(LocalSigner.generate())
    assert local_stack.balance(owner.account) == 0
    key = SessionKey.generate()
    grant = owner.grant(key, [_mint_permission(local_stack, owner.account)], valid_for=3600)
    session = net.session(grant, key)

    before = local_sponsor.state().deposit
    started = time.perf_counter()
    pending = session.execute(local_stack.nft, "safeMint(address)", owner.account)
    receipt = pending.wait(timeout=30)
    first_latency = time.perf_counter() - started
    sponsored_receipts.append(receipt)
    assert receipt.success
    assert receipt.paymaster == local_sponsor.paymaster
    assert owner.is_deployed() and _nft_balance(local_stack, owner.account) == 1
    assert local_stack.balance(owner.account) == 0
    assert before - local_sponsor.state().deposit == receipt.actual_gas_cost
    op = pending.op
    assert op.paymaster == local_sponsor.paymaster
    assert decode_paymaster_data(op.paymaster_data).valid_until >= local_stack.timestamp()

    # the second operation carries the plain session signature and is sponsored too
    started = time.perf_counter()
    receipt = session.execute(local_stack.nft, "safeMint(address)", owner.account).wait(timeout=30)
    second_latency = time.perf_counter() - started
    sponsored_receipts.append(receipt)
    assert receipt.success and receipt.paymaster == local_sponsor.paymaster
    assert _nft_balance(local_stack, owner.account) == 2
    assert local_stack.balance(owner.account) == 0
    reserved = local_sponsor.sponsor.ledger.reserved(owner.account)
    assert reserved >= sum(r.actual_gas_cost for r in sponsored_receipts)
    print(
        f"\n[measure] sponsored session mint through Alto: first (creates the account) "
        f"{sponsored_receipts[0].actual_gas_used} gas, {first_latency:.2f}s prepare+send+receipt; second "
        f"{receipt.actual_gas_used} gas, {second_latency:.2f}s; paymasterVerificationGasLimit from Alto's "
        f"estimate (+15 %): {op.paymaster_verification_gas_limit}; budget reserved {reserved} wei for "
        f"{sum(r.actual_gas_cost for r in sponsored_receipts)} wei spent"
    )


def test_sponsored_validation_follows_erc7562_because_the_paymaster_is_staked(
    local_stack: LocalStack, local_sponsor: LocalSponsor
) -> None:
    """The trace of a sponsored operation that creates its account and enables its session: no rule broken,
    and the paymaster reads only its own storage (its signer), which ERC-7562 allows a staked paymaster."""
    net = _connect(local_stack, local_sponsor.url)
    owner = net.owner(LocalSigner.generate())
    key = SessionKey.generate()
    session = net.session(
        owner.grant(key, [_mint_permission(local_stack, owner.account)], valid_for=3600), key
    )
    op = session.build([keyscope.function_call(local_stack.nft, "safeMint(address)", owner.account)])
    assert op.factory == local_stack.factory and op.paymaster == local_sponsor.paymaster

    checker = Erc7562Checker(
        local_stack.node, local_stack.entry_point, submitter=local_stack.accounts[0].address
    )
    report = checker.check([op])
    report.assert_clean()
    assert report.trace.phase("paymaster").entity == local_sponsor.paymaster
    reads = report.storage_in(local_sponsor.paymaster, "paymaster")
    assert reads and all(v.rule == "STO-031" and not v.access.writes for v in reads), report.summary()
    assert not set(report.opcodes_in(local_sponsor.paymaster, "paymaster")) & {"TIMESTAMP", "NUMBER"}

    # the same operation with the paymaster unstaked: its read of its own storage is what breaks
    stakes = {entity: checker.stake_of(entity) for entity in (local_stack.factory, owner.account)}
    stakes[local_sponsor.paymaster] = StakeInfo(local_sponsor.paymaster, 0, 0, 0, False)
    broken = checker.check([op], stakes=stakes)
    assert broken.violations and {v.contract for v in broken.violations} == {local_sponsor.paymaster}
    assert all(v.phase == "paymaster" for v in broken.violations), broken.summary()
    # ...and only it: the SLOAD of the signer, refused as storage neither the account's nor associated with it
    assert broken.rules() == {"STO-021"} and len(broken.violations) == 1, broken.summary()
    assert "SLOAD" in broken.violations[0].message


def test_a_call_outside_the_sponsors_policy_is_refused(
    local_stack: LocalStack, local_sponsor: LocalSponsor
) -> None:
    net = _connect(local_stack, local_sponsor.url)
    owner = net.owner(LocalSigner.generate())
    key = SessionKey.generate()
    permissions = [
        _mint_permission(local_stack, owner.account),
        Policy.call(
            local_stack.nft, "mintBatch(address to, uint256 count)", rules=[arg("to") == owner.account]
        ),
    ]
    session = net.session(owner.grant(key, permissions, valid_for=3600), key)
    with pytest.raises(PaymasterError) as info:
        session.execute(local_stack.nft, "mintBatch(address,uint256)", owner.account, 3)
    error = info.value
    assert error.code == NOT_SPONSORED
    selector = "0x" + keccak(b"mintBatch(address,uint256)")[:4].hex()
    assert f"selector {selector} on {local_stack.nft} (call 0) is not in the sponsorship policy" in str(error)
    assert error.data["reason"] == "selector"
    assert not owner.is_deployed(), "nothing may have been sent"

    client = PaymasterClient(local_sponsor.url)
    op = session.build([keyscope.function_call(local_stack.nft, "safeMint(address)", owner.account)])
    with pytest.raises(PaymasterError, match="chain id 1 is not supported") as info:
        client.stub_data(op, local_stack.entry_point, 1)
    assert info.value.code == INVALID_PARAMS


def test_the_unsponsored_path_still_works(local_stack: LocalStack, local_sponsor: LocalSponsor) -> None:
    net = _connect(local_stack)
    owner = net.owner(LocalSigner.generate())
    local_stack.fund(owner.account, ETHER)
    key = SessionKey.generate()
    session = net.session(
        owner.grant(key, [_mint_permission(local_stack, owner.account)], valid_for=3600), key
    )
    deposit = local_sponsor.state().deposit
    receipt = session.execute(local_stack.nft, "safeMint(address)", owner.account).wait(timeout=30)
    assert receipt.success and receipt.paymaster is None
    assert _nft_balance(local_stack, owner.account) == 1
    refund = get_deposit_info(local_stack.node, local_stack.entry_point, owner.account).deposit
    assert local_stack.balance(owner.account) + refund == ETHER - receipt.actual_gas_cost
    assert local_sponsor.state().deposit == deposit
    print(f"\n[measure] unsponsored session mint that creates the account: {receipt.actual_gas_used} gas")


@pytest.mark.parametrize("given", ["node", "bundler"])
def test_a_node_s_or_a_bundler_s_url_given_as_the_paymaster_is_said_to_be_one(
    local_stack: LocalStack, given: str
) -> None:
    """``paymaster=`` given the node's URL drew "Method not found", and the bundler's a long validation dump of
    Alto's: neither said that the URL is no paymaster service. Nothing is sent."""
    url = local_stack.rpc_url if given == "node" else local_stack.bundler_url
    net = _connect(local_stack, url)
    owner = net.owner(LocalSigner.generate())
    local_stack.fund(owner.account, ETHER)
    key = SessionKey.generate()
    session = net.session(
        owner.grant(key, [_mint_permission(local_stack, owner.account)], valid_for=3600), key
    )
    with pytest.raises(PaymasterError) as refused:
        session.execute(local_stack.nft, "safeMint(address)", owner.account)
    said = str(refused.value)
    what = "an Ethereum node" if given == "node" else "an ERC-4337 bundler"
    assert f"{url} is {what} (" in said and "), not an ERC-7677 paymaster service" in said, said
    assert "connect(node, bundler, paymaster=URL) takes the paymaster service's URL" in said, said
    assert len(said) < 600, said
    assert _nft_balance(local_stack, owner.account) == 0


def test_an_expired_sponsorship_is_refused_by_the_bundler(
    local_stack: LocalStack, local_sponsor: LocalSponsor
) -> None:
    """A service whose clock is an hour slow signs windows that ended before the operation is sent: the
    bundler refuses it at once (it checks the paymaster's validUntil), and nothing reaches the chain."""
    slow = Sponsor(
        paymaster=local_sponsor.paymaster,
        signer=local_sponsor.signer,
        chain_id=local_stack.chain_id,
        entry_point=local_stack.entry_point,
        policy=local_sponsor.sponsor.policy,
        clock=lambda: time.time() - 3600,
    )
    deposit = local_sponsor.state().deposit
    with SponsorServer(slow) as server:
        net = _connect(local_stack, server.url)
        owner = net.owner(LocalSigner.generate())
        key = SessionKey.generate()
        session = net.session(
            owner.grant(key, [_mint_permission(local_stack, owner.account)], valid_for=3600), key
        )
        with pytest.raises(BundlerRejectedError) as info:
            session.execute(local_stack.nft, "safeMint(address)", owner.account)
    assert "expires too soon" in str(info.value), info.value
    assert info.value.method == "eth_sendUserOperation"
    assert not owner.is_deployed()
    assert local_sponsor.state().deposit == deposit


def test_the_deposit_paid_exactly_the_sponsored_operations(
    local_sponsor: LocalSponsor, sponsored_receipts: list[UserOperationReceipt]
) -> None:
    assert len(sponsored_receipts) == 2
    assert all(to_address(r.paymaster or "") == local_sponsor.paymaster for r in sponsored_receipts)
    assert DEPOSIT - local_sponsor.state().deposit == sum(r.actual_gas_cost for r in sponsored_receipts)


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "keyscope.sponsor", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_standalone_service(local_stack: LocalStack, local_sponsor: LocalSponsor, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"name": "cli", "targets": {local_stack.nft: ["safeMint(address)"]}}))
    key_file = tmp_path / "sponsor.key"
    key_file.write_text("0x" + local_sponsor.signer.private_key.hex() + "\n")
    common = [
        "--paymaster",
        local_sponsor.paymaster,
        "--policy",
        str(policy),
        "--rpc-url",
        local_stack.rpc_url,
    ]

    process = _run_cli(
        [*common, "--json"], {"KEYSCOPE_SPONSOR_KEY": "0x" + local_sponsor.signer.private_key.hex()}
    )
    try:
        assert process.stdout is not None
        details = json.loads(process.stdout.readline())
        assert details["paymaster"] == local_sponsor.paymaster and details["chain_id"] == local_stack.chain_id
        assert details["url"].startswith("http://127.0.0.1:")
        net = _connect(local_stack, details["url"])
        owner = net.owner(LocalSigner.generate())
        key = SessionKey.generate()
        grant = owner.grant(key, [_mint_permission(local_stack, owner.account)], valid_for=3600)
        op = net.session(grant, key).build(
            [keyscope.function_call(local_stack.nft, "safeMint(address)", owner.account)]
        )
        assert op.paymaster == local_sponsor.paymaster
    finally:
        process.terminate()
        assert process.wait(10) == 0

    # the key from a file; a key the paymaster does not honour is refused at start
    process = _run_cli([*common, "--signer-key-file", str(key_file), "--json"], {})
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["signer"] == local_sponsor.signer.address
    finally:
        process.terminate()
        process.wait(10)
    wrong = _run_cli(common, {"KEYSCOPE_SPONSOR_KEY": "0x" + LocalSigner.generate().private_key.hex()})
    _, stderr = wrong.communicate(timeout=30)
    assert wrong.returncode == 1
    assert f"honours signer {local_sponsor.signer.address}" in stderr
    missing = _run_cli(common, {"KEYSCOPE_SPONSOR_KEY": ""})
    _, stderr = missing.communicate(timeout=30)
    assert missing.returncode == 1 and "no signing key: set KEYSCOPE_SPONSOR_KEY" in stderr


SPONSORSHIP_DOC = Path(__file__).resolve().parents[2] / "docs" / "sponsorship.md"


def test_the_local_stack_example_of_the_docs_runs_as_written(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/sponsorship.md's LocalSponsor block, as written, on the module's running stack (its ``LocalStack()`` is
    that stack, left running); its ``...`` is where a dapp goes on, here a session of an account without ETH that
    mints, sponsored."""
    import contextlib

    import keyscope.local

    text = SPONSORSHIP_DOC.read_text()
    found = re.search(r"### On the local stack\n.*?```python\n(.*?)```", text, re.S)
    assert found, "docs/sponsorship.md has no Python block under 'On the local stack'"
    code = found.group(1)
    assert code.count("\n    ...\n") == 1, code
    code = code.replace(
        "\n    ...\n",
        "\n    owner = net.owner(LocalSigner.generate())\n"
        "    key = SessionKey.generate()\n"
        '    mint = [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]\n'
        '    net.session(owner.grant(key, mint), key).execute(stack.nft, "safeMint(address)", owner.account).wait()\n'
        "    account = owner.account\n"
        "    seen = (sponsor.paymaster, sponsor.state().deposit, sponsor.sponsor.ledger.reserved(account))\n",
    )
    monkeypatch.setattr(keyscope.local, "LocalStack", lambda: contextlib.nullcontext(local_stack))
    scope: dict[str, Any] = {
        "LocalSigner": LocalSigner,
        "SessionKey": SessionKey,
        "Policy": Policy,
        "arg": arg,
    }
    exec(compile(code, "docs/sponsorship.md (local stack)", "exec"), scope)
    paymaster, deposit, reserved = scope["seen"]
    assert local_stack.balance(scope["account"]) == 0  # the sponsor paid
    assert 0 < deposit < 10 * ETHER and reserved > 0
    assert to_address(paymaster) == paymaster


def test_the_any_service_example_of_the_docs_runs_as_written(local_stack: LocalStack) -> None:
    """docs/sponsorship.md's block for any ERC-7677 service, as written, against keyscope's own service (a sponsor
    of its own, so that the module's sponsor keeps its accounting): the second ``connect``, with a context the
    service accepts and ignores, sponsors a session's mint for an account without ETH."""
    text = SPONSORSHIP_DOC.read_text()
    found = re.search(r"## Any ERC-7677 service with the SDK\n\n```python\n(.*?)```", text, re.S)
    assert found, "docs/sponsorship.md has no Python block under 'Any ERC-7677 service with the SDK'"
    code = found.group(1)
    assert code.count('"https://…"') == 2, code
    with LocalSponsor(local_stack) as sponsor:
        scope: dict[str, Any] = {
            "node_url": local_stack.rpc_url,
            "bundler_url": local_stack.bundler_url,
            "MODULE": local_stack.module,
            "FACTORY": local_stack.factory,
            "owner_key": "0x" + LocalSigner.generate().private_key.hex(),
            "session_key": SessionKey.generate(),
            "nft": local_stack.nft,
        }
        exec(
            compile(
                code.replace('"https://…"', repr(sponsor.url)), "docs/sponsorship.md (any service)", "exec"
            ),
            scope,
        )
        account = scope["owner"].account
        assert isinstance(scope["net"].paymaster, PaymasterClient)
        assert sponsor.sponsor.ledger.reserved(account) > 0  # the service signed for it
    assert local_stack.balance(account) == 0  # the sponsor paid
    assert _nft_balance(local_stack, account) == 1
