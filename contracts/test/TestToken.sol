// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice Test-only ERC-20 (18 decimals) that anyone may mint: the token an ERC-20 paymaster charges in.
contract TestToken is ERC20 {
    constructor() ERC20("Test USD", "TUSD") {}

    /// @notice Mint `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Raise the caller's allowance for `spender` by `addedValue` (the pre-5.0 OpenZeppelin extension many
    ///         live tokens still have).
    function increaseAllowance(address spender, uint256 addedValue) external returns (bool) {
        _approve(msg.sender, spender, allowance(msg.sender, spender) + addedValue);
        return true;
    }
}
