"""Sessions that sign messages as the account (ERC-1271 through ERC-7739), and co-signed sessions, through the real
EntryPoint and the real module. The tests run on a fresh anvil of the file's own (``on_anvil``: the EntryPoint, the
module, the account factory, the accounts, ``SignedPermits``, a ``RecordingTarget`` and the other contracts a test
deploys are ape's build of their sources, on a node that runs them natively; a test that changes what the file's
fixtures hold on chain undoes it after it), but for the co-signed session limited per day, whose operations claim
a time, on ape's chain.

The verifier is ``SignedPermits`` (contracts/test): a Permit2-like ``permit(owner, PermitSingle, signature)`` and an
EIP-2612 ``permit``, both checking signatures with OpenZeppelin's SignatureChecker, as applications do. Each attack
builds the signature the SDK would refuse to make (``forge``: the SDK's encoding without its local check) and
shows the module refusing it, with the reason (``requireValidSignature``), and the verifier refusing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope import Network, Policy, SessionGrant, SessionKey, arg, function_call
from keyscope.chain import RpcChain
from keyscope.co_signer import CoSignerRefusedError, local_co_signer
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy, remote_co_signer
from keyscope.erc1271 import Signer, co_sign_digest, encode_sign_in_signature, encode_typed_data_signature
from keyscope.errors import BadInputError, LimitExceededError
from keyscope.execution import encode_execute
from keyscope.hexutil import to_bytes
from keyscope.message_signing import SignatureRefusedError, check_sign_in, nested_frames
from keyscope.revert import decode_revert
from keyscope.rpc import JsonRpcClient, JsonRpcError
from keyscope.session import (
    MODE_AT,
    MODE_SESSION,
    SIGN_IN_SUFFIX,
    Condition,
    Rule,
    Session,
    encode_at_signature,
    encode_enable_signature,
    encode_session_signature,
)
from keyscope.session_account import SessionAccount
from keyscope.signing import LocalSigner
from keyscope.typed_data import Frames, TypedData, personal_sign_hash, typed_data_sign_hash
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import AnvilClock, anvil_sessions
from support.permit_types import EXPIRY, LIMIT, PERMIT_SINGLE_TYPES, PERMIT_TYPES, ROUTER, USDC
from support.sdk import local_network
from support.signatures import forge_typed_data, sign_raw_words
from support.strict_reverts import revert_data


def permit2_domain(permits: Any, chain_id: int) -> dict[str, Any]:
    return {"name": "Permit2", "chainId": chain_id, "verifyingContract": permits.address}


def token_domain(permits: Any, chain_id: int) -> dict[str, Any]:
    return {"name": "Test USD", "version": "1", "chainId": chain_id, "verifyingContract": permits.address}


def permit_single(
    permits: Any, chain_id: int, amount: int, *, nonce: int = 0, types: Any = None
) -> dict[str, Any]:
    return {
        "types": types or PERMIT_SINGLE_TYPES,
        "primaryType": "PermitSingle",
        "domain": permit2_domain(permits, chain_id),
        "message": {
            "details": {"token": USDC, "amount": amount, "expiration": EXPIRY, "nonce": nonce},
            "spender": ROUTER,
            "sigDeadline": EXPIRY,
        },
    }


def permit_2612(permits: Any, chain_id: int, owner: str, value: int) -> dict[str, Any]:
    return {
        "types": PERMIT_TYPES,
        "primaryType": "Permit",
        "domain": token_domain(permits, chain_id),
        "message": {
            "owner": owner,
            "spender": ROUTER,
            "value": value,
            "nonce": int(permits.nonces(owner)),
            "deadline": EXPIRY,
        },
    }


def signing_permissions(permits: Any, chain_id: int) -> tuple[Any, Any]:
    permit2 = Policy.typed_data(
        permit2_domain(permits, chain_id),
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [
            arg("details", "token") == USDC,
            arg("details", "amount") <= LIMIT,
            arg("details", "expiration") <= EXPIRY,
            arg("spender") == ROUTER,
        ],
        label="PermitSingle on Permit2",
    )
    eip2612 = Policy.typed_data(
        token_domain(permits, chain_id),
        PERMIT_TYPES,
        "Permit",
        [arg("spender") == ROUTER, arg("value") <= LIMIT],
    )
    return permit2, eip2612


class Signing:
    """Two accounts of one owner, the same session key granted the same signing permissions on both (as a dapp
    using one key for many users would be), on chain."""

    def __init__(
        self,
        sessions: Any,
        net: Any,
        permits: Any,
        *,
        co_signer: LocalSigner | None = None,
        valid_after: int = 0,
        valid_until: int = 0,
        typed_data: tuple[Any, ...] | None = None,
    ) -> None:
        self.sessions = sessions
        self.net = net
        self.permits = permits
        self.chain_id = sessions.h.chain_id
        self.owner = LocalSigner.generate()
        self.key = SessionKey.generate()
        self.co_signer = co_signer
        permit2, eip2612 = signing_permissions(permits, self.chain_id)
        self.session = Session(
            session_key=self.key.address,
            typed_data_permissions=typed_data if typed_data is not None else (permit2, eip2612),
            sign_in=("app.example.com",),
            co_signer=co_signer.address if co_signer else None,
            valid_after=valid_after,
            valid_until=valid_until,
        )
        self.accounts = [sessions.account(self.owner, salt) for salt in (1, 2)]
        self.grants = [self.grant(account) for account in self.accounts]

    def grant(self, account: str) -> SessionGrant:
        session_id = self.sessions.grant_onchain(account, self.owner, self.session)
        module = self.sessions.module
        return SessionGrant(
            session=self.session,
            account=account,
            module=module.address,
            chain_id=self.chain_id,
            entry_point=self.sessions.h.entry_point.address,
            epoch=self.sessions.epoch(account),
            session_id=session_id,
            how="onchain",
        )

    def sdk(self, index: int = 0, **options: Any) -> SessionAccount:
        return self.net.session(self.grants[index], self.key, **options)

    def forge(
        self,
        data: dict[str, Any],
        *,
        index: int = 0,
        permission: int = 0,
        account: str | None = None,
        chain_id: int | None = None,
        co_signer: LocalSigner | None = None,
    ) -> bytes:
        """The SDK's typed-data signature with no local check (see support.signatures)."""
        return forge_typed_data(
            self.sdk(index),
            data,
            permission=permission,
            account=account,
            chain_id=chain_id,
            co_signer=co_signer,
        )

    def header(self, signed: bytes, grant: SessionGrant, co_signer: LocalSigner | None) -> bytes:
        signature = self.key.sign_hash(signed)
        if self.co_signer is None:
            return Signer(self.key.address, grant.session_id).header(signature, None)
        co = None
        if co_signer is not None:
            co = co_signer.sign_hash(
                co_sign_digest(grant.session_id, signed, chain_id=self.chain_id, module=grant.module)
            )
        return Signer(self.key.address, grant.session_id, True, co is not None).header(signature, co)


def refusal(module: Any, account: str, hash_: bytes, signature: bytes, sender: str) -> str | None:
    """The module's reason for refusing ``signature`` (None: valid), and its ERC-1271 answer agrees."""
    answer = bytes(module.isValidSignatureWithSender(sender, hash_, signature[20:], sender=account))
    try:
        module.requireValidSignature(account, sender, hash_, signature[20:])
    except (ContractLogicError, JsonRpcError) as error:
        assert answer == bytes.fromhex("ffffffff")
        return _error_name(module, error)
    assert answer == bytes.fromhex("1626ba7e")
    return None


def _error_name(module: Any, error: ContractLogicError | JsonRpcError) -> str:
    """The module's custom error a revert carries (ape leaves errors raised from assembly undecoded; anvil's
    ``eth_call`` gives the revert data)."""
    names = {
        keccak(text=f"{e.name}({','.join(i.type for i in e.inputs)})")[:4].hex(): e.name
        for e in module.contract_type.abi
        if e.type == "error"
    }
    if isinstance(error, JsonRpcError):
        if not isinstance(error.data, str):
            raise error
        data = bytes.fromhex(error.data.removeprefix("0x"))
        return names.get(data[:4].hex(), "0x" + data.hex())
    if type(error).__name__ != "ContractLogicError":
        return type(error).__name__
    data = revert_data(error) or b""
    return names.get(data[:4].hex(), repr(error.revert_message))


class AnvilModule(AnvilContract):
    """The module on the file's anvil, with ape's contract type (its errors' names), as ape's contract has it."""

    def __init__(self, deployed: AnvilContract, contract_type: Any) -> None:
        super().__init__(deployed.chain, deployed.address, contract_type)
        self.contract_type = contract_type


@dataclass
class OnAnvil:
    """``Signing`` on the file's anvil: its chain, the module, a second module (``other_module``),
    ``SignedPermits`` and a ``RecordingTarget``."""

    chain: AnvilChain
    signing: Signing
    module: AnvilModule
    other_module: AnvilContract
    permits: AnvilContract
    target: AnvilContract
    project: Any

    @property
    def deployer(self) -> str:
        return self.chain.accounts[0]

    @property
    def sessions(self) -> Any:
        """The session harness on the node (the EntryPoint, the factory, the module, the bundler)."""
        return self.signing.sessions

    @property
    def fixtures(self) -> tuple[Any, Signing, AnvilContract, AnvilModule]:
        """What the tests on ape's chain name ``sessions``, ``signing``, ``permits`` and ``module``, on the node."""
        return self.sessions, self.signing, self.permits, self.module

    @property
    def clock(self) -> AnvilClock:
        """The node's clock as a test asks ape's chain: ``blocks.head.timestamp``, ``pending_timestamp``, ``mine``."""
        return AnvilClock(self.chain)

    def session_module(self) -> AnvilModule:
        """A new deployment of the session module (ape's build), as ape's contract has it."""
        deployed = self.chain.deploy(self.project.SessionKeyValidator, sender=self.deployer)
        return AnvilModule(deployed, self.project.SessionKeyValidator.contract_type)

    def signature_verifier(self, module: AnvilModule) -> AnvilContract:
        """The ``SessionSignatureVerifier`` ``module`` delegates its signature checks to."""
        contract_type = self.project.SessionSignatureVerifier.contract_type
        return AnvilContract(self.chain, module.signatureVerifier(), contract_type)

    def account(self, address: str) -> AnvilContract:
        """The keyscope account at ``address`` (ape's build of ``KeyscopeAccount``)."""
        return AnvilContract(self.chain, address, self.project.KeyscopeAccount.contract_type)


@pytest.fixture(scope="module")
def on_anvil(project) -> Iterator[OnAnvil]:
    """A fresh anvil of the file's own with the EntryPoint, the factory, the module, a second module,
    ``SignedPermits`` and a ``RecordingTarget``, and ``Signing``'s two accounts granted there, the SDK's network asking the node."""
    with anvil_chain() as chain:
        deployer = chain.accounts[0]
        sessions = anvil_sessions(chain, project)
        sessions.module = AnvilModule(sessions.module, project.SessionKeyValidator.contract_type)
        other_module = chain.deploy(project.SessionKeyValidator, sender=deployer)
        permits = chain.deploy(project.SignedPermits, sender=deployer)
        target = chain.deploy(project.RecordingTarget, sender=deployer)
        h = sessions.h
        net = Network(
            chain=RpcChain(chain.url),
            bundler=h.bundler,
            module=sessions.module.address,
            entry_point=h.entry_point.address,
            factory=h.factory.address,
        )
        signing = Signing(sessions, net, permits)
        yield OnAnvil(chain, signing, sessions.module, other_module, permits, target, project)


@pytest.fixture
def anvil_state_undone(on_anvil: OnAnvil) -> Iterator[None]:
    """The file's anvil back as it was before the test once it ends (``evm_snapshot``, ``evm_revert``), as ape's
    chain is after each test: for a test that changes what a module-scoped fixture holds on chain."""
    snapshot = on_anvil.chain.rpc.request("evm_snapshot")
    yield
    assert on_anvil.chain.rpc.request("evm_revert", [snapshot])


# --------------------------------------------------------------------------------------------------
# Within the grant: accepted by the standard check
# --------------------------------------------------------------------------------------------------


def test_a_permit_within_its_rules_is_accepted_by_signature_checker(on_anvil, anvil_state_undone):
    signing, permits, deployer = on_anvil.signing, on_anvil.permits, on_anvil.deployer
    sdk = signing.sdk()
    account = signing.accounts[0]
    data = permit_single(
        permits, signing.chain_id, LIMIT, nonce=int(permits.permit2Nonces(account, USDC, ROUTER))
    )
    signature = sdk.sign_typed_data(data)
    assert signature[:20] == to_bytes(signing.sessions.module.address)  # keyscope's account routes by address
    digest = TypedData(data).digest
    assert (
        bytes(
            permits.permitSingleDigest(
                ((USDC, LIMIT, EXPIRY, data["message"]["details"]["nonce"]), ROUTER, EXPIRY)
            )
        )
        == digest
    )
    assert permits.isValidSignatureNow(account, digest, signature)
    details = data["message"]["details"]
    permits.permit.transact(
        account, ((USDC, LIMIT, EXPIRY, details["nonce"]), ROUTER, EXPIRY), signature, sender=deployer
    )
    assert permits.allowance(account, USDC, ROUTER) == LIMIT


