"""SDK speed on one core, no network: the signing hot path against viem, the full ``SessionAccount.build`` path,
and the off-chain policy check.

* **Hot path**: for a session UserOperation already built, ``op.pack()``, the EntryPoint v0.7 hash
  (``user_op_hash_v07``) and the session key's signature (``LocalSigner.sign_hash``). viem does the same work
  in ``benchmarks/sdk_viem.mjs``: ``getUserOperationHash`` (v0.7, it packs the operation) and a local account's
  ``sign({hash})``, on the same operations and key. Both sides must produce the same hash and signature bytes
  for every operation; the rounds alternate (Python, viem, Python, viem, ...) in the same process tree, pinned
  to one CPU. Rates are operations per second of each process's CPU time (wall time kept too), as for the full
  path: the machine's other processes take a share of the core that changes from round to round. Each side warms up for the same CPU time (:data:`WARM_CPU_SECONDS`) before every timed loop.
* **Full build**: ``SessionAccount.build(call, nonce=...)`` with a node and a bundler that answer from
  memory at once (no network): ``execute`` encoding, policy check, session status check, fees, gas
  limits, packing, hashing, signing and the final UserOperation object.
* **Policy check**: ``PolicyChecker.check`` of one call against a permission with 2 rules, in CPU time of the
  process (what a check costs; the wall time, which adds whatever the machine's other processes take, is kept too).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, fixed_signer, one_core, ratio

from keyscope import PolicyChecker, SessionAccount
from keyscope.accounts import KeyscopeAccountKind
from keyscope.artifacts import ENTRY_POINT_V07
from keyscope.bundler.types import FeeQuote, GasEstimate
from keyscope.calls import function_call
from keyscope.entrypoint import encode_get_nonce
from keyscope.execution import encode_execute
from keyscope.grant import SessionGrant
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak
from keyscope.module import IS_INITIALIZED, IS_SESSION_ACTIVE
from keyscope.network import Network
from keyscope.policy import Policy, arg
from keyscope.session import Session
from keyscope.userop import UserOperation

CHAIN_ID = 31337
NOW = 1_800_000_000
ACCOUNT = fixed_signer("sdk/account").address
MODULE = fixed_signer("sdk/module").address
NFT = fixed_signer("sdk/nft").address
RECIPIENT = fixed_signer("sdk/recipient").address
OPERATIONS = 200
GET_NONCE = encode_get_nonce(ACCOUNT, 0)[:4]
"""Distinct operations (nonces) both sides hash and sign, round after round."""
SUPPORTS_MODULE = keccak(b"supportsModule(uint256)")[:4]
WARM_CPU_SECONDS = 1.0
"""Each side's warm-up before a timed loop, in CPU time of its process. V8 needs about a second of work before
viem's functions run at their steady speed (300 ms left viem's full path 10-15 % slower, more on a loaded machine,
where a warm-up in wall time does less work); Python's speed does not change after the first calls."""


class StillChain:
    """A node answering from memory at once: what ``SessionAccount.build`` asks, without a network. Every
    lane's next nonce is :attr:`nonce` (set by the caller, so that successive operations differ)."""

    nonce = 0

    def chain_id(self) -> int:
        return CHAIN_ID

    def block_timestamp(self) -> int:
        return NOW

    def get_code(self, address: str) -> bytes:
        return b"\x01"

    def get_nonce(self, entry_point: str, sender: str, key: int = 0) -> int:
        return (key << 64) | self.nonce

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: str | int = "latest") -> bytes:
        if data[:4] == GET_NONCE:  # EntryPoint.getNonce(sender, key)
            return ((int.from_bytes(data[36:68], "big") << 64) | self.nonce).to_bytes(32, "big")
        # isSessionActive, the module's isInitialized (installed on the account) and the account's supportsModule
        # (an ERC-7579 account): true; anything else (the co-signer, none): zero
        return (int(data[:4] in (IS_SESSION_ACTIVE, IS_INITIALIZED, SUPPORTS_MODULE))).to_bytes(32, "big")


