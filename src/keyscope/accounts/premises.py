"""Asking an ERC-7579 account keyscope has no adapter of its own for, before its owner grants a session (or installs
the module), whether it keeps the two premises a session's bounds rest on (docs/accounts.md; threat model, attacks
160, 161, 352, 353, 393, 417 to 419):

* it hands the EntryPoint the module's validation data as it is (or narrows its window): the module reads no
  clock, so a session's window and the period an operation is counted in bind only through that word;
* it hands the module its own caller as ERC-1271's ``sender``: the module tells the account's own modules (which
  take the account's ERC-1271 answer as the owner's approval) from other verifiers by ``sender`` only.

A session's first operation and signature are asked of the account by the dapp's SDK (attacks 352, 353), but a
leaked key needs no SDK: the owner's grant is the last moment keyscope can refuse such an account. The session has
no signature yet. With the module installed, the window is asked of the module's own code: an ``eth_call`` whose
state override plants a session in the module's storage only, for a fresh key the question signs with (attack
425). Otherwise (before the install, on a node applying no storage override) and for ``sender``, the account is
asked about a stand-in: an ``eth_call`` in which the module's address runs :data:`PROBE_VALIDATOR_CODE` (a state
override, for that one call), whose answers are known, through a forwarder at another address
(:data:`FORWARDER_CODE`), so that the account's caller is neither the call's origin nor the account itself. The
validator's refusal, on which anyone's operation bears, is asked first with the validator's own code (an operation
signed by a key nobody holds), which an account cannot tell from an operation by the validator's code hash, as it
can the stand-in (attacks 418, 419: what the questions cannot prove)."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Mapping
from typing import NamedTuple, Protocol, runtime_checkable

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from ..chain import Chain, node_request
from ..errors import AccountPremiseWarning, AccountSetupError, CallRevertedError, TransportError
from ..execution import Call, encode_execute
from ..hexutil import to_address
from ..rpc import JsonRpcError
from ..selectors import IS_VALID_SIGNATURE
from ..signing import LocalSigner
from ..userop import UserOperation
from ..warning_origin import caller_stacklevel
from .base import AccountKind
from .detect import account_id
from .verify import validator_installed

__all__ = [
    "FORWARDER_CODE",
    "PROBE_VALIDATOR_CODE",
    "PROBE_VALID_AFTER",
    "PROBE_VALID_UNTIL",
    "refuse_broken_premises",
    "refuse_install_on_broken_premises",
    "warn_premises_unasked",
]

PROBE_VALID_AFTER = 0x5EC0_0001
"""The validAfter the probe validator answers every ``validateUserOp`` with."""
PROBE_VALID_UNTIL = 0x5EC0_0002
"""The validUntil the probe validator answers every ``validateUserOp`` with (the narrowest window there is)."""
PROBE_VALIDATION = (PROBE_VALID_UNTIL << 160) | (PROBE_VALID_AFTER << 208)
"""The probe validator's validation data: success, in the window above."""
PROBE_FAILURE_SEQUENCE = 0x5EC0FA11
"""The nonce sequence (its low 64 bits) of an operation the probe validator refuses (SIG_VALIDATION_FAILED): the
account must not take the refusal for a yes. (Not the userOpHash: an account may hand its validators a hash of its
own, attack 351.)"""
PROBE_CONTROL_HASH = keccak(b"keyscope.account-premises.control")
"""A hash the probe validator takes from any ``sender``: the control that the account routes the question to it."""
PROBE_FORWARDER = "0x00000000000000000000000000000000005ec0f0"
"""Where the forwarder runs in the sender probe's ``eth_call``: an address without code anywhere (the call's
override gives it code for that call only)."""
PROBE_ORIGIN = "0x00000000000000000000000000000000005ec0f1"
"""The sender probe's ``eth_call`` origin (``from``): neither the forwarder nor the account."""

