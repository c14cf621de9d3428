// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title LooseInitializedModule
/// @notice Test support: an ERC-7579 executor (module type 2) whose `isInitialized` answers a word set beforehand,
///         as it is (0, 1, or any other value a module's fallback could answer), and which counts the
///         `onInstall` and `onUninstall` calls each account made, in order.
contract LooseInitializedModule {
    /// @notice The word `isInitialized` answers.
    uint256 public answerWord;
    /// @notice Per account: the calls it made, in order (1: onInstall, 2: onUninstall).
    mapping(address => uint8[]) private _calls;

    /// @notice Set the word `isInitialized` answers for every account.
    /// @param word The word.
    function setAnswer(uint256 word) external {
        answerWord = word;
    }

    /// @notice Records an install by the caller.
    function onInstall(bytes calldata) external {
        _calls[msg.sender].push(1);
    }

    /// @notice Records an uninstall by the caller.
    function onUninstall(bytes calldata) external {
        _calls[msg.sender].push(2);
    }

    /// @notice An executor only.
    /// @param moduleTypeId The module type asked about.
    /// @return Whether it is 2.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 2;
    }

    /// @notice Answers the set word, whatever it is.
    function isInitialized(address) external view returns (bool) {
        uint256 word = answerWord;
        assembly ("memory-safe") {
            mstore(0, word)
            return(0, 32)
        }
    }

    /// @notice The calls `account` made, in order (1: onInstall, 2: onUninstall).
    /// @param account The account.
    /// @return The calls.
    function callsOf(address account) external view returns (uint8[] memory) {
        return _calls[account];
    }
}
