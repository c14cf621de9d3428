"""JSON objects read strictly: a key written twice in one object is refused, never resolved.

Python's reader keeps an object's last copy of a key; other readers keep the first or refuse. A policy file an
operator reviewed, or a request a proxy judged before a service, would then mean one thing to the reviewer and
another here. Pass :func:`one_of_each_key` as ``json.loads(..., object_pairs_hook=one_of_each_key)``.
"""

from __future__ import annotations

from typing import Any

from .errors import BadInputError, shown


class DuplicateKeyError(BadInputError):
    """A JSON object writes ``key`` twice (a ``ValueError``, as any JSON that cannot be read is)."""

    def __init__(self, message: str, *, key: str) -> None:
        self.key = key
        super().__init__(message)


def one_of_each_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; raises :class:`DuplicateKeyError` for a key written twice."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise DuplicateKeyError(
                f"the JSON object holds {shown(key)} twice (values {shown(data[key])} and {shown(value)}): readers "
                "keep different copies, so neither is taken (which was meant is not guessed); keep one",
                key=key,
            )
        data[key] = value
    return data
