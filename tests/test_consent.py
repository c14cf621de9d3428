"""The words of a grant and its warnings, read against real contracts on ape's py-evm chain: token amounts with
the decimals the token says, the rule phrases, and a warning for each dangerous grant (and none for a careful
one)."""

from __future__ import annotations

import pytest

from conftest import KIND
from keyscope import ENTRY_POINT_V07, ENTRY_POINT_V08, Policy, arg
from keyscope.consent import ConsentServer, GrantDescription, format_amount
from keyscope.consent.tokens import contract_facts, module_checker
from keyscope.hexutil import keccak, to_address
from keyscope.session import Permission, Rule, Session
from keyscope.signing import LocalSigner
from support.consent_fixtures import usdc_fixture, words_fixture  # noqa: F401 (fixtures)
from support.permit_types import PERMIT_SINGLE_TYPES

SPENDER = to_address("0x" + "5e" * 20)


def _texts(description: GrantDescription, level: str) -> list[str]:
    return [w.text for w in description.warnings if w.level == level]


def test_a_careful_grant_reads_plainly_with_token_amounts(words, usdc) -> None:
    approve = Policy.call(
        usdc,
        "approve(address spender, uint256 amount)",
        rules=[arg("spender") == SPENDER, arg("amount") <= 100 * 10**6],
    )
    described = words(approve)
    (permission,) = described.permissions
    assert permission.function == "approve(address spender, uint256 amount)"
    assert permission.contract_label == "a token that calls itself USD Coin (USDC)"
    assert permission.rules == (
        f"spender (address) must be {SPENDER}",
        "amount (uint256) must be at most 100 USDC (100,000,000 base units at the 6 decimals the token reports now)",
    )
    assert permission.value == "no ETH may be sent with these calls"
    assert described.warnings == ()
    assert (
        described.gas
        == "One operation may cost at most 0.01 ETH in gas, and no gas budget bounds all operations together"
    )
    assert described.window == "Valid from now, until 2033-05-18 03:33:20 UTC"


NOW = " at the 6 decimals the token reports now"


def test_every_condition_has_its_phrase(words, usdc) -> None:
    rules = [
        arg("amount") == 1_500_000,
        arg("amount") != 0,
        arg("amount") < 10**6,
        arg("amount") > 1,
        arg("amount") >= 2,
        arg("amount").in_range(10**6, 2 * 10**6),
    ]
    described = words(
        Policy.call(usdc, "transfer(address to, uint256 amount)", rules=[*rules, arg("to").one_of(SPENDER)])
    )
    assert described.permissions[0].rules == (
        f"amount (uint256) must be 1.5 USDC (1,500,000 base units{NOW})",
        f"amount (uint256) must not be 0 USDC (0 base units{NOW})",
        f"amount (uint256) must be less than 1 USDC (1,000,000 base units{NOW})",
        f"amount (uint256) must be more than 0.000001 USDC (1 base unit{NOW})",
        f"amount (uint256) must be at least 0.000002 USDC (2 base units{NOW})",
        "amount (uint256) must be between 1 USDC (1,000,000 base units) and 2 USDC (2,000,000 base units) (both "
        "included), at the 6 decimals the token reports now",
        f"to (address) must be one of: {SPENDER}",
    )
    signed = words(Policy.call(usdc, "vote(int64 delta, bool yes, bytes4 tag)", rules=[
        arg("delta") >= -5, arg("yes") == True, arg("tag") == b"\x12\x34\x56\x78"]))  # noqa: E712  # fmt: skip
    assert signed.permissions[0].rules == (
        "delta (int64) must be at least -5",
        "yes (bool) must be true",
        "tag (bytes4) must be 0x12345678",
    )


