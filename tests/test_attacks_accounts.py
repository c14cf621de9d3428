"""Attacks on the contracts around the session module: the account's implementation and the EIP-7702 delegate's own
deployment used as accounts, the owner's ERC-7739 signatures moved to another chain or to the implementation's
domain, and a sponsorship moved to other creation code. Through the real EntryPoints (v0.7, and v0.8 for the
delegate) on ape's local chain."""

from __future__ import annotations

import pytest

from conftest import ETHER
from keyscope.accounts import create_account_data
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.errors import BundlerRejectedError
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v08
from keyscope.hexutil import to_address
from keyscope.owner_signatures import sign_message_as_account, sign_typed_data_as_account
from keyscope.signing import LocalSigner
from keyscope.sponsor import PAYMASTER_DATA_LENGTH, sign_sponsorship
from keyscope.typed_data import TypedData, eip191_hash
from keyscope.userop import UserOperation
from support.ape_entry_point import deploy_entry_point

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC1271_INVALID = bytes.fromhex("ffffffff")
ZERO = "0x" + "00" * 20
# r = 0 is no point of the curve: ecrecover returns the zero address for it (s = 1 is low, v = 27 well formed)
RECOVERS_TO_ZERO = bytes(32) + (1).to_bytes(32, "big") + bytes([27])


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, bundler):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


@pytest.fixture(scope="module")
def entry_point_v08(deployer):
    return deploy_entry_point(deployer, "0.8")


def _forged_signatures(op_hash: bytes) -> dict[str, bytes]:
    """Signatures an outsider can make for an account whose owner is no key it holds."""
    return {
        "recovers to zero": RECOVERS_TO_ZERO,
        "empty": b"",
        "65 zero bytes": bytes(65),
        "the outsider's own key": LocalSigner.generate().sign_hash(op_hash),
    }


def test_the_account_implementation_runs_no_operation_and_signs_nothing(
    harness, factory, entry_point, nft, project, accounts
):
    """The implementation every clone runs is itself an account whose owner is the zero address (the constructor
    sets none, and its initialiser is disabled). An outsider funds its deposit and sends it operations minting to
    themself, signed so that ecrecover yields the zero address (r = 0), or empty, zero or their own: a check that
    compared the recovered address with the owner and ignored ecrecover's failure would take them all. Each one
    fails validation (AA24) and nothing runs; its ERC-1271 answers no to the same signatures."""
    implementation = project.KeyscopeAccount.at(factory.accountImplementation())
    assert implementation.signer() == ZERO
    # the ecrecover precompile gives nothing (the zero address) for the forged signature of any hash
    web3 = harness.chain.provider.web3
    ecrecover = "0x" + "00" * 19 + "01"
    data = b"\x42" * 32 + (27).to_bytes(32, "big") + RECOVERS_TO_ZERO[:64]
    assert bytes(web3.eth.call({"to": ecrecover, "data": data})).rjust(32, b"\x00") == bytes(32)
    genuine = LocalSigner.generate()
    real = genuine.sign_hash(b"\x42" * 32)
    data = b"\x42" * 32 + real[64:].rjust(32, b"\x00") + real[:64]
    assert to_address(bytes(web3.eth.call({"to": ecrecover, "data": data}))[12:]) == genuine.address
    attacker = accounts[8]
    entry_point.depositTo(implementation.address, value=ETHER, sender=attacker)
    mint = encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(attacker.address)))
    before = nft.balanceOf(attacker.address)
    for lane in (0, 1):
        op = harness.op(implementation.address, mint, key=lane)
        for name, signature in _forged_signatures(harness.hash(op)).items():
            error = harness.rejected(op.replace(signature=signature))
            assert error.reason == "AA24", (lane, name, error)
    assert nft.balanceOf(attacker.address) == before
    assert harness.nonce(implementation.address, 0) == 0

    digest = eip191_hash(b"implementation")
    for signature in _forged_signatures(digest).values():
        assert bytes(implementation.isValidSignature(digest, signature)) == ERC1271_INVALID
    # nor through the installed-validator route: no validator is installed, whoever asks
    assert not implementation.isModuleInstalled(1, attacker.address, b"")
    assert (
        bytes(implementation.isValidSignature(digest, RECOVERS_TO_ZERO, sender=attacker)) == ERC1271_INVALID
    )


