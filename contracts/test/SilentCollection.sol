// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title SilentCollection
/// @notice Test-only ERC-721 collection that does not say it is one: its supportsInterface answers false to every
///         interface id, as collections older than ERC-165's ERC-721 id do (they answer an earlier draft's id, or
///         nothing). Its approve and transferFrom take a token id where ERC-20's, with the same selectors, take an
///         amount.
contract SilentCollection is ERC721 {
    /// @notice The id the next mint receives.
    uint256 public nextTokenId;

    constructor() ERC721("silent collection", "SLNT") {}

    /// @notice Mint `count` tokens to `to`.
    /// @param to The receiver.
    /// @param count How many tokens.
    function mintBatch(address to, uint256 count) external {
        for (uint256 i = 0; i < count; ++i) {
            _mint(to, nextTokenId++);
        }
    }

    /// @notice Says it supports no interface, ERC-721's included.
    function supportsInterface(bytes4) public pure override returns (bool) {
        return false;
    }
}
