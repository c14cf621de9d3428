"""Where the session operation's gas goes, step by step, next to the owner's: measured from opcode traces.

Each operation is one of ``benchmarks/gas.py``'s (:class:`gas.Lab`: Alto's verification and preVerificationGas, the
tight callGasLimit, a deposit at the EntryPoint, both nonce lanes used once) on keyscope's account, on the same
chain state as its counterpart. Before it is sent, the same ``handleOps`` transaction is traced on that state with
anvil's struct logger (``debug_traceCall``: every opcode with the gas left before it); the trace's gas must equal
the mined transaction's gasUsed, or the run stops. The trace is cut into call frames, and each frame's gas into

* its storage reads (SLOAD, named by what the code reads there) and its calls (the precompile ``ecrecover``, the
  account's call into the module: the call's own cost, apart from what the callee spends), and
* the code between them, which keeps the name of the step it leads to or follows.

The steps of the three call shapes (NFT mint, ERC-20 ``transfer``, ERC-721 ``transferFrom`` of an owned token,
each by the owner and by a session with 2 rules) add up exactly to each transaction's gas. From them, per shape,
the floor: the least a session operation must spend beyond the owner's, and the ratio it implies.

Then the first operation of a brand-new account: created by its first operation (initCode through keyscope's
factory, the module installed at creation), by the owner (a mint) or by a session granted off-chain (ENABLE, 2
rules) that mints; the parts (creation, the module's installation, the grant's fresh storage slots) are taken from
the same traces, and the grant's slots are named and checked against what a later session operation reads.

Run by ``benchmarks/run.py`` (part ``decompose``), or alone: ``.venv/bin/python benchmarks/decompose.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common import STACK_SETTINGS, fixed_signer, ratio
from gas import (
    ETHER,
    HEADLINE_RULES,
    PLACEHOLDER_ECDSA,
    SHAPES,
    TX_GAS,
    Draft,
    Lab,
    Measured,
    measure_shapes,
    mint_permission,
)

from keyscope import SessionKey, connect
from keyscope.calls import function_call
from keyscope.entrypoint import encode_handle_ops
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.session import encode_enable_signature
from keyscope.userop import UserOperation
from support import commitment_probe
from support.gas_shapes import ERC20_AMOUNT
from support.victims import deploy as deploy_project_contract
from support.victims import view

CALLS = ("CALL", "STATICCALL", "DELEGATECALL", "CALLCODE")
ECRECOVER = "0x" + "00" * 19 + "01"
COLD_SLOAD = 2_100
COLD_ACCOUNT = 2_600
FRESH_SSTORE = 20_000
NONZERO_BYTE_EXTRA = 12  # a nonzero calldata byte costs 16 gas, a zero byte 4
TRACE_OPTIONS = {
    "disableStorage": True,
    "enableMemory": False,
    "disableStack": False,
    "enableReturnData": False,
}

# -- the trace --------------------------------------------------------------------------------------------


def _address(word: str) -> str:
    return "0x" + word[2:].rjust(64, "0")[-40:].lower()


@dataclass
class Frame:
    """One call frame of a struct-log trace: its steps (indices into the log) and the frames it called."""

    to: str | None
    opcode: str | None
    depth: int
    opened_by: int | None
    steps: list[int] = field(default_factory=list)
    children: dict[int, Frame] = field(default_factory=dict)
    """The frame each of its call steps opened, by that step's index."""


