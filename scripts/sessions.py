"""List the sessions in the store with their state on chain.

ape run sessions --network URL [--account ADDRESS]
"""

import click
from ape.cli import ConnectedProviderCommand

from keyscope import cli as ks


@click.command(cls=ConnectedProviderCommand, short_help="List the store's sessions and their state")
@click.option("--account", metavar="ADDRESS", help="only the sessions of this smart account")
@ks.store_option
@ks.json_option
@ks.reports_errors
def cli(account, store_url, as_json):
    """List the sessions: active, not yet enabled, not yet valid, expired, revoked or invalidated."""
    with ks.open_session_store(store_url, keys=False) as store:
        rows = ks.list_sessions(ks.ape_node(), store, account)
    ks.emit(as_json, {"sessions": [row.to_dict() for row in rows]}, ks.session_lines(rows))