def test_an_eip2612_permit_within_its_rule_is_accepted(on_anvil, anvil_state_undone):
    signing, permits, deployer = on_anvil.signing, on_anvil.permits, on_anvil.deployer
    account = signing.accounts[0]
    data = permit_2612(permits, signing.chain_id, account, 5 * 10**6)
    signature = signing.sdk().sign_typed_data(data)
    permits.permit.transact(account, ROUTER, 5 * 10**6, EXPIRY, signature, sender=deployer)
    assert permits.allowance(account, permits.address, ROUTER) == 5 * 10**6


def test_sign_in_for_a_granted_website(on_anvil):
    signing, permits = on_anvil.signing, on_anvil.permits
    sdk = signing.sdk()
    message, signature = sdk.sign_in(
        "app.example.com", uri="https://app.example.com/login", statement="Hello"
    )
    assert message.splitlines()[1] == signing.accounts[0]
    from keyscope.typed_data import eip191_hash

    assert permits.isValidSignatureNow(signing.accounts[0], eip191_hash(message.encode()), signature)
    with pytest.raises(SignatureRefusedError, match="may not sign in") as info:
        sdk.sign_in("evil.example.com", uri="https://evil.example.com")
    assert info.value.reason == "SignInNotGranted"


# --------------------------------------------------------------------------------------------------
# Attacks on signatures
# --------------------------------------------------------------------------------------------------


def test_a_permit_above_its_rule_is_refused_locally_and_by_the_module(on_anvil):
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    data = permit_single(permits, signing.chain_id, LIMIT + 1)
    with pytest.raises(SignatureRefusedError, match=r"details\.amount must be at most 100000000\)") as info:
        signing.sdk().sign_typed_data(data)
    assert (info.value.reason, info.value.permission_index, info.value.rule_index) == (
        "SignedRuleViolated",
        0,
        1,
    )
    forged = signing.forge(data)
    digest = TypedData(data).digest
    assert not permits.isValidSignatureNow(account, digest, forged)
    assert refusal(module, account, digest, forged, permits.address) == "SignedRuleViolated"


OTHER = "0x" + "c1" * 20
VERIFIERS = (
    "the permits contract",
    "the account",
    "the session module",
    "another module of the account",
    "no sender (an eth_call without from)",
)
"""Who asks the account about a signature (ERC-1271's caller, the module's ``sender``): the permits contract and
the zero address may get it; the account and its modules may not."""
ALLOWED_VERIFIERS = (VERIFIERS[0], VERIFIERS[4])


def verifier_address(on_anvil: OnAnvil, verifier: str) -> str:
    """The address of ``verifier`` for the first account; ``another module`` (a second deployment of the session
    module) is installed on it when first asked."""
    from conftest import KIND

    signing, module, other_module = on_anvil.signing, on_anvil.module, on_anvil.other_module
    account = signing.accounts[0]
    if verifier == VERIFIERS[3]:
        if not on_anvil.account(account).isModuleInstalled(1, other_module.address, b""):
            install = KIND.install_validator_call(account, other_module.address)
            signing.sessions.h.owner_execute(account, signing.owner, install)
        return other_module.address
    return {
        VERIFIERS[0]: signing.permits.address,
        VERIFIERS[1]: account,
        VERIFIERS[2]: module.address,
        VERIFIERS[4]: "0x" + "00" * 20,
    }[verifier]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    verifier=st.sampled_from(VERIFIERS),
    token=st.sampled_from([USDC, OTHER]),
    amount=st.one_of(
        st.sampled_from([0, LIMIT - 1, LIMIT, LIMIT + 1, 2**160 - 1]), st.integers(0, 2**160 - 1)
    ),
    expiration=st.one_of(
        st.sampled_from([0, EXPIRY - 1, EXPIRY, EXPIRY + 1, 2**48 - 1]), st.integers(0, 2**48 - 1)
    ),
    spender=st.sampled_from([ROUTER, OTHER]),
    nonce=st.integers(0, 2**48 - 1),
)
def test_the_sdk_and_the_module_judge_signed_permits_alike(
    on_anvil, verifier, token, amount, expiration, spender, nonce
):
    """Differential: Permit2 permits around every rule of the grant (token, amount, expiration, spender), judged
    by the SDK before it signs and by the module on the signature the SDK would have made: the same verdict, for
    the same reason, and the standard SignatureChecker agrees with the module. Asked by the account, the module or
    another module of the account (installed after the grant), the module refuses whatever the permit says; asked
    with no sender (the zero address, an eth_call without from), it judges as for the permits contract."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    sender = verifier_address(on_anvil, verifier)
    data = permit_single(permits, signing.chain_id, amount, nonce=nonce)
    data["message"]["details"].update(token=token, expiration=expiration)
    data["message"]["spender"] = spender
    try:
        signing.sdk().sign_typed_data(data)
        local = None
    except SignatureRefusedError as error:
        local = error.reason
    forged = signing.forge(data)
    digest = TypedData(data).digest
    forbidden = verifier not in ALLOWED_VERIFIERS
    assert refusal(module, account, digest, forged, sender) == (
        "SignatureSenderForbidden" if forbidden else local
    )
    assert permits.isValidSignatureNow(account, digest, forged) == (local is None)


def test_words_below_the_rule_do_not_pass_for_a_permit_above_it(on_anvil):
    """The module rebuilds the hash from the words it judged: below-the-rule words do not hash to an above-the-rule
    permit's digest."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    forged = signing.forge(permit_single(permits, signing.chain_id, LIMIT))
    above = TypedData(permit_single(permits, signing.chain_id, 10**12)).digest
    assert not permits.isValidSignatureNow(account, above, forged)
    assert refusal(module, account, above, forged, permits.address) == "ContentsMismatch"


def test_a_type_not_granted_is_refused(on_anvil):
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    order = {
        "types": {"Order": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}]},
        "primaryType": "Order",
        "domain": permit2_domain(permits, signing.chain_id),
        "message": {"token": USDC, "amount": 1},
    }
    with pytest.raises(SignatureRefusedError, match="may not sign Order") as info:
        signing.sdk().sign_typed_data(order)
    assert info.value.reason == "SigningNotGranted"
    # a leaked key's signature of it, claiming a granted permission, names a type the verifier did not hash
    typed = TypedData(order)
    granted = signing.session.typed_data_permissions[0]
    words = typed.frames(nested_frames("Order", typed.types, ()))
    signed = typed_data_sign_hash(
        granted.domain_separator,
        "Order",
        typed.contents_type,
        typed.struct_hash,
        account=account,
        chain_id=signing.chain_id,
        module=module.address,
    )
    header = Signer(signing.key.address, signing.grants[0].session_id).header(
        signing.key.sign_hash(signed), None
    )
    for type_hash, reason in (
        (typed.type_hash, "SigningNotGranted"),
        (granted.contents_type_hash, "MalformedSignature"),
    ):
        forged = to_bytes(module.address) + encode_typed_data_signature(
            header, granted.domain_separator, type_hash, words
        )
        assert not permits.isValidSignatureNow(account, typed.digest, forged)
        assert refusal(module, account, typed.digest, forged, permits.address) == reason


@pytest.mark.parametrize("change", ["reordered", "renamed"])
def test_typed_data_with_fields_reordered_or_renamed_is_refused(on_anvil, change):
    """A verifier whose PermitDetails reads the fields in another order (or by other names) hashes another type: the
    SDK finds no permission for it, and a signature made under the granted type does not match its digest."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    details = list(PERMIT_SINGLE_TYPES["PermitDetails"])
    if change == "reordered":  # amount first: a rule on word 1 (amount) would read the token
        details[0], details[1] = details[1], details[0]
    else:
        details[1] = {"name": "value", "type": "uint160"}
    types = {**PERMIT_SINGLE_TYPES, "PermitDetails": details}
    data = permit_single(permits, signing.chain_id, LIMIT, types=types)
    if change == "renamed":
        message = data["message"]["details"]
        message["value"] = message.pop("amount")
    with pytest.raises(SignatureRefusedError) as info:
        signing.sdk().sign_typed_data(data)
    assert info.value.reason == "SigningNotGranted"
    forged = signing.forge(data)
    digest = TypedData(data).digest
    assert not permits.isValidSignatureNow(account, digest, forged)
    assert refusal(module, account, digest, forged, permits.address) in (
        "ContentsMismatch",
        "NestedStructMismatch",
    )


def test_a_signature_for_one_account_is_refused_for_another(on_anvil):
    """The same key holds the same permission on both accounts: without the ERC-7739 wrapping (the account in the
    signed hash) account 0's permit signature would be valid for account 1."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    data = permit_single(permits, signing.chain_id, LIMIT)
    signature = signing.sdk(0).sign_typed_data(data)
    digest = TypedData(data).digest
    assert permits.isValidSignatureNow(signing.accounts[0], digest, signature)
    assert not permits.isValidSignatureNow(signing.accounts[1], digest, signature)
    assert (
        refusal(module, signing.accounts[1], digest, signature, permits.address) == "InvalidSessionSignature"
    )


def test_a_signature_for_another_chain_is_refused(on_anvil):
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    data = permit_single(permits, signing.chain_id, LIMIT)
    forged = signing.forge(data, chain_id=signing.chain_id + 1)
    digest = TypedData(data).digest
    assert not permits.isValidSignatureNow(signing.accounts[0], digest, forged)
    assert refusal(module, signing.accounts[0], digest, forged, permits.address) == "InvalidSessionSignature"


def test_a_signature_made_through_one_module_is_refused_through_another(on_anvil):
    """The account installs a second deployment of the session module (a new release beside the old one, another
    dapp's) and the same key holds the same signing permissions through both. The ERC-7739 wrapping names the module
    (the salt of the account's domain as the module describes it), so a permit or a sign-in signed through one
    deployment, its routing prefix swapped for the other's, is refused there: ending the session on one deployment
    is not undone by carrying its signatures to the other, nor a deployment's revocation read by the other."""
    from conftest import SessionHarness

    sessions, signing, permits, module = on_anvil.fixtures
    second = on_anvil.session_module()
    account = sessions.account(signing.owner, salt=43)
    sdk = signing.net.session(signing.grant(account), signing.key)
    SessionHarness(sessions.h, second).install(account, signing.owner)
    SessionHarness(sessions.h, second).grant_onchain(account, signing.owner, signing.session)
    data = permit_single(permits, signing.chain_id, LIMIT)
    digest = TypedData(data).digest
    through_first = sdk.sign_typed_data(data)
    through_second = forge_typed_data(sdk, data, module=second.address)
    assert through_first[:20] == to_bytes(module.address)
    assert through_second[:20] == to_bytes(second.address)
    for signature, judge in ((through_first, module), (through_second, second)):
        assert permits.isValidSignatureNow(account, digest, signature)
        assert refusal(judge, account, digest, signature, permits.address) is None
    message, sign_in = sdk.sign_in("app.example.com", uri="https://app.example.com/login")
    from keyscope.typed_data import eip191_hash

    sign_in_hash = eip191_hash(message.encode())
    assert permits.isValidSignatureNow(account, sign_in_hash, sign_in)
    moved = (
        (digest, to_bytes(second.address) + through_first[20:], second),
        (digest, to_bytes(module.address) + through_second[20:], module),
        (sign_in_hash, to_bytes(second.address) + sign_in[20:], second),
    )
    for hash_, signature, judge in moved:
        assert not permits.isValidSignatureNow(account, hash_, signature)
        assert refusal(judge, account, hash_, signature, permits.address) == "InvalidSessionSignature"


def test_a_sign_in_for_another_account_is_refused(on_anvil):
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    sdk = signing.sdk(0)
    message, _ = sdk.sign_in("app.example.com", uri="https://app.example.com")
    other = message.replace(signing.accounts[0], signing.accounts[1])
    with pytest.raises(SignatureRefusedError) as info:
        sdk.sign_in_message(other)
    assert info.value.reason == "SignInAccountMismatch"
    assert _module_sign_in_verdict(signing, module, permits, other.encode()) == "SignInAccountMismatch"


def _module_sign_in_verdict(signing: Signing, module: Any, permits: Any, raw: bytes) -> str | None:
    """The module's verdict on the session key's sign-in signature of ``raw`` (None: valid), made without the
    SDK's check."""
    signed = personal_sign_hash(
        raw, account=signing.accounts[0], chain_id=signing.chain_id, module=module.address
    )
    header = Signer(signing.key.address, signing.grants[0].session_id).header(
        signing.key.sign_hash(signed), None
    )
    first = raw.index(b"\n") + 1
    forged = to_bytes(module.address) + encode_sign_in_signature(header, raw, first)
    from keyscope.typed_data import eip191_hash

    return refusal(module, signing.accounts[0], eip191_hash(raw), forged, permits.address)


