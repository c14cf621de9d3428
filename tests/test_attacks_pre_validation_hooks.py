"""A leaked session key against the account's pre-validation hooks: ERC-7579's module types 8 and 9.

Current ERC-7579 accounts (the reference interface's ``MODULE_TYPE_PREVALIDATION_HOOK_ERC1271`` = 8 and
``MODULE_TYPE_PREVALIDATION_HOOK_ERC4337`` = 9, installed and reported through ``isModuleInstalled`` by the reference
account, by Nexus from 1.2 on and by other modular wallets) install a pre-validation hook that runs before
every validator: it hands the validators (the owner's among them) the hash and signature they judge. Like every
module it keeps its configuration per calling account and takes the account's own calls to change it, so a session
that may call it from the account can reconfigure or remove it for the account (attack 52's reason for refusing a
grant on a module of the account), and a session signature it asks about as the verifier is one a module of the
account acts on (attack 85).

The module asked the account about validators, executors and hooks (types 1, 2 and 4), Safe's modules and the
fallback handler per selector, never about types 8 and 9; the SDK asked the same questions (and the targets
themselves about types 1 to 6), so a grant naming the account's pre-validation hook was enabled, and a session's
signature was valid for it. Here the account is ``OddModuleAnswers`` (contracts/test), set to say that one address
is its pre-validation hook of the type under test (and no module of any other type), as such an account says it:
the module is asked as the account (an ``eth_call`` of ``enableSession`` from it, and ``requireValidSignature``
naming it), and the SDK reads it as it reads any ERC-7579 account.
"""

from __future__ import annotations

from typing import Any

import ape
import pytest

from conftest import ETHER
from keyscope import Web3Chain
from keyscope.accounts.erc7579 import ERC7579AccountKind
from keyscope.accounts.modules import read_asking_modules
from keyscope.hexutil import keccak
from keyscope.session import Permission, Session, TypedDataPermission
from keyscope.signing import LocalSigner
from support.raw_call import enable_verdict

APPROVE = keccak(b"approve(address,uint256)")[:4]
PRE_VALIDATION_HOOK_TYPES = {8: "ERC-1271", 9: "ERC-4337"}


@pytest.fixture(scope="module", autouse=True)
def session_fixtures_first(sessions, module, entry_point, factory, bundler):
    """The session-scoped fixtures this module uses, made before its own: ape snapshots the chain per fixture scope
    and must not rebase them."""


@pytest.fixture
def hook() -> str:
    """The address the account says is its pre-validation hook (no code is needed: only the account is asked)."""
    return LocalSigner.generate().address


def account_with_hook(project: Any, deployer: Any, hook: str, module_type: int) -> Any:
    """An account-shaped contract that answers ``isModuleInstalled(module_type, hook, "")`` with a well-formed true
    and every other module question with a well-formed false, holding ether to pay for an ``eth_call`` it sends."""
    odd = project.OddModuleAnswers.deploy(sender=deployer)
    project.ForceFeed.deploy(odd.address, value=ETHER, sender=deployer)
    odd.answerEach([(module_type, hook, b"", odd.RETURN(), (1).to_bytes(32, "big"))], sender=deployer)
    return odd


@pytest.mark.parametrize(
    "module_type", sorted(PRE_VALIDATION_HOOK_TYPES), ids=PRE_VALIDATION_HOOK_TYPES.values()
)
def test_a_grant_or_a_verifier_that_is_the_account_s_pre_validation_hook_is_refused(
    sessions, project, deployer, chain, hook, session_key, module_type
):
    """The account says ``hook`` is its pre-validation hook. A session granted a call on it (``approve`` here, any
    selector: the hook takes the account's own calls to configure it) is refused when enabled, as for a validator,
    an executor or a hook (``PermissionTargetIsModule`` naming the type); so is a typed-data permission in its domain
    (``ForbiddenSigningDomain``), and a session signature it asks about as the verifier (``SignatureSenderForbidden``,
    before the signature is read). The SDK refuses first: its reads of the account name the hook and its type. A
    target the account does not name stays grantable. Fails where the module or the SDK does not ask about the
    type: the call grant and the signing grant are enabled, and the verifier's question reaches the signature
    (``MalformedSignature`` for the empty one here)."""
    odd = account_with_hook(project, deployer, hook, module_type)
    call = Session(session_key=session_key.address, permissions=(Permission(target=hook, selector=APPROVE),))
    assert enable_verdict(sessions, odd.address, call) == (
        f"PermissionTargetIsModule(permissionIndex=0, target={hook}, moduleType={module_type})"
    )
    signing = Session(
        session_key=session_key.address,
        typed_data_permissions=(
            TypedDataPermission(
                domain_fields=0x09, name="Hook", verifying_contract=hook, contents_name="Approve",
                contents_type="Approve(address owner)",
            ),
        ),
    )  # fmt: skip
    assert enable_verdict(sessions, odd.address, signing) == (
        f"ForbiddenSigningDomain(index=0, verifyingContract={hook})"
    )
    with ape.reverts(sessions.module.SignatureSenderForbidden, sender=hook):
        sessions.module.requireValidSignature(odd.address, hook, bytes(32), b"")

    found = read_asking_modules(
        Web3Chain(chain.provider.web3), ERC7579AccountKind(), odd.address, [hook], fallbacks=[(hook, APPROVE)]
    ).verdict()
    assert found is not None and found.target == hook, found
    assert PRE_VALIDATION_HOOK_TYPES[module_type] in found.module, found

    other = LocalSigner.generate().address
    elsewhere = Session(
        session_key=session_key.address, permissions=(Permission(target=other, selector=APPROVE),)
    )
    assert enable_verdict(sessions, odd.address, elsewhere) == "ok"
