"""A leaked session key against ERC-7579 accounts nobody on this project wrote, each OpenZeppelin's
``AccountERC7579`` with one choice the session module assumes no account makes (attacks 351 to 353).

An account that hands its validators a UserOperation hash of its own (attack 351): ``contracts/test/ChainAgnosticERC7579Account.sol``, OpenZeppelin's
``AccountERC7579`` through OpenZeppelin's own extension point for it (``_signableUserOpHash``), with the chain id
left out of the hash (one signature for the same operation on every chain the account is on, as Kernel v3.3 offers
when a signature asks for it).

On such an account the userOpHash the session module is handed binds no chain, so an operation signed for one chain
runs on every other where the account has the same nonce. The module must bind to the chain itself what a leaked key
cannot make alone: a co-signed session's co-signature (the co-signer's approval of one operation on one chain) and
the owner's off-chain grant carried by an ENABLE operation. A leaked key with a colluding bundler takes a
co-signature the co-signer gave on another chain (whose policy there allowed the call) for an operation of the same
bytes, and an ENABLE operation carrying the owner's grant for another chain, to this chain. Operations are built byte
by byte and sent to the real EntryPoint v0.7 ``handleOps`` on ape's chain.

keyscope's SDK signs the EntryPoint's userOpHash, which such an account hands no validator: driven by the generic
adapter (its ``accountId()`` is no vendor's keyscope knows), the owner's first operation and a session's first
operation are asked of the account's own ``validateUserOp`` before anything is sent, and refused with an error that
names that cause among the others (a real anvil and Alto).

An account that hands the EntryPoint its own word for the validator's success, dropping the module's window
(``contracts/test/WindowDroppingERC7579Account.sol``, attack 352), runs a session that ended: the module reads no
clock and cannot see it; the SDK refuses a session's first operation there. An account that asks its validators about
ERC-1271 signatures with the zero address as ``sender`` (``contracts/test/ZeroSenderERC7579Account.sol``, attack 353)
lets its own modules take a session's signature as the owner's: the module tells modules apart by ``sender`` only;
the SDK returns no session signature there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope import Policy as SdkPolicy
from keyscope import SessionKey, connect
from keyscope.accounts import ERC7579AccountKind
from keyscope.accounts.base import INSTALL_MODULE
from keyscope.devnode import send_transaction
from keyscope.erc1271 import co_sign_digest
from keyscope.errors import AccountPremiseWarning, AccountSetupError
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak, to_bytes
from keyscope.local import LocalStack
from keyscope.message_signing import SignatureRefusedError
from keyscope.policy import Policy, arg
from keyscope.selectors import IS_VALID_SIGNATURE
from keyscope.session import Session, encode_enable_signature, encode_session_signature
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData
from keyscope.userop import UserOperation
from support.accounts import build_bytecode, deploy_code
from support.permit_types import LIMIT, PERMIT_SINGLE_TYPES, ROUTER, permit2_permit
from support.sdk import install_asking_nothing
from support.session_fixtures import attacker_fixture  # noqa: F401 (fixture)
from support.variant_accounts import (  # noqa: F401 (stack_fixture: the stack fixture)
    deploy_owner_validator,
    entry_point_nonce,
    grant_signed_without_the_sdk,
    nft_balance,
    stack_fixture,
)
from support.victims import deploy as deploy_victim

ETHER = 10**18
MINT = keccak(b"mint(address,uint256)")[:4]


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions: Any, module: Any) -> None:
    """The session-scoped fixtures this module uses, made before its own module-scoped contracts: ape snapshots
    the chain per fixture scope and must not rebase them."""


@pytest.fixture(scope="module")
def token(project: Any, deployer: Any) -> Any:
    """A token anyone may mint: what the sessions here are granted to mint, at most 5 at a time."""
    return project.TestToken.deploy(sender=deployer)


class ChainAgnostic:
    """A ChainAgnosticERC7579Account of ``owner`` holding 5 ether, with the session module installed by the owner's
    own operation (signed, as every operation there, over the account's hash without the chain id)."""

    def __init__(self, sessions: Any, project: Any, deployer: Any, owner: LocalSigner) -> None:
        self.sessions = sessions
        self.owner = owner
        self.owner_validator = project.OwnerECDSAValidator.deploy(sender=deployer)
        self.contract = project.ChainAgnosticERC7579Account.deploy(
            sessions.h.entry_point.address,
            self.owner_validator.address,
            to_bytes(owner.address, length=20),
            sender=deployer,
        )
        self.address: str = self.contract.address
        sessions.h.fund(self.address, 5 * ETHER)
        self.owner_execute(KIND.install_validator_call(self.address, sessions.module.address))
        assert sessions.module.isInitialized(self.address)

    def signable(self, op: UserOperation) -> bytes:
        """What the account hands its validators for ``op``: the EntryPoint v0.7 hash with chain id 0, the same on
        every chain (checked against the account's own answer)."""
        signable = user_op_hash_v07(op.pack(), self.sessions.h.entry_point.address, 0)
        assert bytes(self.contract.chainAgnosticHash(op.pack().as_tuple())) == signable
        assert signable != self.sessions.h.hash(op)  # not the EntryPoint's userOpHash of this chain
        return signable

    def owner_execute(self, calls: Call | list[Call]) -> None:
        h = self.sessions.h
        op = h.op(self.address, encode_execute(calls), key=KIND.nonce_key(self.owner_validator.address))
        receipt = h.submit(op.replace(signature=self.owner.sign_hash(self.signable(op))))
        assert receipt.success, receipt.reason

    def grant(self, session: Session) -> bytes:
        """The owner's operation enabling ``session`` on chain; its id."""
        module = self.sessions.module
        self.owner_execute(Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi())))
        session_id = session.session_id(self.address, self.sessions.epoch(self.address))
        assert module.isSessionActive(self.address, session_id)
        return session_id

    def session_op(self, token: Any, to: str, amount: int) -> UserOperation:
        """An unsigned session operation minting ``amount`` to ``to``."""
        data = MINT + abi_encode(["address", "uint256"], [to, amount])
        return self.sessions.h.op(
            self.address,
            encode_execute(Call(token.address, 0, data)),
            key=KIND.nonce_key(self.sessions.module.address),
        )


