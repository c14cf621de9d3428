"""The fifteenth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it
let pass in a bundler's refusals said as the SDK's errors, the AA21 refusal's numbers, the consent page's warnings
round fourteen left, a grant's signing side in words, the token amounts scaled at their decimals and the session
report's reads on chain.

Pinned here, without a chain (a stub node stands for the account and the EntryPoint where one is read):

* a bundler's refusal (``keyscope.bundler_refusals``): Alto's window words without ERC-7769's code, a refusal that
  names no moment, the second before a session starts, the next period's start, a target's revert of four bytes and
  the call named by its own data;
* the AA21 refusal (``keyscope.operations.prefund_refusal``, ``keyscope.gas.required_prefund``): only AA21, a
  sponsored operation's prefund not the account's, the shortfall counting the deposit;
* the consent page's warnings (``keyscope.consent.describe``): the year 10000, a canonical EntryPoint, a plain
  transfer to a fallback handler, the account's domain of its verifying contract alone, a standing approval's
  permission, a total of a signed argument, a token moved past its allowance;
* the report's reads on chain (``keyscope.passing_for``, ``keyscope.report``): what a bound in shares costs, an
  answer that is no word, a vault that reverts, a token that cannot be read, a hybrid's ``transfer``;
* the signing side (``keyscope.signing_words``): a first rule misread, a co-signer the module has no record of;
* token amounts (``keyscope.token_facts``): decimals of one word up to 77, ``getApproved`` answered by a word, a
  limit scaled only for a token amount of a token, a plain transfer to a token;
* row 429: a bundler's "not yet valid" is a session not started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, Literal, cast

from eth_abi import decode as abi_decode

from keyscope.bundler_refusals import describe_call, session_refusal, target_refusal
from keyscope.chain import Chain
from keyscope.clock import LAST_READABLE_TIME, utc_moment
from keyscope.consent.describe import Facts, GrantDescription, describe_session
from keyscope.endpoints import Endpoints
from keyscope.errors import (
    BundlerRejectedError,
    CallRevertedError,
    InsufficientPrefundError,
    LimitPeriodEndingError,
    SessionExpiredError,
    SessionNotYetValidError,
    SimulationRevertedError,
    TargetRevertedError,
    TransportError,
)
from keyscope.execution import Call
from keyscope.gas import required_prefund
from keyscope.grant import SessionGrant
from keyscope.hexutil import keccak, to_address
from keyscope.known_functions import UNLIMITED
from keyscope.limits import Counter, usage_of
from keyscope.operations import prefund_refusal
from keyscope.passing_for import shares_worth, token_id_danger
from keyscope.policy import Policy, parse_signature
from keyscope.report import _shares_worth, _token_id_danger
from keyscope.session import ArgType, Condition, Limit, LimitKind, Meter, Permission, Rule, Session
from keyscope.signing_words import co_signer_line, held_co_signer_line, signing_lines
from keyscope.standing_approvals import StandingApproval, StandingApprovals
from keyscope.token_facts import ContractFacts, TokenFacts, contract_facts, scale_limit, uncounted_assets
from keyscope.userop import UserOperation
from support.session_fixtures import stored_grant

ACCOUNT = to_address("0x" + "ac" * 20)
KEY = to_address("0x" + "5e" * 20)
TOKEN = to_address("0x" + "70" * 20)
START = 1_900_000_000
DAY = 86_400
TRANSFER = parse_signature("transfer(address,uint256)").selector
APPROVE = parse_signature("approve(address,uint256)").selector


def _grant(session: Session, how: Literal["onchain", "offchain"] = "offchain") -> SessionGrant:
    return stored_grant(session, ACCOUNT, how=how)


def _session(**fields: Any) -> Session:
    base: dict[str, Any] = {
        "session_key": KEY,
        "valid_after": START,
        "valid_until": START + DAY,
        "permissions": (Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),),
    }
    return Session(**(base | fields))


def _daily(session_start: int = START) -> Session:
    """A session from ``session_start`` for a day with a limit of 100 transfers an hour."""
    return _session(
        valid_after=session_start,
        limits=(
            Limit(kind=LimitKind.CALLS, amount=100, period=3_600, meters=(Meter(permission=0, offset=0),)),
        ),
    )


def _refusal(message: str, code: int = -32503) -> BundlerRejectedError:
    return BundlerRejectedError("eth_sendUserOperation", code, message)


# -- a bundler's refusal ---------------------------------------------------------------------------------------------


def test_alto_s_window_words_are_read_whatever_the_code_it_answers_with() -> None:
    """Alto says "not valid yet" (or "expires too soon") under a code that is not ERC-7769's -32503: its words alone
    make the refusal the session's window's."""
    grant = _grant(_session())
    early = session_refusal(grant, _refusal(f"UserOperation not valid yet: validAfter={START}", code=-32500))
    assert isinstance(early, SessionNotYetValidError), early
    late = session_refusal(grant, _refusal(f"expires too soon: validUntil={START + DAY}", code=-32500))
    assert isinstance(late, SessionExpiredError), late
    assert session_refusal(grant, _refusal("AA23 reverted", code=-32500)) is None


def test_a_window_refusal_naming_no_moment_is_the_session_s_own_window() -> None:
    """A bundler that names no validAfter or validUntil: the session's own window explains the refusal (the SDK's
    error, not the bundler's bare words), and a -32503 saying "valid yet" in other words is about the start."""
    grant = _grant(_session())
    assert isinstance(session_refusal(grant, _refusal("operation is not valid yet")), SessionNotYetValidError)
    assert isinstance(session_refusal(grant, _refusal("operation isn't valid yet")), SessionNotYetValidError)
    assert isinstance(session_refusal(grant, _refusal("operation expires too soon")), SessionExpiredError)


