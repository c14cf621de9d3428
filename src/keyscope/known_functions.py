"""Functions known by their selector (ERC-20 ``transfer``/``approve``/..., ERC-721 ``setApprovalForAll``/...):
their standard argument names, which arguments are token amounts, and the checks that raise warnings on a
permission for them. Warnings go by selector and argument position, never by the names a request gives (those are
the dapp's words, not signed).

The consent page's words (:mod:`keyscope.consent.describe`) and the session report's token amounts
(:mod:`keyscope.token_facts`) read this one table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .arg_types import ArgType
from .limits import limit_text
from .policy import parse_signature
from .session import Condition, Limit, LimitKind, Permission, Rule, Session

__all__ = [
    "ERC721_FUNCTIONS",
    "KNOWN_FUNCTIONS",
    "UNLIMITED",
    "CountedWords",
    "KnownFunction",
    "added_per_call",
    "bound_of",
    "counted_words",
    "function_warnings",
    "known_function",
    "runs_calls",
]

UNLIMITED = 2**255
"""An amount bound at or above this is no bound: shown as unlimited."""


def _bound(rules: tuple[Rule, ...], offset: int) -> int | None:
    """The most an unsigned argument at ``offset`` may be under ``rules`` (None: unbounded). Only rules that read the
    word as an unsigned number bound it: a signed rule's negative values, and a ``bytesN`` rule's left-aligned ones,
    are words far above what they show."""
    bound: int | None = None
    for rule in rules:
        if rule.offset != offset or not ArgType.reads_alike(rule.arg_type, ArgType.UINT256):
            continue
        op = rule.op
        if op in (Condition.EQUAL, Condition.LESS_THAN_OR_EQUAL, Condition.ONE_OF):
            most = max(rule.values)
        elif op == Condition.LESS_THAN:
            most = rule.values[0] - 1
        elif op == Condition.IN_RANGE:
            most = rule.values[1]
        else:
            continue
        bound = most if bound is None else min(bound, most)
    return bound


def bound_of(rules: tuple[Rule, ...], offset: int) -> int | None:
    """The most the unsigned argument at ``offset`` may be under ``rules`` (None: no rule bounds it)."""
    return _bound(rules, offset)


CountedWords = Mapping[int, tuple[tuple[int, Limit], ...]]
"""The AMOUNT limits of a session that count a permission's argument words: by the word's offset (bytes into the
arguments), each limit with its number in the session (:func:`counted_words`)."""

_Warn = Callable[[Permission, bool, CountedWords], list[tuple[str, str]]]
"""``warn(permission, token, counted)``: a known function's warnings (:attr:`KnownFunction.warn`)."""


def counted_words(session: Session, index: int) -> dict[int, tuple[tuple[int, Limit], ...]]:
    """The AMOUNT limits of ``session`` that count an argument word of permission ``index``'s calls, by the word's
    offset: the module adds the word at a meter's offset of every call of the permission the meter names (its target
    and selector) to the limit, and refuses a call that takes the limit past what it has left. A limit of another
    kind (calls, ETH), or whose meters name another permission or another word, counts nothing of that word."""
    found: dict[int, list[tuple[int, Limit]]] = {}
    for number, limit in enumerate(session.limits):
        if limit.op != LimitKind.AMOUNT:
            continue
        for meter in limit.meters:
            if meter.permission == index and (number, limit) not in found.get(meter.offset, []):
                found.setdefault(meter.offset, []).append((number, limit))
    return {offset: tuple(limits) for offset, limits in found.items()}


def _capping_limit(counted: CountedWords, offset: int, unlimited: int) -> tuple[int, Limit] | None:
    """The limit (its number and itself) that caps the word at ``offset`` below ``unlimited``: the smallest over the
    session's life, else the smallest per period (it caps each period's calls only); None when no limit counts the
    word, or only ones of ``unlimited`` or more. A call spends the whole word, so no call's word is more than the
    limit's amount, and over the session's life all calls' words together are no more."""
    capping = [
        (number, limit) for number, limit in counted.get(offset, ()) if limit.stored_amount < unlimited
    ]
    if not capping:
        return None
    return min(capping, key=lambda found: (found[1].period != 0, found[1].stored_amount))