def test_dangerous_grants_are_warned_about(words, usdc, nft, net, module) -> None:
    any_spender = Policy.call(usdc, "approve(address spender, uint256 amount)")
    described = words(any_spender, valid_until=0, max_gas_cost=0)
    dangers = _texts(described, "danger")
    assert "This session never expires: it lasts until you revoke it" in dangers
    assert any("No cap on gas" in text for text in dangers)
    assert any("may approve ANY spender" in text for text in dangers)
    assert any("UNLIMITED allowance" in text for text in dangers)
    # a bound at 2**255 or more is no bound
    huge = Policy.call(
        usdc,
        "approve(address spender, uint256 amount)",
        rules=[arg("spender") == SPENDER, arg("amount") <= 2**255],
    )
    assert any("UNLIMITED" in text for text in _texts(words(huge), "danger"))
    operator = Policy.call(
        nft, "setApprovalForAll(address operator, bool approved)", rules=[arg("operator") == SPENDER]
    )
    assert any(
        "setApprovalForAll" in text and "EVERY token" in text for text in _texts(words(operator), "danger")
    )
    send = Policy.call(usdc, "transfer(address to, uint256 amount)")
    cautions = _texts(words(send), "caution")
    assert any("may send to ANY address" in text for text in cautions)
    assert any("no rule caps the amount" in text for text in cautions)
    deposit = Policy.call(net.entry_point, "withdrawTo(address to, uint256 amount)")
    assert any("is the EntryPoint" in text for text in _texts(words(deposit), "danger"))


def test_a_listed_paymaster_that_may_charge_the_account_is_warned_about(
    words, usdc, project, deployer, entry_point
) -> None:
    """A paymaster the session lists lifts its gas cap (attack 253): the page warns in red of one that is not
    keyscope's SponsorPaymaster, which may charge the account, and of neither keyscope's sponsor nor a list that
    lifts nothing (no cap and no gas budget)."""
    send = Policy.call(usdc, "transfer(address to, uint256 amount)", rules=[arg("to") == SPENDER])
    charging = to_address("0x" + "5e" * 20)
    dangers = _texts(words(send, paymasters=(charging,)), "danger")
    assert any(
        text.startswith(f"{charging} is listed as a paymaster the gas cap does not bind")
        and "any amount" in text
        for text in dangers
    ), dangers
    sponsor = project.SponsorPaymaster.deploy(entry_point, deployer, deployer, sender=deployer).address
    for quiet in (words(send, paymasters=(sponsor,)), words(send, paymasters=(charging,), max_gas_cost=0)):
        assert not any("listed as a paymaster" in text for text in _texts(quiet, "danger"))


def test_a_permission_on_the_fallback_handler_of_its_selector_is_warned_about(
    words, sessions, project, deployer, entry_point
) -> None:
    """Attack 257: the account routes ``addSpender`` to a fallback handler, which takes the account's own caller
    from the calldata's last 20 bytes; a permission on that (handler, selector) is a danger the page names with the
    selector (the module refuses the grant), one on another selector of the handler is not."""
    from keyscope.execution import Call

    owner = LocalSigner.generate()
    account = sessions.account(owner)
    handler = project.SpenderListHandler.deploy(entry_point.address, sender=deployer)
    add_spender = keccak(b"addSpender(address)")[:4]
    install = project.KeyscopeAccount.at(account).installModule.encode_input(3, handler.address, add_spender)
    sessions.h.owner_execute(account, owner, Call.of(account, 0, install))
    routed = Permission(target=handler.address, selector=add_spender, function="addSpender(address)")
    dangers = _texts(words(routed, account=account), "danger")
    assert any(
        text.startswith(
            f"{handler.address} is the fallback handler this account routes 0x{add_spender.hex()} to"
        )
        for text in dangers
    ), dangers
    other = Permission(
        target=handler.address, selector=keccak(b"onInstall(bytes)")[:4], function="onInstall(bytes)"
    )
    assert not any("fallback handler" in text for text in _texts(words(other, account=account), "danger"))


def test_a_permission_on_another_module_of_the_account_is_warned_about(
    words, sessions, module, nft, net
) -> None:
    account = sessions.account(LocalSigner.generate())  # the session module installed
    is_module = module_checker(net.chain, account)
    assert is_module(module.address) and not is_module(nft.address)
    on_module = Permission(
        target=module.address, selector=bytes.fromhex("a9059cbb"), function="transfer(address,uint256)"
    )
    described = words(on_module, account=account)
    assert any("is a module installed on this account" in text for text in _texts(described, "danger"))
    assert not any(
        "module" in text
        for text in _texts(words(Policy.call(nft, "safeMint(address to)"), account=account), "danger")
    )


