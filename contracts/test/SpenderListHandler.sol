// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title SpenderListHandler
/// @notice Test support: a module an ERC-7579 account installs as a fallback handler (type 3 only) for
///         `addSpender(address)`, keeping for each account a list of spenders that other contracts trust
///         (`isSpender(account, spender)`). As ERC-7579 handlers do, it takes the account as `msg.sender` and the
///         account's own caller from the last 20 bytes of its calldata (ERC-2771, which the account appends when it
///         routes the selector to it): only the account itself or the EntryPoint, that is the owner's own
///         operations, may add a spender. A call the account makes to it directly carries whatever 20 bytes its
///         caller put last.
contract SpenderListHandler {
    /// @notice The account's own caller (the appended 20 bytes) may not add a spender.
    error CallerNotAllowed(address account, address caller);

    /// @notice The calldata carries no caller after its argument.
    error NoCallerAppended(uint256 length);

    /// @notice The EntryPoint whose calls to the account are the account's own.
    address public immutable entryPoint;

    /// @notice Whether `spender` may spend for `account`, as the account's owner said.
    mapping(address account => mapping(address spender => bool)) public isSpender;

    /// @param entryPoint_ The EntryPoint whose calls to the account are the account's own.
    constructor(address entryPoint_) {
        entryPoint = entryPoint_;
    }

    /// @notice ERC-7579: nothing to set up.
    function onInstall(bytes calldata) external {}

    /// @notice ERC-7579: nothing to clear.
    function onUninstall(bytes calldata) external {}

    /// @notice A fallback handler (3) only.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 3;
    }

    /// @notice Add `spender` to the calling account's list, when the account's own caller (ERC-2771) is the account
    ///         itself or the EntryPoint.
    /// @param spender The spender the account's owner trusts.
    function addSpender(address spender) external {
        if (msg.data.length < 56) revert NoCallerAppended(msg.data.length);
        address caller = address(bytes20(msg.data[msg.data.length - 20:]));
        if (caller != entryPoint && caller != msg.sender) revert CallerNotAllowed(msg.sender, caller);
        isSpender[msg.sender][spender] = true;
    }
}