def test_a_moment_before_the_session_starts_ends_none_of_its_periods() -> None:
    """Periods start at the session's validAfter: the second before it ends no period (an operation valid until then
    is refused for another window, passed on as the bundler said it), the last second of the first period does."""
    grant = _grant(_daily())
    before = _refusal(f"expires too soon: validUntil={START - 1}, now={START - 10}")
    assert session_refusal(_grant(_daily()), before) is None
    ending = session_refusal(
        grant, _refusal(f"expires too soon: validUntil={START + 3_599}, now={START + 3_590}")
    )
    assert isinstance(ending, LimitPeriodEndingError), ending
    assert f"wait until the next period begins at {utc_moment(START + 3_600)}" in str(ending)
    ended = session_refusal(
        grant, _refusal(f"expires too soon: validUntil={START + 3_599}, now={START + 3_601}")
    )
    assert isinstance(ended, LimitPeriodEndingError), ended
    assert f"counts in the period that began at {utc_moment(START + 3_600)}" in str(ended)


EMPTY_BATCH = keccak(b"EmptyBatch()")[:4]


def test_a_target_s_revert_of_four_bytes_is_said_and_a_simulation_s_decoded_revert_is_kept() -> None:
    """An error without arguments is four bytes (``0x`` and 8 hex digits): it is the target's reason, not "no revert
    data"; a bundler error that decoded its revert already (SimulationRevertedError) gives that."""
    grant = _grant(_session())
    call = Call(target=TOKEN, data=TRANSFER + bytes(64))
    reverted = target_refusal(
        grant,
        BundlerRejectedError("eth_sendUserOperation", -32521, "reverted", "0x" + EMPTY_BATCH.hex()),
        call,
    )
    assert isinstance(reverted, TargetRevertedError) and reverted.revert_reason == "EmptyBatch()", reverted
    simulated = SimulationRevertedError(
        "eth_sendUserOperation",
        -32521,
        "reverted",
        None,
        revert_data=b"",
        revert_description="Paused(by=owner)",
    )
    said = target_refusal(grant, simulated, call)
    assert isinstance(said, TargetRevertedError) and said.revert_reason == "Paused(by=owner)", said


