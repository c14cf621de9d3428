"""The owner's side in a browser: the consent page (a grant in words, signed in the owner's wallet), the
sessions dashboard (every session of an account, revoked from the wallet), and what they are built on.

* :class:`ConsentServer` -- serves both on 127.0.0.1; ``request_grant`` / ``request_permissions`` (ERC-7715)
  return a :class:`ConsentRequest` whose ``url`` the owner opens and whose ``wait()`` gives the checked grant.
* :func:`describe_session` -- a session in words, with warnings on dangerous grants.
* :func:`account_sessions` and :func:`prepare_revocation` -- the dashboard's data and the owner's revocation.
"""

from __future__ import annotations

from .describe import (
    KNOWN_FUNCTIONS,
    SESSION_PARTS,
    Facts,
    GrantDescription,
    GrantWarning,
    KnownFunction,
    PermissionWords,
    describe_session,
)
from .requests import ConsentDeclinedError, ConsentRequest, ConsentTimeoutError
from .server import ConsentServer
from .sessions import OwnerOperation, SessionView, account_sessions, prepare_revocation
from .tokens import ContractFacts, TokenFacts, contract_facts, format_amount
from .wallet import WalletAddress

__all__ = [
    "KNOWN_FUNCTIONS",
    "SESSION_PARTS",
    "ConsentDeclinedError",
    "ConsentRequest",
    "ConsentServer",
    "ConsentTimeoutError",
    "ContractFacts",
    "Facts",
    "GrantDescription",
    "GrantWarning",
    "KnownFunction",
    "OwnerOperation",
    "PermissionWords",
    "SessionView",
    "TokenFacts",
    "WalletAddress",
    "account_sessions",
    "contract_facts",
    "describe_session",
    "format_amount",
    "prepare_revocation",
]
