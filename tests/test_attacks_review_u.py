"""The premises' window question asked of the session module's own code (attacks 425 onwards).

``owner.grant`` asks an ERC-7579 account keyscope has no adapter of its own for whether it hands the EntryPoint the
module's validation data as it is (attack 393). The module gives a known window only for a session enabled and
signed, so the window was asked of a stand-in's code at the module's address, which an account can tell by its code
hash (attack 419). With the module installed, the question now keeps the module's code and plants a session in its
storage for the ``eth_call`` (a state override of its storage), signed by a key only the question holds. Through a
real anvil and Alto, as the grant's questions are asked.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from web3 import Web3

from keyscope import Policy, SessionKey
from keyscope.accounts import premises
from keyscope.chain import RpcChain, Web3Chain
from keyscope.errors import AccountPremiseWarning, AccountSetupError
from keyscope.hexutil import keccak, to_address
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.counting_chain import CountingChain
from support.variant_accounts import stack_fixture  # noqa: F401 (stack_fixture: the stack)
from test_attacks_review_j import foreign_account


def _mint(stack: LocalStack) -> Policy:
    """A permission to mint the stack's demo NFT."""
    return Policy.call(stack.nft, "safeMint(address to)")


@pytest.mark.e2e
def test_an_account_dropping_the_window_unless_its_validator_s_code_hash_changed_is_refused_on_a_planted_session(
    stack: LocalStack,
) -> None:
    """Attack 425 (attack 419's limit, lifted where the module is installed). ``WindowSpottingERC7579Account``
    drops its validators' window (as attack 393's account does) unless the validator's code hash differs from the
    one it had at the install, so the probe's code found the window kept. The module's own code, a session planted
    in its storage, finds it dropped: the grant is refused before the owner signs, naming the window the account
    answered and the planted one. The install itself is asked before the module is there, through the owner's
    validator's stand-in, and goes through (the residual). Fails without the planted session: the grant is signed
    without a word."""
    _, _, _, owner = foreign_account(stack, "WindowSpottingERC7579Account")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccountPremiseWarning)
        installed = owner.install_sessions()
        assert installed is not None
        installed.wait()
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600)
    said = str(refused.value)
    assert "a session planted in its storage" in said and "running its own code" in said, said
    assert "validAfter 0 and validUntil 0 (no end)" in said, said
    assert stack.module in said and "Nothing was signed" in said, said


@pytest.mark.e2e
def test_the_window_of_an_installed_module_is_asked_of_its_own_code_and_a_correct_account_is_granted(
    stack: LocalStack,
) -> None:
    """Attack 425, the control. OpenZeppelin's ``AccountERC7579`` as it comes hands on the planted session's
    window: the grant goes through without a word, and the window question was an ``eth_call`` overriding the
    module's storage only (its code kept), not the stand-in's; the refusal question still gives the module's
    address the probe's code. Nothing of the planted session is left on the chain."""
    _, _, net, owner = foreign_account(stack, "PlainERC7579Account")
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    counting = CountingChain(net.chain)
    net.chain = counting
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccountPremiseWarning)
        grant = owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600)
    assert grant.owner_signature
    module = to_address(stack.module)
    planted = [
        options["storage"]
        for name, options in counting.options
        if name == "call_with_code" and options.get("storage")
    ]
    assert planted and all(set(storage) == {module} for storage in planted), planted
    assert len(planted[0][module]) == 5  # header, meta, grant, live list entry, the account's counts
    for slot, word in planted[0][module].items():
        held = int(stack.node.request("eth_getStorageAt", [module, hex(slot), "latest"]), 16)
        assert held != word  # the override's words, for the call only


def test_the_planted_session_s_base_slots_are_the_documented_ones() -> None:
    """The question plants its session at the module's base slots as docs/session-module.md gives them (which
    ``tests/test_contract_sizes.py`` holds to the compiler's layout): a planted word at another slot would leave the
    module's code finding no session, and every account a warning."""
    section = (
        (Path(__file__).parent.parent / "docs/session-module.md")
        .read_text()
        .split("## Storage layout", 1)[1]
        .split("\n## ", 1)[0]
    )
    documented = {
        name: int(base) for name, base in re.findall(r"^\| `(_\w+)\[[^|]*\| (\d+) \|", section, re.M)
    }
    assert documented["_accounts"] == premises._ACCOUNTS_BASE
    assert documented["_permissions"] == premises._PERMISSIONS_BASE
    assert documented["_sessions"] == premises._SESSIONS_BASE
    assert documented["_liveSessions"] == premises._LIVE_SESSIONS_BASE


@pytest.mark.e2e
@pytest.mark.parametrize("client", ["rpc", "web3"])
def test_both_chains_send_a_storage_override_the_node_applies(stack: LocalStack, client: str) -> None:
    """The planted session rests on the node applying the ``stateDiff`` keyscope sends: through :class:`RpcChain`
    and :class:`Web3Chain` alike, the module's own ``epochOf(account)`` reads the epoch planted in the account's
    state word for the call, while the chain's word is left as it was."""
    account = LocalSigner.generate().address
    slot = int.from_bytes(keccak(bytes(12) + bytes.fromhex(account[2:]) + (2).to_bytes(32, "big")), "big")
    chain: RpcChain | Web3Chain = (
        RpcChain(stack.rpc_url) if client == "rpc" else Web3Chain(Web3(Web3.HTTPProvider(stack.rpc_url)))
    )
    question = keccak(b"epochOf(address)")[:4] + abi_encode(["address"], [account])
    planted = chain.call_with_code(stack.module, question, {}, storage={stack.module: {slot: 0x5EC0_0E0C}})
    assert int.from_bytes(planted[:32], "big") == 0x5EC0_0E0C
    assert int.from_bytes(chain.call(stack.module, question)[:32], "big") == 0
    if isinstance(chain, RpcChain):
        chain.close()
