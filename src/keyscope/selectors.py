"""Four-byte selectors of the functions keyscope asks of contracts it did not write, in one place.

Each is ``keccak256(signature)[:4]``; the signature is beside it. Selectors of keyscope's own module live with
its ABI in :mod:`keyscope.module`, and those one module alone uses stay beside their use.
"""

from __future__ import annotations

from eth_utils import keccak


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


IS_MODULE_INSTALLED = _selector("isModuleInstalled(uint256,address,bytes)")
"""ERC-7579 ``IERC7579ModuleConfig.isModuleInstalled(uint256,address,bytes)``: ``0x112d3a7d``."""

IS_VALID_SIGNATURE = _selector("isValidSignature(bytes32,bytes)")
"""ERC-1271 ``isValidSignature(bytes32,bytes)``: ``0x1626ba7e``."""

EXECUTE = _selector("execute(bytes32,bytes)")
"""ERC-7579 ``execute(bytes32,bytes)``: ``0xe9ae5c53``."""

IS_INITIALIZED = _selector("isInitialized(address)")
"""ERC-7579 module ``isInitialized(address)``: ``0xd60b347f``."""

RESET_MODULES = _selector("resetModules()")
"""keyscope's delegate ``resetModules()``: ``0xca210e6e``, forgetting every module the account holds (the first call of
the owner's operation carrying the EOA's authorization)."""

IS_MODULE_TYPE = _selector("isModuleType(uint256)")
"""ERC-7579 module ``isModuleType(uint256)``: ``0xecd05961``."""

SIGNER = _selector("signer()")
"""``signer()`` of keyscope's sponsor paymaster and of signers that name their key: ``0x238ac933``."""

OWNER = _selector("owner()")
"""``owner()``: ``0x8da5cb5b``."""

ENTRY_POINT = _selector("entryPoint()")
"""``entryPoint()`` of an account, a paymaster or a module: ``0xb0d691fe``."""

DEPOSIT = _selector("deposit()")
"""A paymaster's ``deposit()`` into the EntryPoint: ``0xd0e30db0``."""

ADD_STAKE = _selector("addStake(uint32)")
"""``addStake(uint32 unstakeDelaySec)``, on the EntryPoint or a contract staking through it: ``0x0396cb60``."""

GET_DEPOSIT_INFO = _selector("getDepositInfo(address)")
"""The EntryPoint's ``getDepositInfo(address)``: ``0x5287ce12``."""
