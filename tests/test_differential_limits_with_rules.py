"""The checker against the module where limits meet rules: a gap between the two differential suites.

``test_differential.py`` generates rules and paymaster lists but no limits; ``test_limits_differential.py``
generates limits and paymaster lists on permissions without rules, so every meter word it stores says the
session's paymasters start at the permission's first word. Here a permission carries rules of every storage shape
(inline, WIDE, ONE_OF of many members, IN_RANGE), which push its paymaster words (and the index the meter word
keeps of them) along, beside limits of every kind (GAS and OPERATIONS read the paymaster list through the meter
word, AMOUNT the ruled argument's word), with a gas cap or none and operations naming a listed paymaster, another
one, or none; in a third of the sessions the limits only meter permission 0 (no per-operation limit), so a batch
may mix calls that count with calls of a permission that counts towards nothing. For each operation the module's
``validateUserOp`` (an ``eth_call`` from the account, signed in USE_WITH_KEY form or, now and then, USE form, where
the module counts the limits of the key that signed) and the checker must give the same verdict. A development account of a fresh anvil plays the account (the module is ape's
build of its source, on a node that runs it natively): it enables each session itself and revokes it after.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keyscope.checker import CallRefusedError, PolicyChecker
from keyscope.errors import GasCostTooHighError, LimitError, LimitExceededError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.revert import decode_revert
from keyscope.session import (
    GWEI,
    ArgType,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    encode_at_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, TransactionFailedError, anvil_chain
from support.raw_call import revert_bytes
from test_differential import PACKED_OP, VALIDATE_SELECTOR

T0 = 1_700_000_000
PAY = bytes.fromhex("a9059cbb")  # transfer(address to, uint256 amount)
TARGET = to_address(keccak(b"keyscope limits-with-rules target")[12:])
TO = to_address(keccak(b"keyscope limits-with-rules recipient")[12:])
PAYMASTERS = tuple(
    to_address(keccak(f"keyscope limits-with-rules paymaster {i}".encode())[12:]) for i in range(3)
)
_keys = iter(range(10**9))


def _rules(draw: st.DrawFn) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    shapes = draw(st.lists(st.sampled_from(["to", "wide", "one_of", "range", "signed", "loose"]), max_size=4))
    for shape in shapes:
        if shape == "to":
            rules.append(
                Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(int(TO, 16),))
            )
        elif shape == "wide":
            rules.append(Rule(condition=Condition.LESS_THAN, offset=32, values=(2**250,)))
        elif shape == "one_of":
            members = draw(st.lists(st.integers(0, 30), min_size=1, max_size=12, unique=True))
            rules.append(Rule(condition=Condition.ONE_OF, offset=32, values=tuple(members)))
        elif shape == "range":
            rules.append(
                Rule(condition=Condition.IN_RANGE, offset=32, values=(0, draw(st.sampled_from([20, 2**240]))))
            )
        elif shape == "signed":
            rules.append(
                Rule(
                    condition=Condition.GREATER_THAN_OR_EQUAL, offset=32, arg_type=ArgType.INT256, values=(0,)
                )
            )
        else:
            rules.append(Rule(condition=Condition.NOT_EQUAL, offset=32, values=(draw(st.integers(0, 30)),)))
    return tuple(rules)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Session, LocalSigner, UserOperation, int | None, bool]:
    permissions = [Permission(target=TARGET, selector=PAY, value_limit=10, rules=_rules(draw))]
    if draw(st.booleans()):
        permissions.append(
            Permission(target=PAYMASTERS[2], selector=PAY, rules=_rules(draw) if draw(st.booleans()) else ())
        )
    limits = []
    kinds = list(LimitKind)
    if draw(st.integers(0, 2)) == 0:  # meters only: permission 1 (never metered) then counts towards nothing
        kinds = [LimitKind.NATIVE, LimitKind.CALLS, LimitKind.AMOUNT]
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        meters: tuple[Meter, ...] = ()
        if kind in (LimitKind.NATIVE, LimitKind.CALLS, LimitKind.AMOUNT):
            meters = (Meter(permission=0, offset=32 if kind == LimitKind.AMOUNT else 0),)
        amount = (
            draw(st.sampled_from([3 * 10**14, 4 * 10**14, 10**15, 10**17]))
            if kind == LimitKind.GAS
            else draw(st.sampled_from([0, 1, 5, 25, 2**176 - 1]))
        )
        period = draw(st.sampled_from([0, 0, 3600]))
        limits.append(Limit(kind=kind, amount=amount, period=period, meters=meters))
    signer = LocalSigner(keccak(b"limits-with-rules %d" % next(_keys)))
    fields = dict(
        session_key=signer.address,
        valid_after=T0,
        valid_until=0,
        max_gas_cost=draw(st.sampled_from([0, 0, 5 * 10**14, 3 * 10**14])),
        paymasters=tuple(draw(st.lists(st.sampled_from(PAYMASTERS[:2]), max_size=2, unique=True))),
        permissions=tuple(permissions),
        limits=tuple(limits),
        salt=draw(st.integers(0, 2**32)),
    )
    try:
        session = Session(**fields)
    except ValueError:
        assume(False)
    calls = []
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(permissions) - 1))
        amount = draw(st.sampled_from([0, 1, 2, 5, 7, 21, 2**245]))
        to = draw(st.sampled_from([TO, TO, PAYMASTERS[0]]))
        calls.append(
            Call(
                permissions[index].target,
                draw(st.sampled_from([0, 1])),
                PAY + abi_encode(["address", "uint256"], [to, amount]),
            )
        )
    paymaster = draw(st.sampled_from([None, PAYMASTERS[0], PAYMASTERS[1], PAYMASTERS[2]]))
    op = UserOperation(
        sender=TARGET,  # replaced by the account
        nonce=0,
        call_data=encode_execute(calls, batch=len(calls) > 1 or draw(st.booleans())),
        verification_gas_limit=100_000,
        call_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=draw(st.sampled_from([1, GWEI, 2 * GWEI])),
        max_priority_fee_per_gas=1,
        paymaster=paymaster,
        paymaster_verification_gas_limit=10_000 if paymaster else 0,
        paymaster_post_op_gas_limit=10_000 if paymaster else 0,
    )
    at = draw(st.sampled_from([None, T0 + 5]))
    return session, signer, op, at, draw(st.integers(0, 3)) == 0


def judge(
    chain: AnvilChain,
    module: AnvilContract,
    account: str,
    session: Session,
    session_id: bytes,
    signer: LocalSigner,
    op: UserOperation,
    at: int | None,
    use: bool = False,
) -> str:
    """Judge ``op`` of the live ``session`` both ways: the module's ``validateUserOp`` (an ``eth_call`` from the
    account, USE_WITH_KEY, or USE when ``use``, after the AT prefix when ``at`` is given) and the checker at
    ``T0 + 5``. Asserts the same verdict (the same error and arguments, or the same validation data; in USE form, a
    call without permission is SIG_VALIDATION_FAILED); returns the verdict's name."""
    op_hash = keccak(op.call_data + session_id)
    signature = signer.sign_hash(op_hash)
    if not use:
        signature = encode_use_with_key_signature(signer.address, signature)
    if at is not None:
        signature = encode_at_signature(at, signature)
    data = VALIDATE_SELECTOR + abi_encode(
        [PACKED_OP, "bytes32"], [op.replace(signature=signature).pack().as_tuple(), op_hash]
    )
    error = None
    module_data = None
    try:
        result = chain.call({"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 10**7})
        module_data = int.from_bytes(bytes.fromhex(result[2:]), "big")
    except Exception as failure:
        error = decode_revert(revert_bytes(failure))
    checker = PolicyChecker(session, account, module.address, session_id=session_id)
    try:
        verdict: Any = checker.check_operation(op, now=T0 + 5, at=at)
    except (LimitError, GasCostTooHighError, CallRefusedError) as refused:
        verdict = refused
    name = type(verdict).__name__ if not isinstance(verdict, LimitError) else verdict.reason
    context = f"{session!r}\nop {op!r}\nchecker {verdict!r}\nmodule {error or module_data}"
    if isinstance(verdict, GasCostTooHighError):
        assert error is not None and error[0] == "GasCostTooHigh", context
        assert (error[1]["cost"], error[1]["limit"]) == (verdict.cost, verdict.limit), context
    elif isinstance(verdict, LimitError):
        assert error is not None and error[0] == verdict.reason, context
        where = (error[1]["callIndex"], error[1]["limitIndex"])
        assert where == (verdict.call_index, verdict.limit_index), context
        if isinstance(verdict, LimitExceededError):
            assert (error[1]["amount"], error[1]["left"]) == (verdict.amount, verdict.left), context
    elif isinstance(verdict, CallRefusedError) and use and verdict.reason == "NoPermission":
        assert error is None and module_data == 1, context
    elif isinstance(verdict, CallRefusedError):
        assert error is not None and error[0] == verdict.reason, context
        assert error[1]["callIndex"] == verdict.call_index, context
    else:
        assert error is None and module_data == verdict.validation_data, context
    return name


@pytest.fixture(scope="module")
def setup(project):
    with anvil_chain() as chain:
        yield chain.deploy(project.SessionKeyValidator), chain.accounts[4], chain


def test_limits_beside_rules_agree_with_the_module(setup) -> None:
    module, account, chain = setup
    seen: dict[str, int] = {}

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def run(case: tuple[Session, LocalSigner, UserOperation, int | None, bool]) -> None:
        session, signer, op, at, use = case
        op = op.replace(sender=account)
        try:
            module.enableSession.transact(session.as_abi(), sender=account)
        except TransactionFailedError:  # the module refuses what no builder makes (TooManyRules): ask it why
            seen["enable refused"] = seen.get("enable refused", 0) + 1
            enable = module.enableSession.encode_input(session.as_abi())
            try:
                chain.call({"from": account, "to": module.address, "data": "0x" + enable.hex(), "gas": 10**7})
            except Exception as refused:
                assert "TooManyRules" in str(refused) or "revert" in str(refused).lower(), refused
                return
            raise
        session_id = session.session_id(account, int(module.epochOf(account)))
        try:
            name = judge(chain, module, account, session, session_id, signer, op, at, use)
            seen[name] = seen.get(name, 0) + 1
        finally:
            module.revokeSession.transact(session_id, sender=account)

    run()
    print("\nlimits beside rules:", seen)
    assert seen.get("CheckResult") and seen.get("LimitExceeded"), seen