class Trace:
    """A ``handleOps`` transaction's struct log, cut into frames; each step's cost from the gas left."""

    def __init__(self, result: dict[str, Any], entry_point: str) -> None:
        self.entry_point = entry_point.lower()
        self.logs: list[dict[str, Any]] = result["structLogs"]
        self.gas = int(result["gas"])
        self.intrinsic = TX_GAS - int(self.logs[0]["gas"])
        self.root = Frame(None, None, 1, None)
        self.frames = [self.root]
        open_frames = [self.root]
        for index, step in enumerate(self.logs):
            while step["depth"] < open_frames[-1].depth:
                open_frames.pop()
            if step["depth"] > open_frames[-1].depth:
                caller = self.logs[index - 1]
                to = _address(caller["stack"][-2]) if caller["op"] in CALLS else None
                frame = Frame(to, caller["op"], step["depth"], index - 1)
                open_frames[-1].children[index - 1] = frame
                open_frames.append(frame)
                self.frames.append(frame)
            open_frames[-1].steps.append(index)
        self._costs: dict[int, list[int]] = {}

    def costs(self, frame: Frame) -> list[int]:
        """Each of ``frame``'s own steps' gas: the gas left before it less the gas left before the frame's next
        step (so a call step's cost holds all its callee spent); the last step's own cost."""
        key = id(frame)
        if key not in self._costs:
            steps = frame.steps
            self._costs[key] = [
                self.logs[i]["gas"] - self.logs[steps[k + 1]]["gas"]
                if k + 1 < len(steps)
                else self.logs[i]["gasCost"]
                for k, i in enumerate(steps)
            ]
        return self._costs[key]

    def used(self, frame: Frame) -> int:
        """All the gas ``frame`` used, its callees' included."""
        return sum(self.costs(frame))

    def events(self, frame: Frame) -> list[tuple[str, int, dict[str, Any]]]:
        """``frame``'s landmarks in order, with the code between them: ("code", gas, {}), ("SLOAD", gas,
        {"slot"}), ("call", the call's own gas, {"to", "frame"}), ("precompile", gas, {"to"}), ("SSTORE", gas,
        {"slot"})."""
        out: list[tuple[str, int, dict[str, Any]]] = []
        code = 0
        for index, cost in zip(frame.steps, self.costs(frame), strict=True):
            step = self.logs[index]
            opcode = step["op"]
            if opcode in ("SLOAD", "SSTORE"):
                out.append(("code", code, {}))
                code = 0
                out.append((opcode, cost, {"slot": int(step["stack"][-1], 16)}))
            elif opcode in CALLS:
                out.append(("code", code, {}))
                code = 0
                child = frame.children.get(index)
                to = _address(step["stack"][-2])
                if child is None:
                    out.append(("precompile", cost, {"to": to}))
                else:
                    out.append(("call", cost - self.used(child), {"to": to, "frame": child}))
            else:
                code += cost
        out.append(("code", code, {}))
        return out

    def sstores(self, frame: Frame) -> list[tuple[int, int]]:
        """Every SSTORE in ``frame`` and below: (slot, gas)."""
        out = []
        for kind, gas, info in self.events(frame):
            if kind == "SSTORE":
                out.append((info["slot"], gas))
            elif kind == "call":
                out.extend(self.sstores(info["frame"]))
        return out

    def sloads(self, frame: Frame) -> list[tuple[int, int]]:
        """Every SLOAD in ``frame`` and below: (slot, gas)."""
        out = []
        for kind, gas, info in self.events(frame):
            if kind == "SLOAD":
                out.append((info["slot"], gas))
            elif kind == "call":
                out.extend(self.sloads(info["frame"]))
        return out

    def find(self, parent: Frame, to: str, opcode: str | None = None) -> Frame:
        """The first frame ``parent`` called at ``to`` (with ``opcode``, if given)."""
        for child in parent.children.values():
            if child.to == to.lower() and (opcode is None or child.opcode == opcode):
                return child
        raise LookupError(f"no call to {to} in the frame at depth {parent.depth}")


# -- the steps --------------------------------------------------------------------------------------------

STEPS: tuple[tuple[str, str], ...] = (
    (
        "intrinsic",
        "transaction: 21,000 and the calldata (the session's nonce key carries the module's address)",
    ),
    (
        "entry_point",
        "EntryPoint: everything but the account's validation and the execution (nonce, hashing, ...)",
    ),
    ("proxy", "account: the clone's code and its delegatecall into the implementation (a cold account)"),
    ("dispatch", "account: validateUserOp's dispatch, up to the validator lookup"),
    ("lookup", "account: the installed-validator lookup (cold SLOAD; the owner's key names address 0)"),
    ("owner_hash", "account (owner): up to ecrecover (the signable hash, the signature's decoding)"),
    ("call_copy", "account (session): the call's set-up and the ABI copy of the PackedUserOperation"),
    ("call", "account (session): the call into the module (cold account access)"),
    ("module_entry", "module: dispatch, the signature's length and decoding, up to ecrecover"),
    ("ecrecover", "ecrecover (the precompile, 3,000, and its warm access, 100)"),
    ("owner_read_prep", "account (owner): between ecrecover and the owner's read"),
    ("owner_read", "account (owner): the owner's slot (cold SLOAD)"),
    ("call_decode", "module: the call's decoding (execute mode, target, selector), the permission's slot"),
    ("header_read", "module: the permission header (cold SLOAD)"),
    ("header_decode", "module: the header's checks (live, value, rule count)"),
    ("rule_1_read", "module: rule word 1 (cold SLOAD)"),
    ("rule_1_check", "module: rule 1's check"),
    ("rule_2_read", "module: rule word 2 (cold SLOAD)"),
    ("other_reads", "module: further storage words (wide values, a meter)"),
    ("tail", "module: the last rule's check, the gas cap, the validation data, the limits check, the return"),
    ("after_call", "account (session): the module's answer, the prefund check, the return"),
    ("owner_tail", "account (owner): the verdict, the prefund check, the return"),
    ("execution", "execution: the EntryPoint's innerHandleOp (the account's execute and the call)"),
)
"""The steps, in the order the transaction runs them (owner-only and session-only steps interleaved)."""


def _split_owner(trace: Trace, impl: Frame) -> dict[str, int]:
    """The owner's path through the account's implementation: [code, SLOAD lookup, code, ecrecover, code, SLOAD
    owner, code]."""
    events = trace.events(impl)
    kinds = [kind for kind, _, _ in events]
    expected = ["code", "SLOAD", "code", "precompile", "code", "SLOAD", "code"]
    if kinds != expected:
        raise RuntimeError(f"the owner's validation has an unexpected shape: {kinds}")
    gas = [g for _, g, _ in events]
    return {
        "dispatch": gas[0],
        "lookup": gas[1],
        "owner_hash": gas[2],
        "ecrecover": gas[3],
        "owner_read_prep": gas[4],
        "owner_read": gas[5],
        "owner_tail": gas[6],
    }


