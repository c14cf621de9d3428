"""Approvals an account gave a grant's targets before the grant (attack 357).

A grant's rules bound the session's own calls, but a target the account has already approved as a spender or an
operator may move the account's tokens under that standing approval in ways those rules do not bound: another of a
router's functions, a marketplace's ``transferFrom`` of any NFT the account holds, a multicall on the target.
:func:`standing_approvals` finds them, so that the consent page and ``owner.grant`` can say so before the owner
signs:

* ERC-20 ``Approval(owner=account, spender=target, value)`` and ERC-721 ``Approval(owner, approved, tokenId)``,
  and ERC-721/ERC-1155 ``ApprovalForAll(owner=account, operator=target, approved)``: one topic-filtered
  ``eth_getLogs`` over every contract (:func:`~keyscope.log_queries.recent_logs`, in chunks when the provider
  refuses a whole-history query);
* Permit2 allowances (``Approval``/``Permit`` events of Permit2 naming the account and a target as spender), asked
  only when the same logs show the account approved Permit2 on a token;
* each confirmed against the chain's state now, in one batch of calls (``allowance``, ``isApprovedForAll``,
  ``getApproved`` and ``ownerOf``, Permit2's ``allowance`` and its expiration), so an approval since revoked, spent
  or expired is not reported.

The cost is bounded: at most two log reads of at most :data:`MAX_LOG_REQUESTS` requests each (one each on a
provider that answers whole-history queries; the second only when the account approved Permit2), then, when the
logs show any approval to a target, one batch of calls confirming at most :data:`MAX_CANDIDATES` of them (one round
trip where the chain batches). An account that never approved a target costs one ``eth_getLogs``. A node that fails, or refuses, gives
a :class:`StandingApprovals` saying the check could not look; it never raises, so a grant goes on.

Logs and answers are the chain's (and the tokens' own claims): a token may emit no ``Approval`` for an approval,
or emit one for nothing; state confirms what the logs suggest, and an approval without a log is not found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from .chain import Chain, read_many
from .clock import LAST_READABLE_TIME, utc_text
from .errors import KeyscopeError
from .hexutil import keccak, to_address, to_bytes
from .known_functions import UNLIMITED
from .log_queries import recent_logs
from .token_facts import ContractFacts, format_amount, scaled_by

__all__ = [
    "APPROVAL_FOR_ALL_TOPIC",
    "APPROVAL_TOPIC",
    "MAX_CANDIDATES",
    "MAX_LOG_REQUESTS",
    "PERMIT2",
    "StandingApproval",
    "StandingApprovals",
    "approval_risk",
    "approval_words",
    "cached_standing_approvals",
    "standing_approvals",
]

PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
"""Uniswap's Permit2, at the same address on every chain it is deployed on."""

APPROVAL_TOPIC = keccak(b"Approval(address,address,uint256)")
"""ERC-20's ``Approval(owner, spender, value)`` (three topics) and ERC-721's ``Approval(owner, approved,
tokenId)`` (four): the same signature."""
APPROVAL_FOR_ALL_TOPIC = keccak(b"ApprovalForAll(address,address,bool)")
"""ERC-721's and ERC-1155's operator approval."""
_PERMIT2_APPROVAL = keccak(b"Approval(address,address,address,uint160,uint48)")
_PERMIT2_PERMIT = keccak(b"Permit(address,address,address,uint160,uint48,uint48)")

_ALLOWANCE = keccak(b"allowance(address,address)")[:4]
_IS_APPROVED_FOR_ALL = keccak(b"isApprovedForAll(address,address)")[:4]
_GET_APPROVED = keccak(b"getApproved(uint256)")[:4]
_OWNER_OF = keccak(b"ownerOf(uint256)")[:4]
_PERMIT2_ALLOWANCE = keccak(b"allowance(address,address,address)")[:4]
_PERMIT2_UNLIMITED = 2**160 - 1
"""A Permit2 allowance of this amount is never run down."""

MAX_LOG_REQUESTS = 32
"""The most ``eth_getLogs`` (and ``eth_blockNumber``) requests one log read makes on a provider that refuses a
whole-history query; blocks older than those it reached are then unread, and the result says so."""
MAX_CANDIDATES = 200
"""The most approvals (distinct token, spender and kind) confirmed against the chain's state; more are unread, and
the result says so."""

Kind = Literal["allowance", "operator", "token", "permit2"]