def test_the_delegates_own_deployment_runs_no_operation(
    project, entry_point_v08, deployer, submitter_account, nft, accounts, chain
):
    """``KeyscopeDelegate`` deployed as code for EOAs to delegate to is also an account at its own address, whose
    owner is that address (no key has it). An outsider funds its deposit at EntryPoint v0.8 and sends it
    operations on the owner's lane and on lanes naming a validator, signed as above: AA24 every time, nothing
    minted, no module installed; its ``execute`` and ``installModule`` refuse a direct call."""
    delegate = project.KeyscopeDelegate.deploy(entry_point_v08, sender=deployer)
    attacker = accounts[8]
    entry_point_v08.depositTo(delegate.address, value=ETHER, sender=attacker)
    bundler = InProcessBundler(entry_point_v08.address, submitter_account)
    mint = encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(attacker.address)))
    before = nft.balanceOf(attacker.address)
    for key in (0, int(attacker.address, 16) << 32):
        op = UserOperation(
            sender=delegate.address,
            nonce=int(entry_point_v08.getNonce(delegate.address, key)),
            call_data=mint,
            call_gas_limit=500_000,
            verification_gas_limit=500_000,
            pre_verification_gas=60_000,
            max_fee_per_gas=2 * 10**9,
            max_priority_fee_per_gas=10**9,
        )
        op_hash = user_op_hash_v08(op.pack(), entry_point_v08.address, int(chain.chain_id))
        assert op_hash == bytes(entry_point_v08.getUserOpHash(op.pack().as_tuple()))
        for name, signature in _forged_signatures(op_hash).items():
            with pytest.raises(BundlerRejectedError) as info:
                bundler.send_user_operation(op.replace(signature=signature), entry_point_v08.address)
            assert info.value.reason == "AA24", (hex(key), name, info.value)
    assert nft.balanceOf(attacker.address) == before
    assert not delegate.isModuleInstalled(1, attacker.address, b"")
    for call in (
        lambda: delegate.execute(bytes(32), b"", sender=attacker),
        lambda: delegate.installModule(1, attacker.address, b"", sender=attacker),
    ):
        with pytest.raises(Exception) as info:
            call()
        assert "AccountUnauthorized" in (type(info.value).__name__ + str(info.value)), info.value


def test_strangers_cannot_uninstall_the_delegates_modules_nor_run_calls_through_it(
    project, deployer, accounts, module
):
    """docs/accounts.md: ``installModule``, ``uninstallModule`` and ``execute`` of ``KeyscopeDelegate`` accept only
    the EntryPoint and the EOA itself, and ``executeFromExecutor`` only an installed executor. The delegate runs here
    as a plain contract whose EntryPoint is a test account (delegation needs a Prague node): a stranger who could
    uninstall the session module would end every session, and one who could execute would move the EOA's assets."""
    entry = accounts[6]
    stranger = accounts[8]
    delegate = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    delegate.installModule(1, module.address, b"", sender=entry)
    stranger.transfer(delegate.address, ETHER)
    single = bytes(32)  # ERC-7579 mode: a single call, reverting on failure
    take = bytes.fromhex(stranger.address[2:]) + ETHER.to_bytes(32, "big")
    refusals = (
        (lambda: delegate.uninstallModule(1, module.address, b"", sender=stranger), "AccountUnauthorized"),
        (lambda: delegate.execute(single, take, sender=stranger), "AccountUnauthorized"),
        (lambda: delegate.executeFromExecutor(single, take, sender=stranger), "ERC7579UninstalledModule"),
    )
    for call, error in refusals:
        with pytest.raises(Exception) as info:
            call()
        assert error in (type(info.value).__name__ + str(info.value)), info.value
    assert delegate.isModuleInstalled(1, module.address, b"")
    assert int(delegate.balance) == ETHER
    # the EntryPoint may (after the owner's signature): the same calls go through
    delegate.execute(single, take, sender=entry)
    assert int(delegate.balance) == 0
    delegate.uninstallModule(1, module.address, b"", sender=entry)
    assert not delegate.isModuleInstalled(1, module.address, b"")


