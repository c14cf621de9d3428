"""Session signatures (ERC-1271) mutated byte by byte, judged by what a verifier acting on the account's answer did.

The operation fuzzer (``tests/test_fuzz_signed_operations_by_effect.py``) judges what an account does with a leaked
key's operations; a key granted signing permissions can also make the account approve messages, which a verifier
(Permit2, a token's ``permit``, a sign-in server) then acts on. Here a leaked key edits the bytes of valid session
signatures, re-signs what it can, and asks the account's own ``isValidSignature``; whatever the account approves is
judged against the grant. Per account kind (keyscope's own, Kernel v3.1, Nexus 1.0, a Safe with the Safe7579
adapter, the ERC-7579 reference account: the five kinds whose ERC-1271 path reaches the module), on one anvil (no
bundler is needed for ERC-1271, but the vendors' accounts are: Kernel's implementation is over EIP-170's size):

* **Set-up**: the module installed (at the account's creation, or by the account's own call: the Safe) with three
  sessions: the attacker's key's, granting Permit2's ``PermitSingle`` in a Permit2-like domain (``details.token ==
  USDC``, ``details.amount <= LIMIT``, ``details.expiration <= EXPIRY``, ``spender == ROUTER``; ``details`` expanded
  as a nested frame), an EIP-2612 ``Permit`` in a token's domain (``spender == ROUTER``, ``value <= LIMIT``), both
  naming the application's contract, and sign-in for ``app.example.com``, in a window; a co-signed session of the
  same key (sign-in for ``cosigned.example.com``, its co-signer not the attacker's); and another key's session (an
  EIP-2612 ``Permit`` with a wider rule, sign-in for ``other.example.com``). The verifier is
  ``contracts/test/SignatureRecorder.sol``: it asks the account's ``isValidSignature`` and records each signature
  approved (the account, the hash, the signature, the block's time).
* **Seeds**: typed data and sign-in messages the SDK's pieces encode and the key signs (a permit at each rule's
  bound, one well inside, an EIP-2612 permit at its bound, an EIP-4361 message), each approved at set-up.
* **Mutations** (hypothesis draws one family per example, then one or two edits): the body's bits flipped; its
  header (kind, ``who``, the key, a session id: the co-signed session's, the other key's); the application's domain
  separator (the other permission's, neighbouring domains: another chain, another contract, the account's, a name
  changed; the account's own); the contents typehash (the other permission's, the nested struct's, renamed or
  reordered fields); the frames (their count, sizes, the nested typehash); the words the module reads (a rule's
  bound and past it, a dirty narrow type, another address, the nested struct's hash left stale or recomputed); a
  sign-in message (its website, its address line, the first line's length); lengths (bytes inserted, deleted,
  appended, cut); the hash asked (the seed's, Kernel's wrapping, the ERC-7739 hash itself, the contents hash, a
  random word); the ECDSA bytes (``s`` made high, ``v`` changed, the other key's signature); the account's routing
  prefix (another validator, Kernel's root validation, the module's prefix a byte longer or shorter); the caller (a second application, the zero address, the
  account, the module, the owner's validator: an ``eth_call`` of ``isValidSignature`` from it); the account (a
  signature made for one account asked of another). The typed-data families edit a sign-in seed's message, the
  sign-in family a typed seed's words. But for the ECDSA and routing families (and half the flipped bits), the key
  then signs
  what the module will check (ERC-7739's nested hash of the edited contents, for the account the signature is made
  for) and the hash asked is the one the edited contents hash to. Some examples first revoke the session (the
  account's call) or move the clock past its window.
* **Oracle** (plain Python from the grant, neither the SDK's checker nor the module): an approved signature must be
  routed to the session module, name the attacker's key (its only session without co-signer), carry the domain
  separator and typehash of a granted permission as the oracle computes them from the domains and types, and
  contents whose EIP-712 hash (the primary struct's, the nested struct's word its hash) is the hash asked, their
  ruled fields canonical words of their types meeting every rule; or a sign-in message starting with the granted
  website's first line and the account's address line, whose EIP-191 hash is the hash asked; asked of the account
  that granted the key, by a caller that is not the account, the module or another module of it; the block inside
  the window and the session not revoked. A control test feeds the oracle forbidden approvals and checks it names
  each.

Each example that moved the chain reverts it (``evm_snapshot`` / ``evm_revert``). The tally per family (refused
before the module, refused by the module, approved) and per refusal reason is printed; every family must reach the
module's check in every run, and some examples must be approved. An approval of Kernel's ``Kernel(bytes32 hash)``
wrapping of a granted hash in the account's own EIP-712 domain, on an account that does not wrap (keyscope's,
Nexus), is no breach: the module takes that wrapping on any account with an ERC-5267 domain (threat model, attack
150), and it approves nothing but the granted hash; the oracle names it and the tally counts it apart.

``KEYSCOPE_FUZZ=deep`` runs ten times more examples per account kind.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account.messages import encode_typed_data
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from keyscope import Policy, arg
from keyscope.accounts import AccountKind, KeyscopeAccountKind, create_account_data
from keyscope.chain import RpcChain
from keyscope.erc1271 import co_signed_space, encode_sign_in_signature, encode_typed_data_signature
from keyscope.hexutil import keccak, to_address
from keyscope.local.deploy import deploy_entry_point
from keyscope.message_signing import sign_in_message
from keyscope.module import decode_epoch, epoch_of_data
from keyscope.rpc import JsonRpcError
from keyscope.session import SESSION_ABI_TYPE, Session, TypedDataPermission
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData, personal_sign_hash, typed_data_sign_hash
from keyscope.typed_fields import nested_frames
from support.accounts import deploy_accounts
from support.anvil_chain import AnvilChain, anvil_chain
from support.effects import Deployer, MiningNode, Stack, create, create_safe, install_by_own_call
from support.fuzz import DEEP, ON_CHAIN
from support.permit_types import EXPIRY, LIMIT, PERMIT_SINGLE_TYPES, PERMIT_TYPES, ROUTER, USDC

T = TypeVar("T")
ETHER = 10**18
ZERO = "0x" + "00" * 20
ATTACKER = to_address(keccak(b"keyscope signatures attacker")[12:])
KINDS = ("keyscope", "kernel", "nexus", "safe7579", "msa")
"""The account kinds whose ERC-1271 path reaches the session module (docs/accounts.md)."""
WEBSITE = "app.example.com"
CO_SIGNED_WEBSITE = "cosigned.example.com"
OTHER_WEBSITE = "other.example.com"
SIGN_IN_LINE = " wants you to sign in with your Ethereum account:\n"
OTHER_LIMIT = 10**30
"""The other key's EIP-2612 rule (``value <= OTHER_LIMIT``): wider than the attacker's own."""
MAGIC = bytes.fromhex("1626ba7e")
IS_VALID_SIGNATURE = keccak(b"isValidSignature(bytes32,bytes)")[:4]
IS_VALID_SIGNATURE_WITH_SENDER = keccak(b"isValidSignatureWithSender(address,bytes32,bytes)")[:4]
REFUSAL = keccak(b"refusal(address,address,bytes32,bytes)")[:4]
ACCEPT = keccak(b"accept(address,bytes32,bytes)")[:4]
ACCEPTED = keccak(b"Accepted(address,bytes32,bytes,uint256)")
REVOKE_SESSION = keccak(b"revokeSession(bytes32)")[:4]
KERNEL_WRAPPER_TYPEHASH = keccak(b"Kernel(bytes32 hash)")
EIP712_DOMAIN = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")

FAMILIES = (
    "flip bits",
    "header",
    "app domain separator",
    "contents typehash",
    "frames",
    "words",
    "sign-in message",
    "lengths",
    "hash asked",
    "ECDSA bytes",
    "routing prefix",
    "caller",
    "account",
)
NOT_RESIGNED = ("ECDSA bytes", "routing prefix")
PRELUDES = ("nothing", "nothing", "nothing", "the session revoked", "the window over")
OUTCOMES = ("refused before the module", "refused by the module", "approved")
EXAMPLES = 5000 if DEEP else 500


class Draw(Protocol):
    """Hypothesis's ``data.draw``."""

    def __call__(self, strategy: st.SearchStrategy[T], label: object = None) -> T: ...


