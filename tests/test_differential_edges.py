"""The off-chain checker against the deployed SessionKeyValidator on what ``test_differential.py``'s generators never
make: execute layouts with two readings, the account's other entry points, and generated layouts with several
mutations at once; calls to the EntryPoint; rules at their types' edges; several rules on one argument word (of
different types too); ONE_OF lists with repeats; a rule at the largest offset a rule takes, with calldata a byte short
of it or just long enough; values at the edges of the value limit's 96 bits; and argument and value totals that reach
a limit exactly, or a wei past it, within one batch.

Each operation is judged twice, as in ``test_differential.py``: by the module (``validateUserOp`` as an ``eth_call``
from a development account of a fresh anvil that enabled the session itself; USE_WITH_KEY, which reverts with the module's reason, and
USE) and by :class:`~keyscope.checker.PolicyChecker`. They must agree: the same accept or refuse, the same reason, call,
permission and rule (or limit); when both accept, the same validation data.

What the account then runs with the bytes the module accepted is checked on every account kind's released bytecode by
``tests/e2e/test_vendor_execute_layouts.py`` (the same layouts, from ``support.execute_layouts``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope.checker import PolicyChecker
from keyscope.errors import (
    GasCostTooHighError,
    LimitError,
    LimitExceededError,
    SessionExpiredError,
    SessionNotYetValidError,
)
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.revert import decode_revert
from keyscope.session import (
    SIGNED,
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
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import deploy_entry_point
from support.execute_layouts import execute_layouts, other_entry_points, two_view_layouts
from support.fuzz import DEEP, ON_CHAIN
from support.raw_call import revert_bytes
from test_differential import (
    PACKED_OP,
    REFUSALS,
    VALIDATE_SELECTOR,
    Case,
    ModuleOutcome,
    Probe,
    assert_agree,
    entry_point_in_window,
    entry_point_v08_in_window,
)

T0 = 1_700_000_000
NOW = T0 + 5
U256 = 2**256 - 1
VALUE_MAX = 2**96 - 1
"""The most a permission's value limit holds on chain: larger limits saturate to it."""
TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
DEPOSIT_TO = keccak(b"depositTo(address)")[:4]
A = to_address(keccak(b"keyscope edges target a")[12:])
B = to_address(keccak(b"keyscope edges target b")[12:])
TO = to_address(keccak(b"keyscope edges recipient")[12:])
ZERO = "0x" + "00" * 20
"""address(0): OpenZeppelin's ERC-7579 execution calls the account itself for it (attack 86)."""
FAR = 0xFFFF
"""The largest offset a rule (or a meter) takes."""
EXAMPLES = 200 if DEEP else 25
CASES = 24
TALLY: Counter[str] = Counter()

_keys = itertools.count()


def fresh_key() -> LocalSigner:
    return LocalSigner(keccak(b"keyscope differential edges key %d" % next(_keys)))


def signed(value: int) -> int:
    return Rule.signed_word(value)


def words(*values: int) -> bytes:
    return b"".join((v % 2**256).to_bytes(32, "big") for v in values)


def rule(
    op: Condition,
    values: tuple[int, ...],
    offset: int = 32,
    arg_type: int | None = None,
    signed_: bool = False,
) -> Rule:
    if arg_type is None:
        return Rule(condition=int(op) | (SIGNED if signed_ else 0), offset=offset, values=values)
    return Rule(condition=int(op), offset=offset, arg_type=arg_type, values=values)


