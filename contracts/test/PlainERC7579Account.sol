// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";

/// @title PlainERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` as it comes, with nothing of keyscope's: its own
///         `accountId()` (no keyscope adapter is made for it), validators kept in a set (uninstalling one names no
///         neighbour, unlike the reference account's sentinel list), no factory. The end-to-end tests drive it
///         through the SDK's generic ERC-7579 adapter, as a dapp would an account keyscope has never seen.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract PlainERC7579Account is AccountERC7579 {
    IEntryPoint private immutable _entryPoint;

    /// @param entryPoint_ The EntryPoint the account trusts.
    /// @param ownerValidator The validator module the owner signs through.
    /// @param ownerData Its install data (the owner's address, for OwnerECDSAValidator).
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData) {
        _entryPoint = entryPoint_;
        _installModule(MODULE_TYPE_VALIDATOR, ownerValidator, ownerData);
    }

    /// @notice The EntryPoint this account trusts.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }
}
