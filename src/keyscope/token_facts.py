"""What a contract says of itself, read from the chain: whether it has code, and an ERC-20 token's ``symbol()``,
``name()`` and ``decimals()``; token amounts at those decimals, for the consent page, the dashboard and the session
report alike (a token limit's use: :func:`scale_limit`).

Everything read here is the contract's own claim, so attacker-influenced text: a token may call itself
``USDC`` or ``<script>``. It is shown as text, never as markup, and never trusted for a decision (the warnings
go by selectors and addresses). The module enforces base units; a token's decimals only help a person read them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from eth_abi import decode as abi_decode

from .chain import Chain
from .errors import CallRevertedError, KeyscopeError, TransportError
from .hexutil import keccak, to_address
from .known_functions import KNOWN_FUNCTIONS, UNLIMITED, added_per_call
from .limits import LimitUsage, owner_label
from .session import Limit, LimitKind, Session

__all__ = [
    "ContractFacts",
    "ScaledLimit",
    "TokenFacts",
    "UncountedAsset",
    "approvals_that_add_up",
    "cached_contract_facts",
    "call_or_none",
    "contract_facts",
    "format_amount",
    "limit_token_address",
    "scale_limit",
    "scaled_by",
    "scaled_usage",
    "uncounted_assets",
    "visible_text",
]

_SYMBOL = keccak(b"symbol()")[:4]
_NAME = keccak(b"name()")[:4]
_DECIMALS = keccak(b"decimals()")[:4]
_SUPPORTS_ERC721 = keccak(b"supportsInterface(bytes4)")[:4] + bytes.fromhex("80ac58cd").ljust(32, b"\x00")
"""ERC-165's question whether a contract is an ERC-721 collection (interface id 0x80ac58cd)."""
_GET_APPROVED = keccak(b"getApproved(uint256)")[:4] + (1).to_bytes(32, "big")
"""A collection's question who is approved for its token 1: a token that answers it (and ``decimals()``) is a hybrid
whose ``approve``/``transferFrom`` may read their number as a token id (attack 378)."""
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
    """What ``address`` is: ``has_code``, ``token`` when it answers like an ERC-20 token, and ``erc721`` when it says
    it is an ERC-721 collection (ERC-165), whose ``approve`` and ``transferFrom`` take a token id where ERC-20's,
    with the same selectors, take an amount (attack 364)."""

    address: str
    has_code: bool
    token: TokenFacts | None
    erc721: bool = False
    token_ids: bool = False
    """It answers a collection's ``getApproved(uint256)`` too, without saying (ERC-165) it is one: a hybrid whose
    ``approve``/``transferFrom`` may take a token id where an amount is read (attack 378)."""


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


def call_or_none(chain: Chain, address: str, data: bytes) -> bytes | None:
    """``eth_call`` of ``data`` on ``address``: its answer, None when it reverts or the node cannot be reached."""
    try:
        return chain.call(address, data)
    except (CallRevertedError, TransportError):
        return None


def contract_facts(chain: Chain, address: str) -> ContractFacts:
    """Read what ``address`` says of itself (its code, and ``symbol()``, ``name()``, ``decimals()``)."""
    target = to_address(address)
    if not chain.get_code(target):
        return ContractFacts(target, False, None)
    decimals_raw = call_or_none(chain, target, _DECIMALS)
    symbol_raw = call_or_none(chain, target, _SYMBOL)
    decimals = None
    if decimals_raw is not None and len(decimals_raw) == 32:
        value = int.from_bytes(decimals_raw, "big")
        decimals = value if value <= 77 else None
    symbol = _text(symbol_raw) if symbol_raw else None
    erc721 = call_or_none(chain, target, _SUPPORTS_ERC721) == (1).to_bytes(32, "big")
    if decimals is None and symbol is None:
        return ContractFacts(target, True, None, erc721)
    name_raw = call_or_none(chain, target, _NAME)
    approved = None if erc721 or decimals is None else call_or_none(chain, target, _GET_APPROVED)
    return ContractFacts(
        target,
        True,
        TokenFacts(symbol, _text(name_raw) if name_raw else None, decimals),
        erc721,
        token_ids=approved is not None and len(approved) == 32,
    )


