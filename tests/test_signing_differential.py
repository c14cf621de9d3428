"""Differential: the SDK's check of what a session may sign (``keyscope.message_signing``) against the module's
verdict on the real EVM, on generated grants and messages.

Each typed-data example makes up to three contents types (a primary struct of 1 to 6 members of any ABI type:
uintN, intN, address, bool, bytesN, bytes, string, and struct members, nested up to two levels) and grants one
session a signing permission for each (now and then an earlier one's type again), in a domain of any ERC-5267
fields, expanding nested structs at random, with rules of every condition on any word the SDK lets a rule read
(atoms, the hash words of strings, bytes and structs, a word past the contents), each rule of its field's type,
with values at the type's edges. The session's window is open, not yet open or closed. Then messages, their
ruled members at and beside the rules' values:

* the SDK's verdict, ``check_typed_data``: the permission it signs under, or the refusal's reason, permission and
  rule;
* the module's verdict (``requireValidSignature``) on the signature a leaked session key makes of the same
  contents under the message's own domain and type: the same;
* where the module reads words an EIP-712 encoder never makes (a word dirty for its type, its frame's hash carried
  up to the contents hash), the SDK's judgement of those very words (``check_words``) against the module's; now
  and then a dirty word of a nested struct's frame is left without its hash carried up, which the module refuses
  before it judges a word (``NestedStructMismatch``);
* now and then the typed data names the account or the module as its verifying contract, which then asks: the SDK
  refuses to sign for it (``refuse_forbidden_verifier``), the module refuses the signature
  (``SignatureSenderForbidden``), whatever the contents;
* a quarter of the signatures (picked by a hash of the message, drawing nothing) are asked about once more
  malformed: cut at any byte, extended, a byte changed, the frame count, the first frame's size or the sign-in's
  line length changed. The module takes none of them (it reads every byte of a session signature), and refuses a
  layout that does not add up with ``MalformedSignature``, after the permission and window checks its body's first
  words select (before them when the header or the body's first words are cut).

A fifth of the typed-data and sign-in messages are signed forged: the header names the session's key, another key
signs (for a sign-in session granted with a co-signer, a third of them, another key makes the co-signature). The
module judges the contents first, so it refuses a forged signature for the SDK's reason when the SDK refuses, and
otherwise with ``InvalidSessionSignature`` (``InvalidCoSignature``).

Each sign-in example grants websites of any spelling RFC 3986 allows and judges messages whose first line is a
granted website respelled (case, scheme, port, spaces, look-alike letters) and whose second line is the account in
any spelling, or not.

The account is a development account of a fresh anvil of this file's own (the module is ape's build of its source,
on a node that runs it natively) that enables its sessions itself (the module keys storage by its caller); the
verifier asking is the zero address, as an ``eth_call`` without a sender is (but for the verifying contracts above).
``KEYSCOPE_FUZZ=deep`` runs many more examples than the default ("ci").
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import event, given, settings
from hypothesis import strategies as st

from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.erc1271 import Signer, co_sign_digest, encode_sign_in_signature, encode_typed_data_signature
from keyscope.errors import BadInputError
from keyscope.grant import SessionGrant
from keyscope.hexutil import to_address
from keyscope.message_signing import SignatureRefusedError, check_sign_in, check_typed_data, check_words
from keyscope.revert import decode_revert
from keyscope.session import (
    SIGN_IN_SUFFIX,
    ArgType,
    Condition,
    Rule,
    Session,
    TypedDataPermission,
    rule_words,
)
from keyscope.signing import LocalSigner
from keyscope.signing_checks import refuse_forbidden_verifier
from keyscope.typed_data import (
    Field,
    Frames,
    TypedData,
    contents_type,
    eip191_hash,
    personal_sign_hash,
    typed_data_sign_hash,
)
from keyscope.typed_fields import ORDER_CONDITIONS, field_arg_type, is_hashed, nested_frames
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.fuzz import DEEP, FUZZ, ON_CHAIN
from support.malformed import malform
from support.raw_call import revert_bytes

TYPED_EXAMPLES = 400 if DEEP else 30
"""Sessions of the typed-data test: each is one transaction and about 15 judged signatures."""
SIGN_IN_EXAMPLES = 300 if DEEP else 25
MESSAGES = 5
"""Messages per typed-data permission; each is judged as typed data and, when granted, once more with dirty words."""
SIGN_INS = 12
"""Sign-in messages per sign-in example."""


U256 = 2**256 - 1
ZERO = "0x" + "00" * 20
FAR = 10**6
"""Seconds between the chain's time and a closed window's edge: no block time rounding decides a verdict."""
REQUIRE_VALID_SIGNATURE = keccak(b"requireValidSignature(address,address,bytes32,bytes)")[:4]
STRANGER = LocalSigner(keccak(b"keyscope signing differential stranger"))
"""The key that makes forged signatures: it holds no session."""
CO_SIGNER = LocalSigner(keccak(b"keyscope signing differential co-signer"))
"""The co-signer of the sign-in sessions granted with one."""
FORGED = ("InvalidSessionSignature", None, None)
"""The module's verdict on a forged signature of contents it would take."""
TALLY: Counter[str] = Counter()
MALFORMED = "MalformedSignature"
BEFORE_LAYOUT = {
    "typed data": ("SigningNotGranted", "SignatureOutsideWindow"),
    "sign-in": ("SignInNotGranted", "SignatureOutsideWindow"),
}
"""The refusals the module gives before it reads a body's layout (its permission, looked up by the body's first
words; the permission's window)."""

# -- contents types -----------------------------------------------------------------------------------------------

