"""Checks of the session module that no earlier test made on py-evm: each was written for a weakened check that the
other fast tests let through (docs/static-analysis.md, "Mutation testing"), and each fails without the check it
names."""

from __future__ import annotations

from typing import Any

import pytest
from ape.exceptions import ContractLogicError
from eth_utils import keccak

from keyscope import Policy, arg
from keyscope.erc1271 import Signer, encode_typed_data_signature
from keyscope.message_signing import nested_frames
from keyscope.session import Session
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData, eip191_hash
from support.permit_types import PERMIT_TYPES
from support.strict_reverts import revert_data

WEBSITE = "app.example.com"
VERIFIER = "0x" + "33" * 20  # the contract asking the account (neither the account nor the module)
PERMIT_DOMAIN = {"name": "Token", "version": "1", "chainId": 1, "verifyingContract": "0x" + "44" * 20}
FIRST_LINE = f"{WEBSITE} wants you to sign in with your Ethereum account:\n".encode()


def _refusal(module: Any, account: str, hash_: bytes, signature: bytes) -> str:
    """The name of the module's error refusing ``signature`` of ``hash_`` for ``account``, asked by ``VERIFIER``
    ("" for a revert that carries no data)."""
    names = {
        keccak(text=f"{e.name}({','.join(i.type for i in e.inputs)})")[:4]: e.name
        for e in module.contract_type.abi
        if e.type == "error"
    }
    with pytest.raises(ContractLogicError) as refused:
        module.requireValidSignature(account, VERIFIER, hash_, signature)
    if type(refused.value).__name__ != "ContractLogicError":
        return type(refused.value).__name__
    data = revert_data(refused.value) or b""
    return names.get(data[:4], "")


def _sign_in(account: str, key: str) -> tuple[bytes, bytes]:
    """A sign-in message for ``account`` on ``WEBSITE``, and a session signature of it naming the session key
    ``key``, its ECDSA signature zeroed (the checks these tests aim at come before the key's)."""
    message = FIRST_LINE + account.encode() + b"\n\nURI: https://app.example.com\nVersion: 1"
    signature = (
        b"\x02\x00" + bytes.fromhex(key[2:]) + bytes(65) + len(FIRST_LINE).to_bytes(2, "big") + message
    )
    return message, signature


def _kernel_wrapped(fields: int, account: str, chain_id: int, inner: bytes) -> bytes:
    """``inner`` wrapped as Kernel wraps a verifier's hash (``Kernel(bytes32 hash)``) in the EIP-712 domain of
    ``KernelDomainAccount`` with the ERC-5267 ``fields`` (name, version, chain, the account; no salt)."""
    members, values = [], b""
    if fields & 0x01:
        members.append(b"string name")
        values += keccak(b"Kernel")
    if fields & 0x02:
        members.append(b"string version")
        values += keccak(b"0.3.1")
    if fields & 0x04:
        members.append(b"uint256 chainId")
        values += chain_id.to_bytes(32, "big")
    if fields & 0x08:
        members.append(b"address verifyingContract")
        values += bytes(12) + bytes.fromhex(account[2:])
    separator = keccak(keccak(b"EIP712Domain(" + b",".join(members) + b")") + values)
    return keccak(b"\x19\x01" + separator + keccak(keccak(b"Kernel(bytes32 hash)") + inner))


def test_kernels_wrapping_counts_only_in_a_domain_that_names_the_account_and_the_chain(
    project, deployer, module, accounts, chain
):
    """An account wrapping hashes as Kernel does passes the module the EIP-712 hash of ``Kernel(bytes32 hash)`` in
    its own domain (ERC-5267 ``eip712Domain()``); the module takes it only when the domain's bitmap names both the
    chain and the account, its values are this chain and the asking account, and it has no extension. An account
    answering the bitmap without one of them (but its values all the same), or answering another chain, another
    verifying contract or an extension, gets ``ContentsMismatch`` for the wrapping made in that domain, which would
    hold on every chain, or for every account answering that domain, or in a domain the module cannot rebuild; the
    wrapping in the full domain passes that check (it is then refused for its zeroed signature). An account without code answers the domain question with success and no bytes: it gets
    ``ContentsMismatch`` too, not a revert without reason from decoding nothing."""
    account = project.KernelDomainAccount.deploy(sender=deployer)
    key = LocalSigner.generate()
    session = Session(session_key=key.address, sign_in=(WEBSITE,))
    account.run(module.address, module.enableSession.encode_input(session.as_abi()), sender=deployer)
    message, signature = _sign_in(account.address, key.address)
    inner = eip191_hash(message)
    assert _refusal(module, account.address, inner, signature) == "InvalidSessionSignature"
    assert (
        _refusal(
            module, account.address, _kernel_wrapped(0x0F, account.address, chain.chain_id, inner), signature
        )
        == "InvalidSessionSignature"
    )
    other = accounts[6].address
    for fields, chain_id, verifying in (
        (0x07, chain.chain_id, account.address),  # no verifying contract
        (0x0B, chain.chain_id, account.address),  # no chain
        (0x03, chain.chain_id, account.address),  # neither
        (0x0F, chain.chain_id + 1, account.address),  # another chain
        (0x0F, chain.chain_id, other),  # another verifying contract (as a proxy naming its implementation)
    ):
        account.setDomain(bytes([fields]), chain_id, verifying, sender=deployer)
        wrapped = _kernel_wrapped(fields, verifying, chain_id, inner)
        assert _refusal(module, account.address, wrapped, signature) == "ContentsMismatch", (fields, chain_id)

    # the full domain, but with an extension: a domain the module cannot rebuild, whatever the wrapping says
    account.setDomain(b"\x0f", chain.chain_id, account.address, sender=deployer)
    account.setExtensions([7739], sender=deployer)
    wrapped = _kernel_wrapped(0x0F, account.address, chain.chain_id, inner)
    assert _refusal(module, account.address, wrapped, signature) == "ContentsMismatch"

    codeless = accounts[7]
    module.enableSession(session.as_abi(), sender=codeless)
    message, signature = _sign_in(codeless.address, key.address)
    wrapped = _kernel_wrapped(0x0F, codeless.address, chain.chain_id, eip191_hash(message))
    assert _refusal(module, codeless.address, wrapped, signature) == "ContentsMismatch"


