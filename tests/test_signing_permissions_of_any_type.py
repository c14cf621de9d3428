"""Differential: typed data of any EIP-712 type, judged by the SDK before it signs and by the module on the signature
a leaked session key makes for the same data, with the real module and keyscope's account.

Each example makes an EIP-712 type (a primary struct, nested structs up to three levels down, atomic members of
every width, strings and bytes, arrays of atoms and of structs), grants the session one signing permission of that
type in a domain of any fields, with rules on any of its ruleable members (each condition the builder takes for the
member's type), and judges messages at and around the rules' values:

* the SDK's verdict: ``sign_typed_data`` signs, or refuses with a reason;
* the module's verdict on the signature made without the SDK's check (``forge_typed_data``): the same reason, the
  same rule;
* the account's own ``isValidSignature`` and OpenZeppelin's SignatureChecker take the signature exactly when the
  SDK signs;
* the digest the verifier asks about is eth-account's EIP-712 encoding of the same data.

The chain is a fresh anvil of this file's own, a node that runs the contracts natively: ape's builds of the module,
keyscope's account factory and ``SignedPermits``, and the EntryPoint v0.7 from its package. The account is made by
the factory's ``createAccount`` and grants its sessions with its owner's UserOperations, handled by the EntryPoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from eth_abi import decode as abi_decode
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keyscope import Network, Policy, SessionGrant, SessionKey, arg
from keyscope.chain import RpcChain
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import to_address, to_bytes
from keyscope.message_signing import SignatureRefusedError
from keyscope.rpc import JsonRpcError
from keyscope.session import MAX_NESTED, Condition, Rule, Session, TypedDataPermission, contents_definitions
from keyscope.signing import LocalSigner
from keyscope.signing_words import field_arg_type, mistyped_rules, typed_data_fields
from keyscope.typed_data import DOMAIN_FIELDS, TypedData
from keyscope.typed_fields import ordered_hashes
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import deploy_entry_point
from support.fuzz import DEEP
from support.raw_call import revert_bytes
from support.signatures import forge_typed_data

INTEGERS = [f"uint{bits}" for bits in (8, 16, 32, 48, 64, 128, 160, 256)] + [
    f"int{bits}" for bits in (8, 16, 32, 64, 128, 256)
]
FIXED_BYTES = [f"bytes{size}" for size in (1, 2, 4, 20, 31, 32)]
ATOMIC = [*INTEGERS, "address", "bool", *FIXED_BYTES, "string", "bytes"]
ATOM_ARRAYS = ["uint256[]", "address[2]", "string[]", "bytes32[1]", "int8[]"]
MEMBER_NAMES = [
    "amount",
    "to",
    "from",
    "id",
    "memo",
    "flag",
    "tag",
    "deadline",
    "delta",
    "data",
    "who",
    "fee",
    "a",
]
# names that sort before and after the primary's, and names that begin with another's (the module finds the
# primary's definition in the contents type by its name)
PRIMARY_NAMES = ["Order", "Permit", "Mail", "Z"]
NESTED_NAMES = ["Asset", "OrderLeg", "Permits", "Terms", "A", "Zz", "Mai"]
STRINGS = ["", "a", "hello", "h\u00e9llo", "0x00"]
BYTES = [b"", b"\x00", b"\x01\x02", b"\xff" * 33]
OPS = ["eq", "ne", "lt", "le", "gt", "ge", "range", "one_of"]
HASH_OPS = ["eq", "ne", "one_of"]
ZERO = "0x" + "00" * 20
EXAMPLES = 300 if DEEP else 30
"""Each example grants a session on chain and judges four messages: about a tenth of a second on the file's anvil."""


def _bounds(kind: str) -> tuple[int, int]:
    if kind.startswith("uint"):
        return 0, 2 ** int(kind[4:]) - 1
    bits = int(kind[3:])
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _as_number(kind: str, value: Any) -> int:
    """A value of an ordered atomic type as the integer its word orders by (bytesN: its big-endian bytes)."""
    if kind == "address":
        return int(value, 16)
    if kind == "bool":
        return int(value)
    if kind.startswith("bytes"):
        return int.from_bytes(value, "big")
    return int(value)


def _from_number(kind: str, number: int) -> Any | None:
    """The value of ``kind`` whose word orders as ``number``; None outside the type."""
    if kind == "address":
        return to_address(f"0x{number:040x}") if 0 <= number < 2**160 else None
    if kind == "bool":
        return bool(number) if number in (0, 1) else None
    if kind.startswith("bytes"):
        size = int(kind[5:])
        return number.to_bytes(size, "big") if 0 <= number < 2 ** (8 * size) else None
    low, high = _bounds(kind)
    return number if low <= number <= high else None


