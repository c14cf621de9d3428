"""Parsers of command-line text: durations, amounts, addresses, call arguments and policy rules."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import BadInputError, InvalidAddressError, shown
from ..hexutil import ZERO_ADDRESS, to_address, to_bytes
from ..limits import period_seconds
from ..owner import DEFAULT_VALID_FOR
from ..policy import AbiFunction, AbiType, RuleSpec, TotalSpec, _nesting, arg, parse_signature

_DURATION_PART = re.compile(r"([0-9]+)\s*(w|d|h|m|s)", re.I)
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNITS = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}
_AMOUNT = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-z]*)$", re.I)
_MAX_WORD = 2**256 - 1
_DIGITS = re.compile(r"[0-9]+")
"""Digits 0-9 only: ``str.isdigit`` also takes superscripts (which ``int`` refuses) and other scripts' digits."""


def parse_duration(text: str) -> int:
    """Seconds in ``"90"``, ``"90s"``, ``"15m"``, ``"1h"``, ``"1h30m"``, ``"2d"``, ``"1w"``; must be > 0."""
    value = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"[0-9]+", value):
        seconds = int(value)
    else:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != value:
            raise BadInputError(
                f"{text!r} is not a duration: give seconds or a number with a unit, e.g. 90s, 15m, 1h, 1h30m, 2d, 1w"
            )
        units = [u for _, u in parts]
        if units != sorted(set(units), key=lambda u: -_UNIT_SECONDS[u]):
            raise BadInputError(
                f"{text!r} is not a duration: give each unit once, largest first, e.g. 1d12h or 1h30m"
            )
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise BadInputError(f"the duration {text!r} must be longer than 0 seconds")
    return seconds


def format_duration(seconds: int) -> str:
    """``seconds`` in the form :func:`parse_duration` reads: ``1h``, ``1h30m``, ``90s``."""
    parts = []
    for unit, size in sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1]):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


NEVER = "never"
"""``--valid-for never``: a session that never expires, asked for explicitly."""

DEFAULT_VALID_FOR_TEXT = format_duration(DEFAULT_VALID_FOR)
"""The SDK's default session length (:data:`keyscope.owner.DEFAULT_VALID_FOR`) as a ``--valid-for`` value."""


def parse_validity(text: str) -> int | None:
    """A session's length: a duration (:func:`parse_duration`), or ``never`` (None) for a session that never
    expires."""
    if text.strip().lower() == NEVER:
        return None
    try:
        return parse_duration(text)
    except BadInputError as error:
        raise BadInputError(f"{error}; or '{NEVER}' for a session without end") from None


def _integer(text: str, what: str, *, signed: bool = False, units: bool = True, ether: bool = False) -> int:
    value = text.strip().replace("_", "")
    negative = value.startswith("-")
    if negative and not signed and value[1:].strip()[:1].isdigit():
        raise BadInputError(f"{what}: {text!r} must not be negative")
    if negative and signed:
        value = value[1:].strip()
    if value.lower().startswith("0x"):
        try:
            number = int(value, 16)
        except ValueError:
            raise BadInputError(f"{what}: {text!r} is not a number") from None
        if number > _MAX_WORD:
            raise BadInputError(f"{what}: {text!r} is too large: a 256-bit word holds at most 2**256 - 1")
        return -number if negative else number
    match = _AMOUNT.match(value)
    unit = match.group(2).lower() if match else ""
    if match is None or (unit and (not units or unit not in _UNITS)):
        hint = " (a number, optionally with wei, gwei or ether)" if units else " (decimal or 0x-hex)"
        raise BadInputError(f"{what}: {text!r} is not an integer{hint}")
    try:
        _, digits, exponent = Decimal(match.group(1)).as_tuple()  # exact: no context rounding
    except InvalidOperation:
        raise BadInputError(f"{what}: {text!r} is not a number") from None
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    scale = exponent + _UNITS.get(unit, 0)
    if scale < 0:
        whole, rest = divmod(mantissa, 10**-scale)
        if rest:
            # "--fund 0.1" meant in ether (``ether``: an amount of ETH, not a call's argument): no unit counts wei
            hint = (
                f": a number without a unit counts wei; for ether, write {match.group(1)}ether"
                if ether and not unit
                else ""
            )
            # wei where the text is an amount of ETH or names a unit; any other integer has no unit to speak of
            of_what = " of wei" if ether or unit else ""
            raise BadInputError(f"{what}: {text!r} is not a whole number{of_what}{hint}")
        number = whole
    elif mantissa and len(str(mantissa)) + scale > 78:  # past 2**256 whatever the digits
        number = _MAX_WORD + 1
    else:
        number = mantissa * 10**scale
    if number > _MAX_WORD:
        raise BadInputError(f"{what}: {text!r} is too large: a 256-bit word holds at most 2**256 - 1")
    return -number if negative else number


def parse_amount(text: str, what: str = "amount") -> int:
    """Wei in ``"1000"``, ``"0x3e8"``, ``"10gwei"``, ``"0.5ether"`` (``eth`` too)."""
    return _integer(text, what, ether=True)


