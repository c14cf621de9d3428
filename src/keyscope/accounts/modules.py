"""Which contracts an account has installed as modules, asked as the session module asks (ERC-7579
``isModuleInstalled`` for validators, executors and hooks, Safe's ``isModuleEnabled``), in questions that ride in one
batch of reads, or one by one (:func:`module_of`) where a question may revert.

A session may neither call another module of its account (the module refuses such grants) nor have its signatures
verified by one (the module refuses them): the SDK asks the same questions to refuse both first. As the module does,
it takes an account that gives no answer to the validator question (ERC-7579 has every account answer it) as a
refusal, :data:`UNANSWERED`, and asks a hook question unanswered again with Safe7579's context (hook type GLOBAL, no
selector: Safe7579 reverts on an empty context)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ..errors import CallRevertedError
from ..hexutil import to_address
from .base import AccountKind

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["MODULE_TYPES", "UNANSWERED", "installed_module", "module_of", "module_questions"]

_IS_MODULE_INSTALLED = bytes.fromhex("112d3a7d")
"""IERC7579ModuleConfig.isModuleInstalled(uint256,address,bytes)."""
_IS_MODULE_ENABLED = bytes.fromhex("2d9ad53d")
"""Safe's isModuleEnabled(address)."""
MODULE_TYPES = {1: "validator", 2: "executor", 4: "hook"}
"""The module types asked about, by name (fallback handlers are installed per selector)."""
GLOBAL_HOOK_CONTEXT = bytes(64)
"""The context Safe7579 reads a hook question's hook type (GLOBAL, 0) and selector (none) from."""
UNANSWERED = "unanswered"
"""The verdict on an account that gives no answer (a revert, no such function, not a bool) to the validator question:
the module refuses the target (``ModuleQueryUnanswered``)."""


def _question(number: int, target: str, context: bytes = b"") -> bytes:
    return _IS_MODULE_INSTALLED + abi_encode(
        ["uint256", "address", "bytes"], [number, to_address(target), context]
    )


def module_questions(kind: AccountKind, account: str, targets: Sequence[str]) -> list[tuple[str, bytes]]:
    """``(account, isModuleInstalled(type, target, context))`` for each target and module type, for a batch of reads:
    the context is empty, except for Safe7579's hook question (:data:`GLOBAL_HOOK_CONTEXT`), the form the module asks
    it in once the empty one reverts."""
    safe7579 = kind.name == "safe7579"
    return [
        (account, _question(number, target, GLOBAL_HOOK_CONTEXT if safe7579 and number == 4 else b""))
        for target in targets
        for number in MODULE_TYPES
    ]


def _word(answer: bytes | None) -> int | None:
    """A bool's answer as its word, None when it is no bool (a revert, too short, above 1)."""
    if answer is None or len(answer) < 32:
        return None
    word = int.from_bytes(answer[:32], "big")
    return word if word < 2 else None


def installed_module(
    questions: Sequence[tuple[str, bytes]], answers: Sequence[bytes]
) -> tuple[str, str] | None:
    """The first ``(target, module type)`` the account answered yes for, ``(target, UNANSWERED)`` for a validator
    question answered with no bool; None when it said no to all."""
    for (_, question), answer in zip(questions, answers, strict=True):
        number, target = abi_decode(["uint256", "address"], question[4:68])
        word = _word(answer)
        if number == 1 and word is None:
            return to_address(target), UNANSWERED
        if word == 1:
            return to_address(target), MODULE_TYPES[number]
    return None


def module_of(chain: Chain, account: str, target: str) -> str | None:
    """The module's verdict on ``target`` for the deployed ``account``, asked one question at a time as the module
    asks them (a revert is no answer): the module type's name, ``"Safe module"`` (``isModuleEnabled``),
    :data:`UNANSWERED`, or None (not a module)."""
    account = to_address(account)

    def ask(data: bytes) -> int | None:
        try:
            return _word(chain.call(account, data))
        except CallRevertedError:
            return None

    validator = ask(_question(1, target))
    if validator is None:
        return UNANSWERED
    if validator == 1:
        return MODULE_TYPES[1]
    if ask(_question(2, target)) == 1:
        return MODULE_TYPES[2]
    hook = ask(_question(4, target))
    if hook is None:
        hook = ask(_question(4, target, GLOBAL_HOOK_CONTEXT))
    if hook == 1:
        return MODULE_TYPES[4]
    if ask(_IS_MODULE_ENABLED + abi_encode(["address"], [to_address(target)])) == 1:
        return "Safe module"
    return None