def _atom(draw: st.DrawFn, kind: str) -> Any:
    """Any value of an atomic type, its edges likelier."""
    if kind == "string":
        return draw(st.sampled_from(STRINGS) | st.text(max_size=8))
    if kind == "bytes":
        raw = draw(st.sampled_from(BYTES) | st.binary(max_size=40))
        return "0x" + raw.hex() if draw(st.booleans()) else raw  # as bytes, or in its JSON form
    if kind == "bool":
        return draw(st.booleans())
    if kind == "address":
        low, high = 0, 2**160 - 1
    elif kind.startswith("bytes"):
        low, high = 0, 2 ** (8 * int(kind[5:])) - 1
    else:
        low, high = _bounds(kind)
    edges = sorted(e for e in {low, low + 1, -1 if low < 0 else 1, 0, high - 1, high} if low <= e <= high)
    number = draw(st.sampled_from(edges) | st.integers(low, high))
    return _from_number(kind, number)


def _value(draw: st.DrawFn, kind: str, types: dict[str, list[dict[str, str]]]) -> Any:
    """Any value of an EIP-712 type: atoms, structs of ``types``, arrays of either."""
    if kind.endswith("]"):
        element, _, length = kind[:-1].rpartition("[")
        count = int(length) if length else draw(st.integers(0, 2))
        return [_value(draw, element, types) for _ in range(count)]
    if kind in types:
        return {member["name"]: _value(draw, member["type"], types) for member in types[kind]}
    return _atom(draw, kind)


@st.composite
def eip712_types(draw: st.DrawFn) -> tuple[str, dict[str, list[dict[str, str]]]]:
    """A primary struct and the structs it uses, nested up to three levels, with atoms, arrays and struct members."""
    primary = draw(st.sampled_from(PRIMARY_NAMES))
    nested = draw(
        st.lists(
            st.sampled_from([n for n in NESTED_NAMES if n != primary]), min_size=1, max_size=3, unique=True
        )
    )
    types: dict[str, list[dict[str, str]]] = {}
    # each struct may use those made before it: no cycle; the primary reaches nested structs up to three deep
    defined: list[str] = []
    for name in [*nested, primary]:
        count = draw(st.integers(1, 5))
        names = draw(st.lists(st.sampled_from(MEMBER_NAMES), min_size=count, max_size=count, unique=True))
        members = []
        for member in names:
            choices = [st.sampled_from(ATOMIC)]
            if defined:  # a struct member as likely as an atom; an array of structs now and then
                choices.append(st.sampled_from(defined))
                if draw(st.integers(0, 3)) == 0:
                    choices.append(st.sampled_from(defined).map(lambda s: s + "[]"))
            if draw(st.integers(0, 9)) == 0:
                choices = [st.sampled_from(ATOM_ARRAYS)]
            members.append({"name": member, "type": draw(st.one_of(*choices))})
        types[name] = members
        defined.append(name)
    # keep only the structs the primary uses (a contents type holds those only)
    used, queue = set(), [primary]
    while queue:
        struct = queue.pop()
        if struct in used:
            continue
        used.add(struct)
        for member in types[struct]:
            base = member["type"].split("[")[0]
            if base in types:
                queue.append(base)
    return primary, {name: members for name, members in types.items() if name in used}


def _ruleable(primary: str, types: dict[str, list[dict[str, str]]]) -> list[tuple[tuple[str, ...], str]]:
    """The atomic members reached from the primary struct through struct members (not arrays), by path."""
    found = []
    queue: list[tuple[tuple[str, ...], str]] = [((), primary)]
    while queue:
        path, struct = queue.pop(0)
        for member in types[struct]:
            here = (*path, member["name"])
            if member["type"] in types:
                queue.append((here, member["type"]))
            elif not member["type"].endswith("]"):
                found.append((here, member["type"]))
    return found


