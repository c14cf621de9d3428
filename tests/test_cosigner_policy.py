"""The co-signer service's policy, over HTTP (the real server on 127.0.0.1, the SDK's client): what
docs/session-module.md says it approves (accounts, call targets, value per call, messages or not), judged on
every call of a batch, and what it signs bound to the account it was asked for. A leaked session key holder can
ask the service anything; each test tries what the policy must refuse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope.co_signer import CoSignerRefusedError, CoSignRequest
from keyscope.cosigner import CoSignerServer, CoSignerService, CoSignPolicy, remote_co_signer
from keyscope.erc1271 import co_sign_digest
from keyscope.errors import BadInputError
from keyscope.execution import EXECTYPE_TRY, Call, encode_execute
from keyscope.hashing import user_op_hash_v07
from keyscope.hexutil import to_address
from keyscope.signing import LocalSigner, recover_hash
from keyscope.typed_data import TypedData, typed_data_sign_hash
from keyscope.userop import UserOperation

CHAIN_ID = 31337
MODULE = "0x" + "11" * 20
ENTRY_POINT = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
ACCOUNT = "0x" + "22" * 20
OTHER_ACCOUNT = "0x" + "23" * 20
ALLOWED = ["0x" + "33" * 20, "0x" + "34" * 20]
FORBIDDEN = ["0x" + "66" * 20, "0x" + "00" * 20]
MAX_VALUE = 10**15
SESSION_ID = bytes.fromhex("44" * 32)
KEY = LocalSigner.generate()

PERMIT = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Note": [{"name": "text", "type": "string"}],
    },
    "primaryType": "Note",
    "domain": {"name": "Notes", "chainId": CHAIN_ID, "verifyingContract": "0x" + "77" * 20},
    "message": {"text": "hello"},
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    policy = CoSignPolicy(
        accounts=frozenset({ACCOUNT}), targets=frozenset(ALLOWED), max_value=MAX_VALUE, messages=True
    )
    service = CoSignerService(KEY, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=policy)
    with CoSignerServer(service) as server:
        yield server.url


@pytest.fixture(scope="module")
def silent_url() -> Iterator[str]:
    policy = CoSignPolicy(messages=False)
    service = CoSignerService(KEY, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=policy)
    with CoSignerServer(service) as server:
        yield server.url


def _op(calls: list[Call], *, sender: str = ACCOUNT, exec_type: int = 0) -> UserOperation:
    return UserOperation(
        sender=sender,
        nonce=3,
        call_data=encode_execute(calls, batch=len(calls) != 1, exec_type=exec_type),
        call_gas_limit=100_000,
        verification_gas_limit=200_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=10**9,
        max_priority_fee_per_gas=10**9,
    )


def _ask_operation(url: str, op: UserOperation, account: str = ACCOUNT) -> bytes:
    request = CoSignRequest(
        kind="operation",
        account=account,
        session_id=SESSION_ID,
        digest=user_op_hash_v07(
            op.pack(), ENTRY_POINT, CHAIN_ID
        ),  # as the SDK asks: the operation's own hash
        chain_id=CHAIN_ID,
        module=MODULE,
        call_data=op.call_data,
        operation=op,
    )
    return remote_co_signer(url, timeout=10)(request)


def _erc7739_hash(message: dict[str, Any], account: str) -> bytes:
    """The ERC-7739 hash a session key signs for ``message`` on ``account`` (as the SDK asks the co-signer)."""
    typed = TypedData(message)
    return typed_data_sign_hash(
        typed.domain_separator,
        typed.primary_type,
        typed.contents_type,
        typed.struct_hash,
        account=account,
        chain_id=CHAIN_ID,
        module=MODULE,
    )


def _ask_message(url: str, message: dict[str, Any], account: str = ACCOUNT) -> bytes:
    request = CoSignRequest(
        kind="message",
        account=account,
        session_id=SESSION_ID,
        digest=_erc7739_hash(message, account),
        chain_id=CHAIN_ID,
        module=MODULE,
        message=message,
    )
    return remote_co_signer(url, timeout=10)(request)


_calls = st.lists(
    st.builds(
        Call.of,
        st.sampled_from(ALLOWED + FORBIDDEN),
        st.sampled_from([0, 1, MAX_VALUE, MAX_VALUE + 1, 2**255]),
        st.sampled_from([b"", bytes.fromhex("a9059cbb") + bytes(64)]),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=_calls, exec_type=st.sampled_from([0, EXECTYPE_TRY]))
def test_every_call_of_a_batch_is_judged(url: str, calls: list[Call], exec_type: int) -> None:
    """One forbidden target or one value over the limit anywhere in a batch (try mode too) and the service refuses;
    otherwise it signs the co-signing digest of exactly this operation's v0.7 hash."""
    op = _op(calls, exec_type=exec_type)
    covered = all(c.target in ALLOWED and c.value <= MAX_VALUE for c in calls)
    if not covered:
        with pytest.raises(CoSignerRefusedError) as info:
            _ask_operation(url, op)
        assert info.value.reason in ("target", "value")
        return
    signature = _ask_operation(url, op)
    digest = co_sign_digest(
        SESSION_ID, user_op_hash_v07(op.pack(), ENTRY_POINT, CHAIN_ID), chain_id=CHAIN_ID, module=MODULE
    )
    assert recover_hash(digest, signature) == KEY.address


