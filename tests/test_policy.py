"""The policy builder: signatures and ABIs, head-layout offsets, typed reference values, and its errors.

Offsets and encodings are checked against eth-abi's encoder: the word a rule reads must be the word the
ABI puts at that offset, and a rule's reference must be the word the ABI encodes the value as.
"""

from __future__ import annotations

import enum
import json
import operator
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from keyscope.errors import BadInputError, InvalidAbiError, UnknownFunctionError
from keyscope.hexutil import keccak, to_address
from keyscope.policy import (
    TRANSFER_SELECTOR,
    AbiType,
    Limits,
    Policy,
    arg,
    find_function,
    parse_signature,
)
from keyscope.session import ArgType, Condition, Permission, Rule, arg_type_of

TARGET = to_address("0x" + "c3" * 20)
USER = to_address("0x" + "e5" * 20)

ERC20 = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "event", "name": "Transfer", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
    {"type": "error", "name": "Insufficient", "inputs": [{"name": "needed", "type": "uint256"}]},
    {"type": "receive", "stateMutability": "payable"},
]  # fmt: skip

ERC721_OVERLOADS = [
    {"type": "function", "name": "safeTransferFrom",
     "inputs": [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "tokenId", "type": "uint256"}]},
    {"type": "function", "name": "safeTransferFrom",
     "inputs": [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "tokenId", "type": "uint256"}, {"name": "data", "type": "bytes"}]},
]  # fmt: skip

ORDER_ABI = [
    {"type": "function", "name": "fill",
     "inputs": [{"name": "order", "type": "tuple", "internalType": "struct Order",
                 "components": [{"name": "maker", "type": "address"}, {"name": "amount", "type": "uint128"},
                                {"name": "side", "type": "uint8", "internalType": "enum Side"}]},
                {"name": "legs", "type": "tuple[2]",
                 "components": [{"name": "price", "type": "int64"}, {"name": "tag", "type": "bytes4"}]},
                {"name": "memo", "type": "string"}]},
]  # fmt: skip


def word(value: Any, kind: str) -> int:
    return int.from_bytes(abi_encode([kind], [value]), "big")


# --------------------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical", "names"),
    [
        ("safeMint(address)", "safeMint(address)", [""]),
        ("transfer(address to, uint256 amount)", "transfer(address,uint256)", ["to", "amount"]),
        ("f(uint,int,byte,fixed)", "f(uint256,int256,bytes1,fixed128x18)", ["", "", "", ""]),
        ("function transfer(address to,uint256 amount) external returns (bool)", "transfer(address,uint256)",
         ["to", "amount"]),
        ("f(bytes calldata data, string memory s, address payable to)", "f(bytes,string,address)",
         ["data", "s", "to"]),
        ("fill((address maker,uint128 amount) order, tuple(int64,bytes4)[2] legs, uint8[3][] grid)",
         "fill((address,uint128),(int64,bytes4)[2],uint8[3][])", ["order", "legs", "grid"]),
        ("  noArgs ( )  ", "noArgs()", []),
    ],
)  # fmt: skip
def test_signatures_are_read_with_or_without_names(text, canonical, names):
    function = parse_signature(text)
    assert function.signature == canonical
    assert function.selector == keccak(canonical.encode())[:4]
    assert [p.name for p in function.inputs] == names


@pytest.mark.parametrize(
    "text",
    ["", "transfer", "transfer(address", "f(uint7)", "f(uint264)", "f(bytes33)", "f(bytes0)", "f(uint256[0])",
     "f(address) !", "f(address x y)", "f(addresss)", "f(,)", "f(uint256[)", "(address)", "f(int08)"],
)  # fmt: skip
def test_malformed_signatures_are_refused(text):
    with pytest.raises(InvalidAbiError):
        parse_signature(text)


def test_tuple_components_keep_their_names():
    function = parse_signature("fill((address maker,(uint8 side,int64 price) leg) order)")
    order = function.inputs[0].type
    assert order.kind == "tuple"
    assert [c.name for c in order.components] == ["maker", "leg"]
    assert [c.name for c in order.components[1].type.components] == ["side", "price"]


# --------------------------------------------------------------------------------------------------
# Offsets against eth-abi (generated shapes)
# --------------------------------------------------------------------------------------------------

LEAVES = ["uint8", "uint256", "int16", "int256", "address", "bool", "bytes1", "bytes32", "bytes", "string"]


