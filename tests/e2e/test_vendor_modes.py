"""The validation modes other vendors' accounts add, tried with a session key: Nexus 1.0's module-enable mode and
Kernel v3.1's enable mode (each installs a module during validation on the word of a validator the operation names
or the account's root validator), Kernel's nonce invalidation, and the ``executeUserOp`` entry point through which
an account runs other calldata than the ``execute`` the module judged; and the owner's own enable signature of the
session module, its install data granting sessions, replayed after the owner ended them.

Each attack runs on the released bytecode (fetched at set-up from ``@rhinestone/modulekit``) on a real anvil with
the real EntryPoint v0.7 and Alto bundler, as ``tests/e2e/test_accounts.py`` does. The module the attacker wants
installed is ``contracts/test/GreedyModule.sol``, which says yes to every operation and every signature. Where an
account's enable mode is tried, the owner's own enable signature of the same operation shape installs that module
afterwards: the encoding is the account's, and only the signature stood in the way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from keyscope import (
    BundlerRejectedError,
    Network,
    Owner,
    Policy,
    SessionGrant,
    SessionKey,
    arg,
    function_call,
)
from keyscope.erc1271 import Signer, encode_typed_data_signature
from keyscope.errors import BadInputError, KeyscopeError, SimulationRevertedError
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak, to_address, to_bytes
from keyscope.local import LocalStack
from keyscope.module import enable_session_data
from keyscope.session import Permission, Session
from keyscope.session_account import SessionAccount
from keyscope.signing import LocalSigner
from keyscope.typed_data import Frames, TypedData
from keyscope.userop import UserOperation
from support.accounts import AccountContracts, deploy_accounts, network_for
from support.install_data import encode_install_sessions
from support.permit_types import LIMIT, PERMIT_SINGLE_TYPES, ROUTER, permit2_permit
from support.sdk import hand_made_request
from support.signatures import forge_typed_data
from support.victims import deploy, view

pytestmark = pytest.mark.e2e

ETHER = 10**18
MINT = "safeMint(address)"
SIGN_IN_SITE = "app.example.com"
MAGIC = bytes.fromhex("1626ba7e")
INVALID = bytes.fromhex("ffffffff")


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


# -- one stack ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(code_size_unlimited_stack: LocalStack) -> Iterator[LocalStack]:
    """The test process's stack without EIP-170's code size limit (``code_size_unlimited_stack``), shared with the
    other files deploying the vendors' accounts: this file's contracts and accounts are its own deployments."""
    yield code_size_unlimited_stack


@pytest.fixture(scope="module")
def contracts(stack: LocalStack) -> AccountContracts:
    return deploy_accounts(stack)


@pytest.fixture(scope="module")
def greedy(stack: LocalStack) -> str:
    """The attacker's module: every type, every operation validates, every signature is valid."""
    return deploy(stack, "GreedyModule")


@pytest.fixture(scope="module")
def permits(stack: LocalStack) -> str:
    return deploy(stack, "SignedPermits")


def created_account(stack: LocalStack, contracts: AccountContracts, kind_name: str) -> tuple[Network, Owner]:
    """A new account of ``kind_name`` (the session module installed at creation), funded and created."""
    net = network_for(stack, contracts.kind(kind_name))
    net.kind = contracts.kind(kind_name, net)
    owner = net.owner(LocalSigner.generate())
    stack.fund(owner.account, ETHER)
    assert owner.execute(function_call(stack.nft, MINT, owner.signer.address)).wait().success
    return net, owner


def signing_session(
    owner: Owner, net: Network, stack: LocalStack, permits: str, recipient: str
) -> tuple[SessionAccount, SessionKey]:
    """A session enabled on chain that mints to ``recipient`` and may sign Permit2 permits and sign-ins: a session
    key holding signing permissions, as the attacker would like it."""
    key = SessionKey.generate()
    permit2 = Policy.typed_data(
        {"name": "Permit2", "chainId": net.chain_id, "verifyingContract": permits},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") <= LIMIT, arg("spender") == ROUTER],
    )
    grant = owner.grant(
        key,
        [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])],
        typed_data=[permit2],
        sign_in=[SIGN_IN_SITE],
        onchain=True,
    )
    return net.session(grant, key), key


def nft_balance(stack: LocalStack, holder: str) -> int:
    return view(stack, stack.nft, "balanceOf(address)", ["address"], [holder])


