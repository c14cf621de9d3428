"""Premises the docs gained in the last two rounds, pinned where no test held them as worded.

The README says that ``owner.invalidate_all()`` and uninstalling the module "move the account to a new epoch drawn
from the block that runs them": the module draws that epoch only for ``invalidateAllSessions()``, the call without an
argument (``invalidateAllSessions(uint32)`` moves the account to the caller's epoch, which a caller can foresee). So
every path of the SDK that ends every session for good must send the call without an argument, the whole calldata
four bytes: the owner's invalidation, the owner's uninstall (whose invalidation comes before the uninstall, in one
operation) and the EOA's own-transaction invalidation. Pinned without a chain, on the calls the SDK builds.

The comment on ENABLE's retry (the module's ``enableSigned``) says that a payload of a session an invalidation cleared,
at an epoch the account came back to, is taken for a retry: it enables nothing (no owner signature is asked, the id
stays dead) and the operation is judged by what the session's key holds now, as any operation of that key is. The
stateful model of the enable paths draws that case now and then; pinned here on ape's chain as worded: refused while
the key holds nothing, valid while a live session granted since gives the key the call, refused again once that one
is revoked, and the cleared session never enabled nor said active.

Threat-model row 334 says the module asks a target ``isModuleType(t)`` with 36 bytes of calldata "once ``moduleOf``
asks the target, and so does ``isFallbackHandler`` for an account without code"; its test names a validator only, which
``moduleOf`` finds. Pinned here for the fallback handler's question, on the file's own anvil: a handler whose
``isModuleType`` takes its canonical 36 bytes only (it answers type 3 alone) is refused at install as the fallback
handler of a permission with a selector, and a plain transfer to it (selector zero, which no handler routes) is
enabled.

docs/browser.md says what ``keyscope dashboard`` says when Ctrl-C stops it: that nothing was lost, the revocations it
saw included marked in the store it read (none written without one), a revocation prepared but not signed not sent,
and one signed whose result was not shown perhaps still included.

The module's comment on ``_unpredictableEpoch`` said the drawn epoch is one "no one could know before the block that
runs it". Its terms are the previous block's hash, PREVRANDAO, the account and its epoch: all fixed once the previous
block exists (PREVRANDAO is the beacon chain's mix before the block, EIP-4399; a constant on some chains), so anyone
computes the epoch an invalidation will draw if it lands in the next block. Pinned here on ape's chain (PREVRANDAO
reads 0 inside its EVM): the epoch is computed from the head block before the invalidation is sent.

docs/session-module.md said the epoch "moves on every uninstall and invalidateAllSessions, so no signature made for
an earlier epoch works after it". The module binds the epoch a grant names, and ``invalidateAllSessions(uint32)``
moves an account to any epoch, one it was at included: an owner's grant for an epoch, never used, works again once the
account is moved back there. Pinned here: refused after the move away, enabled (its call run) after the move back.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import ape
import pytest
from ape.contracts import ContractContainer
from eth_abi import encode as abi_encode
from eth_utils import keccak

from keyscope.cli.browser import _dashboard_stopped
from keyscope.eoa import EOAOwner
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address
from keyscope.module import unpredictable_epoch
from keyscope.owner import Owner
from keyscope.policy import Policy
from keyscope.session import Permission, Session, encode_enable_signature
from keyscope.signing import LocalSigner
from support.anvil_chain import anvil_chain
from support.install_data import install_verdict
from support.solidity import compile_contract_type
from support.userops import plain_op

MODULE = "0x" + "11" * 20
ACCOUNT = "0x" + "22" * 20
UNINSTALL = b"\xde\xad\xbe\xef"
DRAWN_BY_THE_MODULE = keccak(b"invalidateAllSessions()")[:4]
DIGEST = b"\x24" * 32
NO_OWNER_SIGNATURE = bytes(65)


def _owner_sending_to(sent: list[Any]) -> Any:
    """A stand-in for an owner whose operations are recorded in ``sent`` instead of sent, on a deployed-or-not
    account that runs batches."""
    return SimpleNamespace(
        network=SimpleNamespace(module=MODULE),
        account=ACCOUNT,
        kind=SimpleNamespace(uninstall_validator_call=lambda account, module: Call(account, 0, UNINSTALL)),
        is_deployed=lambda: False,
        execute=lambda calls: sent.append(calls),
    )


def _as_calls(sent: Any) -> list[Call]:
    """The calls of one operation, whether one call or a batch was given."""
    return list(sent) if isinstance(sent, list) else [sent]


def test_the_owner_s_invalidation_leaves_the_epoch_to_the_block() -> None:
    """``Owner.invalidate_all`` sends ``invalidateAllSessions()`` to the module, four bytes, no epoch of its own."""
    sent: list[Any] = []
    Owner.invalidate_all(cast(Owner, _owner_sending_to(sent)))
    assert len(sent) == 1
    (call,) = _as_calls(sent[0])
    assert call.target == MODULE and call.value == 0
    assert bytes(call.data) == DRAWN_BY_THE_MODULE


def test_the_owner_s_uninstall_invalidates_with_the_epoch_left_to_the_block_before_uninstalling() -> None:
    """``Owner.uninstall_sessions`` sends one operation: ``invalidateAllSessions()`` without an argument, then the
    uninstall."""
    sent: list[Any] = []
    Owner.uninstall_sessions(cast(Owner, _owner_sending_to(sent)))
    assert len(sent) == 1
    invalidate, uninstall = _as_calls(sent[0])
    assert invalidate.target == MODULE and bytes(invalidate.data) == DRAWN_BY_THE_MODULE
    assert uninstall.target == ACCOUNT and bytes(uninstall.data) == UNINSTALL


def test_the_eoa_s_own_invalidation_leaves_the_epoch_to_the_block() -> None:
    """``EOAOwner.invalidate_all_directly`` sends the EOA's transaction of ``invalidateAllSessions()`` to the
    module."""
    sent: list[tuple[str, bytes]] = []
    eoa = SimpleNamespace(
        network=SimpleNamespace(module=MODULE),
        send_transaction=lambda to, data: sent.append((to, bytes(data))),
    )
    EOAOwner.invalidate_all_directly(cast(EOAOwner, eoa))
    assert sent == [(MODULE, DRAWN_BY_THE_MODULE)]


def test_an_unused_grant_of_an_epoch_left_works_again_once_the_account_is_moved_back_to_it(
    sessions: Any, module: Any, nft: Any, owner: LocalSigner
) -> None:
    """The owner signs a grant at the account's epoch E and never uses it; ``invalidateAllSessions()`` moves the
    account away (the grant refused, ``InvalidOwnerSignature``); ``invalidateAllSessions(E)`` moves it back, and the
    key's first ENABLE operation enables the grant and mints."""
    from keyscope.module import invalidate_all_sessions_data

    key = LocalSigner.generate()
    account = sessions.account(owner)
    epoch = int(module.epochOf(account))
    session = Session(
        session_key=key.address, permissions=(Policy.call(nft.address, "safeMint(address to)"),)
    )
    signature = sessions.owner_signature(account, owner, session, epoch=epoch)
    mint = Call.of(nft.address, 0, nft.safeMint.encode_input(account))

    sessions.h.owner_execute(account, owner, Call.of(module.address, 0, DRAWN_BY_THE_MODULE))
    assert int(module.epochOf(account)) != epoch
    refused = sessions.h.rejected(sessions.enable_op(account, key, session, signature, mint))
    assert refused.reason == "AA23" and "InvalidOwnerSignature" in str(refused), refused

    sessions.h.owner_execute(account, owner, Call.of(module.address, 0, invalidate_all_sessions_data(epoch)))
    assert int(module.epochOf(account)) == epoch
    before = nft.balanceOf(account)
    sessions.run(sessions.enable_op(account, key, session, signature, mint))
    assert module.isSessionActive(account, session.session_id(account, epoch))
    assert nft.balanceOf(account) == before + 1


