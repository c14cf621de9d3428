"""The connection of a command: the node of its ape network, the bundler, and the checks that keyscope
is deployed there."""

from __future__ import annotations

from typing import Any

from ..bundler.client import BundlerClient
from ..bundler.types import Bundler
from ..chain import Chain, Web3Chain
from ..endpoints import entry_point_of
from ..errors import ConfigurationError
from ..hexutil import to_address
from ..network import Network
from .deploy import deploy_keyscope
from .options import require_ape_account
from .settings import (
    ENV_DEPLOYMENTS,
    ENV_FACTORY,
    ENV_SUBMITTER,
    INPROCESS,
    ConnectionOptions,
    Settings,
    _NoBundler,
    resolve_settings,
)


def _require_code(chain: Chain, address: str, what: str, option: str, chain_id: int) -> None:
    if not chain.get_code(address):
        raise ConfigurationError(
            f"no contract at the {what} address {address} on chain {chain_id}: deploy keyscope there "
            f"(`ape run deploy`), or pass {option} / --deployments for this network (--network)"
        )


def make_bundler(settings: Settings, chain: Chain, submitter: Any = None) -> Bundler:
    """The bundler the settings name: a :class:`BundlerClient`, an in-process one sending ``handleOps`` from
    ``submitter`` (an ape account), or one that explains that none was given."""
    if settings.bundler is None:
        return _NoBundler()
    if settings.bundler == INPROCESS:
        if submitter is None:
            raise ConfigurationError(
                f"--bundler {INPROCESS} sends handleOps from an ape account: pass --submitter ALIAS (e.g. "
                f"TEST::0 on a local chain) or set {ENV_SUBMITTER}"
            )
        from ..bundler.inprocess import InProcessBundler

        return InProcessBundler(settings.entry_point, submitter)
    return BundlerClient(settings.bundler, node=chain)


def connect_ape(
    settings: Settings,
    *,
    submitter: Any = None,
    need_bundler: bool = False,
    need_factory: bool = False,
) -> Network:
    """A :class:`~keyscope.network.Network` on the ape network the command is connected to.

    Checks that the module (and the factory, the EntryPoint and the bundler when the command needs them) are
    there, and that the deployments file and the bundler are for this chain.
    """
    chain = ape_node()
    chain_id = chain.chain_id()
    if settings.chain_id is not None and settings.chain_id != chain_id:
        where = f" (node {settings.deployments.rpc_url})" if settings.deployments.rpc_url else ""
        raise ConfigurationError(
            f"the deployments file {settings.deployments.source} is for chain {settings.chain_id}{where}, but "
            f"{_connected_network()} chain {chain_id}: pass --network for that chain"
            + (f" (e.g. --network {settings.deployments.rpc_url})" if settings.deployments.rpc_url else "")
            # the file's node may be the one connected, restarted with another chain since: the file is stale
            + f", or the deployments file of chain {chain_id} (--deployments, {ENV_DEPLOYMENTS})"
        )
    _require_code(chain, settings.module, "session module", "--module", chain_id)
    if need_factory:
        if settings.factory is None:
            raise ConfigurationError(
                f"no account factory: pass --factory, set {ENV_FACTORY}, or give --deployments FILE with a factory"
            )
        _require_code(chain, settings.factory, "account factory", "--factory", chain_id)
        trusted = entry_point_of(chain, settings.factory)
        if trusted is not None and trusted != to_address(settings.entry_point):
            # its accounts would refuse every operation sent to the other EntryPoint (AA23), after the owner signed
            raise ConfigurationError(
                f"the account factory {settings.factory} trusts EntryPoint {trusted}, but the commands send to "
                f"{settings.entry_point} (--entry-point, default the canonical v0.7): give the factory deployed "
                "for that EntryPoint (--factory), or its EntryPoint (--entry-point)"
            )
    bundler = make_bundler(settings, chain, submitter)
    if need_bundler:
        if settings.bundler is None:
            raise _NoBundler()._missing()
        _require_code(chain, settings.entry_point, "EntryPoint", "--entry-point", chain_id)
        served = bundler.chain_id()
        if served != chain_id:
            raise ConfigurationError(
                f"the bundler {settings.bundler} serves chain {served}, but --network is connected to chain "
                f"{chain_id}: use a bundler and a network of the same chain"
            )
    return Network(
        chain=chain,
        bundler=bundler,
        module=settings.module,
        entry_point=settings.entry_point,
        factory=settings.factory,
    )


def connect(
    options: ConnectionOptions,
    *,
    owner_account: Any = None,
    need_bundler: bool = False,
    need_factory: bool = False,
    module: str | None = None,
    entry_point: str | None = None,
    deploy: bool = False,
) -> tuple[Network, Settings]:
    """:func:`resolve_settings` then :func:`connect_ape`; with ``--bundler inprocess`` the submitter is
    ``--submitter``, else the owner's ape account.

    ``deploy`` first deploys keyscope (:func:`deploy_keyscope`) from that account and uses those addresses:
    for ape's local test chain, which starts empty on every run."""
    submitter = options.submitter if options.submitter is not None else owner_account
    if deploy:
        deployer = require_ape_account(submitter, "--submitter (or --owner)")
        deployed = deploy_keyscope(deployer, entry_point=options.entry_point)
        options = ConnectionOptions(
            deployments=None,
            bundler=options.bundler,
            module=deployed.module,
            factory=deployed.factory,
            entry_point=deployed.entry_point,
            submitter=options.submitter,
        )
    settings = resolve_settings(options, module=module, entry_point=entry_point)
    if deploy and deployed.nft:
        settings.names["nft"] = deployed.nft
    network = connect_ape(settings, submitter=submitter, need_bundler=need_bundler, need_factory=need_factory)
    return network, settings


def _connected_network() -> str:
    """The network the command is connected to, in an error's words: ape's local test chain, which a command run
    without ``--network`` connects to, is named as such (the newcomer gave no ``--network``)."""
    from ape import chain as ape_chain

    if ape_chain.provider.network_choice == "ethereum:local:test":
        return "ape's local test chain (ethereum:local:test, where a command without --network runs) is"
    return "--network is connected to"


def ape_node() -> Chain:
    """The node of the ape network the command is connected to."""
    from ape import chain as ape_chain

    return Web3Chain(ape_chain.provider.web3)
