"""The premises of a session's bounds on an ERC-7579 account keyscope has no adapter of its own for, asked where the
owner's grant did not ask them yet (attacks 417 onwards).

``owner.grant`` asks such an account, before the owner signs, whether it hands the EntryPoint the module's validation
data as it is and the module its caller as ``sender`` (attacks 393 to 397). The owner's install of the module did not:
an account taking its validators' refusal for a yes got the module installed, after which anyone's operation naming
it runs any call, no session granted. Through a real anvil and Alto, as the grant's questions are asked.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keyscope import Network, Policy, SessionKey
from keyscope.errors import AccountSetupError, TargetWarning
from keyscope.execution import Call, encode_execute
from keyscope.hexutil import keccak
from keyscope.local import LocalStack
from keyscope.owner import Owner
from keyscope.policy import arg
from keyscope.signing import LocalSigner
from keyscope.userop import UserOperation
from support.consent_fixtures import usdc_fixture  # noqa: F401 (fixture)
from support.counting_chain import CountingChain
from support.sdk import (
    install_asking_nothing,
    sdk_owner,  # noqa: F401 (fixture)
)
from support.variant_accounts import entry_point_nonce, stack_fixture  # noqa: F401 (stack_fixture: the stack)
from test_attacks_review_j import foreign_account


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "answered"),
    [
        ("FailureMaskingERC7579Account", "which is no refusal"),
        ("WindowDroppingERC7579Account", "validUntil 0 (no end)"),
    ],
)
def test_install_sessions_refuses_an_account_not_handing_on_its_validators_answer(
    stack: LocalStack, name: str, answered: str
) -> None:
    """Attack 417. ``owner.install_sessions()`` on an account that clears its validators' failure bit
    (``FailureMaskingERC7579Account``: with the module installed, anyone's operation naming it mints, attack 397's
    premise test) or drops their window (``WindowDroppingERC7579Account``, attack 393) is refused before anything
    is signed or sent, the account asked through its owner's validator as a grant before the install is; the
    module stays uninstalled. Fails without the question: the install is sent and the module installed."""
    account, _, _, owner = foreign_account(stack, name)
    lane = owner.kind.nonce_key(None)
    with pytest.raises(AccountSetupError) as refused:
        owner.install_sessions()
    said = str(refused.value)
    assert answered in said and "validation data as it is" in said, said
    assert "Nothing was sent: do not install the session module on this account" in said, said
    assert owner.kind.owner_validator in said, said  # the validator asked in the module's place
    assert refused.value.account == account
    assert entry_point_nonce(stack, account, lane) == 0  # no operation sent
    assert owner.supports_sessions() is False


@pytest.mark.e2e
def test_the_owner_s_own_install_call_is_asked_what_install_sessions_asks(stack: LocalStack) -> None:
    """Attack 440. Attack 417's questions were asked by ``owner.install_sessions()`` only: the same install made by
    the owner's own call, ``owner.execute(installModule(1, module, ...))``, was sent to an account that takes its
    validators' refusal for a yes, after which anyone's operation naming the module runs any call. ``build`` (which
    ``execute`` calls) now asks them of any call installing the module: alone, in a batch, with the module's word
    carrying dirty upper bytes (which an account that does not check them reads as the module), or inside the
    account's own ``execute`` called by the account. Fails without the question: the first install is sent and the
    module installed."""
    account, _, net, owner = foreign_account(stack, "FailureMaskingERC7579Account")
    lane = owner.kind.nonce_key(None)
    install = owner.kind.install_validator_call(account, net.module)
    dirty = Call(install.target, 0, install.data[:36] + b"\xff" * 12 + install.data[48:])
    nested = Call(
        account, 0, encode_execute([Call(account, 0, b""), install])
    )  # the account's execute of itself
    for calls in (install, [Call(account, 0, b""), install], [dirty], nested):
        with pytest.raises(AccountSetupError) as refused:
            owner.execute(calls)
        said = str(refused.value)
        assert "which is no refusal" in said and "validation data as it is" in said, said
        assert "Nothing was sent: do not install the session module on this account" in said, said
    assert entry_point_nonce(stack, account, lane) == 0  # no operation sent
    assert owner.supports_sessions() is False


FACTS = {
    keccak(b"decimals()")[:4]: "decimals()",
    keccak(b"symbol()")[:4]: "symbol()",
    keccak(b"name()")[:4]: "name()",
    keccak(b"supportsInterface(bytes4)")[:4]: "supportsInterface(bytes4)",
    keccak(b"getApproved(uint256)")[:4]: "getApproved(uint256)",
}
"""What a grant reads of a token to describe it: its decimals, names and ERC-165 answer, and whether it answers a
collection's ``getApproved`` too (a hybrid)."""