_ADDRESS_LINE_SPELLINGS = {
    "checksummed": lambda a: a,
    "lower case": lambda a: "0x" + a[2:].lower(),
    "upper-case digits": lambda a: "0x" + a[2:].upper(),
    "upper-case 0X": lambda a: "0X" + a[2:].lower(),
    "all upper case": lambda a: a.upper(),
    "no 0x": lambda a: a[2:] + "00",
    "0x and 39 digits": lambda a: a[:-1],
    "a space before the break": lambda a: a + " ",
}


@pytest.mark.parametrize("spelling", sorted(_ADDRESS_LINE_SPELLINGS))
def test_the_sign_in_address_line_is_read_as_the_module_reads_it(on_anvil, spelling):
    """The second line of a sign-in message names the account: the module takes "0x" (lower case x) and 40 hex
    digits in any case, then a line break. The SDK's check refuses exactly what the module refuses (it took "0X"
    for "0x" and signed a message whose signature the module refused)."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    sdk = signing.sdk(0)
    message, _ = sdk.sign_in("app.example.com", uri="https://app.example.com")
    account = signing.accounts[0]
    spelled = _ADDRESS_LINE_SPELLINGS[spelling](account)
    lines = message.split("\n")
    assert lines[1] == account
    raw = "\n".join([lines[0], spelled, *lines[2:]]).encode()
    module_says = _module_sign_in_verdict(signing, module, permits, raw)
    assert module_says in (None, "SignInAccountMismatch"), module_says
    try:
        check_sign_in(signing.session, raw, account=account, session_id="0x01")
    except SignatureRefusedError as error:
        sdk_says: str | None = error.reason
    else:
        sdk_says = None
    assert sdk_says == module_says, (spelling, spelled)


def test_the_account_and_the_module_cannot_be_the_verifier(on_anvil):
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    data = permit_single(permits, signing.chain_id, LIMIT)
    signature = signing.sdk().sign_typed_data(data)
    digest = TypedData(data).digest
    for sender in (signing.accounts[0], module.address):
        assert refusal(module, signing.accounts[0], digest, signature, sender) == "SignatureSenderForbidden"


def test_revoking_the_session_voids_its_signatures(on_anvil):
    sessions, signing, permits, module = on_anvil.fixtures
    fresh = Signing(sessions, signing.net, permits)
    data = permit_single(permits, fresh.chain_id, LIMIT)
    signature = fresh.sdk().sign_typed_data(data)
    digest = TypedData(data).digest
    assert permits.isValidSignatureNow(fresh.accounts[0], digest, signature)
    sessions.revoke(fresh.accounts[0], fresh.owner, fresh.grants[0].session_id)
    assert not permits.isValidSignatureNow(fresh.accounts[0], digest, signature)
    assert refusal(module, fresh.accounts[0], digest, signature, permits.address) == "SigningNotGranted"


def test_a_session_signs_only_inside_its_window(on_anvil):
    """The window binds signatures as it binds operations: the module reads the chain's time whenever a signature
    is verified, so a session not yet valid signs nothing, and a signature made inside the window is refused once
    the window has closed (a leaked key of an expired session signs no permit)."""
    sessions, signing, permits, module = on_anvil.fixtures
    chain = on_anvil.clock
    now = chain.blocks.head.timestamp
    timed = Signing(sessions, signing.net, permits, valid_after=now + 3600, valid_until=now + 7200)
    account = timed.accounts[0]
    data = permit_single(permits, timed.chain_id, LIMIT)
    digest = TypedData(data).digest
    early = timed.forge(data)
    assert refusal(module, account, digest, early, permits.address) == "SignatureOutsideWindow"
    assert not permits.isValidSignatureNow(account, digest, early)
    chain.pending_timestamp = now + 3700
    chain.mine()
    signature = timed.sdk().sign_typed_data(data)
    assert refusal(module, account, digest, signature, permits.address) is None
    assert permits.isValidSignatureNow(account, digest, signature)
    chain.pending_timestamp = now + 7300
    chain.mine()
    assert refusal(module, account, digest, signature, permits.address) == "SignatureOutsideWindow"
    assert not permits.isValidSignatureNow(account, digest, signature)


def test_a_session_signs_from_the_first_second_of_its_window_to_the_last(on_anvil):
    """validAfter and validUntil are both inside the window, for signatures as for operations: a signature is
    refused one second before validAfter and one second after validUntil, and accepted at each of them (a window
    that let one more second through would let an expired session's leaked key sign a permit)."""
    sessions, signing, permits, module = on_anvil.fixtures
    chain = on_anvil.clock
    now = chain.blocks.head.timestamp
    valid_after, valid_until = now + 3600, now + 7200
    timed = Signing(sessions, signing.net, permits, valid_after=valid_after, valid_until=valid_until)
    account = timed.accounts[0]
    data = permit_single(permits, timed.chain_id, LIMIT)
    digest = TypedData(data).digest
    signature = timed.forge(data)
    for at, expected in (
        (valid_after - 1, "SignatureOutsideWindow"),
        (valid_after, None),
        (valid_until, None),
        (valid_until + 1, "SignatureOutsideWindow"),
    ):
        chain.pending_timestamp = at
        chain.mine()
        assert chain.blocks.head.timestamp == at
        assert refusal(module, account, digest, signature, permits.address) == expected, at
        assert permits.isValidSignatureNow(account, digest, signature) == (expected is None), at


def test_strict_signed_rules_refuse_their_bound_and_pass_the_next_value(on_anvil):
    """A typed-data rule `amount > low` refuses `low` and passes `low + 1`; `amount < high` passes `high - 1` and
    refuses `high` (a strict bound judged as inclusive would let a leaked key sign one unit past the grant)."""
    sessions, signing, permits, module = on_anvil.fixtures
    low, high = 10, LIMIT
    strict = Policy.typed_data(
        permit2_domain(permits, signing.chain_id),
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") > low, arg("details", "amount") < high],
    )
    bounded = Signing(sessions, signing.net, permits, typed_data=(strict,))
    account = bounded.accounts[0]
    for amount, expected in (
        (low, "SignedRuleViolated"),
        (low + 1, None),
        (high - 1, None),
        (high, "SignedRuleViolated"),
    ):
        data = permit_single(permits, bounded.chain_id, amount)
        digest = TypedData(data).digest
        signature = bounded.forge(data)
        assert refusal(module, account, digest, signature, permits.address) == expected, amount
        assert permits.isValidSignatureNow(account, digest, signature) == (expected is None), amount


PERMIT2_FIELDS = (
    "spender",
    "sigDeadline",
    "details.token",
    "details.amount",
    "details.expiration",
    "details.nonce",
)
"""The fields of Permit2's PermitSingle, each a word of its flattened contents: the primary struct's `details`
(a hash), `spender` and `sigDeadline` (words 0-2), then the details' token, amount, expiration and nonce (3-6)."""


def _violation(verifier: Any, module: Any, account: str, digest: bytes, signature: bytes, sender: str) -> Any:
    """The module's refusal of ``signature`` decoded, as ``verifier`` (the module's ``SessionSignatureVerifier``)
    gives it: (error name, its arguments); (None, ()) when it is valid."""
    from eth_abi import decode as abi_decode

    refused = bytes(verifier.refusal(account, sender, digest, signature[20:]))
    if not refused:
        return None, ()
    for error in module.contract_type.abi:
        if error.type == "error":
            types = [i.canonical_type for i in error.inputs]
            if keccak(text=f"{error.name}({','.join(types)})")[:4] == refused[:4]:
                return error.name, abi_decode(types, refused[4:])
    raise AssertionError(f"unknown refusal 0x{refused.hex()}")


def test_each_permit2_field_rule_refuses_a_permit_that_breaks_it_alone(on_anvil):
    """A grant with a rule on every field of Permit2's PermitSingle: the spender, the signature's deadline, and the
    details' token, amount, expiration and nonce. A permit within every rule is accepted; a permit that breaks one
    rule alone is refused by the module, with the rule that reads that field and the field's own value, and the
    verifier refuses it. A module that skipped one field's rule, or read it from another field's word, would let a
    leaked key sign a permit past that field's bound with every other field in order."""
    sessions, signing, permits, module = on_anvil.fixtures
    verifier = on_anvil.signature_verifier(module)
    nonce_limit = 7
    bound = {
        "spender": arg("spender") == ROUTER,
        "sigDeadline": arg("sigDeadline") <= EXPIRY,
        "details.token": arg("details", "token") == USDC,
        "details.amount": arg("details", "amount") <= LIMIT,
        "details.expiration": arg("details", "expiration") <= EXPIRY - 1,
        "details.nonce": arg("details", "nonce") <= nonce_limit,
    }
    every = Policy.typed_data(
        permit2_domain(permits, signing.chain_id), PERMIT_SINGLE_TYPES, "PermitSingle", list(bound.values())
    )
    word = {"spender": 1, "sigDeadline": 2, "details.token": 3, "details.amount": 4, "details.expiration": 5,
            "details.nonce": 6}  # fmt: skip
    assert {rule.offset // 32 for rule in every.rules} == set(word.values())
    granted = Signing(sessions, signing.net, permits, typed_data=(every,))
    account = granted.accounts[0]
    other_token, other_spender = "0x" + "c2" * 20, "0x" + "c3" * 20
    past = {
        "spender": other_spender,
        "sigDeadline": EXPIRY + 1,
        "details.token": other_token,
        "details.amount": LIMIT + 1,
        "details.expiration": EXPIRY,
        "details.nonce": nonce_limit + 1,
    }
    for broken in (None, *PERMIT2_FIELDS):
        data = permit_single(permits, granted.chain_id, LIMIT, nonce=nonce_limit)
        data["message"]["details"]["expiration"] = EXPIRY - 1
        if broken is not None:
            *parent, name = broken.split(".")
            (data["message"]["details"] if parent else data["message"])[name] = past[broken]
        digest = TypedData(data).digest
        signature = granted.forge(data)
        reason, args = _violation(verifier, module, account, digest, signature, permits.address)
        assert permits.isValidSignatureNow(account, digest, signature) == (broken is None), broken
        if broken is None:
            assert reason is None
            continue
        value = past[broken]
        expected = int(value, 16) if isinstance(value, str) else value
        assert reason == "SignedRuleViolated", broken
        permission_index, rule_index, actual = args
        assert (permission_index, int.from_bytes(actual, "big")) == (0, expected), broken
        assert every.rules[rule_index].offset == 32 * word[broken], broken


def test_a_signature_the_account_refuses_is_never_returned(on_anvil):
    """A session object that saw its session enabled keeps signing after the owner revokes it elsewhere (another
    worker, the owner's wallet): the rules it checks locally still pass. The account itself is asked, as the typed
    data's verifier asks it, before a signature is returned: it refuses, so nothing is signed, with the reason; a
    sign-in likewise. Without the question the SDK returned a signature every verifier refuses."""
    sessions, signing, permits = on_anvil.sessions, on_anvil.signing, on_anvil.permits
    fresh = Signing(sessions, signing.net, permits)
    session = fresh.sdk()
    data = permit_single(permits, fresh.chain_id, LIMIT)
    assert permits.isValidSignatureNow(
        fresh.accounts[0], TypedData(data).digest, session.sign_typed_data(data)
    )
    assert session.sign_in("app.example.com", uri="https://app.example.com")[1]
    sessions.revoke(fresh.accounts[0], fresh.owner, fresh.grants[0].session_id)
    for sign in (
        lambda: session.sign_typed_data(data),
        lambda: session.sign_in("app.example.com", uri="https://app.example.com"),
    ):
        with pytest.raises(SignatureRefusedError, match="every verifier would refuse it") as refused:
            sign()
        assert refused.value.reason == "AccountRefused" and "is revoked on chain" in str(refused.value)
        assert refused.value.session_id == "0x" + fresh.grants[0].session_id.hex()
        # no Python bytes literal where a value starts (an address ending in b before "'s" is none)
        assert "0xffffffff" in str(refused.value) and not re.search(
            r"(?<![^\s(\[{,=`])b['\"]", str(refused.value)
        )


# --------------------------------------------------------------------------------------------------
# Dirty words: a verifier that hashes the words raw and acts on them cleaned to their types
# --------------------------------------------------------------------------------------------------

ORDER_TYPES = {
    "Order": [
        {"name": "buyer", "type": "address"},
        {"name": "minPrice", "type": "uint64"},
        {"name": "maxLoss", "type": "int64"},
    ]
}
BANNED = "0x" + "ba" * 20
"""The buyer the session may not sign orders for."""
CLEAN_ORDER = (OTHER, 150, -5)
"""An order within the grant's rules: buyer != BANNED, minPrice >= 100, maxLoss <= 10."""


class RawOrders:
    """A fresh account whose session may sign ``RawWordOrders``' orders within three rules, one per kind of narrow
    type (an address under ``!=``, a uint64 under ``>=``, an int64 under ``<=``)."""

    def __init__(self, sessions: Any, net: Any, orders: Any) -> None:
        self.orders = orders
        self.owner = LocalSigner.generate()
        self.key = SessionKey.generate()
        chain_id = sessions.h.chain_id
        policy = Policy.typed_data(
            {"name": "Raw Orders", "chainId": chain_id, "verifyingContract": orders.address},
            ORDER_TYPES,
            "Order",
            [arg("buyer") != BANNED, arg("minPrice") >= 100, arg("maxLoss") <= 10],
        )
        self.session = Session(session_key=self.key.address, typed_data_permissions=(policy,))
        self.account = sessions.account(self.owner, 12)
        session_id = sessions.grant_onchain(self.account, self.owner, self.session)
        self.grant = SessionGrant(
            session=self.session,
            account=self.account,
            module=sessions.module.address,
            chain_id=chain_id,
            entry_point=sessions.h.entry_point.address,
            epoch=sessions.epoch(self.account),
            session_id=session_id,
            how="onchain",
        )
        self.sdk = net.session(self.grant, self.key)

    def data(self, buyer: Any, min_price: Any, max_loss: Any) -> dict[str, Any]:
        return {
            "types": ORDER_TYPES,
            "primaryType": "Order",
            "domain": {
                "name": "Raw Orders",
                "chainId": self.grant.chain_id,
                "verifyingContract": self.orders.address,
            },
            "message": {"buyer": buyer, "minPrice": min_price, "maxLoss": max_loss},
        }

    def sign_words(self, words: tuple[bytes, ...]) -> bytes:
        """The leaked key's signature of an order given as its raw words, routed for keyscope's account."""
        return sign_raw_words(self.grant, self.key, words)


@pytest.fixture(scope="module")
def raw_orders(on_anvil) -> RawOrders:
    """``RawWordOrders`` and its account on the file's anvil."""
    deployed = on_anvil.chain.deploy(on_anvil.project.RawWordOrders, sender=on_anvil.deployer)
    orders = AnvilModule(deployed, on_anvil.project.RawWordOrders.contract_type)
    return RawOrders(on_anvil.sessions, on_anvil.signing.net, orders)


def word_of(value: int) -> bytes:
    return (value % 2**256).to_bytes(32, "big")


@pytest.mark.parametrize(
    ("rule", "dirty", "cleaned", "sdk_says"),
    [
        (0, int(BANNED, 16) | 1 << 160, BANNED, "not a valid address"),  # buyer != BANNED: masked to BANNED
        (1, 2**64 + 50, 50, "out of range for uint64"),  # minPrice >= 100: truncated to 50
        (2, -(2**64) + 1000, 1000, "out of range for int64"),  # maxLoss <= 10: negative, 1000 sign-extended
    ],
    ids=["address", "uint64", "int64"],
)
def test_a_dirty_word_cannot_sign_a_value_outside_the_rule(
    raw_orders, on_anvil, anvil_state_undone, rule, dirty, cleaned, sdk_says
):
    """A verifier that hashes the typed data's words raw (here ``RawWordOrders``; hand-written assembly and ABI
    coder v1 code do the same) and then acts on each field cleaned to its declared type. The module hashes the words
    it judged, so a dirty word's signature matches the verifier's digest; judged raw, the dirty word meets the rule
    (a high bit above a uint64 makes it >= 100, above an address makes it != BANNED, a negative int256 is <= 10)
    while the verifier acts on a value that breaks it. Under an ordering or ``!=`` rule the module refuses a word
    that is not its field type's canonical encoding (``SignedNonCanonical``): without that check the verifier fills
    the order it cleaned. The SDK refuses first: the value does not fit its type, and the cleaned value breaks the
    rule."""
    orders, account = raw_orders.orders, raw_orders.account
    module, deployer = on_anvil.module, on_anvil.deployer
    clean = list(CLEAN_ORDER)
    sdk_signature = raw_orders.sdk.sign_typed_data(raw_orders.data(*clean))
    clean_words = tuple(word_of(int(v, 16) if isinstance(v, str) else v) for v in clean)
    orders.fill.transact(
        account, clean_words, sdk_signature, sender=deployer
    )  # the verifier takes the session's signature
    filled = tuple(orders.filled(account))
    assert filled == (to_checksum_address(OTHER), 150, -5)

    # the value the verifier would act on, sent clean: a broken rule, for the SDK and the module
    broken = list(clean)
    broken[rule] = cleaned
    with pytest.raises(SignatureRefusedError) as local:
        raw_orders.sdk.sign_typed_data(raw_orders.data(*broken))
    assert (local.value.reason, local.value.rule_index) == ("SignedRuleViolated", rule)
    broken_words = tuple(word_of(int(v, 16) if isinstance(v, str) else v) for v in broken)
    assert (
        refusal(
            module, account, orders.digest(broken_words), raw_orders.sign_words(broken_words), orders.address
        )
        == "SignedRuleViolated"
    )

    # the same value in a dirty word: the SDK will not encode it, and the module refuses its signature
    dirty_values = list(clean)
    dirty_values[rule] = hex(dirty) if rule == 0 else dirty
    with pytest.raises(BadInputError, match=sdk_says):
        raw_orders.sdk.sign_typed_data(raw_orders.data(*dirty_values))
    words = list(clean_words)
    words[rule] = word_of(dirty)
    words_ = tuple(words)
    forged = raw_orders.sign_words(words_)
    try:  # the node's answer to the call tells a revert's reason; a fill it would take is sent
        orders.fill(account, words_, forged, sender=deployer)
    except JsonRpcError as error:
        assert _error_name(orders, error) == "InvalidSignature"
    else:
        orders.fill.transact(account, words_, forged, sender=deployer)
    acted = tuple(orders.filled(account))
    assert acted[rule] == filled[rule], (
        f"the verifier acted on {ORDER_TYPES['Order'][rule]['name']} = {acted[rule]}, outside rule {rule}, on the "
        "session's signature of a dirty word"
    )
    assert refusal(module, account, orders.digest(words_), forged, orders.address) == "SignedNonCanonical"


# --------------------------------------------------------------------------------------------------
# Co-signed sessions
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def co_signed(on_anvil) -> Signing:
    """A co-signed session allowed to call the recording target and to sign permits, on the file's anvil."""
    return co_signed_on(on_anvil.sessions, on_anvil.signing, on_anvil.permits, on_anvil.target, salt=7)


def co_signed_on(sessions, signing, permits, target, *, salt: int, sign_in: tuple[str, ...] = ()) -> Signing:
    """A new owner's account at ``salt``, funded, granted a co-signed session (a new co-signer, ``fresh.co_signer``)
    allowed to call the recording target with ``amount <= 100``, to sign permits and to sign in to ``sign_in``."""
    co_signer = LocalSigner.generate()
    fresh = Signing.__new__(Signing)
    fresh.sessions, fresh.net, fresh.permits = sessions, signing.net, permits
    fresh.chain_id = signing.chain_id
    fresh.owner = LocalSigner.generate()
    fresh.key = SessionKey.generate()
    fresh.co_signer = co_signer
    permit2, _ = signing_permissions(permits, fresh.chain_id)
    fresh.session = Session(
        session_key=fresh.key.address,
        permissions=(Policy.call(target, "other(uint256 amount)", rules=[arg("amount") <= 100]),),
        typed_data_permissions=(permit2,),
        sign_in=sign_in,
        co_signer=co_signer.address,
    )
    fresh.accounts = [sessions.account(fresh.owner, salt)]
    sessions.h.fund(fresh.accounts[0])
    fresh.grants = [fresh.grant(fresh.accounts[0])]
    return fresh


def record(target: Any, value: int) -> Any:
    return function_call(target, "other(uint256)", value)


@pytest.fixture(scope="module")
def co_signed_daily(sessions, chain, bundler, module, entry_point, factory, target) -> Signing:
    """A co-signed session whose calls are limited per day: its operations claim a time (AT) around SESSION."""
    fresh = Signing.__new__(Signing)
    fresh.sessions, fresh.permits = sessions, None
    fresh.net = local_network(chain, bundler, module, entry_point, factory)
    fresh.chain_id = sessions.h.chain_id
    fresh.owner = LocalSigner.generate()
    fresh.key = SessionKey.generate()
    fresh.co_signer = LocalSigner.generate()
    fresh.session = Session(
        session_key=fresh.key.address,
        permissions=(Policy.call(target, "other(uint256 amount)", rate="2/day"),),
        co_signer=fresh.co_signer.address,
    )
    fresh.accounts = [sessions.account(fresh.owner, 8)]
    sessions.h.fund(fresh.accounts[0])
    fresh.grants = [fresh.grant(fresh.accounts[0])]
    return fresh


def test_a_co_signed_session_counts_its_limits_with_at_around_session(co_signed_daily, target):
    """AT nests around SESSION: 0x03 | time (6) | 0x04 | id (32) | key's (65) | co-signer's (65). The limit is
    counted in the session's space, and the module refuses the third call of the day even with both signatures,
    and any call with the key's alone behind AT."""
    limited = co_signed_daily
    sdk = limited.sdk(co_signer=local_co_signer(limited.co_signer))
    for value in (1, 2):
        pending = sdk.send_calls(record(target, value))
        signature = pending.op.signature
        assert signature[0] == MODE_AT and signature[7] == MODE_SESSION
        assert len(signature) == 7 + 1 + 32 + 65 + 65
        assert pending.wait().success
    with pytest.raises(LimitExceededError):
        sdk.send_calls(record(target, 3))  # the SDK refuses first
    both = co_signed_op(limited, target, 3, "both")
    claimed = int.from_bytes(signature[1:7], "big")
    refused = limited.sessions.h.rejected(
        both.replace(signature=encode_at_signature(claimed, both.signature))
    )
    assert "LimitExceeded" in str(refused) or "AA23" in str(refused)
    key_only = co_signed_op(limited, target, 3, "key only")
    limited.sessions.h.rejected(key_only.replace(signature=encode_at_signature(claimed, key_only.signature)))


def test_a_co_signed_operation_lands_with_both_signatures(co_signed, on_anvil):
    target = on_anvil.target
    sdk = co_signed.sdk(co_signer=local_co_signer(co_signed.co_signer))
    pending = sdk.send_calls(record(target, 7))
    assert len(pending.op.signature) == 1 + 32 + 65 + 65
    assert pending.wait().success


def co_signed_op(co_signed: Signing, target: Any, value: int, mode: str) -> Any:
    """An operation of the co-signed session signed in ``mode``: both, key only (SESSION mode or USE), or with a
    co-signature of another operation, or the two signatures swapped."""
    sessions, grant = co_signed.sessions, co_signed.grants[0]
    from conftest import KIND

    h = sessions.h
    op = h.op(grant.account, encode_execute(record(target, value)), key=KIND.nonce_key(grant.module, 0))
    user_op_hash = h.hash(op)
    key_signature = co_signed.key.sign_hash(user_op_hash)

    def co_sign(digest: bytes) -> bytes:
        return co_signed.co_signer.sign_hash(
            co_sign_digest(grant.session_id, digest, chain_id=h.chain_id, module=grant.module)
        )

    if mode == "use":
        return op.replace(signature=key_signature)
    if mode == "key only":
        return op.replace(signature=encode_session_signature(grant.session_id, key_signature))
    if mode == "replayed co-signature":
        other = h.hash(op.replace(nonce=op.nonce + 1))
        return op.replace(signature=encode_session_signature(grant.session_id, key_signature, co_sign(other)))
    if mode == "swapped":
        return op.replace(
            signature=encode_session_signature(grant.session_id, co_sign(user_op_hash), key_signature)
        )
    if mode == "co-signer signs the userOpHash":  # the co-signer's key signing what the session key signs
        return op.replace(
            signature=encode_session_signature(
                grant.session_id, key_signature, co_signed.co_signer.sign_hash(user_op_hash)
            )
        )
    assert mode == "both"
    return op.replace(
        signature=encode_session_signature(grant.session_id, key_signature, co_sign(user_op_hash))
    )


@pytest.mark.parametrize(
    "mode", ["use", "key only", "replayed co-signature", "swapped", "co-signer signs the userOpHash"]
)
def test_a_co_signed_operation_is_refused_without_its_co_signature(co_signed, mode, on_anvil):
    target = on_anvil.target
    error = co_signed.sessions.h.rejected(co_signed_op(co_signed, target, 5, mode))
    assert "AA24" in str(error)


def test_a_co_signed_session_signs_messages_only_with_its_co_signer(co_signed, on_anvil):
    permits, module = on_anvil.permits, on_anvil.module
    account = co_signed.accounts[0]
    data = permit_single(permits, co_signed.chain_id, LIMIT)
    digest = TypedData(data).digest
    signature = co_signed.sdk(co_signer=local_co_signer(co_signed.co_signer)).sign_typed_data(data)
    assert permits.isValidSignatureNow(account, digest, signature)
    alone = co_signed.forge(data)  # who 0x01: the key's signature only
    assert refusal(module, account, digest, alone, permits.address) == "MalformedSignature"
    as_plain_key = (
        to_bytes(module.address) + b"\x01\x00" + to_bytes(co_signed.key.address) + alone[20 + 2 + 32 :]
    )
    assert refusal(module, account, digest, as_plain_key, permits.address) == "SigningNotGranted"
    stranger = co_signed.forge(data, co_signer=LocalSigner.generate())
    assert refusal(module, account, digest, stranger, permits.address) == "InvalidCoSignature"


def test_a_co_signer_policy_refuses_clearly(co_signed, on_anvil):
    target = on_anvil.target

    def no_large_values(request: Any) -> str | None:
        return (
            "values above 10 need a review"
            if request.call_data and b"\x00" * 31 + b"\x32" in request.call_data
            else None
        )

    sdk = co_signed.sdk(co_signer=local_co_signer(co_signed.co_signer, no_large_values))
    with pytest.raises(CoSignerRefusedError, match="need a review"):
        sdk.send_calls(record(target, 50))


@pytest.mark.usefixtures(
    "anvil_state_undone"
)  # the rotation is undone for the tests of ``co_signed`` after it
def test_a_rotated_out_co_signer_no_longer_counts(co_signed, on_anvil):
    sessions, target, permits, module = on_anvil.sessions, on_anvil.target, on_anvil.permits, on_anvil.module
    h, grant = sessions.h, co_signed.grants[0]
    old = co_signed.co_signer
    new = LocalSigner.generate()
    pending_op = co_signed_op(co_signed, target, 9, "both")  # co-signed by the old co-signer, not yet sent
    data = module.rotateCoSigner.encode_input(grant.session_id, new.address)
    from keyscope.execution import Call

    h.owner_execute(grant.account, co_signed.owner, Call.of(module.address, 0, data))
    assert "AA24" in str(h.rejected(pending_op))
    co_signed.co_signer = new
    try:
        assert sessions.run(co_signed_op(co_signed, target, 9, "both")).success
        message = permit_single(permits, co_signed.chain_id, LIMIT)
        stale = co_signed.forge(message, co_signer=old)
        assert (
            refusal(module, grant.account, TypedData(message).digest, stale, permits.address)
            == "InvalidCoSignature"
        )
    finally:
        co_signed.co_signer = old


def test_a_rotated_out_co_signer_is_not_brought_back_by_the_grant_that_named_it(on_anvil):
    """The owner granted a co-signed session off-chain, naming co-signer X in the grant it signed; the session's
    first operation (ENABLE) enabled it. X leaks with the session key, and the owner rotates the co-signer to Y.
    The grant the owner signed still names X, and ENABLE data of a session already enabled is taken without a
    new owner signature (a retried first operation), so whoever holds the key, X and the grant sends ENABLE again,
    the key's signature and X's co-signature after it. The module reads the co-signer from the record the
    rotation wrote, never from the session the operation carries, and enabling an active session writes nothing:
    the operation is AA24 and the record stays Y; with Y's co-signature the same ENABLE data lands."""
    from keyscope.execution import Call

    sessions, target, module = on_anvil.sessions, on_anvil.target, on_anvil.module
    h = sessions.h
    owner, key = LocalSigner.generate(), LocalSigner.generate()
    leaked, rotated_in = LocalSigner.generate(), LocalSigner.generate()
    account = sessions.account(owner, 3)
    h.fund(account)
    session = Session(
        session_key=key.address,
        permissions=(Policy.call(target, "other(uint256 amount)", rules=[arg("amount") <= 100]),),
        co_signer=leaked.address,
    )
    owner_signature = sessions.owner_signature(account, owner, session)
    session_id = session.session_id(account, sessions.epoch(account))

    def enabling(value: int, co_signer: LocalSigner) -> Any:
        op = sessions.enable_op(account, key, session, owner_signature, record(target, value))
        digest = h.hash(op)
        co_signature = co_signer.sign_hash(
            co_sign_digest(session_id, digest, chain_id=h.chain_id, module=module.address)
        )
        return op.replace(
            signature=encode_enable_signature(session, owner_signature, key.sign_hash(digest) + co_signature)
        )

    sessions.run(enabling(1, leaked))  # the first operation enables the session with X as its co-signer
    assert module.coSignerOf(account, session_id) == (True, leaked.address)
    rotate = module.rotateCoSigner.encode_input(session_id, rotated_in.address)
    h.owner_execute(account, owner, Call.of(module.address, 0, rotate))

    calls = target.calls()
    assert h.rejected(enabling(2, leaked)).reason == "AA24"
    assert module.coSignerOf(account, session_id) == (True, rotated_in.address)
    assert target.calls() == calls
    sessions.run(enabling(3, rotated_in))
    assert target.calls() == calls + 1


def test_a_co_signer_shared_by_two_keys_sessions_lends_neither_key_the_other_s_session(on_anvil):
    """A co-signer service that co-signs for several sessions (a dapp's one co-signer for its users' sessions) signs
    `CoSign(sessionId, userOpHash)` for whichever session the request names, within its own policy (here: this
    account, calls to the target). The account holds two co-signed sessions with that co-signer: the leaked key's
    (`amount <= 100`) and another key's (`amount <= 10**6`). The leaked key sends `other(5000)` in the SESSION mode
    naming the other key's session, its own signature of the operation and the service's co-signature for that
    session: the module checks the key's signature against the key the named session's record holds, so it is AA24
    and nothing runs. Under its own session the same call breaks its rule (AA23), and `other(50)` lands."""
    from conftest import KIND

    sessions, target, module = on_anvil.sessions, on_anvil.target, on_anvil.module
    h = sessions.h
    owner, co_signer = LocalSigner.generate(), LocalSigner.generate()
    leaked, other_key = LocalSigner.generate(), LocalSigner.generate()
    account = sessions.account(owner, 5)
    h.fund(account)

    def co_signed_session(key: LocalSigner, cap: int) -> bytes:
        session = Session(
            session_key=key.address,
            permissions=(Policy.call(target, "other(uint256 amount)", rules=[arg("amount") <= cap]),),
            co_signer=co_signer.address,
        )
        return sessions.grant_onchain(account, owner, session)

    own_id, other_id = co_signed_session(leaked, 100), co_signed_session(other_key, 10**6)
    service = CoSignerService(
        co_signer,
        chain_id=h.chain_id,
        module=module.address,
        entry_point=h.entry_point.address,
        policy=CoSignPolicy(accounts=frozenset({account}), targets=frozenset({target.address})),
    )

    def naming(session_id: bytes, amount: int) -> Any:
        """The leaked key's operation in the SESSION mode naming ``session_id``, co-signed by the service for it."""
        op = h.op(account, encode_execute(record(target, amount)), key=KIND.nonce_key(module.address, 0))
        answer = service.handle(
            "keyscope_coSignUserOperation", [account, "0x" + session_id.hex(), op.to_rpc()]
        )
        co_signature = to_bytes(answer["signature"])
        return op.replace(
            signature=encode_session_signature(session_id, leaked.sign_hash(h.hash(op)), co_signature)
        )

    calls = target.calls()
    assert h.rejected(naming(other_id, 5000)).reason == "AA24"
    refused = str(h.rejected(naming(own_id, 5000)))
    assert "AA23" in refused and "RuleViolated" in refused
    assert target.calls() == calls
    sessions.run(naming(own_id, 50))
    assert target.calls() == calls + 1


def test_the_sdk_co_signs_as_the_module_expects_or_refuses_before_sending(on_anvil):
    """The module checks a co-signed session's operations and messages against the co-signer it holds: the grant's,
    until the owner rotates or removes it. Sent without the co-signature, or with one by a rotated-out co-signer, an
    operation fails at the bundler as a bare signature error (AA24), and verifiers refuse such a message signature;
    once the owner removed the co-signer, one carrying a co-signature fails the same way. The SDK reads the
    co-signer the module holds (with an operation's nonce, with a message's other questions): it refuses the first
    two before anything is sent or returned, naming the co-signer expected, and signs the third alone."""
    from keyscope.errors import CoSignerMismatchError
    from keyscope.execution import Call
    from keyscope.hexutil import ZERO_ADDRESS

    sessions, signing, permits, module = on_anvil.fixtures
    target = on_anvil.target
    fresh = co_signed_on(sessions, signing, permits, target, salt=31)
    h, grant = sessions.h, fresh.grants[0]
    old = fresh.co_signer
    message = permit_single(permits, fresh.chain_id, LIMIT)
    digest = TypedData(message).digest

    def accepted(signature: bytes) -> bool:
        return bool(permits.isValidSignatureNow(grant.account, digest, signature))

    def rotate(co_signer: str) -> None:
        data = module.rotateCoSigner.encode_input(grant.session_id, co_signer)
        h.owner_execute(grant.account, fresh.owner, Call.of(module.address, 0, data))

    with pytest.raises(
        CoSignerMismatchError, match=f"co-signed: .* its co-signer {old.address} .*AA24"
    ) as info:
        fresh.sdk().send_calls(record(target, 1))
    assert (info.value.expected, info.value.given) == (old.address, None)
    with pytest.raises(
        CoSignerMismatchError, match=f"its messages only with the signature of its co-signer {old.address}"
    ):
        fresh.sdk().sign_typed_data(message)
    new = LocalSigner.generate()
    rotate(new.address)
    with pytest.raises(
        CoSignerMismatchError, match=f"is by {old.address}, but .* co-signer {new.address}"
    ) as info:
        fresh.sdk(co_signer=local_co_signer(old)).send_calls(record(target, 2))
    assert (info.value.expected, info.value.given) == (new.address, old.address)
    with pytest.raises(CoSignerMismatchError, match=f"is by {old.address}, but .*messages .*{new.address}"):
        fresh.sdk(co_signer=local_co_signer(old)).sign_typed_data(message)
    assert accepted(fresh.sdk(co_signer=local_co_signer(new)).sign_typed_data(message))
    assert fresh.sdk(co_signer=local_co_signer(new)).send_calls(record(target, 3)).wait().success
    rotate(ZERO_ADDRESS)  # removed: the module takes the session key's signature alone
    pending = fresh.sdk(co_signer=local_co_signer(new)).send_calls(record(target, 4))
    assert len(pending.op.signature) == 1 + 32 + 65 and pending.wait().success
    assert fresh.sdk().send_calls(record(target, 5)).wait().success
    assert accepted(fresh.sdk(co_signer=local_co_signer(new)).sign_typed_data(message))
    assert accepted(fresh.sdk().sign_typed_data(message))


def test_an_off_chain_co_signed_grant_needs_its_co_signer_from_the_first_operation(on_anvil):
    """An off-chain grant with a co-signer: its first operation enables it, and the module then checks the grant's
    co-signer's signature at once (AA24 without it). The SDK knows it from the grant alone."""
    signing, sessions, target = on_anvil.signing, on_anvil.sessions, on_anvil.target
    from keyscope.errors import CoSignerMismatchError

    owner = signing.net.owner(LocalSigner.generate())
    sessions.h.fund(owner.account)
    key, co_signer = SessionKey.generate(), LocalSigner.generate()
    grant = owner.grant(key, [Policy.call(target, "other(uint256 amount)")], co_signer=co_signer.address)
    with pytest.raises(CoSignerMismatchError, match=f"its co-signer {co_signer.address}"):
        signing.net.session(grant, key).send_calls(record(target, 1))
    with_co_signer = signing.net.session(grant, key, co_signer=local_co_signer(co_signer))
    assert with_co_signer.send_calls(record(target, 1)).wait().success


def test_the_module_refuses_a_co_signed_session_s_first_operation_without_its_co_signature(on_anvil, owner):
    """The test above shows the SDK refusing it; this is the module's own word, for an operation made without the
    SDK: a co-signed session's first operation (ENABLE) with the key's signature alone, or with a co-signature by
    another key, is AA24 and the whole bundle reverts (the session is not enabled, its call not run); with both
    signatures it lands."""
    sessions, target = on_anvil.sessions, on_anvil.target
    from keyscope.session import Permission

    account = sessions.account(owner)
    key, co_signer, stranger = LocalSigner.generate(), LocalSigner.generate(), LocalSigner.generate()
    session = Session(
        session_key=key.address,
        permissions=(Permission(target=target.address, selector=keccak(b"other(uint256)")[:4]),),
        co_signer=co_signer.address,
    )
    owner_signature = sessions.owner_signature(account, owner, session)
    session_id = session.session_id(account, sessions.epoch(account))
    calls_before = target.calls()

    def enabling(*co_signers: LocalSigner) -> Any:
        op = sessions.enable_op(account, key, session, owner_signature, record(target, 5))
        digest = sessions.h.hash(op)
        signatures = key.sign_hash(digest) + b"".join(
            signer.sign_hash(
                co_sign_digest(
                    session_id, digest, chain_id=sessions.h.chain_id, module=sessions.module.address
                )
            )
            for signer in co_signers
        )
        return op.replace(signature=encode_enable_signature(session, owner_signature, signatures))

    for alone_or_wrong in (enabling(), enabling(stranger)):
        assert sessions.h.rejected(alone_or_wrong).reason == "AA24"
        assert not sessions.module.isSessionActive(account, session_id) and target.calls() == calls_before
    sessions.run(enabling(co_signer))
    assert sessions.module.isSessionActive(account, session_id) and target.calls() == calls_before + 1


def test_the_owner_is_refused_a_co_signer_rotation_the_module_would_refuse(on_anvil):
    """The module refuses to rotate the co-signer of a session it holds no co-signer for (granted without one, or an
    off-chain grant whose first operation has not enabled it yet: NotCoSigned), of a session no longer active
    (SessionNotActive), and to the session key itself (InvalidCoSigner): the owner's operation would be sent, and its
    call would revert in execution, its gas paid for nothing. The SDK refuses each before anything is signed, saying why and what to do."""
    signing, sessions, target, module = on_anvil.signing, on_anvil.sessions, on_anvil.target, on_anvil.module
    owner = signing.net.owner(LocalSigner.generate())
    sessions.h.fund(owner.account)
    policy = [Policy.call(target, "other(uint256 amount)")]
    key, co_signer, new = SessionKey.generate(), LocalSigner.generate(), LocalSigner.generate()
    plain = owner.grant(SessionKey.generate(), policy)
    co_signed = owner.grant(key, [Policy.call(target, "other(uint256 amount)")], co_signer=co_signer.address)
    with pytest.raises(BadInputError, match=r"granted with one, but off-chain and not used yet.*NotCoSigned"):
        owner.rotate_co_signer(co_signed, new.address)
    session = signing.net.session(co_signed, key, co_signer=local_co_signer(co_signer))
    assert session.send_calls(record(target, 1)).wait().success  # enables it, and creates the account
    with pytest.raises(BadInputError, match=r"granted without one .*NotCoSigned"):
        owner.rotate_co_signer(plain, new.address)
    with pytest.raises(BadInputError, match=rf"{key.address} is the session's own key.*InvalidCoSigner"):
        owner.rotate_co_signer(co_signed, key.address)
    assert owner.rotate_co_signer(co_signed, new.address).wait().success
    assert module.coSignerOf(owner.account, co_signed.session_id) == (True, new.address)
    owner.revoke(co_signed).wait()
    with pytest.raises(BadInputError, match=r"not active on chain .*SessionNotActive"):
        owner.rotate_co_signer(co_signed.session_id, None)


def test_the_owner_is_refused_the_session_key_as_co_signer_when_naming_the_session_by_id(on_anvil):
    """``rotate_co_signer`` takes a grant or its session id, and docs/session-module.md ("In the SDK") says it
    refuses, before anything is signed, a rotation the module refuses, "the session key itself" among them
    (``InvalidCoSigner``). Given the id, the SDK does not know the key (``Owner._refuse_what_rotating_refuses``
    reads it from the grant only) and builds the owner's operation, which the bundler's estimate refuses instead
    (``BundlerRejectedError``, "execution reverted: InvalidCoSigner"), not the SDK's ``BadInputError``."""
    signing, sessions, target, module = on_anvil.signing, on_anvil.sessions, on_anvil.target, on_anvil.module
    owner = signing.net.owner(LocalSigner.generate())
    sessions.h.fund(owner.account)
    key, co_signer = SessionKey.generate(), LocalSigner.generate()
    co_signed = owner.grant(key, [Policy.call(target, "other(uint256 amount)")], co_signer=co_signer.address)
    session = signing.net.session(co_signed, key, co_signer=local_co_signer(co_signer))
    assert session.send_calls(record(target, 1)).wait().success  # enables it, and creates the account
    with pytest.raises(BadInputError, match=rf"{key.address} is the session's own key.*InvalidCoSigner"):
        owner.rotate_co_signer(co_signed.session_id, key.address)
    assert module.coSignerOf(owner.account, co_signed.session_id) == (True, co_signer.address)


def test_only_the_account_rotates_its_co_signer(co_signed, on_anvil):
    module = on_anvil.module
    deployer = on_anvil.deployer
    grant = co_signed.grants[0]
    with pytest.raises(JsonRpcError) as info:
        module.rotateCoSigner(grant.session_id, deployer, sender=deployer)
    assert _error_name(module, info.value) == "NotCoSigned"


def test_a_co_signer_equal_to_the_session_key_is_refused():
    key = LocalSigner.generate()
    with pytest.raises(ValueError, match="another key than the session key"):
        Session(
            session_key=key.address,
            permissions=(Policy.transfer("0x" + "11" * 20, 1),),
            co_signer=key.address,
        )


def test_the_module_refuses_the_session_key_as_its_own_co_signer(on_anvil):
    """The SDK refuses to build that grant (above); the module must refuse it too, since a grant request need not come
    from the SDK and the owner may be led into a rotation. With the session key as its co-signer, the one leaked key
    makes both signatures of every operation: the "co-signed" session is a plain one. Refused when the session is
    enabled off-chain (ENABLE) and on chain, and when the owner rotates a co-signer to the key; without the checks,
    the key alone lands an operation in each case."""
    from conftest import KIND
    from keyscope.execution import Call

    sessions, target, module = on_anvil.sessions, on_anvil.target, on_anvil.module
    h = sessions.h
    key = SessionKey.generate()
    owner = LocalSigner.generate()
    account = sessions.account(owner, 11)
    h.fund(account)
    permission = Policy.call(target, "other(uint256 amount)", rules=[arg("amount") <= 100])
    valid = Session(
        session_key=key.address, permissions=(permission,), co_signer=LocalSigner.generate().address
    )
    session = valid.model_copy(update={"co_signer": key.address})  # what the SDK refuses to build
    session_id = session.session_id(account, sessions.epoch(account))

    def signed_by_the_key_alone(op: Any, mode: str) -> Any:
        user_op_hash = h.hash(op)
        key_signature = key.sign_hash(user_op_hash)
        co_signature = key.sign_hash(
            co_sign_digest(session_id, user_op_hash, chain_id=h.chain_id, module=module.address)
        )
        if mode == "enable":
            owner_signature = sessions.owner_signature(account, owner, session)
            return op.replace(
                signature=encode_enable_signature(session, owner_signature, key_signature + co_signature)
            )
        return op.replace(signature=encode_session_signature(session_id, key_signature, co_signature))

    calls_before = target.calls()
    nonce_key = KIND.nonce_key(module.address, 0)
    op = h.op(account, encode_execute(record(target, 7)), key=nonce_key)
    refused = str(h.rejected(signed_by_the_key_alone(op, "enable")))
    assert "AA23" in refused and "InvalidCoSigner" in refused
    assert not module.isSessionActive(account, session_id)

    enable = Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi()))
    assert not h.submit(h.sign_owner(h.op(account, encode_execute(enable)), owner)).success
    assert not module.isSessionActive(account, session_id)

    # a co-signed session granted properly, then rotated to its own key
    session_id = sessions.grant_onchain(account, owner, valid)
    session = valid
    rotate = Call.of(module.address, 0, module.rotateCoSigner.encode_input(session_id, key.address))
    assert not h.submit(h.sign_owner(h.op(account, encode_execute(rotate)), owner)).success
    assert module.coSignerOf(account, session_id) == (True, valid.co_signer)
    op = h.op(account, encode_execute(record(target, 8)), key=nonce_key)
    assert "AA24" in str(h.rejected(signed_by_the_key_alone(op, "session")))
    assert target.calls() == calls_before


