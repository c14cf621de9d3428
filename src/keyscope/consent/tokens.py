"""What a contract says of itself, for the words of a grant: whether it has code, and an ERC-20 token's
``symbol()``, ``name()`` and ``decimals()`` (read by :mod:`keyscope.token_facts`, which the session report shares),
whether a token's claims pass for another token's, and which addresses are the account's modules.

Everything read here is the contract's own claim, so attacker-influenced text: a token may call itself
``USDC`` or ``<script>``. It is shown as text, never as markup, and never trusted for a decision (the warnings
go by selectors and addresses).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from ..accounts.modules import fallback_handler, module_of
from ..chain import Chain
from ..hexutil import to_address
from ..token_facts import ContractFacts, TokenFacts, contract_facts, format_amount, visible_text

__all__ = [
    "ContractFacts",
    "TokenFacts",
    "contract_facts",
    "fallback_checker",
    "format_amount",
    "lookalike_notes",
    "module_checker",
    "visible_text",
]

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


def fallback_checker(chain: Chain, account: str) -> Callable[[str, bytes], bool]:
    """``routes_to(address, selector)``: whether the deployed ``account`` routes ``selector`` to ``address`` as its
    fallback handler, asked as the session module asks
    (:func:`~keyscope.accounts.modules.fallback_handler`; False while the account has no code)."""
    owner = to_address(account)
    deployed = bool(chain.get_code(owner))

    def routes_to(address: str, selector: bytes) -> bool:
        return deployed and fallback_handler(chain, owner, to_address(address), selector)

    return routes_to


def module_checker(chain: Chain, account: str) -> Callable[[str], str | None]:
    """``is_module(address)``: the session module's verdict on ``address`` for the deployed ``account``
    (:func:`~keyscope.accounts.modules.module_of`: a module type's name, ``UNANSWERED``, None when it is not a
    module; None too while the account has no code)."""
    owner = to_address(account)
    deployed = bool(chain.get_code(owner))

    def is_module(address: str) -> str | None:
        return module_of(chain, owner, to_address(address)) if deployed else None

    return is_module
