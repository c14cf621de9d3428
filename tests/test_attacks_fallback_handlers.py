"""Attack 257: a session granted a call to the account's own fallback handler, on a selector the account routes to it.

An ERC-7579 fallback handler takes the account as ``msg.sender`` and the account's own caller from the last 20 bytes
of its calldata (ERC-2771), which the account appends when it routes a selector to the handler. A call the account
makes to the handler directly carries whatever its data ends with, and the module allows bytes after the arguments:
a session granted ``(handler, selector)`` could append the account's own address (or the EntryPoint's) and pose as
the account's caller for what the handler keeps for the account. ``SpenderListHandler`` (contracts/test) keeps for
each account the spenders other contracts trust, added only when the account's caller is the account itself or the
EntryPoint.

Enabling a session asks the account, for each permission with a nonzero selector, ERC-7579
``isModuleInstalled(3, target, abi.encode(selector))`` and refuses the permission when it says yes
(``PermissionTargetIsModule``, module type 3); an account without code yet has the target asked ``isModuleType(3)``.
The SDK refuses the same grant before anything is signed. Operations are sent to the real EntryPoint v0.7
``handleOps``; the accounts are keyscope's, OpenZeppelin's ``AccountERC7579`` and Nexus 1.0 (its released bytecode).
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode

from conftest import ETHER
from keyscope import Policy, SessionKey
from keyscope.accounts.modules import FALLBACK_HANDLER, read_asking_modules
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.raw_call import enable_verdict
from support.sdk import local_network
from support.session_fixtures import attacker_fixture  # noqa: F401 (fixture)
from test_attacks_account_decoders import READ_BY_OFFSETS, Lax
from test_attacks_more import nexus  # noqa: F401 (fixture)

ADD_SPENDER = keccak(b"addSpender(address)")[:4]
# a function of the handler the account does not route to it
NOT_ROUTED = keccak(b"onInstall(bytes)")[:4]
FALLBACK = 3


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, module, entry_point, factory, bundler):
    """The session-scoped fixtures this module uses, made before its own: ape snapshots the chain per fixture scope
    and must not rebase them."""


@pytest.fixture
def handler(project, deployer, sessions):
    return project.SpenderListHandler.deploy(sessions.h.entry_point.address, sender=deployer)


def install_handler(project: Any, account: str, handler: Any, init: bytes = ADD_SPENDER) -> Call:
    """The account's ``installModule(3, handler, init)`` call (OpenZeppelin's form: the selector, then the
    handler's install data)."""
    return Call.of(
        account, 0, project.KeyscopeAccount.at(account).installModule.encode_input(3, handler.address, init)
    )


def posing(handler: Any, spender: str, caller: str) -> bytes:
    """``addSpender(spender)`` with ``caller`` appended, as the account's own caller would be."""
    return handler.addSpender.encode_input(spender) + bytes.fromhex(caller[2:])


def refusal(handler: Any, index: int = 0) -> str:
    return (
        f"PermissionTargetIsModule(permissionIndex={index}, target={handler.address}, moduleType={FALLBACK})"
    )


def test_a_session_on_the_account_s_fallback_handler_cannot_pose_as_the_account_s_caller(
    sessions, project, handler, session_key, attacker
):
    """The owner's own operations show the handler's two ways in: the selector routed through the account (the account
    appends itself), and a direct call from the account with the account appended by hand; without the appended
    caller the handler refuses. The session granted ``(handler, addSpender)`` tries the direct call with the account
    appended, the grant sent by the owner on chain and in the session's first operation (ENABLE): both enables are
    refused, and the attacker is no spender of the account. Without the fallback handler question both are enabled
    and the session's call adds the attacker: fails."""
    owner = LocalSigner.generate()
    account = sessions.account(owner)
    sessions.h.fund(account, ETHER)
    sessions.h.owner_execute(account, owner, install_handler(project, account, handler))
    assert project.KeyscopeAccount.at(account).isModuleInstalled(
        FALLBACK, handler.address, ADD_SPENDER + bytes(28)
    )

    friend, posed = LocalSigner.generate().address, LocalSigner.generate().address
    sessions.h.owner_execute(
        account, owner, Call.of(account, 0, ADD_SPENDER + abi_encode(["address"], [friend]))
    )
    sessions.h.owner_execute(account, owner, Call.of(handler.address, 0, posing(handler, posed, account)))
    assert handler.isSpender(account, friend) and handler.isSpender(account, posed)
    unposed = Call.of(handler.address, 0, handler.addSpender.encode_input(attacker))
    assert not sessions.h.submit(
        sessions.h.sign_owner(sessions.h.op(account, encode_execute(unposed)), owner)
    ).success

    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=ADD_SPENDER),),
    )
    take = Call.of(handler.address, 0, posing(handler, attacker, account))
    enable = Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
    on_chain = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, encode_execute(enable)), owner))
    used = sessions.outcome(sessions.op(account, session_key, take))
    assert not handler.isSpender(account, attacker), "the session posed as the account and added the attacker"
    assert not on_chain.success and "AA24" in used, used
    off_chain = sessions.enable_op(
        account, session_key, session, sessions.owner_signature(account, owner, session), take
    )
    assert refusal(handler) in sessions.outcome(off_chain)
    assert not handler.isSpender(account, attacker)
    assert not sessions.module.isSessionActive(account, session.session_id(account, sessions.epoch(account)))
    assert enable_verdict(sessions, account, session) == refusal(handler)


