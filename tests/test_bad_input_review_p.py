"""Bad input where a user types, met with a clear error that loses nothing: an output file that cannot take what a
command made only after an irreversible step (the owner's signature on the consent page, contracts deployed and
paid for) gets it printed instead, and one that cannot be opened is refused before that step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from keyscope.store import open_store
from test_chain import anvil_url  # noqa: F401  (a module-scoped fixture: a real anvil)

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