def type_trees() -> st.SearchStrategy[Any]:
    """Nested ABI shapes: ("leaf", name) | ("tuple", [children]) | ("array", child, length or None)."""
    leaves = st.sampled_from(LEAVES).map(lambda name: ("leaf", name))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda children: ("tuple", children)),
            st.tuples(st.just("array"), inner, st.one_of(st.none(), st.integers(1, 3))),
        ),
        max_leaves=6,
    )


def type_text(tree: Any, named: bool, prefix: str = "c") -> str:
    """Solidity-style text of a tree (with component names when ``named``)."""
    if tree[0] == "leaf":
        return tree[1]
    if tree[0] == "tuple":
        parts = [
            type_text(c, named, prefix) + (f" {prefix}{i}" if named else "") for i, c in enumerate(tree[1])
        ]
        return "(" + ",".join(parts) + ")"
    length = "" if tree[2] is None else str(tree[2])
    return type_text(tree[1], named, prefix) + f"[{length}]"


def values_for(tree: Any) -> st.SearchStrategy[Any]:
    if tree[0] == "tuple":
        return st.tuples(*(values_for(c) for c in tree[1]))
    if tree[0] == "array":
        size = tree[2]
        return st.lists(values_for(tree[1]), min_size=size or 0, max_size=size or 2)
    name = tree[1]
    if name == "address":
        return st.binary(min_size=20, max_size=20).map(to_address)
    if name == "bool":
        return st.booleans()
    if name in ("bytes", "string"):
        return st.binary(max_size=40) if name == "bytes" else st.text(max_size=10)
    if name.startswith("bytes"):
        size = int(name[5:])
        return st.binary(min_size=size, max_size=size)
    bits = int(name.removeprefix("u").removeprefix("int"))
    if name.startswith("u"):
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def is_dynamic(tree: Any) -> bool:
    if tree[0] == "leaf":
        return tree[1] in ("bytes", "string")
    if tree[0] == "tuple":
        return any(is_dynamic(c) for c in tree[1])
    return tree[2] is None or is_dynamic(tree[1])


def paths(tree: Any, value: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], Any, Any, bool]]:
    """Every leaf under ``tree``: (path, leaf tree, leaf value, whether the path crosses a dynamic value)."""
    crosses = is_dynamic(tree)
    if tree[0] == "leaf":
        return [(path, tree, value, crosses)]
    if tree[0] == "tuple":
        children = [(i, c, value[i]) for i, c in enumerate(tree[1])]
    else:
        children = [(i, tree[1], item) for i, item in enumerate(value)]
    found = []
    for step, child, item in children:
        for sub_path, leaf, leaf_value, sub_crosses in paths(child, item, (*path, step)):
            found.append((sub_path, leaf, leaf_value, crosses or sub_crosses))
    return found


@st.composite
def shapes(draw: st.DrawFn) -> tuple[list[Any], list[Any]]:
    trees = draw(st.lists(type_trees(), min_size=1, max_size=4))
    return trees, [draw(values_for(tree)) for tree in trees]


@settings(max_examples=300, deadline=None)
@given(shape=shapes(), by_name=st.booleans())
def test_offsets_follow_the_abi_head_layout(shape, by_name):
    trees, values = shape
    text = "f(" + ",".join(type_text(t, True) + f" p{i}" for i, t in enumerate(trees)) + ")"
    function = parse_signature(text)
    kinds = [type_text(t, False) for t in trees]
    assert function.signature == f"f({','.join(kinds)})"
    encoded = abi_encode(kinds, values)
    for index, (tree, value) in enumerate(zip(trees, values, strict=True)):
        for path, leaf, leaf_value, crosses in paths(tree, value, (f"p{index}" if by_name else index,)):
            if crosses:
                with pytest.raises(BadInputError, match="dynamic"):
                    function.locate(path)
                continue
            offset, kind, label = function.locate(path)
            assert kind.name == leaf[1]
            assert encoded[offset : offset + 32] == abi_encode([leaf[1]], [leaf_value])
            assert function.word_at(offset) == (label.replace(f"arg{index}", f"p{index}"), kind)