def _pinned(rules: tuple[Rule, ...], offset: int) -> bool:
    """Whether the argument at ``offset`` is held to listed values (EQUAL or ONE_OF)."""
    return any(r.offset == offset and r.op in (Condition.EQUAL, Condition.ONE_OF) for r in rules)


@dataclass(frozen=True)
class KnownFunction:
    """A function known by its selector: its standard signature with argument names, the offsets of its token
    amounts, ``warn(permission, is_token)``, the warnings a permission for it raises, and ``adds_up``, the offset of
    an amount each call adds to what it grants (``increaseAllowance``'s), None for a function whose calls set it."""

    signature: str
    amounts: tuple[int, ...] = ()
    warn: _Warn = lambda p, token, counted: []
    adds_up: int | None = None

    @property
    def selector(self) -> bytes:
        return parse_signature(self.signature).selector


def _transfer_warnings(to_offset: int | None, amount_offset: int | None) -> _Warn:
    """A transfer's cautions: a recipient (at ``to_offset``; None: in a dynamic argument no rule can hold) no rule
    holds, and on a token an amount (at ``amount_offset``; None: in a dynamic argument no rule can bound) no rule
    caps."""

    def warn(permission: Permission, token: bool, counted: CountedWords) -> list[tuple[str, str]]:
        found = []
        if to_offset is None or not _pinned(permission.rules, to_offset):
            found.append(("caution", "may send to ANY address: no rule holds the recipient to one you know"))
        if token and (amount_offset is None or _bound(permission.rules, amount_offset) is None):
            found.append(("caution", "no rule caps the amount of one call"))
        return found

    return warn


def _approval_warnings(
    spender_offset: int,
    amount_offset: int,
    unlimited: int = UNLIMITED,
    what: str = "this token",
    adds: bool = False,
) -> _Warn:
    """The dangers of an approval whose spender and amount sit at these offsets: a spender no rule holds to listed
    values, and an amount no rule caps below ``unlimited`` (the amount its contract reads as no bound). A limit that
    counts the very amount word (:func:`counted_words`) caps it instead of a rule (attack 433): over the session's
    life, every allowance it approves together (a caution, naming the limit); per period only, the whole amount
    again each period, while the allowances stay (a caution; a danger when each call ``adds`` to the allowance,
    which then grows period after period)."""

    def warn(permission: Permission, token: bool, counted: CountedWords) -> list[tuple[str, str]]:
        found = []
        if not _pinned(permission.rules, spender_offset):
            found.append(
                ("danger", "may approve ANY spender: no rule holds the spender to one you know, so a leaked session "
                 f"key can let anyone take {what} from the account")
            )  # fmt: skip
        bound = _bound(permission.rules, amount_offset)
        if bound is not None and bound < unlimited:
            return found
        cap = _capping_limit(counted, amount_offset, unlimited)
        if cap is None:
            found.append(("danger", "may approve an UNLIMITED allowance: no rule caps the amount"))
        elif not cap[1].period:
            found.append(
                ("caution", "the amount is capped by a limit, not by a rule on each call: "
                 f"{limit_text(cap[1], cap[0])}, counted from its amount; an allowance it approves stays after the "
                 "session ends")
            )  # fmt: skip
        else:
            grows = ", and each call adds to the allowance, so it grows period after period" if adds else ""
            found.append(
                ("danger" if adds else "caution", "the amount is capped per period only: "
                 f"{limit_text(cap[1], cap[0])}, counted from its amount, the whole amount again each period; an "
                 f"allowance approved in one period stays through the next ones and after the session ends{grows}")
            )  # fmt: skip
        return found

    return warn


_approve_warnings = _approval_warnings(0, 32)
_adding_approve_warnings = _approval_warnings(0, 32, adds=True)


