"""Fixtures for the contract tests on ape's local py-evm chain, all through the real EntryPoint v0.7."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ape
import ape_ethereum.provider as ape_ethereum_provider
import pytest

from keyscope.accounts import KeyscopeAccountKind, create_account_data
from keyscope.bundler import UserOperationReceipt
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.errors import BundlerRejectedError
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import to_address
from keyscope.local import LocalStack
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support import strict_reverts
from support.ape_entry_point import deploy_entry_point
from support.sdk import local_network
from support.wheel import build_wheel, checkout_copy

ETHER = 10**18

# ape.reverts(contract.SomeError) passes on a panic or a bare revert as released: every test here checks the very error
strict_reverts.install()
# After each transaction sent to a contract, ape traces it (py-evm runs it again) only to print the console.log lines
# it emitted: no contract here logs to the console, and those traces took about a fifth of test_limits.py's time.
# The suite skips that print step; a failed transaction raises before it, with its error, as before.
ape_ethereum_provider._post_send_transaction = lambda transaction, receipt: None
KIND = KeyscopeAccountKind()


# The heaviest files (their tests' time on 2 cores, set-up included), handed out first: pytest-xdist gives each
# worker whole files in collection order, so a heavy file collected late could leave one worker running it alone
# while the other has finished. The other files follow in their usual order.
HEAVIEST_FIRST = (
    "e2e/test_scripts.py",
    "e2e/test_scale.py",
    "test_store.py",
    "e2e/test_accounts.py",
    "test_limits.py",
    "test_worker.py",
    "test_fuzz_signed_operations_by_effect.py",
    "test_fuzz_session_signatures_by_effect.py",
    "test_differential.py",
    "test_store_concurrency.py",
    "e2e/test_browser.py",
    "e2e/test_daily_limits.py",
    "e2e/test_sponsorship.py",
    "test_session_policy.py",
    "e2e/test_erc7562.py",
    "e2e/test_faults.py",
    "e2e/test_readme.py",
    "e2e/test_lifecycle_verdicts.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    rank = {name: index for index, name in enumerate(HEAVIEST_FIRST)}

    def order(item: pytest.Item) -> int:
        path = Path(item.path)
        name = path.relative_to(here).as_posix() if path.is_relative_to(here) else ""
        return rank.get(name, len(rank))

    items.sort(key=order)  # stable: each file's tests keep their order, the other files theirs


@pytest.fixture
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboard that serves after all stops at its first wait (Ctrl-C) instead of waiting for one."""

    class CtrlC:
        @staticmethod
        def sleep(seconds: float) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr("keyscope.cli.browser.time", CtrlC)


@pytest.fixture(scope="session")
def keyscope_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built once per test run from a copy of the checkout (pyproject.toml, README.md, src/), so that
    no earlier build's leftovers can slip in; shared by the tests of what ships and of installing it."""
    work = tmp_path_factory.mktemp("wheel")
    return build_wheel(checkout_copy(work), work / "dist")


@pytest.fixture(scope="session")
def code_size_unlimited_stack() -> Iterator[LocalStack]:
    """A local stack (anvil and Alto) whose node takes contracts over EIP-170's 24,576 bytes (Kernel's
    implementation is), started once per test process: the files that deploy the vendors' accounts ask for it by
    this name, and every other file gets it as ``local_stack`` (below). Each file deploys its own contracts and
    accounts there; a file that moves the clock or restarts the bundler puts it back before it ends."""
    with LocalStack(
        disable_code_size_limit=True, log_dir=os.environ.get("KEYSCOPE_STACK_LOG_DIR") or None
    ) as running:
        yield running


@pytest.fixture(scope="session")
def local_stack(code_size_unlimited_stack: LocalStack) -> LocalStack:
    """The test process's one local stack, in place of the plugin's fixture of the same name (a stack with
    EIP-170's limit, which no test here relies on: tests/test_contract_sizes.py checks every contract's size).

    One stack, not two: an idle Alto polls its mempool every 10 ms (about 3.5% of a core), and a stack started
    for a test process lives until the process ends."""
    return code_size_unlimited_stack


