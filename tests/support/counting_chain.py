"""A chain that records what was asked of it, for tests of how many round trips the SDK makes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyscope.chain import Reads, read_many


class CountingChain:
    """The real chain, with a record of what was asked of it: one entry in :attr:`asked` per method call, and each
    ``call`` (an ``eth_call``) in :attr:`calls` as ``(to, data)``; the keyword arguments of every other method call
    in :attr:`options`, as ``(method, keywords)``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked: list[str] = []
        self.calls: list[tuple[str, bytes]] = []
        self.options: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.asked.append(name)
            self.options.append((name, dict(kwargs)))
            return method(*args, **kwargs)

        return counted

    def call(self, to: str, data: bytes, **options: Any) -> bytes:
        self.asked.append("call")
        self.calls.append((to, bytes(data)))
        return bytes(self.inner.call(to, data, **options))

    def read_many(
        self,
        calls: Sequence[tuple[str, bytes]] = (),
        *,
        codes: Sequence[str] = (),
        timestamp: bool = False,
        optional: Sequence[tuple[str, bytes]] = (),
    ) -> Reads:
        self.asked.append("read_many")
        return read_many(self.inner, calls, codes=codes, timestamp=timestamp, optional=optional)
