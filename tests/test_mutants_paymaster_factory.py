"""Checks of the sponsor's paymaster, the account factory and the deployless signature check that single weakened
checks of those contracts survived (docs/static-analysis.md, "Mutation testing"): each test here passes on the
contracts and fails on the weakened one it names. On ape's py-evm chain, with the real EntryPoint v0.7."""

from __future__ import annotations

from typing import Any

import pytest

from keyscope import Web3Chain
from keyscope.accounts import MODULE_TYPE_VALIDATOR, create_account_data
from keyscope.accounts.deployless import ask_undeployed_account
from keyscope.errors import UnsupportedAccountError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.owner_signatures import sign_message_as_account
from keyscope.signing import LocalSigner
from keyscope.sponsor import PAYMASTER_DATA_LENGTH, sponsorship_hash
from keyscope.typed_data import eip191_hash
from keyscope.userop import PackedUserOperation, UserOperation
from support.raw_call import revert_bytes

MARKER = bytes.fromhex("7702")
TARGET = "0x" + "42" * 20


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, bundler, harness):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


@pytest.fixture(scope="module")
def sponsor_key() -> LocalSigner:
    return LocalSigner.generate()


@pytest.fixture(scope="module")
def paymaster(project, entry_point, deployer, sponsor_key):
    return project.SponsorPaymaster.deploy(entry_point, deployer, sponsor_key.address, sender=deployer)


def _delegate(chain: Any, address: str, delegate: str) -> None:
    """Give ``address`` the code of an EIP-7702 delegation to ``delegate`` (``0xef0100 || delegate``), written into
    py-evm's state as the authorization would leave it (the tests' chain lands no type-4 transaction)."""
    backend = chain.provider.evm_backend
    state = backend.chain.get_vm().state
    state.set_code(bytes.fromhex(address[2:]), bytes.fromhex("ef0100") + bytes.fromhex(delegate[2:]))
    state.persist()
    backend.chain.header = backend.chain.header.copy(state_root=state.state_root)
    chain.mine()
    assert bytes(chain.provider.get_code(address)) == bytes.fromhex("ef0100" + delegate[2:])


def _sponsored_op(sender: str, paymaster: str, init_code: bytes) -> PackedUserOperation:
    op = UserOperation(
        sender=sender,
        nonce=0,
        call_data=encode_execute(Call(TARGET, 0, b"")),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
        paymaster=paymaster,
        paymaster_verification_gas_limit=60_000,
        paymaster_post_op_gas_limit=0,
        paymaster_data=bytes(PAYMASTER_DATA_LENGTH),
    )
    return op.pack().model_copy(update={"init_code": init_code})


# ------------------------------------------------------------------------------------------------------
# SponsorPaymaster
# ------------------------------------------------------------------------------------------------------


