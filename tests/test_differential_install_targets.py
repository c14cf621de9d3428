"""Grants made at install on an account without code: the module's questions to the targets, the SDK's, a model.

An account its proxy's constructor initialises (Nexus, ERC-7579's reference account) installs its modules before it
has code, so the session module, handed sessions in its install data, cannot ask the account ``isModuleInstalled``:
it asks each permission's target instead, of itself, ERC-7579 ``isModuleType(t)``, for a validator (1), an executor
(2), a hook (4, asked again with a longer calldata when it gives no answer), the two pre-validation hooks (8, 9), and,
for a permission with a selector, a fallback handler (3); a type a target answers nothing of is not its type (attack
327). The other differential suites ask accounts with code only.

The cheapest honest way to draw such grants: an ``eth_call`` of ``enableSession`` from an address without code, which
runs the questions an install in a constructor runs (both enable through the same check of each target, with the
target asked while the account has no code); ``test_attacks_more.py`` creates a Nexus account through its factory
for the constructor's path itself. Here the targets are contracts of the file's own (``TypeAnswers``, compiled from
the source below) set afresh for each example to answer each type, and ``isInitialized(account)``, in any form a view
can give: a well-formed true or false, a longer true, a word above 1, one byte, nothing, a revert (with or without a
true word), all their gas burnt; beside them an ordinary contract (no ``isModuleType``) and an address without code.

Three verdicts:

- the module's: ``PermissionTargetIsModule(index, target, type)`` at the first permission whose target says it is a
  module of a type the module asks about, or enabled;
- a model written here from the module's documentation, which the module must equal;
- the SDK's. The SDK judges no grant at install (it grants sessions once the account exists, and asks the account
  then); what it says of a grant made while the account cannot be asked (an EOA's grants in its EIP-7702 upgrade) is
  :func:`~keyscope.accounts.modules.claimed_module`: a target that says both ``isInitialized(account)`` and one of
  eight types (Kernel's policy and signer and a fallback handler whatever the selector included). It must read the
  targets as its documentation says, and whatever it refuses as a module of a type the module asks about, the module
  refuses too. Where they part (tallied): the module refuses a module not initialised for the account, which the
  SDK would let the owner sign (the account's creation then fails: nothing is granted); the SDK refuses earlier a
  Kernel policy or signer, or a fallback handler named with selector zero, which the module enables.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from ape.contracts import ContractContainer
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope import RpcChain
from keyscope.accounts.modules import CLAIMED_MODULE_TYPES, claimed_module
from keyscope.hexutil import keccak, to_address
from keyscope.session import Permission, Session
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.fuzz import DEEP, ON_CHAIN
from support.install_data import install_verdict
from support.solidity import compile_contract_type
from support.view_answers import ANSWER_FORMS, BURN

EXAMPLES = 400 if DEEP else 40
TYPE_ANSWERS = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// A contract answering ERC-7579 `isModuleType(t)` per type, and `isInitialized(account)`, as last set: bytes returned
/// as they are, a revert with bytes, or all its gas burnt; a question not set is answered with a well-formed false.
/// `isModuleType` takes its question only as ERC-7579 writes it, 36 bytes, as a module with a strict decoder does
/// (attack 334: the module asked in the account's 132-byte buffer, and took such a module for none).
contract TypeAnswers {
    uint8 constant RETURN = 1;
    uint8 constant REVERT = 2;
    uint8 constant BURN = 3;

    struct Answer {
        uint8 how;
        bytes data;
    }

    uint256 private _round;
    mapping(uint256 round => mapping(uint256 moduleType => Answer)) private _types;
    mapping(uint256 round => Answer) private _initialized;

    /// Answer `isModuleType(types[i])` as `hows[i]` with `datas[i]`, `isInitialized` as `initializedHow` with
    /// `initializedData`, and every other question with a false.
    function set(
        uint256[] calldata types,
        uint8[] calldata hows,
        bytes[] calldata datas,
        uint8 initializedHow,
        bytes calldata initializedData
    ) external {
        uint256 round = ++_round;
        for (uint256 i = 0; i < types.length; ++i) {
            _types[round][types[i]] = Answer(hows[i], datas[i]);
        }
        _initialized[round] = Answer(initializedHow, initializedData);
    }

    function isModuleType(uint256 moduleType) external view returns (bool) {
        if (msg.data.length != 36) revert();
        _give(_types[_round][moduleType]);
        return false;
    }

    function isInitialized(address) external view returns (bool) {
        _give(_initialized[_round]);
        return false;
    }

    function _give(Answer storage set_) private view {
        bytes memory data = set_.data;
        uint8 how = set_.how;
        if (how == RETURN) {
            assembly ("memory-safe") {
                return(add(data, 32), mload(data))
            }
        }
        if (how == REVERT) {
            assembly ("memory-safe") {
                revert(add(data, 32), mload(data))
            }
        }
        if (how == BURN) {
            assembly ("memory-safe") {
                invalid()
            }
        }
    }
}
"""
KEY = to_address(keccak(b"keyscope install target key")[12:])
SELECTORS = (bytes.fromhex("a9059cbb"), bytes.fromhex("12345678"), bytes(4))
ASKED = (1, 2, 4, 8, 9)
"""The types the module asks a target of, in its order (the fallback handler's, 3, after them, per permission)."""


