"""A session's life as an attacker holding its key sees it: enabled, used, revoked, invalidated, uninstalled and
reinstalled, in every order, with the key (and the bundler) trying to keep something alive.

Operations go through the real EntryPoint v0.7 ``handleOps`` on ape's local chain; the stateful test drives the
module directly from an address standing for an account (the module keys everything by its caller).
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from conftest import KIND
from keyscope.errors import BundlerRejectedError
from keyscope.execution import Call, encode_execute
from keyscope.session import Condition, Permission, Rule, Session
from keyscope.signing import LocalSigner

ETHER = 10**18
OTHER = keccak(b"other(uint256)")[:4]


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, target, module):
    """The session-scoped fixtures this module uses, made before its own: ape snapshots the chain per fixture
    scope and must not rebase them."""


def other_session(key: LocalSigner, target, amount: int = 7, salt: int = 0) -> Session:
    """other(uint256) on the recording target, with the amount required to equal ``amount``."""
    rule = Rule(condition=Condition.EQUAL, offset=0, values=(amount,), name="amount")
    return Session(
        session_key=key.address,
        salt=salt,
        permissions=(
            Permission(target=target.address, selector=OTHER, rules=(rule,), function="other(uint256)"),
        ),
    )


def other(target, amount: int = 7) -> Call:
    return Call.of(target.address, 0, target.other.encode_input(amount))


def outcome(sessions, op) -> str:
    """'ok' when the operation executes, else the text of its rejection."""
    try:
        sessions.run(op)
    except BundlerRejectedError as error:
        return str(error)
    return "ok"


# ------------------------------------------------------------------------------------------------------
# An uninstall whose onUninstall never ran, then a reinstall
# ------------------------------------------------------------------------------------------------------


class ForgivingAccount:
    """A ``ForgivingUninstallAccount`` (drops a validator whatever its ``onUninstall`` does, as Kernel, Nexus and
    Safe7579 do) whose owner signs through an ``OwnerECDSAValidator``."""

    def __init__(self, sessions, project, deployer, owner: LocalSigner) -> None:
        self.sessions = sessions
        self.owner = owner
        self.validator = project.OwnerECDSAValidator.deploy(sender=deployer)
        contract = project.ForgivingUninstallAccount.deploy(
            sessions.h.entry_point.address,
            self.validator.address,
            bytes.fromhex(owner.address[2:]),
            20_000,  # far less than the module's onUninstall needs: it fails
            sender=deployer,
        )
        self.address = contract.address
        sessions.h.fund(self.address, ETHER)

    def execute(self, calls: Call | list[Call]) -> None:
        h = self.sessions.h
        op = h.op(self.address, encode_execute(calls), key=KIND.nonce_key(self.validator.address, 0))
        receipt = h.submit(op.replace(signature=self.owner.sign_hash(h.hash(op))))
        assert receipt.success, receipt.reason

    def install_module(self) -> None:
        self.execute(KIND.install_validator_call(self.address, self.sessions.module.address))

    def uninstall_module(self) -> None:
        self.execute(KIND.uninstall_validator_call(self.address, self.sessions.module.address))

    def grant(self, session: Session) -> bytes:
        module = self.sessions.module
        self.execute(Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi())))
        return session.session_id(self.address, self.sessions.epoch(self.address))

    def owner_signature(self, session: Session) -> bytes:
        """The owner's off-chain grant, as the account's ERC-1271 takes it: through its owner validator."""
        return bytes.fromhex(self.validator.address[2:]) + self.sessions.owner_signature(
            self.address, self.owner, session
        )


def test_a_reinstall_revives_nothing_an_uninstall_without_on_uninstall_left(
    sessions, project, deployer, module, target, owner
):
    """Kernel, Nexus and Safe7579 drop a module whatever its onUninstall does, and a bundler's estimate for a
    plain uninstallModule (a wallet's own "remove module", not keyscope's uninstall, which invalidates first) can
    leave it short of gas: the module keeps the account's sessions and its epoch. Reinstalling the module (as
    keyscope's install_sessions does, or the wallet) must not bring back the sessions nor the owner's enable
    signatures made before the uninstall."""
    account = ForgivingAccount(sessions, project, deployer, owner)
    account.install_module()
    key, unused_key = LocalSigner.generate(), LocalSigner.generate()
    session_id = account.grant(other_session(key, target))
    calls = target.calls()
    sessions.run(sessions.op(account.address, key, other(target)))
    pending = other_session(unused_key, target)
    pending_signature = account.owner_signature(pending)

    account.uninstall_module()
    assert module.isInitialized(account.address)  # its onUninstall did not run
    assert "AA24" in outcome(sessions, sessions.op(account.address, key, other(target)))

    account.install_module()
    assert not module.isSessionActive(account.address, session_id)
    assert "AA24" in outcome(sessions, sessions.op(account.address, key, other(target)))
    assert "NoPermission" in outcome(
        sessions, sessions.op(account.address, key, other(target), mode="use_with_key")
    )
    replay = sessions.enable_op(account.address, unused_key, pending, pending_signature, other(target))
    assert "InvalidOwnerSignature" in outcome(sessions, replay)
    assert target.calls() == calls + 1
    # a new grant works after the reinstall
    account.grant(other_session(key, target, salt=1))
    sessions.run(sessions.op(account.address, key, other(target)))
    assert target.calls() == calls + 2
