"""The module's two contracts: each deployable, one storage layout, and the grant side only through the module.

* Every contract keyscope deploys fits EIP-170 (24,576 bytes of runtime code) and EIP-3860 (49,152 bytes of
  creation code): the module's creation code carries the signature verifier's and the grant side's.
* ``SessionKeyValidator`` and ``SessionGrants``, which the module runs by DELEGATECALL in its own storage, have the
  same storage layout, read from the compiler (a variable declared anywhere else would move a slot and fail here),
  whose slots are those docs/session-module.md gives.
* ``SessionGrants`` called directly refuses every entry point.
* ``KeyscopeAccount`` reads OpenZeppelin's private validator set at the slot the compiler gives it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from keyscope import Policy, SessionKey
from keyscope.session import SESSION_ABI_TYPE, Session

ROOT = Path(__file__).resolve().parent.parent
EIP170_RUNTIME = 24_576
EIP3860_INITCODE = 49_152
DEPLOYED = (
    "SessionKeyValidator",
    "KeyscopeAccount",
    "KeyscopeAccountFactory",
    "KeyscopeDelegate",
    "SponsorPaymaster",
)


@pytest.mark.parametrize("name", DEPLOYED)
def test_every_deployed_contract_fits_the_code_size_limits(project: Any, name: str) -> None:
    contract_type = getattr(project, name).contract_type
    runtime = bytes(contract_type.runtime_bytecode.to_bytes())
    creation = bytes(contract_type.deployment_bytecode.to_bytes())
    assert 0 < len(runtime) <= EIP170_RUNTIME, f"{name}: {len(runtime)} bytes of runtime code"
    assert 0 < len(creation) <= EIP3860_INITCODE, f"{name}: {len(creation)} bytes of creation code"


def test_the_module_s_helpers_fit_the_code_size_limit(project: Any) -> None:
    for name in ("SessionGrants", "SessionSignatureVerifier"):
        runtime = bytes(getattr(project, name).contract_type.runtime_bytecode.to_bytes())
        assert 0 < len(runtime) <= EIP170_RUNTIME, f"{name}: {len(runtime)} bytes of runtime code"


def _storage_layouts() -> dict[str, list[tuple[str, int, int, str]]]:
    solc = Path(os.environ["SOLCX_BINARY_PATH"]) / "solc-v0.8.28"
    names = {
        "SessionKeyValidator": "contracts/SessionKeyValidator.sol",
        "SessionGrants": "contracts/SessionGrants.sol",
        "KeyscopeAccount": "contracts/KeyscopeAccount.sol",
    }
    request = {
        "language": "Solidity",
        "sources": {path: {"urls": [path]} for path in names.values()},
        "settings": {
            "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
            "evmVersion": "cancun",
            "outputSelection": {path: {name: ["storageLayout"]} for name, path in names.items()},
        },
    }
    answer = subprocess.run(
        [str(solc), "--standard-json", "--base-path", ".", "--allow-paths", "."],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    output = json.loads(answer.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    assert not errors, errors
    return {
        name: [
            (item["label"], int(item["slot"]), item["offset"], item["type"])
            for item in output["contracts"][path][name]["storageLayout"]["storage"]
        ]
        for name, path in names.items()
    }


def test_the_module_and_its_grant_side_share_one_storage_layout() -> None:
    layouts = _storage_layouts()
    module, grants = layouts["SessionKeyValidator"], layouts["SessionGrants"]
    assert module == grants
    labels = [label for label, *_ in module]
    # every mapping of the module's state is there, the EIP-712 fallback strings (never written) first
    assert labels[:2] == ["_nameFallback", "_versionFallback"]
    assert {
        "_accounts",
        "_permissions",
        "_sessions",
        "_liveSessions",
        "_limitRecords",
        "_coSigners",
        "_signing",
    } <= set(labels)


def test_the_documented_base_slots_are_the_compilers() -> None:
    """docs/session-module.md gives each variable's base slot, for readers of the module's storage (indexers,
    clients in other languages): the table holds every mapping the compiler lays out, at the slot it gives it, and
    slots 0 and 1 are OpenZeppelin EIP712's fallback strings."""
    section = (
        (ROOT / "docs/session-module.md").read_text().split("## Storage layout", 1)[1].split("\n## ", 1)[0]
    )
    documented = {
        name: int(base) for name, base in re.findall(r"^\| `(_\w+)\[[^|]*\| (\d+) \|", section, re.M)
    }
    compiled = {label: slot for label, slot, _, _ in _storage_layouts()["SessionKeyValidator"]}
    assert {"_nameFallback": 0, "_versionFallback": 1} | documented == compiled


