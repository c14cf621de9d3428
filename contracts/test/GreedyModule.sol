// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

/// @title GreedyModule
/// @notice Test support: the module a session key's holder would like an account to install. It is every module
///         type, installs with any data, and says yes to everything: every operation validates (0) and every ERC-1271
///         question gets the magic value. Once an account holds it as a validator, anyone drains the account; the
///         tests that try to have it installed assert that no account does.
contract GreedyModule {
    /// @notice Installs with any data.
    function onInstall(bytes calldata) external {}

    /// @notice Uninstalls with any data.
    function onUninstall(bytes calldata) external {}

    /// @notice Every module type.
    function isModuleType(uint256) external pure returns (bool) {
        return true;
    }

    /// @notice Initialised for every account.
    function isInitialized(address) external pure returns (bool) {
        return true;
    }

    /// @notice Every operation validates.
    function validateUserOp(PackedUserOperation calldata, bytes32) external pure returns (uint256) {
        return 0;
    }

    /// @notice Every signature is valid.
    function isValidSignatureWithSender(address, bytes32, bytes calldata) external pure returns (bytes4) {
        return 0x1626ba7e;
    }

    /// @notice As a hook: nothing to check before.
    function preCheck(address, uint256, bytes calldata) external pure returns (bytes memory) {
        return "";
    }

    /// @notice As a hook: nothing to check after.
    function postCheck(bytes calldata) external pure {}
}
