"""A leaked session key, and a bundler respelling what it relays, against ERC-7579 accounts nobody on this project
wrote (attacks 393 onwards).

The premises of a session's bounds on an account keyscope has no adapter of its own for (docs/accounts.md): the
account hands the EntryPoint the module's validation data as it is, and hands the module its caller as ERC-1271's
``sender``. The dapp's SDK asks them of a session's first operation and signature (attacks 352, 353), which a leaked
key does not need; the owner's grant is where keyscope can still refuse such an account, and now does: the account
is asked with ``eth_call`` in which the module's address runs a probe validator (a state override), through a
forwarder, so that the account's caller is neither the call's origin nor the account. Through a real anvil and Alto.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope import Policy as SdkPolicy
from keyscope import SessionKey, connect
from keyscope.accounts import ERC7579AccountKind
from keyscope.accounts.premises import refuse_broken_premises
from keyscope.chain import Web3Chain
from keyscope.checker import PolicyChecker
from keyscope.errors import AccountPremiseWarning, AccountSetupError
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute
from keyscope.hexutil import keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.policy import Policy, arg
from keyscope.session import Session
from keyscope.signing import LocalSigner
from support.permit_types import LIMIT, PERMIT_SINGLE_TYPES, ROUTER
from support.sdk import install_asking_nothing
from support.session_fixtures import attacker_fixture  # noqa: F401 (fixture)
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    VALIDATOR_PREFIX_STRIPPED,
    deploy_owner_validator,
    deploy_variant,
    entry_point_nonce,
    stack_fixture,
)
from support.victims import deploy as deploy_victim
from test_attacks_review_j import foreign_account

ETHER = 10**18
EXECUTE = keccak(b"execute(bytes32,bytes)")[:4]
MINT = keccak(b"mint(address,uint256)")[:4]


def _mint(stack: LocalStack) -> SdkPolicy:
    return SdkPolicy.call(
        stack.nft, "safeMint(address to)", rules=[arg("to") == LocalSigner.generate().address]
    )


def _permit2(stack: LocalStack, chain_id: int) -> SdkPolicy:
    permits = deploy_victim(stack, "SignedPermits")
    return SdkPolicy.typed_data(
        {"name": "Permit2", "chainId": chain_id, "verifyingContract": permits},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") <= LIMIT, arg("spender") == ROUTER],
    )


@pytest.mark.e2e
@pytest.mark.parametrize("onchain", [False, True], ids=["offchain", "onchain"])
def test_owner_grant_refuses_an_account_that_drops_the_module_s_window_before_signing(
    stack: LocalStack, onchain: bool
) -> None:
    """Attack 393. The owner's grant on an account that hands the EntryPoint its own success for the module's
    (``WindowDroppingERC7579Account``) was signed, and the session's key, leaked, ran it past its window (attack
    352's premise test). The grant is refused before the owner's key signs, off-chain and on-chain, naming the
    window the account answered; fails without the check: the grant is returned."""
    account, _, _, owner = foreign_account(stack, "WindowDroppingERC7579Account")
    assert type(owner.kind) is ERC7579AccountKind
    # installed by an owner operation of the owner's own making: install_sessions refuses the account (attack 417)
    install_asking_nothing(owner, stack.module)
    assert owner.supports_sessions()
    lane = owner.kind.nonce_key(None)
    sent = entry_point_nonce(stack, account, lane)
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600, onchain=onchain)
    said = str(refused.value)
    assert "validation data as it is" in said and "validUntil 0 (no end)" in said, said
    assert "Nothing was signed" in said, said
    assert refused.value.account == account
    assert entry_point_nonce(stack, account, lane) == sent  # no grant operation sent


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["ZeroSenderERC7579Account", "OriginSenderERC7579Account"])
def test_owner_grant_of_signing_permissions_refuses_an_account_not_passing_its_caller_as_sender(
    stack: LocalStack, name: str
) -> None:
    """Attack 394. An account asking its validators with the zero address as ``sender`` (attack 353's), or with the
    transaction's origin (which an ``eth_call`` from an address cannot tell from its caller: attack 353's residual),
    lets its own modules take a session's signature as the owner's. The owner's grant of signing permissions there
    is refused before signing (the probe asks through a forwarder, from another origin); a grant of calls only is
    not concerned and is signed. Fails without the check: the grant is returned."""
    _, _, net, owner = foreign_account(stack, name)
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], typed_data=[_permit2(stack, net.chain_id)])
    said = str(refused.value)
    assert "caller as ERC-1271's sender" in said and "Nothing was signed" in said, said
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccountPremiseWarning)
        grant = owner.grant(SessionKey.generate(), [_mint(stack)])
    assert grant.owner_signature


@pytest.mark.e2e
def test_an_account_keeping_both_premises_is_granted_without_a_word(stack: LocalStack) -> None:
    """The control: OpenZeppelin's ``AccountERC7579`` as it comes hands on the probe's window and its caller, and
    the owner's grant of calls and of a permit signature goes through with no warning about the account."""
    _, _, net, owner = foreign_account(stack, "PlainERC7579Account")
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccountPremiseWarning)
        grant = owner.grant(SessionKey.generate(), [_mint(stack)], typed_data=[_permit2(stack, net.chain_id)])
    assert grant.owner_signature


