"""A leaked session key against what the recent reviews left aside, on ape's chain: the gas cap against everything
EntryPoint v0.8 charges (through the real v0.8 ``handleOps``), a co-signer's answer for an account it serves
carried to one it does not, a typed-data digest asked about as a personal_sign message, and a call failing under
the try exec type against an allowance. Each attack holds; the tests keep it so.
"""

from __future__ import annotations

from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from eth_utils import to_checksum_address

from keyscope import Network, Policy, SessionKey, Web3Chain, arg
from keyscope.bundler.inprocess import InProcessBundler
from keyscope.calls import function_call
from keyscope.cosigner import CoSignerService, CoSignPolicy
from keyscope.cosigner.service import CoSignRefused
from keyscope.erc1271 import Signer, encode_sign_in_signature, encode_typed_data_signature
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import to_bytes
from keyscope.message_signing import nested_frames
from keyscope.revert import describe_revert
from keyscope.session import SIGN_IN_SUFFIX, Session, encode_session_signature
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData, eip191_hash, personal_sign_hash, typed_data_sign_hash
from keyscope.userop import UserOperation
from support.ape_entry_point import deploy_entry_point
from support.permit_types import EXPIRY, LIMIT, PERMIT_SINGLE_TYPES, ROUTER, USDC
from support.raw_call import revert_bytes

ETHER = 10**18


@pytest.fixture(scope="module")
def entry_point_v08(deployer: Any) -> Any:
    """An EntryPoint v0.8 (at a non-canonical address, which the SDK reads the version of from its domain)."""
    return deploy_entry_point(deployer, "0.8")


@pytest.fixture(scope="module")
def token(project: Any, deployer: Any) -> Any:
    """An ERC-20 test token (OpenZeppelin's: a transfer beyond the balance or to the zero address reverts)."""
    return project.TestToken.deploy(sender=deployer)


@pytest.fixture(scope="module", autouse=True)
def _chain_fixtures_first(
    entry_point_v08: Any, sessions: Any, target: Any, permits: Any, nft: Any, token: Any
) -> None:
    """Every longer-lived fixture a test of the file asks for, made before the first test runs (one made inside a
    later test makes ape rebase the chain under the accounts made before)."""


# ------------------------------------------------------------------------------------------------------
# The gas cap against EntryPoint v0.8's charges
# ------------------------------------------------------------------------------------------------------


def test_an_operation_at_the_gas_cap_on_entry_point_v08_takes_at_most_the_cap_from_the_account(
    project: Any,
    chain: Any,
    deployer: Any,
    submitter_account: Any,
    entry_point_v08: Any,
    module: Any,
    nft: Any,
    harness: Any,
) -> None:
    """EntryPoint v0.8 charges the gas used, preVerificationGas in full, and a 10 % penalty on the execution gas
    left unused (callGasLimit and the paymaster's postOp limit) when more than 40,000 is left: the charge rule
    v0.7's test of the cap never met. A leaked key with a session capped at 0.01 ether makes every part of that as
    large as the cap lets it (preVerificationGas padded to 3,000,000, a callGasLimit of 700,000 it leaves unused, the priority
    fee equal to maxFeePerGas, so the gas price is the highest the prefund priced) and lands it itself (its own
    beneficiary): the account's balance and deposit together lose no more than the cap, and one wei more of fee
    per gas is ``GasCostTooHigh``."""
    factory = project.KeyscopeAccountFactory.deploy(entry_point_v08, deployer, sender=deployer)
    factory.addStake(86400, value=ETHER, sender=deployer)
    net = Network.from_urls(
        Web3Chain(chain.provider.web3),
        InProcessBundler(entry_point_v08.address, submitter_account),
        module=module.address,
        factory=factory.address,
    )
    assert net.entry_point_version == "0.8"
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    key = SessionKey.generate()
    cap = 10**16
    policy = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    session = net.session(owner.grant(key, [policy], max_gas_cost=cap), key)
    mint = function_call(nft, "safeMint(address)", owner.account)
    # the first operation creates the account and enables the session; the attack is the next one (USE mode)
    assert session.send(session.build(mint)).wait().success

    limits = {"verification_gas_limit": 300_000, "call_gas_limit": 700_000, "pre_verification_gas": 3_000_000}
    fee = cap // sum(limits.values())

    def signed(fee_per_gas: int) -> UserOperation:
        op = session.build(mint).replace(
            max_fee_per_gas=fee_per_gas, max_priority_fee_per_gas=fee_per_gas, signature=b"", **limits
        )
        return op.replace(signature=key.sign_hash(net.user_op_hash(op)))

    def holdings() -> int:
        return chain.provider.get_balance(owner.account) + int(entry_point_v08.balanceOf(owner.account))

    before = holdings()
    op = signed(fee)
    entry_point_v08.handleOps([op.pack().as_tuple()], submitter_account.address, sender=submitter_account)
    assert nft.balanceOf(owner.account) == 2
    lost = before - holdings()
    # preVerificationGas and v0.8's penalty on the 600,000 and more gas left unused are charged: near the cap, in it
    assert (3_000_000 + 60_000) * fee < lost <= cap

    with pytest.raises(ContractLogicError) as refused:
        over = signed(fee + 1)
        entry_point_v08.handleOps(
            [over.pack().as_tuple()], submitter_account.address, sender=submitter_account
        )
    assert "AA23" in str(refused.value)
    assert describe_revert(bytes(refused.value.inputs["inner"])).startswith("GasCostTooHigh(")
    assert nft.balanceOf(owner.account) == 2