def call(stack: LocalStack, to: str, signature: str, types: list[str], args: list[Any]) -> bytes:
    data = selector(signature) + abi_encode(types, args)
    return bytes.fromhex(
        stack.node.request("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])[2:]
    )


def module_refusal(stack: LocalStack, account: str, sender: str, digest: bytes, signature: bytes) -> bytes:
    """The revert data of the module's ``requireValidSignature(account, sender, digest, signature)``: why it refuses
    the signature when ``sender`` asks (empty when it accepts)."""
    data = selector("requireValidSignature(address,address,bytes32,bytes)") + abi_encode(
        ["address", "address", "bytes32", "bytes"], [account, sender, digest, signature]
    )
    try:
        stack.node.request("eth_call", [{"to": stack.module, "data": "0x" + data.hex()}, "latest"])
    except KeyscopeError as error:
        raw = getattr(error, "data", None)
        if isinstance(raw, dict):
            raw = raw.get("data")
        assert isinstance(raw, str) and raw.startswith("0x"), error
        return bytes.fromhex(raw[2:])
    return b""


def sender_forbidden(account: str) -> bytes:
    return selector("SignatureSenderForbidden(address)") + abi_encode(["address"], [account])


def rejected(net: Network, op: UserOperation) -> SimulationRevertedError:
    """Send ``op`` and return the bundler's refusal in validation (AA23, with the revert data)."""
    with pytest.raises(BundlerRejectedError) as refused:
        net.bundler.send_user_operation(op, net.entry_point)
    assert refused.value.reason == "AA23", refused.value
    assert isinstance(refused.value, SimulationRevertedError), refused.value
    return refused.value


def with_gas_room(net: Network, op: UserOperation, nonce_key: int) -> UserOperation:
    """``op`` moved to ``nonce_key`` (its next nonce there), with room in its verification gas for an install and in
    its call gas for a mint to a new holder."""
    return op.replace(
        nonce=net.chain.get_nonce(net.entry_point, op.sender, nonce_key),
        verification_gas_limit=op.verification_gas_limit + 600_000,
        call_gas_limit=op.call_gas_limit + 100_000,
    )


# -- Nexus 1.0: MODULE_ENABLE mode ----------------------------------------------------------------------

NEXUS_MODE_MODULE_ENABLE = 0x01
MODULE_ENABLE_MODE_TYPES = {
    "ModuleEnableMode": [
        {"name": "module", "type": "address"},
        {"name": "moduleType", "type": "uint256"},
        {"name": "userOpHash", "type": "bytes32"},
        {"name": "initDataHash", "type": "bytes32"},
    ]
}
MODULE_ENABLE_MODE_TYPEHASH = keccak(
    b"ModuleEnableMode(address module,uint256 moduleType,bytes32 userOpHash,bytes32 initDataHash)"
)


def nexus_enable_signature(
    module: str, module_type: int, init_data: bytes, enable_signature: bytes, user_op_signature: bytes
) -> bytes:
    """Nexus 1.0's MODULE_ENABLE ``userOp.signature``: module (20) | moduleType (32) | initData's length (4) | initData
    | the enable signature's length (4) | enable signature (its validator's address (20), then what it checks) | the
    operation's signature for the nonce's validator."""
    return (
        to_bytes(module, length=20)
        + module_type.to_bytes(32, "big")
        + len(init_data).to_bytes(4, "big")
        + init_data
        + len(enable_signature).to_bytes(4, "big")
        + enable_signature
        + user_op_signature
    )


def nexus_enable_digest(
    stack: LocalStack, account: str, module: str, module_type: int, user_op_hash: bytes
) -> bytes:
    """What Nexus asks the enable signature's validator about: its own EIP-712 hash (``hashTypedData``) of
    ``ModuleEnableMode(module, moduleType, userOpHash, keccak(initData))``, initData empty."""
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "address", "uint256", "bytes32", "bytes32"],
            [MODULE_ENABLE_MODE_TYPEHASH, module, module_type, user_op_hash, keccak(b"")],
        )
    )
    return call(stack, account, "hashTypedData(bytes32)", ["bytes32"], [struct_hash])


def account_domain(stack: LocalStack, account: str) -> dict[str, Any]:
    """The account's EIP-712 domain as its ``eip712Domain()`` (ERC-5267) gives it: name, version, chain id and the
    account (Nexus 1.0.0's bytecode names its domain's version "1.0.1")."""
    fields, name, version, chain_id, verifying, _salt, _extensions = abi_decode(
        ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"],
        call(stack, account, "eip712Domain()", [], []),
    )
    assert fields == b"\x0f", fields
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": to_address(verifying)}


def nexus_is_installed(stack: LocalStack, account: str, module_type: int, module: str) -> bool:
    answer = call(
        stack,
        account,
        "isModuleInstalled(uint256,address,bytes)",
        ["uint256", "address", "bytes"],
        [module_type, module, b""],
    )
    return bool(int.from_bytes(answer, "big"))


