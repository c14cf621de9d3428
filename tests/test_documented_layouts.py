"""The module's bytes as docs/session-module.md and docs/accounts.md describe them, built without keyscope.

An integrator writing another client (another language's SDK, a wallet, a bundler's test suite) has the docs and
nothing else. Every byte these tests send is built here from the docs' words with eth_abi, eth_utils and coincurve
(keyscope's encoders, hashing and signers are not used), and runs on the real module through the real EntryPoint
v0.7: the grant's EIP-712 types (read from the docs' own block), ABI tuple and session id, the signature layouts
(USE, USE_WITH_KEY, ENABLE, SESSION, the AT prefix, AT and SESSION together), the CoSign digest, onInstall's data,
which operations pass (the execute encoding, the call rules, the gas cap's inputs), the storage slots and words,
revoking, rotating a co-signer out, and sessions' ERC-1271 signatures (TYPED DATA with a nested frame, SIGN-IN with
``who`` 0x00, 0x01 and 0x02). A contract change the docs do not follow fails here.
(Only the reading of an exception's revert data is keyscope's.) ``tests/test_session_schema.py`` holds the SDK's
schema to the same EIP-712 block; here the module is held to the docs with no SDK in between.

One module deployment and two accounts serve the whole file: keyscope's account (created by its factory with a
session granted at install) and OpenZeppelin's ``AccountERC7579`` as it comes (``PlainERC7579Account``, the owner
signing through ``OwnerECDSAValidator``), which installs the module with ``installModule(1, module, initData)``.
Each test grants what it uses on them (the chain is reverted after each test).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import coincurve
import pytest
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from keyscope.bundler.inprocess import revert_data_of

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs/session-module.md").read_text()
ACCOUNTS_DOC = (ROOT / "docs/accounts.md").read_text()
ETHER = 10**18
GWEI = 10**9
VERIFICATION_GAS, CALL_GAS, PRE_VERIFICATION_GAS, MAX_FEE = 3_000_000, 500_000, 60_000, 2 * GWEI


def documented(text: str, doc: str = DOC) -> str:
    """``text``, which the docs must say word for word (a constant this file takes from them)."""
    assert text in doc, f"the docs no longer say {text!r}"
    return text


# ------------------------------------------------------------------------------------------------------
# The EIP-712 grant, from the docs' block of type strings
# ------------------------------------------------------------------------------------------------------

_GRANT_BLOCK = DOC.split("## EIP-712 grant", 1)[1].split("```", 2)[1]
TYPES: dict[str, list[tuple[str, str]]] = {
    line.split("(", 1)[0]: [
        (member.split(" ")[0], member.split(" ")[1]) for member in line.split("(", 1)[1][:-1].split(",")
    ]
    for line in _GRANT_BLOCK.strip().splitlines()
}
_DOMAIN = re.search(
    r'Domain: `\{ name: "([^"]+)", version: "(\d+)", chainId, verifyingContract: module \}`', DOC
)
assert _DOMAIN is not None, "the docs give the grant's EIP-712 domain"
DOMAIN_NAME, DOMAIN_VERSION = _DOMAIN.groups()
FILLED_BY_THE_MODULE = ("account", "epoch")
documented("`account` and `epoch` are not part of the ABI `Session`")


def _deps(name: str, found: set[str]) -> set[str]:
    for kind, _ in TYPES[name]:
        base = kind.removesuffix("[]")
        if base in TYPES and base not in found:
            found.add(base)
            _deps(base, found)
    return found


def encode_type(name: str) -> str:
    """EIP-712 encodeType: the type's own definition, then the types it uses, sorted by name."""

    def one(n: str) -> str:
        return f"{n}(" + ",".join(f"{k} {m}" for k, m in TYPES[n]) + ")"

    return one(name) + "".join(one(d) for d in sorted(_deps(name, set()) - {name}))


def type_hash(name: str) -> bytes:
    return keccak(encode_type(name).encode())


def _encode_value(kind: str, value: Any) -> bytes:
    if kind.endswith("[]"):
        return keccak(b"".join(_encode_value(kind[:-2], v) for v in value))
    if kind in TYPES:
        return hash_struct(kind, value)
    if kind in ("string", "bytes"):
        return keccak(value.encode() if isinstance(value, str) else value)
    if kind.startswith("bytes"):  # bytesN: left-aligned
        return bytes(value).ljust(32, b"\x00")
    return encode([kind], [value])


def hash_struct(name: str, value: dict[str, Any]) -> bytes:
    return keccak(type_hash(name) + b"".join(_encode_value(k, value[m]) for k, m in TYPES[name]))


def abi_type(name: str, leave_out: tuple[str, ...] = ()) -> str:
    """The ABI tuple type of struct ``name``: its EIP-712 members in order, ``leave_out`` left out."""

    def member(kind: str) -> str:
        base, array = (kind[:-2], "[]") if kind.endswith("[]") else (kind, "")
        return (abi_type(base) if base in TYPES else base) + array

    return "(" + ",".join(member(k) for k, m in TYPES[name] if m not in leave_out) + ")"


def abi_value(name: str, value: dict[str, Any], leave_out: tuple[str, ...] = ()) -> tuple[Any, ...]:
    def member(kind: str, v: Any) -> Any:
        base = kind.removesuffix("[]")
        if base not in TYPES:
            return list(v) if kind.endswith("[]") else v
        return [abi_value(base, e) for e in v] if kind.endswith("[]") else abi_value(base, v)

    return tuple(member(k, value[m]) for k, m in TYPES[name] if m not in leave_out)


SESSION_ABI = abi_type("Session", FILLED_BY_THE_MODULE)


def session(key: str, **fields: Any) -> dict[str, Any]:
    """A Session with every member named as the docs name it (account and epoch filled in later)."""
    value: dict[str, Any] = dict(
        sessionKey=key, validAfter=0, validUntil=0, maxGasCost=0, paymasters=[], salt=0, permissions=[],
        limits=[], coSigner="0x" + "00" * 20, typedData=[], signIn=[],
    )  # fmt: skip
    value.update(fields)
    return value


def session_id(value: dict[str, Any], account: str, epoch: int) -> bytes:
    return hash_struct("Session", {**value, "account": account, "epoch": epoch})


def session_abi(value: dict[str, Any]) -> tuple[Any, ...]:
    return abi_value("Session", value, FILLED_BY_THE_MODULE)


def domain_separator(chain_id: int, module: str) -> bytes:
    typehash = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return keccak(
        typehash
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + encode(["uint256", "address"], [chain_id, module])
    )


def typed(separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + separator + struct_hash)


# ------------------------------------------------------------------------------------------------------
# Keys, UserOperations, the EntryPoint
# ------------------------------------------------------------------------------------------------------


class Key:
    """A secp256k1 key (coincurve): its address, and raw 65-byte signatures r ‖ s ‖ v of a digest."""

    def __init__(self, seed: int) -> None:
        self.private = coincurve.PrivateKey(keccak(b"documented layouts" + seed.to_bytes(4, "big")))
        self.address = to_checksum_address(keccak(self.private.public_key.format(compressed=False)[1:])[-20:])

    def sign(self, digest: bytes) -> bytes:
        signature = self.private.sign_recoverable(digest, hasher=None)  # r, s (low), recovery id
        return signature[:64] + bytes([signature[64] + 27])


def rule(condition: int, offset: int, arg_type: int, values: list[int]) -> dict[str, Any]:
    return dict(condition=condition, offset=offset, argType=arg_type, values=values)


def permission(target: str, selector: bytes, value_limit: int = 0, rules=()) -> dict[str, Any]:
    return dict(target=target, selector=selector, valueLimit=value_limit, rules=list(rules))


EXECUTE = keccak(b"execute(bytes32,bytes)")[:4]
assert EXECUTE.hex() == documented("selector `0xe9ae5c53`")[len("selector `0x") : -1]
SINGLE = bytes(32)
BATCH = b"\x01" + bytes(31)


