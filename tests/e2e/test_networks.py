"""Running beyond the local stack (docs/networks.md): keyscope's contracts at the same addresses on every chain,
deployed and verified by ``ape run deploy --deterministic`` as a user runs it, on two anvil chains with
different chain ids; and hosted services reached through URLs that carry an API key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from keyscope import Policy, SessionKey, arg, connect
from keyscope.bundler.client import BundlerClient
from keyscope.chain import RpcChain
from keyscope.deterministic import KEYSCOPE_SALT, deposit_info, deterministic_plan
from keyscope.errors import TransportError, UnsupportedEntryPointError
from keyscope.local import LocalStack
from keyscope.paymaster import PaymasterClient
from keyscope.signing import LocalSigner
from keyscope.sponsor import LocalSponsor
from keyscope.userop import UserOperation

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APE = Path(sys.executable).with_name("ape")
ETHER = 10**18
DEPLOYER = "TEST::9"  # ape's test accounts come from anvil's mnemonic: funded on both chains
DEPLOYER_ADDRESS = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # anvil's development account 9


def ape_run(*args: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``ape run deploy ARGS... --json`` from the project's root; its JSON result (the run must succeed)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("KEYSCOPE_")}
    done = subprocess.run(
        [str(APE), "run", "deploy", *args, "--json"],
        cwd=ROOT,
        env={**clean, **(env or {})},
        input="",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{args} printed no JSON:\n{done.stdout}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _python_block(document: Path, heading: str) -> str:
    """The first Python block under ``heading`` in ``document``."""
    text = document.read_text()
    found = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert found, f"{document.name} has no Python example under {heading!r}"
    return found.group(1)


def side_by_side(*runs: tuple[str, ...]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        return list(pool.map(lambda args: ape_run(*args), runs))


@pytest.fixture(scope="module")
def chains() -> Iterator[tuple[LocalStack, LocalStack]]:
    """Two chains with different chain ids; the first with a bundler."""
    with LocalStack(chain_id=4242) as first, LocalStack(chain_id=4343, bundler=False) as second:
        yield first, second


def test_two_chains_get_the_same_addresses_deployed_and_verified(
    chains: tuple[LocalStack, LocalStack],
) -> None:
    first, second = chains
    signer = LocalSigner.generate().address
    options = ("--deterministic", "--deployer", DEPLOYER, "--paymaster-signer", signer)
    on_first, on_second = side_by_side(
        ("--network", first.rpc_url, *options, "--paymaster-deposit", "1ether"),
        ("--network", second.rpc_url, *options),
    )
    assert (on_first["chain_id"], on_second["chain_id"]) == (4242, 4343)
    names = ("entry_point", "module", "factory", "account_implementation", "paymaster", "admin", "salt")
    assert {name: on_first[name] for name in names} == {name: on_second[name] for name in names}
    plan = deterministic_plan(DEPLOYER_ADDRESS, paymaster_signer=signer)
    assert on_first["factory"] == plan.factory.address and on_first["module"] == plan.module.address
    assert on_first["account_implementation"] == plan.account_implementation
    assert on_first["salt"] == "0x" + KEYSCOPE_SALT.hex()
    assert (
        on_first["deployed"]
        == on_second["deployed"]
        == [
            "SessionKeyValidator",
            "KeyscopeAccountFactory",
            "SponsorPaymaster",
        ]
    )
    # not where each stack's own (per-chain) deployment put them
    assert on_first["module"] not in (first.module, second.module)

    for stack, result in ((first, on_first), (second, on_second)):
        chain = RpcChain(stack.rpc_url)
        for name in ("module", "factory", "account_implementation", "paymaster"):
            assert chain.get_code(result[name]), f"no {name} on chain {result['chain_id']}"
        stake = deposit_info(chain, stack.entry_point, result["factory"])
        assert stake.staked and stake.stake == ETHER and stake.unstake_delay_sec == 86_400
        assert result["factory_stake"]["stake"] == ETHER
        paymaster = deposit_info(chain, stack.entry_point, result["paymaster"])
        assert paymaster.staked and paymaster.stake == ETHER
    assert deposit_info(RpcChain(first.rpc_url), first.entry_point, on_first["paymaster"]).deposit == ETHER

    # Run again: nothing to deploy, everything verified; --check sends nothing and needs no key.
    again, checked = side_by_side(
        ("--network", first.rpc_url, *options),
        ("--network", second.rpc_url, "--deterministic", "--check", "--admin", DEPLOYER_ADDRESS,
         "--paymaster-signer", signer),
    )  # fmt: skip
    assert again["deployed"] == [] and again["factory"] == on_first["factory"]
    assert checked["deployed"] == [] and checked["factory"] == on_second["factory"]


def test_the_deterministic_contracts_serve_sessions(chains: tuple[LocalStack, LocalStack]) -> None:
    """The same-address factory and module on a chain with a bundler: an account created by a session's first
    operation, its kind found out from the factory."""
    first, _ = chains
    plan = deterministic_plan(DEPLOYER_ADDRESS)
    chain = RpcChain(first.rpc_url)
    if not chain.get_code(plan.factory.address):
        ape_run("--network", first.rpc_url, "--deterministic", "--deployer", DEPLOYER)
    net = connect(first.rpc_url, first.bundler_url, module=plan.module.address, factory=plan.factory.address)
    owner = net.owner(LocalSigner.generate())
    first.fund(owner.account, ETHER)
    key = SessionKey.generate()
    grant = owner.grant(
        key, [Policy.call(first.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
    )
    receipt = net.session(grant, key).execute(first.nft, "safeMint(address)", owner.account).wait()
    assert receipt.success and owner.is_deployed()


def test_hosted_style_urls_with_api_keys_work_and_never_show_the_key(
    chains: tuple[LocalStack, LocalStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node, a bundler and an ERC-7677 paymaster service reached through URLs carrying an API key (in the query
    string and in the path, as hosted services take it), connected by docs/networks.md's example as written:
    requests go through, and neither errors nor reprs show the key."""
    first, _ = chains
    key = "Zk3pQ9wX7vB2nM5tR8yL1cF4hJ6gD0sA"
    with LocalSponsor(first) as sponsor:
        node = f"{first.rpc_url}/?apikey={key}"
        bundler = f"{first.bundler_url}/v2/rpc?apikey={key}"
        paymaster = f"{sponsor.url}/api/v2/{key}?chain=4242"
        for name, url in (("NODE_URL", node), ("BUNDLER_URL", bundler), ("PAYMASTER_URL", paymaster)):
            monkeypatch.setenv(name, url)
        scope: dict[str, Any] = {"MODULE": first.module, "FACTORY": first.factory}
        exec(
            compile(
                _python_block(ROOT / "docs" / "networks.md", "## A hosted bundler"), "networks.md", "exec"
            ),
            scope,
        )
        net = scope["net"]
        assert all(key not in repr(part) for part in (net.chain, net.bundler, net.paymaster))
        owner = net.owner(LocalSigner.generate())  # not funded: the sponsor pays
        session_key = SessionKey.generate()
        grant = owner.grant(
            session_key, [Policy.call(first.nft, "safeMint(address to)", rules=[arg("to") == owner.account])]
        )
        receipt = (
            net.session(grant, session_key).execute(first.nft, "safeMint(address)", owner.account).wait()
        )
        assert receipt.success and receipt.paymaster == sponsor.paymaster

        # the bundler's refusal of an unknown EntryPoint, and an unreachable node: no key in sight
        other_entry_point = LocalSigner.generate().address
        with pytest.raises(UnsupportedEntryPointError) as refused:
            BundlerClient(bundler).estimate_user_operation_gas(
                UserOperation(sender=owner.account, nonce=0, call_data=b""), other_entry_point
            )
        assert (
            key not in str(refused.value) and refused.value.url is not None and key not in refused.value.url
        )
        assert "apikey=***" in str(refused.value)
    with pytest.raises(TransportError) as gone:  # the sponsor service has stopped
        PaymasterClient(paymaster, timeout=2.0).stub_data(
            UserOperation(sender=owner.account, nonce=0, call_data=b""), first.entry_point, 4242
        )
    assert key not in str(gone.value) and "/api/v2/***" in str(gone.value)