def test_nexus_module_enable_mode_installs_nothing_on_a_session_signature(
    stack: LocalStack, contracts: AccountContracts, greedy: str, permits: str
) -> None:
    """Nexus's MODULE_ENABLE mode (mode byte 0x01 in the nonce key) installs the module named in the signature during
    validation if the validator named in the enable signature answers ERC-1271's magic value to
    ``isValidSignatureWithSender(the account, Nexus's EIP-712 hash of ModuleEnableMode, ...)``, then validates the
    operation with the nonce's validator. A session key names the session module as both: its operation (a mint its
    grant allows) validates, and the enable signature is the session's own, in every form the module reads: a
    permit it may sign, a sign-in, its key's typed-data signature of ModuleEnableMode in the account's domain, its
    bare ECDSA of the digest. The module refuses any signature the account itself asks about, so Nexus installs
    nothing (EnableModeSigError, AA23), as validator or as executor. A session that could sign ModuleEnableMode in the
    account's domain is refused when it is enabled. The owner's validator, named instead, installs the same module
    from the same operation."""
    net, owner = created_account(stack, contracts, "nexus")
    account, recipient = owner.account, owner.signer.address
    session, key = signing_session(owner, net, stack, permits, recipient)
    mint = function_call(stack.nft, MINT, recipient)
    minted = nft_balance(stack, recipient)

    # A session whose grant would let it sign ModuleEnableMode in the account's own domain: the SDK refuses to prepare
    # it, and the module refuses to enable it (the grant built and signed by the owner here without the SDK's
    # refusal), so no key ever holds that permission.
    enable_domain = account_domain(stack, account)
    assert enable_domain["name"] == "Nexus" and enable_domain["verifyingContract"] == account
    forbidden = Policy.typed_data(enable_domain, MODULE_ENABLE_MODE_TYPES, "ModuleEnableMode")
    other_key = SessionKey.generate()
    allowed_mint = [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])]
    with pytest.raises(
        BadInputError, match=r"in the domain of the account itself .*\(ForbiddenSigningDomain\)"
    ):
        owner.prepare_grant(other_key, allowed_mint, typed_data=[forbidden])
    unrefused = owner.session_for(other_key, allowed_mint, typed_data=[forbidden])
    request = hand_made_request(owner, unrefused)
    # signed past the SDK's checks (sign_grant judges a request it did not prepare, and refuses this one): the
    # account accepts the owner's signature, and the chain is left to refuse the grant
    digest = owner.kind.erc1271_digest(account, request.chain_id, request.digest)
    signature = owner.kind.wrap_erc1271_signature(owner.signer.sign_hash(digest))
    other = net.session(request.complete(signature, check=False), other_key)
    with pytest.raises(SimulationRevertedError) as enabling:  # its first operation (ENABLE), estimated
        other.build(mint, check=False)
    assert enabling.value.reason == "AA23", enabling.value
    assert enabling.value.revert_data == selector("ForbiddenSigningDomain(uint256,address)") + abi_encode(
        ["uint256", "address"], [0, account]
    )

    enable_mode_sig_error = selector("EnableModeSigError()")
    for module_type in (1, 2):  # validator, executor
        template = session.build(mint)
        nonce_key = session.nonce_key() | (NEXUS_MODE_MODULE_ENABLE << 160)
        op = with_gas_room(net, template, nonce_key)
        user_op_hash = net.user_op_hash(op)
        digest = nexus_enable_digest(stack, account, greedy, module_type, user_op_hash)
        enable_data = {
            "types": MODULE_ENABLE_MODE_TYPES,
            "primaryType": "ModuleEnableMode",
            "domain": enable_domain,
            "message": {
                "module": greedy,
                "moduleType": module_type,
                "userOpHash": user_op_hash,
                "initDataHash": keccak(b""),
            },
        }
        assert TypedData(enable_data).digest == digest  # what the attacker signs is what Nexus asks about
        behind_module = bytes.fromhex(stack.module[2:])
        attempts = {
            "a permit the session may sign": session.sign_typed_data(permit2_permit(permits, net.chain_id)),
            "a sign-in the session may sign": session.sign_in(SIGN_IN_SITE, uri=f"https://{SIGN_IN_SITE}")[1],
            "the key's typed-data signature of ModuleEnableMode": forge_typed_data(other, enable_data),
            "the enabled key's ModuleEnableMode in the typed-data layout": behind_module
            + typed_data_signature_of(session, key, digest),
            "the key's bare signature of the digest": behind_module + key.sign_hash(digest),
        }
        for what, enable_signature in attempts.items():
            assert enable_signature[:20] == behind_module, what
            # the module's answer to the question Nexus asks (sender: the account itself)
            assert module_refusal(stack, account, account, digest, enable_signature[20:]) == sender_forbidden(
                account
            ), what
            signature = nexus_enable_signature(
                greedy, module_type, b"", enable_signature, key.sign_hash(user_op_hash)
            )
            refused = rejected(net, op.replace(signature=signature))
            assert refused.revert_data[:4] == enable_mode_sig_error, (what, refused)
            assert not nexus_is_installed(stack, account, module_type, greedy), what
        # the session's own operation, on its own lane, is untouched
        assert session.execute(stack.nft, MINT, recipient).wait().success
    assert nft_balance(stack, recipient) == minted + 2

    # The same operation with the owner's validator named as the enable signature's validator: Nexus installs the
    # attacker's module (so the encoding above is Nexus's own, and the session's signature is all that failed).
    op = with_gas_room(net, session.build(mint), session.nonce_key() | (NEXUS_MODE_MODULE_ENABLE << 160))
    user_op_hash = net.user_op_hash(op)
    digest = nexus_enable_digest(stack, account, greedy, 1, user_op_hash)
    by_owner = bytes.fromhex(contracts.owner_validator[2:]) + owner.signer.sign_hash(digest)
    signature = nexus_enable_signature(greedy, 1, b"", by_owner, key.sign_hash(user_op_hash))
    assert net.bundler.send_user_operation(op.replace(signature=signature), net.entry_point)
    deadline_wait(lambda: nexus_is_installed(stack, account, 1, greedy))


def typed_data_signature_of(session: SessionAccount, key: SessionKey, digest: bytes) -> bytes:
    """The TYPED DATA layout of an enabled session's key holding ``digest`` itself as its contents' single word
    (under the account's domain hash as the application's domain): the best a key can make of a raw digest."""
    grant = session.grant
    header = Signer(grant.session_key, grant.session_id).header(key.sign_hash(digest), None)
    frames = Frames(sizes=(1,), nested_type_hashes=(), words=(digest,))
    return encode_typed_data_signature(header, digest, MODULE_ENABLE_MODE_TYPEHASH, frames)


