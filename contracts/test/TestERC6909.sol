// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC6909} from "@openzeppelin/contracts/token/ERC6909/ERC6909.sol";

/// @title TestERC6909
/// @notice Test-only ERC-6909 multi-token (OpenZeppelin's) that anyone may mint: the standard
///         `transfer(receiver, id, amount)` and `transferFrom(sender, receiver, id, amount)`, whose argument names a
///         dapp's request may put in another order.
contract TestERC6909 is ERC6909 {
    /// @notice Mint `amount` of token `id` to `to`.
    /// @param to The receiver.
    /// @param id The token id.
    /// @param amount How many.
    function mint(address to, uint256 id, uint256 amount) external {
        _mint(to, id, amount);
    }
}