def _split_session(trace: Trace, impl: Frame, module: str) -> tuple[dict[str, int], list[int]]:
    """The session's path: the implementation [code, SLOAD lookup, code, CALL module, code], the module [code,
    ecrecover, code, SLOAD header, code, (SLOAD word, code)...]; and the module's slots read, in order."""
    events = trace.events(impl)
    kinds = [kind for kind, _, _ in events]
    if kinds != ["code", "SLOAD", "code", "call", "code"] or events[3][2]["to"] != module.lower():
        raise RuntimeError(f"the session's validation has an unexpected shape: {kinds}")
    out = {
        "dispatch": events[0][1],
        "lookup": events[1][1],
        "call_copy": events[2][1],
        "call": events[3][1],
        "after_call": events[4][1],
    }
    inner = trace.events(events[3][2]["frame"])
    if [kind for kind, _, _ in inner[:4]] != ["code", "precompile", "code", "SLOAD"]:
        raise RuntimeError(f"the module's validation has an unexpected shape: {[k for k, _, _ in inner]}")
    out["module_entry"] = inner[0][1]
    out["ecrecover"] = inner[1][1]
    out["call_decode"] = inner[2][1]
    out["header_read"] = inner[3][1]
    header_slot = inner[3][2]["slot"]
    slots = [header_slot]
    rest = inner[4:]
    out["header_decode"] = rest[0][1]
    reads = 0
    for position in range(1, len(rest), 2):
        kind, gas, info = rest[position]
        if kind != "SLOAD":
            raise RuntimeError(f"the module's validation has an unexpected step: {kind}")
        following = rest[position + 1][1]
        reads += 1
        slots.append(info["slot"])
        if reads <= 2 and info["slot"] == header_slot + reads:
            out[f"rule_{reads}_read"] = gas
        else:
            out["other_reads"] = out.get("other_reads", 0) + gas
        last = position + 1 == len(rest) - 1
        if last:
            out["tail"] = following
        elif reads == 1:
            out["rule_1_check"] = following
        else:
            out["rule_1_check"] = out.get("rule_1_check", 0) + following
    if reads == 0:
        out["tail"] = out.pop("header_decode")
    return out, slots


def decompose(trace: Trace, sender: str, module: str, tx_gas: int, *, session: bool) -> dict[str, Any]:
    """The steps of one operation's transaction (:data:`STEPS`), which add up to ``tx_gas``."""
    if trace.gas != tx_gas:
        raise RuntimeError(f"the traced call used {trace.gas} gas, the transaction {tx_gas}")
    account = trace.find(trace.root, sender)  # the EntryPoint's first call to the account: validateUserOp
    (impl,) = account.children.values()  # the clone's delegatecall into the implementation
    steps: dict[str, int] = {"intrinsic": trace.intrinsic, "proxy": trace.used(account) - trace.used(impl)}
    slots: list[int] = []
    if session:
        part, slots = _split_session(trace, impl, module)
    else:
        part = _split_owner(trace, impl)
    steps.update(part)
    steps["execution"] = trace.used(trace.find(trace.root, trace.entry_point))  # innerHandleOp, a self-call
    validation = trace.used(account)
    steps["entry_point"] = tx_gas - trace.intrinsic - validation - steps["execution"]
    total = sum(steps.values())
    if total != tx_gas:
        raise RuntimeError(f"the steps add up to {total}, the transaction used {tx_gas}")
    ordered = {name: steps.get(name, 0) for name, _ in STEPS}
    return {"steps": ordered, "validation_gas": validation, "module_slots": slots}


# -- measuring -------------------------------------------------------------------------------------------


def traced(lab: Lab, op: UserOperation) -> tuple[Trace, int]:
    """``handleOps([op])`` traced on the current state, then sent (the trace's gas is checked against the mined
    transaction's); the state is restored afterwards. The trace and the transaction's gas."""
    data = encode_handle_ops([op.pack()], lab.submitter)
    tx = {"from": lab.submitter, "to": lab.entry_point, "data": "0x" + data.hex(), "gas": hex(TX_GAS)}
    snapshot = lab.stack.snapshot()
    try:
        result = lab.node.request("debug_traceCall", [tx, "latest", TRACE_OPTIONS])
        sent = lab.send(op)
    finally:
        lab.stack.revert(snapshot)
    return Trace(result, lab.entry_point), int(sent["receipt"]["gasUsed"], 16)