@dataclass(frozen=True)
class StandingApproval:
    """One approval the account holds out to ``spender`` (a target of the grant), confirmed by the chain's state.

    ``kind``: ``"allowance"`` (ERC-20, ``amount`` base units of ``token``), ``"operator"`` (every token of the
    collection ``token``, ERC-721/ERC-1155), ``"token"`` (the NFT ``token_id`` of ``token``, ERC-721) or
    ``"permit2"`` (``amount`` of ``token`` through Permit2, until ``expiration``; the least of Permit2's allowance
    and the token's allowance to Permit2)."""

    spender: str
    token: str
    kind: Kind
    amount: int | None = None
    token_id: int | None = None
    expiration: int | None = None

    @property
    def unlimited(self) -> bool:
        """Whether the amount is no bound (at or above :data:`~keyscope.known_functions.UNLIMITED`)."""
        return self.amount is not None and self.amount >= UNLIMITED


@dataclass(frozen=True)
class StandingApprovals:
    """What :func:`standing_approvals` found, and ``unread``: what it could not look at and why (None: it looked at
    every approval the chain's logs show)."""

    found: tuple[StandingApproval, ...] = ()
    unread: str | None = None


@dataclass(frozen=True)
class _Candidate:
    spender: str
    token: str
    kind: Kind
    token_id: int | None = None


def _word(address: str) -> str:
    return "0x" + "00" * 12 + to_address(address)[2:].lower()


def _topic_address(log: Mapping[str, Any], index: int) -> str:
    return to_address(to_bytes(log["topics"][index], name="log topic", length=32)[12:])


def _candidates(logs: Iterable[Mapping[str, Any]], spenders: set[str]) -> list[_Candidate]:
    """The approvals ``logs`` suggest (ERC-20, ERC-721 and operator approvals naming a spender of ``spenders``),
    each once, oldest log first."""
    found: dict[_Candidate, None] = {}
    for log in logs:
        topics = log.get("topics") or []
        if len(topics) < 3:
            continue
        topic = to_bytes(topics[0], name="log topic")
        spender = _topic_address(log, 2)
        if spender not in spenders:
            continue
        token = to_address(log["address"])
        if topic == APPROVAL_FOR_ALL_TOPIC:
            found[_Candidate(spender, token, "operator")] = None
        elif topic == APPROVAL_TOPIC and len(topics) == 3:
            found[_Candidate(spender, token, "allowance")] = None
        elif topic == APPROVAL_TOPIC and len(topics) == 4:
            token_id = int.from_bytes(to_bytes(topics[3], name="log topic"), "big")
            found[_Candidate(spender, token, "token", token_id)] = None
    return list(found)


def _permit2_candidates(
    logs: Iterable[Mapping[str, Any]], tokens: set[str], spenders: set[str]
) -> list[_Candidate]:
    """The Permit2 allowances ``logs`` suggest, on a token of ``tokens`` to a spender of ``spenders``."""
    found: dict[_Candidate, None] = {}
    for log in logs:
        topics = log.get("topics") or []
        if len(topics) != 4 or to_address(log["address"]) != PERMIT2:
            continue
        token, spender = _topic_address(log, 2), _topic_address(log, 3)
        if token in tokens and spender in spenders:
            found[_Candidate(spender, token, "permit2")] = None
    return list(found)


def _question(account: str, candidate: _Candidate) -> list[tuple[str, bytes]]:
    """The calls that confirm ``candidate`` (two for an NFT's approval: its approved address and its owner)."""
    if candidate.kind == "allowance":
        return [
            (candidate.token, _ALLOWANCE + abi_encode(["address", "address"], [account, candidate.spender]))
        ]
    if candidate.kind == "operator":
        data = _IS_APPROVED_FOR_ALL + abi_encode(["address", "address"], [account, candidate.spender])
        return [(candidate.token, data)]
    if candidate.kind == "token":
        token_id = abi_encode(["uint256"], [candidate.token_id])
        return [(candidate.token, _GET_APPROVED + token_id), (candidate.token, _OWNER_OF + token_id)]
    data = _PERMIT2_ALLOWANCE + abi_encode(
        ["address", "address", "address"], [account, candidate.token, candidate.spender]
    )
    return [(PERMIT2, data)]


def _number(answer: bytes) -> int | None:
    return int.from_bytes(answer[:32], "big") if len(answer) >= 32 else None


