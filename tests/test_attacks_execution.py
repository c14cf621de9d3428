"""Execution encodings against an ERC-7579 account nobody on this project wrote, whose single calls are read from the
packing ``target (20) ‖ value (32) ‖ data`` with the data's length inferred from where its calldata ends
(``contracts/test/InferringERC7579Account.sol``: OpenZeppelin's ``AccountERC7579`` with that one reading).

For the callData a canonical encoder makes, such an account runs the judged call followed by the zero bytes padding
executionCalldata to a word, which targets ignore. Whatever else the module let through after executionCalldata's
length (bytes after its padding, nonzero padding, a length word cut short of the bytes that follow) would reach the
target as calldata no permission describes: a permission for plain transfers would run a call. Operations are built
byte by byte, signed by the session key and sent to the real EntryPoint v0.7 ``handleOps``.
"""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope.checker import PolicyChecker
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute
from keyscope.policy import Policy, arg
from keyscope.session import Session
from support.session_fixtures import attacker_fixture  # noqa: F401 (fixture)

ETHER = 10**18


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, target, module):
    """The session-scoped fixtures this module uses, made before its own module-scoped victims: ape snapshots
    the chain per fixture scope and must not rebase them."""


@pytest.fixture(scope="module")
def vault(project, deployer):
    return project.CalldataVault.deploy(sender=deployer)


@pytest.fixture
def inferring(sessions, project, deployer, owner):
    """An InferringERC7579Account owned by ``owner`` (through OwnerECDSAValidator), holding 5 ether, with the
    session module installed; returns (account address, a function running the owner's calls)."""
    owner_validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    account = project.InferringERC7579Account.deploy(
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
    sessions, module, chain, vault, inferring, owner, session_key, attacker
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
    before = chain.provider.get_balance(attacker)
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
    assert chain.provider.get_balance(attacker) == before
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