def _mint_session(nft: Any, key: LocalSigner, salt: int = 0) -> Session:
    """A session of ``key`` that may mint the NFT to anyone."""
    return Session(
        session_key=key.address, salt=salt, permissions=(Policy.call(nft.address, "safeMint(address to)"),)
    )


def _enable_validation(module: Any, nft: Any, eoa: Any, key: LocalSigner, session: Session) -> int:
    """What the module's ``validateUserOp`` answers the EOA for an ENABLE operation carrying ``session`` (with no
    valid owner signature) and ``key``'s signature, minting an NFT: 0 valid (a call no permission holds reverts
    ``NoPermission``)."""
    mint = encode_execute([Call.of(nft.address, 0, nft.safeMint.encode_input(eoa.address))])
    op = plain_op(eoa.address, mint, nonce=0, call_gas_limit=200_000, verification_gas_limit=500_000).pack()
    signature = encode_enable_signature(session, NO_OWNER_SIGNATURE, key.sign_hash(DIGEST))
    packed = (*op.as_tuple()[:-1], signature)
    return int(module.validateUserOp.call(packed, DIGEST, sender=eoa))


def test_an_enable_payload_of_a_session_cleared_back_at_its_epoch_is_judged_by_what_its_key_holds_now(
    module: Any, nft: Any, accounts: Any
) -> None:
    """The session is enabled at epoch E, cleared by a move to another epoch and the account moved back to E: its
    ENABLE payload (whose owner signature is no signature at all) is refused while its key holds nothing
    (``NoPermission``, the error of a call outside every permission), valid while
    a second session of the key granted at E since holds the call, and refused again once that one is revoked; the
    cleared session is never enabled again (``SessionIsRevoked``) nor said active."""
    eoa, key = accounts[5], LocalSigner.generate()
    cleared, later = _mint_session(nft, key), _mint_session(nft, key, salt=1)
    epoch = unpredictable_epoch()
    while epoch in (module.epochOf(eoa.address), (module.epochOf(eoa.address) + 1) % 2**32):
        epoch = unpredictable_epoch()

    module.invalidateAllSessions(epoch, sender=eoa)
    module.enableSession(cleared.as_abi(), sender=eoa)
    cleared_id = bytes(module.sessionId(eoa.address, cleared.as_abi()))
    assert module.isSessionActive(eoa.address, cleared_id)
    module.invalidateAllSessions((epoch + 1) % 2**32, sender=eoa)
    module.invalidateAllSessions(epoch, sender=eoa)
    assert not module.isSessionActive(eoa.address, cleared_id)

    with ape.reverts(module.NoPermission):  # a cleared session's payload enables nothing
        _enable_validation(module, nft, eoa, key, cleared)
    assert not module.isSessionActive(eoa.address, cleared_id)

    module.enableSession(later.as_abi(), sender=eoa)
    later_id = bytes(module.sessionId(eoa.address, later.as_abi()))
    assert _enable_validation(module, nft, eoa, key, cleared) == 0, "not judged by the key's live session"
    assert not module.isSessionActive(eoa.address, cleared_id)

    module.revokeSession(later_id, sender=eoa)
    with ape.reverts(module.NoPermission):  # judged by what the key holds now: nothing
        _enable_validation(module, nft, eoa, key, cleared)
    with ape.reverts(module.SessionIsRevoked, sessionId=cleared_id):
        module.enableSession(cleared.as_abi(), sender=eoa)
    assert not module.isSessionActive(eoa.address, cleared_id)


