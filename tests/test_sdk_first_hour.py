"""The SDK as a newcomer meets it, on ape's local chain: keys in every form, a window that expires unless asked
not to (counted on the clock that matters), clear errors for bad grants and typos, bytes shown as hex, warnings
for targets that cannot work, reverts in the target not blamed on the policy, and the state of sessions.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import time
import warnings
from typing import Any, is_typeddict

import pytest
from eth_account import Account

from conftest import ETHER, KIND
from keyscope import (
    BadInputError,
    Call,
    Limits,
    Policy,
    Session,
    SessionGrant,
    SessionKey,
    arg,
    connect,
    function_call,
)
from keyscope.clock import LAST_READABLE_TIME, window_now
from keyscope.errors import (
    AccountSetupError,
    ConfigurationError,
    InvalidAddressError,
    KeyscopeError,
    SessionError,
    TargetRevertedError,
    TargetWarning,
    UnknownOptionError,
    UnsupportedAccountError,
)
from keyscope.hexutil import to_address
from keyscope.module import SessionStatus, enable_session_data
from keyscope.network import Network
from keyscope.owner import DEFAULT_VALID_FOR, GrantRequest, Owner, session_window
from keyscope.report import report_from_chain
from keyscope.signers import as_signer
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from support.sdk import local_network, mint_policy, sdk_owner, second_module  # noqa: F401 -- sdk_owner: the owner fixture


@pytest.fixture(scope="module", autouse=True)
def _session_fixtures_first(nft: Any, harness: Any) -> None:
    """The session-scoped fixtures later tests use, set up before any of this file's state: one first set up after
    it makes ape rebase the chain under the file's fixtures."""


# --------------------------------------------------------------------------------------------------
# the owner's key, in any form
# --------------------------------------------------------------------------------------------------


def test_the_owner_key_in_every_accepted_form_drives_the_same_account(net, accounts) -> None:
    key = LocalSigner.generate()
    forms: list[Any] = [
        "0x" + key.private_key.hex(),  # hex, as a wallet exports it
        key.private_key.hex(),  # without 0x
        key.private_key,  # 32 bytes
        Account.from_key(key.private_key),  # an eth-account LocalAccount
        key,  # a HashSigner
    ]
    for form in forms:
        owner = net.owner(form)
        assert owner.signer.address == key.address
        assert owner.account == net.owner(key).account
    ape_owner = net.owner(accounts[3])  # an ape account signs through ape
    assert ape_owner.signer.address == accounts[3].address


def test_an_ape_account_signs_a_grant_that_works(net, nft, accounts, harness) -> None:
    owner = net.owner(accounts[4], salt=7)
    harness.fund(owner.account, ETHER)
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    receipt = (
        net.session(grant, key.private_key.hex()).execute(nft, "safeMint(address)", owner.account).wait()
    )
    assert receipt.success


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ("0x" + "11" * 20, "is an address, not a key"),
        ("0x1234", "is not a private key (6 characters)"),
        ("not a key at all", "is not a private key"),
        (b"\x01" * 31, "is not a private key (31 bytes)"),
        ("0x" + "00" * 32, "is not a private key (66 characters): the private key is out of range"),
        ("0x" + "ff" * 32, "is not a private key (66 characters): the private key is out of range"),
        (
            "0x" + "zz" * 32,
            "is not a private key (66 characters): private key (66 characters) is not hex data",
        ),
        (b"\x00" * 32, "is not a private key (32 bytes): the private key is out of range"),
        ("/home/me/keys/owner.key", "looks like a file's path: give the key itself, not a file"),
        ("owner.json", "looks like a file's path: give the key itself, not a file"),
        (12345, "cannot be an int:"),
        (None, "cannot be None:"),
    ],
)
def test_anything_else_is_a_clear_error_that_never_shows_the_key(net, form: Any, said: str) -> None:
    with pytest.raises(BadInputError) as info:
        net.owner(form)
    message = str(info.value)
    assert said in message and "private key" in message and "LocalAccount" in message
    if isinstance(form, str) and "address" not in said:
        assert form not in message
    assert message.count("64 hex digits") <= 1, message  # what a key is, said once


def test_a_key_a_digit_short_says_what_a_key_is_once() -> None:
    """A key of 63 hex digits read "...: give 0x and 64 hex digits; give a private key ("0x" and 64 hex digits),
    an eth-account LocalAccount, ...": the key's own refusal and the list of forms each said what a key is."""
    with pytest.raises(BadInputError) as info:
        as_signer("0x" + "1" * 63)
    assert str(info.value) == (
        "the owner's key is not a private key (65 characters): the private key has 63 hex digits, not 64: give 0x and "
        "64 hex digits (or give an eth-account LocalAccount, an ape account, or a HashSigner such as "
        "keyscope.LocalSigner)"
    )


@pytest.mark.parametrize("words", [12, 24])
def test_a_recovery_phrase_given_as_the_key_says_how_to_get_the_key_from_it(net, words: int) -> None:
    """A wallet's recovery phrase pasted where the key goes is named as one (never shown), with how to derive the
    key from it, which gives a key that is taken."""
    phrase = " ".join(["test"] * (words - 1) + ["junk"])
    with pytest.raises(BadInputError) as info:
        net.owner(phrase)
    message = str(info.value)
    assert f"is not a private key but {words} words, a recovery phrase" in message, message
    assert "Account.from_mnemonic(phrase)" in message and "test test" not in message
    if words == 12:  # anvil's phrase, a valid one: the advice gives a key net.owner takes
        Account.enable_unaudited_hdwallet_features()
        derived = Account.from_mnemonic(phrase)
        assert net.owner(derived).signer.address == derived.address


def test_a_session_key_in_any_form(net, owner, nft) -> None:
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    for form in ("0x" + key.private_key.hex(), Account.from_key(key.private_key), key):
        assert net.session(grant, form).key.address == key.address
    with pytest.raises(BadInputError, match="the session's key"):
        as_signer(3.5, role="session")


