"""A session whose grant was signed through the owner's own adapter, opened by a dapp that connected without it.

docs/accounts.md: "A session of an account driven by a custom adapter needs the adapter too: ``net.session(grant,
key)`` on a network connected with ``kind=`` (the grant records only the adapter's name)". A dapp that connects
without ``kind=`` (as the README's dapp side does) has the kind found out: the deployed account's ``accountId()``
gave the generic adapter, the grant's ``account_kind`` (a name no adapter of keyscope's has) was ignored, and the
session's operations were built the generic adapter's way and refused by the bundler: "AA24 signature error
(signature error: wrong signer, revoked or unknown session, or module not installed)", none of which was the case.
A grant naming an adapter keyscope does not know should be refused before anything is signed or sent, saying to
connect with that adapter (as ``kind_named`` says for an account without code).
"""

from __future__ import annotations

import pytest

from keyscope import Policy, SessionGrant, SessionKey, arg, connect
from keyscope.chain import RpcChain
from keyscope.errors import KeyscopeError, UnsupportedAccountError
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    VALIDATOR_PREFIX_STRIPPED,
    SignaturePrefixKind,
    deploy_owner_validator,
    deploy_variant,
    stack_fixture,
)

pytestmark = pytest.mark.e2e

MINT = "safeMint(address)"


def test_a_grant_naming_an_adapter_the_dapp_did_not_give_is_refused_before_sending(stack: LocalStack) -> None:
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, VALIDATOR_PREFIX_STRIPPED, signer)
    kind = SignaturePrefixKind(owner_validator=owner_validator, chain=RpcChain(stack.rpc_url))
    owners = connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=kind)
    owner = owners.owner(signer, account)
    pending = owner.install_sessions()
    assert pending is not None
    pending.wait()
    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    grant = owner.grant(key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])])
    assert grant.account_kind == "signature-prefix"

    dapp = connect(stack.rpc_url, stack.bundler_url, module=stack.module)  # no kind=: found out
    with pytest.raises(KeyscopeError) as refused:
        dapp.session(SessionGrant.from_json(grant.to_json()), key).execute(stack.nft, MINT, recipient)
    said = str(refused.value)
    assert isinstance(refused.value, UnsupportedAccountError), said
    assert "signature-prefix" in said and "kind=" in said, said
