"""A leaked session key against the module's epochs now that an account can be moved to an epoch it was at before.

Until ``invalidateAllSessions(uint32 nextEpoch)`` (attack 319's change), an account's epoch only went up, so a
session's meta word saying "active at epoch E" was dead for good once the account left E: the module cleared the
permission headers of every session in the account's live list and left the meta words as they were. An account can
now be sent back to an epoch it was at (the call takes any epoch). A session invalidated at E then reads as active
again when the account is back at E, though its permissions were cleared and it is in no live list: revoking it
swap-removes the list entry at the place its stale meta word names, which is another, live session's; and enabling
it again does nothing, as for a session already active.

Who moves an EOA's epoch before keyscope's EIP-7702 upgrade: code the EOA delegated to before (a drainer a page had
it authorize, attack 308), which calls the module as the EOA (``enableSession`` and both invalidations take any
caller as the account). The upgrade's promise is that nothing granted before it survives: the delegate's install
kills what the module holds for the EOA and the upgrade moves it to a fresh epoch. Here the EOA's calls are sent by
the EOA itself, as the drainer's code makes them, and the upgrade's module calls (the delegate's ``onInstall``, then
``invalidateAllSessions(nextEpoch)`` with an epoch drawn at random, then the owner's grant) come from the EOA as the
delegate makes them.
"""

from __future__ import annotations

from typing import Any

import ape

from keyscope.execution import Call, encode_execute
from keyscope.module import unpredictable_epoch
from keyscope.policy import Policy
from keyscope.session import Session
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation

DIGEST = b"\x42" * 32


def _mint_validation(module: Any, nft: Any, eoa: Any, key: LocalSigner, recipient: str) -> int:
    """What the module's ``validateUserOp`` answers the EOA (its caller is the account) for an operation of ``key``
    (USE: its bare signature) minting an NFT to ``recipient``: 0 valid, 1 refused."""
    op = UserOperation(
        sender=eoa.address,
        nonce=0,
        call_data=encode_execute([Call.of(nft.address, 0, nft.safeMint.encode_input(recipient))]),
        call_gas_limit=200_000,
        verification_gas_limit=500_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    ).pack()
    packed = (*op.as_tuple()[:-1], key.sign_hash(DIGEST))
    return int(module.validateUserOp.call(packed, DIGEST, sender=eoa))


def _mint_session(nft: Any, key: LocalSigner) -> Session:
    """A session of ``key`` that may mint the NFT to anyone."""
    return Session(session_key=key.address, permissions=(Policy.call(nft.address, "safeMint(address to)"),))


def _session_id(module: Any, eoa: Any, session: Session) -> bytes:
    """The id ``session`` has at the EOA's current epoch."""
    return bytes(module.sessionId(eoa.address, session.as_abi()))


def test_a_session_enabled_before_an_eip7702_upgrade_does_not_survive_it_through_an_epoch_visited_twice(
    module: Any, nft: Any, accounts: Any
) -> None:
    """Before the upgrade, the drainer's code (as the EOA) moves it to epoch 7, enables a decoy session there, moves
    to epoch 8 (the decoy's headers cleared, its meta word left "active at 7", at place 0 of the live list) and back
    to 7: the decoy reads as active. It enables its real session (place 0 of the list) and revokes the decoy, whose
    stale place is 0: the real session drops out of the live list with its permissions live. The upgrade's install
    and fresh epoch clear only what the list holds, so the attacker's key would mint through the upgrade, through
    the owner's later ``invalidateAllSessions()``, and through an uninstall. Held: an invalidation leaves no meta
    word active, so the decoy is dead at 7 again, its revocation moves nothing, and the upgrade kills the session."""
    eoa, recipient = accounts[7], accounts[8].address
    decoy_key, key = LocalSigner.generate(), LocalSigner.generate()
    decoy, real = _mint_session(nft, decoy_key), _mint_session(nft, key)

    module.invalidateAllSessions(7, sender=eoa)
    module.enableSession(decoy.as_abi(), sender=eoa)
    decoy_id = _session_id(module, eoa, decoy)
    module.invalidateAllSessions(8, sender=eoa)
    module.invalidateAllSessions(7, sender=eoa)
    module.enableSession(real.as_abi(), sender=eoa)
    module.revokeSession(decoy_id, sender=eoa)
    assert (
        _mint_validation(module, nft, eoa, key, recipient) == 0
    )  # the drainer's session, live before the upgrade

    # keyscope's upgrade, as the delegate calls the module for the EOA: install, a fresh epoch, the owner's grant
    module.onInstall(b"", sender=eoa)
    module.invalidateAllSessions(unpredictable_epoch(), sender=eoa)
    module.enableSession(_mint_session(nft, LocalSigner.generate()).as_abi(), sender=eoa)
    assert _mint_validation(module, nft, eoa, key, recipient) == 1, (
        "the drainer's session survived the upgrade"
    )

    module.invalidateAllSessions(sender=eoa)
    module.onUninstall(b"", sender=eoa)
    assert _mint_validation(module, nft, eoa, key, recipient) == 1


def test_an_owner_grant_at_an_epoch_visited_twice_is_refused_not_reported_and_left_unstored(
    module: Any, nft: Any, accounts: Any
) -> None:
    """The drainer's code reads the epoch the pending upgrade draws (it is in the operation's calldata) and lands
    first, as the EOA: it moves to that epoch and enables the owner's session there itself (the same session, so the
    same id). The upgrade's install moves one epoch on (clearing it), its ``invalidateAllSessions(nextEpoch)`` moves
    back, and its ``enableSession`` found the session "active" and stored nothing: the module said it was active and
    the owner's key could do nothing (revoking it would drop another session from the live list, the attack above).
    Held: an id an invalidation killed is never enabled again, as when a left epoch never came back; the upgrade's
    operation reverts as a whole (nothing of it is enabled), the id is not active, and the owner's next upgrade draws another epoch."""
    eoa = accounts[6]
    owner_session = _mint_session(nft, LocalSigner.generate())
    drawn = unpredictable_epoch()
    while drawn in (module.epochOf(eoa.address), (module.epochOf(eoa.address) + 1) % 2**32):
        drawn = unpredictable_epoch()

    module.invalidateAllSessions(drawn, sender=eoa)  # the front-run, as the EOA
    module.enableSession(owner_session.as_abi(), sender=eoa)
    session_id = _session_id(module, eoa, owner_session)

    module.onInstall(b"", sender=eoa)  # the upgrade: install, the drawn epoch, the owner's grant
    module.invalidateAllSessions(drawn, sender=eoa)
    with ape.reverts(module.SessionIsRevoked, sessionId=session_id):
        module.enableSession(owner_session.as_abi(), sender=eoa)
    assert not module.isSessionActive(eoa.address, session_id)
