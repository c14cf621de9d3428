"""A session's life as an attacker holding its key sees it: enabled, used, revoked, invalidated, uninstalled and
reinstalled, in every order, with the key (and the bundler) trying to keep something alive.

Operations go through the real EntryPoint v0.7 ``handleOps``: on a fresh anvil of the file's own for the tests that
deploy accounts and modules of their own and send many operations (the EntryPoint, the factory, the module and the
accounts are ape's builds of their sources, on a node that runs them natively), on ape's local chain for the others.
The stateful test drives the module directly from an address standing for an account (the module keys everything
by its caller): a development account of the same anvil.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import KIND, SessionHarness
from keyscope.entrypoint import encode_handle_ops
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_address, to_bytes
from keyscope.module import (
    ENABLE_SESSION,
    SessionStatus,
    invalidate_all_sessions_data,
    read_session_status,
)
from keyscope.revert import decode_revert
from keyscope.session import (
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    encode_use_with_key_signature,
)
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import anvil_sessions
from support.fuzz import DEEP
from support.install_data import encode_install_sessions
from support.raw_call import revert_bytes
from support.session_fixtures import sdk_grant
from test_differential import PACKED_OP, VALIDATE_SELECTOR

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


# ------------------------------------------------------------------------------------------------------
# An uninstall whose onUninstall never ran, then a reinstall
# ------------------------------------------------------------------------------------------------------


class ForgivingAccount:
    """A ``ForgivingUninstallAccount`` (drops a validator whatever its ``onUninstall`` does, as Kernel, Nexus and
    Safe7579 do) whose owner signs through an ``OwnerECDSAValidator``."""

    def __init__(self, sessions, deploy, owner: LocalSigner, uninstall_gas: int = 20_000) -> None:
        """``deploy(name, *args)``: the contract ``name`` of the project deployed on the chain ``sessions`` use."""
        self.sessions = sessions
        self.owner = owner
        self.validator = deploy("OwnerECDSAValidator")
        contract = deploy(
            "ForgivingUninstallAccount",
            sessions.h.entry_point.address,
            self.validator.address,
            bytes.fromhex(owner.address[2:]),
            uninstall_gas,  # far less than the module's onUninstall needs: it fails
        )
        self.address = contract.address
        sessions.h.fund(self.address, ETHER)

    def execute(self, calls: Call | list[Call]) -> None:
        h = self.sessions.h
        op = h.op(self.address, encode_execute(calls), key=KIND.nonce_key(self.validator.address, 0))
        receipt = h.submit(op.replace(signature=self.owner.sign_hash(h.hash(op))))
        assert receipt.success, receipt.reason

    def install_module(self, *granted: Session) -> None:
        """Install the session module, enabling ``granted`` sessions at once (its onInstall data)."""
        init_data = encode_install_sessions(granted)
        self.execute(KIND.install_validator_call(self.address, self.sessions.module.address, init_data))

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


@pytest.mark.parametrize("with_sessions", [False, True], ids=["plain install", "install granting a session"])
def test_a_reinstall_revives_nothing_an_uninstall_without_on_uninstall_left(on_anvil, owner, with_sessions):
    """Kernel, Nexus and Safe7579 drop a module whatever its onUninstall does, and a bundler's estimate for a
    plain uninstallModule (a wallet's own "remove module", not keyscope's uninstall, which invalidates first) can
    leave it short of gas: the module keeps the account's sessions and its epoch. Reinstalling the module (as
    keyscope's install_sessions does, or the wallet) must not bring back the sessions nor the owner's enable
    signatures made before the uninstall. A reinstall granting sessions (onInstall's data) grants them in the new
    epoch."""
    sessions, module, target = on_anvil.sessions, on_anvil.sessions.module, on_anvil.target
    account = ForgivingAccount(sessions, on_anvil.deploy, owner)
    account.install_module()
    key, unused_key = LocalSigner.generate(), LocalSigner.generate()
    session_id = account.grant(other_session(key, target))
    calls = target.calls()
    sessions.run(sessions.op(account.address, key, other(target)))
    pending = other_session(unused_key, target)
    pending_signature = account.owner_signature(pending)

    account.uninstall_module()
    assert module.isInitialized(account.address)  # its onUninstall did not run
    assert "AA24" in sessions.outcome(sessions.op(account.address, key, other(target)))

    new_key = LocalSigner.generate()
    granted = other_session(new_key, target, amount=8)
    account.install_module(*([granted] if with_sessions else []))
    assert not module.isSessionActive(account.address, session_id)
    assert "AA24" in sessions.outcome(sessions.op(account.address, key, other(target)))
    assert "NoPermission" in sessions.outcome(
        sessions.op(account.address, key, other(target), mode="use_with_key")
    )
    replay = sessions.enable_op(account.address, unused_key, pending, pending_signature, other(target))
    assert "InvalidOwnerSignature" in sessions.outcome(replay)
    assert target.calls() == calls + 1
    if with_sessions:
        assert module.isSessionActive(
            account.address, granted.session_id(account.address, sessions.epoch(account.address))
        )
        sessions.run(sessions.op(account.address, new_key, other(target, 8)))
        calls += 1
    # a new grant works after the reinstall
    account.grant(other_session(key, target, salt=1))
    sessions.run(sessions.op(account.address, key, other(target)))
    assert target.calls() == calls + 2


@pytest.mark.parametrize("with_sessions", [False, True], ids=["plain install", "install granting a session"])
def test_a_reinstall_voids_the_enable_signatures_of_an_install_dropped_with_no_live_session(
    on_anvil, owner, with_sessions
):
    """An install dropped without its onUninstall while it held no live session (the only session revoked), but
    the owner's off-chain grant of a session not yet used: the reinstall must still start a new epoch, so that
    grant's enable signature is refused. The live count is 0 here: only the account's installed mark tells the
    module that an install was left behind. Fails if onInstall (the module's, or the grant side's when the install
    grants a session) clears the account only when it counts live sessions."""
    sessions, module, target = on_anvil.sessions, on_anvil.sessions.module, on_anvil.target
    # with no live session an onUninstall is cheap: a few thousand gas leave it short
    account = ForgivingAccount(sessions, on_anvil.deploy, owner, uninstall_gas=3_000)
    account.install_module()
    key, unused_key = LocalSigner.generate(), LocalSigner.generate()
    session_id = account.grant(other_session(key, target))
    account.execute(Call.of(module.address, 0, module.revokeSession.encode_input(session_id)))
    pending = other_session(unused_key, target)
    pending_signature = account.owner_signature(pending)
    epoch = sessions.epoch(account.address)

    account.uninstall_module()
    assert module.isInitialized(account.address)  # its onUninstall did not run
    granted = other_session(LocalSigner.generate(), target, amount=8)
    account.install_module(*([granted] if with_sessions else []))
    assert sessions.epoch(account.address) == epoch + 1
    calls = target.calls()
    replay = sessions.enable_op(account.address, unused_key, pending, pending_signature, other(target))
    assert "InvalidOwnerSignature" in sessions.outcome(replay)
    assert not module.isSessionActive(account.address, pending.session_id(account.address, epoch))
    assert target.calls() == calls


def test_a_session_reads_invalidated_once_the_account_dropped_the_module_without_its_on_uninstall(
    sessions, project, deployer, net, target, owner
):
    """The module still counts a session active after an uninstall whose ``onUninstall`` never ran (the account
    dropped the module anyway, as Kernel, Nexus and Safe7579 do): its operations fail (AA24) and a reinstall
    kills it. ``read_session_status`` reads the module's flags and would report it active; it asks the account
    whether the module is still installed and reports it invalidated, and an off-chain grant never used
    likewise."""
    account = ForgivingAccount(
        sessions, lambda name, *args: getattr(project, name).deploy(*args, sender=deployer), owner
    )
    account.install_module()
    key = LocalSigner.generate()
    live = other_session(key, target)
    epoch = sessions.epoch(account.address)
    granted = sdk_grant(sessions, account.address, live, epoch=epoch, how="onchain")
    account.grant(live)
    pending = other_session(LocalSigner.generate(), target)
    unused = sdk_grant(
        sessions,
        account.address,
        pending,
        epoch=epoch,
        how="offchain",
        owner_signature=account.owner_signature(pending),
    )
    assert read_session_status(net, granted) is SessionStatus.ACTIVE
    assert read_session_status(net, unused) is SessionStatus.NOT_YET_ENABLED

    account.uninstall_module()
    assert sessions.module.isSessionActive(account.address, granted.session_id)  # the module still counts it
    assert "AA24" in sessions.outcome(sessions.op(account.address, key, other(target)))
    assert read_session_status(net, granted) is SessionStatus.INVALIDATED
    assert read_session_status(net, unused) is SessionStatus.INVALIDATED


def test_a_session_reads_invalidated_back_at_the_epoch_an_invalidation_cleared_it_in(
    sessions, project, deployer, net, target, owner
):
    """Found by the lifecycle models' returns to an epoch (attack 332): the account moves to another epoch and back
    (``invalidateAllSessions(uint32)``, as code the EOA ran before its EIP-7702 upgrade may, attack 322). The
    session the first move cleared stays dead (its key's operation AA24). The module's ``isSessionActive`` read its
    meta word alone, which says "active" at that epoch, so ``read_session_status``, which reads that view, reported
    it active and the SDK would build operations the module refuses (fails so). The view now asks the live list,
    and the SDK reads what the chain does."""
    account = ForgivingAccount(
        sessions, lambda name, *args: getattr(project, name).deploy(*args, sender=deployer), owner
    )
    account.install_module()
    key = LocalSigner.generate()
    live = other_session(key, target)
    epoch = sessions.epoch(account.address)
    granted = sdk_grant(sessions, account.address, live, epoch=epoch, how="onchain")
    account.grant(live)
    assert read_session_status(net, granted) is SessionStatus.ACTIVE

    module = sessions.module.address
    account.execute(Call.of(module, 0, invalidate_all_sessions_data((epoch + 7) % 2**32)))
    account.execute(Call.of(module, 0, invalidate_all_sessions_data(epoch)))
    assert sessions.epoch(account.address) == epoch
    assert "AA24" in sessions.outcome(sessions.op(account.address, key, other(target)))  # dead on chain
    assert read_session_status(net, granted) is SessionStatus.INVALIDATED, "a dead session read as active"


# ------------------------------------------------------------------------------------------------------
# Sessions written into the module before the account installed it
# ------------------------------------------------------------------------------------------------------


def _own_session(session_key, target) -> Session:
    """The session a leaked key writes for itself into a module the account has not installed: any ``other`` call."""
    return Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=OTHER, function="other(uint256)"),),
    )


@dataclass
class OnAnvil:
    """The session harness (the EntryPoint, the factory, the module, the bundler) and a ``RecordingTarget`` on the
    file's anvil, for the tests that deploy a second module and drive accounts through many operations."""

    chain: AnvilChain
    sessions: SessionHarness
    target: AnvilContract
    project: Any

    def deploy(self, name: str, *args: Any) -> AnvilContract:
        """The project's contract ``name`` (ape's build of its source) deployed with constructor ``args``."""
        return self.chain.deploy(getattr(self.project, name), *args, sender=self.chain.accounts[0])

    def deploy_module(self) -> AnvilContract:
        """Another deployment of the session module."""
        return self.deploy("SessionKeyValidator")


@pytest.fixture(scope="module")
def anvil(project):
    """The file's anvil, shared by the stateful test and the tests on ``on_anvil``."""
    with anvil_chain() as chain:
        yield chain


@pytest.fixture(scope="module")
def on_anvil(anvil, project) -> OnAnvil:
    sessions = anvil_sessions(anvil, project)
    target = anvil.deploy(project.RecordingTarget, sender=anvil.accounts[0])
    return OnAnvil(anvil, sessions, target, project)


def _calls_on_a_second_deployment(on_anvil: OnAnvil, owner, session_key, selectors):
    """A new account, a second deployment of the module, and a session of the installed one granted ``selectors``
    on it: ``(account, second, granted)``."""
    sessions = on_anvil.sessions
    account = sessions.account(owner)
    second = on_anvil.deploy_module()
    granted = sessions.grant_onchain(
        account,
        owner,
        Session(
            session_key=session_key.address,
            permissions=tuple(Permission(target=second.address, selector=selector) for selector in selectors),
        ),
    )
    return account, second, granted


def test_sessions_enabled_before_the_module_was_installed_die_when_it_is_installed(
    on_anvil, owner, session_key
):
    """The module takes ``enableSession`` from any caller, installed or not, and keys what it stores by the caller.
    A session of the installed module granted a call on another deployment of the module (the version the owner
    will move to) makes the account enable a session of the key's own choosing there, granting every call it
    likes, while that deployment is no module of the account (its ``isInitialized`` says false). The account
    refuses to install it while the session lives (``ModuleIsSessionTarget``); the owner revokes the session, as
    that error says, and installs it. Its ``onInstall`` must not keep what was written before: the key's own
    session dies with it, and the key's operation through the new module is refused (AA24)."""
    sessions, target = on_anvil.sessions, on_anvil.target
    account, second, granted = _calls_on_a_second_deployment(on_anvil, owner, session_key, [ENABLE_SESSION])
    own = _own_session(session_key, target)
    sessions.run(
        sessions.op(
            account, session_key, Call.of(second.address, 0, second.enableSession.encode_input(own.as_abi()))
        )
    )
    own_id = own.session_id(account, int(second.epochOf(account)))
    assert second.isSessionActive(account, own_id)
    assert not second.isInitialized(account)

    install = KIND.install_validator_call(account, second.address)
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(install)), owner))
    assert not receipt.success  # ModuleIsSessionTarget: the session may call it
    sessions.revoke(account, owner, granted)
    sessions.h.owner_execute(account, owner, install)
    assert second.isInitialized(account)

    assert not second.isSessionActive(account, own_id)
    through_second = SessionHarness(sessions.h, second)
    calls = target.calls()
    assert "AA24" in through_second.outcome(through_second.op(account, session_key, other(target, 99)))
    assert target.calls() == calls
    # the owner's grants through the new module work as before
    through_second.grant_onchain(account, owner, other_session(session_key, target))
    through_second.run(through_second.op(account, session_key, other(target)))
    assert target.calls() == calls + 1


