"""The session store of a command, and finding a grant in it by its id (the full id or a unique prefix of at
least 4 hex digits, with or without ``0x``: the one id syntax of every tool)."""

from __future__ import annotations

import os
import re
import weakref
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    ConfigurationError,
    SessionStoreError,
    StoreNotFoundError,
    has_private_key_form,
)
from ..grant import SessionGrant
from ..hexutil import to_bytes
from ..store import SessionStore, open_store
from ..store.opening import refuse_scheme_without_slashes
from ..urls import hide_password
from .settings import DEFAULT_STORE_URL, ENV_STORE, ENV_STORE_KEK, ENV_STORE_PASSPHRASE

__all__ = ["find_grant", "local_store_path", "open_session_store", "shown_store_url", "store_url_of"]

_GIVEN_URLS: weakref.WeakKeyDictionary[SessionStore, str] = weakref.WeakKeyDictionary()


def shown_store_url(url: str) -> str:
    """A store URL as the person gave it, with a password in it hidden."""
    return hide_password(url.strip())


def store_url_of(store: SessionStore) -> str:
    """How messages name ``store``: the URL the person gave (:func:`open_session_store`), else the store's own."""
    return _GIVEN_URLS.get(store, store.url)


def open_session_store(url: str, *, keys: bool, existing: bool = False) -> SessionStore:
    """Open the store at ``url`` with the passphrase in ``KEYSCOPE_STORE_PASSPHRASE`` or the KEK (64 hex
    digits) in ``KEYSCOPE_STORE_KEK`` when one is set (a wrong one is refused at once; without ``keys``, a
    store that has no secret yet is opened without it, so that a command reading no keys never sets one).
    With ``keys`` (the command reads or writes session keys) one of them must be set; grants need none. The folder of a new
    SQLite file is created; with ``existing`` (a command that only reads or marks what is there) the store is
    opened to use an existing one only (``create=False``): a path that does not exist, an empty file or folder,
    or another program's database is refused, so that a mistyped path is not taken for an empty store (and
    nothing is created or written there)."""
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
            kek = to_bytes(kek_text, name=ENV_STORE_KEK, length=32, secret=True)
        except BadInputError:
            raise ConfigurationError(
                f"{ENV_STORE_KEK} must be 32 bytes as 64 hex digits (0x optional), the store's key-encryption key: "
                f"set it to the one the store was created with, or put a passphrase in {ENV_STORE_PASSPHRASE} "
                f"instead and unset {ENV_STORE_KEK}"
            ) from None
    text = url.strip()
    if not text:  # a variable set to spaces: not a URL, and not the default either
        raise BadInputError(
            f"--store (or {ENV_STORE}) is blank: give the store's URL, sqlite:///FILE, postgresql://user@host/db or "
            "a folder"
        )
    if has_private_key_form(
        text
    ):  # refused before any message shows it as a path (or creates a file named so)
        raise BadInputError(
            f"--store (or {ENV_STORE}): {PRIVATE_KEY_NOT_SHOWN} is not a store's URL: give sqlite:///FILE, "
            f"postgresql://user@host/db or a folder; a store's secret goes in {ENV_STORE_PASSPHRASE} or {ENV_STORE_KEK}"
        )
    if text.lower().startswith("memory:"):
        raise BadInputError(
            f"--store {text}: a memory store is gone when the command ends; give sqlite:///FILE, postgresql://... "
            "or a folder"
        )
    try:
        refuse_scheme_without_slashes(text)  # before a message shows it as a path, its password whole
    except BadInputError as error:
        raise BadInputError(f"--store (or {ENV_STORE}): {error}") from None
    shown = shown_store_url(text)
    if existing:
        _require_existing(text, shown)
    if text.lower().startswith("sqlite") and ":///" in text:
        path = text.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            folder = Path(path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
                cause = f"{blocker} is a file, not a folder" if blocker is not None else error.strerror
                raise SessionStoreError(
                    f"--store {shown}: cannot create the folder {folder}: {cause}"
                ) from None
    try:
        store = _open(text, passphrase, kek, keys=keys, create=not existing)
    except StoreNotFoundError as error:
        postgres = text.lower().startswith(("postgresql:", "postgres:"))
        fix = "check the database and its search_path" if postgres else "check the path"
        raise SessionStoreError(
            f"--store {shown}: {error.reason}, and nothing was written to it: {fix}, or give the store your workers "
            "use"
        ) from None
    except SessionStoreError as error:
        message = str(error)
        raise type(error)(message if shown in message else f"--store {shown}: {message}") from None
    _GIVEN_URLS[store] = shown
    return store


def _open(url: str, passphrase: str | None, kek: bytes | None, *, keys: bool, create: bool) -> SessionStore:
    """The store at ``url`` opened with the secret, except that a command reading no keys never sets the
    secret of a store that has none yet (a store's first secret becomes its secret: a mistyped one here
    would lock every worker out); such a store holds no keys, and is opened without it."""
    if keys or (passphrase is None and kek is None):
        return open_store(url, passphrase=passphrase, kek=kek, create=create)
    store = open_store(url, create=create)
    try:
        if not store.has_secret():
            return store
    except BaseException:
        store.close()
        raise
    store.close()
    return open_store(url, passphrase=passphrase, kek=kek, create=create)


def local_store_path(url: str) -> Path | None:
    """The file (SQLite) or folder (file store) ``url`` names on this machine; None for other stores."""
    lower = url.lower()
    if lower.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1].split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None
    if lower.startswith("file://"):
        parts = urlsplit(url)
        # a host (file://relative/dir): the store names it, as a path it is not
        return Path(unquote(parts.path)) if parts.netloc in ("", "localhost") else None
    if "://" not in url:
        return Path(url)
    return None


