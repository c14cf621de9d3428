"""What a grant's words may pass for: an address a rule lists that a reader takes for the account, the session's
key (attack 379), a contract the grant calls or a well-known one (attack 387), and a token whose ``approve``/``transferFrom`` may read their number as a token id (a hybrid
ERC-20/ERC-721, attack 378), and what a bound in an ERC-4626 vault's shares costs or returns now (attacks 384 and
386).

One source for every place the owner reads a grant: the consent page's dangers
(:mod:`keyscope.consent.describe`), ``owner.grant``'s :class:`~keyscope.errors.TargetWarning`
(:mod:`keyscope.targets`) and the session report (:mod:`keyscope.report`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .arg_types import ArgType
from .artifacts import ENTRY_POINT_V06, ENTRY_POINT_V07, ENTRY_POINT_V08
from .errors import InvalidAbiError
from .hexutil import ZERO_ADDRESS, keccak, to_address
from .known_functions import ERC721_FUNCTIONS, UNLIMITED, bound_of, known_function, runs_calls
from .policy import AbiFunction, AbiType, parse_signature
from .session import Permission, Rule
from .standing_approvals import PERMIT2
from .token_facts import ContractFacts, format_amount

__all__ = [
    "LONGEST_NAME",
    "LOOKALIKE_DIGITS",
    "WELL_KNOWN_ADDRESSES",
    "SharesWorth",
    "carried_calls",
    "declared_function",
    "lookalike_addresses",
    "overlong_name",
    "rule_is_address",
    "shares_worth",
    "token_id_danger",
    "unheld_calls",
]

LOOKALIKE_DIGITS = 4
"""How many hex digits at each end of an address a reader compares (wallets show ``0x1234…abcd``); a dapp finds an
address of its own that shares them with the account by a vanity search (address poisoning, attack 379)."""


LONGEST_NAME = 64
"""The longest function, argument or component name a request's label may give and be shown: a name is the dapp's
text, of any length (a contract it deploys may declare one of 20,000 characters), and shown whole it fills the
owner's screen and pushes the rules and dangers after it out of sight (attack 389)."""
_LONG_NAME = re.compile(rf"[A-Za-z0-9_$]{{{LONGEST_NAME + 1},}}")


def overlong_name(text: str | None) -> int | None:
    """The length of the longest name in ``text`` (a function's label, a rule's name) longer than
    :data:`LONGEST_NAME`; None when there is none (or no text)."""
    if text is None:
        return None
    found = [len(match) for match in _LONG_NAME.findall(text)]
    return max(found) if found else None


def declared_function(permission: Permission, erc721: bool = False) -> AbiFunction | None:
    """The permission's function as its label declares it, when the label parses and is the selector's; a function
    known by its selector (:data:`~keyscope.known_functions.KNOWN_FUNCTIONS`) as the table has it, with its standard
    argument names, whatever the label (four bytes collide, and a label's names are the request's text); ERC-721's
    on a collection (``erc721``). None for a label with a name too long to show (:func:`overlong_name`). A name the
    label gives twice among siblings is kept on the first only (:meth:`~keyscope.policy.AbiFunction.with_distinct_names`)."""
    known = known_function(permission.selector, erc721)
    if known is not None:
        return parse_signature(known.signature)
    if permission.function is None or overlong_name(permission.function) is not None:
        return None
    try:
        function = parse_signature(permission.function)
    except InvalidAbiError:
        return None
    # a name twice among an argument's siblings labels two words: the second shown by position (attack 413)
    return function.with_distinct_names() if function.selector == permission.selector else None


_WORD = re.compile(r"u?int[0-9]*|bytes[0-9]+")
"""An elementary type whose words are any bytes: an array of them of the session's length carries any data."""


def _carries_bytes(kind: AbiType) -> bool:
    """Whether an argument of type ``kind`` carries bytes of any length the session picks, anywhere (itself, an
    array's element, a component): a ``bytes``, a ``string`` (the same bytes under another name, attack 408), or a
    dynamic array of numbers or ``bytesN`` (``bytes32[]``, ``uint256[]``: their packed words are any bytes). Addresses,
    flags and arrays of a fixed length carry no call of the session's length: a fixed array's words sit at fixed
    places, as so many scalar arguments do, and a rule holds each (attack 432, decided: a caution on ``uint256[2]``
    amounts or a ``uint256[8]`` proof would come with nearly every grant of a pool or a proof)."""
    if kind.name in ("bytes", "string"):
        return True
    if kind.element is not None:
        if kind.length is None and kind.element.kind == "elementary" and _WORD.fullmatch(kind.element.name):
            return True
        return _carries_bytes(kind.element)
    return any(_carries_bytes(component.type) for component in kind.components)


