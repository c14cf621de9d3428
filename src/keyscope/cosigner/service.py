"""The co-signer's policy and the requests it answers (see :mod:`keyscope.cosigner`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..erc1271 import co_sign_digest
from ..errors import BadInputError, KeyscopeError, RaisesBadInput, shown
from ..execution import ExecuteDecodeError, decode_execute
from ..hashing import user_op_hash_v07
from ..hexutil import Address, WireInt, to_address, to_bytes
from ..rpc import INVALID_PARAMS, METHOD_NOT_FOUND
from ..signers import SignerLike, as_signer
from ..signing import HashSigner
from ..typed_data import TypedData, typed_data_sign_hash
from ..userop import UserOperation

__all__ = [
    "INVALID_PARAMS",
    "METHOD_NOT_FOUND",
    "NOT_CO_SIGNED",
    "CoSignPolicy",
    "CoSignRefused",
    "CoSignerService",
]

NOT_CO_SIGNED = -32003


class CoSignRefused(KeyscopeError):
    """The co-signer's refusal, as the JSON-RPC error it answers: ``code``, a message saying why and what to do,
    and ``reason`` (a keyword: ``account``, ``target``, ``value``, ``messages``, ``callData``, ``factory``, ``params``)."""

    def __init__(self, code: int, message: str, reason: str) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        super().__init__(message)

    def to_rpc(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": {"reason": self.reason}}


def _a_bool(value: object) -> bool:
    """``value`` if it is True or False: a text such as ``"false"`` or a number is refused, not read as a bool."""
    if not isinstance(value, bool):
        raise BadInputError(
            "must be True or False (a text or a number is not read as one): write the bool itself"
        )
    return value


class CoSignPolicy(RaisesBadInput, BaseModel):
    """What the co-signer approves: operations of ``accounts`` (None: any) whose calls go to ``targets`` (None: any)
    with at most ``max_value`` wei each, and typed data when ``messages`` is True.

    Built from values it cannot take, it raises :class:`~keyscope.errors.InvalidFieldsError` naming the field:
    ``max_value`` is integer wei (its decimal text too), never a bool or a float (``True`` would be 1 wei, a float
    past 2**53 another number), and ``messages`` is True or False, never a text or a number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: frozenset[Address] | None = None
    targets: frozenset[Address] | None = None
    max_value: WireInt = Field(default=0, ge=0, lt=2**256)
    messages: Annotated[bool, BeforeValidator(_a_bool)] = True