ATOMS = (
    *(f"uint{bits}" for bits in (8, 16, 24, 48, 64, 96, 128, 160, 248, 256)),
    *(f"int{bits}" for bits in (8, 16, 40, 64, 128, 248, 256)),
    "uint",
    "int",
    "address",
    "bool",
    *(f"bytes{size}" for size in (1, 2, 4, 20, 24, 31, 32)),
    "bytes",
    "string",
)
PRIMARY_NAMES = ("Order", "Permit", "Mail", "Z", "Q1")
NESTED_NAMES = ("Asset", "Leg", "Terms", "A", "Ord", "Order2")
"""Nested structs' names: some sort before the primary's, some begin with another's (the module finds a definition by
its name in the contents type)."""
MEMBER_NAMES = (
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
    "a",
    "b",
)
STRINGS = ("", "a", "hello", "h\u00e9llo", "0x00", "Permit2")
BYTES = (b"", b"\x00", b"\x01\x02", b"\xff" * 33, b"0x0102")

Types = dict[str, list[dict[str, str]]]


@st.composite
def eip712_types(draw: st.DrawFn, primary: str) -> Types:
    """``primary`` and the structs it uses: up to two nested structs (the second may hold the first), 1 to 6
    members each, of any atomic type or an earlier struct."""
    nested = draw(st.lists(st.sampled_from(NESTED_NAMES), max_size=2, unique=True))
    types: Types = {}
    for name in [*nested, primary]:
        names = draw(st.lists(st.sampled_from(MEMBER_NAMES), min_size=1, max_size=6, unique=True))
        earlier = list(types)
        members = []
        for member in names:
            kinds = st.sampled_from(ATOMS)
            if earlier:
                kinds = kinds | st.sampled_from(earlier)
            members.append({"name": member, "type": draw(kinds)})
        types[name] = members
    used, queue = set(), [primary]
    while queue:
        struct = queue.pop()
        if struct not in used:
            used.add(struct)
            queue += [m["type"] for m in types[struct] if m["type"] in types]
    return {name: members for name, members in types.items() if name in used}


@dataclass(frozen=True)
class Word:
    """A word of the flattened contents: its index, the member's path from the primary struct, and its type."""

    index: int
    path: tuple[str, ...]
    kind: str


def layout(draw: st.DrawFn, primary: str, types: Types) -> tuple[tuple[int, ...], list[Word]]:
    """Which struct members a permission expands (its ``nested`` list: their word indices, breadth first) and the
    words of the flattened contents that gives."""
    frames = [((), primary, 0)]
    words: list[Word] = []
    nested: list[int] = []
    end = len(types[primary])
    i = 0
    while i < len(frames):
        path, struct, start = frames[i]
        for index, member in enumerate(types[struct]):
            here = (*path, member["name"])
            words.append(Word(start + index, here, member["type"]))
            if member["type"] in types and len(nested) < 8 and draw(st.integers(0, 2)):
                nested.append(start + index)
                frames.append((here, member["type"], end))
                end += len(types[member["type"]])
        i += 1
    return tuple(nested), words


# -- values --------------------------------------------------------------------------------------------------------


def padding(arg_type: int) -> int:
    """Bytes of the word a rule type leaves out (zero, or the sign's extension)."""
    return arg_type & 0x1F


def kind_of(arg_type: int) -> int:
    """0 uint, 1 int, 2 bytesN, 3 bool."""
    return arg_type >> 5


def bounds(arg_type: int) -> tuple[int, int]:
    """The values of a rule type as numbers: unsigned words, signed integers, bytesN's bytes as a number."""
    bits = 256 - 8 * padding(arg_type)
    if arg_type == ArgType.BOOL:
        return 0, 1
    if ArgType.is_signed(arg_type):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def to_word(arg_type: int, number: int) -> int:
    """The canonical word of ``number`` (see :func:`bounds`)."""
    if kind_of(arg_type) == 2:  # bytesN: left-aligned
        return number << (8 * padding(arg_type))
    return number & U256


def to_number(arg_type: int, word: int) -> int:
    if kind_of(arg_type) == 2:
        return word >> (8 * padding(arg_type))
    if ArgType.is_signed(arg_type) and word >> 255:
        return word - 2**256
    return word


def hash_of(kind: str, value: Any) -> int:
    return int.from_bytes(keccak(value.encode() if kind == "string" else value), "big")


def edges(arg_type: int) -> list[int]:
    low, high = bounds(arg_type)
    return sorted({n for n in (low, low + 1, -1, 0, 1, high - 1, high) if low <= n <= high})


@st.composite
def reference_word(draw: st.DrawFn, word: Word, structs: set[str]) -> int:
    """A rule's reference value for ``word``: a canonical word of its field's type, its edges likelier; a string's
    or bytes' hash of a value messages hold; any word for a struct's hash."""
    if word.kind in ("string", "bytes"):
        pool = STRINGS if word.kind == "string" else BYTES
        return hash_of(word.kind, draw(st.sampled_from(pool)))
    if word.kind in structs:
        return draw(st.integers(0, U256))
    arg_type = field_arg_type(word.kind, structs)
    assert arg_type is not None
    low, high = bounds(arg_type)
    return to_word(arg_type, draw(st.sampled_from(edges(arg_type)) | st.integers(low, high)))


@st.composite
def rules(draw: st.DrawFn, words: list[Word], structs: set[str]) -> tuple[Rule, ...]:
    """Up to five rules of any condition, each on a word of the contents (typed as its field) or past them; on a word
    that is a hash, only the conditions that bind it (==, !=, one_of: ordering a hash is refused at grant time)."""
    made: list[Rule] = []
    for _ in range(draw(st.integers(0, 5))):
        past = draw(st.integers(0, 9)) == 0
        word = Word(len(words) + draw(st.integers(0, 2)), ("past",), "uint256") if past else None
        word = word or draw(st.sampled_from(words))
        arg_type = field_arg_type(word.kind, structs)
        assert arg_type is not None
        conditions = list(Condition)
        if not past and is_hashed(word.kind, structs):
            conditions = [c for c in conditions if c not in ORDER_CONDITIONS]
        condition = draw(st.sampled_from(conditions))
        count = {Condition.IN_RANGE: 2, Condition.ONE_OF: draw(st.integers(1, 3))}.get(condition, 1)
        values = [draw(reference_word(word, structs)) for _ in range(count)]
        if condition == Condition.IN_RANGE:
            values.sort(key=lambda w: to_number(arg_type, w) if ArgType.is_signed(arg_type) else w)
        rule = Rule(condition=condition, offset=32 * word.index, arg_type=arg_type, values=tuple(values))
        if sum(rule_words(r) for r in (*made, rule)) <= 31:
            made.append(rule)
    return tuple(made)


