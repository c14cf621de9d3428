"""The SDK's side of a co-signer service: a :data:`~keyscope.co_signer.CoSigner` that asks it over JSON-RPC."""

from __future__ import annotations

from typing import Any

from ..co_signer import CoSigner, CoSignerRefusedError, CoSignRequest
from ..errors import BadInputError, ConfigurationError, TransportError, shown
from ..hexutil import to_bytes
from ..rpc import JsonRpcClient, JsonRpcError

__all__ = ["remote_co_signer"]


def remote_co_signer(url: str, *, timeout: float = 10.0) -> CoSigner:
    """A co-signer that asks the co-signer service at ``url`` (see :mod:`keyscope.cosigner`)."""
    client = JsonRpcClient(url, timeout=timeout)

    def co_sign(request: CoSignRequest) -> bytes:
        account, session_id = request.account, "0x" + request.session_id.hex()
        if request.kind == "operation":
            if request.operation is None:
                raise BadInputError("a co-signer service co-signs operations it is shown: give the operation")
            method, params = "keyscope_coSignUserOperation", [account, session_id, request.operation.to_rpc()]
        else:
            if not isinstance(request.message, dict):
                raise BadInputError(
                    "a co-signer service co-signs typed data (sign-in messages are not supported)"
                )
            method, params = "keyscope_coSignTypedData", [account, session_id, _jsonable(request.message)]
        try:
            answer = client.request(method, params)
        except JsonRpcError as error:
            reason = error.data.get("reason", "") if isinstance(error.data, dict) else ""
            raise CoSignerRefusedError(
                f"the co-signer at {client.shown_url} refused: {error.rpc_message}",
                reason=reason or str(error.code),
            ) from None
        if not isinstance(answer, dict) or "signature" not in answer:
            raise TransportError(
                f"the co-signer at {client.shown_url} answered {method} with {shown(answer)}, not "
                '{"signature": "0x…"}: is the URL a keyscope co-signer service?',
                url=client.shown_url,
                method=method,
            )
        _check_signed_for(answer, request, client.shown_url)
        return to_bytes(answer["signature"], name="co-signature", length=65)

    return co_sign


def _check_signed_for(answer: dict[str, Any], request: CoSignRequest, url: str) -> None:
    """Refuse a co-signature the service made for another chain, module or EntryPoint than the request's, saying
    which (its signature would recover to some other address: the module refuses it, AA24). Services that do not
    say what they signed for are taken at their signature."""
    fix = "start the co-signer service with this network's chain id, session module and EntryPoint"
    if "chainId" in answer:
        try:
            chain_id = int(str(answer["chainId"]), 0)
        except ValueError:
            chain_id = None
        if chain_id != request.chain_id:
            raise ConfigurationError(
                f"the co-signer at {url} co-signs for chain {shown(answer['chainId'])}, but this session is on "
                f"chain {request.chain_id}: the module would refuse its signature (AA24); {fix}"
            )
    if "module" in answer and str(answer["module"]).lower() != request.module.lower():
        raise ConfigurationError(
            f"the co-signer at {url} co-signs for the session module {shown(answer['module'])}, but this session "
            f"is on the module {request.module}: the module would refuse its signature (AA24); {fix}"
        )
    if "digest" in answer and str(answer["digest"]).lower() != "0x" + request.digest.hex():
        what = "userOpHash" if request.kind == "operation" else "ERC-7739 hash"
        entry_point = f" (for the EntryPoint {shown(answer['entryPoint'])})" if "entryPoint" in answer else ""
        raise ConfigurationError(
            f"the co-signer at {url} co-signed the {what} {shown(answer['digest'])}{entry_point}, but this "
            f"{request.kind}'s is 0x{request.digest.hex()}: the module would refuse its signature (AA24); {fix}"
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value
