"""``python -m keyscope.local``: run the local stack in the foreground until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..argv import ArgumentParser
from ..errors import PRIVATE_KEY_NOT_SHOWN, BadInputError, KeyscopeError, has_private_key_form
from ..hexutil import to_wire_int
from ..termination import sigterm_as_ctrl_c
from .errors import LocalStackError
from .stack import LocalStack

__all__ = ["main"]


def _bounded(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, refused as a usage error naming ``what`` else."""

    def parse(text: str) -> int:
        # ASCII digits only, as keyscope reads every number: int() also takes other scripts' digits, "_" and spaces
        try:
            value = to_wire_int(text)
        except BadInputError:
            given = PRIVATE_KEY_NOT_SHOWN if has_private_key_form(text) else repr(text)
            raise argparse.ArgumentTypeError(
                f"{given} is not a whole number in digits 0-9 ({what})"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: {what} is {low} to {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m keyscope.local",
        description="Run anvil and the Alto bundler on 127.0.0.1 with the EntryPoints v0.7 and v0.8, keyscope's "
        "contracts (the EIP-7702 delegate among them) and a demo NFT deployed, until Ctrl-C.",
    )
    parser.add_argument(
        "--chain-id",
        type=_bounded(1, 2**63 - 1, "a chain id"),
        default=31337,
        help="chain id (default 31337)",
    )
    parser.add_argument(
        "--block-time",
        type=_bounded(1, 2**31 - 1, "seconds between blocks"),
        default=None,
        help="seconds between blocks (default: instant)",
    )
    port = _bounded(0, 65535, "a TCP port")
    parser.add_argument("--node-port", type=port, default=None, help="anvil's port (default: a free one)")
    parser.add_argument("--bundler-port", type=port, default=None, help="Alto's port (default: a free one)")
    parser.add_argument("--no-bundler", action="store_true", help="run the node only")
    parser.add_argument("--disable-code-size-limit", action="store_true", help="lift EIP-170's 24 KiB limit")
    parser.add_argument(
        "--log-dir", default=None, help="where anvil.log and alto.log go (default: a temp folder)"
    )
    parser.add_argument(
        "--alto-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for Alto, repeatable (e.g. --alto-arg=--log-level --alto-arg=debug)",
    )
    parser.add_argument("--json", action="store_true", help="print the stack's details as one JSON object")
    return parser


def _print_details(stack: LocalStack, as_json: bool) -> None:
    info = stack.describe()
    if as_json:
        print(json.dumps(info), flush=True)
        return
    lines = [
        f"node (anvil)      {info['rpc_url']}   chain id {info['chain_id']}",
        f"bundler (Alto)    {info.get('bundler_url', '(not started)')}",
        f"EntryPoint v0.7   {info['entry_point']}",
        f"factory (staked)  {info['factory']}",
        f"EntryPoint v0.8   {info['entry_point_v08']}",
        f"factory (staked)  {info['factory_v08']}",
        f"EIP-7702 delegate {info['delegate']}",
        f"session module    {info['module']}",
        f"demo NFT          {info['nft']}",
        f"deployer          {info['deployer']}",
        "funded development accounts (well-known keys: never use them on a real network):",
        *(f"  {signer.address}  0x{signer.private_key.hex()}" for signer in stack.accounts),
        f"logs              {stack.log_dir}",
        f"started in {stack.timings['total']:.1f}s; Ctrl-C to stop",
    ]
    print("\n".join(lines), flush=True)


def _not_started(stack: LocalStack | None) -> str:
    """What Ctrl-C while the stack starts says: it did not start, what it had started is stopped, and where the logs
    of that start are (when it had made its log folder)."""
    try:
        logs: Path | None = stack.log_dir if stack is not None else None
    except LocalStackError:  # interrupted before the log folder was made
        logs = None
    return (
        "interrupted while the stack was starting: it did not start, and the processes it had started are stopped"
        + (f"; the logs of this start are in {logs}" if logs is not None else "")
        + "; run the command again to start it"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Start the stack, print its details, wait for Ctrl-C or SIGTERM, stop it. Returns the exit status: 0 once
    stopped by Ctrl-C or SIGTERM (saying so), 130 for either before the stack was up (it did not start), 1 for an
    error."""
    args = _parser().parse_args(argv)
    with sigterm_as_ctrl_c():  # SIGTERM (a service manager's stop, `kill`) stops the stack as Ctrl-C does
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """:func:`main` once its arguments are read."""
    logs: Path | None = None
    stack: LocalStack | None = None
    try:
        stack = LocalStack(
            chain_id=args.chain_id,
            block_time=args.block_time,
            bundler=not args.no_bundler,
            disable_code_size_limit=args.disable_code_size_limit,
            node_port=args.node_port,
            bundler_port=args.bundler_port,
            log_dir=args.log_dir,
            keep_logs=True,
            alto_args=args.alto_arg,
        )
        with stack:
            logs = stack.log_dir
            _print_details(stack, args.json)
            while stack.running:
                time.sleep(0.5)
            print(
                f"a process of the stack exited on its own: see the logs in {stack.log_dir}",
                file=sys.stderr,
            )
            return 1
    except KeyboardInterrupt:
        if logs is None:  # before the stack was up: start() stopped what it had started
            print(_not_started(stack), file=sys.stderr)
            return 130
        print(f"stopped; the logs stay in {logs}", file=sys.stderr)
        return 0
    except KeyscopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a --log-dir that cannot be made, most often
        where = f" {exc.filename}" if exc.filename else ""
        blocker = None
        if args.log_dir is not None:
            folder = Path(args.log_dir)
            blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        cause = f"{blocker} is a file, not a folder" if blocker is not None else exc.strerror or exc
        print(f"error: cannot use{where}: {cause}; check the path (--log-dir)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
