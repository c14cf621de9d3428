"""A leaked session key using an approval the account gave its target before the grant (attack 357).

A grant's rules bound the session's own calls (``router.swap(amountIn <= 100)``), but a contract the account has
already approved as a spender or an operator may move the account's tokens under that standing approval in ways the
rules on its arguments do not bound: another of the router's functions, a marketplace's ``transferFrom`` of any NFT
the account holds when the session may call ``buy``, a multicall on the target. The consent page showed "may call
router.swap with amountIn <= 100" and nothing about the unlimited USDC approval the router already held.

Now the page raises a danger, and ``owner.grant`` a ``TargetWarning``, naming each standing approval of the account
to a target of the grant: an ERC-20 allowance (at the token's decimals, "unlimited" for an unbounded one), an
ERC-721/1155 operator approval, a Permit2 allowance; an approval since revoked, or given to another spender, is not
reported; a provider that cannot be asked leaves the grant working, with a note that the check could not look.

Read on ape's py-evm chain, as the page reads the chain.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import encode as abi_encode

from keyscope import Network, Policy, RpcChain, SessionKey, Web3Chain
from keyscope.consent import ConsentServer, GrantDescription
from keyscope.consent.describe import describe_session
from keyscope.errors import TargetWarning
from keyscope.execution import Call
from keyscope.hexutil import keccak, to_address
from keyscope.log_queries import recent_logs
from keyscope.owner import Owner
from keyscope.rpc import JsonRpcClient, JsonRpcError
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from keyscope.standing_approvals import APPROVAL_TOPIC, PERMIT2, approval_words, standing_approvals
from keyscope.store import open_store
from keyscope.token_facts import cached_contract_facts
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.sdk import sdk_owner  # noqa: F401 (fixture)
from test_chain import anvil_url  # noqa: F401  (a module-scoped fixture: a real anvil)

MAX = 2**256 - 1
STANDING = "already holds"
"""Words every standing approval's warning has."""


def _call(target: str, signature: str, types: list[str], values: list[Any]) -> Call:
    return Call(to_address(target), 0, keccak(signature.encode())[:4] + abi_encode(types, values))


def _approve(token: Any, spender: Any, amount: int) -> Call:
    return _call(token.address, "approve(address,uint256)", ["address", "uint256"], [spender.address, amount])


def _operator(collection: Any, operator: Any, approved: bool = True) -> Call:
    return _call(
        collection.address,
        "setApprovalForAll(address,bool)",
        ["address", "bool"],
        [operator.address, approved],
    )


@pytest.fixture(name="nft", scope="module")
def nft_fixture(project: Any, deployer: Any) -> Any:
    """A collection of this module's own (the session's one is made before this module's snapshot)."""
    return project.DemoNFT.deploy(sender=deployer)


@pytest.fixture(name="other", scope="module")
def other_fixture(project: Any, deployer: Any) -> Any:
    """Another contract, a spender the grant does not name."""
    return project.RecordingTarget.deploy(sender=deployer)


@pytest.fixture(name="router", scope="module")
def router_fixture(project: Any, deployer: Any, usdc: Any, nft: Any, other: Any) -> Any:
    """A contract with code standing for a dapp's router (or a marketplace): the grant's target. Made after this
    module's other contracts, so that the first test to take it makes them all before its own fixtures (ape's
    isolation rebases a module fixture made later)."""
    return project.RecordingTarget.deploy(sender=deployer)


def _swap(router: Any) -> Permission:
    return Policy.call(router.address, "other(uint256 amount)")


def _standing(caught: Any) -> list[Any]:
    return [w for w in caught if issubclass(w.category, TargetWarning) and STANDING in str(w.message)]


