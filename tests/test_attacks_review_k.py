"""A dapp as the attacker: it writes the request the owner signs, it may deploy the targets, it holds the key.

Attack 363, a fixed-point argument's bound shown as its raw word: an ABI's ``fixedMxN`` / ``ufixedMxN`` argument (a
Vyper ``decimal`` is ``fixed168x10``) is encoded as the integer ``value * 10**N``; the module compares that word, and
a rule on it is typed as the integer (``int168``, ``uint128``...), the only type the SDK takes for it. The consent
page showed the rule's values as those integers, so a dapp's ERC-7715 ``contract-call`` naming ``sell(uint256 amount,
fixed168x10 minPrice)`` with the rule ``minPrice >= 2000`` (the word 2000) read "minPrice (fixed168x10) must be at least
2,000" while the target reads the least price it accepts as 0.0000002: a bound ten billion times lower than the one
the owner read, which the leaked key (the dapp's own) then sells the account's tokens at.

Attack 364, an ERC-721 approval read as an ERC-20 allowance: ERC-721's ``approve(address to, uint256 tokenId)`` and
``transferFrom(address from, address to, uint256 tokenId)`` have ERC-20's selectors, and the page knew them by
selector as ERC-20's: a dapp's request for ``approve(spender == its escrow, amount <= 100)`` on an NFT collection the
account holds read "approve(address spender, uint256 amount): spender must be the escrow; amount at most 100" with no
danger (a bounded allowance to a listed spender), while on the collection each call approves the escrow for one more
token, any whose id is at most 100: the key approves every such token of the account, and the escrow takes them all.

Attack 365, an ERC-4626 vault's arguments renamed: argument names are not part of the selector, and the page shows a
function it does not know by selector with the request's names. A dapp's request for a vault's ``withdraw(uint256
assets, address owner, address receiver)`` (the standard's ``withdraw(assets, receiver, owner)`` with its two
addresses' names swapped) and the rule ``receiver == this account`` read "receiver (address) must be ... (this
account)" while the rule holds the standard's ``owner`` (which is the account anyway), and the key withdraws the
account's assets to the dapp (attack 136's renaming, on a standard the page's table did not know).

Attack 366, the same renaming on ERC-1155's transfers: a request for ``safeTransferFrom(address to, address from,
uint256 id, uint256 value, bytes data)`` (the standard's ``from`` and ``to`` names swapped) with ``to == this account``
read "to (address) must be ... (this account)" while the rule holds ``from``, and the key sends the account's tokens
of every id to the dapp; ``safeBatchTransferFrom`` the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, arg
from keyscope.checker import PolicyChecker
from keyscope.consent import GrantDescription
from keyscope.erc7715 import plan_from_requests
from keyscope.execution import Call
from keyscope.hexutil import keccak, to_address
from keyscope.report import describe_permission
from keyscope.session import ArgType, Condition, Permission, Rule, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
from test_attacks import words as abi_words

SELL = "sell(uint256 amount,fixed168x10 minPrice)"
SELL_SELECTOR = keccak(b"sell(uint256,fixed168x10)")[:4]
MIN_PRICE_WORD = 2000
"""The rule's word: the price 0.0000002 as a ``fixed168x10`` (2000 / 10**10), which the page read as 2,000."""


def _sell_request(chain_id: int, target: str) -> dict[str, Any]:
    """The dapp's ERC-7715 request: ``sell`` on its target, the least price held by a rule given by offset and the
    type the SDK says to write for a fixed-point argument (its word's integer)."""
    return {
        "chainId": hex(chain_id),
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
        "permission": {
            "type": "contract-call",
            "data": {
                "address": target,
                "function": SELL,
                "rules": [
                    {"offset": 32, "type": "int168", "name": "minPrice", "op": ">=", "value": MIN_PRICE_WORD}
                ],
            },
        },
        "policies": [],
    }


def _min_price_rule() -> Rule:
    return Rule(
        condition=Condition.GREATER_THAN_OR_EQUAL,
        offset=32,
        arg_type=ArgType.int_of(168),
        values=(MIN_PRICE_WORD,),
        name="minPrice",
    )


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


