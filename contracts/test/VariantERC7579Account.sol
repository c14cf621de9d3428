// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint, IAccountExecute, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Validator, MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";
import {Calldata} from "@openzeppelin/contracts/utils/Calldata.sol";
import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {ERC7579Utils, Mode, CallType} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";

/// @title VariantERC7579Account
/// @notice Test support: OpenZeppelin's `AccountERC7579` with spec-legal choices `QuirkyERC7579Account` does not
///         make (a bit set chosen at deployment), for the generic-adapter integration tests.
/// @dev Deployed directly (no proxy), with the owner's validator installed by the constructor.
contract VariantERC7579Account is AccountERC7579, IAccountExecute {
    using ERC7579Utils for *;

    /// @notice `supportsExecutionMode` says no to single calls (CALLTYPE_SINGLE), and `execute` reverts for them:
    ///         the account runs batches only (a batch of one is how it makes one call).
    uint256 public constant BATCH_ONLY = 1;
    /// @notice `execute` is the account's own (only the account may call it); the EntryPoint reaches it through
    ///         `executeUserOp`, whose callData the account runs on itself (as Kernel and Nexus can).
    uint256 public constant EXECUTE_THROUGH_EXECUTE_USER_OP = 2;
    /// @notice The validator of a UserOperation is the signature's first 20 bytes, and the validator is handed the
    ///         operation with the rest of the signature (the account strips its selector).
    uint256 public constant VALIDATOR_PREFIX_STRIPPED = 4;

    IEntryPoint private immutable _entryPoint;
    /// @notice This account's variants (a bit set of the constants above).
    uint256 public immutable variants;

    /// @notice `execute` was asked for a mode this account does not run.
    error ModeUnsupported(bytes32 mode);

    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData, uint256 variants_) {
        _entryPoint = entryPoint_;
        variants = variants_;
        _installModule(MODULE_TYPE_VALIDATOR, ownerValidator, ownerData);
    }

    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    function accountId() public pure override returns (string memory) {
        return "keyscope-tests.variant-erc7579.v1";
    }

    function supportsExecutionMode(bytes32 encodedMode) public view override returns (bool) {
        if (variants & BATCH_ONLY != 0) {
            (CallType callType, , , ) = Mode.wrap(encodedMode).decodeMode();
            if (callType == ERC7579Utils.CALLTYPE_SINGLE) return false;
        }
        return super.supportsExecutionMode(encodedMode);
    }

    function execute(bytes32 mode, bytes calldata executionCalldata) public payable override {
        if (variants & EXECUTE_THROUGH_EXECUTE_USER_OP != 0) {
            if (msg.sender != address(this)) revert AccountUnauthorized(msg.sender);
            _execute(Mode.wrap(mode), executionCalldata);
        } else {
            super.execute(mode, executionCalldata);
        }
    }

    /// @notice The EntryPoint's way in with `EXECUTE_THROUGH_EXECUTE_USER_OP`: the operation's callData after
    ///         this selector, run as a call of the account to itself.
    function executeUserOp(PackedUserOperation calldata userOp, bytes32) external onlyEntryPoint {
        (bool ok, bytes memory returned) = address(this).call(userOp.callData[4:]);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(returned, 0x20), mload(returned))
            }
        }
    }

    function _execute(Mode mode, bytes calldata executionCalldata) internal override returns (bytes[] memory) {
        if (!supportsExecutionMode(Mode.unwrap(mode))) revert ModeUnsupported(Mode.unwrap(mode));
        return super._execute(mode, executionCalldata);
    }

    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        internal
        override
        returns (uint256)
    {
        if (variants & VALIDATOR_PREFIX_STRIPPED == 0) return super._validateUserOp(userOp, userOpHash, signature);
        if (userOp.signature.length < 20) return ERC4337Utils.SIG_VALIDATION_FAILED;
        address module = address(bytes20(userOp.signature[:20]));
        if (!isModuleInstalled(MODULE_TYPE_VALIDATOR, module, Calldata.emptyBytes())) {
            return ERC4337Utils.SIG_VALIDATION_FAILED;
        }
        PackedUserOperation memory inner = userOp;
        inner.signature = userOp.signature[20:];
        return IERC7579Validator(module).validateUserOp(inner, _signableUserOpHash(userOp, userOpHash));
    }
}