def test_a_deployer_that_is_not_the_admin_is_told_how_to_leave_the_stake_to_the_admin() -> None:
    """docs/networks.md: staking is the admin's. A deployer planning for another admin is stopped at the stake with
    the option that leaves it out and the call the admin makes; with ``--stake 0`` the same run completes."""
    admin = LocalSigner.generate().address
    with LocalStack(chain_id=4545, bundler=False) as stack:
        command = [str(APE), "run", "deploy", "--deterministic", "--network", stack.rpc_url]
        command += ["--deployer", DEPLOYER, "--admin", admin]
        clean = {key: value for key, value in os.environ.items() if not key.startswith("KEYSCOPE_")}
        done = subprocess.run(
            command, cwd=ROOT, env=clean, input="", capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 1, done.stderr
        factory = deterministic_plan(admin).factory.address
        error = done.stderr.strip().splitlines()[-1]
        assert error.startswith(f"error: the factory at {factory} has 0 wei staked"), error
        assert "leave the stake out (--stake 0, or stake=0 in Python)" in error
        assert f"have {admin} call addStake(86400) on {factory} with {ETHER} wei" in error
        result = ape_run(
            "--network",
            stack.rpc_url,
            "--deterministic",
            "--deployer",
            DEPLOYER,
            "--admin",
            admin,
            "--stake",
            "0",
        )
        assert (
            result["factory"] == factory
            and result["deployed"] == []
            and not result["factory_stake"]["staked"]
        )


def test_verification_stops_at_other_code_where_the_proxy_or_a_planned_contract_should_be() -> None:
    """docs/networks.md: an address proves its contract only if the deterministic deployment proxy made it, so the
    command checks the proxy's own code first and stops on a chain where that address holds something else; and it
    checks the factory's immutables (a factory of other code at the planned address is refused by name)."""
    # a chain of its own: what the other tests deploy (and count as deployed) stays theirs
    with LocalStack(chain_id=4444, bundler=False) as third:
        _other_code_is_refused(third)


def _other_code_is_refused(stack: LocalStack) -> None:
    from keyscope.artifacts import DETERMINISTIC_DEPLOYER
    from keyscope.deterministic import verify_deterministic
    from keyscope.errors import DeploymentError

    plan = deterministic_plan(DEPLOYER_ADDRESS)
    ape_run("--network", stack.rpc_url, "--deterministic", "--deployer", DEPLOYER)
    chain = RpcChain(stack.rpc_url)
    assert verify_deterministic(chain, plan) == []

    def replaced(address: str, code: bytes) -> bytes:
        before = chain.get_code(address)
        stack.node.request("anvil_setCode", [address, "0x" + code.hex()])
        return before

    proxy_code = replaced(DETERMINISTIC_DEPLOYER, chain.get_code(plan.module.address))
    try:
        with pytest.raises(
            DeploymentError, match="bytes of other code than the deterministic deployment proxy"
        ):
            verify_deterministic(chain, plan)
    finally:
        replaced(DETERMINISTIC_DEPLOYER, proxy_code)
    factory_code = replaced(plan.factory.address, chain.get_code(plan.module.address))
    try:
        with pytest.raises(DeploymentError, match=f"the factory at {plan.factory.address} is not as planned"):
            verify_deterministic(chain, plan)
    finally:
        replaced(plan.factory.address, factory_code)
    assert verify_deterministic(chain, plan) == []
