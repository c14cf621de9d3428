"""A hook Kernel v3.1 runs for the account, named by a grant (attack 266): attack 52's module questions do not find it.

Attack 52 refuses a grant (a call permission, as here, or a signing domain) naming a module of the account,
asking the account ``isModuleInstalled(1 | 2 | 4, target, "")`` (and, for a hook left unanswered, again with two
zero words, attack 141). Kernel v3.1's ``isModuleInstalled`` answers only module types 1, 2 and 3: for type 4 it
returns ``false`` whatever hook the account runs, in either form of the question. Kernel keeps its hooks per
validator, per executor and per selector (``validationConfig(vId).hook``, ``executorConfig(e).hook``,
``selectorConfig(s).hook``), installs each with ``hook.onInstall(hookData[1:])`` called by the account, and a hook
keeps its configuration keyed by the calling account, as every ERC-7579 module does.

So on a Kernel account whose root validator runs a hook (``Kernel.initialize(rootValidator, hook, ...)``, ZeroDev's
pattern for guardian, spending-limit or timelock hooks), the module enables a session granted a call on that hook,
and its key calls ``hook.onUninstall`` (or whatever configures it) from the account: the hook forgets the account.
The same grant on Nexus 1.0, which answers the hook question, is refused ``PermissionTargetIsModule``. The module
cannot ask the target itself (ERC-7562 forbids calling an address without code during validation); the SDK can, and
refuses before anything is signed a grant on a contract that says it is a module initialised for the account
(``isModuleType`` and ``isInitialized``: ``accounts.modules.claimed_module``).

Runs on anvil (Kernel's runtime code is over EIP-170, which py-evm enforces) and Alto, with the EntryPoint v0.7,
the module and modulekit's released Kernel v3.1 and Nexus 1.0 bytecode; the session's operation is sent to
``handleOps`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from keyscope import Policy, SessionKey
from keyscope.accounts import KernelAccountKind, NexusAccountKind
from keyscope.devnode import send_transaction
from keyscope.entrypoint import encode_handle_ops
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import keccak, to_address
from keyscope.local import LocalStack
from keyscope.module import enable_session_data
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.accounts import build_bytecode, deploy_accounts, deploy_code, network_for
from support.sdk import hand_made_request

ETHER = 10**18
ON_UNINSTALL = keccak(b"onUninstall(bytes)")[:4]
CONFIG_OF = keccak(b"configOf(address)")[:4]
IS_MODULE_INSTALLED = keccak(b"isModuleInstalled(uint256,address,bytes)")[:4]
PERMISSION_TARGET_IS_MODULE = keccak(b"PermissionTargetIsModule(uint256,address,uint256)")[:4]
_INITIALIZE = keccak(b"initialize(bytes21,address,bytes,bytes,bytes[])")[:4]
_CREATE_ACCOUNT = keccak(b"createAccount(bytes,bytes32)")[:4]
_GET_ADDRESS = keccak(b"getAddress(bytes,bytes32)")[:4]
HOOK_CONFIG = b"guardian: 0x1234, delay: 2 days"


@pytest.fixture(scope="module")
def stack(code_size_unlimited_stack: LocalStack) -> Iterator[LocalStack]:
    """The test process's stack without EIP-170's code size limit (``code_size_unlimited_stack``), shared with the
    other files deploying the vendors' accounts: this file's contracts and accounts are its own deployments."""
    yield code_size_unlimited_stack


@pytest.fixture(scope="module")
def contracts(stack: LocalStack):
    return deploy_accounts(stack)


@pytest.fixture(scope="module")
def hook(stack: LocalStack) -> str:
    """``contracts/test/RecordingHook``: keeps a configuration per calling account (``onInstall``/``onUninstall``)."""
    return deploy_code(stack.node, stack.deployer.address, build_bytecode("RecordingHook"), "RecordingHook")


def _call(stack: LocalStack, to: str, data: bytes, sender: str | None = None) -> bytes:
    tx = {"to": to, "data": "0x" + data.hex(), "gas": hex(10_000_000)}
    if sender is not None:
        tx["from"] = sender
    return bytes.fromhex(stack.node.request("eth_call", [tx, "latest"])[2:])


def _call_error(stack: LocalStack, to: str, data: bytes, sender: str) -> bytes | None:
    """The revert data of an ``eth_call`` (None when it succeeds)."""
    from keyscope.rpc import JsonRpcError

    tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(10_000_000)}
    try:
        stack.node.request("eth_call", [tx, "latest"])
    except JsonRpcError as error:
        data_field = error.data if isinstance(error.data, str) else (error.data or {}).get("data", "0x")
        return bytes.fromhex(str(data_field)[2:])
    return None


def _config_of(stack: LocalStack, hook: str, account: str) -> bytes:
    (config,) = abi_decode(["bytes"], _call(stack, hook, CONFIG_OF + abi_encode(["address"], [account])))
    return bytes(config)


def _hook_answers(stack: LocalStack, account: str, hook: str) -> list[bool]:
    """The account's answers to the hook questions the module asks: empty context, and two zero words."""
    answers = []
    for context in (b"", bytes(64)):
        data = IS_MODULE_INSTALLED + abi_encode(["uint256", "address", "bytes"], [4, hook, context])
        try:
            answers.append(bool(int.from_bytes(_call(stack, account, data)[:32], "big")))
        except Exception:
            answers.append(False)
    return answers


