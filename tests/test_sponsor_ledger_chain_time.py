"""The sponsor's ledger read back at a restart by the chain's time, not this machine's.

A signature the sponsor made can be paid while a block stamped at or before its ``validUntil`` can include it: the
EntryPoint judges by the block's timestamp, and anyone may call ``handleOps`` without a bundler. With
``chain_clock`` the service counts windows from the later of this machine's time and the latest block's, so that a
bundler's wall clock and the EntryPoint both see them in the future; but the restart's purge used that same later
time, and on a development node whose clock is set behind this machine's it dropped the reservations of signatures
the chain still pays: the restarted service signed a whole budget beside them. A real anvil, its clock set back an
hour, and the real ledger file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscope.execution import Call, encode_execute
from keyscope.gas import required_prefund
from keyscope.local.anvil import AnvilConfig, start_anvil
from keyscope.rpc import JsonRpcClient
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorshipPolicy, chain_clock
from keyscope.sponsor.errors import BUDGET_EXHAUSTED, SponsorshipRefused
from keyscope.sponsor.paymaster_data import decode_paymaster_data
from keyscope.userop import UserOperation
from support.userops import plain_op

PAYMASTER = "0x" + "11" * 20
CHAIN_ID = 31337
PM_GAS = 60_000
VALIDITY = 2  # seconds: the machine's clock passes a signature's validUntil within the test


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    process, url = start_anvil(AnvilConfig(chain_id=CHAIN_ID), tmp_path / "anvil.log")
    try:
        yield url
    finally:
        process.stop()


def _op(sender: str) -> UserOperation:
    """An operation of ``sender`` at nonce 0 calling a contract, as a sponsor is asked to sign."""
    return plain_op(sender, encode_execute(Call("0x" + "33" * 20, 0, bytes.fromhex("12345678"))), nonce=0)


def _latest_time(rpc: JsonRpcClient) -> int:
    return int(rpc.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def test_a_restart_keeps_the_reservation_of_a_signature_the_chain_still_pays_when_its_clock_is_behind(
    node: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    op = _op(LocalSigner.generate().address)
    cost = required_prefund(op.replace(paymaster=PAYMASTER, paymaster_verification_gas_limit=PM_GAS))
    # one operation's cost in all: while its signature can be paid, nothing more may be signed
    policy = SponsorshipPolicy(targets="any", total_budget_wei=cost, validity_seconds=VALIDITY)
    key = LocalSigner.generate()

    def started() -> Sponsor:
        return Sponsor(
            paymaster=PAYMASTER,
            signer=key,
            chain_id=CHAIN_ID,
            policy=policy,
            clock=chain_clock(node),
            ledger=ledger,
        )

    with JsonRpcClient(node) as rpc:
        rpc.request(
            "evm_setTime", [int(time.time()) - 3600]
        )  # the node's clock an hour behind this machine's
        rpc.request("evm_mine", [])
        first = started()
        signed = decode_paymaster_data(bytes.fromhex(first.data(op)["paymasterData"][2:]))
        first.close()
        valid_until = signed.valid_until
        time.sleep(max(0.0, valid_until + 1 - time.time()))
        rpc.request("evm_mine", [])
        # the premise: this machine's clock is past the signature's window, the chain's is not (the EntryPoint pays)
        assert time.time() > valid_until >= _latest_time(rpc)

        again = started()
        try:
            assert again.ledger.reserved_total() == cost
            with pytest.raises(SponsorshipRefused) as refused:
                again.data(_op(LocalSigner.generate().address))
            assert refused.value.code == BUDGET_EXHAUSTED
        finally:
            again.close()

        # once a block is stamped past the window, nothing can pay the signature: a restart drops its reservation
        rpc.request("evm_setNextBlockTimestamp", [valid_until + 1])
        rpc.request("evm_mine", [])
        last = started()
        try:
            assert last.ledger.reserved_total() == 0
            assert last.data(_op(LocalSigner.generate().address))["paymasterData"].startswith("0x")
        finally:
            last.close()