def test_a_signing_permission_in_another_modules_domain_is_warned_about(
    words, sessions, project, deployer, nft, net
) -> None:
    """Modules take the account's ERC-1271 signature as its owner's approval (another validator's grants): typed data
    whose verifying contract is a module of the account is a danger, as a call to one is (attack 85)."""
    owner = LocalSigner.generate()
    account = sessions.account(owner)  # the session module installed
    module = project.SessionKeyValidator.deploy(sender=deployer)  # another validator, installed too
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, module.address))

    def signing(verifying: str) -> Policy:
        domain = {"name": "Grants", "version": "1", "chainId": net.chain_id, "verifyingContract": verifying}
        return Policy.typed_data(domain, {"Grant": [{"name": "key", "type": "address"}]}, "Grant")

    on_module = words(
        Policy.call(nft, "safeMint(address to)"),
        account=account,
        typed_data_permissions=(signing(module.address),),
    )
    assert any(
        f"{module.address} is a module installed on this account: the Grant messages" in text
        for text in _texts(on_module, "danger")
    )
    elsewhere = words(
        Policy.call(nft, "safeMint(address to)"),
        account=account,
        typed_data_permissions=(signing(nft.address),),
    )
    assert not any("is a module installed" in text for text in _texts(elsewhere, "danger"))


def test_a_signing_permission_in_the_accounts_or_the_modules_domain_is_warned_about(
    words, module, nft, net
) -> None:
    """Typed data whose verifying contract is the account itself or the session module: the module refuses the grant
    whatever the account says (``ForbiddenSigningDomain``), so the page warns in red, on an account not created
    yet (which answers nothing about its modules) as on any other."""
    account = to_address("0x" + "ac" * 20)

    def signing(verifying: str) -> Policy:
        domain = {"name": "Own", "version": "1", "chainId": net.chain_id, "verifyingContract": verifying}
        return Policy.typed_data(domain, {"Approval": [{"name": "hash", "type": "bytes32"}]}, "Approval")

    for verifying, who in ((account, "this account itself"), (module.address, "the session module")):
        described = words(
            Policy.call(nft, "safeMint(address to)"),
            account=account,
            typed_data_permissions=(signing(verifying),),
        )
        assert any(
            text.startswith(f"{verifying} is {who}: the Approval messages in its domain")
            and "(the module refuses this grant)" in text
            for text in _texts(described, "danger")
        ), described.warnings
    elsewhere = words(
        Policy.call(nft, "safeMint(address to)"),
        account=account,
        typed_data_permissions=(signing(nft.address),),
    )
    assert not any("refuses this grant" in text for text in _texts(elsewhere, "danger"))


def test_a_label_that_is_not_the_selectors_function_is_not_shown_as_it(words, usdc) -> None:
    lying = Permission(
        target=usdc.address, selector=bytes.fromhex("095ea7b3"), function="transfer(address,uint256)"
    )
    described = words(lying)
    assert (
        described.permissions[0].function == "approve(address spender, uint256 amount)"
    )  # what the selector is
    unknown = Permission(target=usdc.address, selector=bytes.fromhex("deadbeef"), function="harmless()")
    described = words(unknown)
    assert described.permissions[0].function == "an unknown function (selector 0xdeadbeef)"
    assert any("known only by its selector" in text for text in _texts(described, "caution"))
    raw = Permission(
        target=usdc.address,
        selector=bytes.fromhex("deadbeef"),
        rules=(Rule(condition=1, offset=32, values=(5,)),),
    )
    assert words(raw).permissions[0].rules == ("the uint256 at byte 32 of the arguments must be at most 5",)


def test_warnings_go_by_argument_position_never_by_the_names_a_request_gives(words, usdc) -> None:
    """docs/browser.md: "Warnings never depend on names". A request that swaps ``approve``'s argument names gets
    the warnings of what its rules hold by position: a rule on the first word holds the spender, whatever it is
    called, and a rule called ``spender`` on the second word leaves the spender open."""
    swapped = Policy.call(
        usdc,
        "approve(address amount, uint256 spender)",
        rules=[arg("amount") == SPENDER, arg("spender") <= 10**6],
    )
    assert _texts(words(swapped), "danger") == []
    misnamed = Policy.call(usdc, "approve(address to, uint256 spender)", rules=[arg("spender") == 10**6])
    dangers = _texts(words(misnamed), "danger")
    assert any("may approve ANY spender" in text for text in dangers), dangers
    assert not any("UNLIMITED" in text for text in dangers), dangers  # the second word is bounded (== 10**6)
    send = Policy.call(usdc, "transfer(address amount, uint256 to)", rules=[arg("to") <= 10**6])
    cautions = _texts(words(send), "caution")
    assert any("may send to ANY address" in text for text in cautions), cautions
    assert not any("caps the amount" in text for text in cautions), cautions