def deadline_wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``condition`` holds (an operation the bundler took has landed)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.5)


# -- Kernel v3.1: enable mode ---------------------------------------------------------------------------

KERNEL_MODE_ENABLE = 0x01
KERNEL_TYPE_VALIDATOR = 0x01
KERNEL_ENABLE_TYPEHASH = keccak(
    b"Enable(bytes21 validationId,uint32 nonce,address hook,bytes validatorData,bytes hookData,bytes selectorData)"
)
EXECUTE = selector("execute(bytes32,bytes)")


def kernel_vid(module: str) -> bytes:
    return bytes([KERNEL_TYPE_VALIDATOR]) + to_bytes(module, length=20)


def kernel_enable_digest(net: Network, stack: LocalStack, account: str, module: str) -> bytes:
    """What Kernel asks its root validator about to enable ``module`` as a validator (no hook, no data, ``execute``
    allowed): its EIP-712 hash of ``Enable(vId, currentNonce, hook 0, keccak(""), keccak(""), keccak(execute))``."""
    current = int.from_bytes(call(stack, account, "currentNonce()", [], []), "big")
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes21", "uint32", "address", "bytes32", "bytes32", "bytes32"],
            [
                KERNEL_ENABLE_TYPEHASH,
                kernel_vid(module),
                current,
                "0x" + "00" * 20,
                keccak(b""),
                keccak(b""),
                keccak(EXECUTE),
            ],
        )
    )
    separator = net.kind.domain_separator(account, net.chain_id)  # type: ignore[attr-defined]
    return keccak(b"\x19\x01" + separator + struct_hash)


def kernel_enable_signature(enable_signature: bytes, user_op_signature: bytes) -> bytes:
    """Kernel v3.1's enable-mode ``userOp.signature``: hook (20 bytes, none) | abi.encode(validatorData, hookData,
    selectorData, enableSig, userOpSig)."""
    return bytes(20) + abi_encode(
        ["bytes", "bytes", "bytes", "bytes", "bytes"],
        [b"", b"", EXECUTE, enable_signature, user_op_signature],
    )


def kernel_hook_of(stack: LocalStack, account: str, module: str) -> str:
    """The hook of ``module``'s validation config on the account: 0 while it is not installed (1: installed, no hook)."""
    answer = call(stack, account, "validationConfig(bytes21)", ["bytes21"], [kernel_vid(module)])
    return "0x" + answer[44:64].hex()


def test_kernel_enable_mode_asks_its_root_validator_never_a_session(
    stack: LocalStack, contracts: AccountContracts, greedy: str, permits: str
) -> None:
    """Kernel v3.1's enable mode (mode byte 0x01 in the nonce key) installs the validator the nonce names, with the
    selectors of the signature's selectorData, if the account's root validator approves Kernel's EIP-712 ``Enable``
    hash (``isValidSignatureWithSender(the account, ...)``), and lets that validator validate the operation. The
    signer is not named by the operation: only the root validator (here the owner's) is asked. A session key
    offers its signatures, in every form the session module reads, as the enable signature of the attacker's
    validator: Kernel refuses each (AA23, nothing installed, Kernel's nonce unmoved), and the session module would
    refuse them too if it were the root (the account is the sender). The owner's signature of the same hash
    installs it."""
    net, owner = created_account(stack, contracts, "kernel")
    account, recipient = owner.account, owner.signer.address
    session, key = signing_session(owner, net, stack, permits, recipient)
    attacker = LocalSigner.generate().address
    nonce_key = (KERNEL_MODE_ENABLE << 184) | (int(kernel_vid(greedy).hex(), 16) << 16) | 7
    template = session.build(function_call(stack.nft, MINT, recipient))
    # what the attacker's validator would let through: a mint to the attacker
    op = with_gas_room(net, template, nonce_key).replace(
        call_data=encode_execute(function_call(stack.nft, MINT, attacker))
    )
    before = call(stack, account, "currentNonce()", [], [])
    digest = kernel_enable_digest(net, stack, account, greedy)
    behind_module = bytes([KERNEL_TYPE_VALIDATOR]) + bytes.fromhex(stack.module[2:])
    permit = session.sign_typed_data(permit2_permit(permits, net.chain_id))
    sign_in = session.sign_in(SIGN_IN_SITE, uri=f"https://{SIGN_IN_SITE}")[1]
    attempts = {
        "a permit the session may sign, as Kernel's ERC-1271 takes it": permit,
        "the same without Kernel's validator prefix": permit[len(behind_module) :],
        "a sign-in the session may sign": sign_in[len(behind_module) :],
        "the key's typed-data layout holding the digest": typed_data_signature_of(session, key, digest),
        "the key's bare signature of the digest": key.sign_hash(digest),
    }
    for what, enable_signature in attempts.items():
        if enable_signature[:21] != behind_module:
            # the question Kernel would ask the session module if it were the root validator
            assert module_refusal(stack, account, account, digest, enable_signature) == sender_forbidden(
                account
            ), what
        refused = rejected(net, op.replace(signature=kernel_enable_signature(enable_signature, b"")))
        assert refused.revert_data[:4] == selector("EnableNotApproved()"), (what, refused)
        assert kernel_hook_of(stack, account, greedy) == "0x" + "00" * 20, what
    assert call(stack, account, "currentNonce()", [], []) == before
    assert nft_balance(stack, attacker) == 0

    # The owner's signature of the same hash: Kernel enables the attacker's validator, which lets the mint through.
    signature = kernel_enable_signature(owner.signer.sign_hash(digest), b"")
    assert net.bundler.send_user_operation(op.replace(signature=signature), net.entry_point)
    deadline_wait(lambda: nft_balance(stack, attacker) == 1)
    assert kernel_hook_of(stack, account, greedy) == "0x" + "00" * 19 + "01"


