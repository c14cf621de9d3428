"""Waiting for the local chain's clock: tests whose sessions open and close with real time."""

from __future__ import annotations

import time

from keyscope.local import LocalStack

__all__ = ["mine_until"]


def mine_until(stack: LocalStack, moment: int) -> None:
    """Wait for the wall clock to pass ``moment`` and mine a block stamped after it (anvil stamps blocks by its
    own clock, which may trail the wall clock by a second: mine again until a block is)."""
    deadline = time.time() + 30
    while True:
        time.sleep(max(0.0, moment - time.time()))
        stack.mine()
        if stack.timestamp() >= moment:
            return
        assert time.time() < deadline, f"no block stamped at or after {moment} within 30 s"
        time.sleep(0.5)
