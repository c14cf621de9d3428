"""Which contracts an account has installed as modules, asked as the session module asks (ERC-7579
``isModuleInstalled`` for validators, executors and hooks, Safe's ``isModuleEnabled``; for a call permission's
target and selector, ``isModuleInstalled(3, target, selector)``, whether the account routes the selector to the
target as its fallback handler), in questions that ride in one batch of reads, or one by one (:func:`module_of`,
:func:`fallback_handler`) where a question may revert.

A session may neither call another module of its account (the module refuses such grants) nor have its signatures
verified by one (the module refuses them): the SDK asks the same questions to refuse both first. As the module does,
it takes an account that gives no answer to the validator question (ERC-7579 has every account answer it) as a
refusal, :data:`UNANSWERED`, asks a hook question unanswered again with Safe7579's context (hook type GLOBAL, no
selector: Safe7579 reverts on an empty context), and asks every account Safe's question once the others say no: in the
batch on Safe7579 (a Safe answers it), one by one elsewhere (:func:`safe_module`: most accounts revert on it, which a
batch of reads cannot take). :func:`read_asking_modules` puts these together for a caller's batch of reads, and
:meth:`ModuleReads.verdict` gives the module's verdict, which each caller turns into its own error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ..chain import Reads, is_no_answer, read_many
from ..errors import BadInputError, CallRevertedError
from ..hexutil import to_address
from ..rpc import JsonRpcError
from ..selectors import IS_INITIALIZED, IS_MODULE_INSTALLED, IS_MODULE_TYPE
from .base import AccountKind

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = [
    "CLAIMED_MODULE_TYPES",
    "FALLBACK_HANDLER",
    "MODULE_TYPES",
    "SAFE_MODULE",
    "UNANSWERED",
    "ModuleReads",
    "ModuleVerdict",
    "claimed_module",
    "fallback_context",
    "fallback_handler",
    "fallback_routes",
    "initialised_question",
    "installed_module",
    "module_of",
    "module_questions",
    "no_answer",
    "read_asking_modules",
    "safe_module",
]

_IS_MODULE_ENABLED = bytes.fromhex("2d9ad53d")
"""Safe's isModuleEnabled(address)."""
MODULE_TYPES = {
    1: "validator",
    2: "executor",
    4: "hook",
    8: "pre-validation hook (ERC-1271)",
    9: "pre-validation hook (ERC-4337)",
}
"""The module types asked about for every target, by name, in the order the module asks them (fallback handlers are
installed per selector: asked per permission, :data:`FALLBACK_HANDLER`). Types 8 and 9 are ERC-7579's pre-validation
hooks, which hand every validator the hash and signature it judges; accounts without them answer no (or revert, which
says no too)."""
FALLBACK_HANDLER = "fallback handler"
"""The verdict on a call permission's target that the account routes the permission's selector to as its fallback
handler (``isModuleInstalled(3, target, selector)``): the module refuses it (module type 3)."""
_FALLBACK = 3
GLOBAL_HOOK_CONTEXT = bytes(64)
"""The context Safe7579 reads a hook question's hook type (GLOBAL, 0) and selector (none) from."""
SAFE_MODULE = "Safe module"
"""The verdict on a target the account's Safe has enabled as a module (``isModuleEnabled``): the module refuses it
(module type 0)."""
UNANSWERED = "unanswered"
"""The verdict on an account that gives no answer (a revert, no such function, not a bool) to the validator question:
the module refuses the target (``ModuleQueryUnanswered``)."""


def _question(number: int, target: str, context: bytes = b"") -> bytes:
    return IS_MODULE_INSTALLED + abi_encode(
        ["uint256", "address", "bytes"], [number, to_address(target), context]
    )


def fallback_context(selector: bytes) -> bytes:
    """The context the module asks a fallback handler question with: the selector left-aligned in one word
    (``abi.encode(bytes4)``), which accounts reading its first 4 bytes and those decoding it as ``(bytes4)`` (Safe7579)
    both take."""
    if len(selector) != 4:
        raise BadInputError(f"a selector is 4 bytes, got {len(selector)}: 0x{selector.hex()}")
    return selector + bytes(28)


class _CallPermission(Protocol):
    @property
    def target(self) -> str: ...

    @property
    def selector(self) -> bytes: ...


def fallback_routes(permissions: Iterable[_CallPermission], account: str) -> list[tuple[str, bytes]]:
    """The ``(target, selector)`` pairs of call ``permissions`` that enabling them on ``account`` asks the fallback
    handler question about, as the module asks it: each permission with a nonzero selector whose target is not the
    account itself (the module refuses that target before), each pair once, in the permissions' order."""
    account = to_address(account)
    return list(
        dict.fromkeys(
            (to_address(p.target), bytes(p.selector))
            for p in permissions
            if bytes(p.selector) != bytes(4) and to_address(p.target) != account
        )
    )