# --------------------------------------------------------------------------------------------------
# The grant, as its definition reads (the oracle's side: plain Python, no SDK checker, no module)
# --------------------------------------------------------------------------------------------------

Fields = tuple[tuple[str, str], ...]
PERMIT_DETAILS: Fields = (
    ("token", "address"),
    ("amount", "uint160"),
    ("expiration", "uint48"),
    ("nonce", "uint48"),
)
PERMIT_SINGLE: Fields = (("details", "PermitDetails"), ("spender", "address"), ("sigDeadline", "uint256"))
PERMIT: Fields = (
    ("owner", "address"),
    ("spender", "address"),
    ("value", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)


def _definition(name: str, fields: Fields) -> bytes:
    """EIP-712's definition of struct ``name``: ``Name(type member,...)``."""
    return f"{name}({','.join(f'{kind} {member}' for member, kind in fields)})".encode()


PERMIT_DETAILS_TYPEHASH = keccak(_definition("PermitDetails", PERMIT_DETAILS))
PERMIT_SINGLE_TYPEHASH = keccak(
    _definition("PermitSingle", PERMIT_SINGLE) + _definition("PermitDetails", PERMIT_DETAILS)
)
PERMIT_TYPEHASH = keccak(_definition("Permit", PERMIT))


def _bits(kind: str) -> int:
    """The width of an atomic type's values (``address``, ``uintN``)."""
    return 160 if kind == "address" else int(kind.removeprefix("uint"))


@dataclass(frozen=True)
class OracleRule:
    """A rule of the grant: the field (its frame and member), its type and what its value must meet."""

    frame: int
    member: str
    kind: str
    holds: Callable[[int], bool]
    text: str


@dataclass(frozen=True)
class OraclePermission:
    """A typed-data permission as the grant defines it: the domain's separator, the frames (the primary struct,
    then each nested struct the grant expands: its fields, and the primary member whose word is its hash) and the
    rules."""

    label: str
    separator: bytes
    type_hash: bytes
    frames: tuple[tuple[bytes, Fields], ...]
    expands: tuple[int, ...]
    """For each nested frame, the index of the primary struct's member it is the hash of."""
    rules: tuple[OracleRule, ...]


def _domain_separator(name: str, version: str | None, chain_id: int, contract: str) -> bytes:
    """An application's EIP-712 domain separator: name, an optional version, chainId, verifyingContract."""
    if version is None:
        return keccak(
            keccak(b"EIP712Domain(string name,uint256 chainId,address verifyingContract)")
            + keccak(name.encode())
            + chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(contract[2:])
        )
    return keccak(
        EIP712_DOMAIN
        + keccak(name.encode())
        + keccak(version.encode())
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(contract[2:])
    )


def oracle_permissions(app: str, chain_id: int) -> tuple[OraclePermission, OraclePermission]:
    """The attacker's key's two typed-data permissions, from their definition."""
    usdc, router = int(USDC, 16), int(ROUTER, 16)
    permit2 = OraclePermission(
        "PermitSingle on Permit2",
        _domain_separator("Permit2", None, chain_id, app),
        PERMIT_SINGLE_TYPEHASH,
        ((PERMIT_SINGLE_TYPEHASH, PERMIT_SINGLE), (PERMIT_DETAILS_TYPEHASH, PERMIT_DETAILS)),
        (0,),
        (
            OracleRule(1, "token", "address", lambda v: v == usdc, "details.token == USDC"),
            OracleRule(1, "amount", "uint160", lambda v: v <= LIMIT, "details.amount <= LIMIT"),
            OracleRule(1, "expiration", "uint48", lambda v: v <= EXPIRY, "details.expiration <= EXPIRY"),
            OracleRule(0, "spender", "address", lambda v: v == router, "spender == ROUTER"),
        ),
    )
    permit = OraclePermission(
        "EIP-2612 Permit",
        _domain_separator("Test USD", "1", chain_id, app),
        PERMIT_TYPEHASH,
        ((PERMIT_TYPEHASH, PERMIT),),
        (),
        (
            OracleRule(0, "spender", "address", lambda v: v == router, "spender == ROUTER"),
            OracleRule(0, "value", "uint256", lambda v: v <= LIMIT, "value <= LIMIT"),
        ),
    )
    return permit2, permit


@dataclass(frozen=True)
class Approval:
    """What the verifier recorded: the account asked, its caller, the hash, the signature, the block's time; and
    whether the session was revoked before."""

    account: str
    caller: str
    hash: bytes
    signature: bytes
    time: int
    revoked: bool


@dataclass(frozen=True)
class OracleGrant:
    """What the oracle knows of one account: the attacker's key, the session's window, the routing prefix of the
    session module, the permissions, the callers that may not ask (the account, the module, its other modules)."""

    account: str
    key: str
    valid_after: int
    valid_until: int
    prefix: bytes
    permissions: tuple[OraclePermission, ...]
    forbidden_callers: frozenset[str]
    account_domain: bytes | None = None
    """The separator of the account's own EIP-712 domain (ERC-5267 ``eip712Domain()``), None when it has none:
    where Kernel wraps the hashes it passes its validators (attack 150)."""


def _typed_data_breach(grant: OracleGrant, approval: Approval, body: bytes) -> str | None:
    """Why typed-data contents ``body`` (past the key's header) approved as ``approval.hash`` break the grant."""
    if len(body) < 65:
        return f"contents of {len(body)} bytes approved"
    separator, type_hash = body[:32], body[32:64]
    permission = next(
        (p for p in grant.permissions if p.separator == separator and p.type_hash == type_hash), None
    )
    if permission is None:
        return f"a domain {separator.hex()} and type {type_hash.hex()} no permission grants approved"
    n = body[64]
    sizes = tuple(body[65 : 65 + n])
    if sizes != tuple(len(fields) for _, fields in permission.frames):
        return f"frames of sizes {sizes} approved for {permission.label}"
    at = 65 + n + 32 * (n - 1)
    if len(body) != at + 32 * sum(sizes):
        return f"contents of {len(body)} bytes approved for {permission.label}"
    frames: list[list[bytes]] = []
    for size in sizes:
        frames.append([body[at + 32 * i : at + 32 * (i + 1)] for i in range(size)])
        at += 32 * size
    for nested, member in enumerate(permission.expands, start=1):
        nested_hash = keccak(permission.frames[nested][0] + b"".join(frames[nested]))
        if frames[0][member] != nested_hash:
            return f"a nested struct whose hash is not its parent's word approved for {permission.label}"
    contents_hash = keccak(permission.type_hash + b"".join(frames[0]))
    app_hash = keccak(b"\x19\x01" + separator + contents_hash)
    wrapped = approval.hash != app_hash and _wrapped(grant, approval.hash, app_hash) is not None
    if approval.hash != app_hash and not wrapped:
        return f"a hash that is not the contents' approved for {permission.label}"
    for rule in permission.rules:
        fields = permission.frames[rule.frame][1]
        index = next(i for i, (member, _) in enumerate(fields) if member == rule.member)
        value = int.from_bytes(frames[rule.frame][index], "big")
        if value >= 2 ** _bits(rule.kind):
            return f"{permission.label}: {rule.member} is no {rule.kind} ({value:#x})"
        if not rule.holds(value):
            return f"{permission.label}: {rule.text} broken ({value})"
    return WRAPPED if wrapped else None


WRAPPED = "approved as Kernel's wrapping in the account's own domain"
"""How the oracle's verdict names an approval of Kernel's wrapping of granted contents' hash in the account's own
EIP-712 domain (``Kernel(bytes32 hash)``), on an account that does not wrap (keyscope's, Nexus): the module takes
it on any account with an ERC-5267 domain (attack 150), and it approves nothing but the granted hash it wraps. Not a
breach; tallied."""


def _wrapped(grant: OracleGrant, asked: bytes, inner: bytes) -> str | None:
    """:data:`WRAPPED` when ``asked`` is Kernel's wrapping of ``inner`` (granted contents' hash) in the account's
    own EIP-712 domain."""
    if grant.account_domain is None:
        return None
    if asked == keccak(b"\x19\x01" + grant.account_domain + keccak(KERNEL_WRAPPER_TYPEHASH + inner)):
        return WRAPPED
    return None


def _sign_in_breach(grant: OracleGrant, approval: Approval, message: bytes) -> str | None:
    """Why the sign-in ``message`` approved as ``approval.hash`` breaks the grant."""
    first = (WEBSITE + SIGN_IN_LINE).encode()
    if not message.startswith(first):
        return f"a sign-in message not for {WEBSITE} approved: {message[:80]!r}"
    line = message[len(first) : len(first) + 43]
    if line.lower() != ("0x" + grant.account[2:].lower() + "\n").encode():
        return f"a sign-in message for another address approved: {line!r}"
    prefixed = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message
    if approval.hash != keccak(prefixed):
        return (
            _wrapped(grant, approval.hash, keccak(prefixed))
            or "a hash that is not the sign-in message's approved"
        )
    return None


def breach(grant: OracleGrant, approval: Approval) -> str | None:
    """Why an approval breaks the grant (None: the grant allows it)."""
    if to_address(approval.account) != to_address(grant.account):
        return f"approved by {approval.account}, which grants the key nothing"
    if to_address(approval.caller) in grant.forbidden_callers:
        return f"approved for {approval.caller}, the account or one of its modules"
    if not grant.valid_after <= approval.time <= grant.valid_until:
        return f"approved at {approval.time}, outside the window"
    if approval.revoked:
        return "approved after the session was revoked"
    signature = approval.signature
    if not signature.startswith(grant.prefix):
        return f"approved through another validator: {signature[: len(grant.prefix)].hex()}"
    body = signature[len(grant.prefix) :]
    if len(body) < 87 or body[1] != 0 or to_address(body[2:22]) != to_address(grant.key):
        return f"approved naming another signer: {body[:34].hex()}"
    if body[0] == 1:
        return _typed_data_breach(grant, approval, body[87:])
    if body[0] == 2:
        if len(body) < 89:
            return "a sign-in signature without its message approved"
        return _sign_in_breach(grant, approval, body[89:])
    return f"a signature of kind {body[0]} approved"


# --------------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------------


def signing_permissions(app: str, chain_id: int) -> tuple[TypedDataPermission, TypedDataPermission]:
    """The attacker's key's typed-data permissions, built with the SDK's policy builder as a dapp asks for them."""
    permit2 = Policy.typed_data(
        {"name": "Permit2", "chainId": chain_id, "verifyingContract": app},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [
            arg("details", "token") == USDC,
            arg("details", "amount") <= LIMIT,
            arg("details", "expiration") <= EXPIRY,
            arg("spender") == ROUTER,
        ],
    )
    permit = Policy.typed_data(
        {"name": "Test USD", "version": "1", "chainId": chain_id, "verifyingContract": app},
        PERMIT_TYPES,
        "Permit",
        [arg("spender") == ROUTER, arg("value") <= LIMIT],
    )
    return permit2, permit


@dataclass
class Seed:
    """A valid session signature: its body (the module's layout), the hash it approves, and for typed data the
    index of its permission."""

    what: str
    body: bytes
    hash: bytes
    permission: int | None


@dataclass
class Stage:
    """One account kind's account, the attacker's key and sessions, the oracle's view of its grant, its seeds."""

    name: str
    kind: AccountKind
    account: str
    key: LocalSigner
    session: Session
    session_id: bytes
    co_signed_id: bytes
    other_key: LocalSigner
    other_id: bytes
    grant: OracleGrant
    prefix: bytes
    owner_validator: str | None
    seeds: list[Seed] = field(default_factory=list)


@dataclass
class World:
    """The file's anvil: the module, its verifier, the two applications (``SignatureRecorder``), the stages."""

    anvil: AnvilChain
    module: str
    verifier: str
    apps: tuple[str, str]
    """The application the grants' domains name, and a second one."""
    submitter: str
    stages: dict[str, Stage]
    errors: dict[bytes, str]
    snapshot: str = ""

    @property
    def rpc(self) -> Any:
        """The node's JSON-RPC connection."""
        return self.anvil.rpc

    @property
    def chain_id(self) -> int:
        """The chain's id."""
        return int(self.anvil.chain_id)

    def restore(self) -> None:
        """The chain back as it was set up."""
        assert self.rpc.request("evm_revert", [self.snapshot])
        self.snapshot = self.rpc.request("evm_snapshot")


def _stage(name: str, world: World, project: Any, factory: Any, vendors: Any) -> Stage:
    """The account of kind ``name`` with the module installed holding the three sessions."""
    anvil = world.anvil
    chain_id = world.chain_id
    key = LocalSigner(keccak(f"keyscope signatures session key {name}".encode()))
    other_key = LocalSigner(keccak(f"keyscope signatures other key {name}".encode()))
    co_signer = LocalSigner(keccak(f"keyscope signatures co-signer {name}".encode()))
    owner = LocalSigner(keccak(f"keyscope signatures owner {name}".encode()))
    now = int(anvil.rpc.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    window = (now - 60, now + 30 * 86400)
    session = Session(
        session_key=key.address,
        valid_after=window[0],
        valid_until=window[1],
        salt=1,
        typed_data_permissions=signing_permissions(world.apps[0], chain_id),
        sign_in=(WEBSITE,),
    )
    co_signed = Session(
        session_key=key.address,
        valid_after=window[0],
        valid_until=window[1],
        salt=2,
        co_signer=co_signer.address,
        sign_in=(CO_SIGNED_WEBSITE,),
    )
    other = Session(
        session_key=other_key.address,
        valid_after=window[0],
        valid_until=window[1],
        salt=3,
        typed_data_permissions=(
            Policy.typed_data(
                {"name": "Test USD", "version": "1", "chainId": chain_id, "verifyingContract": world.apps[0]},
                PERMIT_TYPES,
                "Permit",
                [arg("value") <= OTHER_LIMIT],
            ),
        ),
        sign_in=(OTHER_WEBSITE,),
    )
    install = abi_encode([f"{SESSION_ABI_TYPE}[]"], [[s.as_abi() for s in (session, co_signed, other)]])
    modules = [(1, world.module, install)]
    kind: AccountKind
    owner_validator: str | None = None
    if name == "keyscope":
        kind = KeyscopeAccountKind()
        address = to_address(factory.getAddress(owner.address, [tuple(m) for m in modules], 0))
        account = create(anvil, factory.address, create_account_data(owner.address, modules, 0), address)
    elif name == "safe7579":
        kind = vendors.kind(name)
        account = create_safe(anvil, kind, owner)
        install_by_own_call(anvil, kind, account, world.module, install)
        owner_validator = vendors.owner_validator
    else:
        kind = vendors.kind(name)
        deployment = kind.deployment(RpcChain(anvil.url), owner.address, modules)
        assert deployment is not None
        account = create(anvil, deployment.factory, deployment.factory_data, deployment.address)
        owner_validator = vendors.owner_validator
    anvil.send(anvil.accounts[0], account, b"", value=ETHER)  # for its own calls (a revocation)
    epoch = decode_epoch(RpcChain(anvil.url).call(world.module, epoch_of_data(account)), world.module)
    prefix = kind.validator_erc1271_signature(world.module, b"")
    forbidden = {to_address(account), to_address(world.module)}
    if owner_validator is not None:
        forbidden.add(to_address(owner_validator))
    grant = OracleGrant(
        account,
        key.address,
        window[0],
        window[1],
        prefix,
        oracle_permissions(world.apps[0], chain_id),
        frozenset(forbidden),
        account_domain(anvil, account),
    )
    return Stage(
        name,
        kind,
        account,
        key,
        session,
        session.session_id(account, epoch),
        co_signed.session_id(account, epoch),
        other_key,
        other.session_id(account, epoch),
        grant,
        prefix,
        owner_validator,
    )


def _permit_single(app: str, chain_id: int, amount: int, expiration: int, nonce: int) -> dict[str, Any]:
    """A Permit2 ``PermitSingle`` of USDC to the router (the SDK's typed-data form)."""
    return {
        "types": PERMIT_SINGLE_TYPES,
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": chain_id, "verifyingContract": app},
        "message": {
            "details": {"token": USDC, "amount": amount, "expiration": expiration, "nonce": nonce},
            "spender": ROUTER,
            "sigDeadline": EXPIRY,
        },
    }


def _permit(app: str, chain_id: int, owner: str, value: int) -> dict[str, Any]:
    """An EIP-2612 ``Permit`` to the router."""
    return {
        "types": PERMIT_TYPES,
        "primaryType": "Permit",
        "domain": {"name": "Test USD", "version": "1", "chainId": chain_id, "verifyingContract": app},
        "message": {"owner": owner, "spender": ROUTER, "value": value, "nonce": 0, "deadline": EXPIRY},
    }


def _blank_header(stage: Stage) -> bytes:
    """``who 0 | the key | 65 bytes`` the key's signature replaces (:func:`resign`)."""
    return b"\x00" + bytes.fromhex(stage.key.address[2:]) + bytes(65)


def _typed_seed(world: World, stage: Stage, what: str, data: dict[str, Any], index: int) -> Seed:
    """A typed-data seed: the SDK's frames of ``data`` under permission ``index``, signed by the key."""
    typed = TypedData(data)
    granted = stage.session.typed_data_permissions[index]
    frames = typed.frames(nested_frames(typed.primary_type, typed.types, granted.nested))
    # the SDK's digest is what an independent EIP-712 encoder computes (what a verifier asks about)
    signable = encode_typed_data(full_message=data)
    assert typed.digest == keccak(b"\x19" + signable.version + signable.header + signable.body)
    body = encode_typed_data_signature(
        _blank_header(stage), granted.domain_separator, granted.contents_type_hash, frames
    )
    return Seed(what, resign(world, stage, body, stage.account), typed.digest, index)


def _sign_in_seed(world: World, stage: Stage) -> Seed:
    """An EIP-4361 message for the granted website and the account, signed by the key."""
    message = sign_in_message(
        WEBSITE,
        stage.account,
        uri=f"https://{WEBSITE}/login",
        chain_id=world.chain_id,
        nonce="k3y5c0pe",
        issued_at="2026-01-01T00:00:00Z",
    ).encode()
    first = len(WEBSITE + SIGN_IN_LINE)
    body = encode_sign_in_signature(_blank_header(stage), message, first)
    return Seed("sign-in", resign(world, stage, body, stage.account), rebuilt_hash(body) or b"", None)


# --------------------------------------------------------------------------------------------------
# The attacker's tools: reading a (mutated) body as the module would, and signing what it would check
# --------------------------------------------------------------------------------------------------


def _header_size(body: bytes) -> int:
    """Where the contents start after the header ``who | key or id | signatures`` (87, 99 or 164)."""
    who = body[1] if len(body) > 1 else 0
    return {1: 99, 2: 164}.get(who, 87)


def _contents(body: bytes) -> tuple[bytes, bytes, bytes] | None:
    """A typed-data body's (appDomainSeparator, contentsTypeHash, contents hash), read as the module reads them
    (None when it is too short to read)."""
    at = _header_size(body)
    rest = body[at:]
    if len(rest) < 66:
        return None
    n = rest[64]
    if n == 0 or len(rest) < 65 + n:
        return None
    words_at = 65 + n + 32 * (n - 1)
    size = rest[65]
    primary = rest[words_at : words_at + 32 * size]
    if len(primary) != 32 * size:
        return None
    return rest[:32], rest[32:64], keccak(rest[32:64] + primary)


def _message(body: bytes) -> bytes | None:
    """A sign-in body's message (None when too short)."""
    at = _header_size(body)
    return body[at + 2 :] if len(body) >= at + 2 else None


def rebuilt_hash(body: bytes) -> bytes | None:
    """The hash the body's contents hash to, as a verifier would compute it from them."""
    if body[:1] == b"\x01":
        read = _contents(body)
        return None if read is None else keccak(b"\x19\x01" + read[0] + read[2])
    if body[:1] == b"\x02":
        message = _message(body)
        if message is None:
            return None
        return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)
    return None


def resign(world: World, stage: Stage, body: bytes, account: str, key: LocalSigner | None = None) -> bytes:
    """``body`` with the key's signature of what the module will check (ERC-7739's nested hash of its contents, made
    for ``account``), when the body is long enough to hold one."""
    key = key or stage.key
    at = {1: 34, 2: 34}.get(body[1] if len(body) > 1 else 0, 22)
    if len(body) < at + 65:
        return body
    signed: bytes | None = None
    if body[:1] == b"\x01":
        read = _contents(body)
        if read is not None:
            permissions = stage.session.typed_data_permissions
            granted = next(
                (p for p in permissions if p.domain_separator == read[0] and p.contents_type_hash == read[1]),
                permissions[0],
            )
            signed = typed_data_sign_hash(
                read[0],
                granted.contents_name,
                granted.contents_type,
                read[2],
                account=account,
                chain_id=world.chain_id,
                module=world.module,
            )
    elif body[:1] == b"\x02":
        message = _message(body)
        if message is not None:
            signed = personal_sign_hash(
                message, account=account, chain_id=world.chain_id, module=world.module
            )
    if signed is None:
        return body
    return body[:at] + key.sign_hash(signed) + body[at + 65 :]


def _with_key(body: bytes, key: str) -> bytes:
    """``body`` with the header ``who 0 | key`` (the signatures after it kept)."""
    return body[:1] + b"\x00" + bytes.fromhex(key[2:]) + body[22:]


# --------------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------------

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _word_values() -> tuple[int, ...]:
    """Words a field is set to: rules' bounds and past them, dirty narrow types, other addresses, extremes."""
    return (
        0,
        1,
        LIMIT,
        LIMIT + 1,
        EXPIRY,
        EXPIRY + 1,
        int(USDC, 16),
        int(USDC, 16) | 1 << 160,
        int(ROUTER, 16),
        int(ROUTER, 16) | 1 << 255,
        int(ATTACKER, 16),
        LIMIT | 1 << 160,
        EXPIRY | 1 << 48,
        OTHER_LIMIT,
        2**160 - 1,
        2**256 - 1,
    )


WORD_VALUES = _word_values()


@dataclass
class Example:
    """One mutated question: the body, the hash asked, the account asked, who asks, whether to re-sign and for
    which account."""

    body: bytes
    hash: bytes | None
    account: str
    caller: str
    resign_for: str | None
    prefix: bytes


def _separators(world: World, stage: Stage) -> list[bytes]:
    """Domain separators an edit puts in: the other permission's, neighbours of the granted domains, the account's
    own (the module's ERC-7739 domain), a random word."""
    app, chain_id = world.apps[0], world.chain_id
    account_domain = keccak(
        keccak(
            b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
        )
        + keccak(b"keyscope Session")
        + keccak(b"1")
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(stage.account[2:])
        + bytes(12)
        + bytes.fromhex(world.module[2:])
    )
    return [
        *(p.separator for p in stage.grant.permissions),
        _domain_separator("Permit2", None, chain_id + 1, app),
        _domain_separator("Permit2", None, chain_id, world.apps[1]),
        _domain_separator("Permit2", None, chain_id, stage.account),
        _domain_separator("Permit2 ", None, chain_id, app),
        _domain_separator("Test USD", "2", chain_id, app),
        _domain_separator("Test USD", "1", chain_id, world.module),
        account_domain,
        keccak(b"random separator"),
    ]


def _type_hashes() -> list[bytes]:
    """Contents typehashes an edit puts in: the granted ones, the nested struct's, renamed or reordered fields."""
    return [
        PERMIT_SINGLE_TYPEHASH,
        PERMIT_TYPEHASH,
        PERMIT_DETAILS_TYPEHASH,
        keccak(b"PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)"),
        keccak(
            b"PermitSingle(PermitDetails details,uint256 sigDeadline,address spender)"
            b"PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"
        ),
        keccak(
            b"Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline,bytes32 x)"
        ),
        keccak(b"Permit(address owner,address spender,uint256 amount,uint256 nonce,uint256 deadline)"),
    ]


def _flip(draw: Draw, data: bytes, start: int = 0) -> bytes:
    """``data`` with one to three bits flipped at or after ``start``."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3), label="flips")):
        if len(out) <= start:
            break
        at = draw(st.integers(start, len(out) - 1), label="flip at")
        out[at] ^= 1 << draw(st.integers(0, 7), label="bit")
    return bytes(out)


def _edit_words(draw: Draw, body: bytes) -> bytes:
    """A typed-data body with one or two words of its contents set to a drawn value, the nested struct's hash in
    the primary struct recomputed or left stale."""
    at = _header_size(body)
    n = body[at + 64]
    sizes = list(body[at + 65 : at + 65 + n])
    words_at = at + 65 + n + 32 * (n - 1)
    count = sum(sizes)
    out = bytearray(body)
    for _ in range(draw(st.integers(1, 2), label="words")):
        index = draw(st.integers(0, count - 1), label="word")
        value = draw(st.sampled_from(WORD_VALUES), label="value")
        out[words_at + 32 * index : words_at + 32 * (index + 1)] = value.to_bytes(32, "big")
    if n > 1 and draw(st.booleans(), label="nested hash recomputed"):
        nested_type = bytes(out[at + 65 + n : at + 65 + n + 32])
        nested = bytes(out[words_at + 32 * sizes[0] : words_at + 32 * (sizes[0] + sizes[1])])
        out[words_at : words_at + 32] = keccak(nested_type + nested)  # the details word (member 0)
    return bytes(out)


def _edit_frames(draw: Draw, body: bytes) -> bytes:
    """A typed-data body with its frame count, a frame's size or the nested typehash edited."""
    at = _header_size(body)
    n = body[at + 64]
    edit = draw(
        st.sampled_from(("count", "size", "nested typehash", "drop frame", "add frame")), label="frames"
    )
    out = bytearray(body)
    if edit == "count":
        out[at + 64] = draw(st.sampled_from((0, n - 1, n + 1, 9, 255)), label="n") % 256
    elif edit == "size":
        k = draw(st.integers(0, n - 1), label="frame")
        out[at + 65 + k] = draw(st.sampled_from((0, 1, 2, 3, 4, 5, 6, 7, 255)), label="size")
    elif edit == "nested typehash" and n > 1:
        typehash = draw(st.sampled_from((*_type_hashes(), bytes(32))), label="nested typehash")
        out[at + 65 + n : at + 65 + n + 32] = typehash
    elif edit == "drop frame" and n > 1:
        # one frame: the primary struct's words only, the nested typehash and words gone
        primary_size = out[at + 65]
        words_at = at + 65 + n + 32 * (n - 1)
        return (
            bytes(out[: at + 64])
            + bytes((1, primary_size))
            + bytes(out[words_at : words_at + 32 * primary_size])
        )
    else:
        # a frame more: the words of the primary struct again, under their own typehash
        sizes = bytes(out[at + 65 : at + 65 + n])
        words_at = at + 65 + n + 32 * (n - 1)
        primary = bytes(out[words_at : words_at + 32 * sizes[0]])
        type_hash = bytes(out[at + 32 : at + 64])
        return (
            bytes(out[: at + 64])
            + bytes((n + 1,))
            + sizes
            + bytes((sizes[0],))
            + bytes(out[at + 65 + n : words_at])
            + type_hash
            + bytes(out[words_at:])
            + primary
        )
    return bytes(out)


def _edit_sign_in(draw: Draw, world: World, stage: Stage, body: bytes) -> bytes:
    """A sign-in body with its website, address line or first line's length edited."""
    at = _header_size(body)
    length = int.from_bytes(body[at : at + 2], "big")
    message = body[at + 2 :]
    first, rest = message[:length], message[length:]
    edit = draw(
        st.sampled_from(("website", "address line", "first line's length", "line breaks")), label="sign-in"
    )
    others = [s.account for s in world.stages.values() if s.account != stage.account] or [ATTACKER]
    if edit == "website":
        website = draw(
            st.sampled_from(
                (
                    OTHER_WEBSITE,
                    CO_SIGNED_WEBSITE,
                    "evil." + WEBSITE,
                    WEBSITE + ".evil",
                    WEBSITE.upper(),
                    " " + WEBSITE,
                    WEBSITE + ":443",
                    "",
                )
            ),
            label="website",
        )
        first = (website + SIGN_IN_LINE).encode()
    elif edit == "address line":
        address = draw(st.sampled_from([*others, ATTACKER, stage.account.upper(), stage.account.lower()]))
        line = draw(
            st.sampled_from(
                (
                    address + "\n",
                    address[2:] + "\n",
                    address + " \n",
                    address,
                    "0X" + address[2:] + "\n",
                    "\n" + address + "\n",
                )
            ),
            label="line",
        )
        rest = line.encode() + rest[43:]
    elif edit == "first line's length":
        length = draw(st.sampled_from((0, 1, length - 1, length + 1, length + 43, len(message), 0xFFFF)))
        return body[:at] + length.to_bytes(2, "big") + message
    else:
        first = first.replace(b"\n", draw(st.sampled_from((b"\r\n", b"", b"\n\n")), label="break"))
    message = first + rest
    length = draw(st.sampled_from((len(first), len(first) - 1, len(first) + 1)), label="length") % 0x10000
    return body[:at] + length.to_bytes(2, "big") + message


def _edit_lengths(draw: Draw, body: bytes) -> bytes:
    """``body`` with bytes inserted, deleted, appended or cut."""
    edit = draw(st.sampled_from(("insert", "delete", "append", "cut")), label="lengths")
    size = draw(st.sampled_from((1, 2, 4, 31, 32, 65)), label="size")
    if edit == "append":
        return body + draw(st.sampled_from((bytes(size), b"\xff" * size)), label="appended")
    if edit == "cut":
        return body[: max(0, len(body) - size)]
    at = draw(st.integers(0, len(body)), label="at")
    if edit == "insert":
        return body[:at] + bytes(size) + body[at:]
    return body[:at] + body[at + size :]


def _edit_header(draw: Draw, stage: Stage, body: bytes) -> bytes:
    """``body`` with its kind, ``who``, key or session id edited (the contents kept)."""
    contents = body[87:]
    signature = body[22:87]
    edit = draw(st.sampled_from(("kind", "who", "key", "session id")), label="header")
    if edit == "kind":
        return bytes((draw(st.sampled_from((0, 1, 2, 3, 0xFF)), label="kind"),)) + body[1:]
    if edit == "who":
        return body[:1] + bytes((draw(st.sampled_from((1, 2, 3)), label="who"),)) + body[2:]
    if edit == "key":
        key = draw(
            st.sampled_from(
                (
                    stage.other_key.address,
                    ZERO,
                    stage.account,
                    co_signed_space(stage.co_signed_id),
                    co_signed_space(stage.session_id),
                    ATTACKER,
                )
            ),
            label="key",
        )
        return _with_key(body, key)
    session_id = draw(st.sampled_from((stage.co_signed_id, stage.other_id, stage.session_id)), label="id")
    who = draw(st.sampled_from((1, 2)), label="who")
    signatures = signature + (signature if who == 2 else b"")
    return body[:1] + bytes((who,)) + session_id + signatures + contents


def _edit_ecdsa(draw: Draw, world: World, stage: Stage, body: bytes) -> bytes:
    """``body`` (signed) with the key's 65 bytes edited: ``s`` made high, ``v`` changed, zero, or the other key's
    signature of the same hash."""
    signature = body[22:87]
    edit = draw(st.sampled_from(("high s", "v", "zero", "other key", "flip")), label="ecdsa")
    if edit == "high s":
        s = int.from_bytes(signature[32:64], "big")
        v = signature[64]
        new = (
            signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v if v in (27, 28) else v,))
        )
    elif edit == "v":
        new = signature[:64] + bytes((draw(st.sampled_from((0, 1, 27, 28, 29)), label="v"),))
    elif edit == "zero":
        new = bytes(65)
    elif edit == "other key":
        return resign(world, stage, body, stage.account, stage.other_key)
    else:
        new = _flip(draw, signature)
    return body[:22] + new + body[87:]


