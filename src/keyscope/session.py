"""Sessions as the module stores and hashes them, and the signature layouts that carry them.

A :class:`Session` is a session key, a time window and one or more :class:`Permission` (target, selector,
value limit, :class:`Rule` list). Its id is its EIP-712 struct hash for one account at that account's
epoch (``SessionKeyValidator.sessionId``); the owner grants it off-chain by signing the EIP-712 digest in the
module's domain. Everything here is pure and mirrors ``contracts/SessionKeyValidator.sol``; see
``docs/session-module.md`` for the byte layouts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .arg_types import ArgType, arg_type_of
from .errors import BadInputError, RaisesBadInput
from .hexutil import ZERO_ADDRESS, Address, HexBytes32, HexData, HexRepr, WireInt, to_address, to_bytes
from .typed_data import DOMAIN_FIELDS, domain_separator, encode_type, hash_struct, typed_data_sign_type_hash
from .typed_data import Field as Member
from .typed_fields import contents_definitions, field_arg_type, mistyped, ordered_hashes

__all__ = [
    "CONDITION_WORDS",
    "ECDSA_SIGNATURE_BYTES",
    "MAX_CONTENTS_TYPE",
    "MAX_LIMITS",
    "MAX_METERS",
    "MAX_NESTED",
    "MAX_PAYMASTERS",
    "MAX_PERMISSIONS",
    "MAX_RULE_WORDS",
    "MAX_SIGNING_PERMISSIONS",
    "MIN_PERIOD",
    "MODE_AT",
    "MODE_ENABLE",
    "MODE_SESSION",
    "MODE_USE_WITH_KEY",
    "SESSION_ABI_TYPE",
    "SESSION_TYPES",
    "SIGNED",
    "ArgType",
    "Condition",
    "Limit",
    "LimitKind",
    "Meter",
    "Permission",
    "Rule",
    "Session",
    "SignInPermission",
    "TypedDataPermission",
    "arg_type_of",
    "contents_definitions",
    "enable_signature_prefix",
    "enable_signature_with_prefix",
    "encode_at_signature",
    "encode_enable_signature",
    "encode_session_signature",
    "encode_use_with_key_signature",
    "rule_words",
    "sign_in_domain_error",
]

MAX_PERMISSIONS = 16
MAX_RULE_WORDS = 31
MAX_PAYMASTERS = 7
MAX_SIGNING_PERMISSIONS = 8
MAX_NESTED = 8
MAX_CONTENTS_TYPE = 2048
SIGNED = 0x40
"""Shorthand for a signed comparison on an untyped rule: ``Rule(condition=op | SIGNED, ...)`` is the rule
``Rule(condition=op, arg_type=ArgType.INT256, ...)``. The signed grant carries the type, not this flag."""
INLINE_BITS = 216
MODE_ENABLE = 0x01
MODE_USE_WITH_KEY = 0x02
MODE_AT = 0x03
"""Signature prefix claiming the time an operation will land at (6 bytes): it picks the period of per-period
limits. The rest of the signature is any other layout (a co-signed session's SESSION layout included)."""
MODE_SESSION = 0x04
MAX_LIMITS = 8
MAX_METERS = 8
MIN_PERIOD = 60
"""The shortest period a limit may have (seconds): an operation counted in a period is valid in that period only."""
LIMIT_AMOUNT_MAX = 2**176 - 1
"""The module stores limit amounts in 176 bits: a larger amount acts as this one."""
SELF = -1
"""A meter attached to a permission (``Permission.limits``) naming that permission."""
UINT256_MAX = 2**256 - 1
GWEI = 10**9
GAS_CAP_MAX_GWEI = 2**40 - 1

DOMAIN_NAME = "keyscope SessionKeyValidator"
DOMAIN_VERSION = "1"


def _types(*definitions: str) -> dict[str, tuple[Member, ...]]:
    """EIP-712 struct types from their definitions, ``Name(type member,...)``."""
    types = {}
    for definition in definitions:
        struct, members = definition.removesuffix(")").split("(")
        pairs = (member.split(" ") for member in members.split(","))
        types[struct] = tuple(Member(name=name, type=kind) for kind, name in pairs)
    return types


SESSION_TYPES = _types(
    "Session(address account,address sessionKey,uint48 validAfter,uint48 validUntil,uint256 maxGasCost,"
    "address[] paymasters,uint32 epoch,uint256 salt,Permission[] permissions,Limit[] limits,address coSigner,"
    "TypedDataPermission[] typedData,string[] signIn)",
    "Limit(uint8 kind,uint256 amount,uint32 period,Meter[] meters)",
    "Meter(uint8 permission,uint16 offset)",
    "Permission(address target,bytes4 selector,uint256 valueLimit,Rule[] rules)",
    "Rule(uint8 condition,uint16 offset,uint8 argType,uint256[] values)",
    "TypedDataPermission(uint8 domainFields,string name,string version,uint256 chainId,address verifyingContract,"
    "bytes32 salt,string contentsName,string contentsType,uint16[] nested,Rule[] rules)",
)
"""The grant's EIP-712 types, the one description of the module's structs: the typehashes, the grant's typed
data, the ABI types and every model's ``struct_hash`` and ``as_abi`` derive from it. A member is the model's
attribute of the same name in snake case (``typedData``: ``Session.typed_data_permissions``); the Session's
``account`` and ``epoch`` are no attributes and not in the ABI struct: the module fills them in."""
_MODULE_FILLS = {"Session": ("account", "epoch")}
_ATTRIBUTES = {"typedData": "typed_data_permissions"}


def _type_hash(struct: str) -> bytes:
    return keccak(encode_type(struct, SESSION_TYPES).encode())


RULE_TYPEHASH = _type_hash("Rule")
PERMISSION_TYPEHASH = _type_hash("Permission")
METER_TYPEHASH = _type_hash("Meter")
LIMIT_TYPEHASH = _type_hash("Limit")
TYPED_DATA_PERMISSION_TYPEHASH = _type_hash("TypedDataPermission")
SESSION_TYPEHASH = _type_hash("Session")


def _abi_members(struct: str) -> tuple[Member, ...]:
    """The members of ``struct`` in its ABI form (without those the module fills in)."""
    filled = _MODULE_FILLS.get(struct, ())
    return tuple(member for member in SESSION_TYPES[struct] if member.name not in filled)


def _abi_type(kind: str) -> str:
    """The ABI type of a member of EIP-712 type ``kind`` (structs as tuples)."""
    base = kind.removesuffix("[]")
    if base not in SESSION_TYPES:
        return kind
    return "(" + ",".join(_abi_type(m.type) for m in _abi_members(base)) + ")" + kind[len(base) :]


TYPED_DATA_PERMISSION_ABI_TYPE = _abi_type("TypedDataPermission")
"""The ABI type of ``ISessionKeyValidator.TypedDataPermission``."""
SESSION_ABI_TYPE = _abi_type("Session")
"""The ABI type of ``ISessionKeyValidator.Session``."""


_SNAKE = re.compile(r"(?=[A-Z])")


def _member(model: BaseModel, member: Member) -> Any:
    """The value of ``member`` in ``model`` (an address left None is the zero address)."""
    value = getattr(model, _ATTRIBUTES.get(member.name) or _SNAKE.sub("_", member.name).lower())
    return ZERO_ADDRESS if value is None and member.type == "address" else value


def _message(model: BaseModel, **filled: Any) -> dict[str, Any]:
    """``model`` (the struct of its class's name) as an EIP-712 message; ``filled``: the members the module fills in."""
    return {
        m.name: filled[m.name] if m.name in filled else _message_value(m.type, _member(model, m))
        for m in SESSION_TYPES[type(model).__name__]
    }


def _message_value(kind: str, value: Any) -> Any:
    if kind.endswith("[]"):
        return [_message_value(kind[:-2], item) for item in value]
    return _message(value) if kind in SESSION_TYPES else value


def _abi(model: BaseModel) -> tuple[Any, ...]:
    """``model`` (the struct of its class's name) as an ABI tuple."""
    return tuple(_abi_value(m.type, _member(model, m)) for m in _abi_members(type(model).__name__))


def _abi_value(kind: str, value: Any) -> Any:
    if kind.endswith("[]"):
        return [_abi_value(kind[:-2], item) for item in value]
    return _abi(value) if kind in SESSION_TYPES else value


SIGN_IN_SUFFIX = " wants you to sign in with your Ethereum account:\n"
"""What follows the website in the first line of an EIP-4361 message."""


class Condition(IntEnum):
    """Rule conditions, numbered as the module (and Biconomy's session keys) number them."""

    EQUAL = 0
    LESS_THAN_OR_EQUAL = 1
    LESS_THAN = 2
    GREATER_THAN_OR_EQUAL = 3
    GREATER_THAN = 4
    NOT_EQUAL = 5
    IN_RANGE = 6
    ONE_OF = 7


CONDITION_WORDS = {
    Condition.EQUAL: "must be {}",
    Condition.NOT_EQUAL: "must not be {}",
    Condition.LESS_THAN: "must be less than {}",
    Condition.LESS_THAN_OR_EQUAL: "must be at most {}",
    Condition.GREATER_THAN: "must be more than {}",
    Condition.GREATER_THAN_OR_EQUAL: "must be at least {}",
    Condition.IN_RANGE: "must be between {} and {} (both included)",
    Condition.ONE_OF: "must be one of: {}",
}
"""What a rule of each condition asks of its word, in the words the consent page, the session report and the
checker's errors all use: see :meth:`Rule.requirement`."""


class _Model(HexRepr, RaisesBadInput, BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Struct(_Model):
    """A model of the module's struct of the same name (in :data:`SESSION_TYPES`)."""

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of this struct."""
        return hash_struct(type(self).__name__, _message(self), SESSION_TYPES)

    def as_abi(self) -> tuple[Any, ...]:
        """The ``ISessionKeyValidator`` struct of the same name as an ABI tuple."""
        return _abi(self)


class Rule(_Struct):
    """A condition on the argument whose 32-byte word sits at ``offset`` in a call's arguments (after the
    selector), read as the ABI type ``arg_type`` (an :class:`ArgType` code; the default, ``ArgType.WORD``, is
    a plain 256-bit word).

    ``values`` are uint256 words, each the canonical word of a value of ``arg_type``: negative values of intN
    rules are two's complement (use :meth:`signed_word`). ``condition`` is a :class:`Condition`; intN types
    compare as signed (``condition | SIGNED`` on an untyped rule is accepted as shorthand for INT256). ``name``
    is an optional label (the argument's name) used in error messages; it is not signed.
    """

    condition: WireInt
    offset: WireInt = Field(ge=0, le=0xFFFF)
    arg_type: WireInt = ArgType.WORD
    values: tuple[WireInt, ...]
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _signed_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("condition"), int) and data["condition"] & SIGNED:
            arg_type = data.get("arg_type", ArgType.WORD)
            if isinstance(arg_type, int) and arg_type == ArgType.WORD:
                arg_type = ArgType.INT256
            elif not (isinstance(arg_type, int) and ArgType.is_signed(arg_type)):
                raise ValueError(
                    f"condition 0x{data['condition']:02x} asks for a signed comparison, but arg_type "
                    f"{arg_type!r} is not an intN type: drop SIGNED, or give the intN type"
                )
            data = dict(data)
            data["condition"] = data["condition"] & ~SIGNED
            data["arg_type"] = arg_type
        return data

    @field_validator("values")
    @classmethod
    def _words(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        for value in values:
            if not 0 <= value <= UINT256_MAX:
                raise ValueError(
                    f"reference value {value} is not a uint256 word (use Rule.signed_word for negatives)"
                )
        return values

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if not 0 <= self.condition <= Condition.ONE_OF:
            raise ValueError(f"unknown condition 0x{self.condition:02x}: use a Condition")
        if not ArgType.is_valid(self.arg_type):
            raise ValueError(
                f"unknown arg_type 0x{self.arg_type:02x}: use an ArgType code (ArgType.uint_of(8), ArgType.ADDRESS, "
                "ArgType.BOOL, ...)"
            )
        count = len(self.values)
        op = self.op
        if op <= Condition.NOT_EQUAL and count != 1:
            raise ValueError(f"{op.name} takes exactly one reference value, got {count}")
        for value in self.values:
            if not ArgType.is_canonical(self.arg_type, value):
                raise ValueError(
                    f"reference value 0x{value:064x} is not a {ArgType.name(self.arg_type)} word: the rule could "
                    "never judge a canonical argument by it"
                )
        if op == Condition.IN_RANGE:
            if count != 2:
                raise ValueError(f"IN_RANGE takes two values (low, high), got {count}")
            low, high = (self._as_signed(v) for v in self.values) if self.is_signed else self.values
            if low > high:
                raise ValueError(f"IN_RANGE low end {low} is above the high end {high}")
        if op == Condition.ONE_OF and not 1 <= count <= MAX_RULE_WORDS:
            raise ValueError(f"ONE_OF takes 1 to {MAX_RULE_WORDS} values, got {count}")
        return self

    @property
    def op(self) -> Condition:
        """The comparison."""
        return Condition(self.condition)

    @property
    def is_signed(self) -> bool:
        """Whether the words compare as int256 (the argument is an intN)."""
        return ArgType.is_signed(self.arg_type)

    def is_canonical(self, word: int) -> bool:
        """Whether the calldata word ``word`` is a canonical encoding of the rule's type (the module refuses
        any other: ``NonCanonicalArgument``, or ``RuleViolated`` under EQUAL and ONE_OF)."""
        return ArgType.is_canonical(self.arg_type, word)

    @staticmethod
    def signed_word(value: int) -> int:
        """The uint256 two's-complement word of an int256 ``value``."""
        if not -(2**255) <= value < 2**255:
            raise ValueError(f"{value} does not fit in int256")
        return value & UINT256_MAX

    @staticmethod
    def _as_signed(word: int) -> int:
        return word - 2**256 if word >> 255 else word

    def holds(self, word: int) -> bool:
        """Whether the calldata word ``word`` (as uint256) satisfies this rule, exactly as the module decides:
        a canonical word of the rule's type, meeting the condition."""
        if not self.is_canonical(word):
            return False
        op = self.op
        if op == Condition.EQUAL:
            return word == self.values[0]
        if op == Condition.NOT_EQUAL:
            return word != self.values[0]
        if op == Condition.ONE_OF:
            return word in self.values
        convert = self._as_signed if self.is_signed else (lambda w: w)
        actual = convert(word)
        first = convert(self.values[0])
        if op == Condition.IN_RANGE:
            return first <= actual <= convert(self.values[1])
        if op == Condition.LESS_THAN_OR_EQUAL:
            return actual <= first
        if op == Condition.LESS_THAN:
            return actual < first
        if op == Condition.GREATER_THAN_OR_EQUAL:
            return actual >= first
        return actual > first

    def requirement(self, shown: Sequence[str]) -> str:
        """What this rule asks of its word in :data:`CONDITION_WORDS`, ``shown`` being its values as text (the
        caller chooses how: token amounts, hex, ...): ``must be at most 10``."""
        values = [", ".join(shown)] if self.op == Condition.ONE_OF else shown
        return CONDITION_WORDS[self.op].format(*values)

    def describe(self, *, address: bool = False, decimals: int | None = None) -> str:
        """In words, e.g. ``to must be 0xAb…`` or ``amount must be between 1 and 10 (both included)``. ``address``:
        the argument is declared an address (a ``uint160`` has the same type code), so its values are shown as
        checksummed addresses. ``decimals``: the argument is a fixed-point number (``fixedMxN``, ``N`` decimals),
        whose word is its value times ``10**N``: its values are shown as the target reads them, with the words."""
        label = self.name or f"word at offset {self.offset}"
        if decimals is not None:
            numbers = [self._as_signed(v) if self.is_signed else v for v in self.values]
            shown = [f"{_fixed_point(n, decimals)} (the word {n})" for n in numbers]
        elif self.is_signed:
            shown = [str(self._as_signed(v)) for v in self.values]
        elif address and self.arg_type == ArgType.ADDRESS:
            shown = [to_address(v.to_bytes(20, "big")) for v in self.values]
        else:
            shown = [_short(v) for v in self.values]
        return f"{label} {self.requirement(shown)}"


def _fixed_point(number: int, decimals: int) -> str:
    """``number / 10**decimals`` written exactly: ``-1.5`` for -150 at 2 decimals."""
    whole, fraction = divmod(abs(number), 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{'-' if number < 0 else ''}{whole}{'.' + digits if digits else ''}"


def _short(value: int) -> str:
    if value >= 2**64:
        return "0x" + value.to_bytes(32, "big").lstrip(b"\x00").hex().rjust(40, "0")
    return str(value)


class LimitKind(IntEnum):
    """What a :class:`Limit` counts, numbered as the module numbers them."""

    NATIVE = 0
    """The native value (wei) of the metered permissions' calls."""
    AMOUNT = 1
    """An argument of the metered permissions' calls (each meter names its offset), e.g. a token amount."""
    CALLS = 2
    """Calls of the metered permissions."""
    OPERATIONS = 3
    """Operations making at least one call of the session."""
    GAS = 4
    """Each such operation's most possible gas cost (its prefund, wei), unless a paymaster the session lists pays."""


_COUNTS_CALLS = (LimitKind.NATIVE, LimitKind.AMOUNT, LimitKind.CALLS)
_PERIOD_NAMES = {60: "minute", 3600: "hour", 86400: "day", 604800: "week"}


class Meter(_Struct):
    """What one permission's calls add to a limit: 1 (CALLS), the call's value (NATIVE), or the argument word at
    ``offset`` (AMOUNT).

    ``permission`` is the permission's index in the session. While a session is being built, a meter may instead
    name its permission by ``target`` and ``selector``, or be :data:`SELF` on a limit attached to a permission
    (``Permission.limits``); the :class:`Session` resolves both to the index.
    """

    permission: WireInt = Field(default=SELF, ge=SELF, lt=MAX_PERMISSIONS)
    offset: WireInt = Field(default=0, ge=0, le=0xFFFF)
    target: Address | None = None
    selector: HexData | None = None
    name: str | None = None
    """A label for messages (``transfer.amount``), not signed."""


class Limit(_Struct):
    """A budget of the session, signed in the grant and counted by the module during validation: at most ``amount``
    over the session's life (``period`` 0) or per ``period`` seconds (periods start at the session's
    ``valid_after``: with 0, days are UTC days).

    NATIVE, AMOUNT and CALLS limits count the calls of the permissions their ``meters`` name (a NATIVE limit built
    without meters counts every permission that can carry value); OPERATIONS and GAS limits count the session's
    operations and have no meters. ``name``, ``unit`` and ``decimals`` only shape messages (``3 USDC``).
    """

    kind: WireInt
    amount: WireInt = Field(ge=0, le=UINT256_MAX)
    period: WireInt = Field(default=0, ge=0, lt=2**32)
    meters: tuple[Meter, ...] = ()
    name: str | None = None
    unit: str | None = None
    decimals: WireInt = Field(default=0, ge=0, le=77)

    @model_validator(mode="after")
    def _shape(self) -> Limit:
        if not 0 <= self.kind <= LimitKind.GAS:
            raise ValueError(f"unknown limit kind {self.kind}: use a LimitKind")
        if self.period and self.period < MIN_PERIOD:
            raise ValueError(
                f"a period of {self.period}s is too short: the module takes periods of at least {MIN_PERIOD}s "
                "(an operation counted in a period is valid in that period only)"
            )
        if self.kind not in _COUNTS_CALLS and self.meters:
            raise ValueError(f"a {self.op.name} limit counts operations: it takes no meters")
        for meter in self.meters:
            if self.kind != LimitKind.AMOUNT and meter.offset:
                raise ValueError(f"a {self.op.name} limit counts no argument: its meters take no offset")
        return self

    @property
    def op(self) -> LimitKind:
        """The kind, as a :class:`LimitKind`."""
        return LimitKind(self.kind)

    @property
    def stored_amount(self) -> int:
        """The amount the module enforces (saturated at 2**176 - 1)."""
        return min(self.amount, LIMIT_AMOUNT_MAX)

    @property
    def label(self) -> str:
        """``USDC allowance`` or ``calls of safeMint(address) on 0xab…``-like text, for messages."""
        return self.name or f"{self.op.name.lower()} limit"

    @property
    def per(self) -> str:
        """``per day``, ``per 90s``, or ``over the session's life``."""
        if not self.period:
            return "over the session's life"
        name = _PERIOD_NAMES.get(self.period)
        return f"per {name}" if name else f"per {self.period}s"

    def show(self, amount: int) -> str:
        """``amount`` in the limit's unit: ``4.2 USDC``, ``3 calls``, ``0.01 ETH``."""
        if self.decimals:
            whole, frac = divmod(amount, 10**self.decimals)
            text = f"{whole:,}" + (f".{frac:0{self.decimals}d}".rstrip("0") if frac else "")
        else:
            text = f"{amount:,}"
        unit = self.unit or {
            LimitKind.CALLS: "call" if amount == 1 else "calls",
            LimitKind.OPERATIONS: "operation" if amount == 1 else "operations",
            LimitKind.NATIVE: "wei",
            LimitKind.GAS: "wei",
        }.get(self.op, "units")
        return f"{text} {unit}"

    def period_of(self, moment: int, anchor: int) -> int:
        """The index of the period holding ``moment`` (periods start at ``anchor``, the session's valid_after)."""
        if not self.period or moment < anchor:
            return 0
        return (moment - anchor) // self.period


class Permission(_Struct):
    """One function of one contract a session may call, with the value limit and argument rules.

    ``limits`` are limits on this permission's own calls (``Policy.call(..., calls=10)``), or shared with other
    permissions (``Policy.erc20_allowance``) while a session is built: the :class:`Session` moves them into its
    ``limits``, where the grant signs them.
    """

    target: Address
    selector: HexData = Field(min_length=4, max_length=4)
    value_limit: WireInt = Field(default=0, ge=0, le=UINT256_MAX)
    rules: tuple[Rule, ...] = ()
    function: str | None = None
    """The function's signature, for messages only (``safeMint(address)``)."""
    limits: tuple[Limit, ...] = ()

    @model_validator(mode="after")
    def _transfer_has_no_rules(self) -> Permission:
        if self.selector == bytes(4) and self.rules:
            raise ValueError(
                f"a plain-transfer permission (selector 0x00000000) on {self.target} cannot have rules: its calls "
                "have no calldata"
            )
        return self

    @property
    def label(self) -> str:
        """``safeMint(address) on 0xab…`` for messages."""
        name = self.function or f"selector 0x{self.selector.hex()}"
        return f"{name} on {self.target}"

    def rule_words(self) -> int:
        """Storage words the module uses for this permission's rules (must be <= MAX_RULE_WORDS)."""
        return sum(rule_words(rule) for rule in self.rules)


def rule_words(rule: Rule) -> int:
    """Storage words one rule takes: 1, plus 1 if its first value is not inline (216 bits, sign-extended for
    intN), plus 1 per further value."""
    first = rule.values[0]
    if rule.is_signed:
        signed = Rule._as_signed(first)
        inline = -(2 ** (INLINE_BITS - 1)) <= signed < 2 ** (INLINE_BITS - 1)
    else:
        inline = first < 2**INLINE_BITS
    return (1 if inline else 2) + len(rule.values) - 1


_FORBIDDEN_IN_NAME = frozenset("\x00 ,()")


def sign_in_domain_error(domain: object) -> str | None:
    """Why ``domain`` cannot be a sign-in permission (None when it can): 1 to 255 printable ASCII bytes, no spaces."""
    if not isinstance(domain, str):
        return f"a sign-in domain is a string, got {type(domain).__name__}"
    raw = domain.encode("utf-8")
    if not 1 <= len(raw) <= 255 or any(not 0x21 <= b <= 0x7E for b in raw):
        return (
            f"sign-in domain {domain!r} is not 1 to 255 printable ASCII characters without spaces (an RFC 3986 "
            "authority such as app.example.com or localhost:3000)"
        )
    return None


class TypedDataPermission(_Struct):
    """What a session may sign as the account: EIP-712 typed data of one primary type (``contents_name``, defined in
    ``contents_type``, ERC-7739's list of every definition the contents use, sorted by name) in one domain, with
    rules on the words of its flattened contents (``offset``: 32 x the word's index; frame 0 is the primary struct,
    then the nested structs ``nested`` lists, breadth first). Build one with
    :meth:`keyscope.policy.Policy.typed_data`, which lays the offsets out from the types.

    The domain is its ERC-5267 ``domain_fields`` bitmap and the fields themselves; fields the bitmap leaves out
    must be empty. ``primary`` and ``types`` are not signed: they keep the types the permission was built from, for
    messages.
    """

    domain_fields: WireInt = Field(ge=0, le=0x1F)
    name: str = ""
    version: str = ""
    chain_id: WireInt = Field(default=0, ge=0, le=UINT256_MAX)
    verifying_contract: Address = ZERO_ADDRESS
    salt: HexBytes32 = bytes(32)
    contents_name: str
    contents_type: str
    nested: tuple[WireInt, ...] = ()
    rules: tuple[Rule, ...] = ()
    label: str | None = None
    """What the permission allows, for messages (``PermitSingle on Permit2``); not signed."""

    @model_validator(mode="after")
    def _shape(self) -> TypedDataPermission:
        fields = self.domain_fields
        for name, value, bit, empty in (
            ("name", self.name, 0x01, ""),
            ("version", self.version, 0x02, ""),
            ("chainId", self.chain_id, 0x04, 0),
            ("verifyingContract", self.verifying_contract, 0x08, ZERO_ADDRESS),
            ("salt", self.salt, 0x10, bytes(32)),
        ):
            if not fields & bit and value != empty:
                raise ValueError(f"the domain's {name} is set but domain_fields 0x{fields:02x} leaves it out")
        name = self.contents_name
        if not name or name[0] in "abcdefghijklmnopqrstuvwxyz(" or _FORBIDDEN_IN_NAME & set(name):
            raise ValueError(
                f"contents name {name!r} is not valid for ERC-7739: not empty, not starting with a-z or '(', "
                "without spaces, commas, parentheses or NUL"
            )
        if not self.contents_type.endswith(")") or len(self.contents_type.encode()) > MAX_CONTENTS_TYPE:
            raise ValueError(f"contents type must end with ')' and take at most {MAX_CONTENTS_TYPE} bytes")
        if name not in dict(contents_definitions(self.contents_type)):
            raise ValueError(f"contents type {self.contents_type!r} has no definition of {name!r}")
        if len(self.nested) > MAX_NESTED or any(not 0 <= n <= 0xFFFF for n in self.nested):
            raise ValueError(f"nested lists at most {MAX_NESTED} word indices of 16 bits")
        if any(b <= a for a, b in zip(self.nested, self.nested[1:], strict=False)):
            raise ValueError(
                f"nested must be strictly increasing (breadth-first order), got {list(self.nested)}"
            )
        for index, rule in enumerate(self.rules):
            if rule.offset % 32:
                raise ValueError(
                    f"rule {index}'s offset {rule.offset} is not a multiple of 32 (a word of the contents)"
                )
        words = sum(rule_words(rule) for rule in self.rules)
        if words > MAX_RULE_WORDS:
            raise ValueError(f"the rules need {words} storage words; the module allows {MAX_RULE_WORDS}")
        if self.rules:
            self._check_rule_types()
        return self

    def _check_rule_types(self) -> None:
        """Refuse a rule that reads a field of the contents as another type than the field's, as the module does
        (``TypedDataRuleTypeMismatch``): the module judges a signed word by the rule's type, and a verifier reads
        the field as its own type. A rule past the contents reads no field (it refuses every signature). Refuse too a
        rule ordering a field whose word is a hash (``TypedDataRuleOrdersHash``): it bounds the hash, not the value."""
        structs = {name for name, _ in contents_definitions(self.contents_type)}
        typed = [(rule.offset, rule.arg_type) for rule in self.rules]
        ordered = [(rule.offset, rule.arg_type, rule.condition) for rule in self.rules]
        wrong = {index: ("type", path, kind) for index, path, kind in mistyped(*self._layout(), typed)}
        for index, path, kind in ordered_hashes(*self._layout(), ordered):
            wrong.setdefault(index, ("order", path, kind))
        if not wrong:
            return
        index = min(wrong)  # the module names the first rule it refuses
        what, path, kind = wrong[index]
        rule = self.rules[index]
        if what == "order":
            raise ValueError(
                f"rule {index} of the {self.contents_name} permission orders the field {path} (offset {rule.offset}, "
                f"type {kind}) with condition {Condition(rule.condition).name}: its EIP-712 word is the hash of its "
                "contents, so a bound on it bounds nothing the verifier reads and any value could pass; the module "
                "refuses it (TypedDataRuleOrdersHash). Bind the field with ==, != or one_of (the hash of the values "
                "allowed), as Policy.typed_data does, or drop the rule"
            )
        wanted = field_arg_type(kind, structs)
        give = (
            f"give it the field's type, {ArgType.name(wanted)} (ArgType 0x{wanted:02x}), as Policy.typed_data does"
            if wanted is not None
            else f"no rule type reads a {kind} field: drop the rule"
        )
        raise ValueError(
            f"rule {index} of the {self.contents_name} permission reads the field {path} (offset {rule.offset}, "
            f"type {kind}) as {ArgType.name(rule.arg_type)}: the module refuses a rule typed otherwise than its "
            f"field (TypedDataRuleTypeMismatch), since a word that is no {kind} could pass it; {give}"
        )

    def _layout(self) -> tuple[str, str, tuple[int, ...]]:
        return self.contents_name, self.contents_type, tuple(self.nested)

    @property
    def domain(self) -> dict[str, Any]:
        """The application's EIP-712 domain (the fields it has)."""
        values = {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
            "salt": "0x" + self.salt.hex(),
        }
        return {name: values[name] for name, _, bit in DOMAIN_FIELDS if self.domain_fields & bit}

    @property
    def domain_separator(self) -> bytes:
        """The application domain's separator."""
        return domain_separator(self.domain)

    @property
    def encode_type(self) -> str:
        """EIP-712 ``encodeType`` of the primary type: its definition, then the others (sorted)."""
        definitions = contents_definitions(self.contents_type)
        primary = dict(definitions)[self.contents_name]
        return primary + "".join(text for name, text in definitions if name != self.contents_name)

    @property
    def contents_type_hash(self) -> bytes:
        """The primary type's typehash."""
        return keccak(self.encode_type.encode())

    @property
    def typed_data_sign_type_hash(self) -> bytes:
        """ERC-7739's TypedDataSign typehash for these contents."""
        return typed_data_sign_type_hash(self.contents_name, self.contents_type)

    @property
    def describe(self) -> str:
        """``PermitSingle in the domain Permit2 (0x0000…)``, for messages."""
        if self.label:
            return self.label
        where = self.name or self.verifying_contract
        return f"{self.contents_name} in the domain {where!s}"

    def rule_words(self) -> int:
        """Storage words the module uses for the rules."""
        return sum(rule_words(rule) for rule in self.rules)

    def typed_data(self) -> dict[str, Any]:
        """This permission as the EIP-712 message of the grant shows it."""
        return _message(self)


class SignInPermission(_Model):
    """A website (EIP-4361 ``domain``) the session may sign sign-in messages for, in the account's name."""

    domain: str

    @field_validator("domain")
    @classmethod
    def _valid(cls, domain: str) -> str:
        error = sign_in_domain_error(domain)
        if error is not None:
            raise ValueError(error)
        return domain

    @property
    def first_line(self) -> str:
        """The first line of the messages it allows: ``<domain> wants you to sign in with your Ethereum account:``."""
        return self.domain + SIGN_IN_SUFFIX


class Session(_Model):
    """What the owner grants: a session key, a window (``valid_until`` 0 = no expiry) and permissions: calls
    (``permissions``), typed data to sign (``typed_data``) and websites to sign in to (``sign_in``), at least one of
    them (``typed_data_permissions`` is the grant's ``typedData``). With a ``co_signer``, every operation and signature of the session needs that key's signature too."""

    session_key: Address
    valid_after: WireInt = Field(default=0, ge=0, lt=2**48)
    valid_until: WireInt = Field(default=0, ge=0, lt=2**48)
    max_gas_cost: WireInt = Field(default=0, ge=0, le=UINT256_MAX)
    """The most one operation may cost in gas (wei; every gas limit, a paymaster's included, times maxFeePerGas);
    0: no cap. The module keeps it in whole gwei. It bounds operations a paymaster pays too (an ERC-20
    paymaster charges the account), unless the paymaster is one of ``paymasters``."""
    paymasters: tuple[Address, ...] = ()
    """Paymasters operations may name without the ``max_gas_cost`` cap: sponsors the owner trusts not to charge
    the account (at most 7)."""
    salt: WireInt = Field(default=0, ge=0, le=UINT256_MAX)
    permissions: tuple[Permission, ...] = ()
    limits: tuple[Limit, ...] = ()
    """Budgets over the session's life or per period, counted by the module (see :class:`Limit`). Limits attached
    to permissions while the session is built end up here, after the session's own."""
    co_signer: Address | None = None
    """A key whose signature every operation and message of the session needs too (None: none; the zero address,
    which the grant carries for none, reads as None)."""
    typed_data_permissions: tuple[TypedDataPermission, ...] = ()
    """Typed data the session may sign as the account (ERC-1271): the grant's ``typedData``."""
    sign_in: tuple[str, ...] = ()
    """Websites (EIP-4361 domains) the session may sign sign-in messages for."""

    @field_validator("co_signer")
    @classmethod
    def _zero_is_no_co_signer(cls, co_signer: str | None) -> str | None:
        """The module reads a zero coSigner as none (the grant encodes None as zero): the same session."""
        return None if co_signer == ZERO_ADDRESS else co_signer

    @model_validator(mode="before")
    @classmethod
    def _gather_limits(cls, data: Any) -> Any:
        """Move limits attached to permissions into ``limits`` and resolve every meter to a permission index."""
        if not isinstance(data, dict) or "permissions" not in data:
            return data
        raw = data["permissions"]
        if not isinstance(raw, (list, tuple)):
            return data
        given = data.get("limits", ())
        if not isinstance(given, (list, tuple)):
            return data
        try:
            permissions = [p if isinstance(p, Permission) else Permission.model_validate(p) for p in raw]
            limits = [x if isinstance(x, Limit) else Limit.model_validate(x) for x in given]
        except ValidationError:
            return data  # the fields' own validation says what is wrong, and where

        attached = [(i, x) for i, p in enumerate(permissions) for x in p.limits]
        if not attached and all(_resolved(x) for x in limits):
            return data
        permissions = [p.model_copy(update={"limits": ()}) if p.limits else p for p in permissions]
        gathered = [_resolve(x, permissions, None) for x in limits]
        gathered += [_resolve(x, permissions, i) for i, x in attached]
        return {**data, "permissions": tuple(permissions), "limits": tuple(gathered)}

    @model_validator(mode="after")
    def _shape(self) -> Session:
        signing = len(self.typed_data_permissions) + len(self.sign_in)
        if len(self.permissions) > MAX_PERMISSIONS or (not self.permissions and not signing):
            raise ValueError(
                f"a session needs 0 to {MAX_PERMISSIONS} call permissions and at least one permission of any kind "
                f"(calls, typed data, sign-in), got {len(self.permissions)} call permissions"
            )
        if signing > MAX_SIGNING_PERMISSIONS:
            raise ValueError(
                f"a session has at most {MAX_SIGNING_PERMISSIONS} signing permissions (typed data and sign-in), "
                f"got {signing}"
            )
        if self.session_key == ZERO_ADDRESS:
            raise ValueError(
                "the session key is the zero address, which no key signs as (the module refuses it: "
                "InvalidSessionKey): use the address of the dapp's session key"
            )
        if self.co_signer is not None and self.co_signer == self.session_key:
            raise ValueError(
                "the co-signer must be another key than the session key (one leaked key would make both signatures)"
            )
        for index, domain in enumerate(self.sign_in):
            error = sign_in_domain_error(domain)
            if error is not None:
                raise ValueError(f"sign-in permission {index}: {error}")
        if len(set(self.sign_in)) != len(self.sign_in):
            raise ValueError("a sign-in domain is listed twice")
        signed_kinds: set[tuple[bytes, bytes]] = set()
        for index, granted in enumerate(self.typed_data_permissions):
            kind = (granted.domain_separator, granted.contents_type_hash)
            if kind in signed_kinds:
                raise ValueError(
                    f"typed-data permission {index} repeats {granted.describe}: merge the two (ONE_OF / IN_RANGE "
                    "rules express alternatives)"
                )
            signed_kinds.add(kind)
        if 0 < self.max_gas_cost < GWEI:
            raise ValueError(
                f"max_gas_cost {self.max_gas_cost} wei is below 1 gwei, the module's unit: give 0 (no cap) or more"
            )
        if self.valid_until and self.valid_until <= self.valid_after:
            raise ValueError(f"valid_until {self.valid_until} must be after valid_after {self.valid_after}")
        if len(self.paymasters) > MAX_PAYMASTERS:
            raise ValueError(
                f"a session lists at most {MAX_PAYMASTERS} paymasters, got {len(self.paymasters)}"
            )
        if "0x" + "00" * 20 in self.paymasters:
            raise ValueError("the zero address is not a paymaster: drop it from paymasters")
        if len(self.limits) > MAX_LIMITS:
            raise ValueError(f"a session has at most {MAX_LIMITS} limits, got {len(self.limits)}")
        meters = [0] * len(self.permissions)
        for number, limit in enumerate(self.limits):
            if not _resolved(limit):
                raise ValueError(
                    f"limit {number} ({limit.label}) has a meter that names no permission of the session"
                )
            for meter in limit.meters:
                if meter.permission >= len(self.permissions):
                    raise ValueError(
                        f"limit {number} ({limit.label}) meters permission {meter.permission}, but the session has "
                        f"{len(self.permissions)}"
                    )
                metered = self.permissions[meter.permission]
                if limit.kind == LimitKind.AMOUNT and metered.selector == bytes(4):
                    raise ValueError(
                        f"limit {number} ({limit.label}) counts an argument of permission {meter.permission} "
                        f"({metered.label}), a plain transfer: its calls carry no calldata, so the module would refuse "
                        "every one of them (CalldataTooShortForLimit). Count its value with a NATIVE limit "
                        "(Limits.native)"
                    )
                meters[meter.permission] += 1
        for index, count in enumerate(meters):
            if count > MAX_METERS:
                raise ValueError(
                    f"permission {index} ({self.permissions[index].label}) counts towards {count} limits; the module "
                    f"takes at most {MAX_METERS} per permission"
                )
        stored_paymasters = len(self.paymasters) if self.gas_cap or self.has_gas_limit else 0
        seen: set[tuple[str, bytes]] = set()
        for index, permission in enumerate(self.permissions):
            key = (permission.target, permission.selector)
            if key in seen:
                raise ValueError(
                    f"permission {index} repeats {permission.label}: merge the two (ONE_OF / IN_RANGE rules "
                    "express alternatives)"
                )
            seen.add(key)
            words = permission.rule_words() + stored_paymasters + (1 if self.is_limited(index) else 0)
            if words > MAX_RULE_WORDS:
                extra = f" and the session's {stored_paymasters} paymasters" if stored_paymasters else ""
                raise ValueError(
                    f"permission {index} ({permission.label}) needs {words} storage words for its rules{extra}; "
                    f"the module allows {MAX_RULE_WORDS}"
                )
        return self

    @property
    def has_gas_limit(self) -> bool:
        """Whether a GAS limit counts the session's operations (its paymaster list is then stored even without a
        gas cap, to tell which operations a listed sponsor pays)."""
        return any(limit.kind == LimitKind.GAS for limit in self.limits)

    def is_limited(self, index: int) -> bool:
        """Whether permission ``index``'s calls count towards a limit (its calls then cost the counting gas)."""
        return any(
            limit.kind in (LimitKind.OPERATIONS, LimitKind.GAS)
            or any(m.permission == index for m in limit.meters)
            for limit in self.limits
        )

    @property
    def gas_cap(self) -> int:
        """The cap the module enforces, in wei: ``max_gas_cost`` rounded down to whole gwei (0: none)."""
        return min(self.max_gas_cost // GWEI, GAS_CAP_MAX_GWEI) * GWEI

    # -- hashing ---------------------------------------------------------------------------------------

    def struct_hash(self, account: str, epoch: int) -> bytes:
        """The session id: EIP-712 ``hashStruct(Session)`` for ``account`` at ``epoch``."""
        return hash_struct("Session", _message(self, account=account, epoch=epoch), SESSION_TYPES)

    def session_id(self, account: str, epoch: int) -> bytes:
        """Alias of :meth:`struct_hash`: what ``SessionKeyValidator.sessionId`` returns."""
        return self.struct_hash(account, epoch)

    @staticmethod
    def domain_separator(chain_id: int, module: str) -> bytes:
        """The module's EIP-712 domain separator on ``chain_id``."""
        return domain_separator(_module_domain(chain_id, module))

    def enable_digest(self, account: str, epoch: int, chain_id: int, module: str) -> bytes:
        """The EIP-712 digest the owner signs to grant this session off-chain."""
        return keccak(
            b"\x19\x01" + self.domain_separator(chain_id, module) + self.struct_hash(account, epoch)
        )

    def typed_data(self, account: str, epoch: int, chain_id: int, module: str) -> dict[str, Any]:
        """The EIP-712 typed data (for ``eth_signTypedData_v4`` or eth-account) of the grant."""
        domain = _module_domain(chain_id, module)
        structs = ["Session", *sorted(set(SESSION_TYPES) - {"Session"})]
        return {
            "types": {
                "EIP712Domain": [
                    {"name": name, "type": kind} for name, kind, _ in DOMAIN_FIELDS if name in domain
                ],
                **{name: [{"name": m.name, "type": m.type} for m in SESSION_TYPES[name]] for name in structs},
            },
            "primaryType": "Session",
            "domain": domain,
            "message": _message(self, account=account, epoch=epoch),
        }

    # -- ABI ---------------------------------------------------------------------------------------------

    def as_abi(self) -> tuple[Any, ...]:
        """``ISessionKeyValidator.Session`` as an ABI tuple (for ``enableSession`` and ``onInstall``)."""
        return _abi(self)


def _module_domain(chain_id: int, module: str) -> dict[str, Any]:
    """The module's EIP-712 domain on ``chain_id``."""
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": module}


def _resolved(limit: Limit) -> bool:
    """Whether every meter of ``limit`` names its permission by index (and a NATIVE limit has meters)."""
    if limit.kind == LimitKind.NATIVE and not limit.meters:
        return False
    return all(m.permission != SELF and m.target is None for m in limit.meters)


def _resolve(limit: Limit, permissions: list[Permission], owner: int | None) -> Limit:
    """``limit`` with its meters naming permissions by index: SELF is ``owner`` (the permission it was attached
    to), a (target, selector) is that permission; a NATIVE limit without meters meters every permission that can
    carry value."""
    meters: list[Meter] = []
    for meter in limit.meters:
        index = meter.permission
        if meter.target is not None:
            selector = meter.selector or bytes(4)
            found = [
                i for i, p in enumerate(permissions) if p.target == meter.target and p.selector == selector
            ]
            if not found:
                raise ValueError(
                    f"{limit.label} counts calls to 0x{selector.hex()} on {meter.target}, which the session does "
                    "not grant: add that permission"
                )
            index = found[0]
        elif index == SELF:
            if owner is None:
                raise ValueError(f"{limit.label} has a meter on no permission: attach it to one, or name one")
            index = owner
        meters.append(meter.model_copy(update={"permission": index, "target": None, "selector": None}))
    if limit.kind == LimitKind.NATIVE and not meters:
        meters = [Meter(permission=i) for i, p in enumerate(permissions) if p.value_limit]
        if not meters:
            raise ValueError(
                f"{limit.label} counts native value, but no permission of the session can carry any: give a "
                "permission a value limit (value_limit=, --value-limit), or leave the native limit out"
            )
    return limit.model_copy(update={"meters": tuple(meters)})


def encode_at_signature(moment: int, signature: bytes) -> bytes:
    """MODE_AT layout: ``0x03 || claimed time (6 bytes) || any other layout`` (SESSION's included)."""
    if not 0 <= moment < 2**48:
        raise BadInputError(
            f"claimed time {moment} does not fit in 48 bits: give a unix time from 0 to 2**48 - 1"
        )
    return bytes((MODE_AT,)) + moment.to_bytes(6, "big") + signature


def encode_enable_signature(session: Session, owner_signature: bytes, session_signature: bytes) -> bytes:
    """ENABLE layout: ``0x01 || abi.encode(Session, bytes ownerSignature, bytes sessionSignature)``."""
    body = abi_encode(
        [SESSION_ABI_TYPE, "bytes", "bytes"], [session.as_abi(), owner_signature, session_signature]
    )
    return bytes((MODE_ENABLE,)) + body


ECDSA_SIGNATURE_BYTES = 65
_ENABLE_TAIL_PADDING = bytes(-ECDSA_SIGNATURE_BYTES % 32)


def enable_signature_prefix(session: Session, owner_signature: bytes) -> bytes:
    """The ENABLE signature up to the session key's own signature: for every 65-byte ECDSA ``signature``,
    ``encode_enable_signature(session, owner_signature, signature)`` is
    ``prefix + signature + bytes(31)`` (the session signature is the encoding's last field; its length word
    comes just before it and its padding after it). A client encodes the grant once and each operation then
    appends its own signature (:func:`enable_signature_with_prefix`)."""
    encoded = encode_enable_signature(session, owner_signature, bytes(ECDSA_SIGNATURE_BYTES))
    return encoded[: -(ECDSA_SIGNATURE_BYTES + len(_ENABLE_TAIL_PADDING))]


def enable_signature_with_prefix(prefix: bytes, session_signature: bytes) -> bytes:
    """The ENABLE signature of ``prefix`` (from :func:`enable_signature_prefix`) and a 65-byte session
    ``session_signature``; raises :class:`~keyscope.errors.BadInputError` for any other length."""
    if len(session_signature) != ECDSA_SIGNATURE_BYTES:
        raise BadInputError(
            f"a session signature of {len(session_signature)} bytes: the ENABLE prefix is for a 65-byte ECDSA "
            "signature (use encode_enable_signature for others)"
        )
    return prefix + session_signature + _ENABLE_TAIL_PADDING


def encode_use_with_key_signature(session_key: str, signature: bytes) -> bytes:
    """USE_WITH_KEY layout: ``0x02 || session key (20 bytes) || ECDSA signature (65 bytes)``."""
    return bytes((MODE_USE_WITH_KEY,)) + to_bytes(session_key, length=20) + signature


def encode_session_signature(session_id: bytes, signature: bytes, co_signature: bytes = b"") -> bytes:
    """SESSION layout (co-signed sessions): ``0x04 || session id (32) || the key's ECDSA signature (65) || the
    co-signer's (65; empty once the owner removed the co-signer)``."""
    return bytes((MODE_SESSION,)) + to_bytes(session_id, length=32) + signature + co_signature
