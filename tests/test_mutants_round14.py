"""The fourteenth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it
let pass in the decoding of revert data into words and hints, the session report, the wording of limits on the
consent page and in the report, and the sign-in messages and signing refusals the checker's rounds left.

Pinned here, without a chain:

* revert data (``keyscope.revert``): an error of four bytes alone, bytes in hex and addresses checksummed, the
  EntryPoint's FailedOp said by its reason and FailedOpWithRevert's inner revert kept, and which AA23 revert gets
  which hint (the account refusing the EntryPoint, Safe7579's ExecutionFailed(), another contract's error, the
  owner's signature, the module refusing to enable a grant, a policy refusal);
* the session report (``keyscope.report``): wei and ether, every rule of a permission joined by "and", a rule's
  label naming another argument or depth, durations, the window and the time left of a session not started or
  invalidated, the store's marks against the chain's status, the chain's dangers, a session that only signs in, a
  typed-data rule's values;
* the wording of limits (``keyscope.limits``, ``Limit.per``, the consent page's limit lines and usage): amounts as
  the module counts them, the dapp's label quoted, used and left, periods and their reset;
* sign-in messages and signing refusals (``keyscope.message_signing``): EIP-4361's blank lines, the version and the
  nonce refused, a sign-in permission's index after the typed-data ones, its EIP-191 hash, the refusal's list of
  what the session may sign, a signed word shown as its number.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import _hash_eip191_message as _defunct_hash
from eth_account.messages import encode_defunct

from keyscope.clock import utc_text
from keyscope.consent.describe import Facts, limit_usage_words
from keyscope.consent.describe import _limits as consent_limits
from keyscope.errors import BadInputError
from keyscope.grant import SessionGrant
from keyscope.hexutil import keccak, to_address
from keyscope.limits import (
    Counter,
    LimitUsage,
    enforced_amount,
    limit_fields,
    owner_label,
    period_note,
    reset_text,
    usage_of,
)
from keyscope.message_signing import SignatureRefusedError, _shown, check_sign_in, sign_in_message
from keyscope.module import SessionStatus
from keyscope.policy import Policy, arg, parse_signature
from keyscope.report import (
    SessionReport,
    StoreMarks,
    _typed_value,
    describe_duration,
    describe_permission,
    describe_wei,
    report_from_store,
    unjudged,
)
from keyscope.revert import (
    SAFE7579_EXECUTION_FAILED,
    decode_revert,
    describe_revert,
    grant_refusal_todo,
    split_failed_op,
    validation_hint,
)
from keyscope.session import ArgType, Condition, Limit, LimitKind, Meter, Permission, Rule, Session
from keyscope.token_facts import ContractFacts, TokenFacts
from keyscope.typed_data import TypedData, is_struct
from support.permit_types import PERMIT_SINGLE_TYPES
from support.session_fixtures import stored_grant

# -- revert data ---------------------------------------------------------------------------------------------------


def _error(signature: str, *values: Any) -> bytes:
    """Revert data of the custom error ``signature`` with ``values``, as a contract reverts with it."""
    types = signature[signature.index("(") + 1 : -1]
    return keccak(signature.encode())[:4] + abi_encode([t for t in types.split(",") if t], list(values))


def _failed_op(reason: str, inner: bytes | None = None) -> bytes:
    """The EntryPoint's FailedOp, or FailedOpWithRevert carrying ``inner``, for operation 0."""
    if inner is None:
        return _error("FailedOp(uint256,string)", 0, reason)
    return _error("FailedOpWithRevert(uint256,string,bytes)", 0, reason, inner)


KEY = to_address("0x" + "5e" * 20)
RULE_VIOLATED = _error("RuleViolated(uint256,uint256,uint256,bytes32)", 1, 0, 2, b"\xab" * 32)


def test_an_error_without_arguments_is_read_from_its_four_bytes_alone() -> None:
    empty_batch = _error("EmptyBatch()")
    assert len(empty_batch) == 4
    assert decode_revert(empty_batch) == ("EmptyBatch", {})
    assert describe_revert(empty_batch) == "EmptyBatch()"
    assert decode_revert(empty_batch[:3]) is None


