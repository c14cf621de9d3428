"""Checks of keyscope's EIP-7702 delegate (``KeyscopeDelegate``) and its ERC-7579 account (``KeyscopeAccount``) that
no earlier test made on py-evm: each was written for a weakened check that the other fast tests let through
(docs/static-analysis.md, "Mutation testing"), and each fails without the check it names.

The delegate runs as a plain contract whose EntryPoint is a test account (``entry``; delegation itself needs a
Prague node): ``entry`` calls it as the EntryPoint would once the owner's signature validated. Storage other code
the EOA delegated to before could have written into the delegate's namespace (EIP-7702 never clears it) is written
here by that code's stand-in, ``StorageWrites``, run by the delegate's own delegatecall call type.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode

from conftest import ETHER, KIND
from keyscope import Web3Chain
from keyscope.accounts.delegate import DELEGATE_STORAGE_LOCATION, delegate_set_value_slot
from keyscope.errors import CallRevertedError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.signing import LocalSigner
from keyscope.userop import PackedUserOperation

VALIDATOR, EXECUTOR, FALLBACK = 1, 2, 3
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ZERO = "0x" + "00" * 20
# ERC-7579 modes: call type (byte 0), exec type (byte 1)
SINGLE, BATCH, DELEGATECALL = bytes(32), b"\x01" + bytes(31), b"\xff" + bytes(31)
SINGLE_TRY, BATCH_TRY = b"\x00\x01" + bytes(30), b"\x01\x01" + bytes(30)
# the delegate's namespace (docs/accounts.md): each set is its values array, then its positions mapping
VALIDATORS, EXECUTORS, FALLBACKS = (
    DELEGATE_STORAGE_LOCATION,
    DELEGATE_STORAGE_LOCATION + 2,
    DELEGATE_STORAGE_LOCATION + 4,
)
HANDLERS, SELECTORS = DELEGATE_STORAGE_LOCATION + 6, DELEGATE_STORAGE_LOCATION + 8
HANDLED = keccak(b"onTokenCallback(address,uint256)")[:4]
REFUSE = keccak(b"refuse()")[:4]  # EchoHandler reverts with the calldata it got


def selector_of(name: str) -> bytes:
    return keccak(name.encode())[:4]


def error_of(name: str) -> bytes:
    return keccak(name.encode())[:4]


def address_position(set_slot: int, module: str) -> int:
    """The slot of ``module``'s position in the address set at ``set_slot``."""
    return int.from_bytes(keccak(abi_encode(["address", "uint256"], [module, set_slot + 1])), "big")


def selector_position(selector: bytes) -> int:
    """The slot of ``selector``'s position in the selector set (its key is the selector left-aligned in a word)."""
    return int.from_bytes(
        keccak(abi_encode(["bytes32", "uint256"], [selector.ljust(32, b"\0"), SELECTORS + 1])), "big"
    )


def handler_slot(selector: bytes) -> int:
    """The slot of the ``fallbacks`` mapping's entry for ``selector``."""
    return int.from_bytes(
        keccak(abi_encode(["bytes32", "uint256"], [selector.ljust(32, b"\0"), FALLBACKS])), "big"
    )


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, bundler, harness):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


@pytest.fixture(scope="module")
def greedy(project, deployer):
    """Every module type, yes to every operation and signature, and it reports ``isInitialized`` for anyone."""
    return project.GreedyModule.deploy(sender=deployer)


@pytest.fixture(scope="module")
def echo(project, deployer):
    return project.EchoHandler.deploy(sender=deployer)


@pytest.fixture(scope="module")
def writes(project, deployer):
    return project.StorageWrites.deploy(sender=deployer)