@st.composite
def domains(draw: st.DrawFn, chain_id: int) -> dict[str, Any]:
    fields = draw(st.integers(0, 0x1F))
    domain: dict[str, Any] = {}
    if fields & 0x01:
        domain["name"] = draw(st.sampled_from(["", "Exchange", "Permit2", "h\u00e9"]))
    if fields & 0x02:
        domain["version"] = draw(st.sampled_from(["1", "2", ""]))
    if fields & 0x04:
        domain["chainId"] = draw(st.sampled_from([chain_id, 1, 0, U256]))
    if fields & 0x08:
        domain["verifyingContract"] = draw(
            st.sampled_from(["0x" + "5e" * 20, "0x000000000022D473030F116dDEE9F6B43aC78BA3"])
        )
    if fields & 0x10:
        domain["salt"] = "0x" + draw(st.binary(min_size=32, max_size=32)).hex()
    return domain


@dataclass
class Grant:
    """A typed-data permission as the test made it: its types, domain and the words of its contents."""

    primary: str
    types: Types
    domain: dict[str, Any]
    words: list[Word]
    permission: TypedDataPermission
    structs: set[str] = field(default_factory=set)

    def near(self, path: tuple[str, ...]) -> list[int]:
        """The words the rules on the member at ``path`` compare with, and their neighbours."""
        index = next((w.index for w in self.words if w.path == path), None)
        found = []
        for rule in self.permission.rules:
            if rule.offset == 32 * index:
                for value in rule.values:
                    number = to_number(rule.arg_type, value)
                    low, high = bounds(rule.arg_type)
                    found += [
                        to_word(rule.arg_type, n)
                        for n in (number - 1, number, number + 1)
                        if low <= n <= high
                    ]
        return found


@st.composite
def grants(draw: st.DrawFn, chain_id: int, primary: str, types: Types | None = None) -> Grant:
    """A typed-data permission of ``primary`` (of ``types``, or new ones) in a domain of any fields."""
    types = types or draw(eip712_types(primary))
    domain = draw(domains(chain_id))
    nested, words = layout(draw, primary, types)
    structs = set(types)
    ruled = draw(rules(words, structs))
    fields = sum(
        bit
        for name, bit in (("name", 1), ("version", 2), ("chainId", 4), ("verifyingContract", 8), ("salt", 16))
        if name in domain
    )
    permission = TypedDataPermission(
        domain_fields=fields,
        name=domain.get("name", ""),
        version=domain.get("version", ""),
        chain_id=domain.get("chainId", 0),
        verifying_contract=domain.get("verifyingContract", ZERO),
        salt=domain.get("salt", "0x" + "00" * 32),
        contents_name=primary,
        contents_type=contents_type(
            primary, {n: [Field(m["name"], m["type"]) for m in ms] for n, ms in types.items()}
        ),
        nested=nested,
        rules=ruled,
    )
    return Grant(primary, types, domain, words, permission, structs)


def from_word(kind: str, word: int) -> Any:
    """The message's value (its JSON form) whose EIP-712 word is ``word``, a canonical word of ``kind``."""
    if kind == "address":
        return to_address(f"0x{word:040x}")
    if kind == "bool":
        return bool(word)
    arg_type = field_arg_type(kind)
    assert arg_type is not None
    number = to_number(arg_type, word)
    if kind.startswith("bytes"):
        return "0x" + number.to_bytes(32 - padding(arg_type), "big").hex()
    return number


@st.composite
def messages(draw: st.DrawFn, grant: Grant) -> dict[str, Any]:
    """A message of the grant's primary type, its ruled members at or beside the rules' values (or anywhere)."""

    def value(path: tuple[str, ...], kind: str) -> Any:
        if kind in grant.types:
            return {m["name"]: value((*path, m["name"]), m["type"]) for m in grant.types[kind]}
        if kind == "string":
            return draw(st.sampled_from(STRINGS) | st.text(max_size=6))
        if kind == "bytes":
            raw = draw(st.sampled_from(BYTES) | st.binary(max_size=40))
            return "0x" + raw.hex() if draw(st.booleans()) else raw
        arg_type = field_arg_type(kind)
        assert arg_type is not None
        low, high = bounds(arg_type)
        near = grant.near(path) if any(w.path == path for w in grant.words) else []
        choices = st.sampled_from([to_word(arg_type, n) for n in edges(arg_type)])
        choices = choices | st.integers(low, high).map(lambda n: to_word(arg_type, n))
        if near and draw(st.integers(0, 3)):
            choices = st.sampled_from(near)
        return from_word(kind, draw(choices))

    return value((), grant.primary)


# -- dirty words ---------------------------------------------------------------------------------------------------


def dirty(draw: st.DrawFn, kind: str, word: int) -> int | None:
    """``word`` with bits its type leaves clear (or sign-extends) changed: a word no EIP-712 encoder makes, that a
    verifier reading the field cleaned to its type would read as ``word``. None for a type every word is."""
    arg_type = field_arg_type(kind)
    if arg_type is None or not ArgType.restricts(arg_type):
        return None
    if arg_type == ArgType.BOOL:
        return draw(st.sampled_from([2, 3, 2**255, U256]))
    unused = 8 * padding(arg_type)
    if kind_of(arg_type) == 2:  # bytesN: the low bits
        return word ^ (1 << draw(st.integers(0, unused - 1)))
    return word ^ (1 << draw(st.integers(256 - unused, 255)))  # uintN, intN, address: the high bits


