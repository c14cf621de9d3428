// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title WindowDroppingERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` that reads its validator's answer as a yes or a no: it hands
///         the EntryPoint SIG_VALIDATION_SUCCESS (valid now, for ever) whenever the validator's answer has no failure
///         in it, and SIG_VALIDATION_FAILED otherwise, dropping the validAfter and validUntil the validator gave. The
///         session module reads no clock: a session's window and the period an operation is counted in bind only
///         through those two, so this account breaks a premise the module cannot check.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract WindowDroppingERC7579Account is PlainERC7579Account {
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        internal
        override
        returns (uint256)
    {
        uint256 answer = super._validateUserOp(userOp, userOpHash, signature);
        return uint160(answer) == 0 ? ERC4337Utils.SIG_VALIDATION_SUCCESS : ERC4337Utils.SIG_VALIDATION_FAILED;
    }
}
