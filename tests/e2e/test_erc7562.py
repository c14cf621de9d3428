"""ERC-7562 on real traces: every validation path of the session module, traced on anvil with
``debug_traceCall`` of ``EntryPoint.handleOps`` sent by a funded EOA, checked by
:mod:`support.erc7562` (tests/support/erc7562.py).

For each path the test asserts what ``handleOps`` did (it succeeded, or failed with the expected ``AAxx``),
that no ERC-7562 rule is broken in any validation frame, that the account's and the module's frames ran no
blocked opcode, and that every slot the module touched is associated with the account
(``keccak256(account || x) + n``, ``n < 128``). Operations that should land are then sent through Alto and
must land. The last tests break the rules on purpose, to show the checker sees what it must.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope import Limits, Policy, SessionKey, arg, connect
from keyscope.accounts import MODULE_TYPE_VALIDATOR, create_account_data
from keyscope.calls import encode_function_call, function_call
from keyscope.co_signer import local_co_signer
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak, to_address
from keyscope.local import LocalStack
from keyscope.network import Network
from keyscope.owner import Owner
from keyscope.session import encode_enable_signature, encode_use_with_key_signature
from keyscope.session_account import SessionAccount
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.erc7562 import (
    BLOCKED_OPCODES,
    Erc7562Checker,
    Erc7562Report,
    StakeInfo,
    TraceError,
    associated_with,
    parse_validation_trace,
)
from support.victims import Victims, deploy, deploy_victims, transact, view

pytestmark = pytest.mark.e2e

ETHER = 10**18
MODULE_TYPE_EXECUTOR = 2
SAFE_MINT = "safeMint(address)"
MINT_BATCH = "mintBatch(address,uint256)"


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net(local_stack: LocalStack) -> Network:
    return connect(
        local_stack.rpc_url, local_stack.bundler_url, module=local_stack.module, factory=local_stack.factory
    )


@pytest.fixture(scope="module")
def checker(local_stack: LocalStack) -> Erc7562Checker:
    return Erc7562Checker(
        local_stack.node, local_stack.entry_point, submitter=local_stack.accounts[0].address
    )


def _owner(net: Network, stack: LocalStack) -> Owner:
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    return owner


def _policies(stack: LocalStack, account: str) -> list:
    return [
        Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == account]),
        Policy.call(
            stack.nft, "mintBatch(address to,uint256 count)", rules=[arg("to") == account, arg("count") <= 3]
        ),
    ]


def _session(
    net: Network, owner: Owner, stack: LocalStack, **window: object
) -> tuple[SessionAccount, LocalSigner]:
    key = SessionKey.generate()
    if not window:
        window = {"valid_for": 3600}
    grant = owner.grant(key, _policies(stack, owner.account), **window)
    return net.session(grant, key), key


def _enabled_session(
    net: Network, owner: Owner, stack: LocalStack, **window: object
) -> tuple[SessionAccount, LocalSigner]:
    """A session whose first operation (ENABLE, creating the account when needed) has landed."""
    session, key = _session(net, owner, stack, **window)
    session.execute(stack.nft, SAFE_MINT, owner.account).wait()
    assert session.is_enabled()
    return session, key


def _manual_op(
    net: Network,
    account: str,
    calls: Call | list[Call],
    *,
    signer: LocalSigner,
    mode: str = "use",
    key: str | None = None,
    session: SessionAccount | None = None,
    owner_signature: bytes | None = None,
    nonce_key: int | None = None,
    **fields: Any,
) -> UserOperation:
    """A session operation built without the SDK's checks or the bundler's estimate (fixed, ample gas, or the
    UserOperation ``fields`` given), so that operations the SDK refuses can be traced too."""
    lane = net.kind_for(account).nonce_key(net.module, 0) if nonce_key is None else nonce_key
    fee = 2 * net.chain.base_fee() + 10**9
    op = UserOperation(
        sender=account,
        nonce=net.chain.get_nonce(net.entry_point, account, lane),
        call_data=encode_execute(calls),
        call_gas_limit=600_000,
        verification_gas_limit=1_500_000,
        pre_verification_gas=80_000,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=10**9,
    ).replace(**fields)
    signature = signer.sign_hash(user_op_hash_v07(op.pack(), net.entry_point, net.chain_id))
    if mode == "use":
        return op.replace(signature=signature)
    if mode == "use_with_key":
        return op.replace(signature=encode_use_with_key_signature(key or signer.address, signature))
    assert mode == "enable" and session is not None and owner_signature is not None
    return op.replace(signature=encode_enable_signature(session.grant.session, owner_signature, signature))


def _assert_clean(report: Erc7562Report, outcome: str, stack: LocalStack, account: str) -> None:
    """No rule broken; ``handleOps`` ended as expected; no blocked opcode in the account's or the module's
    frames (the checker covers that; asserted here by name so the report says it)."""
    assert report.outcome.startswith(outcome), report.summary()
    report.assert_clean()
    for contract in (account, stack.module):
        used = report.opcodes_in(contract)
        blocked = sorted(set(used) & set(BLOCKED_OPCODES))
        assert not blocked, f"{contract} ran blocked opcodes {blocked} during validation\n{report.summary()}"
    assert report.opcodes_in(account), f"the account ran no code during validation?\n{report.summary()}"


def _assert_module_storage(
    report: Erc7562Report, stack: LocalStack, account: str, *, creating: bool, reads: int | None = None
) -> None:
    """Every slot the module touched is the account's associated storage, ``keccak256(account || x) + n``
    with ``n < 128``; while the operation creates the account, that is allowed only because the factory is
    staked (STO-022), which is checked too."""
    verdicts = report.storage_in(stack.module)
    assert verdicts, f"the module touched no storage?\n{report.summary()}"
    for verdict in verdicts:
        assert verdict.associated == account, verdict.reason
        assert verdict.offset is not None and 0 <= verdict.offset < 128, verdict.reason
        if creating:
            assert verdict.rule == "STO-022", verdict.reason
        else:
            assert verdict.rule == "STO-021", verdict.reason
        preimage = report.trace.preimages[verdict.access.slot - verdict.offset]
        assert preimage[:32] == bytes(12) + bytes.fromhex(account[2:]), verdict.reason
        assert associated_with(verdict.access.slot, account, report.trace.preimages) == verdict.offset
    if creating:
        factory = report.stakes[stack.factory]
        assert factory.meets(10**18), (
            f"STO-022: the module writes the account's storage while the account is created, which ERC-7562 "
            f"allows only with a staked factory, and the factory is not staked: {factory}"
        )
    if reads is not None:
        assert sum(not v.access.writes for v in verdicts) == reads, report.summary()
        assert not any(v.access.writes for v in verdicts), report.summary()


# -- the validation paths -----------------------------------------------------------------------------


def test_enable_in_the_first_operation_that_also_creates_the_account(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    session, _ = _session(net, owner, stack)
    op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
    assert op.factory == stack.factory and op.signature[0] == 0x01  # ENABLE, with initCode

    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    factory_phase = report.trace.phase("factory")
    assert factory_phase.entity == stack.factory and factory_phase.created == [owner.account]
    assert factory_phase.opcode_counts["CREATE2"] == 1
    # The factory installs the module while creating the account: the module writes its storage then.
    installed = report.storage_in(stack.module, "factory")
    assert any(v.access.writes for v in installed), report.summary()
    assert all(v.rule == "STO-022" for v in installed), report.summary()
    # ENABLE in the account phase writes the session (the account did not exist before the operation).
    enabled = report.storage_in(stack.module, "account")
    assert any(v.access.writes for v in enabled), report.summary()
    _assert_module_storage(report, stack, owner.account, creating=True)

    # Without the stake, the same trace breaks STO-022, in the module's storage only.
    unstaked = {stack.factory: StakeInfo(stack.factory, 0, 0, 0, False)}
    broken = checker.check([op], stakes=unstaked)
    assert broken.rules() == {"STO-022"}, broken.summary()
    assert {v.contract for v in broken.violations} == {stack.module}, broken.summary()
    assert all("factory" in v.message and "not staked" in v.message for v in broken.violations)

    receipt = session.send(op).wait()
    assert receipt.success and owner.is_deployed() and session.is_enabled()


def test_owner_operation_that_creates_the_account(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    """Not a session path, but the factory phase is the same one: the owner's first operation."""
    stack = local_stack
    owner = _owner(net, stack)
    data = encode_function_call(SAFE_MINT, owner.account)
    fee = 2 * net.chain.base_fee() + 10**9
    op = UserOperation(
        sender=owner.account,
        nonce=0,
        factory=stack.factory,
        factory_data=create_account_data(owner.signer.address, [(MODULE_TYPE_VALIDATOR, stack.module, b"")]),
        call_data=encode_execute(Call(stack.nft, 0, data)),
        call_gas_limit=600_000,
        verification_gas_limit=1_500_000,
        pre_verification_gas=80_000,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=10**9,
    )
    op = op.replace(
        signature=owner.signer.sign_hash(user_op_hash_v07(op.pack(), net.entry_point, net.chain_id))
    )
    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    assert report.storage_in(stack.module, "factory")
    assert not report.storage_in(stack.module, "account")  # the owner's path never asks the module
    _assert_module_storage(report, stack, owner.account, creating=True)