def _grant(owner: Owner, *permissions: Permission) -> list[Any]:
    """The standing approvals' warnings of ``owner.grant`` (and that each points at this test's call)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        owner.grant(SessionKey.generate(), list(permissions))
    found = _standing(caught)
    assert {(w.filename, w.lineno) for w in found} <= {(__file__, line)}, [
        (w.filename, w.lineno) for w in found
    ]
    return found


def test_owner_grant_warns_of_an_unlimited_erc20_approval_the_account_gave_the_target(
    usdc: Any, router: Any, owner: Owner
) -> None:
    """The account approved the router for every USDC last month; a session may now call one function of the
    router. ``owner.grant`` names the approval, its token and "unlimited", says what to do, and points at the
    owner's line that granted."""
    owner.execute(_approve(usdc, router, MAX)).wait()
    (found,) = _grant(owner, _swap(router))
    text = str(found.message)
    assert router.address in text and usdc.address in text and "unlimited" in text and "USDC" in text, text
    assert "revoke it first (approve(it, 0) on the token)" in text, text


def test_owner_grant_warns_of_a_bounded_erc20_approval_at_the_token_s_decimals(
    usdc: Any, router: Any, owner: Owner
) -> None:
    """A bounded standing allowance is shown at the token's decimals: 250 USDC, not 250000000."""
    owner.execute(_approve(usdc, router, 250 * 10**6)).wait()
    (found,) = _grant(owner, _swap(router))
    assert "250 USDC" in str(found.message), found.message


def test_owner_grant_warns_of_an_nft_operator_approval_the_account_gave_the_target(
    nft: Any, router: Any, owner: Owner
) -> None:
    """The account made the marketplace an operator of its NFTs; a session may call the marketplace's ``buy``: the
    marketplace may take any NFT of that collection the account holds."""
    owner.execute(_operator(nft, router)).wait()
    (found,) = _grant(owner, _swap(router))
    text = str(found.message)
    assert nft.address in text and "operator" in text, text


def test_no_warning_for_a_revoked_approval_another_spender_or_an_account_with_none(
    usdc: Any, nft: Any, router: Any, other: Any, owner: Owner
) -> None:
    """An approval since revoked (its log stays, the chain's state says 0 or false), an approval to a contract the
    grant does not name, and an account that never approved anything: no standing approval's warning."""
    assert _grant(owner, _swap(router)) == []  # none, and the account not deployed yet
    owner.execute(
        [
            _approve(usdc, router, MAX),
            _approve(usdc, router, 0),
            _operator(nft, router),
            _operator(nft, router, False),
            _approve(usdc, other, MAX),
            _operator(nft, other),
        ]
    ).wait()
    assert _grant(owner, _swap(router)) == []
    assert len(_grant(owner, _swap(other))) == 2


def _page(net: Network, account: str, *permissions: Permission) -> GrantDescription:
    session = Session(
        session_key=LocalSigner.generate().address,
        valid_until=2_000_000_000,
        max_gas_cost=10**16,
        permissions=permissions,
    )
    facts = ConsentServer(net).facts(account)  # not started: its describer reads the chain
    return describe_session(session, account=account, chain_id=net.chain_id, facts=facts)


def test_the_consent_page_shows_a_standing_approval_as_a_danger_on_the_permission(
    usdc: Any, nft: Any, router: Any, other: Any, net: Network, accounts: Any
) -> None:
    """The page raises the same in red, on the first permission calling the approved target, with the amount at the
    token's decimals (or "unlimited") and the token's symbol; nothing on a permission calling another contract."""
    holder = accounts[7]
    usdc.approve(router.address, 1_500_000, sender=holder)
    nft.setApprovalForAll(router.address, True, sender=holder)
    page = _page(net, holder.address, _swap(other), _swap(router))
    found = [w for w in page.warnings if STANDING in w.text]
    assert {w.level for w in found} == {"danger"} and {w.permission for w in found} == {1}, found
    texts = " | ".join(w.text for w in found)
    assert "1.5 USDC" in texts and "operator" in texts and nft.address in texts, texts
    usdc.approve(router.address, MAX, sender=holder)
    page = _page(net, holder.address, _swap(router))
    assert any("unlimited" in w.text and "USDC" in w.text for w in page.warnings if STANDING in w.text)


