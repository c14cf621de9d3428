"""A module the account holds under another type than validator, used as one: keyscope's account and its EIP-7702
delegate choose the validator of an operation by the nonce key's top 20 bytes and the validator of an ERC-1271
signature by its first 20 bytes, and the account takes the owner's bare ECDSA signature only from the validator it
is asking to validate one of its operations (attack 259).
Each of those asks whether the module is installed *as a validator*: a module installed as an executor or a
fallback handler (an automation executor, a token-callback handler) is no validator, however it would answer.

The module here is ``GreedyModule`` (contracts/test), every module type, saying yes to every operation and every
signature: once held as a validator it hands the account to anyone, which each test shows on an account that holds
it as one (so that each refusal is the type check's, not the module's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from conftest import ETHER, KIND
from keyscope import Web3Chain
from keyscope.accounts.delegate import DELEGATE_FALLBACK_HANDLERS_SLOT
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
IS_VALID_SIGNATURE = keccak(b"isValidSignature(bytes32,bytes)")[:4]
# the selector the module handles as a fallback handler: any selector the account has no function for
HANDLED = keccak(b"onTokenCallback(address,uint256)")[:4]
VALIDATOR, EXECUTOR, FALLBACK, HOOK = 1, 2, 3, 4


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, bundler):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


@pytest.fixture(scope="module")
def greedy(project, deployer):
    contract = project.GreedyModule.deploy(sender=deployer)
    # it asks the account's isValidSignature as an eth_call's sender below: py-evm makes that sender afford its gas
    project.ForceFeed.deploy(contract.address, value=ETHER, sender=deployer)
    return contract


def answer(chain: Any, account: str, digest: bytes, signature: bytes, sender: str | None = None) -> bytes:
    """The account's ``isValidSignature`` answer, asked by ``sender`` (None: the node's default sender)."""
    data = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    return Web3Chain(chain.provider.web3).call(account, data, sender=sender)[:4]


def install(
    harness: Any, project: Any, account: str, owner: LocalSigner, module_type: int, module: str
) -> None:
    init = HANDLED if module_type == FALLBACK else b""
    data = project.KeyscopeAccount.at(account).installModule.encode_input(module_type, module, init)
    harness.owner_execute(account, owner, Call.of(account, 0, data))


def test_a_module_the_account_holds_as_another_type_neither_validates_nor_signs_for_it(
    harness, module, greedy, nft, project, accounts, chain
):
    """The owner installs a module as an executor and as a fallback handler (never as a validator). Before and
    after that install, a stranger names it in an operation's nonce key, with their own signature or none, to mint
    to themself; offers it an ERC-1271 question behind its address; and has it ask the account about the owner's
    bare signature of a digest (which the account takes only from the validator it asks to validate one of its
    operations, while it does: the session module checking a grant in ENABLE mode, attack 259). The account asks it
    none of them: AA24 and nothing minted, ``0xffffffff`` twice. The same module held as a validator by another
    account of the owner gets the first two through; the bare signature it asks about outside an operation's
    validation is refused there too, as it is to the session module itself."""
    owner = LocalSigner.generate()
    held_otherwise = harness.create(owner, [(VALIDATOR, module.address, b"")], salt=41)
    held_as_validator = harness.create(owner, [(VALIDATOR, module.address, b"")], salt=42)
    install(harness, project, held_as_validator, owner, VALIDATOR, greedy.address)
    stranger = accounts[8]
    mint = encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(stranger.address)))
    before = nft.balanceOf(stranger.address)
    key = KIND.nonce_key(greedy.address, 0)
    digest = keccak(b"a permit naming no account")
    behind = bytes.fromhex(greedy.address[2:]) + b"anything"
    bare = owner.sign_hash(digest)

    def refused() -> None:
        op = harness.op(held_otherwise, mint, key=key)
        for signature in (b"", LocalSigner.generate().sign_hash(harness.hash(op))):
            assert harness.rejected(op.replace(signature=signature)).reason == "AA24"
        assert nft.balanceOf(stranger.address) == before
        assert harness.nonce(held_otherwise, key) % 2**64 == 0  # its lane never used
        assert answer(chain, held_otherwise, digest, behind, sender=stranger.address) != ERC1271_MAGIC
        assert answer(chain, held_otherwise, digest, bare, sender=greedy.address) != ERC1271_MAGIC
        # not even the installed session module, outside an operation's validation (attack 259)
        assert answer(chain, held_otherwise, digest, bare, sender=module.address) != ERC1271_MAGIC

    refused()  # not installed at all
    install(harness, project, held_otherwise, owner, EXECUTOR, greedy.address)
    install(harness, project, held_otherwise, owner, FALLBACK, greedy.address)
    state = project.KeyscopeAccount.at(held_otherwise)
    assert state.isModuleInstalled(EXECUTOR, greedy.address, b"")
    assert state.isModuleInstalled(FALLBACK, greedy.address, HANDLED)
    assert not state.isModuleInstalled(VALIDATOR, greedy.address, b"")
    refused()  # held as an executor and a fallback handler

    # held as a validator, the module validates the stranger's operation and answers the question behind it
    op = harness.op(held_as_validator, mint, key=key)
    receipt = harness.submit(op.replace(signature=LocalSigner.generate().sign_hash(harness.hash(op))))
    assert receipt.success, receipt.reason
    assert nft.balanceOf(stranger.address) == before + 1
    assert answer(chain, held_as_validator, digest, behind, sender=stranger.address) == ERC1271_MAGIC
    assert answer(chain, held_as_validator, digest, bare, sender=greedy.address) != ERC1271_MAGIC


def test_a_module_the_delegate_holds_as_another_type_neither_validates_nor_signs_for_it(
    project, deployer, accounts, module, greedy, nft, chain
):
    """The same on ``KeyscopeDelegate``, run as a plain contract whose EntryPoint is a test account (delegation needs
    a Prague node), so that its owner is its own address, which no key has: the module not installed, then held as an
    executor and a fallback handler. The EntryPoint's ``validateUserOp`` of an operation naming it in the nonce key says the
    signature failed (1), and its ERC-1271 refuses a signature behind its address; a delegate holding it as a
    validator answers 0 and the magic value."""
    entry = accounts[6]
    stranger = accounts[8]
    held_otherwise = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    held_as_validator = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    for delegate in (held_otherwise, held_as_validator):
        delegate.installModule(VALIDATOR, module.address, b"", sender=entry)
    held_as_validator.installModule(VALIDATOR, greedy.address, b"", sender=entry)
    mint = encode_execute(Call.of(nft.address, 0, nft.safeMint.encode_input(stranger.address)))
    digest = keccak(b"a permit naming no account")
    behind = bytes.fromhex(greedy.address[2:]) + b"anything"

    def verdict(delegate: Any) -> tuple[int, bytes]:
        """``validateUserOp``'s answer to the stranger's operation, and the answer to the signature behind it."""
        op = UserOperation(
            sender=delegate.address,
            nonce=KIND.nonce_key(greedy.address, 0) << 64,
            call_data=mint,
            call_gas_limit=500_000,
            verification_gas_limit=500_000,
            pre_verification_gas=60_000,
            max_fee_per_gas=2 * 10**9,
            max_priority_fee_per_gas=10**9,
        )
        op_hash = user_op_hash_v07(op.pack(), entry.address, int(chain.chain_id))
        packed = op.replace(signature=LocalSigner.generate().sign_hash(op_hash)).pack().as_tuple()
        validation = delegate.validateUserOp.call(packed, op_hash, 0, sender=entry)
        return int(validation), answer(chain, delegate.address, digest, behind, sender=stranger.address)

    refused = (1, bytes.fromhex("ffffffff"))
    assert verdict(held_otherwise) == refused  # not installed at all
    held_otherwise.installModule(EXECUTOR, greedy.address, b"", sender=entry)
    held_otherwise.installModule(FALLBACK, greedy.address, HANDLED, sender=entry)
    assert held_otherwise.isModuleInstalled(FALLBACK, greedy.address, HANDLED)
    assert not held_otherwise.isModuleInstalled(VALIDATOR, greedy.address, b"")
    assert verdict(held_otherwise) == refused  # held as an executor and a fallback handler
    assert verdict(held_as_validator) == (0, ERC1271_MAGIC)


FIRST_HANDLED = keccak(b"isValidSignatureWithSender(address,bytes32,bytes)")[:4]
SECOND_HANDLED = keccak(b"preCheck(address,uint256,bytes)")[:4]


def _delegate_with_two_handled_selectors(
    project: Any, deployer: Any, accounts: Any, greedy: Any, chain: Any
) -> tuple[Any, Any, Callable[[bytes], bytes], Callable[[], list[tuple[bool, bool]]]]:
    """A fresh ``KeyscopeDelegate`` (its EntryPoint an ordinary account, ``entry``), two selectors ``greedy`` can
    handle (:data:`FIRST_HANDLED`, :data:`SECOND_HANDLED`), ``ask(selector)`` (the delegate's answer to a call of
    it), and ``state()``: for each selector, whether a call to the delegate is answered (else it reverts
    ``MissingFallbackHandler``) and whether the delegate says ``greedy`` is installed as its handler."""
    from keyscope.errors import CallRevertedError

    entry = accounts[6]
    delegate = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    node = Web3Chain(chain.provider.web3)
    calls = {
        FIRST_HANDLED: FIRST_HANDLED
        + abi_encode(["address", "bytes32", "bytes"], [deployer.address, bytes(32), b""]),
        SECOND_HANDLED: SECOND_HANDLED
        + abi_encode(["address", "uint256", "bytes"], [deployer.address, 0, b""]),
    }

    def answered(selector: bytes) -> bool:
        try:
            ask(selector)
        except CallRevertedError as refused:
            assert refused.data[:4] == keccak(b"MissingFallbackHandler(bytes4)")[:4], refused.data
            return False
        return True

    def state() -> list[tuple[bool, bool]]:
        return [
            (answered(s), bool(delegate.isModuleInstalled(FALLBACK, greedy.address, s)))
            for s in (FIRST_HANDLED, SECOND_HANDLED)
        ]

    def ask(selector: bytes) -> bytes:
        return node.call(delegate.address, calls[selector])

    return entry, delegate, ask, state


def test_the_delegate_calls_a_fallback_handler_while_it_is_installed_and_only_then(
    project, deployer, accounts, greedy, chain
):
    """The delegate's handler set (attack 304: a handler other code wrote into the selector mapping alone is in force
    nowhere) keeps ERC-7579's fallback lifecycle: a handler installed for two selectors answers both and is listed
    as installed for each; uninstalled for one, it answers the other only; uninstalled for both, neither
    (``MissingFallbackHandler``), and it can be installed again."""
    entry, delegate, ask, state = _delegate_with_two_handled_selectors(
        project, deployer, accounts, greedy, chain
    )
    first, second = FIRST_HANDLED, SECOND_HANDLED

    assert state() == [(False, False), (False, False)]
    for selector in (first, second):
        delegate.installModule(FALLBACK, greedy.address, selector, sender=entry)
    assert ask(first)[:4] == ERC1271_MAGIC
    assert state() == [(True, True), (True, True)]
    delegate.uninstallModule(FALLBACK, greedy.address, first, sender=entry)
    assert state() == [(False, False), (True, True)]
    delegate.uninstallModule(FALLBACK, greedy.address, second, sender=entry)
    assert state() == [(False, False), (False, False)]
    delegate.installModule(FALLBACK, greedy.address, second, sender=entry)
    assert state() == [(False, False), (True, True)]


def test_the_delegates_reset_forgets_every_module_and_only_the_owner_may_call_it(
    project, deployer, accounts, greedy, chain
):
    """``resetModules`` (attack 308: the first call of the operation carrying the EOA's authorization) empties the
    three sets without calling a module: nothing is installed after it, a selector's handler routes nothing, a module
    installs again (the position the reset left behind is no installation). Only the EntryPoint and the account
    itself may call it: a stranger's call, which would uninstall the owner's session module, reverts."""
    import ape

    from keyscope.errors import CallRevertedError

    entry = accounts[6]
    delegate = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    node = Web3Chain(chain.provider.web3)
    handled = keccak(b"isValidSignatureWithSender(address,bytes32,bytes)")[:4]
    query = handled + abi_encode(["address", "bytes32", "bytes"], [deployer.address, bytes(32), b""])
    delegate.installModule(VALIDATOR, greedy.address, b"", sender=entry)
    delegate.installModule(EXECUTOR, greedy.address, b"", sender=entry)
    delegate.installModule(FALLBACK, greedy.address, handled, sender=entry)
    assert node.call(delegate.address, query)[:4] == ERC1271_MAGIC

    def held() -> list[bool]:
        return [
            bool(delegate.isModuleInstalled(kind, greedy.address, handled))
            for kind in (VALIDATOR, EXECUTOR, FALLBACK)
        ]

    assert held() == [True, True, True]
    for stranger in (deployer, accounts[7]):
        with ape.reverts():
            delegate.resetModules(sender=stranger)
    assert held() == [True, True, True]
    receipt = delegate.resetModules(sender=entry)
    assert [log.event_name for log in receipt.events] == ["ModulesReset"]  # no module was called
    assert held() == [False, False, False]
    with pytest.raises(CallRevertedError) as refused:
        node.call(delegate.address, query)
    assert refused.value.data[:4] == keccak(b"MissingFallbackHandler(bytes4)")[:4], refused.value.data
    delegate.installModule(EXECUTOR, greedy.address, b"", sender=entry)
    delegate.installModule(FALLBACK, greedy.address, handled, sender=entry)
    assert held() == [False, True, True]
    assert node.call(delegate.address, query)[:4] == ERC1271_MAGIC


def test_the_delegates_reset_forgets_a_handlers_selectors_when_it_is_installed_again(
    project, deployer, accounts, greedy, chain
):
    """Attack 309: ``resetModules`` empties the handler set, but the selector mapping and each handler's selector
    count (which cannot be listed or emptied in constant gas) stay. A handler in force for one selector before the
    reset, installed again after it for another selector only, must answer that one alone: the selector it held
    before the reset (which other code the EOA delegated to may have written too, for any handler the owner may
    install later) must not come back into force, and uninstalling the handler's only selector must leave it
    installed nowhere and unlisted (the SDK refuses to delegate back over a listed handler). Fails if the reset's
    leftovers are read as installed."""
    entry, delegate, _ask, state = _delegate_with_two_handled_selectors(
        project, deployer, accounts, greedy, chain
    )
    first, second = FIRST_HANDLED, SECOND_HANDLED

    delegate.installModule(FALLBACK, greedy.address, first, sender=entry)
    assert state() == [(True, True), (False, False)]
    delegate.resetModules(sender=entry)
    assert state() == [(False, False), (False, False)]
    delegate.installModule(FALLBACK, greedy.address, second, sender=entry)
    assert state() == [(False, False), (True, True)]  # the selector held before the reset stays forgotten
    delegate.uninstallModule(FALLBACK, greedy.address, second, sender=entry)
    assert state() == [(False, False), (False, False)]
    handlers = DELEGATE_FALLBACK_HANDLERS_SLOT
    listed = chain.provider.web3.eth.get_storage_at(delegate.address, handlers)
    assert int.from_bytes(listed, "big") == 0  # nothing left listed


def test_neither_the_account_nor_the_delegate_takes_a_hook(harness, project, deployer, accounts):
    """No session operation runs through a hook on keyscope's account or its delegate, so none can see a call other
    than the one the module judged, or reach a hook's configuration: neither supports module type 4, and each
    refuses to install one (the owner's operation reverts in its call; the delegate reverts), the hook told nothing."""
    hook = project.RecordingHook.deploy(sender=deployer)
    owner = LocalSigner.generate()
    account = harness.create(owner, [], salt=43)
    state = project.KeyscopeAccount.at(account)
    assert not state.supportsModule(HOOK)
    data = state.installModule.encode_input(HOOK, hook.address, b"config")
    receipt = harness.submit(
        harness.sign_owner(harness.op(account, encode_execute(Call.of(account, 0, data))), owner)
    )
    assert not receipt.success
    assert not state.isModuleInstalled(HOOK, hook.address, b"")
    assert not hook.isInitialized(account) and hook.checks(account) == 0

    entry = accounts[6]
    delegate = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    assert not delegate.supportsModule(HOOK)
    with pytest.raises(Exception):  # noqa: B017 (the delegate's own custom error, whichever it names)
        delegate.installModule(HOOK, hook.address, b"config", sender=entry)
    assert not delegate.isModuleInstalled(HOOK, hook.address, b"")
    assert not hook.isInitialized(delegate.address)