def _kernel_account_with_root_hook(stack: LocalStack, contracts, hook: str, owner: LocalSigner) -> str:
    """A Kernel v3.1 account whose root validator (the owner's ECDSA validator) runs ``hook``, configured with
    ``HOOK_CONFIG``, and which has the session module installed (``initConfig``), as ZeroDev's SDK pairs hooks."""
    kind = KernelAccountKind(owner_validator=contracts.owner_validator, factory=contracts.kernel_factory)
    install = kind._install_data(stack.module, b"")
    root = b"\x01" + bytes.fromhex(contracts.owner_validator[2:])
    init = _INITIALIZE + abi_encode(
        ["bytes21", "address", "bytes", "bytes", "bytes[]"],
        [root, hook, bytes.fromhex(owner.address[2:]), b"\x00" + HOOK_CONFIG, [install]],
    )
    args = abi_encode(["bytes", "bytes32"], [init, bytes(32)])
    (account,) = abi_decode(["address"], _call(stack, contracts.kernel_factory, _GET_ADDRESS + args))
    send_transaction(
        stack.node, stack.deployer.address, to=contracts.kernel_factory, data=_CREATE_ACCOUNT + args,
        what="Kernel account creation",
    )  # fmt: skip
    return to_address(account)


def _nexus_account_with_hook(stack: LocalStack, contracts, hook: str, owner: LocalSigner) -> str:
    """A Nexus 1.0 account with the owner's validator, the session module and ``hook`` as its hook."""
    kind = NexusAccountKind(
        owner_validator=contracts.owner_validator,
        factory=contracts.nexus_factory,
        bootstrap=contracts.nexus_bootstrap,
    )
    validators = kind._creation_validators(owner.address, [(1, stack.module, b"")])
    init_nexus = keccak(
        b"initNexus((address,bytes)[],(address,bytes)[],(address,bytes),(address,bytes)[],address,address[],uint8)"
    )[:4]
    call = init_nexus + abi_encode(
        ["(address,bytes)[]", "(address,bytes)[]", "(address,bytes)", "(address,bytes)[]", "address", "address[]",
         "uint8"],
        [validators, [], (hook, HOOK_CONFIG), [], "0x" + "00" * 20, [], 0],
    )  # fmt: skip
    init = abi_encode(["address", "bytes"], [contracts.nexus_bootstrap, call])
    args = abi_encode(["bytes", "bytes32"], [init, bytes(32)])
    compute = keccak(b"computeAccountAddress(bytes,bytes32)")[:4]
    (account,) = abi_decode(["address"], _call(stack, contracts.nexus_factory, compute + args))
    send_transaction(
        stack.node, stack.deployer.address, to=contracts.nexus_factory,
        data=keccak(b"createAccount(bytes,bytes32)")[:4] + args, what="Nexus account creation",
    )  # fmt: skip
    return to_address(account)


def _session_on(hook: str, key: LocalSigner) -> Session:
    """A session whose only permission is a call of the hook's ``onUninstall`` (any arguments)."""
    return Session(
        session_key=key.address,
        max_gas_cost=ETHER,
        permissions=(Permission(target=hook, selector=ON_UNINSTALL),),
    )


def test_a_grant_naming_the_account_s_hook_is_refused_where_the_account_answers(
    stack: LocalStack, contracts, hook: str
) -> None:
    """Nexus answers the hook question: the module refuses to enable a session with a call permission on the hook
    the account runs (``PermissionTargetIsModule(0, hook, 4)``, attack 52)."""
    account = _nexus_account_with_hook(stack, contracts, hook, LocalSigner.generate())
    assert _config_of(stack, hook, account) == HOOK_CONFIG  # the account runs the hook, configured
    error = _call_error(
        stack, stack.module, enable_session_data(_session_on(hook, LocalSigner.generate())), account
    )
    assert error is not None and error[:4] == PERMISSION_TARGET_IS_MODULE, error


