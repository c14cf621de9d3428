"""Turn revert data into readable text: the EntryPoint's and keyscope's custom errors, Error(string), Panic."""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from .artifacts import contract_artifact

__all__ = ["decode_revert", "describe_revert", "grant_refusal_todo", "split_failed_op", "validation_hint"]

_ENTRY_POINT_ERRORS: list[dict[str, Any]] = [
    {
        "name": "FailedOp",
        "inputs": [{"name": "opIndex", "type": "uint256"}, {"name": "reason", "type": "string"}],
    },
    {
        "name": "FailedOpWithRevert",
        "inputs": [
            {"name": "opIndex", "type": "uint256"},
            {"name": "reason", "type": "string"},
            {"name": "inner", "type": "bytes"},
        ],
    },
    {"name": "PostOpReverted", "inputs": [{"name": "returnData", "type": "bytes"}]},
    {"name": "SignatureValidationFailed", "inputs": [{"name": "aggregator", "type": "address"}]},
    {"name": "Error", "inputs": [{"name": "message", "type": "string"}]},
    {"name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
]


def _signature(entry: dict[str, Any]) -> str:
    def kind(item: dict[str, Any]) -> str:
        if item["type"].startswith("tuple"):
            return "(" + ",".join(kind(c) for c in item["components"]) + ")" + str(item["type"])[5:]
        return str(item["type"])

    return f"{entry['name']}({','.join(kind(i) for i in entry['inputs'])})"


@cache
def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    entries = list(_ENTRY_POINT_ERRORS)
    for name in (
        "SessionKeyValidator",
        "KeyscopeAccount",
        "KeyscopeDelegate",
        "KeyscopeAccountFactory",
        "SponsorPaymaster",
        "DemoNFT",
    ):
        try:
            entries += [e for e in contract_artifact(name)["abi"] if e.get("type") == "error"]
        except Exception:  # an artefact missing must not hide the revert we are decoding
            continue
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for entry in entries:
        signature = _signature(entry)
        arg_types = [_signature({"name": "", "inputs": [i]})[1:-1] for i in entry["inputs"]]
        names = [i.get("name") or f"arg{n}" for n, i in enumerate(entry["inputs"])]
        table[keccak(signature.encode())[:4]] = (entry["name"], arg_types, names)
    return table


def decode_revert(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """``(error name, {argument: value})`` for known errors, None for unknown or empty data."""
    if len(data) < 4:
        return None
    known = _errors().get(data[:4])
    if known is None:
        return None
    name, types, names = known
    try:
        values = abi_decode(types, data[4:])
    except Exception:
        return None
    return name, dict(zip(names, values, strict=True))


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return str(value)


def describe_revert(data: bytes) -> str:
    """One line for revert data: ``RuleViolated(callIndex=0, ...)``, the string of Error(string), or hex."""
    decoded = decode_revert(data)
    if decoded is None:
        return "0x" + data.hex() if data else "(no revert data)"
    name, args = decoded
    if name == "Error":
        return str(args["message"])
    if name == "FailedOpWithRevert":
        return f"{args['reason']}: {describe_revert(args['inner'])}"
    if name == "FailedOp":
        return str(args["reason"])
    return f"{name}({', '.join(f'{k}={_show(v)}' for k, v in args.items())})"


def split_failed_op(data: bytes) -> tuple[int, str, bytes] | None:
    """``(opIndex, reason, inner revert data)`` of an EntryPoint FailedOp / FailedOpWithRevert, else None."""
    decoded = decode_revert(data)
    if decoded is None or decoded[0] not in ("FailedOp", "FailedOpWithRevert"):
        return None
    args = decoded[1]
    return int(args["opIndex"]), str(args["reason"]), bytes(args.get("inner", b""))


_POLICY_ERRORS = frozenset(
    {
        "InitCallNotJudged",
        "UnsupportedSelector",
        "UnsupportedExecutionMode",
        "MalformedExecution",
        "EmptyBatch",
        "ForbiddenTarget",
        "InvalidCallData",
        "ZeroSelectorCall",
        "NoPermission",
        "ValueLimitExceeded",
        "NonCanonicalArgument",
        "RuleViolated",
        "CalldataTooShort",
        "GasCostTooHigh",
    }
)
"""The session module's refusals of a call under the session's policy."""


_GRANT_ERRORS: dict[str, str] = {
    "PermissionAlreadyGranted": "the session key holds that call in a session not revoked (expired ones too): revoke "
    "that session first, or grant to a new session key",
    "SigningPermissionAlreadyGranted": "the session key holds that signing permission in a session not revoked: "
    "revoke that session first, or grant to a new session key",
    "SessionIsRevoked": "this grant was revoked: ask the owner for a new session",
    "TooManyLivePermissions": "the account holds the most live permissions the module keeps: revoke sessions no "
    "longer used",
    "PermissionTargetIsModule": "a permission names one of the account's modules (moduleType 3: the fallback handler "
    "the account routes the permission's selector to): grant calls on other contracts",
    "ForbiddenSigningDomain": "a signing permission is in the domain of the account, the module or another of the "
    "account's modules: grant signing in other domains",
    "ModuleQueryUnanswered": "the account does not answer isModuleInstalled, which the module asks before it "
    "enables a grant",
    "TypedDataRuleTypeMismatch": "a typed-data rule reads a field of the contents as another type than the "
    "field's: build the permission with Policy.typed_data, which gives each rule its field's type",
    "TypedDataRuleOrdersHash": "a typed-data rule orders (<=, <, >=, >, in_range) a string, bytes, array or struct "
    "field, whose word is a hash, so it would bound nothing: bind the field with ==, != or one_of, as "
    "Policy.typed_data does",
}
"""The session module's refusals to enable a grant (the ENABLE signature of a session's first operation), each with
what to do. Not a policy refusal of the call: nothing the session key changes gets past them."""


def grant_refusal_todo(name: str) -> str | None:
    """What to do about the session module's refusal ``name`` to enable a grant (see ``_GRANT_ERRORS``), else None."""
    return _GRANT_ERRORS.get(name)


@cache
def _module_errors() -> frozenset[str]:
    """The names of the session module's errors (its own and its grant side's, which it reverts with)."""
    try:
        abi = contract_artifact("SessionKeyValidator")["abi"]
    except Exception:  # an artefact missing must not hide the revert we are decoding
        return _POLICY_ERRORS | frozenset(_GRANT_ERRORS) | {"InvalidOwnerSignature"}
    return frozenset(entry["name"] for entry in abi if entry.get("type") == "error")


SAFE7579_EXECUTION_FAILED = keccak(b"ExecutionFailed()")[:4]
"""Safe7579's ``ExecutionFailed()``: the revert data it gives in place of its validator's (it runs the validator
through the Safe's ``execTransactionFromModuleReturnData`` and drops what it returned)."""


def validation_hint(reason: str | None, data: bytes) -> str | None:
    """What an account's validation revert (``reason`` AA23) says about its cause, when the revert data shows it
    is not the session policy: the account refusing the owner's signature of the grant, or an error that is not
    the session module's at all. None when the usual hint fits (a policy refusal, or nothing to tell)."""
    if reason != "AA23":
        return None
    failed = split_failed_op(data)
    inner = failed[2] if failed is not None else data
    if len(inner) < 4:
        return None
    decoded = decode_revert(inner)
    if decoded is not None and decoded[0] == "AccountUnauthorized":
        return (
            f"the account refused its caller {_show(decoded[1]['sender'])} (AccountUnauthorized): it takes "
            "operations from another EntryPoint than the one this operation was sent to, not a session policy "
            "refusal; connect with the EntryPoint the account trusts (its entryPoint())"
        )
    if inner == SAFE7579_EXECUTION_FAILED:
        return (
            "Safe7579 reverted ExecutionFailed() (0xacfdb444), which it puts in place of whatever its validator "
            "reverted with: a refusal of the session policy (a rule, a limit, the window), the module's refusal to "
            "enable the grant, or a validator that is not installed all end here; send with the SDK's check "
            "(check=True, verify_on_chain=True), which names the refusal before anything is sent"
        )
    if decoded is None or decoded[0] not in _module_errors():
        return (
            "the account's validation reverted with an error that is not the session module's: the account or one "
            "of its validators refused, not the session policy; check the account's kind and owner validator (an "
            "account that hides its validators' errors, as Safe7579 does, also ends here)"
        )
    if decoded[0] == "InvalidOwnerSignature":
        return (
            "the account refused the owner's signature of the session grant: it was shaped for another account kind "
            "or owner validator, or signed at an earlier epoch; not a policy refusal: the owner must grant again"
        )
    todo = grant_refusal_todo(decoded[0])
    if todo is not None:
        return f"the module refused to enable the session's grant, not the call under its policy: {todo}"
    return None