def test_the_dashboard_shows_a_stored_session_s_target_s_standing_approval(
    usdc: Any, router: Any, owner: Owner, net: Network, tmp_path: Path
) -> None:
    """The dashboard lists the account's sessions with the page's words: a session calling a target the account has
    approved carries the same danger there, on its permission, while the approval stands."""
    owner.execute(_approve(usdc, router, MAX)).wait()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetWarning)  # the grant's own warning: tested above
        grant = owner.grant(SessionKey.generate(), [_swap(router)])
    store = open_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    store.put_grant(grant)
    with ConsentServer(net, store=store) as server:
        answer = httpx.get(f"{server.url}/api/accounts/{owner.account}/sessions", timeout=60)
    assert answer.status_code == 200, answer.text
    (listed,) = answer.json()["sessions"]
    assert listed["session_id"] == "0x" + grant.session_id.hex()
    found = [w for w in listed["description"]["warnings"] if STANDING in w["text"]]
    assert [(w["level"], w["permission"]) for w in found] == [("danger", 0)], found
    assert router.address in found[0]["text"] and "unlimited USDC" in found[0]["text"], found


def test_an_approval_of_one_nft_is_shown_while_the_account_holds_that_token(
    nft: Any, router: Any, other: Any, net: Network, accounts: Any
) -> None:
    """ERC-721's ``approve(router, tokenId)``: the router may take that one NFT. Shown with the token's number while
    the account holds it and the router is its approved address; not once the account gave the token away (the
    approval goes with it), nor for a token whose approval went to another address."""
    holder = accounts[8]
    receipt = nft.safeMint(holder.address, sender=holder)
    (minted,) = [log.tokenId for log in receipt.decode_logs() if log.event_name == "Transfer"]
    nft.approve(router.address, minted, sender=holder)
    page = _page(net, holder.address, _swap(router))
    (found,) = [w.text for w in page.warnings if STANDING in w.text]
    assert f"an approval of token #{minted} of {nft.address}" in found, found
    nft.transferFrom(holder.address, other.address, minted, sender=holder)
    assert not [w for w in _page(net, holder.address, _swap(router)).warnings if STANDING in w.text]


class _Counting(Web3Chain):
    """A node that counts the log queries and calls asked of it."""

    asked: list[str]

    def get_logs(self, query: Any) -> Any:
        self.asked.append("eth_getLogs")
        return super().get_logs(query)

    def call(self, to: str, data: bytes, **options: Any) -> bytes:
        self.asked.append("eth_call")
        return super().call(to, data, **options)

    def block_timestamp(self) -> int:
        self.asked.append("eth_getBlockByNumber")
        return super().block_timestamp()


def test_the_check_costs_one_log_query_and_a_call_per_approval_logged(
    usdc: Any, nft: Any, router: Any, other: Any, net: Network, accounts: Any
) -> None:
    """An account that never approved a target costs one ``eth_getLogs``; one that did, that query and one call per
    approval its logs show (with the latest block, for Permit2's expirations), an approval logged twice asked once."""
    chain = net.chain
    assert isinstance(chain, Web3Chain)
    counting = _Counting(chain.w3)
    counting.asked = []
    holder = accounts[9]
    assert standing_approvals(counting, holder.address, [router.address, other.address]).found == ()
    assert counting.asked == ["eth_getLogs"]
    usdc.approve(router.address, 5, sender=holder)
    usdc.approve(router.address, 6, sender=holder)
    nft.setApprovalForAll(other.address, True, sender=holder)
    counting.asked = []
    found = standing_approvals(counting, holder.address, [router.address, other.address])
    assert {(a.spender, a.kind, a.amount) for a in found.found} == {
        (router.address, "allowance", 6),
        (other.address, "operator", None),
    }
    assert sorted(counting.asked) == ["eth_call", "eth_call", "eth_getBlockByNumber", "eth_getLogs"]


class _NoLogs(Web3Chain):
    """A node that refuses every ``eth_getLogs`` (a provider that is down, or has no log index)."""

    def get_logs(self, query: Any) -> Any:
        raise JsonRpcError("eth_getLogs", -32601, "the method eth_getLogs does not exist/is not available")


