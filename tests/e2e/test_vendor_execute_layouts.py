"""The execution modes and calldata layouts of ``execute(bytes32 mode, bytes executionCalldata)`` on every
account kind's released bytecode: what the session module accepts is exactly what the account runs.

Each account decodes ``execute`` with its own code (Kernel's ExecLib, Nexus's, Safe7579's adapter and its batch
delegatecall, the reference account's ExecutionLib, OpenZeppelin's ERC7579Utils, keyscope's own account and its
EIP-7702 delegate), and those decoders follow the offsets an encoding names, ignore the mode's unused bytes,
selector and payload, and give call type 0xff a meaning (delegatecall). The module reads only the canonical
encoding of single and batch calls with zero mode bytes past the exec type. Three tests check that on a real anvil
(Prague) with the real EntryPoints, v0.7 for the accounts and v0.8 for an EOA delegating to keyscope's
``KeyscopeDelegate`` (its own key, the module installed, the same grant):

* generated callData (mode bytes, outer offset and length, bytes after the execution, short single executions,
  batch array and element offsets, counts, data offsets and lengths, dirty target words and padding): for every
  operation the module accepts (the account's own ``validateUserOp``, asked as its EntryPoint asks it), the calls
  the account makes (``debug_traceCall`` of the same callData from that EntryPoint) are the calls the module
  judged, byte for byte, and each is one the grant allows;
* chosen layouts with two readings (the canonical one allowed, the one an offset-following decoder or a
  mode-reading account makes reaching another call), the other modes and the other entry points: refused on every
  kind, where the accounts themselves would run another call than the canonical reading;
* some of those sent through the Alto bundler, and batches with garbage in their padding or after their last
  call: refused in validation, nothing runs; and an odd but canonical batch lands and runs its three calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from keyscope import BundlerRejectedError, Network, Policy, SessionKey, arg, connect
from keyscope.eip7702 import delegation_code
from keyscope.errors import KeyscopeError, TargetWarning
from keyscope.execution import EXECUTE_SELECTOR, Call, ExecuteDecodeError, decode_execute
from keyscope.hexutil import keccak, to_address, to_bytes
from keyscope.local import LocalStack
from keyscope.operations import OperationBuilder
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.accounts import (
    ACCOUNT_KINDS,
    AccountContracts,
    build_bytecode,
    deploy_accounts,
    deploy_code,
    network_for,
)
from support.execute_layouts import (
    Layout,
    batch_execution,
    execute_call_data,
    execute_layouts,
    mode,
    other_entry_points,
    two_view_layouts,
    words,
)
from support.fuzz import DEEP
from support.victims import deploy, view

pytestmark = pytest.mark.e2e

ETHER = 10**18
KINDS = (*ACCOUNT_KINDS, "openzeppelin", "delegate")
"""Every kind of tests/e2e/test_accounts.py, OpenZeppelin's AccountERC7579 as it comes (through the generic
adapter), and an EOA delegating to keyscope's ``KeyscopeDelegate`` (EIP-7702, on EntryPoint v0.8)."""
VALUE_LIMIT = 10
AMOUNT_LIMIT = 5
OTHER = keccak(b"other(uint256)")[:4]
WITH_BYTES = keccak(b"withBytes(bytes,uint256)")[:4]
PACKED_OP = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"
VALIDATE_USER_OP = keccak(f"validateUserOp({PACKED_OP},bytes32,uint256)".encode())[:4]
SIG_FAILED_MASK = 2**160 - 1
EXAMPLES = 2000 if DEEP else 300
TALLY: Counter[str] = Counter()


# -- one stack, one account of each kind -----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(code_size_unlimited_stack: LocalStack) -> Iterator[LocalStack]:
    """The test process's stack without EIP-170's code size limit (``code_size_unlimited_stack``), shared with the
    other files deploying the vendors' accounts: this file's contracts and accounts are its own deployments."""
    yield code_size_unlimited_stack


@pytest.fixture(scope="module")
def contracts(stack: LocalStack) -> AccountContracts:
    return deploy_accounts(stack)


