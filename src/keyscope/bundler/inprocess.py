"""An in-process bundler for ape networks: the :class:`~keyscope.bundler.Bundler` interface without a bundler.

``send_user_operation`` simulates ``handleOps`` (an ``eth_call``), maps an EntryPoint ``FailedOp`` to the
same :class:`~keyscope.errors.BundlerRejectedError` a real bundler's rejection gives, and otherwise sends
``handleOps`` from a funded ape account, so dapp code written against a real bundler runs unchanged in
``ape test`` on ape's local chain (or on any ape network).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ..entrypoint import decode_user_operation_events, encode_get_user_op_hash, encode_handle_ops
from ..errors import BundlerRejectedError, TransportError, UnsupportedEntryPointError
from ..gas import pre_verification_gas
from ..hexutil import to_address
from ..revert import describe_revert, split_failed_op
from ..userop import UserOperation
from .types import FeeQuote, GasEstimate, UserOperationReceipt

__all__ = ["InProcessBundler", "revert_data_of"]

_BYTES_REPR = re.compile(r"""(?:execution reverted: |^)(b(['"]).*\2)$""", re.S)


def revert_data_of(exc: BaseException) -> bytes | None:
    """The revert data an exception from web3, eth-tester or ape carries, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, str) and (match := _BYTES_REPR.search(arg)):
            value = ast.literal_eval(match.group(1))
            if isinstance(value, bytes):
                return value
        if isinstance(arg, (bytes, bytearray)):
            return bytes(arg)
    cause = exc.__cause__ or exc.__context__
    return revert_data_of(cause) if cause is not None else None


class InProcessBundler:
    """Bundles each operation alone into a ``handleOps`` transaction on the connected ape network.

    ``submitter`` is an ape account with ETH: it sends (and pays for) the transactions and is the
    beneficiary unless ``beneficiary`` is given.
    """

    def __init__(self, entry_point: str, submitter: Any, *, beneficiary: str | None = None) -> None:
        from ape import chain

        self._chain = chain
        self.entry_point = to_address(entry_point)
        self.submitter = submitter
        self.beneficiary = to_address(beneficiary or submitter.address)
        self._receipts: dict[bytes, UserOperationReceipt] = {}
        self._ops: dict[bytes, UserOperation] = {}

    # -- helpers -------------------------------------------------------------------------------------

    @property
    def _web3(self) -> Any:
        return self._chain.provider.web3

    def _call(self, to: str, data: bytes, sender: str | None = None, gas: int = 30_000_000) -> bytes:
        tx = {"to": to, "data": "0x" + data.hex(), "gas": gas}
        if sender:
            tx["from"] = sender
        return bytes(self._web3.eth.call(tx))

    def _check_entry_point(self, entry_point: str, method: str) -> None:
        if to_address(entry_point) != self.entry_point:
            raise UnsupportedEntryPointError(entry_point, [self.entry_point])

    @staticmethod
    def _check_no_authorization(op: UserOperation, method: str) -> None:
        if op.eip7702_auth is not None:
            raise BundlerRejectedError(
                method,
                -32602,
                "the in-process bundler sends handleOps in an ordinary transaction and cannot carry an EIP-7702 "
                "authorization: delegate the EOA with its own type-4 transaction first "
                "(EOAOwner.upgrade(..., transaction=True))",
            )

    def _simulate(self, op: UserOperation, method: str) -> None:
        data = encode_handle_ops([op.pack()], self.beneficiary)
        try:
            self._call(self.entry_point, data, sender=self.submitter.address)
        except Exception as exc:
            revert = revert_data_of(exc)
            if revert is None:
                raise TransportError(f"simulating handleOps failed: {exc}", method=method) from exc
            failed = split_failed_op(revert)
            if failed is None:
                raise BundlerRejectedError(
                    method, -32500, f"handleOps reverted: {describe_revert(revert)}", revert
                ) from None
            _, reason, inner = failed
            message = f"{reason}: {describe_revert(inner)}" if inner else reason
            code = -32501 if reason.startswith("AA3") else -32500
            raise BundlerRejectedError(method, code, message, "0x" + inner.hex() if inner else None) from None

    # -- Bundler interface ---------------------------------------------------------------------------

    def chain_id(self) -> int:
        """The connected chain's id."""
        return int(self._chain.chain_id)

    def supported_entry_points(self) -> list[str]:
        """The one EntryPoint this submitter sends to."""
        return [self.entry_point]

    def estimate_user_operation_gas(self, op: UserOperation, entry_point: str) -> GasEstimate:
        """Gas limits from ``eth_estimateGas`` of the account's validation and of its call, with margins."""
        method = "eth_estimateUserOperationGas"
        self._check_entry_point(entry_point, method)
        self._check_no_authorization(op, method)
        deployed = bool(self._web3.eth.get_code(op.sender))
        call_gas = 1_000_000
        if deployed:
            try:
                call_gas = int(
                    self._web3.eth.estimate_gas(
                        {"from": self.entry_point, "to": op.sender, "data": "0x" + op.call_data.hex()}
                    )
                )
                call_gas = call_gas * 12 // 10 + 10_000
            except Exception as exc:
                revert = revert_data_of(exc) or b""
                raise BundlerRejectedError(
                    method, -32521, f"execution reverted: {describe_revert(revert)}", "0x" + revert.hex()
                ) from None
        verification = 400_000 if deployed else 1_200_000
        return GasEstimate(
            pre_verification_gas=pre_verification_gas(op),
            verification_gas_limit=verification,
            call_gas_limit=call_gas,
            paymaster_verification_gas_limit=200_000 if op.paymaster else None,
            paymaster_post_op_gas_limit=100_000 if op.paymaster else None,
        )

    def send_user_operation(self, op: UserOperation, entry_point: str) -> bytes:
        """Simulate, then send ``handleOps([op])``; returns the userOpHash."""
        method = "eth_sendUserOperation"
        self._check_entry_point(entry_point, method)
        self._check_no_authorization(op, method)
        packed = op.pack()
        user_op_hash = self._call(
            self.entry_point, encode_get_user_op_hash(packed), sender=self.submitter.address
        )[:32]
        self._simulate(op, method)
        logs, transaction_hash, block_number = self._submit(encode_handle_ops([packed], self.beneficiary))
        events = decode_user_operation_events(logs, self.entry_point)
        for found_hash, fields in events.items():
            self._receipts[found_hash] = UserOperationReceipt(
                user_op_hash=found_hash,
                entry_point=self.entry_point,
                sender=fields["sender"],
                nonce=fields["nonce"],
                paymaster=fields["paymaster"],
                actual_gas_cost=fields["actualGasCost"],
                actual_gas_used=fields["actualGasUsed"],
                success=fields["success"],
                reason=fields["reason"],
                transaction_hash=transaction_hash,
                block_number=block_number,
                logs=fields["logs"],
            )
        self._ops[user_op_hash] = op
        return user_op_hash

    def _submit(self, data: bytes) -> tuple[list[dict[str, Any]], bytes, int]:
        """Send the ``handleOps`` calldata ``data`` to the EntryPoint from the submitter: the transaction's logs, its
        hash and its block number."""
        tx = self._chain.provider.network.ecosystem.create_transaction(
            receiver=self.entry_point, data=data, sender=self.submitter.address
        )
        tx_receipt = self.submitter.call(tx)
        logs = [dict(log) for log in tx_receipt.logs]
        return logs, bytes.fromhex(tx_receipt.txn_hash[2:]), tx_receipt.block_number

    def get_user_operation_receipt(self, user_op_hash: bytes) -> UserOperationReceipt | None:
        """The receipt of an operation this submitter sent (None for any other hash)."""
        return self._receipts.get(bytes(user_op_hash))

    def get_user_operation_by_hash(self, user_op_hash: bytes) -> dict[str, Any] | None:
        """The operation this submitter sent with that hash, as JSON-RPC would show it."""
        op = self._ops.get(bytes(user_op_hash))
        if op is None:
            return None
        receipt = self._receipts.get(bytes(user_op_hash))
        return {
            "userOperation": op.to_rpc(),
            "entryPoint": self.entry_point,
            "transactionHash": "0x" + receipt.transaction_hash.hex() if receipt else None,
            "blockNumber": hex(receipt.block_number) if receipt else None,
        }

    def fee_quote(self) -> FeeQuote:
        """The node's base fee doubled plus a 1 gwei tip (ape's local chain has no fee market)."""
        block = self._web3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        tip = 10**9
        return FeeQuote(max_fee_per_gas=2 * base + tip, max_priority_fee_per_gas=tip)