# -- Kernel v3.1: nonce invalidation ---------------------------------------------------------------------


def test_residual_kernels_nonce_invalidation_stops_a_sessions_operations_not_its_signatures(
    stack: LocalStack, contracts: AccountContracts, permits: str
) -> None:
    """Kernel's ``invalidateNonce`` (the root's way to disable every other validator at once) makes the session's
    operations fail (Kernel's InvalidNonce, AA23) but leaves the session module installed: Kernel's
    ``isValidSignature`` does not look at the nonce, so the session's permits still verify, within its signing
    permissions. keyscope's revocation ends them."""
    net, owner = created_account(stack, contracts, "kernel")
    recipient = owner.signer.address
    session, _key = signing_session(owner, net, stack, permits, recipient)
    data = permit2_permit(permits, net.chain_id)
    digest = TypedData(data).digest
    signature = session.sign_typed_data(data)

    def accepted(signature: bytes) -> bool:
        answer = call(
            stack,
            permits,
            "isValidSignatureNow(address,bytes32,bytes)",
            ["address", "bytes32", "bytes"],
            [owner.account, digest, signature],
        )
        return bool(int.from_bytes(answer, "big"))

    assert accepted(signature)
    current = int.from_bytes(call(stack, owner.account, "currentNonce()", [], []), "big")
    invalidate = selector("invalidateNonce(uint32)") + abi_encode(["uint32"], [current + 1])
    assert owner.execute(Call(owner.account, 0, invalidate)).wait().success

    with pytest.raises(SimulationRevertedError) as refused:
        session.execute(stack.nft, MINT, recipient)
    assert refused.value.reason == "AA23" and refused.value.revert_data == selector("InvalidNonce()"), (
        refused.value
    )
    assert accepted(signature)  # residual: the session still signs
    assert session.sign_typed_data(data)

    assert owner.revoke(session.grant).wait().success
    assert not accepted(signature)


# -- executeUserOp: the account runs other calldata than the module judged ---------------------------------------


@pytest.mark.parametrize("kind_name", ["keyscope", "kernel", "nexus", "safe7579", "msa"])
def test_execute_user_op_is_refused_on_every_kind(
    stack: LocalStack, contracts: AccountContracts, kind_name: str
) -> None:
    """ERC-4337's ``executeUserOp``: when an operation's callData starts with its selector, the EntryPoint calls
    ``account.executeUserOp(userOp, userOpHash)``, and Kernel, Nexus and the reference account then run
    ``callData[4:]`` themselves (a delegatecall to self, with the EntryPoint as the caller). A session's operation
    wrapping an ``execute`` the grant does not allow, or ``installModule``, is refused by the module on every kind
    (UnsupportedSelector, AA23): it judges only an ``execute`` it reads from the callData's first byte."""
    net, owner = created_account(stack, contracts, kind_name)
    recipient = owner.signer.address
    key = SessionKey.generate()
    grant = owner.grant(
        key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])], onchain=True
    )
    session = net.session(grant, key)
    attacker = LocalSigner.generate().address
    wrapper = selector(
        "executeUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
    )
    template = session.build(function_call(stack.nft, MINT, recipient))
    wrapped = {
        "a mint to the attacker": encode_execute(function_call(stack.nft, MINT, attacker)),
        "the allowed mint": encode_execute(function_call(stack.nft, MINT, recipient)),
        "installModule": selector("installModule(uint256,address,bytes)")
        + abi_encode(["uint256", "address", "bytes"], [1, attacker, b""]),
    }
    for what, inner in wrapped.items():
        op = template.replace(
            call_data=wrapper + inner,
            nonce=net.chain.get_nonce(net.entry_point, owner.account, session.nonce_key()),
        )
        op = op.replace(signature=key.sign_hash(net.user_op_hash(op)))
        refused = rejected(net, op)
        if kind_name != "safe7579":  # Safe7579 replaces the module's revert data with its own
            assert refused.revert_data == selector("UnsupportedSelector(bytes4)") + wrapper.ljust(
                32, b"\0"
            ), (
                what,
                refused,
            )
    assert nft_balance(stack, attacker) == 0
    assert session.execute(stack.nft, MINT, recipient).wait().success


# -- the owner's enable signature of the session module, its install data granting sessions, replayed -----------


def end_sessions(owner: Owner, grant: SessionGrant, ended_by: str) -> None:
    """The owner ends ``grant``'s session: uninstalls the module (keyscope's uninstall: invalidate, then uninstall),
    invalidates every session, or revokes this one."""
    if ended_by == "uninstall":
        owner.uninstall_sessions().wait()
    elif ended_by == "invalidate_all":
        owner.invalidate_all().wait()
    else:
        owner.revoke(grant).wait()


