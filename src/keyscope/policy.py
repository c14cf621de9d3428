"""Build session permissions from a function signature or a JSON ABI.

A :class:`~keyscope.session.Permission` lets a session call one function of one contract, with rules on
the 32-byte words of the call's arguments. Writing rules by hand means counting byte offsets and encoding
reference values as words; this module does both from the function's ABI::

    from keyscope.policy import Policy, arg

    mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == user])
    pay = Policy.from_abi(usdc, erc20_abi, "transfer", rules=[arg("to") == shop, arg("amount") <= 10**6])
    swap = Policy.call(router, "swap((address token,uint256 amount) order,uint24 fee)",
                       rules=[arg("order", "amount").in_range(1, 10**18), arg("fee").one_of(500, 3000)])
    tip = Policy.transfer(friend, value_limit=10**16)

Limits over the session's life or per period are signed in the grant and counted by the module::

    Policy.call(nft, "safeMint(address to)", calls=10, rate="2/minute")      # 10 calls in all, 2 a minute
    Policy.call(router, "swap(uint256 amountIn)", totals=[arg("amountIn").total(10**18, per="day")])
    Policy.erc20_allowance(usdc, 5 * 10**6, period="day", symbol="USDC", decimals=6)  # 2 permissions, 1 budget
    owner.grant(key, [...], limits=[Limits.native(10**17, per="day"), Limits.operations(100)], gas_budget=10**16)

Offsets follow the ABI head layout: every static value takes 32 bytes, static tuples and fixed-size arrays
of static values sit inline (their components one after another), and a dynamic value (``bytes``,
``string``, ``T[]``, a tuple or array holding one) takes one 32-byte word holding the offset of its
contents. The module compares head words only, so rules on dynamic values are refused.

Reference values are checked against the argument's type: ``address`` (any form
:func:`~keyscope.hexutil.to_address` accepts, compared as a uint160 word), ``bool``, ``uintN`` and ``intN``
(range-checked; ``intN`` rules compare as signed and store negative values in two's complement),
``bytesN`` (exactly N bytes, left-aligned) and enums (``uint8`` in the ABI; Python enum members work).
Each rule carries its argument's type (:class:`~keyscope.session.ArgType`, signed in the grant): the module
refuses a call whose word is not that type's canonical encoding, since a target built with ABI coder v1, or
one reading calldata in assembly, would mask it and read another value than the one the rule judged.

A function whose selector is ``0x00000000`` cannot be granted: the module keeps that selector for plain
transfers (:meth:`Policy.transfer`), which carry no calldata.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

from .errors import (
    BadInputError,
    InvalidAbiError,
    InvalidAddressError,
    InvalidFieldsError,
    UnknownFunctionError,
    UnknownOptionError,
    a_type,
    shown,
)
from .hexutil import ZERO_ADDRESS, keccak, to_address, to_bytes, to_int
from .limits import period_seconds
from .session import (
    MAX_NESTED,
    MAX_RULE_WORDS,
    UINT256_MAX,
    ArgType,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    TypedDataPermission,
    arg_type_of,
)
from .textfile import read_text_file
from .typed_data import _fields, contents_type, domain_fields, plan_frames, refuse_lone_surrogates
from .typed_fields import HASHED_TYPES

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "TRANSFER_SELECTOR",
    "AbiFunction",
    "AbiParam",
    "AbiType",
    "ArgRef",
    "CallLimits",
    "Limits",
    "Policy",
    "RuleSpec",
    "TotalSpec",
    "arg",
    "find_function",
    "parse_signature",
    "word_type_of",
]

TRANSFER_SELECTOR = bytes(4)
"""The selector a call with empty calldata (a plain native transfer) has for the module."""

MAX_OFFSET = 0xFFFF
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_LOCATIONS = frozenset({"calldata", "memory", "storage", "indexed", "payable"})


# --------------------------------------------------------------------------------------------------
# ABI types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AbiType:
    """A parsed ABI type: ``kind`` is ``"elementary"``, ``"tuple"`` or ``"array"``; ``name`` is canonical.

    ``components`` are a tuple's members, ``element`` and ``length`` an array's element type and length
    (None for a dynamic array).
    """

    kind: str
    name: str
    components: tuple[AbiParam, ...] = ()
    element: AbiType | None = None
    length: int | None = None

    @property
    def dynamic(self) -> bool:
        """Whether the ABI encodes this type in the tail (its head word is then an offset)."""
        if self.kind == "elementary":
            return self.name in ("bytes", "string")
        if self.kind == "tuple":
            return any(c.type.dynamic for c in self.components)
        assert self.element is not None
        return self.length is None or self.element.dynamic

    @property
    def head_size(self) -> int:
        """Bytes this type takes in the head of an encoding: 32 when dynamic, else its inline size."""
        if self.dynamic:
            return 32
        if self.kind == "tuple":
            return sum(c.type.head_size for c in self.components)
        if self.kind == "array":
            assert self.element is not None and self.length is not None
            return self.length * self.element.head_size
        return 32

    def named(self, separator: str = ", ") -> str:
        """The type as a reader is shown it: its canonical name, with each struct component's name after its type
        (``(address tokenIn, address recipient, uint256 amount)[]``), at every depth. The canonical name alone,
        ``(address,address,uint256)[]``, hides which component is a recipient beside the one a rule bounds (attack
        409); ``separator`` goes between components."""
        if self.kind == "tuple":
            inner = separator.join(f"{c.type.named(separator)} {c.name}".strip() for c in self.components)
            return f"({inner})"
        if self.kind == "array":
            assert self.element is not None
            return f"{self.element.named(separator)}[{'' if self.length is None else self.length}]"
        return self.name


@dataclass(frozen=True, slots=True)
class AbiParam:
    """A function argument or tuple component: a name ('' when unnamed) and a type."""

    name: str
    type: AbiType


@dataclass(frozen=True, slots=True)
class AbiFunction:
    """A function's name and inputs, with its canonical signature and selector."""

    name: str
    inputs: tuple[AbiParam, ...]
    signature: str
    selector: bytes

    @classmethod
    def of(cls, name: str, inputs: Sequence[AbiParam]) -> AbiFunction:
        """The function ``name(inputs)``, with its signature and selector computed."""
        params = tuple(inputs)
        signature = f"{name}({','.join(p.type.name for p in params)})"
        return cls(name, params, signature, keccak(signature.encode())[:4])

    def with_distinct_names(self) -> AbiFunction:
        """The function with each name an argument or a struct component shares with one before it among its siblings
        dropped (shown by position), at every depth. Solidity refuses such a declaration, so only a request's label
        writes one: ``pay((address to, address to) legs)`` with a rule on the first ``to`` read "legs.to must be this
        account" for a word the other ``to`` is not (attack 413)."""
        return AbiFunction(self.name, _distinct(self.inputs), self.signature, self.selector)

    def describe_inputs(self) -> str:
        """``to (address), amount (uint256)``, for messages."""
        if not self.inputs:
            return "none"
        return ", ".join(f"{p.name or f'arg{i}'} ({p.type.name})" for i, p in enumerate(self.inputs))

    def locate(self, path: Sequence[str | int]) -> tuple[int, AbiType, str]:
        """``(offset, type, label)`` of the head word an argument path names.

        ``path`` starts with an argument name or index and may go on into static tuples (component name or
        index) and fixed-size arrays (index). Raises :class:`BadInputError` for unknown names, dynamic values
        (the module compares head words only) and paths that end on a tuple or array.
        """
        if not path:
            raise BadInputError("an argument reference needs an argument name or index")
        index = _pick(self.inputs, path[0], f"function {self.signature}", "argument")
        param = self.inputs[index]
        offset = sum(p.type.head_size for p in self.inputs[:index])
        label = param.name or f"arg{index}"
        kind = param.type
        for step in path[1:]:
            _refuse_dynamic(kind, label, self.signature)
            if kind.kind == "tuple":
                member = _pick(kind.components, step, f"`{label}` ({kind.name})", "component")
                offset += sum(c.type.head_size for c in kind.components[:member])
                label += "." + (kind.components[member].name or str(member))
                kind = kind.components[member].type
            elif kind.kind == "array":
                assert kind.element is not None and kind.length is not None
                if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < kind.length:
                    raise BadInputError(
                        f"`{label}` is a {kind.name}: index it with an integer from 0 to {kind.length - 1}, "
                        f"got {shown(step)}"
                    )
                offset += step * kind.element.head_size
                label += f"[{step}]"
                kind = kind.element
            else:
                raise BadInputError(
                    f"`{label}` is a {kind.name} in {self.signature}: it has no components, drop {shown(step)} "
                    "from the argument path"
                )
        _refuse_dynamic(kind, label, self.signature)
        if kind.kind != "elementary":
            first = repr(kind.components[0].name or 0) if kind.kind == "tuple" and kind.components else "0"
            raise BadInputError(
                f"`{label}` is a {kind.name} taking {kind.head_size} bytes in {self.signature}; a rule "
                f"checks one 32-byte word: put it on one of its components, e.g. arg(..., {first})"
            )
        if offset > MAX_OFFSET:
            raise BadInputError(
                f"`{label}` sits at argument offset {offset} in {self.signature}, beyond the module's 16-bit "
                f"offsets (at most {MAX_OFFSET})"
            )
        return offset, kind, label

    def dynamic_at(self, offset: int) -> tuple[str, AbiType] | None:
        """``(label, type)`` of the dynamic argument (``bytes``, ``string``, an array, a tuple holding one) whose
        head word is at ``offset``, if any: that word is the offset of the argument's data, which the caller
        picks, not the argument."""
        position = 0
        for index, param in enumerate(self.inputs):
            if offset == position and param.type.dynamic:
                return param.name or f"arg{index}", param.type
            position += param.type.head_size
        return None

    def misread_at(
        self, offset: int, arg_type: int, condition: int | None = None, values: Sequence[int] = ()
    ) -> tuple[str, AbiType] | None:
        """``(label, type)`` of the argument whose word starts at ``offset`` when a rule of type ``arg_type`` reads
        that word otherwise than the argument's type does (signed for unsigned, bytes for a number, or the reverse:
        :meth:`ArgType.reads_alike`), or takes words the argument's type refuses (a wider type of its kind,
        :meth:`ArgType.within`); None when no argument's word starts there, or the rule reads it alike. Such a
        rule's values do not say what it lets the argument be: "at most 0x7f" as a ``bytes1`` lets a ``uint256`` be
        ``0x7f * 2**248``. A wider rule of ``condition`` EQUAL or ONE_OF whose ``values`` are all canonical words of
        the argument's type passes those words only, so it reads its argument as written (a ``uint256`` rule "must
        be" an address)."""
        located = self.word_at(offset)
        if located is None:
            return None
        argument = word_type_of(located[1].name)
        if not ArgType.reads_alike(argument, arg_type):
            return located
        if ArgType.within(arg_type, argument):
            return None
        if _passes_only_canonical(argument, condition, values):
            return None
        return located

    def word_at(self, offset: int) -> tuple[str, AbiType] | None:
        """``(label, type)`` of the static elementary value whose head word starts at ``offset``, if any."""
        position = 0
        for index, param in enumerate(self.inputs):
            found = _word_in(param.type, param.name or f"arg{index}", offset - position)
            if found is not None:
                return found
            position += param.type.head_size
        return None