def test_offsets_of_a_struct_and_a_fixed_array_of_structs():
    fill = find_function(ORDER_ABI, "fill")
    assert fill.signature == "fill((address,uint128,uint8),(int64,bytes4)[2],string)"
    assert fill.locate(("order", "maker"))[0] == 0
    assert fill.locate(("order", "side"))[0] == 64
    assert fill.locate((1, 0, "price"))[0] == 96
    assert fill.locate(("legs", 1, "price"))[0] == 160
    assert fill.locate(("legs", 1, "tag"))[:2] == (192, AbiType("elementary", "bytes4"))
    assert fill.locate(("legs", 1, 1))[2] == "legs[1].tag"
    with pytest.raises(BadInputError, match="dynamic value"):
        fill.locate(("memo",))


# --------------------------------------------------------------------------------------------------
# Reference values against eth-abi
# --------------------------------------------------------------------------------------------------

KINDS = [
    "uint8",
    "uint64",
    "uint256",
    "int8",
    "int64",
    "int256",
    "address",
    "bool",
    "bytes1",
    "bytes4",
    "bytes32",
]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), kind=st.sampled_from(KINDS))
def test_reference_values_are_the_words_the_abi_encodes(data, kind):
    value = data.draw(values_for(("leaf", kind)))
    rule = Policy.call(TARGET, f"f({kind} x)", rules=[arg("x") == value]).rules[0]
    assert rule.values == (word(value, kind),)
    assert rule.is_signed == kind.startswith("int")
    assert rule.name == "x"


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["uint8", "uint64", "uint256", "int8", "int64", "int256"]),
    op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
)
def test_a_rule_holds_exactly_when_the_comparison_of_the_numbers_does(data, kind, op):
    numbers = values_for(("leaf", kind))
    reference = data.draw(numbers)
    actual = data.draw(st.one_of(numbers, st.sampled_from([reference - 1, reference, reference + 1]).filter(
        lambda n: n in range(*_bounds(kind)))))  # fmt: skip
    ref = arg("x")
    spec = {"<": ref < reference, "<=": ref <= reference, ">": ref > reference, ">=": ref >= reference,
            "==": ref == reference, "!=": ref != reference}[op]  # fmt: skip
    rule = Policy.call(TARGET, f"f({kind} x)", rules=[spec]).rules[0]
    compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
               "!=": operator.ne}[op]  # fmt: skip
    assert rule.holds(word(actual, kind)) == compare(actual, reference)


def _bounds(kind: str) -> tuple[int, int]:
    bits = int(kind.removeprefix("u").removeprefix("int"))
    if kind.startswith("u"):
        return 0, 2**bits
    return -(2 ** (bits - 1)), 2 ** (bits - 1)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["uint16", "int16", "int256"]))
def test_in_range_and_one_of_hold_as_their_python_meaning(data, kind):
    numbers = values_for(("leaf", kind))
    low, high = sorted((data.draw(numbers), data.draw(numbers)))
    members = data.draw(st.lists(numbers, min_size=1, max_size=6))
    actual = data.draw(st.one_of(numbers, st.sampled_from([low, high, *members])))
    in_range, one_of = Policy.call(
        TARGET, f"f({kind} x)", rules=[arg("x").in_range(low, high), arg(0).one_of(members)]
    ).rules
    assert in_range.condition == Condition.IN_RANGE
    assert in_range.arg_type == arg_type_of(kind) and in_range.is_signed == kind.startswith("int")
    assert in_range.holds(word(actual, kind)) == (low <= actual <= high)
    assert one_of.holds(word(actual, kind)) == (actual in members)
    assert len(one_of.values) == len(set(members))


def test_each_operator_gives_its_condition():
    ref = arg("amount")
    specs = [ref == 1, ref != 1, ref < 1, ref <= 1, ref > 1, ref >= 1, ref.in_range(1, 2), ref.one_of(1, 2)]
    permission = Policy.call(TARGET, "transfer(address to,uint256 amount)", rules=specs)
    assert [r.condition for r in permission.rules] == [
        Condition.EQUAL, Condition.NOT_EQUAL, Condition.LESS_THAN, Condition.LESS_THAN_OR_EQUAL,
        Condition.GREATER_THAN, Condition.GREATER_THAN_OR_EQUAL, Condition.IN_RANGE, Condition.ONE_OF,
    ]  # fmt: skip
    assert {r.offset for r in permission.rules} == {32}
    # a reference on the right of the comparison reads the same
    below = 5 > arg(0)  # noqa: SIM300
    at_least = 5 <= arg(0)  # noqa: SIM300
    assert Policy.call(TARGET, "f(uint256)", rules=[below]).rules[0].condition == Condition.LESS_THAN
    assert (
        Policy.call(TARGET, "f(uint256)", rules=[at_least]).rules[0].condition
        == Condition.GREATER_THAN_OR_EQUAL
    )