def kernel_validation_nonce(stack: LocalStack, account: str, module: str) -> int:
    """The nonce Kernel recorded for ``module``'s validation config (kept when it is uninstalled)."""
    answer = call(stack, account, "validationConfig(bytes21)", ["bytes21"], [kernel_vid(module)])
    return int.from_bytes(answer[:32], "big")


def kernel_current_nonce(stack: LocalStack, account: str) -> int:
    return int.from_bytes(call(stack, account, "currentNonce()", [], []), "big")


def kernel_install_digest(net: Network, stack: LocalStack, account: str, validator_data: bytes) -> bytes:
    """Kernel's EIP-712 hash of ``Enable(vId, currentNonce, hook 0, keccak(validator_data), keccak(""),
    keccak(execute))``: the session module enabled with ``validator_data`` as its ``onInstall`` data."""
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes21", "uint32", "address", "bytes32", "bytes32", "bytes32"],
            [
                KERNEL_ENABLE_TYPEHASH,
                kernel_vid(stack.module),
                kernel_current_nonce(stack, account),
                "0x" + "00" * 20,
                keccak(validator_data),
                keccak(b""),
                keccak(EXECUTE),
            ],
        )
    )
    separator = net.kind.domain_separator(account, net.chain_id)  # type: ignore[attr-defined]
    return keccak(b"\x19\x01" + separator + struct_hash)


def kernel_install_signature(
    validator_data: bytes, enable_signature: bytes, user_op_signature: bytes
) -> bytes:
    """Kernel's enable-mode ``userOp.signature`` enabling the session module with ``validator_data``."""
    return bytes(20) + abi_encode(
        ["bytes", "bytes", "bytes", "bytes", "bytes"],
        [validator_data, b"", EXECUTE, enable_signature, user_op_signature],
    )


def nexus_install_digest(stack: LocalStack, account: str, init_data: bytes, user_op_hash: bytes) -> bytes:
    """Nexus's EIP-712 hash of ``ModuleEnableMode(session module, 1, userOpHash, keccak(init_data))``."""
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "address", "uint256", "bytes32", "bytes32"],
            [MODULE_ENABLE_MODE_TYPEHASH, stack.module, 1, user_op_hash, keccak(init_data)],
        )
    )
    return call(stack, account, "hashTypedData(bytes32)", ["bytes32"], [struct_hash])


class EnableInstall:
    """An account's enable-mode operation installing the session module with a session in its install data,
    signed by the owner, validated by the session's key (the nonce names the module), and how anyone holding it
    makes another operation of it: the same enable fields, the account's next nonce on the lane, the key's
    signature of the new operation."""

    def __init__(
        self,
        net: Network,
        stack: LocalStack,
        owner: Owner,
        owner_validator: str,
        key: SessionKey,
        session: Session,
    ) -> None:
        self.net, self.stack, self.owner, self.key = net, stack, owner, key
        self.owner_validator = bytes.fromhex(owner_validator[2:])
        self.kind_name = owner.kind.name
        self.install_data = encode_install_sessions([session])
        account = owner.account
        if self.kind_name == "kernel":
            self.nonce_key = (KERNEL_MODE_ENABLE << 184) | (int(kernel_vid(stack.module).hex(), 16) << 16) | 9
        else:
            self.nonce_key = net.kind.nonce_key(stack.module, 9) | (NEXUS_MODE_MODULE_ENABLE << 160)
        template = owner.build(function_call(stack.nft, MINT, owner.signer.address))
        self.template = template.replace(
            verification_gas_limit=template.verification_gas_limit + 900_000,
            call_gas_limit=template.call_gas_limit + 100_000,
            pre_verification_gas=template.pre_verification_gas + 60_000,
        )
        first = self._next()
        if self.kind_name == "kernel":
            self.digest = kernel_install_digest(net, stack, account, self.install_data)
        else:
            self.digest = nexus_install_digest(stack, account, self.install_data, net.user_op_hash(first))
        self.enable_signature = owner.signer.sign_hash(self.digest)
        self.first = self.signed(first)

    def _next(self) -> UserOperation:
        nonce = self.net.chain.get_nonce(self.net.entry_point, self.owner.account, self.nonce_key)
        return self.template.replace(nonce=nonce)

    def signed(self, op: UserOperation) -> UserOperation:
        """``op`` carrying the owner's enable signature and the key's signature of ``op``."""
        user_op_signature = self.key.sign_hash(self.net.user_op_hash(op))
        if self.kind_name == "kernel":
            signature = kernel_install_signature(self.install_data, self.enable_signature, user_op_signature)
        else:
            by_owner = self.owner_validator + self.enable_signature
            signature = nexus_enable_signature(
                self.stack.module, 1, self.install_data, by_owner, user_op_signature
            )
        return op.replace(signature=signature)

    def replayed(self) -> UserOperation:
        return self.signed(self._next())