@dataclass(frozen=True)
class SessionChain:
    """The in-process chain's session-wide contracts and accounts (see ``session_chain``)."""

    deployer: Any
    submitter: Any
    entry_point: Any
    factory: Any
    module: Any
    nft: Any
    bundler: InProcessBundler


@pytest.fixture(scope="session", autouse=True)
def session_chain(project) -> SessionChain:
    """Deploys the in-process chain's session-wide contracts once per test process, before any file's fixtures.

    Deployed lazily, by the first test that asked, a session fixture first asked for in the middle of a file was
    deployed under that file's snapshot. Ape then rebases: it takes the chain back and deploys some of them again,
    at new addresses, while those that sent no transaction (the in-process bundler, holding the EntryPoint's
    address) keep the old ones; the rest of that file, and the files after it in the same process, sent their
    operations to an EntryPoint the bundler did not serve. Which file asked first depends on how the files are
    shared out between the processes, so it failed in some runs only. Deployed first, nothing needs a rebase.
    The accounts are taken from ape itself, not from the ``accounts`` fixture, which some files define as their
    own. The fixtures that hand them out send nothing, and say so to ape (``chain_isolation=False``): a file asking
    for one of them late then makes ape rebase nothing."""
    test_accounts = ape.accounts.test_accounts
    deployer, submitter = test_accounts[0], test_accounts[1]
    entry_point = deploy_entry_point(deployer)
    factory = project.KeyscopeAccountFactory.deploy(entry_point, deployer, sender=deployer)
    factory.addStake(86400, value=ETHER, sender=deployer)
    module = project.SessionKeyValidator.deploy(sender=deployer)
    # py-evm makes an eth_call's sender afford its gas: the module asks accounts isValidSignature as the sender
    # of eth_calls (as a grant's signature is checked), so it holds some ETH here, as it needs none on a real node
    project.ForceFeed.deploy(module.address, value=ETHER, sender=deployer)
    nft = project.DemoNFT.deploy(sender=deployer)
    bundler = InProcessBundler(entry_point.address, submitter)
    return SessionChain(deployer, submitter, entry_point, factory, module, nft, bundler)


@ape.fixture(scope="session", chain_isolation=False)
def deployer(session_chain: SessionChain) -> Any:
    return session_chain.deployer


@ape.fixture(scope="session", chain_isolation=False)
def submitter_account(session_chain: SessionChain) -> Any:
    return session_chain.submitter


@ape.fixture(scope="session", chain_isolation=False)
def entry_point(session_chain: SessionChain) -> Any:
    return session_chain.entry_point


@ape.fixture(scope="session", chain_isolation=False)
def factory(session_chain: SessionChain) -> Any:
    return session_chain.factory


@ape.fixture(scope="session", chain_isolation=False)
def module(session_chain: SessionChain) -> Any:
    return session_chain.module


@pytest.fixture(scope="module")
def permits(project, deployer):
    """``SignedPermits`` (contracts/test): a Permit2-like ``permit(owner, PermitSingle, signature)`` and an EIP-2612
    ``permit``, checking signatures with OpenZeppelin's SignatureChecker, as applications do."""
    return project.SignedPermits.deploy(sender=deployer)


@ape.fixture(scope="session", chain_isolation=False)
def nft(session_chain: SessionChain) -> Any:
    return session_chain.nft


@ape.fixture(scope="session", chain_isolation=False)
def bundler(session_chain: SessionChain) -> InProcessBundler:
    return session_chain.bundler