RULE_FAMILIES: dict[str, tuple[tuple[Rule, ...], tuple[int, ...]]] = {
    # name: (rules on transfer's arguments, amount words to try besides the rules' own values)
    "three rules on one word": (
        (
            rule(Condition.GREATER_THAN_OR_EQUAL, (3,)),
            rule(Condition.LESS_THAN_OR_EQUAL, (7,)),
            rule(Condition.NOT_EQUAL, (5,)),
        ),
        (2, 3, 4, 5, 6, 7, 8, U256),
    ),
    "one word read as uint8 and as int256": (
        (
            rule(Condition.LESS_THAN, (200,), arg_type=ArgType.UINT8),
            rule(Condition.GREATER_THAN, (signed(-1),), arg_type=ArgType.INT256),
        ),
        (0, 199, 200, 255, 256, signed(-1), signed(-2), 2**255),
    ),
    "int8 over its whole range": (
        (rule(Condition.IN_RANGE, (signed(-128), 127), arg_type=ArgType.int_of(8)),),
        (signed(-128), signed(-129), 127, 128, 255, signed(-1), 0),
    ),
    "int256 above its least value": (
        (rule(Condition.GREATER_THAN, (2**255,), arg_type=ArgType.INT256),),
        (2**255, 2**255 + 1, 2**255 - 1, 0, U256),
    ),
    "uint8 up to its most": (
        (rule(Condition.LESS_THAN_OR_EQUAL, (255,), arg_type=ArgType.UINT8),),
        (254, 255, 256, 2**248, U256),
    ),
    "bytes1 above 0x7f": (
        (rule(Condition.GREATER_THAN, (0x7F << 248,), arg_type=ArgType.bytes_of(1)),),
        (0x7F << 248, 0x80 << 248, (0x80 << 248) | 1, 0xFF << 248, U256),
    ),
    "bool not false, and a word that is": (
        (
            rule(Condition.NOT_EQUAL, (0,), arg_type=ArgType.BOOL),
            rule(Condition.EQUAL, (1,), offset=0, arg_type=ArgType.WORD),
        ),
        (0, 1, 2, 2**255),
    ),
    "one_of with repeats": (
        (rule(Condition.ONE_OF, (5, 5, 9, 5, 2**216, 2**216)),),
        (4, 5, 6, 9, 2**216, 2**216 + 1),
    ),
    "one_of of one signed value": (
        (rule(Condition.ONE_OF, (signed(-7),), arg_type=ArgType.int_of(64)),),
        (signed(-7), signed(-7) & (2**64 - 1), 7),
    ),
    "an address rule on the recipient, overlapping the amount": (
        (
            rule(Condition.EQUAL, (int(TO, 16),), offset=0, arg_type=ArgType.ADDRESS),
            rule(
                Condition.LESS_THAN, (2**64,), offset=12
            ),  # the recipient's low 20 bytes and the amount's 12
        ),
        (0, 1, 2**64),
    ),
    "a rule at the largest offset": (
        (rule(Condition.EQUAL, (0,), offset=FAR),),
        (0, 1),
    ),
}
"""Rules of the transfer permission, one family per session."""


def transfer_data(amount: int, extra: int = 0, to: str = TO) -> bytes:
    """``transfer(to, amount)``, followed by ``extra`` zero bytes (negative: cut that many bytes short)."""
    data = TRANSFER + abi_encode(["address", "uint256"], [to, 0]) + bytes(max(extra, 0))
    data = data[:36] + amount.to_bytes(32, "big") + data[68:]
    return data[: len(data) + extra] if extra < 0 else data


def far_data(size: int) -> bytes:
    """transfer calldata of exactly ``size`` bytes, long enough or not for the rule at the largest offset."""
    return (transfer_data(1) + bytes(size))[:size]


@st.composite
def sessions(draw: st.DrawFn, key: str, entry_point: str) -> tuple[Session, str]:
    family = draw(st.sampled_from(sorted(RULE_FAMILIES)), label="rule family")
    rules, _ = RULE_FAMILIES[family]
    limit_a = draw(st.sampled_from([0, 1, VALUE_MAX - 1, VALUE_MAX, 2**96, U256]), label="value limit a")
    limit_b = draw(st.sampled_from([0, 5, VALUE_MAX]), label="value limit b")
    permissions = [
        Permission(target=A, selector=TRANSFER, value_limit=limit_a, rules=rules),
        Permission(target=B, selector=bytes(4), value_limit=limit_b),
        Permission(target=entry_point, selector=DEPOSIT_TO, value_limit=10),
    ]
    limits: list[Limit] = []
    if family != "a rule at the largest offset" and draw(st.booleans(), label="with limits"):
        limits.append(
            Limit(
                kind=LimitKind.AMOUNT,
                amount=draw(st.sampled_from([0, 10, 2**176 - 1])),
                meters=(Meter(permission=0, offset=32),),
            )
        )
        limits.append(
            Limit(kind=LimitKind.NATIVE, amount=draw(st.sampled_from([5, 10])), meters=(Meter(permission=1),))
        )
        limits.append(
            Limit(kind=LimitKind.CALLS, amount=3, meters=(Meter(permission=0), Meter(permission=2)))
        )
    session = Session(
        session_key=key,
        valid_after=T0,
        valid_until=T0 + 3600,
        permissions=tuple(permissions),
        limits=tuple(limits),
    )
    return session, family


