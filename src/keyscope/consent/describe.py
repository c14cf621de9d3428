"""A grant in words: what the owner reads before signing, and the warnings on dangerous grants.

Everything is built from tables, so that a new kind of permission, rule or limit slots in with its words:

* :data:`KNOWN_FUNCTIONS` (from :mod:`keyscope.known_functions`) -- functions known by their selector (ERC-20 ``transfer``/``approve``/..., ERC-721
  ``setApprovalForAll``/...): their standard argument names, which arguments are token amounts, and the checks
  that raise warnings. Warnings go by selector and argument position, never by the names a request gives (those
  are the dapp's words, not signed).
* :data:`SESSION_PARTS` -- the session-wide lines (window, gas cap, paymasters, lifetime limits, messages it may
  sign as the account, co-signer).

The result is a :class:`GrantDescription`: JSON for the consent page and the dashboard, which render every
string as text (never as markup): function names, rule labels and token symbols are attacker-influenced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..accounts.modules import UNANSWERED
from ..artifacts import KNOWN_ENTRY_POINTS
from ..clock import LAST_READABLE_TIME, utc_text
from ..errors import InvalidAbiError
from ..hexutil import ZERO_ADDRESS, to_address
from ..known_functions import (
    ERC721_FUNCTIONS,
    KNOWN_FUNCTIONS,
    UNLIMITED,
    CountedWords,
    KnownFunction,
    counted_words,
    function_warnings,
    known_function,
)
from ..limits import LimitUsage, enforced_amount, owner_label, period_note, reset_text
from ..passing_for import (
    LONGEST_NAME,
    carried_calls,
    lookalike_addresses,
    overlong_name,
    rule_is_address,
    shares_worth,
    token_id_danger,
)
from ..policy import AbiFunction, AbiParam, AbiType, parse_signature, word_type_of
from ..session import ArgType, Limit, LimitKind, Meter, Permission, Rule, Session
from ..signing_words import co_signer_line, signing_lines, signing_warnings
from ..standing_approvals import StandingApprovals, approval_risk
from ..targets import lifts_anything
from ..token_facts import (
    approvals_that_add_up,
    limit_token_address,
    scaled_by,
    scaled_usage,
    uncounted_assets,
)
from .tokens import ContractFacts, TokenFacts, format_amount, lookalike_notes, visible_text

__all__ = [
    "KNOWN_FUNCTIONS",
    "SESSION_PARTS",
    "Facts",
    "GrantDescription",
    "GrantWarning",
    "KnownFunction",
    "PermissionWords",
    "describe_session",
    "limit_usage_words",
]

NATIVE = "ETH"
NO_ACCOUNT = "0x" + "00" * 20
"""The account of a request described before its wallet connects (ERC-7715 without ``address``): never "this
account" in the words, since a rule naming the zero address names no one's account."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class GrantWarning(_Model):
    """A warning the owner must read: ``danger`` for grants that can lose the account's assets, ``caution``
    for what is broader than most dapps need; ``permission`` is the permission's index (None: the session)."""

    level: Literal["danger", "caution"]
    text: str
    permission: int | None = None


class PermissionWords(_Model):
    """One permission in words."""

    index: int
    contract: str
    contract_label: str
    function: str
    rules: tuple[str, ...]
    value: str


class GrantDescription(_Model):
    """A session in words. Times are unix seconds (the page shows them in the reader's local time); ``window``
    says them in UTC for text outputs."""

    account: str
    account_note: str
    chain_id: int
    session_key: str
    valid_after: int
    valid_until: int
    window: str
    gas: str
    paymasters: tuple[str, ...]
    limits: tuple[str, ...]
    signing: tuple[str, ...]
    cosigner: str | None
    permissions: tuple[PermissionWords, ...]
    warnings: tuple[GrantWarning, ...]

    def lines(self) -> list[str]:
        """The description as plain text lines (for a terminal)."""
        # a request naming no account is described with NO_ACCOUNT standing for it: not an address to show
        account = "not named by the request" if self.account == NO_ACCOUNT else self.account
        out = [f"Account {account}{self.account_note}, chain {self.chain_id}", self.window, self.gas]
        out += [f"Paymasters not capped: {p}" for p in self.paymasters]
        out += self.limits
        out += self.signing
        if self.cosigner:
            out.append(self.cosigner)
        for words in self.permissions:
            out.append(f"{words.function} on {words.contract} ({words.contract_label})")
            out += [f"  - {rule}" for rule in words.rules]
            out.append(f"  - {words.value}")
        out += [f"{w.level.upper()}: {w.text}" for w in self.warnings]
        return out