def _fallback_question(target: str, selector: bytes) -> bytes:
    return _question(_FALLBACK, target, fallback_context(selector))


def _safe_question(target: str) -> bytes:
    return _IS_MODULE_ENABLED + abi_encode(["address"], [to_address(target)])


def asks_safe_in_batch(kind: AccountKind) -> bool:
    """Whether :func:`module_questions` asks ``kind``'s accounts Safe's ``isModuleEnabled`` too (a Safe answers it);
    other accounts are asked it one by one (:func:`safe_module`) once the batch finds no module."""
    return kind.name == "safe7579"


def module_questions(kind: AccountKind, account: str, targets: Sequence[str]) -> list[tuple[str, bytes]]:
    """``(account, isModuleInstalled(type, target, context))`` for each target and module type, for a batch of reads:
    the context is empty, except for Safe7579's hook question (:data:`GLOBAL_HOOK_CONTEXT`), the form the module asks
    it in once the empty one reverts; on Safe7579, Safe's ``isModuleEnabled(target)`` after them."""
    safe7579 = asks_safe_in_batch(kind)
    questions: list[tuple[str, bytes]] = []
    for target in targets:
        questions.extend(
            (account, _question(number, target, GLOBAL_HOOK_CONTEXT if safe7579 and number == 4 else b""))
            for number in MODULE_TYPES
        )
        if safe7579:
            questions.append((account, _safe_question(target)))
    return questions


def _word(answer: bytes | None) -> int | None:
    """A bool's answer as its word, None when it is no bool (a revert, too short, above 1)."""
    if answer is None or len(answer) < 32:
        return None
    word = int.from_bytes(answer[:32], "big")
    return word if word < 2 else None


def installed_module(
    questions: Sequence[tuple[str, bytes]], answers: Sequence[bytes]
) -> tuple[str, str] | None:
    """The first ``(target, module type)`` the account answered yes for (:data:`SAFE_MODULE` for Safe's question),
    ``(target, UNANSWERED)`` for a validator question answered with no bool; None when it said no to all."""
    for (_, question), answer in zip(questions, answers, strict=True):
        word = _word(answer)
        if question[:4] == _IS_MODULE_ENABLED:
            if word == 1:
                return to_address(abi_decode(["address"], question[4:36])[0]), SAFE_MODULE
            continue
        number, target = abi_decode(["uint256", "address"], question[4:68])
        if number == 1 and word is None:
            return to_address(target), UNANSWERED
        if word == 1:
            return to_address(target), MODULE_TYPES[number]
    return None


def _hook_unanswered(questions: Sequence[tuple[str, bytes]], answers: Sequence[bytes]) -> bool:
    """Whether a hook question asked with an empty context got no bool: the module asks it again with
    :data:`GLOBAL_HOOK_CONTEXT`, which the batch did not."""
    for (_, question), answer in zip(questions, answers, strict=True):
        if question[:4] != IS_MODULE_INSTALLED:
            continue
        number, _, context = abi_decode(["uint256", "address", "bytes"], question[4:])
        if number == 4 and not context and _word(answer) is None:
            return True
    return False


def no_answer(error: Exception) -> bool:
    """Whether ``error``, raised by a question to an account, is the account's failing to answer (a revert, or its
    code halting: all its gas burnt), which the module reads as no answer too; a transport error is not."""
    if isinstance(error, CallRevertedError):
        return True
    return isinstance(error, JsonRpcError) and is_no_answer(error)


def _ask(chain: Chain, account: str, data: bytes) -> int | None:
    """The account's answer to ``data`` as a bool's word, None for no bool (a revert, or code that halts, is no
    answer)."""
    try:
        return _word(chain.call(account, data))
    except (CallRevertedError, JsonRpcError) as exc:
        if not no_answer(exc):
            raise
        return None


_NO_SAFE_QUESTION = frozenset({"kernel", "nexus", "msa", "keyscope", "keyscope-7702"})
"""Kinds whose code has no ``isModuleEnabled`` (only a fallback handler the owner installs for that selector would
answer it): not asked, which keeps a grant on them to one round trip."""


def safe_module(
    chain: Chain, kind: AccountKind, account: str, targets: Sequence[str]
) -> tuple[str, str] | None:
    """``(target, SAFE_MODULE)`` for the first of ``targets`` the account says yes to when asked Safe's
    ``isModuleEnabled``, one question at a time (a revert is no), as the module asks every account once its
    ``isModuleInstalled`` questions say no; None when it says no to all, or when :func:`module_questions` asked
    them in its batch already (Safe7579), or the kind's code has no such question (:data:`_NO_SAFE_QUESTION`)."""
    if asks_safe_in_batch(kind) or kind.name in _NO_SAFE_QUESTION:
        return None
    account = to_address(account)
    for target in targets:
        if _ask(chain, account, _safe_question(target)) == 1:
            return to_address(target), SAFE_MODULE
    return None


