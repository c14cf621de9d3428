// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

/// @title FaultyValidator
/// @notice Test helper: an ERC-7579 validator that never answers `validateUserOp` with a word: it reverts
///         {Refused} for an operation with an empty signature, with no data for a one-byte signature, and returns
///         nothing at all otherwise. An account must revert then, not read validation data from its own memory.
///         Every other question (`isTargetOfLiveSession`, say) it answers with the word 2, which is no bool.
contract FaultyValidator {
    /// @notice The operation `userOpHash` was refused.
    /// @param userOpHash The operation's hash.
    error Refused(bytes32 userOpHash);

    /// @notice Nothing to set up.
    function onInstall(bytes calldata) external {}

    /// @notice Nothing to clear.
    function onUninstall(bytes calldata) external {}

    /// @notice A validator only.
    /// @param moduleTypeId The module type asked about.
    /// @return Whether it is 1.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 1;
    }

    /// @notice Holds no state for anyone.
    /// @return False.
    function isInitialized(address) external pure returns (bool) {
        return false;
    }

    /// @notice Reverts or returns nothing, as the contract's notes say.
    /// @param userOp The operation.
    /// @param userOpHash Its hash.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash) external pure {
        if (userOp.signature.length == 0) revert Refused(userOpHash);
        if (userOp.signature.length == 1) revert();
    }

    /// @notice Any other question: the word 2.
    fallback() external {
        assembly ("memory-safe") {
            mstore(0, 2)
            return(0, 32)
        }
    }
}
