"""The SDK's check of an owner's grant signature and keyscope's account, on generated signatures: the same verdict.

Since attack 259 the account takes its owner's bare signature of a digest only from the validator it is asking to
validate one of its operations, while it does: the session module checking a grant in ENABLE mode. No ``eth_call``
can be that validator, so the SDK (``accounts.verify.verify_owner_signature``, run before a grant is handed out)
judges a bare signature by the rule itself, and asks the account about every other form. Here each generated
signature is judged twice: by the SDK, and by the real ENABLE operation through the EntryPoint (the session enabled
and its call made, or refused). The forms: the owner's bare signature of the grant, its high-s twin, the owner's
ERC-7739 signature bound to the account, the same of another digest or by another key, a bare signature behind the
module's address, and junk of any length. The examples run on a fresh anvil of the file's own (the EntryPoint, the
factory and the module are ape's build of their sources there, with the in-process bundler on it).
"""

from __future__ import annotations

from collections import Counter
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from keyscope import Web3Chain
from keyscope.accounts.keyscope_account import KeyscopeAccountKind
from keyscope.accounts.verify import verify_owner_signature
from keyscope.errors import AccountSetupError
from keyscope.execution import Call
from keyscope.hexutil import keccak, to_address
from keyscope.owner_signatures import encode_owner_typed_data_signature, nested_typed_data
from keyscope.session import Permission, Session
from keyscope.signing import LocalSigner
from support.anvil_fixtures import anvil_fixture, sessions_fixture  # noqa: F401 (fixtures)
from support.fuzz import DEEP, ON_CHAIN

EXAMPLES = 200 if DEEP else 40
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FORMS = (
    "owner bare",
    "owner bare, high s",
    "owner bound",
    "owner bare of another digest",
    "owner bound of another digest",
    "stranger bare",
    "stranger bound",
    "behind the module",
    "junk",
)
TALLY: Counter[str] = Counter()
SALTS = count(1)


def high_s(signature: bytes) -> bytes:
    """The same ECDSA signature with ``s`` replaced by ``n - s`` and ``v`` flipped: valid for ``ecrecover``, refused
    by OpenZeppelin's ECDSA (malleable)."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v if v in (27, 28) else v ^ 1])


@pytest.fixture(scope="module")
def grant_account(sessions):
    owner = LocalSigner.generate()
    return owner, sessions.account(owner)


def test_the_sdk_and_the_account_judge_an_owners_grant_signature_alike(
    sessions, grant_account, session_key, anvil
):
    owner, account = grant_account
    stranger = LocalSigner.generate()
    web3_chain = Web3Chain(Web3(Web3.HTTPProvider(anvil[0].url)))
    kind = KeyscopeAccountKind()
    TALLY.clear()

    @settings(max_examples=EXAMPLES, database=None, **ON_CHAIN)
    @given(form=st.sampled_from(FORMS), junk=st.binary(max_size=140))
    def agree(form: str, junk: bytes) -> None:
        # a fresh session and target each time: an active session is not asked about again, and one key's two
        # sessions may not grant one (target, selector)
        salt = next(SALTS)
        target = to_address(keccak(b"keyscope grant signature target %d" % salt)[12:])
        session = Session(
            session_key=session_key.address,
            permissions=(Permission(target=target, selector=bytes(4), value_limit=0),),
            salt=salt,
        )
        epoch, chain_id, module = sessions.epoch(account), sessions.h.chain_id, sessions.module.address
        digest = session.enable_digest(account, epoch, chain_id, module)
        data = session.typed_data(account, epoch, chain_id, module)
        other = Session(session_key=session.session_key, permissions=session.permissions, salt=salt + 10**9)
        other_digest = other.enable_digest(account, epoch, chain_id, module)
        other_data = other.typed_data(account, epoch, chain_id, module)

        def bound(signer: LocalSigner, typed: dict) -> bytes:
            # the ERC-7739 form made by hand: the SDK's owner_typed_data_signature refuses a grant's typed data
            # (attack 317), which the account takes all the same
            nested = nested_typed_data(typed, account=account, chain_id=chain_id)
            return encode_owner_typed_data_signature(signer.sign_typed_data(nested), typed)

        signature = {
            "owner bare": lambda: owner.sign_hash(digest),
            "owner bare, high s": lambda: high_s(owner.sign_hash(digest)),
            "owner bound": lambda: bound(owner, data),
            "owner bare of another digest": lambda: owner.sign_hash(other_digest),
            "owner bound of another digest": lambda: bound(owner, other_data),
            "stranger bare": lambda: stranger.sign_hash(digest),
            "stranger bound": lambda: bound(stranger, data),
            "behind the module": lambda: bytes.fromhex(module[2:]) + owner.sign_hash(digest),
            "junk": lambda: junk,
        }[form]()
        try:
            verify_owner_signature(web3_chain, kind, account, module, digest, signature)
        except AccountSetupError:
            sdk = False
        else:
            sdk = True
        op = sessions.enable_op(account, session_key, session, signature, Call.of(target, 0, b""))
        outcome = sessions.outcome(op)
        assert sdk == (outcome == "ok"), f"{form}: the SDK says {sdk}, the account's ENABLE {outcome}"
        TALLY[f"{form}: {'taken' if sdk else 'refused'}"] += 1

    agree()
    print("\nowner grant signatures:", ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items())))
    assert TALLY["owner bare: taken"] and TALLY["owner bound: taken"] and TALLY["stranger bare: refused"], (
        TALLY
    )