def _operator_warnings_of(name: str, approved_offset: int | None, what: str) -> _Warn:
    """The danger of making an operator (its address the first argument) over ``what``: none when a rule holds the
    ``approved`` flag at ``approved_offset`` to false (a revocation only); a function without such a flag
    (``approved_offset`` None) always has it."""

    def warn(permission: Permission, token: bool, counted: CountedWords) -> list[tuple[str, str]]:
        revokes_only = approved_offset is not None and any(
            r.offset == approved_offset and r.op == Condition.EQUAL and r.values == (0,)
            for r in permission.rules
        )
        if revokes_only:
            return []
        who = "the operator its rule names" if _pinned(permission.rules, 0) else "ANY operator"
        return [("danger", f"{name}: may let {who} move EVERY {what} the account holds")]

    return warn


_operator_warnings = _operator_warnings_of("setApprovalForAll", 32, "token of this collection")


_KNOWN = [
    KnownFunction("transfer(address to,uint256 amount)", (32,), _transfer_warnings(0, 32)),
    KnownFunction("approve(address spender,uint256 amount)", (32,), _approve_warnings),
    KnownFunction("transferFrom(address from,address to,uint256 amount)", (64,), _transfer_warnings(32, 64)),
    KnownFunction(
        "increaseAllowance(address spender,uint256 addedValue)", (32,), _adding_approve_warnings, adds_up=32
    ),
    # the same function under its older name (OpenZeppelin's StandardToken before 2.0, tokens built on it)
    KnownFunction(
        "increaseApproval(address spender,uint256 addedValue)", (32,), _adding_approve_warnings, adds_up=32
    ),
    KnownFunction("setApprovalForAll(address operator,bool approved)", (), _operator_warnings),
    # Permit2 (AllowanceTransfer): an allowance over every token the account approved Permit2 for, as most accounts
    # that trade have, without a bound; an amount of 2**160 - 1 never runs down
    KnownFunction(
        "approve(address token,address spender,uint160 amount,uint48 expiration)",
        (),
        _approval_warnings(32, 64, 2**160 - 1, "the token it names (through Permit2's transferFrom)"),
    ),
    # Permit2's transfers under such an allowance: known by selector for Permit2's names (a request's own, from and to
    # swapped, put "to must be this account" on the from word, attack 385); the batch's recipients sit in a dynamic
    # array no rule can reach, so it always may send anywhere
    KnownFunction(
        "transferFrom(address from,address to,uint160 amount,address token)", (), _transfer_warnings(32, None)
    ),
    KnownFunction(
        "transferFrom((address from,address to,uint160 amount,address token)[] transferDetails)",
        (),
        _transfer_warnings(None, None),
    ),
    # ERC-1363: an ERC-20 approval followed by a call into the spender
    KnownFunction("approveAndCall(address spender,uint256 value)", (32,), _approve_warnings),
    KnownFunction("approveAndCall(address spender,uint256 value,bytes data)", (32,), _approve_warnings),
    # ERC-6909: an operator over every id the account holds, and an allowance per id, which an amount of 2**256 - 1
    # makes one that never runs down (decimals are per id: its amounts stay base units)
    KnownFunction(
        "setOperator(address spender,bool approved)",
        (),
        _operator_warnings_of("setOperator", 32, "token of this multi-token contract (every id)"),
    ),
    KnownFunction(
        "approve(address spender,uint256 id,uint256 amount)",
        (),
        _approval_warnings(0, 64, what="the token id it names"),
    ),
    # ERC-6909's transfers: known by selector for the standard's names (a request's own, sender and receiver or id
    # and amount swapped, put "receiver must be this account" on the sender word, attack 374); amounts are per id,
    # with no decimals: base units
    KnownFunction("transfer(address receiver,uint256 id,uint256 amount)", (), _transfer_warnings(0, 64)),
    KnownFunction(
        "transferFrom(address sender,address receiver,uint256 id,uint256 amount)",
        (),
        _transfer_warnings(32, 64),
    ),
    # ERC-777's sends, for the same reason
    KnownFunction("send(address to,uint256 amount,bytes data)", (32,), _transfer_warnings(0, 32)),
    KnownFunction(
        "operatorSend(address from,address to,uint256 amount,bytes data,bytes operatorData)",
        (64,),
        _transfer_warnings(32, 64),
    ),
    # ERC-1363's transfers, a transfer followed by a call into the recipient: known by selector for the standard's
    # names (a request's own, from and to swapped, put "to must be this account" on the from word, attack 380)
    KnownFunction("transferAndCall(address to,uint256 value)", (32,), _transfer_warnings(0, 32)),
    KnownFunction("transferAndCall(address to,uint256 value,bytes data)", (32,), _transfer_warnings(0, 32)),
    KnownFunction(
        "transferFromAndCall(address from,address to,uint256 value)", (64,), _transfer_warnings(32, 64)
    ),
    KnownFunction(
        "transferFromAndCall(address from,address to,uint256 value,bytes data)",
        (64,),
        _transfer_warnings(32, 64),
    ),
    # ERC-777: an operator over every token of the contract the account holds; nothing in it revokes
    KnownFunction(
        "authorizeOperator(address operator)",
        (),
        _operator_warnings_of("authorizeOperator", None, "token of this contract"),
    ),
    KnownFunction(
        "safeTransferFrom(address from,address to,uint256 tokenId)", (), _transfer_warnings(32, 64)
    ),
    KnownFunction(
        "safeTransferFrom(address from,address to,uint256 tokenId,bytes data)", (), _transfer_warnings(32, 64)
    ),
    # ERC-1155: known by selector for the standard's names (a request's own, from and to swapped, put "to must be
    # this account" on the from word, attack 366); amounts are per id, with no decimals: base units
    KnownFunction(
        "safeTransferFrom(address from,address to,uint256 id,uint256 value,bytes data)",
        (),
        _transfer_warnings(32, 96),
    ),
    KnownFunction(
        "safeBatchTransferFrom(address from,address to,uint256[] ids,uint256[] values,bytes data)",
        (),
        _transfer_warnings(32, None),
    ),
    # ERC-4626 vaults: known by selector so that their arguments carry the standard's names (a request's own, with
    # receiver and owner swapped, put "receiver must be this account" on the owner word, attack 365); the assets
    # (or a deposit's shares) go to `receiver`. Amounts stay base units: assets are the underlying token's, whose
    # decimals need not be the vault's.
    KnownFunction("deposit(uint256 assets,address receiver)", (), _transfer_warnings(32, 0)),
    KnownFunction("mint(uint256 shares,address receiver)", (), _transfer_warnings(32, 0)),
    KnownFunction("withdraw(uint256 assets,address receiver,address owner)", (), _transfer_warnings(32, 0)),
    KnownFunction("redeem(uint256 shares,address receiver,address owner)", (), _transfer_warnings(32, 0)),
]