_IS_VALID_SIGNATURE_WITH_SENDER = keccak(b"isValidSignatureWithSender(address,bytes32,bytes)")[:4]
_VALIDATE_USER_OP = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32)"
)[:4]
_VALIDATE_USER_OP_V07 = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
_ERC1271_MAGIC = IS_VALID_SIGNATURE[:4]
_NO_WORD = bytes.fromhex("ffffffff")
SIG_VALIDATION_FAILED = 1
_IS_SESSION_ACTIVE = keccak(b"isSessionActive(address,bytes32)")[:4]
# the session module's storage (docs/session-module.md, "Storage layout")
_ACCOUNTS_BASE = 2
_PERMISSIONS_BASE = 3
_SESSIONS_BASE = 4
_LIVE_SESSIONS_BASE = 5
_LIVE = 1 << 248
"""A permission header's live flag."""
_ACTIVE = 1 << 192
"""A session meta word's status: active."""
_MAX_LIVE_PERMISSIONS = 256


def _assemble(program: list[str | bytes]) -> bytes:
    """EVM code from ``program``: bytes as they are, ``"@name"`` a JUMPDEST labelled ``name``, ``">name"`` a PUSH1
    of that label's offset."""
    labels: dict[str, int] = {}
    offset = 0
    for part in program:
        if isinstance(part, bytes):
            offset += len(part)
        elif part.startswith("@"):
            labels[part[1:]] = offset
            offset += 1
        else:
            offset += 2
    code = bytearray()
    for part in program:
        if isinstance(part, bytes):
            code += part
        elif part.startswith("@"):
            code.append(0x5B)  # JUMPDEST
        else:
            code += bytes([0x60, labels[part[1:]]])  # PUSH1 label
    return bytes(code)


def _return_word(word: bytes) -> bytes:
    """Code returning the 32-byte ``word``."""
    return b"\x7f" + word + bytes.fromhex("60005260206000f3")  # PUSH32 word, MSTORE at 0, RETURN 32 bytes


PROBE_VALIDATOR_CODE = _assemble(
    [
        bytes.fromhex("60003560e01c8063") + _IS_VALID_SIGNATURE_WITH_SENDER + b"\x14",  # selector == 1271's?
        ">erc1271",
        b"\x57",  # JUMPI
        # the validator's validateUserOp(userOp, hash) of an operation whose nonce (the struct's word 1) has the
        # failure sequence in its low 64 bits: SIG_VALIDATION_FAILED
        b"\x63"
        + _VALIDATE_USER_OP
        + bytes.fromhex("1460043560240135")
        + b"\x67"
        + bytes.fromhex("ffffffffffffffff")
        + b"\x16\x63"
        + PROBE_FAILURE_SEQUENCE.to_bytes(4, "big")
        + bytes.fromhex("1416"),
        ">failure",
        b"\x57",
        _return_word(PROBE_VALIDATION.to_bytes(32, "big")),  # anything else: the validation data
        "@failure",
        _return_word((1).to_bytes(32, "big")),
        "@erc1271",
        # hash (word 1) == the control, or == sender (word 0): the magic value, else 0xffffffff
        bytes.fromhex("602435807f") + PROBE_CONTROL_HASH + bytes.fromhex("14906004351417"),
        ">yes",
        b"\x57",
        _return_word(_NO_WORD + bytes(28)),
        "@yes",
        _return_word(_ERC1271_MAGIC + bytes(28)),
    ]
)
"""Runtime code of the probe validator: ``isValidSignatureWithSender(sender, hash, signature)`` answers ERC-1271's
magic value when ``hash`` is :data:`PROBE_CONTROL_HASH` or the ``sender`` itself (as a word), ``0xffffffff``
otherwise; ``validateUserOp`` of an operation whose nonce sequence is :data:`PROBE_FAILURE_SEQUENCE` returns
SIG_VALIDATION_FAILED (1); any other call returns :data:`PROBE_VALIDATION`."""

FORWARDER_CODE = _assemble(
    [
        # calldata: target (20 bytes) ‖ data; call target with data, answer with its answer
        bytes.fromhex("60143603806014600037600060008260006000"),  # n, calldatacopy(0, 20, n), CALL's args
        bytes.fromhex("60003560601c5af13d600060003e"),  # target, gas, CALL; returndatacopy(0, 0, size)
        ">done",
        b"\x57",
        bytes.fromhex("3d6000fd"),  # revert with the answer
        "@done",
        bytes.fromhex("3d6000f3"),  # return the answer
    ]
)
"""Runtime code of the forwarder: called with ``target (20 bytes) ‖ data``, it calls ``target`` with ``data``."""


class _Occasion(NamedTuple):
    """What the owner is doing when the account is asked, as the refusals and warnings say it."""

    doing: str
    """The owner's step, as a warning opens: ``granting on`` the account."""
    stop: str
    """What a refusal ends with: what was not done, and what not to do on such an account."""
    premises: str
    """The premises asked, as a warning that they could not be asked names them."""


