"""Session operations against ERC-7579 accounts nobody on this project wrote, whose ``execute`` reads the same bytes
otherwise than the session module does (``contracts/test/LaxDecodingERC7579Account.sol``): a batch read by the
offsets it names as Solady's ``LibERC7579`` and ``ERC7821`` read it (opData after the calls, ERC-7821's mode
selectors, target words called as they are, address(0) as the account), or decoded in memory by Solidity's
``abi.decode``; the EntryPoint's ``executeUserOp`` path run by self-delegatecall; and a module the account installs
as a fallback handler and an executor (``contracts/test/LegacyExecutionHandler.sol``), which takes the account's own
caller from the last 20 bytes of its calldata (ERC-2771).

Each layout is first sent as the owner's own operation, to show that the account runs the call the grant forbids
(a mint of 1,000 under ``amount <= 5``, here to the account itself); the session key then sends the same layout
with the mint to the attacker. Operations are built byte by byte and sent to the real EntryPoint v0.7
``handleOps``, on a fresh anvil of the file's own (ape's build of the contracts, the EntryPoint, the factory and the
module deployed there, with the in-process bundler); each test makes its own account there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope.checker import PolicyChecker
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute
from keyscope.hexutil import keccak
from keyscope.policy import Policy, arg
from keyscope.session import Permission, Session
from support.anvil_chain import AnvilChain
from support.anvil_fixtures import anvil_fixture, sessions_fixture  # noqa: F401 (fixtures)
from support.session_fixtures import attacker_fixture  # noqa: F401 (fixture)

ETHER = 10**18
READ_BY_OFFSETS = 0
READ_IN_MEMORY = 1
BATCH = bytes([1]) + bytes(31)
BATCH_TRY = bytes([1, 1]) + bytes(30)
EXECUTE = keccak(b"execute(bytes32,bytes)")[:4]
EXECUTE_USER_OP = keccak(
    b"executeUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
)[:4]
assert EXECUTE_USER_OP.hex() == "8dd7712f"  # IAccountExecute.executeUserOp, which the EntryPoint looks for
EXECUTE_BATCH = keccak(b"executeBatch((address,uint256,bytes)[])")[:4]
EXECUTE_FROM_EXECUTOR = keccak(b"executeFromExecutor(bytes32,bytes)")[:4]
EXECUTIONS = "(address,uint256,bytes)[]"


@pytest.fixture(scope="module")
def module(sessions: Any) -> Any:
    return sessions.module


@pytest.fixture(scope="module")
def deployer(anvil: tuple[AnvilChain, Any]) -> str:
    """The anvil's first development account, which deployed the harness."""
    return anvil[0].accounts[0]


@pytest.fixture(scope="module")
def token(anvil, project, deployer):
    return anvil[0].deploy(project.TestToken, sender=deployer)


def _deploy(sessions: Any, container: Any, *args: Any, sender: Any) -> Any:
    """``container`` deployed on the chain ``sessions`` runs on: this file's anvil, or ape's chain (another file's
    ``Lax``)."""
    chain = sessions.h.chain
    if isinstance(chain, AnvilChain):
        return chain.deploy(container, *args, sender=sender)
    return container.deploy(*args, sender=sender)


class Lax:
    """A LaxDecodingERC7579Account of ``owner`` holding 5 ether, with the session module installed."""

    def __init__(self, sessions, project, deployer, owner, reading: int) -> None:
        self.sessions = sessions
        self.owner = owner
        self.owner_validator = _deploy(sessions, project.OwnerECDSAValidator, sender=deployer)
        self.contract = _deploy(
            sessions,
            project.LaxDecodingERC7579Account,
            sessions.h.entry_point.address,
            self.owner_validator.address,
            bytes.fromhex(owner.address[2:]),
            reading,
            sender=deployer,
        )
        self.address = self.contract.address
        sessions.h.fund(self.address, 5 * ETHER)
        self.owner_execute(KIND.install_validator_call(self.address, sessions.module.address))
        assert sessions.module.isInitialized(self.address)

    def owner_call_data(self, call_data: bytes):
        """The owner's operation of ``call_data``: its receipt."""
        op = self.sessions.h.op(self.address, call_data, key=KIND.nonce_key(self.owner_validator.address))
        return self.sessions.h.submit(self.sessions.h.sign_owner(op, self.owner))

    def owner_execute(self, calls: Call | list[Call]) -> None:
        receipt = self.owner_call_data(encode_execute(calls))
        assert receipt.success, receipt.reason

    def grant(self, session: Session) -> None:
        module = self.sessions.module
        self.owner_execute(Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi())))
        assert module.isSessionActive(
            self.address, session.session_id(self.address, self.sessions.epoch(self.address))
        )