@pytest.mark.parametrize("ended_by", ["uninstall", "invalidate_all", "revoke"])
@pytest.mark.parametrize("kind_name", ["kernel", "nexus"])
def test_an_enable_signature_installing_sessions_revives_none_the_owner_ended(
    stack: LocalStack, contracts: AccountContracts, kind_name: str, ended_by: str
) -> None:
    """The owner installs the session module through the account's enable mode (Kernel's ``Enable``, Nexus's
    ``ModuleEnableMode``), its install data granting a session (``onInstall``: ``abi.encode(Session[])``), in an
    operation the session's key validates; the session runs; the owner ends it (uninstall, invalidate every session,
    revoke it). The session's key, holding the operation and so the owner's enable signature, makes another operation
    of it: the same enable fields, the next nonce, its own signature. The module would take those bytes again (a
    reinstall enables the session afresh at the new epoch, under a new id; installed, it first ends every session and
    enables it still): only the account refuses them. Kernel: the owner's signature is still valid (``Enable`` names
    the account's ``currentNonce``, unmoved), but Kernel installs a validator only at a nonce above the one it
    recorded for it, which the first install set to that very nonce and no uninstall lowers: ``InvalidNonce()``.
    Nexus: ``ModuleEnableMode`` names the operation's hash, which the EntryPoint's nonce makes new:
    ``EnableModeSigError()``. The session stays dead, under both ids. Without the account's refusal the session
    comes back: with Kernel's recorded nonce set to 0 in the account's storage the same replay lands after each of
    the three ends, and a Nexus enable signature that did not name the operation (the owner's signature of the
    replay's hash) lands after the uninstall. (Threat model 162.)"""
    net, owner = created_account(stack, contracts, kind_name)
    account, recipient = owner.account, owner.signer.address
    owner.uninstall_sessions().wait()  # installed at creation: the owner installs it again, by enable mode
    if kind_name == "kernel":
        # Kernel kept the nonce of that install: enabling the module again needs a nonce above it
        assert kernel_validation_nonce(stack, account, stack.module) == kernel_current_nonce(stack, account)
        above = kernel_current_nonce(stack, account) + 1
        invalidate_nonce = selector("invalidateNonce(uint32)") + abi_encode(["uint32"], [above])
        owner.execute(Call(account, 0, invalidate_nonce)).wait()
    key = SessionKey.generate()
    session = owner.session_for(
        key, [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])]
    )
    enable = EnableInstall(net, stack, owner, contracts.owner_validator, key, session)
    minted = nft_balance(stack, recipient)
    assert net.bundler.send_user_operation(enable.first, net.entry_point)
    deadline_wait(lambda: nft_balance(stack, recipient) == minted + 1)
    grant = owner.request_for(session).enabled_on_chain()
    assert module_active(stack, account, grant.session_id)
    assert net.session(grant, key).execute(stack.nft, MINT, recipient).wait().success

    end_sessions(owner, grant, ended_by)
    assert not module_active(stack, account, grant.session_id)
    epoch = owner.epoch()
    replay = enable.replayed()
    refused = rejected(net, replay)
    if kind_name == "kernel":
        # the owner's signature still verifies: Kernel's nonce refuses it
        assert kernel_install_digest(net, stack, account, enable.install_data) == enable.digest
        assert refused.revert_data == selector("InvalidNonce()"), refused
    else:
        assert (
            nexus_install_digest(stack, account, enable.install_data, net.user_op_hash(replay))
            != enable.digest
        )
        assert refused.revert_data == selector("EnableModeSigError()"), refused
    assert owner.epoch() == epoch
    now = owner.request_for(
        session
    )  # the id the session would have, enabled again now (revoked: the same id)
    assert (now.session_id == grant.session_id) == (ended_by == "revoke")
    for session_id in (grant.session_id, now.session_id):
        assert not module_active(stack, account, session_id)
    assert nft_balance(stack, recipient) == minted + 2
    assert owner.supports_sessions() == (ended_by != "uninstall")


def module_active(stack: LocalStack, account: str, session_id: bytes) -> bool:
    """The module's ``isSessionActive(account, session_id)``."""
    answer = call(
        stack, stack.module, "isSessionActive(address,bytes32)", ["address", "bytes32"], [account, session_id]
    )
    return bool(int.from_bytes(answer, "big"))


def test_residual_an_unused_kernel_enable_signature_installing_sessions_outlives_invalidate_all(
    stack: LocalStack, contracts: AccountContracts
) -> None:
    """An enable signature of the account carrying sessions in the module's install data, not used yet, is the
    account's, not the module's: ``invalidateAllSessions`` ends every session and every grant the module's own
    signature made (attack 19: bound to the epoch), not this one. On Kernel the owner signs ``Enable`` of the session
    module with a session in ``validatorData`` and hands the operation to the session's holder; the owner then
    invalidates every session; the holder sends it: Kernel installs the module and the module enables the session, at
    the new epoch. A revocation of the session's id made before (at the epoch it will be enabled at) does stop it
    (``SessionIsRevoked``), and Kernel's own ``invalidateNonce`` above the signed nonce ends the signature itself
    (``EnableNotApproved``): that is how such a signature is ended. keyscope never makes one. (Threat model 162.)"""
    net, owner = created_account(stack, contracts, "kernel")
    account, recipient = owner.account, owner.signer.address
    owner.uninstall_sessions().wait()
    invalidate_nonce = selector("invalidateNonce(uint32)")
    above = kernel_current_nonce(stack, account) + 1
    owner.execute(Call(account, 0, invalidate_nonce + abi_encode(["uint32"], [above]))).wait()
    mint = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])

    def pending() -> tuple[Session, EnableInstall]:
        key = SessionKey.generate()
        session = owner.session_for(key, [mint])
        return session, EnableInstall(net, stack, owner, contracts.owner_validator, key, session)

    # revoked by its id before it is used: the module refuses to enable it, so Kernel installs nothing
    session, revoked = pending()
    owner.revoke(owner.request_for(session).session_id).wait()
    refused = rejected(net, revoked.first)
    assert refused.revert_data[:4] == selector("SessionIsRevoked(bytes32)"), refused

    # ended by Kernel's nonce: the signature no longer verifies
    _, ended = pending()
    above = kernel_current_nonce(stack, account) + 1
    owner.execute(Call(account, 0, invalidate_nonce + abi_encode(["uint32"], [above]))).wait()
    refused = rejected(net, ended.first)
    assert refused.revert_data == selector("EnableNotApproved()"), refused

    # invalidateAllSessions: the signature outlives it
    session, outliving = pending()
    epoch = owner.epoch()
    owner.invalidate_all().wait()
    assert owner.epoch() != epoch
    minted = nft_balance(stack, recipient)
    assert net.bundler.send_user_operation(outliving.first, net.entry_point)
    deadline_wait(lambda: nft_balance(stack, recipient) == minted + 1)
    assert module_active(stack, account, owner.request_for(session).session_id)


