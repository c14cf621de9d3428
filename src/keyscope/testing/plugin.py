"""pytest plugin (entry point ``keyscope``): fixtures for dapp projects testing with sessions under ``ape test``.

Every fixture deploys on the network ape's test runner is connected to (ape's local py-evm chain by
default), once per test session:

* ``keyscope_entry_point`` the EntryPoint v0.7 (creation bytecode from ``@account-abstraction/contracts``)
* ``keyscope_factory``     a staked ``KeyscopeAccountFactory``
* ``keyscope_module``      the ``SessionKeyValidator``
* ``keyscope_bundler``     an :class:`~keyscope.bundler.inprocess.InProcessBundler` sending ``handleOps``
* ``local_stack``          a running :class:`~keyscope.local.LocalStack` (real anvil + real Alto bundler on
  127.0.0.1, keyscope deployed), independent of ape's network; logs go to ``$KEYSCOPE_STACK_LOG_DIR``
  when set

Nothing is imported from ape until a fixture is used, so the plugin costs nothing in other test suites.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

ETHER = 10**18


@pytest.fixture(scope="session")
def keyscope_deployer(accounts: Any) -> Any:
    """The ape test account that deploys keyscope's contracts (``accounts[-1]``, out of the dapp's way)."""
    return accounts[-1]


@pytest.fixture(scope="session")
def keyscope_entry_point(keyscope_deployer: Any) -> Any:
    """EntryPoint v0.7, deployed from the official npm artefact."""
    from keyscope.ape_contracts import deploy_entry_point

    return deploy_entry_point(keyscope_deployer)


@pytest.fixture(scope="session")
def keyscope_factory(keyscope_entry_point: Any, keyscope_deployer: Any) -> Any:
    """A ``KeyscopeAccountFactory`` staked at the EntryPoint."""
    from keyscope.ape_contracts import deploy_factory

    return deploy_factory(keyscope_entry_point, keyscope_deployer)


@pytest.fixture(scope="session")
def keyscope_module(keyscope_deployer: Any) -> Any:
    """The ``SessionKeyValidator`` module."""
    from keyscope.ape_contracts import deploy_contract

    return deploy_contract("SessionKeyValidator", keyscope_deployer)


@pytest.fixture(scope="session")
def keyscope_bundler(keyscope_entry_point: Any, keyscope_deployer: Any) -> Any:
    """An in-process bundler: same interface as the JSON-RPC bundler client."""
    from keyscope.bundler.inprocess import InProcessBundler

    return InProcessBundler(keyscope_entry_point.address, keyscope_deployer)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[Any]:
    """A :class:`~keyscope.local.LocalStack` started once per test session and stopped at its end."""
    from keyscope.local import LocalStack

    with LocalStack(log_dir=os.environ.get("KEYSCOPE_STACK_LOG_DIR") or None) as stack:
        yield stack
