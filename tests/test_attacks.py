"""The three ways a session key did more than its grant, reproduced as an attacker would: UserOperations built
byte by byte, signed by the session key, sent to the real EntryPoint v0.7 ``handleOps``, against victims that
behave like real targets (``contracts/test/``), with the loss read from the chain.

1. A plain-transfer permission (selector 0x00000000) and calldata starting with four zero bytes: a vault whose
   fallback acts on calldata pays the account's deposit out.
2. Rules on narrow ABI types and dirty words: a target built with ABI coder v1, and one reading calldata in
   assembly, clean the word and act on another value than the one the rule compared.
3. The gas-cost cap and a paymaster: an ERC-20 paymaster charges the account's tokens in ``postOp`` for whatever
   gas limits and fees the session key chose.

Each test first shows the victim acting on the attack's bytes when they reach it (so the defence is what stops
the loss), then the module refusing the attack on chain (AA23 with the named error), then the SDK refusing it
before anything is sent.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import ape
import pytest
from ape.contracts import ContractContainer
from eth_abi import encode as abi_encode

from conftest import KIND
from keyscope.chain import Reads, read_many
from keyscope.checker import CallRefusedError, InitCallRefusedError, PolicyChecker
from keyscope.errors import (
    BadInputError,
    GasCostTooHighError,
    InvalidFieldsError,
    SessionError,
    TargetWarning,
)
from keyscope.execution import Call, ExecuteDecodeError, decode_execute, encode_execute
from keyscope.hashing import EIP7702_INIT_CODE
from keyscope.hexutil import ZERO_ADDRESS, keccak
from keyscope.message_signing import SignatureRefusedError
from keyscope.policy import Limits, Policy, arg, parse_signature
from keyscope.revert import describe_revert
from keyscope.session import ArgType, Permission, Rule, Session, encode_enable_signature
from keyscope.session_account import SessionAccount
from keyscope.signing import LocalSigner
from keyscope.typed_data import TypedData
from keyscope.userop import UserOperation
from support.session_fixtures import (  # noqa: F401 (fixtures)
    attacker_fixture,
    module_account_fixture,
    sdk_grant,
)
from support.signatures import forge_typed_data
from support.smuggling import smuggling_encodings
from support.solidity import compile_contract_type

ETHER = 10**18
GWEI = 10**9


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, target, nft, module):
    """The session-scoped fixtures this module uses, made before its own module-scoped victims: ape snapshots
    the chain per fixture scope and must not rebase them."""


@pytest.fixture
def account(module_account):
    """A keyscope account with the module installed, holding 5 ether (support.session_fixtures)."""
    return module_account


def grant(sessions, account, owner, key, *permissions: Permission, **fields) -> Session:
    session = Session(session_key=key.address, permissions=permissions, **fields)
    sessions.grant_onchain(account, owner, session)
    return session


def raw_send(sender, to: str, data: bytes, value: int = 0):
    """A plain transaction from a test account: the victim, reached without keyscope in between."""
    return sender.transfer(to, value, data=data)


def refused_locally(
    session: Session, account: str, module: str, calls: Call | list[Call]
) -> CallRefusedError:
    with pytest.raises(CallRefusedError) as info:
        PolicyChecker(session, account, module).check_calls(calls, now=0)
    return info.value


# ------------------------------------------------------------------------------------------------------
# 1. A plain-transfer permission runs no calldata
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vault(project, deployer):
    return project.CalldataVault.deploy(sender=deployer)


def withdrawal(to: str, amount: int) -> bytes:
    return bytes(4) + abi_encode(["address", "uint256"], [to, amount])


def test_the_vault_pays_out_on_zero_selector_calldata(vault, accounts, attacker, chain):
    """The victim as reported: whoever's deposit the calldata names goes wherever it says."""
    depositor = accounts[5]
    raw_send(depositor, vault.address, b"", 2 * ETHER)
    before = chain.provider.get_balance(attacker)
    raw_send(depositor, vault.address, withdrawal(attacker, 2 * ETHER))
    assert chain.provider.get_balance(attacker) - before == 2 * ETHER
    assert vault.deposits(depositor) == 0


def test_a_plain_transfer_permission_runs_no_calldata(
    sessions, module, chain, vault, account, owner, session_key, attacker
):
    sessions.h.owner_execute(account, owner, Call.of(vault.address, 2 * ETHER))  # the account's deposit
    session = grant(sessions, account, owner, session_key, Policy.transfer(vault.address, value_limit=ETHER))
    before = chain.provider.get_balance(attacker)
    for data in (withdrawal(attacker, 2 * ETHER), bytes(4), bytes(4) + b"\x01"):
        result = sessions.outcome(sessions.op(account, session_key, Call.of(vault.address, 0, data)))
        assert "AA23" in result and "ZeroSelectorCall(callIndex=0)" in result, result
    # batched behind an allowed call, and in try mode, it is refused too
    calls = [Call.of(vault.address, 1), Call.of(vault.address, 0, withdrawal(attacker, 2 * ETHER))]
    for exec_type in (0, 1):
        call_data = encode_execute(calls, batch=True, exec_type=exec_type)
        result = sessions.outcome(sessions.op(account, session_key, call_data=call_data))
        assert "ZeroSelectorCall(callIndex=1)" in result, result
    assert vault.deposits(account) == 2 * ETHER
    assert chain.provider.get_balance(attacker) == before

    # what the permission names still works: a plain transfer within its limit
    assert sessions.outcome(sessions.op(account, session_key, Call.of(vault.address, ETHER))) == "ok"
    assert vault.deposits(account) == 3 * ETHER

    # the SDK refuses it before sending, and says why
    error = refused_locally(session, account, module.address, Call(vault.address, 0, withdrawal(attacker, 1)))
    assert (
        error.reason == "ZeroSelectorCall" and "0x00000000" in str(error) and "plain transfer" in str(error)
    )


def test_a_function_whose_selector_is_zero_cannot_be_granted():
    # wycpnbqcyf() is one of the names whose selector is 0x00000000
    assert keccak(b"wycpnbqcyf()")[:4] == bytes(4)
    target = "0x" + "11" * 20
    with pytest.raises(BadInputError, match=r"selector 0x00000000.*Policy\.transfer"):
        Policy.call(target, "wycpnbqcyf()")
    abi = [
        {
            "type": "function",
            "name": "wycpnbqcyf",
            "inputs": [],
            "outputs": [],
            "stateMutability": "nonpayable",
        }
    ]
    with pytest.raises(BadInputError, match=r"selector 0x00000000.*Policy\.transfer"):
        Policy.from_abi(target, abi, "wycpnbqcyf")  # docs/session-module.md names both builders
    with pytest.raises(ValueError, match=r"plain-transfer permission .* cannot have rules"):
        Permission(target=target, selector=bytes(4), rules=(Rule(condition=0, offset=0, values=(1,)),))


# ------------------------------------------------------------------------------------------------------
# 2. Rules judge the value the target reads
# ------------------------------------------------------------------------------------------------------


LEGACY = Path(__file__).parent.parent / "contracts" / "test" / "legacy" / "LegacyCollection.sol"


@pytest.fixture(scope="module")
def collection(deployer):
    """LegacyCollection built as coder v1 contracts are built: with the legacy code generator (the via-IR pipeline
    the project compiles with has no coder v1, and ape-config.yaml leaves the file out of ``ape compile``)."""
    contract_type = compile_contract_type(LEGACY.read_text(), "LegacyCollection", via_ir=False)
    return ContractContainer(contract_type).deploy(sender=deployer)


