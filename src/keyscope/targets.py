"""Checks of a grant's targets before the owner signs: a permission on an address without code, or on a function
that the target is known to lack, is granted without complaint by the module, and only its first use fails (or,
without code, silently does nothing); a permission on the EntryPoint, which keeps the account's deposit and stake
by caller, lets the session withdraw them. :func:`warn_about_targets` says so at grant time.

A target's functions are known when its code is one of keyscope's own contracts (the shipped artefacts, such as
the demo NFT); other contracts are not judged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache

from .artifacts import KNOWN_ENTRY_POINTS, contract_artifact
from .chain import Chain
from .errors import ConfigurationError, TargetWarning
from .hexutil import keccak, to_bytes
from .known_functions import ERC721_FUNCTIONS, counted_words, function_warnings, known_function, runs_calls
from .passing_for import declared_function, lookalike_addresses, shares_worth, token_id_danger, unheld_calls
from .session import Permission, Session
from .standing_approvals import approval_risk, standing_approvals
from .token_facts import (
    ContractFacts,
    approvals_that_add_up,
    cached_contract_facts,
    call_or_none,
    uncounted_assets,
)
from .warning_origin import caller_stacklevel

__all__ = [
    "KNOWN_CONTRACTS",
    "is_keyscope_delegate",
    "is_keyscope_sponsor",
    "known_function_problems",
    "lifts_anything",
    "passing_for_problems",
    "paymaster_problems",
    "runs_keyscope_code",
    "standing_approval_problems",
    "target_problems",
    "warn_about_approvals_that_add_up",
    "warn_about_passing_for",
    "warn_about_paymasters",
    "warn_about_standing_approvals",
    "warn_about_targets",
    "warn_about_uncounted_assets",
]

KNOWN_CONTRACTS = (
    "DemoNFT",
    "SessionKeyValidator",
    "KeyscopeAccount",
    "KeyscopeAccountFactory",
    "SponsorPaymaster",
)
"""keyscope's contracts whose deployed code (without constructor-set immutables) identifies them."""

_NATIVE_TRANSFER = bytes(4)
_PRECOMPILES = 0xFFFF
"""Addresses up to this one are taken for precompiles: no code, yet calls to them do something."""


def _signature(entry: Mapping[str, object]) -> str:
    def kind(item: object) -> str:
        assert isinstance(item, Mapping)
        text = str(item["type"])
        if text.startswith("tuple"):
            components = item.get("components", [])
            assert isinstance(components, list)
            return "(" + ",".join(kind(c) for c in components) + ")" + text[5:]
        return text

    inputs = entry.get("inputs", [])
    assert isinstance(inputs, list)
    return f"{entry['name']}({','.join(kind(i) for i in inputs)})"


@cache
def _known_codes() -> dict[bytes, tuple[str, frozenset[bytes]]]:
    """Deployed code -> (contract name, its function selectors), for keyscope's own contracts."""
    known: dict[bytes, tuple[str, frozenset[bytes]]] = {}
    for name in KNOWN_CONTRACTS:
        try:
            artifact = contract_artifact(name)
        except ConfigurationError:
            continue
        selectors = frozenset(
            keccak(_signature(entry).encode())[:4]
            for entry in artifact["abi"]
            if entry.get("type") == "function"
        )
        known[to_bytes(artifact["deployedBytecode"])] = (name, selectors)
    return known


def target_problems(
    permissions: Iterable[Permission], codes: Mapping[str, bytes], entry_point: str | None = None
) -> list[str]:
    """What is wrong with the permissions' targets, given the code of each (by checksummed address) and the
    network's ``entry_point``: one line per problem, empty when nothing is. A target that is the EntryPoint is
    reported whatever its code (the consent page warns of it in red alike); other targets missing from ``codes``
    are not judged."""
    problems = []
    for permission in permissions:
        if permission.target.lower() in KNOWN_ENTRY_POINTS or (
            entry_point is not None and permission.target.lower() == entry_point.lower()
        ):
            problems.append(
                f"{permission.label}: {permission.target} is the EntryPoint, which keeps the account's deposit and "
                "stake by caller: a session calling it as the account may withdraw them (withdrawTo, withdrawStake) "
                "to any address its rules allow; hold the recipient to the account with a rule, or grant nothing there"
            )
            continue
        code = codes.get(permission.target)
        if (
            code is None
            or permission.selector == _NATIVE_TRANSFER
            or int(permission.target, 16) <= _PRECOMPILES
        ):
            continue
        if not code:
            problems.append(
                f"{permission.label}: {permission.target} has no code on this chain, so a call to it does nothing "
                "(and succeeds): check the address and that the contract is deployed on this chain"
            )
            continue
        known = _known_codes().get(code)
        if known is not None and permission.selector not in known[1]:
            name = permission.function or f"selector 0x{permission.selector.hex()}"
            problems.append(
                f"{permission.label}: {permission.target} is keyscope's {known[0]}, which has no function {name} "
                f"(selector 0x{permission.selector.hex()}), so every call the session makes with it will revert"
            )
    return problems


