"""``keyscope``: the operator's command line for a session store shared by workers.

::

    keyscope sessions --store URL [--account ADDR] [--node URL] [--json]
                                                                   sessions: status, time left, permissions, limits
    keyscope outbox   --store URL [--state pending|failed|...]      operations in flight, failed and why
    keyscope revoke   --store URL SESSION_ID|PREFIX [--node URL --bundler URL | --deployments FILE]
                                                                   refuse a session in every worker (and on chain)
    keyscope recover  --store URL (--node URL --bundler URL | --deployments FILE)
                                                                   finish what dead workers left in flight
    keyscope consent  REQUESTS.json --deployments FILE             the owner grants ERC-7715 requests in a browser
    keyscope dashboard ACCOUNT --deployments FILE                  the owner's sessions, revoked from a browser

The store URL may come from ``KEYSCOPE_STORE``. Secrets come from the environment only (a command line is
visible to every user of the machine): ``KEYSCOPE_STORE_PASSPHRASE`` or ``KEYSCOPE_STORE_KEK`` (64 hex
digits) for the store, ``KEYSCOPE_OWNER_KEY`` for the account owner's key when revoking on chain. None of
these commands needs a session key; only ``recover`` uses one, when the store's secret is set, to build again an
operation whose nonce another operation took.

The commands share their options, their store, their errors and their output with the ``ape run`` scripts
(the rest of this package); they need no ape.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .. import __version__
from ..chain import RpcChain
from ..endpoint_kinds import answers_as_bundler
from ..errors import BadInputError, ConfigurationError, KeyscopeError, without_private_keys
from ..grant import SessionGrant
from ..hexutil import ZERO_ADDRESS
from ..store import OutboxRecord, OutboxState, SessionStore
from ..urls import mask_url
from .actions import PENDING_EXIT, check_grant_network, revoke_session
from .browser import consent, dashboard
from .endpoint_checks import connect_node_and_bundler, require_node_and_bundler
from .listing import Listing, list_sessions, store_sessions
from .options import HttpUrl, Seconds, store_option
from .output import Progress, describe_time, emit, json_option, one_line, reports_errors, table
from .settings import (
    ENV_DEPLOYMENTS,
    Deployments,
    missing_settings,
    node_and_bundler_urls,
    require_deployments_chain,
)
from .signers import owner_max_gas_cost, owner_signer
from .stores import find_grant, open_session_store, shown_store_url

__all__ = ["main"]

_EPILOG = (
    "The store URL may come from KEYSCOPE_STORE. Secrets come from the environment only: "
    "KEYSCOPE_STORE_PASSPHRASE or KEYSCOPE_STORE_KEK (64 hex digits) for the store, KEYSCOPE_OWNER_KEY for the "
    "account owner's key when revoking on chain. KEYSCOPE_DEBUG=1 shows the traceback of an unexpected error."
)
_Command = TypeVar("_Command", bound=Callable[..., Any])
_STATES = ["pending", *(state.value for state in OutboxState)]
_SEQUENCE_MASK = 2**64 - 1
_MOST_RECORDS = 1_000_000
"""The most outbox records one listing shows (``--limit``): more than that is no listing for a person."""


class _Commands(click.Group):
    """The ``keyscope`` group, whose usage errors never echo a private key: click's own refusals (a value not among
    the choices, a number out of range, a path that does not exist) quote the value given, and a key pasted in
    place of one would be shown on the terminal and in the logs of a job that runs the command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            error.message = without_private_keys(error.message)
            raise


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(__version__, prog_name="keyscope", message="%(prog)s %(version)s")
def main() -> None:
    """Operate a keyscope session store shared by workers (sessions, outbox, revoke, recover), and serve an
    account owner's pages on 127.0.0.1 (consent, dashboard). `keyscope COMMAND -h` says more."""


@main.command()
@store_option(required=True)
@click.option("--account", default=None, metavar="ADDRESS", help="Only this account's sessions.")
@click.option(
    "--node",
    type=HttpUrl(),
    default=None,
    metavar="URL",
    help="Judge each session on chain (the node's JSON-RPC URL), as `ape run sessions` does; without it, as "
    "the store knows them.",
)
@json_option
@reports_errors
def sessions(store_url: str, account: str | None, node: str | None, as_json: bool) -> None:
    """List the stored sessions: status, time left, permissions, limits, and operations in flight (with --node,
    what each limit has used and has left). A grant the store cannot read is listed as unreadable; the others
    are listed all the same."""
    with open_session_store(store_url, keys=False, existing=True) as store:
        listing = store_sessions(store, account)
        if node is not None:
            judged = _judged_at(node, store, account)
            listing = Listing(
                judged.reports, judged.unreadable, listing.in_flight, listing.unreadable_records
            )
    emit(as_json, listing.to_dict(), listing.table(shown_store_url(store_url)))


