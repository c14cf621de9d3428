"""Verification gas chosen by a session key to change what the module decides: an ENABLE operation carries a grant
naming a module of the account (an executor the owner installed after signing the grant, when it was a plain
contract), and its ``verificationGasLimit`` is set so that the module's questions to the account
(``isModuleInstalled``, made with all but a 64th of the gas left) run out of gas, which the module reads as "no"
for executors, hooks, Safe modules and fallback handlers (attack 257; an account whose validator question halts gives no
answer, attack 143). What the module
still has to do after a question (store the permission in new slots, the rest of the session, judge the call,
recover the key) needs far more than the 64th a starved question leaves it, so no gas limit turns the refusal into a session: every one is either out of gas
or ``PermissionTargetIsModule``. Through the real EntryPoint v0.7 ``handleOps`` (as ``eth_call``s) on a fresh anvil
of the file's own (the module, the account factory, the account and the modules are ape's build of their sources, on
a node that runs them natively).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keyscope.entrypoint import encode_handle_ops
from keyscope.execution import Call
from keyscope.hexutil import keccak
from keyscope.revert import describe_revert
from keyscope.rpc import JsonRpcError
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.anvil_chain import AnvilChain, AnvilContract
from support.anvil_fixtures import anvil_fixture, sessions_fixture  # noqa: F401 (fixtures)

ETHER = 10**18
ON_INSTALL = keccak(b"onInstall(bytes)")[:4]
OUT_OF_GAS = "AA23 reverted: (no revert data)"


@pytest.fixture
def deployer(anvil) -> str:
    """The anvil's first development account, which deployed the harness."""
    return anvil[0].accounts[0]


@pytest.fixture
def module_account(sessions: Any, owner: LocalSigner) -> str:
    """A keyscope account of ``owner`` with the session module installed, holding 5 ether."""
    address: str = sessions.account(owner)
    sessions.h.fund(address, 4 * ETHER)
    return address


def at_address(anvil: tuple[AnvilChain, Any], container: Any, address: str) -> AnvilContract:
    """Ape's contract type ``container`` (``project.Name``) at ``address`` of the file's anvil."""
    return AnvilContract(anvil[0], address, container.contract_type)


def verdict(sessions, op: UserOperation) -> str:
    """The EntryPoint's verdict on ``handleOps([op])`` as an ``eth_call``: "ok" or its decoded revert."""
    call: dict[str, Any] = {
        "from": sessions.h.funder.address,
        "to": sessions.h.entry_point.address,
        "data": "0x" + encode_handle_ops([op.pack()], sessions.h.funder.address).hex(),
        "gas": 30_000_000,
    }
    try:
        sessions.h.chain.call(call)
    except JsonRpcError as error:  # the EntryPoint's FailedOp(WithRevert), read as its reason
        if not isinstance(error.data, str):
            raise
        return describe_revert(bytes.fromhex(error.data.removeprefix("0x")))
    return "ok"


def enabling_at(
    sessions: Any, account: str, session_key: Any, call: Call, session: Session, owner_signature: bytes
) -> Callable[[int], str]:
    """The EntryPoint's verdict on the session key's ENABLE of ``session`` with ``call``, at a verification gas
    limit."""

    def at(gas: int) -> str:
        op = sessions.op(
            account,
            session_key,
            call,
            mode="enable",
            session=session,
            owner_signature=owner_signature,
            verification_gas_limit=gas,
        )
        return verdict(sessions, op)

    return at


