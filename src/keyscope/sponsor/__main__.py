"""``python -m keyscope.sponsor``: run the ERC-7677 sponsor service for a deployed ``SponsorPaymaster``.

::

    KEYSCOPE_SPONSOR_KEY=0x… python -m keyscope.sponsor --paymaster 0x… --rpc-url http://127.0.0.1:8545 \\
        --policy policy.json

The signing key comes from an environment variable (``--signer-key-env``, default ``KEYSCOPE_SPONSOR_KEY``)
or a file holding it in hex (``--signer-key-file``), never from the command line, which every user of the
machine can read. With ``--rpc-url`` the chain id is read from the node, the paymaster's on-chain signer
is checked against the key, and windows are counted from the later of the node's and this machine's clock.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..argv import ArgumentParser
from ..artifacts import ENTRY_POINT_V07
from ..errors import (
    PRIVATE_KEY_NOT_SHOWN,
    BadInputError,
    ConfigurationError,
    KeyscopeError,
    has_private_key_form,
)
from ..hexutil import to_wire_int
from ..http_service import MAX_CONNECTIONS, require_host
from ..rpc import JsonRpcClient
from ..signing import LocalSigner
from ..termination import sigterm_as_ctrl_c
from ..textfile import read_text_file
from ..urls import mask_url
from .deploy import paymaster_state
from .policy import SponsorshipPolicy
from .server import SponsorServer
from .service import DEFAULT_VERIFICATION_GAS_LIMIT, Sponsor, chain_clock

__all__ = ["main"]

DEFAULT_KEY_ENV = "KEYSCOPE_SPONSOR_KEY"

log = logging.getLogger("keyscope.sponsor")


class _Once(argparse.Action):
    """Store an option's value, refusing the option given twice: argparse keeps the last silently, so a wrapper
    script's ``--policy strict.json`` followed by the operator's ``--policy loose.json`` (or the other way round)
    would serve one of the two policies without a word. Which one was meant is not guessed."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given: set[str] = namespace.__dict__.setdefault("_given_once", set())
        if self.dest in given:
            parser.error(
                f"{self.option_strings[-1]} is given 2 times: give it once (which value was meant is not guessed; "
                "nothing was started)"
            )
        given.add(self.dest)
        setattr(namespace, self.dest, values)


def _whole(text: str) -> int:
    """An argparse type: an integer in ASCII digits 0-9 (``int`` also reads other scripts' digits), as the policy
    file's numbers are; its bounds are checked where it is used."""
    try:
        return to_wire_int(text, name="the number")
    except BadInputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m keyscope.sponsor",
        description="Serve ERC-7677 pm_getPaymasterStubData / pm_getPaymasterData for a SponsorPaymaster.",
    )
    for name in (None, "store"):  # every option taking one value is taken once (flags are not)
        parser.register("action", name, _Once)
    parser.add_argument("--paymaster", required=True, help="the SponsorPaymaster's address")
    parser.add_argument("--policy", required=True, help="the sponsorship policy (JSON file)")
    parser.add_argument("--rpc-url", default=None, help="a node of the chain (chain id, clock, signer check)")
    parser.add_argument(
        "--chain-id", type=_whole, default=None, help="the chain id (when there is no --rpc-url)"
    )
    parser.add_argument(
        "--entry-point",
        default=ENTRY_POINT_V07,
        help="the EntryPoint the paymaster serves, v0.7 or v0.8 (default: the canonical v0.7)",
    )
    parser.add_argument(
        "--signer-key-env",
        default=DEFAULT_KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding the signing key (default {DEFAULT_KEY_ENV})",
    )
    parser.add_argument("--signer-key-file", default=None, help="file holding the signing key in hex")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_whole, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--max-connections",
        type=_whole,
        default=MAX_CONNECTIONS,
        metavar="N",
        help=f"connections served at once; one past it is answered 503 at once (default {MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--max-connections-per-address",
        type=_whole,
        default=None,
        metavar="N",
        help="connections served at once from one client address (default: all of --max-connections on a loopback "
        "--host, a quarter on another; behind a proxy on another machine give --max-connections, and let the proxy "
        "bound each client)",
    )
    parser.add_argument(
        "--valid-after-slack",
        type=_whole,
        default=None,
        metavar="SECONDS",
        help="set validAfter this long before signing (default: validAfter 0)",
    )
    parser.add_argument(
        "--verification-gas-limit",
        type=_whole,
        default=DEFAULT_VERIFICATION_GAS_LIMIT,
        help=f"paymasterVerificationGasLimit in stub data (default {DEFAULT_VERIFICATION_GAS_LIMIT})",
    )
    parser.add_argument(
        "--ledger",
        default=None,
        metavar="FILE",
        help="a SQLite file keeping the budgets' reservations across restarts, so that signatures still valid are "
        "counted again (one service per file; default: budgets in memory, forgotten at a restart)",
    )
    parser.add_argument("--json", action="store_true", help="print the service's details as one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every refusal")
    return parser