def another_chain(chain_id: int) -> int:
    """A chain id other than ``chain_id``."""
    return 10 if chain_id != 10 else 8453


def mint_session(token: Any, key: LocalSigner, co_signer: LocalSigner | None = None) -> Session:
    """``mint(to, amount)`` on ``token`` with ``amount <= 5``, co-signed by ``co_signer`` when given."""
    return Session(
        session_key=key.address,
        permissions=(
            Policy.call(token.address, "mint(address to, uint256 amount)", rules=[arg("amount") <= 5]),
        ),
        co_signer=co_signer.address if co_signer is not None else None,
    )


def test_a_co_signature_given_on_another_chain_co_signs_nothing_on_an_account_whose_hash_binds_no_chain(
    sessions: Any, project: Any, deployer: Any, token: Any, attacker: str
) -> None:
    account = ChainAgnostic(sessions, project, deployer, LocalSigner.generate())
    key, co_signer = LocalSigner.generate(), LocalSigner.generate()
    session_id = account.grant(mint_session(token, key, co_signer))
    h, module = sessions.h, sessions.module.address

    op = account.session_op(token, attacker, 5)
    signable = account.signable(op)  # the same on every chain: the key's signature of it runs anywhere
    key_signature = key.sign_hash(signable)

    def co_signed(chain_id: int) -> UserOperation:
        digest = co_sign_digest(session_id, signable, chain_id=chain_id, module=module)
        return op.replace(
            signature=encode_session_signature(session_id, key_signature, co_signer.sign_hash(digest))
        )

    # the co-signer's approval of this very operation on another chain, carried here by the key and its bundler
    refused = sessions.outcome(co_signed(another_chain(h.chain_id)))
    assert "AA24" in refused, refused
    assert int(token.balanceOf(attacker)) == 0
    # the co-signer's approval on this chain: the operation runs, as judged (control)
    assert sessions.outcome(co_signed(h.chain_id)) == "ok"
    assert int(token.balanceOf(attacker)) == 5