def every_limit_is_out_of_gas_or_refused(at: Callable[[int], str], refused: str) -> None:
    """Sweep the verification gas limits ``at`` sends the ENABLE with: out of gas at 20,000, ``refused`` at 1.5M; the
    least limit refused found by bisection; every limit just below it and a coarser sweep below those out of gas,
    every one from it on refused: none validates."""
    assert at(20_000) == OUT_OF_GAS
    assert at(1_500_000) == refused
    # the least gas refused: below it, only out of gas
    low, high = 20_000, 1_500_000
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if at(middle) == refused else (middle, high)
    # every limit just below it (where a question runs short of gas and the module goes on with a 64th), and a
    # coarser sweep of those where the questions' gas starts to run short
    limits = set(range(high - 128, high + 16)) | set(range(high - 8_000, high - 128, 101))
    verdicts = {gas: at(gas) for gas in sorted(limits)}
    assert {v for v in verdicts.values()} == {OUT_OF_GAS, refused}, {
        g: v for g, v in verdicts.items() if v not in (OUT_OF_GAS, refused)
    }
    assert all(v == OUT_OF_GAS for g, v in verdicts.items() if g < high)
    assert all(v == refused for g, v in verdicts.items() if g >= high)


def test_no_verification_gas_limit_starves_the_module_question_into_a_grant_on_an_executor(
    anvil, sessions, project, deployer, module_account, owner, session_key
):
    """A session key sends the ENABLE of a grant naming an executor of the account at every verification gas limit
    around the one where the module's questions get enough gas: each is out of gas or refused
    ``PermissionTargetIsModule(moduleType=2)``, none validates."""
    account = module_account
    executor = anvil[0].deploy(project.GreedyModule, sender=deployer)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=executor.address, selector=ON_INSTALL),),
    )
    # the owner signed the grant while the executor was a plain contract, then installed it: an unused grant is no
    # live session, so the account's install check lets it through
    owner_signature = sessions.owner_signature(account, owner, session)
    keyscope_account = at_address(anvil, project.KeyscopeAccount, account)
    install = keyscope_account.installModule.encode_input(2, executor.address, b"")
    sessions.h.owner_execute(account, owner, Call.of(account, 0, install))
    assert keyscope_account.isModuleInstalled(2, executor.address, b"")
    call = Call.of(executor.address, 0, ON_INSTALL + bytes(64))
    refused = (
        f"AA23 reverted: PermissionTargetIsModule(permissionIndex=0, target={executor.address}, moduleType=2)"
    )

    enable = enabling_at(sessions, account, session_key, call, session, owner_signature)
    every_limit_is_out_of_gas_or_refused(enable, refused)


def test_no_verification_gas_limit_starves_the_fallback_handler_question_into_a_grant_on_the_handler(
    anvil, sessions, project, deployer, module_account, owner, session_key
):
    """Attack 257's question, ``isModuleInstalled(3, handler, selector)``, takes any answer but a true (out of gas
    included) for "no": a session key sends the ENABLE of a grant on the fallback handler the account routes
    ``addSpender`` to at every verification gas limit around the one where the question gets enough gas. Each is
    out of gas or refused ``PermissionTargetIsModule(moduleType=3)``, none validates: what the module still does
    after the question needs far more than the 64th a starved question leaves."""
    account = module_account
    handler = anvil[0].deploy(project.SpenderListHandler, sessions.h.entry_point.address, sender=deployer)
    add_spender = keccak(b"addSpender(address)")[:4]
    keyscope_account = at_address(anvil, project.KeyscopeAccount, account)
    install = keyscope_account.installModule.encode_input(3, handler.address, add_spender)
    sessions.h.owner_execute(account, owner, Call.of(account, 0, install))
    assert keyscope_account.isModuleInstalled(3, handler.address, add_spender + bytes(28))
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=add_spender),),
    )
    owner_signature = sessions.owner_signature(account, owner, session)
    call = Call.of(
        handler.address, 0, add_spender + bytes(12) + bytes.fromhex(account[2:]) + bytes.fromhex(account[2:])
    )
    refused = (
        f"AA23 reverted: PermissionTargetIsModule(permissionIndex=0, target={handler.address}, moduleType=3)"
    )

    enable = enabling_at(sessions, account, session_key, call, session, owner_signature)
    every_limit_is_out_of_gas_or_refused(enable, refused)
    assert not handler.isSpender(account, account)