def test_signed_rules_store_twos_complement_and_compare_signed():
    (rule,) = Policy.call(TARGET, "f(int24 fee)", rules=[arg("fee") < -500]).rules
    assert rule.condition == Condition.LESS_THAN and rule.arg_type == ArgType.int_of(24) and rule.is_signed
    assert rule.values == (2**256 - 500,)
    assert rule.holds(word(-501, "int24")) and not rule.holds(word(-500, "int24"))
    assert not rule.holds(word(3, "int24"))


def test_addresses_in_any_accepted_form_bytes_and_bools_and_enums():
    class Side(enum.IntEnum):
        BUY = 0
        SELL = 1

    class Color(enum.Enum):
        RED = 2

    rules = Policy.call(
        TARGET,
        "f(address to,bytes4 tag,bool flag,uint8 side,uint8 color)",
        rules=[
            arg("to") == USER.lower(),
            arg("to") != bytes.fromhex(TARGET[2:]),
            arg("tag") == "0x01020304",
            arg("flag") == True,  # noqa: E712 (a rule, not a truth test)
            arg("side") == Side.SELL,
            arg("color") == Color.RED,
        ],
    ).rules
    assert [r.values[0] for r in rules] == [
        int(USER, 16), int(TARGET, 16), int.from_bytes(bytes.fromhex("01020304").ljust(32, b"\0"), "big"), 1, 1, 2,
    ]  # fmt: skip


class HasAddress:
    address = USER


def test_objects_with_an_address_are_addresses():
    assert Policy.call(TARGET, "f(address)", rules=[arg(0) == HasAddress()]).rules[0].values == (
        int(USER, 16),
    )
    assert Policy.call(HasAddress(), "f()").target == USER


# --------------------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------------------


def test_permission_fields():
    permission = Policy.call(TARGET, "safeMint(address to)", rules=[arg("to") == USER], value_limit=10)
    assert isinstance(permission, Permission)
    assert permission.target == TARGET
    assert permission.selector == keccak(b"safeMint(address)")[:4]
    assert permission.function == "safeMint(address)"
    assert permission.value_limit == 10
    assert permission.rules == (
        Rule(
            condition=Condition.EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(int(USER, 16),), name="to"
        ),
    )
    unnamed = Policy.call(TARGET, "transfer(address,uint256)", rules=[arg(1) > 0]).rules[0]
    assert (unnamed.name, unnamed.offset) == ("arg1", 32)


def test_raw_rules_pass_through_and_one_rule_may_be_given_alone():
    raw = Rule(condition=Condition.EQUAL, offset=64, values=(7,))
    permission = Policy.call(TARGET, "f(uint256,uint256,uint256)", rules=[arg(0) == 1, raw])
    assert permission.rules[1] == raw
    assert Policy.call(TARGET, "f(uint256)", rules=arg(0) == 1).rules[0].values == (1,)


def test_native_transfers():
    permission = Policy.transfer(USER, value_limit=10**16)
    assert permission.selector == TRANSFER_SELECTOR == bytes(4)
    assert (permission.value_limit, permission.rules) == (10**16, ())
    assert permission.label == f"native transfer on {USER}"
    assert Policy.transfer(USER, "0x10").value_limit == 16


def test_from_abi_takes_lists_json_artefacts_and_objects_with_an_abi():
    class Artefact:
        abi = ERC20

    for source in (ERC20, json.dumps(ERC20), {"abi": ERC20}, json.dumps({"abi": ERC20}), Artefact()):
        permission = Policy.from_abi(TARGET, source, "transfer", rules=[arg("amount") <= 100])
        assert permission.function == "transfer(address,uint256)"
        assert permission.rules[0].offset == 32


def test_overloads_are_picked_by_signature_or_selector():
    with pytest.raises(BadInputError, match=r"overloaded.*safeTransferFrom\(address,address,uint256\), "):
        Policy.from_abi(TARGET, ERC721_OVERLOADS, "safeTransferFrom")
    three = Policy.from_abi(TARGET, ERC721_OVERLOADS, "safeTransferFrom(address,address,uint256)")
    four = Policy.from_abi(
        TARGET, ERC721_OVERLOADS, "safeTransferFrom(address from, address to, uint256 tokenId, bytes)"
    )
    assert three.function == "safeTransferFrom(address,address,uint256)"
    assert four.function == "safeTransferFrom(address,address,uint256,bytes)"
    by_selector = Policy.from_abi(TARGET, ERC721_OVERLOADS, "0x" + three.selector.hex())
    assert by_selector.function == three.function
    rule = Policy.from_abi(TARGET, ERC721_OVERLOADS, four.function, rules=[arg("tokenId") == 7]).rules[0]
    assert rule.offset == 64


