"""The checker against the module when one session key is granted again: the gap the other differential suites leave
by giving every session a key of its own.

The module keeps a permission's storage under (account, key, target, selector): revoking a session, or ending every
session of the account (``invalidateAllSessions``), clears the permission's header and leaves its rule words, its
paymaster words and its meter word where they were. A later session of the same key for the same call writes its own
words over the start of them. Here a first session of rules of every storage shape, paymasters and limits of every
kind (``test_differential_limits_with_rules.py``'s sessions), after an operation it counted for real, dies by either
way (or by an invalidation and the account's return to the epoch it was at, ``invalidateAllSessions(uint32)``, where
the first session stays dead: enabling it again is refused as a revoked one, its counters never start over); then a
second session of the same key, drawn the same way (fewer rules, no paymasters or limits, or more), is granted for
the same calls. Its operations must get the same verdict from the module's ``validateUserOp`` and from
the checker of the second session alone: nothing the first left behind (a longer rule list, a paymaster list, a
meter word, counted limits) may count on either side.

A development account of a fresh anvil plays the account (the module is ape's build of its source, on a node that
runs it natively): it enables each session itself.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.hexutil import keccak
from keyscope.revert import decode_revert
from keyscope.session import Session, encode_at_signature, encode_use_with_key_signature
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, TransactionFailedError, anvil_chain
from support.fuzz import DEEP, ON_CHAIN
from support.raw_call import revert_bytes
from test_differential import PACKED_OP, VALIDATE_SELECTOR
from test_differential_limits_with_rules import cases, judge

EXAMPLES = 150 if DEEP else 12
OPERATIONS = 3
"""Sessions drawn for the second grant per example: the first is granted, each brings an operation to judge (and the
first session's operation is judged too)."""
TALLY: Counter[str] = Counter()
_keys = itertools.count()


@pytest.fixture(scope="module")
def setup(project):
    with anvil_chain() as chain:
        yield chain.deploy(project.SessionKeyValidator), chain.accounts[5], chain


def _enable(module: AnvilContract, account: str, session: Session) -> bytes | None:
    """Enable ``session`` from the account; its id, or None when the module refuses it (a rule list and paymaster
    list past the 31 words, which no builder makes)."""
    try:
        module.enableSession.transact(session.as_abi(), sender=account)
    except TransactionFailedError:
        TALLY["enable refused"] += 1
        return None
    return session.session_id(account, int(module.epochOf(account)))


def _refusal(chain: AnvilChain, module: AnvilContract, account: str, session: Session) -> str | None:
    """The name of the error the module refuses ``session``'s ``enableSession`` from the account with (an
    ``eth_call``), None when it would enable it."""
    data = module.enableSession.encode_input(session.as_abi())
    try:
        chain.call({"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 10**7})
    except Exception as error:
        decoded = decode_revert(revert_bytes(error))
        return "?" if decoded is None else decoded[0]
    return None


def _count_for_real(
    chain: AnvilChain,
    module: AnvilContract,
    account: str,
    signer: LocalSigner,
    op: UserOperation,
    at: int | None,
    session_id: bytes,
) -> None:
    """Send ``op`` to ``validateUserOp`` as a transaction from the account, so that the module counts its limits (a
    refusal counts nothing, and is left to the other suites)."""
    op_hash = keccak(op.call_data + session_id)
    signature = encode_use_with_key_signature(signer.address, signer.sign_hash(op_hash))
    if at is not None:
        signature = encode_at_signature(at, signature)
    data = VALIDATE_SELECTOR + abi_encode(
        [PACKED_OP, "bytes32"], [op.replace(signature=signature).pack().as_tuple(), op_hash]
    )
    try:
        chain.send(account, module.address, data)
    except TransactionFailedError:
        TALLY["first refused"] += 1
    else:
        TALLY["first counted"] += 1


@settings(max_examples=EXAMPLES, **ON_CHAIN)
@given(
    first=cases(),
    second=st.lists(cases(), min_size=OPERATIONS, max_size=OPERATIONS),
    ending=st.sampled_from(["revoke", "invalidate", "invalidate, then back to its epoch"]),
)
def test_a_key_granted_again_is_judged_by_its_new_session_alone(setup, first, second, ending):
    """One key: a first session counted once and ended (revoked, or every session invalidated, the account staying
    at the new epoch or coming back to the first's), then a second session for the same calls; operations on those calls (drawn beside the second session, beside two more, and
    the first session's own) get the same verdict from the module and from the second session's checker."""
    module, account, chain = setup
    signer = LocalSigner(keccak(b"keyscope regrants key %d" % next(_keys)))
    old, _, old_op, old_at, _ = first
    old = old.model_copy(update={"session_key": signer.address})
    new = second[0][0].model_copy(update={"session_key": signer.address})
    old_id = _enable(module, account, old)
    if old_id is None:
        return
    _count_for_real(chain, module, account, signer, old_op.replace(sender=account), old_at, old_id)
    if ending == "revoke":
        module.revokeSession.transact(old_id, sender=account)
    else:
        epoch = int(module.epochOf(account))
        module.invalidateAllSessions.transact(sender=account)
        if ending != "invalidate":
            module.invalidateAllSessions.transact(epoch, sender=account)
            assert _refusal(chain, module, account, old) == "SessionIsRevoked", "a dead session enabled again"
    TALLY[f"ended: {ending}"] += 1
    new_id = _enable(module, account, new)
    if new_id is None:
        return
    try:
        # the second session's operations, then the first's (drawn for its rules, limits and paymasters)
        judged = [(op, at, use) for _, _, op, at, use in second] + [(old_op, old_at, False)]
        for op, at, use in judged:
            TALLY[
                judge(chain, module, account, new, new_id, signer, op.replace(sender=account), at, use)
            ] += 1
    finally:
        module.revokeSession.transact(new_id, sender=account)


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print the verdicts (shown with ``-s``); when the file's test ran and passed, check that both sides accepted
    and refused a rule and a limit somewhere, so that the sessions judged were not all refused at the grant, and
    that a first session ended at an epoch the account came back to."""
    failed_before = request.session.testsfailed
    yield
    print("\nregrants:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    if request.session.testsfailed == failed_before and TALLY:
        reached = {"CheckResult", "CallRefusedError", "LimitExceeded", "first counted"}
        assert reached | {"ended: invalidate, then back to its epoch"} <= set(TALLY), TALLY
