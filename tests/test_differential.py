"""The off-chain checker against the deployed SessionKeyValidator, on generated policies and operations.

A development account of a fresh anvil plays the smart account (the module is ape's build of its source, on a
node that runs it natively): the module keys its storage by ``msg.sender``, so the account enables a session
itself (``enableSession``) and ``validateUserOp`` runs as an ``eth_call`` from its address.
Operations carry a real signature by the session key over the hash passed in, in USE_WITH_KEY form (every
policy check runs, failures revert with a custom error) or USE form (no permission: SIG_VALIDATION_FAILED); a fifth
are forged: USE_WITH_KEY naming the session's key but signed by another key (a leaked key reaching for another
key's permissions), or for a co-signed session, SESSION with the co-signature or the key's signature made by
another key. The policy check runs first, so a forged operation the policy refuses reverts with the checker's
reason; one it passes must get SIG_VALIDATION_FAILED, whatever the window. One operation in sixteen (by its hash,
drawing nothing) is asked about once more with its signature malformed (cut at any byte, extended, a byte changed):
the module validates none, reading the bytes as the layout their length and first byte say (``read_as``).

Each case must agree: the checker accepts exactly when the module returns validation data with a valid
signature, that validation data is the one the checker predicts, the window the EntryPoint applies to it
accepts ``now`` exactly when the checker does (and the window EntryPoint v0.8 applies, when a checker made for v0.8
does), and when both refuse, the module's custom error is the
checker's reason, for the same call, permission and rule (or the same cost and cap). The SDK's other readers of
callData agree too: ``decode_execute`` (which the co-signer service and the sponsor policy judge operations by)
takes apart exactly the callData whose encoding the module accepts, and the checker's verdict on the calls it finds
(``check_calls``) is its verdict on the whole operation, but for the gas cost, which only the operation carries.

The inputs cover what a target could read otherwise than the module judges it: rules typed with every kind of
ABI type (uintN, intN, bytesN, bool, address, the 256-bit word) under every condition, with calldata words
that are dirty for their type; calldata starting with the zero selector and carrying a payload; and operations
with gas fields around the session's cap, with and without a paymaster (listed by the session as uncapped, or
not) and its two gas limits; and initCodes: none, a factory's, the EIP-7702 marker bare or followed by an init
call.

``KEYSCOPE_FUZZ=deep`` runs many more examples than the default ("ci").
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.checker import CallRefusedError, CheckResult, InitCallRefusedError, PolicyChecker
from keyscope.erc1271 import co_sign_digest
from keyscope.errors import (
    GasCostTooHighError,
    SessionExpiredError,
    SessionNotYetValidError,
    SessionRevokedError,
)
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute
from keyscope.hashing import EIP7702_INIT_CODE
from keyscope.hexutil import keccak, to_address
from keyscope.policy import Policy, arg, parse_signature
from keyscope.revert import decode_revert
from keyscope.session import (
    GWEI,
    MAX_RULE_WORDS,
    MODE_AT,
    MODE_ENABLE,
    MODE_SESSION,
    MODE_USE_WITH_KEY,
    SIGNED,
    ArgType,
    Condition,
    Permission,
    Rule,
    Session,
    arg_type_of,
    encode_session_signature,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import EIP7702_FACTORY, UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.fuzz import DEEP, FUZZ, ON_CHAIN
from support.malformed import malform
from support.raw_call import revert_bytes
from support.smuggling import smuggling_encodings

CASES = 40
"""Operations checked against each enabled session (plus REVOKED_CASES after revoking it)."""
REVOKED_CASES = 3
EXAMPLES = {  # sessions per test; ci: (70 + 30 + 30) * 40 = 5200 operations, plus 390 after revocation
    "raw": 1500 if DEEP else 70,
    "builder": 600 if DEEP else 30,
    "encoding": 600 if DEEP else 30,
    "co-signed": 200 if DEEP else 10,
}
TALLY: Counter[str] = Counter()
TIMES: Counter[str] = Counter()
T = TypeVar("T")
Signing = Literal["USE", "USE_WITH_KEY", "FORGED"]
"""How a case's operation is signed: USE, USE_WITH_KEY, or forged (see the module docstring)."""
SIGNINGS: tuple[Signing, ...] = ("USE", "USE_WITH_KEY", "USE_WITH_KEY", "USE_WITH_KEY", "FORGED")
BY_KEY_AND_USE: tuple[Signing, ...] = ("USE_WITH_KEY", "USE")
SIG_VALIDATION_FAILED = 1
MALFORMED_ONE_IN = 16
"""One operation in this many (by its hash) is asked about once more with its signature malformed."""


U256 = 2**256 - 1
T0 = 1_700_000_000
VALIDATE_SELECTOR = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
)[:4]
PACKED_OP = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"
EXECUTE_REVERTS = {"UnsupportedSelector", "UnsupportedExecutionMode", "MalformedExecution", "EmptyBatch"}
PAYMASTERS = tuple(to_address(keccak(f"keyscope paymaster {i}".encode())[12:]) for i in range(3))
ARG_TYPES = (
    ArgType.WORD, ArgType.INT256, ArgType.BYTES32, ArgType.ADDRESS, ArgType.BOOL, ArgType.UINT8,
    ArgType.uint_of(16), ArgType.uint_of(248), ArgType.int_of(8), ArgType.int_of(64), ArgType.int_of(248),
    ArgType.bytes_of(1), ArgType.bytes_of(4), ArgType.bytes_of(31),
)  # fmt: skip
"""Every kind of argument type, at its narrowest, widest and typical sizes."""

TARGETS = tuple(to_address(keccak(f"keyscope target {i}".encode())[12:]) for i in range(3))
SELECTORS = (bytes.fromhex("a9059cbb"), bytes.fromhex("12345678"), bytes(4), bytes.fromhex("ffffffff"))
SPECIAL_WORDS = sorted(
    {0, 1, 2, 255, 2**160 - 1, 2**160, 2**223 - 1, 2**223, 2**224 - 1, 2**224, 2**255 - 1, 2**255}
    | {2**255 + 1, 2**256 - 2**223 - 1, 2**256 - 2**223, 2**256 - 2**223 + 1, U256 - 1, U256}
)
VALUE_LIMITS = (0, 1, 10**18, 2**96 - 2, 2**96 - 1, 2**96, 2**200, U256)

_keys = itertools.count()


def fresh_key() -> LocalSigner:
    """A new session key per example: the module refuses to grant a live (key, target, selector) twice."""
    return LocalSigner(keccak(b"keyscope differential key %d" % next(_keys)))


STRANGER = LocalSigner(keccak(b"keyscope differential stranger"))
"""The key that signs forged operations: it holds no session on the account."""


# --------------------------------------------------------------------------------------------------
# The module, through eth_call
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleOutcome:
    """What ``validateUserOp`` did: returned ``data``, or reverted with ``error`` (name, arguments)."""

    data: int | None = None
    error: tuple[str, dict[str, Any]] | None = None
    raw: bytes = b""