def test_an_eip7702_sponsorship_covers_the_senders_delegate_and_the_init_data_after_the_marker(
    paymaster, entry_point, sponsor_key, chain
):
    """An EIP-7702 account's operation carries the ``0x7702`` marker as its initCode; the delegate is read from the
    sender's code. For a sender delegating to one address, then another, ``sponsorshipHash`` equals the sponsor's
    digest for that delegate with the bare marker (2 bytes, 20 bytes) and with init data after it, and the digest
    changes with the delegate and with every byte of the init data; a sponsorship signed for one delegate fails
    validation (SIG_VALIDATION_FAILED) once the sender delegates to another. Fails with the delegate not read from
    the sender, or the init data after the marker left out of the hash."""
    chain_id = int(chain.chain_id)
    sender = LocalSigner.generate().address
    first, second = LocalSigner.generate().address, LocalSigner.generate().address
    init_codes = (
        MARKER,
        MARKER.ljust(20, b"\0"),
        MARKER.ljust(20, b"\0") + b"\x01",
        MARKER.ljust(20, b"\0") + b"\x02",
        MARKER.ljust(20, b"\0") + keccak(b"init(uint256)")[:4] + bytes(32),
    )
    digests = {}
    for delegate in (first, second):
        _delegate(chain, sender, delegate)
        for init_code in init_codes:
            packed = _sponsored_op(sender, paymaster.address, init_code)
            onchain = bytes(paymaster.sponsorshipHash(packed.as_tuple(), 0, 0))
            assert onchain == sponsorship_hash(
                packed, paymaster.address, chain_id, valid_until=0, valid_after=0, eip7702_delegate=delegate
            ), (delegate, init_code.hex())
            digests[(delegate, init_code)] = onchain
    # the bare marker, 2 bytes or 20, names the same code; anything else is another sponsorship
    for delegate in (first, second):
        assert digests[(delegate, init_codes[0])] == digests[(delegate, init_codes[1])]
    assert len(set(digests.values())) == len(digests) - 2

    # signed while the sender delegated to `first`; it now delegates to `second`
    packed = _sponsored_op(sender, paymaster.address, MARKER)
    digest = sponsorship_hash(
        packed, paymaster.address, chain_id, valid_until=0, valid_after=0, eip7702_delegate=first
    )
    signature = sponsor_key.sign_hash(digest)
    pad = bytes(packed.paymaster_and_data[:52]) + bytes(12) + signature
    signed = packed.model_copy(update={"paymaster_and_data": pad})
    _, validation_data = paymaster.validatePaymasterUserOp.call(
        signed.as_tuple(), bytes(32), 0, sender=entry_point.address
    )
    assert validation_data == 1
    _delegate(chain, sender, first)
    _, validation_data = paymaster.validatePaymasterUserOp.call(
        signed.as_tuple(), bytes(32), 0, sender=entry_point.address
    )
    assert validation_data == 0


def test_the_sponsorship_hash_of_a_paymaster_and_data_too_short_for_its_gas_limits_is_refused(
    paymaster, chain
):
    """``sponsorshipHash`` covers the paymaster's two gas limits, in bytes 20..52 of paymasterAndData: a shorter one
    is refused with ``InvalidPaymasterDataLength(length, 129)``, naming what was given and what is needed, as the
    SDK refuses it. Fails with the length check removed (the slice past the end reverts without a reason)."""
    sender = LocalSigner.generate().address
    packed = _sponsored_op(sender, paymaster.address, b"")
    selector = keccak(b"InvalidPaymasterDataLength(uint256,uint256)")[:4]
    for length in (0, 20, 51):
        short = packed.model_copy(update={"paymaster_and_data": bytes(packed.paymaster_and_data[:length])})
        with pytest.raises(Exception) as refused:
            paymaster.sponsorshipHash(short.as_tuple(), 0, 0)
        expected = selector + length.to_bytes(32, "big") + (129).to_bytes(32, "big")
        assert (
            type(refused.value).__name__ == "InvalidPaymasterDataLength"
            or revert_bytes(refused.value) == expected
        ), repr(refused.value)
        if type(refused.value).__name__ == "InvalidPaymasterDataLength":
            assert (refused.value.inputs["length"], refused.value.inputs["expected"]) == (length, 129)
    exact = packed.model_copy(update={"paymaster_and_data": bytes(packed.paymaster_and_data[:52])})
    assert bytes(paymaster.sponsorshipHash(exact.as_tuple(), 0, 0)) == sponsorship_hash(
        exact, paymaster.address, int(chain.chain_id), valid_until=0, valid_after=0
    )


# ------------------------------------------------------------------------------------------------------
# KeyscopeAccountFactory
# ------------------------------------------------------------------------------------------------------


