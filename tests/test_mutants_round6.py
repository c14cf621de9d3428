"""The sixth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let pass
in the code the fifth round's changes brought, on the Python side.

Pinned here on ape's chain: an install over sessions enabled while the module was not installed, at the last epoch,
moves the account one ahead, to epoch 0 (an unchecked wrap), and does not revert.

Pinned here on a test file's own anvil (the EVM's PREVRANDAO there is each block's ``mixHash``, never 0 as on ape's
py-evm chain): the epoch ``invalidateAllSessions()`` draws is the documented hash, each of its four terms counted.

Pinned here, without a chain:

* the EIP-7702 upgrade's batch (:meth:`EOAOwner._setup <keyscope.eoa.EOAOwner._setup>`): the delegate forgets every
  module and installs the session module again whenever the EOA is being delegated (even when the delegate's storage
  lists the module already: other code may have written that list), installs it when the storage does not list it,
  then moves the module to the epoch it draws, never the one the EOA is at (drawn again then), and only then enables
  the sessions, whose ids name that drawn epoch;
* :func:`~keyscope.module.unpredictable_epoch` draws from the whole 32 bits, and
  :func:`~keyscope.module.invalidate_all_sessions_data` refuses what is no uint32 (a bool, 2**32, a negative) itself;
* :meth:`Endpoints.check_bundler_chain <keyscope.endpoints.Endpoints.check_bundler_chain>` refuses a bundler of
  another chain before anything is sent, says nothing and asks again when the bundler could not be reached, and says
  nothing for good when it answered no chain id;
* a :class:`~keyscope.sponsor.ChainClock` counts windows from the later of the machine's time and the chain's, and
  says what an ``accountId()`` revert decodes to, a 64-byte answer in full and a 65-byte one cut, an empty answer as
  no data (:func:`~keyscope.accounts.detect.account_id_said`), and a refusal of an account that takes no validators
  says "neither" only when ``accountId()`` reverted without data;
* the checker's dirty-word refusal names an address rule's type ``address`` only where the function's signature
  says the argument is an address: a ``uint160`` argument stays a ``uint160``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope import eoa as eoa_module
from keyscope.accounts.capabilities import refuse_without_validators
from keyscope.accounts.delegate import KeyscopeDelegateKind
from keyscope.accounts.detect import NO_ACCOUNT_ID, account_id_said
from keyscope.bundler import BundlerClient
from keyscope.chain import Chain
from keyscope.checker import CallRefusedError, PolicyChecker
from keyscope.endpoints import Endpoints
from keyscope.eoa import DelegationState, EOAOwner
from keyscope.errors import (
    BadInputError,
    CallRevertedError,
    ConfigurationError,
    KeyscopeError,
    TransportError,
    UnsupportedAccountError,
)
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address
from keyscope.module import (
    INVALIDATE_ALL_SESSIONS,
    INVALIDATE_ALL_SESSIONS_AT,
    enable_session_data,
    invalidate_all_sessions_data,
    unpredictable_epoch,
)
from keyscope.policy import Policy, arg
from keyscope.revert import describe_revert
from keyscope.selectors import RESET_MODULES
from keyscope.session import Session
from keyscope.signing import LocalSigner
from keyscope.sponsor import ChainClock
from support.anvil_chain import anvil_chain
from support.anvil_harness import anvil_sessions

EOA = to_address("0x" + "e0" * 20)
MODULE = to_address("0x" + "5e" * 20)
DELEGATE = to_address("0x" + "de" * 20)
OTHER_DELEGATE = to_address("0x" + "0d" * 20)
TARGET = to_address("0x" + "7a" * 20)
INSTALL_MODULE = keccak(b"installModule(uint256,address,bytes)")[:4]
T0 = 1_700_000_000


def test_the_drawn_epoch_is_the_hash_of_the_previous_block_prevrandao_the_account_and_its_epoch(
    project: Any,
) -> None:
    """``invalidateAllSessions()`` moves the account to ``uint32(keccak256(abi.encode(blockhash(n - 1), prevrandao,
    account, epoch)))`` for the block ``n`` that runs it: without the previous block's hash or PREVRANDAO the epoch is
    known before that block (a grant signed ahead of time for it comes to life, attack 319); without the account's
    epoch a second draw in a block lands where the first did (then one ahead: predictable). Drawn twice from an epoch
    other than 0, in blocks of different PREVRANDAO."""
    with anvil_chain() as chain:
        sessions = anvil_sessions(chain, project, {"epochOf": ("epochOf(address)", ["uint32"])})
        owner = LocalSigner.generate()
        account = sessions.account(owner)
        module = sessions.module.address
        sessions.h.owner_execute(
            account, owner, Call.of(module, 0, invalidate_all_sessions_data(123_456_789))
        )
        randaos = set()
        for _ in range(2):
            before = int(sessions.module.epochOf(account))
            receipt = sessions.h.owner_execute(account, owner, Call.of(module, 0, INVALIDATE_ALL_SESSIONS))
            block = chain.rpc.request("eth_getBlockByNumber", [hex(receipt.block_number), False])
            randaos.add(block["mixHash"])
            drawn = keccak(
                abi_encode(
                    ["bytes32", "uint256", "address", "uint32"],
                    [bytes.fromhex(block["parentHash"][2:]), int(block["mixHash"], 16), account, before],
                )
            )
            assert int(sessions.module.epochOf(account)) == int.from_bytes(drawn[-4:], "big"), (before, block)
        assert before != 123_456_789 and len(randaos) == 2, (before, randaos)


def test_an_install_over_leftovers_at_the_last_epoch_wraps_to_epoch_0(
    sessions: Any, project: Any, deployer: Any, target: Any
) -> None:
    """A deployment of the module the account has not installed takes its calls all the same: the account (its
    owner) moves there to epoch 2**32 - 1 and enables a session, then installs it. ``onInstall`` clears what was
    written before and moves one ahead of the epoch the account is at, which from the last epoch is 0: the install
    succeeds (an overflow there would make the module impossible to install for that account), the session is dead
    and the account stands at epoch 0."""
    owner = LocalSigner.generate()
    account = sessions.account(owner)
    second = project.SessionKeyValidator.deploy(sender=deployer)
    left = Session(
        session_key=to_address("0x" + "33" * 20), permissions=(Policy.call(target.address, "other(uint256)"),)
    )
    last = (1 << 32) - 1
    sessions.h.owner_execute(
        account,
        owner,
        [
            Call.of(second.address, 0, invalidate_all_sessions_data(last)),
            Call.of(second.address, 0, enable_session_data(left)),
        ],
    )
    left_id = left.session_id(account, last)
    assert int(second.epochOf(account)) == last and second.isSessionActive(account, left_id)
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, second.address))
    assert second.isInitialized(account) and int(second.epochOf(account)) == 0
    assert not second.isSessionActive(account, left_id)


def _owner() -> EOAOwner:
    """Just what :meth:`EOAOwner._setup` reads of its owner: the network's module, the EOA, keyscope's delegate and
    the delegate's account kind (no chain is asked)."""
    return cast(
        EOAOwner,
        SimpleNamespace(
            network=SimpleNamespace(module=MODULE),
            account=EOA,
            delegate=DELEGATE,
            kind=KeyscopeDelegateKind(DELEGATE),
        ),
    )