def test_a_fixed_point_bound_is_shown_as_the_value_the_target_reads(
    net: Any, words: Callable[..., GrantDescription]
) -> None:
    """What the owner reads of the dapp's request: the bound on ``minPrice`` as the fixed-point value its word holds
    (0.0000002), never as the word's integer alone ("at least 2,000"), which a reader takes for the price."""
    plan = plan_from_requests([_sell_request(net.chain_id, "0x" + "5e" * 20)])
    session = plan.session(max_gas_cost=10**16, salt=1)
    (permission,) = session.permissions
    assert permission.rules == (_min_price_rule(),)  # what the owner signs: the word 2000
    described = words(permission)
    (line,) = described.permissions[0].rules
    assert line.startswith("minPrice (fixed168x10) ")
    assert "0.0000002" in line, line
    assert "at least 2,000" not in line, line


def test_the_status_report_shows_a_fixed_point_bound_as_the_value_the_target_reads(net: Any) -> None:
    """The same grant in the session report (``owner.sessions()``, ``keyscope sessions``): the owner checking a live
    session reads the least price as 0.0000002, with the word, never "at least 2000"."""
    plan = plan_from_requests([_sell_request(net.chain_id, "0x" + "5e" * 20)])
    (permission,) = plan.session(max_gas_cost=10**16, salt=1).permissions
    text = describe_permission(permission)
    assert "minPrice must be at least 0.0000002 (the word 2000)" in text, text
    negative = permission.model_copy(
        update={"rules": (_min_price_rule().model_copy(update={"values": (2**256 - 15 * 10**9,)}),)}
    )
    assert "at least -1.5 (the word -15000000000)" in describe_permission(negative)


def test_the_page_scales_every_fixed_point_rule_by_its_own_decimals(
    words: Callable[..., GrantDescription],
) -> None:
    """A range on a ``ufixed128x18``, a negative bound on a ``fixed64x2`` and a list of ``ufixed32x1`` values: each
    value shown at its type's decimals, with the word the module compares."""
    function = "quote(ufixed128x18 rate,fixed64x2 loss,ufixed32x1 tier)"
    rules = (
        Rule(
            condition=Condition.IN_RANGE,
            offset=0,
            arg_type=ArgType.uint_of(128),
            values=(5 * 10**17, 3 * 10**18),
        ),
        Rule(
            condition=Condition.GREATER_THAN_OR_EQUAL,
            offset=32,
            arg_type=ArgType.int_of(64),
            values=(2**256 - 150,),
        ),
        Rule(condition=Condition.ONE_OF, offset=64, arg_type=ArgType.uint_of(32), values=(15, 20)),
    )
    described = words(
        Permission(
            target="0x" + "5e" * 20,
            selector=keccak(b"quote(ufixed128x18,fixed64x2,ufixed32x1)")[:4],
            function=function,
            rules=rules,
        )
    )
    rate, loss, tier = described.permissions[0].rules
    assert "0.5" in rate and "3 " in rate + " " and "500,000,000,000,000,000" in rate, rate
    assert "-1.5" in loss and "-150" in loss, loss
    assert "1.5" in tier and "2 " in tier + " ", tier
    assert not [w for w in described.warnings if w.level == "danger"], described.warnings


