"""The owner's wallet path: a grant request's typed data is the JSON ``eth_signTypedData_v4`` takes, and
``complete(signature)`` checks the signature as the module will (through the account's ERC-1271; on an account
without code, through the account created for one eth_call when the request was read back with the network, else
locally against the key of the owner that made it), so that a bad one is refused at once, not as an AA23 at the
first send.

Also the owner's UserOperation on keyscope's account signed as a browser wallet signs (``personal_sign``, the
EIP-191 message hash of the userOpHash): wallets sign no bare hash.
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keyscope import Policy, SessionGrant, SessionKey, arg
from keyscope.accounts import MODULE_TYPE_VALIDATOR, KeyscopeAccountKind, create_account_data
from keyscope.errors import (
    AccountSetupError,
    ConfigurationError,
    InvalidGrantSignatureError,
    UnsupportedAccountError,
)
from keyscope.execution import Call, encode_execute
from keyscope.grant_signature import check_grant_signature
from keyscope.hexutil import to_address
from keyscope.owner import GrantRequest
from keyscope.session import Session
from keyscope.signing import LocalSigner, recover_hash
from keyscope.typed_data import MAX_SAFE_INTEGER, wallet_typed_data
from support.strategies import addresses, sessions

KIND = KeyscopeAccountKind()


def _grant(session: Session, account: str, chain_id: int = 31337, epoch: int = 0) -> GrantRequest:
    module = "0x" + "11" * 20
    return GrantRequest(
        session=session,
        account=account,
        module=module,
        chain_id=chain_id,
        entry_point="0x0000000071727De22E5E9d8BAf0edAc6f37da032",
        epoch=epoch,
        session_id=session.session_id(account, epoch),
        how="offchain",
    )


# --------------------------------------------------------------------------------------------------
# typed data as JSON
# --------------------------------------------------------------------------------------------------


def _numbers(value: object) -> list[int]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


@settings(max_examples=60, deadline=None)
@given(session=sessions(), account=addresses, chain_id=st.integers(1, 2**64), epoch=st.integers(0, 2**32 - 1))
def test_typed_data_is_json_a_wallet_signs_to_the_same_digest(
    session: Session, account: str, chain_id: int, epoch: int
) -> None:
    # the module refuses such grants: a permission on the account itself, the account listed as a paymaster
    assume(all(p.target != account for p in session.permissions) and account not in session.paymasters)
    request = _grant(session, account, chain_id, epoch)
    text = json.dumps(request.typed_data)  # raised TypeError on the selector's bytes before
    parsed = json.loads(text)
    # what a wallet signs from that text is the digest the module checks
    signable = encode_typed_data(full_message=parsed)
    key = Account.create()
    signature = Account.sign_message(signable, key.key).signature
    assert recover_hash(request.digest, bytes(signature)) == key.address
    # and no number a JavaScript wallet would round
    assert all(abs(n) <= MAX_SAFE_INTEGER for n in _numbers(parsed))


def test_large_words_travel_as_decimal_strings_and_bytes_as_hex() -> None:
    typed = {
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"}],
            "M": [
                {"name": "big", "type": "uint256[]"},
                {"name": "b", "type": "bytes4"},
                {"name": "n", "type": "int256"},
            ],
        },
        "primaryType": "M",
        "domain": {"chainId": 1},
        "message": {"big": [2**53 - 1, 2**53, 2**256 - 1], "b": b"\x12\x34\x56\x78", "n": -(2**200)},
    }
    converted = wallet_typed_data(typed)
    assert converted["message"] == {
        "big": [2**53 - 1, str(2**53), str(2**256 - 1)],
        "b": "0x12345678",
        "n": str(-(2**200)),
    }
    assert converted["domain"] == {"chainId": 1}
    assert encode_typed_data(full_message=converted).body == encode_typed_data(full_message=typed).body


# --------------------------------------------------------------------------------------------------
# complete() checks the signature: locally while the account has no code
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def session() -> Session:
    target = "0x" + "22" * 20
    return Session(
        session_key=SessionKey.generate().address,
        valid_until=2**40,
        permissions=(Policy.call(target, "mint(address to)", rules=[arg("to") == target]),),
    )


def test_a_junk_signature_is_refused_at_complete(session: Session) -> None:
    owner = LocalSigner.generate()
    request = _grant(session, "0x" + "33" * 20).model_copy(update={"owner": owner.address})
    with pytest.raises(InvalidGrantSignatureError, match="recovers to 0x") as refused:
        request.complete(b"\x01" * 65)  # someone's signature, not the owner's
    assert refused.value.owner == owner.address and refused.value.recovered not in (None, owner.address)
    assert "eth_signTypedData_v4" in str(refused.value)
    with pytest.raises(InvalidGrantSignatureError) as refused:
        request.complete(bytes(64) + b"\x1b")  # r = s = 0: nobody's
    assert refused.value.recovered is None
    assert (
        "it is 65 bytes (0x0000000000000000…000000000000001b) and recovers to no key, not to the owner"
        in str(refused.value)
    )
    with pytest.raises(InvalidGrantSignatureError, match="it is empty and recovers to no key"):
        request.complete("0x")


def test_a_truncated_signature_is_refused_showing_its_length_and_hex(session: Session) -> None:
    """A signature cut short (a copy-paste that lost digits) is shown as what it is, in hex, beside the length an
    ECDSA signature has, so that the mistake is seen in the message."""
    owner = LocalSigner.generate()
    request = _grant(session, "0x" + "33" * 20).model_copy(update={"owner": owner.address})
    signature = owner.sign_typed_data(request.typed_data)
    with pytest.raises(InvalidGrantSignatureError) as refused:
        request.complete("0x1234")
    assert "it is 2 bytes (0x1234) and recovers to no key (an ECDSA signature is 65 bytes)" in str(
        refused.value
    )
    with pytest.raises(InvalidGrantSignatureError) as refused:
        request.complete(signature[:64])
    said = str(refused.value)
    assert f"it is 64 bytes (0x{signature[:8].hex()}…{signature[56:64].hex()})" in said, said
    assert "(an ECDSA signature is 65 bytes)" in said and f"not to the owner {owner.address}" in said
    assert request.complete(signature).owner_signature == signature


def test_a_signature_by_another_key_is_refused_naming_both(session: Session) -> None:
    owner, stranger = LocalSigner.generate(), LocalSigner.generate()
    request = _grant(session, "0x" + "33" * 20).model_copy(update={"owner": owner.address})
    with pytest.raises(InvalidGrantSignatureError) as refused:
        request.complete(stranger.sign_typed_data(request.typed_data))
    assert refused.value.recovered == stranger.address
    assert f"recovers to {stranger.address}, not to the owner {owner.address}" in str(refused.value)
    # a signature for another chain (the wallet on the wrong network) is another key's too
    other_chain = _grant(session, request.account, chain_id=1).model_copy(update={"owner": owner.address})
    with pytest.raises(InvalidGrantSignatureError):
        request.complete(owner.sign_typed_data(other_chain.typed_data))


def test_the_owners_signature_completes_and_survives_json(session: Session) -> None:
    owner = LocalSigner.generate()
    request = _grant(session, "0x" + "33" * 20).model_copy(update={"owner": owner.address})
    signature = owner.sign_typed_data(json.loads(json.dumps(request.typed_data)))
    grant = request.complete("0x" + signature.hex())
    assert type(grant) is SessionGrant and grant.owner_signature == signature
    assert SessionGrant.from_json(grant.to_json()) == grant
    # read back from JSON (the dapp's backend between two requests), the request still knows its owner
    again = GrantRequest.model_validate_json(request.model_dump_json())
    assert again.owner == owner.address and again.complete(signature) == grant


def test_without_owner_or_chain_nothing_can_judge(session: Session) -> None:
    request = _grant(session, "0x" + "33" * 20)
    with pytest.raises(ConfigurationError, match="owner's address is unknown"):
        request.complete(LocalSigner.generate().sign_hash(request.digest))


# --------------------------------------------------------------------------------------------------
# through the account's ERC-1271 once it has code (py-evm, the real EntryPoint and module)
# --------------------------------------------------------------------------------------------------


def test_on_a_deployed_account_the_account_judges(net, nft, harness) -> None:
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account)
    owner.execute(Call(nft.address, 0, nft.safeMint.encode_input(owner.account))).wait()  # now deployed
    key = SessionKey.generate()
    request = owner.prepare_grant(key, [Policy.call(nft, "safeMint(address to)")], valid_for=3600)
    # junk: refused, naming the owner
    with pytest.raises(InvalidGrantSignatureError, match="the account refuses it too"):
        request.complete(b"\x01" * 65)
    # read back from JSON with the network: the account is asked, the owner's key compared
    stored = GrantRequest.model_validate_json(request.model_dump_json())
    stranger = LocalSigner.generate()
    with pytest.raises(InvalidGrantSignatureError, match=f"recovers to {stranger.address}"):
        stored.complete(stranger.sign_typed_data(stored.typed_data), network=net)
    # an unknown owner: the account alone judges, and says what is wrong
    anonymous = stored.model_copy(update={"owner": None})
    with pytest.raises(AccountSetupError, match="refuses the owner's signature"):
        anonymous.complete(stranger.sign_typed_data(stored.typed_data), network=net)
    good = signer.sign_typed_data(stored.typed_data)
    grant = anonymous.complete(good, network=net)
    net.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait()
    assert nft.balanceOf(owner.account) == 2


def test_on_an_account_without_code_a_request_read_back_is_judged_by_the_account_created_for_the_check(
    net, nft
) -> None:
    """A request read back from JSON names its own ``owner``, which no signature covers: with the network, the
    account without code is created for one eth_call by the request's factory call and asked (ERC-6492's deployless
    check), so a key the request merely names is refused and the owner's own signature passes; nothing is created.
    A request whose factory data creates another account, whose factory call reverts, or that names no factory is
    refused, saying what to do."""
    signer, stranger = LocalSigner.generate(), LocalSigner.generate()
    owner = net.owner(signer)
    request = owner.prepare_grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], valid_for=3600
    )
    stored = GrantRequest.model_validate_json(request.model_dump_json())
    forged = stored.model_copy(update={"owner": stranger.address})
    with pytest.raises(InvalidGrantSignatureError, match=f"not to the owner {signer.address}") as info:
        forged.complete(stranger.sign_typed_data(stored.typed_data), network=net)
    assert info.value.recovered == stranger.address and info.value.owner == signer.address
    grant = forged.complete(signer.sign_typed_data(stored.typed_data), network=net)
    assert grant.owner_signature == signer.sign_typed_data(stored.typed_data)
    assert not owner.is_deployed()

    # the stranger's own account's factory data, in a request for the owner's account
    theirs = net.owner(stranger).account
    modules = [(MODULE_TYPE_VALIDATOR, net.module, b"")]
    elsewhere = forged.model_copy(update={"factory_data": create_account_data(stranger.address, modules)})
    with pytest.raises(UnsupportedAccountError, match=f"creates the account {theirs}, not {owner.account}"):
        elsewhere.complete(stranger.sign_typed_data(stored.typed_data), network=net)
    junk = forged.model_copy(update={"factory_data": bytes.fromhex("deadbeef")})
    with pytest.raises(
        UnsupportedAccountError, match=f"factory {net.factory} .* reverted.*create the account first"
    ):
        junk.complete(stranger.sign_typed_data(stored.typed_data), network=net)
    nameless = forged.model_copy(update={"factory": None, "factory_data": b""})
    with pytest.raises(UnsupportedAccountError, match=r"names no factory.*Create the account first"):
        nameless.complete(stranger.sign_typed_data(stored.typed_data), network=net)


def _for_account(request: GrantRequest, account: str, **fields: object) -> GrantRequest:
    """``request``'s session granted on another ``account`` (its id recomputed), with ``fields`` changed."""
    return GrantRequest.model_validate(
        {
            **request.model_dump(),
            "account": account,
            "session_id": request.session.session_id(account, request.epoch),
            **fields,
        }
    )


