"""ERC-7715 signer, permission and policy types, mapped onto keyscope's sessions through tables of handlers.

A ``wallet_grantPermissions`` call becomes ONE keyscope session: every request in it must name the same chain,
account, signer and expiry. Each request's permission becomes one or more keyscope permissions, and its
policies set the session's gas cap, its paymasters and its start. A type keyscope cannot grant exactly is
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

from pydantic import ValidationError

from ..errors import BadInputError, InvalidAbiError
from ..hexutil import to_address, to_bytes
from ..policy import TRANSFER_SELECTOR, AbiFunction, AbiParam, AbiType, Policy, RuleSpec, arg, parse_signature
from ..session import UINT256_MAX, ArgType, Condition, Permission, Rule, Session, arg_type_of
from .didkey import address_of_did_key
from .models import PermissionRequest, TypedEntry, read_model

__all__ = [
    "GAS_COST_POLICY",
    "PAYMASTERS_POLICY",
    "PERMISSION_TYPES",
    "POLICY_TYPES",
    "REFUSED_TYPES",
    "SIGNER_TYPES",
    "VALID_AFTER_POLICY",
    "SessionPlan",
    "UnsupportedTypeError",
    "plan_from_requests",
    "requests_for_session",
]

CONTRACT_CALL = "contract-call"
GAS_COST_POLICY = "gas-cost-per-operation"
PAYMASTERS_POLICY = "uncapped-paymasters"
VALID_AFTER_POLICY = "valid-after"


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


def _integer(value: Any, where: str) -> int:
    """An integer given as a JSON number, a decimal string or a 0x-hex string (a leading ``-`` allowed)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (match := _INTEGER.match(value.strip())):
        number = int(match.group(2), 0)
        return -number if match.group(1) else number
    raise BadInputError(f"{where}: {value!r} is not an integer (a number, a decimal string or 0x-hex)")


def _amount(value: Any, where: str) -> int:
    number = _integer(value, where)
    if not 0 <= number <= UINT256_MAX:
        raise BadInputError(f"{where}: {number} is not a uint256 amount")
    return number