class Probe:
    """Runs ``validateUserOp`` as the account (a development account of the file's anvil) with a session key's
    real signature."""

    def __init__(self, module: AnvilContract, account: str, chain: AnvilChain) -> None:
        self.module = module
        self.address = account
        self.chain_id = chain.chain_id
        self._chain = chain

    def enable(self, session: Session) -> bytes:
        self._chain.send(
            self.address, self.module.address, self.module.enableSession.encode_input(session.as_abi())
        )
        return session.session_id(self.address, int(self.module.epochOf(self.address)))

    def revoke(self, session_id: bytes) -> None:
        self._chain.send(
            self.address, self.module.address, self.module.revokeSession.encode_input(session_id)
        )

    def signature(
        self,
        key: LocalSigner,
        *,
        with_key: bool,
        op_hash: bytes,
        co_signed: tuple[bytes, LocalSigner] | None = None,
        forged: bool = False,
    ) -> bytes:
        """``key``'s signature of ``op_hash`` in USE, USE_WITH_KEY, or for a co-signed session (``co_signed``: its id
        and co-signer) SESSION with both signatures. ``forged``: the key's signature (or, for a co-signed session, by
        the hash's first bit, the co-signature instead) is made by STRANGER."""
        stranger_co_signs = forged and co_signed is not None and op_hash[0] & 1 == 1
        signature = (STRANGER if forged and not stranger_co_signs else key).sign_hash(op_hash)
        if co_signed is not None:
            session_id, co_signer = co_signed
            co_signer = STRANGER if stranger_co_signs else co_signer
            digest = co_sign_digest(session_id, op_hash, chain_id=self.chain_id, module=self.module.address)
            return encode_session_signature(session_id, signature, co_signer.sign_hash(digest))
        if with_key:
            return encode_use_with_key_signature(key.address, signature)
        return signature

    def validate(
        self,
        op: UserOperation,
        key: LocalSigner,
        *,
        with_key: bool,
        op_hash: bytes,
        co_signed: tuple[bytes, LocalSigner] | None = None,
        forged: bool = False,
    ) -> ModuleOutcome:
        """The module's answer to ``op`` signed by ``key`` (see :meth:`signature`)."""
        signature = self.signature(
            key, with_key=with_key, op_hash=op_hash, co_signed=co_signed, forged=forged
        )
        return self.answer(op.replace(signature=signature), op_hash)

    def answer(self, op: UserOperation, op_hash: bytes) -> ModuleOutcome:
        """The module's answer to ``op`` as it is signed, its hash ``op_hash``."""
        packed = packed_tuple(op)
        data = VALIDATE_SELECTOR + abi_encode([PACKED_OP, "bytes32"], [packed, op_hash])
        tx = {"from": self.address, "to": self.module.address, "data": "0x" + data.hex(), "gas": 30_000_000}
        try:
            result = self._chain.call(tx)
        except Exception as error:
            raw = revert_bytes(error)
            decoded = decode_revert(raw)
            return ModuleOutcome(error=decoded, raw=raw)
        output = bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result)
        return ModuleOutcome(data=int.from_bytes(output, "big"))


def packed_tuple(op: UserOperation) -> tuple[Any, ...]:
    """``op`` as the EntryPoint passes it; an EIP-7702 init call (factory 0x7702 with factoryData), which the SDK
    refuses to pack, is laid out as EntryPoint v0.8 reads it: the 20-byte marker, then the data."""
    if op.factory != EIP7702_FACTORY or not op.factory_data:
        return op.pack().as_tuple()
    fields = list(op.replace(factory=None, factory_data=b"").pack().as_tuple())
    fields[2] = EIP7702_INIT_CODE.ljust(20, b"\0") + op.factory_data
    return tuple(fields)


@pytest.fixture(scope="module")
def probe(project):
    with anvil_chain() as chain:
        yield Probe(chain.deploy(project.SessionKeyValidator), chain.accounts[8], chain)


FUZZ_TESTS = {
    "test_co_signed_sessions_agree_with_the_module",
    "test_raw_rules_agree_with_the_module",
    "test_non_canonical_encodings_agree_with_the_module",
    "test_builder_policies_agree_with_the_module",
}
MIN_OPERATIONS = 5000
"""The least number of operations the three generated tests compare in one run of this module (CI profile)."""


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print what the run checked (shown with ``-s``): operations, and verdicts per category and moment.
    When the whole module ran and passed, check that it compared at least MIN_OPERATIONS operations."""
    started = time.perf_counter()
    failed_before = request.session.testsfailed
    yield
    elapsed = time.perf_counter() - started
    operations = TALLY["operations"]
    ran = {item.name for item in request.session.items if item.module is request.module}
    whole = ran >= FUZZ_TESTS and request.session.testsfailed == failed_before
    print(f"\ndifferential ({FUZZ}): {operations} operations in {elapsed:.1f}s", end="")
    if operations:
        print(f" ({1000 * elapsed / operations:.1f} ms each)", end="")
    print("; " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items()))
    print("verdicts:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common() if k != "operations"))
    if whole:
        assert operations >= MIN_OPERATIONS, f"the generated tests compared only {operations} operations"


def entry_point_in_window(validation_data: int, now: int) -> bool:
    """EntryPoint v0.7 (Helpers._parseValidationData, EntryPoint._getValidationData): validUntil 0 means
    type(uint48).max, and the operation is out of range when ``now > validUntil || now < validAfter``."""
    valid_until = (validation_data >> 160) & (2**48 - 1) or 2**48 - 1
    valid_after = (validation_data >> 208) & (2**48 - 1)
    return not (now > valid_until or now < valid_after)


# --------------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------------


REFUSALS = (
    InitCallRefusedError,
    ExecuteDecodeError,
    CallRefusedError,
    GasCostTooHighError,
    SessionRevokedError,
    SessionExpiredError,
    SessionNotYetValidError,
)


@dataclass(frozen=True)
class Case:
    """One operation checked both ways; its text (built only when an assertion fails) says everything."""

    session: Session
    op: UserOperation
    with_key: bool
    revoked: bool
    now: int
    verdict: CheckResult | Exception
    module: ModuleOutcome
    forged: bool = False

    def __str__(self) -> str:
        signing = "forged" if self.forged else "USE_WITH_KEY" if self.with_key else "USE"
        return (
            f"checker and module disagree\nsession: {self.session!r}\ncallData: 0x{self.op.call_data.hex()}\n"
            f"gas: {self.op.model_dump(exclude={'call_data', 'signature', 'sender', 'nonce'})}\n"
            f"signature: {signing}, revoked: {self.revoked}, now: {self.now}\n"
            f"checker: {self.verdict!r}\nmodule: {self.module}"
        )


def assert_agree(case: Case) -> str:
    """Assert the checker's verdict and the module's agree; returns the verdict's category."""
    verdict, module = case.verdict, case.module
    name = module.error[0] if module.error else None
    args = module.error[1] if module.error else {}
    if isinstance(verdict, InitCallRefusedError):
        assert name == "InitCallNotJudged" and args["initCallLength"] == verdict.length, case
        return "InitCallNotJudged"
    if isinstance(verdict, ExecuteDecodeError):
        assert name in EXECUTE_REVERTS, case
        return "malformed execute"
    if isinstance(verdict, SessionRevokedError):
        if case.with_key:
            assert name == "NoPermission", case
        else:
            assert module.data == 1, case
        return "revoked"
    if isinstance(verdict, CallRefusedError):
        if verdict.reason == "NoPermission" and not case.with_key:
            assert module.data == 1, case  # USE: an unknown permission may be a wrong signature
            return "NoPermission (USE)"
        assert name == verdict.reason, case
        assert args["callIndex"] == verdict.call_index, case
        if "permissionIndex" in args:
            assert args["permissionIndex"] == verdict.permission_index, case
        if "ruleIndex" in args:
            assert args["ruleIndex"] == verdict.rule_index, case
        if name in ("RuleViolated", "NonCanonicalArgument"):
            assert int.from_bytes(args["actual"], "big") == verdict.actual, case
        return verdict.reason
    if isinstance(verdict, GasCostTooHighError):
        assert name == "GasCostTooHigh", case
        assert (args["cost"], args["limit"]) == (verdict.cost, verdict.limit), case
        return "GasCostTooHigh"
    assert module.error is None and module.data is not None, case
    if case.forged:  # the policy passed: the signature is checked last, and fails whatever the window
        assert module.data == SIG_VALIDATION_FAILED, case
        return "forged signature"
    assert module.data & (2**160 - 1) == 0, case  # the signature is real: never SIG_VALIDATION_FAILED here
    if isinstance(verdict, (SessionExpiredError, SessionNotYetValidError)):
        assert not entry_point_in_window(module.data, case.now), case
        return "outside window"
    assert isinstance(verdict, CheckResult), case
    assert module.data == verdict.validation_data, case
    assert entry_point_in_window(module.data, case.now), case
    return "accepted"


def entry_point_v08_in_window(validation_data: int, now: int) -> bool:
    """EntryPoint v0.8 (EntryPoint._getValidationData): as v0.7, but the operation is out of range when
    ``now > validUntil || now <= validAfter``: the window opens the second after validAfter."""
    valid_until = (validation_data >> 160) & (2**48 - 1) or 2**48 - 1
    valid_after = (validation_data >> 208) & (2**48 - 1)
    return not (now > valid_until or now <= valid_after)