@pytest.mark.e2e
def test_the_grant_is_refused_before_the_module_is_installed_too(stack: LocalStack) -> None:
    """Attack 395. Before the module is installed the account cannot route a question to it; the owner's validator,
    which the generic adapter needs installed, is asked in its place (its code replaced by the probe's for the
    call): a grant made before installing the module on an account that drops the window is refused as after.
    Fails with the module's address alone asked: the grant is signed, with a warning."""
    _, _, _, owner = foreign_account(stack, "WindowDroppingERC7579Account")
    assert owner.supports_sessions() is False
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600)
    said = str(refused.value)
    assert "validUntil 0 (no end)" in said and owner.kind.owner_validator in said, said


@pytest.mark.e2e
def test_a_grant_the_account_cannot_be_asked_about_says_so(stack: LocalStack) -> None:
    """Attack 395. An account that selects its validator otherwise than the adapter (here from the signature's
    first 20 bytes, driven by the generic adapter) takes neither probe's answer: the grant is signed with an
    ``AccountPremiseWarning`` saying what was not checked and why, pointing at the owner's line (the session's first
    operation is still asked, attack 352)."""
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    account = deploy_variant(stack, owner_validator, VALIDATOR_PREFIX_STRIPPED, signer)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)
    owner = net.owner(signer, account)
    assert type(owner.kind) is ERC7579AccountKind
    with pytest.warns(AccountPremiseWarning, match="did not take the validator's success") as said:
        grant = owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600)
    assert grant.owner_signature
    assert [w.filename for w in said if issubclass(w.category, AccountPremiseWarning)] == [__file__]


def test_an_account_masking_its_validators_refusals_runs_anyone_s_operation_through_the_module(
    sessions: Any, project: Any, deployer: Any, token: Any, attacker: str
) -> None:
    """The premise, shown: an account that clears its validator's aggregator field (it supports no aggregator)
    clears SIG_VALIDATION_FAILED with it. With the session module installed, an operation naming it and signed by
    no session key at all (the module refuses it with that answer) mints to the attacker; OpenZeppelin's account as
    it comes, the control, answers AA24."""
    for name in ("FailureMaskingERC7579Account", "PlainERC7579Account"):
        account = Decoding(sessions, project, deployer, LocalSigner.generate(), name)
        h = sessions.h
        data = MINT + abi_encode(["address", "uint256"], [attacker, 1000])
        op = h.op(
            account.address,
            encode_execute(Call.of(token.address, 0, data)),
            key=KIND.nonce_key(sessions.module.address),
        )
        outcome = sessions.outcome(op.replace(signature=LocalSigner.generate().sign_hash(h.hash(op))))
        if name == "PlainERC7579Account":
            assert "AA24" in outcome, outcome
        else:
            assert outcome == "ok", outcome
    assert int(token.balanceOf(attacker)) == 1000


@pytest.mark.e2e
def test_owner_grant_refuses_an_account_masking_its_validators_refusals(stack: LocalStack) -> None:
    """Attack 397. The docs' premise (an account returns the module's validation data as it is) covers its refusal
    too: the owner's grant on ``FailureMaskingERC7579Account`` is refused before signing, the probe validator's
    SIG_VALIDATION_FAILED having come back as no refusal. Fails without the question: the grant is signed (the
    success probe alone passes, the account keeping the window)."""
    _, _, _, owner = foreign_account(stack, "FailureMaskingERC7579Account")
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [_mint(stack)], valid_for=3600)
    said = str(refused.value)
    assert "which is no refusal" in said and "anyone could run any call" in said, said


def test_a_node_without_state_overrides_leaves_the_premises_unasked_with_a_word(
    sessions: Any, project: Any, deployer: Any, chain: Any
) -> None:
    """Attack 395 on a client without state overrides: eth-tester's (ape's local chain) takes no third argument to
    ``eth_call`` and raises a ``TypeError``; the owner's grant must neither break on it nor pass in silence."""
    account = Decoding(sessions, project, deployer, LocalSigner.generate(), "WindowDroppingERC7579Account")
    kind = ERC7579AccountKind(owner_validator=account.owner_validator.address)
    with pytest.warns(AccountPremiseWarning, match="state override") as said:
        refuse_broken_premises(
            Web3Chain(chain.provider.web3),
            kind,
            account.address,
            sessions.module.address,
            sessions.h.entry_point.address,
            signing=True,
        )
    assert [w.filename for w in said if issubclass(w.category, AccountPremiseWarning)] == [__file__]


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """The session-scoped fixtures this module uses, made before its own module-scoped contracts: ape snapshots
    the chain per fixture scope and must not rebase them."""