def _state(*, delegate: str | None, registered: bool, epoch: int = 41) -> DelegationState:
    return DelegationState(
        delegate=delegate,
        transaction_nonce=3,
        epoch=epoch,
        module_initialized=registered,
        module_registered=registered,
    )


def _draws(monkeypatch: pytest.MonkeyPatch, *epochs: int) -> None:
    """Make the upgrade draw ``epochs`` in turn."""
    drawn: Iterator[int] = iter(epochs)
    monkeypatch.setattr(eoa_module, "unpredictable_epoch", lambda: next(drawn))


def _setup(state: DelegationState, sessions: tuple[Session, ...]) -> tuple[list[Call], bool, int]:
    return EOAOwner._setup(_owner(), state, sessions)


def _install() -> Call:
    return KeyscopeDelegateKind(DELEGATE).install_validator_call(EOA, MODULE, b"")


SESSIONS = (
    Session(session_key=to_address("0x" + "11" * 20), permissions=(Policy.call(TARGET, "mint()"),)),
    Session(session_key=to_address("0x" + "22" * 20), permissions=(Policy.call(TARGET, "burn()"),)),
)


@pytest.mark.parametrize(
    ("delegate", "registered"),
    [(None, False), (OTHER_DELEGATE, False), (OTHER_DELEGATE, True), (DELEGATE, False), (DELEGATE, True)],
)
def test_the_upgrade_resets_installs_moves_to_the_drawn_epoch_then_enables(
    monkeypatch: pytest.MonkeyPatch, delegate: str | None, registered: bool
) -> None:
    """Whatever the EOA's state, the batch ends with ``invalidateAllSessions(drawn)`` then the sessions' grants; an
    EOA being delegated (no code, or another delegate's) is reset and gets the module installed even when its storage
    lists the module already; one delegating to keyscope's delegate already gets the install only when the module is
    not listed; the epoch returned is the drawn one, not the next after the EOA's."""
    _draws(monkeypatch, 0x9E3779B9)
    calls, delegating, epoch = _setup(_state(delegate=delegate, registered=registered), SESSIONS)
    assert delegating is (delegate != DELEGATE)
    assert epoch == 0x9E3779B9
    expected: list[Call] = []
    if delegating:
        expected.append(Call(EOA, 0, RESET_MODULES))
    if delegating or not registered:
        expected.append(_install())
        assert expected[-1].data[:4] == INSTALL_MODULE
    expected.append(Call(MODULE, 0, INVALIDATE_ALL_SESSIONS_AT + abi_encode(["uint32"], [0x9E3779B9])))
    expected.extend(Call(MODULE, 0, enable_session_data(session)) for session in SESSIONS)
    assert calls == expected