def test_a_private_key_given_where_its_address_goes_is_refused_without_being_shown(
    net, owner, nft, entry_point
) -> None:
    """``net.session(grant, key)`` takes the session's private key, so handing the same text to ``owner.grant(key,
    ...)``, or a co-signer's key to ``co_signer=``, is an easy slip: the refusal quoted the key whole, into the
    dapp's logs. A value with the form of a key (64 hex digits, or 32 bytes) is named by its form and never shown,
    in the message or on the error; nothing is signed or sent."""
    key = SessionKey.generate()
    nonce = entry_point.getNonce(owner.account, 0)
    forms = ("0x" + key.private_key.hex(), key.private_key.hex(), key.private_key)
    for form in forms:
        for session_key, co_signer in ((form, None), (SessionKey.generate(), form)):
            with pytest.raises(InvalidAddressError) as info:
                owner.grant(session_key, [mint_policy(nft, owner.account)], co_signer=co_signer)
            said = str(info.value)
            assert key.private_key.hex() not in said.lower() and info.value.value is None, said
            assert "the form of a private key (not shown)" in said and "give its address" in said, said
    assert entry_point.getNonce(owner.account, 0) == nonce
    text = json.loads(owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)]).to_json())
    text["session"]["session_key"] = "0x" + key.private_key.hex()
    for (
        build
    ) in (  # a session built by hand, or a grant's JSON written with the key: pydantic's "got ..." too
        lambda: Session(
            session_key="0x" + key.private_key.hex(), permissions=(mint_policy(nft, owner.account),)
        ),
        lambda: SessionGrant.from_json(json.dumps(text)),
    ):
        with pytest.raises(BadInputError) as refused:
            build()
        said = str(refused.value)
        assert key.private_key.hex() not in said.lower() and "(not shown)" in said and "got" not in said, said
    with pytest.raises(InvalidAddressError) as info:  # other values are still shown, to say what was wrong
        owner.grant("0x1234", [mint_policy(nft, owner.account)])
    assert "'0x1234' is not a valid address" in str(info.value)


# --------------------------------------------------------------------------------------------------
# the window
# --------------------------------------------------------------------------------------------------


def test_a_grant_expires_in_an_hour_unless_told_otherwise(owner, nft) -> None:
    before = window_now(owner.network.chain.block_timestamp())
    grant = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    after = window_now(owner.network.chain.block_timestamp())
    assert before + DEFAULT_VALID_FOR <= grant.valid_until <= after + DEFAULT_VALID_FOR
    forever = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], never_expires=True)
    assert forever.valid_until == 0


@pytest.mark.parametrize(
    ("window", "said"),
    [
        ({"valid_until": 0}, "pass never_expires=True"),
        ({"never_expires": True, "valid_for": 60}, "contradict"),
        ({"never_expires": True, "valid_until": 2**40}, "contradict"),
        ({"valid_for": 60, "valid_until": 2**40}, "not both"),
        ({"valid_for": 0}, "positive number of seconds"),
        ({"valid_for": -5}, "positive number of seconds"),
        ({"valid_after": 200, "valid_until": 100}, "would never be valid"),
        ({"valid_after": -1}, "valid_after must be a unix time"),
        # past the module's 48-bit times: once a pydantic ValidationError (or an OverflowError for inf)
        ({"valid_for": 10**30}, "is longer than the module can keep .* pass never_expires=True"),
        ({"valid_for": float("inf")}, "valid_for inf is longer than the module can keep"),
        ({"valid_until": 2**48}, "valid_until 281474976710656 is past the module's last time"),
        (
            {"valid_after": 2**48, "never_expires": True},
            "valid_after 281474976710656 is past the module's last",
        ),
        # milliseconds for seconds: a session of some 55,000 years, not one ending on 2026-01-01
        (
            {"valid_until": 1_767_225_600_000},
            r"valid_until 1767225600000 is after the year 9999: was it given in milliseconds\? .*"
            r"1767225600 seconds would be 2026-01-01 00:00:00 UTC",
        ),
        (
            {"valid_after": 1_767_225_600_000, "valid_for": 60},
            "valid_after 1767225600000 is after the year 9999",
        ),
        ({"valid_for": 3_600_000_000_000}, r"valid_until 3600000001000 is after the year 9999"),
        ({"valid_until": 253_402_300_800}, "is after the year 9999"),
    ],
)
def test_a_window_that_makes_no_sense_is_refused(window: dict[str, Any], said: str) -> None:
    with pytest.raises(BadInputError, match=said):
        session_window(now=1_000, **window)


def test_the_last_readable_second_is_still_a_window_s_end() -> None:
    assert session_window(valid_until=LAST_READABLE_TIME, now=1_000) == (0, LAST_READABLE_TIME)
    assert session_window(valid_after=LAST_READABLE_TIME - 60, valid_for=60, now=1_000) == (
        LAST_READABLE_TIME - 60,
        LAST_READABLE_TIME,
    )


def test_a_grant_that_has_ended_already_is_refused_before_the_owner_signs(
    owner, nft, module, accounts
) -> None:
    """The module reads no clock: it enables a session whose end is past (on chain, or at the session's first
    operation), and the EntryPoint then refuses every operation of it as expired (AA22), so the grant could never be
    used. The SDK refuses it before anything is signed or sent, on every path a window reaches the owner by."""
    now = window_now(owner.network.chain.block_timestamp())
    key = SessionKey.generate()
    past = now - 60
    policy = [mint_policy(nft, owner.account)]
    session = owner.session_for(key, policy, valid_until=past)
    module.enableSession(session.as_abi(), sender=accounts[8])  # what the module does with it: enables it
    for make in (owner.grant, owner.prepare_grant, owner.grant_onchain):
        with pytest.raises(
            BadInputError, match=rf"valid_until {past} \(.*\) is already past: .*AA22.*nothing was signed"
        ):
            make(key, policy, valid_until=past)
    with pytest.raises(BadInputError, match=f"valid_until {past} .* is already past"):
        owner.request_for(session)
    assert not owner.is_deployed()  # grant_onchain sent nothing
    ahead = now + 600  # an end still ahead is granted
    assert owner.grant(key, policy, valid_until=ahead).valid_until == ahead


def test_a_request_whose_session_ended_while_it_waited_for_the_signature_is_not_completed(owner, nft) -> None:
    """A grant request waits for the owner's wallet (the consent page, a hardware signer). A signature that comes
    after the session's end completes a grant the module would enable and the EntryPoint never accept: refused."""
    key = SessionKey.generate()
    request = owner.prepare_grant(key, [mint_policy(nft, owner.account)], valid_for=60)
    signature = owner.sign_grant(request).owner_signature
    assert signature is not None and request.complete(signature).owner_signature == signature
    # a request as it stands once its session has ended (the wall clock moved past its end), signed then
    ended = request.session.model_copy(update={"valid_until": int(time.time()) - 1})
    waited = request.model_copy(update={"session": ended, "session_id": ended.session_id(request.account, 0)})
    kind = owner.kind
    late = kind.wrap_erc1271_signature(
        owner.signer.sign_hash(kind.erc1271_digest(waited.account, waited.chain_id, waited.digest))
    )
    with pytest.raises(BadInputError, match=r"is already past: .*wall clock.*AA22.*prepare a new grant"):
        waited.complete(late)


