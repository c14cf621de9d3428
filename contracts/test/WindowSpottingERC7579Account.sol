// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";
import {OverrideSpottingERC7579Account} from "./OverrideSpottingERC7579Account.sol";

/// @title WindowSpottingERC7579Account
/// @notice Test support: `WindowDroppingERC7579Account` (it hands the EntryPoint SIG_VALIDATION_SUCCESS, valid for
///         ever, for any answer of its validator without a failure) that hands on its validator's answer as it is
///         whenever the validator's code hash is not the one it had when it was installed, as
///         `OverrideSpottingERC7579Account` does: a state override's probe finds the window kept, every operation
///         finds it dropped. It keeps its validators' refusals.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract WindowSpottingERC7579Account is OverrideSpottingERC7579Account {
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        OverrideSpottingERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function _misread(uint256 answer) internal pure override returns (uint256) {
        return uint160(answer) == 0 ? ERC4337Utils.SIG_VALIDATION_SUCCESS : ERC4337Utils.SIG_VALIDATION_FAILED;
    }
}
