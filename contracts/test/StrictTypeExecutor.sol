// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title StrictTypeExecutor
/// @notice Test support: an ERC-7579 executor (module type 2) whose `isModuleType` reverts for any other type
///         instead of answering false, as a module may. Asked type by type whether it is a module (an account
///         without code yet cannot answer), it answers nothing until it is asked its own type.
contract StrictTypeExecutor {
    /// @notice `isModuleType` was asked a type this module is not.
    error NotThisType(uint256 moduleTypeId);

    /// @notice Whether `account` installed the executor.
    mapping(address account => bool installed) public isInitialized;

    /// @notice Mark the calling account installed.
    function onInstall(bytes calldata) external {
        isInitialized[msg.sender] = true;
    }

    /// @notice Mark the calling account uninstalled.
    function onUninstall(bytes calldata) external {
        isInitialized[msg.sender] = false;
    }

    /// @notice True for an executor (2); a revert, not false, for any other type.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        if (moduleTypeId != 2) revert NotThisType(moduleTypeId);
        return true;
    }
}