FORMS: dict[str, tuple[int, bytes]] = {**ANSWER_FORMS, "all gas burnt": (BURN, b"")}
"""How a question may be answered (all the gas burnt at most once an example, and never on the hook question, which
the module asks twice: a second burn would leave the call too little gas to finish, as it would any bundler's)."""


def says_yes(form: str) -> bool:
    """A well-formed true: at least a word, the first word 1 (read by its first word, by the module and the SDK)."""
    return form in ("true", "true, long")


ROLES: dict[str, tuple[int, ...]] = {
    "none": (),
    "validator": (1,),
    "executor": (2,),
    "fallback handler": (3,),
    "hook": (4,),
    "policy (Kernel)": (5,),
    "signer (Kernel)": (6,),
    "ERC-1271 pre-validation hook": (8,),
    "ERC-4337 pre-validation hook": (9,),
    "executor and fallback handler": (2, 3),
}
"""What a generated target is: the types it answers yes to."""


@dataclass(frozen=True)
class Target:
    """One generated target's answers: per module type, and to ``isInitialized``."""

    types: dict[int, str]
    initialized: str

    def form(self, module_type: int) -> str:
        """How it answers ``isModuleType(module_type)``: a well-formed false unless set."""
        return self.types.get(module_type, "false")


@st.composite
def targets_answers(draw: st.DrawFn, count: int) -> list[Target]:
    """``count`` targets' answers: a role each (answered yes in a well-formed true, short or long), on the other
    types a false, a revert (as a module that reverts on the types it is not) or any form, ``isInitialized`` in
    any form, and all the gas burnt on one question of one example in four."""
    drawn = []
    for _ in range(count):
        role = draw(st.sampled_from(list(ROLES)))
        yes = draw(st.sampled_from(["true", "true, long"]))
        other = draw(st.sampled_from(["false", "a revert", "any"]))
        types: dict[int, str] = {}
        for module_type in (1, 2, 3, 4, 5, 6, 8, 9):
            if module_type in ROLES[role]:
                types[module_type] = yes
            elif other == "a revert":
                types[module_type] = "a revert"
            elif other == "any":
                forms = [f for f in FORMS if f != "all gas burnt"]
                types[module_type] = draw(st.sampled_from([*["false"] * 6, *forms]))
        initialized = draw(
            st.sampled_from(["true", "true, long", "false", "nothing", "a revert", "one byte"])
        )
        drawn.append(Target(types, initialized))
    if draw(st.sampled_from([False, False, False, True])):
        index = draw(st.integers(0, count - 1))
        question = draw(st.sampled_from([1, 2, 3, 8, 9, 0]))  # 0: isInitialized
        chosen = drawn[index]
        drawn[index] = (
            Target(chosen.types, "all gas burnt")
            if question == 0
            else Target({**chosen.types, question: "all gas burnt"}, chosen.initialized)
        )
    return drawn


@dataclass(frozen=True)
class OnAnvil:
    """The file's anvil, the module, the targets answering as set, an ordinary contract and the deployer."""

    chain: AnvilChain
    module: AnvilContract
    answering: tuple[AnvilContract, ...]
    ordinary: str
    deployer: str

    @property
    def no_code(self) -> str:
        """A target without code (an EOA's address)."""
        return to_address(keccak(b"keyscope install target without code")[12:])

    def targets(self) -> tuple[str, ...]:
        """Every target a permission may name: the answering ones, the ordinary contract, the address without
        code."""
        return (*(a.address for a in self.answering), self.ordinary, self.no_code)


