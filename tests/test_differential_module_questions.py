"""The module's questions about a grant's targets and the SDK's, on generated accounts: the same verdict.

Enabling a session asks the account, for each permission's target, whether it is one of the account's modules
(ERC-7579 ``isModuleInstalled`` of a validator, an executor, a hook, the two pre-validation hooks, then Safe's
``isModuleEnabled``) and, for each permission with a selector, whether the account routes that selector to the target
as its fallback handler (``isModuleInstalled(3, target, abi.encode(selector))``, attack 257). The SDK asks the same questions in the grant's
batch of reads (:func:`~keyscope.accounts.modules.read_asking_modules`, one by one when a question reverts) and refuses
the grant before anything is signed.

Here the account is ``OddModuleAnswers`` (contracts/test), deployed with the module (ape's builds of their sources) on a
fresh anvil of this file's own, which runs them natively, and set afresh for each example to answer each question, per
target, module type, context and selector, in any form a view can give: true (one word, or longer), false, a word above
1, one byte, nothing, a revert (with or without a word of data), or all its gas burnt. The sessions name 1 to 4
(target, selector) pairs, selector zero (a plain transfer) among them. Three verdicts must agree:

- the module's, an ``eth_call`` of ``enableSession`` from the account (``PermissionTargetIsModule`` at the first
  permission whose target it finds to be a module, ``ModuleQueryUnanswered`` for a silent validator question, or
  enabled);
- the SDK's, :meth:`~keyscope.accounts.modules.ModuleReads.verdict` of the reads the owner makes for such a grant;
- a model of the questions written here from the standard and the module's documentation: which answers count as a
  yes, which as no answer, and in which order they are asked.

The module refuses exactly when the SDK does; it names the permission the model names first; the SDK names a target
(and, for a fallback handler, a selector) the model says the module would refuse.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope import RpcChain
from keyscope.accounts.erc7579 import ERC7579AccountKind
from keyscope.accounts.modules import (
    FALLBACK_HANDLER,
    GLOBAL_HOOK_CONTEXT,
    MODULE_TYPES,
    SAFE_MODULE,
    UNANSWERED,
    fallback_context,
    fallback_routes,
    read_asking_modules,
)
from keyscope.hexutil import keccak, to_address
from keyscope.revert import decode_revert
from keyscope.session import Permission, Session
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.fuzz import DEEP, ON_CHAIN
from support.raw_call import revert_bytes
from support.view_answers import ANSWER_FORMS, BURN

EXAMPLES = 1500 if DEEP else 150
TARGETS = tuple(to_address(keccak(f"keyscope module question target {i}".encode())[12:]) for i in range(4))
SELECTORS = (bytes.fromhex("a9059cbb"), bytes.fromhex("12345678"), bytes(4))
KEY = to_address(keccak(b"keyscope module question key")[12:])
SAFE = 0
"""The module type the contract files Safe's ``isModuleEnabled`` under."""
PRE_VALIDATION_HOOKS = (8, 9)
"""ERC-7579's pre-validation hooks (ERC-1271, ERC-4337), asked after the hook, with an empty context."""
FORMS = ANSWER_FORMS
"""How a question may be answered (besides all the gas burnt, at most once an example: a second burn would leave
the call too little gas to finish, as it would any bundler's)."""
BURNT = "all gas burnt"


@dataclass(frozen=True)
class Question:
    """One question the account may be asked about ``target``: ``module_type`` (0: Safe's) and its ``context``."""

    module_type: int
    target: str
    context: bytes = b""


def questions_about(target: str) -> list[Question]:
    return [
        Question(1, target),
        Question(2, target),
        Question(4, target),
        Question(4, target, GLOBAL_HOOK_CONTEXT),
        *(Question(number, target) for number in PRE_VALIDATION_HOOKS),
        Question(SAFE, target),
        *(Question(3, target, fallback_context(s)) for s in SELECTORS if s != bytes(4)),
    ]


