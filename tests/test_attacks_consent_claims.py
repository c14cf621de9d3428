"""The consent page trusting what a contract or a dapp's label says of itself, where the grant's signed fields say
otherwise: a charging paymaster that answers the sponsor's typehash, and a function label that collides with the
selector of a function the page knows by selector (ERC-20 ``approve``, ``transfer``). Read on ape's py-evm chain, as
the page reads the chain."""

from __future__ import annotations

from keyscope import Policy, arg
from keyscope.hexutil import keccak, to_address
from keyscope.session import ArgType, Condition, Permission, Rule
from keyscope.sponsor.paymaster_data import SPONSORSHIP_TYPEHASH
from support.consent_fixtures import usdc_fixture, words_fixture  # noqa: F401 (fixtures)

ETHER = 10**18
SPENDER = to_address("0x" + "5e" * 20)


def _claiming_forwarder(implementation: str) -> bytes:
    """Creation code of a contract that answers ``SPONSORSHIP_TYPEHASH()`` with keyscope's sponsor typehash, as
    ``SponsorPaymaster`` does, and runs every other call as ``implementation``'s code (DELEGATECALL): whatever
    ``implementation`` is, with one more claim."""
    selector = keccak(b"SPONSORSHIP_TYPEHASH()")[:4]
    forward = (
        bytes.fromhex("36600060003760006000366000")  # copy calldata; retSize, retOffset, argsSize, argsOffset
        + b"\x73"
        + bytes.fromhex(implementation[2:])
        + bytes.fromhex("5af43d600060003e")  # GAS DELEGATECALL, copy the return data
    )
    head_size = 16  # selector test and jump, below
    ok = head_size + len(forward) + 8  # after "PUSH2 ok JUMPI RETURNDATASIZE PUSH1 0 REVERT"
    claim = ok + 5  # after "JUMPDEST RETURNDATASIZE PUSH1 0 RETURN"
    head = (
        bytes.fromhex("60003560e01c63") + selector + bytes.fromhex("14") + b"\x61" + claim.to_bytes(2, "big")
    )
    head += b"\x57"
    assert len(head) == head_size
    runtime = (
        head
        + forward
        + b"\x61"
        + ok.to_bytes(2, "big")
        + bytes.fromhex("573d6000fd")  # JUMPI; RETURNDATASIZE PUSH1 0 REVERT
        + bytes.fromhex("5b3d6000f3")  # ok: JUMPDEST RETURNDATASIZE PUSH1 0 RETURN
        + bytes.fromhex("5b7f")  # claim: JUMPDEST PUSH32
        + SPONSORSHIP_TYPEHASH
        + bytes.fromhex("60005260206000f3")  # MSTORE at 0, RETURN 32 bytes
    )
    assert runtime[ok] == 0x5B and runtime[claim] == 0x5B
    size = len(runtime)
    init = bytes.fromhex("61") + size.to_bytes(2, "big") + bytes.fromhex("8061")
    init += (13).to_bytes(2, "big") + bytes.fromhex("6000396000f3")
    assert len(init) == 13
    return init + runtime