def test_what_a_token_says_of_itself(net, usdc, nft) -> None:
    facts = contract_facts(net.chain, usdc.address)
    assert facts.token is not None and (facts.token.symbol, facts.token.decimals) == ("USDC", 6)
    assert contract_facts(net.chain, nft.address).token.decimals is None  # an NFT: no decimals
    assert not contract_facts(net.chain, "0x" + "00" * 19 + "99").has_code
    assert format_amount(1_234_500_000, 6, "USDC") == "1,234.5 USDC"
    assert format_amount(10**18, 18, "ETH") == "1 ETH"
    assert format_amount(7, None, None) == "7"


def test_the_consent_page_refuses_accounts_whose_owner_signs_a_wrapped_digest(net, usdc) -> None:
    from keyscope.consent.requests import require_wallet_signable
    from keyscope.errors import UnsupportedAccountError
    from keyscope.owner import GrantRequest

    session = Session(
        session_key=LocalSigner.generate().address,
        valid_until=2_000_000_000,
        permissions=(Policy.transfer(usdc, 1),),
    )

    def request(kind: str, account: str) -> GrantRequest:
        return GrantRequest(
            session=session, account=account, module=net.module, chain_id=net.chain_id, entry_point=net.entry_point,
            epoch=0, session_id=session.session_id(account, 0), how="offchain", account_kind=kind,
        )  # fmt: skip

    require_wallet_signable(net, request("keyscope", to_address("0x" + "ad" * 20)))  # the digest as it is
    with pytest.raises(UnsupportedAccountError, match=r"kernel account .* cannot grant on it"):
        require_wallet_signable(net, request("kernel", to_address("0x" + "ae" * 20)))


def test_the_commands_say_what_they_need(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from keyscope.cli import main

    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps([_mint_request(1, "0x" + "cd" * 20)]))
    result = CliRunner().invoke(
        main, ["consent", str(requests), "--store", "memory://"], env={"KEYSCOPE_BUNDLER_URL": ""}
    )
    assert result.exit_code != 0 and "give --node, --bundler, --module" in result.output
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert result.exit_code == 0 and "Serve the sessions dashboard of ACCOUNT" in result.output


def test_lifetime_limits_read_from_what_is_signed(words, usdc) -> None:
    """Each limit gets its line, its amount in the token's own decimals (not the grant's unsigned ones), and the
    calls it counts; a grant without limits says so."""
    from keyscope import Limits

    allowance = Policy.erc20_allowance(usdc, 5 * 10**6, "day", symbol="USDC", decimals=18)  # lying decimals
    mint = Policy.call(SPENDER, "safeMint(address to)", calls=3, value_limit=10**16)
    described = words(*allowance, mint, limits=(Limits.native(10**17), Limits.operations(10, per="hour")))
    lines = described.limits
    assert any(
        line.startswith(
            "At most 5 USDC (5,000,000 base units at the 6 decimals the token reports now) per day, counted from all of:"
        )
        for line in lines
    ), lines
    allowance_line = next(line for line in lines if "USDC" in line)
    for function in ("transfer(", "transferFrom("):  # a daily allowance takes no approvals (attack 260)
        assert function in allowance_line
    assert "approve(" not in allowance_line
    assert "its argument amount (uint256)" in allowance_line
    assert f"At most 3 calls over the session's life, of all of: safeMint(address) on {SPENDER}" in lines
    assert (
        "At most 10 operations per hour (fixed periods back to back from 1970-01-01 00:00:00 UTC, each with the "
        "whole amount: up to twice it may go within moments across a period's end)"
    ) in lines
    assert allowance_line.endswith("up to twice it may go within moments across a period's end)")
    assert any(line.startswith("At most 0.1 ETH over the session's life, sent by all of:") for line in lines)
    assert words(mint.model_copy(update={"limits": ()})).limits == (
        "No limits over the session's life: each call's own limits apply, as often as the window allows",
    )