ALL_QUESTIONS = [q for t in TARGETS for q in questions_about(t)]


# --------------------------------------------------------------------------------------------------
# The model: which answers say yes, which say nothing, and the order the module asks in
# --------------------------------------------------------------------------------------------------


def says_yes(form: str) -> bool:
    """A well-formed true: at least a word, and the first word 1 (a longer answer is read by its first word)."""
    return form in ("true", "true, long")


def answered(form: str) -> bool:
    """A bool came back: at least a word, the first word 0 or 1, and the call did not revert or halt."""
    return form in ("true", "true, long", "false")


def model(
    answers: dict[Question, str], permissions: tuple[Permission, ...]
) -> list[tuple[int, str, str, Any]]:
    """Each refusal the module may meet, in the order it asks: (permission index, target, what the target is:
    a module type's name, :data:`SAFE_MODULE`, :data:`FALLBACK_HANDLER` or :data:`UNANSWERED`, the selector for a
    fallback handler). The module stops at the first; the SDK may name any (it asks the targets in another order)."""

    def form(question: Question) -> str:
        return answers.get(question, "false")

    refusals: list[tuple[int, str, str, Any]] = []
    asked: set[str] = set()
    for index, permission in enumerate(permissions):
        target = to_address(permission.target)
        if target not in asked:
            asked.add(target)
            found = module_of(form, target)
            if found is not None:
                refusals.append((index, target, found, None))
                continue
        selector = bytes(permission.selector)
        if selector != bytes(4) and says_yes(form(Question(3, target, fallback_context(selector)))):
            refusals.append((index, target, FALLBACK_HANDLER, selector))
    return refusals


def module_of(form: Any, target: str) -> str | None:
    """What the module finds ``target`` to be, as its documentation says it asks: the validator question first
    (unanswered: refused), then the executor's, then the hook's (asked again with Safe7579's context when it gets no
    answer), then the two pre-validation hooks' (no answer is no), then Safe's ``isModuleEnabled``."""
    validator = form(Question(1, target))
    if not answered(validator):
        return UNANSWERED
    if says_yes(validator):
        return MODULE_TYPES[1]
    if says_yes(form(Question(2, target))):
        return MODULE_TYPES[2]
    hook = form(Question(4, target))
    if not answered(hook):
        hook = form(Question(4, target, GLOBAL_HOOK_CONTEXT))
    if says_yes(hook):
        return MODULE_TYPES[4]
    for number in PRE_VALIDATION_HOOKS:
        if says_yes(form(Question(number, target))):
            return MODULE_TYPES[number]
    if says_yes(form(Question(SAFE, target))):
        return SAFE_MODULE
    return None


# --------------------------------------------------------------------------------------------------
# Generated accounts and sessions
# --------------------------------------------------------------------------------------------------


ROLES = (
    "none", "none", "validator", "silent validator", "executor", "hook", "hook on Safe7579's context",
    "ERC-1271 pre-validation hook", "ERC-4337 pre-validation hook", "Safe module", "Safe module",
    "fallback handler", "fallback handler",
)  # fmt: skip
"""What a generated account makes each target: the question that says so is answered yes (or, for a silent
validator, not at all; for a hook on Safe7579's context, not at all on an empty one)."""


def making(target: str, role: str, yes: str, quiet: str, routed: tuple[bytes, ...]) -> dict[Question, str]:
    """The answers that make ``target`` what ``role`` says: ``yes`` the form of its yes, ``quiet`` of its silence,
    ``routed`` the selectors a fallback handler is installed for."""
    if role == "validator":
        return {Question(1, target): yes}
    if role == "silent validator":
        return {Question(1, target): quiet}
    if role == "executor":
        return {Question(2, target): yes}
    if role == "hook":
        return {Question(4, target): yes}
    if role == "hook on Safe7579's context":
        return {Question(4, target): quiet, Question(4, target, GLOBAL_HOOK_CONTEXT): yes}
    if role == "ERC-1271 pre-validation hook":
        return {Question(8, target): yes}
    if role == "ERC-4337 pre-validation hook":
        return {Question(9, target): yes}
    if role == "Safe module":
        return {Question(SAFE, target): yes}
    if role == "fallback handler":
        return {Question(3, target, fallback_context(selector)): yes for selector in routed}
    return {}