_SWAP = [
    {
        "type": "function",
        "name": "swap",
        "inputs": [
            {"name": "amountIn", "type": "uint256"},
            {"name": "amountOutMin", "type": "uint256"},
            {"name": "path", "type": "tuple", "components": [{"name": "tokenIn", "type": "address"}]},
        ],
    }
]


def test_a_signature_naming_arguments_otherwise_than_the_abi_is_refused_not_bound_by_the_abi_s_names():
    """The text puts ``amountIn`` second; the rule was bound to the ABI's ``amountIn``, the first argument: a limit
    written on one argument, granted on another."""
    swapped = "swap(uint256 amountOutMin, uint256 amountIn, (address tokenIn) path)"
    with pytest.raises(
        BadInputError,
        match=r"the signature names argument 0 of swap\(uint256,uint256,\(address\)\) 'amountOutMin', the ABI "
        r"names it 'amountIn': a rule by name would bind the ABI's argument of that name\. Write the ABI's names",
    ):
        Policy.from_abi(TARGET, _SWAP, swapped, rules=[arg("amountIn") <= 10**18])
    inner = "swap(uint256 amountIn, uint256 amountOutMin, (address token) path)"
    with pytest.raises(
        BadInputError, match=r"names component 0 of .* 'token' in `path`, the ABI names it 'tokenIn'"
    ):
        Policy.from_abi(TARGET, _SWAP, inner)
    # the ABI's names, no names, or some of them: bound as the ABI lays them out
    for written in (
        "swap(uint256 amountIn, uint256 amountOutMin, (address tokenIn) path)",
        "swap(uint256,uint256,(address))",
        "swap(uint256 amountIn, uint256, (address) path)",
        "swap",
    ):
        rule = Policy.from_abi(TARGET, _SWAP, written, rules=[arg("amountIn") <= 10**18]).rules[0]
        assert (rule.offset, rule.name) == (0, "amountIn")


def test_a_function_listed_twice_with_other_argument_names_is_refused_as_ambiguous():
    """Merged ABIs list one function twice; with its arguments named otherwise, a rule by name bound by the last
    listing, whichever position it gives the name."""
    twice = [
        {
            "type": "function",
            "name": "f",
            "inputs": [{"name": "a", "type": "uint256"}, {"name": "b", "type": "uint256"}],
        },
        {
            "type": "function",
            "name": "f",
            "inputs": [{"name": "b", "type": "uint256"}, {"name": "a", "type": "uint256"}],
        },
    ]
    for written in ("f", "f(uint256,uint256)", "0x" + parse_signature("f(uint256,uint256)").selector.hex()):
        with pytest.raises(
            BadInputError, match=r"f\(uint256,uint256\) is listed twice in this ABI with other"
        ):
            Policy.from_abi(TARGET, twice, written, rules=[arg("a") <= 5])
    same = [twice[0], dict(twice[0])]  # listed twice alike: one function
    assert Policy.from_abi(TARGET, same, "f", rules=[arg("a") <= 5]).rules[0].offset == 0


def test_one_total_where_a_list_is_asked_for_is_taken_as_one_rule_is():
    """Once a raw TypeError ('TotalSpec' object is not iterable) from inside the builder."""
    one = Policy.call(TARGET, "pay(address to,uint256 amount)", totals=arg("amount").total(5, per="day"))
    listed = Policy.call(TARGET, "pay(address to,uint256 amount)", totals=[arg("amount").total(5, per="day")])
    assert one == listed and len(one.limits) == 1 and one.limits[0].amount == 5
    assert Policy.call(TARGET, "pay(address to,uint256 amount)", totals=None).limits == ()  # as calls=None
    for junk in (5, "amount", {"amount": 5}):
        with pytest.raises(
            BadInputError, match=r"totals= takes a list of arg\(\.\.\.\)\.total\(\.\.\.\) limits"
        ):
            Policy.call(TARGET, "pay(address to,uint256 amount)", totals=junk)


