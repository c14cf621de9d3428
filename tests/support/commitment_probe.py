"""The policy bytes of ``contracts/test/CommittedPolicyProbe.sol``, a prototype of the commitment design that the
gas decomposition measures (``benchmarks/decompose.py``) and ``tests/test_commitment_probe.py`` holds to its
layout: the policy travels after the session key's signature, one storage word holds its keccak."""

from __future__ import annotations

from collections.abc import Sequence

from keyscope.hexutil import keccak

__all__ = ["ADDRESS_TYPE", "EQUAL", "commitment", "policy", "rule"]

EQUAL = 0
ADDRESS_TYPE = 0x0C
"""The argType byte of an address: an unsigned type that leaves 12 bytes of its word zero."""


def rule(word_index: int, condition: int, arg_type: int, value: int | None = None) -> bytes:
    """One rule: its argument's word index, its condition, its argType, then the reference value's length and
    big-endian bytes (none for EQUAL, whose value is the call's own word)."""
    out = bytes([word_index, condition, arg_type])
    if condition == EQUAL:
        return out
    if value is None:
        raise ValueError("a rule that is not EQUAL needs its reference value")
    size = (value.bit_length() + 7) // 8
    return out + bytes([size]) + value.to_bytes(size, "big")


def policy(rules: Sequence[bytes], *, gas_cap_gwei: int = 0, valid_until: int = 0) -> bytes:
    """The policy bytes: a flags byte (which of validAfter, validUntil, valueLimit and the gas cap follow, in bits
    0-3, and the rule count in bits 4-7), the fields it names, then the rules."""
    flags = (len(rules) << 4) | (2 if valid_until else 0) | (8 if gas_cap_gwei else 0)
    out = bytes([flags])
    if valid_until:
        out += valid_until.to_bytes(6, "big")
    if gas_cap_gwei:
        out += gas_cap_gwei.to_bytes(5, "big")
    return out + b"".join(rules)


def commitment(policy_bytes: bytes, equal_words: Sequence[int]) -> bytes:
    """The stored word: keccak256 of the policy and, in order, the words its EQUAL rules bind."""
    return keccak(policy_bytes + b"".join(word.to_bytes(32, "big") for word in equal_words))
