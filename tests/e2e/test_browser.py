"""The owner's side in a real browser (Debian's Chromium, driven by playwright) on anvil + Alto.

The wallet is an EIP-1193 provider injected into the page: it answers ``eth_requestAccounts`` with one of anvil's
unlocked dev accounts and forwards ``eth_chainId``, ``eth_signTypedData_v4`` and ``personal_sign`` to anvil,
which really signs. The owner reads the consent page and approves; the session sends an operation through
Alto; the dashboard shows the session, and the owner revokes it there; the key fails after that.

Screenshots: with ``KEYSCOPE_SCREENSHOTS=DIR`` (``make screenshots`` sets it to docs/images), the test writes
``consent-page.png`` and ``dashboard.png`` there; a normal run writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coincurve
import httpx
import pytest

from keyscope import Policy, SessionKey, arg, connect, function_call
from keyscope.consent import ConsentDeclinedError, ConsentServer, WalletAddress
from keyscope.consent.tokens import format_amount
from keyscope.erc7715 import did_key_of, grant_from_response
from keyscope.errors import BundlerRejectedError, SessionRevokedError, TargetWarning
from keyscope.hexutil import keccak, to_address
from keyscope.local import LocalStack
from keyscope.local.anvil import AnvilConfig, start_anvil
from keyscope.module import SessionStatus, read_session_status
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from keyscope.urls import mask_url
from support.permit_types import PERMIT_TYPES
from support.victims import deploy

pytestmark = pytest.mark.e2e

ETHER = 10**18
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = "<img src=x onerror=window.__pwned=1>"
WALLET_SCRIPT = """
window.ethereum = {
  isKeyscopeTestWallet: true,
  request: async ({ method, params }) => {
    const answer = JSON.parse(await window.keyscopeTestWallet(JSON.stringify({ method, params: params || [] })));
    if (answer.error) {
      const error = new Error(answer.error.message);
      error.code = answer.error.code;
      throw error;
    }
    return answer.result;
  },
};
"""


ENSURE_CHROMIUM = Path(__file__).resolve().parents[2] / "tools" / "ensure-chromium.sh"


def _find_chromium() -> str | None:
    return os.environ.get("KEYSCOPE_CHROMIUM") or shutil.which("chromium")


def _chromium() -> str:
    found = _find_chromium()
    if found is None:
        # `make test` ran tools/ensure-chromium.sh already; a bare `ape test` runs it here (it installs Debian's
        # chromium when it may: root, apt-get)
        done = subprocess.run([str(ENSURE_CHROMIUM)], capture_output=True, text=True, check=False)
        found = _find_chromium()
        if found is None:
            reason = (
                "Chromium is not installed and could not be: the browser tests need Debian's chromium (apt-get "
                "install chromium chromium-driver, which tools/ensure-chromium.sh does as root), or "
                f"KEYSCOPE_CHROMIUM set to a binary ({done.stderr.strip() or 'ensure-chromium.sh said nothing'})"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed: run tools/setup.sh (it is pinned in requirements.lock)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield launched
        launched.close()


class Wallet:
    """The injected EIP-1193 wallet: one of anvil's unlocked accounts; signing requests go to anvil."""

    FORWARDED = frozenset({"eth_chainId", "eth_signTypedData_v4", "personal_sign"})

    def __init__(self, rpc_url: str, address: str, *, signs_as: str | None = None) -> None:
        self.rpc_url = rpc_url
        self.address = address
        self.signs_as = signs_as  # a lying wallet: claims ``address``, signs typed data with this account
        self.asked: list[dict[str, Any]] = []

    def __call__(self, payload: str) -> str:
        request = json.loads(payload)
        self.asked.append(request)
        method = request["method"]
        if method in ("eth_requestAccounts", "eth_accounts"):
            return json.dumps({"result": [self.address]})
        if method not in self.FORWARDED:
            return json.dumps({"error": {"code": 4200, "message": f"the test wallet does not do {method}"}})
        params = request["params"]
        if method == "eth_signTypedData_v4" and self.signs_as is not None:
            params = [self.signs_as, *params[1:]]
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return json.dumps(httpx.post(self.rpc_url, json=body, timeout=30).json())

    def signed(self, method: str) -> list[list[Any]]:
        return [r["params"] for r in self.asked if r["method"] == method]


@pytest.fixture(scope="module")
def world(local_stack: LocalStack) -> Iterator[dict[str, Any]]:
    stack = local_stack
    usdc = deploy(stack, "NamedToken", ["string", "string", "uint8"], ["USD Coin", "USDC", 6])
    evil = deploy(
        stack, "NamedToken", ["string", "string", "uint8"], [EVIL, "<script>window.__pwned=2</script>", 18]
    )
    dev_accounts = stack.node.request("eth_accounts", [])
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    store = open_store("memory://")
    with ConsentServer(net, store=store) as server:
        yield {
            "stack": stack,
            "net": net,
            "store": store,
            "server": server,
            "usdc": usdc,
            "evil": evil,
            "wallet_address": dev_accounts[-1],
            "other_address": dev_accounts[-2],
        }