@dataclass(frozen=True)
class _Dispatch:
    """The danger of a function that runs calls the session picks inside its own (attack 373): the module judges the
    outer call's words only, so what it ``does`` is held by no rule, whatever the rules on its other arguments."""

    does: str

    @property
    def danger(self) -> str:
        return f"{self.does}: no rule of this session holds them, nor what they move"

    def __call__(self, permission: Permission, token: bool, counted: CountedWords) -> list[tuple[str, str]]:
        return [("danger", self.danger)]


def _dispatch_warnings(does: str) -> _Dispatch:
    """The danger of a function that runs calls the session picks, doing what ``does`` says (:class:`_Dispatch`)."""
    return _Dispatch(does)


_MULTICALL = _dispatch_warnings(
    "runs each of the calls in its data as a call of this contract's own functions, with the account as the sender "
    "(a swap to ANY recipient, a sweep, a transfer under any approval the account gave this contract)"
)
_COMMANDS = _dispatch_warnings(
    "runs the commands it is given (swaps, transfers, sweeps to ANY recipient) with the account as the payer"
)
_EXECUTES = _dispatch_warnings(
    "makes this contract (an account, a Safe or a wallet the account may own) call any target with any value and "
    "data the session picks"
)
_AGGREGATES = _dispatch_warnings(
    "makes this contract call ANY target with any data the session picks, with the ETH the session sends it (and "
    "a contract of the dapp's under this name may run them as the account)"
)
_AS_MODULE = _dispatch_warnings(
    "makes this contract (a Safe, or an ERC-7579 account, this account is installed on as a module or an executor) "
    "run as itself any call the session picks, to any target with any value, a delegatecall too"
)
_UPGRADES = _dispatch_warnings(
    "replaces this contract's code (a proxy the account may own) with ANY code the session picks, and runs the call "
    "the session picks in it"
)


