"""EIP-7702 and EntryPoint v0.8 on a real anvil (Prague) and Alto: an EOA delegates to keyscope's account
(``KeyscopeDelegate``) and becomes session-capable in one operation, and the attacks on that path fail.

Everything runs on the session's shared :class:`~keyscope.local.LocalStack` (EntryPoint v0.7 and v0.8, Alto
serving both); every test takes fresh EOAs. Raw transactions an attacker (or another wallet) would send are
signed with eth-account, not with keyscope.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope import (
    ENTRY_POINT_V07,
    ENTRY_POINT_V08,
    EOAOwner,
    Policy,
    PolicyViolationError,
    SessionKey,
    SessionRevokedError,
    arg,
    connect,
)
from keyscope.accounts import KeyscopeDelegateKind, detect_kind
from keyscope.accounts.delegate import delegate_validator_slot
from keyscope.artifacts import npm_package_dir
from keyscope.bundler.pending import submit
from keyscope.calls import encode_function_call, function_call
from keyscope.devnode import get_deposit_info, send_transaction, wait_for_receipt
from keyscope.eip7702 import Authorization, delegation_code, sign_authorization
from keyscope.entrypoint import encode_get_user_op_hash
from keyscope.errors import (
    BadInputError,
    BundlerRejectedError,
    ConfigurationError,
    DelegationError,
    DelegationWarning,
    InsufficientPrefundError,
    KeyscopeError,
    TargetWarning,
)
from keyscope.execution import Call, encode_execute
from keyscope.hashing import is_eip7702_init_code, user_op_hash_v07, user_op_hash_v08
from keyscope.hexutil import keccak, to_address
from keyscope.local import LocalStack
from keyscope.module import INVALIDATE_ALL_SESSIONS
from keyscope.network import Network
from keyscope.owner import PendingGrant
from keyscope.revert import describe_revert
from keyscope.rpc import JsonRpcError
from keyscope.session import Session
from keyscope.signing import LocalSigner
from keyscope.sponsor.local import LocalSponsor
from keyscope.sponsor.paymaster_data import sponsorship_hash
from keyscope.sponsor.policy import SponsorshipPolicy
from keyscope.userop import PackedUserOperation, UserOperation
from support.erc7562 import Erc7562Checker
from support.install_data import encode_install_sessions

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ETHER = 10**18
MINT = "safeMint(address)"
GAS_PRICE = {"maxFeePerGas": 20 * 10**9, "maxPriorityFeePerGas": 10**9}


# -- fixtures and helpers ---------------------------------------------------------------------------


def _executor_takes_half(stack: LocalStack, eoa: str, thief: str, held: int) -> None:
    """The thief, as an executor other code planted, asks the EOA's ``executeFromExecutor`` (single call mode) to
    send it half of ``held`` wei; a refusal is left for the caller's balance check to see."""
    from support.victims import transact

    execution = bytes.fromhex(thief[2:]) + (held // 2).to_bytes(32, "big")
    with contextlib.suppress(KeyscopeError, JsonRpcError):
        transact(
            stack, eoa, "executeFromExecutor(bytes32,bytes)", ["bytes32", "bytes"], [bytes(32), execution]
        )


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> LocalStack:
    return local_stack


@pytest.fixture(scope="module")
def net(stack: LocalStack) -> Network:
    """A network for EOAs: the EntryPoint (v0.8) comes from the delegate."""
    return connect(stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate)


@pytest.fixture(scope="module")
def other_delegate(stack: LocalStack) -> str:
    """Other code an EOA may delegate to: the EntryPoint v0.8 release's own ``Simple7702Account``."""
    package = npm_package_dir("@account-abstraction/contracts-v0.8")
    artifact = json.loads((package / "artifacts" / "Simple7702Account.json").read_text())
    receipt = send_transaction(
        stack.node,
        stack.deployer.address,
        data=bytes.fromhex(artifact["bytecode"][2:]),
        what="Simple7702Account",
    )
    return to_address(receipt["contractAddress"])


def new_eoa(stack: LocalStack, ether: int = 2) -> LocalSigner:
    eoa = LocalSigner.generate()
    stack.fund(eoa.address, ether * ETHER)
    return eoa


def code(stack: LocalStack, address: str) -> bytes:
    return bytes.fromhex(stack.node.request("eth_getCode", [address, "latest"])[2:])


def call(stack: LocalStack, to: str, signature: str, *args: Any) -> bytes:
    data = encode_function_call(signature, *args)
    return bytes.fromhex(
        stack.node.request("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])[2:]
    )


def nft_balance(stack: LocalStack, who: str) -> int:
    return int.from_bytes(call(stack, stack.nft, "balanceOf(address)", who), "big")


def nft_owner(stack: LocalStack, token: int) -> str:
    return to_address(call(stack, stack.nft, "ownerOf(uint256)", token)[12:])


def flag(stack: LocalStack, signature: str, *args: Any) -> bool:
    return bool(int.from_bytes(call(stack, stack.module, signature, *args), "big"))


def module_installed(stack: LocalStack, account: str) -> bool:
    raw = call(stack, account, "isModuleInstalled(uint256,address,bytes)", 1, stack.module, b"")
    return bool(int.from_bytes(raw, "big"))


def holdings(stack: LocalStack, account: str) -> int:
    """The account's ETH: its balance and its deposit at the EntryPoint v0.8 (prefunds not spent go there)."""
    return stack.balance(account) + get_deposit_info(stack.node, stack.entry_point_v08, account).deposit


def mint_policy(stack: LocalStack, account: str) -> list[Any]:
    return [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == account])]


def raw_transaction(
    stack: LocalStack,
    key: bytes,
    to: str,
    data: bytes = b"",
    *,
    value: int = 0,
    authorizations: Sequence[Authorization | Any] = (),
) -> dict[str, Any]:
    """Sign (with eth-account) and send a transaction from ``key``, type 4 when it carries authorizations."""
    sender = Account.from_key(key).address
    nonce = int(stack.node.request("eth_getTransactionCount", [sender, "pending"]), 16)
    tx: dict[str, Any] = {
        "type": 4 if authorizations else 2,
        "chainId": stack.chain_id,
        "nonce": nonce,
        "to": to,
        "value": value,
        "data": data,
        "gas": 1_000_000,
        **GAS_PRICE,
    }
    if authorizations:
        tx["authorizationList"] = [
            auth.to_transaction() if isinstance(auth, Authorization) else auth for auth in authorizations
        ]
    signed = Account.sign_transaction(tx, key)
    tx_hash = stack.node.request("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    return wait_for_receipt(stack.node, tx_hash)


def owner_operation(module: str, sender: str, **fields: Any) -> UserOperation:
    """An operation on the owner's lane (nonce key 0) invalidating the sessions, with fixed gas, unsigned."""
    fields.setdefault("nonce", 0)
    return UserOperation(
        sender=sender,
        call_data=encode_execute([Call(module, 0, INVALIDATE_ALL_SESSIONS)]),
        call_gas_limit=200_000,
        verification_gas_limit=200_000,
        pre_verification_gas=60_000,
        max_fee_per_gas=GAS_PRICE["maxFeePerGas"],
        max_priority_fee_per_gas=GAS_PRICE["maxPriorityFeePerGas"],
        **fields,
    )


def upgraded(net: Network, stack: LocalStack) -> tuple[EOAOwner, LocalSigner, Any, SessionKey]:
    """A fresh EOA, delegated, with the module and one minting session."""
    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    key = SessionKey.generate()
    grant = owner.upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
    return owner, eoa, grant, key


# -- the whole path -----------------------------------------------------------------------------------


def test_an_eoa_holding_eth_and_an_nft_becomes_session_capable_without_moving_them(
    net: Network, stack: LocalStack
) -> None:
    eoa = new_eoa(stack, 3)
    receipt = send_transaction(
        stack.node, stack.deployer.address, to=stack.nft, data=encode_function_call(MINT, eoa.address)
    )
    token = int(receipt["logs"][0]["topics"][3], 16)
    assert nft_owner(stack, token) == eoa.address and not code(stack, eoa.address)
    before = holdings(stack, eoa.address)

    owner = net.owner(eoa, eoa.address)
    assert isinstance(owner, EOAOwner) and owner.account == eoa.address
    assert isinstance(owner.kind, KeyscopeDelegateKind) and net.entry_point == ENTRY_POINT_V08

    # one operation: the EOA's authorization, the module's install and the session
    key = SessionKey.generate()
    pending = owner.send_upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
    grant = pending.wait()
    first = pending.receipt
    assert first is not None and first.success and first.sender == eoa.address
    bundle = stack.node.request("eth_getTransactionByHash", ["0x" + first.transaction_hash.hex()])
    assert int(bundle["type"], 16) == 4
    assert [to_address(auth["address"]) for auth in bundle["authorizationList"]] == [stack.delegate]
    assert code(stack, eoa.address) == delegation_code(stack.delegate)
    assert module_installed(stack, eoa.address)
    assert flag(stack, "isSessionActive(address,bytes32)", eoa.address, grant.session_id)
    assert net.chain.get_nonce(stack.entry_point_v08, eoa.address, 0) == 1  # the owner's one operation
    detected = detect_kind(net, eoa.address)
    assert isinstance(detected, KeyscopeDelegateKind) and detected.delegate == stack.delegate

    # the session mints within its policy, and is refused outside it
    session = net.session(grant, key)
    minted = session.execute(stack.nft, MINT, eoa.address).wait()
    assert minted.success and nft_balance(stack, eoa.address) == 2
    stranger = LocalSigner.generate().address
    with pytest.raises(PolicyViolationError):
        session.execute(stack.nft, MINT, stranger)
    with pytest.raises(BundlerRejectedError) as refused:
        session.execute(stack.nft, MINT, stranger, check=False)
    assert refused.value.reason == "AA23" and "RuleViolated(callIndex=0" in str(refused.value)
    assert nft_balance(stack, stranger) == 0

    # revocation
    revoked = owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError, match="revoked"):
        session.execute(stack.nft, MINT, eoa.address)
    with pytest.raises(BundlerRejectedError) as dead:
        net.session(grant, key, verify_on_chain=False).execute(stack.nft, MINT, eoa.address)
    assert dead.value.reason == "AA23" and "NoPermission(callIndex=0" in str(dead.value)

    # the same address, the same NFT, the same ETH but the gas of the three operations
    assert nft_owner(stack, token) == eoa.address
    spent = first.actual_gas_cost + minted.actual_gas_cost + revoked.actual_gas_cost
    assert holdings(stack, eoa.address) == before - spent


def test_the_type_4_transaction_path_does_the_same_without_a_bundler_carrying_the_authorization(
    net: Network, stack: LocalStack
) -> None:
    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    key = SessionKey.generate()
    grant = owner.upgrade(key, mint_policy(stack, eoa.address), valid_for=3600, transaction=True)
    assert code(stack, eoa.address) == delegation_code(stack.delegate)
    assert net.chain.get_nonce(stack.entry_point_v08, eoa.address, 0) == 0  # no UserOperation of the owner
    assert net.session(grant, key).execute(stack.nft, MINT, eoa.address).wait().success