def test_a_request_whose_session_ended_is_not_signed_by_an_owner_that_did_not_prepare_it(owner, nft) -> None:
    """README (Windows): "a valid_until already past is refused before the owner signs". ``Owner.sign_grant``
    refuses it for a request this very ``Owner`` object prepared (``complete`` judges the window), but a request
    that reached the owner's signer otherwise (read back from JSON: a dapp's backend prepared it, the owner's
    process signs it; or another ``Owner`` of the same key) is completed with ``check=False``, which skips the
    window: the owner signs a grant the module would enable and the EntryPoint refuse every operation of (AA22)."""
    key = SessionKey.generate()
    request = owner.prepare_grant(key, [mint_policy(nft, owner.account)], valid_for=60)
    ended = request.session.model_copy(update={"valid_until": int(time.time()) - 1})
    waited = request.model_copy(update={"session": ended, "session_id": ended.session_id(request.account, 0)})
    with pytest.raises(BadInputError, match=r"is already past"):
        owner.sign_grant(waited)  # prepared here: refused
    handed_over = GrantRequest.model_validate_json(waited.model_dump_json())
    with pytest.raises(BadInputError, match=r"is already past"):
        owner.sign_grant(handed_over)


def test_a_typo_in_a_window_option_names_it(owner, nft) -> None:
    """A TypeError, as Python's for an unknown keyword, and one of keyscope's errors, as every error it raises."""
    with pytest.raises(UnknownOptionError, match="unexpected keyword argument 'valid_fro'") as info:
        owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], valid_fro=60)  # type: ignore[call-arg]
    assert isinstance(info.value, TypeError) and isinstance(info.value, KeyscopeError)
    with pytest.raises(UnknownOptionError, match="unexpected keyword argument 'valid_fro'"):
        owner.prepare_grant(SessionKey.generate(), [], valid_fro=60)  # type: ignore[call-arg]
    with pytest.raises(UnknownOptionError, match="unexpected keyword argument 'rule'") as info:
        Policy.call(nft, "safeMint(address to)", rule=[])  # type: ignore[call-arg]
    assert isinstance(info.value, TypeError)
    with pytest.raises(UnknownOptionError) as info:  # before any connection: nothing listens there
        connect("http://127.0.0.1:9", "http://127.0.0.1:9", module=_MODULE, bundlr="x")  # type: ignore[arg-type]
    assert str(info.value) == (
        "connect() got an unexpected keyword argument 'bundlr': its options are module, entry_point, factory, "
        "paymaster, kind, owner_validator, delegate, timeout"
    )
    named = [p.name for p in inspect.signature(connect).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert str(info.value).endswith(", ".join(named))  # the options said are the ones the signature takes
    # module= mistyped: the typo is named, not a TypeError about a missing argument of an inner method
    with pytest.raises(UnknownOptionError, match="unexpected keyword argument 'modul'"):
        connect("http://127.0.0.1:9", "http://127.0.0.1:9", modul=_MODULE)  # type: ignore[call-arg]
    with pytest.raises(BadInputError) as missing:  # left out: said what it is and where to find it
        connect("http://127.0.0.1:9", "http://127.0.0.1:9")
    assert "connect() needs module=ADDRESS" in str(missing.value) and "stack.module" in str(missing.value)


def _unpacks_typed_dict(method: Any, parameter: inspect.Parameter) -> bool:
    """Whether ``**parameter`` is ``Unpack[X]`` of a ``TypedDict`` ``X`` (of the method's module) whose every key
    has a type."""
    match = re.fullmatch(r"Unpack\[(\w+)\]", str(parameter.annotation))
    options = getattr(sys.modules[method.__module__], match[1], None) if match else None
    return is_typeddict(options) and all(options.__annotations__.values())


@pytest.mark.parametrize(
    "method",
    [Owner.grant, Owner.prepare_grant, Owner.grant_onchain, Owner.session_for, Network.session, connect],
    ids=lambda method: method.__qualname__,
)
def test_every_option_is_a_named_typed_keyword(method: Any) -> None:
    """No catch-all ``**options``: a type checker sees each option, so a typo is caught before anything runs.
    Options shared by several methods are one ``TypedDict``, taken as ``**options: Unpack[...]``; ``**unknown:
    Never`` takes no value a type checker allows, and is there only to name a typo at run time."""
    parameters = list(inspect.signature(method).parameters.values())
    assert not [
        p.name
        for p in parameters
        if p.kind is p.VAR_KEYWORD and not (_unpacks_typed_dict(method, p) or p.annotation == "Never")
    ], f"{method.__qualname__} takes **kwargs"
    untyped = [p.name for p in parameters if p.name not in ("self", "cls") and p.annotation is p.empty]
    assert not untyped, f"{method.__qualname__}: options without a type: {untyped}"


def test_durations_count_from_the_later_of_the_chains_clock_and_the_wall_clock() -> None:
    wall = int(time.time())
    judged = window_now(wall - 540)
    assert wall <= judged <= int(time.time())  # an idle chain nine minutes behind: the wall clock
    assert window_now(wall + 3_600) == wall + 3_600  # a chain moved forward: its own clock
    valid_after, valid_until = session_window(valid_for=60, now=window_now(wall - 540))
    assert valid_after == 0 and valid_until >= wall + 60


# --------------------------------------------------------------------------------------------------
# grants as text, and bytes as hex
# --------------------------------------------------------------------------------------------------


def test_a_grant_naming_the_account_or_the_zero_address_is_refused_before_the_owner_signs(owner, nft) -> None:
    """The module refuses to enable it (ForbiddenPermissionTarget): its first operation could never land."""
    from keyscope.session import Permission

    for forbidden in (owner.account, "0x" + "00" * 20):
        extra = Permission(target=forbidden, selector=bytes(4))
        with pytest.raises(BadInputError, match="ForbiddenPermissionTarget"):
            owner.prepare_grant(SessionKey.generate(), [mint_policy(nft, owner.account), extra])


@pytest.mark.parametrize(
    ("key", "count", "said"),
    [
        ("0x" + "00" * 20, 1, "session key is the zero address"),
        (None, 17, "a session needs 0 to 16 call permissions"),
    ],
)
def test_a_session_the_module_cannot_take_is_bad_input(
    owner, nft, key: str | None, count: int, said: str
) -> None:
    """A session the module would refuse to enable is refused as the owner builds it, with keyscope's error (not a
    validation library's) saying what is wrong."""
    permissions = [mint_policy(nft, owner.account)] * count
    with pytest.raises(BadInputError, match=f"this session cannot be granted: .*{said}"):
        owner.prepare_grant(key or SessionKey.generate(), permissions)


def test_a_grant_read_from_bad_text_says_what_is_wrong(owner, nft) -> None:
    text = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)]).to_json()
    with pytest.raises(BadInputError, match="it was cut off; give the whole text"):
        SessionGrant.from_json(text[: len(text) // 2])
    with pytest.raises(BadInputError, match="it is not JSON"):
        SessionGrant.from_json("grant: yes")
    with pytest.raises(BadInputError, match="account: Field required"):
        SessionGrant.from_json(text.replace('"account"', '"acount"'))
    with pytest.raises(BadInputError, match="is JSON text"):
        SessionGrant.from_json(None)  # type: ignore[arg-type]


def test_people_see_bytes_as_hex(owner, nft) -> None:
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    receipt = owner.network.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait()
    call = function_call(nft, "safeMint(address)", owner.account)
    for shown in (repr(grant), str(grant), repr(receipt), str(receipt), repr(grant.session), repr(call)):
        assert not re.search(r"(?<![0-9a-fA-F])b['\"]", shown), shown  # no Python bytes literal
    assert f"session_id='0x{grant.session_id.hex()}'" in repr(grant)
    assert f"transaction_hash='0x{receipt.transaction_hash.hex()}'" in repr(receipt)
    assert f"data='0x{call.data.hex()}'" in repr(call)


def test_the_detected_account_kind_reads_as_its_adapter(owner) -> None:
    """``owner.kind`` printed names the adapter the SDK detected (and a delegate's address), not an object id."""
    from keyscope.accounts import KeyscopeDelegateKind

    assert repr(owner.kind) == "KeyscopeAccountKind()"
    delegate = LocalSigner.generate().address
    assert repr(KeyscopeDelegateKind(delegate)) == f"KeyscopeDelegateKind(delegate={delegate})"
    assert repr(KeyscopeDelegateKind()) == "KeyscopeDelegateKind(delegate=None)"


# --------------------------------------------------------------------------------------------------
# targets that cannot work, and calls that revert in their target
# --------------------------------------------------------------------------------------------------


def test_a_grant_warns_of_a_target_without_code_and_of_a_function_the_target_lacks(owner, nft) -> None:
    nowhere = LocalSigner.generate().address
    permissions = [
        mint_policy(nft, owner.account),  # fine
        # the demo NFT has no transfer (its recipient held: ANY address is not what this test is about)
        Policy.call(nft, "transfer(address to,uint256 amount)", rules=[arg("to") == owner.account]),
        Policy.call(nowhere, "ping()"),  # no code there
        Policy.transfer(nowhere, 10**15),  # a plain transfer to an address without code is normal
    ]
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), permissions)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    lacking = next(m for m in messages if "transfer(address,uint256)" in m)
    assert "keyscope's DemoNFT, which has no function transfer(address,uint256)" in lacking
    assert "every call the session makes with it will revert" in lacking
    empty = next(m for m in messages if "ping()" in m)
    assert f"{nowhere} has no code on this chain" in empty
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])  # nothing to say: no warning


