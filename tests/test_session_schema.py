"""The SDK's description of the module's structs (``keyscope.session.SESSION_TYPES``) against the module's own.

Every EIP-712 type string, typehash, ABI type and ABI tuple of a session derives from ``SESSION_TYPES``: these
tests hold it to the Solidity interface, the compiled ABI, the documented EIP-712 types and the module's
``sessionId``, member by member, so a struct changed on one side only fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eth_utils import keccak

from keyscope import session as schema
from keyscope.artifacts import contract_artifact
from keyscope.session import (
    ArgType,
    Condition,
    Limit,
    LimitKind,
    Meter,
    Permission,
    Rule,
    Session,
    TypedDataPermission,
)
from keyscope.typed_data import encode_type

ROOT = Path(__file__).resolve().parent.parent
FILLED_BY_THE_MODULE = {"Session": ["account", "epoch"]}


def _abi_members(struct: str) -> list[tuple[str, str]]:
    """``(type, name)`` of ``struct``'s members in the SDK's schema, those the module fills in left out."""
    return [
        (m.type, m.name)
        for m in schema.SESSION_TYPES[struct]
        if m.name not in FILLED_BY_THE_MODULE.get(struct, [])
    ]


def test_the_schema_is_the_interfaces_structs_member_by_member() -> None:
    source = (ROOT / "contracts/interfaces/ISessionKeyValidator.sol").read_text()
    declared = {
        name: re.findall(r"([\w\[\]]+)\s+(\w+);", body)
        for name, body in re.findall(r"struct\s+(\w+)\s*\{([^}]*)\}", source)
    }
    for struct in schema.SESSION_TYPES:
        assert declared[struct] == _abi_members(struct), struct


def _components(params: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """The structs of a compiled ABI's parameters, by name: ``(type, name)`` of each member, a struct member typed
    by its struct's name (as EIP-712 names it)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for param in params:
        match = re.fullmatch(r"struct \w+\.(\w+)((?:\[\])?)", param["internalType"])
        if match is not None:
            found.update(_components(param["components"]))
            found[match.group(1)] = [
                (
                    p["internalType"].rsplit(".", 1)[-1] if p["type"].startswith("tuple") else p["type"],
                    p["name"],
                )
                for p in param["components"]
            ]
    return found


def _abi_type(param: dict[str, Any]) -> str:
    if not param["type"].startswith("tuple"):
        return str(param["type"])
    return "(" + ",".join(_abi_type(p) for p in param["components"]) + ")" + param["type"][len("tuple") :]


def test_the_schema_is_the_compiled_abis_structs() -> None:
    abi = contract_artifact("SessionKeyValidator")["abi"]
    enable = next(item for item in abi if item.get("name") == "enableSession")
    compiled = _components(enable["inputs"])
    assert set(compiled) == set(schema.SESSION_TYPES)
    for struct in schema.SESSION_TYPES:
        assert compiled[struct] == _abi_members(struct), struct
    assert _abi_type(enable["inputs"][0]) == schema.SESSION_ABI_TYPE
    typed_data = next(p for p in enable["inputs"][0]["components"] if p["name"] == "typedData")
    assert _abi_type(typed_data) == schema.TYPED_DATA_PERMISSION_ABI_TYPE + "[]"


def test_the_typehashes_are_those_of_the_documented_types() -> None:
    text = (ROOT / "docs/session-module.md").read_text()
    block = text.split("## EIP-712 grant", 1)[1].split("```", 2)[1]
    documented = {line.split("(", 1)[0]: line for line in block.split("\n") if line}
    for struct in schema.SESSION_TYPES:
        members = ",".join(f"{m.type} {m.name}" for m in schema.SESSION_TYPES[struct])
        assert documented[struct] == f"{struct}({members})"
        expected = documented[struct] + "".join(
            documented[other] for other in sorted(documented) if other != struct and other in _uses(struct)
        )
        assert encode_type(struct, schema.SESSION_TYPES) == expected
    for constant, struct in (
        ("RULE_TYPEHASH", "Rule"),
        ("PERMISSION_TYPEHASH", "Permission"),
        ("METER_TYPEHASH", "Meter"),
        ("LIMIT_TYPEHASH", "Limit"),
        ("TYPED_DATA_PERMISSION_TYPEHASH", "TypedDataPermission"),
        ("SESSION_TYPEHASH", "Session"),
    ):
        assert getattr(schema, constant) == keccak(encode_type(struct, schema.SESSION_TYPES).encode())