@dataclass(frozen=True)
class Facts:
    """What the chain says, as the describer needs it: ``contract(address)`` (code and token claims) and
    ``is_module(address)``: the session module's verdict on ``address`` for the account (a module type's name, or
    :data:`~keyscope.accounts.modules.UNANSWERED` when the account does not answer the validator question; None when
    it is not a module). ``module``: the session module's address, when known."""

    contract: Callable[[str], ContractFacts]
    is_module: Callable[[str], str | None]
    entry_point: str | None = None
    module: str | None = None
    is_sponsor: Callable[[str], bool] | None = None
    """Whether a paymaster is known to charge the account nothing (keyscope's ``SponsorPaymaster``); None: not asked."""
    routes_to: Callable[[str, bytes], bool] | None = None
    """Whether the account routes a selector to a contract as its fallback handler (the module refuses a call
    permission on that pair, attack 257); None: not asked."""
    standing_approvals: Callable[[Sequence[str]], StandingApprovals] | None = None
    """The approvals the account already gave the contracts named (:func:`~keyscope.standing_approvals.
    standing_approvals`, attack 357); None: not asked."""
    call: Callable[[str, bytes], bytes | None] | None = None
    """``call(address, data)``: an ``eth_call`` at page time, its answer or None when it reverts (an ERC-4626 vault's
    ``previewMint``/``previewRedeem`` of a bound in shares, attack 384); None: not asked."""


# --------------------------------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------------------------------


def _signed(word: int) -> int:
    return word - 2**256 if word >> 255 else word


@dataclass(frozen=True)
class _Context:
    account: str
    session_key: str
    token: ContractFacts | None
    amount_offsets: tuple[int, ...]
    addresses: bool = True
    """Whether a uint160 word is an address (call arguments typed ``address``); typed data says per field."""
    targets: tuple[str, ...] = ()
    """The contracts the session's permissions call: an address a rule lists that passes for one is a danger."""


def _value_text(word: int, rule: Rule, ctx: _Context) -> str:
    code = rule.arg_type
    if code == ArgType.ADDRESS and ctx.addresses:
        address = to_address(word.to_bytes(32, "big")[12:])
        if address == ctx.account and address != NO_ACCOUNT:
            return f"{address} (this account)"
        if address == ctx.session_key:
            return f"{address} (the session's own key)"
        return address
    if code == ArgType.BOOL:
        return "true" if word else "false"
    kind, padding = code >> 5, code & 0x1F
    if kind == 2:
        return "0x" + word.to_bytes(32, "big")[: 32 - padding].hex()
    if kind == 1:
        return f"{_signed(word):,}"
    token = ctx.token.token if ctx.token is not None else None
    if rule.offset in ctx.amount_offsets and token is not None:
        if word >= UNLIMITED:
            return f"an unlimited amount of {token.symbol or 'the token'}"
        return f"{format_amount(word, token.decimals, token.symbol)} ({_base_units(word)})"
    return f"{word:,}"


def _base_units(amount: int) -> str:
    return f"{amount:,} base unit{'' if amount == 1 else 's'}"


def _rule_words(rule: Rule, ctx: _Context) -> str:
    """What ``rule`` asks (:data:`~keyscope.session.CONDITION_WORDS`), its values shown as the owner reads them
    (token amounts, this account, the session's own key). A token amount shows the base units the module enforces
    with it, and the decimals it was scaled by."""
    shown = [_value_text(v, rule, ctx) for v in rule.values]
    token = ctx.token.token if ctx.token is not None else None
    scaled = [
        text for text, v in zip(shown, rule.values, strict=True) if text.endswith(f" ({_base_units(v)})")
    ]
    if not scaled or token is None or token.decimals is None:
        return rule.requirement(shown)
    if len(shown) == 1:
        return rule.requirement([f"{shown[0][:-1]} {scaled_by(token.decimals)})"])
    return f"{rule.requirement(shown)}, {scaled_by(token.decimals)}"


_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
"""What a rule's label must be to name its argument on the page: a name, as a signature's own argument names are.
A label is the dapp's unsigned text; any other (``to (address) must be 0x... (this account); referrer``) would write
the page's own words, a rule of its own and the mark of the owner's account, before the rule it labels."""
_POSITIONAL = re.compile(r"arg[0-9]+")
"""The page's own names of unnamed arguments by position (``arg1``), which a rule's label may not take."""


