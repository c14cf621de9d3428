"""``memory://``: a store that lives in this process only, for tests and one-off scripts.

Records are kept as JSON text, exactly as the file store writes them, so that what goes in comes out
as a copy (never an alias of a caller's object). Keys are kept as :class:`~keyscope.signing.LocalSigner`
objects: nothing is persisted, so there is nothing to encrypt.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import SessionStoreError
from ..hexutil import to_address
from ..signing import LocalSigner
from .base import KeyInfo
from .document import KINDS, Documents, DocumentStore

__all__ = ["MemoryStore"]


class _MemoryDocuments(Documents):
    def __init__(self) -> None:
        self._data: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        text = self._data[kind].get(name)
        return None if text is None else dict(json.loads(text))

    def write(self, kind: str, name: str, doc: dict[str, Any]) -> None:
        self._data[kind][name] = json.dumps(doc, sort_keys=True)

    def delete(self, kind: str, name: str) -> bool:
        return self._data[kind].pop(name, None) is not None

    def names(self, kind: str) -> list[str]:
        return sorted(self._data[kind])

    def where(self, kind: str, name: str) -> str:
        return f"memory record {kind}/{name}"


class MemoryStore(DocumentStore):
    """All records in this process's memory; gone when it exits. Thread-safe."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._docs = _MemoryDocuments()
        self._lock = threading.RLock()
        self._keys: dict[str, tuple[LocalSigner, str | None, float]] = {}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def _put_key(self, signer: LocalSigner, label: str | None) -> None:
        with self._lock:
            previous = self._keys.get(signer.address)
            created = previous[2] if previous else time.time()
            kept_label = label if label is not None or previous is None else previous[1]
            self._keys[signer.address] = (LocalSigner(signer.private_key), kept_label, created)

    def get_key(self, address: str) -> LocalSigner:
        key = to_address(address)
        with self._lock:
            entry = self._keys.get(key)
        if entry is None:
            raise SessionStoreError(f"no key for {key} in {self.url}: store it with put_key first")
        return entry[0]

    def has_key(self, address: str) -> bool:
        key = to_address(address)
        with self._lock:
            return key in self._keys

    def delete_key(self, address: str) -> bool:
        key = to_address(address)
        with self._lock:
            return self._keys.pop(key, None) is not None

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            infos = [KeyInfo(address, label, created) for address, (_, label, created) in self._keys.items()]
        return sorted(infos, key=lambda info: (info.created_at, info.address))