@st.composite
def edge_calls(
    draw: st.DrawFn, session: Session, family: str, account: str, module: str, entry_point: str
) -> Call:
    """A call near one of the session's permissions: its value at the limit's edges, its arguments at the rules'
    edges, its calldata cut around a rule's word or followed by bytes, or a call to the account, the module or the
    EntryPoint."""
    rules, amounts = RULE_FAMILIES[family]
    which = draw(st.sampled_from(["a", "a", "a", "b", "entry point", "forbidden"]))
    if which == "forbidden":
        target = draw(st.sampled_from([account, module, ZERO]))
        return Call.of(target, 0, draw(st.sampled_from([b"", transfer_data(1)])))
    if which == "entry point":
        data = DEPOSIT_TO + abi_encode(["address"], [account])
        data = draw(st.sampled_from([data, data[:35], data + b"\x01", b"", TRANSFER + data[4:]]))
        return Call.of(entry_point, draw(st.sampled_from([0, 10, 11])), data)
    if which == "b":
        limit = session.permissions[1].value_limit
        value = draw(st.sampled_from([0, limit, limit + 1, 5, 6, VALUE_MAX, 2**96]))
        data = draw(st.sampled_from([b"", b"", bytes(4), b"\x01", bytes(4) + b"x"]))
        return Call.of(B, value, data)
    limit = session.permissions[0].value_limit
    value = draw(
        st.sampled_from(
            [0, 0, max(limit - 1, 0), min(limit, VALUE_MAX), min(limit + 1, U256), VALUE_MAX, 2**96]
        )
    )
    candidates = [v for r in rules for v in r.values] + list(amounts)
    amount = draw(st.sampled_from(candidates))
    if family == "a rule at the largest offset":
        size = draw(st.sampled_from([FAR + 35, FAR + 36, FAR + 37, 68]))
        data = far_data(size)
        if size >= FAR + 36 and amount:
            data = data[: FAR + 4] + amount.to_bytes(32, "big") + data[FAR + 36 :]
        return Call.of(A, value, data)
    extra = draw(st.sampled_from([0, 0, 0, -1, -32, -33, 5, 32]))
    to = draw(st.sampled_from([TO, TO, A]))
    return Call.of(A, value, transfer_data(amount, extra, to))


def run_operation(
    probe: Probe, checker: PolicyChecker, key: LocalSigner, call_data: bytes, with_key: bool
) -> str:
    """Judge one callData both ways; returns the verdict's category."""
    op = UserOperation(sender=probe.address, nonce=0, call_data=call_data)
    op_hash = keccak(call_data + key.private_key)
    module = probe.validate(op, key, with_key=with_key, op_hash=op_hash)
    try:
        verdict: Any = checker.check_operation(op, now=NOW)
    except LimitError as refused:
        name, args = module.error if module.error else (None, {})
        context = (
            f"session {checker.session!r}\ncallData 0x{call_data.hex()}\nchecker {refused!r}\nmodule {module}"
        )
        assert name == refused.reason, context
        assert (args["callIndex"], args["limitIndex"]) == (refused.call_index, refused.limit_index), context
        if isinstance(refused, LimitExceededError):
            assert (args["amount"], args["left"]) == (refused.amount, refused.left), context
        category = refused.reason
    except REFUSALS as refused:
        category = assert_agree(Case(checker.session, op, with_key, False, NOW, refused, module))
    else:
        category = assert_agree(Case(checker.session, op, with_key, False, NOW, verdict, module))
    TALLY[category] += 1
    TALLY["operations"] += 1
    return category


