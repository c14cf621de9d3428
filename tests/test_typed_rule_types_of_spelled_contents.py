"""A signing permission's contents type as a grant request may spell it (plain text, not built from EIP-712 types by
the SDK): the module's grant-time layout of its fields (``TypedDataRuleTypeMismatch``, ``InvalidTypedDataPermission``)
against the SDK's (``typed_fields``), with the real module.

The differential of ``test_signing_permissions_of_any_type`` draws contents types written from EIP-712 types, as
``encodeType`` spells them. Here each contents type is written out by hand: spaces and tabs where EIP-712 puts none,
empty and nameless members, parentheses inside a definition, struct names that are atomic types' names or prefixes
of others' or not ASCII, a primary struct defined after the structs it uses or used by them, empty structs, arrays
of structs, structs nested three deep, definitions that are not closed, one the size of the module's bound. For
each, with each listed ``nested`` list, both lay the contents out alike: a grant with a rule on every field that a
rule type reads, typed as that field, is taken by both; a rule typed otherwise on any word is refused by both,
naming the field's type (0xff: a type no rule type reads); a layout the SDK refuses is refused by the module.

The module is ape's build of its source, on a fresh anvil of this file's own (a node that runs it natively): each
grant is an ``eth_call`` of ``enableSession`` from one of the node's development accounts, as ape's ``call`` was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak

from keyscope import SessionKey
from keyscope.errors import BadInputError
from keyscope.rpc import JsonRpcError
from keyscope.session import Condition, Rule, Session, TypedDataPermission
from keyscope.typed_fields import contents_definitions, contents_fields, field_arg_type
from support.anvil_chain import AnvilContract, anvil_chain
from support.raw_call import revert_bytes

ZERO = "0x" + "00" * 20
MAX_CONTENTS_TYPE = 2048


def _longest() -> str:
    """A contents type of exactly the module's bound, a nested struct last."""
    members = ["Inner i"]
    inner = "Inner(int16 x)"
    while len("Order(" + ",".join([*members, "uint8 a999"]) + ")" + inner) <= MAX_CONTENTS_TYPE:
        members.append(f"uint8 a{len(members)}")
    text = "Order(" + ",".join(members) + ")" + inner
    members[-1] += "z" * (MAX_CONTENTS_TYPE - len(text))
    return "Order(" + ",".join(members) + ")" + inner


SPELLED: list[tuple[str, str, list[tuple[int, ...]]]] = [
    # spaces and a tab where EIP-712 puts none: a member's type is what precedes its part's last space
    ("Order", "Order(uint64 a, uint8 b)", [()]),
    ("Order", "Order( uint64 a,uint8 b)", [()]),
    ("Order", "Order(uint64  a,uint8 b)", [()]),
    ("Order", "Order(uint8 a )", [()]),
    ("Order", "Order(Inner a)Inner(uint8\tx,uint8 y)", [(0,)]),
    ("Order", "Order(uint256[ ] a,uint8 b)", [()]),
    # empty parts are no members; a part without a space is a member of no type
    ("Order", "Order(uint64 a,,uint8 b)", [()]),
    ("Order", "Order(,uint8 b)", [()]),
    ("Order", "Order(uint8 b,)", [()]),
    ("Order", "Order(uint64,uint8 b)", [()]),
    ("Order", "Order(uint8 a(,uint8 b)", [()]),
    # struct names: an atomic type's, prefixes of one another, a space before '(', not ASCII
    ("Order", "Order(uint8 a,uint8 b)uint8(uint256 x)", [(), (0,), (0, 1)]),
    ("Order", "Order(Ord o,uint8 b)Ord(int8 z)Orde(bool q)", [(0,)]),
    ("Order", "Ord(int8 z)Order(Ord o,Orde p)Orde(bool q,Ord r)", [(0,), (0, 1), (1, 3)]),
    ("Order", "Order(Inner a)Inner(uint8 x)Inner (uint16 y)", [(0,)]),
    ("Order", "Order(Inner a)Inner(uint8 x) Inner(uint16 y)", [(0,)]),
    ("Order", "Order(uint8 \u00e9,uint8 b,Inner\u00e9 c)Inner\u00e9(int8 x)", [(2,)]),
    # the primary defined after a struct using it, or using itself
    ("Inner", "Order(uint8 a,Inner b)Inner(Order o,bytes4 x)", [(0,), (0, 3)]),
    ("Order", "Order(Order o,uint8 b)", [(0,), (0, 2)]),
    # empty structs: no words
    ("Order", "Order()", [()]),
    ("Order", "Order(Empty e,uint8 b)Empty()", [(0,)]),
    # arrays of structs are hash words, not frames; three levels of structs
    ("Order", "Order(Inner[] a,Inner[2][] b,Inner c)Inner(address x)", [(2,), (0,), (1,)]),
    (
        "Order",
        "Order(Inner b,uint8 a)Inner(Inner2 y,uint8 x)Inner2(int16 z,Inner w)",
        [(0, 2), (0, 2, 5), (0, 2, 4)],
    ),
    # bytesN past 32 is neither a type a rule reads nor a struct a nested entry expands
    ("Order", "Order(bytes33 a,bytes32 b)", [(), (0,)]),
    # no list of definitions
    ("Order", "Order(uint8 a)B)", [()]),
    ("Order", "Order(uint8 a)(uint8 b)", [()]),
    # the longest contents type, a rule on its last word
    ("Order", _longest(), [(), (0,)]),
]


def _rule(word: int, arg_type: int) -> Rule:
    return Rule.model_construct(
        condition=Condition.NOT_EQUAL, offset=32 * word, arg_type=arg_type, values=(0,), name=None
    )


