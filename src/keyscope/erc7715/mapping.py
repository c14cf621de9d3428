"""ERC-7715 signer, permission and policy types, mapped onto keyscope's sessions through tables of handlers.

A ``wallet_grantPermissions`` call becomes ONE keyscope session: every request in it must name the same chain,
account, signer and expiry. Each request's permission becomes keyscope permissions (an ERC-20 allowance: four of
them and their shared budget) or a session limit (a native allowance); its policies set the session's gas cap,
paymasters, start and gas budget, and limit the calls of the request's own permissions. A type keyscope cannot grant exactly is
refused with :class:`UnsupportedTypeError`, which names it and says why: a wallet must never grant less (or
more) than the dapp asked while saying yes. Unknown fields inside a type's ``data`` are refused for the same
reason: a constraint the dapp expects must not be dropped silently.

To map a new type, add a handler to :data:`PERMISSION_TYPES`, :data:`POLICY_TYPES` or :data:`SIGNER_TYPES`
(and the consent page's words for it, :mod:`keyscope.consent.describe`). See docs/erc7715.md for the types and
their JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import LAST_READABLE_TIME, utc_text
from ..errors import BadInputError, InvalidAbiError, InvalidFieldsError, shown
from ..hexutil import to_address, to_bytes
from ..policy import (
    TRANSFER_SELECTOR,
    AbiFunction,
    AbiParam,
    AbiType,
    Limits,
    Policy,
    RuleSpec,
    arg,
    parse_signature,
)
from ..session import (
    MIN_PERIOD,
    SELF,
    UINT256_MAX,
    ArgType,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    arg_type_of,
)
from .didkey import address_of_did_key
from .models import PermissionRequest, TypedEntry, read_model

__all__ = [
    "CALL_LIMIT_POLICY",
    "ERC20_TRANSFER",
    "GAS_COST_POLICY",
    "GAS_LIMIT_POLICY",
    "NATIVE_LIMIT",
    "NATIVE_TRANSFER",
    "PAYMASTERS_POLICY",
    "PERMISSION_TYPES",
    "POLICY_TYPES",
    "RATE_LIMIT_POLICY",
    "REFUSED_TYPES",
    "SIGNER_TYPES",
    "VALID_AFTER_POLICY",
    "SessionPlan",
    "UnsupportedTypeError",
    "plan_from_requests",
    "request_policies",
    "requests_for_session",
]

CONTRACT_CALL = "contract-call"
GAS_COST_POLICY = "gas-cost-per-operation"
PAYMASTERS_POLICY = "uncapped-paymasters"
VALID_AFTER_POLICY = "valid-after"
NATIVE_TRANSFER = "native-token-transfer"
NATIVE_LIMIT = "native-token-limit"
ERC20_TRANSFER = "erc20-token-transfer"
GAS_LIMIT_POLICY = "gas-limit"
CALL_LIMIT_POLICY = "call-limit"
RATE_LIMIT_POLICY = "rate-limit"


class UnsupportedTypeError(BadInputError):
    """An ERC-7715 signer, permission or policy type keyscope cannot grant exactly. ``category`` is ``"signer"``,
    ``"permission"`` or ``"policy"``, ``type_name`` the type asked, ``supported`` the types keyscope grants."""

    def __init__(self, category: str, type_name: str, reason: str, supported: Iterable[str]) -> None:
        self.category = category
        self.type_name = type_name
        self.supported = tuple(supported)
        super().__init__(
            f"keyscope cannot grant the ERC-7715 {category} type {type_name!r}: {reason}. The {category} types "
            f"keyscope grants: {', '.join(self.supported)}"
        )


# --------------------------------------------------------------------------------------------------
# values: JSON in, JSON out
# --------------------------------------------------------------------------------------------------

_OPS: dict[str, Condition] = {
    "==": Condition.EQUAL,
    "!=": Condition.NOT_EQUAL,
    "<": Condition.LESS_THAN,
    "<=": Condition.LESS_THAN_OR_EQUAL,
    ">": Condition.GREATER_THAN,
    ">=": Condition.GREATER_THAN_OR_EQUAL,
    "in": Condition.IN_RANGE,
    "one of": Condition.ONE_OF,
}
_OP_TEXT = {condition: text for text, condition in _OPS.items()}
_SPEC_OF = {
    Condition.EQUAL: "__eq__",
    Condition.NOT_EQUAL: "__ne__",
    Condition.LESS_THAN: "__lt__",
    Condition.LESS_THAN_OR_EQUAL: "__le__",
    Condition.GREATER_THAN: "__gt__",
    Condition.GREATER_THAN_OR_EQUAL: "__ge__",
}
_INTEGER = re.compile(r"^(-?)(0[xX][0-9a-fA-F]+|[0-9]+)$")
_INDEX = re.compile(r"[0-9]+")
"""An index in an argument path (``legs.1.tag``): ASCII digits, as the command line's rules read them."""


