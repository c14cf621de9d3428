"""``file:///path/to/dir``: a store in one directory of JSON files, for a single script or service.

Layout::

    keyscope-store.json        format marker, and a passphrase check (a keystore of a throwaway key)
    keys/<address>.json        one eth-account keystore v3 file per session key (scrypt), plus its label
    grants/<session id>.json   a grant and its revoked / enabled flags
    lanes/<account>-<id>.json  the nonce lanes of one (account, session) and their leases
    outbox/<sha256>.json       one UserOperation record per intent (file named after the intent's hash)
    hashes/<userOpHash>.json   index from an operation's hash to its intent
    nonces/<account>-<nonce>.json  index from an (account, nonce) to the intent whose record has it
    meta/outbox-seq.json       the outbox's sequence counter, and up to where the nonce index follows it (a
                               keyscope from before the index moves the counter alone: its records are then
                               indexed before the next record); meta/nonce-index.json: the index is built

Every file is written atomically (temporary file, fsync, rename, fsync of the directory) with mode 0600
in a 0700 directory. Operations take an exclusive ``flock`` on ``.lock`` besides a thread lock, so several
processes on one machine may share the directory too. The passphrase is checked when the store opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eth_account import Account

from ..errors import (
    BadInputError,
    ConfigurationError,
    SessionStoreError,
    StoreNotFoundError,
    WrongPassphraseError,
)
from ..hexutil import to_address
from ..signing import LocalSigner
from .base import KeyInfo
from .document import KINDS, Documents, DocumentStore, corrupted

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the thread lock alone protects one process
    fcntl = None  # type: ignore[assignment]

__all__ = ["DEFAULT_SCRYPT_N", "FileStore", "is_sqlite_file"]

DEFAULT_SCRYPT_N = 2**18
"""scrypt cost of new keystore files (eth-account's and geth's standard)."""

MARKER = "keyscope-store.json"
FORMAT = "keyscope-file-store"
VERSION = 1
"""The layout version this keyscope reads and writes; a store of a newer one is refused, never written."""
_KEYS = "keys"
_MAX_SCRYPT_N = 2**20


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` is a SQLite database file (by its header; False when it cannot be read)."""
    try:
        with path.open("rb") as file:
            return file.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600): temporary file, fsync, rename over ``path``, fsync "
    "the folder."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on some systems
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SessionStoreError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupted(f"file {path}", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise corrupted(f"file {path}", "not a JSON object")
    return doc


class _FileDocuments(Documents):
    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, kind: str, name: str) -> Path:
        return self._root / kind / f"{name}.json"

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        return _read_json(self.path(kind, name))

    def write(self, kind: str, name: str, doc: dict[str, Any]) -> None:
        write_atomically(self.path(kind, name), json.dumps(doc, sort_keys=True, indent=1).encode())

    def delete(self, kind: str, name: str) -> bool:
        try:
            self.path(kind, name).unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self._root / kind)
        return True

    def names(self, kind: str) -> list[str]:
        folder = self._root / kind
        return sorted(
            p.name[: -len(".json")]
            for p in folder.iterdir()
            if p.name.endswith(".json") and not p.name.startswith(".")
        )

    def where(self, kind: str, name: str) -> str:
        return f"file {self.path(kind, name)}"


def _foreign(name: str) -> bool:
    """Whether a file in the store's folder is not one the store writes (another process may be creating
    the store: its folders, lock and temporary files are expected)."""
    return name not in (*KINDS, _KEYS, ".lock", MARKER) and not name.startswith(".tmp-")


def _check_kdf(keystore: dict[str, Any]) -> None:
    """Refuse keystores whose KDF parameters would take unbounded time or memory to try."""
    crypto = keystore.get("crypto") or keystore.get("Crypto")
    if not isinstance(crypto, dict) or not isinstance(crypto.get("kdfparams"), dict):
        raise ValueError("no crypto.kdfparams")
    params = crypto["kdfparams"]
    if crypto.get("kdf") == "scrypt":
        n, r, p = params.get("n"), params.get("r"), params.get("p")
        if not all(isinstance(v, int) and v > 0 for v in (n, r, p)) or n > _MAX_SCRYPT_N or r > 32 or p > 16:
            raise ValueError(f"scrypt parameters out of range: n={n} r={r} p={p}")
    elif crypto.get("kdf") == "pbkdf2":
        if not isinstance(params.get("c"), int) or not 0 < params["c"] <= 10_000_000:
            raise ValueError("pbkdf2 iteration count out of range")
    else:
        raise ValueError(f"unsupported kdf {crypto.get('kdf')!r}")


