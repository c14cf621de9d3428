"""ERC-7677 paymaster service client: ask a sponsor to pay for a UserOperation.

Two calls, as the standard defines them for EntryPoint v0.7 (and v0.8, whose fields are the same):

* ``pm_getPaymasterStubData(userOp, entryPoint, chainId, context)``: placeholder paymaster fields with the
  real shape (and the paymaster's gas limits), used while estimating gas;
* ``pm_getPaymasterData(userOp, entryPoint, chainId, context)``: the final ``paymasterData`` (usually the
  sponsor's signature), requested once the gas fields are fixed.

A refusal (the service's policy does not cover this account or call, the budget is spent) becomes
:class:`~keyscope.errors.PaymasterError` with the service's code and message.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .endpoint_kinds import answers_as_bundler, answers_as_node
from .errors import PaymasterError, TransportError
from .hexutil import Address, HexData, HexInt, HexRepr
from .rpc import INVALID_PARAMS, METHOD_NOT_FOUND, JsonRpcClient, JsonRpcError
from .userop import UserOperation

__all__ = ["PaymasterClient", "PaymasterFields"]

GET_STUB_DATA = "pm_getPaymasterStubData"
GET_DATA = "pm_getPaymasterData"


class PaymasterFields(HexRepr, BaseModel):
    """The paymaster fields of a v0.7/v0.8 UserOperation, as a paymaster service returns them."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    paymaster: Address
    paymasterData: HexData = b""
    paymasterVerificationGasLimit: HexInt | None = None
    paymasterPostOpGasLimit: HexInt | None = None
    isFinal: bool = False

    def apply(self, op: UserOperation) -> UserOperation:
        """``op`` with these paymaster fields (gas limits kept from ``op`` where the service gives none)."""
        return op.replace(
            paymaster=self.paymaster,
            paymaster_data=self.paymasterData,
            paymaster_verification_gas_limit=(
                self.paymasterVerificationGasLimit
                if self.paymasterVerificationGasLimit is not None
                else op.paymaster_verification_gas_limit
            ),
            paymaster_post_op_gas_limit=(
                self.paymasterPostOpGasLimit
                if self.paymasterPostOpGasLimit is not None
                else op.paymaster_post_op_gas_limit
            ),
        )


class PaymasterClient:
    """A client of one ERC-7677 paymaster service URL; ``context`` is passed to every call (sponsorship
    policy id and the like, as the service defines it), ``headers`` are sent with every request (e.g. an API
    key, for a service that takes it in a header rather than in the URL)."""

    def __init__(
        self,
        url: str,
        *,
        context: dict[str, Any] | None = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.context = context or {}
        self._rpc = JsonRpcClient(url, timeout=timeout, headers=headers, service="paymaster service")

    def __repr__(self) -> str:
        return f"PaymasterClient({self._rpc.shown_url})"

    @property
    def shown_url(self) -> str:
        """The service's URL as messages show it (an API key in it masked)."""
        return self._rpc.shown_url

    def close(self) -> None:
        """Close the connection pool."""
        self._rpc.close()

    def _not_a_paymaster(self, code: int) -> str:
        """When the service did not take the method or its parameters (-32601, -32602) and its URL answers as a
        node or a bundler does: what it is and where its URL goes; else nothing."""
        if code not in (METHOD_NOT_FOUND, INVALID_PARAMS):
            return ""
        what = (
            "an ERC-4337 bundler (it answers eth_supportedEntryPoints)"
            if answers_as_bundler(self.url)
            else "an Ethereum node (it answers eth_getCode)"
            if answers_as_node(self.url)
            else ""
        )
        if not what:
            return ""
        return (
            f"{self._rpc.shown_url} is {what}, not an ERC-7677 paymaster service: connect(node, bundler, "
            "paymaster=URL) takes the paymaster service's URL (a node's URL goes first, a bundler's second)"
        )

    def _ask(self, method: str, op: UserOperation, entry_point: str, chain_id: int) -> PaymasterFields:
        params = [op.to_rpc(), entry_point, hex(chain_id), self.context]
        try:
            result = self._rpc.request(method, params)
        except JsonRpcError as error:
            raise PaymasterError(
                method, error.code, error.rpc_message, error.data, hint=self._not_a_paymaster(error.code)
            ) from None
        if not isinstance(result, dict):
            raise TransportError(
                f"{self._rpc.shown_url} answered {method} with {result!r}, not an object",
                url=self._rpc.shown_url,
                method=method,
            )
        try:
            return PaymasterFields.model_validate(result)
        except Exception as exc:
            raise TransportError(
                f"{self._rpc.shown_url} answered {method} with malformed paymaster fields: {exc}",
                url=self._rpc.shown_url,
                method=method,
            ) from None

    def stub_data(self, op: UserOperation, entry_point: str, chain_id: int) -> PaymasterFields:
        """``pm_getPaymasterStubData``: placeholder fields for gas estimation."""
        return self._ask(GET_STUB_DATA, op, entry_point, chain_id)

    def data(self, op: UserOperation, entry_point: str, chain_id: int) -> PaymasterFields:
        """``pm_getPaymasterData``: the final fields, for the operation with its gas fields set."""
        return self._ask(GET_DATA, op, entry_point, chain_id)
