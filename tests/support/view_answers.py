"""The ways a contract may answer a view question (a module type, whether it is initialised), as the tests' odd
answerers (``contracts/test/OddModuleAnswers.sol``, the install-target differential's targets) give them: each form is
how the answerer ends the call (``RETURN``, ``REVERT`` or ``BURN`` all its gas) and the bytes it returns or reverts
with."""

from __future__ import annotations

RETURN, REVERT, BURN = 1, 2, 3
"""How an answerer ends the call, as the Solidity answerers number it."""


def word(value: int) -> bytes:
    """``value`` as one ABI word."""
    return value.to_bytes(32, "big")


ANSWER_FORMS: dict[str, tuple[int, bytes]] = {
    "true": (RETURN, word(1)),
    "true, long": (RETURN, word(1) + word(7)),
    "false": (RETURN, word(0)),
    "a word above 1": (RETURN, word(2)),
    "one byte": (RETURN, b"\x01"),
    "nothing": (RETURN, b""),
    "a revert": (REVERT, b""),
    "a revert of a true word": (REVERT, word(1)),
}
"""Every answer but all the gas burnt (``BURN``), which a test draws apart: a second burn in one call leaves it too
little gas to finish, as it would any bundler's."""
