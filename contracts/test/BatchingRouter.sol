// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MulticallRouter} from "./MulticallRouter.sol";

/// @title BatchingRouter
/// @notice Test-only router whose dispatching function has another name than `multicall`: `batch(bytes[], bool)`,
///         the shape of a widely used batching mixin, runs each of its calls as a call of the router's own functions
///         with the caller as the sender (a delegatecall to itself), as a multicall does.
contract BatchingRouter is MulticallRouter {
    /// @notice Run each element of `calls` as a call of this contract's own functions, the caller kept as the sender.
    /// @param calls The calls, each a selector and its arguments.
    /// @param revertOnFail Whether one call's failure reverts the whole batch.
    function batch(bytes[] calldata calls, bool revertOnFail) external payable {
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool ok,) = address(this).delegatecall(calls[i]);
            require(ok || !revertOnFail, "batch call failed");
        }
    }
}