class Delegate:
    """A fresh ``KeyscopeDelegate`` run by ``entry``, with eth_calls that give the revert data."""

    def __init__(self, project: Any, deployer: Any, accounts: Any, chain: Any) -> None:
        self.entry = accounts[6]
        self.stranger = accounts[8]
        self.contract = project.KeyscopeDelegate.deploy(self.entry.address, sender=deployer)
        self.address = self.contract.address
        self.node = Web3Chain(chain.provider.web3)

    def call(self, data: bytes, sender: Any = None) -> bytes:
        return self.node.call(self.address, data, sender=(sender or self.entry).address)

    def refusal(self, data: bytes, sender: Any = None) -> bytes:
        """The revert data of the call ``data``; fails the test if it does not revert."""
        with pytest.raises(CallRevertedError) as refused:
            self.call(data, sender)
        return refused.value.data

    def plant(self, writes: Any, words: dict[int, int]) -> None:
        """Write ``words`` (slot: value) into the delegate's storage, as other code the EOA delegated to could."""
        data = writes.write.encode_input(list(words), list(words.values()))
        self.contract.execute(DELEGATECALL, bytes.fromhex(writes.address[2:]) + data, sender=self.entry)


@pytest.fixture
def delegate(project, deployer, accounts, chain) -> Delegate:
    return Delegate(project, deployer, accounts, chain)


# -- the delegate's sets: a module is held only where its set lists it ------------------------------------------


def test_a_position_other_code_wrote_without_its_entry_holds_no_module(
    delegate, writes, greedy, project, deployer
):
    """Attack 307 on py-evm: other code wrote a stranger's position (1) into the executor set whose length is 0 (past
    the length), then, with a real executor listed at position 1, the same position again (below the length, naming
    another module's entry); and a second validator's position beside the listed one. The stranger's
    ``executeFromExecutor`` is refused (``ERC7579UninstalledModule``) and the ether stays; neither module reads as
    installed; an operation naming the planted validator goes to the owner's check (1) and a signature behind its
    address is not passed to it. Fails if a position past the length, or one whose entry holds another module, counts."""
    d = delegate
    stranger = d.stranger
    stranger.transfer(d.address, ETHER)
    take = d.contract.executeFromExecutor.encode_input(
        SINGLE, bytes.fromhex(stranger.address[2:]) + ETHER.to_bytes(32, "big")
    )
    uninstalled = error_of("ERC7579UninstalledModule(uint256,address)")

    d.plant(writes, {address_position(EXECUTORS, stranger.address): 1})
    assert d.refusal(take, sender=stranger)[:4] == uninstalled
    assert not d.contract.isModuleInstalled(EXECUTOR, stranger.address, b"")

    d.contract.installModule(EXECUTOR, greedy.address, b"", sender=d.entry)
    d.plant(writes, {address_position(EXECUTORS, stranger.address): 1})  # the entry at 1 holds greedy
    assert d.refusal(take, sender=stranger)[:4] == uninstalled
    assert not d.contract.isModuleInstalled(EXECUTOR, stranger.address, b"")
    assert d.contract.isModuleInstalled(EXECUTOR, greedy.address, b"")
    assert int(d.contract.balance) == ETHER

    planted = project.GreedyModule.deploy(sender=deployer)
    d.contract.installModule(VALIDATOR, greedy.address, b"", sender=d.entry)
    d.plant(writes, {address_position(VALIDATORS, planted.address): 1})
    assert not d.contract.isModuleInstalled(VALIDATOR, planted.address, b"")
    op = PackedUserOperation(sender=d.address, nonce=int(planted.address, 16) << 96, signature=b"\x01" * 65)
    verdict = d.call(d.contract.validateUserOp.encode_input(op.as_tuple(), bytes(32), 0))
    assert int.from_bytes(verdict, "big") == 1  # the owner's check, which no signature passes here
    digest = keccak(b"a permit naming no account")
    question = selector_of("isValidSignature(bytes32,bytes)") + abi_encode(
        ["bytes32", "bytes"], [digest, bytes.fromhex(planted.address[2:]) + b"anything"]
    )
    assert d.call(question, sender=stranger)[:4] != ERC1271_MAGIC


