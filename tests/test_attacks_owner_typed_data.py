"""What the SDK signs with the owner's key when a dapp hands it typed data (attacks 316 and 317).

``Owner.sign_typed_data`` signs a dapp's EIP-712 typed data in the account's name. On keyscope's account the owner
signs an ERC-7739 ``TypedDataSign`` nested in the account's domain, which is never an operation's hash nor a
grant's digest. On an EOA delegating to keyscope's delegate the owner is the EOA itself, and its signature of typed
data is its bare ECDSA signature of the typed data's digest: the very signature the delegate takes as the owner's
approval of a UserOperation (EntryPoint v0.8 hashes the operation as EIP-712 typed data, a ``PackedUserOperation`` in
its ``ERC4337`` domain) and the session module takes as the owner's grant of a session (its ``EnableSession`` digest
in the module's domain). So typed data a dapp calls a "permit" could be an operation of the account, priced and
aimed as the dapp likes (none of the owner's checks of operations, its gas cap included, see it), or a grant of any
session (none of ``Owner.sign_grant``'s judgement sees it). On keyscope's account the nested signature of a grant's
typed data is a grant all the same: the account takes an ERC-7739 signature for whatever hash it is asked about.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope import Policy, SessionKey, Web3Chain, arg
from keyscope.accounts.delegate import KeyscopeDelegateKind
from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.owner import GrantRequest
from keyscope.session import Session
from keyscope.signing import LocalSigner, recover_hash
from keyscope.typed_data import TypedData, wallet_typed_data
from keyscope.userop import UserOperation
from support.userops import v08_typed_data

ENTRY_POINT_V08 = "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108"
CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ATTACKER = "0x" + "a7" * 20

_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _draining_operation(account: str) -> UserOperation:
    """An operation of ``account`` sending 100 ether to the attacker, at 1,000 gwei on 5,000,000 gas."""
    return UserOperation(
        sender=account,
        nonce=0,
        call_data=encode_execute(Call(ATTACKER, 100 * 10**18, b"")),
        call_gas_limit=100_000,
        verification_gas_limit=100_000,
        pre_verification_gas=5_000_000,
        max_fee_per_gas=1_000 * 10**9,
        max_priority_fee_per_gas=1_000 * 10**9,
    )


def _as_typed_data(op: UserOperation) -> dict[str, Any]:
    """``op`` as the EIP-712 typed data EntryPoint v0.8 hashes into its userOpHash."""
    return wallet_typed_data(v08_typed_data(op, ENTRY_POINT_V08, CHAIN_ID))


def _wide_grant(account: str, module: str = MODULE, chain_id: int = CHAIN_ID) -> GrantRequest:
    """A grant of a session that may call the attacker's contract, on ``account`` through ``module``."""
    session = Session(
        session_key=SessionKey.generate().address,
        valid_until=2**40,
        permissions=(Policy.call(ATTACKER, "take(address to)", rules=[arg("to") == ATTACKER]),),
    )
    return GrantRequest(
        session=session,
        account=account,
        module=module,
        chain_id=chain_id,
        entry_point=ENTRY_POINT_V08,
        epoch=0,
        session_id=session.session_id(account, 0),
        how="offchain",
    )


