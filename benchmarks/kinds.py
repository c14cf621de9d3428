"""The session module on other ERC-7579 accounts: Kernel v3.1, Nexus 1.0, Safe7579 and the ERC-7579 reference
account (MSA), next to keyscope's own.

Two sets of figures per account kind:

* ``support.accounts.measure_gas`` (tests/support/accounts.py) (the accounts' adapters' own figures): ``actualGasUsed`` of an
  owner mint, a session mint (1 rule) and the session's first use (ENABLE), sent through Alto with the SDK's
  gas limits, the prefund paid from the account's balance; fixed keys, so that the figures repeat run to run. The owner of Kernel, Nexus, Safe7579 and MSA signs
  through ``OwnerECDSAValidator``, an external validator module, where keyscope's account checks its owner
  inline.
* The method of ``benchmarks/gas.py`` (:class:`gas.Lab`): handleOps transaction gas and validation gas of an
  owner mint and a 2-rule session mint on identical state, tight callGasLimit, deposit at the EntryPoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common import fixed_signer, ratio
from gas import ETHER, HEADLINE_RULES, Lab, measure_shapes, mint_permission, shape_ratios

from keyscope import SessionKey
from keyscope.calls import function_call
from support.accounts import ACCOUNT_KINDS, deploy_accounts, measure_gas, network_for
from support.victims import deploy as deploy_project_contract


def _tight(stack: Any, contracts: Any, name: str, token: str) -> dict[str, Any]:
    net = network_for(stack, contracts.kind(name))
    net.kind = contracts.kind(name, net)
    lab = Lab(stack, net)
    recipient = fixed_signer("kinds/recipient").address
    mint = function_call(stack.nft, "safeMint(address)", recipient)
    owner = net.owner(fixed_signer(f"kinds/{name}-owner"))
    stack.fund(owner.account, 100 * ETHER)
    owner.execute(mint).wait()
    lab.deposit(owner.account, 10 * ETHER)
    key = SessionKey(fixed_signer(f"kinds/{name}-key").private_key)
    owner.grant(
        key, [mint_permission(stack.nft, recipient, HEADLINE_RULES)], onchain=True, salt=1, never_expires=True
    )
    lab.send(lab.signed(lab.session_draft(owner.account, key, [mint])))  # the module's lane 0, as measured
    owner_row = lab.measure(f"{name}_owner", lambda: lab.owner_draft(owner, [mint]))
    session_row = lab.measure(f"{name}_session", lambda: lab.session_draft(owner.account, key, [mint]))
    prefix = f"{name}_"
    rows = {f"{prefix}owner": owner_row, f"{prefix}session_{HEADLINE_RULES}_rules": session_row}
    outer = stack.snapshot()
    try:
        rows.update(measure_shapes(stack, lab, owner, token, prefix=prefix))
    finally:
        stack.revert(outer)
    return {
        "shapes": shape_ratios(rows, prefix),
        "owner": owner_row.row(),
        "session": session_row.row(),
        "tx_gas_ratio": ratio(session_row.tx_gas, owner_row.tx_gas),
        "validation_gas_ratio": ratio(session_row.validation_gas, owner_row.validation_gas),
    }


def run(stack: Any, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Per-kind figures, as a dict for results.json; a kind that fails is reported with its error."""
    log("kinds: deploying Kernel, Nexus, Safe7579 and the reference account")
    out: dict[str, Any] = {}
    try:
        contracts = deploy_accounts(stack)
        token = deploy_project_contract(stack, "TestToken")
    except Exception as error:
        return {name: {"error": f"{type(error).__name__}: {error}"} for name in ACCOUNT_KINDS}
    for name in ACCOUNT_KINDS:
        log(f"kinds: {name}")
        entry: dict[str, Any] = {}
        try:
            figures = measure_gas(
                stack,
                contracts,
                name,
                owner_signer=fixed_signer(f"kinds/{name}-adapter-owner"),
                session_key=SessionKey(fixed_signer(f"kinds/{name}-adapter-key").private_key),
            )
            entry["adapter_figures"] = {
                "owner": figures.owner,
                "session": figures.session,
                "first_use": figures.first_use,
                "ratio": figures.ratio,
                "first_use_extra": figures.first_use_extra,
            }
        except Exception as error:
            entry["adapter_figures"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        try:
            entry["tight"] = _tight(stack, contracts, name, token)
        except Exception as error:
            entry["tight"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        out[name] = entry
    return out
