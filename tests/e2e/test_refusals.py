"""What the SDK says, against the real bundler (Alto) and anvil, for operations the chain or the bundler refuses
and the local checks do not catch by policy: an account that cannot pay (AA21), a target without code, an
account that does not exist and a grant that cannot create it (AA20)."""

from __future__ import annotations

import warnings

import pytest

from keyscope import (
    InsufficientPrefundError,
    Policy,
    SessionError,
    SessionKey,
    TargetWarning,
    TargetWithoutCodeError,
    arg,
    connect,
    function_call,
)
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner

pytestmark = pytest.mark.e2e


def _mint(stack: LocalStack, to: str) -> Policy:
    return Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == to])


def test_an_account_that_cannot_pay_gets_the_numbers(local_stack: LocalStack) -> None:
    net = connect(
        local_stack.rpc_url, local_stack.bundler_url, module=local_stack.module, factory=local_stack.factory
    )
    owner = net.owner(LocalSigner.generate())  # holds nothing
    key = SessionKey.generate()
    grant = owner.grant(key, [_mint(local_stack, owner.account)], valid_for=3600)
    with pytest.raises(InsufficientPrefundError) as info:
        net.session(grant, key).execute(local_stack.nft, "safeMint(address)", owner.account)
    assert (info.value.reason, info.value.balance, info.value.deposit) == ("AA21", 0, 0), info.value
    said = str(info.value)  # Alto refuses at estimation, before the operation has a prefund to name
    assert f"the account {owner.account} holds 0 wei and has 0 wei deposited at the EntryPoint" in said, said
    assert info.value.cost is None and said.endswith("; send it ETH, or use a paymaster"), said
    with pytest.raises(InsufficientPrefundError):
        owner.execute(function_call(local_stack.nft, "safeMint(address)", owner.account))


def test_a_target_without_code_and_an_account_that_cannot_be_created(local_stack: LocalStack) -> None:
    net = connect(
        local_stack.rpc_url, local_stack.bundler_url, module=local_stack.module, factory=local_stack.factory
    )
    owner = net.owner(LocalSigner.generate())
    local_stack.fund(owner.account, 10**18)
    nowhere = LocalSigner.generate().address
    key = SessionKey.generate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetWarning)
        grant = owner.grant(
            key, [_mint(local_stack, owner.account), Policy.call(nowhere, "f()")], valid_for=3600
        )
    session = net.session(grant, key)
    with pytest.raises(TargetWithoutCodeError, match="has no code"):
        session.execute(nowhere, "f()")
    no_factory = net.session(grant.model_copy(update={"factory": None, "factory_data": b""}), key)
    with pytest.raises(SessionError, match=r"\(AA20\)"):
        no_factory.execute(local_stack.nft, "safeMint(address)", owner.account)
    assert session.execute(local_stack.nft, "safeMint(address)", owner.account).wait().success
