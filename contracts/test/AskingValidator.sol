// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

/// @title AskingValidator
/// @notice Test helper: an ERC-7579 validator that asks the account's ERC-1271 `isValidSignature` about signatures,
///         itself or through another deployment of this contract, during an operation's validation or after it. It
///         shows whom, and when, an account takes its owner's bare ECDSA signature from (attack 259: only from the
///         validator it is asking to validate one of its operations, while it does).
contract AskingValidator {
    /// @notice The answer {record} got last.
    bytes4 public lastAnswer;

    /// @notice Nothing to set up.
    function onInstall(bytes calldata) external {}

    /// @notice Nothing to clear.
    function onUninstall(bytes calldata) external {}

    /// @notice A validator only.
    /// @param moduleTypeId The module type asked about.
    /// @return Whether it is 1.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 1;
    }

    /// @notice Valid (0) when the operation's signature is empty; otherwise its first 20 bytes name the deployment
    ///         of this contract that asks the account (`msg.sender`) whether the rest is a valid signature of
    ///         `userOpHash`: valid when the account says yes, 1 otherwise.
    /// @param userOp The operation.
    /// @param userOpHash Its hash.
    /// @return 0 or 1.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash) external view returns (uint256) {
        bytes calldata signature = userOp.signature;
        if (signature.length == 0) return 0;
        if (signature.length < 20) return 1;
        AskingValidator asker = AskingValidator(address(bytes20(signature[0:20])));
        return asker.answerOf(msg.sender, userOpHash, signature[20:]) == 0x1626ba7e ? 0 : 1;
    }

    /// @notice Says no to every ERC-1271 question routed to it, with a zero word rather than `0xffffffff`.
    /// @return Zero.
    function isValidSignatureWithSender(address, bytes32, bytes calldata) external pure returns (bytes4) {
        return 0x00000000;
    }

    /// @notice The account's answer to `isValidSignature(hash, signature)`, asked by this contract.
    /// @param account The account asked.
    /// @param hash The hash.
    /// @param signature The signature.
    /// @return answer The answer's first four bytes, `0xffffffff` when it reverted or was short.
    function answerOf(address account, bytes32 hash, bytes calldata signature) public view returns (bytes4 answer) {
        (bool ok, bytes memory data) = account.staticcall(abi.encodeWithSelector(0x1626ba7e, hash, signature));
        return ok && data.length >= 32 ? bytes4(abi.decode(data, (bytes32))) : bytes4(0xffffffff);
    }

    /// @notice Ask as {answerOf} does and keep the answer in {lastAnswer}.
    /// @param account The account asked.
    /// @param hash The hash.
    /// @param signature The signature.
    function record(address account, bytes32 hash, bytes calldata signature) external {
        lastAnswer = answerOf(account, hash, signature);
    }
}
