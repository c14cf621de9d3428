"""Send a call from a smart account, signed by a session key of the store.

ape run send SESSION_ID TARGET "safeMint(address)" account --wait --network URL --bundler URL
"""

import click

from keyscope import cli as ks


@click.command(cls=ks.ape_command(), short_help="Send a session-signed call")
@click.argument("session_id")
@click.argument("target")
@click.argument("function")
@click.argument("args", nargs=-1)
@click.option("--value", default="0", show_default=True, help="ETH the call carries (e.g. 0.01ether)")
@click.option(
    "--no-check", is_flag=True, help="skip the local policy and state checks (the chain still enforces them)"
)
@click.option("--wait", is_flag=True, help="wait for the receipt")
@ks.connection_options
@ks.store_option
@ks.timeout_option
@ks.json_option
@ks.reports_errors
def cli(session_id, target, function, args, value, no_check, wait, connection, store_url, timeout, as_json):
    """Call FUNCTION (a signature such as "safeMint(address)") on TARGET with ARGS, from the account of the
    session SESSION_ID (its id, or a unique prefix). Addresses may be 'account' or a name from the deployments
    file; put -- before arguments that start with a dash (options may follow them)."""
    with ks.open_session_store(store_url, keys=True, existing=True) as store:
        grant = ks.find_grant(store, session_id)
        network, settings = ks.connect(
            connection, need_bundler=True, module=grant.module, entry_point=grant.entry_point
        )
        result = ks.send_session_call(
            network,
            store,
            grant,
            target=target,
            function=function,
            args=args,
            value=ks.parse_amount(value, "--value"),
            check=not no_check,
            wait=wait,
            timeout=timeout,
            names=settings.names,
            progress=ks.Progress(),
        )
    lines = [f"UserOperation {result.pending.hex_hash}", f"account       {grant.account}"]
    lines.extend(
        ks.receipt_lines(result.receipt)
        if result.receipt
        else ["sent          (not waiting: see `ape run status`)"]
    )
    ks.emit(as_json, result.to_dict(), lines)
    problem = result.problem()
    if problem is not None:  # the receipt is printed above; a script reads the exit status
        raise problem