def _address(answer: bytes) -> str | None:
    return to_address(answer[12:32]) if len(answer) >= 32 and not any(answer[:12]) else None


def _confirmed(
    account: str, candidate: _Candidate, answers: Sequence[bytes], now: int, to_permit2: Mapping[str, int]
) -> StandingApproval | None:
    """``candidate`` as the chain's state holds it now (None: revoked, spent, expired, or not answered)."""
    if candidate.kind == "allowance":
        amount = _number(answers[0])
        return StandingApproval(candidate.spender, candidate.token, "allowance", amount) if amount else None
    if candidate.kind == "operator":
        if not _number(answers[0]):
            return None
        return StandingApproval(candidate.spender, candidate.token, "operator")
    if candidate.kind == "token":
        approved, holder = _address(answers[0]), _address(answers[1])
        if approved != candidate.spender or holder != account:
            return None
        return StandingApproval(candidate.spender, candidate.token, "token", token_id=candidate.token_id)
    if len(answers[0]) < 96:
        return None
    amount, expiration, _ = abi_decode(["uint160", "uint48", "uint48"], answers[0][:96])
    # Permit2 moves what both allow: its own allowance (never run down at 2**160 - 1) and the token's to Permit2
    bounds = [int(amount)] if int(amount) < _PERMIT2_UNLIMITED else []
    if to_permit2.get(candidate.token, 0) < UNLIMITED:
        bounds.append(to_permit2.get(candidate.token, 0))
    usable = min(bounds, default=UNLIMITED)
    if not usable or int(expiration) < now:
        return None
    return StandingApproval(candidate.spender, candidate.token, "permit2", usable, expiration=int(expiration))


def _confirm(chain: Chain, account: str, candidates: Sequence[_Candidate]) -> list[StandingApproval]:
    """``candidates`` as the chain's state holds them now, in one batch of calls (with the latest block's time, for
    Permit2's expirations)."""
    questions = [_question(account, candidate) for candidate in candidates]
    read = read_many(chain, optional=[call for calls in questions for call in calls], timestamp=True)
    now = read.timestamp or 0
    answers: list[Sequence[bytes]] = []
    at = 0
    for calls in questions:
        answers.append(read.results[at : at + len(calls)])
        at += len(calls)
    to_permit2 = {
        candidate.token: _number(answer[0]) or 0
        for candidate, answer in zip(candidates, answers, strict=True)
        if candidate.kind == "allowance" and candidate.spender == PERMIT2
    }
    confirmed = [
        _confirmed(account, candidate, answer, now, to_permit2)
        for candidate, answer in zip(candidates, answers, strict=True)
    ]
    return [approval for approval in confirmed if approval is not None]


def standing_approvals(chain: Chain, account: str, targets: Iterable[str]) -> StandingApprovals:
    """The approvals ``account`` holds out to each of ``targets`` on ``chain`` now: ERC-20 allowances, ERC-721
    approvals of one token, ERC-721/ERC-1155 operator approvals, and Permit2 allowances (module docstring). Never
    raises for the node's failures: the result's ``unread`` says what could not be looked at, and why."""
    account = to_address(account, name="account")
    spenders = {to_address(target, name="target") for target in targets} - {account}
    if not spenders:
        return StandingApprovals()
    asked = sorted(spenders | {PERMIT2})
    query = {
        "topics": [
            ["0x" + APPROVAL_TOPIC.hex(), "0x" + APPROVAL_FOR_ALL_TOPIC.hex()],
            _word(account),
            [_word(spender) for spender in asked],
        ]
    }
    unread: list[str] = []
    try:
        read = recent_logs(chain, query, max_requests=MAX_LOG_REQUESTS)
        if read.unread_to is not None:
            unread.append(
                f"the approvals logged in blocks 0 to {read.unread_to} (the provider serves logs in chunks)"
            )
        candidates = _candidates(read.logs, spenders | {PERMIT2})
        approved_permit2 = {c.token for c in candidates if c.spender == PERMIT2 and c.kind == "allowance"}
        if approved_permit2 and spenders - {PERMIT2}:
            permit2_query = {
                "address": PERMIT2,
                "topics": [
                    ["0x" + _PERMIT2_APPROVAL.hex(), "0x" + _PERMIT2_PERMIT.hex()],
                    _word(account),
                    None,
                    [_word(spender) for spender in sorted(spenders - {PERMIT2})],
                ],
            }
            permits = recent_logs(chain, permit2_query, max_requests=MAX_LOG_REQUESTS)
            if permits.unread_to is not None:
                unread.append(f"the Permit2 allowances logged in blocks 0 to {permits.unread_to}")
            candidates += _permit2_candidates(permits.logs, approved_permit2, spenders - {PERMIT2})
        if len(candidates) > MAX_CANDIDATES:
            unread.append(
                f"{len(candidates) - MAX_CANDIDATES} approvals beyond the first {MAX_CANDIDATES} logged"
            )
            # the token allowances to Permit2 first: the Permit2 allowances' bounds
            candidates.sort(key=lambda c: c.spender != PERMIT2)
            candidates = candidates[:MAX_CANDIDATES]
        found = _confirm(chain, account, candidates) if candidates else []
    except Exception as error:  # any failure of the node (or of its answers) leaves the grant to go on, said
        return StandingApprovals(
            (), f"the node could not be asked ({type(error).__name__}: {str(error)[:160]})"
        )
    # an allowance to Permit2 is the grant's own business only when the grant calls Permit2
    shown = tuple(approval for approval in found if approval.spender in spenders)
    return StandingApprovals(shown, "; ".join(unread) or None)