def _distinct(params: Sequence[AbiParam]) -> tuple[AbiParam, ...]:
    """``params`` with each name one before it bears dropped, and the same inside each one's type."""
    seen: set[str] = set()
    out = []
    for param in params:
        out.append(AbiParam("" if param.name in seen else param.name, _distinct_type(param.type)))
        if param.name:
            seen.add(param.name)
    return tuple(out)


def _distinct_type(kind: AbiType) -> AbiType:
    if kind.kind == "tuple":
        return replace(kind, components=_distinct(kind.components))
    if kind.element is not None:
        return replace(kind, element=_distinct_type(kind.element))
    return kind


def _word_in(kind: AbiType, label: str, offset: int) -> tuple[str, AbiType] | None:
    if offset < 0 or offset >= kind.head_size or offset % 32:
        return None
    if kind.dynamic:
        return None
    if kind.kind == "elementary":
        return (label, kind) if offset == 0 else None
    if kind.kind == "tuple":
        position = 0
        for member, component in enumerate(kind.components):
            name = f"{label}.{component.name or member}"
            found = _word_in(component.type, name, offset - position)
            if found is not None:
                return found
            position += component.type.head_size
        return None
    assert kind.element is not None
    size = kind.element.head_size
    return _word_in(kind.element, f"{label}[{offset // size}]", offset % size)


def _passes_only_canonical(argument: int, condition: int | None, values: Sequence[int]) -> bool:
    """Whether a rule of a wider type of the argument's kind, of ``condition`` and ``values``, passes only words
    canonical for the ``argument``'s type: EQUAL and ONE_OF of canonical values; on an unsigned argument (a bool
    included) an upper bound that is canonical (LESS_THAN_OR_EQUAL, LESS_THAN, IN_RANGE: no word above it passes);
    on a signed one, IN_RANGE with both ends canonical (LESS_THAN and the rest leave one side open)."""
    if not values:
        return False
    if condition in (Condition.EQUAL, Condition.ONE_OF):
        return all(ArgType.is_canonical(argument, value) for value in values)
    unsigned = argument >> 5 in (0, 3)
    if unsigned and condition == Condition.LESS_THAN:
        return values[0] == 0 or ArgType.is_canonical(argument, values[0] - 1)
    if unsigned and condition in (Condition.LESS_THAN_OR_EQUAL, Condition.IN_RANGE):
        return ArgType.is_canonical(argument, values[-1])
    if ArgType.is_signed(argument) and condition == Condition.IN_RANGE and len(values) == 2:
        return all(ArgType.is_canonical(argument, value) for value in values)
    return False


def word_type_of(name: str) -> int:
    """The :class:`ArgType` of a static elementary argument's word: :func:`arg_type_of`, and for the fixed-point
    types the integer their word holds (``fixedMxN`` an ``intM``, ``ufixedMxN`` a ``uintM``: the value times
    10**N), which a ready-made rule on one is typed as."""
    match = re.fullmatch(r"(u?)fixed(\d+)x\d+", name)
    if match is not None:
        bits = int(match.group(2))
        return ArgType.uint_of(bits) if match.group(1) else ArgType.int_of(bits)
    return arg_type_of(name)


def _refuse_misread(rule: Rule, function: AbiFunction) -> None:
    """Refuse a ready-made ``rule`` on an argument of ``function`` that it reads as a type reading the word otherwise
    (:meth:`ArgType.reads_alike`): its values would not say what it lets the argument be."""
    misread = function.misread_at(rule.offset, rule.arg_type, rule.condition, rule.values)
    if misread is None:
        return
    label, kind = misread
    raise BadInputError(
        f"a rule at byte {rule.offset} reads `{label}` ({kind.name}) in {function.signature} as a "
        f"{ArgType.name(rule.arg_type)}, which reads its word otherwise or takes words the argument's type refuses: "
        f"its values would not say what it lets `{label}` be (0x7f as a bytes1 lets a uint256 be 0x7f * 2**248; "
        "!= 1 as a uint256 lets a bool be 2, which a coder v1 target reads as true). Give the rule the argument's type "
        f"({ArgType.name(word_type_of(kind.name))})"
        + ("" if "fixed" in kind.name else ", or write it as an arg(...) comparison, which takes it")
    )


