"""Accounts keyscope did not write, as a dapp team meets them: what ``connect()``, the owner's grant and a session
give on each.

* Not ERC-7579 at all: eth-infinitism's ``SimpleAccount`` (v0.7, from ``@account-abstraction/contracts``, created by
  its own factory), a plain Safe 1.4.1 without an ERC-7579 adapter (the released bytecode from
  ``@rhinestone/modulekit``), an ERC-20 token, and an address without code. Each gets an
  :class:`~keyscope.errors.UnsupportedAccountError` saying what it is, with the kind detected or given, from the
  owner's and from a session's side, before the owner's key signs anything and before anything is sent.
* ERC-7579 accounts that depart from the reference implementation's conventions where ERC-7579 lets them
  (``contracts/test/QuirkyERC7579Account.sol``, OpenZeppelin's ``AccountERC7579`` with one quirk each): either the
  whole session flow works through the generic adapter, or the SDK refuses before sending, saying what the account
  does; no session gets more than its grant.

One anvil + EntryPoint v0.7 + Alto stack for the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope import (
    BundlerRejectedError,
    Network,
    Owner,
    Policy,
    PolicyViolationError,
    SessionGrant,
    SessionKey,
    SessionRevokedError,
    arg,
    connect,
    function_call,
)
from keyscope.accounts import ERC7579AccountKind, detect_kind
from keyscope.chain import RpcChain
from keyscope.devnode import send_transaction
from keyscope.errors import (
    AccountPremiseWarning,
    AccountSetupError,
    CallRevertedError,
    SessionError,
    UnsupportedAccountError,
)
from keyscope.execution import Call
from keyscope.hexutil import ZERO_ADDRESS, keccak, to_address, to_bytes
from keyscope.local import LocalStack
from keyscope.module import enable_session_data
from keyscope.session import Session
from keyscope.signing import LocalSigner
from support.accounts import account_bytecode, build_bytecode, deploy_code, owner_validator_bytecode
from support.fuzz import DEEP
from support.sdk import install_asking_nothing
from support.signatures import CountingSigner

pytestmark = pytest.mark.e2e

ETHER = 10**18
MINT = "safeMint(address)"

# QuirkyERC7579Account's quirks (its constants)
NONE = 0
ACCOUNT_ID_REVERTS = 1
VALIDATOR_IN_SIGNATURE = 2
WRAPPED_ERC1271_HASH = 4
SINGLE_DEFAULT_MODE_ONLY = 8
VALIDATOR_QUERY_REVERTS = 16


# -- one stack, the foreign contracts deployed once ----------------------------------------------------------


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The test process's ``local_stack``, shared with the other files that use it: the foreign contracts and the
    accounts are this file's own deployments there, and no test moves the chain's clock or stops the bundler."""
    yield local_stack


@pytest.fixture(scope="module")
def owner_validator(stack: LocalStack) -> str:
    return deploy_code(stack.node, stack.deployer.address, owner_validator_bytecode(), "OwnerECDSAValidator")


