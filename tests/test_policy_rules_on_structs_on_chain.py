"""Rules by argument name on static structs, fixed-size arrays and narrow types hit the word the target reads.

The owner approves ``order.amount <= 1000``; the module checks the word at the rule's offset. Offsets come from the
ABI: here solc's own JSON ABI (through an ape ``ContractType``, and as a plain list), checked against eth-abi's
encoder for generated shapes, and end to end on chain: a real contract compiled by solc, each ruled argument just
inside and just outside its rule, the module refusing exactly the rule of the argument moved (on a fresh anvil of
the file's own, the EntryPoint, the factory and the module deployed there).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest
from ape.contracts import ContractContainer
from eth_abi import encode as abi_encode
from ethpm_types import ContractType
from hypothesis import given, settings

from keyscope.execution import Call
from keyscope.hexutil import to_address
from keyscope.policy import Policy, arg, find_function
from keyscope.session import Session
from support.anvil_chain import AnvilChain, AnvilContract, anvil_chain
from support.anvil_harness import anvil_sessions
from support.solidity import compile_contract_type
from test_policy import paths, shapes, type_text

SOURCE = """
// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Orders of structs, fixed-size arrays and narrow types, compiled with ABI coder v2 (the default).
contract Orders {
    enum Side { Buy, Sell, Hold }
    type Price is int64;
    struct Order { address maker; uint128 amount; Side side; }
    struct Leg { Price price; bytes4 tag; }

    uint256 public fills;
    uint128 public lastAmount;

    function fill(
        Order calldata order,
        Leg[2] calldata legs,
        string calldata memo,
        int16[3] calldata deltas,
        bytes3 code,
        bool urgent,
        function(uint256) external callback
    ) external {
        fills += 1;
        lastAmount = order.amount;
    }
}
"""
SIGNATURE = "fill((address,uint128,uint8),(int64,bytes4)[2],string,int16[3],bytes3,bool,function)"
TYPES = ["(address,uint128,uint8)", "(int64,bytes4)[2]", "string", "int16[3]", "bytes3", "bool", "function"]
MAKER = to_address("0x" + "a1" * 20)


class Side(enum.IntEnum):
    BUY = 0
    SELL = 1
    HOLD = 2


@pytest.fixture(scope="module")
def anvil(project: Any) -> Iterator[tuple[AnvilChain, Any]]:
    """The file's anvil, where the rules are tried end to end, and the session harness on it: the EntryPoint, the
    factory and the module (ape's build of their sources) and the in-process bundler."""
    with anvil_chain() as chain:
        yield chain, anvil_sessions(chain, project)


@pytest.fixture
def sessions(anvil: tuple[AnvilChain, Any]) -> Any:
    return anvil[1]


class Orders(AnvilContract):
    """The compiled ``Orders`` on the file's anvil, with its contract type, as ape's contract has it."""

    def __init__(self, deployed: AnvilContract, contract_type: ContractType) -> None:
        super().__init__(deployed.chain, deployed.address, contract_type)
        self.contract_type = contract_type


@pytest.fixture(scope="module")
def orders_type() -> ContractType:
    return compile_contract_type(SOURCE, "Orders")


@pytest.fixture(scope="module")
def orders(orders_type: ContractType, anvil: tuple[AnvilChain, Any]) -> Orders:
    chain = anvil[0]
    return Orders(chain.deploy(ContractContainer(orders_type), sender=chain.accounts[0]), orders_type)


def _callback(orders: Any) -> bytes:
    return bytes.fromhex(orders.address[2:]) + bytes.fromhex("deadbeef")


def _arguments(orders: Any, **changes: Any) -> list[Any]:
    """Arguments every rule below holds for, with ``changes`` to one of them."""
    values: dict[str, Any] = {
        "order": (MAKER, 1000, Side.SELL),
        "legs": [(7, b"\x00\x00\x00\x00"), (-5, b"ABCD")],
        "memo": "a memo",
        "deltas": [0, 0, 3],
        "code": b"abc",
        "urgent": False,
        "callback": _callback(orders),
    }
    values.update(changes)
    return list(values.values())


def _call(orders: Any, arguments: list[Any]) -> Call:
    function = find_function(orders.contract_type, "fill")
    return Call.of(orders.address, 0, function.selector + abi_encode(TYPES, arguments))


def _permission(orders: Any):
    return Policy.from_abi(
        orders.address,
        orders.contract_type,
        "fill",
        rules=[
            arg("order", "maker") == MAKER,  # 0
            arg("order", "amount") <= 1000,  # 1
            arg("order", "side") == Side.SELL,  # 2
            arg("legs", 1, "price") >= -5,  # 3
            arg("legs", 1, "tag") == b"ABCD",  # 4
            arg("deltas", 2).in_range(-3, 3),  # 5
            arg("code") == b"abc",  # 6
            arg("urgent") == False,  # noqa: E712 (a rule, not a test)  # 7
            arg("callback") == _callback(orders),  # 8
        ],
    )


def test_the_rules_sit_at_the_words_solc_s_abi_puts_each_argument(orders_type) -> None:
    """Offsets and labels by name, from the ape ContractType and from its JSON list alike."""
    by_type = find_function(orders_type, "fill")
    by_list = find_function(
        [entry.model_dump(mode="json", by_alias=True) for entry in orders_type.abi], "fill"
    )
    assert by_type == by_list
    assert by_type.signature == SIGNATURE
    expected = {
        ("order", "maker"): (0, "order.maker"),
        ("order", "amount"): (32, "order.amount"),
        ("order", "side"): (64, "order.side"),
        ("legs", 0, "price"): (96, "legs[0].price"),
        ("legs", 1, "tag"): (192, "legs[1].tag"),
        ("deltas", 2): (320, "deltas[2]"),
        ("code",): (352, "code"),
        ("urgent",): (384, "urgent"),
        ("callback",): (416, "callback"),
    }
    for path, (offset, label) in expected.items():
        assert by_type.locate(path)[0::2] == (offset, label), path


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        (0, {"order": (to_address("0x" + "a2" * 20), 1000, Side.SELL)}),
        (1, {"order": (MAKER, 1001, Side.SELL)}),
        (2, {"order": (MAKER, 1000, Side.HOLD)}),
        (3, {"legs": [(7, b"\x00\x00\x00\x00"), (-6, b"ABCD")]}),
        (4, {"legs": [(7, b"\x00\x00\x00\x00"), (-5, b"ABCE")]}),
        (5, {"deltas": [0, 0, 4]}),
        (5, {"deltas": [0, 0, -4]}),
        (6, {"code": b"abd"}),
        (7, {"urgent": True}),
        (8, {"callback": bytes(20) + bytes.fromhex("deadbeef")}),
    ],
)
def test_each_rule_refuses_its_own_argument_just_outside_it(
    sessions, owner, session_key, orders, rule, changes
) -> None:
    """The call with every argument inside its rule passes (the rules' far ends too); moving one argument just
    outside is refused by that argument's rule, and no other."""
    account = sessions.account(owner)
    sessions.grant_onchain(
        account, owner, Session(session_key=session_key.address, permissions=(_permission(orders),))
    )
    fills = orders.fills()
    for inside in ({}, {"legs": [(99, b"zzzz"), (2**63 - 1, b"ABCD")], "deltas": [-9, 9, -3]}):
        outcome = sessions.outcome(
            sessions.op(account, session_key, _call(orders, _arguments(orders, **inside)))
        )
        assert outcome == "ok", (inside, outcome)
    assert orders.fills() == fills + 2
    outcome = sessions.outcome(
        sessions.op(account, session_key, _call(orders, _arguments(orders, **changes)))
    )
    assert (
        "AA23" in outcome and f"RuleViolated(callIndex=0, permissionIndex=0, ruleIndex={rule}" in outcome
    ), outcome
    assert orders.fills() == fills + 2