def test_an_account_without_code_created_without_the_session_module_is_named(net, nft) -> None:
    """keyscope's account takes its owner's bare signature only when an installed validator asks, a rule the check
    applies with what the created account holds: an account its factory data creates without the session module
    is named, not passed (the module would never be asked)."""
    signer = LocalSigner.generate()
    request = net.owner(signer).prepare_grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], valid_for=3600
    )
    bare = to_address(net.chain.call(net.factory, create_account_data(signer.address, [], view=True))[12:32])
    without = _for_account(request, bare, factory_data=create_account_data(signer.address, []))
    with pytest.raises(AccountSetupError, match=f"does not have the session module {net.module} installed"):
        without.complete(signer.sign_typed_data(without.typed_data), network=net)


def test_an_eoa_not_upgraded_yet_is_judged_by_its_own_key(net, nft) -> None:
    """An EOA that has not delegated its code yet (EIP-7702) has no factory call to create it, and needs none: its
    own key is its owner, so the signature must recover to the account's address, whatever owner the request
    names."""
    eoa, stranger = LocalSigner.generate(), LocalSigner.generate()
    request = net.owner(LocalSigner.generate()).prepare_grant(
        SessionKey.generate(), [Policy.call(nft, "safeMint(address to)")], valid_for=3600
    )
    upgraded_later = _for_account(
        request,
        eoa.address,
        account_kind="keyscope-7702",
        factory=None,
        factory_data=b"",
        owner=stranger.address,
    )
    with pytest.raises(InvalidGrantSignatureError, match=f"not to the owner {eoa.address}"):
        upgraded_later.complete(stranger.sign_typed_data(upgraded_later.typed_data), network=net)
    grant = upgraded_later.complete(eoa.sign_typed_data(upgraded_later.typed_data), network=net)
    assert grant.account == eoa.address