def test_the_upgrade_draws_again_an_epoch_equal_to_the_eoa_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module refuses the epoch the account is at (``EpochNotMoved``), which would fail the whole upgrade: a draw
    equal to it is drawn again, as many times as it comes."""
    _draws(monkeypatch, 41, 41, 7)
    calls, _, epoch = _setup(_state(delegate=DELEGATE, registered=True, epoch=41), SESSIONS[:1])
    assert epoch == 7
    assert calls == [
        Call(MODULE, 0, invalidate_all_sessions_data(7)),
        Call(MODULE, 0, enable_session_data(SESSIONS[0])),
    ]


def test_the_upgrade_draws_again_an_epoch_an_install_over_leftovers_moves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An install over sessions the module kept while it was not installed moves the account one epoch ahead before
    the batch's invalidation runs, which would then be refused (``EpochNotMoved``) if it named that epoch: a draw
    of the epoch after the EOA's is drawn again too, wrapping at 2**32."""
    _draws(monkeypatch, 42, 7)
    calls, _, epoch = _setup(_state(delegate=DELEGATE, registered=False, epoch=41), SESSIONS[:1])
    assert epoch == 7
    assert calls[-2:] == [
        Call(MODULE, 0, invalidate_all_sessions_data(7)),
        Call(MODULE, 0, enable_session_data(SESSIONS[0])),
    ]
    _draws(monkeypatch, 0, 5)
    assert _setup(_state(delegate=DELEGATE, registered=False, epoch=2**32 - 1), SESSIONS[:1])[2] == 5


