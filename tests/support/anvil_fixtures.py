"""The fixtures of a test file that runs its checks on an anvil of its own: one node and one session harness for the
whole file (cheaper per call than ape's in-process chain), which tests share by snapshot and revert."""

from collections.abc import Iterator
from typing import Any

import pytest

from support.anvil_chain import AnvilChain, anvil_chain
from support.anvil_harness import anvil_sessions


@pytest.fixture(name="anvil", scope="module")
def anvil_fixture(project: Any) -> Iterator[tuple[AnvilChain, Any]]:
    """The file's anvil and the session harness on it: the EntryPoint, the factory, the module and the bundler."""
    with anvil_chain() as chain:
        yield chain, anvil_sessions(chain, project)


@pytest.fixture(name="sessions", scope="module")
def sessions_fixture(anvil: tuple[AnvilChain, Any]) -> Any:
    """The session harness on the file's anvil."""
    return anvil[1]