def _load_key(args: argparse.Namespace) -> LocalSigner:
    """The sponsor's key from ``--signer-key-file`` or the environment variable ``--signer-key-env`` names; one that
    is no key is refused naming where it came from and what is wrong with it, never showing it. So is a key given
    in place of the variable's name or the file's path."""
    for option, given in (
        ("--signer-key-env", args.signer_key_env),
        ("--signer-key-file", args.signer_key_file),
    ):
        if has_private_key_form(given):
            raise BadInputError(
                f"{option}: {PRIVATE_KEY_NOT_SHOWN} is not the name of an environment variable or a file: a private "
                f"key is not given on the command line, which every user of the machine can read; put it in "
                f"{DEFAULT_KEY_ENV} (or a variable --signer-key-env names), or in a file --signer-key-file names"
            )
    if args.signer_key_file:
        text = read_text_file(
            args.signer_key_file,
            "the signing key file",
            "a file holding the key as 0x and 64 hex digits",
            secret=True,
        ).strip()
        source = f"the signing key file {args.signer_key_file}"
    else:
        text = os.environ.get(args.signer_key_env, "").strip()
        if not text:
            raise ConfigurationError(
                f"no signing key: set {args.signer_key_env} to the sponsor's private key (hex), or give "
                "--signer-key-file"
            )
        source = args.signer_key_env
    try:
        return LocalSigner(text)
    except BadInputError as error:  # what is wrong with it, never the key itself
        raise BadInputError(
            f"{source} holds no private key ({error}): give the key the paymaster's signer() is set to, 0x and 64 "
            "hex digits"
        ) from None


def build(args: argparse.Namespace) -> SponsorServer:
    """The (not yet started) server the arguments describe."""
    if args.rpc_url is not None and not args.rpc_url.strip():
        # an unset variable in `--rpc-url "$NODE"`: served without the node, no signer check nor the chain's clock
        raise BadInputError(
            f"--rpc-url is {args.rpc_url!r}: give the node's URL (http://host:port), or leave the option out and give "
            "--chain-id (nothing was started)"
        )
    try:  # before the node is asked: a blank --host (an unset "$HOST") would serve every interface
        require_host(args.host)
    except BadInputError as error:
        raise BadInputError(f"--host: {error} (nothing was started)") from None
    signer = _load_key(args)
    policy = SponsorshipPolicy.from_file(args.policy)
    clock = None
    chain_id = args.chain_id
    if args.rpc_url:
        with JsonRpcClient(args.rpc_url) as node:
            node_chain = int(node.request("eth_chainId"), 16)
            if chain_id is not None and chain_id != node_chain:
                raise ConfigurationError(
                    f"--chain-id {chain_id} but the node at {mask_url(args.rpc_url)} is chain {node_chain}"
                )
            chain_id = node_chain
            state = paymaster_state(node, args.paymaster, args.entry_point)
        if state.signer != signer.address:
            raise ConfigurationError(
                f"the paymaster {state.address} honours signer {state.signer}, but the key given is "
                f"{signer.address}: its signatures would be refused (AA34)"
            )
        clock = chain_clock(args.rpc_url)
    if chain_id is None:
        raise ConfigurationError("give --rpc-url (or --chain-id) so the sponsor knows its chain")
    try:
        sponsor = Sponsor(
            paymaster=args.paymaster,
            signer=signer,
            chain_id=chain_id,
            entry_point=args.entry_point,
            policy=policy,
            clock=clock,
            valid_after_slack=args.valid_after_slack,
            verification_gas_limit=args.verification_gas_limit,
            ledger=args.ledger,
        )
    except BadInputError as error:
        raise _as_option(error) from None
    if args.ledger is None and (policy.budget_wei is not None or policy.total_budget_wei is not None):
        log.warning(
            "the budgets are kept in memory only (no --ledger): a restart forgets what the signatures made before it "
            "may still cost, and the deposit can pay for them, until they expire (validity_seconds: %d), beside a "
            "fresh budget; give --ledger FILE",
            policy.validity_seconds,
        )
    try:
        return SponsorServer(
            sponsor,
            host=args.host,
            port=args.port,
            max_connections=args.max_connections,
            max_connections_per_address=args.max_connections_per_address,
        )
    except BadInputError as error:
        raise _as_option(error) from None