# ------------------------------------------------------------------------------------------------------
# A co-signer's answer for an account it serves, carried to one it does not
# ------------------------------------------------------------------------------------------------------


def _verdict(sessions: Any, account: str, sender: str, hash_: bytes, signature: bytes) -> str:
    """The module's verdict on a session signature (after the account's routing prefix) of ``hash_`` for
    ``account``, asked by ``sender``: "valid", or the name of the refusal ``requireValidSignature`` reverts with;
    ``isValidSignatureWithSender`` must say the same."""
    module = sessions.module
    answer = bytes(module.isValidSignatureWithSender(sender, hash_, signature, sender=account))
    data = module.requireValidSignature.encode_input(account, sender, hash_, signature)
    web3 = sessions.h.chain.provider.web3
    try:
        web3.eth.call({"to": module.address, "data": "0x" + data.hex(), "gas": 5_000_000})
    except Exception as error:
        assert answer == bytes.fromhex("ffffffff")
        return describe_revert(revert_bytes(error)).split("(")[0]
    assert answer == bytes.fromhex("1626ba7e")
    return "valid"


def test_a_co_signer_s_answer_for_an_account_it_serves_co_signs_nothing_on_one_it_does_not(
    sessions: Any, target: Any, permits: Any
) -> None:
    """A co-signer service serves one account (its policy's ``accounts``: A, calls to the target, messages) and
    co-signs for whichever session a request names: it checks the account the request gives, never that the
    session is that account's. One leaked key holds a co-signed session with that co-signer on A and one on B (the
    owner's second account, which the co-signer does not serve). The key asks the service about an operation of A,
    and about a permit signed as A, each naming B's session, and carries the co-signatures to B: its operation in
    the SESSION mode naming B's session, and its signature of the same permit as B. The co-signer signed
    `CoSign(sessionId, digest)` with the userOpHash (which names A as the sender) and the ERC-7739 hash of the
    permit (which names A as the account), so neither is B's: AA24, `InvalidCoSignature`. Asked about B itself,
    the service refuses; its answers hold on A."""
    from conftest import KIND

    h = sessions.h
    owner, key, co_signer = LocalSigner.generate(), SessionKey.generate(), LocalSigner.generate()
    served, other = sessions.account(owner, 61), sessions.account(owner, 62)
    for account in (served, other):
        h.fund(account)
    permit2 = Policy.typed_data(
        {"name": "Permit2", "chainId": h.chain_id, "verifyingContract": permits.address},
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") <= LIMIT, arg("spender") == ROUTER],
    )
    session = Session(
        session_key=key.address,
        permissions=(Policy.call(target, "other(uint256 amount)", rules=[arg("amount") <= 100]),),
        typed_data_permissions=(permit2,),
        co_signer=co_signer.address,
    )
    ids = {account: sessions.grant_onchain(account, owner, session) for account in (served, other)}
    assert ids[served] != ids[other]
    service = CoSignerService(
        co_signer,
        chain_id=h.chain_id,
        module=sessions.module.address,
        entry_point=h.entry_point.address,
        policy=CoSignPolicy(accounts=frozenset({served}), targets=frozenset({target.address})),
    )

    # an operation: the service co-signs A's operation for B's session; B's operation with it is AA24
    def operation(account: str) -> UserOperation:
        call = Call.of(target.address, 0, target.other.encode_input(50))
        return h.op(account, encode_execute(call), key=KIND.nonce_key(sessions.module.address, 0))

    def co_signed(op: UserOperation, account: str, session_id: bytes) -> bytes:
        answer = service.handle(
            "keyscope_coSignUserOperation", [account, "0x" + session_id.hex(), op.to_rpc()]
        )
        return to_bytes(answer["signature"])

    with pytest.raises(CoSignRefused) as refused:
        co_signed(operation(other), other, ids[other])
    assert refused.value.reason == "account"
    carried = co_signed(operation(served), served, ids[other])
    on_other = operation(other)
    on_other = on_other.replace(
        signature=encode_session_signature(ids[other], key.sign_hash(h.hash(on_other)), carried)
    )
    calls = target.calls()
    assert h.rejected(on_other).reason == "AA24"
    assert target.calls() == calls

    # a message: the service co-signs the permit as A for B's session; the key's signature of it as B needs B's own
    permit = {
        "types": PERMIT_SINGLE_TYPES,
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": h.chain_id, "verifyingContract": permits.address},
        "message": {
            "details": {"token": USDC, "amount": LIMIT, "expiration": EXPIRY, "nonce": 0},
            "spender": ROUTER,
            "sigDeadline": EXPIRY,
        },
    }
    typed = TypedData(permit)
    frames = typed.frames(nested_frames(typed.primary_type, typed.types, permit2.nested))

    def signature(account: str, session_id: bytes, co_signature: bytes) -> bytes:
        wrapped = typed_data_sign_hash(
            permit2.domain_separator,
            permit2.contents_name,
            permit2.contents_type,
            typed.struct_hash,
            account=account,
            chain_id=h.chain_id,
            module=sessions.module.address,
        )
        header = Signer(key.address, session_id, True, True).header(key.sign_hash(wrapped), co_signature)
        return encode_typed_data_signature(
            header, permit2.domain_separator, permit2.contents_type_hash, frames
        )

    def co_signed_message(account: str, session_id: bytes) -> bytes:
        answer = service.handle("keyscope_coSignTypedData", [account, "0x" + session_id.hex(), permit])
        return to_bytes(answer["signature"])

    with pytest.raises(CoSignRefused) as refused:
        co_signed_message(other, ids[other])
    assert refused.value.reason == "account"
    carried = co_signed_message(served, ids[other])
    assert _verdict(
        sessions, other, permits.address, typed.digest, signature(other, ids[other], carried)
    ) == ("InvalidCoSignature")
    assert not permits.isValidSignatureNow(
        other, typed.digest, to_bytes(sessions.module.address) + signature(other, ids[other], carried)
    )

    # where the co-signer serves, its answers hold
    answered = co_signed_message(served, ids[served])
    assert _verdict(
        sessions, served, permits.address, typed.digest, signature(served, ids[served], answered)
    ) == ("valid")
    op = operation(served)
    op = op.replace(
        signature=encode_session_signature(
            ids[served], key.sign_hash(h.hash(op)), co_signed(op, served, ids[served])
        )
    )
    sessions.run(op)
    assert target.calls() == calls + 1


