"""The modular account and its factory, through the real EntryPoint v0.7 on ape's local chain."""

from __future__ import annotations

import pytest

from conftest import ETHER, KIND
from keyscope.accounts import create_account_data
from keyscope.execution import Call, encode_execute
from keyscope.owner_signatures import sign_message_as_account
from keyscope.signing import LocalSigner
from keyscope.typed_data import eip191_hash

ZERO_ADDRESS = "0x" + "00" * 20

ERC1271_MAGIC = bytes.fromhex("1626ba7e")


def test_factory_prediction_matches_the_deployed_address(harness, owner, chain):
    predicted = harness.counterfactual(owner.address, salt=7)
    assert not chain.provider.get_code(predicted)
    deployed = harness.create(owner, salt=7)
    assert deployed == predicted
    assert chain.provider.get_code(predicted)


def test_salt_commits_to_owner_and_modules(harness, owner, module):
    other = LocalSigner.generate()
    base = harness.counterfactual(owner.address)
    assert harness.counterfactual(other.address) != base
    assert harness.counterfactual(owner.address, salt=1) != base
    assert harness.counterfactual(owner.address, [(1, module.address, b"")]) != base


def test_first_user_operation_creates_the_account_and_mints(harness, owner, nft, entry_point, project):
    address = harness.counterfactual(owner.address)
    harness.fund(address)
    op = harness.op(
        address,
        encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(address))),
        factory=harness.factory.address,
        factory_data=create_account_data(owner.address),
    )
    receipt = harness.submit(harness.sign_owner(op, owner))
    assert receipt.success
    assert nft.ownerOf(0) == address
    account = project.KeyscopeAccount.at(address)
    assert account.signer() == owner.address
    assert account.entryPoint() == entry_point.address
    assert account.accountId() == "keyscope.account.v0.1.0"


def test_owner_batch(harness, account, owner, nft):
    calls = [Call.of(nft.address, 0, nft.safeMint.encode_input(account)) for _ in range(3)]
    harness.owner_execute(account, owner, calls)
    assert nft.balanceOf(account) == 3


def test_value_transfer(harness, account, owner, accounts):
    receiver = accounts[5]
    before = receiver.balance
    harness.owner_execute(account, owner, Call.of(receiver.address, ETHER // 10))
    assert receiver.balance - before == ETHER // 10


def test_wrong_signature_is_rejected_with_aa24(harness, account, nft):
    intruder = LocalSigner.generate()
    op = harness.op(account, encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(account))))
    error = harness.rejected(harness.sign_owner(op, intruder))
    assert error.reason == "AA24"
    assert nft.balanceOf(account) == 0


def test_garbage_signature_is_rejected_with_aa24(harness, account, nft):
    op = harness.op(account, encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(account))))
    assert harness.rejected(op.replace(signature=b"\x01" * 65)).reason == "AA24"
    assert harness.rejected(op.replace(signature=b"")).reason == "AA24"


def test_install_and_uninstall_module(harness, account, owner, module, project):
    contract = project.KeyscopeAccount.at(account)
    assert not contract.isModuleInstalled(1, module.address, b"")
    harness.owner_execute(account, owner, KIND.install_validator_call(account, module.address))
    assert contract.isModuleInstalled(1, module.address, b"")
    assert module.isInitialized(account)
    harness.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
    assert not contract.isModuleInstalled(1, module.address, b"")
    assert not module.isInitialized(account)


def test_the_account_cannot_lose_its_owner_path(harness, account, owner, module, nft, project):
    """docs/architecture.md: "an account can never lose its owner path". The owner's operations use nonce key 0,
    which names the zero address as their validator; the zero address cannot be installed as one (it has no code
    to answer ``isModuleType``), so key 0 reaches the built-in ECDSA check whatever validators come and go."""
    zero = "0x" + "00" * 20
    contract = project.KeyscopeAccount.at(account)
    install_zero = encode_execute(KIND.install_validator_call(account, zero))
    refused = harness.submit(harness.sign_owner(harness.op(account, install_zero), owner))
    assert not refused.success
    assert not contract.isModuleInstalled(1, zero, b"")
    harness.owner_execute(account, owner, KIND.install_validator_call(account, module.address))
    harness.owner_execute(account, owner, Call.of(nft.address, 0, nft.safeMint.encode_input(account)))
    harness.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
    harness.owner_execute(account, owner, Call.of(nft.address, 0, nft.safeMint.encode_input(account)))
    assert nft.balanceOf(account) == 2


