"""Every error keyscope raises, under one root: :class:`KeyscopeError`.

Each class carries the context a caller needs to act (which permission and rule a call broke, the
JSON-RPC code and ``AAxx`` reason a bundler returned, the method that failed), and its message says
what was wrong and what to do. Classes that have an obvious builtin counterpart also inherit it
(``ValueError`` for bad input, ``TimeoutError`` for timeouts), so generic handlers keep working.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from pydantic import ValidationError

__all__ = [
    "AccountPremiseWarning",
    "AccountSetupError",
    "BadInputError",
    "BundlerError",
    "BundlerRejectedError",
    "CallRevertedError",
    "CoSignerMismatchError",
    "ConfigurationError",
    "DelegationError",
    "DeploymentError",
    "GasCostTooHighError",
    "InsufficientPrefundError",
    "InvalidAbiError",
    "InvalidAddressError",
    "InvalidFieldsError",
    "InvalidGrantSignatureError",
    "KeyscopeError",
    "KeyscopeWarning",
    "LeaseLostError",
    "LimitError",
    "LimitExceededError",
    "LimitPeriodEndingError",
    "NonceTakenError",
    "OwnerGasCostTooHighError",
    "PaymasterError",
    "PolicyViolationError",
    "ReceiptContradictedError",
    "ReceiptUnconfirmedError",
    "RuleRefusalError",
    "SessionError",
    "SessionExpiredError",
    "SessionNotYetValidError",
    "SessionRevokedError",
    "SessionStoreError",
    "SigningDeclinedError",
    "SimulationRevertedError",
    "StoreLockedError",
    "StoreNotFoundError",
    "TargetRevertedError",
    "TargetWarning",
    "TargetWithoutCodeError",
    "TransportError",
    "UnknownFunctionError",
    "UnknownOptionError",
    "UnsupportedAccountError",
    "UnsupportedAccountVersionError",
    "UnsupportedEntryPointError",
    "UserOperationFailedError",
    "UserOperationTimeoutError",
    "UserOperationUnknownError",
    "WrongPassphraseError",
    "a_type",
    "shown",
    "validation_problems",
    "without_private_keys",
]


def hex_shown(value: Any, _depth: int = 0) -> Any:
    """``value`` with every ``bytes`` in it (also inside lists, tuples, sets and dicts, keys included) as 0x-hex
    text: what a person sees of bytes. Containers nested deeper than a message can show (or holding themselves)
    are cut to ``"…"``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple, set, frozenset, dict)) and _depth >= _SHOWN_DEPTH:
        return "…"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [hex_shown(item, _depth + 1) for item in value]
        try:
            return (
                value._make(items) if hasattr(value, "_make") else type(value)(items)
            )  # a named tuple: _make
        except Exception:  # a subclass whose constructor takes more than the items: shown as its builtin kind
            return next(kind for kind in (list, tuple, set, frozenset) if isinstance(value, kind))(items)
    if isinstance(value, dict):
        return {hex_shown(key, _depth + 1): hex_shown(item, _depth + 1) for key, item in value.items()}
    return value


_SHOWN_DEPTH = 8
"""How deep :func:`hex_shown` goes into nested containers."""


