"""Deploy, fund and stake a ``SponsorPaymaster`` over plain JSON-RPC, and read its state.

Transactions go out with ``eth_sendTransaction`` from an account the node has unlocked (a development
node's accounts), through :mod:`keyscope.devnode`.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.exceptions import DecodingError

from ..devnode import (
    ETHER,
    DepositInfo,
    add_stake,
    deploy_contract,
    get_code,
    get_deposit_info,
    read_address,
    send_transaction,
)
from ..errors import ConfigurationError, DeploymentError
from ..hexutil import to_address
from ..rpc import JsonRpcClient, JsonRpcError
from ..selectors import DEPOSIT, ENTRY_POINT, OWNER, SIGNER
from ..urls import mask_url

__all__ = ["PaymasterState", "deploy_sponsor_paymaster", "paymaster_state"]


@dataclass(frozen=True)
class PaymasterState:
    """A ``SponsorPaymaster``'s signer and owner, and its deposit and stake at the EntryPoint."""

    address: str
    signer: str
    owner: str
    deposit_info: DepositInfo

    @property
    def deposit(self) -> int:
        """The deposit that pays for sponsored operations, in wei."""
        return self.deposit_info.deposit


def paymaster_state(rpc: JsonRpcClient, paymaster: str, entry_point: str) -> PaymasterState:
    """Read the signer, owner, deposit and stake of the paymaster at ``paymaster``.

    Raises :class:`~keyscope.errors.ConfigurationError` when ``paymaster`` or ``entry_point`` has no code on the
    node's chain (an address of another chain, or a chain reset since), or when ``paymaster`` does not answer
    ``signer()``, ``owner()`` and ``entryPoint()`` as keyscope's ``SponsorPaymaster`` does, or serves another
    EntryPoint than ``entry_point``."""
    paymaster = to_address(paymaster, name="paymaster")
    entry_point = to_address(entry_point, name="entry_point")
    for address, what, deploy in (
        (paymaster, "paymaster", "deploy a SponsorPaymaster there (docs/sponsorship.md)"),
        (entry_point, "EntryPoint", "give --entry-point for this chain"),
    ):
        if not get_code(rpc, address):
            chain_id = int(rpc.request("eth_chainId"), 16)
            raise ConfigurationError(
                f"no contract at the {what} address {address} on chain {chain_id} (node {mask_url(rpc.url)}): "
                f"check the address and the node, or {deploy}"
            )
    try:
        signer = read_address(rpc, paymaster, SIGNER)
        owner = read_address(rpc, paymaster, OWNER)
        served = read_address(rpc, paymaster, ENTRY_POINT)
    except (DecodingError, JsonRpcError) as error:
        raise ConfigurationError(
            f"the contract at {paymaster} does not answer signer(), owner() and entryPoint() as keyscope's "
            f"SponsorPaymaster does ({type(error).__name__}: {error}): give the address of a SponsorPaymaster"
        ) from None
    if served != entry_point:
        # its deposit and stake are at the EntryPoint it serves; operations of another EntryPoint never reach it
        raise ConfigurationError(
            f"the paymaster {paymaster} serves the EntryPoint {served}, not {entry_point}: give --entry-point "
            f"{served}, or the address of the paymaster deployed for {entry_point}"
        )
    try:
        deposit_info = get_deposit_info(rpc, entry_point, paymaster)
    except (DecodingError, JsonRpcError) as error:
        raise ConfigurationError(
            f"the contract at {entry_point} does not answer getDepositInfo(address) as an EntryPoint does "
            f"({type(error).__name__}: {error}): give the EntryPoint's address"
        ) from None
    return PaymasterState(address=paymaster, signer=signer, owner=owner, deposit_info=deposit_info)


def deploy_sponsor_paymaster(
    rpc: JsonRpcClient,
    sender: str,
    *,
    entry_point: str,
    signer: str,
    owner: str | None = None,
    deposit: int = 10 * ETHER,
    stake: int = ETHER,
    unstake_delay: int = 86_400,
) -> str:
    """Deploy a ``SponsorPaymaster`` for ``entry_point`` honouring ``signer`` (owned by ``owner``, default
    ``sender``), deposit ``deposit`` wei and stake ``stake`` wei for ``unstake_delay`` seconds, all from
    ``sender``; return its address after checking its state."""
    owner = to_address(owner or sender, name="owner")
    if stake and owner != to_address(sender):
        raise DeploymentError(
            f"only the owner {owner} can stake the paymaster: deploy it from {owner}, or stake 0"
        )
    paymaster = deploy_contract(
        rpc,
        sender,
        "SponsorPaymaster",
        ["address", "address", "address"],
        [to_address(entry_point), owner, to_address(signer, name="signer")],
    )
    if deposit:
        send_transaction(
            rpc, sender, to=paymaster, data=DEPOSIT, value=deposit, what="SponsorPaymaster.deposit"
        )
    if stake:
        add_stake(rpc, sender, paymaster, stake=stake, unstake_delay=unstake_delay, what="SponsorPaymaster")
    state = paymaster_state(rpc, paymaster, entry_point)
    if (
        state.signer != to_address(signer)
        or state.deposit < deposit
        or (stake and not state.deposit_info.staked)
    ):
        raise DeploymentError(f"the paymaster {paymaster} is not set up as asked after deployment: {state}")
    return paymaster
