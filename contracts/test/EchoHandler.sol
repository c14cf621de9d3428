// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title EchoHandler
/// @notice Test helper: an ERC-7579 fallback handler (module type 3) that answers every call with the calldata it
///         received, or reverts with it when the call's selector is `refuse()`'s: what an account's `fallback()`
///         hands a handler (the caller appended, ERC-2771) and hands back from it, revert or not.
contract EchoHandler {
    /// @notice Nothing to set up.
    function onInstall(bytes calldata) external {}

    /// @notice Nothing to clear.
    function onUninstall(bytes calldata) external {}

    /// @notice A fallback handler only.
    /// @param moduleTypeId The module type asked about.
    /// @return Whether it is 3.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 3;
    }

    /// @notice Holds no state for anyone.
    /// @return False.
    function isInitialized(address) external pure returns (bool) {
        return false;
    }

    /// @notice Answers with the calldata, or reverts with it for `refuse()`'s selector.
    fallback() external {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            if eq(shr(224, calldataload(0)), 0x62c69b80) { revert(ptr, calldatasize()) }
            return(ptr, calldatasize())
        }
    }
}