def _pick(params: Sequence[AbiParam], key: str | int, owner: str, what: str) -> int:
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise BadInputError(f"a {what} is named by its name or index, got {shown(key)}")
    if isinstance(key, int):
        if not 0 <= key < len(params):
            raise BadInputError(
                f"{owner} has {len(params)} {what}s: index {key} is out of range (0 to {len(params) - 1})"
            )
        return key
    found = [index for index, param in enumerate(params) if param.name == key]
    if len(found) > 1:
        raise BadInputError(
            f"{owner} has {len(found)} {what}s named {shown(key)} (at {', '.join(map(str, found))}): a rule by "
            f"that name could bind either; refer to the one you mean by its index, or fix the names"
        )
    if found:
        return found[0]
    names = ", ".join(f"{p.name or f'#{i}'} ({p.type.name})" for i, p in enumerate(params)) or "none"
    raise BadInputError(
        f"{owner} has no {what} named {shown(key)}; its {what}s: {names} (unnamed ones by index)"
    )


def _refuse_dynamic(kind: AbiType, label: str, signature: str) -> None:
    if kind.dynamic:
        raise BadInputError(
            f"`{label}` is a {kind.name} in {signature}: a dynamic value whose head word holds only the "
            "offset of its contents, and the module compares head words only. Put the rule on a static "
            "argument (or a component of a static tuple or fixed-size array)."
        )


# --------------------------------------------------------------------------------------------------
# Parsing: signatures and JSON ABIs
# --------------------------------------------------------------------------------------------------


def _elementary(text: str) -> AbiType:
    name = text
    if name in ("uint", "int"):
        name += "256"
    elif name in ("fixed", "ufixed"):
        name += "128x18"
    elif name == "byte":
        name = "bytes1"
    ok = name in ("address", "bool", "string", "bytes", "function")
    if not ok and (match := re.fullmatch(r"(u?int)(\d+)", name)):
        bits = int(match.group(2))
        ok = 8 <= bits <= 256 and bits % 8 == 0 and not match.group(2).startswith("0")
    if not ok and (match := re.fullmatch(r"bytes(\d+)", name)):
        ok = 1 <= int(match.group(1)) <= 32 and not match.group(1).startswith("0")
    if not ok and (match := re.fullmatch(r"u?fixed(\d+)x(\d+)", name)):
        bits, decimals = int(match.group(1)), int(match.group(2))
        ok = 8 <= bits <= 256 and bits % 8 == 0 and 0 < decimals <= 80
    if not ok:
        raise InvalidAbiError(
            f"{shown(text)} is not an ABI type (expected e.g. uint256, address, bytes32, (T1,T2), T[])"
        )
    return AbiType("elementary", name)


def _tuple(components: Sequence[AbiParam]) -> AbiType:
    params = tuple(components)
    return AbiType("tuple", "(" + ",".join(p.type.name for p in params) + ")", components=params)


def _array(element: AbiType, length: int | None) -> AbiType:
    suffix = "[]" if length is None else f"[{length}]"
    return AbiType("array", element.name + suffix, element=element, length=length)


# How deep a signature's tuples may nest: as deep as an ABI's JSON allows (two JSON levels a tuple), and far short of
# the recursion that reading them takes (three calls a tuple).
_SIGNATURE_DEPTH = 128