def _function(
    permission: Permission, erc721: bool = False
) -> tuple[str, AbiFunction | None, KnownFunction | None]:
    """The function as the owner reads it: its signature with argument names (checked against the selector),
    the parsed function, and what is known of it by selector (ERC-721's on a target that says it is a collection,
    ``erc721``)."""
    known = known_function(permission.selector, erc721)
    parsed: AbiFunction | None = None
    if known is not None:
        # a function known by selector is shown as the table has it, whatever label the request gives: four bytes
        # collide (``sign_szabo_bytecode(bytes16,uint128)`` is ``approve``'s 0x095ea7b3), and its warnings and token
        # amounts go by the selector
        parsed = parse_signature(known.signature)
    elif permission.function is not None and overlong_name(permission.function) is None:
        try:
            parsed = parse_signature(permission.function)
        except InvalidAbiError:
            parsed = None
        if parsed is not None and parsed.selector != permission.selector:
            parsed = None  # a label that is not this selector's function: not shown as if it were
        elif parsed is not None:
            parsed = parsed.with_distinct_names()  # a name twice among siblings labels two words (attack 413)
    if parsed is None:
        return f"an unknown function (selector 0x{permission.selector.hex()})", None, known
    names = {
        rule.offset: rule.name
        for rule in permission.rules
        if rule.name and _IDENTIFIER.fullmatch(rule.name) and overlong_name(rule.name) is None
    }
    standard = parse_signature(known.signature) if known is not None else None
    params: list[AbiParam] = []
    explicit = {param.name for param in parsed.inputs if param.name}
    used: set[str] = set()
    offset = 0
    for index, param in enumerate(parsed.inputs):
        # a known function's arguments carry their standard names: names are not part of the selector, and a
        # request's own (``transferFrom(address to, address from, ...)``) would put one argument's rule on another
        name = standard.inputs[index].name if standard else param.name or names.get(offset) or ""
        if not standard and name and _names_another(name, index, bool(param.name), explicit, used):
            name = ""
        used.add(name)
        params.append(AbiParam(name, param.type))
        offset += param.type.head_size
    shown = ", ".join(f"{p.type.named()} {p.name}".strip() for p in params)
    return f"{parsed.name}({shown})", AbiFunction.of(parsed.name, params), known


def _names_another(name: str, index: int, own: bool, explicit: set[str], used: set[str]) -> bool:
    """Whether ``name``, the request's for argument ``index`` (``own``: the signature's, else a rule's label), is
    another argument's: one named before it, one the signature names (for a rule's label), or the page's own name of
    another argument by position (``arg1`` on the first)."""
    return (
        name in used
        or (not own and name in explicit)
        or (_POSITIONAL.fullmatch(name) is not None and name != f"arg{index}")
    )


def _rule_label(rule: Rule, function: AbiFunction | None) -> str:
    located = function.word_at(rule.offset) if function is not None else None
    if located is not None:
        label, kind = located
        if word_type_of(kind.name) == rule.arg_type:
            return f"{label} ({kind.name})"
        if _misread(rule, function) is not None:
            return f"the word of {label} ({kind.name}) read as a {ArgType.name(rule.arg_type)}"
    return f"the {ArgType.name(rule.arg_type)} at byte {rule.offset} of the arguments"


def _misread(rule: Rule, function: AbiFunction | None) -> tuple[str, AbiType] | None:
    """``(label, type)`` of the argument whose word ``rule`` reads otherwise than the argument's type does
    (:meth:`AbiFunction.misread_at`); the module compares whole words, so the rule's values do not say what it lets
    the argument be."""
    return (
        function.misread_at(rule.offset, rule.arg_type, rule.condition, rule.values)
        if function is not None
        else None
    )


_FIXED_POINT = re.compile(r"u?fixed\d+x(\d+)")
"""A fixed-point ABI type (``fixed168x10``, a Vyper ``decimal``): its word is the integer ``value * 10**N``."""


def _fixed_point_decimals(rule: Rule, function: AbiFunction | None) -> int | None:
    """The ``N`` of the ``fixedMxN`` / ``ufixedMxN`` argument whose word ``rule`` reads (None: no such argument)."""
    located = function.word_at(rule.offset) if function is not None else None
    match = _FIXED_POINT.fullmatch(located[1].name) if located is not None else None
    return int(match.group(1)) if match is not None else None


def _fixed_point_text(word: int, rule: Rule, decimals: int) -> str:
    """A fixed-point argument's value as the target reads it, and the word the module compares (attack 363: the
    word alone, "at least 2,000", read as the value, which is 0.0000002 for a ``fixed168x10``)."""
    number = _signed(word) if rule.is_signed else word
    shown = format_amount(abs(number), decimals, None)
    return f"{'-' if number < 0 else ''}{shown} (the word {number:,})"


def _rule_text(rule: Rule, function: AbiFunction | None, ctx: _Context) -> str:
    """What ``rule`` asks, as the owner reads it; a rule that reads its argument otherwise (:func:`_misread`) shows
    its values as the whole 32-byte words the module compares; one on a fixed-point argument shows the values the
    target reads, at the type's decimals, with the words."""
    if _misread(rule, function) is not None:
        return rule.requirement([f"the word 0x{value:064x}" for value in rule.values])
    decimals = _fixed_point_decimals(rule, function)
    if decimals is not None:
        return rule.requirement([_fixed_point_text(value, rule, decimals) for value in rule.values])
    return _rule_words(rule, replace(ctx, addresses=_is_address(rule, function)))