def mint_rule(token, session_key) -> Session:
    """``mint(to, amount)`` on the token with ``amount <= 5``."""
    return Session(
        session_key=session_key.address,
        permissions=(
            Policy.call(token.address, "mint(address to, uint256 amount)", rules=[arg("amount") <= 5]),
        ),
    )


def execute(mode: bytes, execution: bytes) -> bytes:
    """``execute(mode, execution)`` with a canonical head and zero padding."""
    return (
        EXECUTE
        + mode
        + (0x40).to_bytes(32, "big")
        + len(execution).to_bytes(32, "big")
        + execution
        + bytes(-len(execution) % 32)
    )


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def element(target: int, value: int, data: bytes, data_offset: int = 0x60) -> bytes:
    """One Execution's head and tail as the ABI lays them (target word as given, data offset as given)."""
    return word(target) + word(value) + word(data_offset) + word(len(data)) + data + bytes(-len(data) % 32)


def batch_layouts(token, to: str) -> dict[str, tuple[bytes, set[int], int]]:
    """executionCalldata layouts of a batch whose calls, read by the offsets they name, mint 1,000 to ``to`` (once,
    or twice where two offsets share the call), with the readings that run them and the amount they mint."""
    allowed = token.mint.encode_input(to, 1)
    forbidden = token.mint.encode_input(to, 1000)
    address = int(token.address, 16)
    canonical_one = abi_encode([EXECUTIONS], [[(token.address, 0, allowed)]])
    layouts: dict[str, tuple[bytes, set[int], int]] = {}
    # the one element offset points past the canonical element, at a forbidden one appended after it
    layouts["an element offset pointing at a call appended after the batch"] = (
        canonical_one[:64]
        + word(len(canonical_one) - 64)
        + canonical_one[96:]
        + element(address, 0, forbidden),
        {READ_BY_OFFSETS, READ_IN_MEMORY},
        1000,
    )
    # the canonical element's data offset points at forbidden data appended after its own (allowed) data
    head = element(address, 0, allowed)
    layouts["a call's data offset pointing at data appended after the batch"] = (
        word(0x20)
        + word(1)
        + word(0x20)
        + element(address, 0, allowed, data_offset=len(head))
        + word(len(forbidden))
        + forbidden
        + bytes(-len(forbidden) % 32),
        {READ_BY_OFFSETS, READ_IN_MEMORY},
        1000,
    )
    # two element offsets sharing one call: both point at the second (forbidden) element, none at the first
    two = abi_encode([EXECUTIONS], [[(token.address, 0, allowed), (token.address, 0, forbidden)]])
    second = int.from_bytes(two[96:128], "big")
    layouts["two element offsets sharing one call"] = (
        two[:64] + word(second) + word(second) + two[128:],
        {READ_BY_OFFSETS, READ_IN_MEMORY},
        2000,
    )
    # ERC-7821's optional opData: abi.encode(calls, opData), the first word 0x40
    layouts["opData after the calls (first word 0x40)"] = (
        abi_encode([EXECUTIONS, "bytes"], [[(token.address, 0, forbidden)], b"\x01" * 40]),
        {READ_BY_OFFSETS, READ_IN_MEMORY},
        1000,
    )
    # a target word with bits above the address: Solady's reader calls it as it is (the EVM keeps the address)
    dirty = bytearray(abi_encode([EXECUTIONS], [[(token.address, 0, forbidden)]]))
    dirty[96] = 0x01
    layouts["a target word with bits above the address"] = (bytes(dirty), {READ_BY_OFFSETS}, 1000)
    return layouts