def _named_address(text: str, names: Mapping[str, str], what: str) -> str:
    value = text.strip()
    if value in names:
        return names[value]
    try:
        return to_address(value)
    except InvalidAddressError as error:
        known = f", or one of the names {', '.join(sorted(names))}" if names else ""
        raise BadInputError(
            f"{what}: {error.shown_value} is not an address ({error.reason}): give 0x and 40 hex digits (all lowercase, "
            f"or with a correct EIP-55 checksum){known}"
        ) from None


def resolve_address(text: str, names: Mapping[str, str], what: str = "address") -> str:
    """An address given as hex, or by name (``nft``, ``account``... see the command's help)."""
    address = _named_address(text, names, what)
    if address == ZERO_ADDRESS:
        raise BadInputError(f"{what} is the zero address: give a contract address")
    return address


def _value(text: Any, kind: AbiType, names: Mapping[str, str], where: str) -> Any:
    """``text`` (a command-line string, or a JSON value inside an array/tuple) as the Python value for ``kind``."""
    if kind.kind == "array":
        items = _json_list(text, where, kind.name)
        assert kind.element is not None
        if kind.length is not None and len(items) != kind.length:
            raise BadInputError(f"{where}: {kind.name} takes {kind.length} items, got {len(items)}")
        return [_value(item, kind.element, names, f"{where}[{i}]") for i, item in enumerate(items)]
    if kind.kind == "tuple":
        items = _json_list(text, where, kind.name)
        if len(items) != len(kind.components):
            raise BadInputError(
                f"{where}: {kind.name} has {len(kind.components)} components, got {len(items)}"
            )
        return tuple(
            _value(item, param.type, names, f"{where}.{param.name or i}")
            for i, (item, param) in enumerate(zip(items, kind.components, strict=True))
        )
    name = kind.name
    if isinstance(text, bool) and name == "bool":
        return text
    if isinstance(text, int) and not isinstance(text, bool) and re.fullmatch(r"u?int\d+", name):
        return _in_range(text, name, where, text)
    if not isinstance(text, str):
        raise BadInputError(f"{where}: expected a {name} value, got {shown(text)}")
    if name == "address":
        return _named_address(text, names, where)
    if name == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BadInputError(f"{where}: {text!r} is not a bool: give true or false")
    if match := re.fullmatch(r"(u?)int(\d+)", name):
        return _in_range(_integer(text, where, signed=not match.group(1)), name, where, text)
    if name == "string":
        return text
    if name == "bytes" or name.startswith("bytes"):
        data = to_bytes(text.strip(), name=where)
        if name != "bytes" and len(data) != int(name[5:]):
            raise BadInputError(f"{where}: {name} takes exactly {name[5:]} bytes, got {len(data)}")
        return data
    raise BadInputError(f"{where}: values of type {name} are not supported on the command line")


def _in_range(number: int, name: str, where: str, text: Any) -> int:
    """``number`` when it fits the integer type ``name`` (``uint8`` ... ``int256``)."""
    found = re.fullmatch(r"u?int([0-9]*)", name)
    bits = int(found.group(1) or 256) if found else 256
    low, high = (0, 2**bits - 1) if name.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= number <= high:
        raise BadInputError(f"{where}: {text!r} is out of range for {name} ({low} to {high})")
    return number


# How deep a command-line argument's JSON may nest: far deeper than any array or tuple argument a contract takes,
# and short of the recursion of Python's JSON decoder.
_ARGUMENT_JSON_DEPTH = 256


def _json_list(text: Any, where: str, type_name: str) -> list[Any]:
    if isinstance(text, list):
        return text
    if isinstance(text, str) and _nesting(text) > _ARGUMENT_JSON_DEPTH:
        raise BadInputError(
            f"{where}: the {type_name} value nests lists more than {_ARGUMENT_JSON_DEPTH} deep, which no "
            f"argument of a contract does: give it as a JSON list, e.g. '[1, 2]'"
        )
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list):
        raise BadInputError(
            f"{where}: give the {type_name} value as a JSON list, e.g. '[1, 2]', got {shown(text)}"
        )
    return value


def parse_call_args(
    function: str | AbiFunction, args: Sequence[str], names: Mapping[str, str] | None = None
) -> list[Any]:
    """The Python arguments for ``function`` (a signature) from command-line strings: addresses (hex or a
    name), integers (decimal, 0x-hex, or with wei/gwei/ether), bools, 0x-hex bytes, strings, and JSON lists
    for arrays and tuples."""
    parsed = parse_signature(function) if isinstance(function, str) else function
    if len(args) != len(parsed.inputs):
        raise BadInputError(
            f"{parsed.signature} takes {len(parsed.inputs)} argument(s) ({parsed.describe_inputs()}), got "
            f"{len(args)}"
        )
    return [
        _value(text, param.type, names or {}, f"argument {param.name or i} ({param.type.name})")
        for i, (text, param) in enumerate(zip(args, parsed.inputs, strict=True))
    ]