def format_amount(amount: int, decimals: int | None, symbol: str | None, *, grouped: bool = True) -> str:
    """``1,234.5 USDC`` for 1234500000 with 6 decimals; the integer with separators when decimals are unknown.
    ``grouped=False``: without the thousands separators (``1234.5``, exact, for JSON)."""
    unit = f" {symbol}" if symbol else ""
    group = "," if grouped else ""
    if not decimals:
        return f"{amount:{group}}{unit}"
    whole, fraction = divmod(amount, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0")
    return f"{whole:{group}}{'.' + digits if digits else ''}{unit}"


def cached_contract_facts(chain: Chain) -> Callable[[str], ContractFacts]:
    """``contract(address)``: :func:`contract_facts` on ``chain``, each address read once."""
    cache: dict[str, ContractFacts] = {}

    def contract(address: str) -> ContractFacts:
        if address not in cache:
            cache[address] = contract_facts(chain, address)
        return cache[address]

    return contract


def scaled_by(decimals: int) -> str:
    """Which decimals a token amount was shown at: the token's ``decimals()`` read when the grant is described,
    which an upgradeable token can change (or a token misstate); the module enforces the base units."""
    return f"at the {decimals} decimals the token reports now"


def limit_token_address(limit: Limit, session: Session) -> str | None:
    """The contract whose token amounts an AMOUNT limit counts: when all its meters read a known token function's
    amount (:data:`~keyscope.known_functions.KNOWN_FUNCTIONS`) on that one contract (None otherwise: its amounts
    are base units of nothing known)."""
    if limit.op != LimitKind.AMOUNT:
        return None
    permissions = [session.permissions[m.permission] for m in limit.meters]
    targets = {permission.target for permission in permissions}
    if len(targets) != 1:
        return None
    known = [KNOWN_FUNCTIONS.get(permission.selector) for permission in permissions]
    if all(k is not None and m.offset in k.amounts for k, m in zip(known, limit.meters, strict=True)):
        return next(iter(targets))
    return None


@dataclass(frozen=True)
class UncountedAsset:
    """A permission that moves an asset the session's allowance of that asset does not count (attack 336)."""

    permission: int
    """The permission's index in the session."""
    asset: str
    """``"token"`` (the permission calls a token an allowance counts) or ``"ETH"`` (it may carry value)."""
    allowance: str
    """The allowance that does not count it: :func:`~keyscope.limits.owner_label` of its token's first one."""


def uncounted_assets(session: Session) -> list[UncountedAsset]:
    """The permissions that move an asset past the amount the session's allowance of it shows (attack 336): a
    permission calling a token that an AMOUNT limit counts known token functions' amounts on (an allowance,
    :meth:`~keyscope.policy.Policy.erc20_allowance`'s or a total the grant made) which no such limit of that token
    counts (ERC-1363's ``transferAndCall``, ERC-777's ``send``, ``burn``, an ``approve`` next to a periodic
    allowance, any function); and a permission that may carry ETH which no NATIVE limit counts, when one does count
    others (a grant built without the SDK may meter some of its permissions only). The module counts the calls a
    limit's meters name and no other."""
    # token: (the label of its first allowance, the permissions its limits count)
    allowances: dict[str, tuple[str, set[int]]] = {}
    native: tuple[str, set[int]] | None = None
    for number, limit in enumerate(session.limits):
        counted = {meter.permission for meter in limit.meters}
        if limit.op == LimitKind.NATIVE:
            label, seen = native or (owner_label(limit, number), set())
            native = (label, seen | counted)
        elif (token := limit_token_address(limit, session)) is not None:
            label, seen = allowances.get(token, (owner_label(limit, number), set()))
            allowances[token] = (label, seen | counted)
    found = []
    for index, permission in enumerate(session.permissions):
        allowance = allowances.get(permission.target)
        if allowance is not None and permission.selector != bytes(4) and index not in allowance[1]:
            found.append(UncountedAsset(index, "token", allowance[0]))
        if native is not None and permission.value_limit and index not in native[1]:
            found.append(UncountedAsset(index, "ETH", native[0]))
    return found


def approvals_that_add_up(session: Session) -> list[int]:
    """The permissions whose calls add to an allowance by an amount a rule bounds per call (``increaseAllowance``,
    :func:`~keyscope.known_functions.added_per_call`) that no lifetime AMOUNT limit counts at that amount's offset,
    by index: the allowance grows with every call, as often as the session's window allows, and outlives the session
    (attack 349). A periodic limit starts again each period while the allowances it counted stay (attack 260), so
    only a lifetime one bounds them."""
    counted = {
        (meter.permission, meter.offset)
        for limit in session.limits
        if limit.op == LimitKind.AMOUNT and not limit.period
        for meter in limit.meters
    }
    found = []
    for index, permission in enumerate(session.permissions):
        added = added_per_call(permission)
        if added is not None and (index, added[0]) not in counted:
            found.append(index)
    return found


def scaled_usage(usage: LimitUsage, token: TokenFacts) -> str | None:
    """A token limit's use at the token's decimals, for the words after its base units: ``that is 4.2 of 5 USDC
    used, 0.8 USDC left, at the 6 decimals the token reports now`` (None: the token gives no decimals, or the limit
    is unlimited)."""
    decimals = token.decimals
    if decimals is None or usage.amount >= UNLIMITED:
        return None

    def read(n: int, symbol: str | None = None) -> str:
        return format_amount(n, decimals, symbol)

    return (
        f"that is {read(usage.used)} of {read(usage.amount, token.symbol)} used, "
        f"{read(usage.left, token.symbol)} left, {scaled_by(decimals)}"
    )


@dataclass(frozen=True)
class ScaledLimit:
    """A token limit's use at the decimals its token reported when it was read (the module enforces the base
    units): the amounts as exact decimal strings and ``text`` in words (:func:`scaled_usage`); or, when the token
    gave no decimals to scale by, ``decimals`` and the amounts None and ``text`` saying so."""

    token: str
    symbol: str | None
    decimals: int | None
    amount: str | None
    used: str | None
    left: str | None
    text: str

    def to_dict(self) -> dict[str, object]:
        """The fields as plain JSON values."""
        return {
            "token": self.token,
            "symbol": self.symbol,
            "decimals": self.decimals,
            "amount": self.amount,
            "used": self.used,
            "left": self.left,
            "text": self.text,
        }


def scale_limit(
    usage: LimitUsage, session: Session, contract: Callable[[str], ContractFacts]
) -> ScaledLimit | None:
    """``usage`` of a limit of ``session`` at its token's decimals, read through ``contract``
    (:func:`cached_contract_facts`): None for a limit that counts no known token's amounts (ETH, calls,
    operations, an argument of a function not known to be a token amount) or is unlimited. A token whose
    ``decimals()`` reverts, answers nothing that is a number of decimals (up to 77), or cannot be read gives a
    :class:`ScaledLimit` without decimals whose ``text`` says its amounts stay in base units."""
    address = limit_token_address(usage.limit, session)
    if address is None or usage.amount >= UNLIMITED:
        return None
    try:
        facts = contract(address)
    except KeyscopeError as error:
        return _unscaled(address, None, f"could not be read ({type(error).__name__})")
    token = facts.token
    if facts.erc721:  # its token ids are no amounts at any decimals (attack 371)
        return _unscaled(address, None if token is None else token.symbol, "is an ERC-721 collection")
    text = None if token is None else scaled_usage(usage, token)
    if token is None or token.decimals is None or text is None:
        return _unscaled(address, None if token is None else token.symbol, "gives no usable decimals()")
    decimals = token.decimals

    def exact(n: int) -> str:
        return format_amount(n, decimals, None, grouped=False)

    amounts = (exact(usage.amount), exact(usage.used), exact(usage.left))
    return ScaledLimit(address, token.symbol, decimals, *amounts, text)


def _unscaled(address: str, symbol: str | None, why: str) -> ScaledLimit:
    return ScaledLimit(address, symbol, None, None, None, None, f"the token {address} {why}: base units only")
