// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Validator, MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";
import {Calldata} from "@openzeppelin/contracts/utils/Calldata.sol";
import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {ERC7579Utils, Mode, CallType, ExecType} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";

/// @title QuirkyERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` with one or more legitimate departures from the reference
///         implementation's conventions, chosen at deployment (`quirks`, a bit set). ERC-7579 leaves each of them to
///         the account; the end-to-end tests point the SDK's generic adapter at them to check that a session either
///         works as granted or is refused before anything is sent, never given more than its grant.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract QuirkyERC7579Account is AccountERC7579 {
    using ERC7579Utils for *;

    /// @notice `accountId()` reverts (an account that does not implement it, or not this way).
    uint256 public constant ACCOUNT_ID_REVERTS = 1;
    /// @notice The validator of a UserOperation is the signature's first 20 bytes, not the nonce key's.
    uint256 public constant VALIDATOR_IN_SIGNATURE = 2;
    /// @notice `isValidSignature` asks the validator about the hash wrapped in the account's own prefix.
    uint256 public constant WRAPPED_ERC1271_HASH = 4;
    /// @notice `supportsExecutionMode` says no to batch and try modes, and `execute` reverts for them.
    uint256 public constant SINGLE_DEFAULT_MODE_ONLY = 8;
    /// @notice `isModuleInstalled` reverts when asked about a validator.
    uint256 public constant VALIDATOR_QUERY_REVERTS = 16;

    IEntryPoint private immutable _entryPoint;
    /// @notice The quirks of this account (a bit set of the constants above).
    uint256 public immutable quirks;

    /// @notice `accountId()` is not implemented by this account.
    error NoAccountId();
    /// @notice The account does not say which validators it has.
    error ValidatorQueryUnsupported(address module);
    /// @notice `execute` was asked for a mode this account does not run.
    error ModeUnsupported(bytes32 mode);

    /// @param entryPoint_ The EntryPoint the account trusts.
    /// @param ownerValidator The validator module the owner signs through.
    /// @param ownerData Its install data (the owner's address, for OwnerECDSAValidator).
    /// @param quirks_ The account's quirks (a bit set of the constants above).
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData, uint256 quirks_) {
        _entryPoint = entryPoint_;
        quirks = quirks_;
        _installModule(MODULE_TYPE_VALIDATOR, ownerValidator, ownerData);
    }

    /// @notice The EntryPoint this account trusts.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    /// @notice The account's ERC-7579 id, unless it reverts (`ACCOUNT_ID_REVERTS`).
    function accountId() public view override returns (string memory) {
        if (quirks & ACCOUNT_ID_REVERTS != 0) revert NoAccountId();
        return "keyscope-tests.quirky-erc7579.v1";
    }

    /// @notice Whether the account runs `encodedMode`: with `SINGLE_DEFAULT_MODE_ONLY`, single calls reverting on
    ///         failure only.
    function supportsExecutionMode(bytes32 encodedMode) public view override returns (bool) {
        if (quirks & SINGLE_DEFAULT_MODE_ONLY == 0) return super.supportsExecutionMode(encodedMode);
        (CallType callType, ExecType execType, , ) = Mode.wrap(encodedMode).decodeMode();
        return callType == ERC7579Utils.CALLTYPE_SINGLE && execType == ERC7579Utils.EXECTYPE_DEFAULT;
    }

    /// @notice Whether `module` is installed as `moduleTypeId`; reverts for validators with
    ///         `VALIDATOR_QUERY_REVERTS` (the account's own checks use {_hasValidator}).
    function isModuleInstalled(uint256 moduleTypeId, address module, bytes calldata additionalContext)
        public
        view
        override
        returns (bool)
    {
        if (quirks & VALIDATOR_QUERY_REVERTS != 0 && moduleTypeId == MODULE_TYPE_VALIDATOR) {
            revert ValidatorQueryUnsupported(module);
        }
        return super.isModuleInstalled(moduleTypeId, module, additionalContext);
    }

    /// @notice ERC-1271 as `AccountERC7579` has it (the validator named by the signature's first 20 bytes); with
    ///         `WRAPPED_ERC1271_HASH` the validator is asked about `keccak256("QuirkyERC7579Account" ‖ account ‖
    ///         hash)` instead of `hash`.
    function isValidSignature(bytes32 hash, bytes calldata signature) public view override returns (bytes4) {
        if (signature.length < 20) return bytes4(0xffffffff);
        (address module, bytes calldata inner) = _extractSignatureValidator(signature);
        if (!_hasValidator(module)) return bytes4(0xffffffff);
        if (quirks & WRAPPED_ERC1271_HASH != 0) {
            hash = keccak256(abi.encodePacked("QuirkyERC7579Account", address(this), hash));
        }
        try IERC7579Validator(module).isValidSignatureWithSender(msg.sender, hash, inner) returns (bytes4 magic) {
            return magic;
        } catch {
            return bytes4(0xffffffff);
        }
    }

    function _execute(Mode mode, bytes calldata executionCalldata) internal override returns (bytes[] memory) {
        if (!supportsExecutionMode(Mode.unwrap(mode))) revert ModeUnsupported(Mode.unwrap(mode));
        return super._execute(mode, executionCalldata);
    }

    /// @dev The validator named by the nonce key's top 20 bytes, or with `VALIDATOR_IN_SIGNATURE` by the signature's
    ///      first 20 bytes (the rest going to the validator's own check as the account's signature is not cut: the
    ///      validator sees the whole `userOp`). A validator that is not installed fails validation.
    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata)
        internal
        override
        returns (uint256)
    {
        address module = quirks & VALIDATOR_IN_SIGNATURE != 0
            ? (userOp.signature.length >= 20 ? address(bytes20(userOp.signature[:20])) : address(0))
            : _extractUserOpValidator(userOp);
        if (!_hasValidator(module)) return ERC4337Utils.SIG_VALIDATION_FAILED;
        return IERC7579Validator(module).validateUserOp(userOp, _signableUserOpHash(userOp, userOpHash));
    }

    function _hasValidator(address module) internal view returns (bool) {
        return super.isModuleInstalled(MODULE_TYPE_VALIDATOR, module, Calldata.emptyBytes());
    }
}