def test_more_sessions_are_granted_as_on_any_account(net: Network, stack: LocalStack) -> None:
    owner, eoa, first, first_key = upgraded(net, stack)
    key = SessionKey.generate()
    offchain = owner.grant(key, mint_policy(stack, eoa.address), valid_for=3600)  # one EIP-712 signature
    assert offchain.how == "offchain"
    assert net.session(offchain, key).execute(stack.nft, MINT, eoa.address).wait().success
    assert net.session(first, first_key).execute(stack.nft, MINT, eoa.address).wait().success


def test_an_eoa_that_is_not_delegated_yet_cannot_grant_off_chain(net: Network, stack: LocalStack) -> None:
    eoa = new_eoa(stack)
    with pytest.raises(ConfigurationError, match="upgrade"):
        net.eoa(eoa).grant(SessionKey.generate(), mint_policy(stack, eoa.address))


def test_an_upgrade_whose_session_has_ended_already_is_refused_before_anything_is_signed(
    net: Network, stack: LocalStack
) -> None:
    """The module would enable the session in the upgrade's operation, and the EntryPoint refuse each of its
    operations as expired (AA22): the upgrade (delegation, module, epoch) would be paid for a session never usable."""
    eoa = new_eoa(stack)
    past = max(stack.timestamp(), int(time.time())) - 60
    with pytest.raises(BadInputError, match=rf"valid_until {past} .* is already past.*AA22"):
        net.eoa(eoa).upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_until=past)
    assert code(stack, eoa.address) == b""  # nothing was sent: not delegated


def test_an_upgrade_warns_of_a_target_without_code_and_of_the_entry_point_as_a_grant_does(
    net: Network, stack: LocalStack
) -> None:
    """README (Grants): "A grant warns (TargetWarning) when a target has no code on the chain, lacks the function
    where keyscope knows its ABI, or is the EntryPoint (which keeps the account's deposit by caller: the session
    may withdraw it)". ``Owner.grant``, ``prepare_grant`` and ``request_for`` warn (``warn_about_targets``), but
    ``EOAOwner.upgrade`` builds its grant with ``session_for`` and ``_request`` directly (``_plan_upgrade``),
    skipping ``_grant_state`` and the warnings: an EOA's first session, granted in the operation that delegates
    it, is granted without them."""
    eoa = new_eoa(stack)
    nowhere = LocalSigner.generate().address
    permissions = [
        *mint_policy(stack, eoa.address),
        Policy.call(nowhere, "ping()"),  # no code there
        Policy.call(net.entry_point, "withdrawTo(address to,uint256 amount)"),  # the EOA's deposit
    ]
    with pytest.warns(TargetWarning) as caught:
        net.eoa(eoa).build_upgrade(SessionKey.generate(), permissions, valid_for=3600)
    messages = [str(w.message) for w in caught if issubclass(w.category, TargetWarning)]
    assert any(f"{nowhere} has no code" in m for m in messages), messages
    assert any("is the EntryPoint" in m for m in messages), messages
    assert code(stack, eoa.address) == b""  # built, not sent


def test_the_upgrade_of_an_eoa_without_eth_says_it_cannot_pay_not_that_it_runs_no_batch(
    net: Network, stack: LocalStack
) -> None:
    """The README's upgrade from an EOA holding nothing: the bundler refuses the prefund (AA21). The EOA has no code
    until the operation lands, so it answers no ``supportsExecutionMode``, and the refusal was said as "does not run
    the execution mode 0x01…: send the calls one per operation", of an account that does not exist yet."""
    eoa = LocalSigner.generate()
    with pytest.raises(InsufficientPrefundError) as info:
        net.eoa(eoa).upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    error, said = info.value, str(info.value)
    assert (error.reason, error.account, error.balance, error.deposit) == ("AA21", eoa.address, 0, 0), said
    assert f"the account {eoa.address} holds 0 wei and has 0 wei deposited at the EntryPoint" in said, said
    assert said.endswith("; send it ETH, or use a paymaster"), said
    assert "execution mode" not in said
    assert code(stack, eoa.address) == b""  # nothing landed: not delegated


# -- re-delegation ----------------------------------------------------------------------------------


def test_leaving_through_keyscope_kills_the_sessions_even_for_a_bare_delegation_back(
    net: Network, stack: LocalStack, other_delegate: str
) -> None:
    owner, eoa, grant, key = upgraded(net, stack)
    unused_key = SessionKey.generate()
    unused = owner.grant(unused_key, mint_policy(stack, eoa.address), valid_for=3600)  # signed, never used
    session = net.session(grant, key)
    session.execute(stack.nft, MINT, eoa.address).wait()

    owner.undelegate(to=other_delegate)  # one transaction: the new delegation and the invalidation
    assert code(stack, eoa.address) == delegation_code(other_delegate)
    assert not flag(stack, "isSessionActive(address,bytes32)", eoa.address, grant.session_id)

    # back to keyscope's delegate with a bare authorization, as another wallet would do it
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    back = Account.sign_authorization(
        {"chainId": stack.chain_id, "address": stack.delegate, "nonce": nonce + 1}, eoa.private_key
    )
    raw_transaction(stack, eoa.private_key, eoa.address, authorizations=[back])
    assert code(stack, eoa.address) == delegation_code(stack.delegate)
    assert module_installed(stack, eoa.address)  # the delegate's storage is as it was left

    with pytest.raises(SessionRevokedError, match="no longer active"):
        session.execute(stack.nft, MINT, eoa.address)
    for dead_grant, dead_key in ((grant, key), (unused, unused_key)):
        with pytest.raises(BundlerRejectedError) as refused:
            net.session(dead_grant, dead_key, verify_on_chain=False).execute(stack.nft, MINT, eoa.address)
        assert refused.value.reason == "AA23"
    assert nft_balance(stack, eoa.address) == 1


def test_delegating_back_through_keyscope_does_not_revive_sessions_left_behind(
    net: Network, stack: LocalStack, other_delegate: str
) -> None:
    _owner, eoa, grant, key = upgraded(net, stack)
    session = net.session(grant, key)
    session.execute(stack.nft, MINT, eoa.address).wait()

    # away without keyscope: the sessions stay in the module and the delegate's storage, dormant
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    away = Account.sign_authorization(
        {"chainId": stack.chain_id, "address": other_delegate, "nonce": nonce + 1}, eoa.private_key
    )
    raw_transaction(stack, eoa.private_key, eoa.address, authorizations=[away])
    assert code(stack, eoa.address) == delegation_code(other_delegate)
    with pytest.raises(BundlerRejectedError) as away_refused:  # other code: the session means nothing to it
        net.session(grant, key, verify_on_chain=False).execute(stack.nft, MINT, eoa.address)
    assert away_refused.value.reason in ("AA23", "AA24")

    # back through keyscope: the upgrade's operation starts a new epoch before anything else
    again = net.eoa(eoa)
    new_key = SessionKey.generate()
    with pytest.warns(
        DelegationWarning, match=other_delegate
    ):  # the operation path from other code (attack 308)
        new_grant = again.upgrade(new_key, mint_policy(stack, eoa.address), valid_for=3600)
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, eoa.address)
    with pytest.raises(BundlerRejectedError) as refused:
        net.session(grant, key, verify_on_chain=False).execute(stack.nft, MINT, eoa.address)
    assert refused.value.reason == "AA23" and "NoPermission" in str(refused.value)
    assert new_grant.epoch != grant.epoch
    assert net.session(new_grant, new_key).execute(stack.nft, MINT, eoa.address).wait().success


def test_installing_the_module_on_the_delegate_clears_what_other_code_left_in_it(
    net: Network, stack: LocalStack, other_delegate: str
) -> None:
    """Without keyscope's SDK: the EOA used the session module under other code, then delegates to keyscope's
    delegate and installs the module itself. The delegate's install clears the module's state first. (Under code
    that answers no ``isModuleInstalled``, as ``Simple7702Account``, the module refuses a call permission or a signing
    domain, ``ModuleQueryUnanswered``: what such code can leave behind is a session signing in to a website.)"""
    eoa = new_eoa(stack)
    key = SessionKey.generate()
    session = Session(session_key=key.address, valid_until=2**40, sign_in=("example.com",))
    session_id = session.session_id(eoa.address, 0)

    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    elsewhere = Account.sign_authorization(
        {"chainId": stack.chain_id, "address": other_delegate, "nonce": nonce + 1}, eoa.private_key
    )
    on_install = encode_function_call("onInstall(bytes)", encode_install_sessions([session]))
    through_other_code = encode_function_call("execute(address,uint256,bytes)", stack.module, 0, on_install)
    raw_transaction(stack, eoa.private_key, eoa.address, through_other_code, authorizations=[elsewhere])
    assert flag(stack, "isInitialized(address)", eoa.address)
    assert flag(stack, "isSessionActive(address,bytes32)", eoa.address, session_id)  # live, left behind

    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    back = Account.sign_authorization(
        {"chainId": stack.chain_id, "address": stack.delegate, "nonce": nonce + 1}, eoa.private_key
    )
    install = encode_function_call("installModule(uint256,address,bytes)", 1, stack.module, b"")
    receipt = raw_transaction(stack, eoa.private_key, eoa.address, install, authorizations=[back])
    assert int(receipt["status"], 16) == 1 and module_installed(stack, eoa.address)
    assert not flag(stack, "isSessionActive(address,bytes32)", eoa.address, session_id)
    cleared = keccak(b"ModuleStateCleared(address)")
    assert [
        log["address"].lower() for log in receipt["logs"] if bytes.fromhex(log["topics"][0][2:]) == cleared
    ] == [eoa.address.lower()]
    epoch = int.from_bytes(call(stack, stack.module, "epochOf(address)", eoa.address), "big")
    assert epoch not in (0, 1)  # the delegate's onUninstall moved it to an epoch drawn from the block


def test_the_upgrade_sent_again_revives_no_session_the_owner_ended(net: Network, stack: LocalStack) -> None:
    """Threat model 162 on an EIP-7702 EOA: the upgrade's operation (the EOA's authorization, the invalidation, then
    ``installModule`` with the session in the module's install data) is the owner's installing signature here. After
    the owner uninstalls the module, the same operation sent again meets the EntryPoint's nonce, and its
    ``installModule`` call sent to the EOA by a stranger reverts (the delegate takes it from the EntryPoint or the EOA
    only): the module stays uninstalled, the epoch where the uninstall left it, the session dead."""
    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    key = SessionKey.generate()
    op, request = owner.build_upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
    grant = PendingGrant(owner.send(op), request).wait()
    assert net.session(grant, key).execute(stack.nft, MINT, eoa.address).wait().success
    owner.uninstall_sessions().wait()
    epoch = owner.epoch()

    with pytest.raises(BundlerRejectedError) as again:
        owner.send(op)
    assert again.value.reason == "AA25", again.value
    install = owner.kind.install_validator_call(
        eoa.address, stack.module, encode_install_sessions([request.session])
    )
    stranger = {
        "from": stack.deployer.address,
        "to": eoa.address,
        "data": "0x" + install.data.hex(),
        "gas": hex(3_000_000),
    }
    receipt = wait_for_receipt(stack.node, stack.node.request("eth_sendTransaction", [stranger]))
    assert int(receipt["status"], 16) == 0

    assert not module_installed(stack, eoa.address) and owner.epoch() == epoch
    assert not flag(stack, "isSessionActive(address,bytes32)", eoa.address, grant.session_id)
    with pytest.raises(BundlerRejectedError):
        net.session(grant, key, verify_on_chain=False).execute(stack.nft, MINT, eoa.address)
    assert nft_balance(stack, eoa.address) == 1