def mutate(draw: Draw, world: World, stage: Stage, family: str, seed: Seed) -> Example:
    """One mutated question of ``seed`` in ``family``."""
    apps = world.apps
    example = Example(
        seed.body, None, stage.account, draw(st.sampled_from(apps), label="app"), stage.account, stage.prefix
    )
    body = seed.body
    typed = seed.permission is not None
    if family == "flip bits":
        body = _flip(draw, body)
        if draw(st.booleans(), label="signed after"):
            example.resign_for = None
    elif family == "header":
        body = _edit_header(draw, stage, body)
    elif family == "app domain separator" and typed:
        separator = draw(st.sampled_from(_separators(world, stage)), label="separator")
        body = body[:87] + separator + body[119:]
    elif family == "contents typehash" and typed:
        body = body[:119] + draw(st.sampled_from(_type_hashes()), label="typehash") + body[151:]
    elif family == "frames" and typed:
        body = _edit_frames(draw, body)
    elif family == "words" and typed:
        body = _edit_words(draw, body)
    elif family in ("app domain separator", "contents typehash", "frames", "words", "sign-in message"):
        # the sign-in family on a typed seed edits its words; the typed families on a sign-in seed, its message
        body = _edit_words(draw, body) if typed else _edit_sign_in(draw, world, stage, body)
    elif family == "lengths":
        body = _edit_lengths(draw, body)
    elif family == "hash asked":
        example.hash = _edit_hash(draw, world, stage, seed)
    elif family == "ECDSA bytes":
        body = _edit_ecdsa(draw, world, stage, body)
        example.resign_for = None
    elif family == "routing prefix":
        example.prefix = _edit_prefix(draw, world, stage)
        example.resign_for = None
    elif family == "caller":
        example.caller = draw(
            st.sampled_from(
                [
                    ZERO,
                    stage.account,
                    world.module,
                    *([stage.owner_validator] if stage.owner_validator else []),
                ]
            ),
            label="caller",
        )
    elif family == "account":
        others = [s for s in world.stages.values() if s.account != stage.account]
        if bool(others) and draw(
            st.booleans(), label="ask another"
        ):  # made for this account, asked of another
            other = draw(st.sampled_from(others), label="other account")
            example.account = other.account
            example.prefix = other.prefix
        else:  # made for another account (or none), asked of this one
            example.resign_for = draw(
                st.sampled_from([*(s.account for s in others), ATTACKER, ZERO]), label="made for"
            )
    example.body = body
    if example.resign_for is not None:
        example.body = resign(world, stage, body, example.resign_for)
    if example.hash is None:
        keep = draw(st.integers(0, 9), label="keep the seed's hash") == 0
        example.hash = seed.hash if keep else (rebuilt_hash(example.body) or seed.hash)
    return example