def test_an_accounts_address_commits_to_each_module_not_only_to_how_many(
    harness, module, factory, project, deployer, accounts, chain
):
    """The owner's predicted address is for its modules: here a validator installed with the owner's key as its init
    data. A front-runner who saw it creates an account with as many modules, the same validator installed with the
    front-runner's own key: it lands elsewhere, and the owner's address stays free for the owner's own creation.
    Another module address, type or order gives another address too. Fails with a salt that commits to the number
    of modules only (the front-runner's account then takes the owner's address, its validator run by the
    front-runner's key)."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    owner, front_runner = LocalSigner.generate(), LocalSigner.generate()
    mine = [(MODULE_TYPE_VALIDATOR, validator.address, bytes.fromhex(owner.address[2:]))]
    theirs = [(MODULE_TYPE_VALIDATOR, validator.address, bytes.fromhex(front_runner.address[2:]))]
    predicted = harness.counterfactual(owner.address, mine, salt=71)

    factory.createAccount(owner.address, theirs, 71, sender=accounts[7])
    created = harness.counterfactual(owner.address, theirs, salt=71)
    assert created != predicted and chain.provider.get_code(created)
    assert not chain.provider.get_code(predicted)
    assert harness.create(owner, mine, salt=71) == predicted
    assert to_address(validator.ownerOf(predicted)) == owner.address

    for modules in (
        [(MODULE_TYPE_VALIDATOR, module.address, bytes.fromhex(owner.address[2:]))],
        [(2, validator.address, bytes.fromhex(owner.address[2:]))],
    ):
        assert harness.counterfactual(owner.address, modules, salt=71) != predicted, modules
    both = [*mine, (MODULE_TYPE_VALIDATOR, module.address, b"")]
    assert harness.counterfactual(owner.address, both, salt=71) != harness.counterfactual(
        owner.address, both[::-1], salt=71
    )


def test_creating_an_existing_account_again_returns_it_unchanged(harness, factory, module, project, accounts):
    """The EntryPoint (in simulation) and anyone else may call ``createAccount`` for an account that exists: it
    answers the account's address, does not revert, emits nothing and initialises nothing again (a stranger naming
    itself owner in the same call changes nothing: that is another address). Fails with the existing-account check
    removed (the CREATE2 of a taken address reverts) or with the account initialised again."""
    owner = LocalSigner.generate()
    modules = [(MODULE_TYPE_VALIDATOR, module.address, b"")]
    account = harness.create(owner, modules, salt=72)
    stranger = accounts[7]
    assert to_address(factory.createAccount.call(owner.address, modules, 72, sender=stranger)) == account
    receipt = factory.createAccount(owner.address, modules, 72, sender=stranger)
    assert not list(receipt.events)
    contract = project.KeyscopeAccount.at(account)
    assert contract.signer() == owner.address
    assert contract.isModuleInstalled(MODULE_TYPE_VALIDATOR, module.address, b"")


# ------------------------------------------------------------------------------------------------------
# DeploylessSignatureCheck
# ------------------------------------------------------------------------------------------------------


def test_the_deployless_check_names_a_factory_without_code(factory, chain):
    """A grant request whose ``factory`` has no code (a mistyped address): the call of it succeeds with nothing, and
    the check says the factory call failed or has no code, rather than that a factory answered no address. Fails
    with the factory's code no longer checked."""
    owner = LocalSigner.generate()
    account = to_address(factory.getAddress(owner.address, [], 0))
    nowhere = LocalSigner.generate().address
    with pytest.raises(
        UnsupportedAccountError, match="reverted without a reason, or the factory has no code"
    ):
        ask_undeployed_account(
            Web3Chain(chain.provider.web3),
            account=account,
            factory=nowhere,
            factory_data=create_account_data(owner.address),
            digest=bytes(32),
            signature=b"",
        )


def test_the_deployless_check_refuses_a_factory_that_answers_the_address_without_creating_it(factory, chain):
    """A factory call that answers the account's address and leaves it without code (the factory's ``getAddress``
    as the factory data): an account without code answers every call with success and nothing, so asking it would
    read as an answer; the check refuses it, as the EntryPoint's AA15 does. Fails with the code check removed."""
    owner = LocalSigner.generate()
    account = to_address(factory.getAddress(owner.address, [], 0))
    with pytest.raises(UnsupportedAccountError, match="answers its address but leaves it without code"):
        ask_undeployed_account(
            Web3Chain(chain.provider.web3),
            account=account,
            factory=factory.address,
            factory_data=create_account_data(owner.address, view=True),
            digest=bytes(32),
            signature=owner.sign_hash(bytes(32)),
            reads=[keccak(b"signer()")[:4]],
        )
    assert not chain.provider.get_code(account)