@dataclass(frozen=True)
class Targets:
    granted: str
    """The session may call ``other(amount <= 5)`` and ``withBytes(...)`` here, and send it plain value."""
    stranger: str
    """No permission names it."""


@pytest.fixture(scope="module")
def targets(stack: LocalStack) -> Targets:
    return Targets(deploy(stack, "RecordingTarget"), deploy(stack, "RecordingTarget"))


@dataclass(frozen=True)
class Subject:
    """An account of one kind with the module installed and a session on chain, and a signed operation of the
    session to change the callData of."""

    kind: str
    net: Network
    account: str
    key: SessionKey
    template: UserOperation
    entry_point: str
    """The EntryPoint the account takes operations from (v0.8 for the EIP-7702 delegate, v0.7 otherwise)."""


def grant_policies(targets: Targets) -> list[Any]:
    return [
        Policy.call(
            targets.granted,
            "other(uint256 amount)",
            rules=[arg("amount") <= AMOUNT_LIMIT],
            value_limit=VALUE_LIMIT,
        ),
        Policy.call(targets.granted, "withBytes(bytes data,uint256 amount)"),
        Policy.transfer(targets.granted, value_limit=VALUE_LIMIT),
    ]


def openzeppelin_network(
    stack: LocalStack, contracts: AccountContracts, signer: LocalSigner
) -> tuple[Network, str]:
    """A deployed ``PlainERC7579Account`` (OpenZeppelin's AccountERC7579) on EntryPoint v0.7 owned by ``signer``."""
    init_code = build_bytecode("PlainERC7579Account") + abi_encode(
        ["address", "address", "bytes"],
        [stack.entry_point, contracts.owner_validator, to_bytes(signer.address, length=20)],
    )
    account = deploy_code(stack.node, stack.deployer.address, init_code, "an OpenZeppelin AccountERC7579")
    net = connect(
        stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=contracts.owner_validator
    )
    return net, account


@pytest.fixture(scope="module")
def subjects(stack: LocalStack, contracts: AccountContracts, targets: Targets) -> dict[str, Subject]:
    made: dict[str, Subject] = {}
    for kind in KINDS:
        signer = LocalSigner.generate()
        if kind == "openzeppelin":
            net, address = openzeppelin_network(stack, contracts, signer)
            owner = net.owner(signer, address)
            stack.fund(owner.account, ETHER)
            pending = owner.install_sessions()
            assert pending is not None
            pending.wait()
        elif kind == "delegate":
            net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate)
            eoa = net.eoa(signer)
            stack.fund(eoa.account, ETHER)
            key = SessionKey.generate()
            # the EOA's own type-4 transaction delegates it, installs the module and enables the session
            with pytest.warns(
                TargetWarning, match="takes bytes no rule reads"
            ):  # the layouts' bytes argument
                upgraded = eoa.upgrade(key, grant_policies(targets), transaction=True)
            session = net.session(upgraded, key)
            assert net.entry_point == stack.entry_point_v08 and eoa.account == signer.address
            delegated = stack.node.request("eth_getCode", [eoa.account, "latest"])
            assert to_bytes(delegated) == delegation_code(stack.delegate), delegated
            template = session.build(Call.of(targets.granted, 1, OTHER + words(1)))
            made[kind] = Subject(kind, net, eoa.account, key, template, stack.entry_point_v08)
            continue
        else:
            net = network_for(stack, contracts.kind(kind))
            net.kind = contracts.kind(kind, net)
            owner = net.owner(signer)
            stack.fund(owner.account, ETHER)
            owner.execute(Call.of(targets.granted, 0, b"")).wait()  # creates the account
        key = SessionKey.generate()
        with pytest.warns(TargetWarning, match="takes bytes no rule reads"):  # the layouts' bytes argument
            granted = owner.grant(key, grant_policies(targets), onchain=True)
        session = net.session(granted, key)
        template = session.build(Call.of(targets.granted, 1, OTHER + words(1)))
        made[kind] = Subject(kind, net, owner.account, key, template, stack.entry_point)
    return made


# -- what the module says, what the account does ---------------------------------------------------------


def revert_data(error: Exception) -> str:
    raw = getattr(error, "data", None)
    if isinstance(raw, dict):
        raw = raw.get("data")
    return raw if isinstance(raw, str) else str(error)