def _judged_at(node: str, store: SessionStore, account: str | None) -> Listing:
    """The store's sessions judged at ``node``; a bundler's URL given as ``--node`` (it fails on the node's methods)
    is said as such, with where the node's URL is found, rather than as the method it does not serve."""
    try:
        return list_sessions(RpcChain(node), store, account)
    except KeyscopeError:
        if answers_as_bundler(node):
            raise ConfigurationError(
                f"--node {mask_url(node)} is an ERC-4337 bundler's URL, not a node's: give --node the node's "
                "JSON-RPC URL (rpc_url in the deployments file)"
            ) from None
        raise


def _record_row(record: OutboxRecord) -> dict[str, Any]:
    return {
        "intent_id": record.intent_id,
        "state": record.state.value,
        "user_op_hash": record.user_op_hash,
        "account": record.account,
        "session_id": record.session_id,
        "lane": record.lane,
        "nonce": record.op.nonce & _SEQUENCE_MASK,
        "attempts": record.attempts,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "tx_hash": record.tx_hash,
        "success": record.success,
        "error": record.error,
    }


def _unreadable_row(name: str, problem: str) -> dict[str, Any]:
    """A record the store could not read, as a row of the listing (its problem in ``error``)."""
    empty = dict.fromkeys(("user_op_hash", "account", "session_id", "lane", "nonce", "attempts"), "")
    return {"intent_id": name, "state": "unreadable", **empty, "updated_at": None, "error": problem}


def _outcome(row: dict[str, Any]) -> str:
    if row["state"] in ("failed", "unreadable"):
        return str(row["error"] or "")
    if row["state"] == "included":
        return f"tx {row['tx_hash']}" + ("" if row["success"] else " (call reverted)")
    return ""


@main.command()
@store_option(required=True)
@click.option(
    "--state",
    type=click.Choice(_STATES),
    default=None,
    help="pending (built or sent: what a recovery must finish), or one state.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=_MOST_RECORDS),
    default=100,
    show_default=True,
    help="Newest records.",
)
@json_option
@reports_errors
def outbox(store_url: str, state: str | None, limit: int, as_json: bool) -> None:
    """Show the outbox: what is in flight, what landed, what failed and why. A record the store cannot
    read is listed as unreadable, with its problem, and the others all the same."""
    unreadable: list[dict[str, Any]] = []

    def damaged(name: str, error: Exception) -> None:
        unreadable.append(_unreadable_row(name, one_line(error)))

    with open_session_store(store_url, keys=False, existing=True) as store:
        if state == "pending":
            records = store.pending(on_corrupt=damaged)[-limit:][::-1]
        else:
            records = store.list_outbox(state, limit=limit, on_corrupt=damaged)
    rows = [_record_row(record) for record in records] + unreadable
    listing = table(
        f"{len(records)} outbox record(s)"
        + (f" ({state})" if state else "")
        + (f" and {len(unreadable)} unreadable" if unreadable else ""),
        ("intent", "state", "attempts", "lane", "nonce", "updated", "userOpHash", "outcome"),
        [
            (
                row["intent_id"],
                row["state"],
                str(row["attempts"]),
                str(row["lane"]),
                str(row["nonce"]),
                describe_time(row["updated_at"], never=""),
                row["user_op_hash"],
                _outcome(row),
            )
            for row in rows
        ],
        right=("attempts", "lane", "nonce"),
    )
    emit(as_json, rows, listing)


def _on_chain_urls(
    deployments_file: str | None, node: str | None, bundler: str | None, *, what: str, not_done: str
) -> tuple[str | None, str | None, Deployments]:
    """The node's and the bundler's URLs of ``recover`` and ``revoke``: ``--node`` and ``--bundler``, else the
    deployments file's ``rpc_url`` and ``bundler_url``, with the file read; a usage error (saying ``what`` needs
    them, and ``not_done``) when only one of the two is found, or none with a deployments file given."""
    known = Deployments.load(deployments_file) if deployments_file else Deployments()
    node_url, bundler_url = node_and_bundler_urls(known, node, bundler)
    missing = [option for option, url in (("--node", node_url), ("--bundler", bundler_url)) if url is None]
    if missing and (deployments_file or len(missing) == 1):
        raise click.UsageError(f"{what}, {missing_settings(missing, deployments_file)}; {not_done}")
    return node_url, bundler_url, known


