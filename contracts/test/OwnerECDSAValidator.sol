// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {
    IERC7579Validator,
    MODULE_TYPE_VALIDATOR,
    VALIDATION_SUCCESS,
    VALIDATION_FAILED
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title OwnerECDSAValidator
/// @notice Test support: a minimal ERC-7579 owner validator (one ECDSA key per account). keyscope's end-to-end
///         tests install it as the owner of the third-party accounts (Kernel, Nexus, Safe7579), whose own owner
///         validators are not distributed as bytecode through any package registry. Accounts in production keep
///         the owner validator they were created with; the SDK's adapters take its address.
/// @dev Install data: the owner's address in the first 20 bytes (as Kernel's and Nexus's ECDSA validators take
///      it). Both checks recover the signer of the given hash itself (no message prefix), so the owner signs the
///      userOpHash, and for ERC-1271 the hash the account passes on (Kernel's wrapped hash, the raw hash on
///      Nexus and Safe7579). Storage is keyed by the calling account (ERC-7562).
contract OwnerECDSAValidator is IERC7579Validator {
    bytes4 internal constant ERC1271_MAGIC = 0x1626ba7e;
    bytes4 internal constant ERC1271_INVALID = 0xffffffff;

    /// @notice The owner key of each account that installed the validator.
    mapping(address account => address owner) public ownerOf;

    /// @notice The install data holds no owner address (or the zero address).
    error NoOwner();

    /// @notice `account` installed the validator with `owner` as its key.
    event OwnerSet(address indexed account, address indexed owner);

    /// @notice Called by the account on install: `data` starts with the owner's address (20 bytes).
    function onInstall(bytes calldata data) external override {
        if (data.length < 20) revert NoOwner();
        address owner = address(bytes20(data[:20]));
        if (owner == address(0)) revert NoOwner();
        ownerOf[msg.sender] = owner;
        emit OwnerSet(msg.sender, owner);
    }

    /// @notice Called by the account on uninstall: forgets its owner.
    function onUninstall(bytes calldata) external override {
        delete ownerOf[msg.sender];
    }

    /// @notice A validator (module type 1) and nothing else.
    function isModuleType(uint256 moduleTypeId) external pure override returns (bool) {
        return moduleTypeId == MODULE_TYPE_VALIDATOR;
    }

    /// @notice Whether `account` has an owner here.
    function isInitialized(address account) external view returns (bool) {
        return ownerOf[account] != address(0);
    }

    /// @notice Valid when `userOp.signature` is the owner's 65-byte ECDSA signature of `userOpHash`.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        view
        override
        returns (uint256)
    {
        return _signedByOwner(msg.sender, userOpHash, userOp.signature) ? VALIDATION_SUCCESS : VALIDATION_FAILED;
    }

    /// @notice ERC-1271 through the account: valid when `signature` is the owner's signature of `hash`.
    function isValidSignatureWithSender(address, bytes32 hash, bytes calldata signature)
        external
        view
        override
        returns (bytes4)
    {
        return _signedByOwner(msg.sender, hash, signature) ? ERC1271_MAGIC : ERC1271_INVALID;
    }

    function _signedByOwner(address account, bytes32 hash, bytes calldata signature) internal view returns (bool) {
        address owner = ownerOf[account];
        if (owner == address(0)) return false;
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hash, signature);
        return error == ECDSA.RecoverError.NoError && signer == owner;
    }
}