# --------------------------------------------------------------------------------------------------
# Uninstall and invalidate: nothing of a session's signing or co-signing survives
# --------------------------------------------------------------------------------------------------


def test_uninstalling_kills_signing_permissions_and_co_signed_sessions_made_before(on_anvil):
    """The module's uninstall (and invalidateAllSessions) must kill more than the call permissions under session
    keys: the signing permissions (typed data, sign-in) and a co-signed session's permissions in its own space.
    The SESSION mode and the verifier read a co-signed session's key from its record without asking whether it is
    still active, and the co-signer record outlives it: only the cleared headers stop them. Signatures and an
    operation made (both signatures) before an uninstall and reinstall, or before invalidateAllSessions, are
    refused after it; the owner cannot rotate the dead session's co-signer."""
    from conftest import KIND
    from keyscope.execution import Call
    from keyscope.typed_data import eip191_hash

    sessions, signing, permits, module = on_anvil.fixtures
    target = on_anvil.target
    h = sessions.h
    fresh = co_signed_on(sessions, signing, permits, target, salt=9, sign_in=("app.example.com",))
    co_signer = fresh.co_signer
    account = fresh.accounts[0]
    plain = Signing(sessions, signing.net, permits)  # a session without co-signer, on two accounts
    sdk = fresh.sdk(co_signer=local_co_signer(co_signer))

    data = permit_single(permits, fresh.chain_id, LIMIT)
    digest = TypedData(data).digest
    co_signed_permit = sdk.sign_typed_data(data)
    message, co_signed_sign_in = sdk.sign_in("app.example.com", uri="https://app.example.com/login")
    pending = co_signed_op(fresh, target, 9, "both")  # signed, not yet sent
    plain_permit = plain.sdk().sign_typed_data(data)
    plain_message, plain_sign_in = plain.sdk().sign_in("app.example.com", uri="https://app.example.com")
    for who, signature, hashed in (
        (account, co_signed_permit, digest),
        (account, co_signed_sign_in, eip191_hash(message.encode())),
        (plain.accounts[0], plain_permit, digest),
        (plain.accounts[0], plain_sign_in, eip191_hash(plain_message.encode())),
    ):
        assert permits.isValidSignatureNow(who, hashed, signature)

    h.owner_execute(account, fresh.owner, KIND.uninstall_validator_call(account, module.address))
    h.owner_execute(account, fresh.owner, KIND.install_validator_call(account, module.address))
    invalidate = Call.of(module.address, 0, module.invalidateAllSessions.encode_input())
    h.owner_execute(plain.accounts[0], plain.owner, invalidate)

    assert refusal(module, account, digest, co_signed_permit, permits.address) == "SigningNotGranted"
    signed_in = eip191_hash(message.encode())
    assert refusal(module, account, signed_in, co_signed_sign_in, permits.address) == "SignInNotGranted"
    assert refusal(module, plain.accounts[0], digest, plain_permit, permits.address) == "SigningNotGranted"
    plain_hash = eip191_hash(plain_message.encode())
    assert (
        refusal(module, plain.accounts[0], plain_hash, plain_sign_in, permits.address) == "SignInNotGranted"
    )
    assert not permits.isValidSignatureNow(account, digest, co_signed_permit)
    refused = str(h.rejected(pending))
    assert "AA23" in refused and "NoPermission" in refused
    assert module.coSignerOf(account, fresh.grants[0].session_id) == (True, co_signer.address)  # inert
    rotate = module.rotateCoSigner.encode_input(fresh.grants[0].session_id, LocalSigner.generate().address)
    op = h.sign_owner(h.op(account, encode_execute(Call.of(module.address, 0, rotate))), fresh.owner)
    receipt = h.submit(op)
    assert not receipt.success
    reverted = decode_revert(receipt.reason)
    assert reverted is not None and reverted[0] == "SessionNotActive", receipt.reason
    # the other account of the plain session was left alone
    assert permits.isValidSignatureNow(plain.accounts[1], digest, plain.sdk(1).sign_typed_data(data))


