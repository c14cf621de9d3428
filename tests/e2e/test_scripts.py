"""The ``ape run`` scripts, run as a user runs them (one subprocess per command) against a real anvil and Alto.

Each ``ape run`` costs a few seconds of start-up, so independent commands run side by side (never two that
send from the same ape account, or that race on one nonce).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from keyscope import ENTRY_POINT_V07, ENTRY_POINT_V08, connect
from keyscope.calls import encode_function_call, function_call
from keyscope.hexutil import keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.local.anvil import dev_private_key
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from support.relay import Relay, made_up_receipt

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APE = Path(sys.executable).with_name("ape")
ZERO_SESSION = "0x" + "00" * 32


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """The JSON object a ``--json`` run prints last, after checking the run succeeded."""
        assert self.returncode == 0, f"{self.args} failed:\n{self.stdout}\n{self.stderr}"
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert lines, f"{self.args} printed no JSON:\n{self.stdout}"
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def error(self) -> str:
        """The one ``error:`` line of a failed run (no traceback, non-zero status)."""
        assert self.returncode != 0, f"{self.args} succeeded:\n{self.stdout}"
        assert "Traceback" not in self.stderr + self.stdout, self.stderr
        errors = [line for line in self.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, f"{self.args}: expected one error line, got:\n{self.stderr}"
        return errors[0]


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEYSCOPE_")}
    env.update(extra)
    return env


def ape_run(name: str, *args: str, env: Mapping[str, str], stdin: str = "", cwd: Path = ROOT) -> Run:
    """``ape run NAME ARGS...`` from the project's root (or ``cwd``), stdin closed unless ``stdin`` is given."""
    command = [str(APE), "run", name, *args]
    done = subprocess.run(
        command, cwd=cwd, env=_clean_env(env), input=stdin, capture_output=True, text=True, timeout=300
    )
    return Run((name, *args), done.returncode, done.stdout, done.stderr)


def side_by_side(*runs: tuple[Any, ...]) -> list[Run]:
    """Several ``ape_run(name, *args, env=...)`` at once; each item is ``(name, args, env)``."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [pool.submit(ape_run, name, *args, env=env) for name, args, env in runs]
        return [future.result() for future in futures]


def nft_balance(stack: LocalStack, nft: str, owner: str) -> int:
    data = "0x" + encode_function_call("balanceOf(address)", owner).hex()
    return int(stack.node.request("eth_call", [{"to": nft, "data": data}, "latest"]), 16)


def module_flag(stack: LocalStack, module: str, function: str, account: str, session_id: str) -> bool:
    data = "0x" + encode_function_call(f"{function}(address,bytes32)", account, to_bytes(session_id)).hex()
    return int(stack.node.request("eth_call", [{"to": module, "data": data}, "latest"]), 16) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def deployments(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stack's details as ``python -m keyscope.local --json`` prints them."""
    path = tmp_path_factory.mktemp("scripts") / "stack.json"
    path.write_text(json.dumps(local_stack.describe()) + "\n")
    return path


def _env(deployments: Path, store: Path, **extra: str) -> dict[str, str]:
    return {
        "KEYSCOPE_DEPLOYMENTS": str(deployments),
        "KEYSCOPE_STORE": f"sqlite:///{store}",
        "KEYSCOPE_STORE_PASSPHRASE": "correct horse battery staple",
        "KEYSCOPE_OWNER_KEY": "0x" + LocalSigner.generate().private_key.hex(),
        **extra,
    }


