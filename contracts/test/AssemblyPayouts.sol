// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title AssemblyPayouts
/// @notice Test-only victim: a gas-optimised payout router that dispatches in its fallback and reads its arguments
///         with CALLDATALOAD, cleaning each word to its type (masking an address and a bytes4, sign-extending an
///         int8) as hand-written assembly does, instead of reverting on a word that is not canonical.
///
///         `pay(address to, int8 priority, bytes4 tag)` forwards the call's value to `to`.
contract AssemblyPayouts {
    /// @notice The selector of `pay(address,int8,bytes4)`.
    bytes4 public constant PAY = bytes4(keccak256("pay(address,int8,bytes4)"));

    /// @notice A payout was made.
    event Paid(address indexed to, uint256 amount, int8 priority, bytes4 tag);

    /// @notice Not `pay`, or a payout that could not be delivered.
    error PayoutFailed();

    /// @notice Dispatches `pay(address,int8,bytes4)`; anything else reverts.
    fallback() external payable {
        if (msg.data.length < 100 || bytes4(msg.data[:4]) != PAY) revert PayoutFailed();
        address to;
        int8 priority;
        bytes4 tag;
        assembly ("memory-safe") {
            to := and(calldataload(4), 0xffffffffffffffffffffffffffffffffffffffff)
            priority := signextend(0, calldataload(36))
            tag := and(calldataload(68), shl(224, 0xffffffff))
        }
        emit Paid(to, msg.value, priority, tag);
        (bool sent,) = payable(to).call{value: msg.value}("");
        if (!sent) revert PayoutFailed();
    }
}
