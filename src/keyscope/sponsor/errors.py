"""Why the sponsor service refuses a request: one exception carrying the JSON-RPC error it becomes.

Codes (JSON-RPC 2.0 and EIP-1474):

* ``-32700`` the request body is not JSON; ``-32600`` it is not a JSON-RPC request;
* ``-32601`` the method is not one the service implements;
* ``-32602`` invalid params: a malformed UserOperation, another EntryPoint or chain id than the service's;
* ``-32003`` not sponsored: the account, a call's target or selector, or the callData is outside the policy;
* ``-32005`` budget exhausted: the account's sponsorship budget, or the total for all accounts, cannot cover
  the operation's maximum cost (the message says what can be done: budgets never refill while the service runs);
* ``-32603`` internal error (a bug, or the node the service reads the time from is unreachable).

Clients see the code and the message (which says why, naming the account, target or amounts) and, in
``data``, a ``reason`` keyword with the values involved. keyscope's
:class:`~keyscope.paymaster.PaymasterClient` turns them into :class:`~keyscope.errors.PaymasterError`.
"""

from __future__ import annotations

from typing import Any

from ..errors import KeyscopeError
from ..http_service import INVALID_REQUEST
from ..json_rpc_service import INTERNAL_ERROR, PARSE_ERROR
from ..rpc import INVALID_PARAMS, METHOD_NOT_FOUND

__all__ = [
    "BUDGET_EXHAUSTED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "NOT_SPONSORED",
    "PARSE_ERROR",
    "SponsorshipRefused",
]

NOT_SPONSORED = -32003
BUDGET_EXHAUSTED = -32005


class SponsorshipRefused(KeyscopeError):
    """The sponsor will not sign: ``code`` and ``message`` are the JSON-RPC error's, ``data`` its details
    (a dict with a ``reason`` keyword)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(message)

    def to_rpc(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error