def _rule_warning(number: int, rule: Rule, function: AbiFunction | None, shown: str) -> str | None:
    """The danger of a rule that binds no argument of a known function as the function reads it: on a dynamic
    argument's head word, on a word it reads as another type (:func:`_misread`), or where no argument starts."""
    if function is None:
        return None
    dynamic = function.dynamic_at(rule.offset)
    if dynamic is not None:
        label, kind = dynamic
        return (
            f"{shown}: rule {number} reads the head word of `{label}` ({kind.name}), a dynamic argument: that word "
            f"is the offset of its data, which the session picks, so the rule binds nothing of `{label}` "
            "(keyscope's Policy refuses rules on dynamic arguments)"
        )
    misread = _misread(rule, function)
    if misread is not None:
        label, kind = misread
        return (
            f"{shown}: rule {number} reads `{label}` ({kind.name}) as a {ArgType.name(rule.arg_type)}, which reads "
            f"its word otherwise or takes words a {kind.name} cannot be (a target built with ABI coder v1 cleans "
            f"them into other values): what the rule lets `{label}` be is not what its values say as a "
            f"{ArgType.name(rule.arg_type)} (shown as the whole words the chain compares; keyscope's Policy types "
            "each rule as its argument)"
        )
    if function.word_at(rule.offset) is None:
        return (
            f"{shown}: rule {number} reads the 32 bytes at byte {rule.offset} of the arguments, where no argument "
            "of the function starts: it binds no argument as the function reads them (keyscope's Policy puts each "
            "rule on an argument)"
        )
    return None


def _is_address(rule: Rule, function: AbiFunction | None) -> bool:
    """Whether a rule's 160-bit word is an address (:func:`~keyscope.passing_for.rule_is_address`)."""
    return rule_is_address(rule, function)


def _permission_words(
    index: int, permission: Permission, ctx_base: _Context, facts: Facts, counted: CountedWords
) -> tuple[PermissionWords, list[GrantWarning]]:
    warnings: list[GrantWarning] = []
    contract = facts.contract(permission.target)
    if permission.selector == bytes(4):
        limit = permission.value_limit
        value = f"each transfer may send at most {format_amount(limit, 18, NATIVE)}"
        return (
            PermissionWords(
                index=index,
                contract=permission.target,
                contract_label=_contract_label(contract),
                function="plain transfers of ETH (no function call)",
                rules=(),
                value=value,
            ),
            warnings,
        )
    shown, function, known = _function(permission, contract.erc721)
    is_token = contract.token is not None and contract.token.decimals is not None
    ctx = _Context(
        ctx_base.account,
        ctx_base.session_key,
        contract,
        known.amounts if known is not None and is_token else (),
    )
    rules = tuple(
        f"{_rule_label(rule, function)} {_rule_text(rule, function, ctx)}" for rule in permission.rules
    )
    if not rules:
        rules = ("any arguments: no rule limits them",)
    worth = shares_worth(permission, facts.call, facts.contract) if facts.call is not None else None
    if worth is not None and worth.known:
        rules += (worth.text,)
    elif worth is not None:
        warnings.append(GrantWarning(level="caution", text=f"{shown}: {worth.text}", permission=index))
    value = (
        "no ETH may be sent with these calls"
        if permission.value_limit == 0
        else f"each call may send at most {format_amount(permission.value_limit, 18, NATIVE)}"
    )
    warnings += [
        GrantWarning(level=lvl, text=f"{shown}: {text}", permission=index)
        for lvl, text in function_warnings(permission, is_token, contract.erc721, counted)
    ]
    if permission.selector in ERC721_FUNCTIONS and contract.has_code and not contract.erc721 and not is_token:
        # a collection need not answer ERC-165 (older ones answer an earlier draft's id): with no decimals() to say
        # it is an ERC-20 token either, the number may be a token id (attack 372)
        warnings.append(
            GrantWarning(
                level="caution",
                text=f"{shown}: {permission.target} gives no ERC-20 decimals() and does not say (ERC-165) it is an "
                "ERC-721 collection; if it is one, the uint256 is a token id, not an amount, and each call "
                "approves or moves one token, any whose id the rules allow",
                permission=index,
            )
        )
    # a hybrid ERC-20/ERC-721 token reads a number up to its minted count as a token id (attack 378)
    hybrid = token_id_danger(permission, contract)
    if hybrid is not None:
        warnings.append(GrantWarning(level="danger", text=f"{shown}: {hybrid}", permission=index))
    warnings += [
        GrantWarning(level="danger", text=f"{shown}: {text}", permission=index)
        for text in lookalike_addresses(
            permission, function, ctx_base.account, ctx_base.session_key, ctx_base.targets
        )
    ]
    for number, rule in enumerate(permission.rules):
        danger = _rule_warning(number, rule, function, shown)
        if danger is not None:
            warnings.append(GrantWarning(level="danger", text=danger, permission=index))
    carried = carried_calls(permission, function, contract.erc721)
    if carried is not None:
        # a dispatch under a name the table does not know (attack 376), its calls in bytes, a string or an array of
        # words (attack 408): the page cannot tell what those bytes are
        warnings.append(GrantWarning(level="caution", text=f"{shown}: {carried}", permission=index))
    too_long = overlong_name(permission.function) if known is None else None
    if too_long is not None:
        # a name of any length is the dapp's text: shown whole it would hide what follows it (attack 389)
        warnings.append(
            GrantWarning(
                level="caution",
                text=f"{permission.target}: the request names this function with a name of {too_long:,} characters, "
                f"too long to show (more than {LONGEST_NAME}): it is shown by its selector, and its rules by their "
                "places in the arguments",
                permission=index,
            )
        )
    if shown.startswith("an unknown function"):
        warnings.append(
            GrantWarning(
                level="caution",
                text=f"{permission.target}: the function is known only by its selector",
                permission=index,
            )
        )
    if not contract.has_code:
        warnings.append(
            GrantWarning(
                level="caution",
                text=f"{permission.target} has no code: a call to it does nothing yet",
                permission=index,
            )
        )
    return (
        PermissionWords(
            index=index,
            contract=permission.target,
            contract_label=_contract_label(contract),
            function=shown,
            rules=rules,
            value=value,
        ),
        warnings,
    )


