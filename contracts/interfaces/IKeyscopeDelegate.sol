// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IKeyscopeDelegate
/// @notice Events and errors of {KeyscopeDelegate}, keyscope's ERC-7579 account for EIP-7702 delegation, beside
///         the standard ERC-7579 ones (ERC7579Utils' `ERC7579UnsupportedModuleType`, `ERC7579MismatchedModuleTypeId`,
///         `ERC7579AlreadyInstalledModule`, `ERC7579UninstalledModule`, `ERC7579UnsupportedCallType`).
interface IKeyscopeDelegate {
    /// @notice A module being installed still held state for this address that an earlier delegation (of this
    ///         code or of other code the EOA delegated to) left behind; its `onUninstall` cleared it first.
    /// @param module The module whose leftover state was cleared.
    event ModuleStateCleared(address indexed module);

    /// @notice Every module this account held (validators, executors, fallback handlers) was forgotten, without a
    ///         call to any of them: the first call of the owner's operation carrying the EOA's authorization.
    event ModulesReset();

    /// @notice No fallback handler is installed for the function the account was called with.
    /// @param selector The selector of the call.
    error MissingFallbackHandler(bytes4 selector);

    /// @notice An operation validated by an installed validator carried an EIP-7702 init call (initCode longer
    ///         than the 20-byte marker): the account would run that call before validation, and the validator
    ///         judges only the callData. Only the owner's operations (nonce key not naming a validator) may.
    /// @param validator The validator the operation's nonce key names.
    /// @param initCallLength The length of the init call's data (the initCode after the marker).
    error InitCallNotForValidators(address validator, uint256 initCallLength);

    /// @notice `module` was not installed: a live session of the installed validator `validator` has a call
    ///         permission on it, or had one until revoked in this transaction. Revoke those sessions (or all of them)
    ///         on `validator` first, then install it in a later transaction.
    /// @param module The module being installed.
    /// @param validator The validator whose live session may call it.
    error ModuleIsSessionTarget(address module, address validator);

    /// @notice A fallback handler's init or deinit data must start with the 4-byte selector it handles.
    /// @param length The length of the data given.
    error FallbackDataTooShort(uint256 length);
}