def test_the_check_fails_open_without_it(session: Session) -> None:
    """What the check stops: without it, a junk signature makes a grant (which fails only at the first send)."""
    request = _grant(session, "0x" + "33" * 20).model_copy(update={"owner": LocalSigner.generate().address})
    unchecked = request.complete(b"\x01" * 65, check=False)
    assert unchecked.owner_signature == b"\x01" * 65
    with pytest.raises(InvalidGrantSignatureError):
        check_grant_signature(
            unchecked, b"\x01" * 65, kind=KIND, owner=request.owner, endpoints=None, deployed=False
        )


# --------------------------------------------------------------------------------------------------
# the owner's operation signed as a browser wallet signs it
# --------------------------------------------------------------------------------------------------


def _personal_sign(signer: LocalSigner, digest: bytes) -> bytes:
    """What ``personal_sign(0x<digest>)`` returns: the ECDSA signature of the EIP-191 message hash of the 32
    bytes."""
    return bytes(Account.sign_message(encode_defunct(primitive=digest), signer.private_key).signature)


def test_owner_operation_signed_with_personal_sign(harness, sessions, owner) -> None:
    account = sessions.account(owner)
    op = harness.op(account, encode_execute(Call(harness.funder.address, 0, b"")))
    digest = harness.hash(op)
    receipt = harness.submit(op.replace(signature=_personal_sign(owner, digest)))
    assert receipt.success
    # another key's personal_sign is refused (AA24), as its plain signature is
    stranger = LocalSigner.generate()
    op = harness.op(account, encode_execute(Call(harness.funder.address, 0, b"")))
    rejected = harness.rejected(op.replace(signature=_personal_sign(stranger, harness.hash(op))))
    assert rejected.reason == "AA24"