def test_the_account_reads_openzeppelin_s_validator_set_where_the_compiler_puts_it() -> None:
    """KeyscopeAccount asks its validators before installing a module (attack 52) and reads their list from the
    storage of OpenZeppelin's AccountERC7579, whose set is private: the slot it reads (VALIDATORS_SLOT) must be the
    one the compiler gives `_validators`, an EnumerableSet.AddressSet (its values array first)."""
    layout = {
        label: (slot, offset, kind) for label, slot, offset, kind in _storage_layouts()["KeyscopeAccount"]
    }
    slot, offset, kind = layout["_validators"]
    assert (offset, kind.startswith("t_struct(AddressSet)")) == (0, True), layout
    source = (ROOT / "contracts" / "KeyscopeAccount.sol").read_text()
    assert f"uint256 private constant VALIDATORS_SLOT = {slot};" in source, slot


def _grants_address(module: Any) -> str:
    # the module's constructor creates the signature verifier (its nonce 1), then the grant side (nonce 2)
    # CREATE's address: keccak256(rlp([creator, nonce]))[12:]; for a nonce below 128: 0xd6 0x94 creator nonce
    creator = bytes.fromhex(module.address[2:])
    return to_checksum_address(keccak(b"\xd6\x94" + creator + bytes([2]))[12:])


def test_the_grant_side_is_the_module_s(module: Any, project: Any, chain: Any) -> None:
    grants = _grants_address(module)
    code = bytes(chain.provider.get_code(grants))
    compiled = bytes(project.SessionGrants.contract_type.runtime_bytecode.to_bytes())
    assert len(code) == len(compiled) > 0
    # the compiled code leaves its immutables (the verifier, its own address) zero: every other byte is the same
    assert all(ours == theirs for ours, theirs in zip(compiled, code, strict=True) if ours != 0)


@pytest.mark.parametrize(
    "call",
    [
        "revokeSession(bytes32)",
        "invalidateAllSessions()",
        "onUninstall(bytes)",
        "onInstall(bytes)",
        "rotateCoSigner(bytes32,address)",
    ],
)
def test_the_grant_side_called_directly_refuses(module: Any, chain: Any, deployer: Any, call: str) -> None:
    grants = _grants_address(module)
    selector = keccak(text=call)[:4]
    arguments = {
        "revokeSession(bytes32)": b"\x11" * 32,
        "invalidateAllSessions()": b"",
        "onUninstall(bytes)": (32).to_bytes(32, "big") + (0).to_bytes(32, "big"),
        "onInstall(bytes)": (32).to_bytes(32, "big") + (0).to_bytes(32, "big"),
        "rotateCoSigner(bytes32,address)": b"\x11" * 32 + b"\x00" * 12 + b"\x22" * 20,
    }[call]
    _assert_refused_directly(chain, grants, deployer, selector + arguments)


def test_the_grant_side_called_directly_refuses_an_enable(module: Any, chain: Any, deployer: Any) -> None:
    session = Session(
        session_key=SessionKey.generate().address,
        permissions=(Policy.transfer("0x" + "55" * 20, 1),),
    )
    data = keccak(text=f"enableSession({SESSION_ABI_TYPE})")[:4] + abi_encode(
        [SESSION_ABI_TYPE], [session.as_abi()]
    )
    _assert_refused_directly(chain, _grants_address(module), deployer, data)


def _assert_refused_directly(chain: Any, grants: str, deployer: Any, data: bytes) -> None:
    """A transaction straight to the grant side reverts with OnlyThroughModule() and writes nothing."""
    web3 = chain.provider.web3
    with pytest.raises((ContractLogicError, TransactionFailed)) as refused:
        web3.eth.call({"to": grants, "from": deployer.address, "data": "0x" + data.hex()})
    selector = keccak(text="OnlyThroughModule()")[:4]
    error = refused.value
    if isinstance(error, ContractLogicError):
        assert error.data == "0x" + selector.hex()
    else:  # py-evm names the revert data as a Python bytes literal
        assert str(error.args[0]) == f"execution reverted: {selector!r}"


def test_the_sizes_the_architecture_states_are_the_compiled_ones(project: Any) -> None:
    """docs/architecture.md gives the module's, the grant side's and the verifier's runtime sizes and the module's
    creation size, to show the margin left under EIP-170 and EIP-3860: a contract change that moves one must
    move the figure with it."""
    text = " ".join((ROOT / "docs" / "architecture.md").read_text().split())
    found = re.search(
        r"module ([\d,]+), grants ([\d,]+), verifier ([\d,]+) bytes of runtime code; the module's creation code, "
        r"which carries the other two, ([\d,]+) of",
        text,
    )
    assert found, "docs/architecture.md no longer states the module's sizes in the form this test reads"
    stated = [int(figure.replace(",", "")) for figure in found.groups()]

    def size(name: str, code: str) -> int:
        return len(bytes(getattr(getattr(project, name).contract_type, code).to_bytes()))

    compiled = [
        size("SessionKeyValidator", "runtime_bytecode"),
        size("SessionGrants", "runtime_bytecode"),
        size("SessionSignatureVerifier", "runtime_bytecode"),
        size("SessionKeyValidator", "deployment_bytecode"),
    ]
    assert stated == compiled, f"docs/architecture.md states {stated}, the compiled code is {compiled}"