class StillBundler:
    """A bundler answering from memory at once (fees and gas figures of a real session mint)."""

    _fees = FeeQuote(max_fee_per_gas=2_000_000_000, max_priority_fee_per_gas=1_000_000_000)
    _gas = GasEstimate(pre_verification_gas=48_000, verification_gas_limit=95_000, call_gas_limit=55_000)

    def fee_quote(self) -> FeeQuote:
        return self._fees

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        return self._gas


def session_fixture() -> tuple[SessionGrant, Any, bytes]:
    """A granted 2-rule session (on-chain grant, so operations carry the 65-byte USE signature), its key and
    the ``execute`` callData of one allowed call."""
    key = fixed_signer("sdk/session-key")
    permission = Policy.call(
        NFT, "safeMint(address to)", rules=[arg("to") == RECIPIENT, arg("to") != "0x" + "00" * 20]
    )
    session = Session(session_key=key.address, salt=1, permissions=(permission,))
    grant = SessionGrant(
        session=session,
        account=ACCOUNT,
        module=MODULE,
        chain_id=CHAIN_ID,
        entry_point=ENTRY_POINT_V07,
        epoch=0,
        session_id=session.session_id(ACCOUNT, 0),
        how="onchain",
    )
    call_data = encode_execute(function_call(NFT, "safeMint(address)", RECIPIENT))
    return grant, key, call_data


def operations(call_data: bytes, count: int) -> list[UserOperation]:
    """``count`` session operations differing by nonce, with typical gas fields."""
    nonce_key = KeyscopeAccountKind().nonce_key(MODULE, 0)
    return [
        UserOperation(
            sender=ACCOUNT,
            nonce=(nonce_key << 64) | i,
            call_data=call_data,
            call_gas_limit=55_000 + i,
            verification_gas_limit=95_000,
            pre_verification_gas=48_000,
            max_fee_per_gas=2_000_000_000,
            max_priority_fee_per_gas=1_000_000_000,
        )
        for i in range(count)
    ]


def _rate(
    work: Callable[[int], object], count: int, seconds: float, warm: float
) -> tuple[float, int, float, float]:
    """Run ``work(i)`` for about ``seconds`` of wall time, after a warm-up of ``warm`` seconds of this process's
    CPU time (the viem scripts warm up the same way, so that a loaded machine shortens neither side's warm-up);
    (calls per second of wall time, calls, wall seconds, CPU seconds of this process)."""
    warm_from = time.process_time()
    i = 0
    while time.process_time() - warm_from < warm:
        work(i % count)
        i += 1
    done = 0
    cpu = time.process_time()
    start = time.perf_counter()
    stop_at = start + seconds
    while time.perf_counter() < stop_at:
        for j in range(100):
            work((done + j) % count)
        done += 100
    elapsed = time.perf_counter() - start
    return done / elapsed, done, elapsed, time.process_time() - cpu