_RULE = re.compile(
    r"^\s*(?P<path>[A-Za-z_$0-9][\w$]*(?:\.[\w$]+)*)\s*"
    r"(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)"
    r"|\s(?:in)\s+(?P<low>\S+?)\s*\.\.\s*(?P<high>\S+)"
    r"|\s(?:one\s+of|oneof)\s+(?P<values>.+?))\s*$",
    re.I,
)
_OPERATORS = {"==": "__eq__", "!=": "__ne__", "<=": "__le__", ">=": "__ge__", "<": "__lt__", ">": "__gt__"}


def parse_rule(text: str, function: str | AbiFunction, names: Mapping[str, str] | None = None) -> RuleSpec:
    """A rule from its text form, for ``function`` (which gives the argument's type):
    ``to==0x…``, ``amount<=1000``, ``id in 1..5``, ``token one of 0x…,0x…`` (also ``!=``, ``<``, ``>``,
    ``>=``). The argument is a name or a 0-based index, with ``.component`` steps into tuples and
    fixed-size arrays (``order.amount``)."""
    parsed = parse_signature(function) if isinstance(function, str) else function
    match = _RULE.match(text)
    if match is None:
        raise BadInputError(
            f"rule {text!r} is not understood: write ARG==VALUE (also !=, <, <=, >, >=), 'ARG in LOW..HIGH' or "
            "'ARG one of V1,V2,...', where ARG is an argument name or index"
        )
    path = tuple(int(step) if _DIGITS.fullmatch(step) else step for step in match.group("path").split("."))
    try:
        _, kind, label = parsed.locate(path)
    except BadInputError as error:
        raise BadInputError(f"rule {text!r}: {error}") from None
    where = f"rule {text!r} ({label}: {kind.name})"
    if kind.kind != "elementary":
        raise BadInputError(f"{where}: rules apply to single values, not to {kind.name}")
    ref = arg(*path)
    known = names or {}
    if match.group("op"):
        value = _value(match.group("value"), kind, known, where)
        spec: RuleSpec = getattr(ref, _OPERATORS[match.group("op")])(value)
        return spec
    if match.group("low") is not None:
        low = _value(match.group("low"), kind, known, where)
        high = _value(match.group("high"), kind, known, where)
        if (
            isinstance(low, int) and isinstance(high, int) and low > high
        ):  # as written, not as the SDK calls it
            raise BadInputError(
                f"{where}: the range's low end {match.group('low').strip()} is above its high end "
                f"{match.group('high').strip()}: write the low end first, "
                f"'{match.group('path')} in {match.group('high').strip()}..{match.group('low').strip()}'"
            )
        return ref.in_range(low, high)
    values = [item for item in (part.strip() for part in match.group("values").split(",")) if item]
    if not values:
        raise BadInputError(f"{where}: 'one of' needs values separated by commas")
    return ref.one_of(*[_value(item, kind, known, where) for item in values])


def _split_per(text: str, what: str) -> tuple[str, int | None]:
    """``"5/day"`` -> ``("5", 86400)``; ``"5"`` -> ``("5", None)`` (over the session's life)."""
    head, slash, per = text.partition("/")
    if not slash:
        return head.strip(), None
    try:
        seconds = period_seconds(per)
    except BadInputError as error:
        raise BadInputError(f"{what}: {error} (in {text!r})") from None
    return head.strip(), seconds


def parse_count(text: str, what: str) -> tuple[int, int | None]:
    """A count with an optional period: ``"10"`` (over the session's life) or ``"10/hour"``."""
    head, per = _split_per(text, what)
    if not _DIGITS.fullmatch(head) or int(head) <= 0:
        raise BadInputError(f"{what}: {text!r} is not a positive whole number (write 10, or 10/hour)")
    return int(head), per


def parse_budget(text: str, what: str) -> tuple[int, int | None]:
    """An amount in wei with an optional period: ``"0.1ether"`` or ``"0.1ether/day"``."""
    head, per = _split_per(text, what)
    amount = parse_amount(head, what)
    if amount <= 0:
        raise BadInputError(f"{what}: {text!r} must be more than 0")
    return amount, per


def parse_total(text: str, function: AbiFunction, what: str = "--total") -> TotalSpec:
    """A cumulative limit on an argument: ``"amount<=5000000"`` or ``"amount<=5000000/day"``."""
    name, sep, rest = text.partition("<=")
    if not sep:
        raise BadInputError(
            f"{what}: {text!r} needs the form ARGUMENT<=AMOUNT[/PERIOD], e.g. amount<=5000000/day"
        )
    head, per = _split_per(rest, what)
    path = name.strip()
    if path not in {p.name for p in function.inputs if p.name}:
        names = ", ".join(p.name for p in function.inputs if p.name) or "none: name them in the signature"
        raise BadInputError(f"{what}: {function.signature} has no argument {path!r} (its arguments: {names})")
    return arg(path).total(_integer(head, what), per=per)