def _swap_warnings(recipient_offset: int | None) -> _Warn:
    """A swap's caution: a recipient (at ``recipient_offset``; None: in a dynamic struct no rule can reach) no rule
    holds to listed values."""

    def warn(permission: Permission, token: bool, counted: CountedWords) -> list[tuple[str, str]]:
        if recipient_offset is not None and _pinned(permission.rules, recipient_offset):
            return []
        return [("caution", "may pay the swap's proceeds to ANY address: no rule holds the recipient")]

    return warn


_SWAP_SINGLE = "address tokenIn,address tokenOut,uint24 fee,address recipient,"
_SWAP_PATH = "bytes path,address recipient,"
# the swap router's struct functions (its first version, with a deadline, and its second, without): known by selector
# so that their components carry the router's names (a request's own, amountIn and amountOutMinimum swapped, put
# "amountIn at most N" on the least the swap must pay, attack 377); amounts stay base units (two tokens)
_KNOWN += [
    KnownFunction(
        f"exactInputSingle(({_SWAP_SINGLE}uint256 deadline,uint256 amountIn,uint256 amountOutMinimum,"
        "uint160 sqrtPriceLimitX96) params)",
        (),
        _swap_warnings(96),
    ),
    KnownFunction(
        f"exactOutputSingle(({_SWAP_SINGLE}uint256 deadline,uint256 amountOut,uint256 amountInMaximum,"
        "uint160 sqrtPriceLimitX96) params)",
        (),
        _swap_warnings(96),
    ),
    KnownFunction(
        f"exactInputSingle(({_SWAP_SINGLE}uint256 amountIn,uint256 amountOutMinimum,uint160 sqrtPriceLimitX96) params)",
        (),
        _swap_warnings(96),
    ),
    KnownFunction(
        f"exactOutputSingle(({_SWAP_SINGLE}uint256 amountOut,uint256 amountInMaximum,uint160 sqrtPriceLimitX96) params)",
        (),
        _swap_warnings(96),
    ),
    KnownFunction(
        f"exactInput(({_SWAP_PATH}uint256 deadline,uint256 amountIn,uint256 amountOutMinimum) params)",
        (),
        _swap_warnings(None),
    ),
    KnownFunction(
        f"exactOutput(({_SWAP_PATH}uint256 deadline,uint256 amountOut,uint256 amountInMaximum) params)",
        (),
        _swap_warnings(None),
    ),
    KnownFunction(
        f"exactInput(({_SWAP_PATH}uint256 amountIn,uint256 amountOutMinimum) params)",
        (),
        _swap_warnings(None),
    ),
    KnownFunction(
        f"exactOutput(({_SWAP_PATH}uint256 amountOut,uint256 amountInMaximum) params)",
        (),
        _swap_warnings(None),
    ),
]
# functions that run calls the session picks: a multicall, a router's commands, an account's or a Safe's execute;
# known by selector so that the page says what they do, whatever the request calls them (attack 373)
_KNOWN += [
    KnownFunction("multicall(bytes[] data)", (), _MULTICALL),
    KnownFunction("multicall(uint256 deadline,bytes[] data)", (), _MULTICALL),
    KnownFunction("multicall(bytes32 previousBlockhash,bytes[] data)", (), _MULTICALL),
    # the same dispatch under other names (attack 376): a batching mixin's batch (a delegatecall to itself),
    # Multicall3's aggregates (calls it makes itself) and a proxy's upgrade with a call into the new code
    KnownFunction("batch(bytes[] calls,bool revertOnFail)", (), _MULTICALL),
    KnownFunction("aggregate((address target,bytes callData)[] calls)", (), _AGGREGATES),
    KnownFunction("aggregate3((address target,bool allowFailure,bytes callData)[] calls)", (), _AGGREGATES),
    KnownFunction(
        "aggregate3Value((address target,bool allowFailure,uint256 value,bytes callData)[] calls)",
        (),
        _AGGREGATES,
    ),
    KnownFunction(
        "tryAggregate(bool requireSuccess,(address target,bytes callData)[] calls)", (), _AGGREGATES
    ),
    KnownFunction("blockAndAggregate((address target,bytes callData)[] calls)", (), _AGGREGATES),
    KnownFunction(
        "tryBlockAndAggregate(bool requireSuccess,(address target,bytes callData)[] calls)", (), _AGGREGATES
    ),
    KnownFunction("upgradeToAndCall(address newImplementation,bytes data)", (), _UPGRADES),
    KnownFunction("execute(bytes commands,bytes[] inputs)", (), _COMMANDS),
    KnownFunction("execute(bytes commands,bytes[] inputs,uint256 deadline)", (), _COMMANDS),
    KnownFunction("execute(address dest,uint256 value,bytes func)", (), _EXECUTES),
    KnownFunction("executeBatch(address[] dest,uint256[] value,bytes[] func)", (), _EXECUTES),
    KnownFunction("execute(address to,uint256 value,bytes data,uint8 operation)", (), _EXECUTES),
    KnownFunction("execute(bytes32 mode,bytes executionCalldata)", (), _EXECUTES),
    # the same dispatch as other accounts spell it (attack 410): a batch of calls as a struct array (Coinbase Smart
    # Wallet, Kernel v2, the v0.8 SimpleAccount), without values (LightAccount, the v0.6 SimpleAccount), Safe's
    # MultiSend of packed transactions, and what a Safe or an ERC-7579 account runs for one of its modules
    KnownFunction("executeBatch((address target,uint256 value,bytes data)[] calls)", (), _EXECUTES),
    KnownFunction("executeBatch(address[] dest,bytes[] func)", (), _EXECUTES),
    KnownFunction("multiSend(bytes transactions)", (), _AGGREGATES),
    KnownFunction(
        "execTransactionFromModule(address to,uint256 value,bytes data,uint8 operation)", (), _AS_MODULE
    ),
    KnownFunction(
        "execTransactionFromModuleReturnData(address to,uint256 value,bytes data,uint8 operation)",
        (),
        _AS_MODULE,
    ),
    KnownFunction("executeFromExecutor(bytes32 mode,bytes executionCalldata)", (), _AS_MODULE),
    KnownFunction(
        "execTransaction(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
        "uint256 gasPrice,address gasToken,address refundReceiver,bytes signatures)",
        (),
        _EXECUTES,
    ),
]
KNOWN_FUNCTIONS: dict[bytes, KnownFunction] = {known.selector: known for known in _KNOWN}
"""Functions known by selector (add one here to give it words and warnings)."""