_MAIL = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Order": [{"name": "amount", "type": "uint256"}, {"name": "to", "type": "address"}],
    },
    "primaryType": "Order",
    "domain": {
        "name": "Exchange",
        "version": "1",
        "chainId": 0,  # set per test
        "verifyingContract": "0x" + "42" * 20,
    },
    "message": {"amount": 10**18, "to": "0x" + "24" * 20},
}


def test_the_owners_nested_signature_is_bound_to_the_chain_and_the_clone_not_the_implementation(
    harness, factory, project, chain
):
    """ERC-7739 binds the owner's signature to the account's EIP-712 domain (name, version, chain, address). The
    clones run the implementation's code, whose domain was cached at its construction with the implementation's
    address: a clone answering with that cached domain would take signatures made for the implementation, the
    same for every clone (a signature for one would be good for all). A signature made for another chain, or for
    the implementation's address, is refused by the account, for a message and for typed data; the one made for
    the account passes."""
    owner = LocalSigner.generate()
    account = harness.create(owner, salt=31)
    chain_id = int(chain.chain_id)
    implementation = factory.accountImplementation()
    clone = project.KeyscopeAccount.at(account)
    domain = clone.eip712Domain()
    assert (domain[1], domain[2], int(domain[3]), domain[4]) == ("KeyscopeAccount", "1", chain_id, account)

    message = b"sign in to example.com"
    digest = eip191_hash(message)
    order = {**_MAIL, "domain": {**_MAIL["domain"], "chainId": chain_id}}
    order_digest = TypedData(order).digest
    for signed_for, chain_of in ((implementation, chain_id), (account, chain_id + 1), (account, 0)):
        by_message = sign_message_as_account(owner, message, account=signed_for, chain_id=chain_of)
        assert bytes(clone.isValidSignature(digest, by_message)) == ERC1271_INVALID, (signed_for, chain_of)
        by_typed = sign_typed_data_as_account(owner, order, account=signed_for, chain_id=chain_of)
        assert bytes(clone.isValidSignature(order_digest, by_typed)) == ERC1271_INVALID, (
            signed_for,
            chain_of,
        )
    good_message = sign_message_as_account(owner, message, account=account, chain_id=chain_id)
    assert bytes(clone.isValidSignature(digest, good_message)) == ERC1271_MAGIC
    good_typed = sign_typed_data_as_account(owner, order, account=account, chain_id=chain_id)
    assert bytes(clone.isValidSignature(order_digest, good_typed)) == ERC1271_MAGIC


def test_a_sponsorship_for_an_accounts_creation_binds_its_creation_code(
    harness, factory, entry_point, nft, project, deployer, chain
):
    """A bundler holding a sponsored creating operation (and the owner's key, to re-sign) changes its initCode so
    that the same account is still created: the factory's call data with a word appended (decoders ignore it) or
    with the modules array at another offset. The sponsor signed the initCode's hash: AA34, the deposit
    untouched; the operation as signed then creates the account, paid by the deposit."""
    sponsor_key = LocalSigner.generate()
    paymaster = project.SponsorPaymaster.deploy(entry_point, deployer, sponsor_key.address, sender=deployer)
    paymaster.deposit(value=2 * ETHER, sender=deployer)
    paymaster.addStake(86_400, value=ETHER, sender=deployer)
    chain_id = int(chain.chain_id)
    owner = LocalSigner.generate()
    account = harness.counterfactual(owner.address, salt=41)
    data = create_account_data(owner.address, salt=41)
    op = harness.op(
        account,
        encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(account))),
        factory=factory.address,
        factory_data=data,
    ).replace(
        paymaster=paymaster.address,
        paymaster_verification_gas_limit=60_000,
        paymaster_post_op_gas_limit=0,
        paymaster_data=bytes(PAYMASTER_DATA_LENGTH),
    )
    until = int(chain.blocks.head.timestamp) + 600
    op = op.replace(
        paymaster_data=sign_sponsorship(sponsor_key, op, paymaster.address, chain_id, valid_until=until)
    )

    # the same call, re-encoded: a word appended; the modules array's offset moved one word on (an empty word
    # inserted before it: [owner][offset][salt][pad][len = 0])
    selector, args = data[:4], data[4:]
    moved = selector + args[:32] + (0x80).to_bytes(32, "big") + args[64:96] + bytes(32) + args[96:]
    assert int.from_bytes(args[32:64], "big") == 0x60
    before = int(entry_point.balanceOf(paymaster.address))
    get_address = create_account_data(owner.address, salt=41, view=True)[:4]
    for changed in (data + bytes(32), moved):
        assert changed != data
        # the factory reads both as the signed arguments: the same account
        answer = chain.provider.web3.eth.call({"to": factory.address, "data": get_address + changed[4:]})
        assert to_address(bytes(answer)[12:32]) == account
        tampered = harness.sign_owner(op.replace(factory_data=changed), owner)
        error = harness.rejected(tampered)
        assert error.reason == "AA34", error
    assert int(entry_point.balanceOf(paymaster.address)) == before
    assert not chain.provider.get_code(account)

    receipt = harness.submit(harness.sign_owner(op, owner))
    assert receipt.success, receipt.reason
    assert receipt.paymaster == paymaster.address
    assert nft.balanceOf(account) == 1
    assert before - int(entry_point.balanceOf(paymaster.address)) == receipt.actual_gas_cost