def test_the_sdk_reads_the_delegates_storage_where_the_contract_keeps_it(
    net: Network, stack: LocalStack
) -> None:
    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    slot = hex(delegate_validator_slot(stack.module))
    assert stack.node.request("eth_getStorageAt", [eoa.address, slot, "latest"]) == "0x" + "00" * 32
    assert not owner.delegation().module_registered
    owner.install_sessions().wait()
    assert (
        int(stack.node.request("eth_getStorageAt", [eoa.address, slot, "latest"]), 16) == 1
    )  # first validator
    assert owner.delegation().module_registered and owner.supports_sessions()
    assert owner.install_sessions() is None  # nothing left to do


# -- authorizations that must not work -------------------------------------------------------------


def test_authorizations_for_another_chain_or_a_stale_nonce_delegate_nothing(
    net: Network, stack: LocalStack
) -> None:
    eoa = new_eoa(stack)
    relayer = stack.accounts[1]
    with pytest.raises(BadInputError, match="chain id 0"):
        sign_authorization(eoa, 0, stack.delegate, 0)

    elsewhere = sign_authorization(eoa, stack.chain_id + 1, stack.delegate, 0)  # signed for another chain
    receipt = raw_transaction(stack, relayer.private_key, relayer.address, authorizations=[elsewhere])
    assert int(receipt["status"], 16) == 1 and not code(stack, eoa.address)  # the node skipped it

    raw_transaction(stack, eoa.private_key, relayer.address, value=1)  # the EOA's nonce moves to 1
    stale = sign_authorization(eoa, stack.chain_id, stack.delegate, 0)
    raw_transaction(stack, relayer.private_key, relayer.address, authorizations=[stale])
    assert not code(stack, eoa.address)

    # the SDK refuses operations carrying them before the bundler sees them, and a bundler refuses them too
    owner = net.eoa(eoa)
    calls = [Call(stack.module, 0, INVALIDATE_ALL_SESSIONS)]
    for auth, problem in ((elsewhere, f"for chain {stack.chain_id + 1}"), (stale, "used already")):
        with pytest.raises(BadInputError, match=problem):
            owner.execute(calls, eip7702_auth=auth)
    fresh = sign_authorization(eoa, stack.chain_id, stack.delegate, 1)
    op = owner.build(calls, eip7702_auth=fresh)
    for auth, problem in ((elsewhere, "chainId"), (stale, "nonce")):
        with pytest.raises(BundlerRejectedError, match=problem):
            net.bundler.send_user_operation(op.replace(eip7702_auth=auth), net.entry_point)
    assert not code(stack, eoa.address)


def test_a_front_run_authorization_delegates_but_sets_nothing_up(net: Network, stack: LocalStack) -> None:
    eoa = new_eoa(stack)
    attacker = stack.accounts[2]
    mallory_key = SessionKey.generate()
    # the EOA signed an authorization valid on every chain (chain id 0), for another app; anyone can replay it
    anywhere = Account.sign_authorization(
        {"chainId": 0, "address": stack.delegate, "nonce": 0}, eoa.private_key
    )
    install = encode_function_call("installModule(uint256,address,bytes)", 1, stack.module, b"")
    receipt = raw_transaction(stack, attacker.private_key, eoa.address, install, authorizations=[anywhere])
    assert int(receipt["status"], 16) == 0  # the install reverted: only the EntryPoint or the EOA itself may
    assert code(stack, eoa.address) == delegation_code(stack.delegate)  # but the delegation stands
    assert not module_installed(stack, eoa.address)
    assert not flag(stack, "isInitialized(address)", eoa.address)

    # nor through the EntryPoint: with the attacker's signature, or as the EOA's initialisation
    owner_lane = UserOperation(
        sender=eoa.address,
        nonce=0,
        call_data=encode_execute([Call(stack.module, 0, INVALIDATE_ALL_SESSIONS)]),
        call_gas_limit=200_000,
        verification_gas_limit=200_000,
        pre_verification_gas=60_000,
        **{
            "max_fee_per_gas": GAS_PRICE["maxFeePerGas"],
            "max_priority_fee_per_gas": GAS_PRICE["maxPriorityFeePerGas"],
        },
    )
    forged = owner_lane.replace(
        signature=LocalSigner(attacker.private_key).sign_hash(net.user_op_hash(owner_lane))
    )
    with pytest.raises(BundlerRejectedError) as bad_signature:
        net.bundler.send_user_operation(forged, net.entry_point)
    assert bad_signature.value.reason == "AA24"
    packed = owner_lane.pack().model_copy(update={"init_code": b"\x77\x02".ljust(20, b"\0") + install})
    handle_ops = keccak(
        b"handleOps((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[],address)"
    )[:4] + abi_encode(
        ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[]", "address"],
        [[packed.as_tuple()], attacker.address],
    )
    with pytest.raises(JsonRpcError) as init_refused:
        stack.node.request(
            "eth_call",
            [
                {"from": attacker.address, "to": stack.entry_point_v08, "data": "0x" + handle_ops.hex()},
                "latest",
            ],
        )
    sender_creator = call(stack, stack.entry_point_v08, "senderCreator()")[12:]
    revert = bytes.fromhex(str(init_refused.value.data)[2:])
    assert describe_revert(revert) == (
        f"AA13 EIP7702 sender init failed: AccountUnauthorized(sender={to_address(sender_creator)})"
    )
    assert not module_installed(stack, eoa.address)

    # the owner's own upgrade finds the delegation done and still starts from a clean state
    owner = net.eoa(eoa)
    grant = owner.upgrade(mallory_key, mint_policy(stack, eoa.address), valid_for=3600)
    assert grant.epoch == owner.epoch() != 0 and module_installed(stack, eoa.address)


def test_an_authorization_landed_by_someone_else_first_leaves_the_owner_in_control(
    net: Network, stack: LocalStack
) -> None:
    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    key = SessionKey.generate()
    op, _request = owner.build_upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
    assert op.eip7702_auth is not None and op.is_eip7702
    # the authorization is public once the operation is: someone lands it first, bare
    raw_transaction(stack, stack.accounts[3].private_key, eoa.address, authorizations=[op.eip7702_auth])
    assert code(stack, eoa.address) == delegation_code(stack.delegate)
    with pytest.raises(BundlerRejectedError, match="nonce"):  # the operation's authorization is stale now
        owner.send(op)
    grant = net.eoa(eoa).upgrade(
        key, mint_policy(stack, eoa.address), valid_for=3600
    )  # no authorization needed
    assert net.session(grant, key).execute(stack.nft, MINT, eoa.address).wait().success


# -- what a session key cannot do -----------------------------------------------------------------


def test_a_session_key_cannot_change_the_delegation_nor_call_the_account(
    net: Network, stack: LocalStack, other_delegate: str
) -> None:
    _owner, eoa, grant, key = upgraded(net, stack)
    session = net.session(grant, key)
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    # the session key signs an authorization: it is the session key's own, whatever nonce it names
    signed_by_key = sign_authorization(key, stack.chain_id, other_delegate, nonce)
    assert signed_by_key.authority() == key.address
    relayer = stack.accounts[4]
    raw_transaction(stack, relayer.private_key, relayer.address, authorizations=[signed_by_key])
    assert code(stack, eoa.address) == delegation_code(stack.delegate)
    forged = owner_operation(
        stack.module,
        eoa.address,
        nonce=net.chain.get_nonce(net.entry_point, eoa.address, 0),
        factory="0x7702",
        eip7702_auth=signed_by_key,
    )
    forged = forged.replace(signature=key.sign_hash(net.user_op_hash(forged)))
    with pytest.raises(BundlerRejectedError):  # simulated under the other code, the key is not the EOA's
        net.bundler.send_user_operation(forged, net.entry_point)
    assert code(stack, eoa.address) == delegation_code(stack.delegate)

    # the account itself and the module are never a session's targets
    uninstall = encode_function_call("uninstallModule(uint256,address,bytes)", 1, stack.module, b"")
    for target, data in ((eoa.address, uninstall), (stack.module, INVALIDATE_ALL_SESSIONS)):
        with pytest.raises(PolicyViolationError):
            session.send_calls([Call(target, 0, data)])
        with pytest.raises(BundlerRejectedError) as refused:
            session.send_calls([Call(target, 0, data)], check=False)
        assert refused.value.reason == "AA23" and "ForbiddenTarget(callIndex=0" in str(refused.value)
    assert module_installed(stack, eoa.address)
    assert session.execute(stack.nft, MINT, eoa.address).wait().success


def test_a_session_operation_cannot_carry_an_init_call_the_module_never_judges(
    net: Network, stack: LocalStack
) -> None:
    """On EntryPoint v0.8, an initCode of the 20-byte EIP-7702 marker followed by data makes the SenderCreator call
    the account with that data before validation, on any operation, and the userOpHash covers it: a session key
    could sign one. The module judges the callData only, so the delegate refuses an init call on every operation a
    validator validates; the owner's own operations may carry one."""
    _owner, eoa, grant, key = upgraded(net, stack)
    op = net.session(grant, key).build(function_call(stack.nft, MINT, eoa.address))
    # an init call that runs on the delegate's code as it is (ERC721Holder answers it)
    init_call = encode_function_call(
        "onERC721Received(address,address,uint256,bytes)", eoa.address, eoa.address, 1, b""
    )
    marker = b"\x77\x02".ljust(20, b"\0")

    def simulate(init_code: bytes, sign: Any) -> None:
        packed = op.pack().model_copy(update={"init_code": init_code})
        digest = user_op_hash_v08(
            packed, stack.entry_point_v08, stack.chain_id, eip7702_delegate=stack.delegate
        )
        packed = packed.model_copy(update={"signature": sign(digest)})
        handle_ops = keccak(
            b"handleOps((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[],address)"
        )[:4] + abi_encode(
            ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[]", "address"],
            [[packed.as_tuple()], stack.accounts[5].address],
        )
        stack.node.request(
            "eth_call",
            [
                {
                    "from": stack.accounts[5].address,
                    "to": stack.entry_point_v08,
                    "data": "0x" + handle_ops.hex(),
                    "gas": hex(3_000_000),
                },
                "latest",
            ],
        )

    simulate(marker, key.sign_hash)  # the marker alone: the session's operation is accepted
    with pytest.raises(JsonRpcError) as refused:
        simulate(marker + init_call, key.sign_hash)
    assert describe_revert(bytes.fromhex(str(refused.value.data)[2:])).startswith("AA23")
    assert (
        f"InitCallNotForValidators(validator={stack.module}, initCallLength={len(init_call)})"
        in describe_revert(bytes.fromhex(str(refused.value.data)[2:]))
    )
    # the owner's operation (nonce key 0) with the same init call validates: the owner may do anything
    op = owner_operation(
        stack.module, eoa.address, nonce=net.chain.get_nonce(net.entry_point, eoa.address, 0)
    )
    simulate(marker + init_call, eoa.sign_hash)


