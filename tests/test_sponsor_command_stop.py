"""``python -m keyscope.sponsor`` stops the same way on Ctrl-C and on SIGTERM (a service manager's stop, ``kill``):
it said nothing on either, so an operator could not tell a stopped sponsor from one that died, nor whether its
reservations were kept. Either now says, once the service is stopped, that it signs nothing more and where its
reservations are, and exits 0 as documented (docs/sponsorship.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from keyscope.signing import LocalSigner

PAYMASTER = "0x" + "5a" * 20


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("ledger", [False, True], ids=["in-memory", "ledger"])
def test_the_sponsor_says_it_stopped_on_ctrl_c_and_on_sigterm_alike(
    tmp_path: Path, signum: signal.Signals, ledger: bool
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"targets": "any", "total_budget_wei": "1000"}))
    ledger_file = tmp_path / "sponsor-ledger.sqlite"
    args = ["--paymaster", PAYMASTER, "--policy", str(policy), "--chain-id", "31337", "--json"]
    args += ["--ledger", str(ledger_file)] if ledger else []
    env = {**os.environ, "KEYSCOPE_SPONSOR_KEY": "0x" + LocalSigner.generate().private_key.hex()}
    process = subprocess.Popen(
        [sys.executable, "-m", "keyscope.sponsor", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a process started in the background may inherit SIGINT ignored: Ctrl-C's default, as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        assert line, process.stderr.read()
        url = json.loads(line)["url"]
        assert httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "x"}, timeout=10).status_code == 200
        process.send_signal(signum)
        assert process.wait(30) == 0
        said = " ".join(process.stderr.read().split())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    kept = (
        f"its reservations are kept in the ledger {ledger_file} for the next start"
        if ledger
        else "its budgets were kept in memory only: the next start counts them afresh"
    )
    assert said.endswith(f"stopped: the sponsor at {url} signs nothing more; {kept}"), said
    assert "Traceback" not in said, said
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "x"}, timeout=5)