def judge_session(
    probe: Probe, session: Session, key: LocalSigner, call_datas: list[tuple[bytes, bool]]
) -> None:
    probe.module.enableSession.transact(session.as_abi(), sender=probe.address)
    session_id = session.session_id(probe.address, int(probe.module.epochOf(probe.address)))
    try:
        checker = PolicyChecker(session, probe.address, probe.module.address, session_id=session_id)
        for call_data, with_key in call_datas:
            run_operation(probe, checker, key, call_data, with_key)
    finally:
        probe.revoke(session_id)


class EdgeProbe(Probe):
    """test_differential's probe, keeping its chain for calls with other signature layouts."""

    def __init__(self, module: AnvilContract, account: str, chain: AnvilChain) -> None:
        super().__init__(module, account, chain)
        self.chain = chain


@pytest.fixture(scope="module")
def probe(project):
    with anvil_chain() as chain:  # as test_differential.py: a development account plays the account
        yield EdgeProbe(chain.deploy(project.SessionKeyValidator), chain.accounts[8], chain)


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print the verdicts (shown with ``-s``); when the whole module ran and passed, check that both sides
    accepted, refused a malformed execute, a forbidden target, a broken rule and an exceeded limit somewhere."""
    failed_before = request.session.testsfailed
    yield
    print("\ndifferential edges:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    ran = sum(1 for item in request.session.items if item.module is request.module)
    if ran >= len(chosen(A, A, A)) + 2 and request.session.testsfailed == failed_before:
        seen = {"accepted", "malformed execute", "ForbiddenTarget", "RuleViolated", "LimitExceeded"}
        assert seen <= set(TALLY), TALLY


@pytest.fixture(scope="module")
def entry_point_address(probe):
    """EntryPoint v0.7, deployed on the probe's anvil beside the module."""
    return deploy_entry_point(probe.chain, probe.chain.accounts[0]).address


@settings(max_examples=EXAMPLES, **ON_CHAIN)
@given(data=st.data())
def test_edge_layouts_and_rules_agree_with_the_module(probe, entry_point_address, data):
    """Generated sessions (a rule family, value limits at their edges, limits or none) judged on generated execute
    layouts (up to three mutations each) of edge calls, layouts with two readings and the other entry points."""
    key = fresh_key()
    session, family = data.draw(sessions(key.address, entry_point_address), label="session")
    account, module = probe.address, probe.module.address
    calls = edge_calls(session, family, account, module, entry_point_address)
    cases = []
    for index in range(CASES):
        shape = data.draw(
            st.sampled_from(["layout", "layout", "layout", "canonical", "two views", "entry point"])
        )
        if shape == "canonical":
            drawn = data.draw(st.lists(calls, min_size=1, max_size=4), label=f"calls {index}")
            call_data = encode_execute(drawn, batch=len(drawn) > 1 or data.draw(st.booleans()))
        elif shape == "two views":
            allowed, forbidden = (
                data.draw(calls, label=f"allowed {index}"),
                data.draw(calls, label=f"other {index}"),
            )
            call_data = data.draw(st.sampled_from(two_view_layouts(allowed, forbidden))).call_data
        elif shape == "entry point":
            call_data = data.draw(st.sampled_from(other_entry_points(data.draw(calls)))).call_data
        else:
            call_data = data.draw(execute_layouts(calls), label=f"layout {index}").call_data
        cases.append((call_data, data.draw(st.integers(0, 3), label=f"with key {index}") > 0))
    judge_session(probe, session, key, cases)


# --------------------------------------------------------------------------------------------------
# Chosen edges: each at least once, whatever the generator draws
# --------------------------------------------------------------------------------------------------


def _batch_words(*values: int) -> bytes:
    """execute(batch, executionCalldata) around the given words of executionCalldata."""
    execution = words(*values)
    return encode_execute(Call(B, 0, b""), batch=True)[:68] + words(len(execution)) + execution


