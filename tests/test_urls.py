"""API keys in endpoint URLs: never shown, in messages, error attributes or reprs."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.bundler.client import BundlerClient
from keyscope.chain import RpcChain
from keyscope.errors import TransportError
from keyscope.paymaster import PaymasterClient
from keyscope.rpc import JsonRpcClient
from keyscope.urls import mask_url, masked_text

KEY = "Zk3pQ9wX7vB2nM5tR8yL1cF4hJ6gD0sA"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://api.pimlico.io/v2/11155111/rpc?apikey=pim_{KEY}", "https://api.pimlico.io/v2/11155111/rpc?apikey=***"),
        (f"https://eth-sepolia.g.alchemy.com/v2/{KEY}", "https://eth-sepolia.g.alchemy.com/v2/***"),
        (f"https://sepolia.infura.io/v3/{KEY.lower()}", "https://sepolia.infura.io/v3/***"),
        (
            "https://rpc.zerodev.app/api/v3/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/chain/84532",
            "https://rpc.zerodev.app/api/v3/***/chain/84532",
        ),
        (f"https://api.developer.coinbase.com/rpc/v1/base-sepolia/{KEY}", "https://api.developer.coinbase.com/rpc/v1/base-sepolia/***"),
        (f"https://user:{KEY}@node.example.com:8545/", "https://***@node.example.com:8545/"),
        ("http://127.0.0.1:4337", "http://127.0.0.1:4337"),
        ("http://127.0.0.1:4337/rpc?verbose", "http://127.0.0.1:4337/rpc?verbose"),
        ("https://arbitrum-sepolia.example.org/polygon-zkevm-cardona", "https://arbitrum-sepolia.example.org/polygon-zkevm-cardona"),
        ("localhost:4337", "localhost:4337"),
        (f"localhost:4337/{KEY}?key=x", "localhost:4337/***?***"),
    ],
)  # fmt: skip
def test_hosted_endpoint_urls_are_shown_without_their_keys(url: str, shown: str) -> None:
    assert mask_url(url) == shown


_URL_SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", min_size=4)


@settings(max_examples=200, deadline=None)
@given(key=_URL_SAFE, name=st.sampled_from(["apikey", "api-key", "key", "token"]))
def test_a_query_string_key_never_shows(key: str, name: str) -> None:
    url = f"https://bundler.example.com/v1/rpc?chain=1&{name}={key}"
    assert key not in mask_url(url).replace(f"{name}=***", "")
    assert mask_url(url) == f"https://bundler.example.com/v1/rpc?chain=***&{name}=***"
    message = f"cannot reach {url}: {key} refused"
    assert key not in masked_text(message, url)


@settings(max_examples=200, deadline=None)
@given(key=st.text(alphabet="abcdef0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=32, max_size=64))
def test_a_path_key_never_shows(key: str) -> None:
    url = f"https://eth-mainnet.example.com/v2/{key}"
    assert mask_url(url) == "https://eth-mainnet.example.com/v2/***"
    assert key not in masked_text(f"POST {url} failed ({key})", url)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_with_a_key_is_reported_without_it() -> None:
    port = closed_port()
    for url in (f"http://127.0.0.1:{port}/rpc?apikey={KEY}", f"http://127.0.0.1:{port}/v2/{KEY}"):
        with JsonRpcClient(url, timeout=2.0) as client, pytest.raises(TransportError) as info:
            client.request("eth_chainId")
        assert f"cannot reach http://127.0.0.1:{port}/" in str(info.value)
        assert KEY not in str(info.value) and info.value.url is not None and KEY not in info.value.url
        for shown in (BundlerClient(url), RpcChain(url), PaymasterClient(url)):
            assert KEY not in repr(shown)
        with pytest.raises(TransportError) as chain_error:
            RpcChain(url, timeout=2.0).chain_id()
        assert KEY not in str(chain_error.value)
    with pytest.raises(TransportError) as scheme:
        JsonRpcClient(f"ws://127.0.0.1:{port}/?apikey={KEY}")
    assert KEY not in str(scheme.value) and "is not an http(s) URL" in str(scheme.value)


def test_the_sponsor_command_names_its_node_without_the_key(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The sponsor's node is a hosted RPC with its API key in the URL: ``--chain-id`` other than the node's was
    refused naming ``--rpc-url`` as given, key and all, on stderr (a service's log). A real anvil answers."""
    from keyscope.local.anvil import AnvilConfig, start_anvil
    from keyscope.sponsor.__main__ import main as sponsor_main

    policy = tmp_path / "policy.json"
    policy.write_text('{"targets": "any", "total_budget_wei": "1"}')
    monkeypatch.setenv("KEYSCOPE_TEST_SPONSOR_KEY", "0x" + "5a" * 32)
    process, url = start_anvil(AnvilConfig(chain_id=31337), tmp_path / "anvil.log")
    try:
        rpc_url = f"{url}/?apikey={KEY}"
        args = [
            "--policy",
            str(policy),
            "--paymaster",
            "0x" + "11" * 20,
            "--signer-key-env",
            "KEYSCOPE_TEST_SPONSOR_KEY",
        ]
        assert sponsor_main([*args, "--rpc-url", rpc_url, "--chain-id", "1"]) == 1
    finally:
        process.stop()
    err = capsys.readouterr().err
    assert "--chain-id 1 but the node at" in err and "is chain 31337" in err, err
    assert KEY not in err, err