def test_a_module_installed_after_the_session_module_at_creation(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    """keyscope's account asks its installed validators whether a live session may call a module before it installs
    it, at creation too (attack 52): the second module of ``createAccount`` makes the account ask the session module
    ``isTargetOfLiveSession``, which reads the account's live sessions and a transient mark of revoked targets, in
    the factory phase of validation. Those reads are the account's associated storage, and no rule is broken."""
    stack = local_stack
    owner = LocalSigner.generate()
    executor = deploy(stack, "GreedyModule")
    modules = [(MODULE_TYPE_VALIDATOR, stack.module, b""), (MODULE_TYPE_EXECUTOR, executor, b"")]
    # the address commits to the modules created with (attack 95): not the default account's
    account = to_address(
        net.chain.call(stack.factory, create_account_data(owner.address, modules, view=True))[12:32]
    )
    stack.fund(account, ETHER)
    fee = 2 * net.chain.base_fee() + 10**9
    op = UserOperation(
        sender=account,
        nonce=0,
        factory=stack.factory,
        factory_data=create_account_data(owner.address, modules),
        call_data=encode_execute(Call(stack.nft, 0, encode_function_call(SAFE_MINT, account))),
        call_gas_limit=600_000,
        verification_gas_limit=1_500_000,
        pre_verification_gas=80_000,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=10**9,
    )
    op = op.replace(signature=owner.sign_hash(user_op_hash_v07(op.pack(), net.entry_point, net.chain_id)))
    report = checker.check([op])
    _assert_clean(report, "ok", stack, account)
    asked = report.storage_in(stack.module, "factory")
    assert {v.access.op for v in asked} >= {"SLOAD", "TLOAD"}, report.summary()
    _assert_module_storage(report, stack, account, creating=True)


def test_enable_in_the_first_operation_on_a_deployed_account(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    owner.execute(function_call(stack.nft, SAFE_MINT, owner.account)).wait()
    assert owner.is_deployed()
    session, _ = _session(net, owner, stack)
    op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
    assert op.factory is None and op.signature[0] == 0x01

    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    assert [p.kind for p in report.trace.phases] == ["account"]
    assert any(v.access.writes for v in report.storage_in(stack.module)), report.summary()
    # ENABLE asks the account for the owner's ERC-1271 verdict: a call back into the account, still clean.
    phase = report.trace.phase("account")
    assert any(c.target == owner.account and c.input[:4] == keccak(b"isValidSignature(bytes32,bytes)")[:4]
               for c in phase.calls), report.summary()  # fmt: skip
    _assert_module_storage(report, stack, owner.account, creating=False)
    assert session.send(op).wait().success


def test_use(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    session, _ = _enabled_session(net, owner, stack)
    op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
    assert len(op.signature) == 65 and op.factory is None

    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    # one permission header and one rule word: two reads, no write, whatever else the account holds
    _assert_module_storage(report, stack, owner.account, creating=False, reads=2)
    assert session.send(op).wait().success


def test_use_with_key(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    session, key = _enabled_session(net, owner, stack)
    call = function_call(stack.nft, MINT_BATCH, owner.account, 3)
    op = _manual_op(net, owner.account, call, signer=key, mode="use_with_key")
    assert len(op.signature) == 86 and op.signature[0] == 0x02

    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=3)
    assert session.send(op).wait().success


def test_co_signed_session(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    """A co-signed session's first operation (ENABLE carrying both signatures) and its SESSION-mode operations: the
    second ecrecover, the session's record and its co-signer's are the account's associated storage."""
    stack = local_stack
    owner = _owner(net, stack)
    owner.execute(function_call(stack.nft, SAFE_MINT, owner.account)).wait()
    key, co_signer = SessionKey.generate(), LocalSigner.generate()
    grant = owner.grant(key, _policies(stack, owner.account), valid_for=3600, co_signer=co_signer.address)
    session = net.session(grant, key, co_signer=local_co_signer(co_signer))
    for mode, size in ((0x01, None), (0x04, 163)):  # ENABLE, then SESSION
        op = session.build(function_call(stack.nft, SAFE_MINT, owner.account))
        assert op.signature[0] == mode and (size is None or len(op.signature) == size)
        report = checker.check([op])
        _assert_clean(report, "ok", stack, owner.account)
        _assert_module_storage(report, stack, owner.account, creating=False)
        assert session.send(op).wait().success


def test_batch(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    session, _ = _enabled_session(net, owner, stack)
    calls = [
        function_call(stack.nft, SAFE_MINT, owner.account),
        function_call(stack.nft, MINT_BATCH, owner.account, 2),
        function_call(stack.nft, SAFE_MINT, owner.account),
    ]
    op = session.build(calls, batch=True)
    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    # 3 calls: header + 1 word, header + 2 words, header + 1 word
    _assert_module_storage(report, stack, owner.account, creating=False, reads=7)
    assert session.send(op).wait().success


def test_batch_with_enable_creating_the_account(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    session, _ = _session(net, owner, stack)
    calls = [
        function_call(stack.nft, SAFE_MINT, owner.account),
        function_call(stack.nft, MINT_BATCH, owner.account, 3),
    ]
    op = session.build(calls, batch=True)
    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=True)
    assert session.send(op).wait().success


def test_revoked_session(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    session, key = _enabled_session(net, owner, stack)
    owner.revoke(session.grant).wait()
    call = function_call(stack.nft, SAFE_MINT, owner.account)

    # USE: the key has no live permission any more, so it is a signature failure (no revert)
    report = checker.check([_manual_op(net, owner.account, call, signer=key)])
    _assert_clean(report, "AA24 signature error", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=1)

    # USE_WITH_KEY: the module names the missing permission
    report = checker.check([_manual_op(net, owner.account, call, signer=key, mode="use_with_key")])
    _assert_clean(report, "AA23 reverted: NoPermission", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=1)

    # ENABLE with the original owner signature: the revoked session cannot come back
    assert session.grant.owner_signature is not None
    op = _manual_op(
        net, owner.account, call, signer=key, mode="enable", session=session,
        owner_signature=session.grant.owner_signature,
    )  # fmt: skip
    report = checker.check([op])
    _assert_clean(report, "AA23 reverted: SessionIsRevoked", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False)


def test_expired_session(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    _, key = _enabled_session(net, owner, stack, valid_until=stack.timestamp() + 120)
    # the stack is shared: its clock goes back with the snapshot (anvil's revert restores it), so that no later
    # test's session claims a period the bundler's clock has not reached
    clock = stack.snapshot()
    try:
        stack.increase_time(600)
        call = function_call(stack.nft, SAFE_MINT, owner.account)
        for mode in ("use", "use_with_key"):
            report = checker.check([_manual_op(net, owner.account, call, signer=key, mode=mode)])
            # the module never reads the clock: the window goes back in the validation data, the EntryPoint refuses
            _assert_clean(report, "AA22 expired or not due", stack, owner.account)
            _assert_module_storage(report, stack, owner.account, creating=False, reads=2)
            assert report.opcodes_in(stack.module)["TIMESTAMP"] == 0
    finally:
        stack.revert(clock)


def test_wrong_signer(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    _, key = _enabled_session(net, owner, stack)
    stranger = LocalSigner.generate()
    call = function_call(stack.nft, SAFE_MINT, owner.account)

    # USE: the signature recovers to a key with no permission: signature failure, one cold read
    report = checker.check([_manual_op(net, owner.account, call, signer=stranger)])
    _assert_clean(report, "AA24 signature error", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=1)

    # USE_WITH_KEY naming the real key, signed by someone else: the whole policy check, then failure
    op = _manual_op(net, owner.account, call, signer=stranger, mode="use_with_key", key=key.address)
    report = checker.check([op])
    _assert_clean(report, "AA24 signature error", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=2)

    # ENABLE of a new grant whose owner signature is a stranger's: the account's ERC-1271 says no
    other, other_key = _session(net, owner, stack)
    digest = other.grant.session.enable_digest(owner.account, owner.epoch(), net.chain_id, net.module)
    forged = stranger.sign_hash(digest)
    op = _manual_op(
        net, owner.account, call, signer=other_key, mode="enable", session=other, owner_signature=forged
    )
    report = checker.check([op])
    _assert_clean(report, "AA23 reverted: InvalidOwnerSignature", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False)


def test_call_outside_the_policy(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    owner = _owner(net, stack)
    _, key = _enabled_session(net, owner, stack)
    stranger = LocalSigner.generate().address
    for call, error in (
        (function_call(stack.nft, SAFE_MINT, stranger), "RuleViolated"),
        (function_call(stack.nft, MINT_BATCH, owner.account, 4), "RuleViolated"),
        (function_call(stack.nft, "approve(address,uint256)", stranger, 1), "NoPermission"),
        (Call(owner.account, 0, b""), "ForbiddenTarget"),
    ):
        op = _manual_op(net, owner.account, call, signer=key, mode="use_with_key")
        report = checker.check([op])
        _assert_clean(report, f"AA23 reverted: {error}", stack, owner.account)


def test_calls_a_target_would_read_otherwise(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    """The refusals of calldata a target could read otherwise than the module judges it: the zero selector
    with a payload, an argument word that is not its type's canonical encoding."""
    stack = local_stack
    owner = _owner(net, stack)
    owner.execute(function_call(stack.nft, SAFE_MINT, owner.account)).wait()
    key = SessionKey.generate()
    stranger = LocalSigner.generate().address
    grant = owner.grant(
        key,
        [
            Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") != stranger]),
            Policy.transfer(stranger, value_limit=1),
        ],
        onchain=True,
    )
    assert grant.session_id
    dirty = keccak(SAFE_MINT.encode())[:4] + (int(stranger, 16) | 1 << 160).to_bytes(32, "big")
    # the dirty word is refused after the permission's header and rule word are read
    report = checker.check(
        [_manual_op(net, owner.account, Call(stack.nft, 0, dirty), signer=key, mode="use_with_key")]
    )
    _assert_clean(report, "AA23 reverted: NonCanonicalArgument", stack, owner.account)
    # two slots: the header and the rule word, which the refusal reads again (warm) to name its error
    _assert_module_storage(report, stack, owner.account, creating=False, reads=3)
    assert len({v.access.slot for v in report.storage_in(stack.module)}) == 2, report.summary()
    # the zero selector with a payload is refused before any storage is read
    payload = Call(stranger, 0, bytes(4) + abi_encode(["address"], [stranger]))
    report = checker.check([_manual_op(net, owner.account, payload, signer=key, mode="use_with_key")])
    _assert_clean(report, "AA23 reverted: ZeroSelectorCall", stack, owner.account)
    assert not report.storage_in(stack.module), report.summary()


@pytest.fixture(scope="module")
def victims(local_stack: LocalStack) -> Victims:
    return deploy_victims(local_stack)


def test_operations_a_paymaster_pays(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack, victims: Victims
) -> None:
    """An ERC-20 paymaster named by a session operation: the cap counts its gas and lifts only for a paymaster
    the session lists, whose entry the module reads after the rule words (account-associated storage)."""
    stack = local_stack
    owner = _owner(net, stack)
    owner.execute(function_call(stack.nft, SAFE_MINT, owner.account)).wait()
    transact(
        stack, victims.token, "mint(address,uint256)", ["address", "uint256"], [owner.account, 100 * ETHER]
    )
    approve = abi_encode(["address", "uint256"], [victims.token_paymaster, 2**256 - 1])
    owner.execute(Call(victims.token, 0, keccak(b"approve(address,uint256)")[:4] + approve)).wait()
    cap = ETHER // 100
    mint = [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
    capped_key, trusting_key = SessionKey.generate(), SessionKey.generate()
    owner.grant(capped_key, mint, onchain=True, max_gas_cost=cap)
    owner.grant(trusting_key, mint, onchain=True, max_gas_cost=cap, paymasters=[victims.token_paymaster])
    call = function_call(stack.nft, SAFE_MINT, owner.account)
    sponsored = {
        "paymaster": victims.token_paymaster,
        "paymaster_verification_gas_limit": 200_000,
        "paymaster_post_op_gas_limit": 100_000,
    }
    over_cap = {**sponsored, "max_fee_per_gas": cap // 1_000_000, "max_priority_fee_per_gas": 10**9}

    # within the cap (the paymaster's gas counted): the paymaster validates and charges in postOp
    op = _manual_op(net, owner.account, call, signer=capped_key, **sponsored)
    assert required_prefund(op) <= cap
    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=2)
    # over the cap with a paymaster the session does not list: refused before the paymaster is asked
    report = checker.check([_manual_op(net, owner.account, call, signer=capped_key, **over_cap)])
    _assert_clean(report, "AA23 reverted: GasCostTooHigh", stack, owner.account)
    # over the cap with the paymaster the session lists: the module reads the listed paymaster too
    report = checker.check([_manual_op(net, owner.account, call, signer=trusting_key, **over_cap)])
    _assert_clean(report, "ok", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False, reads=3)
    before = view(stack, victims.token, "balanceOf(address)", ["address"], [owner.account])
    op = _manual_op(net, owner.account, call, signer=trusting_key, **over_cap)
    assert (
        net.bundler.get_user_operation_receipt(net.bundler.send_user_operation(op, net.entry_point)) is None
        or True
    )
    for _ in range(200):
        if view(stack, victims.token, "balanceOf(address)", ["address"], [owner.account]) < before:
            break
        stack.mine()
    assert view(stack, victims.token, "balanceOf(address)", ["address"], [owner.account]) < before


def test_several_operations_in_one_bundle(
    net: Network, checker: Erc7562Checker, local_stack: LocalStack
) -> None:
    """Two accounts in one handleOps, one created by it: each phase is checked against its own sender."""
    stack = local_stack
    first = _owner(net, stack)
    session_a, _ = _enabled_session(net, first, stack)
    second = _owner(net, stack)
    session_b, _ = _session(net, second, stack)
    ops = [
        session_a.build(function_call(stack.nft, SAFE_MINT, first.account)),
        session_b.build(function_call(stack.nft, SAFE_MINT, second.account)),
    ]
    report = checker.check(ops)
    assert report.outcome == "ok", report.summary()
    report.assert_clean()
    assert [(p.kind, p.op_index) for p in report.trace.phases] == [
        ("account", 0),
        ("factory", 1),
        ("account", 1),
    ]
    for phase in report.trace.phases:
        mine = [
            v for v in report.storage if v.access.phase == phase.index and v.access.contract == stack.module
        ]
        assert mine and all(v.associated == phase.sender for v in mine), report.summary()


def test_limited_session(net: Network, checker: Erc7562Checker, local_stack: LocalStack) -> None:
    """A session with limits of every per-call and per-operation kind, over the life and per period: ENABLE
    while creating the account (the limit records written under the staked factory), USE with a claimed time
    (the counters read and written), and two operations of the session in one bundle, the second over its total:
    every slot the module touches is the account's, nothing blocked is run."""
    stack = local_stack
    owner = _owner(net, stack)
    key = SessionKey.generate()
    now = stack.timestamp()
    policy = Policy.call(
        stack.nft,
        "mintBatch(address to,uint256 count)",
        rules=[arg("to") == owner.account],
        calls=10,
        rate="5/hour",
        totals=[arg("count").total(5, per="day")],
    )
    grant = owner.grant(
        key,
        [policy],
        limits=[Limits.operations(20, per="hour")],
        gas_budget=10**18,
        valid_after=now - 1800,
        valid_until=now + 86400,
    )
    session = net.session(grant, key)
    op = session.build(function_call(stack.nft, MINT_BATCH, owner.account, 2))
    assert op.factory == stack.factory and op.signature[0] == 0x03  # AT, then ENABLE with initCode
    report = checker.check([op])
    _assert_clean(report, "ok", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=True)
    assert session.send(op).wait().success

    first = session.build(function_call(stack.nft, MINT_BATCH, owner.account, 2))
    assert first.signature[0] == 0x03 and len(first.signature) == 72  # AT ‖ USE
    second = session.build(function_call(stack.nft, MINT_BATCH, owner.account, 2), lane=1)
    report = checker.check([first])
    _assert_clean(report, "ok", stack, owner.account)
    _assert_module_storage(report, stack, owner.account, creating=False)
    assert any(v.access.writes for v in report.storage_in(stack.module)), report.summary()
    both = checker.check([first, second])
    assert "AA23" in both.outcome and "LimitExceeded" in both.outcome, both.summary()
    both.assert_clean()


# -- the checker sees what it must ----------------------------------------------------------------------


def _assemble(*parts: str | int | bytes) -> str:
    """Bytecode from opcode names, ints (PUSH of the smallest width) and raw bytes."""
    table = {
        "STOP": 0x00, "SHL": 0x1B, "POP": 0x50, "MSTORE": 0x52, "SLOAD": 0x54, "ORIGIN": 0x32,
        "TIMESTAMP": 0x42, "NUMBER": 0x43, "SELFBALANCE": 0x47, "GAS": 0x5A, "EXTCODESIZE": 0x3B,
        "CALL": 0xF1, "STATICCALL": 0xFA, "RETURN": 0xF3, "CREATE": 0xF0, "CREATE2": 0xF5,
    }  # fmt: skip
    code = bytearray()
    for part in parts:
        if isinstance(part, str):
            code.append(table[part])
        elif isinstance(part, bytes):
            code += bytes([0x5F + len(part)]) + part
        else:
            width = max(1, (part.bit_length() + 7) // 8)
            code += bytes([0x5F + width]) + part.to_bytes(width, "big")
    return "0x" + code.hex()


def _rogue(stack: LocalStack, code: str) -> UserOperation:
    address = LocalSigner.generate().address
    stack.node.request("anvil_setCode", [address, code])
    stack.fund(address, ETHER)
    return UserOperation(sender=address, nonce=0, verification_gas_limit=400_000, call_gas_limit=50_000)


def _static_call(target: str, data: bytes, gas: int | None = None) -> list[str | int | bytes]:
    """Put ``data`` in memory at 0 and STATICCALL ``target`` with all gas (or ``gas``), output at 0x400."""
    padded = data.ljust(-(-len(data) // 32) * 32, b"\x00")
    code: list[str | int | bytes] = []
    for offset in range(0, len(padded), 32):
        code += [padded[offset : offset + 32], offset, "MSTORE"]
    return [*code, 32, 0x400, len(data), 0, bytes.fromhex(target[2:]), *(["GAS"] if gas is None else [gas]),
            "STATICCALL", "POP"]  # fmt: skip


def test_checker_flags_what_a_bundler_refuses(checker: Erc7562Checker, local_stack: LocalStack) -> None:
    stack = local_stack
    other = LocalSigner.generate().address
    eoa = LocalSigner.generate().address
    epoch_of = keccak(b"epochOf(address)")[:4] + bytes(12) + bytes.fromhex(other[2:])
    get_nonce = keccak(b"getNonce(address,uint192)")[:4] + bytes(64)
    code = _assemble(
        "TIMESTAMP", "POP", "NUMBER", "POP", "ORIGIN", "POP",  # OP-011
        "GAS", "POP",  # OP-012
        bytes.fromhex(eoa[2:]), "EXTCODESIZE", "POP",  # OP-041
        "SELFBALANCE", "POP",  # OP-080: the account is not staked
        7, "SLOAD", "POP",  # the account's own storage: allowed
        *_static_call(stack.module, epoch_of),  # STO-021: another account's slot in the module
        *_static_call(stack.entry_point, get_nonce),  # OP-054
        0, 0, 0, 0, 1, bytes.fromhex(eoa[2:]), "GAS", "CALL", "POP",  # OP-061 and OP-041
        0, 0, 0, 0, "CREATE2", "POP",  # OP-031: CREATE2 outside the factory phase
        0, 0, 0, "CREATE", "POP",  # OP-011
        # OP-062 (a failing precompile call burns the gas it is given: give it little)
        *_static_call("0x000000000000000000000000000000000000000a", b"\x01", gas=3000),
        32, 0x200, "RETURN",  # validationData 0
    )  # fmt: skip
    op = _rogue(stack, code)
    report = checker.check([op])
    assert report.rules() == {
        "OP-011", "OP-012", "OP-041", "OP-080", "STO-021", "OP-062", "OP-054", "OP-061", "OP-031",
    }, report.summary()  # fmt: skip
    blocked = sorted(v.message.split()[2] for v in report.violations if v.rule == "OP-011")
    assert blocked == ["CREATE", "NUMBER", "ORIGIN", "TIMESTAMP"], report.summary()
    [sto] = [v for v in report.violations if v.rule.startswith("STO")]
    assert sto.contract == stack.module and other in sto.message, sto  # associated with the other account
    own = [v for v in report.storage if v.access.contract == op.sender]
    assert [(v.rule, v.access.slot) for v in own] == [("STO-010", 7)]
    with pytest.raises(AssertionError, match="ERC-7562 violations"):
        report.assert_clean()


@pytest.mark.parametrize(
    ("code", "rule", "what"),
    [
        ("0x0c", "OP-013", "unassigned opcode"),
        ("0xfe", "OP-011", "INVALID"),
        ("0x5b60005600", "OP-020", "out of gas"),
    ],
)
def test_checker_flags_invalid_code(
    checker: Erc7562Checker, local_stack: LocalStack, code: str, rule: str, what: str
) -> None:
    report = checker.check([_rogue(local_stack, code)])
    assert report.outcome.startswith("AA23"), report.summary()
    assert report.rules() == {rule}, report.summary()
    assert what in report.violations[0].message


def test_checker_refuses_a_trace_without_memory(checker: Erc7562Checker, local_stack: LocalStack) -> None:
    """Call inputs and keccak preimages come from memory: a trace without it is refused, not misread."""
    epoch_of = keccak(b"epochOf(address)")[:4] + bytes(32)
    op = _rogue(local_stack, _assemble(*_static_call(local_stack.module, epoch_of), 32, 0, "RETURN"))
    trace = checker.trace([op])
    assert parse_validation_trace(trace, local_stack.entry_point, [op]).preimages
    for log in trace["structLogs"]:
        log.pop("memory", None)
    with pytest.raises(TraceError, match="enableMemory"):
        parse_validation_trace(trace, local_stack.entry_point, [op])