_GRANT = _Occasion(
    "granting on",
    "Nothing was signed: do not grant sessions on this account",
    "the EntryPoint the session module's validation data as it is and the module its caller as ERC-1271's sender "
    "(a session's bounds rest on both",
)
_INSTALL = _Occasion(
    "installing the session module on",
    "Nothing was sent: do not install the session module on this account",
    "the EntryPoint the session module's validation data as it is (a session's bounds rest on it",
)


@runtime_checkable
class CodeOverrides(Protocol):
    """A chain that runs an ``eth_call`` with other code at some addresses (:meth:`RpcChain.call_with_code`)."""

    def call_with_code(
        self,
        to: str,
        data: bytes,
        codes: Mapping[str, bytes],
        *,
        sender: str | None = None,
        storage: Mapping[str, Mapping[int, int]] | None = None,
    ) -> bytes: ...


def refuse_broken_premises(
    chain: Chain, kind: AccountKind, account: str, module: str, entry_point: str, *, signing: bool
) -> None:
    """Before the owner signs a grant on the deployed ``account``, driven by ``kind`` (the generic ERC-7579
    adapter or a subclass made for no vendor's account: not the reference account's, which keeps both), ask the
    account whether it keeps the premises above, the code of one of its validators (the session module, or the
    owner's validator while the module is not installed) replaced for the call by the probe validator's, or, for
    the window with the module installed, the module's own code holding a session planted for the call. Raise
    :class:`~keyscope.errors.AccountSetupError` for an account that answers the probe's (or the planted session's)
    ``validateUserOp`` success with a wider window, or its refusal with anything but a refusal, and, when the session has
    ``signing`` permissions, one that hands its validator another ``sender`` than its caller (the zero address, the
    origin of the call, itself); and, first, one that answers an operation its validator refuses, running the
    validator's own code (signed by a key nobody holds), with anything but a refusal. What cannot be asked (a node
    without state overrides, no installed validator to
    ask through, an account that takes neither probe's answer) gives an
    :class:`~keyscope.errors.AccountPremiseWarning` saying so."""
    _refuse_broken(chain, kind, account, module, entry_point, signing=signing, occasion=_GRANT)


def refuse_install_on_broken_premises(
    chain: Chain, kind: AccountKind, account: str, module: str, entry_point: str
) -> None:
    """Before the owner's operation installing the session ``module`` on the deployed ``account`` (driven by
    ``kind``, as for :func:`refuse_broken_premises`) is signed, ask the account whether it hands the EntryPoint its
    validator's validation data as it is, through the owner's validator (the module is not installed yet), and raise
    :class:`~keyscope.errors.AccountSetupError` for one that does not: on an account taking its validators' refusal
    for a yes, anyone's operation naming the module runs any call as soon as it is installed, no session granted.
    The ``sender`` premise is left to each grant of signing permissions (a session of calls only does not rest on
    it). What cannot be asked gives an :class:`~keyscope.errors.AccountPremiseWarning` saying so."""
    _refuse_broken(chain, kind, account, module, entry_point, signing=False, occasion=_INSTALL)