def _pair(lab: Lab, owner_row: Measured, session_row: Measured, sender: str) -> dict[str, Any]:
    """One call shape: both operations' steps, the session's extra per step, and the floor."""
    assert owner_row.op is not None and session_row.op is not None
    trace, tx_gas = traced(lab, owner_row.op)
    owner = decompose(trace, sender, lab.module, tx_gas, session=False)
    trace, tx_gas = traced(lab, session_row.op)
    session = decompose(trace, sender, lab.module, tx_gas, session=True)
    owner_steps, session_steps = owner["steps"], session["steps"]
    extra = {name: session_steps[name] - owner_steps[name] for name, _ in STEPS}
    owner_tx, session_tx = owner_row.tx_gas, session_row.tx_gas
    return {
        "owner_tx_gas": owner_tx,
        "session_tx_gas": session_tx,
        "tx_gas_ratio": ratio(session_tx, owner_tx),
        "owner_steps": owner_steps,
        "session_steps": session_steps,
        "extra": extra,
        "extra_total": session_tx - owner_tx,
        "module_frame_gas": session_row.module_gas,
        "module_slots_read": len(session["module_slots"]),
        "floor": _floor(owner_tx, session_tx, owner_steps, session_steps),
    }


def _floor(owner_tx: int, session_tx: int, owner: dict[str, int], session: dict[str, int]) -> dict[str, Any]:
    """The least a session operation spends beyond the owner's, with a module the account calls: the session's
    nonce key (its calldata), the call into the module (cold account access) and the ABI copy the call needs; its
    one ecrecover and one cold read replace the owner's one-for-one, and its code is taken as lean as the owner's.
    Without the module call (a session check the account's implementation runs itself), only the nonce key's
    bytes remain."""
    parts = {
        "calldata": session["intrinsic"] - owner["intrinsic"],  # mostly the nonce key (the module address)
        "module_cold_access": session["call"],
        "call_copy": session["call_copy"],
        "ecrecover_beyond_owner": session["ecrecover"] - owner["ecrecover"],
        "cold_read_beyond_owner": COLD_SLOAD - owner["owner_read"],
    }
    floor_extra = sum(parts.values())
    allowed = owner_tx * 5 // 100
    return {
        "parts": parts,
        "extra": floor_extra,
        "ratio": ratio(owner_tx + floor_extra, owner_tx),
        "extra_without_module_call": parts["calldata"],
        "ratio_without_module_call": ratio(owner_tx + parts["calldata"], owner_tx),
        "allowed_extra_at_1_05": allowed,
        "extra_now": session_tx - owner_tx,
        "to_cut_for_1_05": max(0, session_tx - owner_tx - allowed),
        "reachable_with_module_call": floor_extra <= allowed,
        # a grant whose data does not fit the header's word (the window's 96 bits and a 160-bit address leave no
        # room for a second rule) reads one word more, or carries it in a longer USE signature
        "extra_two_words": floor_extra + COLD_SLOAD,
        "ratio_two_words": ratio(owner_tx + floor_extra + COLD_SLOAD, owner_tx),
        "reachable_two_words": floor_extra + COLD_SLOAD <= allowed,
    }


# -- a prototype of the commitment design ---------------------------------------------------------------

PROBE_GAS_CAP_GWEI = 5 * 10**7
"""The SDK's default gas cap (0.05 ether), which the sessions of the three shapes carry."""
WARM_CALL_SAVING = COLD_ACCOUNT - 100
"""What the account's call into the module would cost less if the module's address were already warm."""


def _prototype_shapes(stack: Any, token: str, account: str, token_id: int) -> dict[str, tuple[list, Call]]:
    """The three call shapes with the same two rules as keyscope's sessions: (rules as (rule bytes, the word an
    EQUAL rule binds or None), the call)."""
    recipient = fixed_signer("gas/recipient").address
    to = int(recipient, 16)
    return {
        "nft_mint": (
            [
                (commitment_probe.rule(0, 0, commitment_probe.ADDRESS_TYPE), to),
                (commitment_probe.rule(0, 5, commitment_probe.ADDRESS_TYPE, 0), None),
            ],
            function_call(stack.nft, "safeMint(address)", recipient),
        ),
        "erc20_transfer": (
            [
                (commitment_probe.rule(0, 0, commitment_probe.ADDRESS_TYPE), to),
                (commitment_probe.rule(1, 1, 0, 1000 * ERC20_AMOUNT), None),
            ],
            function_call(token, "transfer(address,uint256)", recipient, ERC20_AMOUNT),
        ),
        "erc721_transfer_from": (
            [
                (commitment_probe.rule(0, 0, commitment_probe.ADDRESS_TYPE), int(account, 16)),
                (commitment_probe.rule(1, 0, commitment_probe.ADDRESS_TYPE), to),
            ],
            function_call(stack.nft, "transferFrom(address,address,uint256)", account, recipient, token_id),
        ),
    }