def _call(stack: LocalStack, to: str, data: bytes) -> bytes:
    return to_bytes(stack.node.request("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]))


def _npm_artifact(name: str) -> bytes:
    path = Path("node_modules/@account-abstraction/contracts/artifacts") / f"{name}.json"
    return to_bytes(json.loads(path.read_text())["bytecode"])


@pytest.fixture(scope="module")
def simple_account_factory(stack: LocalStack) -> str:
    """eth-infinitism's ``SimpleAccountFactory`` (v0.7) as the npm package ships it."""
    code = _npm_artifact("SimpleAccountFactory") + abi_encode(["address"], [stack.entry_point])
    return deploy_code(stack.node, stack.deployer.address, code, "SimpleAccountFactory")


def simple_account(stack: LocalStack, factory: str, owner: str) -> str:
    """A ``SimpleAccount`` of ``owner``, created by its factory and funded."""
    args = abi_encode(["address", "uint256"], [owner, 0])
    send_transaction(
        stack.node,
        stack.deployer.address,
        to=factory,
        data=keccak(b"createAccount(address,uint256)")[:4] + args,
    )
    account = to_address(_call(stack, factory, keccak(b"getAddress(address,uint256)")[:4] + args)[12:32])
    stack.fund(account, ETHER)
    return account


@pytest.fixture(scope="module")
def safe_contracts(stack: LocalStack) -> tuple[str, str]:
    """Safe 1.4.1's singleton and proxy factory (released bytecode, no ERC-7579 adapter)."""
    code = account_bytecode()
    singleton = deploy_code(
        stack.node, stack.deployer.address, to_bytes(code["SAFE_SINGLETON_BYTECODE"]), "Safe"
    )
    factory = deploy_code(
        stack.node, stack.deployer.address, to_bytes(code["SAFE_PROXY_FACTORY_BYTECODE"]), "SafeProxyFactory"
    )
    return singleton, factory


def plain_safe(stack: LocalStack, safe_contracts: tuple[str, str], owner: str) -> str:
    """A Safe with ``owner`` as its one owner, threshold 1, no modules, no fallback handler; funded."""
    singleton, factory = safe_contracts
    setup = keccak(b"setup(address[],uint256,address,bytes,address,address,uint256,address)")[
        :4
    ] + abi_encode(
        ["address[]", "uint256", "address", "bytes", "address", "address", "uint256", "address"],
        [[owner], 1, ZERO_ADDRESS, b"", ZERO_ADDRESS, ZERO_ADDRESS, 0, ZERO_ADDRESS],
    )
    create = keccak(b"createProxyWithNonce(address,bytes,uint256)")[:4] + abi_encode(
        ["address", "bytes", "uint256"], [singleton, setup, int(owner, 16)]
    )
    answer = stack.node.request(
        "eth_call", [{"from": stack.deployer.address, "to": factory, "data": "0x" + create.hex()}, "latest"]
    )
    safe = to_address("0x" + answer[-40:])
    send_transaction(stack.node, stack.deployer.address, to=factory, data=create)
    stack.fund(safe, ETHER)
    return safe


@pytest.fixture(scope="module")
def token(stack: LocalStack) -> str:
    return deploy_code(stack.node, stack.deployer.address, build_bytecode("TestToken"), "TestToken")


@pytest.fixture(scope="module")
def quirky(stack: LocalStack, owner_validator: str) -> Callable[[int, LocalSigner], str]:
    """Deploy a funded ``QuirkyERC7579Account`` with ``quirks``, owned by ``signer`` through the owner validator."""

    def make(quirks: int, signer: LocalSigner) -> str:
        code = build_bytecode("QuirkyERC7579Account") + abi_encode(
            ["address", "address", "bytes", "uint256"],
            [stack.entry_point, owner_validator, to_bytes(signer.address, length=20), quirks],
        )
        account = deploy_code(stack.node, stack.deployer.address, code, "QuirkyERC7579Account")
        stack.fund(account, ETHER)
        return account

    return make


@pytest.fixture
def recipient() -> str:
    return LocalSigner.generate().address


def detecting(stack: LocalStack, owner_validator: str) -> Network:
    return connect(stack.rpc_url, stack.bundler_url, module=stack.module, owner_validator=owner_validator)


def generic(stack: LocalStack, owner_validator: str) -> Network:
    """A network driving every account with the generic ERC-7579 adapter, given explicitly."""
    kind = ERC7579AccountKind(owner_validator=owner_validator, chain=RpcChain(stack.rpc_url))
    return connect(stack.rpc_url, stack.bundler_url, module=stack.module, kind=kind)


def mint_policy(stack: LocalStack, recipient: str) -> Policy:
    return Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])


def nft_balance(stack: LocalStack, holder: str) -> int:
    data = keccak(b"balanceOf(address)")[:4] + abi_encode(["address"], [holder])
    return int.from_bytes(_call(stack, stack.nft, data), "big")


def entry_point_nonce(stack: LocalStack, account: str, key: int) -> int:
    """How many operations of ``account`` the EntryPoint ran on the nonce ``key``."""
    return RpcChain(stack.rpc_url).get_nonce(stack.entry_point, account, key) & (2**64 - 1)


def forged_grant(stack: LocalStack, account: str, key: SessionKey, recipient: str, kind: str) -> SessionGrant:
    """A well-formed off-chain grant naming ``account`` as an account of ``kind`` (what a dapp may be handed)."""
    session = Session(
        session_key=key.address, valid_until=2**40, salt=7, permissions=(mint_policy(stack, recipient),)
    )
    return SessionGrant(
        session=session,
        account=account,
        module=stack.module,
        chain_id=31337,
        entry_point=stack.entry_point,
        epoch=0,
        session_id=session.session_id(account, 0),
        how="offchain",
        owner_signature=b"\x11" * 65,
        account_kind=kind,
    )


