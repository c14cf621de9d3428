// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC7579Validator, MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Calldata} from "@openzeppelin/contracts/utils/Calldata.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title ZeroSenderERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` whose ERC-1271 asks the validator named by the signature's
///         first 20 bytes with the zero address as `sender` (an account whose own validators make no use of it), not
///         with its caller. The session module refuses a session's signature to a verifier that is the account, the
///         module or another module of the account, which it can tell only from `sender`: here every module of the
///         account, the owner's validator among them, gets a session's signature as the account's.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract ZeroSenderERC7579Account is PlainERC7579Account {
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function isValidSignature(bytes32 hash, bytes calldata signature) public view override returns (bytes4) {
        if (signature.length < 20) return bytes4(0xffffffff);
        address module = address(bytes20(signature[:20]));
        if (!isModuleInstalled(MODULE_TYPE_VALIDATOR, module, Calldata.emptyBytes())) return bytes4(0xffffffff);
        try IERC7579Validator(module).isValidSignatureWithSender(address(0), hash, signature[20:]) returns (
            bytes4 magic
        ) {
            return magic;
        } catch {
            return bytes4(0xffffffff);
        }
    }
}