def chosen(
    account: str, module: str, entry_point: str
) -> dict[str, tuple[tuple[Permission, ...], tuple[Limit, ...], list[bytes]]]:
    """Named scenarios: permissions, limits and the callData to judge against them."""
    plain = Permission(target=B, selector=bytes(4), value_limit=5)
    ruled = Permission(
        target=A,
        selector=TRANSFER,
        value_limit=VALUE_MAX,
        rules=(rule(Condition.LESS_THAN_OR_EQUAL, (10,)),),
    )
    deposit = Permission(target=entry_point, selector=DEPOSIT_TO, value_limit=10)
    ok_call = Call(B, 1, b"")
    element = words(int(B, 16), 1, 0x60, 0)
    return {
        "empty batch, and counts past the data": (
            (plain,),
            (),
            [
                _batch_words(0x20, 0),
                _batch_words(0x20, 1),
                _batch_words(0x20, 2, 0x40, 0xC0) + element,
                _batch_words(0x20, 2**255, 0x20),
            ],
        ),
        "element offsets backward, overlapping, into the head, out of bounds": (
            (plain,),
            (),
            [
                _batch_words(0x20, 1, 0x20) + element,  # canonical
                _batch_words(0x20, 2, 0x40, 0x40) + element,  # both offsets at one element
                _batch_words(0x20, 2, 0xC0, 0x40) + element + element,  # swapped: backward
                _batch_words(0x20, 1, 0x00) + element,  # at its own offsets word
                _batch_words(0x20, 1, 0x20 + 2**256 - 32) + element,  # wraps around to 0
                _batch_words(0x20, 1, 0x1000) + element,
                _batch_words(0x40, 0, 1, 0x20) + element,  # array offset past a word
            ],
        ),
        "dirty target words and data offsets": (
            (plain,),
            (),
            [
                _batch_words(0x20, 1, 0x20, int(B, 16) | (1 << 160), 1, 0x60, 0),
                _batch_words(0x20, 1, 0x20, int(B, 16) | (1 << 255), 1, 0x60, 0),
                _batch_words(0x20, 1, 0x20, int(B, 16), 1, 0x80, 0, 0),
                _batch_words(0x20, 1, 0x20, int(B, 16), 1, 0x40, 0),
            ],
        ),
        "modes: delegatecall, static, try, unknown, selector set": (
            (plain,),
            (),
            [
                bytes.fromhex("e9ae5c53")
                + bytes([call_type, exec_type])
                + bytes(30)
                + encode_execute(ok_call)[36:]
                for call_type, exec_type in ((0, 1), (0xFF, 0), (0xFF, 1), (0xFE, 0), (0, 2), (2, 0))
            ]
            + [
                encode_execute(ok_call, batch=True, exec_type=1),
                encode_execute(ok_call)[:10] + b"\x01" + encode_execute(ok_call)[11:],
            ],
        ),
        "calls to the account, the module, the EntryPoint, the zero address": (
            (plain, deposit),
            (),
            [
                encode_execute([ok_call, Call(target, 0, b"")])
                for target in (account, module, entry_point, ZERO)
            ]
            + [
                encode_execute(Call(entry_point, v, DEPOSIT_TO + abi_encode(["address"], [account])))
                for v in (0, 10, 11)
            ]
            + [encode_execute(Call(entry_point, 0, b""))],
        ),
        "values at the 96-bit edge": (
            (ruled, Permission(target=B, selector=bytes(4), value_limit=2**96)),
            (),
            [
                encode_execute(Call(target, value, data))
                for target, data in ((A, transfer_data(1)), (B, b""))
                for value in (VALUE_MAX - 1, VALUE_MAX, 2**96, U256)
            ],
        ),
        "calldata short of a rule, or with bytes after it": (
            (ruled,),
            (),
            [encode_execute(Call(A, 0, transfer_data(10, extra))) for extra in (-1, 0, 1, 31, 32, 1000)]
            + [
                encode_execute(Call(A, 0, data))
                for data in (TRANSFER, TRANSFER[:3], b"", bytes(4) + transfer_data(1)[4:])
            ],
        ),
        "a rule at the largest offset, calldata a byte short or just long enough": (
            (Permission(target=A, selector=TRANSFER, rules=(rule(Condition.EQUAL, (0,), offset=FAR),)),),
            (),
            [encode_execute(Call(A, 0, far_data(size))) for size in (FAR + 35, FAR + 36, FAR + 37)]
            + [encode_execute([Call(A, 0, far_data(FAR + 36)), Call(A, 0, far_data(FAR + 35))])],
        ),
        "argument and value totals at a limit exactly, and a unit past it": (
            (ruled, plain),
            (
                Limit(kind=LimitKind.AMOUNT, amount=10, meters=(Meter(permission=0, offset=32),)),
                Limit(kind=LimitKind.NATIVE, amount=5, meters=(Meter(permission=1),)),
            ),
            [
                encode_execute(
                    [Call(A, 0, transfer_data(a)) for a in amounts] + [Call(B, v, b"") for v in values]
                )
                for amounts, values in (
                    ((10,), ()),
                    ((4, 6), ()),
                    ((4, 7), ()),
                    ((3, 3, 4), (2, 3)),
                    ((), (2, 3)),
                    ((), (2, 4)),
                    ((10, 0), (5, 0)),
                    ((0,), (0,)),
                )
            ],
        ),
        "argument totals near the 176-bit saturation": (
            (Permission(target=A, selector=TRANSFER),),
            (Limit(kind=LimitKind.AMOUNT, amount=2**176 - 1, meters=(Meter(permission=0, offset=32),)),),
            [
                encode_execute([Call(A, 0, transfer_data(a)) for a in amounts])
                for amounts in (
                    (2**176 - 1,),
                    (2**176,),
                    (2**175, 2**175 - 1),
                    (2**175, 2**175),
                    (U256,),
                    (U256, 1),
                )
            ],
        ),
    }