@pytest.fixture(scope="module")
def payouts(project, deployer):
    return project.AssemblyPayouts.deploy(sender=deployer)


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(32, "big") for v in values)


def selector(signature: str) -> bytes:
    return parse_signature(signature).selector


def test_coder_v1_and_assembly_targets_read_dirty_words_as_other_values(
    collection, payouts, accounts, attacker, chain
):
    """The victims as reported: each acts on the cleaned word, not on the 32-byte word a rule compares."""
    holder = accounts[6]
    raw_send(holder, collection.address, selector(APPROVE) + words(int(attacker, 16), 2))
    assert collection.isApprovedForAll(holder, attacker)  # 2 is read as true
    raw_send(holder, collection.address, selector(TIER) + words(256))
    assert collection.tierOf(holder) == 0  # 256 is read as 0
    before = chain.provider.get_balance(attacker)
    dirty_to = int(attacker, 16) | 1 << 160
    receipt = raw_send(
        holder, payouts.address, selector(PAY) + words(dirty_to, 0x80, 0xDEADBEEF << 224 | 1), 7
    )
    assert chain.provider.get_balance(attacker) - before == 7  # the masked address is the attacker's
    (paid,) = receipt.decode_logs(payouts.Paid)
    assert (paid.priority, paid.tag) == (-128, bytes.fromhex("deadbeef"))  # 0x80 is the int8 -128


APPROVE = "setApprovalForAll(address operator, bool approved)"
TIER = "setTier(uint8 tier)"
PAY = "pay(address to, int8 priority, bytes4 tag)"


def test_dirty_words_for_a_coder_v1_target_are_refused(
    sessions, module, collection, account, owner, session_key, attacker
):
    """ "Never approve" (approved != true) and "premium tiers only" (tier >= 3), attacked with the words 2 and
    256, which the target reads as true and tier 0."""
    session = grant(
        sessions,
        account,
        owner,
        session_key,
        Policy.call(collection.address, APPROVE, rules=[arg("approved") != True]),  # noqa: E712
        Policy.call(collection.address, TIER, rules=[arg("tier") >= 3]),
    )
    attacks = [
        (Call.of(collection.address, 0, selector(APPROVE) + words(int(attacker, 16), 2)), 0, ArgType.BOOL, 2),
        (Call.of(collection.address, 0, selector(TIER) + words(256)), 1, ArgType.UINT8, 256),
        (Call.of(collection.address, 0, selector(TIER) + words(2**255 + 3)), 1, ArgType.UINT8, 2**255 + 3),
    ]
    for call, permission, arg_type, word in attacks:
        result = sessions.outcome(sessions.op(account, session_key, call))
        expected = (
            f"NonCanonicalArgument(callIndex=0, permissionIndex={permission}, ruleIndex=0, argType={arg_type}"
        )
        assert "AA23" in result and expected in result, result
        error = refused_locally(session, account, module.address, call)
        assert (error.reason, error.actual, error.permission_index) == (
            "NonCanonicalArgument",
            word,
            permission,
        )
        assert "not a canonical" in str(error)
    assert not collection.isApprovedForAll(account, attacker)
    assert collection.tierOf(account) == 0

    # the grant still allows what it says: revoking approvals, premium tiers
    allowed = [
        Call.of(collection.address, 0, selector(APPROVE) + words(int(attacker, 16), 0)),
        Call.of(collection.address, 0, selector(TIER) + words(3)),
    ]
    assert sessions.outcome(sessions.op(account, session_key, allowed)) == "ok"
    assert collection.tierOf(account) == 3


def test_dirty_words_for_an_assembly_target_are_refused(
    sessions, module, chain, payouts, account, owner, session_key, attacker
):
    """A payout anywhere but to the attacker, at priority 0 or more, not tagged 0xdeadbeef: each bypassed by a
    word the target's assembly cleans (an address with a high bit set, 0x80 read as int8 -128, a tag with a
    low byte set)."""
    permission = Policy.call(
        payouts.address,
        PAY,
        rules=[arg("to") != attacker, arg("priority") >= 0, arg("tag") != b"\xde\xad\xbe\xef"],
        value_limit=ETHER,
    )
    session = grant(sessions, account, owner, session_key, permission)
    friend = LocalSigner.generate().address
    good = [int(friend, 16), 1, 0x12345678 << 224]
    dirty = [int(attacker, 16) | 1 << 160, 0x80, 0xDEADBEEF << 224 | 1]
    types = [ArgType.ADDRESS, ArgType.int_of(8), ArgType.bytes_of(4)]
    before = chain.provider.get_balance(attacker)
    for rule in range(3):
        arguments = [*good[:rule], dirty[rule], *good[rule + 1 :]]
        call = Call.of(payouts.address, ETHER, selector(PAY) + words(*arguments))
        result = sessions.outcome(sessions.op(account, session_key, call))
        expected = (
            f"NonCanonicalArgument(callIndex=0, permissionIndex=0, ruleIndex={rule}, argType={types[rule]}"
        )
        assert "AA23" in result and expected in result, result
        assert refused_locally(session, account, module.address, call).rule_index == rule
    assert chain.provider.get_balance(attacker) == before
    call = Call.of(payouts.address, ETHER, selector(PAY) + words(*good))
    assert sessions.outcome(sessions.op(account, session_key, call)) == "ok"


def test_a_dirty_word_under_equal_is_a_broken_rule(sessions, module, collection, account, owner, session_key):
    """EQUAL and ONE_OF pass only a reference value, canonical by construction: a dirty word breaks the rule."""
    session = grant(
        sessions,
        account,
        owner,
        session_key,
        Policy.call(collection.address, TIER, rules=[arg("tier").one_of(3, 4)]),
    )
    call = Call.of(collection.address, 0, selector(TIER) + words(256 + 3))
    result = sessions.outcome(sessions.op(account, session_key, call))
    assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in result, result
    assert refused_locally(session, account, module.address, call).reason == "RuleViolated"


def test_reference_values_must_be_canonical_for_their_type(module, accounts, session_key, collection):
    """A grant whose reference value no canonical word can equal is refused (the SDK says so first)."""
    with pytest.raises(ValueError, match="not a uint8 word"):
        Rule(condition=0, offset=0, arg_type=ArgType.UINT8, values=(256,))
    bad = Rule.model_construct(condition=0, offset=0, arg_type=ArgType.UINT8, values=(256,), name=None)
    session = Session.model_construct(
        session_key=session_key.address,
        valid_after=0,
        valid_until=0,
        max_gas_cost=0,
        paymasters=(),
        salt=0,
        permissions=(Permission.model_construct(
            target=collection.address, selector=selector(TIER), value_limit=0, rules=(bad,), function=None
        ),),
    )  # fmt: skip
    with ape.reverts(module.InvalidRule):
        module.enableSession(session.as_abi(), sender=accounts[7])


# ------------------------------------------------------------------------------------------------------
# 3. The gas-cost cap binds paymasters too
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token(project, deployer):
    return project.TestToken.deploy(sender=deployer)


@pytest.fixture(scope="module")
def token_paymaster(project, deployer, entry_point, token, accounts):
    """An ERC-20 paymaster charging one token unit per wei of gas (18 decimals: a token is worth an ether)."""
    paymaster = project.TokenPaymaster.deploy(entry_point, token, ETHER, accounts[9], sender=deployer)
    paymaster.deposit(value=20 * ETHER, sender=deployer)
    return paymaster


CAP = ETHER // 100  # the session's cap: 0.01 ether