# -- 1. accounts that are not ERC-7579 ------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["SimpleAccount", "Safe", "ERC-20", "no code"])
def test_what_is_not_an_erc7579_account_is_refused_before_the_owner_signs_or_anything_is_sent(
    stack: LocalStack,
    owner_validator: str,
    simple_account_factory: str,
    safe_contracts: tuple[str, str],
    token: str,
    recipient: str,
    what: str,
) -> None:
    signer = CountingSigner()
    account = {
        "SimpleAccount": lambda: simple_account(stack, simple_account_factory, signer.address),
        "Safe": lambda: plain_safe(stack, safe_contracts, signer.address),
        "ERC-20": lambda: token,
        "no code": lambda: LocalSigner.generate().address,
    }[what]()
    said = "has no code" if what == "no code" else "not an ERC-7579 modular account"
    nonce = entry_point_nonce(stack, account, 0)
    key = SessionKey.generate()
    policy = [mint_policy(stack, recipient)]

    # the kind detected: refused when the owner is made
    with pytest.raises(UnsupportedAccountError, match=said):
        detecting(stack, owner_validator).owner(signer, account)
    with pytest.raises(UnsupportedAccountError, match=said):
        detect_kind(stack.rpc_url, account, owner_validator=owner_validator)

    # the generic adapter given: refused at the first step that would need the account
    net = generic(stack, owner_validator)
    steps: list[Callable[[Owner], object]] = [
        lambda owner: owner.install_sessions(),
        lambda owner: owner.grant(key, policy),
        lambda owner: owner.grant(key, policy, onchain=True),
        lambda owner: owner.execute(function_call(stack.nft, MINT, recipient)),
    ]
    for step in steps:
        with pytest.raises(UnsupportedAccountError) as refused:
            step(net.owner(signer, account))
        assert "has no code" in str(refused.value) or said in str(refused.value), refused.value
        assert "nothing was signed or sent" in str(refused.value) or what == "no code"

    # a session handed a grant naming the account as an ERC-7579 one
    for network in (detecting(stack, owner_validator), net):
        grant = forged_grant(stack, account, key, recipient, "erc7579")
        expected = SessionError if what == "no code" else UnsupportedAccountError
        with pytest.raises(expected, match="has no code" if what == "no code" else said):
            network.session(grant, key).execute(stack.nft, MINT, recipient)

    assert signer.signed == 0
    assert entry_point_nonce(stack, account, 0) == nonce
    assert nft_balance(stack, recipient) == 0


def install(owner: Owner) -> None:
    """The session module installed by the owner's operation, waited for."""
    pending = owner.install_sessions()
    assert pending is not None
    pending.wait()


def grant_use_revoke(
    stack: LocalStack, net: Network, owner: Owner, grant: SessionGrant, key: SessionKey, recipient: str
) -> None:
    """The rest of a session's life on the account: it mints to ``recipient`` (one more token there), another
    recipient is refused, and so is the session once the owner revoked it."""
    session = net.session(grant, key)
    before = nft_balance(stack, recipient)
    session.execute(stack.nft, MINT, recipient).wait()
    assert nft_balance(stack, recipient) == before + 1
    with pytest.raises(PolicyViolationError):
        session.execute(stack.nft, MINT, LocalSigner.generate().address)
    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError):
        session.execute(stack.nft, MINT, recipient)


# -- 2. ERC-7579 accounts with quirks --------------------------------------------------------------------------


def test_an_erc7579_account_without_account_id_is_named_and_runs_every_step_with_the_generic_adapter(
    stack: LocalStack, owner_validator: str, quirky: Callable[[int, LocalSigner], str], recipient: str
) -> None:
    signer = LocalSigner.generate()
    account = quirky(ACCOUNT_ID_REVERTS, signer)
    with pytest.raises(
        UnsupportedAccountError, match=r"is an ERC-7579 account .* answers no accountId\(\)"
    ) as said:
        detecting(stack, owner_validator).owner(signer, account)
    assert "kind=ERC7579AccountKind(" in str(said.value)

    net = generic(stack, owner_validator)
    owner = net.owner(signer, account)
    install(owner)
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    grant_use_revoke(stack, net, owner, grant, key, recipient)
    owner.uninstall_sessions().wait()
    assert not owner.supports_sessions()
    assert nft_balance(stack, recipient) == 1