@pytest.mark.parametrize("name", sorted(chosen(A, A, A)))
def test_chosen_edges_agree_with_the_module(probe, entry_point_address, name):
    permissions, limits, call_datas = chosen(probe.address, probe.module.address, entry_point_address)[name]
    key = fresh_key()
    session = Session(
        session_key=key.address, valid_after=T0, valid_until=T0 + 3600, permissions=permissions, limits=limits
    )
    judge_session(probe, session, key, [(c, w) for c in call_datas for w in (True, False)])


# --------------------------------------------------------------------------------------------------
# One call against each rule family's session: the edges as explicit examples, then generated words
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def family_sessions(probe):
    """One live session per rule family (its own key), the transfer permission at the 96-bit value limit's edge:
    (checker, key) by family name. Revoked when the module's tests end."""
    live: dict[str, tuple[PolicyChecker, LocalSigner]] = {}
    for family, (rules, _) in sorted(RULE_FAMILIES.items()):
        key = fresh_key()
        session = Session(
            session_key=key.address,
            valid_after=T0,
            valid_until=T0 + 3600,
            permissions=(Permission(target=A, selector=TRANSFER, value_limit=VALUE_MAX - 1, rules=rules),),
        )
        probe.module.enableSession.transact(session.as_abi(), sender=probe.address)
        session_id = session.session_id(probe.address, int(probe.module.epochOf(probe.address)))
        live[family] = (
            PolicyChecker(session, probe.address, probe.module.address, session_id=session_id),
            key,
        )
    yield live
    for checker, _ in live.values():
        assert checker.session_id is not None
        probe.revoke(bytes.fromhex(checker.session_id[2:]))


def _family_words(family: str) -> list[int]:
    rules, amounts = RULE_FAMILIES[family]
    return sorted({w % 2**256 for r in rules for v in r.values for w in (v - 1, v, v + 1)} | set(amounts))


EDGE_EXAMPLES = [
    (family, word, extra, value)
    for family in sorted(RULE_FAMILIES)
    for word in _family_words(family)
    for extra, value in ((0, 0), (-1, VALUE_MAX - 1), (7, VALUE_MAX))
]
"""Every family at each of its reference values and one off, with whole calldata and no value, calldata a byte
short at the value limit, and trailing bytes a wei over it."""


def _with_examples(test: Any) -> Any:
    for family, word, extra, value in EDGE_EXAMPLES:
        test = example(family=family, word=word, extra=extra, value=value)(test)
    return test