def test_module_installed_at_creation(harness, owner, module, project):
    account = harness.create(owner, [(1, module.address, b"")])
    assert project.KeyscopeAccount.at(account).isModuleInstalled(1, module.address, b"")
    assert module.isInitialized(account)


def test_installing_an_executor_that_is_not_one_is_refused(harness, account, owner, module, project):
    from keyscope.execution import encode_execute as enc

    bad = Call.of(
        account, 0, project.KeyscopeAccount.at(account).installModule.encode_input(2, module.address, b"")
    )
    receipt = harness.submit(harness.sign_owner(harness.op(account, enc(bad)), owner))
    assert not receipt.success


def test_erc1271_accepts_only_the_owners_signature_bound_to_the_account(account, owner, project, chain):
    """The owner's ERC-7739 PersonalSign for this account is valid; another key's is not, nor is the owner's bare
    signature of the hash (no validator asks here), nor nothing (tests/test_owner_signatures.py has the rest)."""
    contract = project.KeyscopeAccount.at(account)
    message = b"\x42" * 32
    digest = eip191_hash(message)
    bound = sign_message_as_account(owner, message, account=account, chain_id=chain.chain_id)
    assert contract.isValidSignature(digest, bound) == ERC1271_MAGIC
    stranger = sign_message_as_account(
        LocalSigner.generate(), message, account=account, chain_id=chain.chain_id
    )
    assert contract.isValidSignature(digest, stranger) != ERC1271_MAGIC
    assert contract.isValidSignature(digest, owner.sign_hash(digest)) != ERC1271_MAGIC
    assert contract.isValidSignature(digest, b"") != ERC1271_MAGIC


def test_execute_is_only_for_the_entry_point(account, nft, project, accounts):
    import ape

    contract = project.KeyscopeAccount.at(account)
    with ape.reverts(contract.AccountUnauthorized, sender=accounts[3].address):
        contract.execute(b"\x00" * 32, b"", sender=accounts[3])


def test_initialize_cannot_be_called_again(account, project, accounts):
    import ape

    contract = project.KeyscopeAccount.at(account)
    with ape.reverts(contract.InvalidInitialization):
        contract.initialize(accounts[3].address, [], sender=accounts[3])


def test_the_implementation_cannot_be_initialised(factory, project, accounts):
    import ape

    implementation = project.KeyscopeAccount.at(factory.accountImplementation())
    with ape.reverts(implementation.InvalidInitialization):
        implementation.initialize(accounts[3].address, [], sender=accounts[3])


def test_an_account_without_an_owner_is_never_created(factory, project, accounts, chain):
    """An account whose owner is the zero address would accept any signature that ecrecover fails on; the factory's
    call to initialize refuses it, so no such account exists, at the address predicted or anywhere."""
    from ape.exceptions import ContractLogicError
    from eth_utils import keccak

    predicted = factory.getAddress(ZERO_ADDRESS, [], 7)
    with pytest.raises(ContractLogicError) as refused:
        factory.createAccount(ZERO_ADDRESS, [], 7, sender=accounts[3])
    # The account's error, bubbled through the factory (whose ABI does not name it): its selector alone.
    assert refused.value.revert_message == "0x" + keccak(b"OwnerIsZeroAddress()")[:4].hex()
    assert not chain.provider.get_code(predicted)


def test_parallel_nonce_lanes(harness, account, owner, nft):
    for lane in (1, 2):
        key = KIND.nonce_key(None, lane)
        op = harness.op(
            account, encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(account))), key=key
        )
        assert harness.submit(harness.sign_owner(op, owner)).success
        assert harness.nonce(account, key) & ((1 << 64) - 1) == 1
    assert nft.balanceOf(account) == 2
