"""A deployments file whose ``rpc_url`` or ``bundler_url`` is no http(s) URL (``127.0.0.1:8545``, as anvil prints its
address) is refused where the file is read, naming the key and the file, as its addresses are: ``keyscope consent``
and ``keyscope dashboard`` said only "'127.0.0.1:8545' is not an http(s) URL", leaving the person to guess which
of the URLs they gave, or the file's, it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscope.cli import Deployments, main
from keyscope.errors import BadInputError
from keyscope.store import open_store

ACCOUNT = "0x" + "a1" * 20


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rpc_url", "127.0.0.1:8545"),
        ("rpcUrl", "localhost:8545"),
        ("bundler_url", "127.0.0.1:4337"),
        ("rpc_url", "ws://127.0.0.1:8545"),
        ("bundler_url", ""),
    ],
)
def test_a_url_without_its_scheme_is_refused_naming_the_key_and_the_file(
    tmp_path: Path, key: str, value: str
) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({key: value}))
    with pytest.raises(BadInputError) as refused:
        Deployments.load(path)
    said = str(refused.value)
    assert said.startswith(f"{key} in {path}: ") and "is not an http(s) URL" in said, said
    assert "http://host:port" in said, said


def test_the_urls_a_stack_writes_and_an_inprocess_bundler_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"rpc_url": "http://127.0.0.1:8545", "bundler_url": "inprocess"}))
    loaded = Deployments.load(path)
    assert loaded.rpc_url == "http://127.0.0.1:8545" and loaded.bundler_url == "inprocess"
    path.write_text(json.dumps({"rpc_url": "https://node.example/v1/KEY", "bundler_url": "HTTP://b.example"}))
    assert Deployments.load(path).bundler_url == "HTTP://b.example"


def test_the_dashboard_names_the_deployments_files_url_that_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"rpc_url": "127.0.0.1:8545", "bundler_url": "http://127.0.0.1:9"}))
    store = f"sqlite:///{tmp_path / 's.db'}"
    open_store(store).close()  # an existing store: the file is what is wrong
    result = CliRunner(mix_stderr=False).invoke(
        main, ["dashboard", ACCOUNT, "--deployments", str(path), "--store", store]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: rpc_url in {path}: '127.0.0.1:8545' is not an http(s) URL"), (
        result.stderr
    )
