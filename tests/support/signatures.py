"""Session signatures made without the SDK's local check: what a leaked session key could sign, for the tests that
show the module (and the verifier) refusing it; and :class:`CountingSigner`, a key that counts what it signs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_utils import keccak

from keyscope.erc1271 import Signer, co_sign_digest, encode_typed_data_signature
from keyscope.grant import SessionGrant
from keyscope.hexutil import to_bytes
from keyscope.keys import SessionKey
from keyscope.message_signing import nested_frames
from keyscope.session_account import SessionAccount
from keyscope.signing import LocalSigner
from keyscope.typed_data import Frames, TypedData, typed_data_sign_hash


class CountingSigner(LocalSigner):
    """A local key (``private_key``, else a new one) that counts what it signs, digests and typed data alike: for the
    tests that show a refused request or grant signs nothing."""

    def __init__(self, private_key: bytes | str | None = None) -> None:
        super().__init__(LocalSigner.generate().private_key if private_key is None else private_key)
        self.signed = 0

    def sign_hash(self, digest: bytes) -> bytes:
        self.signed += 1
        return super().sign_hash(digest)

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        self.signed += 1
        return super().sign_typed_data(typed_data)


def forge_typed_data(
    session: SessionAccount,
    data: Mapping[str, Any],
    *,
    permission: int = 0,
    account: str | None = None,
    chain_id: int | None = None,
    co_signer: LocalSigner | None = None,
    module: str | None = None,
) -> bytes:
    """``session``'s signature of ``data`` under its signing permission ``permission``, unchecked, routed for its
    account kind; ``account`` and ``chain_id`` replace the real ones in the ERC-7739 wrapping; a co-signed session's
    co-signature by ``co_signer`` (none: the key's signature alone); ``module`` replaces the grant's module in the
    wrapping, the co-signature and the routing."""
    grant = session.grant
    module = module or grant.module
    typed = TypedData(data)
    granted = grant.session.typed_data_permissions[permission]
    frames = typed.frames(nested_frames(typed.primary_type, typed.types, granted.nested))
    signed = typed_data_sign_hash(
        granted.domain_separator,
        granted.contents_name,
        granted.contents_type,
        typed.struct_hash,
        account=account or grant.account,
        chain_id=chain_id or grant.chain_id,
        module=module,
    )
    signature = session.key.sign_hash(signed)
    if grant.session.co_signer is None:
        header = Signer(grant.session_key, grant.session_id).header(signature, None)
    else:
        co = None
        if co_signer is not None:
            co = co_signer.sign_hash(
                co_sign_digest(grant.session_id, signed, chain_id=grant.chain_id, module=module)
            )
        header = Signer(grant.session_key, grant.session_id, True, co is not None).header(signature, co)
    body = encode_typed_data_signature(header, granted.domain_separator, granted.contents_type_hash, frames)
    return session.kind.validator_erc1271_signature(module, body)


def sign_raw_words(grant: SessionGrant, key: SessionKey, words: tuple[bytes, ...]) -> bytes:
    """``key``'s signature, under ``grant``'s first signing permission, of a contents struct given as its raw
    words (what no EIP-712 encoder makes when a word is dirty), routed for keyscope's account."""
    granted = grant.session.typed_data_permissions[0]
    signed = typed_data_sign_hash(
        granted.domain_separator,
        granted.contents_name,
        granted.contents_type,
        keccak(granted.contents_type_hash + b"".join(words)),
        account=grant.account,
        chain_id=grant.chain_id,
        module=grant.module,
    )
    header = Signer(key.address, grant.session_id).header(key.sign_hash(signed), None)
    frames = Frames((len(words),), (), words)
    body = encode_typed_data_signature(header, granted.domain_separator, granted.contents_type_hash, frames)
    return to_bytes(grant.module) + body