REVOKE_SESSION = keccak(b"revokeSession(bytes32)")[:4]
ON_INSTALL = keccak(b"onInstall(bytes)")[:4]
ON_UNINSTALL = keccak(b"onUninstall(bytes)")[:4]


@pytest.mark.parametrize(
    "how", ["another session revoked", "its onUninstall called first", "its onInstall called"]
)
def test_the_key_cannot_shape_the_module_s_count_to_keep_a_session_through_the_install(
    on_anvil, owner, session_key, how
):
    """As above, with the key granted more calls on the second deployment, to make it look like a module that
    holds nothing of the account when it is installed: it enables a second session and revokes it (the module
    counts one live session), or has the account call the module's ``onUninstall`` (not installed, the epoch
    moved) and then enables its own, or has the account call the module's ``onInstall`` with its own session as
    the install data (the module counts the account installed). Whatever it did, the owner's install ends the key's
    session: the module counts it live, or counts the account installed."""
    sessions, target = on_anvil.sessions, on_anvil.target
    account, second, granted = _calls_on_a_second_deployment(
        on_anvil, owner, session_key, [ENABLE_SESSION, REVOKE_SESSION, ON_INSTALL, ON_UNINSTALL]
    )
    own = _own_session(session_key, target)

    def through_account(data: bytes) -> None:
        sessions.run(sessions.op(account, session_key, Call.of(second.address, 0, data)))

    if how == "another session revoked":
        decoy = other_session(LocalSigner.generate(), target)
        through_account(second.enableSession.encode_input(decoy.as_abi()))
        through_account(second.enableSession.encode_input(own.as_abi()))
        through_account(second.revokeSession.encode_input(decoy.session_id(account, 0)))
    elif how == "its onUninstall called first":
        through_account(second.onUninstall.encode_input(b""))
        assert int(second.epochOf(account)) != 0 and not second.isInitialized(account)
        through_account(second.enableSession.encode_input(own.as_abi()))
    else:
        through_account(second.onInstall.encode_input(encode_install_sessions([own])))
        assert second.isInitialized(account)
    own_id = own.session_id(account, int(second.epochOf(account)))
    assert second.isSessionActive(account, own_id)

    sessions.revoke(account, owner, granted)
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, second.address))
    assert not second.isSessionActive(account, own_id)
    through_second = SessionHarness(sessions.h, second)
    calls = target.calls()
    assert "AA24" in through_second.outcome(through_second.op(account, session_key, other(target, 99)))
    assert target.calls() == calls