def _deployments_option(help_text: str, *, from_environment: bool) -> Callable[[_Command], _Command]:
    """``--deployments FILE``, as ``consent`` and ``dashboard`` take it (from ``KEYSCOPE_DEPLOYMENTS`` too when
    ``from_environment``)."""
    return click.option(
        "--deployments",
        envvar=ENV_DEPLOYMENTS if from_environment else None,
        default=None,
        metavar="FILE",
        help=help_text,
    )


@main.command()
@store_option(required=True)
@click.argument("session_id")
@click.option(
    "--node",
    type=HttpUrl(),
    default=None,
    metavar="URL",
    help="Also revoke on chain: the node's JSON-RPC URL.",
)
@click.option(
    "--bundler", type=HttpUrl(), default=None, metavar="URL", help="Also revoke on chain: the bundler's URL."
)
@_deployments_option(
    "Also revoke on chain, at the node and bundler of this file (rpc_url, bundler_url: what `python -m "
    "keyscope.local --json` prints); --node and --bundler take precedence. Given on the command line only: "
    f"{ENV_DEPLOYMENTS} does not turn on a revocation on chain.",
    from_environment=False,
)
@click.option(
    "--timeout",
    type=Seconds(positive=True),
    default=120.0,
    show_default=True,
    help="Seconds to wait for inclusion.",
)
@reports_errors
def revoke(
    store_url: str,
    session_id: str,
    node: str | None,
    bundler: str | None,
    deployments: str | None,
    timeout: float,
) -> None:
    """Revoke SESSION_ID in the store, so that every worker refuses it at its next send.

    SESSION_ID is 0x and 64 hex digits, or a unique prefix of at least 4, as `keyscope sessions` lists them.
    With --node and --bundler (or --deployments FILE giving them), also revoke it on chain: the account's owner
    sends revokeSession (the owner's key comes from $KEYSCOPE_OWNER_KEY). An account not created yet (an off-chain grant never used) is created by
    that operation, so that the grant can never be used: its first operation would otherwise create the account
    and enable the session.
    """
    if deployments is None and (node is None) != (bundler is None):
        raise click.UsageError("give both --node and --bundler to revoke on chain, or neither")
    node, bundler, known = _on_chain_urls(
        deployments, node, bundler, what="to revoke on chain", not_done="nothing was revoked"
    )
    # the owner's key is read before anything is done, so that a missing or malformed one stops the command whole
    signer = owner_signer(ape_accounts=False) if node is not None else None
    if node is not None:
        owner_max_gas_cost()  # and the owner's gas cap: a malformed one is said before the store is touched
    with open_session_store(store_url, keys=False, existing=True) as store:
        grant = find_grant(store, session_id)
        revoke_session(grant, store=store)
    click.echo(
        f"session 0x{grant.session_id.hex()} of {grant.account} is revoked in the store: every worker refuses it"
    )
    if node is None or bundler is None or signer is None:
        return
    not_sent = " (the session is revoked in the store; nothing was sent on chain)"
    network = connect_node_and_bundler(
        node, bundler, module=grant.module, entry_point=grant.entry_point, after=not_sent
    )
    require_deployments_chain(known, network.chain_id, node, after=not_sent)
    check_grant_network(network, grant, "--node")
    require_node_and_bundler(network, node, bundler, entry_points=[grant.entry_point], after=not_sent)
    try:
        result = revoke_session(
            grant,
            network=network,
            signer=signer,
            timeout=timeout,
            progress=Progress(),
            node_option="--node",
            key_options="KEYSCOPE_OWNER_KEY",
        )
    except (BadInputError, ConfigurationError) as refused:
        # refused before anything is sent (the owner's key, the account): the store's mark stays, and is said
        kind = BadInputError if isinstance(refused, BadInputError) else ConfigurationError
        raise kind(f"{refused}{not_sent}") from None
    receipt = result.receipt
    if receipt is None:  # with the network and the owner's key the revocation is always sent
        raise click.ClickException(
            "the revocation was not sent on chain (the store refuses the session): run the command again"
        )
    click.echo(
        f"revoked on chain in transaction 0x{receipt.transaction_hash.hex()} (block {receipt.block_number})"
    )


