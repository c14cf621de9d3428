// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title ChainAgnosticERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` handing its validators a UserOperation hash of its own
///         instead of the EntryPoint's, through OpenZeppelin's extension point for it (`_signableUserOpHash`): the
///         EntryPoint v0.7 hash with the chain id set to 0, so that one signature serves the same operation on
///         every chain the account is on (the "sign once, run everywhere" operations some vendors offer; Kernel
///         v3.3 hands its validators such a hash when the signature asks for it). Every validator, the owner's and
///         the session module, signs that hash: what binds a session's operation to one chain is then only what
///         the session module binds itself.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract ChainAgnosticERC7579Account is PlainERC7579Account {
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    /// @notice The hash this account hands its validators for `userOp`: the EntryPoint v0.7 hash with chain id 0.
    function chainAgnosticHash(PackedUserOperation calldata userOp) public view returns (bytes32) {
        bytes32 packed = keccak256(
            abi.encode(
                userOp.sender,
                userOp.nonce,
                keccak256(userOp.initCode),
                keccak256(userOp.callData),
                userOp.accountGasLimits,
                userOp.preVerificationGas,
                userOp.gasFees,
                keccak256(userOp.paymasterAndData)
            )
        );
        return keccak256(abi.encode(packed, address(entryPoint()), uint256(0)));
    }

    function _signableUserOpHash(PackedUserOperation calldata userOp, bytes32)
        internal
        view
        override
        returns (bytes32)
    {
        return chainAgnosticHash(userOp);
    }
}
