// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title EffectRecorder
/// @notice Test-only target of the by-effect fuzzing of session operations: every call it receives, whatever its
///         selector or length, is logged with its caller, its value and its whole calldata, so that a test can
///         judge what an account did rather than what a validator said it would do.
contract EffectRecorder {
    /// @notice Emitted for every call received: the caller, the wei it carried and its whole calldata.
    event Seen(address indexed from, uint256 value, bytes data);

    /// @notice A payment: `pay(address to, uint256 amount, bytes memo)`. Its parameters are unnamed here: Solidity's
    ///         decoder still reads and checks all three before the body runs, which is all the fuzzing needs.
    function pay(address, uint256, bytes calldata) external payable {
        _note();
    }

    /// @notice A setting of narrow types, `setTier(uint8 tier, bool flag, address who)`: Solidity's decoder refuses
    ///         each of the three words unless it is its type's canonical encoding.
    function setTier(uint8, bool, address) external payable {
        _note();
    }

    /// @notice `note(uint256 amount)`, a function no grant of the fuzzing names: a call to it is outside the grant.
    function note(uint256) external payable {
        _note();
    }

    /// @notice Not a module of any type: what enabling a session asks of a target while the account has no code
    ///         yet (its proxy's constructor installing its modules). Answered here rather than by the fallback,
    ///         whose log would make that static call fail and burn the gas it was given.
    function isModuleType(uint256) external pure returns (bool) {
        return false;
    }

    /// @notice Not initialised for any account (the other question asked of a target, see {isModuleType}).
    function isInitialized(address) external pure returns (bool) {
        return false;
    }

    /// @notice Plain transfers are recorded.
    receive() external payable {
        _note();
    }

    /// @notice Calldata of any other selector, or of 1 to 3 bytes, is recorded too.
    fallback() external payable {
        _note();
    }

    function _note() private {
        emit Seen(msg.sender, msg.value, msg.data);
    }
}