def sponsored_op(sessions, account, key, call: Call | list[Call], paymaster: str, **gas) -> UserOperation:
    """A session operation (USE) naming ``paymaster``, with the gas fields given (the report's by default:
    preVerificationGas 5,000,000 at 1,000 gwei)."""
    fields = {
        "verification_gas_limit": 500_000,
        "call_gas_limit": 100_000,
        "pre_verification_gas": 5_000_000,
        "max_fee_per_gas": 1000 * GWEI,
        "max_priority_fee_per_gas": 1000 * GWEI,
        "paymaster": paymaster,
        "paymaster_verification_gas_limit": 100_000,
        "paymaster_post_op_gas_limit": 100_000,
        **gas,
    }
    op = sessions.h.op(account, encode_execute(call), key=KIND.nonce_key(sessions.module.address)).replace(
        **fields
    )
    return op.replace(signature=key.sign_hash(sessions.h.hash(op)))


def test_an_erc20_paymaster_charges_the_account_for_the_gas_the_session_chose(
    sessions, target, chain, accounts, token, token_paymaster, account, owner, session_key
):
    """The victim as reported, with a session that lists the paymaster as uncapped (what the owner may choose for
    a sponsor it trusts): the account loses tokens worth the absurd fees, the bundler gains them."""
    token.mint(account, 10 * ETHER, sender=accounts[0])
    sessions.h.owner_execute(
        account,
        owner,
        Call.of(token.address, 0, token.approve.encode_input(token_paymaster.address, 2**256 - 1)),
    )
    call = Call.of(target.address, 0, target.other.encode_input(1))
    grant(
        sessions, account, owner, session_key, Permission(target=target.address, selector=selector("other(uint256)")),
        max_gas_cost=CAP, paymasters=(token_paymaster.address,),
    )  # fmt: skip
    beneficiary = sessions.h.bundler.beneficiary
    tokens_before, eth_before = token.balanceOf(account), chain.provider.get_balance(beneficiary)
    assert (
        sessions.outcome(sponsored_op(sessions, account, session_key, call, token_paymaster.address)) == "ok"
    )
    lost = tokens_before - token.balanceOf(account)
    assert lost > 5 * ETHER, lost  # tokens worth more than 5 ether, for one call to other(1)
    assert chain.provider.get_balance(beneficiary) - eth_before > 4 * ETHER  # net of the handleOps gas


def test_the_sdk_warns_of_a_listed_paymaster_that_may_charge_the_account(
    net, harness, project, deployer, entry_point, token_paymaster
):
    """The test above is what an owner risks by listing a paymaster that charges the account: the premise "list only
    paymasters that do not charge the account" was the owner's alone, and ``owner.grant(..., paymasters=[...])``
    listed an ERC-20 paymaster (here one the account could approve) as silently as a sponsor. It warns now
    (``TargetWarning`` naming the paymaster and what it may charge) for a listed paymaster that is not keyscope's
    ``SponsorPaymaster``, and stays quiet for that sponsor, and for a list that lifts nothing (no cap, no gas
    budget: the module does not store it)."""
    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account, ETHER)
    somewhere = LocalSigner.generate().address
    transfer = [Policy.transfer(somewhere, 1)]
    with pytest.warns(TargetWarning) as caught:
        owner.grant(LocalSigner.generate(), transfer, max_gas_cost=CAP, paymasters=[token_paymaster.address])
    (said,) = [str(w.message) for w in caught]
    assert f"paymaster {token_paymaster.address} as uncapped" in said, said
    assert "not keyscope's SponsorPaymaster" in said and "charge it for whatever gas" in said, said
    sponsor = project.SponsorPaymaster.deploy(entry_point, deployer, deployer, sender=deployer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)
        owner.grant(LocalSigner.generate(), transfer, max_gas_cost=CAP, paymasters=[sponsor.address])
        owner.grant(LocalSigner.generate(), transfer, max_gas_cost=0, paymasters=[token_paymaster.address])


def test_the_gas_cap_binds_operations_a_paymaster_pays(
    sessions, target, accounts, module, token, token_paymaster, account, owner, session_key
):
    token.mint(account, 10 * ETHER, sender=accounts[0])
    sessions.h.owner_execute(
        account,
        owner,
        Call.of(token.address, 0, token.approve.encode_input(token_paymaster.address, 2**256 - 1)),
    )
    call = Call.of(target.address, 0, target.other.encode_input(1))
    session = grant(
        sessions, account, owner, session_key, Permission(target=target.address, selector=selector("other(uint256)")),
        max_gas_cost=CAP,
    )  # fmt: skip
    before = token.balanceOf(account)

    # the report's operation: preVerificationGas 5,000,000 at 1,000 gwei
    op = sponsored_op(sessions, account, session_key, call, token_paymaster.address)
    cost = (500_000 + 100_000 + 5_000_000 + 100_000 + 100_000) * 1000 * GWEI
    result = sessions.outcome(op)
    assert "AA23" in result and f"GasCostTooHigh(cost={cost}, limit={CAP})" in result, result
    # the paymaster's own gas limits count: small account limits, a huge paymaster verification limit
    op = sponsored_op(
        sessions, account, session_key, call, token_paymaster.address,
        pre_verification_gas=60_000, max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI,
        paymaster_verification_gas_limit=5_000_000,
    )  # fmt: skip
    assert "GasCostTooHigh" in sessions.outcome(op)
    assert token.balanceOf(account) == before

    # within the cap, the paymaster pays and charges the account what the cap allows at most
    fee = 2 * GWEI
    op = sponsored_op(
        sessions, account, session_key, call, token_paymaster.address,
        pre_verification_gas=60_000, max_fee_per_gas=fee, max_priority_fee_per_gas=GWEI,
    )  # fmt: skip
    assert sessions.outcome(op) == "ok"
    charged = before - token.balanceOf(account)
    assert 0 < charged <= token_paymaster.tokensFor(CAP + token_paymaster.POST_OP_GAS() * fee)

    # the SDK refuses the report's operation before sending, naming the paymaster and its gas
    report = sponsored_op(sessions, account, session_key, call, token_paymaster.address)
    with pytest.raises(GasCostTooHighError) as info:
        PolicyChecker(session, account, module.address).check_operation(report, now=0)
    assert (info.value.cost, info.value.limit) == (cost, CAP)
    assert token_paymaster.address in str(info.value) and "paymaster verification 100,000" in str(info.value)


def test_a_paymaster_list_lifts_the_cap_of_its_own_sessions_calls_only(
    sessions, target, nft, token, token_paymaster, account, owner, session_key
):
    """One key, two sessions: one lists the paymaster, the other does not. A call under the second, alone or
    batched with one under the first, stays capped: a session never lends its list to another."""
    other = Call.of(target.address, 0, target.other.encode_input(1))
    mint = Call.of(nft.address, 0, nft.safeMint.encode_input(account))
    grant(
        sessions, account, owner, session_key, Permission(target=target.address, selector=selector("other(uint256)")),
        max_gas_cost=CAP, paymasters=(token_paymaster.address,),
    )  # fmt: skip
    grant(
        sessions,
        account,
        owner,
        session_key,
        Policy.call(nft.address, "safeMint(address)"),
        max_gas_cost=CAP,
        salt=1,
    )
    gas = {"pre_verification_gas": 60_000, "max_fee_per_gas": 20 * GWEI, "max_priority_fee_per_gas": GWEI}
    token.mint(account, 10 * ETHER, sender=sessions.h.funder)
    sessions.h.owner_execute(
        account,
        owner,
        Call.of(token.address, 0, token.approve.encode_input(token_paymaster.address, 2**256 - 1)),
    )
    over_cap = (500_000 + 100_000 + 60_000 + 200_000) * 20 * GWEI
    assert over_cap > CAP
    assert (
        sessions.outcome(sponsored_op(sessions, account, session_key, other, token_paymaster.address, **gas))
        == "ok"
    )
    for calls in (mint, [other, mint]):
        op = sponsored_op(sessions, account, session_key, calls, token_paymaster.address, **gas)
        result = sessions.outcome(op)
        assert f"GasCostTooHigh(cost={over_cap}, limit={CAP})" in result, result