@pytest.mark.parametrize("reading", [READ_BY_OFFSETS, READ_IN_MEMORY], ids=["by-offsets", "in-memory"])
def test_batches_an_offset_following_account_reads_otherwise_are_refused(
    sessions, project, deployer, module, token, owner, session_key, attacker, reading
):
    """Attack 244. On an account reading a batch by the offsets it names (as Solady's ``LibERC7579`` does) or with
    ``abi.decode`` in memory, an element offset or a call's data offset pointing at a forbidden call appended after
    the canonical one, two offsets sharing one call, ERC-7821's opData after the calls, and (for the offset reader)
    a dirty target word each make the account mint 1,000 (the owner's operation shows it). The session's operation
    of each, with default and with try execution, is refused, in USE and USE_WITH_KEY, by the module and by the
    SDK's decoder and checker; a canonical batch of allowed mints runs as judged."""
    lax = Lax(sessions, project, deployer, owner, reading)
    for name, (execution, readers, minted) in batch_layouts(token, lax.address).items():
        if reading not in readers:
            continue
        before = token.balanceOf(lax.address)
        receipt = lax.owner_call_data(execute(BATCH, execution))
        assert receipt.success, (name, receipt.reason)
        assert token.balanceOf(lax.address) - before == minted, name
    session = mint_rule(token, session_key)
    lax.grant(session)
    for name, (execution, readers, _) in batch_layouts(token, attacker).items():
        if reading not in readers:
            continue
        for batch_mode in (BATCH, BATCH_TRY):
            call_data = execute(batch_mode, execution)
            for mode in ("use", "use_with_key"):
                result = sessions.outcome(
                    sessions.op(lax.address, session_key, call_data=call_data, mode=mode)
                )
                assert "AA23" in result and "MalformedExecution" in result, (
                    name,
                    batch_mode[1],
                    mode,
                    result,
                )
            with pytest.raises(ExecuteDecodeError):
                decode_execute(call_data)
            with pytest.raises(ExecuteDecodeError):
                PolicyChecker(session, lax.address, module.address).check(call_data, now=0)
    assert token.balanceOf(attacker) == 0
    allowed = Call.of(token.address, 0, token.mint.encode_input(attacker, 1))
    assert sessions.outcome(sessions.op(lax.address, session_key, [allowed, allowed], batch=True)) == "ok"
    assert token.balanceOf(attacker) == 2


def erc7821_modes(token, to: str) -> dict[str, bytes]:
    """callData under the modes ERC-7821 reads (Solady's mask), each of which the offset reader runs."""
    forbidden = [(token.address, 0, token.mint.encode_input(to, 1000))]
    allowed = [(token.address, 0, token.mint.encode_input(to, 1))]
    with_op_data = BATCH[:6] + bytes.fromhex("78210001") + bytes(22)
    batches = BATCH[:6] + bytes.fromhex("78210002") + bytes(22)
    return {
        "mode selector 0x78210001, opData after the calls": execute(
            with_op_data, abi_encode([EXECUTIONS, "bytes"], [forbidden, b"\x01" * 40])
        ),
        "mode selector 0x78210002, a batch of batches": execute(
            batches, abi_encode(["bytes[]"], [[abi_encode([EXECUTIONS], [forbidden])]])
        ),
        "reserved mode bytes 2-5 set (ERC-7821 ignores them)": execute(
            BATCH[:2] + bytes.fromhex("deadbeef") + bytes(26), abi_encode([EXECUTIONS], [allowed])
        ),
        "free mode bytes 10-31 set (ERC-7821 ignores them)": execute(
            BATCH[:10] + b"\x07" * 22, abi_encode([EXECUTIONS], [allowed])
        ),
    }


def test_erc7821_modes_of_the_same_execute_selector_are_refused(
    sessions, project, deployer, module, token, owner, session_key, attacker
):
    """Attack 245. ERC-7821's ``execute(bytes32,bytes)`` has ERC-7579's selector and reads the mode otherwise: a
    mode selector of ``0x78210001`` (opData after the calls) or ``0x78210002`` (a batch of batches, each batch an
    executionCalldata of its own), bytes 2-5 and 10-31 ignored. The offset reader runs each (the owner's
    operation shows it: a batch of batches mints 1,000); the session's operations are refused on their mode, for
    an allowed call as for a forbidden one."""
    lax = Lax(sessions, project, deployer, owner, READ_BY_OFFSETS)
    for name, call_data in erc7821_modes(token, lax.address).items():
        receipt = lax.owner_call_data(call_data)
        assert receipt.success, (name, receipt.reason)
    assert token.balanceOf(lax.address) == 2 * 1000 + 2 * 1
    session = mint_rule(token, session_key)
    lax.grant(session)
    for name, call_data in erc7821_modes(token, attacker).items():
        for mode in ("use", "use_with_key"):
            result = sessions.outcome(sessions.op(lax.address, session_key, call_data=call_data, mode=mode))
            assert "AA23" in result and "UnsupportedExecutionMode" in result, (name, mode, result)
        with pytest.raises(ExecuteDecodeError):
            decode_execute(call_data)
        with pytest.raises(ExecuteDecodeError):
            PolicyChecker(session, lax.address, module.address).check(call_data, now=0)
    assert token.balanceOf(attacker) == 0