def test_a_call_is_named_by_its_data_not_by_its_value() -> None:
    """A call of a selector the session has no permission for is named by that selector, whatever ETH it carries
    (none here); a call without data is a plain transfer."""
    grant = _grant(_session())
    assert (
        describe_call(grant, Call(target=TOKEN, data=APPROVE + bytes(64)))
        == f"selector 0x{APPROVE.hex()} on {TOKEN}"
    )
    assert describe_call(grant, Call(target=TOKEN, value=5)) == f"a plain transfer on {TOKEN}"


# -- the AA21 refusal ------------------------------------------------------------------------------------------------

ENTRY_POINT = to_address("0x0000000071727de22e5e9d8baf0edac6f37da032")
PAYMASTER = to_address("0x" + "9a" * 20)


class _Deposits:
    """A node where the account holds ``balance`` wei and ``deposit`` wei at the EntryPoint (and the EntryPoint
    itself a fortune): the only two reads of an AA21 refusal."""

    def __init__(self, balance: int, deposit: int) -> None:
        self.balance = balance
        self.deposit = deposit

    def get_balance(self, address: str) -> int:
        return self.balance if to_address(address) == ACCOUNT else 10**30

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        assert to_address(to) == ENTRY_POINT and data[:4] == keccak(b"balanceOf(address)")[:4]
        (account,) = abi_decode(["address"], data[4:])
        return (self.deposit if to_address(account) == ACCOUNT else 0).to_bytes(32, "big")


class _Network:
    def __init__(self, balance: int, deposit: int) -> None:
        self.chain = _Deposits(balance, deposit)
        self.entry_point = ENTRY_POINT


def _op(**fields: Any) -> UserOperation:
    base: dict[str, Any] = {
        "sender": ACCOUNT,
        "nonce": 0,
        "call_gas_limit": 100_000,
        "verification_gas_limit": 200_000,
        "pre_verification_gas": 50_000,
        "max_fee_per_gas": 10**9,
        "paymaster_verification_gas_limit": 70_000,
        "paymaster_post_op_gas_limit": 30_000,
    }
    return UserOperation(**(base | fields))


def _aa21(network: _Network, op: UserOperation | None, reason: str = "AA21 didn't pay prefund") -> Any:
    error = BundlerRejectedError("eth_sendUserOperation", -32500, reason)
    return prefund_refusal(cast(Endpoints, network), ACCOUNT, error, op)


def test_an_aa21_refusal_says_what_the_account_lacks_counting_its_balance_and_its_deposit() -> None:
    """The prefund is every gas limit the EntryPoint reads times the fee (a paymaster's two only with a paymaster);
    what to send is the prefund less the balance and the deposit together."""
    op = _op()
    assert required_prefund(op) == 350_000 * 10**9
    assert required_prefund(_op(paymaster=PAYMASTER)) == 450_000 * 10**9
    refusal = _aa21(_Network(balance=10**14, deposit=5 * 10**13), op)
    assert isinstance(refusal, InsufficientPrefundError), refusal
    assert (refusal.balance, refusal.deposit, refusal.cost) == (10**14, 5 * 10**13, 350_000 * 10**9)
    assert f"send it at least {350_000 * 10**9 - 15 * 10**13:,} wei more" in str(refusal), refusal
    covered = _aa21(_Network(balance=3 * 10**14, deposit=10**14), op)
    assert isinstance(covered, InsufficientPrefundError) and "; send it ETH," in str(covered), covered