class CoSignerService:
    """Co-signs co-signed sessions' operations and messages with ``key`` for the session module ``module`` on
    ``chain_id`` (operations of the EntryPoint v0.7 ``entry_point``), within ``policy``. ``key`` is the co-signer's
    key in any form :func:`~keyscope.signers.as_signer` takes (a private key, an eth-account ``LocalAccount``, a
    :class:`~keyscope.signing.HashSigner`); anything else is refused here, never shown."""

    def __init__(
        self,
        key: SignerLike,
        *,
        chain_id: int,
        module: str,
        entry_point: str,
        policy: CoSignPolicy | None = None,
    ) -> None:
        # True would be chain 1: co-signatures for another chain than the service's, which its sessions refuse
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
            raise BadInputError(
                f"chain_id must be a positive whole number (the chain's id), got {shown(chain_id)}"
            )
        # a hex key kept as it was given failed at every request (the server's "internal error"), not here
        self.key: HashSigner = as_signer(key, role="co-signer")
        self.chain_id = chain_id
        self.module = to_address(module, name="module")
        self.entry_point = to_address(entry_point, name="entry point")
        if policy is not None and not isinstance(policy, CoSignPolicy):
            # an empty dict is falsy: ``policy or CoSignPolicy()`` read it as the open default policy
            raise BadInputError(
                f"policy must be a CoSignPolicy, got {type(policy).__name__}: build it with CoSignPolicy(**fields) "
                "(or leave it out for a co-signer that approves every account, target and message)"
            )
        self.policy = CoSignPolicy() if policy is None else policy

    def handle(self, method: str, params: Any) -> dict[str, str]:
        """Answer one JSON-RPC call: ``signature``, and what was signed for (``digest``: the userOpHash or ERC-7739
        hash; ``chainId``, ``module``, and ``entryPoint`` for an operation); raises :class:`CoSignRefused`."""
        if method == "keyscope_coSignUserOperation":
            account, session_id, raw = self._params(params, "userOp")
            try:
                op = UserOperation.from_rpc(dict(raw))
            except (ValidationError, KeyscopeError, TypeError, ValueError) as error:
                raise CoSignRefused(INVALID_PARAMS, f"the userOp is malformed: {error}", "params") from None
            if op.sender != account:
                raise CoSignRefused(
                    INVALID_PARAMS, f"the userOp's sender {op.sender} is not {account}", "params"
                )
            if op.is_eip7702:
                raise CoSignRefused(
                    NOT_CO_SIGNED,
                    "the userOp is an EIP-7702 account's (factory 0x7702), which runs on EntryPoint v0.8; this "
                    f"co-signer co-signs operations of the EntryPoint v0.7 at {self.entry_point}",
                    "factory",
                )
            self._judge_operation(op)
            digest = user_op_hash_v07(op.pack(), self.entry_point, self.chain_id)
        elif method == "keyscope_coSignTypedData":
            account, session_id, raw = self._params(params, "typedData")
            if not self.policy.messages:
                raise CoSignRefused(NOT_CO_SIGNED, "this co-signer does not co-sign messages", "messages")
            try:
                typed = TypedData(raw)
                digest = typed_data_sign_hash(
                    typed.domain_separator,
                    typed.primary_type,
                    typed.contents_type,
                    typed.struct_hash,
                    account=account,
                    chain_id=self.chain_id,
                    module=self.module,
                )
            except KeyscopeError as error:
                raise CoSignRefused(
                    INVALID_PARAMS, f"the typed data is malformed: {error}", "params"
                ) from None
        else:
            raise CoSignRefused(
                METHOD_NOT_FOUND,
                f"unknown method {shown(method)}: use keyscope_coSignUserOperation or keyscope_coSignTypedData",
                "method",
            )
        signed = co_sign_digest(session_id, digest, chain_id=self.chain_id, module=self.module)
        answer = {
            "signature": "0x" + self.key.sign_hash(signed).hex(),
            # what it signed for, so that a client can tell a service set up for another chain, module or
            # EntryPoint (whose signature the module refuses) from a co-signer the owner rotated out
            "digest": "0x" + digest.hex(),
            "chainId": hex(self.chain_id),
            "module": self.module,
        }
        if method == "keyscope_coSignUserOperation":
            answer["entryPoint"] = self.entry_point
        return answer

    def _params(self, params: Any, what: str) -> tuple[str, bytes, Mapping[str, Any]]:
        if not isinstance(params, list) or len(params) != 3 or not isinstance(params[2], Mapping):
            raise CoSignRefused(INVALID_PARAMS, f"params are [account, sessionId, {what}]", "params")
        try:
            account = to_address(params[0], name="account")
            session_id = to_bytes(params[1], name="session id", length=32)
        except KeyscopeError as error:
            raise CoSignRefused(INVALID_PARAMS, str(error), "params") from None
        allowed = self.policy.accounts
        if allowed is not None and account not in allowed:
            raise CoSignRefused(
                NOT_CO_SIGNED, f"this co-signer does not co-sign for the account {account}", "account"
            )
        return account, session_id, params[2]

    def _judge_operation(self, op: UserOperation) -> None:
        try:
            calls = decode_execute(op.call_data).calls
        except ExecuteDecodeError as error:
            raise CoSignRefused(
                NOT_CO_SIGNED, f"the callData is not an execute the co-signer reads: {error}", "callData"
            ) from None
        for index, call in enumerate(calls):
            targets = self.policy.targets
            if targets is not None and to_address(call.target) not in targets:
                raise CoSignRefused(
                    NOT_CO_SIGNED,
                    f"call {index} goes to {call.target}, which this co-signer does not approve",
                    "target",
                )
            if call.value > self.policy.max_value:
                raise CoSignRefused(
                    NOT_CO_SIGNED,
                    f"call {index} carries {call.value} wei, above the co-signer's limit of {self.policy.max_value}",
                    "value",
                )