def module_accepts(stack: LocalStack, subject: Subject, call_data: bytes) -> tuple[bool, str]:
    """Whether the account's ``validateUserOp`` (asked by its EntryPoint, for an operation of the session with
    ``call_data``, signed by its key) validates; else why not (revert data, or "signature failure")."""
    op = subject.template.replace(call_data=call_data)
    user_op_hash = subject.net.user_op_hash(op)
    op = op.replace(signature=subject.key.sign_hash(user_op_hash))
    data = VALIDATE_USER_OP + abi_encode(
        [PACKED_OP, "bytes32", "uint256"], [op.pack().as_tuple(), user_op_hash, 0]
    )
    tx = {"from": subject.entry_point, "to": subject.account, "data": "0x" + data.hex()}
    try:
        answer = int(stack.node.request("eth_call", [tx, "latest"]), 16)
    except KeyscopeError as error:
        return False, revert_data(error)
    return (answer & SIG_FAILED_MASK) == 0, "signature failure"


@dataclass(frozen=True)
class Frame:
    """A call the account's execution makes to a watched target."""

    type: str
    sender: str
    target: str
    value: int
    data: bytes
    failed: bool

    def runs(self, account: str, call: Call) -> bool:
        """Whether this frame is the account making ``call``."""
        return (self.type, self.sender, self.target, self.value, self.data) == (
            "CALL",
            account,
            call.target,
            call.value,
            call.data,
        )


def account_runs(stack: LocalStack, subject: Subject, call_data: bytes, watched: set[str]) -> list[Frame]:
    """The calls to ``watched`` addresses that the account makes when its EntryPoint calls it with
    ``call_data`` (``debug_traceCall``, call tracer), in order, failed ones included."""
    tx = {
        "from": subject.entry_point,
        "to": subject.account,
        "data": "0x" + call_data.hex(),
        "gas": hex(10_000_000),
    }
    trace = stack.node.request("debug_traceCall", [tx, "latest", {"tracer": "callTracer"}])
    frames: list[Frame] = []

    def walk(node: dict[str, Any]) -> None:
        to = node.get("to")
        if to is not None and to_address(to) in watched:
            frames.append(
                Frame(
                    node["type"],
                    to_address(node["from"]),
                    to_address(to),
                    int(node.get("value") or "0x0", 16),
                    to_bytes(node.get("input") or "0x"),
                    "error" in node,
                )
            )
        for child in node.get("calls") or []:
            walk(child)

    walk(trace)
    return frames


def grant_allows(targets: Targets, call: Call) -> bool:
    """What the grant allows, spelled independently of the module: ``other(amount <= 5)`` and plain transfers with
    at most 10 wei, ``withBytes`` without value, all on the granted target."""
    if call.target != targets.granted:
        return False
    if call.data == b"":
        return call.value <= VALUE_LIMIT
    if call.data[:4] == OTHER:
        return (
            len(call.data) >= 36
            and int.from_bytes(call.data[4:36], "big") <= AMOUNT_LIMIT
            and call.value <= VALUE_LIMIT
        )
    return call.data[:4] == WITH_BYTES and call.value == 0


def check_runs_as_judged(stack: LocalStack, subject: Subject, targets: Targets, layout: Layout) -> bool:
    """If the module accepts ``layout`` on ``subject``'s account (returns whether it does): every call the account
    then makes is a CALL from the account that the grant allows, and the calls are the ones the module judged (the
    canonical reading, :func:`decode_execute`), byte for byte: all of them, or in default execution a prefix
    ending with the call that failed and stopped it."""
    accepted, _ = module_accepts(stack, subject, layout.call_data)
    if not accepted:
        return False
    where = f"{subject.kind}: {layout.label}: 0x{layout.call_data.hex()}"
    frames = account_runs(stack, subject, layout.call_data, {targets.granted, targets.stranger})
    TALLY[f"{subject.kind} calls run"] += len(frames)
    for frame in frames:  # the promise, whatever reading anyone makes of the bytes
        assert frame.type == "CALL" and frame.sender == subject.account, (frame, where)
        assert grant_allows(targets, Call(frame.target, frame.value, frame.data)), (frame, where)
    try:
        decoded = decode_execute(layout.call_data)
    except ExecuteDecodeError as error:
        raise AssertionError(
            f"the module accepted what is no canonical execute ({error}): {where}"
        ) from error
    judged = decoded.calls
    assert len(frames) <= len(judged), (frames, judged, where)
    for frame, call in zip(frames, judged, strict=False):
        assert frame.runs(subject.account, call), (frame, call, where)
    if len(frames) < len(judged):  # stopped by a failing call, in default execution only
        assert decoded.exec_type == 0 and (not frames or frames[-1].failed), (frames, judged, where)
    return True


