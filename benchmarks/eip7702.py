"""Gas of sessions on EntryPoint v0.8: keyscope's account created by its v0.8 factory, an EOA delegating to
``KeyscopeDelegate`` (EIP-7702), and keyscope's v0.7 account for comparison. Prints one table.

``.venv/bin/python benchmarks/eip7702.py`` (starts its own local stack). Figures are ``actualGasUsed`` as the
EntryPoint charges it (fixed keys, so the figures repeat run to run), sent through Alto with the SDK's gas limits and margins (the method of
``support.accounts.measure_gas``: the unused-gas penalties are in), the prefund paid from the account:

* owner: ``DemoNFT.safeMint`` by the owner, the owner's lane used once before;
* session: the same mint by a session (1 rule), the session's lane used once before;
* first use: the first mint of an off-chain grant (ENABLE: the owner's signature checked through ERC-1271, the
  session stored);
* setup: what makes the account session-capable: for the EOA, its first operation (EIP-7702 authorization, new
  epoch at the module, module install with one session); for the factory accounts, the creating operation of an
  owner mint (module installed at creation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common import fixed_signer

from keyscope import Policy, SessionKey, arg, connect
from keyscope.calls import function_call
from keyscope.local import LocalStack
from keyscope.network import Network

ETHER = 10**18


def _gas(pending: Any) -> int:
    return int(pending.wait(60).actual_gas_used)


def _key(label: str) -> SessionKey:
    """A session key derived from ``label``: the same every run, so the calldata bytes (and the gas) repeat."""
    return SessionKey(fixed_signer(f"eip7702/{label}").private_key)


def _sessions(
    net: Network, owner: Any, stack: LocalStack, recipient: str, label: str
) -> tuple[int, int, int]:
    mint = function_call(stack.nft, "safeMint(address)", recipient)
    policy = [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == recipient])]
    key = _key(f"{label}-session")
    session = net.session(owner.grant(key, policy), key)
    first_use = _gas(session.send_calls(mint))
    owner_gas = _gas(owner.execute(mint))
    session_gas = _gas(session.send_calls(mint))
    return owner_gas, session_gas, first_use


def factory_account(stack: LocalStack, factory: str, label: str) -> dict[str, int]:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=factory)
    owner = net.owner(fixed_signer(f"eip7702/{label}-owner"))
    stack.fund(owner.account, ETHER)
    recipient = owner.signer.address
    setup = _gas(owner.execute(function_call(stack.nft, "safeMint(address)", recipient)))  # creates it
    owner_gas, session_gas, first_use = _sessions(net, owner, stack, recipient, label)
    return {"setup": setup, "owner": owner_gas, "session": session_gas, "first_use": first_use}


def delegated_eoa(stack: LocalStack) -> dict[str, int]:
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, delegate=stack.delegate)
    eoa = fixed_signer("eip7702/eoa")
    stack.fund(eoa.address, ETHER)
    owner = net.eoa(eoa)
    policy = [Policy.call(stack.nft, "safeMint(address to)", rules=[arg("to") == eoa.address])]
    pending = owner.send_upgrade(_key("eoa-upgrade"), policy, valid_for=3600)
    pending.wait(60)
    assert pending.receipt is not None
    # the owner's lane, used once
    owner.execute(function_call(stack.nft, "safeMint(address)", eoa.address)).wait(60)
    owner_gas, session_gas, first_use = _sessions(net, owner, stack, eoa.address, "eoa")
    return {
        "setup": int(pending.receipt.actual_gas_used),
        "owner": owner_gas,
        "session": session_gas,
        "first_use": first_use,
    }


def run(stack: LocalStack, *, log: Callable[[str], None] = print) -> dict[str, dict[str, int]]:
    """The figures per account, by name."""
    out = {}
    for name, measure in (
        ("keyscope account, v0.7", lambda: factory_account(stack, stack.factory, "v07")),
        ("keyscope account, v0.8", lambda: factory_account(stack, stack.factory_v08, "v08")),
        ("EOA + KeyscopeDelegate (EIP-7702), v0.8", lambda: delegated_eoa(stack)),
    ):
        log(f"eip7702: {name}")
        out[name] = measure()
    return out


def table(results: dict[str, dict[str, int]]) -> str:
    lines = [
        "| account | setup | owner | session | session / owner | first session use (ENABLE) |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {figures['setup']:,} | {figures['owner']:,} | {figures['session']:,} | "
            f"{figures['session'] / figures['owner']:.3f} | {figures['first_use']:,} |"
        )
    return "\n".join(lines)


def main() -> int:
    with LocalStack() as stack:
        print(table(run(stack)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