def _json(tree: Any, name: str) -> dict[str, Any]:
    """The JSON ABI parameter of a shape tree (as solc writes it: tuples as "tuple" with components)."""
    if tree[0] == "leaf":
        return {"name": name, "type": tree[1], "internalType": tree[1]}
    if tree[0] == "tuple":
        return {
            "name": name,
            "type": "tuple",
            "internalType": "struct S",
            "components": [_json(child, f"c{i}") for i, child in enumerate(tree[1])],
        }
    element = _json(tree[1], name)
    element["type"] += "[]" if tree[2] is None else f"[{tree[2]}]"
    return element


@settings(max_examples=150, deadline=None)
@given(shape=shapes())
def test_offsets_from_a_json_abi_and_an_ape_contract_type_follow_the_abi_head_layout(shape) -> None:
    """As ``test_policy``'s property for signatures, for ABIs in JSON (components named) and as ape reads them."""
    trees, values = shape
    entry = {
        "type": "function",
        "name": "f",
        "stateMutability": "nonpayable",
        "inputs": [_json(tree, f"p{i}") for i, tree in enumerate(trees)],
        "outputs": [],
    }
    function = find_function([entry], "f")
    assert find_function(ContractType.model_validate({"abi": [entry]}), "f") == function
    kinds = [type_text(tree, False) for tree in trees]
    assert function.signature == f"f({','.join(kinds)})"
    encoded = abi_encode(kinds, values)
    for index, (tree, value) in enumerate(zip(trees, values, strict=True)):
        for path, leaf, leaf_value, crosses in paths(tree, value, (f"p{index}",)):
            if crosses:
                continue
            offset, kind, label = function.locate(path)
            assert kind.name == leaf[1]
            assert encoded[offset : offset + 32] == abi_encode([leaf[1]], [leaf_value])
            assert function.word_at(offset) == (label, kind)