def test_the_gas_line_says_whether_a_budget_bounds_all_operations(words) -> None:
    """The cap binds each operation: without a gas budget the owner reads that nothing bounds their total (a leaked
    key may spend the cap on every operation the window allows); with one, the budget has its own line."""
    from keyscope import Limits

    mint = Policy.call(SPENDER, "safeMint(address to)")
    unbounded = words(mint)
    assert unbounded.gas.endswith("and no gas budget bounds all operations together")
    budgeted = words(mint, limits=(Limits.gas(3 * 10**16),))
    assert budgeted.gas == "One operation may cost at most 0.01 ETH in gas"
    assert "At most 0.03 ETH in gas fees over the session's life, all operations together" in budgeted.limits


PERMIT2 = to_address("0x" + "22" * 20)
ROUTER = to_address("0x" + "7e" * 20)


def _permit_permission(usdc, domain: dict[str, object] | None = None):
    return Policy.typed_data(
        domain or {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [
            arg("details", "token") == usdc.address,
            arg("details", "amount") <= 100 * 10**6,
            arg("spender") == ROUTER,
        ],
        label="PermitSingle on Permit2",
    )


def test_what_a_session_may_sign_and_its_co_signer_are_shown_from_what_is_signed(words, usdc) -> None:
    """Signing permissions read field by field from the signed contents type (nested structs included), with the
    domain, a danger warning, the sign-in websites and the co-signer; a grant without them says so."""
    co_signer = to_address("0x" + "c0" * 20)
    plain = words(Policy.call(usdc, "transfer(address to, uint256 amount)", rules=[arg("to") == SPENDER]))
    assert plain.signing == ("Signs no message as the account: only operations",)
    assert plain.cosigner is None
    assert not [w for w in plain.warnings if "sign" in w.text]

    described = words(
        typed_data_permissions=(_permit_permission(usdc),), sign_in=("app.example.com",), co_signer=co_signer
    )
    permit_line, sign_in_line = described.signing
    assert permit_line == (
        f"May sign PermitSingle messages as the account (EIP-712 typed data of name 'Permit2', chain 1, contract "
        f"{PERMIT2}): details.token must be {usdc.address}; details.amount must be at most 100,000,000; "
        f"spender must be {ROUTER}"
    )
    assert sign_in_line.startswith("May sign in to app.example.com as the account")
    assert described.cosigner is not None and described.cosigner.startswith(
        f"{co_signer} must also sign every"
    )
    dangers = _texts(described, "danger")
    assert any(
        text.startswith("The session may sign PermitSingle messages as the account") for text in dangers
    )
    assert permit_line in described.lines() and described.cosigner in described.lines()


def test_a_signing_permission_s_unsigned_labels_do_not_change_its_words(words, usdc) -> None:
    """The label, primary type and JSON types a permission carries are not signed: a dapp that sets them to
    something harmless changes nothing the owner reads."""
    honest = _permit_permission(usdc)
    lying = honest.model_copy(
        update={"label": "a harmless login", "primary": "Login", "types": {"Login": []}}
    )
    assert words(typed_data_permissions=(lying,)).signing == words(typed_data_permissions=(honest,)).signing


def test_a_signing_permission_without_a_contract_is_warned_about(words, usdc) -> None:
    anywhere = _permit_permission(usdc, {"name": "Permit2", "chainId": 1})
    dangers = _texts(words(typed_data_permissions=(anywhere,)), "danger")
    assert any("names no contract" in text for text in dangers)


_USER_OPERATION_TYPES = {
    "PackedUserOperation": [
        {"name": "sender", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "callData", "type": "bytes"},
    ]
}


@pytest.mark.parametrize(
    ("domain", "primary"),
    [
        (
            {"name": "ERC4337", "version": "1", "chainId": 1, "verifyingContract": ENTRY_POINT_V08},
            "PackedUserOperation",
        ),
        ({"name": "Anything", "chainId": 1, "verifyingContract": ENTRY_POINT_V07}, "PackedUserOperation"),
        ({"name": "SomeAccount", "chainId": 1, "verifyingContract": ROUTER}, "PackedUserOperation"),
    ],
)
def test_a_signing_permission_that_can_sign_user_operations_is_warned_about(words, domain, primary) -> None:
    """A session that may sign UserOperations in the account's name can drive any account whose owner is this
    account's ERC-1271: the owner is told so in words of its own, beyond the generic signing warning."""
    permission = Policy.typed_data(domain, _USER_OPERATION_TYPES, primary)
    dangers = _texts(words(typed_data_permissions=(permission,)), "danger")
    assert any("signs UserOperations" in text and "would run the operations" in text for text in dangers)


def test_a_permit_permission_is_not_taken_for_one_that_signs_user_operations(words, usdc) -> None:
    dangers = _texts(words(typed_data_permissions=(_permit_permission(usdc),)), "danger")
    assert not any("UserOperations" in text for text in dangers)


def test_a_uint160_argument_reads_as_a_number_not_an_address(words, usdc) -> None:
    """A rule's type byte is the same for address and uint160: the function's declared type decides how its
    value reads (Permit2's approve takes a uint160 amount)."""
    approve = Policy.call(
        to_address("0x" + "22" * 20),
        "approve(address token, address spender, uint160 amount, uint48 expiration)",
        rules=[arg("spender") == SPENDER, arg("amount") <= 100 * 10**6],
    )
    (permission,) = words(approve).permissions
    assert permission.rules == (
        f"spender (address) must be {SPENDER}",
        "amount (uint160) must be at most 100,000,000",
    )


def _mint_request(chain_id: int, nft: str) -> dict[str, object]:
    """One ERC-7715 permission request: a session key may call ``safeMint(address to)`` on ``nft``."""
    return {
        "chainId": hex(chain_id),
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
        "permission": {"type": "contract-call", "data": {"address": nft, "function": "safeMint(address to)"}},
        "policies": [],
    }


def test_requests_the_page_cannot_serve_say_what_to_do(net, nft, tmp_path) -> None:
    """Requests for another chain, an owner who does not answer in time, and (from the command line) a file that
    is not JSON or a response file with nowhere to go: each refusal says what to do, before anything is served
    where it can be."""
    import json

    from click.testing import CliRunner

    from keyscope.cli import main
    from keyscope.consent.requests import ConsentTimeoutError
    from keyscope.errors import BadInputError

    def params(chain_id: int) -> list[dict[str, object]]:
        return [_mint_request(chain_id, nft.address)]

    with ConsentServer(net) as server:
        with pytest.raises(BadInputError) as wrong:
            server.request_permissions(params(net.chain_id + 1))
        assert f"ask for chainId {hex(net.chain_id)}, or serve the page with a node of chain" in str(
            wrong.value
        )
        request = server.request_permissions(params(net.chain_id))
        with pytest.raises(ConsentTimeoutError) as late:
            request.wait(0.05)
        assert str(late.value).endswith(
            "in 0.05 s: nothing was granted; ask again, with more time for the owner"
        )

    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(params(net.chain_id)))
    result = CliRunner().invoke(main, ["consent", str(requests), "--out", str(tmp_path / "no" / "out.json")])
    assert result.exit_code == 1
    assert (
        f"error: --out {tmp_path / 'no' / 'out.json'}: the folder {tmp_path / 'no'} does not exist"
        in result.output
    )
    requests.write_text("[{")
    result = CliRunner().invoke(main, ["consent", str(requests)])
    assert (
        result.exit_code == 1 and "give the params of wallet_grantPermissions, a JSON list" in result.output
    )


