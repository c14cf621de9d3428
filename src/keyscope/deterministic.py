"""The same addresses on every chain: keyscope's contracts through the deterministic deployment proxy.

The deterministic deployment proxy (``0x4e59b44847b379578588920ca78fbf26c0b4956c``, put on most chains by one
keyless transaction) creates a contract with ``CREATE2`` from the calldata ``salt (32 bytes) ‖ init code``, at

    keccak256(0xff ‖ proxy ‖ salt ‖ keccak256(init code))[12:]

which is the same on every chain for the same salt and init code. The EntryPoint v0.7 is at
``0x0000000071727De22E5E9d8BAf0edAc6f37da032`` that way; keyscope's contracts use :data:`KEYSCOPE_SALT`:

=========================  =====================================================================================
contract                   init code: creation bytecode (the package's artefact) ‖ constructor arguments
=========================  =====================================================================================
``SessionKeyValidator``    none
``KeyscopeAccountFactory`` ``(entryPoint, admin)``; its constructor creates the account implementation (its
                           first ``CREATE``, nonce 1), which is therefore at the same address everywhere too
``SponsorPaymaster``       ``(entryPoint, owner, signer)``
=========================  =====================================================================================

Constructor arguments are part of the init code: for the same addresses, every chain gets the canonical
EntryPoint, the same ``admin`` (the factory's owner, who manages its stake and owns the paymaster) and the same
paymaster signer. Nothing chain-specific goes in: the factory learns its implementation by creating it, and the
chain id is read at run time (the EIP-712 domains cache it in an immutable written by the constructor, which
does not change the init code). The addresses also follow the contracts' bytecode: they belong to one release
of keyscope's artefacts.

An address with code proves the init code: nothing but the proxy, called with this salt and this init code,
can create a contract there. :func:`deploy_deterministic` therefore checks the proxy's own code, then that
every address has code, then reads back the factory's immutables and the stakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from .accounts.detect import account_id
from .accounts.keyscope_account import KeyscopeAccountKind
from .artifacts import (
    DETERMINISTIC_DEPLOYER,
    ENTRY_POINT_V07,
    ENTRY_POINTS,
    contract_artifact,
    entry_point_artifact,
)
from .chain import Chain
from .devnode import DepositInfo, create_address
from .entrypoint import canonical_entry_point_version
from .errors import BadInputError, CallRevertedError, DeploymentError
from .hexutil import keccak, to_address, to_bytes
from .local.deploy import entry_point_code_matches
from .selectors import ADD_STAKE, DEPOSIT, ENTRY_POINT, GET_DEPOSIT_INFO, OWNER, SIGNER

__all__ = [
    "DETERMINISTIC_DEPLOYER_CODE",
    "KEYSCOPE_SALT",
    "DeterministicContract",
    "DeterministicDeployment",
    "DeterministicPlan",
    "Send",
    "create2_address",
    "deploy_deterministic",
    "deterministic_plan",
    "verify_deterministic",
]

KEYSCOPE_SALT = keccak(b"keyscope")
"""The ``CREATE2`` salt of keyscope's contracts: ``keccak256("keyscope")``."""

DETERMINISTIC_DEPLOYER_CODE = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f5801515"
    "6039578182fd5b8082525050506014600cf3"
)
"""The runtime code of the deterministic deployment proxy, as its keyless transaction puts it on every chain."""

Send = Callable[[str, bytes, int, str], None]
"""``send(to, data, value, what)``: send a transaction from the deployer and wait for it; raise if it failed
(``what`` names it in the message)."""

_ACCOUNT_IMPLEMENTATION = keccak(b"accountImplementation()")[:4]


def create2_address(
    init_code: bytes, salt: bytes = KEYSCOPE_SALT, deployer: str = DETERMINISTIC_DEPLOYER
) -> str:
    """Where ``deployer`` (by default the deterministic deployment proxy) creates ``init_code`` with ``salt``."""
    if len(salt) != 32:
        raise BadInputError(f"a CREATE2 salt is 32 bytes, got {len(salt)}")
    digest = keccak(b"\xff" + to_bytes(to_address(deployer), length=20) + salt + keccak(init_code))
    return to_address(digest[12:])


