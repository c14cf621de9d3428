"""Bad input where a user types, met with a clear error that loses nothing: an output file that cannot take what a
command made only after an irreversible step (the owner's signature on the consent page, contracts deployed and
paid for) gets it printed instead, and one that cannot be opened is refused before that step; a command stopped by
SIGTERM (a service manager's stop, ``kill``) says what Ctrl-C says, rather than nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from test_chain import anvil_url  # noqa: F401  (a module-scoped fixture: a real anvil)
from test_store import make_grant

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FULL = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk
READ_ONLY = Path("/proc/version")  # cannot be opened for writing, even by root


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("KEYSCOPE_")}


def _requests(tmp_path: Path, chain_id: int, nft: str) -> Path:
    params = [
        {
            "chainId": hex(chain_id),
            "expiry": int(time.time()) + 3600,
            "signer": {"type": "key", "data": {"id": LocalSigner.generate().address}},
            "permission": {
                "type": "contract-call",
                "data": {"address": nft, "function": "safeMint(address to)"},
            },
            "policies": [],
        }
    ]
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(params))
    return requests


def _grant_on_the_page(url: str, chain_id: int) -> dict[str, Any]:
    """The owner's wallet connects to the consent page at ``url`` and signs the grant, as the page has it do."""
    base, consent_id = url.rsplit("/consent/", 1)
    owner = LocalSigner.generate()
    connected = httpx.post(
        f"{base}/api/consent/{consent_id}/connect", json={"address": owner.address, "chainId": chain_id}
    )
    assert connected.status_code == 200, connected.text
    signature = owner.sign_typed_data(connected.json()["typedData"])
    signed = httpx.post(
        f"{base}/api/consent/{consent_id}/signature", json={"signature": "0x" + signature.hex()}
    )
    assert signed.status_code == 200, signed.text
    return signed.json()  # type: ignore[no-any-return]


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_consent_prints_the_responses_when_its_out_file_cannot_take_them(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """Once "error: cannot use: No space left on device" after the owner had signed, and the responses, the grant's
    only copy for the dapp, written nowhere."""
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    command = subprocess.Popen(
        [
            str(BIN / "keyscope"),
            "consent",
            str(_requests(tmp_path, local_stack.chain_id, local_stack.nft)),
            *("--node", local_stack.rpc_url, "--bundler", local_stack.bundler_url),
            *("--module", local_stack.module, "--factory", local_stack.factory),
            *("--store", store, "--out", str(FULL), "--timeout", "120"),
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert command.stderr is not None
        for line in command.stderr:
            if line.startswith("open the consent page in the owner's browser: "):
                url = line.rsplit(" ", 1)[1].strip()
                break
        else:
            raise AssertionError(f"no consent page: {command.wait(10)}")
        granted = _grant_on_the_page(url, local_stack.chain_id)
        stdout, stderr = command.communicate(timeout=60)
    finally:
        command.kill()
        command.wait()
    assert command.returncode == 1, stderr
    (response,) = json.loads(stdout)  # the responses, on stdout instead
    assert response["address"] == granted["account"]
    assert stderr.strip().splitlines()[-1] == (
        f"error: --out {FULL}: cannot write the responses (No space left on device): the owner granted session "
        f"{granted['sessionId']} of {granted['account']}, and its responses are printed on stdout instead; the grant "
        f"is also in the session store {store}; save them from there"
    )
    assert ["0x" + g.session_id.hex() for g in open_store(store, create=False).list_grants()] == [
        granted["sessionId"]
    ]


@pytest.mark.skipif(not READ_ONLY.exists(), reason="needs /proc")
def test_consent_refuses_an_out_file_it_cannot_open_before_the_owner_is_asked(tmp_path: Path) -> None:
    """Refused before the page is served (nothing listens at the node given: the command never gets that far)."""
    done = subprocess.run(
        [
            str(BIN / "keyscope"),
            "consent",
            str(_requests(tmp_path, 31337, "0x" + "ab" * 20)),
            *("--node", "http://127.0.0.1:9", "--bundler", "http://127.0.0.1:9"),
            *("--module", "0x" + "cd" * 20, "--factory", "0x" + "ef" * 20),
            *("--store", f"sqlite:///{tmp_path / 'sessions.db'}", "--out", str(READ_ONLY)),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: --out {READ_ONLY}: cannot write there (Invalid argument); nothing was asked of the owner: give a "
        "file you can write to"
    ]
    assert not (tmp_path / "sessions.db").exists()


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_ape_run_deploy_prints_the_addresses_when_its_out_file_cannot_take_them(
    anvil_url: str,  # noqa: F811
) -> None:
    """Once "error: cannot write deployments file /dev/full" and nothing else with --json (or -v WARNING): the
    contracts were deployed and paid for, and their addresses lost."""
    done = subprocess.run(
        [
            *(str(BIN / "ape"), "run", "deploy", "--network", anvil_url, "--deployer", "TEST::0"),
            *("--out", str(FULL), "--json", "-v", "WARNING"),
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    addresses = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"entry_point", "factory", "module", "nft"} <= addresses.keys()
    code = httpx.post(
        anvil_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [addresses["module"], "latest"]},
    ).json()["result"]
    assert len(code) > 2  # the module printed is the one deployed
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot write deployments file {FULL}: No space left on device: the contracts are on chain, and their "
        "addresses are printed above instead; save them from there"
    )


class SilentNode:
    """A server that takes connections and never answers: a node that is stuck. ``asked`` is set once it has a
    connection."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.asked = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        while True:
            try:
                self._held.append(self._server.accept()[0])
            except OSError:
                return
            self.asked.set()

    def close(self) -> None:
        self._server.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def silent_node() -> Iterator[SilentNode]:
    node = SilentNode()
    yield node
    node.close()


def _stopped(
    command: list[str],
    signum: signal.Signals,
    cwd: Path,
    *,
    line: str = "",
    event: threading.Event | None = None,
) -> tuple[int, list[str]]:
    """Run ``command``, send it ``signum`` once it printed a line starting with ``line`` on stderr (or once
    ``event`` is set), and give its exit status and stderr's lines."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a process started in the background may inherit SIGINT ignored: Ctrl-C's default, as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    try:
        assert process.stderr is not None
        lines = []
        if event is not None:
            assert event.wait(120), "the command never asked the node"
        else:
            for said in process.stderr:
                lines.append(said.rstrip("\n"))
                if said.startswith(line):
                    break
        process.send_signal(signum)
        lines += process.stderr.read().splitlines()
        return process.wait(60), lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_while_ape_run_status_waits_says_what_is_in_flight(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """SIGTERM during a wait ended ``ape run`` at once and silently (status -15): not a word that the operation may
    still be included, which Ctrl-C says, nor how to follow it."""
    user_op_hash = "0x" + "ab" * 32
    status, lines = _stopped(
        [
            *(str(BIN / "ape"), "run", "status", user_op_hash, "--bundler", local_stack.bundler_url),
            *("--node", local_stack.rpc_url, "--wait", "--timeout", "120"),
        ],
        signal.SIGTERM,
        ROOT,
        line="waiting for the operation to be included",
    )
    assert status == 130, lines
    assert lines[-2:] == [
        f"interrupted while waiting: UserOperation {user_op_hash} may still be included; follow it with "
        f"`ape run status {user_op_hash} --wait` before sending it again",
        "interrupted (SIGTERM): the command stopped before it finished; nothing more was done",
    ], lines


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_keyscope_command_stopped_while_a_node_is_stuck_says_it_was_interrupted(
    silent_node: SilentNode, tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C printed click's bare "Aborted!" (status 1); SIGTERM ended the command silently (status -15)."""
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    open_store(store).close()
    status, lines = _stopped(
        [str(BIN / "keyscope"), "sessions", "--store", store, "--node", silent_node.url, "--json"],
        signum,
        tmp_path,
        event=silent_node.asked,
    )
    by = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert status == 130, lines
    assert lines == [f"interrupted ({by}): the command stopped before it finished; nothing more was done"]


def test_make_demo_stopped_by_sigterm_says_so_as_ctrl_c_does(tmp_path: Path) -> None:
    """SIGTERM ended the demo silently (status -15), where Ctrl-C says it was interrupted and exits with 130."""
    process = subprocess.Popen(
        [sys.executable, "-m", "keyscope.demo"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "1. Start a local chain" in line:
                break
        time.sleep(1)  # within the start of the node and the bundler
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stdout + stderr
    said = " ".join(stdout.split())
    assert said.endswith(
        "interrupted (SIGTERM): the demo stopped, and so did the node and the bundler it started; `make demo` runs "
        "it again from the start"
    ), said
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (  # the deployments file given for the requests
            {"rpc_url": "http://127.0.0.1:8545", "chain_id": 31337, "module": "0x" + "cd" * 20},
            "got an object with keys 'rpc_url', 'chain_id', 'module': give a JSON list of PermissionRequest objects, "
            "as docs/erc7715.md shows them",
        ),
        ([], "got an empty list: give at least one request"),
    ],
    ids=["another-object", "empty-list"],
)
def test_consent_says_what_its_requests_file_held_instead_of_requests(
    tmp_path: Path, given: Any, said: str
) -> None:
    """Once "wallet_grantPermissions takes a non-empty list of PermissionRequest objects" and no word of what the
    file held: a newcomer who gave the deployments file (a JSON object too) could not tell what was wrong with it."""
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(given))
    done = subprocess.run(
        [
            *(str(BIN / "keyscope"), "consent", str(requests)),
            *("--node", "http://127.0.0.1:9", "--bundler", "http://127.0.0.1:9"),
            *("--module", "0x" + "cd" * 20, "--factory", "0x" + "ef" * 20),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: wallet_grantPermissions takes a non-empty list of PermissionRequest objects, {said}"
    ]
    assert list(tmp_path.iterdir()) == [requests]  # no store set up for requests refused


def test_keyscope_revoke_on_chain_refuses_a_malformed_owner_gas_cap_before_it_touches_the_store(
    tmp_path: Path,
) -> None:
    """The owner's key was read before anything was done, but KEYSCOPE_OWNER_MAX_GAS_COST only once the session was
    marked revoked in the store: a typo in it left the session revoked there and not on chain, where a leaked key
    could still use it. Both are now read first, and the command changes nothing."""
    store_url = f"sqlite:///{tmp_path / 'sessions.db'}"
    grant = make_grant()
    with open_store(store_url) as store:
        store.put_grant(grant)
    done = subprocess.run(
        [
            *(str(BIN / "keyscope"), "revoke", "0x" + grant.session_id.hex(), "--store", store_url),
            *("--node", "http://127.0.0.1:9", "--bundler", "http://127.0.0.1:9"),
        ],
        cwd=tmp_path,
        env={
            **_env(),
            "KEYSCOPE_OWNER_KEY": "0x" + LocalSigner.generate().private_key.hex(),
            "KEYSCOPE_OWNER_MAX_GAS_COST": "0.2 ether",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: KEYSCOPE_OWNER_MAX_GAS_COST is the most one of the owner's operations may cost in gas, in wei, as a "
        "whole number in decimal or 0x-hex (0 for no cap): e.g. 200000000000000000 for 0.2 ether; unset it for the "
        "default of 0.1 ether"
    ]
    with open_store(store_url, create=False) as store:
        assert not store.is_revoked(grant.session_id)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (  # once "a store URL must be a non-empty string, got ''": neither the variable nor what it held
            {"KEYSCOPE_STORE": "   "},
            "error: --store (or KEYSCOPE_STORE) is blank: give the store's URL, sqlite:///FILE, "
            "postgresql://user@host/db or a folder",
        ),
        (  # once "KEYSCOPE_STORE_KEK must be 32 bytes as 64 hex digits", and no word of the passphrase instead
            {"KEYSCOPE_STORE_KEK": "my secret words"},
            "error: KEYSCOPE_STORE_KEK must be 32 bytes as 64 hex digits (0x optional), the store's key-encryption "
            "key: set it to the one the store was created with, or put a passphrase in KEYSCOPE_STORE_PASSPHRASE "
            "instead and unset KEYSCOPE_STORE_KEK",
        ),
    ],
    ids=["blank-store", "kek-not-hex"],
)
def test_a_store_setting_that_is_blank_or_malformed_says_what_to_give(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'sessions.db'}"] if "KEYSCOPE_STORE" not in env else []
    done = subprocess.run(
        [str(BIN / "keyscope"), "sessions", *store],
        cwd=tmp_path,
        env={**_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [said]
    assert "my secret words" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_ape_run_create_account_says_when_the_funder_holds_less_than_fund(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    """Once "unexpected TransactionError: Gas estimation failed: ... Insufficient funds ... if keyscope is at fault,
    please report it": ape's words for a --fund larger than what the --funder holds."""
    deployments = tmp_path / "stack.json"
    deployments.write_text(
        json.dumps(
            {
                "chain_id": local_stack.chain_id,
                "entry_point": local_stack.entry_point,
                "factory": local_stack.factory,
                "module": local_stack.module,
                "rpc_url": local_stack.rpc_url,
                "bundler_url": local_stack.bundler_url,
            }
        )
    )
    owner = LocalSigner.generate()
    done = subprocess.run(
        [
            *(str(BIN / "ape"), "run", "create_account", "--network", local_stack.rpc_url),
            *("--deployments", str(deployments), "--fund", "100000000ether", "--funder", "TEST::5"),
            *("-v", "WARNING"),
        ],
        cwd=ROOT,
        env={**_env(), "KEYSCOPE_OWNER_KEY": "0x" + owner.private_key.hex()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: --funder 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc holds "), error
    assert error.endswith(
        " ETH, less than --fund 100000000 ETH (and the transfer's gas): nothing was sent or created; give a smaller "
        "--fund, or a --funder with the ETH"
    ), error


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (
            [
                "keyscope",
                "consent",
                "{requests}",
                *("--node", "http://127.0.0.1:9", "--bundler", "http://127.0.0.1:9"),
                *("--module", "0x" + "cd" * 20, "--factory", "0x" + "ef" * 20),
            ],
            "--timeout",
        ),
        (
            [
                "keyscope",
                "recover",
                "--store",
                "{store}",
                "--node",
                "http://127.0.0.1:9",
                "--bundler",
                "http://127.0.0.1:9",
            ],
            "--wait",
        ),
        (
            ["ape", "run", "status", "0x" + "ab" * 32, "--bundler", "http://127.0.0.1:9", "--wait"],
            "--timeout",
        ),
    ],
    ids=["consent", "recover", "ape-run-status"],
)
def test_seconds_too_many_for_a_clock_are_refused_as_the_option_s_usage_error(
    tmp_path: Path, command: list[str], option: str
) -> None:
    """``keyscope consent --timeout 1e300`` served the page, then ended in "unexpected OverflowError: timestamp out
    of range for platform time_t"; ``ape run status --timeout 1e300`` waited "of 1e+300 s"."""
    requests = _requests(tmp_path, 31337, "0x" + "ab" * 20)
    args = [arg.format(requests=requests, store=f"sqlite:///{tmp_path / 'sessions.db'}") for arg in command]
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:], option, "1e300"],
        cwd=ROOT if args[0] == "ape" else tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '{option}': '1e300' seconds is more than ten years: give at most 315360000 (e.g. 30 "
        "or 2.5)"
    )
