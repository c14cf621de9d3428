// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ForwardingValidator
/// @notice Test-only third-party ERC-7579 validator that routes ERC-1271 questions to the account's other validators.
///         Validators key their configuration by the calling account, so a router cannot call another validator
///         itself (that validator would take the router for the account): it asks the account, which routes the
///         signature by its prefix. It validates no operation.
contract ForwardingValidator {
    function onInstall(bytes calldata) external {}

    function onUninstall(bytes calldata) external {}

    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 1;
    }

    function isInitialized(address) external pure returns (bool) {
        return true;
    }

    /// @notice ERC-4337: no operation is valid.
    function validateUserOp(bytes calldata, bytes32) external pure returns (uint256) {
        return 1;
    }

    /// @notice ERC-7579: the account's own answer to `signature` (which names, by its prefix, the validator to ask).
    function isValidSignatureWithSender(address, bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes4)
    {
        (bool ok, bytes memory answer) =
            msg.sender.staticcall(abi.encodeWithSelector(0x1626ba7e, hash, signature));
        if (!ok || answer.length < 32) return 0xffffffff;
        return abi.decode(answer, (bytes4));
    }
}