def test_a_session_lists_at_most_seven_paymasters(
    sessions, net, target, module, token, token_paymaster, account, owner, session_key
):
    """A permission's header keeps the session's paymaster count in 3 bits, right below its LIMITED flag: an eighth
    paymaster spills into it (8 << 249 is LIMITED) and the list reads as empty. The flag is only ever set, so a
    session's limits are not switched off, but the grant no longer means what the owner signed: the listed sponsor
    stops lifting the cap (``GasCostTooHigh``), and a session granted without limits is counted against whatever
    meter word its storage holds, a revoked limited session's of the same key (``LimitExceeded``). The module
    refuses a list of more than seven (``InvalidPaymasters(count, 7)``), and a zero paymaster
    (``InvalidPaymasters(count, index)``), on chain and by ENABLE; the SDK refuses both before sending. Seven are
    kept whole: the seventh lifts the cap."""
    h = sessions.h
    others = tuple(LocalSigner.generate().address for _ in range(7))
    call = Call.of(target.address, 0, target.other.encode_input(1))
    permission = Permission(target=target.address, selector=selector("other(uint256)"))
    token.mint(account, ETHER, sender=h.funder)
    h.owner_execute(
        account,
        owner,
        Call.of(token.address, 0, token.approve.encode_input(token_paymaster.address, 2**256 - 1)),
    )
    gas = {"pre_verification_gas": 60_000, "max_fee_per_gas": 20 * GWEI, "max_priority_fee_per_gas": GWEI}
    assert (
        500_000 + 100_000 + 60_000 + 100_000 + 100_000
    ) * 20 * GWEI > CAP  # sponsored_op's most possible cost

    # seven: the seventh paymaster lifts the cap
    grant(
        sessions, account, owner, session_key, permission,
        max_gas_cost=CAP, paymasters=(*others[:6], token_paymaster.address),
    )  # fmt: skip
    assert (
        sessions.outcome(sponsored_op(sessions, account, session_key, call, token_paymaster.address, **gas))
        == "ok"
    )

    # eight on chain, for a key whose limited session on the same call was used up and revoked
    key = LocalSigner.generate()
    used = Session(
        session_key=key.address, permissions=(Policy.call(target.address, "other(uint256)", calls=1),)
    )
    used_id = sessions.grant_onchain(account, owner, used)
    assert sessions.outcome(sessions.op(account, key, call)) == "ok"
    sessions.revoke(account, owner, used_id)
    eight = Session(
        session_key=key.address, permissions=(permission,), max_gas_cost=CAP, paymasters=others[:7]
    )
    eight = eight.model_copy(update={"paymasters": (*others, token_paymaster.address)})  # the SDK refuses it
    enable = Call.of(module.address, 0, module.enableSession.encode_input(eight.as_abi()))
    receipt = h.submit(h.sign_owner(h.op(account, encode_execute(enable)), owner))
    unlimited_call = sessions.outcome(sessions.op(account, key, call))
    assert not receipt.success, (
        f"the module enabled a session listing 8 paymasters; its call: {unlimited_call}"
    )
    assert describe_revert(receipt.reason) == "InvalidPaymasters(count=8, index=7)"
    assert not module.isSessionActive(account, eight.session_id(account, sessions.epoch(account)))
    assert "AA24" in unlimited_call  # no live permission: the key's signature proves nothing

    # eight by ENABLE, the sponsor first, in an operation it pays above the cap
    key = LocalSigner.generate()
    eight = eight.model_copy(
        update={"session_key": key.address, "paymasters": (token_paymaster.address, *others)}
    )
    sponsored = sessions.op(
        account, key, call, mode="enable", session=eight,
        owner_signature=sessions.owner_signature(account, owner, eight),
        paymaster=token_paymaster.address, paymaster_verification_gas_limit=100_000,
        paymaster_post_op_gas_limit=100_000, **gas,
    )  # fmt: skip
    refused = str(h.rejected(sponsored))
    assert "AA23" in refused and "InvalidPaymasters(count=8, index=7)" in refused, refused
    assert not module.isSessionActive(account, eight.session_id(account, sessions.epoch(account)))

    # a zero paymaster, on chain
    zero = eight.model_copy(update={"paymasters": (*others[:3], ZERO_ADDRESS)})
    enable = Call.of(module.address, 0, module.enableSession.encode_input(zero.as_abi()))
    receipt = h.submit(h.sign_owner(h.op(account, encode_execute(enable)), owner))
    assert describe_revert(receipt.reason) == "InvalidPaymasters(count=4, index=3)"

    # the SDK refuses both lists before anything is signed
    sdk = net.owner(owner)
    for paymasters, message in (
        ((*others, token_paymaster.address), "at most 7 paymasters, got 8"),
        (zero.paymasters, "not a paymaster"),
    ):
        with pytest.raises(BadInputError, match=message):
            sdk.session_for(key, [permission], max_gas_cost=CAP, paymasters=paymasters)


# ------------------------------------------------------------------------------------------------------
# Residual: what the module cannot know
# ------------------------------------------------------------------------------------------------------