def assert_agree_v08(case: Case, category: str) -> None:
    """A checker for EntryPoint v0.8 (``opens_after``) refuses the calls the v0.7 one refuses, for the same reason,
    and when the module accepts the policy, accepts ``now`` exactly when v0.8's window does."""
    verdict, module = case.verdict, case.module
    if category not in ("accepted", "outside window"):
        assert not isinstance(verdict, (CheckResult, SessionExpiredError, SessionNotYetValidError)), case
        return
    assert module.data is not None, case
    if entry_point_v08_in_window(module.data, case.now):
        assert isinstance(verdict, CheckResult) and verdict.validation_data == module.data, case
    else:
        assert isinstance(verdict, (SessionExpiredError, SessionNotYetValidError)), case


def decoded_calls(case: Case) -> tuple[Call, ...] | None:
    """The calls ``decode_execute`` finds in the case's callData (None: it refuses it), which must be callData whose
    encoding the module accepts: a refusal of the module's encoding checks is one of decode_execute's, and callData
    decode_execute refuses is refused by the module (its encoding, or a call before the fault)."""
    name = case.module.error[0] if case.module.error else None
    try:
        calls = decode_execute(case.op.call_data).calls
    except ExecuteDecodeError:
        assert name is not None or case.module.data == SIG_VALIDATION_FAILED, case
        return None
    assert name not in EXECUTE_REVERTS, case
    return calls


def assert_calls_agree(checker: PolicyChecker, case: Case, calls: tuple[Call, ...]) -> None:
    """``check_calls`` on the calls ``decode_execute`` found judges them as ``check_operation`` judged the whole
    operation (``case.verdict``): the same refusal (reason, call, permission, rule) or the same validation data; where
    the operation's gas cost was refused, the calls pass the policy (only an operation carries a gas cost)."""
    verdict = case.verdict
    if isinstance(verdict, InitCallRefusedError):  # the calls carry no initCode
        return
    try:
        judged: CheckResult | Exception = checker.check_calls(calls, now=case.now, revoked=case.revoked)
    except REFUSALS as error:
        judged = error
    if isinstance(verdict, GasCostTooHighError):
        assert isinstance(judged, (CheckResult, SessionExpiredError, SessionNotYetValidError)), (case, judged)
        return
    assert type(judged) is type(verdict), (case, judged)
    if isinstance(verdict, CheckResult):
        assert isinstance(judged, CheckResult) and judged.validation_data == verdict.validation_data, (
            case,
            judged,
        )
    if isinstance(verdict, CallRefusedError):
        assert isinstance(judged, CallRefusedError), (case, judged)
        terms = ("reason", "call_index", "permission_index", "rule_index", "actual")
        assert [getattr(judged, t) for t in terms] == [getattr(verdict, t) for t in terms], (case, judged)


def window_probes(session: Session) -> list[int]:
    """Moments around the session's window ends, where the EntryPoint's inequalities matter."""
    moments = {0, T0, 2**48 - 1}
    for end in (session.valid_after, session.valid_until):
        if end:
            moments |= {end - 1, end, end + 1}
    return sorted(m for m in moments if m >= 0)


def run_case(
    probe: Probe,
    checker: PolicyChecker,
    key: LocalSigner,
    op: UserOperation,
    signing: Signing,
    revoked: bool,
    co_signer: LocalSigner | None = None,
):
    """One operation: the module once, the checker at every moment around the window's ends. A co-signed
    session's operations go in SESSION mode, which names the session: every refusal reverts, as with a key."""
    started = time.perf_counter()
    op_hash = keccak(op.call_data + key.private_key)
    assert checker.session_id is not None
    co_signed = None if co_signer is None else (bytes.fromhex(checker.session_id[2:]), co_signer)
    with_key = signing != "USE" or co_signer is not None
    forged = signing == "FORGED"
    module = probe.validate(op, key, with_key=with_key, op_hash=op_hash, co_signed=co_signed, forged=forged)
    if op_hash[1] % MALFORMED_ONE_IN == 0:
        signature = probe.signature(
            key, with_key=with_key, op_hash=op_hash, co_signed=co_signed, forged=forged
        )
        judge_malformed(probe, op, op_hash, signature, module)
    TIMES["eth_call"] += time.perf_counter() - started
    policy = "?"
    v08 = PolicyChecker(
        checker.session, checker.account, checker.module, session_id=checker.session_id, opens_after=True
    )
    calls: tuple[Call, ...] | None = ()
    for now in window_probes(checker.session):
        try:
            verdict: CheckResult | Exception = checker.check_operation(op, now=now, revoked=revoked)
        except REFUSALS as error:
            verdict = error
        case = Case(checker.session, op, with_key, revoked, now, verdict, module, forged)
        category = assert_agree(case)
        if calls == ():  # once per operation: the first moment
            calls = decoded_calls(case)
            if calls is not None:
                assert_calls_agree(checker, case, calls)
        if category == "forged signature":  # no window to compare
            policy = category
            continue
        try:
            verdict_v08: CheckResult | Exception = v08.check_operation(op, now=now, revoked=revoked)
        except REFUSALS as error:
            verdict_v08 = error
        assert_agree_v08(Case(checker.session, op, with_key, revoked, now, verdict_v08, module), category)
        if category in ("accepted", "outside window"):
            TALLY[f"window: {category}"] += 1
            category = "passes the policy"
        policy = category
    TALLY[policy] += 1
    TALLY["operations"] += 1


def read_as(signature: bytes) -> str:
    """The layout the module reads ``signature`` as (``validateUserOp``): a MODE_AT prefix stripped, USE for any
    65 bytes, USE_WITH_KEY for 86 bytes after 0x02, ENABLE for 2 bytes or more after 0x01, SESSION for 98 or 163
    after 0x04; "none" otherwise (SIG_VALIDATION_FAILED, no revert)."""
    if len(signature) != 65 and len(signature) > 7 and signature[0] == MODE_AT:
        signature = signature[7:]
    if len(signature) == 65:
        return "USE"
    if len(signature) == 86 and signature[0] == MODE_USE_WITH_KEY:
        return "USE_WITH_KEY"
    if len(signature) > 1 and signature[0] == MODE_ENABLE:
        return "ENABLE"
    if len(signature) in (98, 163) and signature[0] == MODE_SESSION:
        return "SESSION"
    return "none"


def judge_malformed(
    probe: Probe, op: UserOperation, op_hash: bytes, signature: bytes, canonical: ModuleOutcome
) -> None:
    """``op`` signed with ``signature`` malformed (cut, extended, a byte changed: ``support.malformed``, picked by the
    hash): the module never validates it. It reads the bytes as the layout their length and first byte say
    (:func:`read_as`): none, SIG_VALIDATION_FAILED; ENABLE, a revert (ENABLE data these bytes are not); USE, USE_WITH_KEY
    or SESSION, SIG_VALIDATION_FAILED or the revert of the well-formed operation (``canonical``: its callData and gas
    are refused whoever signs), or NoPermission (the key or session the bytes now name holds nothing)."""
    malformed, how = malform(signature, keccak(op_hash + b"malformed"))
    layout = read_as(malformed)
    outcome = probe.answer(op.replace(signature=malformed), op_hash)
    name = outcome.error[0] if outcome.error else None
    verdict = "SIG_VALIDATION_FAILED" if outcome.data == SIG_VALIDATION_FAILED else name or f"{outcome}"
    TALLY[f"malformed signature ({layout}): {verdict}"] += 1
    context = f"a signature {how}, read as {layout}: the module says {outcome} (well-formed: {canonical})"
    assert outcome.data is None or outcome.data & (2**160 - 1) == SIG_VALIDATION_FAILED, context
    if layout == "none":
        assert outcome.data == SIG_VALIDATION_FAILED, context
    elif layout == "ENABLE":
        assert outcome.data is None, context
    elif outcome.data is None:
        assert name == "NoPermission" or outcome.raw == canonical.raw, context