def test_a_revert_is_described_with_bytes_in_hex_and_addresses_checksummed() -> None:
    assert (
        describe_revert(RULE_VIOLATED)
        == f"RuleViolated(callIndex=1, permissionIndex=0, ruleIndex=2, actual=0x{'ab' * 32})"
    )
    no_permission = _error("NoPermission(uint256,address,bytes4)", 0, KEY, b"\xa9\x05\x9c\xbb")
    assert describe_revert(no_permission) == f"NoPermission(callIndex=0, target={KEY}, selector=0xa9059cbb)"
    assert describe_revert(b"") == "(no revert data)"
    assert describe_revert(b"\xde\xad\xbe\xef\x01") == "0xdeadbeef01"


def test_the_entry_point_s_refusals_are_said_by_their_reason_and_carry_the_inner_revert() -> None:
    assert describe_revert(_failed_op("AA21 didn't pay prefund")) == "AA21 didn't pay prefund"
    assert describe_revert(_failed_op("AA23 reverted", RULE_VIOLATED)).startswith(
        "AA23 reverted: RuleViolated(callIndex=1,"
    )
    assert split_failed_op(_failed_op("AA23 reverted", RULE_VIOLATED)) == (0, "AA23 reverted", RULE_VIOLATED)
    assert split_failed_op(_failed_op("AA21 didn't pay prefund")) == (0, "AA21 didn't pay prefund", b"")
    assert split_failed_op(RULE_VIOLATED) is None


def test_a_validation_revert_is_hinted_by_what_reverted_inside_the_entry_point_s_refusal() -> None:
    """Only an AA23 is hinted, by the revert inside the FailedOpWithRevert (or the data itself): the account refusing
    the EntryPoint, Safe7579's ExecutionFailed() (four bytes), an error that is not the module's, the owner's
    signature refused, the module refusing to enable the grant (with what to do); a policy refusal gets the usual
    hint (None)."""
    unauthorized = _error("AccountUnauthorized(address)", KEY)
    hint = validation_hint("AA23", _failed_op("AA23 reverted", unauthorized))
    assert hint is not None and f"refused its caller {KEY} (AccountUnauthorized)" in hint, hint
    assert validation_hint("AA24", _failed_op("AA24 signature error", unauthorized)) is None
    assert validation_hint(None, unauthorized) is None
    safe = _failed_op("AA23 reverted", SAFE7579_EXECUTION_FAILED)
    assert "Safe7579 reverted ExecutionFailed()" in str(validation_hint("AA23", safe))
    assert "Safe7579 reverted ExecutionFailed()" in str(validation_hint("AA23", SAFE7579_EXECUTION_FAILED))
    assert validation_hint("AA23", _failed_op("AA23 reverted", b"\x01\x02\x03")) is None
    not_the_module = _error("OwnerIsZeroAddress()")
    assert "not the session module's" in str(
        validation_hint("AA23", _failed_op("AA23 reverted", not_the_module))
    )
    owner = _error("InvalidOwnerSignature(address,bytes32)", KEY, b"\x01" * 32)
    assert "refused the owner's signature of the session grant" in str(validation_hint("AA23", owner))
    regrant = _error("PermissionAlreadyGranted(uint256,address,bytes4)", 0, KEY, b"\xa9\x05\x9c\xbb")
    hint = validation_hint("AA23", _failed_op("AA23 reverted", regrant))
    assert (
        hint
        == f"the module refused to enable the session's grant, not the call under its policy: {grant_refusal_todo('PermissionAlreadyGranted')}"
    )
    assert "revoke that session first" in hint
    assert validation_hint("AA23", _failed_op("AA23 reverted", RULE_VIOLATED)) is None
    assert grant_refusal_todo("RuleViolated") is None


# -- the session report --------------------------------------------------------------------------------------------

ACCOUNT = to_address("0x" + "ac" * 20)
TOKEN = to_address("0x" + "70" * 20)
SHOP = to_address("0x" + "5b" * 20)
START = 1_900_000_000
TRANSFER = parse_signature("transfer(address,uint256)").selector
PAY = parse_signature("pay(address,uint256)").selector


def _rule(
    offset: int, arg_type: int, value: int, name: str | None = None, condition: int = Condition.EQUAL
) -> Rule:
    return Rule(condition=condition, offset=offset, arg_type=arg_type, values=(value,), name=name)


def _grant(session: Session, how: Literal["onchain", "offchain"] = "offchain") -> SessionGrant:
    return stored_grant(session, ACCOUNT, how=how)


def _session(**fields: Any) -> Session:
    base: dict[str, Any] = {
        "session_key": KEY,
        "valid_after": START,
        "valid_until": START + 86_400,
        "permissions": (Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),),
    }
    return Session(**(base | fields))