@pytest.fixture(scope="module")
def token(project: Any, deployer: Any) -> Any:
    """A token anyone may mint: what the sessions here are granted to mint, at most 5 at a time."""
    return project.TestToken.deploy(sender=deployer)


class Decoding:
    """A ``name`` account (a test account taking its EntryPoint, its owner's validator and the owner's address) of
    ``owner`` on ape's chain, holding 5 ether, with the session module installed by the owner's operation."""

    def __init__(self, sessions: Any, project: Any, deployer: Any, owner: LocalSigner, name: str) -> None:
        self.sessions = sessions
        self.owner = owner
        self.owner_validator = project.OwnerECDSAValidator.deploy(sender=deployer)
        self.address: str = (
            getattr(project, name)
            .deploy(
                sessions.h.entry_point.address,
                self.owner_validator.address,
                to_bytes(owner.address, length=20),
                sender=deployer,
            )
            .address
        )
        sessions.h.fund(self.address, 5 * ETHER)
        self.owner_call_data(
            encode_execute(KIND.install_validator_call(self.address, sessions.module.address))
        )
        assert sessions.module.isInitialized(self.address)

    def owner_call_data(self, call_data: bytes) -> None:
        """Run ``call_data`` as the owner's operation (it must succeed)."""
        h = self.sessions.h
        op = h.op(self.address, call_data, key=KIND.nonce_key(self.owner_validator.address))
        receipt = h.submit(h.sign_owner(op, self.owner))
        assert receipt.success, receipt.reason


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _padded(data: bytes) -> bytes:
    return _word(len(data)) + data + bytes(-len(data) % 32)


def _two_readings(token: Any, to: str) -> bytes:
    """``execute(single, ...)`` whose ABI offset word points past a first executionCalldata (a mint of 1,000 to
    ``to``, where a reader at the fixed place finds it) at a second (a mint of 1, where Solidity's decoder finds
    it)."""
    forbidden = (
        to_bytes(token.address, length=20) + _word(0) + MINT + abi_encode(["address", "uint256"], [to, 1000])
    )
    allowed = (
        to_bytes(token.address, length=20) + _word(0) + MINT + abi_encode(["address", "uint256"], [to, 1])
    )
    first = _padded(forbidden)
    return EXECUTE + bytes(32) + _word(0x40 + len(first)) + first + _padded(allowed)


def test_an_offset_word_an_account_reading_a_fixed_place_ignores_is_refused(
    sessions: Any, project: Any, deployer: Any, token: Any, session_key: LocalSigner, attacker: str
) -> None:
    """Attack 396. An account reading executionCalldata at the place a canonical encoding puts it (its length at
    byte 0x44 of its calldata), ignoring the ABI offset word, and one reading it with Solidity's decoder (OpenZeppelin's
    ``AccountERC7579`` as it comes), read an offset word past a first executionCalldata differently: the owner's
    operations of the same bytes mint 1,000 on the first and 1 on the second. The session's operation of those bytes,
    granted ``amount <= 5``, is refused on its offset word (the module takes 0x40 only), in USE and USE_WITH_KEY, and
    by the SDK's decoder and checker; the canonical single call runs as judged."""
    owner = LocalSigner.generate()
    fixed = Decoding(sessions, project, deployer, owner, "FixedOffsetERC7579Account")
    plain = Decoding(sessions, project, deployer, owner, "PlainERC7579Account")
    fixed.owner_call_data(_two_readings(token, fixed.address))
    plain.owner_call_data(_two_readings(token, plain.address))
    assert int(token.balanceOf(fixed.address)) == 1000 and int(token.balanceOf(plain.address)) == 1

    session = Session(
        session_key=session_key.address,
        permissions=(
            Policy.call(token.address, "mint(address to, uint256 amount)", rules=[arg("amount") <= 5]),
        ),
    )
    module = sessions.module
    fixed.owner_call_data(
        encode_execute(Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi())))
    )
    call_data = _two_readings(token, attacker)
    for mode in ("use", "use_with_key"):
        result = sessions.outcome(sessions.op(fixed.address, session_key, call_data=call_data, mode=mode))
        assert "AA23" in result and "MalformedExecution" in result, (mode, result)
    with pytest.raises(ExecuteDecodeError):
        decode_execute(call_data)
    with pytest.raises(ExecuteDecodeError):
        PolicyChecker(session, fixed.address, module.address).check(call_data, now=0)
    assert int(token.balanceOf(attacker)) == 0
    allowed = Call.of(token.address, 0, MINT + abi_encode(["address", "uint256"], [attacker, 5]))
    assert sessions.outcome(sessions.op(fixed.address, session_key, allowed)) == "ok"
    assert int(token.balanceOf(attacker)) == 5
