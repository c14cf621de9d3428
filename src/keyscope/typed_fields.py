"""Where each word of a typed-data permission's flattened contents lies: the field there (its dotted path and
EIP-712 type), laid out from the signed ``contentsType`` and the ``nested`` list of struct frames, and the rule type
(:class:`~keyscope.arg_types.ArgType`) that reads that field as a verifier does.

The grant's model refuses a rule typed otherwise than its field (as the module does, ``TypedDataRuleTypeMismatch``)
and a rule ordering a field whose word is a hash (``TypedDataRuleOrdersHash``), and the consent page names each rule
by its field, all from this layout.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .arg_types import ArgType, arg_type_of
from .errors import BadInputError
from .typed_data import Field, Frame, Types

__all__ = [
    "FieldName",
    "contents_definitions",
    "contents_fields",
    "field_arg_type",
    "mistyped",
    "nested_frames",
    "ordered_hashes",
]

FieldName = tuple[str, str]
"""A word of the flattened contents: the field's dotted path from the primary struct, and its EIP-712 type."""

HASHED_TYPES = ("string", "bytes")
"""The atomic EIP-712 types encoded as the hash of their contents."""

ORDER_CONDITIONS = frozenset({1, 2, 3, 4, 6})
"""The rule conditions that order a word (<=, <, >=, >, IN_RANGE, as :class:`~keyscope.session.Condition` numbers
them): on a word that is a hash they bound the hash, not the value hashed."""


def contents_definitions(contents_type: str) -> list[tuple[str, str]]:
    """The ``(name, definition)`` pairs of an ERC-7739 contentsType (``A(...)B(...)``); ValueError when it is not
    a list of struct definitions, or defines a name twice (the module reads the first definition of the primary
    type, a typehash taken from another would give signatures the account refuses)."""
    result: list[tuple[str, str]] = []
    rest = contents_type
    while rest:
        end = rest.find(")")
        start = rest.find("(")
        if end < 0 or start <= 0 or start > end:
            raise ValueError(
                f"contentsType {contents_type!r} is not a list of struct definitions Name(type name,...)"
            )
        name = rest[:start]
        if any(name == defined for defined, _ in result):
            raise ValueError(
                f"contentsType {contents_type!r} defines {name!r} twice: give each struct type one definition"
            )
        result.append((name, rest[: end + 1]))
        rest = rest[end + 1 :]
    return result


def _members(definition: str, name: str) -> tuple[Field, ...]:
    """``Name(type a,type b)`` as its members."""
    inner = definition[len(name) + 1 : -1]
    members = []
    for part in filter(None, inner.split(",")):
        kind, _, member = part.rpartition(" ")
        members.append(Field(member, kind))
    return tuple(members)


def nested_frames(primary: str, types: Types, nested: Sequence[int]) -> tuple[Frame, ...]:
    """The frames a permission's ``nested`` list (flat word indices, increasing) lays out for ``primary``."""
    frames = [Frame(primary, (), 0, None)]
    end = len(types[primary])
    for word in nested:
        parent = next((f for f in frames if f.start <= word < f.start + len(types[f.type])), None)
        member = types[parent.type][word - parent.start] if parent is not None else None
        if parent is None or member is None or member.type not in types:
            raise BadInputError(
                f"the permission expands word {word} of {primary}'s contents, which is not a nested struct of it"
            )
        frames.append(Frame(member.type, (*parent.path, member.name), end, word))
        end += len(types[member.type])
    return tuple(frames)


def contents_fields(contents_name: str, contents_type: str, nested: Sequence[int]) -> dict[int, FieldName]:
    """Byte offset in the flattened contents -> the field there, laid out from the signed contents type and the
    ``nested`` list (the structs it expands, breadth-first)."""
    types = {name: _members(text, name) for name, text in contents_definitions(contents_type)}
    fields: dict[int, FieldName] = {}
    for frame in nested_frames(contents_name, types, nested):
        for index, member in enumerate(types[frame.type]):
            fields[32 * (frame.start + index)] = (".".join((*frame.path, member.name)), member.type)
    return fields


def is_hashed(kind: str, structs: Collection[str] = ()) -> bool:
    """Whether a field of EIP-712 type ``kind`` is encoded as the hash of its contents (``string``, ``bytes``, one of
    ``structs``, an array), not as its value."""
    return kind in HASHED_TYPES or kind in structs or kind.endswith("]")


def field_arg_type(kind: str, structs: Collection[str] = ()) -> int | None:
    """The rule type (:class:`~keyscope.arg_types.ArgType`) that reads a field of EIP-712 type ``kind`` as the
    verifier does: the atomic type's own, ``WORD`` for a word that is a hash (``string``, ``bytes``, one of
    ``structs``, an array); None for a type no rule type names."""
    if is_hashed(kind, structs):
        return ArgType.WORD
    try:
        return arg_type_of(kind)
    except ValueError:
        return None


def mistyped(
    contents_name: str, contents_type: str, nested: Sequence[int], rules: Sequence[tuple[int, int]]
) -> list[tuple[int, str, str]]:
    """The rules (``(offset, arg type)`` each) that read a field of the contents as another type than the field's,
    as ``(rule index, field path, field type)``: the module checks a signed word against the rule's type, so such
    a rule would pass a word the field's type does not hold (a uint64 with higher bits set, under a rule typed
    uint256), and a verifier that reads the field cleaned to its type would act on a value the rule never judged.
    A rule past the contents reads no field."""
    structs = {name for name, _ in contents_definitions(contents_type)}
    fields = contents_fields(contents_name, contents_type, nested)
    found = []
    for index, (offset, arg_type) in enumerate(rules):
        field = fields.get(offset)
        if field is not None and field_arg_type(field[1], structs) != arg_type:
            found.append((index, *field))
    return found


def ordered_hashes(
    contents_name: str, contents_type: str, nested: Sequence[int], rules: Sequence[tuple[int, int, int]]
) -> list[tuple[int, str, str]]:
    """The rules (``(offset, arg type, condition)`` each) that order (<=, <, >=, >, IN_RANGE) a field whose word is
    the hash of its contents (``string``, ``bytes``, an array, a struct), as ``(rule index, field path, field
    type)``: such a rule bounds the hash, which says nothing of the value a verifier reads, so any value passes it
    (the key tries values until one's hash does). The module refuses to grant them (``TypedDataRuleOrdersHash``);
    a rule typed otherwise than its field is :func:`mistyped` first, as the module reports it."""
    structs = {name for name, _ in contents_definitions(contents_type)}
    fields = contents_fields(contents_name, contents_type, nested)
    found = []
    for index, (offset, arg_type, condition) in enumerate(rules):
        field = fields.get(offset)
        if (
            field is not None
            and condition in ORDER_CONDITIONS
            and is_hashed(field[1], structs)
            and arg_type == ArgType.WORD
        ):
            found.append((index, *field))
    return found
