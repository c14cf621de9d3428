"""The thirteenth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it
let pass in the module questions the SDK asks an account, the checks of the owner's signature on a deployed account
and on one created for an ``eth_call``, the session signatures' headers, a generic ERC-7579 account's creation, which
grants carry the account's creation, and a bundler's refusals said as the SDK's errors.

Pinned here, without a chain (a stub node stands for the account, its modules, the factory or the node running the
deployless check):

* the module questions (``keyscope.accounts.modules``): which call permissions the fallback handler question is asked
  for, Safe7579's hook context and Safe question in the batch, a validator question answered with no bool, the hook
  question asked again with Safe7579's context, each module type and Safe's question asked one by one and of every
  target, a fallback handler only for a well-formed true, a node's own refusal raised; a target claiming to be a
  module of any type ERC-7579 or Kernel names and initialised for this account, the first of several (attack 266's
  defence, the SDK's alone: threat-model row 403);
* the owner's signature on a deployed account (``keyscope.accounts.verify``): a validator question with no answer,
  the account asked from the session module, keyscope's bare-signature rule for keyscope's account only, a node
  refusing the module as a sender for gas, the remedy for a signature another adapter framed;
* on an account without code (``keyscope.accounts.deployless``, ``keyscope.grant_signature``): the magic value only
  from a returned word, the checker's reverts in words, keyscope's account judged by its owner and module, a factory
  without data not asked, an EOA's grant signed by its own key;
* the session signatures' headers and sign-in line (``keyscope.erc1271``), the generic adapter's creation data
  (``erc7579``), Safe7579's grants carrying no creation (``sessions_can_create``), and the bundler's refusals (the
  session's end, a limit period's last second, a start the session does not have, a revert only for -32521).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from keyscope.accounts import (
    ERC7579AccountKind,
    KernelAccountKind,
    KeyscopeAccountKind,
    KeyscopeDelegateKind,
    Safe7579AccountKind,
)
from keyscope.accounts.deployless import DeploylessAnswer, _not_created
from keyscope.accounts.modules import (
    FALLBACK_HANDLER,
    GLOBAL_HOOK_CONTEXT,
    SAFE_MODULE,
    UNANSWERED,
    claimed_module,
    fallback_handler,
    fallback_routes,
    module_of,
    module_questions,
    no_answer,
    read_asking_modules,
    safe_module,
)
from keyscope.accounts.verify import (
    _refused,
    unfunded_sender,
    validator_installed,
    verify_owner_signature,
    verify_owner_validator,
)
from keyscope.bundler_refusals import describe_call, session_refusal, target_refusal
from keyscope.chain import Chain
from keyscope.endpoints import Endpoints
from keyscope.erc1271 import Signer, encode_sign_in_signature
from keyscope.errors import (
    AccountSetupError,
    BadInputError,
    BundlerRejectedError,
    CallRevertedError,
    InvalidGrantSignatureError,
    LimitPeriodEndingError,
    SessionExpiredError,
    SessionNotYetValidError,
    TargetRevertedError,
    UnsupportedAccountError,
)
from keyscope.execution import Call
from keyscope.grant_signature import _check_undeployed
from keyscope.hexutil import keccak, to_address
from keyscope.owner import Owner
from keyscope.rpc import JsonRpcError
from keyscope.selectors import IS_INITIALIZED, IS_MODULE_INSTALLED, IS_MODULE_TYPE, IS_VALID_SIGNATURE, SIGNER
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner, try_recover

ACCOUNT = to_address("0x" + "ac" * 20)
TARGET = to_address("0x" + "7a" * 20)
OTHER = to_address("0x" + "07" * 20)
THIRD = to_address("0x" + "33" * 20)
APPROVE = keccak(b"approve(address,uint256)")[:4]
IS_MODULE_ENABLED = keccak(b"isModuleEnabled(address)")[:4]
TRUE = abi_encode(["bool"], [True])
FALSE = abi_encode(["bool"], [False])
REVERTS = None
"""An answer that is a revert."""

Question = tuple[int, str, bytes]
"""``isModuleInstalled(type, target, context)``'s arguments; type 0 stands for Safe's ``isModuleEnabled(target)``."""

_TYPES = {
    1: "validator",
    2: "executor",
    3: "fallback handler",
    4: "hook",
    5: "policy (Kernel)",
    6: "signer (Kernel)",
    8: "pre-validation hook (ERC-1271)",
    9: "pre-validation hook (ERC-4337)",
}
"""ERC-7579's four module types, Kernel's two and ERC-7579's two pre-validation hooks, written out."""


