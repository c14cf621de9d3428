"""A session as a person reads it: its permissions in words, its window and the time left, and its status on
chain set against what a session store says.

:class:`SessionReport` is what ``session.status()`` and ``owner.sessions()`` return and what the command-line
tools list; every status in it is judged by :func:`keyscope.module.session_status`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .clock import utc_text
from .co_signing_checks import expected_co_signer
from .endpoints import Endpoints
from .errors import KeyscopeError
from .grant import SessionGrant
from .hexutil import to_address
from .known_functions import ERC721_FUNCTIONS, counted_words, function_warnings, known_function, runs_calls
from .limits import LimitUsage, limit_fields, period_note
from .module import SessionStatus, read_co_signer, read_limit_usage, read_session_state, session_status
from .passing_for import (
    declared_function,
    lookalike_addresses,
    overlong_name,
    shares_worth,
    token_id_danger,
    unheld_calls,
)
from .policy import AbiFunction, AbiType
from .session import Permission, Rule
from .signing_words import signing_lines
from .token_facts import ContractFacts, ScaledLimit, cached_contract_facts, call_or_none, scale_limit

__all__ = [
    "SessionReport",
    "StoreMarks",
    "describe_duration",
    "describe_permission",
    "describe_wei",
    "report_from_chain",
    "report_from_store",
    "unjudged",
]

_NATIVE_TRANSFER = bytes(4)
_NOT_ASKED = (
    " (the target was not asked whether it is an ERC-721 collection: on one, the number is a token id, and each call"
    " approves or moves one token)"
)
"""The note on ``approve`` and ``transferFrom`` in a report that asked no chain (attack 371)."""
_JUDGED = frozenset(status.value for status in SessionStatus)
"""The statuses the chain gives a session (a listing that could not judge one says why instead)."""


def describe_wei(wei: int) -> str:
    """An amount of wei for people: ``1 wei``, ``250000 wei``, ``0.01 ETH``, ``2 ETH``."""
    if wei < 10**6:
        return f"{wei} wei"
    ether = (Decimal(wei) / Decimal(10**18)).normalize()
    return f"{ether:f} ETH"


def describe_permission(permission: Permission, erc721: bool = False) -> str:
    """A permission in words: ``call safeMint(address) on 0x…, where to must be 0x…; no ETH`` or ``send at most
    0.01 ETH per transfer to 0x…``. ``erc721``: the target says it is an ERC-721 collection, whose ``approve`` and
    ``transferFrom`` take a token id where ERC-20's take an amount (attack 371)."""
    if permission.selector == _NATIVE_TRANSFER and not permission.rules:
        return f"send at most {describe_wei(permission.value_limit)} per transfer to {permission.target}"
    function = declared_function(permission, erc721)
    # the label is the request's text, not signed: shown as the function it declares (its types and argument names,
    # a struct's components' names too, attack 409; no trailing words), and only when that is the selector's function
    name = (
        f"{function.name}({_inputs(function)})"
        if function is not None
        else f"the function with selector 0x{permission.selector.hex()}"
    )
    conditions = " and ".join(
        _named(rule, function, permission.rules).describe(
            address=function is not None and _is_address(function.word_at(rule.offset)),
            decimals=_fixed_point_decimals(rule, function),
        )
        for rule in permission.rules
    )
    value = (
        "no ETH" if not permission.value_limit else f"at most {describe_wei(permission.value_limit)} per call"
    )
    return (
        f"call {name} on {permission.target}" + (f", where {conditions}" if conditions else "") + f"; {value}"
    )


def _inputs(function: AbiFunction) -> str:
    """``function``'s arguments as the report shows them: each type (a struct with its components' names) and name."""
    return ",".join(f"{p.type.named(',')} {p.name}".strip() for p in function.inputs)


_STEPS = re.compile(r"(?:\.([A-Za-z0-9_$]+)|\[([0-9]+)\])*")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_POSITIONAL = re.compile(r"arg[0-9]+|[0-9]+")


def _steps(label: str) -> list[str] | None:
    """``order.amount`` as ``["order", ".amount"]``, ``legs[1].0`` as ``["legs", "[1]", ".0"]``; None for any other text."""
    head = _NAME.match(label)
    if head is None or _STEPS.fullmatch(label, head.end()) is None:
        return None
    return [head.group(0), *re.findall(r"\.[A-Za-z0-9_$]+|\[[0-9]+\]", label[head.end() :])]


