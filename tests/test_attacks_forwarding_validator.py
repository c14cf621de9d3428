"""Attack 259: a validator that relays ERC-1271 questions makes keyscope's account take its owner's bare signature.

keyscope's account takes its owner's *bare* ECDSA signature of a digest only from one of its validators, for the
session module's check of a grant in ENABLE mode (a digest naming the account, the module and the chain); from every
other caller it asks for an ERC-7739 signature bound to the account (attack 93: Permit2's ``PermitSingle`` names no
owner, so a bare signature of one would be good for all the owner key's accounts). A third-party validator the owner
installs may route ERC-1271 questions to the account's other validators by asking the account (it must: validators
keep their configuration per calling account, ``ForwardingValidator`` in contracts/test). Through it, anyone's
question reached the account from an installed validator: a spender holding the owner key's bare EOA permit put it
behind the router's address, and Permit2 took it for the owner's keyscope account.

Now the account takes the bare form only from the validator it is asking to validate one of its UserOperations,
while it does (a transient slot set around that call): the session module's ENABLE still works, and a relayed
question at any other time gets ERC-7739's answer.
"""

from __future__ import annotations

import pytest
from ape.exceptions import ContractLogicError

from keyscope.execution import Call
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.permit_types import EXPIRY, LIMIT, USDC


def test_a_routing_validator_does_not_make_the_account_take_its_owners_bare_permit(
    harness, module, permits, project, deployer, accounts
):
    """The owner's key gives a spender an EOA permit (a bare signature); the spender tries it for the owner's keyscope
    account as it is (attack 93: refused), then behind the installed router's address: refused too, and the spender
    holds no allowance over the account's tokens. Without the account's check of the validator it is validating
    with: Permit2 takes the relayed signature and the test fails."""
    owner = LocalSigner.generate()
    router = project.ForwardingValidator.deploy(sender=deployer)
    account = harness.create(owner, [(1, module.address, b""), (1, router.address, b"")], salt=7)
    spender = accounts[7]

    permit = ((USDC, LIMIT, EXPIRY, 0), spender.address, EXPIRY)
    bare = owner.sign_hash(bytes(permits.permitSingleDigest(permit)))
    permits.permit(owner.address, permit, bare, sender=spender)  # good for the owner key's own address
    assert permits.allowance(owner.address, USDC, spender.address) == LIMIT

    with pytest.raises(ContractLogicError):
        permits.permit(account, permit, bare, sender=spender)
    with pytest.raises(ContractLogicError):
        permits.permit(account, permit, bytes.fromhex(router.address[2:]) + bare, sender=spender)
    assert permits.allowance(account, USDC, spender.address) == 0


def test_a_grant_signed_bare_is_still_enabled_by_the_session_s_first_operation(
    sessions, project, deployer, session_key, accounts
):
    """The other side: the owner's bare signature of a session grant, checked by the module in ENABLE mode while the
    account asks it to validate the session's first operation, enables the session, with the router installed too
    (the module asking outside an operation's validation is refused: tests/test_owner_signatures.py)."""
    owner = LocalSigner.generate()
    router = project.ForwardingValidator.deploy(sender=deployer)
    account = sessions.account(owner)
    sessions.h.owner_execute(
        account,
        owner,
        Call.of(
            account, 0, project.KeyscopeAccount.at(account).installModule.encode_input(1, router.address, b"")
        ),
    )
    target = accounts[8].address
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target, selector=bytes(4), value_limit=10**15),),
    )
    signature = sessions.owner_signature(account, owner, session)
    used = sessions.outcome(
        sessions.enable_op(account, session_key, session, signature, Call.of(target, 10**15, b""))
    )
    assert used == "ok", used
    epoch = sessions.epoch(account)
    assert sessions.module.isSessionActive(account, session.session_id(account, epoch))