def test_the_chain_lets_the_key_sell_at_the_word_s_price(
    sessions: Any,
    project: Any,
    chain: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the signed grant lets the dapp's key do on chain: ``sell`` with ``minPrice`` the word 2000, the price
    0.0000002 as the target reads a ``fixed168x10`` (a recorder stands for the target: it logs the calldata it got)."""
    recorder = project.EffectRecorder.deploy(sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(
            Permission(target=recorder.address, selector=SELL_SELECTOR, rules=(_min_price_rule(),)),
        ),
    )
    sessions.grant_onchain(module_account, owner, session)
    data = SELL_SELECTOR + abi_words(10**24, MIN_PRICE_WORD)
    calls = [Call.of(recorder.address, 0, data)]
    PolicyChecker(session, module_account, sessions.module.address).check_calls(calls, now=0)
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    (seen,) = list(recorder.Seen.range(0, chain.blocks.head.number + 1))
    assert bytes(seen.data) == data  # minPrice's word 2000: a price of 2000 / 10**10


def _nft_approval(nft: str, spender: str) -> Permission:
    """The dapp's request, written with ERC-20's ABI: ``approve`` of its escrow, "at most 100"."""
    return Policy.call(
        nft,
        "approve(address spender,uint256 amount)",
        rules=[arg("spender") == spender, arg("amount") <= 100],
    )


def _nft_approval_and_transfer(nft: str, escrow: str) -> tuple[Permission, Permission]:
    """The dapp's request, written with ERC-20's ABI: ``approve`` of its escrow and ``transferFrom`` to it, each "at
    most 100"."""
    transfer = Policy.call(
        nft,
        "transferFrom(address from,address to,uint256 amount)",
        rules=[arg("to") == escrow, arg("amount") <= 100],
    )
    return _nft_approval(nft, escrow), transfer


def test_an_approval_on_an_nft_collection_is_shown_as_one_of_token_ids(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """What the owner reads of ``approve`` on an ERC-721 collection (it says so through ERC-165): the function as
    the collection reads it (a token id, not an amount), and a danger that the bound lets every token whose id is
    in it be approved, one per call; the same for ``transferFrom``, whose bound moves every such token."""
    nft = project.DemoNFT.deploy(sender=deployer)
    escrow = "0x" + "e5" * 20
    described = words(*_nft_approval_and_transfer(nft.address, escrow))
    approve, transfer = described.permissions
    assert approve.function == "approve(address to, uint256 tokenId)", approve.function
    assert transfer.function == "transferFrom(address from, address to, uint256 tokenId)", transfer.function
    assert all("amount" not in rule for rule in (*approve.rules, *transfer.rules)), (
        approve.rules,
        transfer.rules,
    )
    dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == 0]
    assert any("ERC-721" in text and "every token" in text for text in dangers), described.warnings
    moves = [w.text for w in described.warnings if w.permission == 1]
    assert any("ERC-721" in text and "every token" in text for text in moves), described.warnings


def test_an_approval_of_one_token_id_on_an_nft_collection_raises_no_such_danger(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """An approval held to one token id (or a listed few) is what it reads as: no danger of every token."""
    nft = project.DemoNFT.deploy(sender=deployer)
    pinned = Policy.call(
        nft.address,
        "approve(address to,uint256 tokenId)",
        rules=[arg("to") == "0x" + "e5" * 20, arg("tokenId").one_of(7, 9)],
    )
    described = words(pinned)
    assert not [w for w in described.warnings if w.level == "danger"], described.warnings


def test_the_chain_lets_the_key_approve_every_token_under_the_bound(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "an allowance of at most 100" lets the dapp do: its key approves the escrow
    for each of the account's three tokens (ids 0 to 2) in one operation, and the escrow takes them."""
    nft = project.DemoNFT.deploy(sender=deployer)
    nft.mintBatch(module_account, 3, sender=deployer)
    escrow = accounts[8]
    session = Session(
        session_key=session_key.address, permissions=(_nft_approval(nft.address, escrow.address),)
    )
    sessions.grant_onchain(module_account, owner, session)
    approve = keccak(b"approve(address,uint256)")[:4]
    calls = [
        Call.of(nft.address, 0, approve + abi_words(int(escrow.address, 16), token)) for token in range(3)
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    for token in range(3):
        nft.transferFrom(module_account, escrow, token, sender=escrow)
    assert nft.balanceOf(escrow) == 3 and nft.balanceOf(module_account) == 0


SWAPPED_WITHDRAW = "withdraw(uint256 assets,address owner,address receiver)"
"""ERC-4626's ``withdraw(assets, receiver, owner)`` as the dapp's request writes it: the two addresses' names swapped."""


def test_a_vault_withdrawal_with_its_arguments_renamed_is_shown_with_the_standard_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """What the owner reads: the vault's functions known by selector, with ERC-4626's names (the rule holding the
    account is on ``owner``), and a caution that the assets (or a deposit's shares) may go to ANY address."""
    account = "0x" + "ac" * 20
    vault = "0x" + "7a" * 20
    withdraw = Policy.call(vault, SWAPPED_WITHDRAW, rules=[arg("receiver") == account])
    deposit = Policy.call(vault, "deposit(uint256 assets,address receiver)")
    described = words(withdraw, deposit, account=to_address(account))
    shown_withdraw, shown_deposit = described.permissions
    assert shown_withdraw.function == "withdraw(uint256 assets, address receiver, address owner)", (
        shown_withdraw
    )
    assert shown_withdraw.rules[0].startswith("owner (address) must be"), shown_withdraw.rules
    assert shown_deposit.function == "deposit(uint256 assets, address receiver)", shown_deposit
    for index in (0, 1):
        texts = [w.text for w in described.warnings if w.permission == index]
        assert any("ANY address" in text for text in texts), described.warnings
    # the session report says the same of the live session
    assert ", where owner must be " in describe_permission(withdraw), describe_permission(withdraw)


def test_the_chain_lets_the_key_withdraw_the_vault_s_assets_to_the_dapp(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "receiver must be this account" lets the dapp do on a real ERC-4626 vault:
    its key withdraws the account's assets to the dapp, the rule holding the ``owner`` word to the account."""
    token = project.TestToken.deploy(sender=deployer)
    vault = project.TestVault.deploy(token.address, sender=deployer)
    token.mint(deployer, 10**21, sender=deployer)
    token.approve(vault.address, 10**21, sender=deployer)
    vault.deposit(10**21, module_account, sender=deployer)
    dapp = accounts[8].address
    permission = Policy.call(vault.address, SWAPPED_WITHDRAW, rules=[arg("receiver") == module_account])
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    data = permission.selector + abi_words(10**21, int(dapp, 16), int(module_account, 16))
    calls = [Call.of(vault.address, 0, data)]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert token.balanceOf(dapp) == 10**21 and vault.balanceOf(module_account) == 0


SWAPPED_1155 = "safeTransferFrom(address to,address from,uint256 id,uint256 value,bytes data)"
"""ERC-1155's ``safeTransferFrom(from, to, id, value, data)`` as the dapp's request writes it: ``from`` and ``to``
swapped."""
SWAPPED_1155_BATCH = (
    "safeBatchTransferFrom(address to,address from,uint256[] ids,uint256[] values,bytes data)"
)


def test_an_erc1155_transfer_with_its_arguments_renamed_is_shown_with_the_standard_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """What the owner reads: ERC-1155's transfers known by selector, with the standard's names (the rule holding the
    account is on ``from``), and a caution that the tokens may go to ANY address."""
    account = "0x" + "ac" * 20
    collection = "0x" + "1b" * 20
    single = Policy.call(collection, SWAPPED_1155, rules=[arg("to") == account])
    batch = Policy.call(collection, SWAPPED_1155_BATCH, rules=[arg("to") == account])
    described = words(single, batch, account=to_address(account))
    shown_single, shown_batch = described.permissions
    assert shown_single.function == (
        "safeTransferFrom(address from, address to, uint256 id, uint256 value, bytes data)"
    ), shown_single
    assert shown_batch.function == (
        "safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] values, bytes data)"
    ), shown_batch
    for index, words_of in enumerate((shown_single, shown_batch)):
        assert words_of.rules[0].startswith("from (address) must be"), words_of.rules
        texts = [w.text for w in described.warnings if w.permission == index]
        assert any("ANY address" in text for text in texts), described.warnings
    assert ", where from must be " in describe_permission(single), describe_permission(single)


def test_the_chain_lets_the_key_send_the_account_s_erc1155_tokens_to_the_dapp(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "to must be this account" lets the dapp do on a real ERC-1155: its key sends
    the account's tokens to the dapp, the rule holding the ``from`` word to the account."""
    collection = project.TestMultiToken.deploy(sender=deployer)
    collection.mint(module_account, 7, 50, sender=deployer)
    dapp = accounts[8].address
    permission = Policy.call(collection.address, SWAPPED_1155, rules=[arg("to") == module_account])
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    data = permission.selector + abi_words(int(module_account, 16), int(dapp, 16), 7, 50, 0xA0, 0)
    calls = [Call.of(collection.address, 0, data)]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert collection.balanceOf(dapp, 7) == 50 and collection.balanceOf(module_account, 7) == 0