def test_an_enable_operation_carrying_another_chain_s_grant_enables_nothing_on_an_account_whose_hash_binds_no_chain(
    sessions: Any, project: Any, deployer: Any, token: Any, attacker: str
) -> None:
    owner = LocalSigner.generate()
    account = ChainAgnostic(sessions, project, deployer, owner)
    key = LocalSigner.generate()
    session = mint_session(token, key)
    epoch = sessions.epoch(account.address)
    h, module = sessions.h, sessions.module.address

    op = account.session_op(token, attacker, 5)
    key_signature = key.sign_hash(account.signable(op))

    def enable(chain_id: int) -> UserOperation:
        """The ENABLE operation as it ran on ``chain_id``: the owner's grant there (the account's ERC-1271 takes the
        owner validator's address before the signature)."""
        grant = owner.sign_hash(session.enable_digest(account.address, epoch, chain_id, module))
        owner_signature = to_bytes(account.owner_validator.address, length=20) + grant
        return op.replace(signature=encode_enable_signature(session, owner_signature, key_signature))

    refused = sessions.outcome(enable(another_chain(h.chain_id)))
    assert "AA23" in refused and "InvalidOwnerSignature" in refused, refused
    assert not sessions.module.isSessionActive(account.address, session.session_id(account.address, epoch))
    assert int(token.balanceOf(attacker)) == 0
    # the owner's grant for this chain: enabled, and the operation runs (control)
    assert sessions.outcome(enable(h.chain_id)) == "ok"
    assert sessions.module.isSessionActive(account.address, session.session_id(account.address, epoch))
    assert int(token.balanceOf(attacker)) == 5


class Foreign(NamedTuple):
    """A test account deployed on the stack, its owner's validator, and keyscope's view of them."""

    account: str
    owner_validator: str
    net: Any
    owner: Any


def foreign_account(stack: LocalStack, name: str) -> Foreign:
    """A funded ``name`` account of the stack (a test account taking its EntryPoint, its owner's validator and the
    owner's address), keyscope's network connected to the stack with that validator, and the account's owner."""
    owner_validator = deploy_owner_validator(stack)
    signer = LocalSigner.generate()
    code = build_bytecode(name) + abi_encode(
        ["address", "address", "bytes"],
        [stack.entry_point, owner_validator, to_bytes(signer.address, length=20)],
    )
    account = deploy_code(stack.node, stack.deployer.address, code, name)
    stack.fund(account, ETHER)
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)
    return Foreign(account, owner_validator, net, net.owner(signer, account))