@pytest.mark.parametrize("count", [True, 2.0, "3", None])
def test_an_operations_count_is_an_integer_as_calls_is(count):
    with pytest.raises(
        BadInputError, match=r"Limits.operations takes a count of operations, an integer; got "
    ):
        Limits.operations(count)
    assert Limits.operations(3, per="hour").amount == 3


def test_unknown_functions_list_what_the_abi_has():
    with pytest.raises(
        UnknownFunctionError, match=r"approve\(address,uint256\), transfer\(address,uint256\)"
    ):
        Policy.from_abi(TARGET, ERC20, "transferFrom")
    with pytest.raises(UnknownFunctionError):
        Policy.from_abi(TARGET, ERC20, "transfer(address)")


def test_from_an_ape_contract_and_its_contract_type(nft, project):
    permission = Policy.from_contract(nft, "safeMint", rules=[arg("to") == USER])
    assert permission.target == nft.address
    assert permission.function == "safeMint(address)"
    assert permission.rules[0].name == "to"
    via_type = Policy.from_abi(nft, project.DemoNFT.contract_type, "mintBatch", rules=[arg("count") <= 3])
    assert (via_type.function, via_type.rules[0].offset) == ("mintBatch(address,uint256)", 32)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("uint8", 256, "256 is out of range [0, 255]"),
        ("uint8", -1, "-1 is out of range [0, 255]"),
        ("uint256", 2**256, "out of range"),
        ("int8", 128, "128 is out of range [-128, 127]"),
        ("int8", -129, "out of range [-128, 127]"),
        ("uint256", "5", "expected an integer, got '5'"),
        ("uint256", True, "expected an integer, got True"),
        ("uint256", 1.5, "expected an integer, got 1.5"),
        ("address", 5, "5 is not an address"),
        ("address", "0x1234", "'0x1234' is not an address"),
        ("bool", 2, "expected True or False, got 2"),
        ("bytes4", b"\x01\x02\x03", "expected exactly 4 bytes, got 3"),
        ("bytes4", "0x0102030405", "expected exactly 4 bytes, got 5"),
        ("bytes4", 7, "expected 4 bytes"),
        ("bytes4", "nothex", "is not bytes or 0x-hex"),
        ("fixed128x18", 1, "rules on fixed128x18 values are not supported"),
    ],
)
def test_wrong_reference_values_name_the_argument_type_and_value(kind, value, shown):
    with pytest.raises(BadInputError) as info:
        Policy.call(TARGET, f"f({kind} amount)", rules=[arg("amount") == value])
    message = str(info.value)
    assert f"argument `amount` ({kind}) of f({kind})" in message
    assert shown in message


def test_a_range_given_high_end_first_says_which_to_give() -> None:
    with pytest.raises(BadInputError) as info:
        Policy.call(TARGET, "f(uint256 amount)", rules=[arg("amount").in_range(3, 1)])
    assert str(info.value) == (
        "argument `amount` (uint256) of f(uint256): in_range(3, 1) has low above high: give the low end first, "
        "in_range(1, 3)"
    )


@pytest.mark.parametrize("value", ["me", "0x1234", 5])
def test_a_reference_value_that_is_no_address_is_named_once_with_the_reason(value) -> None:
    """It was "'me' is not an address: 'me' is not a valid address: expected 0x and 40 hex digits. Give ..."."""
    with pytest.raises(BadInputError) as info:
        Policy.call(TARGET, "f(address to)", rules=[arg("to") == value])
    message = str(info.value)
    assert message.startswith(f"argument `to` (address) of f(address): {value!r} is not an address: "), (
        message
    )
    assert message.count(f"{value!r} is not") == 1 and "is not a valid address" not in message, message
    assert message.endswith(
        "Give 0x followed by 40 hex digits (all lowercase, or with a correct EIP-55 checksum)."
    )


@pytest.mark.parametrize(
    ("signature", "path"),
    [
        ("f(bytes data)", ("data",)),
        ("f(string name)", ("name",)),
        ("f(uint256[] amounts)", ("amounts",)),
        ("f(uint256[] amounts)", ("amounts", 0)),
        ("f((uint256 a,bytes b) pair)", ("pair", "a")),
        ("f((uint256 a,bytes b)[2] pairs)", ("pairs", 0, "a")),
        ("f(uint256[2][] grid)", ("grid", 0, 1)),
    ],
)
def test_rules_on_dynamic_values_are_refused(signature, path):
    with pytest.raises(BadInputError) as info:
        Policy.call(TARGET, signature, rules=[arg(*path) == 1])
    message = str(info.value)
    assert f"`{path[0]}` is a " in message
    assert "dynamic" in message
    assert "compares head words only" in message