def warn_about_targets(
    permissions: Iterable[Permission], codes: Mapping[str, bytes], entry_point: str | None = None
) -> None:
    """Issue a :class:`~keyscope.errors.TargetWarning` for each of :func:`target_problems`."""
    for problem in target_problems(permissions, codes, entry_point):
        warnings.warn(f"granting {problem}", TargetWarning, stacklevel=caller_stacklevel())


@cache
def _runtime_with_blanks(name: str) -> tuple[bytes, tuple[int, ...]]:
    """keyscope's contract ``name``'s runtime code as compiled, and where it leaves its immutables blank: each
    ``PUSH32`` of 32 zero bytes, which the constructor fills (an EntryPoint, EIP-712's cached domain: the
    contract's address, the chain id, the separator)."""
    runtime = to_bytes(contract_artifact(name)["deployedBytecode"])
    blanks = []
    index = 0
    while index < len(runtime):
        opcode = runtime[index]
        if opcode == 0x7F and runtime[index + 1 : index + 33] == bytes(32):
            blanks.append(index + 1)
        index += 1 + (opcode - 0x5F if 0x60 <= opcode <= 0x7F else 0)
    return runtime, tuple(blanks)


def _sponsor_runtime() -> tuple[bytes, tuple[int, ...]]:
    """keyscope's ``SponsorPaymaster`` runtime code as compiled, and where it leaves its immutables blank."""
    return _runtime_with_blanks("SponsorPaymaster")


def runs_keyscope_code(chain: Chain, address: str, name: str) -> bool:
    """Whether ``address`` runs keyscope's contract ``name`` (this version's compiled runtime byte for byte, but
    for the values its constructor writes into the blanks the compiler leaves for immutables)."""
    runtime, blanks = _runtime_with_blanks(name)
    code = chain.get_code(address)
    if len(code) != len(runtime):
        return False
    expected = bytearray(runtime)
    for start in blanks:
        expected[start : start + 32] = code[start : start + 32]
    return bytes(expected) == code


def is_keyscope_delegate(chain: Chain, delegate: str) -> bool:
    """Whether ``delegate`` runs keyscope's ``KeyscopeDelegate`` code, byte for byte but for its immutables (its
    EntryPoint). What a contract answers about itself (``accountId()``) proves nothing: any code can answer
    keyscope's delegate's, a drainer's included."""
    return runs_keyscope_code(chain, delegate, "KeyscopeDelegate")


def is_keyscope_sponsor(chain: Chain, paymaster: str) -> bool:
    """Whether ``paymaster`` runs keyscope's ``SponsorPaymaster`` code: a verifying sponsor paying from its own
    deposit, which charges the account nothing. Its code must be this version's compiled runtime byte for byte,
    but for the values its constructor writes into the blanks the compiler leaves for immutables (none of which
    lets it charge the account: it has no code that would). What a contract answers about itself proves nothing (a
    charging paymaster can answer ``SPONSORSHIP_TYPEHASH()`` too, attack 270); a sponsor of another keyscope
    version reads as not known, and is reported as a paymaster that may charge."""
    return runs_keyscope_code(chain, paymaster, "SponsorPaymaster")


def lifts_anything(session: Session) -> bool:
    """Whether ``session``'s paymaster list lifts a bound: it has a gas cap or a gas budget (otherwise the module
    does not store the list)."""
    return bool(session.paymasters) and bool(session.gas_cap or session.has_gas_limit)


def paymaster_problems(chain: Chain, session: Session) -> list[str]:
    """The paymasters ``session`` lists that are not known to charge the account nothing: one line each. A listed
    paymaster lifts the session's gas cap and budget for the operations naming it, so the key may make it account
    for any gas it chooses; that is safe only for a sponsor paying from its own deposit, such as keyscope's
    ``SponsorPaymaster`` (:func:`is_keyscope_sponsor`); anything else may charge the account (an ERC-20 paymaster it
    approved) and is reported, with a word first when it has no code on ``chain`` (a mistyped address, or one of
    another chain). Nothing is reported for a list that lifts nothing (:func:`lifts_anything`)."""
    if not lifts_anything(session):
        return []
    problems = []
    for paymaster in session.paymasters:
        if is_keyscope_sponsor(chain, paymaster):
            continue
        # an address without code is most often a mistyped one, or one of another chain: said first, as the fix
        nothing = (
            " it has no code on this chain (check the address, and that the paymaster is deployed on this chain);"
            if not chain.get_code(paymaster)
            else ""
        )
        problems.append(
            f"paymaster {paymaster} as uncapped:{nothing} operations naming it are neither capped by the session's "
            "max_gas_cost nor counted in its gas budget, and it is not keyscope's SponsorPaymaster; list it only "
            "if it pays from its own deposit and charges the account nothing (an ERC-20 paymaster the account "
            "approved would charge it for whatever gas the session key chooses)"
        )
    return problems


