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

from collections.abc import Sequence
from typing import Any

import ape
import pytest
from eth_account import Account

from keyscope import DelegationWarning, SessionKey, connect
from keyscope.calls import encode_function_call
from keyscope.devnode import send_transaction, wait_for_receipt
from keyscope.errors import BundlerRejectedError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address
from keyscope.local import LocalStack
from keyscope.module import (
    enable_session_data,
    invalidate_all_sessions_data,
    revoke_session_data,
    unpredictable_epoch,
)
from keyscope.policy import Policy
from keyscope.session import Session
from keyscope.signing import LocalSigner
from support.solidity import compile_contract_type
from support.userops import plain_op

DIGEST = b"\x42" * 32
MINT = "safeMint(address)"
DRAINER = """
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// Code an EOA was led to delegate to: anyone makes the EOA call anything; it holds no module.
contract Drainer {
    function execute(address to, uint256 value, bytes calldata data) external {
        (bool ok, bytes memory result) = to.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }

    function isModuleInstalled(uint256, address, bytes calldata) external pure returns (bool) {
        return false;
    }
}
"""


def _mint_validation(module: Any, nft: Any, eoa: Any, key: LocalSigner, recipient: str) -> int:
    """What the module's ``validateUserOp`` answers the EOA (its caller is the account) for an operation of ``key``
    (USE: its bare signature) minting an NFT to ``recipient``: 0 valid, 1 refused."""
    mint = encode_execute([Call.of(nft.address, 0, nft.safeMint.encode_input(recipient))])
    op = plain_op(eoa.address, mint, nonce=0, call_gas_limit=200_000, verification_gas_limit=500_000).pack()
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
    the owner's later ``invalidateAllSessions()``, and through an uninstall. Held: a session is live only where the
    live list holds it, so the decoy is dead at 7 again, its revocation moves nothing, and the upgrade kills the
    session."""
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
    operation reverts as a whole (nothing of it is enabled, nothing is reported active: here, in separate calls,
    the key has no permission, and ``isSessionActive`` says no, as the live list does, where the meta word alone said
    yes), and the owner's next upgrade draws another epoch."""
    eoa = accounts[6]
    owner_key = LocalSigner.generate()
    owner_session = _mint_session(nft, owner_key)
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
    assert _mint_validation(module, nft, eoa, owner_key, accounts[7].address) == 1
    assert not module.isSessionActive(eoa.address, session_id), "a dead session reported active"
    assert not module.isSessionRevoked(
        eoa.address, session_id
    )  # dead by its epoch's end, not by a revocation


def _send(stack: LocalStack, eoa: LocalSigner, data: bytes, authorizations: Sequence[Any] = ()) -> None:
    """The EOA's own transaction to itself (type 4 when it carries an authorization), as code it delegates to is
    called; it must succeed."""
    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    tx: dict[str, Any] = {
        "type": 4 if authorizations else 2,
        "chainId": stack.chain_id,
        "nonce": nonce,
        "to": eoa.address,
        "value": 0,
        "data": data,
        "gas": 1_000_000,
        "maxFeePerGas": 20 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    if authorizations:
        tx["authorizationList"] = list(authorizations)
    signed = Account.sign_transaction(tx, eoa.private_key)
    tx_hash = stack.node.request("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    assert int(wait_for_receipt(stack.node, tx_hash)["status"], 16) == 1


@pytest.mark.e2e
def test_keyscope_s_upgrade_on_anvil_and_alto_leaves_no_session_other_code_hid_from_the_live_list(
    local_stack: LocalStack,
) -> None:
    """The first test's attack end to end: the EOA delegates to other code (a drainer's, which lets anyone make the
    EOA call anything and says it holds no module), which calls the module as the EOA: epoch 7, a decoy, epoch 8,
    back to 7, the attacker's session, the decoy revoked. The owner then upgrades with keyscope (``EOAOwner.upgrade``
    through Alto: authorization, reset, install, a fresh epoch, the owner's session). The attacker's key asks the
    bundler to mint to itself: refused (without the fix the NFT is minted after the upgrade), while the owner's
    session mints."""
    stack = local_stack
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate)
    bytecode = compile_contract_type(DRAINER, "Drainer").deployment_bytecode.bytecode
    other_code = to_address(
        send_transaction(
            stack.node, stack.deployer.address, data=bytes.fromhex(bytecode[2:]), what="Drainer"
        )["contractAddress"]
    )
    eoa, attacker = LocalSigner.generate(), LocalSigner.generate()
    stack.fund(eoa.address, 2 * 10**18)
    decoy_key, key = SessionKey.generate(), SessionKey.generate()
    decoy = Session(
        session_key=decoy_key.address, permissions=(Policy.call(stack.nft, "safeMint(address to)"),)
    )
    hidden = Session(session_key=key.address, permissions=(Policy.call(stack.nft, "safeMint(address to)"),))

    def as_the_eoa(data: bytes, authorizations: Sequence[Any] = ()) -> None:
        _send(
            stack,
            eoa,
            encode_function_call("execute(address,uint256,bytes)", stack.module, 0, data),
            authorizations,
        )

    nonce = int(stack.node.request("eth_getTransactionCount", [eoa.address, "pending"]), 16)
    elsewhere = Account.sign_authorization(
        {"chainId": stack.chain_id, "address": other_code, "nonce": nonce + 1}, eoa.private_key
    )
    as_the_eoa(invalidate_all_sessions_data(7), [elsewhere])
    as_the_eoa(enable_session_data(decoy))
    as_the_eoa(invalidate_all_sessions_data(8))
    as_the_eoa(invalidate_all_sessions_data(7))
    as_the_eoa(enable_session_data(hidden))
    as_the_eoa(revoke_session_data(decoy.session_id(eoa.address, 7)))

    owner = net.eoa(eoa)
    owner_key = SessionKey.generate()
    with pytest.warns(DelegationWarning):  # the operation path from other code (attack 308)
        grant = owner.upgrade(owner_key, [Policy.call(stack.nft, "safeMint(address to)")], valid_for=3600)
    assert net.session(grant, owner_key).execute(stack.nft, MINT, eoa.address).wait().success

    hidden_grant = grant.model_copy(
        update={"session": hidden, "epoch": 7, "session_id": hidden.session_id(eoa.address, 7)}
    )
    with pytest.raises(BundlerRejectedError) as refused:
        net.session(hidden_grant, key, verify_on_chain=False).execute(stack.nft, MINT, attacker.address)
    assert refused.value.reason in ("AA23", "AA24"), refused.value