# --------------------------------------------------------------------------------------------------
# The co-signer service (JSON-RPC)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def co_signer_url(co_signed, on_anvil) -> Iterator[str]:
    target = on_anvil.target
    grant = co_signed.grants[0]
    service = CoSignerService(
        co_signed.co_signer,
        chain_id=co_signed.chain_id,
        module=grant.module,
        entry_point=grant.entry_point,
        policy=CoSignPolicy(accounts=frozenset({grant.account}), targets=frozenset({target.address})),
    )
    with CoSignerServer(service) as server:
        yield server.url


def test_the_co_signer_service_co_signs_what_its_policy_allows(co_signed, co_signer_url, on_anvil):
    target, permits = on_anvil.target, on_anvil.permits
    sdk = co_signed.sdk(co_signer=remote_co_signer(co_signer_url))
    assert sdk.send_calls(record(target, 3)).wait().success
    data = permit_single(permits, co_signed.chain_id, LIMIT)
    assert permits.isValidSignatureNow(
        co_signed.accounts[0], TypedData(data).digest, sdk.sign_typed_data(data)
    )


def test_the_co_signer_service_refuses_clearly(co_signed, co_signer_url, on_anvil):
    permits = on_anvil.permits
    sdk = co_signed.sdk(co_signer=remote_co_signer(co_signer_url))
    with pytest.raises(CoSignerRefusedError, match="does not approve") as info:
        sdk.send_calls(function_call(permits, "nonces(address)", co_signed.accounts[0]), check=False)
    assert info.value.reason == "target"
    with pytest.raises(JsonRpcError, match="unknown method") as unknown:
        JsonRpcClient(co_signer_url).request("keyscope_sign", [])
    assert unknown.value.code == -32601
    stranger = [co_signed.grants[0].session_key, "0x" + "00" * 32, {}]
    with pytest.raises(JsonRpcError, match="does not co-sign for the account") as other:
        JsonRpcClient(co_signer_url).request("keyscope_coSignTypedData", stranger)
    assert other.value.code == -32003 and other.value.data == {"reason": "account"}


