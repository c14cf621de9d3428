"""A bare ``eth_call`` on the test chain, for the state machines and probes that call the module as an account,
the revert data of one that failed, and an account sending its transactions to py-evm without ape's round trip."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from eth_account import Account

from keyscope.bundler.inprocess import revert_data_of

__all__ = ["RawSender", "enable_verdict", "raw_call", "revert_bytes"]


def raw_call(chain: Any) -> Callable[[dict[str, Any]], Any]:
    """``eth_call`` of a transaction dict: py-evm's tester itself on ape's local chain (no ape round trip per
    call), else the provider's web3."""
    provider = chain.provider
    tester = getattr(getattr(provider, "tester", None), "ethereum_tester", None)
    call: Callable[[dict[str, Any]], Any] = tester.call if tester is not None else provider.web3.eth.call
    return call


def revert_bytes(error: Exception) -> bytes:
    """The revert data of a failed ``eth_call``: eth-tester gives the bytes' repr as the message."""
    raw = revert_data_of(error)
    if raw is not None:
        return raw
    text = str(error.args[0]) if error.args else ""
    if text.startswith(("b'", 'b"')):
        value = ast.literal_eval(text)
        if isinstance(value, bytes):
            return value
    raise error


def enable_verdict(sessions: Any, account: str, session: Any) -> str:
    """The module's verdict when ``account`` enables ``session`` (an ``eth_call`` of ``enableSession`` from the
    account, on the chain ``sessions`` deployed the module on): "ok", or its revert decoded."""
    from keyscope.revert import describe_revert

    data = sessions.module.enableSession.encode_input(session.as_abi())
    try:
        sessions.h.chain.provider.web3.eth.call(
            {"from": account, "to": sessions.module.address, "data": "0x" + data.hex(), "gas": 10_000_000}
        )
    except Exception as error:
        return describe_revert(revert_bytes(error))
    return "ok"


class RawSender:
    """An ape test account whose ``transfer`` sends a signed transaction straight to py-evm: what ape's own
    transfer ends in, without its gas estimate (another run of the call), its checks and its receipt objects. A
    transaction that reverts fails the test, with its receipt."""

    def __init__(self, account: Any, chain: Any) -> None:
        self.address = account.address
        self._key = account.private_key
        self._tester = chain.provider.tester.ethereum_tester
        self._chain_id = int(chain.chain_id)

    def transfer(self, to: str, value: int, *, data: bytes) -> None:
        base_fee = int(self._tester.get_block_by_number("pending")["base_fee_per_gas"])
        transaction = {
            "type": 2,
            "chainId": self._chain_id,
            "nonce": int(self._tester.get_nonce(self.address)),
            "to": to,
            "value": value,
            "data": "0x" + bytes(data).hex(),
            "gas": 10**7,
            "maxFeePerGas": 2 * base_fee + 1,
            "maxPriorityFeePerGas": 1,
        }
        signed = Account.sign_transaction(transaction, self._key)
        tx_hash = self._tester.send_raw_transaction("0x" + bytes(signed.raw_transaction).hex())
        receipt = self._tester.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, (to, bytes(data).hex(), receipt)
