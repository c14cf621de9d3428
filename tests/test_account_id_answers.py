"""What ``keyscope.connect(...)``'s owner says of a deployed account whose ``accountId()`` tells no kind.

keyscope finds an account's adapter from its ERC-7579 ``accountId()``. An account whose ``accountId()`` reverted
with data, or answered bytes that are no ABI-encoded string (another return type, junk), was said to "answer no
accountId()", as one without the function: the answer it gave was not shown, and the person looked for a missing
function. The message now shows what it answered, as hex, and still says what to do (an adapter, ``kind=``); an
account of a vendor keyscope has no adapter for gets the generic adapter, which names its ``accountId()``. Real
contracts on a real anvil (a node-only local stack, keyscope deployed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import solcx

from keyscope import connect
from keyscope.accounts import ERC7579AccountKind
from keyscope.errors import ConfigurationError, UnsupportedAccountError
from keyscope.local import LocalStack
from keyscope.rpc import JsonRpcClient
from keyscope.signing import LocalSigner

SOURCE = """
pragma solidity 0.8.28;
contract RevertingId {
    error NotHere(uint256 code);
    function accountId() external pure returns (string memory) { revert NotHere(7); }
    function supportsModule(uint256) external pure returns (bool) { return true; }
}
contract JunkId {
    function accountId() external pure returns (bytes32) { return bytes32(uint256(0xdeadbeef)); }
    function supportsModule(uint256) external pure returns (bool) { return true; }
}
contract JunkIdNotModular {
    function accountId() external pure returns (bytes32) { return bytes32(uint256(0xdeadbeef)); }
}
contract UnknownVendor {
    function accountId() external pure returns (string memory) { return "acme.wallet.v9"; }
    function supportsModule(uint256) external pure returns (bool) { return true; }
}
"""
JUNK = "0x" + "00" * 28 + "deadbeef"
NOT_HERE_7 = "0xfb4f2c30" + "00" * 31 + "07"  # NotHere(7): its selector and its argument


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(bundler=False, accounts=1, log_dir=tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def accounts(stack: LocalStack) -> dict[str, str]:
    """Each contract's runtime code set at an address of its own (anvil_setCode), by name."""
    built = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"a.sol": {"content": SOURCE}},
            "settings": {"outputSelection": {"*": {"*": ["evm.deployedBytecode.object"]}}},
        },
        solc_version="0.8.28",
    )["contracts"]["a.sol"]
    placed = {}
    with JsonRpcClient(stack.rpc_url) as node:
        for number, (name, contract) in enumerate(sorted(built.items()), start=1):
            address = "0x" + f"{number:02x}" * 20
            node.request("anvil_setCode", [address, "0x" + contract["evm"]["deployedBytecode"]["object"]])
            placed[name] = address
    return placed


def _refusal(stack: LocalStack, account: str) -> str:
    with (
        connect(stack.rpc_url, "http://127.0.0.1:9", module=stack.module) as net,  # no bundler is asked
        pytest.raises(UnsupportedAccountError) as refused,
    ):
        net.owner(LocalSigner.generate(), account)
    return str(refused.value)


def test_an_account_id_answered_with_junk_is_shown_as_hex_with_what_to_do(
    stack: LocalStack, accounts: dict[str, str]
) -> None:
    said = _refusal(stack, accounts["JunkId"])
    assert said.startswith(
        f"{accounts['JunkId']} is an ERC-7579 account (supportsModule(1) answers yes) that answers accountId() with "
        f"{JUNK} (32 bytes), which is no ABI-encoded string"
    ), said
    assert "give the generic adapter: connect(..., kind=ERC7579AccountKind(" in said, said
    said = _refusal(stack, accounts["JunkIdNotModular"])
    assert said.startswith(
        f"{accounts['JunkIdNotModular']} is a contract but not an ERC-7579 modular account: it answers accountId() "
        f"with {JUNK} (32 bytes), which is no ABI-encoded string"
    ), said
    assert (
        "and does not answer supportsModule(1) with a yes" in said and "nothing was signed or sent" in said
    ), said


def test_an_account_id_that_reverts_with_data_shows_the_data(
    stack: LocalStack, accounts: dict[str, str]
) -> None:
    said = _refusal(stack, accounts["RevertingId"])
    assert said.startswith(
        f"{accounts['RevertingId']} is an ERC-7579 account (supportsModule(1) answers yes) that answers no "
        f"accountId() (the call reverts with {NOT_HERE_7}), so keyscope cannot tell which adapter it needs"
    ), said
    assert "connect(..., kind=ERC7579AccountKind(" in said, said


def test_an_unknown_vendor_gets_the_generic_adapter_naming_its_account_id(
    stack: LocalStack, accounts: dict[str, str]
) -> None:
    """Documented (docs/accounts.md): an accountId() no adapter is made for gets the generic adapter; what it
    cannot do without the owner's validator says so, naming the accountId()."""
    with connect(stack.rpc_url, "http://127.0.0.1:9", module=stack.module) as net:
        owner = net.owner(LocalSigner.generate(), accounts["UnknownVendor"])
        assert type(owner.kind) is ERC7579AccountKind and owner.kind.account_id == "acme.wallet.v9"
        with pytest.raises(ConfigurationError) as refused:
            owner.kind.nonce_key(None)
    said = str(refused.value)
    assert said.startswith(
        "the owner of an account with accountId() 'acme.wallet.v9' signs through a validator module: give "
        "owner_validator= (its address)"
    ), said