def _integer(value: Any, where: str) -> int:
    """An integer given as a JSON number, a decimal string or a 0x-hex string (a leading ``-`` allowed)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (match := _INTEGER.match(value.strip())):
        digits = match.group(2)
        # decimal with leading zeros is decimal (int(..., 0) refuses it); 0x and 0X are hex
        number = int(digits[2:], 16) if digits[:2] in ("0x", "0X") else int(digits, 10)
        return -number if match.group(1) else number
    raise BadInputError(f"{where}: {shown(value)} is not an integer (a number, a decimal string or 0x-hex)")


def _amount(value: Any, where: str) -> int:
    number = _integer(value, where)
    if not 0 <= number <= UINT256_MAX:
        raise BadInputError(f"{where}: {number} is not a uint256 amount")
    return number


def _python_value(value: Any, kind: str, where: str) -> Any:
    """A JSON rule value as the Python value :mod:`keyscope.policy` encodes for the ABI type ``kind``."""
    if kind == "address":
        if not isinstance(value, str):
            raise BadInputError(f"{where}: expected an address string, got {shown(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadInputError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if kind.startswith("bytes") or kind == "function":
        if not isinstance(value, str):
            raise BadInputError(f"{where}: expected 0x-hex bytes, got {shown(value)}")
        return value
    return _integer(value, where)


def _json_value(word: int, code: int) -> Any:
    """A rule's reference word as JSON for its argument type ``code``: an address, a bool, 0x-hex for unsigned
    integers, a decimal string for signed ones, 0x-hex of N bytes for bytesN."""
    kind, padding = code >> 5, code & 0x1F
    if code == ArgType.ADDRESS:
        return to_address(word.to_bytes(32, "big")[12:])
    if code == ArgType.BOOL:
        return bool(word)
    if kind == 1:
        return str(word - 2**256 if word >> 255 else word)
    if kind == 2:
        return "0x" + word.to_bytes(32, "big")[: 32 - padding].hex()
    return hex(word)


def _type_name(code: int) -> str:
    return "address" if code == ArgType.ADDRESS else ArgType.name(code)


def _values_of(entry: Mapping[str, Any], condition: Condition, where: str) -> list[Any]:
    if condition in (Condition.IN_RANGE, Condition.ONE_OF):
        if "value" in entry or not isinstance(entry.get("values"), list):
            raise BadInputError(f"{where}: '{_OP_TEXT[condition]}' takes a list 'values'")
        values: list[Any] = entry["values"]
        if condition == Condition.IN_RANGE and len(values) != 2:
            raise BadInputError(f"{where}: 'in' takes 'values': [low, high] (both included)")
        return values
    if "values" in entry or "value" not in entry:
        raise BadInputError(f"{where}: '{_OP_TEXT[condition]}' takes one 'value'")
    return [entry["value"]]


def _spec(ref: Any, condition: Condition, values: list[Any]) -> RuleSpec:
    if condition == Condition.IN_RANGE:
        spec: RuleSpec = ref.in_range(values[0], values[1])
        return spec
    if condition == Condition.ONE_OF:
        spec = ref.one_of(*values)
        return spec
    spec = getattr(ref, _SPEC_OF[condition])(values[0])
    return spec


# --------------------------------------------------------------------------------------------------
# contract-call: keyscope's own permission type
# --------------------------------------------------------------------------------------------------

_RULE_KEYS = {"arg", "offset", "type", "name", "op", "value", "values"}
_CALL_KEYS = {"address", "function", "selector", "valueLimit", "rules"}


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadInputError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(allowed))}); "
            "keyscope refuses rather than grant without a constraint the request may expect"
        )


def _arg_path(value: Any, where: str) -> tuple[str | int, ...]:
    if isinstance(value, bool):
        raise BadInputError(f"{where}: 'arg' is an argument name, index or path, got {shown(value)}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str) and value:
        # ASCII digits only: str.isdigit takes "²" (which int() refuses) and the Arabic-Indic one (which it reads as 1)
        return tuple(int(step) if _INDEX.fullmatch(step) else step for step in value.split("."))
    if isinstance(value, list) and value and all(isinstance(s, (str, int)) for s in value):
        return tuple(value)
    raise BadInputError(f"{where}: 'arg' is an argument name, index or dotted path, got {shown(value)}")


def _read_rule(entry: Any, function: AbiFunction | None, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise BadInputError(f"{where}: a rule is an object {{arg, op, value}}, got {shown(entry)}")
    _check_keys(entry, _RULE_KEYS, where)
    op_text = entry.get("op")
    condition = _OPS.get(op_text) if isinstance(op_text, str) else None
    if condition is None:
        raise BadInputError(
            f"{where}: 'op' must be one of {', '.join(map(repr, _OPS))}, got {shown(op_text)}"
        )
    values = _values_of(entry, condition, where)
    if "arg" in entry:
        if function is None:
            raise BadInputError(f"{where}: a rule by 'arg' needs the permission's 'function' signature")
        if {"offset", "type", "name"} & set(entry):
            raise BadInputError(f"{where}: give 'arg', or 'offset' and 'type', not both")
        path = _arg_path(entry["arg"], where)
        try:
            _, kind, _ = function.locate(path)
        except BadInputError as error:
            raise BadInputError(f"{where}: {error}") from None
        converted = [_python_value(v, kind.name, where) for v in values]
        try:
            return _spec(arg(*path), condition, converted).resolve(function)
        except (
            BadInputError
        ) as error:  # a value its type cannot hold: said with the rule's place in the requests
            raise BadInputError(f"{where}: {error}") from None
    offset = entry.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or not isinstance(entry.get("type"), str):
        raise BadInputError(f"{where}: a rule names its argument by 'arg', or by 'offset' (bytes) and 'type'")
    if function is not None and function.word_at(offset) is None and function.dynamic_at(offset) is None:
        # past the arguments (a word the key appends, which the function never reads) or across two words: the
        # module holds the key to bytes no argument is, so the rule bounds nothing the function reads
        raise BadInputError(
            f"{where}: byte {offset} of the arguments of {function.signature} is where no static argument's word "
            "starts (past the arguments, where the key may append a word the function never reads, or inside a "
            "word): the module would compare bytes that are no argument as the function reads them, so the rule "
            "would bound nothing; give the rule by 'arg' (the argument's name, index or path)"
        )
    kind_name = entry["type"]
    try:
        code = arg_type_of(kind_name)
    except ValueError as error:
        raise BadInputError(f"{where}: {error}") from None
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        raise BadInputError(f"{where}: 'name' is a label string, got {shown(name)}")
    alone = AbiFunction.of("rule", [AbiParam(name or "", AbiType("elementary", _canonical(kind_name)))])
    converted = [_python_value(v, alone.inputs[0].type.name, where) for v in values]
    try:
        rule = _spec(arg(0), condition, converted).resolve(alone)
    except (
        BadInputError
    ) as error:  # said of the word the rule names, not of the stand-in function it is read by
        said = str(error).replace(f"({alone.inputs[0].type.name}) of {alone.signature}", "", 1)
        said = re.sub(r"^argument `[^`]*` ", f"the {alone.inputs[0].type.name} word at byte {offset}", said)
        raise BadInputError(f"{where}: {said}") from None
    try:
        return Rule(
            condition=rule.condition, offset=entry["offset"], arg_type=code, values=rule.values, name=name
        )
    except InvalidFieldsError as error:
        raise BadInputError(f"{where}: {error.problems[0]['msg']}") from None


def _canonical(kind: str) -> str:
    code = arg_type_of(kind)
    return _type_name(code)


def _read_contract_call(data: Mapping[str, Any], where: str) -> list[Permission]:
    _check_keys(data, _CALL_KEYS, where)
    if "address" not in data:
        raise BadInputError(f"{where}: 'address' (the contract) is required")
    target = to_address(data["address"], name=f"{where}.address")
    value_limit = _amount(data.get("valueLimit", 0), f"{where}.valueLimit")
    rules_in = data.get("rules", [])
    if not isinstance(rules_in, list):
        raise BadInputError(f"{where}: 'rules' is a list of rule objects")
    function: AbiFunction | None = None
    if "function" in data:
        if "selector" in data:
            raise BadInputError(f"{where}: give 'function' (a signature) or 'selector', not both")
        try:
            function = parse_signature(data["function"])
        except InvalidAbiError as error:
            raise BadInputError(f"{where}.function: {error}") from None
        selector = function.selector
    elif "selector" in data:
        selector = to_bytes(data["selector"], name=f"{where}.selector", length=4)
    else:
        raise BadInputError(f"{where}: name the function by 'function' (a signature) or 'selector'")
    rules = [_read_rule(entry, function, f"{where}.rules[{i}]") for i, entry in enumerate(rules_in)]
    try:
        if selector == TRANSFER_SELECTOR and function is None:
            if rules:
                raise BadInputError(
                    f"{where}: plain transfers (selector 0x00000000) carry no arguments to rule"
                )
            return [Policy.transfer(target, value_limit)]
        if function is not None:
            return [Policy.call(target, data["function"], rules=rules, value_limit=value_limit)]
        return [
            Permission(
                target=to_address(target), selector=selector, value_limit=value_limit, rules=tuple(rules)
            )
        ]
    except InvalidFieldsError as error:
        raise BadInputError(f"{where}: {error.problems[0]['msg']}") from None


def _named_signature(permission: Permission) -> AbiFunction | None:
    """The permission's function with the argument names its rules carry (top-level arguments only)."""
    if permission.function is None:
        return None
    try:
        function = parse_signature(permission.function)
    except InvalidAbiError:
        return None
    if function.selector != permission.selector:
        return None
    names = {rule.offset: rule.name for rule in permission.rules if rule.name}
    params: list[AbiParam] = []
    offset = 0
    for param in function.inputs:
        name = names.get(offset, "") if param.type.kind == "elementary" and not param.type.dynamic else ""
        if not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) or any(p.name == name for p in params):
            name = ""
        params.append(AbiParam(name, param.type))
        offset += param.type.head_size
    return AbiFunction.of(function.name, params)