class _Reader:
    """Recursive-descent reader of Solidity-style type lists: ``(address to,(uint8,bytes32)[2] x)``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, what: str) -> InvalidAbiError:
        return InvalidAbiError(f"cannot read {self.text!r} at position {self.pos}: {what}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        self.skip()
        if self.peek() != char:
            raise self.fail(f"expected {shown(char)}")
        self.pos += 1

    def ident(self) -> str | None:
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group(0)

    def params(self) -> tuple[AbiParam, ...]:
        """Read ``T1 name1, T2 name2)`` (the opening parenthesis already read)."""
        self.skip()
        if self.peek() == ")":
            self.pos += 1
            return ()
        params: list[AbiParam] = []
        while True:
            params.append(self.param())
            self.skip()
            char = self.peek()
            self.pos += 1
            if char == ")":
                return tuple(params)
            if char != ",":
                self.pos -= 1
                raise self.fail("expected ',' or ')'")

    def param(self) -> AbiParam:
        kind = self.type()
        name = ""
        while True:
            start = self.pos
            self.skip()
            if self.pos == start:
                break
            word = self.ident()
            if word is None:
                break
            if word in _LOCATIONS and not name:
                continue
            if name:
                raise self.fail(f"unexpected {shown(word)} after the name {shown(name)}")
            name = word
        return AbiParam(name, kind)

    def type(self) -> AbiType:
        self.skip()
        if self.peek() == "(" or self.text.startswith("tuple(", self.pos):
            if self.peek() == "t":
                self.pos += len("tuple")
            self.pos += 1
            self.depth += 1
            if self.depth > _SIGNATURE_DEPTH:
                raise self.fail(f"tuples nest more than {_SIGNATURE_DEPTH} deep, which no contract's do")
            kind = _tuple(self.params())
            self.depth -= 1
        else:
            word = self.ident()
            if word is None:
                raise self.fail("expected a type")
            kind = _elementary(word)
        return self.suffixes(kind)

    def suffixes(self, kind: AbiType) -> AbiType:
        while self.peek() == "[":
            end = self.text.find("]", self.pos)
            if end < 0:
                raise self.fail("unclosed '['")
            size = self.text[self.pos + 1 : end].strip()
            if size and (not re.fullmatch(r"[0-9]+", size) or int(size) == 0):  # not isdigit: "²", "٣"
                raise self.fail(f"array length {shown(size)} is not a positive integer")
            kind = _array(kind, int(size) if size else None)
            self.pos = end + 1
        return kind


def parse_signature(text: str) -> AbiFunction:
    """Read a function signature: ``"transfer(address,uint256)"``, with optional argument names
    (``"transfer(address to, uint256 amount)"``), tuples (``"(uint256,address)"`` or ``"tuple(...)"``),
    arrays, and an optional leading ``function`` and trailing modifiers (``external returns (bool)``).

    Raises :class:`~keyscope.errors.InvalidAbiError` when the text is not a signature.
    """
    if not isinstance(text, str):
        raise InvalidAbiError(f"a function signature must be a string, got {type(text).__name__}")
    reader = _Reader(text.strip())
    try:
        if reader.text.startswith("function") and reader.text[8:9].isspace():
            reader.pos = 8
            reader.skip()
        name = reader.ident()
        if name is None:
            raise reader.fail("expected a function name")
        reader.expect("(")
        inputs = reader.params()
        rest = reader.text[reader.pos :]
        if rest and not re.fullmatch(r"\s+[A-Za-z].*", rest, flags=re.DOTALL):
            raise reader.fail("unexpected text after the argument list")
    except InvalidAbiError as error:
        if not str(error).startswith(
            "cannot read "
        ):  # a type's own refusal says what types are: name the signature
            raise InvalidAbiError(f"in the function signature {shown(text)}: {error}") from None
        raise InvalidAbiError(f"{error}; {_SIGNATURE_FORM}") from None
    return AbiFunction.of(name, inputs)


_SIGNATURE_FORM = "write a function as Solidity declares it: name(type name, ...), e.g. transfer(address to, uint256 amount)"


def _param_from_json(entry: Any, where: str) -> AbiParam:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise InvalidAbiError(
            f"{where}: an ABI parameter must be an object with a 'type' string, got {shown(entry)}"
        )
    text: str = entry["type"]
    name = entry.get("name") or ""
    if not isinstance(name, str):
        raise InvalidAbiError(f"{where}: parameter name {shown(name)} is not a string")
    if text.startswith("tuple"):
        components = entry.get("components")
        if not isinstance(components, list):
            raise InvalidAbiError(f"{where}: tuple parameter {name or text!r} has no 'components' list")
        base = _tuple([_param_from_json(c, where) for c in components])
        reader = _Reader(text)
        reader.pos = len("tuple")
        kind = reader.suffixes(base)
    else:
        reader = _Reader(text)
        kind = reader.type()
    if reader.pos != len(text):
        raise InvalidAbiError(f"{where}: {shown(text)} is not an ABI type")
    return AbiParam(name, kind)


# How deep an ABI's JSON may nest: each tuple parameter adds two levels ({"components": [...]}), so this allows
# tuples nested far deeper than any contract's, and keeps the decoder from recursing past the C stack.
_ABI_JSON_DEPTH = 256


def _nesting(text: str) -> int:
    """How deep the arrays and objects of JSON ``text`` nest (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _abi_json(text: str | bytes | bytearray, where: str = "") -> Any:
    """The JSON value of an ABI's text (``where`` names its file)."""
    if isinstance(text, str):
        decoded = text
    else:
        raw = bytes(text)
        try:
            decoded = raw.decode(json.detect_encoding(raw))
        except UnicodeDecodeError as error:
            raise InvalidAbiError(
                f"the ABI{where} is not text: byte 0x{raw[error.start]:02x} at offset {error.start} is not "
                f"{error.encoding}: give a list of ABI entries"
            ) from None
    if _nesting(decoded) > _ABI_JSON_DEPTH:
        raise InvalidAbiError(
            f"the ABI{where} nests arrays and objects more than {_ABI_JSON_DEPTH} deep, which no ABI does: give a "
            "list of ABI entries"
        )
    try:
        return json.loads(decoded)
    except RecursionError:
        raise InvalidAbiError(
            f"the ABI{where} nests too deeply to be an ABI: give a list of ABI entries"
        ) from None
    except ValueError as error:
        raise InvalidAbiError(
            f"the ABI{where} is not valid JSON ({error}): give a list of ABI entries"
        ) from None


def _abi_file(path: str | os.PathLike[str]) -> Any:
    """The JSON value of the ABI file at ``path`` (a list of entries, or a build artefact with an ``abi`` key)."""
    expected = "a JSON ABI (a list of entries) or a build artefact with an 'abi' key"
    return _abi_json(read_text_file(path, "ABI file", expected), f" file {path}")


def _names_a_file(text: str) -> bool:
    """Whether ``text``, given as an ABI, is rather the path of one: not JSON text, and a file or a ``.json`` name."""
    stripped = text.strip()
    if not stripped or stripped[0] in "[{" or "\n" in stripped:
        return False
    return stripped.endswith(".json") or os.path.exists(stripped)


def _abi_entries(abi: Any) -> list[dict[str, Any]]:
    source = abi
    read = ""  # where a JSON value read from a file or text came from, for a value that is no ABI
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _names_a_file(source)):
        path = source.strip() if isinstance(source, str) else source
        source, read = _abi_file(path), f"the ABI file {path}"
    elif isinstance(source, (str, bytes, bytearray)):
        source, read = _abi_json(source), "the ABI's JSON text"
    if isinstance(source, dict) and "abi" in source:
        source = source["abi"]
        read = read and f"the 'abi' key of {read}"
    elif not isinstance(source, (list, tuple, dict)):
        contract_type = getattr(source, "contract_type", None)
        if contract_type is not None and hasattr(contract_type, "abi"):
            source = contract_type.abi
        elif hasattr(source, "abi"):
            source = source.abi
    if read and not isinstance(source, (list, dict)):
        raise InvalidAbiError(
            f"{read} holds {_json_kind(source)}, not a list of ABI entries: give a list of ABI entries, or a build "
            "artefact with an 'abi' list"
        )
    if isinstance(source, dict):
        raise InvalidAbiError(
            f"the ABI is a JSON object, not a list of entries (keys: {', '.join(map(str, list(source)[:8])) or 'none'}): "
            "give a list of ABI entries, or a build artefact with an 'abi' list"
        )
    if isinstance(source, (str, bytes, bytearray)) or not isinstance(source, Iterable):
        raise InvalidAbiError(
            f"cannot read an ABI from {a_type(abi)}: give a list of ABI entries, its JSON text, the path of "
            "a JSON ABI file, or an object with an .abi (an ape contract or contract type)"
        )
    entries: list[dict[str, Any]] = []
    for item in source:
        if hasattr(item, "model_dump"):
            item = item.model_dump(mode="json", by_alias=True)
        if not isinstance(item, dict):
            raise InvalidAbiError(f"an ABI entry must be an object, got {shown(item)}")
        entries.append(item)
    return entries


def _json_kind(value: Any) -> str:
    """What a JSON value that is no list or object is, in words (a string, most often: the list's JSON text saved as
    one JSON string)."""
    if isinstance(value, str):
        return "a string (the ABI's JSON text written as one JSON string, perhaps: give the list itself)"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return f"the number {value}" if isinstance(value, (int, float)) else a_type(value)


def _functions(abi: Any) -> list[AbiFunction]:
    functions: list[AbiFunction] = []
    for entry in _abi_entries(abi):
        if entry.get("type", "function") != "function":
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidAbiError(f"ABI function entry without a name: {shown(entry)}")
        inputs = entry.get("inputs", [])
        if not isinstance(inputs, list):
            raise InvalidAbiError(f"ABI function {shown(name)} has no 'inputs' list")
        functions.append(AbiFunction.of(name, [_param_from_json(p, f"function {name}") for p in inputs]))
    return functions


def find_function(abi: Any, function: str) -> AbiFunction:
    """The function ``function`` names in ``abi``: a name, a full signature (argument names allowed) or a
    0x-prefixed 4-byte selector.

    ``abi`` is a list of ABI entries, its JSON text (or a build artefact with an ``abi`` key), the path of a file
    holding either (a ``pathlib.Path``, or a string naming a file or ending in ``.json``), or an object with an
    ``.abi`` (ape contract types; ape contract instances through their ``contract_type``). Raises
    :class:`~keyscope.errors.UnknownFunctionError` when nothing matches and :class:`BadInputError` when a
    bare name is overloaded, when the ABI lists the function twice with other argument names, or when the
    signature names an argument (or tuple component) otherwise than the ABI: rules refer to the ABI's names, so a
    name the text puts elsewhere would bind another argument than the one written.
    """
    functions = _functions(abi)
    available = sorted({f.signature for f in functions})
    if not isinstance(function, str) or not function.strip():
        raise BadInputError(f"name the function by name, signature or selector, got {shown(function)}")
    wanted = function.strip()
    if "(" in wanted:
        signature = parse_signature(wanted).signature
        matches = [f for f in functions if f.signature == signature]
    elif re.fullmatch(r"0[xX][0-9a-fA-F]{8}", wanted):
        selector = bytes.fromhex(wanted[2:])
        matches = [f for f in functions if f.selector == selector]
    else:
        matches = [f for f in functions if f.name == wanted]
    unique = {f.signature: f for f in matches}
    if not unique:
        raise UnknownFunctionError(function, available)
    if len(unique) > 1:
        raise BadInputError(
            f"{shown(function)} is overloaded in this ABI: {', '.join(sorted(unique))}; pass the full signature "
            "to pick one"
        )
    found = next(iter(unique.values()))
    for other in matches:
        if (
            other.inputs != found.inputs
        ):  # one function listed twice (merged ABIs), its arguments named otherwise
            raise BadInputError(
                f"{found.signature} is listed twice in this ABI with other argument names ({found.describe_inputs()}; "
                f"{other.describe_inputs()}): a rule by name could bind either argument. Fix the ABI, or give the "
                "signature with the argument names you mean to Policy.call"
            )
    if "(" in wanted:
        _same_names(parse_signature(wanted).inputs, found.inputs, found.signature, "")
    return found