def test_static_arguments_after_dynamic_ones_are_fine():
    rule = Policy.call(TARGET, "f(bytes data,uint256 amount)", rules=[arg("amount") == 1]).rules[0]
    assert rule.offset == 32


def test_a_name_two_arguments_share_is_refused_not_bound_to_the_first():
    """A hand-written signature naming two arguments (or two components) alike: a rule by that name could mean
    either, so it is refused, and the index picks the one meant."""
    text = "swap(uint256 amount,uint256 amount,(uint8 a,uint8 a) pair)"
    with pytest.raises(BadInputError, match=r"has 2 arguments named 'amount' \(at 0, 1\).*by its index"):
        Policy.call(TARGET, text, rules=[arg("amount") <= 5])
    with pytest.raises(BadInputError, match=r"`pair` \(\(uint8,uint8\)\) has 2 components named 'a'"):
        Policy.call(TARGET, text, rules=[arg("pair", "a") <= 5])
    with pytest.raises(BadInputError, match="2 arguments named 'amount'"):
        Policy.call(TARGET, text, totals=[arg("amount").total(10)])
    permission = Policy.call(TARGET, text, rules=[arg(1) <= 5, arg("pair", 1) == 2])
    assert [(r.offset, r.name) for r in permission.rules] == [(32, "amount"), (96, "pair.a")]


def test_bad_argument_paths():
    with pytest.raises(BadInputError, match=r"no argument named 'amout'; its arguments: to \(address\)"):
        Policy.call(TARGET, "transfer(address to,uint256 amount)", rules=[arg("amout") == 1])
    with pytest.raises(BadInputError, match="index 2 is out of range"):
        Policy.call(TARGET, "transfer(address,uint256)", rules=[arg(2) == 1])
    with pytest.raises(BadInputError, match="has no argument named 'to'"):
        Policy.call(TARGET, "transfer(address,uint256)", rules=[arg("to") == USER])
    with pytest.raises(BadInputError, match="no components"):
        Policy.call(TARGET, "f(uint256 x)", rules=[arg("x", 0) == 1])
    with pytest.raises(
        BadInputError, match=r"put it on one of its components, e\.g\. arg\(\.\.\., 'amount'\)"
    ):
        Policy.call(TARGET, "f((uint256 amount,address to) order)", rules=[arg("order") == 1])
    with pytest.raises(BadInputError, match="index it with an integer from 0 to 2"):
        Policy.call(TARGET, "f(uint8[3] xs)", rules=[arg("xs", 3) == 1])
    with pytest.raises(BadInputError, match="beyond the module's 16-bit offsets"):
        Policy.call(TARGET, "f(uint256[2100] big,uint256 last)", rules=[arg("last") == 1])
    for bad in (-1, 1.5, True, None):
        with pytest.raises(BadInputError, match="arg"):
            arg(bad)


def test_bad_ranges_and_sets():
    with pytest.raises(BadInputError, match="low above high"):
        Policy.call(TARGET, "f(int8 x)", rules=[arg("x").in_range(1, -1)])
    with pytest.raises(BadInputError, match="1 to 31 distinct values, got 0"):
        Policy.call(TARGET, "f(uint8 x)", rules=[arg("x").one_of()])
    with pytest.raises(BadInputError, match="got 32"):
        Policy.call(TARGET, "f(uint8 x)", rules=[arg("x").one_of(range(32))])
    with pytest.raises(
        BadInputError, match=r"`x` \(uint256\).*got 10{18}; for a span of values use in_range"
    ):
        Policy.call(TARGET, "f(uint256 x)", rules=[arg("x").one_of(range(10**18))])
    with pytest.raises(BadInputError, match="storage words"):
        Policy.call(
            TARGET, "f(uint8 x)", rules=[arg("x").one_of(*range(20)), arg("x").one_of(*range(20, 40))]
        )


def test_a_rule_is_not_a_truth_value():
    with pytest.raises(BadInputError, match="in_range"):
        Policy.call(TARGET, "f(uint256 x)", rules=[1 < arg("x") < 5])
    with pytest.raises(BadInputError):
        bool(arg("x") == 1)
    with pytest.raises(BadInputError, match="truth value"):
        bool(arg("x"))