def _page(browser: Any, wallet: Wallet) -> Any:
    page = browser.new_page(viewport={"width": 980, "height": 1000})
    page.expose_function("keyscopeTestWallet", wallet)
    page.add_init_script(WALLET_SCRIPT)
    return page


def _nfts(stack: LocalStack, holder: str) -> int:
    data = keccak(b"balanceOf(address)")[:4] + bytes(12) + bytes.fromhex(holder[2:])
    return int(stack.node.request("eth_call", [{"to": stack.nft, "data": "0x" + data.hex()}, "latest"]), 16)


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("KEYSCOPE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_consent_use_dashboard_revoke_in_a_real_browser(browser: Any, world: dict[str, Any]) -> None:
    stack, net, server = world["stack"], world["net"], world["server"]
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    stack.fund(owner.account, ETHER)
    shop = to_address("0x" + "5b" * 20)
    key = SessionKey.generate()
    permissions = [
        Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account], calls=3),
        Policy.call(
            world["usdc"],
            "transfer(address to, uint256 amount)",
            rules=[arg("to") == shop, arg("amount") <= 2_500_000],
        ),
    ]
    consent = server.request_grant(owner.prepare_grant(key, permissions, valid_for=3600))

    # the consent page: the words a person reads
    page = _page(browser, wallet)
    page.goto(consent.url)
    page.wait_for_selector("li.permission")
    functions = page.locator("code.function").all_text_contents()
    assert functions == ["safeMint(address to)", "transfer(address to, uint256 amount)"]
    rules = page.locator("li.rule").all_text_contents()
    assert rules[0] == f"to (address) must be {owner.account} (this account)"
    assert rules[1] == f"to (address) must be {shop}"
    assert rules[2] == (
        "amount (uint256) must be at most 2.5 USDC (2,500,000 base units at the 6 decimals the token reports now)"
    )
    labels = page.locator("p.contract").all_text_contents()
    assert "a token that calls itself USD Coin (USDC)" in labels[1]
    assert page.locator("p.value").first.text_content() == "no ETH may be sent with these calls"
    window = page.locator("dd.window").text_content() or ""
    assert re.match(r"Valid from now, until .+ \(.+\)$", window)  # local time, with the zone
    assert page.locator("dd.gas").text_content() == (
        "One operation may cost at most 0.05 ETH in gas, and no gas budget bounds all operations together"
    )
    assert page.locator("dd.cosigner").text_content() == "none: the session key signs alone"
    assert page.locator("li.warning").count() == 0  # nothing dangerous here
    _screenshot(page, "consent-page.png")

    page.click("#approve")
    page.wait_for_selector("body[data-state=granted]")
    assert "Granted: session 0x" + consent.wait(5).session_id.hex() in (page.text_content("#status") or "")
    grant = consent.wait(0)
    (signed,) = wallet.signed("eth_signTypedData_v4")
    assert signed[0] == wallet.address and json.loads(signed[1]) == grant.typed_data

    # the session key sends an operation through Alto (its first: it creates the account, enables the session)
    session = net.session(grant, key)
    receipt = session.execute(stack.nft, "safeMint(address)", owner.account).wait()
    assert receipt.success and _nfts(stack, owner.account) == 1

    # the dashboard: the session, its words, its usage and its time left; revoked from the wallet
    page.goto(server.dashboard_url(owner.account))
    card = page.locator(f"li.session[data-session='0x{grant.session_id.hex()}']")
    card.wait_for()
    assert card.get_attribute("data-status") == "active"
    assert card.locator("code.function").all_text_contents() == functions
    # the time left of its one-hour window: 1 h, or minutes once the steps above took some of it (minutes on a
    # loaded machine)
    time_left = card.locator(".time-left").text_content() or ""
    assert re.fullmatch(r"(1 h 0 min|[1-5]?\d min \d+ s) left", time_left), time_left
    assert card.locator("ul.usage li").all_text_contents() == [
        "1 operation sent",
        f"{format_amount(receipt.actual_gas_cost, 18, 'ETH')} paid in gas (by the account or its paymaster)",
        f"limit 0 ('calls of safeMint(address) on {stack.nft}', the dapp's unsigned label): 1 of 3 calls used over "
        "the session's life, 2 calls left",
    ]
    _screenshot(page, "dashboard.png")

    card.locator("button.revoke").click()
    page.wait_for_selector(
        f"li.session[data-session='0x{grant.session_id.hex()}'][data-status=revoked]", timeout=60_000
    )
    assert (page.text_content("#status") or "").startswith("Done: revoke session 0x" + grant.session_id.hex())
    # a revoked session has no time left, whatever its window says, and the clock's tick does not bring it back
    revoked_card = page.locator(f"li.session[data-session='0x{grant.session_id.hex()}']")
    assert revoked_card.locator(".time-left").text_content() == "none: revoked"
    page.wait_for_timeout(1_500)
    assert revoked_card.locator(".time-left").text_content() == "none: revoked"
    (signed_hash,) = wallet.signed("personal_sign")
    assert signed_hash[1] == wallet.address
    assert read_session_status(net, grant) is SessionStatus.REVOKED
    assert world["store"].is_revoked(grant.session_id)

    # the key fails after that: the SDK refuses it, and the module too when sent anyway
    with pytest.raises(SessionRevokedError):
        net.session(grant, key).execute(stack.nft, "safeMint(address)", owner.account)
    # a sender unaware of the revocation enables the session again with the owner's signature: the module refuses
    blind = net.session(grant, key, verify_on_chain=False)
    with pytest.raises(BundlerRejectedError) as refused:
        blind.execute(stack.nft, "safeMint(address)", owner.account)
    assert f"SessionIsRevoked(sessionId=0x{grant.session_id.hex()})" in str(refused.value)
    assert _nfts(stack, owner.account) == 1
    page.close()


