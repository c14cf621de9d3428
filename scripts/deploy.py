"""Deploy keyscope on the connected ape network: the EntryPoint v0.7 (unless one is there), a staked
KeyscopeAccountFactory, the SessionKeyValidator module and the demo NFT.

    ape run deploy --network URL --deployer ALIAS --out deployments.json

With --deterministic, the module, the factory and (with --paymaster-signer) the SponsorPaymaster go to the same
addresses on every chain, through the deterministic deployment proxy, and are verified (no demo NFT):

    ape run deploy --deterministic --network URL --deployer ALIAS [--paymaster-signer ADDRESS] [--check]
"""

import click
from ape.cli import account_option

from keyscope import cli as ks


@click.command(cls=ks.ape_command(), short_help="Deploy keyscope's contracts")
@account_option("--deployer", prompt=False)
@click.option(
    "--entry-point",
    metavar="ADDRESS",
    help="an EntryPoint v0.7 already deployed (default: the canonical one if present, else a new one)",
)
@click.option("--stake", default="1ether", show_default=True, help="the factory's stake at the EntryPoint")
@click.option("--no-nft", is_flag=True, help="do not deploy the demo NFT")
@click.option("--out", metavar="FILE", help="write the addresses as a deployments JSON file")
@click.option(
    "--deterministic",
    is_flag=True,
    help="the same addresses on every chain: the deterministic deployment proxy and keyscope's salt",
)
@click.option(
    "--admin",
    metavar="ADDRESS",
    help="--deterministic: the factory's and paymaster's owner, the same on every chain (default: --deployer)",
)
@click.option(
    "--paymaster-signer", metavar="ADDRESS", help="--deterministic: also deploy the SponsorPaymaster"
)
@click.option(
    "--paymaster-deposit", default="0", show_default=True, help="--deterministic: the paymaster's deposit"
)
@click.option(
    "--paymaster-stake", default="1ether", show_default=True, help="--deterministic: the paymaster's stake"
)
@click.option(
    "--unstake-delay",
    default=86_400,
    show_default=True,
    # the EntryPoint's addStake takes a uint32 above 0
    type=ks.WholeNumber(1, 2**32 - 1, what="an unstake delay in seconds"),
    help="seconds a stake stays locked",
)
@click.option("--check", is_flag=True, help="--deterministic: send nothing, verify what is deployed")
@ks.json_option
@ks.reports_errors
def cli(
    deployer,
    entry_point,
    stake,
    no_nft,
    out,
    deterministic,
    admin,
    paymaster_signer,
    paymaster_deposit,
    paymaster_stake,
    unstake_delay,
    check,
    as_json,
):
    """Deploy keyscope's contracts from the ape account --deployer and print their addresses."""
    if out:
        ks.Deployments.check_writable(out)  # before anything is sent: the addresses must have somewhere to go
    if not deterministic:
        for name, given in (("--admin", admin), ("--paymaster-signer", paymaster_signer), ("--check", check)):
            if given:
                raise click.UsageError(f"{name} goes with --deterministic")
        deploy_per_chain(deployer, entry_point, stake, no_nft, out, as_json)
        return
    result = ks.deploy_keyscope_deterministic(
        None if check and deployer is None else ks.require_ape_account(deployer, "--deployer"),
        admin=admin,
        paymaster_signer=paymaster_signer,
        entry_point=entry_point,
        stake=ks.parse_amount(stake, "--stake"),
        unstake_delay=unstake_delay,
        paymaster_deposit=ks.parse_amount(paymaster_deposit, "--paymaster-deposit"),
        paymaster_stake=ks.parse_amount(paymaster_stake, "--paymaster-stake"),
        check_only=check,
    )
    data = result.to_dict()
    unsaved = (
        ks.Deployments(
            entry_point=data["entry_point"],
            factory=data["factory"],
            module=data["module"],
            chain_id=data["chain_id"],
        ).save_deployed(out)
        if out
        else None
    )
    factory_stake, paymaster_stake = data["factory_stake"], data["paymaster_deposit"]
    ks.emit(
        as_json,
        data,
        [
            f"chain id          {data['chain_id']}",
            f"EntryPoint v0.7   {data['entry_point']}",
            f"session module    {data['module']}",
            f"factory           {data['factory']}  (admin {data['admin']})",
            f"account impl.     {data['account_implementation']}",
            f"paymaster         {data['paymaster'] or '(not deployed: no --paymaster-signer)'}",
            f"salt              {data['salt']}",
            f"deployed now      {', '.join(data['deployed']) or 'nothing (all there already)'}",
            *([f"factory stake     {staked(factory_stake)}"] if factory_stake else []),
            *(
                [f"paymaster funds   {ether(paymaster_stake['deposit'])} deposit, {staked(paymaster_stake)}"]
                if paymaster_stake
                else []
            ),
            "verified          code at every address, the factory's EntryPoint and implementation",
            *(f"note              {note}" for note in data["notes"]),
            *([f"written to        {out}"] if out and unsaved is None else []),
        ],
    )
    if unsaved is not None:  # said once the addresses are printed: the contracts are paid for
        raise unsaved


def ether(wei):
    return f"{wei / 10**18:g} ETH"


def staked(info):
    return f"{ether(info['stake'])} staked, unstake delay {info['unstake_delay_sec']}s"


def deploy_per_chain(deployer, entry_point, stake, no_nft, out, as_json):
    deployments = ks.deploy_keyscope(
        ks.require_ape_account(deployer, "--deployer"),
        entry_point=entry_point,
        stake=ks.parse_amount(stake, "--stake"),
        nft=not no_nft,
    )
    unsaved = deployments.save_deployed(out) if out else None
    ks.emit(
        as_json,
        deployments.to_dict(),
        [
            f"chain id          {deployments.chain_id}",
            f"EntryPoint v0.7   {deployments.entry_point}",
            f"factory (staked)  {deployments.factory}",
            f"session module    {deployments.module}",
            f"demo NFT          {deployments.nft or '(not deployed)'}",
            *([f"written to        {out}"] if out and unsaved is None else []),
        ],
    )
    if unsaved is not None:  # said once the addresses are printed: the contracts are paid for
        raise unsaved
