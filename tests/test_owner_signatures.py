"""The owner's signatures in the account's name (ERC-1271), on ape's chain: bound to the account by ERC-7739, so
that a signature the owner makes for one account is refused for the owner's other accounts and for the owner's own
address.

The verifier is ``SignedPermits`` (contracts/test): a Permit2-like ``permit(owner, PermitSingle, signature)`` that
checks signatures with OpenZeppelin's SignatureChecker, as applications do. Permit2's ``PermitSingle`` names no
owner: a bare ECDSA signature of its digest by the owner would be as good for every account of that owner.

The two generated tests, which ask an account a few hundred questions, ask them on a fresh anvil of the file's own
(the EntryPoint, the factory and the module are ape's build of their sources there, and the owner's two accounts
are made there as on ape's chain).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope import Web3Chain
from keyscope.accounts import KeyscopeAccountKind, NexusAccountKind
from keyscope.accounts.verify import verify_owner_signature
from keyscope.errors import AccountSetupError, ConfigurationError
from keyscope.hexutil import keccak
from keyscope.owner_signatures import (
    ACCOUNT_DOMAIN_NAME,
    ACCOUNT_DOMAIN_VERSION,
    nested_typed_data,
    owner_message_hash,
    owner_typed_data_hash,
    personal_sign_typed_data,
    sign_message_as_account,
    sign_typed_data_as_account,
)
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData, eip191_hash
from support.anvil_chain import AnvilChain, anvil_chain
from support.anvil_harness import anvil_sessions
from support.permit_types import EXPIRY, LIMIT, PERMIT_SINGLE_TYPES, PERMIT_TYPES, USDC

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
IS_VALID_SIGNATURE = keccak(b"isValidSignature(bytes32,bytes)")[:4]


@pytest.fixture(scope="module")
def two_accounts(harness, module) -> tuple[LocalSigner, str, str]:
    """One owner's two keyscope accounts (salts 0 and 1), the session module installed on each."""
    owner = LocalSigner.generate()
    modules = [(1, module.address, b"")]
    return owner, harness.create(owner, modules, salt=0), harness.create(owner, modules, salt=1)


def permit_typed_data(permits: Any, chain_id: int, spender: str) -> dict[str, Any]:
    return {
        "types": PERMIT_SINGLE_TYPES,
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": chain_id, "verifyingContract": permits.address},
        "message": {
            "details": {"token": USDC, "amount": LIMIT, "expiration": EXPIRY, "nonce": 0},
            "spender": spender,
            "sigDeadline": EXPIRY,
        },
    }


def answer(chain: Any, account: str, digest: bytes, signature: bytes, sender: str | None = None) -> bytes:
    """The account's ``isValidSignature`` answer, asked by ``sender`` (None: the node's default sender)."""
    data = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    return Web3Chain(chain.provider.web3).call(account, data, sender=sender)[:4]


@dataclass(frozen=True)
class AnvilAccounts:
    """One owner's two keyscope accounts (salts 0 and 1, the session module installed on each) on the file's anvil,
    and the node they are asked on."""

    node: AnvilChain
    chain_id: int
    owner: LocalSigner
    first: str
    second: str


@pytest.fixture(scope="module")
def anvil_accounts(project: Any) -> Iterator[AnvilAccounts]:
    with anvil_chain() as chain:
        sessions = anvil_sessions(chain, project)
        owner = LocalSigner.generate()
        modules = [(1, sessions.module.address, b"")]
        first = sessions.h.create(owner, modules, salt=0)
        second = sessions.h.create(owner, modules, salt=1)
        yield AnvilAccounts(chain, chain.chain_id, owner, first, second)


def anvil_answer(anvil: AnvilAccounts, account: str, digest: bytes, signature: bytes) -> bytes:
    """The account's ``isValidSignature`` answer on the file's anvil, asked by the node's default sender (a revert
    raises)."""
    data = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    return bytes.fromhex(anvil.node.call({"to": account, "data": "0x" + data.hex()})[2:])[:4]