def test_the_responses_file_never_overwrites_the_requests_or_a_session_store(nft, tmp_path) -> None:
    """``keyscope consent REQUESTS --out FILE`` wrote the responses over whatever FILE was, once the owner had
    signed: a slip naming the requests file lost the requests, and one naming the session store (its SQLite file,
    or a file inside a file store's folder) lost every grant the workers send with. Each is refused before anything
    is served or opened, and the file is left as it was."""
    import json
    import sqlite3

    from click.testing import CliRunner

    from keyscope.cli import main

    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps([_mint_request(31337, nft.address)]))
    kept = requests.read_bytes()
    database = tmp_path / "sessions.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE grants (session_id TEXT)")
    stored = database.read_bytes()
    folder = tmp_path / "store"
    folder.mkdir()

    cases = [
        ([str(requests), "--out", str(requests)], f"--out {requests} is the requests file"),
        (
            [str(requests), "--store", f"sqlite:///{database}", "--out", str(database)],
            f"--out {database} is in the session store {database} (--store)",
        ),
        (
            [str(requests), "--out", str(database)],
            f"--out {database} is a SQLite database (a session store?)",
        ),
        (
            [str(requests), "--store", str(folder), "--out", str(folder / "grants.json")],
            f"--out {folder / 'grants.json'} is in the session store {folder} (--store)",
        ),
    ]
    for args, said in cases:
        result = CliRunner().invoke(main, ["consent", *args])
        assert result.exit_code == 1, result.output
        assert f"error: {said}" in result.output and "Traceback" not in result.output
    assert requests.read_bytes() == kept and database.read_bytes() == stored
    assert list(folder.iterdir()) == []


