"""What a contract says of itself, read from the chain for the words of a grant: whether it has code, and an
ERC-20 token's ``symbol()``, ``name()`` and ``decimals()``.

Everything read here is the contract's own claim, so attacker-influenced text: a token may call itself
``USDC`` or ``<script>``. It is shown as text, never as markup, and never trusted for a decision (the warnings
go by selectors and addresses).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ..chain import Chain
from ..errors import CallRevertedError, TransportError
from ..hexutil import keccak, to_address

__all__ = ["ContractFacts", "TokenFacts", "contract_facts", "format_amount", "module_checker", "visible_text"]

_SYMBOL = keccak(b"symbol()")[:4]
_NAME = keccak(b"name()")[:4]
_DECIMALS = keccak(b"decimals()")[:4]
MAX_TEXT = 40
_HIDDEN = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
"""Unicode categories shown by their code point: controls (newlines), format characters (bidi overrides such as
U+202E, zero-width spaces and joiners), private-use, surrogate and unassigned code points, line and paragraph
separators. Each can make a text read otherwise than it is, or reorder the text after it on the page."""


def visible_text(text: str) -> str:
    """``text`` with every character that shows nothing or reorders what follows written as ``<U+202E>``, so that
    a token's claims read as what they are and cannot turn the words around them."""
    return "".join(f"<U+{ord(c):04X}>" if unicodedata.category(c) in _HIDDEN else c for c in text)


@dataclass(frozen=True)
class TokenFacts:
    """An ERC-20 token's claims: ``symbol`` and ``name`` (cut to 40 characters, hidden and reordering characters
    written as their code points: :func:`visible_text`), ``decimals`` (None when it
    gives none: amounts are then shown in its smallest unit)."""

    symbol: str | None
    name: str | None
    decimals: int | None


@dataclass(frozen=True)
class ContractFacts:
    """What ``address`` is: ``has_code``, and ``token`` when it answers like an ERC-20 token."""

    address: str
    has_code: bool
    token: TokenFacts | None


def _text(raw: bytes) -> str | None:
    if len(raw) >= 64:
        try:
            (value,) = abi_decode(["string"], raw)
        except Exception:  # not an ABI string: bytes32 symbols (old tokens) below
            value = None
        if isinstance(value, str):
            return visible_text(value[:MAX_TEXT]) or None
    if len(raw) == 32:
        return visible_text(raw.rstrip(b"\x00").decode("utf-8", "replace")[:MAX_TEXT]) or None
    return None


def _read(chain: Chain, address: str, selector: bytes) -> bytes | None:
    try:
        return chain.call(address, selector)
    except (CallRevertedError, TransportError):
        return None


def contract_facts(chain: Chain, address: str) -> ContractFacts:
    """Read what ``address`` says of itself (its code, and ``symbol()``, ``name()``, ``decimals()``)."""
    target = to_address(address)
    if not chain.get_code(target):
        return ContractFacts(target, False, None)
    decimals_raw = _read(chain, target, _DECIMALS)
    symbol_raw = _read(chain, target, _SYMBOL)
    decimals = None
    if decimals_raw is not None and len(decimals_raw) == 32:
        value = int.from_bytes(decimals_raw, "big")
        decimals = value if value <= 77 else None
    symbol = _text(symbol_raw) if symbol_raw else None
    if decimals is None and symbol is None:
        return ContractFacts(target, True, None)
    name_raw = _read(chain, target, _NAME)
    return ContractFacts(target, True, TokenFacts(symbol, _text(name_raw) if name_raw else None, decimals))


def format_amount(amount: int, decimals: int | None, symbol: str | None) -> str:
    """``1,234.5 USDC`` for 1234500000 with 6 decimals; the integer with separators when decimals are unknown."""
    unit = f" {symbol}" if symbol else ""
    if not decimals:
        return f"{amount:,}{unit}"
    whole, fraction = divmod(amount, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0")
    return f"{whole:,}{'.' + digits if digits else ''}{unit}"


_IS_MODULE_INSTALLED = keccak(b"isModuleInstalled(uint256,address,bytes)")[:4]
MODULE_TYPES = (1, 2, 3, 4)
"""ERC-7579 module types: validator, executor, fallback handler, hook."""


def module_checker(chain: Chain, account: str) -> Callable[[str], bool]:
    """``is_module(address)``: whether ``address`` is installed on the deployed ``account`` as a module of any
    ERC-7579 type (False while the account has no code)."""
    owner = to_address(account)
    deployed = bool(chain.get_code(owner))

    def is_module(address: str) -> bool:
        if not deployed:
            return False
        for module_type in MODULE_TYPES:
            data = _IS_MODULE_INSTALLED + abi_encode(
                ["uint256", "address", "bytes"], [module_type, to_address(address), b""]
            )
            answer = _read(chain, owner, data)
            if answer is not None and len(answer) >= 32 and int.from_bytes(answer[:32], "big") == 1:
                return True
        return False

    return is_module