def test_a_session_riding_in_the_bundle_of_a_reset_cannot_call_a_module_installed_after_it(
    net: Network, stack: LocalStack
) -> None:
    """Attack 313 through the real EntryPoint v0.8 on a delegated EOA: one ``handleOps`` holding the owner's
    operation (``resetModules()``, then ``installModule`` of an owner validator) and, after it, a session's
    operation calling that validator's ``onInstall`` with the attacker's address (granted while the validator was no
    module of the EOA). The EntryPoint validates both before it runs either, so the session's operation is validated
    while the delegate still holds the session module, and runs after the owner's. The delegate asks every validator
    that validated an operation of the EOA in the transaction before an install: the owner's operation reverts
    (``ModuleIsSessionTarget``, the whole batch, the reset included), and the session's call reaches a contract
    that is no module of the EOA. Without that question the install landed and the attacker became the owner the
    EOA's new validator knows."""
    from keyscope.entrypoint import decode_user_operation_events
    from support.accounts import build_bytecode, deploy_code

    validator = deploy_code(
        stack.node, stack.deployer.address, build_bytecode("OwnerECDSAValidator"), "an owner validator"
    )
    eoa = new_eoa(stack)
    key = SessionKey.generate()
    with pytest.warns(TargetWarning, match="takes bytes no rule reads"):
        grant = net.eoa(eoa).upgrade(key, [Policy.call(validator, "onInstall(bytes data)")], valid_for=3600)
    attacker = LocalSigner.generate().address
    riding = net.session(grant, key).build(
        function_call(validator, "onInstall(bytes)", bytes.fromhex(attacker[2:])), check=False
    )
    install = encode_function_call(
        "installModule(uint256,address,bytes)", 1, validator, bytes.fromhex(eoa.address[2:])
    )
    owners = UserOperation(
        sender=eoa.address,
        nonce=net.chain.get_nonce(stack.entry_point_v08, eoa.address, 0),
        call_data=encode_execute(
            [Call(eoa.address, 0, keccak(b"resetModules()")[:4]), Call(eoa.address, 0, install)]
        ),
        call_gas_limit=1_000_000,
        verification_gas_limit=300_000,
        pre_verification_gas=100_000,
        max_fee_per_gas=riding.max_fee_per_gas,
        max_priority_fee_per_gas=riding.max_priority_fee_per_gas,
    )
    packed = owners.pack()
    digest = user_op_hash_v08(packed, stack.entry_point_v08, stack.chain_id, eip7702_delegate=stack.delegate)
    owners_packed = packed.model_copy(update={"signature": eoa.sign_hash(digest)})
    handle_ops = keccak(
        b"handleOps((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[],address)"
    )[:4] + abi_encode(
        ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[]", "address"],
        [[owners_packed.as_tuple(), riding.pack().as_tuple()], stack.deployer.address],
    )
    receipt = send_transaction(
        stack.node, stack.deployer.address, to=stack.entry_point_v08, data=handle_ops, what="the bundle"
    )
    events = decode_user_operation_events(receipt["logs"], stack.entry_point_v08)
    assert len(events) == 2
    by_sender_order = list(events.values())
    owner_event, session_event = by_sender_order
    assert not owner_event["success"]
    assert f"ModuleIsSessionTarget(module={validator}, validator={stack.module})" in describe_revert(
        owner_event["reason"]
    )
    assert session_event["success"]  # the session's call ran, after the owner's operation
    assert to_address(call(stack, validator, "ownerOf(address)", eoa.address)[-20:]) == attacker
    installed = call(stack, eoa.address, "isModuleInstalled(uint256,address,bytes)", 1, validator, b"")
    assert int.from_bytes(installed, "big") == 0  # ... on a contract that is no module of the EOA
    assert module_installed(stack, eoa.address)  # the reset was undone with the rest of the owner's batch


def answering(stack: LocalStack, word: bytes) -> str:
    """Deploy a contract that answers every call with the 32-byte ``word`` (a validator that says yes)."""
    runtime = b"\x7f" + word + bytes.fromhex("60005260206000f3")
    init = bytes([0x60, len(runtime)]) + bytes.fromhex("80600b6000396000f3")
    receipt = send_transaction(stack.node, stack.deployer.address, data=init + runtime, what="answering")
    address = to_address(receipt["contractAddress"])
    assert code(stack, address) == runtime
    return address


def test_a_session_key_cannot_name_a_validator_the_delegate_does_not_hold(
    net: Network, stack: LocalStack
) -> None:
    """The delegate routes an operation by its nonce key: a key naming an installed validator goes to it, any
    other to the EOA's own signature. A session key names a validator of its own that accepts everything (its
    `validateUserOp` returns 0), or the owner's lane (key 0), and signs with its key: neither validates, and
    the session's own lane still does."""
    _owner, eoa, grant, key = upgraded(net, stack)
    yes_validator = answering(stack, bytes(32))
    session = net.session(grant, key)
    op = session.build(function_call(stack.nft, MINT, eoa.address))
    lanes = {
        "a validator not installed": int(yes_validator, 16) << 64,
        "the owner's lane": 0,
    }
    for what, nonce_key in lanes.items():
        moved = op.replace(
            nonce=net.chain.get_nonce(net.entry_point, eoa.address, nonce_key >> 64) | nonce_key
        )
        for signature in (key.sign_hash(net.user_op_hash(moved)), op.signature):
            with pytest.raises(BundlerRejectedError) as refused:
                net.bundler.send_user_operation(moved.replace(signature=signature), net.entry_point)
            assert refused.value.reason == "AA24", (what, refused.value)
    assert nft_balance(stack, eoa.address) == 0
    assert session.execute(stack.nft, MINT, eoa.address).wait().success
    assert nft_balance(stack, eoa.address) == 1


def test_the_delegate_signs_erc1271_with_the_eoa_key_or_an_installed_validator_only(
    net: Network, stack: LocalStack
) -> None:
    """ERC-1271 on the delegate: a signature starting with an installed validator's address goes to it, anything
    else must be the EOA's own. A session key's bare signature, its signature behind the session module's
    address, and anything behind a validator that is not installed (one answering the ERC-1271 magic value to
    every question) are all refused; the EOA's signature of the same hash is accepted."""
    _owner, eoa, _grant, key = upgraded(net, stack)
    magic = bytes.fromhex("1626ba7e")
    yes_validator = answering(stack, magic.ljust(32, b"\0"))
    digest = keccak(b"a permit the session key would like to sign as the account")

    def verdict(signature: bytes) -> bytes:
        return call(stack, eoa.address, "isValidSignature(bytes32,bytes)", digest, signature)[:4]

    assert verdict(eoa.sign_hash(digest)) == magic
    refused = {
        "the session key's bare signature": key.sign_hash(digest),
        "behind the session module": bytes.fromhex(stack.module[2:]) + key.sign_hash(digest),
        "behind a validator not installed": bytes.fromhex(yes_validator[2:]) + key.sign_hash(digest),
        "behind a validator not installed, nothing after": bytes.fromhex(yes_validator[2:]),
    }
    for what, signature in refused.items():
        assert verdict(signature) == bytes.fromhex("ffffffff"), what


def test_a_module_of_the_delegate_asking_for_a_session_s_signature_gets_none(
    net: Network, stack: LocalStack
) -> None:
    """docs/accounts.md: the module refuses a session's signature to a verifier that is a module of the account, or
    the account (attack 85), which holds only if the account hands the module its own caller as ``sender`` (attack
    161). The e2e account tests check the five kinds; here the delegate: asked by the session module (a validator
    of the EOA) or by the EOA itself, it answers no; asked by the verifying contract, yes."""
    from keyscope.typed_data import TypedData

    owner, eoa, _grant, _key = upgraded(net, stack)
    key = SessionKey.generate()
    approvals = {"Approval": [{"name": "what", "type": "uint256"}]}
    domain = {
        "name": "Approvals",
        "chainId": net.chain_id,
        "verifyingContract": LocalSigner.generate().address,
    }
    grant = owner.grant(
        key,
        [mint_policy(stack, eoa.address)],
        typed_data=[Policy.typed_data(domain, approvals, "Approval")],
        onchain=True,
    )
    data = {"types": approvals, "primaryType": "Approval", "domain": domain, "message": {"what": 1}}
    signature = net.session(grant, key, verify_on_chain=False).sign_typed_data(data)
    question = keccak(b"isValidSignature(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [TypedData(data).digest, signature]
    )

    def answer(sender: str) -> str:
        asked = {"from": sender, "to": eoa.address, "data": "0x" + question.hex()}
        return str(stack.node.request("eth_call", [asked, "latest"]))[:10]

    assert answer(stack.module) == answer(eoa.address) == "0xffffffff"
    assert answer(domain["verifyingContract"]) == "0x1626ba7e"


def test_the_eoa_key_still_signs_ordinary_transactions(net: Network, stack: LocalStack) -> None:
    owner, eoa, grant, key = upgraded(net, stack)
    friend = LocalSigner.generate().address
    owner.send_transaction(friend, value=ETHER // 10)  # a plain transfer, signed by the EOA's key
    assert stack.balance(friend) == ETHER // 10
    assert code(stack, eoa.address) == delegation_code(stack.delegate)  # still delegated
    session = net.session(grant, key)
    assert session.execute(stack.nft, MINT, eoa.address).wait().success

    with pytest.raises(DelegationError, match="would fail"):  # estimated first: a reverting one is not sent
        owner.send_transaction(stack.module, bytes.fromhex("12345678"))
    other, other_eoa, _, _ = upgraded(net, stack)
    with pytest.raises(BadInputError, match=f"and this owner's is {other_eoa.address}: nothing was sent"):
        other.revoke_directly(grant)  # its transaction would revoke nothing of this EOA's session
    assert not flag(stack, "isSessionRevoked(address,bytes32)", eoa.address, grant.session_id)
    owner.revoke_directly(grant)  # no bundler, no UserOperation: the EOA calls the module itself
    assert flag(stack, "isSessionRevoked(address,bytes32)", eoa.address, grant.session_id)
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, eoa.address)
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16)
    with pytest.raises(SessionRevokedError, match=r"already revoked on chain.*nothing was sent"):
        owner.revoke_directly(
            "0x" + grant.session_id.hex()
        )  # by its id: a second revocation would only cost gas
    assert int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16) == nonce


# -- EntryPoint v0.8 -----------------------------------------------------------------------------


def test_the_sdk_hashes_as_entry_point_v08_does(net: Network, stack: LocalStack) -> None:
    _owner, eoa, grant, key = upgraded(net, stack)
    op = net.session(grant, key).build(function_call(stack.nft, MINT, eoa.address))
    on_chain = call_entry_point_hash(stack, op)
    assert (
        net.user_op_hash(op) == on_chain == user_op_hash_v08(op.pack(), stack.entry_point_v08, stack.chain_id)
    )
    assert on_chain != user_op_hash_v07(op.pack(), stack.entry_point_v08, stack.chain_id)
    marked = op.replace(factory="0x7702")  # an EIP-7702 initCode: the EntryPoint hashes the delegate in
    assert net.user_op_hash(marked) == call_entry_point_hash(stack, marked) != on_chain


def call_entry_point_hash(stack: LocalStack, op: UserOperation) -> bytes:
    data = encode_get_user_op_hash(op.pack())
    result = stack.node.request(
        "eth_call", [{"to": stack.entry_point_v08, "data": "0x" + data.hex()}, "latest"]
    )
    return bytes.fromhex(result[2:])