def test_the_handler_is_asked_about_per_selector(sessions, project, handler, session_key):
    """The fallback handler question is asked for each permission's (target, selector), not once per target as the
    other module questions: a permission on a selector the account does not route to the handler is enabled (the
    residual: such a call reaches the handler's own function, with no caller the account appended), one on the routed
    selector after it is refused, at its own index. A transfer permission (selector 0, no calldata) asks nothing. On an
    account that routes the selector to another contract, the handler is no module of it."""
    owner = LocalSigner.generate()
    account = sessions.account(owner)
    sessions.h.owner_execute(account, owner, install_handler(project, account, handler))

    def session(*permissions: Permission) -> Session:
        return Session(session_key=session_key.address, permissions=permissions)

    other = Permission(target=handler.address, selector=NOT_ROUTED)
    routed = Permission(target=handler.address, selector=ADD_SPENDER)
    assert enable_verdict(sessions, account, session(other)) == "ok"
    assert enable_verdict(sessions, account, session(Policy.transfer(handler.address, 1))) == "ok"
    assert enable_verdict(sessions, account, session(other, routed)) == refusal(handler, 1)
    assert enable_verdict(sessions, account, session(Policy.transfer(handler.address, 1), routed)) == refusal(
        handler, 1
    )

    elsewhere = sessions.account(LocalSigner.generate(), salt=1)
    assert enable_verdict(sessions, elsewhere, session(routed)) == "ok"


def test_a_foreign_account_s_fallback_handler_is_refused_too(
    sessions, project, deployer, handler, session_key
):
    """OpenZeppelin's ``AccountERC7579`` reads the question's context by its first 4 bytes, as keyscope's accounts,
    Kernel and Nexus do (Safe7579 decodes it as one ``bytes4`` word, which the same context gives): it says yes for
    the routed selector, and the grant is refused."""
    lax = Lax(sessions, project, deployer, LocalSigner.generate(), READ_BY_OFFSETS)
    lax.owner_execute(
        [Call.of(lax.address, 0, lax.contract.installModule.encode_input(3, handler.address, ADD_SPENDER))]
    )
    routed = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=ADD_SPENDER),),
    )
    assert enable_verdict(sessions, lax.address, routed) == refusal(handler)
    other = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=NOT_ROUTED),),
    )
    assert enable_verdict(sessions, lax.address, other) == "ok"


def test_nexus_s_fallback_handler_is_refused(sessions, project, deployer, chain, nexus, handler, session_key):  # noqa: F811
    """Nexus 1.0 (its released bytecode) installs a fallback handler for a selector and a call type (single), appends
    its caller when it routes the selector, and answers ``isModuleInstalled(3, handler, context)`` by the context's
    first 4 bytes: the grant on the routed selector is refused, one on another selector enabled."""
    from keyscope import Web3Chain
    from keyscope.accounts import NexusAccountKind

    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    kind = NexusAccountKind(
        owner_validator=validator.address, factory=nexus["factory"], bootstrap=nexus["bootstrap"]
    )
    owner = LocalSigner.generate()
    deployment = kind.deployment(
        Web3Chain(chain.provider.web3), owner.address, [(1, sessions.module.address, b"")]
    )
    sessions.h.fund(deployment.address, ETHER)
    install = install_handler(project, deployment.address, handler, ADD_SPENDER + b"\x00")  # call type single
    op = sessions.h.op(deployment.address, encode_execute(install), key=kind.nonce_key(validator.address),
                       factory=deployment.factory, factory_data=deployment.factory_data,
                       verification_gas=5_000_000)  # fmt: skip
    assert sessions.outcome(sessions.h.sign_owner(op, owner)) == "ok"
    account = deployment.address
    nexus_account = project.KeyscopeAccount.at(account)  # the same ERC-7579 view
    assert nexus_account.isModuleInstalled(FALLBACK, handler.address, ADD_SPENDER + bytes(28))
    routed = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=ADD_SPENDER),),
    )
    assert enable_verdict(sessions, account, routed) == refusal(handler)
    other = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=NOT_ROUTED),),
    )
    assert enable_verdict(sessions, account, other) == "ok"