# -- generated layouts -------------------------------------------------------------------------------------


def session_calls(targets: Targets) -> st.SearchStrategy[Call]:
    """Calls the grant allows (most of them: their encodings should validate often), and calls it does not."""
    granted, stranger = targets.granted, targets.stranger
    amount = st.integers(0, AMOUNT_LIMIT)
    value = st.integers(0, VALUE_LIMIT)
    allowed = st.one_of(
        st.builds(lambda a, v: Call(granted, v, OTHER + words(a)), amount, value),
        st.builds(
            lambda d, a: Call(granted, 0, WITH_BYTES + abi_encode(["bytes", "uint256"], [d, a])),
            st.binary(max_size=70),
            st.integers(0, 2**256 - 1),
        ),
        # bytes after the selector that are no ABI encoding (the permission has no rule): odd lengths
        st.builds(lambda tail: Call(granted, 0, WITH_BYTES + tail), st.binary(max_size=45)),
        # an argument word, then more bytes: the rule reads the word, the target gets all of them
        st.builds(
            lambda a, tail: Call(granted, 0, OTHER + words(a) + tail),
            amount,
            st.binary(min_size=1, max_size=40),
        ),
        st.builds(lambda v: Call(granted, v, b""), value),
    )
    forbidden = st.one_of(
        st.builds(lambda a: Call(granted, 0, OTHER + words(a)), st.integers(AMOUNT_LIMIT + 1, 2**256 - 1)),
        st.builds(lambda v: Call(granted, v, OTHER + words(1)), st.integers(VALUE_LIMIT + 1, 2**256 - 1)),
        st.builds(lambda v: Call(stranger, v, OTHER + words(1)), value),
        st.builds(lambda v: Call(granted, v, WITH_BYTES + words(0x40, 0, 0)), st.integers(1, VALUE_LIMIT)),
        st.builds(lambda d: Call(granted, 0, d), st.binary(min_size=1, max_size=3)),
        st.builds(lambda d: Call(granted, 0, bytes(4) + d), st.binary(max_size=40)),
    )
    return st.one_of(allowed, allowed, allowed, allowed, forbidden)


def test_what_the_module_accepts_is_what_every_account_runs(
    stack: LocalStack, subjects: dict[str, Subject], targets: Targets
) -> None:
    """Generated ``execute`` callData, each tried on every kind: whatever validates runs as judged. The run
    exercises both verdicts on every kind and runs calls on each (so that its checks compare something)."""
    TALLY.clear()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not DEEP,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(layout=execute_layouts(session_calls(targets)))
    def every_kind_runs_as_judged(layout: Layout) -> None:
        verdicts = {
            subject.kind: check_runs_as_judged(stack, subject, targets, layout)
            for subject in subjects.values()
        }
        # the module judges the callData's bytes, which every account hands it unchanged
        assert len(set(verdicts.values())) == 1, (verdicts, layout)
        accepted = next(iter(verdicts.values()))
        TALLY["accepted" if accepted else "refused"] += 1
        if accepted:
            for change in layout.label.split(", ")[2:]:
                TALLY[f"accepted after {change}"] += 1

    every_kind_runs_as_judged()
    print(f"\ngenerated layouts: {dict(TALLY)}")
    assert TALLY["accepted"] >= 20 and TALLY["refused"] >= 20, TALLY
    for kind in subjects:
        assert TALLY[f"{kind} calls run"] >= 20, (kind, TALLY)


