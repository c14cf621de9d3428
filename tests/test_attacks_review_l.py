"""A dapp as the attacker, continued: every surface the owner reads says what the collection does.

Attack 371, an ERC-721 collection read as an ERC-20 token past the permission's own line: attack 364 made the consent
page show ERC-721's ``approve`` and ``transferFrom`` on a collection (a target that says so through ERC-165) with a
token id, not an amount. The rest of what the owner reads still took them as ERC-20's: the session report
(``report_from_chain``, which ``owner.sessions()`` and ``keyscope sessions`` print) read "approve(address spender,
uint256 amount)" on the collection, and the page's limits named the word a total counts by ERC-20's form. A dapp's
"token allowance" of 100 on a collection (``Policy.erc20_allowance``: ``transfer``, ``transferFrom``, ``approve``
counted towards one budget) read "At most 100 base units, counted from all of: its argument amount (uint256) in
transferFrom(address from, address to, uint256 amount) ...", while the module adds up the token ids the calls name:
token 0 counts nothing, and the key moves every token of the account whose ids add up to 100 at most.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, SessionKey, TargetWarning, arg
from keyscope.consent import GrantDescription
from keyscope.execution import Call
from keyscope.hexutil import keccak
from keyscope.report import describe_permission, report_from_chain
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
from test_attacks import words as abi_words
from test_attacks_review_k import _nft_approval as _bounded_approval
from test_attacks_review_k import _nft_approval_and_transfer


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


def test_the_session_report_reads_an_approval_on_a_collection_as_one_of_a_token_id(
    net: Any, project: Any, deployer: Any
) -> None:
    """What ``owner.sessions()`` and ``keyscope sessions`` print of attack 364's grant, judged on chain: the
    collection's ``approve`` and ``transferFrom`` with a token id (as the consent page now shows them), never an
    ERC-20 allowance's "amount at most 100"."""
    nft = project.DemoNFT.deploy(sender=deployer)
    escrow = "0x" + "e5" * 20
    owner = net.owner(LocalSigner.generate())
    with pytest.warns(TargetWarning):  # a token id and a recipient no rule holds: said too (attack 431)
        grant = owner.grant(
            SessionKey.generate(),
            list(_nft_approval_and_transfer(nft.address, escrow)),
            valid_for=3600,
        )
    approve, transfer = report_from_chain(net, grant).permissions
    assert "approve(address to,uint256 tokenId)" in approve, approve
    assert "transferFrom(address from,address to,uint256 tokenId)" in transfer, transfer
    assert "amount" not in approve + transfer, (approve, transfer)
    assert "tokenId must be at most 100" in approve, approve


