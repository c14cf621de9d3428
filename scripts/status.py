"""Ask a bundler about a UserOperation: its receipt, or whether it is still pending.

ape run status USER_OP_HASH --bundler URL [--wait]
"""

import click

from keyscope import cli as ks


@click.command(short_help="Show a UserOperation's receipt or state")
@click.argument("user_op_hash")
@click.option(
    "--bundler",
    envvar=ks.ENV_BUNDLER,
    metavar="URL",
    help=f"the bundler's JSON-RPC URL [env {ks.ENV_BUNDLER}]",
)
@click.option(
    "--deployments",
    envvar=ks.ENV_DEPLOYMENTS,
    metavar="FILE",
    help=f"take the bundler_url from this file [env {ks.ENV_DEPLOYMENTS}]",
)
@click.option("--wait", is_flag=True, help="wait for the receipt")
@click.option(
    "--network",
    metavar="CHOICE",
    hidden=True,
    help="not used: status asks the bundler only (taken, so that the other commands' habit is no error)",
)
@ks.timeout_option
@ks.json_option
@ks.reports_errors
def cli(user_op_hash, bundler, deployments, wait, network, timeout, as_json):
    """Print the receipt of USER_OP_HASH, or what the bundler knows of it (no --network needed: it asks the
    bundler only)."""
    if network is not None:
        click.echo("note: status needs no --network (it asks the bundler only); ignored", err=True)
    status = ks.operation_status(
        ks.status_bundler(bundler, deployments),
        user_op_hash,
        wait=wait,
        timeout=timeout,
        progress=ks.Progress(),
    )
    ks.emit(as_json, status.to_dict(), status.lines())