def test_a_grant_on_the_entry_point_warns_that_the_session_may_withdraw_the_account_s_deposit(
    owner, net, entry_point, accounts
) -> None:
    """The EntryPoint keeps each account's deposit and stake by its caller, so a session granted ``withdrawTo`` there
    (a dapp's "refund unused gas" feature, say) may take the account's deposit wherever its rules allow. The threat
    model leaves such a grant to the owner, and the consent page warns of it in red; ``owner.grant`` said nothing.
    It warns now (``TargetWarning`` naming the EntryPoint and what may be withdrawn), for a permission there with a
    rule or without; and the key, holding the unruled grant, takes the account's deposit through the EntryPoint,
    as the warning says it may."""
    thief = LocalSigner.generate().address
    withdraw = "withdrawTo(address to, uint256 amount)"
    for permission in (
        Policy.call(net.entry_point, withdraw),
        Policy.call(net.entry_point, withdraw, rules=[arg("to") == owner.account]),
    ):
        with pytest.warns(TargetWarning) as caught:
            grant = owner.grant(SessionKey.generate(), [permission])
        (said,) = [str(w.message) for w in caught]
        assert f"{net.entry_point} is the EntryPoint" in said, said
        assert "the account's deposit and stake" in said and "withdrawTo, withdrawStake" in said, said
    key = SessionKey.generate()
    with pytest.warns(TargetWarning):
        grant = owner.grant(key, [Policy.call(net.entry_point, withdraw)])
    entry_point.depositTo(owner.account, value=ETHER // 10, sender=accounts[0])
    taken = ETHER // 25  # within what the deposit holds while the operation's own prefund is taken from it
    net.session(grant, key).execute(net.entry_point, "withdrawTo(address,uint256)", thief, taken).wait()
    assert entry_point.chain_manager.provider.get_balance(thief) == taken


def test_a_listed_paymaster_without_code_is_said_to_have_none_before_what_listing_it_risks(
    owner, nft
) -> None:
    """A paymaster address mistyped (or one of another chain) has no code: the warning says so first, with what to
    check, rather than only that it is not keyscope's SponsorPaymaster, which would send the owner looking into what
    kind of paymaster it is. A paymaster with code is not said to have none."""
    nowhere = LocalSigner.generate().address
    mint = [mint_policy(nft, owner.account)]
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), mint, paymasters=[nowhere])
    (said,) = [str(w.message) for w in caught]
    assert f"paymaster {nowhere} as uncapped: it has no code on this chain (check the address" in said, said
    assert "not keyscope's SponsorPaymaster" in said, said
    with pytest.warns(TargetWarning) as caught:
        owner.grant(SessionKey.generate(), mint, paymasters=[nft.address])
    (said,) = [str(w.message) for w in caught]
    assert "not keyscope's SponsorPaymaster" in said and "no code" not in said, said


def test_a_call_that_reverts_in_its_target_is_not_blamed_on_the_policy(owner, nft) -> None:
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # the account exists
    key = SessionKey.generate()
    permissions = [
        Policy.call(nft, "transfer(address to,uint256 amount)"),
        Policy.call(nft, "transferFrom(address from,address to,uint256 id)"),
    ]
    with pytest.warns(TargetWarning):
        grant = owner.grant(key, permissions)
    session = owner.network.session(grant, key)
    with pytest.raises(TargetRevertedError) as missing:
        session.execute(nft, "transfer(address,uint256)", owner.account, 1)
    text = str(missing.value)
    assert "reverted inside its target, not in validation" in text
    assert f"transfer(address,uint256) on {nft.address}" in text
    assert "policy allows this call" in text and "has this function" in text
    with pytest.raises(TargetRevertedError) as refused:
        session.execute(nft, "transferFrom(address,address,uint256)", owner.account, owner.account, 999)
    assert "ERC721NonexistentToken(tokenId=999)" in str(refused.value)


def test_an_account_address_without_code_names_the_factory_s_account_of_the_owner(net, nft) -> None:
    """The README's accounts example given an address with no code (one of the local stack's ``accounts``, an EOA of
    anvil's) on a network with a factory: refused with "(no factory: keyscope does not know how to create a
    'keyscope' account at this address)", though a factory was given. The refusal says where the factory creates this
    owner's account, and how to use it."""
    signer = LocalSigner.generate()
    codeless = to_address("0x" + "34" * 20)
    own = net.owner(signer).account
    with pytest.raises(UnsupportedAccountError) as refused:
        net.owner(signer, codeless).grant(SessionKey.generate(), [mint_policy(nft, codeless)])
    said = str(refused.value)
    assert said.startswith(
        f"{codeless} has no code and nothing creates it (the factory {net.factory} creates the keyscope account of "
        f"the owner {signer.address} at {own} (salt 0), not at this address: leave the account out, net.owner(key), "
        "for that one), so the EntryPoint would refuse every operation (AA20); nothing was signed or sent."
    ), said
    assert "no factory" not in said


