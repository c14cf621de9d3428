"""Gas sponsorship: the ``SponsorPaymaster`` contract's off-chain half.

* :mod:`~keyscope.sponsor.paymaster_data`: the digest the sponsor signs and the ``paymasterData`` layout;
* :class:`SponsorshipPolicy`: which accounts, contracts and functions are sponsored, the per-account
  budget and how long a signature is valid;
* :class:`Sponsor` and :class:`SponsorServer`: an ERC-7677 paymaster service (``pm_getPaymasterStubData``,
  ``pm_getPaymasterData``) over JSON-RPC on 127.0.0.1; ``python -m keyscope.sponsor`` runs one;
* :class:`LocalSponsor`: a paymaster deployed, funded and staked on a running
  :class:`~keyscope.local.LocalStack`, with its service.

Any ERC-7677 service works with the SDK: ``keyscope.connect(..., paymaster=url)``.
"""

from .budget import BudgetLedger
from .deploy import PaymasterState, deploy_sponsor_paymaster, paymaster_state
from .errors import BUDGET_EXHAUSTED, INVALID_PARAMS, METHOD_NOT_FOUND, NOT_SPONSORED, SponsorshipRefused
from .local import LocalSponsor
from .paymaster_data import (
    PAYMASTER_DATA_LENGTH,
    SponsorshipData,
    decode_paymaster_data,
    encode_paymaster_data,
    sign_sponsorship,
    sponsorship_hash,
    sponsorship_init_code_hash,
)
from .policy import SponsorshipPolicy
from .server import SponsorServer
from .service import ChainClock, Sponsor, chain_clock

__all__ = [
    "BUDGET_EXHAUSTED",
    "INVALID_PARAMS",
    "METHOD_NOT_FOUND",
    "NOT_SPONSORED",
    "PAYMASTER_DATA_LENGTH",
    "BudgetLedger",
    "ChainClock",
    "LocalSponsor",
    "PaymasterState",
    "Sponsor",
    "SponsorServer",
    "SponsorshipData",
    "SponsorshipPolicy",
    "SponsorshipRefused",
    "chain_clock",
    "decode_paymaster_data",
    "deploy_sponsor_paymaster",
    "encode_paymaster_data",
    "paymaster_state",
    "sign_sponsorship",
    "sponsorship_hash",
    "sponsorship_init_code_hash",
]