def _granted_by(wallet: Wallet, request: Any) -> Any:
    """The grant of ``request``, its typed data signed by the wallet's anvil account (no page in between)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_signTypedData_v4",
        "params": [wallet.address, json.dumps(request.typed_data)],
    }
    return request.complete(httpx.post(wallet.rpc_url, json=body, timeout=30).json()["result"])


def test_revoke_every_session_from_the_dashboard(browser: Any, world: dict[str, Any]) -> None:
    stack, net, server, store = world["stack"], world["net"], world["server"], world["store"]
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    stack.fund(owner.account, ETHER)
    mint = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    used_key, unused_key = SessionKey.generate(), SessionKey.generate()
    used = _granted_by(wallet, owner.prepare_grant(used_key, [mint], valid_for=3600))
    unused = _granted_by(wallet, owner.prepare_grant(unused_key, [mint], valid_for=3600))
    store.put_grant(used)
    store.put_grant(unused)
    assert net.session(used, used_key).execute(stack.nft, "safeMint(address)", owner.account).wait().success

    page = _page(browser, wallet)
    page.goto(server.dashboard_url(owner.account))
    page.wait_for_selector("li.session[data-status=active]")
    statuses = {
        s: page.locator(f"li.session[data-session='0x{s}']").get_attribute("data-status")
        for s in (used.session_id.hex(), unused.session_id.hex())
    }
    assert statuses == {used.session_id.hex(): "active", unused.session_id.hex(): "not yet enabled"}
    usage = page.locator(f"li.session[data-session='0x{unused.session_id.hex()}'] ul.usage li")
    assert usage.all_text_contents() == ["No operations sent yet"]

    page.click("#revoke-all")
    page.wait_for_selector("#status.granted, #status.error", timeout=60_000)
    assert (page.text_content("#status") or "").startswith(f"Done: revoke every session of {owner.account}")
    page.wait_for_selector("#revoke-all[disabled]")
    cards = page.locator("li.session")
    assert [cards.nth(i).get_attribute("data-status") for i in range(cards.count())] == ["invalidated"] * 2
    assert read_session_status(net, used) is SessionStatus.INVALIDATED
    assert store.is_revoked(used.session_id) and store.is_revoked(unused.session_id)

    # neither key works, even sent by one unaware of the revocation: the grants' owner signatures were made for the
    # account's old epoch, so the module refuses to enable either again
    for grant, key in ((used, used_key), (unused, unused_key)):
        blind = net.session(grant, key, verify_on_chain=False)
        with pytest.raises(BundlerRejectedError, match="InvalidOwnerSignature"):
            blind.execute(stack.nft, "safeMint(address)", owner.account)
    assert _nfts(stack, owner.account) == 1
    page.close()


def test_an_expired_session_is_revoked_from_its_card(browser: Any, world: dict[str, Any]) -> None:
    """An expired session keeps its permission slots until it is revoked (a new grant of the same key and call is
    refused until then), so its card offers the revocation, as for a live one."""
    stack, net, server, store = world["stack"], world["net"], world["server"], world["store"]
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    stack.fund(owner.account, ETHER)
    mint = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    key = SessionKey.generate()
    grant = _granted_by(wallet, owner.prepare_grant(key, [mint], valid_for=12))
    store.put_grant(grant)
    assert net.session(grant, key).execute(stack.nft, "safeMint(address)", owner.account).wait().success
    # the window ends on the chain's clock: blocks mined at the wall clock's time pass it
    while (
        int(stack.node.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        <= grant.valid_until
    ):
        time.sleep(1)
        stack.node.request("evm_mine", [])
    assert read_session_status(net, grant) is SessionStatus.EXPIRED

    page = _page(browser, wallet)
    page.goto(server.dashboard_url(owner.account))
    card = page.locator(f"li.session[data-session='0x{grant.session_id.hex()}']")
    page.wait_for_selector(f"li.session[data-session='0x{grant.session_id.hex()}'][data-status=expired]")
    assert card.locator(".time-left").text_content() == "expired"
    assert card.locator("button.revoke").is_enabled()
    assert page.locator("#revoke-all").is_enabled()
    card.locator("button.revoke").click()
    page.wait_for_selector(
        f"li.session[data-session='0x{grant.session_id.hex()}'][data-status=revoked]", timeout=60_000
    )
    assert (page.text_content("#status") or "").startswith("Done: revoke session 0x" + grant.session_id.hex())
    assert card.locator("button.revoke").is_disabled()
    assert read_session_status(net, grant) is SessionStatus.REVOKED
    assert store.is_revoked(grant.session_id)
    page.close()


def test_a_malicious_symbol_or_label_cannot_inject_script(browser: Any, world: dict[str, Any]) -> None:
    stack, net, server = world["stack"], world["net"], world["server"]
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    # the argument's label travels unsigned with the grant: the dapp (or whoever serves the request) writes it
    permission = Policy.call(
        world["evil"], "transfer(address to, uint256 amount)", rules=[arg("amount") <= 10**18]
    )
    rule = permission.rules[0].model_copy(update={"name": EVIL})
    evil_permission = permission.model_copy(update={"rules": (rule,)})
    with pytest.warns(TargetWarning):  # no rule on the recipient: said (attack 431)
        consent = server.request_grant(
            owner.prepare_grant(SessionKey.generate(), [evil_permission], valid_for=600)
        )
    page = _page(browser, wallet)
    page.goto(consent.url)
    page.wait_for_selector("li.permission")
    grant_area = page.locator("#grant")
    text = grant_area.text_content() or ""
    assert EVIL in text and "<script>window.__pwned=2</script>" in text  # shown, as text
    assert grant_area.locator("img, script").count() == 0  # and nothing of it became markup
    assert page.evaluate("window.__pwned") is None
    page.close()


def test_a_token_s_reordering_characters_and_an_endless_window_read_as_what_they_are(
    browser: Any, world: dict[str, Any]
) -> None:
    """A token whose symbol opens with a right-to-left override (the rest of its line would read backwards) and a
    session ending at the largest validUntil (2**48 - 1: the browser's local time of it was "Invalid Date", and no
    warning said the session never ends)."""
    stack, net, server = world["stack"], world["net"], world["server"]
    flipped = deploy(stack, "NamedToken", ["string", "string", "uint8"], ["\u202enioC DSU", "\u202eCDSU", 6])
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    permission = Policy.call(
        flipped, "transfer(address to, uint256 amount)", rules=[arg("amount").one_of(1, 10**12)]
    )
    # the SDK refuses such a time when it builds a window, and ERC-7715 requests refuse it as an expiry (milliseconds,
    # most often); a grant request built elsewhere (another SDK, by hand) may still hold it, and the page must say
    # what it is
    endless = owner.session_for(SessionKey.generate(), [permission], never_expires=True)
    with pytest.warns(TargetWarning):  # no rule on the recipient: said (attack 431)
        consent = server.request_grant(
            owner.request_for(endless.model_copy(update={"valid_until": 2**48 - 1}))
        )
    page = _page(browser, wallet)
    page.goto(consent.url)
    page.wait_for_selector("li.permission")
    text = page.locator("#grant").text_content() or ""
    assert "\u202e" not in text
    assert (
        "must be one of: 0.000001 <U+202E>CDSU (1 base unit), 1,000,000 <U+202E>CDSU (1,000,000,000,000 base units)"
        in text
    )
    window = page.locator("dd.window").text_content() or ""
    assert "Invalid Date" not in window and "8921556" in window
    dangers = page.locator("li.warning.danger").all_text_contents()
    assert any("in effect it never expires" in danger for danger in dangers), dangers
    page.close()


def test_a_page_of_another_site_cannot_swap_the_consent_tab_it_opened_for_another_request(
    browser: Any, world: dict[str, Any]
) -> None:
    """A dapp's page opens the consent page of a harmless request (window.open), and once the owner has read it
    navigates that tab, through the window it holds, to the consent page of another request of the same server
    (an unbounded USDC allowance to the dapp): same address but for the id, same look, and the owner's next click
    approves what they never read. The pages must cut the opener off (Cross-Origin-Opener-Policy), so that the tab
    the dapp opened is out of its reach."""
    stack, net, server = world["stack"], world["net"], world["server"]
    owner = net.owner(WalletAddress(world["wallet_address"]), salt=secrets.randbits(32))
    dapp = to_address("0x" + "da" * 20)
    harmless = server.request_grant(
        owner.prepare_grant(
            SessionKey.generate(),
            [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])],
            valid_for=600,
        )
    )
    with pytest.warns(TargetWarning):  # no rule caps the amount: an UNLIMITED allowance, said (attack 431)
        drain = server.request_grant(
            owner.prepare_grant(
                SessionKey.generate(),
                [
                    Policy.call(
                        world["usdc"],
                        "approve(address spender, uint256 amount)",
                        rules=[arg("spender") == dapp],
                    )
                ],
                valid_for=600,
            )
        )
    context = browser.new_context()
    try:
        context.route(
            "http://dapp.example/**",
            lambda route: route.fulfill(
                status=200, content_type="text/html", body="<!doctype html><title>dapp</title>"
            ),
        )
        site = context.new_page()
        site.goto("http://dapp.example/")
        with site.expect_popup() as opened:
            site.evaluate("url => { window.consentTab = window.open(url); }", harmless.url)
        tab = opened.value
        tab.wait_for_selector("li.permission")
        assert tab.locator("code.function").all_text_contents() == ["safeMint(address to)"]
        # the owner has read it; the dapp's page swaps the tab for the other request
        site.evaluate("url => { try { window.consentTab.location.href = url; } catch (e) {} }", drain.url)
        tab.wait_for_timeout(1500)
        tab.wait_for_load_state()
        assert tab.url == harmless.url, "the dapp's page navigated the consent tab to another request"
        assert tab.locator("code.function").all_text_contents() == ["safeMint(address to)"]
        assert site.evaluate("() => window.consentTab.closed")  # the dapp holds no live handle on the tab
    finally:
        context.close()


def test_the_consent_page_shows_what_a_session_may_sign_and_its_co_signer(
    browser: Any, world: dict[str, Any]
) -> None:
    """A grant that lets the session sign EIP-2612 permits (a domain name of markup, since the dapp picks it) and
    sign in to a website, co-signed: the page shows each, from the signed fields, as text, with a danger warning;
    the wallet signs the grant as usual."""
    stack, net, server = world["stack"], world["net"], world["server"]
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    stack.fund(owner.account, ETHER)
    router = to_address("0x" + "7e" * 20)
    co_signer = to_address("0x" + "c0" * 20)
    permit = Policy.typed_data(
        {
            "name": EVIL,
            "version": "1",
            "chainId": net.chain_id,
            "verifyingContract": to_address(world["usdc"]),
        },
        PERMIT_TYPES,
        "Permit",
        [arg("spender") == router, arg("value") <= 5_000_000],
        label="a harmless login",  # unsigned: never shown
    )
    mint = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.prepare_grant(
        SessionKey.generate(),
        [mint],
        valid_for=600,
        typed_data=[permit],
        sign_in=["app.example.com"],
        co_signer=co_signer,
    )
    consent = server.request_grant(grant)
    page = _page(browser, wallet)
    page.goto(consent.url)
    page.wait_for_selector("li.signing-permission")
    lines = page.locator("li.signing-permission").all_text_contents()
    assert lines == [
        f"May sign Permit messages as the account (EIP-712 typed data of name '{EVIL}', version '1', chain "
        f"{net.chain_id}, contract {to_address(world['usdc'])}): spender must be {router}; value must be at most "
        "5,000,000",
        "May sign in to app.example.com as the account (an EIP-4361 message naming app.example.com and the account)",
    ]
    assert (page.locator("dd.cosigner").text_content() or "").startswith(f"{co_signer} must also sign every")
    dangers = page.locator("li.warning[data-level=danger]").all_text_contents()
    assert any("The session may sign Permit messages as the account" in text for text in dangers)
    assert "a harmless login" not in (page.locator("#grant").text_content() or "")
    assert (
        page.locator("#grant").locator("img, script").count() == 0 and page.evaluate("window.__pwned") is None
    )
    page.click("#approve")
    page.wait_for_selector("body[data-state=granted]")
    assert consent.wait(5).session_id == grant.session_id
    page.close()


def test_the_backend_refuses_a_signature_by_another_key(browser: Any, world: dict[str, Any]) -> None:
    stack, net, server = world["stack"], world["net"], world["server"]
    # the wallet says it is the owner, but another key signs: the page cannot tell, the backend must
    wallet = Wallet(stack.rpc_url, world["wallet_address"], signs_as=world["other_address"])
    owner = net.owner(WalletAddress(wallet.address), salt=secrets.randbits(32))
    permission = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    consent = server.request_grant(owner.prepare_grant(SessionKey.generate(), [permission], valid_for=600))
    page = _page(browser, wallet)
    page.goto(consent.url)
    page.wait_for_selector("body[data-state=waiting]")
    page.click("#approve")
    # the page's answer either way (its CSP forbids playwright's wait_for_function, which evaluates a string)
    page.wait_for_selector("#status.error, body[data-state=granted]")
    status = page.text_content("#status") or ""
    assert status.startswith("Not granted: the signature does not grant session")
    assert f"recovers to {to_address(world['other_address'])}" in status
    assert (
        consent.state == "waiting" and consent.grant is None and not world["store"].list_grants(owner.account)
    )
    assert len(wallet.signed("eth_signTypedData_v4")) == 1  # it was asked, and its signature refused

    page.click("#decline")
    page.wait_for_selector("body[data-state=declined]")
    with pytest.raises(ConsentDeclinedError):
        consent.wait(0)
    page.close()


def _consent_command(stack: LocalStack, requests: Path, out: Path) -> tuple[subprocess.Popen[str], str]:
    """``keyscope consent REQUESTS`` running, and the consent page's address it printed."""
    program = [str(Path(sys.executable).with_name("keyscope")), "consent", str(requests), "--out", str(out)]
    connection = ["--node", stack.rpc_url, "--bundler", stack.bundler_url, "--module", stack.module]
    command = subprocess.Popen(
        [*program, *connection, "--factory", stack.factory, "--timeout", "120"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert command.stderr is not None
    for line in command.stderr:
        if line.startswith("open the consent page in the owner's browser: "):
            return command, line.rsplit(" ", 1)[1].strip()
    command.wait(10)
    raise AssertionError(f"keyscope consent printed no page address (exit code {command.returncode})")


def test_an_erc7715_request_granted_on_the_consent_page_of_the_command(
    browser: Any, world: dict[str, Any], tmp_path: Path
) -> None:
    stack, net = world["stack"], world["net"]
    wallet = Wallet(stack.rpc_url, world["wallet_address"])
    key = SessionKey.generate()
    did = did_key_of(coincurve.PrivateKey(key.private_key).public_key.format(compressed=True))
    params = [
        {
            "chainId": hex(stack.chain_id),
            "expiry": stack.timestamp() + 3600,
            "signer": {"type": "key", "data": {"id": did}},
            "permission": {
                "type": "contract-call",
                "data": {
                    "address": world["usdc"],
                    "function": "approve(address spender, uint256 amount)",
                    "rules": [{"arg": "amount", "op": "<=", "value": "0x" + "f" * 64}],
                },
            },
            "policies": [{"type": "gas-cost-per-operation", "data": {"limit": hex(10**16)}}],
        }
    ]
    requests, out = tmp_path / "requests.json", tmp_path / "responses.json"
    requests.write_text(json.dumps(params))
    command, url = _consent_command(stack, requests, out)
    try:
        page = _page(browser, wallet)
        page.goto(url)
        page.wait_for_selector("li.permission")
        dangers = page.locator("li.warning[data-level=danger]").all_text_contents()
        assert any("may approve ANY spender" in text for text in dangers)
        assert any("UNLIMITED allowance" in text for text in dangers)
        shown = page.text_content("#grant") or ""
        assert "your account: the keyscope account of the wallet you connect" in shown
        # the request names no account: the zero address standing for it in the description is not shown
        assert "0x" + "00" * 20 not in shown and "not named by the request" in shown, shown
        page.click("#approve")
        page.wait_for_selector("body[data-state=granted]")
        page.close()
        assert command.wait(60) == 0
    finally:
        command.kill()
        command.wait()

    # the command wrote the PermissionResponse list; its context carries the grant, signed by the wallet
    (response,) = json.loads(out.read_text())
    grant = grant_from_response(response)
    assert response["address"] == grant.account and grant.session_key == key.address
    assert response["chainId"] == hex(stack.chain_id) and grant.session.max_gas_cost == 10**16
    (signed,) = wallet.signed("eth_signTypedData_v4")
    assert signed[0] == wallet.address and json.loads(signed[1]) == grant.typed_data
    # and the grant works: the session key approves a spender through Alto (its first operation creates the account)
    stack.fund(grant.account, ETHER)
    spender = to_address("0x" + "5c" * 20)
    receipt = net.session(grant, key).execute(world["usdc"], "approve(address,uint256)", spender, 7).wait()
    assert receipt.success


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_while_the_consent_command_waits_says_nothing_was_granted_or_written(
    world: dict[str, Any], tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C while ``keyscope consent`` waits for the owner: it printed click's bare "Aborted!" and exited 1,
    saying nothing of the page or the responses file. SIGTERM (a service manager's stop, ``kill``) ended it silently,
    by the signal; it now ends it as Ctrl-C does."""
    stack = world["stack"]
    params = [
        {
            "chainId": hex(stack.chain_id),
            "expiry": stack.timestamp() + 3600,
            "signer": {"type": "key", "data": {"id": did_key_of(coincurve.PrivateKey().public_key.format())}},
            "permission": {
                "type": "contract-call",
                "data": {"address": stack.nft, "function": "safeMint(address to)"},
            },
        }
    ]
    requests, out = tmp_path / "requests.json", tmp_path / "responses.json"
    requests.write_text(json.dumps(params))
    command, url = _consent_command(stack, requests, out)
    try:
        assert httpx.get(url, timeout=10).status_code == 200  # the page is served until the interruption
        command.send_signal(signum)
        assert command.wait(30) == 130
        assert command.stderr is not None
        said = command.stderr.read()
    finally:
        command.kill()
        command.wait()
    assert "interrupted before the owner granted" in said and "no response was written" in said, said
    assert "Traceback" not in said and "Aborted!" not in said, said
    assert not out.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=5)


def test_the_server_refuses_foreign_hosts_and_forms(world: dict[str, Any]) -> None:
    server = world["server"]
    with httpx.Client() as client:
        rebound = client.get(
            server.url + "/api/accounts/" + "0x" + "11" * 20 + "/sessions", headers={"Host": "evil.example"}
        )
        assert rebound.status_code == 421
        form = client.post(
            server.url + "/api/consent/" + "a" * 24 + "/decline",
            content=b"x=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415
        page = client.get(server.url + "/consent/" + "a" * 24)
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"


def test_the_commands_refuse_a_bundler_of_another_chain(world: dict[str, Any], tmp_path: Path) -> None:
    """``keyscope dashboard`` and ``keyscope consent`` ask the bundler its chain before serving a page: a node of
    chain 31338 with the local stack's bundler (chain 31337) stops the command with both chains named."""
    stack: LocalStack = world["stack"]
    anvil, node = start_anvil(AnvilConfig(chain_id=stack.chain_id + 1), tmp_path / "anvil.log")
    try:
        links = ["--node", node, "--bundler", stack.bundler_url, "--module", stack.module]
        requests = tmp_path / "requests.jsonl"
        request = {
            "chainId": hex(stack.chain_id + 1),  # the node's chain: the requests are fine, the bundler is not
            "expiry": 2_000_000_000,
            "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
            "permission": {
                "type": "contract-call",
                "data": {"address": stack.nft, "function": "safeMint(address)"},
            },
            "policies": [],
        }
        requests.write_text(json.dumps([request]))
        program = str(Path(sys.executable).with_name("keyscope"))
        for command in (["dashboard", "0x" + "ab" * 20], ["consent", str(requests)]):
            try:  # a command that went on would serve its page until stopped
                run = subprocess.run(
                    [program, *command, *links],
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    timeout=60,
                )
            except subprocess.TimeoutExpired:
                raise AssertionError(f"keyscope {command[0]} served a page for two chains") from None
            said = " ".join(run.stderr.split())
            assert run.returncode != 0, said
            assert f"serves chain {stack.chain_id}, but the node" in said, said
            assert f"is chain {stack.chain_id + 1}: give a node and a bundler of the same chain" in said, said
            assert "Traceback" not in run.stderr
    finally:
        anvil.stop()


def test_consent_requests_for_another_chain_or_a_past_expiry_leave_no_store_behind(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Requests the node's chain cannot serve (another chain, an expiry already past) are refused before the store
    is opened: no store is set up at --store for a grant that can never come."""
    stack: LocalStack = world["stack"]
    links = ["--node", stack.rpc_url, "--bundler", stack.bundler_url, "--module", stack.module]
    store = tmp_path / "sessions.db"
    program = str(Path(sys.executable).with_name("keyscope"))
    request = {
        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
        "permission": {
            "type": "contract-call",
            "data": {"address": stack.nft, "function": "safeMint(address)"},
        },
        "policies": [],
    }
    for fields, said in (
        (
            {"chainId": hex(stack.chain_id + 1), "expiry": 2_000_000_000},
            f"the requests are for chain {stack.chain_id + 1}",
        ),
        (
            {"chainId": hex(stack.chain_id), "expiry": 1000},
            "the requests' expiry 1000 is the second the session must have ended by, so its last valid second 999 "
            "(1970-01-01 00:16:39 UTC) is already",
        ),
    ):
        requests = tmp_path / "requests.json"
        requests.write_text(json.dumps([{**request, **fields}]))
        run = subprocess.run(
            [program, "consent", str(requests), *links, "--store", f"sqlite:///{store}"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert run.returncode == 1 and said in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert not store.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["requests.json"]


@pytest.mark.parametrize(
    ("option", "what"), [("--module", "session module"), ("--factory", "account factory")]
)
def test_the_commands_refuse_a_module_or_factory_without_code(
    world: dict[str, Any], option: str, what: str, tmp_path: Path
) -> None:
    """Once served: a dashboard (or consent page) whose every session read as "no module" (a chain reset, a
    mistyped address), with a node and a bundler that are right."""
    stack: LocalStack = world["stack"]
    codeless = to_address("0x" + "12" * 20)
    addresses = {"--module": stack.module, "--factory": stack.factory, option: codeless}
    links = [
        "--node",
        stack.rpc_url,
        "--bundler",
        stack.bundler_url,
        *(w for pair in addresses.items() for w in pair),
    ]
    program = str(Path(sys.executable).with_name("keyscope"))
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    open_store(store).close()  # the dashboard reads an existing store only
    try:  # a command that went on would serve its page until stopped
        run = subprocess.run(
            [program, "dashboard", "0x" + "ab" * 20, *links, "--store", store],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"keyscope dashboard served a page with a {what} without code") from None
    said = " ".join(run.stderr.split())
    assert run.returncode == 1 and "Traceback" not in run.stderr, said
    assert said == (
        f"error: no contract at the {what} address {codeless} on chain {stack.chain_id} (node {stack.rpc_url}): "
        f"check {option} (or --deployments) and --node, or deploy keyscope there"
    )


def test_the_dashboard_says_there_is_no_store_in_this_folder_once_it_serves(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Without --store, in a folder nothing was granted from, the dashboard serves the sessions the module's events
    name and says that there is no store (the notice once came before any usage error, which it then hid)."""
    stack: LocalStack = world["stack"]
    program = str(Path(sys.executable).with_name("keyscope"))
    links = ["--node", stack.rpc_url, "--bundler", stack.bundler_url, "--module", stack.module]
    server = subprocess.Popen(
        [program, "dashboard", "0x" + "ab" * 20, *links, "--port", "0"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines = [server.stderr.readline(), server.stderr.readline()]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert lines[0].startswith("no session store at sqlite:///.keyscope/sessions.db (the default"), lines
    assert lines[1].startswith("the sessions of 0x"), lines
    assert list(tmp_path.iterdir()) == []  # no store set up


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_on_the_dashboard_command_says_it_stopped_and_what_was_written(
    world: dict[str, Any], tmp_path: Path, signum: signal.Signals
) -> None:
    """docs/browser.md: ``keyscope dashboard`` serves until Ctrl-C. Ctrl-C ended it silently with exit code 0, as
    if it had finished, saying nothing of the page or of the store it marks revocations in; ``keyscope consent``
    says what was (not) written and exits 130. SIGTERM ended it silently, by the signal, its store left open; it
    now ends it as Ctrl-C does."""
    stack: LocalStack = world["stack"]
    program = str(Path(sys.executable).with_name("keyscope"))
    links = ["--node", stack.rpc_url, "--bundler", stack.bundler_url, "--module", stack.module]
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    open_store(store).close()  # the dashboard reads an existing store only
    server = subprocess.Popen(
        [program, "dashboard", "0x" + "ab" * 20, *links, "--store", store, "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert line.startswith("the sessions of 0x"), line
        url = line.split(": ", 1)[1].split(" ", 1)[0]
        assert httpx.get(url, timeout=10).status_code == 200  # served until the interruption
        server.send_signal(signum)
        assert server.wait(30) == 130
        said = " ".join(server.stderr.read().split())
    finally:
        server.kill()
        server.wait()
    assert said.startswith("interrupted: the dashboard stopped and its page is closed; nothing was lost"), (
        said
    )
    assert f"every revocation it saw included is marked in the session store {mask_url(store)}" in said, said
    assert "Run the command again" in said and "Traceback" not in said and "Aborted!" not in said, said
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=5)


def test_the_dashboard_command_asks_no_signature_of_a_revocation_over_the_owner_s_cap(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """``KEYSCOPE_OWNER_MAX_GAS_COST`` is the owner's cap on what one of their operations may cost as the bundler prices
    it (the wallet signs only its hash, and a bundler is paid the preVerificationGas and priority fee it pads). It
    bound ``keyscope revoke`` and the scripts, but ``keyscope dashboard`` (and ``keyscope consent``, which serves the
    same revocation API) made its server with the default cap of 0.1 ether: an owner who had lowered the cap, not
    trusting the bundler, was asked to sign a revocation priced up to that default."""
    stack, net = world["stack"], world["net"]
    owner = net.owner(LocalSigner.generate(), salt=secrets.randbits(32))
    stack.fund(owner.account, ETHER)
    owner.execute(function_call(stack.nft, "safeMint(address)", owner.account)).wait()  # the account exists
    program = str(Path(sys.executable).with_name("keyscope"))
    links = ["--node", stack.rpc_url, "--bundler", stack.bundler_url, "--module", stack.module]
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    open_store(store).close()  # the dashboard reads an existing store only
    server = subprocess.Popen(
        [program, "dashboard", owner.account, *links, "--factory", stack.factory, "--store", store],
        env={**os.environ, "KEYSCOPE_OWNER_MAX_GAS_COST": "1"},  # 1 wei: no operation fits
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        assert line.startswith(f"the sessions of {owner.account}: http://"), line
        base = line.split(": ", 1)[1].split("/sessions/", 1)[0]
        answer = httpx.post(f"{base}/api/accounts/{owner.account}/revoke", json={"all": True}, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer.status_code == 400, answer.text
    assert "over the owner's cap of 1 wei; nothing was signed or sent" in answer.json()["error"], answer.text


# -- the backend example of docs/browser.md ---------------------------------------------------------------

BROWSER_DOC = Path(__file__).resolve().parents[2] / "docs" / "browser.md"


def test_the_backend_example_of_the_docs_runs_as_written(world: dict[str, Any]) -> None:
    """docs/browser.md's block for a dapp's backend, as written: the owner's part (what the consent page's script
    does) made over the page's own API, with one of anvil's unlocked accounts signing the typed data as a wallet."""
    stack = world["stack"]
    owner_address = stack.node.request("eth_accounts", [])[-3]  # a wallet no other test of the module uses
    text = BROWSER_DOC.read_text()
    code = re.search(r"## For a dapp's backend\n\n```python\n(.*?)```", text, re.S)
    assert code, "docs/browser.md has no Python block under 'For a dapp's backend'"
    seen: list[str] = []

    def send_user_to(
        url: str,
    ) -> None:  # the owner's browser: connect, sign with the wallet, post the signature
        seen.append(url)
        base, consent_id = url.split("/consent/")
        connected = httpx.post(
            f"{base}/api/consent/{consent_id}/connect",
            json={"address": owner_address, "chainId": hex(stack.chain_id)},
        ).json()
        signature = stack.node.request(
            "eth_signTypedData_v4", [owner_address, json.dumps(connected["typedData"])]
        )
        httpx.post(
            f"{base}/api/consent/{consent_id}/signature", json={"signature": signature}
        ).raise_for_status()

    scope: dict[str, Any] = {
        "NODE": stack.rpc_url,
        "BUNDLER": stack.bundler_url,
        "MODULE": stack.module,
        "FACTORY": stack.factory,
        "nft": stack.nft,
        "users_wallet_address": owner_address,
        "store": open_store("memory://"),
        "send_user_to": send_user_to,
    }
    exec(compile(code.group(1), "docs/browser.md (backend)", "exec"), scope)
    grant, owner = scope["grant"], scope["owner"]
    assert len(seen) == 1 and "/consent/" in seen[0]
    assert grant.account == owner.account and grant.session_key == scope["key"].address
    assert scope["store"].get_grant(grant.session_id) == grant
    assert scope["dashboard"].endswith("/sessions/" + grant.account)
    stack.fund(grant.account, ETHER)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    assert (
        net.session(grant, scope["key"]).execute(stack.nft, "safeMint(address)", owner.account).wait().success
    )
