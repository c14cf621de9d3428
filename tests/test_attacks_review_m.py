"""A dapp as the attacker, continued: a function that runs calls the session picks, under any name.

Attack 376, a dispatching function with another name read as "any arguments": attack 373 made the consent page know
a ``multicall``, a router's ``execute`` of commands and an account's or a Safe's ``execute`` by selector, with a
danger that no rule holds the calls they run. A function's name and selector are the dapp's to choose, and the same
dispatch is common under others: a batching mixin's ``batch(bytes[] calls, bool revertOnFail)`` (a delegatecall to
itself, as a multicall), Multicall3's ``aggregate``/``aggregate3``/``tryAggregate`` (the calls it makes, to any
target, with the value the session sends), a proxy's ``upgradeToAndCall`` (new code, and any call into it). A dapp's
request for its router: ``approve(spender == router, amount <= 1000)`` on a token, ``swap(..., recipient == this
account)``, and ``batch(bytes[] calls, bool revertOnFail)`` (to batch them, it says) read the batch as "any
arguments: no rule limits them", no warning; the key's ``batch([swap(token, 1000, dapp)], true)`` pays the dapp the
account's tokens past the rule the owner read on the swap's recipient. And a function the page knows nothing of
that takes ``bytes`` (``run(bytes[] steps)``) said nothing of what those bytes may be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope import Policy, arg
from keyscope.consent import GrantDescription
from keyscope.execution import Call
from keyscope.hexutil import to_address
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import words_fixture  # noqa: F401 (fixture)
from support.session_fixtures import module_account_fixture  # noqa: F401 (fixture)
from test_attacks import words as abi_words


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """Session-scoped fixtures before this module's own (ape snapshots per fixture scope)."""


BATCH = "batch(bytes[] calls,bool revertOnFail)"
"""A batching mixin's dispatcher: each call a delegatecall to the contract itself, the caller kept as the sender."""


def _batch_grant(router: str, token: str, account: str) -> tuple[Permission, ...]:
    """The dapp's request for its router: an approval of the router for at most 1,000 of the token, a swap whose
    proceeds must go to the account, and the router's ``batch`` (to batch the two in one call, it says)."""
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
        Policy.call(router, BATCH),
    )


@pytest.mark.parametrize(
    "signature",
    [
        BATCH,
        "aggregate((address target,bytes callData)[] calls)",
        "aggregate3((address target,bool allowFailure,bytes callData)[] calls)",
        "aggregate3Value((address target,bool allowFailure,uint256 value,bytes callData)[] calls)",
        "tryAggregate(bool requireSuccess,(address target,bytes callData)[] calls)",
        "upgradeToAndCall(address newImplementation,bytes data)",
    ],
)
def test_a_dispatcher_with_another_name_is_shown_as_running_calls_no_rule_holds(
    signature: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 376, what the owner reads: a batching mixin's ``batch``, Multicall3's aggregates and a proxy's
    ``upgradeToAndCall`` carry attack 373's danger that no rule of the session holds what they run; never "any
    arguments" with no word of what they are."""
    described = words(Policy.call("0x" + "7e" * 20, signature), account="0x" + "ac" * 20)
    dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == 0]
    assert any("no rule of this session" in text for text in dangers), described.warnings


@pytest.mark.parametrize(
    "signature",
    [
        "run(bytes[] steps)",
        "settle(uint256 id,bytes payload)",
        "route((address pool,bytes hop)[] hops,uint256 min)",
    ],
)
def test_an_unknown_function_taking_bytes_is_cautioned_that_they_may_be_calls(
    signature: str, words: Callable[..., GrantDescription]
) -> None:
    """Attack 376, what the owner reads of a function the page knows nothing of whose arguments hold ``bytes``: a
    caution that the contract may run them as calls (a batch, a multicall under its own name) no rule holds."""
    described = words(Policy.call("0x" + "7e" * 20, signature), account="0x" + "ac" * 20)
    cautions = [w.text for w in described.warnings if w.permission == 0 and "bytes" in w.text]
    assert any("no rule" in text and "calls" in text for text in cautions), described.warnings


def test_a_function_without_bytes_raises_no_such_caution(words: Callable[..., GrantDescription]) -> None:
    """The caution is for ``bytes`` only: a swap of words (no bytes) reads as it did."""
    described = words(
        Policy.call("0x" + "7e" * 20, "swap(address tokenIn,uint256 amountIn,address recipient)"),
        account="0x" + "ac" * 20,
    )
    assert not [w for w in described.warnings if "bytes" in w.text], described.warnings