def _edit_hash(draw: Draw, world: World, stage: Stage, seed: Seed) -> bytes:
    """A hash asked other than the one the contents hash to: Kernel's wrapping of it, the ERC-7739 hash the key
    signed, the contents hash, another seed's, a random word."""
    other = [s.hash for s in stage.seeds if s.hash != seed.hash]
    read = _contents(seed.body)
    signed = (
        typed_data_sign_hash(
            read[0],
            stage.session.typed_data_permissions[seed.permission or 0].contents_name,
            stage.session.typed_data_permissions[seed.permission or 0].contents_type,
            read[2],
            account=stage.account,
            chain_id=world.chain_id,
            module=world.module,
        )
        if read is not None and seed.permission is not None
        else personal_sign_hash(
            _message(seed.body) or b"", account=stage.account, chain_id=world.chain_id, module=world.module
        )
    )
    return draw(
        st.sampled_from(
            [
                _kernel_wrapped(stage, seed.hash),
                signed,
                read[2] if read is not None else keccak(b"contents"),
                *other,
                keccak(b"random hash"),
            ]
        ),
        label="hash",
    )


def _kernel_wrapped(stage: Stage, inner: bytes) -> bytes:
    """Kernel's wrapping of ``inner`` in the account's own EIP-712 domain, when it has one (a random word if not)."""
    domain = stage.grant.account_domain
    if domain is None:
        return keccak(b"wrapped" + inner)
    return keccak(b"\x19\x01" + domain + keccak(KERNEL_WRAPPER_TYPEHASH + inner))