def test_a_factory_account_on_entry_point_v08_runs_the_same_session_flow(stack: LocalStack) -> None:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory_v08)
    assert net.entry_point == ENTRY_POINT_V08 and net.entry_point_version == "0.8"
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    key = SessionKey.generate()
    grant = owner.grant(
        key, mint_policy(stack, owner.account), valid_for=3600
    )  # off-chain, account not deployed
    assert grant.entry_point == ENTRY_POINT_V08
    session = net.session(grant, key)
    assert session.execute(stack.nft, MINT, owner.account).wait().success  # creates the account, enables
    entry = call(stack, owner.account, "entryPoint()")
    assert to_address(entry[12:]) == ENTRY_POINT_V08
    with pytest.raises(BundlerRejectedError) as refused:
        session.execute(stack.nft, MINT, LocalSigner.generate().address, check=False)
    assert refused.value.reason == "AA23"
    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, owner.account)
    assert nft_balance(stack, owner.account) == 1


def test_a_network_never_mixes_entry_points(stack: LocalStack) -> None:
    with pytest.raises(ConfigurationError, match="one EntryPoint"):
        connect(
            stack.rpc_url,
            stack.bundler_url,
            module=stack.module,
            factory=stack.factory,
            delegate=stack.delegate,
        )
    # an EntryPoint given beside a factory trusting another: every operation of its accounts would fail AA23
    # (AccountUnauthorized) after the owner signed
    for factory, other in ((stack.factory, ENTRY_POINT_V08), (stack.factory_v08, ENTRY_POINT_V07)):
        with pytest.raises(
            ConfigurationError, match=r"the factory .* trusts EntryPoint .* but entry_point is"
        ):
            connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=factory, entry_point=other)
    v08 = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory_v08)
    owner = v08.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    owner.execute(function_call(stack.nft, MINT, owner.account)).wait()  # created on v0.8
    v07 = connect(stack.rpc_url, stack.bundler_url, module=stack.module)  # the canonical v0.7
    with pytest.raises(ConfigurationError, match=r"trusts EntryPoint v0\.8"):
        v07.owner(owner.signer, owner.account).execute(function_call(stack.nft, MINT, owner.account))
    # a grant too, before the owner signs: its every session operation would fail AA23 (AccountUnauthorized)
    with pytest.raises(
        ConfigurationError, match=r"trusts EntryPoint v0\.8 .*: connect\(\.\.\., entry_point="
    ):
        v07.owner(owner.signer, owner.account).grant(SessionKey.generate(), mint_policy(stack, owner.account))
    key = SessionKey.generate()
    grant = owner.grant(key, mint_policy(stack, owner.account), onchain=True)
    with pytest.raises(ConfigurationError, match=r"EntryPoint .*: connect\(\.\.\., module=.*, entry_point="):
        v07.session(grant, key)


def _sponsored_network(stack: LocalStack, sponsor: LocalSponsor) -> Network:
    """The stack's network with EIP-7702 accounts on keyscope's delegate, gas paid by ``sponsor``."""
    return connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate, paymaster=sponsor.url
    )


def test_a_sponsor_on_entry_point_v08_pays_for_the_upgrade_and_the_session(
    net: Network, stack: LocalStack
) -> None:
    policy = SponsorshipPolicy(name="v0.8 sponsor", targets="any")
    with LocalSponsor(stack, entry_point=stack.entry_point_v08, policy=policy) as sponsor:
        sponsored = _sponsored_network(stack, sponsor)
        eoa = new_eoa(stack)
        before = holdings(stack, eoa.address)
        key = SessionKey.generate()
        pending = sponsored.eoa(eoa).send_upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
        grant = pending.wait()
        assert pending.receipt is not None and pending.receipt.paymaster == sponsor.paymaster
        minted = sponsored.session(grant, key).execute(stack.nft, MINT, eoa.address).wait()
        assert minted.paymaster == sponsor.paymaster
        assert holdings(stack, eoa.address) == before  # not a wei moved: the sponsor paid
        assert nft_balance(stack, eoa.address) == 1


_USER_OP_TUPLE = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"


def onchain_sponsorship_hash(stack: LocalStack, paymaster: str, packed: PackedUserOperation) -> bytes:
    """``SponsorPaymaster.sponsorshipHash(packed, 2**40, 7)`` by eth_call at the latest block."""
    data = keccak(f"sponsorshipHash({_USER_OP_TUPLE},uint48,uint48)".encode())[:4] + abi_encode(
        [_USER_OP_TUPLE, "uint48", "uint48"], [packed.as_tuple(), 2**40, 7]
    )
    answer = stack.node.request("eth_call", [{"to": paymaster, "data": "0x" + data.hex()}, "latest"])
    return bytes.fromhex(answer[2:])


def test_a_sponsorship_binds_the_delegate_its_operation_installs(
    net: Network, stack: LocalStack, other_delegate: str
) -> None:
    """The sponsor is shown an EOA's first operation delegating to keyscope's delegate and minting (what its
    policy covers) and signs it; the EOA's owner lands the same operation with an authorization to other code
    instead (EntryPoint v0.8 lets the bundle's type-4 transaction install whatever it names), which would run the
    same callData as something else. The paymaster hashes the delegate the sender's code names, as the
    EntryPoint's userOpHash does: that operation fails validation (AA34) and the deposit pays nothing; the
    operation as shown lands, paid by the sponsor."""
    policy = SponsorshipPolicy(
        name="mints on keyscope's delegate",
        delegates=(stack.delegate,),
        targets={stack.nft: (MINT,)},
        total_budget_wei=ETHER,
    )
    with LocalSponsor(stack, entry_point=stack.entry_point_v08, policy=policy) as sponsor:
        sponsored = _sponsored_network(stack, sponsor)
        eoa = new_eoa(stack)
        owner = sponsored.eoa(eoa)
        shown = sign_authorization(eoa, stack.chain_id, stack.delegate, 0)
        mint = Call(stack.nft, 0, encode_function_call(MINT, eoa.address))
        op = owner.build(mint, eip7702_auth=shown)
        assert op.factory == "0x7702" and op.paymaster == sponsor.paymaster
        deposit = get_deposit_info(stack.node, stack.entry_point_v08, sponsor.paymaster).deposit

        # the owner swaps the authorization for one to other code, and signs as that code checks
        elsewhere = op.replace(eip7702_auth=sign_authorization(eoa, stack.chain_id, other_delegate, 0))
        elsewhere = elsewhere.replace(
            signature=eoa.sign_hash(elsewhere.hash(stack.entry_point_v08, stack.chain_id, "0.8"))
        )
        with pytest.raises(BundlerRejectedError) as refused:
            submit(net.bundler, elsewhere, stack.entry_point_v08).wait()
        assert refused.value.reason == "AA34"  # the sponsor's signature is for keyscope's delegate only
        assert code(stack, eoa.address) == b""
        assert get_deposit_info(stack.node, stack.entry_point_v08, sponsor.paymaster).deposit == deposit

        # the sponsored validation reads the sender's code, which ERC-7562 allows for the sender
        checker = Erc7562Checker(stack.node, stack.entry_point_v08, submitter=stack.accounts[5].address)
        report = checker.check([op])
        assert report.outcome == "ok", report.summary()
        report.assert_clean()

        receipt = owner.send(op).wait()
        assert receipt.paymaster == sponsor.paymaster
        assert code(stack, eoa.address) == delegation_code(stack.delegate)
        assert nft_balance(stack, eoa.address) == 1
        assert get_deposit_info(stack.node, stack.entry_point_v08, sponsor.paymaster).deposit < deposit


def test_the_sponsorship_hash_of_an_eip7702_operation_is_the_contracts(
    stack: LocalStack, other_delegate: str
) -> None:
    """The service's digest equals ``SponsorPaymaster.sponsorshipHash`` for the bare marker (2 bytes or 20), the
    marker followed by data, a factory whose address starts with 7702, and no initCode, on an EOA delegated to
    other code; the contract refuses the marker for a sender that delegates nowhere."""
    with LocalSponsor(stack, entry_point=stack.entry_point_v08) as sponsor:
        eoa = new_eoa(stack)
        auth = sign_authorization(eoa, stack.chain_id, other_delegate, 0)
        raw_transaction(stack, stack.accounts[3].private_key, eoa.address, authorizations=[auth])
        assert code(stack, eoa.address) == delegation_code(other_delegate)
        marker = bytes.fromhex("7702").ljust(20, b"\0")
        base = owner_operation(stack.module, eoa.address, paymaster=sponsor.paymaster).pack()
        cases = {
            "bare marker": bytes.fromhex("7702"),
            "marker as an address": marker,
            "marker and data": marker + bytes.fromhex("deadbeef"),
            "factory starting 7702": bytes.fromhex("7702") + bytes(17) + b"\x01" + bytes(4),
            "none": b"",
        }
        digests = set()
        for name, init_code in cases.items():
            packed = base.model_copy(update={"init_code": init_code})
            expected = sponsorship_hash(
                packed,
                sponsor.paymaster,
                stack.chain_id,
                valid_until=2**40,
                valid_after=7,
                eip7702_delegate=other_delegate,
            )
            assert onchain_sponsorship_hash(stack, sponsor.paymaster, packed) == expected, name
            digests.add(expected)
        assert len(digests) == 4  # the marker's two spellings hash alike, as the EntryPoint's userOpHash does
        # the delegate is what the marker's digest covers: another one gives another digest
        bare = base.model_copy(update={"init_code": bytes.fromhex("7702")})
        assert sponsorship_hash(
            bare,
            sponsor.paymaster,
            stack.chain_id,
            valid_until=2**40,
            valid_after=7,
            eip7702_delegate=stack.delegate,
        ) != onchain_sponsorship_hash(stack, sponsor.paymaster, bare)

        nowhere = new_eoa(stack).address
        with pytest.raises(JsonRpcError) as refused:
            onchain_sponsorship_hash(stack, sponsor.paymaster, bare.model_copy(update={"sender": nowhere}))
        revert = bytes.fromhex(str(refused.value.data)[2:])
        assert revert == keccak(b"SenderNotEip7702Delegated(address)")[:4] + abi_encode(
            ["address"], [nowhere]
        )


_MARKER = bytes.fromhex("7702").ljust(20, b"\0")

_INIT_CODES = st.one_of(
    # the marker as bundlers send it (2 to 20 bytes: the rest of its first 20 bytes zero), alone or with data
    st.integers(2, 20).map(lambda n: _MARKER[:n]),
    st.binary(min_size=1, max_size=64).map(lambda data: _MARKER + data),
    # near misses: one byte of the first 20 changed (another factory), a single byte, anything
    st.tuples(st.integers(0, 19), st.integers(1, 255), st.binary(max_size=24)).map(
        lambda t: bytes(b ^ t[1] if i == t[0] else b for i, b in enumerate(_MARKER)) + t[2]
    ),
    st.just(bytes.fromhex("77")),
    st.binary(max_size=64),
)


