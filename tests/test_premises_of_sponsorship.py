"""The premises docs/sponsorship.md states about the sponsor service, each read as an auditor reads it and checked
as worded: an empty list sponsors nothing of its kind, a budget of 0 sponsors nothing, and ``pm_getPaymasterData``
checks what ``pm_getPaymasterStubData`` checks (that the account has some budget left) before it signs.

These run the service's own objects (``Sponsor``, ``SponsorshipPolicy``) with no chain: the sponsor signs offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keyscope.eip7702 import sign_authorization
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.signing import LocalSigner
from keyscope.sponsor import (
    BUDGET_EXHAUSTED,
    NOT_SPONSORED,
    BudgetLedger,
    Sponsor,
    SponsorshipPolicy,
    SponsorshipRefused,
    decode_paymaster_data,
)
from keyscope.userop import UserOperation

CHAIN_ID = 31337
PAYMASTER = LocalSigner.generate().address
TARGET = LocalSigner.generate().address
SELECTOR = bytes.fromhex("12345678")


def _sponsor(policy: SponsorshipPolicy) -> Sponsor:
    """A sponsor of ``policy`` with a fixed clock and a fresh key."""
    return Sponsor(
        paymaster=PAYMASTER,
        signer=LocalSigner.generate(),
        chain_id=CHAIN_ID,
        policy=policy,
        clock=lambda: 1_000_000.0,
    )


def _operation(sender: str, *, max_fee_per_gas: int = 10**9) -> UserOperation:
    """An estimated operation of ``sender`` calling ``TARGET`` with ``SELECTOR``."""
    return UserOperation(
        sender=sender,
        nonce=0,
        call_data=encode_execute(Call(TARGET, 0, SELECTOR)),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=max_fee_per_gas,
        max_priority_fee_per_gas=max_fee_per_gas,
    )


def _refusal(sponsor: Sponsor, method: str, op: UserOperation) -> SponsorshipRefused:
    """The refusal ``sponsor``'s ``method`` (``stub_data`` or ``data``) answers ``op`` with."""
    ask: Any = getattr(sponsor, method)
    with pytest.raises(SponsorshipRefused) as info:
        ask(op)
    return info.value


@pytest.mark.parametrize("method", ["stub_data", "data"])
def test_an_empty_list_of_accounts_sponsors_no_account(method: str) -> None:
    """sponsorship.md, Policy file: "``accounts``: ... ``[]`` sponsors no account". Both methods refuse any
    sender (reason ``account``) and reserve nothing."""
    sponsor = _sponsor(SponsorshipPolicy(accounts=(), targets="any"))
    op = _operation(LocalSigner.generate().address)
    refusal = _refusal(sponsor, method, op)
    assert refusal.code == NOT_SPONSORED
    assert refusal.data == {"reason": "account", "account": op.sender}
    assert f"account {op.sender} is not sponsored: the policy lists 0 account(s)" in str(refusal)
    assert sponsor.ledger.reserved_total() == 0


@pytest.mark.parametrize("method", ["stub_data", "data"])
def test_an_empty_list_of_delegates_sponsors_no_delegation(method: str) -> None:
    """sponsorship.md, Policy file: "``delegates``: ... ``[]`` sponsors no delegation". An EOA's delegating
    operation with its authorization is refused whatever it delegates to (reason ``delegate``), while the same EOA's
    operation once delegated (no marker, no authorization) is still signed."""
    sponsor = _sponsor(SponsorshipPolicy(delegates=(), targets={TARGET: (SELECTOR,)}))
    eoa_key = LocalSigner.generate()
    delegate = LocalSigner.generate().address
    plain = _operation(eoa_key.address)
    delegating = plain.replace(
        factory="0x7702", eip7702_auth=sign_authorization(eoa_key, CHAIN_ID, delegate, 0)
    )
    refusal = _refusal(sponsor, method, delegating)
    assert refusal.code == NOT_SPONSORED
    assert refusal.data == {"reason": "delegate", "account": eoa_key.address, "delegate": delegate}
    assert "it sponsors delegation to none" in str(refusal)
    assert sponsor.ledger.reserved_total() == 0
    assert getattr(sponsor, method)(plain)["paymaster"] == PAYMASTER