def module_of(chain: Chain, account: str, target: str) -> str | None:
    """The module's verdict on ``target`` for the deployed ``account``, asked one question at a time as the module
    asks them (a revert is no answer): the module type's name, ``"Safe module"`` (``isModuleEnabled``),
    :data:`UNANSWERED`, or None (not a module)."""
    account = to_address(account)

    def ask(data: bytes) -> int | None:
        return _ask(chain, account, data)

    validator = ask(_question(1, target))
    if validator is None:
        return UNANSWERED
    if validator == 1:
        return MODULE_TYPES[1]
    if ask(_question(2, target)) == 1:
        return MODULE_TYPES[2]
    hook = ask(_question(4, target))
    if hook is None:
        hook = ask(_question(4, target, GLOBAL_HOOK_CONTEXT))
    if hook == 1:
        return MODULE_TYPES[4]
    for number in (8, 9):
        if ask(_question(number, target)) == 1:
            return MODULE_TYPES[number]
    if ask(_safe_question(target)) == 1:
        return SAFE_MODULE
    return None


def fallback_handler(chain: Chain, account: str, target: str, selector: bytes) -> bool:
    """Whether the deployed ``account`` says it routes ``selector`` to ``target`` as its fallback handler, asked as the
    module asks (``isModuleInstalled(3, target, abi.encode(selector))``): any answer but a well-formed true (a revert,
    code that halts, not a bool) says no, as some accounts revert on the question."""
    return _ask(chain, to_address(account), _fallback_question(target, selector)) == 1


CLAIMED_MODULE_TYPES = {
    1: "validator",
    2: "executor",
    3: "fallback handler",
    4: "hook",
    5: "policy (Kernel)",
    6: "signer (Kernel)",
    8: "pre-validation hook (ERC-1271)",
    9: "pre-validation hook (ERC-4337)",
}
"""The module types :func:`claimed_module` asks a target whether it is: ERC-7579's four, Kernel's two and ERC-7579's
two pre-validation hooks."""


def initialised_question(account: str) -> bytes:
    """``isInitialized(account)``, the first question :func:`claimed_module` asks each target."""
    return IS_INITIALIZED + abi_encode(["address"], [to_address(account)])


def claimed_module(
    chain: Chain, account: str, targets: Sequence[str], initialised: Sequence[bytes] | None = None
) -> tuple[str, str] | None:
    """``(target, module type)`` for the first of ``targets`` that says, of itself, that it is a module initialised
    for ``account``: ``isInitialized(account)`` and ``isModuleType(type)`` for a type of
    :data:`CLAIMED_MODULE_TYPES` both answer a well-formed true. None when none does (a revert, no code, or any
    other answer is no).

    Such a contract keeps configuration for the account and takes the account's own calls to change it, whether or
    not the account lists it as installed, so a session calling it could reconfigure or remove it. The module's
    questions go to the account, and some accounts cannot be asked: Kernel v3.1 answers no hook question (it runs a
    hook per validator, executor and selector), nor can its policies and signers, Safe7579's per-selector hooks or a
    fallback handler reached through a selector not routed to it be asked about. The module cannot ask the targets
    themselves (ERC-7562 forbids calling an address without code during validation); the SDK, reading through
    ``eth_call``, can. ``initialised`` holds the targets' answers to :func:`initialised_question` when the caller
    read them already (as optional questions of its batch, :func:`read_asking_modules`); else each is asked here.
    The type questions are asked one at a time of a target that says it is initialised."""
    question = initialised_question(account)
    for index, target in enumerate(targets):
        answer = (
            _word(initialised[index])
            if initialised is not None
            else _ask(chain, to_address(target), question)
        )
        if answer != 1:
            continue
        for number, name in CLAIMED_MODULE_TYPES.items():
            if _ask(chain, to_address(target), IS_MODULE_TYPE + number.to_bytes(32, "big")) == 1:
                return to_address(target), name
    return None


@dataclass(frozen=True)
class ModuleVerdict:
    """The module's verdict on ``target``, one of the account's modules: ``module`` is the module type's name,
    :data:`SAFE_MODULE`, :data:`FALLBACK_HANDLER` (the account routes ``selector``, a call permission's, to it), or
    :data:`UNANSWERED` (the account gave no answer to the validator question, which the module refuses too)."""

    target: str
    module: str
    selector: bytes | None = None

    @property
    def unanswered(self) -> bool:
        """Whether the account gave no answer to the validator question (``ModuleQueryUnanswered``)."""
        return self.module == UNANSWERED