def test_the_sponsorship_hash_of_generated_init_codes_is_the_contracts(stack: LocalStack) -> None:
    """Generated initCodes (the EIP-7702 marker in every length bundlers may send, with data after it, near misses
    and anything) on a sender whose code delegates to a generated address: the service's digest equals
    ``SponsorPaymaster.sponsorshipHash``, so the delegate is covered exactly where the contract covers it."""
    with LocalSponsor(stack, entry_point=stack.entry_point_v08) as sponsor:
        sender = new_eoa(stack).address
        base = owner_operation(stack.module, sender, paymaster=sponsor.paymaster).pack()

        @settings(max_examples=40, deadline=None)
        @given(init_code=_INIT_CODES, delegate=st.just(bytes(20)) | st.binary(min_size=20, max_size=20))
        def check(init_code: bytes, delegate: bytes) -> None:
            address = to_address("0x" + delegate.hex())
            stack.node.request("anvil_setCode", [sender, "0x" + delegation_code(address).hex()])
            packed = base.model_copy(update={"init_code": init_code})
            window = {"valid_until": 2**40, "valid_after": 7}
            if is_eip7702_init_code(init_code) and not any(delegate):
                # delegating to the zero address clears the code: there is no delegate, refused on both sides
                with pytest.raises(BadInputError, match="zero address"):
                    sponsorship_hash(
                        packed, sponsor.paymaster, stack.chain_id, **window, eip7702_delegate=address
                    )
                with pytest.raises(JsonRpcError, match="0xc10c2883"):  # SenderNotEip7702Delegated(sender)
                    onchain_sponsorship_hash(stack, sponsor.paymaster, packed)
                return
            expected = sponsorship_hash(
                packed, sponsor.paymaster, stack.chain_id, **window, eip7702_delegate=address
            )
            assert onchain_sponsorship_hash(stack, sponsor.paymaster, packed) == expected, init_code.hex()

        check()


def test_the_local_sponsor_for_entry_point_v08_sponsors_creation_by_the_v08_factory(
    stack: LocalStack,
) -> None:
    """docs/sponsorship.md: without a policy, the local sponsor sponsors new accounts only from the stack's keyscope
    factory: for a v0.8 paymaster that is the v0.8 factory (a v0.7 factory's accounts never use that paymaster)."""
    with LocalSponsor(stack, entry_point=stack.entry_point_v08) as v08, LocalSponsor(stack) as v07:
        assert v08.sponsor.policy.factories == (stack.factory_v08,)
        assert v07.sponsor.policy.factories == (stack.factory,)


# -- ERC-7562 --------------------------------------------------------------------------------------


def test_the_first_operation_and_a_session_operation_follow_erc7562(net: Network, stack: LocalStack) -> None:
    checker = Erc7562Checker(stack.node, stack.entry_point_v08, submitter=stack.accounts[5].address)
    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    key = SessionKey.generate()
    first, request = owner.build_upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
    report = checker.check([first])  # traced with the EOA's authorization in the call
    assert report.outcome == "ok", report.summary()
    report.assert_clean()
    assert [phase.kind for phase in report.trace.phases] == ["account"]
    assert not report.storage_in(stack.module)  # the owner's validation never asks the module

    owner.send(first).wait()
    session = net.session(request.enabled_on_chain(), key)
    steady = session.build(function_call(stack.nft, MINT, eoa.address))
    report = checker.check([steady])
    assert report.outcome == "ok", report.summary()
    report.assert_clean()
    module_storage = report.storage_in(stack.module)
    assert module_storage and all(verdict.associated == eoa.address for verdict in module_storage)
    assert session.send(steady).wait().success


# -- the documentation's examples, as written ------------------------------------------------------------


def python_block(path: Path, heading: str) -> str:
    """The first Python block under ``heading`` in ``path``."""
    text = path.read_text()
    found = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert found, f"no Python block under {heading!r} in {path.name}"
    return found.group(1)


@pytest.mark.parametrize(
    ("document", "heading"),
    [
        ("README.md", "### An EOA the user already has (EIP-7702)"),
        ("docs/accounts.md", "## EOAs: EIP-7702 delegation (EntryPoint v0.8)"),
    ],
)
def test_the_eoa_examples_run_as_written(stack: LocalStack, document: str, heading: str) -> None:
    eoa = new_eoa(stack)
    scope: dict[str, Any] = {
        "NODE_URL": stack.rpc_url,
        "BUNDLER_URL": stack.bundler_url,
        "SESSION_MODULE": stack.module,
        "KEYSCOPE_DELEGATE": stack.delegate,
        "EOA_KEY": eoa.private_key,
        "NFT": stack.nft,
    }
    exec(compile(python_block(ROOT / document, heading), document, "exec"), scope)
    assert scope["owner"].account == eoa.address
    assert code(stack, eoa.address) == delegation_code(stack.delegate)
    assert nft_balance(stack, eoa.address) == 1


def test_an_eoa_delegated_to_the_account_implementation_is_initialised_by_no_stranger(
    net: Network, stack: LocalStack
) -> None:
    """An EOA delegates by mistake to the factory's ``KeyscopeAccount`` implementation (not to ``KeyscopeDelegate``):
    that code's owner is set by ``initialize`` over the EOA's fresh storage. A stranger lands the EOA's public
    authorization in a type-4 transaction of its own calling ``initialize(stranger, [])`` on the EOA: only the factory
    may initialise, the call reverts, the delegation stands with no owner, and the stranger's operation signed as
    owner fails (AA24) with the EOA's ether in place."""
    eoa = new_eoa(stack)
    stranger = stack.accounts[2]
    implementation = to_address(call(stack, stack.factory, "accountImplementation()")[12:])
    authorization = sign_authorization(eoa, stack.chain_id, implementation, 0)
    initialize = keccak(b"initialize(address,(uint256,address,bytes)[])")[:4] + abi_encode(
        ["address", "(uint256,address,bytes)[]"], [stranger.address, []]
    )
    receipt = raw_transaction(
        stack, stranger.private_key, eoa.address, initialize, authorizations=[authorization]
    )
    assert int(receipt["status"], 16) == 0
    assert code(stack, eoa.address) == delegation_code(implementation)
    assert to_address(call(stack, eoa.address, "signer()")[12:]) == "0x" + "00" * 20

    balance = stack.balance(eoa.address)
    take = UserOperation(
        sender=eoa.address,
        nonce=0,
        call_data=encode_execute([Call(stranger.address, ETHER)]),
        call_gas_limit=200_000,
        verification_gas_limit=200_000,
        pre_verification_gas=60_000,
        max_fee_per_gas=GAS_PRICE["maxFeePerGas"],
        max_priority_fee_per_gas=GAS_PRICE["maxPriorityFeePerGas"],
    )
    op_hash = user_op_hash_v07(take.pack(), stack.entry_point, stack.chain_id)
    forged = take.replace(signature=LocalSigner(stranger.private_key).sign_hash(op_hash))
    with pytest.raises(BundlerRejectedError) as refused:
        net.bundler.send_user_operation(forged, stack.entry_point)
    assert refused.value.reason == "AA24", refused.value
    assert stack.balance(eoa.address) == balance


@pytest.mark.parametrize("what", ["implementation", "simple7702", "no code"])
def test_the_sdk_signs_an_authorization_only_for_keyscopes_delegate(
    stack: LocalStack, other_delegate: str, what: str
) -> None:
    """``connect(..., delegate=...)`` given the factory's account implementation (an EOA delegating there has no
    owner), other account code, or an address without code: upgrading, installing and either way of sending refuse
    before the EOA signs any authorization, naming the address and what it answers; the EOA keeps no code and its
    nonce, and the same owner upgrades once the network names keyscope's delegate."""
    implementation = to_address(call(stack, stack.factory, "accountImplementation()")[12:])
    wrong = {
        "implementation": implementation,
        "simple7702": other_delegate,
        "no code": to_address("0x" + "7d" * 20),
    }[what]
    answers = {
        "implementation": "keyscope's account implementation",
        "simple7702": "answers",
        "no code": "has no code",
    }[what]
    misnamed = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, delegate=wrong, entry_point=ENTRY_POINT_V08
    )
    eoa = new_eoa(stack)
    owner = misnamed.eoa(eoa)
    key = SessionKey.generate()
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16)
    attempts = [
        lambda: owner.upgrade(key, mint_policy(stack, eoa.address), valid_for=3600),
        lambda: owner.upgrade(key, mint_policy(stack, eoa.address), valid_for=3600, transaction=True),
        owner.install_sessions,
    ]
    for attempt in attempts:
        with pytest.raises(DelegationError) as refused:
            attempt()
        message = str(refused.value)
        assert wrong in message and answers in message and "KeyscopeDelegate" in message, message
        assert refused.value.delegate == wrong and refused.value.account == eoa.address
    assert code(stack, eoa.address) == b""
    assert int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16) == nonce

    right = connect(stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate)
    right.eoa(eoa).upgrade(key, mint_policy(stack, eoa.address), valid_for=3600)
    assert code(stack, eoa.address) == delegation_code(stack.delegate)


def _claiming_delegate_code(entry_point: str) -> bytes:
    """Creation code of a contract that is not keyscope's delegate but answers ``accountId()`` as it does
    (``keyscope.delegate.v0.1.0``) and every other question with the EntryPoint's address (so that it also says it
    trusts the network's EntryPoint): any code can say so, an attacker's drainer included."""
    answer = abi_encode(["string"], ["keyscope.delegate.v0.1.0"])
    selector = keccak(b"accountId()")[:4]
    head = (
        bytes.fromhex("60003560e01c63")
        + selector
        + bytes.fromhex("14")  # selector == accountId()?
        + bytes.fromhex("61")
        + (0).to_bytes(2, "big")  # PUSH2 jumpdest (patched below)
        + bytes.fromhex("57")  # JUMPI
        + bytes.fromhex("73")
        + bytes.fromhex(entry_point[2:])  # PUSH20 entry point
        + bytes.fromhex("60005260206000f3")  # MSTORE at 0, RETURN 32 bytes
    )
    jumpdest = len(head)
    data_offset = (
        jumpdest + 16
    )  # JUMPDEST, PUSH2 len, PUSH2 offset, PUSH1 0, CODECOPY, PUSH2 len, PUSH1 0, RETURN
    body = (
        bytes.fromhex("5b61")
        + len(answer).to_bytes(2, "big")
        + bytes.fromhex("61")
        + data_offset.to_bytes(2, "big")
        + bytes.fromhex("600039")  # CODECOPY(0, data_offset, len)
        + bytes.fromhex("61")
        + len(answer).to_bytes(2, "big")
        + bytes.fromhex("6000f3")  # RETURN(0, len)
    )
    assert jumpdest + len(body) == data_offset
    head = head.replace(bytes.fromhex("610000"), bytes.fromhex("61") + jumpdest.to_bytes(2, "big"), 1)
    runtime = head + body + answer
    size = len(runtime).to_bytes(2, "big")
    init = (
        bytes.fromhex("61")
        + size
        + bytes.fromhex("600e600039")
        + bytes.fromhex("61")
        + size
        + bytes.fromhex("6000f3")
    )
    assert len(init) == 14
    return init + runtime