def carried_calls(permission: Permission, function: AbiFunction | None, erc721: bool = False) -> str | None:
    """The caution of a function known by no table (neither by selector nor as ERC-721's on a collection,
    ``erc721``) whose arguments carry bytes no rule reads (:func:`_carries_bytes`), naming them: the contract may run
    them as calls (a dispatch under a name of its own, attacks 376 and 408), which no rule of the session holds.
    ``function``: the permission's function as the reader is shown it (:func:`declared_function`); None when it is
    not known (a selector alone), or takes nothing that carries bytes. The consent page shows it as a caution,
    ``owner.grant`` warns of it and the session report gives it (attack 420)."""
    if function is None or known_function(permission.selector, erc721) is not None:
        return None
    carried = [
        (param.name or f"arg{n}", param.type)
        for n, param in enumerate(function.inputs)
        if _carries_bytes(param.type)
    ]
    if not carried:
        return None
    held = ", ".join(f"`{label}` ({kind.name})" for label, kind in carried)
    return (
        f"takes bytes no rule reads, in {held}; if {permission.target} runs them as calls (a batch, a multicall or a "
        "forwarder under its own name), no rule of this session holds those calls"
    )


def unheld_calls(permission: Permission, function: AbiFunction | None, erc721: bool = False) -> list[str]:
    """The words for the calls ``permission``'s function may run that no rule of the session holds, each a line: a
    dispatch known by selector (:func:`~keyscope.known_functions.runs_calls`) and a function known by no table whose
    arguments carry bytes (:func:`carried_calls`); empty when neither. ``owner.grant`` warns of each, and the session
    report lists each under its dangers (attack 420)."""
    return [
        text
        for text in (runs_calls(permission), carried_calls(permission, function, erc721))
        if text is not None
    ]


def rule_is_address(rule: Rule, function: AbiFunction | None) -> bool:
    """Whether a rule's 160-bit word is an address: by the argument's declared type when the function is known (a
    ``uint160`` amount is a number, and so is a ``uint256`` amount ruled as a uint160, the address's type code: shown
    as an address it hid an allowance of 2**160 - 1 base units), else by the rule's type alone, which cannot tell the
    two apart."""
    located = function.word_at(rule.offset) if function is not None else None
    if located is not None:
        return located[1].name == "address"
    return True


WELL_KNOWN_ADDRESSES = (
    (PERMIT2, "Permit2"),
    (ENTRY_POINT_V06, "the EntryPoint v0.6"),
    (ENTRY_POINT_V07, "the EntryPoint v0.7"),
    (ENTRY_POINT_V08, "the EntryPoint v0.8"),
)
"""Addresses a reader knows by sight, with their names: Permit2 (which wallets ask the owner to approve) and the
canonical EntryPoints (attack 387)."""


def lookalike_addresses(
    permission: Permission,
    function: AbiFunction | None,
    account: str,
    session_key: str,
    targets: Sequence[str] = (),
) -> list[str]:
    """What the addresses ``permission``'s address rules list pass for (``function``: the permission's function as
    the reader is shown it, :func:`declared_function`): one line for each that is none of the addresses a reader
    knows here but shares its first and last :data:`LOOKALIKE_DIGITS` hex digits with one of them, naming both in
    full. Those are ``account`` and ``session_key`` (attack 379), the contracts the grant calls (``targets``: every
    permission's target, attack 387) and :data:`WELL_KNOWN_ADDRESSES`. The zero address stands for no account (a
    request described before its wallet connects)."""
    known = [(account, "this account"), (session_key, "the session's own key")]
    known += [(to_address(target), "a contract this grant calls") for target in dict.fromkeys(targets)]
    known += [(address, name) for address, name in WELL_KNOWN_ADDRESSES]
    exact = {own.lower() for own, _ in known}
    found = []
    for rule in permission.rules:
        if rule.arg_type != ArgType.ADDRESS or not rule_is_address(rule, function):
            continue
        for word in rule.values:
            address = to_address(word.to_bytes(32, "big")[12:])
            if address.lower() in exact:
                continue
            for own, what in known:
                if own.lower() == ZERO_ADDRESS.lower():
                    continue
                ends = LOOKALIKE_DIGITS
                if (
                    address[2 : 2 + ends].lower() == own[2 : 2 + ends].lower()
                    and address[-ends:].lower() == own[-ends:].lower()
                ):
                    found.append(
                        f"{address} passes for {what} ({own}): it shares its first and last {ends} hex digits and "
                        "is ANOTHER address, one whoever chose it may hold"
                    )
    return found


