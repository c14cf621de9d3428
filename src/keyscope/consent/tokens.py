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

from ..accounts.modules import module_of
from ..chain import Chain
from ..errors import CallRevertedError, TransportError
from ..hexutil import keccak, to_address

__all__ = [
    "ContractFacts",
    "TokenFacts",
    "contract_facts",
    "format_amount",
    "lookalike_notes",
    "module_checker",
    "visible_text",
]

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


_LOOKALIKES = {
    # Cyrillic
    "\u0410": "A", "\u0412": "B", "\u0421": "C", "\u0415": "E", "\u041d": "H", "\u0406": "I", "\u0408": "J",
    "\u041a": "K", "\u041c": "M", "\u041e": "O", "\u0420": "P", "\u0405": "S", "\u0422": "T", "\u0425": "X",
    "\u0423": "Y", "\u04ae": "Y", "\u051a": "Q", "\u051c": "W", "\u0430": "a", "\u0441": "c", "\u0435": "e",
    "\u043e": "o", "\u0440": "p", "\u0445": "x", "\u0443": "y", "\u0456": "i", "\u0458": "j", "\u0455": "s",
    "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u04bb": "h", "\u04cf": "l", "\u04c0": "I",
    # Greek
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I", "\u039a": "K",
    "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X",
    "\u03bf": "o", "\u03bd": "v", "\u03b9": "i", "\u03f2": "c", "\u03f3": "j", "\u03f9": "C",
    # Armenian
    "\u0585": "o", "\u057d": "u", "\u0570": "h", "\u0578": "n", "\u0561": "w", "\u0566": "q",
    # Cherokee
    "\u13aa": "A", "\u13f4": "B", "\u13df": "C", "\u13ac": "E", "\u13bb": "H", "\u13e6": "K", "\u13b7": "M",
    "\u13e2": "P", "\u13da": "S", "\u13a2": "T", "\u13b3": "W", "\u13c3": "Z", "\u13de": "L", "\u13a0": "D",
    # Latin letters that are not ASCII
    "\u0131": "i", "\u0237": "j", "\u0269": "i", "\u01c0": "l", "\u0251": "a", "\u0261": "g", "\u028f": "y",
}  # fmt: skip
"""Letters of other scripts (and non-ASCII Latin ones) that read as an ASCII letter in common fonts, with the
letter they pass for. Not every confusable of Unicode's list: the ones a token symbol or name is likely to use."""
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "CJK": "CJK", "IDEOGRAPHIC": "CJK"}
_NOT_SCRIPTS = frozenset(
    {"FULLWIDTH", "HALFWIDTH", "MATHEMATICAL", "MODIFIER", "SMALL", "CIRCLED", "PARENTHESIZED"}
)


def _passes_for(c: str) -> str | None:
    """The ASCII letter or digit the non-ASCII ``c`` reads as (None: it reads as itself)."""
    if c.isascii():
        return None
    if c in _LOOKALIKES:
        return _LOOKALIKES[c]
    folded = unicodedata.normalize("NFKC", c)
    if folded and folded.isascii() and folded.isalnum():
        return folded  # fullwidth, mathematical, ligature and superscript forms of ASCII letters and digits
    return None


def _script(c: str) -> str:
    """The script of the letter ``c``, from its Unicode name (``LATIN``, ``CYRILLIC``, ``GREEK``, ``CJK``...)."""
    if _passes_for(c) is not None and c not in _LOOKALIKES:
        return "LATIN"  # a fullwidth or mathematical A is a form of the Latin A
    words = unicodedata.name(c, "UNKNOWN").split()
    word = next((w for w in words if w not in _NOT_SCRIPTS), words[0])
    return _SCRIPT_GROUPS.get(word, word)


def lookalike_notes(what: str, text: str) -> list[tuple[str, str]]:
    """Warnings on a token's claim ``text`` (``what``: ``the symbol``, ``the name``) that can pass for another:
    each non-ASCII character that reads as an ASCII letter or digit (``danger``: ``USD`` + CYRILLIC CAPITAL LETTER
    ES reads as USDC), named by code point; letters of more than one script (``caution`` when none of them passes
    for an ASCII one). A claim wholly in another script shows as it is, flagged only for its lookalikes."""
    found: list[tuple[str, str]] = []
    lookalikes = [(c, form) for c in dict.fromkeys(text) if (form := _passes_for(c)) is not None]
    if lookalikes:
        named = ", ".join(
            f"U+{ord(c):04X} {unicodedata.name(c, 'UNNAMED')} (read as {form})" for c, form in lookalikes
        )
        which = "looks like an ASCII letter" if len(lookalikes) == 1 else "look like ASCII letters"
        found.append(
            ("danger", f"{what} {text} contains {named}, which {which} but "
             f"{'is' if len(lookalikes) == 1 else 'are'} not: this token may pass for another it is not")
        )  # fmt: skip
    scripts = sorted({_script(c) for c in text if unicodedata.category(c).startswith("L")})
    if len(scripts) > 1 and not found:
        found.append(
            (
                "caution",
                f"{what} {text} mixes letters of {len(scripts)} scripts ({', '.join(s if s == 'CJK' else s.title() for s in scripts)}): "
                "check that this is the token you mean",
            )
        )
    return found


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


def module_checker(chain: Chain, account: str) -> Callable[[str], str | None]:
    """``is_module(address)``: the session module's verdict on ``address`` for the deployed ``account``
    (:func:`~keyscope.accounts.modules.module_of`: a module type's name, ``UNANSWERED``, None when it is not a
    module; None too while the account has no code)."""
    owner = to_address(account)
    deployed = bool(chain.get_code(owner))

    def is_module(address: str) -> str | None:
        return module_of(chain, owner, to_address(address)) if deployed else None

    return is_module