@dataclass(frozen=True)
class DeterministicContract:
    """One contract of the plan: its name, its init code (creation bytecode and constructor arguments) and the
    address the proxy creates it at."""

    name: str
    init_code: bytes
    address: str


@dataclass(frozen=True)
class DeterministicPlan:
    """keyscope's contracts for one set of constructor arguments: the same addresses on every chain."""

    entry_point: str
    admin: str
    paymaster_signer: str | None
    module: DeterministicContract
    factory: DeterministicContract
    paymaster: DeterministicContract | None
    salt: bytes = KEYSCOPE_SALT

    @property
    def account_implementation(self) -> str:
        """The account implementation the factory creates in its constructor (its first ``CREATE``)."""
        return create_address(self.factory.address, 1)

    @property
    def contracts(self) -> list[DeterministicContract]:
        """The contracts to deploy, in order."""
        return [self.module, self.factory, *([self.paymaster] if self.paymaster is not None else [])]


def _contract(name: str, types: list[str], args: list[Any], salt: bytes) -> DeterministicContract:
    init_code = to_bytes(contract_artifact(name)["bytecode"]) + (abi_encode(types, args) if types else b"")
    return DeterministicContract(name, init_code, create2_address(init_code, salt))


def deterministic_plan(
    admin: str,
    *,
    paymaster_signer: str | None = None,
    entry_point: str = ENTRY_POINT_V07,
    salt: bytes = KEYSCOPE_SALT,
) -> DeterministicPlan:
    """The session module, the account factory (owned by ``admin``) and, with ``paymaster_signer``, the
    ``SponsorPaymaster`` (owned by ``admin``, honouring ``paymaster_signer``), for ``entry_point``."""
    admin = to_address(admin, name="admin")
    entry_point = to_address(entry_point, name="entry_point")
    signer = to_address(paymaster_signer, name="paymaster signer") if paymaster_signer else None
    paymaster = (
        _contract("SponsorPaymaster", ["address", "address", "address"], [entry_point, admin, signer], salt)
        if signer is not None
        else None
    )
    return DeterministicPlan(
        entry_point=entry_point,
        admin=admin,
        paymaster_signer=signer,
        module=_contract("SessionKeyValidator", [], [], salt),
        factory=_contract("KeyscopeAccountFactory", ["address", "address"], [entry_point, admin], salt),
        paymaster=paymaster,
        salt=salt,
    )


# -- reading the chain --------------------------------------------------------------------------------


def _read_address(chain: Chain, contract: str, selector: bytes) -> str | None:
    try:
        raw = chain.call(contract, selector)
    except CallRevertedError:
        return None
    return to_address(abi_decode(["address"], raw)[0]) if len(raw) >= 32 else None


def deposit_info(chain: Chain, entry_point: str, entity: str) -> DepositInfo:
    """``EntryPoint.getDepositInfo(entity)``: deposit, stake, unstake delay."""
    raw = chain.call(entry_point, GET_DEPOSIT_INFO + abi_encode(["address"], [to_address(entity)]))
    deposit, staked, stake, delay, withdraw = abi_decode(
        ["uint256", "bool", "uint112", "uint32", "uint48"], raw
    )
    return DepositInfo(deposit, staked, stake, delay, withdraw)


@dataclass
class DeterministicDeployment:
    """What :func:`deploy_deterministic` found and did on one chain."""

    plan: DeterministicPlan
    chain_id: int
    deployed: list[str] = field(default_factory=list)
    """The contracts this run created (the others were there already)."""
    factory_deposit: DepositInfo | None = None
    paymaster_deposit: DepositInfo | None = None
    notes: list[str] = field(default_factory=list)
    """Things worth knowing that are not errors (an owner or signer changed since deployment)."""

    def to_dict(self) -> dict[str, Any]:
        """The addresses and stakes, as JSON-friendly values (the deployments file's keys among them)."""
        plan = self.plan

        def stake(info: DepositInfo | None) -> dict[str, Any] | None:
            if info is None:
                return None
            return {
                "deposit": info.deposit,
                "stake": info.stake,
                "staked": info.staked,
                "unstake_delay_sec": info.unstake_delay_sec,
            }

        return {
            "chain_id": self.chain_id,
            "entry_point": plan.entry_point,
            "module": plan.module.address,
            "factory": plan.factory.address,
            "account_implementation": plan.account_implementation,
            "paymaster": plan.paymaster.address if plan.paymaster is not None else None,
            "admin": plan.admin,
            "paymaster_signer": plan.paymaster_signer,
            "salt": "0x" + plan.salt.hex(),
            "deployed": list(self.deployed),
            "factory_stake": stake(self.factory_deposit),
            "paymaster_deposit": stake(self.paymaster_deposit),
            "notes": list(self.notes),
        }