def _write_rule(rule: Rule, function: AbiFunction | None) -> dict[str, Any]:
    condition = Condition(rule.condition)
    entry: dict[str, Any] = {}
    located = function.word_at(rule.offset) if function is not None else None
    if (
        function is not None
        and located is not None
        and arg_type_of(located[1].name) == rule.arg_type
        and any(p.name == located[0] for p in function.inputs)
        and rule.name == located[0]
    ):
        entry["arg"] = located[0]
    else:
        entry.update(offset=rule.offset, type=_type_name(rule.arg_type))
        if rule.name is not None:
            entry["name"] = rule.name
    entry["op"] = _OP_TEXT[condition]
    values = [_json_value(v, rule.arg_type) for v in rule.values]
    if condition in (Condition.IN_RANGE, Condition.ONE_OF):
        entry["values"] = values
    else:
        entry["value"] = values[0]
    return entry


def _write_contract_call(permission: Permission) -> dict[str, Any]:
    data: dict[str, Any] = {"address": permission.target}
    function = _named_signature(permission)
    if function is not None:
        data["function"] = (
            f"{function.name}({','.join(f'{p.type.name} {p.name}'.strip() for p in function.inputs)})"
        )
    else:
        data["selector"] = "0x" + permission.selector.hex()
    if permission.value_limit:
        data["valueLimit"] = hex(permission.value_limit)
    if permission.rules:
        data["rules"] = [_write_rule(rule, function) for rule in permission.rules]
    return data


# --------------------------------------------------------------------------------------------------
# the tables
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Granted:
    """What one request's permission asks: keyscope permissions (limits attached to them, e.g. an ERC-20 allowance,
    count their calls) and session-wide limits (a native allowance, which meters every permission that can carry
    value)."""

    permissions: tuple[Permission, ...] = ()
    limits: tuple[Limit, ...] = ()


@dataclass(frozen=True)
class PermissionType:
    """An ERC-7715 permission type keyscope grants: ``read`` makes what a request's ``data`` asks (raising
    :class:`~keyscope.errors.BadInputError` for malformed data), ``write`` the ``data`` of one keyscope
    permission (None: not of this type; types written from a session's limits have no ``write``)."""

    name: str
    read: Callable[[Mapping[str, Any], str], Granted]
    write: Callable[[Permission], dict[str, Any] | None] | None = None


@dataclass
class _Draft:
    """A session being read from requests: the session-level settings policies set, and the limits the current
    request's policies put on its permissions (``span``: their indices)."""

    max_gas_cost: int | None = None
    paymasters: tuple[str, ...] | None = None
    valid_after: int | None = None
    gas_limit: int | None = None
    span: range = range(0)
    permission_type: str = ""
    label: str = ""
    limits: list[Limit] = field(default_factory=list)

    def set(self, name: str, value: Any, where: str) -> None:
        current = getattr(self, name)
        if current is not None and current != value:
            raise BadInputError(
                f"{where}: asks {name} {shown(value)}, another request asked {shown(current)}; the requests of one call "
                "make one session: ask the same everywhere"
            )
        setattr(self, name, value)

    def count_calls(self, count: int, period: int, where: str) -> None:
        """A CALLS limit on the current request's permissions, over the session's life or per ``period``; a count
        of 0 is refused (a limit that allows no call: the permission could never be used)."""
        if not self.span:
            raise BadInputError(
                f"{where}: it counts the calls of its request's permission, and a {self.permission_type!r} "
                "permission makes no calls of its own; put the policy on the requests whose calls it counts"
            )
        if count == 0:
            raise BadInputError(
                f"{where}.count is 0: it allows no call of its request's permission, which could never be used; "
                "ask a positive count, or leave the policy out for no limit"
            )
        self.limits.append(
            Limit(
                kind=LimitKind.CALLS,
                amount=count,
                period=period,
                meters=tuple(Meter(permission=i) for i in self.span),
                name=f"{'rate' if period else 'calls'} of {self.label}",
            )
        )


