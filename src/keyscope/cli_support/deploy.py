"""Deploying keyscope on the connected ape network."""

from __future__ import annotations

from typing import Any

from ..artifacts import ENTRY_POINT_V07
from ..errors import ConfigurationError
from ..hexutil import to_address
from .settings import Deployments, _address_from


def deploy_keyscope(
    deployer: Any, *, entry_point: str | None = None, stake: int = 10**18, nft: bool = True
) -> Deployments:
    """Deploy keyscope on the connected ape network from ``deployer``: the EntryPoint v0.7 (from the npm
    artefact, unless ``entry_point`` or the canonical one already has code), a staked factory, the session
    module and (``nft``) the demo NFT."""
    from ape import chain as ape_chain

    from ..testing.deploy import contract_container, deploy_contract, deploy_entry_point, deploy_factory

    web3 = ape_chain.provider.web3
    if entry_point is not None:
        address = _address_from(entry_point, "--entry-point")
        if not web3.eth.get_code(address):
            raise ConfigurationError(
                f"no contract at the EntryPoint address {address}: leave --entry-point out to deploy one"
            )
        ep = contract_container("EntryPoint").at(address)
    elif web3.eth.get_code(ENTRY_POINT_V07):
        ep = contract_container("EntryPoint").at(ENTRY_POINT_V07)
    else:
        ep = deploy_entry_point(deployer)
    factory = deploy_factory(ep, deployer, stake=stake)
    module = deploy_contract("SessionKeyValidator", deployer)
    demo = deploy_contract("DemoNFT", deployer) if nft else None
    return Deployments(
        entry_point=to_address(ep.address),
        factory=to_address(factory.address),
        module=to_address(module.address),
        nft=None if demo is None else to_address(demo.address),
        chain_id=int(ape_chain.chain_id),
    )