EACH_ROLE = [
    {
        "answers": making(TARGETS[0], role, "true", "a revert", SELECTORS[:1]),
        "session": Session(
            session_key=KEY, permissions=(Permission(target=TARGETS[0], selector=SELECTORS[0]),)
        ),
    }
    for role in dict.fromkeys(ROLES)
]
"""One example per role, whatever the generated ones reach: the first permission's target made it alone."""


@st.composite
def accounts_answers(draw: st.DrawFn) -> dict[Question, str]:
    """Each question's answer: each target gets a role (:data:`ROLES`), and the questions after the validator's any
    form now and then besides, which may make it more (a yes to an earlier question) or another (silent); all the
    gas burnt on one question about one example in four."""
    answers: dict[Question, str] = {}
    silent = st.sampled_from([form for form in FORMS if not answered(form)])
    for target in TARGETS:
        for question in questions_about(target)[1:]:
            form = draw(st.sampled_from([*[None] * 16, *FORMS]))
            if form is not None:
                answers[question] = form
        role = draw(st.sampled_from(ROLES))
        yes = draw(st.sampled_from(["true", "true, long"]))
        quiet = draw(silent)
        routed = draw(st.sampled_from([SELECTORS[:1], SELECTORS[1:2], SELECTORS[:2]]))
        answers.update(making(target, role, yes, quiet, routed))
    if draw(st.sampled_from([False, False, False, True])):
        answers[draw(st.sampled_from(ALL_QUESTIONS))] = BURNT
    return answers


def generated_sessions() -> st.SearchStrategy[Session]:
    pairs = st.lists(
        st.tuples(st.sampled_from(TARGETS), st.sampled_from(SELECTORS)), min_size=1, max_size=4, unique=True
    )
    return pairs.map(
        lambda chosen: Session(
            session_key=KEY,
            permissions=tuple(Permission(target=t, selector=s) for t, s in chosen),
        )
    )


# --------------------------------------------------------------------------------------------------
# The verdicts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnAnvil:
    """The file's anvil, the module and the account deployed on it, and the development account that sets the
    account's answers."""

    chain: AnvilChain
    module: AnvilContract
    odd: AnvilContract
    deployer: str


@pytest.fixture(scope="module")
def on_anvil(project):
    with anvil_chain() as chain:
        module = chain.deploy(project.SessionKeyValidator)
        odd = chain.deploy(project.OddModuleAnswers)
        yield OnAnvil(chain, module, odd, chain.accounts[0])


def set_answers(odd: AnvilContract, deployer: str, answers: dict[Question, str]) -> None:
    entries = []
    for question, form in answers.items():
        how, data = (BURN, b"") if form == BURNT else FORMS[form]
        entries.append((question.module_type, question.target, question.context, how, data))
    odd.answerEach.transact(entries, sender=deployer)