def test_a_handler_other_code_wrote_is_in_force_only_while_both_sets_list_it(delegate, writes, echo, greedy):
    """Attack 304 on py-evm: other code wrote ``echo`` as the handler of a selector and listed the selector, without
    listing the handler; then, with ``echo`` installed (listed) for another selector, wrote it as the handler of a
    third selector, unlisted. A call of either selector reverts ``MissingFallbackHandler`` and neither reads as
    installed; the selector ``echo`` was installed for answers. Fails if the handler set or the selector set is not
    asked."""
    d = delegate
    missing = error_of("MissingFallbackHandler(bytes4)")
    first, second = HANDLED, selector_of("tokensReceived(address,uint256)")
    d.plant(
        writes,
        {
            handler_slot(first): int(echo.address, 16),
            SELECTORS: 1,
            delegate_set_value_slot(SELECTORS, 0): int.from_bytes(first.ljust(32, b"\0"), "big"),
            selector_position(first): 1,
        },
    )
    assert d.refusal(first + bytes(64), sender=d.stranger)[:4] == missing
    assert not d.contract.isModuleInstalled(FALLBACK, echo.address, first)

    d.contract.installModule(FALLBACK, echo.address, REFUSE, sender=d.entry)  # echo listed now
    d.plant(writes, {handler_slot(second): int(echo.address, 16)})
    assert d.refusal(second + bytes(64), sender=d.stranger)[:4] == missing
    assert not d.contract.isModuleInstalled(FALLBACK, echo.address, second)
    assert d.refusal(REFUSE, sender=d.stranger) == REFUSE + bytes.fromhex(d.stranger.address[2:])


# -- installing and uninstalling ---------------------------------------------------------------------------------


def test_the_delegate_clears_a_module_it_does_not_hold_before_installing_it_and_only_then(
    delegate, greedy, echo
):
    """Re-delegation (docs/accounts.md): a module this code holds under no type that reports ``isInitialized`` for the
    EOA is uninstalled from its own point of view first (``ModuleStateCleared``, then ``ModuleInstalled``); held
    already (as a validator), it is installed as an executor and a fallback handler without being cleared, which would
    end the sessions it keeps as a validator; after ``resetModules`` it is held nowhere and cleared again. A module
    without ``isInitialized`` (``echo``) is not cleared. Fails if the clearing is skipped, or made whether or not the
    module is held."""
    d = delegate

    def events(module_type: int, module: Any, data: bytes = b"") -> list[str]:
        receipt = d.contract.installModule(module_type, module.address, data, sender=d.entry)
        return [log.event_name for log in receipt.events]

    assert events(VALIDATOR, greedy) == ["ModuleStateCleared", "ModuleInstalled"]
    assert events(EXECUTOR, greedy) == ["ModuleInstalled"]
    assert events(FALLBACK, greedy, HANDLED) == ["ModuleInstalled"]
    assert events(FALLBACK, echo, REFUSE) == ["ModuleInstalled"]
    d.contract.resetModules(sender=d.entry)
    assert events(EXECUTOR, greedy) == ["ModuleStateCleared", "ModuleInstalled"]


def test_the_delegates_fallback_handlers_install_once_per_selector_and_uninstall_only_where_installed(
    delegate, greedy, echo
):
    """A selector's handler is not replaced by installing another (``ERC7579AlreadyInstalledModule``, the first still
    answering); the zero address is no handler of a selector that has none, neither installed
    (``isModuleInstalled`` false) nor uninstallable (``ERC7579UninstalledModule``, not a call to the zero address);
    ``isModuleInstalled`` with a context shorter than a selector says false rather than reverting. Fails if the
    installed-already check, the zero-address check or the context's length check is dropped."""
    d = delegate
    d.contract.installModule(FALLBACK, echo.address, HANDLED, sender=d.entry)
    install = d.contract.installModule.encode_input(FALLBACK, greedy.address, HANDLED)
    assert d.refusal(install)[:4] == error_of("ERC7579AlreadyInstalledModule(uint256,address)")
    assert d.call(HANDLED + b"\x42", sender=d.stranger) == HANDLED + b"\x42" + bytes.fromhex(
        d.stranger.address[2:]
    )

    unhandled = selector_of("tokensReceived(address,uint256)")
    assert not d.contract.isModuleInstalled(FALLBACK, ZERO, unhandled)
    uninstall = d.contract.uninstallModule.encode_input(FALLBACK, ZERO, unhandled)
    assert d.refusal(uninstall)[:4] == error_of("ERC7579UninstalledModule(uint256,address)")
    assert d.contract.isModuleInstalled(FALLBACK, echo.address, HANDLED)
    assert not d.contract.isModuleInstalled(FALLBACK, echo.address, HANDLED[:3])