def test_code_that_only_says_it_is_keyscopes_delegate_gets_no_authorization(stack: LocalStack) -> None:
    """Attack 173 with code that answers keyscope's delegate ``accountId()`` (as attack 270 with a paymaster that
    answers ``SPONSORSHIP_TYPEHASH()``): a dapp's configuration (or a page) names such code as the delegate, and the
    SDK took its word: the EOA's key signed an authorization delegating the EOA to it, after which that code holds
    everything the EOA holds. What code says of itself proves nothing: the SDK must refuse before signing, as for
    the account implementation."""
    receipt = send_transaction(
        stack.node, stack.deployer.address, data=_claiming_delegate_code(ENTRY_POINT_V08), what="claimant"
    )
    claimant = to_address(receipt["contractAddress"])
    misnamed = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, delegate=claimant, entry_point=ENTRY_POINT_V08
    )
    assert misnamed.account_id(claimant) == "keyscope.delegate.v0.1.0"  # it says so
    eoa = new_eoa(stack)
    owner = misnamed.eoa(eoa)
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16)
    for attempt in (
        lambda: owner.build_upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600),
        lambda: owner.upgrade(
            SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600, transaction=True
        ),
        owner.install_sessions,
    ):
        with pytest.raises(DelegationError) as refused:
            attempt()
        assert claimant in str(refused.value) and "KeyscopeDelegate" in str(refused.value), refused.value
    assert code(stack, eoa.address) == b""
    assert int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16) == nonce


def test_an_upgrade_refuses_modules_other_code_left_in_the_delegates_storage(
    net: Network, stack: LocalStack
) -> None:
    """Storage left by other code: EIP-7702 never clears storage, and code the EOA delegated to before (a drainer a
    page got it to authorize, a buggy wallet) can write anything into keyscope's delegate's namespace, such as an
    executor of its choosing in the delegate's executor set (``executeFromExecutor`` asks that set only). The owner
    recovers by upgrading with keyscope; the SDK reads that namespace already (``module_registered``) but not the
    sets, so it delegated the EOA back to keyscope's delegate with the planted executor in force: the stranger then
    takes the EOA's ether with a plain call. Before its key signs the authorization, the SDK must say what the
    namespace holds besides the session module, and do nothing."""
    from keyscope.accounts.delegate import DELEGATE_STORAGE_LOCATION

    eoa = new_eoa(stack)
    stranger = LocalSigner.generate()
    stack.fund(stranger.address, ETHER)
    # what other code running on the EOA's storage could write: the executor set {stranger}
    executors = DELEGATE_STORAGE_LOCATION + 2
    position = int.from_bytes(
        keccak(abi_encode(["address", "uint256"], [stranger.address, executors + 1])), "big"
    )
    first_value = int.from_bytes(keccak(executors.to_bytes(32, "big")), "big")
    for slot, value in (
        (executors, 1),
        (first_value, int(stranger.address, 16)),
        (position, 1),
    ):
        stack.node.request(
            "anvil_setStorageAt", [eoa.address, hex(slot), "0x" + value.to_bytes(32, "big").hex()]
        )

    owner = net.eoa(eoa)
    with pytest.raises(DelegationError) as refused:
        owner.upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    assert stranger.address in str(refused.value) and "executor" in str(refused.value), refused.value
    assert (
        code(stack, eoa.address) == b""
    )  # nothing signed nor sent: the planted executor never comes to life


@pytest.mark.parametrize("planted", ["a selector's handler", "a selector's handler and the handler set"])
def test_a_fallback_handler_other_code_left_in_the_delegates_storage_never_acts_as_the_eoa(
    net: Network, stack: LocalStack, planted: str
) -> None:
    """Storage left by other code, as for the planted executor above, but in the fallback handlers' mapping, which
    the SDK does not read (a mapping cannot be listed): the delegate calls the handler of a selector it has no
    function for, from the EOA itself, with whatever calldata anyone sends. A token as the handler of
    ``transfer(address,uint256)`` makes every stranger's ``EOA.transfer(stranger, amount)`` a transfer of the EOA's
    own tokens, once the owner upgrades with keyscope. Whatever other code wrote, no handler keyscope's SDK has not
    seen may act as the EOA: one only in the mapping routes nothing, and one in the handler set the delegate routes
    from (which the SDK lists) stops the upgrade before anything is signed."""
    from keyscope.accounts.delegate import DELEGATE_STORAGE_LOCATION
    from support.victims import deploy, transact

    eoa = new_eoa(stack)
    token = deploy(stack, "NamedToken", ["string", "string", "uint8"], ["Token", "TKN", 18])
    transact(stack, token, "mint(address,uint256)", ["address", "uint256"], [eoa.address, 1000])
    transfer = keccak(b"transfer(address,uint256)")[:4]
    fallbacks, counts, handlers = (DELEGATE_STORAGE_LOCATION + n for n in (4, 5, 6))

    def word(data: bytes) -> int:
        return int.from_bytes(keccak(data), "big")

    writes = [  # fallbacks[transfer] = token; fallbackCount[token] = 1
        (word(transfer + bytes(28) + fallbacks.to_bytes(32, "big")), int(token, 16)),
        (word(abi_encode(["address", "uint256"], [token, counts])), 1),
    ]
    in_set = planted.endswith("handler set")
    if in_set:  # and the handler set {token}
        writes += [
            (handlers, 1),
            (word(handlers.to_bytes(32, "big")), int(token, 16)),
            (word(abi_encode(["address", "uint256"], [token, handlers + 1])), 1),
        ]
    for slot, value in writes:
        stack.node.request(
            "anvil_setStorageAt", [eoa.address, hex(slot), "0x" + value.to_bytes(32, "big").hex()]
        )

    owner = net.eoa(eoa)
    refused = None
    try:
        owner.upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    except DelegationError as error:
        refused = error
    if in_set:
        assert refused is not None, "the upgrade delegated the EOA over a planted fallback handler"
        assert to_address(token) in str(refused) and "fallback handler" in str(refused), refused
        assert code(stack, eoa.address) == b""  # nothing signed nor sent
    else:
        assert refused is None, refused
    thief = stack.accounts[0].address
    # a stranger's call to the EOA, for the selector the planted handler is set for
    with contextlib.suppress(KeyscopeError, JsonRpcError):
        transact(stack, eoa.address, "transfer(address,uint256)", ["address", "uint256"], [thief, 1000])
    assert int.from_bytes(call(stack, token, "balanceOf(address)", eoa.address), "big") == 1000
    assert int.from_bytes(call(stack, token, "balanceOf(address)", thief), "big") == 0


@pytest.mark.parametrize("planted", ["executor", "fallback handler"])
def test_a_module_other_code_wrote_only_into_a_sets_positions_never_acts_as_the_eoa(
    net: Network, stack: LocalStack, planted: str
) -> None:
    """Storage left by other code, as for the planted executor and handler above, but in a set's positions mapping
    only: OpenZeppelin's ``EnumerableSet.contains`` reads ``_positions[value] != 0`` and nothing else, while the SDK
    lists the set's values array (its length word, then its entries). Other code writes ``_positions[stranger] = 1``
    in the executor set, or ``_positions[token] = 1`` in the handler set beside ``fallbacks[transfer] = token``, and
    leaves the length at 0: the SDK sees empty sets and signs, and the delegate held the module in force all the
    same (the stranger's ``executeFromExecutor`` took the EOA's ether; the stranger's ``EOA.transfer`` its tokens).
    A module is in force only while the set lists it: its position names an entry, below the length, holding it."""
    from keyscope.accounts.delegate import DELEGATE_STORAGE_LOCATION
    from support.victims import deploy, transact

    eoa = new_eoa(stack)
    thief = stack.accounts[0].address
    token = deploy(stack, "NamedToken", ["string", "string", "uint8"], ["Token", "TKN", 18])
    transact(stack, token, "mint(address,uint256)", ["address", "uint256"], [eoa.address, 1000])
    transfer = keccak(b"transfer(address,uint256)")[:4]

    def word(data: bytes) -> int:
        return int.from_bytes(keccak(data), "big")

    def position(module: str, set_slot: int) -> int:
        return word(abi_encode(["address", "uint256"], [module, set_slot + 1]))

    if planted == "executor":  # the executor set's positions: {thief} that no one lists
        writes = [(position(thief, DELEGATE_STORAGE_LOCATION + 2), 1)]
    else:  # fallbacks[transfer] = token, fallbackCount[token] = 1, the handler set's positions: {token}
        fallbacks, counts, handlers = (DELEGATE_STORAGE_LOCATION + n for n in (4, 5, 6))
        writes = [
            (word(transfer + bytes(28) + fallbacks.to_bytes(32, "big")), int(token, 16)),
            (word(abi_encode(["address", "uint256"], [token, counts])), 1),
            (position(token, handlers), 1),
        ]
    for slot, value in writes:
        stack.node.request(
            "anvil_setStorageAt", [eoa.address, hex(slot), "0x" + value.to_bytes(32, "big").hex()]
        )

    owner = net.eoa(eoa)
    # the SDK cannot list a mapping: it sees empty sets, and the upgrade lands
    owner.upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    assert owner.is_delegated()

    def balance(who: str) -> int:
        return int(stack.node.request("eth_getBalance", [who, "latest"]), 16)

    held = balance(eoa.address)
    if planted == "executor":
        _executor_takes_half(stack, eoa.address, thief, held)
    else:
        with contextlib.suppress(KeyscopeError, JsonRpcError):
            transact(stack, eoa.address, "transfer(address,uint256)", ["address", "uint256"], [thief, 1000])
    assert balance(eoa.address) == held
    assert int.from_bytes(call(stack, token, "balanceOf(address)", eoa.address), "big") == 1000
    assert int.from_bytes(call(stack, token, "balanceOf(address)", thief), "big") == 0


def test_the_delegate_holds_only_what_its_sets_list_whatever_positions_other_code_wrote(
    net: Network, stack: LocalStack
) -> None:
    """Attack 307's defence through the module lifecycle: positions other code wrote in the delegate's sets without
    an entry make nothing held. The session module's position alone is not a registration (the SDK installs the
    module, and then the set lists it); a module's position past the set's length neither makes it installed nor
    lets its uninstall move or pop the session module's entry (OpenZeppelin's ``remove`` trusted the position); and
    installing a module with such a position drops it and pushes a listed entry (``add`` said it was there)."""
    from keyscope.accounts.delegate import (
        DELEGATE_EXECUTORS_SLOT,
        DELEGATE_VALIDATORS_SLOT,
        delegate_set_value_slot,
    )
    from support.victims import deploy

    eoa = new_eoa(stack)
    greedy = deploy(stack, "GreedyModule")

    def position(module: str, set_slot: int) -> int:
        return int.from_bytes(keccak(abi_encode(["address", "uint256"], [module, set_slot + 1])), "big")

    def plant(slot: int, value: int) -> None:
        stack.node.request(
            "anvil_setStorageAt", [eoa.address, hex(slot), "0x" + value.to_bytes(32, "big").hex()]
        )

    def word(slot: int) -> int:
        return int(stack.node.request("eth_getStorageAt", [eoa.address, hex(slot), "latest"]), 16)

    def listed(set_slot: int) -> list[str]:
        return [
            to_address(word(delegate_set_value_slot(set_slot, i)).to_bytes(32, "big")[12:])
            for i in range(word(set_slot))
        ]

    def installed(module_type: int, module: str) -> bool:
        args = (module_type, module, b"")
        return call(stack, eoa.address, "isModuleInstalled(uint256,address,bytes)", *args)[-1] == 1

    def as_the_eoa(signature: str, module_type: int, module: str) -> int:
        data = encode_function_call(signature, module_type, module, b"")
        return int(raw_transaction(stack, eoa.private_key, eoa.address, data)["status"], 0)

    plant(position(net.module, DELEGATE_VALIDATORS_SLOT), 1)  # the session module's position alone
    owner = net.eoa(eoa)
    assert owner.delegation().module_registered is False
    owner.upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    assert owner.supports_sessions() and installed(1, net.module)
    assert listed(DELEGATE_VALIDATORS_SLOT) == [to_address(net.module)]

    plant(position(greedy, DELEGATE_VALIDATORS_SLOT), 5)  # past the set's length (1)
    plant(position(greedy, DELEGATE_EXECUTORS_SLOT), 7)  # the executor set is empty
    assert not installed(1, greedy) and not installed(2, greedy)
    assert as_the_eoa("uninstallModule(uint256,address,bytes)", 1, greedy) == 0  # not installed: refused
    assert listed(DELEGATE_VALIDATORS_SLOT) == [to_address(net.module)] and installed(1, net.module)

    assert as_the_eoa("installModule(uint256,address,bytes)", 2, greedy) == 1
    assert installed(2, greedy) and listed(DELEGATE_EXECUTORS_SLOT) == [to_address(greedy)]
    assert word(position(greedy, DELEGATE_EXECUTORS_SLOT)) == 1
    assert as_the_eoa("uninstallModule(uint256,address,bytes)", 2, greedy) == 1
    assert not installed(2, greedy) and listed(DELEGATE_EXECUTORS_SLOT) == []


