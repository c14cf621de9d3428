"""The command line: the ``keyscope`` command (:mod:`.commands`: an operator's view of a session store shared
by workers) and the ``ape run`` scripts in ``scripts/``, on one framework: the same options, settings,
signers, parsers, store, errors, output and actions, each a thin layer over the SDK.

A script parses its options with the decorators of :mod:`.options`, calls one action
(:func:`create_account`, :func:`grant_session`, :func:`revoke_session`, :func:`send_session_call`,
:func:`list_sessions`, :func:`operation_status`, :func:`deploy_keyscope`) and prints the result with
:func:`emit`; :func:`reports_errors` turns any :class:`~keyscope.errors.KeyscopeError` into one
``error: ...`` line on stderr and exit status 1. The ``keyscope`` command does the same with the store
actions (:func:`store_sessions`, :func:`revoke_session`).

Settings come from, in this order: the command-line option, its environment variable, the deployments file
(``--deployments``, as written by ``python -m keyscope.local --json`` or ``ape run deploy --out``), and the
default. A script's node is the ape network the command is connected to (``--network``); the ``keyscope``
command takes URLs and needs no ape.

One module per concern: :mod:`.output` (errors and what a command prints), :mod:`.settings` (deployments
files and settings), :mod:`.connection` (the node, the bundler and the checks), :mod:`.options` (click
options), :mod:`.signers` (the owner's signer), :mod:`.parsing` (command-line text), :mod:`.stores` (the
session store), :mod:`.listing` (sessions and their status), :mod:`.actions` (what the commands do),
:mod:`.deploy` (deploying keyscope with ape) and :mod:`.commands` (the ``keyscope`` command); every name of
``__all__`` is importable from the package itself.
"""

from .actions import (
    PENDING_EXIT,
    CreatedAccount,
    GrantResult,
    OperationStatus,
    RevokeResult,
    SendResult,
    StatusNode,
    create_account,
    grant_session,
    operation_status,
    receipt_lines,
    revoke_session,
    send_session_call,
    session_key_from,
    sign_grant_request,
    status_bundler,
    status_node,
    status_node_option,
)
from .actions import owner_for_grant as owner_for_grant
from .commands import main
from .connection import ape_node, connect, connect_ape, make_bundler
from .deploy import deploy_keyscope, deploy_keyscope_deterministic
from .listing import (
    Listing,
    describe_permission,
    describe_permissions,
    list_sessions,
    session_lines,
    store_sessions,
)
from .options import (
    SALT,
    OptionsAfterDashes,
    WholeNumber,
    ape_account_type,
    ape_command,
    connection_options,
    options_first,
    owner_options,
    require_ape_account,
    store_option,
    timeout_option,
)
from .output import Progress, describe_time, emit, hex_of, json_option, reports_errors, table
from .parsing import (
    DEFAULT_VALID_FOR_TEXT,
    format_duration,
    parse_amount,
    parse_call_args,
    parse_duration,
    parse_rule,
    parse_validity,
    resolve_address,
)
from .settings import (
    DEFAULT_STORE_URL,
    ENV_BUNDLER,
    ENV_DEPLOYMENTS,
    ENV_ENTRY_POINT,
    INPROCESS,
    ConnectionOptions,
    Deployments,
    Settings,
    resolve_settings,
)
from .signers import ApeAccountSigner, SigningDeclinedError, make_owner, owner_signer
from .stores import find_grant, open_session_store, shown_store_url, store_url_of

__all__ = [
    "DEFAULT_STORE_URL",
    "DEFAULT_VALID_FOR_TEXT",
    "ENV_BUNDLER",
    "ENV_DEPLOYMENTS",
    "ENV_ENTRY_POINT",
    "INPROCESS",
    "PENDING_EXIT",
    "SALT",
    "ApeAccountSigner",
    "ConnectionOptions",
    "CreatedAccount",
    "Deployments",
    "GrantResult",
    "Listing",
    "OperationStatus",
    "OptionsAfterDashes",
    "Progress",
    "RevokeResult",
    "SendResult",
    "Settings",
    "SigningDeclinedError",
    "StatusNode",
    "WholeNumber",
    "ape_account_type",
    "ape_command",
    "ape_node",
    "connect",
    "connect_ape",
    "connection_options",
    "create_account",
    "deploy_keyscope",
    "deploy_keyscope_deterministic",
    "describe_permission",
    "describe_permissions",
    "describe_time",
    "emit",
    "find_grant",
    "format_duration",
    "grant_session",
    "hex_of",
    "json_option",
    "list_sessions",
    "main",
    "make_bundler",
    "make_owner",
    "open_session_store",
    "operation_status",
    "options_first",
    "owner_options",
    "owner_signer",
    "parse_amount",
    "parse_call_args",
    "parse_duration",
    "parse_rule",
    "parse_validity",
    "receipt_lines",
    "reports_errors",
    "require_ape_account",
    "resolve_address",
    "resolve_settings",
    "revoke_session",
    "send_session_call",
    "session_key_from",
    "session_lines",
    "shown_store_url",
    "sign_grant_request",
    "status_bundler",
    "status_node",
    "status_node_option",
    "store_option",
    "store_sessions",
    "store_url_of",
    "table",
    "timeout_option",
]