@pytest.mark.e2e
def test_the_sdk_names_an_account_signing_a_hash_of_its_own_before_sending_the_owner_s_or_a_session_s_operation(
    stack: LocalStack,
) -> None:
    account, _, _, owner = foreign_account(stack, "ChainAgnosticERC7579Account")
    assert type(owner.kind) is ERC7579AccountKind
    owner_lane = owner.kind.nonce_key(None)

    with pytest.raises(AccountSetupError) as refused:
        owner.install_sessions()
    said = str(refused.value)
    assert "hash of its own" in said and "userOpHash" in said, said
    assert entry_point_nonce(stack, account, owner_lane) == 0  # nothing sent

    # the owner's own wallet, which signs the account's hash, installs the module (here: as the EntryPoint would
    # have the account call itself); the owner's off-chain grant is an ERC-1271 signature the account frames the
    # standard way, so it is taken
    entry_point = stack.entry_point
    stack.node.request("anvil_impersonateAccount", [entry_point])
    # ETH for its gas on top of what it holds: the stack is shared, and the EntryPoint's balance backs the deposits
    # of the other tests' accounts and paymasters
    held = int(stack.node.request("eth_getBalance", [entry_point, "latest"]), 16)
    stack.node.request("anvil_setBalance", [entry_point, hex(held + ETHER)])
    install = INSTALL_MODULE + abi_encode(["uint256", "address", "bytes"], [1, stack.module, b""])
    send_transaction(stack.node, entry_point, to=account, data=install, what="the module's install")
    stack.node.request("anvil_stopImpersonatingAccount", [entry_point])
    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    # the planted session's signature is over the EntryPoint's hash, not the account's own (attack 425)
    with pytest.warns(AccountPremiseWarning, match="did not take the validator's success"):
        grant = owner.grant(
            key, [SdkPolicy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])]
        )

    session = connect(stack.rpc_url, stack.bundler_url, module=stack.module).session(grant, key)
    session_lane = session.nonce_key()
    with pytest.raises(AccountSetupError) as refused:
        session.execute(stack.nft, "safeMint(address)", recipient)
    said = str(refused.value)
    assert "hash of its own" in said and "session's operation" in said, said
    assert nft_balance(stack, recipient) == 0
    assert entry_point_nonce(stack, account, session_lane) == 0  # nothing sent


class WindowDropping(ChainAgnostic):
    """A WindowDroppingERC7579Account (``contract``) of ``owner`` holding 5 ether with the session module installed,
    and a plain OpenZeppelin ``AccountERC7579`` of the same owner beside it (``plain``, the control), both signing
    the EntryPoint's userOpHash."""

    def __init__(self, sessions: Any, project: Any, deployer: Any, owner: LocalSigner, name: str) -> None:
        self.sessions = sessions
        self.owner = owner
        self.owner_validator = project.OwnerECDSAValidator.deploy(sender=deployer)
        self.contract = getattr(project, name).deploy(
            sessions.h.entry_point.address,
            self.owner_validator.address,
            to_bytes(owner.address, length=20),
            sender=deployer,
        )
        self.address = self.contract.address
        sessions.h.fund(self.address, 5 * ETHER)
        self.owner_execute(KIND.install_validator_call(self.address, sessions.module.address))

    def signable(self, op: UserOperation) -> bytes:
        return self.sessions.h.hash(op)


@pytest.mark.parametrize("name", ["WindowDroppingERC7579Account", "PlainERC7579Account"])
def test_an_account_dropping_the_module_s_window_runs_an_ended_session_which_the_module_cannot_see(
    sessions: Any, project: Any, deployer: Any, token: Any, attacker: str, chain: Any, name: str
) -> None:
    """The premise, shown: the module bounds the operation by the session's window in its validation data only, so
    an account that hands the EntryPoint its own word (valid now) instead runs a session that ended an hour ago.
    The control, OpenZeppelin's account as it comes, hands on the module's word: AA22."""
    account = WindowDropping(sessions, project, deployer, LocalSigner.generate(), name)
    key = LocalSigner.generate()
    now = int(chain.pending_timestamp)
    ended = Session(
        session_key=key.address,
        permissions=(
            Policy.call(token.address, "mint(address to, uint256 amount)", rules=[arg("amount") <= 5]),
        ),
        valid_after=now - 7200,
        valid_until=now - 3600,
    )
    account.grant(ended)
    op = account.session_op(token, attacker, 5)
    outcome = sessions.outcome(op.replace(signature=key.sign_hash(account.signable(op))))
    if name == "PlainERC7579Account":
        assert "AA22" in outcome, outcome
        assert int(token.balanceOf(attacker)) == 0
    else:
        assert outcome == "ok"
        assert int(token.balanceOf(attacker)) == 5


