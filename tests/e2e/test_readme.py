"""The README's SDK example, run as written against a real anvil and Alto: the newcomer's first code works."""

from __future__ import annotations

import re
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

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
DAPP_SIDE = "# the dapp's side"


def readme_example(heading: str = "## Using the SDK") -> str:
    """The first Python block under ``heading``."""
    text = README.read_text()
    section = text[text.index(heading) :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README has no Python example under 'Using the SDK'"
    return found.group(1)


def nft_balance(stack: LocalStack, owner: str) -> int:
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [owner])
    node = JsonRpcClient(stack.rpc_url)
    result = node.request("eth_call", [{"to": stack.nft, "data": "0x" + data.hex()}, "latest"])
    return int(abi_decode(["uint256"], to_bytes(result))[0])


def test_readme_sdk_example_runs_as_written(local_stack: LocalStack) -> None:
    code = readme_example()
    user_side, dapp_side = code.split(DAPP_SIDE, 1)
    # the README's URLs are the default local ports; this stack's are free ports of its own
    user_side = user_side.replace('"http://127.0.0.1:8545"', repr(local_stack.rpc_url)).replace(
        '"http://127.0.0.1:4337"', repr(local_stack.bundler_url)
    )
    scope: dict[str, Any] = {
        "MODULE": local_stack.module,
        "FACTORY": local_stack.factory,
        "user_key": LocalSigner.generate(),
        "nft": local_stack.nft,
    }
    exec(compile(user_side, "README.md (the user's side)", "exec"), scope)
    owner = scope["owner"]
    assert not owner.is_deployed()  # nothing sent yet: the grant is the owner's signature only
    local_stack.fund(owner.account, 10**18)  # as the README's comment says: fund the account first
    exec(compile(DAPP_SIDE + dapp_side, "README.md (the dapp's side)", "exec"), scope)
    receipt = scope["receipt"]
    assert receipt.success
    assert owner.is_deployed()
    assert nft_balance(local_stack, owner.account) == 1


def test_readme_existing_account_example_runs_as_written(local_stack: LocalStack) -> None:
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
    scope: dict[str, Any] = {
        "NODE_URL": local_stack.rpc_url,
        "BUNDLER_URL": local_stack.bundler_url,
        "ACCOUNT": existing.account,
        "OWNER_VALIDATOR": None,  # keyscope's account checks its owner itself
        "SESSION_MODULE": local_stack.module,
        "OWNER_KEY": signer.private_key,
        "NFT": local_stack.nft,
    }
    exec(compile(readme_example("### Accounts"), "README.md (accounts)", "exec"), scope)
    assert scope["owner"].supports_sessions()
    assert nft_balance(local_stack, existing.account) == 1