@settings(max_examples=60 if not DEEP else 600, **ON_CHAIN)
@given(
    family=st.sampled_from(sorted(RULE_FAMILIES)),
    word=st.one_of(st.sampled_from([0, 1, 2**255, U256, 2**160, 2**248]), st.integers(0, U256)),
    extra=st.sampled_from([0, -1, -33, 1, 32, 100]),
    value=st.sampled_from([0, VALUE_MAX - 1, VALUE_MAX]),
)
@_with_examples
def test_one_call_at_each_rule_edge_agrees_with_the_module(
    probe, family_sessions, family, word, extra, value
):
    """One single-mode call of the family's session with its ruled word (at offset 32, or the largest offset) set
    to ``word``, its calldata cut or extended by ``extra`` bytes and ``value`` wei: both sides, USE_WITH_KEY."""
    checker, key = family_sessions[family]
    if family == "a rule at the largest offset":
        data = far_data(FAR + 36 + extra)
        if len(data) >= FAR + 36:
            data = data[: FAR + 4] + word.to_bytes(32, "big") + data[FAR + 36 :]
    else:
        data = transfer_data(word, extra)
    run_operation(probe, checker, key, encode_execute(Call(A, value, data)), with_key=True)


def validate_signed(probe: Probe, op: UserOperation, op_hash: bytes) -> ModuleOutcome:
    """The module's answer to ``op`` as signed (any signature layout), from the account."""
    data = VALIDATE_SELECTOR + abi_encode([PACKED_OP, "bytes32"], [op.pack().as_tuple(), op_hash])
    tx = {"from": probe.address, "to": probe.module.address, "data": "0x" + data.hex(), "gas": 30_000_000}
    try:
        result = probe.chain.call(tx)
    except Exception as error:
        raw = revert_bytes(error)
        return ModuleOutcome(error=decode_revert(raw), raw=raw)
    output = bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result)
    return ModuleOutcome(data=int.from_bytes(output, "big"))


@pytest.mark.parametrize(
    ("valid_after", "valid_until", "period"),
    [
        (T0, 2**48 - 1, 0),
        (0, 2**48 - 1, 0),
        (0, 0, 0),
        (T0, 2**48 - 1, 3600),
        (2**48 - 2, 2**48 - 1, 0),
        (T0, T0 + 1, 60),
    ],
)
def test_a_limited_session_s_window_at_its_ends_agrees_with_the_module(
    probe, valid_after, valid_until, period
):
    """A limited session whose window ends at the 48-bit maximum (which the limits' bounds also use for "no end"),
    or opens at 0: the validation data both sides give an accepted call, its window and its limit's period; then,
    at each second around that window's ends (a later period's first second among them), the checkers for EntryPoint
    v0.7 and v0.8 accept the call exactly when their EntryPoint would."""
    key = fresh_key()
    session = Session(
        session_key=key.address,
        valid_after=valid_after,
        valid_until=valid_until,
        permissions=(Permission(target=B, selector=bytes(4), value_limit=5),),
        limits=(Limit(kind=LimitKind.CALLS, amount=2, period=period, meters=(Meter(permission=0),)),),
    )
    probe.module.enableSession.transact(session.as_abi(), sender=probe.address)
    session_id = session.session_id(probe.address, int(probe.module.epochOf(probe.address)))
    try:
        checker = PolicyChecker(session, probe.address, probe.module.address, session_id=session_id)
        call_data = encode_execute([Call(B, 1, b""), Call(B, 0, b"")])
        op = UserOperation(sender=probe.address, nonce=0, call_data=call_data)
        op_hash = keccak(call_data + key.private_key)
        # a claim in the second period where the window reaches it, else in the first
        at = (valid_after + (period + 1 if valid_until - valid_after > period + 1 else 1)) if period else None
        signature = encode_use_with_key_signature(key.address, key.sign_hash(op_hash))
        if at is not None:
            signature = encode_at_signature(at, signature)
        module = validate_signed(probe, op.replace(signature=signature), op_hash)
        verdict = checker.check_operation(op, now=valid_after + 1 if at is None else at, at=at)
        assert module.error is None and module.data == verdict.validation_data, (module, verdict)
        judge_moments(checker, op, at, module.data)
    finally:
        probe.revoke(session_id)


