"""``keyscope``: the operator's command line for a session store shared by workers.

::

    keyscope sessions --store URL [--account ADDR] [--json]        sessions and their status
    keyscope outbox   --store URL [--state pending|failed|...]      operations in flight, failed and why
    keyscope revoke   --store URL SESSION_ID [--node URL --bundler URL]
                                                                   refuse a session in every worker (and on chain)
    keyscope recover  --store URL --node URL --bundler URL          finish what dead workers left in flight

The store URL may come from ``KEYSCOPE_STORE``. Secrets come from the environment only (a command line is
visible to every user of the machine): ``KEYSCOPE_STORE_PASSPHRASE`` or ``KEYSCOPE_STORE_KEK`` (64 hex
digits) for the store, ``KEYSCOPE_OWNER_KEY`` for the account owner's key when revoking on chain. None of
these commands reads a session key.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .errors import BadInputError, KeyscopeError
from .grant import SessionGrant
from .hexutil import to_bytes
from .store import OutboxRecord, OutboxState, SessionStore, open_store
from .store.base import normalize_session_id

__all__ = ["main"]

STORE_ENV = "KEYSCOPE_STORE"
PASSPHRASE_ENV = "KEYSCOPE_STORE_PASSPHRASE"
KEK_ENV = "KEYSCOPE_STORE_KEK"
OWNER_KEY_ENV = "KEYSCOPE_OWNER_KEY"

_STATES = ["pending", *(state.value for state in OutboxState)]
_SEQUENCE_MASK = 2**64 - 1

store_option = click.option(
    "--store",
    "store_url",
    envvar=STORE_ENV,
    required=True,
    metavar="URL",
    help=f"sqlite:///path.db, postgresql://user@host/db, a directory or memory:// (or ${STORE_ENV}).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class _Failure(click.ClickException):
    """A keyscope error, printed as ``error: <message>`` with exit code 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True, file=file)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except KeyscopeError as exc:
        raise _Failure(str(exc)) from None


def _secrets() -> dict[str, Any]:
    import os

    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    kek_hex = os.environ.get(KEK_ENV) or None
    if passphrase is not None and kek_hex is not None:
        raise BadInputError(f"set {PASSPHRASE_ENV} or {KEK_ENV}, not both")
    if kek_hex is not None:
        try:
            kek = to_bytes(kek_hex if kek_hex.startswith("0x") else "0x" + kek_hex, name=KEK_ENV, length=32)
        except BadInputError:
            raise BadInputError(f"{KEK_ENV} must be 64 hex digits (32 bytes)") from None
        return {"kek": kek}
    return {} if passphrase is None else {"passphrase": passphrase}


