// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";

/// @title PassThroughPreValidationHook
/// @notice Test support: an ERC-7579 pre-validation hook of both kinds (module type 8, ERC-1271; type 9, ERC-4337)
///         that hands every validator the hash and signature it was given, and keeps per account whether it is
///         installed and how many operations it saw. Installed on an account, it is one of the account's modules:
///         a session must not be granted a call to it, sign in its domain, or sign for it as a verifier.
contract PassThroughPreValidationHook {
    /// @notice Whether each account installed the hook (as either type).
    mapping(address account => uint256 installs) public installsOf;
    /// @notice How many UserOperations of each account the hook saw.
    mapping(address account => uint256 count) public operationsOf;

    /// @notice Count an install by the calling account.
    function onInstall(bytes calldata) external {
        ++installsOf[msg.sender];
    }

    /// @notice Count an uninstall by the calling account.
    function onUninstall(bytes calldata) external {
        --installsOf[msg.sender];
    }

    /// @notice A pre-validation hook of both kinds, nothing else.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 8 || moduleTypeId == 9;
    }

    /// @notice Whether `account` installed the hook.
    function isInitialized(address account) external view returns (bool) {
        return installsOf[account] != 0;
    }

    /// @notice ERC-4337's hook: the operation's hash and signature, unchanged.
    function preValidationHookERC4337(PackedUserOperation calldata userOp, uint256, bytes32 userOpHash)
        external
        returns (bytes32 hookHash, bytes memory hookSignature)
    {
        ++operationsOf[msg.sender];
        return (userOpHash, userOp.signature);
    }

    /// @notice ERC-1271's hook: the hash and signature, unchanged.
    function preValidationHookERC1271(address, bytes32 hash, bytes calldata data)
        external
        pure
        returns (bytes32 hookHash, bytes memory hookSignature)
    {
        return (hash, data);
    }
}