def shown(value: object, limit: int = 120) -> str:
    """``repr(value)`` for a message, with bytes as 0x-hex (never a Python ``b'...'`` literal), cut at ``limit``
    characters."""
    text = repr(hex_shown(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def a_type(value: object) -> str:
    """What ``value`` is, for a message that refuses it: ``None``, or its type's name with its article (``an int``, ``a
    str``), never "a int" or "a NoneType"."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


ENDPOINT_TEXT_SHOWN = 4096
"""How many characters of an endpoint's error text an exception's message shows (the whole text stays on the
exception, as ``rpc_message``)."""


def endpoint_text(text: str, limit: int = ENDPOINT_TEXT_SHOWN) -> str:
    """An endpoint's error text as a message shows it: whole when short, else its first ``limit`` characters and the
    whole text's length. An endpoint may answer megabytes of text; a message a terminal or a log line takes whole
    must not."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (the first {limit} of {len(text)} characters: the whole text is the exception's rpc_message)"


class KeyscopeError(Exception):
    """Root of every exception keyscope raises."""


class KeyscopeWarning(UserWarning):
    """Root of the warnings keyscope gives: something works, but probably not as meant."""


class AccountPremiseWarning(KeyscopeWarning):
    """A grant on an ERC-7579 account keyscope has no adapter of its own for, whose two premises of a session's
    bounds (it hands the EntryPoint the module's validation data as it is, and the module its caller as ERC-1271's
    ``sender``) could not be asked of the account before the owner signed: the node applies no state overrides,
    the module is not installed yet, or the account did not take the probe's answer. Check them before relying on
    the session (docs/accounts.md)."""


class TargetWarning(KeyscopeWarning):
    """A grant lets the key do what its words do not show, as the consent page warns of it: a target has no code on
    the chain or is known to lack the granted function, a function runs calls no rule holds, an approval the account
    gave stands, an address passes for another, and the like (each warning says what and what to do)."""


class DelegationWarning(KeyscopeWarning):
    """An EOA's upgrade goes by a UserOperation while the EOA delegates to other code, which can still act until the
    operation's authorization lands: the EOA's own type-4 transaction (``upgrade(..., transaction=True)``) leaves it
    no such moment."""


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


class BadInputError(KeyscopeError, ValueError):
    """A value given to keyscope is malformed. The message names the value and the expected form."""


_PRIVATE_KEY_TEXT = re.compile(r"(0[xX])?[0-9a-fA-F]{64}")


def has_private_key_form(value: object) -> bool:
    """Whether ``value`` has the form of a private key: 32 bytes, or 64 hex digits with or without ``0x`` (a
    hash has it too). Where an address is expected, such a value is most likely a key given in its place."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value) == 32
    return isinstance(value, str) and _PRIVATE_KEY_TEXT.fullmatch(value.strip()) is not None


_NEAR_PRIVATE_KEY_TEXT = re.compile(r"(0[xX])?[0-9a-fA-F]{56,72}")


def _near_private_key_form(value: object) -> bool:
    """Whether ``value`` is hex text a few digits off a private key's 64 (one pasted with a digit lost or doubled):
    no address, and not shown where an address was expected."""
    return isinstance(value, str) and _NEAR_PRIVATE_KEY_TEXT.fullmatch(value.strip()) is not None


PRIVATE_KEY_NOT_SHOWN = "a value of 32 bytes, the form of a private key (not shown)"
"""How a value :func:`has_private_key_form` says is key-shaped is named in a message instead of being shown."""

_PRIVATE_KEY_IN_TEXT = re.compile(r"(['\"]?)(?<![0-9a-fA-F])(0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])\1")


def without_private_keys(text: str) -> str:
    """``text`` with every word of the form of a private key (64 hex digits, with or without ``0x``, quoted or not)
    replaced by :data:`PRIVATE_KEY_NOT_SHOWN`: for a message that echoes what was given (a command-line parser's
    "invalid value '…'") where a key may have been pasted in place of another value."""
    return _PRIVATE_KEY_IN_TEXT.sub(PRIVATE_KEY_NOT_SHOWN, text)


class InvalidAddressError(BadInputError):
    """Not a 20-byte Ethereum address, or a mixed-case address with a wrong EIP-55 checksum.

    A value with the form of a private key (:func:`has_private_key_form`: a key given where its address was
    expected) is never shown, in the message or as :attr:`value` (which is then None)."""

    def __init__(self, value: object, reason: str = "", name: str | None = None) -> None:
        near = not has_private_key_form(value) and _near_private_key_form(value)
        secret = has_private_key_form(value) or near
        self.value = None if secret else value
        self.name = name
        self.reason = reason
        self.shown_value = (
            f"a value of {len(str(value).strip().removeprefix('0x').removeprefix('0X'))} hex digits, near the form of "
            "a private key (not shown)"
            if near
            else PRIVATE_KEY_NOT_SHOWN
            if secret
            else shown(value)
        )
        """The value as a message shows it."""
        detail = f": {reason}" if reason else ""
        where = f"{name}: " if name else ""
        self.advice = (
            "If it is a key, give its address instead: 0x followed by 40 hex digits."
            if secret
            else "Give 0x followed by 40 hex digits (all lowercase, or with a correct EIP-55 checksum)."
        )
        """What to give instead, as the message ends."""
        super().__init__(f"{where}{self.shown_value} is not a valid address{detail}. {self.advice}")


class InvalidFieldsError(BadInputError):
    """A keyscope model (a ``Rule``, ``Permission``, ``Session``, ``UserOperation``, ...) built from values it
    cannot take. ``model`` names it; ``problems`` lists each wrong field as pydantic reports it (``loc``, ``msg``,
    ``type``), ``summary`` says them in words, after the model's name in the message."""

    def __init__(self, model: str, error: ValidationError) -> None:
        self.model = model
        self.problems = error.errors(include_url=False, include_input=False, include_context=False)
        self.summary = validation_problems(error)
        super().__init__(f"cannot build a {model}: {self.summary}")


class RaisesBadInput:
    """A mixin for pydantic models: building one from values it cannot take raises :class:`InvalidFieldsError`
    (under keyscope's root) instead of pydantic's ``ValidationError``. ``model_validate`` is unchanged."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise InvalidFieldsError(type(self).__name__, error) from None

    # pydantic calls a model's own __init__ while validating nested models; marked as its base one, this one
    # is not (so model_validate keeps pydantic's errors, with their locations)
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


class InvalidAbiError(BadInputError):
    """An ABI (or a function signature) could not be read."""


class UnknownFunctionError(BadInputError):
    """A function name or signature that the given ABI does not contain."""

    def __init__(self, function: str, available: list[str] | None = None) -> None:
        self.function = function
        self.available = available or []
        hint = (
            f" Functions in the ABI: {', '.join(self.available)}."
            if self.available
            else " The ABI has no functions: check that it is the contract's ABI."
            if available is not None
            else ""
        )
        super().__init__(f"unknown function {function!r}.{hint}")


class UnknownOptionError(BadInputError, TypeError):
    """A keyword argument that keyscope does not take (a typo, most often): the ``TypeError`` Python raises for an
    unknown keyword, under keyscope's root. The message names the argument and the ones that exist."""


class SigningDeclinedError(KeyscopeError):
    """A signer did not sign (its holder said no, or could not be asked), or signed with another key."""


class InvalidGrantSignatureError(BadInputError):
    """The owner's signature of an off-chain grant does not verify: the session's first operation would be
    refused (AA23), so the grant is refused at once. ``account`` is the account, ``owner`` the key that should
    have signed (None when unknown), ``recovered`` the address the signature recovers to (None when it recovers
    to none)."""

    def __init__(
        self, message: str, *, account: str, owner: str | None = None, recovered: str | None = None
    ) -> None:
        self.account = account
        self.owner = owner
        self.recovered = recovered
        super().__init__(message)


class ConfigurationError(KeyscopeError):
    """keyscope is missing something it needs (a tool, a deployment, a setting)."""


class DeploymentError(KeyscopeError):
    """A transaction of a deployment reverted or was not mined, or a contract's code is not where it must be."""


class UnsupportedAccountError(KeyscopeError):
    """The smart account is not of the kind expected, or cannot use sessions yet."""


class AccountSetupError(UnsupportedAccountError):
    """The account does not work the way its adapter was told: the owner validator is not installed on it, or
    it refuses the owner's signature as the adapter shapes it (a wrong kind, validator or owner key).

    ``account`` is the account, ``account_id`` its ``accountId()`` (None when unknown), ``kind`` the adapter's
    name and ``validator`` the owner validator concerned (None for accounts that check the owner themselves).
    """

    def __init__(
        self,
        message: str,
        *,
        account: str,
        account_id: str | None = None,
        kind: str | None = None,
        validator: str | None = None,
    ) -> None:
        self.account = account
        self.account_id = account_id
        self.kind = kind
        self.validator = validator
        super().__init__(message)


class UnsupportedAccountVersionError(UnsupportedAccountError):
    """The account is of a vendor keyscope has an adapter for, but in another version than the adapter is made for,
    and the generic ERC-7579 adapter is known not to fit that vendor's accounts: keyscope does not guess.

    ``account`` is the account, ``account_id`` its ``accountId()``, ``vendor`` the account family (e.g. "ZeroDev
    Kernel"), ``supported`` the ``accountId()`` prefix keyscope's adapter for it is made for, ``adapter`` that
    adapter's class name, and ``domain_version`` the version in the account's ERC-5267 ``eip712Domain()`` (None
    when it has none).
    """

    def __init__(
        self,
        message: str,
        *,
        account: str,
        account_id: str,
        vendor: str,
        supported: str,
        adapter: str,
        domain_version: str | None = None,
    ) -> None:
        self.account = account
        self.account_id = account_id
        self.vendor = vendor
        self.supported = supported
        self.adapter = adapter
        self.domain_version = domain_version
        super().__init__(message)


class DelegationError(UnsupportedAccountError):
    """An EOA's EIP-7702 delegation did not go as asked: its transaction reverted, or the EOA does not delegate to
    the code expected afterwards.

    ``account`` is the EOA, ``delegate`` the code it was to delegate to (None: to clear its code), ``transaction``
    the hash of the EOA's own transaction when there was one (0x-hex).
    """

    def __init__(
        self, message: str, *, account: str, delegate: str | None = None, transaction: str | None = None
    ) -> None:
        self.account = account
        self.delegate = delegate
        self.transaction = transaction
        super().__init__(message)


# --------------------------------------------------------------------------------------------------
# Policy and sessions
# --------------------------------------------------------------------------------------------------


class SessionError(KeyscopeError):
    """A session cannot be used. ``session_id`` names it."""

    def __init__(self, message: str, session_id: str | None = None) -> None:
        self.session_id = session_id
        super().__init__(message)


class PolicyViolationError(SessionError):
    """A call that the session's policy does not allow; the module would refuse it on chain.

    ``call_index`` is the call's position in the operation, ``permission_index`` the permission that
    matched its target and selector (None when none did), ``rule_index`` the rule it broke (None when the
    target, selector or value was the problem).
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        call_index: int | None = None,
        permission_index: int | None = None,
        rule_index: int | None = None,
    ) -> None:
        self.call_index = call_index
        self.permission_index = permission_index
        self.rule_index = rule_index
        super().__init__(message, session_id)


class RuleRefusalError(PolicyViolationError):
    """What the module would refuse, named by its custom error ``reason``; ``actual`` is the word a refused rule
    read (None when no rule was the problem). Raised as :class:`~keyscope.checker.CallRefusedError` (a call)
    and :class:`~keyscope.message_signing.SignatureRefusedError` (a message to sign)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        session_id: str | None,
        call_index: int | None = None,
        permission_index: int | None = None,
        rule_index: int | None = None,
        actual: int | None = None,
    ) -> None:
        self.reason = reason
        self.actual = actual
        super().__init__(
            message,
            session_id=session_id,
            call_index=call_index,
            permission_index=permission_index,
            rule_index=rule_index,
        )


class LimitError(PolicyViolationError):
    """An operation a session's limits refuse. ``reason`` is the module's custom error (``LimitExceeded``,
    ``ClaimedTimeRequired``, ``PeriodPassed``, ``CalldataTooShortForLimit``); ``limit_index`` the limit, in the
    session's ``limits``."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        session_id: str | None = None,
        call_index: int | None = None,
        limit_index: int | None = None,
    ) -> None:
        self.reason = reason
        self.limit_index = limit_index
        super().__init__(message, session_id=session_id, call_index=call_index)


class LimitExceededError(LimitError):
    """The operation would take ``amount`` from a limit that has ``left`` left in its period (or the session's
    life); ``resets_at`` is when the next period begins (None over the session's life)."""

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        call_index: int | None = None,
        limit_index: int | None = None,
        amount: int = 0,
        left: int = 0,
        resets_at: int | None = None,
    ) -> None:
        self.amount = amount
        self.left = left
        self.resets_at = resets_at
        super().__init__(
            message,
            reason="LimitExceeded",
            session_id=session_id,
            call_index=call_index,
            limit_index=limit_index,
        )


class GasCostTooHighError(SessionError):
    """The operation could cost more gas than the session's ``maxGasCost`` allows: ``cost`` is its prefund (every
    gas limit, a paymaster's included, times maxFeePerGas), ``limit`` the session's cap, both in wei."""

    def __init__(
        self,
        message: str,
        session_id: str | None = None,
        *,
        cost: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.cost = cost
        self.limit = limit
        super().__init__(message, session_id)


class TargetWithoutCodeError(SessionError):
    """A call with calldata to an address that has no code: the EVM runs it as a call to an empty account, which
    succeeds and does nothing, so the operation would be paid for and change nothing. ``target`` is the address,
    ``call_index`` the call's position in the operation."""

    def __init__(self, message: str, *, session_id: str | None, target: str, call_index: int) -> None:
        self.target = target
        self.call_index = call_index
        super().__init__(message, session_id)


class CoSignerMismatchError(SessionError):
    """A co-signed session's operation whose co-signature is not the one the module expects: none given while the
    session has a co-signer, or one by another key than the co-signer the module holds (the owner rotated it).
    ``expected`` is the co-signer the module checks (the grant's until the owner rotates it), ``given`` the key the
    co-signature recovers to (None: no co-signer was given)."""

    def __init__(self, message: str, *, session_id: str | None, expected: str, given: str | None) -> None:
        self.expected = expected
        self.given = given
        super().__init__(message, session_id)


class SessionExpiredError(SessionError):
    """The session's ``validUntil`` has passed: ask the owner for a new session."""


class SessionNotYetValidError(SessionError):
    """The session's ``validAfter`` is still in the future: wait, or ask for a session valid now."""


class LimitPeriodEndingError(SessionExpiredError):
    """An operation counted towards a per-period limit is valid in that period only, and the period ends too soon
    for the bundler (which refuses operations that expire within seconds), or has ended (the operation claims the
    chain's latest block time, and an idle chain has made no block since): the operation expires, not the session.
    A :class:`SessionExpiredError` as the EntryPoint refuses both alike (AA22); catch it first, since the session
    goes on. ``period_ends_at`` is the period's last second (the operation's validUntil), ``next_period_at`` when
    the next period begins: send again then (once the chain has made a block since)."""

    def __init__(self, message: str, session_id: str | None, *, period_ends_at: int) -> None:
        self.period_ends_at = period_ends_at
        self.next_period_at = period_ends_at + 1
        super().__init__(message, session_id)


class SessionRevokedError(SessionError):
    """The owner revoked the session (or uninstalled the module): ask the owner for a new session."""


# --------------------------------------------------------------------------------------------------
# Bundler, paymaster and transport
# --------------------------------------------------------------------------------------------------

_AA_REASON = re.compile(r"\b(AA\d\d)\b")

_AA_HINTS: dict[str, str] = {
    "AA10": "the account already exists: drop factory/factoryData",
    "AA13": "the factory failed to create the account: check factory and factoryData",
    "AA14": "the factory returned another address than the sender: recompute the account address",
    "AA15": "the factory created no code at the sender address",
    "AA20": "the account is not deployed: add factory and factoryData to the first operation",
    "AA21": "the account cannot pay the prefund: send it ETH, or use a paymaster",
    "AA22": "the operation is outside its time window: the session expired or is not yet valid",
    "AA23": "the account's validation reverted: the session policy refused the call (see data)",
    "AA24": "signature error: wrong signer, revoked or unknown session, or module not installed",
    "AA25": "invalid nonce: another operation used this nonce; fetch a fresh one",
    "AA26": "verificationGasLimit too low: estimate gas again",
    "AA31": (
        "the paymaster's deposit at the EntryPoint cannot pay this operation: ask the sponsor to top it up "
        "(EntryPoint depositTo), or send without the paymaster"
    ),
    "AA32": (
        "the paymaster's sponsorship expired or is not valid yet: build the operation again to get a fresh "
        "sponsorship (check the clocks of the paymaster service and the chain)"
    ),
    "AA33": "the paymaster's validation reverted",
    "AA34": "the paymaster's signature is invalid",
    "AA40": "verification gas over the limit",
    "AA41": "too little verification gas left for the paymaster",
    "AA51": "the prefund is below the actual gas cost",
    "AA95": "out of gas: raise the gas limits",
}


class TransportError(KeyscopeError, ConnectionError):
    """The endpoint could not be reached or answered with something that is not JSON-RPC."""

    def __init__(self, message: str, *, url: str | None = None, method: str | None = None) -> None:
        self.url = url
        self.method = method
        super().__init__(message)


class ReceiptUnconfirmedError(TransportError):
    """The node does not (yet) have the transaction a bundler's receipt of ``user_op_hash`` names
    (``transaction_hash``, 0x-hex, in block ``block_number``): the node may be behind the bundler, or the bundler
    made the receipt up. Waiting retries it until its deadline; the receipt is not taken meanwhile."""

    def __init__(
        self, message: str, *, user_op_hash: str, transaction_hash: str, block_number: int, method: str
    ) -> None:
        self.user_op_hash = user_op_hash
        self.transaction_hash = transaction_hash
        self.block_number = block_number
        super().__init__(message, method=method)


class ReceiptContradictedError(TransportError):
    """The node contradicts a bundler's receipt of ``user_op_hash`` (0x-hex): the transaction it names
    (``transaction_hash``) holds no ``UserOperationEvent`` of the operation from the EntryPoint, or the event
    names another sender or nonce, or says the call reverted where the receipt says it succeeded (or the reverse).
    ``problem`` says which. The operation's fate is not what the bundler said: the bundler is broken, or not to
    be trusted."""

    def __init__(self, message: str, *, user_op_hash: str, transaction_hash: str, problem: str) -> None:
        self.user_op_hash = user_op_hash
        self.transaction_hash = transaction_hash
        self.problem = problem
        super().__init__(message, method="eth_getTransactionReceipt")


class BundlerError(KeyscopeError):
    """Base of errors from a bundler that did answer."""


class BundlerRejectedError(BundlerError):
    """The bundler answered a JSON-RPC error.

    Keeps ``code`` (JSON-RPC error code, e.g. -32500 for a validation revert), ``reason`` (the EntryPoint's
    ``AAxx`` code when the message has one), ``data`` and ``method``.
    """

    def __init__(
        self, method: str, code: int, message: str, data: Any = None, *, hint: str | None = None
    ) -> None:
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data
        match = _AA_REASON.search(message or "")
        self.reason: str | None = match.group(1) if match else None
        shown = hint if hint is not None else _AA_HINTS.get(self.reason or "", "")
        suffix = f" ({shown})" if shown else ""
        super().__init__(f"{method} rejected with code {code}: {endpoint_text(message or '')}{suffix}")


class SimulationRevertedError(BundlerRejectedError):
    """A bundler rejection whose answer carries the revert data of the simulated operation.

    Besides what :class:`BundlerRejectedError` keeps, ``revert_data`` holds the raw bytes (from the error's
    ``data`` or the hex embedded in its message) and ``revert_description`` their decoded form, e.g.
    ``RuleViolated(callIndex=0, ...)`` for a session policy refusal; the message ends with that description
    when the bundler's own message does not already show it. ``hint`` replaces the ``AAxx`` reason's usual
    hint when the revert data tells more (the account, not the session policy, refused).
    """

    def __init__(
        self,
        method: str,
        code: int,
        message: str,
        data: Any,
        *,
        revert_data: bytes,
        revert_description: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(method, code, message, data, hint=hint)
        self.revert_data = revert_data
        self.revert_description = revert_description
        raw = "0x" + revert_data.hex()
        at = self.args[0].lower().find(raw) if revert_data else -1
        if at >= 0 and revert_description and not revert_description.startswith("0x"):
            # the bundler's message carries the raw revert data: show its decoded form in its place
            text = self.args[0]
            self.args = (text[:at] + revert_description + text[at + len(raw) :],)
        elif revert_description and revert_description not in message:
            self.args = (f"{self.args[0]}; revert data: {revert_description}",)


class TargetRevertedError(BundlerRejectedError):
    """The bundler's simulation passed validation, so the session's policy allows the operation, but its call
    reverted inside the target (or the account's execution). ``calls`` names the calls, ``revert_reason`` what the
    target said."""

    def __init__(
        self, method: str, code: int, message: str, data: Any = None, *, calls: str, reason: str
    ) -> None:
        super().__init__(method, code, message, data, hint="")
        self.calls = calls
        self.revert_reason = reason
        self.args = (
            f"the call reverted inside its target, not in validation: {calls} failed with {reason} when the bundler "
            f"simulated it ({method}, code {code}). The session's policy allows this call; check its arguments, "
            "the target's state, and that the target has this function",
        )


class InsufficientPrefundError(BundlerRejectedError):
    """The EntryPoint refused the operation because the account cannot pay its prefund (AA21): ``account`` holds
    ``balance`` wei and ``deposit`` wei at the EntryPoint; ``cost`` is the operation's prefund (None if unknown)."""

    def __init__(
        self,
        method: str,
        code: int,
        message: str,
        data: Any = None,
        *,
        account: str,
        balance: int,
        deposit: int,
        cost: int | None,
    ) -> None:
        super().__init__(method, code, message, data, hint="")
        self.account = account
        self.balance = balance
        self.deposit = deposit
        self.cost = cost
        short = (
            f"; send it at least {cost - balance - deposit:,} wei more"
            if cost and cost > balance + deposit
            else "; send it ETH"
        )
        may = f"may cost up to {cost:,} wei in gas, but " if cost is not None else "cannot be paid for: "
        self.args = (
            f"the operation {may}the account {account} holds {balance:,} wei and has {deposit:,} wei deposited at "
            f"the EntryPoint (AA21, {method} code {code}){short}, or use a paymaster",
        )


class UnsupportedEntryPointError(BadInputError):
    """The bundler does not serve the EntryPoint an operation was meant for."""

    def __init__(self, entry_point: str, supported: list[str], url: str | None = None) -> None:
        self.entry_point = entry_point
        self.supported = list(supported)
        self.url = url
        where = f" at {url}" if url else ""
        served = ", ".join(self.supported) or "none"
        super().__init__(
            f"the bundler{where} does not support EntryPoint {entry_point} (it supports: {served}): send the "
            "operation to one of those, or use a bundler that serves this EntryPoint"
        )


class OwnerGasCostTooHighError(BundlerError):
    """An owner's operation, as the bundler priced it (its gas estimate and fee quote), could cost more than the
    owner's cap: ``cost`` is its prefund (every gas limit, a paymaster's included, times maxFeePerGas), ``limit`` the
    cap, both in wei, and ``account`` the account that would pay. Nothing was signed or sent."""

    def __init__(self, message: str, *, account: str, cost: int, limit: int) -> None:
        self.account = account
        self.cost = cost
        self.limit = limit
        super().__init__(message)


class PaymasterError(BundlerError):
    """The paymaster service refused to sponsor, or answered nonsense."""

    def __init__(self, method: str, code: int, message: str, data: Any = None, *, hint: str = "") -> None:
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data
        self.hint = hint
        if hint:  # the endpoint is no paymaster service: what it said matters less than what it is
            said = message if len(message) <= 200 else message[:200] + "..."
            super().__init__(f"paymaster {method} refused with code {code}: {said}; {hint}")
        else:
            super().__init__(f"paymaster {method} refused with code {code}: {endpoint_text(message)}")


class UserOperationFailedError(KeyscopeError):
    """The operation was included, but its execution reverted (``success`` false in the receipt)."""

    def __init__(self, user_op_hash: str, reason: str, receipt: Any = None) -> None:
        self.user_op_hash = user_op_hash
        self.reason = reason
        self.receipt = receipt
        super().__init__(
            f"UserOperation {user_op_hash} was included, but its call reverted inside the account or its target: "
            f"{reason} (validation passed, so this is not a session policy refusal)"
        )


class UserOperationTimeoutError(KeyscopeError, TimeoutError):
    """No receipt arrived in time. The operation may still land: wait again with the same hash."""

    def __init__(self, user_op_hash: str, timeout: float, *, advice: str | None = None) -> None:
        self.user_op_hash = user_op_hash
        self.timeout = timeout
        advice = advice or "call wait() again, or check it with the bundler's eth_getUserOperationByHash"
        super().__init__(
            f"no receipt for UserOperation {user_op_hash} after {timeout:.1f}s; it may still be included: {advice}"
        )


class UserOperationUnknownError(KeyscopeError, LookupError):
    """The bundler asked has neither a receipt of the operation nor the operation: never sent to it, dropped, or
    a mistyped hash. ``user_op_hash`` is the hash asked about, ``bundler`` the bundler's URL (secrets masked)."""

    def __init__(self, user_op_hash: str, bundler: str) -> None:
        self.user_op_hash = user_op_hash
        self.bundler = bundler
        super().__init__(
            f"the bundler {bundler} knows no UserOperation {user_op_hash}: it has neither a receipt nor the "
            "operation (dropped, sent to another bundler, or the hash is mistyped); check the hash `send` printed "
            "and the bundler URL, and send the call again if it was dropped"
        )


# --------------------------------------------------------------------------------------------------
# Node
# --------------------------------------------------------------------------------------------------


class CallRevertedError(KeyscopeError):
    """An ``eth_call`` or ``eth_estimateGas`` on the node reverted.

    ``data`` holds the revert data (empty when the node gave none), ``description`` its decoded form, ``to``
    the called contract and ``method`` the JSON-RPC method.
    """

    def __init__(self, method: str, to: str | None, data: bytes, description: str) -> None:
        self.method = method
        self.to = to
        self.data = data
        self.description = description
        target = f" to {to}" if to else ""
        super().__init__(
            f"{method}{target} reverted: {description}. Check the call's arguments, sender and the "
            "contract's state (the revert data is in .data)"
        )


# --------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------


class SessionStoreError(KeyscopeError):
    """The session store cannot be read or written. The store's files are left untouched."""


class StoreNotFoundError(SessionStoreError):
    """No keyscope store where the URL points, and the store was opened to use an existing one only
    (``open_store(url, create=False)``): nothing was created or written there. ``reason`` says what is there
    instead (no file or folder, an empty one, another program's database). Check the URL, or open the store with
    ``create=True`` (the default) to set a new one up."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"store {url}: {reason}, and nothing was created or written: check the URL, or open the store with "
            "create=True to set a new one up there"
        )


class WrongPassphraseError(SessionStoreError):
    """The passphrase (or key-encryption key) does not decrypt the stored key."""


class StoreLockedError(SessionStoreError):
    """Another worker holds the lane or record this operation needs."""


class LeaseLostError(StoreLockedError):
    """A write was fenced: the nonce-lane lease it was made under is no longer held (released, or expired
    and taken by another worker). Nothing was written. Stop using the lane and lease a new one.

    ``lane``, ``account`` and ``session_id`` name the lane, ``lease_id`` the lost lease.
    """

    def __init__(self, message: str, *, account: str, session_id: str, lane: int, lease_id: str) -> None:
        self.account = account
        self.session_id = session_id
        self.lane = lane
        self.lease_id = lease_id
        super().__init__(message)


class NonceTakenError(StoreLockedError):
    """An operation was not recorded: another recorded operation of the same account, not failed, has the
    same nonce (key and sequence), so at most one of them could ever land. Nothing was written. Build again
    once that operation is finished.

    ``nonce`` is the full 256-bit nonce; ``holder`` the intent id, ``holder_hash`` the userOpHash of the
    operation that has it.
    """

    def __init__(self, message: str, *, account: str, nonce: int, holder: str, holder_hash: str) -> None:
        self.account = account
        self.nonce = nonce
        self.holder = holder
        self.holder_hash = holder_hash
        super().__init__(message)


def validation_problems(error: ValidationError) -> str:
    """pydantic's refusal as one line a person reads: each field that was wrong, why, and what was given (bytes
    as hex; a value of a private key's form named by its form, never shown)."""
    problems = []
    for problem, field, message in _union_problems_merged(error):
        # a value of a private key's form is never shown, whatever the field (named once when the message names it)
        value = problem["input"]
        got = PRIVATE_KEY_NOT_SHOWN if has_private_key_form(value) else shown(value, 80)
        named = got == PRIVATE_KEY_NOT_SHOWN and got in message
        repeated = message.endswith(f"got {got}") or f"got {got}:" in message or f"got {got};" in message
        said = field and problem["type"] != "missing" and not named and not repeated
        given = f" (got {got})" if said else ""
        problems.append(f"{field}: {message}{given}" if field else message)
    return "; ".join(problems)


_SEQUENCE_TYPES = ("tuple_type", "list_type")


def _union_problems_merged(error: ValidationError) -> list[tuple[Any, str, str]]:
    """pydantic's problems with their fields and messages, a union's refusals said once: a literal branch
    (``"any"``) refused beside a problem inside the same field is left out (the value took the other branch, and
    that problem is what is wrong with it), and a literal and a list refused for one value read ``should be 'any'
    or a list`` (JSON has no tuple)."""
    found = [
        (problem, ".".join(_part(part) for part in problem["loc"] if _is_field(part)))
        for problem in error.errors(include_url=False)
    ]
    merged: list[tuple[Any, str, str]] = []
    for problem, field in found:
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "literal_error":
            if any(place.startswith(f"{field}.") for _, place in found):
                continue
            if any(other["type"] in _SEQUENCE_TYPES and place == field for other, place in found):
                message = f"{message} or a list"
        elif problem["type"] in _SEQUENCE_TYPES:
            if any(other["type"] == "literal_error" and place == field for other, place in found):
                continue
            message = "Input should be a list"
        merged.append((problem, field, message))
    return merged


def _part(part: str | int) -> str:
    """A part of a pydantic error's location as text: a bytes key (which pydantic gives as its repr) in hex."""
    if isinstance(part, str) and part[:2] in ("b'", 'b"'):
        try:
            return str(hex_shown(ast.literal_eval(part)))
        except (ValueError, SyntaxError):
            pass
    return str(part)


def _is_field(part: str | int) -> bool:
    """Whether a part of a pydantic error's location names a field, an index or a key, not a type that a union
    tried (``function-before[...]``, ``literal['any']``)."""
    return isinstance(part, int) or part == "[key]" or not ("[" in part or "`" in part)