def test_wei_are_shown_as_wei_below_a_million_and_as_exact_ether_above() -> None:
    assert describe_wei(999_999) == "999999 wei"
    assert describe_wei(10**16) == "0.01 ETH"
    assert describe_wei(2 * 10**18) == "2 ETH"


def test_a_permission_s_rules_are_all_shown_joined_by_and_with_addresses_checksummed() -> None:
    permission = Permission(
        target=TOKEN,
        selector=TRANSFER,
        function="transfer(address,uint256)",
        value_limit=10**16,
        rules=(
            _rule(0, ArgType.ADDRESS, int(SHOP, 16)),
            _rule(32, ArgType.UINT256, 5, None, Condition.LESS_THAN_OR_EQUAL),
        ),
    )
    assert describe_permission(permission) == (
        f"call transfer(address to,uint256 amount) on {TOKEN}, where to must be {SHOP} and amount must be at most 5; "
        "at most 0.01 ETH per call"
    )


def test_a_rule_s_label_naming_another_argument_or_another_depth_is_not_taken() -> None:
    """``pay(address shop,uint256)``: a rule on the unnamed second argument labelled ``shop`` (the first argument's
    name) or ``amt.value`` (a path of two steps) is named ``arg1``; a fitting label (``amount``) is taken."""
    for label in ("shop", "amt.value"):
        permission = Permission(
            target=TOKEN,
            selector=PAY,
            function="pay(address shop,uint256)",
            rules=(_rule(32, ArgType.UINT256, 5, label, Condition.LESS_THAN_OR_EQUAL),),
        )
        assert "where arg1 must be at most 5;" in describe_permission(permission), label
    fitting = Permission(
        target=TOKEN,
        selector=PAY,
        function="pay(address shop,uint256)",
        rules=(_rule(32, ArgType.UINT256, 5, "amount", Condition.LESS_THAN_OR_EQUAL),),
    )
    assert "where amount must be at most 5;" in describe_permission(fitting)


def test_a_rule_label_with_an_overlong_name_is_not_shown_where_no_function_is_declared() -> None:
    long = "a" * 65
    permission = Permission(target=TOKEN, selector=PAY, rules=(_rule(0, ArgType.UINT256, 5, long),))
    described = describe_permission(permission)
    assert long not in described and "word at offset 0 must be 5" in described, described


def test_a_fixed_point_argument_s_bound_is_shown_at_its_decimals_only_when_its_rule_reads_it_as_declared() -> (
    None
):
    """``fixed168x10 minPrice``: a rule of ``int168`` reads the word as declared, so its bound is shown as the target
    reads it; a rule of ``uint256`` reads it otherwise (a negative price's word is a huge unsigned one), so its bound
    stays the word it compares (attack 363)."""
    sell = parse_signature("sell(uint256,fixed168x10)").selector

    def described(arg_type: int) -> str:
        rule = _rule(32, arg_type, 2000, None, Condition.GREATER_THAN_OR_EQUAL)
        return describe_permission(
            Permission(
                target=TOKEN,
                selector=sell,
                function="sell(uint256 amount,fixed168x10 minPrice)",
                rules=(rule,),
            )
        )

    assert "where minPrice must be at least 0.0000002 (the word 2000);" in described(ArgType.int_of(168))
    assert "where minPrice must be at least 2000;" in described(ArgType.UINT256)


def test_a_duration_is_shown_to_its_two_largest_units() -> None:
    assert describe_duration(86_400 + 3_600 + 61) == "1 d 1 h"
    assert describe_duration(59) == "59 s"


def test_a_report_s_window_and_time_left_say_when_the_session_starts_and_whether_it_is_dead() -> None:
    grant = _grant(_session())
    early = report_from_store(grant, StoreMarks(revoked=False, enabled=True), now=START - 600)
    assert early.describe_time_left() == "starts in 10 min"
    assert f"window  from {utc_text(START)} until {utc_text(START + 86_400)}" in str(early)
    dead = unjudged(grant, SessionStatus.INVALIDATED.value, now=START)
    assert dead.time_left == 0 and dead.describe_time_left() == "none: invalidated"