def _uses(struct: str) -> set[str]:
    used = set()
    for member in schema.SESSION_TYPES[struct]:
        base = member.type.removesuffix("[]")
        if base in schema.SESSION_TYPES:
            used |= {base} | _uses(base)
    return used


def _every_member() -> Session:
    """A session with every member of every struct set to something other than its default."""
    rule = Rule(
        condition=Condition.IN_RANGE, offset=32, arg_type=ArgType.INT256, values=(Rule.signed_word(-5), 9)
    )
    return Session(
        session_key="0x" + "11" * 20,
        valid_after=5,
        valid_until=10**9,
        max_gas_cost=10**15,
        paymasters=("0x" + "22" * 20,),
        salt=7,
        permissions=(
            Permission(target="0x" + "33" * 20, selector=b"\x01\x02\x03\x04", value_limit=3, rules=(rule,)),
        ),
        limits=(
            Limit(kind=LimitKind.AMOUNT, amount=100, period=3600, meters=(Meter(permission=0, offset=32),)),
        ),
        co_signer="0x" + "44" * 20,
        typed_data_permissions=(
            TypedDataPermission(
                domain_fields=0x1F,
                name="App",
                version="2",
                chain_id=10,
                verifying_contract="0x" + "55" * 20,
                salt=b"\x06" * 32,
                contents_name="Mail",
                contents_type="Mail(Person to,uint256 amount)Person(address wallet,uint64 id)",
                nested=(0,),
                rules=(
                    Rule(condition=Condition.LESS_THAN, offset=64, arg_type=ArgType.ADDRESS, values=(8,)),
                ),
            ),
        ),
        sign_in=("app.example.com",),
    )


def test_the_module_hashes_a_session_with_every_member_as_the_sdk(module, accounts) -> None:
    session = _every_member()
    account = accounts[3].address
    assert bytes(module.sessionId(account, session.as_abi())) == session.session_id(
        account, int(module.epochOf(account))
    )


def _changed(value: Any) -> Any:
    """``value`` (an ABI leaf) made different, of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value ^ 1
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return "0x" + format(int(value, 16) ^ 1, "040x")
    if isinstance(value, str):
        return value + "x"
    assert isinstance(value, bytes), value
    return bytes([value[0] ^ 1]) + value[1:] if value else b"\x01"


def _variants(value: Any, type_: str = "Session", path: str = "session") -> list[tuple[str, Any]]:
    """Every way to change ``value`` (of ABI struct or type ``type_``) by one leaf or one array length:
    ``(where, changed value)``, where named by members (``session.permissions[0].rules[0].offset``)."""
    if type_.endswith("[]"):
        element = type_[:-2]
        found = (
            [(f"{path} one fewer", value[:-1]), (f"{path} one more", [*value, value[-1]])] if value else []
        )
        return found + [
            (where, [*value[:i], changed, *value[i + 1 :]])
            for i, item in enumerate(value)
            for where, changed in _variants(item, element, f"{path}[{i}]")
        ]
    if type_ in schema.SESSION_TYPES:
        return [
            (where, (*value[:i], changed, *value[i + 1 :]))
            for i, (member_type, name) in enumerate(_abi_members(type_))
            for where, changed in _variants(value[i], member_type, f"{path}.{name}")
        ]
    return [(path, _changed(value))]


def test_the_session_id_commits_to_every_byte_the_owner_grants(module, accounts) -> None:
    """The owner signs the session id (its EIP-712 hash), and the module stores what the session carries: a member,
    an array element or an array length changed anywhere in a session (each struct's every member set) gives the
    module another id, so no byte of a grant can be changed after the owner signs it. (A field outside the hash
    would be one the module stores unsigned.)"""
    session = _every_member().as_abi()
    account = accounts[3].address
    original = bytes(module.sessionId(account, session))
    variants = _variants(session)
    assert len(variants) > 50, len(variants)
    same = [where for where, changed in variants if bytes(module.sessionId(account, changed)) == original]
    assert not same, same