def test_an_executor_other_code_writes_after_the_sdk_listed_the_sets_never_acts_as_the_eoa(
    net: Network, stack: LocalStack
) -> None:
    """Attacks 273, 304 and 307 have the SDK list the delegate's sets in the EOA's storage before the EOA signs an
    authorization. The EOA still runs the code it delegated to before until the authorization lands, and anyone can
    call that code (a drainer's owner watches for the owner's recovery): a write landing after the SDK's listing and
    before the authorization (here ``anvil_setStorageAt`` while the EOA's type-4 transaction waits in the pool)
    puts the stranger in the executor set, the upgrade lands, and the stranger's ``executeFromExecutor`` takes half
    the EOA's ether. No planted module may be in force once the upgrade lands: the operation carrying the
    authorization first has the delegate forget every module (``resetModules``), then installs the session module."""
    import threading

    from keyscope.accounts.delegate import DELEGATE_EXECUTORS_SLOT, delegate_set_value_slot

    eoa = new_eoa(stack)
    thief = stack.accounts[0].address
    owner = net.eoa(eoa)
    outcome: dict[str, object] = {}

    def upgrade() -> None:
        try:
            outcome["grant"] = owner.upgrade(
                SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600, transaction=True
            )
        except KeyscopeError as error:
            outcome["error"] = error

    stack.node.request("evm_setAutomine", [False])
    sending = threading.Thread(target=upgrade)
    sending.start()
    try:
        deadline = time.monotonic() + 60
        while not stack.node.request("eth_getBlockByNumber", ["pending", False])["transactions"]:
            assert time.monotonic() < deadline and sending.is_alive(), outcome
            time.sleep(0.05)
        # the SDK listed the sets and signed; the old code writes the executor set {thief} before the authorization
        position = int.from_bytes(
            keccak(abi_encode(["address", "uint256"], [thief, DELEGATE_EXECUTORS_SLOT + 1])), "big"
        )
        for slot, value in (
            (DELEGATE_EXECUTORS_SLOT, 1),
            (delegate_set_value_slot(DELEGATE_EXECUTORS_SLOT, 0), int(thief, 16)),
            (position, 1),
        ):
            stack.node.request(
                "anvil_setStorageAt", [eoa.address, hex(slot), "0x" + value.to_bytes(32, "big").hex()]
            )
        stack.node.request("evm_mine", [])
    finally:
        stack.node.request("evm_setAutomine", [True])
    sending.join(60)
    assert "grant" in outcome and owner.supports_sessions(), (
        outcome
    )  # the upgrade landed, the module installed

    def balance() -> int:
        return int(stack.node.request("eth_getBalance", [eoa.address, "latest"]), 16)

    held = balance()
    _executor_takes_half(stack, eoa.address, thief, held)
    assert balance() == held


def test_an_upgrade_by_operation_from_other_code_warns_of_attack_308s_moment_and_names_the_transaction_path(
    net: Network, stack: LocalStack, other_delegate: str
) -> None:
    """Attack 308's residual: on the operation path the authorization names the EOA's current nonce, so whoever sees
    it can land it in a transaction of their own, and the code the EOA delegated to before can act (write a module
    into the delegate's sets) until the operation's ``resetModules()`` runs. The SDK cannot tell trusted code from a
    drainer, so it says so when it signs such an authorization: a ``DelegationWarning`` naming that code and the
    type-4 transaction path, pointed at the caller's line. An EOA without code, and the transaction path, give none."""
    import warnings

    fresh = net.eoa(new_eoa(stack))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DelegationWarning)
        fresh.build_upgrade(SessionKey.generate(), mint_policy(stack, fresh.account), valid_for=3600)

    eoa = new_eoa(stack)
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    away = Account.sign_authorization(
        {"chainId": stack.chain_id, "address": other_delegate, "nonce": nonce + 1}, eoa.private_key
    )
    raw_transaction(stack, eoa.private_key, eoa.address, authorizations=[away])
    owner = net.eoa(eoa)
    with pytest.warns(DelegationWarning, match=r"transaction=True") as warned:
        owner.build_upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    (warning,) = warned.list
    assert other_delegate in str(warning.message) and eoa.address in str(warning.message)
    assert warning.filename == __file__  # the caller's line, not keyscope's

    with warnings.catch_warnings():
        warnings.simplefilter("error", DelegationWarning)
        grant = owner.upgrade(
            SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600, transaction=True
        )
    assert owner.is_delegated() and grant.session_id


@pytest.mark.parametrize("case", ["every chain", "another key", "another chain", "used nonce", "other code"])
def test_an_authorization_given_to_the_owner_is_judged_before_anyone_sees_it(
    net: Network, stack: LocalStack, other_delegate: str, case: str
) -> None:
    """``Owner.execute``/``build(calls, eip7702_auth=...)`` take an authorization made elsewhere (a wallet's). The
    SDK sent whatever it was given to the bundler: one for chain id 0 (which keyscope never signs, as any chain
    where the EOA's nonce matches takes it, and which the bundler then holds), one signed by another key, for
    another chain or a used nonce (the bundler's refusal, or worse, an estimate that passed and a refusal at
    sending), or delegating to other code than keyscope's delegate (which ``upgrade`` refuses to sign, attack 173:
    here AA23 said as "check the account's kind and owner validator"). Each must be refused by the SDK, saying
    what is wrong, before the authorization leaves it."""
    from keyscope.eip7702 import authorization_digest

    eoa = new_eoa(stack)
    owner = net.eoa(eoa)
    if case == "used nonce":  # the EOA's own transaction moves its nonce past 0
        raw_transaction(stack, eoa.private_key, stack.deployer.address)
    signer = LocalSigner.generate() if case == "another key" else eoa
    chain_id = {"every chain": 0, "another chain": stack.chain_id + 1}.get(case, stack.chain_id)
    delegate = other_delegate if case == "other code" else stack.delegate
    auth = Authorization.from_signature(
        chain_id, delegate, 0, signer.sign_hash(authorization_digest(chain_id, delegate, 0))
    )
    said = {
        "every chain": "chain id 0",
        "another key": signer.address,
        "another chain": str(stack.chain_id + 1),
        "used nonce": "nonce",
        "other code": other_delegate,
    }[case]
    with pytest.raises((BadInputError, DelegationError)) as refused:
        owner.build([Call(stack.module, 0, INVALIDATE_ALL_SESSIONS)], eip7702_auth=auth)
    assert said in str(refused.value), refused.value
    assert code(stack, eoa.address) == b""


@pytest.mark.parametrize("way", ["upgrade", "undelegate"])
def test_the_eoas_own_transaction_racing_its_nonce_does_not_skip_the_authorization(
    net: Network, stack: LocalStack, way: str
) -> None:
    """The type-4 transaction paths (``upgrade(..., transaction=True)``, ``undelegate``) signed the authorization at
    the nonce read when planning (+1) and the transaction at the nonce read again when sending: a transaction of
    the EOA landing in between (another wallet of the same key, a script) puts the transaction at that
    authorization's nonce, so the node skips the authorization and the transaction runs the batch on whatever
    code the EOA has then (nothing, or other code it delegates to: an ERC-7579 one would install the session
    there), then the SDK blamed the node. The authorization must follow the transaction's own nonce."""
    owner = net.eoa(new_eoa(stack))
    eoa = owner.signer
    if way == "undelegate":
        owner.upgrade(SessionKey.generate(), mint_policy(stack, eoa.address), valid_for=3600)
    sending = owner.send_transaction

    def racing(*args: Any, **kwargs: Any) -> Any:
        raw_transaction(stack, eoa.private_key, stack.deployer.address, value=1)  # the EOA's own, first
        return sending(*args, **kwargs)

    owner.send_transaction = racing  # type: ignore[method-assign]
    if way == "upgrade":
        key = SessionKey.generate()
        grant = owner.upgrade(key, mint_policy(stack, eoa.address), valid_for=3600, transaction=True)
        assert code(stack, eoa.address) == delegation_code(stack.delegate)
        assert net.session(grant, key).execute(stack.nft, MINT, eoa.address).wait().success
    else:
        owner.undelegate()
        assert code(stack, eoa.address) == b""


@pytest.mark.parametrize(
    "case", ["every chain", "another chain", "the transaction's own nonce", "a used nonce"]
)
def test_an_authorization_given_to_the_eoas_own_transaction_is_judged_before_it_is_sent(
    net: Network, stack: LocalStack, case: str
) -> None:
    """``EOAOwner.send_transaction(..., authorization=...)`` sent the authorization it was given as it was: one for
    chain id 0 (valid wherever the EOA's nonce matches: the node published it for anyone to replay on another
    chain), one for another chain, or one of the EOA's own at the transaction's nonce (the transaction increments
    the nonce first, so the node skips it and the call runs on whatever code the EOA has). Another EOA's
    authorization at a nonce it has used is skipped too. Each must be refused before anything is signed."""
    from keyscope.eip7702 import authorization_digest

    owner = net.eoa(new_eoa(stack))
    eoa = owner.signer
    signer: LocalSigner = eoa
    nonce = 1  # the EOA's next transaction has nonce 0: its own authorization names 1
    if case == "a used nonce":
        signer = new_eoa(stack)
        raw_transaction(stack, signer.private_key, stack.deployer.address)  # its nonce moves past 0
        nonce = 0
    elif case == "the transaction's own nonce":
        nonce = 0
    chain_id = {"every chain": 0, "another chain": stack.chain_id + 1}.get(case, stack.chain_id)
    auth = Authorization.from_signature(
        chain_id,
        stack.delegate,
        nonce,
        signer.sign_hash(authorization_digest(chain_id, stack.delegate, nonce)),
    )
    said = {
        "every chain": "chain id 0",
        "another chain": str(stack.chain_id + 1),
        "the transaction's own nonce": "nonce 1",
        "a used nonce": "used already",
    }[case]
    with pytest.raises(BadInputError) as refused:
        owner.send_transaction(stack.deployer.address, value=1, authorization=auth)
    assert said in str(refused.value), refused.value
    assert (
        int(stack.node.request("eth_getTransactionCount", [eoa.address, "latest"]), 16) == 0
    )  # nothing sent
    assert code(stack, eoa.address) == b"" and code(stack, signer.address) == b""
