"""keyscope's EIP-7702 delegate and the SDK's reading of it, on storage other code left behind: the same modules held.

EIP-7702 never clears storage, so code an EOA delegated to before can write anything into ``KeyscopeDelegate``'s
namespace (threat model, attacks 273, 304, 307, 308, 309). Before the EOA's key signs an authorization, the SDK lists
the delegate's validator, executor and fallback handler sets there and refuses while they hold anything but the
session module; the operation carrying the authorization then calls ``resetModules()`` first.

Each example writes random words into a fresh EOA's storage, in the delegate's namespace (``anvil_setStorageAt``):
each set's length (0, small, past the SDK's window of 8, huge), entries (the modules asked about, the zero address,
duplicates, words with dirty bits, holes), positions (naming an entry, naming another, past the length, the highest
word, or wrapping past the last slot onto a slot holding the module), the selector mapping and the handlers'
selector counts (with or without the selector set). Then, on a real anvil (Prague):

- the SDK, the EOA not delegated yet: ``EOAOwner.delegation().module_registered`` and the authorization
  ``EOAOwner`` would sign (or its refusal, which must be a :class:`~keyscope.errors.DelegationError`, never a crash);
- the delegate, the EOA's code set to ``0xef0100 ‖ delegate`` over the same storage: ``isModuleInstalled`` of each
  module under each type (a fallback handler for each selector), and whether it lets each module act: validate the
  EOA's operation (``validateUserOp`` asked by the EntryPoint with the module's nonce key), answer its ERC-1271
  question, call ``executeFromExecutor``, be called for a selector;
- a model of the rule docs/accounts.md states: a set holds a module only while its position names an entry below
  the set's length that holds the module (a selector's handler only while it and the selector are both held).

The delegate answers as the model does; whenever it holds a module other than the session module as a validator,
or any module under another type, the SDK refuses to sign and names it (or says how many more it did not read); the
SDK's ``module_registered`` is the delegate's ``isModuleInstalled(1, module)``. Then ``resetModules()`` (the EOA's
own call): nothing is held, nothing acts, and the SDK signs; and a module the EOA installs then, over the positions,
selector mapping and counts the reset left, is all the delegate holds (the SDK signs only when it is the session
module, as a validator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope import Network, Policy, SessionKey, arg, connect
from keyscope.accounts.base import INSTALL_MODULE
from keyscope.accounts.delegate import DELEGATE_STORAGE_LOCATION
from keyscope.devnode import send_transaction
from keyscope.eip7702 import Authorization, delegation_code
from keyscope.eoa import EOAOwner
from keyscope.errors import DelegationError
from keyscope.hexutil import keccak, to_address
from keyscope.local import LocalStack
from keyscope.rpc import JsonRpcError
from keyscope.signing import LocalSigner
from support.fuzz import DEEP, ON_CHAIN

pytestmark = pytest.mark.e2e

EXAMPLES = 600 if DEEP else 60
U256 = 2**256
ADDRESS_MASK = 2**160 - 1

VALIDATORS, EXECUTORS, FALLBACKS, COUNTS, HANDLERS, SELECTOR_SET = (
    DELEGATE_STORAGE_LOCATION + n for n in (0, 2, 4, 5, 6, 8)
)
ADDRESS_SETS = (VALIDATORS, EXECUTORS, HANDLERS)
SETS = (*ADDRESS_SETS, SELECTOR_SET)

# the modules asked about, by index: the session module, two GreedyModules (every type, yes to everything), an
# address without code, the zero address (resolved per stack by ``Delegate.modules``)
SESSION_MODULE, GREEDY, GREEDY_TOO, STRANGER, ZERO = range(5)
STRANGER_ADDRESS = to_address(keccak(b"keyscope delegate sets stranger")[12:])
# selectors none of the delegate's own functions has, a plain ERC-20 transfer among them
SELECTORS = (
    bytes.fromhex("a9059cbb"),
    keccak(b"onTokenCallback(address,uint256)")[:4],
    bytes.fromhex("12345678"),
    bytes(4),
)
MISSING_FALLBACK_HANDLER = keccak(b"MissingFallbackHandler(bytes4)")[:4]
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
PACKED_USER_OP = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"
VALIDATE_USER_OP = keccak(f"validateUserOp({PACKED_USER_OP},bytes32,uint256)".encode())[:4]
IS_MODULE_INSTALLED = keccak(b"isModuleInstalled(uint256,address,bytes)")[:4]
IS_VALID_SIGNATURE = keccak(b"isValidSignature(bytes32,bytes)")[:4]
EXECUTE_FROM_EXECUTOR = keccak(b"executeFromExecutor(bytes32,bytes)")[:4]
RESET_MODULES = keccak(b"resetModules()")[:4]
VALIDATOR, EXECUTOR, FALLBACK = 1, 2, 3


def word_of(data: bytes) -> int:
    return int.from_bytes(keccak(data), "big")


def values_slot(set_slot: int) -> int:
    """Where a set's entries start: ``keccak256(set_slot)``; entry ``i`` is at that plus ``i``, modulo 2**256."""
    return word_of(set_slot.to_bytes(32, "big"))