def test_a_grant_on_another_module_of_the_account_is_refused(
    sessions, project, deployer, account, owner, session_key, attacker
):
    """Modules key their configuration by the calling account, so a call from the account to one of its
    modules reconfigures the account for that module (here an owner validator's onInstall would make the
    attacker the owner). Enabling a session asks the account which modules it has and refuses a permission on
    one; a module installed after the grant keyscope's account refuses to install (tests/test_limits.py::
    test_the_account_refuses_to_install_a_module_a_live_session_may_call), other vendors' accounts install it
    (the residual: tests/test_limits.py::test_residual_a_module_installed_after_the_grant_on_another_vendor_s_account)."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    sessions.h.owner_execute(
        account,
        owner,
        KIND.install_validator_call(account, validator.address, bytes.fromhex(owner.address[2:])),
    )
    assert validator.ownerOf(account) == owner.address
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=validator.address, selector=selector("onInstall(bytes)")),),
    )
    data = sessions.module.enableSession.encode_input(session.as_abi())
    op = sessions.h.sign_owner(
        sessions.h.op(account, encode_execute(Call.of(sessions.module.address, 0, data))), owner
    )
    assert not sessions.h.submit(op).success
    assert not sessions.module.isSessionActive(account, session.session_id(account, sessions.epoch(account)))
    call = Call.of(validator.address, 0, validator.onInstall.encode_input(bytes.fromhex(attacker[2:])))
    assert "AA24" in sessions.outcome(sessions.op(account, session_key, call))
    assert validator.ownerOf(account) == owner.address


# ------------------------------------------------------------------------------------------------------
# 4. An EIP-7702 init call the module would never judge
# ------------------------------------------------------------------------------------------------------


def test_a_session_operation_carrying_an_eip7702_init_call_is_refused_by_the_module(module, nft, accounts):
    """On EntryPoint v0.8 an initCode of the 20-byte 0x7702 marker and more data makes the SenderCreator call the
    (already delegated) account with that data before validation, and the userOpHash covers it, so a session key
    can sign one. keyscope's own delegate refuses it; the module refuses it too, for any vendor's EIP-7702
    account: its validation judges the callData, and these bytes would reach the account unjudged.

    The module is asked directly, as an account asks it (the caller is the account): the same operation passes
    with the bare marker (an EIP-7702 account's ordinary initCode) and is refused with an init call behind it."""
    victim = accounts[7]  # stands for a delegated EOA whose account installed the module
    key = LocalSigner.generate()
    recipient = accounts[8].address
    permission = Policy.call(nft.address, "safeMint(address to)", rules=[arg("to") == recipient])
    session = Session(session_key=key.address, permissions=(permission,))
    module.enableSession(session.as_abi(), sender=victim)
    mint = encode_execute([Call.of(nft.address, 0, nft.safeMint.encode_input(recipient))])

    def packed(init_code: bytes) -> tuple:
        op = UserOperation(
            sender=victim.address,
            nonce=0,
            call_data=mint,
            call_gas_limit=200_000,
            verification_gas_limit=500_000,
            pre_verification_gas=50_000,
            max_fee_per_gas=10**9,
            max_priority_fee_per_gas=10**9,
        ).pack()
        return op.model_copy(update={"init_code": init_code}).as_tuple()

    digest = b"\x42" * 32
    signature = key.sign_hash(digest)
    marker = bytes.fromhex("7702").ljust(20, b"\0")
    with_signature = [(*packed(code)[:-1], signature) for code in (b"", b"\x77\x02", marker)]
    for op in with_signature:  # no init call: the session's window, signature valid
        assert module.validateUserOp.call(op, digest, sender=victim) == 0
    init_call = bytes.fromhex("b61d27f6") + bytes(96)  # any calldata for the account, e.g. a fallback's
    attack = (*packed(marker + init_call)[:-1], signature)
    with ape.reverts(module.InitCallNotJudged, initCallLength=len(init_call)):
        module.validateUserOp(attack, digest, sender=victim)


def test_the_marker_spelled_as_an_address_is_the_marker_for_the_sdk_too(module, nft, accounts):
    """The marker is 0x7702 and 18 zero bytes, however an operation names its factory: ``"0x7702"``, or the 20-byte
    address a client or a bundler's JSON may carry. EntryPoint v0.8 reads both as an EIP-7702 account's initCode, and
    the module refuses an init call behind either. The SDK took the address spelling for a factory's: its checker
    passed the operation the module refuses (and it packed and hashed it as a factory's)."""
    victim = accounts[7]
    key = LocalSigner.generate()
    recipient = accounts[8].address
    session = Session(
        session_key=key.address, permissions=(Policy.call(nft.address, "safeMint(address to)"),)
    )
    mint = encode_execute([Call.of(nft.address, 0, nft.safeMint.encode_input(recipient))])
    init_call = bytes.fromhex("b61d27f6") + bytes(96)
    spelled = "0x7702" + "00" * 18
    fields = {
        "sender": victim.address,
        "nonce": 0,
        "callData": "0x" + mint.hex(),
        "callGasLimit": hex(200_000),
        "verificationGasLimit": hex(500_000),
        "preVerificationGas": hex(50_000),
        "maxFeePerGas": hex(10**9),
        "maxPriorityFeePerGas": hex(10**9),
    }
    plain = UserOperation.model_validate(fields)
    # on chain: the module refuses the marker with an init call behind it
    module.enableSession(session.as_abi(), sender=victim)
    digest = b"\x42" * 32
    packed = plain.pack().model_copy(update={"init_code": bytes.fromhex(spelled[2:]) + init_call})
    attack = (*packed.as_tuple()[:-1], key.sign_hash(digest))
    with ape.reverts(module.InitCallNotJudged, initCallLength=len(init_call)):
        module.validateUserOp(attack, digest, sender=victim)
    # the SDK: the same operation, its factory spelled as an address (as JSON-RPC carries it, or as a caller gives it)
    checker = PolicyChecker(session, victim.address, module.address)
    for op in (
        UserOperation.model_validate({**fields, "factory": spelled, "factoryData": "0x" + init_call.hex()}),
        plain.replace(factory=spelled.upper().replace("0X", "0x"), factory_data=init_call),
    ):
        assert op.is_eip7702 and op.factory == "0x7702"
        with pytest.raises(InitCallRefusedError, match="init call"):
            checker.check_operation(op, now=0)
        with pytest.raises(BadInputError, match="factoryData"):
            op.pack()
    assert (
        plain.replace(factory=spelled).pack().init_code == EIP7702_INIT_CODE
    )  # the bare marker is as before


# ------------------------------------------------------------------------------------------------------
# 5. A session's signature passed off as the owner's to another module of the account
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def second_module(project, deployer):
    """Another session-key validator (another deployment, as an account moving between versions has): it asks the
    account's ERC-1271 for the owner's signature of its grants, as many modules do for their configuration."""
    contract = project.SessionKeyValidator.deploy(sender=deployer)
    project.ForceFeed.deploy(contract.address, value=ETHER, sender=deployer)
    return contract


def test_a_session_for_the_zero_address_is_refused_by_the_module_and_the_sdk(sessions, account, session_key):
    """No key signs as the zero address: the module refuses to enable a session for it, and the SDK refuses to
    build one, so no grant of it is ever signed."""
    session = Session(
        session_key=session_key.address,
        permissions=(Permission(target=session_key.address, selector=b"\1" * 4),),
    )
    zero_key = (ZERO_ADDRESS, *session.as_abi()[1:])
    with ape.reverts(sessions.module.InvalidSessionKey):
        sessions.module.enableSession.call(zero_key, sender=account)
    with pytest.raises(InvalidFieldsError, match="session key is the zero address"):
        Session(session_key=ZERO_ADDRESS, permissions=session.permissions)


def grants_of(other, chain_id: int):
    """A typed-data permission to sign ``other``'s session grants (its domain, its Session type)."""
    any_grant = Session(
        session_key=other.address, permissions=(Permission(target=other.address, selector=b"\1" * 4),)
    )
    typed = any_grant.typed_data(other.address, 0, chain_id, other.address)
    types = {name: fields for name, fields in typed["types"].items() if name != "EIP712Domain"}
    return Policy.typed_data(typed["domain"], types, "Session", label="grants of another module")


def grant_signing_for(sessions, net, account, owner, key, permission) -> SessionAccount:
    """An on-chain grant of one typed-data permission to ``key``; the SDK's session for it."""
    session = Session(session_key=key.address, typed_data_permissions=(permission,))
    session_id = sessions.grant_onchain(account, owner, session)
    return net.session(sdk_grant(sessions, account, session, session_id=session_id, how="onchain"), key)


def test_a_session_not_enabled_yet_signs_nothing(sessions, net, account, session_key, monkeypatch):
    """An off-chain grant before its first operation: verifiers would refuse the session's signature (the module
    does not know it), so the SDK refuses to sign, in one round trip with the question about the verifier."""
    permission = grants_of(sessions.h.factory, sessions.h.chain_id)
    session = Session(session_key=session_key.address, typed_data_permissions=(permission,), salt=77)
    session_id = session.session_id(account, sessions.epoch(account))
    offchain = sdk_grant(
        sessions, account, session, session_id=session_id, how="offchain", owner_signature=b"\x01" * 65
    )
    signer = net.session(offchain, session_key)
    wanted = Session(
        session_key=session_key.address, permissions=(Permission(target=account, selector=b"\1" * 4),)
    )
    typed = wanted.typed_data(account, 0, sessions.h.chain_id, sessions.h.factory.address)
    reads = CountingReads(net.chain)
    monkeypatch.setattr(net, "chain", reads)
    with pytest.raises(SessionError, match="not enabled on chain yet"):
        signer.sign_typed_data(typed)
    assert reads.round_trips == 1, reads.round_trips


def steal_through_second_module(sessions, signer: SessionAccount, other, account, attacker) -> str:
    """The session signs, as the account, the other module's grant of a session to the attacker's key (ETH to
    the attacker); the attacker's first operation carries it (ENABLE mode on the other module)."""
    thief = LocalSigner.generate()
    loot = Session(
        session_key=thief.address,
        permissions=(Permission(target=attacker, selector=bytes(4), value_limit=10 * ETHER),),
    )
    epoch = int(other.epochOf(account))
    typed = loot.typed_data(account, epoch, sessions.h.chain_id, other.address)
    owner_signature = forge_typed_data(signer, typed)
    op = sessions.h.op(
        account, encode_execute(Call(attacker, 3 * ETHER, b"")), key=KIND.nonce_key(other.address, 0)
    )
    op = op.replace(
        signature=encode_enable_signature(loot, owner_signature, thief.sign_hash(sessions.h.hash(op)))
    )
    return sessions.outcome(op)


def test_a_signing_permission_in_another_modules_domain_is_refused(
    sessions, net, second_module, account, owner, session_key, attacker, chain
):
    """A typed-data permission whose domain is another module of the account (here a second session-key validator,
    whose grants the account approves through ERC-1271) would let the session approve that module's grants as the
    account's owner: a session for the attacker's key, which takes the account's ETH (the residual test below runs
    it). Enabling a session asks the account which modules it has, as for call targets (attack 52), and refuses a
    signing permission whose verifying contract is one; the SDK's consent page warns about it."""
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, second_module.address))
    permission = grants_of(second_module, sessions.h.chain_id)
    session = Session(session_key=session_key.address, typed_data_permissions=(permission,))
    with ape.reverts(
        sessions.module.ForbiddenSigningDomain, index=0, verifyingContract=second_module.address
    ):
        sessions.module.enableSession.call(session.as_abi(), sender=account)
    data = sessions.module.enableSession.encode_input(session.as_abi())
    op = sessions.h.sign_owner(
        sessions.h.op(account, encode_execute(Call.of(sessions.module.address, 0, data))), owner
    )
    assert not sessions.h.submit(op).success
    assert not sessions.module.isSessionActive(account, session.session_id(account, sessions.epoch(account)))
    # the same permission on a contract that is not a module of the account is granted
    elsewhere = grants_of(sessions.h.factory, sessions.h.chain_id)
    sessions.grant_onchain(
        account, owner, Session(session_key=session_key.address, typed_data_permissions=(elsewhere,))
    )