@pytest.mark.e2e
def test_the_sdk_refuses_a_session_s_first_operation_on_an_account_that_drops_the_module_s_window(
    stack: LocalStack,
) -> None:
    account, _, _, owner = foreign_account(stack, "WindowDroppingERC7579Account")
    assert type(owner.kind) is ERC7579AccountKind
    key = SessionKey.generate()
    recipient = LocalSigner.generate().address
    # signed by the owner's wallet without keyscope's SDK, whose grant refuses such an account (attack 393)
    session = owner.session_for(
        key,
        [SdkPolicy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])],
        valid_for=3600,
    )
    grant = grant_signed_without_the_sdk(owner, session)
    # installed by an owner operation of the owner's own making (install_sessions refuses the account, attack 417);
    # the owner's validator answers 0: the account hands on the same
    install_asking_nothing(owner, stack.module)

    session = connect(stack.rpc_url, stack.bundler_url, module=stack.module).session(grant, key)
    with pytest.raises(AccountSetupError) as refused:
        session.execute(stack.nft, "safeMint(address)", recipient)
    said = str(refused.value)
    assert f"validUntil {grant.session.valid_until}" in said and "validUntil 0 (no end)" in said, said
    assert "validation data" in said, said
    assert nft_balance(stack, recipient) == 0
    assert entry_point_nonce(stack, account, session.nonce_key()) == 0  # nothing sent


def erc1271_answer(stack: LocalStack, account: str, asker: str, digest: bytes, signature: bytes) -> bytes:
    """The first 4 bytes of ``account``'s ``isValidSignature(digest, signature)``, asked by ``asker``."""
    data = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
    answer = stack.node.request(
        "eth_call", [{"from": asker, "to": account, "data": "0x" + data.hex()}, "latest"]
    )
    return to_bytes(answer)[:4]


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["ZeroSenderERC7579Account", "PlainERC7579Account"])
def test_the_sdk_signs_nothing_for_an_account_that_does_not_hand_the_module_its_caller_as_sender(
    stack: LocalStack, name: str
) -> None:
    """The premise: the module refuses a session's signature to a verifier that is a module of the account, which it
    tells from the ``sender`` the account hands it. An account handing the zero address lets the owner's validator
    (a module of the account, which takes the account's ERC-1271 answer as its owner's approval of its own
    configuration) take a session's permit signature; OpenZeppelin's account as it comes (the control) does not, and
    the SDK signs there."""
    permits = deploy_victim(stack, "SignedPermits")
    account, owner_validator, net, owner = foreign_account(stack, name)
    key = SessionKey.generate()
    permit2 = SdkPolicy.typed_data(
        {"name": "Permit2", "chainId": net.chain_id, "verifyingContract": permits},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") <= LIMIT, arg("spender") == ROUTER],
    )
    recipient = LocalSigner.generate().address
    mint = SdkPolicy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])
    # signed by the owner's wallet without keyscope's SDK, whose grant refuses such an account (attack 394); the
    # session's first operation enables it
    grant = grant_signed_without_the_sdk(owner, owner.session_for(key, [mint], typed_data=[permit2]))
    installed = owner.install_sessions()
    assert installed is not None
    installed.wait()
    dapp = connect(stack.rpc_url, stack.bundler_url, module=stack.module)
    dapp.session(grant, key).execute(stack.nft, "safeMint(address)", recipient).wait()
    permit = permit2_permit(permits, net.chain_id)
    digest = TypedData(permit).digest

    # what the account answers the owner's validator asking about the session's signature, made without the SDK's
    # checks (as a leaked key makes it)
    signature = dapp.session(grant, key, verify_on_chain=False).sign_typed_data(permit)
    asked_by_its_module = erc1271_answer(stack, account, owner_validator, digest, signature)
    if name == "PlainERC7579Account":
        assert asked_by_its_module == bytes.fromhex("ffffffff")
        assert dapp.session(grant, key).sign_typed_data(permit) == signature
        return
    assert asked_by_its_module == bytes.fromhex("1626ba7e")  # the premise broken: its module takes it
    with pytest.raises(SignatureRefusedError) as refused:
        dapp.session(grant, key).sign_typed_data(permit)
    assert refused.value.reason == "AccountSenderUnchecked", refused.value
    assert "sender" in str(refused.value)