def position_slot(set_slot: int, value: int) -> int:
    """The slot of ``_positions[value]`` (the set's positions mapping is the slot after its values)."""
    return word_of(value.to_bytes(32, "big") + (set_slot + 1).to_bytes(32, "big"))


def selector_word(selector: bytes) -> int:
    """A selector as the delegate keys it: ``bytes32(selector)``, left-aligned."""
    return int.from_bytes(selector + bytes(28), "big")


def fallback_slot(selector: bytes) -> int:
    return word_of(selector + bytes(28) + FALLBACKS.to_bytes(32, "big"))


def count_slot(handler: int) -> int:
    return word_of(handler.to_bytes(32, "big") + COUNTS.to_bytes(32, "big"))


# -- what other code may leave behind -----------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    """Storage words to write into the EOA, by slot; module and selector words are indices into the stack's modules
    and :data:`SELECTORS`, resolved by :meth:`writes` (the stack's addresses are known only once it runs)."""

    words: tuple[tuple[str, int, int, int], ...]
    """(what, where, value, dirt): ``what`` says how to read the others (see :meth:`writes`); a set's member is named
    by ``set slot * 64 + index``."""
    install: tuple[int, int, int] = (VALIDATOR, SESSION_MODULE, 0)
    """What the EOA installs after the reset, over what is left: (module type, module, selector index)."""

    def writes(self, modules: tuple[int, ...]) -> dict[int, int]:
        out: dict[int, int] = {}
        for what, where, value, dirt in self.words:
            if what == "raw" or what == "length":  # a word at a slot
                out[where] = value
            elif what == "member-entry":  # (set, index) holds module/selector index, with dirty bits
                set_slot, index = divmod(where, 64)
                out[(values_slot(set_slot) + index) % U256] = _member(set_slot, value, modules) | dirt
            elif what == "position":  # _positions[member] of set
                set_slot, member = divmod(where, 64)
                out[position_slot(set_slot, _member(set_slot, member, modules))] = value
            elif what == "wrapped":  # _positions[member] names slot `value`, which holds it
                set_slot, member = divmod(where, 64)
                member_word = _member(set_slot, member, modules)
                out[position_slot(set_slot, member_word)] = (value - values_slot(set_slot)) % U256 + 1
                out[value] = member_word | dirt
            elif what == "handler":  # fallbacks[selector] = module, with dirty bits
                out[fallback_slot(SELECTORS[where])] = modules[value] | dirt
            elif what == "count":  # fallbackCount[module]
                out[count_slot(modules[where])] = value
            else:  # pragma: no cover - the strategy writes only the kinds above
                raise AssertionError(what)
        return out


def _member(set_slot: int, index: int, modules: tuple[int, ...]) -> int:
    if set_slot == SELECTOR_SET:
        return selector_word(SELECTORS[index % len(SELECTORS)])
    return modules[index % len(modules)]


LENGTHS = st.one_of(
    st.just(0),
    st.integers(1, 6),
    st.integers(7, 12),  # across the SDK's window of 8 entries
    st.sampled_from([U256 - 1, 2**255, 2**64, 2**160]),
    st.integers(0, U256 - 1),
)
ADDRESS_DIRT = st.one_of(st.just(0), st.integers(1, 2**96 - 1).map(lambda d: d << 160))
SELECTOR_DIRT = st.one_of(st.just(0), st.integers(1, 2**224 - 1))
# the slot a position names far from the set's entries: most below them, so that the entry's slot (the entries'
# start + position - 1) wraps past 2**256, as the EVM's slot arithmetic does
WRAP_TARGETS = st.one_of(
    st.integers(0, 2**64),
    st.sampled_from([DELEGATE_STORAGE_LOCATION + n for n in range(10)]),
    st.integers(0, U256 - 1),
)


SHAPES = ("as the delegate writes it", "written over", "anything", "empty")
INSTALLS = (
    (VALIDATOR, SESSION_MODULE, 0),
    (VALIDATOR, GREEDY, 0),
    (EXECUTOR, GREEDY_TOO, 0),
    *((FALLBACK, GREEDY, selector) for selector in range(len(SELECTORS))),
)


@st.composite
def planted(draw: Any) -> Planted:
    words: list[tuple[str, int, int, int]] = []
    in_handler_set: list[int] = []
    for set_slot in SETS:
        members = len(SELECTORS) if set_slot == SELECTOR_SET else 5
        dirt = SELECTOR_DIRT if set_slot == SELECTOR_SET else ADDRESS_DIRT

        def dirty() -> int:
            return draw(st.one_of(st.just(0), st.just(0), dirt))  # noqa: B023 - drawn in this iteration only

        shape = draw(st.sampled_from(SHAPES))
        if shape in SHAPES[:2]:  # distinct members, each at its position, then perhaps another length
            chosen = draw(st.lists(st.integers(0, members - 1), unique=True, min_size=1, max_size=members))
            words.append(("length", set_slot, len(chosen), 0))
            for index, member in enumerate(chosen):
                words.append(("member-entry", set_slot * 64 + index, member, 0))
                words.append(("position", set_slot * 64 + member, index + 1, 0))
            if set_slot == HANDLERS:
                in_handler_set.extend(chosen)
            if shape == "written over":
                words.append(("length", set_slot, draw(LENGTHS), 0))
        elif shape == "anything":
            length = draw(LENGTHS)
            words.append(("length", set_slot, length, 0))
            entries = draw(st.lists(st.tuples(st.integers(0, 10), st.integers(0, members - 1)), max_size=6))
            for index, member in entries:  # holes between them, duplicates, members past the length
                words.append(("member-entry", set_slot * 64 + index, member, dirty()))
            for member in draw(st.lists(st.integers(0, members - 1), unique=True, max_size=4)):
                if draw(st.integers(0, 3)) == 0:  # onto a slot below the entries, past the last slot
                    words.append(("wrapped", set_slot * 64 + member, draw(WRAP_TARGETS), dirty()))
                    if draw(st.booleans()):
                        words.append(("length", set_slot, U256 - 1, 0))
                    continue
                named = [index + 1 for index, m in entries if m == member]
                position = draw(
                    st.one_of(
                        st.sampled_from(named or [1]),
                        st.integers(0, 12),
                        st.sampled_from([length, (length + 1) % U256, U256 - 1]),
                    )
                )
                words.append(("position", set_slot * 64 + member, position, 0))
                if set_slot == HANDLERS:
                    in_handler_set.append(member)
    for selector in range(len(SELECTORS)):
        if draw(st.integers(0, 3)):
            handler = draw(
                st.sampled_from(in_handler_set)
                if in_handler_set and draw(st.booleans())
                else st.integers(0, 4)
            )
            words.append(
                ("handler", selector, handler, draw(st.one_of(st.just(0), st.just(0), ADDRESS_DIRT)))
            )
    for module in draw(st.lists(st.integers(0, 4), unique=True, max_size=3)):
        words.append(("count", module, draw(st.sampled_from([0, 1, 2, U256 - 1])), 0))
    for _ in range(draw(st.integers(0, 2))):  # any word anywhere in the namespace
        slot = DELEGATE_STORAGE_LOCATION + draw(st.integers(0, 9))
        words.append(("raw", slot, draw(st.integers(0, U256 - 1)), 0))
    return Planted(tuple(words), draw(st.sampled_from(INSTALLS)))


# -- the model: the rule docs/accounts.md states ----------------------------------------------------


@dataclass
class Held:
    """Which modules (indices) are held, under each type, and which selectors' handlers are in force."""

    validators: set[int] = field(default_factory=set)
    executors: set[int] = field(default_factory=set)
    handlers: dict[bytes, int] = field(default_factory=dict)  # selector -> module index


def model(storage: dict[int, int], modules: tuple[int, ...]) -> Held:
    def word(slot: int) -> int:
        return storage.get(slot % U256, 0)

    def listed(set_slot: int, value: int) -> bool:
        position = word(position_slot(set_slot, value))
        return (
            position != 0
            and position <= word(set_slot)
            and word(values_slot(set_slot) + position - 1) == value
        )

    held = Held()
    for index, module in enumerate(modules):
        if listed(VALIDATORS, module):
            held.validators.add(index)
        if listed(EXECUTORS, module):
            held.executors.add(index)
    for selector in SELECTORS:
        handler = (
            word(fallback_slot(selector)) & ADDRESS_MASK
        )  # an address read from storage: its low 20 bytes
        if handler and listed(SELECTOR_SET, selector_word(selector)) and listed(HANDLERS, handler):
            held.handlers[selector] = modules.index(handler)
    return held


# -- the stack --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delegate:
    stack: LocalStack
    net: Network
    modules: tuple[int, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(to_address(m.to_bytes(20, "big")) for m in self.modules)

    def plant(self, eoa: str, storage: dict[int, int]) -> None:
        self.stack.node.batch(
            [
                ("anvil_setStorageAt", [eoa, hex(slot), "0x" + value.to_bytes(32, "big").hex()])
                for slot, value in storage.items()
            ]
        )

    def delegate_to_it(self, eoa: str) -> None:
        code = delegation_code(self.stack.delegate)
        self.stack.node.request("anvil_setCode", [eoa, "0x" + code.hex()])

    def as_the_eoa(self, eoa: str, data: bytes, what: str) -> None:
        """A call of the EOA to itself (the delegate takes ``resetModules`` and ``installModule`` from it)."""
        node = self.stack.node
        node.request("anvil_impersonateAccount", [eoa])
        try:
            self.stack.fund(eoa, 10**17)
            send_transaction(node, eoa, to=eoa, data=data, what=what)
        finally:
            node.request("anvil_stopImpersonatingAccount", [eoa])

    def install(self, eoa: str, module_type: int, module: int, selector: int) -> None:
        init = SELECTORS[selector] if module_type == FALLBACK else b""
        args = [module_type, self.addresses[module], init]
        data = INSTALL_MODULE + abi_encode(["uint256", "address", "bytes"], args)
        self.as_the_eoa(eoa, data, f"installModule({module_type}, {self.addresses[module]})")

    def answers(self, eoa: str) -> Held:
        """What the delegate answers over the EOA's storage (its code must delegate there), checked one against the
        other: a module it lets act is one it says is installed."""
        addresses = self.addresses
        ep = self.stack.entry_point_v08
        calls: list[tuple[str, list[Any]]] = []

        def ask(data: bytes, sender: str | None = None) -> None:
            tx: dict[str, str] = {"to": eoa, "data": "0x" + data.hex()}
            if sender is not None:
                tx["from"] = sender
            calls.append(("eth_call", [tx, "latest"]))

        for address in addresses:
            for module_type in (VALIDATOR, EXECUTOR):
                ask(
                    IS_MODULE_INSTALLED
                    + abi_encode(["uint256", "address", "bytes"], [module_type, address, b""])
                )
            for selector in SELECTORS:
                ask(
                    IS_MODULE_INSTALLED
                    + abi_encode(["uint256", "address", "bytes"], [FALLBACK, address, selector])
                )
            # an executor's call: nothing to a codeless address, in single call mode
            execution = bytes.fromhex(STRANGER_ADDRESS[2:]) + bytes(32)
            ask(EXECUTE_FROM_EXECUTOR + abi_encode(["bytes32", "bytes"], [bytes(32), execution]), address)
            # the EOA's operation under the module's nonce key, a signature no key made: the owner's path says 1
            op = (eoa, int(address, 16) << 96, b"", b"", bytes(32), 0, bytes(32), b"", bytes(65))
            ask(VALIDATE_USER_OP + abi_encode([PACKED_USER_OP, "bytes32", "uint256"], [op, bytes(32), 0]), ep)
            # an ERC-1271 question whose signature starts with the module
            signature = bytes.fromhex(address[2:]) + bytes(65)
            ask(IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [bytes(32), signature]))
        for selector in SELECTORS:
            ask(selector + bytes(64), STRANGER_ADDRESS)
        results = self.stack.node.batch(calls, settled=True)
        per_module = 2 + len(SELECTORS) + 3
        held = Held()
        for index, address in enumerate(addresses):
            answer = results[index * per_module : (index + 1) * per_module]
            installed = [_true(a) for a in answer[:2]]
            installed_for = dict(
                zip(SELECTORS, (_true(a) for a in answer[2 : 2 + len(SELECTORS)]), strict=True)
            )
            executes, validation, erc1271 = answer[2 + len(SELECTORS) :]
            if installed[0]:
                held.validators.add(index)
            if installed[1]:
                held.executors.add(index)
            # a module the delegate lets act is one it says is installed, of that type
            acts_as_validator = not (isinstance(validation, str) and int(validation, 16) == 1)
            assert not acts_as_validator or installed[0], (
                address,
                "validated the EOA's operation",
                validation,
            )
            signs = isinstance(erc1271, str) and bytes.fromhex(erc1271[2:10]) == ERC1271_MAGIC
            assert not signs or installed[0], (address, "answered the EOA's ERC-1271 question")
            assert not isinstance(executes, str) or installed[1], (address, "executed as the EOA")
            if index in (GREEDY, GREEDY_TOO) and installed[0]:  # and a validator it holds does act
                assert not acts_as_validator or int(validation, 16) == 0, validation
                assert acts_as_validator and signs, (address, "held as a validator but not asked")
            if installed[1]:
                assert isinstance(executes, str), (address, "held as an executor but refused", executes)
            for selector, yes in installed_for.items():
                if yes:
                    assert selector not in held.handlers, (selector.hex(), "two handlers")
                    held.handlers[selector] = index
        for selector, reply in zip(SELECTORS, results[len(addresses) * per_module :], strict=True):
            refused = isinstance(reply, JsonRpcError) and _revert_data(reply)[:4] == MISSING_FALLBACK_HANDLER
            # the selector reaches a handler exactly when the delegate says one is installed for it
            assert refused == (selector not in held.handlers), (selector.hex(), reply)
        return held


def _true(result: Any) -> bool:
    assert isinstance(result, str), result  # isModuleInstalled never reverts
    return int(result, 16) == 1


def _revert_data(error: JsonRpcError) -> bytes:
    data = error.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    return b""


@pytest.fixture(scope="module")
def delegate(local_stack: LocalStack) -> Delegate:
    from support.victims import deploy

    net = connect(
        local_stack.rpc_url, local_stack.bundler_url, module=local_stack.module, delegate=local_stack.delegate
    )
    greedy = (deploy(local_stack, "GreedyModule"), deploy(local_stack, "GreedyModule"))
    addresses = (local_stack.module, *greedy, STRANGER_ADDRESS, "0x" + "00" * 20)
    return Delegate(local_stack, net, tuple(int(a, 16) for a in addresses))


@dataclass
class SdkReading:
    registered: bool
    authorization: Authorization | None
    refusal: DelegationError | None


def sdk_reading(owner: EOAOwner) -> SdkReading:
    """What the SDK reads of the EOA: whether the delegate holds the session module, and the authorization it would
    sign for the delegate (or its refusal). Any other error fails the example: hostile storage is no reason to crash."""
    registered = owner.delegation().module_registered
    try:
        return SdkReading(registered, owner._authorization(0), None)
    except DelegationError as refusal:
        return SdkReading(registered, None, refusal)


def judge(delegate: Delegate, planted: Planted) -> None:
    owner = delegate.net.eoa(LocalSigner.generate())
    eoa = owner.account
    storage = planted.writes(delegate.modules)
    delegate.plant(eoa, storage)
    expected = model(storage, delegate.modules)

    sdk = sdk_reading(owner)  # the EOA not delegated yet: before the authorization is signed
    delegate.delegate_to_it(eoa)
    held = delegate.answers(eoa)
    assert held == expected, (held, expected, storage)
    assert sdk.registered == (SESSION_MODULE in held.validators), (sdk.registered, held, storage)

    # (a) anything held but the session module as a validator: the SDK signs nothing and names it
    in_force = [
        *(("validator", m) for m in held.validators if m != SESSION_MODULE),
        *(("executor", m) for m in held.executors),
        *(("fallback handler", m) for m in held.handlers.values()),
    ]
    if in_force:
        assert sdk.refusal is not None, (in_force, storage)
        message = str(sdk.refusal)
        for what, module in in_force:
            address = delegate.addresses[module]
            assert f"{what}s " in message, (what, message)
            assert address in message or " more" in message, (what, address, message)

    # (b) after the delegate's reset nothing is held, nothing acts, and the SDK signs
    delegate.as_the_eoa(eoa, RESET_MODULES, "resetModules()")
    after = delegate.answers(eoa)
    assert after == Held(), (after, storage)
    again = sdk_reading(owner)
    assert not again.registered and again.refusal is None, again
    assert again.authorization is not None and again.authorization.address == delegate.stack.delegate

    # and a module installed over what the reset left (positions, the selector mapping, counts) is all it holds
    module_type, module, selector = planted.install
    delegate.install(eoa, module_type, module, selector)
    installed = delegate.answers(eoa)
    if module_type == VALIDATOR:
        assert installed == Held(validators={module}), (installed, planted.install, storage)
    elif module_type == EXECUTOR:
        assert installed == Held(executors={module}), (installed, planted.install, storage)
    else:
        assert installed == Held(handlers={SELECTORS[selector]: module}), (
            installed,
            planted.install,
            storage,
        )
    last = sdk_reading(owner)
    assert last.registered == (planted.install[:2] == (VALIDATOR, SESSION_MODULE)), (last, planted.install)
    assert (last.refusal is None) == last.registered, (last, planted.install)


@settings(max_examples=EXAMPLES, **ON_CHAIN)
@given(planted=planted())
@example(
    planted=Planted(
        (("length", VALIDATORS, U256 - 1, 0), ("wrapped", VALIDATORS * 64 + SESSION_MODULE, 7, 0))
    )
)
@example(planted=Planted((("length", EXECUTORS, U256 - 1, 0), ("wrapped", EXECUTORS * 64 + STRANGER, 3, 0))))
@example(  # the session module's entry with dirty bits above its address: the delegate holds no module there
    planted=Planted(
        (
            ("length", VALIDATORS, 1, 0),
            ("member-entry", VALIDATORS * 64, SESSION_MODULE, 1 << 200),
            ("position", VALIDATORS * 64 + SESSION_MODULE, 1, 0),
        )
    )
)
def test_the_delegate_and_the_sdk_agree_on_the_modules_held_over_any_storage(
    delegate: Delegate, planted: Planted
) -> None:
    judge(delegate, planted)


# -- the public path ---------------------------------------------------------------------------------


def _plant_session_module_wrapped(delegate: Delegate, eoa: str) -> None:
    """The validator set's length at its highest, and the session module's position wrapping past the last slot
    onto slot 7, which holds the module: the delegate reads entry ``keccak256(slot) + position - 1`` modulo 2**256."""
    storage = Planted(
        (("length", VALIDATORS, U256 - 1, 0), ("wrapped", VALIDATORS * 64 + SESSION_MODULE, 7, 0))
    ).writes(delegate.modules)
    delegate.plant(eoa, storage)


def test_an_upgrade_over_a_position_wrapping_past_the_last_slot_is_refused_with_the_sets_length(
    delegate: Delegate,
) -> None:
    """Other code writes the validator set's length as 2**256 - 1 and the session module's position so that the
    entry it names wraps past the last storage slot (the EVM's slot arithmetic is modulo 2**256) onto a slot holding
    the module: the delegate holds the module there. The owner's upgrade must refuse with a
    :class:`~keyscope.errors.DelegationError` saying what the set holds, before anything is signed; it must not fail
    on the node's answer to a slot past 2**256 (the SDK asked ``eth_getStorageAt`` for it)."""
    stack = delegate.stack
    signer = LocalSigner.generate()
    stack.fund(signer.address, 10**18)
    owner = delegate.net.eoa(signer)
    _plant_session_module_wrapped(delegate, owner.account)
    policy = [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
    with pytest.raises(DelegationError) as refused:
        owner.upgrade(SessionKey.generate(), policy, valid_for=3600, transaction=True)
    # the set's length, not 2**256 - 9 "more" validators: no set the delegate keeps gets there
    assert f"and more (the set's length word is 0x{'f' * 64}" in str(refused.value), refused.value
    assert stack.node.request("eth_getCode", [owner.account, "latest"]) == "0x"  # nothing signed nor sent
    assert owner.delegation().module_registered  # as the delegate reads it
    delegate.delegate_to_it(owner.account)
    assert SESSION_MODULE in delegate.answers(owner.account).validators
