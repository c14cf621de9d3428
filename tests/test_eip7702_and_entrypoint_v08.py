"""EIP-7702 authorizations and EntryPoint v0.8 operations, as data: signing, wire forms, hashing, the delegate's
storage layout; and a v0.8 factory account's session flow on ape's local chain through the in-process bundler.
(Delegation itself needs a Prague node: tests/e2e/test_eip7702.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ape.exceptions import ContractLogicError
from eth_abi import encode as abi_encode
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope import ENTRY_POINT_V07, ENTRY_POINT_V08, Network, Policy, SessionKey, Web3Chain, arg
from keyscope.accounts.delegate import DELEGATE_STORAGE_LOCATION, delegate_validator_slot
from keyscope.artifacts import ENTRY_POINTS, entry_point_artifact
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.calls import function_call
from keyscope.deterministic import create2_address
from keyscope.eip7702 import (
    Authorization,
    authorization_digest,
    delegate_of,
    delegation_code,
    sign_authorization,
)
from keyscope.entrypoint import canonical_entry_point_version, entry_point_version_from_domain
from keyscope.errors import BadInputError, BundlerRejectedError, ConfigurationError, SessionNotYetValidError
from keyscope.hashing import EIP7702_INIT_CODE, is_eip7702_init_code, user_op_hash_v08
from keyscope.hexutil import keccak, to_address, to_bytes
from keyscope.signing import LocalSigner
from keyscope.userop import PackedUserOperation, UserOperation
from support.ape_entry_point import deploy_entry_point

ROOT = Path(__file__).resolve().parent.parent
DELEGATE = "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6"
SIGNER = LocalSigner(bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"))

addresses = st.binary(min_size=20, max_size=20).map(to_address)


# -- authorizations ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(chain_id=st.integers(1, 2**64 - 1), delegate=addresses, nonce=st.integers(0, 2**64 - 1))
def test_an_authorization_is_what_eth_account_signs(chain_id: int, delegate: str, nonce: int) -> None:
    ours = sign_authorization(SIGNER, chain_id, delegate, nonce)
    theirs = Account.sign_authorization(
        {"chainId": chain_id, "address": delegate, "nonce": nonce}, SIGNER.private_key
    )
    assert (ours.r, ours.s, ours.y_parity) == (theirs.r, theirs.s, theirs.y_parity)
    assert ours.digest == bytes(theirs.authorization_hash) == authorization_digest(chain_id, delegate, nonce)
    assert ours.authority() == SIGNER.address
    assert Authorization.model_validate(ours.to_rpc()) == ours  # the eip7702Auth wire form round-trips


def test_keyscope_never_signs_an_authorization_for_every_chain() -> None:
    with pytest.raises(BadInputError, match="chain id 0"):
        sign_authorization(SIGNER, 0, DELEGATE, 0)
    with pytest.raises(BadInputError, match="uint64"):
        authorization_digest(1, DELEGATE, 2**64)


def test_a_malleable_authorization_has_no_authority() -> None:
    auth = sign_authorization(SIGNER, 1, DELEGATE, 0)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    flipped = auth.model_copy(update={"s": n - auth.s, "y_parity": 1 - auth.y_parity})
    with pytest.raises(BadInputError, match="lower half"):
        flipped.authority()
    with pytest.raises(BadInputError, match="y_parity"):
        auth.model_copy(update={"y_parity": 27}).authority()


def test_the_delegation_designator() -> None:
    code = delegation_code(DELEGATE)
    assert code == bytes.fromhex("ef0100") + to_bytes(DELEGATE) and len(code) == 23
    assert delegate_of(code) == DELEGATE
    assert (
        delegate_of(b"") is None
        and delegate_of(code + b"\x00") is None
        and delegate_of(b"\xef\x02" + code[2:]) is None
    )


# -- UserOperations of EIP-7702 accounts --------------------------------------------------------------


def test_an_eip7702_operation_on_the_wire_and_packed() -> None:
    auth = sign_authorization(SIGNER, 31337, DELEGATE, 3)
    op = UserOperation(sender=SIGNER.address, nonce=1, factory="0x7702", eip7702_auth=auth)
    rpc = op.to_rpc()
    assert rpc["factory"] == "0x7702" and rpc["factoryData"] == "0x"
    assert rpc["eip7702Auth"] == {
        "address": DELEGATE,
        "chainId": hex(31337),
        "nonce": "0x3",
        "yParity": hex(auth.y_parity),
        "r": "0x" + auth.r.to_bytes(32, "big").hex(),
        "s": "0x" + auth.s.to_bytes(32, "big").hex(),
    }
    assert UserOperation.from_rpc(rpc) == op and op.is_eip7702
    packed = op.pack()
    assert packed.init_code == EIP7702_INIT_CODE  # what bundlers put on chain for factory "0x7702"
    assert packed.unpack() == op.replace(eip7702_auth=None)
    padded = PackedUserOperation(sender=SIGNER.address, nonce=1, init_code=EIP7702_INIT_CODE.ljust(20, b"\0"))
    assert padded.unpack().factory == "0x7702"
    with pytest.raises(BadInputError, match="factoryData"):
        op.replace(factory_data=b"\x01").pack()


def test_only_the_20_byte_marker_makes_an_eip7702_init_code() -> None:
    assert is_eip7702_init_code(EIP7702_INIT_CODE)
    assert is_eip7702_init_code(EIP7702_INIT_CODE.ljust(20, b"\0") + b"init call")
    assert not is_eip7702_init_code(b"\x77")
    lookalike = bytes.fromhex("7702") + bytes(17) + b"\x01"  # a factory whose address starts with 7702
    assert not is_eip7702_init_code(lookalike)
    op = PackedUserOperation(sender=SIGNER.address, nonce=0, init_code=lookalike + b"data")
    assert op.unpack().factory == to_address(lookalike)
    user_op_hash_v08(op, ENTRY_POINT_V08, 1)  # a factory: no delegate needed
    marked = op.model_copy(update={"init_code": EIP7702_INIT_CODE})
    with pytest.raises(BadInputError, match="eip7702_delegate"):
        user_op_hash_v08(marked, ENTRY_POINT_V08, 1)
    # the delegate replaces the marker in the hash: another delegate, another hash
    assert user_op_hash_v08(marked, ENTRY_POINT_V08, 1, eip7702_delegate=DELEGATE) != user_op_hash_v08(
        marked, ENTRY_POINT_V08, 1, eip7702_delegate=SIGNER.address
    )


# -- EntryPoints --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.7", "0.8"])
def test_each_entry_point_artefact_lands_at_its_canonical_address(version: str) -> None:
    release = ENTRY_POINTS[version]
    assert (
        create2_address(to_bytes(entry_point_artifact(version)["bytecode"]), release.salt) == release.address
    )
    assert canonical_entry_point_version(release.address) == version


def test_the_version_of_an_entry_point_from_its_eip712_domain() -> None:
    types = ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"]
    domain = abi_encode(types, [b"\x0f", "ERC4337", "1", 1, ENTRY_POINT_V08, bytes(32), []])
    assert entry_point_version_from_domain(domain) == "0.8"
    other = abi_encode(types, [b"\x0f", "Other", "1", 1, ENTRY_POINT_V08, bytes(32), []])
    assert entry_point_version_from_domain(other) == "0.7"
    assert entry_point_version_from_domain(b"") == "0.7"
    assert canonical_entry_point_version(DELEGATE) is None
    with pytest.raises(ConfigurationError, match=r"0\.9"):
        entry_point_artifact("0.9")


def test_the_sdk_finds_the_delegates_namespace_where_the_contract_declares_it() -> None:
    source = (ROOT / "contracts" / "KeyscopeDelegate.sol").read_text()
    declared = re.search(r"STORAGE_LOCATION = (0x[0-9a-f]{64});", source)
    assert declared is not None and int(declared.group(1), 16) == DELEGATE_STORAGE_LOCATION
    assert "erc7201:keyscope.storage.KeyscopeDelegate" in source
    # the validator set's positions sit one slot after the namespace's start
    expected = keccak(bytes(12) + to_bytes(DELEGATE) + (DELEGATE_STORAGE_LOCATION + 1).to_bytes(32, "big"))
    assert delegate_validator_slot(DELEGATE) == int.from_bytes(expected, "big")


# -- a v0.8 factory account on ape's chain -------------------------------------------------------------


@pytest.fixture(scope="module")
def entry_point_v08(deployer):
    return deploy_entry_point(deployer, "0.8")


def test_a_factory_account_on_a_v08_entry_point_at_any_address(
    project, chain, deployer, submitter_account, entry_point_v08, module, nft, harness
) -> None:
    factory = project.KeyscopeAccountFactory.deploy(entry_point_v08, deployer, sender=deployer)
    factory.addStake(86400, value=10**18, sender=deployer)
    bundler = InProcessBundler(entry_point_v08.address, submitter_account)
    net = Network.from_urls(
        Web3Chain(chain.provider.web3), bundler, module=module.address, factory=factory.address
    )
    assert net.entry_point == entry_point_v08.address != ENTRY_POINT_V07
    assert (
        net.entry_point_version == "0.8"
    )  # not a canonical address: the EntryPoint's EIP-712 domain says it

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, 10**18)
    key = SessionKey.generate()
    grant = owner.grant(key, [Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])])
    session = net.session(grant, key)
    op = session.build(function_call(nft, "safeMint(address)", owner.account))
    assert net.user_op_hash(op) == bytes(entry_point_v08.getUserOpHash(op.pack().as_tuple()))
    assert session.send(op).wait().success
    assert nft.balanceOf(owner.account) == 1


def test_the_in_process_bundler_says_it_cannot_carry_an_authorization(bundler, entry_point) -> None:
    op = UserOperation(
        sender=SIGNER.address,
        nonce=0,
        factory="0x7702",
        eip7702_auth=sign_authorization(SIGNER, 1, DELEGATE, 0),
    )
    for send in (bundler.estimate_user_operation_gas, bundler.send_user_operation):
        with pytest.raises(BundlerRejectedError, match="type-4 transaction"):
            send(op, entry_point.address)


@pytest.mark.parametrize("version", ["0.7", "0.8"])
def test_a_sessions_window_opens_where_its_entry_point_opens_it(
    version, request, project, chain, deployer, submitter_account, module, nft, harness
) -> None:
    """EntryPoint v0.7 accepts an operation in the second its validation data opens (``validAfter``); v0.8 only
    from the next second. The SDK's local check applies its EntryPoint's rule, judged here against the real
    EntryPoint's ``handleOps`` at that second and the next (the v0.8 one at a non-canonical address)."""
    entry_point = request.getfixturevalue("entry_point" if version == "0.7" else "entry_point_v08")
    factory = project.KeyscopeAccountFactory.deploy(entry_point, deployer, sender=deployer)
    factory.addStake(86400, value=10**18, sender=deployer)
    net = Network.from_urls(
        Web3Chain(chain.provider.web3),
        InProcessBundler(entry_point.address, submitter_account),
        module=module.address,
        factory=factory.address,
    )
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, 10**18)
    key = SessionKey.generate()
    opens = chain.blocks.head.timestamp + 1000
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    grant = owner.grant(key, [policy], valid_after=opens, valid_for=3600)
    mint = function_call(nft, "safeMint(address)", owner.account)
    op = net.session(grant, key, clock=lambda: opens + 1).build(mint)

    at_opening = net.session(grant, key, clock=lambda: opens)
    if version == "0.8":
        with pytest.raises(
            SessionNotYetValidError, match=r"v0\.8 opens the window the second after"
        ) as refused:
            at_opening.build(mint)
        assert "1s after now" in str(refused.value)
    else:
        assert at_opening.build(mint).call_data == op.call_data

    def lands(moment: int) -> bool:
        snapshot = chain.snapshot()
        try:
            chain.pending_timestamp = moment
            entry_point.handleOps([op.pack().as_tuple()], submitter_account.address, sender=submitter_account)
            return nft.balanceOf(owner.account) == 1
        except ContractLogicError as error:
            assert "AA22" in str(error), error
            return False
        finally:
            chain.restore(snapshot)

    assert lands(opens) is (version == "0.7")
    assert lands(opens + 1)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("chain_id", 2**256, "chain id"),
        ("nonce", 2**64, "uint64"),
        ("y_parity", 8, "y_parity"),
        ("r", 2**256, "r"),
        ("s", 2**256, "s"),
    ],
)
def test_an_authorization_out_of_its_fields_ranges_is_refused_when_read(
    field: str, value: int, said: str
) -> None:
    """An authorization read from a bundler's JSON (a UserOperation's ``eip7702Auth``), a wallet's or made by hand
    took any integer: a chain id or an ``r`` past 256 bits, a nonce past 64 bits, a y parity of 8 (what
    ``from_signature`` made of an EIP-155 ``v`` of 35). It was sent as such, or failed later and elsewhere (``to_rpc``
    raised OverflowError for ``r``); it must be refused where it is read, naming the field."""
    fields = sign_authorization(SIGNER, 1, DELEGATE, 0).model_dump() | {field: value}
    with pytest.raises(ValueError, match=said):
        Authorization(**fields)
    with pytest.raises(ValueError, match=said):
        Authorization.model_validate(
            {**sign_authorization(SIGNER, 1, DELEGATE, 0).to_rpc(), **{_rpc(field): hex(value)}}
        )
    signature = bytearray(sign_authorization(SIGNER, 1, DELEGATE, 0).signature)
    signature[64] = 35
    with pytest.raises(BadInputError, match="v"):
        Authorization.from_signature(1, DELEGATE, 0, bytes(signature))


def _rpc(field: str) -> str:
    return {"chain_id": "chainId", "y_parity": "yParity"}.get(field, field)