def test_an_epoch_is_drawn_from_all_32_bits() -> None:
    """The upgrade's epoch is what a grant signed ahead of time would have to guess: 64 draws reach the upper half
    of the 32 bits (a chance of 2**-64 to fail by luck) and are nearly all distinct."""
    drawn = [unpredictable_epoch() for _ in range(64)]
    assert all(0 <= epoch < 1 << 32 for epoch in drawn)
    assert any(epoch >= 1 << 31 for epoch in drawn), drawn
    assert len(set(drawn)) >= 62, drawn


@pytest.mark.parametrize("epoch", [True, False, 1 << 32, -1, 2.0, "7"])
def test_an_epoch_that_is_no_uint32_is_refused_as_bad_input(epoch: Any) -> None:
    """``invalidate_all_sessions_data`` says what an epoch is before any encoder sees the value: a bool (an int to
    Python, which would encode as 0 or 1), 2**32 and -1 (out of uint32's range), a float or a string."""
    with pytest.raises(BadInputError, match="an epoch is a whole number from 0 to 4294967295"):
        invalidate_all_sessions_data(epoch)


def test_the_epoch_s_range_ends_are_encoded() -> None:
    for epoch in (0, (1 << 32) - 1):
        assert invalidate_all_sessions_data(epoch) == INVALIDATE_ALL_SESSIONS_AT + epoch.to_bytes(32, "big")


def test_a_dirty_uint160_argument_is_said_to_be_a_uint160_not_an_address() -> None:
    """An address rule has uint160's type code, and the refusal calls the type ``address`` only where the function
    says the argument is one: a function taking a ``uint160`` gets ``uint160``."""
    checker = PolicyChecker(
        Session(
            session_key=to_address("0x" + "11" * 20),
            permissions=(Policy.call(TARGET, "set(uint160 id)", rules=[arg("id") != 5]),),
        ),
        EOA,
        MODULE,
    )
    data = keccak(b"set(uint160)")[:4] + (1 << 170 | 5).to_bytes(32, "big")
    with pytest.raises(CallRefusedError) as refused:
        checker.check(encode_execute(Call(TARGET, 0, data)), now=T0)
    said = str(refused.value)
    assert refused.value.reason == "NonCanonicalArgument", said
    assert "argument `id` is a uint160, but its word" in said, said
    assert "not a canonical uint160 encoding" in said and "canonical address" not in said, said


class _Bundler(BundlerClient):
    """A bundler client whose ``eth_chainId`` answers are scripted (an exception is raised), kept once answered as
    the real client keeps them; ``asked`` counts the questions."""

    def __init__(self, *answers: int | Exception) -> None:
        super().__init__("http://127.0.0.1:9")
        self.answers = list(answers)
        self.asked = 0
        self.kept: int | None = None

    def chain_id(self) -> int:
        if self.kept is not None:
            return self.kept
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.kept = answer
        return answer


def _endpoints(bundler: _Bundler) -> Endpoints:
    return Endpoints(
        chain=cast(Chain, SimpleNamespace(chain_id=lambda: 31337)), bundler=bundler, module=MODULE
    )


def test_a_bundler_of_another_chain_is_refused_before_anything_is_sent() -> None:
    bundler = _Bundler(1)
    with pytest.raises(ConfigurationError) as refused:
        _endpoints(bundler).check_bundler_chain()
    said = str(refused.value)
    assert "serves chain 1, but the node is chain 31337: nothing was sent to it" in said, said
    same = _Bundler(31337)
    net = _endpoints(same)
    net.check_bundler_chain()
    net.check_bundler_chain()
    assert same.asked == 1


def test_a_bundler_not_reached_is_asked_again_and_one_that_answers_no_chain_id_is_not() -> None:
    """Not reached, the check says nothing (the operation's own request says so) and asks again before the next
    operation: a bundler of another chain reached then is refused. One that answered without a chain id (an error,
    junk) is not asked again: the refusal path cannot tell either."""
    unreached = _Bundler(TransportError("connection refused"), 1)
    net = _endpoints(unreached)
    net.check_bundler_chain()
    with pytest.raises(ConfigurationError, match="serves chain 1"):
        net.check_bundler_chain()
    assert unreached.asked == 2
    mute = _Bundler(KeyscopeError("eth_chainId answered 'banana'"), 1)
    net = _endpoints(mute)
    net.check_bundler_chain()
    net.check_bundler_chain()
    assert mute.asked == 1


