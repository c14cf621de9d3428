"""A leaked session key against the module's session lifecycle on chain: the account's live list.

The module keeps the ids of an account's live sessions in a list (``_liveSessions``) and each session's place in it
in the session's meta word; revoking a session swaps the list's last id into its place and records the moved
session's new place. Two things read nothing but that list: ``invalidateAllSessions`` and ``onUninstall``, which
clear the headers of the sessions it holds, and ``isTargetOfLiveSession``, which the account asks before it installs
a module (attack 52). A live session that fell out of the list would keep its permissions through an invalidation
or an uninstall, and the account would install a module that session may call (an owner validator whose
``onInstall`` the session calls to make itself the owner). The lifecycle state machine (``test_lifecycle.py``)
watches every slot's permission and every session's status, not the view, and its revocations move one session at a
time; here the session a revocation moved is revoked in turn, between others, and the view and the invalidation are
asked about every session left.
"""

from __future__ import annotations

from typing import Any

from keyscope.accounts import KeyscopeAccountKind
from keyscope.execution import Call
from keyscope.hexutil import keccak
from keyscope.revert import describe_revert
from keyscope.session import Permission
from keyscope.signing import LocalSigner
from support.limit_fixtures import (  # noqa: F401 (fixtures)
    grant,
    limits_account_fixture,
    session_fixtures_first_fixture,
    token_fixture,
)
from support.session_fixtures import attacker_fixture, module_account_fixture  # noqa: F401 (fixtures)
from test_differential import revert_bytes

ON_INSTALL = keccak(b"onInstall(bytes)")[:4]
KIND = KeyscopeAccountKind()


def _install_error(sessions: Any, account: str, validator: str, owner: LocalSigner) -> str | None:
    """The decoded revert of the account's ``installModule`` of ``validator`` (an owner validator), called as the
    EntryPoint would (an ``eth_call``); None when the install would go through."""
    install = KIND.install_validator_call(account, validator, bytes.fromhex(owner.address[2:]))
    web3 = sessions.h.chain.provider.web3
    try:
        web3.eth.call(
            {
                "from": sessions.h.entry_point.address,
                "to": account,
                "data": "0x" + install.data.hex(),
                "gas": 10_000_000,
            }
        )
    except Exception as failure:  # any revert, decoded below
        return describe_revert(revert_bytes(failure))
    return None


def test_a_session_moved_in_the_live_list_by_a_revocation_stays_live_until_it_is_killed(
    sessions: Any, project: Any, deployer: Any, account: str, owner: LocalSigner, attacker: str
) -> None:
    """Four sessions of four keys, each allowed to call ``onInstall`` of its own owner validator (not installed).
    The owner revokes the first (the last one moves into its place), then the moved one (the third moves), then the
    second: the third session, moved and not revoked, is the only live one. The account still refuses to install
    its validator (``ModuleIsSessionTarget``) and installs the others; after ``invalidateAllSessions`` the third
    key's call on its validator is refused and the account installs that validator too. A revocation that left the
    moved session's place stale would drop the third session from the list: the view would say no, the account
    would install the validator, and the key would make the attacker its owner for the account."""
    validators = [project.OwnerECDSAValidator.deploy(sender=deployer) for _ in range(4)]
    keys = [LocalSigner.generate() for _ in range(4)]
    ids = [
        grant(sessions, account, owner, key, [Permission(target=validator.address, selector=ON_INSTALL)])[1]
        for key, validator in zip(keys, validators, strict=True)
    ]
    for revoked in (0, 3, 1):
        sessions.revoke(account, owner, ids[revoked])
    module = sessions.module
    assert [module.isSessionActive(account, i) for i in ids] == [False, False, True, False]
    assert [module.isTargetOfLiveSession(account, v.address) for v in validators] == [
        False,
        False,
        True,
        False,
    ]
    assert _install_error(sessions, account, validators[2].address, owner) == (
        f"ModuleIsSessionTarget(module={validators[2].address}, validator={module.address})"
    )
    for free in (0, 1, 3):
        assert _install_error(sessions, account, validators[free].address, owner) is None

    take_over = Call.of(
        validators[2].address, 0, validators[2].onInstall.encode_input(bytes.fromhex(attacker[2:]))
    )
    sessions.h.owner_execute(
        account, owner, Call.of(module.address, 0, module.invalidateAllSessions.encode_input())
    )
    assert not any(module.isTargetOfLiveSession(account, v.address) for v in validators)
    result = sessions.outcome(sessions.op(account, keys[2], take_over))
    assert "AA24" in result, result
    assert _install_error(sessions, account, validators[2].address, owner) is None