def test_every_call_type_but_single_and_batch_is_refused_whatever_its_execution(
    sessions, project, deployer, token, owner, session_key, attacker
):
    """The mode's call type (its first byte) must be single (0x00) or batch (0x01): delegatecall (0xff), static call
    (0xfe) and any other type are refused on their mode even when executionCalldata is a well-formed batch of an
    allowed call, the one shape whose calls the module could judge. Without the check such an operation passes as
    the batch it looks like, and the account runs it as its call type says (for delegatecall: its own code run at
    an address taken from the execution's first 20 bytes). Batch mode with the same bytes runs the allowed call."""
    lax = Lax(sessions, project, deployer, owner, READ_BY_OFFSETS)
    lax.grant(mint_rule(token, session_key))
    allowed = encode_execute([Call.of(token.address, 0, token.mint.encode_input(attacker, 1))], batch=True)
    assert allowed[4] == 0x01
    for call_type in (0xFF, 0xFE, 0x02, 0x80):
        call_data = allowed[:4] + bytes([call_type]) + allowed[5:]
        for mode in ("use", "use_with_key"):
            result = sessions.outcome(sessions.op(lax.address, session_key, call_data=call_data, mode=mode))
            assert "AA23" in result and "UnsupportedExecutionMode" in result, (hex(call_type), mode, result)
    assert token.balanceOf(attacker) == 0
    assert sessions.outcome(sessions.op(lax.address, session_key, call_data=allowed)) == "ok"
    assert token.balanceOf(attacker) == 1


@pytest.fixture
def handler_account(sessions, project, deployer, owner) -> Callable[..., tuple[Lax, object]]:
    """A LaxDecodingERC7579Account with a LegacyExecutionHandler installed as the fallback handler of
    ``executeBatch`` and, unless ``executor`` is false, as an executor."""

    def make(executor: bool = True) -> tuple[Lax, object]:
        lax = Lax(sessions, project, deployer, owner, READ_BY_OFFSETS)
        handler = sessions.h.chain.deploy(
            project.LegacyExecutionHandler, sessions.h.entry_point.address, sender=deployer
        )
        install = lax.contract.installModule
        calls = [Call.of(lax.address, 0, install.encode_input(3, handler.address, EXECUTE_BATCH))]
        if executor:
            calls.append(Call.of(lax.address, 0, install.encode_input(2, handler.address, b"")))
        lax.owner_execute(calls)
        assert lax.contract.isModuleInstalled(3, handler.address, EXECUTE_BATCH)
        assert bool(lax.contract.isModuleInstalled(2, handler.address, b"")) is executor
        return lax, handler

    return make


def routed_entry_points(lax: Lax, token, to: str) -> dict[str, bytes]:
    """callData of the account's other entry points, each running a mint of 1,000 to ``to``."""
    forbidden = token.mint.encode_input(to, 1000)
    inner = encode_execute(Call.of(token.address, 0, forbidden))
    return {
        "executeUserOp wrapping execute": EXECUTE_USER_OP + inner,
        "executeBatch, routed to the fallback handler": EXECUTE_BATCH
        + abi_encode([EXECUTIONS], [[(token.address, 0, forbidden)]]),
    }