def test_keyscope_s_eip7702_delegate_installs_the_module_without_a_session_the_account_enabled_before(
    sessions, project, deployer, accounts, target, session_key
):
    """The same on KeyscopeDelegate (the code an EOA delegates to), deployed as a plain contract whose EntryPoint is a
    test account (delegation itself needs a Prague node): the account enabled a session on the module before
    installing it (the EOA's own transaction before it delegated, or a call a session of another validator was
    granted). The module reports no ``isInitialized`` for it, so the delegate does not clear it first; the module's
    ``onInstall`` does, and the session's operation no longer validates (1, SIG_VALIDATION_FAILED)."""
    entry = accounts[6]
    delegate = project.KeyscopeDelegate.deploy(entry.address, sender=deployer)
    module = project.SessionKeyValidator.deploy(sender=deployer)
    own = _own_session(session_key, target)
    enable = Call.of(module.address, 0, module.enableSession.encode_input(own.as_abi()))
    ecosystem = sessions.h.chain.provider.network.ecosystem
    entry.call(
        ecosystem.create_transaction(receiver=delegate.address, data=encode_execute(enable), sender=entry)
    )
    own_id = own.session_id(delegate.address, 0)
    assert module.isSessionActive(delegate.address, own_id) and not module.isInitialized(delegate.address)

    delegate.installModule(1, module.address, b"", sender=entry)
    assert module.isInitialized(delegate.address) and int(module.epochOf(delegate.address)) == 1
    assert not module.isSessionActive(delegate.address, own_id)
    through = SessionHarness(sessions.h, module)
    op = through.op(delegate.address, session_key, other(target, 99))
    data = delegate.validateUserOp.encode_input(op.pack().as_tuple(), sessions.h.hash(op), 0)
    web3 = sessions.h.chain.provider.web3
    handed = web3.eth.call({"from": entry.address, "to": delegate.address, "data": "0x" + data.hex()})
    assert int.from_bytes(bytes(handed), "big") == 1