def _same_names(written: Sequence[AbiParam], listed: Sequence[AbiParam], signature: str, within: str) -> None:
    """Refuse an argument (or tuple component) the written signature names otherwise than the ABI does: a rule by
    name would bind the ABI's argument of that name, not the one the text puts the name on."""
    for index, (mine, theirs) in enumerate(zip(written, listed, strict=True)):
        label = f"{within}{mine.name or theirs.name or index}"
        if mine.name and theirs.name and mine.name != theirs.name:
            raise BadInputError(
                f"the signature names {'component' if within else 'argument'} {index} of {signature} {shown(mine.name)}"
                f"{' in `' + within.rstrip('.') + '`' if within else ''}, the ABI names it {shown(theirs.name)}: a "
                "rule by name would bind the ABI's argument of that name. Write the ABI's names, or none (the "
                "function by its name or bare signature)"
            )
        kind, other = mine.type, theirs.type
        while kind.kind == "array" and other.kind == "array":
            assert kind.element is not None and other.element is not None
            kind, other = kind.element, other.element
        if kind.kind == "tuple" and other.kind == "tuple":
            _same_names(kind.components, other.components, signature, label + ".")


# --------------------------------------------------------------------------------------------------
# Argument references and rule specs
# --------------------------------------------------------------------------------------------------


class ArgRef:
    """A reference to a function argument (or a component of one), made by :func:`arg`.

    Compare it (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``) or call :meth:`in_range` / :meth:`one_of` to
    get a :class:`RuleSpec`, which :class:`Policy` resolves against the function's ABI.
    """

    __slots__ = ("path",)

    def __init__(self, path: tuple[str | int, ...]) -> None:
        self.path = path

    def _spec(self, op: Condition, values: tuple[Any, ...]) -> RuleSpec:
        return RuleSpec(self, op, values)

    def __eq__(self, value: object) -> RuleSpec:  # type: ignore[override]
        return self._spec(Condition.EQUAL, (value,))

    def __ne__(self, value: object) -> RuleSpec:  # type: ignore[override]
        return self._spec(Condition.NOT_EQUAL, (value,))

    def __lt__(self, value: object) -> RuleSpec:
        return self._spec(Condition.LESS_THAN, (value,))

    def __le__(self, value: object) -> RuleSpec:
        return self._spec(Condition.LESS_THAN_OR_EQUAL, (value,))

    def __gt__(self, value: object) -> RuleSpec:
        return self._spec(Condition.GREATER_THAN, (value,))

    def __ge__(self, value: object) -> RuleSpec:
        return self._spec(Condition.GREATER_THAN_OR_EQUAL, (value,))

    __hash__ = None  # type: ignore[assignment]

    def in_range(self, low: Any, high: Any) -> RuleSpec:
        """The argument lies in ``[low, high]`` (both ends included)."""
        return self._spec(Condition.IN_RANGE, (low, high))

    def one_of(self, *values: Any) -> RuleSpec:
        """The argument equals one of ``values`` (also accepts one list, tuple or range of values)."""
        if len(values) == 1 and isinstance(values[0], (list, tuple, range)):
            if isinstance(values[0], range) and len(values[0]) > MAX_RULE_WORDS:
                return self._spec(Condition.ONE_OF, values)  # refused by resolve, naming the argument
            values = tuple(values[0])
        return self._spec(Condition.ONE_OF, values)

    def total(self, at_most: int, *, per: int | str | None = None, name: str | None = None) -> TotalSpec:
        """A limit on the sum of this (unsigned) argument over the permission's calls: at most ``at_most`` over
        the session's life, or ``per`` period (``"day"``, ``"hour"``, seconds). Give it to ``totals=``."""
        return TotalSpec(self, at_most, period_seconds(per), name)

    def __bool__(self) -> bool:
        raise BadInputError("an arg(...) reference has no truth value: compare it to build a rule")

    def __repr__(self) -> str:
        return f"arg({', '.join(repr(p) for p in self.path)})"


@dataclass(frozen=True, slots=True, eq=False)
class RuleSpec:
    """A rule on an argument, before it is resolved against the function's ABI into a :class:`Rule`."""

    ref: ArgRef
    op: Condition
    values: tuple[Any, ...]

    def __bool__(self) -> bool:
        hint = " (for a range use arg(...).in_range(low, high))" if self.op != Condition.EQUAL else ""
        raise BadInputError(f"{shown(self)} is a rule, not a condition Python can test{hint}")

    def __repr__(self) -> str:
        return f"{shown(self.ref)} {self.op.name} {shown(self.values)}"

    def resolve(self, function: AbiFunction) -> Rule:
        """The module :class:`Rule` for ``function``: offset from the head layout, the argument's ABI type
        (so that the module refuses a word that is not its canonical encoding, and compares ``intN`` as
        signed), typed reference words, and ``name`` set to the argument's label."""
        offset, kind, label = function.locate(self.ref.path)
        signed = kind.name.startswith("int")
        where = f"argument `{label}` ({kind.name}) of {function.signature}"
        if self.op == Condition.ONE_OF and len(self.values) == 1 and isinstance(self.values[0], range):
            raise BadInputError(
                f"{where}: one_of({self.values[0]!r}) takes 1 to {MAX_RULE_WORDS} distinct values, got "
                f"{len(self.values[0])}; for a span of values use in_range(low, high)"
            )
        words = tuple(_encode(value, kind, where) for value in self.values)
        if self.op == Condition.IN_RANGE:
            low, high = (_as_signed(w) for w in words) if signed else words
            if low > high:
                raise BadInputError(
                    f"{where}: in_range({shown(self.values[0])}, {shown(self.values[1])}) has low above high: give the "
                    f"low end first, in_range({shown(self.values[1])}, {shown(self.values[0])})"
                )
        if self.op == Condition.ONE_OF:
            words = tuple(dict.fromkeys(words))
            if not 1 <= len(words) <= MAX_RULE_WORDS:
                raise BadInputError(
                    f"{where}: one_of takes 1 to {MAX_RULE_WORDS} distinct values, got {len(words)}"
                )
        return Rule(
            condition=int(self.op), offset=offset, arg_type=arg_type_of(kind.name), values=words, name=label
        )


@dataclass(frozen=True, slots=True, eq=False)
class TotalSpec:
    """A limit on an argument's total, before it is resolved against the function's ABI into a :class:`Limit`."""

    ref: ArgRef
    amount: int
    period: int
    name: str | None

    def resolve(self, function: AbiFunction) -> Limit:
        """The AMOUNT :class:`Limit` on this permission's calls (the argument must be an unsigned integer)."""
        offset, kind, label = function.locate(self.ref.path)
        if not kind.name.startswith("uint"):
            uints = [
                p.name or str(i) for i, p in enumerate(function.inputs) if p.type.name.startswith("uint")
            ]
            todo = (
                f"give an unsigned integer argument instead ({', '.join(uints)})"
                if uints
                else "the function has no unsigned integer argument to total"
            )
            raise BadInputError(
                f"argument `{label}` of {function.signature} is of type {kind.name}: totals add unsigned integers "
                f"(uintN) only; {todo}"
            )
        amount = to_int(self.amount, name=f"the total of `{label}`")
        return _limit(
            kind=LimitKind.AMOUNT,
            amount=amount,
            period=self.period,
            meters=(Meter(offset=offset, name=label),),
            name=self.name or f"total {label} of {function.name}",
        )