@pytest.mark.parametrize("budget", ["budget_wei", "total_budget_wei"])
def test_a_budget_of_zero_sponsors_nothing_not_even_an_operation_that_costs_nothing(budget: str) -> None:
    """sponsorship.md, Policy file: "``budget_wei`` ... ``0`` sponsors nothing", and ``pm_getPaymasterData``
    "checks the same" as the stub, "that the account has some budget left". An operation whose ``maxFeePerGas`` is
    0 has a maximum cost of 0 wei, which "fits" in a budget of 0: it must be refused all the same, by both methods,
    with the budget's reason; a sponsor with nothing to give signs nothing."""
    sponsor = _sponsor(SponsorshipPolicy(targets="any", **{budget: 0}))
    free = _operation(LocalSigner.generate().address, max_fee_per_gas=0)
    reason = "budget" if budget == "budget_wei" else "totalBudget"
    for method in ("stub_data", "data"):
        refusal = _refusal(sponsor, method, free)
        assert refusal.code == BUDGET_EXHAUSTED, method
        assert refusal.data["reason"] == reason, method
        assert refusal.data["remaining"] == 0, method
    assert sponsor.ledger.reserved_total() == 0


def test_a_budget_spent_to_its_last_wei_signs_nothing_more() -> None:
    """sponsorship.md, the sponsor service: ``pm_getPaymasterData`` "checks the same" as the stub, "that the
    account has some budget left". Once an account's budget is spent exactly, neither method signs for it again,
    not even an operation of no cost; another account still gets its own budget."""
    spend = _operation(LocalSigner.generate().address)
    cost = (100_000 + 200_000 + 50_000 + 60_000) * 10**9
    sponsor = _sponsor(SponsorshipPolicy(targets="any", budget_wei=cost))
    assert decode_paymaster_data(bytes.fromhex(sponsor.data(spend)["paymasterData"][2:]))
    assert sponsor.ledger.remaining(spend.sender) == 0
    free = spend.replace(nonce=1, max_fee_per_gas=0, max_priority_fee_per_gas=0)
    for method in ("stub_data", "data"):
        refusal = _refusal(sponsor, method, free)
        assert refusal.code == BUDGET_EXHAUSTED, method
        assert refusal.data["reason"] == "budget", method
    other = _operation(LocalSigner.generate().address)
    assert sponsor.data(other)["paymaster"] == PAYMASTER


@pytest.mark.parametrize("seconds", [365 * 86_400 + 1, 0, -1])
def test_a_signature_validity_past_a_year_or_not_positive_is_refused(seconds: int) -> None:
    """sponsorship.md, Policy file: "``validity_seconds`` (default 600; a whole number, up to a year)". A year and
    one second is refused, naming the field, and so is a window of no time."""
    with pytest.raises(BadInputError, match="validity_seconds"):
        SponsorshipPolicy.from_dict({"targets": "any", "validity_seconds": seconds})
    assert SponsorshipPolicy.from_dict(
        {"targets": "any", "validity_seconds": 365 * 86_400}
    ).validity_seconds == (365 * 86_400)


def test_a_ledger_counts_a_reservation_without_an_end_after_any_restart(tmp_path: Path) -> None:
    """sponsorship.md, Budget: a service started on the ledger file "counts again every reservation ... whose
    signature is still valid on its clock". A ``validUntil`` of 0 is a signature that never expires (the paymaster's
    window, "0 = no expiry"): ``BudgetLedger.reserve`` takes it as its default, and it must be counted at every
    restart, however late, while one that ended is dropped and one still open is kept."""
    path = tmp_path / "ledger.sqlite"
    endless, ended, open_ = (LocalSigner.generate().address for _ in range(3))
    ledger = BudgetLedger(100, 1_000, path=path, scope="paymaster@1", now=1_000)
    ledger.reserve(endless, 10)
    ledger.reserve(ended, 20, valid_until=2_000)
    ledger.reserve(open_, 30, valid_until=10**9)
    ledger.close()
    again = BudgetLedger(100, 1_000, path=path, scope="paymaster@1", now=10**6)
    try:
        assert (again.reserved(endless), again.reserved(ended), again.reserved(open_)) == (10, 0, 30)
        assert again.reserved_total() == 40
    finally:
        again.close()