def run_session(
    probe: Probe,
    session: Session,
    key: LocalSigner,
    cases: list[tuple[UserOperation, Signing]],
    co_signer: LocalSigner | None = None,
) -> None:
    """Enable ``session`` (co-signed by ``co_signer`` when given), check every case, revoke it and check the first
    few again."""
    started = time.perf_counter()
    session_id = probe.enable(session)
    TIMES["transactions"] += time.perf_counter() - started
    try:
        checker = PolicyChecker(session, probe.address, probe.module.address, session_id=session_id)
        for op, signing in cases:
            run_case(probe, checker, key, op, signing, revoked=False, co_signer=co_signer)
    finally:
        started = time.perf_counter()
        probe.revoke(session_id)
        TIMES["transactions"] += time.perf_counter() - started
    for op, signing in cases[:REVOKED_CASES]:
        run_case(probe, checker, key, op, signing, revoked=True, co_signer=co_signer)


# --------------------------------------------------------------------------------------------------
# Strategies: policies
# --------------------------------------------------------------------------------------------------

words = st.one_of(st.sampled_from(SPECIAL_WORDS), st.integers(0, U256), st.integers(0, 2**16))


def pick(draw: st.DrawFn, options: Sequence[T]) -> T:
    """One of ``options``, shrinking towards the first: ``sampled_from`` without building (and having hypothesis
    validate) a new strategy at every draw, which the generators below do thousands of times per run."""
    return options[draw(st.integers(0, len(options) - 1))]


def _signed(word: int) -> int:
    return word - 2**256 if word >> 255 else word


def _bits(arg_type: int) -> int:
    """The value bits of ``arg_type`` (the whole word for bytesN: its bytes are the high ones)."""
    return 256 - 8 * (arg_type & 0x1F)


@functools.cache
def typed_words(arg_type: int) -> st.SearchStrategy[int]:
    """Canonical words of ``arg_type``: its ends, zero, one, and anything in range (one strategy object per type,
    so that hypothesis validates it once, not at every draw)."""
    kind, padding = arg_type >> 5, arg_type & 0x1F
    if arg_type == ArgType.BOOL:
        return st.sampled_from([0, 1])
    if arg_type in (ArgType.WORD, ArgType.BYTES32):
        return words
    bits = _bits(arg_type)
    if kind == 0:
        return st.one_of(st.sampled_from([0, 1, 2**bits - 2, 2**bits - 1]), st.integers(0, 2**bits - 1))
    if kind == 1:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        values = st.one_of(st.sampled_from([low, low + 1, -1, 0, 1, high - 1, high]), st.integers(low, high))
        return values.map(lambda v: v % 2**256)
    unit = 1 << (8 * padding)
    return st.one_of(st.sampled_from([0, 1, 2 ** (bits - 1), 2**bits - 1]), st.integers(0, 2**bits - 1)).map(
        lambda v: v * unit
    )


def dirty(word: int, arg_type: int, bit: int) -> int:
    """``word`` with one bit the type leaves out flipped: never canonical for a restricting ``arg_type``
    (``bit`` picks which, modulo the bits the type leaves out)."""
    if arg_type == ArgType.BOOL:
        return word ^ (1 << (1 + bit % 255))
    padding = arg_type & 0x1F
    if arg_type >> 5 == 2:  # bytesN: the low bytes
        return word ^ (1 << (bit % (8 * padding)))
    bits = _bits(arg_type)  # uintN and intN: the high bytes (for intN, any of them breaks the sign extension)
    return word ^ (1 << (bits + bit % (256 - bits)))


@st.composite
def raw_rules(draw: st.DrawFn) -> Rule:
    op = draw(st.sampled_from(list(Condition)))
    arg_type = draw(st.sampled_from(ARG_TYPES))
    # the shorthand form of a signed 256-bit rule, as older callers write it
    shorthand = arg_type == ArgType.INT256 and draw(st.booleans())
    if draw(st.integers(0, 15)) == 0:
        offset = draw(st.sampled_from([1000, 0xFFFF - 35, 0xFFFF]))
    else:
        offset = draw(st.one_of(st.sampled_from([0, 4, 32, 64, 96]), st.integers(0, 160)))
    values_of = typed_words(arg_type)
    if op == Condition.IN_RANGE:
        order = _signed if ArgType.is_signed(arg_type) else int
        values: tuple[int, ...] = tuple(sorted(draw(st.tuples(values_of, values_of)), key=order))
    elif op == Condition.ONE_OF:
        values = tuple(draw(st.lists(values_of, min_size=1, max_size=5)))
    else:
        values = (draw(values_of),)
    if shorthand:
        return Rule(condition=int(op) | SIGNED, offset=offset, values=values)
    return Rule(condition=int(op), offset=offset, arg_type=arg_type, values=values)


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int]:
    moment = st.one_of(st.sampled_from([1, T0, 2**48 - 2]), st.integers(1, 2**48 - 2))
    shape = draw(st.sampled_from(["open", "from", "until", "both"]))
    if shape == "open":
        return 0, 0
    if shape == "from":  # up to the 48-bit maximum itself: no end then reads as that same second
        return draw(st.one_of(moment, st.just(2**48 - 1))), 0
    if shape == "until":
        return 0, draw(moment)
    start = draw(moment)
    return start, draw(
        st.integers(start + 1, min(2**48 - 1, start + draw(st.sampled_from([1, 2, 3600, 2**48]))))
    )


@st.composite
def raw_sessions(draw: st.DrawFn, key: str) -> Session:
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(TARGETS), st.sampled_from(SELECTORS)),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    max_gas_cost, paymasters = draw(gas_caps())
    room = MAX_RULE_WORDS - (len(paymasters) if max_gas_cost else 0)
    permissions = []
    for target, selector in pairs:
        rules: list[Rule] = []
        for rule in draw(st.lists(raw_rules(), max_size=0 if selector == bytes(4) else 4)):
            candidate = Permission(target=target, selector=selector, rules=(*rules, rule))
            if candidate.rule_words() <= room:
                rules.append(rule)
        limit = draw(st.one_of(st.sampled_from(VALUE_LIMITS), st.integers(0, U256)))
        permissions.append(
            Permission(target=target, selector=selector, value_limit=limit, rules=tuple(rules))
        )
    valid_after, valid_until = draw(windows())
    return Session(
        session_key=key,
        valid_after=valid_after,
        valid_until=valid_until,
        max_gas_cost=max_gas_cost,
        paymasters=paymasters,
        salt=draw(st.integers(0, 3)),
        permissions=tuple(permissions),
    )


@st.composite
def gas_caps(draw: st.DrawFn) -> tuple[int, tuple[str, ...]]:
    """A session's maxGasCost (none, whole gwei, or with a sub-gwei remainder the module drops) and the
    paymasters it lets go uncapped."""
    cap = draw(st.sampled_from([0, GWEI, 10**15 + 7, 10**16, 2**40 * GWEI, U256]))
    paymasters = tuple(draw(st.lists(st.sampled_from(PAYMASTERS[:2]), max_size=2, unique=True)))
    return cap, paymasters


# --------------------------------------------------------------------------------------------------
# Strategies: operations
# --------------------------------------------------------------------------------------------------


def near_word(draw: st.DrawFn, rule: Rule, honest: bool, dirty_word: bool = False) -> int:
    """A word at, just below or just above one of the rule's reference values (or anything); ``honest``
    prefers one that satisfies the rule (the module decides whether it does); ``dirty_word`` makes it a word
    that is not canonical for the rule's type, when the type has any."""
    candidates = [(v + d) % 2**256 for v in rule.values for d in (-1, 0, 1)]
    if dirty_word and ArgType.restricts(rule.arg_type):
        base = pick(draw, rule.values) if draw(st.booleans()) else draw(typed_words(rule.arg_type))
        return dirty(base, rule.arg_type, draw(st.integers(0, 255)))
    if honest:
        satisfying = [w for w in [*candidates, draw(typed_words(rule.arg_type))] if rule.holds(w)]
        if satisfying:
            return pick(draw, satisfying)
    if draw(st.integers(0, 4)) == 0:
        return draw(words) if draw(st.booleans()) else draw(typed_words(rule.arg_type))
    return pick(draw, candidates)


FAULTS = (
    "none", "none", "selector", "target", "forbidden", "tiny", "empty", "zero selector", "value", "rules",
    "dirty", "dirty", "cut", "edge", "extend", "chaos",
)  # fmt: skip


ANY_SELECTOR = st.one_of(st.sampled_from(SELECTORS), st.binary(min_size=4, max_size=4))
ANY_TARGET = st.one_of(st.sampled_from(TARGETS), st.binary(min_size=20, max_size=20).map(to_address))
ZERO_SELECTOR_PAYLOADS = st.one_of(st.just(b""), st.binary(max_size=68), st.just(None))
"""After the zero selector: nothing, any bytes, or (None) the call's own arguments."""