@main.command()
@store_option(required=True)
@click.option("--node", type=HttpUrl(), default=None, metavar="URL", help="The node's JSON-RPC URL.")
@click.option("--bundler", type=HttpUrl(), default=None, metavar="URL", help="The bundler's URL.")
@_deployments_option(
    "The node and bundler of this file (rpc_url, bundler_url: what `python -m keyscope.local --json` prints), "
    "where --node and --bundler are not given.",
    from_environment=True,
)
@click.option(
    "--older-than", type=Seconds(), default=None, help="Only records untouched for that many seconds."
)
@click.option(
    "--wait", type=Seconds(), default=60.0, show_default=True, help="Seconds to follow resent operations."
)
@json_option
@reports_errors
def recover(
    store_url: str,
    node: str | None,
    bundler: str | None,
    deployments: str | None,
    older_than: float | None,
    wait: float,
    as_json: bool,
) -> None:
    """Finish what was in flight: mark landed operations included, resend (the same operation) what a
    bundler lost, fail what can never land. Exits with 3 while any of them is still unfinished after --wait
    (run it again later), else 0. Needs no session key; with the store's secret set, an operation whose
    nonce another operation took is built again with its session's key (else left for a worker that has it).
    --node and --bundler are checked first, even with nothing in flight: a node and a bundler of one chain (the
    records'), the bundler serving the records' EntryPoints. They may come from --deployments FILE instead
    (its rpc_url and bundler_url)."""
    from ..scale import SessionWorker  # the worker machinery, only for this command

    node, bundler, known = _on_chain_urls(
        deployments, node, bundler, what="to recover", not_done="nothing was followed or changed"
    )
    if node is None or bundler is None:
        raise click.UsageError(
            "give --node URL and --bundler URL, or --deployments FILE with rpc_url and bundler_url (nothing was "
            "followed or changed)"
        )

    with open_session_store(store_url, keys=False, existing=True) as store:
        damaged: dict[str, str] = {}
        pending = store.pending(
            older_than=older_than, on_corrupt=lambda name, error: damaged.update({name: one_line(error)})
        )
        if not pending:
            # nothing to follow, but the URLs are checked all the same: a job run with wrong or swapped URLs
            # would otherwise say "nothing in flight" until the day there is something, and then fail
            # (no session names a module here: none is asked about)
            network = connect_node_and_bundler(node, bundler, module=ZERO_ADDRESS)
            require_deployments_chain(known, network.chain_id, node)
            require_node_and_bundler(network, node, bundler)
            lines = [f"  unreadable {name}: {problem}" for name, problem in damaged.items()]
            emit(
                as_json,
                {"examined": 0, "unreadable": damaged},
                [
                    "nothing in flight"
                    + (f" that the store can read ({len(lines)} unreadable)" if lines else ""),
                    *lines,
                ],
            )
            return
        grants = {
            session: store.get_grant(session) for session in dict.fromkeys(r.session_id for r in pending)
        }
        grant = grants[pending[0].session_id]
        unchanged = " (nothing was followed or changed)"
        net = connect_node_and_bundler(
            node, bundler, module=grant.module, entry_point=grant.entry_point, after=unchanged
        )
        require_deployments_chain(known, net.chain_id, node, after=unchanged)
        _require_one_chain(grants, net.chain_id)
        entry_points = {granted.entry_point for granted in grants.values()}
        require_node_and_bundler(net, node, bundler, entry_points=sorted(entry_points), after=unchanged)
        worker = SessionWorker(store, net, worker_id="keyscope-recover")
        try:
            report = worker.recover(older_than=older_than, wait=wait)
        finally:
            worker.close(timeout=0)
    emit(
        as_json,
        report.as_json(),
        [
            str(report),
            *(f"  failed  {intent}: {reason}" for intent, reason in report.failed.items()),
            *(f"  waiting {intent}: {reason}" for intent, reason in report.waiting.items()),
            *(f"  unreadable {intent}: {problem}" for intent, problem in report.unreadable.items()),
        ],
    )
    if report.waiting:  # not finished: a job must not take the recovery for done
        click.echo(
            f"note: {len(report.waiting)} operation(s) still unfinished after --wait {wait:g} s: run keyscope recover "
            "again later (or with a longer --wait); a worker running on this store also finishes them",
            err=True,
        )
        sys.exit(PENDING_EXIT)


def _require_one_chain(grants: dict[str, SessionGrant], chain_id: int) -> None:
    """Refuse to recover records of sessions (``grants``, by session id) granted on another chain than the node's:
    followed there, their nonces are read on the wrong chain, where a nonce another operation used would have them
    taken for displaced and failed, or built again, while the operation may still land on its own chain."""
    chains: dict[int, list[str]] = {}
    for session_id, grant in grants.items():
        if grant.chain_id != chain_id:
            chains.setdefault(grant.chain_id, []).append(session_id)
    if chains:
        listed = "; ".join(
            f"chain {other}: {len(ids)} session(s), {', '.join(ids[:3])}{', …' if len(ids) > 3 else ''}"
            for other, ids in sorted(chains.items())
        )
        first = min(chains)
        raise ConfigurationError(
            f"records in flight are of sessions granted on another chain than --node's ({chain_id}): {listed}; "
            f"pass --node and --bundler of chain {first} (nothing was followed or changed)"
        )


main.add_command(consent)
main.add_command(dashboard)
