// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title RecordingHook
/// @notice Test support: a minimal ERC-7579 hook (module type 4) keeping, per account, its install data and how many
///         executions it saw. Installed on an account, it is one of the account's modules, which a session must not
///         be granted a call to (its `onInstall` from the account would replace the account's configuration).
contract RecordingHook {
    /// @notice The install data each account gave.
    mapping(address account => bytes data) public configOf;
    /// @notice How many executions each account ran through the hook.
    mapping(address account => uint256 count) public checks;

    /// @notice Keep `data` as the calling account's configuration.
    function onInstall(bytes calldata data) external {
        configOf[msg.sender] = data;
    }

    /// @notice Forget the calling account's configuration.
    function onUninstall(bytes calldata) external {
        delete configOf[msg.sender];
    }

    /// @notice A hook, nothing else.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 4;
    }

    /// @notice Whether `account` installed the hook.
    function isInitialized(address account) external view returns (bool) {
        return configOf[account].length != 0;
    }

    /// @notice Count an execution of the calling account.
    function preCheck(address, uint256, bytes calldata) external returns (bytes memory) {
        ++checks[msg.sender];
        return "";
    }

    /// @notice Nothing to check after an execution.
    function postCheck(bytes calldata) external pure {}
}