def test_a_session_on_an_account_without_the_module_is_refused_before_sending(net, harness, nft) -> None:
    """Off-chain, keyscope's account refuses the owner's signature of a grant asked by a module it has not installed,
    which the SDK says rather than blaming the owner's key. On chain, the module would store a session whether or not
    the account installed it, but installing the module ends such sessions (attack 216), and until then the account
    does not ask the module: the SDK refuses the on-chain grant before sending, saying to install first. A session
    enabled before the install (here by the owner's own call, as a dapp without the SDK could) reads as active, and
    the SDK refuses its operation before sending (AA24 at the bundler); once the owner installs the module it is
    ended, and a grant made then works."""
    signer = LocalSigner.generate()
    account = harness.create(signer)  # a deployed account without the session module
    harness.fund(account, ETHER)
    owner = net.owner(signer, account)
    assert not owner.supports_sessions()
    # off-chain, the account refuses the owner's signature asked by a module it has not installed: said as such
    with pytest.raises(
        AccountSetupError, match=r"does not have the session module .* installed.*install_sessions"
    ):
        owner.grant(SessionKey.generate(), [mint_policy(nft, account)])
    key = SessionKey.generate()
    with pytest.raises(
        AccountSetupError,
        match=r"is not installed on .*would end when the module is installed.*nothing was sent",
    ):
        owner.grant(key, [mint_policy(nft, account)], onchain=True)
    early = owner.prepare_grant(key, [mint_policy(nft, account)])  # enabled without the SDK's check
    assert owner.execute(Call(net.module, 0, enable_session_data(early.session))).wait().success
    session = net.session(early.enabled_on_chain(), key)
    with pytest.raises(
        SessionError, match=r"module .* is not installed on the account .*AA24.*install_sessions\(\)"
    ):
        session.execute(nft, "safeMint(address)", account)
    pending = owner.install_sessions()
    assert pending is not None and pending.wait().success
    with pytest.raises(SessionError):  # the install ended it
        session.execute(nft, "safeMint(address)", account)
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, account)], onchain=True)
    assert net.session(grant, key).execute(nft, "safeMint(address)", account).wait().success


def test_a_grant_the_module_no_longer_enables_is_refused_before_its_first_operation(net, owner, nft) -> None:
    """Two off-chain grants of the same call to one key, signed before either was used: the first one's first
    operation enables it, and the module then refuses to enable the second (PermissionAlreadyGranted: a key holds a
    call once per account), which its own first operation would ask (AA23). The SDK enables it in a dry run first and
    says what to do; once the owner revoked the first session, the second works."""
    key = SessionKey.generate()
    first = owner.grant(key, [mint_policy(nft, owner.account)])
    second = owner.grant(key, [mint_policy(nft, owner.account)])  # nothing on chain yet: nothing to refuse
    assert net.session(first, key).execute(nft, "safeMint(address)", owner.account).wait().success
    with pytest.raises(
        SessionError, match=r"PermissionAlreadyGranted.*AA23.*nothing was sent\. The session key holds"
    ):
        net.session(second, key).execute(nft, "safeMint(address)", owner.account)
    owner.revoke(first).wait()
    assert net.session(second, key).execute(nft, "safeMint(address)", owner.account).wait().success


# --------------------------------------------------------------------------------------------------
# where sessions stand
# --------------------------------------------------------------------------------------------------


def test_session_status_in_words(net, owner, nft) -> None:
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=600)
    session = net.session(grant, key)
    report = session.status()
    assert report.status == SessionStatus.NOT_YET_ENABLED.value
    assert report.permissions == [
        f"call safeMint(address) on {nft.address}, where to must be {owner.account}; no ETH"
    ]
    assert 0 < report.time_left <= 600
    assert report.describe_time_left().endswith(" left")
    session.execute(nft, "safeMint(address)", owner.account).wait()
    text = str(session.status())
    assert f"session 0x{grant.session_id.hex()}: active (on chain)" in text
    assert "allows  call safeMint(address)" in text and "min" in text


def test_a_module_address_with_no_module_there_is_named_not_a_decoding_crash(net, owner, nft) -> None:
    """A mistyped module address, or another chain's: nothing answers the module's questions. The grant (before
    the owner signs) and the status say which module address gave no answer, not eth_abi's InsufficientDataBytes."""
    elsewhere = to_address("0x" + "5e" * 20)
    wrong = Network(
        chain=net.chain,
        bundler=net.bundler,
        module=elsewhere,
        entry_point=net.entry_point,
        factory=net.factory,
    )
    said = f"the session module {elsewhere} gave no answer to epochOf: no SessionKeyValidator is there"
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        wrong.owner(owner.signer).grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    grant = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        report_from_chain(wrong, grant)


def test_a_module_address_where_another_contract_is_named_not_a_revert(net, owner, nft) -> None:
    """The NFT's address given as the module's: it reverts the module's questions. The grant, the epoch and the
    status say the module address holds no module, not "eth_call reverted" of a call the person never made."""
    wrong = Network(
        chain=net.chain,
        bundler=net.bundler,
        module=nft.address,
        entry_point=net.entry_point,
        factory=net.factory,
    )
    said = f"the session module {nft.address} reverted when asked epochOf: no SessionKeyValidator is there"
    stranger = wrong.owner(owner.signer)
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        stranger.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        stranger.epoch()
    grant = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        report_from_chain(wrong, grant)


def test_owner_sessions_sets_the_chain_against_the_store(net, owner, nft, tmp_path) -> None:
    store = open_store(tmp_path / "store")
    used_key, spare_key = SessionKey.generate(), SessionKey.generate()
    used = owner.grant(used_key, [mint_policy(nft, owner.account)])
    spare = owner.grant(spare_key, [mint_policy(nft, owner.account)], never_expires=True)
    store.put_grant(used)
    net.session(used, used_key).execute(nft, "safeMint(address)", owner.account).wait()
    store.mark_revoked(used.session_id)  # revoked for the store's workers, not on chain

    reports = {r.session_id: r for r in owner.sessions(store)}
    first, second = reports["0x" + used.session_id.hex()], reports["0x" + spare.session_id.hex()]
    assert first.status == "active" and first.store is not None and first.store.revoked
    assert any("marked revoked in the store but not on chain" in note for note in first.disagreements)
    assert second.status == "not yet enabled" and second.time_left is None and second.store is None
    assert second.describe_time_left() == "never expires"

    owner.revoke(used).wait()
    again = {r.session_id: r for r in owner.sessions(store)}
    assert again["0x" + used.session_id.hex()].status == "revoked"
    assert again["0x" + used.session_id.hex()].disagreements == []