def commitment_prototype(
    lab: Lab, owner: Any, token: str, token_id: int, rows: dict[str, Measured], owner_code: int
) -> dict[str, Any]:
    """The three call shapes validated by ``CommittedPolicyProbe``, a prototype of the commitment design (the
    policy carried in the signature, one storage word committing to it, lean assembly, single calls only), next to
    the owner's operation on the same state and keyscope's session (``rows``). Run on a state where the account
    holds the shapes' tokens; installs the probe as a validator of the account."""
    stack, account = lab.stack, owner.account
    kind = lab.net.kind_for(account)
    probe = deploy_project_contract(stack, "CommittedPolicyProbe")  # its address
    owner.execute(kind.install_validator_call(account, probe)).wait()
    key = SessionKey(fixed_signer("decompose/probe-key").private_key)
    signed: dict[str, tuple[bytes, Call]] = {}
    for name, (rules, call) in _prototype_shapes(stack, token, account, token_id).items():
        policy = commitment_probe.policy([rule for rule, _ in rules], gas_cap_gwei=PROBE_GAS_CAP_GWEI)
        commitment = commitment_probe.commitment(policy, [word for _, word in rules if word is not None])
        grant = function_call(
            probe,
            "grant(address,address,bytes4,bytes32)",
            key.address,
            call.target,
            call.data[:4],
            commitment,
        )
        owner.execute(grant).wait()
        signed[name] = (policy, call)

    def draft(call: Call, policy: bytes) -> Draft:
        return lab.draft(
            account,
            kind.nonce_key(probe, 0),
            encode_execute([call]),
            PLACEHOLDER_ECDSA + policy,
            lambda digest: key.sign_hash(digest) + policy,
        )

    mint_policy, mint_call = signed["nft_mint"]
    lab.send(lab.signed(draft(mint_call, mint_policy)))  # the probe's nonce lane, used once
    out: dict[str, Any] = {}
    for name, (owner_label, session_label) in SHAPES.items():
        policy, call = signed[name]
        owner_row = lab.measure(f"owner_{name}_prototype", lambda call=call: lab.owner_draft(owner, [call]))
        probe_row = lab.measure(f"prototype_{name}", lambda call=call, policy=policy: draft(call, policy))
        if not probe_row.success or probe_row.op is None:
            raise RuntimeError(f"the prototype's {name} operation failed")
        trace, tx_gas = traced(lab, probe_row.op)
        if tx_gas != probe_row.tx_gas:
            raise RuntimeError(
                f"the traced prototype operation used {tx_gas} gas, the measured one {probe_row.tx_gas}"
            )
        frame = next(f for f in trace.frames if f.to == probe.lower() and f.opcode == "CALL")
        costs = trace.costs(frame)
        frame_gas = sum(costs)
        priced = sum(
            cost
            for step, cost in zip(frame.steps, costs, strict=True)
            if trace.logs[step]["op"] in ("SLOAD", "STATICCALL")
        )
        owner_tx = owner_row.tx_gas
        out[name] = {
            "owner_tx_gas": owner_tx,
            "owner_tx_gas_in_keyscope_rows": rows[owner_label].tx_gas,
            "keyscope_session_tx_gas": rows[session_label].tx_gas,
            "keyscope_ratio": ratio(rows[session_label].tx_gas, rows[owner_label].tx_gas),
            "prototype_tx_gas": probe_row.tx_gas,
            "prototype_ratio": ratio(probe_row.tx_gas, owner_tx),
            "prototype_extra": probe_row.tx_gas - owner_tx,
            "allowed_extra_at_1_05": owner_tx * 5 // 100,
            "signature_bytes": len(probe_row.op.signature),
            "frame_gas": frame_gas,
            "frame_code_gas": frame_gas - priced,
            "code_beyond_owner": frame_gas - priced - owner_code,
            "ratio_with_warm_call": ratio(probe_row.tx_gas - WARM_CALL_SAVING, owner_tx),
        }
    return out


# -- the first operation ---------------------------------------------------------------------------------


def _word(value: int | bytes | str) -> bytes:
    if isinstance(value, str):
        value = int(value, 16)
    if isinstance(value, bytes):
        return value.rjust(32, b"\x00")
    return value.to_bytes(32, "big")


def _slot_name(kind: str, offset: int) -> str:
    """What a session's slot holds, from the kind of its mapping key and its offset in the value."""
    if kind == "permission":
        return "permission header" if offset == 0 else f"permission word {offset} (rules, paymasters, meter)"
    if kind == "session":
        return (
            "session record: meta (key, epoch, status)"
            if offset == 0
            else f"session record: grants[{offset - 1}]"
        )
    if kind.startswith("list"):
        return f"live-session {kind} (the session's id)"
    return "account state (epoch, installed, live counts)" if offset == 0 else f"account word {offset}"


def slot_names(account: str, session_id: bytes, permission_key: bytes) -> dict[int, str]:
    """The module's storage slots of ``account`` a session with one permission can touch, by name: each mapping
    (its declaration slot is tried from 0 to 63) keyed by the account, or by the session id, the permission key or
    a list index (0..3) and then the account; the first words of each value. Named by the kind of key (the module
    has one mapping per kind that an unlimited, unsigned session writes)."""
    names: dict[int, str] = {}
    inner = {
        "session": session_id,
        "permission": permission_key,
        **{f"list[{n}]": _word(n) for n in range(4)},
    }
    for base in range(64):
        per_account = int.from_bytes(keccak(_word(account) + _word(base)), "big")
        for offset in range(4):
            names.setdefault(
                per_account + offset, f"{_slot_name('account', offset)} [mapping at slot {base}]"
            )
        for what, key in inner.items():
            outer = keccak(_word(key) + _word(base))
            slot = int.from_bytes(keccak(_word(account) + outer), "big")
            for offset in range(20):
                names.setdefault(slot + offset, f"{_slot_name(what, offset)} [mapping at slot {base}]")
    return names


