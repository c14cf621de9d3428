"""The end-to-end demo: one owner signature, then a dapp's session key acting alone, on a real local chain
(anvil) and a real ERC-4337 bundler (Alto).

Run it with ``make demo`` (or ``python -m keyscope.demo``). It starts the local stack, creates a smart
account counterfactually, has its owner sign one session grant, lets the session key mint NFTs through the
bundler, shows a call outside the policy refused (locally, and by the chain when sent anyway), revokes the
session and shows the key failing, has a paymaster sponsor a new user whose account holds no ETH, turns an
ordinary EOA holding ETH and an NFT into a session-capable account in place (EIP-7702, EntryPoint v0.8), then
stops everything it started.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from . import (
    BundlerRejectedError,
    KeyscopeError,
    Policy,
    PolicyViolationError,
    SessionKey,
    SessionRevokedError,
    arg,
    connect,
)
from .bundler.types import UserOperationReceipt
from .calls import encode_function_call
from .devnode import get_deposit_info, send_transaction
from .local import LocalStack
from .signing import LocalSigner
from .sponsor import LocalSponsor
from .termination import Terminated, sigterm_as_ctrl_c

__all__ = ["main", "run"]

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
ETHER = 10**18
MINTS = 3

STEPS = (
    "Start a local chain (anvil) and an ERC-4337 bundler (Alto)",
    "The user's smart account, created counterfactually",
    "The owner signs ONE session grant (off-chain, EIP-712)",
    f"The session key mints {MINTS} NFTs through the bundler, no owner involved",
    "A call outside the policy: mint to someone else",
    "The owner revokes the session (one owner operation)",
    "The session key now fails",
    "Sponsored gas: a new user with 0 ETH (ERC-7677 paymaster)",
    "An EOA with funds becomes session-capable in place (EIP-7702)",
)
"""The demo's steps, in order; each heading fits an 80-column terminal."""


@dataclass
class Row:
    step: str
    who: str
    user_op_hash: str
    gas: int
    seconds: float