def test_another_account_or_another_sender_is_refused(url: str) -> None:
    call = [Call.of(ALLOWED[0], 0, b"")]
    with pytest.raises(CoSignerRefusedError) as info:
        _ask_operation(url, _op(call, sender=OTHER_ACCOUNT), account=OTHER_ACCOUNT)
    assert info.value.reason == "account"
    # the listed account named, another account's operation shown: refused, not signed for the listed one
    with pytest.raises(CoSignerRefusedError) as info:
        _ask_operation(url, _op(call, sender=OTHER_ACCOUNT), account=ACCOUNT)
    assert info.value.reason == "params"
    with pytest.raises(CoSignerRefusedError) as info:
        _ask_message(url, PERMIT, account=OTHER_ACCOUNT)
    assert info.value.reason == "account"


def test_a_message_co_signature_is_bound_to_its_account(url: str) -> None:
    """The co-signature of a message is over the ERC-7739 hash for the account asked: it counts for no other."""
    signature = _ask_message(url, PERMIT)

    def digest(account: str) -> bytes:
        inner = _erc7739_hash(PERMIT, account)
        return co_sign_digest(SESSION_ID, inner, chain_id=CHAIN_ID, module=MODULE)

    assert recover_hash(digest(ACCOUNT), signature) == KEY.address
    assert recover_hash(digest(OTHER_ACCOUNT), signature) != KEY.address


def test_a_co_signer_without_messages_signs_none(silent_url: str) -> None:
    with pytest.raises(CoSignerRefusedError) as info:
        _ask_message(silent_url, PERMIT)
    assert info.value.reason == "messages"
    # and its operations are still co-signed (value 0 is within its default limit of 0)
    assert len(_ask_operation(silent_url, _op([Call.of(FORBIDDEN[0], 0, b"")]))) == 65
    with pytest.raises(CoSignerRefusedError) as info:
        _ask_operation(silent_url, _op([Call.of(FORBIDDEN[0], 1, b"")]))
    assert info.value.reason == "value"


# ------------------------------------------------------------------------------------------------------
# The policy as written: refused, never read as another policy
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"max_value": True}, r"max_value: .*got a bool"),
        ({"max_value": False}, r"max_value: .*got a bool"),
        ({"max_value": 1.9}, r"max_value: .*got a float"),
        ({"max_value": float(2**62 - 1)}, r"max_value: .*got a float"),
        ({"max_value": -1}, r"max_value: .*greater than or equal to 0"),
        ({"max_value": "\u0661\u0660"}, r"max_value: .*write digits 0-9"),
        ({"messages": "false"}, r"messages: .*must be True or False"),
        ({"messages": 0}, r"messages: .*must be True or False"),
        ({"messages": None}, r"messages: .*must be True or False"),
        ({"accounts": ["0x12"]}, r"accounts\.0: .*not a valid address"),
    ],
    ids=[
        "value-true",
        "value-false",
        "value-float",
        "value-big-float",
        "value-negative",
        "value-other-digits",
        "messages-text",
        "messages-number",
        "messages-none",
        "bad-account",
    ],
)
def test_a_policy_field_it_cannot_take_is_refused_naming_it(fields: dict[str, Any], said: str) -> None:
    """``max_value=True`` was 1 wei and ``float(2**62 - 1)`` was 2**62, a wei more than written; ``messages`` took
    text and numbers (``"no"``, ``1``) as pydantic's lax reading guesses them; and each refusal was pydantic's own
    error, outside keyscope's."""
    with pytest.raises(BadInputError, match=said):
        CoSignPolicy(**fields)


def test_a_policy_as_written_is_kept() -> None:
    policy = CoSignPolicy(
        accounts=[ACCOUNT.upper().replace("0X", "0x"), ACCOUNT], max_value="1000", messages=False
    )
    assert policy.accounts == frozenset({to_address(ACCOUNT)})  # one account, two spellings: the same one
    assert (policy.max_value, policy.messages) == (1000, False)
    assert CoSignPolicy(max_value=2**255).max_value == 2**255


@pytest.mark.parametrize("policy", [{}, {"max_value": 0}], ids=["empty-dict", "dict"])
def test_a_policy_that_is_not_a_co_sign_policy_is_refused(policy: object) -> None:
    """An empty dict is falsy: the service read it as no policy, approving every account, target and message."""
    with pytest.raises(
        BadInputError, match=r"policy must be a CoSignPolicy, got dict: build it with CoSignPolicy"
    ):
        CoSignerService(KEY, chain_id=CHAIN_ID, module=MODULE, entry_point=ENTRY_POINT, policy=policy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "chain_id",
    [True, 0, -1, 31337.0, "31337", "0x7a69"],
    ids=["true", "zero", "negative", "float", "text", "hex-text"],
)
def test_a_co_signers_chain_id_that_is_not_a_chain_is_refused(chain_id: object) -> None:
    """``chain_id=True`` was chain 1: every co-signature was made for another chain, refused by the module."""
    with pytest.raises(BadInputError, match=r"chain_id must be a positive whole number"):
        CoSignerService(KEY, chain_id=chain_id, module=MODULE, entry_point=ENTRY_POINT)  # type: ignore[arg-type]