def test_only_aa21_is_a_prefund_refusal_and_a_sponsored_operation_s_cost_is_not_the_account_s() -> None:
    """Another refusal (AA23, AA31: the paymaster's deposit) is not said to be the account's funds; an operation a
    paymaster pays for has no prefund of the account's to name."""
    network = _Network(balance=0, deposit=0)
    assert _aa21(network, _op(), "AA23 reverted") is None
    assert _aa21(network, _op(paymaster=PAYMASTER), "AA31 paymaster deposit too low") is None
    sponsored = _aa21(network, _op(paymaster=PAYMASTER))
    assert isinstance(sponsored, InsufficientPrefundError) and sponsored.cost is None, sponsored


# -- the consent page's warnings -------------------------------------------------------------------------------------


def _no_code(address: str) -> ContractFacts:
    return ContractFacts(address, False, None)


def _describe(session: Session, **facts: Any) -> GrantDescription:
    chain = Facts(**({"contract": _no_code, "is_module": lambda address: None} | facts))
    return describe_session(session, account=ACCOUNT, chain_id=31337, facts=chain)


def _dangers(described: GrantDescription) -> list[str]:
    return [warning.text for warning in described.warnings if warning.level == "danger"]


def test_a_session_ending_past_the_last_readable_second_is_said_never_to_expire() -> None:
    """The first second of the year 10000 is past what a reader reads as a date: the session is said to last until
    revoked; the last second of 9999 is a date."""
    past = _dangers(_describe(_session(valid_until=LAST_READABLE_TIME + 1, max_gas_cost=10**15)))
    assert any(text.startswith("This session ends only after the year 9999") for text in past), past
    last = _dangers(_describe(_session(valid_until=LAST_READABLE_TIME, max_gas_cost=10**15)))
    assert not any("year 9999" in text for text in last), last


def test_a_canonical_entry_point_is_warned_of_whatever_entry_point_the_page_was_told() -> None:
    """A permission on a canonical EntryPoint may withdraw the account's deposit: warned of when the page knows no
    EntryPoint, or another one."""
    entry_point = to_address("0x0000000071727de22e5e9d8baf0edac6f37da032")
    withdraw = parse_signature("withdrawTo(address,uint256)").selector
    session = _session(
        permissions=(
            Permission(target=entry_point, selector=withdraw, function="withdrawTo(address,uint256)"),
        )
    )
    for told in (None, to_address("0x" + "e9" * 20)):
        dangers = _dangers(_describe(session, entry_point=told))
        assert (
            f"{entry_point} is the EntryPoint: the session may withdraw the account's deposit there"
            in dangers
        )


def test_a_plain_transfer_is_not_said_to_be_routed_to_a_fallback_handler() -> None:
    """The fallback question is about a selector: a plain transfer (no selector) to the handler calls no function
    the account routes, and the module enables it; the same handler's function is warned of."""
    handler = to_address("0x" + "fb" * 20)
    routes_everything = Facts(
        contract=_no_code, is_module=lambda address: None, routes_to=lambda target, sel: True
    )
    plain = _session(permissions=(Permission(target=handler, selector=bytes(4), value_limit=10**15),))
    described = describe_session(plain, account=ACCOUNT, chain_id=31337, facts=routes_everything)
    assert not any("fallback handler" in text for text in _dangers(described)), described.warnings
    called = _session(
        permissions=(Permission(target=handler, selector=TRANSFER, function="transfer(address,uint256)"),)
    )
    described = describe_session(called, account=ACCOUNT, chain_id=31337, facts=routes_everything)
    assert any(
        f"{handler} is the fallback handler this account routes 0x{TRANSFER.hex()} to" in text
        for text in _dangers(described)
    ), described.warnings


def test_typed_data_in_the_account_s_domain_is_warned_of_whatever_other_domain_fields_it_names() -> None:
    """A domain of the verifying contract alone (no name, version or chain) that is the account's: the session
    could approve as the owner what the account's owner approves by typed data."""
    own = Policy.typed_data(
        {"verifyingContract": ACCOUNT}, {"Approval": [{"name": "hash", "type": "bytes32"}]}, "Approval"
    )
    dangers = _dangers(_describe(_session(typed_data_permissions=(own,))))
    assert any(
        text.startswith(f"{ACCOUNT} is this account itself: the Approval messages") for text in dangers
    ), dangers