# -- Kernel, Nexus, Safe7579: an uninstall whose onUninstall ran short of gas (attack 98) --------------------------


def is_initialized(stack: LocalStack, account: str) -> bool:
    """The module's ``isInitialized(account)``: it counts itself installed (its ``onUninstall`` has not run since)."""
    answer = call(stack, stack.module, "isInitialized(address)", ["address"], [account])
    return bool(int.from_bytes(answer, "big"))


@pytest.mark.parametrize("kind_name", ["kernel", "nexus", "safe7579"])
def test_a_reinstall_revives_nothing_an_uninstall_short_of_gas_left(
    stack: LocalStack, contracts: AccountContracts, kind_name: str
) -> None:
    """Attack 98 on the released Kernel v3.1, Nexus 1.0 and Safe7579 with the real bundler: the owner removes the
    module with a plain ``uninstallModule`` (a wallet's own "remove module", not keyscope's uninstall, which
    invalidates first), sent with the bundler's gas estimate. These accounts ignore a failing ``onUninstall``, so the
    estimate is what the uninstall needs without it: with the account's sessions holding some fifty permissions,
    ``onUninstall`` (clearing them) needs several times the call gas the estimate gives, runs out, and the account
    drops the module anyway. The module keeps every session, the epoch and its mark that it is installed. keyscope's
    ``install_sessions`` then installs it again: the module's ``onInstall`` finds the mark and does what the starved
    ``onUninstall`` did not, so the old session and the owner's enable signature not used yet are refused, and a new
    grant works. Without that check in ``onInstall`` the old session's operation and the unused grant both land
    after the reinstall, on each of the three. (Threat model 98.)"""
    net, owner = created_account(stack, contracts, kind_name)
    account, recipient = owner.account, owner.signer.address
    module = stack.module
    mint = Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])
    key, unused_key = SessionKey.generate(), SessionKey.generate()
    grant = owner.grant(key, [mint], onchain=True)
    assert net.session(grant, key).execute(stack.nft, MINT, recipient).wait().success
    unused = owner.grant(unused_key, [mint])  # signed off-chain, never used
    ballast = [
        owner.session_for(
            SessionKey.generate(),
            [
                Permission(target=stack.nft, selector=keccak(f"ballast {s}.{p}".encode())[:4])
                for p in range(16)
            ],
        )
        for s in range(3)
    ]
    owner.execute([Call(module, 0, enable_session_data(session)) for session in ballast]).wait()
    epoch = owner.epoch()
    minted = nft_balance(stack, recipient)

    uninstall = owner.execute(owner.kind.uninstall_validator_call(account, module))
    on_uninstall = selector("onUninstall(bytes)") + abi_encode(["bytes"], [b""])
    needs = int(
        stack.node.request(
            "eth_estimateGas", [{"from": account, "to": module, "data": "0x" + on_uninstall.hex()}]
        ),
        16,
    )
    assert uninstall.op.call_gas_limit < needs // 2, (uninstall.op.call_gas_limit, needs)
    assert uninstall.wait().success
    assert not nexus_is_installed(stack, account, 1, module)  # the account dropped the module
    assert is_initialized(stack, account) and owner.epoch() == epoch  # its onUninstall did not run
    assert module_active(stack, account, grant.session_id)  # dormant

    reinstall = owner.install_sessions()
    assert reinstall is not None and reinstall.wait().success and owner.supports_sessions()
    assert owner.epoch() != epoch
    assert not module_active(stack, account, grant.session_id)
    with pytest.raises(BundlerRejectedError) as old:
        net.session(grant, key, verify_on_chain=False).execute(stack.nft, MINT, recipient)
    assert old.value.reason == "AA23", old.value
    with pytest.raises(BundlerRejectedError) as replay:
        net.session(unused, unused_key, verify_on_chain=False).execute(stack.nft, MINT, recipient)
    assert replay.value.reason == "AA23", replay.value
    if kind_name != "safe7579":  # Safe7579 replaces the module's revert data with its own
        assert "NoPermission(callIndex=0" in str(old.value), old.value
        assert "InvalidOwnerSignature" in str(replay.value), replay.value
    assert nft_balance(stack, recipient) == minted
    fresh_key = SessionKey.generate()
    fresh = owner.grant(fresh_key, [mint])
    assert net.session(fresh, fresh_key).execute(stack.nft, MINT, recipient).wait().success