@pytest.fixture(scope="module")
def on_anvil(project):
    with anvil_chain() as chain:
        deployer = chain.accounts[0]
        module = chain.deploy(project.SessionKeyValidator, sender=deployer)
        container = ContractContainer(compile_contract_type(TYPE_ANSWERS, "TypeAnswers"))
        answering = tuple(chain.deploy(container, sender=deployer) for _ in range(3))
        ordinary = chain.deploy(project.RecordingTarget, sender=deployer).address
        yield OnAnvil(chain, module, answering, ordinary, deployer)


def set_answers(on_anvil: OnAnvil, targets: list[Target]) -> None:
    """Set each answering contract to answer as ``targets`` says (one transaction each)."""
    for contract, target in zip(on_anvil.answering, targets, strict=True):
        types = sorted(target.types)
        how, data = FORMS[target.initialized]
        contract.set.transact(
            types,
            [FORMS[target.types[t]][0] for t in types],
            [FORMS[target.types[t]][1] for t in types],
            how,
            data,
            sender=on_anvil.deployer,
        )


def module_verdict(on_anvil: OnAnvil, account: str, session: Session) -> tuple[int, str, int] | None:
    """``(permission index, target, module type)`` of the module's ``PermissionTargetIsModule`` when ``account`` (an
    address without code) enables ``session``, None when it enables it."""
    return install_verdict(on_anvil.chain, on_anvil.module, account, session)


def model(answers: dict[str, Target], session: Session) -> tuple[int, str, int] | None:
    """The module's refusal as its documentation says it asks: per permission, a target not named before is asked
    the types of :data:`ASKED` in order (a type it gives no bool for is not its type); then, for a permission with
    a selector, whether the target is a fallback handler (type 3). Safe's question goes to the account, which has
    no code to answer it. A target that is no answering contract answers nothing."""
    named: set[str] = set()
    for index, permission in enumerate(session.permissions):
        target = to_address(permission.target)
        answering = answers.get(target)
        if target not in named:
            named.add(target)
            for module_type in ASKED:
                if answering is not None and says_yes(answering.form(module_type)):
                    return index, target, module_type
        selector = bytes(permission.selector)
        if selector != bytes(4) and answering is not None and says_yes(answering.form(3)):
            return index, target, 3
    return None


def sdk_model(answers: dict[str, Target], targets: list[str]) -> tuple[str, str] | None:
    """What :func:`~keyscope.accounts.modules.claimed_module` says, as documented: the first target that answers a
    well-formed true to ``isInitialized(account)`` and to ``isModuleType`` of one of its types, in their order."""
    for target in targets:
        answering = answers.get(target)
        if answering is None or not says_yes(answering.initialized):
            continue
        for number, name in CLAIMED_MODULE_TYPES.items():
            if says_yes(answering.form(number)):
                return target, name
    return None


def generated_sessions(targets: tuple[str, ...]) -> st.SearchStrategy[Session]:
    """Sessions of 1 to 4 (target, selector) permissions on ``targets``, selector zero (a plain transfer) among
    them."""
    pairs = st.lists(
        st.tuples(st.sampled_from(targets), st.sampled_from(SELECTORS)), min_size=1, max_size=4, unique=True
    )
    return pairs.map(
        lambda chosen: Session(
            session_key=KEY, permissions=tuple(Permission(target=t, selector=s) for t, s in chosen)
        )
    )


TALLY: Counter[str] = Counter()
NAMES = {name: number for number, name in CLAIMED_MODULE_TYPES.items()}
"""Each type's number by the name :func:`~keyscope.accounts.modules.claimed_module` gives it."""


