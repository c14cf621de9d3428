"""The eleventh round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in the account adapters, the packing and hashing of a UserOperation and the check of approvals given before a
grant.

Pinned here, without a chain (a stub node stands for the account or the provider):

* the SDK's question to a deployed account before a session's first operation (``refuse_user_op_validation``)
  refuses an account that hands the EntryPoint a window wider than the session's by one second at either end,
  and takes one exactly as wide or narrower (attack 369);
* ``PackedUserOperation.unpack`` refuses a ``paymasterAndData`` too short for the paymaster and its two gas
  limits; the 20-byte EIP-7702 marker given as a factory is the marker; an operation carrying its authorization is
  hashed with its delegate; the v0.8 hash of an EIP-7702 initCode covers the bytes after the marker;
* the log reader's chunks cover every block once down to block 0, grow only while none was refused, stay within
  the bound on requests and name the blocks left unread, take -32005 by its code and raise a one-block refusal; the
  approvals' check says which blocks a chunking provider left unread (attack 370);
* each adapter's nonce key, Kernel's ERC-1271 prefixes and digest, and the module-owned accounts' validator prefix,
  as the adapters' docs lay them out;
* detection takes a vendor's adapter for its own version only, records an EIP-7702 EOA's delegate (attack 369),
  and takes an account's ABI-encoded true only for a yes and its revert for a no;
* EIP-2028's calldata price.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, cast

import pytest
from eth_abi import encode as abi_encode

from keyscope.accounts import (
    AccountKind,
    ERC7579AccountKind,
    KernelAccountKind,
    KeyscopeAccountKind,
    KeyscopeDelegateKind,
    MSAAccountKind,
    NexusAccountKind,
    Safe7579AccountKind,
)
from keyscope.accounts.capabilities import refuse_user_op_validation
from keyscope.chain import Chain
from keyscope.eip7702 import Authorization
from keyscope.errors import AccountSetupError, BadInputError, CallRevertedError
from keyscope.gas import calldata_gas
from keyscope.hashing import eip712_domain_separator, user_op_hash_v08
from keyscope.hexutil import keccak
from keyscope.log_queries import LogsRead, recent_logs
from keyscope.paymaster import PaymasterFields
from keyscope.rpc import JsonRpcError
from keyscope.standing_approvals import standing_approvals
from keyscope.userop import PackedUserOperation, UserOperation

ACCOUNT = "0x" + "ac" * 20
ENTRY_POINT = "0x0000000071727de22e5e9d8baf0edac6f37da032"
VALIDATOR = "0x" + "0f" * 20
MODULE = "0x" + "5e" * 20
_VALIDATE_USER_OP = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
_ACCOUNT_ID = keccak(b"accountId()")[:4]


class _AnsweringAccount:
    """A chain of one deployed account whose ``validateUserOp`` answers ``validation``, asked from the EntryPoint
    (any other caller is refused, as the account's ``onlyEntryPoint`` would); its ``accountId()`` names a vendor."""

    def __init__(self, validation: int) -> None:
        self.validation = validation
        self.asked: list[tuple[bytes, str | None]] = []

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00"

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if data[:4] == _ACCOUNT_ID:
            return abi_encode(["string"], ["vendor.account.v1"])
        # recorded, not asserted here: the SDK takes an exception of the node's call as "cannot ask"
        self.asked.append((data, sender))
        return self.validation.to_bytes(32, "big")


def _validation(valid_after: int, valid_until: int, aggregator: int = 0) -> int:
    return (valid_after << 208) | (valid_until << 160) | aggregator


def _ask(validation: int, window: tuple[int, int]) -> _AnsweringAccount:
    chain = _AnsweringAccount(validation)
    op = UserOperation(sender=ACCOUNT, nonce=(int(MODULE, 16) << 96) | (7 << 64), signature=b"\x01" * 65)
    refuse_user_op_validation(
        cast(Chain, chain),
        ERC7579AccountKind(owner_validator=VALIDATOR),
        ENTRY_POINT,
        op,
        b"\x11" * 32,
        "the session's operation",
        reverts=False,
        window=window,
    )
    return chain


SESSION_WINDOW = (1_000_000, 2_000_000)


@pytest.mark.parametrize(
    ("answered", "widened"),
    [
        ((1_000_000, 2_000_000), None),
        ((1_000_001, 1_999_999), None),
        ((999_999, 2_000_000), "validAfter 999999"),
        ((1_000_000, 2_000_001), "validUntil 2000001"),
        ((1_000_000, 0), "validUntil 0 (no end)"),
    ],
    ids=["as wide", "narrower", "a second earlier", "a second later", "no end"],
)
def test_an_account_widening_a_session_s_window_by_a_second_at_either_end_is_refused(
    answered: tuple[int, int], widened: str | None
) -> None:
    """The module bounds a session's operation by its window in the validation data; an account that hands the
    EntryPoint a wider one (by a second before its start or after its end, or no end) would run the session's
    operations outside it and in limit periods other than the one they were counted in. The SDK refuses such an
    account before sending; an account handing on the module's window, or a narrower one, is taken."""
    validation = _validation(*answered)
    if widened is None:
        chain = _ask(validation, SESSION_WINDOW)
        ((data, sender),) = chain.asked
        assert data[:4] == _VALIDATE_USER_OP and (sender or "").lower() == ENTRY_POINT, (data[:4], sender)
        return
    with pytest.raises(AccountSetupError) as refused:
        _ask(validation, SESSION_WINDOW)
    said = str(refused.value)
    assert widened in said and "validAfter 1000000 and validUntil 2000000" in said, said


def test_a_session_window_without_an_end_takes_any_end_the_account_answers_but_not_an_earlier_start() -> None:
    """A session without an end (``valid_until`` 0) is bounded by its start only."""
    assert len(_ask(_validation(1_000_000, 0), (1_000_000, 0)).asked) == 1
    assert len(_ask(_validation(1_000_000, 5), (1_000_000, 0)).asked) == 1
    with pytest.raises(AccountSetupError):
        _ask(_validation(999_999, 0), (1_000_000, 0))


@pytest.mark.parametrize("length", [20, 51])
def test_unpack_refuses_paymaster_and_data_too_short_for_its_two_gas_limits(length: int) -> None:
    """``paymasterAndData`` holds the paymaster (20 bytes) and its verification and postOp gas limits (16 each):
    a shorter one is refused, not unpacked with gas limits read out of what is there (which packs back longer,
    another operation)."""
    packed = PackedUserOperation(sender=ACCOUNT, nonce=1, paymaster_and_data=b"\x22" * length)
    with pytest.raises(BadInputError, match=f"paymasterAndData of {length} bytes"):
        packed.unpack()
    whole = PackedUserOperation(sender=ACCOUNT, nonce=1, paymaster_and_data=b"\x22" * 52)
    assert whole.unpack().pack().paymaster_and_data == b"\x22" * 52


def test_the_eip7702_marker_given_as_a_20_byte_factory_is_the_marker() -> None:
    """``factory`` ``0x7702`` followed by 18 zero bytes is the EIP-7702 marker (EntryPoint v0.8 reads it so, and no
    factory can be there): read as ``"0x7702"``, so the operation is an EIP-7702 account's, packs the 2-byte marker
    and is refused with ``factoryData`` (an init call the delegate and the module refuse for sessions)."""
    marker = "0x7702" + "00" * 18
    op = UserOperation(sender=ACCOUNT, nonce=0, factory=marker)
    assert op.factory == "0x7702" and op.is_eip7702
    assert op.pack().init_code == b"\x77\x02"
    with pytest.raises(BadInputError, match="factoryData"):
        UserOperation(sender=ACCOUNT, nonce=0, factory=marker, factory_data=b"\x01").pack()


def test_an_eip7702_operation_carrying_its_authorization_is_hashed_with_the_authorization_s_delegate() -> (
    None
):
    """EntryPoint v0.8 hashes an EIP-7702 account's delegate in place of the marker: an operation carrying its
    ``eip7702Auth`` is hashed with that authorization's delegate when none is named, as the EntryPoint will."""
    delegate = "0x" + "de" * 20
    auth = Authorization(chain_id=1, address=delegate, nonce=0, y_parity=0, r=1, s=1)
    op = UserOperation(sender=ACCOUNT, nonce=0, factory="0x7702", eip7702_auth=auth)
    named = op.hash(ENTRY_POINT, 1, "0.8", eip7702_delegate=delegate)
    assert op.hash(ENTRY_POINT, 1, "0.8") == named
    assert named != op.hash(ENTRY_POINT, 1, "0.8", eip7702_delegate="0x" + "dd" * 20)


class _ChunkingProvider:
    """A node of ``latest + 1`` blocks, one log in each, that refuses a log query over more than ``max_blocks``
    blocks (-32005 with ``message``, as providers do; a whole-history query is over it); it records each range it
    was asked, and counts ``eth_blockNumber``."""

    def __init__(
        self, latest: int, max_blocks: int, message: str = "query returned more than 10000 results"
    ) -> None:
        self.latest = latest
        self.max_blocks = max_blocks
        self.message = message
        self.ranges: list[tuple[int, int]] = []
        self.block_numbers = 0

    def block_number(self) -> int:
        self.block_numbers += 1
        return self.latest

    def get_logs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        start = int(query["fromBlock"], 16)
        end = self.latest if query["toBlock"] == "latest" else int(query["toBlock"], 16)
        self.ranges.append((start, end))
        if end - start + 1 > self.max_blocks:
            raise JsonRpcError("eth_getLogs", -32005, self.message)
        return [{"blockNumber": hex(block), "topics": []} for block in range(start, end + 1)]


def _read(provider: _ChunkingProvider, max_requests: int = 32) -> LogsRead:
    return recent_logs(cast(Chain, provider), {"topics": [None]}, max_requests=max_requests)


def test_a_history_read_in_chunks_covers_every_block_once_down_to_block_zero() -> None:
    """Each block's log is read exactly once, block 0's too: the chunks, from the latest block back, meet without
    a gap (an approval logged in a skipped block would not be shown) and without an overlap."""
    provider = _ChunkingProvider(latest=40, max_blocks=7)
    read = _read(provider)
    assert read.unread_to is None
    assert sorted(int(log["blockNumber"], 16) for log in read.logs) == list(range(41))
    chunks = [(start, end) for start, end in provider.ranges[1:] if end - start + 1 <= 7]
    assert chunks[0][1] == 40 and chunks[-1][0] == 0
    assert all(newer[0] == older[1] + 1 for newer, older in itertools.pairwise(chunks)), chunks


def test_a_chunk_grows_only_while_no_chunk_was_refused() -> None:
    """Once the provider refused a chunk, the next chunks are no larger than the last one it took: doubling again
    would have every other request refused (and the history unread within the bound on requests)."""
    provider = _ChunkingProvider(latest=50_000, max_blocks=3_000)
    read = _read(provider)
    assert read.unread_to is None and len(read.logs) == 50_001
    sizes = [end - start + 1 for start, end in provider.ranges[1:]]
    taken = next(index for index, size in enumerate(sizes) if size <= 3_000)  # after two refusals: 2,500
    assert sizes[:taken] == [10_000, 5_000] and all(size <= sizes[taken] for size in sizes[taken:]), sizes


def test_the_requests_of_a_history_read_stay_within_the_bound_and_the_oldest_blocks_left_are_said_unread() -> (
    None
):
    """With fewer requests allowed than the history needs, at most ``max_requests`` are made (``eth_blockNumber``
    and the whole-history query included) and the result names the last block left unread, never "nothing
    logged"."""
    provider = _ChunkingProvider(latest=100, max_blocks=5)
    read = _read(provider, max_requests=20)
    assert len(provider.ranges) + provider.block_numbers == 20
    oldest = min(start for start, end in provider.ranges if end - start + 1 <= 5)
    assert read.unread_to == oldest - 1
    assert sorted(int(log["blockNumber"], 16) for log in read.logs) == list(range(oldest, 101))


def test_a_provider_refusing_a_query_by_its_code_alone_is_read_in_chunks() -> None:
    """-32005 is a provider's "limit exceeded" whatever its message says: read in chunks, not raised."""
    provider = _ChunkingProvider(latest=20, max_blocks=4, message="please upgrade your plan")
    assert len(_read(provider).logs) == 21


def test_a_provider_refusing_even_a_one_block_query_is_raised_not_read_as_empty() -> None:
    """A provider that refuses a query of a single block has nothing smaller to be asked: its error is raised (the
    check then says it could not look), not taken as blocks without logs."""
    provider = _ChunkingProvider(latest=20, max_blocks=0)
    with pytest.raises(JsonRpcError):
        _read(provider)


def test_the_v08_hash_of_an_eip7702_init_code_covers_the_bytes_after_the_marker() -> None:
    """EntryPoint v0.8 hashes an EIP-7702 initCode as the delegate followed by the initCode's bytes after its first
    20 (the init call it sends the account): two operations differing only there have different hashes, or a
    signature of one would be taken for the other's init call."""
    marker = b"\x77\x02" + bytes(18)
    plain, called = (
        PackedUserOperation(sender=ACCOUNT, nonce=0, init_code=marker + tail) for tail in (b"", b"\x12\x34")
    )
    delegate = "0x" + "de" * 20
    hashes = {user_op_hash_v08(op, ENTRY_POINT, 1, eip7702_delegate=delegate) for op in (plain, called)}
    assert len(hashes) == 2


SESSION_MODULE = "0x" + "5e" * 20
OWNER_VALIDATOR = "0x" + "0f" * 20


def _key_bytes(key: int) -> bytes:
    return key.to_bytes(24, "big")


def test_kernel_s_nonce_key_is_mode_type_validator_and_a_two_byte_lane() -> None:
    """Kernel v3.1 reads its nonce key as ``mode (1 byte) ‖ type (1) ‖ validator (20) ‖ lane (2)``: mode 0
    (validate as installed; 1 would enable a validator from the signature), type 1 (a validator module) for the
    session module, type 0 and no address for the root validator. The lane has 16 bits, the 17th refused."""
    kind = KernelAccountKind()
    key = _key_bytes(kind.nonce_key(SESSION_MODULE, 0xBEEF))
    assert (key[0], key[1], key[2:22], key[22:]) == (0, 1, bytes.fromhex("5e" * 20), b"\xbe\xef")
    assert kind.nonce_key(None, 7) == 7
    assert _key_bytes(kind.nonce_key(SESSION_MODULE, 2**16 - 1))[22:] == b"\xff\xff"
    with pytest.raises(BadInputError, match="2 bytes"):
        kind.nonce_key(SESSION_MODULE, 2**16)


def test_nexus_s_nonce_key_is_a_three_byte_lane_a_mode_and_the_validator() -> None:
    """Nexus 1.0 reads ``lane (3 bytes) ‖ mode (1) ‖ validator (20)``, mode 0 (validate; 1 would install a module
    from the signature first); the owner's operations name the owner's validator there."""
    kind = NexusAccountKind(owner_validator=OWNER_VALIDATOR)
    key = _key_bytes(kind.nonce_key(SESSION_MODULE, 0xABCDEF))
    assert (key[:3], key[3], key[4:]) == (b"\xab\xcd\xef", 0, bytes.fromhex("5e" * 20))
    assert _key_bytes(kind.nonce_key(None, 1))[4:] == bytes.fromhex("0f" * 20)
    with pytest.raises(BadInputError):
        kind.nonce_key(SESSION_MODULE, 2**24)


@pytest.mark.parametrize(
    "kind",
    [
        Safe7579AccountKind(owner_validator=OWNER_VALIDATOR),
        ERC7579AccountKind(owner_validator=OWNER_VALIDATOR),
        MSAAccountKind(owner_validator=OWNER_VALIDATOR),
        KeyscopeAccountKind(),
        KeyscopeDelegateKind(),
    ],
    ids=lambda kind: type(kind).__name__,
)
def test_the_validator_and_four_byte_lane_nonce_key_of_the_other_adapters(kind: AccountKind) -> None:
    """Safe7579, the ERC-7579 reference account (and the generic adapter), keyscope's account and its EIP-7702
    delegate read ``validator (20 bytes) ‖ lane (4)``; a lane of 2**32 would spill into the validator's address
    and is refused."""
    key = _key_bytes(kind.nonce_key(SESSION_MODULE, 0x01020304))
    assert (key[:20], key[20:]) == (bytes.fromhex("5e" * 20), b"\x01\x02\x03\x04")
    assert _key_bytes(kind.nonce_key(SESSION_MODULE, 2**32 - 1))[:20] == bytes.fromhex("5e" * 20)
    with pytest.raises(BadInputError):
        kind.nonce_key(SESSION_MODULE, 2**32)


def test_kernel_s_erc1271_signatures_name_the_root_or_the_module_and_its_digest_is_bound_to_account_and_chain() -> (
    None
):
    """Kernel's ERC-1271 signature is ``0x00 ‖ sig`` for its root validator and ``0x01 ‖ validator ‖ sig`` for a
    validator module; the digest it hands a validator is its EIP-712 ``Kernel(bytes32 hash)`` wrapping in the
    domain ``"Kernel"``, ``"0.3.1"``, the chain id and the account, so a signature of one account or chain is not
    another's."""
    kind = KernelAccountKind()
    signature = b"\x5a" * 65
    assert kind.wrap_erc1271_signature(signature) == b"\x00" + signature
    assert kind.validator_erc1271_signature(SESSION_MODULE, signature) == (
        b"\x01" + bytes.fromhex("5e" * 20) + signature
    )
    digest = b"\x42" * 32
    domain = eip712_domain_separator("Kernel", "0.3.1", 10, ACCOUNT)
    wrapped = keccak(b"\x19\x01" + domain + keccak(keccak(b"Kernel(bytes32 hash)") + digest))
    assert kind.erc1271_digest(ACCOUNT, 10, digest) == wrapped
    assert kind.erc1271_digest(ACCOUNT, 11, digest) != wrapped
    assert kind.erc1271_digest("0x" + "ad" * 20, 10, digest) != wrapped


@pytest.mark.parametrize(
    "kind",
    [NexusAccountKind(owner_validator=OWNER_VALIDATOR), Safe7579AccountKind(owner_validator=OWNER_VALIDATOR)],
    ids=lambda kind: type(kind).__name__,
)
def test_module_owned_accounts_erc1271_signatures_name_their_validator_first(kind: AccountKind) -> None:
    """An account whose owner signs through a validator module picks the validator its ``isValidSignature`` asks
    by the signature's first 20 bytes: the owner's validator for the owner's signature, the session module for a
    session's."""
    signature = b"\x5a" * 65
    assert kind.wrap_erc1271_signature(signature) == bytes.fromhex("0f" * 20) + signature
    assert kind.validator_erc1271_signature(SESSION_MODULE, signature) == bytes.fromhex("5e" * 20) + signature


def test_approvals_older_than_the_blocks_a_chunking_provider_let_the_check_read_are_said_unread() -> None:
    """A provider that serves logs in small chunks only lets the check read the newest blocks within its bound on
    requests: the result says which blocks were not read (an approval given there is not shown), never that the
    account gave none."""
    provider = _ChunkingProvider(latest=1_000_000, max_blocks=10)
    result = standing_approvals(cast(Chain, provider), ACCOUNT, ["0x" + "3a" * 20])
    assert result.found == ()
    assert result.unread is not None and "the approvals logged in blocks 0 to 999" in result.unread, (
        result.unread
    )


class _AccountOfId:
    """A node holding one contract account whose ``accountId()`` answers ``reported`` (``eip712Domain()`` not
    answered); it is its own network (``.chain``)."""

    def __init__(self, reported: str) -> None:
        self.reported = reported

    @property
    def chain(self) -> _AccountOfId:
        return self

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00"

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if data[:4] == _ACCOUNT_ID:
            return abi_encode(["string"], [self.reported])
        raise ValueError("no such function")


@pytest.mark.parametrize(
    ("reported", "adapter"),
    [
        ("kernel.advanced.v0.3.1", KernelAccountKind),
        ("biconomy.nexus.1.0.2", NexusAccountKind),
        ("uMSA.advanced/withHook.v0.1", MSAAccountKind),
        ("vendor.account.v1", ERC7579AccountKind),
        ("kernel.advanced.v0.3.3", None),
        ("kernel.advanced.v0.3.10", None),
        ("biconomy.nexus.1.2.0", None),
    ],
)
def test_detection_takes_a_vendor_s_adapter_for_its_own_version_only(
    reported: str, adapter: type | None
) -> None:
    """An account is driven by the adapter made for its ``accountId()``, or by the generic adapter when no adapter
    is made for its vendor. Another version of Kernel or Nexus gets neither (the generic adapter reads the
    validator from other bytes of the nonce key than theirs, and a session would sign in a form the account does
    not read): detection refuses it, naming the version, a later version whose name merely starts like the
    adapter's own too."""
    from keyscope.accounts import detect_kind
    from keyscope.errors import UnsupportedAccountVersionError

    node = cast(Any, _AccountOfId(reported))
    if adapter is None:
        with pytest.raises(UnsupportedAccountVersionError, match=re.escape(repr(reported))):
            detect_kind(node, ACCOUNT, owner_validator=OWNER_VALIDATOR)
        return
    assert type(detect_kind(node, ACCOUNT, owner_validator=OWNER_VALIDATOR)) is adapter


class _DelegatingEoa(_AccountOfId):
    """An EOA delegating its code with EIP-7702 (``0xef0100 ‖ delegate``) to a contract answering ``reported``."""

    delegate = "0x" + "de" * 20

    def get_code(self, address: str) -> bytes:
        return b"\xef\x01\x00" + bytes.fromhex(self.delegate[2:])


def test_an_eoa_delegating_with_eip7702_is_detected_with_its_delegate_recorded() -> None:
    """The adapter of an EIP-7702 EOA names the delegate its code points at: an operation's hash on EntryPoint v0.8
    covers it, and a session's first operation is built for it."""
    from keyscope.accounts import detect_kind

    kind = detect_kind(cast(Any, _DelegatingEoa("keyscope.delegate.v1")), ACCOUNT)
    assert type(kind) is KeyscopeDelegateKind
    assert kind.delegate is not None and kind.delegate.lower() == _DelegatingEoa.delegate


class _Answering:
    """A contract answering every call with ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((1).to_bytes(32, "big"), True),
        ((2).to_bytes(32, "big"), False),
        (b"\xff" * 32, False),
        (b"\x01", False),
    ],
    ids=["true", "two", "all ones", "one byte"],
)
def test_an_account_s_yes_is_the_abi_encoded_true_only(answer: bytes, said: bool) -> None:
    """``supportsModule`` and ``supportsExecutionMode`` answer a bool: a word of another value (a fallback echoing
    its calldata, junk) is no yes, or the SDK would take an account for one that validates with modules or runs
    batches."""
    from keyscope.accounts.detect import ask_bool

    assert ask_bool(cast(Chain, _Answering(answer)), ACCOUNT, b"\x12\x34\x56\x78") is said


class _Reverting:
    """A contract whose every call reverts without data (no such function, no fallback)."""

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        raise CallRevertedError("eth_call", to, b"", "execution reverted")


def test_an_account_reverting_the_question_says_no_not_that_it_cannot_be_asked() -> None:
    """A revert is the account's answer (it has no such function): no, where None is left for a node that could not
    run the call, which the SDK leaves to the bundler rather than refusing."""
    from keyscope.accounts.detect import ask_bool

    assert ask_bool(cast(Chain, _Reverting()), ACCOUNT, b"\x12\x34\x56\x78") is False


def test_calldata_gas_is_four_per_zero_byte_and_sixteen_per_other_byte() -> None:
    """EIP-2028's calldata price, which preVerificationGas pays for the operation's bytes in the bundle: priced
    lower, a bundler refuses the operation (preVerificationGas too low) or pays for it out of its own pocket."""
    assert calldata_gas(b"") == 0
    assert calldata_gas(b"\x00" * 3 + b"\x01\xff") == 3 * 4 + 2 * 16


def test_a_paymaster_service_s_gas_limits_replace_the_operation_s_and_a_missing_one_keeps_it() -> None:
    """The paymaster's verification and postOp gas limits the service gives are the ones packed (and counted
    against the session's cap, and paid for by the paymaster's deposit); a limit the service leaves out keeps the
    operation's."""
    op = UserOperation(
        sender=ACCOUNT, nonce=0, paymaster_verification_gas_limit=11, paymaster_post_op_gas_limit=12
    )
    given = PaymasterFields.model_validate(
        {
            "paymaster": "0x" + "9a" * 20,
            "paymasterVerificationGasLimit": "0x65",
            "paymasterPostOpGasLimit": "0x66",
        }
    ).apply(op)
    assert (given.paymaster_verification_gas_limit, given.paymaster_post_op_gas_limit) == (0x65, 0x66)
    kept = PaymasterFields.model_validate({"paymaster": "0x" + "9a" * 20}).apply(op)
    assert (kept.paymaster_verification_gas_limit, kept.paymaster_post_op_gas_limit) == (11, 12)
