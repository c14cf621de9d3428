// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC7579Validator, MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Calldata} from "@openzeppelin/contracts/utils/Calldata.sol";
import {PlainERC7579Account} from "./PlainERC7579Account.sol";

/// @title OriginSenderERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` whose ERC-1271 asks the validator named by the signature's
///         first 20 bytes with the transaction's origin as `sender`, not its caller. Asked by an `eth_call` from an
///         address, it answers as an account passing its caller does (the call's origin is its caller); asked by a
///         contract in a transaction (a module of the account run by someone's transaction), the module sees the
///         transaction's sender, never the asking module, and cannot refuse a session's signature to it.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract OriginSenderERC7579Account is PlainERC7579Account {
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData)
        PlainERC7579Account(entryPoint_, ownerValidator, ownerData)
    {}

    function isValidSignature(bytes32 hash, bytes calldata signature) public view override returns (bytes4) {
        if (signature.length < 20) return bytes4(0xffffffff);
        address module = address(bytes20(signature[:20]));
        if (!isModuleInstalled(MODULE_TYPE_VALIDATOR, module, Calldata.emptyBytes())) return bytes4(0xffffffff);
        // solhint-disable-next-line avoid-tx-origin
        try IERC7579Validator(module).isValidSignatureWithSender(tx.origin, hash, signature[20:]) returns (
            bytes4 magic
        ) {
            return magic;
        } catch {
            return bytes4(0xffffffff);
        }
    }
}