def calls_for(draw: st.DrawFn, session: Session, account: str, module: str, fault: str) -> Call:
    """A call for one of the session's permissions that aims to be allowed, but for ``fault``: another
    selector or target, a forbidden target, 1-3 or 0 bytes of calldata, the zero selector followed by a
    payload, a value around the limit, argument words around the rules' references, words that are dirty for
    their rule's type, calldata cut anywhere or around the end of a rule's word, trailing bytes, or all of
    these at random ("chaos")."""
    chaos = fault == "chaos"
    permission = pick(draw, session.permissions)
    target, selector = permission.target, permission.selector
    if fault == "selector" or (chaos and draw(st.booleans())):
        selector = draw(ANY_SELECTOR)
    if fault == "target" or (chaos and draw(st.booleans())):
        target = draw(ANY_TARGET)
    if fault == "forbidden":
        target = pick(draw, (account, module))
    end = max((rule.offset + 32 for rule in permission.rules if rule.offset <= 1000), default=0)
    arguments = bytearray(end + pick(draw, (0, 0, 32, 5)))
    for rule in permission.rules:
        if rule.offset <= 1000:
            word = near_word(
                draw,
                rule,
                honest=fault not in ("rules", "chaos"),
                dirty_word=(fault == "dirty" and draw(st.booleans())) or (chaos and draw(st.booleans())),
            )
            arguments[rule.offset : rule.offset + 32] = word.to_bytes(32, "big")
    data = selector + bytes(arguments)
    if fault == "empty" or (selector == bytes(4) and not permission.rules and draw(st.booleans())):
        data = b""
    elif fault == "zero selector":
        payload = draw(ZERO_SELECTOR_PAYLOADS)
        data = bytes(4) + (bytes(arguments) if payload is None else payload)
    elif fault == "tiny":
        data = draw(st.binary(min_size=1, max_size=3))
    elif fault == "cut" or (chaos and draw(st.booleans())):
        data = data[: draw(st.integers(0, len(data)))]
    elif fault == "edge" and permission.rules:  # around the end of a rule's word
        end = pick(draw, permission.rules).offset + 36 + pick(draw, (-1, 0, 1))
        data = data[:end] + bytes(max(0, end - len(data)))
    elif fault == "extend" or (chaos and draw(st.booleans())):
        data += draw(st.binary(min_size=1, max_size=40))
    limit = permission.value_limit
    if fault in ("value", "chaos"):
        value = pick(draw, (0, limit, max(limit - 1, 0), min(limit + 1, U256), 2**96 - 1, 2**96, -1))
        if value < 0:
            value = draw(st.integers(0, U256))
    else:
        value = pick(draw, (0, min(limit, 2**96 - 1)))
    return Call.of(target, value, data)


def _word(data: bytearray, position: int) -> int:
    return int.from_bytes(data[position : position + 32], "big")


def mutations(draw: st.DrawFn, call_data: bytes, batch: bool, count: int) -> bytes:
    """``call_data`` (a canonical execute) with one structural change: a different head word, a truncation,
    trailing bytes, a flipped byte, executionCalldata cut short with its length word saying so (a single execution
    under its 52-byte head; a batch whose offsets or a call's head run past its end), or (batch) a changed array
    offset, count, element offset, target word (dirty bits), data offset, data length or padding byte."""
    data = bytearray(call_data)

    def tweak(value: int) -> int:
        return pick(draw, (value - 32, value + 32, value - 1, value + 1, 0, U256, value + 2**255)) % 2**256

    def put(position: int, value: int) -> None:
        if position + 32 <= len(data):
            data[position : position + 32] = value.to_bytes(32, "big")

    kinds = ["selector", "mode", "execution offset", "length", "truncate", "append", "flip"]
    if batch:
        kinds += ["array offset", "count", "element offset", "dirty target", "data offset", "size", "padding"]
    kinds.append("shorten")
    kind = pick(draw, kinds)
    element = draw(st.integers(0, count - 1))
    start = 164 + _word(data, 164 + 32 * element) if batch else 0
    if kind == "selector":
        data[:4] = draw(st.binary(min_size=4, max_size=4))
    elif kind == "mode":
        data[4 + draw(st.sampled_from([0, 1, 1, 2, 5, 6, 9, 10, 31]))] = draw(st.sampled_from([1, 2, 0xFF]))
    elif kind == "execution offset":
        put(36, tweak(0x40))
    elif kind == "length":
        put(68, tweak(_word(data, 68)) if draw(st.booleans()) else draw(st.integers(0, len(data))))
    elif kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    elif kind == "flip":
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "array offset":
        put(100, tweak(0x20))
    elif kind == "count":
        put(132, pick(draw, (0, count - 1, count + 1, U256, 2**32)))
    elif kind == "element offset":
        put(164 + 32 * element, tweak(_word(data, 164 + 32 * element)))
    elif kind == "dirty target":
        if start + 12 <= len(data):
            data[start + pick(draw, (0, 11, draw(st.integers(0, 11))))] = draw(st.integers(1, 255))
    elif kind == "data offset":
        put(start + 64, tweak(0x60))
    elif kind == "size":
        put(start + 96, tweak(_word(data, start + 96)))
    elif kind == "shorten":
        length = draw(st.integers(0, max(0, _word(data, 68) - 1)))
        put(68, length)
        del data[100 + length :]
    elif kind == "padding":
        size = _word(data, start + 96)
        if size % 32 and start + 128 + size < len(data):
            data[start + 128 + size + draw(st.integers(0, 31 - size % 32))] = draw(st.integers(1, 255))
    return bytes(data)


init_codes = st.one_of(
    st.just((None, b"")),
    st.sampled_from(
        [
            (None, b""),
            (EIP7702_FACTORY, b""),  # an EIP-7702 account's ordinary initCode: no init call
            (EIP7702_FACTORY, b"\xb6\x1d\x27\xf6" + bytes(96)),  # an init call the module never judges
            (EIP7702_FACTORY, b"\x01"),
            ("0x7702" + "00" * 18, b"\x01"),  # the marker spelled as a 20-byte address: the same init call
            ("0x" + "f7" * 20, b"\x01\x02"),  # a factory: the account is created, nothing reaches it unjudged
        ]
    ),
)
"""initCode: mostly none; the EIP-7702 marker bare or followed by an init call; a factory with its data."""


GAS_LIMITS = st.one_of(st.sampled_from([0, 1, 21_000, 100_000]), st.integers(0, 2_000_000))
FEES = st.one_of(st.sampled_from([0, 1, GWEI, 1000 * GWEI]), st.integers(0, 2**64))