# ------------------------------------------------------------------------------------------------------
# A revocation and a session's operation in one bundle
# ------------------------------------------------------------------------------------------------------


def test_residual_an_operation_validated_in_the_bundle_of_a_revocation_runs_after_it(
    on_anvil, owner, session_key
):
    """The EntryPoint validates every operation of a bundle before it executes any, so a bundler (colluding with
    the key, or just ordering as it likes) that puts a session's operation after the owner's revocation in one
    handleOps gets it validated while the session is alive and executed after the revocation, and after whatever
    else the owner's operation did. It is one operation the session could have landed before the revocation,
    within its grant and counted in its limits; once the bundle is in, the session never validates again. The
    same holds for an off-chain grant revoked before its first use: its ENABLE in the revocation's bundle gets
    one use."""
    sessions, module, target = on_anvil.sessions, on_anvil.sessions.module, on_anvil.target
    entry_point, submitter = sessions.h.entry_point, on_anvil.chain.accounts[1]
    account = sessions.account(owner)
    session_id = sessions.grant_onchain(account, owner, other_session(session_key, target))
    pending_key = LocalSigner.generate()
    pending = other_session(pending_key, target)
    pending_id = pending.session_id(account, sessions.epoch(account))
    pending_signature = sessions.owner_signature(account, owner, pending)
    revocations = [
        Call.of(module.address, 0, module.revokeSession.encode_input(i)) for i in (session_id, pending_id)
    ]
    revoke = sessions.h.sign_owner(sessions.h.op(account, encode_execute(revocations)), owner)
    use = sessions.op(account, session_key, other(target), lane=1)
    enable = sessions.enable_op(account, pending_key, pending, pending_signature, other(target))
    calls = target.calls()

    data = encode_handle_ops([revoke.pack(), use.pack(), enable.pack()], submitter)
    assert on_anvil.chain.send(submitter, entry_point.address, data)["status"] == "0x1"
    assert module.isSessionRevoked(account, session_id) and module.isSessionRevoked(account, pending_id)
    assert target.calls() == calls + 2  # both ran, after the revocations
    assert "AA24" in sessions.outcome(sessions.op(account, session_key, other(target)))
    replay = sessions.enable_op(account, pending_key, pending, pending_signature, other(target))
    assert "SessionIsRevoked" in sessions.outcome(replay)
    assert target.calls() == calls + 2


# ------------------------------------------------------------------------------------------------------
# Every order of enable, use, revoke, invalidate, uninstall and reinstall
# ------------------------------------------------------------------------------------------------------