def _breakdown(trace: Trace, frame: Frame, account: str) -> dict[str, int]:
    """A frame's gas by kind: fresh-slot writes (a zero slot made nonzero, 20,000, plus 2,100 when the write is the
    slot's first access, or the read that warmed it just before), other writes, reads, calls back into the account,
    calls to other contracts, ecrecover, and the frame's own code; a DELEGATECALL's callee (code run in the
    frame's storage) is broken down the same way, the call's own cost apart."""
    out = dict.fromkeys(
        ("fresh_slot_writes", "other_writes", "reads", "account_calls", "other_calls", "ecrecover", "code"), 0
    )
    events = trace.events(frame)
    for position, (kind, gas, info) in enumerate(events):
        if kind == "SSTORE":
            if gas >= FRESH_SSTORE:
                out["fresh_slot_writes"] += gas
                # the cold read of the slot just before (the write then costs 20,000 warm) belongs to the write
                before = [e for e in events[:position] if e[0] != "code"]
                if (
                    before
                    and before[-1][0] == "SLOAD"
                    and before[-1][2]["slot"] == info["slot"]
                    and before[-1][1] == COLD_SLOAD
                ):
                    out["fresh_slot_writes"] += COLD_SLOAD
                    out["reads"] -= COLD_SLOAD
            else:
                out["other_writes"] += gas
        elif kind == "SLOAD":
            out["reads"] += gas
        elif kind == "call" and info["frame"].opcode == "DELEGATECALL":
            # the module's own code in another contract (its grant side), run in the module's storage
            out["delegatecall"] = out.get("delegatecall", 0) + gas
            for inner, spent in _breakdown(trace, info["frame"], account).items():
                out[inner] = out.get(inner, 0) + spent
        elif kind == "call":
            callee = trace.used(info["frame"])
            out["account_calls" if info["to"] == account.lower() else "other_calls"] += gas + callee
        elif kind == "precompile":
            out["ecrecover" if info["to"] == ECRECOVER else "other_calls"] += gas
        else:
            out["code"] += gas
    return out


def _subtree(trace: Trace, frame: Frame, to: str) -> list[Frame]:
    """Frames under ``frame`` (itself included) that run at ``to``."""
    out = [frame] if frame.to == to.lower() else []
    for child in frame.children.values():
        out.extend(_subtree(trace, child, to))
    return out


def _first_op_parts(trace: Trace, tx_gas: int, sender: str, module: str) -> dict[str, Any]:
    """The first operation's transaction in parts: creation (the factory's call, the module's installation in it),
    validation, execution, the rest of the EntryPoint, the intrinsic gas; the module's storage writes."""
    children = sorted(trace.root.children.items())
    account = trace.find(trace.root, sender)
    creation = next(frame for _, frame in children if frame.to not in (sender.lower(), trace.entry_point))
    install = _subtree(trace, creation, module)
    validation = trace.used(account)
    execution = trace.used(trace.find(trace.root, trace.entry_point))
    writes = [(slot, gas) for frame in _subtree(trace, account, module) for slot, gas in trace.sstores(frame)]
    install_writes = [(slot, gas) for frame in install for slot, gas in trace.sstores(frame)]
    module_frames = [frame for frame in _subtree(trace, account, module) if frame.opcode == "CALL"]
    breakdown: dict[str, int] = {}
    for frame in module_frames:
        for kind, gas in _breakdown(trace, frame, sender).items():
            breakdown[kind] = breakdown.get(kind, 0) + gas
    return {
        "tx_gas": tx_gas,
        "intrinsic": trace.intrinsic,
        "creation": trace.used(creation),
        "module_install": sum(trace.used(frame) for frame in install),
        "validation": validation,
        "module_validation": sum(trace.used(frame) for frame in module_frames),
        "module_validation_breakdown": breakdown,
        "execution": execution,
        "entry_point": tx_gas - trace.intrinsic - trace.used(creation) - validation - execution,
        "install_writes": install_writes,
        "validation_writes": writes,
    }


def _creating_draft(
    lab: Lab, owner: Any, nonce_key: int, placeholder: bytes, sign: Callable[[bytes], bytes]
) -> Draft:
    """An operation that creates ``owner``'s account (initCode through keyscope's factory) and mints."""
    op = UserOperation(
        sender=owner.account,
        nonce=lab.net.chain.get_nonce(lab.entry_point, owner.account, nonce_key),
        factory=owner.factory,
        factory_data=owner.factory_data,
        call_data=encode_execute(
            [function_call(lab.stack.nft, "safeMint(address)", fixed_signer("gas/recipient").address)]
        ),
        max_fee_per_gas=lab.fees.max_fee_per_gas,
        max_priority_fee_per_gas=lab.fees.max_priority_fee_per_gas,
        signature=placeholder,
    )
    estimate = lab.net.bundler.estimate_user_operation_gas(op, lab.entry_point)
    op = op.replace(
        verification_gas_limit=estimate.verification_gas_limit,
        call_gas_limit=estimate.call_gas_limit,
        pre_verification_gas=estimate.pre_verification_gas,
    )
    return Draft(op, sign, estimate.call_gas_limit)