def draw_gas_fields(draw: st.DrawFn, session: Session, account: str) -> UserOperation:
    """An operation's gas fields around the session's cap (its prefund one wei-step below, at, or above the
    cap, or anywhere), with no paymaster, a paymaster the session lists, or another, and the paymaster's two
    gas limits (also without a paymaster, where nothing packs them). The callData is filled in later."""
    limit = GAS_LIMITS
    verification, call, pre_verification = draw(limit) + 1, draw(limit), draw(limit)
    paymaster = pick(draw, (None, None, *PAYMASTERS))
    # without a paymaster its gas limits are packed nowhere: drawn anyway, they must count for neither side
    pm_verification, pm_post_op = (
        (draw(limit), draw(limit)) if paymaster is not None or draw(st.booleans()) else (0, 0)
    )
    total = (
        verification
        + call
        + pre_verification
        + (pm_verification + pm_post_op if paymaster is not None else 0)
    )
    cap = session.gas_cap
    if cap and draw(st.integers(0, 3)):
        fee = max(0, cap // total + pick(draw, (-1, 0, 1, 2, 10**6)))
    else:
        fee = draw(FEES)
    factory, factory_data = draw(init_codes)
    return UserOperation(
        sender=account,
        nonce=0,
        factory=factory,
        factory_data=factory_data,
        verification_gas_limit=verification,
        call_gas_limit=call,
        pre_verification_gas=pre_verification,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=pick(draw, (0, fee)),
        paymaster=paymaster,
        paymaster_verification_gas_limit=pm_verification,
        paymaster_post_op_gas_limit=pm_post_op,
        paymaster_data=pick(draw, (b"", b"any paymaster data")) if paymaster else b"",
    )


gas_fields = st.composite(draw_gas_fields)
"""``draw_gas_fields`` as a strategy, for a labelled draw."""


@st.composite
def operations(
    draw: st.DrawFn, session: Session, account: str, module: str, mutate: float
) -> tuple[UserOperation, Signing]:
    """``(operation, how it is signed)``: one to four calls, single or batch mode, maybe mutated, with gas fields
    around the session's cap; a third of the operations aim to be allowed."""
    honest = draw(st.integers(0, 2)) == 0
    calls = [
        calls_for(draw, session, account, module, "none" if honest else pick(draw, FAULTS))
        for _ in range(draw(st.integers(1, 4)))
    ]
    batch = len(calls) > 1 or draw(st.booleans())
    call_data = encode_execute(calls, batch=batch, exec_type=draw(st.integers(0, 1)))
    if not honest and draw(st.floats(0, 1)) < mutate:
        call_data = mutations(draw, call_data, batch, len(calls))
    op = draw_gas_fields(draw, session, account).replace(call_data=call_data)
    return op, SIGNINGS[draw(st.integers(0, 4))]


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES["raw"], **ON_CHAIN)
@given(data=st.data())
def test_raw_rules_agree_with_the_module(probe, data):
    """Any rule (every condition, signed or not, inline or wide values, any offset) on calls near it."""
    key = fresh_key()
    session = data.draw(raw_sessions(key.address), label="session")
    ops = operations(session, probe.address, probe.module.address, mutate=0.15)
    cases = [data.draw(ops, label=f"case {i}") for i in range(CASES)]
    run_session(probe, session, key, cases)


@settings(max_examples=EXAMPLES["co-signed"], **ON_CHAIN)
@given(data=st.data())
def test_co_signed_sessions_agree_with_the_module(probe, data):
    """A co-signed session's operations in SESSION mode (both signatures): its permissions sit in the session's own
    space, and the policy check must judge them as the checker does."""
    key, co_signer = fresh_key(), fresh_key()
    session = data.draw(raw_sessions(key.address), label="session").model_copy(
        update={"co_signer": co_signer.address}
    )
    ops = operations(session, probe.address, probe.module.address, mutate=0.15)
    cases = [data.draw(ops, label=f"case {i}") for i in range(CASES)]
    run_session(probe, session, key, cases, co_signer=co_signer)


@settings(max_examples=EXAMPLES["encoding"], **ON_CHAIN)
@given(data=st.data())
def test_non_canonical_encodings_agree_with_the_module(probe, data):
    """Mostly mutated execute encodings: truncations, odd offsets, dirty bits, trailing bytes."""
    key = fresh_key()
    session = data.draw(raw_sessions(key.address), label="session")
    ops = operations(session, probe.address, probe.module.address, mutate=0.9)
    cases = [data.draw(ops, label=f"case {i}") for i in range(CASES)]
    run_session(probe, session, key, cases)


TRADE_TEXT = (
    "trade(address token,uint256 amount,int64 delta,bytes4 tag,bool flag,(uint8 kind,int128 level) spec,"
    "uint16[2] pair,bytes memo)"
)
TRADE = parse_signature(TRADE_TEXT)
TRADE_TYPES = [p.type.name for p in TRADE.inputs]
PATHS: dict[tuple[str | int, ...], str] = {
    ("token",): "address",
    ("amount",): "uint256",
    ("delta",): "int64",
    ("tag",): "bytes4",
    ("flag",): "bool",
    ("spec", "kind"): "uint8",
    ("spec", "level"): "int128",
    ("pair", 0): "uint16",
    ("pair", 1): "uint16",
}