def _fits(name: str, label: str, function: AbiFunction) -> bool:
    """Whether the rule's ``name`` may stand for the argument path ``label`` (:meth:`AbiFunction.word_at`'s): the same
    steps, each as the function names it, or a name where it names none (``arg0``, component ``1``), never the name of
    another argument."""
    mine, theirs = _steps(name), _steps(label)
    if mine is None or theirs is None or len(mine) != len(theirs):
        return False
    for index, (step, actual) in enumerate(zip(mine, theirs, strict=True)):
        if step == actual:
            continue
        bare, real = step.lstrip("."), actual.lstrip(".")
        if (
            step[0] == "["
            or actual[0] == "["
            or (index and step[0] != ".")
            or not _POSITIONAL.fullmatch(real)
        ):
            return False
        if _POSITIONAL.fullmatch(bare) or (index == 0 and any(p.name == bare for p in function.inputs)):
            return False
    return True


def _named(rule: Rule, function: AbiFunction | None, rules: Sequence[Rule]) -> Rule:
    """``rule`` named by the argument whose word it checks, as the declared function lays them out: its label (the
    request's text, not signed) when it fits that argument (:func:`_fits`) and no rule on another word bears it, else
    the argument's path (``arg1``, ``order.amount``), or ``word at offset N`` where no argument's word starts."""
    if function is None:
        return (
            rule
            if rule.name is None or (_steps(rule.name) is not None and overlong_name(rule.name) is None)
            else rule.model_copy(update={"name": None})
        )
    located = function.word_at(rule.offset)
    if located is None:
        return rule.model_copy(update={"name": None})
    label = located[0]
    name = rule.name
    if (
        name is not None
        and overlong_name(name) is None
        and _fits(name, label, function)
        and not any(other.name == name and other.offset != rule.offset for other in rules)
        and (name == label or _offset_of_label(function, name) is None)
    ):
        label = name
    return rule.model_copy(update={"name": label})


def _offset_of_label(function: AbiFunction, name: str) -> int | None:
    """The offset of the first static word of ``function``'s arguments whose path (:meth:`AbiFunction.word_at`'s
    label: ``legs.to``, ``legs.1``, ``amounts[2]``) is ``name``; None when no word's is. A rule's name that is another
    word's path would name that word, not its own (a struct's component named in the label beside an unnamed one,
    attack 413). Found by following ``name``'s steps, never by listing the words: a label's static array may declare
    millions of them."""
    position = 0
    for index, param in enumerate(function.inputs):
        found = _offset_in(param.type, param.name or f"arg{index}", name)
        if found is not None:
            return position + found
        position += param.type.head_size
    return None


def _offset_in(kind: AbiType, label: str, name: str) -> int | None:
    """The offset within a value of type ``kind`` at path ``label`` of the word whose path is ``name``, if any."""
    if not name.startswith(label) or kind.dynamic:
        return None
    rest = name[len(label) :]
    if kind.kind == "elementary":
        return 0 if not rest else None
    if kind.kind == "tuple":
        position = 0
        for member, component in enumerate(kind.components):
            if rest.startswith(f".{component.name or member}"):
                found = _offset_in(component.type, f"{label}.{component.name or member}", name)
                if found is not None:
                    return position + found
            position += component.type.head_size
        return None
    assert kind.element is not None and kind.length is not None  # a static array (a dynamic one has no words)
    step = re.match(r"\[([0-9]+)\]", rest)
    if step is None or int(step.group(1)) >= kind.length:
        return None
    item = int(step.group(1))
    found = _offset_in(kind.element, f"{label}[{item}]", name)
    return None if found is None else item * kind.element.head_size + found


def _is_address(located: tuple[str, AbiType] | None) -> bool:
    return located is not None and located[1].name == "address"


_FIXED_POINT = re.compile(r"u?fixed\d+x(\d+)")


def _fixed_point_decimals(rule: Rule, function: AbiFunction | None) -> int | None:
    """The decimals of the fixed-point argument (``fixed168x10``, a Vyper ``decimal``) whose word ``rule`` reads
    as the type it is declared (attack 363: its word is the value times 10**N, not the value); None otherwise."""
    located = function.word_at(rule.offset) if function is not None else None
    match = _FIXED_POINT.fullmatch(located[1].name) if located is not None else None
    if (
        match is None
        or function is None
        or function.misread_at(rule.offset, rule.arg_type, rule.condition, rule.values)
    ):
        return None
    return int(match.group(1))


def describe_duration(seconds: float) -> str:
    """A duration for people, to the two largest units: ``45 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 4 h``."""
    left = int(max(0, seconds))
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts[:2])


