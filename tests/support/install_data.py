"""The session module's ``onInstall`` data: sessions enabled while the module is installed (by a factory at creation,
or by an account's own install), as the tests of that path write it."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import encode as abi_encode

from keyscope.session import SESSION_ABI_TYPE, Session

__all__ = ["encode_install_sessions"]


def encode_install_sessions(sessions: Sequence[Session]) -> bytes:
    """The session module's ``onInstall`` data enabling ``sessions``: ``abi.encode(Session[])`` (empty: none)."""
    if not sessions:
        return b""
    return abi_encode([f"{SESSION_ABI_TYPE}[]"], [[session.as_abi() for session in sessions]])