def _refuse_broken(
    chain: Chain,
    kind: AccountKind,
    account: str,
    module: str,
    entry_point: str,
    *,
    signing: bool,
    occasion: _Occasion,
) -> None:
    """:func:`refuse_broken_premises` on ``occasion``."""
    address = to_address(account)
    validator = to_address(module)
    if validator_installed(chain, address, validator) is not True:
        owner_validator = kind.owner_validator
        if owner_validator is None or validator_installed(chain, address, owner_validator) is not True:
            _cannot_ask(
                occasion,
                kind,
                address,
                f"neither the session module {validator} nor an owner validator is installed on it",
            )
            return
        validator = to_address(owner_validator)
    # first with the validator's own code, which an account cannot tell from an operation's (attack 418)
    _ask_refusal_of_its_own_code(chain, occasion, kind, address, validator, entry_point)
    if not isinstance(chain, CodeOverrides):
        _cannot_ask(occasion, kind, address, "the chain's client runs no eth_call with a state override")
        return
    codes = {validator: PROBE_VALIDATOR_CODE, PROBE_FORWARDER: FORWARDER_CODE}
    try:
        applied = chain.call_with_code(validator, b"\x00\x00\x00\x00", codes)
    except TransportError:
        raise
    # a node refusing overrides, or a client without them (eth-tester raises a TypeError)
    except Exception as error:
        _cannot_ask(
            occasion,
            kind,
            address,
            f"the node refused an eth_call with a state override ({type(error).__name__}: {error})",
        )
        return
    if applied[:32] != PROBE_VALIDATION.to_bytes(32, "big"):
        _cannot_ask(occasion, kind, address, "the node does not apply an eth_call's state override")
        return
    # the window, asked of the module's own code with a session planted in its storage when it is installed and
    # the node applies storage overrides (attack 425); else of the probe's code (attack 419: an account can tell it)
    planted = (
        _ask_planted_window(chain, kind, address, validator, entry_point, occasion)
        if validator == to_address(module)
        else None
    )
    if planted is None:
        planted = _ask_validation(chain, kind, address, validator, entry_point, codes, occasion)
    if planted:
        _ask_refusal(chain, kind, address, validator, entry_point, codes, occasion)
    if signing:
        _ask_sender(chain, chain, kind, address, validator, codes, occasion)


def _validate(
    chain: Chain,
    kind: AccountKind,
    account: str,
    validator: str,
    entry_point: str,
    codes: Mapping[str, bytes],
    sequence: int,
    signature: bytes = bytes(65),
    target: str | None = None,
    *,
    storage: Mapping[str, Mapping[int, int]] | None = None,
    user_op_hash: bytes = keccak(b"keyscope.account-premises.userOpHash"),
) -> int | str:
    """The account's ``validateUserOp`` answer for an operation ``validator`` validates, of nonce ``sequence`` on
    the validator's key and ``signature`` (framed as the adapter frames it), calling ``target`` (by default the
    validator) with nothing, asked from the EntryPoint with ``user_op_hash`` and with the code of ``codes`` at
    their addresses and the words of ``storage`` in their slots (none: the chain's own state): the validation
    data, or why there is none."""
    op = UserOperation(
        sender=account,
        nonce=(kind.nonce_key(validator) << 64) | sequence,
        call_data=encode_execute(Call.of(target or validator, 0, b"")),
        signature=kind.validator_user_op_signature(validator, signature),
    )
    data = _VALIDATE_USER_OP_V07 + abi_encode(
        ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)", "bytes32", "uint256"],
        [op.pack().as_tuple(), user_op_hash, 0],
    )
    try:
        if codes or storage:
            assert isinstance(chain, CodeOverrides)
            answer = chain.call_with_code(
                account, data, codes, sender=to_address(entry_point), storage=storage
            )
        else:
            answer = chain.call(account, data, sender=to_address(entry_point))
    except (CallRevertedError, JsonRpcError) as error:
        return f"its validateUserOp, the validator selected as the adapter selects it, failed ({error})"
    if len(answer) < 32:
        return f"its validateUserOp answered 0x{answer.hex()}, no word"
    (validation,) = abi_decode(["uint256"], answer[:32])
    return int(validation)


def _ask_validation(
    chain: Chain,
    kind: AccountKind,
    account: str,
    validator: str,
    entry_point: str,
    codes: Mapping[str, bytes],
    occasion: _Occasion,
) -> bool:
    """Refuse an account that hands the EntryPoint a wider window than its validator's :data:`PROBE_VALIDATION`;
    whether the account took the probe's success (False: it was warned of)."""
    validation = _validate(chain, kind, account, validator, entry_point, codes, 0)
    if isinstance(validation, str):
        _cannot_ask(occasion, kind, account, validation)
        return False
    if validation & ((1 << 160) - 1) == SIG_VALIDATION_FAILED:
        _cannot_ask(
            occasion,
            kind,
            account,
            f"its validateUserOp, the validator {validator} selected as the adapter selects it, did not take the "
            f"validator's success (it answered 0x{validation:064x})",
        )
        return False
    after = (validation >> 208) & ((1 << 48) - 1)
    until = (validation >> 160) & ((1 << 48) - 1)
    aggregator = validation & ((1 << 160) - 1)
    if aggregator == 0 and after >= PROBE_VALID_AFTER and until != 0 and until <= PROBE_VALID_UNTIL:
        return True
    what = (
        f"validAfter {after} and validUntil {until}{' (no end)' if until == 0 else ''}"
        if aggregator == 0
        else f"the aggregator 0x{aggregator:040x}, which no validator named"
    )
    _refuse_validation(
        chain,
        occasion,
        kind,
        account,
        f"asked (eth_call, the code of its validator {validator} replaced by a validator answering success with "
        f"validAfter {PROBE_VALID_AFTER} and validUntil {PROBE_VALID_UNTIL}), it answered {what}. The module reads "
        "no clock, so on this account a session's key, leaked or not, would run its operations outside the "
        "session's window and in limit periods other than the one they were counted in",
    )
    return True