KEYS = tuple(LocalSigner(keccak(b"keyscope lifecycle key %d" % i)) for i in range(2))
TARGETS = tuple(to_address(keccak(b"keyscope lifecycle target %d" % i)[12:]) for i in range(2))
SELECTORS = (keccak(b"pay(uint256,uint256,uint256)")[:4], keccak(b"take(uint256,uint256,uint256)")[:4])
SLOTS = tuple((t, s) for t in range(len(TARGETS)) for s in range(len(SELECTORS)))
LIFECYCLE_PAYMASTER = to_address(keccak(b"keyscope lifecycle paymaster")[12:])
WEBSITES = ("app.example", "other.example")
SIGN_IN_SUFFIX = b" wants you to sign in with your Ethereum account:\n"


def sign_in_key(key: int, website: int) -> bytes:
    """Where the module keeps ``key``'s sign-in permission for ``website`` (SigningKeys.signIn)."""
    line = keccak(WEBSITES[website].encode() + SIGN_IN_SUFFIX)
    return keccak(b"\x02" + bytes.fromhex(KEYS[key].address[2:]) + line)


TALLY: Counter[str] = Counter()
EPOCHS_BACK = 3
"""How many of the latest epochs the machine was at it may send the account back to."""
KILLS = ("back to an epoch it was at", "invalidate", "reinstall", "reinstall without onUninstall")
"""How the machine ends every session."""
DEAD_AGAIN = 2
"""How many times more often than another the machine enables again a session dead back at its epoch."""
REVOKED_AGAIN = 1
"""How many times more often than another the machine enables again a session revoked at the epoch it is at. These
four are out of the machine's class, whose source seeds the derandomized runs: the ci run's steps are those of the class
with these values, and reach every outcome the test asks of them."""


@dataclass
class Granted:
    """What the model knows of one session: its key, value (every rule of it wants the value), the rule count of
    each of its (target, selector) slots, its calls budget (None: no limit) and its status."""

    session: Session
    key: int
    value: int
    rules: dict[tuple[int, int], int]
    left: int | None
    websites: tuple[int, ...] = ()
    epoch: int = -1
    # active, revoked, dead (invalidated or uninstalled: out of the live list, its meta word still "active at its
    # epoch", which the account may come back to)
    status: str = "active"