def cached_standing_approvals(chain: Chain, account: str) -> Callable[[Sequence[str]], StandingApprovals]:
    """``approvals(targets)``: :func:`standing_approvals` of ``account`` on ``chain``, each set of targets asked once
    (the dashboard describes every session of an account with the same facts, and sessions share targets)."""
    cache: dict[frozenset[str], StandingApprovals] = {}

    def approvals(targets: Sequence[str]) -> StandingApprovals:
        key = frozenset(targets)
        if key not in cache:
            cache[key] = standing_approvals(chain, account, key)
        return cache[key]

    return approvals


def approval_words(approval: StandingApproval, contract: Callable[[str], ContractFacts]) -> str:
    """``approval`` in words, its token amounts at the token's decimals (``contract``: the token's claims, as
    :func:`~keyscope.token_facts.cached_contract_facts` reads them): ``an unlimited allowance of USDC (the token
    0x…)``, ``an allowance of 250 USDC (250,000,000 base units at the 6 decimals the token reports now) of the token
    0x…``, ``an operator approval over every token of 0x… the account holds``."""
    try:
        token = contract(approval.token).token
    except KeyscopeError:
        token = None
    symbol = None if token is None else token.symbol
    decimals = None if token is None else token.decimals
    named = approval.token + (f" ({token.name})" if token is not None and token.name else "")
    if approval.kind == "operator":
        return (
            f"an operator approval over every token the account holds of {named} (setApprovalForAll, ERC-721 or "
            "ERC-1155)"
        )
    if approval.kind == "token":
        return f"an approval of token #{approval.token_id} of {named} (ERC-721 approve)"
    amount = approval.amount or 0
    if approval.unlimited:
        what = f"unlimited {symbol}" if symbol else "an unlimited amount"
    elif decimals:
        what = f"{format_amount(amount, decimals, symbol)} ({amount:,} base units {scaled_by(decimals)})"
    else:
        what = f"{format_amount(amount, None, symbol)} (base units: the token gives no decimals)"
    if approval.kind == "permit2":
        expiration = approval.expiration or 0
        until = "after the year 9999" if expiration > LAST_READABLE_TIME else f"until {utc_text(expiration)}"
        return f"a Permit2 allowance of {what} on the token {named}, {until}"
    return f"an allowance of {what} on the token {named}"


_REVOKE: dict[Kind, str] = {
    "allowance": "approve(it, 0) on the token",
    "operator": "setApprovalForAll(it, false) on the collection",
    "token": "approve the zero address for that token",
    "permit2": "Permit2's approve(token, it, 0, 0), or its lockdown",
}


def approval_risk(approval: StandingApproval, contract: Callable[[str], ContractFacts]) -> str:
    """What ``approval`` lets its spender, a contract the session may call, do, and what to do about it (the words
    after the spender's address): the same on the consent page and in ``owner.grant``'s warning."""
    return (
        f"already holds {approval_words(approval, contract)} from this account, given before this grant: calls the "
        "session makes to it (another of its functions, a multicall) may move those tokens under that approval, "
        f"whatever this grant's rules say; revoke it first ({_REVOKE[approval.kind]}), or grant a narrower target"
    )