class _PlantedSession(NamedTuple):
    """A session the module's storage holds for one ``eth_call`` only (a state override of its storage)."""

    key: LocalSigner
    """The session's key: a fresh one, which only this question holds."""
    session_id: bytes
    """The session's id: fresh random bytes."""
    valid_after: int
    """The session's validAfter."""
    valid_until: int
    """The session's validUntil."""
    storage: dict[int, int]
    """The module's storage words (slot to word) the session takes, the others left as they are."""


def _mapping_slot(account: str, key: bytes, base: int) -> int:
    """The slot of ``variable[key][account]`` for the module's variable at ``base`` (docs/session-module.md,
    "Storage layout"): ``keccak256(account ‖ keccak256(key ‖ base))``, each a 32-byte word."""
    inner = keccak(key + base.to_bytes(32, "big"))
    return int.from_bytes(keccak(bytes(12) + bytes.fromhex(account[2:]) + inner), "big")


def _plant_session(chain: Chain, module: str, account: str) -> _PlantedSession | None:
    """A session of ``account`` enabled in ``module``'s storage as ``enableSession`` leaves one (its permission's
    header, its meta word and grant, its place at the end of the account's live list, the account's counts), for a
    fresh key, allowing a call to an address without code with nothing (selector 0) in a window of random bounds
    around the latest block's time; None when the module's storage cannot be read (a chain without raw requests)
    or holds the most live permissions it takes."""
    state_slot = int.from_bytes(keccak(bytes(12) + bytes.fromhex(account[2:]) + _word(_ACCOUNTS_BASE)), "big")
    try:
        state = int(node_request(chain, "eth_getStorageAt", [module, hex(state_slot), "latest"]), 16)
    except TransportError:
        raise
    except Exception:  # a chain object without raw requests, a node refusing the method
        return None
    epoch, live_sessions, live_permissions = (
        state & 0xFFFFFFFF,
        (state >> 40) & 0xFFFF,
        (state >> 56) & 0xFFFF,
    )
    if live_permissions >= _MAX_LIVE_PERMISSIONS:
        return None
    key = LocalSigner.generate()
    session_id = secrets.token_bytes(32)
    now = chain.block_timestamp()
    valid_after = now - 3600 - secrets.randbelow(30 * 86400)
    valid_until = now + 3600 + secrets.randbelow(30 * 86400)
    target = bytes.fromhex(PROBE_ORIGIN[2:])
    permission = keccak(bytes.fromhex(key.address[2:]) + target + bytes(4))
    session = _mapping_slot(account, session_id, _SESSIONS_BASE)
    storage = {
        _mapping_slot(account, permission, _PERMISSIONS_BASE): valid_after | (valid_until << 48) | _LIVE,
        session: int(key.address, 16) | (epoch << 160) | _ACTIVE | (1 << 200) | (live_sessions << 208),
        session + 1: int.from_bytes(target, "big"),
        _mapping_slot(account, _word(live_sessions), _LIVE_SESSIONS_BASE): int.from_bytes(session_id, "big"),
        state_slot: (state & ~(0xFFFFFFFF << 40))
        | ((live_sessions + 1) << 40)
        | ((live_permissions + 1) << 56),
    }
    return _PlantedSession(key, session_id, valid_after, valid_until, storage)


def _word(value: int) -> bytes:
    """``value`` as a 32-byte word."""
    return value.to_bytes(32, "big")


