"""Premises the documentation states, tested as worded, on the real EntryPoint v0.7 ``handleOps``.

An auditor read ``docs/session-module.md`` before the contracts and wrote down each claim of the form "X is bounded by
Y". These are the ones whose tests exercised a narrower case than the sentence states:

* "for a batch it is the smallest of the calls' caps" (the cap on what one operation may cost): tested before with a
  capped session beside an uncapped one, never with two capped sessions, where a wrong choice (the first, the last,
  the largest) would still pass;
* "For a batch, the window is the intersection of the calls' windows": tested before on the end of the window (an
  expired session's call beside a live one's), never on its start (a session not valid yet riding in a live one's
  batch);
* "GAS: each such operation's most possible gas cost, its prefund" and "OPERATIONS: 1 per operation making at least
  one call of the session": a batch of several calls of one session counts once, whichever of its permissions the
  calls use, so that the budget reads as the owner signed it (a count per call would refuse batches the grant
  allows; one skipped for a later permission would let them through uncounted);
* "the operation's window is then narrowed to the periods it was counted in" (per-period limits): narrowed, not
  replaced, when a budgeted session's call shares a batch with calls of sessions without limits that are not valid;
* a listed paymaster makes operations "go uncapped", the window still binding: held by the differential tests on the
  validation data, run here through the EntryPoint with a paymaster that charges the account.

For each of the first two, a mutant of the module breaking it survived every other test of the batch walk
(docs/static-analysis.md, "Mutation testing").

And one that was false as worded, and is now enforced: the epoch "moves on every uninstall and
invalidateAllSessions, so no signature made before an uninstall works after a reinstall". The epoch used to move by
one, so a grant signed before the uninstall for the epoch it would move to worked after it (threat model, attack
319). The account now moves to an epoch drawn from the block that runs the call (or, for
``invalidateAllSessions(nextEpoch)``, to the caller's, drawn at random when the call is made): a grant signed ahead
of time names the new epoch only by chance. The SDK still refuses to sign a grant at another epoch than the
account's (tested here too).

Each test grants through the owner's operation, sends the key's operations as an attacker would (USE, and the key-
naming mode bundlers estimate with), and reads the verdict and the module's counters from the chain.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope import SessionKey
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.owner import GrantRequest
from keyscope.policy import Limits, Policy
from keyscope.session import Session
from keyscope.signing import LocalSigner
from support.limit_fixtures import (  # noqa: F401 (fixtures)
    grant,
    limits_account_fixture,
    session_fixtures_first_fixture,
    token_fixture,
    usage,
)
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)

MODES = ("use", "use_with_key")
# what the harness's operations may cost: every gas limit (1,500,000 + 1,000,000 + 60,000) at 2 gwei
HARNESS_PREFUND = (1_500_000 + 1_000_000 + 60_000) * 2 * 10**9


def _mint(nft: Any, to: str) -> Call:
    """The call of ``nft.safeMint(to)``."""
    return Call.of(nft.address, 0, nft.safeMint.encode_input(to))


def _other(target: Any, amount: int = 1) -> Call:
    """The call of ``target.other(amount)``."""
    return Call.of(target.address, 0, target.other.encode_input(amount))


def test_a_batch_starts_at_the_latest_start_of_its_calls_sessions(
    sessions: Any, nft: Any, target: Any, account: str, owner: LocalSigner, attacker: str, chain: Any
) -> None:
    """docs/session-module.md, "Which UserOperations pass" 8: "For a batch, the window is the intersection of the
    calls' windows". One key holds a live session (valid since 200 s ago, for an hour) and one that starts in an
    hour. A batch of a call of each, in either order and either mode, is not due (AA22): the operation's validAfter
    is the latest start of its calls' sessions, so the later session's call cannot ride in the live one's window
    before its own starts. Alone, the live session's call lands each time; the later one's is not due either."""
    key = LocalSigner.generate()
    now = chain.pending_timestamp
    grant(
        sessions, account, owner, key, [Policy.call(nft.address, "safeMint(address to)")],
        valid_after=now - 200, valid_until=now + 3600,
    )  # fmt: skip
    grant(
        sessions, account, owner, key, [Policy.call(target.address, "other(uint256 amount)")],
        valid_after=now + 3600, valid_until=now + 7200, salt=1,
    )  # fmt: skip
    live, later = _mint(nft, attacker), _other(target)
    before = nft.balanceOf(attacker)
    for mode in MODES:
        for calls in ([live, later], [later, live], [later]):
            outcome = sessions.outcome(sessions.op(account, key, calls, mode=mode))
            assert "AA22" in outcome, (mode, calls, outcome)
        assert sessions.outcome(sessions.op(account, key, [live], mode=mode)) == "ok"
    assert nft.balanceOf(attacker) == before + len(MODES)


@pytest.mark.parametrize("caps", [(10**15, 10**16), (10**16, 10**15)], ids=["smaller-first", "smaller-last"])
def test_a_batch_is_held_to_the_smallest_cap_of_its_calls_sessions(
    sessions: Any,
    nft: Any,
    target: Any,
    account: str,
    owner: LocalSigner,
    attacker: str,
    caps: tuple[int, int],
) -> None:
    """docs/session-module.md, "Which UserOperations pass" 7: the cap "is at most the session's maxGasCost, whoever
    pays ... for a batch it is the smallest of the calls' caps". Two capped sessions of one key, 0.001 and 0.01
    ether, and operations that may cost 0.00512 ether (the harness's gas limits at 2 gwei): between the two caps. A
    batch of a call of each, in either order and either mode, is refused with the smaller cap
    (``GasCostTooHigh(cost, 10**15)``), whichever session granted the batch's first call; the larger-capped session's
    call alone lands, the smaller-capped one's alone is refused."""
    key = LocalSigner.generate()
    mint_cap, other_cap = caps
    grant(
        sessions,
        account,
        owner,
        key,
        [Policy.call(nft.address, "safeMint(address to)")],
        max_gas_cost=mint_cap,
    )
    grant(
        sessions, account, owner, key, [Policy.call(target.address, "other(uint256 amount)")],
        max_gas_cost=other_cap, salt=1,
    )  # fmt: skip
    mint, other = _mint(nft, attacker), _other(target)
    smallest = min(caps)
    assert smallest < HARNESS_PREFUND < max(caps)
    roomy = mint if mint_cap > other_cap else other
    tight = other if roomy is mint else mint
    refused = f"GasCostTooHigh(cost={HARNESS_PREFUND}, limit={smallest})"
    for mode in MODES:
        for calls in ([mint, other], [other, mint], [tight], [roomy, roomy, tight]):
            outcome = sessions.outcome(sessions.op(account, key, calls, mode=mode))
            assert "AA23" in outcome and refused in outcome, (mode, calls, outcome)
        assert sessions.outcome(sessions.op(account, key, [roomy], mode=mode)) == "ok"


def test_a_batch_counts_once_towards_its_sessions_gas_budget_and_operations(
    sessions: Any, module: Any, nft: Any, target: Any, account: str, owner: LocalSigner, attacker: str
) -> None:
    """docs/session-module.md, "Limits": GAS counts "each such operation's most possible gas cost, its prefund", and
    OPERATIONS "1 per operation making at least one call of the session". A session of two permissions with a gas
    budget of two prefunds and three operations: a batch of four calls using both permissions counts one prefund and
    one operation, and so does a single call; a third operation then has its prefund refused by the budget
    (``LimitExceeded`` naming the call the operation's count is charged to, the batch's first of the session), and
    the counters show what was taken, nothing for the refused one."""
    key = LocalSigner.generate()
    _, session_id = grant(
        sessions, account, owner, key,
        [Policy.call(nft.address, "safeMint(address to)"), Policy.call(target.address, "other(uint256 amount)")],
        [Limits.gas(2 * HARNESS_PREFUND), Limits.operations(3)], max_gas_cost=0,
    )  # fmt: skip
    mint, other = _mint(nft, attacker), _other(target)
    batch = [other, mint, other, mint]
    assert required_prefund(sessions.op(account, key, batch)) == HARNESS_PREFUND
    assert sessions.outcome(sessions.op(account, key, batch)) == "ok"
    assert [row[4:] for row in usage(module, account, session_id)] == [
        (HARNESS_PREFUND, HARNESS_PREFUND),
        (1, 2),
    ]
    assert sessions.outcome(sessions.op(account, key, [mint], mode="use_with_key")) == "ok"
    assert [row[4:] for row in usage(module, account, session_id)] == [(2 * HARNESS_PREFUND, 0), (2, 1)]
    for mode in MODES:
        outcome = sessions.outcome(sessions.op(account, key, [other, mint], mode=mode))
        expected = f"LimitExceeded(callIndex=0, limitIndex=0, amount={HARNESS_PREFUND}, left=0)"
        assert expected in outcome, (mode, outcome)
    assert [row[4:] for row in usage(module, account, session_id)] == [(2 * HARNESS_PREFUND, 0), (2, 1)]


AHEAD = 4
"""How many epochs to come a grant is signed for, ahead of time, in the tests of attack 319."""


def _signed_ahead(
    sessions: Any, account: str, owner: LocalSigner, session: Session, epoch: int
) -> list[bytes]:
    """The owner's signatures of ``session`` for each of the ``AHEAD`` epochs after ``epoch``."""
    return [sessions.owner_signature(account, owner, session, epoch=epoch + n) for n in range(1, AHEAD + 1)]


@pytest.mark.parametrize("how", ["reinstall", "invalidate"])
def test_no_grant_signed_ahead_for_an_epoch_to_come_is_enabled_after_the_owner_ends_every_session(
    sessions: Any, module: Any, nft: Any, owner: LocalSigner, how: str
) -> None:
    """docs/session-module.md, "EIP-712 grant": the epoch "moves on every uninstall and invalidateAllSessions, so
    no signature made before an uninstall works after a reinstall". The module binds the epoch the owner signed, not
    the time of the signature: when the epoch moved by one, a grant signed before the uninstall (by a wallet asked
    for the typed data directly) for the epoch it would move to was enabled by the key's first operation after it,
    and its call ran (attack 319). Now the account moves to an epoch drawn from the block that runs the uninstall or
    ``invalidateAllSessions()``: grants signed ahead for each of the next epochs are refused, before and after."""
    from conftest import KIND

    key = LocalSigner.generate()
    account = sessions.account(owner)
    epoch = int(module.epochOf(account))
    session = Session(
        session_key=key.address,
        permissions=(Policy.call(nft.address, "safeMint(address to)"),),
        valid_until=0,
    )
    ahead = _signed_ahead(sessions, account, owner, session, epoch)
    refused = sessions.h.rejected(sessions.enable_op(account, key, session, ahead[0], _mint(nft, account)))
    assert refused.reason == "AA23" and "InvalidOwnerSignature" in str(refused), refused

    if how == "reinstall":
        sessions.h.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
        sessions.install(account, owner)
    else:
        sessions.h.owner_execute(
            account, owner, Call.of(module.address, 0, module.invalidateAllSessions.encode_input())
        )
    moved = int(module.epochOf(account))
    assert moved not in range(epoch, epoch + AHEAD + 1), (epoch, moved)

    before = nft.balanceOf(account)
    for signature in ahead:
        refused = sessions.h.rejected(
            sessions.enable_op(account, key, session, signature, _mint(nft, account))
        )
        assert refused.reason == "AA23" and "InvalidOwnerSignature" in str(refused), refused
    assert nft.balanceOf(account) == before
    # the grant the owner signs now, at the epoch read back, is enabled
    now = sessions.owner_signature(account, owner, session, epoch=moved)
    sessions.run(sessions.enable_op(account, key, session, now, _mint(nft, account)))
    assert module.isSessionActive(account, session.session_id(account, moved))
    assert nft.balanceOf(account) == before + 1


def test_the_next_epoch_comes_from_the_block_or_from_the_caller(
    sessions: Any, module: Any, owner: LocalSigner
) -> None:
    """``invalidateAllSessions()`` moves the account to an epoch drawn from the block that runs it, with the
    account: two accounts at the same epoch, invalidating in two blocks, land on two epochs, neither the next one.
    ``invalidateAllSessions(nextEpoch)`` moves it to exactly ``nextEpoch`` (the SDK's EIP-7702 upgrade draws it and
    so knows the ids of the sessions it enables in the same operation); asked for the epoch the account is at, it
    reverts (``EpochNotMoved``) and the owner's operation fails: the epoch always moves, or nothing happens."""
    from keyscope.module import invalidate_all_sessions_data

    other = LocalSigner.generate()
    first, second = sessions.account(owner), sessions.account(other)
    start = int(module.epochOf(first))
    assert int(module.epochOf(second)) == start
    for account, signer in ((first, owner), (second, other)):
        sessions.h.owner_execute(
            account, signer, Call.of(module.address, 0, module.invalidateAllSessions.encode_input())
        )
    drawn = [int(module.epochOf(account)) for account in (first, second)]
    assert drawn[0] != drawn[1] and start not in drawn and start + 1 not in drawn, (start, drawn)

    for asked in (123_456_789, 2**32 - 1, 0):
        sessions.h.owner_execute(
            first, owner, Call.of(module.address, 0, invalidate_all_sessions_data(asked))
        )
        assert int(module.epochOf(first)) == asked
    h = sessions.h
    stay = h.op(first, encode_execute(Call.of(module.address, 0, invalidate_all_sessions_data(0))))
    receipt = h.submit(h.sign_owner(stay, owner))
    assert not receipt.success and int(module.epochOf(first)) == 0, receipt


def test_the_owner_s_sdk_signs_no_grant_for_another_epoch_than_the_account_s(
    net: Any, harness: Any, nft: Any
) -> None:
    """The premise the module leaves to the owner's software (previous test): ``Owner.sign_grant`` refuses a
    request at the account's next epoch handed over as JSON (a dapp's backend prepared it, as the request it could
    have been: its id matches its epoch), naming both epochs, before anything is signed; it signs the same request
    at the account's epoch."""
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, 10**18)
    owner.execute(
        Call.of(nft.address, 0, nft.safeMint.encode_input(owner.account))
    ).wait()  # creates the account
    request = owner.prepare_grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], valid_for=3600
    )
    epoch = owner.epoch()
    fields = {**request.model_dump(), "epoch": epoch + 1}
    fields["session_id"] = request.session.session_id(request.account, epoch + 1)
    handed = GrantRequest.model_validate_json(GrantRequest.model_validate(fields).model_dump_json())
    with pytest.raises(BadInputError) as refused:
        owner.sign_grant(handed)
    said = str(refused.value)
    assert f"epoch {epoch}," in said and f"epoch {epoch + 1}," in said and "nothing was signed" in said, said
    same = GrantRequest.model_validate_json(request.model_dump_json())
    assert owner.sign_grant(same).owner_signature


