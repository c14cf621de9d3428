// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Execution, IERC7579Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";

/// @title LegacyExecutionHandler
/// @notice Test support: a module an ERC-7579 account installs as a fallback handler (type 3) for an older account
///         API, `executeBatch((address,uint256,bytes)[])`, and as an executor (type 2), through which it runs the
///         batch on the account (`executeFromExecutor`). As ERC-7579 handlers do, it takes the account as
///         `msg.sender` and the account's own caller from the last 20 bytes of its calldata (ERC-2771, which the
///         account appends when it routes a selector to it): it runs the batch when that caller is the EntryPoint
///         or the account itself. A call the account makes to it directly carries whatever 20 bytes the caller of
///         the account put last.
contract LegacyExecutionHandler {
    /// @notice The account's own caller (the appended 20 bytes) may not run a batch.
    error CallerNotAllowed(address account, address caller);

    /// @notice The EntryPoint whose calls to the account are the account's own.
    address public immutable entryPoint;

    /// @param entryPoint_ The EntryPoint whose calls to the account are the account's own.
    constructor(address entryPoint_) {
        entryPoint = entryPoint_;
    }

    /// @notice ERC-7579: nothing to set up.
    function onInstall(bytes calldata) external {}

    /// @notice ERC-7579: nothing to clear.
    function onUninstall(bytes calldata) external {}

    /// @notice An executor (2) and a fallback handler (3).
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 2 || moduleTypeId == 3;
    }

    /// @notice The older API: run `calls` on the calling account when its own caller (ERC-2771) is the EntryPoint
    ///         or the account itself.
    /// @param calls The calls, run as an ERC-7579 batch with default execution.
    function executeBatch(Execution[] calldata calls) external {
        address caller = address(bytes20(msg.data[msg.data.length - 20:]));
        if (caller != entryPoint && caller != msg.sender) revert CallerNotAllowed(msg.sender, caller);
        IERC7579Execution(msg.sender).executeFromExecutor(bytes32(uint256(1) << 248), abi.encode(calls));
    }
}