def _short(value: str, keep: int = 10) -> str:
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-keep:]}"


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def run(console: Console) -> None:
    """Tell the whole story on a fresh local stack."""
    rows: list[Row] = []

    def step(number: int) -> None:
        console.print()
        console.rule(f"[bold]{number}. {STEPS[number - 1]}")

    def landed(label: str, who: str, receipt: UserOperationReceipt, seconds: float) -> None:
        rows.append(Row(label, who, "0x" + receipt.user_op_hash.hex(), receipt.actual_gas_used, seconds))
        console.print(
            f"  [green]✓[/] {label}: userOp [cyan]{_short('0x' + receipt.user_op_hash.hex())}[/] in tx "
            f"[cyan]{_short('0x' + receipt.transaction_hash.hex())}[/] (block {receipt.block_number}), "
            f"gas used [bold]{receipt.actual_gas_used:,}[/], {seconds * 1000:.0f} ms send→receipt"
        )

    step(1)
    with console.status(
        "starting anvil, deploying the EntryPoints v0.7 and v0.8 and keyscope's contracts, starting Alto…"
    ):
        stack, seconds = _timed(lambda: LocalStack().start())
    try:
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("node", stack.rpc_url)
        table.add_row("bundler", stack.bundler_url)
        table.add_row("EntryPoint v0.7", stack.entry_point)
        table.add_row("account factory", stack.factory)
        table.add_row("EntryPoint v0.8", stack.entry_point_v08)
        table.add_row("EIP-7702 delegate", stack.delegate)
        table.add_row("session module", stack.module)
        table.add_row("demo NFT", stack.nft)
        console.print(table)
        console.print(f"  ready in {seconds:.1f} s")

        net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)

        step(2)
        owner = net.owner(LocalSigner.generate())
        user = owner.account
        console.print(
            f"  owner      [cyan]{owner.signer.address}[/] (the address of the user's key, a fresh EOA)"
        )
        console.print(
            f"  account    [cyan]{user}[/] — deployed: {owner.is_deployed()} (its first operation creates it)"
        )
        stack.fund(user, ETHER)
        console.print("  funded with 1 ETH to pay for its own gas")

        step(3)
        key = SessionKey.generate()
        policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == user], value_limit=0)
        grant = owner.grant(key, [policy], valid_for=3600)
        console.print(f"  session key   [cyan]{key.address}[/] (a fresh EOA held by the dapp)")
        console.print(
            f"  allows        safeMint(address to) on the demo NFT, with to == {_short(user)}, value 0"
        )
        console.print(
            f"  valid         until {time.strftime('%H:%M:%S', time.gmtime(grant.valid_until))} UTC (one hour)"
        )
        console.print(f"  session id    [cyan]{_short('0x' + grant.session_id.hex())}[/]")
        console.print(f"  owner signed  {len(grant.owner_signature or b'')} bytes, nothing sent on chain")

        step(4)
        session = net.session(grant, key)
        for index in range(MINTS):
            pending, _ = _timed(lambda: session.execute(stack.nft, "safeMint(address)", user))
            start = time.perf_counter()
            receipt = pending.wait()
            what = (
                "mint #1 (creates the account, enables the session)" if index == 0 else f"mint #{index + 1}"
            )
            landed(what, "session key", receipt, time.perf_counter() - start)
            console.print(f"     signature {len(pending.op.signature if pending.op else b'')} bytes")
        balance = int(
            stack.node.request("eth_call", [{"to": stack.nft, "data": _balance_of(user)}, "latest"]), 16
        )
        console.print(f"  the account now holds [bold]{balance}[/] NFTs")

        step(5)
        stranger = LocalSigner.generate().address
        violation = _refused(
            lambda: session.execute(stack.nft, "safeMint(address)", stranger),
            PolicyViolationError,
            "the SDK sent a call outside the policy",
        )
        console.print(f"  [yellow]refused locally, nothing sent[/]: {violation}")
        rejected = _refused(
            lambda: session.execute(stack.nft, "safeMint(address)", stranger, check=False).wait(),
            BundlerRejectedError,
            "the chain accepted a call outside the policy",
        )
        console.print(
            "  [yellow]sent anyway (local check bypassed) → rejected by the bundler and EntryPoint[/]: "
            f"{type(rejected).__name__} code {rejected.code}, reason {rejected.reason}"
        )
        console.print(f"     the module's error: {_refusal(rejected)}")

        step(6)
        pending, _ = _timed(lambda: owner.revoke(grant))
        start = time.perf_counter()
        landed("revokeSession", "owner", pending.wait(), time.perf_counter() - start)

        step(7)
        revoked = _refused(
            lambda: session.execute(stack.nft, "safeMint(address)", user),
            SessionRevokedError,
            "a revoked session was used",
        )
        console.print(f"  [yellow]refused locally[/]: {revoked}")
        session.verify_on_chain = False
        rejected = _refused(
            lambda: session.execute(stack.nft, "safeMint(address)", user).wait(),
            BundlerRejectedError,
            "the chain accepted a revoked session",
        )
        console.print(
            f"  [yellow]sent anyway → rejected by the EntryPoint[/]: {_refusal(rejected)} (the module no longer "
            "accepts the revoked session's signature)"
        )

        step(8)
        with console.status("deploying and funding a verifying paymaster, starting its sponsor service…"):
            sponsor = LocalSponsor(stack).start()
        try:
            console.print(
                f"  paymaster       [cyan]{sponsor.paymaster}[/], deposit {sponsor.state().deposit / ETHER:.1f} ETH"
            )
            console.print(f"  sponsor service {sponsor.url} (pm_getPaymasterStubData / pm_getPaymasterData)")
            sponsored = connect(
                stack.rpc_url,
                stack.bundler_url,
                module=stack.module,
                factory=stack.factory,
                paymaster=sponsor.url,
            )
            newcomer = sponsored.owner(LocalSigner.generate())
            console.print(
                f"  account         [cyan]{newcomer.account}[/], balance {stack.balance(newcomer.account)} wei"
            )
            key2 = SessionKey.generate()
            policy2 = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == newcomer.account])
            grant2 = newcomer.grant(key2, [policy2], valid_for=3600)
            deposit_before = sponsor.state().deposit
            pending = sponsored.session(grant2, key2).execute(
                stack.nft, "safeMint(address)", newcomer.account
            )
            start = time.perf_counter()
            receipt = pending.wait()
            landed(
                "sponsored mint (creates the account)", "session key", receipt, time.perf_counter() - start
            )
            paid = deposit_before - sponsor.state().deposit
            console.print(
                f"  the account still holds {stack.balance(newcomer.account)} wei; the paymaster's deposit paid "
                f"{paid:,} wei (= actualGasCost {receipt.actual_gas_cost:,})"
            )
            if paid != receipt.actual_gas_cost:
                raise SystemExit("the paymaster's deposit does not match the operation's cost")
        finally:
            sponsor.stop()

        step(9)
        _upgrade_an_eoa(console, stack, landed)

        console.print()
        summary = Table(title="UserOperations that landed")
        summary.add_column("step")
        summary.add_column("signed by")
        # the hash whole as shortened (rich would cut it again in 80 columns); the step wraps instead
        summary.add_column("userOpHash", no_wrap=True, min_width=len(_short(rows[0].user_op_hash, 6)))
        summary.add_column("gas used", justify="right", no_wrap=True)
        summary.add_column("send→receipt", justify="right", no_wrap=True)
        for row in rows:
            summary.add_row(
                row.step, row.who, _short(row.user_op_hash, 6), f"{row.gas:,}", f"{row.seconds * 1000:.0f} ms"
            )
        console.print(summary)
        console.print(
            Panel.fit(
                "One owner signature granted the session; the session key then acted alone, only within the "
                "policy; the chain refused everything else; the owner revoked it at will; a paymaster paid "
                "for a user who holds no ETH; an ordinary EOA became a session-capable account where it stands.",
                title="done",
            )
        )
    finally:
        with console.status("stopping anvil and Alto…"):
            stack.stop()
        console.print("  stopped the node and the bundler")
    console.print(
        "\n[bold]next[/]: README.md's “Using the SDK” does the same from your own code, against the stack "
        "`.venv/bin/python -m keyscope.local --json` runs; docs/scripts.md walks a session through from a terminal"
    )


