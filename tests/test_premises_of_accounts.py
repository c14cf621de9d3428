"""Premises docs/accounts.md states about the SDK's account adapters, checked as worded.

"``Owner.sign_typed_data`` signs ... for the delegate, none that is a UserOperation (EntryPoint v0.8's ``ERC4337``
domain, or a primary type named as one)". ``tests/test_attacks_owner_typed_data.py`` tries typed data in the
``ERC4337`` domain (naming the EntryPoint or another contract); the second half, a primary type named as a
UserOperation in a domain of another name, was never tried alone: a check reading the domain only passed every test.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.accounts.delegate import KeyscopeDelegateKind
from keyscope.errors import BadInputError
from keyscope.signing import LocalSigner, recover_hash
from keyscope.typed_data import TypedData

CHAIN_ID = 31337
_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _operation_typed_data(primary_type: str, name: str) -> dict[str, Any]:
    """Typed data whose primary type is ``primary_type`` (an operation's fields) in a domain named ``name``."""
    return {
        "types": {
            "EIP712Domain": _DOMAIN,
            primary_type: [
                {"name": "sender", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "callData", "type": "bytes"},
            ],
        },
        "primaryType": primary_type,
        "domain": {"name": name, "version": "1", "chainId": CHAIN_ID, "verifyingContract": "0x" + "e9" * 20},
        "message": {"sender": "0x" + "ac" * 20, "nonce": 0, "callData": "0x12345678"},
    }


@pytest.mark.parametrize("primary_type", ["PackedUserOperation", "UserOperation", "UserOperationV7"])
@pytest.mark.parametrize("name", ["ERC4337 ", "EntryPoint", "Relay"])
def test_the_eoa_owner_signs_no_typed_data_whose_primary_type_is_named_as_an_operation(
    primary_type: str, name: str
) -> None:
    """A primary type named as a UserOperation, in a domain of another name than ``ERC4337``: refused before the
    EOA's key signs, saying it is a UserOperation and that nothing was signed."""
    eoa = LocalSigner.generate()
    data = _operation_typed_data(primary_type, name)
    with pytest.raises(BadInputError, match="is a UserOperation") as refused:
        KeyscopeDelegateKind().owner_typed_data_signature(eoa, data, account=eoa.address, chain_id=CHAIN_ID)
    assert "nothing was signed" in str(refused.value)


def test_the_eoa_owner_signs_the_same_fields_under_a_primary_type_of_another_name() -> None:
    """The refusal goes by the operation's name, not by its fields: the same fields as an ``Order`` in the same
    domain are signed, the EOA's bare signature of the typed data's digest."""
    eoa = LocalSigner.generate()
    data = _operation_typed_data("Order", "Relay")
    signature = KeyscopeDelegateKind().owner_typed_data_signature(
        eoa, data, account=eoa.address, chain_id=CHAIN_ID
    )
    assert recover_hash(TypedData(data).digest, signature) == eoa.address


ACCOUNT = "0x" + "ac" * 20


@pytest.mark.parametrize(
    "reported", ["kernel.advanced.v0.3.10", "kernel.advanced.v0.3.1x", "kernel.advanced.v0.3.11"]
)
def test_the_kernel_adapter_given_is_refused_on_another_version_that_starts_like_its_own(
    monkeypatch: pytest.MonkeyPatch, reported: str
) -> None:
    """accounts.md: the Kernel adapter is made for ``kernel.advanced.v0.3.1`` ("that ``accountId()`` exactly"),
    detection refuses other Kernel versions, and "a ``kind=`` given explicitly is checked against a deployed
    account's ``accountId()``": the v0.3.1 adapter given for an account reporting a later version whose name merely
    starts with ``v0.3.1`` must be refused as detection refuses it, not taken as its own version; its own
    ``accountId()`` is still taken, and so is a subclass's own version."""
    from keyscope.accounts import KernelAccountKind, resolve
    from keyscope.errors import AccountSetupError

    answers = {"id": reported}
    monkeypatch.setattr(resolve, "refuse_non_erc7579", lambda chain, account, kind=None: answers["id"])
    with pytest.raises(AccountSetupError, match=f"reports accountId\\(\\) '{reported}'"):
        resolve.check_kind(None, KernelAccountKind(), ACCOUNT)  # type: ignore[arg-type]
    answers["id"] = "kernel.advanced.v0.3.1"
    resolve.check_kind(None, KernelAccountKind(), ACCOUNT)  # type: ignore[arg-type]

    class KernelV033(KernelAccountKind):
        account_id_prefix = "kernel.advanced.v0.3.3"

    answers["id"] = "kernel.advanced.v0.3.3"
    resolve.check_kind(None, KernelV033(), ACCOUNT)  # type: ignore[arg-type]
    answers["id"] = "kernel.advanced.v0.3.30"
    with pytest.raises(AccountSetupError):
        resolve.check_kind(None, KernelV033(), ACCOUNT)  # type: ignore[arg-type]
