"""What the SDK's tests on ape's local chain share: an owner whose account is funded, and the mint they grant.

A test module takes the ``owner`` fixture by importing it (``from support.sdk import sdk_owner``): in those
modules ``owner`` is an SDK :class:`~keyscope.owner.Owner`, not the bare key of ``conftest.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope import Network, Policy, Web3Chain, arg
from keyscope.execution import Call
from keyscope.owner import GrantRequest, Owner
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner

__all__ = [
    "hand_made_request",
    "install_asking_nothing",
    "local_network",
    "mint_policy",
    "sdk_owner",
    "second_module",
]

ETHER = 10**18


def local_network(
    chain: Any, bundler: Any, module: Any, entry_point: Any, factory: Any, *, paymaster: Any = None
) -> Network:
    """The SDK's network on ape's local chain (``chain``, ape's), with ``bundler``, the deployed contracts and,
    when given, a paymaster client."""
    return Network(
        chain=Web3Chain(chain.provider.web3),
        bundler=bundler,
        module=module.address,
        entry_point=entry_point.address,
        factory=factory.address,
        paymaster=paymaster,
    )


@pytest.fixture(name="owner")
def sdk_owner(net: Network, harness: Any) -> Owner:
    """An owner of a new key, its account (not deployed yet) holding 1 ETH."""
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    return owner


def install_asking_nothing(owner: Owner, module: str, *others: Call) -> None:
    """Install the session ``module`` on ``owner``'s account (with the calls ``others`` after it, in one operation) by
    an owner operation that asks the account nothing, as a wallet other than keyscope's would send it: keyscope's
    owner asks the install's questions of any operation installing the module (attacks 417 and 440), and the tests
    of what a grant, a session or the module does later need the module installed on accounts those questions refuse
    or cannot ask."""
    with pytest.MonkeyPatch.context() as unasked:
        unasked.setattr(Owner, "_refuse_install_on_broken_premises", lambda self: None)
        owner.execute([owner.kind.install_validator_call(owner.account, module), *others]).wait()


def mint_policy(nft: Any, user: str) -> Permission:
    """``safeMint(address to)`` on ``nft``, with ``to`` held to ``user``."""
    return Policy.call(nft, "safeMint(address to)", rules=[arg("to") == user])


def second_module(net: Network, owner: Owner, project: Any, deployer: Any, kind: Any) -> Network:
    """A second deployment of the session module (the version an owner moves to, say), installed on ``owner``'s
    account (of the account kind ``kind``) beside ``net``'s, as a network of its own on the same chain, bundler and
    factory."""
    second = project.SessionKeyValidator.deploy(sender=deployer)
    owner.execute(kind.install_validator_call(owner.account, second.address)).wait()
    return Network(
        chain=net.chain,
        bundler=net.bundler,
        module=second.address,
        entry_point=net.entry_point,
        factory=net.factory,
    )


def hand_made_request(owner: Owner, session: Session) -> GrantRequest:
    """The off-chain grant request of ``session`` on ``owner``'s account at its current epoch, built by hand: none of
    ``prepare_grant``'s refusals ran on it (for tests of what the page or the chain does with such a request)."""
    net, account, epoch = owner.network, owner.account, owner.epoch()
    return GrantRequest(
        session=session,
        account=account,
        module=net.module,
        chain_id=net.chain_id,
        entry_point=net.entry_point,
        epoch=epoch,
        session_id=session.session_id(account, epoch),
        how="offchain",
        account_kind=owner.kind.name,
        owner=owner.signer.address,
    )