def module_verdict(
    call: Any, account: str, module: Any, session: Session
) -> tuple[str, dict[str, Any]] | None:
    """The module's custom error when ``account`` enables ``session`` (None: enabled)."""
    data = module.enableSession.encode_input(session.as_abi())
    tx = {"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 30_000_000}
    try:
        call(tx)
    except Exception as error:
        decoded = decode_revert(revert_bytes(error))
        assert decoded is not None, error
        name, fields = decoded
        return name, {
            k: to_address(v) if isinstance(v, str) and len(v) == 42 else v for k, v in fields.items()
        }
    return None


TALLY: Counter[str] = Counter()


def test_the_module_the_sdk_and_the_model_find_the_same_modules_among_a_grant_s_targets(on_anvil):
    """The property on generated accounts and sessions; then, that the examples reached each verdict."""
    TALLY.clear()
    call = on_anvil.chain.call
    odd_account, deployer, module = on_anvil.odd, on_anvil.deployer, on_anvil.module
    node = RpcChain(on_anvil.chain.url)
    account = odd_account.address

    @settings(max_examples=EXAMPLES, database=None, **ON_CHAIN)
    @given(answers=accounts_answers(), session=generated_sessions())
    def agree(answers: dict[Question, str], session: Session) -> None:
        set_answers(odd_account, deployer, answers)
        expected = model(answers, session.permissions)
        on_chain = module_verdict(call, account, module, session)
        targets = sorted({to_address(p.target) for p in session.permissions})
        found = read_asking_modules(
            node,
            ERC7579AccountKind(),
            account,
            targets,
            fallbacks=fallback_routes(session.permissions, account),
        ).verdict()
        shown = (
            f"answers {answers}\npermissions {[(p.target, p.selector.hex()) for p in session.permissions]}"
        )
        if not expected:
            assert on_chain is None, f"the module refused what the model enables: {on_chain}\n{shown}"
            assert found is None, f"the SDK refused what the module enables: {found}\n{shown}"
            TALLY["enabled"] += 1
            return
        index, target, what, _ = expected[0]
        if what == UNANSWERED:
            assert on_chain == ("ModuleQueryUnanswered", {"account": account, "target": target}), (
                f"{on_chain}\n{shown}"
            )
        else:
            module_type = 3 if what == FALLBACK_HANDLER else 0 if what == SAFE_MODULE else _type_of(what)
            assert on_chain == (
                "PermissionTargetIsModule",
                {"permissionIndex": index, "target": target, "moduleType": module_type},
            ), f"{on_chain}, the model says {expected[0]}\n{shown}"
        assert found is not None, f"the SDK enables what the module refuses ({on_chain})\n{shown}"
        named = {(t, w, s) for _, t, w, s in expected}
        assert (found.target, found.module, found.selector) in named, (
            f"the SDK names {found}, the model {expected}\n{shown}"
        )
        TALLY[f"refused: {what}"] += 1
        TALLY[f"the SDK named: {found.module}"] += 1

    for chosen in EACH_ROLE:
        agree = example(**chosen)(agree)
    try:
        agree()
    finally:
        node.close()
    print("\nmodule questions:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    reached = ["enabled", *(f"refused: {w}" for w in (*MODULE_TYPES.values(), SAFE_MODULE, FALLBACK_HANDLER))]
    missing = [name for name in [*reached, f"refused: {UNANSWERED}"] if not TALLY[name]]
    assert not missing, f"no example met {missing}: {TALLY}"


def _type_of(name: str) -> int:
    return next(number for number, named in MODULE_TYPES.items() if named == name)


def test_the_fallback_question_is_asked_with_the_selector_as_the_module_asks_it(on_anvil):
    """The question's wire form, fixed: ``isModuleInstalled(3, target, abi.encode(selector))``, the selector
    left-aligned in its one word. The account answers true only to that exact context, and the module refuses."""
    target, selector = TARGETS[0], SELECTORS[1]
    context = fallback_context(selector)
    assert context == abi_encode(["bytes4"], [selector]) == selector + bytes(28)
    set_answers(on_anvil.odd, on_anvil.deployer, {Question(3, target, context): "true"})
    session = Session(session_key=KEY, permissions=(Permission(target=target, selector=selector),))
    assert module_verdict(on_anvil.chain.call, on_anvil.odd.address, on_anvil.module, session) == (
        "PermissionTargetIsModule",
        {"permissionIndex": 0, "target": target, "moduleType": 3},
    )