def test_a_request_for_an_address_without_code_is_refused_to_every_wallet(net, nft, accounts) -> None:
    """An ERC-7715 request naming an ``address`` that has no code: no wallet that connects becomes its owner (the
    grant could never be used, and would only add a session the account does not have to the store); the refusal
    names the address and says what to do, and the request stays open for a wallet of an existing account."""
    from keyscope.errors import UnsupportedAccountError

    codeless = to_address("0x" + "12" * 20)
    params = [{**_mint_request(net.chain_id, nft.address), "address": codeless}]
    with ConsentServer(net) as server:
        request = server.request_permissions(params)
        for wallet in (accounts[3].address, codeless):
            with pytest.raises(UnsupportedAccountError) as refused:
                request.connect(net, wallet, net.chain_id)
            assert str(refused.value).startswith(f"{codeless} has no code and nothing creates it")
            assert "Deploy the account first, or give the address of an account that exists" in str(
                refused.value
            )
        assert request.state == "waiting" and request.grant_request is None


def test_an_erc7715_expiry_in_milliseconds_is_refused_before_the_owner_sees_it(net, nft) -> None:
    """A dapp passing ``Date.now() + 3600_000`` (milliseconds) for ``expiry`` was served a page for a session ending
    in the year 58,000 or so, granted as written once the owner signed past a "never expires" warning that said
    nothing of the dapp's mistake. It is refused before the page is served, naming the value, its date read as
    milliseconds and what to pass; an expiry of 0 (no end, asked for) is still served, with its danger shown."""
    import time

    from keyscope.clock import utc_text
    from keyscope.errors import BadInputError

    in_ms = int(time.time() * 1000) + 3_600_000
    with ConsentServer(net) as server:
        with pytest.raises(BadInputError) as refused:
            server.request_permissions([{**_mint_request(net.chain_id, nft.address), "expiry": in_ms}])
        message = str(refused.value)
        assert message.startswith(
            f"the requests' expiry {in_ms} is after the year 9999 (as seconds it ends in "
        ), message
        assert f"it can only be milliseconds, {utc_text(in_ms // 1000)} read as such" in message, message
        assert "pass Math.floor(Date.now() / 1000) plus the session's duration in seconds" in message, message
        assert server._consents == {}

        endless = server.request_permissions([{**_mint_request(net.chain_id, nft.address), "expiry": 0}])
        assert endless.plan is not None and endless.plan.valid_until == 0
        dangers = [w.text for w in endless.description.warnings if w.level == "danger"]
        assert "This session never expires: it lasts until you revoke it" in dangers, dangers


def test_a_request_whose_session_has_already_ended_is_refused_before_the_owner_sees_it(net, nft) -> None:
    """Once served: the owner read the page, connected a wallet and only then learnt that the session had ended
    (an ERC-7715 ``expiry`` in the past, or a grant request that waited past its ``valid_until``)."""
    import time

    from keyscope import SessionKey
    from keyscope.consent.wallet import WalletAddress
    from keyscope.errors import BadInputError

    past = int(time.time()) - 60
    with ConsentServer(net) as server:
        with pytest.raises(BadInputError) as ended:
            server.request_permissions([{**_mint_request(net.chain_id, nft.address), "expiry": past}])
        message = str(ended.value)
        assert message.startswith(
            f"the requests' expiry {past} is the second the session must have ended by, "
        )
        assert f"its last valid second {past - 1} (" in message, message
        assert message.endswith("ask for an expiry in the future. Nothing was shown to the owner")

        owner = net.owner(WalletAddress(LocalSigner.generate().address))
        mint = Policy.call(nft.address, "safeMint(address to)", rules=[arg("to") == owner.account])
        request = owner.prepare_grant(SessionKey.generate(), [mint], valid_for=3600)
        waited = request.model_copy(
            update={"session": request.session.model_copy(update={"valid_until": past})}
        )
        with pytest.raises(BadInputError) as late:
            server.request_grant(waited)
        assert str(late.value).startswith(f"the grant request's valid_until {past} (")
        assert "prepare a new one. Nothing was shown to the owner" in str(late.value)
        assert server._consents == {}
        assert server.request_grant(request).url  # the same request within its window: served