# ------------------------------------------------------------------------------------------------------
# A typed-data digest asked about as a personal_sign message
# ------------------------------------------------------------------------------------------------------


def test_a_typed_data_digest_is_not_signed_as_a_personal_message(sessions: Any, permits: Any) -> None:
    """Many verifiers take a `personal_sign` of an order's or a permit's EIP-712 digest as the signer's approval
    of it: they ask the account about the EIP-191 hash of the digest's 32 bytes. A leaked key whose session may sign
    Permit2 permits of at most 100 USDC and sign in to app.example.com wants the account's approval of a permit of
    10**12 in that form. It presents (1) its sign-in layout carrying the digest's 32 bytes as the message (the
    first line being all of them, or none but the first byte); (2) its valid typed-data signature of a permit
    within the rule, asked about the EIP-191 hash of that permit's own digest; (3) a granted sign-in message whose
    body after the address line is the large permit's digest, asked about the EIP-191 hash of the digest. A
    sign-in message is found by its whole first line, which no digest is; a typed-data signature and a sign-in
    message each hold for the one hash the module rebuilds from what it judged."""
    h = sessions.h
    owner, key = LocalSigner.generate(), SessionKey.generate()
    account = sessions.account(owner, 63)
    domain = {"name": "Permit2", "chainId": h.chain_id, "verifyingContract": permits.address}
    permit2 = Policy.typed_data(
        domain,
        PERMIT_SINGLE_TYPES,
        "PermitSingle",
        [arg("details", "amount") <= LIMIT, arg("spender") == ROUTER],
    )
    session = Session(
        session_key=key.address, typed_data_permissions=(permit2,), sign_in=("app.example.com",)
    )
    sessions.grant_onchain(account, owner, session)
    module = sessions.module.address
    header_of = Signer(key.address, b"\x00" * 32).header

    def permit(amount: int) -> TypedData:
        return TypedData(
            {
                "types": PERMIT_SINGLE_TYPES,
                "primaryType": "PermitSingle",
                "domain": domain,
                "message": {
                    "details": {"token": USDC, "amount": amount, "expiration": EXPIRY, "nonce": 0},
                    "spender": ROUTER,
                    "sigDeadline": EXPIRY,
                },
            }
        )

    def sign_in(message: bytes, first_line_length: int) -> bytes:
        signed = personal_sign_hash(message, account=account, chain_id=h.chain_id, module=module)
        return encode_sign_in_signature(header_of(key.sign_hash(signed), None), message, first_line_length)

    large, small = permit(10**12), permit(LIMIT)
    asked = eip191_hash(large.digest)
    # (1) the digest as the sign-in message
    for first_line in (32, 1):
        assert _verdict(sessions, account, permits.address, asked, sign_in(large.digest, first_line)) == (
            "SignInNotGranted"
        )
    # (2) a valid typed-data signature, of a permit within the rule, asked about as a personal message of its digest
    wrapped = typed_data_sign_hash(
        permit2.domain_separator,
        permit2.contents_name,
        permit2.contents_type,
        small.struct_hash,
        account=account,
        chain_id=h.chain_id,
        module=module,
    )
    frames = small.frames(nested_frames(small.primary_type, small.types, permit2.nested))
    typed = encode_typed_data_signature(
        header_of(key.sign_hash(wrapped), None), permit2.domain_separator, permit2.contents_type_hash, frames
    )
    assert _verdict(sessions, account, permits.address, small.digest, typed) == "valid"
    assert (
        _verdict(sessions, account, permits.address, eip191_hash(small.digest), typed) == "ContentsMismatch"
    )
    # (3) a granted sign-in whose body is the large permit's digest
    first = b"app.example.com" + SIGN_IN_SUFFIX.encode()
    message = first + to_checksum_address(account).encode() + b"\n" + large.digest
    signature = sign_in(message, len(first))
    assert _verdict(sessions, account, permits.address, eip191_hash(message), signature) == "valid"
    assert _verdict(sessions, account, permits.address, asked, signature) == "ContentsMismatch"
    assert not permits.isValidSignatureNow(account, asked, to_bytes(module) + signature)


