"""Grant a session: one function of one contract, with rules on its arguments, a value limit and a validity.

    ape run grant NFT "mintBatch(address to,uint256 count)" --rule "to==account" --rule "count<=5" \
        --valid-for 1h [--calls 10] [--rate 5/hour] [--total "count<=20/day"] [--native-total 0.1ether/day] \
        [--operations 100/day] [--gas-budget 0.05ether] [--onchain] --owner ALIAS --network URL --deployments FILE
"""

import click

from keyscope import cli as ks
from keyscope.limits import limit_fields


@click.command(cls=ks.ape_command(), short_help="Grant a session to a session key")
@click.argument("target")
@click.argument("function")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="RULE",
    help="a rule on an argument, repeatable: 'to==0x…', 'amount<=1000', 'id in 1..5', 'token one of 0x…,0x…' "
    "(also !=, <, >, >=); values may name 'account', 'owner' or an address of the deployments file",
)
@click.option(
    "--value-limit", default="0", show_default=True, help="most ETH one call may carry (e.g. 0.01ether)"
)
@click.option(
    "--valid-for",
    default=ks.DEFAULT_VALID_FOR_TEXT,
    show_default=True,
    help="how long the session lasts (90s, 15m, 1h, 2d), or 'never' for a session without end",
)
@click.option("--calls", metavar="N", help="lifetime limit: at most N calls of this function (e.g. 10)")
@click.option("--rate", metavar="N/PERIOD", help="at most N calls per period (e.g. 10/hour)")
@click.option(
    "--total",
    "totals",
    multiple=True,
    metavar="ARG<=AMOUNT[/PERIOD]",
    help="a cumulative limit on an unsigned argument, repeatable: 'amount<=5000000' or 'amount<=5000000/day'",
)
@click.option(
    "--native-total", metavar="AMOUNT[/PERIOD]", help="most ETH all calls may carry (e.g. 0.1ether/day)"
)
@click.option(
    "--operations", metavar="N[/PERIOD]", help="most operations the session may send (e.g. 100/day)"
)
@click.option(
    "--gas-budget", metavar="AMOUNT[/PERIOD]", help="most gas fees the session may make the account pay"
)
@click.option(
    "--onchain", is_flag=True, help="enable the session now with an owner operation (default: off-chain)"
)
@click.option(
    "--session-key",
    metavar="ADDRESS|env:NAME",
    help="a key already in the store, or env:NAME for a private key in an environment variable (default: a new key)",
)
@ks.connection_options
@ks.owner_options()
@ks.store_option
@ks.timeout_option
@ks.json_option
@ks.reports_errors
def cli(
    target,
    function,
    rules,
    value_limit,
    valid_for,
    calls,
    rate,
    totals,
    native_total,
    operations,
    gas_budget,
    onchain,
    session_key,
    connection,
    owner_account,
    account,
    salt,
    store_url,
    timeout,
    as_json,
):
    """Grant a session allowing FUNCTION (a signature such as "safeMint(address to)") on TARGET (an address,
    or a name from the deployments file such as nft); print its session id."""
    network, settings = ks.connect(
        connection, owner_account=owner_account, need_bundler=onchain, need_factory=account is None
    )
    owner = ks.make_owner(network, ks.owner_signer(owner_account), account, salt)
    with ks.open_session_store(store_url, keys=True) as store:
        result = ks.grant_session(
            network,
            owner,
            store,
            target=target,
            function=function,
            rules=rules,
            value_limit=ks.parse_amount(value_limit, "--value-limit"),
            valid_for=ks.parse_validity(valid_for),
            calls=calls,
            rate=rate,
            totals=totals,
            native_total=native_total,
            operations=operations,
            gas_budget=gas_budget,
            onchain=onchain,
            session_key=session_key,
            names=settings.names,
            timeout=timeout,
            progress=ks.Progress(),
        )
    grant = result.grant
    lines = [
        f"session id    {ks.hex_of(grant.session_id)}",
        f"account       {grant.account}",
        f"session key   {grant.session_key}" + (" (new, stored encrypted)" if result.key_generated else ""),
        *(f"allows        {text}" for text in ks.describe_permissions(grant)),
        *(f"limit         {limit_fields(limit, i)['text']}" for i, limit in enumerate(grant.session.limits)),
        f"valid until   {ks.describe_time(grant.valid_until)}",
        "granted       "
        + ("on chain" if grant.how == "onchain" else "off chain (its first operation enables it)"),
        *(ks.receipt_lines(result.receipt) if result.receipt else []),
    ]
    ks.emit(as_json, result.to_dict(), lines)
