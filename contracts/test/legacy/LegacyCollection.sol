// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
pragma abicoder v1;

/// @title LegacyCollection
/// @notice Test-only victim: an NFT-style collection built with ABI coder v1, as every contract compiled before
///         Solidity 0.8 is (many live tokens and NFTs). Coder v1 does not revert on an argument word that is not
///         its type's canonical encoding: it cleans the word (a bool is `word != 0`, a uint8 its low byte), so
///         the contract acts on another value than the 32-byte word a rule may have compared.
/// @dev Built with the legacy code generator (the via-IR pipeline the project uses has no coder v1): ape-config.yaml
///      leaves contracts/test/legacy/ out of `ape compile`, and the tests compile it themselves.
contract LegacyCollection {
    /// @notice Whether `operator` may move every token of `owner`.
    mapping(address owner => mapping(address operator => bool)) public isApprovedForAll;

    /// @notice Each holder's membership tier (0: none, the cheapest; 3 and up: the premium tiers).
    mapping(address holder => uint8) public tierOf;

    /// @notice ERC-721's approval for all.
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    /// @notice The caller's tier was set.
    event TierSet(address indexed holder, uint8 tier);

    /// @notice ERC-721's setApprovalForAll.
    function setApprovalForAll(address operator, bool approved) external {
        isApprovedForAll[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    /// @notice Set the caller's tier.
    function setTier(uint8 tier) external {
        tierOf[msg.sender] = tier;
        emit TierSet(msg.sender, tier);
    }
}