# ------------------------------------------------------------------------------------------------------
# A call failing under the try exec type
# ------------------------------------------------------------------------------------------------------


def test_a_call_failing_under_try_keeps_its_count_and_moves_nothing(sessions: Any, token: Any) -> None:
    """The try exec type (ERC-7579 exec type 1) makes the account go on past a call that reverts, where the default
    type reverts the whole execution. A leaked key with an allowance of 200 tokens (counted in validation, over the
    session's life) on an account holding 100 sends, under try, a batch whose first transfer (150, beyond the
    balance) reverts and whose second (30) runs, then a single try-mode transfer that reverts (to the zero address),
    hoping either that a failed call gives its count back so that the budget stretches, or that a call is counted
    only once it ran (a call the module did not count would have moved tokens). The module counts every call it
    judged, whatever the execution then does; the failed calls move nothing; what is left bounds the rest."""
    h = sessions.h
    owner, key, attacker = LocalSigner.generate(), SessionKey.generate(), LocalSigner.generate().address
    account = sessions.account(owner, 64)
    h.fund(account)
    token.mint(account, 100 * ETHER, sender=h.funder)
    session = Session(session_key=key.address, permissions=Policy.erc20_allowance(token.address, 200 * ETHER))
    session_id = sessions.grant_onchain(account, owner, session)

    def transfer(amount: int, to: str = attacker) -> Call:
        return Call.of(token.address, 0, token.transfer.encode_input(to, amount))

    def left() -> int:
        return int(sessions.module.limitUsage(account, session_id)[0].left)

    def tried(calls: list[Call] | Call) -> UserOperation:
        batch = isinstance(calls, list)
        return sessions.op(account, key, call_data=encode_execute(calls, batch=batch, exec_type=1))

    assert sessions.run(tried([transfer(150 * ETHER), transfer(30 * ETHER)])).success
    assert token.balanceOf(attacker) == 30 * ETHER  # the failed call moved nothing, the next one ran
    assert left() == 20 * ETHER  # both counted
    assert sessions.run(tried(transfer(10 * ETHER, "0x" + "00" * 20))).success  # reverts in the token
    assert (token.balanceOf(account), left()) == (70 * ETHER, 10 * ETHER)  # counted, nothing moved
    assert "LimitExceeded(callIndex=0, limitIndex=0" in sessions.outcome(tried(transfer(10 * ETHER + 1)))
    assert sessions.run(tried(transfer(10 * ETHER))).success
    assert (token.balanceOf(attacker), left()) == (40 * ETHER, 0)
    assert "LimitExceeded" in sessions.outcome(sessions.op(account, key, transfer(1)))
    assert token.balanceOf(attacker) == 40 * ETHER
