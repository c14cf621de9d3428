"""An ERC-7579 account that selects a UserOperation's validator by the signature's first 20 bytes (and hands the
validator the rest), driven by an adapter written as docs/accounts.md says.

ERC-7579 leaves validator selection to the account; the generic adapter puts the validator in the nonce key's top
20 bytes, and for an account that reads it from the signature docs/accounts.md says "write its adapter". An
:class:`~keyscope.accounts.AccountKind` can frame the owner's operation signature (``owner_user_op_signature``) and
a validator's ERC-1271 signature (``validator_erc1271_signature``), but had nothing to frame a session's
operation signature: with the owner's side written, the owner installed the module and granted, and every session
operation was sent unframed, the account took its first 20 bytes for a validator address, and the bundler refused
it with "AA24 signature error (signature error: wrong signer, revoked or unknown session, or module not
installed)", none of which was the case. The adapter frames a validator's operation signature
(``validator_user_op_signature(validator, signature)``, as it is by default) and the session runs.
"""

from __future__ import annotations

import pytest

from keyscope import (
    Policy,
    PolicyViolationError,
    SessionKey,
    SessionRevokedError,
    arg,
    connect,
    function_call,
)
from keyscope.chain import RpcChain
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    VALIDATOR_PREFIX_STRIPPED,
    SignaturePrefixKind,
    deploy_owner_validator,
    deploy_variant,
    nft_balance,
    stack_fixture,
)

pytestmark = pytest.mark.e2e

MINT = "safeMint(address)"


def test_an_adapter_frames_a_session_s_operation_signature_for_an_account_selecting_validators_by_signature(
    stack: LocalStack,
) -> None:
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, VALIDATOR_PREFIX_STRIPPED, signer)
    kind = SignaturePrefixKind(owner_validator=owner_validator, chain=RpcChain(stack.rpc_url))
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=kind)
    owner = net.owner(signer, account)
    pending = owner.install_sessions()
    assert pending is not None
    assert pending.wait().success

    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    grant = owner.grant(key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])])
    session = net.session(grant, key)
    session.execute(stack.nft, MINT, recipient).wait()  # ENABLE: the first operation
    session.execute(stack.nft, MINT, recipient).wait()  # USE
    assert nft_balance(stack, recipient) == 2
    with pytest.raises(PolicyViolationError):
        session.execute(stack.nft, MINT, LocalSigner.generate().address)
    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, recipient)


def test_a_worker_records_a_session_enabled_by_a_framed_first_operation(stack: LocalStack, tmp_path) -> None:
    """A :class:`~keyscope.scale.SessionWorker` marks in its store the session its first operation enabled: the
    store alone (``keyscope sessions --store URL``) then says it is active. The worker judged "this operation
    enables" by the signature's first byte, the module's ENABLE mode, which an adapter that frames signatures puts
    elsewhere (here after the validator's 20 bytes): the session stayed "not yet enabled" in the store forever,
    while the chain had it active."""
    import time

    from keyscope.report import StoreMarks, report_from_store
    from keyscope.scale import SessionWorker
    from keyscope.store import OutboxState, open_store

    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, VALIDATOR_PREFIX_STRIPPED, signer)
    kind = SignaturePrefixKind(owner_validator=owner_validator, chain=RpcChain(stack.rpc_url))
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=kind)
    owner = net.owner(signer, account)
    pending = owner.install_sessions()
    assert pending is not None
    assert pending.wait().success
    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    grant = owner.grant(key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])])
    store = open_store(f"sqlite:///{tmp_path / 'sessions.db'}", kek=bytes(range(32)))
    store.put_key(key)
    store.put_grant(grant)
    session_id = "0x" + grant.session_id.hex()
    with SessionWorker(store, net, background=False, poll_interval=0.05) as worker:
        record = worker.send("first", session_id, function_call(stack.nft, MINT, recipient)).wait(90.0)
    assert record.state is OutboxState.INCLUDED and record.success
    assert nft_balance(stack, recipient) == 1
    assert store.is_enabled(session_id)
    marks = StoreMarks(store.is_revoked(session_id), store.is_enabled(session_id))
    assert report_from_store(grant, marks, now=int(time.time())).status == "active"
    store.close()