def _contract_label(facts: ContractFacts) -> str:
    if not facts.has_code:
        return "an address with no code"
    token = facts.token
    if token is None:
        return "a contract"
    named = " ".join(part for part in (token.name, f"({token.symbol})" if token.symbol else None) if part)
    kind = "a token" if token.decimals is not None else "a contract"
    return f"{kind} that calls itself {named}" if named else kind


# --------------------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------------------


def _window(session: Session) -> str:
    start = "now" if not session.valid_after else utc_text(session.valid_after)
    end = "never expires" if not session.valid_until else f"until {utc_text(session.valid_until)}"
    return f"Valid from {start}, {end}"


def _gas(session: Session) -> str:
    """The cap on one operation's gas, and whether a budget bounds all of them (a gas limit, shown with the
    limits): without one, every operation may cost up to the cap, as many as the window allows."""
    if not session.gas_cap:
        return "No cap on what one operation may cost in gas"
    cap = f"One operation may cost at most {format_amount(session.gas_cap, 18, NATIVE)} in gas"
    if any(limit.op == LimitKind.GAS for limit in session.limits):
        return cap
    return f"{cap}, and no gas budget bounds all operations together"


def _limit_amount(limit: Limit, session: Session, facts: Facts | None) -> str:
    """A limit's signed amount in its unit: ETH for NATIVE and GAS; the token's own decimals and symbol for an AMOUNT
    limit whose meters all read a known token function's amount on one token; else base units (never the grant's
    own, unsigned, unit and decimals: a dapp could make a large budget read small through them)."""
    amount = limit.stored_amount
    if amount >= UNLIMITED:
        return "an unlimited amount"
    if limit.op in (LimitKind.NATIVE, LimitKind.GAS):
        return format_amount(amount, 18, NATIVE)
    if limit.op in (LimitKind.CALLS, LimitKind.OPERATIONS):
        return f"{amount:,} {'calls' if limit.op == LimitKind.CALLS else 'operations'}"
    token = _limit_token(limit, session, facts)
    if token is not None and token.decimals is not None:
        shown = format_amount(amount, token.decimals, token.symbol)
        return f"{shown} ({_base_units(amount)} {scaled_by(token.decimals)})"
    return _base_units(amount)


def _limit_token(limit: Limit, session: Session, facts: Facts | None) -> TokenFacts | None:
    """The token whose amounts an AMOUNT limit counts, as the chain says it is now: when all its meters read a known
    token function's amount on one token with decimals (None otherwise: its amounts are base units of nothing
    known)."""
    address = limit_token_address(limit, session) if facts is not None else None
    if facts is None or address is None:
        return None
    contract = facts.contract(address)
    token = contract.token
    # a collection's token ids are no amounts at any decimals, whatever ``decimals()`` it answers (attack 371)
    return token if token is not None and token.decimals is not None and not contract.erc721 else None


def limit_usage_words(usage: LimitUsage, session: Session, facts: Facts | None) -> str:
    """What a limit of ``session`` has used and has left, for its owner: the amounts the module counts (base units
    of a token, ETH, calls; :func:`~keyscope.limits.enforced_amount`), a token's amounts also at the decimals and
    symbol the chain gives now, the grant's ``name`` marked as the dapp's, when the period resets to the second
    (:func:`~keyscope.limits.reset_text`, as the report gives it) and how a periodic limit counts
    (:func:`~keyscope.limits.period_note`). Never the grant's ``unit`` and ``decimals``
    (:meth:`~keyscope.session.Limit.show`): they are not signed, and a dapp could make a limit read far smaller than
    it is through them."""
    limit = usage.limit
    text = (
        f"{owner_label(limit, usage.index)}: {enforced_amount(limit, usage.used, unit=False)} of "
        f"{enforced_amount(limit, usage.amount)} used {limit.per}, {enforced_amount(limit, usage.left)} left"
    )
    token = _limit_token(limit, session, facts)
    scaled = scaled_usage(usage, token) if token is not None else None
    if scaled is not None:
        text += f" ({scaled})"
    if usage.resets_at is not None:
        text += f"; resets {reset_text(usage.resets_at)}"
    # counted in fixed periods back to back, as the page and the report say (attack 421)
    return visible_text(text + period_note(limit, session.valid_after))


