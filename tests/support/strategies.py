"""Hypothesis strategies for sessions as a grant carries them: permissions made from function signatures with
named arguments, typed rules on their static arguments, windows, gas caps and paymasters."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from keyscope.hexutil import to_address
from keyscope.policy import Policy, RuleSpec, arg
from keyscope.session import Permission, Session

__all__ = ["addresses", "contract_calls", "sessions", "signatures", "words"]

addresses = st.binary(min_size=20, max_size=20).map(to_address).filter(lambda a: int(a, 16) > 0xFFFF)
words = st.integers(0, 2**256 - 1)

_TYPES = ["address", "uint256", "uint8", "uint64", "int256", "int32", "bool", "bytes32", "bytes4"]
_NAMES = ["to", "amount", "spender", "id", "delta", "flag", "tag", "fee", "deadline", "who"]


def _value(draw: st.DrawFn, kind: str) -> Any:
    if kind == "address":
        return draw(addresses)
    if kind == "bool":
        return draw(st.booleans())
    if kind.startswith("bytes"):
        size = int(kind[5:])
        return draw(st.binary(min_size=size, max_size=size))
    bits = int(kind.lstrip("uint") or 256)
    if kind.startswith("u"):
        return draw(st.integers(0, 2**bits - 1))
    return draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))


@st.composite
def signatures(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """``name(type1 arg1,type2 arg2,...)`` with 1 to 4 named static arguments, and the (name, type) pairs."""
    count = draw(st.integers(1, 4))
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=count, max_size=count, unique=True))
    kinds = draw(st.lists(st.sampled_from(_TYPES), min_size=count, max_size=count))
    function = draw(st.sampled_from(["mint", "transfer", "swap", "settle", "vote", "claim"]))
    params = list(zip(names, kinds, strict=True))
    return f"{function}({','.join(f'{k} {n}' for n, k in params)})", params


@st.composite
def _rule(draw: st.DrawFn, name: str, kind: str) -> RuleSpec:
    ref = arg(name)
    if kind in ("address", "bool") or kind.startswith("bytes"):
        op = draw(st.sampled_from(["eq", "ne", "one_of"]))
    else:
        op = draw(st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "range", "one_of"]))
    if op == "range":
        low, high = sorted((_value(draw, kind), _value(draw, kind)))
        return ref.in_range(low, high)
    if op == "one_of":
        values = [_value(draw, kind) for _ in range(draw(st.integers(1, 3)))]
        return ref.one_of(*values)
    value = _value(draw, kind)
    result: RuleSpec = {
        "eq": ref.__eq__,
        "ne": ref.__ne__,
        "lt": ref.__lt__,
        "le": ref.__le__,
        "gt": ref.__gt__,
        "ge": ref.__ge__,
    }[op](value)
    return result


@st.composite
def contract_calls(draw: st.DrawFn, target: Any = None) -> Permission:
    """A permission for one function of one contract, with rules on some of its arguments."""
    signature, params = draw(signatures())
    ruled = draw(st.lists(st.sampled_from(params), max_size=len(params), unique=True))
    rules = [draw(_rule(name, kind)) for name, kind in ruled]
    value_limit = draw(st.sampled_from([0, 10**15]) | st.integers(0, 2**96 - 1))
    return Policy.call(
        draw(addresses) if target is None else target, signature, rules=rules, value_limit=value_limit
    )


@st.composite
def sessions(draw: st.DrawFn, max_permissions: int = 3, last_time: int = 2**48 - 1) -> Session:
    """A session of 1 to ``max_permissions`` contract-call permissions (and maybe a plain transfer), ending no
    later than ``last_time`` (or never: valid_until 0)."""
    permissions = draw(
        st.lists(
            contract_calls(), min_size=1, max_size=max_permissions, unique_by=lambda p: (p.target, p.selector)
        )
    )
    if draw(st.booleans()):
        permissions.append(Policy.transfer(draw(addresses), draw(st.integers(1, 2**96 - 1))))
    valid_after = draw(st.integers(0, min(2**40, last_time - 1)))
    valid_until = draw(st.just(0) | st.integers(valid_after + 1, last_time))
    gas_cap = draw(st.just(0) | st.integers(1, 2**40 - 1).map(lambda gwei: gwei * 10**9))
    paymasters = draw(st.lists(addresses, max_size=2, unique=True)) if gas_cap else []
    return Session(
        session_key=draw(addresses),
        valid_after=valid_after,
        valid_until=valid_until,
        max_gas_cost=gas_cap,
        paymasters=tuple(paymasters),
        salt=draw(words),
        permissions=tuple(permissions),
    )
