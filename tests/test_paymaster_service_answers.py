"""A paymaster service (ERC-7677) changing its answer between the stub and the final fields.

The SDK asks ``pm_getPaymasterStubData``, has the bundler estimate gas for the operation carrying the stub's
paymaster and gas limits, then asks ``pm_getPaymasterData`` for the final ``paymasterData`` and signs. The final
answer named the paymaster and gas limits the signed operation carried, whatever the stub said: a service (hostile,
or broken) could have the account sign for another paymaster than the one estimated (a token paymaster the
account approved, which charges it in tokens) or for a post-op gas limit raised past the estimate. ERC-7677's
final answer is the paymaster's data for the stub's paymaster; anything else is refused before signing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from keyscope.bundler import BundlerClient
from keyscope.chain import RpcChain
from keyscope.endpoints import Endpoints
from keyscope.errors import TransportError
from keyscope.operations import Draft, OperationBuilder
from keyscope.paymaster import PaymasterClient
from test_bundler_client import (
    ALTO_ESTIMATE,
    ALTO_GAS_PRICE,
    ENTRY_POINT,
    SENDER,
    ScriptedServer,
    ok,
    scripted_bundler,
)

MODULE = "0x" + "5e" * 20
SPONSOR = "0x" + "5a" * 20
TOKEN_PAYMASTER = "0x" + "70" * 20
STUB = {
    "paymaster": SPONSOR,
    "paymasterData": "0x" + "00" * 77,
    "paymasterVerificationGasLimit": "0x11170",
    "paymasterPostOpGasLimit": "0x0",
}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_bundler() as scripted:
        scripted.on("pimlico_getUserOperationGasPrice", ok(ALTO_GAS_PRICE))
        scripted.on("eth_estimateUserOperationGas", ok(ALTO_ESTIMATE))
        scripted.on("pm_getPaymasterStubData", ok(STUB))
        yield scripted


@pytest.fixture
def builder(server: ScriptedServer) -> Iterator[OperationBuilder]:
    with (
        BundlerClient(server.url, timeout=2.0) as bundler,
        RpcChain(server.url, timeout=2.0) as chain,
    ):
        paymaster = PaymasterClient(server.url, timeout=2.0)
        try:
            yield OperationBuilder(
                Endpoints(
                    chain=chain, bundler=bundler, module=MODULE, entry_point=ENTRY_POINT, paymaster=paymaster
                )
            )
        finally:
            paymaster.close()


def prepare(builder: OperationBuilder) -> Any:
    return builder.prepare(Draft(SENDER, b"\xb6\x1d\x27\xf6" + bytes(96), 0), b"\x01" * 65, nonce=5).op


def test_the_final_fields_for_the_stubs_paymaster_are_signed(
    server: ScriptedServer, builder: OperationBuilder
) -> None:
    server.on(
        "pm_getPaymasterData",
        ok({"paymaster": SPONSOR.upper().replace("0X", "0x"), "paymasterData": "0xab12"}),
    )
    op = prepare(builder)
    assert op.paymaster.lower() == SPONSOR
    assert op.paymaster_data == b"\xab\x12"
    assert op.paymaster_post_op_gas_limit == 0
    # the operation's own limits given again are no change
    limits = {
        "paymasterVerificationGasLimit": hex(op.paymaster_verification_gas_limit),
        "paymasterPostOpGasLimit": hex(op.paymaster_post_op_gas_limit),
    }
    server.on("pm_getPaymasterData", ok({"paymaster": SPONSOR, "paymasterData": "0xab12", **limits}))
    assert prepare(builder) == op


def test_final_fields_naming_another_paymaster_than_the_stub_are_refused(
    server: ScriptedServer, builder: OperationBuilder
) -> None:
    server.on("pm_getPaymasterData", ok({"paymaster": TOKEN_PAYMASTER, "paymasterData": "0xab12"}))
    with pytest.raises(TransportError, match="another paymaster") as info:
        prepare(builder)
    message = str(info.value).lower()
    assert TOKEN_PAYMASTER in message and SPONSOR in message
    assert info.value.method == "pm_getPaymasterData"


@pytest.mark.parametrize("field", ["paymasterVerificationGasLimit", "paymasterPostOpGasLimit"])
def test_final_fields_changing_a_paymaster_gas_limit_are_refused(
    server: ScriptedServer, builder: OperationBuilder, field: str
) -> None:
    server.on("pm_getPaymasterData", ok({**STUB, "paymasterData": "0xab12", field: hex(5_000_000)}))
    with pytest.raises(TransportError, match=field):
        prepare(builder)