def test_an_erc20_allowance_on_a_collection_names_the_token_ids_it_adds_up(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """What the owner reads of a dapp's "token allowance" of 100 on a collection: the budget counts the token ids
    of ``transferFrom`` and ``approve`` (the collection's words), with a danger that a total of token ids bounds no
    number of tokens; never "its argument amount" of ERC-20's form."""
    nft = project.DemoNFT.deploy(sender=deployer)
    described = words(*Policy.erc20_allowance(nft.address, 100))
    (limit,) = described.limits
    assert "transferFrom(address from, address to, uint256 tokenId)" in limit, limit
    assert "approve(address to, uint256 tokenId)" in limit, limit
    assert "its argument tokenId (uint256)" in limit, limit
    assert "uint256 amount)" not in limit.replace("transfer(address to, uint256 amount)", ""), limit
    ids = [w.text for w in described.warnings if w.level == "danger" and "adds up token ids" in w.text]
    assert len(ids) == 2, described.warnings
    assert all("ERC-721" in text and "uint256 amount" not in text for text in ids), ids


def test_an_erc20_allowance_on_a_token_raises_no_token_id_danger(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """The same allowance on an ERC-20 token (no ERC-165 answer) reads as it did: ERC-20's amounts, no such danger."""
    token = project.TestToken.deploy(sender=deployer)
    described = words(*Policy.erc20_allowance(token.address, 100))
    (limit,) = described.limits
    assert "its argument amount (uint256) in transferFrom(address from, address to, uint256 amount)" in limit
    assert not [w for w in described.warnings if "token ids" in w.text], described.warnings


def test_the_chain_lets_the_key_move_every_token_whose_ids_fit_the_allowance(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What an "allowance of 3" on a collection lets the dapp's key do: move the account's three tokens (ids 0, 1
    and 2, adding up to 3) to the dapp in one operation; the budget counted token ids, never tokens."""
    nft = project.DemoNFT.deploy(sender=deployer)
    nft.mintBatch(module_account, 3, sender=deployer)
    dapp = accounts[8].address
    session = Session(session_key=session_key.address, permissions=Policy.erc20_allowance(nft.address, 3))
    sessions.grant_onchain(module_account, owner, session)
    transfer_from = keccak(b"transferFrom(address,address,uint256)")[:4]
    calls = [
        Call.of(nft.address, 0, transfer_from + abi_words(int(module_account, 16), int(dapp, 16), token))
        for token in range(3)
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert nft.balanceOf(dapp) == 3 and nft.balanceOf(module_account) == 0


def test_an_approval_on_a_collection_that_does_not_say_so_is_not_read_as_a_sure_allowance(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 372, what the owner reads: ``approve`` and ``transferFrom`` on a contract that gives no ERC-20
    ``decimals()`` and does not say it is an ERC-721 collection (a collection need not answer ERC-165, older ones
    answer an earlier draft's id) carry a caution that the number may be a token id, not an amount, and that every
    token whose id the rule allows may then go; never a bounded allowance read with no word of doubt."""
    collection = project.SilentCollection.deploy(sender=deployer)
    escrow = "0x" + "e5" * 20
    described = words(*_nft_approval_and_transfer(collection.address, escrow))
    for index in (0, 1):
        texts = [w.text for w in described.warnings if w.permission == index]
        assert any("ERC-721" in text and "token id" in text for text in texts), described.warnings


def test_an_approval_on_an_erc20_token_raises_no_token_id_caution(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """The same approval on an ERC-20 token with ``decimals()``: read as the allowance it is, no such caution."""
    token = project.TestToken.deploy(sender=deployer)
    described = words(_bounded_approval(token.address, "0x" + "e5" * 20))
    assert not [w for w in described.warnings if "token id" in w.text], described.warnings


def test_the_chain_lets_the_key_approve_every_token_of_a_silent_collection(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What "an allowance of at most 100" on the silent collection lets the dapp do: its key approves the escrow for
    each of the account's three tokens in one operation, and the escrow takes them."""
    collection = project.SilentCollection.deploy(sender=deployer)
    collection.mintBatch(module_account, 3, sender=deployer)
    escrow = accounts[8]
    session = Session(
        session_key=session_key.address,
        permissions=(_bounded_approval(collection.address, escrow.address),),
    )
    sessions.grant_onchain(module_account, owner, session)
    approve = keccak(b"approve(address,uint256)")[:4]
    calls = [
        Call.of(collection.address, 0, approve + abi_words(int(escrow.address, 16), token))
        for token in range(3)
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    for token in range(3):
        collection.transferFrom(module_account, escrow, token, sender=escrow)
    assert collection.balanceOf(escrow) == 3 and collection.balanceOf(module_account) == 0


def _router_grant(router: str, token: str, account: str) -> tuple[Permission, ...]:
    """The dapp's request for its router: an approval of the router for at most 1,000 of the token, a swap whose
    proceeds must go to the account, and the router's ``multicall`` (to batch the two in one call, it says)."""
    return (
        Policy.call(
            token,
            "approve(address spender,uint256 amount)",
            rules=[arg("spender") == router, arg("amount") <= 1000],
        ),
        Policy.call(
            router,
            "swap(address tokenIn,uint256 amountIn,address recipient)",
            rules=[arg("recipient") == account],
        ),
        Policy.call(router, "multicall(bytes[] data)"),
    )


def test_a_multicall_on_a_router_is_shown_as_running_calls_no_rule_holds(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 373, what the owner reads: a target's ``multicall`` (and the other functions that run calls the
    session picks: a router's ``execute`` of commands, an account's or a Safe's ``execute`` / ``execTransaction``)
    carries a danger that its calls are held by no rule of the session; never "any arguments" with no word of
    what they are."""
    account = "0x" + "ac" * 20
    router = "0x" + "7e" * 20
    described = words(
        *_router_grant(router, "0x" + "70" * 20, account),
        Policy.call(router, "multicall(uint256 deadline,bytes[] data)"),
        Policy.call(router, "execute(bytes commands,bytes[] inputs,uint256 deadline)"),
        Policy.call(
            "0x" + "5a" * 20,
            "execTransaction(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
            "uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,bytes signatures)",
        ),
        Policy.call("0x" + "5b" * 20, "execute(address dest,uint256 value,bytes func)"),
        account=account,
    )
    for index in range(2, 7):
        dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == index]
        assert any("no rule of this session" in text for text in dangers), (index, described.warnings)
    assert not [w for w in described.warnings if w.permission == 1 and w.level == "danger"], (
        described.warnings
    )


def test_the_chain_lets_the_key_swap_to_the_dapp_through_the_multicall(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "swap proceeds must go to this account" lets the dapp do: its key approves
    the router and calls ``multicall`` with a swap whose recipient is the dapp; the router runs it as its own call
    with the account as the sender, and the account's tokens go to the dapp."""
    token = project.TestToken.deploy(sender=deployer)
    router = project.MulticallRouter.deploy(sender=deployer)
    token.mint(module_account, 1000, sender=deployer)
    dapp = accounts[8].address
    grant = _router_grant(router.address, token.address, module_account)
    session = Session(session_key=session_key.address, permissions=grant)
    sessions.grant_onchain(module_account, owner, session)
    swap = grant[1].selector + abi_words(int(token.address, 16), 1000, int(dapp, 16))
    inner = abi_words(0x20, 1, 0x20, len(swap)) + swap + bytes(-len(swap) % 32)
    calls = [
        Call.of(token.address, 0, grant[0].selector + abi_words(int(router.address, 16), 1000)),
        Call.of(router.address, 0, grant[2].selector + inner),
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert token.balanceOf(dapp) == 1000 and token.balanceOf(module_account) == 0


SWAPPED_6909_FROM = "transferFrom(address receiver,address sender,uint256 id,uint256 amount)"
"""ERC-6909's ``transferFrom(sender, receiver, id, amount)`` as the dapp's request writes it: the addresses' names
swapped."""
SWAPPED_6909 = "transfer(address receiver,uint256 amount,uint256 id)"
"""ERC-6909's ``transfer(receiver, id, amount)`` as the dapp's request writes it: ``id`` and ``amount`` swapped."""


def test_an_erc6909_transfer_with_its_arguments_renamed_is_shown_with_the_standard_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 374, what the owner reads: ERC-6909's ``transfer`` and ``transferFrom`` known by selector with the
    standard's names (the rule holding the account is on ``sender``; the bound "amount at most 10" is on ``id``),
    and a caution that the tokens may go to ANY address."""
    account = "0x" + "ac" * 20
    multi = "0x" + "69" * 20
    moved = Policy.call(multi, SWAPPED_6909_FROM, rules=[arg("receiver") == account])
    sent = Policy.call(multi, SWAPPED_6909, rules=[arg("receiver") == account, arg("amount") <= 10])
    described = words(moved, sent, account=account)
    shown_from, shown = described.permissions
    assert shown_from.function == (
        "transferFrom(address sender, address receiver, uint256 id, uint256 amount)"
    ), shown_from
    assert shown_from.rules[0].startswith("sender (address) must be"), shown_from.rules
    assert any("ANY address" in w.text for w in described.warnings if w.permission == 0), described.warnings
    assert shown.function == "transfer(address receiver, uint256 id, uint256 amount)", shown
    assert shown.rules[1].startswith("id (uint256) must be at most 10"), shown.rules
    assert ", where sender must be " in describe_permission(moved), describe_permission(moved)


def test_the_chain_lets_the_key_send_the_account_s_erc6909_tokens_to_the_dapp(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "receiver must be this account" lets the dapp do on a real ERC-6909: its key
    sends the account's tokens to the dapp, the rule holding the ``sender`` word to the account (the account may move
    its own tokens through ``transferFrom`` with no allowance)."""
    multi = project.TestERC6909.deploy(sender=deployer)
    multi.mint(module_account, 7, 50, sender=deployer)
    dapp = accounts[8].address
    permission = Policy.call(multi.address, SWAPPED_6909_FROM, rules=[arg("receiver") == module_account])
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    data = permission.selector + abi_words(int(module_account, 16), int(dapp, 16), 7, 50)
    calls = [Call.of(multi.address, 0, data)]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert multi.balanceOf(dapp, 7) == 50 and multi.balanceOf(module_account, 7) == 0


def test_an_erc777_send_with_its_arguments_renamed_is_shown_with_the_standard_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 374 on ERC-777: ``operatorSend(address to, address from, ...)`` (the standard's ``from`` and ``to``
    swapped) with ``to == this account`` reads with the standard's names, the rule on ``from``, and a caution that
    the tokens may go to ANY address; ``send`` with the standard's names too."""
    account = "0x" + "ac" * 20
    token = "0x" + "77" * 20
    swapped = Policy.call(
        token,
        "operatorSend(address to,address from,uint256 amount,bytes data,bytes operatorData)",
        rules=[arg("to") == account],
    )
    send = Policy.call(token, "send(address recipient,uint256 value,bytes userData)")
    described = words(swapped, send, account=account)
    shown_swapped, shown_send = described.permissions
    assert shown_swapped.function == (
        "operatorSend(address from, address to, uint256 amount, bytes data, bytes operatorData)"
    ), shown_swapped
    assert shown_swapped.rules[0].startswith("from (address) must be"), shown_swapped.rules
    assert shown_send.function == "send(address to, uint256 amount, bytes data)", shown_send
    for index in (0, 1):
        texts = [w.text for w in described.warnings if w.permission == index]
        assert any("ANY address" in text for text in texts), described.warnings


def test_a_report_from_the_store_alone_does_not_read_an_approval_as_a_sure_allowance(
    net: Any, project: Any, deployer: Any
) -> None:
    """Attack 371 without a chain (``keyscope sessions`` from the store alone): the report cannot ask the target
    whether it is an ERC-721 collection, so ``approve`` and ``transferFrom`` carry a note that on one the number is a
    token id; other functions (``transfer``) none."""
    from keyscope.report import StoreMarks, report_from_store

    nft = project.DemoNFT.deploy(sender=deployer)
    owner = net.owner(LocalSigner.generate())
    # the NFT has no transfer or increaseAllowance of its own: the grant says so, and is made all the same
    with pytest.warns(TargetWarning) as said:
        grant = owner.grant(
            SessionKey.generate(),
            [*Policy.erc20_allowance(nft.address, 100)],
            valid_for=3600,
        )
    assert {str(w.message).split(" on ")[0] for w in said if "has no function" in str(w.message)} == {
        "granting transfer(address,uint256)",
        "granting increaseAllowance(address,uint256)",
    }, [str(w.message) for w in said]
    texts = report_from_store(
        grant, StoreMarks(revoked=False, enabled=False), now=grant.valid_after
    ).permissions
    transfer, transfer_from, approve, _ = texts
    assert "token id" in transfer_from and "token id" in approve, texts
    assert "token id" not in transfer, transfer


ENTRY_POINT_V06 = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
"""EntryPoint v0.6's canonical address: accounts that moved to a later EntryPoint may keep a deposit there."""


@pytest.mark.parametrize("other_entry_point", [ENTRY_POINT_V06, "0x0000000071727De22E5E9d8BAf0edAc6f37da032"])
def test_a_withdrawal_from_another_entry_point_is_a_danger(
    other_entry_point: str, net: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 375, what the owner reads: a dapp's "refund" permission, ``withdrawTo`` on an EntryPoint other than the
    network's (the canonical v0.6 or v0.7, where an account that moved to a later EntryPoint may keep a deposit),
    is a danger that the session may withdraw the account's deposit there, as on the network's own EntryPoint (attack
    252); and ``owner.grant`` warns of it likewise."""
    from keyscope.targets import target_problems

    assert net.entry_point.lower() != other_entry_point.lower()
    refund = Policy.call(other_entry_point, "withdrawTo(address withdrawAddress,uint256 withdrawAmount)")
    described = words(refund)
    dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == 0]
    assert any("EntryPoint" in text and "deposit" in text for text in dangers), described.warnings
    problems = target_problems([refund], {}, net.entry_point)
    assert any("EntryPoint" in text for text in problems), problems
