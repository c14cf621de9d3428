"""The README, followed to the letter by a newcomer, against a real anvil and Alto.

keyscope is installed as the README says, from its wheel into a fresh virtual environment (no system packages,
nothing from the checkout), and the README's SDK examples run there as written: the only changes are the
URLs and addresses of this stack, given under the names the examples use. The wheel is also built from a
git URL of the repository, to show that what is committed is self-contained.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from keyscope import connect
from keyscope.execution import Call
from keyscope.hexutil import keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.rpc import JsonRpcClient
from keyscope.signing import LocalSigner
from support.wheel import ROOT, Installed, build_wheel, install_in_fresh_venv

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
RUNNER = ROOT / "tests" / "support" / "run_snippets.py"
DAPP_SIDE = "# the dapp's side"


@pytest.fixture(scope="module")
def installed(keyscope_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from the checkout, installed into a fresh virtual environment."""
    done = install_in_fresh_venv(keyscope_wheel, tmp_path_factory.mktemp("install") / "venv")
    print(f"\nfresh virtual environment with the wheel installed in {done.seconds:.1f} s")
    return done


def in_fresh_env(
    installed: Installed, *args: str, stdin: str = "", cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command of the fresh environment, from a folder outside the checkout and with no Python path of the
    test run, so that only the installed keyscope can be imported (``env``: variables to add)."""
    extra = env
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "KEYSCOPE_", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{installed.bin}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, cwd=cwd, env={**env, **(extra or {})},
        timeout=300, check=False,
    )  # fmt: skip


def run_snippets(
    installed: Installed, tmp_path: Path, scope: dict[str, Any], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    """Run ``steps`` (see tests/support/run_snippets.py) with the fresh environment's Python; their reports."""
    done = in_fresh_env(
        installed,
        str(installed.python),
        str(RUNNER),
        stdin=json.dumps({"scope": scope, "steps": steps}),
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"the README's example failed in the fresh environment:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["keyscope"]).is_relative_to(installed.root), (
        result
    )  # the wheel's keyscope, not the checkout
    return result["reports"]


def readme_example(heading: str = "## Using the SDK") -> str:
    """The first Python block under ``heading``."""
    text = README.read_text()
    section = text[text.index(heading) :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, f"the README has no Python example under {heading!r}"
    return found.group(1)


def readme_funding(rpc_url: str) -> str:
    """The README's statement that funds ``owner.account`` on the local stack, at ``rpc_url``."""
    found = re.search(
        r'`(keyscope\.rpc\.JsonRpcClient\("http://127\.0\.0\.1:8545"\)\.request\(.*?\]\))`',
        README.read_text(),
    )
    assert found, "the README no longer says how to fund owner.account on the local stack"
    return found.group(1).replace('"http://127.0.0.1:8545"', repr(rpc_url))


def nft_balance(stack: LocalStack, owner: str) -> int:
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [owner])
    node = JsonRpcClient(stack.rpc_url)
    result = node.request("eth_call", [{"to": stack.nft, "data": "0x" + data.hex()}, "latest"])
    return int(abi_decode(["uint256"], to_bytes(result))[0])


# --------------------------------------------------------------------------------------------------
# installing
# --------------------------------------------------------------------------------------------------


def test_the_installed_wheel_is_complete_and_its_command_runs(installed: Installed, tmp_path: Path) -> None:
    check = (
        "import json, keyscope\n"
        "from keyscope.artifacts import contract_artifact\n"
        "from importlib.metadata import entry_points\n"
        "names = ['KeyscopeAccount', 'KeyscopeAccountFactory', 'SessionKeyValidator', 'SponsorPaymaster', 'DemoNFT']\n"
        "print(json.dumps({'bytecode': {n: len(contract_artifact(n)['bytecode']) for n in names},\n"
        "                  'plugin': [e.value for e in entry_points(group='pytest11') if e.name == 'keyscope']}))\n"
    )
    done = in_fresh_env(installed, str(installed.python), "-c", check, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shipped = json.loads(done.stdout)
    assert all(size > 1000 for size in shipped["bytecode"].values()), shipped
    assert shipped["plugin"] == ["keyscope.testing.plugin"]
    # the EntryPoint comes from npm, in the user's project: a missing package says how to install it
    entry_point = (
        "from keyscope.artifacts import entry_point_artifact; print(len(entry_point_artifact()['bytecode']))"
    )
    missing = in_fresh_env(installed, str(installed.python), "-c", entry_point, cwd=tmp_path)
    assert "npm install --save-dev @account-abstraction/contracts@0.7.0" in missing.stderr
    found = in_fresh_env(
        installed, str(installed.python), "-c", entry_point, cwd=tmp_path,
        env={"KEYSCOPE_NODE_MODULES": str(ROOT / "node_modules")},
    )  # fmt: skip
    assert found.returncode == 0 and int(found.stdout) > 1000, found.stderr
    store = f"sqlite:///{tmp_path / 'sessions.db'}"
    missing = in_fresh_env(installed, "keyscope", "sessions", "--store", store, "--json", cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"error: --store {store}: there is no store at {tmp_path / 'sessions.db'}" in missing.stderr
    create = f"from keyscope.store import open_store; open_store({store!r}).close()"
    assert in_fresh_env(installed, str(installed.python), "-c", create, cwd=tmp_path).returncode == 0
    listed = in_fresh_env(installed, "keyscope", "sessions", "--store", store, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"sessions": [], "unreadable": []}


def test_the_committed_repository_builds_a_self_contained_wheel_from_a_git_url(tmp_path: Path) -> None:
    """What ``pip install "keyscope @ git+URL"`` builds: the committed files only (no compile step), the
    contract artefacts included."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    wheel = zipfile.ZipFile(build_wheel(f"git+file://{ROOT}", tmp_path / "dist"))
    names = set(wheel.namelist())
    shipped = {p.name for p in (ROOT / "src" / "keyscope" / "artifacts").glob("*.json")}
    assert {f"keyscope/artifacts/{name}" for name in shipped} <= names
    assert "keyscope/network.py" in names and "keyscope/testing/plugin.py" in names


# --------------------------------------------------------------------------------------------------
# the README's examples, from the installed wheel
# --------------------------------------------------------------------------------------------------


def test_readme_sdk_example_runs_as_written(
    local_stack: LocalStack, installed: Installed, tmp_path: Path
) -> None:
    code = readme_example()
    user_side, dapp_side = code.split(DAPP_SIDE, 1)
    # the example ends by closing its connections: run last, after the reports below have asked the chain
    dapp_side, closing = dapp_side.split("net.close()", 1)
    # the README's URLs are the default local ports; this stack's are free ports of its own
    user_side = user_side.replace('"http://127.0.0.1:8545"', repr(local_stack.rpc_url)).replace(
        '"http://127.0.0.1:4337"', repr(local_stack.bundler_url)
    )
    user_key = "0x" + LocalSigner.generate().private_key.hex()  # a wallet's key, as hex
    scope = {
        "MODULE": local_stack.module,
        "FACTORY": local_stack.factory,
        "user_key": user_key,
        "nft": local_stack.nft,
    }
    reports = run_snippets(
        installed,
        tmp_path,
        scope,
        [
            {"code": user_side, "name": "README.md (the user's side)"},
            # nothing sent yet: the grant is the owner's signature only
            {"report": "owner.is_deployed()", "name": "deployed_before"},
            {"report": "owner.account", "name": "account"},
            # "fund owner.account first", as the README says to on the local stack
            {
                "code": "import keyscope.rpc\n" + readme_funding(local_stack.rpc_url),
                "name": "README.md (funding)",
            },
            {"code": DAPP_SIDE + dapp_side, "name": "README.md (the dapp's side)"},
            {"report": "receipt.success", "name": "success"},
            {"report": "owner.is_deployed()", "name": "deployed_after"},
            {"report": "session.status().status", "name": "status"},
            {"report": "str(session.status())", "name": "printed"},
            {"code": "net.close()" + closing, "name": "README.md (closing)"},
        ],
    )
    assert reports["deployed_before"] is False
    assert reports["success"] is True and reports["deployed_after"] is True
    assert reports["status"] == "active"
    # what the README's comment says print(session.status()) shows: the status, the time left of the one-hour
    # window (1 h, or minutes once the example's operations took some of it), the permission
    printed = reports["printed"]
    assert "active (on chain)" in printed and re.search(r"; (1 h|[1-5]?\d min( \d+ s)?) left", printed), (
        printed
    )
    assert "allows  call safeMint(address)" in printed, printed
    assert nft_balance(local_stack, reports["account"]) == 1


def test_readme_existing_account_example_runs_as_written(
    local_stack: LocalStack, installed: Installed, tmp_path: Path
) -> None:
    """The "Accounts" example on an account that exists without the session module: it installs the module,
    grants off-chain and mints."""
    signer = LocalSigner.generate()
    net = connect(
        local_stack.rpc_url, local_stack.bundler_url, module=local_stack.module, factory=local_stack.factory
    )
    existing = net.owner(signer)
    local_stack.fund(existing.account, 10**18)
    existing.execute(Call(signer.address, 0, b"")).wait()  # the account is created (module installed)...
    existing.uninstall_sessions().wait()  # ...and the module taken off again: an account without sessions
    assert existing.is_deployed() and not existing.supports_sessions()
    scope = {
        "NODE_URL": local_stack.rpc_url,
        "BUNDLER_URL": local_stack.bundler_url,
        "ACCOUNT": existing.account,
        "OWNER_VALIDATOR": None,  # keyscope's account checks its owner itself
        "SESSION_MODULE": local_stack.module,
        "OWNER_KEY": "0x" + signer.private_key.hex(),
        "NFT": local_stack.nft,
        "RECIPIENT": signer.address,  # the user's EOA
    }
    reports = run_snippets(
        installed,
        tmp_path,
        scope,
        [
            {"code": readme_example("### Accounts"), "name": "README.md (accounts)"},
            {"report": "owner.supports_sessions()", "name": "supports_sessions"},
            {"report": "owner.kind.name", "name": "kind"},
        ],
    )
    assert reports == {"supports_sessions": True, "kind": "keyscope"}
    assert nft_balance(local_stack, signer.address) == 1
