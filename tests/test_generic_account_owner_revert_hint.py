"""An owner's operation whose call reverts, on an ERC-7579 account the generic adapter drives.

The bundler's simulation of an owner's operation passes validation through the owner's validator, then the call
reverts in its target. The SDK's error said "validation passed, so the session policy accepted it: the call
reverted inside the account or its target": there is no session and no session policy in an owner's operation,
and an owner reading it looks for a session that does not exist (the same wording led this reviewer's batch-only
and executeUserOp accounts astray, ``tests/test_generic_account_batch_only.py``). It should say the call reverted
in the account or its target after the owner's signature was accepted, and keep the revert.
"""

from __future__ import annotations

import pytest

from keyscope import connect, function_call
from keyscope.errors import BundlerRejectedError
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.variant_accounts import deploy_owner_validator, deploy_variant, stack_fixture  # noqa: F401 (stack_fixture: the stack fixture)

pytestmark = pytest.mark.e2e


def test_an_owner_operation_reverting_in_its_target_names_no_session_policy(stack: LocalStack) -> None:
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, 0, signer)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)
    owner = net.owner(signer, account)
    missing_token = function_call(
        stack.nft, "transferFrom(address,address,uint256)", account, signer.address, 10**9
    )
    with pytest.raises(BundlerRejectedError) as refused:
        owner.execute(missing_token)
    said = str(refused.value)
    assert "ERC721NonexistentToken" in said or "0x7e273289" in said, said
    assert "session" not in said, said
