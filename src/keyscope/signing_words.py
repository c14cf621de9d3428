"""A grant's signing side in words, from the signed fields only: the messages a session may sign as the account
(typed data of a domain and a type, with rules on its fields; sign-in to websites) and its co-signer.

A typed-data permission's field names come from its ``contents_type`` and ``nested`` list, which the grant signs
(the module hashes the contents type into the permission's key), never from its unsigned ``label``, ``primary``
or ``types``: a dapp cannot make a permission read as something it is not.
"""

from __future__ import annotations

from collections.abc import Callable

from .artifacts import ENTRY_POINTS
from .session import ArgType, Rule, Session, TypedDataPermission
from .typed_fields import (
    FieldName,
    contents_definitions,
    contents_fields,
    field_arg_type,
    is_hashed,
    mistyped,
    ordered_hashes,
)

__all__ = [
    "FieldName",
    "co_signer_line",
    "field_arg_type",
    "held_co_signer_line",
    "mistyped_rules",
    "signing_lines",
    "signing_warnings",
    "typed_data_fields",
]


def typed_data_fields(permission: TypedDataPermission) -> dict[int, FieldName]:
    """Byte offset in the flattened contents -> the field there, laid out from the signed contents type."""
    return contents_fields(permission.contents_name, permission.contents_type, permission.nested)


def mistyped_rules(permission: TypedDataPermission) -> list[tuple[int, str, str]]:
    """The rules of ``permission`` that read a field of the signed contents type as another type than the field's
    (``(rule index, field path, field type)``, :func:`~keyscope.typed_fields.mistyped`). The module refuses to
    grant them (``TypedDataRuleTypeMismatch``), and so does :class:`~keyscope.session.TypedDataPermission`."""
    rules = [(rule.offset, rule.arg_type) for rule in permission.rules]
    return mistyped(permission.contents_name, permission.contents_type, permission.nested, rules)


def _domain(permission: TypedDataPermission) -> str:
    parts = []
    if permission.domain_fields & 0x01:
        parts.append(f"name {permission.name!r}")
    if permission.domain_fields & 0x02:
        parts.append(f"version {permission.version!r}")
    if permission.domain_fields & 0x04:
        parts.append(f"chain {permission.chain_id}")
    if permission.domain_fields & 0x08:
        parts.append(f"contract {permission.verifying_contract}")
    if permission.domain_fields & 0x10:
        parts.append(f"salt 0x{permission.salt.hex()}")
    return ", ".join(parts) or "an empty domain"


def signing_lines(session: Session, rule_words: Callable[[Rule, str], str]) -> tuple[str, ...]:
    """One line per signing permission; ``rule_words`` puts a rule's condition on a field of an EIP-712 type into
    words (``must be at most 100``)."""
    lines = []
    for permission in session.typed_data_permissions:
        fields = typed_data_fields(permission)
        structs = {name for name, _ in contents_definitions(permission.contents_type)}
        mistyped_at = {index for index, _, _ in mistyped_rules(permission)}
        rules = []
        for index, rule in enumerate(permission.rules):
            path, kind = fields.get(rule.offset, (f"the word at offset {rule.offset}", "bytes32"))
            hashed = is_hashed(kind, structs)
            what = f"{path} (the hash of its contents)" if hashed else path
            if index in mistyped_at:
                # as the module reads it: a word of the rule's type, whatever the field's type holds
                read_as = ArgType.name(rule.arg_type)
                what = f"the word at offset {rule.offset}, read as {read_as} (the field {path} is {kind})"
                kind = read_as
            rules.append(f"{what} {rule_words(rule, kind)}")
        limited = "; ".join(rules) if rules else "any contents: no rule limits them"
        lines.append(
            f"May sign {permission.contents_name} messages as the account (EIP-712 typed data of "
            f"{_domain(permission)}): {limited}"
        )
    for domain in session.sign_in:
        lines.append(
            f"May sign in to {domain} as the account (an EIP-4361 message naming {domain} and the account)"
        )
    return tuple(lines) or ("Signs no message as the account: only operations",)


def signing_warnings(session: Session) -> list[str]:
    """What the owner must know before a session signs in the account's name."""
    warnings = []
    for permission in session.typed_data_permissions:
        warnings.append(
            f"The session may sign {permission.contents_name} messages as the account: a signature (a permit, an "
            "order) can move the account's assets without an operation, and lifetime limits do not count what it "
            "signs"
        )
        if _names_an_entry_point(permission):
            warnings.append(
                f"The {permission.contents_name} permission is in an EntryPoint's domain or signs UserOperations: an "
                "account that takes this account's signature as its owner's (one it owns, or a multisig it is a "
                "signer of) would run the operations the session signs"
            )
        for index, path, kind in mistyped_rules(permission):
            read_as = ArgType.name(permission.rules[index].arg_type)
            warnings.append(
                f"Rule {index} of the {permission.contents_name} permission reads the field {path} ({kind}) as "
                f"{read_as}: the module judges the word as a {read_as}, not as the {kind} a verifier reads, so a word "
                f"that is no {kind} may pass the rule and be acted on as a value the rule never judged"
            )
        ordered = [(rule.offset, rule.arg_type, rule.condition) for rule in permission.rules]
        for index, path, kind in ordered_hashes(
            permission.contents_name, permission.contents_type, permission.nested, ordered
        ):
            warnings.append(
                f"Rule {index} of the {permission.contents_name} permission orders the field {path} ({kind}), whose "
                "word is the hash of its contents: the bound holds for the hash, not the value, so the session may "
                f"sign any {path}"
            )
        if not permission.domain_fields & 0x08:
            warnings.append(
                f"The {permission.contents_name} permission names no contract: any contract whose domain matches "
                "the rest accepts its signatures"
            )
    return warnings


def _names_an_entry_point(permission: TypedDataPermission) -> bool:
    """Whether a signing permission can sign UserOperations: its domain names a known EntryPoint, or its primary
    type is a UserOperation's (whatever its domain, since the contract it names is not always a known one)."""
    entry_points = {release.address.lower() for release in ENTRY_POINTS.values()}
    return (
        bool(permission.domain_fields & 0x08) and permission.verifying_contract.lower() in entry_points
    ) or "UserOperation" in permission.contents_name


def held_co_signer_line(session: Session, record: tuple[bool, str] | None) -> str | None:
    """The co-signer in words as the module holds it, ``record`` being its ``coSignerOf`` answer (recorded,
    co-signer): the one the owner rotated to, or none once the owner removed it; as granted while the module has no
    record (the session not enabled yet) or when ``record`` is None (not read)."""
    granted = session.co_signer
    if granted is None or record is None or not record[0] or record[1] == granted:
        return co_signer_line(session)
    if int(record[1], 16) == 0:
        return f"none: the owner removed the co-signer {granted}, so the session key signs alone"
    return (
        f"{record[1]} must also sign every operation and message of this session (the owner replaced {granted}, "
        "the co-signer granted; you can replace or remove it later)"
    )


def co_signer_line(session: Session) -> str | None:
    """The co-signer, in words (None: the session key signs alone)."""
    if session.co_signer is None:
        return None
    return (
        f"{session.co_signer} must also sign every operation and message of this session (you can replace or "
        "remove it later)"
    )
