"""Before an off-chain grant's first operation on a deployed account: what its ENABLE signature will meet.

The account must accept the owner's signature as the module will ask it, and the module must still accept the
session as granted (it may hold a session enabled since that conflicts with it); otherwise the bundler's refusal
(AA23) would look like a policy one.
"""

from __future__ import annotations

from .accounts import AccountKind
from .accounts.verify import unfunded_sender, verify_owner_signature
from .chain import Chain
from .errors import CallRevertedError, SessionError
from .grant import SessionGrant
from .module import enable_session_data
from .revert import decode_revert, describe_revert, grant_refusal_todo
from .rpc import JsonRpcError

__all__ = ["refuse_what_enabling_refuses", "verify_grant_owner_signature"]


def refuse_what_enabling_refuses(chain: Chain, grant: SessionGrant) -> bool:
    """Enable the session in a dry run (an ``eth_call`` of the module's ``enableSession`` from the account) and
    raise :class:`SessionError` for what the module would refuse when the operation's ENABLE signature enables it,
    which changed since the grant: a call or signing permission the key holds in another session enabled since
    (``PermissionAlreadyGranted``), the account's live permissions, a target installed as one of its modules. The
    bundler would refuse the operation (AA23). A dry run the node cannot make (not the module's revert) refuses
    nothing.

    Returns whether the dry run enabled the session without refusal (False when the node could not tell)."""
    try:
        chain.call(grant.module, enable_session_data(grant.session), sender=grant.account)
    except CallRevertedError as error:
        decoded = decode_revert(error.data)
        todo = grant_refusal_todo(decoded[0]) if decoded is not None else None
        if todo is None:
            return False
        raise SessionError(
            f"the module would refuse to enable session 0x{grant.session_id.hex()} on {grant.account} with its "
            f"first operation: {describe_revert(error.data)}, so the bundler would refuse the operation (AA23); "
            f"nothing was sent. {todo[0].upper()}{todo[1:]}",
            "0x" + grant.session_id.hex(),
        ) from None
    except JsonRpcError as error:
        if not unfunded_sender(error):
            raise
        return False  # a node that charges calls for gas runs none from an account without ETH: left to the bundler
    return True


def verify_grant_owner_signature(
    chain: Chain, kind: AccountKind, grant: SessionGrant, owner_signature: bytes
) -> None:
    """Raise :class:`~keyscope.errors.AccountSetupError` unless the deployed account accepts the owner's
    ``owner_signature`` of ``grant`` as the module will ask it (else the bundler's refusal would look like a policy
    one)."""
    digest = grant.session.enable_digest(grant.account, grant.epoch, grant.chain_id, grant.module)
    verify_owner_signature(
        chain,
        kind,
        grant.account,
        grant.module,
        digest,
        owner_signature,
        framed_by=grant.account_kind,
    )
