"""Execution encodings against an ERC-7579 account nobody on this project wrote, whose single calls are read from the
packing ``target (20) ‖ value (32) ‖ data`` with the data's length inferred from where its calldata ends
(``contracts/test/InferringERC7579Account.sol``: OpenZeppelin's ``AccountERC7579`` with that one reading).

For the callData a canonical encoder makes, such an account runs the judged call followed by the zero bytes padding
executionCalldata to a word, which targets ignore. Whatever else the module let through after executionCalldata's
length (bytes after its padding, nonzero padding, a length word cut short of the bytes that follow) would reach the
target as calldata no permission describes: a permission for plain transfers would run a call. Operations are built
byte by byte, signed by the session key and sent to the real EntryPoint v0.7 ``handleOps``.

The same accounts (and OpenZeppelin's ``AccountERC7579`` as it comes) are also called back by a granted target while
the session's call runs (attack 118 on an account keyscope did not write).

The tests run on a fresh anvil of the file's own (ape's build of the contracts; the EntryPoint, the factory, the
module and a ``RecordingTarget`` deployed there, with the in-process bundler), each making its own accounts there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope.checker import PolicyChecker
from keyscope.entrypoint import encode_handle_ops
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute, encode_mode
from keyscope.hexutil import keccak
from keyscope.policy import Policy, arg
from keyscope.session import Permission, Session
from support.anvil_chain import AnvilChain, AnvilContract
from support.anvil_fixtures import anvil_fixture, sessions_fixture  # noqa: F401 (fixtures)
from support.session_fixtures import attacker_fixture  # noqa: F401 (fixture)

ETHER = 10**18
RELAY = keccak(b"relay(address,bytes)")[:4]


@pytest.fixture(scope="module", autouse=True)
def module_fixtures_first(sessions, module, entry_point, deployer, target, balance, vault, reentrant):
    """The module-scoped fixtures, made before any test's own (ape's isolation wants wider scopes first)."""


@pytest.fixture(scope="module")
def module(sessions: Any) -> Any:
    return sessions.module


@pytest.fixture(scope="module")
def entry_point(sessions: Any) -> Any:
    return sessions.h.entry_point


@pytest.fixture(scope="module")
def deployer(anvil: tuple[AnvilChain, Any]) -> str:
    """The anvil's first development account, which deployed the harness."""
    return anvil[0].accounts[0]


@pytest.fixture(scope="module")
def target(anvil, project, deployer):
    return anvil[0].deploy(project.RecordingTarget, sender=deployer)


@pytest.fixture(scope="module")
def balance(anvil: tuple[AnvilChain, Any]) -> Callable[[str], int]:
    """An address's balance on the file's anvil."""
    chain = anvil[0]
    return lambda address: int(chain.rpc.request("eth_getBalance", [address, "latest"]), 16)


@pytest.fixture(scope="module")
def vault(anvil, project, deployer):
    return anvil[0].deploy(project.CalldataVault, sender=deployer)


def third_party_account(sessions, project, deployer, owner, name: str):
    """An account of test contract ``name`` (OpenZeppelin's ``AccountERC7579`` as it comes, or with the inferring
    reading) owned by ``owner`` through OwnerECDSAValidator, holding 5 ether, with the session module installed.
    Returns its address, a function granting a session on chain (the owner's operation) and one sending the
    owner's operation of any callData."""
    chain = sessions.h.chain
    owner_validator = chain.deploy(project.OwnerECDSAValidator, sender=deployer)
    account = chain.deploy(
        getattr(project, name),
        sessions.h.entry_point.address,
        owner_validator.address,
        bytes.fromhex(owner.address[2:]),
        sender=deployer,
    ).address
    sessions.h.fund(account, 5 * ETHER)

    def owner_call_data(call_data: bytes):
        op = sessions.h.op(account, call_data, key=KIND.nonce_key(owner_validator.address))
        return sessions.h.submit(sessions.h.sign_owner(op, owner))

    def owner_execute(calls: Call | list[Call]) -> None:
        receipt = owner_call_data(encode_execute(calls))
        assert receipt.success, receipt.reason

    owner_execute(KIND.install_validator_call(account, sessions.module.address))
    assert sessions.module.isInitialized(account)

    def grant(session: Session) -> None:
        owner_execute(
            Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
        )
        assert sessions.module.isSessionActive(account, session.session_id(account, sessions.epoch(account)))

    return account, grant, owner_call_data


@pytest.fixture
def inferring(sessions, project, deployer, owner):
    """An InferringERC7579Account (see :func:`third_party_account`)."""
    return third_party_account(sessions, project, deployer, owner, "InferringERC7579Account")


def withdrawal(to: str, amount: int) -> bytes:
    """The vault's withdrawal command: ``0x00000000 ‖ abi.encode(to, amount)``."""
    return bytes(4) + abi_encode(["address", "uint256"], [to, amount])


def single(target: str, value: int, data: bytes) -> bytes:
    """executionCalldata of one call, packed."""
    return bytes.fromhex(target[2:]) + value.to_bytes(32, "big") + data