def test_the_sdk_refuses_a_signing_permission_in_another_modules_domain_before_the_owner_signs(
    sessions, net, second_module, account, owner, session_key, target
):
    """What the module refuses when it enables the session above (``ForbiddenSigningDomain``), the SDK refuses
    before the owner signs: its one batch of questions asks about the verifying contract of each signing domain
    too, and names the signing permission. The same permission on a contract that is not a module is prepared."""
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, second_module.address))
    sdk = net.owner(owner)
    assert sdk.account == account
    permission = grants_of(second_module, sessions.h.chain_id)
    refused = (
        rf"signing permission 0 \(grants of another module\) is in the domain of {second_module.address}, a "
        r"validator module of the account.*\(ForbiddenSigningDomain\)"
    )
    with pytest.raises(BadInputError, match=refused):
        sdk.prepare_grant(session_key, [], typed_data=[permission])
    session = Session(session_key=session_key.address, typed_data_permissions=(permission,))
    with pytest.raises(BadInputError, match=refused):
        sdk.request_for(session)
    elsewhere = grants_of(sessions.h.factory, sessions.h.chain_id)
    # with a call to make (a wallet's request is an off-chain grant, which the session's first operation stores)
    sdk.prepare_grant(session_key, [Policy.call(target.address, "other(uint256)")], typed_data=[elsewhere])


def test_the_sdk_refuses_a_signing_permission_in_the_accounts_or_the_modules_domain_before_the_owner_signs(
    sessions, net, account, owner, session_key, target
):
    """A typed-data permission whose domain is the account's own (its ERC-1271 and module-enable approvals) or the
    session module's (its session grants): the module refuses to enable it whatever the account says
    (``ForbiddenSigningDomain``), so the SDK refuses it before the owner signs, as it asks the account nothing about
    them: ``prepare_grant``, ``request_for`` and ``grant`` raise, naming the signing permission, on a deployed
    account and on one not created yet (where nothing else is asked about). The same permission elsewhere is
    prepared."""
    sdk = net.owner(owner)
    assert sdk.account == account
    fresh = net.owner(LocalSigner.generate())
    assert not fresh.is_deployed()
    for who, verifying, permission in (
        (
            "the account itself",
            account,
            Policy.typed_data(
                {"name": "Self", "verifyingContract": account},
                {"Note": [{"name": "n", "type": "uint256"}]},
                "Note",
            ),
        ),
        ("the session module", sessions.module.address, grants_of(sessions.module, sessions.h.chain_id)),
    ):
        session = Session(session_key=session_key.address, typed_data_permissions=(permission,))
        with ape.reverts(sessions.module.ForbiddenSigningDomain, index=0, verifyingContract=verifying):
            sessions.module.enableSession.call(session.as_abi(), sender=account)
        refused = (
            rf"signing permission 0 \({permission.describe}\) is in the domain of {who} \({verifying}\).*"
            r"The module refuses such grants \(ForbiddenSigningDomain\); grant signing permissions in other domains"
        )
        with pytest.raises(BadInputError, match=refused):
            sdk.prepare_grant(session_key, [], typed_data=[permission])
        with pytest.raises(BadInputError, match=refused):
            sdk.request_for(session)
        with pytest.raises(BadInputError, match=refused):
            sdk.grant(session_key, [], typed_data=[permission])
        with pytest.raises(BadInputError, match=refused):
            sdk.grant(session_key, [], typed_data=[permission], onchain=True)
        if verifying == account:  # the fresh account's own domain is its address
            permission = Policy.typed_data(
                {"name": "Self", "verifyingContract": fresh.account},
                {"Note": [{"name": "n", "type": "uint256"}]},
                "Note",
            )
        fresh_refused = refused.replace(account, fresh.account)
        with pytest.raises(BadInputError, match=fresh_refused):
            fresh.prepare_grant(session_key, [], typed_data=[permission])
    elsewhere = grants_of(sessions.h.factory, sessions.h.chain_id)
    sdk.prepare_grant(session_key, [Policy.call(target.address, "other(uint256)")], typed_data=[elsewhere])