def test_account_sessions_and_revocation_through_alto(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    stack = local_stack
    env = _env(deployments, tmp_path / "sessions.db")
    net = ("--network", stack.rpc_url, "--bundler", stack.bundler_url)

    created = ape_run(
        "create_account", *net, "--fund", "1ether", "--funder", "TEST::5", "--json", env=env
    ).json()
    account = created["account"]
    assert created["created"] and created["receipt"]["success"]
    assert created["funded_wei"] == 10**18 and created["funder"] == LocalSigner(dev_private_key(5)).address
    assert created["owner"] == Account.from_key(env["KEYSCOPE_OWNER_KEY"]).address
    assert stack.node.request("eth_getCode", [account, "latest"]) not in ("0x", "")

    balance = int(stack.node.request("eth_getBalance", [account, "latest"]), 16)
    granted, again = side_by_side(
        ("grant", ("nft", "mintBatch(address to,uint256 count)", "--rule", "to==account", "--rule",
                   "count in 1..3", "--valid-for", "1h", "--total", "count<=3", "--calls", "5", "--operations",
                   "10", "--network", stack.rpc_url, "--json"), env),
        # the account exists: --fund sends nothing, and says so
        ("create_account", (*net, "--fund", "1ether", "--funder", "TEST::5"), env),
    )  # fmt: skip
    offchain = granted.json()
    assert again.returncode == 0, again.stderr
    assert (
        "already deployed" in again.stdout
        and "funded        nothing: --fund funds an account before" in again.stdout
    )
    assert int(stack.node.request("eth_getBalance", [account, "latest"]), 16) == balance
    assert offchain["how"] == "offchain" and offchain["receipt"] is None and offchain["key_generated"]
    assert offchain["account"] == account
    assert not module_flag(stack, stack.module, "isSessionActive", account, offchain["session_id"])

    # The on-chain grant (an owner operation); the off-chain one is not enabled until its first use.
    onchain_run, listed = side_by_side(
        ("grant", ("nft", "safeMint(address to)", "--rule", f"to one of account,{stack.nft}", "--valid-for",
                   "30m", "--onchain", *net, "--json"), env),
        ("sessions", ("--network", stack.rpc_url, "--json"), env),
    )  # fmt: skip
    onchain = onchain_run.json()
    assert onchain["how"] == "onchain" and onchain["receipt"]["success"]
    assert module_flag(stack, stack.module, "isSessionActive", account, onchain["session_id"])
    states = {row["session_id"]: row for row in listed.json()["sessions"]}
    assert states[offchain["session_id"]]["status"] == "not yet enabled"
    assert "count must be between 1 and 3 (both included)" in states[offchain["session_id"]]["permissions"][0]
    limits = {(row["kind"], row["amount"], row["period"]) for row in states[offchain["session_id"]]["limits"]}
    # limits over the session's life only: this module's chain runs ahead of the wall clock (other tests move
    # it), and an operation under a periodic limit claims the chain's time, which Alto would judge too early
    assert limits == {("AMOUNT", 3, 0), ("CALLS", 5, 0), ("OPERATIONS", 10, 0)}

    mint_run, refused, rejected, included = side_by_side(
        # the off-chain session's first use enables it (the id may be shortened to a unique prefix); options
        # after `--` are options still (--network above all: ape connects to it before the command runs)
        ("send", (offchain["session_id"][:10], "nft", "mintBatch(address,uint256)", "--", "account", "2",
                  "--wait", *net, "--json"), env),
        # outside the policy: the SDK refuses before sending ...
        ("send", (offchain["session_id"], "nft", "mintBatch(address,uint256)", "account", "5", *net), env),
        # ... and with the check bypassed, the bundler and the EntryPoint refuse it
        ("send", (offchain["session_id"], "nft", "mintBatch(address,uint256)", "account", "5", "--no-check",
                  *net), env),
        ("status", (onchain["receipt"]["user_op_hash"], "--json"), env),
    )  # fmt: skip
    minted = mint_run.json()
    assert minted["receipt"]["success"] and minted["receipt"]["sender"] == account
    assert "waiting for the session's operation to be included" in mint_run.stderr
    assert nft_balance(stack, stack.nft, account) == 2
    assert module_flag(stack, stack.module, "isSessionActive", account, offchain["session_id"])
    assert "count" in refused.error() and "between 1 and 3" in refused.error()
    assert "AA23" in rejected.error() and "RuleViolated" in rejected.error()
    status = included.json()
    assert status["state"] == "included" and status["receipt"] == onchain["receipt"]
    # the deployments file's rpc_url is the node that confirmed the receipt
    assert status["confirmed_by_node"] and status["node"] == stack.rpc_url

    revoking = ape_run("revoke", offchain["session_id"], *net, "--json", env=env)
    revoked = revoking.json()
    assert revoked["receipt"]["success"] and revoked["session_id"] == offchain["session_id"]
    waited = [line for line in revoking.stderr.splitlines() if "revokeSession" in line]
    assert waited[0].startswith(
        "waiting for the owner's revokeSession operation to be included (UserOperation 0x"
    )
    assert waited[0].endswith("up to 60 s)") and "included after" in waited[-1]
    assert module_flag(stack, stack.module, "isSessionRevoked", account, offchain["session_id"])

    after, other, listed_after = side_by_side(
        ("send", (offchain["session_id"], "nft", "mintBatch(address,uint256)", "account", "1", *net), env),
        ("send", (onchain["session_id"], stack.nft, "safeMint(address)", "account", "--wait", *net, "--json"),
         env),
        ("sessions", ("--network", stack.rpc_url, "--account", account, "--json"), env),
    )  # fmt: skip
    # as docs/scripts.md shows it
    assert (
        f"session {offchain['session_id']} is revoked on chain: ask the owner for a new session"
        in after.error()
    )
    assert other.json()["receipt"]["success"]
    rows = {row["session_id"]: row for row in listed_after.json()["sessions"]}
    assert rows[offchain["session_id"]]["status"] == "revoked"
    assert rows[offchain["session_id"]]["marked_revoked"]
    assert rows[onchain["session_id"]]["status"] == "active"
    assert nft_balance(stack, stack.nft, account) == 3


def test_status_shows_a_receipt_only_once_the_node_confirms_it(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    """``status`` asks a bundler for a receipt, which is the bundler's word: one that makes receipts up (here a relay
    answering in Alto's place) could have an operation never sent, or one that failed, shown as landed. Given the
    node (--node, --network as a URL, or the deployments file's rpc_url), status shows a receipt only once the
    node's transaction holds the EntryPoint's UserOperationEvent of it with the same sender, nonce and success;
    given a bundler only, it shows the receipt as the bundler's word, and says so."""
    stack = local_stack
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory, timeout=10.0)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    real = owner.execute(function_call(stack.nft, "safeMint(address)", owner.account)).wait(60.0)
    real_hash = bytes(real.user_op_hash)
    never_sent = keccak(b"an operation the bundler took and never sent")
    elsewhere = keccak(b"an operation whose receipt names another operation's transaction")
    made_up_tx = keccak(b"a bundle transaction no node has")
    block = stack.block_number()
    invented = {
        "0x" + never_sent.hex(): made_up_receipt(
            never_sent, owner.account, 1 << 64, made_up_tx, block, entry_point=ENTRY_POINT_V07
        ),
        "0x" + elsewhere.hex(): made_up_receipt(
            elsewhere,
            owner.account,
            2 << 64,
            bytes(real.transaction_hash),
            real.block_number,
            entry_point=ENTRY_POINT_V07,
        ),
    }
    told_reverted = {"0x" + real_hash.hex()}  # the real success told as a revert, while in the set
    relay = Relay(stack.bundler_url)

    def receipt(request: dict[str, Any]) -> Any:
        asked = str(request["params"][0]).lower()
        if asked in invented:
            return invented[asked]
        found = httpx.post(stack.bundler_url, json=request, timeout=30.0).json()["result"]
        if asked in told_reverted:
            return {**found, "success": False, "reason": "0x"}
        return found

    relay.answers["eth_getUserOperationReceipt"] = receipt
    # a bundler only: no deployments file (its rpc_url would be the node)
    bundler_only = {"KEYSCOPE_BUNDLER_URL": relay.url}
    with_node = {"KEYSCOPE_BUNDLER_URL": relay.url, "KEYSCOPE_DEPLOYMENTS": str(deployments)}
    node = ("--node", stack.rpc_url)
    try:
        not_had, waited, contradicted, reverted, believed, believed_json = side_by_side(
            ("status", ("0x" + never_sent.hex(), *node), bundler_only),
            ("status", ("0x" + never_sent.hex(), "--wait", "--timeout", "2", "--json"), with_node),
            ("status", ("0x" + elsewhere.hex(), *node, "--json"), bundler_only),
            ("status", ("0x" + real_hash.hex(), *node, "--json"), bundler_only),
            ("status", ("0x" + never_sent.hex(),), bundler_only),
            ("status", ("0x" + never_sent.hex(), "--json"), bundler_only),
        )
        told_reverted.clear()
        confirmed = ape_run("status", "0x" + real_hash.hex(), "--network", stack.rpc_url, env=bundler_only)
    finally:
        relay.stop()

    # the transaction the made-up receipt names is not at the node: never shown as included
    said = not_had.error()
    assert (
        f"the bundler's receipt of UserOperation 0x{never_sent.hex()} names transaction 0x{made_up_tx.hex()}"
        in said
    )
    assert "which the node does not confirm: the node does not have that transaction" in said
    assert "the bundler made the receipt up" in said and "included" not in not_had.stdout
    said = waited.error()
    assert f"no receipt for UserOperation 0x{never_sent.hex()} after 2.0s" in said, said
    assert f"the bundler reported it included in transaction 0x{made_up_tx.hex()}" in said
    assert "which the node has not confirmed" in said and "the bundler made the receipt up" in said
    assert "--wait` (given --node, the node's URL, it takes a receipt only once the node confirms it)" in said
    # a real transaction, of another operation: the node has it, without this operation's event
    said = contradicted.error()
    assert (
        f"the node's transaction 0x{bytes(real.transaction_hash).hex()} (block {real.block_number})" in said
    )
    assert f"holds no UserOperationEvent of it from the EntryPoint {ENTRY_POINT_V07}" in said
    # a real operation that succeeded, told as reverted
    said = reverted.error()
    assert "the node's event says its call succeeded, the receipt that it reverted" in said, said
    # a bundler only: the receipt is shown, as the bundler's word, and the output says so
    assert believed.returncode == 0, believed.stderr
    assert f"included      block {block}, transaction 0x{made_up_tx.hex()}" in believed.stdout
    assert "unconfirmed   the bundler's word only: no node was given to confirm it (give the node's URL" in (
        believed.stdout
    )
    shown = believed_json.json()
    assert shown["state"] == "included" and shown["confirmed_by_node"] is False and shown["node"] is None
    # the real receipt, confirmed by the node given as --network (the other commands' habit)
    assert confirmed.returncode == 0, confirmed.stderr
    assert f"included      block {real.block_number}, transaction 0x{bytes(real.transaction_hash).hex()}" in (
        confirmed.stdout
    )
    assert (
        f"confirmed     by the node {stack.rpc_url}: its transaction holds the EntryPoint's"
        in confirmed.stdout
    )
    # what the chain says: the made-up operations never ran (the account's other nonce keys unused)
    assert net.chain.get_nonce(net.entry_point, owner.account, 1) == 1 << 64
    assert net.chain.get_nonce(net.entry_point, owner.account, 2) == 2 << 64


def test_bad_input_gives_one_clear_error_line(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    env = _env(deployments, tmp_path / "sessions.db")

    def own_store(name: str, **extra: str) -> dict[str, str]:  # processes side by side: one store each
        return {**env, "KEYSCOPE_STORE": f"sqlite:///{tmp_path / name}.db", **extra}

    net = ("--network", local_stack.rpc_url)
    unreachable = f"http://127.0.0.1:{closed_port()}"
    open_store(own_store("c")["KEYSCOPE_STORE"], passphrase=env["KEYSCOPE_STORE_PASSPHRASE"]).close()
    address, rule, unknown, bundler, secret, chain, nowhere, mixed = side_by_side(
        ("grant", ("0x12345", "safeMint(address to)", *net), own_store("a")),
        ("grant", ("nft", "safeMint(address to)", "--rule", "to==0xnot-an-address", *net), own_store("b")),
        ("send", (ZERO_SESSION, "nft", "safeMint(address)", "account", *net), own_store("c")),
        ("create_account", (*net, "--bundler", unreachable), env),
        ("grant", ("nft", "safeMint(address to)", *net), own_store("d", KEYSCOPE_STORE_PASSPHRASE="")),
        ("create_account", (), env),  # ape's local test chain, with the deployments of the stack's chain
        ("sessions", net, own_store("e")),  # a store nothing was granted into: none is set up there
        # a factory of EntryPoint v0.8 beside the commands' v0.7: its accounts would refuse every operation
        ("create_account", (*net, "--factory", local_stack.factory_v08), env),
    )
    assert "target: '0x12345' is not an address" in address.error()
    assert "rule 'to==0xnot-an-address'" in rule.error() and "is not an address" in rule.error()
    assert (
        f"unknown session id {ZERO_SESSION[:10]}…" in unknown.error()
        and "ape run sessions" in unknown.error()
    )
    assert ZERO_SESSION not in unknown.error()  # a key pasted in its place would not be echoed either
    assert f"cannot reach {unreachable}" in bundler.error()
    assert "KEYSCOPE_STORE_PASSPHRASE" in secret.error()
    assert "is for chain 31337" in chain.error() and f"--network {local_stack.rpc_url}" in chain.error()
    # run without --network: the chain it is on is named as ape's default, not as a --network it was not given
    assert (
        "but ape's local test chain (ethereum:local:test, where a command without --network runs) is chain 1337"
        in (chain.error())
    )
    assert "or the deployments file of chain 1337 (--deployments, KEYSCOPE_DEPLOYMENTS)" in chain.error()
    assert f"there is no store at {tmp_path / 'e.db'}" in nowhere.error() and not (tmp_path / "e.db").exists()
    assert (
        f"the account factory {local_stack.factory_v08} trusts EntryPoint {ENTRY_POINT_V08}" in mixed.error()
    )


def test_a_node_that_is_not_running_is_one_clear_error_line(tmp_path: Path) -> None:
    """docs/scripts.md's commands with the local stack not started (or --network mistyped): ape cannot connect
    before the command runs, which it shows as a traceback; the command says which node and what to do."""
    unreachable = f"http://127.0.0.1:{closed_port()}"
    store = {"KEYSCOPE_STORE": f"sqlite:///{tmp_path / 'sessions.db'}"}
    listed, sent = side_by_side(
        ("sessions", ("--network", unreachable), store),
        ("send", (ZERO_SESSION, "nft", "safeMint(address)", "account", "--network", unreachable), store),
    )
    for run in (listed, sent):
        said = run.error()
        assert f"cannot connect to the node: No (supported) node found on '{unreachable}';" in said, said
        assert "python -m keyscope.local --json" in said and "--network" in said, said


def test_a_network_given_as_the_bundlers_url_or_without_its_scheme_says_which(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    """The node's and the bundler's URLs swapped, or the node's given as ``127.0.0.1:PORT``: ape said only that it
    found no node there, or listed its sixty ecosystems; the command names the mistake and the value to give. With
    --bundler given too (the node's URL there), it says the two look swapped and where each goes."""
    env = _env(deployments, tmp_path / "sessions.db")
    port = local_stack.rpc_url.rsplit(":", 1)[1]
    node, bundler = local_stack.rpc_url, local_stack.bundler_url
    swapped, schemeless, both_swapped = side_by_side(
        ("sessions", ("--network", bundler), env),
        ("send", (ZERO_SESSION, "nft", "safeMint(address)", "account", f"--network=127.0.0.1:{port}"), env),
        (
            "send",
            (ZERO_SESSION, "nft", "safeMint(address)", "account", "--network", bundler, "--bundler", node),
            env,
        ),
    )
    said = swapped.error()
    assert f"--network {bundler} is an ERC-4337 bundler's URL, not a node's" in said, said
    assert "--bundler the bundler's (bundler_url)" in said, said
    said = both_swapped.error()
    assert "the node and the bundler look swapped: the --network given, " in said, said
    assert f"give {node} as the --network and {bundler} as the --bundler" in said, said
    assert schemeless.returncode == 2 and "Traceback" not in schemeless.stderr, schemeless.stderr
    assert (
        f"--network '127.0.0.1:{port}' is a host and port without a scheme: give the node's URL, "
        f"--network http://127.0.0.1:{port}"
    ) in " ".join(schemeless.stderr.split()), schemeless.stderr
    assert "abstract" not in schemeless.stderr  # not ape's list of ecosystems


def test_the_node_s_url_given_as_the_bundler_too_names_the_option(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    """``ape run grant ... --onchain --network NODE --bundler NODE`` said only "eth_supportedEntryPoints rejected with
    code -32601: Method not found", naming neither option nor that it was the --network's URL (``keyscope`` and
    ``connect`` say so); and nothing is stored of a grant refused so."""
    store = tmp_path / "sessions.db"
    node = local_stack.rpc_url
    granted = ape_run(
        "grant", "nft", "safeMint(address to)", "--onchain", "--network", node, "--bundler", node,
        env=_env(deployments, store),
    )  # fmt: skip
    assert granted.error() == (
        f"error: the --bundler given, {node}, is the URL given as the --network, and it answers no "
        "eth_supportedEntryPoints: it is no ERC-4337 bundler; give --bundler the bundler's URL (bundler_url in the "
        "deployments file)"
    )
    assert not store.exists()


def test_an_account_created_without_funds_is_told_of_fund(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    """``ape run create_account`` for a new owner, without --fund: refused in the SDK's words, "send it ETH, or use a
    paymaster", with no word of the command's own --fund, which sends it ETH."""
    env = _env(deployments, tmp_path / "sessions.db")
    created = ape_run("create_account", "--network", local_stack.rpc_url, env=env)
    said = created.error()
    assert "holds 0 wei and has 0 wei deposited at the EntryPoint (AA21" in said, said
    assert said.endswith(
        "; --fund AMOUNT sends it ETH before it is created, from --funder ALIAS or the --owner account (on the local "
        "stack: --fund 1ether --funder TEST::5)"
    ), said


def test_inprocess_bundler_on_anvil(local_stack: LocalStack, tmp_path: Path) -> None:
    """keyscope deployed with `ape run deploy`, operations sent as handleOps from an ape account."""
    stack = local_stack
    out = tmp_path / "deployments.json"
    deployed = ape_run(
        "deploy", "--network", stack.rpc_url, "--deployer", "TEST::8", "--out", str(out), "--json", env={}
    ).json()
    assert json.loads(out.read_text()) == deployed
    assert deployed["module"] != stack.module and deployed["entry_point"] == stack.entry_point
    env = _env(out, tmp_path / "sessions.db", KEYSCOPE_BUNDLER_URL="inprocess", KEYSCOPE_SUBMITTER="TEST::8")
    net = ("--network", stack.rpc_url)

    created = ape_run(
        "create_account", *net, "--owner", "TEST::9", "--fund", "0.5ether", "--json", env=env
    ).json()
    assert created["receipt"]["success"]
    granted = ape_run(
        "grant", "nft", "safeMint(address to)", "--rule", "to==account", "--owner", "TEST::9", *net, "--json",
        env=env,
    ).json()  # fmt: skip
    sent = ape_run("send", granted["session_id"], "nft", "safeMint(address)", "account", "--wait", *net, "--json",
                   env=env).json()  # fmt: skip
    assert sent["receipt"]["success"]
    assert nft_balance(stack, deployed["nft"], created["account"]) == 1


def test_keyfile_owner_unlocked_from_the_environment(
    local_stack: LocalStack, deployments: Path, tmp_path: Path
) -> None:
    """An ape keyfile account as the owner: its passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE; the grant's
    EIP-712 signature needs no prompt, a raw UserOperation hash is confirmed on stdin."""
    stack = local_stack
    data = tmp_path / "ape"
    (data / "accounts").mkdir(parents=True)
    # the project's installed dependencies stay where they are: without them ape would reinstall them and
    # rebuild the project under everyone else's feet
    shared = Path(os.environ.get("APE_DATA_FOLDER", Path.home() / ".ape"))
    for name in ("packages", "ethereum"):
        if (shared / name).exists():
            (data / name).symlink_to(shared / name, target_is_directory=True)
    owner = Account.create()
    keyfile = Account.encrypt(owner.key, "s3cret", kdf="pbkdf2", iterations=1024)
    (data / "accounts" / "ksowner.json").write_text(json.dumps(keyfile))
    env = _env(deployments, tmp_path / "sessions.db", APE_DATA_FOLDER=str(data))
    env.update(KEYSCOPE_OWNER="ksowner", APE_ACCOUNTS_ksowner_PASSPHRASE="s3cret", KEYSCOPE_OWNER_KEY="")
    net = ("--network", stack.rpc_url)

    granted = ape_run(
        "grant", "nft", "safeMint(address to)", "--rule", "to==owner", *net, "--json", env=env
    ).json()
    account = granted["account"]
    stack.fund(account, 10**18)

    declined = ape_run("revoke", granted["session_id"], *net, env=env)
    assert "did not sign" in declined.error()
    revoked = ape_run("revoke", granted["session_id"], *net, "--json", env=env, stdin="y\n").json()
    assert revoked["receipt"]["success"] and revoked["receipt"]["sender"] == account
    assert module_flag(stack, stack.module, "isSessionRevoked", account, granted["session_id"])


def test_ape_local_test_chain(tmp_path: Path) -> None:
    """On ape's local test chain (empty on every run): deploy and create an account in one run (``deploy`` alone
    on that chain runs in test_the_scripts_run_from_a_dapps_own_ape_project)."""
    result = ape_run(
        "create_account", "--bundler", "inprocess", "--deploy", "--owner", "TEST::1", "--fund", "1ether", "--json",
        env={},
    ).json()  # fmt: skip
    assert result["created"] and result["receipt"]["success"] and result["funded_wei"] == 10**18


def test_a_bundler_of_another_chain_is_refused_before_anything_is_signed(local_stack: LocalStack) -> None:
    """docs/scripts.md: the bundler must serve the connected chain. On ape's local test chain (1337), with the
    local stack's Alto (31337) as the bundler, create_account stops at the connection: nothing is signed or sent."""
    run = ape_run(
        "create_account", "--bundler", local_stack.bundler_url, "--deploy", "--owner", "TEST::1", env={}
    )
    said = run.error()
    assert f"serves chain {local_stack.chain_id}, but --network is connected to chain 1337" in said, said
    assert "use a bundler and a network of the same chain" in said


def test_the_scripts_run_from_a_dapps_own_ape_project(tmp_path: Path) -> None:
    """The README: copied into another ape project's ``scripts/`` folder, the scripts run there with the installed
    keyscope (the project has the EntryPoint's npm package, here through KEYSCOPE_NODE_MODULES)."""
    project = tmp_path / "dapp"
    (project / "scripts").mkdir(parents=True)
    for script in sorted((ROOT / "scripts").glob("*.py")):
        (project / "scripts" / script.name).write_text(script.read_text())
    elsewhere = ape_run("deploy", "--help", env={}, cwd=tmp_path)  # a folder without them: ape knows none
    assert elsewhere.returncode != 0 and "No such command 'deploy'" in elsewhere.stderr
    env = {"KEYSCOPE_NODE_MODULES": str(ROOT / "node_modules")}
    deployed = ape_run("deploy", "--deployer", "TEST::0", "--json", env=env, cwd=project).json()
    assert deployed["chain_id"] == 1337 and set(deployed) >= {"entry_point", "factory", "module", "nft"}


def test_keyscope_revoke_on_chain_ends_an_offchain_grant_whose_account_has_no_code_yet(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """`keyscope revoke --node --bundler` with the owner's key, for an off-chain grant never used: the account has
    no code yet, and the grant's first operation would create it and enable the session. The revocation creates the
    account in the owner's operation and revokes the session there, so that the key can never use the grant."""
    from click.testing import CliRunner

    from keyscope import Policy, SessionKey, arg, connect
    from keyscope.cli import main
    from keyscope.errors import SessionRevokedError
    from keyscope.rpc import JsonRpcClient

    stack = local_stack
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner_key = LocalSigner.generate()
    owner = net.owner(owner_key)
    JsonRpcClient(stack.rpc_url).request("anvil_setBalance", [owner.account, hex(10**18)])
    key = SessionKey.generate()
    mint = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.grant(key, [mint], valid_for=3600)
    assert not net.is_deployed(owner.account)
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    with open_store(url) as store:
        store.put_grant(grant)

    # another key: the store's mark comes first (every worker refuses the session at once), and the refusal says
    # that it is there and that nothing was sent on chain
    stranger = LocalSigner.generate()
    refused = CliRunner(env={"KEYSCOPE_OWNER_KEY": "0x" + stranger.private_key.hex()}).invoke(
        main,
        ["revoke", "--store", url, "0x" + grant.session_id.hex(), "--node", stack.rpc_url,
         "--bundler", stack.bundler_url],
    )  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert f"error: {stranger.address} is not the owner of {owner.account}" in refused.output, refused.output
    assert "(the session is revoked in the store; nothing was sent on chain)" in refused.output, (
        refused.output
    )
    assert not net.is_deployed(owner.account)
    with open_store(url) as store:
        assert store.is_revoked(grant.session_id)

    revoked = CliRunner(env={"KEYSCOPE_OWNER_KEY": "0x" + owner_key.private_key.hex()}).invoke(
        main,
        ["revoke", "--store", url, "0x" + grant.session_id.hex(), "--node", stack.rpc_url,
         "--bundler", stack.bundler_url],
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    assert "revoked on chain in transaction 0x" in revoked.output, revoked.output
    assert net.is_deployed(owner.account)
    with pytest.raises(SessionRevokedError, match="is revoked on chain"):
        net.session(grant, key).execute(stack.nft, "safeMint(address)", owner.account).wait()


SCRIPTS_DOC = ROOT / "docs" / "scripts.md"


def _walkthrough() -> tuple[str, list[str], list[tuple[str, str]]]:
    """docs/scripts.md's block "A session from start to end": terminal 1's command, terminal 2's settings (the
    lines before the first ``ape run``), and each of its commands (continuation lines joined) with the comment
    that follows it."""
    text = SCRIPTS_DOC.read_text()
    block = text.split("## A session from start to end, on the local stack", 1)[1].split("```sh\n", 1)[1]
    block = block.split("```", 1)[0].replace("\\\n", " ")
    terminal_1, terminal_2 = block.split("# terminal 2", 1)
    (server,) = [line for line in terminal_1.splitlines() if line and not line.startswith("#")]
    settings: list[str] = []
    commands: list[tuple[str, str]] = []
    for line in terminal_2.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#") and commands and not commands[-1][1]:
            commands[-1] = (commands[-1][0], stripped[1:].strip())
        elif stripped.startswith(".venv/bin/ape run"):
            commands.append((" ".join(stripped.split()), ""))
        elif stripped and not stripped.startswith("#") and not commands:
            settings.append(line)
    return server, settings, commands


def test_the_walkthroughs_settings_wait_for_the_stack_of_terminal_1(tmp_path: Path) -> None:
    """Terminal 2's settings pasted while terminal 1's stack still starts (``stack.json`` empty) read the node's URL
    once the stack wrote it: they once ended in a Python traceback from ``json.load`` and an empty ``$NODE``, which
    ``--network $NODE --fund 1ether`` then took for ``--network --fund``. No stack is needed: the file is written
    two seconds in, as the stack writes it."""
    _, settings, _ = _walkthrough()
    (tmp_path / "stack.json").write_text("")
    url = "http://127.0.0.1:45831"
    shell = subprocess.Popen(
        ["bash", "-c", "\n".join(settings) + '\necho "NODE=$NODE"'],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    (tmp_path / "stack.json").write_text(json.dumps({"rpc_url": url, "chain_id": 31337}) + "\n")
    out, err = shell.communicate(timeout=60)
    assert shell.returncode == 0 and "Traceback" not in err, err
    assert out.splitlines()[-1] == f"NODE={url}", out


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    """docs/scripts.md's session from start to end, each command as written, from a folder laid out as the
    checkout's root (its virtual environment, caches, scripts and npm packages), so that ``stack.json`` and the
    default store land there: terminal 1 runs the local stack until Ctrl-C; terminal 2 creates the account,
    grants, sends, lists, revokes, and the last send fails with the error the block shows (the session id
    prefix the grant printed in place of the block's ``0x31cb8a68``)."""
    server, settings, commands = _walkthrough()
    assert [command.split()[2] for command, _ in commands] == [
        "create_account",
        "grant",
        "send",
        "sessions",
        "revoke",
        "send",
    ]
    for name in (".venv", ".cache", "scripts", "ape-config.yaml", "node_modules"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("KEYSCOPE_", "SOLCX_", "APE_"))
    }
    stack = subprocess.Popen(["bash", "-c", server], cwd=tmp_path, env=env, start_new_session=True)
    try:
        described: dict[str, Any] = {}
        for _ in range(600):  # until the stack prints its details (it starts in seconds)
            text = (tmp_path / "stack.json").read_text() if (tmp_path / "stack.json").exists() else ""
            if text.endswith("\n"):
                described = json.loads(text)
                break
            assert stack.poll() is None, "the local stack stopped before it printed its details"
            time.sleep(0.2)
        assert described, "the local stack printed no details in two minutes"
        # the settings once (the owner key is a new one each time they run), then every command under them
        shown = subprocess.run(
            ["bash", "-c", "set -a\n" + "\n".join(settings) + "\nenv -0"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        settled = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
        assert settled["NODE"] == described["rpc_url"] and settled["KEYSCOPE_DEPLOYMENTS"] == "stack.json"
        prefix = ""
        runs = []
        for command, comment in commands:
            command = command.replace("0x31cb8a68", prefix) if prefix else command
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env=settled,
                capture_output=True,
                text=True,
                timeout=300,
            )
            runs.append((command, comment, done))
            if command.split()[2] == "grant":
                assert done.returncode == 0, done.stderr
                (session_id,) = re.findall(r"^session id +(0x[0-9a-f]{64})$", done.stdout, re.MULTILINE)
                prefix = session_id[:10]
        for command, _, done in runs[:-1]:
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
        created, _, sent, listed, revoked, refused = (done for _, _, done in runs)
        assert re.search(r"^account +0x[0-9a-fA-F]{40}$", created.stdout, re.MULTILINE), created.stdout
        funder = LocalSigner(dev_private_key(5)).address  # TEST::5: ape's test accounts are anvil's
        assert f"funded        1 ETH from {funder}, to pay for its own gas" in created.stdout, created.stdout
        assert re.search(r"^execution +succeeded$", sent.stdout, re.MULTILINE), sent.stdout
        row = next(line for line in listed.stdout.splitlines() if prefix in line)
        assert "active" in row, listed.stdout
        assert f"revoked       {session_id}" in revoked.stdout
        # the last command fails as the comment under it shows (the block shortens the session id)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        said = runs[-1][1]
        expected = re.escape(said).replace(re.escape("0x31cb…"), "0x[0-9a-f]{64}")
        (error,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
        assert re.fullmatch(expected, error), (said, error)
        assert session_id in error
        assert (tmp_path / ".keyscope" / "sessions.db").is_file()  # the default store, in the working folder
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # Ctrl-C
        assert stack.wait(timeout=60) == 0
    for name in ("anvil", "alto"):
        pid = described["pids"][name]
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )
