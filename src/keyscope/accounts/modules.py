"""Which contracts an account has installed as modules, asked as the session module asks (ERC-7579
``isModuleInstalled`` for validators, executors and hooks), in questions that ride in one batch of reads.

A session may neither call another module of its account (the module refuses such grants) nor have its signatures
verified by one (the module refuses them): the SDK asks the same questions to refuse both first."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ..hexutil import to_address
from .base import AccountKind

__all__ = ["MODULE_TYPES", "installed_module", "module_questions"]

_IS_MODULE_INSTALLED = bytes.fromhex("112d3a7d")
"""IERC7579ModuleConfig.isModuleInstalled(uint256,address,bytes)."""
MODULE_TYPES = {1: "validator", 2: "executor", 4: "hook"}
"""The module types asked about, by name (fallback handlers are installed per selector)."""


def module_questions(kind: AccountKind, account: str, targets: Sequence[str]) -> list[tuple[str, bytes]]:
    """``(account, isModuleInstalled(type, target, ""))`` for each target and module type, for a batch of reads."""
    # Safe7579 answers the hook question only with a hook type in the context (it reverts without one)
    types = [number for number in MODULE_TYPES if number != 4 or kind.name != "safe7579"]
    return [
        (account, _IS_MODULE_INSTALLED + abi_encode(["uint256", "address", "bytes"], [number, target, b""]))
        for target in targets
        for number in types
    ]


def installed_module(
    questions: Sequence[tuple[str, bytes]], answers: Sequence[bytes]
) -> tuple[str, str] | None:
    """The first ``(target, module type)`` the account answered yes for, None when it said no to all."""
    for (_, question), answer in zip(questions, answers, strict=True):
        if len(answer) >= 32 and int.from_bytes(answer[:32], "big") == 1:
            number, target = abi_decode(["uint256", "address"], question[4:68])
            return to_address(target), MODULE_TYPES[number]
    return None
