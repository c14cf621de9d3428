"""Sessions on every supported ERC-7579 account: keyscope's own, ZeroDev Kernel v3.1, Biconomy Nexus 1.0, Safe 1.4.1
with the Safe7579 adapter and the ERC-7579 reference account (MSA, through the generic ERC-7579 adapter), all with
the same, unchanged ``SessionKeyValidator`` and the same SDK code.

One stack for the suite: a real anvil (with EIP-170 lifted for Kernel's implementation), the real EntryPoint
v0.7 and the real Alto bundler; the third-party accounts are deployed from their released bytecode (fetched at
set-up from ``@rhinestone/modulekit``) and owned through ``OwnerECDSAValidator``. The session policy allows
``DemoNFT.safeMint(to)`` for one recipient (an EOA: Nexus 1.0.0's ``onERC721Received`` answers 4 raw bytes,
which OpenZeppelin's ``_safeMint`` refuses, so nothing is minted to the accounts themselves).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope import (
    BundlerRejectedError,
    Network,
    Owner,
    Policy,
    PolicyViolationError,
    SessionError,
    SessionGrant,
    SessionKey,
    SessionRevokedError,
    arg,
    connect,
    function_call,
)
from keyscope.accounts import (
    AccountKind,
    Deployment,
    ERC7579AccountKind,
    KernelAccountKind,
    KeyscopeAccountKind,
    MSAAccountKind,
    NexusAccountKind,
    Safe7579AccountKind,
    create_account_data,
    detect_kind,
)
from keyscope.accounts.resolve import factory_account_id
from keyscope.bundler.inprocess import revert_data_of
from keyscope.chain import RpcChain
from keyscope.checker import CallRefusedError, PolicyChecker
from keyscope.consent import Facts, describe_session
from keyscope.consent.tokens import contract_facts, module_checker
from keyscope.cosigner import CoSignPolicy, LocalCoSigner, remote_co_signer
from keyscope.devnode import wait_for_receipt
from keyscope.entrypoint import PACKED_USEROP_ABI_TYPE, encode_get_nonce, encode_handle_ops
from keyscope.errors import (
    AccountPremiseWarning,
    AccountSetupError,
    CallRevertedError,
    ConfigurationError,
    CoSignerMismatchError,
    GasCostTooHighError,
    InvalidGrantSignatureError,
    KeyscopeError,
    UnsupportedAccountError,
)
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import ZERO_ADDRESS, keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.message_signing import SignatureRefusedError
from keyscope.operations import Draft, OperationBuilder
from keyscope.owner import GrantRequest
from keyscope.revert import describe_revert
from keyscope.session import Permission, Session, encode_at_signature
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData, eip191_hash
from keyscope.userop import UserOperation
from support.accounts import (
    ACCOUNT_KINDS,
    AccountContracts,
    account_bytecode,
    build_bytecode,
    deploy_accounts,
    deploy_code,
    measure_gas,
    network_for,
)
from support.install_data import encode_install_sessions
from support.permit_types import PERMIT_SINGLE_TYPES, permit2_permit
from support.signatures import CountingSigner, forge_typed_data
from support.smuggling import smuggling_encodings
from support.victims import Victims, deploy, deploy_victims, transact, view

pytestmark = pytest.mark.e2e

ETHER = 10**18
MINT = "safeMint(address)"
ADAPTERS: dict[str, type[AccountKind]] = {
    "keyscope": KeyscopeAccountKind,
    "kernel": KernelAccountKind,
    "nexus": NexusAccountKind,
    "safe7579": Safe7579AccountKind,
    "msa": MSAAccountKind,
}
# What a session operation meets once the module is uninstalled (sent without the SDK's on-chain check):
# Kernel still asks the module, which has no permission left (AA23 NoPermission); Nexus reverts for a validator
# it does not have (AA23 ValidatorNotInstalled); Safe7579 falls back to the Safe owners' signatures, which the
# session key's is not (AA24); keyscope's account falls back to its owner's ECDSA check, which rejects the
# 86-byte estimation placeholder before any ecrecover, so the estimate is short for the real 65-byte signature
# and the bundler reports AA26 instead of AA24.
UNINSTALLED_REASON = {
    "keyscope": "AA26",
    "kernel": "AA23",
    "nexus": "AA23",
    "safe7579": "AA24",
    "msa": "AA24",
}


# -- one stack, one deployment ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(code_size_unlimited_stack: LocalStack) -> Iterator[LocalStack]:
    """The test process's stack without EIP-170's code size limit (``code_size_unlimited_stack``), shared with the
    other files deploying the vendors' accounts: this file's contracts and accounts are its own deployments."""
    yield code_size_unlimited_stack


@pytest.fixture(scope="module")
def contracts(stack: LocalStack) -> AccountContracts:
    return deploy_accounts(stack)


@pytest.fixture(scope="module", params=ACCOUNT_KINDS)
def kind_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def net(stack: LocalStack, contracts: AccountContracts, kind_name: str) -> Network:
    network = network_for(stack, contracts.kind(kind_name))
    network.kind = contracts.kind(kind_name, network)
    return network


@pytest.fixture
def owner(net: Network, stack: LocalStack) -> Owner:
    """The owner of a new account of the kind (not created yet), the account funded."""
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    return owner


@pytest.fixture
def recipient() -> str:
    return LocalSigner.generate().address


def created(owner: Owner, stack: LocalStack, recipient: str) -> Owner:
    """``owner`` after its first operation (a mint) created the account."""
    owner.execute(function_call(stack.nft, MINT, recipient)).wait()
    assert owner.is_deployed()
    return owner


def mint_policy(stack: LocalStack, recipient: str) -> Policy:
    return Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])


def nft_balance(stack: LocalStack, holder: str) -> int:
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [holder])
    raw = stack.node.request("eth_call", [{"to": stack.nft, "data": "0x" + data.hex()}, "latest"])
    return int(raw, 16)


def module_flag(stack: LocalStack, function: str, account: str, session_id: bytes) -> bool:
    data = keccak(function.encode())[:4] + abi_encode(["address", "bytes32"], [account, session_id])
    raw = stack.node.request("eth_call", [{"to": stack.module, "data": "0x" + data.hex()}, "latest"])
    return bool(int(raw, 16))


# -- the account --------------------------------------------------------------------------------------


def test_creation_installs_the_module_and_the_kind_is_detected(
    owner: Owner, net: Network, stack: LocalStack, contracts: AccountContracts, kind_name: str, recipient: str
) -> None:
    assert not owner.is_deployed() and owner.supports_sessions()
    created(owner, stack, recipient)
    assert nft_balance(stack, recipient) == 1
    assert net.supports_sessions(owner.account)

    detected = detect_kind(net, owner.account, owner_validator=contracts.owner_validator)
    assert type(detected) is ADAPTERS[kind_name]
    account_id = net.account_id(owner.account)
    assert account_id is not None and account_id.startswith(detected.account_id_prefix)


# -- grants and use -----------------------------------------------------------------------------------


def test_offchain_grant_enabled_by_the_first_session_operation(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    if not net.kind.sessions_can_create:
        created(owner, stack, recipient)  # Safe7579: the launchpad's first operation is the owner's
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    assert grant.how == "offchain" and grant.owner_signature is not None
    assert (grant.factory is not None) == (net.kind.sessions_can_create and not owner.is_deployed())
    grant = SessionGrant.from_json(grant.to_json())
    before = nft_balance(stack, recipient)

    session = net.session(grant, key)
    first = session.execute(stack.nft, MINT, recipient)
    assert first.op.signature[0] == 0x01  # ENABLE: the owner's one signature rides along
    assert first.wait().success
    assert owner.is_deployed()
    assert module_flag(stack, "isSessionActive(address,bytes32)", owner.account, grant.session_id)

    single = session.execute(stack.nft, MINT, recipient)
    assert len(single.op.signature) == 65  # USE
    single.wait()
    session.execute_batch([function_call(stack.nft, MINT, recipient) for _ in range(3)]).wait()
    assert nft_balance(stack, recipient) == before + 5


def test_onchain_grant_single_and_batch(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    created(owner, stack, recipient)
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], onchain=True)
    assert grant.how == "onchain" and grant.owner_signature is None
    assert module_flag(stack, "isSessionActive(address,bytes32)", owner.account, grant.session_id)

    session = net.session(grant, key, lane=7)
    session.execute(stack.nft, MINT, recipient).wait()
    session.execute_batch([function_call(stack.nft, MINT, recipient) for _ in range(2)]).wait()
    assert nft_balance(stack, recipient) == 4


def test_a_call_outside_the_policy_is_refused(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    created(owner, stack, recipient)
    key = SessionKey.generate()
    session = net.session(owner.grant(key, [mint_policy(stack, recipient)], onchain=True), key)
    stranger = LocalSigner.generate().address

    with pytest.raises(PolicyViolationError) as local:
        session.execute(stack.nft, MINT, stranger)
    assert local.value.rule_index == 0

    with pytest.raises(BundlerRejectedError) as chain:
        session.execute(stack.nft, MINT, stranger, check=False)
    assert chain.value.reason == "AA23"
    if kind_name != "safe7579":  # Safe7579 replaces a validator's revert data by its own ExecutionFailed()
        assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in str(chain.value)
    else:  # named as what it is, with the policy among its possible causes, and the check that tells which
        message = str(chain.value)
        assert "Safe7579 reverted ExecutionFailed() (0xacfdb444)" in message, message
        assert "not the session policy" not in message and "check=True" in message, message
    with pytest.raises(BundlerRejectedError) as batch:
        session.execute_batch(
            [function_call(stack.nft, MINT, recipient), Call(stranger, 1, b"")], check=False
        )
    assert batch.value.reason == "AA23"
    assert nft_balance(stack, stranger) == 0


def test_revoke_kills_the_session(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    created(owner, stack, recipient)
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], onchain=True)
    session = net.session(grant, key)
    session.execute(stack.nft, MINT, recipient).wait()

    owner.revoke(grant).wait()
    assert module_flag(stack, "isSessionRevoked(address,bytes32)", owner.account, grant.session_id)
    with pytest.raises(SessionRevokedError, match="revoked"):
        session.execute(stack.nft, MINT, recipient)
    blind = net.session(grant, key, verify_on_chain=False)  # unaware of the revocation
    with pytest.raises(BundlerRejectedError) as info:
        blind.execute(stack.nft, MINT, recipient)
    # estimated with the key named (USE_WITH_KEY): the module finds no permission of that key left
    assert info.value.reason == "AA23"
    if kind_name != "safe7579":
        assert "NoPermission(callIndex=0" in str(info.value)
    assert nft_balance(stack, recipient) == 2


def test_uninstall_kills_every_session_for_an_account_given_by_address(
    owner: Owner, net: Network, stack: LocalStack, contracts: AccountContracts, kind_name: str, recipient: str
) -> None:
    created(owner, stack, recipient)
    # From here on the account is used as an existing one, through a network told nothing of its kind: the kind
    # is detected from accountId().
    existing = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    boss = existing.owner(owner.signer, owner.account)
    assert type(boss.kind) is ADAPTERS[kind_name]
    key = SessionKey.generate()
    onchain = boss.grant(key, [mint_policy(stack, recipient)], onchain=True)
    unused_key = SessionKey.generate()
    unused = boss.grant(unused_key, [mint_policy(stack, recipient)])  # signed off-chain, never used
    existing.session(onchain, key).execute(stack.nft, MINT, recipient).wait()

    boss.uninstall_sessions().wait()
    assert not boss.supports_sessions()
    with pytest.raises(SessionRevokedError, match="no longer active"):
        existing.session(onchain, key).execute(stack.nft, MINT, recipient)
    blind = existing.session(onchain, key, verify_on_chain=False)
    with pytest.raises(BundlerRejectedError) as info:
        blind.execute(stack.nft, MINT, recipient)
    assert info.value.reason == UNINSTALLED_REASON[kind_name]

    # Reinstalled: the old sessions stay dead (the module's epoch moved), a new grant works.
    pending = boss.install_sessions()
    assert pending is not None
    pending.wait()
    assert boss.supports_sessions()
    assert not module_flag(stack, "isSessionActive(address,bytes32)", owner.account, onchain.session_id)
    with pytest.raises(BundlerRejectedError) as old:
        existing.session(onchain, key, verify_on_chain=False).execute(stack.nft, MINT, recipient)
    assert old.value.reason == "AA23"
    if kind_name != "safe7579":
        assert "NoPermission(callIndex=0" in str(old.value)
    # the enable signature was bound to the old epoch: the SDK refuses before sending, and so does the chain
    with pytest.raises(SessionRevokedError, match=f"epoch {unused.epoch}, and the account is at epoch"):
        existing.session(unused, unused_key).execute(stack.nft, MINT, recipient)
    with pytest.raises(BundlerRejectedError) as replay:
        existing.session(unused, unused_key, verify_on_chain=False).execute(stack.nft, MINT, recipient)
    assert replay.value.reason == "AA23"
    fresh_key = SessionKey.generate()
    fresh = boss.grant(fresh_key, [mint_policy(stack, recipient)])
    existing.session(fresh, fresh_key).execute(stack.nft, MINT, recipient).wait()
    assert nft_balance(stack, recipient) == 3


def entry_point_nonce(stack: LocalStack, account: str, key: int) -> int:
    """The EntryPoint's nonce of ``account`` on the lane ``key``."""
    data = "0x" + encode_get_nonce(account, key).hex()
    return int(stack.node.request("eth_call", [{"to": stack.entry_point, "data": data}, "latest"]), 16)