class FileStore(DocumentStore):
    """A directory of JSON files; keys in keystore v3 files encrypted with ``passphrase``.

    Without a passphrase the store serves grants, lanes and the outbox and refuses key operations.
    ``scrypt_n`` is the scrypt cost of newly written key files (default :data:`DEFAULT_SCRYPT_N`). With ``create``
    false the folder must already hold a keyscope store (:class:`StoreNotFoundError` otherwise, and nothing is
    created).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        passphrase: str | None = None,
        scrypt_n: int | None = None,
        create: bool = True,
    ) -> None:
        try:
            self.root = Path(path).expanduser().absolute()
        except (
            RuntimeError
        ):  # ~name of no user of this machine (Path says only "Could not determine home directory")
            raise BadInputError(
                f"the file store's folder {str(path)!r} starts with a ~ that names no user's home folder here: give "
                "the folder's full path"
            ) from None
        self.url = self.root.as_uri()
        if passphrase is not None and (not isinstance(passphrase, str) or not passphrase):
            raise BadInputError("the passphrase must be a non-empty string")
        cost = DEFAULT_SCRYPT_N if scrypt_n is None else scrypt_n
        if (
            isinstance(cost, bool)
            or not isinstance(cost, int)
            or cost < 2
            or cost & (cost - 1)
            or cost > _MAX_SCRYPT_N
        ):
            raise BadInputError(f"scrypt_n must be a power of two between 2 and 2**20, got {scrypt_n!r}")
        self._passphrase = passphrase
        self._scrypt_n = cost
        self._docs = _FileDocuments(self.root)
        self._lock = threading.RLock()
        self._depth = 0
        self._lock_file: int | None = None
        self._cache: dict[str, tuple[tuple[int, int, int], LocalSigner]] = {}
        self._prepare(create)

    # -- opening ---------------------------------------------------------------------------------------

    def _prepare(self, create: bool) -> None:
        try:
            if self.root.exists() and not self.root.is_dir():
                if is_sqlite_file(self.root):
                    raise SessionStoreError(
                        f"{self.root} is a SQLite database, not a file store's directory: open it as "
                        f"sqlite:///{self.root.absolute()}"
                    )
                raise SessionStoreError(
                    f"{self.root} is not a directory: give a directory for the file store"
                )
            fresh = not (self.root / MARKER).exists()
            if fresh and create and self.root.is_dir() and any(_foreign(p.name) for p in self.root.iterdir()):
                raise SessionStoreError(
                    f"{self.root} is not empty and is not a keyscope store (it has no {MARKER}): give a new or empty "
                    "directory"
                )
            if fresh and not create:
                if not self.root.exists():
                    raise StoreNotFoundError(self.url, f"there is no store at {self.root}")
                if not any(self.root.iterdir()):
                    raise StoreNotFoundError(
                        self.url, f"the folder {self.root} is empty, not a keyscope store"
                    )
                # the folder of a SQLite store (the default one's, .keyscope) given for the store: its URL is said
                databases = sorted(p for p in self.root.iterdir() if p.is_file() and is_sqlite_file(p))
                held = "".join(
                    f"; it holds the SQLite store {p.name}, sqlite:///{p.absolute()}" for p in databases[:1]
                )
                raise StoreNotFoundError(
                    self.url, f"the folder {self.root} is not a keyscope store (it has no {MARKER}{held})"
                )
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            for kind in (*KINDS, _KEYS):
                (self.root / kind).mkdir(mode=0o700, exist_ok=True)
            self._lock_file = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(self.root) else ""
            raise SessionStoreError(
                f"cannot open the file store at {self.root}: {exc.strerror or exc}{where}; give a folder this user "
                "can create and write"
            ) from None
        with self._locked():
            self._check_marker()
            self._index_nonces()

    def _check_marker(self) -> None:
        path = self.root / MARKER
        marker = _read_json(path)
        if marker is not None and marker.get("format") != FORMAT:
            raise corrupted(f"file {path}", f"format {marker.get('format')!r}, expected {FORMAT!r}")
        version = None if marker is None else marker.get("version")
        if marker is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise corrupted(f"file {path}", f"version {version!r} is not a version number")
        if version is not None and version > VERSION:
            raise SessionStoreError(
                f"the file store at {self.root} is of version {version}, newer than this keyscope knows "
                f"({VERSION}): upgrade keyscope to use it"
            )
        if self._passphrase is None:
            if marker is None:
                write_atomically(path, json.dumps({"format": FORMAT, "version": VERSION}).encode())
            return
        check = None if marker is None else marker.get("check")
        if check is not None:
            if not isinstance(check, dict):
                raise corrupted(f"file {path}", "the passphrase check is not a keystore object")
            try:
                _check_kdf(check)
                Account.decrypt(check, self._passphrase)
            except ValueError as exc:
                if "MAC mismatch" in str(exc):
                    raise WrongPassphraseError(
                        f"the passphrase does not open the file store at {self.root}: give the "
                        "passphrase its "
                        "keys were stored with"
                    ) from None
                raise corrupted(f"file {path}", exc) from None
            except Exception as exc:
                raise corrupted(
                    f"file {path}", f"unreadable passphrase check: {type(exc).__name__}"
                ) from None
            return
        # No check yet: make sure the passphrase opens the keys already there, then write one.
        for name in self._docs.names(_KEYS)[:1]:
            self._decrypt_file(self._key_path_by_name(name), name, first=True)
        check_doc = Account.encrypt(
            secrets.token_bytes(32), self._passphrase, kdf="scrypt", iterations=self._scrypt_n
        )
        write_atomically(
            path, json.dumps({"format": FORMAT, "version": VERSION, "check": check_doc}).encode()
        )

    # -- locking ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            outermost = self._depth == 0
            if outermost and fcntl is not None and self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            except OSError as exc:
                raise SessionStoreError(
                    f"file store at {self.root}: {exc}; check the disk and permissions"
                ) from exc
            finally:
                self._depth -= 1
                if outermost and fcntl is not None and self._lock_file is not None:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None
            self._cache.clear()

    # -- keys ------------------------------------------------------------------------------------------

    def _key_path(self, address: str) -> Path:
        return self.root / _KEYS / f"{address}.json"

    def _key_path_by_name(self, name: str) -> Path:
        return self.root / _KEYS / f"{name}.json"

    def has_secret(self) -> bool:
        with self._locked():
            marker = _read_json(self.root / MARKER)
            return (marker is not None and marker.get("check") is not None) or bool(self._docs.names(_KEYS))

    def _need_passphrase(self) -> str:
        if self._passphrase is None:
            raise ConfigurationError(
                f"the file store at {self.root} was opened without a passphrase: open it with passphrase= to "
                "store or read keys"
            )
        return self._passphrase

    def _decrypt_file(self, path: Path, name: str, *, first: bool = False) -> LocalSigner:
        passphrase = self._need_passphrase()
        keystore = _read_json(path)
        if keystore is None:
            raise SessionStoreError(f"no key for {name} in {self.url}: store it with put_key first")
        try:
            _check_kdf(keystore)
            raw = Account.decrypt(keystore, passphrase)
        except ValueError as exc:
            if "MAC mismatch" not in str(exc):
                raise corrupted(f"key file {path}", exc) from None
            if first:
                raise WrongPassphraseError(
                    f"the passphrase does not open the key files in {self.root}: give the passphrase "
                    "they were "
                    "stored with"
                ) from None
            raise corrupted(
                f"key file {path}",
                "it does not decrypt with the store's passphrase, which the store's check accepted",
            ) from None
        except Exception as exc:
            raise corrupted(f"key file {path}", f"not a keystore v3 file ({type(exc).__name__})") from None
        try:
            signer = LocalSigner(bytes(raw))
        except Exception:
            raise corrupted(f"key file {path}", "it decrypts to a value that is not a private key") from None
        if signer.address != name:
            raise corrupted(f"key file {path}", f"it holds the key of {signer.address}")
        return signer

    def _put_key(self, signer: LocalSigner, label: str | None) -> None:
        passphrase = self._need_passphrase()
        path = self._key_path(signer.address)
        with self._locked():
            previous = _read_json(path) if path.exists() else None
            keystore = dict(
                Account.encrypt(signer.private_key, passphrase, kdf="scrypt", iterations=self._scrypt_n)
            )
            keystore["label"] = label if label is not None or previous is None else previous.get("label")
            keystore["created_at"] = (previous or {}).get("created_at", time.time())
            write_atomically(path, json.dumps(keystore, indent=1).encode())
            self._cache.pop(signer.address, None)

    def get_key(self, address: str) -> LocalSigner:
        name = to_address(address)
        path = self._key_path(name)
        with self._locked():
            try:
                info = path.stat()
            except FileNotFoundError:
                self._cache.pop(name, None)
                raise SessionStoreError(
                    f"no key for {name} in {self.url}: store it with put_key first"
                ) from None
            stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
            cached = self._cache.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            signer = self._decrypt_file(path, name)
            self._cache[name] = (stamp, signer)
            return signer

    def has_key(self, address: str) -> bool:
        return self._key_path(to_address(address)).exists()

    def delete_key(self, address: str) -> bool:
        name = to_address(address)
        with self._locked():
            self._cache.pop(name, None)
            try:
                self._key_path(name).unlink()
            except FileNotFoundError:
                return False
            _fsync_dir(self.root / _KEYS)
            return True

    def list_keys(self) -> list[KeyInfo]:
        infos = []
        with self._locked():
            for name in self._docs.names(_KEYS):
                path = self._key_path_by_name(name)
                doc = _read_json(path)
                if doc is None:
                    continue
                label = doc.get("label")
                created = doc.get("created_at")
                if (label is not None and not isinstance(label, str)) or not isinstance(
                    created, (int, float)
                ):
                    raise corrupted(f"key file {path}", "its label or created_at is malformed")
                infos.append(KeyInfo(name, label, float(created)))
        return sorted(infos, key=lambda info: (info.created_at, info.address))
