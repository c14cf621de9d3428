// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Validator} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";

/// @title ValidatorCall
/// @notice How keyscope's accounts hand a UserOperation to an installed ERC-7579 validator: one call of
///         `validateUserOp(userOp, userOpHash)` built straight from the account's own calldata.
/// @dev The call's calldata, byte by byte:
///
///     | bytes        | field                                                             |
///     |--------------|-------------------------------------------------------------------|
///     | [0, 4)       | `IERC7579Validator.validateUserOp.selector`                       |
///     | [4, 36)      | offset of `userOp` in the arguments: 0x40                         |
///     | [36, 68)     | `userOpHash`                                                      |
///     | [68, ...)    | the account's calldata from `userOp`'s offset to its end, as is   |
///
/// The tail is copied as the EntryPoint sent it (not re-encoded), so the validator judges exactly the bytes the
/// account received. A revert of the validator is bubbled up; a return shorter than a word reverts.
library ValidatorCall {
    /// @dev The validator's validationData for `userOp`; reverts as the validator reverts.
    function forward(address module, PackedUserOperation calldata userOp, bytes32 userOpHash)
        internal
        returns (uint256 validationData)
    {
        bytes4 selector = IERC7579Validator.validateUserOp.selector;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := sub(calldatasize(), userOp)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), 0x40)
            mstore(add(ptr, 0x24), userOpHash)
            calldatacopy(add(ptr, 0x44), userOp, size)
            if iszero(call(gas(), module, 0, ptr, add(0x44, size), 0x00, 0x20)) {
                returndatacopy(ptr, 0, returndatasize())
                revert(ptr, returndatasize())
            }
            if lt(returndatasize(), 0x20) { revert(0, 0) }
            validationData := mload(0x00)
        }
    }
}