def _refused(action: Callable[[], object], refusal: type[E], accepted: str) -> E:
    """The ``refusal`` that ``action`` raises; the demo stops, saying ``accepted``, when it raises none."""
    try:
        action()
    except refusal as error:
        return error
    raise SystemExit(accepted)


def _refusal(error: BundlerRejectedError) -> str:
    """What a bundler's refusal says, decoded (the module's error with its arguments) rather than its raw text."""
    decoded = getattr(error, "revert_description", "")
    if decoded:
        return decoded
    return error.rpc_message


def _balance_of(owner: str) -> str:
    return "0x" + encode_function_call("balanceOf(address)", owner).hex()


def _upgrade_an_eoa(
    console: Console, stack: LocalStack, landed: Callable[[str, str, UserOperationReceipt, float], None]
) -> None:
    """Step 9: an EOA holding ETH and an NFT delegates to keyscope's account in one operation, and a session
    mints for it; its address, NFT and ETH stay where they are (but the gas)."""
    eoa = LocalSigner.generate()
    stack.fund(eoa.address, ETHER)
    mint = send_transaction(
        stack.node,
        stack.deployer.address,
        to=stack.nft,
        data=encode_function_call("safeMint(address)", eoa.address),
    )
    token = int(mint["logs"][0]["topics"][3], 16)

    def holdings() -> int:  # its balance, and what its prefunds left at the EntryPoint
        return (
            stack.balance(eoa.address)
            + get_deposit_info(stack.node, stack.entry_point_v08, eoa.address).deposit
        )

    def owner_of_token() -> str:
        data = "0x" + encode_function_call("ownerOf(uint256)", token).hex()
        result: str = stack.node.request("eth_call", [{"to": stack.nft, "data": data}, "latest"])
        return "0x" + result[-40:]

    before = holdings()
    console.print(f"  EOA        [cyan]{eoa.address}[/], code: none, {before / ETHER:.1f} ETH, NFT #{token}")
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate)
    owner = net.eoa(eoa)
    key = SessionKey.generate()
    policy = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == eoa.address])
    start = time.perf_counter()
    pending = owner.send_upgrade(key, [policy], valid_for=3600)
    grant = pending.wait()
    assert pending.receipt is not None
    landed(
        "EOA upgrade (authorization + module + session)",
        "EOA key",
        pending.receipt,
        time.perf_counter() - start,
    )
    code = stack.node.request("eth_getCode", [eoa.address, "latest"])
    console.print(
        f"  its code   [cyan]{code}[/] (0xef0100 ‖ keyscope's delegate): one authorization, one operation"
    )
    start = time.perf_counter()
    receipt = net.session(grant, key).execute(stack.nft, "safeMint(address)", eoa.address).wait()
    landed("mint from the EOA", "session key", receipt, time.perf_counter() - start)
    spent = pending.receipt.actual_gas_cost + receipt.actual_gas_cost
    after = holdings()
    same_nft = owner_of_token().lower() == eoa.address.lower()
    console.print(
        f"  same address, NFT #{token} still its own: {same_nft}; ETH {after / ETHER:.6f} = before minus the gas "
        f"of its two operations ({spent:,} wei): {after == before - spent}"
    )
    if not same_nft or after != before - spent:
        raise SystemExit("the EOA's assets moved")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m keyscope.demo``."""
    console = Console()
    console.print(Panel.fit("[bold]keyscope[/] — ERC-4337 session keys, end to end", subtitle="demo"))
    try:
        with sigterm_as_ctrl_c():  # SIGTERM (a service manager's stop, `kill`) stops the demo as Ctrl-C does
            run(console)
    except KeyscopeError as error:
        console.print(f"[red]error:[/] {error}")
        return 1
    except KeyboardInterrupt as stop:
        by = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
        console.print(
            f"[red]interrupted[/] ({by}): the demo stopped, and so did the node and the bundler it started; "
            "`make demo` runs it again from the start"
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