def test_entry_points_the_account_routes_elsewhere_are_refused(
    sessions, handler_account, module, token, session_key, attacker
):
    """Attack 246. The account runs callData that is not ``execute``: ``executeUserOp`` (the EntryPoint hands the
    account the operation and it runs ``callData[4:]`` on itself), and ``executeBatch``, a selector its fallback
    routes to a handler that runs the batch through ``executeFromExecutor`` (the handler trusts the EntryPoint,
    which the account names as its caller in the 20 bytes it appends). The owner's operations show each mints
    1,000; the session's are refused on their selector (and ``executeFromExecutor`` itself, which the account
    takes from executors only)."""
    lax, _ = handler_account()
    for name, call_data in routed_entry_points(lax, token, lax.address).items():
        before = token.balanceOf(lax.address)
        receipt = lax.owner_call_data(call_data)
        assert receipt.success, (name, receipt.reason)
        assert token.balanceOf(lax.address) - before == 1000, name
    session = mint_rule(token, session_key)
    lax.grant(session)
    attempts = routed_entry_points(lax, token, attacker)
    attempts["executeFromExecutor"] = (
        EXECUTE_FROM_EXECUTOR
        + encode_execute(Call.of(token.address, 0, token.mint.encode_input(attacker, 1000)))[4:]
    )
    for name, call_data in attempts.items():
        selector = "0x" + call_data[:4].hex()
        for mode in ("use", "use_with_key"):
            result = sessions.outcome(sessions.op(lax.address, session_key, call_data=call_data, mode=mode))
            assert "AA23" in result and f"UnsupportedSelector(selector={selector})" in result, (
                name,
                mode,
                result,
            )
        with pytest.raises(ExecuteDecodeError):
            decode_execute(call_data)
        with pytest.raises(ExecuteDecodeError):
            PolicyChecker(session, lax.address, module.address).check(call_data, now=0)
    assert token.balanceOf(attacker) == 0


def test_a_call_to_the_fallback_handler_naming_the_entry_point_as_its_caller_gets_nothing(
    sessions, handler_account, token, session_key, attacker
):
    """Attack 247. A fallback handler takes the account's own caller from the last 20 bytes of its calldata, which
    the account appends when it routes a selector to it; a call the account makes to the handler directly carries
    whatever its data ends with. The owner's operation calling the handler with the EntryPoint's address appended
    runs the batch (a mint of 1,000), without it is refused: that is the session's way in, were it granted the
    handler. The handler is also the account's executor, so the grant is refused when the session is enabled
    (``PermissionTargetIsModule``, module type 2). Installed as a fallback handler only, the account routing
    ``executeBatch`` to it, the grant is refused as that selector's fallback handler (module type 3, attack 257);
    were it enabled, the handler would still run nothing on the account: ``executeFromExecutor`` takes executors
    only."""
    entry_point = sessions.h.entry_point.address
    lax, handler = handler_account()

    def impersonation(to: str) -> bytes:
        batch = handler.executeBatch.encode_input([(token.address, 0, token.mint.encode_input(to, 1000))])
        return batch + bytes.fromhex(entry_point[2:])

    receipt = lax.owner_call_data(encode_execute(Call.of(handler.address, 0, impersonation(lax.address))))
    assert receipt.success, receipt.reason
    assert token.balanceOf(lax.address) == 1000
    plain = handler.executeBatch.encode_input(
        [(token.address, 0, token.mint.encode_input(lax.address, 1000))]
    )
    assert not lax.owner_call_data(encode_execute(Call.of(handler.address, 0, plain))).success
    assert token.balanceOf(lax.address) == 1000

    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=EXECUTE_BATCH),),
    )
    enable = Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
    assert not lax.owner_call_data(encode_execute(enable)).success
    assert not sessions.module.isSessionActive(
        lax.address, session.session_id(lax.address, sessions.epoch(lax.address))
    )
    node = sessions.h.chain
    with pytest.raises(Exception) as refused:
        node.call({"from": lax.address, "to": sessions.module.address, "data": "0x" + enable.data.hex()})
    assert (
        "PermissionTargetIsModule" in _decoded(refused.value)
        and handler.address[2:].lower() in _decoded(refused.value).lower()
    )

    # a fallback handler only: the account routes executeBatch to it, the grant is refused as its handler
    lax, handler = handler_account(executor=False)
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=handler.address, selector=EXECUTE_BATCH),),
    )
    enable = Call.of(sessions.module.address, 0, sessions.module.enableSession.encode_input(session.as_abi()))
    assert not lax.owner_call_data(encode_execute(enable)).success
    with pytest.raises(Exception) as refused:
        node.call({"from": lax.address, "to": sessions.module.address, "data": "0x" + enable.data.hex()})
    assert (
        _decoded(refused.value)
        == f"PermissionTargetIsModule(permissionIndex=0, target={handler.address}, moduleType=3)"
    ), _decoded(refused.value)
    used = sessions.outcome(
        sessions.op(lax.address, session_key, Call.of(handler.address, 0, impersonation(attacker)))
    )
    assert "AA24" in used, used
    assert token.balanceOf(attacker) == 0


def _decoded(error: Exception) -> str:
    from keyscope.revert import describe_revert
    from test_differential import revert_bytes

    return describe_revert(revert_bytes(error))
