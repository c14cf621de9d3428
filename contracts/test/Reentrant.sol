// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Reentrant
/// @notice Test-only target that calls back whatever it is told to, while the account's call to it runs: a granted
///         target turned against the account (back into the account, into the EntryPoint, into the module). It never
///         reverts: it records whether each call back succeeded, so a test can see every one of them refused.
contract Reentrant {
    /// @notice Emitted for each call back made: where to, whether it succeeded, what it returned.
    event Relayed(address indexed to, bool ok, bytes answer);

    /// @notice How many calls back succeeded.
    uint256 public succeeded;
    /// @notice How many calls back were made.
    uint256 public attempted;

    /// @notice Call `to` with `data`, recording the outcome.
    function relay(address to, bytes calldata data) external {
        (bool ok, bytes memory answer) = to.call(data);
        attempted += 1;
        if (ok) succeeded += 1;
        emit Relayed(to, ok, answer);
    }
}
