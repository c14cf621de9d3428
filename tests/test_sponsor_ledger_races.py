"""A failed sponsorship giving back its own reservation, not a concurrent one's (attack 231).

The sponsor's ledger file keeps each reservation with the ``validUntil`` of the signature it was made for, so that a
restarted service counts every signature still valid (attack 221). A request whose signing fails (a signing service
that times out) gives its reservation back; the ledger deleted the newest row of the same account and amount, which
is another request's when one reserved while the first was signing: the row of a signature given out was deleted and
the failed request's row, with an earlier ``validUntil``, kept. A service restarted after that earlier time then
counted nothing for a signature still valid, and signed a whole budget beside it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from keyscope.errors import TransportError
from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorshipPolicy
from keyscope.sponsor.errors import BUDGET_EXHAUSTED, SponsorshipRefused
from keyscope.userop import UserOperation

PAYMASTER = "0x" + "11" * 20
CHAIN_ID = 31337
VALIDITY = 600
PM_GAS = 60_000


class _SlowThenFailingSigner:
    """A signing service whose first request hangs until ``release`` is set, then fails; later ones sign."""

    def __init__(self, key: LocalSigner) -> None:
        self.address = key.address
        self._key = key
        self.first_waiting = threading.Event()
        self.release = threading.Event()
        self._calls = 0
        self._lock = threading.Lock()

    def sign_hash(self, digest: bytes) -> bytes:
        with self._lock:
            self._calls += 1
            first = self._calls == 1
        if first:
            self.first_waiting.set()
            assert self.release.wait(30)
            raise TransportError("the signing service did not answer", url="http://kms")
        return self._key.sign_hash(digest)

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        raise AssertionError("the sponsor signs digests only")


def _op(sender: str) -> UserOperation:
    return UserOperation(
        sender=sender,
        nonce=0,
        call_data=encode_execute(Call("0x" + "33" * 20, 0, bytes.fromhex("12345678"))),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )


def test_a_failed_signature_gives_back_its_own_reservation_and_a_restart_counts_the_one_given_out(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    key = LocalSigner.generate()
    op = _op(LocalSigner.generate().address)
    cost = required_prefund(op.replace(paymaster=PAYMASTER, paymaster_verification_gas_limit=PM_GAS))
    # one operation's cost in all: once a signature is out, nothing more may be signed while it is valid
    policy = SponsorshipPolicy(targets="any", total_budget_wei=2 * cost, validity_seconds=VALIDITY)
    now = {"t": 1_000_000}
    signer = _SlowThenFailingSigner(key)

    def started(signer: Any) -> Sponsor:
        return Sponsor(
            paymaster=PAYMASTER,
            signer=signer,
            chain_id=CHAIN_ID,
            policy=policy,
            clock=lambda: now["t"],
            ledger=ledger,
        )

    sponsor = started(signer)
    failed: list[BaseException] = []

    def first() -> None:
        try:
            sponsor.data(op)
        except TransportError as error:
            failed.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    # the first request has reserved (valid until t0 + VALIDITY) and signs
    assert signer.first_waiting.wait(30)
    now["t"] += 100  # the second comes 100 s later, while the signing service still hangs
    given_out = sponsor.data(op)  # reserved (valid until t0 + 100 + VALIDITY) and signed
    signer.release.set()
    thread.join(30)
    assert len(failed) == 1
    assert given_out["paymasterData"].startswith("0x")
    assert sponsor.ledger.reserved_total() == cost
    sponsor.close()

    # restarted after the failed request's window would have closed, within the given signature's
    now["t"] += VALIDITY - 50
    restarted = started(key)
    try:
        assert restarted.ledger.reserved_total() == cost
        restarted.data(op)  # the second operation's cost still fits in the total
        with pytest.raises(
            SponsorshipRefused
        ) as refused:  # a third would not: one signature given out is valid
            restarted.data(op)
        assert refused.value.code == BUDGET_EXHAUSTED
    finally:
        restarted.close()