def test_a_store_s_revocation_is_a_disagreement_only_while_the_chain_holds_the_session_live() -> None:
    marked = StoreMarks(revoked=True, enabled=True)
    live = SessionReport(_grant(_session()), SessionStatus.ACTIVE.value, START, "chain", marked)
    assert any("marked revoked in the store but not on chain" in note for note in live.disagreements)
    both = SessionReport(_grant(_session()), SessionStatus.REVOKED.value, START, "chain", marked)
    assert both.disagreements == []


def test_an_onchain_grant_is_enabled_whatever_the_store_saw() -> None:
    grant = _grant(_session(), how="onchain")
    unseen = StoreMarks(revoked=False, enabled=False)
    assert report_from_store(grant, unseen, now=START + 1).status == SessionStatus.ACTIVE.value
    live = SessionReport(grant, SessionStatus.ACTIVE.value, START + 1, "chain", unseen)
    assert live.disagreements == []


def test_what_the_chain_said_is_among_the_report_s_dangers() -> None:
    said = f"approve on {TOKEN}: the token answers getApproved too"
    report = SessionReport(
        _grant(_session()), SessionStatus.ACTIVE.value, START, "chain", chain_dangers=(said,)
    )
    assert report.dangers == [  # the transfer's cautions, as from a store: no chain said what the token is
        f"transfer on {TOKEN}: may send to ANY address: no rule holds the recipient to one you know",
        f"transfer on {TOKEN}: no rule caps the amount of one call",
        said,
    ]


def test_a_co_signer_the_owner_replaced_is_shown_with_the_one_granted() -> None:
    granted, held = to_address("0x" + "c0" * 20), to_address("0x" + "c1" * 20)
    grant = _grant(_session(co_signer=granted))
    replaced = SessionReport(grant, SessionStatus.ACTIVE.value, START, "chain", co_signer_record=(True, held))
    assert f"  cosigned by {held} (the owner replaced {granted}, the co-signer granted)" in replaced.lines()
    kept = SessionReport(grant, SessionStatus.ACTIVE.value, START, "chain", co_signer_record=(True, granted))
    assert f"  cosigned by {granted}" in kept.lines()


def test_a_session_that_only_signs_in_says_so() -> None:
    session = _session(permissions=(), sign_in=("example.com",))
    report = report_from_store(_grant(session), StoreMarks(revoked=False, enabled=True), now=START + 1)
    assert report.signing and "example.com" in " ".join(report.signing), report.signing


def test_a_typed_data_rule_s_value_is_shown_as_its_field_reads_it() -> None:
    address_rule = _rule(0, ArgType.ADDRESS, int(SHOP, 16))
    assert _typed_value(int(SHOP, 16), address_rule, "address") == SHOP
    signed = _rule(0, ArgType.INT256, 2**256 - 5)
    assert _typed_value(2**256 - 5, signed, "int256") == "-5"


# -- the wording of limits -----------------------------------------------------------------------------------------


def _limit(kind: LimitKind, amount: int, period: int = 0, **fields: Any) -> Limit:
    return Limit(kind=kind, amount=amount, period=period, **fields)


def test_an_enforced_amount_is_exact_ether_for_value_and_gas_and_named_by_its_kind_otherwise() -> None:
    assert enforced_amount(_limit(LimitKind.NATIVE, 10**16), 10**16) == "0.01 ETH"
    assert enforced_amount(_limit(LimitKind.GAS, 10**18), 15 * 10**17) == "1.5 ETH"
    assert enforced_amount(_limit(LimitKind.GAS, 10**18), 12_345 * 10**18, unit=False) == "12,345"
    assert enforced_amount(_limit(LimitKind.CALLS, 3), 3) == "3 calls"
    assert enforced_amount(_limit(LimitKind.OPERATIONS, 3), 3) == "3 operations"
    assert enforced_amount(_limit(LimitKind.AMOUNT, 5), 5_000_000) == "5,000,000 base units"


def test_a_limit_s_name_is_quoted_as_the_dapp_s_and_its_amount_is_never_in_the_grant_s_unit() -> None:
    named = _limit(LimitKind.AMOUNT, 5_000_000, 86_400, name="USDC allowance", unit="USDC", decimals=6)
    assert owner_label(named, 2) == "limit 2 ('USDC allowance', the dapp's unsigned label)"
    assert owner_label(_limit(LimitKind.CALLS, 3), 0) == "limit 0 (calls)"
    assert limit_fields(named, 2)["text"] == (
        "limit 2 ('USDC allowance', the dapp's unsigned label): at most 5,000,000 base units per day"
    )