# -- validation and execution -----------------------------------------------------------------------------------


def test_only_the_owners_operation_on_the_delegate_carries_an_eip7702_init_call(delegate, greedy):
    """EntryPoint v0.8 calls the account with the data after the 20-byte EIP-7702 marker before validation; an
    operation an installed validator validates may carry the marker alone (the first operation after delegating)
    but no data after it (``InitCallNotForValidators``), while the owner's lane judges it by the signature. Fails if
    the check is dropped or moved by one byte."""
    d = delegate
    d.contract.installModule(VALIDATOR, greedy.address, b"", sender=d.entry)
    marker = bytes.fromhex("7702").ljust(20, b"\0")

    def verdict(nonce: int, init_code: bytes) -> bytes:
        op = PackedUserOperation(sender=d.address, nonce=nonce, init_code=init_code, signature=b"\x01" * 65)
        return d.call(d.contract.validateUserOp.encode_input(op.as_tuple(), bytes(32), 0))

    by_validator = int(greedy.address, 16) << 96
    assert int.from_bytes(verdict(by_validator, marker), "big") == 0
    with pytest.raises(CallRevertedError) as refused:
        verdict(by_validator, marker + b"init")
    assert refused.value.data == error_of("InitCallNotForValidators(address,uint256)") + abi_encode(
        ["address", "uint256"], [greedy.address, 4]
    )
    assert int.from_bytes(verdict(0, marker + b"init"), "big") == 1  # the owner's lane: its signature fails


def test_a_validator_that_gives_no_validation_data_makes_the_validation_revert(delegate, project, deployer):
    """``ValidatorCall.forward`` (both accounts hand operations to validators through it): a validator that reverts
    makes the account's ``validateUserOp`` revert with the validator's revert data (a custom error, or none); one that
    returns nothing makes it revert too, rather than read validation data from memory the call did not write.
    Fails if a revert or a short return is taken as an answer."""
    d = delegate
    faulty = project.FaultyValidator.deploy(sender=deployer)
    d.contract.installModule(VALIDATOR, faulty.address, b"", sender=d.entry)
    op_hash = keccak(b"an operation")
    refused = error_of("Refused(bytes32)") + op_hash
    for signature, revert_data in ((b"", refused), (b"\x01", b""), (b"\x01\x02", b"")):
        op = PackedUserOperation(sender=d.address, nonce=int(faulty.address, 16) << 96, signature=signature)
        validate = d.contract.validateUserOp.encode_input(op.as_tuple(), op_hash, 0)
        assert d.refusal(validate) == revert_data, signature


def test_a_validator_that_answers_the_session_target_question_with_no_bool_blocks_no_install(
    delegate, greedy, project, deployer
):
    """Installing a module asks every installed validator ``isTargetOfLiveSession(account, module)``; only a word
    holding 1 blocks (docs/accounts.md: validators that do not answer the view do not block). ``FaultyValidator``
    answers it with the word 2: the install goes through, the module is installed. Fails if any non-zero word is read
    as yes."""
    d = delegate
    faulty = project.FaultyValidator.deploy(sender=deployer)
    d.contract.installModule(VALIDATOR, faulty.address, b"", sender=d.entry)
    question = selector_of("isTargetOfLiveSession(address,address)") + abi_encode(
        ["address", "address"], [d.address, greedy.address]
    )
    assert d.node.call(faulty.address, question) == (2).to_bytes(32, "big")
    d.contract.installModule(EXECUTOR, greedy.address, b"", sender=d.entry)
    assert d.contract.isModuleInstalled(EXECUTOR, greedy.address, b"")