def _collection(permission: Permission, facts: Facts | None) -> bool:
    """Whether ``permission``'s target says it is an ERC-721 collection (ERC-165), whose ``approve`` and
    ``transferFrom`` take a token id where ERC-20's take an amount: every line naming them says so (attack 371)."""
    return facts is not None and facts.contract(permission.target).erc721


def _meter_text(limit: Limit, meter: Meter, session: Session, facts: Facts | None = None) -> str:
    permission = session.permissions[meter.permission]
    shown, function, _ = _function(permission, _collection(permission, facts))
    where = f"{shown} on {permission.target}"
    if limit.op != LimitKind.AMOUNT:
        return where
    # the one word the meter counts, named as a rule's is: a static struct or fixed-size array sits inline, a word per
    # member or element, so a meter at its start counts its first only (``amounts[0]``, never "amounts (uint256[2])");
    # a dynamic argument's head word is named by the argument, whose danger says what that word is
    located = None
    if function is not None:
        located = function.word_at(meter.offset) or function.dynamic_at(meter.offset)
    if located is not None:
        label, kind = located
        return f"its argument {label} ({kind.name}) in {where}"
    return f"the word at byte {meter.offset} of the arguments of {where}"


def _meter_warnings(session: Session, facts: Facts | None = None) -> list[GrantWarning]:
    """The danger of an argument total (an AMOUNT limit) whose meter counts no unsigned number of a known function as
    the function reads it: the head word of a dynamic argument (the offset of its data, which the session picks, so
    any amount passes at 64 or so a call), a word it reads otherwise (a signed number, bytes, a bool) or where no
    argument starts. The module adds up whatever word sits at the meter's offset (attack 255, for limits);
    keyscope's ``arg(...).total`` totals unsigned integer arguments only."""
    warnings = []
    for number, limit in enumerate(session.limits):
        if limit.op != LimitKind.AMOUNT:
            continue
        for meter in limit.meters:
            if not 0 <= meter.permission < len(session.permissions):
                continue
            permission = session.permissions[meter.permission]
            collection = _collection(permission, facts)
            shown, function, _ = _function(permission, collection)
            if function is None:
                continue
            dynamic = function.dynamic_at(meter.offset)
            located = function.word_at(meter.offset)
            if (
                collection
                and permission.selector in ERC721_FUNCTIONS
                and located is not None
                and (located[0] == "tokenId")
            ):
                why = (
                    "adds up token ids, not tokens: this ERC-721 collection takes a token id where ERC-20's function "
                    "takes an amount, so the limit bounds no number of tokens (token 0 counts nothing, and every "
                    "token of the account whose ids add up to the limit may go)"
                )
            elif dynamic is not None:
                label, kind = dynamic
                why = (
                    f"counts the head word of `{label}` ({kind.name}), a dynamic argument: that word is the offset of "
                    f"its data, which the session picks, so the limit bounds nothing of `{label}`"
                )
            elif located is None:
                why = (
                    f"counts the 32 bytes at byte {meter.offset} of the arguments, where no argument of the function "
                    "starts: it bounds no argument as the function reads them"
                )
            elif not located[1].name.startswith("uint"):
                why = (
                    f"counts `{located[0]}` ({located[1].name}), which is no unsigned number: its word is not the "
                    "amount it reads as"
                )
            else:
                continue
            warnings.append(
                GrantWarning(
                    level="danger",
                    # the limit's name is the dapp's unsigned text: quoted, cut, and said to be the dapp's, as the
                    # dashboard names it (attack 139), never as the page's own words
                    text=f"{shown}: {owner_label(limit, number)} {why} (keyscope's arg(...).total totals unsigned "
                    "integer arguments only)",
                    permission=meter.permission,
                )
            )
    return warnings


def _uncounted_warnings(session: Session, facts: Facts | None = None) -> list[GrantWarning]:
    """The danger of a permission that moves an asset the session's allowance of it does not count
    (:func:`~keyscope.token_facts.uncounted_assets`, attack 336): the asset leaves through that permission past the
    amount the page shows."""
    warnings = []
    for found in uncounted_assets(session):
        permission = session.permissions[found.permission]
        shown = (
            _function(permission, _collection(permission, facts))[0]
            if permission.selector != bytes(4)
            else "plain transfers of ETH"
        )
        if found.asset == "token":
            text = (
                f"{shown} on {permission.target}: {found.allowance} does not count its calls, so the session may "
                "move this token through it beyond that amount"
            )
        else:
            text = (
                f"{shown} on {permission.target}: {found.allowance} does not count the ETH its calls send, so the "
                "session may send ETH through it beyond that amount"
            )
        warnings.append(GrantWarning(level="danger", text=text, permission=found.permission))
    return warnings


ADDS_UP = (
    "each call adds to the spender's allowance: its rule bounds one call's amount, not the allowance, which grows "
    "with every call, as often as the session's window allows, and stays after the session ends"
)
"""What an approval whose calls add up does (:func:`~keyscope.token_facts.approvals_that_add_up`, attack 349)."""


