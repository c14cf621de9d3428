"""EIP-712 typed data as the session module reads it, as pure functions.

* :class:`TypedData` reads the JSON form wallets and ``eth_signTypedData_v4`` take (``types``, ``primaryType``,
  ``domain``, ``message``) and gives its domain separator, the primary type's ``encodeType`` and typehash, its
  ``hashStruct`` and the digest a verifier checks (:attr:`TypedData.digest`).
* :func:`plan_frames` and :meth:`TypedData.frames` lay out the *flattened contents* the module judges: the primary
  struct's ``encodeData`` words (frame 0), then, breadth first, the words of each nested struct a grant expands.
* :func:`wallet_typed_data`: typed data as JSON exactly as a wallet's ``eth_signTypedData_v4`` takes it (every
  value must survive ``JSON.parse``: bytes as 0x-hex strings, integers as JSON numbers only up to 2**53 - 1, larger
  ones as decimal strings, which MetaMask and anvil read as the integer they spell).
* ERC-7739: :func:`contents_type` (every struct definition the contents use, sorted by name),
  :func:`typed_data_sign_hash` and :func:`personal_sign_hash`, what a session key signs, with the account's domain
  as the module describes it (:func:`account_domain_separator`).

See ``docs/session-module.md`` (Signing messages) for why the module rebuilds the hash from the words it judges.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_utils import keccak

from .errors import BadInputError, shown
from .hexutil import address_word, to_address, to_bytes, word

__all__ = [
    "ACCOUNT_DOMAIN_NAME",
    "ACCOUNT_DOMAIN_VERSION",
    "DOMAIN_FIELDS",
    "MAX_NESTING",
    "MAX_SAFE_INTEGER",
    "Field",
    "Frame",
    "Frames",
    "TypedData",
    "account_domain_separator",
    "contents_type",
    "domain_fields",
    "domain_separator",
    "encode_type",
    "hash_struct",
    "is_struct",
    "personal_sign_hash",
    "plan_frames",
    "refuse_deep_nesting",
    "refuse_lone_surrogates",
    "typed_data_sign_hash",
    "typed_data_sign_type_hash",
    "wallet_typed_data",
    "wallet_value",
]

ACCOUNT_DOMAIN_NAME = "keyscope Session"
ACCOUNT_DOMAIN_VERSION = "1"
"""The account's EIP-712 domain as the session module describes it in ERC-7739 wrappings (with the chain id, the
account as verifying contract and the module's address as salt)."""

DOMAIN_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("name", "string", 0x01),
    ("version", "string", 0x02),
    ("chainId", "uint256", 0x04),
    ("verifyingContract", "address", 0x08),
    ("salt", "bytes32", 0x10),
)
"""EIP-712 domain fields in their order, with their types and ERC-5267 bits."""

_TYPED_DATA_SIGN = (
    " contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
)
_PERSONAL_SIGN_TYPEHASH = keccak(b"PersonalSign(bytes prefixed)")
_ACCOUNT_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
)
_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")
_ATOMIC = re.compile(r"^(u?int(\d{0,3})|address|bool|bytes(\d{1,2}))$")
_UINT256_MAX = 2**256 - 1


@dataclass(frozen=True, slots=True)
class Field:
    """One member of an EIP-712 struct type."""

    name: str
    type: str


Types = Mapping[str, Sequence[Field]]


def _fields(types: Mapping[str, Any]) -> dict[str, tuple[Field, ...]]:
    """``types`` in the JSON form (``{"Mail": [{"name": ..., "type": ...}]}``) as :class:`Field` tuples, the
    domain's type left out; raises :class:`BadInputError` for malformed entries."""
    result: dict[str, tuple[Field, ...]] = {}
    for type_name, members in types.items():
        if type_name == "EIP712Domain":
            continue
        if not isinstance(members, (list, tuple)):
            raise BadInputError(f"types[{shown(type_name)}] must be a list of {{name, type}} members")
        fields = []
        for member in members:
            if isinstance(member, Field):
                fields.append(member)
            elif (
                isinstance(member, Mapping)
                and isinstance(member.get("name"), str)
                and isinstance(member.get("type"), str)
            ):
                fields.append(Field(member["name"], member["type"]))
            else:
                raise BadInputError(
                    f"types[{shown(type_name)}] has a member that is not {{name, type}}: {shown(member)}"
                )
        result[type_name] = tuple(fields)
    return result