_OPTIONS = {
    "chain_id": "--chain-id",
    "entry_point": "--entry-point",
    "ledger": "--ledger",
    "max_connections": "--max-connections",
    "max_connections_per_address": "--max-connections-per-address",
    "paymaster": "--paymaster",
    "valid_after_slack": "--valid-after-slack",
    "verification_gas_limit": "--verification-gas-limit",
}


def _as_option(error: BadInputError) -> BadInputError:
    """``error`` with the ``Sponsor`` argument it starts with named as this command's option (``--chain-id``,
    not ``chain_id``)."""
    text = str(error)
    for name, option in _OPTIONS.items():
        for start in (f"{name} ", f"{name}: "):
            if text.startswith(start):
                return BadInputError(option + text[len(name) :])
    return error


def main(argv: Sequence[str] | None = None) -> int:
    """Start the service, print where it listens, serve until Ctrl-C or SIGTERM (either says it stopped). Returns the
    exit status: 0 once stopped, 1 for an error."""
    args = _parser().parse_args(argv)
    # -v is keyscope's own log (every refusal), not the HTTP libraries': httpx logs each request to the node with
    # its URL as given, API key or password included, and the sponsor asks the node for the time on every request
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("keyscope").setLevel(logging.INFO if args.verbose else logging.WARNING)

    with sigterm_as_ctrl_c():  # SIGTERM (a service manager's stop, `kill`) stops the service as Ctrl-C does
        return _serve(args)


def _stopped(url: str, ledger: str | None) -> str:
    """What the service says once stopped (Ctrl-C or SIGTERM): it signs no more, and where its reservations are."""
    kept = (
        f"its reservations are kept in the ledger {ledger} for the next start"
        if ledger is not None
        else "its budgets were kept in memory only: the next start counts them afresh"
    )
    return f"stopped: the sponsor at {url} signs nothing more; {kept}"


def _serve(args: argparse.Namespace) -> int:
    """:func:`main` once its arguments are read and its log set."""
    try:
        server = build(args).start()
    except KeyscopeError as exc:
        print(f"error: {_as_option(exc) if isinstance(exc, BadInputError) else exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a fault not foreseen: one line, not a traceback, unless KEYSCOPE_DEBUG is set
        if os.environ.get("KEYSCOPE_DEBUG"):
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (set KEYSCOPE_DEBUG=1 to see where; if keyscope is at "
            "fault, please report it)",
            file=sys.stderr,
        )
        return 1
    sponsor = server.sponsor
    details = {
        "url": server.url,
        "paymaster": sponsor.paymaster,
        "signer": sponsor.signer.address,
        "chain_id": sponsor.chain_id,
        "entry_point": sponsor.entry_point,
    }
    if args.json:
        print(json.dumps(details), flush=True)
    else:
        print(
            f"sponsor for paymaster {sponsor.paymaster} (signer {sponsor.signer.address}) on chain "
            f"{sponsor.chain_id} serving at {server.url}; Ctrl-C to stop",
            flush=True,
        )
    url, interrupted = server.url, False
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the documented ways to stop it
        interrupted = True
    finally:
        server.stop()
        sponsor.close()  # the ledger file, for the next service
    if interrupted:  # said once stopped: nothing is signed after this line
        print(_stopped(url, args.ledger), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