def test_a_provider_refusing_the_log_query_leaves_the_grant_working_with_a_note(
    net: Network, usdc: Any, router: Any, owner: Owner
) -> None:
    """A provider that cannot answer the log query does not break the grant: it is signed, and a warning says the
    check could not look (so the owner knows nothing was checked), pointing at the owner's line."""
    owner.execute(_approve(usdc, router, MAX)).wait()
    chain = net.chain
    assert isinstance(chain, Web3Chain)
    broken = Network(
        chain=_NoLogs(chain.w3),
        bundler=net.bundler,
        module=net.module,
        entry_point=net.entry_point,
        factory=net.factory,
    )
    same = broken.owner(owner.signer, owner.account)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        grant = same.grant(SessionKey.generate(), [_swap(router)])
    assert grant.session_id
    notes = [w for w in caught if "could not" in str(w.message) and "approv" in str(w.message)]
    assert len(notes) == 1, [str(w.message) for w in caught]
    assert issubclass(notes[0].category, TargetWarning)
    assert (notes[0].filename, notes[0].lineno) == (__file__, line)
    page = _page(broken, owner.account, _swap(router))
    assert any("could not" in w.text and "approv" in w.text for w in page.warnings), page.warnings


# --------------------------------------------------------------------------------------------------
# Permit2 allowances and a provider serving logs in chunks, on a real anvil
# --------------------------------------------------------------------------------------------------

_ON_ANVIL = """
pragma solidity 0.8.28;
contract PlainToken {
    event Approval(address indexed owner, address indexed spender, uint256 value);
    mapping(address => mapping(address => uint256)) public allowance;
    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }
    function decimals() external pure returns (uint8) { return 6; }
    function symbol() external pure returns (string memory) { return "USDC"; }
}
// what the check reads of Permit2's allowances (its interface: approve, allowance and their event), nothing more
contract AllowanceBook {
    event Approval(
        address indexed owner, address indexed token, address indexed spender, uint160 amount, uint48 expiration
    );
    struct Allowed { uint160 amount; uint48 expiration; uint48 nonce; }
    mapping(address => mapping(address => mapping(address => Allowed))) public allowance;
    function approve(address token, address spender, uint160 amount, uint48 expiration) external {
        Allowed storage allowed = allowance[msg.sender][token][spender];
        allowed.amount = amount;
        allowed.expiration = expiration;
        emit Approval(msg.sender, token, spender, amount, expiration);
    }
}
"""


class _Anvil:
    """Transactions from anvil's first dev account (the account whose approvals are looked for)."""

    def __init__(self, url: str) -> None:
        self.url = url
        with JsonRpcClient(url) as rpc:
            self.account = to_address(rpc.request("eth_accounts", [])[0])

    def send(self, to: str | None, data: bytes) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": self.account, "data": "0x" + data.hex(), "gas": hex(3_000_000)}
        if to is not None:
            tx["to"] = to
        with JsonRpcClient(self.url) as rpc:
            sent = rpc.request("eth_sendTransaction", [tx])
            receipt = None
            while receipt is None:  # mined at once, answered once the node has indexed it
                receipt = rpc.request("eth_getTransactionReceipt", [sent])
        assert receipt["status"] == "0x1", receipt
        return dict(receipt)

    def call(self, to: str, signature: str, types: list[str], values: list[Any]) -> None:
        self.send(to, keccak(signature.encode())[:4] + abi_encode(types, values))


@pytest.fixture(name="on_anvil", scope="module")
def on_anvil_fixture(anvil_url: str) -> tuple[_Anvil, str]:  # noqa: F811
    """The dev account, a token (USDC, 6 decimals) it holds, and Permit2's allowance book at Permit2's address."""
    import solcx

    built = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"a.sol": {"content": _ON_ANVIL}},
            "settings": {
                "outputSelection": {"*": {"*": ["evm.bytecode.object", "evm.deployedBytecode.object"]}}
            },
        },
        solc_version="0.8.28",
    )["contracts"]["a.sol"]
    node = _Anvil(anvil_url)
    with JsonRpcClient(anvil_url) as rpc:
        rpc.request(
            "anvil_setCode", [PERMIT2, "0x" + built["AllowanceBook"]["evm"]["deployedBytecode"]["object"]]
        )
    receipt = node.send(None, bytes.fromhex(built["PlainToken"]["evm"]["bytecode"]["object"]))
    return node, to_address(receipt["contractAddress"])