def test_an_owners_permit2_signature_for_one_account_is_refused_for_another_of_the_same_owner(
    two_accounts, permits, accounts, chain
):
    """The attack: a spender given a Permit2 permit by one account of an owner presents the same signature for the
    owner's other account, and for the owner's own address. The owner's signature is ERC-7739 TypedDataSign
    bound to the first account: Permit2 takes it for that account only."""
    owner, first, second = two_accounts
    spender = accounts[7]
    permit = ((USDC, LIMIT, EXPIRY, 0), spender.address, EXPIRY)
    data = permit_typed_data(permits, chain.chain_id, spender.address)
    assert TypedData(data).digest == bytes(permits.permitSingleDigest(permit))
    signature = sign_typed_data_as_account(owner, data, account=first, chain_id=chain.chain_id)
    permits.permit(first, permit, signature, sender=spender)
    assert permits.allowance(first, USDC, spender.address) == LIMIT

    for victim in (second, owner.address):
        with pytest.raises(ContractLogicError):
            permits.permit(victim, permit, signature, sender=spender)
        assert permits.allowance(victim, USDC, spender.address) == 0


def test_the_owners_bare_signature_of_a_digest_is_refused_outside_the_validation_it_serves(
    two_accounts, permits, module, accounts, chain
):
    """Without the binding: the owner's bare ECDSA signature of a permit's digest. Permit2, any other caller, and the
    session module itself (an installed validator) asking outside an operation's validation are refused it: the
    account takes it only from the validator it is asking to validate an operation, while it does (what a session's
    ENABLE needs: tests/test_attacks_forwarding_validator.py shows both sides)."""
    owner, first, _ = two_accounts
    spender = accounts[6]
    permit = ((USDC, LIMIT, EXPIRY, 1), spender.address, EXPIRY)
    digest = bytes(permits.permitSingleDigest(permit))
    bare = owner.sign_hash(digest)
    with pytest.raises(ContractLogicError):
        permits.permit(first, permit, bare, sender=spender)
    assert answer(chain, first, digest, bare) != ERC1271_MAGIC
    assert answer(chain, first, digest, bare, sender=accounts[5].address) != ERC1271_MAGIC
    assert answer(chain, first, digest, bare, sender=module.address) != ERC1271_MAGIC
    stranger = LocalSigner.generate().sign_hash(digest)
    assert answer(chain, first, digest, stranger, sender=module.address) != ERC1271_MAGIC


def test_the_owners_message_signature_is_bound_to_the_account(two_accounts, chain):
    """``personal_sign`` (an EIP-4361 sign-in, say): ERC-7739 PersonalSign in the account's domain. Valid for the
    account it was made for, refused for the owner's other account; the bare EIP-191 signature is refused."""
    owner, first, second = two_accounts
    message = b"example.com wants you to sign in with your Ethereum account"
    digest = eip191_hash(message)
    signature = sign_message_as_account(owner, message, account=first, chain_id=chain.chain_id)
    assert answer(chain, first, digest, signature) == ERC1271_MAGIC
    assert answer(chain, second, digest, signature) != ERC1271_MAGIC
    assert answer(chain, first, digest, owner.sign_hash(digest)) != ERC1271_MAGIC
    assert answer(chain, first, keccak(b"another message"), signature) != ERC1271_MAGIC


def test_the_account_answers_erc7739s_detection_request_and_names_its_domain(two_accounts, project, chain):
    _, first, _ = two_accounts
    assert answer(chain, first, bytes.fromhex("7739" * 16), b"") == bytes.fromhex("77390001")
    domain = project.KeyscopeAccount.at(first).eip712Domain()
    assert (domain[1], domain[2], domain[3], domain[4]) == (
        ACCOUNT_DOMAIN_NAME,
        ACCOUNT_DOMAIN_VERSION,
        chain.chain_id,
        first,
    )


def test_the_owner_signs_through_the_sdk_as_the_account_kind_requires(net, two_accounts, permits, chain):
    """``Owner.sign_typed_data`` and ``Owner.sign_message`` on keyscope's account give the bound signatures; an
    account kind whose binding keyscope does not know is refused, not signed for with a bare signature."""
    owner, first, second = two_accounts
    signer = net.owner(owner, first)
    data = permit_typed_data(permits, chain.chain_id, "0x" + "b0" * 20)
    digest = TypedData(data).digest
    assert answer(chain, first, digest, signer.sign_typed_data(data)) == ERC1271_MAGIC
    assert answer(chain, second, digest, signer.sign_typed_data(data)) != ERC1271_MAGIC
    assert answer(chain, first, eip191_hash(b"hello"), signer.sign_message("hello")) == ERC1271_MAGIC

    nexus = NexusAccountKind(owner_validator="0x" + "0e" * 20)
    with pytest.raises(ConfigurationError, match="does not sign typed data in the name of a 'nexus' account"):
        nexus.owner_typed_data_signature(owner, data, account=first, chain_id=chain.chain_id)
    with pytest.raises(ConfigurationError, match="does not sign messages in the name of a 'nexus' account"):
        nexus.owner_message_signature(owner, b"hello", account=first, chain_id=chain.chain_id)