@dataclass
class Ruled:
    """A rule as the test made it: the member, its type, the condition and the values given to the builder."""

    path: tuple[str, ...]
    kind: str
    op: str
    values: tuple[Any, ...]

    def spec(self) -> Any:
        ref = arg(*self.path)
        if self.op == "range":
            return ref.in_range(*self.values)
        if self.op == "one_of":
            return ref.one_of(*self.values)
        method = {
            "eq": "__eq__",
            "ne": "__ne__",
            "lt": "__lt__",
            "le": "__le__",
            "gt": "__gt__",
            "ge": "__ge__",
        }
        return getattr(ref, method[self.op])(self.values[0])

    def near(self) -> list[Any]:
        """Values of the member at and beside the rule's values."""
        if self.kind in ("string", "bytes"):
            return [*self.values, *(to_bytes(v) for v in self.values if self.kind == "bytes")]
        found = []
        for value in self.values:
            number = _as_number(self.kind, value)
            for step in (-1, 0, 1):
                near = _from_number(self.kind, number + step)
                if near is not None:
                    found.append(near)
        return found


@st.composite
def rules(draw: st.DrawFn, primary: str, types: dict[str, list[dict[str, str]]]) -> list[Ruled]:
    fields = _ruleable(primary, types)
    chosen = draw(st.lists(st.sampled_from(fields), max_size=4, unique_by=lambda f: f[0])) if fields else []
    made = []
    for path, kind in chosen:
        op = draw(st.sampled_from(HASH_OPS if kind in ("string", "bytes") else OPS))
        if op == "range":
            low, high = sorted((_atom(draw, kind), _atom(draw, kind)), key=lambda v: _as_number(kind, v))
            values: tuple[Any, ...] = (low, high)
        elif op == "one_of":
            values = tuple(_atom(draw, kind) for _ in range(draw(st.integers(1, 3))))
        else:
            values = (_atom(draw, kind),)
        made.append(Ruled(path, kind, op, values))
    return made


def _hashed_bytes(kind: str, value: Any) -> bytes:
    """What EIP-712 hashes for a string or bytes value (bytes may come as 0x-hex, their JSON form)."""
    return value.encode() if kind == "string" else to_bytes(value)


def _ordered(kind: str, value: Any) -> int:
    """An ordered atomic value as the number the rule orders (intN signed)."""
    return _as_number(kind, value)


def _holds(op: str, actual: Any, values: list[Any]) -> bool:
    if op == "eq":
        return bool(actual == values[0])
    if op == "ne":
        return bool(actual != values[0])
    if op == "one_of":
        return actual in values
    if op == "range":
        return bool(values[0] <= actual <= values[1])
    return bool(
        {
            "lt": actual < values[0],
            "le": actual <= values[0],
            "gt": actual > values[0],
            "ge": actual >= values[0],
        }[op]
    )


def expected_verdict(ruled: list[Ruled], message: dict[str, Any]) -> tuple[str | None, int | None]:
    """The rules as written, on the message's values as written: the first rule the message breaks."""
    for index, rule in enumerate(ruled):
        actual: Any = message
        for name in rule.path:
            actual = actual[name]
        if rule.kind in ("string", "bytes"):
            actual, values = (
                _hashed_bytes(rule.kind, actual),
                [_hashed_bytes(rule.kind, v) for v in rule.values],
            )
        else:
            actual, values = _ordered(rule.kind, actual), [_ordered(rule.kind, v) for v in rule.values]
        holds = _holds(rule.op, actual, values)
        if not holds:
            return "SignedRuleViolated", index
    return None, None