def test_the_chain_lets_the_key_swap_to_the_dapp_through_the_batch(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "swap proceeds must go to this account" lets the dapp do: its key approves
    the router and calls ``batch`` with a swap whose recipient is the dapp; the router runs it as its own call with
    the account as the sender, and the account's tokens go to the dapp."""
    token = project.TestToken.deploy(sender=deployer)
    router = project.BatchingRouter.deploy(sender=deployer)
    token.mint(module_account, 1000, sender=deployer)
    dapp = accounts[8].address
    grant = _batch_grant(router.address, token.address, module_account)
    session = Session(session_key=session_key.address, permissions=grant)
    sessions.grant_onchain(module_account, owner, session)
    swap = grant[1].selector + abi_words(int(token.address, 16), 1000, int(dapp, 16))
    inner = abi_words(0x40, 1, 1, 0x20, len(swap)) + swap + bytes(-len(swap) % 32)
    calls = [
        Call.of(token.address, 0, grant[0].selector + abi_words(int(router.address, 16), 1000)),
        Call.of(router.address, 0, grant[2].selector + inner),
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert token.balanceOf(dapp) == 1000 and token.balanceOf(module_account) == 0


ROUTER_SINGLE = (
    "exactInputSingle((address tokenIn,address tokenOut,uint24 fee,address recipient,uint256 deadline,"
    "uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)"
)
"""The swap router's ``exactInputSingle`` as the router declares it: ``amountIn`` is the struct's component 5."""
RENAMED_SINGLE = ROUTER_SINGLE.replace(
    "uint256 amountIn,uint256 amountOutMinimum", "uint256 amountOutMinimum,uint256 amountIn"
)
"""The same selector as the dapp's request labels it: ``amountIn`` and ``amountOutMinimum`` swapped."""


def _renamed_swap(router: str, account: str) -> Permission:
    """Attack 377's permission: the dapp's backend builds it from its own label, ``amountIn`` put on the word the
    router reads as ``amountOutMinimum``, with "recipient must be this account" and "amountIn at most 1,000"."""
    built = Policy.call(
        router,
        RENAMED_SINGLE,
        rules=[arg("params", "recipient") == account, arg("params", "amountIn") <= 1000],
    )
    return built.model_copy(update={"function": RENAMED_SINGLE})


def test_a_swap_struct_with_its_components_renamed_is_shown_with_the_router_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 377, what the owner reads: a dapp's request for the swap router's ``exactInputSingle`` whose label
    swaps ``amountIn`` and ``amountOutMinimum`` (components' names are not part of the selector) read "params.amountIn
    (uint256) must be at most 1000" on the word the router reads as the least it must receive; the page shows the
    router's own names, so the bound reads as the one on ``amountOutMinimum`` it is."""
    account = "0x" + "ac" * 20
    described = words(_renamed_swap("0x" + "7e" * 20, account), account=account)
    (permission,) = described.permissions
    rules = " ".join(permission.rules)
    assert "params.amountOutMinimum (uint256) must be at most 1,000" in rules, permission.rules
    assert "params.amountIn" not in rules, permission.rules
    assert "params.recipient (address)" in rules, permission.rules


def test_the_chain_lets_the_key_swap_any_amount_under_the_renamed_bound(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "amountIn at most 1,000" lets the dapp do: its key calls ``exactInputSingle``
    with an ``amountIn`` of 10**24 (all the account's tokens under its approval of the router) and an
    ``amountOutMinimum`` of 0 (no slippage bound, so a pool the dapp moves takes it all); the module accepts it."""
    target = project.EffectRecorder.deploy(sender=deployer)
    permission = _renamed_swap(target.address, module_account)
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    token_in, token_out = int("70" * 20, 16), int("71" * 20, 16)
    params = abi_words(token_in, token_out, 3000, int(module_account, 16), 2**40, 10**24, 0, 0)
    calls = [Call.of(target.address, 0, permission.selector + params)]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"


def test_a_swap_whose_recipient_no_rule_holds_is_cautioned(words: Callable[..., GrantDescription]) -> None:
    """Attack 377's known swaps say when the proceeds may go anywhere: ``exactInputSingle`` with no rule on its
    recipient, and ``exactInput`` (a dynamic struct, whose recipient no rule can reach), never the single swap whose
    recipient a rule holds."""
    router = "0x" + "7e" * 20
    account = "0x" + "ac" * 20
    described = words(
        _renamed_swap(router, account),
        Policy.call("0x" + "7f" * 20, ROUTER_SINGLE, rules=[arg("params", "amountIn") <= 1000]),
        Policy.call(
            router, "exactInput((bytes path,address recipient,uint256 amountIn,uint256 amountOutMinimum) p)"
        ),
        account=account,
    )
    cautions = {w.permission for w in described.warnings if "proceeds to ANY address" in w.text}
    assert cautions == {1, 2}, described.warnings
    assert "params.amountIn (uint256) must be at most 1,000" in described.permissions[1].rules, (
        described.permissions
    )


def _hybrid_approval(token: str, dapp: str) -> Permission:
    """Attack 378's permission: an approval of the dapp for at most one whole token (10**18 base units)."""
    return Policy.call(
        token,
        "approve(address spender,uint256 amount)",
        rules=[arg("spender") == dapp, arg("amount") <= 10**18],
    )


def test_an_approval_on_a_hybrid_token_is_shown_as_one_that_may_name_token_ids(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """Attack 378, what the owner reads: an approval on a token that answers ``decimals()`` and also a collection's
    ``getApproved(uint256)`` (a hybrid ERC-20/ERC-721, which says nothing through ERC-165) read "at most 1 HYB" with
    no doubt; the page now warns that a number up to its minted count may be a token id, whose approvals add up."""
    token = project.HybridToken.deploy(sender=deployer)
    token.mint(deployer, 10, sender=deployer)
    described = words(_hybrid_approval(token.address, "0x" + "da" * 20))
    dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == 0]
    assert any("token id" in text and "getApproved" in text for text in dangers), described.warnings


def test_an_approval_on_a_plain_token_raises_no_hybrid_danger(
    project: Any, deployer: Any, words: Callable[..., GrantDescription]
) -> None:
    """The same approval on an ERC-20 token that answers no ``getApproved`` reads as it did."""
    token = project.TestToken.deploy(sender=deployer)
    described = words(_hybrid_approval(token.address, "0x" + "da" * 20))
    assert not [w for w in described.warnings if "getApproved" in w.text], described.warnings


def test_the_chain_lets_the_dapp_take_every_token_of_the_hybrid(
    sessions: Any,
    project: Any,
    deployer: Any,
    accounts: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "approve the dapp for at most 1 HYB" lets the dapp do: its key approves the
    dapp for each of the account's ten collection tokens (ids 1 to 10, each under the bound), in one operation, and
    the dapp moves all ten whole tokens: ten times the bound."""
    token = project.HybridToken.deploy(sender=deployer)
    token.mint(module_account, 10, sender=deployer)
    dapp = accounts[8]
    permission = _hybrid_approval(token.address, dapp.address)
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    calls = [
        Call.of(token.address, 0, permission.selector + abi_words(int(dapp.address, 16), token_id))
        for token_id in range(1, 11)
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    for token_id in range(1, 11):
        token.transferFrom(module_account, dapp.address, token_id, sender=dapp)
    assert token.balanceOf(dapp.address) == 10 * 10**18 and token.balanceOf(module_account) == 0


def _lookalike(address: str) -> str:
    """An address that shares ``address``'s first and last eight hex digits and differs in every one between: what a
    dapp makes cheaply (a vanity search over its own keys), as address poisoning does."""
    body = address[2:].lower()
    middle = "".join("0" if c != "0" else "1" for c in body[8:-8])
    return to_address("0x" + body[:8] + middle + body[-8:])


def _lookalike_transfer(token: str, account: str) -> Permission:
    """Attack 379's permission: a transfer whose recipient must be one of the account and its look-alike."""
    return Policy.call(
        token,
        "transfer(address to,uint256 amount)",
        rules=[arg("to").one_of([account, _lookalike(account)]), arg("amount") <= 1000],
    )


def test_an_address_that_passes_for_the_account_is_a_danger(words: Callable[..., GrantDescription]) -> None:
    """Attack 379, what the owner reads: a recipient rule "must be one of 0xacac...(this account), 0xacac..." whose
    second address shares the account's first and last eight hex digits; the page now says that the address passes
    for the account and is not it. An EQUAL rule on the look-alike alone is the same danger."""
    account = to_address("0x" + "ac" * 20)
    token = "0x" + "70" * 20
    described = words(
        _lookalike_transfer(token, account),
        Policy.call(
            "0x" + "71" * 20, "transfer(address to,uint256 amount)", rules=[arg("to") == _lookalike(account)]
        ),
        account=account,
    )
    for index in (0, 1):
        dangers = [w.text for w in described.warnings if w.level == "danger" and w.permission == index]
        assert any(_lookalike(account) in text and "this account" in text for text in dangers), (
            described.warnings
        )


def test_the_account_itself_raises_no_lookalike_danger(words: Callable[..., GrantDescription]) -> None:
    """A rule on the account's own address, and on an address unlike it, reads as it did."""
    account = to_address("0x" + "ac" * 20)
    described = words(
        Policy.call(
            "0x" + "70" * 20,
            "transfer(address to,uint256 amount)",
            rules=[arg("to").one_of([account, "0x" + "5e" * 20])],
        ),
        account=account,
    )
    assert not [w for w in described.warnings if "passes for" in w.text], described.warnings


def test_the_chain_lets_the_key_pay_the_lookalike(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "to this account" lets the dapp do: its key sends the account's tokens to
    the look-alike address (the dapp's), which the rule lists; the module compares whole words, as it should."""
    token = project.TestToken.deploy(sender=deployer)
    token.mint(module_account, 1000, sender=deployer)
    permission = _lookalike_transfer(token.address, module_account)
    session = Session(session_key=session_key.address, permissions=(permission,))
    sessions.grant_onchain(module_account, owner, session)
    lookalike = _lookalike(module_account)
    calls = [Call.of(token.address, 0, permission.selector + abi_words(int(lookalike, 16), 1000))]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert token.balanceOf(lookalike) == 1000


SWAPPED_1363_FROM = "transferFromAndCall(address to,address from,uint256 value)"
"""ERC-1363's ``transferFromAndCall(from, to, value)`` as the dapp's request labels it: ``from`` and ``to`` swapped."""


def _callback_grant(token: str, account: str) -> tuple[Permission, ...]:
    """Attack 380's request: an approval of the account itself (it reads harmless) and a ``transferFromAndCall``
    whose label puts "to must be this account" on the word the token reads as ``from``."""
    transfer = Policy.call(token, SWAPPED_1363_FROM, rules=[arg("to") == account, arg("value") <= 1000])
    return (
        Policy.call(
            token,
            "approve(address spender,uint256 amount)",
            rules=[arg("spender") == account, arg("amount") <= 1000],
        ),
        transfer.model_copy(update={"function": SWAPPED_1363_FROM}),
    )


def test_an_erc1363_transfer_with_its_arguments_renamed_is_shown_with_the_standard_s_names(
    words: Callable[..., GrantDescription],
) -> None:
    """Attack 380, what the owner reads: ERC-1363's ``transferFromAndCall`` with ``from`` and ``to`` swapped in the
    request's label read "to (address) must be ... (this account)" with no caution; the page shows the standard's
    names (the rule holds ``from``) and cautions that the recipient may be any address, as for ``transferFrom``;
    ``transferAndCall`` with no rule on its recipient carries the same caution."""
    account = to_address("0x" + "ac" * 20)
    token = "0x" + "70" * 20
    described = words(
        *_callback_grant(token, account),
        Policy.call("0x" + "71" * 20, "transferAndCall(address to,uint256 value,bytes data)"),
        account=account,
    )
    transfer = described.permissions[1]
    assert transfer.function == "transferFromAndCall(address from, address to, uint256 value)", transfer
    assert any(rule.startswith("from (address) must be") for rule in transfer.rules), transfer.rules
    for index in (1, 2):
        cautions = [w.text for w in described.warnings if w.permission == index]
        assert any("may send to ANY address" in text for text in cautions), (index, described.warnings)


def test_the_chain_lets_the_key_send_the_account_s_tokens_to_the_dapp_through_the_callback(
    sessions: Any,
    project: Any,
    deployer: Any,
    module_account: str,
    owner: LocalSigner,
    session_key: LocalSigner,
) -> None:
    """What the grant the owner read as "approve this account itself" and "transferFromAndCall to this account" lets
    the dapp do: its key approves the account for its own 1,000 tokens and calls ``transferFromAndCall(account,
    dapp's contract, 1000)``; the token moves them to the dapp's contract."""
    token = project.CallbackToken.deploy(sender=deployer)
    receiver = project.AcceptingReceiver.deploy(sender=deployer)
    token.mint(module_account, 1000, sender=deployer)
    grant = _callback_grant(token.address, module_account)
    session = Session(session_key=session_key.address, permissions=grant)
    sessions.grant_onchain(module_account, owner, session)
    calls = [
        Call.of(token.address, 0, grant[0].selector + abi_words(int(module_account, 16), 1000)),
        Call.of(
            token.address,
            0,
            grant[1].selector + abi_words(int(module_account, 16), int(receiver.address, 16), 1000),
        ),
    ]
    assert sessions.outcome(sessions.op(module_account, session_key, calls)) == "ok"
    assert token.balanceOf(receiver.address) == 1000 and token.balanceOf(module_account) == 0