@dataclass(frozen=True)
class PolicyType:
    """An ERC-7715 policy type keyscope grants: ``apply`` sets what ``data`` asks on the session being read,
    ``write`` the ``data`` of each such policy of a session's request whose permissions are ``span`` (session-wide
    types ignore ``span``). ``per_request`` types limit their own request's permissions; the others set the whole
    session and are written in every request."""

    name: str
    apply: Callable[[Mapping[str, Any], _Draft, str], None]
    write: Callable[[Session, range], list[dict[str, Any]]]
    per_request: bool = False


@dataclass(frozen=True)
class SignerType:
    """An ERC-7715 signer type keyscope grants to: ``read`` gives the session key's address of ``data``."""

    name: str
    read: Callable[[Mapping[str, Any], str], str]


def _gas_cost(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"limit"}, where)
    limit = _amount(data.get("limit"), f"{where}.limit")
    if limit == 0:
        raise BadInputError(
            f"{where}: a cap of 0 wei is refused: the module reads a maxGasCost of 0 as no cap at all, so the "
            "session would have none; ask a cap in wei (1 gwei or more), or leave the policy out for the wallet's "
            "default cap"
        )
    draft.set("max_gas_cost", limit, where)


def _paymasters(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"addresses"}, where)
    addresses = data.get("addresses")
    if not isinstance(addresses, list):
        raise BadInputError(f"{where}: 'addresses' is a list of paymaster addresses")
    draft.set("paymasters", tuple(to_address(a, name=f"{where} paymaster") for a in addresses), where)


def _valid_after(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"timestamp"}, where)
    start = _in_seconds(
        _amount(data.get("timestamp"), f"{where}.timestamp"),
        f"{where}: the timestamp",
        "as seconds the session starts in the year {year}: it would never be valid",
        "The timestamp is a unix time in seconds: pass Math.floor(Date.now() / 1000) plus the delay in seconds (or "
        "leave the policy out for a session valid from the start). Nothing was granted",
    )
    draft.set("valid_after", start, where)


def _gas_limit(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"limit"}, where)
    if "limit" not in data:
        raise BadInputError(f"{where}: 'limit' (wei of gas cost over the session's life, hex) is required")
    draft.set("gas_limit", _amount(data["limit"], f"{where}.limit"), where)


def _call_limit(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"count"}, where)
    if "count" not in data:
        raise BadInputError(f"{where}: 'count' (the most calls over the session's life) is required")
    draft.count_calls(_amount(data["count"], f"{where}.count"), 0, where)


def _rate_limit(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"count", "interval"}, where)
    if "count" not in data or "interval" not in data:
        raise BadInputError(f"{where}: 'count' (calls) and 'interval' (seconds) are required")
    draft.count_calls(
        _amount(data["count"], f"{where}.count"), _seconds(data["interval"], f"{where}.interval"), where
    )


