"""Premises the docs gained in the last two rounds, pinned where no test held them as worded.

The README says that ``owner.invalidate_all()`` and uninstalling the module "move the account to a new epoch drawn
from the block that runs them": the module draws that epoch only for ``invalidateAllSessions()``, the call without an
argument (``invalidateAllSessions(uint32)`` moves the account to the caller's epoch, which a caller can foresee). So
every path of the SDK that ends every session for good must send the call without an argument, the whole calldata
four bytes: the owner's invalidation, the owner's uninstall (whose invalidation comes before the uninstall, in one
operation) and the EOA's own-transaction invalidation. Pinned without a chain, on the calls the SDK builds.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from eth_utils import keccak

from keyscope.eoa import EOAOwner
from keyscope.execution import Call
from keyscope.owner import Owner

MODULE = "0x" + "11" * 20
ACCOUNT = "0x" + "22" * 20
UNINSTALL = b"\xde\xad\xbe\xef"
DRAWN_BY_THE_MODULE = keccak(b"invalidateAllSessions()")[:4]


def _owner_sending_to(sent: list[Any]) -> Any:
    """A stand-in for an owner whose operations are recorded in ``sent`` instead of sent, on a deployed-or-not
    account that runs batches."""
    return SimpleNamespace(
        network=SimpleNamespace(module=MODULE),
        account=ACCOUNT,
        kind=SimpleNamespace(uninstall_validator_call=lambda account, module: Call(account, 0, UNINSTALL)),
        is_deployed=lambda: False,
        execute=lambda calls: sent.append(calls),
    )


def _as_calls(sent: Any) -> list[Call]:
    """The calls of one operation, whether one call or a batch was given."""
    return list(sent) if isinstance(sent, list) else [sent]


def test_the_owner_s_invalidation_leaves_the_epoch_to_the_block() -> None:
    """``Owner.invalidate_all`` sends ``invalidateAllSessions()`` to the module, four bytes, no epoch of its own."""
    sent: list[Any] = []
    Owner.invalidate_all(cast(Owner, _owner_sending_to(sent)))
    assert len(sent) == 1
    (call,) = _as_calls(sent[0])
    assert call.target == MODULE and call.value == 0
    assert bytes(call.data) == DRAWN_BY_THE_MODULE


def test_the_owner_s_uninstall_invalidates_with_the_epoch_left_to_the_block_before_uninstalling() -> None:
    """``Owner.uninstall_sessions`` sends one operation: ``invalidateAllSessions()`` without an argument, then the
    uninstall."""
    sent: list[Any] = []
    Owner.uninstall_sessions(cast(Owner, _owner_sending_to(sent)))
    assert len(sent) == 1
    invalidate, uninstall = _as_calls(sent[0])
    assert invalidate.target == MODULE and bytes(invalidate.data) == DRAWN_BY_THE_MODULE
    assert uninstall.target == ACCOUNT and bytes(uninstall.data) == UNINSTALL


def test_the_eoa_s_own_invalidation_leaves_the_epoch_to_the_block() -> None:
    """``EOAOwner.invalidate_all_directly`` sends the EOA's transaction of ``invalidateAllSessions()`` to the
    module."""
    sent: list[tuple[str, bytes]] = []
    eoa = SimpleNamespace(
        network=SimpleNamespace(module=MODULE),
        send_transaction=lambda to, data: sent.append((to, bytes(data))),
    )
    EOAOwner.invalidate_all_directly(cast(EOAOwner, eoa))
    assert sent == [(MODULE, DRAWN_BY_THE_MODULE)]
