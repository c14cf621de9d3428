"""The operations the gas figures are taken on, shared by the gas benchmark (``benchmarks/gas.py``, anvil) and the
gas snapshot (:mod:`support.gas_snapshot`, ape's in-process chain): fixed keys, and the permissions of each call
shape.

Keys are derived from labels, so that addresses, hence calldata bytes and gas, are the same every run.
"""

from __future__ import annotations

from keyscope.hexutil import keccak
from keyscope.policy import Policy, arg
from keyscope.session import Permission
from keyscope.signing import LocalSigner

__all__ = [
    "ERC20_AMOUNT",
    "ZERO_ADDRESS",
    "erc20_transfer_permission",
    "erc721_transfer_permission",
    "fixed_signer",
    "mint_permission",
    "word_permission",
]

ZERO_ADDRESS = "0x" + "00" * 20
ERC20_AMOUNT = 10**18
"""What the ERC-20 shape transfers (the session's rule allows up to 1,000 of it)."""


def fixed_signer(label: str) -> LocalSigner:
    """A key derived from ``label``: the same addresses (hence the same calldata bytes and gas) every run."""
    return LocalSigner(keccak(b"keyscope-bench/" + label.encode()))


def mint_permission(nft: str, recipient: str, rules: int) -> Permission:
    """``safeMint(address to)`` on ``nft`` with ``rules`` one-word rules on ``to``, all holding for ``recipient``."""
    number = int(recipient, 16)
    pool = [
        arg("to") == recipient,
        arg("to") != ZERO_ADDRESS,
        arg("to") <= recipient,
        arg("to") >= recipient,
        arg("to") < "0x" + (number + 1).to_bytes(20, "big").hex(),
        arg("to") > "0x" + (number - 1).to_bytes(20, "big").hex(),
        arg("to") != fixed_signer("gas/other-1").address,
        arg("to") != fixed_signer("gas/other-2").address,
    ]
    return Policy.call(nft, "safeMint(address to)", rules=pool[:rules])


def word_permission(nft: str, recipient: str) -> Permission:
    """``mintBatch(address to, uint256 count)`` with two rules on the 256-bit ``count`` (the cheapest type to
    check), holding for ``count`` 2."""
    rules = [arg("count") >= 1, arg("count") <= 3]
    return Policy.call(nft, "mintBatch(address to,uint256 count)", rules=rules)


def erc20_transfer_permission(token: str, recipient: str) -> Permission:
    """ERC-20 ``transfer(to, amount)`` on ``token`` with 2 rules: ``to`` is ``recipient`` and ``amount`` is at
    most 1,000 x :data:`ERC20_AMOUNT`."""
    rules = [arg("to") == recipient, arg("amount") <= 1000 * ERC20_AMOUNT]
    return Policy.call(token, "transfer(address to,uint256 amount)", rules=rules)


def erc721_transfer_permission(nft: str, account: str, recipient: str) -> Permission:
    """ERC-721 ``transferFrom(from, to, tokenId)`` on ``nft`` with 2 rules: from ``account`` to ``recipient``."""
    rules = [arg("from") == account, arg("to") == recipient]
    return Policy.call(nft, "transferFrom(address from,address to,uint256 tokenId)", rules=rules)