def test_a_standing_approval_is_warned_of_on_the_first_permission_calling_its_spender() -> None:
    """The page puts an approval the account gave before the grant on the first permission calling the spender, the
    one the owner reads first (attack 357)."""
    router = to_address("0x" + "5b" * 20)
    swap = parse_signature("swap(uint256)").selector
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=router, selector=swap, function="swap(uint256)"),
            Permission(target=router, selector=APPROVE, function="approve(address,uint256)"),
        )
    )
    asked: list[list[str]] = []

    def standing(targets: Sequence[str]) -> StandingApprovals:
        asked.append(list(targets))
        return StandingApprovals(found=(StandingApproval(router, TOKEN, "allowance", amount=5),))

    described = _describe(session, standing_approvals=standing)
    assert asked == [[TOKEN, router]]
    (found,) = [w for w in described.warnings if w.text.startswith(f"{router} already holds")]
    assert found.permission == 1 and found.level == "danger", found


def test_an_argument_total_counting_a_signed_number_is_warned_of_and_one_counting_an_unsigned_is_not() -> (
    None
):
    """The module adds up whatever word the meter reads: a total of an ``int256`` argument adds a negative number's
    word as an amount near 2**256, so it is no total of what the function reads (attack 255)."""
    adjust = parse_signature("adjust(int256,uint256)")
    permission = Permission(target=TOKEN, selector=adjust.selector, function="adjust(int256,uint256)")

    def total_at(offset: int) -> Session:
        meter = Meter(permission=0, offset=offset)
        return _session(
            permissions=(permission,), limits=(Limit(kind=LimitKind.AMOUNT, amount=10, meters=(meter,)),)
        )

    signed = _dangers(_describe(total_at(0)))
    assert any("which is no unsigned number" in text and "(int256)" in text for text in signed), signed
    unsigned = _dangers(_describe(total_at(32)))
    assert not any("no unsigned number" in text for text in unsigned), unsigned


def test_a_token_moved_past_its_allowance_by_the_first_permission_is_said_to_be_the_token() -> None:
    """A permission that moves a token its allowance does not count (attack 336) is said to move the token, first
    permission or not, never ETH."""
    burn = parse_signature("burn(uint256)").selector
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=burn, function="burn(uint256)"),
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
        ),
        limits=(Limit(kind=LimitKind.AMOUNT, amount=10, meters=(Meter(permission=1, offset=32),)),),
    )
    (found,) = [w for w in _describe(session).warnings if "does not count" in w.text]
    assert found.permission == 0 and "may move this token through it beyond that amount" in found.text, found


# -- the session report's reads on chain ------------------------------------------------------------------------------

VAULT = to_address("0x" + "4a" * 20)
ASSET = to_address("0x" + "a5" * 20)
MINT = parse_signature("mint(uint256,address)").selector
REDEEM = parse_signature("redeem(uint256,address,address)").selector
PREVIEW_MINT = keccak(b"previewMint(uint256)")[:4]


def _shares(selector: bytes, bound: int, *, at: int = 0) -> Permission:
    rule = Rule(condition=Condition.LESS_THAN_OR_EQUAL, offset=at, arg_type=ArgType.UINT256, values=(bound,))
    return Permission(target=VAULT, selector=selector, rules=(rule,))


def _vault(answers: dict[bytes, bytes]) -> Callable[[str, bytes], bytes | None]:
    """A vault's ``eth_call``: the answer to a selector (with the bound it was asked about checked), None otherwise."""

    def call(address: str, data: bytes) -> bytes | None:
        assert address == VAULT, address
        return answers.get(data[:4])

    return call