def test_a_grant_at_install_on_an_account_without_code_is_judged_as_its_targets_say(on_anvil):
    """The property on generated targets and sessions; then, that the examples reached each verdict."""
    TALLY.clear()
    node = RpcChain(on_anvil.chain.url)
    answering = [a.address for a in on_anvil.answering]
    all_targets = on_anvil.targets()

    @settings(max_examples=EXAMPLES, database=None, **ON_CHAIN)
    @given(
        targets=targets_answers(len(answering)),
        session=generated_sessions(all_targets),
        account=st.integers(1, 2**64),
    )
    def agree(targets: list[Target], session: Session, account: int) -> None:
        address = to_address(keccak(b"keyscope install account %d" % account)[12:])
        set_answers(on_anvil, targets)
        answers = dict(zip(answering, targets, strict=True))
        on_chain = module_verdict(on_anvil, address, session)
        expected = model(answers, session)
        shown = (
            f"targets {answers}\npermissions {[(p.target, p.selector.hex()) for p in session.permissions]}"
        )
        assert on_chain == expected, f"the module says {on_chain}, the model {expected}\n{shown}"
        named = list(dict.fromkeys(to_address(p.target) for p in session.permissions))
        sdk = claimed_module(node, address, named)
        assert sdk == sdk_model(answers, named), f"the SDK says {sdk}\n{shown}"
        if sdk is not None:
            target, name = sdk
            number = NAMES[name]
            with_selector = any(
                to_address(p.target) == target and bytes(p.selector) != bytes(4) for p in session.permissions
            )
            if number in ASKED or (number == 3 and with_selector):
                assert on_chain is not None, (
                    f"the SDK refuses {target} as a {name}; the module enables\n{shown}"
                )
        if on_chain is not None:
            TALLY[f"refused: {CLAIMED_MODULE_TYPES[on_chain[2]]}"] += 1
        TALLY[
            "both refuse"
            if on_chain and sdk
            else "the module refuses, the SDK would sign"
            if on_chain
            else "the SDK refuses earlier, the module enables"
            if sdk
            else "both enable"
        ] += 1

    for role in ROLES:
        first = Target(dict.fromkeys(ROLES[role], "true"), "true")
        agree = example(
            targets=[first, Target({}, "false"), Target({}, "false")],
            session=Session(
                session_key=KEY, permissions=(Permission(target=answering[0], selector=SELECTORS[0]),)
            ),
            account=1,
        )(agree)
    try:
        agree()
    finally:
        node.close()
    print("\ninstall targets:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    reached = [f"refused: {CLAIMED_MODULE_TYPES[t]}" for t in (*ASKED, 3)]
    reached += [
        "both refuse",
        "the module refuses, the SDK would sign",
        "the SDK refuses earlier, the module enables",
    ]
    missing = [name for name in [*reached, "both enable"] if not TALLY[name]]
    assert not missing, f"no example met {missing}: {TALLY}"


STRICT_VALIDATOR = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// A validator that takes its questions in their canonical form only: `isModuleType(uint256)` with 36 bytes of
/// calldata (a longer one is refused, as a strict decoder refuses it), and `isInitialized(address)` answered yes.
contract StrictCalldataValidator {
    function isModuleType(uint256 moduleType) external pure returns (bool) {
        assembly ("memory-safe") {
            if iszero(eq(calldatasize(), 36)) { revert(0, 0) }
        }
        return moduleType == 1;
    }

    function isInitialized(address) external pure returns (bool) {
        return true;
    }
}
"""


def test_a_validator_answering_only_the_canonical_type_question_is_refused_at_install(on_anvil):
    """Found by this file's targets: the module asks a target ``isModuleType(t)`` in the buffer of the account's
    ``isModuleInstalled(t, target, context)`` question, so with 132 bytes of calldata (196 for the hook's second
    question, 164 for the fallback handler's), where the selector and ``t`` take 36; its documentation says the
    words after ``t`` are ignored. A validator whose ``isModuleType`` refuses calldata longer than its arguments
    (written in assembly or another language's strict decoder) answers nothing to the module, which takes it for no
    module, and enables a grant at install on it, while the SDK, asking the question as ERC-7579 writes it, finds a
    validator initialised for the account. Failed so (the grant was enabled); the module now asks the target with 36
    bytes of calldata."""
    container = ContractContainer(compile_contract_type(STRICT_VALIDATOR, "StrictCalldataValidator"))
    validator = on_anvil.chain.deploy(container, sender=on_anvil.deployer).address
    account = to_address(keccak(b"keyscope install account strict validator")[12:])
    node = RpcChain(on_anvil.chain.url)
    try:
        assert claimed_module(node, account, [validator]) == (validator, "validator")
    finally:
        node.close()
    session = Session(session_key=KEY, permissions=(Permission(target=validator, selector=SELECTORS[1]),))
    assert module_verdict(on_anvil, account, session) == (0, validator, 1), (
        "the module enabled a grant at install on a validator that answers only the canonical isModuleType question"
    )
