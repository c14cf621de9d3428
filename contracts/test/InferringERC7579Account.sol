// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ERC7579Utils, Mode, CallType, ExecType} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title InferringERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` whose single calls are read from the packing
///         `target (20) ‖ value (32) ‖ data` with the data's length inferred: the call's data runs from byte 52 of
///         executionCalldata to the end of the account's calldata, as accounts that read that packing with
///         `msg.data[start:]` or `calldatasize()` do. For callData a canonical encoder made, the call gets its data
///         followed by the zero bytes that pad executionCalldata to a word (which targets ignore); batches are read
///         as OpenZeppelin reads them. The session module must give such an account nothing to run beyond the call
///         it judged.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract InferringERC7579Account is PlainERC7579Account {
    using ERC7579Utils for *;

    /// @param entryPoint_ The EntryPoint the account trusts.
    /// @param ownerValidator The validator module the owner signs through.
    /// @param ownerData Its install data (the owner's address, for OwnerECDSAValidator).
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    /// @notice The account's ERC-7579 id (no keyscope adapter is made for it).
    function accountId() public pure override returns (string memory) {
        return "keyscope-tests.inferring-erc7579.v1";
    }

    function _execute(Mode mode, bytes calldata executionCalldata) internal override returns (bytes[] memory) {
        (CallType callType, ExecType execType,,) = mode.decodeMode();
        if (!(callType == ERC7579Utils.CALLTYPE_SINGLE)) return super._execute(mode, executionCalldata);
        address target = address(bytes20(executionCalldata[:20]));
        uint256 value = uint256(bytes32(executionCalldata[20:52]));
        // the data's length inferred from the calldata's end
        uint256 start;
        assembly ("memory-safe") {
            start := add(executionCalldata.offset, 52)
        }
        bytes calldata data = msg.data[start:];
        (bool success, bytes memory returnData) = target.call{value: value}(data);
        if (execType == ERC7579Utils.EXECTYPE_DEFAULT) Address.verifyCallResult(success, returnData);
        bytes[] memory results = new bytes[](1);
        results[0] = returnData;
        return results;
    }
}
