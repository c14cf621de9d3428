"""Asking an account that has no code yet whether it takes a signature, with no transaction (the idea of ERC-6492).

``contracts/DeploylessSignatureCheck.sol`` is never deployed: its creation code runs as an ``eth_call`` without
``to``. Its constructor calls the account's factory with the factory data its first UserOperation will carry,
checks that the factory answered the account's address and left code there (the EntryPoint's AA14 and AA15),
asks the new account's ERC-1271 ``isValidSignature``, makes the read-only calls it is given on the account, and
returns the answers. The node throws the call's state away.

:func:`ask_undeployed_account` runs it and raises :class:`~keyscope.errors.UnsupportedAccountError`, naming the
addresses, when the account cannot be created that way (the factory call reverts, or it creates another account).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..artifacts import contract_artifact
from ..chain import call_creation_code
from ..errors import CallRevertedError, UnsupportedAccountError
from ..hexutil import to_address, to_bytes
from ..revert import describe_revert

if TYPE_CHECKING:
    from ..chain import Chain

__all__ = ["DeploylessAnswer", "ask_undeployed_account"]

_FACTORY_CALL_FAILED = keccak(b"FactoryCallFailed(address,bytes)")[:4]
_ACCOUNT_NOT_CREATED = keccak(b"AccountNotCreated(address,address)")[:4]
_ZERO_ADDRESS = "0x" + "00" * 20
_DEPLOY_FIRST = (
    "create the account first (its owner's first operation: Owner.install_sessions() or any owner operation), "
    "then ask for the grant again, or have the dapp send a grant request with the factory and factory_data that "
    "create this account"
)


@dataclass(frozen=True)
class DeploylessAnswer:
    """What the account, created for one ``eth_call``, answered: ``answered`` is whether ``isValidSignature``
    returned (False: it reverted), ``answer`` its return (or revert) data, ``reads`` the return data of each read
    asked for, in order (empty for a read that reverted)."""

    answered: bool
    answer: bytes
    reads: tuple[bytes, ...]

    @property
    def magic(self) -> bytes:
        """The 4 bytes ``isValidSignature`` returned (empty when it reverted or returned less)."""
        return self.answer[:4] if self.answered and len(self.answer) >= 32 else b""


@cache
def _creation_bytecode() -> bytes:
    return to_bytes(contract_artifact("DeploylessSignatureCheck")["bytecode"], name="the checker's bytecode")


def ask_undeployed_account(
    chain: Chain,
    *,
    account: str,
    factory: str,
    factory_data: bytes,
    digest: bytes,
    signature: bytes,
    reads: Sequence[bytes] = (),
) -> DeploylessAnswer:
    """Create ``account`` through ``factory`` (called with ``factory_data``) inside one ``eth_call``, then ask it
    ``isValidSignature(digest, signature)`` and the read-only calls ``reads`` (call data). Raises
    :class:`~keyscope.errors.UnsupportedAccountError` when the factory call reverts or creates another account
    than ``account`` (both addresses named)."""
    account, factory = to_address(account, name="account"), to_address(factory, name="factory")
    arguments = abi_encode(
        ["address", "address", "bytes", "bytes32", "bytes", "bytes[]"],
        [account, factory, bytes(factory_data), bytes(digest), bytes(signature), [bytes(r) for r in reads]],
    )
    try:
        result = call_creation_code(chain, _creation_bytecode() + arguments)
    except CallRevertedError as error:
        raise _not_created(error.data, account, factory) from None
    try:
        answered, answer, read_answers = abi_decode(["bool", "bytes", "bytes[]"], result)
    except Exception:  # eth_abi raises several types for data that is not the encoding
        raise UnsupportedAccountError(
            f"the node answered the deployless check of the account {account} with {len(result)} bytes that are not "
            f"its result (0x{result[:64].hex()}...): the node may not run creation code in eth_call. {_DEPLOY_FIRST}"
        ) from None
    return DeploylessAnswer(bool(answered), bytes(answer), tuple(bytes(r) for r in read_answers))


def _not_created(data: bytes, account: str, factory: str) -> UnsupportedAccountError:
    """The refusal for the checker's revert ``data``."""
    head = f"the account {account} has no code yet, and cannot be created to ask it whether it takes the signature"
    if data[:4] == _FACTORY_CALL_FAILED:
        try:
            (_, reason) = abi_decode(["address", "bytes"], data[4:])
        except Exception:
            reason = b""
        why = (
            f"the call of the factory {factory} with the grant request's factory_data reverted with "
            f"{describe_revert(bytes(reason))}"
            if reason
            else f"the call of the factory {factory} with the grant request's factory_data reverted without a "
            "reason, or the factory has no code"
        )
        return UnsupportedAccountError(
            f"{head}: {why}. A factory that only the EntryPoint may call cannot be asked this way: {_DEPLOY_FIRST}"
        )
    if data[:4] == _ACCOUNT_NOT_CREATED:
        try:
            (_, created) = abi_decode(["address", "address"], data[4:])
            created = to_address(created)
        except Exception:
            created = _ZERO_ADDRESS
        if created == account:
            why = f"the factory {factory} answers its address but leaves it without code"
        elif created == _ZERO_ADDRESS:
            why = f"the factory {factory}, called with the grant request's factory_data, answers no address"
        else:
            why = (
                f"the factory {factory}, called with the grant request's factory_data, creates the account "
                f"{created}, not {account}: the grant request's factory data is not this account's"
            )
        return UnsupportedAccountError(
            f"{head}: {why} (a first operation carrying it would fail with AA14). The grant request must carry the "
            f"factory data that creates {account}: prepare it again with Owner.prepare_grant for this account"
        )
    return UnsupportedAccountError(
        f"{head}: the deployless check reverted with {describe_revert(data)}. {_DEPLOY_FIRST}"
    )
