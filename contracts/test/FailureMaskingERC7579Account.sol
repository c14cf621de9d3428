// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title FailureMaskingERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` that supports no signature aggregator and clears the
///         aggregator field of its validator's answer, keeping the window: the field is also where
///         SIG_VALIDATION_FAILED (1) is, so the account takes every validator's refusal for a success. Any operation
///         naming any installed validator runs, whatever its signature.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract FailureMaskingERC7579Account is PlainERC7579Account {
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        internal
        override
        returns (uint256)
    {
        return super._validateUserOp(userOp, userOpHash, signature) & ~uint256(type(uint160).max);
    }
}