_SURROGATE = re.compile("[\ud800-\udfff]")


MAX_NESTING = 64
"""The deepest a typed-data message (or domain) may nest, counting each object and each list a level: hashing
descends by recursion, a few Python frames a level, so data a few hundred levels deep (valid EIP-712: a struct may
hold an array of its own type) raised RecursionError, no refusal; no message a wallet shows nests anywhere near
this."""


def refuse_deep_nesting(value: Any, where: str) -> None:
    """Raise :class:`BadInputError` when ``value`` nests objects and lists more than :data:`MAX_NESTING` levels deep
    (walked without recursion, so any depth is measured)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, Mapping) else item if isinstance(item, (list, tuple)) else None
        )
        if children is None:
            continue
        if depth > MAX_NESTING:
            raise BadInputError(
                f"{where} is nested more than {MAX_NESTING} levels deep (objects and lists): its hash cannot be "
                "computed here; give typed data a wallet can show"
            )
        stack.extend((child, depth + 1) for child in children)


def refuse_lone_surrogates(value: Any, where: str) -> None:
    """Raise :class:`BadInputError` when a string in ``value`` (a string, or mappings and lists of them, keys
    included) holds a lone surrogate, as a JSON ``\\ud800`` escape gives: it has no UTF-8 bytes, so no hash."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is not None:
            raise BadInputError(
                f"{where} holds U+{ord(found.group()):04X} at position {found.start()}, half of a UTF-16 surrogate "
                "pair (as a JSON \\ud800 escape without its other half gives): such a string has no UTF-8 bytes, so "
                "no EIP-712 or EIP-191 hash; give the whole character"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            refuse_lone_surrogates(key, f"{where}: a key")
            refuse_lone_surrogates(item, f"{where}.{key}" if isinstance(key, str) else where)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            refuse_lone_surrogates(item, f"{where}[{index}]")


def _base(type_name: str) -> str:
    """The element type of an array type, recursively (``Item[][2]`` -> ``Item``)."""
    while (match := _ARRAY.match(type_name)) is not None:
        type_name = match.group(1)
    return type_name


def is_struct(type_name: str, types: Types) -> bool:
    """Whether ``type_name`` is one of ``types``' struct types (not an array of one)."""
    return type_name in types


def _referenced(primary: str, types: Types) -> set[str]:
    """Every struct type ``primary`` uses, directly or not, ``primary`` included."""
    if primary not in types:
        raise BadInputError(
            f"the type {shown(primary)} is not defined in types ({', '.join(sorted(types)) or 'none'})"
        )
    found = {primary}
    pending = [primary]
    while pending:
        for member in types[pending.pop()]:
            base = _base(member.type)
            if base in types and base not in found:
                found.add(base)
                pending.append(base)
    return found


def _definition(type_name: str, types: Types) -> str:
    return f"{type_name}({','.join(f'{m.type} {m.name}' for m in types[type_name])})"


def encode_type(primary: str, types: Types) -> str:
    """EIP-712 ``encodeType``: ``primary``'s definition, then those of the types it uses, sorted by name."""
    others = sorted(_referenced(primary, types) - {primary})
    return _definition(primary, types) + "".join(_definition(name, types) for name in others)


def contents_type(primary: str, types: Types) -> str:
    """ERC-7739's contentsType: the definitions of ``primary`` and of every type it uses, all sorted by name."""
    return "".join(_definition(name, types) for name in sorted(_referenced(primary, types)))


def typed_data_sign_type_hash(contents_name: str, contents_type_: str) -> bytes:
    """ERC-7739's TypedDataSign typehash for contents named ``contents_name`` of ``contents_type_``."""
    return keccak(("TypedDataSign(" + contents_name + _TYPED_DATA_SIGN + contents_type_).encode())


def domain_fields(domain: Mapping[str, Any]) -> int:
    """The ERC-5267 bitmap of the fields ``domain`` has (keys among name, version, chainId, verifyingContract,
    salt; any other key is refused)."""
    known = {name for name, _, _ in DOMAIN_FIELDS}
    unknown = set(domain) - known
    if unknown:
        raise BadInputError(
            f"EIP-712 domain field(s) {', '.join(sorted(unknown))} are not supported: a domain has name, version, "
            "chainId, verifyingContract and salt"
        )
    return sum(bit for name, _, bit in DOMAIN_FIELDS if name in domain)


def _domain_value(name: str, value: Any) -> bytes:
    if name in ("name", "version"):
        if not isinstance(value, str):
            raise BadInputError(f"domain {name} must be a string, got {shown(value)}")
        return keccak(value.encode())
    if name == "chainId":
        return word(_int(value, "uint256", f"domain {name}"))
    if name == "verifyingContract":
        return address_word(to_address(value, name=f"domain {name}"))
    return to_bytes(value, name=f"domain {name}", length=32)


def domain_separator(domain: Mapping[str, Any]) -> bytes:
    """The separator of ``domain`` (its fields in EIP-712's order, whichever it has)."""
    fields = domain_fields(domain)
    present = [(name, kind) for name, kind, bit in DOMAIN_FIELDS if fields & bit]
    type_hash = keccak(
        ("EIP712Domain(" + ",".join(f"{kind} {name}" for name, kind in present) + ")").encode()
    )
    return keccak(type_hash + b"".join(_domain_value(name, domain[name]) for name, _ in present))


def account_domain_separator(account: str, chain_id: int, module: str) -> bytes:
    """The separator of the domain the session module describes ``account`` by on ``chain_id``."""
    return keccak(
        _ACCOUNT_DOMAIN_TYPEHASH
        + keccak(ACCOUNT_DOMAIN_NAME.encode())
        + keccak(ACCOUNT_DOMAIN_VERSION.encode())
        + word(chain_id)
        + address_word(to_address(account))
        + address_word(to_address(module))
    )


def typed_data_sign_hash(
    app_separator: bytes,
    contents_name: str,
    contents_type_: str,
    contents_hash: bytes,
    *,
    account: str,
    chain_id: int,
    module: str,
) -> bytes:
    """What a session key signs for typed data (ERC-7739): the EIP-712 hash of ``TypedDataSign{contents, name,
    version, chainId, verifyingContract, salt}`` in the application's domain, the account's fields as the module
    describes them."""
    struct_hash = keccak(
        typed_data_sign_type_hash(contents_name, contents_type_)
        + contents_hash
        + keccak(ACCOUNT_DOMAIN_NAME.encode())
        + keccak(ACCOUNT_DOMAIN_VERSION.encode())
        + word(chain_id)
        + address_word(to_address(account))
        + address_word(to_address(module))
    )
    return keccak(b"\x19\x01" + app_separator + struct_hash)


def eip191_message(message: bytes) -> bytes:
    """``message`` with its EIP-191 (``personal_sign``) prefix, as it is hashed."""
    return b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message


def eip191_hash(message: bytes) -> bytes:
    """The EIP-191 (``personal_sign``) hash of ``message``."""
    return keccak(eip191_message(message))


def personal_sign_hash(message: bytes, *, account: str, chain_id: int, module: str) -> bytes:
    """What a session key signs for a ``personal_sign`` message (ERC-7739 PersonalSign): the EIP-712 hash of
    ``PersonalSign{prefixed}`` in the account's domain as the module describes it."""
    struct_hash = keccak(_PERSONAL_SIGN_TYPEHASH + eip191_hash(message))
    return keccak(b"\x19\x01" + account_domain_separator(account, chain_id, module) + struct_hash)


# -- values ----------------------------------------------------------------------------------------------


_INTEGER_TEXT = re.compile(r"-?[0-9]+|0x[0-9a-fA-F]+")
"""An integer as a string, as eth-account and wallets read one: decimal digits (a sign allowed), or 0x-hex."""


def _int(value: Any, kind: str, where: str) -> int:
    if isinstance(value, bool):
        raise BadInputError(f"{where}: expected an integer ({kind}), got {shown(value)}")
    if isinstance(value, str):
        # not int(value, 0): it reads 0b, 0o and 0X prefixes and a signed -0x, which eth-account refuses
        if _INTEGER_TEXT.fullmatch(value) is None:
            raise BadInputError(
                f"{where}: {shown(value)} is not an integer ({kind}): give a number, decimal digits or 0x-hex"
            )
        value = int(value, 16) if value.startswith("0x") else int(value, 10)
    if not isinstance(value, int):
        raise BadInputError(f"{where}: expected an integer ({kind}), got {type(value).__name__}")
    return value


def _atomic_word(kind: str, value: Any, where: str) -> bytes:
    """The 32-byte word of an atomic value, as EIP-712 (and the ABI) encode it."""
    if kind == "address":
        return address_word(to_address(value, name=where))
    if kind == "bool":
        if value is True or value is False:
            return word(int(value))
        raise BadInputError(f"{where}: expected true or false, got {shown(value)}")
    if kind.startswith("bytes"):
        size = int(kind[5:])
        raw = to_bytes(value, name=where)
        if len(raw) != size:
            raise BadInputError(f"{where}: expected exactly {size} bytes ({kind}), got {len(raw)}")
        return raw.ljust(32, b"\x00")
    unsigned = kind.startswith("uint")
    bits = int(kind[4 if unsigned else 3 :] or 256)
    number = _int(value, kind, where)
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= number <= high:
        raise BadInputError(f"{where}: {number} is out of range for {kind} [{low}, {high}]")
    return word(number & _UINT256_MAX)


def _check_atomic(kind: str) -> None:
    match = _ATOMIC.match(kind)
    if match is None:
        raise BadInputError(f"{shown(kind)} is not an EIP-712 type (nor a struct defined in types)")
    digits = match.group(2) or match.group(3)
    if digits:
        number = int(digits)
        if kind.startswith("bytes") and not 1 <= number <= 32:
            raise BadInputError(f"{shown(kind)} is not an EIP-712 type: bytesN takes N from 1 to 32")
        if not kind.startswith("bytes") and not (8 <= number <= 256 and number % 8 == 0):
            raise BadInputError(f"{shown(kind)} is not an EIP-712 type: integer widths are 8 to 256, by 8")


def _encode_value(kind: str, value: Any, types: Types, where: str) -> bytes:
    """The 32-byte word EIP-712's encodeData puts for a member of type ``kind`` holding ``value``."""
    if _ARRAY.match(kind) is not None:
        match = _ARRAY.match(kind)
        assert match is not None
        element, length = match.group(1), match.group(2)
        if not isinstance(value, (list, tuple)):
            raise BadInputError(f"{where}: expected a list ({kind}), got {type(value).__name__}")
        if length and len(value) != int(length):
            raise BadInputError(f"{where}: expected {length} elements ({kind}), got {len(value)}")
        return keccak(
            b"".join(_encode_value(element, item, types, f"{where}[{i}]") for i, item in enumerate(value))
        )
    if kind in types:
        if not isinstance(value, Mapping):
            raise BadInputError(f"{where}: expected an object ({kind}), got {type(value).__name__}")
        return _hash_struct(kind, value, types, where)
    if kind == "string":
        if not isinstance(value, str):
            raise BadInputError(f"{where}: expected a string, got {type(value).__name__}")
        return keccak(value.encode())
    if kind == "bytes":
        return keccak(to_bytes(value, name=where))
    _check_atomic(kind)
    return _atomic_word(kind, value, where)


def _encode_data(struct: str, value: Mapping[str, Any], types: Types, where: str) -> list[bytes]:
    words = []
    for member in types[struct]:
        if member.name not in value:
            raise BadInputError(f"{where}: the {struct} has no value for its member {shown(member.name)}")
        words.append(_encode_value(member.type, value[member.name], types, f"{where}.{member.name}"))
    extra = set(value) - {m.name for m in types[struct]}
    if extra:
        raise BadInputError(f"{where}: {', '.join(sorted(extra))} are not members of {struct}")
    return words


def _hash_struct(struct: str, value: Mapping[str, Any], types: Types, where: str) -> bytes:
    return keccak(
        _type_hash(encode_type(struct, types)) + b"".join(_encode_data(struct, value, types, where))
    )


@lru_cache(maxsize=256)
def _type_hash(encoded_type: str) -> bytes:
    """The typehash of an ``encodeType`` (struct types recur, so their hashes are remembered)."""
    return keccak(encoded_type.encode())


def hash_struct(struct: str, value: Mapping[str, Any], types: Types) -> bytes:
    """EIP-712 ``hashStruct`` of ``value``, a ``struct`` of ``types`` (members by name, nested structs as
    mappings); raises :class:`BadInputError` naming the member that does not fit its type."""
    return _hash_struct(struct, value, types, struct)


# -- frames ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One struct of the flattened contents: its type, its path of member names from the primary struct, the flat
    index of its first word, and the flat index of the parent word it expands (None for the primary struct)."""

    type: str
    path: tuple[str, ...]
    start: int
    parent_word: int | None


def plan_frames(primary: str, types: Types, expand: Iterable[tuple[str, ...]] = ()) -> tuple[Frame, ...]:
    """The frames of ``primary``'s flattened contents: the primary struct, then, breadth first and in member order,
    each nested struct whose path is in ``expand`` (a struct member, not an array; its parent's path must be
    expanded too)."""
    wanted = set(expand)
    frames = [Frame(primary, (), 0, None)]
    next_start = len(types[primary])
    i = 0
    while i < len(frames):
        frame = frames[i]
        for index, member in enumerate(types[frame.type]):
            path = (*frame.path, member.name)
            if path in wanted and member.type in types:
                frames.append(Frame(member.type, path, next_start, frame.start + index))
                next_start += len(types[member.type])
        i += 1
    expanded = {f.path for f in frames}
    missing = wanted - expanded
    if missing:
        path = min(missing)
        raise BadInputError(
            f"cannot expand {'.'.join(path)} of {primary}: it is not a struct member reached through expanded "
            "structs (arrays, and what they hold, cannot be expanded)"
        )
    return tuple(frames)


@dataclass(frozen=True, slots=True)
class Frames:
    """Flattened contents as a session signature carries them: each frame's size in words, the typehash of each
    nested frame, and the words (frame 0 first)."""

    sizes: tuple[int, ...]
    nested_type_hashes: tuple[bytes, ...]
    words: tuple[bytes, ...]

    def word(self, offset: int) -> int | None:
        """The word at byte ``offset`` of the flattened contents, as an integer (None past the end)."""
        index = offset // 32
        return int.from_bytes(self.words[index], "big") if index < len(self.words) else None


class TypedData:
    """EIP-712 typed data in the JSON form ``eth_signTypedData_v4`` takes: ``{"types", "primaryType", "domain",
    "message"}`` (``types`` may hold ``EIP712Domain``; it must then list the domain's fields in EIP-712's order)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise BadInputError(
                f"typed data must be an object with types, primaryType, domain and message, got {type(data).__name__}"
            )
        missing = [key for key in ("types", "primaryType", "domain", "message") if key not in data]
        if missing:
            raise BadInputError(
                f"typed data has no {', '.join(missing)}: give types, primaryType, domain, message"
            )
        if not isinstance(data["types"], Mapping) or not isinstance(data["domain"], Mapping):
            raise BadInputError("typed data's types and domain must be objects")
        if not isinstance(data["message"], Mapping):
            raise BadInputError("typed data's message must be an object")
        for part in ("types", "domain", "message"):
            refuse_deep_nesting(data[part], f"the typed data's {part}")
        for part in ("types", "primaryType", "domain", "message"):
            refuse_lone_surrogates(data[part], part)
        self.types: dict[str, tuple[Field, ...]] = _fields(data["types"])
        self.primary_type: str = str(data["primaryType"])
        if self.primary_type == "EIP712Domain" or self.primary_type not in self.types:
            raise BadInputError(
                f"primaryType {shown(self.primary_type)} is not a struct of types ({', '.join(sorted(self.types))})"
            )
        self.domain: dict[str, Any] = dict(data["domain"])
        self.message: Mapping[str, Any] = data["message"]
        declared = data["types"].get("EIP712Domain")
        if declared is not None:
            names = [m["name"] if isinstance(m, Mapping) else getattr(m, "name", None) for m in declared]
            expected = [name for name, _, _ in DOMAIN_FIELDS if name in names]
            if names != expected or set(names) != set(self.domain):
                raise BadInputError(
                    f"the EIP712Domain type lists {names}, but a domain has its fields in EIP-712's order "
                    f"(name, version, chainId, verifyingContract, salt) and exactly those of the domain "
                    f"({sorted(self.domain)})"
                )
        self.domain_fields = domain_fields(self.domain)

    @property
    def domain_separator(self) -> bytes:
        """The application domain's separator."""
        return domain_separator(self.domain)

    @property
    def encode_type(self) -> str:
        """``encodeType`` of the primary type."""
        return encode_type(self.primary_type, self.types)

    @property
    def contents_type(self) -> str:
        """ERC-7739's contentsType of the primary type."""
        return contents_type(self.primary_type, self.types)

    @property
    def type_hash(self) -> bytes:
        """The primary type's typehash."""
        return keccak(self.encode_type.encode())

    @property
    def struct_hash(self) -> bytes:
        """``hashStruct(message)``."""
        return _hash_struct(self.primary_type, self.message, self.types, "message")

    @property
    def digest(self) -> bytes:
        """What a verifier checks: ``keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))``."""
        return keccak(b"\x19\x01" + self.domain_separator + self.struct_hash)

    def value_at(self, path: Sequence[str]) -> Any:
        """The message's value at a member ``path`` (``("details", "amount")``)."""
        value: Any = self.message
        for name in path:
            if not isinstance(value, Mapping) or name not in value:
                raise BadInputError(f"the message has no member {'.'.join(path)}")
            value = value[name]
        return value

    def frames(self, planned: Sequence[Frame]) -> Frames:
        """The flattened contents for ``planned`` frames (from :func:`plan_frames` on this data's types)."""
        words: list[bytes] = []
        sizes = []
        type_hashes = []
        for index, frame in enumerate(planned):
            value = self.value_at(frame.path) if frame.path else self.message
            if not isinstance(value, Mapping):
                raise BadInputError(f"the message's {'.'.join(frame.path)} is not an object ({frame.type})")
            where = ".".join(("message", *frame.path))
            frame_words = _encode_data(frame.type, value, self.types, where)
            if len(frame_words) > 255:
                raise BadInputError(f"{frame.type} has {len(frame_words)} members: a frame holds at most 255")
            words.extend(frame_words)
            sizes.append(len(frame_words))
            if index:
                type_hashes.append(keccak(encode_type(frame.type, self.types).encode()))
        return Frames(tuple(sizes), tuple(type_hashes), tuple(words))


# -- typed data as wallets take it (JSON) -------------------------------------------------------------------

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript number holds exactly."""

_WALLET_ARRAY = re.compile(r"^(?P<element>.+)\[(?P<length>\d*)\]$")


def wallet_value(value: Any) -> Any:
    """One elementary value as JSON: 0x-hex for bytes, a number for a safe integer, a decimal string for a
    larger one; strings and booleans as they are."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    raise BadInputError(f"{shown(value)} ({type(value).__name__}) has no EIP-712 JSON form")


def _wallet_convert(type_name: str, value: Any, types: Mapping[str, Any]) -> Any:
    array = _WALLET_ARRAY.match(type_name)
    if array is not None:
        if not isinstance(value, (list, tuple)):
            raise BadInputError(f"the {type_name} value {shown(value)} is not a list")
        return [_wallet_convert(array.group("element"), item, types) for item in value]
    fields = types.get(type_name)
    if fields is not None:
        if not isinstance(value, Mapping):
            raise BadInputError(f"the {type_name} value {shown(value)} is not an object")
        return {
            field["name"]: _wallet_convert(field["type"], value[field["name"]], types)
            for field in fields
            if field["name"] in value
        }
    return wallet_value(value)


def wallet_typed_data(typed_data: Mapping[str, Any]) -> dict[str, Any]:
    """``typed_data`` (``types``, ``primaryType``, ``domain``, ``message``, values in any form eth-account
    takes) with every value in its wallet JSON form; ``json.dumps`` of the result is what
    ``eth_signTypedData_v4`` takes, and its EIP-712 digest is unchanged."""
    types = typed_data["types"]
    return {
        "types": {name: [dict(field) for field in fields] for name, fields in types.items()},
        "primaryType": typed_data["primaryType"],
        "domain": _wallet_convert("EIP712Domain", typed_data["domain"], types),
        "message": _wallet_convert(typed_data["primaryType"], typed_data["message"], types),
    }
