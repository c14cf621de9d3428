"""The SDK's side of a co-signer service: a :data:`~keyscope.co_signer.CoSigner` that asks it over JSON-RPC."""

from __future__ import annotations

from typing import Any

from ..co_signer import CoSigner, CoSignerRefusedError, CoSignRequest
from ..errors import BadInputError, TransportError, shown
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
        return to_bytes(answer["signature"], name="co-signature", length=65)

    return co_sign


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value
