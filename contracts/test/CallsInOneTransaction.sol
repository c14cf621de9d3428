// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title CallsInOneTransaction
/// @notice Test helper: makes several calls to one contract in a single transaction, going on after a call that
///         reverts, as the EntryPoint runs a bundle (every validation, then every execution, one transaction): what a
///         contract keeps in transient storage for the rest of the transaction is seen by the calls after it.
contract CallsInOneTransaction {
    /// @notice Call `to` with each of `calls`, in order.
    /// @param to The contract called.
    /// @param calls The calldata of each call.
    /// @return ok Whether each call succeeded.
    /// @return results Each call's return data, or its revert data.
    function run(address to, bytes[] calldata calls) external returns (bool[] memory ok, bytes[] memory results) {
        ok = new bool[](calls.length);
        results = new bytes[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (ok[i], results[i]) = to.call(calls[i]);
        }
    }
}