def test_a_permit2_allowance_to_the_target_is_found_while_it_and_the_token_s_approval_of_permit2_stand(
    on_anvil: tuple[_Anvil, str],
) -> None:
    """The account approved Permit2 on USDC and, through Permit2, a router for 500 USDC until far ahead: the
    router holds a standing allowance the ERC-20 logs do not show (its spender there is Permit2). It is found with
    its amount and expiration, and shown at the token's decimals; one that has expired, or a router of another
    address, is not; nor is the allowance once the account's approval of Permit2 is revoked."""
    node, usdc = on_anvil
    router, expired, other = (to_address("0x" + digits * 20) for digits in ("3a", "3b", "3c"))
    until = 2_000_000_000
    permit2 = "approve(address,address,uint160,uint48)"
    node.call(usdc, "approve(address,uint256)", ["address", "uint256"], [PERMIT2, MAX])
    types = ["address", "address", "uint160", "uint48"]
    node.call(PERMIT2, permit2, types, [usdc, router, 500 * 10**6, until])
    node.call(PERMIT2, permit2, types, [usdc, expired, 500 * 10**6, 1])
    with RpcChain(node.url) as chain:
        found = standing_approvals(chain, node.account, [router, expired, other])
        assert found.unread is None
        (approval,) = found.found
        assert (approval.spender, approval.token, approval.kind) == (router, usdc, "permit2")
        assert (approval.amount, approval.expiration) == (500 * 10**6, until)
        words = approval_words(approval, cached_contract_facts(chain))
        assert words.startswith(
            "a Permit2 allowance of 500 USDC (500,000,000 base units at the 6 decimals"
        ), words
        assert "2033-05-18" in words, words
        node.call(usdc, "approve(address,uint256)", ["address", "uint256"], [PERMIT2, 0])
        assert standing_approvals(chain, node.account, [router]).found == ()


def test_a_provider_that_serves_logs_in_chunks_is_read_newest_first_within_a_bounded_number_of_requests(
    on_anvil: tuple[_Anvil, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider refusing ranges over 3 blocks: the approvals' logs are read in chunks from the latest block
    back, halving the chunk it refuses, and all found; with fewer requests allowed than the history needs, the
    oldest blocks are left unread and the result says which, never that there was nothing."""
    from test_chain import _RangeCappedProxy

    node, usdc = on_anvil
    router = to_address("0x" + "3d" * 20)
    node.call(usdc, "approve(address,uint256)", ["address", "uint256"], [router, 7])
    for _ in range(6):  # later blocks, with nothing of the account's
        node.call(
            PERMIT2,
            "approve(address,address,uint160,uint48)",
            ["address"] * 2 + ["uint160", "uint48"],
            [usdc, usdc, 0, 0],
        )
    query = {"topics": ["0x" + APPROVAL_TOPIC.hex(), None, "0x" + "00" * 12 + router[2:].lower()]}
    proxy = _RangeCappedProxy(node.url, max_blocks=3)
    try:
        with RpcChain(proxy.url) as capped, RpcChain(node.url) as direct:
            whole = recent_logs(direct, query)
            read = recent_logs(capped, query)
            assert read.unread_to is None and len(read.logs) == len(whole.logs) == 1
            asked = proxy.ranges[1:]
            assert all(end - start + 1 <= 10_000 for start, end in asked)
            assert [end for _, end in asked] == sorted((end for _, end in asked), reverse=True), asked
            short = recent_logs(capped, query, max_requests=len(proxy.ranges) // 2)
            assert short.unread_to is not None and short.unread_to >= 0
    finally:
        proxy.stop()
