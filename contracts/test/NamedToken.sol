// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title NamedToken
/// @notice Test-only ERC-20 whose name, symbol and decimals are whatever its deployer says: a token with 6
///         decimals, or one whose symbol is markup, to test what a consent page shows of a token's claims.
contract NamedToken is ERC20 {
    uint8 private immutable _decimals;

    /// @param name_ The token's name.
    /// @param symbol_ The token's symbol.
    /// @param decimals_ The token's decimals.
    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    /// @notice The token's decimals, as given to the constructor.
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Mint `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