@dataclass(frozen=True)
class StoreMarks:
    """What a session store says of a session: marked revoked (so every worker refuses it), and whether it has
    seen the session's first operation land (its enabling, for an off-chain grant)."""

    revoked: bool
    enabled: bool


@dataclass(frozen=True)
class SessionReport:
    """Where a session stands, for people and for programs.

    ``status`` is a :class:`~keyscope.module.SessionStatus` value, or ``"other chain"`` / ``"no module"`` when a
    listing could not judge the grant on the connected chain; ``source`` says what it was judged from (``"chain"``
    or ``"store"``). ``now`` is the time the window was judged at. ``store`` holds the store's marks when a store
    was consulted.
    """

    grant: SessionGrant = field(repr=False)
    status: str
    now: int
    source: str = "chain"
    store: StoreMarks | None = None
    usage: tuple[LimitUsage, ...] = ()
    """What each limit of the session has used and has left, as the module counted it (read for a session
    judged on chain, active or not yet enabled, with limits; else empty)."""
    scaled: tuple[ScaledLimit | None, ...] = ()
    """Beside each row of ``usage``, a token limit's use at the decimals its token reported on chain when the
    report was made, or why its amounts stay in base units (None: a limit of ETH, calls or operations, or of no
    known token; empty when ``usage`` is)."""
    co_signer_record: tuple[bool, str] | None = None
    """The module's co-signer record of a co-signed session, (recorded, co-signer), as read when the report was
    made on chain (None: not read, the session granted without a co-signer or judged from a store)."""
    collections: frozenset[str] | None = None
    """The targets of the session's ``approve`` and ``transferFrom`` permissions that said, when the report was made
    on chain, they are ERC-721 collections (ERC-165): their functions are read with a token id, not an amount (attack
    371). None when no chain was asked (a store's report, a grant not judged): those functions then carry a note
    that on a collection the number is a token id."""
    chain_dangers: tuple[str, ...] = ()
    """What the chain said, when the report was made on chain, that makes a permission reach further than its words:
    an ``approve``/``transferFrom`` on a token that answers a collection's ``getApproved`` too (a hybrid, attack
    378); empty when no chain was asked. Shown among :attr:`dangers`."""
    worth: tuple[str | None, ...] = ()
    """Beside each permission, what the most shares an ERC-4626 ``mint``/``redeem`` allows cost or return as the
    vault said when the report was made on chain, or that it did not say (:func:`~keyscope.passing_for.
    shares_worth`, attack 386); None for any other permission; empty when no chain was asked. Shown with
    :attr:`permissions`."""
    tokens: frozenset[str] | None = None
    """The targets of the session's functions known by selector that answered an ERC-20 ``decimals()`` when the
    report was made on chain, as ``owner.grant`` reads them (a transfer's amount no rule caps is a caution on one);
    None when no chain was asked: every target is then read as one may be, since the caution is true of any."""
    unread: frozenset[str] = frozenset()
    """The targets of the session's functions known by selector whose facts the chain did not give when the report
    was made on chain (a node that failed): their warnings are given as from a store, of both readings where the
    target may be an ERC-721 collection."""

    @property
    def session_id(self) -> str:
        """The session id as 0x-hex."""
        return "0x" + self.grant.session_id.hex()

    @property
    def account(self) -> str:
        return self.grant.account

    @property
    def session_key(self) -> str:
        return self.grant.session_key

    @property
    def permissions(self) -> list[str]:
        """Each permission in words (:func:`describe_permission`), with what a bound in a vault's shares is worth
        now when the chain was asked (:attr:`worth`)."""
        if self.collections is not None:
            worth = self.worth or (None,) * len(self.grant.session.permissions)
            return [
                describe_permission(p, p.target in self.collections) + ("" if w is None else f" ({w})")
                for p, w in zip(self.grant.session.permissions, worth, strict=True)
            ]
        return [
            describe_permission(p) + (_NOT_ASKED if p.selector in ERC721_FUNCTIONS else "")
            for p in self.grant.session.permissions
        ]

    @property
    def dangers(self) -> list[str]:
        """What the grant lets the key do past what its words say, as the consent page shows it: a function known to
        run calls the session picks, which no rule holds (a multicall, an account's execute or batch, attack 412), a
        function known by no table whose arguments carry bytes it may run as calls (the page's caution, attack
        420), the page's dangers and cautions of a function known by selector (a spender, a recipient or an
        operator no rule holds, an amount no rule or limit caps: :func:`~keyscope.known_functions.
        function_warnings`, attack 438), an address a rule lists that passes for the account or the session key
        (same first and last hex digits, attack 379), and what the chain said when the report was made on chain
        (:attr:`chain_dangers`); empty when nothing."""
        found = []
        session = self.grant.session
        targets = [p.target for p in session.permissions]
        for index, permission in enumerate(session.permissions):
            erc721 = self.collections is not None and permission.target in self.collections
            function = declared_function(permission, erc721)
            where = (
                f"{function.name if function else '0x' + permission.selector.hex()} on {permission.target}"
            )
            found += [f"{where}: {text}" for text in unheld_calls(permission, function, erc721)]
            found += [f"{where}: {text}" for text in self._known_function_dangers(index)]
            found += [
                f"{where}: {text}"
                for text in lookalike_addresses(permission, function, self.account, self.session_key, targets)
            ]
        return found + list(self.chain_dangers)

    def _known_function_dangers(self, index: int) -> list[str]:
        """The page's dangers and cautions of permission ``index``'s function when it is known by selector, from the
        one helper the page and ``owner.grant`` read, with the session's limits that count its amount (attack 433);
        none for a dispatch (:func:`~keyscope.passing_for.unheld_calls` says it). Read as the chain said when the
        report was made on chain; where no chain was asked (or it gave nothing), a target is read as one that may
        be a token and, for a selector ERC-20 and ERC-721 share, as either: never fewer words than the grant
        allows."""
        session = self.grant.session
        permission = session.permissions[index]
        if known_function(permission.selector) is None or runs_calls(permission) is not None:
            return []
        erc721: bool | None = None
        token = True
        if self.collections is not None and self.tokens is not None and permission.target not in self.unread:
            erc721 = permission.target in self.collections
            token = permission.target in self.tokens
        return [
            text for _, text in function_warnings(permission, token, erc721, counted_words(session, index))
        ]

    @property
    def signing(self) -> list[str]:
        """What the session may sign as the account (ERC-1271), in words from the signed fields; empty when
        nothing."""
        session = self.grant.session
        if not session.typed_data_permissions and not session.sign_in:
            return []
        return list(
            signing_lines(
                session,
                lambda rule, kind: rule.requirement([_typed_value(v, rule, kind) for v in rule.values]),
            )
        )

    @property
    def co_signer(self) -> str | None:
        """The key that must co-sign every operation and message of the session (None: none, the session key signs
        alone): as the module holds it when the report was read on chain (the owner may have replaced or removed
        the co-signer granted), else as granted."""
        return expected_co_signer(self.grant, self.co_signer_record)

    @property
    def limits(self) -> list[str]:
        """Each limit in words: what it has used and has left when read from the module, else as granted; amounts
        as the module enforces them (base units of a token, ETH, calls), never in the grant's unsigned unit and
        decimals, and the grant's label marked as unsigned (:meth:`~keyscope.limits.LimitUsage.enforced_text`).
        A token limit read from the module also gives its amounts at the token's decimals read from the chain
        (:attr:`scaled`), or a note that the token gave none."""
        start = self.grant.valid_after
        if self.usage:
            return [
                row.enforced_text(None if scale is None else scale.text) + period_note(row.limit, start)
                for row, scale in self._scaled_rows()
            ]
        return [
            str(limit_fields(limit, i)["text"]) + period_note(limit, start)
            for i, limit in enumerate(self.grant.session.limits)
        ]

    @property
    def valid_after(self) -> int:
        return self.grant.valid_after

    @property
    def valid_until(self) -> int:
        """The end of the window in unix seconds; 0 when the session never expires."""
        return self.grant.valid_until

    @property
    def time_left(self) -> int | None:
        """Seconds until the session expires (0 once it has, and for a session revoked or invalidated: dead whatever
        its window says), None when it never expires."""
        if self.status in (SessionStatus.REVOKED.value, SessionStatus.INVALIDATED.value):
            return 0
        if not self.valid_until:
            return None
        return max(0, self.valid_until - self.now)

    @property
    def starts_in(self) -> int:
        """Seconds until the window opens (0 once it has)."""
        return max(0, self.valid_after - self.now)

    def describe_time_left(self) -> str:
        """``59 min 30 s left``, ``expired 5 min ago``, ``never expires``, ``starts in 10 min``; ``none: revoked``
        (or invalidated) for a session that is dead whatever its window says."""
        if self.status in (SessionStatus.REVOKED.value, SessionStatus.INVALIDATED.value):
            return f"none: {self.status}"
        if self.starts_in:
            return f"starts in {describe_duration(self.starts_in)}"
        if self.time_left is None:
            return "never expires"
        if self.time_left:
            return f"{describe_duration(self.time_left)} left"
        return f"expired {describe_duration(self.now - self.valid_until)} ago"

    @property
    def disagreements(self) -> list[str]:
        """Where the chain and the store disagree, and what to do about it (empty when they agree or no store was
        consulted, or the chain could not judge the session: ``"other chain"``, ``"no module"``)."""
        if self.store is None or self.source != "chain" or self.status not in _JUDGED:
            return []
        notes = []
        revoked_on_chain = self.status == SessionStatus.REVOKED.value
        if self.store.revoked and not revoked_on_chain:
            notes.append(
                "marked revoked in the store but not on chain: every worker of the store refuses it, but the key "
                "still works elsewhere; revoke it on chain (owner.revoke, or keyscope revoke --node --bundler)"
            )
        if revoked_on_chain and not self.store.revoked:
            notes.append("revoked on chain but not marked in the store: mark it (store.mark_revoked)")
        if (
            self.status == SessionStatus.ACTIVE.value
            and not self.store.enabled
            and self.grant.how == "offchain"
        ):
            notes.append("enabled on chain; the store has not recorded its first operation yet")
        return notes

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (hex for bytes)."""
        return {
            "session_id": self.session_id,
            "account": self.account,
            "session_key": self.session_key,
            "how": self.grant.how,
            "chain_id": self.grant.chain_id,
            "status": self.status,
            "source": self.source,
            "permissions": self.permissions,
            "limits": (
                [
                    {**row.to_dict(), "scaled": None if scale is None else scale.to_dict()}
                    for row, scale in self._scaled_rows()
                ]
                if self.usage
                else [
                    {**limit_fields(limit, i), "scaled": None}
                    for i, limit in enumerate(self.grant.session.limits)
                ]
            ),
            "dangers": self.dangers,
            "signing": self.signing,
            "co_signer": self.co_signer,
            "valid_after": self.valid_after,
            "valid_until": self.valid_until,
            "time_left": self.time_left,
            "now": self.now,
            "marked_revoked": None if self.store is None else self.store.revoked,
            "marked_enabled": None if self.store is None else self.store.enabled,
            "disagreements": self.disagreements,
        }

    def _scaled_rows(self) -> list[tuple[LimitUsage, ScaledLimit | None]]:
        scaled = self.scaled or (None,) * len(self.usage)
        return list(zip(self.usage, scaled, strict=True))

    def lines(self) -> list[str]:
        """The report for people, one fact a line."""
        return [
            f"session {self.session_id}: {self.status} ({'on chain' if self.source == 'chain' else 'per the store'})",
            f"  account {self.account}, session key {self.session_key}, granted {self.grant.how}",
            f"  window  {_window(self.grant)}; {self.describe_time_left()}",
            *(f"  allows  {text}" for text in self.permissions),
            *(f"  limit   {text}" for text in self.limits),
            *(f"  danger  {text}" for text in self.dangers),
            *(f"  signs   {text}" for text in self.signing),
            *self._co_signer_lines(),
            *(f"  note    {text}" for text in self.disagreements),
        ]

    def _co_signer_lines(self) -> list[str]:
        granted, held = self.grant.session.co_signer, self.co_signer
        if granted is None:
            return []
        if held is None:
            return [
                f"  cosigned by none: the owner removed the co-signer {granted}; the session key signs alone"
            ]
        if held != granted:
            return [f"  cosigned by {held} (the owner replaced {granted}, the co-signer granted)"]
        return [f"  cosigned by {held}"]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _typed_value(word: int, rule: Rule, kind: str) -> str:
    """A rule's value on a typed-data field of EIP-712 type ``kind``, as text."""
    if kind == "address":
        return to_address(word.to_bytes(32, "big")[12:])
    if rule.is_signed:
        return f"{word - 2**256 if word >> 255 else word:,}"
    if kind.startswith("uint"):
        return f"{word:,}"
    return "0x" + word.to_bytes(32, "big").hex()