def test_a_charging_paymaster_that_says_it_is_keyscope_s_sponsor_is_still_warned_about(
    words, usdc, project, deployer, entry_point, chain, accounts
) -> None:
    """Attack 253's defence asks a listed paymaster ``SPONSORSHIP_TYPEHASH()`` and takes the right answer for "keyscope's
    SponsorPaymaster, which charges the account nothing". Any contract can answer it: here an ERC-20 token paymaster
    (the test victim that charges the account in postOp from its approval) with that one view added. Listed by the
    dapp's grant, it lifts the session's gas cap for the operations naming it, so the key may make it charge the
    account any amount in tokens; the page showed no danger, as for the real sponsor (and ``owner.grant`` issued no
    TargetWarning: the same check)."""
    victim = project.TokenPaymaster.deploy(entry_point, usdc, ETHER, accounts[9], sender=deployer)
    tx = chain.provider.network.ecosystem.create_transaction(
        data=_claiming_forwarder(victim.address), sender=deployer.address, gas_limit=300_000
    )
    charging = to_address(deployer.call(tx).contract_address)
    as_token_paymaster = project.TokenPaymaster.at(charging)
    assert as_token_paymaster.token() == usdc.address  # it runs the token paymaster's code
    assert as_token_paymaster.tokensPerWei() == ETHER
    assert (
        chain.provider.web3.eth.call(
            {"to": charging, "data": "0x" + keccak(b"SPONSORSHIP_TYPEHASH()")[:4].hex()}
        )
        == SPONSORSHIP_TYPEHASH
    )

    send = Policy.call(usdc, "transfer(address to, uint256 amount)", rules=[arg("to") == SPENDER])
    described = words(send, paymasters=(charging,))
    dangers = [w.text for w in described.warnings if w.level == "danger"]
    assert any(
        text.startswith(f"{charging} is listed as a paymaster the gas cap does not bind") for text in dangers
    ), dangers


def test_a_known_function_is_shown_as_itself_whatever_colliding_label_the_request_gives(words, usdc) -> None:
    """A function's label is shown when it hashes to the permission's selector, but four bytes collide: the
    well-known ``sign_szabo_bytecode(bytes16,uint128)`` is ERC-20 ``approve``'s 0x095ea7b3, and
    ``transfer(bytes4[9],bytes5[6],int48[11])`` is ``transfer(address,uint256)``'s 0xa9059cbb. A dapp (or anyone
    grinding 2**32 names for ``claimAirdrop_…(address,uint256)``) labels an approval so: the page said "May call
    sign_szabo_bytecode(bytes16 spender, uint128 amount)" on the token, never "approve", while its warnings (by
    selector) and the module judge an ``approve``; a label with more arguments than the known function made the
    describer fail (IndexError: a 500 for the page)."""
    approve = keccak(b"approve(address,uint256)")[:4]
    transfer = keccak(b"transfer(address,uint256)")[:4]
    assert keccak(b"sign_szabo_bytecode(bytes16,uint128)")[:4] == approve
    assert keccak(b"transfer(bytes4[9],bytes5[6],int48[11])")[:4] == transfer

    disguised = Permission(
        target=usdc.address, selector=approve, function="sign_szabo_bytecode(bytes16,uint128)"
    )
    (shown,) = words(disguised).permissions
    assert shown.function == "approve(address spender, uint256 amount)", shown.function

    longer = Permission(
        target=usdc.address, selector=transfer, function="transfer(bytes4[9],bytes5[6],int48[11])"
    )
    (shown,) = words(longer).permissions
    assert shown.function == "transfer(address to, uint256 amount)", shown.function


def test_a_token_amount_ruled_as_a_uint160_is_shown_as_an_amount_not_as_an_address(words, usdc) -> None:
    """A uint160 rule has the type code of an address, and the page showed a uint160 rule's values as addresses
    whenever the argument's own type was another: a grant request (made without the SDK) rules ``approve``'s
    ``uint256 amount`` as a uint160 ``<= 2**160 - 1``, a bound of some 1.46e42 USDC (an unlimited allowance in
    effect), and the page read "the uint160 at byte 32 of the arguments must be at most 0xFFfF…FfF": an address,
    no token amount, no base units, no danger. The module compares the whole word as a number."""
    approve = keccak(b"approve(address,uint256)")[:4]
    bound = 2**160 - 1
    permission = Permission(
        target=usdc.address,
        selector=approve,
        function="approve(address spender,uint256 amount)",
        rules=(
            Rule(condition=Condition.EQUAL, offset=0, arg_type=ArgType.ADDRESS, values=(int(SPENDER, 16),)),
            Rule(
                condition=Condition.LESS_THAN_OR_EQUAL,
                offset=32,
                arg_type=ArgType.uint_of(160),
                values=(bound,),
            ),
        ),
    )
    (shown,) = words(permission).permissions
    amount_rule = shown.rules[1]
    assert to_address(bound.to_bytes(20, "big")) not in amount_rule, amount_rule
    assert f"{bound:,} base units" in amount_rule, amount_rule