def test_the_deployless_check_answers_nothing_for_a_read_that_reverted(factory, chain):
    """Each read's answer is its return data, and empty for a read that reverted: a reverting read's revert data
    (here ``AccountUnauthorized(checker)`` from ``execute``) is never handed back as if the account had answered
    it. Fails with the read's success not checked."""
    owner = LocalSigner.generate()
    account = to_address(factory.getAddress(owner.address, [], 0))
    execute = keccak(b"execute(bytes32,bytes)")[:4] + bytes(32) + (64).to_bytes(32, "big") + bytes(32)
    answer = ask_undeployed_account(
        Web3Chain(chain.provider.web3),
        account=account,
        factory=factory.address,
        factory_data=create_account_data(owner.address),
        digest=bytes(32),
        signature=b"",
        reads=[keccak(b"signer()")[:4], execute],
    )
    assert answer.reads == (bytes(12) + bytes.fromhex(owner.address[2:]), b"")
    assert not chain.provider.get_code(account)


def test_the_deployless_check_reads_an_answer_shorter_than_a_word_as_no_address(
    project, deployer, factory, chain
):
    """A factory call that answers fewer than 32 bytes answers no address (the EntryPoint reads a word): the check
    says so, and never takes the bytes, padded, for an account it created. Here the "factory" is a contract that
    returns 31 raw bytes. Fails with a 20-byte answer read as an address."""
    odd = project.OddModuleAnswers.deploy(sender=deployer)
    odd.answer(0, 0, odd.RETURN(), b"\x11" * 31, sender=deployer)
    owner = LocalSigner.generate()
    account = to_address(factory.getAddress(owner.address, [], 0))
    asked = keccak(b"isModuleEnabled(address)")[:4] + bytes(32)
    assert (
        bytes(chain.provider.web3.eth.call({"to": odd.address, "data": "0x" + asked.hex()})) == b"\x11" * 31
    )
    with pytest.raises(UnsupportedAccountError, match="answers no address") as refused:
        ask_undeployed_account(
            Web3Chain(chain.provider.web3),
            account=account,
            factory=odd.address,
            factory_data=asked,
            digest=bytes(32),
            signature=b"",
        )
    assert "11111111" not in str(refused.value)


def test_the_deployless_check_refuses_a_factory_call_that_answers_another_address(
    project, deployer, factory, chain
):
    """A factory call that creates the grant's account but answers another address (here a relay that calls the
    real factory and answers with its own ABI encoding, whose first word is 0x20): the EntryPoint would take the
    answer for the sender (AA14), so the check refuses it, naming both addresses, and asks nothing. Fails with the
    answer no longer compared with the account."""
    relay = project.ApprovesEverySignature.deploy(sender=deployer)
    owner = LocalSigner.generate()
    account = to_address(factory.getAddress(owner.address, [], 0))
    relayed = relay.relay.encode_input(factory.address, create_account_data(owner.address))
    answered = "0x" + "00" * 19 + "20"
    with pytest.raises(UnsupportedAccountError, match=f"creates the account {answered}, not {account}"):
        ask_undeployed_account(
            Web3Chain(chain.provider.web3),
            account=account,
            factory=relay.address,
            factory_data=relayed,
            digest=bytes(32),
            signature=b"",
        )


def test_the_deployless_check_asks_the_account_about_the_hash_it_is_given(factory, chain):
    """The account created for the check is asked ``isValidSignature`` about the hash given: the owner's ERC-7739
    signature of a message is valid for that message's hash and for no other. keyscope's SDK judges its own
    account's grant by its reads (its owner, its validators), so only an account kind that answers for itself
    relies on the answer; here keyscope's account answers an ERC-7739 signature, which it takes from any caller.
    Fails with the hash not passed on."""
    owner = LocalSigner.generate()
    account = to_address(factory.getAddress(owner.address, [], 0))
    message = b"deployless"
    signature = sign_message_as_account(owner, message, account=account, chain_id=int(chain.chain_id))
    answers = {}
    for digest in (eip191_hash(message), eip191_hash(b"another message")):
        answers[digest] = ask_undeployed_account(
            Web3Chain(chain.provider.web3),
            account=account,
            factory=factory.address,
            factory_data=create_account_data(owner.address),
            digest=digest,
            signature=signature,
        )
    assert [answer.answered for answer in answers.values()] == [True, True]
    assert [answer.magic for answer in answers.values()] == [
        bytes.fromhex("1626ba7e"),
        bytes.fromhex("ffffffff"),
    ]
    assert not chain.provider.get_code(account)
