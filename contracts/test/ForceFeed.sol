// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ForceFeed
/// @notice Test helper: gives its value to `to` by SELFDESTRUCT, which no contract can refuse. On ape's py-evm
///         chain an eth_call's sender must afford the call's gas, so a contract that receives no ETH (the session
///         module) is given some this way before the tests make eth_calls from it, as the module asks accounts.
contract ForceFeed {
    /// @param to The address that receives this contract's value.
    constructor(address payable to) payable {
        selfdestruct(to);
    }
}