@dataclass
class Harness:
    """Builds, signs and submits UserOperations for tests, through the in-process bundler."""

    entry_point: Any
    factory: Any
    bundler: InProcessBundler
    funder: Any
    chain: Any
    chain_id: int = field(init=False)

    def __post_init__(self) -> None:
        self.chain_id = int(self.chain.chain_id)

    # -- accounts ----------------------------------------------------------------------------------

    def counterfactual(
        self, owner: str, modules: Sequence[tuple[int, str, bytes]] = (), salt: int = 0
    ) -> str:
        """The address the factory will deploy for these arguments (not deployed yet)."""
        return to_address(self.factory.getAddress(owner, [tuple(m) for m in modules], salt))

    def fund(self, address: str, amount: int = ETHER) -> None:
        self.funder.transfer(address, amount)

    def create(
        self, owner: LocalSigner, modules: Sequence[tuple[int, str, bytes]] = (), salt: int = 0
    ) -> str:
        """Deploy an account through its first UserOperation (a no-op call signed by the owner)."""
        address = self.counterfactual(owner.address, modules, salt)
        self.fund(address)
        op = self.op(
            address,
            encode_execute(Call(self.funder.address, 0, b"")),
            factory=self.factory.address,
            factory_data=create_account_data(owner.address, modules, salt),
        )
        receipt = self.submit(self.sign_owner(op, owner))
        assert receipt.success, receipt
        return address

    # -- operations --------------------------------------------------------------------------------

    def nonce(self, sender: str, key: int) -> int:
        return int(self.entry_point.getNonce(sender, key))

    def op(
        self,
        sender: str,
        call_data: bytes,
        *,
        key: int = 0,
        nonce: int | None = None,
        factory: str | None = None,
        factory_data: bytes = b"",
        verification_gas: int = 1_500_000,
        call_gas: int = 1_000_000,
    ) -> UserOperation:
        return UserOperation(
            sender=sender,
            nonce=self.nonce(sender, key) if nonce is None else nonce,
            factory=factory,
            factory_data=factory_data,
            call_data=call_data,
            call_gas_limit=call_gas,
            verification_gas_limit=verification_gas,
            pre_verification_gas=60_000,
            max_fee_per_gas=2 * 10**9,
            max_priority_fee_per_gas=10**9,
        )

    def hash(self, op: UserOperation) -> bytes:
        return user_op_hash_v07(op.pack(), self.entry_point.address, self.chain_id)

    def sign_owner(self, op: UserOperation, owner: LocalSigner) -> UserOperation:
        return op.replace(signature=owner.sign_hash(self.hash(op)))

    def submit(self, op: UserOperation) -> UserOperationReceipt:
        user_op_hash = self.bundler.send_user_operation(op, self.entry_point.address)
        receipt = self.bundler.get_user_operation_receipt(user_op_hash)
        assert receipt is not None
        return receipt

    def owner_execute(
        self, account: str, owner: LocalSigner, calls: Call | list[Call], **kw: Any
    ) -> UserOperationReceipt:
        """An owner-signed operation (nonce key 0) making ``calls``; asserts it executed."""
        receipt = self.submit(self.sign_owner(self.op(account, encode_execute(calls, **kw)), owner))
        assert receipt.success, receipt.reason
        return receipt

    def rejected(self, op: UserOperation) -> BundlerRejectedError:
        """Submit ``op`` and return the rejection it must cause."""
        with pytest.raises(BundlerRejectedError) as info:
            self.bundler.send_user_operation(op, self.entry_point.address)
        return info.value


@ape.fixture(scope="session", chain_isolation=False)  # sends nothing: see session_chain
def harness(entry_point, factory, bundler, deployer, chain):
    return Harness(entry_point, factory, bundler, deployer, chain)


@pytest.fixture
def owner():
    return LocalSigner.generate()


@pytest.fixture
def account(harness, owner):
    """A deployed keyscope account owned by ``owner`` (no modules)."""
    return harness.create(owner)


# ------------------------------------------------------------------------------------------------------
# Sessions
# ------------------------------------------------------------------------------------------------------

from keyscope.session import (  # noqa: E402
    Session,
    encode_at_signature,
    encode_enable_signature,
    encode_use_with_key_signature,
)