@dataclass(frozen=True)
class ModuleReads:
    """A caller's reads (:attr:`reads`, without the questions' answers), made with the module questions about
    ``targets`` (:func:`read_asking_modules`); ``answers`` is None when the batch could not take them."""

    reads: Reads
    chain: Chain
    kind: AccountKind
    account: str
    targets: tuple[str, ...]
    questions: tuple[tuple[str, bytes], ...]
    answers: tuple[bytes, ...] | None
    fallbacks: tuple[tuple[str, bytes], ...] = ()
    fallback_answers: tuple[bytes, ...] | None = None
    optional_answers: tuple[bytes, ...] = ()
    """The answers to the caller's optional questions, in their order (``b""`` for one that failed)."""

    def verdict(self) -> ModuleVerdict | None:
        """The first of ``targets`` the module would refuse as one of the account's modules (or because the account
        does not answer the validator question about it), None when it would refuse none. From the batch's answers,
        then Safe's question one by one where the batch did not ask it (:func:`safe_module`); or, when a question
        reverted or halted the batch, or a hook question asked with an empty context got no bool (the module asks it
        again with Safe7579's context), from every question asked one by one, as the module asks them
        (:func:`module_of`). For a deployed account only: while an account has no code (its proxy's constructor
        installing its modules) the module asks each target ``isModuleType`` instead, which concerns sessions in
        install data only: the SDK grants sessions once the account exists.

        Once no target is such a module, the first ``(target, selector)`` of ``fallbacks`` the account routes to the
        target as its fallback handler (:data:`FALLBACK_HANDLER`), from the batch's answers or asked one by one
        (:func:`fallback_handler`), as the module asks it per permission."""
        if self.answers is None or _hook_unanswered(self.questions, self.answers):
            for target in self.targets:
                if (module := module_of(self.chain, self.account, target)) is not None:
                    return ModuleVerdict(to_address(target), module)
        else:
            found = installed_module(self.questions, self.answers) or safe_module(
                self.chain, self.kind, self.account, self.targets
            )
            if found is not None:
                return ModuleVerdict(*found)
        for index, (target, selector) in enumerate(self.fallbacks):
            routed = (
                _word(self.fallback_answers[index]) == 1
                if self.fallback_answers is not None
                else fallback_handler(self.chain, self.account, target, selector)
            )
            if routed:
                return ModuleVerdict(to_address(target), FALLBACK_HANDLER, selector)
        return None


def read_asking_modules(
    chain: Chain,
    kind: AccountKind,
    account: str,
    targets: Sequence[str],
    calls: Sequence[tuple[str, bytes]] = (),
    *,
    codes: Sequence[str] = (),
    timestamp: bool = False,
    fallbacks: Sequence[tuple[str, bytes]] = (),
    optional: Sequence[tuple[str, bytes]] = (),
) -> ModuleReads:
    """:func:`~keyscope.chain.read_many` of ``calls``, ``codes`` and ``timestamp`` with the module questions about
    ``targets`` (:func:`module_questions`) and, for each ``(target, selector)`` of ``fallbacks`` (a call permission's,
    selector nonzero), the fallback handler question, in the same round trip. When the account reverts (or halts) on
    a question, the batch fails: the caller's reads are made again without them, and :meth:`ModuleReads.verdict`
    asks them one by one. Any other error (the transport, a caller's call reverting) is raised. The ``optional``
    questions (which a contract may fail to answer: ``b""``) ride in the same round trip, their answers in
    :attr:`ModuleReads.optional_answers`."""
    questions = tuple(module_questions(kind, account, targets))
    routed = tuple((to_address(target), bytes(selector)) for target, selector in fallbacks)
    asked = [*questions, *((account, _fallback_question(t, s)) for t, s in routed)]
    try:
        read = read_many(chain, [*calls, *asked], codes=codes, timestamp=timestamp, optional=optional)
    except (CallRevertedError, JsonRpcError) as exc:
        if not no_answer(exc):
            raise
        # a question the account reverts (or halts) on: asked one by one, as the module asks them
        read = (
            read_many(chain, calls, codes=codes, timestamp=timestamp, optional=optional)
            if calls or codes or timestamp or optional
            else Reads([], [], None)
        )
        reads = Reads(read.results[: len(calls)], read.codes, read.timestamp)
        optional_answers = tuple(read.results[len(calls) :])
        answers = fallback_answers = None
    else:
        reads = Reads(read.results[: len(calls)], read.codes, read.timestamp)
        answers = tuple(read.results[len(calls) : len(calls) + len(questions)])
        fallback_answers = tuple(read.results[len(calls) + len(questions) : len(calls) + len(asked)])
        optional_answers = tuple(read.results[len(calls) + len(asked) :])
    return ModuleReads(
        reads,
        chain,
        kind,
        to_address(account),
        tuple(targets),
        questions,
        answers,
        routed,
        fallback_answers,
        optional_answers,
    )