def judge_moments(checker: PolicyChecker, op: UserOperation, at: int | None, validation_data: int) -> None:
    """The checker for EntryPoint v0.7 and the one for v0.8 (which opens a window the second after its validAfter)
    at each second around the ends of the window the module returned (a limit's period, or the session's): each
    accepts ``op`` exactly when its EntryPoint takes ``validation_data`` then, with that validation data, and
    refuses it otherwise as outside its window."""
    v08 = PolicyChecker(
        checker.session, checker.account, checker.module, session_id=checker.session_id, opens_after=True
    )
    opens = (validation_data >> 208) & (2**48 - 1)
    ends = (validation_data >> 160) & (2**48 - 1) or 2**48 - 1
    moments = sorted({m for end in (opens, ends) for m in (end - 1, end, end + 1) if m >= 0})
    for subject, in_window in ((checker, entry_point_in_window), (v08, entry_point_v08_in_window)):
        for now in moments:
            try:
                verdict = subject.check_operation(op, now=now, at=at)
            except (SessionExpiredError, SessionNotYetValidError) as refused:
                assert not in_window(validation_data, now), (subject.opens_after, now, refused)
                continue
            assert in_window(validation_data, now), (subject.opens_after, now, verdict)
            assert verdict.validation_data == validation_data, (subject.opens_after, now, verdict)


def _judge_at_the_gas_cap(probe: Any, cap: int, max_fee_per_gas: int, over: int) -> None:
    """A session capped at ``cap`` wei, and an operation whose most cost (its gas limits times ``max_fee_per_gas``)
    is the cap plus ``over`` fee steps: at or under the cap both sides accept it alike; over it, the module refuses
    it as GasCostTooHigh naming its cost and the whole cap, and the checker as GasCostTooHighError."""
    key = fresh_key()
    session = Session(
        session_key=key.address,
        valid_after=T0,
        valid_until=T0 + 3600,
        max_gas_cost=cap,
        permissions=(Permission(target=B, selector=bytes(4), value_limit=5),),
    )
    probe.module.enableSession.transact(session.as_abi(), sender=probe.address)
    session_id = session.session_id(probe.address, int(probe.module.epochOf(probe.address)))
    try:
        checker = PolicyChecker(session, probe.address, probe.module.address, session_id=session_id)
        call_data = encode_execute(Call(B, 1, b""))
        op = UserOperation(
            sender=probe.address,
            nonce=0,
            call_data=call_data,
            verification_gas_limit=cap // max_fee_per_gas - 100_000 + over,
            call_gas_limit=60_000,
            pre_verification_gas=40_000,
            max_fee_per_gas=max_fee_per_gas,
            max_priority_fee_per_gas=1,
        )
        op_hash = keccak(call_data + key.private_key + bytes([over % 256]))
        signed = op.replace(signature=encode_use_with_key_signature(key.address, key.sign_hash(op_hash)))
        module = validate_signed(probe, signed, op_hash)
        if over <= 0:
            verdict = checker.check_operation(op, now=T0 + 1)
            assert module.error is None and module.data == verdict.validation_data, (module, verdict)
        else:
            assert module.error is not None and module.error[0] == "GasCostTooHigh", module
            assert list(module.error[1].values()) == [cap + over * max_fee_per_gas, cap], module
            with pytest.raises(GasCostTooHighError):
                checker.check_operation(op, now=T0 + 1)
    finally:
        probe.revoke(session_id)


@pytest.mark.parametrize("over", [-1, 0, 1])
def test_an_operation_one_wei_from_the_gas_cap_agrees_with_the_module(probe, over):
    """The gas cap binds to the wei: an operation whose most cost (its gas limits times maxFeePerGas, here 1 wei) is
    the session's cap, or a wei less, passes on both sides; a wei more is GasCostTooHigh on both sides. (Generated
    gas fields move the cost in steps of the operation's gas, which seldom land one wei past the cap.)"""
    _judge_at_the_gas_cap(probe, 10**9, 1, over)  # maxGasCost of 1 gwei, the cap's unit


@pytest.mark.parametrize("over", [0, 1])
def test_the_widest_gas_cap_binds_to_its_last_gwei(probe, over):
    """The header keeps the gas cap in 40 bits of gwei: the widest cap, 2**40 - 1 gwei (about 1.1 million ether),
    is read whole. An operation whose most cost is that cap passes on both sides; a gwei more is GasCostTooHigh on
    both sides, naming the whole cap. Were the cap read from fewer bits, an operation under it would be refused
    with a cap of less than half what the owner signed."""
    _judge_at_the_gas_cap(probe, (2**40 - 1) * 10**9, 10**9, over)