def raw_execute(
    execution: bytes,
    length: int | None = None,
    tail: bytes = b"",
    pad: bytes | None = None,
    exec_type: int = 0,
) -> bytes:
    """``execute(single, execution)`` (default execution, or ``exec_type``): canonical head, ``length`` as
    executionCalldata's length word (its real length unless given), then ``execution``, its padding (zero bytes
    unless ``pad``), and ``tail``."""
    padding = bytes(-len(execution) % 32) if pad is None else pad
    return (
        bytes.fromhex("e9ae5c53")
        + bytes([0, exec_type])
        + bytes(30)
        + (0x40).to_bytes(32, "big")
        + (len(execution) if length is None else length).to_bytes(32, "big")
        + execution
        + padding
        + tail
    )


def test_bytes_an_inferring_account_reads_after_executionCalldata_never_reach_a_plain_transfer_target(
    sessions, module, balance, vault, inferring, owner, session_key, attacker
):
    """A session granted plain transfers to the vault (``Policy.transfer``: no calldata) sends a single call with
    empty data whose executionCalldata is followed by the rest of a withdrawal command: its 12 padding bytes are
    the command's first 12 (the zero selector and the address word's zero bytes), the bytes after them its last 56.
    The module judged a plain transfer; the account infers the call's data from its calldata's end and hands the
    vault the 68-byte withdrawal, paying the account's deposit to the attacker. The same bytes behind a length word
    cut short of them, and in a nonzero padding (a 12-byte call: a selector and 8 bytes, enough for a function
    without arguments), are refused as well; the plain transfer itself, as the account's own encoder makes it (no
    padding), still runs."""
    account, grant, owner_call_data = inferring
    # the account's deposit: a plain transfer, encoded without padding as the account's own encoder does (the
    # canonical padding would reach the vault as 12 zero bytes of calldata, which its fallback refuses)
    assert owner_call_data(raw_execute(single(vault.address, 2 * ETHER, b""), pad=b"")).success
    assert vault.deposits(account) == 2 * ETHER
    command = withdrawal(attacker, 2 * ETHER)
    assert command[:12] == bytes(12)  # what the padding of a 52-byte executionCalldata holds anyway
    attacks = {}
    for exec_type in (0, 1):
        attacks[f"bytes after executionCalldata, exec type {exec_type}"] = raw_execute(
            single(vault.address, 0, b""), tail=command[12:], exec_type=exec_type
        )
        attacks[f"a length word cut short, exec type {exec_type}"] = raw_execute(
            single(vault.address, 0, command), length=52, pad=b"", exec_type=exec_type
        )

    # the account as it is: whoever may make it run that callData takes the deposit (here the owner, to itself)
    assert owner_call_data(
        raw_execute(single(vault.address, 0, b""), tail=withdrawal(account, ETHER)[12:])
    ).success
    assert vault.deposits(account) == ETHER
    assert owner_call_data(raw_execute(single(vault.address, ETHER, b""), pad=b"")).success

    session = Session(
        session_key=session_key.address, permissions=(Policy.transfer(vault.address, value_limit=ETHER),)
    )
    grant(session)
    before = balance(attacker)
    for name, call_data in attacks.items():
        result = sessions.outcome(sessions.op(account, session_key, call_data=call_data, mode="use_with_key"))
        assert "AA23" in result and "MalformedExecution" in result, (name, result)
        # USE: the same refusal (a revert: the key is not the question)
        result = sessions.outcome(sessions.op(account, session_key, call_data=call_data))
        assert "AA23" in result and "MalformedExecution" in result, (name, result)
        # the SDK's decoder and checker refuse what the module refuses
        with pytest.raises(ExecuteDecodeError):
            decode_execute(call_data)
        with pytest.raises(ExecuteDecodeError):
            PolicyChecker(session, account, module.address).check(call_data, now=0)
    # a nonzero padding: 12 bytes of calldata the target would dispatch on
    padded = raw_execute(single(vault.address, 0, b""), pad=bytes.fromhex("3ccfd60b") + bytes(7) + b"\x01")
    result = sessions.outcome(sessions.op(account, session_key, call_data=padded, mode="use_with_key"))
    assert "AA23" in result and "MalformedExecution" in result, result
    with pytest.raises(ExecuteDecodeError):
        decode_execute(padded)
    assert balance(attacker) == before
    assert vault.deposits(account) == 2 * ETHER

    # the plain transfer itself, as the account's own encoder makes it, runs and deposits
    plain = raw_execute(single(vault.address, ETHER // 2, b""), pad=b"")
    assert sessions.outcome(sessions.op(account, session_key, call_data=plain)) == "ok"
    assert vault.deposits(account) == 2 * ETHER + ETHER // 2


def test_a_ruled_call_on_an_inferring_account_runs_as_judged_and_nothing_after_it(
    sessions, target, inferring, owner, session_key
):
    """Under ``amount <= 5``, ``other(1)`` canonically encoded runs on the inferring account (the target reads the
    judged word, the padding's zero bytes after it change nothing). ``other(1000)`` laid after executionCalldata, or
    behind a length word that stops at ``other(1)``, is handed on by this account as calldata after the judged call:
    refused, as every byte after executionCalldata but its zero padding is."""
    account, grant, _ = inferring
    session = Session(
        session_key=session_key.address,
        permissions=(Policy.call(target.address, "other(uint256 amount)", rules=[arg("amount") <= 5]),),
    )
    grant(session)
    allowed = target.other.encode_input(1)
    forbidden = target.other.encode_input(1000)
    calls_before = target.calls()
    assert sessions.outcome(sessions.op(account, session_key, Call.of(target.address, 0, allowed))) == "ok"
    assert target.calls() == calls_before + 1
    for call_data in (
        raw_execute(single(target.address, 0, allowed), tail=forbidden),
        raw_execute(single(target.address, 0, allowed + bytes(28) + forbidden), length=52 + 36, pad=b""),
    ):
        result = sessions.outcome(sessions.op(account, session_key, call_data=call_data, mode="use_with_key"))
        assert "AA23" in result and "MalformedExecution" in result, result
    assert target.calls() == calls_before + 1


# ------------------------------------------------------------------------------------------------------
# A granted target calling back into an account nobody on this project wrote
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reentrant(anvil, project, deployer):
    return anvil[0].deploy(project.Reentrant, sender=deployer)


def relay(reentrant, to: str, data: bytes) -> Call:
    return Call.of(reentrant.address, 0, reentrant.relay.encode_input(to, data))


@pytest.mark.parametrize("name", ["PlainERC7579Account", "InferringERC7579Account"])
def test_a_granted_target_calling_back_gets_nothing_from_a_third_party_account(
    sessions, project, deployer, entry_point, reentrant, owner, session_key, attacker, balance, name
):
    """Attack 118 on OpenZeppelin's ``AccountERC7579`` (as it comes, and with the inferring reading): a granted
    target that calls back, while the session's call runs, into the account's ``execute`` (1 ether to the attacker,
    in single and batch mode), ``installModule`` (a validator of its own), ``uninstallModule`` (the session module,
    whose ``onUninstall`` would end every session), ``executeFromExecutor``, an unknown selector (the account's
    fallback), the EntryPoint's ``handleOps`` with another operation of the session, and ``withdrawTo``. The account
    takes ``execute`` and module changes from the EntryPoint or itself only and ``executeFromExecutor`` from
    installed executors only, has no fallback handler, ``handleOps`` does not re-enter and a deposit is its owner's:
    every call back fails, and the session's own call runs as granted."""
    account, grant, owner_call_data = third_party_account(sessions, project, deployer, owner, name)
    # the payload pays out from a caller the account trusts: itself, in the owner's operation
    assert owner_call_data(encode_execute(Call.of(account, 0, encode_execute(Call.of(attacker, 1))))).success
    assert balance(attacker) == 1
    session = Session(
        session_key=session_key.address, permissions=(Permission(target=reentrant.address, selector=RELAY),)
    )
    grant(session)
    evil = sessions.h.chain.deploy(project.OwnerECDSAValidator, sender=deployer)
    inner = sessions.op(account, session_key, relay(reentrant, attacker, b""), lane=1)
    single = bytes.fromhex(attacker[2:]) + ETHER.to_bytes(
        32, "big"
    )  # executionCalldata: 1 ether to the attacker
    executor_call = keccak(b"executeFromExecutor(bytes32,bytes)")[:4] + abi_encode(
        ["bytes32", "bytes"], [encode_mode(0), single]
    )
    calls = [
        relay(reentrant, account, encode_execute(Call.of(attacker, ETHER))),
        relay(
            reentrant,
            account,
            encode_execute([Call.of(attacker, ETHER), Call.of(attacker, ETHER)], batch=True),
        ),
        relay(
            reentrant,
            account,
            KIND.install_validator_call(account, evil.address, bytes.fromhex(attacker[2:])).data,
        ),
        relay(reentrant, account, KIND.uninstall_validator_call(account, sessions.module.address).data),
        relay(reentrant, account, executor_call),
        relay(reentrant, account, b"\x13\x37\xc0\xde" + bytes(64)),
        relay(reentrant, entry_point.address, encode_handle_ops([inner.pack()], attacker)),
        relay(reentrant, entry_point.address, entry_point.withdrawTo.encode_input(attacker, 1)),
    ]
    before = balance(account)
    attempted = reentrant.attempted()
    succeeded = reentrant.succeeded()
    assert sessions.outcome(sessions.op(account, session_key, calls)) == "ok"
    assert (reentrant.attempted() - attempted, reentrant.succeeded() - succeeded) == (len(calls), 0)
    assert balance(attacker) == 1
    assert before - balance(account) < ETHER // 100  # the operation's gas, nothing more
    installed = AnvilContract(sessions.h.chain, account, getattr(project, name).contract_type)
    assert not installed.isModuleInstalled(1, evil.address, b"")
    assert installed.isModuleInstalled(1, sessions.module.address, b"")
    assert sessions.module.isSessionActive(account, session.session_id(account, sessions.epoch(account)))
    # the inner operation never ran: its lane's sequence is unused
    assert sessions.h.nonce(account, KIND.nonce_key(sessions.module.address, 1)) % 2**64 == 0