def account_domain(anvil: AnvilChain, account: str) -> bytes | None:
    """The separator of ``account``'s own EIP-712 domain from its ERC-5267 ``eip712Domain()`` (None without one)."""
    try:
        answer = anvil.call({"to": account, "data": "0x" + keccak(b"eip712Domain()")[:4].hex()})
        fields, name, version, chain_id, contract, salt, _ = abi_decode(
            ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"],
            bytes.fromhex(answer[2:]),
        )
    except (JsonRpcError, ValueError, DecodingError):
        return None
    parts = [
        ("string name", keccak(name.encode())),
        ("string version", keccak(version.encode())),
        ("uint256 chainId", chain_id.to_bytes(32, "big")),
        ("address verifyingContract", bytes(12) + bytes.fromhex(contract[2:])),
        ("bytes32 salt", salt),
    ]
    chosen = [part for bit, part in enumerate(parts) if fields[0] >> bit & 1]
    return keccak(
        keccak(("EIP712Domain(" + ",".join(t for t, _ in chosen) + ")").encode())
        + b"".join(v for _, v in chosen)
    )


def _edit_prefix(draw: Draw, world: World, stage: Stage) -> bytes:
    """Another routing prefix: another validator, the zero address, Kernel's root or another validation type, or the
    account's own prefix with a byte more or less (the module then reads the body shifted)."""
    validators = [ZERO, world.verifier, *([stage.owner_validator] if stage.owner_validator else [])]
    validator = bytes.fromhex(draw(st.sampled_from(validators), label="validator")[2:])
    module = bytes.fromhex(world.module[2:])
    own = stage.prefix
    choices = [
        validator,
        b"\x00" + module,
        b"\x02" + module,
        module[:19],
        b"\x01" + validator,
        b"",
        own + b"\x00",
        own + b"\x01",
        own + b"\x02",
        own[:-1],
    ]
    return draw(st.sampled_from(choices), label="prefix")


