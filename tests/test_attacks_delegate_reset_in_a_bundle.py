"""A leaked session key against keyscope's EIP-7702 delegate: the modules it forgets with ``resetModules()``.

keyscope's account and delegate refuse to install a module (of any type) while a live session of an installed
validator may call it (attack 52), and ask the validators they uninstalled earlier in the same transaction too
(attack 116): the EntryPoint validates every operation of a bundle before it executes any, so a session's operation
validated before the owner's revocation or uninstall runs after it, and would reconfigure a module installed there.

The delegate has a third way to stop holding a validator: ``resetModules()`` (attack 308), the first call of the
operation or transaction carrying the EOA's authorization, which forgets every module in constant gas without
calling any, so that nothing other code wrote into the delegate's namespace can make the upgrade revert. It did not
remember the validators it forgot, so an owner's batch that reset and then installed a module a live session may
call asked nobody, and a session's operation validated earlier in the bundle ran on the installed module (attack
313). keyscope's own upgrade batch was not exposed: it invalidates every session of the module (which marks their
targets for the rest of the transaction) and installs the module again. The delegate now records each validator it
asks to validate an operation, for the rest of the transaction, and an install asks them too: every operation that
can run after the install was validated by one of them.

Here, as in ``test_limits.py``'s delegate tests, the delegate is deployed as a plain contract (delegation needs a
Prague node) whose EntryPoint is a stand-in, ``CallsInOneTransaction`` (contracts/test): it calls the delegate as the
EntryPoint runs a bundle, in one transaction, validation first, then each operation's callData in the bundle's
order. The tests run on a fresh anvil of the file's own (ape's build of the contracts, the session harness's
EntryPoint, module and factory deployed there), each deploying its own delegate, stand-in and validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.revert import describe_revert
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.anvil_chain import AnvilChain
from support.anvil_fixtures import anvil_fixture, sessions_fixture  # noqa: F401 (fixtures)
from support.fuzz import DEEP, ON_CHAIN

ON_INSTALL = keccak(b"onInstall(bytes)")[:4]
RESET_MODULES = keccak(b"resetModules()")[:4]
VALIDATOR = 1


@pytest.fixture
def deployer(anvil: tuple[AnvilChain, Any]) -> str:
    """The anvil's first development account, which deployed the harness."""
    return anvil[0].accounts[0]


@pytest.fixture
def attacker() -> str:
    """An address no account or session of the test knows: whom the session tries to make the validator's owner."""
    return LocalSigner.generate().address


@dataclass
class DelegateWithSession:
    """The delegate, the contract standing in for its EntryPoint (``CallsInOneTransaction``: several calls in one
    transaction, as a bundle runs), the session module installed, an owner validator the owner has not installed
    yet, and a live session of ``key`` that may call that validator's ``onInstall``."""

    entry: Any
    delegate: Any
    module: Any
    validator: Any
    key: LocalSigner
    deployer: Any

    def send(self, *calls: bytes) -> list[tuple[bool, str]]:
        """``calls`` to the delegate from the stand-in EntryPoint, in one transaction; each call's success and its
        decoded revert (empty on success), as an ``eth_call`` before the transaction finds them."""
        outcomes = self.entry.run(self.delegate.address, list(calls))
        self.entry.run.transact(self.delegate.address, list(calls), sender=self.deployer)
        return [
            (bool(ok), "" if ok else describe_revert(bytes(result)))
            for ok, result in zip(outcomes[0], outcomes[1], strict=True)
        ]

    def install(self, owner: LocalSigner) -> Call:
        """The delegate's ``installModule(1, validator, owner)``: the owner's validator, with the owner's address."""
        data = self.delegate.installModule.encode_input(
            VALIDATOR, self.validator.address, bytes.fromhex(owner.address[2:])
        )
        return Call.of(self.delegate.address, 0, data)

    def take_over(self, attacker: str) -> Call:
        """The session's call making ``attacker`` the owner the validator knows for the calling account."""
        return Call.of(
            self.validator.address, 0, self.validator.onInstall.encode_input(bytes.fromhex(attacker[2:]))
        )

    def refusal(self) -> str:
        """The refusal of the validator's install while a session of the session module may call it."""
        return f"ModuleIsSessionTarget(module={self.validator.address}, validator={self.module.address})"


