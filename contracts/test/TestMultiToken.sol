// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// @title TestMultiToken
/// @notice Test-only ERC-1155 (OpenZeppelin's) that anyone may mint: the standard
///         `safeTransferFrom(from, to, id, value, data)` whose argument names a dapp's request may put in another order.
contract TestMultiToken is ERC1155 {
    constructor() ERC1155("") {}

    /// @notice Mint `value` of token `id` to `to` (with the ERC-1155 receiver check).
    /// @param to The receiver.
    /// @param id The token id.
    /// @param value How many.
    function mint(address to, uint256 id, uint256 value) external {
        _mint(to, id, value, "");
    }
}
