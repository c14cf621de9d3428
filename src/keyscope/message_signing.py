"""A session's signatures in the account's name (ERC-1271): the local check of its signing permissions, and the
bytes the module's ``isValidSignatureWithSender`` accepts, as pure functions.

The check is the module's (``contracts/SessionSignatureVerifier.sol``), made before anything is signed so that a
message the module would refuse is never signed, and the error says which permission and rule:

* typed data: a permission of the typed data's domain (its separator) and primary type (its typehash) must exist;
  its rules are judged on the words of the flattened contents (frame 0, the primary struct, then the nested structs
  the permission expands), each canonical for its type, then meeting its condition;
* sign-in (EIP-4361): the message's first line must name a granted website, its second line the account;
* both: the session's window.

What the session key signs is ERC-7739's wrapping (:func:`~keyscope.typed_data.typed_data_sign_hash`,
:func:`~keyscope.typed_data.personal_sign_hash`); a co-signer signs the module's ``CoSign(sessionId, digest)``
(:func:`~keyscope.erc1271.co_sign_digest`). The layouts are in :mod:`keyscope.erc1271`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadInputError, RuleRefusalError, shown
from .hexutil import to_address
from .session import SIGN_IN_SUFFIX, Condition, Session, TypedDataPermission
from .typed_data import Frames, TypedData, eip191_hash, refuse_lone_surrogates
from .typed_fields import nested_frames

__all__ = [
    "SIGN_IN_SUFFIX",
    "SignInCheck",
    "SignatureRefusedError",
    "TypedDataCheck",
    "check_sign_in",
    "check_typed_data",
    "check_words",
    "nested_frames",
    "sign_in_message",
]


class SignatureRefusedError(RuleRefusalError):
    """A message the session's signing permissions do not allow; the module would refuse its signature.

    ``reason`` is the module's custom error for it (``SigningNotGranted``, ``SignInNotGranted``,
    ``SignInAccountMismatch``, ``SignatureOutsideWindow``, ``ContentsTooShort``, ``SignedNonCanonical``,
    ``SignedRuleViolated``, ``SignatureSenderForbidden`` when the verifying contract is a module of the account); ``permission_index`` is the signing permission (its index in the grant's typed data,
    then sign-in list), ``rule_index`` the rule it broke, ``actual`` the word the rule read."""


@dataclass(frozen=True, slots=True)
class TypedDataCheck:
    """Typed data a session may sign: the permission that allows it and the flattened contents the module judges."""

    permission_index: int
    permission: TypedDataPermission
    data: TypedData
    frames: Frames


@dataclass(frozen=True, slots=True)
class SignInCheck:
    """A sign-in message a session may sign: the permission (index in the grant's signing permissions), the
    message's bytes and the length of its first line."""

    permission_index: int
    message: bytes
    first_line_length: int

    @property
    def hash(self) -> bytes:
        """What the verifier checks: the message's EIP-191 hash."""
        return eip191_hash(self.message)


def _window(session: Session, now: int | None, session_id: str, permission_index: int) -> None:
    if now is None:
        return
    if not (isinstance(now, int) and not isinstance(now, bool) and now >= 0):
        raise BadInputError(
            f"now={shown(now)} is not a unix time in whole seconds: give an int, such as int(time.time()), or None "
            "to leave the window unchecked"
        )
    if now < session.valid_after or (session.valid_until and now > session.valid_until):
        raise SignatureRefusedError(
            f"session {session_id} signs only inside its window [{session.valid_after}, "
            f"{session.valid_until or 'no expiry'}]; it is {now}: a verifier would refuse the signature now",
            reason="SignatureOutsideWindow",
            session_id=session_id,
            permission_index=permission_index,
        )


def _what_it_may_sign(session: Session) -> str:
    kinds = [p.describe for p in session.typed_data_permissions] + [
        f"sign-in to {d}" for d in session.sign_in
    ]
    return ", ".join(kinds) if kinds else "nothing (it has no signing permission)"


def check_typed_data(
    session: Session, data: Mapping[str, Any] | TypedData, *, session_id: str, now: int | None = None
) -> TypedDataCheck:
    """Check typed data against ``session``'s signing permissions as the module will; raises
    :class:`SignatureRefusedError` saying which permission and rule refuse it."""
    typed = data if isinstance(data, TypedData) else TypedData(data)
    separator, type_hash = typed.domain_separator, typed.type_hash
    found = [
        (i, p)
        for i, p in enumerate(session.typed_data_permissions)
        if p.domain_separator == separator and p.contents_type_hash == type_hash
    ]
    if not found:
        raise SignatureRefusedError(
            f"session {session_id} may not sign {typed.primary_type} in the domain {typed.domain}: no signing "
            f"permission has this domain and type ({typed.encode_type}); it may sign {_what_it_may_sign(session)}",
            reason="SigningNotGranted",
            session_id=session_id,
        )
    index, permission = found[0]
    _window(session, now, session_id, index)
    frames = typed.frames(nested_frames(typed.primary_type, typed.types, permission.nested))
    check_words(session, index, frames, session_id=session_id)
    return TypedDataCheck(index, permission, typed, frames)


def check_words(session: Session, permission_index: int, frames: Frames, *, session_id: str) -> None:
    """Judge the flattened contents ``frames`` by the rules of ``session``'s typed-data permission
    ``permission_index``, as the module judges the words a signature carries: each rule's word must be canonical
    for its type, then meet its condition. The words need not be an EIP-712 encoder's (a word dirty for its type is
    judged as the module judges it). Raises :class:`SignatureRefusedError` naming the rule."""
    permissions = session.typed_data_permissions
    if not (
        isinstance(permission_index, int)
        and not isinstance(permission_index, bool)
        and 0 <= permission_index < len(permissions)
    ):
        raise BadInputError(
            f"permission_index {shown(permission_index)} is not one of the session's {len(permissions)} typed-data "
            "permissions: give the index of one"
        )
    permission = permissions[permission_index]
    for number, rule in enumerate(permission.rules):
        word = frames.word(rule.offset)
        label = rule.name or f"the word at offset {rule.offset}"
        if word is None:
            raise SignatureRefusedError(
                f"{permission.describe}: rule {number} reads {label}, past the end of the contents",
                reason="ContentsTooShort",
                session_id=session_id,
                permission_index=permission_index,
                rule_index=number,
            )
        if not rule.holds(word):
            canonical = rule.is_canonical(word) or rule.op in (Condition.EQUAL, Condition.ONE_OF)
            raise SignatureRefusedError(
                f"{permission.describe}: rule {number} ({rule.describe()}) refuses {label} = "
                f"{_shown(rule, word)}: the session may not sign this {permission.contents_name}",
                reason="SignedRuleViolated" if canonical else "SignedNonCanonical",
                session_id=session_id,
                permission_index=permission_index,
                rule_index=number,
                actual=word,
            )


def _shown(rule: Any, word: int) -> str:
    if rule.is_signed and word >> 255:
        return str(word - 2**256)
    return str(word) if word < 2**64 else f"0x{word:064x}"


def sign_in_message(
    domain: str,
    address: str,
    *,
    uri: str,
    chain_id: int,
    statement: str | None = None,
    nonce: str,
    issued_at: str,
    version: str = "1",
    expiration_time: str | None = None,
) -> str:
    """An EIP-4361 (Sign-In with Ethereum) message for ``address`` at the website ``domain``."""
    for name, value in (
        ("domain", domain),
        ("uri", uri),
        ("nonce", nonce),
        ("issued_at", issued_at),
        ("statement", "" if statement is None else statement),
        ("expiration_time", "" if expiration_time is None else expiration_time),
        ("version", version),
    ):
        if not isinstance(value, str):
            raise BadInputError(
                f"the sign-in {name.replace('_', ' ')} is text (a str), got {type(value).__name__} {shown(value)}"
            )
        if "\n" in value:
            raise BadInputError(f"the sign-in {name} must be one line, got {shown(value)}")
    if not nonce.isalnum() or len(nonce) < 8:
        raise BadInputError(f"an EIP-4361 nonce is at least 8 letters and digits, got {shown(nonce)}")
    lines = [domain + SIGN_IN_SUFFIX.rstrip("\n"), to_address(address, name="address"), ""]
    if statement:
        lines += [statement, ""]
    lines += [f"URI: {uri}", f"Version: {version}", f"Chain ID: {chain_id}", f"Nonce: {nonce}"]
    lines.append(f"Issued At: {issued_at}")
    if expiration_time:
        lines.append(f"Expiration Time: {expiration_time}")
    return "\n".join(lines)


def check_sign_in(
    session: Session, message: str | bytes, *, account: str, session_id: str, now: int | None = None
) -> SignInCheck:
    """Check an EIP-4361 message against ``session``'s sign-in permissions as the module will: its first line must
    name a granted website, its second the account ("0x" and 40 hex digits in any case). Raises :class:`SignatureRefusedError`."""
    if not isinstance(message, (str, bytes, bytearray, memoryview)):
        raise BadInputError(
            f"the sign-in message is the EIP-4361 text a website gave (a str, or its UTF-8 bytes), got "
            f"{type(message).__name__} {shown(message)}"
        )
    if isinstance(message, str):
        refuse_lone_surrogates(message, "the sign-in message")
    raw = message.encode() if isinstance(message, str) else bytes(message)
    first_end = raw.find(b"\n")
    first = raw[: first_end + 1] if first_end >= 0 else raw
    typed = len(session.typed_data_permissions)
    index = next(
        (typed + i for i, d in enumerate(session.sign_in) if first == (d + SIGN_IN_SUFFIX).encode()), None
    )
    if index is None:
        raise SignatureRefusedError(
            f"session {session_id} may not sign in with the first line {first.decode(errors='replace')!r}: it may "
            f"sign {_what_it_may_sign(session)}",
            reason="SignInNotGranted",
            session_id=session_id,
        )
    # the module's order: the permission, its window, then the account
    _window(session, now, session_id, index)
    second = raw[len(first) : len(first) + 43]
    expected = to_address(account)[2:].lower().encode()
    # as the module reads it: "0x" (a lower-case x), the 40 hex digits in any case, a line break
    if len(second) != 43 or second[:2] != b"0x" or second[42:] != b"\n" or second[2:42].lower() != expected:
        raise SignatureRefusedError(
            f'a sign-in message\'s second line must be the account {to_address(account)} ("0x" and its 40 hex '
            f"digits, then a line break), got {second.decode(errors='replace')!r}",
            reason="SignInAccountMismatch",
            session_id=session_id,
            permission_index=index,
        )
    return SignInCheck(index, raw, len(first))
