"""A session's operations carried through the EntryPoint's ``handleAggregatedOps`` by a bundler colluding with the
key, under a signature aggregator that approves everything: the aggregator replaces no verdict of the module. The
EntryPoint takes an operation of an aggregator's group only when its account's validation data names that
aggregator, and the module names none (0 when it validates, 1 when the signature fails), so every such operation
is refused, and an operation in the group without an aggregator is judged and counted as in ``handleOps``. Through
the real EntryPoint v0.7 on ape's local chain (an ``eth_call`` of the bundle where it must fail, a transaction where
it lands).
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.execution import Call
from keyscope.hexutil import keccak
from keyscope.revert import describe_revert
from keyscope.session import Limit, LimitKind, Meter, Permission, Session
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.raw_call import revert_bytes
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)

ZERO = "0x" + "00" * 20
OTHER = keccak(b"other(uint256)")[:4]
RECORD = keccak(b"record(uint256,int256,address,bytes32,bool)")[:4]


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, target, module):
    """The session-scoped fixtures this module uses, made before its own module-scoped ones (ape snapshots the
    chain per fixture scope)."""


@pytest.fixture(scope="module")
def aggregator(project, deployer):
    """An aggregator that approves every signature (``contracts/test/ApprovingAggregator.sol``)."""
    return project.ApprovingAggregator.deploy(sender=deployer)


def record(target) -> Call:
    return Call.of(target.address, 0, target.record.encode_input(1, 0, ZERO, b"\x00" * 32, False))


def bundle(entry_point, groups: list[tuple[list[UserOperation], str]], beneficiary: str) -> bytes:
    """Calldata of ``handleAggregatedOps`` with one group per (operations, aggregator), no aggregated signature."""
    return bytes(
        entry_point.handleAggregatedOps.encode_input(
            [([op.pack().as_tuple() for op in ops], aggregator, b"") for ops, aggregator in groups],
            beneficiary,
        )
    )


def verdict(sessions, data: bytes) -> str:
    """The EntryPoint's verdict on a ``handleAggregatedOps`` bundle, as an ``eth_call``: "ok" or its revert."""
    web3 = sessions.h.chain.provider.web3
    call: dict[str, Any] = {
        "from": sessions.h.funder.address,
        "to": sessions.h.entry_point.address,
        "data": "0x" + data.hex(),
        "gas": 30_000_000,
    }
    try:
        web3.eth.call(call)
    except Exception as error:  # the EntryPoint's FailedOp, read as its reason
        return describe_revert(revert_bytes(error))
    return "ok"


def test_an_aggregator_named_by_the_bundler_validates_no_session_operation(
    sessions, module, target, aggregator, module_account, owner, session_key, attacker
):
    """A bundler puts the session's operations in a ``handleAggregatedOps`` group of an aggregator approving every
    signature: a stranger's signature, the key's signature of a call it was not granted, an ENABLE whose session
    signature is a stranger's, and the genuine operation itself are each refused (AA24), nothing runs and the
    ENABLE stores nothing; the genuine operation lands only in the group without an aggregator."""
    account = module_account
    entry_point = sessions.h.entry_point
    granted = Session(
        session_key=session_key.address, permissions=(Permission(target=target.address, selector=RECORD),)
    )
    sessions.grant_onchain(account, owner, granted)
    stranger = LocalSigner.generate()
    later = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=OTHER),),
    )
    later_id = later.session_id(account, sessions.epoch(account))
    attempts = {
        "a stranger's signature": sessions.op(account, session_key, record(target), signer=stranger),
        "a call not granted": sessions.op(
            account, session_key, Call.of(target.address, 0, OTHER + (1).to_bytes(32, "big"))
        ),
        "an ENABLE signed by a stranger": sessions.op(
            account,
            session_key,
            Call.of(target.address, 0, OTHER + (1).to_bytes(32, "big")),
            mode="enable",
            session=later,
            owner_signature=sessions.owner_signature(account, owner, later),
            signer=stranger,
        ),
        "the genuine operation": sessions.op(account, session_key, record(target)),
    }
    calls = target.calls()
    for name, op in attempts.items():
        assert verdict(sessions, bundle(entry_point, [([op], aggregator.address)], attacker)) == (
            "AA24 signature error"
        ), name
    # the aggregator's group after a group without one: the bundle fails at the aggregated operation
    genuine = attempts["the genuine operation"]
    forged = attempts["a stranger's signature"]
    forged_next = sessions.op(account, session_key, record(target), signer=stranger, nonce=genuine.nonce + 1)
    data = bundle(entry_point, [([genuine], ZERO), ([forged_next], aggregator.address)], attacker)
    assert verdict(sessions, data) == "AA24 signature error"
    # without an aggregator the module's verdict is the EntryPoint's
    assert verdict(sessions, bundle(entry_point, [([forged], ZERO)], attacker)) == "AA24 signature error"
    entry_point.handleAggregatedOps(
        [([genuine.pack().as_tuple()], ZERO, b"")], attacker, sender=sessions.h.funder
    )
    assert target.calls() == calls + 1
    assert not module.isSessionActive(account, later_id)


def test_an_aggregated_bundle_counts_a_sessions_limits_as_handle_ops_does(
    sessions, module, target, aggregator, module_account, owner, session_key, attacker
):
    """A session limited to one call: its operation carried in a ``handleAggregatedOps`` group without an aggregator
    is counted in validation as in ``handleOps``, so a second operation in the same bundle, or in a group of an
    aggregator approving everything, gets no second call (``LimitExceeded``, AA23)."""
    account = module_account
    entry_point = sessions.h.entry_point
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=RECORD),),
        limits=(Limit(kind=LimitKind.CALLS, amount=1, meters=(Meter(permission=0),)),),
    )
    session_id = sessions.grant_onchain(account, owner, session)
    first = sessions.op(account, session_key, record(target))
    second = sessions.op(account, session_key, record(target), nonce=first.nonce + 1)
    for groups in (
        [([first, second], ZERO)],
        [([first], ZERO), ([second], ZERO)],
    ):
        result = verdict(sessions, bundle(entry_point, groups, attacker))
        assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    result = verdict(
        sessions, bundle(entry_point, [([first], ZERO), ([second], aggregator.address)], attacker)
    )
    assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, result
    calls = target.calls()
    entry_point.handleAggregatedOps(
        [([first.pack().as_tuple()], ZERO, b"")], attacker, sender=sessions.h.funder
    )
    assert target.calls() == calls + 1
    assert [tuple(r)[4:] for r in module.limitUsage(account, session_id)] == [(1, 0)]
    for aggregated in (ZERO, aggregator.address):
        result = verdict(sessions, bundle(entry_point, [([second], aggregated)], attacker))
        assert "LimitExceeded(callIndex=0, limitIndex=0, amount=1, left=0)" in result, (aggregated, result)
