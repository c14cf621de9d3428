// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";

/// @title MulticallRouter
/// @notice Test-only router in the shape of the common ones: a swap that pulls the caller's approved tokens and pays
///         the recipient it is told (here the same token, one for one), and a multicall that runs each of its calls
///         as a call of the router's own functions with the caller as the sender (a delegatecall to itself).
contract MulticallRouter is Multicall {
    /// @notice Pull `amountIn` of `tokenIn` from the caller (under its approval) and pay them to `recipient`.
    /// @param tokenIn The token the caller pays.
    /// @param amountIn How much.
    /// @param recipient Who receives the proceeds.
    function swap(address tokenIn, uint256 amountIn, address recipient) external {
        require(IERC20(tokenIn).transferFrom(msg.sender, recipient, amountIn), "pull failed");
    }
}