def _ask_planted_window(
    chain: Chain, kind: AccountKind, account: str, module: str, entry_point: str, occasion: _Occasion
) -> bool | None:
    """Ask the window of the installed session ``module``'s own code: a session planted in its storage for the
    ``eth_call`` (:func:`_plant_session`), whose key signs an operation of the one call it allows, asked of the
    account's ``validateUserOp`` from the EntryPoint. Refuse an account that answers the module's success with a
    wider window than the session's; warn of one that does not take it. None when the question cannot be asked so
    (a node not applying storage overrides): the probe's code is asked instead."""
    assert isinstance(chain, CodeOverrides)
    planted = _plant_session(chain, module, account)
    if planted is None:
        return None
    storage = {module: planted.storage}
    question = _IS_SESSION_ACTIVE + abi_encode(["address", "bytes32"], [account, planted.session_id])
    try:
        active = chain.call_with_code(module, question, {}, storage=storage)
    except TransportError:
        raise
    except Exception:  # a node refusing a storage override
        return None
    if active[:32] != _word(1):
        return None  # the node does not apply a storage override
    user_op_hash = secrets.token_bytes(32)
    validation = _validate(
        chain,
        kind,
        account,
        module,
        entry_point,
        {},
        0,
        planted.key.sign_hash(user_op_hash),
        PROBE_ORIGIN,
        storage=storage,
        user_op_hash=user_op_hash,
    )
    asked = (
        f"asked (eth_call from the EntryPoint, the session module {module} running its own code, a session planted "
        f"in its storage with validAfter {planted.valid_after} and validUntil {planted.valid_until}) about an "
        "operation that session's key signed"
    )
    if isinstance(validation, str) or validation & ((1 << 160) - 1) == SIG_VALIDATION_FAILED:
        why = validation if isinstance(validation, str) else f"it answered 0x{validation:064x}, a refusal"
        _cannot_ask(
            occasion,
            kind,
            account,
            f"{asked}, its validateUserOp did not take the validator's success ({why})",
        )
        return False
    after = (validation >> 208) & ((1 << 48) - 1)
    until = (validation >> 160) & ((1 << 48) - 1)
    aggregator = validation & ((1 << 160) - 1)
    if aggregator == 0 and after >= planted.valid_after and until != 0 and until <= planted.valid_until:
        return True
    what = (
        f"validAfter {after} and validUntil {until}{' (no end)' if until == 0 else ''}"
        if aggregator == 0
        else f"the aggregator 0x{aggregator:040x}, which the module did not name"
    )
    _refuse_validation(
        chain,
        occasion,
        kind,
        account,
        f"{asked}, it answered {what}. The module reads no clock, so on this account a session's key, leaked or "
        "not, would run its operations outside the session's window and in limit periods other than the one they "
        "were counted in",
    )
    return True


def _ask_refusal(
    chain: Chain,
    kind: AccountKind,
    account: str,
    validator: str,
    entry_point: str,
    codes: Mapping[str, bytes],
    occasion: _Occasion,
) -> None:
    """Refuse an account that hands the EntryPoint anything but a refusal (or reverts) for its validator's
    SIG_VALIDATION_FAILED."""
    validation = _validate(chain, kind, account, validator, entry_point, codes, PROBE_FAILURE_SEQUENCE)
    if isinstance(validation, str) or validation & ((1 << 160) - 1) == SIG_VALIDATION_FAILED:
        return  # a revert or a refusal: the operation does not run
    _refuse_validation(
        chain,
        occasion,
        kind,
        account,
        f"asked (eth_call, the code of its validator {validator} replaced by a validator answering "
        f"SIG_VALIDATION_FAILED), it answered 0x{validation:064x}, which is no refusal. The session module refuses "
        "an operation with an unknown key's signature, or one its session does not allow, by that answer, so on "
        "this account anyone could run any call through the module",
    )


def _ask_refusal_of_its_own_code(
    chain: Chain, occasion: _Occasion, kind: AccountKind, account: str, validator: str, entry_point: str
) -> None:
    """Refuse an account that hands the EntryPoint anything but a refusal (or reverts) for an operation naming its
    installed ``validator``, running its own code, signed by a key nobody holds (a fresh one): the validator refuses
    it, so a success is the account's (or the validator's) doing. No state override: an account cannot tell this
    question from an operation by its validator's code hash, as it can the probe's (attack 418)."""
    nobody = LocalSigner.generate().sign_hash(keccak(b"keyscope.account-premises.nobody"))
    # a call to an address without code: the module refuses a call to itself before it looks at the signature
    validation = _validate(
        chain, kind, account, validator, entry_point, {}, PROBE_FAILURE_SEQUENCE, nobody, PROBE_ORIGIN
    )
    if isinstance(validation, str) or validation & ((1 << 160) - 1) == SIG_VALIDATION_FAILED:
        return  # a revert or a refusal: the operation does not run
    _refuse_validation(
        chain,
        occasion,
        kind,
        account,
        f"asked (eth_call from the EntryPoint, its validator {validator} running its own code) about an operation "
        f"naming that validator and signed by a key nobody holds, it answered 0x{validation:064x}, which is no "
        "refusal. The session module refuses an operation with an unknown key's signature, or one its session does "
        "not allow, by a refusal, so on this account anyone could run any call through the module",
    )


