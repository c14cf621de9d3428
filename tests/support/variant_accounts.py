"""``contracts/test/VariantERC7579Account.sol`` on a :class:`~keyscope.local.LocalStack`: OpenZeppelin's
``AccountERC7579`` with spec-legal choices no keyscope adapter is made for (its constants below), for the tests of
the generic ERC-7579 adapter (``tests/test_generic_account_*.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_abi import encode as abi_encode

from keyscope.accounts import ERC7579AccountKind
from keyscope.chain import RpcChain
from keyscope.grant import SessionGrant
from keyscope.hexutil import keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.owner import GrantRequest, Owner
from keyscope.session import Session
from keyscope.signing import LocalSigner

from .accounts import build_bytecode, deploy_code, owner_validator_bytecode

__all__ = [
    "BATCH_ONLY",
    "EXECUTE_THROUGH_EXECUTE_USER_OP",
    "VALIDATOR_PREFIX_STRIPPED",
    "SignaturePrefixKind",
    "deploy_owner_validator",
    "deploy_variant",
    "entry_point_nonce",
    "grant_signed_without_the_sdk",
    "nft_balance",
    "stack_fixture",
]

ETHER = 10**18

BATCH_ONLY = 1
"""The account runs batches only: ``supportsExecutionMode`` says no to single calls, ``execute`` reverts on them."""
EXECUTE_THROUGH_EXECUTE_USER_OP = 2
"""Only the account calls its ``execute``; the EntryPoint reaches it through ``executeUserOp``."""
VALIDATOR_PREFIX_STRIPPED = 4
"""The signature's first 20 bytes name the validator, which is handed the operation with the rest."""


def deploy_owner_validator(stack: LocalStack) -> str:
    return deploy_code(stack.node, stack.deployer.address, owner_validator_bytecode(), "OwnerECDSAValidator")


def deploy_variant(stack: LocalStack, owner_validator: str, variants: int, signer: LocalSigner) -> str:
    """A funded ``VariantERC7579Account`` with ``variants``, owned by ``signer`` through ``owner_validator``."""
    code = build_bytecode("VariantERC7579Account") + abi_encode(
        ["address", "address", "bytes", "uint256"],
        [stack.entry_point, owner_validator, to_bytes(signer.address, length=20), variants],
    )
    account = deploy_code(stack.node, stack.deployer.address, code, "VariantERC7579Account")
    stack.fund(account, ETHER)
    return account


def entry_point_nonce(stack: LocalStack, account: str, key: int) -> int:
    """How many operations of ``account`` the EntryPoint ran on the nonce ``key``."""
    return RpcChain(stack.rpc_url).get_nonce(stack.entry_point, account, key) & (2**64 - 1)


class SignaturePrefixKind(ERC7579AccountKind):
    """An adapter for the variant that takes the validator from the signature's first 20 bytes
    (:data:`VALIDATOR_PREFIX_STRIPPED`): the nonce key is a lane only."""

    name = "signature-prefix"
    account_id_prefix = "keyscope-tests.variant-erc7579."

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return lane

    def owner_user_op_signature(self, signature: bytes) -> bytes:
        return to_bytes(self.owner_validator, length=20) + signature

    def validator_user_op_signature(self, validator: str, signature: bytes) -> bytes:
        return to_bytes(validator, length=20) + signature


@pytest.fixture(name="stack", scope="module")
def stack_fixture(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The local stack (anvil and Alto) for the module's tests: the test process's ``local_stack``, shared with the
    other files that use it (each test deploys its own accounts and validators there, and leaves the chain's clock,
    the bundler and the EntryPoint as it found them), instead of a stack started for each file."""
    yield local_stack


def nft_balance(stack: LocalStack, holder: str) -> int:
    """How many of the stack's demo NFTs ``holder`` has."""
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [holder])
    answer = stack.node.request("eth_call", [{"to": stack.nft, "data": "0x" + data.hex()}, "latest"])
    return int.from_bytes(to_bytes(answer), "big")


def grant_signed_without_the_sdk(owner: Owner, session: Session) -> SessionGrant:
    """``owner``'s off-chain grant of ``session`` as a wallet signs it without keyscope's SDK: the module's digest for
    the account, framed for its ERC-1271 as the adapter frames it, none of the SDK's grant-time checks run (for the
    tests of what the session's own checks, or the chain, do with such a grant)."""
    net = owner.network
    epoch = owner.epoch()
    request = GrantRequest(
        session=session,
        account=owner.account,
        module=net.module,
        chain_id=net.chain_id,
        entry_point=net.entry_point,
        epoch=epoch,
        session_id=session.session_id(owner.account, epoch),
        how="offchain",
        account_kind=owner.kind.name,
        owner=owner.signer.address,
    )
    kind = owner.kind
    digest = kind.erc1271_digest(owner.account, net.chain_id, request.digest)
    return request.complete(kind.wrap_erc1271_signature(owner.signer.sign_hash(digest)), check=False)
