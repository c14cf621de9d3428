"""A session on an ERC-7579 account whose validator selection the generic adapter does not know, the session
module installed by the owner's own wallet.

The owner's first operation through the generic adapter is asked of the account's own ``validateUserOp`` first
(``refuse_user_op_validation``), so an account selecting its validator otherwise (here by the signature's first
20 bytes) is named before anything is sent. A session's operations are not: with the module installed by the
owner's wallet and an off-chain grant (an ERC-1271 signature, which the account frames the standard way, so the
grant is taken), the session's first operation went to the bundler and came back "AA24 signature error (signature
error: wrong signer, revoked or unknown session, or module not installed)": the signer is right, the session is
granted and the module installed. The session's operation should be asked of the account as the owner's is, and
refused with an ``AccountSetupError`` naming the nonce key and the adapter.
"""

from __future__ import annotations

import pytest

from keyscope import Policy, SessionKey, arg, connect
from keyscope.accounts import ERC7579AccountKind
from keyscope.chain import RpcChain
from keyscope.errors import AccountPremiseWarning, AccountSetupError, KeyscopeError
from keyscope.hexutil import to_bytes
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    VALIDATOR_PREFIX_STRIPPED,
    deploy_owner_validator,
    deploy_variant,
    stack_fixture,
)

pytestmark = pytest.mark.e2e

MINT = "safeMint(address)"


class OwnersWallet(ERC7579AccountKind):
    """What the owner's own wallet does on this account: the validator named by the signature's first 20 bytes."""

    name = "owners-wallet"

    def nonce_key(self, validator: str | None, lane: int = 0) -> int:
        return lane

    def owner_user_op_signature(self, signature: bytes) -> bytes:
        return to_bytes(self.owner_validator, length=20) + signature


def test_a_session_on_an_account_selecting_validators_otherwise_is_named_before_sending(
    stack: LocalStack,
) -> None:
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, VALIDATOR_PREFIX_STRIPPED, signer)
    wallet = OwnersWallet(owner_validator=owner_validator, chain=RpcChain(stack.rpc_url))
    pending = connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=wallet)
    # the account cannot be asked whether it hands on its validators' answers (attack 417), and the install says so
    with pytest.warns(AccountPremiseWarning, match="did not take the validator's success"):
        installed = pending.owner(signer, account).install_sessions()
    assert installed is not None
    installed.wait()

    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)
    owner = net.owner(signer, account)
    assert type(owner.kind) is ERC7579AccountKind
    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    # the account cannot be asked about its premises either, and the grant says so (attack 395)
    with pytest.warns(AccountPremiseWarning, match="did not take the validator's success"):
        grant = owner.grant(
            key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])]
        )

    session = connect(stack.rpc_url, stack.bundler_url, module=stack.module).session(grant, key)
    with pytest.raises(KeyscopeError) as refused:
        session.execute(stack.nft, MINT, recipient)
    said = str(refused.value)
    assert isinstance(refused.value, AccountSetupError), said
    assert "nonce key" in said, said