PERMIT2 = to_address("0x000000000022D473030F116dDEE9F6B43aC78BA3")


def test_a_permit2_allowance_to_any_spender_is_a_danger_as_an_erc20_one_is(words) -> None:
    """Permit2's ``approve(address token, address spender, uint160 amount, uint48 expiration)`` is ERC-20
    ``approve`` one level up: most accounts that trade have approved Permit2 for every token they hold (an unlimited
    ERC-20 allowance, as Uniswap asks), so a session calling it as the account can let any spender take any of those
    tokens with Permit2's ``transferFrom``. The page warned in red of an ERC-20 ``approve`` to any spender or without
    a bound, and said nothing of this one: "May call approve(address token, address spender, uint160 amount, uint48
    expiration)", "any arguments: no rule limits them", no warning (the function is named, so not even the caution
    of a function known only by its selector)."""
    selector = keccak(b"approve(address,address,uint160,uint48)")[:4]
    open_approval = Permission(
        target=PERMIT2,
        selector=selector,
        function="approve(address token,address spender,uint160 amount,uint48 expiration)",
    )
    dangers = [w.text for w in words(open_approval).warnings if w.level == "danger"]
    assert any("ANY spender" in text for text in dangers), dangers
    assert any("UNLIMITED" in text for text in dangers), dangers
    # Permit2 reads an amount of 2**160 - 1 as an allowance that never runs down: a bound there bounds nothing
    capped = Permission(
        target=PERMIT2,
        selector=selector,
        function="approve(address token,address spender,uint160 amount,uint48 expiration)",
        rules=(
            Rule(condition=Condition.EQUAL, offset=32, arg_type=ArgType.ADDRESS, values=(int(SPENDER, 16),)),
            Rule(
                condition=Condition.LESS_THAN_OR_EQUAL,
                offset=64,
                arg_type=ArgType.uint_of(160),
                values=(2**160 - 1,),
            ),
        ),
    )
    dangers = [w.text for w in words(capped).warnings if w.level == "danger"]
    assert not any("ANY spender" in text for text in dangers), dangers
    assert any("UNLIMITED" in text for text in dangers), dangers


def test_keyscope_s_sponsor_is_known_by_its_code_and_one_changed_byte_is_not(
    project, deployer, entry_point, chain, net
) -> None:
    """Attack 270's defence: a sponsor is known by its runtime code, with only its immutables' blanks filled as its
    constructor filled them (two sponsors of different EntryPoints and signers are both known); the same code with
    one byte changed outside those blanks, put at another address, is not, nor is a contract without code."""
    from keyscope.targets import _sponsor_runtime, is_keyscope_sponsor

    node = net.chain
    first = project.SponsorPaymaster.deploy(entry_point, deployer, deployer, sender=deployer).address
    second = project.SponsorPaymaster.deploy(SPENDER, SPENDER, deployer, sender=deployer).address
    assert is_keyscope_sponsor(node, first) and is_keyscope_sponsor(node, second)
    code = bytearray(chain.provider.web3.eth.get_code(first))
    _, blanks = _sponsor_runtime()
    outside = next(i for i in range(100, len(code)) if not any(b <= i < b + 32 for b in blanks))
    code[outside] ^= 0x01
    init = (
        bytes.fromhex("61") + len(code).to_bytes(2, "big") + bytes.fromhex("8061") + (13).to_bytes(2, "big")
    )
    init += bytes.fromhex("6000396000f3")  # CODECOPY the runtime after these 13 bytes, RETURN it
    tx = chain.provider.network.ecosystem.create_transaction(
        data=init + bytes(code), sender=deployer.address, gas_limit=3_000_000
    )
    altered = to_address(deployer.call(tx).contract_address)
    assert chain.provider.web3.eth.get_code(altered) == bytes(code)
    assert not is_keyscope_sponsor(node, altered)
    assert not is_keyscope_sponsor(node, to_address("0x" + "a2" * 20))