def _check_deployer(chain: Chain) -> None:
    code = chain.get_code(DETERMINISTIC_DEPLOYER)
    if not code:
        raise DeploymentError(
            f"the deterministic deployment proxy {DETERMINISTIC_DEPLOYER} is not on this chain: it is put there by "
            "one keyless transaction (see github.com/Arachnid/deterministic-deployment-proxy); ask the chain's "
            "operators, or deploy without --deterministic (addresses then differ per chain)"
        )
    if code != DETERMINISTIC_DEPLOYER_CODE:
        raise DeploymentError(
            f"{DETERMINISTIC_DEPLOYER} holds {len(code)} bytes of other code than the deterministic deployment "
            "proxy: this chain's addresses cannot be trusted to match other chains'"
        )


def verify_deterministic(chain: Chain, plan: DeterministicPlan, *, require_all: bool = True) -> list[str]:
    """Check the deployment of ``plan`` on ``chain``: the proxy's code, the EntryPoint's, code at every address
    of the plan (unless ``require_all`` is False: then the missing ones are returned), and the factory's
    immutables (EntryPoint, account implementation with keyscope's ``accountId()``). Raises
    :class:`~keyscope.errors.DeploymentError` naming what does not match; returns the names of the
    contracts without code."""
    _check_deployer(chain)
    entry_point_code = chain.get_code(plan.entry_point)
    if not entry_point_code:
        raise DeploymentError(f"no EntryPoint at {plan.entry_point} on this chain")
    version = canonical_entry_point_version(plan.entry_point)
    if version is not None and not entry_point_code_matches(
        entry_point_code, plan.entry_point, version=version, chain_id=chain.chain_id()
    ):
        raise DeploymentError(
            f"{plan.entry_point} holds {len(entry_point_code)} bytes of code that are not the EntryPoint v{version}"
        )
    missing = [c.name for c in plan.contracts if not chain.get_code(c.address)]
    if missing and require_all:
        where = ", ".join(f"{c.name} at {c.address}" for c in plan.contracts if c.name in missing)
        raise DeploymentError(
            f"not deployed on this chain: {where} (planned for admin {plan.admin}: the factory's and the "
            "paymaster's addresses depend on it); deploy them, or check with the admin they were deployed for"
        )
    if plan.factory.name not in missing:
        problems = []
        if _read_address(chain, plan.factory.address, ENTRY_POINT) != plan.entry_point:
            problems.append(f"its entryPoint() is not {plan.entry_point}")
        if _read_address(chain, plan.factory.address, _ACCOUNT_IMPLEMENTATION) != plan.account_implementation:
            problems.append(f"its accountImplementation() is not {plan.account_implementation}")
        made = account_id(chain, plan.account_implementation)
        if made is None or not made.startswith(KeyscopeAccountKind.account_id_prefix):
            problems.append(f"the implementation reports accountId() {made!r}")
        if problems:
            raise DeploymentError(
                f"the factory at {plan.factory.address} is not as planned: {'; '.join(problems)}"
            )
    paymaster = plan.paymaster
    if (
        paymaster is not None
        and paymaster.name not in missing
        and _read_address(chain, paymaster.address, ENTRY_POINT) != plan.entry_point
    ):
        raise DeploymentError(f"the paymaster at {paymaster.address} does not use {plan.entry_point}")
    return missing