def _window(grant: SessionGrant) -> str:
    start = f"from {utc_text(grant.valid_after)} " if grant.valid_after else ""
    end = f"until {utc_text(grant.valid_until)}" if grant.valid_until else "without end"
    return start + end


def report_from_chain(
    endpoints: Endpoints,
    grant: SessionGrant,
    *,
    store: StoreMarks | None = None,
    now: int | None = None,
    contracts: Callable[[str], ContractFacts] | None = None,
) -> SessionReport:
    """The report of ``grant`` judged on chain (:func:`~keyscope.module.read_session_state`: one round trip, and
    one more for a usable session with limits, to read what each has used, and one for a co-signed session, to
    read the co-signer the module holds), with a store's marks to set against it when given. A token limit's use is also given at the token's decimals
    (:func:`~keyscope.token_facts.scale_limit`), read through ``contracts`` (a
    :func:`~keyscope.token_facts.cached_contract_facts` a listing shares; by default one for this report): a few
    more calls per token."""
    status, moment = read_session_state(endpoints, grant, now=now)
    usage: tuple[LimitUsage, ...] = ()
    scaled: tuple[ScaledLimit | None, ...] = ()
    read = contracts if contracts is not None else cached_contract_facts(endpoints.chain)
    if grant.session.limits and status in (SessionStatus.ACTIVE, SessionStatus.NOT_YET_ENABLED):
        usage = read_limit_usage(endpoints, grant, now=moment)
        scaled = tuple(scale_limit(row, grant.session, read) for row in usage)
    record = read_co_signer(endpoints, grant) if grant.session.co_signer is not None else None
    collections = frozenset(
        p.target
        for p in grant.session.permissions
        if p.selector in ERC721_FUNCTIONS and _says_erc721(read, p.target)
    )
    known = {
        p.target: _facts_or_none(read, p.target)
        for p in grant.session.permissions
        if known_function(p.selector) is not None and runs_calls(p) is None
    }
    tokens = frozenset(
        target
        for target, facts in known.items()
        if facts is not None and facts.token is not None and facts.token.decimals is not None
    )
    unread = frozenset(target for target, facts in known.items() if facts is None)
    dangers = tuple(
        f"{describe_permission(p, p.target in collections)}: {danger}"
        for p in grant.session.permissions
        if p.selector in ERC721_FUNCTIONS and (danger := _token_id_danger(read, p)) is not None
    )
    worth = tuple(_shares_worth(endpoints, read, p) for p in grant.session.permissions)
    return SessionReport(
        grant,
        status.value,
        moment,
        "chain",
        store,
        usage,
        scaled,
        record,
        collections,
        dangers,
        worth,
        tokens,
        unread,
    )