def test_an_account_selecting_its_validator_by_the_signature_is_refused_before_the_owner_s_operation_is_sent(
    stack: LocalStack, owner_validator: str, quirky: Callable[[int, LocalSigner], str]
) -> None:
    signer = LocalSigner.generate()
    account = quirky(VALIDATOR_IN_SIGNATURE, signer)
    net = detecting(stack, owner_validator)
    owner = net.owner(signer, account)
    assert type(owner.kind) is ERC7579AccountKind
    key = owner.kind.nonce_key(None)
    with (
        pytest.raises(AccountSetupError, match="validateUserOp returned SIG_VALIDATION_FAILED") as refused,
        pytest.warns(AccountPremiseWarning, match="did not take the validator's success"),
    ):
        owner.install_sessions()
    assert "selects the validator otherwise" in str(refused.value)
    assert refused.value.account == account and refused.value.validator == owner_validator
    assert entry_point_nonce(stack, account, key) == 0  # nothing sent
    assert not owner.supports_sessions()


def test_an_account_wrapping_the_erc1271_hash_refuses_off_chain_grants_up_front_and_runs_on_chain_ones(
    stack: LocalStack, owner_validator: str, quirky: Callable[[int, LocalSigner], str], recipient: str
) -> None:
    signer = LocalSigner.generate()
    account = quirky(WRAPPED_ERC1271_HASH, signer)
    net = detecting(stack, owner_validator)
    owner = net.owner(signer, account)
    install(owner)
    key = SessionKey.generate()
    with pytest.raises(AccountSetupError, match="refuses the owner's signature of the session grant"):
        owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)

    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600, onchain=True)
    grant_use_revoke(stack, net, owner, grant, key, recipient)


def test_an_account_running_single_calls_only_refuses_batches_by_name_and_is_uninstalled_in_two_operations(
    stack: LocalStack, owner_validator: str, quirky: Callable[[int, LocalSigner], str], recipient: str
) -> None:
    signer = LocalSigner.generate()
    account = quirky(SINGLE_DEFAULT_MODE_ONLY, signer)
    net = detecting(stack, owner_validator)
    owner = net.owner(signer, account)
    install(owner)
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(stack, recipient)], valid_for=3600)
    session = net.session(grant, key)
    session.execute(stack.nft, MINT, recipient).wait()
    mint = function_call(stack.nft, MINT, recipient)
    with pytest.raises(
        AccountSetupError, match=r"supportsExecutionMode answers no\): send the calls one per"
    ):
        session.execute_batch([mint, mint])
    with pytest.raises(AccountSetupError, match="supportsExecutionMode answers no"):
        owner.execute([mint, mint])

    operations = entry_point_nonce(stack, account, owner.kind.nonce_key(None))
    epoch = owner.epoch()
    owner.uninstall_sessions().wait()
    assert not owner.supports_sessions()
    # two single-call operations: the sessions invalidated (a new epoch), then the module uninstalled
    assert entry_point_nonce(stack, account, owner.kind.nonce_key(None)) == operations + 2
    assert owner.epoch() != epoch
    assert nft_balance(stack, recipient) == 1


def test_an_account_that_does_not_answer_is_module_installed_gets_no_session(
    stack: LocalStack, owner_validator: str, quirky: Callable[[int, LocalSigner], str], recipient: str
) -> None:
    signer = LocalSigner.generate()
    account = quirky(VALIDATOR_QUERY_REVERTS, signer)
    net = detecting(stack, owner_validator)
    owner = net.owner(signer, account)
    with pytest.raises(AccountSetupError, match=r"reverts when asked isModuleInstalled\(1, "):
        owner.install_sessions()
    assert entry_point_nonce(stack, account, owner.kind.nonce_key(None)) == 0

    # installed anyway (by the owner's own call): the grant is refused, on chain and off chain
    install_asking_nothing(owner, stack.module)
    other_validator = deploy_code(
        stack.node, stack.deployer.address, owner_validator_bytecode(), "a validator"
    )
    for onchain in (False, True):
        with pytest.raises(
            AccountSetupError, match="cannot tell the account's validators from other call targets"
        ):
            owner.grant(
                SessionKey.generate(),
                [mint_policy(stack, recipient), Policy.call(other_validator, "onInstall(bytes data)")],
                onchain=onchain,
            )


