"""The session module's ``onInstall`` data: sessions enabled while the module is installed (by a factory at creation,
or by an account's own install), as the tests of that path write it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import encode as abi_encode

from keyscope.hexutil import to_address
from keyscope.revert import decode_revert
from keyscope.session import SESSION_ABI_TYPE, Session
from support.anvil_chain import AnvilChain
from support.raw_call import revert_bytes

__all__ = ["encode_install_sessions"]


def encode_install_sessions(sessions: Sequence[Session]) -> bytes:
    """The session module's ``onInstall`` data enabling ``sessions``: ``abi.encode(Session[])`` (empty: none)."""
    if not sessions:
        return b""
    return abi_encode([f"{SESSION_ABI_TYPE}[]"], [[session.as_abi() for session in sessions]])


def install_verdict(
    chain: AnvilChain, module: Any, account: str, session: Session
) -> tuple[int, str, int] | None:
    """``(permission index, target, module type)`` of the module's ``PermissionTargetIsModule`` when ``account`` (an
    address without code, as an account its proxy's constructor initialises) enables ``session``; None when it
    enables it."""
    data = module.enableSession.encode_input(session.as_abi())
    tx = {"from": account, "to": module.address, "data": "0x" + data.hex(), "gas": 30_000_000}
    try:
        chain.call(tx)
    except Exception as error:
        decoded = decode_revert(revert_bytes(error))
        assert decoded is not None and decoded[0] == "PermissionTargetIsModule", (decoded, error)
        fields = decoded[1]
        return fields["permissionIndex"], to_address(fields["target"]), fields["moduleType"]
    return None