def _refuse_validation(chain: Chain, occasion: _Occasion, kind: AccountKind, account: str, what: str) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError`: the account does not hand on its validator's answer."""
    found = account_id(chain, account)
    raise AccountSetupError(
        f"the account {account} (accountId() {found!r}, driven by the {kind.name!r} adapter) does not hand the "
        f"EntryPoint its validator's validation data as it is: {what} (docs/accounts.md: an account must return "
        f"the module's validation data as it is). {occasion.stop}",
        account=account,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )


def _ask_sender(
    chain: Chain,
    probe: CodeOverrides,
    kind: AccountKind,
    account: str,
    module: str,
    codes: Mapping[str, bytes],
    occasion: _Occasion,
) -> None:
    """Whether the account hands the module its caller (the forwarder) as ``sender``: a question the probe
    validator answers yes for that sender only, after a control question it answers yes for any sender."""
    signature = kind.validator_erc1271_signature(module, bytes(65))

    def ask(digest: bytes) -> bytes | None:
        question = IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])
        try:
            answer = probe.call_with_code(
                PROBE_FORWARDER, bytes.fromhex(account[2:]) + question, codes, sender=PROBE_ORIGIN
            )
        except (CallRevertedError, JsonRpcError) as error:
            _cannot_ask(
                occasion,
                kind,
                account,
                f"its isValidSignature, the validator named as the adapter names it, failed ({error})",
            )
            return None
        return answer[:4]

    control = ask(PROBE_CONTROL_HASH)
    if control is None:
        return
    if control != _ERC1271_MAGIC:
        _cannot_ask(
            occasion,
            kind,
            account,
            f"its isValidSignature, the validator named as the adapter names it, answered 0x{control.hex()} where the "
            "module said yes",
        )
        return
    answer = ask(bytes(12) + bytes.fromhex(PROBE_FORWARDER[2:]))
    if answer is None or answer == _ERC1271_MAGIC:
        return
    found = account_id(chain, account)
    raise AccountSetupError(
        f"the account {account} (accountId() {found!r}, driven by the {kind.name!r} adapter) does not hand the "
        "session module its caller as ERC-1271's sender: asked by a contract (eth_call from another origin, the code "
        f"of its validator {module} replaced by one that says yes only to a sender that is the caller), it answered "
        f"0x{answer.hex()}. The module refuses a session's signature to the account's own modules (its owner's "
        "validator among them, which take the account's ERC-1271 answer as the owner's approval of their "
        "configuration) by sender only, so on this account a session's key, leaked or not, could sign as the owner "
        "for them (docs/accounts.md: an account must pass its caller as sender). Nothing was signed: do not grant "
        "signing permissions on this account",
        account=account,
        account_id=found,
        kind=kind.name,
        validator=kind.owner_validator,
    )


def warn_premises_unasked(kind: AccountKind, account: str, why: str) -> None:
    """Issue the :class:`~keyscope.errors.AccountPremiseWarning` of a grant on ``account`` (driven by ``kind``) whose
    premises could not be asked, saying ``why``: an account without code yet, say."""
    _cannot_ask(_GRANT, kind, account, why)


def _cannot_ask(occasion: _Occasion, kind: AccountKind, account: str, why: str) -> None:
    """Warn that the premises could not be asked of ``account``, and why."""
    warnings.warn(
        f"{occasion.doing} {account}, an ERC-7579 account driven by the {kind.name!r} adapter (made for no vendor's "
        f"account, so nothing is known of how it treats the session module): could not ask the account whether it "
        f"hands {occasion.premises}, docs/accounts.md): {why}; check before relying on a session",
        AccountPremiseWarning,
        stacklevel=caller_stacklevel(),
    )