def token_id_danger(permission: Permission, contract: ContractFacts) -> str | None:
    """The danger of an ``approve``/``transferFrom`` on a token (it answers ``decimals()``) that also answers a
    collection's ``getApproved(uint256)`` (:attr:`~keyscope.token_facts.ContractFacts.token_ids`): a hybrid reads a
    number no more than its minted count as a token id, whose approvals add up (attack 378); None otherwise."""
    token = contract.token
    if (
        permission.selector not in ERC721_FUNCTIONS
        or token is None
        or token.decimals is None
        or not contract.token_ids
    ):
        return None
    return (
        f"{permission.target} also answers a collection's getApproved(uint256): if it is a hybrid token, a number no "
        "more than the count of its collection tokens is a token id, not an amount, and each call approves or moves "
        "one whole token, any whose id the rules allow; those approvals add up, past the bound shown"
    )


_SHARE_PREVIEWS = {
    keccak(b"mint(uint256,address)")[:4]: ("previewMint", "cost"),
    keccak(b"redeem(uint256,address,address)")[:4]: ("previewRedeem", "return"),
}
"""ERC-4626's functions bounded in shares (their first argument), with the vault's question of what that many shares
cost or return in its asset now, and the verb (attack 384)."""
_ASSET = keccak(b"asset()")[:4]


@dataclass(frozen=True)
class SharesWorth:
    """What the most shares an ERC-4626 ``mint``/``redeem`` permission allows cost or return now (``known``: the
    vault answered, ``text`` says the assets and that the rate can change), or a caution that it is not known."""

    text: str
    known: bool


def shares_worth(
    permission: Permission,
    call: Callable[[str, bytes], bytes | None],
    contract: Callable[[str], ContractFacts],
) -> SharesWorth | None:
    """What the most shares an ERC-4626 ``mint``/``redeem`` permission allows cost or return now, asked of the vault
    through ``call(address, data)`` (an ``eth_call``, None when it reverts): ``previewMint``/``previewRedeem`` of
    the bound, in the vault's ``asset()``'s units when ``contract(asset)`` names a token with decimals. None when
    nothing is asked (another function, no bound on the shares). The bound is in shares, whose worth is the
    vault's rate, which whoever runs the vault moves (attack 384): the consent page shows this beside the bound,
    ``owner.grant`` warns of it and the session report judged on chain gives it with the permission (attack 386)."""
    preview = _SHARE_PREVIEWS.get(bytes(permission.selector))
    bound = bound_of(permission.rules, 0) if preview is not None else None
    if preview is None or bound is None or bound >= UNLIMITED:
        return None
    question, does = preview
    answer = call(permission.target, keccak(f"{question}(uint256)".encode())[:4] + bound.to_bytes(32, "big"))
    if answer is None or len(answer) != 32:
        return SharesWorth(
            f"{permission.target} gives no {question}(uint256): what {bound:,} shares {does} in the vault's asset "
            "is not known, and the vault's rate (which whoever runs it may change) decides it",
            known=False,
        )
    assets = int.from_bytes(answer, "big")
    asset = call(permission.target, _ASSET)
    token = None
    if asset is not None and len(asset) == 32 and not int.from_bytes(asset[:12], "big"):
        token = contract(to_address(asset[12:])).token
    units = f"{assets:,} base unit{'' if assets == 1 else 's'}"
    shown = (
        f"{format_amount(assets, token.decimals, token.symbol)} ({units})"
        if token is not None and token.decimals is not None
        else f"{units} of the vault's asset"
    )
    return SharesWorth(
        f"{bound:,} shares {does} {shown} now, by the vault's {question}: the rate can change (whoever runs the "
        f"vault may move it), and the same shares may {does} {'more' if does == 'cost' else 'less'} later",
        known=True,
    )
