// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title NoDecimalsToken
/// @notice Test-only ERC-20 whose decimals() reverts (decimals are optional in ERC-20): what a tool shows of a
///         token limit when the token gives no decimals to scale its amounts by.
contract NoDecimalsToken is ERC20 {
    /// @notice decimals() was asked of a token that declares none.
    /// @param token This token.
    error NoDecimals(address token);

    /// @param name_ The token's name.
    /// @param symbol_ The token's symbol.
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Always reverts with NoDecimals: this token declares no decimals.
    function decimals() public view override returns (uint8) {
        revert NoDecimals(address(this));
    }
}