# -- layouts an account reads otherwise ----------------------------------------------------------------------

MALFORMED = keccak(b"MalformedExecution()")[:4]
UNSUPPORTED_MODE = keccak(b"UnsupportedExecutionMode(bytes32)")[:4]
UNSUPPORTED_SELECTOR = keccak(b"UnsupportedSelector(bytes4)")[:4]
SAFE7579_EXECUTION_FAILED = keccak(b"ExecutionFailed()")[:4]


def expected_refusal(layout: Layout) -> bytes:
    """The module's revert data for a chosen layout: another selector, another mode, or a non-canonical
    encoding."""
    selector, mode_word = layout.call_data[:4], layout.call_data[4:36]
    if selector != EXECUTE_SELECTOR:
        return UNSUPPORTED_SELECTOR + selector.ljust(32, b"\0")
    if mode_word[0] > 1 or mode_word[1] > 1 or any(mode_word[2:]):
        return UNSUPPORTED_MODE + mode_word
    return MALFORMED


def reaches_beyond(subject: Subject, targets: Targets, frames: list[Frame], canonical: list[Call]) -> bool:
    """Whether ``frames`` (what the account ran) include a call the grant does not allow, a call other than a
    CALL from the account, or differ from the canonical reading."""
    runs = [Call(frame.target, frame.value, frame.data) for frame in frames]
    return (
        any(frame.type != "CALL" or frame.sender != subject.account for frame in frames)
        or not all(grant_allows(targets, call) for call in runs)
        or runs != canonical
    )


def chosen_layouts(targets: Targets) -> tuple[Call, list[Layout]]:
    """The allowed call, and the chosen layouts around it and a forbidden one: ``other(7)`` on the stranger (a
    data offset moves only its data: ``other(7)`` on the granted target, a broken rule)."""
    allowed = Call(targets.granted, 1, OTHER + words(1))
    forbidden = Call(targets.stranger, 0, OTHER + words(7))
    return allowed, [*two_view_layouts(allowed, forbidden), *other_entry_points(forbidden)]


def test_layouts_with_two_readings_and_other_modes_and_entry_points_are_refused_on_every_kind(
    stack: LocalStack, subjects: dict[str, Subject], targets: Targets
) -> None:
    """Chosen layouts: two readings of one encoding (execute's bytes offset, the array offset, an element offset
    or a data offset naming bytes past the canonical ones; aliased element offsets; a dirty target word), the
    modes the module refuses (delegatecall, static call, ERC-7821's opData selectors, unused bytes, selector or
    payload set, unknown call and exec types), and the entry points that are not ``execute``. The module refuses
    each on every kind with the error that names it (Safe7579 shows its own ``ExecutionFailed``). The accounts
    themselves, run with the same bytes, follow the offsets and ignore or obey the mode: for every layout marked
    ``reaches``, every kind's own decoder makes a call the canonical reading does not (the stranger's call, a
    rule the grant breaks, a delegatecall): that is what the refusal stops."""
    allowed, layouts = chosen_layouts(targets)
    watched = {targets.granted, targets.stranger}
    reached: Counter[str] = Counter()
    for subject in subjects.values():
        for layout in layouts:
            where = f"{subject.kind}: {layout.label}"
            accepted, why = module_accepts(stack, subject, layout.call_data)
            assert not accepted, where
            expected = SAFE7579_EXECUTION_FAILED if subject.kind == "safe7579" else expected_refusal(layout)
            assert why == "0x" + expected.hex(), (where, why)
            frames = account_runs(stack, subject, layout.call_data, watched)
            if layout.reaches:
                assert reaches_beyond(subject, targets, frames, [allowed]), (where, frames)
                reached[subject.kind] += 1
    print(f"\nlayouts whose bytes make the account itself run another call, by kind: {dict(reached)}")


# -- through the bundler -----------------------------------------------------------------------------------------