@contextmanager
def _store(url: str) -> Iterator[SessionStore]:
    store = open_store(url, **_secrets())
    try:
        yield store
    finally:
        store.close()


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _print_table(table: Table) -> None:
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Operate a keyscope session store shared by workers."""


# --------------------------------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------------------------------


def _status(grant: SessionGrant, revoked: bool, now: float) -> str:
    if revoked:
        return "revoked"
    if now < grant.valid_after:
        return "not yet valid"
    if grant.valid_until and now > grant.valid_until:
        return "expired"
    return "active"


@main.command()
@store_option
@click.option("--account", default=None, metavar="ADDRESS", help="Only this account's sessions.")
@json_option
def sessions(store_url: str, account: str | None, as_json: bool) -> None:
    """List the stored sessions with their status, and how many operations each has in flight."""
    with _errors(), _store(store_url) as store:
        grants = store.list_grants(account)
        in_flight = Counter(record.session_id for record in store.pending())
        now = time.time()
        rows: list[dict[str, Any]] = []
        for grant in grants:
            name = normalize_session_id(grant.session_id)
            rows.append(
                {
                    "session_id": name,
                    "account": grant.account,
                    "session_key": grant.session_key,
                    "status": _status(grant, store.is_revoked(name), now),
                    "enabled": store.is_enabled(name),
                    "grant": grant.how,
                    "valid_after": grant.valid_after,
                    "valid_until": grant.valid_until,
                    "pending": in_flight.get(name, 0),
                }
            )
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} session(s) in {store_url.split('?')[0]}")
    for column in ("session id", "account", "session key", "status", "enabled", "valid until", "in flight"):
        table.add_column(column, justify="right" if column == "in flight" else "left")
    for row in rows:
        table.add_row(
            row["session_id"],
            row["account"],
            row["session_key"],
            row["status"],
            "yes" if row["enabled"] else "no",
            _when(row["valid_until"]) if row["valid_until"] else "never",
            str(row["pending"]),
        )
    _print_table(table)


# --------------------------------------------------------------------------------------------------
# outbox
# --------------------------------------------------------------------------------------------------


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


@main.command()
@store_option
@click.option(
    "--state",
    type=click.Choice(_STATES),
    default=None,
    help="pending (built or sent: what a recovery must finish), or one state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest records.")
@json_option
def outbox(store_url: str, state: str | None, limit: int, as_json: bool) -> None:
    """Show the outbox: what is in flight, what landed, what failed and why."""
    with _errors(), _store(store_url) as store:
        if state == "pending":
            records = store.pending()[-limit:][::-1]
        else:
            records = store.list_outbox(state, limit=limit)
    rows = [_record_row(record) for record in records]
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} outbox record(s)" + (f" ({state})" if state else ""))
    for column in ("intent", "state", "attempts", "lane", "nonce", "updated", "userOpHash", "outcome"):
        table.add_column(column, justify="right" if column in ("attempts", "lane", "nonce") else "left")
    for row in rows:
        if row["state"] == "failed":
            outcome = row["error"] or ""
        elif row["state"] == "included":
            outcome = f"tx {row['tx_hash']}" + ("" if row["success"] else " (call reverted)")
        else:
            outcome = ""
        table.add_row(
            row["intent_id"],
            row["state"],
            str(row["attempts"]),
            str(row["lane"]),
            str(row["nonce"]),
            _when(row["updated_at"]),
            row["user_op_hash"],
            outcome,
        )
    _print_table(table)


# --------------------------------------------------------------------------------------------------
# revoke
# --------------------------------------------------------------------------------------------------


@main.command()
@store_option
@click.argument("session_id")
@click.option("--node", default=None, metavar="URL", help="Also revoke on chain: the node's JSON-RPC URL.")
@click.option("--bundler", default=None, metavar="URL", help="Also revoke on chain: the bundler's URL.")
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for inclusion."
)
def revoke(store_url: str, session_id: str, node: str | None, bundler: str | None, timeout: float) -> None:
    """Revoke SESSION_ID in the store, so that every worker refuses it at its next send.

    With --node and --bundler, also revoke it on chain: the account's owner sends ``revokeSession`` (the
    owner's key comes from $KEYSCOPE_OWNER_KEY).
    """
    if (node is None) != (bundler is None):
        raise click.UsageError("give both --node and --bundler to revoke on chain, or neither")
    with _errors(), _store(store_url) as store:
        name = normalize_session_id(session_id)
        grant = store.get_grant(name)
        store.mark_revoked(name)
        click.echo(f"session {name} of {grant.account} is revoked in the store: every worker refuses it")
        if node is None or bundler is None:
            return
        _revoke_on_chain(grant, node, bundler, timeout)


def _revoke_on_chain(grant: SessionGrant, node: str, bundler: str, timeout: float) -> None:
    import os

    from .accounts import detect_kind
    from .network import connect
    from .signing import LocalSigner

    owner_key = os.environ.get(OWNER_KEY_ENV)
    if not owner_key:
        raise BadInputError(f"revoking on chain needs the account owner's private key in ${OWNER_KEY_ENV}")
    signer = LocalSigner(owner_key if owner_key.startswith("0x") else "0x" + owner_key)
    net = connect(node, bundler, module=grant.module, entry_point=grant.entry_point)
    if not net.is_deployed(grant.account):
        click.echo(
            f"the account {grant.account} has no code yet, so there is nothing to revoke on chain: the store "
            "refuses the session. Revoke it on chain once the account exists, or have the owner invalidate "
            "every session"
        )
        return
    if grant.account_kind != "keyscope":
        net.kind = detect_kind(net, grant.account)
    receipt = net.owner(signer, grant.account).revoke(grant).wait(timeout)
    click.echo(
        f"revoked on chain in transaction 0x{receipt.transaction_hash.hex()} (block {receipt.block_number})"
    )


# --------------------------------------------------------------------------------------------------
# recover
# --------------------------------------------------------------------------------------------------


@main.command()
@store_option
@click.option("--node", required=True, metavar="URL", help="The node's JSON-RPC URL.")
@click.option("--bundler", required=True, metavar="URL", help="The bundler's URL.")
@click.option("--older-than", type=float, default=None, help="Only records untouched for that many seconds.")
@click.option(
    "--wait", type=float, default=60.0, show_default=True, help="Seconds to follow resent operations."
)
@json_option
def recover(
    store_url: str, node: str, bundler: str, older_than: float | None, wait: float, as_json: bool
) -> None:
    """Finish what was in flight: mark landed operations included, resend (the same operation) what a
    bundler lost, fail what can never land. Builds nothing new, needs no session key."""
    from .network import connect
    from .scale import SessionWorker

    with _errors(), _store(store_url) as store:
        pending = store.pending(older_than=older_than)
        if not pending:
            report_rows: dict[str, Any] = {"examined": 0}
            if as_json:
                _print_json(report_rows)
            else:
                click.echo("nothing in flight")
            return
        grant = store.get_grant(pending[0].session_id)
        net = connect(node, bundler, module=grant.module, entry_point=grant.entry_point)
        worker = SessionWorker(store, net, worker_id="keyscope-recover")
        try:
            report = worker.recover(older_than=older_than, wait=wait)
        finally:
            worker.close(timeout=0)
    if as_json:
        _print_json(
            {
                "examined": report.examined,
                "included": report.included,
                "failed": report.failed,
                "resent": report.resent,
                "waiting": report.waiting,
            }
        )
        return
    click.echo(str(report))
    for intent, reason in report.failed.items():
        click.echo(f"  failed  {intent}: {reason}")
    for intent, reason in report.waiting.items():
        click.echo(f"  waiting {intent}: {reason}")


if __name__ == "__main__":  # pragma: no cover
    main()