def test_a_session_refuses_to_sign_for_the_account_or_the_module_before_signing(
    sessions, net, account, session_key
):
    """Typed data whose verifying contract is the account itself or the session module: the module refuses a
    session's signature either asks about (``SignatureSenderForbidden``), and refuses to enable such a signing
    domain. A grant record that says the session is enabled on chain (the SDK then asks nothing) holding such a
    permission: the SDK refuses before the session key signs, with the module's reason, instead of signing and
    reading the account's refusal (``AccountRefused``)."""
    for verifying in (account, sessions.module.address):
        permission = Policy.typed_data(
            {"name": "Self", "verifyingContract": verifying},
            {"Note": [{"name": "n", "type": "uint256"}]},
            "Note",
        )
        session = Session(session_key=session_key.address, typed_data_permissions=(permission,), salt=5)
        record = sdk_grant(
            sessions, account, session, session_id=session.session_id(account, 0), how="onchain"
        )
        signer = net.session(record, session_key)
        signed: list[bytes] = []
        signer.key = _Recording(signer.key, signed)
        data = {
            "types": {"Note": [{"name": "n", "type": "uint256"}]},
            "primaryType": "Note",
            "domain": {"name": "Self", "verifyingContract": verifying},
            "message": {"n": 1},
        }
        with pytest.raises(SignatureRefusedError, match=f"verifying contract {verifying} is the") as local:
            signer.sign_typed_data(data)
        assert local.value.reason == "SignatureSenderForbidden", local.value
        assert signed == [], "the session key signed"


class _Recording:
    """A session key that records the hashes it signs."""

    def __init__(self, inner: Any, signed: list[bytes]) -> None:
        self._inner, self._signed = inner, signed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def sign_hash(self, digest: bytes) -> bytes:
        self._signed.append(bytes(digest))
        return bytes(self._inner.sign_hash(digest))