def _token_id_warnings(level: str, who_offset: int, who: str, does: str) -> _Warn:
    """The dangers of an ERC-721 function of one token id (at byte 32 or 64, after ``who``): ``who`` at
    ``who_offset`` not held to listed values, and a token id not held to listed ids (a bound on it is no amount:
    each call ``does`` one more token, any whose id it allows)."""
    id_offset = 32 if who_offset == 0 else 64

    def warn(permission: Permission, token: bool, counted: CountedWords) -> list[tuple[str, str]]:
        found = []
        if not _pinned(permission.rules, who_offset):
            found.append((level, f"may name ANY {who}: no rule holds the {who} to one you know"))
        if not _pinned(permission.rules, id_offset):
            found.append(
                (level, f"this ERC-721 collection takes a token id here, not an amount: each call {does} one token, "
                 "any the rules allow, so every token of the account whose id is in the rule's range (any id, "
                 "without a rule) may go, as many calls as the session's window allows")
            )  # fmt: skip
        return found

    return warn


_ERC721 = [
    KnownFunction(
        "approve(address to,uint256 tokenId)",
        (),
        _token_id_warnings("danger", 0, "spender", "approves the spender for"),
    ),
    KnownFunction(
        "transferFrom(address from,address to,uint256 tokenId)",
        (),
        _token_id_warnings("caution", 32, "recipient", "moves"),
    ),
]
ERC721_FUNCTIONS: dict[bytes, KnownFunction] = {known.selector: known for known in _ERC721}
"""ERC-721's functions that share ERC-20's selectors (``approve``, ``transferFrom``), for a target that says it is
an ERC-721 collection (attack 364: read as ERC-20's, a token id's bound was shown as an allowance's amount)."""


