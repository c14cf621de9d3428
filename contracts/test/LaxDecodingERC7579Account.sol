// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {Mode} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title LaxDecodingERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` (validators, executors, fallback handlers with the caller
///         appended as ERC-2771 says) whose `execute` reads its bytes as other real accounts do, not as the session
///         module does:
///         * READ_BY_OFFSETS: as Solady's `LibERC7579` and `ERC7821` read them. A batch is found where the first word
///           of executionCalldata points, and its calls where each element offset points; a first word of 0x40 or
///           more means `abi.encode(calls, opData)` (ERC-7821's optional opData, ignored here); a target word is
///           called as it is (the EVM keeps its low 160 bits); a call to address(0) is a call to the account
///           itself. The mode is read as ERC-7821 reads it: bytes 2-5 and 10-31 are ignored, a mode selector
///           (bytes 6-9) of `0x78210001` is a batch with opData, `0x78210002` a batch of batches
///           (`abi.encode(bytes[])`, each an executionCalldata of its own).
///         * READ_IN_MEMORY: a batch is `abi.decode(executionCalldata, (Execution[]))`, Solidity's decoder in memory,
///           which follows every offset it is given and ignores bytes nobody points at.
///         Both read a single call as the ERC-7579 packing `target (20) ‖ value (32) ‖ data` (as every decoder
///         does) and run exec type 0x01 as try (a failing call does not end the batch). The account also takes the
///         EntryPoint's `executeUserOp`, running `userOp.callData[4:]` on itself by delegatecall as Kernel and Nexus
///         do. The session module must run on it nothing but the calls it judged.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract LaxDecodingERC7579Account is PlainERC7579Account {
    /// @dev The two readings of a batch this account can be made with.
    uint8 public constant READ_BY_OFFSETS = 0;
    uint8 public constant READ_IN_MEMORY = 1;

    /// @notice The executionCalldata could not be read (an offset or a length past its end).
    error DecodingError();
    /// @notice The call type is not one this account runs.
    error UnsupportedCallType(bytes1 callType);
    /// @notice `executeUserOp` was called by another caller than the EntryPoint.
    error NotFromEntryPoint(address caller);

    /// @notice How this account reads a batch (READ_BY_OFFSETS or READ_IN_MEMORY).
    uint8 public immutable reading;

    /// @param entryPoint_ The EntryPoint the account trusts.
    /// @param ownerValidator The validator module the owner signs through.
    /// @param ownerData Its install data (the owner's address, for OwnerECDSAValidator).
    /// @param reading_ READ_BY_OFFSETS or READ_IN_MEMORY.
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData, uint8 reading_)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {
        reading = reading_;
    }

    /// @notice The account's ERC-7579 id (no keyscope adapter is made for it).
    function accountId() public pure override returns (string memory) {
        return "keyscope-tests.lax-decoding-erc7579.v1";
    }

    /// @notice The EntryPoint's IAccountExecute path: run `userOp.callData[4:]` on this account (a delegatecall to
    ///         itself, so `execute` still sees the EntryPoint as its caller), as Kernel and Nexus do.
    /// @param userOp The operation whose callData starts with this function's selector.
    function executeUserOp(PackedUserOperation calldata userOp, bytes32) external payable {
        if (msg.sender != address(entryPoint())) revert NotFromEntryPoint(msg.sender);
        (bool ok, bytes memory answer) = address(this).delegatecall(userOp.callData[4:]);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
    }

    function _execute(Mode mode, bytes calldata executionCalldata) internal override returns (bytes[] memory) {
        bytes32 m = Mode.unwrap(mode);
        bool try_ = m[1] == 0x01;
        if (m[0] == 0x00) {
            if (executionCalldata.length < 52) revert DecodingError();
            _call(uint256(bytes32(executionCalldata[:20])) >> 96, uint256(bytes32(executionCalldata[20:52])), executionCalldata[52:], try_);
        } else if (m[0] == 0x01) {
            if (reading == READ_IN_MEMORY) {
                Execution[] memory calls = abi.decode(executionCalldata, (Execution[]));
                for (uint256 i = 0; i < calls.length; ++i) {
                    (bool ok, bytes memory answer) = _to(uint160(calls[i].target)).call{value: calls[i].value}(
                        calls[i].callData
                    );
                    _settle(ok, answer, try_);
                }
            } else if (bytes4(m << 48) == 0x78210002) {
                bytes[] calldata batches = _batchesOf(executionCalldata);
                for (uint256 i = 0; i < batches.length; ++i) {
                    _runByOffsets(batches[i], try_);
                }
            } else {
                _runByOffsets(executionCalldata, try_);
            }
        } else {
            revert UnsupportedCallType(m[0]);
        }
        return new bytes[](0);
    }

    /// @dev A batch read as Solady's `LibERC7579.decodeBatch` and `getExecution` read it: the array where the first
    ///      word points (opData, when the first word is 0x40 or more, is left unread), each call where its offset
    ///      points, its data where its third word points; bounded by executionCalldata's end.
    function _runByOffsets(bytes calldata data, bool try_) internal {
        if (data.length < 32) revert DecodingError();
        uint256 end = data.length;
        uint256 array = uint256(bytes32(data[:32]));
        if (array > end - 32) revert DecodingError();
        uint256 count = uint256(bytes32(data[array:array + 32]));
        if (count > (end - array - 32) / 32) revert DecodingError();
        uint256 base = array + 32;
        for (uint256 i = 0; i < count; ++i) {
            uint256 c = base + uint256(bytes32(data[base + 32 * i:base + 32 * i + 32]));
            if (c > end - 96) revert DecodingError();
            uint256 target = uint256(bytes32(data[c:c + 32]));
            uint256 value = uint256(bytes32(data[c + 32:c + 64]));
            uint256 o = c + uint256(bytes32(data[c + 64:c + 96]));
            if (o > end - 32) revert DecodingError();
            uint256 size = uint256(bytes32(data[o:o + 32]));
            if (size > end - o - 32) revert DecodingError();
            _call(target, value, data[o + 32:o + 32 + size], try_);
        }
    }

    /// @dev ERC-7821's batch of batches: `abi.encode(bytes[])`, read where the first word points.
    function _batchesOf(bytes calldata data) internal pure returns (bytes[] calldata batches) {
        if (data.length < 32 || uint256(bytes32(data[:32])) > data.length - 32) revert DecodingError();
        assembly ("memory-safe") {
            let o := add(data.offset, calldataload(data.offset))
            batches.offset := add(o, 0x20)
            batches.length := calldataload(o)
        }
    }

    /// @dev Call the target word as it is (the EVM keeps its low 160 bits); address(0) is the account itself.
    function _call(uint256 target, uint256 value, bytes calldata data, bool try_) internal {
        (bool ok, bytes memory answer) = _to(target).call{value: value}(data);
        _settle(ok, answer, try_);
    }

    function _to(uint256 target) internal view returns (address to) {
        to = address(uint160(target));
        if (to == address(0)) to = address(this);
    }

    function _settle(bool ok, bytes memory answer, bool try_) internal pure {
        if (!ok && !try_) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
    }
}
