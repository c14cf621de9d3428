// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title TestVault
/// @notice Test-only ERC-4626 vault over any ERC-20 (OpenZeppelin's): the standard `withdraw(assets, receiver, owner)`
///         and `redeem(shares, receiver, owner)` whose argument names a dapp's request may put in another order.
contract TestVault is ERC4626 {
    /// @param asset_ The ERC-20 the vault holds.
    constructor(IERC20 asset_) ERC20("Test Vault", "tvTUSD") ERC4626(asset_) {}
}
