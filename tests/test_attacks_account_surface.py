"""keyscope's own account as a stranger or a fallback handler would use it: its own functions, its module changes and
its factory.

- A fallback handler the owner installs for a selector the account has a function for (``execute``,
  ``installModule``, ``executeFromExecutor``, ``validateUserOp``, ``isValidSignature``, ``onERC721Received``) is
  never called for it: the account's own function answers, as it answers anyone. The handler here is
  ``GreedyModule`` (contracts/test), which says yes to every question it has a function for and reverts on any
  other, so a call routed to it would read differently from the account's own answer; a selector the account has
  no function for does reach it (the control).
- The session module installed twice, or under a type it is not (executor, fallback handler), is refused, and a
  stranger's ``installModule`` and ``uninstallModule`` are refused: the module stays installed once, as a validator.
- The factory's ``createAccount`` for an account that exists returns it as it is: no second ``initialize``, no new
  owner, no module installed again, whoever calls.
"""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope import Web3Chain
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.signing import LocalSigner

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
VALIDATOR, EXECUTOR, FALLBACK = 1, 2, 3
# the account's own functions, each of which a handler is installed for below
OWN_SELECTORS = {
    name: keccak(name.encode())[:4]
    for name in (
        "execute(bytes32,bytes)",
        "installModule(uint256,address,bytes)",
        "executeFromExecutor(bytes32,bytes)",
        "validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)",
        "isValidSignature(bytes32,bytes)",
        "onERC721Received(address,address,uint256,bytes)",
    )
}
# a function of GreedyModule the account does not have: routed to the handler
NOT_OWN = keccak(b"isValidSignatureWithSender(address,bytes32,bytes)")[:4]


@pytest.fixture(scope="module", autouse=True)
def _session_contracts(entry_point, factory, module, nft, bundler):
    """Deploy the session-wide contracts before this module's own, as ape's chain isolation needs."""


@pytest.fixture(scope="module")
def greedy(project, deployer):
    return project.GreedyModule.deploy(sender=deployer)


def install_call(project: Any, account: str, module_type: int, module: str, init: bytes = b"") -> Call:
    data = project.KeyscopeAccount.at(account).installModule.encode_input(module_type, module, init)
    return Call.of(account, 0, data)


def raw_call(chain: Any, account: str, data: bytes, sender: str) -> tuple[bool, bytes]:
    """An ``eth_call`` of ``data`` to ``account`` from ``sender``: (whether it returned, what it returned)."""
    try:
        return True, Web3Chain(chain.provider.web3).call(account, data, sender=sender)
    except Exception:
        return False, b""


def test_a_fallback_handler_for_the_account_s_own_selectors_never_answers_for_it(
    harness, account, owner, project, greedy, chain, accounts
):
    contract = project.KeyscopeAccount.at(account)
    calls = [install_call(project, account, FALLBACK, greedy.address, s) for s in OWN_SELECTORS.values()]
    calls.append(install_call(project, account, FALLBACK, greedy.address, NOT_OWN))
    harness.owner_execute(account, owner, calls)
    for selector in [*OWN_SELECTORS.values(), NOT_OWN]:
        assert contract.isModuleInstalled(FALLBACK, greedy.address, selector)
    stranger = accounts[4]

    # the control: a selector the account has no function for reaches the handler, which says yes
    routed = NOT_OWN + abi_encode(["address", "bytes32", "bytes"], [stranger.address, b"\x11" * 32, b""])
    assert raw_call(chain, account, routed, stranger.address) == (True, ERC1271_MAGIC + b"\x00" * 28)

    # the account's own functions answer as the account: the handler (which has none of them) would revert
    with ape.reverts(contract.AccountUnauthorized):
        contract.execute(b"\x00" * 32, b"", sender=stranger)
    with ape.reverts(contract.AccountUnauthorized):
        contract.installModule(VALIDATOR, greedy.address, b"", sender=stranger)
    with ape.reverts(contract.ERC7579UninstalledModule):
        contract.executeFromExecutor(b"\x00" * 32, b"", sender=stranger)
    op = (account, 0, b"", b"", b"\x00" * 32, 0, b"\x00" * 32, b"", b"")
    with ape.reverts(contract.AccountUnauthorized):
        contract.validateUserOp(op, b"\x00" * 32, 0, sender=stranger)
    # ERC-1271: the account's own "no" to a signature the owner never made, not the handler's revert
    junk = OWN_SELECTORS["isValidSignature(bytes32,bytes)"] + abi_encode(
        ["bytes32", "bytes"], [b"\x22" * 32, b"\x01" * 65]
    )
    assert raw_call(chain, account, junk, stranger.address) == (
        True,
        bytes.fromhex("ffffffff") + b"\x00" * 28,
    )
    received = OWN_SELECTORS["onERC721Received(address,address,uint256,bytes)"]
    token_callback = received + abi_encode(
        ["address", "address", "uint256", "bytes"], [stranger.address, stranger.address, 1, b""]
    )
    assert raw_call(chain, account, token_callback, stranger.address) == (True, received + b"\x00" * 28)
    # and nothing the stranger tried installed anything
    assert not contract.isModuleInstalled(VALIDATOR, greedy.address, b"")
    assert not contract.isModuleInstalled(EXECUTOR, greedy.address, b"")


def test_the_session_module_is_installed_once_as_a_validator_and_by_the_owner_only(
    harness, owner, module, project, greedy, accounts
):
    account = harness.create(owner, [(VALIDATOR, module.address, b"")])
    contract = project.KeyscopeAccount.at(account)
    for attempt in (
        KIND.install_validator_call(account, module.address),
        install_call(project, account, EXECUTOR, module.address),
        install_call(project, account, FALLBACK, module.address, NOT_OWN),
    ):
        op = harness.op(account, encode_execute(attempt))
        receipt = harness.submit(harness.sign_owner(op, owner))
        assert not receipt.success, attempt
    stranger = accounts[4]
    with ape.reverts(contract.AccountUnauthorized):
        contract.installModule(EXECUTOR, greedy.address, b"", sender=stranger)
    with ape.reverts(contract.AccountUnauthorized):
        contract.uninstallModule(VALIDATOR, module.address, b"", sender=stranger)
    assert contract.isModuleInstalled(VALIDATOR, module.address, b"")
    assert not contract.isModuleInstalled(EXECUTOR, module.address, b"")
    assert not contract.isModuleInstalled(FALLBACK, module.address, NOT_OWN)
    assert not contract.isModuleInstalled(EXECUTOR, greedy.address, b"")
    assert module.isInitialized(account)


def test_creating_an_account_that_exists_returns_it_untouched(
    harness, owner, module, project, factory, accounts
):
    modules = [(VALIDATOR, module.address, b"")]
    account = harness.create(owner, modules, salt=3)
    contract = project.KeyscopeAccount.at(account)
    stranger = accounts[4]
    receipt = factory.createAccount(owner.address, modules, 3, sender=stranger)
    # nothing logged: no AccountCreated, no ModuleInstalled from a second initialisation
    assert receipt.logs == []
    assert contract.signer() == owner.address
    assert contract.isModuleInstalled(VALIDATOR, module.address, b"")
    # the same account for the same arguments; another owner's arguments name another address
    assert harness.counterfactual(owner.address, modules, 3) == account
    assert harness.counterfactual(LocalSigner.generate().address, modules, 3) != account
    with ape.reverts(contract.InvalidInitialization):
        contract.initialize(stranger.address, [], sender=stranger)