def _asset(address: str) -> ContractFacts:
    assert address == ASSET, address
    return ContractFacts(address, True, TokenFacts("USDC", "USD Coin", 6))


def test_what_a_bound_in_shares_costs_is_asked_of_the_bound_on_the_shares_and_said_in_the_asset() -> None:
    """``mint``'s first argument is the shares: their bound is asked of ``previewMint`` and the answer said at the
    asset's decimals; shares that cost more later, that return less later; one base unit is a unit."""
    asked: list[bytes] = []
    answers = {
        PREVIEW_MINT: (2_500_000).to_bytes(32, "big"),
        keccak(b"asset()")[:4]: bytes(12) + bytes.fromhex(ASSET[2:]),
    }

    def call(address: str, data: bytes) -> bytes | None:
        asked.append(data)
        return _vault(answers)(address, data)

    bound_elsewhere = Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=32, arg_type=ArgType.UINT256, values=(7,)
    )
    permission = _shares(MINT, 1_000).model_copy(
        update={"rules": (*_shares(MINT, 1_000).rules, bound_elsewhere)}
    )
    worth = shares_worth(permission, call, _asset)
    assert worth is not None and worth.known, worth
    assert asked[0] == PREVIEW_MINT + (1_000).to_bytes(32, "big")
    assert worth.text.startswith("1,000 shares cost 2.5 USDC (2,500,000 base units) now"), worth.text
    assert "may cost more later" in worth.text
    redeem = shares_worth(
        _shares(REDEEM, 1_000),
        _vault({keccak(b"previewRedeem(uint256)")[:4]: (1).to_bytes(32, "big")}),
        _asset,
    )
    assert (
        redeem is not None
        and "1 base unit of the vault's asset" in redeem.text
        and "may return less later" in redeem.text
    ), redeem


def test_an_answer_that_is_no_word_or_an_asset_that_is_no_address_is_not_taken() -> None:
    """``previewMint`` answering more than a word is no answer (a caution, not a number); an ``asset()`` word with
    bits above an address names no token whose decimals the assets could be said at; an unlimited bound asks
    nothing."""
    long = shares_worth(_shares(MINT, 1_000), _vault({PREVIEW_MINT: bytes(64)}), _asset)
    assert long is not None and not long.known and "gives no previewMint(uint256)" in long.text, long
    dirty = {
        PREVIEW_MINT: (5).to_bytes(32, "big"),
        keccak(b"asset()")[:4]: b"\x01" + bytes(11) + bytes.fromhex(ASSET[2:]),
    }
    worth = shares_worth(_shares(MINT, 1_000), _vault(dirty), _asset)
    assert worth is not None and "5 base units of the vault's asset" in worth.text, worth
    assert shares_worth(_shares(MINT, UNLIMITED), _vault({}), _asset) is None


class _Unreadable:
    """A node every call to which fails as a node does (a transport error), or reverts."""

    def __init__(self, revert: bool) -> None:
        self.revert = revert

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if self.revert:
            raise CallRevertedError("eth_call", to, b"", "execution reverted")
        raise TransportError("connection refused", method="eth_call")


def test_the_report_says_a_vault_that_reverts_gives_no_preview_and_passes_over_a_token_it_cannot_read() -> (
    None
):
    """A vault reverting ``previewMint`` is a caution in the report, as on the page (not nothing); a token the report
    cannot read gives no danger and no error."""
    endpoints = cast(Endpoints, SimpleNamespace(chain=_Unreadable(revert=True)))
    said = _shares_worth(endpoints, _asset, _shares(MINT, 1_000))
    assert said is not None and "gives no previewMint(uint256)" in said, said

    def unreadable(address: str) -> ContractFacts:
        raise TransportError("connection refused", method="eth_call")

    approve = Permission(target=TOKEN, selector=APPROVE, function="approve(address,uint256)")
    assert _token_id_danger(unreadable, approve) is None