def test_a_grant_made_before_the_module_is_installed_reads_not_yet_enabled_and_works_once_it_is(
    owner: Owner, net: Network, stack: LocalStack, contracts: AccountContracts, kind_name: str, recipient: str
) -> None:
    """An account the user already holds, without the session module: the owner grants before installing it. The
    grant is good once the module is installed (installing does not move the epoch it is bound to), so its status
    reads "not yet enabled", not "invalidated", and a session operation before the install is refused saying to
    install the module, nothing sent. keyscope's own account refuses such a grant at once: it takes the owner's
    bare signature only when an installed validator asks."""
    created(owner, stack, recipient)
    existing = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    boss = existing.owner(owner.signer, owner.account)
    boss.uninstall_sessions().wait()
    assert not boss.supports_sessions()

    key = SessionKey.generate()
    if kind_name == "keyscope":  # its ERC-1271 takes the owner's bare signature only when a validator asks
        with pytest.raises(
            AccountSetupError, match=r"Install the module first \(owner.install_sessions\(\)\)"
        ):
            boss.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
        return
    grant = boss.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    session = existing.session(grant, key)
    nonce = entry_point_nonce(stack, owner.account, session.nonce_key())
    assert session.status().status == "not yet enabled"
    with pytest.raises(
        SessionError, match=r"is not installed on the account.*install_sessions\(\); the grant stays valid"
    ):
        session.execute(stack.nft, MINT, recipient)
    assert entry_point_nonce(stack, owner.account, session.nonce_key()) == nonce  # nothing was sent

    pending = boss.install_sessions()
    assert pending is not None
    pending.wait()
    assert session.status().status == "not yet enabled"
    session.execute(stack.nft, MINT, recipient).wait()
    assert session.status().status == "active"
    assert nft_balance(stack, recipient) == 2


def test_a_grant_request_read_back_for_an_account_without_code_is_judged_by_the_account_created_for_the_check(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    """A grant request read back from JSON (as a dapp's backend hands it to the consent server) names its own
    ``owner``, which no signature covers. With the network, an account of each kind that has no code yet is created
    for one eth_call by the request's factory call and asked through its own ERC-1271: a stranger's signature, with
    the request naming the stranger, is refused; the owner's passes, and the session it grants creates the account.
    A Safe7579 account, which its owner's first operation creates through the launchpad, has no factory call in its
    grants: refused, saying to create the account first."""
    key = SessionKey.generate()
    request = owner.prepare_grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    signature = owner.sign_grant(request).owner_signature
    assert signature is not None
    stranger = LocalSigner.generate()
    digest = owner.kind.erc1271_digest(request.account, request.chain_id, request.digest)
    strangers = owner.kind.wrap_erc1271_signature(stranger.sign_hash(digest))
    forged = GrantRequest.model_validate_json(request.model_dump_json()).model_copy(
        update={"owner": stranger.address}
    )
    if kind_name == "safe7579":
        with pytest.raises(UnsupportedAccountError, match=r"names no factory.*Create the account first"):
            forged.complete(signature, network=net)
        return
    with pytest.raises(InvalidGrantSignatureError, match=f"recovers to {stranger.address}"):
        forged.complete(strangers, network=net)
    grant = forged.complete(signature, network=net)
    assert not net.is_deployed(owner.account)  # asked in an eth_call: nothing created
    net.session(grant, key).execute(stack.nft, MINT, recipient).wait()
    assert net.is_deployed(owner.account) and nft_balance(stack, recipient) == 1


def stranger_transaction(stack: LocalStack, to: str, data: bytes) -> bool:
    """Send ``data`` to ``to`` from one of the node's accounts that is nothing to the account (with its own gas, so
    that a refusal is mined, not estimated); whether it succeeded."""
    stranger = stack.accounts[1].address
    tx = {"from": stranger, "to": to, "data": "0x" + data.hex(), "gas": hex(3_000_000)}
    receipt = wait_for_receipt(stack.node, stack.node.request("eth_sendTransaction", [tx]))
    return int(receipt["status"], 16) == 1


def test_nobody_but_the_owner_installs_the_module_again_with_its_old_install_data(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    """The owner installs the module with a session in its install data (``onInstall``: ``abi.encode(Session[])``,
    enabled at the account's epoch then), the session runs, the owner uninstalls. The module remembers nothing that
    would refuse those bytes again: a reinstall carrying them enables the session afresh at the new epoch, under a new
    id. So only the account stands between them and whoever holds them: the owner's installing operation, sent
    again, meets the EntryPoint's nonce (AA25); its ``installModule`` call, sent to the account by a stranger, is
    refused (only the EntryPoint or the account itself configures modules); the factory's creation data, sent again,
    creates or initialises nothing. The session stays dead, the epoch where the uninstall left it. (Threat model
    162.)"""
    created(owner, stack, recipient)
    owner.uninstall_sessions().wait()
    key = SessionKey.generate()
    session = owner.session_for(key, [mint_policy(stack, recipient)])
    install = owner.kind.install_validator_call(owner.account, net.module, encode_install_sessions([session]))
    installing = owner.build(install)
    assert owner.send(installing).wait().success
    grant = owner.request_for(session).enabled_on_chain()
    assert module_flag(stack, "isSessionActive(address,bytes32)", owner.account, grant.session_id)
    assert net.session(grant, key).execute(stack.nft, MINT, recipient).wait().success
    owner.uninstall_sessions().wait()
    epoch = owner.epoch()

    with pytest.raises(BundlerRejectedError) as again:
        owner.send(installing)
    assert again.value.reason == "AA25", again.value
    assert not stranger_transaction(stack, install.target, install.data)
    if owner.factory is not None:
        # the account exists: keyscope's, Kernel's and Nexus's factories return it as it is, the reference account's
        # and Safe's proxy factory revert
        created_again = stranger_transaction(stack, owner.factory, owner.factory_data)
        assert created_again == (kind_name in ("keyscope", "kernel", "nexus")), kind_name

    assert not owner.supports_sessions() and owner.epoch() == epoch
    revived = owner.request_for(session)  # the id the same session would have if enabled now
    for session_id in (grant.session_id, revived.session_id):
        assert not module_flag(stack, "isSessionActive(address,bytes32)", owner.account, session_id)
    with pytest.raises(BundlerRejectedError) as dead:
        net.session(grant, key, verify_on_chain=False).execute(stack.nft, MINT, recipient)
    assert dead.value.reason == UNINSTALLED_REASON[kind_name]
    assert nft_balance(stack, recipient) == 2

    # The same bytes on a path the account accepts, the owner's own install: the session comes back, under a new id.
    assert owner.execute(install).wait().success
    assert module_flag(stack, "isSessionActive(address,bytes32)", owner.account, revived.session_id)
    assert net.session(revived.enabled_on_chain(), key).execute(stack.nft, MINT, recipient).wait().success
    assert nft_balance(stack, recipient) == 3


# -- messages signed by sessions (ERC-1271), co-signed sessions --------------------------------------------

ROUTER = "0x" + "b0" * 20
USDC = "0x" + "a0" * 20
PERMIT_LIMIT = 100 * 10**6
PERMIT_EXPIRY = 2**40
PERMIT_SINGLE = "((address,uint160,uint48,uint48),address,uint256)"


@pytest.fixture(scope="module")
def permits(stack: LocalStack) -> str:
    """A Permit2-like verifier checking signatures with OpenZeppelin's SignatureChecker (contracts/test)."""
    return deploy(stack, "SignedPermits")


def permit2_policy(permits: str, chain_id: int) -> Any:
    """The signing permission the permit tests grant: Permit2 permits of USDC to ROUTER, at most PERMIT_LIMIT."""
    return Policy.typed_data(
        {"name": "Permit2", "chainId": chain_id, "verifyingContract": permits},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "token") == USDC, arg("details", "amount") <= PERMIT_LIMIT, arg("spender") == ROUTER],
    )


def signature_checker_accepts(
    stack: LocalStack, permits: str, account: str, digest: bytes, signature: bytes
) -> bool:
    """``SignatureChecker.isValidSignatureNow(account, digest, signature)``, as the verifier runs it."""
    return bool(
        view(
            stack,
            permits,
            "isValidSignatureNow(address,bytes32,bytes)",
            ["address", "bytes32", "bytes"],
            [account, digest, signature],
        )
    )


def test_a_session_signs_a_permit_that_signature_checker_accepts_within_its_rule_only(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str, permits: str
) -> None:
    created(owner, stack, recipient)
    key = SessionKey.generate()
    permit2 = permit2_policy(permits, net.chain_id)
    grant = owner.grant(key, [mint_policy(stack, recipient)], typed_data=[permit2], onchain=True)
    session = net.session(grant, key)

    data = permit2_permit(permits, net.chain_id, PERMIT_LIMIT)
    digest = TypedData(data).digest
    signature = session.sign_typed_data(data)
    assert signature_checker_accepts(stack, permits, owner.account, digest, signature)
    details = data["message"]["details"]
    permit = ((USDC, details["amount"], PERMIT_EXPIRY, 0), ROUTER, PERMIT_EXPIRY)
    transact(
        stack,
        permits,
        f"permit(address,{PERMIT_SINGLE},bytes)",
        ["address", PERMIT_SINGLE, "bytes"],
        [owner.account, permit, signature],
    )
    allowance = view(
        stack,
        permits,
        "allowance(address,address,address)",
        ["address", "address", "address"],
        [owner.account, USDC, ROUTER],
    )
    assert allowance == PERMIT_LIMIT

    above = permit2_permit(permits, net.chain_id, PERMIT_LIMIT + 1)
    with pytest.raises(SignatureRefusedError) as local:
        session.sign_typed_data(above)
    assert local.value.reason == "SignedRuleViolated"
    assert not signature_checker_accepts(
        stack, permits, owner.account, TypedData(above).digest, forge_typed_data(session, above)
    )

    # a second account of the owner, the same key granted the same permission: the first one's signature is not its
    other = net.owner(owner.signer, salt=1)
    stack.fund(other.account, ETHER)
    created(other, stack, recipient)
    other.grant(key, [mint_policy(stack, recipient)], typed_data=[permit2], onchain=True)
    assert not signature_checker_accepts(stack, permits, other.account, digest, signature)
    # the same bytes for another chain
    assert not signature_checker_accepts(
        stack, permits, owner.account, digest, forge_typed_data(session, data, chain_id=net.chain_id + 1)
    )