def test_the_delegate_runs_try_modes_without_reverting_on_a_failed_call(delegate, echo):
    """ERC-7579's exec type 0x01 (try): a failing call does not revert the execution, and the batch's next call
    runs. Fails if the exec type is not handed on (or not supported)."""
    d = delegate
    stranger = d.stranger
    for mode in (SINGLE_TRY, BATCH_TRY, b"\xff\x01" + bytes(30)):
        assert d.contract.supportsExecutionMode(mode)
    stranger.transfer(d.address, 2 * ETHER)
    failing = bytes.fromhex(echo.address[2:]) + bytes(32) + REFUSE
    d.contract.execute(SINGLE_TRY, failing, sender=d.entry)
    with pytest.raises(CallRevertedError):
        d.call(d.contract.execute.encode_input(SINGLE, failing))
    before = int(stranger.balance)
    batch = abi_encode(
        ["(address,uint256,bytes)[]"], [[(echo.address, 0, REFUSE), (stranger.address, ETHER, b"")]]
    )
    d.contract.execute(BATCH_TRY, batch, sender=d.entry)
    assert int(stranger.balance) == before + ETHER
    with pytest.raises(CallRevertedError):
        d.call(d.contract.execute.encode_input(BATCH, batch))


def test_the_delegates_fallback_hands_the_caller_on_and_a_handlers_revert_back(delegate, echo):
    """ERC-7579's fallback: the handler gets the call's data with the caller appended (ERC-2771), its answer is the
    delegate's, and its revert is the delegate's revert, with its data; a selector without a handler reverts
    ``MissingFallbackHandler(selector)``. Fails if the caller is not appended, a revert is returned as an answer, or a
    selector without a handler is answered."""
    d = delegate
    for selector in (HANDLED, REFUSE):
        d.contract.installModule(FALLBACK, echo.address, selector, sender=d.entry)
    sender = bytes.fromhex(d.stranger.address[2:])
    assert d.call(HANDLED + b"payload", sender=d.stranger) == HANDLED + b"payload" + sender
    assert d.refusal(REFUSE + b"why", sender=d.stranger) == REFUSE + b"why" + sender
    unhandled = selector_of("tokensReceived(address,uint256)")
    assert d.refusal(unhandled, sender=d.stranger) == error_of(
        "MissingFallbackHandler(bytes4)"
    ) + unhandled.ljust(32, b"\0")


def test_the_delegates_erc1271_answer_is_the_magic_value_or_0xffffffff(delegate, greedy, project, deployer):
    """A signature behind an installed validator's address is that validator's to judge: its magic value is the
    delegate's answer (``greedy``); any other word it gives (``AskingValidator`` says no with zero) falls through to
    the owner's check, whose refusal is ``0xffffffff``, the one other answer the delegate gives. Fails if the
    validator's answer is handed back whatever it is."""
    d = delegate
    says_zero = project.AskingValidator.deploy(sender=deployer)
    for validator in (greedy, says_zero):
        d.contract.installModule(VALIDATOR, validator.address, b"", sender=d.entry)
    digest = keccak(b"a permit naming no account")

    def answer(validator: Any) -> bytes:
        signature = bytes.fromhex(validator.address[2:]) + b"\x01" * 65
        question = selector_of("isValidSignature(bytes32,bytes)") + abi_encode(
            ["bytes32", "bytes"], [digest, signature]
        )
        return d.call(question, sender=d.stranger)

    assert answer(greedy)[:4] == ERC1271_MAGIC
    assert answer(says_zero) == bytes.fromhex("ffffffff").ljust(32, b"\0")


# -- KeyscopeAccount: whom the owner's bare signature is taken from ----------------------------------------------