def warn_about_paymasters(chain: Chain, session: Session) -> None:
    """Issue a :class:`~keyscope.errors.TargetWarning` for each of :func:`paymaster_problems`."""
    for problem in paymaster_problems(chain, session):
        warnings.warn(f"granting {problem}", TargetWarning, stacklevel=caller_stacklevel())


def warn_about_uncounted_assets(session: Session) -> None:
    """Issue a :class:`~keyscope.errors.TargetWarning` for each permission that moves an asset the session's
    allowance of it does not count (:func:`~keyscope.token_facts.uncounted_assets`, attack 336), as the consent
    page shows it as a danger."""
    for found in uncounted_assets(session):
        permission = session.permissions[found.permission]
        if found.asset == "token":
            problem = (
                f"{permission.label}: {found.allowance} does not count its calls, so the session may move this "
                "token through it beyond that amount; count its amount in that allowance (arg(...).total), or "
                "leave the function out of the grant"
            )
        else:
            problem = (
                f"{permission.label}: {found.allowance} does not count the ETH its calls send, so the session may "
                "send ETH through it beyond that amount; count it there too (Limits.native counts every "
                "permission that may carry ETH)"
            )
        warnings.warn(f"granting {problem}", TargetWarning, stacklevel=caller_stacklevel())


def warn_about_approvals_that_add_up(session: Session) -> None:
    """Issue a :class:`~keyscope.errors.TargetWarning` for each permission whose calls add to an allowance by an
    amount bounded per call, which no allowance over the session's life counts
    (:func:`~keyscope.token_facts.approvals_that_add_up`, attack 349), as the consent page shows it as a danger."""
    for index in approvals_that_add_up(session):
        permission = session.permissions[index]
        warnings.warn(
            f"granting {permission.label}: each call adds to the spender's allowance, as often as the session's "
            "window allows, and the allowance stays after the session ends; count its amount in an allowance over "
            "the session's life (arg(...).total without a period), or grant approve with a bounded amount instead",
            TargetWarning,
            stacklevel=caller_stacklevel(),
        )


def standing_approval_problems(
    chain: Chain,
    account: str,
    permissions: Sequence[Permission],
    contracts: Callable[[str], ContractFacts] | None = None,
) -> list[str]:
    """The approvals ``account`` gave the targets of ``permissions`` before the grant, still standing on ``chain``
    (:func:`~keyscope.standing_approvals.standing_approvals`, attack 357): one line each, on the first permission
    calling that target; and one line when the check could not look (a node that fails or refuses the log query),
    so that the owner knows nothing was checked there. A token's decimals and names are read through ``contracts``
    (a :func:`~keyscope.token_facts.cached_contract_facts` the grant's other checks share; by default one of its
    own)."""
    first: dict[str, Permission] = {}
    for permission in permissions:
        if permission.target != account:
            first.setdefault(permission.target, permission)
    if not first:
        return []
    result = standing_approvals(chain, account, first)
    contract = contracts if contracts is not None else cached_contract_facts(chain)
    problems = [
        f"{first[approval.spender].label}: {approval.spender} {approval_risk(approval, contract)}"
        for approval in result.found
    ]
    if result.unread is not None:
        problems.append(
            f"calls to {', '.join(first)}: could not check which approvals the account already gave "
            f"{'it' if len(first) == 1 else 'them'} ({result.unread}); an approval given before this grant lets a "
            "target move the account's tokens whatever the grant's rules say: check the account's approvals to "
            "these contracts before granting"
        )
    return problems


def warn_about_standing_approvals(
    chain: Chain,
    account: str,
    permissions: Sequence[Permission],
    contracts: Callable[[str], ContractFacts] | None = None,
) -> None:
    """Issue a :class:`~keyscope.errors.TargetWarning` for each of :func:`standing_approval_problems`, as the consent
    page shows them as dangers."""
    for problem in standing_approval_problems(chain, account, permissions, contracts):
        warnings.warn(f"granting {problem}", TargetWarning, stacklevel=caller_stacklevel())


