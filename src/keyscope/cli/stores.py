"""The session store of a command, and finding a grant in it by its id."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import BadInputError, ConfigurationError, SessionStoreError
from ..grant import SessionGrant
from ..hexutil import to_bytes
from ..store import SessionStore, open_store
from .settings import ENV_STORE_KEK, ENV_STORE_PASSPHRASE


def open_session_store(url: str, *, keys: bool) -> SessionStore:
    """Open the store at ``url`` with the passphrase in ``KEYSCOPE_STORE_PASSPHRASE`` or the KEK (64 hex
    digits) in ``KEYSCOPE_STORE_KEK`` when one is set (a wrong one is refused at once). With ``keys`` (the
    command reads or writes session keys) one of them must be set; grants need none. The folder of a new
    SQLite file is created."""
    passphrase = os.environ.get(ENV_STORE_PASSPHRASE) or None
    kek_text = os.environ.get(ENV_STORE_KEK, "").strip() or None
    if passphrase and kek_text:
        raise ConfigurationError(f"set {ENV_STORE_PASSPHRASE} or {ENV_STORE_KEK}, not both")
    if keys and not (passphrase or kek_text):
        raise ConfigurationError(
            f"the session store keeps session keys encrypted and no secret is set: set {ENV_STORE_PASSPHRASE} "
            f"(a passphrase) or {ENV_STORE_KEK} (32 bytes as 64 hex digits)"
        )
    kek = None
    if kek_text:
        try:
            kek = to_bytes(kek_text, name=ENV_STORE_KEK, length=32)
        except BadInputError:
            raise ConfigurationError(f"{ENV_STORE_KEK} must be 32 bytes as 64 hex digits") from None
    text = url.strip()
    if text.lower().startswith("memory:"):
        raise BadInputError(
            f"--store {text}: a memory store is gone when the command ends; give sqlite:///FILE, postgresql://... "
            "or a folder"
        )
    if text.lower().startswith("sqlite") and ":///" in text:
        path = text.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise SessionStoreError(f"cannot create the folder of {path}: {error.strerror}") from None
    return open_store(text, passphrase=passphrase, kek=kek)


def find_grant(store: SessionStore, session_id: str) -> SessionGrant:
    """The grant whose id is ``session_id``, or starts with it (at least 4 hex digits, unique)."""
    text = session_id.strip().lower()
    digits = text[2:] if text.startswith("0x") else text
    if not digits or len(digits) > 64 or not re.fullmatch(r"[0-9a-f]+", digits):
        raise BadInputError(
            f"{session_id!r} is not a session id: give 0x and 64 hex digits (or a unique prefix), as "
            "`ape run sessions` and `keyscope sessions` list them"
        )
    if len(digits) == 64:
        try:
            return store.get_grant("0x" + digits)
        except SessionStoreError:
            raise BadInputError(
                f"unknown session id 0x{digits}: the store {store.url} has no grant with session id 0x{digits}; "
                "list the sessions with `ape run sessions` or `keyscope sessions`, or give the --store that "
                "holds it"
            ) from None
    if len(digits) < 4:
        raise BadInputError(f"session id prefix {session_id!r} is too short: give at least 4 hex digits")
    matches = [grant for grant in store.list_grants() if grant.session_id.hex().startswith(digits)]
    if not matches:
        raise BadInputError(
            f"no session id starting with 0x{digits} in the store {store.url}: list the sessions with `ape run "
            "sessions` or `keyscope sessions`, or give the --store that holds it"
        )
    if len(matches) > 1:
        raise BadInputError(f"session id prefix 0x{digits} matches {len(matches)} sessions: give more digits")
    return matches[0]