def _limit(**fields: Any) -> Limit:
    """A :class:`Limit` of ``fields``; a value the module cannot take is a :class:`BadInputError` naming it."""
    try:
        return Limit(**fields)
    except InvalidFieldsError as error:
        name = fields.get("name") or "a limit"
        raise BadInputError(f"{name}: {error.summary}") from None


def _rate(rate: tuple[int, int | str] | str) -> tuple[int, int]:
    """``(count, seconds)`` of ``"10/minute"``, ``"10 per hour"`` or ``(10, "minute")``."""
    if isinstance(rate, str):
        match = re.fullmatch(r"\s*([0-9]+)\s*(?:/|per)\s*(.+?)\s*", rate)
        if match is None:
            raise BadInputError(f"a rate reads like '10/minute' or '3 per hour', got {shown(rate)}")
        return int(match.group(1)), period_seconds(match.group(2))
    if (
        isinstance(rate, tuple)
        and len(rate) == 2
        and isinstance(rate[0], int)
        and not isinstance(rate[0], bool)
    ):
        return rate[0], period_seconds(rate[1])
    raise BadInputError(f"a rate is '10/minute' or (10, 'minute'), got {shown(rate)}")


class CallLimits(TypedDict, total=False):
    """The limits on one permission's calls that :class:`Policy`'s builders take (``calls=``, ``rate=``,
    ``totals=``), counted by the module; each is left out by default."""

    calls: int | None
    rate: tuple[int, int | str] | str | None
    totals: Iterable[TotalSpec] | TotalSpec | None


def _call_limits(
    label: str,
    calls: int | None,
    rate: tuple[int, int | str] | str | None,
    totals: Iterable[TotalSpec] | TotalSpec | None,
    function: AbiFunction | None,
) -> tuple[Limit, ...]:
    """The limits ``calls=``, ``rate=`` and ``totals=`` attach to a permission."""
    limits: list[Limit] = []
    if calls is not None:
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise BadInputError(
                f"calls= is the most calls over the session's life, a count; got {shown(calls)}"
            )
        if calls == 0:
            raise BadInputError(
                f"calls=0 allows no call of {label}: the module would accept it, but the permission could never be "
                "used; give a positive count, or leave calls out for no limit"
            )
        limits.append(_limit(kind=LimitKind.CALLS, amount=calls, meters=(Meter(),), name=f"calls of {label}"))
    if rate is not None:
        count, seconds = _rate(rate)
        if count == 0:
            raise BadInputError(
                f"rate={shown(rate)} allows no call of {label} in any period: the module would accept it, but the "
                "permission could never be used; give a positive count, or leave rate out for no limit"
            )
        limits.append(
            _limit(
                kind=LimitKind.CALLS, amount=count, period=seconds, meters=(Meter(),), name=f"rate of {label}"
            )
        )
    if totals is None:  # as calls=None and rate=None: none
        totals = ()
    elif isinstance(totals, TotalSpec):  # one total where a list is asked for, as rules= takes one rule
        totals = [totals]
    elif not isinstance(totals, Iterable) or isinstance(totals, (str, bytes, bytearray, Mapping)):
        raise BadInputError(
            f"totals= takes a list of arg(...).total(...) limits (e.g. [arg('amount').total(10**6, per='day')]), "
            f"got {type(totals).__name__}"
        )
    for total in totals:
        if not isinstance(total, TotalSpec):
            raise BadInputError(f"totals= takes arg(...).total(...) limits, got {shown(total)}")
        if function is None:
            raise BadInputError("a plain transfer has no arguments: limit its value with Limits.native")
        limits.append(total.resolve(function))
    return tuple(limits)


class Limits:
    """Session-wide limits, for ``owner.grant(..., limits=[...])``; per-permission ones are ``calls=``,
    ``rate=`` and ``totals=`` of :class:`Policy`."""

    @staticmethod
    def native(amount: int | str, *, per: int | str | None = None) -> Limit:
        """At most ``amount`` wei of native value over all the session's calls (every permission that can carry
        value counts), over the session's life or ``per`` period."""
        return _limit(
            kind=LimitKind.NATIVE,
            amount=to_int(amount, name="the native allowance"),
            period=period_seconds(per),
            name="native allowance",
            unit="ETH",
            decimals=18,
        )

    @staticmethod
    def operations(count: int, *, per: int | str | None = None) -> Limit:
        """At most ``count`` operations using the session, over its life or ``per`` period (a rate limit)."""
        if isinstance(count, bool) or not isinstance(count, int):  # as calls= (True was 1, 2.0 was 2)
            raise BadInputError(
                f"Limits.operations takes a count of operations, an integer; got {shown(count)}"
            )
        period = period_seconds(per)
        if count == 0:
            written = "Limits.operations(0)" if per is None else f"Limits.operations(0, per={shown(per)})"
            raise BadInputError(
                f"{written} allows no operation: the module would accept it, but the session could never be used; "
                "give a positive count, or leave the limit out"
            )
        return _limit(kind=LimitKind.OPERATIONS, amount=count, period=period, name="operations")

    @staticmethod
    def gas(wei: int | str, *, per: int | str | None = None) -> Limit:
        """A gas budget: at most ``wei`` of gas cost over the session's operations (each counted at its most
        possible cost, its prefund, unless a paymaster the session lists pays), over its life or ``per``
        period."""
        return _limit(
            kind=LimitKind.GAS,
            amount=to_int(wei, name="the gas budget"),
            period=period_seconds(per),
            name="gas budget",
            unit="ETH",
            decimals=18,
        )


def arg(name_or_index: str | int, *path: str | int) -> ArgRef:
    """A reference to argument ``name_or_index`` (name, or 0-based position), or to a component of it:
    ``arg("order", "amount")``, ``arg(1, 0)``, ``arg("amounts", 2)`` for a fixed-size array."""
    full = (name_or_index, *path)
    for step in full:
        if isinstance(step, bool) or not isinstance(step, (str, int)) or (isinstance(step, int) and step < 0):
            raise BadInputError(f"arg() takes argument names and non-negative indices, got {shown(step)}")
    return ArgRef(full)


def _as_signed(word: int) -> int:
    return word - 2**256 if word >> 255 else word


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) and not isinstance(value, int) else value


def _encode(value: Any, kind: AbiType, where: str) -> int:
    """The 32-byte word (as uint256) the ABI encodes ``value`` as, for an elementary static ``kind``."""
    name = kind.name
    raw = _plain(value)
    if name == "address":
        try:
            return int(to_address(raw), 16)
        except InvalidAddressError as error:
            # the value and the reason once (it was "'me' is not an address: 'me' is not a valid address: ...")
            reason = f": {error.reason}" if error.reason else ""
            raise BadInputError(
                f"{where}: {error.shown_value} is not an address{reason}. {error.advice}"
            ) from None
    if name == "bool":
        if raw is True or raw is False or (type(raw) is int and raw in (0, 1)):
            return int(raw)
        raise BadInputError(f"{where}: expected True or False, got {shown(value)}")
    if match := re.fullmatch(r"(u?)int(\d+)", name):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise BadInputError(f"{where}: expected an integer, got {shown(value)} ({type(value).__name__})")
        bits = int(match.group(2))
        low, high = (0, 2**bits - 1) if match.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not low <= raw <= high:
            raise BadInputError(f"{where}: {raw} is out of range [{low}, {high}]")
        return raw & UINT256_MAX
    if name.startswith("bytes") or name == "function":
        size = 24 if name == "function" else int(name[5:])
        if not isinstance(raw, (bytes, bytearray, str)):
            raise BadInputError(f"{where}: expected {size} bytes (bytes or 0x-hex), got {shown(value)}")
        try:
            data = to_bytes(raw, name=where)
        except BadInputError:
            # (to_bytes's own refusal names the value and `where` again: said once here)
            raise BadInputError(
                f"{where}: {shown(value)} is not bytes or 0x-hex: give 0x followed by an even number of hex digits"
            ) from None
        if len(data) != size:
            raise BadInputError(f"{where}: expected exactly {size} bytes, got {len(data)} ({shown(value)})")
        return int.from_bytes(data.ljust(32, b"\x00"), "big")
    raise BadInputError(
        f"{where}: rules on {name} values are not supported by the builder; write a Rule typed "
        f"{ArgType.name(word_type_of(name))} with the raw word (the value times 10**decimals)"
    )