@st.composite
def dirtied(draw: st.DrawFn, grant: Grant, frames: Frames) -> tuple[Frames, list[str], int] | None:
    """``frames`` with one or two atomic words dirty (one a ruled word, if a rule reads an atom), each nested frame's
    hash carried up to its parent word, and 0; or, now and then when a dirty word is in a nested frame, with the
    hashes left as they were, and the first nested frame that no longer hashes to its parent word (which the module
    refuses, ``NestedStructMismatch``: else the rules would judge words other than the ones the contents hash
    binds). None when no word can be dirty."""
    words = [int.from_bytes(w, "big") for w in frames.words]
    ruled = {rule.offset // 32 for rule in grant.permission.rules}
    candidates = [
        w
        for w in grant.words
        if w.index < len(words) and field_arg_type(w.kind, grant.structs) not in (None, 0x00, 0x20, 0x40)
    ]
    if not candidates:
        return None
    under_rules = [w for w in candidates if w.index in ruled]
    chosen = [draw(st.sampled_from(under_rules or candidates))]
    if draw(st.booleans()):
        chosen.append(draw(st.sampled_from(candidates)))
    changed = []
    for w in chosen:
        new = dirty(draw, w.kind, words[w.index])
        if new is not None:
            words[w.index] = new
            changed.append(".".join(w.path))
    if not changed:
        return None
    # the words that differ now (a word made dirty twice may be back as it was)
    indices = [i for i, word in enumerate(frames.words) if int.from_bytes(word, "big") != words[i]]
    starts = list(itertools.accumulate(frames.sizes, initial=0))
    stale = [k for k in range(1, len(frames.sizes)) if any(starts[k] <= i < starts[k + 1] for i in indices)]
    if stale and keccak(words[indices[0]].to_bytes(32, "big"))[0] % 2 == 0:  # half, drawing nothing more
        return (
            Frames(frames.sizes, frames.nested_type_hashes, tuple(w.to_bytes(32, "big") for w in words)),
            changed,
            min(stale),
        )
    # carry each nested frame's hash up to its parent word, last frame first (parents come before their frames)
    for k in range(len(frames.sizes) - 1, 0, -1):
        parent = grant.permission.nested[k - 1]
        body = b"".join(w.to_bytes(32, "big") for w in words[starts[k] : starts[k + 1]])
        words[parent] = int.from_bytes(keccak(frames.nested_type_hashes[k - 1] + body), "big")
    return (
        Frames(frames.sizes, frames.nested_type_hashes, tuple(w.to_bytes(32, "big") for w in words)),
        changed,
        0,
    )


# -- the chain -----------------------------------------------------------------------------------------------------


@dataclass
class Chain:
    """The module, the accounts that enable sessions on it (development accounts of the file's anvil), and the
    node."""

    module: AnvilContract
    accounts: list[str]
    chain: AnvilChain
    chain_id: int
    sessions: int = 0

    @property
    def account(self) -> str:
        """The account enabling the next session: a new one every 25 sessions (at most 8 signing permissions each,
        the module holds 256 live permissions per account)."""
        return self.accounts[1 + (self.sessions // 25) % (len(self.accounts) - 1)]

    def now(self) -> int:
        return int(self.chain.rpc.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def mine_at(self, timestamp: int) -> None:
        """Mine a block of ``timestamp``: the chain's time from then on."""
        self.chain.rpc.request("evm_mine", [timestamp])

    def enable(self, session: Session) -> tuple[str, bytes]:
        account = self.account
        self.sessions += 1
        self.chain.send(
            account, self.module.address, self.module.enableSession.encode_input(session.as_abi())
        )
        return account, session.session_id(account, int(self.module.epochOf(account)))

    def verdict(
        self, account: str, hash_: bytes, body: bytes, sender: str = ZERO
    ) -> tuple[str | None, dict[str, Any]]:
        """The module's refusal of ``body`` for ``hash_`` asked by ``sender`` (the zero address by default; None:
        valid), with its arguments."""
        data = REQUIRE_VALID_SIGNATURE + abi_encode(
            ["address", "address", "bytes32", "bytes"], [account, sender, hash_, body]
        )
        tx = {"from": account, "to": self.module.address, "data": "0x" + data.hex(), "gas": 30_000_000}
        try:
            self.chain.call(tx)
        except Exception as error:
            raw = revert_bytes(error)
            decoded = decode_revert(raw)
            assert decoded is not None, f"the module reverted with 0x{raw.hex()}"
            return decoded
        return None, {}


FUZZ_TESTS = {
    "test_the_sdk_and_the_module_judge_typed_data_alike",
    "test_the_sdk_and_the_module_judge_sign_in_messages_alike",
}
ANOTHER_PERMISSION = "messages granted under another permission of their type"
REACHED = (
    "typed data: signed",
    "typed data: SigningNotGranted",
    "typed data: SignatureOutsideWindow",
    "typed data: SignedRuleViolated",
    "typed data: SignatureSenderForbidden",
    "typed data: InvalidSessionSignature",
    "dirty words: signed",
    "dirty words: SignedNonCanonical",
    "dirty words: SignedRuleViolated",
    "sign-in: signed",
    "sign-in: SignInNotGranted",
    "sign-in: SignInAccountMismatch",
    "sign-in: SignatureOutsideWindow",
    "malformed typed data: MalformedSignature",
    "malformed sign-in: MalformedSignature",
    "malformed sign-in: ContentsMismatch",
)
"""The verdicts a run of the whole module must compare at least once each. Rarer ones (a rule past the contents,
ContentsTooShort; a message granted under another permission of its type; a forged sign-in signature or
co-signature; a dirty word of a nested frame whose hash was not carried up, NestedStructMismatch) are counted and
printed: how often Hypothesis
reaches them depends on the constants it mines from the modules a run imports."""


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Print what the run compared (shown with ``-s``); when the whole module ran and passed, check that it reached
    every verdict of REACHED."""
    started = time.perf_counter()
    failed_before = request.session.testsfailed
    yield
    elapsed = time.perf_counter() - started
    ran = {item.name for item in request.session.items if item.module is request.module}
    signatures = sum(count for verdict, count in TALLY.items() if verdict != ANOTHER_PERMISSION)
    print(f"\nsigning differential ({FUZZ}): {signatures} signatures in {elapsed:.1f}s")
    print("verdicts:", ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items())))
    if ran >= FUZZ_TESTS and request.session.testsfailed == failed_before:
        missing = [verdict for verdict in REACHED if not TALLY[verdict]]
        assert not missing, f"the generated tests never compared {missing}"


@pytest.fixture(scope="module")
def evm(project) -> Iterator[Chain]:
    with anvil_chain() as chain:
        yield Chain(chain.deploy(project.SessionKeyValidator), list(chain.accounts), chain, chain.chain_id)


_keys = itertools.count()


def grant_of(evm: Chain, session: Session, account: str) -> SessionGrant:
    """The grant record of ``session``, enabled on chain by ``account``."""
    epoch = int(evm.module.epochOf(account))
    return SessionGrant(
        session=session,
        account=account,
        module=evm.module.address,
        chain_id=evm.chain_id,
        entry_point=ENTRY_POINT_V07,
        epoch=epoch,
        session_id=session.session_id(account, epoch),
        how="onchain",
    )


def fresh_key() -> LocalSigner:
    return LocalSigner(keccak(b"keyscope signing differential key %d" % next(_keys)))


def window(draw: st.DrawFn, now: int) -> tuple[int, int]:
    """A session's window: open (three of four), not open yet or closed (one of eight each)."""
    which = draw(st.integers(0, 7))
    return [
        (0, 0),
        (now - FAR, now + FAR),
        (now + FAR, 0),
        (0, 0),
        (now - FAR, 0),
        (1, now - FAR),
        (0, 0),
        (0, 0),
    ][which]


def sdk_verdict(
    check: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[str | None, int | None, int | None]:
    """The SDK's verdict: the refusal's reason, permission and rule, or None and the permission it signs under."""
    try:
        found = check(*args, **kwargs)
    except SignatureRefusedError as error:
        return error.reason, error.permission_index, error.rule_index
    return None, getattr(found, "permission_index", None), None


def module_terms(decoded: tuple[str | None, dict[str, Any]]) -> tuple[str | None, int | None, int | None]:
    name, args = decoded
    return name, args.get("permissionIndex"), args.get("ruleIndex")


def forged_verdict(
    sdk: tuple[str | None, int | None, int | None], forged: bool
) -> tuple[str | None, int | None, int | None]:
    """The module's verdict the SDK's ``sdk`` predicts for a signature made by the key (or, ``forged``, by another)."""
    return FORGED if forged and sdk[0] is None else sdk


def agree(
    sdk: tuple[str | None, int | None, int | None], module: tuple[str | None, int | None, int | None]
) -> bool:
    """The same reason, rule and (where the module names one) permission."""
    if sdk[0] != module[0] or sdk[2] != module[2]:
        return False
    return module[1] is None or sdk[1] == module[1]


def judge_malformed(
    evm: Chain,
    account: str,
    hash_: bytes,
    signature: bytes,
    lot: bytes,
    kind: str,
    canonical: str | None,
    expect: Callable[[bytes, str], str | None],
) -> None:
    """A quarter of the signatures (by ``lot``, drawing nothing) asked about once more, malformed (cut, extended, a
    byte changed, a length or count field changed: ``support.malformed``): the module takes none of them (every byte
    of a session signature is read: the header, the signatures, the body to its last byte), and where ``expect``
    (given the bytes and what was done) names the refusal, the module gives that one. ``canonical``: its verdict on
    the well-formed signature."""
    if lot[3] % 4:
        return
    body_at = 1 + {0: 86, 1: 98, 2: 163}[signature[1]]  # kind, who, key or id, the signatures
    fields = [(body_at + 64, 1), (body_at + 65, 1)] if kind == "typed data" else [(body_at, 2)]
    malformed, how = malform(signature, keccak(lot + b"malformed"), fields)
    remote = evm.verdict(account, hash_, malformed)[0]
    expected = expect(malformed, how)
    TALLY[f"malformed {kind}: {remote}"] += 1
    event(f"malformed {kind}: {remote}")
    assert remote is not None, f"{kind} signature {how}: the module takes it (well-formed: {canonical})"
    assert expected is None or remote == expected, (
        f"{kind} signature {how}: the module says {remote}, expected {expected} (well-formed: {canonical})"
    )


def typed_data_malformed(body_at: int, canonical: str | None) -> Callable[[bytes, str], str | None]:
    """The module's refusal of a malformed typed-data signature (well-formed: its body from byte ``body_at``; the
    module's verdict on it ``canonical``): of any other length, or with its frame count or first
    frame's size changed, MalformedSignature, once its permission and window pass (a body of fewer than 65 bytes,
    or a header cut short, is malformed before them); None (any refusal) for a changed byte."""

    def expect(malformed: bytes, how: str) -> str | None:
        if how.startswith("byte"):
            return None
        if len(malformed) < body_at + 65:
            return MALFORMED
        return canonical if canonical in BEFORE_LAYOUT["typed data"] else MALFORMED

    return expect


# -- typed data ----------------------------------------------------------------------------------------------------


def typed_signature(
    evm: Chain,
    key: LocalSigner,
    account: str,
    session_id: bytes,
    typed: TypedData,
    frames: Frames,
    forged: bool = False,
) -> tuple[bytes, bytes]:
    """A leaked session key's signature of the contents ``frames`` (words of any kind) under the message's own
    domain and type (``forged``: made by STRANGER, the header naming the key all the same), and the hash a verifier
    asks about for those words."""
    contents_hash = keccak(typed.type_hash + b"".join(frames.words[: frames.sizes[0]]))
    separator = typed.domain_separator
    signed = typed_data_sign_hash(
        separator,
        typed.primary_type,
        typed.contents_type,
        contents_hash,
        account=account,
        chain_id=evm.chain_id,
        module=evm.module.address,
    )
    header = Signer(key.address, session_id).header((STRANGER if forged else key).sign_hash(signed), None)
    body = encode_typed_data_signature(header, separator, typed.type_hash, frames)
    return keccak(b"\x19\x01" + separator + contents_hash), body


@settings(max_examples=TYPED_EXAMPLES, **ON_CHAIN)
@given(data=st.data())
def test_the_sdk_and_the_module_judge_typed_data_alike(evm, data):
    """Typed data of random contents types, grants and values, and contents words no encoder makes: the SDK's
    verdict is the module's, reason, permission and rule."""
    primaries = data.draw(st.lists(st.sampled_from(PRIMARY_NAMES), min_size=1, max_size=3, unique=True))
    made: list[Grant] = []
    for primary in primaries:
        if made and data.draw(st.booleans()):  # an earlier permission's type, in another domain
            earlier = data.draw(st.sampled_from(made))
            grant = data.draw(grants(evm.chain_id, earlier.primary, earlier.types), label="the type again")
        else:
            grant = data.draw(grants(evm.chain_id, primary), label=f"grant of {primary}")
        key_of = (grant.permission.domain_separator, grant.permission.contents_type_hash)
        if all((g.permission.domain_separator, g.permission.contents_type_hash) != key_of for g in made):
            made.append(grant)
    now = evm.now()
    valid_after, valid_until = data.draw(st.composite(lambda draw: window(draw, now))(), label="window")
    key = fresh_key()
    session = Session(
        session_key=key.address,
        typed_data_permissions=tuple(g.permission for g in made),
        valid_after=valid_after,
        valid_until=valid_until,
    )
    account, session_id = evm.enable(session)
    sid = "0x" + session_id.hex()
    for index, grant in enumerate(made):
        event(f"nested frames: {len(grant.permission.nested)}")
        for _ in range(MESSAGES):
            message = data.draw(messages(grant), label="message")
            domain = grant.domain
            if data.draw(st.integers(0, 4)) == 0:  # the type in another granted domain, or in none
                alike = [
                    g.domain
                    for g in made
                    if g is not grant and (g.primary, g.types) == (grant.primary, grant.types)
                ]
                domain = data.draw(
                    st.sampled_from(alike or [g.domain for g in made] + [{"name": "elsewhere"}])
                )
            typed_data = {
                "types": grant.types,
                "primaryType": grant.primary,
                "domain": domain,
                "message": message,
            }
            # which messages are asked about by the account or the module, and which are forged, follows from the
            # message, drawing nothing more: the strategies draw what they drew before these were added
            lot = keccak(repr(typed_data).encode())
            asker = ZERO
            if lot[0] % 8 == 0:
                asker = (account, evm.module.address)[lot[1] % 2]
                typed_data["domain"] = {**domain, "verifyingContract": asker}
            typed = TypedData(typed_data)
            if asker != ZERO:  # the SDK signs nothing for it; the module refuses whatever the contents
                refused = sdk_verdict(
                    refuse_forbidden_verifier, grant_of(evm, session, account), typed, index
                )
                hash_, body = typed_signature(
                    evm,
                    key,
                    account,
                    session_id,
                    typed,
                    typed.frames(nested_frames(grant.primary, typed.types, grant.permission.nested)),
                )
                remote = module_terms(evm.verdict(account, hash_, body, asker))
                TALLY[f"typed data: {refused[0] or 'signed'}"] += 1
                assert refused[0] == remote[0] == "SignatureSenderForbidden", (typed_data, refused, remote)
                continue
            forged = lot[2] % 5 == 0
            local = sdk_verdict(check_typed_data, session, typed_data, session_id=sid, now=now)
            granted = local[0] not in ("SigningNotGranted",)
            found = made[local[1]] if local[1] is not None else None
            permission = found.permission if found else None
            frames = typed.frames(
                nested_frames(grant.primary, typed.types, permission.nested if permission else ())
            )
            hash_, body = typed_signature(evm, key, account, session_id, typed, frames, forged)
            remote = module_terms(evm.verdict(account, hash_, body))
            expected = forged_verdict(local, forged)
            TALLY[f"typed data: {expected[0] or 'signed'}"] += 1
            event(f"typed data: {expected[0] or 'signed'}")
            assert agree(expected, remote), (
                f"permissions {[g.permission for g in made]}, a message of permission {index}'s type: {typed_data}: "
                f"the SDK says {local}, the module {remote}"
            )
            judge_malformed(
                evm, account, hash_, body, lot, "typed data", remote[0],
                typed_data_malformed(87, remote[0]),
            )  # fmt: skip
            if not granted or local[0] == "SignatureOutsideWindow" or found is None:
                continue
            TALLY[ANOTHER_PERMISSION] += found is not grant
            changed = data.draw(dirtied(found, frames), label="dirty")
            if changed is None:
                continue
            words, paths, stale = changed
            raw = sdk_verdict(check_words, session, local[1], words, session_id=sid)
            hash_, body = typed_signature(evm, key, account, session_id, typed, words)
            answer = evm.verdict(account, hash_, body)
            remote = module_terms(answer)
            if (
                stale
            ):  # the module checks the frames' hashes before it judges a word (the SDK judges words as given)
                raw = ("NestedStructMismatch", None, None)
                assert answer[1].get("frame") == stale, (paths, answer)
            TALLY[f"dirty words: {raw[0] or 'signed'}"] += 1
            event(f"dirty words: {raw[0] or 'signed'}")
            assert agree(raw, remote), (
                f"permission {local[1]} ({found.permission.contents_type}, rules {found.permission.rules}), "
                f"{', '.join(paths)} dirty in {[w.hex() for w in words.words]}: the SDK says {raw}, the module "
                f"{remote}"
            )


# -- sign-in -------------------------------------------------------------------------------------------------------

WEBSITES = (
    "app.example.com",
    "Example.COM",
    "localhost:3000",
    "app.example.com:443",
    "[::1]:8080",
    "127.0.0.1",
    "xn--80ak6aa92e.com",
    "a",
    "user@app.example.com",
    "sub.app.example.com",
    "APP.example.com",
    "%41pp.example.com",
)
"""Granted websites: RFC 3986 authorities in any spelling (1 to 255 printable ASCII bytes, no spaces)."""


@st.composite
def respelled(draw: st.DrawFn, website: str) -> str:
    """``website`` as a message may spell it: as it is, or with its case, scheme, port, spaces, a trailing dot or
    slash, or a look-alike letter changed."""
    change = draw(
        st.sampled_from(
            ["same"] * 12 + ["upper", "lower", "swap", "scheme", "port", "space", "lead", "dot", "slash", "cyrillic",
             "fullwidth", "nul", "tab"]
        )
    )  # fmt: skip
    return {
        "same": website,
        "upper": website.upper(),
        "lower": website.lower(),
        "swap": website.swapcase(),
        "scheme": "https://" + website,
        "port": website + ":443",
        "space": website + " ",
        "lead": " " + website,
        "dot": website + ".",
        "slash": website + "/",
        "cyrillic": website.replace("a", "\u0430", 1).replace("e", "\u0435", 1),
        "fullwidth": website.replace(".", "\uff0e"),
        "nul": website + "\x00",
        "tab": website + "\t",
    }[change]


@st.composite
def sign_in_texts(draw: st.DrawFn, websites: list[str], account: str) -> bytes:
    """A message whose first line names a granted website as granted (half the time), or respelled, or another
    website, with the sign-in suffix or a variant; and whose second line is the account in a spelling the module takes
    (half the time) or in another."""
    if draw(st.booleans()):
        first = draw(st.sampled_from(websites)) + SIGN_IN_SUFFIX
    else:
        site = draw(
            respelled(draw(st.sampled_from(websites))) | st.sampled_from(WEBSITES) | st.text(max_size=12)
        )
        suffix = draw(
            st.sampled_from(
                [SIGN_IN_SUFFIX, SIGN_IN_SUFFIX.replace("\n", "\r\n"), SIGN_IN_SUFFIX.replace(":\n", ": \n"),
                 SIGN_IN_SUFFIX.replace("Ethereum", "ethereum"), SIGN_IN_SUFFIX + "\n", SIGN_IN_SUFFIX[:-1]]
            )
        )  # fmt: skip
        first = site + suffix
    digits = account[2:].lower()
    if draw(st.booleans()):
        line = "0x" + draw(
            st.sampled_from([digits, digits.upper(), to_address(account)[2:], digits.replace("a", "A")])
        )
        line += "\n"
    else:
        other = keccak(account.encode()).hex()[:40]
        line = draw(
            st.sampled_from(
                ["0X" + digits, "0x" + digits[:39], "0x" + other, " 0x" + digits, "0x" + digits + " ",
                 "0x" + digits[:-1] + "g", "0x" + digits.replace("f", "\uff46"), "0x" + digits + "0"]
            )
        ) + draw(st.sampled_from(["\n", "\r\n", ""]))  # fmt: skip
    rest = draw(
        st.sampled_from(
            ["", "\nURI: https://app.example.com\nVersion: 1\nChain ID: 1\nNonce: 12345678", "\n\u00e9"]
        )
    )
    return (first + line + rest).encode()


@settings(max_examples=SIGN_IN_EXAMPLES, **ON_CHAIN)
@given(data=st.data())
def test_the_sdk_and_the_module_judge_sign_in_messages_alike(evm, data):
    """Sign-in messages for random granted websites, their first lines respelled and their address lines in any
    spelling: the SDK's verdict is the module's, reason and permission. A third of the sessions have a co-signer
    (signatures then carry its co-signature, which a forged one makes with another key: InvalidCoSignature)."""
    websites = data.draw(
        st.lists(st.sampled_from(WEBSITES), min_size=1, max_size=3, unique=True), label="granted"
    )
    now = evm.now()
    valid_after, valid_until = data.draw(st.composite(lambda draw: window(draw, now))(), label="window")
    key = fresh_key()
    co_signed = int(key.address, 16) % 3 == 0  # a third of the sessions, drawing nothing more
    session = Session(
        session_key=key.address,
        sign_in=tuple(websites),
        valid_after=valid_after,
        valid_until=valid_until,
        co_signer=CO_SIGNER.address if co_signed else None,
    )
    account, session_id = evm.enable(session)
    sid = "0x" + session_id.hex()
    for _ in range(SIGN_INS):
        message = data.draw(sign_in_texts(websites, account), label="message")
        forged = keccak(message)[0] % 5 == 0  # a fifth, drawing nothing more
        local = sdk_verdict(check_sign_in, session, message, account=account, session_id=sid, now=now)
        newline = message.find(b"\n")
        first_line = newline + 1 if newline >= 0 else len(message)
        signed = personal_sign_hash(
            message, account=account, chain_id=evm.chain_id, module=evm.module.address
        )
        # forged: the key's signature by another key, or for a co-signed session the co-signature
        co_forged = forged and co_signed
        signature = (STRANGER if forged and not co_forged else key).sign_hash(signed)
        co_signature = None
        if co_signed:
            digest = co_sign_digest(session_id, signed, chain_id=evm.chain_id, module=evm.module.address)
            co_signature = (STRANGER if co_forged else CO_SIGNER).sign_hash(digest)
        header = Signer(key.address, session_id, co_signed, co_signed).header(signature, co_signature)
        body = encode_sign_in_signature(header, message, first_line)
        remote = module_terms(evm.verdict(account, eip191_hash(message), body))
        local = forged_verdict(local, forged)
        if co_forged and local == FORGED:
            local = ("InvalidCoSignature", None, None)
        TALLY[f"sign-in: {local[0] or 'signed'}"] += 1
        event(f"sign-in: {local[0] or 'signed'}")
        assert agree(local, remote), (
            f"{websites} granted, {message!r}: the SDK says {local}, the module {remote}"
        )
        judge_malformed(
            evm, account, eip191_hash(message), body, keccak(body), "sign-in", remote[0],
            sign_in_malformed(1 + len(header), message, first_line, remote[0]),
        )  # fmt: skip


def sign_in_malformed(
    body_at: int, message: bytes, line: int, canonical: str | None
) -> Callable[[bytes, str], str | None]:
    """The module's refusal of a malformed sign-in signature (its body from byte ``body_at``: the first line's
    length ``line``, 2 bytes, then ``message``; the module's verdict on it ``canonical``): cut into the header, the
    length or the first line, or given a first line longer than the message, MalformedSignature; cut after the
    first line or extended, the message's hash is not the one asked about (ContentsMismatch) once its permission
    and window pass; None (any refusal) for a changed byte or a shorter first line."""

    def expect(malformed: bytes, how: str) -> str | None:
        if how.startswith("byte"):
            return None
        if how.startswith("2-byte"):
            told = int.from_bytes(malformed[body_at : body_at + 2], "big")
            return MALFORMED if told > len(message) else None
        if len(malformed) < body_at + 2 + line:
            return MALFORMED
        return canonical if canonical in BEFORE_LAYOUT["sign-in"] else "ContentsMismatch"

    return expect


def test_judging_words_under_a_permission_the_session_lacks_says_which_it_has():
    """``check_words`` for a permission index the session does not have: a clear error naming how many it has."""
    session = Session(
        session_key=fresh_key().address,
        typed_data_permissions=(
            TypedDataPermission(domain_fields=0, contents_name="Order", contents_type="Order(uint8 amount)"),
        ),
    )
    frames = Frames((1,), (), (bytes(32),))
    check_words(session, 0, frames, session_id="0x" + "00" * 32)
    for index in (1, -1, True):
        with pytest.raises(BadInputError, match=r"is not one of the session's 1 typed-data permissions"):
            check_words(session, index, frames, session_id="0x" + "00" * 32)


def test_the_sdk_and_the_module_judge_the_window_s_edges_alike(evm):
    """A signature at the first and last second of its session's window is valid, one second outside it is not:
    the SDK's window check is the module's at each edge (the fuzzed windows end far from the chain's time)."""
    website = WEBSITES[0]
    moment = evm.now() + 1000
    windows = [
        (moment, 0),  # opens now
        (moment + 1, 0),  # opens next second
        (moment - 10, moment),  # ends now
        (moment - 10, moment - 1),  # ended a second ago
    ]
    enabled = []
    for valid_after, valid_until in windows:
        key = fresh_key()
        session = Session(
            session_key=key.address, sign_in=(website,), valid_after=valid_after, valid_until=valid_until
        )
        enabled.append((key, session, *evm.enable(session)))
    evm.mine_at(moment)
    assert evm.now() == moment
    verdicts = []
    for key, session, account, session_id in enabled:
        message = (f"{website}{SIGN_IN_SUFFIX}{account.lower()}\nURI: https://{website}\n").encode()
        local = sdk_verdict(
            check_sign_in, session, message, account=account, session_id="0x" + session_id.hex(), now=moment
        )
        signed = personal_sign_hash(
            message, account=account, chain_id=evm.chain_id, module=evm.module.address
        )
        header = Signer(key.address, session_id).header(key.sign_hash(signed), None)
        first_line = message.find(b"\n") + 1
        remote = module_terms(
            evm.verdict(account, eip191_hash(message), encode_sign_in_signature(header, message, first_line))
        )
        assert agree(local, remote), (session.valid_after, session.valid_until, local, remote)
        verdicts.append(remote[0])
    assert verdicts == [None, "SignatureOutsideWindow", None, "SignatureOutsideWindow"]


def test_a_bool_word_of_2_or_3_is_refused_by_the_sdk_as_by_the_module(evm):
    """A bool is canonical only as 0 or 1: a signature carrying 2 or 3 in a ruled bool field is refused by the module
    as ``SignedNonCanonical``, whatever the rule's condition says of the number, and the SDK refuses it the same
    (a bool rule's dirty words are rare among the fuzzed ones)."""
    from keyscope.policy import Policy

    types = {"Vote": [{"name": "yes", "type": "bool"}]}
    data = {"types": types, "primaryType": "Vote", "domain": {"name": "Ballot"}, "message": {"yes": True}}
    bare = Policy.typed_data(data["domain"], types, "Vote")
    rule = Rule(condition=Condition.NOT_EQUAL, offset=0, arg_type=ArgType.BOOL, values=(0,))
    permission = bare.model_copy(update={"rules": (rule,)})
    key = fresh_key()
    session = Session(session_key=key.address, typed_data_permissions=(permission,))
    account, session_id = evm.enable(session)
    sid = "0x" + session_id.hex()
    typed = TypedData(data)
    assert sdk_verdict(check_typed_data, session, data, session_id=sid) == (None, 0, None)
    verdicts = []
    for word in (0, 1, 2, 3, 4):
        frames = Frames((1,), (), (word.to_bytes(32, "big"),))
        local = sdk_verdict(check_words, session, 0, frames, session_id=sid)
        hash_, body = typed_signature(evm, key, account, session_id, typed, frames)
        remote = module_terms(evm.verdict(account, hash_, body))
        assert agree(local, remote), (word, local, remote)
        verdicts.append(remote[0])
    assert verdicts == [
        "SignedRuleViolated",
        None,
        "SignedNonCanonical",
        "SignedNonCanonical",
        "SignedNonCanonical",
    ]