def test_strangers_cannot_unstake_the_factory_or_take_over_the_factory_or_the_paymaster(
    project, entry_point, deployer, accounts, chain
):
    """The factory is staked so that bundlers accept accounts whose creation installs modules (ERC-7562); a stranger
    unlocking or withdrawing that stake would get every such first operation throttled, and one taking the factory's
    or the paymaster's ownership would do the same or move the sponsor's deposit and signer. Every one of those
    calls from a stranger reverts `OwnableUnauthorizedAccount`, the stake stays locked and staked, the owners stay;
    the admin's own calls go through."""
    stranger = accounts[8]
    factory = project.KeyscopeAccountFactory.deploy(entry_point, deployer, sender=deployer)
    with pytest.raises(Exception) as info:
        factory.addStake(86_400, value=ETHER, sender=stranger)
    assert "OwnableUnauthorizedAccount" in (type(info.value).__name__ + str(info.value)), info.value
    factory.addStake(86_400, value=ETHER, sender=deployer)
    sponsor = LocalSigner.generate()
    paymaster = project.SponsorPaymaster.deploy(entry_point, deployer, sponsor.address, sender=deployer)

    attempts = (
        lambda: factory.unlockStake(sender=stranger),
        lambda: factory.withdrawStake(stranger, sender=stranger),
        lambda: factory.transferOwnership(stranger, sender=stranger),
        lambda: factory.renounceOwnership(sender=stranger),
        lambda: paymaster.transferOwnership(stranger, sender=stranger),
        lambda: paymaster.renounceOwnership(sender=stranger),
        lambda: paymaster.setSigner(stranger, sender=stranger),
    )
    for attempt in attempts:
        with pytest.raises(Exception) as info:
            attempt()
        assert "OwnableUnauthorizedAccount" in (type(info.value).__name__ + str(info.value)), info.value
    stake = entry_point.getDepositInfo(factory.address)
    assert stake.staked and stake.stake == ETHER and stake.withdrawTime == 0
    assert factory.owner() == deployer.address and paymaster.owner() == deployer.address
    assert paymaster.signer() == sponsor.address

    # the admin's own: unlock, then the stake is withdrawable by the admin only, to where it says
    factory.unlockStake(sender=deployer)
    assert not entry_point.getDepositInfo(factory.address).staked
    chain.pending_timestamp = int(chain.blocks.head.timestamp) + 86_401
    with pytest.raises(Exception) as info:
        factory.withdrawStake(stranger, sender=stranger)
    assert "OwnableUnauthorizedAccount" in (type(info.value).__name__ + str(info.value)), info.value
    balance = chain.provider.get_balance(deployer.address)
    receipt = factory.withdrawStake(deployer, sender=deployer)
    assert chain.provider.get_balance(deployer.address) == balance + ETHER - receipt.total_fees_paid


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