# --------------------------------------------------------------------------------------------------
# Asking, and judging
# --------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What came of one question: the outcome, the module's refusal reason, the approval (if any) and the
    oracle's breach."""

    outcome: str
    reason: str = ""
    approval: Approval | None = None
    breach: str | None = None


def _frames_of(trace: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every frame of a call trace."""
    yield trace
    for call in trace.get("calls", []):
        yield from _frames_of(call)


def _now(world: World) -> int:
    """The time of the block a call now runs in (the pending block's, as a transaction sent next)."""
    return int(world.rpc.request("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def ask(world: World, stage: Stage, example: Example, revoked: bool) -> Verdict:
    """Ask the account about the example: through the application (``SignatureRecorder.accept``, a transaction
    when the traced call says it approves) or, for another caller, an ``eth_call`` of ``isValidSignature`` from
    it; judge any approval."""
    signature = example.prefix + example.body
    assert example.hash is not None
    is_valid = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [example.hash, signature])
    through_app = example.caller in world.apps
    if through_app:
        call = {
            "from": world.submitter,
            "to": example.caller,
            "data": "0x"
            + (
                ACCEPT
                + abi_encode(["address", "bytes32", "bytes"], [example.account, example.hash, signature])
            ).hex(),
            "gas": hex(10**7),
        }
    else:
        call = {
            "from": example.caller,
            "to": example.account,
            "data": "0x" + is_valid.hex(),
            "gas": hex(10**7),
        }
    trace = world.rpc.request("debug_traceCall", [call, "latest", {"tracer": "callTracer"}])
    module = world.module.lower()
    reached = [
        f
        for f in _frames_of(trace)
        if f.get("to", "").lower() == module
        and f.get("input", "")[2:10] == IS_VALID_SIGNATURE_WITH_SENDER.hex()
    ]
    reason = ""
    for frame in _frames_of(trace):
        if (
            frame.get("to", "").lower() == world.verifier.lower()
            and frame.get("input", "")[2:10] == REFUSAL.hex()
        ):
            output = bytes.fromhex(frame.get("output", "0x")[2:])
            refused = abi_decode(["bytes"], output)[0] if len(output) >= 64 else b"?"
            reason = world.errors.get(refused[:4], refused[:4].hex()) if refused else "none"
    if through_app:
        approved = "error" not in trace
    else:
        output = bytes.fromhex(trace.get("output", "0x")[2:])
        approved = "error" not in trace and output[:4] == MAGIC
    outcome = OUTCOMES[2] if approved else OUTCOMES[1] if reached else OUTCOMES[0]
    verdict = Verdict(outcome, reason)
    if not approved:
        return verdict
    if through_app:  # the application acts on it: a transaction, and the record it leaves
        tx_hash = world.rpc.request("eth_sendTransaction", [call])
        world.rpc.request("evm_mine")
        receipt = world.rpc.request("eth_getTransactionReceipt", [tx_hash])
        assert receipt["status"] == "0x1", receipt
        logs = [
            log
            for log in receipt["logs"]
            if log["address"].lower() == example.caller.lower() and log["topics"][0] == "0x" + ACCEPTED.hex()
        ]
        assert len(logs) == 1, receipt
        account = to_address("0x" + logs[0]["topics"][1][-40:])
        hash_, recorded, time = abi_decode(
            ["bytes32", "bytes", "uint256"], bytes.fromhex(logs[0]["data"][2:])
        )
        verdict.approval = Approval(account, example.caller, hash_, recorded, time, revoked)
    else:
        verdict.approval = Approval(
            example.account, example.caller, example.hash, signature, _now(world), revoked
        )
    verdict.breach = breach(stage.grant, verdict.approval)
    return verdict


# --------------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(project: Any) -> Iterator[World]:
    """One anvil (no code size limit: Kernel's implementation is over EIP-170) with the EntryPoint v0.7, the module,
    the vendors' accounts' contracts, two applications, and one stage per account kind whose seeds are each
    approved."""
    with anvil_chain(("--disable-code-size-limit",)) as anvil:
        deployer = anvil.accounts[0]
        entry_point = deploy_entry_point(MiningNode(anvil), deployer)  # type: ignore[arg-type]
        factory = anvil.deploy(project.KeyscopeAccountFactory, entry_point, deployer)
        module = anvil.deploy(project.SessionKeyValidator)
        vendors = deploy_accounts(Stack(MiningNode(anvil), Deployer(deployer), entry_point))  # type: ignore[arg-type]
        apps = (
            to_address(anvil.deploy(project.SignatureRecorder).address),
            to_address(anvil.deploy(project.SignatureRecorder).address),
        )
        errors = {
            keccak(f"{e['name']}({','.join(i['type'] for i in e['inputs'])})".encode())[:4]: e["name"]
            for e in (abi.model_dump() for abi in project.SessionKeyValidator.contract_type.abi)
            if e["type"] == "error"
        }
        world = World(
            anvil,
            to_address(module.address),
            to_address(module.signatureVerifier()),
            apps,
            anvil.accounts[1],
            {},
            errors,
        )
        for name in KINDS:
            world.stages[name] = _stage(name, world, project, factory, vendors)
        chain_id = world.chain_id
        for stage in world.stages.values():
            stage.seeds = [
                _typed_seed(
                    world,
                    stage,
                    "permit at its bounds",
                    _permit_single(apps[0], chain_id, LIMIT, EXPIRY, 0),
                    0,
                ),
                _typed_seed(world, stage, "permit inside", _permit_single(apps[0], chain_id, 1, 1, 7), 0),
                _typed_seed(
                    world, stage, "EIP-2612 permit", _permit(apps[0], chain_id, stage.account, LIMIT), 1
                ),
                _sign_in_seed(world, stage),
            ]
        world.snapshot = world.rpc.request("evm_snapshot")
        for stage in world.stages.values():
            for seed in stage.seeds:
                example = Example(seed.body, seed.hash, stage.account, apps[0], None, stage.prefix)
                verdict = ask(world, stage, example, revoked=False)
                assert verdict.outcome == OUTCOMES[2] and verdict.breach is None, (
                    stage.name,
                    seed.what,
                    verdict,
                )
            world.restore()
        yield world


def _revoke(world: World, stage: Stage) -> None:
    """The session revoked by the account's own call."""
    rpc = world.rpc
    rpc.request("anvil_impersonateAccount", [stage.account])
    world.anvil.send(stage.account, world.module, REVOKE_SESSION + stage.session_id)
    rpc.request("anvil_stopImpersonatingAccount", [stage.account])


def fuzz(world: World, stage: Stage, examples: int) -> Counter[tuple[str, str]]:
    """Run ``examples`` mutated questions of ``stage``'s seeds; return the tally of (family, outcome), with
    ``(family, "reached the module")`` and the refusal reasons counted too. A breach fails at once."""
    tally: Counter[tuple[str, str]] = Counter()
    dirty = [False]

    @settings(max_examples=examples, **ON_CHAIN)
    @given(data=st.data())
    @seed(
        None if DEEP else zlib.crc32(stage.name.encode())
    )  # each kind its own examples (the same every ci run)
    def example(data: st.DataObject) -> None:
        dirty[0] = True
        try:
            one(data)
        finally:
            if dirty[0]:
                world.restore()

    def one(data: st.DataObject) -> None:
        prelude = data.draw(st.sampled_from(PRELUDES), label="prelude")
        family = data.draw(st.sampled_from(FAMILIES), label="family")
        seed = data.draw(st.sampled_from(stage.seeds), label="seed")
        if prelude == "the session revoked":
            _revoke(world, stage)
        elif prelude == "the window over":
            world.rpc.request("evm_setNextBlockTimestamp", [hex(stage.session.valid_until + 1)])
            world.rpc.request("evm_mine")
        mutated = mutate(data.draw, world, stage, family, seed)
        verdict = ask(world, stage, mutated, revoked=prelude == "the session revoked")
        dirty[0] = prelude != PRELUDES[0] or verdict.outcome == OUTCOMES[2]
        tally[family, verdict.outcome] += 1
        tally[f"after {prelude}", verdict.outcome] += 1
        tally[family, "reached the module"] += verdict.outcome != OUTCOMES[0]
        if verdict.reason:
            tally["reason", verdict.reason] += 1
        if verdict.breach == WRAPPED:
            tally[WRAPPED, family] += 1
            return
        assert verdict.breach is None, (
            f"{stage.name}: the account approved what the grant forbids after a {family} mutation ({prelude}): "
            f"{verdict.breach}\nhash 0x{(mutated.hash or b'').hex()}, signature 0x{(mutated.prefix + mutated.body).hex()}, "
            f"asked of {mutated.account} by {mutated.caller}"
        )

    example()
    return tally


def _tally_text(tally: Counter[tuple[str, str]]) -> str:
    """The tally as lines: per family, per prelude, the reasons."""
    lines = []
    for family in (*FAMILIES, *(f"after {p}" for p in dict.fromkeys(PRELUDES))):
        counts = ", ".join(f"{tally[family, o]} {o}" for o in OUTCOMES)
        lines.append(f"  {family}: {counts}")
    wrapped = sorted((n, f) for (k, f), n in tally.items() if k == WRAPPED)
    if wrapped:
        lines.append(f"  {WRAPPED} (attack 150): " + ", ".join(f"{f} {n}" for n, f in wrapped))
    reasons = sorted(((n, r) for (k, r), n in tally.items() if k == "reason"), reverse=True)
    lines.append("  reasons: " + ", ".join(f"{r} {n}" for n, r in reasons))
    return "\n".join(lines)


@pytest.mark.parametrize("name", KINDS)
def test_mutated_session_signatures_approve_nothing_the_grant_forbids(world: World, name: str) -> None:
    """Mutated, re-signed session signatures of one account kind: whatever the account approves to a verifier
    acting on it is what the grant allows (the oracle), and every mutation family reaches the module's check."""
    tally = fuzz(world, world.stages[name], EXAMPLES)
    print(f"\n{name}:\n{_tally_text(tally)}")
    for family in FAMILIES:
        assert sum(tally[family, o] for o in OUTCOMES) > 0, (name, family, dict(tally))
        assert tally[family, "reached the module"] > 0, (name, family, dict(tally))
    assert sum(tally[family, OUTCOMES[2]] for family in FAMILIES) > 0, (name, dict(tally))


def test_the_oracle_names_each_approval_the_grant_forbids(world: World) -> None:
    """The oracle, fed approvals the grant forbids (as if an account had approved them), names each; the seeds'
    approvals, and Kernel's wrapping of a granted hash in the account's own domain, it lets pass."""
    stage = world.stages["keyscope"]
    grant, app, chain_id = stage.grant, world.apps[0], world.chain_id
    inside = grant.valid_after + 1

    def verdict(seed: Seed, **change: Any) -> str | None:
        fields: dict[str, Any] = {
            "account": stage.account,
            "caller": app,
            "hash": seed.hash,
            "signature": stage.prefix + seed.body,
            "time": inside,
            "revoked": False,
        }
        fields.update(change)
        return breach(grant, Approval(**fields))

    permit, _, permit_2612, sign_in = stage.seeds
    for each in stage.seeds:
        assert verdict(each) is None, each.what
    assert verdict(permit, hash=_kernel_wrapped(stage, permit.hash)) == WRAPPED
    above = _typed_seed(world, stage, "above", _permit_single(app, chain_id, LIMIT + 1, EXPIRY, 0), 0)
    late = _typed_seed(world, stage, "late", _permit_single(app, chain_id, LIMIT, EXPIRY + 1, 0), 0)
    too_much = _typed_seed(world, stage, "2612 above", _permit(app, chain_id, stage.account, LIMIT + 1), 1)
    other_website = _sign_in_seed(world, stage)
    other_website.body = other_website.body.replace(WEBSITE.encode(), OTHER_WEBSITE.encode(), 1)
    other_website.hash = rebuilt_hash(other_website.body) or b""
    other_address = _sign_in_seed(world, stage)
    other_address.body = other_address.body.replace(
        stage.account[2:].encode(), world.stages["nexus"].account[2:].encode()
    )
    other_address.hash = rebuilt_hash(other_address.body) or b""
    dirty = bytearray(permit.body)
    dirty[-32 * 3] = 1  # the high byte of details.amount's word (the details frame's second word)
    details_word = 87 + 65 + 2 + 32  # the primary struct's first word: the details' hash, kept true
    dirty[details_word : details_word + 32] = keccak(PERMIT_DETAILS_TYPEHASH + bytes(dirty[-128:]))
    forbidden = {
        "a rule broken": verdict(above),
        "another rule broken": verdict(late),
        "the EIP-2612 rule broken": verdict(too_much),
        "a dirty word": verdict(
            permit, signature=stage.prefix + bytes(dirty), hash=rebuilt_hash(bytes(dirty))
        ),
        "another account": verdict(permit, account=world.stages["nexus"].account),
        "the account as caller": verdict(permit, caller=stage.account),
        "the module as caller": verdict(permit, caller=world.module),
        "after the window": verdict(permit, time=grant.valid_until + 1),
        "before the window": verdict(permit, time=grant.valid_after - 1),
        "revoked": verdict(permit, revoked=True),
        "another key": verdict(
            permit, signature=stage.prefix + _with_key(permit.body, stage.other_key.address)
        ),
        "another validator": verdict(permit, signature=bytes(20) + permit.body),
        "a hash not the contents'": verdict(permit, hash=permit_2612.hash),
        "another website": verdict(other_website),
        "another address": verdict(other_address),
        "a sign-in hash not the message's": verdict(sign_in, hash=permit.hash),
    }
    unnamed = [what for what, reason in forbidden.items() if reason is None or reason == WRAPPED]
    assert not unnamed, forbidden
    assert "no uint160" in str(forbidden["a dirty word"]), forbidden