def odd_but_canonical(targets: Targets, *, garbage: str = "") -> Layout:
    """A try-mode batch the module accepts: three allowed calls (one with value, one whose data has a byte after
    its ABI encoding, of odd length, a plain transfer), canonically encoded; the callData ends with
    executionCalldata's zero padding (anything else after it the module refuses, attack 182). With ``garbage``
    "padding", each element's padding holds 0xab bytes; with "after", an element follows the last call inside
    executionCalldata: both are refused (no account tried reads them, but a batch leaves no byte unjudged)."""
    calls = [
        Call(targets.granted, 1, OTHER + words(5)),
        Call(targets.granted, 0, WITH_BYTES + abi_encode(["bytes", "uint256"], [b"\xee" * 13, 9]) + b"\x01"),
        Call(targets.granted, 2, b""),
    ]
    execution = bytearray(batch_execution(calls))
    if garbage == "padding":
        for index in range(len(calls)):
            start = 64 + int.from_bytes(execution[64 + 32 * index : 96 + 32 * index], "big")
            size = int.from_bytes(execution[start + 96 : start + 128], "big")
            execution[start + 128 + size : start + 128 + size + (-size % 32)] = b"\xab" * (-size % 32)
    elif garbage == "after":
        execution += words(
            int(targets.stranger, 16), 0, 0x60, 0
        )  # an element after the last call: a transfer
    call_data = execute_call_data(mode(1, 1), bytes(execution))
    assert not any(call_data[100 + len(execution) :])
    return Layout(
        "canonical", f"odd but canonical try batch{f' with {garbage}' if garbage else ''}", call_data
    )


def signed(subject: Subject, call_data: bytes) -> UserOperation:
    """The session's operation with ``call_data``, on its lane's next nonce, with room for three calls, signed."""
    net, template = subject.net, subject.template
    op = template.replace(
        call_data=call_data,
        nonce=net.chain.get_nonce(net.entry_point, subject.account, template.nonce >> 64),
        call_gas_limit=template.call_gas_limit + 150_000,
        verification_gas_limit=template.verification_gas_limit + 100_000,
        pre_verification_gas=template.pre_verification_gas + 30_000,
    )
    return op.replace(signature=subject.key.sign_hash(net.user_op_hash(op)))


def test_through_the_bundler_refused_layouts_run_nothing_and_an_odd_canonical_batch_runs_as_judged(
    stack: LocalStack, subjects: dict[str, Subject], targets: Targets
) -> None:
    """On every kind, through Alto and the kind's EntryPoint (v0.8 for the EIP-7702 delegate): the layouts an
    account would read otherwise (execute's bytes offset, an element offset, delegatecall, ERC-7821's opData mode,
    ``executeFromExecutor``, ``executeUserOp`` wrapping ``execute``), and a batch carrying garbage in its elements'
    padding or an element after its last call, are refused in validation (AA23) and nothing reaches the stranger;
    an odd but canonical batch (try mode, value, data of odd length, a plain transfer) lands, and the granted target
    records its three calls and nothing else."""
    _allowed, layouts = chosen_layouts(targets)
    chosen = {
        "execute's bytes offset past a canonical copy (single)",
        "element offset past the canonical element",
        "delegatecall mode (0xff), target ‖ data",
        "ERC-7821 mode selector 0x78210001 with opData",
        "executeFromExecutor",
        "executeUserOp wrapping execute",
    }
    refused = [layout for layout in layouts if layout.label in chosen]
    assert len(refused) == len(chosen)
    refused += [odd_but_canonical(targets, garbage="padding"), odd_but_canonical(targets, garbage="after")]
    odd = odd_but_canonical(targets)
    for subject in subjects.values():
        net = subject.net
        recorded = view(stack, targets.granted, "calls()", [], [])

        for layout in refused:
            with pytest.raises(BundlerRejectedError) as rejected:
                net.bundler.send_user_operation(signed(subject, layout.call_data), net.entry_point)
            assert rejected.value.reason == "AA23", (subject.kind, layout.label, rejected.value)
        assert check_runs_as_judged(stack, subject, targets, odd), subject.kind
        receipt = OperationBuilder(net).send(signed(subject, odd.call_data)).wait()
        assert receipt.success, subject.kind
        assert view(stack, targets.granted, "calls()", [], []) == recorded + 3, subject.kind
    assert view(stack, targets.stranger, "calls()", [], []) == 0