# --------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------


class Policy:
    """Builders of :class:`~keyscope.session.Permission`: one function of one contract, with rules."""

    @staticmethod
    def call(
        target: Any,
        function: str,
        rules: Iterable[RuleSpec | Rule] = (),
        value_limit: int | str = 0,
        **limits: Unpack[CallLimits],
    ) -> Permission:
        """Allow ``target.function(...)`` given by its signature (argument names optional; without names,
        refer to arguments by index). ``value_limit`` is the most wei one call may carry (the module caps it
        at 2**96 - 1). Limits on this permission's calls, counted by the module: ``calls`` (the most over the
        session's life), ``rate`` (``"10/minute"``, ``(3, "hour")``), ``totals`` (``arg("amount").total(10**6,
        per="day")``)."""
        return _permission(target, parse_signature(function), rules, value_limit, limits)

    @staticmethod
    def from_abi(
        target: Any,
        abi: Any,
        function: str,
        rules: Iterable[RuleSpec | Rule] = (),
        value_limit: int | str = 0,
        **limits: Unpack[CallLimits],
    ) -> Permission:
        """Allow ``target.function(...)``, picking ``function`` from a JSON ABI (see :func:`find_function`
        for the forms ``abi`` and ``function`` may take; limits as :meth:`call`)."""
        return _permission(target, find_function(abi, function), rules, value_limit, limits)

    @staticmethod
    def from_contract(
        contract: Any,
        function: str,
        rules: Iterable[RuleSpec | Rule] = (),
        value_limit: int | str = 0,
        **limits: Unpack[CallLimits],
    ) -> Permission:
        """Allow a call to an ape contract instance (anything with ``.address`` and an ABI)."""
        return _permission(contract, find_function(contract, function), rules, value_limit, limits)

    @staticmethod
    def transfer(
        target: Any,
        value_limit: int | str,
        *,
        calls: int | None = None,
        rate: tuple[int, int | str] | str | None = None,
    ) -> Permission:
        """Allow plain native transfers to ``target`` (empty calldata, selector 0x00000000) of at most
        ``value_limit`` wei each (their total: ``Limits.native``)."""
        address, limit = _target_and_limit(target, value_limit)
        return Permission(
            target=address,
            selector=TRANSFER_SELECTOR,
            value_limit=limit,
            function="native transfer",
            limits=_call_limits(f"native transfers to {address}", calls, rate, (), None),
        )

    @staticmethod
    def erc20_allowance(
        token: Any,
        total: int | str,
        period: int | str | None = None,
        *,
        symbol: str | None = None,
        decimals: int = 0,
    ) -> tuple[Permission, ...]:
        """An ERC-20 allowance of ``token``: ``transfer`` and ``transferFrom``, whose amounts count towards one
        budget of ``total`` (base units) per ``period``; over the session's life (no ``period``) ``approve`` and
        ``increaseAllowance`` too. ``approve`` sets an allowance rather than adding to one: counting its amount is
        an upper bound of what it lets a spender take, so a lifetime budget bounds every token the session can make
        leave. A periodic budget takes no approvals: an allowance outlives its period and the session, so approvals
        made over many periods could all be taken at once, after the owner revoked the session. Add the returned
        permissions to a grant; ``symbol`` and ``decimals`` only shape messages."""
        address = to_address(token, name="token")
        seconds = period_seconds(period)
        functions: tuple[tuple[str, tuple[str]], ...] = (
            ("transfer(address to,uint256 amount)", ("amount",)),
            ("transferFrom(address from,address to,uint256 amount)", ("amount",)),
        )
        if not seconds:
            functions += (
                ("approve(address spender,uint256 amount)", ("amount",)),
                ("increaseAllowance(address spender,uint256 addedValue)", ("addedValue",)),
            )
        permissions = [Policy.call(address, text) for text, _ in functions]
        meters = []
        for permission, (text, path) in zip(permissions, functions, strict=True):
            offset, _, label = parse_signature(text).locate(path)
            meters.append(
                Meter(
                    target=address,
                    selector=permission.selector,
                    offset=offset,
                    name=f"{text.split('(')[0]}.{label}",
                )
            )
        unit = symbol or f"units of {address}"
        budget = _limit(
            kind=LimitKind.AMOUNT,
            amount=to_int(total, name="the allowance"),
            period=seconds,
            meters=tuple(meters),
            name=f"{symbol or 'token'} allowance",
            unit=unit,
            decimals=decimals,
        )
        first = permissions[0].model_copy(update={"limits": (budget,)})
        return (first, *permissions[1:])

    @staticmethod
    def typed_data(
        domain: Mapping[str, Any],
        types: Mapping[str, Any],
        primary_type: str,
        rules: Iterable[RuleSpec] = (),
        *,
        label: str | None = None,
    ) -> TypedDataPermission:
        """Allow the session to sign, as the account (ERC-1271), EIP-712 typed data of ``primary_type`` (defined
        in ``types``, the JSON form ``eth_signTypedData_v4`` takes) in ``domain`` (exactly these fields: name,
        version, chainId, verifyingContract, salt), with ``rules`` on its fields: ``arg("spender") == router``,
        ``arg("details", "amount") <= 100 * 10**6`` (member names from the primary struct down).

        Rules on ``string`` and ``bytes`` fields compare the hash of their contents: only ``==``, ``!=`` and
        ``one_of`` (equality of hashes is equality of contents). Their values are read as the message's are: a
        ``string``'s as its text, a ``bytes``' as bytes or 0x-hex (``arg("data") == "0x0102"`` binds two bytes).
        Arrays, their elements and whole structs take no rules (their word is a hash the module cannot order).
        ``label`` names the permission in messages."""
        return _typed_data_permission(domain, types, primary_type, rules, label)


def _target_and_limit(target: Any, value_limit: int | str) -> tuple[str, int]:
    address = to_address(target, name="target")
    if address == ZERO_ADDRESS:
        raise BadInputError(
            "the permission target is the zero address, which the module refuses: give a contract"
        )
    limit = to_int(value_limit, name="value_limit")
    if limit > UINT256_MAX:
        raise BadInputError(
            f"value_limit {limit} does not fit in uint256 (the module caps it at 2**96 - 1 anyway)"
        )
    return address, limit