def _viem_round(inputs: Path, seconds: float, warm: float, script: str = "sdk_viem.mjs") -> dict[str, Any]:
    completed = subprocess.run(
        ["node", str(ROOT / "benchmarks" / script), str(inputs), str(seconds), str(warm)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the viem script failed: {completed.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def run(*, quick: bool = False, smoke: bool = False) -> dict[str, Any]:
    """All SDK figures, as a dict for results.json (``smoke``: one short round, to check that it runs)."""
    rounds = 1 if smoke else 2 if quick else 3
    seconds = 0.2 if smoke else 0.6 if quick else 1.2
    warm = 0.05 if smoke else WARM_CPU_SECONDS
    grant, key, call_data = session_fixture()
    ops = operations(call_data, OPERATIONS)

    def hot(i: int) -> tuple[bytes, bytes]:
        digest = user_op_hash_v07(ops[i].pack(), ENTRY_POINT_V07, CHAIN_ID)
        return digest, key.sign_hash(digest)

    ours = [hot(i) for i in range(OPERATIONS)]

    node = StillChain()
    network = Network(chain=node, bundler=StillBundler(), module=MODULE)  # type: ignore[arg-type]
    account = SessionAccount(grant, key, network=network, clock=lambda: NOW)
    mint = function_call(NFT, "safeMint(address)", RECIPIENT)

    def full(i: int) -> UserOperation:
        return account.build(mint, nonce=i)

    built = full(0)
    assert built.signature and len(built.signature) == 65 and built.call_data == call_data

    def full_path(i: int) -> UserOperation:
        """What ``session.execute(NFT, "safeMint(address)", RECIPIENT)`` does before it sends: the call's
        encoding, the state read (nonce, session status) from the node, the policy check, the fees and gas
        limits (warm caches), the hash and the signature."""
        node.nonce = i
        return account.build(function_call(NFT, "safeMint(address)", RECIPIENT))

    full_ops = [full_path(i) for i in range(OPERATIONS)]
    first = full_ops[0]

    checker = PolicyChecker.for_grant(grant)

    def policy(i: int) -> object:
        return checker.check(call_data, now=NOW)

    inputs_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    with inputs_file:
        json.dump(
            {
                "entryPoint": ENTRY_POINT_V07,
                "chainId": CHAIN_ID,
                "privateKey": "0x" + key.private_key.hex(),
                "ops": [op.to_rpc() for op in ops],
            },
            inputs_file,
        )
    inputs = Path(inputs_file.name)
    full_file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
    with full_file:
        json.dump(
            {
                "entryPoint": ENTRY_POINT_V07,
                "chainId": CHAIN_ID,
                "privateKey": "0x" + key.private_key.hex(),
                "sender": ACCOUNT,
                "target": NFT,
                "recipient": RECIPIENT,
                "nonceKey": hex(account.nonce_key()),
                "nonces": list(range(OPERATIONS)),
                "gas": {
                    "callGasLimit": first.call_gas_limit,
                    "verificationGasLimit": first.verification_gas_limit,
                    "preVerificationGas": first.pre_verification_gas,
                    "maxFeePerGas": first.max_fee_per_gas,
                    "maxPriorityFeePerGas": first.max_priority_fee_per_gas,
                },
            },
            full_file,
        )
    full_inputs = Path(full_file.name)
    full_rates: list[float] = []
    viem_full_rates: dict[str, list[float]] = {"viem": [], "viem_account": []}
    full_cpu_rates: list[float] = []
    viem_full_cpu_rates: dict[str, list[float]] = {"viem": [], "viem_account": []}
    full_mismatches = 0
    python_rates: list[float] = []
    viem_rates: list[float] = []
    python_cpu_rates: list[float] = []
    viem_cpu_rates: list[float] = []
    build_rates: list[float] = []
    check_us: list[float] = []
    check_us_wall: list[float] = []
    viem_version = "?"
    mismatches = 0
    try:
        with one_core() as cpu:
            for _ in range(rounds):
                per_second, calls, _, cpu_seconds = _rate(hot, OPERATIONS, seconds, warm)
                python_rates.append(per_second)
                python_cpu_rates.append(calls / cpu_seconds)
                viem = _viem_round(inputs, seconds, warm)
                viem_rates.append(float(viem["opsPerSecond"]))
                viem_cpu_rates.append(float(viem["opsPerCpuSecond"]))
                viem_version = str(viem["viem"])
                for (digest, signature), (their_hash, their_signature) in zip(
                    ours, viem["results"], strict=True
                ):
                    if (
                        "0x" + digest.hex() != their_hash.lower()
                        or "0x" + signature.hex() != their_signature.lower()
                    ):
                        mismatches += 1
                build_rates.append(_rate(full, OPERATIONS, seconds, warm)[0])
                per_second, calls, _, cpu_seconds = _rate(full_path, OPERATIONS, seconds, warm)
                full_rates.append(per_second)
                full_cpu_rates.append(calls / cpu_seconds)
                theirs = _viem_round(full_inputs, seconds, warm, "sdk_viem_full.mjs")
                for name, rates_of in viem_full_rates.items():
                    rates_of.append(float(theirs["variants"][name]["opsPerSecond"]))
                    viem_full_cpu_rates[name].append(float(theirs["variants"][name]["opsPerCpuSecond"]))
                    for op, (their_call_data, their_hash, their_signature) in zip(
                        full_ops, theirs["results"][name], strict=True
                    ):
                        digest = user_op_hash_v07(op.pack(), ENTRY_POINT_V07, CHAIN_ID)
                        if (
                            "0x" + op.call_data.hex() != their_call_data.lower()
                            or "0x" + digest.hex() != their_hash.lower()
                            or "0x" + op.signature.hex() != their_signature.lower()
                        ):
                            full_mismatches += 1
                per_second, calls, _, cpu_seconds = _rate(policy, OPERATIONS, seconds / 2, warm)
                check_us.append(1e6 * cpu_seconds / calls)
                check_us_wall.append(1e6 / per_second)
    finally:
        inputs.unlink(missing_ok=True)
        full_inputs.unlink(missing_ok=True)

    python_median = statistics.median(python_cpu_rates)
    viem_median = statistics.median(viem_cpu_rates)
    full_median = statistics.median(full_cpu_rates)
    viem_full_median = {name: statistics.median(rates_of) for name, rates_of in viem_full_cpu_rates.items()}
    return {
        "pinned_cpu": cpu,
        "warm_up_cpu_seconds": warm,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "operations": OPERATIONS,
        "viem_version": viem_version,
        "same_bytes_as_viem": mismatches == 0,
        "mismatches": mismatches,
        "hot_path_ops_per_cpu_s": {"keyscope": python_cpu_rates, "viem": viem_cpu_rates},
        "hot_path_ops_per_cpu_s_median": {"keyscope": python_median, "viem": viem_median},
        "hot_path_ratio_per_round": [
            ratio(p, v) for p, v in zip(python_cpu_rates, viem_cpu_rates, strict=True)
        ],
        "ratio_over_viem": ratio(python_median, viem_median),
        "hot_path_ops_per_s": {"keyscope": python_rates, "viem": viem_rates},
        "hot_path_ops_per_s_median": {
            "keyscope": statistics.median(python_rates),
            "viem": statistics.median(viem_rates),
        },
        "hot_path_wall_ratio_over_viem": ratio(
            statistics.median(python_rates), statistics.median(viem_rates)
        ),
        "full_path_ops_per_cpu_s": {"keyscope": full_cpu_rates, **viem_full_cpu_rates},
        "full_path_ops_per_cpu_s_median": {"keyscope": full_median, **viem_full_median},
        "full_path_ops_per_s": {"keyscope": full_rates, **viem_full_rates},
        "full_path_ops_per_s_median": {
            "keyscope": statistics.median(full_rates),
            **{name: statistics.median(rates_of) for name, rates_of in viem_full_rates.items()},
        },
        "full_path_same_bytes_as_viem": full_mismatches == 0,
        "full_path_mismatches": full_mismatches,
        "full_path_ratio_per_round": [
            ratio(p, v) for p, v in zip(full_cpu_rates, viem_full_cpu_rates["viem"], strict=True)
        ],
        "full_path_wall_ratio_over_viem": ratio(
            statistics.median(full_rates), statistics.median(viem_full_rates["viem"])
        ),
        "full_path_ratio_over_viem": ratio(full_median, viem_full_median["viem"]),
        "full_path_ratio_over_viem_account": ratio(full_median, viem_full_median["viem_account"]),
        "full_build_ops_per_s": build_rates,
        "full_build_ops_per_s_median": statistics.median(build_rates),
        "policy_check_us": check_us,
        "policy_check_us_median": statistics.median(check_us),
        "policy_check_us_wall": check_us_wall,
        "policy_check_us_wall_median": statistics.median(check_us_wall),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
