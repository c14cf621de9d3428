// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title RecordingTarget
/// @notice Test-only target: functions with arguments of many types that record each call they receive.
contract RecordingTarget {
    /// @notice Emitted for every call received.
    event Called(address indexed from, uint256 value, bytes data);

    /// @notice How many calls this contract received.
    uint256 public calls;

    /// @notice A function with one argument of each basic static type.
    function record(uint256 amount, int256 delta, address who, bytes32 tag, bool flag) external payable {
        _note();
        amount;
        delta;
        who;
        tag;
        flag;
    }

    /// @notice A second function, to test selector matching.
    function other(uint256 amount) external payable {
        _note();
        amount;
    }

    /// @notice A function with a dynamic argument before a static one.
    function withBytes(bytes calldata data, uint256 amount) external payable {
        _note();
        data;
        amount;
    }

    /// @notice Plain transfers are recorded too.
    receive() external payable {
        _note();
    }

    function _note() private {
        calls += 1;
        emit Called(msg.sender, msg.value, msg.data);
    }
}
