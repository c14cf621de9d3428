// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title AccountModules
/// @notice What an account says of its modules, asked as views: ERC-7579 `isModuleInstalled` and Safe's
///         `isModuleEnabled`. Used where a session must not reach another module of the account: a call target
///         when a session is enabled, a signing domain when it is enabled, and a signature's verifier when it is
///         checked.
library AccountModules {
    /// @dev IERC7579ModuleConfig.isModuleInstalled(uint256,address,bytes) and Safe's isModuleEnabled(address).
    bytes4 internal constant IS_MODULE_INSTALLED = 0x112d3a7d;
    bytes4 internal constant IS_MODULE_ENABLED = 0x2d9ad53d;

    /// @dev Whether `target` is a module of `account`, and of which type: a validator (1), an executor (2), a hook
    ///      (4) (ERC-7579 `isModuleInstalled`), or a Safe module (0, `isModuleEnabled`). An account that does not
    ///      answer (no such function, a revert) is taken to say no.
    function moduleOf(address account, address target) internal view returns (bool, uint256) {
        for (uint256 moduleType = 1; moduleType <= 4; ++moduleType) {
            if (moduleType == 3) continue; // fallback handlers are installed per selector: see the threat model
            if (asks(account, abi.encodeWithSelector(IS_MODULE_INSTALLED, moduleType, target, ""))) {
                return (true, moduleType);
            }
        }
        return (asks(account, abi.encodeWithSelector(IS_MODULE_ENABLED, target)), 0);
    }

    /// @dev Whether `account` answers `data` (a view returning bool) with true.
    function asks(address account, bytes memory data) internal view returns (bool yes) {
        (bool ok, bytes memory answer) = account.staticcall(data);
        return ok && answer.length >= 32 && abi.decode(answer, (uint256)) == 1;
    }
}