def test_a_batch_counted_in_a_period_still_starts_and_ends_within_every_call_s_session(
    sessions: Any,
    module: Any,
    nft: Any,
    target: Any,
    account: str,
    owner: LocalSigner,
    attacker: str,
    chain: Any,
) -> None:
    """docs/session-module.md, "Which UserOperations pass" 9: when an operation counts towards a per-period limit,
    "the operation's window is then narrowed to the periods it was counted in": narrowed, not replaced. One key
    holds a session with an hourly call budget (valid since two hours ago, no end), one without limits that starts
    in an hour and one without limits that ended 100 seconds ago. A batch of the budgeted session's call and either
    of the others', claiming the present, is refused (AA22) in either order and either mode, and its count goes
    with it: the period the budgeted call was counted in is no window for a call of a session not valid in it. The
    budgeted call alone lands, counted once each time."""
    key = LocalSigner.generate()
    now = chain.pending_timestamp
    _, budgeted = grant(
        sessions, account, owner, key, [Policy.call(nft.address, "safeMint(address to)", rate="10/hour")],
        valid_after=now - 7200,
    )  # fmt: skip
    grant(
        sessions, account, owner, key, [Policy.call(target.address, "other(uint256 amount)")],
        valid_after=now + 3600, salt=1,
    )  # fmt: skip
    grant(
        sessions, account, owner, key, [Policy.call(target.address, "withBytes(bytes data, uint256 amount)")],
        valid_after=now - 7200, valid_until=now - 100, salt=2,
    )  # fmt: skip
    mint = _mint(nft, attacker)
    later = _other(target)
    ended = Call.of(target.address, 0, target.withBytes.encode_input(b"\x01", 1))
    before = nft.balanceOf(attacker)
    for mode in MODES:
        for calls in ([mint, later], [later, mint], [mint, ended], [ended, mint]):
            outcome = sessions.outcome(sessions.op(account, key, calls, mode=mode, at=now))
            assert "AA22" in outcome, (mode, calls, outcome)
        assert usage(module, account, budgeted)[0][4] == nft.balanceOf(attacker) - before
        assert sessions.outcome(sessions.op(account, key, [mint], mode=mode, at=now)) == "ok"
    assert nft.balanceOf(attacker) == before + len(MODES)
    assert usage(module, account, budgeted)[0][4:] == (2, 8)


