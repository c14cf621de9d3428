"""An ERC-7579 account that runs batches only, driven by the generic adapter.

ERC-7579 lets an account choose the execution modes it runs and say so with ``supportsExecutionMode``; an account
may run batches only (one call being a batch of one). keyscope's SDK sends one call in single mode, always: on such
an account the owner's ``install_sessions()`` failed at the bundler's estimate with the account's
``ModeUnsupported`` revert, reported as "validation passed, so the session policy accepted it: the call reverted
inside the account or its target" (an owner's operation, no session policy in it), and a session's single call the
same way. The account says which mode it runs: a call it will not take single is sent as a batch of one, which the
session module judges as the call itself.
"""

from __future__ import annotations

import pytest

from keyscope import Policy, PolicyViolationError, SessionKey, SessionRevokedError, arg, connect
from keyscope.accounts import ERC7579AccountKind
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    BATCH_ONLY,
    deploy_owner_validator,
    deploy_variant,
    nft_balance,
    stack_fixture,
)

pytestmark = pytest.mark.e2e

MINT = "safeMint(address)"


def test_a_batch_only_account_installs_grants_runs_a_session_call_and_revokes(stack: LocalStack) -> None:
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, BATCH_ONLY, signer)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)
    owner = net.owner(signer, account)
    assert type(owner.kind) is ERC7579AccountKind

    pending = owner.install_sessions()  # one call: the account takes it as a batch of one
    assert pending is not None
    assert pending.wait().success
    assert owner.supports_sessions()

    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    grant = owner.grant(key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])])
    session = net.session(grant, key)
    session.execute(stack.nft, MINT, recipient).wait()
    assert nft_balance(stack, recipient) == 1
    with pytest.raises(PolicyViolationError):
        session.execute(stack.nft, MINT, LocalSigner.generate().address)

    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, recipient)
    owner.uninstall_sessions().wait()
    assert not owner.supports_sessions()
    assert nft_balance(stack, recipient) == 1