def delegate_with_session(sessions: Any, project: Any, deployer: Any) -> DelegateWithSession:
    """A delegate holding the session module, with a live session that may call an owner validator's ``onInstall``."""
    chain = sessions.h.chain
    entry = chain.deploy(project.CallsInOneTransaction, sender=deployer)
    delegate = chain.deploy(project.KeyscopeDelegate, entry.address, sender=deployer)
    module = sessions.module
    validator = chain.deploy(project.OwnerECDSAValidator, sender=deployer)
    key = LocalSigner.generate()
    made = DelegateWithSession(entry, delegate, module, validator, key, deployer)
    session = Session(
        session_key=key.address, permissions=(Permission(target=validator.address, selector=ON_INSTALL),)
    )
    enable = Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi()))
    assert made.send(
        delegate.installModule.encode_input(VALIDATOR, module.address, b""), encode_execute(enable)
    ) == [(True, ""), (True, "")]
    assert module.isTargetOfLiveSession(delegate.address, validator.address)
    return made


@pytest.mark.parametrize("forget", ["reset", "uninstall"])
def test_a_session_validated_before_the_delegate_forgets_its_module_cannot_call_a_module_installed_after(
    sessions: Any, project: Any, deployer: Any, owner: LocalSigner, attacker: str, forget: str
) -> None:
    """One bundle: a session's operation calling an owner validator's ``onInstall`` (granted while the validator was
    no module of the EOA), after the owner's operation that makes the delegate forget the session module and then
    installs that validator. The EntryPoint validates the session's operation first, while the module holds the
    session, and executes it after the owner's. After ``uninstallModule`` the install was refused (attack 116); after
    ``resetModules()``, which forgets every module without calling any (attack 308), it was not: the delegate asked
    none of the validators it forgot, the install landed and the session's call made the attacker the validator's
    owner for the EOA. The delegate now also asks every validator that validated an operation of the EOA earlier
    in the transaction, so the install is refused either way, and the session's call reaches a contract that is no
    module of the EOA. In a later transaction the install lands and the owner is the owner."""
    d = delegate_with_session(sessions, project, deployer)
    riding = sessions.op(d.delegate.address, d.key, d.take_over(attacker))
    validation = d.delegate.validateUserOp.encode_input(riding.pack().as_tuple(), sessions.h.hash(riding), 0)
    if forget == "reset":
        forgetting = Call.of(d.delegate.address, 0, RESET_MODULES)
    else:
        forgetting = Call.of(
            d.delegate.address, 0, d.delegate.uninstallModule.encode_input(VALIDATOR, d.module.address, b"")
        )
    validated, installed, ridden = d.send(
        validation, encode_execute([forgetting, d.install(owner)]), riding.call_data
    )
    assert validated == (True, "")
    assert installed == (False, d.refusal()), installed
    assert ridden == (True, "")
    assert not d.delegate.isModuleInstalled(VALIDATOR, d.validator.address, b"")
    # later: the owner forgets the session module (its session can no longer validate), then installs the validator
    assert d.send(encode_execute(forgetting)) == [(True, "")]
    assert d.send(encode_execute(d.install(owner))) == [(True, "")]
    assert d.delegate.isModuleInstalled(VALIDATOR, d.validator.address, b"")
    assert d.validator.ownerOf(d.delegate.address) == owner.address