class CountingReads:
    """A chain that counts its round trips: each ``call`` and each batch of ``read_many`` is one."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.round_trips = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def call(self, to: str, data: bytes) -> bytes:
        self.round_trips += 1
        return bytes(self._inner.call(to, data))

    def read_many(
        self, calls: Any = (), *, codes: Any = (), timestamp: bool = False, optional: Any = ()
    ) -> Reads:
        self.round_trips += 1
        return read_many(self._inner, calls, codes=codes, timestamp=timestamp, optional=optional)


def test_a_session_cannot_sign_for_a_module_installed_after_its_grant(
    sessions, net, second_module, account, owner, session_key, attacker, chain, monkeypatch
):
    """A typed-data permission on a contract's domain, granted while the contract is not a module of the account
    (enabling lets it through), then the owner installs that contract as a module: the session signs the module's
    grant of a session to the attacker's key as the account's owner, to take the account's ETH. The module asks who
    verifies: a signature a module of the account asks about (the verifier's ``sender``) is refused whenever the
    module was installed, so the second module's ENABLE fails (AA23) and nothing leaves the account. The same
    signature is still the account's for any verifier that is not one of its modules."""
    permission = grants_of(second_module, sessions.h.chain_id)
    signer = grant_signing_for(sessions, net, account, owner, session_key, permission)
    any_grant = Session(session_key=attacker, permissions=(Permission(target=attacker, selector=bytes(4)),))
    typed = any_grant.typed_data(account, 0, sessions.h.chain_id, second_module.address)
    signer.sign_typed_data(typed)  # not a module yet: the SDK signs
    sessions.h.owner_execute(account, owner, KIND.install_validator_call(account, second_module.address))
    with pytest.raises(SignatureRefusedError, match="is a validator module of the account") as local:
        signer.sign_typed_data(typed)  # the SDK refuses first, as the module will
    assert local.value.reason == "SignatureSenderForbidden"
    # a dapp that reloads the session (its off-chain grant, enabled since) asks whether it is enabled and whether
    # the verifier is a module in one round trip
    reloaded = net.session(
        signer.grant.model_copy(update={"how": "offchain", "owner_signature": b"\x01" * 65}), session_key
    )
    reads = CountingReads(net.chain)
    monkeypatch.setattr(net, "chain", reads)
    with pytest.raises(SignatureRefusedError, match="is a validator module of the account"):
        reloaded.sign_typed_data(typed)
    assert reads.round_trips == 1, reads.round_trips
    monkeypatch.undo()
    before = chain.provider.get_balance(attacker)
    refused = steal_through_second_module(sessions, signer, second_module, account, attacker)
    assert "AA23" in refused and "InvalidOwnerSignature" in refused, refused
    assert chain.provider.get_balance(attacker) == before
    signature = forge_typed_data(signer, typed)
    body = signature[20:]  # past the account's routing prefix: what the module is given
    digest = TypedData(typed).digest
    with ape.reverts(sessions.module.SignatureSenderForbidden, sender=second_module.address):
        sessions.module.requireValidSignature(account, second_module.address, digest, body)
    sessions.module.requireValidSignature(account, attacker, digest, body)  # another verifier: valid


# ------------------------------------------------------------------------------------------------------
# 6. The zero address as a call's target: the account calls itself
# ------------------------------------------------------------------------------------------------------

ZERO = "0x" + "00" * 20


def test_a_call_to_the_zero_address_is_a_call_to_the_account_itself(
    sessions, project, deployer, nft, account, owner, session_key, attacker
):
    """OpenZeppelin's ERC-7579 execution (keyscope's account and its EIP-7702 delegate) runs a call whose target is
    address(0) as a call to the account itself, so ``execute(single, address(0), installModule(...))`` would install
    the attacker's validator. The module compares the target with the account, not with what the account makes of
    it; it stops the call because no permission can name address(0) (enabling refuses it) and a call is judged
    under the permission of its (target, selector): USE finds none (AA24), USE_WITH_KEY says NoPermission, alone or
    batched behind an allowed call, and the SDK's checker refuses it the same way."""
    validator = project.OwnerECDSAValidator.deploy(sender=deployer)
    install = KIND.install_validator_call(account, validator.address, bytes.fromhex(owner.address[2:])).data
    # the account acts on it: the owner's own operation installs a validator through address(0)
    sessions.h.owner_execute(account, owner, Call(ZERO, 0, install))
    assert validator.ownerOf(account) == owner.address
    other = project.OwnerECDSAValidator.deploy(sender=deployer)
    hijack = Call(
        ZERO, 0, KIND.install_validator_call(account, other.address, bytes.fromhex(attacker[2:])).data
    )
    mint = Policy.call(nft.address, "safeMint(address to)")
    session = grant(sessions, account, owner, session_key, mint)
    allowed = Call.of(nft.address, 0, nft.safeMint.encode_input(attacker))
    for calls in ([hijack], [allowed, hijack]):
        assert "AA24" in sessions.outcome(sessions.op(account, session_key, calls))
        refused = sessions.outcome(sessions.op(account, session_key, calls, mode="use_with_key"))
        assert "AA23" in refused and "NoPermission" in refused
        error = refused_locally(session, account, sessions.module.address, calls)
        assert (error.reason, error.call_index) == ("NoPermission", len(calls) - 1)
    assert int(other.ownerOf(account), 16) == 0
    with pytest.raises(BadInputError, match="zero address"):
        Policy.call(ZERO, "installModule(uint256 moduleTypeId, address module, bytes initData)")
    raw = Session(
        session_key=session_key.address, permissions=(Permission(target=ZERO, selector=install[:4]),)
    )
    with ape.reverts(sessions.module.ForbiddenPermissionTarget, permissionIndex=0, target=ZERO):
        sessions.module.enableSession.call(raw.as_abi(), sender=account)


# ------------------------------------------------------------------------------------------------------
# 7. Borrowing another session's bounds: one key, several sessions, one batch
# ------------------------------------------------------------------------------------------------------


def test_a_batch_cannot_borrow_the_window_cap_or_budget_of_another_session_of_the_key(
    sessions, nft, target, account, owner, session_key, attacker, chain
):
    """One key holds several sessions on the account (several dapps, or one dapp's grants over time), and a batch
    may mix their calls: every call is judged under its own permission. The operation's bounds are then the
    tightest of its calls': an expired session's call behind a live session's gives the expired window (AA22); a
    capped session's call behind an uncapped one's gives the cap; a session whose operation budget is spent refuses
    a batch that also calls another session. Alone, the live, uncapped session's call passes each time."""
    now = chain.pending_timestamp
    mint = Policy.call(nft.address, "safeMint(address to)")
    grant(sessions, account, owner, session_key, mint)  # A: no end, no cap, no limit
    expired = Policy.call(target.address, "other(uint256 amount)")
    grant(
        sessions, account, owner, session_key, expired, valid_after=now - 200, valid_until=now - 100, salt=1
    )
    capped = Policy.call(
        target.address, "record(uint256 amount, int256 delta, address who, bytes32 tag, bool flag)"
    )
    grant(sessions, account, owner, session_key, capped, max_gas_cost=10**15, salt=2)
    budgeted = Policy.call(target.address, "withBytes(bytes data, uint256 amount)")
    grant(sessions, account, owner, session_key, budgeted, limits=(Limits.operations(1),), salt=3)

    a = Call.of(nft.address, 0, nft.safeMint.encode_input(attacker))
    b = Call.of(target.address, 0, target.other.encode_input(1))
    c = Call.of(target.address, 0, target.record.encode_input(1, -1, attacker, b"\x01" * 32, True))
    d = Call.of(target.address, 0, target.withBytes.encode_input(b"\x01", 1))
    for mode in ("use", "use_with_key"):
        assert "AA22" in sessions.outcome(sessions.op(account, session_key, [a, b], mode=mode))
        capped_out = sessions.outcome(sessions.op(account, session_key, [a, c], mode=mode))
        assert "GasCostTooHigh" in capped_out and str(10**15) in capped_out, capped_out
        assert sessions.outcome(sessions.op(account, session_key, [a], mode=mode)) == "ok"
    assert sessions.outcome(sessions.op(account, session_key, [a, d])) == "ok"  # D's one operation
    spent = sessions.outcome(sessions.op(account, session_key, [a, d]))
    assert "LimitExceeded(callIndex=1, limitIndex=0, amount=1, left=0)" in spent, spent
    assert sessions.outcome(sessions.op(account, session_key, [a])) == "ok"
    assert nft.balanceOf(attacker) == 4


def test_a_batch_ends_at_the_earliest_end_of_its_calls_sessions(
    sessions, nft, target, account, owner, attacker, chain
):
    """Two sessions of one key that both end: a live one ending in an hour and one that ended 100 seconds ago. A
    batch of a call of each, in either order, ends when the expired one did (AA22): the operation's validUntil is
    the earliest end of its calls' sessions, not the latest, so the expired session's call cannot ride in the live
    one's window. (The test above pairs the expired session with one that never ends, which any choice of end
    passes.)"""
    key = LocalSigner.generate()
    now = chain.pending_timestamp
    live = Policy.call(nft.address, "safeMint(address to)")
    grant(sessions, account, owner, key, live, valid_after=now - 200, valid_until=now + 3600)
    expired = Policy.call(target.address, "other(uint256 amount)")
    grant(sessions, account, owner, key, expired, valid_after=now - 200, valid_until=now - 100, salt=1)

    a = Call.of(nft.address, 0, nft.safeMint.encode_input(attacker))
    b = Call.of(target.address, 0, target.other.encode_input(1))
    before = nft.balanceOf(attacker)
    for mode in ("use", "use_with_key"):
        for calls in ([a, b], [b, a]):
            outcome = sessions.outcome(sessions.op(account, key, calls, mode=mode))
            assert "AA22" in outcome, (mode, calls, outcome)
        assert sessions.outcome(sessions.op(account, key, [a], mode=mode)) == "ok"
    assert nft.balanceOf(attacker) == before + 2


# ------------------------------------------------------------------------------------------------------
# 8. Bytes past the judged calls: what the module leaves unread, the account leaves unrun
# ------------------------------------------------------------------------------------------------------


def test_bytes_past_the_judged_calls_are_never_run(sessions, target, account, owner, session_key, chain):
    """A forbidden call (``other(1000)`` with 1 ether, under ``amount <= 5`` and no value) laid where the module does
    not judge it: after executionCalldata, in single mode and after a batch, or after the last call of a batch whose
    count (1) leaves a second element out, each with default and try execution. Every one is refused
    (``MalformedExecution``): an account reading a single call's data to its callData's end would hand the bytes after
    executionCalldata to the target (``tests/test_attacks_execution.py``), and a batch must end with its last call's
    padded data, so that an account reading a batch otherwise than by its count finds no call left unjudged. The SDK's
    decoder refuses the same."""
    rule = Policy.call(target.address, "other(uint256 amount)", rules=[arg("amount") <= 5])
    grant(sessions, account, owner, session_key, rule)
    allowed = Call.of(target.address, 0, target.other.encode_input(1))
    forbidden = Call.of(target.address, ETHER, target.other.encode_input(1000))
    attempts = smuggling_encodings(allowed, forbidden)
    # the forbidden call alone is refused, so only the module's reading stands between it and the target
    refused = sessions.outcome(sessions.op(account, session_key, forbidden, mode="use_with_key"))
    assert "AA23" in refused and "ValueLimitExceeded" in refused, refused
    calls_before = target.calls()
    balance_before = chain.provider.get_balance(target.address)
    assert len(attempts) == 6
    for call_data in attempts:
        result = sessions.outcome(sessions.op(account, session_key, call_data=call_data))
        assert "AA23" in result and "MalformedExecution" in result, result
        with pytest.raises(ExecuteDecodeError):
            decode_execute(call_data)
    # the judged call alone, canonically encoded, runs
    assert sessions.outcome(sessions.op(account, session_key, allowed, batch=True)) == "ok"
    assert target.calls() - calls_before == 1
    assert chain.provider.get_balance(target.address) == balance_before


# ------------------------------------------------------------------------------------------------------
# 9. What an operation at the gas cap takes from the account
# ------------------------------------------------------------------------------------------------------


def test_an_operation_at_the_gas_cap_takes_at_most_the_cap_from_the_account(
    sessions, target, account, owner, session_key, chain
):
    """The cap bounds the prefund; what the EntryPoint then charges is the gas used, preVerificationGas in full and
    the 10 % penalty on unused execution gas, at the operation's price. A session key making every part of that as
    large as the cap lets it (a padded preVerificationGas, a callGasLimit it leaves unused, the priority fee equal to
    maxFeePerGas) takes no more than the cap from the account's balance and deposit together."""
    cap = 10**16
    grant(
        sessions,
        account,
        owner,
        session_key,
        Policy.call(target.address, "other(uint256 amount)"),
        max_gas_cost=cap,
    )
    limits = {"verification_gas_limit": 400_000, "call_gas_limit": 2_000_000, "pre_verification_gas": 500_000}
    fee = cap // sum(limits.values())
    call = Call.of(target.address, 0, target.other.encode_input(1))
    entry_point = sessions.h.entry_point

    def holdings() -> int:
        return chain.provider.get_balance(account) + int(entry_point.balanceOf(account))

    before = holdings()
    op = sessions.op(account, session_key, call, max_fee_per_gas=fee, max_priority_fee_per_gas=fee, **limits)
    sessions.run(op)
    lost = before - holdings()
    # preVerificationGas and the penalty on 2,000,000 mostly unused gas are charged, and the whole stays in the cap
    assert (500_000 + 150_000) * fee < lost <= cap
    over = sessions.op(
        account, session_key, call, max_fee_per_gas=fee + 1, max_priority_fee_per_gas=fee, **limits
    )
    assert "GasCostTooHigh" in sessions.outcome(over)