def test_the_account_takes_its_owners_bare_signature_from_the_validator_it_validates_with_and_only_while_it_does(
    harness, project, deployer, nft, accounts
):
    """Attack 259: the account takes its owner's bare ECDSA signature of a hash only from the validator it is asking
    to validate one of its operations, while it does. ``asker`` is installed as a validator and has another deployment,
    ``relay`` (no module of the account), ask during its validation: the owner's bare signature of the operation's
    hash is refused to the relay (AA24, nothing minted) and taken from ``asker`` itself (the operation runs). Then an
    operation ``asker`` validated has ``asker`` ask about the owner's bare signature of a permit in its execution, in
    the same transaction: refused. Fails if the account takes the bare form from any caller while it validates, or
    still names the validator once its validation returned."""
    owner = LocalSigner.generate()
    asker = project.AskingValidator.deploy(sender=deployer)
    relay = project.AskingValidator.deploy(sender=deployer)
    account = harness.create(owner, [(VALIDATOR, asker.address, b"")], salt=331)
    minter = accounts[8]
    mint = encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(minter.address)))
    key = KIND.nonce_key(asker.address, 0)
    before = nft.balanceOf(minter.address)

    op = harness.op(account, mint, key=key)
    bare = owner.sign_hash(harness.hash(op))
    assert harness.rejected(op.replace(signature=bytes.fromhex(relay.address[2:]) + bare)).reason == "AA24"
    assert nft.balanceOf(minter.address) == before
    receipt = harness.submit(op.replace(signature=bytes.fromhex(asker.address[2:]) + bare))
    assert receipt.success, receipt.reason
    assert nft.balanceOf(minter.address) == before + 1

    digest = keccak(b"a permit naming no account")
    record = Call.of(asker.address, 0, asker.record.encode_input(account, digest, owner.sign_hash(digest)))
    receipt = harness.submit(harness.op(account, encode_execute(record), key=key))  # empty signature: valid
    assert receipt.success, receipt.reason
    assert bytes(asker.lastAnswer()) == bytes.fromhex("ffffffff")


def test_an_eth_call_from_the_zero_address_is_not_the_validator_being_asked(
    harness, project, deployer, chain
):
    """Outside validation no validator is being asked (the transient slot holds zero), and an ``eth_call`` made without
    a sender comes from the zero address on most nodes (off-chain verifiers ask so): the owner's bare ECDSA signature
    of a hash that names no account is refused to it, as to everyone; the owner's ERC-7739 signature is the account's
    (tests/test_owner_signatures.py). Fails if the account compares the caller with the slot without checking that
    the slot names a validator."""
    owner = LocalSigner.generate()
    account = harness.create(owner, salt=332)
    project.ForceFeed.deploy(
        ZERO, value=ETHER, sender=deployer
    )  # py-evm makes an eth_call's sender afford its gas
    digest = keccak(b"a permit naming no account")
    question = selector_of("isValidSignature(bytes32,bytes)") + abi_encode(
        ["bytes32", "bytes"], [digest, owner.sign_hash(digest)]
    )
    answer = Web3Chain(chain.provider.web3).call(account, question, sender=ZERO)
    assert answer[:4] == bytes.fromhex("ffffffff")


@pytest.mark.parametrize(("word", "calls"), [(0, [1]), (1, [2, 1]), (2, [2, 1]), (2**256 - 1, [2, 1])])
def test_a_module_answering_is_initialized_with_any_nonzero_word_is_uninstalled_first(
    delegate, project, deployer, word, calls
):
    """A module the delegate does not hold, asked ``isInitialized(this)`` before its install (re-delegation: it may
    hold state for this address from an earlier delegation), answers a word that is not a well-formed bool (a
    module's fallback answering every call, say): the install goes through, and the module's ``onUninstall`` runs
    first, as for ``true``, so it starts from a clean state; ``0`` installs it at once. Fails if a word above 1
    makes the install revert (the bool's decoding), or is taken as "not initialized"."""
    module = project.LooseInitializedModule.deploy(sender=deployer)
    module.setAnswer(word, sender=deployer)
    delegate.contract.installModule(EXECUTOR, module.address, b"", sender=delegate.entry)
    assert list(module.callsOf(delegate.address)) == calls
    assert delegate.contract.isModuleInstalled(EXECUTOR, module.address, b"")