def first_operation(lab: Lab, log: Callable[[str], None]) -> dict[str, Any]:
    """A brand-new account's first operation, by its owner and by a session granted off-chain (ENABLE, 2 rules),
    each creating the account and minting, from the same state; the parts of each; the grant's slots."""
    net, stack = lab.net, lab.stack
    recipient = fixed_signer("gas/recipient").address
    owner = net.owner(fixed_signer("decompose/first-owner"))
    account = owner.account
    lab.deposit(account, 10 * ETHER)
    kind = net.kind_for(account, named="keyscope")
    key = SessionKey(fixed_signer("decompose/first-key").private_key)
    permission = mint_permission(stack.nft, recipient, HEADLINE_RULES)
    grant = owner.grant(key, [permission], salt=0, never_expires=True)
    assert grant.owner_signature is not None
    owner_signature = grant.owner_signature
    log("decompose: the first operation, by the owner and by an off-chain grant (ENABLE)")
    owner_row = lab.measure(
        "first_op_owner",
        lambda: _creating_draft(
            lab,
            owner,
            kind.nonce_key(None),
            kind.owner_user_op_signature(PLACEHOLDER_ECDSA),
            lambda digest: kind.owner_user_op_signature(owner.signer.sign_hash(digest)),
        ),
    )
    session_row = lab.measure(
        "first_op_session",
        lambda: _creating_draft(
            lab,
            owner,
            kind.nonce_key(lab.module, 0),
            encode_enable_signature(grant.session, owner_signature, PLACEHOLDER_ECDSA),
            lambda digest: encode_enable_signature(grant.session, owner_signature, key.sign_hash(digest)),
        ),
    )
    assert owner_row.op is not None and session_row.op is not None
    trace, tx_gas = traced(lab, owner_row.op)
    owner_parts = _first_op_parts(trace, tx_gas, account, lab.module)
    trace, tx_gas = traced(lab, session_row.op)
    session_parts = _first_op_parts(trace, tx_gas, account, lab.module)

    # the slots a later session operation reads: the first operation applied, then a USE operation traced
    snapshot = stack.snapshot()
    try:
        lab.apply(session_row.op)
        use = lab.measure(
            "after_first_op",
            lambda: lab.session_draft(
                account, key, [function_call(stack.nft, "safeMint(address)", recipient)]
            ),
        )
        assert use.op is not None
        trace, tx_gas = traced(lab, use.op)
        read = {slot for frame in _subtree(trace, trace.root, lab.module) for slot, _ in trace.sloads(frame)}
    finally:
        stack.revert(snapshot)
    selector = keccak(b"safeMint(address)")[:4]
    permission_key = keccak(bytes.fromhex(key.address[2:]) + bytes.fromhex(stack.nft[2:]) + selector)
    names = slot_names(account, grant.session_id, permission_key)

    def described(writes: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        return [
            {
                "slot": names.get(slot, hex(slot)),
                "gas": gas,
                "fresh": gas >= FRESH_SSTORE,
                "read_by_validation": slot in read,
            }
            for slot, gas in writes
        ]

    grant_writes = described(session_parts.pop("validation_writes"))
    owner_parts.pop("validation_writes")
    install_writes = described(session_parts.pop("install_writes"))
    owner_parts.pop("install_writes")
    fresh = [write for write in grant_writes if write["fresh"]]
    unread = [write for write in fresh if not write["read_by_validation"]]
    slot_cost = FRESH_SSTORE + COLD_SLOAD  # a fresh slot's write and its first (cold) access
    ratio_now = ratio(session_row.tx_gas, owner_row.tx_gas)
    allowed = owner_row.tx_gas * 135 // 100
    without_unread = session_row.tx_gas - slot_cost * len(unread)
    return {
        "owner_tx_gas": owner_row.tx_gas,
        "session_tx_gas": session_row.tx_gas,
        "ratio": ratio_now,
        "owner_actual_gas_used": owner_row.actual_gas_used,
        "session_actual_gas_used": session_row.actual_gas_used,
        "actual_gas_ratio": ratio(session_row.actual_gas_used, owner_row.actual_gas_used),
        "owner_parts": owner_parts,
        "session_parts": session_parts,
        "install_writes": install_writes,
        "grant_writes": grant_writes,
        "grant_fresh_slots": len(fresh),
        "fresh_slot_cost": slot_cost,
        "grant_fresh_slots_gas": slot_cost * len(fresh),
        "grant_fresh_slots_unread": len(unread),
        "grant_fresh_slots_unread_gas": slot_cost * len(unread),
        "ratio_without_unread_slots": ratio(without_unread, owner_row.tx_gas),
        "ratio_without_unread_slots_rules_in_header": ratio(
            without_unread - slot_cost * (len(fresh) - len(unread) - 1), owner_row.tx_gas
        ),
        "allowed_session_tx_gas_at_1_35": allowed,
        "to_cut_for_1_35": max(0, session_row.tx_gas - allowed),
        "use_slots_read": len(read),
    }


# -- the run ---------------------------------------------------------------------------------------------


def run(stack: Any, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The decomposition of the three call shapes and the first operation, as a dict for results.json."""
    net = connect(stack.rpc_url, stack.bundler_url, module=stack.module, factory=stack.factory)
    lab = Lab(stack, net)
    recipient = fixed_signer("gas/recipient").address
    mint = function_call(stack.nft, "safeMint(address)", recipient)
    log("decompose: set-up (account, deposit, sessions with 0 and 2 rules, both nonce lanes used once)")
    owner = net.owner(fixed_signer("decompose/owner"))
    stack.fund(owner.account, 100 * ETHER)
    owner.execute(mint).wait()
    lab.deposit(owner.account, 10 * ETHER)
    keys = {
        rules: SessionKey(fixed_signer(f"decompose/key-{rules}").private_key) for rules in (0, HEADLINE_RULES)
    }
    for rules, key in keys.items():
        owner.grant(
            key, [mint_permission(stack.nft, recipient, rules)], onchain=True, salt=rules, never_expires=True
        )
    lab.send(lab.signed(lab.session_draft(owner.account, keys[HEADLINE_RULES], [mint])))

    log("decompose: the three call shapes, owner and session (2 rules), traced")
    rows: dict[str, Measured] = {
        "owner": lab.measure("owner", lambda: lab.owner_draft(owner, [mint])),
        "session_0_rules": lab.measure(
            "session_0_rules", lambda: lab.session_draft(owner.account, keys[0], [mint])
        ),
        f"session_{HEADLINE_RULES}_rules": lab.measure(
            "session_2_rules", lambda: lab.session_draft(owner.account, keys[HEADLINE_RULES], [mint])
        ),
    }
    out: dict[str, Any] = {"shapes": {}}
    out["shapes"]["nft_mint"] = _pair(lab, rows["owner"], rows["session_2_rules"], owner.account)
    out["nft_mint_0_rules"] = _pair(lab, rows["owner"], rows["session_0_rules"], owner.account)
    token = deploy_project_contract(stack, "TestToken")
    outer = stack.snapshot()
    try:
        token_id = view(
            stack, stack.nft, "nextTokenId()", [], []
        )  # the token measure_shapes gives the account
        rows.update(measure_shapes(stack, lab, owner, token))
        for shape, (owner_label, session_label) in SHAPES.items():
            if shape != "nft_mint":
                out["shapes"][shape] = _pair(lab, rows[owner_label], rows[session_label], owner.account)
        log("decompose: the commitment design's prototype on the three call shapes")
        owner_code = sum(
            out["shapes"]["nft_mint"]["owner_steps"][step]
            for step in ("owner_hash", "owner_read_prep", "owner_tail")
        )
        out["prototype"] = commitment_prototype(lab, owner, token, token_id, rows, owner_code)
    finally:
        stack.revert(outer)
    out["steps"] = dict(STEPS)
    ratios = [entry["tx_gas_ratio"] for entry in out["shapes"].values()]
    out["max_tx_gas_ratio"] = max(ratios)
    out["max_floor_ratio"] = max(entry["floor"]["ratio"] for entry in out["shapes"].values())
    out["first_op"] = first_operation(lab, log)
    return out


def table(result: dict[str, Any]) -> str:
    """The per-step table of the three shapes (plain text)."""
    shapes = list(result["shapes"])
    lines = [f"{'step':<40}" + "".join(f"{shape:>34}" for shape in shapes)]
    lines.append(f"{'':<40}" + "".join(f"{'owner':>11}{'session':>11}{'extra':>12}" for _ in shapes))
    for name, _ in STEPS:
        cells = []
        for shape in shapes:
            entry = result["shapes"][shape]
            owner, session = entry["owner_steps"][name], entry["session_steps"][name]
            cells.append(f"{owner:>11,}{session:>11,}{session - owner:>+12,}")
        lines.append(f"{name:<40}" + "".join(cells))
    lines.append(
        f"{'total (handleOps transaction gas)':<40}"
        + "".join(
            f"{e['owner_tx_gas']:>11,}{e['session_tx_gas']:>11,}{e['extra_total']:>+12,}"
            for e in result["shapes"].values()
        )
    )
    lines.append(f"{'ratio':<40}" + "".join(f"{e['tx_gas_ratio']:>34.4f}" for e in result["shapes"].values()))
    lines.append(
        f"{'floor ratio':<40}" + "".join(f"{e['floor']['ratio']:>34.4f}" for e in result["shapes"].values())
    )
    first = result["first_op"]
    lines.append("")
    lines.append(
        f"first operation: owner {first['owner_tx_gas']:,}, session (ENABLE) {first['session_tx_gas']:,}, "
        f"ratio {first['ratio']:.4f}; the grant writes {first['grant_fresh_slots']} fresh slots "
        f"({first['grant_fresh_slots_unread']} never read by validation)"
    )
    for write in first["grant_writes"]:
        lines.append(
            f"  {write['slot']:<48} {write['gas']:>7,} fresh={write['fresh']} read={write['read_by_validation']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    from keyscope.local import LocalStack

    with LocalStack(**STACK_SETTINGS) as local:
        figures = run(local)
    print(table(figures))
    print(json.dumps(figures["first_op"], indent=1))
