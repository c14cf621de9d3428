"""Deploy keyscope on the connected ape network: the EntryPoint v0.7 (unless one is there), a staked
KeyscopeAccountFactory, the SessionKeyValidator module and the demo NFT.

    ape run deploy --network URL --deployer ALIAS --out deployments.json
"""

import click
from ape.cli import ConnectedProviderCommand, account_option

from keyscope import cli_support as ks


@click.command(cls=ConnectedProviderCommand, short_help="Deploy keyscope's contracts")
@account_option("--deployer", prompt=False)
@click.option(
    "--entry-point",
    metavar="ADDRESS",
    help="an EntryPoint v0.7 already deployed (default: the canonical one if present, else a new one)",
)
@click.option("--stake", default="1ether", show_default=True, help="the factory's stake at the EntryPoint")
@click.option("--no-nft", is_flag=True, help="do not deploy the demo NFT")
@click.option("--out", metavar="FILE", help="write the addresses as a deployments JSON file")
@ks.json_option
@ks.reports_errors
def cli(deployer, entry_point, stake, no_nft, out, as_json):
    """Deploy keyscope's contracts from the ape account --deployer and print their addresses."""
    deployments = ks.deploy_keyscope(
        ks.require_ape_account(deployer, "--deployer"),
        entry_point=entry_point,
        stake=ks.parse_amount(stake, "--stake"),
        nft=not no_nft,
    )
    if out:
        deployments.save(out)
    ks.emit(
        as_json,
        deployments.to_dict(),
        [
            f"chain id          {deployments.chain_id}",
            f"EntryPoint v0.7   {deployments.entry_point}",
            f"factory (staked)  {deployments.factory}",
            f"session module    {deployments.module}",
            f"demo NFT          {deployments.nft or '(not deployed)'}",
            *([f"written to        {out}"] if out else []),
        ],
    )