class _Account:
    """An account (and the targets beside it) answering from tables: ``answers`` maps a module question to its
    answer (``REVERTS`` to revert), anything not in it answers ``default``; ``claims`` maps a target to the answers
    it gives, of itself, to ``isInitialized(account)`` and ``isModuleType(type)``. Every question is recorded."""

    def __init__(
        self,
        answers: dict[Question, bytes | None] | None = None,
        *,
        default: bytes | None = FALSE,
        claims: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.answers = answers or {}
        self.default = default
        self.claims = claims or {}
        self.asked: list[tuple[str, Question | bytes]] = []

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        to = to_address(to)
        if to != ACCOUNT:
            return self._claim(to, data)
        question: Question
        if data[:4] == IS_MODULE_INSTALLED:
            number, target, context = abi_decode(["uint256", "address", "bytes"], data[4:])
            question = (number, to_address(target), bytes(context))
        elif data[:4] == IS_MODULE_ENABLED:
            (target,) = abi_decode(["address"], data[4:])
            question = (0, to_address(target), b"")
        else:
            raise AssertionError(f"an unexpected question 0x{data.hex()}")
        self.asked.append((to, question))
        answer = self.answers.get(question, self.default)
        if answer is None:
            raise CallRevertedError("eth_call", to, b"", "no reason")
        return answer

    def _claim(self, to: str, data: bytes) -> bytes:
        self.asked.append((to, data))
        claims = self.claims.get(to, {})
        if data[:4] == IS_INITIALIZED:
            (account,) = abi_decode(["address"], data[4:])
            return TRUE if to_address(account) in claims.get("initialised", ()) else FALSE
        if data[:4] == IS_MODULE_TYPE:
            (number,) = abi_decode(["uint256"], data[4:])
            return TRUE if number in claims.get("types", ()) else FALSE
        raise CallRevertedError("eth_call", to, b"", "no such function")


def _chain(account: _Account) -> Chain:
    return cast(Chain, account)


class _Call:
    def __init__(self, target: str, selector: bytes) -> None:
        self.target = target
        self.selector = selector


# -- the fallback handler question ----------------------------------------------------------------------------------


def test_the_fallback_handler_question_is_asked_for_nonzero_selectors_on_other_targets() -> None:
    """As the module asks it: not for a plain transfer's zero selector, not for the account itself (refused before),
    each pair once, in the permissions' order."""
    permissions = [
        _Call(TARGET, bytes(4)),
        _Call(ACCOUNT, APPROVE),
        _Call(OTHER, APPROVE),
        _Call(TARGET, APPROVE),
        _Call(OTHER, APPROVE),
    ]
    assert fallback_routes(permissions, ACCOUNT) == [(OTHER, APPROVE), (TARGET, APPROVE)]


# -- the batch of questions -----------------------------------------------------------------------------------------


def test_safe7579_is_asked_the_hook_question_with_its_context_and_safe_s_question_in_the_batch() -> None:
    """Safe7579 reverts on a hook question with an empty context, and answers Safe's ``isModuleEnabled``: both are in
    its batch as the module asks them; other accounts are asked every question with an empty context, and Safe's
    question one by one once the batch finds nothing."""
    assert [_asked(data) for _, data in module_questions(Safe7579AccountKind(), ACCOUNT, [TARGET])] == [
        (1, TARGET, b""),
        (2, TARGET, b""),
        (4, TARGET, GLOBAL_HOOK_CONTEXT),
        (8, TARGET, b""),
        (9, TARGET, b""),
        (0, TARGET, b""),
    ]
    for kind in (ERC7579AccountKind(), KernelAccountKind()):
        assert [_asked(data) for _, data in module_questions(kind, ACCOUNT, [TARGET])] == [
            (number, TARGET, b"") for number in (1, 2, 4, 8, 9)
        ]


def _asked(data: bytes) -> Question:
    if data[:4] == IS_MODULE_ENABLED:
        return (0, to_address(abi_decode(["address"], data[4:])[0]), b"")
    number, target, context = abi_decode(["uint256", "address", "bytes"], data[4:])
    return (number, to_address(target), bytes(context))


def _verdict(account: _Account, kind: Any = None, targets: tuple[str, ...] = (TARGET,), **kwargs: Any) -> Any:
    found = read_asking_modules(
        _chain(account), kind or ERC7579AccountKind(), ACCOUNT, targets, **kwargs
    ).verdict()
    return None if found is None else (found.target, found.module, found.selector)


@pytest.mark.parametrize(
    "answer",
    [b"", b"\x01" * 31, abi_encode(["uint256"], [2]), REVERTS],
    ids=["nothing", "a short word", "a word above 1", "a revert"],
)
def test_a_validator_question_answered_with_no_bool_is_refused_as_unanswered(answer: bytes | None) -> None:
    """The module refuses a target the account gives no bool for when asked whether it is a validator
    (``ModuleQueryUnanswered``), in the batch and one by one; any other type's question answered so says no."""
    assert _verdict(_Account({(1, TARGET, b""): answer})) == (TARGET, UNANSWERED, None)
    assert module_of(_chain(_Account({(1, TARGET, b""): answer})), ACCOUNT, TARGET) == UNANSWERED
    for number in (2, 8, 9):
        assert _verdict(_Account({(number, TARGET, b""): answer})) is None
    assert _verdict(_Account({(1, TARGET, b""): TRUE})) == (TARGET, "validator", None)


@pytest.mark.parametrize("empty", [b"", REVERTS], ids=["no bool", "a revert"])
def test_a_hook_question_unanswered_is_asked_again_with_safe7579_s_context(empty: bytes | None) -> None:
    """An account answering the hook question only with Safe7579's context (hook type GLOBAL, no selector) has the
    target installed as a hook: the module asks it again so; the SDK too, in the batch and one by one."""
    answers = {(4, TARGET, b""): empty, (4, TARGET, GLOBAL_HOOK_CONTEXT): TRUE}
    assert _verdict(_Account(answers)) == (TARGET, "hook", None)
    assert module_of(_chain(_Account(answers)), ACCOUNT, TARGET) == "hook"
    assert _verdict(_Account({(4, TARGET, b""): empty})) is None


@pytest.mark.parametrize("number", [2, 4, 8, 9])
def test_each_module_type_asked_one_by_one_is_found(number: int) -> None:
    """Asked one by one (an account reverting on some question), a target is each type it says yes to, and no type
    it says no to."""
    account = _Account({(number, TARGET, b""): TRUE, (4, OTHER, b""): REVERTS})
    assert _verdict(account, targets=(OTHER, TARGET)) == (TARGET, _TYPES[number], None)
    assert module_of(_chain(_Account({(number, TARGET, b""): TRUE})), ACCOUNT, TARGET) == _TYPES[number]
    assert module_of(_chain(_Account()), ACCOUNT, TARGET) is None


def test_a_safe_module_is_found_one_by_one_for_every_target_and_kind_that_may_have_one() -> None:
    """Safe's ``isModuleEnabled``: asked of each target in turn (a revert is no) on every kind whose code may
    answer it (a generic ERC-7579 account may be a Safe), in Safe7579's batch, and one by one."""
    answers: dict[Question, bytes | None] = {(0, OTHER, b""): REVERTS, (0, THIRD, b""): TRUE}
    targets = (TARGET, OTHER, THIRD)
    assert _verdict(_Account(answers), targets=targets) == (THIRD, SAFE_MODULE, None)
    assert safe_module(_chain(_Account(answers)), ERC7579AccountKind(), ACCOUNT, targets) == (
        THIRD,
        SAFE_MODULE,
    )
    assert _verdict(_Account({(0, THIRD, b""): TRUE}), Safe7579AccountKind(), targets) == (
        THIRD,
        SAFE_MODULE,
        None,
    )
    assert module_of(_chain(_Account({(0, TARGET, b""): TRUE})), ACCOUNT, TARGET) == SAFE_MODULE
    # a kind whose code has no such question is not asked it
    kernel = _Account({(0, THIRD, b""): TRUE})
    assert _verdict(kernel, KernelAccountKind(), targets) is None
    assert all(question[0] != 0 for _, question in kernel.asked)
    assert _verdict(_Account({(0, TARGET, b""): FALSE}), Safe7579AccountKind()) is None


def test_a_fallback_handler_is_found_only_for_a_well_formed_true() -> None:
    """The module refuses a call permission whose selector the account routes to the target (``isModuleInstalled(3,
    target, abi.encode(selector))`` true); any other answer says no, in the batch and one by one."""
    context = APPROVE + bytes(28)
    routed = [(TARGET, APPROVE)]
    assert _verdict(_Account({(3, TARGET, context): TRUE}), fallbacks=routed) == (
        TARGET,
        FALLBACK_HANDLER,
        APPROVE,
    )
    for answer in (FALSE, b"", abi_encode(["uint256"], [2]), REVERTS):
        assert _verdict(_Account({(3, TARGET, context): answer}), fallbacks=routed) is None
        # the hook question reverting: every question asked one by one
        one_by_one = _Account({(3, TARGET, context): answer, (4, TARGET, b""): REVERTS})
        assert _verdict(one_by_one, fallbacks=routed) is None
    one_by_one = _Account({(3, TARGET, context): TRUE, (4, TARGET, b""): REVERTS})
    assert _verdict(one_by_one, fallbacks=routed) == (TARGET, FALLBACK_HANDLER, APPROVE)


def test_a_batch_s_answers_are_read_at_their_own_places() -> None:
    """The caller's reads, then the module questions, then the fallback questions, then the optional ones: an
    answer read one place off finds the wrong target or none."""
    account = _Account({(2, OTHER, b""): TRUE})
    assert _verdict(account, targets=(TARGET, OTHER)) == (OTHER, "executor", None)
    assert _verdict(_Account({(9, TARGET, b""): TRUE}), targets=(TARGET, OTHER)) == (
        TARGET,
        _TYPES[9],
        None,
    )


# -- a target saying it is a module of the account ------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(_TYPES))
def test_a_target_initialised_for_the_account_and_of_any_module_type_is_a_claimed_module(number: int) -> None:
    """Asked of the targets themselves: initialised for this account (not another), of any type ERC-7579 or Kernel
    names; the first such target of several."""
    claims = {
        TARGET: {"initialised": (OTHER,), "types": (number,)},
        OTHER: {"initialised": (ACCOUNT,), "types": ()},
        THIRD: {"initialised": (ACCOUNT,), "types": (number,)},
    }
    chain = _chain(_Account(claims=claims))
    assert claimed_module(chain, ACCOUNT, [TARGET, OTHER, THIRD]) == (THIRD, _TYPES[number])
    assert claimed_module(chain, ACCOUNT, [TARGET, OTHER]) is None


def test_a_target_that_gives_no_answer_to_is_initialised_is_no_claimed_module() -> None:
    """A revert, a word above 1 or nothing from ``isInitialized`` is no; only a well-formed true asks the types."""
    chain = _chain(_Account(claims={TARGET: {"types": (1,)}}))
    assert claimed_module(chain, ACCOUNT, [TARGET], [b""]) is None
    assert claimed_module(chain, ACCOUNT, [TARGET], [abi_encode(["uint256"], [2])]) is None
    assert claimed_module(chain, ACCOUNT, [TARGET], [TRUE]) == (TARGET, "validator")


# -- a generic ERC-7579 account's creation --------------------------------------------------------------------------

OWNER = to_address("0x" + "0a" * 20)
OWNER_VALIDATOR = to_address("0x" + "0f" * 20)
MODULE = to_address("0x" + "5e" * 20)
FACTORY = to_address("0x" + "fa" * 20)
BOOTSTRAP = to_address("0x" + "b0" * 20)
PREDICTED = to_address("0x" + "9d" * 20)
MODULE_INIT = b"\x01\x02\x03"
SALT = 7
ZERO = to_address("0x" + "00" * 20)


class _Factory:
    """A node holding the reference factory: every call is recorded; ``getAddress`` answers :data:`PREDICTED`."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bytes]] = []

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        self.asked.append((to_address(to), bytes(data)))
        return abi_encode(["address"], [PREDICTED])


def test_a_generic_account_is_created_through_the_bootstrap_with_the_owner_validator_and_the_module() -> None:
    """The reference factory's ``createAccount(salt, abi.encode(bootstrap, initMSA(validators, executors, hook,
    fallbacks)))``: the owner validator given the owner, then the session module with its init data, as validators
    (no executor, hook or fallback); the salt; the address asked with ``getAddress`` of the same arguments (attack
    381)."""
    chain = _Factory()
    adapter = ERC7579AccountKind(owner_validator=OWNER_VALIDATOR, factory=FACTORY, bootstrap=BOOTSTRAP)
    deployment = adapter.deployment(cast(Chain, chain), OWNER, [(1, MODULE, MODULE_INIT)], salt=SALT)
    assert deployment is not None
    assert (deployment.factory, deployment.address) == (FACTORY, PREDICTED)
    assert deployment.factory_data[:4] == keccak(b"createAccount(bytes32,bytes)")[:4]
    assert chain.asked == [(FACTORY, keccak(b"getAddress(bytes32,bytes)")[:4] + deployment.factory_data[4:])]
    salt, init_code = abi_decode(["bytes32", "bytes"], deployment.factory_data[4:])
    assert int.from_bytes(salt, "big") == SALT
    bootstrap, call = abi_decode(["address", "bytes"], init_code)
    assert to_address(bootstrap) == BOOTSTRAP
    assert (
        call[:4]
        == keccak(b"initMSA((address,bytes)[],(address,bytes)[],(address,bytes),(address,bytes)[])")[:4]
    )
    validators, executors, hook, fallbacks = abi_decode(
        ["(address,bytes)[]", "(address,bytes)[]", "(address,bytes)", "(address,bytes)[]"], call[4:]
    )
    assert [(to_address(a), bytes(d)) for a, d in validators] == [
        (OWNER_VALIDATOR, bytes.fromhex(OWNER[2:])),
        (MODULE, MODULE_INIT),
    ]
    assert executors == () and fallbacks == () and (to_address(hook[0]), hook[1]) == (ZERO, b"")
    other = adapter.deployment(cast(Chain, _Factory()), OWNER, [(1, MODULE, MODULE_INIT)], salt=SALT + 1)
    assert other is not None and other.factory_data != deployment.factory_data


# -- the owner's signature on a deployed account --------------------------------------------------------------------

MAGIC = bytes.fromhex("1626ba7e") + bytes(28)
DIGEST = keccak(b"a session grant")
OWNER_KEY = LocalSigner.generate()


class _Deployed:
    """A deployed account with code: ``magic_from`` is the sender it answers ``isValidSignature`` with the magic value
    (``"any"``: every sender), else it answers ``0xffffffff``; ``installed`` are its validators (``REVERTS``: it
    reverts on the question); ``signer`` what ``signer()`` answers; ``unfunded`` makes the node refuse a call with a
    sender for gas (as py-evm does for a sender without ETH)."""

    def __init__(
        self,
        *,
        magic_from: str | None = None,
        installed: tuple[str, ...] | None = (),
        signer: str | None = None,
        unfunded: bool = False,
        retried: bytes | None = None,
    ) -> None:
        self.magic_from = magic_from
        self.installed = installed
        self.signer = signer
        self.unfunded = unfunded
        self.retried = retried

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00"

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if data[:4] == IS_MODULE_INSTALLED:
            if self.installed is None:
                raise CallRevertedError("eth_call", to, b"", "no reason")
            _, validator, _ = abi_decode(["uint256", "address", "bytes"], data[4:])
            return TRUE if to_address(validator) in self.installed else FALSE
        if data[:4] == SIGNER:
            if self.signer is None:
                raise CallRevertedError("eth_call", to, b"", "no reason")
            return abi_encode(["address"], [self.signer])
        if data[:4] == IS_VALID_SIGNATURE:
            if self.unfunded and sender is not None:
                raise JsonRpcError("eth_call", -32000, "insufficient funds for gas * price + value")
            if self.unfunded and self.retried is not None:
                return self.retried
            if self.unfunded:
                raise CallRevertedError("eth_call", to, b"", "no reason")
            if self.magic_from == "any" or (sender is not None and to_address(sender) == self.magic_from):
                return MAGIC
            return bytes.fromhex("ffffffff") + bytes(28)
        raise CallRevertedError("eth_call", to, b"", "no such function")


def _verify(account: _Deployed, kind: Any, signature: bytes | None = None) -> None:
    verify_owner_signature(
        cast(Chain, account), kind, ACCOUNT, MODULE, DIGEST, signature or OWNER_KEY.sign_hash(DIGEST)
    )


def test_a_validator_question_with_no_answer_is_no_refusal_and_a_no_is() -> None:
    """``isModuleInstalled`` answered with no bool (a revert, a short word) says nothing: the owner validator is not
    said missing then; a no says it is."""
    for account in (_Deployed(installed=None), _Short()):
        assert validator_installed(cast(Chain, account), ACCOUNT, OWNER_VALIDATOR) is None
        verify_owner_validator(
            cast(Chain, account), ERC7579AccountKind(owner_validator=OWNER_VALIDATOR), ACCOUNT
        )
    assert validator_installed(cast(Chain, _Deployed(installed=(OWNER_VALIDATOR,))), ACCOUNT, OWNER_VALIDATOR)
    with pytest.raises(AccountSetupError, match=f"the owner validator {OWNER_VALIDATOR} is not installed"):
        verify_owner_validator(
            cast(Chain, _Deployed()), ERC7579AccountKind(owner_validator=OWNER_VALIDATOR), ACCOUNT
        )


class _Short(_Deployed):
    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        return b"\x01" * 31 if data[:4] == IS_MODULE_INSTALLED else super().call(to, data, sender=sender)


def test_the_account_is_asked_from_the_session_module_and_only_the_magic_value_accepts() -> None:
    """The module asks the account ``isValidSignature`` as the caller, and a validator may answer per caller: asked
    from the module, the magic value accepts, anything else refuses."""
    kind = ERC7579AccountKind(owner_validator=OWNER_VALIDATOR)
    _verify(_Deployed(magic_from=MODULE, installed=(OWNER_VALIDATOR, MODULE)), kind)
    with pytest.raises(AccountSetupError, match="refuses the owner's signature of the session grant"):
        _verify(_Deployed(magic_from=OTHER, installed=(OWNER_VALIDATOR, MODULE)), kind)


def test_only_keyscope_s_account_is_judged_by_its_bare_signature_rule() -> None:
    """keyscope's account takes its owner's bare signature from an installed validator: judged by that rule (the
    owner's key, the module installed). Another kind is judged by its answer, even when it has a ``signer()``."""
    account = _Deployed(installed=(OWNER_VALIDATOR, MODULE), signer=OWNER_KEY.address)
    with pytest.raises(AccountSetupError):
        _verify(account, ERC7579AccountKind(owner_validator=OWNER_VALIDATOR))
    _verify(account, KeyscopeAccountKind())
    with pytest.raises(AccountSetupError, match="does not have the session module"):
        _verify(_Deployed(installed=(), signer=OWNER_KEY.address), KeyscopeAccountKind())
    with pytest.raises(AccountSetupError):
        _verify(_Deployed(installed=(MODULE,), signer=OTHER), KeyscopeAccountKind())


def test_a_node_refusing_the_module_as_a_sender_for_gas_asks_from_its_own_sender() -> None:
    """py-evm will not run a call from the module, which holds no ETH: asked again from the node's sender. An account
    with an owner validator (which may answer per caller) is then refused by nothing; one checking its owner itself
    is refused by its answer."""
    with_validator = ERC7579AccountKind(owner_validator=OWNER_VALIDATOR)
    itself = _Itself()
    installed = (OWNER_VALIDATOR, MODULE)
    _verify(_Deployed(unfunded=True, installed=installed), with_validator)  # a revert
    _verify(_Deployed(unfunded=True, installed=installed, retried=bytes(32)), with_validator)
    _verify(_Deployed(unfunded=True, installed=installed, retried=MAGIC), itself)
    with pytest.raises(AccountSetupError, match="reverted"):
        _verify(_Deployed(unfunded=True, installed=installed), itself)
    with pytest.raises(AccountSetupError, match="answered 0x00000000"):
        _verify(_Deployed(unfunded=True, installed=installed, retried=bytes(32)), itself)
    assert unfunded_sender(JsonRpcError("eth_call", -32000, "insufficient funds for gas * price + value"))
    assert unfunded_sender(JsonRpcError("eth_call", -32000, "sender cannot afford the transaction"))
    assert not unfunded_sender(JsonRpcError("eth_call", -32000, "execution reverted"))


class _Itself(ERC7579AccountKind):
    """An account checking its owner itself (no owner validator), not keyscope's."""

    name = "itself"


def test_a_signature_framed_by_another_adapter_is_said_to_need_a_grant_with_the_account_s_own() -> None:
    described = "the account"
    kind = ERC7579AccountKind(owner_validator=OWNER_VALIDATOR)
    other = str(_refused(described, None, ACCOUNT, kind, "answered 0xffffffff", "kernel"))
    assert "the owner must grant the session again with the account's own adapter" in other
    same = str(_refused(described, None, ACCOUNT, kind, "answered 0xffffffff", kind.name))
    assert "give the account's own adapter and owner validator" in same


# -- the owner's signature on an account created for one eth_call --------------------------------------------------


def test_the_deployless_answer_is_the_magic_value_only_when_is_valid_signature_returned_a_word() -> None:
    """A revert's data that starts with the magic value is no acceptance; nor is a return shorter than a word."""
    assert DeploylessAnswer(True, MAGIC, ()).magic == MAGIC[:4]
    assert DeploylessAnswer(False, MAGIC, ()).magic == b""
    assert DeploylessAnswer(True, MAGIC[:4], ()).magic == b""
    assert DeploylessAnswer(True, MAGIC[:31], ()).magic == b""


def _error(name: str, types: list[str], values: list[Any]) -> bytes:
    return keccak(name.encode())[:4] + abi_encode(types, values)


def test_the_deployless_check_s_reverts_say_which_call_failed_and_why() -> None:
    """The factory call's revert with its reason, or without; the factory creating the account without code, no
    account, or another account than the grant's (the grant request's factory data is not this account's)."""
    failed = "FactoryCallFailed(address,bytes)"
    reason = keccak(b"Error(string)")[:4] + abi_encode(["string"], ["only the EntryPoint"])
    said = str(_not_created(_error(failed, ["address", "bytes"], [FACTORY, reason]), ACCOUNT, FACTORY))
    assert f"the call of the factory {FACTORY} with the grant request's factory_data reverted with" in said
    assert "only the EntryPoint" in said
    said = str(_not_created(_error(failed, ["address", "bytes"], [FACTORY, b""]), ACCOUNT, FACTORY))
    assert "reverted without a reason, or the factory has no code" in said
    not_created = "AccountNotCreated(address,address)"
    said = str(
        _not_created(_error(not_created, ["address", "address"], [ACCOUNT, ACCOUNT]), ACCOUNT, FACTORY)
    )
    assert "answers its address but leaves it without code" in said
    said = str(_not_created(_error(not_created, ["address", "address"], [ACCOUNT, ZERO]), ACCOUNT, FACTORY))
    assert "answers no address" in said
    said = str(_not_created(_error(not_created, ["address", "address"], [ACCOUNT, OTHER]), ACCOUNT, FACTORY))
    assert f"creates the account {OTHER}, not {ACCOUNT}" in said and "AA14" in said


class _Creating:
    """A node running the deployless check: it answers with ``answered``, ``answer`` and ``reads`` (what the created
    account answered ``signer()`` and ``isModuleInstalled(1, module, 0x)``); the check's arguments are recorded."""

    def __init__(self, answer: bytes, reads: tuple[bytes, ...] = (), *, answered: bool = True) -> None:
        self.result = abi_encode(["bool", "bytes", "bytes[]"], [answered, answer, list(reads)])
        self.arguments: bytes = b""

    def call_creation(self, code: bytes) -> bytes:
        self.arguments = code
        return self.result


def _grant(**changes: Any) -> Any:
    fields = {
        "account": ACCOUNT,
        "factory": FACTORY,
        "factory_data": b"\xfa\xc7",
        "digest": DIGEST,
        "module": MODULE,
        "session_id": bytes(32),
        "chain_id": 1,
        **changes,
    }
    return SimpleNamespace(**fields)


def _check(node: _Creating, kind: Any, signature: bytes, **changes: Any) -> None:
    grant = _grant(**changes)
    _check_undeployed(
        grant,
        signature,
        kind=kind,
        endpoints=cast(Endpoints, SimpleNamespace(chain=node)),
        recovered=try_recover(DIGEST, signature),
    )


def test_an_account_created_for_the_check_accepts_only_with_the_magic_value() -> None:
    """What the account answers ``isValidSignature`` once its factory data created it: only the magic value accepts a
    signature checked by the account's answer; a revert, another word, nothing refuse it."""
    signature = OWNER_KEY.sign_hash(DIGEST)
    kind = ERC7579AccountKind(owner_validator=OWNER_VALIDATOR)
    _check(_Creating(MAGIC), kind, signature)
    for refused in (_Creating(bytes(32)), _Creating(MAGIC, answered=False), _Creating(b"")):
        with pytest.raises(InvalidGrantSignatureError, match="created as its first operation creates it"):
            _check(refused, kind, signature)


def test_keyscope_s_account_created_for_the_check_is_judged_by_its_owner_and_its_module() -> None:
    """keyscope's account, asked by no validator, answers no to its owner's bare signature: the check applies the
    account's rule to what it read, ``signer()`` as an address word (not a stray answer), the owner's signature, and
    the session module installed (asked as a validator, type 1)."""
    signature = OWNER_KEY.sign_hash(DIGEST)
    owner_word = abi_encode(["address"], [OWNER_KEY.address])
    node = _Creating(bytes(32), (owner_word, TRUE))
    _check(node, KeyscopeAccountKind(), signature)
    # the check's constructor arguments: the account, its factory and data, the digest and signature, the reads
    assert node.arguments.endswith(
        abi_encode(
            ["address", "address", "bytes", "bytes32", "bytes", "bytes[]"],
            [ACCOUNT, FACTORY, b"\xfa\xc7", DIGEST, signature, [SIGNER, _installed_question()]],
        )
    )
    with pytest.raises(AccountSetupError, match="does not have the session module"):
        _check(_Creating(bytes(32), (owner_word, FALSE)), KeyscopeAccountKind(), signature)
    with pytest.raises(AccountSetupError, match="does not have the session module"):
        _check(
            _Creating(bytes(32), (owner_word, abi_encode(["uint256"], [2]))), KeyscopeAccountKind(), signature
        )
    with pytest.raises(InvalidGrantSignatureError):  # another key's signature
        _check(node, KeyscopeAccountKind(), LocalSigner.generate().sign_hash(DIGEST))
    stray = b"\x01" * 12 + owner_word[12:]  # high bytes set: no address word
    with pytest.raises(InvalidGrantSignatureError):
        _check(_Creating(bytes(32), (stray, TRUE)), KeyscopeAccountKind(), signature)


def _installed_question() -> bytes:
    return IS_MODULE_INSTALLED + abi_encode(["uint256", "address", "bytes"], [1, MODULE, b""])


def test_an_account_without_code_is_asked_only_with_a_factory_and_its_data() -> None:
    signature = OWNER_KEY.sign_hash(DIGEST)
    kind = ERC7579AccountKind(owner_validator=OWNER_VALIDATOR)
    for missing in ({"factory": None}, {"factory_data": b""}):
        with pytest.raises(UnsupportedAccountError, match="names no factory and factory_data"):
            _check(_Creating(MAGIC), kind, signature, **missing)


def test_an_eoa_s_grant_before_its_upgrade_is_signed_by_the_eoa_s_own_key() -> None:
    signature = OWNER_KEY.sign_hash(DIGEST)
    kind = KeyscopeDelegateKind()
    _check(_Creating(MAGIC), kind, signature, account=OWNER_KEY.address)
    with pytest.raises(InvalidGrantSignatureError, match="an EOA's grant is signed by the EOA's own key"):
        _check(_Creating(MAGIC), kind, signature, account=ACCOUNT)


# -- the session signatures' layouts --------------------------------------------------------------------------------


def test_a_sign_in_signature_s_first_line_is_at_least_one_byte_of_the_message() -> None:
    """The module reads the first line's length from 1 to the message's: a length of 0 is refused before the key
    signs, as one past the message is."""
    header = Signer(key=OWNER_KEY.address, session_id=bytes(32)).header(bytes(65), None)
    assert encode_sign_in_signature(header, b"sign in", 7).endswith(b"\x00\x07sign in")
    for length in (0, 8):
        with pytest.raises(BadInputError, match="does not fit the message"):
            encode_sign_in_signature(header, b"sign in", length)


def test_a_session_signature_s_header_takes_a_co_signature_only_where_the_session_has_a_co_signer() -> None:
    key, session_id = OWNER_KEY.address, bytes(range(32))
    signature, co_signature = bytes(65), b"\x01" * 65
    with pytest.raises(BadInputError, match="has no co-signer"):
        Signer(key=key, session_id=session_id).header(signature, co_signature)
    with pytest.raises(BadInputError, match="co-signer was removed"):
        Signer(key=key, session_id=session_id, co_signed=True).header(signature, co_signature)
    co_signed = Signer(key=key, session_id=session_id, co_signed=True, has_co_signer=True)
    for short in (None, co_signature[:64], co_signature + b"\x00"):
        with pytest.raises(BadInputError, match="co-signer's 65-byte signature"):
            co_signed.header(signature, short)
    assert co_signed.header(signature, co_signature) == b"\x02" + session_id + signature + co_signature


# -- which grants carry the account's creation ----------------------------------------------------------------------

SAFE7579 = to_address("0x" + "75" * 20)


class _CreationNode(_Factory):
    """A node holding the factories: an address question answers :data:`PREDICTED`, Safe's proxy factory's
    ``proxyCreationCode()`` a code."""

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if data[:4] == keccak(b"proxyCreationCode()")[:4]:
            return abi_encode(["bytes"], [b"\x60\x80\x60\x40"])
        return super().call(to, data, sender=sender, block=block)


@pytest.mark.parametrize("name", ["kernel", "safe7579"])
def test_a_grant_carries_the_account_s_creation_only_where_a_session_s_first_operation_may_create_it(
    name: str,
) -> None:
    """Safe7579's launchpad creates the account with an operation whose call data is ``setupSafe``, not the
    ``execute`` a session's operation is: its creation is the owner's first operation, and a grant on an account not
    created yet hands the session no factory data; Kernel's is a session's first operation's to make."""
    kind: Any = (
        KernelAccountKind(owner_validator=OWNER_VALIDATOR, factory=FACTORY)
        if name == "kernel"
        else Safe7579AccountKind(
            owner_validator=OWNER_VALIDATOR,
            safe7579=SAFE7579,
            launchpad=to_address("0x" + "1a" * 20),
            singleton=to_address("0x" + "51" * 20),
            proxy_factory=to_address("0x" + "9f" * 20),
        )
    )
    network = SimpleNamespace(
        kind_for=lambda account: kind,
        chain=_CreationNode(),
        module=MODULE,
        chain_id=1,
        entry_point=to_address("0x" + "ee" * 20),
        factory=None,
    )
    owner = Owner(cast(Endpoints, network), OWNER_KEY)
    assert owner.factory is not None and owner.factory_data  # the owner's own first operation creates it
    session = Session(
        session_key=LocalSigner.generate().address,
        permissions=(Permission(target=TARGET, selector=bytes(4), value_limit=1),),
    )
    request = owner._request(session, 0, deployed=False)
    if kind.sessions_can_create:
        assert (request.factory, request.factory_data) == (owner.factory, owner.factory_data)
    else:
        assert (request.factory, request.factory_data) == (None, b"")
    assert name == "kernel" or not kind.sessions_can_create


# -- a bundler's refusal said as the error it means -----------------------------------------------------------------


def _refusing_grant(*, valid_after: int = 0, valid_until: int = 0, period: int = 0) -> Any:
    limits = [SimpleNamespace(period=period)] if period else []
    permissions = [
        SimpleNamespace(target=TARGET, selector=APPROVE, function="approve(address,uint256)"),
        SimpleNamespace(target=TARGET, selector=TRANSFER, function="transfer(address,uint256)"),
    ]
    return SimpleNamespace(
        session_id=bytes(32),
        valid_after=valid_after,
        valid_until=valid_until,
        session=SimpleNamespace(valid_after=valid_after, limits=limits, permissions=permissions),
    )


TRANSFER = keccak(b"transfer(address,uint256)")[:4]


def _too_soon(message: str) -> BundlerRejectedError:
    return BundlerRejectedError("eth_sendUserOperation", -32503, message)


def test_a_session_ending_at_the_bundler_s_now_has_expired() -> None:
    grant = _refusing_grant(valid_until=2_000)
    said = session_refusal(grant, _too_soon("expires too soon: validUntil=2000, now=2000"))
    assert isinstance(said, SessionExpiredError) and "expired at" in str(said)
    said = session_refusal(grant, _too_soon("expires too soon: validUntil=2000, now=1999"))
    assert isinstance(said, SessionExpiredError) and "too soon for the bundler" in str(said)


def test_an_operation_valid_until_its_limit_period_s_last_second_is_said_to_end_with_the_period() -> None:
    """Periods start at the session's validAfter: the module makes an operation counted in a period valid until its
    last second (start + period - 1), which is what the bundler's refusal names. At the bundler's now the period has
    not ended yet; one second later it has."""
    grant = _refusing_grant(valid_after=1_000, period=100)
    ending = session_refusal(grant, _too_soon("expires too soon: validUntil=1099, now=1099"))
    assert isinstance(ending, LimitPeriodEndingError) and ending.period_ends_at == 1_099
    assert "and is valid in that period only" in str(ending)
    ended = session_refusal(grant, _too_soon("expires too soon: validUntil=1099, now=1100"))
    assert isinstance(ended, LimitPeriodEndingError) and "the chain has made no block since" in str(ended)
    assert session_refusal(grant, _too_soon("expires too soon: validUntil=1100, now=1099")) is None


def test_a_window_refusal_of_a_session_open_from_its_grant_is_not_said_to_be_the_session_s() -> None:
    """A session with no start (validAfter 0) is never "not valid yet" itself: a refusal saying so is about another
    window (a paymaster's), passed on as the bundler said it."""
    refusal = BundlerRejectedError(
        "eth_sendUserOperation", -32503, "not valid yet: validAfter=5000, now=4000"
    )
    assert session_refusal(_refusing_grant(), refusal) is None
    unnamed = BundlerRejectedError("eth_sendUserOperation", -32503, "operation is not valid yet")
    assert session_refusal(_refusing_grant(), unnamed) is None
    said = session_refusal(_refusing_grant(valid_after=5_000), refusal)
    assert isinstance(said, SessionNotYetValidError)


def test_only_an_execution_revert_is_said_to_be_the_target_s_and_the_call_is_named_by_its_own_permission() -> (
    None
):
    """ERC-7769's -32521 is a call reverting inside its target once validation passed; another refusal (the policy's,
    AA23) is not said to be the target's. The call is named by the permission of its own selector."""
    grant = _refusing_grant()
    call = Call(target=TARGET, data=TRANSFER + bytes(64))
    validation = BundlerRejectedError("eth_sendUserOperation", -32500, "AA23 reverted")
    assert target_refusal(grant, validation, call) is None
    reverted = target_refusal(grant, BundlerRejectedError("eth_sendUserOperation", -32521, "reverted"), call)
    assert isinstance(reverted, TargetRevertedError)
    assert describe_call(grant, call) == f"transfer(address,uint256) on {TARGET}"


class _RateLimited(_Account):
    """An account behind a node that refuses every question for a rate limit (not the account's failing to answer)."""

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        raise JsonRpcError("eth_call", -32005, "rate limit exceeded: slow down")


def test_a_node_s_own_refusal_of_a_module_question_is_raised_not_read_as_the_account_s_silence() -> None:
    """A revert (or code that halts) is the account's no answer, which the module refuses a validator question for;
    a node refusing the question (a rate limit) says nothing of the account: raised, not read as ``UNANSWERED`` (or
    as no fallback handler)."""
    assert no_answer(CallRevertedError("eth_call", ACCOUNT, b"", "no reason"))
    assert not no_answer(JsonRpcError("eth_call", -32005, "rate limit exceeded: slow down"))
    with pytest.raises(JsonRpcError, match="rate limit"):
        module_of(_chain(_RateLimited()), ACCOUNT, TARGET)
    with pytest.raises(JsonRpcError, match="rate limit"):
        fallback_handler(_chain(_RateLimited()), ACCOUNT, TARGET, APPROVE)