def test_a_limit_row_says_what_is_used_of_what_per_period_and_what_is_left() -> None:
    limit = _limit(LimitKind.CALLS, 10, 5_400)
    assert limit.per == "per 5400s"
    row = LimitUsage(0, limit, 3, 7, START, START + 5_400)
    assert (
        row.enforced_text()
        == f"limit 0 (calls): 3 of 10 calls used per 5400s, 7 calls left; resets {reset_text(START + 5_400)}"
    )


def test_a_period_s_use_is_read_as_counted_and_resets_when_the_next_period_begins() -> None:
    session = _session(limits=(_limit(LimitKind.CALLS, 10, 3_600),))
    counted = (Counter(left=4, period=1),)
    (now,) = usage_of(session, counted, START + 3_600 + 5)
    assert (now.used, now.left, now.period_start, now.resets_at) == (6, 4, START + 3_600, START + 7_200)
    (later,) = usage_of(session, counted, START + 7_200)
    assert (later.used, later.left, later.period_start) == (0, 10, START + 7_200)


def test_the_consent_page_s_limit_lines_name_each_kind_its_period_and_how_periods_count() -> None:
    session = _session(
        valid_after=START,
        limits=(
            _limit(LimitKind.OPERATIONS, 5, 86_400),
            _limit(LimitKind.GAS, 10**16, 86_400),
            _limit(LimitKind.CALLS, 7),
        ),
    )
    lines = consent_limits(session)
    periods = f" (fixed periods back to back from {utc_text(START)}, each with the whole amount"
    assert lines[0].startswith("At most 5 operations per day" + periods), lines[0]
    assert lines[1].startswith("At most 0.01 ETH in gas fees per day, all operations together" + periods), (
        lines[1]
    )
    assert lines[2].startswith("At most 7 calls over the session's life, of all of:"), lines[2]
    assert "fixed periods" not in lines[2]


def test_the_consent_page_s_usage_says_what_is_left_and_when_it_resets() -> None:
    session = _session(limits=(_limit(LimitKind.CALLS, 10, 3_600),))
    row = LimitUsage(0, session.limits[0], 3, 7, START, START + 3_600)
    assert limit_usage_words(row, session, None) == (
        f"limit 0 (calls): 3 of 10 calls used per hour, 7 calls left; resets {utc_text(START + 3_600)}"
        + period_note(session.limits[0], session.valid_after)
    )


# -- signing: sign-in messages, a refusal's words ------------------------------------------------------------------

PERMIT2 = to_address("0x" + "44" * 20)
SIGNER_SESSION = Session(
    session_key=KEY,
    typed_data_permissions=(
        Policy.typed_data(
            {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2},
            PERMIT_SINGLE_TYPES,
            "PermitSingle",
            [arg("details", "amount") <= 100],
        ),
    ),
    sign_in=("app.example.com",),
)


def _sign_in(statement: str | None = "Sign in to the app.") -> str:
    return sign_in_message(
        "app.example.com",
        ACCOUNT,
        uri="https://app.example.com",
        chain_id=1,
        statement=statement,
        nonce="abcd1234",
        issued_at="2030-01-01T00:00:00Z",
    )


def test_a_sign_in_message_is_laid_out_as_eip_4361_writes_it() -> None:
    assert _sign_in() == (
        f"app.example.com wants you to sign in with your Ethereum account:\n{ACCOUNT}\n\nSign in to the app.\n\n"
        "URI: https://app.example.com\nVersion: 1\nChain ID: 1\nNonce: abcd1234\nIssued At: 2030-01-01T00:00:00Z"
    )
    assert _sign_in(None).startswith(
        f"account:\n{ACCOUNT}\n\nURI: ", len("app.example.com wants you to sign in with your Ethereum ")
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("version", "1\nURI: https://evil.example"), ("nonce", "abcd-1234")],
)
def test_a_sign_in_message_refuses_a_version_of_two_lines_and_a_nonce_of_other_characters(
    field: str, value: str
) -> None:
    given: dict[str, Any] = {
        "uri": "https://app.example.com",
        "chain_id": 1,
        "nonce": "abcd1234",
        "issued_at": "2030",
    }
    with pytest.raises(BadInputError, match=field):
        sign_in_message("app.example.com", ACCOUNT, **(given | {field: value}))


