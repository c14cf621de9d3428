"""``keyscope recover`` in a job: its exit status says whether everything in flight is finished. An operation it sent
again and did not see land within ``--wait`` is still unfinished (its output says "waiting"); a job that reads the
exit status must not take the recovery for done, as it did when every run exited with 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from keyscope import Policy, SessionKey, arg, connect, function_call
from keyscope.cli import main
from keyscope.hashing import user_op_hash_v07
from keyscope.signing import LocalSigner
from keyscope.store import OutboxState, open_store

KEK = bytes(range(32))


def test_recover_exits_non_zero_while_an_operation_it_resent_has_not_landed(
    local_stack: Any, tmp_path: Path
) -> None:
    stack = local_stack
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, 10**18)
    key = SessionKey.generate()
    grant = owner.grant(
        key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
    )
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    session_id = "0x" + grant.session_id.hex()
    with open_store(url, kek=KEK) as store:
        store.put_key(key)
        store.put_grant(grant)
        # what a worker that died right after recording leaves: a signed operation nobody sent
        store.lease_lane(owner.account, session_id, "dead-worker", 30.0)
        op = net.session(grant, key).build(
            function_call(stack.nft, "safeMint(address)", owner.account), lane=0
        )
        op_hash = "0x" + user_op_hash_v07(op.pack(), net.entry_point, net.chain_id).hex()
        store.record_intent("order-1", owner.account, session_id, 0, op, op_hash)
    net.close()
    command = ["recover", "--store", url, "--node", stack.rpc_url, "--bundler", stack.bundler_url, "--json"]
    env = {"KEYSCOPE_STORE_KEK": KEK.hex()}

    first = CliRunner(mix_stderr=False).invoke(main, [*command, "--wait", "0"], env=env)
    report = json.loads(first.stdout)
    assert report["resent"] == ["order-1"] and "order-1" in report["waiting"], report
    assert first.exit_code == 3, (first.exit_code, first.stdout, first.stderr)

    finished: Any = None
    for _ in range(3):  # the operation lands: a run that sees it included exits with 0
        finished = CliRunner(mix_stderr=False).invoke(main, [*command, "--wait", "30"], env=env)
        if finished.exit_code == 0:
            break
    assert finished.exit_code == 0, (finished.stdout, finished.stderr)
    with open_store(url, kek=KEK) as store:
        record = store.get_by_intent("order-1")
        assert record is not None and record.state is OutboxState.INCLUDED