def _require_existing(url: str, shown: str) -> None:
    """Refuse a store on this machine that does not exist, saying why (a file where a folder must be, or a
    relative SQLite path that was meant as an absolute one)."""
    path = local_store_path(url)
    if path is None or path.exists():
        return  # what is there, the store itself judges (opened to use an existing store only)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        cause = f"{blocker} is a file, not a folder"
    else:
        cause = f"there is no store at {path.absolute()}"
        if url.startswith("~"):
            try:
                full = f", {Path(url).expanduser()}"
            except RuntimeError:  # ~name of no user of this machine: no full path to suggest
                full = ""
            cause += f" (~ is not expanded here, only by a shell: give the full path{full})"
        elif url == DEFAULT_STORE_URL:
            cause += " (no session was granted from this folder yet: `ape run grant` stores the sessions it grants there)"
        elif url.lower().startswith("sqlite") and not path.is_absolute():
            cause += f" (sqlite:///{path} is relative to the current folder; sqlite:////{path} is absolute)"
    raise SessionStoreError(f"--store {shown}: {cause}: check the path, or give the store your workers use")


def _id_digits(name: str) -> str:
    """A session id, given or a stored grant's name, as lowercase hex digits without ``0x``."""
    text = name.strip().lower()
    return text[2:] if text.startswith("0x") else text


def find_grant(store: SessionStore, session_id: str) -> SessionGrant:
    """The grant whose id is ``session_id``, or starts with it (at least 4 hex digits, unique; ``0x`` optional).

    A prefix that also starts an unreadable grant's id picks none: that grant may be the session meant."""
    where = store_url_of(store)
    digits = _id_digits(session_id)
    if not digits or len(digits) > 64 or not re.fullmatch(r"[0-9a-f]+", digits):
        raise BadInputError(
            f"{session_id!r} is not a session id: give 0x and 64 hex digits (or a unique prefix of at least 4), as "
            "`ape run sessions` and `keyscope sessions` list them"
        )
    if len(digits) == 64:
        try:
            return store.get_grant("0x" + digits)
        except SessionStoreError as error:
            if "no grant with session id" not in str(error):
                raise  # there, but unreadable: say so
            # shown by its first 8 digits, as the listings show ids: a private key pasted here (it has the same
            # form) is not echoed to the terminal
            raise BadInputError(
                f"unknown session id 0x{digits[:8]}…: the store {where} has no grant with that session id (shown "
                "by its first 8 hex digits); list the sessions with `ape run sessions` or `keyscope sessions`, "
                "or give the --store that holds it"
            ) from None
    if len(digits) < 4:
        raise BadInputError(f"session id prefix {session_id!r} is too short: give at least 4 hex digits")
    unreadable: list[str] = []
    grants = store.list_grants(on_corrupt=lambda name, _error: unreadable.append(name))
    matches = [grant for grant in grants if grant.session_id.hex().startswith(digits)]
    # an unreadable grant the prefix names may be the session meant: never pick another one in its place
    damaged = [name for name in unreadable if _id_digits(name).startswith(digits)]
    if damaged:
        readable = f" and {len(matches)} readable one(s)" if matches else ""
        raise BadInputError(
            f"session id prefix 0x{digits} matches the unreadable grant(s) {', '.join(damaged)}{readable} in the "
            f"store {where}: it may be the session meant, so none is picked and nothing was done. Restore the "
            "unreadable grant from a backup, or give the full session id of the one meant"
        )
    if not matches:
        skipped = f" ({len(unreadable)} unreadable grant(s) skipped)" if unreadable else ""
        raise BadInputError(
            f"no session id starting with 0x{digits} in the store {where}{skipped}: list the sessions with `ape "
            "run sessions` or `keyscope sessions`, or give the --store that holds it"
        )
    if len(matches) > 1:
        raise BadInputError(f"session id prefix 0x{digits} matches {len(matches)} sessions: give more digits")
    return matches[0]