def typed_values(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return st.sampled_from(TARGETS)
    if kind == "bool":
        return st.booleans()
    if kind == "bytes4":
        return st.one_of(
            st.sampled_from([bytes(4), b"\xff" * 4, b"\x80\x00\x00\x00"]), st.binary(min_size=4, max_size=4)
        )
    bits = int(kind.removeprefix("u").removeprefix("int"))
    low, high = (0, 2**bits - 1) if kind.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.one_of(st.sampled_from([low, low + 1, 0, 1, high - 1, high]), st.integers(low, high))


def _order(kind: str, value: Any) -> int:
    """The order IN_RANGE compares values of ``kind`` in (signed for intN, as words otherwise)."""
    if kind == "address":
        return int(value, 16)
    if kind == "bytes4":
        return int.from_bytes(value, "big")
    return int(value)


def _step(kind: str, value: Any, delta: int) -> Any:
    """``value`` moved by ``delta`` within its type (addresses and bytes stay, bools flip)."""
    if kind == "bool":
        return value if delta == 0 else not value
    if kind in ("address", "bytes4"):
        return value
    bits = int(kind.removeprefix("u").removeprefix("int"))
    low, high = (0, 2**bits - 1) if kind.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return min(max(value + delta, low), high)


@st.composite
def builder_rules(draw: st.DrawFn) -> tuple[Any, tuple[str | int, ...], str, Condition, tuple[Any, ...]]:
    path = draw(st.sampled_from(sorted(PATHS, key=str)))
    kind = PATHS[path]
    op = draw(st.sampled_from(list(Condition)))
    ref = arg(*path)
    one = typed_values(kind)
    if op == Condition.IN_RANGE:
        low, high = sorted(draw(st.tuples(one, one)), key=lambda v: _order(kind, v))
        return ref.in_range(low, high), path, kind, op, (low, high)
    if op == Condition.ONE_OF:
        values = tuple(draw(st.lists(one, min_size=1, max_size=4)))
        return ref.one_of(*values), path, kind, op, values
    value = draw(one)
    spec = {
        Condition.EQUAL: ref == value,
        Condition.NOT_EQUAL: ref != value,
        Condition.LESS_THAN: ref < value,
        Condition.LESS_THAN_OR_EQUAL: ref <= value,
        Condition.GREATER_THAN: ref > value,
        Condition.GREATER_THAN_OR_EQUAL: ref >= value,
    }[op]
    return spec, path, kind, op, (value,)


@st.composite
def trade_arguments(draw: st.DrawFn, rules: list[tuple[Any, ...]]) -> list[Any]:
    """Typed ``trade`` arguments, with the ruled ones at, or one step off, a reference value."""
    by_path = {path: draw(typed_values(kind)) for path, kind in PATHS.items()}
    for _, path, kind, _, values in rules:
        if draw(st.integers(0, 3)):
            by_path[path] = _step(kind, draw(st.sampled_from(values)), draw(st.sampled_from([-1, 0, 1])))
    return [
        by_path[("token",)],
        by_path[("amount",)],
        by_path[("delta",)],
        by_path[("tag",)],
        by_path[("flag",)],
        (by_path[("spec", "kind")], by_path[("spec", "level")]),
        [by_path[("pair", 0)], by_path[("pair", 1)]],
        draw(st.binary(max_size=40)),
    ]


@settings(max_examples=EXAMPLES["builder"], **ON_CHAIN)
@given(data=st.data())
def test_builder_policies_agree_with_the_module(probe, data):
    """Permissions from Policy.call (typed rules on arguments, tuple components and array elements) on
    ABI-encoded calls, some with a ruled word made dirty for its type after encoding, plus a plain-transfer
    permission (called with empty calldata, or with the zero selector and a payload)."""
    key = fresh_key()
    target, other = TARGETS[0], TARGETS[1]
    rules = data.draw(st.lists(builder_rules(), min_size=1, max_size=4), label="rules")
    limit = data.draw(st.sampled_from(VALUE_LIMITS), label="value limit")
    valid_after, valid_until = data.draw(windows(), label="window")
    max_gas_cost, paymasters = data.draw(gas_caps(), label="gas cap")
    trade = Policy.call(target, TRADE_TEXT, rules=[r[0] for r in rules], value_limit=limit)
    session = Session(
        session_key=key.address,
        valid_after=valid_after,
        valid_until=valid_until,
        max_gas_cost=max_gas_cost,
        paymasters=paymasters,
        permissions=(trade, Policy.transfer(other, value_limit=limit)),
    )
    cases: list[tuple[UserOperation, Signing]] = []
    for index in range(CASES):
        arguments = data.draw(trade_arguments(rules), label=f"arguments {index}")
        value = data.draw(st.sampled_from([0, limit, min(limit + 1, U256), 2**96]), label=f"value {index}")
        encoded = bytearray(TRADE.selector + abi_encode(TRADE_TYPES, arguments))
        if data.draw(st.integers(0, 3), label=f"dirty {index}") == 0:
            path = data.draw(st.sampled_from([r[1] for r in rules]), label=f"dirty path {index}")
            offset, kind, _ = TRADE.locate(path)
            code = arg_type_of(kind.name)
            if ArgType.restricts(code):
                word = int.from_bytes(encoded[4 + offset : 36 + offset], "big")
                bit = data.draw(st.integers(0, 255), label=f"dirty bit {index}")
                encoded[4 + offset : 36 + offset] = dirty(word, code, bit).to_bytes(32, "big")
        calls = [Call.of(target, value, bytes(encoded))]
        if data.draw(st.booleans(), label=f"with a transfer {index}"):
            payload = data.draw(st.sampled_from([b"", b"", bytes(4), bytes(4) + bytes(encoded[4:])]))
            calls.append(
                Call.of(other, data.draw(st.sampled_from([0, limit, min(limit + 1, U256)])), payload)
            )
        call_data = encode_execute(calls, batch=len(calls) > 1)
        op = data.draw(gas_fields(session, probe.address), label=f"gas {index}").replace(call_data=call_data)
        cases.append((op, "USE_WITH_KEY" if data.draw(st.booleans(), label="with key") else "USE"))
    run_session(probe, session, key, cases)


# --------------------------------------------------------------------------------------------------
# Chosen cases: each boundary at least once, whatever the generators draw
# --------------------------------------------------------------------------------------------------

A, B = TARGETS[0], TARGETS[1]
TRANSFER, OTHER_SELECTOR = SELECTORS[0], SELECTORS[1]


def _rule(op: Condition, values: tuple[int, ...], offset: int = 0, signed: bool = False) -> Rule:
    return Rule(condition=int(op) | (SIGNED if signed else 0), offset=offset, values=values)


def _words(*words: int) -> bytes:
    return b"".join(w.to_bytes(32, "big") for w in words)


def _patched(call_data: bytes, position: int, value: bytes) -> bytes:
    return call_data[:position] + value + call_data[position + len(value) :]


def _padded_batch(position: int = 0) -> bytes:
    """A batch of two calls whose data is 7 bytes each, with a nonzero byte in the padding after call ``position``'s
    data (0: the first, -1: the last)."""
    data = bytearray(encode_execute([Call(A, 0, TRANSFER + bytes(3)), Call(A, 0, TRANSFER + bytes(3))]))
    head = 164 + 32 * (position % 2)
    call_data = 164 + int.from_bytes(data[head : head + 32], "big") + 128
    data[call_data + 10] = 0xAA  # nonzero padding after 7 bytes of data
    return bytes(data)


def _cut_batch() -> bytes:
    """A batch whose executionCalldata length leaves out the last 3 bytes of its last call's padding."""
    data = encode_execute([Call(A, 0, TRANSFER), Call(A, 0, TRANSFER + bytes(3))])
    return _patched(data, 68, (int.from_bytes(data[68:100], "big") - 3).to_bytes(32, "big"))


WIDE = 2**215
"""The first signed value that does not fit the module's 216-bit inline field."""
NARROW = (  # (type, a canonical value of it) for one rule each, 32 bytes apart
    (ArgType.ADDRESS, int(TARGETS[0], 16)),
    (ArgType.BOOL, 1),
    (ArgType.UINT8, 3),
    (ArgType.uint_of(248), 2**247),
    (ArgType.int_of(8), Rule.signed_word(-5)),
    (ArgType.int_of(128), 2**100),
    (ArgType.bytes_of(4), 0xDEADBEEF << 224),
    (ArgType.bytes_of(31), (2**248 - 1) << 8),
)
CAP = 10**15
"""The gas cap of the chosen gas scenario (wei)."""
SEVEN_PAYMASTERS = tuple(to_address(keccak(f"keyscope listed paymaster {i}".encode())[12:]) for i in range(7))
"""As many paymasters as a session lists: their words follow a permission's rule words, up to the 31-word room."""


def _gas(
    call_data: bytes, fee: int, paymaster: str | None = None, pm_gas: tuple[int, int] = (0, 0)
) -> UserOperation:
    """An operation of 100,000 + 200,000 + 50,000 gas (plus the paymaster's) at ``fee`` wei per gas."""
    return UserOperation(
        sender=B,
        nonce=0,
        call_data=call_data,
        verification_gas_limit=100_000,
        call_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=fee,
        paymaster=paymaster,
        paymaster_verification_gas_limit=pm_gas[0],
        paymaster_post_op_gas_limit=pm_gas[1],
    )


def chosen_cases(
    account: str, module: str
) -> dict[str, tuple[tuple[Permission, ...], list[bytes | UserOperation], dict[str, Any]]]:
    """Named scenarios: the permissions of a session, the operations to check against it (callData alone
    runs with no gas fields), and the session's other fields."""
    at_cap = CAP // 350_000
    transfer = encode_execute(Call(B, 1, b""))
    # odd rules EQUAL, even ones NOT_EQUAL (the condition a dirty word slips through on a masking target)
    narrow_rules = tuple(
        Rule(
            condition=Condition.EQUAL if i % 2 else Condition.NOT_EQUAL,
            offset=32 * i,
            arg_type=code,
            values=(v,),
        )
        for i, (code, v) in enumerate(NARROW)
    )
    clean = [
        int(TARGETS[1], 16),
        1,
        4,
        2**247,
        Rule.signed_word(-4),
        2**100,
        0xDEADBEEE << 224,
        (2**248 - 1) << 8,
    ]
    dirty_words = [
        [*clean[:i], dirty(clean[i], code, bit), *clean[i + 1 :]]
        for i, (code, _) in enumerate(NARROW)
        for bit in (0, 7, 200)
    ]
    return {
        "zero selector: empty calldata only": (
            (Permission(target=B, selector=bytes(4), value_limit=5), Permission(target=A, selector=TRANSFER)),
            [
                encode_execute(Call(B, v, data))
                for v in (0, 5)
                for data in (b"", bytes(4), bytes(4) + _words(int(account, 16), 2 * 10**18), bytes(5))
            ]
            + [encode_execute([Call(A, 0, TRANSFER), Call(B, 1, bytes(4) + b"x")])],
            {},
        ),
        "dirty words for every narrow type": (
            (Permission(target=A, selector=TRANSFER, rules=narrow_rules),),
            [encode_execute(Call(A, 0, TRANSFER + _words(*w))) for w in [clean, *dirty_words]],
            {},
        ),
        "gas cap with and without a paymaster": (
            (Permission(target=B, selector=bytes(4), value_limit=5),),
            [
                _gas(transfer, at_cap),
                _gas(transfer, at_cap + 1),
                _gas(transfer, at_cap, PAYMASTERS[0]),
                _gas(transfer, at_cap, PAYMASTERS[1], (1, 0)),
                _gas(transfer, at_cap, PAYMASTERS[1], (0, 1)),
                _gas(transfer, 1000 * GWEI, PAYMASTERS[0], (100_000, 100_000)),
                _gas(transfer, 1000 * GWEI, PAYMASTERS[1], (100_000, 100_000)),
                _gas(transfer, at_cap - 10, PAYMASTERS[2], (5, 5)),
            ],
            {"max_gas_cost": CAP, "paymasters": (PAYMASTERS[0],)},
        ),
        "paymaster spelled in other cases, fee edges": (
            (Permission(target=B, selector=bytes(4), value_limit=5),),
            [
                _gas(transfer, 1000 * GWEI, "0x" + PAYMASTERS[0][2:].upper(), (100_000, 100_000)),
                _gas(transfer, 1000 * GWEI, PAYMASTERS[0].lower(), (100_000, 100_000)),
                _gas(transfer, 1000 * GWEI, "0x" + PAYMASTERS[1][2:].lower(), (100_000, 100_000)),
                _gas(transfer, at_cap).replace(max_priority_fee_per_gas=2**120 - 1),
                _gas(transfer, at_cap + 1).replace(max_priority_fee_per_gas=0),
                _gas(transfer, 0).replace(
                    verification_gas_limit=2**120 - 1,
                    call_gas_limit=2**120 - 1,
                    pre_verification_gas=2**120 - 1,
                ),
                _gas(transfer, 2**120 - 1).replace(
                    verification_gas_limit=0, call_gas_limit=0, pre_verification_gas=0
                ),
                _gas(transfer, 2**120 - 1).replace(
                    verification_gas_limit=1, call_gas_limit=0, pre_verification_gas=0
                ),
            ],
            {"max_gas_cost": CAP, "paymasters": (PAYMASTERS[0].lower(),)},
        ),
        "long batches": (
            (Permission(target=B, selector=bytes(4), value_limit=5), Permission(target=A, selector=TRANSFER)),
            [
                encode_execute([Call(B, 5, b"")] * 120, batch=True),
                encode_execute([Call(B, 5, b"")] * 119 + [Call(A, 0, OTHER_SELECTOR)], batch=True),
                encode_execute([Call(A, 0, TRANSFER)] * 119 + [Call(B, 6, b"")], batch=True, exec_type=1),
                encode_execute([Call(B, 0, b"")], batch=True),
            ],
            {},
        ),
        "value limits saturate at 2**96 - 1": (
            (Permission(target=A, selector=TRANSFER, value_limit=2**200),),
            [encode_execute(Call(A, v, TRANSFER)) for v in (0, 2**96 - 1, 2**96, 2**200)],
            {},
        ),
        "signed references inline and wide": (
            (
                Permission(
                    target=A,
                    selector=TRANSFER,
                    rules=(
                        _rule(Condition.GREATER_THAN_OR_EQUAL, (Rule.signed_word(-WIDE),), 0, True),
                        _rule(Condition.LESS_THAN, (WIDE,), 32, True),
                        _rule(Condition.IN_RANGE, (Rule.signed_word(-WIDE - 1), WIDE - 1), 64, True),
                        _rule(Condition.ONE_OF, (Rule.signed_word(-1), WIDE, 2**255), 96, True),
                    ),
                ),
            ),
            [
                encode_execute(Call(A, 0, TRANSFER + _words(*words)))
                for words in (
                    (Rule.signed_word(-WIDE), WIDE - 1, Rule.signed_word(-WIDE - 1), U256),
                    (Rule.signed_word(-WIDE - 1), 0, 0, U256),
                    (0, WIDE, 0, U256),
                    (0, 0, WIDE, U256),
                    (0, 0, WIDE - 1, WIDE),
                    (0, 0, 0, 2**255),
                    (0, 0, 0, 1),
                )
            ],
            {},
        ),
        "unsigned references above 2**216 are stored wide": (
            (Permission(target=A, selector=TRANSFER, rules=(_rule(Condition.GREATER_THAN, (2**216,)),)),),
            [
                encode_execute(Call(A, 0, TRANSFER + _words(w)))
                for w in (2**216 - 1, 2**216, 2**216 + 1, U256)
            ],
            {},
        ),
        "one_of with 31 values": (
            (
                Permission(
                    target=A, selector=TRANSFER, rules=(_rule(Condition.ONE_OF, tuple(range(100, 131))),)
                ),
            ),
            [encode_execute(Call(A, 0, TRANSFER + _words(w))) for w in (99, 100, 115, 130, 131)],
            {},
        ),
        "calldata just long enough or a byte short": (
            (
                Permission(
                    target=A,
                    selector=TRANSFER,
                    rules=(_rule(Condition.EQUAL, (0,), 0), _rule(Condition.NOT_EQUAL, (5,), 100)),
                ),
            ),
            [encode_execute(Call(A, 0, (TRANSFER + bytes(200))[:size])) for size in (35, 36, 135, 136, 137)],
            {},
        ),
        "execute encodings the module tolerates, and bytes it leaves unjudged it refuses": (
            (Permission(target=A, selector=TRANSFER), Permission(target=B, selector=bytes(4), value_limit=5)),
            [
                encode_execute(Call(A, 0, TRANSFER)) + b"trailing bytes",
                encode_execute(Call(A, 0, TRANSFER)) + bytes(32),
                encode_execute(Call(A, 0, TRANSFER))[:-1] + b"\x01",
                encode_execute(Call(A, 0, TRANSFER))[:-8],  # executionCalldata without its padding
                encode_execute(Call(B, 0, b""))[:-5],  # a plain transfer with part of its padding
                _patched(encode_execute(Call(A, 0, TRANSFER + bytes(9))), 68, (52 + 4).to_bytes(32, "big")),
                _padded_batch(),
                _padded_batch(position=-1),  # the same byte in the last call's padding
                _cut_batch(),
                # a call after the batch's count
                smuggling_encodings(Call(A, 0, TRANSFER), Call(B, 5, b""))[1],
                encode_execute(Call(B, 5, b""), batch=True, exec_type=1),
            ],
            {},
        ),
        **{
            f"window {name}": (
                (Permission(target=B, selector=bytes(4), value_limit=5),),
                [transfer, encode_execute(Call(B, 6, b""))],
                {"valid_after": after, "valid_until": until},
            )
            for name, (after, until) in {
                "open on both ends": (0, 0),
                "from the 48-bit maximum": (2**48 - 1, 0),
                "until the 48-bit maximum": (0, 2**48 - 1),
                "of the last two seconds": (2**48 - 2, 2**48 - 1),
                "of the first two seconds": (0, 1),
                "from 1 until 2": (1, 2),
            }.items()
        },
        "seven paymasters after rules that fill the room": (
            (
                Permission(
                    target=A,
                    selector=TRANSFER,
                    rules=(  # wide first values (above 2**216): 21 + 3 words, then the 7 paymasters' words
                        _rule(Condition.ONE_OF, (2**216, *range(1, 20))),
                        _rule(Condition.IN_RANGE, (2**216, 2**220), 32),
                    ),
                ),
            ),
            [
                _gas(
                    encode_execute(Call(A, 0, TRANSFER + _words(19, 2**216))), at_cap * 10, paymaster, (1, 1)
                )
                for paymaster in (*SEVEN_PAYMASTERS, PAYMASTERS[0])
            ]
            + [
                _gas(encode_execute(Call(A, 0, TRANSFER + _words(*words))), fee, SEVEN_PAYMASTERS[6])
                for words in ((20, 2**216), (2**216, 2**216 - 1), (2**216, 2**220 + 1), (2**216, 2**220))
                for fee in (at_cap, at_cap * 10)
            ]
            + [
                _gas(encode_execute(Call(A, 0, TRANSFER + _words(2**216, 2**220))), fee)
                for fee in (at_cap, at_cap + 1)
            ],
            {"max_gas_cost": CAP, "paymasters": SEVEN_PAYMASTERS},
        ),
        "forbidden targets, transfers and 1-3 byte calldata": (
            (Permission(target=A, selector=TRANSFER), Permission(target=B, selector=bytes(4), value_limit=5)),
            [encode_execute([Call(A, 0, TRANSFER), Call(target, 0, b"")]) for target in (account, module)]
            + [encode_execute(Call(B, v, b"")) for v in (5, 6)]
            + [encode_execute(Call(B, 0, bytes(4) + b"more")), encode_execute(Call(B, 0, OTHER_SELECTOR))]
            + [encode_execute(Call(B, 0, b"\x01" * size)) for size in (1, 2, 3)],
            {},
        ),
    }


@pytest.mark.parametrize("name", sorted(chosen_cases(TARGETS[2], TARGETS[2])))
def test_chosen_cases_agree_with_the_module(probe, name):
    permissions, operations_, fields = chosen_cases(probe.address, probe.module.address)[name]
    key = fresh_key()
    fields = {"valid_after": T0, "valid_until": T0 + 60, **fields}
    session = Session(session_key=key.address, permissions=permissions, **fields)
    ops = [
        op if isinstance(op, UserOperation) else UserOperation(sender=B, nonce=0, call_data=op)
        for op in operations_
    ]
    run_session(probe, session, key, [(op, signing) for op in ops for signing in BY_KEY_AND_USE])