def test_a_hybrid_token_s_danger_is_on_its_approve_and_transfer_from_only() -> None:
    """A token that answers a collection's ``getApproved`` too (attack 378) reads a number as a token id in
    ``approve``/``transferFrom``; its ``transfer`` takes an amount."""
    hybrid = ContractFacts(TOKEN, True, TokenFacts("HYB", "Hybrid", 18), token_ids=True)
    approve = Permission(target=TOKEN, selector=APPROVE, function="approve(address,uint256)")
    assert token_id_danger(approve, hybrid) is not None
    transfer = Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)")
    assert token_id_danger(transfer, hybrid) is None


# -- a grant's signing side in words --------------------------------------------------------------------------------

ORDER_TYPES = {"Order": [{"name": "buyer", "type": "address"}, {"name": "minPrice", "type": "uint64"}]}
ORDERS = to_address("0x" + "0b" * 20)


def test_a_grant_s_first_rule_reading_its_field_as_another_type_is_said_as_the_module_reads_it() -> None:
    """A hand-made grant whose rule 0 reads ``minPrice`` (uint64) as a whole word: the line says the word and the
    type the module judges it as, whatever the rule's index."""
    wide = Rule(condition=Condition.GREATER_THAN_OR_EQUAL, offset=32, arg_type=ArgType.WORD, values=(100,))
    built = Policy.typed_data({"name": "Orders", "verifyingContract": ORDERS}, ORDER_TYPES, "Order")
    session = Session.model_construct(
        session_key=KEY, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(), salt=0, permissions=(),
        limits=(), co_signer=None, typed_data_permissions=(built.model_copy(update={"rules": (wide,)}),), sign_in=(),
    )  # fmt: skip
    (line,) = signing_lines(session, lambda rule, kind: f"must be at least {rule.values[0]} as {kind}")
    assert (
        "the word at offset 32, read as uint256 (the field minPrice is uint64) must be at least 100 as uint256"
        in line
    ), line


def test_a_co_signer_the_module_has_no_record_of_is_shown_as_granted_not_as_removed() -> None:
    """``coSignerOf`` answers (false, zero) for a session it holds no record of (not enabled yet): the co-signer is
    the one granted, not one the owner removed; a record of zero is a removal."""
    granted = to_address("0x" + "c0" * 20)
    session = _session(co_signer=granted)
    zero = "0x" + "00" * 20
    assert held_co_signer_line(session, (False, zero)) == co_signer_line(session)
    removed = held_co_signer_line(session, (True, zero))
    assert removed == f"none: the owner removed the co-signer {granted}, so the session key signs alone", (
        removed
    )


# -- token amounts at their decimals ---------------------------------------------------------------------------------


class _Token:
    """A node holding one contract with code, which answers the selectors in ``answers`` and reverts the rest."""

    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00"

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        for selector, answer in self.answers.items():
            if data[:4] == selector:
                return answer
        raise CallRevertedError("eth_call", to, b"", "execution reverted")


def _facts(**answers: bytes) -> ContractFacts:
    by_selector = {keccak(f"{name}()".encode())[:4]: answer for name, answer in answers.items()}
    return contract_facts(cast(Chain, _Token(by_selector)), TOKEN)


def _word_of(value: int) -> bytes:
    return value.to_bytes(32, "big")


def test_a_token_s_decimals_are_one_word_of_at_most_77() -> None:
    """77 decimals is the most a uint256 amount can be shown at (10**77 < 2**256 < 10**78); an answer that is not one
    word is no number of decimals (the amounts stay in base units)."""
    token = _facts(decimals=_word_of(77)).token
    assert token is not None and token.decimals == 77, token
    assert _facts(decimals=_word_of(78), symbol=_word_of(0)).token is None
    token = _facts(decimals=bytes(32) + _word_of(6), symbol=b"USDC".ljust(32, b"\x00")).token
    assert token is not None and (token.symbol, token.decimals) == ("USDC", None), token