def test_a_sign_in_check_names_its_permission_after_the_typed_data_ones_and_hashes_as_eip_191() -> None:
    message = _sign_in()
    check = check_sign_in(SIGNER_SESSION, message, account=ACCOUNT, session_id="0x01")
    assert check.permission_index == 1
    assert check.first_line_length == len(
        "app.example.com wants you to sign in with your Ethereum account:\n"
    )
    assert check.hash == _defunct_hash(encode_defunct(text=message))


def test_a_refused_sign_in_says_every_signing_permission_the_session_has() -> None:
    with pytest.raises(
        SignatureRefusedError,
        match=re.escape("may sign PermitSingle in the domain Permit2, sign-in to app.example.com"),
    ):
        check_sign_in(
            SIGNER_SESSION, _sign_in().replace("app.", "evil.", 1), account=ACCOUNT, session_id="0x01"
        )


def test_a_signed_word_a_rule_refuses_is_shown_as_its_negative_number() -> None:
    assert _shown(_rule(0, ArgType.INT256, 0), 2**256 - 5) == "-5"
    assert _shown(_rule(0, ArgType.UINT256, 0), 2**256 - 5) == f"0x{2**256 - 5:064x}"


def test_a_report_says_a_periodic_limit_counts_in_fixed_periods_as_the_consent_page_does() -> None:
    """Attack 135 in the session report (threat-model row 414): ``owner.sessions()``, ``session.status()`` and
    ``keyscope sessions`` said "at most 5,000,000 base units per day", which an owner reads as any 24 hours; the
    module counts fixed periods back to back from the session's start, so the whole amount just before a period ends
    and again just after both pass. Each periodic limit's line now says so, as the consent page's does; a limit over
    the session's life says nothing of periods."""
    session = _session(limits=(_limit(LimitKind.AMOUNT, 5_000_000, 86_400), _limit(LimitKind.CALLS, 7)))
    note = (
        f" (fixed periods back to back from {utc_text(START)}, each with the whole amount: up to twice it may go "
        "within moments across a period's end)"
    )
    grant = _grant(session)
    stored = report_from_store(grant, StoreMarks(revoked=False, enabled=True), now=START + 1)
    daily, lifetime = stored.limits
    assert daily == "limit 0 (amount): at most 5,000,000 base units per day" + note, daily
    assert lifetime == "limit 1 (calls): at most 7 calls over the session's life", lifetime
    usage = usage_of(session, (Counter(left=4_000_000), Counter(left=7)), START + 1)
    read = SessionReport(grant, SessionStatus.ACTIVE.value, START + 1, "chain", usage=usage)
    daily, lifetime = read.limits
    assert daily.endswith(f"; resets {reset_text(START + 86_400)}" + note), daily
    assert "fixed periods" not in lifetime, lifetime
    assert f"  limit   {daily}" in read.lines()


def test_a_collection_s_limit_is_in_token_ids_never_scaled_at_the_decimals_it_reports() -> None:
    """An AMOUNT limit on a collection's ``transferFrom`` counts token ids, whatever ``decimals()`` the collection
    answers (attack 371): the page and the usage give base units, with no amount of the token."""
    nft = to_address("0x" + "7e" * 20)
    transfer_from = parse_signature("transferFrom(address,address,uint256)").selector
    session = _session(
        permissions=(
            Permission(target=nft, selector=transfer_from, function="transferFrom(address,address,uint256)"),
        ),
        limits=(Limit(kind=LimitKind.AMOUNT, amount=3, meters=(Meter(permission=0, offset=64),)),),
    )
    facts = Facts(
        contract=lambda address: ContractFacts(address, True, TokenFacts("NFT", "Demo NFT", 18), erc721=True),
        is_module=lambda address: None,
    )
    (line,) = consent_limits(session, facts)
    assert line.startswith("At most 3 base units over the session's life"), line
    (row,) = usage_of(session, (Counter(left=3),), START + 1)
    assert limit_usage_words(row, session, facts) == (
        "limit 0 (amount): 0 of 3 base units used over the session's life, 3 base units left"
    )


def test_an_array_of_structs_is_no_struct() -> None:
    types = TypedData(
        {
            "types": {"EIP712Domain": [], **PERMIT_SINGLE_TYPES},
            "primaryType": "PermitSingle",
            "domain": {},
            "message": {},
        }
    ).types
    assert is_struct("PermitDetails", types)
    assert not is_struct("PermitDetails[]", types) and not is_struct("PermitDetails[2]", types)