def _permission(name: str, contents_type: str, nested: tuple[int, ...], rules: tuple[Rule, ...]) -> Any:
    """A permission as a hand-made grant request carries it: no SDK check runs."""
    return TypedDataPermission.model_construct(
        domain_fields=0, name="", version="", chain_id=0, verifying_contract=ZERO, salt=bytes(32),
        contents_name=name, contents_type=contents_type, nested=nested, label=None, rules=rules,
    )  # fmt: skip


@dataclass
class Module:
    """The module on the file's anvil, the development account asking it, and its custom errors by selector (from
    ape's build)."""

    contract: AnvilContract
    sender: str
    errors: dict[bytes, Any] = field(repr=False)

    def refusal(self, error: Exception) -> tuple[str, dict[str, Any]]:
        """The custom error a failed ``eth_call`` reverted with, by name, and its inputs by name."""
        data = revert_bytes(error)
        abi = self.errors.get(data[:4])
        assert abi is not None, f"the module reverted with 0x{data.hex()}"
        values = abi_decode([i.canonical_type for i in abi.inputs], data[4:])
        return abi.name, {i.name: v for i, v in zip(abi.inputs, values, strict=True)}


@pytest.fixture(scope="module")
def module(project) -> Iterator[Module]:
    with anvil_chain() as chain:
        contract_type = project.SessionKeyValidator.contract_type
        errors = {keccak(text=e.selector)[:4]: e for e in contract_type.abi if e.type == "error"}
        yield Module(chain.deploy(project.SessionKeyValidator), chain.accounts[7], errors)


def _module_verdict(module: Module, permission: Any) -> Any:
    """None when the module enables a session with ``permission``; else its refusal."""
    session = Session.model_construct(
        session_key=SessionKey.generate().address, valid_after=0, valid_until=0, max_gas_cost=0, paymasters=(),
        salt=0, permissions=(), limits=(), co_signer=None, typed_data_permissions=(permission,), sign_in=(),
    )  # fmt: skip
    contract = module.contract
    tx = {"from": module.sender, "to": contract.address, "gas": 30_000_000,
          "data": "0x" + contract.enableSession.encode_input(session.as_abi()).hex()}  # fmt: skip
    try:
        contract.chain.call(tx)
    except JsonRpcError as error:
        name, inputs = module.refusal(error)
        if name == "TypedDataRuleTypeMismatch":
            return (name, inputs["ruleType"], inputs["fieldType"])
        if name == "InvalidTypedDataPermission":
            return (name,)
        raise AssertionError(f"the module refused with {name}{inputs}") from error
    return None


def _rebuilt(permission: Any) -> TypedDataPermission:
    return TypedDataPermission(**permission.model_dump())


@pytest.mark.parametrize(
    ("name", "contents_type", "nested_lists"), SPELLED, ids=[f"{i}" for i in range(len(SPELLED))]
)
def test_the_module_and_the_sdk_lay_out_a_hand_spelled_contents_type_alike(
    module, name, contents_type, nested_lists
):
    for nested in nested_lists:
        where = f"{contents_type!r} nested {nested}"
        try:
            structs = {defined for defined, _ in contents_definitions(contents_type)}
            fields = contents_fields(name, contents_type, nested)
        except ValueError as error:  # BadInputError included: a nested entry on no struct
            refused = _permission(name, contents_type, nested, (_rule(0, 0),))
            assert _module_verdict(module, refused) == ("InvalidTypedDataPermission",), (
                where,
                error,
            )
            with pytest.raises(ValueError):
                _rebuilt(refused)
            continue
        field_types = {offset // 32: field_arg_type(kind, structs) for offset, (_, kind) in fields.items()}
        words = len(field_types)
        # every field a rule type reads, ruled as its type, and a rule past the contents: taken by both
        typed = tuple(_rule(w, t) for w, t in sorted(field_types.items()) if t is not None)
        granted = _permission(name, contents_type, nested, (*typed[-30:], _rule(max(words, 1) + 1, 0x1F)))
        assert _module_verdict(module, granted) is None, where
        _rebuilt(granted)
        # any word ruled as another type (the longest contents type: its first and last words): refused by both,
        # naming the field's type
        for word, field_type in field_types.items():
            if 4 <= word < words - 4:
                continue
            other = 0x1F if field_type != 0x1F else 0x20
            mistyped = _permission(name, contents_type, nested, (_rule(word, other),))
            expected = ("TypedDataRuleTypeMismatch", other, 0xFF if field_type is None else field_type)
            assert _module_verdict(module, mistyped) == expected, (where, word)
            with pytest.raises(BadInputError, match=rf"offset {32 * word}, type "):
                _rebuilt(mistyped)


def test_a_struct_defined_twice_is_refused_by_the_sdk_and_read_at_its_first_definition_by_the_module(
    module,
):
    """A contents type defining ``Inner`` twice is no EIP-712 encodeType: the SDK refuses it whole, naming the
    struct. The module lays such a grant's fields out from the first definition of each struct in the contents type
    (as it finds the primary's): a rule must carry the type the first definition gives the field it reads, and a
    word past the first definition's members is past the contents."""
    contents_type = "Order(Inner a,uint8 b)Inner(uint8 x)Inner(uint256 x,uint8 y)"
    first = _permission("Order", contents_type, (0,), (_rule(2, 0x1F),))
    assert _module_verdict(module, first) is None
    second = _permission("Order", contents_type, (0,), (_rule(2, 0x00),))
    assert _module_verdict(module, second) == ("TypedDataRuleTypeMismatch", 0x00, 0x1F)
    past_first = _permission("Order", contents_type, (0,), (_rule(3, 0x1F),))  # Inner's y: past the contents
    assert _module_verdict(module, past_first) is None
    for permission in (first, second, past_first):
        with pytest.raises(ValueError, match="defines 'Inner' twice"):
            _rebuilt(permission)