def test_owner_sessions_skips_an_unreadable_grant_with_a_warning(net, owner, nft, tmp_path) -> None:
    store = open_store(tmp_path / "store")
    good = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    store.put_grant(good)
    bad = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])
    store.put_grant(bad)
    path = tmp_path / "store" / "grants" / f"0x{bad.session_id.hex()}.json"
    path.write_text(path.read_text()[:40])  # cut off, as a full disk leaves it
    other = net.owner(LocalSigner.generate())
    with pytest.warns(Warning, match=f"skipped the unreadable grant 0x{bad.session_id.hex()}"):
        listed = other.sessions(store, grants=[good])
    assert listed == []  # neither is the other owner's
    with pytest.warns(Warning, match="unreadable"):
        reports = net.owner(owner.signer).sessions(store)
    assert [r.session_id for r in reports] == ["0x" + good.session_id.hex()]


@pytest.mark.parametrize(
    ("store", "grants", "said"),
    [
        (
            "sqlite:///sessions.db",
            (),
            "sessions() takes an open session store, got str 'sqlite:///sessions.db'",
        ),
        (None, ["0x" + "ab" * 32], "grants= takes SessionGrant objects"),
        (None, "{}", "grants= takes SessionGrant objects"),
        (None, [b"\x01\x02"], "got ['0x0102']"),
    ],
)
def test_owner_sessions_given_a_url_or_text_says_how_to_give_a_store_and_grants(
    owner, store: Any, grants: Any, said: str
) -> None:
    """A store's URL (what the command line takes) or a grant's id or text, where objects are asked for: the
    message says how to open the store or read the grant (once an AttributeError from deep inside)."""
    with pytest.raises(BadInputError) as info:
        owner.sessions(store, grants=grants)
    assert said in str(info.value)
    assert ("open_store(url, create=False)" if store else "SessionGrant.from_json(text)") in str(info.value)


def test_a_session_under_a_grant_as_text_or_data_says_how_to_read_the_grant(net, owner, nft) -> None:
    """The grant's saved text (``to_json``), its JSON data or nothing, where a SessionGrant is asked for: once an
    AttributeError from inside the session account."""
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    for junk in (grant.to_json(), json.loads(grant.to_json()), None):
        with pytest.raises(BadInputError) as info:
            net.session(junk, key)
        said = str(info.value)
        assert said.startswith(f"a session is sent under a SessionGrant, got {type(junk).__name__}: "), said
        assert ("SessionGrant.from_json(text)" in said) == (junk is not None), said
    assert net.session(SessionGrant.from_json(grant.to_json()), key).grant == grant


@pytest.mark.parametrize("salt", [-1, 2**256, True, "1", 1.5])
def test_an_account_salt_out_of_range_is_bad_input_not_an_encoding_crash(net, salt: Any) -> None:
    with pytest.raises(BadInputError, match=r"^salt is a whole number from 0 to 2\*\*256 - 1, got "):
        net.owner(LocalSigner.generate(), salt=salt)
    assert net.owner(LocalSigner.generate(), salt=2**256 - 1).salt == 2**256 - 1


@pytest.mark.parametrize(
    ("option", "value", "example"),
    [
        ("sign_in", "app.example.com", 'sign_in=["app.example.com"]'),
        ("paymasters", "0x" + "12" * 20, "paymasters=[SPONSOR_ADDRESS]"),
        ("limits", Limits.native(10**17, per="day"), "limits=[Limits.native(...)]"),
        ("typed_data", {"domain": {}, "types": {}}, "typed_data=[Policy.typed_data(...)]"),
        ("limits", 5, "limits=[Limits.native(...)]"),
    ],
)
def test_one_item_where_a_grant_option_takes_a_list_is_refused_before_the_owner_signs(
    owner, nft, option: str, value: Any, example: str
) -> None:
    """A text given as ``sign_in`` was read letter by letter ("at most 8 signing permissions, got 15"), a
    paymaster's address as forty-two addresses of one character each."""
    for grant in (owner.grant, owner.prepare_grant):
        with pytest.raises(BadInputError) as info:
            grant(SessionKey.generate(), [mint_policy(nft, owner.account)], **{option: value})
        said = str(info.value)
        assert said.startswith(f"{option} takes a list, got {type(value).__name__} "), said
        assert said.endswith(f": give {example}"), said


@pytest.mark.parametrize("given", ["policy", "text", "number"])
def test_one_permission_where_the_list_of_them_is_asked_for_is_refused_saying_to_give_a_list(
    owner, nft, given: str
) -> None:
    """``owner.grant(key, Policy.call(...))`` (the README writes ``[Policy.call(...)]``) was read field by field:
    "a grant takes Policy permissions, got str: 'target'", naming the permission's first field as what was given."""
    value = {"policy": mint_policy(nft, owner.account), "text": "safeMint(address)", "number": 7}[given]
    for grant in (owner.grant, owner.prepare_grant, owner.session_for):
        with pytest.raises(BadInputError) as info:
            grant(SessionKey.generate(), value)
        said = str(info.value)
        assert said.startswith(f"the permissions take a list, got {type(value).__name__} "), said
        assert said.endswith("give [Policy.call(...)], a list of the permissions, even for one"), said
        assert "'target'" not in said
    # a group of permissions (Policy.erc20_allowance's tuple) is a list of them, as before
    allowance = owner.session_for(SessionKey.generate(), Policy.erc20_allowance(nft.address, 5, "day"))
    assert len(allowance.permissions) == 2  # transfer and transferFrom: no approval per period (attack 260)


def test_a_batch_of_no_calls_is_refused_in_the_callers_words(net, owner, nft) -> None:
    """``session.execute_batch([])`` said "encode_execute needs at least one call", naming a function the caller
    never called."""
    key = SessionKey.generate()
    session = net.session(owner.grant(key, [mint_policy(nft, owner.account)]), key)
    for send in (session.execute_batch, session.send_calls, owner.execute):
        with pytest.raises(BadInputError) as info:
            send([])
        said = str(info.value)
        assert said == (
            "an operation makes at least one call, got none: give a Call (function_call(...)) or a list of one or more"
        ), said


def test_an_owner_refuses_to_revoke_or_rotate_a_session_of_another_account(net, owner, nft, harness) -> None:
    """The module keys sessions by the account that sends: another owner's revocation of a grant would land, as an
    operation of its own account, and leave the grant's session live. Refused before anything is sent."""
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    session = net.session(grant, key)
    assert session.execute(nft, "safeMint(address)", owner.account).wait().success
    stranger = net.owner(LocalSigner.generate())
    harness.fund(stranger.account, ETHER)
    for attempt in (lambda: stranger.revoke(grant), lambda: stranger.rotate_co_signer(grant, None)):
        with pytest.raises(BadInputError) as info:
            attempt()
        said = str(info.value)
        assert f"was granted for the account {owner.account}, and this owner's is {stranger.account}" in said
        assert f"net.owner(key, {owner.account})" in said and "nothing was sent" in said
    assert not stranger.is_deployed()  # no operation of the stranger's account was sent
    assert session.status().status == "active"
    owner.revoke(grant).wait()  # the grant's own owner can
    assert session.status().status == "revoked"