def test_the_sdk_example_of_the_module_docs_runs_as_written(on_anvil):
    """docs/session-module.md's "In the SDK" block, as written, on a new account: the owner grants a call
    permission, a Permit2 signing permission and a website on chain; the session signs a permit within the rules
    (which a verifier using OpenZeppelin's SignatureChecker accepts) and a sign-in message."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "session-module.md").read_text()
    code = text.split("### In the SDK\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    signing, permits = on_anvil.signing, on_anvil.permits
    nft = on_anvil.chain.deploy(on_anvil.project.DemoNFT, sender=on_anvil.deployer)
    net = signing.net
    owner = net.owner(LocalSigner.generate())
    on_anvil.sessions.h.fund(owner.account, 10**18)
    permit_typed_data = permit_single(permits, signing.chain_id, LIMIT)
    scope: dict[str, Any] = {
        "Policy": Policy,
        "arg": arg,
        "chain_id": signing.chain_id,
        "PERMIT2": permits.address,
        "PERMIT_SINGLE_TYPES": PERMIT_SINGLE_TYPES,
        "USDC": USDC,
        "deadline": EXPIRY,
        "ROUTER": ROUTER,
        "owner": owner,
        "key": SessionKey.generate(),
        "swap_policy": Policy.call(nft.address, "safeMint(address to)", rules=[arg("to") == owner.account]),
        "net": net,
        "permit_typed_data": permit_typed_data,
    }
    exec(compile(code, "docs/session-module.md (in the SDK)", "exec"), scope)
    digest = TypedData(permit_typed_data).digest
    assert permits.isValidSignatureNow(owner.account, digest, scope["signature"])
    message, login = scope["message"], scope["login"]
    assert message.startswith(
        f"app.example.com wants you to sign in with your Ethereum account:\n{owner.account}\n"
    )
    assert "URI: https://app.example.com/login" in message and len(login) > 65


# --------------------------------------------------------------------------------------------------
# The signing side's premises, each tried (see docs/session-module.md, "Attacking the design")
# --------------------------------------------------------------------------------------------------


def _typed_data_forgery(signing: Signing, module: Any, digest_of: dict[str, Any], frames: Frames) -> bytes:
    """The session key's signature, made without the SDK's check, of the ERC-7739 hash of ``digest_of`` (the permit
    the verifier hashes), carrying ``frames`` as the contents the module is to judge; granted permission 0."""
    granted = signing.session.typed_data_permissions[0]
    signed = typed_data_sign_hash(
        granted.domain_separator,
        granted.contents_name,
        granted.contents_type,
        TypedData(digest_of).struct_hash,
        account=signing.accounts[0],
        chain_id=signing.chain_id,
        module=module.address,
    )
    header = Signer(signing.key.address, signing.grants[0].session_id).header(
        signing.key.sign_hash(signed), None
    )
    body = encode_typed_data_signature(header, granted.domain_separator, granted.contents_type_hash, frames)
    return to_bytes(module.address) + body


def _permit_frames(signing: Signing, data: dict[str, Any]) -> Frames:
    granted = signing.session.typed_data_permissions[0]
    typed = TypedData(data)
    return typed.frames(nested_frames(typed.primary_type, typed.types, granted.nested))


@pytest.mark.parametrize("swap", ["below-the-rule details", "another typehash", "sizes shifted"])
def test_a_nested_struct_cannot_be_swapped_for_another_of_its_shape(on_anvil, swap):
    """The rules on `details.amount` read the nested frame, not the primary struct's words: the frame must hash, with
    its typehash, to the primary's `details` word, which the verifier's digest commits to. A permit of 10**12 (above
    the rule) presented with the `details` frame of a permit within it, or with its own details under another
    typehash, or with the frame sizes shifted so that the rules read other words: each is refused, and the verifier
    refuses it. Without the parent check the first would pass: every rule reads a word within its bound, and frame 0
    hashes to the verifier's digest."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    above = permit_single(permits, signing.chain_id, 10**12)
    within = _permit_frames(signing, permit_single(permits, signing.chain_id, LIMIT))
    real = _permit_frames(signing, above)
    assert real.sizes == (3, 4) and real.words[:3] != within.words[:3]
    if swap == "below-the-rule details":
        frames = Frames(real.sizes, real.nested_type_hashes, real.words[:3] + within.words[3:])
        expected = "NestedStructMismatch"
    elif swap == "another typehash":
        frames = Frames(real.sizes, (keccak(b"PermitDetails(address token,uint256 amount)"),), real.words)
        expected = "NestedStructMismatch"
    else:  # frame 0 of two words, frame 1 of five: the same words, laid out otherwise
        frames = Frames((2, 5), real.nested_type_hashes, real.words)
        expected = "NestedStructMismatch"
    forged = _typed_data_forgery(signing, module, above, frames)
    digest = TypedData(above).digest
    assert refusal(module, account, digest, forged, permits.address) == expected
    assert not permits.isValidSignatureNow(account, digest, forged)
    # the same forgery with the real frames is judged on the real amount
    honest = _typed_data_forgery(signing, module, above, real)
    assert refusal(module, account, digest, honest, permits.address) == "SignedRuleViolated"


