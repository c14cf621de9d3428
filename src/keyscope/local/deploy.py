"""Deploy the EntryPoints v0.7 and v0.8 and keyscope's contracts on a development node, over plain JSON-RPC.

Transactions are sent with ``eth_sendTransaction`` from the node's unlocked development accounts (anvil
unlocks them) through :mod:`keyscope.devnode`, so nothing here needs ape or web3. Every deployment is checked:
the receipt's status, the address the contract must land at, and code present there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..artifacts import DETERMINISTIC_DEPLOYER, ENTRY_POINTS, entry_point_artifact
from ..devnode import (
    ETHER,
    add_stake,
    create_address,
    deploy_contract,
    get_code,
    get_deposit_info,
    send_transaction,
)
from ..errors import DeploymentError
from ..hashing import eip712_domain_separator
from ..hexutil import address_word, keccak, to_address, to_bytes, word
from ..rpc import JsonRpcClient

__all__ = [
    "Contracts",
    "deploy_entry_point",
    "deploy_keyscope",
    "entry_point_code_matches",
    "entry_point_immutables",
]


@dataclass(frozen=True)
class Contracts:
    """Where the stack's contracts are: the EntryPoint v0.7 with its staked factory, the EntryPoint v0.8 with
    its own staked factory and keyscope's EIP-7702 delegate, and the session module and the demo NFT, which
    serve both."""

    entry_point: str
    factory: str
    module: str
    nft: str
    entry_point_v08: str
    factory_v08: str
    delegate: str


def _short_string(text: str) -> bytes:
    """OpenZeppelin's ``ShortString`` of ``text`` (at most 31 bytes): the bytes, left-aligned, and the length in
    the last byte."""
    raw = text.encode()
    return raw.ljust(31, b"\0") + bytes((len(raw),))


def entry_point_immutables(version: str, entry_point: str, chain_id: int) -> list[bytes]:
    """The words the EntryPoint ``version`` at ``entry_point`` on ``chain_id`` writes into its runtime code in its
    constructor (the npm artefact's runtime code has zeros there): the ``SenderCreator`` it creates (its first
    ``CREATE``, nonce 1), and from v0.8 on its EIP-712 domain (``{name "ERC4337", version "1"}``: the cached
    separator, chain id and address, the hashed and the short-string name and version)."""
    words = [address_word(create_address(entry_point, 1))]
    if version != "0.7":
        words += [
            eip712_domain_separator("ERC4337", "1", chain_id, entry_point),
            word(chain_id),
            address_word(entry_point),
            keccak(b"ERC4337"),
            keccak(b"1"),
            _short_string("ERC4337"),
            _short_string("1"),
        ]
    return words


def entry_point_code_matches(
    code: bytes, entry_point: str | None = None, *, version: str = "0.7", chain_id: int = 31337
) -> bool:
    """Whether ``code`` is the runtime code of the npm artefact's EntryPoint ``version`` deployed at
    ``entry_point`` (default: its canonical address) on ``chain_id``.

    The artefact's runtime code has zeros where the EntryPoint keeps its immutables
    (:func:`entry_point_immutables`): each of those words found in ``code`` where the artefact has a zero word is
    filled in before comparing.
    """
    release = ENTRY_POINTS[version]
    address = to_address(entry_point or release.address)
    expected = bytearray(to_bytes(entry_point_artifact(version)["deployedBytecode"]))
    if len(code) != len(expected):
        return False
    for immutable in entry_point_immutables(version, address, chain_id):
        start = code.find(immutable)
        while start != -1:
            if expected[start : start + 32] == bytes(32):
                expected[start : start + 32] = immutable
            start = code.find(immutable, start + 1)
    return bytes(expected) == code


# -- deployments --------------------------------------------------------------------------------------


def deploy_entry_point(rpc: JsonRpcClient, sender: str, version: str = "0.7") -> str:
    """Put the EntryPoint ``version`` ("0.7" or "0.8") at its canonical address through the deterministic
    deployer (CREATE2 with the salt of its release), unless it is already there; check its code either way and
    return the address."""
    release = ENTRY_POINTS[version]
    code = get_code(rpc, release.address)
    if not code:
        if not get_code(rpc, DETERMINISTIC_DEPLOYER):
            raise DeploymentError(
                f"the deterministic deployer {DETERMINISTIC_DEPLOYER} is not on this chain, so the "
                f"EntryPoint v{version} cannot land at its canonical address: start anvil without "
                "--disable-default-create2-deployer"
            )
        init_code = to_bytes(entry_point_artifact(version)["bytecode"])
        send_transaction(
            rpc,
            sender,
            to=DETERMINISTIC_DEPLOYER,
            data=release.salt + init_code,
            what=f"EntryPoint v{version} deployment",
        )
        code = get_code(rpc, release.address)
    chain_id = int(rpc.request("eth_chainId"), 16)
    if not entry_point_code_matches(code, release.address, version=version, chain_id=chain_id):
        detail = "no code" if not code else f"{len(code)} bytes of other code"
        raise DeploymentError(
            f"the EntryPoint v{version} did not land at {release.address} ({detail} there): check that "
            f"@account-abstraction/contracts@{release.npm_version} is installed (npm ci) and that nothing else "
            "was deployed there"
        )
    return release.address


def _staked_factory(
    rpc: JsonRpcClient, deployer: str, entry_point: str, stake: int, unstake_delay: int
) -> str:
    factory = deploy_contract(
        rpc, deployer, "KeyscopeAccountFactory", ["address", "address"], [entry_point, deployer]
    )
    add_stake(rpc, deployer, factory, stake=stake, unstake_delay=unstake_delay, what="KeyscopeAccountFactory")
    info = get_deposit_info(rpc, entry_point, factory)
    if not info.staked or info.stake < stake:
        raise DeploymentError(
            f"the factory {factory} is not staked at {entry_point} after addStake: the EntryPoint reports {info}"
        )
    return factory


def deploy_keyscope(
    rpc: JsonRpcClient, deployer: str, *, stake: int = ETHER, unstake_delay: int = 86_400
) -> Contracts:
    """Deploy, all from ``deployer``: the EntryPoints v0.7 and v0.8, for each a ``KeyscopeAccountFactory`` (admin
    ``deployer``) staked with ``stake`` wei, the ``KeyscopeDelegate`` for v0.8 (EIP-7702), the
    ``SessionKeyValidator`` and the ``DemoNFT``."""
    entry_point = deploy_entry_point(rpc, deployer, "0.7")
    factory = _staked_factory(rpc, deployer, entry_point, stake, unstake_delay)
    module = deploy_contract(rpc, deployer, "SessionKeyValidator")
    nft = deploy_contract(rpc, deployer, "DemoNFT")
    entry_point_v08 = deploy_entry_point(rpc, deployer, "0.8")
    factory_v08 = _staked_factory(rpc, deployer, entry_point_v08, stake, unstake_delay)
    delegate = deploy_contract(rpc, deployer, "KeyscopeDelegate", ["address"], [entry_point_v08])
    return Contracts(
        entry_point=entry_point,
        factory=factory,
        module=module,
        nft=nft,
        entry_point_v08=entry_point_v08,
        factory_v08=factory_v08,
        delegate=delegate,
    )
