"""``keyscope consent`` and ``keyscope dashboard``: the owner's pages, served on 127.0.0.1.

::

    keyscope consent REQUESTS.json --deployments deployments.json [--store URL] [--out RESPONSE.json]
    keyscope dashboard ACCOUNT --deployments deployments.json [--store URL]

``consent`` reads ERC-7715 ``wallet_grantPermissions`` params (a JSON list of ``PermissionRequest``), prints the
consent page's address, waits for the owner's wallet, and writes the ``PermissionResponse`` list (whose
``context`` carries the grant). ``dashboard`` serves the sessions of an account until Ctrl-C. The node, the
bundler and the module come from ``--node``, ``--bundler`` and ``--module`` or a deployments file.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..consent import ConsentServer
from ..endpoints import Endpoints
from ..erc7715 import plan_from_requests
from ..errors import BadInputError, ConfigurationError
from ..store import SessionStore
from ..store.file import is_sqlite_file
from ..termination import sigterm_as_ctrl_c
from ..textfile import read_text_file
from ..urls import mask_url
from .endpoint_checks import connect_node_and_bundler, require_node_and_bundler
from .options import HttpUrl, Seconds, store_option
from .output import fail, reports_errors
from .settings import (
    ENV_BUNDLER,
    ENV_DEPLOYMENTS,
    ENV_FACTORY,
    ENV_MODULE,
    ENV_STORE,
    Deployments,
    _address_from,
    missing_settings,
    node_and_bundler_urls,
    require_deployments_chain,
)
from .signers import owner_max_gas_cost
from .stores import local_store_path, open_session_store, shown_store_url

__all__ = ["consent", "dashboard"]


def _open_page(url: str) -> None:
    """Open ``url`` in the default browser (``--open``), or say that none could be opened: on a machine without one
    (a server, a container), ``--open`` did nothing and said nothing, and the person waited for a page."""
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        click.echo(
            "--open: no browser could be opened here; open the address above in the owner's browser", err=True
        )


@dataclass(frozen=True)
class _Connection:
    """The connection options as given: :meth:`network` connects (or says which are missing)."""

    deployments: str | None
    node: str | None
    bundler: str | None
    module: str | None
    factory: str | None

    def network(self) -> Endpoints:
        known = Deployments.load(self.deployments) if self.deployments else Deployments()
        node_url, bundler_url = node_and_bundler_urls(known, self.node, self.bundler)
        module_address = self.module or known.module
        missing = [
            n
            for n, v in (("--node", node_url), ("--bundler", bundler_url), ("--module", module_address))
            if not v
        ]
        if missing:
            raise click.UsageError(missing_settings(missing, self.deployments))
        assert node_url and bundler_url and module_address
        factory = self.factory or known.factory
        network = connect_node_and_bundler(
            node_url,
            bundler_url,
            module=_address_from(module_address, "--module"),
            # the deployments file's EntryPoint, as every other command takes it (the canonical v0.7 without one)
            entry_point=None
            if known.entry_point is None
            else _address_from(known.entry_point, "entry_point"),
            factory=None if factory is None else _address_from(factory, "--factory"),
        )
        # asked now, so that a node or bundler that is down (or of another chain) is said before a page is served
        # the node's, asked first: a node that is down is said as such
        require_deployments_chain(known, network.chain_id, node_url)
        # a bundler (not the node's URL again, nor the two swapped) of the node's chain, serving the EntryPoint
        require_node_and_bundler(network, node_url, bundler_url, entry_points=[network.entry_point])
        for address, what, option in (
            (network.module, "session module", "--module"),
            (network.factory, "account factory", "--factory"),
        ):
            if address is not None and not network.chain.get_code(address):
                raise ConfigurationError(
                    f"no contract at the {what} address {address} on chain {network.chain_id} (node "
                    f"{mask_url(node_url)}): check {option} (or --deployments) and --node, or deploy keyscope there"
                )
        return network


def _connection(function: Any) -> Any:
    """Add the connection options, passed to ``function`` together as ``connection``, and ``--port``/``--open``."""

    @functools.wraps(function)
    def with_connection(
        *args: Any,
        deployments: str | None,
        node: str | None,
        bundler: str | None,
        module: str | None,
        factory: str | None,
        **kwargs: Any,
    ) -> Any:
        connection = _Connection(deployments, node, bundler, module, factory)
        return function(*args, connection=connection, **kwargs)

    command: Any = with_connection
    for option in reversed(
        [
            click.option(
                "--deployments",
                envvar=ENV_DEPLOYMENTS,
                metavar="FILE",
                help="keyscope's addresses and URLs (JSON).",
            ),
            click.option("--node", type=HttpUrl(), metavar="URL", help="The node's JSON-RPC URL."),
            click.option(
                "--bundler", type=HttpUrl(), envvar=ENV_BUNDLER, metavar="URL", help="The bundler's URL."
            ),
            click.option("--module", envvar=ENV_MODULE, metavar="ADDRESS", help="The SessionKeyValidator."),
            click.option(
                "--factory", envvar=ENV_FACTORY, metavar="ADDRESS", help="keyscope's account factory."
            ),
            click.option(
                "--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 (0: a free one)."
            ),
            click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser."),
        ]
    ):
        command = option(command)
    return command


def _store(store_url: str | None) -> SessionStore | None:
    return open_session_store(store_url, keys=False) if store_url else None


def _no_default_store(store_url: str | None) -> str | None:
    """What to say when the store is the default one and nothing was granted from this folder (no such store: the
    dashboard then knows sessions from the module's events only); None otherwise."""
    if not store_url:
        return None
    default = click.get_current_context().get_parameter_source("store_url") is ParameterSource.DEFAULT
    path = local_store_path(store_url)
    if default and path is not None and not path.exists():
        return (
            f"no session store at {store_url} (the default; nothing was granted from this folder): the dashboard "
            "lists the sessions the module's events name, without their permissions in words; give --store (or "
            f"{ENV_STORE}) to read the store your workers use"
        )
    return None


def _dashboard_stopped(store_url: str | None) -> str:
    """What Ctrl-C on ``keyscope dashboard`` says: the page is gone, and what was written (``store_url``: the store
    it read and marked revocations in; None: none)."""
    written = (
        f"every revocation it saw included is marked in the session store {mask_url(store_url)}"
        if store_url is not None
        else "it read no session store and wrote nothing"
    )
    return (
        "interrupted: the dashboard stopped and its page is closed; nothing was lost: the sessions live on chain, and "
        f"{written}; a revocation prepared on the page but not signed was not sent, and one signed whose result the "
        "page had not shown yet may still be included. Run the command again to serve the dashboard and see them"
    )


def _existing_store(store_url: str | None) -> SessionStore | None:
    """The store the dashboard reads (and marks revocations in): one that exists, never a new one set up at a
    mistyped path; None for no store, or the default one when nothing was granted from this folder
    (:func:`_no_default_store`)."""
    if not store_url or _no_default_store(store_url) is not None:
        return None
    return open_session_store(store_url, keys=False, existing=True)


def _refuse_out_over_inputs(out: Path, requests_file: Path, store_url: str | None) -> None:
    """Refuse an ``--out`` that names what the command reads: the requests file (the responses would replace the
    requests) or a session store (a SQLite database, the store given, or a file inside a file store's folder),
    whose grants the responses would overwrite. Said before the owner is asked, as the missing folder is."""
    target = out.resolve()
    store_path = local_store_path(store_url) if store_url is not None else None
    if target == requests_file.resolve():
        raise BadInputError(
            f"--out {out} is the requests file: the responses would replace the requests; give another file"
        )
    if store_path is not None and (target == store_path.resolve() or store_path.resolve() in target.parents):
        raise BadInputError(
            f"--out {out} is in the session store {store_path} (--store): the responses would overwrite the store's "
            "grants; give a file outside it"
        )
    if is_sqlite_file(out):
        raise BadInputError(
            f"--out {out} is a SQLite database (a session store?): the responses would overwrite it; give another file"
        )


def _refuse_unwritable_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot be opened for writing (a file of a read-only place, one without write
    permission), before the owner is asked: not once the owner has granted. A file that did not exist is not left
    behind, and one that did keeps what it holds until the responses replace it."""
    existed = out.exists()
    try:
        with out.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        raise BadInputError(
            f"--out {out}: cannot write there ({error.strerror or error}); nothing was asked of the owner: give a "
            "file you can write to"
        ) from None
    if not existed:
        out.unlink(missing_ok=True)


@click.command()
@click.argument("requests_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_connection
@store_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the responses here (default: stdout).",
)
@click.option(
    "--timeout",
    type=Seconds(positive=True),
    default=900.0,
    show_default=True,
    help="Seconds to wait for the owner.",
)
@reports_errors
def consent(
    requests_file: Path,
    connection: _Connection,
    port: int,
    open_page: bool,
    store_url: str | None,
    out: Path | None,
    timeout: float,
) -> None:
    """Ask the owner to grant ERC-7715 REQUESTS_FILE on the consent page; write the responses.

    REQUESTS_FILE holds the params of wallet_grantPermissions: a JSON list of PermissionRequest objects, as
    docs/erc7715.md shows them. The node, the bundler and keyscope's addresses come from the options or from
    --deployments FILE (what `python -m keyscope.local --json` prints).
    """
    try:
        params = json.loads(
            read_text_file(
                requests_file, "requests file", "the params of wallet_grantPermissions, a JSON list"
            )
        )
    except json.JSONDecodeError as error:
        raise BadInputError(
            f"{requests_file} is not JSON ({error}): give the params of wallet_grantPermissions, a JSON list of "
            "PermissionRequest objects"
        ) from None
    if out is not None and not out.parent.is_dir():
        # said now, not once the owner has granted and the responses have nowhere to go
        raise BadInputError(
            f"--out {out}: the folder {out.parent} does not exist; create it, or give another file"
        )
    if out is not None:
        _refuse_out_over_inputs(out, requests_file, store_url)
        _refuse_unwritable_out(out)
    # requests the page cannot serve are refused before the node is asked, and (for another chain or an expiry
    # already past) before the store is opened: a refused request leaves no new store behind
    plan_from_requests(params)
    # the owner's cap on a revocation the served dashboard API prepares, as every owner operation of the command's
    owner_cap = owner_max_gas_cost()
    with sigterm_as_ctrl_c():  # a service manager's stop (SIGTERM) ends it as Ctrl-C does
        network = connection.network()
        store: SessionStore | None = None
        try:
            with ConsentServer(network, port=port, owner_max_gas_cost=owner_cap) as server:
                request = server.request_permissions(params)
                # given to the server before the page's address is: the grant is stored when the owner signs
                server.store = store = _store(store_url)
                click.echo(f"open the consent page in the owner's browser: {request.url}", err=True)
                if open_page:
                    _open_page(request.url)
                try:
                    grant = request.wait(timeout)
                except (
                    KeyboardInterrupt
                ):  # Ctrl-C or SIGTERM: the page stops serving; what the owner did not grant is not written
                    click.echo(
                        "interrupted before the owner granted: the consent page is closed and no response was written; "
                        "run the command again to ask again",
                        err=True,
                    )
                    sys.exit(130)
        finally:
            if store is not None:
                store.close()
    responses = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in request.responses or []]
    text = json.dumps(responses, indent=2)
    if out is None:
        click.echo(text)
    else:
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            # the owner has signed: the responses (the grant's only copy without a store) go to stdout, not nowhere
            click.echo(text)
            kept = (
                f"; the grant is also in the session store {shown_store_url(store_url)}" if store_url else ""
            )
            fail(
                f"--out {out}: cannot write the responses ({error.strerror or error}): the owner granted session "
                f"0x{grant.session_id.hex()} of {grant.account}, and its responses are printed on stdout instead"
                f"{kept}; save them from there"
            )
    click.echo(f"granted: session 0x{grant.session_id.hex()} of {grant.account}", err=True)


@click.command()
@click.argument("account")
@_connection
@store_option
@reports_errors
def dashboard(
    account: str,
    connection: _Connection,
    port: int,
    open_page: bool,
    store_url: str | None,
) -> None:
    """Serve the sessions dashboard of ACCOUNT until Ctrl-C (or SIGTERM, which stops it the same way)."""
    account = _address_from(account, "ACCOUNT")
    # the owner's cap on what a revocation prepared here may cost as the bundler prices it (the wallet signs its hash
    # only), as for every owner operation of the command's: KEYSCOPE_OWNER_MAX_GAS_COST, said before the node is asked
    owner_cap = owner_max_gas_cost()
    store = _existing_store(store_url)  # a mistyped store is said before the node is asked
    with sigterm_as_ctrl_c():  # a service manager's stop (SIGTERM) ends it as Ctrl-C does
        try:
            network = connection.network()
            if (notice := _no_default_store(store_url)) is not None:  # said once the arguments are known good
                click.echo(notice, err=True)
            with ConsentServer(network, store=store, port=port, owner_max_gas_cost=owner_cap) as server:
                url = server.dashboard_url(account)
                click.echo(f"the sessions of {account}: {url} (Ctrl-C to stop)", err=True)
                if open_page:
                    _open_page(url)
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    # Ctrl-C (or SIGTERM), the documented way to stop it: said, with exit code 130 as consent does
                    click.echo(_dashboard_stopped(store_url if store is not None else None), err=True)
                    sys.exit(130)
        finally:
            if store is not None:
                store.close()