def known_function(selector: bytes, erc721: bool = False) -> KnownFunction | None:
    """The function known by ``selector``: ERC-721's on a collection (``erc721``), else :data:`KNOWN_FUNCTIONS`'."""
    return (ERC721_FUNCTIONS.get(selector) if erc721 else None) or KNOWN_FUNCTIONS.get(selector)


_READINGS = (
    (False, "if the target is not an ERC-721 collection: "),
    (True, "if the target is an ERC-721 collection: "),
)
"""The two readings of a selector ERC-20 and ERC-721 share (``approve``, ``transferFrom``) where no one asked the
target which it is, each with the words that say which reading a warning is of."""


def function_warnings(
    permission: Permission, token: bool, erc721: bool | None = False, counted: CountedWords | None = None
) -> list[tuple[str, str]]:
    """The warnings, each a ``(level, text)`` with level ``"danger"`` or ``"caution"``, of ``permission``'s function
    when it is known by selector (:func:`known_function`; ERC-721's on a collection, ``erc721``): a spender, a
    recipient or an operator no rule holds, an amount no rule caps (on a ``token``, one that answers
    ``decimals()``, a transfer's too), a dispatch's calls no rule holds (:func:`runs_calls`). Empty for a function
    known by no table. ``counted``: the session's limits that count the permission's words (:func:`counted_words`),
    which cap an approval's amount no rule caps (attack 433); None, no limit. The consent page shows each, and
    ``owner.grant`` warns of each (attack 431).

    ``erc721`` None: nobody asked the target whether it is an ERC-721 collection (a session report from a store,
    attack 438). A selector both standards share then gives the warnings of both readings, each saying which
    reading it is of, since either may be the one the target runs; a selector of one standard gives its own."""
    if erc721 is None:
        if permission.selector not in ERC721_FUNCTIONS:
            return function_warnings(permission, token, False, counted)
        return [
            (level, reading + text)
            for collection, reading in _READINGS
            for level, text in function_warnings(permission, token, collection, counted)
        ]
    known = known_function(permission.selector, erc721)
    return [] if known is None else known.warn(permission, token, counted or {})


def runs_calls(permission: Permission) -> str | None:
    """The danger of ``permission``'s function when it is known by selector as one that runs calls the session picks
    inside its own (a multicall, an account's execute or batch, Multicall3's aggregates, a proxy's upgradeToAndCall:
    attacks 373, 376 and 410): what it does, held by no rule of the session. None for any other function. Its words
    do not say what it runs, so every surface that shows the grant says this with it (attack 412)."""
    known = KNOWN_FUNCTIONS.get(permission.selector)
    return known.warn.danger if known is not None and isinstance(known.warn, _Dispatch) else None


def added_per_call(permission: Permission) -> tuple[int, int] | None:
    """For a permission on a function whose calls add to an allowance (``increaseAllowance``), whose amount a rule
    bounds below unlimited: the amount's offset and the most one call adds (None otherwise: an unbounded amount has
    its own danger, an UNLIMITED allowance). The bound is per call; the calls add up, as often as the session's
    window allows, to an allowance that outlives the session (attack 349)."""
    known = KNOWN_FUNCTIONS.get(permission.selector)
    if known is None or known.adds_up is None:
        return None
    bound = _bound(permission.rules, known.adds_up)
    if bound is None or bound >= UNLIMITED:
        return None
    return known.adds_up, bound
