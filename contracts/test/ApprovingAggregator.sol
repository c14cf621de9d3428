// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IAggregator, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

/// @title ApprovingAggregator
/// @notice Test-only attacker: an ERC-4337 signature aggregator that approves every signature, as a bundler colluding
///         with a session key would name in `handleAggregatedOps` to have operations carried past their own
///         validator's verdict.
contract ApprovingAggregator is IAggregator {
    /// @notice Every operation's signature is good: nothing to keep for bundling.
    function validateUserOpSignature(PackedUserOperation calldata) external pure returns (bytes memory) {
        return "";
    }

    /// @notice No aggregated signature is needed.
    function aggregateSignatures(PackedUserOperation[] calldata) external pure returns (bytes memory) {
        return "";
    }

    /// @notice Approves any operations with any signature (never reverts).
    function validateSignatures(PackedUserOperation[] calldata, bytes calldata) external pure {}
}