def _token_id_danger(read: Callable[[str], ContractFacts], permission: Permission) -> str | None:
    """:func:`~keyscope.passing_for.token_id_danger` of ``permission``'s target (None when it cannot be read)."""
    try:
        return token_id_danger(permission, read(permission.target))
    except KeyscopeError:
        return None


def _shares_worth(
    endpoints: Endpoints, read: Callable[[str], ContractFacts], permission: Permission
) -> str | None:
    """:func:`~keyscope.passing_for.shares_worth` of ``permission`` as its vault answers now (None: another function,
    or the chain cannot be read)."""
    try:
        worth = shares_worth(
            permission, lambda address, data: call_or_none(endpoints.chain, address, data), read
        )
    except KeyscopeError:
        return None
    return None if worth is None else worth.text


def _facts_or_none(read: Callable[[str], ContractFacts], address: str) -> ContractFacts | None:
    """What ``address`` says of itself, read through ``read`` (None when the chain gives nothing)."""
    try:
        return read(address)
    except KeyscopeError:
        return None


def _says_erc721(read: Callable[[str], ContractFacts], address: str) -> bool:
    """Whether ``address`` says it is an ERC-721 collection (False when it cannot be read)."""
    try:
        return read(address).erc721
    except KeyscopeError:
        return False


def report_from_store(grant: SessionGrant, marks: StoreMarks, *, now: int) -> SessionReport:
    """The report of ``grant`` as a store alone knows it: revoked when marked so; an off-chain grant whose first
    operation the store has not seen land is not yet enabled; otherwise the window (at ``now``) decides."""
    enabled = marks.enabled or grant.how == "onchain"
    status = session_status(grant, revoked=marks.revoked, active=enabled, enabled=enabled, now=now)
    return SessionReport(grant, status.value, now, "store", marks)


def unjudged(grant: SessionGrant, status: str, *, now: int, store: StoreMarks | None = None) -> SessionReport:
    """A report whose status is not a :class:`~keyscope.module.SessionStatus`: a listing could not judge the grant
    (``"other chain"``, ``"no module"``)."""
    return SessionReport(grant, status, now, "chain", store)