def test_one_grant_reads_each_token_s_facts_once(
    net: Network, owner: Owner, usdc: Any, project: Any, deployer: Any
) -> None:
    """A grant on a token the account already approved a target of the grant for (``usdc.approve(router)``) warns
    of the standing approval at the token's decimals (attack 357) and asks whether the token's ``approve`` numbers
    may be token ids (attack 378): both read the token's decimals, names and ERC-165 answer, each once per grant."""
    router = project.RecordingTarget.deploy(sender=deployer)
    approve = keccak(b"approve(address,uint256)")[:4] + abi_encode(
        ["address", "uint256"], [router.address, 2**256 - 1]
    )
    owner.execute(Call(usdc.address, 0, approve)).wait()  # the account is created, with a standing approval
    counting = CountingChain(net.chain)
    net.chain = counting
    permissions = [
        Policy.call(router.address, "other(uint256 amount)"),
        Policy.call(
            usdc.address,
            "approve(address spender, uint256 amount)",
            rules=[arg("spender") == router.address, arg("amount") <= 5 * 10**6],
        ),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        owner.grant(SessionKey.generate(), permissions)
    assert any(
        issubclass(w.category, TargetWarning)
        and "already holds" in str(w.message)
        and "USDC" in str(w.message)
        for w in caught
    ), [str(w.message) for w in caught]
    read = Counter(FACTS[data[:4]] for to, data in counting.calls if to == usdc.address and data[:4] in FACTS)
    assert read and set(read.values()) == {1}, read


VALIDATE_USER_OP = keccak(
    b"validateUserOp((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes),bytes32,uint256)"
)[:4]
"""ERC-4337 v0.7's ``validateUserOp`` selector."""


def _validation(stack: LocalStack, owner: Owner) -> int:
    """The account's ``validateUserOp`` answer, asked from the EntryPoint with the module's own code, for an
    operation naming the session module whose signature is no session key's."""
    module = stack.module
    op = UserOperation(
        sender=owner.account,
        nonce=owner.kind.nonce_key(module) << 64,
        call_data=encode_execute(Call.of(stack.nft, 0, b"")),
        signature=owner.kind.validator_user_op_signature(module, LocalSigner.generate().sign_hash(bytes(32))),
    )
    data = VALIDATE_USER_OP + abi_encode(
        ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)", "bytes32", "uint256"],
        [op.pack().as_tuple(), keccak(b"any operation"), 0],
    )
    answer = owner.network.chain.call(owner.account, data, sender=stack.entry_point)
    return int.from_bytes(answer[:32], "big")


@pytest.mark.e2e
def test_an_account_spotting_the_probe_s_code_by_its_hash_is_refused_on_its_validator_s_own_answer(
    stack: LocalStack,
) -> None:
    """Attack 418. The probe gives the validator's address other code for one ``eth_call``; an account comparing its
    validator's code hash with the one it had at the install (``OverrideSpottingERC7579Account``: it masks its
    validators' refusals, as attack 397's account does, unless the hash differs) answers the probe as a correct
    account does. The refusal is now asked with the validator's own code too (an operation signed by a key nobody
    holds): the install is refused before anything is sent, and so is a grant on it once the module is installed
    by the owner's own operation, the module's real refusal coming back as a success; OpenZeppelin's account as it
    comes, the control, hands it on. Fails without that question: the install and the grant go through."""
    account, _, _, owner = foreign_account(stack, "OverrideSpottingERC7579Account")
    lane = owner.kind.nonce_key(None)
    with pytest.raises(AccountSetupError) as refused:
        owner.install_sessions()
    said = str(refused.value)
    assert "running its own code" in said and "which is no refusal" in said, said
    assert "Nothing was sent" in said and owner.kind.owner_validator in said, said
    assert entry_point_nonce(stack, account, lane) == 0

    # a wallet asking nothing installs the module (here: the owner's operation with the install's questions left out,
    # which keyscope asks of any operation installing it, attack 440)
    install_asking_nothing(owner, stack.module)
    with pytest.raises(AccountSetupError) as refused:
        owner.grant(SessionKey.generate(), [Policy.call(stack.nft, "safeMint(address to)")])
    said = str(refused.value)
    assert "running its own code" in said and stack.module in said and "Nothing was signed" in said, said
    assert _validation(stack, owner) == 0  # the module's refusal, masked
    _, _, _, control = foreign_account(stack, "PlainERC7579Account")
    installed = control.install_sessions()
    assert installed is not None
    installed.wait()
    assert _validation(stack, control) == 1
