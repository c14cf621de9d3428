// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title DemoNFT
/// @notice An open-mint ERC-721 for demos and tests: anyone may mint to anyone.
contract DemoNFT is ERC721 {
    /// @notice The id the next mint receives.
    uint256 public nextTokenId;

    constructor() ERC721("keyscope demo", "KSD") {}

    /// @notice Mint the next token to `to` (with the ERC-721 receiver check).
    /// @param to The receiver.
    /// @return tokenId The id of the minted token.
    function safeMint(address to) external returns (uint256 tokenId) {
        tokenId = nextTokenId++;
        _safeMint(to, tokenId);
    }

    /// @notice Mint `count` tokens to `to` in one call.
    /// @param to The receiver.
    /// @param count How many tokens.
    function mintBatch(address to, uint256 count) external {
        for (uint256 i = 0; i < count; ++i) {
            _safeMint(to, nextTokenId++);
        }
    }
}