def _set(message: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        message = message[name]
    message[path[-1]] = value


@st.composite
def messages_near(
    draw: st.DrawFn, primary: str, types: dict[str, list[dict[str, str]]], ruled: list[Ruled]
) -> dict[str, Any]:
    """A message of the primary type whose ruled members sit at or beside the rules' values (or anywhere)."""
    message = _value(draw, primary, types)
    for rule in ruled:
        near = rule.near()
        if near and draw(st.integers(0, 4)):
            _set(message, rule.path, draw(st.sampled_from(near)))
    return message


def _eth_account_digest(data: dict[str, Any]) -> bytes:
    domain_types = [{"name": n, "type": t} for n, t, _ in DOMAIN_FIELDS if n in data["domain"]]
    full = {**data, "types": {"EIP712Domain": domain_types, **data["types"]}}
    signable = encode_typed_data(full_message=full)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


# -- the chain ------------------------------------------------------------------------------------------------


@dataclass
class World:
    """The file's anvil with the EntryPoint, keyscope's factory, the module and ``SignedPermits`` deployed (ape's
    builds, the EntryPoint from its package), and one keyscope account of ``owner`` with the module installed."""

    chain: AnvilChain
    entry_point: AnvilContract
    factory: AnvilContract
    module: AnvilContract
    permits: AnvilContract
    net: Network
    owner: LocalSigner
    project: Any
    errors: dict[bytes, Any] = field(repr=False)
    account: str = ""
    account_contract: Any = None
    grants: int = 0

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    @property
    def sender(self) -> str:
        """The development account that asks the module to enable sessions in an ``eth_call``."""
        return self.chain.accounts[7]

    def make_account(self, salt: int) -> None:
        """Deploy the owner's account of ``salt`` with the module installed at creation (the factory's
        ``createAccount``, as a first operation's initCode calls it), funded for its operations, and move to it."""
        modules = [(1, self.module.address, b"")]
        self.factory.createAccount.transact(self.owner.address, modules, salt, sender=self.chain.accounts[0])
        self.account = to_address(self.factory.getAddress(self.owner.address, modules, salt))
        self.chain.rpc.request("anvil_setBalance", [self.account, hex(10**18)])
        self.account_contract = AnvilContract(
            self.chain, self.account, self.project.KeyscopeAccount.contract_type
        )

    def next_grant(self) -> None:
        """Count a grant; past 200 sessions on the account (the module holds at most 256 live permissions per
        account), move on to a fresh account."""
        self.grants += 1
        if self.grants % 200 == 0:
            self.make_account(77 + self.grants)

    def owner_execute(self, call: Call) -> None:
        """The owner's UserOperation (nonce key 0) making ``call``, handled by the EntryPoint; it must execute."""
        op = UserOperation(
            sender=self.account,
            nonce=int(self.entry_point.getNonce(self.account, 0)),
            call_data=encode_execute(call),
            call_gas_limit=1_000_000,
            verification_gas_limit=1_500_000,
            pre_verification_gas=60_000,
            max_fee_per_gas=2 * 10**9,
            max_priority_fee_per_gas=10**9,
        )
        op = op.replace(
            signature=self.owner.sign_hash(
                user_op_hash_v07(op.pack(), self.entry_point.address, self.chain_id)
            )
        )
        beneficiary = self.chain.accounts[1]
        receipt = self.entry_point.handleOps.transact([op.pack().as_tuple()], beneficiary, sender=beneficiary)
        events = [log for log in receipt["logs"] if log["topics"][0] == "0x" + USER_OPERATION_EVENT.hex()]
        assert len(events) == 1 and int(events[0]["data"][2 + 64 : 2 + 128], 16) == 1, receipt

    def grant_onchain(self, session: Session) -> bytes:
        """The owner's UserOperation calling module.enableSession(session); returns the session id."""
        self.owner_execute(
            Call.of(self.module.address, 0, self.module.enableSession.encode_input(session.as_abi()))
        )
        session_id = session.session_id(self.account, self.epoch())
        assert self.module.isSessionActive(self.account, session_id)
        return session_id

    def epoch(self) -> int:
        return int(self.module.epochOf(self.account))

    def refusal(self, error: Exception) -> tuple[str, dict[str, Any]] | None:
        """The module's custom error a failed ``eth_call`` reverted with, by name, and its inputs by name (ape's
        build's ABI); None for revert data that is no custom error of the module."""
        data = revert_bytes(error)
        abi = self.errors.get(data[:4])
        if abi is None:
            return None
        values = abi_decode([i.canonical_type for i in abi.inputs], data[4:])
        return abi.name, {i.name: v for i, v in zip(abi.inputs, values, strict=True)}

    def enable_call(self, session: Session) -> tuple[str, dict[str, Any]] | None:
        """The module's refusal of ``enableSession(session)`` asked in an ``eth_call`` (None: it enables it); a
        revert that is no custom error of the module fails the test."""
        data = self.module.enableSession.encode_input(session.as_abi())
        tx = {"from": self.sender, "to": self.module.address, "data": "0x" + data.hex(), "gas": 30_000_000}
        try:
            self.chain.call(tx)
        except JsonRpcError as error:
            refusal = self.refusal(error)
            assert refusal is not None, f"enableSession reverted with 0x{revert_bytes(error).hex()}"
            return refusal
        return None


USER_OPERATION_EVENT = keccak(text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)")
"""The EntryPoint's event per handled operation: its data's second word says whether the call succeeded."""


@pytest.fixture(scope="module")
def world(project) -> Iterator[World]:
    """One keyscope account with the module installed, on the file's anvil."""
    with anvil_chain() as chain:
        # the EntryPoint by CREATE: nothing here needs its canonical address
        entry_point = deploy_entry_point(chain, chain.accounts[0])
        factory = chain.deploy(project.KeyscopeAccountFactory, entry_point.address, chain.accounts[0])
        module = chain.deploy(project.SessionKeyValidator)
        permits = chain.deploy(project.SignedPermits)
        net = Network(
            chain=RpcChain(chain.url),
            bundler=cast(Any, None),  # signing asks no bundler
            module=module.address,
            entry_point=entry_point.address,
            factory=factory.address,
        )
        abi = project.SessionKeyValidator.contract_type.abi
        errors = {keccak(text=e.selector)[:4]: e for e in abi if e.type == "error"}
        world = World(
            chain, entry_point, factory, module, permits, net, LocalSigner.generate(), project, errors
        )
        world.make_account(77)
        try:
            yield world
        finally:
            net.close()


@pytest.fixture(autouse=True)
def first_account(world: World) -> Iterator[None]:
    """Each test starts on the world's first account, on the chain as the fixture left it: the chain is reverted
    after each test, and an account made during one (past 200 grants) is gone after it."""
    first = (world.account, world.account_contract)
    snapshot = world.chain.rpc.request("evm_snapshot")
    yield
    world.chain.rpc.request("evm_revert", [snapshot])
    world.account, world.account_contract = first
    world.grants = 0


def _grant(world: World, permission: TypedDataPermission) -> Any:
    """A new session key granted ``permission`` on chain, and the SDK's session for it."""
    world.next_grant()
    key = SessionKey.generate()
    session = Session(session_key=key.address, typed_data_permissions=(permission,))
    session_id = world.grant_onchain(session)
    grant = SessionGrant(
        session=session,
        account=world.account,
        module=world.module.address,
        chain_id=world.chain_id,
        entry_point=world.entry_point.address,
        epoch=world.epoch(),
        session_id=session_id,
        how="onchain",
    )
    return world.net.session(grant, key)


def module_verdict(
    world: World, digest: bytes, signature: bytes, sender: str
) -> tuple[str | None, int | None]:
    """The module's refusal of ``signature`` for ``digest`` asked by ``sender`` (None: valid) and, for a rule's
    refusal, the rule's index; its ERC-1271 answer agrees."""
    module = world.module
    body = signature[20:]
    answer = bytes(module.isValidSignatureWithSender(sender, digest, body, sender=world.account))
    try:
        module.requireValidSignature(world.account, sender, digest, body)
    except JsonRpcError as error:
        assert answer == bytes.fromhex("ffffffff")
        ruled = ("SignedRuleViolated", "SignedNonCanonical", "ContentsTooShort")
        refusal = world.refusal(error)
        if refusal is None:
            return "0x" + revert_bytes(error).hex(), None
        name, inputs = refusal
        return name, int(inputs["ruleIndex"]) if name in ruled else None
    assert answer == bytes.fromhex("1626ba7e")
    return None, None


def _domain(draw: st.DrawFn, world: World) -> dict[str, Any]:
    fields = draw(st.integers(0, 0x1F))
    domain: dict[str, Any] = {}
    if fields & 0x01:
        domain["name"] = draw(st.sampled_from(["", "Exchange", "Permit2"]))
    if fields & 0x02:
        domain["version"] = draw(st.sampled_from(["1", "2"]))
    if fields & 0x04:
        domain["chainId"] = draw(st.sampled_from([world.chain_id, 1, 2**64]))
    if fields & 0x08:
        domain["verifyingContract"] = draw(st.sampled_from([world.permits.address, "0x" + "5e" * 20]))
    if fields & 0x10:
        domain["salt"] = draw(st.binary(min_size=32, max_size=32))
    return domain


def judge(world: World, sdk: Any, data: dict[str, Any], ruled: list[Ruled], granted: bool) -> str | None:
    """The SDK's verdict on ``data`` against the module's and the account's on the leaked key's signature, and
    against the rules as written."""
    typed = TypedData(data)
    digest = typed.digest
    assert digest == _eth_account_digest(data)
    try:
        sdk.sign_typed_data(data)
        local: tuple[str | None, int | None] = (None, None)
    except SignatureRefusedError as error:
        local = (error.reason, error.rule_index)
    forged = forge_typed_data(sdk, data)
    verdict = module_verdict(world, digest, forged, world.permits.address)
    if granted:
        assert verdict == local, f"the SDK says {local}, the module {verdict}"
        assert local == expected_verdict(ruled, data["message"]), (
            f"the rules as written say otherwise than {local}"
        )
    else:  # another domain: the SDK finds no permission; the signature, made for the granted one, hashes another
        assert local[0] == "SigningNotGranted"
        assert verdict[0] == "ContentsMismatch"
    accepted = verdict[0] is None
    assert bytes(world.account_contract.isValidSignature(digest, forged))[:4] == (
        bytes.fromhex("1626ba7e") if accepted else bytes.fromhex("ffffffff")
    )
    assert world.permits.isValidSignatureNow(world.account, digest, forged) == accepted
    return local[0]


@settings(
    max_examples=EXAMPLES,
    derandomize=not DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_sdk_and_the_module_judge_typed_data_of_any_type_alike(world, data):
    primary, types = data.draw(eip712_types(), label="types")
    ruled = data.draw(rules(primary, types), label="rules")
    domain = _draw_domain(data, world)
    permission = built_or_refused(domain, types, primary, ruled)
    if permission is None:
        return
    event(f"nested frames: {len(permission.nested)}")
    for rule in ruled:
        event(f"rule: {rule.op} on {'a nested ' if len(rule.path) > 1 else ''}{rule.kind}")
    sdk = _grant(world, permission)
    for _ in range(3):
        message = data.draw(messages_near(primary, types, ruled), label="message")
        typed_data = {"types": types, "primaryType": primary, "domain": domain, "message": message}
        event(f"verdict: {judge(world, sdk, typed_data, ruled, True) or 'signed'}")
    other = dict(domain, name="another " + str(domain.get("name", "")))
    message = data.draw(messages_near(primary, types, ruled), label="message elsewhere")
    judge(
        world,
        sdk,
        {"types": types, "primaryType": primary, "domain": other, "message": message},
        ruled,
        False,
    )


def built_or_refused(
    domain: dict[str, Any], types: dict[str, list[dict[str, str]]], primary: str, ruled: list[Ruled]
) -> TypedDataPermission | None:
    """The SDK's permission for ``ruled``, or None when their paths reach into more nested structs than the module
    expands (each struct member a rule's path goes through is one frame): the builder must refuse exactly those,
    naming the count and the limit."""
    frames = {rule.path[:depth] for rule in ruled for depth in range(1, len(rule.path))}
    try:
        permission = Policy.typed_data(domain, types, primary, [rule.spec() for rule in ruled])
    except BadInputError as refused:
        assert len(frames) > MAX_NESTED, refused
        assert f"reach into {len(frames)} nested structs" in str(refused), refused
        assert f"at most {MAX_NESTED} per permission" in str(refused), refused
        event("refused: rules reach into more nested structs than the module expands")
        return None
    assert len(permission.nested) == len(frames) <= MAX_NESTED
    return permission


def _draw_domain(data: Any, world: World) -> dict[str, Any]:
    return data.draw(st.composite(lambda draw: _domain(draw, world))(), label="domain")


def test_a_rule_on_a_bytes_field_given_as_hex_binds_those_bytes_for_the_module_too(world):
    """A rule ``== "0x0102"`` on a ``bytes`` field (the JSON form a dapp copies from typed data) binds the bytes
    0x0102: the SDK signs the message holding them, in either form, and the module and the account take the leaked
    key's signature of it; the six characters "0x0102" as bytes, which the builder once bound instead, are refused
    by all three."""
    types = {"Order": [{"name": "to", "type": "address"}, {"name": "data", "type": "bytes"}]}
    domain = {"name": "Exchange", "chainId": world.chain_id, "verifyingContract": world.permits.address}
    ruled = [Ruled(("data",), "bytes", "eq", ("0x0102",))]
    sdk = _grant(world, Policy.typed_data(domain, types, "Order", [rule.spec() for rule in ruled]))
    verdicts = {}
    for data in ("0x0102", b"\x01\x02", b"0x0102"):
        message = {"to": world.account, "data": data}
        typed_data = {"types": types, "primaryType": "Order", "domain": domain, "message": message}
        judge(world, sdk, typed_data, ruled, True)
        verdicts[data] = module_verdict(
            world, TypedData(typed_data).digest, forge_typed_data(sdk, typed_data), ZERO
        )
    assert verdicts == {
        "0x0102": (None, None),
        b"\x01\x02": (None, None),
        b"0x0102": ("SignedRuleViolated", 0),
    }


# -- rules typed otherwise than their fields ----------------------------------------------------------------

RULE_TYPES = [0x00, 0x0C, 0x18, 0x1F, 0x20, 0x38, 0x3F, 0x40, 0x48, 0x5F, 0x60, 0x1D, 0x34]
"""uint256 (the type of a hash word too), address, uint64, uint8, int256, int64, int8, bytes32, bytes24, bytes1,
bool, uint24 and int96 (widths no drawn type has; uint160 is address's 0x0c)."""


@st.composite
def retyped(draw: st.DrawFn, permission: TypedDataPermission) -> TypedDataPermission:
    """``permission`` as a hand-made grant request may carry it (no SDK check): some rules retyped, some added on
    any word of the contents (struct, array, string and bytes words included) or past them, each of any type (the
    field's own half the time, so that a well-typed rule ordering a hash word is drawn as often as a mistyped one)
    and any one-value condition; the values are zeros, canonical for every type."""
    fields = typed_data_fields(permission)
    words = len(fields)
    structs = {name for name, _ in contents_definitions(permission.contents_type)}
    kept = [r for r in permission.rules if draw(st.integers(0, 3)) != 0]
    for index, rule in enumerate(kept):
        if draw(st.booleans()):
            kept[index] = rule.model_copy(
                update={
                    "arg_type": draw(st.sampled_from(RULE_TYPES)),
                    "values": tuple(0 for _ in rule.values),
                }
            )
    for _ in range(draw(st.integers(0, 3))):
        word = draw(st.integers(0, words - 1) | st.integers(words, words + 3))
        field = fields.get(32 * word)
        own = None if field is None else field_arg_type(field[1], structs)
        kinds = st.sampled_from(RULE_TYPES) if own is None else st.sampled_from(RULE_TYPES) | st.just(own)
        kept.insert(
            draw(st.integers(0, len(kept))),
            Rule(
                condition=draw(
                    st.sampled_from([c for c in Condition if c not in (Condition.IN_RANGE, Condition.ONE_OF)])
                ),
                offset=32 * word,
                arg_type=draw(kinds),
                values=(0,),
            ),
        )
    update: dict[str, Any] = {"rules": tuple(kept[:8])}
    if (
        draw(st.integers(0, 3)) == 0
    ):  # struct frames expanded at any words (strictly increasing, as the module takes)
        update["nested"] = tuple(sorted(set(draw(st.lists(st.integers(0, words + 2), max_size=3)))))
    return permission.model_copy(update=update)


@settings(
    max_examples=EXAMPLES * 4,
    derandomize=not DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_sdk_and_the_module_refuse_alike_a_rule_typed_otherwise_than_its_field(world, data):
    """A grant whose rules carry any type, on any word of a random EIP-712 type (nested structs expanded): the
    module refuses to enable it (``TypedDataRuleTypeMismatch``, naming the first such rule, its offset, its type and
    the field's) exactly when the SDK finds a rule typed otherwise than its field (``mistyped_rules``: the atomic
    type's own, uint256 for a hash word), and the SDK refuses to build it, naming the rule and the field. A rule
    past the contents reads no field: both take it. A ``nested`` list redrawn at any words expands structs where it
    names struct members; a grant with rules and an entry on no struct is refused by both
    (``InvalidTypedDataPermission``). A rule ordering (>=, <) a word that is a hash (string, bytes, array, struct)
    is refused by both too (``TypedDataRuleOrdersHash``, ``ordered_hashes``): the module names the first rule it
    refuses for either reason, and so does the SDK."""
    primary, types = data.draw(eip712_types(), label="types")
    ruled = data.draw(rules(primary, types), label="rules")
    domain = _draw_domain(data, world)
    built = built_or_refused(domain, types, primary, ruled)
    if built is None:
        return
    permission = data.draw(retyped(built), label="retyped")
    session = Session.model_construct(
        session_key=SessionKey.generate().address, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(),
        salt=0, permissions=(), limits=(), co_signer=None, typed_data_permissions=(permission,), sign_in=(),
    )  # fmt: skip
    refusal = world.enable_call(session)
    verdict: Any = None
    if refusal is not None:
        name, inputs = refusal
        if name == "TypedDataRuleTypeMismatch":
            verdict = inputs
        elif name == "TypedDataRuleOrdersHash":
            verdict = {"ordered": inputs}
        elif name == "InvalidTypedDataPermission":
            verdict = {"malformed": inputs["index"]}
        else:
            raise AssertionError(f"enableSession refused with {name}{inputs}")
    try:
        mistyped = mistyped_rules(permission)
        ordered = ordered_hashes(
            permission.contents_name,
            permission.contents_type,
            permission.nested,
            [(rule.offset, rule.arg_type, rule.condition) for rule in permission.rules],
        )
    except BadInputError as error:  # a nested entry on a word that is no struct of a frame before it
        assert "which is not a nested struct of it" in str(error)
        if not permission.rules:
            event("taken: frames without rules are not read")
            assert verdict is None
            return
        event("refused: a nested entry on no struct")
        assert verdict == {"malformed": 0}
        with pytest.raises(BadInputError, match="which is not a nested struct of it"):
            TypedDataPermission(**permission.model_dump())
        return
    structs = {name for name, _ in contents_definitions(permission.contents_type)}
    if not mistyped and not ordered:
        event("taken")
        assert verdict is None
        TypedDataPermission(**permission.model_dump())
        return
    if ordered and (not mistyped or ordered[0][0] < mistyped[0][0]):
        index, path, kind = ordered[0]
        event(f"refused: {'a struct' if kind in structs else kind} ordered")
        rule = permission.rules[index]
        assert verdict == {
            "ordered": {
                "permissionIndex": 0,
                "ruleIndex": index,
                "offset": rule.offset,
                "condition": rule.condition,
            }
        }
        with pytest.raises(
            BadInputError, match=rf"rule {index} of the {primary} permission orders the field {path} "
        ):
            TypedDataPermission(**permission.model_dump())
        return
    index, path, kind = mistyped[0]
    event(f"refused: {kind} read as another type")
    rule = permission.rules[index]
    field_type = field_arg_type(kind, structs)
    assert verdict == {
        "permissionIndex": 0,
        "ruleIndex": index,
        "offset": rule.offset,
        "ruleType": rule.arg_type,
        "fieldType": 0xFF if field_type is None else field_type,
    }
    with pytest.raises(
        BadInputError, match=rf"rule {index} of the {primary} permission reads the field {path} "
    ):
        TypedDataPermission(**permission.model_dump())


KINDS = [
    *(
        "uint",
        "int",
        "byte",
        "function",
        "address",
        "bool",
        "string",
        "bytes",
        "Inner",
        "Inner[]",
        "uint8[2][]",
    ),
    *("uint7", "uint08", "uint264", "uint1000", "int0", "bytes0", "bytes33", "bytes032", "Outer2", "uint64 "),
    *("uint1F", "bytes1F"),
]
"""Member types as a contents type may spell them: aliases, every kind of hash word, and names no rule type reads
(widths out of range or with a leading zero, a struct the contents type does not define, a trailing space, a width
holding a letter, which read digit by digit as the characters above '9' would be 10 + 22 = 32 bits or bytes)."""


@pytest.mark.parametrize("kind", KINDS)
def test_the_module_reads_a_member_s_type_as_the_sdk_does(world, kind):
    """For each spelling of a member's type, a rule of each type on it: the module takes exactly the rule whose type
    is the SDK's ``field_arg_type`` of the member (none for a type no rule type names), and refuses the others
    naming that type (0xff for none)."""
    contents_type = f"Order(uint8 head,{kind} a)Inner(uint8 x)"
    expected = field_arg_type(kind, {"Order", "Inner"})
    for arg_type in sorted({*RULE_TYPES, 0x1A, 0x48, 0x5F, 0x0C}):
        permission = TypedDataPermission.model_construct(
            domain_fields=0, name="", version="", chain_id=0, verifying_contract=ZERO, salt=bytes(32),
            contents_name="Order", contents_type=contents_type, nested=(), label=None,
            rules=(Rule.model_construct(condition=Condition.NOT_EQUAL, offset=32, arg_type=arg_type, values=(0,),
                                        name=None),),
        )  # fmt: skip
        session = Session.model_construct(
            session_key=SessionKey.generate().address, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(),
            salt=0, permissions=(), limits=(), co_signer=None, typed_data_permissions=(permission,), sign_in=(),
        )  # fmt: skip
        assert bool(mistyped_rules(permission)) == (arg_type != expected)
        refusal = world.enable_call(session)
        if arg_type == expected:
            assert refusal is None, (kind, refusal)
            continue
        assert refusal is not None, kind
        name, inputs = refusal
        assert name == "TypedDataRuleTypeMismatch", (kind, refusal)
        assert inputs["fieldType"] == (0xFF if expected is None else expected), kind
        assert inputs["ruleType"] == arg_type