def _permission(
    target: Any,
    function: AbiFunction,
    rules: Iterable[RuleSpec | Rule],
    value_limit: int | str,
    limits: CallLimits,
) -> Permission:
    for name in sorted(limits.keys() - CallLimits.__optional_keys__):
        raise UnknownOptionError(
            f"unexpected keyword argument {shown(name)}: a permission's limits are calls, rate and totals"
        )
    address, limit = _target_and_limit(target, value_limit)
    if function.selector == TRANSFER_SELECTOR:
        raise BadInputError(
            f"{function.signature} has the selector 0x00000000, which the module keeps for plain transfers (empty "
            "calldata only): a session cannot call it. For plain transfers use Policy.transfer(target, value_limit)"
        )
    if isinstance(rules, (RuleSpec, Rule)):
        rules = [rules]
    if not isinstance(rules, Iterable) or isinstance(rules, (str, bytes, bytearray, dict)):
        raise BadInputError(
            f"rules is a list of arg(...) comparisons (e.g. [arg('to') == user]), got {type(rules).__name__}"
        )
    resolved: list[Rule] = []
    for spec in rules:
        if isinstance(spec, RuleSpec):
            resolved.append(spec.resolve(function))
        elif isinstance(spec, Rule):
            dynamic = function.dynamic_at(spec.offset)
            if dynamic is not None:
                _refuse_dynamic(dynamic[1], dynamic[0], function.signature)
            _refuse_misread(spec, function)
            resolved.append(spec)
        else:
            raise BadInputError(
                f"rules must be arg(...) comparisons (e.g. arg('to') == user) or Rule objects, got {shown(spec)}"
            )
    permission = Permission(
        target=address,
        selector=function.selector,
        value_limit=limit,
        rules=tuple(resolved),
        function=function.signature,
        limits=_call_limits(
            f"{function.signature} on {address}",
            limits.get("calls"),
            limits.get("rate"),
            limits.get("totals", ()),
            function,
        ),
    )
    if permission.rule_words() > MAX_RULE_WORDS:
        raise BadInputError(
            f"the rules of {function.signature} need {permission.rule_words()} storage words; the module "
            f"allows {MAX_RULE_WORDS} per permission: use fewer ONE_OF values or fewer rules"
        )
    return permission


def _hashed_value(kind: str, value: Any, where: str) -> bytes:
    """The bytes EIP-712 hashes for a rule's value on a ``string`` or ``bytes`` field, read as the typed data's
    message value is read: a ``string`` as its UTF-8 text, ``bytes`` as bytes or 0x-hex (their JSON form), so that a
    rule ``== "0x0102"`` on a ``bytes`` field binds the two bytes 0x0102 a message spells that way, never the six
    characters of the text."""
    if kind == "string":
        if isinstance(value, str):
            refuse_lone_surrogates(value, where)
            return value.encode()
        return to_bytes(value, name=where)
    return to_bytes(value, name=where)


def _typed_data_permission(
    domain: Mapping[str, Any],
    types: Mapping[str, Any],
    primary_type: str,
    rules: Iterable[RuleSpec],
    label: str | None,
) -> TypedDataPermission:
    if not isinstance(domain, Mapping) or not isinstance(types, Mapping):
        raise BadInputError("Policy.typed_data takes the domain and the types as objects (dicts)")
    if not isinstance(primary_type, str):
        raise BadInputError(
            f"Policy.typed_data takes the primary type as the name of a struct in types (a string, such as "
            f"'PermitSingle'), got {type(primary_type).__name__} {shown(primary_type)}"
        )
    if not isinstance(rules, (RuleSpec, Iterable)) or isinstance(rules, (str, bytes, bytearray, Mapping)):
        raise BadInputError(
            f"typed-data rules are a list of arg(...) comparisons on member names (e.g. [arg('details', 'amount') "
            f"<= 10]), got {type(rules).__name__} {shown(rules)}"
        )
    for part, value in (("domain", domain), ("types", types), ("primary type", primary_type)):
        refuse_lone_surrogates(value, part)
    structs = _fields(types)
    if primary_type not in structs:
        raise BadInputError(
            f"primary type {shown(primary_type)} is not defined in types ({', '.join(sorted(structs)) or 'none'})"
        )
    specs = [rules] if isinstance(rules, RuleSpec) else list(rules)
    paths: list[tuple[str, ...]] = []
    for spec in specs:
        if not isinstance(spec, RuleSpec) or not all(isinstance(step, str) for step in spec.ref.path):
            raise BadInputError(
                f"typed-data rules are arg(...) comparisons on member names (arg('details', 'amount') <= 10), got "
                f"{shown(spec)}"
            )
        paths.append(tuple(str(step) for step in spec.ref.path))
    expand = {path[:depth] for path in paths for depth in range(1, len(path))}
    frames = plan_frames(primary_type, structs, expand)
    if len(frames) - 1 > MAX_NESTED:
        reached = ", ".join(".".join(frame.path) for frame in frames[1:])
        raise BadInputError(
            f"typed-data permission for {primary_type}: its rules reach into {len(frames) - 1} nested structs "
            f"({reached}), and the module expands at most {MAX_NESTED} per permission: put the rules on members "
            "of fewer nested structs"
        )
    by_path = {frame.path: frame for frame in frames}
    resolved = []
    for spec, path in zip(specs, paths, strict=True):
        frame = by_path[path[:-1]]
        members = structs[frame.type]
        names = [member.name for member in members]
        if path[-1] not in names:
            raise BadInputError(
                f"{frame.type} has no member {shown(path[-1])} (its members: {', '.join(names)})"
            )
        index = names.index(path[-1])
        kind = members[index].type
        where = f"field `{'.'.join(path)}` ({kind}) of {primary_type}"
        offset = 32 * (frame.start + index)
        if kind in HASHED_TYPES:
            if spec.op not in (Condition.EQUAL, Condition.NOT_EQUAL, Condition.ONE_OF):
                raise BadInputError(
                    f"{where}: the module sees only the hash of a {kind}, so only ==, != and one_of can bind it"
                )
            words = tuple(int.from_bytes(keccak(_hashed_value(kind, v, where)), "big") for v in spec.values)
            arg_type = 0
        elif kind in structs or "[" in kind:
            raise BadInputError(
                f"{where}: its word is a hash of {'a struct' if kind in structs else 'an array'}, which a rule cannot "
                "order or read into: put rules on the struct's members (arg(..., member)); arrays take no rules"
            )
        else:
            try:
                arg_type = arg_type_of(kind)
            except ValueError:
                raise BadInputError(f"{where}: {shown(kind)} is not an EIP-712 atomic type") from None
            abi_kind = _elementary(kind)
            words = tuple(_encode(value, abi_kind, where) for value in spec.values)
            if spec.op == Condition.IN_RANGE:
                low, high = (_as_signed(w) for w in words) if kind.startswith("int") else words
                if low > high:
                    raise BadInputError(
                        f"{where}: in_range({shown(spec.values[0])}, {shown(spec.values[1])}) has low above high: give the "
                        f"low end first, in_range({shown(spec.values[1])}, {shown(spec.values[0])})"
                    )
        if spec.op == Condition.ONE_OF:
            words = tuple(dict.fromkeys(words))
            # as a call rule's count: refused naming the field, not by the Rule model
            if not 1 <= len(words) <= MAX_RULE_WORDS:
                raise BadInputError(
                    f"{where}: one_of takes 1 to {MAX_RULE_WORDS} distinct values, got {len(words)}"
                )
        resolved.append(
            Rule(condition=int(spec.op), offset=offset, arg_type=arg_type, values=words, name=".".join(path))
        )
    fields = domain_fields(domain)
    salt = domain.get("salt")
    try:
        return TypedDataPermission(
            domain_fields=fields,
            name=domain.get("name", ""),
            version=domain.get("version", ""),
            chain_id=to_int(domain.get("chainId", 0), name="domain chainId"),
            verifying_contract=to_address(
                domain.get("verifyingContract", ZERO_ADDRESS), name="verifyingContract"
            ),
            salt=to_bytes(salt, name="domain salt", length=32) if salt is not None else bytes(32),
            contents_name=primary_type,
            contents_type=contents_type(primary_type, structs),
            nested=tuple(frame.parent_word for frame in frames[1:] if frame.parent_word is not None),
            rules=tuple(resolved),
            label=label,
        )
    except ValueError as error:
        raise BadInputError(f"typed-data permission for {primary_type}: {error}") from None