def session_active(stack: LocalStack, account: str, session_id: bytes) -> bool:
    data = keccak(b"isSessionActive(address,bytes32)")[:4] + abi_encode(
        ["address", "bytes32"], [account, session_id]
    )
    return int.from_bytes(_call(stack, stack.module, data), "big") == 1


def refusal_of(stack: LocalStack, to: str, data: bytes) -> bytes:
    """The revert data of an ``eth_call`` that must revert."""
    with pytest.raises(CallRevertedError) as reverted:
        RpcChain(stack.rpc_url).call(to, data)
    return reverted.value.data


@pytest.mark.parametrize("quirks", [NONE, VALIDATOR_QUERY_REVERTS])
def test_the_module_refuses_a_grant_on_an_account_that_does_not_answer_is_module_installed(
    stack: LocalStack, owner_validator: str, quirky: Callable[[int, LocalSigner], str], quirks: int
) -> None:
    """What the SDK's refusal above stands in for: an owner who enables, without keyscope's SDK, a session calling
    one of the account's validators, or signing in its domain, and a verifier that is one of them. An account
    answering ``isModuleInstalled`` gets ``PermissionTargetIsModule``, ``ForbiddenSigningDomain`` and
    ``SignatureSenderForbidden`` (attacks 52, 85); one that reverts on the validator question (ERC-7579 says it
    must answer) gets ``ModuleQueryUnanswered(account, target)`` for each (attack 129): the module cannot tell its
    validators from other contracts. Without the module's check the session calling the validator is enabled."""
    signer = LocalSigner.generate()
    account = quirky(quirks, signer)
    net = generic(stack, owner_validator)
    owner = net.owner(signer, account)
    second = deploy_code(stack.node, stack.deployer.address, owner_validator_bytecode(), "a second validator")
    install_asking_nothing(
        owner, stack.module, owner.kind.install_validator_call(account, second, to_bytes(signer.address))
    )
    unanswered = "ModuleQueryUnanswered" if quirks else None
    calling = Session(
        session_key=SessionKey.generate().address,
        valid_until=2**40,
        salt=1,
        permissions=(Policy.call(second, "onInstall(bytes data)"),),
    )
    signing = Session(
        session_key=SessionKey.generate().address,
        valid_until=2**40,
        salt=2,
        typed_data_permissions=(
            Policy.typed_data(
                {"name": "Second", "verifyingContract": second},
                {"Note": [{"name": "n", "type": "uint256"}]},
                "Note",
            ),
        ),
    )
    for session, answered in ((calling, "PermissionTargetIsModule"), (signing, "ForbiddenSigningDomain")):
        with pytest.raises(BundlerRejectedError, match=unanswered or answered):
            owner.execute(Call(stack.module, 0, enable_session_data(session)))
        assert not session_active(stack, account, session.session_id(account, owner.epoch()))

    # ERC-1271: the verifier (``sender``) is asked about before the signature is read
    ask = keccak(b"requireValidSignature(address,address,bytes32,bytes)")[:4] + abi_encode(
        ["address", "address", "bytes32", "bytes"], [account, second, bytes(32), b""]
    )
    expected = (
        keccak(b"ModuleQueryUnanswered(address,address)")[:4]
        + abi_encode(["address", "address"], [account, second])
        if quirks
        else keccak(b"SignatureSenderForbidden(address)")[:4] + abi_encode(["address"], [second])
    )
    assert refusal_of(stack, stack.module, ask) == expected


# -- every form an answer can take, read alike by the module and the SDK ------------------------------------------