def deploy_deterministic(
    chain: Chain,
    send: Send,
    plan: DeterministicPlan,
    *,
    sender: str,
    stake: int = 10**18,
    unstake_delay: int = 86_400,
    paymaster_deposit: int = 0,
    paymaster_stake: int = 10**18,
) -> DeterministicDeployment:
    """Deploy ``plan`` on ``chain`` through the deterministic deployment proxy (what is already there is
    left as it is), verify it, and bring the factory's stake (and the paymaster's deposit and stake) up to
    ``stake`` wei / ``unstake_delay`` seconds. Transactions go out through ``send`` from ``sender``, which must
    be the plan's admin for staking (the stake is managed by the factory's and the paymaster's owner)."""
    sender = to_address(sender, name="sender")
    result = DeterministicDeployment(plan=plan, chain_id=chain.chain_id())
    _check_deployer(chain)
    if not chain.get_code(plan.entry_point):
        version = canonical_entry_point_version(plan.entry_point)
        if version is None:
            raise DeploymentError(
                f"no EntryPoint at {plan.entry_point}: deploy it first, or use a canonical one (v0.7 or v0.8)"
            )
        init_code = to_bytes(entry_point_artifact(version)["bytecode"])
        salt = ENTRY_POINTS[version].salt
        send(DETERMINISTIC_DEPLOYER, salt + init_code, 0, f"EntryPoint v{version} deployment")
        result.deployed.append("EntryPoint")
    for contract in verify_deterministic(chain, plan, require_all=False):
        planned = next(c for c in plan.contracts if c.name == contract)
        send(DETERMINISTIC_DEPLOYER, plan.salt + planned.init_code, 0, f"{contract} deployment")
        result.deployed.append(contract)
    verify_deterministic(chain, plan)

    owner = _read_address(chain, plan.factory.address, OWNER)
    if owner != plan.admin:
        result.notes.append(
            f"the factory's owner is now {owner}, not the admin {plan.admin} it was created with"
        )
    result.factory_deposit = _stake(
        chain,
        send,
        plan,
        plan.factory.address,
        "the factory",
        owner,
        sender,
        stake,
        unstake_delay,
        "--stake 0, or stake=0",
    )
    if plan.paymaster is not None:
        paymaster = plan.paymaster.address
        signer = _read_address(chain, paymaster, SIGNER)
        if signer != plan.paymaster_signer:
            result.notes.append(f"the paymaster's signer is now {signer}, not {plan.paymaster_signer}")
        info = deposit_info(chain, plan.entry_point, paymaster)
        if paymaster_deposit > info.deposit:
            send(paymaster, DEPOSIT, paymaster_deposit - info.deposit, "SponsorPaymaster.deposit")
        pm_owner = _read_address(chain, paymaster, OWNER)
        result.paymaster_deposit = _stake(
            chain,
            send,
            plan,
            paymaster,
            "the paymaster",
            pm_owner,
            sender,
            paymaster_stake,
            unstake_delay,
            "--paymaster-stake 0, or paymaster_stake=0",
        )
    return result


def _stake(
    chain: Chain,
    send: Send,
    plan: DeterministicPlan,
    entity: str,
    what: str,
    owner: str | None,
    sender: str,
    stake: int,
    unstake_delay: int,
    no_stake: str,
) -> DepositInfo:
    """Bring ``entity``'s stake to at least ``stake`` wei locked for at least ``unstake_delay`` seconds
    (``no_stake``: the command's option that leaves the stake out, named when only the owner can stake)."""
    info = deposit_info(chain, plan.entry_point, entity)
    if not stake or (info.stake >= stake and info.unstake_delay_sec >= unstake_delay and info.staked):
        return info
    if owner != sender:
        raise DeploymentError(
            f"{what} at {entity} has {info.stake} wei staked for {info.unstake_delay_sec}s, under the {stake} wei "
            f"for {unstake_delay}s asked, and only its owner {owner} can stake it: run this from {owner}, or "
            f"leave the stake out ({no_stake} in Python) and have {owner} call addStake({unstake_delay}) "
            f"on {entity} with {stake} wei; what is deployed stays deployed, so running this again is safe"
        )
    delay = max(unstake_delay, info.unstake_delay_sec)
    data = ADD_STAKE + abi_encode(["uint32"], [delay])
    send(entity, data, max(stake - info.stake, 0), f"{what}'s addStake")
    after = deposit_info(chain, plan.entry_point, entity)
    if not after.staked or after.stake < stake:
        raise DeploymentError(
            f"{what} at {entity} is not staked after addStake: the EntryPoint reports {after}"
        )
    return after
