"""Revoke a session: mark it revoked in the store, and revoke it on chain with an owner operation.

ape run revoke SESSION_ID --owner ALIAS --network URL --bundler URL

The store marks it revoked first (every worker refuses it at once), then the owner's operation revokes it on
chain, creating the account first when the grant's first operation would otherwise create it.
"""

import click

from keyscope import cli as ks


@click.command(cls=ks.ape_command(), short_help="Revoke a session")
@click.argument("session_id")
@ks.connection_options
@ks.owner_options(account=False)
@ks.store_option
@ks.timeout_option
@ks.json_option
@ks.reports_errors
def cli(session_id, connection, owner_account, store_url, timeout, as_json):
    """Revoke the session SESSION_ID (as `ape run sessions` lists it, or a unique prefix)."""
    with ks.open_session_store(store_url, keys=False, existing=True) as store:
        grant = ks.find_grant(store, session_id)
        network, _ = ks.connect(
            connection,
            owner_account=owner_account,
            need_bundler=True,
            module=grant.module,
            entry_point=grant.entry_point,
        )
        result = ks.revoke_session(
            grant,
            store=store,
            network=network,
            signer=ks.owner_signer(owner_account),
            timeout=timeout,
            progress=ks.Progress(),
        )
    ks.emit(
        as_json,
        result.to_dict(),
        [
            f"revoked       {ks.hex_of(grant.session_id)}",
            f"account       {grant.account}",
            *ks.receipt_lines(result.receipt),
        ],
    )