def test_the_eoa_owner_signs_no_user_operation_handed_to_it_as_typed_data() -> None:
    """A dapp's "typed data" that is a UserOperation of the EOA's account, in EntryPoint v0.8's domain: its digest is
    the operation's userOpHash, so the EOA's signature of it is the owner's signature of the operation. The SDK
    refuses to sign it in the account's name (an operation is the owner's through ``Owner.execute``)."""
    eoa = LocalSigner.generate()
    op = _draining_operation(eoa.address)
    data = _as_typed_data(op)
    user_op_hash = op.hash(ENTRY_POINT_V08, CHAIN_ID, "0.8")
    assert TypedData(data).digest == user_op_hash  # the premise: the typed data is the operation
    kind = KeyscopeDelegateKind()
    try:
        signature = kind.owner_typed_data_signature(eoa, data, account=eoa.address, chain_id=CHAIN_ID)
    except BadInputError as refused:
        assert "UserOperation" in str(refused) and "nothing was signed" in str(refused)
    else:
        # what the delegate's owner lane would take for the operation: the EOA's signature of its userOpHash
        signer = recover_hash(user_op_hash, kind.owner_user_op_signature(signature))
        pytest.fail(
            f"the owner signed a UserOperation sending 100 ether to the attacker (recovers to {signer})"
        )
    # nor under another name, in another EntryPoint's domain of the same name
    renamed = {**data, "domain": {**data["domain"], "verifyingContract": "0x" + "e9" * 20}}
    with pytest.raises(BadInputError, match="UserOperation"):
        kind.owner_typed_data_signature(eoa, renamed, account=eoa.address, chain_id=CHAIN_ID)


def test_the_eoa_owner_signs_no_session_grant_handed_to_it_as_typed_data() -> None:
    """A dapp's "typed data" that is the session module's grant of a session on the EOA's account: its digest is the
    grant's, so the EOA's signature of it enables the session. The SDK refuses to sign it in the account's name (a
    grant is signed through ``Owner.sign_grant``, which judges it first)."""
    eoa = LocalSigner.generate()
    request = _wide_grant(eoa.address)
    assert TypedData(request.typed_data).digest == request.digest  # the premise: the typed data is the grant
    kind = KeyscopeDelegateKind()
    try:
        signature = kind.owner_typed_data_signature(
            eoa, request.typed_data, account=eoa.address, chain_id=CHAIN_ID
        )
    except BadInputError as refused:
        assert "sign_grant" in str(refused) and "nothing was signed" in str(refused)
    else:
        signer = recover_hash(kind.erc1271_digest(eoa.address, CHAIN_ID, request.digest), signature)
        pytest.fail(f"the owner signed a session grant no judgement saw (recovers to {signer})")


def test_the_eoa_owner_still_signs_a_dapps_ordinary_typed_data() -> None:
    """Typed data of an ordinary application (a mail in its own domain) is signed as before."""
    eoa = LocalSigner.generate()
    data = {
        "types": {"EIP712Domain": _DOMAIN, "Mail": [{"name": "contents", "type": "string"}]},
        "primaryType": "Mail",
        "domain": {
            "name": "Mail",
            "version": "1",
            "chainId": CHAIN_ID,
            "verifyingContract": "0x" + "0c" * 20,
        },
        "message": {"contents": "hello"},
    }
    signature = KeyscopeDelegateKind().owner_typed_data_signature(
        eoa, data, account=eoa.address, chain_id=CHAIN_ID
    )
    assert recover_hash(TypedData(data).digest, signature) == eoa.address


ERC1271_MAGIC = bytes.fromhex("1626ba7e")
IS_VALID_SIGNATURE = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes)


def test_the_owner_of_keyscopes_account_signs_no_session_grant_handed_to_it_as_typed_data(
    harness: Any, module: Any, net: Any, chain: Any
) -> None:
    """The same "typed data" on keyscope's account: the owner's ERC-7739 ``TypedDataSign`` of the grant's typed data
    is taken by the account's ``isValidSignature`` for the grant's digest, from any caller (the module asking it while
    it enables the session included), so it grants the session past ``Owner.sign_grant``'s judgement. The SDK
    refuses to sign it in the account's name."""
    owner = LocalSigner.generate()
    account = harness.create(owner, [(1, module.address, b"")], salt=0)
    request = _wide_grant(account, module=module.address, chain_id=chain.chain_id)
    try:
        signature = net.owner(owner, account).sign_typed_data(request.typed_data)
    except BadInputError as refused:
        assert "sign_grant" in str(refused) and "nothing was signed" in str(refused)
        return
    call = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [request.digest, signature])
    answer = Web3Chain(chain.provider.web3).call(account, call, sender=module.address)[:4]
    assert answer != ERC1271_MAGIC, (
        "the account takes the owner's typed-data signature as its grant of the session"
    )
