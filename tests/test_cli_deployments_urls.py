"""A deployments file whose ``rpc_url`` or ``bundler_url`` is no http(s) URL (``127.0.0.1:8545``, as anvil prints its
address) is refused where the file is read, naming the key and the file, as its addresses are: ``keyscope consent``
and ``keyscope dashboard`` said only "'127.0.0.1:8545' is not an http(s) URL", leaving the person to guess which
of the URLs they gave, or the file's, it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keyscope.cli import Deployments, main
from keyscope.errors import BadInputError
from keyscope.store import open_store
from test_store import make_grant

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


def _stack_file(tmp_path: Path, local_stack: Any, **changes: Any) -> Path:
    """The deployments file ``python -m keyscope.local --json`` writes for ``local_stack``, with ``changes``."""
    path = tmp_path / "stack.json"
    written = {
        "chain_id": local_stack.chain_id,
        "entry_point": local_stack.entry_point,
        "module": local_stack.module,
        "rpc_url": local_stack.rpc_url,
        "bundler_url": local_stack.bundler_url,
        **changes,
    }
    path.write_text(json.dumps({key: value for key, value in written.items() if value is not None}))
    return path


def test_recover_and_revoke_say_which_url_their_deployments_file_lacks(tmp_path: Path) -> None:
    """A reader of docs/browser.md gives ``keyscope recover`` and ``keyscope revoke`` the ``--deployments FILE`` that
    ``consent`` and ``dashboard`` take, and got click's "No such option". Both take it now, for the node and the
    bundler (the module and the EntryPoint come from the stored grants); a file lacking one is said, naming the key,
    before anything is done: the session stays unrevoked."""
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"rpc_url": "http://127.0.0.1:9", "chain_id": 31337}))
    url = f"sqlite:///{tmp_path / 's.db'}"
    grant = make_grant()
    with open_store(url) as store:
        store.put_grant(grant)
    runner = CliRunner(mix_stderr=False)
    recovered = runner.invoke(main, ["recover", "--store", url, "--deployments", str(path)])
    said = " ".join(recovered.stderr.split())
    assert recovered.exit_code == 2 and "No such option" not in said, said
    assert f"to recover, give --bundler: the deployments file {path} has no bundler_url" in said, said
    assert said.endswith("nothing was followed or changed"), said
    session = "0x" + grant.session_id.hex()
    revoked = runner.invoke(main, ["revoke", "--store", url, session, "--deployments", str(path)])
    said = " ".join(revoked.stderr.split())
    assert revoked.exit_code == 2 and "No such option" not in said, said
    assert f"to revoke on chain, give --bundler: the deployments file {path} has no bundler_url" in said, said
    assert said.endswith("nothing was revoked"), said
    with open_store(url, create=False) as store:
        assert not store.is_revoked(grant.session_id)
    # with no URL and no file, recover says all that it needs
    bare = runner.invoke(main, ["recover", "--store", url])
    assert bare.exit_code == 2 and "give --node URL and --bundler URL, or --deployments FILE" in bare.stderr


def test_recover_and_revoke_take_the_node_and_bundler_of_a_deployments_file(
    tmp_path: Path, local_stack: Any
) -> None:
    """``keyscope recover --deployments FILE`` follows the store at the file's node and bundler, as ``--node`` and
    ``--bundler`` would; a file of another chain than its node is refused naming the file, as ``consent`` refuses
    it; ``keyscope revoke --deployments FILE`` revokes in the store, then on chain at the file's node."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    open_store(url).close()
    runner = CliRunner(mix_stderr=False)
    path = _stack_file(tmp_path, local_stack)
    recovered = runner.invoke(main, ["recover", "--store", url, "--deployments", str(path)])
    assert recovered.exit_code == 0 and "nothing in flight" in recovered.stdout, recovered.stderr
    other = _stack_file(tmp_path, local_stack, chain_id=local_stack.chain_id + 1)
    refused = runner.invoke(main, ["recover", "--store", url, "--deployments", str(other)])
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 1, said
    assert f"the deployments file {other} is for chain {local_stack.chain_id + 1}, but the node" in said, said
    grant = make_grant()
    with open_store(url) as store:
        store.put_grant(grant)
    session = "0x" + grant.session_id.hex()
    revoked = CliRunner(mix_stderr=False, env={"KEYSCOPE_OWNER_KEY": "0x" + "42" * 32}).invoke(
        main, ["revoke", "--store", url, session, "--deployments", str(other)]
    )
    said = " ".join(revoked.stderr.split())
    assert revoked.exit_code == 1 and "is revoked in the store" in revoked.stdout, said
    assert f"the deployments file {other} is for chain {local_stack.chain_id + 1}" in said, said
    assert said.endswith("(the session is revoked in the store; nothing was sent on chain)"), said
    with open_store(url, create=False) as store:
        assert store.is_revoked(grant.session_id)