@pytest.mark.parametrize("frames", ["the nested frame left out", "a copy of the nested frame added"])
def test_a_signature_carries_exactly_the_frames_its_grant_expands(on_anvil, frames):
    """A typed-data signature carries one frame for the primary struct and one for each struct the grant's nested
    list expands, no fewer and no more: PermitSingle's grant expands `details`, so its permit with the details frame
    left out, or with a second copy of it (well formed, and hashing to the `details` word as the first does), is
    refused as malformed, and the verifier refuses it. A module that took any frame count would judge the first by
    whichever rules read the words present (`ContentsTooShort` here, a pass for a grant whose rules all read the
    primary struct), and take the second whole."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    data = permit_single(permits, signing.chain_id, LIMIT)
    digest = TypedData(data).digest
    real = _permit_frames(signing, data)
    assert real.sizes == (3, 4)
    honest = _typed_data_forgery(signing, module, data, real)
    assert refusal(module, account, digest, honest, permits.address) is None
    if frames == "the nested frame left out":
        changed = Frames((3,), (), real.words[:3])
    else:
        changed = Frames((3, 4, 4), real.nested_type_hashes * 2, real.words + real.words[3:])
    forged = _typed_data_forgery(signing, module, data, changed)
    assert refusal(module, account, digest, forged, permits.address) == "MalformedSignature"
    assert not permits.isValidSignatureNow(account, digest, forged)


def test_a_nested_list_that_repeats_an_entry_is_refused_by_the_module(on_anvil):
    """A typed-data permission's nested list names each struct word to expand once, in increasing order (the SDK
    refuses anything else when the permission is built): the module refuses, with `InvalidTypedDataPermission`, a
    grant made without the SDK whose list expands PermitSingle's `details` twice, and enables the same grant with
    the entry once (both asked as calls, nothing stays enabled)."""
    signing, permits, module, deployer = (
        on_anvil.signing,
        on_anvil.permits,
        on_anvil.module,
        on_anvil.deployer,
    )
    permit2, _ = signing_permissions(permits, signing.chain_id)
    assert tuple(permit2.nested) == (0,)
    key = SessionKey.generate().address
    once = Session(session_key=key, typed_data_permissions=(permit2,))
    module.enableSession(once.as_abi(), sender=deployer)
    repeated = permit2.model_copy(update={"nested": (0, 0)})
    twice = once.model_copy(update={"typed_data_permissions": (repeated,)})  # the SDK's checks skipped
    with pytest.raises(JsonRpcError) as refused:
        module.enableSession(twice.as_abi(), sender=deployer)
    assert _error_name(module, refused.value) == "InvalidTypedDataPermission"


def test_a_session_granting_one_domain_and_type_twice_is_refused_by_the_module(on_anvil):
    """A session key holds one typed-data permission per domain and type (its rules, window and nested list sit in
    one place): a grant made without the SDK's checks that names PermitSingle on Permit2 twice, the second time with
    no rule, is refused with `SigningPermissionAlreadyGranted` for the second, rather than the second replacing the
    first's rules (asked as calls, nothing stays enabled)."""
    signing, permits, module, deployer = (
        on_anvil.signing,
        on_anvil.permits,
        on_anvil.module,
        on_anvil.deployer,
    )
    permit2, _ = signing_permissions(permits, signing.chain_id)
    key = SessionKey.generate().address
    once = Session(session_key=key, typed_data_permissions=(permit2,))
    module.enableSession(once.as_abi(), sender=deployer)
    unruled = permit2.model_copy(update={"rules": ()})
    twice = once.model_copy(update={"typed_data_permissions": (permit2, unruled)})  # the SDK's checks skipped
    with pytest.raises(JsonRpcError) as refused:
        module.enableSession(twice.as_abi(), sender=deployer)
    assert _error_name(module, refused.value) == "SigningPermissionAlreadyGranted"


@pytest.mark.parametrize(
    "domain", ["app.example.com evil.example", "app.example.com\t", "app.example.com\x7f"]
)
def test_a_sign_in_website_with_a_space_or_a_control_byte_is_refused_by_the_module(on_anvil, domain):
    """A sign-in permission's website is 1 to 255 printable ASCII bytes without spaces (the first line of an
    EIP-4361 message is the website, then " wants you to sign in..."): the module refuses, with
    `InvalidSignInDomain`, a grant made without the SDK's checks whose website holds a space (0x20, the first byte
    below the printable range's start), a tab or DEL, and enables the website without it (asked as calls, nothing
    stays enabled)."""
    module, deployer = on_anvil.module, on_anvil.deployer
    key = SessionKey.generate().address
    plain = Session(session_key=key, sign_in=("app.example.com",))
    module.enableSession(plain.as_abi(), sender=deployer)
    spaced = plain.model_copy(update={"sign_in": (domain,)})  # the SDK's checks skipped
    with pytest.raises(JsonRpcError) as refused:
        module.enableSession(spaced.as_abi(), sender=deployer)
    assert _error_name(module, refused.value) == "InvalidSignInDomain"


def test_a_typed_data_rule_between_two_words_is_refused_by_the_module(on_anvil):
    """A typed-data rule reads one word of the flattened contents, so its offset is a multiple of 32: the module
    refuses, with `InvalidRule`, a grant made without the SDK's checks whose rule on PermitSingle's amount sits 16
    bytes early (it would read the second half of the token's word and the first half of the amount's, a value no
    field holds, and no field's type would be checked against it), and enables the rule where it belongs (asked as
    calls, nothing stays enabled)."""
    signing, permits, module, deployer = (
        on_anvil.signing,
        on_anvil.permits,
        on_anvil.module,
        on_anvil.deployer,
    )
    permit2, _ = signing_permissions(permits, signing.chain_id)
    key = SessionKey.generate().address
    once = Session(session_key=key, typed_data_permissions=(permit2,))
    module.enableSession(once.as_abi(), sender=deployer)
    amount = next(i for i, rule in enumerate(permit2.rules) if rule.offset == 4 * 32)
    rules = list(permit2.rules)
    rules[amount] = rules[amount].model_copy(update={"offset": 4 * 32 - 16})
    between = permit2.model_copy(update={"rules": tuple(rules)})
    shifted = once.model_copy(update={"typed_data_permissions": (between,)})  # the SDK's checks skipped
    with pytest.raises(JsonRpcError) as refused:
        module.enableSession(shifted.as_abi(), sender=deployer)
    assert _error_name(module, refused.value) == "InvalidRule"


