"""The premises of a session's bounds on an ERC-7579 account keyscope has no adapter of its own for, asked where the
owner's grant did not ask them yet (attacks 417 onwards).

``owner.grant`` asks such an account, before the owner signs, whether it hands the EntryPoint the module's validation
data as it is and the module its caller as ``sender`` (attacks 393 to 397). The owner's install of the module did not:
an account taking its validators' refusal for a yes got the module installed, after which anyone's operation naming
it runs any call, no session granted. Through a real anvil and Alto, as the grant's questions are asked.
"""

from __future__ import annotations

import pytest

from keyscope.errors import AccountSetupError
from keyscope.local import LocalStack
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