def test_the_sponsor_command_logs_refusals_but_never_its_node_key_when_verbose(tmp_path) -> None:
    """``python -m keyscope.sponsor -v`` logs every refusal; it also set the HTTP library's log to INFO, which
    wrote each request to the node (one per sponsorship, for the clock) with the URL as given: the API key in a
    hosted node's URL went to the service's log on every request. A real anvil answers."""
    import os
    import subprocess
    import sys

    from keyscope.local.anvil import AnvilConfig, start_anvil

    policy = tmp_path / "policy.json"
    policy.write_text('{"targets": "any", "total_budget_wei": "1"}')
    process, url = start_anvil(AnvilConfig(chain_id=31337), tmp_path / "anvil.log")
    try:
        env = {**os.environ, "KEYSCOPE_SPONSOR_KEY": "0x" + "5a" * 32}
        result = subprocess.run(
            [sys.executable, "-m", "keyscope.sponsor", "-v", "--policy", str(policy), "--paymaster",
             "0x" + "11" * 20, "--rpc-url", f"{url}/?apikey={KEY}"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        process.stop()
    # no SponsorPaymaster at that address: refused at start, after asking the node (chain id, its code)
    assert result.returncode == 1 and "0x" + "11" * 20 in result.stderr, result.stderr
    assert KEY not in result.stderr + result.stdout, result.stderr


def test_the_worker_runner_logs_at_info_without_the_node_key(tmp_path) -> None:
    """``KEYSCOPE_LOG_LEVEL=INFO python -m keyscope.scale.runner SPEC.json`` set the root logger to INFO, so the
    HTTP library logged each request to the node and the bundler with the URL as given, key and all."""
    import json
    import os
    import subprocess
    import sys

    from keyscope.local.anvil import AnvilConfig, start_anvil

    process, url = start_anvil(AnvilConfig(chain_id=31337), tmp_path / "anvil.log")
    try:
        spec = tmp_path / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "store": f"sqlite:///{tmp_path / 'store.db'}",
                    "node": f"{url}/?apikey={KEY}",
                    "bundler": f"{url}/v2/{KEY}",
                    "module": "0x" + "11" * 20,
                    "intents": [],
                }
            )
        )
        env = {**os.environ, "KEYSCOPE_LOG_LEVEL": "INFO", "KEYSCOPE_STORE_KEK": "ab" * 32}
        result = subprocess.run(
            [sys.executable, "-m", "keyscope.scale.runner", str(spec)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        process.stop()
    assert result.returncode == 0, result.stderr  # it connected to the node (and logged at INFO)
    assert KEY not in result.stderr + result.stdout, result.stderr


@pytest.mark.parametrize(
    "given", [" http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}", "http://127.0.0.1:{port}\n"]
)
def test_a_url_with_spaces_around_it_or_its_scheme_in_capitals_is_that_endpoint(given: str) -> None:
    """``connect(" http://...")`` or ``keyscope sessions --node HTTP://...`` (which the command takes) was refused
    with "'http://127.0.0.1:8545' is not an http(s) URL": the URL shown normalised, the refusal made no sense. The
    endpoint is the one named, and what is said of it is that it cannot be reached there."""
    from click.testing import CliRunner

    from keyscope import connect
    from keyscope.cli import main
    from keyscope.store import open_store

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = given.format(port=port)
    net = connect(url, f"http://127.0.0.1:{port}", module="0x" + "11" * 20)
    with pytest.raises(TransportError, match=rf"^cannot reach http://127\.0\.0\.1:{port} for eth_chainId "):
        net.chain.chain_id()
    net.close()
    store = "sqlite:///sessions.db"
    with CliRunner().isolated_filesystem():
        open_store(store).close()
        result = CliRunner().invoke(main, ["sessions", "--store", store, "--node", url])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: cannot reach http://127.0.0.1:{port} for eth_chainId "), (
        result.output
    )