def test_bad_targets_limits_and_rules():
    with pytest.raises(BadInputError, match="zero address"):
        Policy.call("0x" + "00" * 20, "f()")
    with pytest.raises(BadInputError, match="not a valid address"):
        Policy.call("0x1234", "f()")
    with pytest.raises(BadInputError, match="value_limit must not be negative"):
        Policy.call(TARGET, "f()", value_limit=-1)
    with pytest.raises(BadInputError, match="does not fit in uint256"):
        Policy.transfer(TARGET, 2**256)
    with pytest.raises(BadInputError, match="rules must be arg"):
        Policy.call(TARGET, "f(uint256 x)", rules=["x == 1"])
    with pytest.raises(InvalidAbiError, match="not valid JSON"):
        Policy.from_abi(TARGET, "[{", "f")
    with pytest.raises(InvalidAbiError, match="cannot read an ABI"):
        Policy.from_abi(TARGET, 42, "f")
    with pytest.raises(InvalidAbiError, match="no 'components'"):
        Policy.from_abi(TARGET, [{"type": "function", "name": "f", "inputs": [{"type": "tuple"}]}], "f")


def test_each_rule_carries_its_arguments_abi_type():
    """The type the module judges the word by, from the signature: components of static tuples and elements of
    fixed arrays included, enums as uint8."""
    signature = (
        "f(address a,bool b,uint8 c,int64 d,bytes4 e,bytes32 f,uint256 g,int256 h,(uint16 x,int8 y) t,"
        "uint24[2] arr,uint u)"
    )
    paths = [
        ("a",),
        ("b",),
        ("c",),
        ("d",),
        ("e",),
        ("f",),
        ("g",),
        ("h",),
        ("t", "x"),
        ("t", "y"),
        ("arr", 1),
        ("u",),
    ]
    values = [TARGET, True, 3, -3, b"\x01\x02\x03\x04", b"\x00" * 32, 5, -5, 7, -1, 9, 11]
    rules = Policy.call(
        TARGET, signature, rules=[arg(*p) == v for p, v in zip(paths, values, strict=True)]
    ).rules
    assert [r.arg_type for r in rules] == [
        ArgType.ADDRESS, ArgType.BOOL, ArgType.UINT8, ArgType.int_of(64), ArgType.bytes_of(4), ArgType.BYTES32,
        ArgType.WORD, ArgType.INT256, ArgType.uint_of(16), ArgType.int_of(8), ArgType.uint_of(24), ArgType.WORD,
    ]  # fmt: skip
    assert [ArgType.name(r.arg_type) for r in rules[:5]] == ["uint160", "bool", "uint8", "int64", "bytes4"]
    assert all(r.is_canonical(v) for r, v in zip(rules, (r.values[0] for r in rules), strict=True))
    assert [r.is_signed for r in rules[6:10]] == [False, True, False, True]
    enum = [
        {
            "type": "function",
            "name": "set",
            "inputs": [{"name": "mode", "type": "uint8", "internalType": "enum M"}],
        }
    ]
    assert Policy.from_abi(TARGET, enum, "set", rules=[arg("mode") == 2]).rules[0].arg_type == ArgType.UINT8


def test_a_raw_rule_without_a_type_is_a_256_bit_word_and_signed_is_int256():
    assert Rule(condition=Condition.LESS_THAN, offset=0, values=(5,)).arg_type == ArgType.WORD
    shorthand = Rule(condition=Condition.LESS_THAN | 0x40, offset=0, values=(Rule.signed_word(-5),))
    assert (shorthand.condition, shorthand.arg_type) == (Condition.LESS_THAN, ArgType.INT256)
    with pytest.raises(ValueError, match="not an intN type"):
        Rule(condition=Condition.LESS_THAN | 0x40, offset=0, arg_type=ArgType.UINT8, values=(5,))
    with pytest.raises(ValueError, match="unknown arg_type 0x61"):
        Rule(condition=Condition.EQUAL, offset=0, arg_type=0x61, values=(1,))


def test_a_typo_in_a_permission_limit_names_it() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'call'"):
        Policy.call(TARGET, "mint(uint256)", call=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'rates'"):
        Policy.from_abi(TARGET, ORDER_ABI, "fill", rates="1/day")  # type: ignore[call-arg]