def _adding_warnings(session: Session, facts: Facts | None = None) -> list[GrantWarning]:
    """The danger of a permission whose calls add to an allowance, bounded per call and counted by no allowance over
    the session's life (attack 349)."""
    return [
        GrantWarning(
            level="danger",
            text=(
                f"{_function(session.permissions[index], _collection(session.permissions[index], facts))[0]} on "
                f"{session.permissions[index].target}: {ADDS_UP}"
            ),
            permission=index,
        )
        for index in approvals_that_add_up(session)
    ]


def _limits(session: Session, facts: Facts | None = None) -> tuple[str, ...]:
    """One line per lifetime limit, from the signed fields only (kind, amount, period, the metered permissions)."""
    if not session.limits:
        return (
            "No limits over the session's life: each call's own limits apply, as often as the window allows",
        )
    lines = []
    for limit in session.limits:
        amount, per = _limit_amount(limit, session, facts), limit.per
        if limit.op == LimitKind.OPERATIONS:
            lines.append(f"At most {amount} {per}{period_note(limit, session.valid_after)}")
        elif limit.op == LimitKind.GAS:
            lines.append(
                f"At most {amount} in gas fees {per}, all operations together{period_note(limit, session.valid_after)}"
            )
        else:
            what = {LimitKind.NATIVE: "sent by", LimitKind.AMOUNT: "counted from", LimitKind.CALLS: "of"}[
                limit.op
            ]
            counted = (
                "; ".join(_meter_text(limit, m, session, facts) for m in limit.meters)
                or "no permission (it counts nothing)"
            )
            lines.append(
                f"At most {amount} {per}, {what} all of: {counted}{period_note(limit, session.valid_after)}"
            )
    return tuple(lines)


def _signing(session: Session, account: str) -> tuple[str, ...]:
    contexts = {
        is_address: _Context(account, session.session_key, None, (), addresses=is_address)
        for is_address in (True, False)
    }
    return signing_lines(session, lambda rule, kind: _rule_words(rule, contexts[kind == "address"]))


SESSION_PARTS: dict[str, Callable[..., Any]] = {
    "window": _window,
    "gas": _gas,
    "limits": _limits,
    "signing": _signing,
    "cosigner": co_signer_line,
}
"""The session-wide lines, by part (replace an entry to give a new session feature its words)."""


def _session_warnings(session: Session, facts: Facts, account: str) -> list[GrantWarning]:
    warnings = []
    if not session.valid_until:
        warnings.append(
            GrantWarning(level="danger", text="This session never expires: it lasts until you revoke it")
        )
    elif session.valid_until > LAST_READABLE_TIME:
        warnings.append(
            GrantWarning(
                level="danger",
                text=f"This session ends only after the year 9999 ({utc_text(session.valid_until)}): in effect it "
                "never expires, it lasts until you revoke it",
            )
        )
    if not session.gas_cap:
        warnings.append(
            GrantWarning(
                level="danger",
                text="No cap on gas: one operation may make the account pay any amount in fees",
            )
        )
    warnings += [GrantWarning(level="danger", text=text) for text in signing_warnings(session)]
    if facts.is_sponsor is not None and lifts_anything(session):
        warnings += [
            GrantWarning(
                level="danger",
                text=f"{paymaster} is listed as a paymaster the gas cap does not bind, and it is not keyscope's "
                "SponsorPaymaster: if it charges this account (an ERC-20 paymaster the account approved), the session "
                "may make it charge any amount in fees",
            )
            for paymaster in session.paymasters
            if not facts.is_sponsor(paymaster)
        ]
    for index, permission in enumerate(session.permissions):
        target = permission.target
        if target.lower() in KNOWN_ENTRY_POINTS or (
            facts.entry_point is not None and target == facts.entry_point
        ):
            warnings.append(
                GrantWarning(level="danger", text=f"{target} is the EntryPoint: the session may withdraw the account's "
                        "deposit there", permission=index)
            )  # fmt: skip
        elif target != account and (verdict := facts.is_module(target)):
            text = (
                _unanswered(account, target)
                if verdict == UNANSWERED
                else f"{target} is a module installed on this account: calls to it can change how the account is "
                "controlled"
            )
            warnings.append(GrantWarning(level="danger", text=text, permission=index))
        elif (
            target != account
            and permission.selector != bytes(4)
            and facts.routes_to is not None
            and facts.routes_to(target, bytes(permission.selector))
        ):
            text = (
                f"{target} is the fallback handler this account routes 0x{bytes(permission.selector).hex()} to: a call "
                "from the account can name anyone as the account's own caller to it, the account's owner too (the "
                "module refuses this grant)"
            )
            warnings.append(GrantWarning(level="danger", text=text, permission=index))
    own = {account: "this account itself", facts.module: "the session module"}
    for typed in session.typed_data_permissions:
        verifying = typed.verifying_contract
        if typed.domain_fields & 0x08 and (what := own.get(verifying)) is not None:
            text = (
                f"{verifying} is {what}: the {typed.contents_name} messages in its domain are how the account's owner "
                "approves what controls the account (modules, sessions), so the session could approve them as you "
                "(the module refuses this grant)"
            )
            warnings.append(GrantWarning(level="danger", text=text))
            continue
        # the module asks nothing about the zero address (the empty hook slot some accounts report as installed)
        if (
            typed.domain_fields & 0x08
            and verifying not in (account, ZERO_ADDRESS)
            and (verdict := facts.is_module(verifying))
        ):
            text = (
                _unanswered(account, verifying)
                if verdict == UNANSWERED
                else f"{verifying} is a module installed on this account: the {typed.contents_name} messages it "
                "verifies can change how the account is controlled (the module refuses this grant)"
            )
            warnings.append(GrantWarning(level="danger", text=text))
    return warnings