_RETURN, _REVERT, _BURN = 1, 2, 3
_TRUE = (1).to_bytes(32, "big")
_HIGH_AND_ONE = ((1 << 255) | 1).to_bytes(32, "big")
_ANSWER_FORMS = {
    # (module type, context length, how, bytes) set on the account -> the verdict both must give
    "validator, 31 bytes": ([(1, 0, _RETURN, bytes(30) + b"\1")], "unanswered"),
    "validator, empty": ([(1, 0, _RETURN, b"")], "unanswered"),
    "validator, 1 with high bits": ([(1, 0, _RETURN, _HIGH_AND_ONE)], "unanswered"),
    "validator, 2": ([(1, 0, _RETURN, (2).to_bytes(32, "big"))], "unanswered"),
    "validator, reverts with 1": ([(1, 0, _REVERT, _TRUE)], "unanswered"),
    "validator, burns its gas": ([(1, 0, _BURN, b"")], "unanswered"),
    "validator, 1 and more": ([(1, 0, _RETURN, _TRUE + bytes(31) + b"\5")], "validator"),
    "executor, 31 bytes": ([(2, 0, _RETURN, bytes(30) + b"\1")], None),
    "executor, 1 with high bits": ([(2, 0, _RETURN, _HIGH_AND_ONE)], None),
    "executor, burns its gas": ([(2, 0, _BURN, b"")], None),
    "executor, 1 and more": ([(2, 0, _RETURN, _TRUE + _TRUE)], "executor"),
    "hook, reverts empty, 1 global": ([(4, 0, _REVERT, b""), (4, 64, _RETURN, _TRUE)], "hook"),
    "hook, 2 empty, 1 global": ([(4, 0, _RETURN, (2).to_bytes(32, "big")), (4, 64, _RETURN, _TRUE)], "hook"),
    "hook, no empty, 1 global": ([(4, 0, _RETURN, bytes(32)), (4, 64, _RETURN, _TRUE)], None),
    "Safe module": ([(0, 0, _RETURN, _TRUE)], "Safe module"),
    "Safe, 1 with high bits": ([(0, 0, _RETURN, _HIGH_AND_ONE)], None),
}
_MODULE_TYPE_OF = {"validator": 1, "executor": 2, "hook": 4, "Safe module": 0}
ANSWER_EXAMPLES = 1000 if DEEP else 150


def _set_answers(stack: LocalStack, account: str, answers: Iterable[tuple[int, int, int, bytes]]) -> None:
    """Set ``OddModuleAnswers``' answer to each (module type, context length) question: (``how``, bytes)."""
    for module_type, context_length, how, data in answers:
        send_transaction(
            stack.node,
            stack.deployer.address,
            to=account,
            data=keccak(b"answer(uint256,uint256,uint8,bytes)")[:4]
            + abi_encode(["uint256", "uint256", "uint8", "bytes"], [module_type, context_length, how, data]),
            what="answer",
        )


_TYPE_NAMES = {number: name for name, number in _MODULE_TYPE_OF.items()}


def _module_verdict(chain: RpcChain, module: str, account: str, target: str) -> str | None:
    """The module's verdict on a session calling ``target``, enabled by ``account``: None when it enables it, the
    module type's name (or ``unanswered``) when it refuses; any other refusal fails the test."""
    session = Session(
        session_key=SessionKey.generate().address,
        valid_until=2**40,
        permissions=(Policy.call(target, "record(uint256 amount)"),),
    )
    try:
        chain.call(module, enable_session_data(session), sender=account)
    except CallRevertedError as refused:
        data = refused.data
        if data == keccak(b"ModuleQueryUnanswered(address,address)")[:4] + abi_encode(
            ["address", "address"], [account, target]
        ):
            return "unanswered"
        selector = keccak(b"PermissionTargetIsModule(uint256,address,uint256)")[:4]
        assert data[:4] == selector, f"the module refused with 0x{data.hex()}"
        index, named, module_type = abi_decode(["uint256", "address", "uint256"], data[4:])
        assert (index, to_address(named)) == (0, target)
        return _TYPE_NAMES[module_type]
    return None


def _sdk_verdicts(chain: RpcChain, owner_validator: str, account: str, target: str) -> tuple[str | None, ...]:
    """The SDK's verdicts on ``target``: asked one by one (``module_of``), and as a grant or a signature asks
    (``read_asking_modules``, for the generic ERC-7579 adapter: in one batch, then Safe's question alone, or one by
    one when a question reverts or halts the batch)."""
    from keyscope.accounts.modules import module_of, read_asking_modules

    kind = ERC7579AccountKind(owner_validator=owner_validator, chain=chain)
    verdict = read_asking_modules(chain, kind, account, [target]).verdict()
    assert verdict is None or verdict.target == target
    return module_of(chain, account, target), None if verdict is None else verdict.module