def test_the_sdk_judges_a_grant_by_the_accounts_rule_when_the_module_cannot_be_the_callers_sender(
    harness, project, deployer, chain
):
    """Under ape test (py-evm), an eth_call from a module holding no ETH is refused, so the SDK cannot ask the account
    as the module would. It then applies the account's rule itself: the owner's bare signature of the grant's
    digest, asked about by an installed validator. Another key's signature, or a validator that is not installed,
    is refused as the account would refuse it."""
    unfunded = project.SessionKeyValidator.deploy(sender=deployer)  # no ETH: py-evm refuses it as a caller
    owner = LocalSigner.generate()
    account = harness.create(owner, [(1, unfunded.address, b"")], salt=3)
    web3_chain = Web3Chain(chain.provider.web3)
    digest = keccak(b"a grant's digest")
    kind = KeyscopeAccountKind()
    verify_owner_signature(web3_chain, kind, account, unfunded.address, digest, owner.sign_hash(digest))
    with pytest.raises(AccountSetupError, match="refuses the owner's signature"):
        stranger = LocalSigner.generate().sign_hash(digest)
        verify_owner_signature(web3_chain, kind, account, unfunded.address, digest, stranger)
    not_installed = project.SessionKeyValidator.deploy(sender=deployer)
    with pytest.raises(AccountSetupError, match="refuses the owner's signature"):
        verify_owner_signature(
            web3_chain, kind, account, not_installed.address, digest, owner.sign_hash(digest)
        )


_ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amount=st.integers(0, 2**160 - 1),
    nonce=st.integers(0, 2**48 - 1),
    spender=_ADDRESSES,
    owner_field=_ADDRESSES,
    value=st.integers(0, 2**256 - 1),
    explicit=st.booleans(),
)
def test_the_sdk_hashes_nested_typed_data_as_wallets_and_the_account_do(
    anvil_accounts, amount, nonce, spender, owner_field, value, explicit
):
    """The SDK's TypedDataSign hash equals the EIP-712 digest of the nested typed data a wallet signs, and the
    account accepts the signature: for PermitSingle (its contents descriptor explicit: PermitDetails sorts
    first) and EIP-2612's Permit (implicit)."""
    owner, first, chain_id = anvil_accounts.owner, anvil_accounts.first, anvil_accounts.chain_id
    domain = {"name": "Any", "version": "2", "chainId": chain_id, "verifyingContract": spender}
    if explicit:
        message: dict[str, Any] = {
            "details": {"token": owner_field, "amount": amount, "expiration": EXPIRY, "nonce": nonce},
            "spender": spender,
            "sigDeadline": value,
        }
        data = {
            "types": PERMIT_SINGLE_TYPES,
            "primaryType": "PermitSingle",
            "domain": domain,
            "message": message,
        }
    else:
        message = {
            "owner": owner_field,
            "spender": spender,
            "value": value,
            "nonce": nonce,
            "deadline": amount,
        }
        data = {"types": PERMIT_TYPES, "primaryType": "Permit", "domain": domain, "message": message}
    nested = nested_typed_data(data, account=first, chain_id=chain_id)
    assert TypedData(nested).digest == owner_typed_data_hash(data, account=first, chain_id=chain_id)
    signature = sign_typed_data_as_account(owner, data, account=first, chain_id=chain_id)
    assert anvil_answer(anvil_accounts, first, TypedData(data).digest, signature) == ERC1271_MAGIC
    personal = personal_sign_typed_data(bytes(nonce.to_bytes(6, "big")), account=first, chain_id=chain_id)
    assert TypedData(personal).digest == owner_message_hash(
        nonce.to_bytes(6, "big"), account=first, chain_id=chain_id
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    digest=st.binary(min_size=32, max_size=32),
    body=st.binary(max_size=300),
    descr=st.text(max_size=40),
    claimed=st.integers(0, 2**16 - 1),
)
def test_any_malformed_signature_is_refused_without_a_revert(anvil_accounts, digest, body, descr, claimed):
    """Whatever bytes a caller passes (random, or shaped like a TypedDataSign signature with a contents descriptor
    and a length that may lie), the account answers ``0xffffffff`` and does not revert, from any caller."""
    first = anvil_accounts.first
    shaped = body + digest + digest + descr.encode() + claimed.to_bytes(2, "big")
    for signature in (body, shaped):
        assert anvil_answer(anvil_accounts, first, digest, signature) == bytes.fromhex("ffffffff")