_INSTEAD_OF_CALLS = (
    "grant the functions it would run instead, each on its own with its own rules, or leave this function out of "
    "the grant"
)
"""What to do about a permission whose function runs calls no rule holds."""

_HOLD_IT = (
    "if that is not what you mean, hold it with a rule (arg(...) == a value you know, arg(...) <= a bound), "
    "or leave this function out of the grant"
)
"""What to do about a function known by selector whose rules leave it a spender, a recipient or an amount."""


def known_function_problems(
    session: Session, index: int, contract: Callable[[str], ContractFacts], erc721: bool = False
) -> list[str]:
    """What ``owner.grant`` says of permission ``index`` of ``session`` when its function is known by selector: the
    page's dangers and cautions (:func:`~keyscope.known_functions.function_warnings`, attack 431), an amount a
    limit of the session counts capped by that limit as on the page (attack 433), one line each with what to do;
    none for a dispatch (its danger is among :func:`passing_for_problems`' calls no rule holds). ``erc721``: the
    target says it is an ERC-721 collection. The token's facts are read through ``contract``."""
    permission = session.permissions[index]
    if known_function(permission.selector, erc721) is None or runs_calls(permission) is not None:
        return []
    facts = contract(permission.target)
    token = facts.token is not None and facts.token.decimals is not None
    return [
        f"{permission.label}: {text}; {_HOLD_IT}"
        for _, text in function_warnings(permission, token, erc721, counted_words(session, index))
    ]


def passing_for_problems(
    chain: Chain, account: str, session: Session, contracts: Callable[[str], ContractFacts] | None = None
) -> list[str]:
    """What ``session``'s permissions let the key do past what their words say, as the consent page shows it in red
    (:mod:`keyscope.passing_for`): an address a rule lists that passes for ``account`` or the session key (attack
    379), an ``approve``/``transferFrom`` on a token that answers a collection's ``getApproved`` too, read on
    ``chain`` (a hybrid whose numbers may be token ids, attack 378), and what a bound in an ERC-4626 vault's shares
    costs or returns now, asked of the vault (:func:`~keyscope.passing_for.shares_worth`, attack 386), since the
    dapp may move the rate, a function known to run calls the session picks
    (:func:`~keyscope.known_functions.runs_calls`) and one known by no table whose arguments carry bytes it may run
    as calls (:func:`~keyscope.passing_for.carried_calls`), which no rule holds (attack 420), and the page's dangers
    and cautions of a function known by selector (:func:`~keyscope.known_functions.function_warnings`: a spender, a
    recipient or an operator no rule holds, an amount no rule caps, attack 431). One line each, empty
    when nothing. A target's facts are read through ``contracts`` (as
    for :func:`standing_approval_problems`)."""
    contract = contracts if contracts is not None else cached_contract_facts(chain)
    problems = []
    for index, permission in enumerate(session.permissions):
        erc721 = False
        if permission.selector in ERC721_FUNCTIONS:
            facts = contract(permission.target)
            erc721 = facts.erc721
            danger = token_id_danger(permission, facts)
            if danger is not None:
                problems.append(
                    f"{permission.label}: {danger}; bound the number below the token's first id, or grant no "
                    "approve or transferFrom on it"
                )
        function = declared_function(permission, erc721)
        problems += known_function_problems(session, index, contract, erc721)
        problems += [
            f"{permission.label}: {text}; {_INSTEAD_OF_CALLS}"
            for text in unheld_calls(permission, function, erc721)
        ]
        problems += [
            f"{permission.label}: {text}; list only addresses you have checked in full"
            for text in lookalike_addresses(
                permission, function, account, session.session_key, [p.target for p in session.permissions]
            )
        ]
        worth = shares_worth(permission, lambda address, data: call_or_none(chain, address, data), contract)
        if worth is not None:
            problems.append(
                f"{permission.label}: {worth.text}; the bound is in shares, not in the asset: to bound what the "
                "account pays or gets, grant deposit or withdraw (bounded in the asset) instead, or bound the "
                "account's approval of the vault over the session's life"
            )
    return problems


def warn_about_passing_for(
    chain: Chain, account: str, session: Session, contracts: Callable[[str], ContractFacts] | None = None
) -> None:
    """Issue a :class:`~keyscope.errors.TargetWarning` for each of :func:`passing_for_problems`."""
    for problem in passing_for_problems(chain, account, session, contracts):
        warnings.warn(f"granting {problem}", TargetWarning, stacklevel=caller_stacklevel())
