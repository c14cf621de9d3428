"""A co-signer service set up for another chain, session module or EntryPoint than the sessions it co-signs: its
signature recovers to some unrelated address, so the SDK's check (the module's co-signer against the signer)
blamed a rotation ("the owner may have rotated it"), sending the operator after the wrong key. The service says
what it signed for, and the SDK's client names the setting that differs before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from keyscope.co_signer import CoSignRequest
from keyscope.cosigner import CoSignerServer, CoSignerService, remote_co_signer
from keyscope.erc1271 import co_sign_digest
from keyscope.errors import ConfigurationError
from keyscope.execution import Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.signing import LocalSigner, recover_hash
from support.userops import plain_op

CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
ENTRY_POINT_V08 = "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108"
ACCOUNT = "0x" + "22" * 20
KEY = LocalSigner.generate()


def _request() -> CoSignRequest:
    op = plain_op(ACCOUNT, encode_execute(Call.of("0x" + "33" * 20, 0, b"")))
    digest = user_op_hash_v07(op.pack(), ENTRY_POINT, CHAIN_ID)
    return CoSignRequest(
        kind="operation",
        account=ACCOUNT,
        session_id=bytes.fromhex("44" * 32),
        digest=digest,
        chain_id=CHAIN_ID,
        module=MODULE,
        call_data=op.call_data,
        operation=op,
    )


def _ask(**settings: Any) -> bytes:
    config: dict[str, Any] = {"chain_id": CHAIN_ID, "module": MODULE, "entry_point": ENTRY_POINT, **settings}
    with CoSignerServer(CoSignerService(KEY, **config)) as server:
        return remote_co_signer(server.url, timeout=5)(_request())


def test_a_co_signer_set_up_for_these_sessions_signs_the_co_sign_digest() -> None:
    request = _request()
    signature = _ask()
    expected = co_sign_digest(request.session_id, request.digest, chain_id=CHAIN_ID, module=MODULE)
    assert recover_hash(expected, signature) == KEY.address


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param(
            {"chain_id": 1}, "co-signs for chain '0x1', but this session is on chain 31337", id="chain"
        ),
        pytest.param(
            {"module": "0x" + "55" * 20},
            f"co-signs for the session module '0x{'55' * 20}', but this session is on the module {MODULE}",
            id="module",
        ),
        pytest.param(
            {"entry_point": ENTRY_POINT_V08}, f"(for the EntryPoint '{ENTRY_POINT_V08}')", id="entry point"
        ),
    ],
)
def test_a_co_signer_set_up_for_another_deployment_is_named_before_anything_is_sent(
    settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _ask(**settings)
    message = str(info.value)
    assert named in message and "AA24" in message, message
    assert (
        "start the co-signer service with this network's chain id, session module and EntryPoint" in message
    )
    assert "rotated" not in message