def test_the_sdk_refuses_a_grant_on_a_hook_kernel_runs_for_the_account(
    stack: LocalStack, contracts, hook: str
) -> None:
    """Kernel says no to both forms of the hook question, so the module would enable the grant (next test); the
    owner's SDK asks the target and refuses it before anything is signed, naming the hook and why, on chain or off.
    A grant on a contract that is no module of the account is signed as before. Fails without the defence: the
    grant is signed."""
    owner_key = LocalSigner.generate()
    account = _kernel_account_with_root_hook(stack, contracts, hook, owner_key)
    assert _hook_answers(stack, account, hook) == [False, False]  # Kernel never says it has a hook
    net = network_for(stack, contracts.kind("kernel"))
    owner = net.owner(owner_key, account)
    key = SessionKey.generate()
    for onchain in (False, True):
        with pytest.raises(BadInputError) as refused:
            owner.grant(key, [Permission(target=hook, selector=ON_UNINSTALL)], onchain=onchain)
        message = str(refused.value)
        assert hook in message and "hook module initialised for the account" in message, message
        assert "nothing was signed or sent" in message, message
    in_its_domain = Policy.typed_data(
        {"name": "Hook", "chainId": stack.chain_id, "verifyingContract": hook},
        {"Config": [{"name": "delay", "type": "uint256"}]},
        "Config",
    )
    with pytest.raises(
        BadInputError,
        match=r"signing permission 0 .* says it is a hook module initialised for the account.*nothing was signed",
    ):
        owner.grant(
            key, [], typed_data=[in_its_domain]
        )  # its signatures would approve the hook's configuration as the owner
    other = LocalSigner.generate().address  # an EOA: no module of anyone
    grant = owner.grant(key, [Permission(target=other, selector=ON_UNINSTALL)])
    assert grant.account == account


def test_the_consent_page_refuses_a_hand_made_request_on_a_hook_kernel_runs(
    stack: LocalStack, contracts, hook: str
) -> None:
    """A grant request that reaches the consent page without ``prepare_grant`` (built by hand, or edited) is asked
    the same question before anything is shown to the owner: the hook says it is a module initialised for the
    account, and the request is refused. Fails without the defence: the page takes it."""
    from keyscope.consent import ConsentServer

    owner_key = LocalSigner.generate()
    account = _kernel_account_with_root_hook(stack, contracts, hook, owner_key)
    net = network_for(stack, contracts.kind("kernel"))
    owner = net.owner(owner_key, account)
    session = owner.session_for(SessionKey.generate(), [Permission(target=hook, selector=ON_UNINSTALL)])
    request = hand_made_request(owner, session)
    with pytest.raises(BadInputError, match=r"says it is a hook module initialised for the account"):
        ConsentServer(net).request_grant(request)


def test_residual_a_grant_made_without_the_sdk_lets_a_kernel_session_key_wipe_the_root_validator_s_hook(
    stack: LocalStack, contracts, hook: str
) -> None:
    """What the module alone cannot refuse on Kernel (the threat model's residual): a grant made without keyscope's
    SDK (the owner enabling it on chain, a transaction from the account standing for the owner's operation) is
    enabled, and the key's own operation, sent to the EntryPoint's ``handleOps``, calls ``hook.onUninstall("")``
    from the account: the hook's configuration for the account is gone."""
    owner = LocalSigner.generate()
    key = LocalSigner.generate()
    account = _kernel_account_with_root_hook(stack, contracts, hook, owner)
    stack.fund(account, ETHER)
    node = stack.node
    node.request("anvil_impersonateAccount", [account])
    try:
        send_transaction(node, account, to=stack.module, data=enable_session_data(_session_on(hook, key)),
                         what="the owner's on-chain grant")  # fmt: skip
    finally:
        node.request("anvil_stopImpersonatingAccount", [account])

    kernel = KernelAccountKind()
    call_data = encode_execute(Call(hook, 0, ON_UNINSTALL + abi_encode(["bytes"], [b""])))
    op = UserOperation(
        sender=account,
        nonce=kernel.nonce_key(stack.module, 0) << 64,
        call_data=call_data,
        call_gas_limit=300_000,
        verification_gas_limit=500_000,
        pre_verification_gas=60_000,
        max_fee_per_gas=2 * 10**9,
        max_priority_fee_per_gas=10**9,
    )
    packed = op.pack()
    digest = user_op_hash_v07(packed, stack.entry_point, stack.chain_id)
    packed = packed.model_copy(update={"signature": key.sign_hash(digest)})
    beneficiary = stack.deployer.address
    send_transaction(node, beneficiary, to=stack.entry_point, data=encode_handle_ops([packed], beneficiary),
                     what="handleOps")  # fmt: skip

    assert _config_of(stack, hook, account) == b""  # the hook no longer binds the owner's root validator