def test_a_token_is_said_to_answer_get_approved_only_for_a_word() -> None:
    """A token whose ``getApproved(uint256)`` answers a word is a possible hybrid (attack 378); an answer of another
    length (a fallback echoing its input) is not a collection's answer."""
    approved = keccak(b"getApproved(uint256)")[:4]
    answers = {keccak(b"decimals()")[:4]: _word_of(18), approved: _word_of(0)}
    assert contract_facts(cast(Chain, _Token(answers)), TOKEN).token_ids
    answers[approved] = bytes(36)
    assert not contract_facts(cast(Chain, _Token(answers)), TOKEN).token_ids


def test_a_limit_is_scaled_at_decimals_only_when_it_counts_a_token_amount_of_a_token_not_a_collection() -> (
    None
):
    """The report's scaled use (``scale_limit``): a limit on ``transfer``'s amount at the token's decimals; one on its
    recipient's word (no amount) not at all; a collection's token ids never, whatever decimals it reports (attack
    371)."""

    def limited(offset: int, target: str = TOKEN) -> Session:
        meter = Meter(permission=0, offset=offset)
        transfer = Permission(target=target, selector=TRANSFER, function="transfer(address,uint256)")
        return _session(
            permissions=(transfer,), limits=(Limit(kind=LimitKind.AMOUNT, amount=5 * 10**6, meters=(meter,)),)
        )

    def usdc(address: str) -> ContractFacts:
        return ContractFacts(address, True, TokenFacts("USDC", "USD Coin", 6))

    (amount,) = usage_of(limited(32), (Counter(left=4 * 10**6),), START + 1)
    scaled = scale_limit(amount, limited(32), usdc)
    assert scaled is not None and (scaled.amount, scaled.used, scaled.left) == ("5", "1", "4"), scaled
    (recipient,) = usage_of(limited(0), (Counter(left=4 * 10**6),), START + 1)
    assert scale_limit(recipient, limited(0), usdc) is None

    def collection(address: str) -> ContractFacts:
        return ContractFacts(address, True, TokenFacts("NFT", "Demo NFT", 18), erc721=True)

    ids = scale_limit(amount, limited(32), collection)
    assert (
        ids is not None and ids.decimals is None and "is an ERC-721 collection: base units only" in ids.text
    ), ids


def test_a_plain_transfer_to_a_token_is_not_said_to_move_the_token_past_its_allowance() -> None:
    """A permission of no selector calls no token function: it moves no token past the allowance (attack 336 is a
    function the allowance does not count), while a function the allowance does not count does."""
    burn = parse_signature("burn(uint256)").selector
    session = _session(
        permissions=(
            Permission(target=TOKEN, selector=TRANSFER, function="transfer(address,uint256)"),
            Permission(target=TOKEN, selector=bytes(4)),
            Permission(target=TOKEN, selector=burn, function="burn(uint256)"),
        ),
        limits=(Limit(kind=LimitKind.AMOUNT, amount=10, meters=(Meter(permission=0, offset=32),)),),
    )
    assert [(found.permission, found.asset) for found in uncounted_assets(session)] == [(2, "token")]


def test_a_bundler_saying_not_yet_valid_is_refusing_a_session_not_started_not_one_expiring() -> None:
    """Row 429: a -32503 that says "not yet valid" (the words of ERC-7769's time range, in the other order than
    Alto's "not valid yet") is about the session's start: wait, not ask the owner for a new session."""
    grant = _grant(_session())
    for message in (
        f"UserOperation is not yet valid: validAfter={START}, now={START - 10}",
        "operation not yet valid",
    ):
        said = session_refusal(grant, _refusal(message))
        assert isinstance(said, SessionNotYetValidError), (message, said)
        assert "wait until then and send again" in str(said)
    said = session_refusal(grant, _refusal("not yet valid", code=-32500))
    assert isinstance(said, SessionNotYetValidError), said