@pytest.mark.parametrize("form", sorted(_ANSWER_FORMS))
def test_the_module_and_the_sdk_read_every_form_of_an_answer_alike(
    stack: LocalStack, owner_validator: str, form: str
) -> None:
    """The module's assembly reads an answer only when the call succeeded with at least a word whose value is 0 or 1
    (the memory it reads at 0 is then the answer's first word, never what was there before); the SDK asks the same
    questions. For each form of answer (short, empty, longer, 1 with high bits, 2, a revert carrying 1, all gas
    burnt), the module's verdict on a grant naming the target is the one expected, and the SDK's are the same."""
    answers, expected = _ANSWER_FORMS[form]
    account = deploy_code(
        stack.node, stack.deployer.address, build_bytecode("OddModuleAnswers"), "an account"
    )
    _set_answers(stack, account, answers)
    target = LocalSigner.generate().address
    chain = RpcChain(stack.rpc_url)
    assert _module_verdict(chain, stack.module, account, target) == expected
    assert _sdk_verdicts(chain, owner_validator, account, target) == (expected, expected)


_QUESTIONS = ((1, 0), (2, 0), (4, 0), (4, 64), (0, 0))
"""The questions the module may ask: validator, executor, hook (empty context, then Safe7579's), Safe's."""
_WORDS = st.sampled_from([0, 1, 2, (1 << 255) | 1, (1 << 8) | 1, 2**256 - 1]).map(
    lambda w: w.to_bytes(32, "big")
)
_ANSWER_BYTES = st.one_of(
    _WORDS,
    _WORDS.map(lambda word: word[1:]),  # 31 bytes
    st.tuples(_WORDS, st.binary(min_size=1, max_size=40)).map(lambda pair: pair[0] + pair[1]),
    st.binary(max_size=70),
)
_FORMS = {
    "false": st.just((0, b"")),  # the contract's own well-formed false
    "yes": st.just((_RETURN, _TRUE)),
    "odd": st.tuples(st.just(_RETURN), _ANSWER_BYTES),
    "stop": st.tuples(st.sampled_from([_REVERT, _BURN]), _ANSWER_BYTES),
}
_FORM = st.sampled_from(["false"] * 3 + ["yes"] * 2 + ["odd"] * 4 + ["stop"]).flatmap(_FORMS.__getitem__)
"""Weighted so that most sets keep the SDK's one batch of questions (a revert or a halt sends it one by one)."""


def _answer_sets() -> st.SearchStrategy[list[tuple[int, int, int, bytes]]]:
    """An answer to every question; at most one burns its gas (each burnt call leaves the module 1/64 of what it
    had: after two, too little to go on, and the enable then fails without an error of its own)."""
    return (
        st.tuples(*[_FORM] * len(_QUESTIONS))
        .filter(lambda forms: sum(h == _BURN for h, _ in forms) <= 1)
        .map(lambda forms: [(t, n, how, data) for (t, n), (how, data) in zip(_QUESTIONS, forms, strict=True)])
    )


def test_the_module_and_the_sdk_give_the_same_verdict_on_generated_answers(
    stack: LocalStack, owner_validator: str
) -> None:
    """Differential: generated answers to each question the module may ask (a word of 0, 1, 2 or with high bits,
    31 bytes, a word and more, any bytes; returned, reverted, or all gas burnt; or a well-formed false), set on one
    account; the module's verdict on a grant naming a target and the SDK's two verdicts are the same. The run
    must reach every verdict."""
    account = deploy_code(
        stack.node, stack.deployer.address, build_bytecode("OddModuleAnswers"), "an account"
    )
    chain = RpcChain(stack.rpc_url)
    target = LocalSigner.generate().address
    seen: Counter[str | None] = Counter()

    @settings(
        max_examples=ANSWER_EXAMPLES,
        deadline=None,
        derandomize=not DEEP,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(answers=_answer_sets())
    def alike(answers: list[tuple[int, int, int, bytes]]) -> None:
        _set_answers(stack, account, answers)
        module = _module_verdict(chain, stack.module, account, target)
        assert _sdk_verdicts(chain, owner_validator, account, target) == (module, module), answers
        seen[module] += 1

    alike()
    assert set(seen) == {None, "unanswered", "validator", "executor", "hook", "Safe module"}, seen