@pytest.mark.parametrize(
    ("permission", "verdict"),
    [("routed selector", "refused"), ("another selector", "refused"), ("a transfer", "ok")],
)
def test_an_account_without_code_is_judged_by_whether_the_target_is_a_fallback_handler(
    sessions, handler, session_key, permission, verdict
):
    """While an account has no code (its proxy's constructor installs its modules) it cannot say which selector it
    routes where: the module asks the target ``isModuleType(3)`` instead, and refuses a call permission on a fallback
    handler whatever its selector; a transfer permission (no calldata, no caller appended) is granted."""
    account = LocalSigner.generate().address
    sessions.h.fund(account, ETHER)
    chosen = {
        "routed selector": Permission(target=handler.address, selector=ADD_SPENDER),
        "another selector": Permission(target=handler.address, selector=NOT_ROUTED),
        "a transfer": Policy.transfer(handler.address, 1),
    }[permission]
    session = Session(session_key=session_key.address, permissions=(chosen,))
    assert enable_verdict(sessions, account, session) == (refusal(handler) if verdict == "refused" else "ok")


def test_the_sdk_refuses_the_grant_before_signing(
    sessions, project, handler, chain, bundler, module, entry_point, factory
):
    """The SDK asks the account the same question in the grant's batch of reads and refuses the grant locally with an
    error naming the handler, the selector and what to do; a grant on a selector not routed to it is signed."""
    net = local_network(chain, bundler, module, entry_point, factory)
    owner = net.owner(LocalSigner.generate())
    sessions.h.fund(owner.account, ETHER)
    owner.execute(install_handler(project, owner.account, handler)).wait()
    key = SessionKey.generate()
    with pytest.raises(BadInputError) as refused:
        owner.grant(key, [Permission(target=handler.address, selector=ADD_SPENDER)])
    message = str(refused.value)
    assert handler.address in message and "0x" + ADD_SPENDER.hex() in message, message
    assert "fallback handler" in message and "PermissionTargetIsModule" in message, message
    assert "grant the handler only selectors the account does not route to it" in message, message
    with pytest.raises(BadInputError, match="fallback handler"):
        owner.grant(key, [Permission(target=handler.address, selector=ADD_SPENDER)], onchain=True)
    grant = owner.grant(key, [Permission(target=handler.address, selector=NOT_ROUTED)])
    assert grant.account == owner.account


@pytest.mark.parametrize(
    ("how", "data", "verdict"),
    [
        ("return", (1).to_bytes(32, "big"), "refused"),
        ("return", (1).to_bytes(32, "big") + bytes(32), "refused"),
        ("return", (2).to_bytes(32, "big"), "ok"),
        ("return", b"\x01", "ok"),
        ("return", b"", "ok"),
        ("revert", b"", "ok"),
        ("burn", b"", "ok"),
    ],
    ids=["true", "true, long", "a word above 1", "one byte", "nothing", "a revert", "all gas burnt"],
)
def test_the_module_and_the_sdk_read_every_answer_to_the_fallback_question_alike(
    sessions, project, deployer, chain, handler, session_key, how, data, verdict
):
    """Only a well-formed true (a word holding 1, as the other questions read it) says the account routes the selector
    to the target; a revert, all the gas burnt, a short answer or a word above 1 say no, as some accounts revert on the
    question. The module (its enable, asked as the account) and the SDK (its batch of reads, and one by one when the
    batch fails) give the same verdict. The account answers the other questions with a well-formed false."""
    from keyscope import Web3Chain
    from keyscope.accounts.erc7579 import ERC7579AccountKind

    odd = project.OddModuleAnswers.deploy(sender=deployer)
    # asked as an eth_call's sender below: py-evm makes that sender afford its gas
    project.ForceFeed.deploy(odd.address, value=ETHER, sender=deployer)
    codes = {"return": odd.RETURN(), "revert": odd.REVERT(), "burn": odd.BURN()}
    odd.answer(FALLBACK, 32, codes[how], data, sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=ADD_SPENDER),),
    )
    on_chain = enable_verdict(sessions, odd.address, session)
    assert on_chain == (refusal(handler) if verdict == "refused" else "ok"), on_chain
    found = read_asking_modules(
        Web3Chain(chain.provider.web3),
        ERC7579AccountKind(),
        odd.address,
        [handler.address],
        fallbacks=[(handler.address, ADD_SPENDER)],
    ).verdict()
    if verdict == "refused":
        assert found is not None and (found.target, found.module, found.selector) == (
            handler.address,
            FALLBACK_HANDLER,
            ADD_SPENDER,
        )
    else:
        assert found is None, found
