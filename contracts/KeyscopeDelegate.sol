// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Account} from "@openzeppelin/contracts/account/Account.sol";
import {ERC7579Utils, Mode, CallType, ExecType} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {
    IERC7579AccountConfig,
    IERC7579Execution,
    IERC7579Module,
    IERC7579ModuleConfig,
    IERC7579Validator,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_FALLBACK,
    MODULE_TYPE_VALIDATOR
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ERC721Holder} from "@openzeppelin/contracts/token/ERC721/utils/ERC721Holder.sol";
import {ERC1155Holder} from "@openzeppelin/contracts/token/ERC1155/utils/ERC1155Holder.sol";
import {AccountModules} from "./AccountModules.sol";
import {ValidatorCall} from "./ValidatorCall.sol";
import {SignerEIP7702} from "@openzeppelin/contracts/utils/cryptography/signers/SignerEIP7702.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IKeyscopeDelegate} from "./interfaces/IKeyscopeDelegate.sol";

/// @title KeyscopeDelegate
/// @notice keyscope's ERC-7579 modular account as an EIP-7702 delegate: an EOA delegates its code here and keeps
///         its address, its assets and its key. The EOA's own key is the owner (a signature is the owner's when
///         `ecrecover` gives `address(this)`), and ERC-7579 modules (the session-key validator) install on it as on
///         any modular account.
/// @dev One deployment serves every EOA that delegates to it; the EntryPoint (v0.8, which carries EIP-7702
///      authorizations) is an immutable of this code.
///
/// Nothing is initialised at delegation: the owner is `address(this)`, so there is no initializer for anyone to
/// call first. Modules are installed only by the EntryPoint after the owner's signature was validated, or by the
/// EOA itself (a transaction it signs to its own address).
///
/// Validation follows keyscope's other account: the top 20 bytes of the UserOperation's 192-bit nonce key name an
/// installed validator, which then validates the operation; any other key (0 included) asks for the owner's
/// signature of the userOpHash. ERC-1271: a signature starting with an installed validator's address goes to that
/// validator, anything else must be the owner's 65-byte signature of the hash.
///
/// Storage (ERC-7201 namespace `keyscope.storage.KeyscopeDelegate`, so that code the EOA delegated to before or
/// delegates to later, with its own layout, neither reads nor overwrites it by accident):
///
///     slot  STORAGE_LOCATION + 0, + 1   validators       EnumerableSet.AddressSet (values, positions)
///     slot  STORAGE_LOCATION + 2, + 3   executors        EnumerableSet.AddressSet (values, positions)
///     slot  STORAGE_LOCATION + 4        fallbacks        mapping(bytes4 selector => address handler)
///     slot  STORAGE_LOCATION + 5        fallbackCount    mapping(address handler => uint256 selectors)
///     slot  STORAGE_LOCATION + 6, + 7   fallbackHandlers EnumerableSet.AddressSet (values, positions)
///     slot  STORAGE_LOCATION + 8, + 9   fallbackSelectors EnumerableSet.Bytes32Set (values, positions)
///
/// Membership of each set is read from the set as listed (a module's position must name an entry below the length
/// that holds it, not merely be non-zero as OpenZeppelin's `contains` reads it): other code can write a position
/// alone, and the SDK lists the values. A selector's handler is in force only while it is in `fallbackHandlers` and
/// the selector in `fallbackSelectors` too (so that {resetModules} forgets every selector in constant gas): storage other code wrote in this
/// namespace (EIP-7702 never clears it) can put any handler in the `fallbacks` mapping, which no one can list, and a
/// handler is called from the EOA itself (a token as the handler of `transfer` would move the EOA's tokens for
/// anyone). The set can be listed, so the owner's SDK sees every handler that can act before it delegates here.
///
/// Installing a module (of any type) first asks every installed validator, every validator uninstalled earlier in the
/// same transaction, and every validator that validated an operation of this account earlier in it (one that
/// {resetModules} forgot since included), `isTargetOfLiveSession(this, module)` and
/// refuses the module when one answers true: a live session may call it, and modules keep their configuration per
/// calling account, so that call would reconfigure the module for this account. The owner revokes those sessions
/// first, in an earlier transaction (a session revoked in this one still counts). Validators that do not answer the view (anything but a word holding 1) do not block.
///
/// Re-delegation: EIP-7702 leaves an EOA's storage as it was when the EOA delegates elsewhere, and modules keep
/// their state per account address. A module installed here while this code holds it under no module type may
/// still hold state for this address from an earlier delegation; when it reports `isInitialized(this)`, its
/// `onUninstall` runs before its `onInstall`, so the install starts from a clean state (for the session module:
/// every earlier session and enable signature dies).
contract KeyscopeDelegate is
    Account,
    SignerEIP7702,
    IERC7579AccountConfig,
    IERC7579ModuleConfig,
    IERC7579Execution,
    IERC1271,
    IKeyscopeDelegate,
    ERC721Holder,
    ERC1155Holder
{
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.Bytes32Set;
    using ERC7579Utils for *;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @custom:storage-location erc7201:keyscope.storage.KeyscopeDelegate
    struct DelegateStorage {
        EnumerableSet.AddressSet validators;
        EnumerableSet.AddressSet executors;
        mapping(bytes4 selector => address handler) fallbacks;
        mapping(address handler => uint256 selectors) fallbackCount;
        EnumerableSet.AddressSet fallbackHandlers;
        EnumerableSet.Bytes32Set fallbackSelectors;
    }

    /// @dev keccak256(abi.encode(uint256(keccak256("keyscope.storage.KeyscopeDelegate")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant STORAGE_LOCATION = 0x68f21845f977cb84b8990964c962c9cec336f6641711f359501128738fece100;

    /// @dev Transient: the validators uninstalled in this transaction and those that validated an operation of this
    ///      account in it (their count here, the addresses after it), at
    ///      keccak256("keyscope.delegate.uninstalledValidators"). Installing asks them too: a validator's sessions
    ///      validated in this bundle still run after it is gone, whether uninstalled or forgotten by {resetModules}
    ///      (which calls no module and records nothing, so that nothing other code wrote can make it revert).
    uint256 private constant UNINSTALLED_SLOT = 0xcb78f8879746bd855eef24ce716f68bceff28d748eec0dc2a9dadc1584b384b8;

    bytes4 private constant ERC1271_MAGIC = 0x1626ba7e;
    bytes4 private constant ERC1271_INVALID = 0xffffffff;
    /// @dev EntryPoint v0.8's EIP-7702 initCode: `0x7702` padded to 20 bytes, then the data of an init call.
    uint256 private constant EIP7702_MARKER_LENGTH = 20;
    bytes4 private constant IS_INITIALIZED = bytes4(keccak256("isInitialized(address)"));

    IEntryPoint private immutable _entryPoint;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTION
    //////////////////////////////////////////////////////////////*/

    /// @param entryPoint_ The EntryPoint every EOA delegating here accepts UserOperations from.
    constructor(IEntryPoint entryPoint_) {
        _entryPoint = entryPoint_;
    }

    /*//////////////////////////////////////////////////////////////
                                ACCOUNT
    //////////////////////////////////////////////////////////////*/

    /// @notice The EntryPoint this account accepts UserOperations from.
    /// @return The EntryPoint given at deployment.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    /// @notice The ERC-7579 account identifier, `vendor.account.semver`.
    /// @return The identifier.
    function accountId() public pure override returns (string memory) {
        return "keyscope.delegate.v0.1.0";
    }

    /// @notice Whether `encodedMode` is supported: single, batch and delegatecall calls, reverting or not.
    /// @param encodedMode The ERC-7579 execution mode.
    /// @return Whether `execute` accepts it.
    function supportsExecutionMode(bytes32 encodedMode) public pure override returns (bool) {
        (CallType callType, ExecType execType,,) = Mode.wrap(encodedMode).decodeMode();
        return (
            callType == ERC7579Utils.CALLTYPE_SINGLE || callType == ERC7579Utils.CALLTYPE_BATCH
                || callType == ERC7579Utils.CALLTYPE_DELEGATECALL
        ) && (execType == ERC7579Utils.EXECTYPE_DEFAULT || execType == ERC7579Utils.EXECTYPE_TRY);
    }

    /// @notice Whether modules of `moduleTypeId` can be installed: validators, executors and fallback handlers.
    /// @param moduleTypeId The ERC-7579 module type.
    /// @return Whether it is supported.
    function supportsModule(uint256 moduleTypeId) public pure override returns (bool) {
        return moduleTypeId == MODULE_TYPE_VALIDATOR || moduleTypeId == MODULE_TYPE_EXECUTOR
            || moduleTypeId == MODULE_TYPE_FALLBACK;
    }

    /*//////////////////////////////////////////////////////////////
                                MODULES
    //////////////////////////////////////////////////////////////*/

    /// @notice Install `module` as a module of type `moduleTypeId` (the EntryPoint or the EOA itself only).
    /// @dev A fallback handler's `initData` is its 4-byte selector followed by the data for its `onInstall`.
    ///      Reverts {ModuleIsSessionTarget} when an installed validator says a live session may call `module`.
    ///      A module this code holds under no type yet that reports `isInitialized(this)` is uninstalled from its
    ///      own point of view first (see the contract's notes on re-delegation).
    /// @param moduleTypeId The module type (1 validator, 2 executor, 3 fallback handler).
    /// @param module The module.
    /// @param initData Passed to the module's `onInstall`.
    function installModule(uint256 moduleTypeId, address module, bytes calldata initData)
        external
        override
        onlyEntryPointOrSelf
    {
        if (!supportsModule(moduleTypeId)) revert ERC7579Utils.ERC7579UnsupportedModuleType(moduleTypeId);
        if (!IERC7579Module(module).isModuleType(moduleTypeId)) {
            revert ERC7579Utils.ERC7579MismatchedModuleTypeId(moduleTypeId, module);
        }
        DelegateStorage storage $ = _storage();
        uint256 validators = $.validators.length();
        for (uint256 i = 0; i < validators; ++i) {
            address validator = $.validators.at(i);
            if (AccountModules.isSessionTarget(validator, address(this), module)) {
                revert ModuleIsSessionTarget(module, validator);
            }
        }
        address uninstalled = AccountModules.uninstalledSessionTarget(UNINSTALLED_SLOT, module);
        if (uninstalled != address(0)) revert ModuleIsSessionTarget(module, uninstalled);
        bool heldAlready = _heldUnderAnyType(module);
        bytes calldata data = initData;
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) {
            if (!_insert($.validators, module)) revert ERC7579Utils.ERC7579AlreadyInstalledModule(moduleTypeId, module);
        } else if (moduleTypeId == MODULE_TYPE_EXECUTOR) {
            if (!_insert($.executors, module)) revert ERC7579Utils.ERC7579AlreadyInstalledModule(moduleTypeId, module);
        } else {
            bytes4 selector;
            (selector, data) = _splitFallbackData(initData);
            if (_fallbackHandler(selector) != address(0)) {
                revert ERC7579Utils.ERC7579AlreadyInstalledModule(moduleTypeId, module);
            }
            $.fallbacks[selector] = module;
            _insertSelector($.fallbackSelectors, selector);
            // a count left by a reset (or written by other code) is no selector of a handler the set did not list
            if (_insert($.fallbackHandlers, module)) $.fallbackCount[module] = 1;
            else ++$.fallbackCount[module];
        }
        if (!heldAlready && _reportsInitialized(module)) {
            IERC7579Module(module).onUninstall("");
            emit ModuleStateCleared(module);
        }
        IERC7579Module(module).onInstall(data);
        emit ModuleInstalled(moduleTypeId, module);
    }

    /// @notice Uninstall the module `module` of type `moduleTypeId` (the EntryPoint or the EOA itself only).
    /// @dev A fallback handler's `deInitData` is its 4-byte selector followed by the data for its `onUninstall`.
    ///      The module's `onUninstall` must succeed.
    /// @param moduleTypeId The module type.
    /// @param module The module.
    /// @param deInitData Passed to the module's `onUninstall`.
    function uninstallModule(uint256 moduleTypeId, address module, bytes calldata deInitData)
        external
        override
        onlyEntryPointOrSelf
    {
        DelegateStorage storage $ = _storage();
        bytes calldata data = deInitData;
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) {
            if (!_erase($.validators, module)) revert ERC7579Utils.ERC7579UninstalledModule(moduleTypeId, module);
            // asked by installModule until the transaction ends
            AccountModules.rememberUninstalled(UNINSTALLED_SLOT, module);
        } else if (moduleTypeId == MODULE_TYPE_EXECUTOR) {
            if (!_erase($.executors, module)) revert ERC7579Utils.ERC7579UninstalledModule(moduleTypeId, module);
        } else if (moduleTypeId == MODULE_TYPE_FALLBACK) {
            bytes4 selector;
            (selector, data) = _splitFallbackData(deInitData);
            if (module == address(0) || _fallbackHandler(selector) != module) {
                revert ERC7579Utils.ERC7579UninstalledModule(moduleTypeId, module);
            }
            delete $.fallbacks[selector];
            $.fallbackSelectors.remove(bytes32(selector));
            uint256 left = $.fallbackCount[module];
            // a count other code wrote may be off: the set entry goes with the handler's last selector either way
            if (left <= 1) {
                $.fallbackCount[module] = 0;
                _erase($.fallbackHandlers, module);
            } else {
                $.fallbackCount[module] = left - 1;
            }
        } else {
            revert ERC7579Utils.ERC7579UnsupportedModuleType(moduleTypeId);
        }
        IERC7579Module(module).onUninstall(data);
        emit ModuleUninstalled(moduleTypeId, module);
    }

    /// @notice Whether `module` is installed as a module of type `moduleTypeId`.
    /// @param moduleTypeId The module type.
    /// @param module The module.
    /// @param additionalContext For a fallback handler: the selector it handles (first 4 bytes).
    /// @return Whether it is installed; never reverts.
    function isModuleInstalled(uint256 moduleTypeId, address module, bytes calldata additionalContext)
        public
        view
        override
        returns (bool)
    {
        DelegateStorage storage $ = _storage();
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) return _listed($.validators, module);
        if (moduleTypeId == MODULE_TYPE_EXECUTOR) return _listed($.executors, module);
        if (moduleTypeId == MODULE_TYPE_FALLBACK) {
            return additionalContext.length >= 4 && module != address(0)
                && _fallbackHandler(bytes4(additionalContext[0:4])) == module;
        }
        return false;
    }

    /// @notice Forget every module this account holds, of every type, without calling them (the EntryPoint or the
    ///         EOA itself only). The owner's SDK makes this the first call of the operation (or transaction) carrying
    ///         the EOA's authorization, and installs the session module after it: until the authorization lands, code
    ///         the EOA delegated to before can still write this namespace, after the SDK listed it; once it landed,
    ///         nothing but this code writes it. The authorization stays even when the calls after this one revert,
    ///         so the sets are emptied here, in constant gas, whatever length other code wrote: each set's length
    ///         goes to zero, and a position left behind names no entry below it, so no module is held (see
    ///         {_listed}; installing drops such a position).
    function resetModules() external onlyEntryPointOrSelf {
        DelegateStorage storage $ = _storage();
        EnumerableSet.AddressSet storage validators = $.validators;
        EnumerableSet.AddressSet storage executors = $.executors;
        EnumerableSet.AddressSet storage handlers = $.fallbackHandlers;
        EnumerableSet.Bytes32Set storage selectors = $.fallbackSelectors;
        assembly ("memory-safe") {
            sstore(validators.slot, 0)
            sstore(executors.slot, 0)
            sstore(handlers.slot, 0)
            sstore(selectors.slot, 0)
        }
        emit ModulesReset();
    }

    /*//////////////////////////////////////////////////////////////
                               EXECUTION
    //////////////////////////////////////////////////////////////*/

    /// @notice Execute calls as the account (the EntryPoint or the EOA itself only).
    /// @param mode The ERC-7579 execution mode (see {supportsExecutionMode}).
    /// @param executionCalldata The calls, encoded as ERC-7579 defines for the mode's call type.
    function execute(bytes32 mode, bytes calldata executionCalldata) external payable override onlyEntryPointOrSelf {
        _execute(mode, executionCalldata);
    }

    /// @notice Execute calls as the account, called by an installed executor module.
    /// @param mode The ERC-7579 execution mode.
    /// @param executionCalldata The calls.
    /// @return returnData Each call's return data.
    function executeFromExecutor(bytes32 mode, bytes calldata executionCalldata)
        external
        payable
        override
        returns (bytes[] memory returnData)
    {
        if (!_listed(_storage().executors, msg.sender)) {
            revert ERC7579Utils.ERC7579UninstalledModule(MODULE_TYPE_EXECUTOR, msg.sender);
        }
        return _execute(mode, executionCalldata);
    }

    /*//////////////////////////////////////////////////////////////
                               SIGNATURES
    //////////////////////////////////////////////////////////////*/

    /// @notice ERC-1271: is `signature` a valid signature of `hash` by this account?
    /// @dev A signature starting with an installed validator's address goes to that validator (ERC-7579
    ///      convention); anything else must be the EOA's own ECDSA signature of `hash`.
    /// @param hash The signed hash.
    /// @param signature The signature.
    /// @return The ERC-1271 magic value `0x1626ba7e` if valid, `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) public view override returns (bytes4) {
        if (signature.length >= 20) {
            address module = address(bytes20(signature[0:20]));
            if (_listed(_storage().validators, module)) {
                try IERC7579Validator(module).isValidSignatureWithSender(msg.sender, hash, signature[20:]) returns (
                    bytes4 magic
                ) {
                    if (magic == ERC1271_MAGIC) return magic;
                } catch {}
            }
        }
        return _rawSignatureValidation(hash, signature) ? ERC1271_MAGIC : ERC1271_INVALID;
    }

    /// @dev Validation by the installed validator the nonce key names, else by the EOA's own signature. For a
    ///      validator, `validateUserOp(userOp, userOpHash)` is built by copying the UserOperation's ABI encoding
    ///      from this call's calldata (offsets inside the struct are relative to its start, so the bytes stay
    ///      valid behind a new two-word head) rather than re-encoding it in memory.
    ///
    ///      An operation a validator validates carries no init call: on EntryPoint v0.8 an initCode of the
    ///      20-byte EIP-7702 marker followed by data makes the SenderCreator call this account with that data
    ///      before validation, on every operation that carries it, and a validator judges the callData only.
    ///      Only the owner's own operations may carry one.
    ///
    ///      The validator is recorded for the rest of the transaction, for {installModule} to ask: the EntryPoint
    ///      validates a bundle's operations before it executes any, so this one runs after whatever the bundle's
    ///      earlier operations do, a {resetModules} that forgets the validator included.
    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        internal
        override
        returns (uint256 validationData)
    {
        address module = address(bytes20(bytes32(userOp.nonce)));
        if (!_listed(_storage().validators, module)) {
            return super._validateUserOp(userOp, userOpHash, signature);
        }
        if (userOp.initCode.length > EIP7702_MARKER_LENGTH) {
            revert InitCallNotForValidators(module, userOp.initCode.length - EIP7702_MARKER_LENGTH);
        }
        // asked by installModule until the transaction ends: this operation runs after the bundle's earlier ones
        AccountModules.rememberOnce(UNINSTALLED_SLOT, module);
        return ValidatorCall.forward(module, userOp, userOpHash);
    }

    /*//////////////////////////////////////////////////////////////
                                FALLBACK
    //////////////////////////////////////////////////////////////*/

    /// @notice Calls to functions this code does not have go to the fallback handler installed for their
    ///         selector, with the caller appended to the calldata (ERC-2771), as ERC-7579 requires.
    fallback() external payable {
        address handler = _fallbackHandler(msg.sig);
        if (handler == address(0)) revert MissingFallbackHandler(msg.sig);
        bytes memory data = abi.encodePacked(msg.data, msg.sender);
        assembly ("memory-safe") {
            let success := call(gas(), handler, callvalue(), add(data, 0x20), mload(data), 0, 0)
            let ptr := mload(0x40)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(success) { revert(ptr, returndatasize()) }
            return(ptr, returndatasize())
        }
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _storage() private pure returns (DelegateStorage storage $) {
        assembly ("memory-safe") {
            $.slot := STORAGE_LOCATION
        }
    }

    function _execute(bytes32 mode, bytes calldata executionCalldata) private returns (bytes[] memory) {
        (CallType callType, ExecType execType,,) = Mode.wrap(mode).decodeMode();
        if (callType == ERC7579Utils.CALLTYPE_SINGLE) return executionCalldata.execSingle(execType);
        if (callType == ERC7579Utils.CALLTYPE_BATCH) return executionCalldata.execBatch(execType);
        if (callType == ERC7579Utils.CALLTYPE_DELEGATECALL) return executionCalldata.execDelegateCall(execType);
        revert ERC7579Utils.ERC7579UnsupportedCallType(callType);
    }

    /// @dev Whether this code holds `module` under any module type.
    function _heldUnderAnyType(address module) private view returns (bool) {
        DelegateStorage storage $ = _storage();
        return _listed($.validators, module) || _listed($.executors, module) || _listed($.fallbackHandlers, module);
    }

    /// @dev Whether `set` lists `value`: its position names an entry below the set's length that holds it. OpenZeppelin's
    ///      `contains` reads the position alone, which other code can write without the entry (the length the SDK
    ///      lists from left at 0): a module the SDK cannot see would be in force. Every membership here asks this.
    function _listed(EnumerableSet.AddressSet storage set, address value) private view returns (bool) {
        return _listedIn(set._inner, bytes32(uint256(uint160(value))));
    }

    /// @dev {_listed} for the selector set.
    function _listedSelector(EnumerableSet.Bytes32Set storage set, bytes4 selector) private view returns (bool) {
        return _listedIn(set._inner, bytes32(selector));
    }

    /// @dev Whether the set's position of `value` names an entry below its length that holds `value`.
    function _listedIn(EnumerableSet.Set storage inner, bytes32 value) private view returns (bool) {
        uint256 position = inner._positions[value];
        return position != 0 && position <= inner._values.length && inner._values[position - 1] == value;
    }

    /// @dev {_insert} for the selector set: a selector already listed stays (its handler was in force nowhere).
    function _insertSelector(EnumerableSet.Bytes32Set storage set, bytes4 selector) private {
        if (_listedSelector(set, selector)) return;
        delete set._inner._positions[bytes32(selector)];
        set.add(bytes32(selector));
    }

    /// @dev Add `value` to `set` unless it lists it already (false then); a position other code wrote for it without
    ///      the entry is dropped first, so that the add pushes a listed entry.
    function _insert(EnumerableSet.AddressSet storage set, address value) private returns (bool) {
        if (_listed(set, value)) return false;
        delete set._inner._positions[bytes32(uint256(uint160(value)))];
        return set.add(value);
    }

    /// @dev Remove `value` from `set` if it lists it (false otherwise): OpenZeppelin's `remove` trusts the position,
    ///      and one other code wrote past the length would move or pop another module's entry.
    function _erase(EnumerableSet.AddressSet storage set, address value) private returns (bool) {
        return _listed(set, value) && set.remove(value);
    }

    /// @dev The handler in force for `selector`: the one the `fallbacks` mapping names, while it is in the listed
    ///      `fallbackHandlers` set and the selector in the listed `fallbackSelectors` set (zero otherwise, as for a
    ///      selector without a handler). The mapping outlives {resetModules}: the selector set is what it empties.
    function _fallbackHandler(bytes4 selector) private view returns (address handler) {
        DelegateStorage storage $ = _storage();
        handler = $.fallbacks[selector];
        if (
            handler != address(0)
                && (!_listedSelector($.fallbackSelectors, selector) || !_listed($.fallbackHandlers, handler))
        ) {
            handler = address(0);
        }
    }

    /// @dev Whether `module` answers `isInitialized(address(this))` with a nonzero word: false when the call reverts
    ///      or answers less than a word, true for any word but zero (a word above 1 is no well-formed bool, but it is
    ///      not a no: the install then starts with the module's `onUninstall`, the clean-state path).
    function _reportsInitialized(address module) private view returns (bool) {
        (bool ok, bytes memory result) = module.staticcall(abi.encodeWithSelector(IS_INITIALIZED, address(this)));
        return ok && result.length >= 32 && uint256(bytes32(result)) != 0;
    }

    /// @dev Fallback init/deinit data: `selector (4 bytes) ‖ data for the handler`.
    function _splitFallbackData(bytes calldata data) private pure returns (bytes4 selector, bytes calldata rest) {
        if (data.length < 4) revert FallbackDataTooShort(data.length);
        return (bytes4(data[0:4]), data[4:]);
    }
}
