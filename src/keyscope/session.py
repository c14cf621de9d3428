"""Sessions as the module stores and hashes them, and the signature layouts that carry them.

A :class:`Session` is a session key, a time window and one or more :class:`Permission` (target, selector,
value limit, :class:`Rule` list). Its id is its EIP-712 struct hash for one account at that account's
epoch (``SessionKeyValidator.sessionId``); the owner grants it off-chain by signing the EIP-712 digest in the
module's domain. Everything here is pure and mirrors ``contracts/SessionKeyValidator.sol``; see
``docs/session-module.md`` for the byte layouts.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .hexutil import Address, HexData, to_bytes
from .hexutil import address_word as _address_word
from .hexutil import word as _word

__all__ = [
    "MAX_PERMISSIONS",
    "MAX_RULE_WORDS",
    "MODE_ENABLE",
    "MODE_USE_WITH_KEY",
    "SESSION_ABI_TYPE",
    "SIGNED",
    "Condition",
    "Permission",
    "Rule",
    "Session",
    "encode_enable_signature",
    "encode_use_with_key_signature",
    "rule_words",
]

MAX_PERMISSIONS = 16
MAX_RULE_WORDS = 31
SIGNED = 0x40
MODE_ENABLE = 0x01
MODE_USE_WITH_KEY = 0x02
UINT256_MAX = 2**256 - 1
GWEI = 10**9
GAS_CAP_MAX_GWEI = 2**40 - 1

DOMAIN_NAME = "keyscope SessionKeyValidator"
DOMAIN_VERSION = "1"

_RULE_TYPE = "Rule(uint8 condition,uint16 offset,uint256[] values)"
_PERMISSION_TYPE = "Permission(address target,bytes4 selector,uint256 valueLimit,Rule[] rules)"
_SESSION_TYPE = (
    "Session(address account,address sessionKey,uint48 validAfter,uint48 validUntil,uint256 maxGasCost,uint32 epoch,"
    "uint256 salt,Permission[] permissions)"
)
RULE_TYPEHASH = keccak(_RULE_TYPE.encode())
PERMISSION_TYPEHASH = keccak((_PERMISSION_TYPE + _RULE_TYPE).encode())
SESSION_TYPEHASH = keccak((_SESSION_TYPE + _PERMISSION_TYPE + _RULE_TYPE).encode())
_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)

SESSION_ABI_TYPE = (
    "(address,uint48,uint48,uint256,uint256,(address,bytes4,uint256,(uint8,uint16,uint256[])[])[])"
)
"""The ABI type of ``ISessionKeyValidator.Session``."""


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


_SYMBOLS = {
    Condition.EQUAL: "==",
    Condition.LESS_THAN_OR_EQUAL: "<=",
    Condition.LESS_THAN: "<",
    Condition.GREATER_THAN_OR_EQUAL: ">=",
    Condition.GREATER_THAN: ">",
    Condition.NOT_EQUAL: "!=",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Rule(_Model):
    """A condition on the 32-byte word at ``offset`` in a call's arguments (after the selector).

    ``values`` are uint256 words: negative reference values of signed rules are stored in two's complement
    (use :meth:`signed_word`). ``condition`` is a :class:`Condition`, ORed with :data:`SIGNED` to compare as
    int256. ``name`` is an optional label (the argument's name) used in error messages; it is not signed.
    """

    condition: int
    offset: int = Field(ge=0, le=0xFFFF)
    values: tuple[int, ...]
    name: str | None = None

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
        op, flags = self.condition & 0x0F, self.condition & 0xF0
        if flags & ~SIGNED or op > Condition.ONE_OF:
            raise ValueError(
                f"unknown condition 0x{self.condition:02x}: use a Condition, optionally | SIGNED"
            )
        count = len(self.values)
        if op <= Condition.NOT_EQUAL and count != 1:
            raise ValueError(f"{Condition(op).name} takes exactly one reference value, got {count}")
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
        """The comparison, without the SIGNED flag."""
        return Condition(self.condition & 0x0F)

    @property
    def is_signed(self) -> bool:
        """Whether the words compare as int256."""
        return bool(self.condition & SIGNED)

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
        """Whether the calldata word ``word`` (as uint256) satisfies this rule, exactly as the module decides."""
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

    def describe(self) -> str:
        """Human form, e.g. ``to == 0xab…`` or ``amount in [1, 10]``."""
        label = self.name or f"word at offset {self.offset}"
        shown = [str(self._as_signed(v)) if self.is_signed else _short(v) for v in self.values]
        if self.op == Condition.IN_RANGE:
            return f"{label} in [{shown[0]}, {shown[1]}]"
        if self.op == Condition.ONE_OF:
            return f"{label} one of {{{', '.join(shown)}}}"
        return f"{label} {_SYMBOLS[self.op]} {shown[0]}"

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct(Rule)``."""
        return keccak(
            RULE_TYPEHASH
            + _word(self.condition)
            + _word(self.offset)
            + keccak(b"".join(_word(v) for v in self.values))
        )

    def as_abi(self) -> tuple[int, int, list[int]]:
        """``ISessionKeyValidator.Rule`` as an ABI tuple."""
        return (self.condition, self.offset, list(self.values))


def _short(value: int) -> str:
    if value >= 2**64:
        return "0x" + value.to_bytes(32, "big").lstrip(b"\x00").hex().rjust(40, "0")
    return str(value)


class Permission(_Model):
    """One function of one contract a session may call, with the value limit and argument rules."""

    target: Address
    selector: HexData = Field(min_length=4, max_length=4)
    value_limit: int = Field(default=0, ge=0, le=UINT256_MAX)
    rules: tuple[Rule, ...] = ()
    function: str | None = None
    """The function's signature, for messages only (``safeMint(address)``)."""

    @property
    def label(self) -> str:
        """``safeMint(address) on 0xab…`` for messages."""
        name = self.function or f"selector 0x{self.selector.hex()}"
        return f"{name} on {self.target}"

    def rule_words(self) -> int:
        """Storage words the module uses for this permission's rules (must be <= MAX_RULE_WORDS)."""
        return sum(rule_words(rule) for rule in self.rules)

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct(Permission)``."""
        return keccak(
            PERMISSION_TYPEHASH
            + _address_word(self.target)
            + self.selector.ljust(32, b"\x00")
            + _word(self.value_limit)
            + keccak(b"".join(rule.struct_hash() for rule in self.rules))
        )

    def as_abi(self) -> tuple[str, bytes, int, list[tuple[int, int, list[int]]]]:
        """``ISessionKeyValidator.Permission`` as an ABI tuple."""
        return (self.target, self.selector, self.value_limit, [rule.as_abi() for rule in self.rules])


def rule_words(rule: Rule) -> int:
    """Storage words one rule takes: 1, plus 1 if its first value is not inline, plus 1 per further value."""
    first = rule.values[0]
    if rule.is_signed:
        signed = Rule._as_signed(first)
        inline = -(2**223) <= signed < 2**223
    else:
        inline = first < 2**224
    return (1 if inline else 2) + len(rule.values) - 1


class Session(_Model):
    """What the owner grants: a session key, a window (``valid_until`` 0 = no expiry) and permissions."""

    session_key: Address
    valid_after: int = Field(default=0, ge=0, lt=2**48)
    valid_until: int = Field(default=0, ge=0, lt=2**48)
    max_gas_cost: int = Field(default=0, ge=0, le=UINT256_MAX)
    """The most one operation may cost the account in gas (wei; every gas limit times maxFeePerGas); 0: no cap.
    The module keeps it in whole gwei; sponsored operations are not capped."""
    salt: int = Field(default=0, ge=0, le=UINT256_MAX)
    permissions: tuple[Permission, ...]

    @model_validator(mode="after")
    def _shape(self) -> Session:
        if not 1 <= len(self.permissions) <= MAX_PERMISSIONS:
            raise ValueError(
                f"a session needs 1 to {MAX_PERMISSIONS} permissions, got {len(self.permissions)}"
            )
        if 0 < self.max_gas_cost < GWEI:
            raise ValueError(
                f"max_gas_cost {self.max_gas_cost} wei is below 1 gwei, the module's unit: give 0 (no cap) or more"
            )
        if self.valid_until and self.valid_until <= self.valid_after:
            raise ValueError(f"valid_until {self.valid_until} must be after valid_after {self.valid_after}")
        seen: set[tuple[str, bytes]] = set()
        for index, permission in enumerate(self.permissions):
            key = (permission.target, permission.selector)
            if key in seen:
                raise ValueError(
                    f"permission {index} repeats {permission.label}: merge the two (ONE_OF / IN_RANGE rules "
                    "express alternatives)"
                )
            seen.add(key)
            if permission.rule_words() > MAX_RULE_WORDS:
                raise ValueError(
                    f"permission {index} ({permission.label}) needs {permission.rule_words()} storage words for "
                    f"its rules; the module allows {MAX_RULE_WORDS}"
                )
        return self

    @property
    def gas_cap(self) -> int:
        """The cap the module enforces, in wei: ``max_gas_cost`` rounded down to whole gwei (0: none)."""
        return min(self.max_gas_cost // GWEI, GAS_CAP_MAX_GWEI) * GWEI

    # -- hashing ---------------------------------------------------------------------------------------

    def struct_hash(self, account: str, epoch: int) -> bytes:
        """The session id: EIP-712 ``hashStruct(Session)`` for ``account`` at ``epoch``."""
        return keccak(
            SESSION_TYPEHASH
            + _address_word(account)
            + _address_word(self.session_key)
            + _word(self.valid_after)
            + _word(self.valid_until)
            + _word(self.max_gas_cost)
            + _word(epoch)
            + _word(self.salt)
            + keccak(b"".join(p.struct_hash() for p in self.permissions))
        )

    def session_id(self, account: str, epoch: int) -> bytes:
        """Alias of :meth:`struct_hash`: what ``SessionKeyValidator.sessionId`` returns."""
        return self.struct_hash(account, epoch)

    @staticmethod
    def domain_separator(chain_id: int, module: str) -> bytes:
        """The module's EIP-712 domain separator on ``chain_id``."""
        return keccak(
            _DOMAIN_TYPEHASH
            + keccak(DOMAIN_NAME.encode())
            + keccak(DOMAIN_VERSION.encode())
            + _word(chain_id)
            + _address_word(module)
        )

    def enable_digest(self, account: str, epoch: int, chain_id: int, module: str) -> bytes:
        """The EIP-712 digest the owner signs to grant this session off-chain."""
        return keccak(
            b"\x19\x01" + self.domain_separator(chain_id, module) + self.struct_hash(account, epoch)
        )

    def typed_data(self, account: str, epoch: int, chain_id: int, module: str) -> dict[str, Any]:
        """The EIP-712 typed data (for ``eth_signTypedData_v4`` or eth-account) of the grant."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Session": [
                    {"name": "account", "type": "address"},
                    {"name": "sessionKey", "type": "address"},
                    {"name": "validAfter", "type": "uint48"},
                    {"name": "validUntil", "type": "uint48"},
                    {"name": "maxGasCost", "type": "uint256"},
                    {"name": "epoch", "type": "uint32"},
                    {"name": "salt", "type": "uint256"},
                    {"name": "permissions", "type": "Permission[]"},
                ],
                "Permission": [
                    {"name": "target", "type": "address"},
                    {"name": "selector", "type": "bytes4"},
                    {"name": "valueLimit", "type": "uint256"},
                    {"name": "rules", "type": "Rule[]"},
                ],
                "Rule": [
                    {"name": "condition", "type": "uint8"},
                    {"name": "offset", "type": "uint16"},
                    {"name": "values", "type": "uint256[]"},
                ],
            },
            "primaryType": "Session",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": module,
            },
            "message": {
                "account": account,
                "sessionKey": self.session_key,
                "validAfter": self.valid_after,
                "validUntil": self.valid_until,
                "maxGasCost": self.max_gas_cost,
                "epoch": epoch,
                "salt": self.salt,
                "permissions": [
                    {
                        "target": p.target,
                        "selector": p.selector,
                        "valueLimit": p.value_limit,
                        "rules": [
                            {"condition": r.condition, "offset": r.offset, "values": list(r.values)}
                            for r in p.rules
                        ],
                    }
                    for p in self.permissions
                ],
            },
        }

    # -- ABI ---------------------------------------------------------------------------------------------

    def as_abi(self) -> tuple[Any, ...]:
        """``ISessionKeyValidator.Session`` as an ABI tuple (for ``enableSession`` and ``onInstall``)."""
        return (
            self.session_key,
            self.valid_after,
            self.valid_until,
            self.max_gas_cost,
            self.salt,
            [p.as_abi() for p in self.permissions],
        )


def encode_enable_signature(session: Session, owner_signature: bytes, session_signature: bytes) -> bytes:
    """ENABLE layout: ``0x01 || abi.encode(Session, bytes ownerSignature, bytes sessionSignature)``."""
    body = abi_encode(
        [SESSION_ABI_TYPE, "bytes", "bytes"], [session.as_abi(), owner_signature, session_signature]
    )
    return bytes((MODE_ENABLE,)) + body


def encode_use_with_key_signature(session_key: str, signature: bytes) -> bytes:
    """USE_WITH_KEY layout: ``0x02 || session key (20 bytes) || ECDSA signature (65 bytes)``."""
    return bytes((MODE_USE_WITH_KEY,)) + to_bytes(session_key, length=20) + signature