def _python_value(value: Any, kind: str, where: str) -> Any:
    """A JSON rule value as the Python value :mod:`keyscope.policy` encodes for the ABI type ``kind``."""
    if kind == "address":
        if not isinstance(value, str):
            raise BadInputError(f"{where}: expected an address string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadInputError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind.startswith("bytes") or kind == "function":
        if not isinstance(value, str):
            raise BadInputError(f"{where}: expected 0x-hex bytes, got {value!r}")
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
        raise BadInputError(f"{where}: 'arg' is an argument name, index or path, got {value!r}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str) and value:
        return tuple(int(step) if step.isdigit() else step for step in value.split("."))
    if isinstance(value, list) and value and all(isinstance(s, (str, int)) for s in value):
        return tuple(value)
    raise BadInputError(f"{where}: 'arg' is an argument name, index or dotted path, got {value!r}")


def _read_rule(entry: Any, function: AbiFunction | None, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise BadInputError(f"{where}: a rule is an object {{arg, op, value}}, got {entry!r}")
    _check_keys(entry, _RULE_KEYS, where)
    op_text = entry.get("op")
    condition = _OPS.get(op_text) if isinstance(op_text, str) else None
    if condition is None:
        raise BadInputError(f"{where}: 'op' must be one of {', '.join(map(repr, _OPS))}, got {op_text!r}")
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
        return _spec(arg(*path), condition, converted).resolve(function)
    if not isinstance(entry.get("offset"), int) or not isinstance(entry.get("type"), str):
        raise BadInputError(f"{where}: a rule names its argument by 'arg', or by 'offset' (bytes) and 'type'")
    kind_name = entry["type"]
    try:
        code = arg_type_of(kind_name)
    except ValueError as error:
        raise BadInputError(f"{where}: {error}") from None
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        raise BadInputError(f"{where}: 'name' is a label string, got {name!r}")
    alone = AbiFunction.of("rule", [AbiParam(name or "", AbiType("elementary", _canonical(kind_name)))])
    converted = [_python_value(v, alone.inputs[0].type.name, where) for v in values]
    rule = _spec(arg(0), condition, converted).resolve(alone)
    try:
        return Rule(
            condition=rule.condition, offset=entry["offset"], arg_type=code, values=rule.values, name=name
        )
    except ValidationError as error:
        raise BadInputError(f"{where}: {error.errors()[0]['msg']}") from None


def _canonical(kind: str) -> str:
    code = arg_type_of(kind)
    return _type_name(code)


def _read_contract_call(data: Mapping[str, Any], where: str) -> list[Permission]:
    _check_keys(data, _CALL_KEYS, where)
    if "address" not in data:
        raise BadInputError(f"{where}: 'address' (the contract) is required")
    target = data["address"]
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
            return [Policy.call(target, function.signature, rules=rules, value_limit=value_limit)]
        return [
            Permission(
                target=to_address(target), selector=selector, value_limit=value_limit, rules=tuple(rules)
            )
        ]
    except ValidationError as error:
        raise BadInputError(f"{where}: {error.errors()[0]['msg']}") from None


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
class PermissionType:
    """An ERC-7715 permission type keyscope grants: ``read`` makes keyscope permissions of a request's ``data``
    (raising :class:`~keyscope.errors.BadInputError` for malformed data), ``write`` the ``data`` of one keyscope
    permission (None: not of this type)."""

    name: str
    read: Callable[[Mapping[str, Any], str], list[Permission]]
    write: Callable[[Permission], dict[str, Any] | None]


@dataclass
class _Draft:
    """A session being read from requests: the session-level settings policies set."""

    max_gas_cost: int | None = None
    paymasters: tuple[str, ...] | None = None
    valid_after: int | None = None

    def set(self, name: str, value: Any, where: str) -> None:
        current = getattr(self, name)
        if current is not None and current != value:
            raise BadInputError(
                f"{where}: asks {name} {value!r}, another request asked {current!r}; the requests of one call "
                "make one session: ask the same everywhere"
            )
        setattr(self, name, value)


@dataclass(frozen=True)
class PolicyType:
    """An ERC-7715 policy type keyscope grants: ``apply`` sets what ``data`` asks on the session being read,
    ``write`` the policy's ``data`` for a session (None: the session has none of it)."""

    name: str
    apply: Callable[[Mapping[str, Any], _Draft, str], None]
    write: Callable[[Session], dict[str, Any] | None]


@dataclass(frozen=True)
class SignerType:
    """An ERC-7715 signer type keyscope grants to: ``read`` gives the session key's address of ``data``."""

    name: str
    read: Callable[[Mapping[str, Any], str], str]


def _gas_cost(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"limit"}, where)
    draft.set("max_gas_cost", _amount(data.get("limit"), f"{where}.limit"), where)


def _paymasters(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"addresses"}, where)
    addresses = data.get("addresses")
    if not isinstance(addresses, list):
        raise BadInputError(f"{where}: 'addresses' is a list of paymaster addresses")
    draft.set("paymasters", tuple(to_address(a, name=f"{where} paymaster") for a in addresses), where)


def _valid_after(data: Mapping[str, Any], draft: _Draft, where: str) -> None:
    _check_keys(data, {"timestamp"}, where)
    draft.set("valid_after", _amount(data.get("timestamp"), f"{where}.timestamp"), where)


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
    value = data.get("address", data.get("id"))
    if value is None:
        raise BadInputError(f"{where}: 'address' is the session key's address")
    return to_address(value, name=f"{where}.address")


PERMISSION_TYPES: dict[str, PermissionType] = {
    CONTRACT_CALL: PermissionType(CONTRACT_CALL, _read_contract_call, _write_contract_call),
}
"""The permission types keyscope grants, by name."""

POLICY_TYPES: dict[str, PolicyType] = {
    GAS_COST_POLICY: PolicyType(
        GAS_COST_POLICY, _gas_cost, lambda s: {"limit": hex(s.max_gas_cost)} if s.max_gas_cost else None
    ),
    PAYMASTERS_POLICY: PolicyType(
        PAYMASTERS_POLICY, _paymasters, lambda s: {"addresses": list(s.paymasters)} if s.paymasters else None
    ),
    VALID_AFTER_POLICY: PolicyType(
        VALID_AFTER_POLICY, _valid_after, lambda s: {"timestamp": s.valid_after} if s.valid_after else None
    ),
}
"""The policy types keyscope grants, by name. Each sets the whole session (keyscope's gas cap, paymasters and
start are per session): requests that disagree on one are refused."""

SIGNER_TYPES: dict[str, SignerType] = {
    "key": SignerType("key", _key_signer),
    "account": SignerType("account", _account_signer),
}
"""The signer types keyscope grants to, by name: the session key, as a ``did:key`` (or its address), or as the
address of the dapp's key (``account``; it must be an ECDSA key: the module recovers the session's
signature)."""

_LIFETIME = (
    "it is a limit over the session's life, which this session module does not count (its limits are per call "
    "and per operation)"
)
REFUSED_TYPES: dict[tuple[str, str], str] = {
    ("permission", "native-token-transfer"): _LIFETIME
    + "; for plain transfers capped per call, use 'contract-call' with 'selector': '0x00000000' and 'valueLimit'",
    ("permission", "erc20-token-transfer"): _LIFETIME
    + "; for transfers capped per call, use 'contract-call' on transfer(address to,uint256 amount) with a rule "
    "on amount",
    ("permission", "native-token-limit"): _LIFETIME,
    ("permission", "erc20-limit"): _LIFETIME,
    ("permission", "gas-limit"): _LIFETIME,
    ("permission", "rate-limit"): _LIFETIME,
    ("permission", "erc721-token-transfer"): "keyscope has no mapping for it yet; use 'contract-call'",
    ("permission", "erc1155-token-transfer"): "keyscope has no mapping for it yet; use 'contract-call'",
    ("policy", "gas-limit"): _LIFETIME + f"; for a cap per operation use {GAS_COST_POLICY!r}",
    ("policy", "call-limit"): _LIFETIME,
    ("policy", "rate-limit"): _LIFETIME,
    ("policy", "spent-limit"): _LIFETIME,
    ("policy", "token-allowance"): _LIFETIME,
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
    salt are known. ``max_gas_cost`` None leaves the owner's default cap; ``requests`` are the requests read."""

    chain_id: int
    account: str | None
    session_key: str
    valid_after: int
    valid_until: int
    permissions: tuple[Permission, ...]
    max_gas_cost: int | None
    paymasters: tuple[str, ...]
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
            )
        except ValidationError as error:
            raise BadInputError(f"the requested session is not valid: {error.errors()[0]['msg']}") from None


def _same(requests: Sequence[PermissionRequest]) -> None:
    first = requests[0]
    for index, request in enumerate(requests[1:], 1):
        for name in ("chain_id", "address", "expiry", "signer"):
            if getattr(request, name) != getattr(first, name):
                raise BadInputError(
                    f"request {index} asks another {name} than request 0: keyscope grants one session per "
                    "wallet_grantPermissions call, so its requests share chainId, address, signer and expiry"
                )


def plan_from_requests(requests: Sequence[PermissionRequest | Mapping[str, Any]]) -> SessionPlan:
    """The keyscope session the ``wallet_grantPermissions`` params ``requests`` ask for. Raises
    :class:`UnsupportedTypeError` for a type keyscope does not grant, and
    :class:`~keyscope.errors.BadInputError` for malformed requests."""
    if isinstance(requests, Mapping) or not requests:
        raise BadInputError("wallet_grantPermissions takes a non-empty list of PermissionRequest objects")
    read = tuple(read_model(PermissionRequest, r, f"request {i}") for i, r in enumerate(requests))
    _same(read)
    first = read[0]
    signer = SIGNER_TYPES.get(first.signer.type)
    if signer is None:
        raise _refuse("signer", first.signer.type, SIGNER_TYPES)
    session_key = signer.read(first.signer.data, "request 0 signer")
    draft = _Draft()
    permissions: list[Permission] = []
    for index, request in enumerate(read):
        where = f"request {index}"
        kind = PERMISSION_TYPES.get(request.permission.type)
        if kind is None:
            raise _refuse("permission", request.permission.type, PERMISSION_TYPES)
        permissions.extend(kind.read(request.permission.data, f"{where} permission {kind.name}"))
        for number, policy in enumerate(request.policies):
            handler = POLICY_TYPES.get(policy.type)
            if handler is None:
                raise _refuse("policy", policy.type, POLICY_TYPES)
            handler.apply(policy.data, draft, f"{where} policy {number} ({policy.type})")
    return SessionPlan(
        chain_id=first.chain_id,
        account=first.address,
        session_key=session_key,
        valid_after=draft.valid_after or 0,
        valid_until=first.expiry,
        permissions=tuple(permissions),
        max_gas_cost=draft.max_gas_cost,
        paymasters=draft.paymasters or (),
        requests=read,
    )


def session_policies(session: Session) -> tuple[TypedEntry, ...]:
    """The policies that say ``session``'s gas cap, paymasters and start."""
    entries = []
    for handler in POLICY_TYPES.values():
        data = handler.write(session)
        if data is not None:
            entries.append(TypedEntry(type=handler.name, data=data))
    return tuple(entries)


def permission_entry(permission: Permission) -> TypedEntry:
    """The ERC-7715 permission that asks for ``permission``."""
    for handler in PERMISSION_TYPES.values():
        data = handler.write(permission)
        if data is not None:
            return TypedEntry(type=handler.name, data=data)
    raise BadInputError(f"no ERC-7715 permission type writes {permission.label}")


def requests_for_session(
    session: Session, *, chain_id: int, account: str | None = None, signer: TypedEntry | None = None
) -> list[PermissionRequest]:
    """The ``wallet_grantPermissions`` params that ask for ``session`` (all but its salt): one request per
    permission, each with the session's policies; the signer is ``account`` of the session key unless given."""
    chosen = signer or TypedEntry(type="account", data={"address": session.session_key})
    policies = session_policies(session)
    return [
        PermissionRequest(
            chain_id=chain_id,
            address=account,
            expiry=session.valid_until,
            signer=chosen,
            permission=permission_entry(permission),
            policies=policies,
        )
        for permission in session.permissions
    ]