def test_a_co_signers_key_given_as_the_sessions_co_signer_is_refused_when_the_session_is_made(
    net, owner, nft
) -> None:
    """``net.session(grant, key, co_signer=...)`` takes a co-signer, a callable; its key there (hex, bytes or a
    signer) was kept, and the session's first operation failed with a bare "'str' object is not callable". Refused
    when the session is made, without showing the value, saying what to give; the co-signer made of that key works."""
    from keyscope.co_signer import local_co_signer

    key, co_signer = SessionKey.generate(), SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], co_signer=co_signer.address)
    for wrong in (
        "0x" + co_signer.private_key.hex(),
        co_signer.private_key,
        LocalSigner(co_signer.private_key),
    ):
        with pytest.raises(BadInputError) as info:
            net.session(grant, key, co_signer=wrong)
        said = str(info.value)
        assert (
            said.startswith("co_signer must be a co-signer, a callable") and "local_co_signer(key)" in said
        ), said
        assert co_signer.private_key.hex() not in said.lower(), said
    session = net.session(grant, key, co_signer=local_co_signer(co_signer))
    assert session.execute(nft, "safeMint(address)", owner.account).wait().success


def test_an_owner_connected_to_another_module_or_chain_refuses_to_revoke_or_rotate_the_grant(
    net, owner, nft, project, deployer, chain, bundler, entry_point, factory
) -> None:
    """The same owner key and account, connected to another deployment of the session module (the version it moves
    to, say) or to another chain: its ``revokeSession`` would land there, on an id that module never enabled, and
    report success while the grant's session stays live on its own module. Refused before anything is sent, naming
    both; the session still works, and the owner on the grant's network revokes it."""
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    session = net.session(grant, key)
    assert session.execute(nft, "safeMint(address)", owner.account).wait().success
    other = local_network(
        chain, bundler, project.SessionKeyValidator.deploy(sender=deployer), entry_point, factory
    )
    moved = other.owner(owner.signer, owner.account)  # the deployed account, connected to the other module
    assert moved.account == owner.account and other.module != net.module
    nonce = entry_point.getNonce(owner.account, 0)
    for who, named, field, theirs, ours in (
        (moved, grant, "module", net.module, other.module),
        (
            owner,
            grant.model_copy(update={"chain_id": net.chain_id + 1}),
            "chain",
            net.chain_id + 1,
            net.chain_id,
        ),
    ):
        for attempt in (lambda: who.revoke(named), lambda: who.rotate_co_signer(named, None)):  # noqa: B023
            with pytest.raises(BadInputError) as info:
                attempt()
            said = str(info.value)
            assert (
                f"was granted for the {field} {theirs}, and this owner's is {ours}: nothing was sent" in said
            ), said
    assert entry_point.getNonce(owner.account, 0) == nonce
    assert session.execute(nft, "safeMint(address)", owner.account).wait().success
    owner.revoke(grant).wait()
    assert session.status().status == "revoked"


def test_a_plain_transfer_permission_reads_in_words() -> None:
    from keyscope.report import describe_permission, describe_wei

    friend = LocalSigner.generate().address
    assert (
        describe_permission(Policy.transfer(friend, 10**16))
        == f"send at most 0.01 ETH per transfer to {friend}"
    )
    assert describe_wei(0) == "0 wei" and describe_wei(2 * 10**18) == "2 ETH"


def test_an_address_rule_reads_as_a_checksummed_address_and_a_uint160_as_a_number() -> None:
    """The status report shows a rule's value as the argument's declared type reads it: an address checksummed, as
    the permission's target is; a ``uint160`` (the same type code) as a number."""
    from keyscope.report import describe_permission

    token = LocalSigner.generate().address
    friend = LocalSigner.generate().address
    big = 2**150 + 7
    permission = Policy.call(
        token, "send(address to, uint160 amount)", rules=[arg("to") == friend, arg("amount") <= big]
    )
    described = describe_permission(permission)
    assert f"to must be {friend} and " in described, described
    assert f"amount must be at most 0x{big:040x};" in described, described


# --------------------------------------------------------------------------------------------------
# the entry points, given what they cannot use
# --------------------------------------------------------------------------------------------------

_MODULE = "0x" + "cd" * 20


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (
            {"node": None},
            "node: give the node's JSON-RPC URL (http://host:port) or a Chain; got NoneType None",
        ),
        ({"node": 8545}, "node: give the node's JSON-RPC URL (http://host:port) or a Chain; got int 8545"),
        ({"bundler": ("127.0.0.1", 4337)}, "bundler: give the bundler's URL (http://host:port) or a Bundler"),
        ({"paymaster": 1}, "paymaster: give an ERC-7677 paymaster service URL, or None"),
        ({"timeout": -1}, "timeout is a positive number of seconds per request, got -1"),
        ({"timeout": float("nan")}, "timeout is a positive number of seconds per request, got nan"),
        ({"timeout": "30"}, "timeout is a positive number of seconds per request, got '30'"),
    ],
)
def test_connect_refuses_what_it_cannot_connect_to(given: dict[str, Any], said: str) -> None:
    """Once taken as they were and failing at first use with an AttributeError deep inside (or never)."""
    arguments: dict[str, Any] = {"node": "http://127.0.0.1:9", "bundler": "http://127.0.0.1:9", **given}
    with pytest.raises(BadInputError) as info:
        connect(arguments.pop("node"), arguments.pop("bundler"), module=_MODULE, **arguments)
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("build", "said"),
    [
        (
            lambda: Limits.operations("many"),
            "Limits.operations takes a count of operations, an integer; got 'many'",
        ),
        (lambda: Limits.native(10**18, per=1), "native allowance: a period of 1s is too short"),
        (lambda: Limits.gas(10**16, per=2**40), "gas budget: period: Input should be less than 4294967296"),
        (
            lambda: Policy.erc20_allowance(_MODULE, 5, "day", symbol="USDC", decimals=-1),
            "USDC allowance: decimals: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            lambda: Policy.call(
                _MODULE, "transfer(address to,uint256 amount)", totals=[arg("amount").total(5, per=30)]
            ),
            "a period of 30s is too short: the module takes periods of at least 60s",
        ),
        (lambda: Policy.call(_MODULE, "mint()", rate="2/second"), "a period of 1s is too short"),
    ],
)
def test_a_limit_the_module_cannot_take_is_bad_input(build: Any, said: str) -> None:
    """Once a pydantic ValidationError, outside keyscope's errors."""
    with pytest.raises(BadInputError) as info:
        build()
    assert said in str(info.value)


