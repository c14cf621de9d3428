// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Mode} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title FixedOffsetERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` whose `execute(bytes32 mode, bytes executionCalldata)` reads
///         executionCalldata where a canonical encoding puts it, at a fixed place in its calldata (its length at byte
///         0x44, its bytes from 0x64, as hand-optimised accounts do), ignoring the ABI offset word that Solidity's
///         decoder follows. A single call is the ERC-7579 packing `target (20) ‖ value (32) ‖ data`. Any offset word
///         but 0x40 makes the two readings differ: the session module must refuse it.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract FixedOffsetERC7579Account is PlainERC7579Account {
    /// @notice The execution read at the fixed place could not be run (too short, or not a single call).
    error FixedOffsetUnreadable();

    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function _execute(Mode mode, bytes calldata) internal override returns (bytes[] memory) {
        if (Mode.unwrap(mode)[0] != 0x00 || msg.data.length < 0x64) revert FixedOffsetUnreadable();
        uint256 length = uint256(bytes32(msg.data[0x44:0x64]));
        if (length < 52 || length > msg.data.length - 0x64) revert FixedOffsetUnreadable();
        bytes calldata execution = msg.data[0x64:0x64 + length];
        address target = address(bytes20(execution[:20]));
        (bool ok, bytes memory answer) = target.call{value: uint256(bytes32(execution[20:52]))}(execution[52:]);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
        return new bytes[](0);
    }
}
