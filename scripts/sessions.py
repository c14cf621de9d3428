"""List the sessions in the store with their state on chain.

ape run sessions --network URL [--account ADDRESS]
"""

import click

from keyscope import cli as ks


@click.command(cls=ks.ape_command(), short_help="List the store's sessions and their state")
@click.option("--account", metavar="ADDRESS", help="only the sessions of this smart account")
@ks.store_option
@ks.json_option
@ks.reports_errors
def cli(account, store_url, as_json):
    """List the sessions judged on chain: status (active, not yet enabled, not yet valid, expired, revoked or
    invalidated), time left and permissions; a grant the store cannot read is listed as unreadable."""
    with ks.open_session_store(store_url, keys=False, existing=True) as store:
        listing = ks.list_sessions(ks.ape_node(), store, account)
    ks.emit(as_json, listing.to_dict(), listing.table(ks.shown_store_url(store_url)))
