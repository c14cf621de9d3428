"""A local ERC-4337 stack for demos, end-to-end tests and benchmarks: a real anvil node and a real Alto
bundler on 127.0.0.1, with the EntryPoint v0.7 at its canonical address and keyscope's contracts deployed.

Run it in the foreground with ``python -m keyscope.local``.
"""

from ..devnode import DepositInfo, get_deposit_info
from .deploy import Contracts, entry_point_code_matches
from .errors import (
    DeploymentError,
    LocalStackError,
    PortInUseError,
    ProcessStartError,
    StartupTimeoutError,
    ToolNotFoundError,
)
from .stack import LocalStack

__all__ = [
    "Contracts",
    "DeploymentError",
    "DepositInfo",
    "LocalStack",
    "LocalStackError",
    "PortInUseError",
    "ProcessStartError",
    "StartupTimeoutError",
    "ToolNotFoundError",
    "entry_point_code_matches",
    "get_deposit_info",
]