def test_an_install_after_keyscope_s_upgrade_batch_is_refused_while_a_riding_session_may_call_it(
    sessions: Any, project: Any, deployer: Any, owner: LocalSigner
) -> None:
    """keyscope's upgrade batch on a delegate that held the session module (an EOA coming back to the delegate, or
    moving from another version of it): ``resetModules()``, ``invalidateAllSessions()``, ``installModule`` of the
    session module. The invalidation marks the targets of every session it ends for the rest of the transaction and
    the module is installed again, so an install after the batch, in the same transaction, of a module a session
    validated earlier in the bundle may call is refused, naming the session module; the batch alone lands."""
    d = delegate_with_session(sessions, project, deployer)
    upgrade = [
        Call.of(d.delegate.address, 0, RESET_MODULES),
        Call.of(d.module.address, 0, d.module.invalidateAllSessions.encode_input()),
        Call.of(
            d.delegate.address, 0, d.delegate.installModule.encode_input(VALIDATOR, d.module.address, b"")
        ),
    ]
    assert d.send(encode_execute([*upgrade, d.install(owner)])) == [(False, d.refusal())]
    assert d.send(encode_execute(upgrade)) == [(True, "")]
    assert d.delegate.isModuleInstalled(VALIDATOR, d.module.address, b"")
    assert not d.module.isTargetOfLiveSession(d.delegate.address, d.validator.address)


STEPS = st.lists(st.sampled_from(["validate", "reset", "uninstall", "reinstall"]), max_size=6)
"""What one transaction does before the owner installs the validator a live session may call: validate the session's
operation, ``resetModules()``, uninstall the session module, install it again."""


@settings(max_examples=200 if DEEP else 12, **ON_CHAIN)
@given(steps=STEPS)
@example(steps=["validate", "reset"])  # attack 313
@example(steps=["reset"])  # nothing validated: the install lands
@example(steps=["validate", "uninstall", "reinstall"])
@example(steps=["reset", "reinstall", "validate"])
def test_an_install_is_refused_whenever_a_validator_that_held_the_session_in_the_transaction_can_be_asked(
    sessions: Any, project: Any, deployer: Any, owner: LocalSigner, attacker: str, steps: list[str]
) -> None:
    """Any order of validations, resets, uninstalls and reinstalls of the session module in one transaction, then the
    install of the owner validator a live session may call: the install is refused exactly when the module is held
    now, or validated an operation or was uninstalled earlier in the transaction (so a session's operation validated
    before it can run after it), and lands otherwise. A reinstall ends the module's sessions (its ``onInstall``
    invalidates them) but marks their targets for the rest of the transaction, so the module still answers yes. The
    model: installed (held now) and remembered (validated or uninstalled in this transaction)."""
    d = delegate_with_session(sessions, project, deployer)
    riding = sessions.op(d.delegate.address, d.key, d.take_over(attacker))
    validation = d.delegate.validateUserOp.encode_input(riding.pack().as_tuple(), sessions.h.hash(riding), 0)
    module_call = {
        "reset": RESET_MODULES,
        "uninstall": d.delegate.uninstallModule.encode_input(VALIDATOR, d.module.address, b""),
        "reinstall": d.delegate.installModule.encode_input(VALIDATOR, d.module.address, b""),
    }
    installed, remembered = True, False
    calls: list[bytes] = []
    expected: list[bool | None] = []  # None: the validation's call succeeds whatever it answers
    for step in steps:
        if step == "validate":
            calls.append(validation)
            expected.append(None)
            remembered = remembered or installed
        else:
            calls.append(encode_execute(Call.of(d.delegate.address, 0, module_call[step])))
            done = step == "reset" or (step == "uninstall") == installed
            expected.append(done)
            if done and step == "uninstall":
                remembered = True
            if done:
                installed = step == "reinstall"
    calls.append(encode_execute(d.install(owner)))
    *before, (landed, reason) = d.send(*calls)
    assert [ok for (ok, _), want in zip(before, expected, strict=True) if want is not None] == [
        want for want in expected if want is not None
    ], (steps, before)
    refused = installed or remembered
    assert landed is not refused, (steps, reason)
    if refused:
        assert reason == d.refusal(), (steps, reason)
    assert d.delegate.isModuleInstalled(VALIDATOR, d.validator.address, b"") is landed
