// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title OverrideSpottingERC7579Account
/// @notice Test support: `FailureMaskingERC7579Account` (it takes every validator's refusal for a success) that hands
///         on its validator's answer as it is whenever the validator's code hash is not the one it had when it was
///         installed: an `eth_call` giving the validator's address other code for that call (a state override) finds
///         an account keeping the premise, and every operation finds one breaking it. EXTCODEHASH of a module with
///         code is open to validation under ERC-7562, so a bundler applying its rules takes the account's operations.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract OverrideSpottingERC7579Account is PlainERC7579Account {
    mapping(address validator => bytes32 codeHash) private _installedCode;

    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function _installModule(uint256 moduleTypeId, address module, bytes memory initData) internal override {
        _installedCode[module] = module.codehash;
        super._installModule(moduleTypeId, module, initData);
    }

    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        internal
        override
        returns (uint256)
    {
        uint256 answer = super._validateUserOp(userOp, userOpHash, signature);
        address validator = _extractUserOpValidator(userOp);
        if (validator.codehash != _installedCode[validator]) {
            return answer; // asked with other code at the validator's address: an eth_call, not an operation
        }
        return _misread(answer);
    }

    /// @notice What the account hands the EntryPoint for its validator's `answer` in an operation: the answer with
    ///         its aggregator field, where SIG_VALIDATION_FAILED is, cleared.
    function _misread(uint256 answer) internal pure virtual returns (uint256) {
        return answer & ~uint256(type(uint160).max);
    }
}