def test_a_rule_past_the_end_of_the_contents_is_refused(on_anvil):
    """ "A rule past the end of the contents fails (``ContentsTooShort``)": a grant (made without the SDK's policy
    builder, which places rules on fields) whose rule reads the word after PermitSingle's seven flattened words (its
    three and its details' four). The module refuses every signature under it, with the reason, and its ERC-1271
    answer is invalid rather than a revert; the SDK refuses to sign, with the same reason."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    permit2, _ = signing_permissions(permits, signing.chain_id)
    past = Rule(condition=Condition.EQUAL, offset=7 * 32, values=(0,))
    beyond = permit2.model_copy(update={"rules": (*permit2.rules, past)})
    key = SessionKey.generate()
    account = signing.sessions.account(signing.owner, 3)
    session = Session(session_key=key.address, typed_data_permissions=(beyond,))
    session_id = signing.sessions.grant_onchain(account, signing.owner, session)
    grant = SessionGrant(
        session=session, account=account, module=module.address, chain_id=signing.chain_id,
        entry_point=signing.sessions.h.entry_point.address, epoch=signing.sessions.epoch(account),
        session_id=session_id, how="onchain",
    )  # fmt: skip
    sdk = signing.net.session(grant, key)
    data = permit_single(permits, signing.chain_id, LIMIT)
    with pytest.raises(SignatureRefusedError) as refused:
        sdk.sign_typed_data(data)
    assert (refused.value.reason, refused.value.permission_index, refused.value.rule_index) == (
        "ContentsTooShort",
        0,
        len(permit2.rules),
    )
    signature = forge_typed_data(sdk, data)
    assert refusal(module, account, TypedData(data).digest, signature, permits.address) == "ContentsTooShort"
    assert not permits.isValidSignatureNow(account, TypedData(data).digest, signature)


@pytest.mark.parametrize(
    "cut", ["a byte more", "a byte less", "one frame more", "first line past the end", "first line cut short"]
)
def test_a_session_signature_must_be_laid_out_exactly(on_anvil, cut):
    """ "The layout must be exact (no byte more or less)": a valid typed-data or sign-in signature with a byte added
    or removed, a frame count the grant does not expand, or a first-line length other than the first line's, is
    refused (the signature is the account's, so nothing a carrier appends may be read as part of it)."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    from keyscope.typed_data import eip191_hash

    account = signing.accounts[0]
    sdk = signing.sdk()
    if cut in ("first line past the end", "first line cut short"):
        message, signature = sdk.sign_in("app.example.com", uri="https://app.example.com/login")
        hashed = eip191_hash(message.encode())
        at = (
            len(signature) - len(message.encode()) - 2
        )  # the first line's length (2 bytes) precedes the message
        first = int.from_bytes(signature[at : at + 2], "big")
        assert first == len("app.example.com" + SIGN_IN_SUFFIX)
        length = len(message.encode()) + 1 if cut == "first line past the end" else first - 1
        broken = signature[:at] + length.to_bytes(2, "big") + signature[at + 2 :]
        expected = "MalformedSignature" if cut == "first line past the end" else "SignInNotGranted"
    else:
        data = permit_single(permits, signing.chain_id, LIMIT)
        signature = sdk.sign_typed_data(data)
        hashed = TypedData(data).digest
        if cut == "a byte more":
            broken = signature + b"\x00"
        elif cut == "a byte less":
            broken = signature[:-1]
        else:
            at = (
                20 + 1 + 21 + 65 + 64
            )  # routing, kind, who and key, the key's signature, separator and typehash
            assert signature[at] == 2
            broken = signature[:at] + b"\x03" + signature[at + 1 :]
        expected = "MalformedSignature"
    assert permits.isValidSignatureNow(account, hashed, signature)
    assert refusal(module, account, hashed, broken, permits.address) == expected
    assert not permits.isValidSignatureNow(account, hashed, broken)


_FIRST_LINES = {
    "a scheme before the website": "https://app.example.com",
    "a subdomain of it": "evil.app.example.com",
    "the website as a subdomain": "app.example.com.evil.example",
    "upper case": "APP.EXAMPLE.COM",
    "a trailing dot": "app.example.com.",
    "a port": "app.example.com:443",
}


@pytest.mark.parametrize("spelling", [*sorted(_FIRST_LINES), "a CRLF line break", "two spaces"])
def test_a_sign_in_first_line_is_the_granted_one_byte_for_byte(on_anvil, spelling):
    """A sign-in permission for app.example.com allows exactly the first line `app.example.com wants you to sign in
    with your Ethereum account:` and a line feed: a scheme, another host that contains it or that it contains, another
    case, a port, a carriage return or another spacing is a sign-in to something the owner did not name (a server
    may read `https://` or a port as its own, or normalise the case). The module refuses each (`SignInNotGranted`), and
    the SDK's check refuses the same."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    message, _ = signing.sdk().sign_in("app.example.com", uri="https://app.example.com/login")
    lines = message.split("\n")
    if spelling == "a CRLF line break":
        first = lines[0] + "\r"
    elif spelling == "two spaces":
        first = lines[0].replace(" wants", "  wants")
    else:
        first = lines[0].replace("app.example.com", _FIRST_LINES[spelling], 1)
    raw = "\n".join([first, *lines[1:]]).encode()
    assert _module_sign_in_verdict(signing, module, permits, raw) == "SignInNotGranted"
    with pytest.raises(SignatureRefusedError) as info:
        check_sign_in(signing.session, raw, account=account, session_id="0x01")
    assert info.value.reason == "SignInNotGranted"


@pytest.mark.parametrize("domain", ["version added", "chainId left out", "salt added", "another name"])
def test_typed_data_of_a_neighbouring_domain_finds_no_permission(on_anvil, domain):
    """The permission is found by the application's domain separator, built from exactly the fields the grant names:
    a verifier whose domain has one field more or less, or another value, with the same type and contents, finds
    none. The SDK refuses to sign it; a leaked key's signature claiming the granted domain does not match the
    verifier's digest, and one naming the verifier's domain finds no permission."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    account = signing.accounts[0]
    data = permit_single(permits, signing.chain_id, LIMIT)
    changed = dict(data["domain"])
    if domain == "version added":
        changed["version"] = "1"
    elif domain == "chainId left out":
        del changed["chainId"]
    elif domain == "salt added":
        changed["salt"] = "0x" + "11" * 32
    else:
        changed["name"] = "Permit3"
    other = {**data, "domain": changed}
    with pytest.raises(SignatureRefusedError) as info:
        signing.sdk().sign_typed_data(other)
    assert info.value.reason == "SigningNotGranted"
    digest = TypedData(other).digest
    claimed = signing.forge(other)  # the granted permission's separator
    assert refusal(module, account, digest, claimed, permits.address) == "ContentsMismatch"
    typed = TypedData(other)
    header = Signer(signing.key.address, signing.grants[0].session_id).header(
        signing.key.sign_hash(
            typed_data_sign_hash(
                typed.domain_separator,
                typed.primary_type,
                typed.contents_type,
                typed.struct_hash,
                account=account,
                chain_id=signing.chain_id,
                module=module.address,
            )
        ),
        None,
    )
    granted = signing.session.typed_data_permissions[0]
    named = to_bytes(module.address) + encode_typed_data_signature(
        header, typed.domain_separator, typed.type_hash, _permit_frames(signing, data)
    )
    assert typed.type_hash == granted.contents_type_hash
    assert refusal(module, account, digest, named, permits.address) == "SigningNotGranted"
    for forged in (claimed, named):
        assert not permits.isValidSignatureNow(account, digest, forged)


def _kernel_wrapped(on_anvil: OnAnvil, account: str, inner: bytes, *, chain_id: int | None = None) -> bytes:
    """`inner` wrapped as Kernel wraps a verifier's hash (`Kernel(bytes32 hash)`), in `account`'s own EIP-712 domain
    as its `eip712Domain()` gives it (keyscope's account has one: ERC-5267), `chain_id` replacing the chain's."""
    fields, name, version, chain, verifying, _, _ = on_anvil.account(account).eip712Domain()
    assert bytes(fields) == b"\x0f" and verifying == account
    separator = keccak(
        keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
        + keccak(name.encode())
        + keccak(version.encode())
        + (chain_id if chain_id is not None else chain).to_bytes(32, "big")
        + bytes(12)
        + to_bytes(verifying)
    )
    return keccak(b"\x19\x01" + separator + keccak(keccak(b"Kernel(bytes32 hash)") + inner))


def test_kernels_wrapping_holds_only_in_the_accounts_own_domain(on_anvil):
    """The module takes Kernel's wrapping of the contents' hash (a hash Kernel passes its validators) when it is made
    in the asking account's own EIP-712 domain, naming the account and this chain. keyscope's account has such a
    domain, so the premise is tried here: a session signature valid for account 1 is refused for the wrapping made
    in account 0's domain (the owner's other account, the same key and permission) and for one naming another chain,
    and accepted only for its own account's wrapping of the very digest."""
    signing, permits, module = on_anvil.signing, on_anvil.permits, on_anvil.module
    data = permit_single(permits, signing.chain_id, LIMIT)
    digest = TypedData(data).digest
    first, second = signing.accounts
    signature = signing.sdk(1).sign_typed_data(data)
    assert refusal(module, second, digest, signature, permits.address) is None
    assert (
        refusal(module, second, _kernel_wrapped(on_anvil, second, digest), signature, permits.address) is None
    )
    for wrapped in (
        _kernel_wrapped(on_anvil, first, digest),
        _kernel_wrapped(on_anvil, second, digest, chain_id=signing.chain_id + 1),
        _kernel_wrapped(
            on_anvil, second, TypedData(permit_single(permits, signing.chain_id, LIMIT - 1)).digest
        ),
    ):
        assert refusal(module, second, wrapped, signature, permits.address) == "ContentsMismatch"
        assert not permits.isValidSignatureNow(second, wrapped, signature)


def test_a_co_signature_approves_one_message_of_one_session(on_anvil):
    """A co-signer approves a message for a session: it signs `CoSign(sessionId, H)`. One key holds two co-signed
    sessions on one account, with the same co-signer and the same Permit2 permission (each in its own space). The
    co-signature of a permit is refused with the key's signature of another permit (the next nonce), and under the
    other session for the very same permit: the co-signer's approval counts once, where it was given. Without the
    session id or `H` in what the co-signer signs, either would pass."""
    sessions, signing, permits, module = on_anvil.fixtures
    owner, key, co_signer = LocalSigner.generate(), SessionKey.generate(), LocalSigner.generate()
    account = sessions.account(owner, 11)
    permit2, _ = signing_permissions(permits, signing.chain_id)
    granted = [
        Session(
            session_key=key.address, typed_data_permissions=(permit2,), co_signer=co_signer.address, salt=salt
        )
        for salt in (1, 2)
    ]
    ids = [sessions.grant_onchain(account, owner, session) for session in granted]

    def wrapped(data: dict[str, Any]) -> bytes:
        """H: what the key signs for `data` on the account (ERC-7739), and what the co-signer's CoSign names."""
        return typed_data_sign_hash(
            permit2.domain_separator,
            permit2.contents_name,
            permit2.contents_type,
            TypedData(data).struct_hash,
            account=account,
            chain_id=signing.chain_id,
            module=module.address,
        )

    def signature(data: dict[str, Any], session_id: bytes, co_signed_for: tuple[bytes, bytes]) -> bytes:
        """The key's signature of `data` under `session_id`, with the co-signature of `co_signed_for` (id, H)."""
        typed = TypedData(data)
        co = co_signer.sign_hash(
            co_sign_digest(*co_signed_for, chain_id=signing.chain_id, module=module.address)
        )
        header = Signer(key.address, session_id, True, True).header(key.sign_hash(wrapped(data)), co)
        frames = typed.frames(nested_frames(typed.primary_type, typed.types, permit2.nested))
        body = encode_typed_data_signature(
            header, permit2.domain_separator, permit2.contents_type_hash, frames
        )
        return to_bytes(module.address) + body

    first, second = (permit_single(permits, signing.chain_id, LIMIT, nonce=n) for n in (0, 1))
    digest, next_digest = TypedData(first).digest, TypedData(second).digest
    approved = signature(first, ids[0], (ids[0], wrapped(first)))
    assert refusal(module, account, digest, approved, permits.address) is None
    assert permits.isValidSignatureNow(account, digest, approved)
    for hashed, replayed in (
        (next_digest, signature(second, ids[0], (ids[0], wrapped(first)))),  # another message
        (digest, signature(first, ids[1], (ids[0], wrapped(first)))),  # another session
    ):
        assert refusal(module, account, hashed, replayed, permits.address) == "InvalidCoSignature"
        assert not permits.isValidSignatureNow(account, hashed, replayed)
    assert (
        refusal(module, account, digest, signature(first, ids[1], (ids[1], wrapped(first))), permits.address)
        is None
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["typed data", "sign-in"]),
    damage=st.sampled_from(["cut", "flip", "append", "garbage"]),
    where=st.floats(0, 1, exclude_max=True),
    extra=st.binary(min_size=1, max_size=96),
)
def test_a_damaged_session_signature_is_answered_invalid_never_reverted(on_anvil, kind, damage, where, extra):
    """ "A bad signature returns failure rather than reverting": a valid session signature cut short anywhere, with
    a byte changed anywhere, with bytes appended, or its body replaced by arbitrary bytes behind the mode byte, is
    answered 0xffffffff by the module's isValidSignatureWithSender and is not the magic value of the account's
    isValidSignature; neither call reverts (a verifier that treats a revert as an error would otherwise fail where it
    should only refuse)."""
    from keyscope.typed_data import eip191_hash

    signing, permits, module, deployer = (
        on_anvil.signing,
        on_anvil.permits,
        on_anvil.module,
        on_anvil.deployer,
    )
    account = signing.accounts[0]
    sdk = signing.sdk()
    if kind == "typed data":
        data = permit_single(permits, signing.chain_id, LIMIT)
        signature, hashed = sdk.sign_typed_data(data), TypedData(data).digest
    else:
        message, signature = sdk.sign_in("app.example.com", uri="https://app.example.com/login")
        hashed = eip191_hash(message.encode())
    assert permits.isValidSignatureNow(account, hashed, signature)
    body = signature[20:]  # behind the routing address: what the account hands the module
    at = int(where * len(body))
    if damage == "cut":
        broken = body[:at]
    elif damage == "flip":
        broken = body[:at] + bytes([body[at] ^ (extra[0] or 1)]) + body[at + 1 :]
    elif damage == "append":
        broken = body + extra
    else:
        broken = body[:1] + extra
    answer = bytes(module.isValidSignatureWithSender(permits.address, hashed, broken, sender=account))
    assert answer == bytes.fromhex("ffffffff"), (damage, "0x" + broken.hex())
    through_account = bytes(
        on_anvil.account(account).isValidSignature(hashed, signature[:20] + broken, sender=deployer)
    )
    assert through_account != bytes.fromhex("1626ba7e"), (damage, "0x" + broken.hex())