def test_a_file_store_that_cannot_be_made_says_why_in_words(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(KeyscopeError) as info:
        open_store(blocker / "store")
    message = str(info.value)
    assert message.startswith(f"cannot open the file store at {blocker / 'store'}: Not a directory")
    assert "[Errno" not in message and "give a folder this user can create and write" in message


def test_a_node_that_is_down_is_said_not_taken_for_an_account_that_cannot_be_read() -> None:
    """Reading an account's kind or modules once swallowed every error: with the node down, a new owner was told
    that the factory "does not say which accounts it creates", and an account that it had no session module."""
    from keyscope import ENTRY_POINT_V07, TransportError
    from keyscope.bundler import BundlerClient
    from keyscope.chain import RpcChain

    where = {"module": _MODULE, "factory": "0x" + "ab" * 20, "entry_point": ENTRY_POINT_V07}
    # connect asks the factory which EntryPoint it trusts (one network never mixes them): the node is said down there
    with pytest.raises(TransportError, match=r"cannot reach http://127.0.0.1:9 for eth_call"):
        connect("http://127.0.0.1:9", "http://127.0.0.1:9", **where)
    net = Network(chain=RpcChain("http://127.0.0.1:9"), bundler=BundlerClient("http://127.0.0.1:9"), **where)
    with pytest.raises(TransportError, match=r"cannot reach http://127.0.0.1:9 for eth_call"):
        net.owner(LocalSigner.generate())
    with pytest.raises(TransportError, match=r"cannot reach http://127.0.0.1:9 for eth_call"):
        net.supports_sessions("0x" + "ef" * 20)


def test_a_local_stack_not_started_is_said_as_which_endpoint_and_how_to_start_one() -> None:
    """The README's example run before ``python -m keyscope.local``: the refusal names the endpoint that is down
    (the node, or the bundler once the node answers) and, for one on this machine, the command that starts both."""
    from keyscope import ENTRY_POINT_V07, TransportError
    from keyscope.bundler import BundlerClient
    from keyscope.chain import RpcChain

    where = {"module": _MODULE, "factory": "0x" + "ab" * 20, "entry_point": ENTRY_POINT_V07}
    with pytest.raises(TransportError) as down:
        connect("http://127.0.0.1:9", "http://127.0.0.1:10", **where)
    said = str(down.value)
    assert said.startswith("cannot reach http://127.0.0.1:9 for eth_call"), said
    assert said.endswith(
        "check the URL and that the node is running (on this machine, `python -m keyscope.local` runs a node "
        "and a bundler)"
    ), said
    with pytest.raises(TransportError) as down:
        BundlerClient("http://localhost:9").chain_id()
    said = str(down.value)
    assert "check the URL and that the bundler is running (on this machine" in said, said
    with pytest.raises(TransportError) as down:
        RpcChain("http://[::1]:9").chain_id()
    said = str(down.value)
    assert "that the node is running (on this machine" in said, said


def test_owner_sessions_judges_a_stored_grant_at_its_own_module_and_chain(
    net, owner, nft, project, deployer, tmp_path
) -> None:
    """One store keeps the account's sessions of every module deployment and chain it is used on (the account has
    the same address wherever its factory made it). ``owner.sessions(store)`` read each one at this network's
    module: a session live at a second deployment of the module, installed on the account too, was reported
    ``invalidated`` (dead) while its key could still send, and a session of another chain was judged by this
    chain's module. Each is judged at the module its grant names, on the chain it names, or not judged."""
    store = open_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    here = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], onchain=True)
    store.put_grant(here)
    there = second_module(net, owner, project, deployer, KIND)
    live_key = SessionKey.generate()
    live = there.owner(owner.signer, owner.account).grant(
        live_key, [mint_policy(nft, owner.account)], onchain=True
    )
    store.put_grant(live)
    assert there.session(live, live_key).status().status == "active"
    # a session granted on chain 10 (made here through another owner object: this one's grants are this chain's)
    unused = net.owner(owner.signer, owner.account).grant(
        SessionKey.generate(), [mint_policy(nft, owner.account)]
    )
    elsewhere = SessionGrant.model_validate(
        {**unused.model_dump(), "chain_id": 10, "how": "onchain", "owner_signature": None}
    )
    store.put_grant(elsewhere)

    reports = {r.session_id: r for r in owner.sessions(store)}
    assert reports["0x" + here.session_id.hex()].status == "active"
    at_second = reports["0x" + live.session_id.hex()]
    assert at_second.status == "active", at_second.status
    assert at_second.describe_time_left() != "none: invalidated"
    assert reports["0x" + elsewhere.session_id.hex()].status == "other chain"
    assert reports["0x" + elsewhere.session_id.hex()].disagreements == []

    there.owner(owner.signer, owner.account).revoke(live).wait()
    again = {r.session_id: r for r in owner.sessions(store)}
    assert again["0x" + live.session_id.hex()].status == "revoked"


def test_a_session_s_status_on_a_node_of_another_chain_is_refused_not_reported_dead(net, owner, nft) -> None:
    """``session.status()`` (and ``report_from_chain``) read the grant's session at the node's module whatever chain
    the node is on: a session granted on chain 10 (the module and the account have the same addresses there), read
    through this chain's node, was reported ``invalidated`` (dead, nothing left to revoke) or ``not yet enabled``
    for a session the chain it lives on holds live. The status names both chains instead."""
    owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], onchain=True)  # the account made
    key = SessionKey.generate()
    here = owner.grant(key, [mint_policy(nft, owner.account)])
    elsewhere = SessionGrant.model_validate(  # enabled on chain 10 by its owner's operation there
        {**here.model_dump(), "chain_id": 10, "how": "onchain", "owner_signature": None}
    )
    said = f"session 0x{elsewhere.session_id.hex()} was granted on chain 10, but the node is on chain {net.chain_id}"
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        net.session(elsewhere, key).status()
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        report_from_chain(net, elsewhere)
    assert net.session(here, key).status().status == "not yet enabled"


def test_an_operation_of_a_session_granted_on_another_chain_is_refused_before_it_is_signed(
    net, owner, nft
) -> None:
    """A session granted on chain 10 (the module and the account at the same addresses there) is refused by
    ``build`` with both chains named, before anything is signed: the module here would refuse the owner's signature
    of it or find no such session, which the bundler reports as a bare AA23 or AA24."""
    owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], onchain=True)  # the account made
    key = SessionKey.generate()
    here = owner.grant(key, [mint_policy(nft, owner.account)])
    elsewhere = SessionGrant.model_validate(
        {**here.model_dump(), "chain_id": 10, "how": "onchain", "owner_signature": None}
    )
    said = f"session 0x{elsewhere.session_id.hex()} was granted on chain 10, but the node is on chain {net.chain_id}"
    with pytest.raises(ConfigurationError, match=re.escape(said)):
        net.session(elsewhere, key).build(function_call(nft, "safeMint(address)", owner.account))