class LifecycleMachine(RuleBasedStateMachine):
    """One test account plays the smart account; two keys share (target, selector) slots across sessions whose
    rules, paymaster lists and meter words differ in length, so that a slot's storage words are rewritten by
    sessions after sessions. After each step the module must agree with the model on every slot of every key, on
    every session's status, and on what each call may still do."""

    module: Any = None
    account: Any = None
    call: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.granted: dict[bytes, Granted] = {}
        self.live: dict[tuple[int, int, int], bytes] = {}  # (key, target, selector) -> session id
        self.signing: dict[tuple[int, int], bytes] = {}  # (key, sign-in website) -> session id
        self.installed = True
        self.steps = 0
        self.visited: list[int] = []  # the epochs this example was at, in order

    # -- plumbing --------------------------------------------------------------------------------------

    def _eth_call(self, data: bytes) -> tuple[bytes | None, tuple[str, dict[str, Any]] | None]:
        tx = {
            "from": self.account.address,
            "to": self.module.address,
            "data": "0x" + data.hex(),
            "gas": 10**7,
        }
        try:
            result = self.call(tx)
        except Exception as failure:
            decoded = decode_revert(revert_bytes(failure))
            assert decoded is not None, failure
            return None, decoded
        return bytes.fromhex(result[2:]) if isinstance(result, str) else bytes(result), None

    def _send(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        """Run ``data`` on the module as the account: its error, or None once it ran for real."""
        _, error = self._eth_call(data)
        if error is None:
            self.account.transfer(self.module.address, 0, data=data)
        return error

    def _view(self, signature: bytes, *words: bytes) -> int:
        """The first word a view of the module answers for the account, as a bare ``eth_call`` (the invariants ask
        many after every step: ape's contract call costs several times more)."""
        output, error = self._eth_call(
            keccak(signature)[:4] + bytes(12) + to_bytes(self.account.address) + b"".join(words)
        )
        assert error is None and output is not None and len(output) >= 32, (signature, error)
        return int.from_bytes(output[:32], "big")

    def _epoch(self) -> int:
        return self._view(b"epochOf(address)")

    def _kill_all(self) -> None:
        for granted in self.granted.values():
            if granted.status == "active":
                granted.status = "dead"
        self.live.clear()
        self.signing.clear()
        self.visited.append(self._epoch())

    @initialize()
    def fresh_install(self) -> None:
        """Start from an installed module holding nothing live for the account."""
        assert self._send(self.module.onUninstall.encode_input(b"")) is None
        assert self._send(self.module.onInstall.encode_input(b"")) is None
        self.visited.append(self._epoch())

    # -- the owner's steps -----------------------------------------------------------------------------

    @rule(data=st.data())
    def enable(self, data: st.DataObject) -> None:
        """A new grant: a key, maybe a sign-in permission, one or two slots (none with a sign-in) with 0 to 3 rules
        each, maybe a calls budget shared by the session's permissions, maybe a gas cap and a paymaster list
        (stored after the rules)."""
        key = data.draw(st.integers(0, len(KEYS) - 1), label="key")
        websites = tuple(
            data.draw(st.lists(st.integers(0, len(WEBSITES) - 1), max_size=1, unique=True), label="sign-in")
        )
        slots = data.draw(
            st.lists(st.sampled_from(SLOTS), min_size=0 if websites else 1, max_size=2, unique=True),
            label="slots",
        )
        value = 1000 + len(self.granted)
        rules = {slot: data.draw(st.integers(0, 3), label=f"rules {slot}") for slot in slots}
        budget = data.draw(st.sampled_from([None, None, 0, 1, 2]), label="calls budget")
        capped = data.draw(st.booleans(), label="capped")
        permissions = tuple(
            Permission(
                target=TARGETS[t],
                selector=SELECTORS[s],
                rules=tuple(
                    Rule(condition=Condition.EQUAL, offset=32 * r, values=(value,))
                    for r in range(rules[(t, s)])
                ),
            )
            for t, s in slots
        )
        limits = ()
        if budget is not None and not permissions:
            budget = None
        if budget is not None:
            meters = tuple(Meter(permission=p) for p in range(len(permissions)))
            limits = (Limit(kind=LimitKind.CALLS, amount=budget, meters=meters),)
        session = Session(
            session_key=KEYS[key].address,
            permissions=permissions,
            limits=limits,
            max_gas_cost=10**16 if capped else 0,
            paymasters=(LIFECYCLE_PAYMASTER,) if capped else (),
            sign_in=tuple(WEBSITES[w] for w in websites),
        )
        self._enable(Granted(session, key, value, rules, budget, websites))

    @precondition(lambda self: any(g.status != "active" for g in self.granted.values()))
    @rule(data=st.data())
    def enable_again(self, data: st.DataObject) -> None:
        """A grant made before, enabled again: a revoked id never comes back; one that died with its epoch is a
        new session (a new id) in another epoch, and dead for good back at its own (refused as a revoked one)."""
        epoch = self._epoch()
        candidates = [g for g in self.granted.values() if g.status != "active"]
        # a revoked grant of this epoch (its id is the same again) 1 + REVOKED_AGAIN times as often as the others,
        # and a dead one of this epoch (the account came back to it) 1 + DEAD_AGAIN times as often
        revoked_here = [g for g in candidates if g.status == "revoked" and g.epoch == epoch]
        dead_here = [g for g in candidates if g.status == "dead" and g.epoch == epoch]
        old = data.draw(
            st.sampled_from(candidates + revoked_here * REVOKED_AGAIN + dead_here * DEAD_AGAIN), label="old"
        )
        self._enable(
            Granted(
                old.session,
                old.key,
                old.value,
                dict(old.rules),
                old.session.limits[0].amount if old.session.limits else None,
                old.websites,
            )
        )

    def _enable(self, granted: Granted) -> None:
        granted.epoch = self._epoch()
        session_id = granted.session.session_id(self.account.address, granted.epoch)
        error = self._send(self.module.enableSession.encode_input(granted.session.as_abi()))
        known = self.granted.get(session_id)
        if known is not None and known.status == "revoked":
            assert error is not None and error[0] == "SessionIsRevoked", error
            TALLY["SessionIsRevoked"] += 1
            return
        if known is not None and known.status == "dead":
            # its id binds the epoch: the account is back at the epoch an invalidation cleared it in, and it stays
            # dead there, refused as a revoked one
            assert error is not None and error[0] == "SessionIsRevoked", error
            TALLY["SessionIsRevoked: dead back at its epoch"] += 1
            return
        if known is not None and known.status == "active":
            assert error is None, error  # enabled already: nothing changes
            TALLY["enabled twice"] += 1
            return
        taken = [(t, s) for t, s in granted.rules if (granted.key, t, s) in self.live]
        if taken:
            assert error is not None and error[0] == "PermissionAlreadyGranted", error
            TALLY["PermissionAlreadyGranted"] += 1
            return
        if any((granted.key, w) in self.signing for w in granted.websites):
            assert error is not None and error[0] == "SigningPermissionAlreadyGranted", error
            TALLY["SigningPermissionAlreadyGranted"] += 1
            return
        assert error is None, error
        TALLY["enabled"] += 1
        self.granted[session_id] = granted
        for t, s in granted.rules:
            self.live[(granted.key, t, s)] = session_id
        for w in granted.websites:
            self.signing[(granted.key, w)] = session_id

    @precondition(lambda self: bool(self.granted))
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        """Revoke any session the model knows: active, dead or revoked already; one dead back at its epoch (its
        meta word names a place in the live list, another session's or none) twice as often."""
        epoch = self._epoch()
        dead_here = [i for i, g in self.granted.items() if g.status == "dead" and g.epoch == epoch]
        session_id = data.draw(st.sampled_from(list(self.granted) + dead_here), label="session")
        assert self._send(self.module.revokeSession.encode_input(session_id)) is None
        granted = self.granted[session_id]
        TALLY[f"revoke {granted.status}"] += 1
        if granted.status == "dead" and granted.epoch == self._epoch():
            TALLY["revoke dead back at its epoch"] += 1  # it holds no place in the live list: nothing moves
        if granted.status == "active":
            for t, s in granted.rules:
                del self.live[(granted.key, t, s)]
            for w in granted.websites:
                del self.signing[(granted.key, w)]
        granted.status = "revoked"

    @rule(how=st.sampled_from(KILLS), data=st.data())
    def kill_all(self, how: str, data: st.DataObject) -> None:
        """invalidateAllSessions, to an epoch the module draws or (``invalidateAllSessions(uint32)``) back to one of
        the latest epochs the account was at, where the sessions an invalidation or an uninstall cleared stay dead;
        or the account dropping the module and installing it again: with its onUninstall, or (an account that
        ignores a failing onUninstall) without."""
        epoch = self._epoch()
        left = [e for e in dict.fromkeys(reversed(self.visited)) if e != epoch][:EPOCHS_BACK]
        if how == "back to an epoch it was at" and left:
            back = data.draw(st.sampled_from(left), label="back to")
            assert self._send(invalidate_all_sessions_data(back)) is None
            assert self._epoch() == back
        elif how in ("invalidate", "back to an epoch it was at"):
            how = "invalidate"
            assert self._send(self.module.invalidateAllSessions.encode_input()) is None
        else:
            if how == "reinstall":
                assert self._send(self.module.onUninstall.encode_input(b"")) is None
            assert self._send(self.module.onInstall.encode_input(b"")) is None
            self.installed = True
        self._kill_all()
        TALLY[how] += 1

    @rule()
    def uninstall_or_install(self) -> None:
        """The account uninstalls the module (its onUninstall runs) and goes on calling it (``enableSession`` takes
        any caller: sessions are enabled, used and revoked while it is no module of the account), or installs it
        again: every session enabled since dies, however many of them were revoked in between."""
        if self.installed:
            assert self._send(self.module.onUninstall.encode_input(b"")) is None
            TALLY["uninstall"] += 1
        else:
            live = set(self.live.values()) | set(self.signing.values())
            assert self._send(self.module.onInstall.encode_input(b"")) is None
            TALLY["install over live sessions" if live else "install"] += 1
        self.installed = not self.installed
        self._kill_all()

    # -- the key's steps -------------------------------------------------------------------------------

    @rule(data=st.data())
    def use_again(self, data: st.DataObject) -> None:
        """Another operation (the key's steps come twice as often as the owner's)."""
        self.use(data)

    @rule(data=st.data())
    def use(self, data: st.DataObject) -> None:
        """One key's operation (USE_WITH_KEY, really signed): one or two calls on any of the slots, with the
        value of the session live there or of any session granted before."""
        live_keys = sorted({k for k, _, _ in self.live})
        key = data.draw(
            st.sampled_from(live_keys)
            if live_keys and data.draw(st.integers(0, 3), label="live key")
            else st.integers(0, len(KEYS) - 1),
            label="key",
        )
        live_slots = sorted((t, s) for k, t, s in self.live if k == key)
        values = sorted({g.value for g in self.granted.values()} | {1})
        calls = []
        for c in range(data.draw(st.integers(1, 2), label="calls")):
            slot = (
                st.sampled_from(live_slots)
                if live_slots and data.draw(st.integers(0, 4), label=f"live {c}")
                else st.sampled_from(SLOTS)
            )
            t, s = data.draw(slot, label=f"slot {c}")
            live = self.live.get((key, t, s))
            value = data.draw(
                st.sampled_from(values)
                if live is None
                else st.sampled_from([self.granted[live].value] * 3 + values),
                label=f"value {c}",
            )
            calls.append((t, s, value))
        expected = self._expected(key, calls)
        data_, output, error = self._validate(key, calls)
        context = f"key {key}, calls {calls}, live {self.live}, expected {expected}, got {error or output}"
        TALLY[expected[0] if expected else "accepted"] += 1
        if expected is not None:
            assert error is not None and error[0] == expected[0], context
            assert error[1]["callIndex"] == expected[1], context
            return
        assert error is None and output is not None and int.from_bytes(output, "big") == 0, context
        self.account.transfer(self.module.address, 0, data=data_)
        for t, s, _ in calls:
            granted = self.granted[self.live[(key, t, s)]]
            if granted.left is not None:
                granted.left -= 1

    def _validate(
        self, key: int, calls: list[tuple[int, int, int]]
    ) -> tuple[bytes, bytes | None, tuple[str, dict[str, Any]] | None]:
        """``validateUserOp`` of these calls by ``key`` (USE_WITH_KEY, really signed), as an ``eth_call``: its
        calldata, and its output or error."""
        call_data = encode_execute(
            [Call(TARGETS[t], 0, SELECTORS[s] + abi_encode(["uint256"] * 3, [v] * 3)) for t, s, v in calls],
            batch=len(calls) > 1,
        )
        op = UserOperation(
            sender=self.account.address,
            nonce=0,
            call_data=call_data,
            verification_gas_limit=100_000,
            call_gas_limit=100_000,
            pre_verification_gas=50_000,
            max_fee_per_gas=1,
            max_priority_fee_per_gas=1,
        )
        op_hash = keccak(b"keyscope lifecycle operation %d" % self.steps)
        self.steps += 1
        signature = encode_use_with_key_signature(KEYS[key].address, KEYS[key].sign_hash(op_hash))
        packed = op.replace(signature=signature).pack().as_tuple()
        data = VALIDATE_SELECTOR + abi_encode([PACKED_OP, "bytes32"], [packed, op_hash])
        return (data, *self._eth_call(data))

    def _expected(self, key: int, calls: list[tuple[int, int, int]]) -> tuple[str, int] | None:
        """The module's refusal (error name, call index) of these calls by ``key``, None when it accepts them."""
        for i, (t, s, value) in enumerate(calls):
            session_id = self.live.get((key, t, s))
            if session_id is None:
                return "NoPermission", i
            granted = self.granted[session_id]
            if granted.rules[(t, s)] and value != granted.value:
                return "RuleViolated", i
        spent: Counter[bytes] = Counter()
        for i, (t, s, _) in enumerate(calls):
            session_id = self.live[(key, t, s)]
            left = self.granted[session_id].left
            if left is not None:
                spent[session_id] += 1
                if spent[session_id] > left:
                    return "LimitExceeded", i
        return None

    # -- what the module says --------------------------------------------------------------------------

    @invariant()
    def every_slot_agrees(self) -> None:
        """Every (key, target, selector): refused for want of a permission unless a live session holds it, and
        then judged by that session's rules and budget alone (the value of the live session; another one's
        where the slot has rules)."""
        for key in range(len(KEYS)):
            for t, s in SLOTS:
                live = self.live.get((key, t, s))
                values = [1] if live is None else [self.granted[live].value, 1]
                for value in values:
                    expected = self._expected(key, [(t, s, value)])
                    _, output, error = self._validate(key, [(t, s, value)])
                    got = error[0] if error else int.from_bytes(output or b"", "big")
                    TALLY[f"slot {expected[0] if expected else 'accepted'}"] += 1
                    assert (expected[0] if expected else 0) == got, (key, t, s, value, self.live, got)

    @invariant()
    def every_sign_in_permission_agrees(self) -> None:
        """A sign-in permission's header is live exactly while its session is."""
        for key in range(len(KEYS)):
            for website in range(len(WEBSITES)):
                header = self._view(b"signingPermission(address,bytes32)", sign_in_key(key, website))
                assert bool(header >> 248 & 1) == ((key, website) in self.signing), (
                    key,
                    website,
                    self.signing,
                )
                TALLY["sign-in live" if header >> 248 & 1 else "sign-in dead"] += 1

    @invariant()
    def statuses_agree(self) -> None:
        """Each session's flags. ``isSessionActive`` asks the live list, so it says no for a session an
        invalidation cleared at the epoch the account is back at, whose meta word still says active there (tallied):
        what such a session may do is what :meth:`every_slot_agrees` and :meth:`every_sign_in_permission_agrees`
        ask."""
        epoch = self._epoch()
        for session_id, granted in self.granted.items():
            active = bool(self._view(b"isSessionActive(address,bytes32)", session_id))
            revoked = bool(self._view(b"isSessionRevoked(address,bytes32)", session_id))
            assert (active, revoked) == (granted.status == "active", granted.status == "revoked"), (
                session_id.hex(),
                granted.status,
                epoch,
            )
            if granted.status == "dead" and granted.epoch == epoch:
                TALLY["isSessionActive says no for a session dead back at its epoch"] += 1


class DevelopmentAccount:
    """The machine's account: a development account of the file's anvil, whose ``transfer`` is a transaction that
    must succeed."""

    def __init__(self, chain: AnvilChain, address: str) -> None:
        self.chain = chain
        self.address = address

    def transfer(self, to: str, value: int, *, data: bytes) -> None:
        self.chain.send(self.address, to, data, value=value)


@pytest.fixture(scope="module")
def lifecycle(anvil, project):
    # hypothesis seeds its derandomized runs with the machine class's source: the class changed when it learnt to move
    # the account back to epochs it was at, so the steps generated are no longer those of py-evm; the test's tallies
    # say what they reach
    LifecycleMachine.module = anvil.deploy(project.SessionKeyValidator)
    LifecycleMachine.account = DevelopmentAccount(anvil, anvil.accounts[7])
    LifecycleMachine.call = staticmethod(anvil.call)
    return LifecycleMachine


def test_no_order_of_grants_revocations_and_reinstalls_leaves_a_permission_alive(lifecycle):
    """Sessions of two keys enabled, used, revoked (in any order, twice, before or after they died), invalidated,
    the module uninstalled and reinstalled (with or without its onUninstall): no slot keeps a dead session's
    permission, sign-in permission, rules or budget, no revoked grant comes back, and a budget spent stays
    spent. Sessions enabled while the module was uninstalled die when it is installed again. The account sent back
    to an epoch it was at (``invalidateAllSessions(uint32)``, attacks 322 and 323) finds every session cleared there
    dead: no permission, refused as a revoked one, its revocation moving no other session."""
    run = lifecycle.TestCase
    run.settings = settings(
        max_examples=200 if DEEP else 20,
        stateful_step_count=30 if DEEP else 20,
        deadline=None,
        derandomize=not DEEP,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    run().runTest()
    print("\nlifecycle:", ", ".join(f"{k} {v}" for k, v in TALLY.most_common()))
    for outcome in ("accepted", "NoPermission", "RuleViolated", "LimitExceeded"):
        assert TALLY[outcome] + TALLY[f"slot {outcome}"], f"no {outcome} among the generated steps: {TALLY}"
    for outcome in (
        "PermissionAlreadyGranted",
        "SigningPermissionAlreadyGranted",
        "SessionIsRevoked",
        "revoke active",
        "reinstall without onUninstall",
        "install over live sessions",
        "sign-in live",
        "back to an epoch it was at",
    ):
        assert TALLY[outcome], f"no {outcome} among the generated steps: {TALLY}"
    dead_back = [
        "isSessionActive says no for a session dead back at its epoch",
        "SessionIsRevoked: dead back at its epoch",
        "revoke dead back at its epoch",
    ]
    # each in a deep run; in a ci run's few examples, one of them at least
    reached = [TALLY[outcome] for outcome in dead_back]
    assert all(reached) if DEEP else any(reached), f"a session dead back at its epoch met {reached}: {TALLY}"
