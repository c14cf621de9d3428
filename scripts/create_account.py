"""Create the owner's keyscope account (session module installed at creation) with one owner operation.

ape run create_account --network URL --bundler URL --deployments FILE --owner ALIAS [--fund 0.1ether]
"""

import click

from keyscope import cli as ks
from keyscope.report import describe_wei


@click.command(cls=ks.ape_command(), short_help="Create a keyscope account for an owner key")
@ks.connection_options
@ks.owner_options(account=False)
@click.option(
    "--salt",
    type=ks.SALT,
    default=0,
    show_default=True,
    help="salt of the account (one owner, many accounts)",
)
@click.option("--fund", default="0", show_default=True, help="ETH to send the account first (e.g. 0.1ether)")
@click.option(
    "--funder",
    type=ks.ape_account_type("funder"),
    metavar="ALIAS",
    help="ape account that sends --fund (default: --owner)",
)
@click.option(
    "--deploy",
    is_flag=True,
    help="deploy keyscope first, from --submitter or --owner (for ape's local test chain, empty on every run)",
)
@ks.timeout_option
@ks.json_option
@ks.reports_errors
def cli(connection, owner_account, salt, fund, funder, deploy, timeout, as_json):
    """Deploy the owner's account and print its address."""
    network, _ = ks.connect(
        connection, owner_account=owner_account, need_bundler=True, need_factory=True, deploy=deploy
    )
    result = ks.create_account(
        network,
        ks.owner_signer(owner_account),
        salt=salt,
        fund=ks.parse_amount(fund, "--fund"),
        funder=funder,
        timeout=timeout,
        progress=ks.Progress(),
    )
    lines = [f"account       {result.account}", f"owner         {result.owner}"]
    if result.funded:
        lines.append(
            f"funded        {describe_wei(result.funded)} from {result.funder}, to pay for its own gas"
        )
    if result.receipt is None:
        lines.append("already deployed, session module installed")
        if ks.parse_amount(fund, "--fund"):
            lines.append(
                "funded        nothing: --fund funds an account before it is created; send ETH to it directly"
            )
    else:
        lines.extend(ks.receipt_lines(result.receipt))
    ks.emit(as_json, result.to_dict(), lines)
