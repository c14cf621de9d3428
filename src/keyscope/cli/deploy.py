"""Deploying keyscope on the connected ape network: at addresses of this chain (``CREATE`` from the deployer),
or at the same addresses on every chain (:mod:`keyscope.deterministic`)."""

from __future__ import annotations

from typing import Any

from ..artifacts import ENTRY_POINT_V07
from ..deterministic import (
    DeterministicDeployment,
    deploy_deterministic,
    deterministic_plan,
    verify_deterministic,
)
from ..errors import BadInputError, ConfigurationError, DeploymentError
from ..hexutil import to_address
from .settings import Deployments, _address_from


def deploy_keyscope(
    deployer: Any, *, entry_point: str | None = None, stake: int = 10**18, nft: bool = True
) -> Deployments:
    """Deploy keyscope on the connected ape network from ``deployer``: the EntryPoint v0.7 (from the npm
    artefact, unless ``entry_point`` or the canonical one already has code), a staked factory, the session
    module and (``nft``) the demo NFT."""
    from ape import chain as ape_chain

    from ..ape_contracts import contract_container, deploy_contract, deploy_entry_point, deploy_factory

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


def deploy_keyscope_deterministic(
    deployer: Any,
    *,
    admin: str | None = None,
    paymaster_signer: str | None = None,
    entry_point: str | None = None,
    stake: int = 10**18,
    unstake_delay: int = 86_400,
    paymaster_deposit: int = 0,
    paymaster_stake: int = 10**18,
    check_only: bool = False,
) -> DeterministicDeployment:
    """Deploy keyscope's session module, account factory and (with ``paymaster_signer``) paymaster on the
    connected ape network at the same addresses as on every other chain (the deterministic deployment proxy,
    keyscope's salt), from ``deployer``; verify them and stake the factory (and fund and stake the paymaster).
    ``admin`` (default: the deployer) owns the factory and the paymaster: it is a constructor argument, so it
    must be the same on every chain. ``check_only`` (or no ``deployer``) sends nothing: it verifies what is
    there (missing contracts are an error)."""
    from ape import chain as ape_chain

    from ..chain import Web3Chain

    chain = Web3Chain(ape_chain.provider.web3)
    sender = to_address(deployer.address) if deployer is not None else None
    owner = _address_from(admin, "--admin") if admin else sender
    if owner is None:
        raise BadInputError(
            "give --admin (the factory's admin the addresses were planned with) or --deployer"
        )
    plan = deterministic_plan(
        owner,
        paymaster_signer=_address_from(paymaster_signer, "--paymaster-signer") if paymaster_signer else None,
        entry_point=_address_from(entry_point, "--entry-point") if entry_point else ENTRY_POINT_V07,
    )
    if check_only or sender is None:
        verify_deterministic(chain, plan)
        return DeterministicDeployment(plan=plan, chain_id=chain.chain_id())

    def send(to: str, data: bytes, value: int, what: str) -> None:
        try:
            receipt = deployer.transfer(to, value, data=data)
        except Exception as error:  # ape raises its own errors for a refused or reverted transaction
            raise DeploymentError(f"{what} failed: {type(error).__name__}: {error}") from None
        if getattr(receipt, "failed", False):
            raise DeploymentError(f"{what} reverted (transaction {receipt.txn_hash})")

    return deploy_deterministic(
        chain,
        send,
        plan,
        sender=sender,
        stake=stake,
        unstake_delay=unstake_delay,
        paymaster_deposit=paymaster_deposit,
        paymaster_stake=paymaster_stake,
    )