STRICT_HANDLER = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// A fallback handler that takes `isModuleType(uint256)` in its canonical form only: 36 bytes of calldata (a longer
/// question is refused, as a strict decoder refuses it). It is a fallback handler (type 3) and nothing else.
contract StrictCalldataHandler {
    function isModuleType(uint256 moduleType) external pure returns (bool) {
        assembly ("memory-safe") {
            if iszero(eq(calldatasize(), 36)) { revert(0, 0) }
        }
        return moduleType == 3;
    }
}
"""


@pytest.fixture(scope="module")
def handler_on_anvil(project: Any) -> Any:
    """The file's anvil, with the module and a strict fallback handler deployed: ``(chain, module, handler)``."""
    with anvil_chain() as chain:
        deployer = chain.accounts[0]
        module = chain.deploy(project.SessionKeyValidator, sender=deployer)
        container = ContractContainer(compile_contract_type(STRICT_HANDLER, "StrictCalldataHandler"))
        handler = chain.deploy(container, sender=deployer).address
        yield chain, module, handler


def test_a_fallback_handler_answering_only_the_canonical_type_question_is_refused_at_install(
    handler_on_anvil: Any,
) -> None:
    """An account without code grants, at install, a call with a selector to a handler that answers
    ``isModuleType(3)`` only in 36 bytes: refused as its fallback handler (type 3); a plain transfer to it (selector
    zero) is enabled, since no fallback handler is reached without a selector."""
    chain, module, handler = handler_on_anvil
    account = to_address(keccak(b"keyscope premises account without code")[12:])
    key = LocalSigner.generate().address
    with_selector = Session(
        session_key=key, permissions=(Permission(target=handler, selector=bytes.fromhex("12345678")),)
    )
    assert install_verdict(chain, module, account, with_selector) == (0, handler, 3), (
        "the module enabled a call routed to a fallback handler that answers only the canonical question"
    )
    transfer = Session(session_key=key, permissions=(Permission(target=handler, selector=bytes(4)),))
    assert install_verdict(chain, module, account, transfer) is None


def test_the_dashboard_stopped_by_ctrl_c_says_what_was_written_and_what_may_still_land() -> None:
    """With a store, every revocation seen included is said marked there; without one, nothing written; both say
    that a revocation prepared but not signed was not sent and that one signed may still be included."""
    with_store = _dashboard_stopped("sessions.sqlite")
    without = _dashboard_stopped(None)
    assert "every revocation it saw included is marked in the session store" in with_store
    assert "it read no session store and wrote nothing" in without
    for said in (with_store, without):
        assert said.startswith("interrupted: the dashboard stopped and its page is closed; nothing was lost")
        assert "a revocation prepared on the page but not signed was not sent" in said
        assert "one signed whose result the page had not shown yet may still be included" in said


def test_the_epoch_an_invalidation_draws_is_known_once_the_block_before_it_exists(
    module: Any, accounts: Any, chain: Any
) -> None:
    """Computed from the head block's hash, PREVRANDAO (0 inside this chain's EVM), the account and its epoch before
    ``invalidateAllSessions()`` is sent: the epoch the account lands on is that one (one further were it the one the
    account is at)."""
    eoa = accounts[3]
    epoch = int(module.epochOf(eoa.address))
    head = bytes(chain.blocks.head.hash)
    drawn = keccak(abi_encode(["bytes32", "uint256", "address", "uint32"], [head, 0, eoa.address, epoch]))
    expected = int.from_bytes(drawn[-4:], "big")
    if expected == epoch:
        expected = (expected + 1) % 2**32
    module.invalidateAllSessions(sender=eoa)
    assert int(module.epochOf(eoa.address)) == expected