def test_a_signing_session_s_start_is_read_from_all_48_bits(module, accounts, chain):
    """A signing permission's header keeps the session's validAfter in 48 bits. A session granted to start at
    2**47 + 1 signs nothing now: its sign-in is refused with ``SignatureOutsideWindow`` naming that start. Were the
    start read from 47 bits it would be 1, long past, and the session would sign from its grant on."""
    codeless = accounts[8]
    key = LocalSigner.generate()
    start = 2**47 + 1
    session = Session(session_key=key.address, sign_in=(WEBSITE,), valid_after=start)
    module.enableSession(session.as_abi(), sender=codeless)
    message, signature = _sign_in(codeless.address, key.address)
    with pytest.raises(ContractLogicError) as refused:
        module.requireValidSignature(codeless.address, VERIFIER, eip191_hash(message), signature)
    data = revert_data(refused.value) if type(refused.value).__name__ == "ContractLogicError" else None
    if data is None:
        assert type(refused.value).__name__ == "SignatureOutsideWindow"
        assert refused.value.inputs["validAfter"] == start
    else:
        selector = keccak(b"SignatureOutsideWindow(uint256,uint256,uint256)")[:4]
        assert data[:4] == selector
        assert int.from_bytes(data[36:68], "big") == start


def test_a_typed_data_refusal_names_the_permission_it_was_judged_under(module, accounts):
    """A session's signing permissions are numbered in the grant's order, and each header word keeps its number.
    A permit over the second permission's rule (``value`` at most 100) is refused with ``SignedRuleViolated``
    naming permission 1, rule 0 and the value signed: read from the header shifted one bit too far, the number
    would be 0, and the refusal would send whoever reads it to the wrong permission. The session key's ECDSA is
    zeroed: the rules are judged before it."""
    codeless = accounts[5]
    key = LocalSigner.generate()
    mail = Policy.typed_data(
        PERMIT_DOMAIN,
        {"Mail": [{"name": "to", "type": "address"}, {"name": "note", "type": "string"}]},
        "Mail",
    )
    permit = Policy.typed_data(PERMIT_DOMAIN, PERMIT_TYPES, "Permit", [arg("value") <= 100])
    session = Session(session_key=key.address, typed_data_permissions=(mail, permit))
    module.enableSession(session.as_abi(), sender=codeless)
    data = TypedData(
        {
            "types": PERMIT_TYPES,
            "primaryType": "Permit",
            "domain": PERMIT_DOMAIN,
            "message": {
                "owner": codeless.address,
                "spender": VERIFIER,
                "value": 101,
                "nonce": 0,
                "deadline": 1,
            },
        }
    )
    frames = data.frames(nested_frames(data.primary_type, data.types, permit.nested))
    header = Signer(key.address, b"").header(bytes(65), None)
    body = encode_typed_data_signature(header, permit.domain_separator, permit.contents_type_hash, frames)
    with pytest.raises(ContractLogicError) as refused:
        module.requireValidSignature(codeless.address, VERIFIER, data.digest, body)
    raw = revert_data(refused.value) if type(refused.value).__name__ == "ContractLogicError" else None
    if raw is None:
        assert type(refused.value).__name__ == "SignedRuleViolated"
        inputs = refused.value.inputs
        assert (inputs["permissionIndex"], inputs["ruleIndex"]) == (1, 0)
        assert int.from_bytes(bytes(inputs["actual"]), "big") == 101
    else:
        assert raw[:4] == keccak(b"SignedRuleViolated(uint256,uint256,bytes32)")[:4]
        assert [int.from_bytes(raw[4 + 32 * i : 36 + 32 * i], "big") for i in range(3)] == [1, 0, 101]