def test_a_chain_clock_counts_from_the_later_of_the_machine_s_time_and_the_chain_s() -> None:
    """A node an hour behind: windows still start from the machine's time (a bundler judges by its wall clock), and
    :meth:`ChainClock.chain_time` is the chain's alone; a node an hour ahead: windows start from the chain's time."""
    for offset in (-3600, 3600):
        stamp = int(time.time()) + offset
        clock = ChainClock(cast(Chain, SimpleNamespace(block_timestamp=lambda stamp=stamp: stamp)))
        before = time.time()
        now = clock()
        assert now >= stamp and now >= before and clock.chain_time() == stamp
        assert now < max(stamp, before) + 60


def _said(answer: bytes | Exception) -> str:
    """What :func:`account_id_said` says of an account whose ``accountId()`` answers ``answer`` (raised when an
    exception)."""

    def call(to: str, data: bytes) -> bytes:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return account_id_said(cast(Chain, SimpleNamespace(call=call)), EOA)


def test_what_an_account_id_said_is_shown_as_decoded_or_as_hex() -> None:
    """A revert with an ``Error(string)`` names its hex and the string it decodes to; one with no data is
    :data:`NO_ACCOUNT_ID`; an empty answer says it returns no data; an answer of 64 bytes is shown whole, one of 65 is
    cut at 64 and says so."""
    reason = keccak(b"Error(string)")[:4] + abi_encode(["string"], ["no id here"])
    said = _said(CallRevertedError("eth_call", EOA, reason, describe_revert(reason)))
    assert (
        said
        == f"{NO_ACCOUNT_ID} (the call reverts with 0x{reason[:64].hex()}… (the first 64 of 100 bytes): no id here)"
    )
    assert _said(CallRevertedError("eth_call", EOA, b"", "(no revert data)")) == NO_ACCOUNT_ID
    assert _said(b"") == f"{NO_ACCOUNT_ID} (the call returns no data)"
    whole, cut = b"\x01" * 64, b"\x02" * 65
    assert _said(whole).startswith(
        f"answers accountId() with 0x{whole.hex()} (64 bytes), which is no ABI-encoded"
    )
    assert _said(cut).startswith(
        f"answers accountId() with 0x{cut[:64].hex()}… (the first 64 of 65 bytes) (65 bytes), which is no"
    )


def test_an_account_without_validators_is_said_to_answer_neither_only_when_its_account_id_reverts_bare() -> (
    None
):
    """:func:`refuse_without_validators`: ``supportsModule(1)`` answers no; an ``accountId()`` reverting without data
    makes the account one that "answers neither accountId() nor supportsModule(1) with a yes", one answering junk is
    shown with that junk."""
    junk = b"\x07" * 32

    def refusal(answer: bytes | None) -> str:
        def call(to: str, data: bytes) -> bytes:
            if data[:4] == keccak(b"accountId()")[:4]:
                if answer is None:
                    raise CallRevertedError("eth_call", to, b"", "(no revert data)")
                return answer
            return bytes(32)  # supportsModule(1): no

        with pytest.raises(UnsupportedAccountError) as refused:
            refuse_without_validators(cast(Chain, SimpleNamespace(call=call)), EOA)
        return str(refused.value)

    assert "it answers neither accountId() nor supportsModule(1) with a yes." in refusal(None)
    said = refusal(junk)
    assert f"it answers accountId() with 0x{junk.hex()} (32 bytes), which is no ABI-encoded string" in said, (
        said
    )
    assert "and does not answer supportsModule(1) with a yes." in said and "neither" not in said, said