def test_a_session_sign_in_is_accepted_by_a_verifier_calling_without_a_sender(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    """A website checks a Sign-In with Ethereum signature with an ``eth_call`` of the account's
    ``isValidSignature``, often without a ``from``: the call's sender is the zero address. The module refuses a
    session's signature to any module of the account, and Nexus and the reference account answer
    ``isModuleInstalled(hook, 0)`` with true when they have no hook (the empty hook slot holds the zero address).
    The zero address runs no code, so it is no verifier to refuse: every kind accepts the signature from the zero
    address and from any other caller."""
    created(owner, stack, recipient)
    key = SessionKey.generate()
    site = "app.example.com"
    grant = owner.grant(key, [mint_policy(stack, recipient)], sign_in=[site], onchain=True)
    session = net.session(grant, key, verify_on_chain=False)  # the account's own answer is what is tested
    message, signature = session.sign_in(site, uri=f"https://{site}")
    question = keccak(b"isValidSignature(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [eip191_hash(message.encode()), signature]
    )
    for sender in (None, LocalSigner.generate().address):
        call = {"to": owner.account, "data": "0x" + question.hex(), **({"from": sender} if sender else {})}
        answer = stack.node.request("eth_call", [call, "latest"])
        assert answer[:10] == "0x1626ba7e", (sender, answer)


def test_a_module_of_the_account_asking_for_a_session_s_signature_gets_none(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    """Attack 85 on every kind: modules take the account's ERC-1271 answer as its owner's approval of their own
    configuration (another validator's grants), so the module refuses a session's signature to a verifier
    (``sender``) that is a module of the account, the account, or the session module. That holds only if the account
    hands the module its own caller as ``sender``: an account passing anything else (itself, the zero address, the
    signature's claimed verifier) would let its owner validator, or any module installed after the grant, take a
    session's signature as the owner's. Every kind refuses the signature to its installed validators (the owner's,
    on the accounts of other vendors; keyscope's own has the session module alone) and to itself, and accepts it from
    a contract that is none of them."""
    created(owner, stack, recipient)
    modules = [stack.module] if kind_name == "keyscope" else [stack.module, net.kind.owner_validator]
    modules_asking_get_no_session_signature(owner, net, stack, recipient, modules)


def modules_asking_get_no_session_signature(
    owner: Owner, net: Network, stack: LocalStack, recipient: str, modules: list[str | None]
) -> None:
    """The checks of the test above, on ``owner``'s deployed account whose installed validators are ``modules``."""
    key = SessionKey.generate()
    approvals = {"Approval": [{"name": "what", "type": "uint256"}]}
    domain = {
        "name": "Approvals",
        "chainId": net.chain_id,
        "verifyingContract": LocalSigner.generate().address,
    }
    grant = owner.grant(
        key,
        [mint_policy(stack, recipient)],
        typed_data=[Policy.typed_data(domain, approvals, "Approval")],
        onchain=True,
    )
    session = net.session(grant, key, verify_on_chain=False)  # the account's own answer is what is tested
    data = {"types": approvals, "primaryType": "Approval", "domain": domain, "message": {"what": 1}}
    signature = session.sign_typed_data(data)
    question = keccak(b"isValidSignature(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [TypedData(data).digest, signature]
    )

    def answer(sender: str) -> str:
        call = {"from": sender, "to": owner.account, "data": "0x" + question.hex()}
        return str(stack.node.request("eth_call", [call, "latest"]))[:10]

    for sender in (*modules, owner.account):
        assert sender is not None
        assert answer(sender) == "0xffffffff", sender
    assert answer(domain["verifyingContract"]) == answer(stack.nft) == "0x1626ba7e"


def test_a_session_signs_typed_data_whose_verifying_contract_is_the_zero_address(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    """A domain naming the zero address as its verifying contract: the module asks the account nothing about the
    zero address, neither when it enables the signing permission nor when it is the verifier (``sender``: an
    ``eth_call`` without a ``from``), since Nexus and the reference account report it as their empty hook slot's
    module. The SDK asks nothing either: on every kind the grant is prepared, the session signs (asking the account
    for its answer first), and the account accepts the signature from the zero address."""
    created(owner, stack, recipient)
    key = SessionKey.generate()
    note = {"Note": [{"name": "n", "type": "uint256"}]}
    domain = {"name": "Nowhere", "chainId": net.chain_id, "verifyingContract": ZERO_ADDRESS}
    grant = owner.grant(
        key,
        [mint_policy(stack, recipient)],
        typed_data=[Policy.typed_data(domain, note, "Note")],
        onchain=True,
    )
    session = net.session(grant, key)
    data = {"types": note, "primaryType": "Note", "domain": domain, "message": {"n": 7}}
    signature = session.sign_typed_data(data)
    question = keccak(b"isValidSignature(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [TypedData(data).digest, signature]
    )
    answer = stack.node.request("eth_call", [{"to": owner.account, "data": "0x" + question.hex()}, "latest"])
    assert answer[:10] == "0x1626ba7e", answer
    # nor does the consent page warn that the module refuses it
    facts = Facts(
        lambda address: contract_facts(net.chain, address), module_checker(net.chain, owner.account)
    )
    words = describe_session(grant.session, account=owner.account, chain_id=net.chain_id, facts=facts)
    assert not [w for w in words.warnings if ZERO_ADDRESS.lower() in w.text.lower()], words.warnings


def test_a_co_signed_operation_lands_with_both_signatures_and_is_refused_with_one(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    created(owner, stack, recipient)
    key = SessionKey.generate()
    with LocalCoSigner(stack, policy=CoSignPolicy(targets=frozenset({stack.nft}))) as service:
        grant = owner.grant(key, [mint_policy(stack, recipient)], co_signer=service.address, onchain=True)
        both = net.session(grant, key, co_signer=remote_co_signer(service.url))  # the local stack's co-signer
        pending = both.execute(stack.nft, MINT, recipient)
        assert len(pending.op.signature) == 163 and pending.wait().success

    alone = net.session(grant, key)  # the session key's signature only: the SDK refuses it, the bundler too
    with pytest.raises(CoSignerMismatchError, match=f"its co-signer {service.address}"):
        alone.execute(stack.nft, MINT, recipient)
    with pytest.raises(BundlerRejectedError) as info:
        alone.execute(stack.nft, MINT, recipient, check=False)
    assert info.value.reason == "AA24"

    owner.rotate_co_signer(grant, None).wait()  # the owner removes the co-signer: the key alone is enough now
    assert alone.execute(stack.nft, MINT, recipient).wait().success
    assert nft_balance(stack, recipient) == 3


# -- the reported bypasses, on every kind ---------------------------------------------------------------


@pytest.fixture(scope="module")
def victims(stack: LocalStack) -> Victims:
    return deploy_victims(stack)


def test_a_plain_transfer_permission_runs_no_calldata(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str, victims: Victims
) -> None:
    """Attack 1: under a plain-transfer permission on a vault, calldata 0x00000000 ‖ abi.encode(attacker,
    amount) would reach the vault's fallback and pay the account's deposit out."""
    created(owner, stack, recipient)
    owner.execute(Call(victims.vault, ETHER // 2, b"")).wait()  # the account's deposit
    key = SessionKey.generate()
    grant = owner.grant(key, [Policy.transfer(victims.vault, value_limit=ETHER // 10)], onchain=True)
    session = net.session(grant, key)
    attacker = LocalSigner.generate().address
    withdrawal = Call(victims.vault, 0, bytes(4) + abi_encode(["address", "uint256"], [attacker, ETHER // 2]))

    with pytest.raises(CallRefusedError) as local:
        session.send_calls(withdrawal)
    assert local.value.reason == "ZeroSelectorCall" and "0x00000000" in str(local.value)
    with pytest.raises(BundlerRejectedError) as chain:
        session.send_calls(withdrawal, check=False)
    assert chain.value.reason == "AA23"
    if kind_name != "safe7579":  # Safe7579 replaces a validator's revert data by its own ExecutionFailed()
        assert "ZeroSelectorCall(callIndex=0)" in str(chain.value)
    assert stack.balance(attacker) == 0
    assert view(stack, victims.vault, "deposits(address)", ["address"], [owner.account]) == ETHER // 2

    session.send_calls(Call(victims.vault, ETHER // 10, b"")).wait()  # what the permission names
    assert view(stack, victims.vault, "deposits(address)", ["address"], [owner.account]) == 6 * ETHER // 10


def test_the_gas_cap_binds_an_erc20_paymaster(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str, victims: Victims
) -> None:
    """Attack 3: the account approved an ERC-20 paymaster; the session key names it with preVerificationGas
    5,000,000 at 1,000 gwei, which the paymaster would charge the account in tokens."""
    created(owner, stack, recipient)
    transact(
        stack, victims.token, "mint(address,uint256)", ["address", "uint256"], [owner.account, 10 * ETHER]
    )
    approve = keccak(b"approve(address,uint256)")[:4] + abi_encode(
        ["address", "uint256"], [victims.token_paymaster, 2**256 - 1]
    )
    owner.execute(Call(victims.token, 0, approve)).wait()
    key = SessionKey.generate()
    cap = ETHER // 100
    grant = owner.grant(key, [mint_policy(stack, recipient)], onchain=True, max_gas_cost=cap)
    session = net.session(grant, key)
    op = UserOperation(
        sender=owner.account,
        nonce=net.chain.get_nonce(net.entry_point, owner.account, session.nonce_key()),
        call_data=encode_execute(function_call(stack.nft, MINT, recipient)),
        verification_gas_limit=1_000_000,
        call_gas_limit=300_000,
        pre_verification_gas=5_000_000,
        max_fee_per_gas=1000 * 10**9,
        max_priority_fee_per_gas=1000 * 10**9,
        paymaster=victims.token_paymaster,
        paymaster_verification_gas_limit=100_000,
        paymaster_post_op_gas_limit=100_000,
    )
    op = OperationBuilder(net).sign(op, key.sign_hash)
    cost = (1_000_000 + 300_000 + 5_000_000 + 200_000) * 1000 * 10**9

    with pytest.raises(GasCostTooHighError) as local:
        PolicyChecker.for_grant(grant).check_operation(op)
    assert (local.value.cost, local.value.limit) == (cost, cap)
    with pytest.raises(BundlerRejectedError) as chain:
        net.bundler.send_user_operation(op, net.entry_point)
    assert chain.value.reason == "AA23"
    if kind_name != "safe7579":
        assert f"GasCostTooHigh(cost={cost}, limit={cap})" in str(chain.value)
    assert view(stack, victims.token, "balanceOf(address)", ["address"], [owner.account]) == 10 * ETHER


DAY = 86400
VALIDATE_USER_OP = keccak(f"validateUserOp({PACKED_USEROP_ABI_TYPE},bytes32,uint256)".encode())[:4]
MODULE_VALIDATE_USER_OP = keccak(f"validateUserOp({PACKED_USEROP_ABI_TYPE},bytes32)".encode())[:4]


def _validation_data(stack: LocalStack, asker: str, to: str, data: bytes) -> int:
    """What ``to`` returns to ``asker`` for ``data`` (a ``validateUserOp``), as an ``eth_call``: nothing is kept."""
    raw = stack.node.request("eth_call", [{"from": asker, "to": to, "data": "0x" + data.hex()}, "latest"])
    return int(raw, 16)


def _entry_point_verdict(stack: LocalStack, net: Network, op: UserOperation) -> str:
    """The EntryPoint's verdict on ``op`` alone, as an ``eth_call`` of ``handleOps`` (no bundler in between, whose
    own clock may refuse first): "ok" or its decoded revert."""
    data = encode_handle_ops([op.pack()], stack.deployer.address)
    call = {
        "from": stack.deployer.address,
        "to": net.entry_point,
        "data": "0x" + data.hex(),
        "gas": hex(10**7),
    }
    try:
        stack.node.request("eth_call", [call, "latest"])
    except KeyscopeError as error:
        raw = revert_data_of(error)
        return describe_revert(raw) if raw is not None else str(error)
    return "ok"


def _windows(stack: LocalStack, net: Network, op: UserOperation) -> tuple[int, int]:
    """The validation data the module gives the account for ``op``, and the one the account gives the EntryPoint."""
    packed = op.pack().as_tuple()
    user_op_hash = net.user_op_hash(op)
    asked = MODULE_VALIDATE_USER_OP + abi_encode([PACKED_USEROP_ABI_TYPE, "bytes32"], [packed, user_op_hash])
    module = _validation_data(stack, op.sender, stack.module, asked)
    handed = VALIDATE_USER_OP + abi_encode(
        [PACKED_USEROP_ABI_TYPE, "bytes32", "uint256"], [packed, user_op_hash, 0]
    )
    return module, _validation_data(stack, net.entry_point, op.sender, handed)


def test_the_account_hands_the_entry_point_the_module_s_window_and_period_unchanged(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    """The module never reads the clock: a session's window, and the period an operation is counted in (a claimed
    time, MODE_AT), reach the EntryPoint only as the validation data the account returns from the module. An account
    that returned its own (0: valid now), or intersected the module's with its own the wrong way, would let a
    session not yet valid (or expired) land now, and an operation counted in tomorrow's period land today, with
    tomorrow's budget: a daily rate spent twice a day, every day. Each kind (Kernel intersects the module's data
    with its enable mode's; the others return it) hands the EntryPoint the module's word as it is, and the
    EntryPoint refuses both operations (AA22)."""
    created(owner, stack, recipient)
    window_and_period_reach_the_entry_point(owner, net, stack, recipient)


def window_and_period_reach_the_entry_point(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    """The checks of the test above, on ``owner``'s deployed account with the module installed."""
    start = max(stack.timestamp(), int(time.time())) - 100  # period 0: [start, start + DAY - 1]
    key = SessionKey.generate()
    daily = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient], rate="1/day")
    grant = owner.grant(key, [daily], onchain=True, valid_after=start, valid_until=start + 3 * DAY)
    session = net.session(grant, key)
    today = session.build(function_call(stack.nft, MINT, recipient))
    assert today.signature[:1] == b"\x03"  # MODE_AT: the time the operation claims, for its period
    tomorrow = today.replace(signature=encode_at_signature(start + DAY, today.signature[7:]))

    assert "AA22 expired or not due" in _entry_point_verdict(stack, net, tomorrow)
    module, handed = _windows(stack, net, tomorrow)
    assert module == handed == ((start + DAY) << 208) | ((start + 2 * DAY - 1) << 160)
    module, handed = _windows(stack, net, today)
    assert module == handed == (start << 208) | ((start + DAY - 1) << 160)
    assert _entry_point_verdict(stack, net, today) == "ok"

    # a session of another key whose window opens tomorrow: the window alone (no limits, no claimed time)
    later_key = SessionKey.generate()
    later = owner.grant(later_key, [mint_policy(stack, recipient)], onchain=True,
                        valid_after=start + DAY, valid_until=start + 2 * DAY)  # fmt: skip
    nonce_key = net.session(later, later_key).nonce_key()
    early = today.replace(nonce=net.chain.get_nonce(net.entry_point, owner.account, nonce_key), signature=b"")
    early = OperationBuilder(net).sign(early, later_key.sign_hash)
    assert "AA22 expired or not due" in _entry_point_verdict(stack, net, early)
    module, handed = _windows(stack, net, early)
    assert module == handed == ((start + DAY) << 208) | ((start + 2 * DAY) << 160)

    # today's operation lands, and counts in today's period only
    before = nft_balance(stack, recipient)
    assert OperationBuilder(net).send(today).wait().success
    assert nft_balance(stack, recipient) == before + 1
    assert [(row.used, row.left, row.period_start) for row in session.usage()] == [(1, 0, start)]


def test_bytes_past_the_judged_calls_are_never_run(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    """A mint to the attacker laid where the module does not judge it must not run on any account (each decodes
    ``execute`` with its own code: OpenZeppelin's, Kernel's, Nexus's, Safe7579's, the reference's), in default or
    try execution: after executionCalldata, or after the one call a batch's count names. The module refuses every
    one (AA23): an account reading a single call's data to its callData's end would hand the first to the target
    (attack 182), and a batch must end with its last call's padded data. The judged call alone then lands."""
    created(owner, stack, recipient)
    key = SessionKey.generate()
    session = net.session(owner.grant(key, [mint_policy(stack, recipient)], onchain=True), key)
    attacker = LocalSigner.generate().address
    allowed = function_call(stack.nft, MINT, recipient)
    template = session.build(allowed)
    builder = OperationBuilder(net)
    before = nft_balance(stack, recipient)
    attempts = smuggling_encodings(allowed, function_call(stack.nft, MINT, attacker))
    assert len(attempts) == 6
    for call_data in attempts:
        op = template.replace(
            call_data=call_data,
            nonce=net.chain.get_nonce(net.entry_point, owner.account, session.nonce_key()),
            pre_verification_gas=template.pre_verification_gas + 20_000,
        )
        with pytest.raises(BundlerRejectedError) as rejected:
            builder.send(builder.sign(op, key.sign_hash))
        assert rejected.value.reason == "AA23", rejected.value
    assert session.send_calls(allowed).wait().success
    assert nft_balance(stack, recipient) == before + 1
    assert nft_balance(stack, attacker) == 0


def test_a_session_cannot_create_the_account_with_other_init_data(
    owner: Owner, net: Network, stack: LocalStack, recipient: str
) -> None:
    """A session whose grant creates the account (its first operation carries the factory and factoryData) holds
    what it needs to create it with other init data: the attacker as its owner, or the module installed with a
    session for the attacker's key. Each kind's factory derives the address from all of its init data, so such an
    operation names another address than the account's (AA14); the account is then created as the owner signed."""
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    assert not owner.is_deployed()
    if not net.kind.sessions_can_create:
        # the Safe7579 launchpad's creating operation is its owner's: the grant hands the session no init data
        assert grant.factory is None and grant.factory_data == b"", grant
        return
    assert grant.factory is not None
    session = net.session(grant, key)
    attacker = LocalSigner.generate()
    # the module installed with a session paying the attacker whatever the account holds
    drain = Permission(target=attacker.address, selector=bytes(4), value_limit=2**96 - 1)
    greedy = encode_install_sessions([Session(session_key=attacker.address, permissions=(drain,))])
    first = session.build(function_call(stack.nft, MINT, recipient))
    builder = OperationBuilder(net)
    for who, init in ((attacker.address, b""), (owner.signer.address, greedy)):
        modules = [(1, net.module, init)]
        other = net.kind.deployment(net.chain, who, modules)
        if other is None:  # keyscope's account, created by the network's factory
            assert net.factory is not None
            other = Deployment("", net.factory, create_account_data(who, modules, 0))
        assert other.factory == first.factory and other.factory_data != first.factory_data
        op = first.replace(factory=other.factory, factory_data=other.factory_data)
        with pytest.raises(BundlerRejectedError) as refused:
            builder.send(builder.sign(op, attacker.sign_hash))
        assert refused.value.reason == "AA14", refused.value
    assert not owner.is_deployed()
    assert builder.send(first).wait().success
    assert owner.is_deployed() and nft_balance(stack, recipient) == 1
    assert module_flag(stack, "isSessionActive(address,bytes32)", owner.account, grant.session_id)


# -- what differs per kind ----------------------------------------------------------------------------


def test_kernel_grants_the_module_execute_only(stack: LocalStack, contracts: AccountContracts) -> None:
    net = network_for(stack, contracts.kind("kernel"))
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    created(owner, stack, owner.signer.address)
    vid = b"\x01" + bytes.fromhex(stack.module[2:])

    def allowed(selector: bytes) -> bool:
        data = keccak(b"isAllowedSelector(bytes21,bytes4)")[:4] + abi_encode(
            ["bytes21", "bytes4"], [vid, selector]
        )
        raw = stack.node.request("eth_call", [{"to": owner.account, "data": "0x" + data.hex()}, "latest"])
        return bool(int(raw, 16))

    assert allowed(keccak(b"execute(bytes32,bytes)")[:4])
    assert not allowed(keccak(b"installModule(uint256,address,bytes)")[:4])
    assert not allowed(keccak(b"executeFromExecutor(bytes32,bytes)")[:4])


@pytest.mark.parametrize(
    ("kind_name", "reason"), [("kernel", "AA23"), ("nexus", "AA23"), ("safe7579", "AA24"), ("msa", "AA24")]
)
def test_an_unknown_validator_in_the_nonce(
    stack: LocalStack, contracts: AccountContracts, kind_name: str, reason: str
) -> None:
    net = network_for(stack, contracts.kind(kind_name))
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    created(owner, stack, owner.signer.address)
    stranger = LocalSigner.generate().address  # no validator there
    builder = OperationBuilder(net)
    draft = Draft(
        sender=owner.account,
        call_data=encode_execute(function_call(stack.nft, MINT, owner.signer.address)),
        nonce_key=net.kind.nonce_key(stranger),
    )
    with pytest.raises(BundlerRejectedError) as info:
        op = builder.prepare(draft, owner.signer.sign_hash(b"\x11" * 32)).op
        # Safe7579 checks the Safe owners' signatures instead, which estimation does not enforce
        builder.send(builder.sign(op, owner.signer.sign_hash))
    assert info.value.reason == reason


def test_what_is_no_account_is_refused_and_factories_say_what_they_create(
    stack: LocalStack, contracts: AccountContracts
) -> None:
    with pytest.raises(UnsupportedAccountError, match="accountId"):
        detect_kind(stack.rpc_url, stack.nft)
    with pytest.raises(UnsupportedAccountError, match="has no code"):
        detect_kind(stack.rpc_url, LocalSigner.generate().address)
    made_here = factory_account_id(RpcChain(stack.rpc_url), stack.factory)
    assert made_here is not None and made_here.startswith(KeyscopeAccountKind.account_id_prefix)
    # No kind given: a counterfactual account is keyscope's only where the factory makes keyscope accounts.
    for factory, made in ((contracts.kernel_factory, "kernel"), (contracts.reference_factory, "uMSA")):
        plain = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=factory)
        with pytest.raises(
            UnsupportedAccountError, match=f"creates accounts reporting accountId\\(\\) '{made}"
        ):
            plain.owner(LocalSigner.generate())
    plain = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    assert type(plain.owner(LocalSigner.generate()).kind) is KeyscopeAccountKind


# -- the account's kind and validators, when they are not what the SDK is told ----------------------------


@pytest.fixture
def reference_owner(stack: LocalStack, contracts: AccountContracts, recipient: str) -> Owner:
    """The owner of a new ERC-7579 reference account (created, session module installed)."""
    net = network_for(stack, contracts.kind("msa"))
    net.kind = contracts.kind("msa", net)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    return created(owner, stack, recipient)


def test_a_grant_shaped_for_another_kind_is_reported_as_such_not_as_a_policy_refusal(
    reference_owner: Owner, stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    account, signer = reference_owner.account, reference_owner.signer
    # Told the account is keyscope's own: refused at once, naming what the account is.
    told_wrong = network_for(stack, KeyscopeAccountKind())
    with pytest.raises(AccountSetupError, match=r"accountId\(\) 'uMSA\..*'keyscope' adapter given") as wrong:
        told_wrong.owner(signer, account)
    assert wrong.value.account == account and wrong.value.kind == "keyscope"

    # A grant shaped as keyscope's account wants it (the raw 65-byte signature), as the SDK made it before it
    # detected kinds: the session's first operation is stopped before sending, with the cause.
    plain = connect(stack.rpc_url, stack.bundler_url, module=stack.module)  # no kind: detected
    owners = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    key = SessionKey.generate()
    request = owners.owner(signer, account).prepare_grant(
        key, [mint_policy(stack, recipient)], valid_for=3600
    )
    assert request.account_kind == "msa"
    told_keyscope = request.model_copy(update={"account_kind": "keyscope"})
    with pytest.raises(InvalidGrantSignatureError, match="the account refuses it too"):
        told_keyscope.complete(signer.sign_hash(request.digest))  # complete() checks it now
    shaped_wrong = told_keyscope.complete(signer.sign_hash(request.digest), check=False)
    with pytest.raises(AccountSetupError) as refused:
        plain.session(shaped_wrong, key).execute(stack.nft, MINT, recipient)
    message = str(refused.value)
    assert "uMSA.advanced/withHook.v0.1" in message and "'keyscope' adapter that shaped this one" in message
    assert "not about the session's policy" in message and "grant the session again" in message

    # Sent anyway: the bundler's AA23 carries the account's own error, and the hint does not blame the policy.
    with pytest.raises(BundlerRejectedError) as bundler:
        plain.session(shaped_wrong, key, verify_on_chain=False).execute(stack.nft, MINT, recipient)
    assert bundler.value.reason == "AA23"
    assert "session policy refused" not in str(bundler.value)
    assert "not the session module's" in str(bundler.value)
    assert nft_balance(stack, recipient) == 1  # the creating mint only


def test_a_wrong_owner_validator_or_owner_key_is_named_before_anything_is_sent(
    reference_owner: Owner, stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    account = reference_owner.account
    stranger = LocalSigner.generate().address
    not_installed = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=stranger)
    owner = not_installed.owner(reference_owner.signer, account)
    with pytest.raises(AccountSetupError, match=f"owner validator {stranger} is not installed") as info:
        owner.execute(function_call(stack.nft, MINT, recipient))
    assert info.value.validator == stranger and info.value.account_id == "uMSA.advanced/withHook.v0.1"
    with pytest.raises(AccountSetupError, match="is not installed"):
        owner.grant(SessionKey.generate(), [mint_policy(stack, recipient)])

    right = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    impostor = right.owner(LocalSigner.generate(), account)  # not the key the owner validator holds
    with pytest.raises(
        AccountSetupError, match=r"isValidSignature answered 0xffffffff.*owner's key is not the one"
    ):
        impostor.grant(SessionKey.generate(), [mint_policy(stack, recipient)])
    # the owner validator refuses the impostor's operation: the account's validateUserOp says so before it is sent
    with pytest.raises(AccountSetupError, match="validateUserOp returned SIG_VALIDATION_FAILED"):
        impostor.execute(function_call(stack.nft, MINT, recipient))
    assert nft_balance(stack, recipient) == 1


@pytest.mark.parametrize("name", ["nexus", "safe7579", "msa"])
def test_an_owner_without_its_validator_is_told_the_validators_the_account_has(
    name: str, stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    """A dapp that connects to a user's account without the owner validator is told, before the owner's key signs,
    which validators the account has installed, so that it can name the owner's."""
    net = network_for(stack, contracts.kind(name))
    net.kind = contracts.kind(name, net)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    created(owner, stack, recipient)
    bare = connect(stack.rpc_url, stack.bundler_url, module=stack.module)  # no owner_validator=
    signs = 0

    class Counting(LocalSigner):
        def sign_hash(self, digest: bytes) -> bytes:
            nonlocal signs
            signs += 1
            return super().sign_hash(digest)

    unnamed = bare.owner(Counting(owner.signer.private_key), owner.account)
    with pytest.raises(ConfigurationError, match=r"give owner_validator= \(its address\)") as info:
        unnamed.grant(SessionKey.generate(), [mint_policy(stack, recipient)])
    message = str(info.value)
    assert f"the account {owner.account} has these validators installed: " in message, message
    assert contracts.owner_validator in message and stack.module in message, message
    assert signs == 0
    named = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    key = SessionKey.generate()
    grant = named.owner(owner.signer, owner.account).grant(key, [mint_policy(stack, recipient)])
    bare.session(grant, key).execute(stack.nft, MINT, recipient).wait()  # the dapp's side needs no validator
    assert nft_balance(stack, recipient) == 2


def test_gas_figures(stack: LocalStack, contracts: AccountContracts, kind_name: str) -> None:
    figures = measure_gas(stack, contracts, kind_name)
    print(
        f"\n{kind_name}: owner {figures.owner}, session {figures.session} (ratio {figures.ratio:.3f}), "
        f"first use {figures.first_use} (+{figures.first_use_extra})"
    )
    assert 1.0 < figures.ratio < 1.15
    assert figures.first_use_extra > 100_000  # ENABLE stores the session and checks the owner's signature


# -- an ERC-7579 account keyscope has no adapter made for ----------------------------------------------

UNKNOWN_ACCOUNT_ID = "other.account/flavours.v1.0"


@pytest.fixture(scope="module")
def unknown_kind(stack: LocalStack, contracts: AccountContracts) -> ERC7579AccountKind:
    """An adapter creating accounts of an ERC-7579 account keyscope knows nothing of: the reference account
    reporting another ``accountId()`` (its bytecode with the string replaced)."""
    reference_id = "uMSA.advanced/withHook.v0.1"
    assert len(UNKNOWN_ACCOUNT_ID) == len(reference_id)
    code = account_bytecode()
    patched = code["ERC7579_BYTECODE"].replace(reference_id.encode().hex(), UNKNOWN_ACCOUNT_ID.encode().hex())
    assert patched != code["ERC7579_BYTECODE"]
    sender = stack.deployer.address
    implementation = deploy_code(stack.node, sender, to_bytes(patched), "the renamed reference account")
    factory = deploy_code(
        stack.node,
        sender,
        build_bytecode("ReferenceAccountFactory")
        + abi_encode(["address", "bytes"], [implementation, to_bytes(code["MSAPROXY_BYTECODE"])]),
        "its factory",
    )
    return ERC7579AccountKind(
        owner_validator=contracts.owner_validator, factory=factory, bootstrap=contracts.reference_bootstrap
    )


def reinstalled_session_mints(net: Network, owner: Owner, stack: LocalStack, recipient: str) -> None:
    """After an uninstall: the owner installs the module again, and a new session's first operation mints."""
    pending = owner.install_sessions()
    assert pending is not None
    pending.wait()
    fresh_key = SessionKey.generate()
    fresh = owner.grant(fresh_key, [mint_policy(stack, recipient)])
    net.session(fresh, fresh_key).execute(stack.nft, MINT, recipient).wait()


def test_an_account_without_an_adapter_of_its_own_gets_the_generic_one(
    stack: LocalStack, contracts: AccountContracts, unknown_kind: ERC7579AccountKind, recipient: str
) -> None:
    creating = network_for(stack, unknown_kind)
    first = creating.owner(LocalSigner.generate())
    stack.fund(first.account, ETHER)
    created(first, stack, recipient)

    plain = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    owner = plain.owner(first.signer, first.account)
    assert type(owner.kind) is ERC7579AccountKind and owner.kind.account_id == UNKNOWN_ACCOUNT_ID
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    assert grant.account_kind == "erc7579"
    plain.session(grant, key).execute(stack.nft, MINT, recipient).wait()
    owner.uninstall_sessions().wait()  # the sentinel list's neighbour, read from the account
    assert not owner.supports_sessions()
    reinstalled_session_mints(plain, owner, stack, recipient)
    assert nft_balance(stack, recipient) == 3


def test_a_grant_on_an_account_of_no_known_design_not_created_yet_says_its_premises_were_not_asked(
    stack: LocalStack, unknown_kind: ERC7579AccountKind, recipient: str
) -> None:
    """Attack 395. An account the session's first operation (or the owner's) will create has no code to ask about
    the premises of a session's bounds: the owner's grant is signed with an ``AccountPremiseWarning`` saying so,
    pointing at the owner's line (fails without the warning: nothing is said)."""
    owner = network_for(stack, unknown_kind).owner(LocalSigner.generate())
    assert not owner.is_deployed()
    with pytest.warns(AccountPremiseWarning, match="it has no code yet") as said:
        grant = owner.grant(SessionKey.generate(), [mint_policy(stack, recipient)], valid_for=3600)
    assert grant.owner_signature
    assert [w.filename for w in said if issubclass(w.category, AccountPremiseWarning)] == [__file__]


# -- the adapter example of docs/accounts.md ------------------------------------------------------------

ACCOUNTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "accounts.md"


def doc_example(marker: str) -> str:
    """The Python block of docs/accounts.md that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", ACCOUNTS_DOC.read_text(), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"docs/accounts.md has {len(found)} Python blocks with {marker!r}"
    return found[0]


def doc_scope(reference_owner: Owner, stack: LocalStack, contracts: AccountContracts) -> dict[str, Any]:
    """The names the accounts.md examples leave to the reader, filled in for a reference account on the stack."""
    return {
        "NODE_URL": stack.rpc_url,
        "BUNDLER_URL": stack.bundler_url,
        "SESSION_MODULE": stack.module,
        "OWNER_VALIDATOR": contracts.owner_validator,
        "ACCOUNT": reference_owner.account,
        "OWNER_KEY": reference_owner.signer.private_key,
        "NFT": stack.nft,
    }


def test_the_adapter_example_of_the_docs_drives_a_reference_account(
    reference_owner: Owner, stack: LocalStack, contracts: AccountContracts
) -> None:
    reference_owner.uninstall_sessions().wait()  # an existing account without the session module
    scope = doc_scope(reference_owner, stack, contracts)
    exec(compile(doc_example("class MyAccountKind"), "docs/accounts.md (adapter)", "exec"), scope)
    owner = scope["owner"]
    assert type(owner.kind).__name__ == "MyAccountKind"
    assert owner.supports_sessions()  # installed by the example, which then minted through a session
    assert nft_balance(stack, reference_owner.account) == 1
    owner.uninstall_sessions().wait()  # through the example's own sentinel-list call
    assert not owner.supports_sessions()


def test_the_existing_account_example_of_the_docs_installs_the_module_and_mints(
    owner: Owner, stack: LocalStack, contracts: AccountContracts, kind_name: str, recipient: str
) -> None:
    """The block of "Using an account that already exists", as written, on an account of each kind without the
    session module: the kind detected from its accountId(), the module installed by the owner, a session mints to
    the recipient (an EOA: minting to a Nexus 1.0.0 account itself reverts in its onERC721Received)."""
    created(owner, stack, recipient)
    owner.uninstall_sessions().wait()
    scope = {
        "NODE_URL": stack.rpc_url,
        "BUNDLER_URL": stack.bundler_url,
        "SESSION_MODULE": stack.module,
        "OWNER_VALIDATOR": None if kind_name in ("keyscope", "kernel") else contracts.owner_validator,
        "ACCOUNT": owner.account,
        "OWNER_KEY": owner.signer.private_key,
        "NFT": stack.nft,
        "RECIPIENT": recipient,
    }
    code = doc_example("owner_validator=OWNER_VALIDATOR)")
    exec(compile(code, "docs/accounts.md (an account that already exists)", "exec"), scope)
    assert scope["pending"] is not None  # the module was not installed: one owner operation installed it
    assert type(scope["owner"].kind) is ADAPTERS[kind_name]
    assert scope["owner"].supports_sessions()
    assert nft_balance(stack, recipient) == 2  # the creating mint and the session's


# -- grants naming the account's own modules (attack 52) ----------------------------------------------


def test_enabling_asks_the_account_for_its_modules_and_refuses_a_grant_on_one(
    owner: Owner, net: Network, stack: LocalStack, contracts: AccountContracts, kind_name: str, recipient: str
) -> None:
    """ENABLE asks the account ``isModuleInstalled`` (validator, executor, hook, the two pre-validation hooks) and
    Safe's ``isModuleEnabled`` once for each distinct target (the hook twice on Safe7579), and ``isModuleInstalled(3, target, selector)``, the
    fallback handler question, once for each permission's (target, selector), ERC-7562-clean on every kind (Safe7579 answers from its adapter's storage, keyed by the
    account); a grant on the owner validator is refused by the SDK and, sent anyway, by the module."""
    from keyscope.errors import BadInputError
    from support.erc7562 import Erc7562Checker

    created(owner, stack, recipient)
    validator = contracts.owner_validator
    if kind_name == "keyscope":  # the owner's ECDSA is built in: install a validator module to aim at
        install = owner.kind.install_validator_call(
            owner.account, validator, bytes.fromhex(owner.signer.address[2:])
        )
        owner.execute(install).wait()
    checker = Erc7562Checker(stack.node, stack.entry_point, submitter=stack.accounts[0].address)
    key = SessionKey.generate()
    # two permissions on one target: the account is asked about it once, and about each selector's fallback handler
    policies = [mint_policy(stack, recipient), Policy.call(stack.nft, "mintBatch(address to,uint256 count)")]
    session = net.session(owner.grant(key, policies, valid_for=3600), key)
    op = session.build(function_call(stack.nft, MINT, recipient))
    report = checker.check([op])
    assert report.outcome.startswith("ok"), report.summary()
    report.assert_clean()
    asked = [
        c for c in report.trace.phase("account").calls
        if c.target == owner.account and c.input[:4] in (bytes.fromhex("112d3a7d"), bytes.fromhex("2d9ad53d"))
    ]  # fmt: skip
    # Safe7579 reverts on the hook question's empty context: asked again with its global hook's context
    assert len(asked) == (7 if kind_name == "safe7579" else 6) + len(policies), report.summary()
    fallback_questions = [c.input[4:36] for c in asked if c.input[:4] == bytes.fromhex("112d3a7d")]
    assert fallback_questions.count((3).to_bytes(32, "big")) == len(policies), report.summary()
    assert session.send(op).wait().success

    aimed = [Policy.call(validator, "onInstall(bytes data)")]
    with pytest.raises(BadInputError, match="validator module of the account"):
        owner.grant(SessionKey.generate(), aimed, valid_for=3600)
    key = SessionKey.generate()
    request = owner._request(owner.session_for(key, aimed, valid_for=3600), owner.epoch(), True)
    signature = owner.kind.wrap_erc1271_signature(
        owner.signer.sign_hash(owner.kind.erc1271_digest(request.account, request.chain_id, request.digest))
    )
    grant = request.complete(signature)
    call = function_call(validator, "onInstall(bytes)", bytes.fromhex(recipient[2:]))
    with pytest.raises(BundlerRejectedError) as rejected:
        net.session(grant, key).send_calls(call, check=False)
    assert "AA23" in str(rejected.value), rejected.value
    if kind_name != "safe7579":  # Safe7579 replaces the module's revert data with its own
        assert "PermissionTargetIsModule(permissionIndex=0" in str(rejected.value), rejected.value


ADD_SPENDER = keccak(b"addSpender(address)")[:4]


def _fallback_install_data(kind_name: str, selector: bytes) -> bytes:
    """``installModule(3, handler, data)``'s data routing ``selector`` to the handler with a plain call (the
    handler's own install data empty), in each vendor's form."""
    if kind_name == "keyscope":  # OpenZeppelin's AccountERC7579: the selector, then the handler's data
        return selector
    if kind_name in ("nexus", "msa"):  # the selector, the call type (single), the handler's data
        return selector + b"\x00"
    if kind_name == "safe7579":
        return abi_encode(["bytes4", "bytes1", "bytes"], [selector, b"\x00", b""])
    assert (
        kind_name == "kernel"
    )  # the selector, no hook (1), then (call type single ‖ handler's data, hook data)
    return selector + bytes(19) + b"\x01" + abi_encode(["bytes", "bytes"], [b"\x00", b""])


def test_a_grant_on_the_fallback_handler_the_account_routes_its_selector_to_is_refused(
    net: Network, owner: Owner, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    """Attack 257 on every kind: the owner installs a handler (``SpenderListHandler``, which takes the account's own
    caller from its calldata's last 20 bytes) as the fallback handler of ``addSpender``. The account says so when
    asked ``isModuleInstalled(3, handler, abi.encode(selector))`` (Kernel, Nexus and keyscope's account read the
    context's first 4 bytes, Safe7579 and the reference account decode it as a ``bytes4``); a grant of
    ``(handler, addSpender)`` is refused by the SDK before signing and, sent anyway, by the module
    (``PermissionTargetIsModule``, module type 3); a grant on a selector the account does not route to the handler
    is enabled (the residual)."""
    from keyscope.errors import BadInputError
    from keyscope.module import enable_session_data

    created(owner, stack, recipient)
    account = owner.account
    handler = deploy_code(
        stack.node,
        stack.deployer.address,
        build_bytecode("SpenderListHandler") + abi_encode(["address"], [stack.entry_point]),
        "a fallback handler",
    )
    install = keccak(b"installModule(uint256,address,bytes)")[:4] + abi_encode(
        ["uint256", "address", "bytes"], [3, handler, _fallback_install_data(kind_name, ADD_SPENDER)]
    )
    owner.execute(Call(account, 0, install)).wait()
    chain = RpcChain(stack.rpc_url)
    asked = _is_module_installed(3, handler, ADD_SPENDER + bytes(28))
    assert int.from_bytes(chain.call(account, asked), "big") == 1

    routed = [Permission(target=handler, selector=ADD_SPENDER)]
    with pytest.raises(
        BadInputError, match="routes that selector to it as its fallback handler"
    ) as refused_locally:
        owner.grant(SessionKey.generate(), routed, valid_for=3600)
    assert handler in str(refused_locally.value) and "0x" + ADD_SPENDER.hex() in str(refused_locally.value)
    session = Session(session_key=SessionKey.generate().address, valid_until=2**40, permissions=tuple(routed))
    with pytest.raises(CallRevertedError) as refused:
        chain.call(stack.module, enable_session_data(session), sender=account)
    assert refused.value.data == keccak(b"PermissionTargetIsModule(uint256,address,uint256)")[
        :4
    ] + abi_encode(["uint256", "address", "uint256"], [0, handler, 3])
    other = [Permission(target=handler, selector=keccak(b"onInstall(bytes)")[:4])]
    assert owner.grant(SessionKey.generate(), other, valid_for=3600).account == account
    unrouted = Session(session_key=SessionKey.generate().address, valid_until=2**40, permissions=tuple(other))
    chain.call(stack.module, enable_session_data(unrouted), sender=account)


@pytest.mark.parametrize("kind_name", ["nexus", "msa"], indirect=True)
def test_a_session_granted_at_install_cannot_name_the_owner_validator_of_an_account_created_by_its_constructor(
    net: Network, stack: LocalStack, contracts: AccountContracts, kind_name: str, recipient: str
) -> None:
    """Attack 145, through the bundler: Nexus and the reference account are proxies whose constructor runs the
    bootstrap (the owner validator installed, then the session module with the sessions its install data carries),
    so the account has no code to answer ``isModuleInstalled`` while the module enables them. A session granting
    ``onInstall`` on the owner validator there is refused (the module asks the validator ``isModuleType(1)``): the
    owner's creating operation fails AA13 and the account is not created. The same creation with a session minting
    to the recipient goes through, and the session mints. (The other kinds initialise an account that has code, and
    answers: ``test_enabling_asks_the_account_for_its_modules_and_refuses_a_grant_on_one``.)"""
    key = SessionKey.generate()
    take_over = Permission(target=contracts.owner_validator, selector=keccak(b"onInstall(bytes)")[:4])
    mint = Permission(target=stack.nft, selector=keccak(MINT.encode())[:4])

    def installing(permission: Permission) -> Owner:
        """A new owner whose account is created with the session module installed with a session of ``key``."""
        data = encode_install_sessions([Session(session_key=key.address, permissions=(permission,))])
        kind = type(
            "Installing", (Owner,), {"creation_modules": property(lambda self: [(1, net.module, data)])}
        )
        owner: Owner = kind(net, LocalSigner.generate())
        stack.fund(owner.account, ETHER)
        return owner

    owner = installing(take_over)
    with pytest.raises(BundlerRejectedError) as refused:
        owner.execute(function_call(stack.nft, MINT, recipient)).wait()
    assert "AA13" in str(refused.value), refused.value
    assert not owner.is_deployed()

    owner = installing(mint)
    owner.execute(function_call(stack.nft, MINT, recipient)).wait()
    assert owner.is_deployed() and nft_balance(stack, recipient) == 1
    session_id = Session(session_key=key.address, permissions=(mint,)).session_id(owner.account, 0)
    assert module_flag(stack, "isSessionActive(address,bytes32)", owner.account, session_id)


def _is_module_installed(module_type: int, module: str, context: bytes) -> bytes:
    return keccak(b"isModuleInstalled(uint256,address,bytes)")[:4] + abi_encode(
        ["uint256", "address", "bytes"], [module_type, module, context]
    )


def assert_the_module_refuses_the_module(
    stack: LocalStack, chain: RpcChain, account: str, aimed: list[Policy], module: str, module_type: int
) -> None:
    """The session module, asked from ``account``, refuses to enable a session of the ``aimed`` policies (whose first
    names ``module``, a module of the account of ``module_type``) and refuses ``module`` a session's signature as a
    verifier."""
    from keyscope.module import enable_session_data

    session = Session(session_key=SessionKey.generate().address, valid_until=2**40, permissions=tuple(aimed))
    with pytest.raises(CallRevertedError) as refused:
        chain.call(stack.module, enable_session_data(session), sender=account)
    assert refused.value.data == keccak(b"PermissionTargetIsModule(uint256,address,uint256)")[
        :4
    ] + abi_encode(["uint256", "address", "uint256"], [0, module, module_type])
    verify = keccak(b"requireValidSignature(address,address,bytes32,bytes)")[:4]
    with pytest.raises(CallRevertedError) as refused:
        chain.call(
            stack.module,
            verify
            + abi_encode(["address", "address", "bytes32", "bytes"], [account, module, bytes(32), b""]),
        )
    assert refused.value.data == keccak(b"SignatureSenderForbidden(address)")[:4] + abi_encode(
        ["address"], [module]
    )


def safe7579_owner(stack: LocalStack, contracts: AccountContracts, recipient: str) -> tuple[Network, Owner]:
    """A network driving Safe7579 accounts with the Safe7579 adapter, and the owner (a new key) of its account,
    funded and created."""
    net = network_for(stack, contracts.kind("safe7579"))
    net.kind = contracts.kind("safe7579", net)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    created(owner, stack, recipient)
    return net, owner


def enable_safe_module(owner: Owner, module: str) -> None:
    """Enable ``module`` as a Safe module of the owner's Safe (Safe's ``enableModule``, beside the Safe7579
    adapter)."""
    enable_module = keccak(b"enableModule(address)")[:4]
    owner.execute(Call(owner.account, 0, enable_module + abi_encode(["address"], [module]))).wait()


def test_a_hook_installed_on_a_safe7579_account_is_refused_as_a_grant_target(
    stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    """Safe7579 answers ``isModuleInstalled(4, hook, context)`` only with a context giving a hook type and a
    selector: it reverts on the empty one the module asks first, which reads as "no" (attack 141). The module asks
    again with a zero context (hook type GLOBAL), which finds the account's global hook: a grant calling it, or
    signing for it, is refused, by the SDK, the consent page and the module. A hook installed for one selector only
    is not found (the residual: the account answers for the selector asked about, and nobody can list them)."""
    from keyscope.errors import BadInputError
    from keyscope.module import enable_session_data

    net, owner = safe7579_owner(stack, contracts, recipient)
    account = owner.account
    hook, selector_hook = (
        deploy_code(stack.node, stack.deployer.address, build_bytecode("RecordingHook"), "a hook")
        for _ in range(2)
    )
    install = keccak(b"installModule(uint256,address,bytes)")[:4]
    execute = keccak(b"execute(bytes32,bytes)")[:4]
    for module, hook_type, selector in ((hook, 0, bytes(4)), (selector_hook, 1, execute)):
        data = abi_encode(["uint8", "bytes4", "bytes"], [hook_type, selector, b"\1"])
        owner.execute(
            Call(account, 0, install + abi_encode(["uint256", "address", "bytes"], [4, module, data]))
        ).wait()
    chain = RpcChain(stack.rpc_url)
    with pytest.raises(CallRevertedError):  # Safe7579 decodes the context: an empty one reverts
        chain.call(account, _is_module_installed(4, hook, b""))
    assert int.from_bytes(chain.call(account, _is_module_installed(4, hook, bytes(64))), "big") == 1
    selector_context = abi_encode(["uint8", "bytes4"], [1, execute])
    assert (
        int.from_bytes(chain.call(account, _is_module_installed(4, selector_hook, selector_context)), "big")
        == 1
    )

    aimed = [Policy.call(hook, "onInstall(bytes data)")]
    with pytest.raises(BadInputError, match="a hook module of the account"):
        owner.grant(SessionKey.generate(), aimed, valid_for=3600)
    assert module_checker(net.chain, account)(hook) == "hook"
    # the generic adapter asks the empty hook question, which reverts: it asks again one by one, as the module does
    generic = ERC7579AccountKind(owner_validator=contracts.owner_validator, chain=chain)
    plain = connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=generic)
    with pytest.raises(BadInputError, match="a hook module of the account"):
        plain.owner(owner.signer, account).grant(SessionKey.generate(), aimed, valid_for=3600)
    assert_the_module_refuses_the_module(stack, chain, account, aimed, hook, 4)

    # the residual: a hook installed for one selector is not asked about, and a grant on it is enabled
    assert module_checker(net.chain, account)(selector_hook) is None
    session = Session(
        session_key=SessionKey.generate().address,
        valid_until=2**40,
        permissions=(Policy.call(selector_hook, "onInstall(bytes data)"),),
    )
    chain.call(stack.module, enable_session_data(session), sender=account)


@pytest.mark.parametrize("kind_name", ["msa"], indirect=True)
def test_the_reference_account_s_pre_validation_hooks_are_refused_as_grant_targets_and_verifiers(
    owner: Owner, net: Network, stack: LocalStack, kind_name: str, recipient: str
) -> None:
    """Attack 312 on an account nobody here wrote: the ERC-7579 reference account installs pre-validation hooks
    (module type 8 before ERC-1271 validators, 9 before ERC-4337 ones) and reports them through
    ``isModuleInstalled``. With a pass-through hook installed as both, the owner's and a session's operations still
    land through it; a grant calling the hook is refused by the SDK and, sent anyway, by the module
    (``PermissionTargetIsModule``, type 8, the first asked), and a session's signature is refused to the hook asking
    as a verifier (``SignatureSenderForbidden``)."""
    from keyscope.errors import BadInputError

    created(owner, stack, recipient)
    account = owner.account
    hook = deploy_code(
        stack.node,
        stack.deployer.address,
        build_bytecode("PassThroughPreValidationHook"),
        "a pre-validation hook",
    )
    install = keccak(b"installModule(uint256,address,bytes)")[:4]
    chain = RpcChain(stack.rpc_url)
    for hook_type in (9, 8):
        owner.execute(
            Call(account, 0, install + abi_encode(["uint256", "address", "bytes"], [hook_type, hook, b""]))
        ).wait()
        assert int.from_bytes(chain.call(account, _is_module_installed(hook_type, hook, b"")), "big") == 1
    operations_seen = keccak(b"operationsOf(address)")[:4] + abi_encode(["address"], [account])
    seen = int.from_bytes(chain.call(hook, operations_seen), "big")
    assert seen >= 1  # the type-9 hook ran before the owner's validator on the type-8 install

    # a session granted beside the hook works through it
    key = SessionKey.generate()
    session = net.session(owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600), key)
    assert session.send(session.build(function_call(stack.nft, MINT, recipient))).wait().success
    assert int.from_bytes(chain.call(hook, operations_seen), "big") > seen

    aimed = [Policy.call(hook, "onInstall(bytes data)")]
    with pytest.raises(BadInputError, match="pre-validation hook"):
        owner.grant(SessionKey.generate(), aimed, valid_for=3600)
    assert module_checker(net.chain, account)(hook) == "pre-validation hook (ERC-1271)"
    assert_the_module_refuses_the_module(stack, chain, account, aimed, hook, 8)


def test_a_safe_module_of_a_safe7579_account_is_refused_by_the_sdk_as_by_the_module(
    stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    """A Safe module (enabled with Safe's ``enableModule``, beside the Safe7579 adapter) named by a grant: the module
    asks Safe's ``isModuleEnabled`` and refuses it (type 0), and the SDK must refuse it first. Its batch of
    questions asked only ``isModuleInstalled``, so the owner signed (off chain) or sent (on chain) a grant the module
    refuses, and a session signed typed data for the Safe module's domain (attack 142)."""
    from keyscope.errors import BadInputError
    from keyscope.module import enable_session_data

    net, owner = safe7579_owner(stack, contracts, recipient)
    account = owner.account
    safe_module = deploy_code(
        stack.node, stack.deployer.address, build_bytecode("RecordingTarget"), "a target"
    )
    enable_safe_module(owner, safe_module)
    chain = RpcChain(stack.rpc_url)
    is_enabled = keccak(b"isModuleEnabled(address)")[:4] + abi_encode(["address"], [safe_module])
    assert int.from_bytes(chain.call(account, is_enabled), "big") == 1
    for number, context in ((1, b""), (2, b""), (4, bytes(64))):  # no ERC-7579 module
        assert (
            int.from_bytes(chain.call(account, _is_module_installed(number, safe_module, context)), "big")
            == 0
        )

    aimed = [Policy.call(safe_module, "other(uint256 amount)")]
    session = Session(session_key=SessionKey.generate().address, valid_until=2**40, permissions=tuple(aimed))
    with pytest.raises(CallRevertedError) as refused:
        chain.call(stack.module, enable_session_data(session), sender=account)
    assert refused.value.data == keccak(b"PermissionTargetIsModule(uint256,address,uint256)")[
        :4
    ] + abi_encode(["uint256", "address", "uint256"], [0, safe_module, 0])
    assert module_checker(net.chain, account)(safe_module) == "Safe module"
    for onchain in (False, True):
        with pytest.raises(BadInputError, match="a Safe module module of the account"):
            owner.grant(SessionKey.generate(), aimed, valid_for=3600, onchain=onchain)


def test_a_session_refuses_to_sign_for_a_safe_module_of_a_safe7579_account_as_the_module_does(
    stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    """A session granted Permit2-like permits for a verifier that the owner then enables as a Safe module of the
    account (Safe's ``enableModule``, beside the Safe7579 adapter): the module refuses a session's signature to it
    (``SignatureSenderForbidden``: modules take the account's signature as its owner's approval), and the SDK refuses
    to sign first, before the session key signs (attack 142). Before it is enabled, the verifier accepts the same
    signature."""
    from keyscope.message_signing import SignatureRefusedError

    net, owner = safe7579_owner(stack, contracts, recipient)
    account = owner.account
    verifier = deploy(stack, "SignedPermits")
    key = SessionKey.generate()
    grant = owner.grant(
        key,
        [mint_policy(stack, recipient)],
        typed_data=[permit2_policy(verifier, net.chain_id)],
        onchain=True,
    )
    session = net.session(grant, key)
    data = permit2_permit(verifier, net.chain_id, PERMIT_LIMIT)
    digest = TypedData(data).digest
    signature = session.sign_typed_data(data)
    assert signature_checker_accepts(stack, verifier, account, digest, signature)

    enable_safe_module(owner, verifier)
    with pytest.raises(SignatureRefusedError) as refused:
        session.sign_typed_data(data)
    # refused before signing ("AccountRefused" is the refusal of a signature made, once the account refuses it)
    assert refused.value.reason == "SignatureSenderForbidden", refused.value
    assert f"{verifier} is a Safe module module of the account {account}" in str(refused.value)
    assert not signature_checker_accepts(stack, verifier, account, digest, signature)
    assert not signature_checker_accepts(stack, verifier, account, digest, forge_typed_data(session, data))
    verify = keccak(b"requireValidSignature(address,address,bytes32,bytes)")[:4]
    with pytest.raises(CallRevertedError) as reverted:
        RpcChain(stack.rpc_url).call(
            stack.module,
            verify
            + abi_encode(["address", "address", "bytes32", "bytes"], [account, verifier, digest, signature]),
        )
    assert reverted.value.data == keccak(b"SignatureSenderForbidden(address)")[:4] + abi_encode(
        ["address"], [verifier]
    )


def test_the_generic_adapter_refuses_a_grant_on_a_safe_module_of_a_safe7579_account(
    stack: LocalStack, contracts: AccountContracts, recipient: str
) -> None:
    """The generic ERC-7579 adapter, given explicitly, driving a Safe7579 account with a Safe module enabled: its
    batch does not ask Safe's ``isModuleEnabled`` (other accounts revert on it), and Safe7579 reverts on its empty
    hook question, so every question is asked one by one, Safe's last, as the module asks them. A grant calling the
    Safe module is refused before the owner signs (attack 142)."""
    from keyscope.errors import BadInputError

    _, owner = safe7579_owner(stack, contracts, recipient)
    safe_module = deploy_code(
        stack.node, stack.deployer.address, build_bytecode("RecordingTarget"), "a target"
    )
    enable_safe_module(owner, safe_module)
    generic = ERC7579AccountKind(owner_validator=contracts.owner_validator, chain=RpcChain(stack.rpc_url))
    plain = connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=generic)
    signer = CountingSigner(owner.signer.private_key)
    generic_owner = plain.owner(signer, owner.account)
    assert type(generic_owner.kind) is ERC7579AccountKind
    aimed = [Policy.call(safe_module, "other(uint256 amount)")]
    for onchain in (False, True):
        with pytest.raises(BadInputError, match="a Safe module module of the account"):
            generic_owner.grant(SessionKey.generate(), aimed, valid_for=3600, onchain=onchain)
    assert signer.signed == 0
    # a target that is no module: the same questions let its grant be prepared for signing
    other = deploy_code(stack.node, stack.deployer.address, build_bytecode("RecordingTarget"), "a target")
    generic_owner.prepare_grant(
        SessionKey.generate(), [Policy.call(other, "other(uint256 amount)")], valid_for=3600
    )


# -- OpenZeppelin's AccountERC7579 as it comes: validators in a set, no factory, an accountId of its own --------


@pytest.fixture(params=["v0.7", "v0.8"])
def plain_account(
    request: pytest.FixtureRequest, stack: LocalStack, contracts: AccountContracts
) -> tuple[str, LocalSigner, str]:
    """A deployed ``PlainERC7579Account`` trusting EntryPoint v0.7 or v0.8, owned through ``OwnerECDSAValidator``
    by a new key, funded; with the EntryPoint."""
    entry_point = stack.entry_point if request.param == "v0.7" else stack.entry_point_v08
    signer = LocalSigner.generate()
    init_code = build_bytecode("PlainERC7579Account") + abi_encode(
        ["address", "address", "bytes"],
        [entry_point, contracts.owner_validator, to_bytes(signer.address, length=20)],
    )
    account = deploy_code(stack.node, stack.deployer.address, init_code, "an OpenZeppelin AccountERC7579")
    stack.fund(account, ETHER)
    return account, signer, entry_point


def plain_owner(
    stack: LocalStack, contracts: AccountContracts, plain_account: tuple[str, LocalSigner, str]
) -> tuple[Network, Owner]:
    """A network on the account's EntryPoint, detecting kinds, and the owner of ``plain_account`` on it."""
    account, signer, entry_point = plain_account
    network = connect(
        stack.rpc_url,
        stack.bundler_url,
        module=stack.module,
        owner_validator=contracts.owner_validator,
        entry_point=entry_point,
    )
    return network, network.owner(signer, account)


def test_an_openzeppelin_account_erc7579_runs_sessions_through_the_generic_adapter(
    stack: LocalStack,
    contracts: AccountContracts,
    plain_account: tuple[str, LocalSigner, str],
    recipient: str,
) -> None:
    plain, owner = plain_owner(stack, contracts, plain_account)
    assert type(owner.kind) is ERC7579AccountKind
    assert owner.kind.account_id == "@openzeppelin/contracts.AccountERC7579.v1.0.0"
    assert not owner.supports_sessions()
    pending = owner.install_sessions()
    assert pending is not None
    pending.wait()
    assert owner.supports_sessions()

    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    session = plain.session(grant, key)
    session.execute(stack.nft, MINT, recipient).wait()
    assert nft_balance(stack, recipient) == 1
    with pytest.raises(PolicyViolationError):
        session.execute(stack.nft, MINT, LocalSigner.generate().address)

    # a second session of the same owner: its first operation enables it too (ENABLE), the owner's signature
    # checked through the account's ERC-1271 (the validator's address as the prefix)
    second_key = SessionKey.generate()
    second = owner.grant(second_key, [mint_policy(stack, recipient)], valid_for=3600)
    plain.session(second, second_key).execute(stack.nft, MINT, recipient).wait()
    assert nft_balance(stack, recipient) == 2

    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, recipient)

    # uninstalling: the account keeps its validators in a set, so there is no neighbour to name
    owner.uninstall_sessions().wait()
    assert not owner.supports_sessions()
    reinstalled_session_mints(plain, owner, stack, recipient)
    assert nft_balance(stack, recipient) == 3


def test_an_openzeppelin_account_erc7579_hands_on_the_module_s_window_and_takes_its_caller_as_sender(
    stack: LocalStack,
    contracts: AccountContracts,
    plain_account: tuple[str, LocalSigner, str],
    recipient: str,
) -> None:
    """Attacks 159 and 160 on OpenZeppelin's ``AccountERC7579`` as it comes (the generic adapter), on EntryPoint v0.7
    and v0.8: the account returns the module's validation data as it is, and passes its caller as ``sender``."""
    plain, owner = plain_owner(stack, contracts, plain_account)
    pending = owner.install_sessions()
    assert pending is not None
    pending.wait()
    window_and_period_reach_the_entry_point(owner, plain, stack, recipient)
    modules_asking_get_no_session_signature(
        owner, plain, stack, recipient, [stack.module, contracts.owner_validator]
    )


def test_an_openzeppelin_account_on_another_entry_point_is_reported_before_anything_is_sent(
    stack: LocalStack, contracts: AccountContracts, plain_account: tuple[str, LocalSigner, str]
) -> None:
    account, signer, entry_point = plain_account
    other = stack.entry_point_v08 if entry_point == stack.entry_point else stack.entry_point
    net = connect(
        stack.rpc_url,
        stack.bundler_url,
        module=stack.module,
        owner_validator=contracts.owner_validator,
        entry_point=other,
    )
    with pytest.raises(KeyscopeError) as refused:
        net.owner(signer, account).install_sessions()
    assert entry_point.lower() in str(refused.value).lower()


def test_an_openzeppelin_account_erc7579_lets_a_session_sign_a_permit_within_its_rule_only(
    stack: LocalStack,
    contracts: AccountContracts,
    plain_account: tuple[str, LocalSigner, str],
    recipient: str,
    permits: str,
) -> None:
    account, _, _ = plain_account
    plain, owner = plain_owner(stack, contracts, plain_account)
    pending = owner.install_sessions()
    assert pending is not None
    pending.wait()
    key = SessionKey.generate()
    permit2 = permit2_policy(permits, plain.chain_id)
    grant = owner.grant(key, [mint_policy(stack, recipient)], typed_data=[permit2], onchain=True)
    session = plain.session(grant, key)
    data = permit2_permit(permits, plain.chain_id, PERMIT_LIMIT)
    signature = session.sign_typed_data(data)
    assert signature_checker_accepts(stack, permits, account, TypedData(data).digest, signature)
    above = permit2_permit(permits, plain.chain_id, PERMIT_LIMIT + 1)
    with pytest.raises(SignatureRefusedError):
        session.sign_typed_data(above)
    assert not signature_checker_accepts(
        stack, permits, account, TypedData(above).digest, forge_typed_data(session, above)
    )


# -- another version of a vendor keyscope has an adapter for ---------------------------------------------
# Kernel v0.3.1's and Nexus 1.0.0's released bytecode with their version strings replaced (same lengths): an
# account of a version no adapter is made for, whose conventions are (here, by construction) the known version's.

KERNEL_V033 = "kernel.advanced.v0.3.3"


def renamed(constant: str, replacements: dict[str, str]) -> bytes:
    """modulekit's creation bytecode ``constant`` with each ASCII string of ``replacements`` replaced."""
    code = account_bytecode()[constant]
    for old, new in replacements.items():
        assert len(old) == len(new) and old.encode().hex() in code
        code = code.replace(old.encode().hex(), new.encode().hex())
    return to_bytes(code)


class KernelV033(KernelAccountKind):
    """What the refusal below tells the developer to write for Kernel v0.3.3: v0.3.1's adapter, another
    ``accountId()`` and EIP-712 version."""

    account_id_prefix = KERNEL_V033
    domain_version = "0.3.3"


@pytest.fixture(scope="module")
def kernel_v033_factory(stack: LocalStack) -> str:
    """A ``KernelFactory`` creating Kernel accounts reporting ``kernel.advanced.v0.3.3`` and signing ERC-1271
    wrappings in the EIP-712 domain version ``0.3.3``."""
    sender = stack.deployer.address
    implementation = deploy_code(
        stack.node,
        sender,
        renamed("KERNEL_BYTECODE", {"kernel.advanced.v0.3.1": KERNEL_V033, "0.3.1": "0.3.3"})
        + abi_encode(["address"], [stack.entry_point]),
        "Kernel renamed v0.3.3",
    )
    factory_code = to_bytes(account_bytecode()["KERNEL_FACTORY_BYTECODE"])
    return deploy_code(
        stack.node, sender, factory_code + abi_encode(["address"], [implementation]), "its KernelFactory"
    )


def test_another_kernel_version_is_refused_by_name_and_its_adapter_subclass_runs_every_step(
    stack: LocalStack, contracts: AccountContracts, kernel_v033_factory: str, recipient: str
) -> None:
    from keyscope.errors import UnsupportedAccountVersionError

    kind = KernelV033(owner_validator=contracts.owner_validator, factory=kernel_v033_factory)
    net = network_for(stack, kind)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    created(owner, stack, recipient)  # created with the module installed (execute granted only)

    # Detected: not guessed as a generic ERC-7579 account, whose nonce keys Kernel would misread.
    with pytest.raises(UnsupportedAccountVersionError) as refused:
        detect_kind(stack.rpc_url, owner.account, owner_validator=contracts.owner_validator)
    error = refused.value
    assert (error.account, error.account_id, error.vendor) == (owner.account, KERNEL_V033, "ZeroDev Kernel")
    assert (error.supported, error.adapter, error.domain_version) == (
        "kernel.advanced.v0.3.1",
        "KernelAccountKind",
        "0.3.3",
    )
    message = str(error)
    assert "subclass of KernelAccountKind whose account_id_prefix = 'kernel.advanced.v0.3.3'" in message
    assert "domain_version = '0.3.3'" in message and "does not guess" in message
    plain = connect(stack.rpc_url, stack.bundler_url, module=stack.module)
    with pytest.raises(UnsupportedAccountVersionError):
        plain.owner(owner.signer, owner.account).grant(SessionKey.generate(), [mint_policy(stack, recipient)])
    with pytest.raises(
        AccountSetupError, match=r"made for kernel\.advanced\.v0\.3\.1"
    ):  # v0.3.1's adapter as it is
        network_for(stack, KernelAccountKind()).owner(owner.signer, owner.account)

    # The subclass the message describes: an off-chain grant (ENABLE asks Kernel's ERC-1271 in domain 0.3.3), a
    # use, a refusal (locally, then on chain), revocation.
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    session = net.session(grant, key)
    assert session.execute(stack.nft, MINT, recipient).wait().success
    stranger = LocalSigner.generate().address
    with pytest.raises(PolicyViolationError):
        session.execute(stack.nft, MINT, stranger)
    with pytest.raises(BundlerRejectedError) as chain:
        session.execute(stack.nft, MINT, stranger, check=False)
    assert chain.value.reason == "AA23" and "RuleViolated(" in str(chain.value)
    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, recipient)
    assert nft_balance(stack, recipient) == 2 and nft_balance(stack, stranger) == 0

    # v0.3.1's EIP-712 version in the wrapping: the account refuses the owner's grant before anything is sent.
    stale = type("StaleKernel", (KernelV033,), {"domain_version": "0.3.1"})()
    with pytest.raises(AccountSetupError, match="refuses the owner's signature"):
        network_for(stack, stale).owner(owner.signer, owner.account).grant(
            SessionKey.generate(), [mint_policy(stack, recipient)]
        )


def test_another_nexus_version_is_refused_by_name(stack: LocalStack) -> None:
    from keyscope.errors import UnsupportedAccountVersionError

    implementation = deploy_code(
        stack.node,
        stack.deployer.address,
        renamed("NEXUS_BYTECODE", {"biconomy.nexus.1.0.0": "biconomy.nexus.1.2.0"})
        + abi_encode(["address"], [stack.entry_point]),
        "Nexus renamed 1.2.0",
    )
    with pytest.raises(UnsupportedAccountVersionError) as refused:
        detect_kind(stack.rpc_url, implementation)
    assert refused.value.vendor == "Biconomy Nexus" and refused.value.supported == "biconomy.nexus.1.0."
    assert "low 20 bytes" in str(refused.value) and "subclass of NexusAccountKind" in str(refused.value)