@pytest.fixture(scope="module")
def token_paymaster(project: Any, deployer: Any, entry_point: Any, token: Any, accounts: Any) -> Any:
    """An ERC-20 paymaster charging one token unit per wei of gas in postOp, from the account's approval, with a
    deposit of 20 ether at the EntryPoint (``contracts/test/TokenPaymaster.sol``)."""
    paymaster = project.TokenPaymaster.deploy(entry_point, token, 10**18, accounts[9], sender=deployer)
    paymaster.deposit(value=20 * 10**18, sender=deployer)
    return paymaster


def test_a_listed_paymaster_lifts_the_cap_never_the_window(
    sessions: Any,
    module: Any,
    nft: Any,
    token: Any,
    token_paymaster: Any,
    account: str,
    owner: LocalSigner,
    chain: Any,
) -> None:
    """docs/session-module.md, "Which UserOperations pass" 7 and 8: a paymaster the session lists makes its
    operations "go uncapped"; the window "goes into the validation data" all the same. Two sessions of two keys
    list the same charging paymaster under a cap the operation's gas is far above: one live, one that ended 100
    seconds ago. A single call of the live one naming the paymaster lands, uncapped, and the paymaster charges the
    account's tokens; the ended one's, in either mode, is refused as expired (AA22) and charges nothing. Lifting the
    cap drops the header's cap, not its window."""
    from conftest import KIND
    from keyscope.execution import encode_execute
    from keyscope.session import encode_use_with_key_signature

    now = chain.pending_timestamp
    cap = 10**15  # 0.001 ether: far below the operation's prefund at 20 gwei
    live, ended = LocalSigner.generate(), LocalSigner.generate()
    mint = Policy.call(nft.address, "safeMint(address to)")
    listed = (token_paymaster.address,)
    grant(sessions, account, owner, live, [mint], max_gas_cost=cap, paymasters=listed)
    grant(
        sessions, account, owner, ended, [mint], max_gas_cost=cap, paymasters=listed,
        valid_after=now - 200, valid_until=now - 100,
    )  # fmt: skip
    sessions.h.owner_execute(
        account,
        owner,
        Call.of(token.address, 0, token.approve.encode_input(token_paymaster.address, 2**256 - 1)),
    )

    def paid(key: LocalSigner, mode: str) -> Any:
        op = sessions.h.op(
            account, encode_execute(_mint(nft, account)), key=KIND.nonce_key(sessions.module.address)
        ).replace(
            paymaster=token_paymaster.address,
            paymaster_verification_gas_limit=100_000,
            paymaster_post_op_gas_limit=100_000,
            max_fee_per_gas=20 * 10**9,
        )
        assert required_prefund(op) > cap
        signature = key.sign_hash(sessions.h.hash(op))
        if mode == "use_with_key":
            signature = encode_use_with_key_signature(key.address, signature)
        return op.replace(signature=signature)

    tokens, minted = token.balanceOf(account), nft.balanceOf(account)
    for mode in MODES:
        outcome = sessions.outcome(paid(ended, mode))
        assert "AA22" in outcome, (mode, outcome)
    assert token.balanceOf(account) == tokens and nft.balanceOf(account) == minted
    assert sessions.outcome(paid(live, "use")) == "ok"
    assert nft.balanceOf(account) == minted + 1 and token.balanceOf(account) < tokens