def _standing_warnings(session: Session, facts: Facts, account: str) -> list[GrantWarning]:
    """The danger of a target the account already approved as a spender or an operator, on the first permission
    calling it: it may move the account's tokens under that approval whatever the grant's rules say (attack 357); a
    caution when the chain could not be asked, so that the page does not read as if nothing were there."""
    if facts.standing_approvals is None or account in (NO_ACCOUNT, ZERO_ADDRESS):
        return []
    first: dict[str, int] = {}
    for index, permission in enumerate(session.permissions):
        if permission.target != account:
            first.setdefault(permission.target, index)
    if not first:
        return []
    result = facts.standing_approvals(list(first))
    warnings = [
        GrantWarning(
            level="danger",
            text=f"{approval.spender} {approval_risk(approval, facts.contract)}",
            permission=first[approval.spender],
        )
        for approval in result.found
        if approval.spender in first
    ]
    if result.unread is not None:
        warnings.append(
            GrantWarning(
                level="caution",
                text=f"Could not check which approvals this account already gave {', '.join(first)} "
                f"({result.unread}): an approval given before this grant lets a target move the account's tokens "
                "whatever the grant's rules say",
            )
        )
    return warnings


def _unanswered(account: str, target: str) -> str:
    return (
        f"This account does not say whether {target} is one of its validators (it gives no answer to ERC-7579's "
        "isModuleInstalled, which every account must answer): the module refuses this grant"
    )


def _claim_warnings(index: int, target: str, contract: ContractFacts) -> list[GrantWarning]:
    """Warnings on a token's symbol and name that can pass for another token's (:func:`lookalike_notes`): a
    ``USDC`` spelt with a Cyrillic letter reads as USDC, and every amount of the grant is then shown in it."""
    token = contract.token
    if token is None:
        return []
    return [
        GrantWarning(level=level, text=f"{target}: {text}", permission=index)
        for what, claim in (("the symbol", token.symbol), ("the name", token.name))
        if claim
        for level, text in lookalike_notes(what, claim)
    ]


def describe_session(
    session: Session, *, account: str, chain_id: int, facts: Facts, account_note: str = ""
) -> GrantDescription:
    """``session`` (of ``account`` on ``chain_id``) in words, with its warnings."""
    base = _Context(
        account, session.session_key, None, (), targets=tuple(p.target for p in session.permissions)
    )
    permissions, warnings = [], _session_warnings(session, facts, account)
    claims_checked: set[str] = set()
    for index, permission in enumerate(session.permissions):
        words, found = _permission_words(index, permission, base, facts, counted_words(session, index))
        permissions.append(words)
        warnings.extend(found)
        if permission.target not in claims_checked:
            claims_checked.add(permission.target)
            warnings += _claim_warnings(index, permission.target, facts.contract(permission.target))
    warnings += _meter_warnings(session, facts)
    warnings += _uncounted_warnings(session, facts)
    warnings += _adding_warnings(session, facts)
    warnings += _standing_warnings(session, facts, account)
    warnings.sort(key=lambda w: w.level != "danger")
    cosigner = SESSION_PARTS["cosigner"](session)
    described = GrantDescription(
        account=account,
        account_note=account_note,
        chain_id=chain_id,
        session_key=session.session_key,
        valid_after=session.valid_after,
        valid_until=session.valid_until,
        window=str(SESSION_PARTS["window"](session)),
        gas=str(SESSION_PARTS["gas"](session)),
        paymasters=session.paymasters,
        limits=tuple(SESSION_PARTS["limits"](session, facts)),
        signing=tuple(SESSION_PARTS["signing"](session, account)),
        cosigner=None if cosigner is None else str(cosigner),
        permissions=tuple(permissions),
        warnings=tuple(warnings),
    )
    return GrantDescription.model_validate(_visible(described.model_dump()))


def _visible(value: Any) -> Any:
    """Every string of a description with its hidden and reordering characters written as code points
    (:func:`~keyscope.consent.tokens.visible_text`): a request's argument labels and a contract's claims are the
    dapp's words, and a bidi override or a newline in them would turn the words after them around."""
    if isinstance(value, str):
        return visible_text(value)
    if isinstance(value, dict):
        return {key: _visible(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_visible(item) for item in value]
    return value
