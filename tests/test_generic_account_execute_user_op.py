"""An ERC-7579 account that takes ``execute`` only from itself, the EntryPoint reaching it through
``executeUserOp``, driven by the generic adapter.

ERC-7579 asks an account to guard ``execute`` ("e.g. onlyEntryPointOrSelf" with ERC-4337) and lets it implement
ERC-4337's ``executeUserOp``; an account may run every operation through ``executeUserOp`` (its callData after the
selector, run on itself) and refuse ``execute`` from the EntryPoint. keyscope's session module validates only
``execute`` callData (threat model, attacks 5 and 48), so no session can run on such an account, and the SDK's
owner operations (``execute``) fail in execution. The owner's ``install_sessions()`` was refused at the bundler's
estimate with ``AccountUnauthorized(EntryPoint)``, reported as "validation passed, so the session policy accepted
it: the call reverted inside the account or its target; check the call's arguments and the target": an owner's
operation with no session policy in it, and nothing to fix in its arguments or target. It should be an
``AccountSetupError`` saying that the account refuses ``execute`` from the EntryPoint, so keyscope's sessions
cannot run on it.
"""

from __future__ import annotations

import pytest

from keyscope import connect
from keyscope.errors import AccountSetupError, KeyscopeError
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    EXECUTE_THROUGH_EXECUTE_USER_OP,
    deploy_owner_validator,
    deploy_variant,
    entry_point_nonce,
    stack_fixture,
)

pytestmark = pytest.mark.e2e


def test_an_account_refusing_execute_from_the_entry_point_is_named_as_such_not_as_a_policy_pass(
    stack: LocalStack,
) -> None:
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, EXECUTE_THROUGH_EXECUTE_USER_OP, signer)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)
    owner = net.owner(signer, account)
    key = owner.kind.nonce_key(None)

    with pytest.raises(KeyscopeError) as refused:
        owner.install_sessions()
    said = str(refused.value)
    assert "session policy" not in said, said
    assert isinstance(refused.value, AccountSetupError), said
    assert "execute" in said and "EntryPoint" in said, said
    assert entry_point_nonce(stack, account, key) == 0
    assert not owner.supports_sessions()