@dataclass
class SessionHarness:
    """Grants and uses sessions on keyscope accounts through the real EntryPoint."""

    h: Harness
    module: Any

    def install(self, account: str, owner: LocalSigner) -> None:
        self.h.owner_execute(account, owner, KIND.install_validator_call(account, self.module.address))

    def account(self, owner: LocalSigner, salt: int = 0) -> str:
        """A deployed account with the module installed at creation."""
        return self.h.create(owner, [(1, self.module.address, b"")], salt)

    def epoch(self, account: str) -> int:
        return int(self.module.epochOf(account))

    def grant_onchain(self, account: str, owner: LocalSigner, session: Session) -> bytes:
        """The owner's UserOperation calling module.enableSession(session); returns the session id."""
        data = self.module.enableSession.encode_input(session.as_abi())
        self.h.owner_execute(account, owner, Call.of(self.module.address, 0, data))
        session_id = session.session_id(account, self.epoch(account))
        assert self.module.isSessionActive(account, session_id)
        return session_id

    def owner_signature(
        self,
        account: str,
        owner: LocalSigner,
        session: Session,
        *,
        chain_id: int | None = None,
        module: str | None = None,
        epoch: int | None = None,
    ) -> bytes:
        """The owner's one signature granting ``session`` off-chain (EIP-712 digest, signed raw)."""
        digest = session.enable_digest(
            account,
            self.epoch(account) if epoch is None else epoch,
            self.h.chain_id if chain_id is None else chain_id,
            module or self.module.address,
        )
        return owner.sign_hash(digest)

    def revoke(self, account: str, owner: LocalSigner, session_id: bytes) -> None:
        data = self.module.revokeSession.encode_input(session_id)
        self.h.owner_execute(account, owner, Call.of(self.module.address, 0, data))

    def op(
        self,
        account: str,
        key: LocalSigner,
        calls: Call | list[Call] | None = None,
        *,
        call_data: bytes | None = None,
        batch: bool | None = None,
        mode: str = "use",
        session: Session | None = None,
        owner_signature: bytes | None = None,
        lane: int = 0,
        signer: LocalSigner | None = None,
        at: int | None = None,
        **fields: Any,
    ) -> UserOperation:
        """A session operation signed by ``key`` (or by ``signer``, to forge one), claiming the time ``at`` when
        given (for per-period limits); ``fields`` replace UserOperation fields before signing."""
        if call_data is None:
            assert calls is not None
            call_data = encode_execute(calls, batch=batch)
        op = self.h.op(account, call_data, key=KIND.nonce_key(self.module.address, lane))
        if fields:
            op = op.replace(**fields)
        signature = (signer or key).sign_hash(self.h.hash(op))
        if mode == "use":
            pass
        elif mode == "use_with_key":
            signature = encode_use_with_key_signature(key.address, signature)
        else:
            assert mode == "enable" and session is not None and owner_signature is not None
            signature = encode_enable_signature(session, owner_signature, signature)
        return op.replace(signature=signature if at is None else encode_at_signature(at, signature))

    def enable_op(
        self,
        account: str,
        key: LocalSigner,
        session: Session,
        owner_signature: bytes,
        calls: Call | list[Call],
        *,
        signer: LocalSigner | None = None,
    ) -> UserOperation:
        """The session's first operation, carrying the off-chain grant (ENABLE mode)."""
        return self.op(
            account,
            key,
            calls,
            mode="enable",
            session=session,
            owner_signature=owner_signature,
            signer=signer,
        )

    def run(self, op: UserOperation) -> UserOperationReceipt:
        receipt = self.h.submit(op)
        assert receipt.success, receipt.reason
        return receipt

    def outcome(self, op: UserOperation) -> str:
        """'ok' when the operation executes, else the text of its rejection."""
        try:
            self.run(op)
        except BundlerRejectedError as error:
            return str(error)
        return "ok"


@ape.fixture(scope="session", chain_isolation=False)  # sends nothing: see session_chain
def sessions(harness, module):
    return SessionHarness(harness, module)


@pytest.fixture(scope="module")
def target(project, deployer):
    """A ``RecordingTarget``, one per test module: a session-scoped one made inside a module after that module's
    own chain fixtures (a late ``co_signed``) was undone with the module's snapshot while pytest kept handing it
    out, so later modules on the same worker called an address without code."""
    return project.RecordingTarget.deploy(sender=deployer)


@pytest.fixture
def session_key():
    return LocalSigner.generate()


@pytest.fixture
def net(chain, bundler, module, entry_point, factory):
    """The SDK's network on ape's local chain, with the in-process bundler."""
    return local_network(chain, bundler, module, entry_point, factory)