def execute_single(target: str, value: int, data: bytes) -> bytes:
    """ERC-7579 ``execute`` of one call: ``target (20) ‖ value (32) ‖ data`` as executionCalldata."""
    return EXECUTE + encode(
        ["bytes32", "bytes"], [SINGLE, bytes.fromhex(target[2:]) + value.to_bytes(32, "big") + data]
    )


def execute_batch(calls: list[tuple[str, int, bytes]]) -> bytes:
    return EXECUTE + encode(["bytes32", "bytes"], [BATCH, encode(["(address,uint256,bytes)[]"], [calls])])


USER_OP = "(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)"
HANDLE_OPS = keccak(f"handleOps({USER_OP}[],address)".encode())[:4]
FAILED_OP = keccak(b"FailedOp(uint256,string)")[:4]
FAILED_OP_WITH_REVERT = keccak(b"FailedOpWithRevert(uint256,string,bytes)")[:4]
USER_OPERATION_EVENT = keccak(b"UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)")


def error(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def nonce_of(validator: str | None, lane: int, sequence: int) -> int:
    """The nonce: ``key (192) ‖ sequence (64)``, the key ``validator (20) ‖ lane (4)`` (accounts.md), or the
    lane alone for keyscope's owner."""
    key = lane if validator is None else (int(validator, 16) << 32) | lane
    return (key << 64) | sequence


class Chain:
    """Sends raw UserOperations through the EntryPoint and reads what the docs say is on chain."""

    def __init__(self, chain: Any, entry_point: Any, submitter: Any) -> None:
        self.chain = chain
        self.web3 = chain.provider.web3
        self.entry_point = entry_point.address
        self.entry_point_contract = entry_point
        self.submitter = submitter
        self.chain_id = int(chain.chain_id)

    def op(self, sender: str, key: int, call_data: bytes, *, paymaster_and_data: bytes = b"") -> list[Any]:
        """A v0.7 PackedUserOperation (unsigned): verificationGasLimit 3,000,000, callGasLimit 500,000,
        preVerificationGas 60,000, maxPriorityFeePerGas 1 gwei, maxFeePerGas 2 gwei."""
        nonce = int(self.entry_point_contract.getNonce(sender, key)) | (key << 64)
        return [
            sender,
            nonce,
            b"",
            call_data,
            ((VERIFICATION_GAS << 128) | CALL_GAS).to_bytes(32, "big"),
            PRE_VERIFICATION_GAS,
            ((GWEI << 128) | MAX_FEE).to_bytes(32, "big"),
            paymaster_and_data,
            b"",
        ]

    def hash(self, op: list[Any]) -> bytes:
        """The v0.7 userOpHash, as ERC-4337 defines it."""
        packed = encode(
            ["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
            [op[0], op[1], keccak(op[2]), keccak(op[3]), op[4], op[5], op[6], keccak(op[7])],
        )
        return keccak(
            encode(["bytes32", "address", "uint256"], [keccak(packed), self.entry_point, self.chain_id])
        )

    def send(self, op: list[Any]) -> tuple[str, bytes]:
        """``("ok", b"")`` when the operation validated and executed, else the EntryPoint's reason (``AA24 ...``)
        and the revert data it carries (an ``AA23`` revert's error)."""
        data = HANDLE_OPS + encode([f"{USER_OP}[]", "address"], [[tuple(op)], self.submitter.address])
        tx = {
            "to": self.entry_point,
            "from": self.submitter.address,
            "data": "0x" + data.hex(),
            "gas": 30_000_000,
        }
        try:
            self.web3.eth.call(tx)
        except Exception as exc:  # the EntryPoint's FailedOp, decoded below
            revert = revert_data_of(exc)
            assert revert is not None, exc
            if revert[:4] == FAILED_OP:
                return str(_decode(["uint256", "string"], revert)[1]), b""
            assert revert[:4] == FAILED_OP_WITH_REVERT, revert.hex()
            _, reason, inner = _decode(["uint256", "string", "bytes"], revert)
            return str(reason), bytes(inner)
        receipt = self.submitter.call(
            self.chain.provider.network.ecosystem.create_transaction(
                receiver=self.entry_point, data=data, sender=self.submitter.address
            )
        )
        events = [log for log in receipt.logs if bytes(log["topics"][0]) == USER_OPERATION_EVENT]
        assert len(events) == 1, receipt.logs
        success = _decode(["uint256", "bool", "uint256", "uint256"], b"\x00" * 4 + bytes(events[0]["data"]))[
            1
        ]
        return ("ok" if success else "execution reverted"), b""

    def storage(self, address: str, slot: int) -> int:
        return int.from_bytes(bytes(self.web3.eth.get_storage_at(address, slot)), "big")

    def call(self, to: str, data: bytes, sender: str) -> bytes:
        return bytes(self.web3.eth.call({"to": to, "from": sender, "data": "0x" + data.hex()}))


def _decode(types: list[str], data: bytes) -> tuple[Any, ...]:
    """The arguments of an error or event whose 4-byte selector starts ``data``."""
    return decode(types, data[4:])


ERC1271_VALID, ERC1271_INVALID = bytes.fromhex("1626ba7e"), bytes.fromhex("ffffffff")


def is_valid_signature(world, account: str, hash_: bytes, body: bytes) -> bytes:
    """The account's ERC-1271 answer to the verifier, for the module's ``body`` behind its routing prefix (the
    module's address, 20 bytes, on both accounts here)."""
    data = keccak(b"isValidSignature(bytes32,bytes)")[:4] + encode(
        ["bytes32", "bytes"], [hash_, bytes.fromhex(world.module.address[2:]) + body]
    )
    return world.c.call(account, data, world.verifier)[:4]


def refusal(world, account: str, hash_: bytes, body: bytes) -> bytes:
    """The module's reason (``requireValidSignature``'s revert data), empty when the signature is valid."""
    data = keccak(b"requireValidSignature(address,address,bytes32,bytes)")[:4] + encode(
        ["address", "address", "bytes32", "bytes"], [account, world.verifier, hash_, body]
    )
    try:
        world.c.call(world.module.address, data, world.verifier)
    except Exception as exc:  # the module's reason, returned
        return revert_data_of(exc) or b""
    return b""


def account_domain_separator(world, account: str) -> bytes:
    """The account's domain as the module describes it: "keyscope Session", "1", the chain, the account, the
    module's address as the salt (a word)."""
    return keccak(
        keccak(
            b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
        )
        + keccak(b"keyscope Session")
        + keccak(b"1")
        + encode(
            ["uint256", "address", "bytes32"],
            [world.c.chain_id, account, bytes.fromhex(world.module.address[2:]).rjust(32, b"\x00")],
        )
    )


def sign_in(world, account: str, website: str) -> tuple[bytes, bytes, bytes]:
    """An EIP-4361 message for ``website`` and ``account``: its first line, the message, the verifier's hash (its
    EIP-191 hash) and H, what the session signs (ERC-7739 PersonalSign in the account's domain)."""
    first = f"{website} wants you to sign in with your Ethereum account:\n".encode()
    message = (
        first
        + account.encode()
        + b"\n\nURI: https://"
        + website.encode()
        + b"/login\nVersion: 1\nNonce: 8f3kq0"
    )
    hash191 = keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)
    signed = typed(
        account_domain_separator(world, account), keccak(keccak(b"PersonalSign(bytes prefixed)") + hash191)
    )
    return first, message, hash191 + signed


# ------------------------------------------------------------------------------------------------------
# The world: one module, two accounts, the sessions of the tests
# ------------------------------------------------------------------------------------------------------

OTHER = keccak(b"other(uint256)")[:4]
RECORD = keccak(b"record(uint256,int256,address,bytes32,bool)")[:4]
LESS_THAN_OR_EQUAL, GREATER_THAN_OR_EQUAL = 1, 3
INT8 = 0x3F  # the docs' table: int(256 - 8p), p = 31
UINT64 = 0x18
CALLS = 2
HOUR = 3600
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class World:
    """What the tests share: the chain, the module, the target, both accounts and their owners, the sessions'
    keys."""

    def __init__(self, project, chain, entry_point, module, factory, deployer, submitter) -> None:
        self.c = Chain(chain, entry_point, submitter)
        self.module = module
        self.target = project.RecordingTarget.deploy(sender=deployer)
        self.owner = Key(1)
        self.keys = {
            name: Key(10 + i) for i, name in enumerate(("install", "enable", "co", "typed", "plain"))
        }
        self.co_signer = Key(30)
        # a contract's or a server's verifier asking the account (py-evm makes an eth_call's sender afford its gas)
        self.verifier = Key(77).address
        deployer.transfer(self.verifier, ETHER)
        # keyscope's account, created by its factory with the module and a session granted at install:
        # onInstall(abi.encode(Session[])) as the docs give it
        self.installed = session(
            self.keys["install"].address,
            permissions=[
                permission(self.target.address, OTHER, rules=[rule(LESS_THAN_OR_EQUAL, 0, 0, [10])])
            ],
        )
        install_data = encode([f"{SESSION_ABI}[]"], [[session_abi(self.installed)]])
        modules = [(1, module.address, install_data)]
        self.account = to_checksum_address(factory.getAddress(self.owner.address, modules, 0))
        factory.createAccount(self.owner.address, modules, 0, sender=deployer)
        deployer.transfer(self.account, ETHER)
        # OpenZeppelin's AccountERC7579, its owner behind OwnerECDSAValidator
        self.owner_validator = project.OwnerECDSAValidator.deploy(sender=deployer)
        self.plain = project.PlainERC7579Account.deploy(
            entry_point.address,
            self.owner_validator.address,
            bytes.fromhex(self.owner.address[2:]),
            sender=deployer,
        ).address
        deployer.transfer(self.plain, ETHER)

    def owner_op(self, account: str, call_data: bytes) -> tuple[str, bytes]:
        validator = None if account == self.account else self.owner_validator.address
        key = nonce_of(validator, 0, 0) >> 64
        op = self.c.op(account, key, call_data)
        op[8] = self.owner.sign(self.c.hash(op))
        return self.c.send(op)

    def session_op(
        self,
        account: str,
        call_data: bytes,
        signature: Any,
        *,
        lane: int = 0,
        paymaster_and_data: bytes = b"",
    ) -> tuple[str, bytes]:
        """An operation of the module's lane; ``signature(userOpHash)`` gives its signature."""
        key = nonce_of(self.module.address, lane, 0) >> 64
        op = self.c.op(account, key, call_data, paymaster_and_data=paymaster_and_data)
        op[8] = signature(self.c.hash(op))
        return self.c.send(op)

    def grant_digest(self, account: str, value: dict[str, Any]) -> bytes:
        epoch = int(self.module.epochOf(account))
        return typed(
            domain_separator(self.c.chain_id, self.module.address), session_id(value, account, epoch)
        )


@pytest.fixture(scope="module")
def world(project, chain, entry_point, module, factory, deployer, submitter_account) -> World:
    return World(project, chain, entry_point, module, factory, deployer, submitter_account)


def other(amount: int) -> bytes:
    return OTHER + encode(["uint256"], [amount])


def record(amount: int, delta: int) -> bytes:
    return RECORD + encode(
        ["uint256", "int256", "address", "bytes32", "bool"],
        [amount, delta, "0x" + "00" * 20, b"\x00" * 32, False],
    )


def reverted_with(outcome: tuple[str, bytes], signature: str) -> None:
    reason, inner = outcome
    assert reason.startswith("AA23"), outcome
    assert inner[:4] == error(signature), (signature, inner.hex())


# ------------------------------------------------------------------------------------------------------
# The grant: typehash, session id, digest; the ABI Session
# ------------------------------------------------------------------------------------------------------


def test_the_documented_session_type_is_the_modules_typehash_id_and_digest(world) -> None:
    """The docs' EIP-712 block, encoded as EIP-712 encodes types, hashes a session with every kind of member to the
    module's own session id and grant digest; the ABI Session is that type without account and epoch, as the docs'
    ABI tuple spells it; the module's domain is the documented one; the id follows the account's epoch."""
    assert encode_type("Session").startswith("Session(address account,address sessionKey,")
    documented_abi = re.search(r"ABI tuple type:\n\n```\n(.+?)\n```", DOC, re.S)
    assert documented_abi is not None, "the docs give the ABI Session's tuple type"
    assert documented_abi.group(1).replace("\n", "").replace(" ", "") == SESSION_ABI
    value = session(
        world.keys["enable"].address,
        validAfter=5,
        validUntil=10**9,
        maxGasCost=10**15,
        paymasters=["0x" + "22" * 20],
        salt=7,
        permissions=[permission("0x" + "33" * 20, b"\x01\x02\x03\x04", 3, [rule(6, 32, 0x20, [2**256 - 5, 9])])],
        limits=[dict(kind=1, amount=100, period=HOUR, meters=[dict(permission=0, offset=32)])],
        coSigner="0x" + "44" * 20,
        typedData=[
            dict(
                domainFields=0x1F, name="App", version="2", chainId=10, verifyingContract="0x" + "55" * 20,
                salt=b"\x06" * 32, contentsName="Mail",
                contentsType="Mail(Person to,uint256 amount)Person(address wallet,uint64 id)", nested=[0],
                rules=[rule(2, 64, 0x0C, [8])],
            )
        ],
        signIn=["app.example.com"],
    )  # fmt: skip
    account = world.account
    epoch = int(world.module.epochOf(account))
    expected = session_id(value, account, epoch)
    assert bytes(world.module.sessionId(account, session_abi(value))) == expected
    assert bytes(world.module.grantDigest(account, session_abi(value))) == typed(
        domain_separator(world.c.chain_id, world.module.address), expected
    )
    fields, name, version, chain_id, verifying = world.module.eip712Domain()[:5]
    assert (bytes(fields), name, version, chain_id, verifying) == (
        b"\x0f",
        DOMAIN_NAME,
        DOMAIN_VERSION,
        world.c.chain_id,
        world.module.address,
    )
    # the epoch is part of the id: invalidateAllSessions moves it, and the module's id follows the documented hash
    # to the epoch given to invalidateAllSessions(uint32)
    invalidate = keccak(b"invalidateAllSessions(uint32)")[:4] + (epoch + 76_543).to_bytes(32, "big")
    assert world.owner_op(account, execute_single(world.module.address, 0, invalidate)) == ("ok", b"")
    assert int(world.module.epochOf(account)) == epoch + 76_543
    moved = session_id(value, account, epoch + 76_543)
    assert bytes(world.module.sessionId(account, session_abi(value))) == moved != expected


# ------------------------------------------------------------------------------------------------------
# onInstall, USE, ENABLE, USE_WITH_KEY, storage
# ------------------------------------------------------------------------------------------------------


def test_a_session_granted_in_onInstall_data_is_live_under_its_documented_id_and_signs_USE(world) -> None:
    """``onInstall(abi.encode(Session[]))`` at the factory's creation enables the session at the account's epoch,
    under its id; its key's 65-byte ECDSA of the userOpHash (no prefix) is a USE operation the rule judges."""
    documented("`onInstall(abi.encode(Session[]))`")
    key = world.keys["install"]
    op = world.c.op(world.account, 5, b"\x01\x02")
    assert bytes(world.c.entry_point_contract.getUserOpHash(tuple(op))) == world.c.hash(op)
    session_id_ = session_id(world.installed, world.account, int(world.module.epochOf(world.account)))
    assert world.module.isSessionActive(world.account, session_id_)
    use = key.sign
    assert world.session_op(world.account, execute_single(world.target.address, 0, other(10)), use) == (
        "ok",
        b"",
    )
    reverted_with(
        world.session_op(world.account, execute_single(world.target.address, 0, other(11)), use),
        "RuleViolated(uint256,uint256,uint256,bytes32)",
    )
    # the same signature over the EIP-191 prefixed hash recovers to another address: no permission, AA24
    prefixed = lambda h: key.sign(keccak(b"\x19Ethereum Signed Message:\n32" + h))  # noqa: E731
    reason, _ = world.session_op(world.account, execute_single(world.target.address, 0, other(10)), prefixed)
    assert reason.startswith("AA24"), reason


def _enabled(world) -> dict[str, Any]:
    return session(
        world.keys["enable"].address,
        validUntil=2**40,
        maxGasCost=5 * 10**16,
        permissions=[
            permission(
                world.target.address, RECORD, 1000, [rule(GREATER_THAN_OR_EQUAL, 32, INT8, [2**256 - 5])]
            )
        ],
    )


def enable_on_keyscope_account(world) -> bytes:
    """ENABLE the session of ``_enabled`` by its first operation; its id."""
    value = _enabled(world)
    owner_signature = world.owner.sign(world.grant_digest(world.account, value))
    key = world.keys["enable"]

    def enable(h: bytes) -> bytes:
        return b"\x01" + encode(
            [SESSION_ABI, "bytes", "bytes"], [session_abi(value), owner_signature, key.sign(h)]
        )

    id_ = session_id(value, world.account, int(world.module.epochOf(world.account)))
    assert not world.module.isSessionActive(world.account, id_)
    call = execute_single(world.target.address, 7, record(1, -5))
    assert world.session_op(world.account, call, enable) == ("ok", b"")
    assert world.module.isSessionActive(world.account, id_)
    return id_


def test_an_enable_operation_carries_the_owners_off_chain_grant_as_documented(world) -> None:
    """ENABLE: ``0x01 ‖ abi.encode(Session, bytes ownerSignature, bytes sessionSignature)``, the owner's signature
    of the grant digest as keyscope's account takes it (the 65 bytes), the key's of the userOpHash; the session is
    then active under the documented id, and its call ran."""
    calls = int(world.target.calls())
    enable_on_keyscope_account(world)
    assert int(world.target.calls()) == calls + 1
    # once enabled, the payload is ignored: a retried first operation works, whatever its owner signature says
    value, key = _enabled(world), world.keys["enable"]

    def retried(h: bytes) -> bytes:
        owner_signature = b"\x00" * 65
        return b"\x01" + encode(
            [SESSION_ABI, "bytes", "bytes"], [session_abi(value), owner_signature, key.sign(h)]
        )

    assert world.session_op(
        world.account, execute_single(world.target.address, 0, record(1, 0)), retried
    ) == (
        "ok",
        b"",
    )


def test_use_and_use_with_key_of_the_enabled_session_as_documented(world) -> None:
    """USE (65 bytes) and USE_WITH_KEY (``0x02 ‖ sessionKey (20) ‖ r ‖ s ‖ v``, 86 bytes), on a single call and on a
    canonical batch; the int8 rule reads its reference as the two's complement word (-5 passes, -6 does not); a
    signature with s in the upper half of the curve order or v 0/1 recovers nothing."""
    enable_on_keyscope_account(world)
    key = world.keys["enable"]
    with_key = lambda h: b"\x02" + bytes.fromhex(key.address[2:]) + key.sign(h)  # noqa: E731
    assert len(with_key(bytes(32))) == 86
    target = world.target.address
    assert world.session_op(world.account, execute_single(target, 0, record(1, 0)), key.sign) == ("ok", b"")
    batch = execute_batch([(target, 1, record(1, -5)), (target, 0, record(2, 100))])
    assert world.session_op(world.account, batch, with_key) == ("ok", b"")
    reverted_with(
        world.session_op(world.account, execute_single(target, 0, record(1, -6)), with_key),
        "RuleViolated(uint256,uint256,uint256,bytes32)",
    )

    # s in the lower half of the curve order, v 27 or 28: the high-s twin and v 0/1 of a good signature fail (AA24)
    def high_s(h: bytes) -> bytes:
        good = key.sign(h)
        s = SECP256K1_N - int.from_bytes(good[32:64], "big")
        return good[:32] + s.to_bytes(32, "big") + bytes([55 - good[64]])

    call = execute_single(target, 0, record(1, 0))
    assert coincurve.PublicKey.from_signature_and_message(
        high_s(bytes(32))[:64] + bytes([high_s(bytes(32))[64] - 27]), bytes(32), hasher=None
    ).format(compressed=False) == key.private.public_key.format(compressed=False)  # the same key, malleated
    assert world.session_op(world.account, call, high_s)[0].startswith("AA24")

    def v_zero_or_one(h: bytes) -> bytes:
        good = key.sign(h)
        return good[:64] + bytes([good[64] - 27])

    assert world.session_op(world.account, call, v_zero_or_one)[0].startswith("AA24")
    # USE_WITH_KEY names the key: another key's signature fails the signature check (AA24), after the policy passed
    stranger = Key(99)
    forged = lambda h: b"\x02" + bytes.fromhex(key.address[2:]) + stranger.sign(h)  # noqa: E731
    assert world.session_op(world.account, execute_single(target, 0, record(1, 0)), forged)[0].startswith(
        "AA24"
    )


def test_the_documented_execute_encoding_and_call_rules_decide_which_operations_pass(world) -> None:
    """Which UserOperations pass, byte by byte, on the enabled session (a call permission on ``record`` with value
    limit 1000 wei, an int8 rule on its second argument, a 0.05 ether gas cap): after executionCalldata at most 31
    zero bytes; the modes; only ``execute``; no call to the account; the selector rules; the value limit; a word
    not canonical for its rule's type; a canonical batch; the cap on every gas limit, the paymaster's two included
    (paymaster 20 ‖ verification gas 16 ‖ postOp gas 16 ‖ data), times maxFeePerGas."""
    enable_on_keyscope_account(world)
    key = world.keys["enable"]
    with_key = lambda h: b"\x02" + bytes.fromhex(key.address[2:]) + key.sign(h)  # noqa: E731
    target = world.target.address
    data = record(1, 0)
    execution = bytes.fromhex(target[2:]) + (0).to_bytes(32, "big") + data
    assert len(execution) % 32 == 24  # eth_abi pads it with 8 zero bytes

    def head(mode: bytes = SINGLE, selector: bytes = EXECUTE) -> bytes:
        return selector + mode + (0x40).to_bytes(32, "big") + len(execution).to_bytes(32, "big")

    def run(call_data: bytes, **fields: Any) -> tuple[str, bytes]:
        return world.session_op(world.account, call_data, with_key, **fields)

    assert run(head() + execution + bytes(31)) == ("ok", b"")
    reverted_with(run(head() + execution + bytes(32)), "MalformedExecution()")
    reverted_with(run(head() + execution + bytes(7) + b"\x01"), "MalformedExecution()")
    try_mode = b"\x00\x01" + bytes(30)
    assert run(head(try_mode) + execution + bytes(8)) == ("ok", b"")
    delegate = b"\xff" + bytes(31)
    reverted_with(run(head(delegate) + execution + bytes(8)), "UnsupportedExecutionMode(bytes32)")
    from_executor = keccak(b"executeFromExecutor(bytes32,bytes)")[:4]
    reverted_with(run(head(selector=from_executor) + execution + bytes(8)), "UnsupportedSelector(bytes4)")
    reverted_with(run(execute_single(world.account, 0, data)), "ForbiddenTarget(uint256,address)")
    reverted_with(run(execute_single(target, 0, b"\x01\x02\x03")), "InvalidCallData(uint256)")
    reverted_with(run(execute_single(target, 0, bytes(4) + data[4:])), "ZeroSelectorCall(uint256)")
    reverted_with(
        run(execute_single(target, 1001, data)), "ValueLimitExceeded(uint256,uint256,uint256,uint256)"
    )
    dirty = (
        RECORD + (1).to_bytes(32, "big") + (0x80).to_bytes(32, "big") + bytes(96)
    )  # int8 word, not extended
    outcome = run(execute_single(target, 0, dirty))
    reverted_with(outcome, "NonCanonicalArgument(uint256,uint256,uint256,uint8,bytes32)")
    assert _decode(["uint256", "uint256", "uint256", "uint8", "bytes32"], outcome[1])[3:] == (
        INT8,
        (0x80).to_bytes(32, "big"),
    )
    batch = execute_batch([(target, 0, data), (target, 1000, record(2, -5))])
    assert run(batch) == ("ok", b"")
    reverted_with(run(execute_batch([])), "EmptyBatch()")
    inner = encode(["(address,uint256,bytes)[]"], [[(target, 0, data)]]) + bytes(
        32
    )  # a word after the last call
    reverted_with(run(EXECUTE + encode(["bytes32", "bytes"], [BATCH, inner])), "MalformedExecution()")
    # the cap: (verificationGasLimit + callGasLimit + preVerificationGas + paymaster's two) * maxFeePerGas
    paymaster = bytes.fromhex("66" * 20) + (20_000_000).to_bytes(16, "big") + (5_000_000).to_bytes(16, "big")
    cost = (VERIFICATION_GAS + CALL_GAS + PRE_VERIFICATION_GAS + 20_000_000 + 5_000_000) * MAX_FEE
    outcome = run(execute_single(target, 0, data), paymaster_and_data=paymaster + b"data")
    reverted_with(outcome, "GasCostTooHigh(uint256,uint256)")
    assert _decode(["uint256", "uint256"], outcome[1]) == (cost, 5 * 10**16)


def validation_data(
    world, account: str, key: Key, call_data: bytes, paymaster_and_data: bytes = b""
) -> int | bytes:
    """The module's ``validateUserOp`` asked by the account (an eth_call) for a USE operation of ``key``: the
    validation data it returns, or the revert data of its refusal."""
    op = world.c.op(
        account, nonce_of(world.module.address, 0, 0) >> 64, call_data, paymaster_and_data=paymaster_and_data
    )
    user_op_hash = world.c.hash(op)
    op[8] = key.sign(user_op_hash)
    data = keccak(f"validateUserOp({USER_OP},bytes32)".encode())[:4] + encode(
        [USER_OP, "bytes32"], [tuple(op), user_op_hash]
    )
    try:
        answer = world.c.call(world.module.address, data, account)
    except Exception as exc:  # the module's refusal, returned
        return revert_data_of(exc) or b""
    return int.from_bytes(answer, "big")


def test_the_validation_data_and_a_listed_paymaster_as_documented(world) -> None:
    """The window goes into the validation data as ``validUntil << 160 | validAfter << 208``; a session granted on
    chain (the account calling ``enableSession(session)``) with a gas cap and a paymaster list lets an operation
    naming a listed paymaster go uncapped, and caps one naming another paymaster or none."""
    enable_on_keyscope_account(world)
    call = execute_single(world.target.address, 0, record(1, 0))
    assert validation_data(world, world.account, world.keys["enable"], call) == 2**40 << 160
    listed, other_paymaster = "0x" + "66" * 20, "0x" + "67" * 20
    key = Key(40)
    value = session(
        key.address,
        validAfter=1000,
        validUntil=2**41,
        maxGasCost=10**15,
        paymasters=[listed],
        permissions=[permission(world.target.address, OTHER)],
    )
    enable = keccak(f"enableSession({SESSION_ABI})".encode())[:4] + encode(
        [SESSION_ABI], [session_abi(value)]
    )
    assert world.owner_op(world.account, execute_single(world.module.address, 0, enable)) == ("ok", b"")
    assert world.module.isSessionActive(world.account, session_id(value, world.account, 0))
    call = execute_single(world.target.address, 0, other(1))
    gas = (20_000_000).to_bytes(16, "big") + (5_000_000).to_bytes(16, "big")
    window = (2**41 << 160) | (1000 << 208)
    assert validation_data(world, world.account, key, call, bytes.fromhex(listed[2:]) + gas) == window
    for paymaster_and_data in (bytes.fromhex(other_paymaster[2:]) + gas, b""):
        refused = validation_data(world, world.account, key, call, paymaster_and_data)
        assert isinstance(refused, bytes) and refused[:4] == error("GasCostTooHigh(uint256,uint256)"), refused
    # the list is stored after the permission's rule words (none here), its count in the header's pm count
    perm_key = keccak(bytes.fromhex(key.address[2:]) + bytes.fromhex(world.target.address[2:]) + OTHER)
    header = world.c.storage(world.module.address, slot(world.account, "_permissions", perm_key))
    assert ((header >> 249) & 7, (header >> 208) & (2**40 - 1)) == (1, 10**15 // GWEI)
    assert world.c.storage(world.module.address, slot(world.account, "_permissions", perm_key, 1)) == int(
        listed, 16
    )


def _slot_table() -> dict[str, int]:
    """The base slot of each variable, from the docs' storage table."""
    section = DOC.split("## Storage layout", 1)[1].split("\n## ", 1)[0]
    return {name: int(base) for name, base in re.findall(r"^\| `(_\w+)\[[^|]*\| (\d+) \|", section, re.M)}


BASES = _slot_table()


def slot(account: str, variable: str, x: bytes | int | None = None, n: int = 0) -> int:
    """Word ``n`` of ``variable[x][account]`` (``variable[account]`` without ``x``), as the docs place it:
    ``keccak256(account ‖ keccak256(x ‖ base)) + n``, each a 32-byte word."""
    base = BASES[variable].to_bytes(32, "big")
    if isinstance(x, int):
        x = x.to_bytes(32, "big")
    inner = base if x is None else keccak(x + base)
    return int.from_bytes(keccak(bytes.fromhex(account[2:]).rjust(32, b"\x00") + inner), "big") + n


def test_the_storage_words_are_where_and_as_the_docs_lay_them_out(world) -> None:
    """The account's state, a permission's header and rule word, a session's meta and grant: at the documented base
    slots and keys (``keccak256(account ‖ keccak256(x ‖ base)) + n``), with the documented bits."""
    assert {name: BASES.get(name) for name in ("_accounts", "_permissions", "_sessions")} == {
        "_accounts": 2,
        "_permissions": 3,
        "_sessions": 4,
    }, BASES

    session_id_ = enable_on_keyscope_account(world)
    c = world.c
    state = c.storage(world.module.address, slot(world.account, "_accounts"))
    # epoch (bits 0-31), installed (bit 32), liveSessions (bits 40-55), livePermissions (bits 56-71)
    assert (state & 0xFFFFFFFF, (state >> 32) & 0xFF, (state >> 40) & 0xFFFF, (state >> 56) & 0xFFFF) == (
        0,
        1,
        2,
        2,
    )
    key = world.keys["enable"]
    perm_key = keccak(bytes.fromhex(key.address[2:]) + bytes.fromhex(world.target.address[2:]) + RECORD)
    header = c.storage(world.module.address, slot(world.account, "_permissions", perm_key))
    assert header & (2**48 - 1) == 0  # validAfter
    assert (header >> 48) & (2**48 - 1) == 2**40  # validUntil
    assert (header >> 96) & (2**96 - 1) == 1000  # valueLimit
    assert (header >> 192) & 0xFF == 0  # permission index
    assert (header >> 200) & 0xFF == 1  # rule count
    assert (header >> 208) & (2**40 - 1) == 5 * 10**16 // GWEI  # gas cap, gwei
    assert (header >> 248) & 1 == 1  # live
    assert (header >> 249) & 7 == 0  # paymaster count (a cap, no list)
    assert header >> 252 == 0  # not limited, top bits zero
    word = c.storage(world.module.address, slot(world.account, "_permissions", perm_key, 1))
    assert word >> 240 == 32  # offset
    assert (word >> 232) & 0xFF == GREATER_THAN_OR_EQUAL | 0x40  # condition | SIGNED
    assert (word >> 224) & 0xFF == 1  # value count
    assert (word >> 216) & 0xFF == INT8  # checked type
    assert word & (2**216 - 1) == (2**256 - 5) & (2**216 - 1)  # -5, inline, sign-extended from bit 215
    meta = c.storage(world.module.address, slot(world.account, "_sessions", session_id_))
    assert meta & (2**160 - 1) == int(key.address, 16)  # key
    assert (meta >> 160) & 0xFFFFFFFF == 0  # epoch
    assert (meta >> 192) & 0xFF == 1  # status: active
    assert (meta >> 200) & 0xFF == 1  # permission count
    assert (meta >> 208) & 0xFFFF == 1  # index in the live list (the install's session is 0)
    grant = c.storage(world.module.address, slot(world.account, "_sessions", session_id_, 1))
    assert grant == int(world.target.address, 16) | (int.from_bytes(RECORD, "big") << 160)


# ------------------------------------------------------------------------------------------------------
# A co-signed session with a per-period limit: AT ‖ ENABLE, AT ‖ SESSION, the CoSign digest
# ------------------------------------------------------------------------------------------------------


WEBSITE = "app.example.com"


def co_sign_digest(world, session_id_: bytes, digest: bytes) -> bytes:
    typehash = keccak(documented("CoSign(bytes32 sessionId,bytes32 digest)").encode())
    return typed(
        domain_separator(world.c.chain_id, world.module.address), keccak(typehash + session_id_ + digest)
    )


class CoSigned:
    """A co-signed session with a per-period limit and a sign-in permission, granted by its first operation behind
    the AT prefix: ``0x03 ‖ time (6, big-endian) ‖ 0x01 ‖ abi.encode(...)``, the key's and the co-signer's
    signatures (130 bytes) as sessionSignature."""

    def __init__(self, world, chain) -> None:
        self.world = world
        self.key, self.co = world.keys["co"], world.co_signer
        now = int(chain.pending_timestamp)
        # periods start at validAfter: the operations below fall in period 0, [now - 600, now + 3000], whatever
        # seconds the node's clock runs ahead of or behind the time it said (a busy machine, earlier tests' clocks)
        self.valid_after = now - 600
        self.value = session(
            self.key.address,
            validAfter=self.valid_after,
            coSigner=self.co.address,
            permissions=[permission(world.target.address, OTHER)],
            limits=[dict(kind=CALLS, amount=5, period=HOUR, meters=[dict(permission=0, offset=0)])],
            signIn=[WEBSITE],
        )
        self.account = world.account
        self.id = session_id(self.value, self.account, int(world.module.epochOf(self.account)))
        self.at = b"\x03" + now.to_bytes(6, "big")
        self.call = execute_single(world.target.address, 0, other(1))
        owner_signature = world.owner.sign(world.grant_digest(self.account, self.value))

        def enable(h: bytes) -> bytes:
            both = self.key.sign(h) + self.co_sign(h)
            return (
                self.at
                + b"\x01"
                + encode([SESSION_ABI, "bytes", "bytes"], [session_abi(self.value), owner_signature, both])
            )

        assert world.session_op(self.account, self.call, enable) == ("ok", b"")

    def co_sign(self, digest: bytes) -> bytes:
        return self.co.sign(co_sign_digest(self.world, self.id, digest))


def test_a_co_signed_session_behind_the_at_prefix_as_documented(world, chain) -> None:
    """Enabled behind the AT prefix (``CoSigned``), a co-signed session's ``0x03 ‖ time ‖ 0x04 ‖ sessionId ‖ key's ‖
    co-signer's`` (170 bytes) passes, the co-signer signing ``CoSign(sessionId, userOpHash)`` in the module's
    domain. Its permissions live in the documented space, which the key alone does not reach; without the prefix
    the limit has no time to count in."""
    documented("| `[1, 7)` | the claimed time (uint48, big-endian) |")
    s = CoSigned(world, chain)
    key, co, id_, at, account, call = s.key, s.co, s.id, s.at, s.account, s.call

    def co_signed(h: bytes) -> bytes:
        signature = at + b"\x04" + id_ + key.sign(h) + s.co_sign(h)
        assert len(signature) == 170
        return signature

    assert world.session_op(account, call, co_signed) == ("ok", b"")
    assert bytes(world.module.digestToCoSign(id_, b"\x11" * 32)) == co_sign_digest(world, id_, b"\x11" * 32)
    space = to_checksum_address(keccak(b"keyscope co-signed session" + id_)[-20:])
    documented('`space = address(uint160(uint256(keccak256("keyscope co-signed session" ‖ sessionId))))`')
    assert world.module.sessionSignerOf(account, id_)[:2] == (key.address, space)
    usage = world.module.limitUsage(account, id_)[0]
    assert (usage.kind, usage.amount, usage.period, usage.periodStart, usage.used) == (
        CALLS,
        5,
        HOUR,
        s.valid_after,
        2,
    )
    # no prefix: the per-period limit has no claimed time
    reverted_with(
        world.session_op(account, call, lambda h: b"\x04" + id_ + key.sign(h) + s.co_sign(h)),
        "ClaimedTimeRequired(uint256,uint256)",
    )
    # the key alone (AT ‖ USE, 72 bytes) finds no permission under the key: AA24
    assert world.session_op(account, call, lambda h: at + key.sign(h))[0].startswith("AA24")
    # the co-signature over the bare userOpHash is not the CoSign digest: AA24
    wrong = lambda h: at + b"\x04" + id_ + key.sign(h) + co.sign(h)  # noqa: E731
    assert world.session_op(account, call, wrong)[0].startswith("AA24")


def test_a_limits_meter_word_and_record_are_where_and_as_the_docs_lay_them_out(world, chain) -> None:
    """The co-signed session's permission, stored under its space: the header flagged ``lim``, the meter word in
    ``words[30]`` (``offset (16) | limit index (4) | kind (4)`` per meter, the count, the record base); the limit's
    record (state: left, period, period index; config: amount, kind, anchor), ``_sessionLimits``,
    ``_limitSessions``, ``_nextLimitRecord`` and the co-signer's record, as the docs give them."""
    s = CoSigned(world, chain)  # its first operation counted one call
    account, module = s.account, world.module.address
    space = bytes.fromhex(to_checksum_address(keccak(b"keyscope co-signed session" + s.id)[-20:])[2:])
    perm_key = keccak(space + bytes.fromhex(world.target.address[2:]) + OTHER)
    header = world.c.storage(module, slot(account, "_permissions", perm_key))
    assert (header >> 248) & 1 == 1 and (header >> 252) & 1 == 1  # live, limited
    assert (header >> 200) & 0xFF == 0  # no rules
    base = world.c.storage(module, slot(account, "_nextLimitRecord")) - 1
    meter_word = world.c.storage(module, slot(account, "_permissions", perm_key, 31))  # words[30]
    assert meter_word & (2**24 - 1) == (CALLS << 20) | (0 << 16) | 0  # meter 0: kind, limit 0, offset 0
    assert (meter_word >> 24) & (2**168 - 1) == 0  # meters 1..7
    assert (meter_word >> 192) & 0xF == 1  # meter count
    assert (meter_word >> 200) & 0xFFFF == 0  # OPERATIONS and GAS masks
    assert (meter_word >> 216) & (2**32 - 1) == base  # record base
    assert meter_word >> 248 == 0  # the first paymaster word: after no rule words
    state = world.c.storage(module, slot(account, "_limitRecords", base))
    assert (state & (2**176 - 1), (state >> 176) & (2**32 - 1), state >> 208) == (4, HOUR, 0)
    config = world.c.storage(module, slot(account, "_limitRecords", base, 1))
    assert (config & (2**176 - 1), (config >> 176) & 0xFF, (config >> 184) & (2**48 - 1)) == (
        5,
        CALLS,
        s.valid_after,
    )
    assert world.c.storage(module, slot(account, "_sessionLimits", s.id)) == base | (1 << 32)
    assert world.c.storage(module, slot(account, "_limitSessions", base)).to_bytes(32, "big") == s.id
    assert world.c.storage(module, slot(account, "_coSigners", s.id)) == (1 << 160) | int(s.co.address, 16)


def test_a_co_signed_sessions_sign_in_signature_and_its_co_signer_removed_as_documented(world, chain) -> None:
    """SIGN-IN with ``who`` 0x02 on keyscope's account: ``0x02 ‖ 0x02 ‖ sessionId ‖ the key's ECDSA of H ‖ the
    co-signer's of CoSign(sessionId, H) ‖ L (2, big-endian) ‖ message``; once the owner calls ``rotateCoSigner(id,
    0)``, ``who`` 0x01 with the key's signature alone, and SESSION operations of 98 bytes (105 behind AT)."""
    documented(
        "| `[h, h+2)` | the length `L` of the message's first line (big-endian), its line break included |"
    )
    s = CoSigned(world, chain)
    first, message, hashes = sign_in(world, s.account, WEBSITE)
    hash191, signed = hashes[:32], hashes[32:]
    length = len(first).to_bytes(2, "big")
    both = b"\x02\x02" + s.id + s.key.sign(signed) + s.co_sign(signed) + length + message
    assert is_valid_signature(world, s.account, hash191, both) == ERC1271_VALID
    assert refusal(world, s.account, hash191, both) == b""
    key_only = b"\x02\x01" + s.id + s.key.sign(signed) + length + message
    assert is_valid_signature(world, s.account, hash191, key_only) == ERC1271_INVALID
    # the co-signature of the bare H, not of CoSign(sessionId, H)
    bare = b"\x02\x02" + s.id + s.key.sign(signed) + s.co.sign(signed) + length + message
    assert refusal(world, s.account, hash191, bare)[:4] == error("InvalidCoSignature()")
    # the co-signer removed: who 0x01, and SESSION without the co-signature
    rotate = keccak(b"rotateCoSigner(bytes32,address)")[:4] + encode(
        ["bytes32", "address"], [s.id, "0x" + "00" * 20]
    )
    assert world.owner_op(s.account, execute_single(world.module.address, 0, rotate)) == ("ok", b"")
    assert is_valid_signature(world, s.account, hash191, key_only) == ERC1271_VALID
    assert is_valid_signature(world, s.account, hash191, both) == ERC1271_INVALID
    alone = lambda h: s.at + b"\x04" + s.id + s.key.sign(h)  # noqa: E731
    assert len(alone(bytes(32))) == 105
    assert world.session_op(s.account, s.call, alone) == ("ok", b"")


# ------------------------------------------------------------------------------------------------------
# OpenZeppelin's AccountERC7579: installModule with sessions, ENABLE through its validator, revoke, ERC-1271
# ------------------------------------------------------------------------------------------------------

VERIFIER = "0x" + "77" * 20
CONTENTS_NAME = "Transfer"
CONTENTS_TYPE = "Asset(address token,uint64 id)Transfer(Asset asset,address to,uint256 amount)"


def _typed_session(world) -> dict[str, Any]:
    """A signing-only session: typed data ``Transfer`` of the domain {name "Shop", chainId, verifyingContract}
    (``domainFields`` 0x0d), ``amount <= 100`` (frame 0's word 2) and ``asset.id <= 7`` (frame 1's word 1, the
    nested struct at frame 0's word 0), and sign-in messages for ``WEBSITE``."""
    return session(
        world.keys["typed"].address,
        typedData=[
            dict(
                domainFields=0x0D, name="Shop", version="", chainId=world.c.chain_id, verifyingContract=VERIFIER,
                salt=bytes(32), contentsName=CONTENTS_NAME, contentsType=CONTENTS_TYPE, nested=[0],
                rules=[rule(LESS_THAN_OR_EQUAL, 64, 0, [100]), rule(LESS_THAN_OR_EQUAL, 128, UINT64, [7])],
            )
        ],
        signIn=[WEBSITE],
    )  # fmt: skip


def install_on_plain_account(world) -> bytes:
    """Install the module on the ERC-7579 account with the typed-data session of ``_typed_session``; its id."""
    value = _typed_session(world)
    install = keccak(b"installModule(uint256,address,bytes)")[:4] + encode(
        ["uint256", "address", "bytes"],
        [1, world.module.address, encode([f"{SESSION_ABI}[]"], [[session_abi(value)]])],
    )
    assert world.owner_op(world.plain, execute_single(world.plain, 0, install)) == ("ok", b"")
    return session_id(value, world.plain, int(world.module.epochOf(world.plain)))


def test_installing_the_module_on_an_erc7579_account_with_sessions_as_documented(world) -> None:
    """accounts.md: ``installModule(1, module, initData)``, ``initData`` going to ``onInstall`` as it is, by the
    owner's operation through its validator (nonce key ``validator (20) ‖ lane (4)``)."""
    documented(
        "`installModule(1, module, initData)`, `initData` goes to\n  the module's `onInstall` as it is",
        ACCOUNTS_DOC,
    )
    assert not world.module.isInitialized(world.plain)
    id_ = install_on_plain_account(world)
    assert world.module.isInitialized(world.plain)
    assert world.module.isSessionActive(world.plain, id_)


def test_an_enable_operation_on_an_erc7579_account_and_its_revocation_as_documented(world) -> None:
    """ENABLE with the owner's signature framed as accounts.md says for such an account (``ownerValidator (20) ‖
    sig``); ``revokeSession(id)`` by the account clears the permission's header and revokes the id for good: USE
    finds nothing (AA24), the same ENABLE is refused (``SessionIsRevoked``)."""
    documented(
        "| reference account (MSA), generic | `ownerValidator (20 bytes) ‖ sig` | the digest |", ACCOUNTS_DOC
    )
    install_on_plain_account(world)
    key = world.keys["plain"]
    value = session(key.address, permissions=[permission(world.target.address, OTHER)])
    owner_signature = bytes.fromhex(world.owner_validator.address[2:]) + world.owner.sign(
        world.grant_digest(world.plain, value)
    )

    def enable(h: bytes) -> bytes:
        return b"\x01" + encode(
            [SESSION_ABI, "bytes", "bytes"], [session_abi(value), owner_signature, key.sign(h)]
        )

    call = execute_single(world.target.address, 0, other(3))
    assert world.session_op(world.plain, call, enable) == ("ok", b"")
    assert world.session_op(world.plain, call, key.sign) == ("ok", b"")
    id_ = session_id(value, world.plain, int(world.module.epochOf(world.plain)))
    perm_key = keccak(bytes.fromhex(key.address[2:]) + bytes.fromhex(world.target.address[2:]) + OTHER)
    header = world.c.storage(world.module.address, slot(world.plain, "_permissions", perm_key))
    assert header & (1 << 248) != 0
    revoke = keccak(b"revokeSession(bytes32)")[:4] + id_
    assert world.owner_op(world.plain, execute_single(world.module.address, 0, revoke)) == ("ok", b"")
    assert world.module.isSessionRevoked(world.plain, id_)
    assert not world.module.isSessionActive(world.plain, id_)
    header = world.c.storage(world.module.address, slot(world.plain, "_permissions", perm_key))
    assert header & (1 << 248) == 0
    assert world.session_op(world.plain, call, key.sign)[0].startswith("AA24")
    reverted_with(world.session_op(world.plain, call, enable), "SessionIsRevoked(bytes32)")


def _app_separator(world) -> bytes:
    return keccak(
        keccak(b"EIP712Domain(string name,uint256 chainId,address verifyingContract)")
        + keccak(b"Shop")
        + encode(["uint256", "address"], [world.c.chain_id, VERIFIER])
    )


def test_signing_permissions_are_stored_where_and_as_the_docs_lay_them_out(world) -> None:
    """A typed-data permission and a sign-in permission granted at install: under their documented signing keys,
    their headers, TypedDataSign typehash, nested list and rule words, and the session's signing record."""
    id_ = install_on_plain_account(world)
    account, module = world.plain, world.module.address
    space = bytes.fromhex(world.keys["typed"].address[2:])
    contents_type_hash = keccak(
        b"Transfer(Asset asset,address to,uint256 amount)Asset(address token,uint64 id)"
    )
    typed_key = keccak(b"\x01" + space + _app_separator(world) + contents_type_hash)
    first_line = f"{WEBSITE} wants you to sign in with your Ethereum account:\n".encode()
    sign_in_key = keccak(b"\x02" + space + keccak(first_line))

    def word(key: bytes, n: int) -> int:
        return world.c.storage(module, slot(account, "_signing", key, n))

    header = word(typed_key, 0)
    assert header & (2**96 - 1) == 0  # validAfter, validUntil
    assert ((header >> 96) & 0xFF, (header >> 104) & 0xFF, (header >> 112) & 0xFF) == (0, 2, 2)
    assert (header >> 120) & (2**128 - 1) == 0 and header >> 248 == 1  # zeros, live
    tds = keccak(
        b"TypedDataSign(Transfer contents,string name,string version,uint256 chainId,address verifyingContract,"
        b"bytes32 salt)" + CONTENTS_TYPE.encode()
    )
    assert word(typed_key, 1).to_bytes(32, "big") == tds
    assert word(typed_key, 2) == 1 | (0 << 8)  # one nested entry: frame 0's word 0
    # the rule words, as a call permission's: offset | condition | value count | checked type | first value
    assert word(typed_key, 3) == (64 << 240) | (LESS_THAN_OR_EQUAL << 232) | (1 << 224) | (0 << 216) | 100
    assert word(typed_key, 4) == (128 << 240) | (LESS_THAN_OR_EQUAL << 232) | (1 << 224) | (UINT64 << 216) | 7
    sign_in_header = word(sign_in_key, 0)
    assert ((sign_in_header >> 96) & 0xFF, (sign_in_header >> 104) & 0xFFFF, sign_in_header >> 248) == (
        1,
        0,
        1,
    )
    record = [world.c.storage(module, slot(account, "_signingRecords", id_, n)) for n in range(3)]
    assert record == [2, int.from_bytes(typed_key, "big"), int.from_bytes(sign_in_key, "big")]
    header_, typehash, nested, rule_words = world.module.signingPermission(account, typed_key)
    assert (header_, bytes(typehash), nested, list(rule_words)) == (
        header,
        tds,
        1,
        [word(typed_key, 3), word(typed_key, 4)],
    )


def test_a_typed_data_signature_of_a_session_as_documented(world) -> None:
    """The TYPED DATA layout, byte by byte: ``0x01 ‖ who 0x00 ‖ key ‖ the key's ECDSA of H ‖ appDomainSeparator ‖
    contentsTypeHash ‖ n ‖ frame sizes ‖ nested typehashes ‖ words``, H the ERC-7739 TypedDataSign hash with the
    module's account domain, routed by the account as ``module (20) ‖ body``; the verifier's own hash is valid
    within the rules and invalid past each of them, with the module's reason."""
    documented("| next `32 \u00d7 (n\u22121)` | the typehash of each nested frame | `_frames` |")
    install_on_plain_account(world)
    key = world.keys["typed"]
    chain_id, account, module = world.c.chain_id, world.plain, world.module.address
    asset_type = keccak(b"Asset(address token,uint64 id)")
    transfer_type = keccak(b"Transfer(Asset asset,address to,uint256 amount)Asset(address token,uint64 id)")
    tds_type = keccak(
        b"TypedDataSign(" + CONTENTS_NAME.encode()
        + b" contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
        + CONTENTS_TYPE.encode()
    )  # fmt: skip
    app = _app_separator(world)

    def signature_for(amount: int, asset_id: int) -> tuple[bytes, bytes]:
        frame1 = encode(["address", "uint64"], ["0x" + "aa" * 20, asset_id])
        frame0 = keccak(asset_type + frame1) + encode(["address", "uint256"], ["0x" + "bb" * 20, amount])
        contents = keccak(transfer_type + frame0)
        hash_ = typed(app, contents)  # what the verifier asks about
        signed = typed(
            app,
            keccak(
                tds_type + contents + keccak(b"keyscope Session") + keccak(b"1")
                + encode(["uint256", "address", "bytes32"], [chain_id, account, bytes.fromhex(module[2:]).rjust(32, b"\x00")])
            ),
        )  # fmt: skip
        body = (
            b"\x01\x00" + bytes.fromhex(key.address[2:]) + key.sign(signed) + app + transfer_type
            + b"\x02" + bytes([3, 2]) + asset_type + frame0 + frame1
        )  # fmt: skip
        return hash_, body

    def answer(hash_: bytes, body: bytes) -> bytes:
        return is_valid_signature(world, account, hash_, body)

    hash_, body = signature_for(100, 7)
    assert len(body) == 87 + 32 + 32 + 1 + 2 + 32 + 5 * 32
    assert answer(hash_, body) == ERC1271_VALID
    assert refusal(world, account, hash_, body) == b""
    for amount, asset_id, rule_index in ((101, 7, 0), (100, 8, 1)):
        hash_, body = signature_for(amount, asset_id)
        assert answer(hash_, body) == ERC1271_INVALID
        refused = refusal(world, account, hash_, body)
        assert refused[:4] == error("SignedRuleViolated(uint256,uint256,bytes32)"), refused.hex()
        assert _decode(["uint256", "uint256", "bytes32"], refused)[:2] == (0, rule_index)
    # one byte more or less is invalid: the layout is exact
    hash_, body = signature_for(1, 1)
    assert answer(hash_, body) == ERC1271_VALID
    assert answer(hash_, body + b"\x00") == answer(hash_, body[:-1]) == ERC1271_INVALID


def test_a_sign_in_signature_of_a_session_as_documented(world) -> None:
    """SIGN-IN with ``who`` 0x00: ``0x02 ‖ 0x00 ‖ key ‖ the key's ECDSA of H ‖ L (2, big-endian) ‖ message``, H
    ERC-7739's PersonalSign of the message's EIP-191 hash in the module's account domain; the first line must be
    a granted website's, the second the account's address."""
    install_on_plain_account(world)
    key, account = world.keys["typed"], world.plain
    first, message, hashes = sign_in(world, account, WEBSITE)
    hash191, signed = hashes[:32], hashes[32:]
    body = (
        b"\x02\x00"
        + bytes.fromhex(key.address[2:])
        + key.sign(signed)
        + len(first).to_bytes(2, "big")
        + message
    )
    assert is_valid_signature(world, account, hash191, body) == ERC1271_VALID
    # the length little-endian: past the message's end
    swapped = body[:87] + len(first).to_bytes(2, "little") + message
    assert refusal(world, account, hash191, swapped)[:4] == error("MalformedSignature()")
    # a length one short: the first line without its line break is no granted one
    short = body[:87] + (len(first) - 1).to_bytes(2, "big") + message
    assert refusal(world, account, hash191, short)[:4] == error("SignInNotGranted(address,bytes32)")
    # another website
    first, message, hashes = sign_in(world, account, "evil.example.com")
    body = (
        b"\x02\x00"
        + bytes.fromhex(key.address[2:])
        + key.sign(hashes[32:])
        + len(first).to_bytes(2, "big")
        + message
    )
    assert refusal(world, account, hashes[:32], body)[:4] == error("SignInNotGranted(address,bytes32)")
    # another account's address on the second line
    first, message, hashes = sign_in(world, world.account, WEBSITE)
    signed = typed(
        account_domain_separator(world, account),
        keccak(keccak(b"PersonalSign(bytes prefixed)") + hashes[:32]),
    )
    body = (
        b"\x02\x00"
        + bytes.fromhex(key.address[2:])
        + key.sign(signed)
        + len(first).to_bytes(2, "big")
        + message
    )
    assert refusal(world, account, hashes[:32], body)[:4] == error("SignInAccountMismatch()")