def _seconds(value: Any, where: str) -> int:
    """A period length the module keeps: whole seconds, at least MIN_PERIOD, below 2**32."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_PERIOD <= value < 2**32:
        raise BadInputError(
            f"{where}: {shown(value)} is not a period keyscope's module keeps: give whole seconds from {MIN_PERIOD} "
            "(an operation counted in a period is valid in that period only) below 2**32; keyscope refuses "
            "rather than count over another period than asked"
        )
    return value


# --------------------------------------------------------------------------------------------------
# allowances: native value and ERC-20 tokens
# --------------------------------------------------------------------------------------------------

PERIOD_FIELD = "periodDuration"


def _period(data: Mapping[str, Any], where: str) -> int:
    """The allowance's period (0: the session's life). A ``startTime`` is refused by name."""
    if "startTime" in data:
        raise BadInputError(
            f"{where}: 'startTime' is refused: keyscope's periods start when the session does, and one permission "
            "cannot start later than the others of its session; drop it, or ask the whole session to start then "
            f"with a {VALID_AFTER_POLICY!r} policy"
        )
    if PERIOD_FIELD not in data:
        return 0
    return _seconds(data[PERIOD_FIELD], f"{where}.{PERIOD_FIELD}")


def _native_reader(amount_field: str) -> Callable[[Mapping[str, Any], str], Granted]:
    def read(data: Mapping[str, Any], where: str) -> Granted:
        period = _period(data, where)
        _check_keys(data, {amount_field, PERIOD_FIELD}, where)
        if amount_field not in data:
            raise BadInputError(f"{where}: {amount_field!r} (the most wei, hex) is required")
        amount = _amount(data[amount_field], f"{where}.{amount_field}")
        return Granted(limits=(Limits.native(amount, per=period or None),))

    return read


def _read_erc20(data: Mapping[str, Any], where: str) -> Granted:
    period = _period(data, where)
    _check_keys(data, {"address", "allowance", PERIOD_FIELD, "ticker"}, where)
    if "address" not in data or "allowance" not in data:
        raise BadInputError(f"{where}: 'address' (the token) and 'allowance' (base units, hex) are required")
    ticker = data.get("ticker")
    if ticker is not None and (not isinstance(ticker, str) or not ticker.strip()):
        raise BadInputError(f"{where}: 'ticker' is the token's symbol, a string; got {shown(ticker)}")
    token = to_address(data["address"], name=f"{where}.address")
    allowance = _amount(data["allowance"], f"{where}.allowance")
    try:
        return Granted(permissions=Policy.erc20_allowance(token, allowance, period or None, symbol=ticker))
    except InvalidFieldsError as error:
        raise BadInputError(f"{where}: {error.problems[0]['msg']}") from None


def _native_data(limit: Limit) -> dict[str, Any]:
    data: dict[str, Any] = {"allowance": hex(limit.amount)}
    if limit.period:
        data[PERIOD_FIELD] = limit.period
    return data


def _erc20_unit(session: Session, limit: Limit) -> tuple[range, dict[str, Any]] | None:
    """The permissions and ``erc20-token-transfer`` data of ``limit``, if it is an allowance as
    :meth:`Policy.erc20_allowance <keyscope.policy.Policy.erc20_allowance>` makes it (None otherwise)."""
    if limit.op != LimitKind.AMOUNT or not limit.meters:
        return None
    first = limit.meters[0].permission
    token = session.permissions[first].target
    reference = Policy.erc20_allowance(token, 0, limit.period or None)
    meters = reference[0].limits[0].meters
    span = range(first, first + len(reference))
    if span.stop > len(session.permissions) or [m.permission for m in limit.meters] != list(span):
        return None
    for index, meter, expected, expected_meter in zip(span, limit.meters, reference, meters, strict=True):
        permission = session.permissions[index]
        if (
            (permission.target, permission.selector) != (expected.target, expected.selector)
            or permission.rules
            or permission.value_limit
            or meter.offset != expected_meter.offset
        ):
            return None
    data: dict[str, Any] = {"address": token, "allowance": hex(limit.amount)}
    if limit.period:
        data[PERIOD_FIELD] = limit.period
    if limit.unit and limit.unit != f"units of {token}":
        data["ticker"] = limit.unit
    return span, data


def _calls_limits(session: Session, span: range, period: bool) -> list[Limit]:
    return [
        limit
        for limit in session.limits
        if span
        and limit.op == LimitKind.CALLS
        and bool(limit.period) == period
        and [m.permission for m in limit.meters] == list(span)
    ]


def _key_signer(data: Mapping[str, Any], where: str) -> str:
    _check_keys(data, {"id"}, where)
    ident = data.get("id")
    if isinstance(ident, str) and ident.startswith("0x"):
        return to_address(ident, name=f"{where}.id")
    if not isinstance(ident, str):
        raise BadInputError(f"{where}: 'id' is the key's did:key identifier")
    return address_of_did_key(ident)


def _account_signer(data: Mapping[str, Any], where: str) -> str:
    _check_keys(data, {"address", "id"}, where)
    named = {
        name: to_address(data[name], name=f"{where}.{name}") for name in ("address", "id") if name in data
    }
    if not named:
        raise BadInputError(f"{where}: 'address' is the session key's address")
    if len(set(named.values())) > 1:
        raise BadInputError(
            f"{where}: 'address' {named['address']} and 'id' {named['id']} name two keys; the session has one: "
            "give the session key's address once"
        )
    return named.get("address", named.get("id", ""))


PERMISSION_TYPES: dict[str, PermissionType] = {
    CONTRACT_CALL: PermissionType(
        CONTRACT_CALL,
        lambda d, w: Granted(permissions=tuple(_read_contract_call(d, w))),
        _write_contract_call,
    ),
    ERC20_TRANSFER: PermissionType(ERC20_TRANSFER, _read_erc20),
    NATIVE_TRANSFER: PermissionType(NATIVE_TRANSFER, _native_reader("allowance")),
    NATIVE_LIMIT: PermissionType(NATIVE_LIMIT, _native_reader("amount")),
}
"""The permission types keyscope grants, by name. ``erc20-token-transfer`` is an ERC-20 allowance (transfer,
transferFrom, approve and increaseAllowance of the token, their amounts counted together); ``native-token-transfer``
(and the older ``native-token-limit``) a native allowance over the value of every call of the session that can
carry value; which calls may carry value, and to whom, says ``contract-call``."""

POLICY_TYPES: dict[str, PolicyType] = {
    GAS_COST_POLICY: PolicyType(
        GAS_COST_POLICY, _gas_cost, lambda s, _: [{"limit": hex(s.max_gas_cost)}] if s.max_gas_cost else []
    ),
    PAYMASTERS_POLICY: PolicyType(
        PAYMASTERS_POLICY,
        _paymasters,
        lambda s, _: [{"addresses": list(s.paymasters)}] if s.paymasters else [],
    ),
    VALID_AFTER_POLICY: PolicyType(
        VALID_AFTER_POLICY, _valid_after, lambda s, _: [{"timestamp": s.valid_after}] if s.valid_after else []
    ),
    GAS_LIMIT_POLICY: PolicyType(
        GAS_LIMIT_POLICY,
        _gas_limit,
        lambda s, _: [{"limit": hex(x.amount)} for x in s.limits if x.op == LimitKind.GAS and not x.period],
    ),
    CALL_LIMIT_POLICY: PolicyType(
        CALL_LIMIT_POLICY,
        _call_limit,
        lambda s, span: [{"count": x.amount} for x in _calls_limits(s, span, period=False)],
        per_request=True,
    ),
    RATE_LIMIT_POLICY: PolicyType(
        RATE_LIMIT_POLICY,
        _rate_limit,
        lambda s, span: [
            {"count": x.amount, "interval": x.period} for x in _calls_limits(s, span, period=True)
        ],
        per_request=True,
    ),
}
"""The policy types keyscope grants, by name. The gas cap, paymasters, start and gas budget (``gas-limit``: the
most gas cost over the session's life, a GAS limit) are per session: requests that disagree on one are refused.
``call-limit`` and ``rate-limit`` count the calls of their own request's permissions (a CALLS limit over the
session's life, or per ``interval`` seconds)."""

SIGNER_TYPES: dict[str, SignerType] = {
    "key": SignerType("key", _key_signer),
    "account": SignerType("account", _account_signer),
}
"""The signer types keyscope grants to, by name: the session key, as a ``did:key`` (or its address), or as the
address of the dapp's key (``account``; it must be an ECDSA key: the module recovers the session's
signature)."""

_PERIODIC = (
    "keyscope counts allowances over the session's life or per fixed period from the session's start; ask "
    f"{NATIVE_TRANSFER!r} or {ERC20_TRANSFER!r} with {PERIOD_FIELD!r}"
)
REFUSED_TYPES: dict[tuple[str, str], str] = {
    ("permission", "erc20-limit"): f"an older name; ask {ERC20_TRANSFER!r} with 'address' and 'allowance'",
    ("permission", "gas-limit"): f"a gas budget is the policy {GAS_LIMIT_POLICY!r}",
    ("permission", "rate-limit"): f"a rate is the policy {RATE_LIMIT_POLICY!r} on the permission it counts",
    ("permission", "native-token-stream"): "a stream accrues by the second, which keyscope does not count; "
    + _PERIODIC,
    ("permission", "erc20-token-stream"): "a stream accrues by the second, which keyscope does not count; "
    + _PERIODIC,
    ("permission", "erc721-token-transfer"): "keyscope has no mapping for it yet; use 'contract-call'",
    ("permission", "erc1155-token-transfer"): "keyscope has no mapping for it yet; use 'contract-call'",
    ("policy", "spent-limit"): f"ask {NATIVE_TRANSFER!r} with an 'allowance'",
    ("policy", "token-allowance"): f"ask {ERC20_TRANSFER!r} with an 'allowance'",
    (
        "signer",
        "wallet",
    ): "keyscope's sessions are held by the dapp, not by the wallet: give a 'key' or 'account' "
    "signer (the session key)",
    ("signer", "keys"): "a session has one key (ECDSA); a key set (multisig) cannot sign its operations",
}
"""Types keyscope knows and refuses, with the reason the refusal gives."""


def _refuse(category: str, type_name: str, supported: Iterable[str]) -> UnsupportedTypeError:
    reason = REFUSED_TYPES.get((category, type_name), "keyscope does not know this type")
    return UnsupportedTypeError(category, type_name, reason, supported)


# --------------------------------------------------------------------------------------------------
# requests to a session, a session to requests
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPlan:
    """What one ``wallet_grantPermissions`` call asks: a keyscope session before the owner's account, epoch and
    salt are known. ``max_gas_cost`` None leaves the owner's default cap; ``requests`` are the requests read, and
    ``spans[i]`` the indices of the permissions request ``i`` made."""

    chain_id: int
    account: str | None
    session_key: str
    valid_after: int
    valid_until: int
    permissions: tuple[Permission, ...]
    max_gas_cost: int | None
    paymasters: tuple[str, ...]
    limits: tuple[Limit, ...]
    spans: tuple[range, ...]
    requests: tuple[PermissionRequest, ...] = field(repr=False)

    def session(self, *, max_gas_cost: int, salt: int) -> Session:
        """The :class:`~keyscope.session.Session` (``max_gas_cost``: the cap when the requests set none)."""
        try:
            return Session(
                session_key=self.session_key,
                valid_after=self.valid_after,
                valid_until=self.valid_until,
                max_gas_cost=max_gas_cost if self.max_gas_cost is None else self.max_gas_cost,
                paymasters=self.paymasters,
                salt=salt,
                permissions=self.permissions,
                limits=self.limits,
            )
        except InvalidFieldsError as error:
            raise BadInputError(f"the requested session is not valid: {error.problems[0]['msg']}") from None


def _same(requests: Sequence[PermissionRequest]) -> None:
    first = requests[0]
    for index, request in enumerate(requests[1:], 1):
        for name in ("chain_id", "address", "expiry", "signer"):
            if getattr(request, name) != getattr(first, name):
                raise BadInputError(
                    f"request {index} asks another {name} than request 0: keyscope grants one session per "
                    "wallet_grantPermissions call, so its requests share chainId, address, signer and expiry"
                )


def _year_of(moment: int) -> int:
    """The proleptic Gregorian year (UTC) of the unix time ``moment``, however far past the year 9999 (``datetime``
    stops there): days to a civil date by 400-year eras of 146,097 days, the year counted from March."""
    days = moment // 86_400 + 719_468  # days since 0000-03-01
    era, day_of_era = divmod(days, 146_097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_from_march = (5 * day_of_year + 2) // 153  # 0 is March, 10 and 11 January and February
    return era * 400 + year_of_era + (1 if month_from_march >= 10 else 0)


def _in_seconds(moment: int, what: str, as_seconds: str, todo: str) -> int:
    """``moment``, a unix time in seconds, or a :class:`BadInputError` for one after 9999-12-31 23:59:59 UTC
    (:data:`~keyscope.clock.LAST_READABLE_TIME`), which can only be milliseconds: the refusal names ``what`` and
    the value, ``as_seconds`` (what it means read as seconds, ``{year}`` its year), the date it means in
    milliseconds, and ``todo``."""
    if moment <= LAST_READABLE_TIME:
        return moment
    meaning = as_seconds.format(year=f"{_year_of(moment):,}")
    if moment // 1000 > LAST_READABLE_TIME:
        raise BadInputError(
            f"{what} {moment} is after the year 9999 ({meaning}), and would be even as milliseconds. {todo}"
        )
    raise BadInputError(
        f"{what} {moment} is after the year 9999 ({meaning}): it can only be milliseconds, "
        f"{utc_text(moment // 1000)} read as such. {todo}"
    )


def _expiry_in_seconds(expiry: int) -> int:
    """The requests' ``expiry`` (ERC-7715: unix seconds; 0 for no expiry), or a :class:`BadInputError` for one
    after 9999-12-31 23:59:59 UTC (:data:`~keyscope.clock.LAST_READABLE_TIME`), which can only be milliseconds.

    A dapp passing JavaScript's ``Date.now()`` (milliseconds: some 1.8e12 today) for ``expiry`` asked, in seconds,
    for a session ending some 56,000 years from now, which the module keeps as written (its times run to
    2**48 - 1): a session that in effect never expires, granted by an owner shown a warning about a date past 9999
    but no word of the dapp's mistake. Every time in milliseconds after 1978-01-11 is past the bound in seconds, and
    no session is meant to end after the year 9999, so the bound refuses every millisecond expiry a dapp computes
    and no expiry in seconds anyone means. It is the bound keyscope's own window options refuse
    (:func:`keyscope.owner.session_window`) and the one past which the consent page warns that a session in effect
    never expires. A session without end is asked for with ``expiry`` 0, which the consent page warns about; a time
    past the year 9999 even in milliseconds (``2**48 - 1``, say, as a stand-in for no end) is refused too, saying
    so."""
    return _in_seconds(
        expiry,
        "the requests' expiry",
        "as seconds it ends in the year {year}: a session that in effect never expires",
        "ERC-7715's expiry is a unix time in seconds: pass Math.floor(Date.now() / 1000) plus the session's duration "
        "in seconds (for a session without end, expiry 0, which the owner is warned about). Nothing was granted",
    )


def last_valid_second(expiry: int) -> int:
    """The session's ``validUntil`` for ERC-7715's ``expiry``: 0 (no expiry) stays 0, any other is ``expiry - 1``.

    ERC-7715's ``expiry`` is the time by which the session must have expired, while the EntryPoint's ``validUntil``
    is the last second an operation is valid (it refuses one only when ``block.timestamp > validUntil``). A session
    kept until ``expiry`` itself would run one second past what the dapp asked and the owner granted. An ``expiry``
    of 1 would leave a ``validUntil`` of 0, which means no expiry at all, so it is refused."""
    if expiry == 0:
        return 0
    if expiry == 1:
        raise BadInputError(
            "the requests' expiry 1 ended in 1970, and its last valid second would be 0, which the EntryPoint reads "
            "as no expiry: ask for an expiry in the future (unix seconds), or 0 for a session without end. Nothing "
            "was granted"
        )
    return expiry - 1


def expiry_of(valid_until: int) -> int:
    """ERC-7715's ``expiry`` for a session's ``validUntil`` (the inverse of :func:`last_valid_second`)."""
    return valid_until + 1 if valid_until else 0


def _same_session_policies(requests: Sequence[PermissionRequest]) -> None:
    """Every request asks the session-wide policies, or none does: the session has one gas cap, one paymaster list,
    one start and one gas budget, so a policy asked by one request would also bind (or free) the calls of a request
    that did not ask it (a cap or paymasters asked on one request would lift the default cap of the others)."""
    asked = [
        {p.type for p in request.policies if p.type in POLICY_TYPES and not POLICY_TYPES[p.type].per_request}
        for request in requests
    ]
    for index, kinds in enumerate(asked[1:], 1):
        differ = sorted(kinds ^ asked[0])
        if differ:
            raise BadInputError(
                f"request {index} and request 0 do not both ask the session-wide policy {differ[0]!r}: the requests "
                "of one call make one session, whose policies bind every request's calls; ask it in every request "
                "or in none"
            )


def _attached(granted: Granted, start: int, where: str) -> tuple[list[Permission], list[Limit]]:
    """``granted``'s permissions without their attached limits, and those limits with meters naming permission
    indices (the request's permissions start at ``start``)."""
    permissions = [p.model_copy(update={"limits": ()}) if p.limits else p for p in granted.permissions]
    limits: list[Limit] = []
    for own, permission in enumerate(granted.permissions):
        for limit in permission.limits:
            meters = []
            for meter in limit.meters:
                if meter.target is not None:
                    found = [
                        i
                        for i, p in enumerate(permissions)
                        if (p.target, p.selector) == (meter.target, meter.selector or bytes(4))
                    ]
                    if not found:
                        raise BadInputError(
                            f"{where}: {limit.label} counts a call the request does not grant"
                        )
                    index = found[0]
                else:
                    index = own if meter.permission == SELF else meter.permission
                meters.append(
                    meter.model_copy(update={"permission": start + index, "target": None, "selector": None})
                )
            limits.append(limit.model_copy(update={"meters": tuple(meters)}))
    return permissions, limits


def plan_from_requests(requests: Sequence[PermissionRequest | Mapping[str, Any]]) -> SessionPlan:
    """The keyscope session the ``wallet_grantPermissions`` params ``requests`` ask for. Raises
    :class:`UnsupportedTypeError` for a type keyscope does not grant, and
    :class:`~keyscope.errors.BadInputError` for malformed requests, and for an ``expiry`` after the year 9999,
    which can only be milliseconds (``expiry`` is unix seconds; 0 asks for a session without end).

    The session's limits come in one order whatever the order of the requests: the gas budget, the native
    allowances, then each request's own (its ERC-20 allowance, then its call and rate limits)."""
    # JSON text would be read character by character, and its first one refused as "request 0"
    if isinstance(requests, (str, bytes, bytearray)):
        raise BadInputError(
            "wallet_grantPermissions takes a non-empty list of PermissionRequest objects, got "
            f"{type(requests).__name__}: for the params as JSON text, give json.loads(text)"
        )
    given: object = requests  # a caller's JSON may be anything, whatever the annotation says
    if isinstance(given, Mapping) and "params" in given:
        raise BadInputError(
            "wallet_grantPermissions takes a non-empty list of PermissionRequest objects, got an object with "
            "'params': for the JSON-RPC request, give its params (request['params'])"
        )
    if isinstance(given, PermissionRequest) or (isinstance(given, Mapping) and "permission" in given):
        raise BadInputError(
            "wallet_grantPermissions takes a non-empty list of PermissionRequest objects, got one request: give it "
            "in a list, [request]"
        )
    if (
        isinstance(requests, (Mapping, PermissionRequest))
        or not isinstance(requests, Iterable)
        or not requests
    ):
        if isinstance(
            given, Mapping
        ):  # another file's object (a deployments file, say) given for the requests
            keys = ", ".join(shown(key, 40) for key in list(given)[:6]) + (", ..." if len(given) > 6 else "")
            got = f", got an object with keys {keys}" if given else ", got an empty object"
        elif isinstance(given, Sequence):
            got = ", got an empty list: give at least one request"
        else:
            got = f", got {shown(requests)}"
        raise BadInputError(
            f"wallet_grantPermissions takes a non-empty list of PermissionRequest objects{got}"
            + (
                ": give a JSON list of PermissionRequest objects, as docs/erc7715.md shows them"
                if isinstance(given, Mapping)
                else ""
            )
        )
    read = tuple(read_model(PermissionRequest, r, f"request {i}") for i, r in enumerate(requests))
    _same(read)
    first = read[0]
    _expiry_in_seconds(first.expiry)
    signer = SIGNER_TYPES.get(first.signer.type)
    if signer is None:
        raise _refuse("signer", first.signer.type, SIGNER_TYPES)
    session_key = signer.read(first.signer.data, "request 0 signer")
    draft = _Draft()
    permissions: list[Permission] = []
    native: list[Limit] = []
    spans: list[range] = []
    for index, request in enumerate(read):
        where = f"request {index}"
        kind = PERMISSION_TYPES.get(request.permission.type)
        if kind is None:
            raise _refuse("permission", request.permission.type, PERMISSION_TYPES)
        granted = kind.read(request.permission.data, f"{where} permission {kind.name}")
        start = len(permissions)
        own, attached = _attached(granted, start, where)
        permissions.extend(own)
        native.extend(granted.limits)
        draft.limits.extend(attached)
        draft.span = range(start, len(permissions))
        draft.permission_type = kind.name
        draft.label = own[0].label if own else kind.name
        spans.append(draft.span)
        for number, policy in enumerate(request.policies):
            handler = POLICY_TYPES.get(policy.type)
            if handler is None:
                raise _refuse("policy", policy.type, POLICY_TYPES)
            handler.apply(policy.data, draft, f"{where} policy {number} ({policy.type})")
    _same_session_policies(read)
    if not permissions:
        raise BadInputError(
            f"the requests grant no call: a {NATIVE_TRANSFER!r} allowance caps the value of the calls the session's "
            "other permissions make (keyscope's permissions name their target, so it grants no transfers to any "
            "address); ask a 'contract-call' with 'selector': '0x00000000' and a 'valueLimit' for each recipient"
        )
    gas = [Limits.gas(draft.gas_limit)] if draft.gas_limit is not None else []
    return SessionPlan(
        chain_id=first.chain_id,
        account=first.address,
        session_key=session_key,
        valid_after=draft.valid_after or 0,
        valid_until=last_valid_second(first.expiry),
        permissions=tuple(permissions),
        max_gas_cost=draft.max_gas_cost,
        paymasters=draft.paymasters or (),
        limits=(*gas, *native, *draft.limits),
        spans=tuple(spans),
        requests=read,
    )


def session_policies(session: Session) -> tuple[TypedEntry, ...]:
    """The policies that say ``session``'s gas cap, paymasters, start and gas budget (every request carries
    them)."""
    return tuple(
        TypedEntry(type=handler.name, data=data)
        for handler in POLICY_TYPES.values()
        if not handler.per_request
        for data in handler.write(session, range(0))
    )


def request_policies(session: Session, span: range) -> tuple[TypedEntry, ...]:
    """The policies of the request whose permissions are ``span``: the session's (:func:`session_policies`), then
    the call and rate limits on exactly those permissions."""
    own = tuple(
        TypedEntry(type=handler.name, data=data)
        for handler in POLICY_TYPES.values()
        if handler.per_request
        for data in handler.write(session, span)
    )
    return session_policies(session) + own


def permission_entry(permission: Permission) -> TypedEntry:
    """The ``contract-call`` (or other per-permission type) that asks for ``permission``."""
    for handler in PERMISSION_TYPES.values():
        data = handler.write(permission) if handler.write is not None else None
        if data is not None:
            return TypedEntry(type=handler.name, data=data)
    raise BadInputError(f"no ERC-7715 permission type writes {permission.label}")


def _permission_entries(session: Session) -> list[tuple[TypedEntry, range]]:
    """Each request's permission and the permissions it makes: permissions in order (an ERC-20 allowance's four as
    one ``erc20-token-transfer``), then one ``native-token-transfer`` per native allowance."""
    units: dict[int, tuple[range, dict[str, Any]]] = {}
    for limit in session.limits:
        unit = _erc20_unit(session, limit)
        if unit is not None and not any(set(unit[0]) & set(other) for other, _ in units.values()):
            units[unit[0].start] = unit
    entries: list[tuple[TypedEntry, range]] = []
    index = 0
    while index < len(session.permissions):
        if index in units:
            span, data = units[index]
            entries.append((TypedEntry(type=ERC20_TRANSFER, data=data), span))
            index = span.stop
        else:
            entries.append((permission_entry(session.permissions[index]), range(index, index + 1)))
            index += 1
    for limit in session.limits:
        if limit.op == LimitKind.NATIVE:
            entries.append((TypedEntry(type=NATIVE_TRANSFER, data=_native_data(limit)), range(0)))
    return entries


_PROBE_ACCOUNT = "0x" + "00" * 19 + "01"


def requests_for_session(
    session: Session, *, chain_id: int, account: str | None = None, signer: TypedEntry | None = None
) -> list[PermissionRequest]:
    """The ``wallet_grantPermissions`` params that ask for ``session`` (all but its salt): one request per
    permission (an ERC-20 allowance's permissions make one), then one per native allowance, each with the session's
    policies and its own call and rate limits; the signer is ``account`` of the session key unless given.

    Raises :class:`~keyscope.errors.BadInputError` when the requests would not ask for exactly ``session``: a limit
    no ERC-7715 type here expresses (an operations count, a periodic gas budget, a call limit shared by permissions
    of several requests), or limits in another order than :func:`plan_from_requests` gives them; and for a session
    ending (or starting) after the year 9999, which :func:`plan_from_requests` refuses as milliseconds."""
    chosen = signer or TypedEntry(type="account", data={"address": session.session_key})
    requests = [
        PermissionRequest(
            chain_id=chain_id,
            address=account,
            expiry=expiry_of(session.valid_until),
            signer=chosen,
            permission=entry,
            policies=request_policies(session, span),
        )
        for entry, span in _permission_entries(session)
    ]
    rebuilt = plan_from_requests(requests).session(max_gas_cost=session.max_gas_cost, salt=session.salt)
    if rebuilt.struct_hash(_PROBE_ACCOUNT, 0) != session.struct_hash(_PROBE_ACCOUNT, 0):
        limits = "; ".join(f"{limit.label} ({limit.op.name} {limit.per})" for limit in session.limits)
        raise BadInputError(
            f"this session cannot be written as ERC-7715 requests that ask for exactly it. Its limits: {limits}. "
            f"ERC-7715 expresses a gas budget over the session's life ({GAS_LIMIT_POLICY!r}), native allowances "
            f"({NATIVE_TRANSFER!r}), ERC-20 allowances ({ERC20_TRANSFER!r}) and call and rate limits on one "
            "request's permissions, in that order"
        )
    return requests
