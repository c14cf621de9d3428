"""Ask a bundler about a UserOperation: its receipt, or whether it is still pending; a receipt is confirmed at the
node when the node's URL is given.

ape run status USER_OP_HASH [--node URL] [--bundler URL] [--wait]
"""

import sys

import click

from keyscope import cli as ks


@click.command(cls=ks.OptionsAfterDashes, short_help="Show a UserOperation's receipt or state")
@click.argument("user_op_hash")
@click.option(
    "--node",
    metavar="URL",
    help="the node's JSON-RPC URL, which confirms the bundler's receipt (default: the deployments file's rpc_url)",
)
@click.option(
    "--bundler",
    envvar=ks.ENV_BUNDLER,
    metavar="URL",
    help=f"the bundler's JSON-RPC URL [env {ks.ENV_BUNDLER}]",
)
@click.option(
    "--entry-point",
    envvar=ks.ENV_ENTRY_POINT,
    metavar="ADDRESS",
    help="the EntryPoint the operation was sent to, whose event confirms a receipt (default: the deployments "
    f"file's, else the canonical v0.7) [env {ks.ENV_ENTRY_POINT}]",
)
@click.option(
    "--deployments",
    envvar=ks.ENV_DEPLOYMENTS,
    metavar="FILE",
    help=f"take the bundler_url, rpc_url and entry_point from this file [env {ks.ENV_DEPLOYMENTS}]",
)
@click.option("--wait", is_flag=True, help="wait for the receipt")
@click.option(
    "--network",
    metavar="URL",
    hidden=True,
    help="the node's URL, as the other commands take it (same as --node); an ape network choice is not used",
)
@ks.timeout_option
@ks.json_option
@ks.reports_errors
def cli(user_op_hash, node, bundler, entry_point, deployments, wait, network, timeout, as_json):
    """Print the receipt of USER_OP_HASH, or what the bundler knows of it. Given the node (--node URL, or the
    deployments file's rpc_url), a receipt is shown only once the node confirms it; without, it is the bundler's
    word, and the output says so. Exits with 0 only when the operation is included and its call succeeded; 1 when
    the bundler does not know it or its call reverted (with an error line); 3 while it is pending."""
    progress = ks.Progress()
    node = ks.status_node_option(node, network, progress)
    asked = ks.status_bundler(bundler, deployments)
    status = ks.operation_status(
        asked,
        user_op_hash,
        node=ks.status_node(asked, node, entry_point=entry_point, deployments_file=deployments),
        wait=wait,
        timeout=timeout,
        progress=progress,
    )
    ks.emit(as_json, status.to_dict(), status.lines())
    problem = status.problem()
    if problem is not None:  # printed above; a script reads the exit status
        raise problem
    if status.state == "pending":
        sys.exit(ks.PENDING_EXIT)
